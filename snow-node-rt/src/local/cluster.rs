//! The global registry and process groups as a program uses them: [`GlobalRegistry`] (Erlang's
//! `global`) and [`ProcessGroups`] (Erlang's `pg`), handles got from a [`Node`] or a [`Process`].
//! The state lives in the distribution layer ([`Cluster`](crate::seam::Cluster)): names and groups
//! exist among connected nodes, so a node that is not distributed answers `NotDistributed`.
//!
//! A handle got from a process sends as that process (`send`, `broadcast`: its messages keep
//! their order and honour backpressure like [`Process::send`]); one got from the node sends from
//! outside any process, like [`Node::send`].

use std::sync::Arc;

use snow_shared::{Atom, Pid, Ref, Term};

use super::node_state::Node;
use super::process::Process;
use crate::dist::DEFAULT_SCOPE;
use crate::error::{GlobalError, GroupError, SendError};
use crate::seam::{Distribution, ScopeMembers};

/// Who sends what a handle sends.
#[derive(Clone, Copy)]
enum Sender<'a> {
    Node(&'a Node),
    Process(&'a Process),
}

impl Sender<'_> {
    fn node(&self) -> &Node {
        match self {
            Sender::Node(node) => node,
            Sender::Process(process) => process.node(),
        }
    }

    fn send(&self, to: &Pid, msg: Term) {
        match self {
            Sender::Node(node) => node.send(to, msg),
            Sender::Process(process) => process.send(to, msg),
        }
    }

    fn distribution(&self) -> Option<Arc<dyn Distribution>> {
        self.node().inner.distribution()
    }
}

/// The cluster-wide registry of names (Erlang's `global`; README, "Global registry"): a name
/// maps to one process on every connected node, and disappears everywhere when the process
/// exits or its node goes down.
///
/// ```no_run
/// # async fn demo(node: snow_node_rt::Node) {
/// use snow_node_rt::Term;
/// node.spawn(|mut me| async move {
///     let name = Term::atom("billing");
///     if me.global().register_name(name.clone(), me.pid()).is_ok() {
///         // Any process on any connected node can now reach it by name.
///         let _request = me.receive().await;
///     }
///     snow_node_rt::reason::normal()
/// });
/// let _ = node.global().send(&Term::atom("billing"), Term::atom("invoice"));
/// # }
/// ```
pub struct GlobalRegistry<'a> {
    sender: Sender<'a>,
}

impl GlobalRegistry<'_> {
    fn with<T>(&self, f: impl FnOnce(&dyn crate::seam::Cluster) -> T) -> Result<T, GlobalError> {
        let dist = self.sender.distribution().ok_or(GlobalError::NotDistributed)?;
        Ok(f(dist.cluster().ok_or(GlobalError::NotDistributed)?))
    }

    /// Registers `name` for `pid`, a live process of this node, on every connected node (Erlang's
    /// `global:register_name/2`). Returns as soon as this node's view holds it: peers are told
    /// without waiting for them, so a registration costs the same in a cluster of 3 or 300.
    /// `Taken` if this node knows a holder already. A conflicting registration made meanwhile
    /// elsewhere (a partition, or the same instant) is resolved on every node the same way, and
    /// the loser is told (README, "Global registry").
    pub fn register_name(&self, name: Term, pid: &Pid) -> Result<(), GlobalError> {
        self.with(|c| c.register_name(name, pid))?
    }

    /// Registers `name` for `pid`, moving it from its current holder if it has one (Erlang's
    /// `global:re_register_name/2`; the previous holder is not told, as in Erlang).
    pub fn re_register_name(&self, name: Term, pid: &Pid) -> Result<(), GlobalError> {
        self.with(|c| c.re_register_name(name, pid))?
    }

    /// Withdraws `name` everywhere (Erlang's `global:unregister_name/1`). Only the holder's node
    /// can: `HeldElsewhere` names the holder otherwise. A name nobody holds is `Ok`.
    pub fn unregister_name(&self, name: &Term) -> Result<(), GlobalError> {
        self.with(|c| c.unregister_name(name))?
    }

    /// The process registered as `name`, as this node knows it (Erlang's
    /// `global:whereis_name/1`): a local lookup, no message. `None` also when not distributed.
    pub fn whereis_name(&self, name: &Term) -> Option<Pid> {
        self.with(|c| c.whereis_name(name)).ok().flatten()
    }

    /// Every registered name this node knows, sorted (Erlang's `global:registered_names/0`).
    pub fn registered_names(&self) -> Vec<Term> {
        self.with(|c| c.registered_names()).unwrap_or_default()
    }

    /// Sends `msg` to the process registered as `name` and returns its pid (Erlang's
    /// `global:send/2`, which exits with `badarg` where this returns `NotRegistered`).
    pub fn send(&self, name: &Term, msg: Term) -> Result<Pid, SendError> {
        let dist = self.sender.distribution().ok_or(SendError::NotDistributed)?;
        let cluster = dist.cluster().ok_or(SendError::NotDistributed)?;
        let pid = cluster.whereis_name(name).ok_or_else(|| SendError::NotRegistered(name.to_string()))?;
        self.sender.send(&pid, msg);
        Ok(pid)
    }
}

/// Process groups of one scope (Erlang's `pg`; README, "Process groups"): any number of
/// processes per group, on any nodes, eventually consistent. The building block of rooms and
/// presence: join a room's group, broadcast to it, monitor it for who comes and goes.
///
/// ```no_run
/// # async fn demo(node: snow_node_rt::Node) {
/// use snow_node_rt::Term;
/// let room = Term::atom("lobby");
/// node.spawn(move |mut me| async move {
///     me.groups().join(room.clone(), &[me.pid().clone()]).ok();
///     me.groups().broadcast(&room, Term::atom("hello, everyone"));
///     let _hello = me.receive().await; // our own broadcast reaches us too
///     snow_node_rt::reason::normal()
/// });
/// # }
/// ```
pub struct ProcessGroups<'a> {
    sender: Sender<'a>,
    scope: Atom,
}

impl ProcessGroups<'_> {
    fn with<T>(&self, f: impl FnOnce(&dyn crate::seam::Cluster) -> T) -> Result<T, GroupError> {
        let dist = self.sender.distribution().ok_or(GroupError::NotDistributed)?;
        Ok(f(dist.cluster().ok_or(GroupError::NotDistributed)?))
    }

    /// The scope these groups belong to.
    pub fn scope(&self) -> &Atom {
        &self.scope
    }

    /// Adds live processes of this node to `group` (pg's `join/3`); each is a member at most once
    /// however often it joins. Other nodes see them one message delay later. A process that
    /// exits leaves all its groups.
    pub fn join(&self, group: Term, pids: &[Pid]) -> Result<(), GroupError> {
        self.with(|c| c.join(&self.scope, group, pids))?
    }

    /// Removes processes of this node from `group` (pg's `leave/3`); `NotJoined` if none was in it.
    pub fn leave(&self, group: &Term, pids: &[Pid]) -> Result<(), GroupError> {
        self.with(|c| c.leave(&self.scope, group, pids))?
    }

    /// The members of `group` on every node, as this node knows them (pg's `get_members/2`): a
    /// local lookup, no message.
    pub fn members(&self, group: &Term) -> Vec<Pid> {
        self.with(|c| c.members(&self.scope, group)).unwrap_or_default()
    }

    /// The members of `group` on this node (pg's `get_local_members/2`).
    pub fn local_members(&self, group: &Term) -> Vec<Pid> {
        self.with(|c| c.local_members(&self.scope, group)).unwrap_or_default()
    }

    /// The groups with members anywhere, sorted (pg's `which_groups/1`).
    pub fn which_groups(&self) -> Vec<Term> {
        self.with(|c| c.which_groups(&self.scope)).unwrap_or_default()
    }

    /// The groups with members on this node, sorted (pg's `which_local_groups/1`).
    pub fn which_local_groups(&self) -> Vec<Term> {
        self.with(|c| c.which_local_groups(&self.scope)).unwrap_or_default()
    }

    /// Subscribes `watcher` (a live process of this node) to the changes of `group` (pg's
    /// `monitor/2`): it gets `{ref, :join | :leave, group, pids}` for each change this node sees.
    /// Returns the reference and the members now.
    pub fn monitor_group(&self, group: Term, watcher: &Pid) -> Result<(Ref, Vec<Pid>), GroupError> {
        self.with(|c| c.monitor_group(&self.scope, group, watcher))?
    }

    /// Subscribes `watcher` to the changes of every group of the scope (pg's `monitor_scope/1`).
    /// Returns the reference and every group with its members now.
    pub fn monitor_scope(&self, watcher: &Pid) -> Result<(Ref, ScopeMembers), GroupError> {
        self.with(|c| c.monitor_scope(&self.scope, watcher))?
    }

    /// Ends a subscription (pg's `demonitor/2`); whether it existed. Notifications already in the
    /// watcher's mailbox stay there.
    pub fn demonitor(&self, reference: &Ref) -> bool {
        self.with(|c| c.demonitor_group(&self.scope, reference)).unwrap_or(false)
    }

    /// Sends `msg` to every member of `group` this node knows of, local and remote, and returns
    /// how many. Each member gets it as a message from the sender, in order with the sender's
    /// other messages to it.
    pub fn broadcast(&self, group: &Term, msg: Term) -> usize {
        let members = self.members(group);
        for member in &members {
            self.sender.send(member, msg.clone());
        }
        members.len()
    }
}

impl Node {
    /// The global registry (Erlang's `global`); see [`GlobalRegistry`].
    pub fn global(&self) -> GlobalRegistry<'_> {
        GlobalRegistry { sender: Sender::Node(self) }
    }

    /// The process groups of the default scope, `pg`, which every distributed node runs (Erlang's
    /// `pg` module); see [`ProcessGroups`].
    pub fn groups(&self) -> ProcessGroups<'_> {
        self.groups_in(DEFAULT_SCOPE)
    }

    /// The process groups of `scope` (started with [`Node::start_scope`]; until then operations
    /// give `NoScope` and reads are empty).
    pub fn groups_in(&self, scope: &str) -> ProcessGroups<'_> {
        ProcessGroups { sender: Sender::Node(self), scope: Atom::new(scope) }
    }

    /// Starts taking part in the process-group scope `scope` (pg's `start_link/1`): groups of
    /// different scopes are independent, and only nodes that run a scope exchange its members.
    /// Whether it was not running yet.
    pub fn start_scope(&self, scope: &str) -> Result<bool, GroupError> {
        let dist = self.inner.distribution().ok_or(GroupError::NotDistributed)?;
        Ok(dist.cluster().ok_or(GroupError::NotDistributed)?.start_scope(&Atom::new(scope)))
    }
}

impl Process {
    /// The global registry, sending as this process; see [`GlobalRegistry`].
    pub fn global(&self) -> GlobalRegistry<'_> {
        GlobalRegistry { sender: Sender::Process(self) }
    }

    /// The process groups of the default scope, sending as this process; see [`ProcessGroups`].
    pub fn groups(&self) -> ProcessGroups<'_> {
        self.groups_in(DEFAULT_SCOPE)
    }

    /// The process groups of `scope`, sending as this process.
    pub fn groups_in(&self, scope: &str) -> ProcessGroups<'_> {
        ProcessGroups { sender: Sender::Process(self), scope: Atom::new(scope) }
    }
}
