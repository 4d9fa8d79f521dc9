//! Supervision across nodes (README, "Supervision across nodes"): children placed on other nodes
//! by an allow-listed function and a list of candidate nodes, restarted by the strategy when they
//! crash or their node goes down (a cut connection or a node shut down), on the next candidate
//! that is up; intensity; shutdown of remote children with their timeout. Three nodes in one OS
//! process; partitions are cut connections (`disconnect`), the nodes keep running.

mod support;

use std::time::Duration;

use async_channel::Receiver;
use snow_node_rt::supervisor::{self, ChildInfo, ChildSpec, Restart, Shutdown, Strategy, Supervisor};
use snow_node_rt::{reason, Node, NodeName, Pid, Process, Term};
use support::*;

/// Puts `worker` and `stubborn` on every node's allow-list.
///
/// `worker([log | rest])` sends `{:started, self, rest}` to `log`, exits `:crashed` on `:crash`,
/// and (not trapping exits) stops on a supervisor's `:shutdown`. `stubborn([log])` does the same
/// start report but traps exits and ignores every message, so only `:kill` stops it.
fn allow_workers(nodes: &[Node]) {
    for node in nodes {
        node.register_spawnable("worker", |mut p: Process, args: Term| async move {
            let Some((log, rest)) = log_and_rest(&args) else { return Term::atom("bad_args") };
            p.send(&log, Term::tuple([Term::atom("started"), Term::Pid(p.pid().clone()), Term::List(rest)]));
            loop {
                if p.receive().await.is_atom("crash") {
                    return Term::atom("crashed");
                }
            }
        });
        node.register_spawnable("stubborn", |mut p: Process, args: Term| async move {
            let Some((log, rest)) = log_and_rest(&args) else { return Term::atom("bad_args") };
            p.trap_exit(true);
            p.send(&log, Term::tuple([Term::atom("started"), Term::Pid(p.pid().clone()), Term::List(rest)]));
            loop {
                p.receive().await;
            }
        });
    }
}

fn log_and_rest(args: &Term) -> Option<(Pid, Vec<Term>)> {
    match args {
        Term::List(items) => match items.split_first() {
            Some((Term::Pid(log), rest)) => Some((log.clone(), rest.to_vec())),
            _ => None,
        },
        _ => None,
    }
}

/// The pid (and extra arguments) of the next `{:started, pid, rest}` report.
async fn started(rx: &Receiver<Term>) -> (Pid, Vec<Term>) {
    let msg = next(rx).await;
    match msg.as_tuple() {
        Some([tag, Term::Pid(pid), Term::List(rest)]) if tag.is_atom("started") => (pid.clone(), rest.clone()),
        _ => panic!("expected {{:started, pid, rest}}, got {msg}"),
    }
}

/// The pids of the next `n` start reports, sorted by node: reports from different nodes come over
/// different connections, in no particular order.
async fn started_n(rx: &Receiver<Term>, n: usize) -> Vec<Pid> {
    let mut pids = Vec::new();
    for _ in 0..n {
        pids.push(started(rx).await.0);
    }
    pids.sort_by(|x, y| x.node().cmp(y.node()));
    pids
}

async fn children(node: &Node, sup: &Pid) -> Vec<ChildInfo> {
    let sup = sup.clone();
    in_process(node, move |mut me| async move { supervisor::which_children(&mut me, &sup).await.unwrap() }).await
}

fn names(nodes: &[&Node]) -> Vec<NodeName> {
    nodes.iter().map(|n| n.name().clone()).collect()
}

fn remote(id: &str, on: &[&Node], log: &Pid) -> ChildSpec {
    ChildSpec::remote(id, names(on), "worker", vec![Term::Pid(log.clone())])
}

/// Three meshed nodes with the workers allow-listed, and a collector on the first for the
/// workers' start reports.
async fn cluster() -> (Epmd, Vec<Node>, Pid, Receiver<Term>) {
    let epmd = epmd().await;
    let nodes = mesh(&epmd, &["a", "b", "c"]).await;
    allow_workers(&nodes);
    let (log, rx) = collector(&nodes[0]);
    (epmd, nodes, log, rx)
}

#[test]
fn a_remote_child_that_crashes_is_restarted_on_its_node() {
    run(async {
        let (_epmd, nodes, log, rx) = cluster().await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let sup = Supervisor::new(Strategy::OneForOne).child(remote("w", &[b], &log)).start(a);
        let (first, _) = started(&rx).await;
        assert_eq!(first.node(), b.name());
        let kids = children(a, &sup).await;
        assert_eq!(kids, [ChildInfo { id: "w".into(), pid: Some(first.clone()), node: Some(b.name().clone()) }]);
        let gone = watch(a, &first).await;
        a.send(&first, Term::atom("crash"));
        assert_eq!(next(&gone).await, Term::atom("crashed"));
        let (second, _) = started(&rx).await;
        assert_eq!(second.node(), b.name(), "restarted where it ran: its node is fine");
        assert_ne!(second, first);
        assert_eq!(children(a, &sup).await[0].pid, Some(second));
        shutdown_all(&nodes).await;
    });
}

#[test]
fn one_for_all_restarts_the_children_on_every_node() {
    run(async {
        let (_epmd, nodes, log, rx) = cluster().await;
        let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
        let sup = Supervisor::new(Strategy::OneForAll)
            .intensity(5, Duration::from_secs(5))
            .child(remote("x", &[b], &log))
            .child(remote("y", &[c], &log))
            .start(a);
        let [x, y] = <[Pid; 2]>::try_from(started_n(&rx, 2).await).unwrap();
        assert_eq!((x.node(), y.node()), (b.name(), c.name()));
        let kids = children(a, &sup).await;
        assert_eq!(kids.iter().map(|k| k.pid.clone()).collect::<Vec<_>>(), [Some(x.clone()), Some(y.clone())]);
        // Watched from a, as the supervisor's shutdown signal to y is: both travel a's connection
        // to c in order, so the monitor is in place before the signal lands.
        let y_down = watch(a, &y).await;
        a.send(&x, Term::atom("crash"));
        assert_eq!(next(&y_down).await, reason::shutdown(), "the sibling on c is shut down");
        let [x2, y2] = <[Pid; 2]>::try_from(started_n(&rx, 2).await).unwrap();
        assert_eq!((x2.node(), y2.node()), (b.name(), c.name()));
        assert!(x2 != x && y2 != y, "both restarted");
        let kids = children(a, &sup).await;
        assert_eq!(kids.iter().map(|k| k.pid.clone()).collect::<Vec<_>>(), [Some(x2), Some(y2)]);
        shutdown_all(&nodes).await;
    });
}

#[test]
fn a_child_cut_off_by_a_partition_is_restarted_on_the_next_candidate() {
    run(async {
        let (_epmd, nodes, log, rx) = cluster().await;
        let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
        let sup = Supervisor::new(Strategy::OneForOne).child(remote("w", &[b, c], &log)).start(a);
        let (on_b, _) = started(&rx).await;
        assert_eq!(on_b.node(), b.name(), "the first candidate");
        assert!(a.disconnect(b.name()).unwrap());
        let (on_c, _) = started(&rx).await;
        assert_eq!(on_c.node(), c.name(), "the next candidate after the lost node");
        // b keeps running; the old child there got :noconnection through its link and is gone,
        // so the child does not run twice.
        eventually("the child on b ends", || !b.is_alive(&on_b)).await;
        let kids = children(a, &sup).await;
        assert_eq!(kids[0].node.as_ref(), Some(c.name()));
        assert_eq!(kids[0].pid.as_ref(), Some(&on_c));
        quiet(&rx, "one restart only").await;
        shutdown_all(&nodes).await;
    });
}

#[test]
fn a_child_whose_node_shuts_down_walks_the_candidates_including_the_supervisors_node() {
    run(async {
        let (_epmd, nodes, log, rx) = cluster().await;
        let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
        let sup = Supervisor::new(Strategy::OneForOne)
            .intensity(5, Duration::from_secs(5))
            .child(remote("w", &[b, c, a], &log))
            .start(a);
        let (on_b, _) = started(&rx).await;
        assert_eq!(on_b.node(), b.name());
        b.shutdown().await;
        let (on_c, _) = started(&rx).await;
        assert_eq!(on_c.node(), c.name());
        c.shutdown().await;
        let (on_a, _) = started(&rx).await;
        assert_eq!(on_a.node(), a.name(), "the supervisor's own node, from its allow-list");
        assert!(a.is_alive(&on_a));
        assert_eq!(children(a, &sup).await[0].node.as_ref(), Some(a.name()));
        // A local child from the allow-list is linked like any other: it is restarted on a crash.
        a.send(&on_a, Term::atom("crash"));
        let (again, _) = started(&rx).await;
        assert_eq!(again.node(), a.name());
        a.shutdown().await;
    });
}

#[test]
fn too_many_remote_crashes_make_the_supervisor_exit_with_shutdown() {
    run(async {
        let (_epmd, nodes, log, rx) = cluster().await;
        let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
        let sup = Supervisor::new(Strategy::OneForOne)
            .intensity(1, Duration::from_secs(5))
            .child(remote("w", &[b], &log))
            .child(remote("other", &[c], &log))
            .start(a);
        let [w, other] = <[Pid; 2]>::try_from(started_n(&rx, 2).await).unwrap();
        let sup_down = watch(a, &sup).await;
        // Watched from the supervisor's node: the monitor and the supervisor's shutdown signal
        // travel the same connection to c, in that order. From b, the shutdown could reach c
        // first and the monitor would see :noproc.
        let other_down = watch(a, &other).await;
        a.send(&w, Term::atom("crash"));
        let (w2, _) = started(&rx).await;
        a.send(&w2, Term::atom("crash"));
        assert_eq!(next(&other_down).await, reason::shutdown(), "the other child is shut down");
        assert_eq!(next(&sup_down).await, reason::shutdown());
        quiet(&rx, "nothing restarted once the intensity is exceeded").await;
        shutdown_all(&nodes).await;
    });
}

#[test]
fn a_child_with_no_candidate_up_counts_failed_restarts_until_the_supervisor_exits() {
    run(async {
        let (_epmd, nodes, log, rx) = cluster().await;
        let (a, b) = (&nodes[0], &nodes[1]);
        let sup = Supervisor::new(Strategy::OneForOne)
            .intensity(3, Duration::from_secs(30))
            .child(remote("w", &[b], &log))
            .start(a);
        started(&rx).await;
        let sup_down = watch(a, &sup).await;
        // b is gone (unregistered from snow-epmd): every restart attempt fails, is retried, and
        // counts; the fourth in the period exceeds the intensity.
        b.shutdown().await;
        assert_eq!(next(&sup_down).await, reason::shutdown());
        quiet(&rx, "never started anywhere").await;
        shutdown_all(&nodes).await;
    });
}

#[test]
fn a_remote_child_that_cannot_start_at_all_stops_the_supervisor_as_in_otp() {
    run(async {
        let (_epmd, nodes, log, rx) = cluster().await;
        let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
        let sup = Supervisor::new(Strategy::OneForOne).child(remote("fine", &[c], &log)).child(ChildSpec::remote(
            "missing",
            names(&[b, c]),
            "not_allow_listed",
            vec![],
        ));
        let why = in_process(a, move |mut me| async move {
            me.trap_exit(true);
            let pid = sup.start_link(&me);
            me.receive_match(|m| matches!(m.as_tuple(), Some([_, Term::Pid(p), _]) if *p == pid)).await
        })
        .await;
        let why = why.as_tuple().unwrap()[2].clone();
        let Some([shutdown, failed]) = why.as_tuple() else { panic!("{why}") };
        assert_eq!(*shutdown, reason::shutdown());
        let Some([tag, Term::String(id), Term::Tuple(cause)]) = failed.as_tuple() else { panic!("{why}") };
        assert!(tag.is_atom("failed_to_start_child") && id == "missing", "{why}");
        assert!(cause[0].is_atom("no_candidate"), "{why}");
        assert!(matches!(&cause[2], Term::List(tried) if tried.len() == 2), "both candidates tried: {why}");
        let (fine, _) = started(&rx).await;
        eventually("the child started before is shut down", || !c.is_alive(&fine)).await;
        shutdown_all(&nodes).await;
    });
}

#[test]
fn simple_one_for_one_starts_remote_children_with_the_start_child_arguments() {
    run(async {
        let (_epmd, nodes, log, rx) = cluster().await;
        let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
        let template = remote("session", &[b, c], &log).restart(Restart::Transient);
        let sup = Supervisor::new(Strategy::SimpleOneForOne).child(template).start(a);
        let pid = {
            let sup = sup.clone();
            in_process(a, move |mut me| async move { supervisor::start_child(&mut me, &sup, Term::Int(7)).await })
                .await
                .unwrap()
        };
        let (reported, rest) = started(&rx).await;
        assert_eq!((reported.clone(), rest), (pid.clone(), vec![Term::Int(7)]), "spec args, then start_child's");
        assert_eq!(pid.node(), b.name());
        // A template no candidate can start: start_child answers with the reason.
        let bad = ChildSpec::remote("nope", names(&[c]), "not_allow_listed", vec![]);
        let bad_sup = Supervisor::new(Strategy::SimpleOneForOne).child(bad).start(a);
        let err = in_process(a, move |mut me| async move {
            supervisor::start_child(&mut me, &bad_sup, Term::Unit).await.unwrap_err()
        })
        .await;
        match err {
            supervisor::SupervisorError::StartFailed(text) => {
                assert!(text.contains("not_allow_listed") && text.contains("register_spawnable"), "{text}")
            }
            other => panic!("expected StartFailed, got {other:?}"),
        }
        shutdown_all(&nodes).await;
    });
}

#[test]
fn stopping_the_supervisor_stops_remote_children_killing_one_that_ignores_shutdown() {
    run(async {
        let (_epmd, nodes, log, rx) = cluster().await;
        let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
        let stubborn = ChildSpec::remote("stubborn", names(&[c]), "stubborn", vec![Term::Pid(log.clone())])
            .shutdown(Shutdown::Timeout(Duration::from_millis(300)));
        let sup = Supervisor::new(Strategy::OneForOne).child(remote("w", &[b], &log)).child(stubborn).start(a);
        let [w, s] = <[Pid; 2]>::try_from(started_n(&rx, 2).await).unwrap();
        assert_eq!((w.node(), s.node()), (b.name(), c.name()));
        // Watched from a, the supervisor's node: a monitor from another node could reach the
        // child after the supervisor's shutdown signal and report :noproc.
        let w_down = watch(a, &w).await;
        let s_down = watch(a, &s).await;
        let sup_down = watch(a, &sup).await;
        a.exit(&sup, reason::shutdown());
        assert_eq!(next(&s_down).await, reason::killed(), "killed after its shutdown timeout");
        assert_eq!(next(&w_down).await, reason::shutdown());
        assert_eq!(next(&sup_down).await, reason::shutdown());
        quiet(&rx, "nothing restarted").await;
        shutdown_all(&nodes).await;
    });
}
