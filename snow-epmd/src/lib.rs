//! snow-epmd: Snow's discovery daemon (README "snow-epmd", PROTOCOL.md section 5) as a library.
//!
//! - [`serve`] starts a daemon in-process from a [`Config`] and returns a [`ServerHandle`] with the
//!   bound addresses and a clean shutdown; `main.rs` only parses flags ([`cli`]) and calls it. The
//!   daemon runs its tasks on its own threads, so `serve` may be awaited on any executor.
//! - [`client`] is the async client for registration, lookup and listing, used by the CLI and by
//!   snow-node-rt; it works on any executor (async-net sockets on async-io's reactor).
//! - [`handshake`] drives the node handshake over a TLS stream: the one driver nodes, `ping` and
//!   tests share.
//! - [`store`] keeps the table in sled, flushed before every acknowledgement; [`keys`] keeps the
//!   daemon's signing key and the pinned keys of other daemons.
//!
//! Modules by job, with no import cycles: `clock`, `io` (deadlines, reading requests) and
//! `listen` (sockets, open-file limit) depend on nothing else here; `state` (shared state,
//! per-source counters) on `store`; `lookup` and `gossip_driver` on `state` and `io`; `server` on
//! all of these; `client` on nothing of the daemon; `ping` on `client`; `cli` on everything.
//! The protocol itself (parsing, registration policy, the table, gossip, authentication) is the
//! sans-IO core in `snow_shared::epmd`; this crate moves bytes and time.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod client;
mod clock;
pub mod config;
pub mod exit;
mod gossip_driver;
pub mod handshake;
mod io;
pub mod keys;
pub mod listen;
mod lookup;
pub mod ping;
pub mod ratelimit;
pub mod server;
mod state;
pub mod store;

pub use clock::now_ms;
pub use config::{Config, Listen};
pub use server::{serve, ServeError, ServerHandle};
