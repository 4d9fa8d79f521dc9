//! The `snow-epmd` binary: the open-file limit at start (raised to what `--max-connections` needs,
//! or a one-line refusal saying what to change), and the client commands against a daemon on
//! IPv6 loopback (`--epmd [::1]:PORT`).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use snow_epmd::{client, Listen};
use snow_shared::NodeName;

const BIN: &str = env!("CARGO_BIN_EXE_snow-epmd");

/// Runs the daemon under `sh` with the given soft and hard open-file limits.
fn daemon_with_limits(soft: u32, hard: u32, dir: &TempDir, max_connections: u32) -> std::process::Child {
    let script = format!(
        "ulimit -Sn {soft} && ulimit -Hn {hard} && exec {BIN} --listen 127.0.0.1:0 --data-dir {} --max-connections {max_connections}",
        dir.path().join("db").display()
    );
    Command::new("sh")
        .args(["-c", &script])
        .env("RUST_LOG", "info")
        .env_remove("SNOW_COOKIE")
        .env_remove("SNOW_COOKIE_FILE")
        .env_remove("SNOW_EPMD_PEERS")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_hard_open_file_limit_below_max_connections_is_refused_in_one_line() {
    let dir = TempDir::new("nofile-low");
    let out = daemon_with_limits(256, 512, &dir, 4096).wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err.lines().find(|l| l.contains("--max-connections")).unwrap_or_else(|| panic!("{err}"));
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(line.contains("4096") && line.contains("512") && line.contains("ulimit"), "{line}");
}

#[test]
fn the_soft_open_file_limit_is_raised_to_what_max_connections_needs() {
    let dir = TempDir::new("nofile-raise");
    let mut child = daemon_with_limits(256, 8192, &dir, 4096);
    let pid = child.id();
    let end = Instant::now() + WAIT;
    let soft = loop {
        // Until the shell has exec'd the daemon, the limits are the shell's.
        let is_daemon = std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "snow-epmd");
        let limits = if is_daemon {
            std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default()
        } else {
            String::new()
        };
        let soft = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3)?.parse::<u64>().ok());
        if soft.is_some_and(|s| s > 256) || Instant::now() > end {
            break soft;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    let soft = soft.expect("cannot read the daemon's limits");
    assert!((4096..=8192).contains(&soft), "soft limit {soft}");
}

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).env_remove("SNOW_EPMD").output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[test]
fn list_lookup_and_ping_work_against_a_daemon_on_ipv6_loopback() {
    run(async {
        let dir = TempDir::new("v6");
        let mut c = config(&dir);
        c.listen = vec![Listen::Addr("[::1]:0".parse().unwrap())];
        let (h, _) = start(c).await;
        let epmd = format!("[::1]:{}", h.local_addr().port());
        let _reg = client::register(&epmd, &NodeName::parse("six@[::1]").unwrap(), 7601).await.unwrap();
        let (code, out, err) = cli(&["lookup", "six@[::1]", "--epmd", &epmd]);
        assert_eq!((code, out.trim()), (0, "[::1]:7601"), "{err}");
        let (code, out, err) = cli(&["list", "--json", "--epmd", &epmd]);
        assert!(code == 0 && out.contains("\"name\":\"six@[::1]\""), "{out}{err}");
        // ping reaches the daemon over IPv6 and the node's address (nothing listens there: the
        // failure is the node's, not the daemon's).
        let (code, _, err) = cli(&["ping", "six@[::1]", "--epmd", &epmd, "--cookie-file", "/nonexistent"]);
        assert_eq!(code, 2, "{err}");
        h.shutdown().await.unwrap();
    })
}
