//! The Snow half of the distribution benchmark: the same workloads as the Erlang baseline
//! (`benches/erlang/dist_bench.erl`), between two Snow nodes that are separate OS processes.
//!
//! Why child processes rather than two nodes in one process: the Erlang nodes are separate OS
//! processes, each with its own schedulers; two Snow nodes in one process would share one
//! scheduler pool, one allocator and one set of caches, and a message would never cross an
//! address-space boundary the way it does in production. The bench binary re-executes itself
//! with `SNOW_BENCH_ROLE=server|client` ([`role_main`]) to become a node.
//!
//! - server (`b@127.0.0.1`): registers `bench_sink` (counts binaries, sends `{ack, N}` every K),
//!   `bench_echo` (answers `{From, Seq}` with `Seq`) and `bench_fanin` (acknowledges every
//!   [`FANIN_BATCH`]th structured message of each sender), prints `READY`.
//! - client (`a@127.0.0.1`): connects (timed), runs the workloads, each timed one between phase
//!   lines so the harness can measure what it cost both nodes ([`crate::meter`]), prints `RESULT`
//!   lines ([`crate::figures`]) and exits.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use smol_timeout::TimeoutExt;
use snow_node_rt::{Node, NodeName, Pid, Process, Term};

use crate::child::ChildProc;
use crate::cluster::node_env;
use crate::figures::{
    own_memory_kib, percentile, throughput_lines, Figures, Service, Throughput, Workload, CALLERS, FANIN_BATCH,
    FANIN_SENDERS, FLOOD_SIZE, SIZES,
};
use crate::meter::{run_phased, Meter};
use crate::tmp::{random_cookie, write_secret, TempDir};

/// Environment variable that makes the bench binary act as a node.
pub const ROLE_ENV: &str = "SNOW_BENCH_ROLE";
/// Environment variable carrying the workload to the client node.
const WORK_ENV: &str = "SNOW_BENCH_WORK";
/// The server node's name.
const SERVER: &str = "b@127.0.0.1";
/// [`SERVER`] as a node name.
fn server_name() -> Result<NodeName, String> {
    SERVER.parse().map_err(|e| format!("{SERVER}: {e}"))
}

/// Batches of K messages the sender may have unacknowledged.
const WINDOW: u64 = 4;
/// Fresh connections timed after disconnecting.
const RECONNECTS: usize = 10;

/// The atom `text` as a term.
pub(crate) fn atom(text: &str) -> Term {
    Term::atom(text)
}

/// `{tag, rest..}`.
pub(crate) fn tagged(tag: &str, rest: impl IntoIterator<Item = Term>) -> Term {
    Term::tuple(std::iter::once(atom(tag)).chain(rest))
}

/// If `SNOW_BENCH_ROLE` is set, runs that role and returns its exit code; `None` otherwise.
pub fn role_main() -> Option<i32> {
    let role = std::env::var(ROLE_ENV).ok()?;
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let result = snow_node_rt::block_on(async {
        match role.as_str() {
            "server" => server().await,
            "client" => client().await,
            other => Err(format!("{ROLE_ENV}={other:?}: expected server or client")),
        }
    });
    Some(match result {
        Ok(()) => 0,
        Err(e) => {
            println!("ERROR {e}");
            1
        }
    })
}

async fn server() -> Result<(), String> {
    let node = snow_node_rt::start_from_env().await.map_err(|e| e.to_string())?;
    let (tx, rx) = async_channel::bounded::<Result<(), String>>(3);
    for name in ["bench_sink", "bench_echo", "bench_fanin"] {
        let tx = tx.clone();
        node.spawn(move |me| async move {
            let registered = me.register(name).map_err(|e| e.to_string());
            let ok = registered.is_ok();
            let _ = tx.send(registered).await;
            if ok {
                match name {
                    "bench_sink" => sink(me).await,
                    "bench_echo" => echo(me).await,
                    _ => fanin_receiver(me).await,
                }
            }
        });
    }
    for _ in 0..3 {
        rx.recv().await.map_err(|e| e.to_string())??;
    }
    println!("READY");
    // Runs until the harness kills this process; the ticks keep the connection alive meanwhile.
    loop {
        snow_node_rt::sleep(Duration::from_secs(3600)).await;
    }
}

async fn sink(mut me: Process) {
    let (mut from, mut k, mut n): (Option<Pid>, i64, i64) = (None, 1, 0);
    loop {
        let msg = me.receive().await;
        match &msg {
            Term::Binary(_) => {
                n += 1;
                if n % k == 0 {
                    if let Some(from) = &from {
                        me.send(from, tagged("ack", [Term::Int(n)]));
                    }
                }
            }
            Term::Tuple(items) => match items.as_slice() {
                [tag, Term::Pid(who)] if tag.is_atom("whois") => {
                    me.send(who, tagged("sink", [Term::Pid(me.pid().clone())]));
                }
                [tag, Term::Pid(who), Term::Int(batch)] if tag.is_atom("start") => {
                    (from, k, n) = (Some(who.clone()), (*batch).max(1), 0);
                }
                _ => log::warn!("bench_sink: unexpected {msg}"),
            },
            _ => log::warn!("bench_sink: unexpected {msg}"),
        }
    }
}

async fn echo(mut me: Process) {
    loop {
        let msg = me.receive().await;
        match msg.as_tuple() {
            Some([tag, Term::Pid(who)]) if tag.is_atom("whois") => {
                me.send(who, tagged("echo", [Term::Pid(me.pid().clone())]));
            }
            Some([Term::Pid(who), seq]) => me.send(who, seq.clone()),
            _ => log::warn!("bench_echo: unexpected {msg}"),
        }
    }
}

/// Receives the fan-in's structured messages (see [`structured`]) and acknowledges every
/// [`FANIN_BATCH`]th of each sender to it, by the sequence number the message carries.
async fn fanin_receiver(mut me: Process) {
    loop {
        let msg = me.receive().await;
        match msg.as_tuple() {
            Some([tag, Term::Pid(from), Term::Int(seq), Term::Map(_), Term::Tuple(_), Term::Binary(_)])
                if tag.is_atom("event") =>
            {
                if *seq as u64 % FANIN_BATCH == 0 {
                    me.send(from, tagged("ack", [Term::Int(*seq)]));
                }
            }
            Some([tag, Term::Pid(who)]) if tag.is_atom("whois") => {
                me.send(who, tagged("fanin", [Term::Pid(me.pid().clone())]));
            }
            _ => log::warn!("bench_fanin: unexpected {msg}"),
        }
    }
}

/// The fan-in's message, as a service would send an event: `{event, From, Seq, #{"user" =>
/// "alice", "room" => "lobby", "kind" => "text", "lang" => "en"}, {meta, {Seq, 42}, {"web",
/// ok}}, <<200 bytes>>}` (strings are UTF-8 binaries on the Erlang side).
fn structured(from: &Pid, seq: i64, blob: &[u8]) -> Term {
    let map = [("user", "alice"), ("room", "lobby"), ("kind", "text"), ("lang", "en")]
        .into_iter()
        .map(|(k, v)| (Term::String(k.into()), Term::String(v.into())))
        .collect();
    Term::tuple([
        atom("event"),
        Term::Pid(from.clone()),
        Term::Int(seq),
        Term::Map(map),
        Term::tuple([
            atom("meta"),
            Term::tuple([Term::Int(seq), Term::Int(42)]),
            Term::tuple([Term::String("web".into()), atom("ok")]),
        ]),
        Term::binary(blob),
    ])
}

/// Bytes of the binary in each fan-in message.
const FANIN_BLOB: usize = 200;

fn parse_work(text: &str) -> Result<(Workload, Service), String> {
    let n: Vec<u64> = text.split(',').map(|v| v.parse::<u64>()).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    match n.as_slice() {
        [n64, k64, n1k, k1k, n64k, k64k, rtts, flood, calls, fanin, idle_secs] => Ok((
            Workload { messages: [*n64, *n1k, *n64k], batch: [*k64, *k1k, *k64k], round_trips: *rtts, flood: *flood },
            Service { calls: *calls, fanin: *fanin, idle_secs: *idle_secs },
        )),
        _ => Err(format!("{WORK_ENV}={text:?}: expected 11 comma-separated numbers")),
    }
}

fn format_work(w: &Workload, service: &Service) -> String {
    let mut parts = Vec::new();
    for (n, k) in w.messages.iter().zip(w.batch) {
        parts.push(n.to_string());
        parts.push(k.to_string());
    }
    parts.push(w.round_trips.to_string());
    parts.push(w.flood.to_string());
    parts.extend([service.calls, service.fanin, service.idle_secs].map(|n| n.to_string()));
    parts.join(",")
}

async fn client() -> Result<(), String> {
    let (work, service) = parse_work(&std::env::var(WORK_ENV).map_err(|_| format!("{WORK_ENV} is not set"))?)?;
    let gate = Gate::new();
    let node = snow_node_rt::start_from_env().await.map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let server = server_name()?;
    node.connect(&server).await.map_err(|e| format!("connect to {SERVER}: {e}"))?;
    println!("RESULT connect_first_ns {}", t0.elapsed().as_nanos());
    let (tx, rx) = async_channel::bounded(1);
    node.spawn(move |me| async move {
        let _ = tx.send(workloads(me, work, service, gate).await).await;
    });
    let lines = rx.recv().await.map_err(|e| e.to_string())??;
    for line in lines {
        println!("{line}");
    }
    let mut samples = Vec::with_capacity(RECONNECTS);
    for _ in 0..RECONNECTS {
        samples.push(reconnect(&node).await?);
    }
    samples.sort();
    println!("RESULT connect_median_ns {}", percentile(&samples, 50).as_nanos());
    node.shutdown().await;
    Ok(())
}

async fn reconnect(node: &Node) -> Result<Duration, String> {
    let server = server_name()?;
    node.disconnect(&server).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while node.nodes().iter().any(|n| n.as_str() == SERVER) {
        if Instant::now() > deadline {
            return Err(format!("{SERVER} still connected 5 s after disconnect"));
        }
        snow_node_rt::sleep(Duration::from_millis(10)).await;
    }
    // Give the peer the same time as the Erlang run to notice the close.
    snow_node_rt::sleep(Duration::from_millis(70)).await;
    let t0 = Instant::now();
    node.connect(&server).await.map_err(|e| format!("reconnect to {SERVER}: {e}"))?;
    Ok(t0.elapsed())
}

async fn whois(me: &mut Process, name: &str, tag: &str) -> Result<Pid, String> {
    me.send_named_on(name, &server_name()?, tagged("whois", [Term::Pid(me.pid().clone())]))
        .map_err(|e| e.to_string())?;
    let reply = me
        .receive_match_timeout(
            |m| matches!(m.as_tuple(), Some([t, Term::Pid(_)]) if t.is_atom(tag)),
            Duration::from_secs(10),
        )
        .await
        .ok_or_else(|| format!("no answer from {name} on {SERVER}"))?;
    match reply.as_tuple() {
        Some([_, Term::Pid(pid)]) => Ok(pid.clone()),
        _ => Err(format!("odd answer from {name}: {reply}")),
    }
}

async fn workloads(mut me: Process, work: Workload, service: Service, gate: Gate) -> Result<Vec<String>, String> {
    let sink = whois(&mut me, "bench_sink", "sink").await?;
    let echo = whois(&mut me, "bench_echo", "echo").await?;
    let fanin_to = whois(&mut me, "bench_fanin", "fanin").await?;
    // The flood first, so that the peak memory it reports is its own.
    gate.start("flood").await?;
    let mut lines = flood(&mut me, &sink, work.flood).await?;
    gate.end("flood", work.flood).await?;
    for (i, size) in SIZES.iter().enumerate() {
        let (total, k) = (work.messages[i], work.batch[i].max(1));
        let payload = vec![7u8; *size];
        let warm = ((total / 10) / k * k).max(k);
        send_batch(&mut me, &sink, &payload, warm, k).await?;
        let total = (total / k * k).max(k);
        let phase = format!("tput_{size}");
        gate.start(&phase).await?;
        let t0 = Instant::now();
        send_batch(&mut me, &sink, &payload, total, k).await?;
        let elapsed = t0.elapsed();
        gate.end(&phase, total).await?;
        lines.extend(throughput_lines(&Throughput { size: *size, messages: total, elapsed }));
    }
    for seq in 0..1000 {
        roundtrip(&mut me, &echo, seq).await?;
    }
    let mut samples = Vec::with_capacity(work.round_trips as usize);
    gate.start("rtt").await?;
    for seq in 0..work.round_trips as i64 {
        samples.push(roundtrip(&mut me, &echo, seq).await?);
    }
    gate.end("rtt", work.round_trips).await?;
    samples.sort();
    lines.push(format!("RESULT rtt_median_ns {}", percentile(&samples, 50).as_nanos()));
    lines.push(format!("RESULT rtt_p99_ns {}", percentile(&samples, 99).as_nanos()));
    if service.calls > 0 {
        for callers in CALLERS {
            calls(&mut me, callers, service.calls / 10).await?;
            let phase = format!("calls_{callers}");
            gate.start(&phase).await?;
            let t0 = Instant::now();
            let mut samples = calls(&mut me, callers, service.calls).await?;
            let elapsed = t0.elapsed();
            gate.end(&phase, samples.len() as u64).await?;
            samples.sort();
            lines.push(format!("RESULT calls_{callers}_n {}", samples.len()));
            lines.push(format!("RESULT calls_{callers}_ns {}", elapsed.as_nanos()));
            lines.push(format!("RESULT calls_{callers}_p50_ns {}", percentile(&samples, 50).as_nanos()));
            lines.push(format!("RESULT calls_{callers}_p99_ns {}", percentile(&samples, 99).as_nanos()));
        }
    }
    if service.fanin > 0 {
        fanin(&mut me, &fanin_to, (service.fanin / 10).max(FANIN_BATCH)).await?;
        let per_sender = (service.fanin / FANIN_BATCH).max(1) * FANIN_BATCH;
        gate.start("fanin").await?;
        let t0 = Instant::now();
        fanin(&mut me, &fanin_to, per_sender).await?;
        let elapsed = t0.elapsed();
        gate.end("fanin", per_sender * FANIN_SENDERS).await?;
        lines.push(format!("RESULT fanin_msgs {}", per_sender * FANIN_SENDERS));
        lines.push(format!("RESULT fanin_ns {}", elapsed.as_nanos()));
    }
    if service.idle_secs > 0 {
        gate.start("idle").await?;
        snow_node_rt::sleep(Duration::from_secs(service.idle_secs)).await;
        gate.end("idle", 0).await?;
    }
    Ok(lines)
}

/// The client's half of the phase protocol ([`crate::meter`]): prints a phase line and waits for
/// the harness's `GO` on stdin (read by a thread, so no scheduler thread blocks on it).
pub(crate) struct Gate {
    lines: async_channel::Receiver<String>,
}

impl Gate {
    pub(crate) fn new() -> Gate {
        let (tx, lines) = async_channel::unbounded();
        std::thread::spawn(move || {
            for line in std::io::stdin().lines().map_while(Result::ok) {
                if tx.send_blocking(line).is_err() {
                    break;
                }
            }
        });
        Gate { lines }
    }

    async fn pass(&self, line: String) -> Result<(), String> {
        println!("{line}");
        match self.lines.recv().timeout(Duration::from_secs(60)).await {
            Some(Ok(go)) if go == "GO" => Ok(()),
            Some(Ok(other)) => Err(format!("after {line:?}: expected GO on stdin, got {other:?}")),
            Some(Err(_)) => Err(format!("after {line:?}: stdin closed (run this role under the bench harness)")),
            None => Err(format!("after {line:?}: no GO on stdin within 60 s")),
        }
    }

    pub(crate) async fn start(&self, phase: &str) -> Result<(), String> {
        self.pass(format!("PHASE {phase}")).await
    }

    pub(crate) async fn end(&self, phase: &str, messages: u64) -> Result<(), String> {
        self.pass(format!("PHASE_END {phase} {messages}")).await
    }
}

/// `total` calls from `callers` concurrent processes, each sending `{self(), Seq}` to the server's
/// registered `bench_echo` by name and waiting for `Seq`; returns every call's latency.
async fn calls(me: &mut Process, callers: u64, total: u64) -> Result<Vec<Duration>, String> {
    let per_caller = (total / callers).max(1);
    let server = server_name()?;
    for _ in 0..callers {
        let (parent, server) = (me.pid().clone(), server.clone());
        me.spawn(move |mut c| async move {
            let mut samples = Vec::with_capacity(per_caller as usize);
            let mut failure = None;
            for seq in 0..per_caller as i64 {
                let t0 = Instant::now();
                let request = Term::tuple([Term::Pid(c.pid().clone()), Term::Int(seq)]);
                if let Err(e) = c.send_named_on("bench_echo", &server, request) {
                    failure = Some(format!("call {seq}: {e}"));
                    break;
                }
                match c.receive_timeout(Duration::from_secs(10)).await {
                    Some(Term::Int(n)) if n == seq => samples.push(Term::Int(t0.elapsed().as_nanos() as i64)),
                    Some(other) => failure = Some(format!("call {seq}: unexpected {other}")),
                    None => failure = Some(format!("call {seq}: no reply within 10 s")),
                }
                if failure.is_some() {
                    break;
                }
            }
            c.send(&parent, caller_report(samples, failure));
        });
    }
    caller_latencies(me, callers).await.map_err(|e| format!("request/reply with {callers} callers: {e}"))
}

/// What a caller process of a latency workload sends its parent when it is done: its samples
/// (`Term::Int` nanoseconds), or why it stopped.
pub(crate) fn caller_report(samples: Vec<Term>, failure: Option<String>) -> Term {
    match failure {
        None => tagged("calls_done", [Term::List(samples)]),
        Some(e) => tagged("calls_failed", [Term::String(e)]),
    }
}

/// Collects the [`caller_report`]s of `callers` caller processes (120 s at most each): every
/// latency, or the first failure.
pub(crate) async fn caller_latencies(me: &mut Process, callers: u64) -> Result<Vec<Duration>, String> {
    let mut all = Vec::new();
    for _ in 0..callers {
        let msg = me
            .receive_match_timeout(
                |m| matches!(m.as_tuple(), Some([t, _]) if t.is_atom("calls_done") || t.is_atom("calls_failed")),
                Duration::from_secs(120),
            )
            .await
            .ok_or("a caller did not finish within 120 s")?;
        match msg.as_tuple() {
            Some([t, Term::List(samples)]) if t.is_atom("calls_done") => {
                all.extend(samples.iter().filter_map(|s| match s {
                    Term::Int(ns) => Some(Duration::from_nanos(*ns as u64)),
                    _ => None,
                }))
            }
            _ => return Err(format!("a caller failed: {msg}")),
        }
    }
    Ok(all)
}

/// [`FANIN_SENDERS`] processes each send `per_sender` structured messages to `to`, keeping at
/// most 4 batches of [`FANIN_BATCH`] unacknowledged; returns when every sender has its last ack.
async fn fanin(me: &mut Process, to: &Pid, per_sender: u64) -> Result<(), String> {
    for _ in 0..FANIN_SENDERS {
        let (parent, to) = (me.pid().clone(), to.clone());
        me.spawn(move |mut s| async move {
            let blob = vec![7u8; FANIN_BLOB];
            let mut result = Ok(());
            for seq in 1..=per_sender {
                s.send_async(&to, structured(s.pid(), seq as i64, &blob)).await;
                if seq % FANIN_BATCH == 0 && seq > WINDOW * FANIN_BATCH {
                    result = wait_ack(&mut s, seq - WINDOW * FANIN_BATCH).await;
                    if result.is_err() {
                        break;
                    }
                }
            }
            if result.is_ok() {
                result = wait_ack(&mut s, per_sender / FANIN_BATCH * FANIN_BATCH).await;
            }
            let report = match result {
                Ok(()) => atom("fanin_done"),
                Err(e) => tagged("fanin_failed", [Term::String(e)]),
            };
            s.send(&parent, report);
        });
    }
    for _ in 0..FANIN_SENDERS {
        let msg = me
            .receive_match_timeout(
                |m| m.is_atom("fanin_done") || matches!(m.as_tuple(), Some([t, _]) if t.is_atom("fanin_failed")),
                Duration::from_secs(120),
            )
            .await
            .ok_or("a fan-in sender did not finish within 120 s")?;
        if !msg.is_atom("fanin_done") {
            return Err(format!("fan-in: {msg}"));
        }
    }
    Ok(())
}

/// Sends `total` 1 KiB binaries with plain `send`, no acknowledgement window: only the
/// connection's backpressure (the sender is suspended at its next `.await` while the queue is over
/// its budget) bounds what is buffered. The loop yields every [`FLOOD_SENDS_PER_YIELD`] sends,
/// standing in for the preemption a compiled Snow program gets from its scheduler (BEAM preempts
/// a process every few thousand reductions).
async fn flood(me: &mut Process, sink: &Pid, total: u64) -> Result<Vec<String>, String> {
    let payload = snow_node_rt::Binary::from(vec![7u8; FLOOD_SIZE]);
    me.send(sink, tagged("start", [Term::Pid(me.pid().clone()), Term::Int(total as i64)]));
    let rss_before = own_memory_kib("VmRSS").unwrap_or(0);
    let t0 = Instant::now();
    for sent in 1..=total {
        me.send(sink, Term::Binary(payload.clone()));
        if sent % FLOOD_SENDS_PER_YIELD == 0 {
            snow_node_rt::yield_now().await;
        }
    }
    wait_ack(me, total).await?;
    let elapsed = t0.elapsed();
    Ok(vec![
        format!("RESULT flood_msgs {total}"),
        format!("RESULT flood_ns {}", elapsed.as_nanos()),
        format!("RESULT flood_rss_before_kib {rss_before}"),
        format!("RESULT flood_peak_kib {}", own_memory_kib("VmHWM").unwrap_or(0)),
    ])
}

/// See [`flood`].
const FLOOD_SENDS_PER_YIELD: u64 = 64;

async fn send_batch(me: &mut Process, sink: &Pid, payload: &[u8], total: u64, k: u64) -> Result<(), String> {
    me.send(sink, tagged("start", [Term::Pid(me.pid().clone()), Term::Int(k as i64)]));
    for sent in 1..=total {
        me.send_async(sink, Term::binary(payload)).await;
        if sent % k == 0 && sent > WINDOW * k {
            wait_ack(me, sent - WINDOW * k).await?;
        }
    }
    wait_ack(me, total).await
}

async fn wait_ack(me: &mut Process, min: u64) -> Result<(), String> {
    loop {
        let msg = me
            .receive_timeout(Duration::from_secs(60))
            .await
            .ok_or_else(|| format!("no acknowledgement of message {min} within 60 s"))?;
        match msg.as_tuple() {
            Some([tag, Term::Int(n)]) if tag.is_atom("ack") && *n as u64 >= min => return Ok(()),
            Some([tag, Term::Int(_)]) if tag.is_atom("ack") => {}
            _ => return Err(format!("unexpected message while waiting for acks: {msg}")),
        }
    }
}

async fn roundtrip(me: &mut Process, echo: &Pid, seq: i64) -> Result<Duration, String> {
    let t0 = Instant::now();
    me.send(echo, Term::tuple([Term::Pid(me.pid().clone()), Term::Int(seq)]));
    match me.receive_timeout(Duration::from_secs(10)).await {
        Some(Term::Int(n)) if n == seq => Ok(t0.elapsed()),
        Some(other) => Err(format!("round trip {seq}: unexpected {other}")),
        None => Err(format!("round trip {seq}: no answer within 10 s")),
    }
}

/// Runs the two-node workloads once between two fresh Snow nodes (see [`run_with`]).
pub fn run(exe: &Path, work: &Workload) -> Result<Figures, String> {
    run_with(exe, work, &Service::NONE)
}

/// Runs the workloads once between two fresh Snow nodes (child processes of `exe`, the bench
/// binary itself) registered with an in-process snow-epmd on a free port, measuring what each
/// phase cost both nodes.
pub fn run_with(exe: &Path, work: &Workload, service: &Service) -> Result<Figures, String> {
    let dir = TempDir::new("snow-bench").map_err(|e| format!("cannot create a temp dir: {e}"))?;
    let cookie = dir.join("cookie");
    write_secret(&cookie, random_cookie().as_bytes()).map_err(|e| format!("cannot write the cookie: {e}"))?;
    let config = snow_epmd::Config::new(([127, 0, 0, 1], 0).into(), dir.join("epmd"));
    let epmd = snow_node_rt::block_on(snow_epmd::serve(config)).map_err(|e| format!("snow-epmd: {e}"))?;
    let addr = epmd.local_addr().to_string();
    let node = |role: &str, name: &str| {
        let mut cmd = Command::new(exe);
        cmd.env(ROLE_ENV, role);
        node_env(&mut cmd, name, &addr, &cookie, 20);
        cmd
    };
    let result = (|| {
        let mut server = ChildProc::spawn(format!("snow {SERVER}"), node("server", SERVER))
            .map_err(|e| format!("cannot start the server node: {e}"))?;
        server.expect_out(Duration::from_secs(30), |l| l == "READY")?;
        let mut client_cmd = node("client", "a@127.0.0.1");
        client_cmd.env(WORK_ENV, format_work(work, service));
        let mut client = ChildProc::spawn("snow a@127.0.0.1", client_cmd)
            .map_err(|e| format!("cannot start the client node: {e}"))?;
        let meter = Meter::new(vec![client.pid(), server.pid()], Some(epmd.local_addr().port()));
        let (lines, costs): (Vec<String>, BTreeMap<_, _>) =
            run_phased(&mut client, &meter, Duration::from_secs(600)).map_err(|e| format!("the Snow client: {e}"))?;
        Ok(Figures { costs, ..Figures::parse(&lines)? })
    })();
    let _ = snow_node_rt::block_on(epmd.shutdown());
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_round_trips_through_the_environment() {
        let w = Workload::DEFAULT;
        let (back, service) = parse_work(&format_work(&w, &Service::DEFAULT)).unwrap();
        assert_eq!(
            (back.messages, back.batch, back.round_trips, back.flood),
            (w.messages, w.batch, w.round_trips, w.flood)
        );
        assert_eq!(service, Service::DEFAULT);
        assert!(parse_work("1,2").is_err());
    }
}
