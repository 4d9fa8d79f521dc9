//! The README's first cluster: `examples/echo.rs`, run as its own OS process configured by its
//! environment only, answers a node of this test over a real connection (lookup in snow-epmd,
//! TLS, the cookie handshake with the full key derivation, a send by name, the reply by pid).
//!
//! `cargo test` builds the examples next to the test binaries; run alone (`--test echo_example`)
//! after `cargo build --examples`.

mod support;

use std::process::Command;
use std::time::Duration;

use smol_timeout::TimeoutExt;
use snow_node_rt::dist::NodeBuilder;
use snow_node_rt::Term;
use snow_shared::cookie::Cookie;
use support::*;

#[test]
fn the_echo_example_answers_over_the_network() {
    run(async {
        let epmd = epmd().await;
        let addr = epmd.local_addr().to_string();
        let mut cmd = Command::new(example("echo"));
        cmd.env("SNOW_NODE", "echo@127.0.0.1")
            .env("SNOW_COOKIE", std::str::from_utf8(COOKIE).unwrap())
            .env("SNOW_EPMD", &addr)
            .env_remove("SNOW_COOKIE_FILE")
            .env_remove("SNOW_DIST_PORT")
            .env_remove("SNOW_TICKTIME")
            .env_remove("SNOW_TLS_CERT")
            .env_remove("SNOW_TLS_KEY")
            .env_remove("SNOW_TLS_CA")
            .env("RUST_LOG", "off");
        let mut child = ChildProgram::start(cmd);
        let up = child.expect_line("the echo example's \"is up\" line", |l| l.contains("is up")).await;
        assert!(up.contains("echo@127.0.0.1") && up.contains("distributed: true"), "{up}");

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
