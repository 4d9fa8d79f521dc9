//! In-process clusters: connections, sends by pid and by name, mesh formation, pids across hops.

mod support;

use std::time::{Duration, Instant};

use async_channel::Receiver;
use snow_epmd::client::lookup;
use snow_node_rt::dist::DistError;
use snow_node_rt::{Node, NodeName, Term};
use snow_shared::epmd::table::State;
use support::*;

#[test]
fn send_by_pid_and_by_name_across_nodes() {
    run(async {
        let epmd = epmd().await;
        let a = node(&epmd, "a").await;
        let b = node(&epmd, "b").await;
        assert!(a.is_distributed());
        assert_ne!(a.creation(), 0);
        let (sink, rx) = collector(&b);
        b.register("sink", &sink).unwrap();
        // First send connects on demand.
        a.send(&sink, Term::atom("by_pid"));
        assert_eq!(next(&rx).await, Term::atom("by_pid"));
        assert_eq!(a.nodes(), vec![b.name().clone()]);
        assert_eq!(b.nodes(), vec![a.name().clone()]);
        a.spawn(|me| async move { me.send_named_on("sink", &name("b"), Term::atom("by_name")).unwrap() });
        assert_eq!(next(&rx).await, Term::atom("by_name"));
        assert_eq!(Node::node_of(&sink), b.name().clone());
        a.shutdown().await;
        b.shutdown().await;
        assert!(!a.is_distributed());
    });
}

#[test]
fn three_nodes_form_a_full_mesh_from_one_connect() {
    run(async {
        let epmd = epmd().await;
        let a = node(&epmd, "a").await;
        let b = node(&epmd, "b").await;
        let c = node(&epmd, "c").await;
        b.connect(&name("c")).await.unwrap();
        a.connect(&name("b")).await.unwrap();
        eventually("a full mesh", || a.nodes().len() == 2 && b.nodes().len() == 2 && c.nodes().len() == 2).await;
        assert_eq!(c.nodes(), vec![a.name().clone(), b.name().clone()]);
        for n in [a, b, c] {
            n.shutdown().await;
        }
    });
}

#[test]
fn a_pid_passed_across_three_nodes_still_reaches_its_process() {
    run(async {
        let epmd = epmd().await;
        let a = node(&epmd, "a").await;
        let b = node(&epmd, "b").await;
        let c = node(&epmd, "c").await;
        let (on_b, rx_b) = collector(&b);
        // C's relay: on {:reach, pid, payload}, send payload to pid.
        let relay = c.spawn(|mut me| async move {
            let msg = me.receive().await;
            if let Some([_, Term::Pid(target), payload]) = msg.as_tuple() {
                me.send(target, payload.clone());
            }
        });
        // The payload carries a ref made on B and a pid of A: both come back to B intact, equal to
        // the originals (node, id and creation survive two hops).
        let (on_a, _rx_a) = collector(&a);
        let made_on_b = b.make_ref();
        let payload = Term::tuple([Term::atom("hello_b"), Term::Ref(made_on_b.clone()), Term::Pid(on_a.clone())]);
        a.send(&relay, Term::tuple([Term::atom("reach"), Term::Pid(on_b.clone()), payload.clone()]));
        let got = next(&rx_b).await;
        assert_eq!(got, payload);
        match got.as_tuple() {
            Some([_, Term::Ref(r), Term::Pid(p)]) => {
                assert_eq!((r.node(), r.id(), r.creation()), (made_on_b.node(), made_on_b.id(), made_on_b.creation()));
                assert_eq!((p.node(), p.id(), p.creation()), (on_a.node(), on_a.id(), on_a.creation()));
            }
            _ => panic!("unexpected payload {got}"),
        }
        for n in [a, b, c] {
            n.shutdown().await;
        }
    });
}

fn node_event(kind: &str, node: &NodeName) -> Term {
    Term::tuple([Term::atom(kind), Term::Atom(node.as_atom().clone())])
}

/// Everything already in `rx`, without waiting.
fn drain(rx: &Receiver<Term>) -> Vec<Term> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

/// How long the simultaneous-connect test waits for a late second connection to show up (as a
/// second nodeup, or a nodedown and nodeup for a replaced one). Loopback handshakes take
/// milliseconds.
const SETTLE: Duration = Duration::from_millis(500);

#[test]
fn simultaneous_connects_leave_exactly_one_connection() {
    run(async {
        let epmd = epmd().await;
        for round in 0..8 {
            let a = node(&epmd, &format!("a{round}")).await;
            let b = node(&epmd, &format!("b{round}")).await;
            let (events_a, events_b) = (node_events(&a).await, node_events(&b).await);
            let (to_b, to_a) = (name(&format!("b{round}")), name(&format!("a{round}")));
            // Alternate which connect is polled first.
            let (ra, rb) = if round % 2 == 0 {
                futures_lite::future::zip(a.connect(&to_b), b.connect(&to_a)).await
            } else {
                let (rb, ra) = futures_lite::future::zip(b.connect(&to_a), a.connect(&to_b)).await;
                (ra, rb)
            };
            ra.unwrap();
            rb.unwrap();
            // Each side reports the other up once...
            assert_eq!(next(&events_a).await, node_event("nodeup", b.name()), "round {round}: a's first event");
            assert_eq!(next(&events_b).await, node_event("nodeup", a.name()), "round {round}: b's first event");
            // ...and nothing else: a second connection kept would be a second nodeup, one replacing
            // the other a nodedown then a nodeup.
            snow_node_rt::sleep(SETTLE).await;
            assert_eq!(drain(&events_a), [], "round {round}: a's further node events");
            assert_eq!(drain(&events_b), [], "round {round}: b's further node events");
            assert_eq!(a.nodes(), vec![b.name().clone()]);
            assert_eq!(b.nodes(), vec![a.name().clone()]);
            // The connection left carries messages both ways.
            let (on_b, rx_b) = collector(&b);
            let (on_a, rx_a) = collector(&a);
            a.send(&on_b, Term::Int(round));
            b.send(&on_a, Term::Int(-round));
            assert_eq!(next(&rx_b).await, Term::Int(round));
            assert_eq!(next(&rx_a).await, Term::Int(-round));
            assert_eq!(drain(&events_a), [], "round {round}: a's node events after the exchange");
            assert_eq!(drain(&events_b), [], "round {round}: b's node events after the exchange");
            a.shutdown().await;
            b.shutdown().await;
        }
    });
}

/// A shutdown awaited by a process that stops waiting (killed, or a `select` that chose another
/// branch: here its future is dropped after one poll) still completes, as stopping Erlang's
/// net_kernel does when the process that asked dies: the node leaves snow-epmd, and its peers see
/// it go. Several megabytes are queued to `b` first, so the shutdown is still waiting for them to
/// leave when its caller stops waiting.
#[test]
fn a_shutdown_whose_caller_stops_waiting_still_completes() {
    run(async {
        let epmd = epmd().await;
        let at = epmd.local_addr().to_string();
        let (a, b) = (node(&epmd, "a").await, node(&epmd, "b").await);
        within(a.connect(&name("b"))).await.unwrap();
        let (sink, got) = forwarder(&b, |_, _| {});
        let (tx, rx) = async_channel::unbounded();
        let stopping = a.clone();
        a.spawn(move |me| async move {
            me.send(&sink, Term::binary(vec![7u8; 8 << 20]));
            let polled = futures_lite::future::poll_once(stopping.shutdown()).await;
            let _ = tx.send(polled.is_some()).await;
        });
        assert!(!next(&rx).await, "the shutdown was still flushing after one poll");
        eventually("b sees the connection to a closed", || b.nodes().is_empty()).await;
        let start = Instant::now();
        while lookup(&at, &name("a")).await.unwrap().is_some_and(|f| f.state == State::Up) {
            assert!(start.elapsed() < WAIT, "a is still registered {WAIT:?} after its shutdown began");
            snow_node_rt::sleep(Duration::from_millis(10)).await;
        }
        // What was queued before the shutdown still left first.
        assert!(matches!(next(&got).await, Term::Binary(bytes) if bytes.len() == 8 << 20));
        b.shutdown().await;
    });
}

#[test]
fn shutdown_unregisters_from_snow_epmd() {
    run(async {
        let epmd = epmd().await;
        let at = epmd.local_addr().to_string();
        let a = node(&epmd, "a").await;
        let b = node(&epmd, "b").await;
        let found = lookup(&at, &name("a")).await.unwrap().expect("a is registered while distributed");
        assert_eq!(found.state, State::Up);
        assert_eq!(found.port, a.listen_addr().unwrap().port());
        assert_eq!(found.creation.max(1), a.creation());
        a.connect(&name("b")).await.unwrap();
        a.shutdown().await;
        // The daemon sees the registration connection close; poll until it has marked `a` down.
        let start = Instant::now();
        loop {
            match lookup(&at, &name("a")).await.unwrap() {
                None => break,
                Some(f) if f.state == State::Down => break,
                Some(f) => {
                    assert!(start.elapsed() < WAIT, "a is still {:?} at snow-epmd {WAIT:?} after shutdown", f.state);
                    snow_node_rt::sleep(Duration::from_millis(10)).await;
                }
            }
        }
        // Only `a` is gone, and other nodes can no longer reach it.
        assert_eq!(lookup(&at, &name("b")).await.unwrap().map(|f| f.state), Some(State::Up));
        eventually("b sees the connection to a closed", || b.nodes().is_empty()).await;
        let err = b.connect(&name("a")).await.unwrap_err();
        assert!(matches!(err, DistError::NodeDown(_) | DistError::NotRegistered(_)), "{err}");
        b.shutdown().await;
    });
}
