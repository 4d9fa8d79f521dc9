//! Links, monitors, node monitors and remote spawn across nodes.

mod dist_support;

use dist_support::*;
use snow_node_rt::dist::RemoteSpawnError;
use snow_node_rt::{Pid, Term};

/// A process on `node` that traps exits, links to / monitors `target` as told, and forwards
/// everything it receives to the returned channel.
fn watcher(node: &snow_node_rt::Node, target: Pid, link: bool) -> async_std::channel::Receiver<Term> {
    let (tx, rx) = async_std::channel::unbounded();
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
    .pid()
    .clone()
}

fn reason_of(msg: &Term) -> Term {
    msg.as_tuple().unwrap().last().unwrap().clone()
}

#[async_std::test]
async fn remote_link_and_monitor_fire_noconnection_on_disconnect() {
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
    async_std::task::sleep(std::time::Duration::from_millis(100)).await;
    assert!(a.disconnect("b@127.0.0.1").unwrap());
    let exit = next(&linked).await;
    assert_eq!(exit.as_tuple().unwrap()[0], Term::atom("EXIT"));
    assert_eq!(reason_of(&exit), Term::atom("noconnection"));
    let down = next(&monitoring).await;
    assert_eq!(down.as_tuple().unwrap()[0], Term::atom("down"));
    assert_eq!(reason_of(&down), Term::atom("noconnection"));
    a.shutdown().await;
    b.shutdown().await;
}

#[async_std::test]
async fn remote_exit_reaches_linked_and_monitoring_processes() {
    let epmd = epmd().await;
    let a = node(&epmd, "a").await;
    let b = node(&epmd, "b").await;
    let target = idle(&b);
    let linked = watcher(&a, target.clone(), true);
    let monitoring = watcher(&a, target.clone(), false);
    next(&linked).await;
    next(&monitoring).await;
    async_std::task::sleep(std::time::Duration::from_millis(100)).await;
    b.exit(&target, Term::atom("boom"));
    assert_eq!(reason_of(&next(&linked).await), Term::atom("boom"));
    assert_eq!(reason_of(&next(&monitoring).await), Term::atom("boom"));
    a.shutdown().await;
    b.shutdown().await;
}

#[async_std::test]
async fn dead_and_stale_pids_give_noproc() {
    let epmd = epmd().await;
    let a = node(&epmd, "a").await;
    let b = node(&epmd, "b").await;
    let dead = b.spawn(|_| async {}).pid().clone();
    eventually("process gone", || !b.is_alive(&dead)).await;
    let stale = Pid::new(b.self_node(), idle(&b).id(), b.creation().wrapping_add(1).max(1));
    for target in [dead, stale] {
        let monitoring = watcher(&a, target.clone(), false);
        next(&monitoring).await;
        assert_eq!(reason_of(&next(&monitoring).await), Term::atom("noproc"), "monitor of {target}");
        let linked = watcher(&a, target.clone(), true);
        next(&linked).await;
        assert_eq!(reason_of(&next(&linked).await), Term::atom("noproc"), "link to {target}");
    }
    // Messages to the stale pid are dropped by B (the live process with that id gets nothing).
    a.shutdown().await;
    b.shutdown().await;
}

#[async_std::test]
async fn node_monitors_report_up_and_down() {
    let epmd = epmd().await;
    let a = node(&epmd, "a").await;
    let b = node(&epmd, "b").await;
    let (tx, events) = async_std::channel::unbounded();
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
}

#[async_std::test]
async fn remote_spawn_runs_only_allow_listed_functions() {
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
    let (tx, rx) = async_std::channel::unbounded();
    a.spawn(move |mut me| async move {
        let child = me.spawn_link_remote(&name("b"), "adder", vec![Term::Int(40)]).await.unwrap();
        assert_eq!(child.node(), &name("b"));
        me.send(&child, Term::tuple([Term::Pid(me.pid().clone()), Term::Int(2)]));
        let sum = me.receive().await;
        let refused = me.spawn_remote(&name("b"), "rm_rf", vec![]).await;
        let _ = tx.send((sum, refused)).await;
    });
    let (sum, refused) = async_std::future::timeout(WAIT, rx.recv()).await.unwrap().unwrap();
    assert_eq!(sum, Term::Int(42));
    assert!(matches!(refused, Err(RemoteSpawnError::Refused { .. })), "{refused:?}");
    a.shutdown().await;
    b.shutdown().await;
}
