//! SPAKE2 over the Ed25519 group, as PROTOCOL.md 4.2.2 specifies it (the construction and
//! constants of python-spake2 and of the Rust `spake2` crate 0.4, whose messages and keys it
//! reproduces byte for byte: the vectors of PROTOCOL.md 4.2.5 pin that down).
//!
//! Why not that crate: it multiplies every point, the generator included, with the
//! variable-base algorithm, four times per side and connection. Here the three fixed points
//! (`G`, `M`, `N`) are multiplied through precomputed tables, built once per process, and the
//! key `Kp = x·(Y − w·N)` is computed as `x·Y − (x·w)·N`: one variable-base multiplication per
//! side instead of four. A mesh forms with one handshake per pair of nodes, so this is most of
//! the handshake's cost (README, "Benchmarks", mesh). All multiplications are constant-time.
//!
//! The rewrite of `Kp` is exact because `N` and `M` lie in the prime-order subgroup (a test
//! checks it): there `(x·w mod ℓ)·N = x·(w·N)`. The peer's point `Y` is multiplied by `x`
//! directly, so whatever small-order component it carries is treated as the crate treats it.

use std::sync::OnceLock;

use curve25519_dalek::constants::ED25519_BASEPOINT_TABLE;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsBasepointTable, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::BasepointTable;
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// `M`, the blinding point of side `A` (the initiator), compressed.
const M: [u8; 32] = [
    0x15, 0xcf, 0xd1, 0x8e, 0x38, 0x59, 0x52, 0x98, 0x2b, 0x6a, 0x8f, 0x8c, 0x78, 0x54, 0x96, 0x3b, 0x58, 0xe3, 0x43,
    0x88, 0xc8, 0xe6, 0xda, 0xe8, 0x91, 0xdb, 0x75, 0x64, 0x81, 0xa0, 0x23, 0x12,
];
/// `N`, the blinding point of side `B` (the acceptor), compressed.
const N: [u8; 32] = [
    0xf0, 0x4f, 0x2e, 0x7e, 0xb7, 0x34, 0xb2, 0xa8, 0xf8, 0xb4, 0x72, 0xea, 0xf9, 0xc3, 0xc6, 0x32, 0x57, 0x6a, 0xc6,
    0x4a, 0xea, 0x65, 0x0b, 0x49, 0x6a, 0x8a, 0x20, 0xff, 0x00, 0xe5, 0x83, 0xc3,
];
/// The side byte of side `A`'s message (`'A'`).
const SIDE_A: u8 = 0x41;
/// The side byte of side `B`'s message (`'B'`).
const SIDE_B: u8 = 0x42;
/// Length of a message: the side byte and a compressed point.
pub(crate) const MESSAGE_LEN: usize = 33;

/// Which side of the exchange: `A` blinds with `M`, `B` with `N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    A,
    B,
}

impl Role {
    fn side_byte(self) -> u8 {
        match self {
            Role::A => SIDE_A,
            Role::B => SIDE_B,
        }
    }
}

/// Why a peer's message cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Spake2Error {
    /// The message is not 33 bytes.
    WrongLength,
    /// It carries our own side byte (a reflection, or a peer playing our role).
    BadSide,
    /// Its point does not decompress.
    CorruptMessage,
}

/// The tables of the two blinding points, built on first use.
struct Tables {
    m: EdwardsBasepointTable,
    n: EdwardsBasepointTable,
}

/// Builds the tables now (about 2 ms, once per process) if they are not built yet.
pub(crate) fn prepare() {
    tables();
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| Tables {
        m: EdwardsBasepointTable::create(&point(&M)),
        n: EdwardsBasepointTable::create(&point(&N)),
    })
}

/// A constant point. The constants are valid encodings (a test checks both).
fn point(bytes: &[u8; 32]) -> EdwardsPoint {
    CompressedEdwardsY(*bytes).decompress().unwrap_or_else(|| unreachable!("M and N are valid points"))
}

/// `w`: the password as a scalar (HKDF-SHA256, info "SPAKE2 pw", 48 bytes read big-endian, mod ℓ).
fn password_scalar(password: &[u8]) -> Scalar {
    let mut okm = Zeroizing::new([0u8; 48]);
    Hkdf::<Sha256>::new(Some(b""), password)
        .expand(b"SPAKE2 pw", okm.as_mut_slice())
        .unwrap_or_else(|_| unreachable!("48 bytes is a valid HKDF-SHA256 output length"));
    let mut wide = Zeroizing::new([0u8; 64]);
    for (i, byte) in okm.iter().enumerate() {
        wide[47 - i] = *byte;
    }
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// One side's exchange, from its message to the shared key.
pub(crate) struct Spake2 {
    role: Role,
    /// The secret scalar (`x` for `A`, `y` for `B`).
    secret: Scalar,
    /// `w`.
    password: Scalar,
    /// `SHA-256(password) || SHA-256(idA) || SHA-256(idB)`, the start of the key's hash input.
    hashed_inputs: Zeroizing<[u8; 96]>,
    message: [u8; MESSAGE_LEN],
}

impl Drop for Spake2 {
    fn drop(&mut self) {
        self.secret.zeroize();
        self.password.zeroize();
    }
}

impl Spake2 {
    /// Starts `role`'s exchange: `secret_wide` (64 bytes, read little-endian, mod ℓ) is the
    /// secret scalar; `id_a` and `id_b` are the identities of sides `A` and `B`.
    pub(crate) fn start(role: Role, password: &[u8], id_a: &[u8], id_b: &[u8], secret_wide: &[u8; 64]) -> Spake2 {
        let secret = Scalar::from_bytes_mod_order_wide(secret_wide);
        let w = password_scalar(password);
        let blinding = match role {
            Role::A => &tables().m,
            Role::B => &tables().n,
        };
        let element = ED25519_BASEPOINT_TABLE.mul_base(&secret) + blinding.mul_base(&w);
        let mut message = [0u8; MESSAGE_LEN];
        message[0] = role.side_byte();
        message[1..].copy_from_slice(element.compress().as_bytes());
        let mut hashed_inputs = Zeroizing::new([0u8; 96]);
        hashed_inputs[..32].copy_from_slice(&Sha256::digest(password));
        hashed_inputs[32..64].copy_from_slice(&Sha256::digest(id_a));
        hashed_inputs[64..].copy_from_slice(&Sha256::digest(id_b));
        Spake2 { role, secret, password: w, hashed_inputs, message }
    }

    /// Our message (`MESSAGE_LEN` bytes: side byte, compressed point).
    pub(crate) fn message(&self) -> &[u8; MESSAGE_LEN] {
        &self.message
    }

    /// The shared key `K` from the peer's message.
    pub(crate) fn finish(self, peer: &[u8]) -> Result<Zeroizing<[u8; 32]>, Spake2Error> {
        let peer: &[u8; MESSAGE_LEN] = peer.try_into().map_err(|_| Spake2Error::WrongLength)?;
        let (expected_side, unblinding) = match self.role {
            Role::A => (SIDE_B, &tables().n),
            Role::B => (SIDE_A, &tables().m),
        };
        if peer[0] != expected_side {
            return Err(Spake2Error::BadSide);
        }
        let mut compressed = [0u8; 32];
        compressed.copy_from_slice(&peer[1..]);
        let peer_point = CompressedEdwardsY(compressed).decompress().ok_or(Spake2Error::CorruptMessage)?;
        // Kp = secret·(peer − w·blinding) = secret·peer − (secret·w)·blinding.
        let mut product = self.secret * self.password;
        let kp = peer_point * self.secret - unblinding.mul_base(&product);
        product.zeroize();
        let (first, second) = match self.role {
            Role::A => (&self.message[1..], &peer[1..]),
            Role::B => (&peer[1..], &self.message[1..]),
        };
        let mut hash = Sha256::new();
        hash.update(self.hashed_inputs.as_slice());
        hash.update(first);
        hash.update(second);
        hash.update(kp.compress().as_bytes());
        Ok(Zeroizing::new(hash.finalize().into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blinding_points_are_valid_and_in_the_prime_order_subgroup() {
        // What makes x·(Y − w·N) = x·Y − (x·w mod ℓ)·N exact.
        for bytes in [M, N] {
            let p = CompressedEdwardsY(bytes).decompress().expect("a valid point");
            assert!(p.is_torsion_free());
            assert!(!p.is_small_order());
        }
    }

    #[test]
    fn both_sides_agree_with_one_password_and_not_with_two() {
        let a = Spake2::start(Role::A, b"pw", b"alice", b"bob", &[7; 64]);
        let b = Spake2::start(Role::B, b"pw", b"alice", b"bob", &[9; 64]);
        let (a_msg, b_msg) = (a.message().to_vec(), b.message().to_vec());
        assert_eq!(*a.finish(&b_msg).unwrap(), *b.finish(&a_msg).unwrap());
        let a = Spake2::start(Role::A, b"pw", b"alice", b"bob", &[7; 64]);
        let b = Spake2::start(Role::B, b"other", b"alice", b"bob", &[9; 64]);
        let (a_msg, b_msg) = (a.message().to_vec(), b.message().to_vec());
        assert_ne!(*a.finish(&b_msg).unwrap(), *b.finish(&a_msg).unwrap());
    }

    #[test]
    fn the_key_is_the_one_of_the_unrewritten_formula() {
        // Kp computed as the specification writes it, with plain multiplications.
        let (x, y) = (Scalar::from_bytes_mod_order_wide(&[3; 64]), Scalar::from_bytes_mod_order_wide(&[5; 64]));
        let w = password_scalar(b"pw");
        let (m, n) = (point(&M), point(&N));
        let big_x = curve25519_dalek::constants::ED25519_BASEPOINT_POINT * x + m * w;
        let big_y = curve25519_dalek::constants::ED25519_BASEPOINT_POINT * y + n * w;
        let kp = (big_y - n * w) * x;
        assert_eq!(kp, (big_x - m * w) * y);
        let a = Spake2::start(Role::A, b"pw", b"i", b"r", &[3; 64]);
        assert_eq!(&a.message()[1..], big_x.compress().as_bytes());
        let mut b_msg = vec![SIDE_B];
        b_msg.extend_from_slice(big_y.compress().as_bytes());
        let mut hash = Sha256::new();
        for part in [&Sha256::digest(b"pw")[..], &Sha256::digest(b"i")[..], &Sha256::digest(b"r")[..]] {
            hash.update(part);
        }
        hash.update(big_x.compress().as_bytes());
        hash.update(big_y.compress().as_bytes());
        hash.update(kp.compress().as_bytes());
        let want: [u8; 32] = hash.finalize().into();
        assert_eq!(*a.finish(&b_msg).unwrap(), want);
    }

    #[test]
    fn malformed_messages_are_refused() {
        let a = || Spake2::start(Role::A, b"pw", b"i", b"r", &[1; 64]);
        let own = a().message().to_vec();
        assert_eq!(a().finish(&own).err(), Some(Spake2Error::BadSide));
        assert_eq!(a().finish(&own[..32]).err(), Some(Spake2Error::WrongLength));
        let mut bad = vec![SIDE_B];
        // y = 2 has no x on the curve: not a valid encoding.
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        bad.extend_from_slice(&not_a_point);
        assert_eq!(a().finish(&bad).err(), Some(Spake2Error::CorruptMessage));
    }
}
