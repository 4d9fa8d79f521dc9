//! The global registry and process groups of a distributed node: the sans-IO values of
//! [`snow_shared::cluster`] ([`Global`], [`Groups`]) behind one lock, fed with requests of the
//! host's programs, the GLOBAL_* and GROUP_* messages of peers, connections going up and down
//! and process exits; what they emit is sent to peers and delivered to processes here.
//!
//! Two orders are kept. Messages to peers are queued while the lock is held, so every peer hears
//! of a node's changes in the order the values made them (a registration is never overtaken by
//! its withdrawal). Events for processes (watch requests, conflict notices, membership
//! notifications) are queued in the same critical section and acted on, in that order, by one
//! thread at a time after the lock is released, so that delivering them (which may stop a
//! process) never runs under the lock.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, TryLockError};
use std::time::{SystemTime, UNIX_EPOCH};

use snow_shared::cluster::global::{self, Global, GlobalConfig, GlobalEvent, Notice};
use snow_shared::cluster::groups::{self, GroupEvent, Groups};
use snow_shared::cluster::Transmit;
use snow_shared::dist::control::Control;
use snow_shared::dist::outbound::Lane;
use snow_shared::dist::Flags;
use snow_shared::{Atom, NodeName, Pid, Ref, Term};

use super::link::{Frame, Link};
use crate::error::{GlobalError, GroupError};
use crate::seam::{Host, ScopeMembers};
use crate::sync::lock;

/// The scope every distributed node runs from the start (Erlang's default `pg` scope).
pub const DEFAULT_SCOPE: &str = "pg";

/// Something a value asked of the driver, in the order it was asked.
enum Event {
    Global(GlobalEvent),
    Group(GroupEvent),
}

/// The two values and the events they emitted that no one has acted on yet.
struct Values {
    global: Global,
    groups: Groups,
    events: VecDeque<Event>,
}

/// What the cluster state needs of the driver that holds it: who this node is, its host, and
/// its connections.
pub(crate) trait ClusterContext {
    /// This node's name.
    fn node_name(&self) -> &NodeName;
    /// The host of this node's processes, while it exists.
    fn host(&self) -> Option<Arc<dyn Host>>;
    /// The connection to `node`, if up.
    fn conn(&self, node: &NodeName) -> Option<Arc<dyn Link>>;
}

/// Locks a mutex whose data stays consistent even if a holder panicked.
/// The cluster state of one node (held by its driver, which passes itself as the
/// [`ClusterContext`] of every operation).
pub(crate) struct ClusterState {
    values: Mutex<Values>,
    /// Held by the one thread acting on events; others leave theirs to it.
    acting: Mutex<()>,
}

/// Milliseconds since the Unix epoch, for the hybrid clock of registrations (a clock before the
/// epoch reads 0: the clock then orders registrations by their counter alone).
fn wall_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl ClusterState {
    pub fn new(me: &NodeName, creation: u32, config: GlobalConfig) -> ClusterState {
        let mut groups = Groups::new(me.clone(), creation);
        groups.add_scope(Atom::new(DEFAULT_SCOPE));
        ClusterState {
            values: Mutex::new(Values {
                global: Global::new(me.clone(), creation, config),
                groups,
                events: VecDeque::new(),
            }),
            acting: Mutex::new(()),
        }
    }
}

/// The capabilities the cluster values need from a peer.
pub(crate) const CLUSTER_FLAGS: Flags = Flags::GLOBAL.with(Flags::GROUPS);

impl ClusterState {
    /// Runs `change` on the values, sends what they emitted to the peers (in order, under the
    /// lock), then acts on the events they emitted.
    fn change<R>(&self, cx: &dyn ClusterContext, change: impl FnOnce(&mut Global, &mut Groups) -> R) -> R {
        let result = {
            let mut values = lock(&self.values);
            let values = &mut *values;
            let result = change(&mut values.global, &mut values.groups);
            while let Some(transmit) = values.global.poll_transmit() {
                Self::transmit(cx, transmit);
            }
            while let Some(transmit) = values.groups.poll_transmit() {
                Self::transmit(cx, transmit);
            }
            values.events.extend(std::iter::from_fn(|| values.global.poll_event()).map(Event::Global));
            values.events.extend(std::iter::from_fn(|| values.groups.poll_event()).map(Event::Group));
            result
        };
        self.act_on_events(cx);
        result
    }

    /// Queues one message for its recipients: encoded once, on the urgent lane of each connection
    /// (so a registration or a join reaches a peer before messages its process sends after it).
    /// A recipient whose connection just went is skipped: its `node_down` is on its way.
    fn transmit(cx: &dyn ClusterContext, transmit: Transmit) {
        let bytes = transmit.message.to_bytes();
        for node in &transmit.to {
            if let Some(conn) = cx.conn(node) {
                // Never refused: no ceiling for the runtime's own signals.
                let _ = conn.push(Lane::Urgent, Frame::Encoded(bytes.clone()), None);
            }
        }
    }

    /// Acts on the queued events, one at a time and in order, unless another thread is doing so
    /// (it will act on these too).
    fn act_on_events(&self, cx: &dyn ClusterContext) {
        loop {
            let _acting = match self.acting.try_lock() {
                Ok(guard) => guard,
                Err(TryLockError::WouldBlock) => return,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
            };
            loop {
                // Its own statement: the guard is dropped before acting (a `while let` would hold
                // it through the body, and acting may change the values again: a watched process
                // that is already gone is treated as exited at once).
                let next = lock(&self.values).events.pop_front();
                let Some(event) = next else { break };
                self.act(cx, event);
            }
            drop(_acting);
            // An event queued after our last look, by a thread that found us acting.
            if lock(&self.values).events.is_empty() {
                return;
            }
        }
    }

    fn act(&self, cx: &dyn ClusterContext, event: Event) {
        let Some(host) = cx.host() else { return };
        match event {
            Event::Global(GlobalEvent::Watch(pid)) | Event::Group(GroupEvent::Watch(pid)) => {
                // A process that is already gone is treated as exited (its claims and memberships
                // are undone now).
                if !host.notify_exit(&pid) {
                    self.process_exited(cx, &pid);
                }
            }
            // The exit watch stays: an exit of a process the values no longer know is ignored.
            Event::Global(GlobalEvent::Unwatch(_)) | Event::Group(GroupEvent::Unwatch(_)) => {}
            Event::Global(GlobalEvent::NameLost(lost)) => {
                log::info!(
                    "{}: {} lost the global name {} to {} ({:?})",
                    cx.node_name(),
                    lost.pid,
                    lost.name,
                    lost.winner,
                    lost.cause
                );
                deliver_notice(&*host, &lost);
            }
            Event::Group(GroupEvent::Notify(n)) => host.deliver_message(&n.watcher, n.message()),
        }
    }

    /// A connection came up: the values learn of the peer (and send it what it must know).
    pub fn node_up(&self, cx: &dyn ClusterContext, node: &NodeName, creation: u32, flags: Flags) {
        self.change(cx, |global, groups| {
            global.node_up(node.clone(), creation, flags);
            groups.node_up(node.clone(), creation, flags);
        });
    }

    /// A node is unreachable: its names and members are dropped here.
    pub fn node_down(&self, cx: &dyn ClusterContext, node: &NodeName) {
        self.change(cx, |global, groups| {
            global.node_down(node);
            groups.node_down(node);
        });
    }

    /// A local process exited: its names and memberships are withdrawn everywhere.
    pub fn process_exited(&self, cx: &dyn ClusterContext, pid: &Pid) {
        self.change(cx, |global, groups| {
            global.process_exited(pid);
            groups.process_exited(pid);
        });
    }

    /// A GLOBAL_* or GROUP_* message from `peer`. An error means the peer broke the protocol.
    pub fn message(&self, cx: &dyn ClusterContext, peer: &NodeName, msg: Control) -> Result<(), String> {
        let global_message = matches!(
            msg,
            Control::GlobalRegister(_)
                | Control::GlobalUnregister { .. }
                | Control::GlobalSync { .. }
                | Control::GlobalConflict { .. }
        );
        self.change(cx, |global, groups| {
            if global_message {
                global.handle_message(peer, msg)
            } else {
                groups.handle_message(peer, msg)
            }
        })
        .map_err(|e| e.to_string())
    }

    /// Whether `pid` is a live local process that will be reported when it exits.
    fn watchable(cx: &dyn ClusterContext, pid: &Pid) -> bool {
        pid.node() == cx.node_name() && cx.host().is_some_and(|host| host.notify_exit(pid))
    }
}

/// Delivers the notice of a lost name, if any, to the process that lost it (as an exit signal
/// from the winner, or a message).
fn deliver_notice(host: &dyn Host, lost: &global::NameLost) {
    match &lost.notice {
        Some(Notice::Exit(reason)) => host.deliver_exit(&lost.winner, &lost.pid, reason.clone(), false),
        Some(Notice::Message(msg)) => host.deliver_message(&lost.pid, msg.clone()),
        None => {}
    }
}

/// The cluster operations as the host sees them (the seam's `Cluster`, which the driver's
/// service implements with these): each a change of the values, or a read.
impl ClusterState {
    /// Registers `name` for `pid` (replacing its holder with `replace`).
    pub fn register(&self, cx: &dyn ClusterContext, name: Term, pid: &Pid, replace: bool) -> Result<(), GlobalError> {
        if pid.node() == cx.node_name() && !Self::watchable(cx, pid) {
            return Err(GlobalError::NotAlive(pid.clone()));
        }
        let now = wall_ms();
        self.change(cx, |global, _| {
            if replace {
                global.re_register_name(name, pid.clone(), now)
            } else {
                global.register_name(name, pid.clone(), now)
            }
        })
        .map_err(GlobalError::from)
    }

    /// Withdraws `name` if a process of this node holds it.
    pub fn unregister_name(&self, cx: &dyn ClusterContext, name: &Term) -> Result<(), GlobalError> {
        self.change(cx, |global, _| global.unregister_name(name)).map_err(GlobalError::from)
    }

    fn read<R>(&self, read: impl FnOnce(&Global, &Groups) -> R) -> R {
        let values = lock(&self.values);
        read(&values.global, &values.groups)
    }

    /// The process registered as `name`, as this node knows it.
    pub fn whereis_name(&self, name: &Term) -> Option<Pid> {
        self.read(|global, _| global.whereis_name(name).cloned())
    }

    /// Every registered name, sorted.
    pub fn registered_names(&self) -> Vec<Term> {
        let mut names = self.read(|global, _| global.registered_names().cloned().collect::<Vec<_>>());
        names.sort_unstable();
        names
    }

    /// Starts taking part in `scope`; whether it was not running yet.
    pub fn start_scope(&self, cx: &dyn ClusterContext, scope: &Atom) -> bool {
        self.change(cx, |_, groups| groups.add_scope(scope.clone()))
    }

    /// Adds live local processes to `group`.
    pub fn join(&self, cx: &dyn ClusterContext, scope: &Atom, group: Term, pids: &[Pid]) -> Result<(), GroupError> {
        if let Some(dead) = pids.iter().find(|pid| pid.node() == cx.node_name() && !Self::watchable(cx, pid)) {
            return Err(GroupError::NotAlive(dead.clone()));
        }
        self.change(cx, |_, groups| groups.join(scope, group, pids)).map_err(GroupError::from)
    }

    /// Removes local processes from `group`.
    pub fn leave(&self, cx: &dyn ClusterContext, scope: &Atom, group: &Term, pids: &[Pid]) -> Result<(), GroupError> {
        self.change(cx, |_, groups| groups.leave(scope, group, pids)).map_err(GroupError::from)
    }

    /// The members of `group` on every node, as this node knows them.
    pub fn members(&self, scope: &Atom, group: &Term) -> Vec<Pid> {
        self.read(|_, groups| groups.members(scope, group).cloned().collect())
    }

    /// The members of `group` on this node.
    pub fn local_members(&self, scope: &Atom, group: &Term) -> Vec<Pid> {
        self.read(|_, groups| groups.local_members(scope, group).to_vec())
    }

    /// The groups of `scope` with members anywhere, sorted.
    pub fn which_groups(&self, scope: &Atom) -> Vec<Term> {
        let mut all = self.read(|_, groups| groups.which_groups(scope).cloned().collect::<Vec<_>>());
        all.sort_unstable();
        all
    }

    /// The groups of `scope` with members on this node, sorted.
    pub fn which_local_groups(&self, scope: &Atom) -> Vec<Term> {
        let mut local = self.read(|_, groups| groups.which_local_groups(scope).cloned().collect::<Vec<_>>());
        local.sort_unstable();
        local
    }

    /// Subscribes `watcher` to every change in `scope`.
    pub fn monitor_scope(
        &self,
        cx: &dyn ClusterContext,
        scope: &Atom,
        watcher: &Pid,
    ) -> Result<(Ref, ScopeMembers), GroupError> {
        let reference = Self::subscription_ref(cx, watcher)?;
        let now = self.change(cx, |_, groups| groups.monitor_scope(scope, watcher.clone(), reference.clone()))?;
        Ok((reference, now))
    }

    /// Subscribes `watcher` to changes of `group`.
    pub fn monitor_group(
        &self,
        cx: &dyn ClusterContext,
        scope: &Atom,
        group: Term,
        watcher: &Pid,
    ) -> Result<(Ref, Vec<Pid>), GroupError> {
        let reference = Self::subscription_ref(cx, watcher)?;
        let now =
            self.change(cx, |_, groups| groups.monitor_group(scope, group, watcher.clone(), reference.clone()))?;
        Ok((reference, now))
    }

    /// Ends the subscription `reference`; whether it existed.
    pub fn demonitor_group(&self, cx: &dyn ClusterContext, scope: &Atom, reference: &Ref) -> bool {
        self.change(cx, |_, groups| groups.demonitor(scope, reference))
    }

    /// A fresh reference for a subscription of the live local `watcher`.
    fn subscription_ref(cx: &dyn ClusterContext, watcher: &Pid) -> Result<Ref, GroupError> {
        if watcher.node() != cx.node_name() {
            return Err(GroupError::NotLocal(watcher.clone()));
        }
        let host = cx.host().ok_or(GroupError::NotDistributed)?;
        if !host.notify_exit(watcher) {
            return Err(GroupError::NotAlive(watcher.clone()));
        }
        Ok(host.make_ref())
    }
}

impl From<global::RegisterError> for GlobalError {
    fn from(e: global::RegisterError) -> GlobalError {
        match e {
            global::RegisterError::Taken { name, holder } => GlobalError::Taken { name, holder },
            global::RegisterError::NotLocal { pid } => GlobalError::NotLocal(pid),
        }
    }
}

impl From<global::UnregisterError> for GlobalError {
    fn from(e: global::UnregisterError) -> GlobalError {
        match e {
            global::UnregisterError::NotLocal { name, holder } => GlobalError::HeldElsewhere { name, holder },
        }
    }
}

impl From<groups::GroupError> for GroupError {
    fn from(e: groups::GroupError) -> GroupError {
        match e {
            groups::GroupError::NoScope { scope } => GroupError::NoScope(scope),
            groups::GroupError::NotLocal { pid } => GroupError::NotLocal(pid),
            groups::GroupError::NotJoined { group } => GroupError::NotJoined(group),
        }
    }
}
