//! Cluster-wide names and process groups, sans-IO: the protocol logic of Snow's global registry
//! ([`global`], Erlang's `global` without its locks) and process groups ([`groups`], Erlang's `pg`
//! with scopes), each a deterministic value per node that a driver feeds with local requests,
//! peer messages (the GLOBAL_* and GROUP_* control messages, PROTOCOL.md 4.3.5 and 4.3.6),
//! connection changes and process exits, and drains of messages to send and events to act on.
//! Nothing here reads a clock, touches a socket or talks to a process.
//!
//! # Design
//!
//! **Each node is the authority for its own processes.** Only a process's node registers a name
//! for it, withdraws it, or adds it to a group, and announces that to its peers; a peer's messages
//! may name only the peer's own processes (anything else is refused as a protocol error). A
//! node's view is the union of what each connected peer announced about its processes, plus its
//! own. So a view never holds a name or member whose node it is not connected to: when a
//! connection goes down, everything its node announced is dropped at once, and when it comes
//! back, the node announces its current state again (GLOBAL_SYNC, GROUP_SYNC). Messages between
//! two nodes arrive in order, so an announcement is never overtaken by an older one.
//!
//! **No locks, no round trips.** `register_name` and `join` decide from the local view, update
//! it, and send one message to each peer; they never wait for an answer, so their latency does
//! not grow with the number of nodes. Lookups (`whereis_name`, `members`) read the local view: a
//! hash lookup, no message.
//!
//! # Global registry: guarantees and consistency model
//!
//! - *One name, one pid, on every node's answer*: [`global::Global::whereis_name`] returns at most
//!   one pid. A node may briefly hold two claims on one name (two registrations that did not know
//!   of each other); it answers with the winner under the conflict rule.
//! - *Conflict rule*: of two claims, the one with the lower `(stamp, origin node, generation
//!   descending, pid)` wins. The stamp is a hybrid logical clock reading ([`hlc`]): wall-clock
//!   milliseconds and a counter, never running backwards and always above every stamp the node
//!   has seen. So the registration made first keeps the name, and a fresh registration made by a node
//!   that already knew the other (and lost sight of it in a partition) can never win against it,
//!   whatever the clocks say; between registrations that
//!   did not know of each other, "first" is judged by the wall clocks, within their skew. A
//!   re-registration (`re_register_name`) keeps the stamp of the registration it takes over and
//!   raises its generation, so it beats it. Ties are impossible: the pid makes the order total.
//!   The rule is a pure function of the two claims, so every node picks the same winner.
//! - *The loser is told once*: only the loser's own node acts on a conflict. It withdraws the
//!   claim (GLOBAL_UNREGISTER to all), and emits one [`global::NameLost`] event, by default an
//!   exit signal with reason `{:global_name_conflict, name, winner}` (trappable; the alternative is
//!   a message, [`global::ConflictNotice`]). Exit is the default because a global name usually
//!   marks a singleton: two instances running on after a partition would both do its work.
//! - *No stale registrations*: a name disappears from every node when its process exits (its node
//!   withdraws it) and from every other node when its node goes down (they drop it).
//! - *During a partition*, each side is a cluster of its own: `whereis_name` answers from the
//!   claims of the processes on its side (claims from the other side were dropped when the
//!   connections went down), and both sides may register the same name; each side sees its own
//!   holder. Registration stays available on both sides (availability over consistency).
//! - *After the partition heals*, each reconnecting pair exchanges GLOBAL_SYNC (one message delay),
//!   the loser's node withdraws its claim and tells its process, and its GLOBAL_UNREGISTER reaches
//!   everyone one message delay later: two message delays after the last connection came up, all
//!   nodes hold identical tables. A normal registration reaches every connected node in one
//!   message delay (one message per peer).
//! - *Overlapping partitions* (A sees B, B sees C, A does not see C): B holds both sides' claims
//!   and, when a claim loses, sends a GLOBAL_CONFLICT notice to the loser's node, so the conflict
//!   is resolved even though A and C cannot talk (three message delays). C does not see A's
//!   names while it cannot reach A, and may register one of them again; B resolves that too.
//! - What a reader may see: `whereis_name` on a node that hears of two conflicting claims answers
//!   with the first it heard of until the other arrives, then with the winner; it answers with
//!   the loser again only if the winner's node disconnects before the loser's withdrawal arrives.
//!   On the node that registered, the registration is visible at once (read your writes).
//! - Costs: `register_name`, `unregister_name` and an exit send one message to each peer (N-1 for
//!   N nodes) and wait for nothing; `whereis_name` sends nothing. A conflict adds the loser's
//!   withdrawal (N-1 messages) and at most one GLOBAL_CONFLICT notice from each other node.
//!
//! Erlang's `global` instead sets a cluster-wide lock for each registration (messages to every
//! node and back, so registration gets slower as the cluster grows), which makes registration
//! consistent in a fully connected network; during a partition both sides register freely too,
//! and when they meet, a resolve function given per registration (by default `random_exit_name`:
//! one holder at random is killed with `kill`) picks the winner. Snow has one rule for every name
//! (so every node can apply it alone) and a per-node choice of notice. Its table can become inconsistent in overlapping
//! partitions, which is why OTP 25 enables `prevent_overlapping_partitions`: `global` disconnects
//! nodes that report lost connections, so that fully connected partitions form. Snow never
//! disconnects anyone for the registry's sake: each view is "what my connected peers announced",
//! which stays well defined in any topology, and conflict notices settle what a node in the
//! middle sees.
//!
//! The `syn` library (v3) is closest: it routes every registration to the process's node (node
//! authority), replicates without locks, and resolves conflicts after a net split on the nodes
//! of the two processes. It stamps with the wall clock (`erlang:system_time`) and by default keeps
//! the *most recent* registration, killing the other with `{syn_resolve_kill, Name, Meta}`; its
//! docs warn that skewed clocks make this imprecise. Snow keeps the *oldest* registration (the
//! established holder keeps its name; the one started while the other was unreachable yields),
//! orders by a hybrid logical clock so causality is never inverted by skew, and handles
//! overlapping partitions with conflict notices. syn has registry scopes; Snow's registry has one
//! namespace, like `global` (groups have scopes).
//!
//! # Process groups: guarantees
//!
//! - Eventually consistent, like `pg`: after the last change, every node that runs a scope holds
//!   the same members for every group of it, two message delays after the last connection came up
//!   (GROUP_DISCOVER, then GROUP_SYNC), one message delay after a join or leave.
//! - A process that exits leaves every group on every node (its node announces GROUP_LEAVE; a join
//!   still in flight is overtaken by nothing, so the leave follows it everywhere). Members of a
//!   node that goes down are removed on every other node.
//! - Scopes are independent, as in `pg`: a node exchanges a scope's messages only with the peers
//!   that run it, and a message for a scope a node does not run is ignored.
//! - Membership is a set (a process is in a group once however often it joined); `pg` counts
//!   joins, which makes a double join a double delivery.
//! - Subscriptions ([`groups::Groups::monitor_scope`], [`groups::Groups::monitor_group`]) deliver
//!   `{ref, :join | :leave, group, pids}` for every change of this node's view, as `pg`'s.
//!
//! # Driving the values
//!
//! For both values the driver: reports each connection with `node_up(node, creation, flags)`
//! (the negotiated flags: a peer without the GLOBAL or GROUPS capability is never sent those
//! messages) and `node_down`; hands each GLOBAL_* message to [`global::Global::handle_message`]
//! and each GROUP_* message to [`groups::Groups::handle_message`]; calls `process_exited` when a
//! watched process exits; then sends every [`Transmit`] (encode once, write to each recipient) and
//! acts on every event. The simulation in this module's tests is such a driver.

pub mod global;
pub mod groups;
pub mod hlc;
mod peers;
mod pid_set;

#[cfg(test)]
mod sim;
#[cfg(test)]
mod sim_tests;

use crate::dist::control::Control;
use crate::dist::Flags;
use crate::name::NodeName;
use crate::pid::Pid;

/// A control message for some peers.
#[derive(Clone, Debug, PartialEq)]
pub struct Transmit {
    /// The recipients, each a connected peer that negotiated the message's capability.
    pub to: Vec<NodeName>,
    /// The message.
    pub message: Control,
}

/// A peer's message that breaks the protocol. It changed nothing; the peer is broken or hostile,
/// and the driver should log it and may close the connection.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PeerError {
    /// The sender is not a connected peer with the capability.
    #[error("{message} from {from}, which is not connected with capability {flag:?}; report node_up before delivering a peer's messages")]
    UnknownPeer {
        /// The sender.
        from: NodeName,
        /// The message's name.
        message: &'static str,
        /// The capability it needs.
        flag: Flags,
    },
    /// The message names a process that is not the sender's own (or is from an earlier start of
    /// it), or, for GLOBAL_CONFLICT, not the receiver's own.
    #[error("{message} from {from} names {pid}, which it has no authority over; the peer is broken or hostile")]
    ForeignPid {
        /// The sender.
        from: NodeName,
        /// The message's name.
        message: &'static str,
        /// The process.
        pid: Pid,
    },
    /// The message is not one this value handles.
    #[error("{message} was given to {handler}; route GLOBAL_* messages to Global and GROUP_* messages to Groups")]
    NotHandled {
        /// The message's name.
        message: &'static str,
        /// The value it was given to.
        handler: &'static str,
    },
}
