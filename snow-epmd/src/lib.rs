//! snow-epmd: Snow's discovery daemon (DESIGN.md 4.3, 4.7) as a library.
//!
//! - [`serve`] starts a daemon in-process from a [`Config`] and returns a [`ServerHandle`] with the
//!   bound address and a clean shutdown; `main.rs` only parses flags ([`cli`]) and calls it.
//! - [`client`] is the async client for registration, lookup and listing, used by the CLI and by
//!   snow-node-rt.
//! - [`store`] keeps the table in sled, flushed before every acknowledgement.
//!
//! The protocol itself (parsing, the table, gossip, authentication) is the sans-IO core in
//! `snow_shared::epmd`; this crate moves bytes and time.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod client;
pub mod config;
mod gossip_driver;
mod lookup;
pub mod ping;
pub mod ratelimit;
pub mod server;
pub mod store;

pub use config::Config;
pub use server::{serve, ServeError, ServerHandle};

/// Wall-clock milliseconds since the Unix epoch: the daemon's single time source (entry ages,
/// timers and the gossip replay window).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
