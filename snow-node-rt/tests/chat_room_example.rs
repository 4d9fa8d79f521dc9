//! `examples/chat_room.rs` as a user runs it: three participants, each its own OS process and
//! node, meet through one of them, join the room, see each other's lines; one is killed with
//! SIGKILL, the other two see it leave and keep chatting; one ends its input and leaves.
//!
//! `cargo test` builds the examples next to the test binaries; run alone (`--test
//! chat_room_example`) after `cargo build --examples`.

mod support;

use std::process::Command;

use support::*;

/// Starts the chat room example as `short@127.0.0.1`, meeting `peers`.
fn participant(epmd: &Epmd, short: &str, peers: &[&str]) -> ChildProgram {
    let mut cmd = Command::new(example("chat_room"));
    cmd.args(peers)
        .env("SNOW_NODE", format!("{short}@127.0.0.1"))
        .env("SNOW_COOKIE", std::str::from_utf8(COOKIE).unwrap())
        .env("SNOW_EPMD", epmd.local_addr().to_string())
        .env("RUST_LOG", "error");
    for var in ["SNOW_COOKIE_FILE", "SNOW_DIST_PORT", "SNOW_TICKTIME", "SNOW_TLS_CERT", "SNOW_TLS_KEY", "SNOW_TLS_CA"] {
        cmd.env_remove(var);
    }
    ChildProgram::start(cmd)
}

#[test]
fn three_nodes_chat_and_the_room_survives_a_killed_node() {
    run(async {
        let epmd = epmd().await;
        let mut alice = participant(&epmd, "alice", &[]);
        alice.expect_line("alice in the room", |l| l == "alice@127.0.0.1 is in room lobby; type to talk").await;
        let mut bob = participant(&epmd, "bob", &["alice@127.0.0.1"]);
        let mut carol = participant(&epmd, "carol", &["alice@127.0.0.1"]);
        // Everyone sees all three members (carol met bob through alice: the mesh).
        for (who, p) in [("alice", &mut alice), ("bob", &mut bob), ("carol", &mut carol)] {
            p.expect_line(&format!("{who} sees 3 in the room"), |l| l.ends_with("joined (3 in the room)")).await;
        }

        // A line said on one node reaches every member, its own included.
        bob.write_line("hello from bob");
        for p in [&mut alice, &mut bob, &mut carol] {
            p.expect_line("bob's line", |l| l == "<bob@127.0.0.1> hello from bob").await;
        }

        // carol's node is killed: the others see her leave, and keep chatting.
        carol.kill();
        for p in [&mut alice, &mut bob] {
            p.expect_line("carol leaving", |l| l == "* carol@127.0.0.1 left (2 in the room)").await;
        }
        alice.write_line("still here");
        for p in [&mut alice, &mut bob] {
            p.expect_line("alice's line", |l| l == "<alice@127.0.0.1> still here").await;
        }

        // bob ends his input: he leaves, and his program ends.
        bob.close_stdin();
        alice.expect_line("bob leaving", |l| l == "* bob@127.0.0.1 left (1 in the room)").await;
        assert!(bob.exit_status().await.success(), "bob's program exits cleanly at end of input");
    });
}
