//! The cryptography of the node handshake (PROTOCOL.md 4.2.2): a balanced PAKE (SPAKE2 over
//! Ed25519, computed in `spake2.rs`) keyed by the cookie and bound to the TLS session, and the
//! key confirmations both sides exchange.
//!
//! Why a PAKE: with a MAC over a challenge (protocol version 1), whoever answered a dial received
//! a proof it could test cookie guesses against offline. With SPAKE2 each side sends one group
//! element that hides the key perfectly; a peer without the cookie can test exactly one guess per
//! connection (the one it ran the exchange with), online, and learns nothing that lets it test any
//! other. Binding (PROTOCOL.md 4.2.2):
//!
//! - the PAKE password is `HMAC-SHA256(key, "snow-dist-v2 password" || exporter)`: the cookie's
//!   derived key bound to this TLS session, so a relay between two TLS sessions runs two
//!   exchanges with different passwords, and the long-term key is never handed to the PAKE code;
//! - the SPAKE2 identities are the initiator's and the acceptor's node names (canonical text);
//! - each confirmation is `HMAC-SHA256(K, "snow-dist-v2" || role || exporter || transcript)`,
//!   with the role byte (0x01 initiator, 0x02 acceptor) against reflection, and the transcript
//!   hash covering both HELLOs and both PAKE messages, so nothing either side said can be altered.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use zeroize::Zeroizing;

use super::spake2::{Role, Spake2, Spake2Error};

use crate::cookie::DerivedKey;
use crate::name::NodeName;

/// Which side of the TCP connection we are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// We dialed.
    Initiator,
    /// We accepted.
    Acceptor,
}

impl Side {
    /// The role byte in the HMAC input of a key confirmation made by this side.
    pub fn proof_role(self) -> u8 {
        match self {
            Side::Initiator => 0x01,
            Side::Acceptor => 0x02,
        }
    }

    /// The other side of the connection.
    pub(crate) fn other(self) -> Side {
        match self {
            Side::Initiator => Side::Acceptor,
            Side::Acceptor => Side::Initiator,
        }
    }
}

/// Label of the PAKE password derivation.
pub const PASSWORD_LABEL: &[u8] = b"snow-dist-v2 password";
/// Label of the expansion of the caller's random bytes into the SPAKE2 scalar.
pub const SCALAR_LABEL: &[u8] = b"snow-dist-v2 scalar";
/// Label at the start of every key confirmation's HMAC input.
pub const CONFIRM_LABEL: &[u8] = b"snow-dist-v2";
/// Length of a SPAKE2 message: a side byte (`A` from the initiator, `B` from the acceptor) and a
/// compressed Edwards25519 point.
pub const PAKE_MESSAGE_LEN: usize = super::spake2::MESSAGE_LEN;
/// Length of a key confirmation (an HMAC-SHA256).
pub const CONFIRM_LEN: usize = 32;

/// Why the peer's PAKE message cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PakeError {
    /// It is our own message, or one made for our side (a reflection).
    Reflected,
    /// Its point does not decode.
    Corrupt,
}

/// Prepares what every key exchange of this process uses (the SPAKE2 tables: about 2 ms, once),
/// so the first handshakes do not pay for it. A node calls it while it starts; calling it is
/// optional and cheap after the first time.
pub fn prepare() {
    super::spake2::prepare();
}

/// One side's SPAKE2 exchange, from its first message to the shared key.
pub(crate) struct KeyExchange {
    state: Spake2,
}

impl KeyExchange {
    /// Starts the exchange for `side` with the cookie's `key`, bound to the TLS `exporter` and to
    /// both node names. `random` (32 bytes from a CSPRNG) is expanded into the secret scalar:
    /// the same bytes give the same message, which is what makes test vectors possible.
    pub(crate) fn start(
        side: Side,
        key: &DerivedKey,
        exporter: &[u8; 32],
        initiator: &NodeName,
        acceptor: &NodeName,
        random: &[u8; 32],
    ) -> KeyExchange {
        let password = session_password(key, exporter);
        let role = match side {
            Side::Initiator => Role::A,
            Side::Acceptor => Role::B,
        };
        let state = Spake2::start(
            role,
            password.as_slice(),
            initiator.as_str().as_bytes(),
            acceptor.as_str().as_bytes(),
            &secret_scalar_bytes(random),
        );
        KeyExchange { state }
    }

    /// Our message (`PAKE_MESSAGE_LEN` bytes).
    pub(crate) fn message(&self) -> &[u8] {
        self.state.message()
    }

    /// The shared key from the peer's message. A peer with another cookie (or another TLS
    /// session) ends up with another key, which the confirmations reveal.
    pub(crate) fn finish(self, peer: &[u8]) -> Result<SessionKey, PakeError> {
        if peer == self.message() {
            return Err(PakeError::Reflected);
        }
        match self.state.finish(peer) {
            Ok(key) => Ok(SessionKey(key)),
            Err(Spake2Error::BadSide) => Err(PakeError::Reflected),
            Err(Spake2Error::CorruptMessage | Spake2Error::WrongLength) => Err(PakeError::Corrupt),
        }
    }
}

/// The SPAKE2 output `K`, known to both sides when they used the same key and TLS session.
pub(crate) struct SessionKey(pub(crate) Zeroizing<[u8; 32]>);

impl SessionKey {
    /// The confirmation made by `role`, as a MAC state (finalize it to send, verify it to check).
    pub(crate) fn confirmation(&self, role: Side, exporter: &[u8; 32], transcript: &[u8; 32]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_slice()).unwrap_or_else(|_| {
            // HMAC takes keys of any length.
            unreachable!()
        });
        mac.update(CONFIRM_LABEL);
        mac.update(&[role.proof_role()]);
        mac.update(exporter);
        mac.update(transcript);
        mac
    }
}

/// The PAKE password of one TLS session: the cookie's derived key bound to the exporter.
pub(crate) fn session_password(key: &DerivedKey, exporter: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.expose_secret()).unwrap_or_else(|_| unreachable!());
    mac.update(PASSWORD_LABEL);
    mac.update(exporter);
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

/// The hash of the four messages that both confirmations cover: each as framed on the wire
/// (4-byte big-endian length, payload), in the order initiator's HELLO, acceptor's HELLO,
/// initiator's PAKE, acceptor's PAKE.
pub(crate) fn transcript_hash(messages: [&[u8]; 4]) -> [u8; 32] {
    let mut hash = Sha256::new();
    for message in messages {
        hash.update((message.len() as u32).to_be_bytes());
        hash.update(message);
    }
    hash.finalize().into()
}

/// The 64 bytes of the SPAKE2 secret scalar: `SHA-512(SCALAR_LABEL || random)`, so the caller's
/// 32 random bytes give a uniformly distributed scalar and fixed bytes a fixed one.
fn secret_scalar_bytes(random: &[u8; 32]) -> Zeroizing<[u8; 64]> {
    let mut bytes = Zeroizing::new([0u8; 64]);
    bytes.copy_from_slice(&Sha512::new().chain_update(SCALAR_LABEL).chain_update(random).finalize());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> NodeName {
        NodeName::parse(text).unwrap()
    }

    fn exchange(i_key: u8, a_key: u8, i_exp: u8, a_exp: u8) -> (KeyExchange, KeyExchange) {
        let (i, a) = (name("alice@host1"), name("bob@host2"));
        let ki =
            KeyExchange::start(Side::Initiator, &DerivedKey::from_bytes([i_key; 32]), &[i_exp; 32], &i, &a, &[3; 32]);
        let ka =
            KeyExchange::start(Side::Acceptor, &DerivedKey::from_bytes([a_key; 32]), &[a_exp; 32], &i, &a, &[4; 32]);
        (ki, ka)
    }

    fn keys(pair: (KeyExchange, KeyExchange)) -> ([u8; 32], [u8; 32]) {
        let (ki, ka) = pair;
        let (mi, ma) = (ki.message().to_vec(), ka.message().to_vec());
        (*ki.finish(&ma).unwrap().0, *ka.finish(&mi).unwrap().0)
    }

    #[test]
    fn same_key_and_session_agree_and_anything_else_disagrees() {
        let (i, a) = keys(exchange(7, 7, 1, 1));
        assert_eq!(i, a);
        let (i, a) = keys(exchange(7, 8, 1, 1));
        assert_ne!(i, a, "another cookie");
        let (i, a) = keys(exchange(7, 7, 1, 2));
        assert_ne!(i, a, "another TLS session (a relay)");
    }

    #[test]
    fn messages_are_deterministic_in_the_random_bytes_and_sided() {
        let (ki, ka) = exchange(7, 7, 1, 1);
        let (ki2, _) = exchange(7, 7, 1, 1);
        assert_eq!(ki.message(), ki2.message());
        assert_eq!(ki.message().len(), PAKE_MESSAGE_LEN);
        assert_eq!((ki.message()[0], ka.message()[0]), (b'A', b'B'));
    }

    #[test]
    fn reflected_and_corrupt_messages_are_refused() {
        let (ki, _) = exchange(7, 7, 1, 1);
        let own = ki.message().to_vec();
        assert_eq!(ki.finish(&own).err(), Some(PakeError::Reflected));
        let (ki, ka) = exchange(7, 7, 1, 1);
        let mut same_side = ka.message().to_vec();
        same_side[0] = b'A';
        assert_eq!(ki.finish(&same_side).err(), Some(PakeError::Reflected));
        let (ki, _) = exchange(7, 7, 1, 1);
        // y = 2 is not on the curve (no x exists), so the point does not decompress.
        let mut bad = vec![b'B', 2];
        bad.resize(PAKE_MESSAGE_LEN, 0);
        assert_eq!(ki.finish(&bad).err(), Some(PakeError::Corrupt));
    }

    #[test]
    fn confirmations_differ_by_role_exporter_and_transcript() {
        let key = SessionKey(Zeroizing::new([9; 32]));
        let mac = |role, exp: u8, t: u8| key.confirmation(role, &[exp; 32], &[t; 32]).finalize().into_bytes();
        let base = mac(Side::Initiator, 1, 1);
        assert_ne!(base, mac(Side::Acceptor, 1, 1));
        assert_ne!(base, mac(Side::Initiator, 2, 1));
        assert_ne!(base, mac(Side::Initiator, 1, 2));
        assert_eq!(base, mac(Side::Initiator, 1, 1));
    }
}
