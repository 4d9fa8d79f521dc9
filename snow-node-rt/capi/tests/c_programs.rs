//! C programs, compiled here with the system C compiler against `include/snow_node.h` and the
//! static library, run as nodes of a real cluster (an in-process snow-epmd on loopback, TLS, the
//! cookie handshake) with Rust nodes, and checked line by line.

mod support;

use std::process::Command;

use snow_shared::test_support::TempDir;
use support::*;

/// `tests/c/echo_client.c` with the runtime's own threads: joins the cluster, talks to the Rust
/// echo node (a separate OS process), spawns there, and sees every link and monitor fire
/// `:noconnection` when the test kills that process with SIGKILL.
#[test]
fn a_c_program_talks_to_a_rust_node_and_sees_it_die() {
    let dir = TempDir::new("capi-c").expect("a temp dir");
    let exe = compile_c("tests/c", "echo_client", dir.path(), &[]);
    let epmd = Epmd::start();
    let mut peer = echo_peer(&epmd, "echo@127.0.0.1");
    let mut cmd = Command::new(exe);
    epmd.node_env(&mut cmd, "c@127.0.0.1");
    cmd.env("PEER_NODE", "echo@127.0.0.1");
    let mut c = Proc::spawn("echo_client", cmd);

    assert_eq!(c.expect("NODE"), "c@127.0.0.1 alive=1");
    assert_eq!(c.expect("NODES"), "[:\"echo@127.0.0.1\"]");
    let reply = c.expect("REPLY");
    assert!(reply.starts_with("{:echo, <echo@127.0.0.1.") && reply.ends_with(", \"hello\"}"), "{reply}");
    assert_eq!(c.expect("SPAWNED on"), "echo@127.0.0.1");
    assert!(c.expect("CHILD_REPLY").ends_with(", \"to the child\"}"));
    assert_eq!(c.expect("REFUSED"), "{:not_spawnable, \"nope\"}");
    assert!(c.expect("BAD_TERM").contains("unknown type tag 0x8f"));
    c.expect("MONITORING");

    peer.kill();
    let mut fired = Vec::new();
    loop {
        let line = c.line();
        if line == "ALL_FIRED" {
            break;
        }
        match line.strip_prefix("DOWN_MESSAGE ") {
            Some(msg) => assert!(msg.starts_with("{:DOWN, #Ref<") && msg.ends_with(", :noconnection}"), "{line}"),
            None => fired.push(line),
        }
    }
    fired.sort();
    assert_eq!(
        fired,
        [
            "DOWN child :noconnection",
            "DOWN name :noconnection",
            "DOWN pid :noconnection",
            "EXIT linked=1 :noconnection",
            "MESSAGE {:nodedown, :\"echo@127.0.0.1\"}",
        ]
    );
    assert_eq!(c.expect("STOPPED"), "alive=0");
    c.expect("DONE");
    let status = c.wait();
    assert!(status.success(), "echo_client exited with {status}; stderr:\n{}", c.stderr());
}

/// `tests/c/foreign_scheduler.c`: one thread of a C program runs the runtime's tasks and its own
/// processes (item 3 of the embedding issue: a foreign scheduler through the seam, driven from C).
/// A Rust node of this test talks to it, links to and monitors its processes, spawns a process on
/// it through its `spawn` callback, is refused another function, and sees the exits' real reasons.
#[test]
fn a_single_threaded_c_scheduler_hosts_a_node() {
    use snow_node_rt::dist::NodeBuilder;
    use snow_node_rt::error::RemoteSpawnError;
    use snow_node_rt::{NodeName, Term};
    use snow_shared::cookie::Cookie;
    use std::time::Duration;

    let dir = TempDir::new("capi-c").expect("a temp dir");
    let exe = compile_c("tests/c", "foreign_scheduler", dir.path(), &[]);
    let epmd = Epmd::start();
    let mut cmd = Command::new(exe);
    epmd.node_env(&mut cmd, "f@127.0.0.1");
    let mut c = Proc::spawn("foreign_scheduler", cmd);
    assert_eq!(c.expect("READY"), "f@127.0.0.1");

    let report = snow_node_rt::block_on(async {
        let node = NodeBuilder::new(NodeName::parse("r@127.0.0.1").unwrap())
            .cookie(Cookie::from_bytes(COOKIE.as_bytes()).unwrap())
            .epmd(&epmd.addr())
            .listen_ip("127.0.0.1".parse().unwrap())
            .start()
            .await
            .expect("the Rust node starts");
        let (tx, rx) = async_channel::bounded(1);
        node.spawn(move |mut me| async move {
            let result: Result<Vec<Term>, String> = async {
                let f = NodeName::parse("f@127.0.0.1").unwrap();
                let wait = Duration::from_secs(20);
                me.trap_exit(true);
                let me_term = Term::Pid(me.pid().clone());
                me.send_named_on("c_echo", &f, Term::tuple([me_term.clone(), Term::string("hi")]))
                    .map_err(|e| e.to_string())?;
                let reply = me.receive_timeout(wait).await.ok_or("no reply from c_echo")?;
                let server = match reply.as_tuple() {
                    Some([tag, Term::Pid(server), Term::String(s)]) if tag.is_atom("c_echo") && s == "hi" => {
                        server.clone()
                    }
                    _ => return Err(format!("odd reply {reply}")),
                };
                me.link(&server).map_err(|e| e.to_string())?;
                let server_watch = me.monitor(&server);
                // A process spawned on the C node through its `spawn` callback.
                let (child, child_watch) = me
                    .spawn_monitor_remote(&f, "c_echo", vec![Term::atom("child")])
                    .await
                    .map_err(|e| e.to_string())?;
                me.send(&child, Term::tuple([me_term.clone(), Term::Int(42)]));
                let child_reply = me.receive_timeout(wait).await.ok_or("no reply from the child")?;
                let refused = match me.spawn_remote(&f, "forbidden", vec![]).await {
                    Err(RemoteSpawnError::Refused { reason, .. }) => reason,
                    other => return Err(format!("the forbidden spawn: {other:?}")),
                };
                me.send(&child, Term::atom("stop"));
                let child_down = me.receive_timeout(wait).await.ok_or("no :DOWN of the child")?;
                me.send(&server, Term::atom("stop"));
                let mut ends = vec![
                    me.receive_timeout(wait).await.ok_or("no end of the server")?,
                    me.receive_timeout(wait).await.ok_or("no second end of the server")?,
                ];
                ends.sort();
                let _ = (server_watch, child_watch);
                Ok([vec![reply.as_tuple().unwrap()[0].clone(), child_reply, refused, child_down], ends].concat())
            }
            .await;
            let _ = tx.send(result).await;
        });
        let report = rx.recv().await.expect("the Rust process reports");
        node.shutdown().await;
        report
    });
    let terms = report.unwrap_or_else(|e| panic!("{e}; C program so far {:?}; stderr:\n{}", c.seen, c.stderr()));
    let text: Vec<String> = terms.iter().map(|t| t.to_string()).collect();
    assert_eq!(text[0], ":c_echo");
    assert!(text[1].starts_with("{:c_echo, <f@127.0.0.1.") && text[1].ends_with(", 42}"), "{}", text[1]);
    assert_eq!(text[2], "{:not_spawnable, \"forbidden\"}");
    assert!(text[3].starts_with("{:DOWN, #Ref<") && text[3].ends_with(", {:shutdown, :done}}"), "{}", text[3]);
    // Sorted: tuples by size first, so the 3-tuple {:EXIT, ..} before the 4-tuple {:DOWN, ..}.
    assert!(text[4].starts_with("{:EXIT, <f@127.0.0.1.") && text[4].ends_with(", {:shutdown, :done}}"), "{}", text[4]);
    assert!(text[5].starts_with("{:DOWN, #Ref<") && text[5].ends_with(", {:shutdown, :done}}"), "{}", text[5]);

    assert_eq!(c.expect("STARTED"), "[:child]");
    assert_eq!(c.expect("EXITED"), "1");
    assert_eq!(c.expect("EXITED"), "0");
    c.expect("ALL_EXITED");
    let tasks: u64 = c.expect("TASKS_RUN").parse().expect("a count");
    assert!(tasks > 10, "the C scheduler ran only {tasks} runtime tasks");
    c.expect("SCHEDULED_ELSEWHERE");
    c.expect("DONE");
    let status = c.wait();
    assert!(status.success(), "foreign_scheduler exited with {status}; stderr:\n{}", c.stderr());
}

/// `tests/c/global_names.c`: global names from C. The C node registers, moves and withdraws
/// global names for its processes; this test's Rust node sends to the C process by its global
/// name, registers one of its own that the C program finds and sends to (and may not withdraw),
/// and sees the C node's names vanish when their process exits or is unregistered.
#[test]
fn a_c_program_uses_global_names_with_a_rust_node() {
    use snow_node_rt::dist::NodeBuilder;
    use snow_node_rt::{NodeName, Term};
    use snow_shared::cookie::Cookie;
    use std::time::Duration;

    let dir = TempDir::new("capi-c").expect("a temp dir");
    let exe = compile_c("tests/c", "global_names", dir.path(), &[]);
    let epmd = Epmd::start();
    let report = snow_node_rt::block_on(async {
        let node = NodeBuilder::new(NodeName::parse("r@127.0.0.1").unwrap())
            .cookie(Cookie::from_bytes(COOKIE.as_bytes()).unwrap())
            .epmd(&epmd.addr())
            .listen_ip("127.0.0.1".parse().unwrap())
            .start()
            .await
            .expect("the Rust node starts");
        let mut cmd = Command::new(&exe);
        epmd.node_env(&mut cmd, "g@127.0.0.1");
        cmd.env("PEER_NODE", "r@127.0.0.1");
        let c = Proc::spawn("global_names", cmd);
        let (tx, rx) = async_channel::bounded(1);
        node.spawn(move |mut me| async move {
            let result: Result<Term, String> = async {
                let wait = Duration::from_secs(20);
                let (service, second) = (Term::atom("c_service"), Term::atom("c_second"));
                let registry = me.global();
                eventually("c_service to be known here", || registry.whereis_name(&service).is_some()).await?;
                let a = me
                    .global()
                    .send(&service, Term::tuple([Term::Pid(me.pid().clone()), Term::string("ping")]))
                    .map_err(|e| e.to_string())?;
                if a.node().as_str() != "g@127.0.0.1" {
                    return Err(format!("c_service is {a}, not a process of the C node"));
                }
                me.global().register_name(Term::atom("rust_service"), me.pid()).map_err(|e| e.to_string())?;
                let pong = me.receive_timeout(wait).await.ok_or("no message through rust_service")?;
                let registry = me.global();
                eventually("c_second to be known here", || registry.whereis_name(&second).is_some()).await?;
                me.send(&a, Term::atom("exit_b"));
                eventually("c_second to go with its process", || registry.whereis_name(&second).is_none()).await?;
                eventually("c_service to be withdrawn", || registry.whereis_name(&service).is_none()).await?;
                me.send(&a, Term::atom("stop"));
                Ok(pong)
            }
            .await;
            let _ = tx.send(result).await;
        });
        let report = rx.recv().await.expect("the Rust process reports");
        node.shutdown().await;
        (report, c)
    });
    let (report, mut c) = report;
    let pong = report.unwrap_or_else(|e| panic!("{e}; C program so far {:?}; stderr:\n{}", c.seen, c.stderr()));
    let pong = pong.to_string();
    assert!(pong.starts_with("{<g@127.0.0.1.") && pong.ends_with(", \"pong\"}"), "{pong}");

    assert!(c.expect("LOCAL_ONLY").contains("not distributed"));
    assert!(c.expect("WHEREIS_NOBODY").contains("no process is registered globally as :nobody"));
    assert!(c.expect("BAD_NAME").contains("unknown type tag 0x8f"));
    let taken = c.expect("TAKEN");
    assert!(taken.contains("c_service is registered to <g@127.0.0.1."), "{taken}");
    c.expect("REGISTERED");
    let ping = c.expect("A_GOT");
    assert!(ping.starts_with("{<r@127.0.0.1.") && ping.ends_with(", \"ping\"}"), "{ping}");
    assert_eq!(c.expect("FOUND"), "r@127.0.0.1");
    let elsewhere = c.expect("HELD_ELSEWHERE");
    assert!(elsewhere.contains("rust_service is held by <r@127.0.0.1."), "{elsewhere}");
    c.expect("SECOND");
    assert_eq!(c.expect("A_GOT"), ":exit_b");
    c.expect("EXIT_FREED");
    c.expect("UNREGISTERED");
    assert_eq!(c.expect("A_GOT"), ":stop");
    c.expect("DONE");
    let status = c.wait();
    assert!(status.success(), "global_names exited with {status}; stderr:\n{}", c.stderr());
}

/// `tests/c/remote_calls.c`: remote calls from C against the Rust echo node (a separate OS
/// process, `examples/echo_peer.rs`): values from outside any process and from a process, an exit
/// reason, a refusal, a timeout and an abandoned call (both kill the function's process: the C
/// program monitors it and sees `:killed`), a cast that reports back, and the requests refused at
/// once (local-only node, this node itself, args not a list, no callback, no such process).
#[test]
fn a_c_program_calls_functions_on_a_rust_node() {
    let dir = TempDir::new("capi-c").expect("a temp dir");
    let exe = compile_c("tests/c", "remote_calls", dir.path(), &[]);
    let epmd = Epmd::start();
    let _peer = echo_peer(&epmd, "echo@127.0.0.1");
    let mut cmd = Command::new(exe);
    epmd.node_env(&mut cmd, "c@127.0.0.1");
    cmd.env("PEER_NODE", "echo@127.0.0.1");
    let mut c = Proc::spawn("remote_calls", cmd);

    assert!(c.expect("NOT_DISTRIBUTED").contains("not distributed"));
    assert_eq!(c.expect("CALL_OK"), "5");
    assert_eq!(c.expect("CALL_OK"), "42");
    assert_eq!(c.expect("CALL_EXIT"), "{:badarg, [\"x\"]}");
    let exit = c.expect("CALL_EXIT_ERROR");
    assert!(exit.contains("\"add\" on echo@127.0.0.1 exited with {:badarg, [\"x\"]}"), "{exit}");
    assert_eq!(c.expect("CALL_REFUSED"), "{:not_spawnable, \"nope\"}");
    let timeout = c.expect("CALL_TIMEOUT");
    assert!(timeout.contains("did not return within 3s; it was killed"), "{timeout}");
    assert_eq!(c.expect("CALL_TIMEOUT_DOWN"), ":killed");
    let abandoned = c.expect("CALLER_EXITED");
    assert!(abandoned.contains("exited while its call of \"sleep\" on echo@127.0.0.1 waited"), "{abandoned}");
    assert_eq!(c.expect("CALLER_EXITED_DOWN"), ":killed");
    assert_eq!(c.expect("CAST"), "{:cast, \"hi\"}");
    assert_eq!(c.expect("SELF_CAST"), "{:not_spawnable, \"anything\"}");
    assert!(c.expect("SELF_CALL").contains("c@127.0.0.1 is this node"));
    assert!(c.expect("BAD_ARGS").contains("args must be an encoded list"));
    c.expect("DONE");
    let status = c.wait();
    assert!(status.success(), "remote_calls exited with {status}; stderr:\n{}", c.stderr());
}
