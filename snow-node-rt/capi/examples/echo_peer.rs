//! The Rust node the C test programs talk to, run as its own OS process (so that a test can kill
//! it with SIGKILL): started from its environment like any Snow program, it registers a process
//! `echo` that answers `{from, term}` with `{:echo, self(), term}`, and offers the same echo as the
//! spawnable function `echo`. It prints `UP <node>` once both are in place and runs until killed.

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
