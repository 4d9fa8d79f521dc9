//! The pool with `SNOW_SCHEDULERS=1`: the variable is obeyed; on a single worker a pair of
//! processes ping-ponging forever does not starve a third one (the LIFO slot's fairness cap); and
//! a connection's writer runs after the processes ready on its thread, so what they send leaves
//! in one write.
//!
//! Every test here calls [`one_worker`] first, which sets the variable before anything starts the
//! pool (the pool is process-wide and starts once).

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};

use snow_node_rt::{Node, Pid, Term};
use support::*;

/// Sets `SNOW_SCHEDULERS=1` for this binary's pool; every test calls it before it starts a node.
fn one_worker() {
    static SET: Once = Once::new();
    SET.call_once(|| std::env::set_var("SNOW_SCHEDULERS", "1"));
}

fn scheduler_threads() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("snow-sched"))
        .count()
}

#[test]
fn one_worker_runs_a_third_process_beside_a_ping_pong_pair() {
    one_worker();
    let node = Node::local();
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = async_channel::bounded(1);
    let stop_pair = stop.clone();
    node.spawn(move |mut me| async move {
        let parent = me.pid().clone();
        let echo = me.spawn(move |mut e| async move {
            loop {
                let m = e.receive().await;
                if m == Term::atom("stop") {
                    return;
                }
                e.send(&parent, m);
            }
        });
        me.send(&echo, Term::Int(0));
        me.receive().await;
        // Spawned from the pool's only worker while the pair keeps it busy.
        let stop_third = stop_pair.clone();
        me.spawn(move |_| async move {
            stop_third.store(true, Ordering::SeqCst);
            let _ = tx.send(()).await;
        });
        while !stop_pair.load(Ordering::SeqCst) {
            me.send(&echo, Term::Int(1));
            me.receive().await;
        }
        me.send(&echo, Term::atom("stop"));
    });
    run(async { within(rx.recv()).await.expect("third process starved") });
    assert!(stop.load(Ordering::SeqCst));
    if std::path::Path::new("/proc/self/task").exists() {
        assert_eq!(scheduler_threads(), 1, "SNOW_SCHEDULERS=1 not obeyed");
    }
}

/// A connection's writer yields to the processes ready on its thread before it writes (the
/// writer in snow-node-rt/src/dist/connection.rs): on one worker, processes made ready together
/// send in one round, and their messages leave in a write or two, not one write each.
#[test]
fn sends_of_processes_ready_together_leave_in_few_socket_writes() {
    const SENDERS: i64 = 64;
    one_worker();
    run(async {
        let epmd = epmd().await;
        let nodes = mesh(&epmd, &["a", "b"]).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let (sink, got) = collector(b);
        let senders: Vec<Pid> = (0..SENDERS)
            .map(|i| {
                let sink = sink.clone();
                a.spawn(move |mut me| async move {
                    me.receive().await;
                    me.send(&sink, Term::Int(i));
                })
            })
            .collect();
        let before = a.connection_socket_writes(b.name()).expect("connected");
        // One process makes every sender ready in one go.
        a.spawn(move |me| async move {
            for sender in &senders {
                me.send(sender, Term::atom("go"));
            }
        });
        let mut seen = Vec::new();
        for _ in 0..SENDERS {
            seen.push(next(&got).await);
        }
        seen.sort_by_key(|t| if let Term::Int(i) = t { *i } else { -1 });
        assert_eq!(seen, (0..SENDERS).map(Term::Int).collect::<Vec<_>>());
        let writes = a.connection_socket_writes(b.name()).expect("still connected") - before;
        eprintln!("{SENDERS} messages from {SENDERS} processes: {writes} socket writes");
        assert!(writes <= 8, "{SENDERS} messages took {writes} socket writes");
        shutdown_all(&nodes).await;
    });
}
