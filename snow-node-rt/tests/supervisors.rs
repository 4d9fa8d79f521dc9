//! Supervisors: strategies, restart types, intensity, ordered start and shutdown.

mod support;

use std::time::Duration;

use async_channel::Receiver;
use snow_node_rt::supervisor::{self, ChildSpec, Restart, Shutdown, Strategy, Supervisor};
use snow_node_rt::{reason, Node, Pid, Process, Term};
use support::*;

/// A child that reports `{:started, id}` / `{:stopped, id}` to `log`, crashes on `:crash`, ends
/// normally on `:quit`, and stops on its supervisor's `:shutdown`.
fn worker(id: &'static str, log: &Pid) -> ChildSpec {
    let log = log.clone();
    ChildSpec::new(id, move |mut p: Process| {
        let log = log.clone();
        async move {
            p.trap_exit(true);
            p.send(&log, Term::tuple([Term::atom("started"), Term::atom(id)]));
            loop {
                let m = p.receive().await;
                if let Some([_, _, why]) = m.as_tuple() {
                    p.send(&log, Term::tuple([Term::atom("stopped"), Term::atom(id)]));
                    return why.clone();
                }
                if m.is_atom("crash") {
                    return Term::atom("crashed");
                }
                if m.is_atom("quit") {
                    return reason::normal();
                }
            }
        }
    })
}

async fn events(rx: &Receiver<Term>, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let e = next(rx).await;
        let parts = e.as_tuple().unwrap();
        out.push(format!("{}:{}", parts[0].as_atom().unwrap().as_str(), parts[1].as_atom().unwrap().as_str()));
    }
    out
}

async fn children(node: &Node, sup: &Pid) -> Vec<(String, Option<Pid>)> {
    let sup = sup.clone();
    let kids =
        in_process(node, move |mut me| async move { supervisor::which_children(&mut me, &sup).await.unwrap() }).await;
    for kid in &kids {
        assert_eq!(kid.node.as_ref(), Some(node.name()), "a local child runs (or ran) on this node");
    }
    kids.into_iter().map(|kid| (kid.id, kid.pid)).collect()
}

fn pid_of(children: &[(String, Option<Pid>)], id: &str) -> Pid {
    children.iter().find(|(i, _)| i == id).and_then(|(_, p)| p.clone()).unwrap()
}

async fn three(strategy: Strategy) -> (Node, Pid, Receiver<Term>, Vec<(String, Option<Pid>)>) {
    let node = Node::local();
    let (log, rx) = collector(&node);
    let sup = Supervisor::new(strategy)
        .intensity(10, Duration::from_secs(5))
        .child(worker("a", &log))
        .child(worker("b", &log))
        .child(worker("c", &log))
        .start(&node);
    assert_eq!(events(&rx, 3).await, ["started:a", "started:b", "started:c"], "children start in order");
    let before = children(&node, &sup).await;
    (node, sup, rx, before)
}

#[test]
fn one_for_one_restarts_only_the_failed_child() {
    run(async {
        let (node, sup, rx, before) = three(Strategy::OneForOne).await;
        node.send(&pid_of(&before, "b"), Term::atom("crash"));
        assert_eq!(events(&rx, 1).await, ["started:b"]);
        let after = children(&node, &sup).await;
        assert_eq!(pid_of(&before, "a"), pid_of(&after, "a"));
        assert_ne!(pid_of(&before, "b"), pid_of(&after, "b"));
        assert_eq!(pid_of(&before, "c"), pid_of(&after, "c"));
    });
}

#[test]
fn one_for_all_restarts_everyone_stopping_in_reverse_order() {
    run(async {
        let (node, sup, rx, before) = three(Strategy::OneForAll).await;
        node.send(&pid_of(&before, "b"), Term::atom("crash"));
        assert_eq!(events(&rx, 5).await, ["stopped:c", "stopped:a", "started:a", "started:b", "started:c"]);
        let after = children(&node, &sup).await;
        for id in ["a", "b", "c"] {
            assert_ne!(pid_of(&before, id), pid_of(&after, id));
        }
    });
}

#[test]
fn rest_for_one_restarts_the_failed_child_and_those_started_after_it() {
    run(async {
        let (node, sup, rx, before) = three(Strategy::RestForOne).await;
        node.send(&pid_of(&before, "b"), Term::atom("crash"));
        assert_eq!(events(&rx, 3).await, ["stopped:c", "started:b", "started:c"]);
        let after = children(&node, &sup).await;
        assert_eq!(pid_of(&before, "a"), pid_of(&after, "a"));
        assert_ne!(pid_of(&before, "c"), pid_of(&after, "c"));
    });
}

#[test]
fn stopping_the_supervisor_shuts_children_down_in_reverse_order() {
    run(async {
        let (node, sup, rx, _) = three(Strategy::OneForOne).await;
        let down = watch(&node, &sup).await;
        node.exit(&sup, reason::shutdown());
        assert_eq!(events(&rx, 3).await, ["stopped:c", "stopped:b", "stopped:a"]);
        assert_eq!(next(&down).await, reason::shutdown());
    });
}

#[test]
fn restart_types_permanent_transient_temporary() {
    run(async {
        let node = Node::local();
        let (log, rx) = collector(&node);
        let sup = Supervisor::new(Strategy::OneForOne)
            .intensity(10, Duration::from_secs(5))
            .child(worker("perm", &log))
            .child(worker("trans", &log).restart(Restart::Transient))
            .child(worker("temp", &log).restart(Restart::Temporary))
            .start(&node);
        events(&rx, 3).await;
        let kids = children(&node, &sup).await;
        // A permanent child is restarted even after a normal exit.
        node.send(&pid_of(&kids, "perm"), Term::atom("quit"));
        assert_eq!(events(&rx, 1).await, ["started:perm"]);
        // A transient child is restarted after a crash, not after a normal exit.
        node.send(&pid_of(&kids, "trans"), Term::atom("crash"));
        assert_eq!(events(&rx, 1).await, ["started:trans"]);
        let kids = children(&node, &sup).await;
        node.send(&pid_of(&kids, "trans"), Term::atom("quit"));
        // A temporary child is never restarted and is forgotten.
        node.send(&pid_of(&kids, "temp"), Term::atom("crash"));
        assert!(within_ms(&rx, 100).await.is_none(), "nothing restarted");
        let kids = children(&node, &sup).await;
        let ids: Vec<&str> = kids.iter().map(|(i, _)| i.as_str()).collect();
        assert_eq!(ids, ["perm", "trans"]);
        assert!(kids[1].1.is_none(), "a transient child that ended normally stays down");
    });
}

async fn within_ms(rx: &Receiver<Term>, ms: u64) -> Option<Term> {
    smol_timeout::TimeoutExt::timeout(rx.recv(), Duration::from_millis(ms)).await.and_then(Result::ok)
}

#[test]
fn too_many_restarts_make_the_supervisor_exit_with_shutdown() {
    run(async {
        let node = Node::local();
        let (log, rx) = collector(&node);
        let sup = Supervisor::new(Strategy::OneForOne)
            .intensity(2, Duration::from_secs(5))
            .child(worker("a", &log))
            .child(worker("b", &log))
            .start(&node);
        events(&rx, 2).await;
        let down = watch(&node, &sup).await;
        for round in 0..3 {
            let kids = children(&node, &sup).await;
            node.send(&pid_of(&kids, "a"), Term::atom("crash"));
            if round < 2 {
                assert_eq!(events(&rx, 1).await, ["started:a"]);
            }
        }
        assert_eq!(events(&rx, 1).await, ["stopped:b"], "the other child is shut down");
        assert_eq!(next(&down).await, reason::shutdown());
    });
}

#[test]
fn a_child_ignoring_shutdown_is_killed_after_its_timeout() {
    run(async {
        let node = Node::local();
        let stubborn = ChildSpec::new("stubborn", |mut p: Process| async move {
            p.trap_exit(true);
            loop {
                p.receive().await; // ignores :shutdown
            }
            #[allow(unreachable_code)]
            ()
        })
        .shutdown(Shutdown::Timeout(Duration::from_millis(50)));
        let sup = Supervisor::new(Strategy::OneForOne).child(stubborn).start(&node);
        let kid = pid_of(&children(&node, &sup).await, "stubborn");
        let kid_down = watch(&node, &kid).await;
        let sup_down = watch(&node, &sup).await;
        node.exit(&sup, reason::shutdown());
        assert_eq!(next(&kid_down).await, reason::killed());
        assert_eq!(next(&sup_down).await, reason::shutdown());
    });
}

#[test]
fn simple_one_for_one_starts_children_with_arguments_and_restarts_them() {
    run(async {
        let node = Node::local();
        let (log, rx) = collector(&node);
        let log2 = log.clone();
        let template = ChildSpec::with_args("echo", move |mut p: Process, args: Term| {
            let log = log2.clone();
            async move {
                p.send(&log, args.clone());
                if p.receive().await.is_atom("crash") {
                    return Term::atom("crashed");
                }
                reason::normal()
            }
        })
        .restart(Restart::Transient);
        let sup = Supervisor::new(Strategy::SimpleOneForOne).child(template).start(&node);
        let (c1, c2) = in_process(&node, {
            let sup = sup.clone();
            move |mut me| async move {
                let c1 = supervisor::start_child(&mut me, &sup, Term::Int(1)).await.unwrap();
                let c2 = supervisor::start_child(&mut me, &sup, Term::Int(2)).await.unwrap();
                (c1, c2)
            }
        })
        .await;
        assert_eq!((next(&rx).await, next(&rx).await), (Term::Int(1), Term::Int(2)));
        node.send(&c1, Term::atom("crash"));
        assert_eq!(next(&rx).await, Term::Int(1), "restarted with the same arguments");
        let c2_down = watch(&node, &c2).await;
        node.send(&c2, Term::atom("quit"));
        next(&c2_down).await;
        let kids = children(&node, &sup).await;
        assert_eq!(kids.len(), 1, "a transient child that ended normally is removed");
        // start_child on a static supervisor is refused with a clear error.
        let other = Supervisor::new(Strategy::OneForOne).start(&node);
        let err = in_process(&node, move |mut me| async move {
            supervisor::start_child(&mut me, &other, Term::Unit).await.unwrap_err()
        })
        .await;
        assert!(err.to_string().contains("simple_one_for_one"), "{err}");
        let _ = log;
    });
}

#[test]
fn calling_a_dead_supervisor_reports_it() {
    run(async {
        let node = Node::local();
        let sup = Supervisor::new(Strategy::OneForOne).start(&node);
        let down = watch(&node, &sup).await;
        node.exit(&sup, reason::kill());
        next(&down).await;
        let err = in_process(&node, move |mut me| async move { supervisor::which_children(&mut me, &sup).await })
            .await
            .unwrap_err();
        assert_eq!(err, supervisor::SupervisorError::NotRunning(reason::noproc()));
    });
}
