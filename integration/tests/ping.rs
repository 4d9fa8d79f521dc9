//! `snow-epmd ping NAME@HOST` against real processes: a pong from a live node, and one clear line
//! and the right exit code for each failure class (not registered, unreachable, TLS failed, cookie
//! rejected, snow-epmd unreachable).

use std::io::Write;
use std::process::Output;

use snow_integration::cluster::{Cluster, Epmd};
use snow_integration::tmp::{free_port, random_cookie, write_secret};
use snow_shared::NodeName;

const EPMD: &str = env!("CARGO_BIN_EXE_snow-epmd-it");
const NODE: &str = env!("CARGO_BIN_EXE_snow-test-node");

fn ping(cluster: &Cluster, epmd: &str, name: &str, cookie: &std::path::Path) -> Output {
    std::process::Command::new(cluster.epmd_exe())
        .args(["ping", name, "--epmd", epmd, "--cookie-file"])
        .arg(cookie)
        .env_remove("SNOW_COOKIE")
        .env_remove("SNOW_COOKIE_FILE")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Registers `name` at `port` with the daemon for as long as the returned handle lives.
fn register(epmd: &Epmd, name: &str, port: u16) -> snow_epmd::client::Registration {
    let name = NodeName::parse(name).unwrap();
    async_std::task::block_on(snow_epmd::client::register(&epmd.addr, &name, port)).unwrap()
}

#[test]
fn ping_answers_pong_or_names_what_failed() {
    let cluster = Cluster::new(EPMD, NODE).unwrap();
    let epmd = cluster.start_epmd(0, "epmd").unwrap();
    let node = cluster.start_node("target@127.0.0.1", &epmd.addr, 20).unwrap();

    let out = ping(&cluster, &epmd.addr, &node.name, &cluster.cookie);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout} {}", stderr(&out));
    assert!(stdout.starts_with("pong from target@127.0.0.1 in ") && stdout.trim_end().ends_with(" ms"), "{stdout}");

    // A different cookie: the node refuses our proof.
    let wrong = cluster.dir.join("wrong-cookie");
    write_secret(&wrong, random_cookie().as_bytes()).unwrap();
    let out = ping(&cluster, &epmd.addr, &node.name, &wrong);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("rejected the cookie"), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "one line: {}", stderr(&out));

    // Not registered.
    let out = ping(&cluster, &epmd.addr, "nobody@127.0.0.1", &cluster.cookie);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("nobody@127.0.0.1 is not registered"), "{}", stderr(&out));

    // Registered, but nothing listens at its port.
    let closed = free_port().unwrap();
    let _ghost = register(&epmd, "ghost@127.0.0.1", closed);
    let out = ping(&cluster, &epmd.addr, "ghost@127.0.0.1", &cluster.cookie);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("ghost@127.0.0.1 is unreachable at 127.0.0.1:"), "{}", stderr(&out));

    // Registered, but the port speaks plain text, not TLS.
    let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let plain_port = plain.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut conn, _)) = plain.accept() {
            let _ = conn.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n");
        }
    });
    let _plain = register(&epmd, "plain@127.0.0.1", plain_port);
    let out = ping(&cluster, &epmd.addr, "plain@127.0.0.1", &cluster.cookie);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("TLS with plain@127.0.0.1 failed"), "{}", stderr(&out));

    // No snow-epmd at that address: exit 3.
    let nowhere = format!("127.0.0.1:{}", free_port().unwrap());
    let out = ping(&cluster, &nowhere, &node.name, &cluster.cookie);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot reach snow-epmd"), "{}", stderr(&out));
}
