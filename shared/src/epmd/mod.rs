//! The snow-epmd protocol, sans-IO (PROTOCOL.md section 5).
//!
//! - [`wire`]: EPMD-compatible requests and replies (ALIVE2, PORT_PLEASE2, NAMES, DUMP, KILL, STOP)
//!   and Snow's extension requests (LOOKUP by full name, LIST, GOSSIP) on the same port, with an
//!   incremental request parser that rejects hostile input without panicking or over-allocating,
//!   the ALIVE2 refusal codes and the client's reply parsers.
//! - [`registry`]: the registration policy (loopback rule, per-source cap, Erlang's name limits,
//!   names outside Snow's rules kept at this daemon only).
//! - [`table`]: the node table with owner-authoritative, signed entries versioned by
//!   `(owner incarnation, counter)`, tombstones, the restart grace period, pinned daemon keys and
//!   the budgets (own, remote, per daemon, number of daemons).
//! - [`identity`]: a daemon's Ed25519 key, signing and verifying.
//! - [`gossip`]: push-pull anti-entropy (digests per owner, then deltas), key pinning on first
//!   contact, and its binary layout.
//! - [`auth`]: HMAC-SHA256 sealing of gossip messages with a recipient, a nonce and a time window.
//! - [`exchange`]: one gossip exchange over sealed bytes, initiator and responder.
//! - [`listing`]: the Snow LOOKUP and LIST replies.
//! - [`session`]: lookups answered from the table without allocating, and the pipelined lookup
//!   session (Snow request `Q`: many lookups over one connection).
//!
//! Nothing here reads a clock or touches a socket: time comes in as milliseconds, randomness as
//! seeds or bytes from the caller. The daemon in `snow-epmd` moves bytes and time in and out.

pub mod auth;
pub mod entry;
pub mod exchange;
pub mod gossip;
pub mod identity;
pub mod listing;
pub mod registry;
pub mod session;
pub mod table;
pub mod wire;

#[cfg(test)]
mod sim;
