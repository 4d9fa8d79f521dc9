//! In-process clusters: connections, sends by pid and by name, mesh formation, pids across hops.

mod dist_support;

use dist_support::*;
use snow_node_rt::{Node, Term};

#[async_std::test]
async fn send_by_pid_and_by_name_across_nodes() {
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
    assert_eq!(a.nodes(), vec![b.self_node()]);
    assert_eq!(b.nodes(), vec![a.self_node()]);
    a.spawn(|me| async move { me.send_to("sink", "b@127.0.0.1", Term::atom("by_name")).unwrap() });
    assert_eq!(next(&rx).await, Term::atom("by_name"));
    assert_eq!(Node::node_of(&sink), b.self_node());
    a.shutdown().await;
    b.shutdown().await;
    assert!(!a.is_distributed());
}

#[async_std::test]
async fn three_nodes_form_a_full_mesh_from_one_connect() {
    let epmd = epmd().await;
    let a = node(&epmd, "a").await;
    let b = node(&epmd, "b").await;
    let c = node(&epmd, "c").await;
    b.connect("c@127.0.0.1").await.unwrap();
    a.connect("b@127.0.0.1").await.unwrap();
    eventually("a full mesh", || a.nodes().len() == 2 && b.nodes().len() == 2 && c.nodes().len() == 2).await;
    assert_eq!(c.nodes(), vec![a.self_node(), b.self_node()]);
    for n in [a, b, c] {
        n.shutdown().await;
    }
}

#[async_std::test]
async fn a_pid_passed_across_three_nodes_still_reaches_its_process() {
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
    a.send(relay.pid(), Term::tuple([Term::atom("reach"), Term::Pid(on_b.clone()), Term::atom("hello_b")]));
    assert_eq!(next(&rx_b).await, Term::atom("hello_b"));
    for n in [a, b, c] {
        n.shutdown().await;
    }
}

#[async_std::test]
async fn simultaneous_connects_leave_exactly_one_connection() {
    let epmd = epmd().await;
    for round in 0..5 {
        let a = node(&epmd, &format!("a{round}")).await;
        let b = node(&epmd, &format!("b{round}")).await;
        let (ra, rb) = futures_lite::future::zip(
            a.connect(&format!("b{round}@127.0.0.1")),
            b.connect(&format!("a{round}@127.0.0.1")),
        )
        .await;
        ra.unwrap();
        rb.unwrap();
        assert_eq!(a.nodes(), vec![b.self_node()]);
        assert_eq!(b.nodes(), vec![a.self_node()]);
        let (sink, rx) = collector(&b);
        a.send(&sink, Term::Int(round));
        assert_eq!(next(&rx).await, Term::Int(round));
        a.shutdown().await;
        b.shutdown().await;
    }
}
