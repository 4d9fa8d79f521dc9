//! Error types of the process layer and of the operations a host asks of the distribution layer.
//! Each message says what to do about it.

use std::time::Duration;

use snow_shared::{Atom, NodeName, Pid, Term};

/// Why [`Process::link`](crate::Process::link) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The target does not exist; Erlang raises `noproc` here. Trap exits to get an
    /// `{:EXIT, pid, :noproc}` message instead, or monitor the pid to learn whether it is alive.
    #[error("cannot link to {0}: no such process (it exited, or its node restarted)")]
    NoProc(Pid),
}

/// Why a registration failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// Another live process holds the name.
    #[error("the name {name} is already registered to {holder}; unregister it first or choose another name")]
    NameTaken {
        /// The name asked for.
        name: Atom,
        /// The process holding it.
        holder: Pid,
    },
    /// The process already has a name; a process has at most one.
    #[error("process {pid} is already registered as {name}; unregister that name before registering another")]
    AlreadyRegistered {
        /// The process.
        pid: Pid,
        /// Its current name.
        name: Atom,
    },
    /// Only live processes of this node can be registered.
    #[error("process {0} is not a live process of this node; only local, running processes can be registered")]
    NotAlive(Pid),
    /// `undefined` is reserved (as in Erlang), and the empty name is not a name.
    #[error("{0:?} cannot be a registered name; choose another name")]
    Reserved(String),
}

/// Why an unregistration failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnregisterError {
    /// No process is registered under the name.
    #[error("no process is registered as {0:?}; nothing to unregister")]
    NotRegistered(String),
}

/// Why a send by name failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No process is registered under the name (Erlang raises `badarg`).
    #[error("no process is registered as {0:?}; check the name, or use whereis to test first")]
    NotRegistered(String),
    /// The name is on another node, and this node is not distributed.
    #[error("this node is not distributed (SNOW_NODE is unset), so it cannot send to another node")]
    NotDistributed,
}

/// Why a global registry operation failed (README, "Global registry").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobalError {
    /// The global registry is part of distribution; this node runs local-only.
    #[error("this node is not distributed (SNOW_NODE is unset), and the global registry needs distribution; use register for a node-local name")]
    NotDistributed,
    /// Another process holds the name (Erlang's `global:register_name` returns `no`).
    #[error("the global name {name} is registered to {holder}; unregister it first, or use re_register_name")]
    Taken {
        /// The name.
        name: Term,
        /// The process holding it.
        holder: Pid,
    },
    /// A node registers names only for its own processes.
    #[error("{0} is not a process of this node; register it from its own node")]
    NotLocal(Pid),
    /// The process is not alive.
    #[error("{0} is not a live process; only running processes can hold a global name")]
    NotAlive(Pid),
    /// The name is held by a process of another node, which alone can withdraw it.
    #[error(
        "the global name {name} is held by {holder} on another node; unregister it there (or let the holder exit)"
    )]
    HeldElsewhere {
        /// The name.
        name: Term,
        /// The process holding it.
        holder: Pid,
    },
}

/// Why a process-group operation failed (README, "Process groups").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// Process groups are part of distribution; this node runs local-only.
    #[error("this node is not distributed (SNOW_NODE is unset), and process groups need distribution")]
    NotDistributed,
    /// The scope is not running on this node.
    #[error("process-group scope {0} is not running on this node; call start_scope first")]
    NoScope(Atom),
    /// Only a node's own processes join its groups or subscribe to them (as in Erlang's `pg`).
    #[error("{0} is not a process of this node; join or subscribe it from its own node")]
    NotLocal(Pid),
    /// The process is not alive.
    #[error("{0} is not a live process; only running processes join groups or subscribe")]
    NotAlive(Pid),
    /// None of the processes was a member of the group (pg's `not_joined`).
    #[error("none of the processes is a member of group {0}")]
    NotJoined(Term),
}

/// Why spawning a function by name failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpawnError {
    /// The function is not on this node's allow-list.
    #[error("no function named {0:?} is registered as spawnable on this node; call register_spawnable first")]
    NotSpawnable(String),
}

/// Why a distribution operation failed. Cheap to clone (shared with every waiter of a connection
/// attempt).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DistError {
    /// This node runs local-only.
    #[error("this node is not distributed (SNOW_NODE is unset); start it with SNOW_NODE=name and a cookie")]
    NotDistributed,
    /// snow-epmd does not know the node.
    #[error("{0} is not registered with snow-epmd; is it running, and do both nodes use snow-epmd daemons that gossip with each other?")]
    NotRegistered(NodeName),
    /// snow-epmd knows the node but says it is down.
    #[error("snow-epmd lists {0} as down; start it again")]
    NodeDown(NodeName),
    /// snow-epmd could not be asked.
    #[error("cannot look up {node}: {reason}")]
    Epmd {
        /// The node looked up.
        node: NodeName,
        /// The client error, as text.
        reason: String,
    },
    /// TCP, TLS or the cookie handshake failed.
    #[error("cannot connect to {node} at {addr}: {reason}")]
    Connect {
        /// The node.
        node: NodeName,
        /// The address dialed.
        addr: String,
        /// What failed.
        reason: String,
    },
    /// A recent attempt failed and the node is in its backoff period.
    #[error("{node} was unreachable moments ago; the next attempt is allowed in {retry_in:?}")]
    Backoff {
        /// The node.
        node: NodeName,
        /// Time until the next attempt is allowed.
        retry_in: Duration,
    },
    /// The connection went down before the operation completed.
    #[error("the connection to {0} went down")]
    ConnectionLost(NodeName),
    /// No answer in time.
    #[error("{0} did not answer in time")]
    Timeout(NodeName),
    /// The node is shutting down.
    #[error("this node is shutting down")]
    ShuttingDown,
}

/// Why [`Process::try_send`](crate::Process::try_send) did not queue a message.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum TrySendError {
    /// The connection to the receiver's node is at its byte budget; the message is handed back.
    /// Retry later or use [`Process::send_async`](crate::Process::send_async), which waits.
    #[error("the connection to {node} is busy (its send queue is full); retry later or use send_async")]
    Busy {
        /// The receiver's node.
        node: NodeName,
        /// The message that was not sent.
        msg: Term,
    },
}

/// Why a remote spawn failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RemoteSpawnError {
    /// The node could not be reached.
    #[error(transparent)]
    Dist(#[from] DistError),
    /// The remote node refused: the function is not on its allow-list (`register_spawnable`).
    #[error(
        "{node} refused to spawn {function:?}: {reason}; the function must be registered there with register_spawnable"
    )]
    Refused {
        /// The node asked.
        node: NodeName,
        /// The function asked for.
        function: String,
        /// The node's reason.
        reason: Term,
    },
    /// The remote node does not support remote spawn (capability not negotiated).
    #[error("{0} does not support remote spawn")]
    Unsupported(NodeName),
}

/// Why a remote call ([`Process::call`](crate::Process::call), [`Node::call`](crate::Node::call),
/// `cast`, `multicall`) did not return a value (README, "Remote calls"). Erlang's `erpc` raises
/// the same cases: `{erpc, noconnection}`, `{erpc, timeout}`, `{exit, Reason}`/`{error, ...}`,
/// `{erpc, notsup}`.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CallError {
    /// This node runs local-only, and the call is for another node.
    #[error("this node is not distributed (SNOW_NODE is unset), so it cannot call {0}; start it with SNOW_NODE and a cookie")]
    NotDistributed(NodeName),
    /// The node refused: the function is not on its allow-list.
    #[error("{node} refused to run {function:?}: {reason}; register it there with register_spawnable (calls run only allow-listed functions)")]
    NotSpawnable {
        /// The node asked.
        node: NodeName,
        /// The function asked for.
        function: String,
        /// The node's reason.
        reason: Term,
    },
    /// The node could not be reached, or the connection was lost before the result came (the
    /// function may or may not have run there).
    #[error("no result from {node}: {source}; the function may or may not have run there: retry only if it is safe to run twice")]
    NoConnection {
        /// The node asked.
        node: NodeName,
        /// What happened to the connection.
        source: DistError,
    },
    /// No result within the timeout; the process running the function was killed, and a result
    /// that still comes is dropped.
    #[error("{function:?} on {node} did not return within {after:?}; it was killed. Raise the timeout, or make the function return sooner")]
    Timeout {
        /// The node asked.
        node: NodeName,
        /// The function called.
        function: String,
        /// The timeout.
        after: Duration,
    },
    /// The function did not return: its process exited with `reason` (an exit signal, its own
    /// exit, or a panic as `{:panic, "message"}`).
    #[error("{function:?} on {node} exited with {reason} instead of returning")]
    Exit {
        /// The node asked.
        node: NodeName,
        /// The function called.
        function: String,
        /// The exit reason.
        reason: Term,
    },
    /// The node does not support remote calls (an older build, or a host without them).
    #[error("{0} does not support remote calls (an older build, or a host without them); use spawn_monitor_remote and a reply message instead")]
    Unsupported(NodeName),
}

impl CallError {
    /// The node the call was for.
    pub fn node(&self) -> &NodeName {
        match self {
            CallError::NotDistributed(node) | CallError::Unsupported(node) => node,
            CallError::NotSpawnable { node, .. }
            | CallError::NoConnection { node, .. }
            | CallError::Timeout { node, .. }
            | CallError::Exit { node, .. } => node,
        }
    }
}
