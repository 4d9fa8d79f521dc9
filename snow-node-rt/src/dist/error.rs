//! Error types of the distribution driver. Each message says what to do about it.

use std::time::Duration;

use snow_shared::dist::cert_names::CertNames;
use snow_shared::dist::tls::TlsError;
use snow_shared::{NameError, NodeName, Term};

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
    /// The builder was not given a cookie.
    #[error("a distributed node needs a cookie: set SNOW_COOKIE or SNOW_COOKIE_FILE (create one with `snow-epmd gen-cookie`), or call NodeBuilder::cookie")]
    NoCookie,
}

/// Why a distribution operation failed. Cheap to clone (shared with every waiter of a connection
/// attempt).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DistError {
    /// This node runs local-only.
    #[error("this node is not distributed (SNOW_NODE is unset); start it with SNOW_NODE=name and a cookie")]
    NotDistributed,
    /// The text is not a node name.
    #[error("{value:?} is not a node name: {source}")]
    BadNodeName {
        /// The text given.
        value: String,
        /// Why it is not a name.
        source: NameError,
    },
    /// A node cannot connect to itself.
    #[error("{0} is this node; there is nothing to connect to")]
    SelfConnect(NodeName),
    /// snow-epmd does not know the node.
    #[error("{0} is not registered with snow-epmd; is it running, and do both nodes use snow-epmd daemons that gossip with each other?")]
    NotRegistered(NodeName),
    /// snow-epmd knows the node but says it is down.
    #[error("snow-epmd lists {0} as down; start it again")]
    NodeDown(NodeName),
    /// snow-epmd could not be asked.
    #[error("cannot look up {node}: {reason}")]
    Epmd {
        /// The node looked up.
        node: NodeName,
        /// The client error, as text.
        reason: String,
    },
    /// TCP, TLS or the cookie handshake failed.
    #[error("cannot connect to {node} at {addr}: {reason}")]
    Connect {
        /// The node.
        node: NodeName,
        /// The address dialed.
        addr: String,
        /// What failed.
        reason: String,
    },
    /// A recent attempt failed and the node is in its backoff period.
    #[error("{node} was unreachable moments ago; the next attempt is allowed in {retry_in:?}")]
    Backoff {
        /// The node.
        node: NodeName,
        /// Time until the next attempt is allowed.
        retry_in: Duration,
    },
    /// The connection went down before the operation completed.
    #[error("the connection to {0} went down")]
    ConnectionLost(NodeName),
    /// No answer in time.
    #[error("{0} did not answer in time")]
    Timeout(NodeName),
    /// The node is shutting down.
    #[error("this node is shutting down")]
    ShuttingDown,
}

/// Why [`Process::try_send`](crate::Process::try_send) did not queue a message.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum TrySendError {
    /// The connection to the receiver's node is at its byte budget; the message is handed back.
    /// Retry later or use [`Process::send_async`](crate::Process::send_async), which waits.
    #[error("the connection to {node} is busy (its send queue is full); retry later or use send_async")]
    Busy {
        /// The receiver's node.
        node: NodeName,
        /// The message that was not sent.
        msg: Term,
    },
}

/// Why a remote spawn failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RemoteSpawnError {
    /// The node could not be reached.
    #[error(transparent)]
    Dist(#[from] DistError),
    /// The remote node refused: the function is not on its allow-list (`register_spawnable`).
    #[error(
        "{node} refused to spawn {function:?}: {reason}; the function must be registered there with register_spawnable"
    )]
    Refused {
        /// The node asked.
        node: NodeName,
        /// The function asked for.
        function: String,
        /// The node's reason.
        reason: Term,
    },
    /// The remote node does not support remote spawn (capability not negotiated).
    #[error("{0} does not support remote spawn")]
    Unsupported(NodeName),
}
