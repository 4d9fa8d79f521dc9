//! This crate's scheduler pool and timer service as the [`Runtime`] of a distribution layer.

use std::time::Instant;

use crate::seam::{BoxFuture, Runtime};

/// The scheduler pool as the runtime of a distribution layer ([`Runtime`]): tasks on the pool,
/// waits on the runtime's timer service. A foreign host may use it for its distribution layer
/// while it runs its own processes elsewhere.
#[derive(Clone, Copy, Debug, Default)]
pub struct PoolRuntime;

impl Runtime for PoolRuntime {
    fn spawn(&self, task: BoxFuture<()>) {
        drop(crate::sched::spawn(task));
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        Box::pin(crate::timers::sleep_until(deadline))
    }
}
