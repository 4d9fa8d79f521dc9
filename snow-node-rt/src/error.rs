//! Error types of the process layer. Each message says what to do about it.

use snow_shared::{Atom, Pid};

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
}

/// Why spawning a function by name failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpawnError {
    /// The function is not on this node's allow-list.
    #[error("no function named {0:?} is registered as spawnable on this node; call register_spawnable first")]
    NotSpawnable(String),
}
