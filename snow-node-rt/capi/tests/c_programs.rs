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
