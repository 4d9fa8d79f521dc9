//! Helpers shared by the integration tests: bounded waits and probes into processes.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use async_std::channel::{bounded, unbounded, Receiver};
use smol_timeout::TimeoutExt;
use snow_node_rt::{Node, Pid, Process, Term};

/// Every wait in the tests has this deadline.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Runs an async test body with a deadline.
pub fn run<T>(body: impl Future<Output = T>) -> T {
    async_std::task::block_on(async { body.timeout(DEADLINE).await.expect("test timed out") })
}

/// Awaits `fut`, failing the test after the deadline.
pub async fn within<T>(fut: impl Future<Output = T>) -> T {
    fut.timeout(DEADLINE).await.expect("timed out waiting")
}

/// Runs `body` as a process and returns what it produces.
pub async fn in_process<T, F, Fut>(node: &Node, body: F) -> T
where
    T: Send + 'static,
    F: FnOnce(Process) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let (tx, rx) = bounded(1);
    node.spawn(move |p| {
        let fut = body(p);
        async move {
            let _ = tx.send(fut.await).await;
        }
    });
    within(rx.recv()).await.expect("probe process died before answering")
}

/// Starts a process that monitors `target` and reports the `:DOWN` reason on the channel.
/// Returns once the monitor is in place.
pub async fn watch(node: &Node, target: &Pid) -> Receiver<Term> {
    let (ready_tx, ready_rx) = bounded(1);
    let (tx, rx) = bounded(1);
    let target = target.clone();
    node.spawn(move |mut me| async move {
        let r = me.monitor(&target);
        let _ = ready_tx.send(()).await;
        let down = me.receive_match(|m| matches!(m.as_tuple(), Some([_, Term::Ref(x), ..]) if *x == r)).await;
        let _ = tx.send(down.as_tuple().unwrap()[3].clone()).await;
    });
    within(ready_rx.recv()).await.unwrap();
    rx
}

/// Starts a process that forwards every message it receives to a channel.
pub fn collector(node: &Node) -> (Pid, Receiver<Term>) {
    let (tx, rx) = unbounded();
    let pid = node
        .spawn(move |mut me| async move {
            loop {
                let m = me.receive().await;
                if tx.send(m).await.is_err() {
                    return;
                }
            }
        })
        .pid()
        .clone();
    (pid, rx)
}

/// Next item of a channel, with the deadline.
pub async fn next<T>(rx: &Receiver<T>) -> T {
    within(rx.recv()).await.expect("channel closed")
}

/// `{:EXIT, from, reason}`.
pub fn exit_msg(from: &Pid, reason: Term) -> Term {
    Term::tuple([Term::atom("EXIT"), Term::Pid(from.clone()), reason])
}

/// A process that waits until killed or sent `:stop`.
pub fn idle(node: &Node) -> Pid {
    node.spawn(|mut me| async move {
        loop {
            if me.receive().await.is_atom("stop") {
                return;
            }
        }
    })
    .pid()
    .clone()
}
