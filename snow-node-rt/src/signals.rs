//! Messages, exit signals, links and monitors: how one process's action reaches another.
//!
//! Receiving an exit signal follows Erlang's rules (Processes reference manual, "Receiving Exit
//! Signals"), in this order:
//! 1. a signal sent because of a link is ignored if the receiver no longer has that link
//!    (it unlinked, so no exit can arrive after `unlink` returns);
//! 2. `:kill` sent with `exit/2` (not through a link) terminates the receiver with `:killed`,
//!    even if it traps exits;
//! 3. a receiver trapping exits gets `{:EXIT, from, reason}` in its mailbox;
//! 4. `:normal` is ignored, unless a process sent it to itself with `exit/2`;
//! 5. otherwise the receiver exits with the signal's reason.
//!
//! Every delivery happens under the receiver's lock, and a process's own task is the only thing
//! that acts for it, so per sender-receiver order holds for messages and signals alike.

use std::sync::Arc;

use snow_shared::{Pid, Ref, Term};

use crate::node::{Node, Route};
use crate::proc::{wake_all, Monitoring, ProcShared, Status};
use crate::reason;
use crate::seam::{Backpressure, Monitored};

impl Node {
    /// Sends a message; never blocks, silently dropped if `to` is dead. A message to another node
    /// may come back with backpressure for the sending process (`from`).
    pub(crate) fn send_message(&self, from: Option<&Pid>, to: &Pid, msg: Term) -> Backpressure {
        // The hot path: delivered under the table's read lock, without cloning the process's
        // `Arc` (two atomic operations on a cache line the receiver also writes).
        if to.node() == self.name() {
            if to.creation() == self.creation() {
                let table = self.shard_of(to.id()).read().unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(p) = table.get(&to.id()) {
                    deliver_message_local(p, msg);
                }
            }
            return Backpressure::Clear;
        }
        self.with_router(|router| router.send(from, to, msg)).unwrap_or(Backpressure::Clear)
    }

    /// Sends an exit signal from `from` to `to`; `linked` says it comes from a link breaking.
    pub(crate) fn exit_signal(&self, from: &Pid, to: &Pid, reason: Term, linked: bool) -> Backpressure {
        match self.route(to) {
            Route::Local(p) => deliver_exit_local(&p, from, reason, linked),
            Route::Dead => {}
            Route::Remote => {
                if let Some(router) = self.router() {
                    return router.exit(from, to, reason, linked);
                }
            }
        }
        Backpressure::Clear
    }

    /// Tells `watcher` that the process it monitors with `reference` ended.
    pub(crate) fn down(&self, watcher: &Pid, reference: &Ref, target: &Pid, reason: Term) {
        match self.route(watcher) {
            Route::Local(p) => deliver_down_local(&p, reference, &Monitored::Pid(target.clone()), reason),
            Route::Dead => {}
            Route::Remote => {
                if let Some(router) = self.router() {
                    router.down(target, watcher, reference, reason);
                }
            }
        }
    }

    /// Removes the monitor `reference` that `watcher` holds on `target` from the target's side.
    pub(crate) fn forget_watcher(&self, watcher: &Pid, monitoring: &Monitoring, reference: &Ref) -> Backpressure {
        if monitoring.target.node() != self.name() {
            return match self.router() {
                Some(router) => router.demonitor(watcher, &monitoring.target, reference),
                None => Backpressure::Clear,
            };
        }
        if let Some(Route::Local(p)) = monitoring.holder().map(|holder| self.route(holder)) {
            if let Some(rel) = p.lock().rel_opt() {
                rel.watchers.retain(|(r, _)| r != reference);
            }
        }
        Backpressure::Clear
    }

    /// Links `me` (a live local process) with `other`. `false` when `other` does not exist.
    pub(crate) fn link_pids(&self, me: &ProcShared, other: &Pid) -> bool {
        if other == &me.pid {
            return true;
        }
        match self.route(other) {
            Route::Local(target) => {
                // Lock both in pid order so two processes linking to each other cannot deadlock.
                let (mut mine, mut theirs) = if me.pid.id() < target.pid.id() {
                    let a = me.lock();
                    (a, target.lock())
                } else {
                    let b = target.lock();
                    (me.lock(), b)
                };
                if !theirs.accepts_relations() {
                    return false;
                }
                mine.rel().links.insert(other.clone());
                theirs.rel().links.insert(me.pid.clone());
                true
            }
            Route::Dead => false,
            Route::Remote => match self.router() {
                Some(router) => {
                    me.lock().rel().links.insert(other.clone());
                    me.backpressure(router.link(&me.pid, other));
                    true
                }
                None => false,
            },
        }
    }

    /// Removes the link between `me` and `other` on both sides.
    pub(crate) fn unlink_pids(&self, me: &ProcShared, other: &Pid) {
        let had = me.lock().rel_opt().map(|rel| rel.links.remove(other)).unwrap_or(false);
        match self.route(other) {
            Route::Local(target) => {
                if let Some(rel) = target.lock().rel_opt() {
                    rel.links.remove(&me.pid);
                }
            }
            Route::Dead => {}
            Route::Remote => {
                if had {
                    if let Some(router) = self.router() {
                        me.backpressure(router.unlink(&me.pid, other));
                    }
                }
            }
        }
    }

    /// Makes `me` monitor `target` with a fresh reference. A target that does not exist gives an
    /// immediate `{:DOWN, ref, item, :noproc}`.
    pub(crate) fn monitor_target(&self, me: &ProcShared, target: Monitored) -> Ref {
        let reference = self.make_ref();
        // A name on this node is resolved now, as Erlang does; the `:DOWN` still names it.
        let resolved = match &target {
            Monitored::Name { name, node } if node == self.name() => self.whereis(name.as_str()),
            _ => None,
        };
        let monitoring = Monitoring { target, resolved };
        // Record our side first: a `:DOWN` is only delivered while the watcher still holds the
        // monitor, so the target must never be able to fire before this entry exists.
        me.lock().rel().monitoring.insert(reference.clone(), monitoring.clone());
        let attached = if monitoring.target.node() != self.name() {
            match self.router() {
                Some(router) => {
                    me.backpressure(router.monitor(&me.pid, &monitoring.target, &reference));
                    true
                }
                None => false,
            }
        } else {
            match monitoring.holder().map(|holder| self.route(holder)) {
                Some(Route::Local(p)) => {
                    let mut st = p.lock();
                    if st.accepts_relations() {
                        st.rel().watchers.push((reference.clone(), me.pid.clone()));
                        true
                    } else {
                        false
                    }
                }
                _ => false,
            }
        };
        if !attached {
            let reported = monitoring.holder().map_or_else(|| monitoring.target.clone(), |p| Monitored::Pid(p.clone()));
            deliver_down_local(me, &reference, &reported, reason::noproc());
        }
        reference
    }

    /// Registers a process that will be linked to `parent` before it runs (spawn_link).
    pub(crate) fn prelink(&self, parent: &ProcShared, child: &ProcShared) {
        parent.lock().rel().links.insert(child.pid.clone());
        child.lock().rel().links.insert(parent.pid.clone());
    }

    /// Makes `parent` monitor a process that has not started yet (spawn_monitor).
    pub(crate) fn premonitor(&self, parent: &ProcShared, child: &ProcShared) -> Ref {
        let reference = self.make_ref();
        parent.lock().rel().monitoring.insert(reference.clone(), Monitoring::of(Monitored::Pid(child.pid.clone())));
        child.lock().rel().watchers.push((reference.clone(), parent.pid.clone()));
        reference
    }
}

/// Appends `msg` to a local process's mailbox, unless the process is dead.
pub(crate) fn deliver_message_local(p: &ProcShared, msg: Term) {
    let waker = {
        let mut st = p.lock();
        if st.status == Status::Dead {
            return;
        }
        st.push(msg)
    };
    if let Some(w) = waker {
        w.wake();
    }
}

/// Applies an exit signal to a local process (see the module documentation for the rules).
pub(crate) fn deliver_exit_local(p: &Arc<ProcShared>, from: &Pid, reason: Term, linked: bool) {
    let mut st = p.lock();
    if st.status != Status::Running {
        return;
    }
    if linked && !st.rel_opt().is_some_and(|rel| rel.links.remove(from)) {
        return;
    }
    let wakers = if !linked && reason.is_atom("kill") {
        st.begin_exit(reason::killed(), &p.exiting)
    } else if st.trap_exit {
        [st.push(reason::exit_message(from, reason)), None]
    } else if reason.is_atom("normal") {
        if !linked && from == &p.pid {
            st.begin_exit(reason, &p.exiting)
        } else {
            [None, None]
        }
    } else {
        st.begin_exit(reason, &p.exiting)
    };
    drop(st);
    wake_all(wakers);
}

/// Delivers `{:DOWN, ref, item, reason}` to a local watcher if it still holds the monitor and
/// `reported` is what that monitor watches (see [`Monitoring::accepts`]); `item` is the pid or
/// `{name, node}` the monitor was set up with.
pub(crate) fn deliver_down_local(p: &ProcShared, reference: &Ref, reported: &Monitored, reason: Term) {
    let waker = {
        let mut st = p.lock();
        if st.status == Status::Dead {
            return;
        }
        let Some(rel) = st.rel_opt() else { return };
        let item = match rel.monitoring.get(reference) {
            Some(monitoring) if monitoring.accepts(reported) => monitoring.target.to_term(),
            _ => return,
        };
        rel.monitoring.remove(reference);
        st.push(reason::down_message(reference, item, reason))
    };
    if let Some(w) = waker {
        w.wake();
    }
}
