//! Status codes, the thread-local last-error message, and the guard every entry point runs in: a
//! panic inside the runtime is caught there and becomes [`snow_status::SNOW_ERR_PANIC`], never an
//! unwind into C.

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What a call did. `SNOW_OK` and `SNOW_SUSPEND` are successes; every negative value is an error
/// whose message `snow_last_error()` gives on the same thread.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum snow_status {
    /// Done.
    SNOW_OK = 0,
    /// The message (or signal) was queued, but its connection is over its byte budget: do not let
    /// the sending process run again until it gets a `SNOW_EVENT_RESUME` event (Erlang suspends a
    /// process that sends to a busy distribution port the same way; README, "Embedding").
    SNOW_SUSPEND = 1,
    /// An argument is invalid: a null pointer, text that is not UTF-8, a name that is not a name,
    /// a flag that does not exist. The message names the argument.
    SNOW_ERR_ARGUMENT = -1,
    /// The bytes are not an encoded term (PROTOCOL.md section 1); the message says why.
    SNOW_ERR_BAD_TERM = -2,
    /// The process the call acts for is not a live process of this node (it exited, was never
    /// registered, or was stopped at the send queue's ceiling).
    SNOW_ERR_NO_PROCESS = -3,
    /// No local process is registered under the name.
    SNOW_ERR_NOT_REGISTERED = -4,
    /// The name is taken (the message names the holder), or the process already has a name; for a
    /// global name, also: it is held by a process of another node, which alone can withdraw it.
    SNOW_ERR_NAME_TAKEN = -5,
    /// The operation needs distribution, and this node runs local-only (`SNOW_NODE` unset).
    SNOW_ERR_NOT_DISTRIBUTED = -6,
    /// The message was not sent: its connection's queue is at its hard ceiling. The sending
    /// process has been stopped with `{:send_queue_overflow, node}` (its links and monitors fire);
    /// stop running it.
    SNOW_ERR_OVERFLOW = -7,
    /// A start-up setting is invalid; the message names the variable.
    SNOW_ERR_CONFIG = -8,
    /// The node could not start (TLS material, listener, snow-epmd); the message says what failed.
    SNOW_ERR_START = -9,
    /// The other node could not be reached (lookup, TCP, TLS or the cookie handshake failed, or the
    /// connection went down before the operation completed).
    SNOW_ERR_CONNECT = -10,
    /// The other node refused the request: a remote spawn or call of a function it does not
    /// allow (the completion's `data` holds its reason, `{:not_spawnable, "function"}`).
    SNOW_ERR_REFUSED = -11,
    /// No answer within the operation's deadline.
    SNOW_ERR_TIMEOUT = -12,
    /// The node is stopping or stopped.
    SNOW_ERR_STOPPED = -13,
    /// The encoder is not in a state for this call: the term is complete (reset the encoder to
    /// start another), containers are still open, or an earlier call failed.
    SNOW_ERR_ENCODER = -14,
    /// The decoder has given every item of its term.
    SNOW_ERR_END = -15,
    /// The caller's buffer is too small; the call reported the size it needs.
    SNOW_ERR_BUFFER = -16,
    /// A remote call's function did not return: its process exited (an exit signal, its own
    /// exit, or a crash; a panic of a Rust function is `{:panic, "message"}`). The completion's
    /// `data` holds the exit reason.
    SNOW_ERR_EXIT = -17,
    /// The other node does not offer the operation (an older build without remote calls or
    /// remote spawn), or this node cannot do it (a call to this node itself: see `snow_call`).
    SNOW_ERR_UNSUPPORTED = -18,
    /// A bug in the runtime was caught before it crossed into C. The message says where; the node
    /// is still usable, but report it.
    SNOW_ERR_PANIC = -100,
}

pub use snow_status::*;

/// A failed call: the status it returns and the message `snow_last_error` gives.
#[derive(Debug)]
pub(crate) struct Failure {
    pub status: snow_status,
    pub message: String,
}

impl Failure {
    pub fn new(status: snow_status, message: impl Into<String>) -> Failure {
        Failure { status, message: message.into() }
    }

    pub fn argument(message: impl Into<String>) -> Failure {
        Failure::new(SNOW_ERR_ARGUMENT, message)
    }
}

/// The result of the inside of an entry point.
pub(crate) type Outcome<T = snow_status> = Result<T, Failure>;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

pub(crate) fn set_last_error(message: &str) {
    // Interior nul bytes cannot come from our messages, but a peer's text could carry one.
    let text = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|last| *last.borrow_mut() = text);
}

/// Runs the body of an entry point: its failure becomes a status plus the thread's last error, and
/// a panic becomes `SNOW_ERR_PANIC` instead of unwinding into C.
pub(crate) fn guard(entry: &'static str, body: impl FnOnce() -> Outcome) -> snow_status {
    catch(entry, body).unwrap_or_else(|status| status)
}

/// The body's value, or the status of its failure (whose message is then the thread's last
/// error); a panic is caught and reported as `SNOW_ERR_PANIC`.
pub(crate) fn catch<T>(entry: &'static str, body: impl FnOnce() -> Outcome<T>) -> Result<T, snow_status> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(failure)) => {
            set_last_error(&failure.message);
            Err(failure.status)
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            log::error!("snow-node-capi: {entry} panicked: {what}");
            set_last_error(&format!(
                "internal error in {entry}: {what}; this is a bug in snow-node-capi, please report it"
            ));
            Err(SNOW_ERR_PANIC)
        }
    }
}

/// The message of the last call on this thread that failed: nul-terminated UTF-8, owned by the
/// library. It stays valid until the next failing call on this thread. Meaningful only right after
/// a call returned an error (successful calls leave it as it was); empty if no call failed yet.
/// Never null.
#[no_mangle]
pub extern "C" fn snow_last_error() -> *const c_char {
    // The CString lives in this thread's slot until the next failure replaces it.
    LAST_ERROR.with(|last| last.borrow().as_ptr())
}
