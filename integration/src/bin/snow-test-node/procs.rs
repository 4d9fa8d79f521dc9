//! The processes the test node starts on command: holders (links, monitors, exit signals),
//! sinks that check per-sender order, and senders (a counted burst, or a stream until stopped
//! or until the receiver is gone). Each prints its events as one stdout line.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_channel::Sender;
use smol_timeout::TimeoutExt;
use snow_node_rt::{Node, Pid, Process, RegisterError, Term};

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
