//! The README's first cluster: `examples/echo.rs`, run as its own OS process configured by its
//! environment only, answers a node of this test over a real connection (lookup in snow-epmd,
//! TLS, the cookie handshake with the full key derivation, a send by name, the reply by pid).
//!
//! `cargo test` builds the examples next to the test binaries; run alone (`--test echo_example`)
//! after `cargo build --examples`.

mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use smol_timeout::TimeoutExt;
use snow_node_rt::dist::NodeBuilder;
use snow_node_rt::Term;
use snow_shared::cookie::Cookie;
use support::*;

/// The echo example's binary, built by `cargo test` in `target/<profile>/examples/`.
fn example(name: &str) -> PathBuf {
    let test_exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<this test> -> target/<profile>/examples/<name>
    let profile_dir = test_exe.parent().and_then(|deps| deps.parent()).unwrap();
    let exe = profile_dir.join("examples").join(name);
    assert!(exe.exists(), "{} is missing: build the examples first (cargo build --examples)", exe.display());
    exe
}

/// Ends the child (started by this test, by its pid) however the test ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_echo_example_answers_over_the_network() {
    run(async {
        let epmd = epmd().await;
        let addr = epmd.local_addr().to_string();
        let mut child = KillOnDrop(
            Command::new(example("echo"))
                .env("SNOW_NODE", "echo@127.0.0.1")
                .env("SNOW_COOKIE", std::str::from_utf8(COOKIE).unwrap())
                .env("SNOW_EPMD", &addr)
                .env_remove("SNOW_COOKIE_FILE")
                .env_remove("SNOW_DIST_PORT")
                .env_remove("SNOW_TICKTIME")
                .env_remove("SNOW_TLS_CERT")
                .env_remove("SNOW_TLS_KEY")
                .env_remove("SNOW_TLS_CA")
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("the echo example starts"),
        );
        // Its "is up" line, read on a thread (the pipe blocks), within the test's bound.
        let stdout = child.0.stdout.take().unwrap();
        let (line_tx, line_rx) = async_channel::bounded(1);
        std::thread::spawn(move || {
            let up = BufReader::new(stdout).lines().map_while(Result::ok).find(|l| l.contains("is up"));
            let _ = line_tx.send_blocking(up);
        });
        let up = line_rx.recv().timeout(WAIT).await.expect("the echo example says it is up").unwrap();
        assert!(up.is_some_and(|l| l.contains("echo@127.0.0.1") && l.contains("distributed: true")));

        // A node with the production key derivation (the example has no test shortcut).
        let me = NodeBuilder::new(name("tester"))
            .cookie(Cookie::from_bytes(COOKIE).unwrap())
            .epmd(&addr)
            .listen_ip("127.0.0.1".parse().unwrap())
            .start()
            .await
            .unwrap();
        let (tx, rx) = async_channel::bounded(1);
        me.spawn(move |mut p| async move {
            let hello = Term::tuple([Term::Pid(p.pid().clone()), Term::String("hello".into())]);
            p.send_named_on("echo", &name("echo"), hello).unwrap();
            let _ = tx.send(p.receive_timeout(Duration::from_secs(10)).await).await;
        });
        let reply = rx.recv().timeout(WAIT).await.expect("the test process reports").unwrap();
        assert_eq!(reply, Some(Term::tuple([Term::atom("echo"), Term::String("hello".into())])));
        assert_eq!(me.nodes(), vec![name("echo")]);
        me.shutdown().await;
        drop(child);
    });
}
