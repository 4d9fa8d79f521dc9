//! `snow-epmd ping NAME@HOST` against real processes: a pong from a live node, and one clear line
//! and the right exit code for each failure class (not registered, unreachable, TLS failed, cookie
//! rejected, snow-epmd unreachable), pinging a cluster with CA-verified mutual TLS, and the
//! node's secret-file rules for ping's own TLS key.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;

use snow_integration::cluster::{Cluster, Epmd, TestNode};
use snow_integration::tmp::{free_port, random_cookie, write_secret};
use snow_shared::dist::test_ca::TestCa;
use snow_shared::NodeName;

const EPMD: &str = env!("CARGO_BIN_EXE_snow-epmd-it");
const NODE: &str = env!("CARGO_BIN_EXE_snow-test-node");

fn ping(cluster: &Cluster, epmd: &str, name: &str, cookie: &Path) -> Output {
    ping_with(cluster, epmd, name, cookie, &[])
}

/// `ping` with `extra` arguments, in an environment without any `SNOW_COOKIE*` or `SNOW_TLS_*`.
fn ping_with(cluster: &Cluster, epmd: &str, name: &str, cookie: &Path, extra: &[&OsStr]) -> Output {
    let mut cmd = std::process::Command::new(cluster.epmd_exe());
    cmd.args(["ping", name, "--epmd", epmd, "--cookie-file"]).arg(cookie).args(extra);
    for var in ["SNOW_COOKIE", "SNOW_COOKIE_FILE", "SNOW_TLS_CERT", "SNOW_TLS_KEY", "SNOW_TLS_CA"] {
        cmd.env_remove(var);
    }
    cmd.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Registers `name` at `port` with the daemon for as long as the returned handle lives.
fn register(epmd: &Epmd, name: &str, port: u16) -> snow_epmd::client::Registration {
    let name = NodeName::parse(name).unwrap();
    snow_node_rt::block_on(snow_epmd::client::register(&epmd.addr, &name, port)).unwrap()
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

/// A leaf certificate, its key and its CA, as PEM files.
struct TlsFiles {
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

/// Writes a fresh leaf certificate of `ca` for 127.0.0.1 as `dir/prefix-{cert,key,ca}.pem`.
fn leaf_files(ca: &TestCa, dir: &Path, prefix: &str) -> TlsFiles {
    let leaf = ca.leaf("127.0.0.1");
    let files = TlsFiles {
        cert: dir.join(format!("{prefix}-cert.pem")),
        key: dir.join(format!("{prefix}-key.pem")),
        ca: dir.join(format!("{prefix}-ca.pem")),
    };
    std::fs::write(&files.cert, leaf.cert).unwrap();
    write_secret(&files.key, leaf.key.as_bytes()).unwrap();
    std::fs::write(&files.ca, leaf.ca).unwrap();
    files
}

impl TlsFiles {
    fn args(&self) -> Vec<&OsStr> {
        vec![
            OsStr::new("--tls-cert"),
            self.cert.as_os_str(),
            OsStr::new("--tls-key"),
            self.key.as_os_str(),
            OsStr::new("--tls-ca"),
            self.ca.as_os_str(),
        ]
    }
}

#[test]
fn ping_reaches_a_ca_verified_cluster_only_with_a_certificate_of_its_ca() {
    let cluster = Cluster::new(EPMD, NODE).unwrap();
    let epmd = cluster.start_epmd(0, "epmd").unwrap();
    let ca = TestCa::new();
    let node_tls = leaf_files(&ca, cluster.dir.path(), "node");
    let name = "secure@127.0.0.1";
    let mut cmd = cluster.node_command(name, &epmd.addr, 20);
    cmd.env("SNOW_TLS_CERT", &node_tls.cert).env("SNOW_TLS_KEY", &node_tls.key).env("SNOW_TLS_CA", &node_tls.ca);
    let _node = TestNode::start(name, cmd).unwrap();

    // With a certificate signed by the cluster's CA: pong.
    let ours = leaf_files(&ca, cluster.dir.path(), "ping");
    let out = ping_with(&cluster, &epmd.addr, name, &cluster.cookie, &ours.args());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout} {}", stderr(&out));
    assert!(stdout.starts_with("pong from secure@127.0.0.1 in "), "{stdout}");

    // Without a certificate the node refuses the TLS handshake.
    let out = ping(&cluster, &epmd.addr, name, &cluster.cookie);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("TLS with secure@127.0.0.1 failed"), "{}", stderr(&out));

    // A certificate of another CA: refused too, whatever the cookie.
    let theirs = leaf_files(&TestCa::new(), cluster.dir.path(), "other");
    let out = ping_with(&cluster, &epmd.addr, name, &cluster.cookie, &theirs.args());
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("TLS with secure@127.0.0.1 failed"), "{}", stderr(&out));

    // Half the files is a configuration error (exit 2) naming what is missing.
    let half = [OsStr::new("--tls-cert"), ours.cert.as_os_str()];
    let out = ping_with(&cluster, &epmd.addr, name, &cluster.cookie, &half);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--tls-key is missing"), "{}", stderr(&out));
}

#[test]
fn ping_refuses_a_tls_key_others_can_read_or_a_symbolic_link_to_one() {
    use std::os::unix::fs::PermissionsExt;
    // No snow-epmd is needed: the files are checked before anything is asked. Were a key used
    // anyway, ping would go on to snow-epmd and fail with exit 3 instead.
    let cluster = Cluster::new(EPMD, NODE).unwrap();
    let nowhere = format!("127.0.0.1:{}", free_port().unwrap());
    let files = leaf_files(&TestCa::new(), cluster.dir.path(), "ping");
    let out = ping_with(&cluster, &nowhere, "target@127.0.0.1", &cluster.cookie, &files.args());
    assert_eq!(out.status.code(), Some(3), "a private key is used: {}", stderr(&out));

    for mode in [0o640, 0o604] {
        std::fs::set_permissions(&files.key, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = ping_with(&cluster, &nowhere, "target@127.0.0.1", &cluster.cookie, &files.args());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "mode {mode:o}: {err}");
        assert!(err.contains(&format!("is accessible by group or others (mode {mode:o})")), "{err}");
        assert!(err.contains(&format!("chmod 600 {}", files.key.display())), "{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }

    // A private key reached through a symbolic link is refused too: the link could be repointed.
    std::fs::set_permissions(&files.key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = cluster.dir.join("ping-key-link.pem");
    std::os::unix::fs::symlink(&files.key, &link).unwrap();
    let linked = TlsFiles { cert: files.cert.clone(), key: link.clone(), ca: files.ca.clone() };
    let out = ping_with(&cluster, &nowhere, "target@127.0.0.1", &cluster.cookie, &linked.args());
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("{} is a symbolic link", link.display())), "{err}");
    assert!(err.contains("point the setting at the real file"), "{err}");
}
