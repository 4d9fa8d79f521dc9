//! The pool with `SNOW_SCHEDULERS=1`: the variable is obeyed, and on a single worker a pair of
//! processes ping-ponging forever does not starve a third one (the LIFO slot's fairness cap).
//!
//! This binary holds one test only: it sets the variable before anything starts the pool.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use snow_node_rt::{Node, Term};
use support::*;

fn scheduler_threads() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("snow-sched"))
        .count()
}

#[test]
fn one_worker_runs_a_third_process_beside_a_ping_pong_pair() {
    std::env::set_var("SNOW_SCHEDULERS", "1");
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
