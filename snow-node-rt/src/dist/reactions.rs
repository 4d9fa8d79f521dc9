//! What a node does about each control message a peer sends: a function of the message and the
//! [`Host`], which emits the replies to send back (through `reply`, at the moment they must be
//! queued) and returns what concerns the driver's own state. No sockets, no driver state: the
//! unit tests below drive it with a recording host.
//!
//! The peer speaks only for its own processes (`Inbound::only_from`, checked before this), so
//! every `from` here is a process of `peer`.

use std::collections::HashMap;
use std::sync::Mutex;

use snow_shared::dist::control::{Control, MonitorTarget};
use snow_shared::{NodeName, Pid, Ref, Term};

use super::state::SpawnWait;
use crate::reason;
use crate::seam::{Host, Monitored};
use crate::sync::lock;

/// What the driver must do after [`react`].
#[derive(Debug, PartialEq)]
pub(crate) enum Reaction {
    /// Nothing more.
    Done,
    /// A reply to one of our remote spawns ([`spawn_reply`]).
    SpawnReply {
        /// The request's reference.
        reference: Ref,
        /// The process that asked.
        to: Pid,
        /// The new pid, or why not.
        result: Result<Pid, Term>,
    },
    /// The nodes the peer is connected to (transitive mesh).
    NodeList(Vec<NodeName>),
    /// A remote spawn was refused (for a rate-limited log line).
    SpawnRefused(String),
    /// A message of the global registry or process groups, for the driver's cluster state.
    Cluster(Control),
    /// A message of a feature this build does not offer (negotiated extensions).
    Ignored(&'static str),
}

/// Reacts to `msg` from `peer`: delivers what it carries to the host's processes, and emits the
/// replies the protocol requires through `reply` (an exit `:noproc` for a link to a process
/// that does not exist, a `:DOWN` `:noproc` for a monitor of one, a spawn reply).
pub(crate) fn react(msg: Control, host: &dyn Host, peer: &NodeName, reply: &mut dyn FnMut(Control)) -> Reaction {
    match msg {
        Control::Send { to, msg, .. } => {
            if to.node() == host.node_name() {
                host.deliver_message(&to, msg);
            }
        }
        Control::RegSend { name, msg, .. } => {
            host.deliver_named(&name, msg);
        }
        Control::Link { from, to } => {
            if !host.add_remote_link(&to, &from) {
                reply(Control::Exit { from: to, to: from, reason: reason::noproc() });
            }
        }
        Control::Unlink { from, to } => host.remove_remote_link(&to, &from),
        Control::Exit { from, to, reason } => host.deliver_exit(&from, &to, reason, true),
        Control::Exit2 { from, to, reason } => host.deliver_exit(&from, &to, reason, false),
        Control::Monitor { from, target, reference } => {
            let target_pid = match &target {
                MonitorTarget::Pid(p) => Some(p.clone()),
                MonitorTarget::Name(name) => host.resolve_name(name),
            };
            let attached = target_pid.as_ref().is_some_and(|t| host.add_remote_monitor(t, &from, &reference));
            if !attached {
                let from_target = target_pid.map(MonitorTarget::Pid).unwrap_or(target);
                reply(Control::MonitorExit { from: from_target, to: from, reference, reason: reason::noproc() });
            }
        }
        Control::Demonitor { target, reference, .. } => {
            let target = match target {
                MonitorTarget::Pid(pid) => Some(pid),
                MonitorTarget::Name(name) => host.resolve_name(&name),
            };
            if let Some(target) = target {
                host.remove_remote_monitor(&target, &reference);
            }
        }
        Control::MonitorExit { from, to, reference, reason } => {
            // Accepted only for a monitor `to` holds on a process of this peer (the host checks it
            // against what the monitor watches).
            let reported = match from {
                MonitorTarget::Pid(pid) => Monitored::Pid(pid),
                MonitorTarget::Name(name) => Monitored::Name { name, node: peer.clone() },
            };
            host.deliver_down(&to, &reference, &reported, reason)
        }
        Control::SpawnReq { function, args, opts, .. } if opts.no_reply => {
            // A cast: nothing goes back, not even a refusal.
            if let Err(e) = host.spawn_registered(&function, Term::List(args), None, None, &mut |_| {}) {
                return Reaction::SpawnRefused(format!("refused a cast from {peer}: {e}"));
            }
        }
        Control::SpawnReq { reference, from, function, args, opts } if opts.call => {
            let mut before_start = |pid: &Pid| {
                reply(Control::SpawnReply { reference: reference.clone(), to: from.clone(), result: Ok(pid.clone()) })
            };
            let link_to = opts.link.then_some(&from);
            if let Err(e) = host.spawn_call(&function, Term::List(args), &from, &reference, link_to, &mut before_start)
            {
                let why = reason::not_spawnable(function.as_str());
                reply(Control::SpawnReply { reference, to: from, result: Err(why) });
                return Reaction::SpawnRefused(format!("refused a call from {peer}: {e}"));
            }
        }
        Control::SpawnReq { reference, from, function, args, opts } => {
            // The reply goes out before the new process runs, so it precedes anything the process
            // sends and its exit signal.
            let mut before_start = |pid: &Pid| {
                reply(Control::SpawnReply { reference: reference.clone(), to: from.clone(), result: Ok(pid.clone()) })
            };
            let link_to = opts.link.then_some(&from);
            let monitor_by = opts.monitor.then_some((&from, &reference));
            if let Err(e) = host.spawn_registered(&function, Term::List(args), link_to, monitor_by, &mut before_start) {
                let why = reason::not_spawnable(function.as_str());
                reply(Control::SpawnReply { reference, to: from, result: Err(why) });
                return Reaction::SpawnRefused(format!("refused a remote spawn from {peer}: {e}"));
            }
        }
        Control::SpawnReply { reference, to, result } => return Reaction::SpawnReply { reference, to, result },
        Control::NodeList { nodes } => return Reaction::NodeList(nodes),
        Control::AliasSend { alias, msg, .. } => {
            // An inactive, unknown or foreign alias is not an error: the message is dropped, as
            // in Erlang.
            if !host.deliver_alias(&alias, msg) {
                log::debug!("{}: dropped a message from {peer} to {alias}: not an active alias here", host.node_name());
            }
        }
        Control::Tick => {}
        msg @ (Control::GlobalRegister(_)
        | Control::GlobalUnregister { .. }
        | Control::GlobalSync { .. }
        | Control::GlobalConflict { .. }
        | Control::GroupJoin { .. }
        | Control::GroupLeave { .. }
        | Control::GroupSync { .. }
        | Control::GroupDiscover { .. }) => return Reaction::Cluster(msg),
        other => return Reaction::Ignored(other.name()),
    }
    Reaction::Done
}

/// The answer to one of our remote spawns. Accepted only from the node that was asked, for a
/// request that is still waited for, addressed to the process that asked (references are not
/// guessable, so a peer cannot answer a request it was not sent). The requester's side of the
/// link or monitor is recorded before anything the new process sends can be processed (it comes
/// after this reply on the same connection); then the requester is woken. A reply whose requester
/// stopped waiting undoes the link (exit `:abandoned`) or monitor made for it.
pub(crate) fn spawn_reply(
    dist: &super::state::Driver,
    host: &dyn Host,
    peer: &NodeName,
    reference: Ref,
    to: Pid,
    result: Result<Pid, Term>,
    reply: &mut dyn FnMut(Control),
) {
    let Some(wait) = take_wait(&dist.spawns, peer, &reference, &to) else {
        dist.warn_limited("spawn-reply-unknown", || {
            format!("ignored a spawn reply from {peer} for no request of ours to that node")
        });
        return;
    };
    if wait.abandoned {
        if let Ok(child) = result {
            log::debug!("{}: late spawn reply for {child} from {peer}; abandoning it", dist.name);
            abandon_child(&to, &child, &reference, wait.link, wait.monitor, reply);
        }
        return;
    }
    if let Ok(child) = &result {
        if wait.link && !host.add_remote_link(&to, child) {
            // The requester is gone: its exit would have reached the child through the link.
            reply(Control::Exit { from: to.clone(), to: child.clone(), reason: reason::noproc() });
        }
        if wait.monitor && !host.add_monitor(&to, &reference, Monitored::Pid(child.clone())) {
            reply(Control::Demonitor {
                from: to.clone(),
                target: MonitorTarget::Pid(child.clone()),
                reference: reference.clone(),
            });
        }
    }
    let _ = wait.reply.try_send(result);
}

/// What the requester of a remote spawn sends the child it stopped waiting for: exit `:abandoned`
/// through the link the spawn made, and DEMONITOR for its monitor (Erlang's
/// `spawn_request_abandon`).
pub(crate) fn abandon_child(
    requester: &Pid,
    child: &Pid,
    reference: &Ref,
    link: bool,
    monitor: bool,
    send: &mut dyn FnMut(Control),
) {
    if link {
        send(Control::Exit { from: requester.clone(), to: child.clone(), reason: reason::abandoned() });
    }
    if monitor {
        send(Control::Demonitor {
            from: requester.clone(),
            target: MonitorTarget::Pid(child.clone()),
            reference: reference.clone(),
        });
    }
}

/// Takes the wait of request `reference` if it was made to `peer` by `requester`.
fn take_wait(
    spawns: &Mutex<HashMap<Ref, SpawnWait>>,
    peer: &NodeName,
    reference: &Ref,
    requester: &Pid,
) -> Option<SpawnWait> {
    let mut spawns = lock(spawns);
    match spawns.get(reference) {
        Some(wait) if &wait.node == peer && &wait.requester == requester => spawns.remove(reference),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use snow_shared::dist::control::SpawnOpts;
    use snow_shared::Atom;

    use super::*;
    use crate::error::SpawnError;

    /// A host with one live process (id 1), one name (`svc` -> 1), and a record of every call.
    struct Recording {
        name: NodeName,
        calls: Mutex<Vec<String>>,
    }

    impl Recording {
        fn new() -> Recording {
            Recording { name: NodeName::parse("me@h").unwrap(), calls: Mutex::new(Vec::new()) }
        }
        fn pid(&self, id: u64) -> Pid {
            Pid::new(self.name.clone(), id, 1)
        }
        fn log(&self, call: String) {
            self.calls.lock().unwrap().push(call);
        }
        fn calls(&self) -> Vec<String> {
            std::mem::take(&mut *self.calls.lock().unwrap())
        }
    }

    impl Host for Recording {
        fn node_name(&self) -> &NodeName {
            &self.name
        }
        fn creation(&self) -> u32 {
            1
        }
        fn make_ref(&self) -> Ref {
            Ref::new(self.name.clone(), 9, 1)
        }
        fn deliver_message(&self, to: &Pid, msg: Term) {
            self.log(format!("message {to} {msg}"));
        }
        fn deliver_named(&self, name: &Atom, msg: Term) -> bool {
            self.log(format!("named {} {msg}", name.as_str()));
            true
        }
        fn deliver_exit(&self, from: &Pid, to: &Pid, reason: Term, linked: bool) {
            self.log(format!("exit {from} {to} {reason} {linked}"));
        }
        fn deliver_down(&self, watcher: &Pid, _reference: &Ref, reported: &Monitored, reason: Term) {
            self.log(format!("down {watcher} {} {reason}", reported.to_term()));
        }
        fn add_remote_link(&self, local: &Pid, remote: &Pid) -> bool {
            self.log(format!("link {local} {remote}"));
            local.id() == 1
        }
        fn remove_remote_link(&self, local: &Pid, remote: &Pid) {
            self.log(format!("unlink {local} {remote}"));
        }
        fn add_remote_monitor(&self, target: &Pid, watcher: &Pid, _reference: &Ref) -> bool {
            self.log(format!("monitor {target} {watcher}"));
            target.id() == 1
        }
        fn remove_remote_monitor(&self, target: &Pid, _reference: &Ref) {
            self.log(format!("demonitor {target}"));
        }
        fn add_monitor(&self, watcher: &Pid, _reference: &Ref, _target: Monitored) -> bool {
            watcher.id() == 1
        }
        fn remove_monitor(&self, _watcher: &Pid, _reference: &Ref) {}
        fn notify_exit(&self, pid: &Pid) -> bool {
            pid.id() == 1
        }
        fn resolve_name(&self, name: &Atom) -> Option<Pid> {
            (name.as_str() == "svc").then(|| self.pid(1))
        }
        fn spawn_registered(
            &self,
            function: &Atom,
            _args: Term,
            link_to: Option<&Pid>,
            _monitor_by: Option<(&Pid, &Ref)>,
            before_start: &mut dyn FnMut(&Pid),
        ) -> Result<Pid, SpawnError> {
            if function.as_str() != "allowed" {
                return Err(SpawnError::NotSpawnable(function.as_str().to_owned()));
            }
            before_start(&self.pid(5));
            self.log(format!("spawned 5 linked to {link_to:?}"));
            Ok(self.pid(5))
        }
        fn connection_lost(&self, node: &NodeName) {
            self.log(format!("lost {node}"));
        }
        fn spawn_call(
            &self,
            function: &Atom,
            _args: Term,
            caller: &Pid,
            _reference: &Ref,
            link_to: Option<&Pid>,
            before_start: &mut dyn FnMut(&Pid),
        ) -> Result<Pid, SpawnError> {
            if function.as_str() != "allowed" {
                return Err(SpawnError::NotSpawnable(function.as_str().to_owned()));
            }
            before_start(&self.pid(6));
            self.log(format!("call 6 for {caller} linked to {link_to:?}"));
            Ok(self.pid(6))
        }
        fn deliver_alias(&self, alias: &Ref, msg: Term) -> bool {
            self.log(format!("alias {} {msg}", alias.id()));
            alias.id() == 1
        }
    }

    fn run(host: &Recording, msg: Control) -> (Reaction, Vec<Control>) {
        let peer = NodeName::parse("peer@h").unwrap();
        let mut replies = Vec::new();
        let reaction = react(msg, host, &peer, &mut |c| replies.push(c));
        (reaction, replies)
    }

    #[test]
    fn a_link_or_monitor_of_a_missing_process_is_answered_with_noproc() {
        let host = Recording::new();
        let remote = Pid::new(NodeName::parse("peer@h").unwrap(), 3, 2);
        let (reaction, replies) = run(&host, Control::Link { from: remote.clone(), to: host.pid(2) });
        assert_eq!(reaction, Reaction::Done);
        assert_eq!(replies, [Control::Exit { from: host.pid(2), to: remote.clone(), reason: reason::noproc() }]);
        let (_, replies) = run(&host, Control::Link { from: remote.clone(), to: host.pid(1) });
        assert!(replies.is_empty(), "a live process takes the link");
        let reference = Ref::new(remote.node().clone(), 4, 2);
        let monitor = Control::Monitor {
            from: remote.clone(),
            target: MonitorTarget::Name(Atom::new("nobody")),
            reference: reference.clone(),
        };
        let (_, replies) = run(&host, monitor);
        assert_eq!(
            replies,
            [Control::MonitorExit {
                from: MonitorTarget::Name(Atom::new("nobody")),
                to: remote,
                reference,
                reason: reason::noproc()
            }]
        );
    }

    #[test]
    fn a_down_report_names_the_peer_for_a_name_monitor() {
        let host = Recording::new();
        let msg = Control::MonitorExit {
            from: MonitorTarget::Name(Atom::new("svc")),
            to: host.pid(1),
            reference: Ref::new(host.name.clone(), 7, 1),
            reason: Term::atom("gone"),
        };
        run(&host, msg);
        assert_eq!(host.calls(), [format!("down {} {{:svc, :peer@h}} :gone", host.pid(1))]);
    }

    #[test]
    fn a_spawn_reply_is_queued_before_the_child_runs_and_a_refusal_is_answered() {
        let host = Recording::new();
        let remote = Pid::new(NodeName::parse("peer@h").unwrap(), 3, 2);
        let reference = Ref::new(remote.node().clone(), 8, 2);
        let req = |function: &str| Control::SpawnReq {
            reference: reference.clone(),
            from: remote.clone(),
            function: Atom::new(function),
            args: vec![],
            opts: SpawnOpts { link: true, ..SpawnOpts::default() },
        };
        let mut order = Vec::new();
        let peer = NodeName::parse("peer@h").unwrap();
        let reaction = react(req("allowed"), &host, &peer, &mut |c| {
            order.push(format!("reply {}", c.name()));
            host.log("replied".into());
        });
        assert_eq!(reaction, Reaction::Done);
        assert_eq!(order, ["reply SPAWN_REPLY"]);
        assert_eq!(host.calls(), ["replied".to_owned(), format!("spawned 5 linked to Some({remote})")]);
        let (reaction, replies) = run(&host, req("rm_rf"));
        assert!(matches!(reaction, Reaction::SpawnRefused(_)));
        assert!(matches!(&replies[..], [Control::SpawnReply { result: Err(_), .. }]));
    }

    #[test]
    fn a_call_replies_before_it_runs_and_a_cast_never_replies() {
        let host = Recording::new();
        let remote = Pid::new(NodeName::parse("peer@h").unwrap(), 3, 2);
        let reference = Ref::new(remote.node().clone(), 8, 2);
        let req = |function: &str, opts: SpawnOpts| Control::SpawnReq {
            reference: reference.clone(),
            from: remote.clone(),
            function: Atom::new(function),
            args: vec![],
            opts,
        };
        let call = SpawnOpts { monitor: true, call: true, ..SpawnOpts::default() };
        let peer = NodeName::parse("peer@h").unwrap();
        let reaction = react(req("allowed", call), &host, &peer, &mut |c| host.log(format!("reply {c:?}")));
        assert_eq!(reaction, Reaction::Done);
        let spawn_reply =
            Control::SpawnReply { reference: reference.clone(), to: remote.clone(), result: Ok(host.pid(6)) };
        assert_eq!(host.calls(), [format!("reply {spawn_reply:?}"), format!("call 6 for {remote} linked to None")]);
        let (reaction, replies) = run(&host, req("rm_rf", call));
        assert!(matches!(reaction, Reaction::SpawnRefused(_)));
        assert!(matches!(&replies[..], [Control::SpawnReply { result: Err(_), .. }]), "a refused call is answered");
        // A cast: spawned without link or monitor, and no reply, even to a refusal.
        let cast = SpawnOpts { no_reply: true, ..SpawnOpts::default() };
        let (reaction, replies) = run(&host, req("allowed", cast));
        assert_eq!((reaction, replies), (Reaction::Done, vec![]));
        assert_eq!(host.calls(), ["spawned 5 linked to None"]);
        let (reaction, replies) = run(&host, req("rm_rf", cast));
        assert!(matches!(reaction, Reaction::SpawnRefused(_)));
        assert!(replies.is_empty(), "a refused cast is not answered");
    }

    #[test]
    fn an_alias_message_goes_to_the_host_and_is_never_answered() {
        let host = Recording::new();
        let remote = Pid::new(NodeName::parse("peer@h").unwrap(), 3, 2);
        for id in [1, 2] {
            let msg = Control::AliasSend {
                from: remote.clone(),
                alias: Ref::new(host.name.clone(), id, 1),
                msg: Term::Int(7),
            };
            assert_eq!(run(&host, msg), (Reaction::Done, vec![]));
        }
        assert_eq!(host.calls(), ["alias 1 7", "alias 2 7"]);
    }

    #[test]
    fn messages_for_another_node_are_not_delivered_and_driver_messages_are_handed_back() {
        let host = Recording::new();
        let remote = Pid::new(NodeName::parse("peer@h").unwrap(), 3, 2);
        let elsewhere = Pid::new(NodeName::parse("third@h").unwrap(), 1, 1);
        run(&host, Control::Send { from: remote, to: elsewhere, msg: Term::Int(1) });
        assert!(host.calls().is_empty());
        let nodes = vec![NodeName::parse("third@h").unwrap()];
        assert_eq!(run(&host, Control::NodeList { nodes: nodes.clone() }).0, Reaction::NodeList(nodes));
        assert_eq!(run(&host, Control::Tick).0, Reaction::Done);
    }
}
