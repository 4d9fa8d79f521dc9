//! Remote calls across real connections (README, "Remote calls"; PROTOCOL.md 4.3.8): `call`,
//! `cast` and `multicall` between three nodes in one OS process, with the functions' results,
//! refusals, exits and panics; timeouts (the callee killed, a late result never in the caller's
//! mailbox, forced with a hand-driven peer that answers late); a connection lost during a call;
//! and a peer without the CALLS capability, which is never sent the new options.

mod support;

use std::time::Duration;

use snow_node_rt::{CallError, Node, NodeName, Pid, Process, Term};
use snow_shared::dist::control::{Control, MonitorTarget};
use snow_shared::dist::Flags;
use support::*;

/// The elements of a list argument (none for anything else).
fn list(args: &Term) -> &[Term] {
    match args {
        Term::List(items) => items,
        _ => &[],
    }
}

/// The allow-listed functions of the tests, on `node`.
fn functions(node: &Node) {
    node.register_spawnable("double", |_me: Process, args: Term| async move {
        match list(&args) {
            [Term::Int(n)] => Term::Int(n * 2),
            _ => Term::atom("badarg"),
        }
    });
    node.register_spawnable("crash", |_me: Process, _args: Term| async move {
        panic!("boom");
    });
    node.register_spawnable("quit", |me: Process, _args: Term| async move {
        me.exit(Term::atom("bye")).await;
        Term::Unit
    });
    // [reporter, ms]: tells the reporter {:started, self}, sleeps, tells it :finished, returns.
    node.register_spawnable("slow", |me: Process, args: Term| async move {
        let [Term::Pid(reporter), Term::Int(ms)] = list(&args) else { return Term::atom("badarg") };
        me.send(reporter, Term::tuple([Term::atom("started"), Term::Pid(me.pid().clone())]));
        snow_node_rt::sleep(Duration::from_millis(ms.unsigned_abs())).await;
        me.send(reporter, Term::atom("finished"));
        Term::atom("late")
    });
    // [reporter, term]: sends the term to the reporter.
    node.register_spawnable("note", |me: Process, args: Term| async move {
        if let [Term::Pid(reporter), note] = list(&args) {
            me.send(reporter, note.clone());
        }
        Term::atom("noted")
    });
}

async fn cluster(epmd: &Epmd) -> Vec<Node> {
    let nodes = mesh(epmd, &["a", "b", "c"]).await;
    for node in &nodes {
        functions(node);
    }
    nodes
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn a_call_returns_the_value_from_a_process_from_outside_and_on_its_own_node() {
    run(async {
        let epmd = epmd().await;
        let nodes = cluster(&epmd).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let b_name = b.name().clone();
        let from_process =
            in_process(a, |me| async move { me.call(&b_name, "double", vec![Term::Int(21)], secs(5)).await }).await;
        assert_eq!(from_process, Ok(Term::Int(42)));
        assert_eq!(a.call(b.name(), "double", vec![Term::Int(4)], secs(5)).await, Ok(Term::Int(8)));
        // erpc:call(node(), ...) runs here.
        assert_eq!(a.call(a.name(), "double", vec![Term::Int(5)], secs(5)).await, Ok(Term::Int(10)));
        // One result per node, in order, the caller's own node included.
        let all: Vec<NodeName> = vec![nodes[2].name().clone(), a.name().clone(), b.name().clone()];
        let results = a.multicall(&all, "double", vec![Term::Int(1)], secs(5)).await;
        assert_eq!(results, vec![Ok(Term::Int(2)); 3]);
        // Nothing is left in the driver's call table.
        eventually("no calls pending", || a.dist_table_sizes().contains(&("calls", 0))).await;
        shutdown_all(&nodes).await;
    });
}

#[test]
fn refusals_exits_and_panics_are_typed_errors() {
    run(async {
        let epmd = epmd().await;
        let nodes = cluster(&epmd).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        for target in [b.name(), a.name()] {
            match a.call(target, "rm_rf", vec![], secs(5)).await {
                Err(e @ CallError::NotSpawnable { .. }) => {
                    assert!(e.to_string().contains("register_spawnable"), "{e}");
                    assert_eq!(e.node(), target);
                }
                other => panic!("a function that is not allow-listed gave {other:?}"),
            }
            let crashed = a.call(target, "crash", vec![], secs(5)).await;
            assert_eq!(
                crashed,
                Err(CallError::Exit {
                    node: target.clone(),
                    function: "crash".into(),
                    reason: Term::tuple([Term::atom("panic"), Term::string("boom")])
                })
            );
            let quit = a.call(target, "quit", vec![], secs(5)).await;
            assert_eq!(
                quit,
                Err(CallError::Exit { node: target.clone(), function: "quit".into(), reason: Term::atom("bye") })
            );
        }
        // A node that is not distributed cannot call another, but can call itself.
        let lone = Node::local();
        functions(&lone);
        assert_eq!(
            lone.call(b.name(), "double", vec![Term::Int(1)], secs(5)).await,
            Err(CallError::NotDistributed(b.name().clone()))
        );
        assert_eq!(lone.call(lone.name(), "double", vec![Term::Int(1)], secs(5)).await, Ok(Term::Int(2)));
        shutdown_all(&nodes).await;
    });
}

#[test]
fn a_call_that_times_out_kills_the_callee_and_leaves_the_mailbox_empty() {
    run(async {
        let epmd = epmd().await;
        let nodes = cluster(&epmd).await;
        let (a, b) = (&nodes[0], nodes[1].clone());
        for target in [b.name().clone(), a.name().clone()] {
            let (reporter, reports) = collector(a);
            let outcome = in_process(a, move |mut me| async move {
                let args = vec![Term::Pid(reporter), Term::Int(2_000)];
                let result = me.call(&target, "slow", args, Duration::from_millis(200)).await;
                // Longer than the function would have taken: a result would be here by now.
                let late = me.receive_timeout(Duration::from_millis(2_500)).await;
                (result, late)
            })
            .await;
            assert!(matches!(outcome.0, Err(CallError::Timeout { .. })), "{:?}", outcome.0);
            assert_eq!(outcome.1, None, "the caller's mailbox got something after its call timed out");
            let started = next(&reports).await;
            let Some([_, Term::Pid(callee)]) = started.as_tuple() else { panic!("{started}") };
            let callee = callee.clone();
            quiet(&reports, "the callee was killed before it finished").await;
            let home = if callee.node() == a.name() { a } else { &b };
            assert!(!home.is_alive(&callee));
        }
        eventually("no calls pending", || a.dist_table_sizes().contains(&("calls", 0))).await;
        shutdown_all(&nodes).await;
    });
}

#[test]
fn a_caller_that_exits_while_it_waits_takes_the_callee_with_it() {
    run(async {
        let epmd = epmd().await;
        let nodes = cluster(&epmd).await;
        let (a, b) = (&nodes[0], nodes[1].clone());
        for target in [b.name().clone(), a.name().clone()] {
            let (reporter, reports) = collector(a);
            let caller = a.spawn(move |me| async move {
                let _ = me.call(&target, "slow", vec![Term::Pid(reporter), Term::Int(1_000)], secs(15)).await;
            });
            let started = next(&reports).await;
            let Some([_, Term::Pid(callee)]) = started.as_tuple() else { panic!("{started}") };
            let callee = callee.clone();
            a.exit(&caller, Term::atom("kill"));
            let home = if callee.node() == a.name() { a } else { &b };
            eventually("the callee is gone", || !home.is_alive(&callee)).await;
            quiet(&reports, "the callee of an exited caller finished").await;
        }
        eventually("no calls pending", || a.dist_table_sizes().contains(&("calls", 0))).await;
        shutdown_all(&nodes).await;
    });
}

/// The next message from the raw peer that `pick` takes, skipping the node's other traffic
/// (node lists, registry and group syncs).
async fn next_matching<T>(x: &mut raw::Conversation, mut pick: impl FnMut(&Control) -> Option<T>) -> T {
    loop {
        let msg = x.next().await;
        if let Some(found) = pick(&msg) {
            return found;
        }
    }
}

#[test]
fn a_result_that_arrives_after_the_timeout_never_reaches_the_caller() {
    run(async {
        let epmd = epmd().await;
        let a = node(&epmd, "a").await;
        // A hand-driven callee: it answers when the test says, so the result really comes late.
        let mut x = raw::Conversation::dial(&a, "x", None).await;
        assert!(x.info.flags.contains(Flags::CALLS));
        eventually("x connected", || a.nodes() == vec![name("x")]).await;
        let x_pid = Pid::new(name("x"), 1, 7);
        for (round, reply_late) in [(0u64, false), (1, true)] {
            let (tx, rx) = async_channel::bounded(1);
            let caller = a.spawn(move |mut me| async move {
                let result = me.call(&name("x"), "f", vec![], Duration::from_millis(200)).await;
                let first = me.receive_timeout(WAIT).await;
                let _ = tx.send((result, first, me.mailbox_len())).await;
            });
            let (reference, requester) = next_matching(&mut x, |m| match m {
                Control::SpawnReq { reference, from, opts, .. } if opts.call && opts.monitor => {
                    Some((reference.clone(), from.clone()))
                }
                _ => None,
            })
            .await;
            assert_eq!(requester, caller, "the call is made as the calling process");
            let child = Pid::new(name("x"), 100 + round, 7);
            let spawn_reply =
                Control::SpawnReply { reference: reference.clone(), to: caller.clone(), result: Ok(child.clone()) };
            if reply_late {
                // Even the spawn reply comes after the timeout: the caller kills the child then.
                snow_node_rt::sleep(Duration::from_millis(500)).await;
            }
            x.send(&spawn_reply).await;
            let killed = next_matching(&mut x, |m| match m {
                Control::Exit2 { to, reason, .. } if *to == child => Some(reason.clone()),
                _ => None,
            })
            .await;
            assert_eq!(killed, Term::atom("kill"), "the abandoned callee is killed");
            // Now the result, then a marker: the marker reaches the caller only after the result
            // was handled (one connection, in order).
            let late = Term::tuple([Term::Ref(reference.clone()), Term::atom("return"), Term::atom("late")]);
            let down =
                Control::MonitorExit { from: MonitorTarget::Pid(child), to: caller.clone(), reference, reason: late };
            x.send(&down).await;
            x.send(&Control::Send { from: x_pid.clone(), to: caller.clone(), msg: Term::atom("marker") }).await;
            let (result, first, left) = next(&rx).await;
            assert!(matches!(result, Err(CallError::Timeout { .. })), "{result:?}");
            assert_eq!(first, Some(Term::atom("marker")), "the late result was delivered to the caller");
            assert_eq!(left, 0);
        }
        assert_eq!(a.nodes(), vec![name("x")], "the late messages are not a protocol error");
        eventually("no calls pending", || a.dist_table_sizes().contains(&("calls", 0))).await;
        a.shutdown().await;
    });
}

#[test]
fn a_node_lost_during_a_call_gives_noconnection_and_multicall_reports_each_node() {
    run(async {
        let epmd = epmd().await;
        let nodes = cluster(&epmd).await;
        let (a, b, c) = (nodes[0].clone(), nodes[1].clone(), nodes[2].clone());
        // The connection is cut while the function runs.
        let (reporter, reports) = collector(&a);
        let b_name = b.name().clone();
        let caller = async {
            in_process(&a, move |me| async move {
                me.call(&b_name, "slow", vec![Term::Pid(reporter), Term::Int(10_000)], secs(15)).await
            })
            .await
        };
        let cut = async {
            let _started = next(&reports).await;
            assert_eq!(a.disconnect(b.name()), Ok(true));
        };
        let (result, ()) = futures_lite::future::zip(caller, cut).await;
        match result {
            Err(CallError::NoConnection { node, .. }) => assert_eq!(&node, b.name()),
            other => panic!("a call over a lost connection gave {other:?}"),
        }
        // A node that is gone: one result per node all the same.
        c.shutdown().await;
        let targets = [b.name().clone(), c.name().clone()];
        let results = a.multicall(&targets, "double", vec![Term::Int(3)], secs(10)).await;
        assert_eq!(results[0], Ok(Term::Int(6)));
        assert!(matches!(&results[1], Err(CallError::NoConnection { node, .. }) if node == c.name()), "{results:?}");
        eventually("no calls pending", || a.dist_table_sizes().contains(&("calls", 0))).await;
        shutdown_all(&nodes).await;
    });
}

#[test]
fn cast_runs_the_function_without_waiting_for_it() {
    run(async {
        let epmd = epmd().await;
        let nodes = cluster(&epmd).await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let (reporter, reports) = collector(a);
        let args = vec![Term::Pid(reporter.clone()), Term::atom("hello")];
        assert_eq!(a.cast(b.name(), "note", args).await, Ok(()));
        assert_eq!(next(&reports).await, Term::atom("hello"));
        let b_name = b.name().clone();
        let from_process = in_process(a, move |me| async move {
            me.cast(&b_name, "note", vec![Term::Pid(reporter), Term::atom("again")]).await
        })
        .await;
        assert_eq!(from_process, Ok(()));
        assert_eq!(next(&reports).await, Term::atom("again"));
        // A function the node does not allow: refused there, silently (as erpc:cast).
        assert_eq!(a.cast(b.name(), "rm_rf", vec![]).await, Ok(()));
        quiet(&reports, "a refused cast").await;
        assert_eq!(a.nodes().len(), 2, "a refused cast is not a protocol error");
        shutdown_all(&nodes).await;
    });
}

#[test]
fn a_peer_without_calls_is_never_sent_the_new_options() {
    run(async {
        let epmd = epmd().await;
        let a = node(&epmd, "a").await;
        functions(&a);
        let old = Flags::ALL.without(Flags::CALLS).without(Flags::ALIAS);
        let mut x = raw::Conversation::dial(&a, "x", Some(old)).await;
        assert!(!x.info.flags.contains(Flags::CALLS));
        eventually("x connected", || a.nodes() == vec![name("x")]).await;
        assert_eq!(a.call(&name("x"), "double", vec![], secs(5)).await, Err(CallError::Unsupported(name("x"))));
        assert_eq!(a.cast(&name("x"), "note", vec![]).await, Err(CallError::Unsupported(name("x"))));
        let from_process =
            in_process(&a, |me| async move { me.call(&name("x"), "double", vec![], secs(5)).await }).await;
        assert_eq!(from_process, Err(CallError::Unsupported(name("x"))));
        // A message to an alias of a process of x is not sent either.
        a.send_alias(&snow_node_rt::Ref::new(name("x"), 5, 7), Term::atom("hi"));
        // What x does get afterwards is none of the new forms.
        let marker = Pid::new(name("x"), 1, 7);
        a.send(&marker, Term::atom("marker"));
        loop {
            match x.next().await {
                Control::Send { msg, .. } if msg == Term::atom("marker") => break,
                Control::SpawnReq { .. } | Control::AliasSend { .. } => panic!("x was sent a message it cannot take"),
                _ => {}
            }
        }
        assert_eq!(a.nodes(), vec![name("x")]);
        a.shutdown().await;
    });
}
