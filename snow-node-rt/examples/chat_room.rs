//! A chat room spread over several nodes, built on process groups (README, "Process groups").
//!
//! Each run is one participant: a node with one process that joins the group `lobby`, watches it
//! (who joins, who leaves) and broadcasts every line typed on stdin to all members, wherever they
//! run. With snow-epmd running, in three terminals:
//!
//! ```sh
//! SNOW_NODE=alice@127.0.0.1 SNOW_COOKIE=secret cargo run -p snow-node-rt --example chat_room
//! SNOW_NODE=bob@127.0.0.1   SNOW_COOKIE=secret cargo run -p snow-node-rt --example chat_room -- alice@127.0.0.1
//! SNOW_NODE=carol@127.0.0.1 SNOW_COOKIE=secret cargo run -p snow-node-rt --example chat_room -- alice@127.0.0.1
//! ```
//!
//! Type in any of them. Kill one (Ctrl-C, or `kill -9`): the others see it leave and keep
//! chatting. End of input (Ctrl-D) leaves the room.

use std::collections::BTreeSet;
use std::io::BufRead;

use snow_node_rt::{NodeName, Pid, Process, Term};

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    if let Err(e) = chat() {
        eprintln!("chat_room: {e}");
        std::process::exit(1);
    }
}

fn chat() -> Result<(), String> {
    let node = snow_node_rt::block_on(snow_node_rt::start_from_env()).map_err(|e| e.to_string())?;
    // Meeting one member of the cluster is enough: the mesh connects us to the others, and the
    // groups of every connected node are exchanged when a connection comes up.
    for peer in std::env::args().skip(1) {
        let peer = NodeName::parse(&peer).map_err(|e| format!("bad node name {peer}: {e}"))?;
        snow_node_rt::block_on(node.connect(&peer)).map_err(|e| format!("cannot reach {peer}: {e}"))?;
    }
    let member = node.spawn(member);
    // Every line typed becomes a `{:say, line}` for our member, which broadcasts it.
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        node.send(&member, Term::tuple([Term::atom("say"), Term::string(line.trim())]));
    }
    // Leaving: our member's exit takes it out of the room on every node.
    snow_node_rt::block_on(node.shutdown());
    Ok(())
}

/// One participant: joins the room, prints what is said and who comes and goes, and says what it
/// is told to say.
async fn member(mut me: Process) {
    let room = Term::atom("lobby");
    let my_name = Term::string(me.node().name().as_str());
    // Subscribe before joining, so that our own join is the first change we hear of.
    let (watch, now) = match me.groups().monitor_group(room.clone(), me.pid()) {
        Ok(subscription) => subscription,
        Err(e) => return eprintln!("chat_room: cannot watch the room: {e}"),
    };
    let mut present: BTreeSet<Pid> = now.into_iter().collect();
    if let Err(e) = me.groups().join(room.clone(), &[me.pid().clone()]) {
        return eprintln!("chat_room: cannot join the room: {e}");
    }
    println!("{} is in room lobby; type to talk", me.node().name());
    loop {
        let msg = me.receive().await;
        match msg.as_tuple() {
            // A line to say: one message to every member, here and on other nodes.
            Some([tag, text]) if tag.is_atom("say") => {
                me.groups().broadcast(&room, Term::tuple([Term::atom("chat"), my_name.clone(), text.clone()]));
            }
            Some([tag, Term::String(who), Term::String(text)]) if tag.is_atom("chat") => println!("<{who}> {text}"),
            // The room changed: `{watch, :join | :leave, room, pids}`. Members of a node that went
            // down leave too.
            Some([Term::Ref(r), change, _room, Term::List(pids)]) if *r == watch => {
                let joined = change.is_atom("join");
                for pid in pids.iter().filter_map(Term::as_pid) {
                    if joined {
                        present.insert(pid.clone());
                    } else {
                        present.remove(pid);
                    }
                    let verb = if joined { "joined" } else { "left" };
                    println!("* {} {verb} ({} in the room)", pid.node(), present.len());
                }
            }
            _ => log::warn!("chat_room: ignored {msg}"),
        }
    }
}
