use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};

use super::tcp::{TcpListener, TcpStream};
use super::timer::Timer;
use super::{block_on, Reactor, Waiting};

/// Every wait in these tests ends by this deadline; a lost wake-up fails instead of hanging.
const DEADLINE: Duration = Duration::from_secs(10);

/// A connected pair: a reactor stream and the plain blocking socket at its other end.
fn pair() -> (TcpStream, std::net::TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let ours = block_on(TcpStream::connect_addr(addr), Waiting::Drive).unwrap();
    let (theirs, _) = listener.accept().unwrap();
    (ours, theirs)
}

/// Runs `f` on a thread of its own and gives its result, or fails after [`DEADLINE`].
fn on_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> mpsc::Receiver<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx
}

/// A `block_on` waker for the calling thread, not yet notified.
fn this_threads_waker() -> std::sync::Arc<super::ThreadWaker> {
    std::sync::Arc::new(super::ThreadWaker {
        thread: std::thread::current(),
        notified: std::sync::atomic::AtomicBool::new(false),
        in_epoll: std::sync::atomic::AtomicBool::new(false),
    })
}

#[test]
fn a_timer_fires_at_its_deadline_and_not_before() {
    let start = Instant::now();
    let at = start + Duration::from_millis(30);
    let fired = block_on(Timer::at(Some(at)), Waiting::Drive);
    assert_eq!(fired, at);
    assert!(Instant::now() >= at);
}

#[test]
fn a_timer_earlier_than_the_wait_in_progress_wakes_the_driver() {
    // The driver waits in epoll until a timer two seconds away; a timer added meanwhile for
    // 20 ms must wake it, or it would fire with the far one.
    let far = on_thread(|| block_on(Timer::at(Some(Instant::now() + Duration::from_secs(2))), Waiting::Drive));
    std::thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    let near = on_thread(move || block_on(Timer::at(Some(start + Duration::from_millis(20))), Waiting::Park));
    near.recv_timeout(DEADLINE).unwrap();
    assert!(start.elapsed() < Duration::from_secs(1), "the near timer waited for the far one: {:?}", start.elapsed());
    far.recv_timeout(DEADLINE).unwrap();
}

#[test]
fn a_moved_or_cleared_timer_fires_at_its_new_deadline_only() {
    let mut timer = Timer::at(None);
    let start = Instant::now();
    timer.set_at(start + Duration::from_secs(3600));
    timer.set_at(start + Duration::from_millis(10));
    assert_eq!(block_on(&mut timer, Waiting::Drive), start + Duration::from_millis(10));
    timer.clear();
    let mut timer = std::pin::pin!(timer);
    let polled = block_on(futures_lite::future::poll_once(timer.as_mut()), Waiting::Drive);
    assert!(polled.is_none(), "a cleared timer fired");
}

#[test]
fn a_read_waits_for_data_and_sees_every_later_write() {
    let (ours, mut theirs) = pair();
    for round in 0..50u8 {
        let reader = ours.clone();
        // Read on another thread, which must wait (nothing is written yet), then write.
        let read = on_thread(move || {
            block_on(
                async move {
                    let mut buf = [0u8; 1];
                    let mut reader = reader;
                    reader.read_exact(&mut buf).await.map(|_| buf[0])
                },
                Waiting::Drive,
            )
        });
        if round % 2 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
        theirs.write_all(&[round]).unwrap();
        assert_eq!(read.recv_timeout(DEADLINE).unwrap().unwrap(), round, "round {round}");
    }
}

#[test]
fn a_write_into_a_full_socket_waits_until_the_peer_reads() {
    let (ours, mut theirs) = pair();
    const TOTAL: usize = 8 << 20;
    let writer = on_thread(move || {
        block_on(
            async move {
                let mut ours = ours;
                ours.write_all(&vec![7u8; TOTAL]).await?;
                ours.close().await
            },
            Waiting::Drive,
        )
    });
    // Far more than the socket buffers hold: the writer must have met EWOULDBLOCK.
    std::thread::sleep(Duration::from_millis(50));
    theirs.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut got = Vec::new();
    theirs.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), TOTAL);
    writer.recv_timeout(DEADLINE).unwrap().unwrap();
}

#[test]
fn a_release_of_the_driver_lock_wakes_its_watchers() {
    // A reactor of its own: the process-wide one is driven by other tests' threads.
    let reactor = Reactor::new().unwrap();
    let driver = reactor.try_drive().expect("a new reactor has no driver");
    assert!(reactor.is_driven());
    let (watching_tx, watching_rx) = mpsc::channel();
    let woke_at = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            reactor.watch_next_release();
            let _ = watching_tx.send(());
            let deadline = Instant::now() + DEADLINE;
            // Parks may end spuriously: go on until the lock is free or the deadline passed.
            while reactor.is_driven() && Instant::now() < deadline {
                std::thread::park_timeout(deadline.saturating_duration_since(Instant::now()));
            }
            Instant::now()
        });
        watching_rx.recv_timeout(DEADLINE).unwrap();
        // Let the watcher reach its park.
        std::thread::sleep(Duration::from_millis(50));
        let released = Instant::now();
        drop(driver);
        let woke_at = watcher.join().unwrap();
        woke_at.saturating_duration_since(released)
    });
    assert!(woke_at < DEADLINE / 2, "the watcher slept through the release ({woke_at:?})");
}

#[test]
fn a_turn_for_an_undriven_reactor_happens_only_when_nobody_drives() {
    let reactor = Reactor::new().unwrap();
    reactor.poll_if_free();
    assert_eq!(reactor.turns(), 1, "a free reactor was not turned");
    let driver = reactor.try_drive().unwrap();
    reactor.poll_if_free();
    assert_eq!(reactor.turns(), 1, "a driven reactor was turned by someone else");
    drop(driver);
    reactor.poll_if_free();
    assert_eq!(reactor.turns(), 2);
}

#[test]
fn a_connection_refused_is_an_error_not_a_hang() {
    // A port nobody listens on: bound, then closed.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let result = on_thread(move || block_on(TcpStream::connect_addr(addr), Waiting::Drive));
    let err = result.recv_timeout(DEADLINE).unwrap().err().expect("connected to a closed port");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[test]
fn a_listener_accepts_and_the_peer_sees_the_close() {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    let listener = TcpListener::new(std_listener).unwrap();
    let client = on_thread(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).map(|_| rest)
    });
    let (stream, peer) = block_on(listener.accept(), Waiting::Drive).unwrap();
    assert_eq!(peer.ip(), addr.ip());
    block_on(async { stream.clone().write_all(b"bye").await }, Waiting::Drive).unwrap();
    stream.shutdown(Shutdown::Both).unwrap();
    assert_eq!(client.recv_timeout(DEADLINE).unwrap().unwrap(), b"bye");
}

#[test]
fn a_deregistered_socket_leaves_the_registry_and_its_stale_key_finds_nothing() {
    // A reactor of its own: other tests register and drop sockets on the process-wide one.
    let reactor = Reactor::new().unwrap();
    let (_ours, theirs) = pair();
    let occupied = |key: u64| super::lock(&reactor.sources).slots[key as u32 as usize].1.is_some();
    let (first, _) = reactor.register(&theirs, true).unwrap();
    assert!(occupied(first));
    reactor.deregister(first, &theirs);
    assert!(!occupied(first), "a deregistered socket is still registered");
    // The slot is reused under a new generation: the old key must not remove the new source.
    let (second, _) = reactor.register(&theirs, true).unwrap();
    assert_eq!(second as u32, first as u32, "the free slot was not reused");
    assert_ne!(second, first);
    reactor.forget(first);
    assert!(occupied(second), "a stale key removed the source now in its slot");
    reactor.deregister(second, &theirs);
}

#[test]
fn a_thread_that_turns_the_reactor_does_not_wake_itself() {
    // The balancer watches the reactor and also turns it: waking itself, it would never sleep.
    let reactor = Reactor::new().unwrap();
    reactor.watch_next_release();
    reactor.poll_if_free_and_hand_over();
    let start = Instant::now();
    std::thread::park_timeout(Duration::from_millis(200));
    assert!(start.elapsed() >= Duration::from_millis(150), "the turn unparked the thread that made it");
}

#[test]
fn the_balancers_turn_hands_the_reactor_to_a_would_be_driver_and_a_busy_workers_does_not() {
    let reactor = Reactor::new().unwrap();
    let hopeful = this_threads_waker();
    let held = reactor.try_drive().unwrap();
    assert!(reactor.drive_or_hope(&hopeful).is_none(), "the lock is held");
    // A driver that leaves after waiting in epoll does not hand over...
    drop(held);
    assert!(!hopeful.notified.load(std::sync::atomic::Ordering::SeqCst));
    // ...nor does a busy worker that looked in (it drives when it parks: a wake-up here would
    // cost every 61st task a futex call)...
    reactor.poll_if_free();
    assert!(!hopeful.notified.load(std::sync::atomic::Ordering::SeqCst), "a worker's look woke the would-be driver");
    // ...the balancer, which never drives, does.
    reactor.poll_if_free_and_hand_over();
    assert!(hopeful.notified.load(std::sync::atomic::Ordering::SeqCst), "the would-be driver was not woken");
}

#[test]
fn a_timer_removed_before_its_deadline_keeps_the_drivers_wait_so_a_later_one_wakes_nobody() {
    // A process that receives with a timeout adds a timer and removes it when its message comes;
    // the next receive adds one a little later. That must not wake the driver every time.
    let reactor = Reactor::new().unwrap();
    let now = Instant::now();
    assert_eq!(reactor.plan_wait(now), super::FOREVER);
    let (first, woke) = reactor.insert_timer(now + Duration::from_secs(10), super::Due::Run(Box::new(|| ())));
    assert!(woke, "a timer earlier than a wait forever must wake the driver");
    assert_eq!(reactor.plan_wait(now), Duration::from_secs(10));
    assert!(reactor.remove_timer(first));
    assert_eq!(reactor.plan_wait(now), Duration::from_secs(10), "the removed timer's deadline was forgotten");
    let (second, woke) = reactor.insert_timer(now + Duration::from_secs(11), super::Due::Run(Box::new(|| ())));
    assert!(!woke, "a timer after the planned wake-up woke the driver");
    // Once that deadline passes, the next wait is for the pending timer only.
    assert_eq!(reactor.plan_wait(now + Duration::from_secs(10)), Duration::from_secs(1));
    assert!(reactor.remove_timer(second));
    assert_eq!(reactor.plan_wait(now + Duration::from_secs(11)), super::FOREVER);
}

#[test]
fn a_panicking_action_leaves_the_turn_and_the_timers_due_after_it_intact() {
    let reactor = Reactor::new().unwrap();
    let woken = this_threads_waker();
    let past = Instant::now() - Duration::from_millis(1);
    // Same deadline, later key: the waker is due after the action.
    reactor.insert_timer(past, super::Due::Run(Box::new(|| panic!("an action that fails"))));
    reactor.insert_timer(past, super::Due::Wake(std::task::Waker::from(woken.clone())));
    reactor.poll_if_free();
    assert_eq!(reactor.turns(), 1, "the turn did not complete");
    assert!(woken.notified.load(std::sync::atomic::Ordering::SeqCst), "the timer due after the panic was not woken");
}

#[test]
fn a_turn_says_whether_it_found_anything_so_a_planned_wake_up_for_nothing_can_wait_again() {
    // `block_on` waits again, still driving, after a turn that found nothing: its release would
    // wake the balancer (and a node's idle cost with it) for no work.
    let reactor = Reactor::new().unwrap();
    let mut driver = reactor.try_drive().unwrap();
    let (key, _) = reactor.insert_timer(Instant::now() + Duration::from_millis(20), super::Due::Run(Box::new(|| ())));
    assert!(reactor.remove_timer(key));
    let started = Instant::now();
    assert!(!driver.turn_then(true, || {}), "the removed timer's wake-up found something");
    assert!(started.elapsed() >= Duration::from_millis(20), "woke before the planned wake-up");
    let fired = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = fired.clone();
    reactor.insert_timer(
        Instant::now(),
        super::Due::Run(Box::new(move || flag.store(true, std::sync::atomic::Ordering::SeqCst))),
    );
    assert!(driver.turn_then(true, || {}), "a due timer is something");
    assert!(fired.load(std::sync::atomic::Ordering::SeqCst));
    reactor.notify();
    assert!(driver.turn_then(true, || {}), "a notification is something");
}
