//! Authentication of gossip messages between snow-epmd daemons (PROTOCOL.md 5.4).
//!
//! A sealed message is
//! `version (2) | time_ms u64 | nonce [16] | reply_to [16] | recipient str16 | body | mac [32]`
//! where `mac = HMAC-SHA256(gossip_key, "snow-gossip-v2" || everything before mac)` and
//! `gossip_key` is [`crate::cookie::derive_key`] with [`crate::cookie::KeyLabel::Gossip`]. The
//! receiver checks, in this order: the MAC (constant-time), that the recipient is its own id (a
//! message replayed to another daemon is refused; only a request may name no recipient, and then
//! it must be a probe), that `time_ms` is within the window of its own clock, that the nonce was
//! not seen within the window (replay), and for replies that `reply_to` is the nonce of the
//! request it sent. Anything failing changes nothing.

use std::collections::{HashMap, VecDeque};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::wire::Reader;

/// Current envelope version.
pub const ENVELOPE_VERSION: u8 = 2;
/// Bytes the envelope adds around the body, besides the recipient id.
pub const ENVELOPE_OVERHEAD: usize = 1 + 8 + 16 + 16 + 2 + 32;
const MAC_CONTEXT: &[u8] = b"snow-gossip-v2";

/// Why a sealed message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Shorter than the envelope.
    #[error("gossip message too short to be authenticated")]
    Truncated,
    /// Unknown envelope version.
    #[error("gossip envelope version {0} is not supported")]
    BadVersion(u8),
    /// The MAC does not match: another cookie, or tampering.
    #[error("gossip MAC mismatch (different cookie or tampered message)")]
    BadMac,
    /// The timestamp is outside the accepted window.
    #[error(
        "gossip timestamp is {skew_ms} ms away from this daemon's clock (window {window_ms} ms); check clock sync"
    )]
    OutsideWindow {
        /// Signed difference (message time minus our time).
        skew_ms: i64,
        /// The window.
        window_ms: u64,
    },
    /// The nonce was already used within the window.
    #[error("replayed gossip message")]
    Replayed,
    /// A reply that does not answer our request.
    #[error("gossip reply does not answer this daemon's request")]
    WrongReply,
    /// Addressed to another daemon (or, for a reply, to nobody).
    #[error("gossip message addressed to another daemon ({0:?})")]
    WrongRecipient(String),
    /// Too many nonces in the replay cache within the window.
    #[error("gossip replay cache is full; message refused")]
    ReplayCacheFull,
}

/// A message that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened<'a> {
    /// The authenticated body.
    pub body: &'a [u8],
    /// Its nonce (a reply must carry it as `reply_to`).
    pub nonce: [u8; 16],
    /// It named no recipient (allowed for requests only; the gossip layer then requires a probe).
    pub anonymous: bool,
}

/// Seals and opens gossip messages with one key, and remembers recent nonces.
#[derive(Clone)]
pub struct Authenticator {
    key: [u8; 32],
    window_ms: u64,
    max_nonces: usize,
    seen: HashMap<[u8; 16], u64>,
    order: VecDeque<([u8; 16], u64)>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").field("window_ms", &self.window_ms).finish_non_exhaustive()
    }
}

impl Authenticator {
    /// An authenticator with the derived gossip key, the accepted clock window (ms) and the most
    /// nonces remembered at once.
    pub fn new(key: [u8; 32], window_ms: u64, max_nonces: usize) -> Authenticator {
        Authenticator { key, window_ms, max_nonces, seen: HashMap::new(), order: VecDeque::new() }
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        m.update(MAC_CONTEXT);
        m
    }

    /// Seals `body` for the daemon `recipient` (empty: any, for a probe) at wall-clock `now_ms`
    /// with a fresh random `nonce` from the caller; `reply_to` is the nonce of the request being
    /// answered (zeros for a request).
    pub fn seal(&self, body: &[u8], now_ms: u64, nonce: [u8; 16], reply_to: [u8; 16], recipient: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len() + ENVELOPE_OVERHEAD + recipient.len());
        out.push(ENVELOPE_VERSION);
        out.extend_from_slice(&now_ms.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&reply_to);
        super::wire::put_bytes16(&mut out, recipient.as_bytes());
        out.extend_from_slice(body);
        let mut m = self.mac();
        m.update(&out);
        out.extend_from_slice(&m.finalize().into_bytes());
        out
    }

    /// Checks a sealed message received by daemon `me` at wall-clock `now_ms`. `expect_reply_to`
    /// is `Some(nonce)` when this is the reply to our request with that nonce.
    pub fn open<'a>(
        &mut self,
        sealed: &'a [u8],
        now_ms: u64,
        expect_reply_to: Option<[u8; 16]>,
        me: &str,
    ) -> Result<Opened<'a>, AuthError> {
        if sealed.len() < ENVELOPE_OVERHEAD {
            return Err(AuthError::Truncated);
        }
        let (signed, tag) = sealed.split_at(sealed.len() - 32);
        let mut m = self.mac();
        m.update(signed);
        m.verify_slice(tag).map_err(|_| AuthError::BadMac)?;
        let mut r = Reader::new(signed);
        let version = r.u8().map_err(|_| AuthError::Truncated)?;
        if version != ENVELOPE_VERSION {
            return Err(AuthError::BadVersion(version));
        }
        let time = r.u64().map_err(|_| AuthError::Truncated)?;
        let mut nonce = [0u8; 16];
        nonce.copy_from_slice(r.take(16).map_err(|_| AuthError::Truncated)?);
        let mut reply_to = [0u8; 16];
        reply_to.copy_from_slice(r.take(16).map_err(|_| AuthError::Truncated)?);
        let recipient = r.bytes16().map_err(|_| AuthError::Truncated)?;
        let anonymous = recipient.is_empty() && expect_reply_to.is_none();
        if recipient != me.as_bytes() && !anonymous {
            return Err(AuthError::WrongRecipient(String::from_utf8_lossy(recipient).into_owned()));
        }
        let skew = time as i128 - now_ms as i128;
        if skew.unsigned_abs() > u128::from(self.window_ms) {
            let skew_ms = skew.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
            return Err(AuthError::OutsideWindow { skew_ms, window_ms: self.window_ms });
        }
        match expect_reply_to {
            Some(expected) if expected != reply_to => return Err(AuthError::WrongReply),
            None if reply_to != [0u8; 16] => return Err(AuthError::WrongReply),
            _ => {}
        }
        self.forget_before(now_ms.saturating_sub(2 * self.window_ms));
        if self.seen.contains_key(&nonce) {
            return Err(AuthError::Replayed);
        }
        if self.seen.len() >= self.max_nonces {
            return Err(AuthError::ReplayCacheFull);
        }
        self.seen.insert(nonce, now_ms);
        self.order.push_back((nonce, now_ms));
        Ok(Opened { body: r.rest(), nonce, anonymous })
    }

    fn forget_before(&mut self, cutoff: u64) {
        while let Some(&(nonce, at)) = self.order.front() {
            if at >= cutoff {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&nonce);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(key: u8) -> Authenticator {
        Authenticator::new([key; 32], 30_000, 4)
    }

    #[test]
    fn round_trip_and_test_vector() {
        let a = auth(7);
        let sealed = a.seal(b"hi", 1_000_000, [1; 16], [0; 16], "b:1");
        // PROTOCOL.md 5.6: key = 32 x 0x07.
        let hex: String = sealed.iter().map(|b| format!("{b:02x}")).collect();
        let head = format!("0200000000000f4240{}{}0003623a316869", "01".repeat(16), "00".repeat(16));
        assert!(hex.starts_with(&head), "{hex}");
        assert_eq!(sealed.len(), head.len() / 2 + 32);
        let mut b = auth(7);
        let opened = b.open(&sealed, 1_000_500, None, "b:1").unwrap();
        assert_eq!((opened.body, opened.nonce, opened.anonymous), (&b"hi"[..], [1; 16], false));
    }

    #[test]
    fn wrong_key_tamper_replay_and_window_are_refused() {
        let a = auth(7);
        let sealed = a.seal(b"hi", 1_000_000, [1; 16], [0; 16], "b:1");
        assert_eq!(auth(8).open(&sealed, 1_000_000, None, "b:1"), Err(AuthError::BadMac));
        let mut tampered = sealed.clone();
        tampered[45] ^= 1;
        assert_eq!(auth(7).open(&tampered, 1_000_000, None, "b:1"), Err(AuthError::BadMac));
        let mut b = auth(7);
        assert!(b.open(&sealed, 1_000_000, None, "b:1").is_ok());
        assert_eq!(b.open(&sealed, 1_000_001, None, "b:1"), Err(AuthError::Replayed));
        assert!(matches!(auth(7).open(&sealed, 1_040_000, None, "b:1"), Err(AuthError::OutsideWindow { .. })));
        assert_eq!(auth(7).open(&sealed[..10], 1_000_000, None, "b:1"), Err(AuthError::Truncated));
    }

    #[test]
    fn a_message_for_another_daemon_is_refused() {
        let a = auth(7);
        let sealed = a.seal(b"hi", 1_000_000, [1; 16], [0; 16], "b:1");
        assert_eq!(auth(7).open(&sealed, 1_000_000, None, "c:1"), Err(AuthError::WrongRecipient("b:1".into())));
        // A request may name nobody (a probe); a reply may not.
        let probe = a.seal(b"hi", 1_000_000, [2; 16], [0; 16], "");
        assert!(auth(7).open(&probe, 1_000_000, None, "c:1").unwrap().anonymous);
        let reply = a.seal(b"hi", 1_000_000, [3; 16], [9; 16], "");
        assert_eq!(auth(7).open(&reply, 1_000_000, Some([9; 16]), "c:1"), Err(AuthError::WrongRecipient("".into())));
    }

    #[test]
    fn replies_must_answer_our_nonce() {
        let a = auth(7);
        let reply = a.seal(b"ack", 5_000, [2; 16], [9; 16], "x:1");
        assert_eq!(auth(7).open(&reply, 5_000, Some([8; 16]), "x:1"), Err(AuthError::WrongReply));
        assert_eq!(auth(7).open(&reply, 5_000, None, "x:1"), Err(AuthError::WrongReply));
        assert!(auth(7).open(&reply, 5_000, Some([9; 16]), "x:1").is_ok());
    }

    #[test]
    fn replay_cache_is_bounded_and_forgets_old_nonces() {
        let a = auth(7);
        let mut b = auth(7);
        for i in 0..4u8 {
            b.open(&a.seal(b"x", 100_000, [i; 16], [0; 16], "b:1"), 100_000, None, "b:1").unwrap();
        }
        let fifth = a.seal(b"x", 100_000, [9; 16], [0; 16], "b:1");
        assert_eq!(b.open(&fifth, 100_000, None, "b:1"), Err(AuthError::ReplayCacheFull));
        // After twice the window the old nonces are forgotten.
        assert!(b.open(&a.seal(b"x", 170_000, [9; 16], [0; 16], "b:1"), 170_000, None, "b:1").is_ok());
    }
}
