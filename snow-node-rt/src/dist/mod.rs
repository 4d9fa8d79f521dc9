//! Distribution (DESIGN.md 3.2, 4.2, 4.5, 5): the async driver that turns a [`Node`] into a
//! member of a cluster. It moves bytes and time between sockets and the sans-IO protocol values
//! of [`snow_shared::dist`]; it reaches local processes only through the seam
//! ([`LocalProcesses`](crate::LocalProcesses) / [`RemoteRouter`](crate::RemoteRouter)).
//!
//! # Public API (stable)
//!
//! Starting:
//! - [`start_from_env`]`() -> Result<Node, StartError>`: `SNOW_NODE` & co. (DESIGN.md 4.2);
//!   local-only [`Node::local`] when `SNOW_NODE` is unset.
//! - [`NodeBuilder`]: the same settings in code (`new(name).cookie(c).epmd(addr)...start().await`).
//!
//! On [`Node`]: [`is_distributed`](Node::is_distributed) (Erlang `is_alive()`),
//! [`self_node`](Node::self_node), [`Node::node_of`], [`nodes`](Node::nodes),
//! [`connect`](Node::connect), [`disconnect`](Node::disconnect),
//! [`listen_addr`](Node::listen_addr), [`shutdown`](Node::shutdown), plus the local layer's
//! `send`, `register_spawnable`... Remote pids work with every existing operation
//! ([`Process::send`], `link`, `monitor`, `send_exit`, [`Process::send_named_on`]).
//!
//! On [`Process`]: [`send_async`](Process::send_async) (waits while the connection is congested),
//! [`try_send`](Process::try_send) (reports [`TrySendError::Busy`]),
//! [`send_to`](Process::send_to)`(name, "node@host", msg)`,
//! [`monitor_node`](Process::monitor_node) / [`demonitor_node`](Process::demonitor_node) (one
//! `{:nodedown, node}`, like Erlang's `monitor_node/2`), [`monitor_nodes`](Process::monitor_nodes)
//! (`{:nodeup, node}` and `{:nodedown, node}` for every node, like `net_kernel:monitor_nodes/1`),
//! [`spawn_remote`](Process::spawn_remote) / [`spawn_link_remote`](Process::spawn_link_remote) /
//! [`spawn_monitor_remote`](Process::spawn_monitor_remote), and from the local layer
//! [`monitor_name`](Process::monitor_name) for `{name, node}`.
//!
//! Errors: [`StartError`], [`DistError`], [`TrySendError`], [`RemoteSpawnError`].
//!
//! For a bare TLS + cookie handshake without a node (what `snow-epmd ping` does), see
//! [`snow_shared::dist::tls`]: it builds the rustls configurations and documents the sequence.
//!
//! # Guarantees
//! - Messages and signals from one process to another arrive in the order sent, including those
//!   queued while the connection was being set up.
//! - Nothing is dropped while a connection is up. [`Process::send`] never blocks: over the
//!   connection's byte budget it still queues and suspends the sender at its next `.await` until
//!   the queue drains; [`Process::send_async`] waits before queueing and [`Process::try_send`]
//!   says busy. A process that sends on without awaiting until the queue reaches its ceiling is
//!   stopped with `{:send_queue_overflow, node}`. Signals are never refused (README, "Guarantees").
//! - `{:nodeup, node}` reaches subscribers before anything that node sends on the connection, and
//!   `{:nodedown, node}` after it.
//! - Sends to a node that cannot be reached are dropped; links and monitors across a lost or
//!   failed connection fire `:noconnection`; a pid of a dead process or an older creation gives
//!   `:noproc` (the receiving node checks the creation).
//! - Exactly one connection per node pair, also on simultaneous connects.
//! - A peer from which nothing arrives for the ticktime is declared down, even if its socket
//!   stays open (frozen process, silently dropped packets).
//!
//! # Example
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use snow_node_rt::{dist, Term};
//! let node = dist::start_from_env().await?;
//! node.connect("other@db1.example.com").await?;
//! node.spawn(|mut me| async move {
//!     let hello = Term::tuple([Term::Pid(me.pid().clone()), Term::atom("hi")]);
//!     if me.send_to("echo", "other@db1.example.com", hello).is_ok() {
//!         let _answer = me.receive_timeout(std::time::Duration::from_secs(5)).await;
//!     }
//! });
//! # Ok(()) }
//! ```

mod api;
mod builder;
pub mod config;
mod connection;
mod core;
mod epmd;
mod error;
mod listener;
mod mesh;
mod router;
mod session;

pub use builder::{start_from_env, NodeBuilder};
pub use config::{ConfigError, DistConfig, TlsSource};
pub use error::{DistError, RemoteSpawnError, StartError, TrySendError};

#[allow(unused_imports)]
use crate::{Node, Process};
