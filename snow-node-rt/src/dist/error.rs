//! Error types of the distribution driver. Each message says what to do about it.

use snow_shared::dist::cert_names::CertNames;
use snow_shared::dist::tls::TlsError;
use snow_shared::NodeName;

use super::config::ConfigError;

/// Why a distributed node could not start. Nothing is left running when start-up fails.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is invalid (the message names the variable).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The TLS material is unusable (the message names the file or variable).
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// In CA-verified mode, this node's certificate does not name the host of its node name, so
    /// every peer would refuse it.
    #[error(
        "this node is {name}, but its certificate (SNOW_TLS_CERT) names {names}, not host {}: use a certificate \
         naming that host (DNS or IP subject alternative name), or a node name with a host it names",
        name.host()
    )]
    CertificateHost {
        /// This node's name.
        name: NodeName,
        /// What its certificate names.
        names: CertNames,
    },
    /// The distribution listener could not be opened.
    #[error(
        "cannot listen for distribution on {addr}: {source} (SNOW_DIST_ADDR must be an address of this host, \
         SNOW_DIST_PORT a free port or 0)"
    )]
    Listen {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// snow-epmd refused the registration or could not be reached.
    #[error("cannot register with snow-epmd: {0}")]
    Epmd(#[from] snow_epmd::client::ClientError),
    /// The thread that derives the key from the cookie could not run.
    #[error("cannot derive the distribution key from the cookie: {0}")]
    KeyDerivation(std::io::Error),
    /// The builder was not given a cookie.
    #[error("a distributed node needs a cookie: set SNOW_COOKIE or SNOW_COOKIE_FILE (create one with `snow-epmd gen-cookie`), or call NodeBuilder::cookie")]
    NoCookie,
}

pub use crate::error::{DistError, RemoteSpawnError, TrySendError};
