//! The local process layer: BEAM-style processes on this crate's scheduler, and this layer as the
//! [`Host`](crate::seam::Host) of the distribution layer (shared/ARCHITECTURE.md).
//!
//! - [`node`]: what a program calls on a [`Node`]; `node_state`: what a node's handles share.
//! - [`process`] / [`mailbox`]: [`Process`], the handle a process body gets.
//! - `entry`: one process's state, owned there (private fields, named operations).
//! - `table`: the live processes of a node, pid and reference numbers.
//! - `lifecycle`: a process's task, from its first poll to the exit procedure.
//! - `signals`: how one process's action reaches another, here or on another node.
//! - `registry`: local names; `aliases`: process aliases.
//! - `node_calls`: remote calls (`call`, `cast`, `multicall`) as a node or a process makes them.
//! - [`cluster`]: the global registry and process groups as a program uses them.
//! - `host`: this layer as the distribution layer's host.
//! - `start`: a local node with distribution (`NodeBuilder::start`, [`start_from_env`]).
//! - [`supervisor`]: OTP-style supervisors.

mod aliases;
pub(crate) mod cluster;
mod entry;
mod host;
mod lifecycle;
pub(crate) mod mailbox;
pub(crate) mod node;
mod node_calls;
mod node_state;
pub(crate) mod process;
mod registry;
mod signals;
mod start;
pub mod supervisor;
mod table;

pub use aliases::AliasMode;
pub use cluster::{GlobalRegistry, ProcessGroups};
pub use mailbox::{Receive, ReceiveMatch};
pub use node::{Node, Spawnable};
pub use process::{yield_now, Process};
pub use start::start_from_env;
pub use table::IdHasher;
