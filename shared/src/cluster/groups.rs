//! Process groups of one node (Erlang's `pg`, with scopes): which processes of the cluster are in
//! which group, as this node knows it, kept in step with its peers by the GROUP_* messages
//! (PROTOCOL.md 4.3.6). Eventually consistent; see the [module overview](super).
//!
//! Every node is the authority for its own processes' memberships: it alone announces them
//! (GROUP_JOIN, GROUP_LEAVE, and GROUP_SYNC answering a peer's GROUP_DISCOVER). Scopes are
//! independent: a node takes part in a scope only once it runs it ([`Groups::add_scope`]), learns
//! which peers run it from their GROUP_DISCOVER, and sends a scope's messages only to them.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use super::peers::{PeerSet, PeerUp};
use super::pid_set::PidSet;
use super::{PeerError, Transmit};
use crate::atom::Atom;
use crate::dist::control::Control;
use crate::dist::Flags;
use crate::name::NodeName;
use crate::pid::{Pid, Ref};
use crate::term::Term;

/// Whether processes joined or left.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Change {
    /// They joined the group.
    Join,
    /// They left it (left, exited, or their node went down).
    Leave,
}

/// A membership change for a local subscriber of [`Groups::monitor_scope`] or
/// [`Groups::monitor_group`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The subscriber.
    pub watcher: Pid,
    /// The subscription's reference.
    pub reference: Ref,
    /// The scope.
    pub scope: Atom,
    /// The group.
    pub group: Term,
    /// Joined or left.
    pub change: Change,
    /// The processes (each at most once).
    pub pids: Vec<Pid>,
}

impl Notification {
    /// The message the subscriber receives: `{reference, :join | :leave, group, pids}`, as pg's.
    pub fn message(&self) -> Term {
        let change = match self.change {
            Change::Join => "join",
            Change::Leave => "leave",
        };
        Term::tuple([
            Term::Ref(self.reference.clone()),
            Term::atom(change),
            self.group.clone(),
            Term::List(self.pids.iter().cloned().map(Term::Pid).collect()),
        ])
    }
}

/// Something the driver must act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupEvent {
    /// A local process is now a member of some group or a subscriber: watch it (a monitor) and
    /// call [`Groups::process_exited`] when it exits. A monitor on a process that is already dead
    /// fires at once; the driver must treat that as an exit too, so a join that raced with its
    /// process's exit is still undone.
    Watch(Pid),
    /// A live local process is in no group and subscribes to nothing any more.
    Unwatch(Pid),
    /// Deliver [`Notification::message`] to the subscriber.
    Notify(Notification),
}

/// Why a local request was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// The scope is not running on this node.
    #[error("process-group scope {scope} is not running on this node; start it first")]
    NoScope {
        /// The scope.
        scope: Atom,
    },
    /// Only local processes join, leave or subscribe (as in pg).
    #[error("{pid} is not a process of this node; only a node's own processes join its groups")]
    NotLocal {
        /// The process.
        pid: Pid,
    },
    /// None of the processes was in the group (pg's `not_joined`).
    #[error("none of the processes is a member of group {group}")]
    NotJoined {
        /// The group.
        group: Term,
    },
}

/// One group's members, per node. Only nodes with members have an entry; a group with no members
/// is removed.
#[derive(Debug, Default)]
struct Group {
    nodes: Vec<(NodeName, PidSet)>,
}

impl Group {
    fn on(&self, node: &NodeName) -> Option<&PidSet> {
        self.nodes.iter().find(|(n, _)| n == node).map(|(_, set)| set)
    }

    fn on_mut(&mut self, node: &NodeName) -> &mut PidSet {
        let at = match self.nodes.iter().position(|(n, _)| n == node) {
            Some(at) => at,
            None => {
                self.nodes.push((node.clone(), PidSet::default()));
                self.nodes.len() - 1
            }
        };
        &mut self.nodes[at].1
    }

    /// Drops `node`'s entry if it has no members left.
    fn prune(&mut self, node: &NodeName) {
        self.nodes.retain(|(n, set)| n != node || !set.is_empty());
    }

    fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// A local subscriber.
#[derive(Clone, Debug)]
struct Watcher {
    pid: Pid,
    reference: Ref,
}

/// One scope as this node runs it.
#[derive(Debug, Default)]
struct Scope {
    /// Peers known to run the scope: they get its messages.
    peers: BTreeSet<NodeName>,
    groups: HashMap<Term, Group>,
    scope_watchers: Vec<Watcher>,
    group_watchers: HashMap<Term, Vec<Watcher>>,
}

/// What a local process is registered for, so its exit can undo it.
#[derive(Debug, Default)]
struct LocalProcess {
    memberships: Vec<(Atom, Term)>,
    subscriptions: Vec<(Atom, Ref)>,
}

impl LocalProcess {
    fn is_empty(&self) -> bool {
        self.memberships.is_empty() && self.subscriptions.is_empty()
    }
}

/// The process groups of one node: a deterministic value the driver feeds with local requests,
/// peer messages, connection changes and process exits, and drains of messages
/// ([`Groups::poll_transmit`]) and events ([`Groups::poll_event`]).
///
/// Membership is a set: a process is in a group or not, and joining twice is the same as once
/// (pg counts joins, and a process that joined twice must leave twice; a broadcast would reach it
/// twice).
#[derive(Debug)]
pub struct Groups {
    me: NodeName,
    creation: u32,
    peers: PeerSet,
    scopes: HashMap<Atom, Scope>,
    local: HashMap<Pid, LocalProcess>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<GroupEvent>,
}

impl Groups {
    /// The groups of node `me` in its start `creation`, with no scope running and no peers.
    pub fn new(me: NodeName, creation: u32) -> Groups {
        Groups {
            me,
            creation,
            peers: PeerSet::new(Flags::GROUPS),
            scopes: HashMap::new(),
            local: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Starts taking part in `scope` (pg's `start_link(Scope)`): peers that run it are asked for
    /// their members (GROUP_DISCOVER). Whether it was not running yet.
    pub fn add_scope(&mut self, scope: Atom) -> bool {
        if self.scopes.contains_key(&scope) {
            return false;
        }
        self.scopes.insert(scope.clone(), Scope::default());
        let to: Vec<NodeName> = self.peers.nodes().cloned().collect();
        if !to.is_empty() {
            self.transmits.push_back(Transmit { to, message: Control::GroupDiscover { scope } });
        }
        true
    }

    /// Whether `scope` runs on this node.
    pub fn has_scope(&self, scope: &Atom) -> bool {
        self.scopes.contains_key(scope)
    }

    /// Adds local processes to `group` in `scope` (pg's `join/3`) and announces them to the peers
    /// that run the scope. Processes already in the group are left as they are. All or nothing:
    /// if one pid is not local, nothing changes.
    pub fn join(&mut self, scope: &Atom, group: Term, pids: &[Pid]) -> Result<(), GroupError> {
        self.check_request(scope, pids)?;
        if pids.is_empty() {
            return Ok(());
        }
        let me = self.me.clone();
        let members = self.scope_mut(scope).groups.entry(group.clone()).or_default().on_mut(&me);
        let added: Vec<Pid> = pids.iter().filter(|pid| members.insert((*pid).clone())).cloned().collect();
        if added.is_empty() {
            return Ok(());
        }
        for pid in &added {
            self.local_process(pid).memberships.push((scope.clone(), group.clone()));
        }
        self.notify(scope, &group, Change::Join, &added);
        self.send_to_scope(scope, Control::GroupJoin { scope: scope.clone(), group, pids: added });
        Ok(())
    }

    /// Removes local processes from `group` in `scope` (pg's `leave/3`) and announces it.
    /// `NotJoined` if none of them was a member.
    pub fn leave(&mut self, scope: &Atom, group: &Term, pids: &[Pid]) -> Result<(), GroupError> {
        self.check_request(scope, pids)?;
        let me = self.me.clone();
        let removed = self.remove_members(scope, group, &me, pids);
        if removed.is_empty() {
            return Err(GroupError::NotJoined { group: group.clone() });
        }
        for pid in &removed {
            self.forget_membership(pid, scope, group);
        }
        self.notify(scope, group, Change::Leave, &removed);
        self.send_to_scope(scope, Control::GroupLeave { scope: scope.clone(), group: group.clone(), pids: removed });
        Ok(())
    }

    /// The members of `group` in `scope` on every node, as known here (pg's `get_members/2`):
    /// two hash lookups and no allocation. Empty for an unknown scope or group.
    pub fn members(&self, scope: &Atom, group: &Term) -> impl Iterator<Item = &Pid> {
        self.group(scope, group).into_iter().flat_map(|g| g.nodes.iter().flat_map(|(_, set)| set.as_slice()))
    }

    /// The members of `group` in `scope`, per node: what a broadcast needs to send one message
    /// per node. Each node appears once, with at least one pid.
    pub fn members_by_node(&self, scope: &Atom, group: &Term) -> impl Iterator<Item = (&NodeName, &[Pid])> {
        self.group(scope, group).into_iter().flat_map(|g| g.nodes.iter().map(|(node, set)| (node, set.as_slice())))
    }

    /// Number of members of `group` in `scope` on every node.
    pub fn member_count(&self, scope: &Atom, group: &Term) -> usize {
        self.group(scope, group).map_or(0, |g| g.nodes.iter().map(|(_, set)| set.len()).sum())
    }

    /// The members of `group` in `scope` on this node (pg's `get_local_members/2`).
    pub fn local_members(&self, scope: &Atom, group: &Term) -> &[Pid] {
        self.group(scope, group).and_then(|g| g.on(&self.me)).map_or(&[], PidSet::as_slice)
    }

    /// The groups of `scope` with at least one member anywhere (pg's `which_groups/1`).
    pub fn which_groups(&self, scope: &Atom) -> impl Iterator<Item = &Term> {
        self.scopes.get(scope).into_iter().flat_map(|s| s.groups.keys())
    }

    /// The groups of `scope` with at least one member on this node (pg's `which_local_groups/1`).
    pub fn which_local_groups(&self, scope: &Atom) -> impl Iterator<Item = &Term> {
        self.scopes
            .get(scope)
            .into_iter()
            .flat_map(|s| s.groups.iter())
            .filter(|(_, g)| g.on(&self.me).is_some())
            .map(|(name, _)| name)
    }

    /// Subscribes the local process `watcher` to every membership change in `scope` (pg's
    /// `monitor_scope/1`), under `reference` (made by the driver). Returns the groups and their
    /// members now; later changes come as [`GroupEvent::Notify`].
    pub fn monitor_scope(
        &mut self,
        scope: &Atom,
        watcher: Pid,
        reference: Ref,
    ) -> Result<Vec<(Term, Vec<Pid>)>, GroupError> {
        self.check_request(scope, std::slice::from_ref(&watcher))?;
        self.local_process(&watcher).subscriptions.push((scope.clone(), reference.clone()));
        let state = self.scope_mut(scope);
        state.scope_watchers.push(Watcher { pid: watcher, reference });
        let mut now: Vec<(Term, Vec<Pid>)> = state
            .groups
            .iter()
            .map(|(group, g)| (group.clone(), g.nodes.iter().flat_map(|(_, set)| set.as_slice()).cloned().collect()))
            .collect();
        now.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(now)
    }

    /// Subscribes the local process `watcher` to membership changes of `group` in `scope` (pg's
    /// `monitor/2`). Returns the members now.
    pub fn monitor_group(
        &mut self,
        scope: &Atom,
        group: Term,
        watcher: Pid,
        reference: Ref,
    ) -> Result<Vec<Pid>, GroupError> {
        self.check_request(scope, std::slice::from_ref(&watcher))?;
        let now = self.members(scope, &group).cloned().collect();
        self.local_process(&watcher).subscriptions.push((scope.clone(), reference.clone()));
        self.scope_mut(scope).group_watchers.entry(group).or_default().push(Watcher { pid: watcher, reference });
        Ok(now)
    }

    /// Ends the subscription `reference` in `scope` (pg's `demonitor/2`); whether it existed.
    pub fn demonitor(&mut self, scope: &Atom, reference: &Ref) -> bool {
        let Some(state) = self.scopes.get_mut(scope) else { return false };
        let Some(watcher) = remove_subscription(state, reference) else { return false };
        if let Some(local) = self.local.get_mut(&watcher) {
            local.subscriptions.retain(|(s, r)| !(s == scope && r == reference));
            if local.is_empty() {
                self.local.remove(&watcher);
                self.events.push_back(GroupEvent::Unwatch(watcher));
            }
        }
        true
    }

    /// A local process exited: it leaves every group (announced to the scopes' peers) and its
    /// subscriptions end. Other pids are ignored.
    pub fn process_exited(&mut self, pid: &Pid) {
        let Some(local) = self.local.remove(pid) else { return };
        let me = self.me.clone();
        for (scope, group) in local.memberships {
            let removed = self.remove_members(&scope, &group, &me, std::slice::from_ref(pid));
            if !removed.is_empty() {
                self.notify(&scope, &group, Change::Leave, &removed);
                self.send_to_scope(&scope, Control::GroupLeave { scope: scope.clone(), group, pids: removed });
            }
        }
        for (scope, reference) in local.subscriptions {
            if let Some(state) = self.scopes.get_mut(&scope) {
                remove_subscription(state, &reference);
            }
        }
    }

    /// A connection to `node` (start `creation`) came up with the negotiated `flags`. With the
    /// GROUPS capability the peer is asked, for every scope running here, for its members
    /// (GROUP_DISCOVER); it answers for the scopes it runs. A peer reported up again without a
    /// `node_down` is first taken down.
    pub fn node_up(&mut self, node: NodeName, creation: u32, flags: Flags) {
        self.node_down(&node);
        if self.peers.up(node.clone(), creation, flags) == PeerUp::Incapable {
            return;
        }
        let mut scopes: Vec<&Atom> = self.scopes.keys().collect();
        scopes.sort_unstable();
        for scope in scopes {
            self.transmits.push_back(Transmit {
                to: vec![node.clone()],
                message: Control::GroupDiscover { scope: scope.clone() },
            });
        }
    }

    /// The connection to `node` is gone: its processes leave every group here (subscribers are
    /// told).
    pub fn node_down(&mut self, node: &NodeName) {
        if !self.peers.down(node) {
            return;
        }
        let mut scopes: Vec<Atom> = self.scopes.keys().cloned().collect();
        scopes.sort_unstable();
        for scope in scopes {
            self.scope_mut(&scope).peers.remove(node);
            self.replace_remote(&scope, node, HashMap::new());
        }
    }

    /// A GROUP_* message from the connected peer `from`. A message that breaks the protocol (a
    /// pid that is not the sender's own, a sender that is not a connected peer with the
    /// capability, a message of another kind) changes nothing and is returned as an error for the
    /// driver to log. Messages for a scope that does not run here are ignored.
    pub fn handle_message(&mut self, from: &NodeName, message: Control) -> Result<(), PeerError> {
        self.peers.check_sender(from, &message)?;
        match message {
            Control::GroupDiscover { scope } => {
                if let Some(state) = self.scopes.get_mut(&scope) {
                    state.peers.insert(from.clone());
                    self.send_sync(&scope, from);
                }
            }
            Control::GroupSync { scope, groups } => {
                for pid in groups.iter().flat_map(|(_, pids)| pids) {
                    self.peers.check_owned(from, pid, "GROUP_SYNC")?;
                }
                let Some(state) = self.scopes.get_mut(&scope) else { return Ok(()) };
                // An answer to our GROUP_DISCOVER from a peer that had not asked us (it started the
                // scope before we did): it has not had our members yet.
                let answer_back = state.peers.insert(from.clone());
                let mut wanted: HashMap<Term, HashSet<Pid>> = HashMap::new();
                for (group, pids) in groups {
                    wanted.entry(group).or_default().extend(pids);
                }
                wanted.retain(|_, pids| !pids.is_empty());
                self.replace_remote(&scope, from, wanted);
                if answer_back {
                    self.send_sync(&scope, from);
                }
            }
            Control::GroupJoin { scope, group, pids } => {
                for pid in &pids {
                    self.peers.check_owned(from, pid, "GROUP_JOIN")?;
                }
                let Some(state) = self.scopes.get_mut(&scope) else { return Ok(()) };
                state.peers.insert(from.clone());
                let group_state = state.groups.entry(group.clone()).or_default();
                let members = group_state.on_mut(from);
                let added: Vec<Pid> = pids.into_iter().filter(|pid| members.insert(pid.clone())).collect();
                group_state.prune(from);
                if group_state.is_empty() {
                    state.groups.remove(&group);
                }
                if !added.is_empty() {
                    self.notify(&scope, &group, Change::Join, &added);
                }
            }
            Control::GroupLeave { scope, group, pids } => {
                for pid in &pids {
                    self.peers.check_owned(from, pid, "GROUP_LEAVE")?;
                }
                let Some(state) = self.scopes.get_mut(&scope) else { return Ok(()) };
                state.peers.insert(from.clone());
                let removed = self.remove_members(&scope, &group, from, &pids);
                if !removed.is_empty() {
                    self.notify(&scope, &group, Change::Leave, &removed);
                }
            }
            other => return Err(PeerError::NotHandled { message: other.name(), handler: "Groups" }),
        }
        Ok(())
    }

    /// The next message to send, with its recipients (each a connected peer that negotiated
    /// GROUPS and, except for GROUP_DISCOVER, runs the message's scope).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<GroupEvent> {
        self.events.pop_front()
    }

    fn group(&self, scope: &Atom, group: &Term) -> Option<&Group> {
        self.scopes.get(scope)?.groups.get(group)
    }

    /// The scope, which the caller checked is running.
    fn scope_mut(&mut self, scope: &Atom) -> &mut Scope {
        self.scopes.entry(scope.clone()).or_default()
    }

    fn check_request(&self, scope: &Atom, pids: &[Pid]) -> Result<(), GroupError> {
        if !self.scopes.contains_key(scope) {
            return Err(GroupError::NoScope { scope: scope.clone() });
        }
        match pids.iter().find(|pid| pid.node() != &self.me || pid.creation() != self.creation) {
            Some(pid) => Err(GroupError::NotLocal { pid: pid.clone() }),
            None => Ok(()),
        }
    }

    /// The record of a local process, created (and watched) if new.
    fn local_process(&mut self, pid: &Pid) -> &mut LocalProcess {
        if !self.local.contains_key(pid) {
            self.events.push_back(GroupEvent::Watch(pid.clone()));
        }
        self.local.entry(pid.clone()).or_default()
    }

    fn forget_membership(&mut self, pid: &Pid, scope: &Atom, group: &Term) {
        let Some(local) = self.local.get_mut(pid) else { return };
        local.memberships.retain(|(s, g)| !(s == scope && g == group));
        if local.is_empty() {
            self.local.remove(pid);
            self.events.push_back(GroupEvent::Unwatch(pid.clone()));
        }
    }

    /// Removes those of `pids` that are members on `node`; returns them.
    fn remove_members(&mut self, scope: &Atom, group: &Term, node: &NodeName, pids: &[Pid]) -> Vec<Pid> {
        let Some(state) = self.scopes.get_mut(scope) else { return Vec::new() };
        let Some(group_state) = state.groups.get_mut(group) else { return Vec::new() };
        let removed: Vec<Pid> = match group_state.nodes.iter_mut().find(|(n, _)| n == node) {
            Some((_, members)) => pids.iter().filter(|pid| members.remove(pid)).cloned().collect(),
            None => Vec::new(),
        };
        group_state.prune(node);
        if group_state.is_empty() {
            state.groups.remove(group);
        }
        removed
    }

    /// Makes `node`'s members in `scope` exactly `wanted` (per group), telling subscribers what
    /// changed.
    fn replace_remote(&mut self, scope: &Atom, node: &NodeName, mut wanted: HashMap<Term, HashSet<Pid>>) {
        let Some(state) = self.scopes.get_mut(scope) else { return };
        let mut changes: Vec<(Term, Change, Vec<Pid>)> = Vec::new();
        let mut emptied = Vec::new();
        for (group, g) in state.groups.iter_mut() {
            let Some(at) = g.nodes.iter().position(|(n, _)| n == node) else { continue };
            let keep = wanted.remove(group).unwrap_or_default();
            let members = &mut g.nodes[at].1;
            let gone: Vec<Pid> = members.as_slice().iter().filter(|pid| !keep.contains(pid)).cloned().collect();
            for pid in &gone {
                members.remove(pid);
            }
            let new: Vec<Pid> = keep.into_iter().filter(|pid| members.insert(pid.clone())).collect();
            g.prune(node);
            if g.is_empty() {
                emptied.push(group.clone());
            }
            if !gone.is_empty() {
                changes.push((group.clone(), Change::Leave, gone));
            }
            if !new.is_empty() {
                changes.push((group.clone(), Change::Join, new));
            }
        }
        for group in emptied {
            state.groups.remove(&group);
        }
        // Groups where the node had no members before.
        for (group, pids) in wanted {
            let members = state.groups.entry(group.clone()).or_default().on_mut(node);
            let new: Vec<Pid> = pids.into_iter().filter(|pid| members.insert(pid.clone())).collect();
            changes.push((group, Change::Join, new));
        }
        changes.sort_by(|a, b| (&a.0, a.1 == Change::Join).cmp(&(&b.0, b.1 == Change::Join)));
        for (group, change, pids) in changes {
            self.notify(scope, &group, change, &pids);
        }
    }

    /// Sends `node` every membership of local processes in `scope`.
    fn send_sync(&mut self, scope: &Atom, node: &NodeName) {
        let Some(state) = self.scopes.get(scope) else { return };
        let mut groups: Vec<(Term, Vec<Pid>)> = state
            .groups
            .iter()
            .filter_map(|(group, g)| Some((group.clone(), g.on(&self.me)?.as_slice().to_vec())))
            .collect();
        groups.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let message = Control::GroupSync { scope: scope.clone(), groups };
        self.transmits.push_back(Transmit { to: vec![node.clone()], message });
    }

    fn send_to_scope(&mut self, scope: &Atom, message: Control) {
        let Some(state) = self.scopes.get(scope) else { return };
        if !state.peers.is_empty() {
            self.transmits.push_back(Transmit { to: state.peers.iter().cloned().collect(), message });
        }
    }

    /// Tells the subscribers of `scope` and of `group` in it.
    fn notify(&mut self, scope: &Atom, group: &Term, change: Change, pids: &[Pid]) {
        let Some(state) = self.scopes.get(scope) else { return };
        let group_watchers = state.group_watchers.get(group).into_iter().flatten();
        for watcher in state.scope_watchers.iter().chain(group_watchers) {
            self.events.push_back(GroupEvent::Notify(Notification {
                watcher: watcher.pid.clone(),
                reference: watcher.reference.clone(),
                scope: scope.clone(),
                group: group.clone(),
                change,
                pids: pids.to_vec(),
            }));
        }
    }
}

/// Removes the subscription `reference` from `state`; returns its subscriber.
fn remove_subscription(state: &mut Scope, reference: &Ref) -> Option<Pid> {
    if let Some(at) = state.scope_watchers.iter().position(|w| &w.reference == reference) {
        return Some(state.scope_watchers.remove(at).pid);
    }
    let mut found = None;
    state.group_watchers.retain(|_, watchers| {
        if let Some(at) = watchers.iter().position(|w| &w.reference == reference) {
            found = Some(watchers.remove(at).pid);
        }
        !watchers.is_empty()
    });
    found
}

#[cfg(test)]
#[path = "groups_tests.rs"]
mod tests;
