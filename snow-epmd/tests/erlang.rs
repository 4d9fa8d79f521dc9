//! EPMD compatibility against Erlang/OTP's own tools (Debian's `epmd` and `erl`, which CI
//! installs): the same raw requests sent to Erlang's epmd and to snow-epmd get the same replies
//! (names over 255 characters or 1020 bytes, invalid UTF-8, old clients, names outside Snow's
//! rules), `erl -sname` registers with snow-epmd and `epmd -names` lists it, over IPv4 and IPv6.
//! Erlang's tools are always pointed at the test's own ephemeral ports, never 4369.

mod common;

use std::net::{SocketAddr, TcpStream as StdStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use smol_timeout::TimeoutExt;
use snow_epmd::{client, Listen};
use snow_shared::epmd::wire::{encode_request, Request};
use snow_shared::NodeName;

/// A child process ended (by pid) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn require(tool: &str) {
    let found =
        Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success());
    assert!(found, "{tool} is not installed: install Debian's erlang-base (.ci/run does)");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Erlang's own epmd on a free port.
fn erlang_epmd() -> (Proc, u16) {
    require("epmd");
    let port = free_port();
    let child = Command::new("epmd")
        .args(["-port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let proc = Proc(child);
    let end = Instant::now() + WAIT;
    while StdStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "Erlang's epmd did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    }
    (proc, port)
}

/// The reply to `bytes` (what arrives within a moment: Erlang's epmd keeps a refused
/// registration's connection open, snow-epmd closes it), and the connection for a registration.
async fn reply(addr: &str, bytes: &[u8]) -> (Vec<u8>, async_net::TcpStream) {
    let mut s = async_net::TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    while let Some(Ok(n)) = s.read(&mut buf).timeout(Duration::from_millis(400)).await {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    (out, s)
}

fn alive_bytes(name: &[u8], high: u16, extra: &[u8]) -> Vec<u8> {
    let mut a = alive(name);
    a.high_version = high;
    a.extra = extra.to_vec();
    encode_request(&Request::Alive2(a))
}

#[test]
fn registrations_get_the_same_replies_as_from_erlangs_epmd() {
    let (_erl, erl_port) = erlang_epmd();
    run(async {
        let dir = TempDir::new("erl-diff");
        let (h, snow) = start(config(&dir)).await;
        let erl = format!("127.0.0.1:{erl_port}");
        let clef = "\u{1d11e}";
        let mut cases: Vec<(String, Vec<u8>)> = vec![
            ("256 characters".into(), alive_bytes(&[b'a'; 256], 6, b"")),
            ("1021 bytes".into(), alive_bytes(&[b'a'; 1021], 6, b"")),
            ("256 four-byte characters".into(), alive_bytes(clef.repeat(256).as_bytes(), 6, b"")),
            ("invalid UTF-8".into(), alive_bytes(&[0xff, 0xfe], 6, b"")),
            ("invalid UTF-8, old client".into(), alive_bytes(&[0xff, 0xfe], 5, b"")),
            ("Extra of 1021 bytes".into(), alive_bytes(b"zz", 6, &[b'e'; 1021])),
            ("NUL in the name".into(), alive_bytes(b"a\0b", 6, b"")),
            ("length 3058".into(), {
                let mut v = vec![0x0b, 0xf2, b'x'];
                v.extend(std::iter::repeat(0).take(3057));
                v
            }),
            ("PORT_PLEASE2 of an unknown name".into(), encode_request(&Request::PortPlease2(b"nobody".to_vec()))),
        ];
        // Accepted names register on both (the creation differs; the reply's shape does not).
        let accepted = ["plain", "bad name", "x@", "a@b@c", "\u{e9}t\u{e9}", &clef.repeat(255), &"\u{e9}".repeat(255)];
        let mut held = Vec::new();
        let versions = accepted.iter().map(|n| (*n, 6)).chain([("oldclient", 5)]);
        for (name, high) in versions {
            let bytes = alive_bytes(name.as_bytes(), high, b"");
            let ((from_erl, e), (from_snow, s)) = (reply(&erl, &bytes).await, reply(&snow, &bytes).await);
            assert_eq!(from_erl.len(), from_snow.len(), "{name} (version {high})");
            assert_eq!(from_erl[..2], from_snow[..2], "{name} (version {high})");
            assert_eq!(from_snow[1], 0, "{name} (version {high}) refused");
            held.extend([e, s]);
            // And both answer PORT_PLEASE2 for it the same way (the creation is not in it), except
            // for a name of 255 characters: Erlang's epmd (OTP 25) counts one character too many
            // and does not answer; snow-epmd does.
            let port_please = encode_request(&Request::PortPlease2(name.as_bytes().to_vec()));
            if name.chars().count() < 255 {
                cases.push((format!("PORT_PLEASE2 {name}"), port_please));
            } else {
                let info = client::port_please(&snow, name).await.unwrap().expect("registered name not found");
                assert_eq!(info.name, name.as_bytes());
            }
        }
        // The same name again: refused by both.
        cases.push(("a live name".into(), alive_bytes(b"plain", 6, b"")));
        cases.push(("a live name, old client".into(), alive_bytes(b"plain", 5, b"")));
        for (what, bytes) in cases {
            let ((from_erl, _), (from_snow, _)) = (reply(&erl, &bytes).await, reply(&snow, &bytes).await);
            assert_eq!(from_snow, from_erl, "{what}");
        }
        // NAMES lists the same names (Erlang's epmd lists newest first).
        let ((erl_names, _), (snow_names, _)) =
            (reply(&erl, &encode_request(&Request::Names)).await, reply(&snow, &encode_request(&Request::Names)).await);
        let lines = |b: &[u8]| {
            let mut l: Vec<String> = String::from_utf8_lossy(&b[4..]).lines().map(str::to_owned).collect();
            l.sort();
            l
        };
        assert_eq!(lines(&snow_names), lines(&erl_names));
        drop(held);
        h.shutdown().await.unwrap();
    })
}

/// Starts `erl -sname NAME` against the epmd at `port` (and `ERL_EPMD_ADDRESS`, if given).
fn erl_node(name: &str, port: u16) -> Proc {
    require("erl");
    let child = Command::new("erl")
        .args(["-sname", name, "-noshell", "-eval", "timer:sleep(30000), halt()."])
        .env("ERL_EPMD_PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Proc(child)
}

fn epmd_names(port: u16) -> String {
    let out = Command::new("epmd").args(["-port", &port.to_string(), "-names"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn erl_registers_and_epmd_names_lists_it_over_ipv4_and_ipv6() {
    require("epmd");
    run(async {
        let dir = TempDir::new("erl-sname");
        let mut c = config(&dir);
        c.listen = vec![Listen::AllAddresses(0)];
        let (h, _) = start(c).await;
        let port = h.local_addr().port();
        let addrs: Vec<SocketAddr> = h.local_addrs().to_vec();
        assert!(addrs.iter().any(|a| a.is_ipv4()) && addrs.iter().any(|a| a.is_ipv6()), "{addrs:?}");
        let _erl = erl_node("erlx", port);
        assert!(
            eventually(|| h.entries().iter().any(|e| e.name.as_str() == "erlx@testhost")).await,
            "erl did not register"
        );
        assert!(epmd_names(port).contains("name erlx at port"), "{}", epmd_names(port));
        // Over IPv6 too: a registration from ::1 and lookups on both families.
        let v6 = format!("[::1]:{port}");
        let _reg = client::register(&v6, &NodeName::parse("six@testhost").unwrap(), 7600).await.unwrap();
        for at in [v6.as_str(), &format!("127.0.0.1:{port}")] {
            let found = client::lookup(at, &NodeName::parse("six@testhost").unwrap()).await.unwrap();
            assert_eq!(found.map(|f| f.port), Some(7600), "{at}");
        }
        h.shutdown().await.unwrap();
    })
}
