//! What the embedder's processes do through the node: register, exit, names, send, link, monitor,
//! exit signals, remote spawn. A process is named by its number (`snow_pid.id` of the pid
//! `snow_process_new` gave); number 0 is the node itself (a send from outside any process).

use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use snow_node_rt::{Backpressure, Monitored, NodeName, Pid, Term};

use crate::host::CHost;
use crate::ids::{self, snow_pid, snow_ref};
use crate::node::{self, not_distributed, snow_done_fn, snow_node, spawn_failure, Completion, Done};
use crate::status::*;
use crate::term::decode;

/// `snow_spawn_remote`: link the new process to the requester before it runs (`spawn_link`).
pub const SNOW_SPAWN_LINK: u32 = 1;
/// `snow_spawn_remote`: the requester monitors the new process before it runs (`spawn_monitor`).
pub const SNOW_SPAWN_MONITOR: u32 = 2;

struct NoWake;

impl Wake for NoWake {
    fn wake(self: Arc<Self>) {}
}

/// What a process's send or signal means for it, as a status: go on, suspend until
/// `SNOW_EVENT_RESUME`, or stopped at the ceiling.
pub(crate) fn answer(host: &CHost, from: Option<&Pid>, backpressure: Option<Backpressure>) -> Outcome {
    let (Some(from), Some(backpressure)) = (from, backpressure) else { return Ok(SNOW_OK) };
    match backpressure {
        Backpressure::Clear => Ok(SNOW_OK),
        Backpressure::Suspend(congestion) => {
            let waker = Waker::from(Arc::new(NoWake));
            if congestion.poll_room(&mut Context::from_waker(&waker)).is_ready() {
                return Ok(SNOW_OK);
            }
            let (host, from) = (host.weak(), from.clone());
            let runtime = host.upgrade().map(|h| h.runtime.clone());
            if let Some(runtime) = runtime {
                snow_node_rt::Runtime::spawn(
                    &*runtime,
                    Box::pin(async move {
                        futures_lite::future::poll_fn(|cx| match congestion.poll_room(cx) {
                            Poll::Ready(()) => Poll::Ready(()),
                            Poll::Pending => Poll::Pending,
                        })
                        .await;
                        if let Some(host) = host.upgrade() {
                            host.resume(&from);
                        }
                    }),
                );
            }
            Ok(SNOW_SUSPEND)
        }
        Backpressure::Overflow(reason) => {
            let message = format!(
                "the connection's send queue is at its ceiling: the message was not sent, and process {from} was \
                 stopped with {reason} (its links and monitors fire); stop running it"
            );
            let _ = host.exit_process(from.id(), reason);
            Err(Failure::new(SNOW_ERR_OVERFLOW, message))
        }
    }
}

/// # Safety
/// `node` must be null or a node not yet freed.
unsafe fn host<'a>(node: *const snow_node) -> Outcome<&'a Arc<CHost>> {
    // SAFETY: the caller's contract.
    Ok(unsafe { node::node(node)? }.host())
}

/// Registers a process of the embedder with the node: `*pid` is set to its new pid, and events for
/// it go to the `deliver` callback with `token` (any value the embedder chooses, e.g. its own
/// process pointer). The process is named by `pid->id` in the other calls. It stays registered
/// until `snow_process_exit`.
///
/// # Safety
/// `node` must be a node not yet freed; `pid` writable.
#[no_mangle]
pub unsafe extern "C" fn snow_process_new(node: *const snow_node, token: u64, pid: *mut snow_pid) -> snow_status {
    guard("snow_process_new", || {
        // SAFETY: the caller's contract.
        let host = unsafe { host(node)? };
        if pid.is_null() {
            return Err(Failure::argument("pid is null"));
        }
        let new = host.new_process(token);
        // SAFETY: checked non-null; the caller's contract says writable.
        unsafe { pid.write(snow_pid::from_pid(&new)) };
        Ok(SNOW_OK)
    })
}

/// Process `process` exits with `reason` (an encoded term, e.g. the atom `normal`):
/// its registered name is freed, linked processes get an exit signal and monitors fire (on this
/// node and on others), the monitors it holds are removed, and it is forgotten: no event for it
/// is delivered after this returns, except by a callback already running on another thread.
///
/// # Safety
/// `node` must be a node not yet freed; `reason` must point at `reason_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn snow_process_exit(
    node: *const snow_node,
    process: u64,
    reason: *const u8,
    reason_len: usize,
) -> snow_status {
    guard("snow_process_exit", || {
        // SAFETY: the caller's contract.
        let host = unsafe { host(node)? };
        // SAFETY: the caller's contract.
        let reason = decode(unsafe { ids::bytes(reason, reason_len, "reason")? })?;
        if process == 0 {
            return Err(Failure::argument("process 0 is the node itself; it does not exit (stop the node instead)"));
        }
        host.exit_process(process, reason)
    })
}

/// Registers process `process` under `name` (`len` bytes of UTF-8) on this node, so that other
/// processes and nodes can send to `{name, node}`. `SNOW_ERR_NAME_TAKEN` if another process holds
/// the name or this one has a name already.
///
/// # Safety
/// `node` must be a node not yet freed; `name` must point at `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn snow_register(
    node: *const snow_node,
    process: u64,
    name: *const c_char,
    len: usize,
) -> snow_status {
    guard("snow_register", || {
        // SAFETY: the caller's contract.
        let host = unsafe { host(node)? };
        // SAFETY: the caller's contract.
        let name = unsafe { ids::atom(name, len, "name")? };
        host.register(process, name)
    })
}

/// Removes the registered name `name`; `SNOW_ERR_NOT_REGISTERED` if no process holds it.
///
/// # Safety
/// `node` must be a node not yet freed; `name` must point at `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn snow_unregister(node: *const snow_node, name: *const c_char, len: usize) -> snow_status {
    guard("snow_unregister", || {
        // SAFETY: the caller's contract.
        let host = unsafe { host(node)? };
        // SAFETY: the caller's contract.
        let name = unsafe { ids::atom(name, len, "name")? };
        host.unregister(&name)
    })
}

/// The pid of the local process registered as `name`, into `*pid`; `SNOW_ERR_NOT_REGISTERED` if
/// none is.
///
/// # Safety
/// `node` must be a node not yet freed; `name` must point at `len` readable bytes; `pid` writable.
#[no_mangle]
pub unsafe extern "C" fn snow_whereis(
    node: *const snow_node,
    name: *const c_char,
    len: usize,
    pid: *mut snow_pid,
) -> snow_status {
    guard("snow_whereis", || {
        // SAFETY: the caller's contract.
        let host = unsafe { host(node)? };
        // SAFETY: the caller's contract.
        let name = unsafe { ids::atom(name, len, "name")? };
        let found = host
            .whereis(&name)
            .ok_or_else(|| Failure::new(SNOW_ERR_NOT_REGISTERED, format!("no process is registered as {name}")))?;
        // SAFETY: the caller's contract.
        unsafe { ids::put(pid, snow_pid::from_pid(&found), "pid")? };
        Ok(SNOW_OK)
    })
}

/// Sends the encoded term `msg` (`len` bytes, copied) from `process` (0: from outside any
/// process) to `to`, on this node or another: Erlang's `to ! msg`. Never blocks. `SNOW_OK`: sent
/// (a message to a dead process is dropped, as in Erlang); `SNOW_SUSPEND`: queued, but the
/// connection is over its budget: do not run `process` again until its `SNOW_EVENT_RESUME`;
/// `SNOW_ERR_OVERFLOW`: not sent, the queue is at its ceiling and `process` has been stopped.
/// A message to a local process is delivered before this returns (the `deliver` callback runs on
/// this thread).
///
/// # Safety
/// `node` must be a node not yet freed; `to` a valid pid; `msg` must point at `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn snow_send(
    node: *const snow_node,
    process: u64,
    to: *const snow_pid,
    msg: *const u8,
    len: usize,
) -> snow_status {
    guard("snow_send", || {
        // SAFETY: the caller's contract.
        let host = unsafe { host(node)? };
        // SAFETY: the caller's contract.
        let to = unsafe { ids::get(to, "to")? }.read_pid("to")?;
        // SAFETY: the caller's contract.
        let msg = decode(unsafe { ids::bytes(msg, len, "msg")? })?;
        let from = host.acting(process)?;
        if host.is_local(&to) {
            host.deliver_local(&to, msg);
            return Ok(SNOW_OK);
        }
        let Some(dist) = host.distribution() else { return Ok(SNOW_OK) };
        let backpressure = dist.send(from.as_ref(), &to, msg);
        answer(host, from.as_ref(), Some(backpressure))
    })
}

/// Sends `msg` to the process registered as `name` on node `at` (nul-terminated `name@host`; null
/// or this node's name: this node). Erlang's `{name, at} ! msg`. On this node a name nobody holds
/// is `SNOW_ERR_NOT_REGISTERED` (Erlang's `badarg`); on another node, a message to a name nobody
/// holds there is dropped. Statuses otherwise as `snow_send`.
///
/// # Safety
/// `node` must be a node not yet freed; `name` and `msg` must point at as many readable bytes as
/// their lengths say; `at` null or nul-terminated.
#[no_mangle]
pub unsafe extern "C" fn snow_send_named(
    node: *const snow_node,
    process: u64,
    name: *const c_char,
    name_len: usize,
    at: *const c_char,
    msg: *const u8,
    len: usize,
) -> snow_status {
    guard("snow_send_named", || {
        // SAFETY: the caller's contract.
        let host = unsafe { host(node)? };
        // SAFETY: the caller's contract.
        let name = unsafe { ids::atom(name, name_len, "name")? };
        // SAFETY: the caller's contract.
        let at = unsafe { optional_node(at, host)? };
        // SAFETY: the caller's contract.
        let msg = decode(unsafe { ids::bytes(msg, len, "msg")? })?;
        let from = host.acting(process)?;
        if at == *host.name() {
            let to = host.whereis(&name).ok_or_else(|| {
                Failure::new(SNOW_ERR_NOT_REGISTERED, format!("no process is registered as {name} on this node"))
            })?;
            host.deliver_local(&to, msg);
            return Ok(SNOW_OK);
        }
        let dist = host.distribution().ok_or_else(not_distributed)?;
        let backpressure = dist.send_named(from.as_ref(), &at, &name, msg);
        answer(host, from.as_ref(), Some(backpressure))
    })
}

/// The arguments of a remote spawn or call: an encoded list of `len` bytes at `args`.
///
/// # Safety
/// `args` must point at `len` readable bytes.
pub(crate) unsafe fn args_list(args: *const u8, len: usize) -> Outcome<Vec<Term>> {
    // SAFETY: the caller's contract.
    match decode(unsafe { ids::bytes(args, len, "args")? })? {
        Term::List(args) => Ok(args),
        other => Err(Failure::new(
            SNOW_ERR_BAD_TERM,
            format!("args must be an encoded list of the arguments, not {}", other.kind()),
        )),
    }
}

/// A node name that may be null (this node).
///
/// # Safety
/// `at` must be null or nul-terminated.
unsafe fn optional_node(at: *const c_char, host: &CHost) -> Outcome<NodeName> {
    if at.is_null() {
        return Ok(host.name().clone());
    }
    // SAFETY: the caller's contract.
    unsafe { ids::c_node_name(at, "at") }
}

/// Links `process` with `other` (Erlang's `link/1`): when either exits, the other gets an exit
/// signal (`SNOW_EVENT_EXIT`, `linked`). If `other` does not exist, `process` gets an exit signal
/// `:noproc` (at once for a local pid, from its node for a remote one); if its node cannot be
/// reached, `:noconnection`. Statuses as `snow_send`.
///
/// # Safety
/// `node` must be a node not yet freed; `other` a valid pid.
#[no_mangle]
pub unsafe extern "C" fn snow_link(node: *const snow_node, process: u64, other: *const snow_pid) -> snow_status {
    guard("snow_link", || {
        // SAFETY: the caller's contract.
        let host = unsafe { host(node)? };
        // SAFETY: the caller's contract.
        let other = unsafe { ids::get(other, "other")? }.read_pid("other")?;
        let me = host.process(process)?;
        let backpressure = host.link(process, &other)?;
        answer(host, Some(&me), backpressure)
    })
}

/// Removes the link between `process` and `other`; no exit signal of that link arrives after this
/// returns.
///
/// # Safety
/// `node` must be a node not yet freed; `other` a valid pid.
#[no_mangle]
pub unsafe extern "C" fn snow_unlink(node: *const snow_node, process: u64, other: *const snow_pid) -> snow_status {
    guard("snow_unlink", || {
        // SAFETY: the caller's contract.
        let host = unsafe { host(node)? };
        // SAFETY: the caller's contract.
        let other = unsafe { ids::get(other, "other")? }.read_pid("other")?;
        let me = host.process(process)?;
        let backpressure = host.unlink(process, &other)?;
        answer(host, Some(&me), backpressure)
    })
}

/// Sends an exit signal with `reason` (encoded) from `process` (0: the node itself) to `to`
/// (Erlang's `exit(to, reason)`): `to` gets `SNOW_EVENT_EXIT` with `linked` false, or the
/// equivalent in a process of another node.
///
/// # Safety
/// `node` must be a node not yet freed; `to` a valid pid; `reason` must point at `reason_len`
/// readable bytes.
#[no_mangle]
pub unsafe extern "C" fn snow_exit(
    node: *const snow_node,
    process: u64,
    to: *const snow_pid,
    reason: *const u8,
    reason_len: usize,
) -> snow_status {
    guard("snow_exit", || {
        // SAFETY: the caller's contract.
        let host = unsafe { host(node)? };
        // SAFETY: the caller's contract.
        let to = unsafe { ids::get(to, "to")? }.read_pid("to")?;
        // SAFETY: the caller's contract.
        let reason = decode(unsafe { ids::bytes(reason, reason_len, "reason")? })?;
        let acting = host.acting(process)?;
        let from = acting.clone().unwrap_or_else(|| host.pid_of(0));
        if host.is_local(&to) {
            host.exit_signal_local(&from, &to, reason);
            return Ok(SNOW_OK);
        }
        let Some(dist) = host.distribution() else { return Ok(SNOW_OK) };
        let backpressure = dist.exit(&from, &to, reason, false);
        answer(host, acting.as_ref(), Some(backpressure))
    })
}

/// `process` monitors `target` (Erlang's `monitor(process, target)`): `*reference` is set to the
/// monitor's reference, and `process` gets one `SNOW_EVENT_DOWN` with it when `target` exits (its
/// reason), does not exist (`:noproc`, at once for a local pid), or its node is lost
/// (`:noconnection`). Statuses as `snow_send`.
///
/// # Safety
/// `node` must be a node not yet freed; `target` a valid pid; `reference` writable.
#[no_mangle]
pub unsafe extern "C" fn snow_monitor(
    node: *const snow_node,
    process: u64,
    target: *const snow_pid,
    reference: *mut snow_ref,
) -> snow_status {
    guard("snow_monitor", || {
        // SAFETY: the caller's contract.
        let host = unsafe { host(node)? };
        // SAFETY: the caller's contract.
        let target = unsafe { ids::get(target, "target")? }.read_pid("target")?;
        if reference.is_null() {
            return Err(Failure::argument("reference is null"));
        }
        let me = host.process(process)?;
        let (made, backpressure) = host.monitor(process, Monitored::Pid(target))?;
        // SAFETY: checked non-null; the caller's contract says writable.
        unsafe { reference.write(snow_ref::from_ref(&made)) };
        answer(host, Some(&me), backpressure)
    })
}

/// `snow_monitor` of whatever process is registered as `name` on node `at` (null: this node) when
/// the monitor is set up (Erlang's `monitor(process, {name, at})`); the `:DOWN` names
/// `{name, at}`.
///
/// # Safety
/// `node` must be a node not yet freed; `name` must point at `len` readable bytes; `at` null or
/// nul-terminated; `reference` writable.
#[no_mangle]
pub unsafe extern "C" fn snow_monitor_name(
    node: *const snow_node,
    process: u64,
    name: *const c_char,
    len: usize,
    at: *const c_char,
    reference: *mut snow_ref,
) -> snow_status {
    guard("snow_monitor_name", || {
        // SAFETY: the caller's contract.
        let host = unsafe { host(node)? };
        // SAFETY: the caller's contract.
        let name = unsafe { ids::atom(name, len, "name")? };
        // SAFETY: the caller's contract.
        let at = unsafe { optional_node(at, host)? };
        if reference.is_null() {
            return Err(Failure::argument("reference is null"));
        }
        let me = host.process(process)?;
        let (made, backpressure) = host.monitor(process, Monitored::Name { name, node: at })?;
        // SAFETY: checked non-null; the caller's contract says writable.
        unsafe { reference.write(snow_ref::from_ref(&made)) };
        answer(host, Some(&me), backpressure)
    })
}

/// `process` drops its monitor `reference` (Erlang's `demonitor/1`): no `SNOW_EVENT_DOWN` for it
/// is delivered after this returns. Removing one from the mailbox that arrived before (the
/// `flush` option) is the embedder's: match its `reference`. A reference it does not hold is
/// ignored.
///
/// # Safety
/// `node` must be a node not yet freed; `reference` a valid reference.
#[no_mangle]
pub unsafe extern "C" fn snow_demonitor(
    node: *const snow_node,
    process: u64,
    reference: *const snow_ref,
) -> snow_status {
    guard("snow_demonitor", || {
        // SAFETY: the caller's contract.
        let host = unsafe { host(node)? };
        // SAFETY: the caller's contract.
        let reference = unsafe { ids::get(reference, "reference")? }.read_ref("reference")?;
        let me = host.process(process)?;
        let backpressure = host.demonitor(process, &reference)?;
        answer(host, Some(&me), backpressure)
    })
}

/// Asks node `at` to spawn its allow-listed `function` (`function_len` bytes of UTF-8) with `args`
/// (an encoded list, `args_len` bytes) for `process` (Erlang's `spawn_request`); `flags` is 0 or
/// any of `SNOW_SPAWN_LINK` and `SNOW_SPAWN_MONITOR`, which set up the link or monitor before the
/// new process runs. `done` gets the outcome: `SNOW_OK` with the new pid (and with
/// `SNOW_SPAWN_MONITOR` the monitor's reference, whose `:DOWN` comes as `SNOW_EVENT_DOWN`);
/// `SNOW_ERR_REFUSED` with the other node's reason; `SNOW_ERR_CONNECT`, `SNOW_ERR_TIMEOUT`...
/// The returned status only says whether the request was accepted (then `done` is called once).
///
/// # Safety
/// `node` must be a node not yet freed; `at` nul-terminated; `function` and `args` must point at
/// as many readable bytes as their lengths say.
#[no_mangle]
pub unsafe extern "C" fn snow_spawn_remote(
    node: *const snow_node,
    process: u64,
    at: *const c_char,
    function: *const c_char,
    function_len: usize,
    args: *const u8,
    args_len: usize,
    flags: u32,
    done: snow_done_fn,
    ctx: *mut c_void,
) -> snow_status {
    guard("snow_spawn_remote", || {
        // SAFETY: the caller's contract.
        let host = unsafe { host(node)? };
        // SAFETY: the caller's contract.
        let at = unsafe { ids::c_node_name(at, "at")? };
        // SAFETY: the caller's contract.
        let function = unsafe { ids::atom(function, function_len, "function")? };
        // SAFETY: the caller's contract.
        let args = unsafe { args_list(args, args_len)? };
        if flags & !(SNOW_SPAWN_LINK | SNOW_SPAWN_MONITOR) != 0 {
            return Err(Failure::argument(format!(
                "flags {flags:#x}: only SNOW_SPAWN_LINK and SNOW_SPAWN_MONITOR exist"
            )));
        }
        let completion = Completion::new(done, ctx)?;
        let me = host.process(process)?;
        let dist = host.distribution().ok_or_else(not_distributed)?;
        let (link, monitor) = (flags & SNOW_SPAWN_LINK != 0, flags & SNOW_SPAWN_MONITOR != 0);
        let request = dist.spawn_request(&me, &at, &function, args, link, monitor);
        snow_node_rt::Runtime::spawn(
            &*host.runtime,
            Box::pin(async move {
                completion.complete(match request.await {
                    Ok((pid, reference)) => {
                        let mut done = Done::ok();
                        done.pid = Some(pid);
                        done.reference = monitor.then_some(reference);
                        done
                    }
                    Err(e) => spawn_failure(e),
                });
            }),
        );
        Ok(SNOW_OK)
    })
}
