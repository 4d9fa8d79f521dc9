//! The snow-epmd protocol, sans-IO (DESIGN.md 4.3, 4.7).
//!
//! - [`wire`]: EPMD-compatible requests and replies (ALIVE2, PORT_PLEASE2, NAMES, DUMP, KILL, STOP)
//!   and Snow's extension requests (LOOKUP by full name, LIST, GOSSIP) on the same port, with an
//!   incremental request parser that rejects hostile input without panicking or over-allocating.
//! - [`table`]: the node table with owner-authoritative entries versioned by
//!   `(owner incarnation, counter)`, tombstones, the restart grace period and the entry limit.
//! - [`gossip`]: push-pull anti-entropy (digests per owner, then deltas) and its binary layout.
//! - [`auth`]: HMAC-SHA256 sealing of gossip messages with a nonce and a time window.
//! - [`listing`]: the Snow LOOKUP and LIST replies.
//! - [`session`]: lookups answered from the table without allocating, and the pipelined lookup
//!   session (Snow request `Q`: many lookups over one connection).
//!
//! Nothing here reads a clock or touches a socket: time comes in as milliseconds, randomness as
//! seeds or bytes from the caller. The daemon in `snow-epmd` moves bytes and time in and out.

pub mod auth;
pub mod gossip;
pub mod listing;
pub mod session;
pub mod table;
pub mod wire;

#[cfg(test)]
mod sim;
