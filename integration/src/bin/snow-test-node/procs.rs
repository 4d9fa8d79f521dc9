//! The processes the test node starts on command: holders (links, monitors, exit signals),
//! sinks that check per-sender order, and senders (a counted burst, or a stream until stopped
//! or until the receiver is gone). Each prints its events as one stdout line.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_channel::Sender;
use smol_timeout::TimeoutExt;
use snow_node_rt::{Node, NodeName, Pid, Process, RegisterError, Term};

/// Runs `send` in a fresh process, then waits up to `wait` for it to receive `:ping`; whether it
/// did.
pub async fn ask(node: &Node, wait: Duration, send: impl FnOnce(&Process) + Send + 'static) -> bool {
    let (tx, rx) = async_channel::bounded(1);
    node.spawn(move |mut me| async move {
        send(&me);
        let ok = me.receive_match_timeout(|m| m.is_atom("ping"), wait).await.is_some();
        let _ = tx.send(ok).await;
    });
    rx.recv().timeout(wait + Duration::from_secs(5)).await.and_then(Result::ok).unwrap_or(false)
}

/// A process that traps exits, links or monitors on request (`{:do_link, pid}`,
/// `{:do_monitor, pid}`), answers `{From, X}` with `X`, and prints what it gets.
pub async fn holder(mut me: Process, label: String) {
    me.trap_exit(true);
    loop {
        let msg = me.receive().await;
        match msg.as_tuple() {
            Some([tag, Term::Pid(p)]) if tag.is_atom("do_link") => match me.link(p) {
                Ok(()) => println!("LINKED {label} {p}"),
                Err(e) => println!("LINK_FAILED {label} {p} {e}"),
            },
            Some([tag, Term::Pid(p)]) if tag.is_atom("do_monitor") => {
                me.monitor(p);
                println!("MONITORING {label} {p}");
            }
            Some([tag, Term::Pid(from), reason]) if tag.is_atom("EXIT") => println!("EXIT {label} {from} {reason}"),
            Some([tag, _ref, Term::Pid(p), reason]) if tag.is_atom("DOWN") => println!("DOWN {label} {p} {reason}"),
            Some([Term::Pid(from), x]) => me.send(from, x.clone()),
            _ => log::warn!("holder {label}: unexpected {msg}"),
        }
    }
}

/// What a sink has seen from one sender tag.
#[derive(Default)]
struct TagCount {
    last: i64,
    count: u64,
}

/// A process registered as `name` that counts `{:seq, TAG, N}` per tag, checks that each tag's
/// N go 1, 2, 3, ... without gap, repeat or reordering, and prints a `REPORT` line on
/// `{:report}`. `ready` gets the registration's outcome.
pub async fn sink(mut me: Process, name: String, ready: Sender<Result<(), RegisterError>>) {
    let registered = me.register(&name);
    let failed = registered.is_err();
    let _ = ready.send(registered).await;
    if failed {
        return;
    }
    let mut tags: BTreeMap<String, TagCount> = BTreeMap::new();
    let (mut errors, mut first_error) = (0u64, None::<String>);
    loop {
        let msg = me.receive().await;
        match msg.as_tuple() {
            Some([kind, Term::Atom(tag), Term::Int(n)]) if kind.is_atom("seq") => {
                let seen = tags.entry(tag.as_str().to_owned()).or_default();
                if *n != seen.last + 1 {
                    errors += 1;
                    first_error.get_or_insert_with(|| format!("{tag}:expected_{}_got_{n}", seen.last + 1));
                }
                seen.last = *n;
                seen.count += 1;
            }
            Some([kind]) if kind.is_atom("report") => {
                let counts: Vec<String> = tags.iter().map(|(t, c)| format!("{t}:{}", c.count)).collect();
                println!(
                    "REPORT {name} errors={errors} tags={} first={}",
                    counts.join(","),
                    first_error.as_deref().unwrap_or("none")
                );
            }
            _ => log::warn!("sink {name}: unexpected {msg}"),
        }
    }
}

fn seq(tag: &str, n: u64) -> Term {
    Term::tuple([Term::atom("seq"), Term::atom(tag), Term::Int(n as i64)])
}

/// Sends `{:seq, tag, 1..=count}` to `to`, waiting when the connection is congested, then prints
/// `SENT tag count ms`.
pub async fn send_seq(me: Process, tag: String, count: u64, to: Pid) {
    let started = Instant::now();
    for n in 1..=count {
        me.send_async(&to, seq(&tag, n)).await;
    }
    println!("SENT {tag} {count} {}", started.elapsed().as_millis());
}

/// Monitors `to` and sends it `{:seq, tag, N}` every `every` until told `:stop` or until the
/// monitor fires; prints how many it sent either way.
pub async fn stream(mut me: Process, tag: String, to: Pid, every: Duration) {
    let watch = me.monitor(&to);
    let mut sent = 0u64;
    loop {
        match me.receive_timeout(every).await {
            None => {
                sent += 1;
                me.send_async(&to, seq(&tag, sent)).await;
            }
            Some(msg) if msg.is_atom("stop") => return println!("STREAM_STOPPED {tag} sent={sent}"),
            Some(msg) => match msg.as_tuple() {
                Some([kind, Term::Ref(r), _, reason]) if kind.is_atom("DOWN") && *r == watch => {
                    return println!("STREAM_DOWN {tag} sent={sent} {reason}");
                }
                _ => log::warn!("stream {tag}: unexpected {msg}"),
            },
        }
    }
}

// ---- Supervision across nodes (the `supervise` command) -----------------------------------------

/// Puts `sup_worker` on `node`'s allow-list: `sup_worker([reporter])` sends `{:worker_up, self}`
/// to `reporter`, then answers `{From, X}` with `X` until stopped (it does not trap exits, so a
/// supervisor's `:shutdown` stops it).
pub fn allow_supervised_worker(node: &Node) {
    node.register_spawnable("sup_worker", |mut me: Process, args: Term| async move {
        let Term::List(args) = args else { return Term::atom("badarg") };
        let Some(Term::Pid(reporter)) = args.first() else { return Term::atom("badarg") };
        me.send(reporter, Term::tuple([Term::atom("worker_up"), Term::Pid(me.pid().clone())]));
        loop {
            let msg = me.receive().await;
            if let Some([Term::Pid(from), x]) = msg.as_tuple() {
                me.send(from, x.clone());
            }
        }
    });
}

/// Starts a supervisor on `node` (one_for_one, at most 5 restarts in 10 s) with one remote child,
/// `sup_worker` on the first of `candidates` that starts it, and a reporter that prints
/// `WORKER label PID` each time the child (re)starts; returns the supervisor's pid.
pub fn supervise(node: &Node, label: String, candidates: Vec<snow_node_rt::NodeName>) -> Pid {
    use snow_node_rt::supervisor::{ChildSpec, Strategy, Supervisor};
    let reporter = node.spawn(move |me| report_workers(me, label));
    let child = ChildSpec::remote("worker", candidates, "sup_worker", vec![Term::Pid(reporter)]);
    Supervisor::new(Strategy::OneForOne).intensity(5, Duration::from_secs(10)).child(child).start(node)
}

/// Prints `WORKER label PID` for every `{:worker_up, pid}` it gets.
async fn report_workers(mut me: Process, label: String) {
    loop {
        let msg = me.receive().await;
        match msg.as_tuple() {
            Some([tag, Term::Pid(worker)]) if tag.is_atom("worker_up") => println!("WORKER {label} {worker}"),
            _ => log::warn!("reporter {label}: unexpected {msg}"),
        }
    }
}

// ---- Remote calls (the `call` command) ----------------------------------------------------------

/// Puts `calc` on `node`'s allow-list for remote calls: `calc([:double, N])` returns `2 * N`,
/// `calc([:crash])` exits with `:boom`, `calc([:sleep, MS])` returns `:slept` after MS
/// milliseconds.
pub fn allow_calc(node: &Node) {
    node.register_spawnable("calc", |me: Process, args: Term| async move {
        let args = match args {
            Term::List(args) => args,
            _ => return Term::atom("badarg"),
        };
        match args.as_slice() {
            [op, Term::Int(n)] if op.is_atom("double") => Term::Int(n * 2),
            [op] if op.is_atom("crash") => {
                me.exit(Term::atom("boom")).await;
                Term::atom("unreachable")
            }
            [op, Term::Int(ms)] if op.is_atom("sleep") => {
                snow_node_rt::sleep(Duration::from_millis(u64::try_from(*ms).unwrap_or(0))).await;
                Term::atom("slept")
            }
            _ => Term::atom("badarg"),
        }
    });
}

/// How long a `call` command waits for the result, then for stray messages.
pub struct CallWaits {
    /// The call's timeout.
    pub timeout: Duration,
    /// How long the caller then watches its mailbox.
    pub linger: Duration,
}

/// Calls `function` on `peer` with `args` from a fresh process, prints `CALLED LABEL ok VALUE` or
/// `CALLED LABEL err ERROR` and, after `linger` more, how many messages reached that process's
/// mailbox (`MAILBOX LABEL N`: a late result must never land there).
pub async fn call(mut me: Process, label: String, peer: NodeName, function: String, args: Vec<Term>, waits: CallWaits) {
    let CallWaits { timeout, linger } = waits;
    match me.call(&peer, &function, args, timeout).await {
        Ok(value) => println!("CALLED {label} ok {value}"),
        Err(e) => println!("CALLED {label} err {}", call_error_kind(&e)),
    }
    let mut count = 0;
    let until = Instant::now() + linger;
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        match me.receive_timeout(left).await {
            Some(msg) => {
                log::warn!("call {label}: unexpected message {msg}");
                count += 1;
            }
            None => break,
        }
    }
    println!("MAILBOX {label} {count}");
}

/// A call's error as one word and its detail, for the test to match.
fn call_error_kind(e: &snow_node_rt::CallError) -> String {
    use snow_node_rt::CallError;
    match e {
        CallError::NotDistributed(_) => "not_distributed".into(),
        CallError::NotSpawnable { .. } => "not_spawnable".into(),
        CallError::NoConnection { .. } => "noconnection".into(),
        CallError::Timeout { .. } => "timeout".into(),
        CallError::Exit { reason, .. } => format!("exit {reason}"),
        CallError::Unsupported(_) => "unsupported".into(),
    }
}
