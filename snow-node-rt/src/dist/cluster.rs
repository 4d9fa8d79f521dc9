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
use std::sync::{Mutex, TryLockError};
use std::time::{SystemTime, UNIX_EPOCH};

use snow_shared::cluster::global::{self, Global, GlobalConfig, GlobalEvent, Notice};
use snow_shared::cluster::groups::{self, GroupEvent, Groups};
use snow_shared::cluster::Transmit;
use snow_shared::dist::control::Control;
use snow_shared::dist::outbound::Lane;
use snow_shared::dist::Flags;
use snow_shared::{Atom, NodeName, Pid, Ref, Term};

use super::service::Service;
use super::state::{lock, Driver};
use crate::error::{GlobalError, GroupError};
use crate::seam::{Cluster, Host, ScopeMembers};

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

/// The cluster state of one node (held by its [`Driver`]).
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

impl Driver {
    /// Runs `change` on the values, sends what they emitted to the peers (in order, under the
    /// lock), then acts on the events they emitted.
    fn cluster<R>(&self, change: impl FnOnce(&mut Global, &mut Groups) -> R) -> R {
        let result = {
            let mut values = lock(&self.cluster.values);
            let values = &mut *values;
            let result = change(&mut values.global, &mut values.groups);
            while let Some(transmit) = values.global.poll_transmit() {
                self.transmit(transmit);
            }
            while let Some(transmit) = values.groups.poll_transmit() {
                self.transmit(transmit);
            }
            values.events.extend(std::iter::from_fn(|| values.global.poll_event()).map(Event::Global));
            values.events.extend(std::iter::from_fn(|| values.groups.poll_event()).map(Event::Group));
            result
        };
        self.act_on_cluster_events();
        result
    }

    /// Queues one message for its recipients: encoded once, on the urgent lane of each connection
    /// (so a registration or a join reaches a peer before messages its process sends after it).
    /// A recipient whose connection just went is skipped: its `node_down` is on its way.
    fn transmit(&self, transmit: Transmit) {
        let bytes = transmit.message.to_bytes();
        for node in &transmit.to {
            if let Some(conn) = self.conn(node) {
                // Never refused: no ceiling for the runtime's own signals.
                let _ = conn.push(Lane::Urgent, bytes.clone(), None);
            }
        }
    }

    /// Acts on the queued events, one at a time and in order, unless another thread is doing so
    /// (it will act on these too).
    fn act_on_cluster_events(&self) {
        loop {
            let _acting = match self.cluster.acting.try_lock() {
                Ok(guard) => guard,
                Err(TryLockError::WouldBlock) => return,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
            };
            while let Some(event) = lock(&self.cluster.values).events.pop_front() {
                self.act(event);
            }
            drop(_acting);
            // An event queued after our last look, by a thread that found us acting.
            if lock(&self.cluster.values).events.is_empty() {
                return;
            }
        }
    }

    fn act(&self, event: Event) {
        let Some(host) = self.host() else { return };
        match event {
            Event::Global(GlobalEvent::Watch(pid)) | Event::Group(GroupEvent::Watch(pid)) => {
                // A process that is already gone is treated as exited (its claims and memberships
                // are undone now).
                if !host.notify_exit(&pid) {
                    self.cluster_process_exited(&pid);
                }
            }
            // The exit watch stays: an exit of a process the values no longer know is ignored.
            Event::Global(GlobalEvent::Unwatch(_)) | Event::Group(GroupEvent::Unwatch(_)) => {}
            Event::Global(GlobalEvent::NameLost(lost)) => {
                log::info!(
                    "{}: {} lost the global name {} to {} ({:?})",
                    self.name,
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
    pub fn cluster_node_up(&self, node: &NodeName, creation: u32, flags: Flags) {
        self.cluster(|global, groups| {
            global.node_up(node.clone(), creation, flags);
            groups.node_up(node.clone(), creation, flags);
        });
    }

    /// A node is unreachable: its names and members are dropped here.
    pub fn cluster_node_down(&self, node: &NodeName) {
        self.cluster(|global, groups| {
            global.node_down(node);
            groups.node_down(node);
        });
    }

    /// A local process exited: its names and memberships are withdrawn everywhere.
    pub fn cluster_process_exited(&self, pid: &Pid) {
        self.cluster(|global, groups| {
            global.process_exited(pid);
            groups.process_exited(pid);
        });
    }

    /// A GLOBAL_* or GROUP_* message from `peer`. An error means the peer broke the protocol.
    pub fn cluster_message(&self, peer: &NodeName, msg: Control) -> Result<(), String> {
        let global_message = matches!(
            msg,
            Control::GlobalRegister(_)
                | Control::GlobalUnregister { .. }
                | Control::GlobalSync { .. }
                | Control::GlobalConflict { .. }
        );
        self.cluster(
            |global, groups| {
                if global_message {
                    global.handle_message(peer, msg)
                } else {
                    groups.handle_message(peer, msg)
                }
            },
        )
        .map_err(|e| e.to_string())
    }

    /// Whether `pid` is a live local process that will be reported when it exits.
    fn watchable(&self, pid: &Pid) -> bool {
        pid.node() == &self.name && self.host().is_some_and(|host| host.notify_exit(pid))
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

/// The cluster operations as the host sees them: each a change of the values (or a read),
/// through [`Driver::cluster`].
impl Service {
    fn register(&self, name: Term, pid: &Pid, replace: bool) -> Result<(), GlobalError> {
        if pid.node() == &self.0.name && !self.0.watchable(pid) {
            return Err(GlobalError::NotAlive(pid.clone()));
        }
        let now = wall_ms();
        self.0
            .cluster(|global, _| {
                if replace {
                    global.re_register_name(name, pid.clone(), now)
                } else {
                    global.register_name(name, pid.clone(), now)
                }
            })
            .map_err(GlobalError::from)
    }

    fn read<R>(&self, read: impl FnOnce(&Global, &Groups) -> R) -> R {
        let values = lock(&self.0.cluster.values);
        read(&values.global, &values.groups)
    }
}

impl Cluster for Service {
    fn register_name(&self, name: Term, pid: &Pid) -> Result<(), GlobalError> {
        self.register(name, pid, false)
    }

    fn re_register_name(&self, name: Term, pid: &Pid) -> Result<(), GlobalError> {
        self.register(name, pid, true)
    }

    fn unregister_name(&self, name: &Term) -> Result<(), GlobalError> {
        self.0.cluster(|global, _| global.unregister_name(name)).map_err(GlobalError::from)
    }

    fn whereis_name(&self, name: &Term) -> Option<Pid> {
        self.read(|global, _| global.whereis_name(name).cloned())
    }

    fn registered_names(&self) -> Vec<Term> {
        let mut names = self.read(|global, _| global.registered_names().cloned().collect::<Vec<_>>());
        names.sort_unstable();
        names
    }

    fn start_scope(&self, scope: &Atom) -> bool {
        self.0.cluster(|_, groups| groups.add_scope(scope.clone()))
    }

    fn join(&self, scope: &Atom, group: Term, pids: &[Pid]) -> Result<(), GroupError> {
        if let Some(dead) = pids.iter().find(|pid| pid.node() == &self.0.name && !self.0.watchable(pid)) {
            return Err(GroupError::NotAlive(dead.clone()));
        }
        self.0.cluster(|_, groups| groups.join(scope, group, pids)).map_err(GroupError::from)
    }

    fn leave(&self, scope: &Atom, group: &Term, pids: &[Pid]) -> Result<(), GroupError> {
        self.0.cluster(|_, groups| groups.leave(scope, group, pids)).map_err(GroupError::from)
    }

    fn members(&self, scope: &Atom, group: &Term) -> Vec<Pid> {
        self.read(|_, groups| groups.members(scope, group).cloned().collect())
    }

    fn local_members(&self, scope: &Atom, group: &Term) -> Vec<Pid> {
        self.read(|_, groups| groups.local_members(scope, group).to_vec())
    }

    fn which_groups(&self, scope: &Atom) -> Vec<Term> {
        let mut all = self.read(|_, groups| groups.which_groups(scope).cloned().collect::<Vec<_>>());
        all.sort_unstable();
        all
    }

    fn which_local_groups(&self, scope: &Atom) -> Vec<Term> {
        let mut local = self.read(|_, groups| groups.which_local_groups(scope).cloned().collect::<Vec<_>>());
        local.sort_unstable();
        local
    }

    fn monitor_scope(&self, scope: &Atom, watcher: &Pid) -> Result<(Ref, ScopeMembers), GroupError> {
        let reference = self.subscription_ref(watcher)?;
        let now = self.0.cluster(|_, groups| groups.monitor_scope(scope, watcher.clone(), reference.clone()))?;
        Ok((reference, now))
    }

    fn monitor_group(&self, scope: &Atom, group: Term, watcher: &Pid) -> Result<(Ref, Vec<Pid>), GroupError> {
        let reference = self.subscription_ref(watcher)?;
        let now = self.0.cluster(|_, groups| groups.monitor_group(scope, group, watcher.clone(), reference.clone()))?;
        Ok((reference, now))
    }

    fn demonitor_group(&self, scope: &Atom, reference: &Ref) -> bool {
        self.0.cluster(|_, groups| groups.demonitor(scope, reference))
    }
}

impl Service {
    /// A fresh reference for a subscription of the live local `watcher`.
    fn subscription_ref(&self, watcher: &Pid) -> Result<Ref, GroupError> {
        if watcher.node() != &self.0.name {
            return Err(GroupError::NotLocal(watcher.clone()));
        }
        let host = self.0.host().ok_or(GroupError::NotDistributed)?;
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
