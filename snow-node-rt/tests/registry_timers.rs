//! The name registry and timers.

mod support;

use std::time::Duration;

use snow_node_rt::{reason, Node, RegisterError, SendError, Term, UnregisterError};
use support::*;

#[test]
fn register_whereis_send_by_name_and_errors() {
    run(async {
        let node = Node::local();
        let (a, rx) = collector(&node);
        let b = idle(&node);
        node.register("logger", &a).unwrap();
        assert_eq!(node.whereis("logger"), Some(a.clone()));
        node.send_named("logger", Term::Int(1)).unwrap();
        assert_eq!(next(&rx).await, Term::Int(1));
        let from_process = in_process(&node, |me| async move { me.send_named("logger", Term::Int(2)) }).await;
        assert!(from_process.is_ok());
        assert_eq!(next(&rx).await, Term::Int(2));

        let taken = node.register("logger", &b).unwrap_err();
        assert!(matches!(&taken, RegisterError::NameTaken { holder, .. } if *holder == a));
        assert!(taken.to_string().contains("already registered"));
        let twice = node.register("other", &a).unwrap_err();
        assert!(matches!(twice, RegisterError::AlreadyRegistered { .. }));
        assert!(matches!(node.register("undefined", &b), Err(RegisterError::Reserved(_))));
        assert!(matches!(node.send_named("nobody", Term::Unit), Err(SendError::NotRegistered(_))));
        assert_eq!(node.unregister("nobody"), Err(UnregisterError::NotRegistered("nobody".into())));

        node.unregister("logger").unwrap();
        assert_eq!(node.whereis("logger"), None);
        node.register("other", &a).unwrap();
        assert_eq!(node.registered().len(), 1);
    });
}

#[test]
fn names_are_freed_when_the_process_exits() {
    run(async {
        let node = Node::local();
        let p = idle(&node);
        node.register("svc", &p).unwrap();
        let down = watch(&node, &p).await;
        node.exit(&p, reason::kill());
        next(&down).await;
        assert_eq!(node.whereis("svc"), None);
        let q = idle(&node);
        node.register("svc", &q).unwrap();
        assert_eq!(node.whereis("svc"), Some(q.clone()));
        // A dead process cannot be registered.
        assert!(matches!(node.register("ghost", &p), Err(RegisterError::NotAlive(_))));
        // A process registering itself.
        let name = in_process(&node, |me| async move {
            me.register("me").unwrap();
            me.registered_name()
        })
        .await;
        assert_eq!(name.unwrap().as_str(), "me");
    });
}

#[test]
fn send_after_delivers_and_cancel_prevents_delivery() {
    run(async {
        let node = Node::local();
        let (got, cancelled, left, late) = in_process(&node, |mut me| async move {
            let pid = me.pid().clone();
            let _t = me.send_after(&pid, Duration::from_millis(20), Term::atom("tick"));
            let cancel_me = me.send_after(&pid, Duration::from_millis(30), Term::atom("never"));
            let left = cancel_me.cancel();
            let got = me.receive_timeout(Duration::from_secs(5)).await;
            let late = me.receive_timeout(Duration::from_millis(60)).await;
            (got, cancel_me.cancel(), left, late)
        })
        .await;
        assert_eq!(got, Some(Term::atom("tick")));
        assert_eq!(late, None, "a cancelled timer never fires");
        assert!(left.is_some_and(|d| d <= Duration::from_millis(30)));
        assert_eq!(cancelled, None, "cancelling twice reports nothing left");
    });
}

#[test]
fn a_fired_timer_cannot_be_cancelled_and_sleep_waits() {
    run(async {
        let node = Node::local();
        let (pid, rx) = collector(&node);
        let t = node.send_after(&pid, Duration::from_millis(1), Term::Int(9));
        assert_eq!(next(&rx).await, Term::Int(9));
        assert_eq!(t.cancel(), None);
        assert_eq!(t.remaining(), None);
        let start = std::time::Instant::now();
        snow_node_rt::sleep(Duration::from_millis(20)).await;
        assert!(start.elapsed() >= Duration::from_millis(20));
    });
}
