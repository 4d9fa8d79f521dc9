//! The real snow-epmd binary (`snow-epmd-it`, the same command line): CLI exit codes and output,
//! kill -9 and restart (entry unconfirmed, then up when the node registers again), three daemons
//! gossiping through one seed, lookup sessions, and compatibility with Erlang's own `epmd -names`
//! and `erl -sname` (that test fails, naming the package to install, where Erlang is missing; it
//! never passes without running). Erlang's tools are always pointed at the test daemon's
//! ephemeral port, never 4369.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use snow_integration::tmp::{random_cookie, write_secret, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_snow-epmd-it");

fn free_port() -> u16 {
    snow_integration::tmp::free_port().unwrap()
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the daemon on `port` and waits for its "listening on" log line. (Probing the port with
/// connects instead can succeed without the daemon: a connect to a free local port may connect
/// the socket to itself, and then the daemon cannot bind.)
fn daemon(port: u16, dir: &TempDir, extra: &[&str]) -> Daemon {
    let mut child = Command::new(BIN)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir.join(&format!("db-{port}")))
        .args(["--hostname", "testhost"])
        .args(extra)
        .env("RUST_LOG", "info")
        .env_remove("SNOW_COOKIE")
        .env_remove("SNOW_COOKIE_FILE")
        .env_remove("SNOW_EPMD_PEERS")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        // Reads to the end, so the daemon never blocks on a full pipe.
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("listening on ") {
                let _ = tx.send(());
            }
        }
    });
    let daemon = Daemon(child);
    rx.recv_timeout(Duration::from_secs(10)).expect("daemon did not start listening within 10 s");
    daemon
}

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).env_remove("SNOW_EPMD").output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

#[test]
fn cli_exit_codes_and_kill_9_restart() {
    let dir = TempDir::new("epmd-proc").unwrap();
    let port = free_port();
    let epmd = format!("127.0.0.1:{port}");
    let mut d = daemon(port, &dir, &["--grace", "20"]);
    let reg = snow_node_rt::block_on(snow_epmd::client::register(
        &epmd,
        &snow_shared::NodeName::parse("p@127.0.0.1").unwrap(),
        7100,
    ))
    .unwrap();
    let (code, out, _) = cli(&["lookup", "p@127.0.0.1", "--epmd", &epmd]);
    assert_eq!((code, out.trim()), (0, "127.0.0.1:7100"));
    let (code, _, err) = cli(&["lookup", "nobody@127.0.0.1", "--epmd", &epmd]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.lines().count(), 1);
    let (code, out, _) = cli(&["list", "--epmd", &epmd]);
    assert_eq!(code, 0);
    assert!(out.starts_with("NAME") && out.contains("p@127.0.0.1") && out.contains(" up "), "{out}");
    let (code, out, _) = cli(&["list", "--json", "--epmd", &epmd]);
    assert!(code == 0 && out.contains("\"state\":\"up\""), "{out}");
    // kill -9, restart: the entry is unconfirmed, then up again when the node re-registers.
    d.0.kill().unwrap();
    d.0.wait().unwrap();
    drop(reg);
    let (code, _, _) = cli(&["list", "--epmd", &epmd]);
    assert_eq!(code, 3, "unreachable daemon must exit 3");
    let _d = daemon(port, &dir, &["--grace", "20"]);
    let (_, out, _) = cli(&["list", "--json", "--epmd", &epmd]);
    assert!(out.contains("\"state\":\"unconfirmed\""), "{out}");
    let _reg = snow_node_rt::block_on(snow_epmd::client::register(
        &epmd,
        &snow_shared::NodeName::parse("p@127.0.0.1").unwrap(),
        7101,
    ))
    .unwrap();
    let (_, out, _) = cli(&["list", "--json", "--epmd", &epmd]);
    assert!(out.contains("\"state\":\"up\"") && out.contains("7101"), "{out}");
    // Usage errors exit 2; gen-cookie prints 43 URL-safe characters.
    assert_eq!(cli(&["--listen", "nope"]).0, 2);
    let (code, out, _) = cli(&["gen-cookie"]);
    assert_eq!((code, out.trim().len()), (0, 43));
}

#[test]
fn erlang_epmd_names_and_erl_sname_work_against_snow_epmd() {
    assert!(
        snow_integration::erlang::available(),
        "Erlang/OTP (erl, erlc, epmd) is not installed: install Debian's erlang-base (.ci/run does)"
    );
    let dir = TempDir::new("epmd-erl").unwrap();
    let port = free_port();
    let epmd = format!("127.0.0.1:{port}");
    let _d = daemon(port, &dir, &[]);
    let _reg = snow_node_rt::block_on(snow_epmd::client::register(
        &epmd,
        &snow_shared::NodeName::parse("snowy@testhost").unwrap(),
        7200,
    ))
    .unwrap();
    let names = Command::new("epmd").args(["-port", &port.to_string(), "-names"]).output().unwrap();
    let text = String::from_utf8_lossy(&names.stdout);
    assert!(text.contains("name snowy at port 7200"), "{text}");
    // An Erlang node registers with snow-epmd through ERL_EPMD_PORT.
    let mut erl = Command::new("erl")
        .args(["-sname", "erlx", "-noshell", "-eval", "timer:sleep(20000), halt()."])
        .env("ERL_EPMD_PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let seen = wait_for(Duration::from_secs(15), || {
        let (_, out, _) = cli(&["list", "--json", "--epmd", &epmd]);
        out.contains("\"name\":\"erlx@")
    });
    let names = Command::new("epmd").args(["-port", &port.to_string(), "-names"]).output().unwrap();
    let _ = erl.kill();
    let _ = erl.wait();
    assert!(seen, "erl -sname did not register with snow-epmd");
    assert!(String::from_utf8_lossy(&names.stdout).contains("name erlx at port"));
    // Erlang's own epmd has no lookup session: the client says so instead of hanging.
    let erl_port = free_port();
    let mut erl_epmd = Command::new("epmd")
        .args(["-port", &erl_port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let erl_addr = format!("127.0.0.1:{erl_port}");
    wait_for(Duration::from_secs(10), || std::net::TcpStream::connect(&erl_addr).is_ok());
    let session = snow_node_rt::block_on(snow_epmd::client::LookupSession::open(&erl_addr));
    let _ = erl_epmd.kill();
    let _ = erl_epmd.wait();
    assert!(matches!(session, Err(snow_epmd::client::ClientError::NoSession(_))), "{session:?}");
}

/// `list --json` of the daemon at `epmd`.
fn list_json(epmd: &str) -> String {
    cli(&["list", "--json", "--epmd", epmd]).1
}

#[test]
fn three_daemons_gossip_through_one_seed() {
    let dir = TempDir::new("epmd-gossip").unwrap();
    let cookie = dir.join("cookie");
    write_secret(&cookie, random_cookie().as_bytes()).unwrap();
    let cookie = cookie.to_string_lossy().into_owned();
    let ports = [free_port(), free_port(), free_port()];
    let addr = |i: usize| format!("127.0.0.1:{}", ports[i]);
    let gossip = ["--cookie-file", &cookie, "--gossip-interval", "50"];
    let _seed = daemon(ports[0], &dir, &gossip);
    let with_seed = |i: usize| daemon(ports[i], &dir, &[&gossip[..], &["--peer", &addr(0)]].concat());
    let (_d1, _d2) = (with_seed(1), with_seed(2));
    let register = |i: usize, name: &str, port: u16| {
        snow_node_rt::block_on(snow_epmd::client::register(
            &addr(i),
            &snow_shared::NodeName::parse(name).unwrap(),
            port,
        ))
        .unwrap()
    };
    let one = register(1, "one@127.0.0.1", 7301);
    let _two = register(2, "two@127.0.0.1", 7302);
    // Daemons 1 and 2 know each other only through the seed, yet see each other's nodes.
    let seen = wait_for(Duration::from_secs(20), || {
        let (l1, l2) = (list_json(&addr(1)), list_json(&addr(2)));
        l1.contains("\"name\":\"two@127.0.0.1\"") && l2.contains("\"name\":\"one@127.0.0.1\"")
    });
    assert!(seen, "gossip did not spread: {} / {}", list_json(&addr(1)), list_json(&addr(2)));
    let (code, out, _) = cli(&["lookup", "one@127.0.0.1", "--epmd", &addr(2)]);
    assert_eq!((code, out.trim()), (0, "127.0.0.1:7301"));
    assert!(list_json(&addr(2)).contains(&format!("\"origin\":\"{}\"", addr(1))), "{}", list_json(&addr(2)));
    // A node leaving is seen as down everywhere.
    one.close();
    let down = wait_for(Duration::from_secs(20), || {
        [0, 2].iter().all(|&i| {
            let l = list_json(&addr(i));
            l.split("},").any(|row| row.contains("\"name\":\"one@127.0.0.1\"") && row.contains("\"state\":\"down\""))
        })
    });
    assert!(down, "the node's departure did not spread: {}", list_json(&addr(2)));
}

#[test]
fn lookup_sessions_against_the_real_binary() {
    let dir = TempDir::new("epmd-session").unwrap();
    let port = free_port();
    let epmd = format!("127.0.0.1:{port}");
    let _d = daemon(port, &dir, &[]);
    let name = snow_shared::NodeName::parse("s@127.0.0.1").unwrap();
    let _reg = snow_node_rt::block_on(snow_epmd::client::register(&epmd, &name, 7400)).unwrap();
    let found = snow_node_rt::block_on(async {
        let mut session = snow_epmd::client::LookupSession::open(&epmd).await?;
        let names = vec![name.clone(); 100];
        session.lookup_many(&names).await
    })
    .unwrap();
    assert_eq!(found.len(), 100);
    assert!(found.iter().all(|f| f.as_ref().is_some_and(|f| f.port == 7400)));
}
