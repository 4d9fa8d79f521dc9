//! Mesh formation (README, "Guarantees"): connections made on demand, explicitly, or transitively from a
//! peer's node list; retries with exponential backoff and jitter.
//!
//! An attempt retries network failures (refused, unreachable, timed out) up to
//! `connect_attempts` times with backoff delays. A node whose attempt failed is in backoff: until
//! the delay has passed, on-demand connects (a send, link or monitor) fail at once instead of
//! dialing again, so a flood of sends to an unreachable node does not become a flood of dials.
//! Explicit [`Node::connect`](crate::Node::connect) always dials.
//!
//! The backoff table forgets a node once its failure is no longer useful to remember (see
//! [`BackoffTable`](snow_shared::dist::backoff_table::BackoffTable)); a sweeper task runs while it holds entries, so connecting to many names
//! that never answer leaves nothing behind.

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use snow_shared::dist::backoff::Backoff;
use snow_shared::NodeName;

use snow_shared::dist::peer_table::Ensured;

use super::core::{lock, Dist};
use super::error::DistError;
use super::session;

/// Runs the backoff table's sweeper until the table is empty or the node is gone. It holds the
/// driver state weakly, so it does not keep a stopped node's state alive.
fn start_sweeper(dist: &Arc<Dist>) {
    let runtime = dist.runtime.clone();
    let weak = Arc::downgrade(dist);
    dist.spawn(async move {
        while let Some(at) = sweep_once(&weak) {
            runtime.sleep_until(at).await;
        }
    });
}

/// One sweep of `dist`'s backoff table; when to sweep next, or `None` to stop.
fn sweep_once(dist: &Weak<Dist>) -> Option<Instant> {
    let dist = dist.upgrade()?;
    // Taken before the backoff lock, never while holding it.
    let busy: HashSet<NodeName> = lock(&dist.peers).connecting();
    let next = lock(&dist.backoff).sweep(Instant::now(), &busy);
    next
}

/// Starts a connection attempt to `node` in the background. The caller has put a `Connecting`
/// entry in the peer table; the attempt installs the connection or reports the failure.
pub(crate) fn spawn_attempt(dist: Arc<Dist>, node: NodeName, respect_backoff: bool) {
    dist.clone().spawn(async move {
        if let Err(e) = attempt(&dist, &node, respect_backoff).await {
            if !matches!(e, DistError::Backoff { .. }) {
                let start = lock(&dist.backoff).failed(&node, Instant::now(), rand::random());
                if start {
                    start_sweeper(&dist);
                }
            }
            dist.attempt_failed(&node, &e);
        }
    });
}

/// Makes sure a connection to `node` exists or is being made. Returns a receiver of the outcome
/// when `wait` is set (for callers that wait for the connection).
pub(crate) fn ensure(
    dist: &Arc<Dist>,
    node: &NodeName,
    respect_backoff: bool,
    wait: bool,
) -> Option<async_channel::Receiver<Result<(), DistError>>> {
    let (tx, rx) = async_channel::bounded(1);
    let ensured = lock(&dist.peers).ensure(node, wait.then_some(tx));
    match ensured {
        Ensured::Up(waiter) => {
            if let Some(waiter) = waiter {
                let _ = waiter.try_send(Ok(()));
            }
        }
        Ensured::Waiting => {}
        Ensured::Closing(waiter) => {
            if let Some(waiter) = waiter {
                let _ = waiter.try_send(Err(DistError::ShuttingDown));
            }
        }
        Ensured::StartAttempt => spawn_attempt(dist.clone(), node.clone(), respect_backoff),
    }
    wait.then_some(rx)
}

async fn attempt(dist: &Arc<Dist>, node: &NodeName, respect_backoff: bool) -> Result<(), DistError> {
    if respect_backoff {
        let retry_in = lock(&dist.backoff).retry_in(node, Instant::now());
        if let Some(retry_in) = retry_in {
            return Err(DistError::Backoff { node: node.clone(), retry_in });
        }
    }
    let mut retry = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
    let mut tries = 1;
    loop {
        match session::dial(dist, node).await {
            Ok(()) => return Ok(()),
            Err(failure) if failure.retriable && tries < dist.opts.connect_attempts => {
                log::debug!("{}: attempt {tries} to reach {node} failed: {}; retrying", dist.name, failure.error);
                tries += 1;
                dist.sleep(retry.next_delay(rand::random())).await;
                // An incoming connection from that node may have made the retry unnecessary.
                if !lock(&dist.peers).is_connecting(node) {
                    return Ok(());
                }
            }
            Err(failure) => return Err(failure.error),
        }
    }
}

/// Most connection attempts that may be in progress when a NODE_LIST starts another: a peer's
/// list (any length) cannot make this node dial more nodes than this at once. Names beyond it
/// are skipped; every new connection brings the new peer's own list, so the mesh still forms.
pub(crate) const MAX_MESH_ATTEMPTS: usize = 16;

/// A peer told us its connected nodes: connect to those we do not know (transitive mesh), while
/// fewer than [`MAX_MESH_ATTEMPTS`] attempts are in progress.
pub(crate) fn on_node_list(dist: &Arc<Dist>, from: &NodeName, nodes: Vec<NodeName>) {
    if !dist.opts.transitive {
        return;
    }
    let mut attempts = lock(&dist.peers).connecting().len();
    let mut skipped = 0usize;
    for node in nodes {
        if node == dist.name || lock(&dist.peers).knows(&node) {
            continue;
        }
        if attempts >= MAX_MESH_ATTEMPTS {
            skipped += 1;
            continue;
        }
        log::debug!("{}: {from} is connected to {node}; connecting too", dist.name);
        ensure(dist, &node, true, false);
        attempts += 1;
    }
    if skipped > 0 {
        log::info!(
            "{}: {from}'s node list names {skipped} more nodes than can be dialed now ({MAX_MESH_ATTEMPTS} attempts at once); skipped",
            dist.name
        );
    }
}
