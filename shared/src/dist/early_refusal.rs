//! Refusing a duplicate connection before TLS (PROTOCOL.md 4.2.4): when two nodes dial each other
//! at once, the lower name's connection is kept (see
//! [`keep_initiated`](super::handshake::keep_initiated)). Decided after the cookie handshake, the
//! other connection has cost both nodes a TLS handshake and a key exchange for nothing; while a
//! mesh forms, that was a third of all connections made. So the dialer names itself in its TLS
//! ClientHello (an ALPN protocol `snow-dist-from/<node name>`), and an acceptor that is dialing
//! that node itself, and whose own connection will be kept, answers with a fatal `access_denied`
//! alert at once instead of a ServerHello. The dialer reads the alert as the `Duplicate` verdict
//! and waits for the acceptor's connection, as it does when the verdict comes after the
//! handshake.
//!
//! The name in the ClientHello is not authenticated: a peer that claims another node's name gets
//! only its own connection refused, and only while this node is dialing that node. Acceptors that
//! do not look at it (no ALPN configured) ignore it, so nodes without this still connect.

use std::collections::HashMap;

use rustls::AlertDescription;

use crate::name::NodeName;

/// Prefix of the ALPN protocol that names the dialer.
pub const ALPN_PREFIX: &[u8] = b"snow-dist-from/";

/// The refusal: a TLS plaintext alert record (type 21, legacy version 3.3, length 2) at level
/// fatal (2), description `access_denied` (49). A TLS server may send it in answer to a
/// ClientHello; rustls reports it to the dialer as `AlertReceived(AccessDenied)`.
pub const REFUSAL_RECORD: [u8; 7] = [21, 3, 3, 0, 2, 2, 49];

/// The ALPN protocol that names `dialer`, or `None` if the name does not fit (an ALPN protocol
/// is at most 255 bytes): such a dialer's duplicates are refused after the handshake instead.
pub fn alpn_naming(dialer: &NodeName) -> Option<Vec<u8>> {
    let name = dialer.as_str().as_bytes();
    let len = ALPN_PREFIX.len() + name.len();
    (len <= 255).then(|| [ALPN_PREFIX, name].concat())
}

/// The node a ClientHello's ALPN protocols name as the dialer, if one does (and is a valid node
/// name).
pub fn named_dialer<'a>(mut protocols: impl Iterator<Item = &'a [u8]>) -> Option<NodeName> {
    protocols.find_map(|p| {
        let name = p.strip_prefix(ALPN_PREFIX)?;
        NodeName::parse(std::str::from_utf8(name).ok()?).ok()
    })
}

/// Whether a dial's TLS failure is the acceptor's refusal of a duplicate.
pub fn is_refusal(err: &rustls::Error) -> bool {
    matches!(err, rustls::Error::AlertReceived(AlertDescription::AccessDenied))
}

/// The nodes whose connections to this node are in their TLS or cookie handshake, by the name
/// their ClientHello gave. A node about to dial a name from a node list holds off while that node
/// is connecting to it already: the other duplicate, the one the early refusal cannot catch
/// (this node started dialing after the other's ClientHello arrived). The name is not
/// authenticated and the handshake may fail, so a dial held off is not dropped: when the last
/// such handshake ends, [`ClaimedDialers::remove`] says the node is still wanted. Holds at most
/// one entry per running handshake (the listener's admission bounds those).
#[derive(Debug, Default)]
pub struct ClaimedDialers {
    running: HashMap<NodeName, Claimed>,
}

#[derive(Debug)]
struct Claimed {
    handshakes: usize,
    /// A node list named the node while its handshake ran.
    wanted: bool,
}

impl ClaimedDialers {
    /// A handshake from a connection that named `dialer` started.
    pub fn add(&mut self, dialer: &NodeName) {
        self.running.entry(dialer.clone()).or_insert(Claimed { handshakes: 0, wanted: false }).handshakes += 1;
    }

    /// That handshake ended (however). `true` if it was the last one from `dialer` and a node
    /// list wanted `dialer` meanwhile: dial it now, unless it is connected by then.
    pub fn remove(&mut self, dialer: &NodeName) -> bool {
        let Some(claimed) = self.running.get_mut(dialer) else { return false };
        claimed.handshakes -= 1;
        if claimed.handshakes > 0 {
            return false;
        }
        self.running.remove(dialer).is_some_and(|c| c.wanted)
    }

    /// A node list names `node`: `true` (hold the dial off, it is remembered) if a connection
    /// naming `node` is in its handshake.
    pub fn hold_off(&mut self, node: &NodeName) -> bool {
        match self.running.get_mut(node) {
            Some(claimed) => {
                claimed.wanted = true;
                true
            }
            None => false,
        }
    }

    /// Names with a handshake running.
    pub fn len(&self) -> usize {
        self.running.len()
    }

    /// Whether no handshake that named its dialer is running.
    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> NodeName {
        NodeName::parse(text).unwrap()
    }

    #[test]
    fn the_dialer_is_named_and_read_back() {
        let alpn = alpn_naming(&name("alice@host1")).unwrap();
        assert_eq!(alpn, b"snow-dist-from/alice@host1");
        let protocols = [b"h2".as_slice(), alpn.as_slice()];
        assert_eq!(named_dialer(protocols.into_iter()), Some(name("alice@host1")));
    }

    #[test]
    fn other_protocols_and_bad_names_name_nobody() {
        assert_eq!(named_dialer([b"h2".as_slice(), b"http/1.1".as_slice()].into_iter()), None);
        assert_eq!(named_dialer([b"snow-dist-from/".as_slice()].into_iter()), None);
        assert_eq!(named_dialer([b"snow-dist-from/no-host".as_slice()].into_iter()), None);
        assert_eq!(named_dialer([b"snow-dist-from/\xff@h".as_slice()].into_iter()), None);
        assert_eq!(named_dialer(std::iter::empty()), None);
    }

    #[test]
    fn a_dial_held_off_is_wanted_when_the_last_handshake_ends() {
        let mut claims = ClaimedDialers::default();
        let (a, b) = (name("alice@host1"), name("bob@host2"));
        assert!(!claims.hold_off(&a), "nothing runs from alice");
        claims.add(&a);
        claims.add(&a);
        claims.add(&b);
        assert!(claims.hold_off(&a));
        assert!(!claims.remove(&a), "one handshake from alice still runs");
        assert!(claims.remove(&a), "alice was wanted meanwhile");
        assert!(!claims.remove(&b), "nobody wanted bob");
        assert!(claims.is_empty());
        assert!(!claims.remove(&a));
        assert_eq!(claims.len(), 0);
    }

    #[test]
    fn a_client_reads_the_refusal_record_as_a_refusal() {
        let config = crate::dist::tls::client_only_config().unwrap();
        let server = rustls::pki_types::ServerName::try_from("snow").unwrap();
        let mut client = rustls::ClientConnection::new(config, server).unwrap();
        let mut hello = Vec::new();
        client.write_tls(&mut hello).unwrap();
        client.read_tls(&mut REFUSAL_RECORD.as_slice()).unwrap();
        let err = client.process_new_packets().unwrap_err();
        assert!(is_refusal(&err), "{err:?}");
        assert!(!is_refusal(&rustls::Error::AlertReceived(AlertDescription::HandshakeFailure)));
    }
}
