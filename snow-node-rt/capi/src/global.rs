//! Global names (Erlang's `global`; README, "Global registry") for the embedder's processes: a
//! name is any encoded term, maps to one process on every connected node, and disappears
//! everywhere when its process exits (`snow_process_exit`) or its node goes down. Registrations
//! change this node's view at once and are announced to the connected nodes without waiting for
//! them; lookups and sends by name answer from this node's view and ask no other node.
//!
//! A process that loses its name in a conflict (two nodes registered it apart, then met) is told
//! as snow-node-rt's own processes are: by the exit signal or message the registry's rule says
//! (README, "Global registry"), delivered to its `deliver` callback.

use std::sync::Arc;

use snow_node_rt::error::GlobalError;
use snow_node_rt::{Cluster, Pid, Term};

use crate::host::CHost;
use crate::ids::{self, snow_pid};
use crate::node::{self, not_distributed, snow_node};
use crate::process::answer;
use crate::status::*;
use crate::term::decode;

/// The node's host and its cluster registry (`SNOW_ERR_NOT_DISTRIBUTED` for a local-only node).
///
/// # Safety
/// `node` must be null or a node not yet freed.
unsafe fn registry<'a>(node: *const snow_node) -> Outcome<(&'a Arc<CHost>, &'a dyn Cluster)> {
    // SAFETY: the caller's contract.
    let host = unsafe { node::node(node)? }.host();
    let dist = host.distribution().ok_or_else(not_distributed)?;
    let cluster = dist.cluster().ok_or_else(not_distributed)?;
    Ok((host, cluster))
}

/// The name, decoded from `len` encoded bytes at `name`.
///
/// # Safety
/// `name` must point at `len` readable bytes.
unsafe fn name_term(name: *const u8, len: usize) -> Outcome<Term> {
    // SAFETY: the caller's contract.
    decode(unsafe { ids::bytes(name, len, "name")? })
}

/// The status and message of a refused registry operation.
fn global_failure(e: GlobalError) -> Failure {
    let status = match &e {
        GlobalError::NotDistributed => SNOW_ERR_NOT_DISTRIBUTED,
        GlobalError::Taken { .. } | GlobalError::HeldElsewhere { .. } => SNOW_ERR_NAME_TAKEN,
        GlobalError::NotLocal(_) | GlobalError::NotAlive(_) => SNOW_ERR_NO_PROCESS,
    };
    Failure::new(status, e.to_string())
}

fn not_registered(name: &Term) -> Failure {
    Failure::new(
        SNOW_ERR_NOT_REGISTERED,
        format!(
            "no process is registered globally as {name} (as this node knows it: a name registered on another node \
             is known here once that node is connected)"
        ),
    )
}

/// Registers `name` (an encoded term, `len` bytes, copied) for process `process` on every
/// connected node (Erlang's `global:register_name/2`); nodes that connect later learn it too.
/// `SNOW_ERR_NAME_TAKEN` if this node knows a holder already (the message names it);
/// `SNOW_ERR_NO_PROCESS` if `process` is not a live process of this node;
/// `SNOW_ERR_NOT_DISTRIBUTED` on a local-only node. The name is freed when the process exits.
///
/// # Safety
/// `node` must be a node not yet freed; `name` must point at `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn snow_register_global(
    node: *const snow_node,
    process: u64,
    name: *const u8,
    len: usize,
) -> snow_status {
    guard("snow_register_global", || {
        // SAFETY: the caller's contract.
        let (host, cluster) = unsafe { registry(node)? };
        // SAFETY: the caller's contract.
        let name = unsafe { name_term(name, len)? };
        let pid = host.process(process)?;
        cluster.register_name(name, &pid).map_err(global_failure)?;
        Ok(SNOW_OK)
    })
}

/// `snow_register_global`, moving `name` to `process` if another process holds it (Erlang's
/// `global:re_register_name/2`; the previous holder is not told, as in Erlang).
///
/// # Safety
/// As `snow_register_global`.
#[no_mangle]
pub unsafe extern "C" fn snow_re_register_global(
    node: *const snow_node,
    process: u64,
    name: *const u8,
    len: usize,
) -> snow_status {
    guard("snow_re_register_global", || {
        // SAFETY: the caller's contract.
        let (host, cluster) = unsafe { registry(node)? };
        // SAFETY: the caller's contract.
        let name = unsafe { name_term(name, len)? };
        let pid = host.process(process)?;
        cluster.re_register_name(name, &pid).map_err(global_failure)?;
        Ok(SNOW_OK)
    })
}

/// Withdraws the global name `name` (encoded, `len` bytes) everywhere (Erlang's
/// `global:unregister_name/1`). Only the holder's node can: `SNOW_ERR_NAME_TAKEN` if a process of
/// another node holds it (the message names it). A name nobody holds is `SNOW_OK`, as in Erlang.
///
/// # Safety
/// `node` must be a node not yet freed; `name` must point at `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn snow_unregister_global(node: *const snow_node, name: *const u8, len: usize) -> snow_status {
    guard("snow_unregister_global", || {
        // SAFETY: the caller's contract.
        let (_, cluster) = unsafe { registry(node)? };
        // SAFETY: the caller's contract.
        let name = unsafe { name_term(name, len)? };
        cluster.unregister_name(&name).map_err(global_failure)?;
        Ok(SNOW_OK)
    })
}

/// The process registered globally as `name` (encoded, `len` bytes), as this node knows it, into
/// `*pid` (Erlang's `global:whereis_name/1`: a lookup here, no message);
/// `SNOW_ERR_NOT_REGISTERED` if none is.
///
/// # Safety
/// `node` must be a node not yet freed; `name` must point at `len` readable bytes; `pid` writable.
#[no_mangle]
pub unsafe extern "C" fn snow_whereis_global(
    node: *const snow_node,
    name: *const u8,
    len: usize,
    pid: *mut snow_pid,
) -> snow_status {
    guard("snow_whereis_global", || {
        // SAFETY: the caller's contract.
        let (_, cluster) = unsafe { registry(node)? };
        // SAFETY: the caller's contract.
        let name = unsafe { name_term(name, len)? };
        let found = cluster.whereis_name(&name).ok_or_else(|| not_registered(&name))?;
        // SAFETY: the caller's contract.
        unsafe { ids::put(pid, snow_pid::from_pid(&found), "pid")? };
        Ok(SNOW_OK)
    })
}

/// Sends `msg` (encoded, `len` bytes, copied) from `process` (0: from outside any process) to the
/// process registered globally as `name` (Erlang's `global:send/2`); if `to` is not null, `*to` is
/// set to that process. `SNOW_ERR_NOT_REGISTERED` if this node knows no holder (Erlang exits with
/// `badarg`); nothing is sent then. Statuses otherwise as `snow_send`, whose rules the send
/// follows (order, backpressure).
///
/// # Safety
/// `node` must be a node not yet freed; `name` and `msg` must point at as many readable bytes as
/// their lengths say; `to` null or writable.
#[no_mangle]
pub unsafe extern "C" fn snow_send_global(
    node: *const snow_node,
    process: u64,
    name: *const u8,
    name_len: usize,
    msg: *const u8,
    len: usize,
    to: *mut snow_pid,
) -> snow_status {
    guard("snow_send_global", || {
        // SAFETY: the caller's contract.
        let (host, cluster) = unsafe { registry(node)? };
        // SAFETY: the caller's contract.
        let name = unsafe { name_term(name, name_len)? };
        // SAFETY: the caller's contract.
        let msg = decode(unsafe { ids::bytes(msg, len, "msg")? })?;
        let from = host.acting(process)?;
        let holder: Pid = cluster.whereis_name(&name).ok_or_else(|| not_registered(&name))?;
        if !to.is_null() {
            // SAFETY: checked non-null; the caller's contract says writable.
            unsafe { to.write(snow_pid::from_pid(&holder)) };
        }
        if host.is_local(&holder) {
            host.deliver_local(&holder, msg);
            return Ok(SNOW_OK);
        }
        let Some(dist) = host.distribution() else { return Ok(SNOW_OK) };
        let backpressure = dist.send(from.as_ref(), &holder, msg);
        answer(host, from.as_ref(), Some(backpressure))
    })
}
