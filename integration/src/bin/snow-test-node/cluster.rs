//! The test node's commands for the global registry and process groups (README, "Global
//! registry" and "Process groups"), acting on the holders the test started (`spawn H`). Names and
//! groups are atoms. Each command answers one line:
//!
//! - `gregister NAME H` -> `GREGISTERED NAME PID`, or `GREGISTER_FAILED NAME reason`
//! - `gwhereis NAME` -> `GWHEREIS NAME PID` or `GWHEREIS NAME none`
//! - `gsend NAME` -> `GPONG NAME` if the process registered as NAME answered `{From, :ping}`
//!   (sent by name) within 5 s, else `GPANG NAME`
//! - `gjoin GROUP H` -> `GJOINED GROUP PID`, or `GJOIN_FAILED GROUP reason`
//! - `gleave GROUP H` -> `GLEFT GROUP PID`, or `GLEAVE_FAILED GROUP reason`
//! - `gmembers GROUP` -> `GMEMBERS GROUP PID,PID,...` (sorted; empty after the space when none)
//! - `disconnect NODE` -> `DISCONNECTED NODE true|false` (whether there was a connection)
//!
//! A holder that loses a name in a conflict prints the exit signal like any other
//! (`EXIT H WINNER {:global_name_conflict, NAME, WINNER}`).

use std::collections::HashMap;
use std::time::Duration;

use snow_node_rt::{Node, NodeName, Pid, Term};

use crate::procs;

/// The commands of this module.
pub const COMMANDS: [&str; 7] = ["gregister", "gwhereis", "gsend", "gjoin", "gleave", "gmembers", "disconnect"];

/// Runs one of [`COMMANDS`] with its arguments.
pub async fn run(node: &Node, holders: &HashMap<String, Pid>, command: &str, args: &[&str]) -> Result<(), String> {
    let holder = |label: &str| holders.get(label).ok_or_else(|| format!("no holder labelled {label}"));
    match (command, args) {
        ("gregister", [name, label]) => match node.global().register_name(Term::atom(name), holder(label)?) {
            Ok(()) => println!("GREGISTERED {name} {}", holder(label)?),
            Err(e) => println!("GREGISTER_FAILED {name} {e}"),
        },
        ("gwhereis", [name]) => match node.global().whereis_name(&Term::atom(name)) {
            Some(pid) => println!("GWHEREIS {name} {pid}"),
            None => println!("GWHEREIS {name} none"),
        },
        ("gsend", [name]) => {
            let global_name = Term::atom(name);
            let answered = procs::ask(node, Duration::from_secs(5), move |me| {
                let ping = Term::tuple([Term::Pid(me.pid().clone()), Term::atom("ping")]);
                if let Err(e) = me.global().send(&global_name, ping) {
                    log::warn!("gsend {global_name}: {e}");
                }
            })
            .await;
            println!("{} {name}", if answered { "GPONG" } else { "GPANG" });
        }
        ("gjoin", [group, label]) => match node.groups().join(Term::atom(group), &[holder(label)?.clone()]) {
            Ok(()) => println!("GJOINED {group} {}", holder(label)?),
            Err(e) => println!("GJOIN_FAILED {group} {e}"),
        },
        ("gleave", [group, label]) => match node.groups().leave(&Term::atom(group), &[holder(label)?.clone()]) {
            Ok(()) => println!("GLEFT {group} {}", holder(label)?),
            Err(e) => println!("GLEAVE_FAILED {group} {e}"),
        },
        ("gmembers", [group]) => {
            let mut members: Vec<String> =
                node.groups().members(&Term::atom(group)).iter().map(Pid::to_string).collect();
            members.sort();
            println!("GMEMBERS {group} {}", members.join(","));
        }
        ("disconnect", [peer]) => {
            let name: NodeName = peer.parse().map_err(|e| format!("bad node name {peer}: {e}"))?;
            let had = node.disconnect(&name).map_err(|e| e.to_string())?;
            println!("DISCONNECTED {peer} {had}");
        }
        _ => return Err(format!("{command} takes other arguments (see cluster.rs)")),
    }
    Ok(())
}
