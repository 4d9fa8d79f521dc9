//! The life of a process: its task, from the first poll of its body to the exit procedure.
//!
//! Every process is one task on the scheduler pool. The task polls, in this order: a watch for a
//! decided exit (a fatal signal, or its own `exit`), then a congestion gate (a connection the
//! process congested asks it to wait), then the body. When an exit is decided, the body future is
//! dropped wherever it was parked and the task runs the exit procedure itself. Because only the
//! process's own task ever acts for it, everything the process sent before it died is ordered
//! before its exit signals and `:DOWN` messages, as in BEAM.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_lite::FutureExt;
use snow_shared::Term;

use super::entry::ProcessEntry;
use super::node_state::NodeState;
use crate::reason::{self, IntoExitReason};

/// Runs `body` (the body of the process `entry`, already in the table) as its task on the
/// scheduler pool, and the exit procedure when it ends. The task is detached: the process reports
/// its end through links and monitors, like any process.
pub(crate) fn launch<Fut>(node: Arc<NodeState>, entry: Arc<ProcessEntry>, body: Fut)
where
    Fut: Future + Send + 'static,
    Fut::Output: IntoExitReason,
{
    drop(crate::sched::spawn(run(node, entry, body)));
}

/// Completes with the exit reason once an exit was decided for the process.
struct ExitWatch<'a> {
    entry: &'a ProcessEntry,
    registered: bool,
}

impl Future for ExitWatch<'_> {
    type Output = Term;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Term> {
        let first = !self.registered;
        self.registered = true;
        self.entry.poll_decided_exit(cx, first)
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// The whole life of a process: run the body until it returns, panics or is killed, then exit.
async fn run<Fut>(node: Arc<NodeState>, entry: Arc<ProcessEntry>, body: Fut)
where
    Fut: Future + Send,
    Fut::Output: IntoExitReason,
{
    let reason = {
        let body = async {
            match AssertUnwindSafe(body).catch_unwind().await {
                Ok(result) => result.into_exit_reason(),
                Err(payload) => {
                    let message = panic_message(&*payload);
                    log::warn!("{}: process {} panicked: {message}", node.table.name(), entry.pid());
                    reason::panic(message)
                }
            }
        };
        // A process suspended by a congested connection is not polled until the congestion
        // clears (it may still be killed meanwhile: the exit watch comes first).
        let mut body = std::pin::pin!(body);
        let gated = std::future::poll_fn(|cx| match entry.poll_congestion(cx) {
            Poll::Ready(()) => body.as_mut().poll(cx),
            Poll::Pending => Poll::Pending,
        });
        ExitWatch { entry: &entry, registered: false }.or(gated).await
    };
    // An exit decided while the body ran its last stretch (a signal, or a send refused at a
    // connection's ceiling) wins over the body's own result: the process died at that point.
    let reason = entry.take_decided_exit().unwrap_or(reason);
    finish(&node, &entry, reason);
}

/// The exit procedure, run by the process's own task: mark dead, free the name, fire links and
/// monitors, drop the mailbox, tell the distribution layer if it asked.
fn finish(node: &NodeState, entry: &ProcessEntry, reason: Term) {
    let pid = entry.pid();
    let remains = entry.mark_dead();
    node.table.remove(pid);
    log::debug!("{}: process {pid} exited: {reason} ({} messages dropped)", node.table.name(), remains.unread.len());
    drop(remains.unread);
    if let Some(name) = remains.name {
        node.registry.forget(&name, pid);
    }
    node.aliases.owner_exited(pid);
    let Some(rel) = remains.relations else { return };
    // A dying process is past every suspension point: backpressure no longer applies to it.
    for linked in rel.links {
        let _ = super::signals::exit(node, pid, &linked, reason.clone(), true);
    }
    for (reference, watcher) in rel.watchers {
        super::signals::down(node, &watcher, &reference, pid, reason.clone());
    }
    for (reference, monitoring) in rel.monitoring {
        let _ = super::signals::forget_watcher(node, pid, &monitoring, &reference);
    }
    if rel.tell_distribution {
        node.with_distribution(|d| d.process_exited(pid));
    }
}
