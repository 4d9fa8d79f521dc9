//! How one process's action reaches another: messages, exit signals, links and monitors, routed
//! to a local process (through its [`ProcessEntry`] operations) or to the distribution layer.
//!
//! Every delivery happens under the receiver's lock, and a process's own task is the only thing
//! that acts for it, so per sender-receiver order holds for messages and signals alike. The rules
//! a receiver applies to an exit signal are [`ProcessEntry::exit_signal`]'s.

use std::sync::Arc;
use std::time::Duration;

use snow_shared::{Pid, Ref, Term};

use super::entry::{Monitoring, ProcessEntry};
use super::node_state::NodeState;
use super::table::Route;
use crate::reason;
use crate::seam::{Backpressure, Monitored};
use crate::timers::TimerRef;

/// Sends a message; never blocks, dropped if `to` is dead. A message to another node may come
/// back with backpressure for the sending process (`from`).
pub(crate) fn send(node: &NodeState, from: Option<&Pid>, to: &Pid, msg: Term) -> Backpressure {
    if to.node() == node.table.name() {
        // The hot path: delivered under the table's read lock, without cloning the entry's `Arc`.
        node.table.with(to, |p| p.deliver(msg));
        return Backpressure::Clear;
    }
    node.with_distribution(|d| d.send(from, to, msg)).unwrap_or(Backpressure::Clear)
}

/// Sends an exit signal from `from` to `to`; `linked` says it comes from a link breaking.
pub(crate) fn exit(node: &NodeState, from: &Pid, to: &Pid, reason: Term, linked: bool) -> Backpressure {
    match node.table.route(to) {
        Route::Local(p) => p.exit_signal(from, reason, linked),
        Route::Dead => {}
        Route::Remote => {
            return node.with_distribution(|d| d.exit(from, to, reason, linked)).unwrap_or(Backpressure::Clear)
        }
    }
    Backpressure::Clear
}

/// Tells `watcher` that `target`, which it monitors with `reference`, ended.
pub(crate) fn down(node: &NodeState, watcher: &Pid, reference: &Ref, target: &Pid, reason: Term) {
    match node.table.route(watcher) {
        Route::Local(p) => p.down(reference, &Monitored::Pid(target.clone()), reason),
        Route::Dead => {}
        Route::Remote => {
            node.with_distribution(|d| d.down(target, watcher, reference, reason));
        }
    }
}

/// Removes the monitor `reference` that `watcher` holds from the monitored side.
pub(crate) fn forget_watcher(
    node: &NodeState,
    watcher: &Pid,
    monitoring: &Monitoring,
    reference: &Ref,
) -> Backpressure {
    if monitoring.target.node() != node.table.name() {
        return node
            .with_distribution(|d| d.demonitor(watcher, &monitoring.target, reference))
            .unwrap_or(Backpressure::Clear);
    }
    if let Some(p) = monitoring.holder().and_then(|holder| node.table.get(holder)) {
        p.remove_watcher(reference);
    }
    Backpressure::Clear
}

/// Sends `msg` to `to` after `delay`, unless the returned timer is cancelled first; dropped if
/// `to` has exited by then (or the node is gone).
pub(crate) fn send_after(node: &Arc<NodeState>, to: &Pid, delay: Duration, msg: Term) -> TimerRef {
    let node = Arc::downgrade(node);
    let to = to.clone();
    crate::timers::after(delay, move || {
        if let Some(node) = node.upgrade() {
            let _ = send(&node, None, &to, msg);
        }
    })
}

/// Links `me` (a live local process) with `other`. `false` when `other` does not exist.
pub(crate) fn link(node: &NodeState, me: &ProcessEntry, other: &Pid) -> bool {
    if other == me.pid() {
        return true;
    }
    match node.table.route(other) {
        Route::Local(target) => ProcessEntry::link_pair(me, &target),
        Route::Dead => false,
        Route::Remote => match node.distribution() {
            Some(dist) => {
                me.add_link(other);
                me.backpressure(dist.link(me.pid(), other));
                true
            }
            None => false,
        },
    }
}

/// Removes the link between `me` and `other` on both sides.
pub(crate) fn unlink(node: &NodeState, me: &ProcessEntry, other: &Pid) {
    let had = me.remove_link(other);
    match node.table.route(other) {
        Route::Local(target) => {
            target.remove_link(me.pid());
        }
        Route::Dead => {}
        Route::Remote => {
            if had {
                if let Some(dist) = node.distribution() {
                    me.backpressure(dist.unlink(me.pid(), other));
                }
            }
        }
    }
}

/// Makes `me` monitor `target` with a fresh reference. A target that does not exist gives an
/// immediate `{:DOWN, ref, item, :noproc}`.
pub(crate) fn monitor(node: &NodeState, me: &ProcessEntry, target: Monitored) -> Ref {
    let reference = node.table.make_ref();
    // A name on this node is resolved now, as Erlang does; the `:DOWN` still names it.
    let resolved = match &target {
        Monitored::Name { name, node: at } if at == node.table.name() => {
            node.registry.whereis(&node.table, name.as_str())
        }
        _ => None,
    };
    let monitoring = Monitoring { target, resolved };
    // Record our side first: a `:DOWN` is only delivered while the watcher still holds the
    // monitor, so the target must never be able to fire before this entry exists.
    me.add_monitoring(&reference, monitoring.clone());
    let attached = if monitoring.target.node() != node.table.name() {
        match node.distribution() {
            Some(dist) => {
                me.backpressure(dist.monitor(me.pid(), &monitoring.target, &reference));
                true
            }
            None => false,
        }
    } else {
        monitoring
            .holder()
            .and_then(|holder| node.table.get(holder))
            .is_some_and(|p| p.add_watcher(&reference, me.pid()))
    };
    if !attached {
        let reported = monitoring.holder().map_or_else(|| monitoring.target.clone(), |p| Monitored::Pid(p.clone()));
        me.down(&reference, &reported, reason::noproc());
    }
    reference
}

/// Links `parent` with a process that has not started yet (spawn_link).
pub(crate) fn prelink(parent: &ProcessEntry, child: &ProcessEntry) {
    parent.add_link(child.pid());
    child.add_link(parent.pid());
}

/// Makes `parent` monitor a process that has not started yet (spawn_monitor).
pub(crate) fn premonitor(node: &NodeState, parent: &ProcessEntry, child: &ProcessEntry) -> Ref {
    let reference = node.table.make_ref();
    parent.add_monitoring(&reference, Monitoring::of(Monitored::Pid(child.pid().clone())));
    child.add_watcher(&reference, parent.pid());
    reference
}
