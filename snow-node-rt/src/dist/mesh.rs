//! Mesh formation (README, "Guarantees"): connections made on demand, explicitly, or transitively from a
//! peer's node list; retries with exponential backoff and jitter.
//!
//! A node list starts at most [`MAX_MESH_ATTEMPTS`] attempts at once; the names beyond wait in a
//! bounded queue and are dialed as attempts end ([`Driver::dial_deferred`]), so a long list is
//! dialed in full without a hostile one making the node dial without bound.
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
#[cfg(doc)]
use snow_shared::dist::dial_queue::DialQueue;
use snow_shared::dist::dial_queue::MAX_QUEUED_DIALS;
use snow_shared::NodeName;

use super::error::DistError;
use super::setup;
use super::state::Driver;
use crate::sync::lock;

/// Most connection attempts that may be in progress when a NODE_LIST starts another: a peer's
/// list (any length) cannot make this node dial more nodes than this at once. Names beyond it
/// wait in a bounded queue ([`DialQueue`], [`MAX_QUEUED_DIALS`] names) and are dialed as attempts
/// end; names beyond that are skipped, and every new connection brings the new peer's own list,
/// so the mesh still forms.
pub(crate) const MAX_MESH_ATTEMPTS: usize = 16;

impl Driver {
    /// A peer told us its connected nodes: connect to those we do not know (transitive mesh), while
    /// fewer than [`MAX_MESH_ATTEMPTS`] attempts are in progress; queue the rest for
    /// [`Driver::dial_deferred`] (up to [`MAX_QUEUED_DIALS`] names).
    pub fn on_node_list(&self, from: &NodeName, nodes: Vec<NodeName>) {
        if !self.opts.transitive {
            return;
        }
        let mut attempts = lock(&self.peers).connecting_count();
        let mut skipped = 0usize;
        for node in nodes {
            if !self.worth_dialing(&node) {
                continue;
            }
            if attempts >= MAX_MESH_ATTEMPTS {
                if !lock(&self.mesh_deferred).push(node) {
                    skipped += 1;
                }
                continue;
            }
            log::debug!("{}: {from} is connected to {node}; connecting too", self.name);
            self.ensure(&node, true, false);
            attempts += 1;
        }
        if skipped > 0 {
            log::info!(
                "{}: {from}'s node list names {skipped} more nodes than can be dialed now or later \
                 ({MAX_MESH_ATTEMPTS} attempts at once, {MAX_QUEUED_DIALS} waiting); skipped",
                self.name
            );
        }
    }

    /// Dials the names node lists left waiting, while fewer than [`MAX_MESH_ATTEMPTS`] attempts are
    /// in progress. Called whenever an attempt ends or a connection comes up.
    pub fn dial_deferred(&self) {
        while !lock(&self.mesh_deferred).is_empty() {
            if lock(&self.peers).connecting_count() >= MAX_MESH_ATTEMPTS {
                return;
            }
            let Some(node) = lock(&self.mesh_deferred).pop() else { return };
            if !self.worth_dialing(&node) {
                continue;
            }
            log::debug!("{}: dialing {node}, named by a node list while the attempts were full", self.name);
            self.ensure(&node, true, false);
        }
    }

    /// A handshake from `node` ended while a node list wanted `node` (see [`Driver::worth_dialing`]):
    /// dial it now, within the attempts cap, unless that handshake connected it.
    pub fn dial_held_off(&self, node: &NodeName) {
        if lock(&self.mesh_deferred).push(node.clone()) {
            self.dial_deferred();
        }
    }

    /// Whether a node list's `node` should be dialed now: not us, not connected or connecting,
    /// and not connecting to us right now (its handshake would make ours a duplicate; if it fails,
    /// [`Driver::dial_held_off`] dials).
    fn worth_dialing(&self, node: &NodeName) -> bool {
        *node != self.name && !lock(&self.peers).knows(node) && !lock(&self.incoming).hold_off(node)
    }
}

/// Runs the backoff table's sweeper until the table is empty or the node is gone. It holds the
/// driver state weakly, so it does not keep a stopped node's state alive.
fn start_sweeper(dist: &Arc<Driver>) {
    let runtime = dist.runtime.clone();
    let weak = Arc::downgrade(dist);
    dist.spawn(async move {
        while let Some(at) = sweep_once(&weak) {
            runtime.sleep_until(at).await;
        }
    });
}

/// One sweep of `dist`'s backoff table; when to sweep next, or `None` to stop.
fn sweep_once(dist: &Weak<Driver>) -> Option<Instant> {
    let dist = dist.upgrade()?;
    // Taken before the backoff lock, never while holding it.
    let busy: HashSet<NodeName> = lock(&dist.peers).connecting();
    let next = lock(&dist.backoff).sweep(Instant::now(), &busy);
    next
}

/// Starts a connection attempt to `node` in the background. The caller has put a `Connecting`
/// entry in the peer table; the attempt installs the connection or reports the failure.
pub(crate) fn spawn_attempt(dist: Arc<Driver>, node: NodeName, respect_backoff: bool) {
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
        dist.dial_deferred();
    });
}

async fn attempt(dist: &Arc<Driver>, node: &NodeName, respect_backoff: bool) -> Result<(), DistError> {
    if respect_backoff {
        let retry_in = lock(&dist.backoff).retry_in(node, Instant::now());
        if let Some(retry_in) = retry_in {
            return Err(DistError::Backoff { node: node.clone(), retry_in });
        }
    }
    let mut retry = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
    let mut tries = 1;
    loop {
        match setup::dial(dist, node).await {
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

/// Starts the connection attempts the driver asks for ([`Driver::start_attempt`]), until the node
/// shuts down.
pub(crate) async fn run(dist: Arc<Driver>) {
    let stop = dist.stop_rx.clone();
    loop {
        let next = futures_lite::future::or(async { dist.attempts.1.recv().await.ok() }, async {
            let _ = stop.recv().await;
            None
        })
        .await;
        let Some((node, respect_backoff)) = next else { break };
        spawn_attempt(dist.clone(), node, respect_backoff);
    }
    let _ = dist.tasks_done.0.try_send(());
}
