//! One gossip exchange over sealed bytes, both sides (PROTOCOL.md 5.4, 5.5): what the daemon's
//! driver calls with the bytes it read, and what the simulation runs over its network. Each step
//! opens (MAC, recipient, window, replay, reply binding), decodes, applies through [`Gossip`] and
//! seals the answer; a step that fails changes nothing.
//!
//! Initiator: [`start`] (the Syn for a [`Target`]), then [`on_ack`] (the Ack; returns the Ack2).
//! Responder: [`on_syn`] (returns the Ack), then [`on_ack2`].

use super::auth::{AuthError, Authenticator};
use super::gossip::{self, Gossip, GossipError, Report, Target};
use super::table::DaemonId;
use super::wire::DecodeError;

/// Why a step of an exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    /// Authentication failed (another cookie, replay, another recipient, clock skew).
    #[error("authentication failed: {0}")]
    Auth(#[from] AuthError),
    /// The authenticated body does not decode.
    #[error("undecodable gossip: {0}")]
    Decode(#[from] DecodeError),
    /// The message was refused by the gossip state.
    #[error(transparent)]
    Gossip(#[from] GossipError),
}

/// The initiator's state between its Syn and the Ack.
#[derive(Debug, Clone)]
pub struct Started {
    /// The daemon dialed.
    pub peer: DaemonId,
    nonce: [u8; 16],
}

/// The responder's state between its Ack and the Ack2.
#[derive(Debug, Clone)]
pub struct Answered {
    /// The initiator, as its Syn names it.
    pub peer: DaemonId,
    nonce: [u8; 16],
}

/// Seals the Syn for `target` (a probe names no recipient). `nonce` is fresh randomness.
pub fn start(
    gossip: &mut Gossip,
    auth: &Authenticator,
    target: &Target,
    now: u64,
    nonce: [u8; 16],
) -> (Vec<u8>, Started) {
    let syn = gossip.syn_for(target);
    let recipient = if target.probe { "" } else { target.peer.as_str() };
    let sealed = auth.seal(&gossip::encode(&syn, now), now, nonce, [0; 16], recipient);
    (sealed, Started { peer: target.peer.clone(), nonce })
}

/// Opens the responder's Ack, applies it, and seals the Ack2 (with the Report of what changed).
pub fn on_ack(
    gossip: &mut Gossip,
    auth: &mut Authenticator,
    started: &Started,
    sealed: &[u8],
    now: u64,
    nonce: [u8; 16],
) -> Result<(Vec<u8>, Report), ExchangeError> {
    let opened = auth.open(sealed, now, Some(started.nonce), gossip.table().me())?;
    let ack = gossip::decode(opened.body, now)?;
    let (ack2, report) = gossip.handle_ack(&ack, &started.peer, now)?;
    let sealed = auth.seal(&gossip::encode(&ack2, now), now, nonce, opened.nonce, &ack.sender);
    Ok((sealed, report))
}

/// Opens a Syn that arrived as a GOSSIP request and seals the Ack.
pub fn on_syn(
    gossip: &mut Gossip,
    auth: &mut Authenticator,
    sealed: &[u8],
    now: u64,
    nonce: [u8; 16],
) -> Result<(Vec<u8>, Answered), ExchangeError> {
    let opened = auth.open(sealed, now, None, gossip.table().me())?;
    let syn = gossip::decode(opened.body, now)?;
    let ack = gossip.handle_syn(&syn, opened.anonymous)?;
    let sealed = auth.seal(&gossip::encode(&ack, now), now, nonce, opened.nonce, &syn.sender);
    Ok((sealed, Answered { peer: syn.sender, nonce }))
}

/// Opens the initiator's Ack2 and applies it.
pub fn on_ack2(
    gossip: &mut Gossip,
    auth: &mut Authenticator,
    answered: &Answered,
    sealed: &[u8],
    now: u64,
) -> Result<Report, ExchangeError> {
    let opened = auth.open(sealed, now, Some(answered.nonce), gossip.table().me())?;
    let ack2 = gossip::decode(opened.body, now)?;
    Ok(gossip.handle_ack2(&ack2, now)?)
}
