//! Remote calls (Erlang's `erpc`) on the caller's side, and messages to remote aliases.
//!
//! A call is a remote spawn with the CALL option (PROTOCOL.md 4.3.8): the callee's node monitors
//! the new process for the caller with the request's reference, and its return value comes back
//! as the monitor's reason `{ref, :return, value}`. The driver, not the caller's mailbox, takes
//! that SPAWN_REPLY and MONITOR_EXIT: they are offered to the call table ([`Driver::call_message`])
//! before anything is delivered to a process. A call that stops waiting (timeout, or its future
//! dropped because the caller exited) is *abandoned*: the callee is killed (at once if its pid is
//! known, else when its SPAWN_REPLY comes) and what still comes for that reference goes to the
//! host, which drops it because no process holds a monitor with that reference. So a caller's
//! mailbox never receives a late result.

use std::sync::Arc;
use std::time::Duration;

use snow_shared::dist::control::{Control, MonitorTarget, Outgoing, SpawnOpts};
use snow_shared::dist::Flags;
use snow_shared::{Atom, NodeName, Pid, Ref, Term};

use super::abandon::UnlessDone;
use super::call_table::{CallWait, Outcome};
use super::link::{Link, Pushed};
use super::service::Service;
use super::state::{frame_for, sender_lane, Driver, Origin};
use crate::error::{CallError, DistError};
use crate::reason;
use crate::seam::Backpressure;
use crate::sync::lock;

/// The pid a call from outside any process is made as: the node's runtime pid (id 0).
fn runtime_pid(dist: &Driver) -> Pid {
    Pid::new(dist.name.clone(), 0, dist.creation)
}

impl Driver {
    /// Offers a message from `peer` to the call table: a SPAWN_REPLY or MONITOR_EXIT for a call
    /// is consumed here (`None`); anything else comes back to be handled as usual. `reply` queues
    /// a signal back to the peer (the kill of an abandoned callee).
    pub fn call_message(&self, peer: &NodeName, msg: Control, reply: &mut dyn FnMut(Control)) -> Option<Control> {
        match msg {
            Control::SpawnReply { reference, to, result } => {
                let mut calls = lock(&self.calls);
                let Some(wait) = calls.get_mut(&reference) else {
                    return Some(Control::SpawnReply { reference, to, result });
                };
                if &wait.node != peer || wait.requester != to || wait.child.is_some() {
                    drop(calls);
                    self.warn_limited("call-reply-forged", || {
                        format!("ignored a spawn reply from {peer} for a call it was not asked to run")
                    });
                    return None;
                }
                match result {
                    Ok(child) if wait.reply.is_some() => wait.child = Some(child),
                    Ok(child) => {
                        // Abandoned before the callee's pid was known: kill it now.
                        calls.remove(&reference);
                        drop(calls);
                        reply(Control::Exit2 { from: to, to: child, reason: reason::kill() });
                    }
                    Err(why) => {
                        if let Some(tx) = calls.remove(&reference).and_then(|w| w.reply) {
                            let _ = tx.try_send(Outcome::Refused(why));
                        }
                    }
                }
                None
            }
            Control::MonitorExit { from: MonitorTarget::Pid(child), to, reference, reason } => {
                let mut calls = lock(&self.calls);
                let matches = match calls.get(&reference) {
                    None => {
                        return Some(Control::MonitorExit { from: MonitorTarget::Pid(child), to, reference, reason })
                    }
                    Some(wait) => &wait.node == peer && wait.requester == to && wait.child.as_ref() == Some(&child),
                };
                if !matches {
                    drop(calls);
                    self.warn_limited("call-down-forged", || {
                        format!("ignored a :DOWN from {peer} for a call, not from the process that runs it")
                    });
                    return None;
                }
                if let Some(tx) = calls.remove(&reference).and_then(|w| w.reply) {
                    let _ = tx.try_send(Outcome::Down(reason));
                }
                None
            }
            other => Some(other),
        }
    }

    /// The caller of `reference` stopped waiting: kill its callee if its pid is known (and forget
    /// the call), else remember to kill it when its SPAWN_REPLY comes.
    fn abandon_call(self: &Arc<Self>, reference: &Ref) {
        let kill = {
            let mut calls = lock(&self.calls);
            match calls.get_mut(reference) {
                None => None,
                Some(wait) if wait.child.is_some() => calls.remove(reference),
                Some(wait) => {
                    wait.reply = None;
                    None
                }
            }
        };
        if let Some(CallWait { node, requester, child: Some(child), .. }) = kill {
            log::debug!("{}: call {reference} to {node} abandoned; killing {child}", self.name);
            let msg = Control::Exit2 { from: requester, to: child, reason: reason::kill() };
            let _ = self.route(&node, &msg, Origin::Signal { by_process: false });
        }
    }
}

/// The connection to `node` once up, with the CALLS capability; the error a caller gets
/// otherwise.
async fn connected_for_calls(
    service: &Service,
    node: &NodeName,
    within: Duration,
    what: &str,
) -> Result<Arc<dyn Link>, CallError> {
    let dist = &service.0;
    let no_connection = |source: DistError| CallError::NoConnection { node: node.clone(), source };
    match dist.within(within, crate::seam::Distribution::connect(service, node)).await {
        Some(Ok(())) => {}
        Some(Err(e)) => return Err(no_connection(e)),
        None => {
            return Err(CallError::Timeout { node: node.clone(), function: what.to_owned(), after: within });
        }
    }
    let conn = dist.conn(node).ok_or_else(|| no_connection(DistError::ConnectionLost(node.clone())))?;
    if !conn.flags().contains(Flags::SPAWN.with(Flags::CALLS)) {
        log::debug!("{}: {node} was asked for a call but does not offer CALLS ({:?})", dist.name, conn.flags());
        return Err(CallError::Unsupported(node.clone()));
    }
    Ok(conn)
}

impl Service {
    /// [`Distribution::call`](crate::seam::Distribution::call): connect, spawn the function with
    /// the CALL option, wait for its `:DOWN` (module docs).
    pub(crate) async fn call_remote(
        &self,
        from: Option<Pid>,
        node: NodeName,
        function: Atom,
        args: Vec<Term>,
        timeout: Duration,
    ) -> Result<Term, CallError> {
        let dist = self.0.clone();
        let started = dist.runtime.now();
        let name = function.as_str().to_owned();
        let timed_out = || CallError::Timeout { node: node.clone(), function: name.clone(), after: timeout };
        let no_connection = |source: DistError| CallError::NoConnection { node: node.clone(), source };
        let conn = connected_for_calls(self, &node, timeout, &name).await?;
        let host = dist.host().ok_or_else(|| no_connection(DistError::ShuttingDown))?;
        let requester = from.unwrap_or_else(|| runtime_pid(&dist));
        let reference = host.make_ref();
        let (tx, rx) = async_channel::bounded(1);
        let wait = CallWait { node: node.clone(), requester: requester.clone(), child: None, reply: Some(tx) };
        lock(&dist.calls).insert(reference.clone(), wait);
        // A caller that times out, or whose future is dropped, leaves nothing running behind it.
        let guard = UnlessDone::new(|| dist.abandon_call(&reference));
        let request = Control::SpawnReq {
            reference: reference.clone(),
            from: requester.clone(),
            function,
            args,
            opts: SpawnOpts { monitor: true, call: true, ..SpawnOpts::default() },
        };
        // On the caller's lane: ordered after everything it sent that node before. Never refused
        // (the caller waits for the result right here, so it is not suspended for the queue).
        let frame = frame_for(&*conn, Outgoing::Control(&request));
        if let Pushed::Closed = conn.push(sender_lane(&requester), frame, None) {
            lock(&dist.calls).remove(&reference);
            guard.done();
            return Err(no_connection(DistError::ConnectionLost(node.clone())));
        }
        let left = timeout.saturating_sub(dist.runtime.now().saturating_duration_since(started));
        let outcome = dist.within(left, rx.recv()).await;
        // No outcome: the guard abandons the call as it drops (the callee is killed).
        let outcome = outcome.ok_or_else(timed_out)?;
        guard.done();
        match outcome {
            Ok(Outcome::Down(reason)) => reason::returned_value(&reference, reason).map_err(|reason| CallError::Exit {
                node: node.clone(),
                function: name.clone(),
                reason,
            }),
            Ok(Outcome::Refused(reason)) => Err(CallError::NotSpawnable { node: node.clone(), function: name, reason }),
            Ok(Outcome::NoConnection) | Err(_) => Err(no_connection(DistError::ConnectionLost(node.clone()))),
        }
    }

    /// [`Distribution::cast`](crate::seam::Distribution::cast): connect, then queue a SPAWN_REQ
    /// with the NO_REPLY option.
    pub(crate) async fn cast_remote(
        &self,
        from: Option<Pid>,
        node: NodeName,
        function: Atom,
        args: Vec<Term>,
    ) -> Result<(), CallError> {
        let dist = self.0.clone();
        let deadline = self.connect_deadline();
        let conn = connected_for_calls(self, &node, deadline, function.as_str()).await?;
        let host =
            dist.host().ok_or(CallError::NoConnection { node: node.clone(), source: DistError::ShuttingDown })?;
        let requester = from.unwrap_or_else(|| runtime_pid(&dist));
        let request = Control::SpawnReq {
            reference: host.make_ref(),
            from: requester.clone(),
            function,
            args,
            opts: SpawnOpts { no_reply: true, ..SpawnOpts::default() },
        };
        match conn.push(sender_lane(&requester), frame_for(&*conn, Outgoing::Control(&request)), None) {
            Pushed::Closed => {
                Err(CallError::NoConnection { node: node.clone(), source: DistError::ConnectionLost(node) })
            }
            Pushed::Clear | Pushed::OverBudget | Pushed::AtCeiling => Ok(()),
        }
    }

    /// [`Distribution::send_alias`](crate::seam::Distribution::send_alias): an ALIAS_SEND, unless
    /// the connection is up without ALIAS (then dropped, with a rate-limited warning). Queued
    /// while connecting, it is dropped if the connection comes up without ALIAS (`take_over`).
    pub(crate) fn send_to_alias(&self, from: Option<&Pid>, alias: &Ref, msg: Term) -> Backpressure {
        let dist = &self.0;
        let node = alias.node();
        if dist.conn(node).is_some_and(|conn| !conn.flags().contains(Flags::ALIAS)) {
            dist.warn_limited("alias-unsupported", || {
                format!("dropped a message to alias {alias}: {node} does not offer aliases (an older build)")
            });
            return Backpressure::Clear;
        }
        let (from, origin) = match from {
            Some(pid) => (pid.clone(), Origin::Process),
            None => (runtime_pid(dist), Origin::Runtime),
        };
        let msg = Control::AliasSend { from, alias: alias.clone(), msg };
        dist.route(node, &msg, origin)
    }
}
