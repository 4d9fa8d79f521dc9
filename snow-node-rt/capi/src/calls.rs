//! Remote calls from C (Erlang's `erpc`; README, "Remote calls"): `snow_call` runs a function
//! another node allow-listed and hands its return value, or why there is none, to a completion
//! callback; `snow_cast` starts one without waiting for it. Both go through the node's
//! distribution layer ([`Distribution::call`](snow_node_rt::Distribution::call)), whose driver
//! takes the callee's reply itself: nothing about a call ever reaches the caller's `deliver`
//! callback, not even a result that comes after the timeout.
//!
//! A call waits for the function on its node, never in the caller's thread: the caller (one of
//! the embedder's processes, or 0 for code outside any process) goes on, and its completion runs
//! once. A caller that exits while it waits abandons the call, as a Rust process does: the
//! function's process is killed.

use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

use snow_node_rt::error::CallError;
use snow_node_rt::{Atom, NodeName, Pid, Runtime, Term};

use crate::host::CHost;
use crate::ids;
use crate::node::{self, not_distributed, snow_done_fn, snow_node, Completion, Done};
use crate::process::args_list;
use crate::status::*;

/// What a call or cast asks for, read from C during the entry point.
struct Request {
    host: Arc<CHost>,
    /// The calling process (`None`: outside any process).
    from: Option<Pid>,
    at: NodeName,
    function: Atom,
    args: Vec<Term>,
    completion: Completion,
}

/// Reads a request's arguments (everything is copied: nothing of C's is kept).
///
/// # Safety
/// As `snow_call`.
#[allow(clippy::too_many_arguments)]
unsafe fn request(
    node: *const snow_node,
    process: u64,
    at: *const c_char,
    function: *const c_char,
    function_len: usize,
    args: *const u8,
    args_len: usize,
    done: snow_done_fn,
    ctx: *mut c_void,
) -> Outcome<Request> {
    // SAFETY: the caller's contract.
    let host = unsafe { node::node(node)? }.host().clone();
    // SAFETY: the caller's contract.
    let at = unsafe { ids::c_node_name(at, "at")? };
    // SAFETY: the caller's contract.
    let function = unsafe { ids::atom(function, function_len, "function")? };
    // SAFETY: the caller's contract.
    let args = unsafe { args_list(args, args_len)? };
    let completion = Completion::new(done, ctx)?;
    let from = host.acting(process)?;
    Ok(Request { host, from, at, function, args, completion })
}

/// The completion of a call that failed: the status of its [`CallError`] variant, its message,
/// and the term that goes with it (the exit reason, or the callee's reason for refusing).
fn call_failure(e: CallError) -> Done {
    let (status, data) = match &e {
        CallError::NotDistributed(_) => (SNOW_ERR_NOT_DISTRIBUTED, None),
        CallError::NotSpawnable { reason, .. } => (SNOW_ERR_REFUSED, Some(reason.clone())),
        CallError::NoConnection { .. } => (SNOW_ERR_CONNECT, None),
        CallError::Timeout { .. } => (SNOW_ERR_TIMEOUT, None),
        CallError::Exit { reason, .. } => (SNOW_ERR_EXIT, Some(reason.clone())),
        CallError::Unsupported(_) => (SNOW_ERR_UNSUPPORTED, None),
    };
    log::debug!("snow_call: {e}");
    let mut done = Done::failed(status, e.to_string());
    done.data = data;
    done
}

/// Calls the function `function` (`function_len` bytes of UTF-8) that node `at` (nul-terminated
/// `name@host`) allow-listed, with `args` (an encoded list, `args_len` bytes, copied), for
/// `process` (0: from outside any process), and waits at most `timeout_ms` milliseconds for its
/// value (Erlang's `erpc:call(at, m, function, args, timeout_ms)`; up to 49.7 days, as Erlang's
/// `receive ... after`). The returned status only says whether the request was accepted
/// (`SNOW_ERR_ARGUMENT`, `SNOW_ERR_BAD_TERM`, `SNOW_ERR_NO_PROCESS`, `SNOW_ERR_NOT_DISTRIBUTED`
/// on a local-only node, `SNOW_ERR_UNSUPPORTED` for `at` this node itself: a C node runs no
/// function as a call); then `done` is called exactly once with the outcome:
/// - `SNOW_OK`: `data` is the function's return value (encoded);
/// - `SNOW_ERR_REFUSED`: `at` does not allow `function`; `data` is its reason,
///   `{:not_spawnable, "function"}`;
/// - `SNOW_ERR_CONNECT`: `at` could not be reached, or the connection was lost before the value
///   came (the function may or may not have run there: retry only if running it twice is safe);
/// - `SNOW_ERR_TIMEOUT`: no value within `timeout_ms`; the function's process was killed, and a
///   value that still comes is dropped;
/// - `SNOW_ERR_EXIT`: the function's process exited instead of returning; `data` is the reason;
/// - `SNOW_ERR_UNSUPPORTED`: `at` does not offer remote calls (an older build);
/// - `SNOW_ERR_NO_PROCESS`: `process` exited while it waited; the call was abandoned and the
///   function's process killed (Erlang lets it run; Snow kills it, as at a timeout).
///
/// The completion's `error` (and `snow_last_error()` in the callback) says what happened. Nothing
/// about the call is delivered to `process` through `deliver`, and `process` is not suspended: it
/// may run on while it waits (an Erlang caller blocks; the embedder decides whether to park it).
///
/// # Safety
/// `node` must be a node not yet freed; `at` nul-terminated; `function` and `args` must point at
/// as many readable bytes as their lengths say; `done` and `ctx` valid until `done` is called.
#[no_mangle]
pub unsafe extern "C" fn snow_call(
    node: *const snow_node,
    process: u64,
    at: *const c_char,
    function: *const c_char,
    function_len: usize,
    args: *const u8,
    args_len: usize,
    timeout_ms: u32,
    done: snow_done_fn,
    ctx: *mut c_void,
) -> snow_status {
    guard("snow_call", || {
        // SAFETY: the caller's contract.
        let Request { host, from, at, function, args, completion } =
            unsafe { request(node, process, at, function, function_len, args, args_len, done, ctx)? };
        let dist = host.distribution().cloned().ok_or_else(not_distributed)?;
        if at == *host.name() {
            return Err(Failure::new(
                SNOW_ERR_UNSUPPORTED,
                format!(
                    "{at} is this node, and a C node runs no function as a call (its processes end with an exit \
                     reason, not a value); call the function directly"
                ),
            ));
        }
        // Closes when the caller exits: the call is then abandoned (its future dropped).
        let gone = from.as_ref().map(|pid| host.exit_watch(pid.id())).transpose()?;
        let timeout = Duration::from_millis(u64::from(timeout_ms));
        let call = dist.call(from.as_ref(), &at, &function, args, timeout);
        host.runtime.spawn(Box::pin(async move {
            let outcome = match gone {
                None => Some(call.await),
                Some(gone) => {
                    let exited = async move {
                        let _ = gone.recv().await;
                        None
                    };
                    futures_lite::future::or(async { Some(call.await) }, exited).await
                }
            };
            completion.complete(match outcome {
                Some(Ok(value)) => {
                    let mut done = Done::ok();
                    done.data = Some(value);
                    done
                }
                Some(Err(e)) => call_failure(e),
                None => Done::failed(
                    SNOW_ERR_NO_PROCESS,
                    format!(
                        "process {process} exited while its call of {:?} on {at} waited: the call was abandoned \
                         and the function's process killed",
                        function.as_str()
                    ),
                ),
            });
        }));
        Ok(SNOW_OK)
    })
}

/// Starts the function `function` that node `at` allow-listed, with `args` (an encoded list,
/// copied), for `process` (0: from outside any process), without waiting for it (Erlang's
/// `erpc:cast/4`). The returned status says whether the request was accepted (as `snow_call`'s;
/// `SNOW_ERR_NOT_DISTRIBUTED` on a local-only node); then `done` is called exactly once:
/// `SNOW_OK` once the request is on its way (after the connection is up), `SNOW_ERR_CONNECT` if
/// `at` cannot be reached, `SNOW_ERR_UNSUPPORTED` if it does not offer remote calls. A function
/// `at` does not allow is not reported (the callee never answers a cast, as in Erlang). For `at`
/// this node itself, the function is started through this node's own `spawn` callback, and a
/// refusal there is reported: `SNOW_ERR_REFUSED` with `data` `{:not_spawnable, "function"}`.
///
/// # Safety
/// As `snow_call`.
#[no_mangle]
pub unsafe extern "C" fn snow_cast(
    node: *const snow_node,
    process: u64,
    at: *const c_char,
    function: *const c_char,
    function_len: usize,
    args: *const u8,
    args_len: usize,
    done: snow_done_fn,
    ctx: *mut c_void,
) -> snow_status {
    guard("snow_cast", || {
        // SAFETY: the caller's contract.
        let Request { host, from, at, function, args, completion } =
            unsafe { request(node, process, at, function, function_len, args, args_len, done, ctx)? };
        let dist = host.distribution().cloned().ok_or_else(not_distributed)?;
        let runtime = host.runtime.clone();
        if at == *host.name() {
            runtime.spawn(Box::pin(async move {
                let spawned =
                    snow_node_rt::Host::spawn_registered(&*host, &function, Term::List(args), None, None, &mut |_| {});
                completion.complete(match spawned {
                    Ok(_) => Done::ok(),
                    Err(e) => {
                        log::debug!("snow_cast to this node: {e}");
                        let reason = snow_node_rt::reason::not_spawnable(function.as_str());
                        call_failure(CallError::NotSpawnable {
                            node: at,
                            function: function.as_str().to_owned(),
                            reason,
                        })
                    }
                });
            }));
            return Ok(SNOW_OK);
        }
        let cast = dist.cast(from.as_ref(), &at, &function, args);
        runtime.spawn(Box::pin(async move {
            completion.complete(match cast.await {
                Ok(()) => Done::ok(),
                Err(e) => call_failure(e),
            });
        }));
        Ok(SNOW_OK)
    })
}
