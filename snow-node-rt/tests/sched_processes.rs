//! Processes on the scheduler pool: wake-ups from outside the pool, timers, panics, stress, and
//! several nodes sharing the pool.

mod support;

use std::time::{Duration, Instant};

use snow_node_rt::{reason, Node, Term};
use support::*;

#[test]
fn sends_from_plain_threads_wake_parked_processes() {
    let node = Node::local();
    let (tx, rx) = async_channel::bounded(16);
    // 16 processes, each expecting 500 messages from 4 plain OS threads (125 each).
    let pids: Vec<_> = (0..16)
        .map(|i| {
            let tx = tx.clone();
            node.spawn(move |mut me| async move {
                let mut sum = 0i64;
                for _ in 0..500 {
                    sum += me.receive().await.as_int().unwrap_or(0);
                }
                let _ = tx.send((i, sum)).await;
            })
        })
        .collect();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (node, pids) = (node.clone(), pids.clone());
            std::thread::spawn(move || {
                for round in 0..125 {
                    for pid in &pids {
                        node.send(pid, Term::Int(1));
                    }
                    if round % 25 == 0 {
                        // Let the pool go idle so later sends must unpark a worker.
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    run(async {
        for _ in 0..16 {
            let (i, sum) = within(rx.recv()).await.unwrap();
            assert_eq!(sum, 500, "process {i}");
        }
    });
}

#[test]
fn timers_fire_for_processes() {
    run(async {
        let node = Node::local();
        let t = Instant::now();
        let (timed_out, slept, delivered) = in_process(&node, |mut me| async move {
            let timed_out = me.receive_timeout(Duration::from_millis(30)).await.is_none();
            snow_node_rt::sleep(Duration::from_millis(20)).await;
            let slept = t.elapsed();
            let me_pid = me.pid().clone();
            me.node().send_after(&me_pid, Duration::from_millis(20), Term::atom("tick"));
            let delivered = me.receive_timeout(Duration::from_secs(5)).await;
            (timed_out, slept, delivered)
        })
        .await;
        assert!(timed_out);
        assert!(slept >= Duration::from_millis(50), "{slept:?}");
        assert_eq!(delivered, Some(Term::atom("tick")));
    });
}

/// A process body that panics with `message`.
async fn die(message: &'static str) {
    panic!("{message}");
}

#[test]
fn panicking_processes_leave_the_others_running() {
    run(async {
        let node = Node::local();
        for _ in 0..200 {
            node.spawn(|_| die("deliberate"));
        }
        let survivor = node.spawn(|mut me| async move {
            let m = me.receive().await;
            if let Some([Term::Pid(from), _]) = m.as_tuple() {
                me.send(from, Term::atom("alive"));
            }
        });
        let answer = in_process(&node, move |mut me| async move {
            me.send(&survivor, Term::tuple([Term::Pid(me.pid().clone()), Term::Unit]));
            me.receive_timeout(WAIT).await
        })
        .await;
        assert_eq!(answer, Some(Term::atom("alive")));
        // This one waits for a message before panicking, so the monitor is in place first.
        let watched = node.spawn(|mut me| async move {
            me.receive().await;
            die("watched").await;
        });
        let down = watch(&node, &watched).await;
        node.send(&watched, Term::Unit);
        let reason = within(down.recv()).await.unwrap();
        assert_eq!(reason, reason::panic("watched".to_owned()));
    });
}

#[test]
fn many_pairs_ping_pong_to_completion() {
    run(async {
        let node = Node::local();
        let (tx, rx) = async_channel::bounded(64);
        for _ in 0..64 {
            let tx = tx.clone();
            node.spawn(move |mut me| async move {
                let parent = me.pid().clone();
                let echo = me.spawn(move |mut e| async move {
                    for _ in 0..2_000 {
                        let m = e.receive().await;
                        e.send(&parent, m);
                    }
                });
                let mut count = 0;
                for i in 0..2_000 {
                    me.send(&echo, Term::Int(i));
                    if me.receive().await == Term::Int(i) {
                        count += 1;
                    }
                }
                let _ = tx.send(count).await;
            });
        }
        for _ in 0..64 {
            assert_eq!(within(rx.recv()).await.unwrap(), 2_000);
        }
    });
}

#[test]
fn several_nodes_share_the_pool() {
    run(async {
        let a = Node::local();
        let b = Node::local();
        let from_a = in_process(&a, |me| async move { me.pid().clone() }).await;
        let (tx, rx) = async_channel::bounded(1);
        let bp = b.spawn(move |mut me| async move {
            let _ = tx.send(me.receive().await).await;
        });
        b.send(&bp, Term::Pid(from_a));
        assert!(matches!(within(rx.recv()).await.unwrap(), Term::Pid(_)));
    });
}
