//! TLS 1.3 settings for node-to-node connections (PROTOCOL.md 4.1), shared by the node runtime and
//! `snow-epmd ping`.
//!
//! rustls is itself sans-IO, so building its configurations belongs here; the drivers wrap them in
//! futures-rustls. Two modes:
//!
//! - **Self-signed** ([`TlsMaterial::self_signed`]): a fresh certificate per node start (rcgen),
//!   and a verifier that accepts any peer certificate while still checking that the peer holds its
//!   key (the TLS 1.3 handshake signature). Peers are authenticated by the cookie proof of the
//!   handshake, which is bound to the session through [`exporter`], so a man in the middle fails.
//! - **CA-verified mutual TLS** ([`TlsMaterial::from_pem`], [`TlsMaterial::from_files`]): this
//!   node's certificate chain and key and the CA every peer's certificate must chain to; both sides
//!   present and verify certificates. The dialing side checks the acceptor's certificate against
//!   the host part of its node name ([`server_name`]), and both sides' handshakes check that the
//!   peer's certificate names the host of the node name it claims ([`channel_binding`]), so
//!   certificates must name their host (DNS name or IP address SAN).
//!
//! The cookie handshake runs in both modes (one handshake). Only TLS 1.3 with rustls's ring
//! provider is built and offered. Every function returns a [`TlsError`] that says what to fix. The
//! private key is read with the cookie's secret-file checks, and zeroed when the material is
//! dropped.
//!
//! A ping (what `snow-epmd ping` does) is: look the node up in snow-epmd, open TCP to the address,
//! run a TLS client with [`client_config`] and [`server_name`], take [`channel_binding`] of the
//! session, and drive a [`Handshake::initiator`](super::handshake::Handshake::initiator) over the
//! TLS stream until it reports `Established` (then close) or an error. In CA-verified mode its own
//! node name must have a host its certificate names ([`TlsMaterial::certificate_hosts`]).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{ring, verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use crate::name::NodeName;

use zeroize::Zeroize;

use super::cert_names::{CertNames, CertNamesError};
use super::handshake::{ChannelBinding, PeerCertificate, TLS_EXPORTER_LABEL};
use crate::cookie::{read_secret_file, SecretFileError};

/// Largest private key file accepted (a 16384-bit RSA key in PEM is about 13 KiB).
pub const MAX_KEY_FILE: usize = 64 << 10;
/// Largest certificate or CA file accepted.
pub const MAX_CERT_FILE: usize = 1 << 20;

/// The server name used in self-signed mode, where names are not checked (any valid DNS name).
pub const SELF_SIGNED_NAME: &str = "snow-node";

/// Why TLS settings could not be built, or a session value could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate PEM holds no usable certificate.
    #[error("{what}: no PEM certificate found (expected a -----BEGIN CERTIFICATE----- block)")]
    NoCertificate {
        /// Which input (e.g. "SNOW_TLS_CERT").
        what: &'static str,
    },
    /// The key PEM holds no usable private key.
    #[error("SNOW_TLS_KEY: no PEM private key found (expected PKCS#8, PKCS#1 or SEC1 PEM): {0}")]
    NoKey(String),
    /// A PEM block could not be parsed.
    #[error("{what}: unreadable PEM: {detail}")]
    BadPem {
        /// Which input.
        what: &'static str,
        /// The parser's reason.
        detail: String,
    },
    /// rustls refused the certificates or key (e.g. a key that does not match the certificate).
    #[error("TLS setup failed: {0}; check that the certificate, key and CA belong together")]
    Rustls(#[from] rustls::Error),
    /// The peer verifier could not be built from the CA.
    #[error("SNOW_TLS_CA cannot be used to verify peers: {0}")]
    Verifier(String),
    /// The self-signed certificate could not be generated.
    #[error("cannot generate the ephemeral TLS certificate: {0}")]
    Generate(String),
    /// The private key file was refused or could not be read.
    #[error(transparent)]
    KeyFile(#[from] SecretFileError),
    /// A certificate file could not be read.
    #[error("{what}={} cannot be read: {source}", path.display())]
    ReadFile {
        /// Which input (e.g. "SNOW_TLS_CERT").
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// In CA-verified mode the peer presented no certificate (rustls requires one, so this means
    /// the TLS configuration is not the one built here).
    #[error("the peer presented no TLS certificate although CA-verified TLS is configured")]
    NoPeerCertificate,
    /// The peer's certificate could not be read for its names.
    #[error(transparent)]
    PeerCertificate(#[from] CertNamesError),
}

/// What a node presents and trusts. `Debug` never shows the private key, and the key is zeroed
/// when the material is dropped.
pub struct TlsMaterial {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    /// `None`: self-signed mode (accept any peer certificate, authenticate with the cookie).
    roots: Option<Arc<RootCertStore>>,
}

impl TlsMaterial {
    /// A fresh self-signed certificate and key (ECDSA P-256) for one node start.
    pub fn self_signed() -> Result<TlsMaterial, TlsError> {
        let certified = rcgen::generate_simple_self_signed(vec![SELF_SIGNED_NAME.to_owned()])
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
        Ok(TlsMaterial { chain: vec![certified.cert.der().clone()], key, roots: None })
    }

    /// CA-verified mutual TLS from PEM files (`SNOW_TLS_CERT`, `SNOW_TLS_KEY`, `SNOW_TLS_CA`). The
    /// key file is read like the cookie file ([`read_secret_file`]: no symbolic link, owned by
    /// this process's user, mode 600 or 400).
    pub fn from_files(cert_chain: &Path, key: &Path, ca: &Path) -> Result<TlsMaterial, TlsError> {
        let read = |what: &'static str, path: &Path| -> Result<Vec<u8>, TlsError> {
            let file = std::fs::File::open(path).map_err(|source| TlsError::ReadFile {
                what,
                path: path.to_owned(),
                source,
            })?;
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_CERT_FILE as u64), &mut bytes)
                .map_err(|source| TlsError::ReadFile { what, path: path.to_owned(), source })?;
            Ok(bytes)
        };
        let chain = read("SNOW_TLS_CERT", cert_chain)?;
        let ca = read("SNOW_TLS_CA", ca)?;
        let key = read_secret_file(key, "SNOW_TLS_KEY", MAX_KEY_FILE)?;
        TlsMaterial::from_pem(&chain, &key, &ca)
    }

    /// CA-verified mutual TLS from PEM bytes: this node's certificate chain (leaf first), its
    /// private key, and the CA certificate(s) peers must chain to.
    pub fn from_pem(cert_chain: &[u8], key: &[u8], ca: &[u8]) -> Result<TlsMaterial, TlsError> {
        let chain = certs(cert_chain, "SNOW_TLS_CERT")?;
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| TlsError::NoKey(e.to_string()))?;
        let mut roots = RootCertStore::empty();
        for cert in certs(ca, "SNOW_TLS_CA")? {
            roots.add(cert).map_err(|e| TlsError::Verifier(e.to_string()))?;
        }
        Ok(TlsMaterial { chain, key, roots: Some(Arc::new(roots)) })
    }

    /// Whether peers are verified against a CA (mutual TLS) rather than by the cookie alone.
    pub fn is_ca_verified(&self) -> bool {
        self.roots.is_some()
    }

    /// The hosts this node's own certificate names, as node-name hosts (DNS names lowercased,
    /// IPv6 in brackets): in CA-verified mode a node name must have one of them as its host, or
    /// peers refuse it. Empty if the leaf cannot be read or names no host.
    pub fn certificate_hosts(&self) -> Vec<String> {
        self.certificate_names().hosts()
    }

    /// The names of this node's own certificate (none if the leaf cannot be read).
    pub fn certificate_names(&self) -> CertNames {
        self.chain.first().and_then(|leaf| CertNames::from_der(leaf).ok()).unwrap_or_default()
    }
}

impl Drop for TlsMaterial {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("mode", &if self.is_ca_verified() { "CA-verified" } else { "self-signed" })
            .field("certificates", &self.chain.len())
            .field("key", &"<hidden>")
            .finish()
    }
}

fn certs(pem: &[u8], what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem { what, detail: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { what });
    }
    Ok(certs)
}

/// ring's provider, with AES-128-GCM-SHA256 preferred: both ends are Snow nodes, and it costs
/// less than ring's first choice (AES-256-GCM-SHA384) per handshake (the SHA-384 key schedule)
/// and per byte (fewer AES rounds), for a security margin TLS 1.3 requires every stack to accept.
/// The other suites stay offered, so a peer that prefers them still connects.
fn provider() -> Arc<CryptoProvider> {
    let mut provider = ring::default_provider();
    provider.cipher_suites.sort_by_key(|suite| suite.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    Arc::new(provider)
}

/// The configuration of the dialing side. In self-signed mode it presents no client certificate
/// (so `snow-epmd ping` can use [`client_only_config`] without one); with a CA it presents the
/// node's certificate and verifies the acceptor's.
pub fn client_config(material: &TlsMaterial) -> Result<Arc<ClientConfig>, TlsError> {
    client_settings(material).map(Arc::new)
}

/// [`client_config`] for node `local`'s dials: its ClientHello also names it, so that an acceptor
/// dialing it at the same moment can refuse the duplicate before TLS
/// ([`early_refusal`](super::early_refusal)).
pub fn dialer_config(material: &TlsMaterial, local: &NodeName) -> Result<Arc<ClientConfig>, TlsError> {
    let mut config = client_settings(material)?;
    config.alpn_protocols = super::early_refusal::alpn_naming(local).into_iter().collect();
    Ok(Arc::new(config))
}

fn client_settings(material: &TlsMaterial) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let builder =
        ClientConfig::builder_with_provider(provider.clone()).with_protocol_versions(&[&rustls::version::TLS13])?;
    let config = match &material.roots {
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate::new(&provider)))
            .with_no_client_auth(),
        Some(roots) => {
            let verifier = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider)
                .build()
                .map_err(|e| TlsError::Verifier(e.to_string()))?;
            builder
                .with_webpki_verifier(verifier)
                .with_client_auth_cert(material.chain.clone(), material.key.clone_key())?
        }
    };
    Ok(config)
}

/// A dialing configuration without any certificate of our own, for self-signed clusters: what
/// `snow-epmd ping` uses when no certificate files are given. (A CA-verified cluster requires the
/// pinging side to present a certificate: use [`client_config`] with [`TlsMaterial::from_pem`].)
pub fn client_only_config() -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate::new(&provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The configuration of the accepting side. In self-signed mode it asks for no client certificate;
/// with a CA it requires one that chains to the CA.
pub fn server_config(material: &TlsMaterial) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let builder =
        ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(&[&rustls::version::TLS13])?;
    let builder = match &material.roots {
        None => builder.with_no_client_auth(),
        Some(roots) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider)
                .build()
                .map_err(|e| TlsError::Verifier(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    Ok(Arc::new(builder.with_single_cert(material.chain.clone(), material.key.clone_key())?))
}

/// The name the dialing side checks the acceptor's certificate against: the host part of the
/// node name (`host_for_connect`, so IPv6 without brackets) when CA-verified, else
/// [`SELF_SIGNED_NAME`].
pub fn server_name(material_is_ca_verified: bool, host: &str) -> ServerName<'static> {
    if material_is_ca_verified {
        if let Ok(name) = ServerName::try_from(host.to_owned()) {
            return name;
        }
    }
    ServerName::try_from(SELF_SIGNED_NAME).map(|n| n.to_owned()).unwrap_or_else(|_| {
        // SELF_SIGNED_NAME is a valid DNS name; this branch cannot be reached.
        ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into())
    })
}

/// The session's 32-byte exporter value (RFC 8446 section 7.5) under [`TLS_EXPORTER_LABEL`] with
/// an empty context: the `exporter` input of the cookie handshake. Both ends of one TLS session
/// get the same value; two sessions (a man in the middle) get different ones.
pub fn exporter<D>(conn: &rustls::ConnectionCommon<D>) -> Result<[u8; 32], TlsError> {
    let mut out = [0u8; 32];
    conn.export_keying_material(&mut out, TLS_EXPORTER_LABEL, Some(&[]))?;
    Ok(out)
}

/// What the cookie handshake needs from an established TLS session: its [`exporter`], and in
/// CA-verified mode (`ca_verified`) the names of the peer's certificate, which rustls has already
/// verified against the CA.
pub fn channel_binding<D>(conn: &rustls::ConnectionCommon<D>, ca_verified: bool) -> Result<ChannelBinding, TlsError> {
    let exporter = exporter(conn)?;
    let peer_certificate = if ca_verified {
        let leaf = conn.peer_certificates().and_then(|chain| chain.first()).ok_or(TlsError::NoPeerCertificate)?;
        PeerCertificate::Names(CertNames::from_der(leaf)?)
    } else {
        PeerCertificate::Unchecked
    };
    Ok(ChannelBinding { exporter, peer_certificate })
}

/// Accepts any server certificate, but still checks the TLS 1.3 handshake signature, so the peer
/// must hold the key of the certificate it presents. Authentication is the cookie proof's job.
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl AnyCertificate {
    fn new(provider: &CryptoProvider) -> AnyCertificate {
        AnyCertificate { algorithms: provider.signature_verification_algorithms }
    }
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls12NotOffered))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// Runs a client and a server session against each other in memory until both are done.
    fn pump(client: &mut rustls::ClientConnection, server: &mut rustls::ServerConnection) -> Result<(), rustls::Error> {
        for _ in 0..20 {
            let mut buf = Vec::new();
            client.write_tls(&mut buf).unwrap();
            server.read_tls(&mut buf.as_slice()).unwrap();
            server.process_new_packets()?;
            let mut buf = Vec::new();
            server.write_tls(&mut buf).unwrap();
            client.read_tls(&mut buf.as_slice()).unwrap();
            client.process_new_packets()?;
            if !client.is_handshaking() && !server.is_handshaking() {
                return Ok(());
            }
        }
        panic!("handshake did not finish");
    }

    #[test]
    fn self_signed_sessions_agree_on_the_exporter() {
        let (a, b) = (TlsMaterial::self_signed().unwrap(), TlsMaterial::self_signed().unwrap());
        let mut client = rustls::ClientConnection::new(client_config(&a).unwrap(), server_name(false, "x")).unwrap();
        let mut server = rustls::ServerConnection::new(server_config(&b).unwrap()).unwrap();
        pump(&mut client, &mut server).unwrap();
        assert_eq!(client.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
        // Two Snow nodes agree on the suite `provider` prefers.
        let suite = client.negotiated_cipher_suite().map(|s| s.suite());
        assert_eq!(suite, Some(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256));
        assert_eq!(exporter(&client).unwrap(), exporter(&server).unwrap());
        client.writer().write_all(b"hi").unwrap();
        let mut buf = Vec::new();
        client.write_tls(&mut buf).unwrap();
        server.read_tls(&mut buf.as_slice()).unwrap();
        server.process_new_packets().unwrap();
        let mut got = [0u8; 2];
        server.reader().read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hi");
    }

    fn ca_and_leaf(host: &str) -> (String, String, String) {
        let leaf = crate::dist::test_ca::TestCa::new().leaf(host);
        (leaf.cert, leaf.key, leaf.ca)
    }

    #[test]
    fn ca_mode_verifies_both_sides() {
        let (cert, key, ca) = ca_and_leaf("127.0.0.1");
        let node = TlsMaterial::from_pem(cert.as_bytes(), key.as_bytes(), ca.as_bytes()).unwrap();
        assert!(node.is_ca_verified());
        let mut client =
            rustls::ClientConnection::new(client_config(&node).unwrap(), server_name(true, "127.0.0.1")).unwrap();
        let mut server = rustls::ServerConnection::new(server_config(&node).unwrap()).unwrap();
        pump(&mut client, &mut server).unwrap();

        // A client without a certificate is refused by a CA-verified server.
        let mut anon =
            rustls::ClientConnection::new(client_only_config().unwrap(), server_name(true, "127.0.0.1")).unwrap();
        let mut server = rustls::ServerConnection::new(server_config(&node).unwrap()).unwrap();
        assert!(pump(&mut anon, &mut server).is_err());

        // A certificate from another CA is refused.
        let (other_cert, other_key, other_ca) = ca_and_leaf("127.0.0.1");
        let stranger = TlsMaterial::from_pem(other_cert.as_bytes(), other_key.as_bytes(), other_ca.as_bytes()).unwrap();
        let mut client =
            rustls::ClientConnection::new(client_config(&stranger).unwrap(), server_name(true, "127.0.0.1")).unwrap();
        let mut server = rustls::ServerConnection::new(server_config(&node).unwrap()).unwrap();
        assert!(pump(&mut client, &mut server).is_err());
    }

    #[test]
    fn ca_mode_binding_carries_the_peer_certificate_names_both_ways() {
        let ca = crate::dist::test_ca::TestCa::new();
        let material = |host: &str| {
            let leaf = ca.leaf(host);
            TlsMaterial::from_pem(leaf.cert.as_bytes(), leaf.key.as_bytes(), leaf.ca.as_bytes()).unwrap()
        };
        let (dialer, listener) = (material("db1.example.com"), material("10.0.0.7"));
        assert_eq!(dialer.certificate_hosts(), ["db1.example.com"]);
        let mut client =
            rustls::ClientConnection::new(client_config(&dialer).unwrap(), server_name(true, "10.0.0.7")).unwrap();
        let mut server = rustls::ServerConnection::new(server_config(&listener).unwrap()).unwrap();
        pump(&mut client, &mut server).unwrap();
        let (on_client, on_server) = (channel_binding(&client, true).unwrap(), channel_binding(&server, true).unwrap());
        assert_eq!(on_client.exporter, on_server.exporter);
        let names = |b: ChannelBinding| match b.peer_certificate {
            PeerCertificate::Names(n) => n.hosts(),
            PeerCertificate::Unchecked => panic!("CA mode must carry names"),
        };
        assert_eq!(names(on_client), ["10.0.0.7"]);
        assert_eq!(names(on_server), ["db1.example.com"]);
        assert_eq!(channel_binding(&server, false).unwrap().peer_certificate, PeerCertificate::Unchecked);
    }

    #[test]
    fn debug_never_shows_the_private_key() {
        let leaf = crate::dist::test_ca::TestCa::new().leaf("h");
        let material = TlsMaterial::from_pem(leaf.cert.as_bytes(), leaf.key.as_bytes(), leaf.ca.as_bytes()).unwrap();
        let text = format!("{material:?}");
        assert_eq!(text, "TlsMaterial { mode: \"CA-verified\", certificates: 1, key: \"<hidden>\" }");
        let body: String = leaf.key.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(!text.contains(&body[..16]));
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_gets_the_secret_file_checks() {
        use std::os::unix::fs::PermissionsExt;
        let leaf = crate::dist::test_ca::TestCa::new().leaf("h");
        let dir = std::env::temp_dir().join(format!("snow-tls-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key, ca) = (dir.join("cert.pem"), dir.join("key.pem"), dir.join("ca.pem"));
        std::fs::write(&cert, &leaf.cert).unwrap();
        std::fs::write(&ca, &leaf.ca).unwrap();
        std::fs::write(&key, &leaf.key).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = TlsMaterial::from_files(&cert, &key, &ca).unwrap_err();
        assert!(matches!(err, TlsError::KeyFile(SecretFileError::InsecurePermissions { mode: 0o640, .. })), "{err}");
        assert!(err.to_string().starts_with("SNOW_TLS_KEY "), "{err}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(TlsMaterial::from_files(&cert, &key, &ca).unwrap().is_ca_verified());
        let err = TlsMaterial::from_files(&dir.join("missing.pem"), &key, &ca).unwrap_err();
        assert!(err.to_string().starts_with("SNOW_TLS_CERT="), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_pem_gives_named_errors() {
        let err = TlsMaterial::from_pem(b"nothing", b"", b"").unwrap_err().to_string();
        assert!(err.contains("SNOW_TLS_CERT"), "{err}");
        let (cert, _, ca) = ca_and_leaf("h");
        let err = TlsMaterial::from_pem(cert.as_bytes(), b"junk", ca.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("SNOW_TLS_KEY"), "{err}");
    }
}
