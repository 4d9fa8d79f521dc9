//! One process's state, owned here: its mailbox inbox, links, monitors, name, exit status and
//! congestion wait. The fields are private; every other module changes a process through the
//! operations below, each of which keeps the invariants under the process's one lock:
//!
//! - a process is `Running`, then `Exiting` (an exit was decided, its task has not cleaned up),
//!   then `Dead` (links and monitors fired, name freed, mailbox dropped); nothing is delivered to
//!   a dead process and nothing is attached to it;
//! - a `:DOWN` is delivered only while the watcher still holds that monitor, and only about what
//!   it monitors, which makes `demonitor` with flush exact and forged reports harmless;
//! - exit signals follow Erlang's rules (see [`ProcessEntry::exit_signal`]);
//! - a mailbox never holds more than the process's mailbox limit: the message that would go past
//!   it is dropped and the process is killed with `{:mailbox_overflow, limit}` (see
//!   [`ProcessEntry::set_mailbox_limit`]).
//!
//! No user code ever runs under the lock.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use snow_shared::{Atom, NodeName, Pid, Ref, Term};

use crate::reason;
use crate::seam::{Backpressure, Congestion, Monitored};

/// Where a process is in its life.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Status {
    Running,
    Exiting,
    Dead,
}

/// One monitor a process holds.
#[derive(Clone, Debug)]
pub(crate) struct Monitoring {
    /// What it watches, as the `:DOWN` message will name it.
    pub target: Monitored,
    /// For a name on this node: the process the name resolved to, which holds the watcher entry.
    pub resolved: Option<Pid>,
}

impl Monitoring {
    /// A monitor of `target`, with no local resolution.
    pub fn of(target: Monitored) -> Monitoring {
        Monitoring { target, resolved: None }
    }

    /// Whether `reported` (the process or name a `:DOWN` report names) is what this monitor
    /// watches: the same pid, or, for a name, any report from the name's node (that node resolved
    /// the name; a peer cannot speak for another node's processes).
    fn accepts(&self, reported: &Monitored) -> bool {
        match (&self.target, reported) {
            (Monitored::Pid(mine), Monitored::Pid(theirs)) => mine == theirs,
            (Monitored::Pid(_), Monitored::Name { .. }) => false,
            (Monitored::Name { node, .. }, Monitored::Pid(pid)) => {
                pid.node() == node && self.resolved.as_ref().map_or(true, |r| r == pid)
            }
            (Monitored::Name { .. }, Monitored::Name { .. }) => &self.target == reported,
        }
    }

    /// The process that holds the watcher entry of this monitor, if known here.
    pub fn holder(&self) -> Option<&Pid> {
        match &self.target {
            Monitored::Pid(pid) => Some(pid),
            Monitored::Name { .. } => self.resolved.as_ref(),
        }
    }
}

/// Links and monitors of one process, allocated only when the process has any (most have none,
/// and an idle process must stay small).
#[derive(Default)]
pub(crate) struct Relations {
    /// Processes (local or remote) linked to this one.
    pub links: HashSet<Pid>,
    /// Monitors on this process: (reference, watcher).
    pub watchers: Vec<(Ref, Pid)>,
    /// Monitors this process holds.
    pub monitoring: HashMap<Ref, Monitoring>,
    /// The distribution layer asked to be told when this process exits.
    pub tell_distribution: bool,
}

/// What a process leaves behind when it dies, for the exit procedure to act on.
pub(crate) struct Remains {
    pub relations: Option<Box<Relations>>,
    pub name: Option<Atom>,
    /// Messages never received (dropped by the caller, outside the lock).
    pub unread: VecDeque<Term>,
}

struct State {
    /// Messages not yet moved to the owner's private queue, oldest first.
    inbox: VecDeque<Term>,
    /// The owner is parked in a receive and must be woken by the next message.
    waiting: bool,
    recv_waker: Option<Waker>,
    /// Waker of the process's task, used to deliver fatal signals wherever the body is parked.
    task_waker: Option<Waker>,
    status: Status,
    /// The exit reason decided while `Exiting`, until the task takes it. Boxed: it is rarely set,
    /// and every idle process would otherwise carry a whole term's size for it.
    pending_exit: Option<Box<Term>>,
    trap_exit: bool,
    name: Option<Atom>,
    relations: Option<Box<Relations>>,
    /// The congested connection this process must wait for at its next `.await`.
    congestion: Option<Arc<dyn Congestion>>,
    /// The most messages the mailbox (inbox and the owner's private queue) may hold;
    /// [`NO_MAILBOX_LIMIT`] when there is no limit.
    mailbox_limit: usize,
}

/// The mailbox limit meaning "none": no mailbox can reach it, so the check on the send path is the
/// same single comparison with or without a limit.
pub(crate) const NO_MAILBOX_LIMIT: usize = usize::MAX;

/// A limit as the API gives it (`None`: no limit) in the form kept in the entry.
pub(crate) fn limit_to_raw(limit: Option<usize>) -> usize {
    limit.unwrap_or(NO_MAILBOX_LIMIT)
}

/// The form kept in the entry as the API gives it.
pub(crate) fn limit_from_raw(raw: usize) -> Option<usize> {
    (raw != NO_MAILBOX_LIMIT).then_some(raw)
}

impl State {
    fn rel(&mut self) -> &mut Relations {
        self.relations.get_or_insert_with(Default::default)
    }

    fn rel_opt(&mut self) -> Option<&mut Relations> {
        self.relations.as_deref_mut()
    }

    /// Links and monitors may still be attached (the exit procedure has not run).
    fn accepts_relations(&self) -> bool {
        self.status != Status::Dead
    }

    /// Appends a message; returns the waker to call once the lock is released.
    #[must_use]
    fn push(&mut self, msg: Term) -> Option<Waker> {
        self.inbox.push_back(msg);
        if self.waiting {
            self.waiting = false;
            self.recv_waker.take()
        } else {
            None
        }
    }

    /// Decides that the process exits with `reason` (the first decision wins) and returns the
    /// wakers to call once the lock is released.
    #[must_use]
    fn begin_exit(&mut self, reason: Term, flag: &AtomicBool) -> [Option<Waker>; 2] {
        if self.status != Status::Running {
            return [None, None];
        }
        self.status = Status::Exiting;
        self.pending_exit = Some(Box::new(reason));
        flag.store(true, Ordering::Release);
        self.waiting = false;
        [self.task_waker.clone(), self.recv_waker.take()]
    }
}

fn wake(wakers: impl IntoIterator<Item = Option<Waker>>) {
    for waker in wakers.into_iter().flatten() {
        waker.wake();
    }
}

/// One process as the runtime sees it (shared by the process table, its task and its handle).
pub(crate) struct ProcessEntry {
    pid: Pid,
    /// Set once an exit was decided; lets the task check for fatal signals without locking.
    exiting: AtomicBool,
    /// Set while `congestion` holds a connection to wait for; checked without locking at every
    /// suspension point.
    congested: AtomicBool,
    /// Length of the owner's private queue (the messages it took out of the inbox but has not
    /// received yet), published by the owner so that senders can count the whole mailbox against
    /// the limit without taking anything from it. Set under the lock when the inbox is moved over
    /// (so inbox and private count stay consistent), lowered without it before each message taken.
    private_len: AtomicUsize,
    state: Mutex<State>,
}

impl ProcessEntry {
    /// The state of a new process `pid` whose mailbox may hold at most `mailbox_limit` messages
    /// ([`NO_MAILBOX_LIMIT`]: no limit).
    pub fn new(pid: Pid, mailbox_limit: usize) -> ProcessEntry {
        ProcessEntry {
            pid,
            exiting: AtomicBool::new(false),
            congested: AtomicBool::new(false),
            private_len: AtomicUsize::new(0),
            state: Mutex::new(State {
                inbox: VecDeque::new(),
                waiting: false,
                recv_waker: None,
                task_waker: None,
                status: Status::Running,
                pending_exit: None,
                trap_exit: false,
                name: None,
                relations: None,
                congestion: None,
                mailbox_limit,
            }),
        }
    }

    pub fn pid(&self) -> &Pid {
        &self.pid
    }

    /// No user code runs under this lock, so poisoning can only come from a bug in the runtime;
    /// the state is still structurally valid then, so keep going.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Running, with no exit decided.
    pub fn is_running(&self) -> bool {
        self.lock().status == Status::Running
    }

    /// The exit procedure has run (links and monitors fired, name freed).
    pub fn is_dead(&self) -> bool {
        self.lock().status == Status::Dead
    }

    /// An exit has been decided: what the process sends from then on is not sent (it died at
    /// that point, even if its body has not reached an `.await` yet).
    pub fn is_exiting(&self) -> bool {
        self.exiting.load(Ordering::Acquire)
    }

    // ---- messages -----------------------------------------------------------------------

    /// Appends `msg` to the mailbox, unless the process is dead.
    pub fn deliver(&self, msg: Term) {
        // The send path: `enqueue`'s steps, with the one waker of the common case handled on its
        // own (no array of wakers to walk and drop per message).
        let mut st = self.lock();
        if st.status == Status::Dead {
            return;
        }
        if self.is_full(&st) {
            let wakers = self.overflow(&mut st);
            drop(st);
            return wake(wakers);
        }
        let waker = st.push(msg);
        drop(st);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Appends `msg` to the inbox and returns the wakers to call once the lock is released;
    /// every message (sent, `{:EXIT, ..}`, `:DOWN`, ...) goes through here. If the mailbox already
    /// holds its limit, `msg` is dropped instead and the process is killed with
    /// `{:mailbox_overflow, limit}`, whatever it traps (as BEAM kills a process past its
    /// `max_heap_size`). One comparison when under the limit.
    #[must_use]
    fn enqueue(&self, st: &mut State, msg: Term) -> [Option<Waker>; 2] {
        if self.is_full(st) {
            return self.overflow(st);
        }
        [st.push(msg), None]
    }

    /// The mailbox (inbox and the owner's private queue) holds its limit.
    fn is_full(&self, st: &State) -> bool {
        st.inbox.len() + self.private_len.load(Ordering::Relaxed) >= st.mailbox_limit
    }

    /// The mailbox is full: kills the process (once) and logs it.
    #[cold]
    fn overflow(&self, st: &mut State) -> [Option<Waker>; 2] {
        if st.status != Status::Running {
            return [None, None];
        }
        let limit = st.mailbox_limit;
        log::warn!(
            "process {} killed: its mailbox is at its limit of {limit} messages (exit reason {{:mailbox_overflow, \
             {limit}}}); receive faster, or raise the limit (Process::set_mailbox_limit, SNOW_MAILBOX_LIMIT)",
            self.pid
        );
        st.begin_exit(reason::mailbox_overflow(limit), &self.exiting)
    }

    /// Sets the most messages this process's mailbox may hold (`None`: no limit); returns the
    /// previous setting. A mailbox already over a new, lower limit is not trimmed: the next
    /// message that arrives kills the process.
    pub fn set_mailbox_limit(&self, limit: Option<usize>) -> Option<usize> {
        limit_from_raw(std::mem::replace(&mut self.lock().mailbox_limit, limit_to_raw(limit)))
    }

    /// The most messages this process's mailbox may hold (`None`: no limit).
    pub fn mailbox_limit(&self) -> Option<usize> {
        limit_from_raw(self.lock().mailbox_limit)
    }

    /// The owner is about to take one message out of its private queue of `len` messages:
    /// publishes the lower count first, so a sender never counts a message already taken.
    pub fn taking_private(&self, len: usize) {
        self.private_len.store(len.saturating_sub(1), Ordering::Relaxed);
    }

    /// The owner removed messages from its private queue, which now holds `len`.
    pub fn private_shrunk(&self, len: usize) {
        self.private_len.store(len, Ordering::Relaxed);
    }

    /// Moves the shared inbox to the end of `private`; if both are empty, parks the receive
    /// (registers `waker`) and returns `false`.
    pub fn refill_or_park(&self, private: &mut VecDeque<Term>, waker: &Waker) -> bool {
        let mut st = self.lock();
        if st.inbox.is_empty() {
            if !st.recv_waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
                st.recv_waker = Some(waker.clone());
            }
            st.waiting = true;
            return false;
        }
        Self::move_inbox(&mut st, private, &self.private_len);
        true
    }

    /// Moves the inbox to the end of `private` and publishes the private queue's new length,
    /// under the lock so a sender sees the messages in one place or the other.
    fn move_inbox(st: &mut State, private: &mut VecDeque<Term>, private_len: &AtomicUsize) {
        if private.is_empty() {
            std::mem::swap(&mut st.inbox, private);
        } else {
            private.append(&mut st.inbox);
        }
        private_len.store(private.len(), Ordering::Relaxed);
    }

    /// Moves the shared inbox to the end of `private`, without parking.
    pub fn refill(&self, private: &mut VecDeque<Term>) {
        Self::move_inbox(&mut self.lock(), private, &self.private_len);
    }

    /// Messages in the shared inbox.
    pub fn inbox_len(&self) -> usize {
        self.lock().inbox.len()
    }

    /// Removes every inbox message `reject` returns `true` for; returns how many.
    pub fn remove_from_inbox(&self, mut reject: impl FnMut(&Term) -> bool) -> usize {
        let mut st = self.lock();
        let before = st.inbox.len();
        st.inbox.retain(|m| !reject(m));
        before - st.inbox.len()
    }

    // ---- exit signals -----------------------------------------------------------------

    /// Applies an exit signal from `from`, with Erlang's rules (Processes reference manual,
    /// "Receiving Exit Signals"), in this order:
    /// 1. a signal sent because of a link is ignored if the receiver no longer has that link
    ///    (it unlinked, so no exit can arrive after `unlink` returns);
    /// 2. `:kill` sent with `exit/2` (not through a link) terminates the receiver with `:killed`,
    ///    even if it traps exits;
    /// 3. a receiver trapping exits gets `{:EXIT, from, reason}` in its mailbox;
    /// 4. `:normal` is ignored, unless a process sent it to itself with `exit/2`;
    /// 5. otherwise the receiver exits with the signal's reason.
    pub fn exit_signal(&self, from: &Pid, reason: Term, linked: bool) {
        let mut st = self.lock();
        if st.status != Status::Running {
            return;
        }
        if linked && !st.rel_opt().is_some_and(|rel| rel.links.remove(from)) {
            return;
        }
        let wakers = if !linked && reason.is_atom("kill") {
            st.begin_exit(reason::killed(), &self.exiting)
        } else if st.trap_exit {
            self.enqueue(&mut st, reason::exit_message(from, reason))
        } else if reason.is_atom("normal") {
            if !linked && from == &self.pid {
                st.begin_exit(reason, &self.exiting)
            } else {
                [None, None]
            }
        } else {
            st.begin_exit(reason, &self.exiting)
        };
        drop(st);
        wake(wakers);
    }

    /// Decides that the process exits with `reason` (its own `exit`, or a send refused at a
    /// connection's ceiling) and wakes its task.
    pub fn exit_with(&self, reason: Term) {
        let wakers = self.lock().begin_exit(reason, &self.exiting);
        wake(wakers);
    }

    /// The exit decided for this process, if any, taken for the exit procedure; registers `cx`'s
    /// waker to be woken when one is decided. `first` registers the waker once.
    pub fn poll_decided_exit(&self, cx: &mut Context<'_>, first: bool) -> Poll<Term> {
        if first {
            self.lock().task_waker = Some(cx.waker().clone());
        }
        if self.exiting.load(Ordering::Acquire) {
            if let Some(reason) = self.lock().pending_exit.take() {
                return Poll::Ready(*reason);
            }
        }
        Poll::Pending
    }

    /// The exit decided while the body ran its last stretch, if any (it wins over the body's own
    /// result: the process died at that point).
    pub fn take_decided_exit(&self) -> Option<Term> {
        self.lock().pending_exit.take().map(|reason| *reason)
    }

    /// Sets whether exit signals become messages; returns the previous setting.
    pub fn set_trap_exit(&self, on: bool) -> bool {
        std::mem::replace(&mut self.lock().trap_exit, on)
    }

    /// A link this process asked for could not be made because `to` does not exist: a trapping
    /// process gets `{:EXIT, to, :noproc}` (`true`); otherwise the caller reports the error.
    pub fn link_failed(&self, to: &Pid) -> bool {
        let waker = {
            let mut st = self.lock();
            if !st.trap_exit {
                return false;
            }
            self.enqueue(&mut st, reason::exit_message(to, reason::noproc()))
        };
        wake(waker);
        true
    }

    // ---- links and monitors ------------------------------------------------------------

    /// Links two local processes on both sides; `false` if `other` is dead. Locks both in pid
    /// order, so two processes linking to each other cannot deadlock.
    pub fn link_pair(me: &ProcessEntry, other: &ProcessEntry) -> bool {
        let (mut mine, mut theirs) = if me.pid.id() < other.pid.id() {
            let a = me.lock();
            (a, other.lock())
        } else {
            let b = other.lock();
            (me.lock(), b)
        };
        if !theirs.accepts_relations() {
            return false;
        }
        mine.rel().links.insert(other.pid.clone());
        theirs.rel().links.insert(me.pid.clone());
        true
    }

    /// Records a link with `other` on this side only; `false` if this process is dead.
    pub fn add_link(&self, other: &Pid) -> bool {
        let mut st = self.lock();
        if !st.accepts_relations() {
            return false;
        }
        st.rel().links.insert(other.clone());
        true
    }

    /// Removes the link with `other` on this side; whether there was one.
    pub fn remove_link(&self, other: &Pid) -> bool {
        self.lock().rel_opt().is_some_and(|rel| rel.links.remove(other))
    }

    /// Records that `watcher` monitors this process with `reference`; `false` if it is dead.
    pub fn add_watcher(&self, reference: &Ref, watcher: &Pid) -> bool {
        let mut st = self.lock();
        if !st.accepts_relations() {
            return false;
        }
        st.rel().watchers.push((reference.clone(), watcher.clone()));
        true
    }

    /// Removes the monitor `reference` on this process.
    pub fn remove_watcher(&self, reference: &Ref) {
        if let Some(rel) = self.lock().rel_opt() {
            rel.watchers.retain(|(r, _)| r != reference);
        }
    }

    /// Records that this process holds the monitor `reference`; `false` if it is not running.
    pub fn add_monitoring(&self, reference: &Ref, monitoring: Monitoring) -> bool {
        let mut st = self.lock();
        if st.status == Status::Dead {
            return false;
        }
        st.rel().monitoring.insert(reference.clone(), monitoring);
        true
    }

    /// Removes the monitor `reference` this process holds (demonitor), returning it.
    pub fn take_monitoring(&self, reference: &Ref) -> Option<Monitoring> {
        self.lock().rel_opt().and_then(|rel| rel.monitoring.remove(reference))
    }

    /// Delivers `{:DOWN, reference, item, reason}` if this process still holds the monitor and
    /// `reported` is what it watches; `item` is the pid or `{name, node}` the monitor was set up
    /// with.
    pub fn down(&self, reference: &Ref, reported: &Monitored, reason: Term) {
        let waker = {
            let mut st = self.lock();
            if st.status == Status::Dead {
                return;
            }
            let Some(rel) = st.rel_opt() else { return };
            let item = match rel.monitoring.get(reference) {
                Some(monitoring) if monitoring.accepts(reported) => monitoring.target.to_term(),
                _ => return,
            };
            rel.monitoring.remove(reference);
            self.enqueue(&mut st, reason::down_message(reference, item, reason))
        };
        wake(waker);
    }

    /// Asks that the distribution layer be told when this process exits; `false` if it is dead.
    pub fn tell_distribution_on_exit(&self) -> bool {
        let mut st = self.lock();
        if !st.accepts_relations() {
            return false;
        }
        st.rel().tell_distribution = true;
        true
    }

    /// The connection to `node` is gone: drops the monitors processes there held on this one,
    /// and returns this process's links to processes there and its monitors of them, which the
    /// caller fires with `:noconnection`.
    pub fn sever(&self, node: &NodeName) -> (Vec<Pid>, Vec<(Ref, Monitored)>) {
        let mut st = self.lock();
        if st.status == Status::Dead {
            return (Vec::new(), Vec::new());
        }
        let Some(rel) = st.rel_opt() else { return (Vec::new(), Vec::new()) };
        rel.watchers.retain(|(_, watcher)| watcher.node() != node);
        let links = rel.links.iter().filter(|l| l.node() == node).cloned().collect();
        let downs = rel
            .monitoring
            .iter()
            .filter(|(_, m)| m.target.node() == node)
            .map(|(r, m)| (r.clone(), m.target.clone()))
            .collect();
        (links, downs)
    }

    /// How many links, monitors on it, and monitors it holds (tests' view of the tables).
    pub fn relation_counts(&self) -> (usize, usize, usize) {
        let mut st = self.lock();
        st.rel_opt().map_or((0, 0, 0), |rel| (rel.links.len(), rel.watchers.len(), rel.monitoring.len()))
    }

    // ---- name ---------------------------------------------------------------------------

    /// Gives the process `name`. Fails with its current name if it has one, or `Err(None)` if it
    /// is dead.
    pub fn set_name(&self, name: &Atom) -> Result<(), Option<Atom>> {
        let mut st = self.lock();
        if st.status == Status::Dead {
            return Err(None);
        }
        if let Some(existing) = &st.name {
            return Err(Some(existing.clone()));
        }
        st.name = Some(name.clone());
        Ok(())
    }

    /// Removes the process's name if it is `name`.
    pub fn clear_name(&self, name: &str) {
        let mut st = self.lock();
        if st.name.as_ref().is_some_and(|n| n.as_str() == name) {
            st.name = None;
        }
    }

    pub fn name(&self) -> Option<Atom> {
        self.lock().name.clone()
    }

    // ---- congestion ----------------------------------------------------------------------

    /// Applies what the distribution layer asked after one of this process's sends.
    pub fn backpressure(&self, verdict: Backpressure) {
        match verdict {
            Backpressure::Clear => {}
            Backpressure::Suspend(congestion) => {
                self.lock().congestion = Some(congestion);
                self.congested.store(true, Ordering::Release);
            }
            Backpressure::Overflow(reason) => self.exit_with(reason),
        }
    }

    /// `Pending` while this process must wait for a congested connection (registering `cx`'s
    /// waker with it); `Ready` when it may run. Called at every suspension point: when the task
    /// is polled, and by every receive.
    pub fn poll_congestion(&self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.congested.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        let Some(congestion) = self.lock().congestion.clone() else {
            self.congested.store(false, Ordering::Release);
            return Poll::Ready(());
        };
        if congestion.poll_room(cx).is_pending() {
            return Poll::Pending;
        }
        let mut st = self.lock();
        // A send made meanwhile may have installed another congestion: only clear this one.
        if st.congestion.as_ref().is_some_and(|c| Arc::ptr_eq(c, &congestion)) {
            st.congestion = None;
            self.congested.store(false, Ordering::Release);
        }
        Poll::Ready(())
    }

    // ---- death ----------------------------------------------------------------------------

    /// Marks the process dead and takes what it leaves: relations, name, and its unread mailbox
    /// (dropped here).
    pub fn mark_dead(&self) -> Remains {
        let mut st = self.lock();
        st.status = Status::Dead;
        self.exiting.store(true, Ordering::Release);
        st.pending_exit = None;
        st.waiting = false;
        st.recv_waker = None;
        st.task_waker = None;
        st.congestion = None;
        Remains { relations: st.relations.take(), name: st.name.take(), unread: std::mem::take(&mut st.inbox) }
    }
}
