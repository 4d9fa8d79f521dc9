//! The demo: a real local cluster in one command, `cargo run -p snow-integration --bin demo`.
//!
//! It starts a snow-epmd daemon and three nodes (`alpha`, `beta`, `gamma`) as separate OS
//! processes on loopback, all sharing a freshly generated cookie, and has `alpha` walk through the
//! main features while it narrates: a mesh formed from one connect, sends by name and by pid, a pid
//! passed across three nodes, an allow-listed remote spawn (and a refused one), a remote monitor,
//! a service found and called through the global registry, a chat room (a process group with a
//! member on each node), and, after `gamma` is killed with SIGKILL, `{:nodedown, ...}`, gamma's
//! member leaving the room and the others chatting on. It ends with `snow-epmd list`.
//!
//! The same binary plays every part (`--role epmd|node`), so the one command builds everything.
//! Every wait has a deadline; the orchestrator kills only the children it started, by pid.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use snow_node_rt::{Node, NodeName, Pid, Process, Term};

/// Bound on every step of the demo.
const STEP: Duration = Duration::from_secs(10);
/// Short ticktime so that a frozen or silent node would be noticed quickly too.
const TICKTIME_SECS: &str = "4";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        None => orchestrate(),
        Some("--role") => match (args.get(2).map(String::as_str), args.get(3)) {
            (Some("epmd"), Some(dir)) => run_epmd(Path::new(dir)),
            (Some("node"), _) => run_node(),
            _ => Err("usage: demo [--role epmd DATA_DIR | --role node]".to_owned()),
        },
        Some(_) => Err("usage: demo (no arguments)".to_owned()),
    };
    if let Err(e) = result {
        eprintln!("demo: {e}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------------
// The orchestrator: starts the daemon and the nodes, relays their output, kills gamma on cue.

/// Children started by the orchestrator, killed (by pid) and reaped when it ends, whatever happens.
#[derive(Default)]
struct Children(Vec<(String, Child)>);

impl Children {
    fn kill(&mut self, name: &str) {
        if let Some((_, child)) = self.0.iter_mut().find(|(n, _)| n == name) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Children {
    /// Nodes first, the daemon last (so the nodes do not log a lost registration on the way out).
    fn drop(&mut self) {
        for (_, child) in self.0.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn orchestrate() -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find my own executable: {e}"))?;
    let dir = std::env::temp_dir().join(format!("snow-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let outcome = run_cluster(&exe, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

fn run_cluster(exe: &Path, dir: &Path) -> Result<(), String> {
    let cookie_file = write_cookie(dir)?;
    let mut children = Children::default();

    println!("== starting snow-epmd on 127.0.0.1 (ephemeral port)");
    let mut epmd = Command::new(exe)
        .args(["--role", "epmd"])
        .arg(dir.join("epmd-data"))
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start snow-epmd: {e}"))?;
    let epmd_out = epmd.stdout.take().ok_or("snow-epmd has no stdout")?;
    children.0.push(("epmd".to_owned(), epmd));
    let (lines_tx, lines) = mpsc::channel::<(String, String)>();
    relay("epmd", epmd_out, lines_tx.clone());
    let epmd_addr = wait_for_line(&lines, "epmd", "listening on ")?;
    println!("== snow-epmd is listening on {epmd_addr}");

    for name in ["beta", "gamma", "alpha"] {
        let mut child = Command::new(exe)
            .args(["--role", "node"])
            .env("SNOW_NODE", format!("{name}@127.0.0.1"))
            .env("SNOW_COOKIE_FILE", &cookie_file)
            .env("SNOW_EPMD", &epmd_addr)
            .env("SNOW_TICKTIME", TICKTIME_SECS)
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned()))
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start node {name}: {e}"))?;
        let out = child.stdout.take().ok_or("node has no stdout")?;
        children.0.push((name.to_owned(), child));
        relay(name, out, lines_tx.clone());
        // Start them one after the other so that alpha's story begins with beta and gamma up.
        wait_for_line(&lines, name, "up as ")?;
    }

    // Alpha narrates; on its cue, gamma is killed with SIGKILL; it ends with "done".
    let deadline = Instant::now() + 6 * STEP;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (who, line) = lines.recv_timeout(left).map_err(|_| "alpha did not finish in time".to_owned())?;
        println!("[{who}] {line}");
        if who == "alpha" && line.contains("now kill gamma") {
            println!("== killing gamma with SIGKILL");
            children.kill("gamma");
        }
        if who == "alpha" && line.starts_with("FAILED") {
            return Err(format!("alpha: {line}"));
        }
        if who == "alpha" && line == "done" {
            break;
        }
    }

    println!("== snow-epmd list");
    let cli = <snow_epmd::cli::Cli as clap::Parser>::try_parse_from(["snow-epmd", "list", "--epmd", &epmd_addr])
        .map_err(|e| e.to_string())?;
    snow_epmd::cli::run(cli);
    println!("== demo finished; stopping the cluster");
    Ok(())
}

/// A fresh 256-bit cookie in a file only the owner can read (as SNOW_COOKIE_FILE requires).
fn write_cookie(dir: &Path) -> Result<PathBuf, String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("cookie");
    let text = snow_shared::cookie::Cookie::generate(rand::random());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    file.write_all(text.as_bytes()).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// Forwards a child's output lines to the orchestrator.
fn relay(who: &'static str, out: ChildStdout, tx: mpsc::Sender<(String, String)>) {
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send((who.to_owned(), line)).is_err() {
                break;
            }
        }
    });
}

/// Prints lines until `who` says something starting with or containing `marker`; returns the rest
/// of that line after the marker.
fn wait_for_line(lines: &mpsc::Receiver<(String, String)>, who: &str, marker: &str) -> Result<String, String> {
    let deadline = Instant::now() + STEP;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (from, line) = lines.recv_timeout(left).map_err(|_| format!("{who} did not start within {STEP:?}"))?;
        println!("[{from}] {line}");
        if from == who {
            if let Some(at) = line.find(marker) {
                return Ok(line[at + marker.len()..].trim().to_owned());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The daemon role.

fn run_epmd(dir: &Path) -> Result<(), String> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    snow_node_rt::block_on(async {
        let config = snow_epmd::Config::new(([127, 0, 0, 1], 0).into(), dir.to_path_buf());
        let server = snow_epmd::serve(config).await.map_err(|e| e.to_string())?;
        println!("snow-epmd listening on {}", server.local_addr());
        // Serve until the orchestrator kills this process.
        std::future::pending::<()>().await;
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// The node role: every node offers the same services; alpha also tells the story.

fn run_node() -> Result<(), String> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    snow_node_rt::block_on(async {
        let node = snow_node_rt::start_from_env().await.map_err(|e| e.to_string())?;
        offer_services(&node)?;
        let me = node.name().clone();
        let listen = node.listen_addr().map(|a| a.to_string()).unwrap_or_default();
        println!("up as {me}, distribution listener on {listen}");
        match me.name() {
            "alpha" => {
                tell_the_story(&node).await?;
                // Stay up, so that `snow-epmd list` shows alpha as a live entry.
                std::future::pending::<Result<(), String>>().await
            }
            "gamma" => {
                // gamma joins beta, so that alpha later meets gamma through beta (transitive mesh).
                node.connect(&node_name("beta@127.0.0.1")?).await.map_err(|e| e.to_string())?;
                std::future::pending::<Result<(), String>>().await
            }
            _ => std::future::pending::<Result<(), String>>().await,
        }
    })
}

/// A registered `greeter` answering `{from, term}` with `{:echo, greeter_pid, node, term}`, a
/// `relay` forwarding `{:relay, to, msg}`, and two functions other nodes may spawn by name.
fn offer_services(node: &Node) -> Result<(), String> {
    let greeter = node.spawn(|mut me| async move {
        loop {
            let msg = me.receive().await;
            if msg.is_atom("stop") {
                return;
            }
            if let Some([Term::Pid(from), body]) = msg.as_tuple() {
                let here = Term::string(me.node().name().as_str());
                me.send(from, Term::tuple([Term::atom("echo"), Term::Pid(me.pid().clone()), here, body.clone()]));
            }
        }
    });
    node.register("greeter", &greeter).map_err(|e| e.to_string())?;
    let relay = node.spawn(|mut me| async move {
        loop {
            let msg = me.receive().await;
            if msg.is_atom("stop") {
                return;
            }
            if let Some([tag, Term::Pid(to), body]) = msg.as_tuple() {
                if tag.is_atom("relay") {
                    me.send(to, body.clone());
                }
            }
        }
    });
    node.register("relay", &relay).map_err(|e| e.to_string())?;
    // `square`: args [n, reply_to]; replies {:square, n*n} and exits normally.
    node.register_spawnable("square", |me, args| async move {
        if let Term::List(items) = &args {
            if let [Term::Int(n), Term::Pid(to)] = items.as_slice() {
                me.send(to, Term::tuple([Term::atom("square"), Term::Int(n * n)]));
            }
        }
        Term::atom("normal")
    });
    // `worker`: waits for a message and exits with it as the reason (to show remote monitors).
    node.register_spawnable("worker", |mut me, _args| async move { me.receive().await });
    offer_cluster_services(node)
}

/// The room every node has a member in (a process group of the default scope).
const ROOM: &str = "lobby";
/// The cluster-wide service beta registers in the global registry.
const COUNTER: &str = "counter";

/// On every node a member of the room `lobby`, which prints what it hears and answers the speaker
/// `{:heard, node}`; on beta the global service `counter`, which answers `{:next, from}` with
/// `{:number, n}` (1, 2, ...).
fn offer_cluster_services(node: &Node) -> Result<(), String> {
    let member = node.spawn(|mut me| async move {
        loop {
            let msg = me.receive().await;
            if msg.is_atom("stop") {
                return;
            }
            if let Some([tag, Term::Pid(from), who, text]) = msg.as_tuple() {
                if tag.is_atom("chat") {
                    println!("room: <{}> {}", who.as_str().unwrap_or("?"), text.as_str().unwrap_or("?"));
                    me.send(from, Term::tuple([Term::atom("heard"), Term::string(me.node().name().as_str())]));
                }
            }
        }
    });
    node.groups().join(Term::atom(ROOM), &[member]).map_err(|e| e.to_string())?;
    if node.name().name() == "beta" {
        let counter = node.spawn(|mut me| async move {
            let mut issued = 0;
            loop {
                let msg = me.receive().await;
                if msg.is_atom("stop") {
                    return;
                }
                if let Some([tag, Term::Pid(from)]) = msg.as_tuple() {
                    if tag.is_atom("next") {
                        issued += 1;
                        me.send(from, Term::tuple([Term::atom("number"), Term::Int(issued)]));
                    }
                }
            }
        });
        node.global().register_name(Term::atom(COUNTER), &counter).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Alpha's walk through the features. Prints `FAILED: ...` and returns an error on any failure.
async fn tell_the_story(node: &Node) -> Result<(), String> {
    let (tx, rx) = async_channel::bounded(1);
    node.spawn(move |mut me| async move {
        let outcome = story(&mut me).await;
        let _ = tx.send(outcome).await;
    });
    let outcome = rx.recv().await.map_err(|_| "alpha's story process died".to_owned())?;
    match &outcome {
        Ok(()) => println!("done"),
        Err(e) => println!("FAILED: {e}"),
    }
    outcome
}

fn node_name(text: &str) -> Result<NodeName, String> {
    NodeName::parse(text).map_err(|e| e.to_string())
}

async fn expect(me: &mut Process, what: &str, accept: impl FnMut(&Term) -> bool) -> Result<Term, String> {
    me.receive_match_timeout(accept, STEP).await.ok_or_else(|| format!("no {what} within {STEP:?}"))
}

/// Polls `find` every 20 ms until it gives something, for at most [`STEP`].
async fn wait_for<T>(mut find: impl FnMut() -> Option<T>, what: &str) -> Result<T, String> {
    let start = Instant::now();
    loop {
        if let Some(found) = find() {
            return Ok(found);
        }
        if start.elapsed() > STEP {
            return Err(format!("no {what} within {STEP:?}"));
        }
        snow_node_rt::sleep(Duration::from_millis(20)).await;
    }
}

fn pids(pids: &[Pid]) -> String {
    let text: Vec<String> = pids.iter().map(ToString::to_string).collect();
    format!("[{}]", text.join(", "))
}

/// Broadcasts `text` to the room and waits until `members` members said they heard it.
async fn say(me: &mut Process, room: &Term, text: &str, members: usize) -> Result<(), String> {
    let line =
        Term::tuple([Term::atom("chat"), Term::Pid(me.pid().clone()), Term::string("alpha"), Term::string(text)]);
    let reached = me.groups().broadcast(room, line);
    let mut heard = Vec::new();
    for _ in 0..members {
        let ack = expect(me, "a member hearing alpha", |m| m.as_tuple().is_some_and(|t| t[0].is_atom("heard"))).await?;
        heard.extend(ack.as_tuple().and_then(|t| t[1].as_str()).map(str::to_owned));
    }
    heard.sort();
    println!("broadcast(:lobby, {text:?}) reached {reached} members; heard on {heard:?}");
    Ok(())
}

async fn story(me: &mut Process) -> Result<(), String> {
    let node = me.node().clone();
    let (beta, gamma) = (node_name("beta@127.0.0.1")?, node_name("gamma@127.0.0.1")?);

    // 1. One connect, full mesh: beta tells alpha about gamma.
    node.connect(&beta).await.map_err(|e| e.to_string())?;
    let start = Instant::now();
    while !node.nodes().contains(&gamma) {
        if start.elapsed() > STEP {
            return Err("the mesh did not reach gamma through beta".to_owned());
        }
        snow_node_rt::sleep(Duration::from_millis(20)).await;
    }
    let nodes: Vec<String> = node.nodes().iter().map(ToString::to_string).collect();
    println!("connected to beta only; nodes() = {nodes:?} (gamma joined through beta)");

    // 2. Send by registered name on another node, and get an answer back by pid.
    let hello = Term::tuple([Term::Pid(me.pid().clone()), Term::string("hello")]);
    me.send_named_on("greeter", &beta, hello).map_err(|e| e.to_string())?;
    let reply = expect(me, "echo from beta", |m| m.as_tuple().is_some_and(|t| t.len() == 4)).await?;
    println!("{{greeter, beta}} ! {{self(), \"hello\"}}  ->  {reply}");
    let beta_greeter = reply.as_tuple().and_then(|t| t[1].as_pid().cloned()).ok_or("reply without a pid")?;

    // 3. A pid crossing three nodes: alpha sends beta's pid to gamma, gamma messages beta, beta
    //    answers alpha.
    let inner = Term::tuple([Term::Pid(me.pid().clone()), Term::string("via gamma")]);
    let relayed = Term::tuple([Term::atom("relay"), Term::Pid(beta_greeter.clone()), inner]);
    me.send_named_on("relay", &gamma, relayed).map_err(|e| e.to_string())?;
    let reply = expect(me, "echo relayed by gamma", |m| {
        m.as_tuple().is_some_and(|t| t.len() == 4 && t[3].as_str() == Some("via gamma"))
    })
    .await?;
    println!("beta's pid {beta_greeter} sent to gamma, gamma messaged it  ->  {reply}");

    // 4. Remote spawn of an allow-listed function, and a refused one.
    let args = vec![Term::Int(7), Term::Pid(me.pid().clone())];
    let pid = me.spawn_remote(&gamma, "square", args).await.map_err(|e| e.to_string())?;
    let squared = expect(me, "square result", |m| m.as_tuple().is_some_and(|t| t[0].is_atom("square"))).await?;
    println!("spawn_remote(gamma, \"square\", [7, self()]) = {pid}  ->  {squared}");
    match me.spawn_remote(&gamma, "run_shell_command", vec![]).await {
        Ok(pid) => return Err(format!("a function gamma never allow-listed was spawned as {pid}")),
        Err(e) => println!("spawn_remote(gamma, \"run_shell_command\", []) refused: {e}"),
    }

    // 5. A monitor on a remote process: it exits with the reason we send it.
    let worker: Pid = me.spawn_remote(&beta, "worker", vec![]).await.map_err(|e| e.to_string())?;
    let reference = me.monitor(&worker);
    me.send(&worker, Term::tuple([Term::atom("shutdown"), Term::string("demo over")]));
    let down = expect(me, "down message", |m| m.as_tuple().is_some_and(|t| t[0].is_atom("DOWN"))).await?;
    println!("monitor({worker}) = {reference}; worker told to exit  ->  {down}");

    // 6. The global registry: beta registered its counter as `counter` cluster-wide; alpha finds
    //    it by that name alone (no node given) and calls it.
    let counter = Term::atom(COUNTER);
    let holder = wait_for(|| me.global().whereis_name(&counter), "the global name counter").await?;
    println!("global whereis_name(:counter) = {holder} (registered on beta)");
    me.global()
        .send(&counter, Term::tuple([Term::atom("next"), Term::Pid(me.pid().clone())]))
        .map_err(|e| e.to_string())?;
    let number = expect(me, "the counter's answer", |m| m.as_tuple().is_some_and(|t| t[0].is_atom("number"))).await?;
    println!("global send(:counter, {{:next, self()}})  ->  {number}");

    // 7. A room: one member on each node in the group `lobby`; alpha watches it and says hello.
    let room = Term::atom(ROOM);
    let (watch, _) = me.groups().monitor_group(room.clone(), me.pid()).map_err(|e| e.to_string())?;
    let members =
        wait_for(|| Some(me.groups().members(&room)).filter(|m| m.len() == 3), "3 members in the room").await?;
    println!("members(:lobby) = {}", pids(&members));
    say(me, &room, "hello, room", 3).await?;

    // 8. Node monitoring: gamma is killed with SIGKILL by the orchestrator; its member leaves the room.
    me.monitor_node(&gamma);
    let killed_at = Instant::now();
    println!("monitor_node(gamma); now kill gamma");
    let down = expect(me, "nodedown for gamma", |m| m.as_tuple().is_some_and(|t| t[0].is_atom("nodedown"))).await?;
    println!("{down} after {} ms", killed_at.elapsed().as_millis());
    let nodes: Vec<String> = node.nodes().iter().map(ToString::to_string).collect();
    println!("nodes() = {nodes:?}");
    let left = expect(
        me,
        "gamma's member leaving the room",
        |m| matches!(m.as_tuple(), Some([Term::Ref(r), change, ..]) if *r == watch && change.is_atom("leave")),
    )
    .await?;
    println!("the room's watcher got {left}; members(:lobby) = {}", pids(&me.groups().members(&room)));

    // 9. The others keep chatting.
    say(me, &room, "still chatting", 2).await?;
    Ok(())
}
