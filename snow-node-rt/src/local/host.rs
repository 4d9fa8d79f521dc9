//! This crate's local process layer as the [`Host`] of a distribution layer: each operation the
//! distribution layer needs, done through the processes' own operations ([`ProcessEntry`]).
//!
//! [`ProcessEntry`]: super::entry::ProcessEntry

use snow_shared::{Atom, NodeName, Pid, Ref, Term};

use super::entry::Monitoring;
use super::node_state::NodeState;
use crate::error::SpawnError;
use crate::reason;
use crate::seam::{Host, Monitored};

impl Host for NodeState {
    fn node_name(&self) -> &NodeName {
        self.table.name()
    }

    fn creation(&self) -> u32 {
        self.table.creation()
    }

    fn make_ref(&self) -> Ref {
        self.table.make_ref()
    }

    fn deliver_message(&self, to: &Pid, msg: Term) {
        self.table.with(to, |p| p.deliver(msg));
    }

    fn deliver_named(&self, name: &Atom, msg: Term) -> bool {
        match self.registry.whereis(&self.table, name.as_str()) {
            Some(pid) => {
                self.deliver_message(&pid, msg);
                true
            }
            None => false,
        }
    }

    fn deliver_exit(&self, from: &Pid, to: &Pid, reason: Term, linked: bool) {
        if let Some(p) = self.table.get(to) {
            p.exit_signal(from, reason, linked);
        }
    }

    fn deliver_down(&self, watcher: &Pid, reference: &Ref, reported: &Monitored, reason: Term) {
        if let Some(p) = self.table.get(watcher) {
            p.down(reference, reported, reason);
        }
    }

    fn add_remote_link(&self, local: &Pid, remote: &Pid) -> bool {
        self.table.get(local).is_some_and(|p| p.add_link(remote))
    }

    fn remove_remote_link(&self, local: &Pid, remote: &Pid) {
        if let Some(p) = self.table.get(local) {
            p.remove_link(remote);
        }
    }

    fn add_remote_monitor(&self, target: &Pid, watcher: &Pid, reference: &Ref) -> bool {
        self.table.get(target).is_some_and(|p| p.add_watcher(reference, watcher))
    }

    fn remove_remote_monitor(&self, target: &Pid, reference: &Ref) {
        if let Some(p) = self.table.get(target) {
            p.remove_watcher(reference);
        }
    }

    fn add_monitor(&self, watcher: &Pid, reference: &Ref, target: Monitored) -> bool {
        self.table.get(watcher).is_some_and(|p| p.is_running() && p.add_monitoring(reference, Monitoring::of(target)))
    }

    fn remove_monitor(&self, watcher: &Pid, reference: &Ref) {
        if let Some(p) = self.table.get(watcher) {
            p.take_monitoring(reference);
        }
    }

    fn notify_exit(&self, pid: &Pid) -> bool {
        self.table.get(pid).is_some_and(|p| p.tell_distribution_on_exit())
    }

    fn resolve_name(&self, name: &Atom) -> Option<Pid> {
        self.registry.whereis(&self.table, name.as_str())
    }

    fn spawn_registered(
        &self,
        function: &Atom,
        args: Term,
        link_to: Option<&Pid>,
        monitor_by: Option<(&Pid, &Ref)>,
        before_start: &mut dyn FnMut(&Pid),
    ) -> Result<Pid, SpawnError> {
        let body = self.spawnable(function).ok_or_else(|| SpawnError::NotSpawnable(function.as_str().to_owned()))?;
        let node = self.handle().ok_or_else(|| SpawnError::NotSpawnable(function.as_str().to_owned()))?;
        let child = self.table.prepare();
        if let Some(remote) = link_to {
            child.add_link(remote);
        }
        if let Some((watcher, reference)) = monitor_by {
            child.add_watcher(reference, watcher);
        }
        before_start(child.pid());
        Ok(body.start(&node, child, args))
    }

    fn supports_calls(&self) -> bool {
        true
    }

    fn spawn_call(
        &self,
        function: &Atom,
        args: Term,
        caller: &Pid,
        reference: &Ref,
        link_to: Option<&Pid>,
        before_start: &mut dyn FnMut(&Pid),
    ) -> Result<Pid, SpawnError> {
        let body = self.spawnable(function).ok_or_else(|| SpawnError::NotSpawnable(function.as_str().to_owned()))?;
        let node = self.handle().ok_or_else(|| SpawnError::NotSpawnable(function.as_str().to_owned()))?;
        let child = self.table.prepare();
        if let Some(remote) = link_to {
            child.add_link(remote);
        }
        child.add_watcher(reference, caller);
        before_start(child.pid());
        Ok(body.start_call(&node, child, args, reference.clone()))
    }

    fn supports_aliases(&self) -> bool {
        true
    }

    fn deliver_alias(&self, alias: &Ref, msg: Term) -> bool {
        NodeState::deliver_alias(self, alias, msg)
    }

    fn connection_lost(&self, node: &NodeName) {
        let reason = reason::noconnection();
        for p in self.table.all() {
            let (links, downs) = p.sever(node);
            for (reference, target) in downs {
                p.down(&reference, &target, reason.clone());
            }
            for remote in links {
                p.exit_signal(&remote, reason.clone(), true);
            }
        }
        log::info!("{}: connection to {node} lost; links and monitors fired with :noconnection", self.table.name());
    }
}
