//! Negotiated extensions on a live connection: a control message in the extension range
//! (`0x80..=0xEF`) that this build does not know is skipped when both sides negotiated
//! EXTENSIONS, and is a protocol error that closes the connection otherwise. The peer is driven by
//! hand (TLS and the cookie handshake, then raw frames), as in dist_security.rs.

mod support;

use std::time::Duration;

use async_net::TcpStream;
use futures_lite::io::AsyncWriteExt;
use futures_rustls::client::TlsStream;
use smol_timeout::TimeoutExt;
use snow_node_rt::{Node, Pid, Term};
use snow_shared::dist::control::{tag, Control};
use snow_shared::dist::handshake::PeerInfo;
use snow_shared::dist::Flags;
use snow_shared::frame::encode_frame;
use support::*;

/// The creation the hand-driven peer claims.
const CREATION: u32 = 7;

/// `raw::dial_offering` with a deadline: authenticates with `target` as `short@127.0.0.1`,
/// offering only `flags`, and returns the stream and what was negotiated.
async fn dial_offering(target: &Node, short: &str, flags: Flags) -> (TlsStream<TcpStream>, PeerInfo) {
    let dial = raw::dial_offering(target, short, COOKIE, Some(flags));
    dial.timeout(WAIT).await.expect("timed out authenticating the hand-driven peer").expect("the handshake")
}

/// Frames for: one message of each given extension tag (with a body the receiver cannot know the
/// layout of), then a SEND of `msg` from the hand-driven peer `short` to `to`.
fn extensions_then_send(short: &str, tags: &[u8], to: &Pid, msg: Term) -> Vec<u8> {
    let mut out = Vec::new();
    for &t in tags {
        encode_frame(&[t, 0x83, 0x00, 0xff, 0x10, 0x20], &mut out).unwrap();
    }
    let send = Control::Send { from: Pid::new(name(short), 1, CREATION), to: to.clone(), msg };
    encode_frame(&send.to_bytes(), &mut out).unwrap();
    out
}

#[test]
fn negotiated_unknown_extension_messages_are_skipped() {
    run(async {
        let epmd = epmd().await;
        let a = node(&epmd, "a").await;
        let (sink, rx) = collector(&a);
        let (mut x, peer) = dial_offering(&a, "x", Flags::ALL).await;
        assert!(peer.flags.contains(Flags::EXTENSIONS), "negotiated {:?}", peer.flags);
        eventually("x connected", || a.nodes() == vec![name("x")]).await;
        // The range's ends and a tag inside it, then a message in the same write: the reader stops at
        // the first frame it cannot accept, so the message arrives only if all three were skipped.
        let frames =
            extensions_then_send("x", &[tag::EXTENSION_FIRST, 0xa5, tag::EXTENSION_LAST], &sink, Term::atom("first"));
        x.write_all(&frames).await.unwrap();
        x.flush().await.unwrap();
        assert_eq!(next(&rx).await, Term::atom("first"));
        // Later, in a write of its own: the connection is still up and still reads.
        let frames = extensions_then_send("x", &[0x90], &sink, Term::atom("second"));
        x.write_all(&frames).await.unwrap();
        x.flush().await.unwrap();
        assert_eq!(next(&rx).await, Term::atom("second"));
        snow_node_rt::sleep(Duration::from_millis(100)).await;
        assert_eq!(a.nodes(), vec![name("x")], "the connection stays up");
        assert!(rx.try_recv().is_err());
        drop(x);
        a.shutdown().await;
    });
}

/// The control case: the same frames on a connection without EXTENSIONS close it, so the test
/// above shows the frames being skipped, not never reaching the decoder.
#[test]
fn unknown_extension_messages_without_the_flag_close_the_connection() {
    run(async {
        let epmd = epmd().await;
        let a = node(&epmd, "a").await;
        let (sink, rx) = collector(&a);
        let (mut x, peer) = dial_offering(&a, "x", Flags::ALL.without(Flags::EXTENSIONS)).await;
        assert!(!peer.flags.contains(Flags::EXTENSIONS), "negotiated {:?}", peer.flags);
        eventually("x connected", || a.nodes() == vec![name("x")]).await;
        let frames = extensions_then_send("x", &[0x90], &sink, Term::atom("never"));
        x.write_all(&frames).await.unwrap();
        x.flush().await.unwrap();
        assert!(raw::closes(&mut x).await, "a closes the connection");
        eventually("x gone", || a.nodes().is_empty()).await;
        assert!(rx.try_recv().is_err(), "nothing after the bad frame is delivered");
        a.shutdown().await;
    });
}
