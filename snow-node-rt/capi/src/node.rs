//! A node: start-up (from the environment or from explicit settings), stop, what it is
//! (`snow_node_name`, `snow_node_is_alive`, `snow_node_nodes`), connections, and the completion
//! callbacks of operations that wait for the network.

use std::ffi::{c_char, c_void, CString};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use snow_node_rt::dist::{DistConfig, NodeBuilder, StartError};
use snow_node_rt::error::{DistError, RemoteSpawnError};
use snow_node_rt::{Host, NodeName, Pid, Ref, Runtime, Term};
use snow_shared::codec;

use crate::event::snow_deliver_fn;
use crate::executor::{snow_schedule_fn, Ctx, Executor};
use crate::host::{snow_spawn_fn, CHost};
use crate::ids::{self, snow_pid, snow_ref};
use crate::status::*;

/// A running node. Made by `snow_node_start` / `snow_node_start_env`, freed by `snow_node_free`.
/// Every function taking it may be called from any thread at the same time, until
/// `snow_node_free` is called.
pub struct snow_node {
    host: Arc<CHost>,
    name: CString,
}

impl snow_node {
    pub(crate) fn host(&self) -> &Arc<CHost> {
        &self.host
    }
}

/// # Safety
/// `node` must be null or a node from `snow_node_start*` not yet freed.
pub(crate) unsafe fn node<'a>(node: *const snow_node) -> Outcome<&'a snow_node> {
    // SAFETY: the caller's contract.
    unsafe { node.as_ref() }.ok_or_else(|| Failure::argument("node is null"))
}

/// What the embedder gives a node: its context pointer and its callbacks. Copied by the start
/// functions. `ctx` and the callbacks must stay valid until `snow_node_free` returns; every
/// callback may be called from any thread.
#[repr(C)]
pub struct snow_callbacks {
    /// Passed to every callback as is.
    pub ctx: *mut c_void,
    /// Required: where events for the embedder's processes go.
    pub deliver: snow_deliver_fn,
    /// Optional: remote spawn of the functions the embedder offers. Null: this node refuses every
    /// remote spawn.
    pub spawn: snow_spawn_fn,
    /// Optional: run the runtime's tasks on the embedder's scheduler (`snow_task_run`). Null: they
    /// run on the runtime's own threads (one per CPU, or `SNOW_SCHEDULERS`).
    pub schedule: snow_schedule_fn,
}

/// One start-up setting: the name of an environment variable of README's "Node environment"
/// (`SNOW_NODE`, `SNOW_COOKIE`, `SNOW_COOKIE_FILE`, `SNOW_EPMD`, `SNOW_DIST_PORT`, `SNOW_DIST_ADDR`,
/// `SNOW_TLS_CERT`, `SNOW_TLS_KEY`, `SNOW_TLS_CA`, `SNOW_TICKTIME`) and its value, both
/// nul-terminated UTF-8.
#[repr(C)]
pub struct snow_setting {
    /// The variable's name.
    pub name: *const c_char,
    /// Its value.
    pub value: *const c_char,
}

/// How an operation that waited for the network ended. Given to a `snow_done_fn`; every pointer
/// in it is valid only during the callback: copy what you keep (the library frees it all when the
/// callback returns).
#[repr(C)]
pub struct snow_completion {
    /// `SNOW_OK`, or why it failed.
    pub status: snow_status,
    /// When it failed: what happened, nul-terminated UTF-8; null on success. During the callback,
    /// `snow_last_error()` on the callback's thread gives the same text.
    pub error: *const c_char,
    /// A remote spawn: the new process.
    pub pid: *const snow_pid,
    /// A remote spawn with `SNOW_SPAWN_MONITOR`: the monitor's reference.
    pub reference: *const snow_ref,
    /// An encoded term the operation produced: a remote call's return value (`SNOW_OK`); the exit
    /// reason of a call's function that did not return (`SNOW_ERR_EXIT`); the other node's reason
    /// for a refused remote spawn or call (`SNOW_ERR_REFUSED`). Null when there is none.
    pub data: *const u8,
    /// Bytes at `data`.
    pub data_len: usize,
}

/// Called exactly once when an operation that waited for the network completes (successfully,
/// with an error, or at its deadline), from a runtime thread (the embedder's own, through
/// `snow_task_run`, when it gave a `schedule` callback), never with a lock of the library held;
/// `ctx` is the pointer given with the operation. It must not block; it may call this library
/// (e.g. make the next call, or send).
pub type snow_done_fn = Option<unsafe extern "C" fn(ctx: *mut c_void, completion: *const snow_completion)>;

/// [`snow_done_fn`] once checked non-null.
type DoneFn = unsafe extern "C" fn(ctx: *mut c_void, completion: *const snow_completion);

/// An encoded term owned by the library (`snow_node_nodes`): free it with `snow_bytes_free`.
#[repr(C)]
pub struct snow_bytes {
    /// The bytes.
    pub data: *mut u8,
    /// How many.
    pub len: usize,
}

/// What a completion reports, before it is laid out for C.
pub(crate) struct Done {
    pub status: snow_status,
    pub error: Option<String>,
    pub pid: Option<Pid>,
    pub reference: Option<Ref>,
    pub data: Option<Term>,
}

impl Done {
    pub fn ok() -> Done {
        Done { status: SNOW_OK, error: None, pid: None, reference: None, data: None }
    }

    pub fn failed(status: snow_status, error: String) -> Done {
        Done { status, error: Some(error), pid: None, reference: None, data: None }
    }
}

/// A completion callback and its context, called once.
pub(crate) struct Completion {
    done: DoneFn,
    ctx: Ctx,
}

impl Completion {
    pub fn new(done: snow_done_fn, ctx: *mut c_void) -> Outcome<Completion> {
        let done =
            done.ok_or_else(|| Failure::argument("done is null: every operation that waits needs a callback"))?;
        Ok(Completion { done, ctx: Ctx(ctx) })
    }

    pub fn complete(self, outcome: Done) {
        if let Some(message) = &outcome.error {
            set_last_error(message);
        }
        let error = outcome.error.map(|e| CString::new(e.replace('\0', "\\0")).unwrap_or_default());
        let pid = outcome.pid.as_ref().map(snow_pid::from_pid);
        let reference = outcome.reference.as_ref().map(snow_ref::from_ref);
        let data = outcome.data.as_ref().map(codec::encode);
        let c = snow_completion {
            status: outcome.status,
            error: error.as_ref().map_or(std::ptr::null(), |e| e.as_ptr()),
            pid: pid.as_ref().map_or(std::ptr::null(), |p| p as *const snow_pid),
            reference: reference.as_ref().map_or(std::ptr::null(), |r| r as *const snow_ref),
            data: data.as_ref().map_or(std::ptr::null(), |r| r.as_ptr()),
            data_len: data.as_ref().map_or(0, |r| r.len()),
        };
        // SAFETY: the embedder's callback with its own context; `c` and what it points at live
        // until the call returns.
        unsafe { (self.done)(self.ctx.0, &c) };
    }
}

/// The status and message of a distribution error.
pub(crate) fn dist_failure(e: &DistError) -> Done {
    let status = match e {
        DistError::NotDistributed => SNOW_ERR_NOT_DISTRIBUTED,
        DistError::Timeout(_) => SNOW_ERR_TIMEOUT,
        DistError::ShuttingDown => SNOW_ERR_STOPPED,
        _ => SNOW_ERR_CONNECT,
    };
    Done::failed(status, e.to_string())
}

pub(crate) fn spawn_failure(e: RemoteSpawnError) -> Done {
    match &e {
        RemoteSpawnError::Dist(d) => dist_failure(d),
        RemoteSpawnError::Refused { reason, .. } => {
            let mut done = Done::failed(SNOW_ERR_REFUSED, e.to_string());
            done.data = Some(reason.clone());
            done
        }
        RemoteSpawnError::Unsupported(_) => Done::failed(SNOW_ERR_UNSUPPORTED, e.to_string()),
    }
}

/// How long `snow_node_stop` waits for the runtime's last tasks after distribution stopped.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// # Safety
/// `callbacks` must point at a valid `snow_callbacks`.
unsafe fn start(config: Option<DistConfig>, callbacks: *const snow_callbacks, out: *mut *mut snow_node) -> Outcome {
    // SAFETY: the caller's contract.
    let callbacks = unsafe { ids::get(callbacks, "callbacks")? };
    let deliver = callbacks.deliver.ok_or_else(|| Failure::argument("callbacks->deliver is null; it is required"))?;
    if out.is_null() {
        return Err(Failure::argument("out is null"));
    }
    let ctx = Ctx(callbacks.ctx);
    let executor = Arc::new(Executor::new(callbacks.schedule, ctx));
    let host = match config {
        None => CHost::new(NodeName::local_only(), 0, deliver, callbacks.spawn, ctx, executor),
        Some(config) => {
            let prepared = snow_node_rt::block_on(NodeBuilder::from_config(config).prepare()).map_err(|e| {
                let status = if matches!(e, StartError::Config(_)) { SNOW_ERR_CONFIG } else { SNOW_ERR_START };
                Failure::new(status, e.to_string())
            })?;
            let host = CHost::new(
                prepared.name().clone(),
                prepared.creation(),
                deliver,
                callbacks.spawn,
                ctx,
                executor.clone(),
            );
            let weak: Weak<dyn Host> = Arc::downgrade(&host) as Weak<CHost>;
            host.set_distribution(prepared.start(weak, executor));
            host
        }
    };
    let name = CString::new(host.name().as_str()).map_err(|_| Failure::argument("the node name has a nul byte"))?;
    let node = Box::new(snow_node { host, name });
    // SAFETY: checked non-null; the caller's contract says writable.
    unsafe { out.write(Box::into_raw(node)) };
    Ok(SNOW_OK)
}

/// Starts this program's node from its environment (README, "Node environment"): a distributed
/// node when `SNOW_NODE` is set (it registers with snow-epmd and listens for other nodes), else a
/// local-only one (`nonode@nohost`, where remote pids behave as dead ones). On success `*out` is
/// the node. Blocks the calling thread until the node is registered with snow-epmd (a fraction of
/// a second: the cookie's key derivation), but needs none of the embedder's threads meanwhile, so
/// it may be called before the embedder's scheduler runs. `SNOW_ERR_CONFIG` names a bad variable;
/// `SNOW_ERR_START` says what else failed. Nothing is left running on failure.
///
/// # Safety
/// `callbacks` must point at a valid `snow_callbacks`; `out` must be writable.
#[no_mangle]
pub unsafe extern "C" fn snow_node_start_env(
    callbacks: *const snow_callbacks,
    out: *mut *mut snow_node,
) -> snow_status {
    guard("snow_node_start_env", || {
        let config = DistConfig::from_env().map_err(|e| Failure::new(SNOW_ERR_CONFIG, e.to_string()))?;
        // SAFETY: the caller's contract.
        unsafe { start(config, callbacks, out) }
    })
}

/// `snow_node_start_env` with explicit settings instead of the environment: `count` settings at
/// `settings`, named like the environment variables (others are refused). The environment is not
/// read; `SNOW_NODE` absent means a local-only node.
///
/// # Safety
/// `settings` must point at `count` valid `snow_setting`s (or be null with `count == 0`);
/// `callbacks` and `out` as for `snow_node_start_env`.
#[no_mangle]
pub unsafe extern "C" fn snow_node_start(
    settings: *const snow_setting,
    count: usize,
    callbacks: *const snow_callbacks,
    out: *mut *mut snow_node,
) -> snow_status {
    guard("snow_node_start", || {
        const KNOWN: [&str; 10] = [
            "SNOW_NODE",
            "SNOW_COOKIE",
            "SNOW_COOKIE_FILE",
            "SNOW_EPMD",
            "SNOW_DIST_PORT",
            "SNOW_DIST_ADDR",
            "SNOW_TLS_CERT",
            "SNOW_TLS_KEY",
            "SNOW_TLS_CA",
            "SNOW_TICKTIME",
        ];
        let settings: &[snow_setting] = match (settings.is_null(), count) {
            (_, 0) => &[],
            (true, _) => return Err(Failure::argument("settings is null but count is not 0")),
            // SAFETY: the caller's contract: `count` valid settings.
            (false, _) => unsafe { std::slice::from_raw_parts(settings, count) },
        };
        let mut pairs = Vec::with_capacity(count);
        for (i, s) in settings.iter().enumerate() {
            // SAFETY: the caller's contract.
            let name = unsafe { ids::c_text(s.name, &format!("settings[{i}].name"))? };
            // SAFETY: the caller's contract.
            let value = unsafe { ids::c_text(s.value, &format!("settings[{i}].value"))? };
            if !KNOWN.contains(&name) {
                return Err(Failure::new(
                    SNOW_ERR_CONFIG,
                    format!("settings[{i}]: {name} is not a start-up setting; use one of {}", KNOWN.join(", ")),
                ));
            }
            pairs.push((name.to_owned(), value.to_owned()));
        }
        let get = |var: &str| pairs.iter().rev().find(|(n, _)| n == var).map(|(_, v)| v.into());
        let config = DistConfig::from_vars(get, &snow_node_rt::dist::config::this_hostname())
            .map_err(|e| Failure::new(SNOW_ERR_CONFIG, e.to_string()))?;
        // SAFETY: the caller's contract.
        unsafe { start(config, callbacks, out) }
    })
}

/// Stops the node: no new connections, every connection closed (links and monitors across them
/// fire `:noconnection`), unregistered from snow-epmd; then waits until the runtime's last task
/// has ended. `done` is called once that is so (`SNOW_OK`), or after a grace period with
/// `SNOW_ERR_TIMEOUT` if tasks remain. After `done`, no callback is called for this node (unless
/// the embedder itself calls into it again, e.g. a send between its own processes). Processes
/// stay registered: the embedder ends them. Calling it again is harmless.
///
/// # Safety
/// `node` must be a node not yet freed; `done` a valid callback.
#[no_mangle]
pub unsafe extern "C" fn snow_node_stop(node: *const snow_node, done: snow_done_fn, ctx: *mut c_void) -> snow_status {
    guard("snow_node_stop", || {
        // SAFETY: the caller's contract.
        let node = unsafe { self::node(node)? };
        let completion = Completion::new(done, ctx)?;
        let host = node.host.clone();
        let runtime = host.runtime.clone();
        let stopping = async move {
            if let Some(dist) = host.distribution() {
                dist.shutdown().await;
            }
            // This task is one of the live ones.
            let deadline = Instant::now() + STOP_GRACE;
            while host.runtime.live_tasks() > 1 && Instant::now() < deadline {
                host.runtime.sleep_until(Instant::now() + Duration::from_millis(5)).await;
            }
            let left = host.runtime.live_tasks().saturating_sub(1);
            drop(host);
            completion.complete(if left == 0 {
                Done::ok()
            } else {
                Done::failed(
                    SNOW_ERR_TIMEOUT,
                    format!("{left} runtime tasks still running {STOP_GRACE:?} after the stop"),
                )
            });
        };
        runtime.spawn(Box::pin(stopping));
        Ok(SNOW_OK)
    })
}

/// Frees the node handle. Stop it first (`snow_node_stop`, and wait for its `done`); a node freed
/// while running stops its distribution in the background. No call with this node may be in
/// progress or follow. Null is ignored.
///
/// # Safety
/// `node` must be null or a node not yet freed.
#[no_mangle]
pub unsafe extern "C" fn snow_node_free(node: *mut snow_node) {
    let _ = catch("snow_node_free", || {
        if node.is_null() {
            return Ok(());
        }
        // SAFETY: the caller's contract: ours, from Box::into_raw, freed once.
        let node = unsafe { Box::from_raw(node) };
        if let Some(dist) = node.host.distribution() {
            if dist.is_alive() {
                log::warn!("{}: freed while running; stopping its distribution", node.host.name());
                let shutdown = dist.shutdown();
                node.host.runtime.spawn(shutdown);
            }
        }
        Ok(())
    });
}

/// The node's name, `name@host` (`nonode@nohost` when not distributed): nul-terminated, owned by
/// the node, valid until it is freed. Erlang's `node()`. Null if `node` is null.
///
/// # Safety
/// `node` must be null or a node not yet freed.
#[no_mangle]
pub unsafe extern "C" fn snow_node_name(node: *const snow_node) -> *const c_char {
    // SAFETY: the caller's contract.
    catch("snow_node_name", || Ok(unsafe { self::node(node)? }.name.as_ptr())).unwrap_or(std::ptr::null())
}

/// The node's creation (which start of the node this is; 0 when not distributed).
///
/// # Safety
/// `node` must be null or a node not yet freed.
#[no_mangle]
pub unsafe extern "C" fn snow_node_creation(node: *const snow_node) -> u32 {
    // SAFETY: the caller's contract.
    catch("snow_node_creation", || Ok(unsafe { self::node(node)? }.host.creation_of_node())).unwrap_or(0)
}

/// Whether distribution is running (Erlang's `is_alive()`): false for a local-only node and after
/// `snow_node_stop`.
///
/// # Safety
/// `node` must be null or a node not yet freed.
#[no_mangle]
pub unsafe extern "C" fn snow_node_is_alive(node: *const snow_node) -> bool {
    catch("snow_node_is_alive", || {
        // SAFETY: the caller's contract.
        let node = unsafe { self::node(node)? };
        Ok(node.host.distribution().is_some_and(|d| d.is_alive()))
    })
    .unwrap_or(false)
}

/// The nodes this node has a connection to (Erlang's `nodes()`), as an encoded list of atoms,
/// sorted, into `*out`; free it with `snow_bytes_free`.
///
/// # Safety
/// `node` must be a node not yet freed; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn snow_node_nodes(node: *const snow_node, out: *mut snow_bytes) -> snow_status {
    guard("snow_node_nodes", || {
        // SAFETY: the caller's contract.
        let node = unsafe { self::node(node)? };
        let names = node.host.distribution().map(|d| d.nodes()).unwrap_or_default();
        let list = Term::List(names.iter().map(|n| Term::Atom(n.as_atom().clone())).collect());
        let bytes = codec::encode(&list).into_boxed_slice();
        let len = bytes.len();
        let data = Box::into_raw(bytes).cast::<u8>();
        // SAFETY: the caller's contract.
        unsafe { ids::put(out, snow_bytes { data, len }, "out")? };
        Ok(SNOW_OK)
    })
}

/// Frees bytes the library gave (`data` is set to null). Null, or bytes already freed, are
/// ignored.
///
/// # Safety
/// `bytes` must be null or point at a `snow_bytes` the library filled.
#[no_mangle]
pub unsafe extern "C" fn snow_bytes_free(bytes: *mut snow_bytes) {
    let _ = catch("snow_bytes_free", || {
        // SAFETY: the caller's contract.
        if let Some(b) = unsafe { bytes.as_mut() } {
            if !b.data.is_null() {
                // SAFETY: made by Box::into_raw of a boxed slice of `len` bytes, freed once.
                drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(b.data, b.len)) });
                b.data = std::ptr::null_mut();
                b.len = 0;
            }
        }
        Ok(())
    });
}

/// Connects to `other` (`name@host`, nul-terminated): `done` is called once the connection is up
/// (`SNOW_OK`) or has failed (`SNOW_ERR_CONNECT`, `SNOW_ERR_TIMEOUT`...). Connecting is optional:
/// a send connects on demand. The returned status only says whether the request was accepted.
///
/// # Safety
/// `node` must be a node not yet freed; `other` a nul-terminated string.
#[no_mangle]
pub unsafe extern "C" fn snow_connect(
    node: *const snow_node,
    other: *const c_char,
    done: snow_done_fn,
    ctx: *mut c_void,
) -> snow_status {
    guard("snow_connect", || {
        // SAFETY: the caller's contract.
        let node = unsafe { self::node(node)? };
        // SAFETY: the caller's contract.
        let other = unsafe { ids::c_node_name(other, "other")? };
        let completion = Completion::new(done, ctx)?;
        let dist = node.host.distribution().cloned().ok_or_else(not_distributed)?;
        let connecting = dist.connect(&other);
        node.host.runtime.spawn(Box::pin(async move {
            completion.complete(match connecting.await {
                Ok(()) => Done::ok(),
                Err(e) => dist_failure(&e),
            });
        }));
        Ok(SNOW_OK)
    })
}

/// Closes the connection to `other`: `SNOW_OK` if there was one, `SNOW_ERR_CONNECT` if not.
///
/// # Safety
/// `node` must be a node not yet freed; `other` a nul-terminated string.
#[no_mangle]
pub unsafe extern "C" fn snow_disconnect(node: *const snow_node, other: *const c_char) -> snow_status {
    guard("snow_disconnect", || {
        // SAFETY: the caller's contract.
        let node = unsafe { self::node(node)? };
        // SAFETY: the caller's contract.
        let other = unsafe { ids::c_node_name(other, "other")? };
        let dist = node.host.distribution().ok_or_else(not_distributed)?;
        if dist.disconnect(&other) {
            Ok(SNOW_OK)
        } else {
            Err(Failure::new(SNOW_ERR_CONNECT, format!("there is no connection to {other}")))
        }
    })
}

pub(crate) fn not_distributed() -> Failure {
    Failure::new(
        SNOW_ERR_NOT_DISTRIBUTED,
        "this node is not distributed (SNOW_NODE is unset); start it with SNOW_NODE=name and a cookie",
    )
}

/// Erlang's `monitor_node(other, on)` for process `process`: with `on`, it gets one
/// `{:nodedown, other}` message when the connection to `other` is lost, or at once if it cannot
/// be made (each call adds one watch); without, one watch is removed. `other` is nul-terminated.
///
/// # Safety
/// `node` must be a node not yet freed; `other` a nul-terminated string.
#[no_mangle]
pub unsafe extern "C" fn snow_monitor_node(
    node: *const snow_node,
    process: u64,
    other: *const c_char,
    on: bool,
) -> snow_status {
    guard("snow_monitor_node", || {
        // SAFETY: the caller's contract.
        let node = unsafe { self::node(node)? };
        // SAFETY: the caller's contract.
        let other = unsafe { ids::c_node_name(other, "other")? };
        let me = node.host.process(process)?;
        let dist = node.host.distribution().ok_or_else(not_distributed)?;
        if on {
            dist.monitor_node(&me, &other);
        } else {
            dist.demonitor_node(&me, &other);
        }
        Ok(SNOW_OK)
    })
}

/// Erlang's `net_kernel:monitor_nodes(on)` for process `process`: it gets `{:nodeup, n}` and
/// `{:nodedown, n}` messages for every node (or stops getting them).
///
/// # Safety
/// `node` must be a node not yet freed.
#[no_mangle]
pub unsafe extern "C" fn snow_monitor_nodes(node: *const snow_node, process: u64, on: bool) -> snow_status {
    guard("snow_monitor_nodes", || {
        // SAFETY: the caller's contract.
        let node = unsafe { self::node(node)? };
        let me = node.host.process(process)?;
        let dist = node.host.distribution().ok_or_else(not_distributed)?;
        dist.monitor_nodes(&me, on);
        Ok(SNOW_OK)
    })
}
