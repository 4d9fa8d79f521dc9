//! Distribution: the driver that makes a node a member of a cluster (shared/ARCHITECTURE.md). It moves
//! bytes and time between sockets and the sans-IO protocol values of [`snow_shared::dist`], and
//! reaches the node's processes only through the seam: it holds a [`Host`](crate::seam::Host)
//! and a [`Runtime`](crate::seam::Runtime), and offers the host a
//! [`Distribution`](crate::seam::Distribution). It never names this crate's `Node`, `Process`
//! or scheduler: [`NodeBuilder::start`] and [`start_from_env`](crate::start_from_env), which wire
//! a local [`Node`](crate::Node) to a fresh driver, are the local layer's.
//!
//! # Starting
//! - [`start_from_env`](crate::start_from_env)`() -> Result<Node, StartError>`: `SNOW_NODE` &
//!   co. (README, "Node environment"); a local-only [`Node::local`](crate::Node::local) when
//!   `SNOW_NODE` is unset.
//! - [`NodeBuilder`]: the same settings in code (`new(name).cookie(c).epmd(addr)...start().await`).
//! - A foreign host: [`NodeBuilder::prepare`] gives the name and creation; create the host with
//!   them, then [`Prepared::start`] with the host and a [`Runtime`](crate::seam::Runtime).
//!
//! The operations a program uses are methods of [`Node`](crate::Node) (`connect`, `nodes`,
//! `disconnect`, `shutdown`...) and [`Process`](crate::Process) (`send` to any pid,
//! `send_named_on`, `send_async`, `try_send`, `monitor_node`, `monitor_nodes`, `monitor_name`,
//! `spawn_remote`, `spawn_link_remote`, `spawn_monitor_remote`, `call`, `cast`, `multicall`,
//! `alias`, `send_alias`).
//!
//! Errors: [`StartError`], [`DistError`], [`TrySendError`], [`RemoteSpawnError`].
//!
//! # Guarantees
//! README, "Guarantees": per sender-receiver order, nothing dropped while a connection is up
//! (backpressure suspends senders; the ceiling stops a sender that never awaits), signals never
//! refused, `{:nodeup, n}` before and `{:nodedown, n}` after everything `n` sent on a connection,
//! links and monitors that always fire, one connection per node pair, silent peers declared down
//! after the ticktime.
//!
//! # Example
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use snow_node_rt::{NodeName, Term};
//! let node = snow_node_rt::start_from_env().await?;
//! let other: NodeName = "other@db1.example.com".parse()?;
//! node.connect(&other).await?;
//! node.spawn(move |mut me| async move {
//!     let hello = Term::tuple([Term::Pid(me.pid().clone()), Term::atom("hi")]);
//!     if me.send_named_on("echo", &other, hello).is_ok() {
//!         let _answer = me.receive_timeout(std::time::Duration::from_secs(5)).await;
//!     }
//! });
//! # Ok(()) }
//! ```

mod abandon;
mod builder;
mod call_table;
mod calls;
mod cluster;
pub mod config;
mod connection;
mod epmd;
mod epmd_lookup;
mod error;
mod link;
mod listener;
mod mesh;
mod reactions;
mod service;
mod setup;
mod state;

pub use builder::{NodeBuilder, Prepared};
pub use cluster::DEFAULT_SCOPE;
pub use config::{ConfigError, DistConfig, TlsSource};
pub use error::{DistError, RemoteSpawnError, StartError, TrySendError};
pub use snow_shared::cluster::global::ConflictNotice;
