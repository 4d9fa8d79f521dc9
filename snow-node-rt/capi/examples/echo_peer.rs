//! The Rust node the C test programs talk to, run as its own OS process (so that a test can kill
//! it with SIGKILL): started from its environment like any Snow program, it registers a process
//! `echo` that answers `{from, term}` with `{:echo, self(), term}`, and offers the same echo as the
//! spawnable function `echo`. For remote calls and casts it offers `add` (`[a, b]` returns `a + b`;
//! anything else exits with `{:badarg, args}`), `sleep` (`[pid, ms]` tells `pid`
//! `{:sleeping, self()}`, sleeps `ms` and returns `:slept`) and `notify` (`[pid, term]` sends
//! `{:cast, term}` to `pid`). It prints `UP <node>` once all are in place and runs until killed.

use std::time::Duration;

use snow_node_rt::{Process, Term};

async fn echo(mut me: Process) {
    loop {
        let msg = me.receive().await;
        match msg.as_tuple() {
            Some([Term::Pid(from), term]) => {
                me.send(from, Term::tuple([Term::atom("echo"), Term::Pid(me.pid().clone()), term.clone()]))
            }
            _ if msg.is_atom("stop") => return,
            _ => log::info!("echo: ignored {msg}"),
        }
    }
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let node = match snow_node_rt::block_on(snow_node_rt::start_from_env()) {
        Ok(node) => node,
        Err(e) => {
            eprintln!("echo_peer: {e}");
            std::process::exit(2);
        }
    };
    node.register_spawnable("echo", |me, _args| async move {
        echo(me).await;
        Term::atom("normal")
    });
    node.register_spawnable("add", |me, args| async move {
        match args.as_list() {
            Some([Term::Int(a), Term::Int(b)]) => Term::Int(a.saturating_add(*b)),
            _ => {
                me.exit(Term::tuple([Term::atom("badarg"), args])).await;
                Term::atom("unreachable")
            }
        }
    });
    node.register_spawnable("sleep", |me, args| async move {
        if let Some([Term::Pid(to), Term::Int(ms)]) = args.as_list() {
            me.send(to, Term::tuple([Term::atom("sleeping"), Term::Pid(me.pid().clone())]));
            snow_node_rt::sleep(Duration::from_millis(u64::try_from(*ms).unwrap_or(0))).await;
        }
        Term::atom("slept")
    });
    node.register_spawnable("notify", |me, args| async move {
        if let Some([Term::Pid(to), term]) = args.as_list() {
            me.send(to, Term::tuple([Term::atom("cast"), term.clone()]));
        }
        Term::atom("normal")
    });
    let pid = node.spawn(echo);
    if let Err(e) = node.register("echo", &pid) {
        eprintln!("echo_peer: {e}");
        std::process::exit(1);
    }
    println!("UP {}", node.name());
    loop {
        std::thread::park();
    }
}
