//! Remote calls as a program makes them (Erlang's `erpc`; README, "Remote calls"): `call`, `cast`
//! and `multicall` of [`Node`] and [`Process`]. A call to another node goes through the
//! distribution layer ([`Distribution::call`](crate::seam::Distribution::call)); a call to this
//! node itself runs the allow-listed function here, in a process of its own, with the same
//! results and errors. Either way nothing reaches the caller's mailbox.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use snow_shared::{Atom, NodeName, Pid, Term};

use super::node_state::Node;
use crate::error::CallError;
use crate::reason;
use crate::seam::BoxFuture;

/// How much longer than a local call's timeout its caller waits for the process running it to
/// report (it reports at the timeout at the latest; this only bounds a scheduler that is late).
const LOCAL_GRACE: Duration = Duration::from_secs(5);

/// One call from `from` (`None`: outside any process) on `node`, to `target`.
pub(crate) fn call(
    node: &Node,
    from: Option<&Pid>,
    target: &NodeName,
    function: &str,
    args: Vec<Term>,
    timeout: Duration,
) -> BoxFuture<Result<Term, CallError>> {
    if target == node.name() {
        return Box::pin(call_here(node.clone(), function.to_owned(), args, timeout));
    }
    match node.inner.distribution() {
        Some(dist) => dist.call(from, target, &Atom::new(function), args, timeout),
        None => {
            let target = target.clone();
            Box::pin(async move { Err(CallError::NotDistributed(target)) })
        }
    }
}

/// A cast from `from` on `node` to `target`: returns once the request is on its way.
pub(crate) async fn cast(
    node: &Node,
    from: Option<&Pid>,
    target: &NodeName,
    function: &str,
    args: Vec<Term>,
) -> Result<(), CallError> {
    if target == node.name() {
        let body = node.inner.spawnable(&Atom::new(function)).ok_or_else(|| CallError::NotSpawnable {
            node: target.clone(),
            function: function.to_owned(),
            reason: reason::not_spawnable(function),
        })?;
        body.start(node, node.inner.table.prepare(), Term::List(args));
        return Ok(());
    }
    match node.inner.distribution() {
        Some(dist) => dist.cast(from, target, &Atom::new(function), args).await,
        None => Err(CallError::NotDistributed(target.clone())),
    }
}

/// The same call on every node of `targets` at once; the results in the order of `targets`, once
/// all are in (at the latest after `timeout`).
pub(crate) async fn multicall(
    node: &Node,
    from: Option<&Pid>,
    targets: &[NodeName],
    function: &str,
    args: Vec<Term>,
    timeout: Duration,
) -> Vec<Result<Term, CallError>> {
    let calls = targets.iter().map(|target| call(node, from, target, function, args.clone(), timeout)).collect();
    join_all(calls).await
}

/// Polls every future until all are done; their outputs in order.
async fn join_all<T>(futures: Vec<BoxFuture<T>>) -> Vec<T> {
    let mut running: Vec<Option<Pin<Box<dyn Future<Output = T> + Send>>>> = futures.into_iter().map(Some).collect();
    let mut done: Vec<Option<T>> = running.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (slot, out) in running.iter_mut().zip(done.iter_mut()) {
            if let Some(future) = slot {
                if let Poll::Ready(value) = future.as_mut().poll(cx) {
                    *out = Some(value);
                    *slot = None;
                }
            }
        }
        if running.iter().all(Option::is_none) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    done.into_iter().flatten().collect()
}

/// Kills the process running a local call if its caller stops waiting (its future is dropped):
/// the runner's link takes the function's process with it.
struct RunnerGuard {
    node: Node,
    runner: Pid,
    armed: bool,
}

impl Drop for RunnerGuard {
    fn drop(&mut self) {
        if self.armed {
            self.node.exit(&self.runner, reason::kill());
        }
    }
}

/// A call to this node itself: a process of its own (trapping exits) runs the function linked and
/// monitored, waits for its `:DOWN` (killing it at the timeout) and hands over the result. A
/// caller that stops waiting kills that process, and the link the function's.
async fn call_here(node: Node, function: String, args: Vec<Term>, timeout: Duration) -> Result<Term, CallError> {
    let me = node.name().clone();
    let body = node.inner.spawnable(&Atom::new(&function)).ok_or_else(|| CallError::NotSpawnable {
        node: me.clone(),
        function: function.clone(),
        reason: reason::not_spawnable(&function),
    })?;
    let (tx, rx) = async_channel::bounded(1);
    let (node_name, name) = (me.clone(), function.clone());
    let runner = node.spawn(move |mut runner| async move {
        runner.trap_exit(true);
        let (child, reference) = runner.spawn_call_child(&*body, Term::List(args));
        let watch = reference.clone();
        let is_down = move |m: &Term| matches!(m.as_tuple(), Some([tag, Term::Ref(r), _, _]) if *r == watch && tag.is_atom("DOWN"));
        let result = match runner.receive_match_timeout(is_down, timeout).await {
            Some(down) => {
                let reason = down.as_tuple().map_or(Term::Unit, |d| d[3].clone());
                reason::returned_value(&reference, reason)
                    .map_err(|reason| CallError::Exit { node: node_name, function: name, reason })
            }
            None => {
                runner.send_exit(&child, reason::kill());
                Err(CallError::Timeout { node: node_name, function: name, after: timeout })
            }
        };
        let _ = tx.send(result).await;
    });
    let mut guard = RunnerGuard { node: node.clone(), runner, armed: true };
    let outcome = crate::timers::within(timeout + LOCAL_GRACE, rx.recv()).await;
    guard.armed = false;
    match outcome {
        Some(Ok(result)) => result,
        Some(Err(_)) | None => Err(CallError::Timeout { node: me, function, after: timeout }),
    }
}
