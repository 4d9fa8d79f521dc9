//! A Snow node for multi-process and multi-host tests, driven line by line.
//!
//! Started from the environment (`SNOW_NODE`, `SNOW_COOKIE_FILE`, `SNOW_EPMD`, `SNOW_TICKTIME`,
//! ...). It registers `echo` (answers `{From, X}` with `X`) and prints, one line each on stdout:
//!
//! - `READY name port` once distribution is up (or `START_FAILED reason` and exit 2);
//! - `NODEUP name` / `NODEDOWN name` for every connection that comes up or goes down
//!   (`monitor_nodes`).
//!
//! With `SNOW_TEST_CONNECT=a@h1,b@h2` it also connects to those nodes at start, retrying each
//! once a second until it is up (`CONNECTED name` once each), so a node started by a service
//! manager or a container joins its cluster without commands.
//!
//! Commands on stdin, one per line, each answered with one line (PIDs are written as the runtime
//! prints them, `<name@host.ID.CREATION>`):
//!
//! - `connect NODE` -> `CONNECTED NODE` or `CONNECT_FAILED NODE reason`
//! - `nodes` -> `NODES a,b,...` (sorted; empty after the space when none)
//! - `ping NODE` -> `PONG NODE` when NODE's `echo` answered within 5 s, else `PANG NODE`
//! - `ping_pid PID [MS]` -> `PONG_PID PID` if the process answered `{From, :ping}` within MS
//!   milliseconds (default 5000), else `PANG_PID PID`
//! - `spawn H` -> `SPAWNED H PID`: a holder process labelled `H` that traps exits, answers
//!   `{From, X}` with `X`, and prints `EXIT H FROM REASON` and `DOWN H PID REASON` for the exit
//!   signals and monitor messages it gets
//! - `link H PID` -> `LINKED H PID` (or `LINK_FAILED H PID reason`): holder `H` links to `PID`
//! - `monitor H PID` -> `MONITORING H PID`: holder `H` monitors `PID`
//! - `sink NAME` -> `SINK NAME PID`: a process registered as `NAME` that counts
//!   `{:seq, TAG, N}` messages per tag and checks that each tag's N go 1, 2, 3, ...
//! - `report NAME` -> `REPORT NAME errors=E tags=TAG:COUNT,... first=WHAT`: what sink `NAME`
//!   received (`first` is the first order error, or `none`)
//! - `send_seq TAG COUNT PID` -> `SENDING TAG`, later `SENT TAG COUNT MS`: a process that sends
//!   `{:seq, TAG, 1..=COUNT}` to `PID` with backpressure (`send_async`)
//! - `stream TAG PID MS` -> `STREAMING TAG`: a process that monitors `PID` and sends it
//!   `{:seq, TAG, N}` every MS milliseconds until `stop_stream TAG` (then
//!   `STREAM_STOPPED TAG sent=N`) or until its monitor fires (then `STREAM_DOWN TAG sent=N REASON`)
//! - `supervise S NODE,NODE,...` -> `SUPERVISING S PID`: a supervisor of one child, the
//!   allow-listed `sup_worker` (every test node offers it) on the first of the candidate nodes
//!   that starts it; it prints `WORKER S PID` each time the child (re)starts
//! - `call LABEL NODE TIMEOUT_MS LINGER_MS FUNCTION ARG...` -> `CALLING LABEL`, later `CALLED
//!   LABEL ok VALUE` or `CALLED LABEL err KIND [REASON]` and `MAILBOX LABEL N`: a fresh process
//!   calls FUNCTION (allow-listed on NODE; every test node allows `calc`) with the ARGs (integers,
//!   else atoms), then counts what reaches its mailbox for LINGER_MS
//! - `quit` -> shuts distribution down and exits 0 (also on end of input).
//! - the global registry and process groups: `gregister`, `gwhereis`, `gsend`, `gjoin`,
//!   `gmembers`, `disconnect` (see `cluster.rs`).
#![forbid(unsafe_code)]

mod cluster;
mod procs;

use std::collections::HashMap;
use std::io::BufRead;
use std::time::Duration;

use async_channel::Sender;
use smol_timeout::TimeoutExt;
use snow_node_rt::{Node, NodeName, Pid, Process, Term};

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    std::process::exit(async_io::block_on(run()));
}

async fn run() -> i32 {
    let node = match snow_node_rt::start_from_env().await {
        Ok(node) => node,
        Err(e) => {
            println!("START_FAILED {e}");
            return 2;
        }
    };
    procs::allow_supervised_worker(&node);
    procs::allow_calc(&node);
    let (ready_tx, ready_rx) = async_channel::bounded(2);
    let tx = ready_tx.clone();
    node.spawn(move |me| watch_nodes(me, tx));
    node.spawn(move |me| echo(me, ready_tx));
    for _ in 0..2 {
        if ready_rx.recv().timeout(Duration::from_secs(10)).await.is_none() {
            println!("START_FAILED the node's own processes did not start");
            return 2;
        }
    }
    let port = node.listen_addr().map(|a| a.port()).unwrap_or(0);
    println!("READY {} {port}", node.name().clone());
    connect_from_env(&node);

    let (cmd_tx, cmd_rx) = async_channel::unbounded::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if cmd_tx.send_blocking(line).is_err() {
                break;
            }
        }
    });
    let mut commands =
        Commands { node: node.clone(), holders: HashMap::new(), sinks: HashMap::new(), streams: HashMap::new() };
    while let Ok(line) = cmd_rx.recv().await {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words == ["quit"] {
            break;
        }
        if let Err(e) = commands.run(&words).await {
            println!("BAD_COMMAND {line}: {e}");
        }
    }
    node.shutdown().await;
    0
}

/// Connects in the background to every node named in `SNOW_TEST_CONNECT`, retrying each once a
/// second until it is up.
fn connect_from_env(node: &Node) {
    let Ok(list) = std::env::var("SNOW_TEST_CONNECT") else { return };
    for peer in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (node, peer) = (node.clone(), peer.to_owned());
        std::thread::spawn(move || {
            async_io::block_on(async move {
                loop {
                    let result = match peer.parse::<NodeName>() {
                        Ok(name) => node.connect(&name).await.map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    match result {
                        Ok(()) => return println!("CONNECTED {peer}"),
                        Err(e) => log::info!("connect {peer}: {e}; retrying in 1 s"),
                    }
                    async_io::Timer::after(Duration::from_secs(1)).await;
                }
            })
        });
    }
}

/// The command loop's state: the processes it started, by the label the test gave them.
struct Commands {
    node: Node,
    holders: HashMap<String, Pid>,
    sinks: HashMap<String, Pid>,
    streams: HashMap<String, Pid>,
}

impl Commands {
    async fn run(&mut self, words: &[&str]) -> Result<(), String> {
        let node = &self.node;
        match words {
            ["connect", peer] => match connect(node, peer).await {
                Ok(()) => println!("CONNECTED {peer}"),
                Err(e) => println!("CONNECT_FAILED {peer} {e}"),
            },
            ["nodes"] => {
                let names: Vec<String> = node.nodes().iter().map(|n| n.to_string()).collect();
                println!("NODES {}", names.join(","));
            }
            ["ping", peer] => println!("{} {peer}", if ping(node, peer).await { "PONG" } else { "PANG" }),
            ["ping_pid", pid] => ping_pid_command(node, pid, "5000").await?,
            ["ping_pid", pid, ms] => ping_pid_command(node, pid, ms).await?,
            ["spawn", label] => {
                let owned = label.to_string();
                let pid = node.spawn(move |me| procs::holder(me, owned));
                println!("SPAWNED {label} {pid}");
                self.holders.insert(label.to_string(), pid);
            }
            ["link", label, pid] => {
                let holder = lookup(&self.holders, "holder", label)?;
                node.send(holder, Term::tuple([Term::atom("do_link"), Term::Pid(parse_pid(pid)?)]));
            }
            ["monitor", label, pid] => {
                let holder = lookup(&self.holders, "holder", label)?;
                node.send(holder, Term::tuple([Term::atom("do_monitor"), Term::Pid(parse_pid(pid)?)]));
            }
            ["sink", name] => {
                let (tx, rx) = async_channel::bounded(1);
                let owned = name.to_string();
                let pid = node.spawn(move |me| procs::sink(me, owned, tx));
                match rx.recv().timeout(Duration::from_secs(5)).await {
                    Some(Ok(Ok(()))) => {}
                    Some(Ok(Err(e))) => return Err(format!("cannot register {name}: {e}")),
                    _ => return Err(format!("sink {name} did not start")),
                }
                println!("SINK {name} {pid}");
                self.sinks.insert(name.to_string(), pid);
            }
            ["report", name] => node.send(lookup(&self.sinks, "sink", name)?, Term::tuple([Term::atom("report")])),
            ["send_seq", tag, count, pid] => {
                let count: u64 = count.parse().map_err(|e| format!("bad count {count}: {e}"))?;
                let (to, tag_owned) = (parse_pid(pid)?, tag.to_string());
                node.spawn(move |me| procs::send_seq(me, tag_owned, count, to));
                println!("SENDING {tag}");
            }
            ["stream", tag, pid, ms] => {
                let every = Duration::from_millis(ms.parse().map_err(|e| format!("bad interval {ms}: {e}"))?);
                let (to, tag_owned) = (parse_pid(pid)?, tag.to_string());
                let stream = node.spawn(move |me| procs::stream(me, tag_owned, to, every));
                self.streams.insert(tag.to_string(), stream);
                println!("STREAMING {tag}");
            }
            ["supervise", label, candidates] => {
                let nodes = candidates
                    .split(',')
                    .map(|n| n.parse::<NodeName>().map_err(|e| format!("bad node {n}: {e}")))
                    .collect::<Result<Vec<_>, _>>()?;
                let sup = procs::supervise(node, label.to_string(), nodes);
                println!("SUPERVISING {label} {sup}");
            }
            ["call", label, peer, timeout_ms, linger_ms, function, args @ ..] => {
                let peer: NodeName = peer.parse().map_err(|e| format!("bad node name {peer}: {e}"))?;
                let ms = |text: &str| {
                    text.parse::<u64>().map(Duration::from_millis).map_err(|e| format!("bad milliseconds {text}: {e}"))
                };
                let waits = procs::CallWaits { timeout: ms(timeout_ms)?, linger: ms(linger_ms)? };
                let args: Vec<Term> =
                    args.iter().map(|a| a.parse::<i64>().map_or_else(|_| Term::atom(a), Term::Int)).collect();
                let (label, function) = (label.to_string(), function.to_string());
                println!("CALLING {label}");
                node.spawn(move |me| procs::call(me, label, peer, function, args, waits));
            }
            ["stop_stream", tag] => node.send(lookup(&self.streams, "stream", tag)?, Term::atom("stop")),
            [command, args @ ..] if cluster::COMMANDS.contains(command) => {
                cluster::run(node, &self.holders, command, args).await?
            }
            _ => return Err("unknown command".into()),
        }
        Ok(())
    }
}

fn lookup<'a>(table: &'a HashMap<String, Pid>, what: &str, label: &str) -> Result<&'a Pid, String> {
    table.get(label).ok_or_else(|| format!("no {what} labelled {label}"))
}

/// Parses a pid as the runtime prints it: `<name@host.ID.CREATION>`.
fn parse_pid(text: &str) -> Result<Pid, String> {
    let bad = |why: &str| format!("bad pid {text}: {why} (expected <name@host.ID.CREATION>)");
    let inner = text.strip_prefix('<').and_then(|t| t.strip_suffix('>')).ok_or_else(|| bad("no <...>"))?;
    let mut parts = inner.rsplitn(3, '.');
    let creation = parts.next().and_then(|c| c.parse().ok()).ok_or_else(|| bad("creation"))?;
    let id = parts.next().and_then(|c| c.parse().ok()).ok_or_else(|| bad("id"))?;
    let node = parts.next().ok_or_else(|| bad("node"))?;
    let node = NodeName::parse(node).map_err(|e| bad(&e.to_string()))?;
    Ok(Pid::new(node, id, creation))
}

async fn ping_pid_command(node: &Node, pid_text: &str, ms: &str) -> Result<(), String> {
    let wait = Duration::from_millis(ms.parse().map_err(|e| format!("bad wait {ms}: {e}"))?);
    let pid = parse_pid(pid_text)?;
    let ok =
        procs::ask(node, wait, move |me| me.send(&pid, Term::tuple([Term::Pid(me.pid().clone()), Term::atom("ping")])))
            .await;
    println!("{} {pid_text}", if ok { "PONG_PID" } else { "PANG_PID" });
    Ok(())
}

/// Prints every node up and down.
async fn watch_nodes(mut me: Process, ready: Sender<()>) {
    me.monitor_nodes(true);
    let _ = ready.send(()).await;
    loop {
        let msg = me.receive().await;
        match msg.as_tuple() {
            Some([tag, Term::Atom(n)]) if tag.is_atom("nodeup") => println!("NODEUP {}", n.as_str()),
            Some([tag, Term::Atom(n)]) if tag.is_atom("nodedown") => println!("NODEDOWN {}", n.as_str()),
            _ => log::warn!("node watcher: unexpected {msg}"),
        }
    }
}

/// Answers `{From, X}` with `X`.
async fn echo(mut me: Process, ready: Sender<()>) {
    if me.register("echo").is_ok() {
        let _ = ready.send(()).await;
    }
    loop {
        let msg = me.receive().await;
        if let Some([Term::Pid(from), x]) = msg.as_tuple() {
            me.send(from, x.clone());
        }
    }
}

/// Connects to `peer`, given as text.
async fn connect(node: &Node, peer: &str) -> Result<(), String> {
    let name: NodeName = peer.parse().map_err(|e| format!("{e}"))?;
    node.connect(&name).await.map_err(|e| e.to_string())
}

/// Sends `{self, :ping}` to `echo` on `peer` and waits up to 5 s for the answer.
async fn ping(node: &Node, peer: &str) -> bool {
    let peer = peer.to_owned();
    procs::ask(node, Duration::from_secs(5), move |me| {
        let sent = peer.parse::<NodeName>().map_err(|e| e.to_string()).and_then(|node| {
            me.send_named_on("echo", &node, Term::tuple([Term::Pid(me.pid().clone()), Term::atom("ping")]))
                .map_err(|e| e.to_string())
        });
        if let Err(e) = sent {
            log::warn!("ping {peer}: {e}");
        }
    })
    .await
}
