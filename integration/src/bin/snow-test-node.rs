//! A Snow node for multi-process tests, driven line by line.
//!
//! Started from the environment (`SNOW_NODE`, `SNOW_COOKIE_FILE`, `SNOW_EPMD`, `SNOW_TICKTIME`,
//! ...). It registers `echo` (answers `{From, X}` with `X`) and prints, one line each on stdout:
//!
//! - `READY name port` once distribution is up (or `START_FAILED reason` and exit 2);
//! - `NODEUP name` / `NODEDOWN name` for every connection that comes up or goes down
//!   (`monitor_nodes`).
//!
//! Commands on stdin, one per line, each answered with one line:
//!
//! - `connect NODE` -> `CONNECTED NODE` or `CONNECT_FAILED NODE reason`
//! - `nodes` -> `NODES a,b,...` (sorted; empty after the space when none)
//! - `ping NODE` -> `PONG NODE` when NODE's `echo` answered within 5 s, else `PANG NODE`
//! - `quit` -> shuts distribution down and exits 0 (also on end of input).
#![forbid(unsafe_code)]

use std::io::BufRead;
use std::time::Duration;

use async_std::channel::Sender;
use smol_timeout::TimeoutExt;
use snow_node_rt::{dist, Node, Process, Term};

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    std::process::exit(async_std::task::block_on(run()));
}

async fn run() -> i32 {
    let node = match dist::start_from_env().await {
        Ok(node) => node,
        Err(e) => {
            println!("START_FAILED {e}");
            return 2;
        }
    };
    let (ready_tx, ready_rx) = async_std::channel::bounded(2);
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
    println!("READY {} {port}", node.self_node());

    let (cmd_tx, cmd_rx) = async_std::channel::unbounded::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if cmd_tx.send_blocking(line).is_err() {
                break;
            }
        }
    });
    while let Ok(line) = cmd_rx.recv().await {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("connect"), Some(peer)) => match node.connect(peer).await {
                Ok(()) => println!("CONNECTED {peer}"),
                Err(e) => println!("CONNECT_FAILED {peer} {e}"),
            },
            (Some("nodes"), None) => {
                let names: Vec<String> = node.nodes().iter().map(|n| n.to_string()).collect();
                println!("NODES {}", names.join(","));
            }
            (Some("ping"), Some(peer)) => println!("{} {peer}", if ping(&node, peer).await { "PONG" } else { "PANG" }),
            (Some("quit"), None) => break,
            _ => println!("UNKNOWN {line}"),
        }
    }
    node.shutdown().await;
    0
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

/// Sends `{self, :ping}` to `echo` on `peer` and waits up to 5 s for the answer.
async fn ping(node: &Node, peer: &str) -> bool {
    let (tx, rx) = async_std::channel::bounded(1);
    let peer = peer.to_owned();
    node.spawn(move |mut me| async move {
        let sent = me.send_to("echo", &peer, Term::tuple([Term::Pid(me.pid().clone()), Term::atom("ping")])).is_ok();
        let ok = sent && me.receive_match_timeout(|m| m.is_atom("ping"), Duration::from_secs(5)).await.is_some();
        let _ = tx.send(ok).await;
    });
    rx.recv().timeout(Duration::from_secs(10)).await.and_then(Result::ok).unwrap_or(false)
}
