//! Links, monitors, node monitors and remote spawn across nodes.

mod support;

use snow_node_rt::dist::RemoteSpawnError;
use snow_node_rt::{Pid, Term};
use support::*;

/// A process on `node` that traps exits, links to / monitors `target` as told, and forwards
/// everything it receives to the returned channel.
fn watcher(node: &snow_node_rt::Node, target: Pid, link: bool) -> async_channel::Receiver<Term> {
    let (tx, rx) = async_channel::unbounded();
    node.spawn(move |mut me| async move {
        me.trap_exit(true);
        if link {
            me.link(&target).unwrap();
        } else {
            me.monitor(&target);
        }
        let _ = tx.send(Term::atom("ready")).await;
        loop {
            let msg = me.receive().await;
            if tx.send(msg).await.is_err() {
                return;
            }
        }
    });
    rx
}

fn idle(node: &snow_node_rt::Node) -> Pid {
    node.spawn(|mut me| async move {
        let _ = me.receive().await;
    })
}

fn reason_of(msg: &Term) -> Term {
    msg.as_tuple().unwrap().last().unwrap().clone()
}

#[test]
fn remote_link_and_monitor_fire_noconnection_on_disconnect() {
    run(async {
        let epmd = epmd().await;
        let a = node(&epmd, "a").await;
        let b = node(&epmd, "b").await;
        let target = idle(&b);
        let linked = watcher(&a, target.clone(), true);
        let monitoring = watcher(&a, target.clone(), false);
        assert_eq!(next(&linked).await, Term::atom("ready"));
        assert_eq!(next(&monitoring).await, Term::atom("ready"));
        eventually("connected", || a.nodes().len() == 1).await;
        // Let the LINK and MONITOR reach B before cutting.
        snow_node_rt::sleep(std::time::Duration::from_millis(100)).await;
        assert!(a.disconnect(&name("b")).unwrap());
        let exit = next(&linked).await;
        assert_eq!(exit.as_tuple().unwrap()[0], Term::atom("EXIT"));
        assert_eq!(reason_of(&exit), Term::atom("noconnection"));
        let down = next(&monitoring).await;
        assert_eq!(down.as_tuple().unwrap()[0], Term::atom("DOWN"));
        assert_eq!(reason_of(&down), Term::atom("noconnection"));
        a.shutdown().await;
        b.shutdown().await;
    });
}

#[test]
fn remote_exit_reaches_linked_and_monitoring_processes() {
    run(async {
        let epmd = epmd().await;
        let a = node(&epmd, "a").await;
        let b = node(&epmd, "b").await;
        let target = idle(&b);
        let linked = watcher(&a, target.clone(), true);
        let monitoring = watcher(&a, target.clone(), false);
        next(&linked).await;
        next(&monitoring).await;
        snow_node_rt::sleep(std::time::Duration::from_millis(100)).await;
        b.exit(&target, Term::atom("boom"));
        assert_eq!(reason_of(&next(&linked).await), Term::atom("boom"));
        assert_eq!(reason_of(&next(&monitoring).await), Term::atom("boom"));
        a.shutdown().await;
        b.shutdown().await;
    });
}

/// The creation `node` had before its current one (snow-epmd counts creations up, wrapping from
/// `u32::MAX` to 1).
fn previous_creation(node: &snow_node_rt::Node) -> u32 {
    match node.creation() {
        1 => u32::MAX,
        c => c - 1,
    }
}

#[test]
fn dead_and_stale_pids_give_noproc() {
    run(async {
        let epmd = epmd().await;
        let a = node(&epmd, "a").await;
        let b = node(&epmd, "b").await;
        let dead = b.spawn(|_| async {});
        eventually("process gone", || !b.is_alive(&dead)).await;
        // A live process on B, and a pid with its node and id but B's previous creation.
        let (live, live_rx) = collector(&b);
        let stale = Pid::new(b.name().clone(), live.id(), previous_creation(&b));
        assert_ne!(stale, live);
        for target in [dead, stale.clone()] {
            let monitoring = watcher(&a, target.clone(), false);
            next(&monitoring).await;
            assert_eq!(reason_of(&next(&monitoring).await), Term::atom("noproc"), "monitor of {target}");
            let linked = watcher(&a, target.clone(), true);
            next(&linked).await;
            assert_eq!(reason_of(&next(&linked).await), Term::atom("noproc"), "link to {target}");
        }
        // A message to the stale pid is dropped by B: the live process with that id gets nothing. The
        // marker follows it on the same path (same sender, same connection, so FIFO): had the stale
        // message been delivered, the live process would have received it before the marker.
        a.send(&stale, Term::atom("stale"));
        a.send(&live, Term::atom("marker"));
        assert_eq!(next(&live_rx).await, Term::atom("marker"));
        snow_node_rt::sleep(std::time::Duration::from_millis(100)).await;
        assert!(live_rx.try_recv().is_err(), "the live process got more than the marker");
        assert!(b.is_alive(&live));
        a.shutdown().await;
        b.shutdown().await;
    });
}

/// A process on `node` that runs `setup`, reports what it returns, then forwards everything it
/// receives. Returns once `setup` has run, with its result.
async fn probe(
    node: &snow_node_rt::Node,
    setup: impl FnOnce(&snow_node_rt::Process) -> Term + Send + 'static,
) -> (Pid, Term, async_channel::Receiver<Term>) {
    // The channel is unbounded: the send cannot fail while the receiver is alive.
    let (pid, rx) = forwarder(node, move |me, tx| {
        let _ = tx.try_send(setup(me));
    });
    let result = next(&rx).await;
    (pid, result, rx)
}

#[test]
fn demonitor_node_removes_one_watch() {
    run(async {
        let epmd = epmd().await;
        let a = node(&epmd, "a").await;
        let b = node(&epmd, "b").await;
        a.connect(&name("b")).await.unwrap();
        let nodedown_b = Term::tuple([Term::atom("nodedown"), Term::Atom(name("b").as_atom().clone())]);
        // Watches B, then removes the watch; a second removal finds none.
        let (quiet, removed, quiet_rx) = probe(&a, |me| {
            me.monitor_node(&name("b"));
            Term::tuple([Term::Bool(me.demonitor_node(&name("b"))), Term::Bool(me.demonitor_node(&name("b")))])
        })
        .await;
        assert_eq!(removed, Term::tuple([Term::Bool(true), Term::Bool(false)]));
        // Watches B twice and removes one watch: one nodedown left.
        let (twice, removed, twice_rx) = probe(&a, |me| {
            me.monitor_node(&name("b"));
            me.monitor_node(&name("b"));
            Term::Bool(me.demonitor_node(&name("b")))
        })
        .await;
        assert_eq!(removed, Term::Bool(true));
        // Watches B and keeps the watch: proves the nodedown happened.
        let (loud, _, loud_rx) = probe(&a, |me| {
            me.monitor_node(&name("b"));
            Term::atom("ready")
        })
        .await;
        // Never having watched, a process has nothing to remove.
        let (_, removed, _) = probe(&a, |me| Term::Bool(me.demonitor_node(&name("b")))).await;
        assert_eq!(removed, Term::Bool(false));
        assert_eq!(a.nodes(), vec![name("b")]);
        // `disconnect` tells node watchers before it returns, so a marker sent afterwards lands behind
        // any nodedown in each mailbox.
        assert!(a.disconnect(&name("b")).unwrap());
        for pid in [&quiet, &twice, &loud] {
            a.send(pid, Term::atom("marker"));
        }
        assert_eq!(next(&loud_rx).await, nodedown_b);
        assert_eq!(next(&loud_rx).await, Term::atom("marker"));
        assert_eq!(next(&quiet_rx).await, Term::atom("marker"), "the removed watch gave no nodedown");
        assert_eq!(next(&twice_rx).await, nodedown_b);
        assert_eq!(next(&twice_rx).await, Term::atom("marker"), "one watch of two removed: one nodedown");
        snow_node_rt::sleep(std::time::Duration::from_millis(100)).await;
        assert!(quiet_rx.try_recv().is_err() && twice_rx.try_recv().is_err() && loud_rx.try_recv().is_err());
        a.shutdown().await;
        b.shutdown().await;
    });
}

#[test]
fn node_monitors_report_up_and_down() {
    run(async {
        let epmd = epmd().await;
        let a = node(&epmd, "a").await;
        let b = node(&epmd, "b").await;
        let (tx, events) = async_channel::unbounded();
        a.spawn(move |mut me| async move {
            me.monitor_nodes(true);
            me.monitor_node(&name("b"));
            // A node that does not exist: nodedown at once (Erlang's monitor_node semantics).
            me.monitor_node(&name("ghost"));
            loop {
                let msg = me.receive().await;
                if tx.send(msg).await.is_err() {
                    return;
                }
            }
        });
        let mut seen = Vec::new();
        for _ in 0..2 {
            seen.push(next(&events).await.to_string());
        }
        seen.sort();
        assert_eq!(seen, ["{:nodedown, :\"ghost@127.0.0.1\"}", "{:nodeup, :\"b@127.0.0.1\"}"]);
        b.shutdown().await;
        // Both the monitor_node watch and the monitor_nodes subscription report B's loss.
        for _ in 0..2 {
            assert_eq!(next(&events).await.to_string(), "{:nodedown, :\"b@127.0.0.1\"}");
        }
        a.shutdown().await;
    });
}

#[test]
fn remote_spawn_runs_only_allow_listed_functions() {
    run(async {
        let epmd = epmd().await;
        let a = node(&epmd, "a").await;
        let b = node(&epmd, "b").await;
        b.register_spawnable("adder", |mut me, args| async move {
            let msg = me.receive().await;
            if let (Some([Term::Pid(reply_to), Term::Int(x)]), Term::List(args)) = (msg.as_tuple(), &args) {
                if let Some(Term::Int(y)) = args.first() {
                    me.send(reply_to, Term::Int(x + y));
                }
            }
            Term::atom("normal")
        });
        let (tx, rx) = async_channel::unbounded();
        a.spawn(move |mut me| async move {
            let child = me.spawn_link_remote(&name("b"), "adder", vec![Term::Int(40)]).await.unwrap();
            assert_eq!(child.node(), &name("b"));
            me.send(&child, Term::tuple([Term::Pid(me.pid().clone()), Term::Int(2)]));
            let sum = me.receive().await;
            let refused = me.spawn_remote(&name("b"), "rm_rf", vec![]).await;
            let _ = tx.send((sum, refused)).await;
        });
        let (sum, refused) = smol_timeout::TimeoutExt::timeout(rx.recv(), WAIT).await.ok_or(()).unwrap().unwrap();
        assert_eq!(sum, Term::Int(42));
        assert!(matches!(refused, Err(RemoteSpawnError::Refused { .. })), "{refused:?}");
        a.shutdown().await;
        b.shutdown().await;
    });
}
