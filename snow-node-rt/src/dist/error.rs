//! Error types of the distribution driver. Each message says what to do about it.

use snow_shared::dist::tls::TlsError;

use super::config::ConfigError;

/// Why a distributed node could not start. Nothing is left running when start-up fails.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is invalid (the message names the variable).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A TLS file could not be read.
    #[error("{var}={path:?} cannot be read: {source}")]
    ReadTlsFile {
        /// The variable naming the file.
        var: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The TLS material is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The distribution listener could not be opened.
    #[error("cannot listen for distribution on port {port}: {source} (set SNOW_DIST_PORT to a free port, or 0)")]
    Listen {
        /// The port asked for.
        port: u16,
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
