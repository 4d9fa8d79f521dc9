//! An echo node: `SNOW_NODE=echo@127.0.0.1 SNOW_COOKIE=... cargo run --example echo` (with
//! snow-epmd running) registers a process `echo` that answers `{from_pid, term}` with
//! `{:echo, term}`, and stays up until killed (the process alone stops on `:stop`).

use snow_node_rt::Term;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let node = match snow_node_rt::block_on(snow_node_rt::start_from_env()) {
        Ok(node) => node,
        Err(e) => {
            eprintln!("echo: {e}");
            std::process::exit(2);
        }
    };
    let echo = node.spawn(|mut me| async move {
        loop {
            let msg = me.receive().await;
            match msg.as_tuple() {
                Some([Term::Pid(from), term]) => me.send(from, Term::tuple([Term::atom("echo"), term.clone()])),
                _ if msg.is_atom("stop") => return,
                _ => log::info!("echo: ignored {msg}"),
            }
        }
    });
    if let Err(e) = node.register("echo", &echo) {
        eprintln!("echo: {e}");
        std::process::exit(1);
    }
    println!(
        "echo: {} is up (distributed: {}); process `echo` is {}",
        node.name().clone(),
        node.is_distributed(),
        &echo
    );
    // Stay up until killed.
    loop {
        std::thread::park();
    }
}
