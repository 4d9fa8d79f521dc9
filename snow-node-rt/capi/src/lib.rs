//! The C ABI of snow-node-rt (README, "Embedding"): a compiled Snow program, or any C program,
//! links this library (`libsnow_node_capi.a`, or the shared `libsnow_node_capi.so`), includes
//! `include/snow_node.h`, and hosts a node's processes on its own scheduler.
//!
//! The embedder owns its processes and their scheduling; the library is their node: it gives them
//! pids, carries their messages and signals to other nodes (and between them), keeps what
//! Erlang's semantics need of their links, monitors and names, and delivers what happens to them
//! through one callback. Underneath, the embedder's processes are the [`Host`](snow_node_rt::Host)
//! of the node's distribution layer ([`host`]), exactly as snow-node-rt's own process layer is, and
//! the runtime's tasks run on the runtime's threads or on the embedder's scheduler ([`executor`]).
//!
//! Rules for every function: errors are status codes with a message from `snow_last_error` on the
//! same thread; no panic crosses the boundary (each entry point catches it and returns
//! `SNOW_ERR_PANIC`); pointers given to the library are only read during the call unless the
//! function says otherwise; pointers the library gives are valid as long as their function says.
//!
//! The header is generated from this crate by cbindgen (`cbindgen.toml`); `tests/header.rs` fails
//! when the checked-in `include/snow_node.h` differs from what the code generates.
#![allow(non_camel_case_types)]
#![warn(missing_docs)]

pub mod calls;
pub mod event;
pub mod executor;
pub mod global;
pub mod host;
pub mod ids;
pub mod node;
pub mod process;
pub mod status;
pub mod term;

/// Sends the library's log lines to standard error, filtered by `RUST_LOG` (e.g. `info`,
/// `snow_node_rt=debug`; default `warn`). Call it once, before starting a node; later calls do
/// nothing.
#[no_mangle]
pub extern "C" fn snow_log_from_env() {
    let _ = status::catch("snow_log_from_env", || {
        let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).try_init();
        Ok(())
    });
}
