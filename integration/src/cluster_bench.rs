//! The Snow half of the cluster benchmark (`benches/cluster.rs`): the global registry and process
//! groups in a cluster of five Snow nodes, each a separate OS process over TLS, with the same
//! workloads as the Erlang baseline (`benches/erlang/cluster_bench.erl`, `global` and `pg`).
//!
//! The bench binary re-executes itself with `SNOW_CLUSTER_ROLE` ([`role_main`]):
//! - agent (`n2`..`n5@127.0.0.1`): registers `cluster_agent` (see `agent`), prints `READY`.
//! - lead (`n1@127.0.0.1`): runs an agent too, connects to the others, waits for the full mesh,
//!   runs the workloads (each timed one between phase lines, [`crate::meter`]), prints `RESULT`
//!   lines ([`ClusterFigures`]) and exits.
//!
//! Visibility on the other nodes: after `register_name` (or `join`) returns, the lead sends each
//! agent a check request; the agent confirms its own node sees the name (or member), waiting if it
//! does not yet, and answers with the wall-clock time (ns) at which it saw it. The lead takes the
//! latest of the four against its own reading before the call (one machine, one clock). The
//! figure is an upper bound: the check request's own trip is in it, on both sides.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use snow_node_rt::{NodeName, Process, Term};

use crate::child::ChildProc;
use crate::cluster::node_env;
use crate::figures::{percentile, result_values, Calls};
use crate::meter::{run_phased, Cost, Meter};
use crate::snow_bench::{atom, caller_latencies, caller_report, tagged, Gate};
use crate::tmp::{random_cookie, write_secret, TempDir};

/// Environment variable that makes the bench binary act as a cluster node.
pub const ROLE_ENV: &str = "SNOW_CLUSTER_ROLE";
/// Environment variable carrying the workload to the lead.
const WORK_ENV: &str = "SNOW_CLUSTER_WORK";
/// Environment variable naming the agents to the lead (comma-separated).
const AGENTS_ENV: &str = "SNOW_CLUSTER_AGENTS";
/// Nodes in the cluster.
pub const NODES: usize = 5;
/// Members of the broadcast group, on the lead and the first two agents.
pub const MEMBERS: [u64; 3] = [334, 333, 333];
/// Payload bytes of each broadcast.
const BLOB: usize = 64;

/// How much work one run does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClusterWork {
    /// Timed registrations (and, separately, joins), after a warm-up of a tenth.
    pub rounds: u64,
    /// `whereis_name` calls timed.
    pub lookups: u64,
    /// Broadcasts to the 1,000 members.
    pub broadcasts: u64,
    /// Remote calls with 16 callers (`call` / `erpc:call`).
    pub calls: u64,
}

impl ClusterWork {
    /// The benchmark's default amounts.
    pub const DEFAULT: ClusterWork = ClusterWork { rounds: 200, lookups: 200_000, broadcasts: 300, calls: 20_000 };

    /// The lead's arguments, in the order both leads take them.
    pub fn args(&self) -> [String; 4] {
        [self.rounds, self.lookups, self.broadcasts, self.calls].map(|n| n.to_string())
    }

    fn parse(text: &str) -> Result<ClusterWork, String> {
        let n: Vec<u64> =
            text.split(',').map(|v| v.parse::<u64>()).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
        match n.as_slice() {
            [rounds, lookups, broadcasts, calls] => {
                Ok(ClusterWork { rounds: *rounds, lookups: *lookups, broadcasts: *broadcasts, calls: *calls })
            }
            _ => Err(format!("{WORK_ENV}={text:?}: expected 4 comma-separated numbers")),
        }
    }
}

/// Median and 99th percentile of a latency.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
}

/// Everything one cluster run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterFigures {
    /// From the lead's first connect until every agent is connected to every other node.
    pub mesh: Duration,
    /// How long `register_name` takes to return.
    pub register_return: Spread,
    /// From the call until every other node sees the name.
    pub register_visible: Spread,
    /// Time per `whereis_name` of a registered name.
    pub whereis: Duration,
    /// How long `join` takes to return.
    pub join_return: Spread,
    /// From the call until every other node lists the member.
    pub join_visible: Spread,
    /// Deliveries (broadcasts x 1,000 members) and the time until every member had every one.
    pub broadcast: (u64, Duration),
    /// Remote calls with 16 callers, where the side has them.
    pub call: Option<Calls>,
    /// What each phase (`register`, `join`, `broadcast`, `call`) cost the nodes (lead first).
    pub costs: BTreeMap<String, Cost>,
}

impl ClusterFigures {
    /// Parses the `RESULT key value` lines among `lines`.
    pub fn parse<S: AsRef<str>>(lines: &[S]) -> Result<ClusterFigures, String> {
        let values = result_values(lines)?;
        let get = |key: &str| values.get(key).copied().ok_or_else(|| format!("no RESULT {key} in the output"));
        let ns = |key: &str| get(key).map(Duration::from_nanos);
        let spread = |key: &str| {
            Ok::<_, String>(Spread { p50: ns(&format!("{key}_p50_ns"))?, p99: ns(&format!("{key}_p99_ns"))? })
        };
        let call = match values.contains_key("call_n") {
            true => Some(Calls {
                callers: 16,
                calls: get("call_n")?,
                elapsed: ns("call_ns")?,
                p50: ns("call_p50_ns")?,
                p99: ns("call_p99_ns")?,
            }),
            false => None,
        };
        Ok(ClusterFigures {
            mesh: ns("mesh_ns")?,
            register_return: spread("reg_return")?,
            register_visible: spread("reg_visible")?,
            whereis: ns("whereis_ns")? / get("whereis_n")?.clamp(1, u32::MAX as u64) as u32,
            join_return: spread("join_return")?,
            join_visible: spread("join_visible")?,
            broadcast: (get("bcast_deliveries")?, ns("bcast_ns")?),
            call,
            costs: BTreeMap::new(),
        })
    }
}

/// If `SNOW_CLUSTER_ROLE` is set, runs that role and returns its exit code; `None` otherwise.
pub fn role_main() -> Option<i32> {
    let role = std::env::var(ROLE_ENV).ok()?;
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let result = snow_node_rt::block_on(async {
        match role.as_str() {
            "agent" => agent_node().await,
            "lead" => lead_node().await,
            other => Err(format!("{ROLE_ENV}={other:?}: expected agent or lead")),
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

/// Wall-clock nanoseconds since the epoch: one clock for every process of the machine.
fn wall_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

async fn start_agent(node: &snow_node_rt::Node) -> Result<(), String> {
    // What `call` runs (Erlang's `cluster_bench:bench_call_target/1`): answers its argument.
    node.register_spawnable("bench_call_target", |_me: Process, args: Term| async move {
        match args {
            Term::List(mut args) if args.len() == 1 => args.swap_remove(0),
            other => other,
        }
    });
    let (tx, rx) = async_channel::bounded(1);
    node.spawn(move |me| async move {
        let registered = me.register("cluster_agent").map_err(|e| e.to_string());
        let ok = registered.is_ok();
        let _ = tx.send(registered).await;
        if ok {
            agent(me).await
        }
    });
    rx.recv().await.map_err(|e| e.to_string())?
}

async fn agent_node() -> Result<(), String> {
    let node = snow_node_rt::start_from_env().await.map_err(|e| e.to_string())?;
    start_agent(&node).await?;
    println!("READY");
    // Runs until the harness kills this process.
    loop {
        snow_node_rt::sleep(Duration::from_secs(3600)).await;
    }
}

/// The commands of the lead (the same as the Erlang agent's):
/// - `{nodes, From}` -> `{nodes, Count}`
/// - `{check_name, Name, From}` -> `{seen, Name, Ns}` once `whereis_name(Name)` answers
/// - `{check_member, Group, Pid, From}` -> `{seen, Group, Ns}` once `Pid` is a member
/// - `{members, Group, Count, M, From}` -> starts `Count` members of `Group`, each expecting `M`
///   broadcasts; `{joined, Count}` once they joined, `node_done` once they all got `M`
async fn agent(mut me: Process) {
    loop {
        let msg = me.receive().await;
        let outcome = match msg.as_tuple() {
            Some([t, Term::Pid(from)]) if t.is_atom("nodes") => {
                me.send(from, tagged("nodes", [Term::Int(me.node().nodes().len() as i64)]));
                Ok(())
            }
            Some([t, name, Term::Pid(from)]) if t.is_atom("check_name") => {
                let seen = visible(|| me.global().whereis_name(name).is_some()).await;
                seen.map(|ns| me.send(from, tagged("seen", [name.clone(), Term::Int(ns)])))
            }
            Some([t, group, Term::Pid(member), Term::Pid(from)]) if t.is_atom("check_member") => {
                let seen = visible(|| me.groups().members(group).contains(member)).await;
                seen.map(|ns| me.send(from, tagged("seen", [group.clone(), Term::Int(ns)])))
            }
            Some([t, group, Term::Int(count), Term::Int(m), Term::Pid(from)]) if t.is_atom("members") => {
                let (group, count, m, from) = (group.clone(), *count as u64, *m as u64, from.clone());
                me.spawn(move |c| members(c, group, count, m, from));
                Ok(())
            }
            _ => Err(format!("unexpected {msg}")),
        };
        if let Err(e) = outcome {
            log::warn!("cluster_agent: {e}");
        }
    }
}

/// The wall-clock time (ns) at which `pred` first held: yields for up to 2 ms (usually it holds
/// already, or one scheduling away), then polls every millisecond, as the Erlang agent does; `Err`
/// after 5 s.
async fn visible(mut pred: impl FnMut() -> bool) -> Result<i64, String> {
    let since = Instant::now();
    loop {
        if pred() {
            return Ok(wall_ns());
        }
        let waited = since.elapsed();
        if waited > Duration::from_secs(5) {
            return Err("not visible within 5 s".into());
        } else if waited > Duration::from_millis(2) {
            snow_node_rt::sleep(Duration::from_millis(1)).await;
        } else {
            snow_node_rt::yield_now().await;
        }
    }
}

/// Starts `count` members of `group` on this node that each expect `m` broadcasts; tells `lead`
/// when they have joined and when they all got every broadcast.
async fn members(mut me: Process, group: Term, count: u64, m: u64, lead: snow_node_rt::Pid) {
    let counter = me.pid().clone();
    let pids: Vec<_> = (0..count)
        .map(|_| {
            let counter = counter.clone();
            me.spawn(move |mut member| async move {
                for _ in 0..m {
                    if member.receive_timeout(Duration::from_secs(60)).await.is_none() {
                        log::warn!("a broadcast member got no message within 60 s");
                        return;
                    }
                }
                member.send(&counter, atom("member_done"));
            })
        })
        .collect();
    if let Err(e) = me.groups().join(group, &pids) {
        me.send(&lead, tagged("members_failed", [Term::String(e.to_string())]));
        return;
    }
    me.send(&lead, tagged("joined", [Term::Int(count as i64)]));
    for _ in 0..count {
        if me.receive_match_timeout(|m| m.is_atom("member_done"), Duration::from_secs(60)).await.is_none() {
            me.send(&lead, tagged("members_failed", [Term::String("members unfinished after 60 s".into())]));
            return;
        }
    }
    me.send(&lead, atom("node_done"));
}

async fn lead_node() -> Result<(), String> {
    let work = ClusterWork::parse(&std::env::var(WORK_ENV).map_err(|_| format!("{WORK_ENV} is not set"))?)?;
    let agents = std::env::var(AGENTS_ENV)
        .map_err(|_| format!("{AGENTS_ENV} is not set"))?
        .split(',')
        .map(|a| a.parse::<NodeName>().map_err(|e| format!("{a}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let gate = Gate::new();
    let node = snow_node_rt::start_from_env().await.map_err(|e| e.to_string())?;
    start_agent(&node).await?;
    let t0 = Instant::now();
    for agent in &agents {
        node.connect(agent).await.map_err(|e| format!("connect to {agent}: {e}"))?;
    }
    let (tx, rx) = async_channel::bounded(1);
    node.spawn(move |me| async move {
        let _ = tx.send(lead(me, work, agents, gate, t0).await).await;
    });
    let lines = rx.recv().await.map_err(|e| e.to_string())??;
    for line in lines {
        println!("{line}");
    }
    node.shutdown().await;
    Ok(())
}

/// Replies of `count` processes with tag `tag` (first element); `Err` on a `*_failed` reply or
/// after 60 s.
async fn replies(me: &mut Process, tag: &str, count: usize) -> Result<Vec<Term>, String> {
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let msg = me
            .receive_match_timeout(
                |m| {
                    m.is_atom(tag)
                        || matches!(m.as_tuple(), Some([t, ..]) if t.is_atom(tag) || t.is_atom("members_failed"))
                },
                Duration::from_secs(60),
            )
            .await
            .ok_or_else(|| format!("no {tag} reply within 60 s"))?;
        if matches!(msg.as_tuple(), Some([t, ..]) if t.is_atom("members_failed")) {
            return Err(format!("broadcast members: {msg}"));
        }
        out.push(msg);
    }
    Ok(out)
}

fn spread_lines(key: &str, mut samples: Vec<Duration>) -> [String; 2] {
    samples.sort();
    [
        format!("RESULT {key}_p50_ns {}", percentile(&samples, 50).as_nanos()),
        format!("RESULT {key}_p99_ns {}", percentile(&samples, 99).as_nanos()),
    ]
}

async fn lead(
    mut me: Process,
    work: ClusterWork,
    agents: Vec<NodeName>,
    gate: Gate,
    t0: Instant,
) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    // Progress on stderr: the harness's transcript of a lead that stalls shows where.
    let step = |what: &str| eprintln!("lead: {what}");
    step("waiting for the full mesh");
    await_mesh(&mut me, &agents).await?;
    lines.push(format!("RESULT mesh_ns {}", t0.elapsed().as_nanos()));

    // The global registry: register_name's return, and visibility on every other node.
    step("registrations");
    for i in 0..(work.rounds / 10).max(1) {
        register_round(&mut me, &agents, tagged("warm", [Term::Int(i as i64)])).await?;
    }
    gate.start("register").await?;
    let mut samples = Vec::new();
    for i in 0..work.rounds {
        samples.push(register_round(&mut me, &agents, tagged("svc", [Term::Int(i as i64)])).await?);
    }
    gate.end("register", work.rounds).await?;
    lines.extend(spread_lines("reg_return", samples.iter().map(|s| s.0).collect()));
    lines.extend(spread_lines("reg_visible", samples.iter().map(|s| s.1).collect()));

    // whereis_name of a registered name, on the node that holds it.
    step("whereis_name");
    let holder = me.spawn(|mut h| async move {
        h.receive_match(|m| m.is_atom("stop")).await;
    });
    let target = atom("lookup_target");
    me.global().register_name(target.clone(), &holder).map_err(|e| e.to_string())?;
    let started = Instant::now();
    for _ in 0..work.lookups {
        if me.global().whereis_name(&target).as_ref() != Some(&holder) {
            return Err("whereis_name lost lookup_target".into());
        }
    }
    lines.push(format!("RESULT whereis_n {}", work.lookups));
    lines.push(format!("RESULT whereis_ns {}", started.elapsed().as_nanos()));
    me.global().unregister_name(&target).map_err(|e| e.to_string())?;
    me.send(&holder, atom("stop"));

    // Process groups: join's return, and visibility on every other node.
    step("joins");
    for i in 0..(work.rounds / 10).max(1) {
        join_round(&mut me, &agents, tagged("warm_room", [Term::Int(i as i64)])).await?;
    }
    gate.start("join").await?;
    let mut samples = Vec::new();
    for i in 0..work.rounds {
        samples.push(join_round(&mut me, &agents, tagged("room", [Term::Int(i as i64)])).await?);
    }
    gate.end("join", work.rounds).await?;
    lines.extend(spread_lines("join_return", samples.iter().map(|s| s.0).collect()));
    lines.extend(spread_lines("join_visible", samples.iter().map(|s| s.1).collect()));

    // Broadcast to 1,000 members on three nodes.
    step("broadcast");
    broadcast_round(&mut me, &agents, atom("chat_warm"), (work.broadcasts / 10).max(1)).await?;
    gate.start("broadcast").await?;
    let elapsed = broadcast_round(&mut me, &agents, atom("chat"), work.broadcasts).await?;
    let deliveries = work.broadcasts * MEMBERS.iter().sum::<u64>();
    gate.end("broadcast", deliveries).await?;
    lines.push(format!("RESULT bcast_deliveries {deliveries}"));
    lines.push(format!("RESULT bcast_ns {}", elapsed.as_nanos()));

    // Remote calls: 16 callers calling a function on the first agent (what
    // `cluster_bench:calls/2` measures for `erpc:call`).
    if work.calls > 0 {
        step("calls");
        let agent = agents.first().ok_or("no agent to call")?.clone();
        call_samples(&mut me, &agent, (work.calls / 10).max(16)).await?;
        gate.start("call").await?;
        let started = Instant::now();
        let samples = call_samples(&mut me, &agent, work.calls).await?;
        let elapsed = started.elapsed();
        gate.end("call", samples.len() as u64).await?;
        lines.push(format!("RESULT call_n {}", samples.len()));
        lines.push(format!("RESULT call_ns {}", elapsed.as_nanos()));
        lines.extend(spread_lines("call", samples));
    }
    Ok(lines)
}

/// `total` calls of `bench_call_target` on `agent` by 16 concurrent caller processes; the latency of
/// each.
async fn call_samples(me: &mut Process, agent: &NodeName, total: u64) -> Result<Vec<Duration>, String> {
    const CALLERS: u64 = 16;
    let per = total.div_ceil(CALLERS);
    for _ in 0..CALLERS {
        let (lead, agent) = (me.pid().clone(), agent.clone());
        me.spawn(move |caller| async move {
            let mut took = Vec::with_capacity(per as usize);
            let mut failure = None;
            for n in 0..per as i64 {
                let start = Instant::now();
                match caller.call(&agent, "bench_call_target", vec![Term::Int(n)], Duration::from_secs(10)).await {
                    Ok(Term::Int(m)) if m == n => took.push(Term::Int(start.elapsed().as_nanos() as i64)),
                    Ok(other) => failure = Some(format!("call {n} returned {other}")),
                    Err(e) => failure = Some(format!("call {n}: {e}")),
                }
                if failure.is_some() {
                    break;
                }
            }
            caller.send(&lead, caller_report(took, failure));
        });
    }
    caller_latencies(me, CALLERS).await
}

async fn await_mesh(me: &mut Process, agents: &[NodeName]) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for agent in agents {
            me.send_named_on("cluster_agent", agent, tagged("nodes", [Term::Pid(me.pid().clone())]))
                .map_err(|e| e.to_string())?;
        }
        let counts = replies(me, "nodes", agents.len()).await?;
        let full = counts.iter().all(|c| matches!(c.as_tuple(), Some([_, Term::Int(n)]) if *n as usize >= NODES - 1));
        if full {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("no full mesh within 30 s: {counts:?}"));
        }
        snow_node_rt::sleep(Duration::from_millis(10)).await;
    }
}

/// Sends every agent `{Check, What.., From}` and returns the latest wall-clock time one saw it.
async fn latest_seen(me: &mut Process, agents: &[NodeName], check: Term) -> Result<i64, String> {
    for agent in agents {
        me.send_named_on("cluster_agent", agent, check.clone()).map_err(|e| e.to_string())?;
    }
    let seen = replies(me, "seen", agents.len()).await?;
    seen.iter()
        .map(|s| match s.as_tuple() {
            Some([_, _, Term::Int(ns)]) => Ok(*ns),
            _ => Err(format!("odd answer: {s}")),
        })
        .try_fold(i64::MIN, |acc, ns| ns.map(|ns| acc.max(ns)))
}

/// One registration of a fresh process: (time until `register_name` returned, time until every
/// agent saw the name).
async fn register_round(me: &mut Process, agents: &[NodeName], name: Term) -> Result<(Duration, Duration), String> {
    let holder = me.spawn(|mut h| async move {
        h.receive_match(|m| m.is_atom("stop")).await;
    });
    let start = wall_ns();
    let t0 = Instant::now();
    me.global().register_name(name.clone(), &holder).map_err(|e| format!("register_name {name}: {e}"))?;
    let returned = t0.elapsed();
    let check = tagged("check_name", [name.clone(), Term::Pid(me.pid().clone())]);
    let seen = latest_seen(me, agents, check).await?;
    me.global().unregister_name(&name).map_err(|e| e.to_string())?;
    me.send(&holder, atom("stop"));
    Ok((returned, Duration::from_nanos(seen.saturating_sub(start).max(0) as u64)))
}

/// One join of a fresh process to a fresh group: (time until `join` returned, time until every
/// agent listed the member).
async fn join_round(me: &mut Process, agents: &[NodeName], group: Term) -> Result<(Duration, Duration), String> {
    let member = me.spawn(|mut h| async move {
        h.receive_match(|m| m.is_atom("stop")).await;
    });
    let start = wall_ns();
    let t0 = Instant::now();
    me.groups().join(group.clone(), std::slice::from_ref(&member)).map_err(|e| format!("join {group}: {e}"))?;
    let returned = t0.elapsed();
    let check = tagged("check_member", [group.clone(), Term::Pid(member.clone()), Term::Pid(me.pid().clone())]);
    let seen = latest_seen(me, agents, check).await?;
    me.send(&member, atom("stop"));
    Ok((returned, Duration::from_nanos(seen.saturating_sub(start).max(0) as u64)))
}

/// [`MEMBERS`] members of `group` on this node and the first two agents; `m` broadcasts of
/// `{chat, Seq, <<64 bytes>>}` from here; the time until every member had every one.
async fn broadcast_round(me: &mut Process, agents: &[NodeName], group: Term, m: u64) -> Result<Duration, String> {
    let me_name = me.node().name().clone();
    let hosts: Vec<NodeName> = std::iter::once(me_name).chain(agents.iter().take(2).cloned()).collect();
    for (host, count) in hosts.iter().zip(MEMBERS) {
        let cmd = Term::tuple([
            atom("members"),
            group.clone(),
            Term::Int(count as i64),
            Term::Int(m as i64),
            Term::Pid(me.pid().clone()),
        ]);
        me.send_named_on("cluster_agent", host, cmd).map_err(|e| e.to_string())?;
    }
    replies(me, "joined", hosts.len()).await?;
    let total = MEMBERS.iter().sum::<u64>() as usize;
    let deadline = Instant::now() + Duration::from_secs(30);
    while me.groups().members(&group).len() < total {
        if Instant::now() > deadline {
            return Err(format!("{group}: {total} members not visible within 30 s"));
        }
        snow_node_rt::sleep(Duration::from_millis(1)).await;
    }
    let blob = snow_node_rt::Binary::from(vec![7u8; BLOB]);
    let t0 = Instant::now();
    for seq in 1..=m {
        me.groups().broadcast(&group, tagged("chat", [Term::Int(seq as i64), Term::Binary(blob.clone())]));
        snow_node_rt::yield_now().await;
    }
    replies(me, "node_done", hosts.len()).await?;
    Ok(t0.elapsed())
}

/// Runs the workloads once in a cluster of [`NODES`] fresh Snow nodes (child processes of `exe`,
/// the bench binary itself) registered with an in-process snow-epmd, measuring what each phase
/// cost all of them.
pub fn run(exe: &Path, work: &ClusterWork) -> Result<ClusterFigures, String> {
    let dir = TempDir::new("snow-cluster-bench").map_err(|e| format!("cannot create a temp dir: {e}"))?;
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
        let names: Vec<String> = (2..=NODES).map(|i| format!("n{i}@127.0.0.1")).collect();
        let mut agents = Vec::new();
        for name in &names {
            agents.push(
                ChildProc::spawn(format!("snow {name}"), node("agent", name))
                    .map_err(|e| format!("cannot start {name}: {e}"))?,
            );
        }
        for agent in &mut agents {
            agent.expect_out(Duration::from_secs(30), |l| l == "READY")?;
        }
        let mut lead_cmd = node("lead", "n1@127.0.0.1");
        lead_cmd.env(WORK_ENV, work.args().join(",")).env(AGENTS_ENV, names.join(","));
        let mut lead =
            ChildProc::spawn("snow n1@127.0.0.1", lead_cmd).map_err(|e| format!("cannot start the lead: {e}"))?;
        let pids = std::iter::once(lead.pid()).chain(agents.iter().map(ChildProc::pid)).collect();
        let meter = Meter::new(pids, Some(epmd.local_addr().port()));
        let (lines, costs) =
            run_phased(&mut lead, &meter, Duration::from_secs(600)).map_err(|e| format!("the Snow lead: {e}"))?;
        Ok(ClusterFigures { costs, ..ClusterFigures::parse(&lines)? })
    })();
    let _ = snow_node_rt::block_on(epmd.shutdown());
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_round_trips_and_results_parse() {
        let w = ClusterWork::DEFAULT;
        assert_eq!(ClusterWork::parse(&w.args().join(",")), Ok(w));
        assert!(ClusterWork::parse("1,2").is_err());
        let mut lines = vec![
            "RESULT mesh_ns 5000000".to_owned(),
            "RESULT whereis_n 1000".to_owned(),
            "RESULT whereis_ns 50000".to_owned(),
            "RESULT bcast_deliveries 1000".to_owned(),
            "RESULT bcast_ns 1000000".to_owned(),
        ];
        for key in ["reg_return", "reg_visible", "join_return", "join_visible"] {
            lines.push(format!("RESULT {key}_p50_ns 1000"));
            lines.push(format!("RESULT {key}_p99_ns 3000"));
        }
        let f = ClusterFigures::parse(&lines).unwrap();
        assert_eq!(f.whereis, Duration::from_nanos(50));
        assert_eq!(f.register_visible.p99, Duration::from_micros(3));
        assert!(f.call.is_none(), "no call figures without call lines");
        lines.retain(|l| !l.contains("join_visible_p99"));
        assert!(ClusterFigures::parse(&lines).unwrap_err().contains("join_visible_p99_ns"));
    }
}
