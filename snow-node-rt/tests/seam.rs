//! The seam: two nodes in one OS process joined by a loopback distribution layer that uses only
//! the `Host` / `Distribution` traits, as the real distribution layer does.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use snow_node_rt::seam::BoxFuture;
use snow_node_rt::{
    reason, Atom, Backpressure, DistError, Distribution, Host, Monitored, Node, NodeName, Pid, Ref, RemoteSpawnError,
    SpawnError, Term, TrySendError,
};
use support::*;

/// Delivers straight into the peer through its [`Host`]; `cut` simulates a lost link.
struct Loopback {
    me: Weak<dyn Host>,
    peer: Weak<dyn Host>,
    peer_name: NodeName,
    cut: Mutex<bool>,
}

impl Loopback {
    fn up(&self) -> bool {
        !*self.cut.lock().unwrap()
    }

    fn me(&self) -> Arc<dyn Host> {
        self.me.upgrade().expect("the node is alive")
    }

    fn peer(&self) -> Arc<dyn Host> {
        self.peer.upgrade().expect("the peer is alive")
    }
}

impl Distribution for Loopback {
    fn send(&self, _from: Option<&Pid>, to: &Pid, msg: Term) -> Backpressure {
        if self.up() {
            self.peer().deliver_message(to, msg);
        }
        Backpressure::Clear
    }
    fn send_named(&self, _from: Option<&Pid>, node: &NodeName, name: &Atom, msg: Term) -> Backpressure {
        if self.up() && node == &self.peer_name {
            self.peer().deliver_named(name, msg);
        }
        Backpressure::Clear
    }
    fn try_send(&self, from: &Pid, to: &Pid, msg: Term) -> Result<(), TrySendError> {
        let _ = self.send(Some(from), to, msg);
        Ok(())
    }
    fn poll_room(&self, _node: &NodeName, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }
    fn link(&self, from: &Pid, to: &Pid) -> Backpressure {
        if !self.up() {
            self.me().deliver_exit(to, from, reason::noconnection(), true);
        } else if !self.peer().add_remote_link(to, from) {
            self.me().deliver_exit(to, from, reason::noproc(), true);
        }
        Backpressure::Clear
    }
    fn unlink(&self, from: &Pid, to: &Pid) -> Backpressure {
        self.peer().remove_remote_link(to, from);
        Backpressure::Clear
    }
    fn exit(&self, from: &Pid, to: &Pid, reason: Term, linked: bool) -> Backpressure {
        if self.up() {
            self.peer().deliver_exit(from, to, reason, linked);
        }
        Backpressure::Clear
    }
    fn monitor(&self, watcher: &Pid, target: &Monitored, reference: &Ref) -> Backpressure {
        let resolved = match target {
            Monitored::Pid(pid) => Some(pid.clone()),
            Monitored::Name { name, .. } => self.peer().resolve_name(name),
        };
        if !resolved.as_ref().is_some_and(|t| self.peer().add_remote_monitor(t, watcher, reference)) {
            let reported = resolved.map_or_else(|| target.clone(), Monitored::Pid);
            self.me().deliver_down(watcher, reference, &reported, reason::noproc());
        }
        Backpressure::Clear
    }
    fn demonitor(&self, _watcher: &Pid, target: &Monitored, reference: &Ref) -> Backpressure {
        if let Monitored::Pid(target) = target {
            self.peer().remove_remote_monitor(target, reference);
        }
        Backpressure::Clear
    }
    fn down(&self, target: &Pid, watcher: &Pid, reference: &Ref, reason: Term) {
        if self.up() {
            self.peer().deliver_down(watcher, reference, &Monitored::Pid(target.clone()), reason);
        }
    }
    fn process_exited(&self, _pid: &Pid) {}
    fn is_alive(&self) -> bool {
        true
    }
    fn nodes(&self) -> Vec<NodeName> {
        if self.up() {
            vec![self.peer_name.clone()]
        } else {
            Vec::new()
        }
    }
    fn listen_addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], 0).into()
    }
    fn ticktime(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn connect(&self, _node: &NodeName) -> BoxFuture<Result<(), DistError>> {
        Box::pin(async { Ok(()) })
    }
    fn disconnect(&self, _node: &NodeName) -> bool {
        false
    }
    fn shutdown(&self) -> BoxFuture<()> {
        Box::pin(async {})
    }
    fn monitor_node(&self, _watcher: &Pid, _node: &NodeName) {}
    fn demonitor_node(&self, _watcher: &Pid, _node: &NodeName) -> bool {
        false
    }
    fn monitor_nodes(&self, _watcher: &Pid, _on: bool) {}
    fn spawn_request(
        &self,
        _from: &Pid,
        node: &NodeName,
        _function: &Atom,
        _args: Vec<Term>,
        _link: bool,
        _monitor: bool,
    ) -> BoxFuture<Result<(Pid, Ref), RemoteSpawnError>> {
        let node = node.clone();
        Box::pin(async move { Err(RemoteSpawnError::Unsupported(node)) })
    }
}

fn pair() -> (Node, Node, Arc<Loopback>, Arc<Loopback>) {
    let a = Node::new(NodeName::parse("a@127.0.0.1").unwrap(), 7);
    let b = Node::new(NodeName::parse("b@127.0.0.1").unwrap(), 9);
    let ab =
        Arc::new(Loopback { me: a.as_host(), peer: b.as_host(), peer_name: b.name().clone(), cut: Mutex::new(false) });
    let ba =
        Arc::new(Loopback { me: b.as_host(), peer: a.as_host(), peer_name: a.name().clone(), cut: Mutex::new(false) });
    a.set_distribution(ab.clone());
    b.set_distribution(ba.clone());
    (a, b, ab, ba)
}

/// The node's [`Host`], as a distribution layer sees it.
fn host(node: &Node) -> Arc<dyn Host> {
    node.as_host().upgrade().unwrap()
}

#[test]
fn messages_and_named_sends_cross_the_seam_in_order() {
    run(async {
        let (a, b, _, _) = pair();
        let (collector_pid, rx) = collector(&b);
        b.register("inbox", &collector_pid).unwrap();
        let b_name = b.name().clone();
        in_process(&a, move |me| async move {
            for i in 0..100 {
                me.send(&collector_pid, Term::Int(i));
            }
            me.send_named_on("inbox", &b_name, Term::atom("by_name")).unwrap();
        })
        .await;
        for i in 0..100 {
            assert_eq!(next(&rx).await, Term::Int(i));
        }
        assert_eq!(next(&rx).await, Term::atom("by_name"));
    });
}

#[test]
fn remote_links_and_monitors_fire_with_the_real_reason() {
    run(async {
        let (a, b, _, _) = pair();
        let remote = b.spawn(|mut p| async move {
            p.receive().await;
            Term::atom("remote_crash")
        });
        let remote = remote.clone();
        let r2 = remote.clone();
        let (exit_msg_seen, down) = in_process(&a, move |mut me| async move {
            me.trap_exit(true);
            me.link(&r2).unwrap();
            let r = me.monitor(&r2);
            me.send(&r2, Term::atom("die"));
            let first = me.receive().await;
            let second = me.receive().await;
            let (exit, down) =
                if first.as_tuple().unwrap()[0].is_atom("EXIT") { (first, second) } else { (second, first) };
            assert_eq!(down.as_tuple().unwrap()[1], Term::Ref(r));
            (exit, down)
        })
        .await;
        assert_eq!(exit_msg_seen, exit_msg(&remote, Term::atom("remote_crash")));
        assert_eq!(down.as_tuple().unwrap()[3], Term::atom("remote_crash"));
        // A local process linked from a remote one dies with the remote's reason.
        let local = idle(&a);
        let local_down = watch(&a, &local).await;
        let l2 = local.clone();
        b.spawn(move |p| async move {
            p.link(&l2).unwrap();
            Term::atom("bye_from_b")
        });
        assert_eq!(next(&local_down).await, Term::atom("bye_from_b"));
    });
}

#[test]
fn dead_stale_and_unreachable_remote_pids() {
    run(async {
        let (a, b, _, _) = pair();
        let dead_remote = b.spawn(|_| async {});
        next(&watch(&b, &dead_remote).await).await;
        // Stale creation of our own node.
        let stale = Pid::new(a.name().clone(), 1, 6);
        let unknown_node = Pid::new(NodeName::parse("c@127.0.0.1").unwrap(), 1, 1);
        let local_only = Node::local();
        let unknown2 = unknown_node.clone();
        let results = in_process(&a, move |mut me| async move {
            me.trap_exit(true);
            let mut reasons = Vec::new();
            for target in [dead_remote, stale] {
                me.monitor(&target);
                reasons.push(me.receive().await.as_tuple().unwrap()[3].clone());
                me.link(&target).unwrap();
                reasons.push(me.receive().await.as_tuple().unwrap()[2].clone());
            }
            reasons
        })
        .await;
        assert!(results.iter().all(|r| *r == reason::noproc()), "{results:?}");
        // A node without a router treats every remote pid as dead.
        let r = in_process(&local_only, move |mut me| async move {
            me.monitor(&unknown2);
            me.receive().await
        })
        .await;
        assert_eq!(r.as_tuple().unwrap()[3], reason::noproc());
    });
}

#[test]
fn connection_loss_fires_noconnection_on_both_links_and_monitors() {
    run(async {
        let (a, b, ab, _) = pair();
        let remote = idle(&b);
        let (ready_tx, ready_rx) = async_channel::bounded(1);
        let r2 = remote.clone();
        let (tx, rx) = async_channel::bounded(1);
        a.spawn(move |mut me| async move {
            me.trap_exit(true);
            me.link(&r2).unwrap();
            me.monitor(&r2);
            let _ = ready_tx.send(()).await;
            let x = me.receive().await;
            let y = me.receive().await;
            let _ = tx.send((x, y)).await;
        });
        next(&ready_rx).await;
        *ab.cut.lock().unwrap() = true;
        host(&a).connection_lost(b.name());
        let (x, y) = within(rx.recv()).await.unwrap();
        let mut reasons: Vec<Term> = [x, y].iter().map(|m| m.as_tuple().unwrap().last().unwrap().clone()).collect();
        reasons.dedup();
        assert_eq!(reasons, vec![reason::noconnection()]);
        // The remote process itself is untouched: it is on a node that is still running.
        assert!(b.is_alive(&remote));
    });
}

#[test]
fn spawn_registered_runs_only_allow_listed_functions() {
    run(async {
        let (a, b, _, _) = pair();
        b.register_spawnable("double", |p, args| async move {
            match args.as_tuple() {
                Some([Term::Pid(reply_to), Term::Int(n)]) => {
                    p.send(reply_to, Term::Int(n * 2));
                    reason::normal()
                }
                _ => Term::atom("badarg"),
            }
        });
        let (me_pid, rx) = collector(&a);
        let args = Term::tuple([Term::Pid(me_pid.clone()), Term::Int(21)]);
        let child = host(&b).spawn_registered(&Atom::new("double"), args, None, None, &mut |_| {}).unwrap();
        assert_eq!(child.node(), b.name());
        assert_eq!(next(&rx).await, Term::Int(42));
        let err = host(&b).spawn_registered(&Atom::new("rm_rf"), Term::Unit, None, None, &mut |_| {}).unwrap_err();
        assert_eq!(err, SpawnError::NotSpawnable("rm_rf".into()));
        assert!(err.to_string().contains("register_spawnable"));
        // spawn with link_to: the remote parent hears about the child's exit.
        let (parent_tx, parent_rx) = async_channel::bounded(1);
        let b2 = b.clone();
        let a2 = a.clone();
        a.spawn(move |mut me| async move {
            me.trap_exit(true);
            let args = Term::tuple([Term::Pid(me.pid().clone()), Term::Int(1)]);
            let parent = me.pid().clone();
            // What the requester's distribution does on SPAWN_REPLY: record its side of the link.
            let mut on_reply = |child: &Pid| assert!(host(&a2).add_remote_link(&parent, child));
            let child =
                host(&b2).spawn_registered(&Atom::new("double"), args, Some(me.pid()), None, &mut on_reply).unwrap();
            let _two = me.receive().await;
            let exit = me.receive().await;
            let _ = parent_tx.send(exit == exit_msg(&child, reason::normal())).await;
        });
        assert!(next(&parent_rx).await);
    });
}
