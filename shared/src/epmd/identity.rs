//! A daemon's signing identity (Ed25519, ring): every snow-epmd daemon signs the entries it owns,
//! so that an entry relayed through other daemons is accepted only if its owner vouched for it
//! (README "Security", PROTOCOL.md 5.5). The driver generates the key once and keeps it in the
//! data directory; this module only signs and verifies bytes.

use std::sync::Arc;

use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

/// An Ed25519 public key (32 bytes), as pinned per daemon id.
pub type PublicKey = [u8; 32];
/// An Ed25519 signature (64 bytes).
pub type Signature = [u8; 64];

/// Checks `signature` over `message` by `key`. The daemon uses [`ed25519_verify`]; the gossip
/// simulation of 1,000 daemons swaps in a cheaper one (see `sim.rs`).
pub type Verifier = fn(key: &PublicKey, message: &[u8], signature: &Signature) -> bool;

/// Why a key could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The bytes are not an Ed25519 PKCS#8 document.
    #[error("not an Ed25519 key in PKCS#8 form: {0}")]
    BadKey(String),
}

/// A daemon's key pair. Cloning shares the key.
#[derive(Clone)]
pub struct Identity {
    pair: Arc<Ed25519KeyPair>,
    public: PublicKey,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("public", &format_args!("{}", super::wire::Hex(&self.public)))
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// The key pair in a PKCS#8 v2 document (what [`Ed25519KeyPair::generate_pkcs8`] makes).
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Identity, IdentityError> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| IdentityError::BadKey(e.to_string()))?;
        Ok(Identity::wrap(pair))
    }

    /// The key pair derived from a 32-byte seed (tests and simulations: deterministic keys).
    pub fn from_seed(seed: &[u8; 32]) -> Identity {
        // A 32-byte seed is always a valid Ed25519 private key.
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).unwrap_or_else(|_| unreachable!("32-byte seed"));
        Identity::wrap(pair)
    }

    fn wrap(pair: Ed25519KeyPair) -> Identity {
        let mut public = [0u8; 32];
        public.copy_from_slice(pair.public_key().as_ref());
        Identity { pair: Arc::new(pair), public }
    }

    /// The public key other daemons pin.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.pair.sign(message).as_ref());
        out
    }
}

/// Ed25519 verification (ring).
pub fn ed25519_verify(key: &PublicKey, message: &[u8], signature: &Signature) -> bool {
    UnparsedPublicKey::new(&ED25519, key).verify(message, signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_with_the_signers_key() {
        let a = Identity::from_seed(&[1; 32]);
        let b = Identity::from_seed(&[2; 32]);
        let sig = a.sign(b"entry");
        assert!(ed25519_verify(a.public_key(), b"entry", &sig));
        assert!(!ed25519_verify(b.public_key(), b"entry", &sig));
        assert!(!ed25519_verify(a.public_key(), b"entrY", &sig));
        assert!(Identity::from_pkcs8(b"not a key").is_err());
    }
}
