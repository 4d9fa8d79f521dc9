//! The Snow half of the distribution benchmark: the same workloads as the Erlang baseline
//! (`benches/erlang/dist_bench.erl`), between two Snow nodes that are separate OS processes.
//!
//! Why child processes rather than two nodes in one process: the Erlang nodes are separate OS
//! processes, each with its own schedulers; two Snow nodes in one process would share one
//! scheduler pool, one allocator and one set of caches, and a message would never cross an
//! address-space boundary the way it does in production. The bench binary re-executes itself
//! with `SNOW_BENCH_ROLE=server|client` ([`role_main`]) to become a node.
//!
//! - server (`b@127.0.0.1`): registers `bench_sink` (counts binaries, sends `{ack, N}` every K)
//!   and `bench_echo` (answers `{From, Seq}` with `Seq`), prints `READY`.
//! - client (`a@127.0.0.1`): connects (timed), runs the workloads, prints `RESULT` lines
//!   ([`crate::figures`]) and exits.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use snow_node_rt::{Node, NodeName, Pid, Process, Term};

use crate::child::ChildProc;
use crate::cluster::node_env;
use crate::figures::{own_memory_kib, percentile, throughput_lines, Figures, Throughput, Workload, FLOOD_SIZE, SIZES};
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

fn atom(text: &str) -> Term {
    Term::atom(text)
}

fn tagged(tag: &str, rest: impl IntoIterator<Item = Term>) -> Term {
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
    let (tx, rx) = async_channel::bounded::<Result<(), String>>(2);
    for (name, body) in [("bench_sink", true), ("bench_echo", false)] {
        let tx = tx.clone();
        node.spawn(move |me| async move {
            let registered = me.register(name).map_err(|e| e.to_string());
            let ok = registered.is_ok();
            let _ = tx.send(registered).await;
            if ok {
                if body {
                    sink(me).await
                } else {
                    echo(me).await
                }
            }
        });
    }
    for _ in 0..2 {
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

fn parse_work(text: &str) -> Result<Workload, String> {
    let n: Vec<u64> = text.split(',').map(|v| v.parse::<u64>()).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    match n.as_slice() {
        [n64, k64, n1k, k1k, n64k, k64k, rtts, flood] => Ok(Workload {
            messages: [*n64, *n1k, *n64k],
            batch: [*k64, *k1k, *k64k],
            round_trips: *rtts,
            flood: *flood,
        }),
        _ => Err(format!("{WORK_ENV}={text:?}: expected 8 comma-separated numbers")),
    }
}

fn format_work(w: &Workload) -> String {
    let mut parts = Vec::new();
    for (n, k) in w.messages.iter().zip(w.batch) {
        parts.push(n.to_string());
        parts.push(k.to_string());
    }
    parts.push(w.round_trips.to_string());
    parts.push(w.flood.to_string());
    parts.join(",")
}

async fn client() -> Result<(), String> {
    let work = parse_work(&std::env::var(WORK_ENV).map_err(|_| format!("{WORK_ENV} is not set"))?)?;
    let node = snow_node_rt::start_from_env().await.map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let server = server_name()?;
    node.connect(&server).await.map_err(|e| format!("connect to {SERVER}: {e}"))?;
    println!("RESULT connect_first_ns {}", t0.elapsed().as_nanos());
    let (tx, rx) = async_channel::bounded(1);
    node.spawn(move |me| async move {
        let _ = tx.send(workloads(me, work).await).await;
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

async fn workloads(mut me: Process, work: Workload) -> Result<Vec<String>, String> {
    let sink = whois(&mut me, "bench_sink", "sink").await?;
    let echo = whois(&mut me, "bench_echo", "echo").await?;
    // The flood first, so that the peak memory it reports is its own.
    let mut lines = flood(&mut me, &sink, work.flood).await?;
    for (i, size) in SIZES.iter().enumerate() {
        let (total, k) = (work.messages[i], work.batch[i].max(1));
        let payload = vec![7u8; *size];
        let warm = ((total / 10) / k * k).max(k);
        send_batch(&mut me, &sink, &payload, warm, k).await?;
        let total = (total / k * k).max(k);
        let t0 = Instant::now();
        send_batch(&mut me, &sink, &payload, total, k).await?;
        lines.extend(throughput_lines(&Throughput { size: *size, messages: total, elapsed: t0.elapsed() }));
    }
    for seq in 0..1000 {
        roundtrip(&mut me, &echo, seq).await?;
    }
    let mut samples = Vec::with_capacity(work.round_trips as usize);
    for seq in 0..work.round_trips as i64 {
        samples.push(roundtrip(&mut me, &echo, seq).await?);
    }
    samples.sort();
    lines.push(format!("RESULT rtt_median_ns {}", percentile(&samples, 50).as_nanos()));
    lines.push(format!("RESULT rtt_p99_ns {}", percentile(&samples, 99).as_nanos()));
    Ok(lines)
}

/// Sends `total` 1 KiB binaries with plain `send`, no acknowledgement window: only the
/// connection's backpressure (the sender is suspended at its next `.await` while the queue is over
/// its budget) bounds what is buffered. The loop yields every [`FLOOD_SENDS_PER_YIELD`] sends,
/// standing in for the preemption a compiled Snow program gets from its scheduler (BEAM preempts
/// a process every few thousand reductions).
async fn flood(me: &mut Process, sink: &Pid, total: u64) -> Result<Vec<String>, String> {
    let payload = vec![7u8; FLOOD_SIZE];
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
        me.send_async(sink, Term::Binary(payload.to_vec())).await;
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

/// Runs the workloads once between two fresh Snow nodes (child processes of `exe`, the bench
/// binary itself) registered with an in-process snow-epmd on a free port.
pub fn run(exe: &Path, work: &Workload) -> Result<Figures, String> {
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
        client_cmd.env(WORK_ENV, format_work(work));
        let mut client = ChildProc::spawn("snow a@127.0.0.1", client_cmd)
            .map_err(|e| format!("cannot start the client node: {e}"))?;
        let (lines, status) = client.finish(Duration::from_secs(600));
        if !status.is_some_and(|s| s.success()) {
            return Err(format!("the Snow client failed ({status:?}):\n{}", client.transcript()));
        }
        Figures::parse(&lines)
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
        let back = parse_work(&format_work(&w)).unwrap();
        assert_eq!(
            (back.messages, back.batch, back.round_trips, back.flood),
            (w.messages, w.batch, w.round_trips, w.flood)
        );
        assert!(parse_work("1,2").is_err());
    }
}
