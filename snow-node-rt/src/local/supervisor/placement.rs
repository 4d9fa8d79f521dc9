//! Where a supervisor's child runs and how it is started there: a process body on the
//! supervisor's own node, or an allow-listed function (name + arguments) spawned linked on one of
//! a list of candidate nodes (README, "Supervision across nodes").
//!
//! The candidate policy, in one place ([`candidate_order`]): the list is walked in order, with
//! wrap-around, starting
//! * at its first node for a child's first start;
//! * at the node the child last ran on after an exit of its own (a crash, a normal end, a
//!   supervisor-ordered restart): the node is fine, so the child goes back there first;
//! * at the node *after* the one it ran on when it exited with `:noconnection` (its node went
//!   down or was cut off): that node comes last.
//!
//! Each candidate is tried with a remote `spawn_link` (which connects first if needed); the first
//! that answers with a pid wins. If none does, the start failed: the supervisor counts it as a
//! restart and tries again (see `server.rs`), so a cluster with no candidate up ends in the
//! supervisor exiting with `:shutdown` once its intensity is exceeded.

use snow_shared::{NodeName, Pid, Term};

use super::super::process::{Process, Spawnable};
use crate::error::{RemoteSpawnError, SpawnError};

/// How a child is started.
#[derive(Clone)]
pub(super) enum Placement {
    /// A process body, on the supervisor's node.
    Local(Spawnable),
    /// An allow-listed function on one of several nodes.
    Remote(RemoteStart),
}

/// A remote child: the allow-listed function, its arguments and the candidate nodes, in order of
/// preference.
#[derive(Clone, Debug)]
pub(super) struct RemoteStart {
    pub function: String,
    pub args: Vec<Term>,
    pub nodes: Vec<NodeName>,
}

/// Why no candidate node started a remote child.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error(
    "no candidate node started {function:?} ({}); check that a candidate is up and has the function on its allow-list (register_spawnable)",
    describe(.attempts)
)]
pub struct PlacementError {
    /// The allow-listed function asked for.
    pub function: String,
    /// Each candidate tried, in order, and why it did not start the child.
    pub attempts: Vec<(NodeName, String)>,
}

fn describe(attempts: &[(NodeName, String)]) -> String {
    attempts.iter().map(|(node, why)| format!("{node}: {why}")).collect::<Vec<_>>().join("; ")
}

impl PlacementError {
    /// The error as an exit-reason term: `{:no_candidate, function, [{node, "why"}, ...]}`.
    pub fn to_term(&self) -> Term {
        let attempts = self
            .attempts
            .iter()
            .map(|(node, why)| Term::tuple([Term::Atom(node.as_atom().clone()), Term::string(why.clone())]));
        Term::tuple([Term::atom("no_candidate"), Term::string(self.function.clone()), Term::List(attempts.collect())])
    }
}

/// The candidates in the order to try them (module docs): starting at `last`'s position, or just
/// after it when `node_lost`, or at the first node when the child never ran on one of them.
pub(super) fn candidate_order<'a>(
    nodes: &'a [NodeName],
    last: Option<&NodeName>,
    node_lost: bool,
) -> impl Iterator<Item = &'a NodeName> {
    let start = match last.and_then(|l| nodes.iter().position(|n| n == l)) {
        Some(i) if node_lost => i + 1,
        Some(i) => i,
        None => 0,
    };
    nodes.iter().cycle().skip(start).take(nodes.len())
}

/// The arguments a remote child's function is called with: the spec's, plus (for a child of a
/// `simple_one_for_one` supervisor) the `start_child` arguments as one more element.
pub(super) fn call_args(remote: &RemoteStart, extra: &Term) -> Vec<Term> {
    let mut args = remote.args.clone();
    if *extra != Term::Unit {
        args.push(extra.clone());
    }
    args
}

/// Starts `remote` linked to `me` on the first candidate (in `order`) that accepts. A candidate
/// that is `me`'s own node runs the function from this node's allow-list. Each remote attempt is
/// bounded by the distribution layer's deadlines (connect, then the spawn reply within the
/// handshake timeout plus the ticktime), so the whole start is bounded too.
pub(super) async fn start_remote<'a>(
    me: &Process,
    remote: &RemoteStart,
    order: impl Iterator<Item = &'a NodeName>,
    args: Vec<Term>,
) -> Result<Pid, PlacementError> {
    let mut attempts = Vec::new();
    for node in order {
        let result = if node == me.node().name() {
            me.spawn_link_allowed(&remote.function, Term::List(args.clone())).map_err(|SpawnError::NotSpawnable(f)| {
                format!("{f:?} is not on this node's allow-list (register_spawnable)")
            })
        } else {
            me.spawn_link_remote(node, &remote.function, args.clone()).await.map_err(|e| describe_spawn_error(&e))
        };
        match result {
            Ok(pid) => return Ok(pid),
            Err(why) => {
                log::warn!("supervisor {}: cannot start {:?} on {node}: {why}", me.pid(), remote.function);
                attempts.push((node.clone(), why));
            }
        }
    }
    Err(PlacementError { function: remote.function.clone(), attempts })
}

fn describe_spawn_error(e: &RemoteSpawnError) -> String {
    match e {
        RemoteSpawnError::Refused { reason, .. } => format!("refused ({reason})"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(short: &[&str]) -> Vec<NodeName> {
        short.iter().map(|s| NodeName::parse(&format!("{s}@127.0.0.1")).unwrap()).collect()
    }

    fn order(nodes: &[NodeName], last: Option<&str>, lost: bool) -> Vec<String> {
        let last = last.map(|s| NodeName::parse(&format!("{s}@127.0.0.1")).unwrap());
        candidate_order(nodes, last.as_ref(), lost)
            .map(|n| n.to_string().split('@').next().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn first_start_walks_the_list_in_order() {
        let nodes = names(&["b", "c", "d"]);
        assert_eq!(order(&nodes, None, false), ["b", "c", "d"]);
        assert_eq!(order(&nodes, None, true), ["b", "c", "d"], "no last node: lost changes nothing");
    }

    #[test]
    fn a_child_that_exited_goes_back_to_its_node_first() {
        let nodes = names(&["b", "c", "d"]);
        assert_eq!(order(&nodes, Some("c"), false), ["c", "d", "b"]);
    }

    #[test]
    fn a_child_whose_node_was_lost_tries_the_next_candidates_and_that_node_last() {
        let nodes = names(&["b", "c", "d"]);
        assert_eq!(order(&nodes, Some("b"), true), ["c", "d", "b"]);
        assert_eq!(order(&nodes, Some("d"), true), ["b", "c", "d"], "wraps around");
        assert_eq!(order(&nodes, Some("x"), true), ["b", "c", "d"], "a node not in the list: from the start");
    }

    #[test]
    fn start_child_arguments_are_appended_as_one_element() {
        let remote = RemoteStart { function: "f".into(), args: vec![Term::Int(1)], nodes: names(&["b"]) };
        assert_eq!(call_args(&remote, &Term::Unit), [Term::Int(1)]);
        assert_eq!(call_args(&remote, &Term::atom("x")), [Term::Int(1), Term::atom("x")]);
    }

    #[test]
    fn the_error_names_every_candidate_and_why() {
        let e = PlacementError {
            function: "worker".into(),
            attempts: vec![(names(&["b"])[0].clone(), "down".into()), (names(&["c"])[0].clone(), "refused".into())],
        };
        let text = e.to_string();
        assert!(text.contains("b@127.0.0.1: down; c@127.0.0.1: refused"), "{text}");
        assert!(text.contains("register_spawnable"), "{text}");
        let term = e.to_term();
        let parts = term.as_tuple().unwrap();
        assert!(parts[0].is_atom("no_candidate"));
        assert!(matches!(&parts[2], Term::List(l) if l.len() == 2));
    }
}
