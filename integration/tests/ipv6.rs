//! A node named by an IPv6 address, as a new user would try it (issue 13, item 9): snow-epmd on
//! `[::1]`, a node started as `echo@[::1]` (no listen address set), then `snow-epmd ping
//! echo@[::1]`. Before, the node listened on 0.0.0.0 only and the ping got "connection refused".
//! Runs on the host's IPv6 loopback, or inside a network namespace this test creates when the
//! host has none.

use std::process::Command;

use snow_integration::child::ChildProc;
use snow_integration::cluster::{Cluster, TestNode};
use snow_integration::netns::{self, Netns};

const EPMD: &str = env!("CARGO_BIN_EXE_snow-epmd-it");
const NODE: &str = env!("CARGO_BIN_EXE_snow-test-node");

/// `program` on the host, or inside `ns`.
fn command(ns: Option<&Netns>, program: impl AsRef<std::ffi::OsStr>) -> Command {
    match ns {
        Some(ns) => ns.command(program),
        None => Command::new(program),
    }
}

/// The same command, run inside `ns` if given (program, arguments and environment carried over).
fn inside(ns: Option<&Netns>, plain: Command) -> Command {
    let mut cmd = command(ns, plain.get_program());
    cmd.args(plain.get_args());
    for (k, v) in plain.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd
}

#[test]
fn a_node_named_by_an_ipv6_address_listens_there_and_answers_ping() {
    // Namespace first: locals drop in reverse order, so the processes die before it goes.
    let ns = if std::net::TcpListener::bind("[::1]:0").is_ok() {
        None
    } else {
        if let Some(why) = netns::unavailable() {
            panic!("this host has no IPv6 loopback, and no network namespace can be made for one: {why}");
        }
        Some(Netns::create("ipv6").unwrap())
    };
    let cluster = Cluster::new(EPMD, NODE).unwrap();
    let data = cluster.dir.join("epmd");
    let epmd_cmd =
        inside(ns.as_ref(), cluster.epmd_command(&["--listen", "[::1]:0", "--data-dir", &data.to_string_lossy()]));
    let epmd = cluster.wait_epmd(ChildProc::spawn("snow-epmd [::1]", epmd_cmd).unwrap()).unwrap();
    assert!(epmd.addr.starts_with("[::1]:"), "{}", epmd.addr);

    // No SNOW_DIST_ADDR: the node must pick IPv6 from its name.
    let node_cmd = inside(ns.as_ref(), cluster.node_command("echo@[::1]", &epmd.addr, 20));
    let _node = TestNode::start("echo@[::1]", node_cmd).unwrap();

    let mut ping = command(ns.as_ref(), cluster.epmd_exe());
    ping.args(["ping", "echo@[::1]", "--epmd", &epmd.addr, "--cookie-file"]).arg(&cluster.cookie);
    for var in ["SNOW_COOKIE", "SNOW_COOKIE_FILE", "SNOW_TLS_CERT", "SNOW_TLS_KEY", "SNOW_TLS_CA"] {
        ping.env_remove(var);
    }
    let out = ping.output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout} {stderr}");
    assert!(stdout.starts_with("pong from echo@[::1] in "), "{stdout}");
}
