//! Tests of the scheduler on private pools (the process-wide pool is exercised through `Node`
//! in `tests/sched_*.rs`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_channel::{bounded, unbounded};
use smol_timeout::TimeoutExt;

use super::*;

/// Waits for a task's handle, failing the test after `secs` seconds.
fn wait<T>(handle: JoinHandle<T>, secs: u64) -> Option<T> {
    crate::block_on(handle.timeout(Duration::from_secs(secs))).expect("task did not finish in time")
}

#[test]
fn spin_time_reads_the_variable_and_rejects_nonsense() {
    assert_eq!(spin_time(None), Ok(DEFAULT_SPIN));
    assert_eq!(spin_time(Some("0")), Ok(Duration::ZERO));
    assert_eq!(spin_time(Some(" 250 ")), Ok(Duration::from_micros(250)));
    for bad in ["-1", "fast", "", "10001", "2.5"] {
        let err = spin_time(Some(bad)).unwrap_err();
        assert_eq!(err, SchedulersError::InvalidSpin(bad.to_owned()));
        assert!(err.to_string().contains("SNOW_SCHED_SPIN_US"), "{err}");
    }
}

#[test]
fn without_a_spin_parked_workers_still_wake_for_new_work() {
    let pool = Pool::with_spin(2, "t-nospin", Duration::ZERO);
    for round in 0..200u32 {
        let handle = pool.spawn(async move { round * 2 });
        assert_eq!(wait(handle, 10), Some(round * 2));
    }
}

#[test]
fn worker_count_reads_the_variable_and_rejects_nonsense() {
    assert_eq!(worker_count(None, 2), Ok(2));
    assert_eq!(worker_count(None, 0), Ok(1));
    assert_eq!(worker_count(Some("3"), 2), Ok(3));
    assert_eq!(worker_count(Some(" 1 "), 2), Ok(1));
    for bad in ["0", "-1", "two", "", "1025", "1.5"] {
        let err = worker_count(Some(bad), 2).unwrap_err();
        assert_eq!(err, SchedulersError::Invalid(bad.to_owned()));
        assert!(err.to_string().contains("SNOW_SCHEDULERS"), "{err}");
    }
}

#[test]
fn a_task_spawned_from_outside_runs_and_returns_its_output() {
    let pool = Pool::new(2, "t-out");
    assert_eq!(pool.workers(), 2);
    assert_eq!(wait(pool.spawn(async { 6 * 7 }), 10), Some(42));
}

#[test]
fn wakes_from_plain_threads_reach_parked_tasks() {
    let pool = Pool::new(2, "t-wake");
    let (tx, rx) = bounded::<u32>(1);
    let sum = pool.spawn(async move {
        let mut sum = 0;
        while let Ok(n) = rx.recv().await {
            sum += n;
        }
        sum
    });
    let sender = std::thread::spawn(move || {
        for n in 1..=1000 {
            crate::block_on(tx.send(n)).unwrap();
            if n % 100 == 0 {
                // Let the pool go idle so the next wake must unpark a worker.
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    });
    sender.join().unwrap();
    assert_eq!(wait(sum, 30), Some(500_500));
}

#[test]
fn no_wake_up_is_lost_under_many_cross_thread_wakes() {
    many_cross_thread_wakes(DEFAULT_SPIN);
}

#[test]
fn no_wake_up_is_lost_under_many_cross_thread_wakes_without_a_spin() {
    many_cross_thread_wakes(Duration::ZERO);
}

fn many_cross_thread_wakes(spin: Duration) {
    // 64 tasks, each woken 2,000 times: half the wakes come from 4 plain threads (the injector
    // path), half from relay tasks on the pool (the LIFO-slot and local-queue paths). A single
    // lost wake-up leaves a task (and the bounded channels behind it) stuck: parked workers
    // have no periodic wake-up, so only the wake-up protocol can deliver the work.
    let pool = Pool::with_spin(2, "t-stress", spin);
    const TASKS: usize = 64;
    const ROUNDS: usize = 2_000;
    let mut targets = Vec::new();
    let mut handles = Vec::new();
    for i in 0..TASKS {
        let (tx, rx) = bounded::<usize>(1);
        targets.push(tx);
        handles.push(pool.spawn(async move {
            let mut got = 0;
            while got < ROUNDS && rx.recv().await.is_ok() {
                got += 1;
            }
            (i, got)
        }));
    }
    let targets = Arc::new(targets);
    let mut relays = Vec::new();
    for _ in 0..4 {
        let (tx, rx) = bounded::<(usize, usize)>(1);
        let targets = targets.clone();
        drop(pool.spawn(async move {
            while let Ok((i, n)) = rx.recv().await {
                let _ = targets[i].send(n).await;
            }
        }));
        relays.push(tx);
    }
    let started = Instant::now();
    let threads: Vec<_> = relays
        .into_iter()
        .enumerate()
        .map(|(t, relay)| {
            let targets = targets.clone();
            std::thread::spawn(move || {
                crate::block_on(async {
                    for round in 0..ROUNDS / 4 {
                        for (i, tx) in targets.iter().enumerate() {
                            // A lost wake-up shows as a send that never completes.
                            let sent = if (i + round + t) % 2 == 0 {
                                tx.send(round).timeout(Duration::from_secs(30)).await.map(|r| r.is_ok())
                            } else {
                                relay.send((i, round)).timeout(Duration::from_secs(30)).await.map(|r| r.is_ok())
                            };
                            assert_eq!(sent, Some(true), "send to task {i} in round {round} did not complete");
                        }
                    }
                })
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for handle in handles {
        let (i, got) = wait(handle, 60).unwrap();
        assert_eq!(got, ROUNDS, "task {i}");
    }
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn a_task_woken_by_a_task_runs_next_on_the_same_worker() {
    let pool = Pool::new(2, "t-lifo");
    let (to_b, from_a) = unbounded::<()>();
    let (to_a, from_b) = unbounded::<()>();
    let b = pool.spawn(async move {
        let mut threads = Vec::new();
        while from_a.recv().await.is_ok() {
            threads.push(std::thread::current().id());
            if to_a.send(()).await.is_err() {
                break;
            }
        }
        threads
    });
    let a = pool.spawn(async move {
        let mut threads = Vec::new();
        for _ in 0..1_000 {
            to_b.send(()).await.unwrap();
            from_b.recv().await.unwrap();
            threads.push(std::thread::current().id());
        }
        threads
    });
    let a_threads = wait(a, 30).unwrap();
    let b_threads = wait(b, 30).unwrap();
    // After the first exchanges (B may start on the other worker), both stay on one thread.
    let settled = a_threads[10];
    assert!(a_threads[10..].iter().all(|t| *t == settled));
    assert!(b_threads[10..].iter().all(|t| *t == settled));
}

#[test]
fn a_ping_pong_pair_does_not_starve_a_third_task_on_one_worker() {
    // One worker: the pair keeps waking each other into the LIFO slot forever; the third task
    // sits in the local queue behind them and runs only thanks to the fairness cap.
    let pool = Arc::new(Pool::new(1, "t-fair"));
    let stop = Arc::new(AtomicBool::new(false));
    let exchanges = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = bounded::<usize>(1);
    let inner_pool = pool.clone();
    let (stop2, exchanges2) = (stop.clone(), exchanges.clone());
    drop(pool.spawn(async move {
        let (to_b, from_a) = unbounded::<()>();
        let (to_a, from_b) = unbounded::<()>();
        drop(inner_pool.spawn(async move {
            while from_a.recv().await.is_ok() {
                if to_a.send(()).await.is_err() {
                    break;
                }
            }
        }));
        to_b.send(()).await.unwrap();
        from_b.recv().await.unwrap();
        // Spawned from the worker: the third task goes to the local queue.
        let (stop3, exchanges3) = (stop2.clone(), exchanges2.clone());
        drop(inner_pool.spawn(async move {
            stop3.store(true, Ordering::SeqCst);
            let _ = done_tx.send(exchanges3.load(Ordering::SeqCst)).await;
        }));
        while !stop2.load(Ordering::SeqCst) {
            to_b.send(()).await.unwrap();
            from_b.recv().await.unwrap();
            exchanges2.fetch_add(1, Ordering::SeqCst);
        }
    }));
    let seen =
        crate::block_on(done_rx.recv().timeout(Duration::from_secs(10))).expect("the third task was starved").unwrap();
    assert!(stop.load(Ordering::SeqCst));
    assert!(seen <= LIFO_CAP as usize, "third task ran after {seen} exchanges");
}

#[test]
fn a_task_queued_by_a_running_task_does_not_wake_a_sleeping_worker_at_once() {
    // No spin, so the idle worker sleeps; the task below runs on the other one.
    let pool = Arc::new(Pool::with_spin(2, "t-wake-other", Duration::ZERO));
    let deadline = Instant::now() + Duration::from_secs(5);
    while pool.shared.num_sleepers.load(SeqCst) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let inner = pool.clone();
    let outer = pool.spawn(async move {
        let sleeping_before = inner.shared.num_sleepers.load(SeqCst);
        let queued = inner.spawn(async { 7 });
        // Waking a sleeper takes it off the list at once; the rule waits until the task has
        // waited WAKE_OTHER_AFTER, and this worker runs it long before that.
        let sleeping_after = inner.shared.num_sleepers.load(SeqCst);
        (sleeping_before, sleeping_after, queued)
    });
    let (before, after, queued) = wait(outer, 10).unwrap();
    assert_eq!(before, 1, "the other worker sleeps while this one runs");
    assert_eq!(after, 1, "queuing a task woke the sleeping worker");
    assert_eq!(wait(queued, 10), Some(7));
}

#[test]
fn tasks_spawned_by_a_task_that_blocks_its_worker_run_on_another_worker() {
    // No spin: the other worker sleeps, and only the balancer can wake it for the spawned task
    // while the spawner keeps its worker (the spawner reaches no scheduling point).
    let pool = Arc::new(Pool::with_spin(2, "t-balance", Duration::ZERO));
    assert_eq!(wait(pool.spawn(async { 1 }), 10), Some(1));
    std::thread::sleep(Duration::from_millis(20));
    let inner = pool.clone();
    let blocker = pool.spawn(async move {
        let (tx, rx) = std::sync::mpsc::channel();
        let spawned = inner.spawn(async move {
            let _ = tx.send(());
        });
        let ran_meanwhile = rx.recv_timeout(Duration::from_secs(5)).is_ok();
        (ran_meanwhile, spawned)
    });
    let (ran_meanwhile, spawned) = wait(blocker, 10).unwrap();
    assert!(ran_meanwhile, "the spawned task waited for the blocked worker");
    wait(spawned, 10);
}

#[test]
fn the_balancer_sleeps_while_the_queues_are_empty_even_with_a_clock_left_running() {
    let pool = Pool::with_spin(2, "t-balance-idle", Duration::ZERO);
    let shared = &pool.shared;
    let balancer = shared.balancer.get().expect("two workers have a balancer").clone();
    let deadline = Instant::now() + Duration::from_secs(5);
    while shared.num_sleepers.load(SeqCst) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    // A worker's clock left running on an empty queue (as one whose queue was stolen leaves it
    // until its next scheduling point) must not keep the balancer polling an idle pool.
    shared.workers[0].queued_since.store(shared.nanos_now(), SeqCst);
    shared.balancer_asleep.store(false, SeqCst);
    balancer.unpark();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut asleep_twice = false;
    while !asleep_twice && Instant::now() < deadline {
        // Asleep at two looks 100 ms apart: a balancer that keeps polling is awake at almost
        // every instant (it announces a sleep only for the moment of its last look).
        std::thread::sleep(Duration::from_millis(20));
        if shared.balancer_asleep.load(SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
            asleep_twice = shared.balancer_asleep.load(SeqCst);
        }
    }
    assert!(asleep_twice, "the balancer still polls an idle pool");
}

#[test]
fn a_panicking_task_ends_alone_and_the_worker_goes_on() {
    let pool = Pool::new(1, "t-panic");
    for _ in 0..5 {
        let panicked = pool.spawn(async {
            futures_lite::future::yield_now().await;
            panic!("boom");
        });
        assert_eq!(wait(panicked, 10), None::<()>);
    }
    assert_eq!(wait(pool.spawn(async { "still here" }), 10), Some("still here"));
}

#[test]
fn timers_fire_for_tasks_on_the_pool() {
    let pool = Pool::new(1, "t-timer");
    let t = Instant::now();
    let slept = pool.spawn(async {
        crate::sleep(Duration::from_millis(30)).await;
        Instant::now()
    });
    let timed_out =
        pool.spawn(async { std::future::pending::<()>().timeout(Duration::from_millis(20)).await.is_none() });
    assert_eq!(wait(timed_out, 10), Some(true));
    let woke = wait(slept, 10).unwrap();
    assert!(woke.duration_since(t) >= Duration::from_millis(30));
}

#[test]
fn a_dropped_pool_stops_its_threads() {
    let pool = Pool::new(2, "t-drop");
    assert_eq!(wait(pool.spawn(async { 1 }), 10), Some(1));
    let shared = Arc::downgrade(&pool.shared);
    drop(pool);
    let deadline = Instant::now() + Duration::from_secs(10);
    // The workers hold the shared state until they exit.
    while shared.strong_count() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(shared.strong_count(), 0, "worker threads still running");
}
