//! [`Process`]: the handle a process body gets to its own mailbox and to the runtime.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use snow_shared::{Atom, NodeName, Pid, Ref, Term};

use crate::error::{LinkError, RegisterError, SendError};
use crate::node::Node;
use crate::proc::ProcShared;
use crate::reason::{self, IntoExitReason};
use crate::seam::Monitored;
use crate::timer::TimerRef;

/// A running process's view of itself: its mailbox, its pid, and the operations only a process
/// can do (link, monitor, trap exits, receive).
///
/// The body of every process receives its `Process` by value. It is not `Clone`: a mailbox has
/// exactly one reader. Operations that only send (`send`, `send_exit`, `link`...) take `&self`;
/// receiving takes `&mut self`.
///
/// Erlang equivalents: `self()` = [`pid`](Process::pid), `!` = [`send`](Process::send),
/// `exit/1` = [`exit`](Process::exit), `exit/2` = [`send_exit`](Process::send_exit),
/// `process_flag(trap_exit, B)` = [`trap_exit`](Process::trap_exit).
pub struct Process {
    pub(crate) node: Node,
    pub(crate) shared: Arc<ProcShared>,
    pub(crate) private: VecDeque<Term>,
    pub(crate) budget: u32,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Process({})", self.shared.pid)
    }
}

impl Process {
    pub(crate) fn new(node: Node, shared: Arc<ProcShared>) -> Process {
        Process { node, shared, private: VecDeque::new(), budget: crate::mailbox::BUDGET }
    }

    /// This process's pid (`self()`).
    pub fn pid(&self) -> &Pid {
        &self.shared.pid
    }

    /// The runtime this process runs on.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Sends `msg` to `to`. Never blocks; sending to a dead pid does nothing (as in BEAM).
    /// Messages from one process to another arrive in the order they were sent.
    ///
    /// A message to another node is never dropped while the connection is up. If the connection's
    /// queue is over its budget, this process is suspended at its next `.await` until the queue
    /// has drained (as Erlang suspends a process sending to a busy distribution port); a process
    /// that goes on sending without awaiting until the queue reaches its hard ceiling exits with
    /// `{:send_queue_overflow, node}` (README, "Guarantees").
    pub fn send(&self, to: &Pid, msg: Term) {
        if self.shared.is_exiting() {
            return;
        }
        self.shared.backpressure(self.node.send_message(Some(&self.shared.pid), to, msg));
    }

    /// Sends `msg` to the process registered as `name` on this node.
    pub fn send_named(&self, name: &str, msg: Term) -> Result<(), SendError> {
        let pid = self.node.whereis(name).ok_or_else(|| SendError::NotRegistered(name.to_owned()))?;
        self.send(&pid, msg);
        Ok(())
    }

    /// Sends `msg` to the process registered as `name` on `node` (Erlang's `{Name, Node} ! Msg`).
    /// On this node it is [`send_named`](Process::send_named) with its error; for another node
    /// the message goes through the distribution layer and is dropped there if nobody has the
    /// name (as in Erlang), or here if this node is not distributed.
    pub fn send_named_on(&self, node: &NodeName, name: &str, msg: Term) -> Result<(), SendError> {
        if node == self.node.name() {
            return self.send_named(name, msg);
        }
        if let Some(router) = self.node.router().filter(|_| !self.shared.is_exiting()) {
            self.shared.backpressure(router.send_named(Some(&self.shared.pid), node, &Atom::new(name), msg));
        }
        Ok(())
    }

    /// Sends an exit signal with `reason` to `to` (Erlang's `exit/2`). What the target does is
    /// described in [`crate::signals`]: `:kill` kills it even if it traps exits (it then exits
    /// with `:killed`); `:normal` is ignored unless `to` is this process; a trapping target gets
    /// `{:EXIT, self, reason}`; any other reason makes it exit with that reason.
    pub fn send_exit(&self, to: &Pid, reason: Term) {
        if self.shared.is_exiting() {
            return;
        }
        self.shared.backpressure(self.node.exit_signal(&self.shared.pid, to, reason, false));
    }

    /// Ends this process with `reason` (Erlang's `exit/1`). The returned future never completes:
    /// the process stops at this `.await`.
    pub fn exit(&self, reason: Term) -> impl Future<Output = ()> + Send + 'static {
        self.shared.exit_with(reason);
        // The task's exit watcher was woken by `exit_with` and is polled before the body.
        std::future::poll_fn(|_| Poll::<()>::Pending)
    }

    /// Sets whether exit signals become `{:EXIT, from, reason}` messages instead of killing this
    /// process (except the untrappable `:kill`). Returns the previous setting.
    pub fn trap_exit(&self, on: bool) -> bool {
        std::mem::replace(&mut self.shared.lock().trap_exit, on)
    }

    /// Links this process with `to`: when either exits, the other gets an exit signal.
    ///
    /// Linking to a process that does not exist (dead, stale creation, or a remote node without
    /// distribution) behaves as in Erlang: a process trapping exits gets
    /// `{:EXIT, to, :noproc}` and `Ok(())`; otherwise the call fails with
    /// [`LinkError::NoProc`], the counterpart of Erlang raising `noproc`. Linking twice or to
    /// itself does nothing.
    pub fn link(&self, to: &Pid) -> Result<(), LinkError> {
        if self.node.link_pids(&self.shared, to) {
            return Ok(());
        }
        let waker = {
            let mut st = self.shared.lock();
            if !st.trap_exit {
                return Err(LinkError::NoProc(to.clone()));
            }
            st.push(reason::exit_message(to, reason::noproc()))
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Removes the link with `to`, if any. After it returns, no exit signal from that link
    /// reaches this process (one already turned into an `{:EXIT, ..}` message stays in the
    /// mailbox, as in Erlang).
    pub fn unlink(&self, to: &Pid) {
        self.node.unlink_pids(&self.shared, to);
    }

    /// Monitors `target`: when it exits this process gets `{:DOWN, ref, target, reason}`. Each
    /// call makes a new, independent monitor. A target that does not exist gives an immediate
    /// `{:DOWN, ref, target, :noproc}`.
    pub fn monitor(&self, target: &Pid) -> Ref {
        self.node.monitor_target(&self.shared, Monitored::Pid(target.clone()))
    }

    /// Monitors the process registered as `name` on `node` (Erlang's
    /// `monitor(process, {Name, Node})`; `node` may be this node). The name is resolved once, by
    /// the node that holds it, when the monitor is set up; when that process exits this process
    /// gets `{:DOWN, ref, {name, node}, reason}`. No process under that name gives an immediate
    /// `{:DOWN, ref, {name, node}, :noproc}`, a lost connection `:noconnection`.
    pub fn monitor_name(&self, name: &str, node: &NodeName) -> Ref {
        let target = Monitored::Name { name: Atom::new(name), node: node.clone() };
        self.node.monitor_target(&self.shared, target)
    }

    /// Cancels a monitor. Returns `true` if it was still active (no `:DOWN` was delivered).
    /// With `flush`, a `:DOWN` message of this monitor already in the mailbox is removed too,
    /// so after `demonitor(r, true)` no message about `r` is ever seen.
    pub fn demonitor(&mut self, reference: &Ref, flush: bool) -> bool {
        let monitoring = self.shared.lock().rel_opt().and_then(|rel| rel.monitoring.remove(reference));
        let active = match monitoring {
            Some(monitoring) => {
                self.shared.backpressure(self.node.forget_watcher(&self.shared.pid, &monitoring, reference));
                true
            }
            None => false,
        };
        if flush && !active {
            self.remove_matching(|m| is_down_for(m, reference));
        }
        active
    }

    /// Spawns a process (see [`Node::spawn`]).
    pub fn spawn<F, Fut>(&self, body: F) -> Pid
    where
        F: FnOnce(Process) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: IntoExitReason,
    {
        self.node.start(self.node.prepare(), body)
    }

    /// Spawns a process linked to this one; the link exists before the new process runs.
    pub fn spawn_link<F, Fut>(&self, body: F) -> Pid
    where
        F: FnOnce(Process) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: IntoExitReason,
    {
        let child = self.node.prepare();
        self.node.prelink(&self.shared, &child);
        self.node.start(child, body)
    }

    /// Spawns a process monitored by this one; the monitor exists before the new process runs.
    pub fn spawn_monitor<F, Fut>(&self, body: F) -> (Pid, Ref)
    where
        F: FnOnce(Process) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: IntoExitReason,
    {
        let child = self.node.prepare();
        let reference = self.node.premonitor(&self.shared, &child);
        (self.node.start(child, body), reference)
    }

    /// Registers this process under `name` (see [`Node::register`]).
    pub fn register(&self, name: &str) -> Result<(), RegisterError> {
        self.node.register(name, &self.shared.pid)
    }

    /// Sends `msg` to `to` after `delay` (see [`Node::send_after`]).
    pub fn send_after(&self, to: &Pid, delay: Duration, msg: Term) -> TimerRef {
        self.node.send_after(to, delay, msg)
    }

    /// The registered name of this process, if any.
    pub fn registered_name(&self) -> Option<Atom> {
        self.shared.lock().name.clone()
    }
}

/// Lets the other processes of this scheduler thread run before this one goes on (Erlang's
/// `erlang:yield/0`). Like every `.await` it is a suspension point: a process that a congested
/// connection asked to wait waits here.
pub async fn yield_now() {
    futures_lite::future::yield_now().await
}

/// Whether `msg` is `{:DOWN, reference, _, _}`.
fn is_down_for(msg: &Term, reference: &Ref) -> bool {
    matches!(msg.as_tuple(), Some([tag, Term::Ref(r), _, _]) if r == reference && tag.is_atom("DOWN"))
}
