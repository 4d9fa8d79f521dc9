//! A peer speaks only for its own processes: a control message whose sender is a process of
//! another node is forged, and closes the connection before anything after it is delivered. The
//! peer is driven by hand (TLS and the cookie handshake, then raw frames), as in
//! dist_security.rs.

mod support;

use std::time::Duration;

use futures_lite::io::AsyncWriteExt;
use snow_node_rt::{Pid, Term};
use snow_shared::dist::control::Control;
use snow_shared::frame::encode_frame;
use support::*;

/// A SEND frame from `from` to `to`.
fn send_frame(from: Pid, to: &Pid, msg: Term, out: &mut Vec<u8>) {
    encode_frame(&Control::Send { from, to: to.clone(), msg }.to_bytes(), out).unwrap();
}

#[test]
fn a_message_claiming_a_sender_of_another_node_closes_the_connection() {
    run(async {
        let epmd = epmd().await;
        let a = node(&epmd, "a").await;
        let (sink, rx) = collector(&a);
        let mut x = raw::dial(&a, "x", COOKIE).await.expect("x authenticates");
        eventually("x connected", || a.nodes() == vec![name("x")]).await;
        // Its own process first: delivered, so the frames are well formed and reach the reader.
        let mut frames = Vec::new();
        send_frame(Pid::new(name("x"), 1, 7), &sink, Term::atom("own"), &mut frames);
        x.write_all(&frames).await.unwrap();
        x.flush().await.unwrap();
        assert_eq!(next(&rx).await, Term::atom("own"));
        // Then one claiming a process of c, and a proper one behind it in the same write.
        let mut frames = Vec::new();
        send_frame(Pid::new(name("c"), 1, 3), &sink, Term::atom("forged"), &mut frames);
        send_frame(Pid::new(name("x"), 1, 7), &sink, Term::atom("after"), &mut frames);
        x.write_all(&frames).await.unwrap();
        x.flush().await.unwrap();
        assert!(raw::closes(&mut x).await, "a closes the connection");
        eventually("x gone", || a.nodes().is_empty()).await;
        snow_node_rt::sleep(Duration::from_millis(50)).await;
        assert!(rx.try_recv().is_err(), "neither the forged message nor the one after it is delivered");
        a.shutdown().await;
    });
}
