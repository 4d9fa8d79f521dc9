//! Starting a node of this crate's local process layer with distribution: the settings and the
//! start-up of the distribution layer ([`NodeBuilder`], [`Prepared`]), wired to a [`Node`] as its
//! host, on the scheduler pool as its runtime.

use std::sync::Arc;

use super::node_state::Node;
use crate::dist::config::mailbox_limit_from_vars;
use crate::dist::{DistConfig, NodeBuilder, StartError};

impl NodeBuilder {
    /// Starts a distributed [`Node`] with these settings: [`NodeBuilder::prepare`] (TLS identity,
    /// key, listener, registration with snow-epmd), then a node with the name and creation that
    /// gave, with distribution running on the scheduler pool. Any failure returns an error and
    /// leaves nothing running.
    ///
    /// [`Prepared`]: crate::dist::Prepared
    pub async fn start(self) -> Result<Node, StartError> {
        let mailbox_limit = self.default_mailbox_limit();
        let prepared = self.prepare().await?;
        let node = Node::new(prepared.name().clone(), prepared.creation());
        node.set_default_mailbox_limit(mailbox_limit);
        let distribution = prepared.start(node.as_host(), Arc::new(crate::PoolRuntime));
        node.set_distribution(distribution);
        Ok(node)
    }
}

/// Starts this program's node from the environment (README, "Node environment"): a distributed
/// node when `SNOW_NODE` is set, else a local-only one ([`Node::local`],
/// `is_distributed() == false`), with `SNOW_MAILBOX_LIMIT` as its default mailbox limit either way.
/// Every bad variable gives one [`StartError`] line naming it.
pub async fn start_from_env() -> Result<Node, StartError> {
    match DistConfig::from_env()? {
        None => {
            let node = Node::local();
            node.set_default_mailbox_limit(mailbox_limit_from_vars(|var| std::env::var_os(var))?);
            Ok(node)
        }
        Some(config) => NodeBuilder::from_config(config).start().await,
    }
}
