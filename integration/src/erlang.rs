//! The Erlang/OTP baseline of the distribution benchmark: two Erlang nodes on loopback, started as
//! child processes with a private cookie and a private epmd on a free port (`ERL_EPMD_PORT`; the
//! system's port 4369 is never touched), over plain TCP or TLS distribution (`-proto_dist
//! inet_tls` with a fresh ECDSA P-256 certificate, TLS 1.3 only, like Snow's). The workloads are in
//! `benches/erlang/dist_bench.erl` (two nodes), `benches/erlang/cluster_bench.erl` (a cluster)
//! and `benches/erlang/mesh_bench.erl` (one node of a mesh), compiled at run time into a private
//! directory.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::child::ChildProc;
use crate::cluster_bench::{ClusterFigures, ClusterWork, NODES};
use crate::figures::{Figures, Service, Workload};
use crate::meter::{run_phased, Meter};
use crate::tmp::{free_port, random_cookie, write_secret, TempDir};

/// The Erlang programs of the benches (compiled with erlc at run time): the two-node workloads and
/// the cluster's (`global`, `pg`), and a mesh node's.
const SOURCES: [(&str, &str); 3] = [
    ("dist_bench.erl", include_str!("../benches/erlang/dist_bench.erl")),
    ("cluster_bench.erl", include_str!("../benches/erlang/cluster_bench.erl")),
    ("mesh_bench.erl", include_str!("../benches/erlang/mesh_bench.erl")),
];

/// Which distribution carrier the Erlang nodes use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Erlang's default `inet_tcp_dist`: plain TCP, no encryption.
    Tcp,
    /// `inet_tls_dist` with TLS 1.3.
    Tls,
}

/// A prepared baseline: the compiled module, the certificate and the TLS option file.
pub struct ErlangBaseline {
    dir: TempDir,
}

/// Whether `erl` and `erlc` can be run.
pub fn available() -> bool {
    ["erl", "erlc", "epmd"].iter().all(|tool| {
        Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success())
    })
}

impl ErlangBaseline {
    /// Compiles the bench module and writes a self-signed certificate and `ssl_dist_optfile`.
    pub fn prepare() -> Result<ErlangBaseline, String> {
        let dir = TempDir::new("erlang-bench").map_err(|e| format!("cannot create a temp dir: {e}"))?;
        for (file, source) in SOURCES {
            let src = dir.join(file);
            std::fs::write(&src, source).map_err(|e| format!("cannot write {}: {e}", src.display()))?;
            let out = Command::new("erlc")
                .arg("-o")
                .arg(dir.path())
                .arg(&src)
                .output()
                .map_err(|e| format!("cannot run erlc: {e}"))?;
            if !out.status.success() {
                return Err(format!("erlc {file} failed: {}", String::from_utf8_lossy(&out.stdout)));
            }
        }
        let cert = rcgen::generate_simple_self_signed(vec!["snow-bench".to_owned()])
            .map_err(|e| format!("cannot generate a certificate: {e}"))?;
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_path, cert.cert.pem()).map_err(|e| format!("cannot write the certificate: {e}"))?;
        write_secret(&key_path, cert.key_pair.serialize_pem().as_bytes())
            .map_err(|e| format!("cannot write the key: {e}"))?;
        let conf = format!(
            "[{{server, [{{certfile, {:?}}}, {{keyfile, {:?}}}, {{versions, ['tlsv1.3']}}, {{verify, verify_none}}]}},\n \
             {{client, [{{versions, ['tlsv1.3']}}, {{verify, verify_none}}]}}].\n",
            cert_path.display().to_string(),
            key_path.display().to_string()
        );
        std::fs::write(dir.join("ssl_dist.conf"), conf).map_err(|e| format!("cannot write the TLS options: {e}"))?;
        Ok(ErlangBaseline { dir })
    }

    /// The command that starts an Erlang node `name` with the compiled bench modules on its code
    /// path, the private epmd at `epmd_port`, and TLS distribution if `transport` says so.
    pub fn node(&self, name: &str, transport: Transport, epmd_port: u16, cookie: &str) -> Command {
        let mut cmd = Command::new("erl");
        cmd.env("ERL_EPMD_PORT", epmd_port.to_string())
            .args(["-noshell", "-name", name, "-setcookie", cookie, "-pa"])
            .arg(self.dir.path());
        if transport == Transport::Tls {
            cmd.args(["-proto_dist", "inet_tls", "-ssl_dist_optfile"]).arg(self.dir.join("ssl_dist.conf"));
        }
        cmd
    }

    /// Runs the workloads once between two fresh Erlang nodes over `transport`, measuring what each
    /// phase cost both nodes ([`crate::meter`]).
    pub fn run(&self, transport: Transport, work: &Workload, service: &Service) -> Result<Figures, String> {
        let (_epmd, port) = start_epmd()?;
        let cookie = random_cookie();

        let mut server_cmd = self.node("b@127.0.0.1", transport, port, &cookie);
        server_cmd.args(["-s", "dist_bench", "server"]);
        let mut server =
            ChildProc::spawn("erlang b@127.0.0.1", server_cmd).map_err(|e| format!("cannot start erl: {e}"))?;
        server.expect_out(Duration::from_secs(30), |l| l == "READY")?;

        let mut client_cmd = self.node("a@127.0.0.1", transport, port, &cookie);
        client_cmd.args(["-hidden", "-s", "dist_bench", "client", "b@127.0.0.1"]);
        for (n, k) in work.messages.iter().zip(work.batch) {
            client_cmd.args([n.to_string(), k.to_string()]);
        }
        client_cmd.arg(work.round_trips.to_string());
        client_cmd.arg(work.flood.to_string());
        client_cmd.args([service.calls, service.fanin, service.idle_secs].map(|n| n.to_string()));
        let mut client =
            ChildProc::spawn("erlang a@127.0.0.1", client_cmd).map_err(|e| format!("cannot start erl: {e}"))?;
        let meter = Meter::new(vec![client.pid(), server.pid()], Some(port));
        let (lines, costs) =
            run_phased(&mut client, &meter, Duration::from_secs(600)).map_err(|e| format!("the Erlang client: {e}"))?;
        Ok(Figures { costs, ..Figures::parse(&lines)? })
    }
}

impl ErlangBaseline {
    /// Runs the cluster workloads once in a cluster of [`NODES`] fresh Erlang nodes over TLS
    /// distribution (`global`, `pg`, `erpc`; `benches/erlang/cluster_bench.erl`), measuring what
    /// each phase cost all of them.
    pub fn run_cluster(&self, work: &ClusterWork) -> Result<ClusterFigures, String> {
        let (_epmd, port) = start_epmd()?;
        let cookie = random_cookie();
        let names: Vec<String> = (2..=NODES).map(|i| format!("n{i}@127.0.0.1")).collect();
        let mut agents = Vec::new();
        for name in &names {
            let mut cmd = self.node(name, Transport::Tls, port, &cookie);
            cmd.args(["-s", "cluster_bench", "agent"]);
            agents.push(ChildProc::spawn(format!("erlang {name}"), cmd).map_err(|e| format!("cannot start erl: {e}"))?);
        }
        for agent in &mut agents {
            agent.expect_out(Duration::from_secs(30), |l| l == "READY")?;
        }
        let mut cmd = self.node("n1@127.0.0.1", Transport::Tls, port, &cookie);
        cmd.args(["-s", "cluster_bench", "lead"]).args(work.args()).args(&names);
        let mut lead = ChildProc::spawn("erlang n1@127.0.0.1", cmd).map_err(|e| format!("cannot start erl: {e}"))?;
        let pids = std::iter::once(lead.pid()).chain(agents.iter().map(ChildProc::pid)).collect();
        let meter = Meter::new(pids, Some(port));
        let (lines, costs) =
            run_phased(&mut lead, &meter, Duration::from_secs(600)).map_err(|e| format!("the Erlang lead: {e}"))?;
        Ok(ClusterFigures { costs, ..ClusterFigures::parse(&lines)? })
    }
}

/// Starts a private Erlang epmd on a free port of 127.0.0.1 and waits until it listens; returns
/// it (killed on drop) and its port, for `ERL_EPMD_PORT`.
pub fn start_epmd() -> Result<(ChildProc, u16), String> {
    let port = free_port().map_err(|e| format!("no free port for epmd: {e}"))?;
    let mut epmd_cmd = Command::new("epmd");
    epmd_cmd.args(["-port", &port.to_string(), "-address", "127.0.0.1"]);
    let epmd = ChildProc::spawn("epmd", epmd_cmd).map_err(|e| format!("cannot start epmd: {e}"))?;
    wait_listening(port, Duration::from_secs(10))?;
    Ok((epmd, port))
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
pub fn wait_listening(port: u16, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!("nothing listens on 127.0.0.1:{port} after {timeout:?}"))
}
