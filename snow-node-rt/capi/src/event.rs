//! What the embedder is told about its processes, and how it is laid out for its `deliver`
//! callback: the C event ([`snow_event`]), its kinds, and the encoding of each `Event` into
//! buffers that live for the call.

use std::cell::RefCell;
use std::ffi::c_void;

use snow_node_rt::{reason, Monitored, Pid, Ref, Term};
use snow_shared::codec;

use crate::executor::Ctx;
use crate::ids::{snow_pid, snow_ref};

/// What happened to a process.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum snow_event_kind {
    /// A message: `message` holds it.
    SNOW_EVENT_MESSAGE = 0,
    /// An exit signal from `pid`, with `reason`; `linked` says it reports the end of a link (the
    /// linked process exited, or its node was lost: `:noconnection`), else it was sent with
    /// `snow_exit`. The embedder applies Erlang's rules: a process that traps exits gets `message`
    /// (`{:EXIT, pid, reason}`) in its mailbox; otherwise `:normal` is ignored (unless `pid` is the
    /// process itself), `:kill` not `linked` kills it with `:killed`, and any other reason kills it
    /// with that reason.
    SNOW_EVENT_EXIT = 1,
    /// A monitor fired: `reference` is the monitor's, `reason` why; `message` is the
    /// `{:DOWN, reference, item, reason}` message to put in the mailbox (`item`: the pid, or
    /// `{name, node}` for a monitor by name). The monitor is gone.
    SNOW_EVENT_DOWN = 2,
    /// The connection that made a send of this process return `SNOW_SUSPEND` has room again (or is
    /// gone): let the process run.
    SNOW_EVENT_RESUME = 3,
    /// A process that the `spawn` callback created for another node may run now: `pid` is its pid,
    /// `message` its arguments (the list the `spawn` callback saw). It must not run before this.
    SNOW_EVENT_START = 4,
}

/// One event for one process, given to the `deliver` callback. Every pointer in it is valid only
/// during the callback: copy what you keep. Fields other than those its kind names are null/0.
#[repr(C)]
pub struct snow_event {
    /// What happened.
    pub kind: snow_event_kind,
    /// An encoded term (PROTOCOL.md section 1): see the kind.
    pub message: *const u8,
    /// Bytes at `message`.
    pub message_len: usize,
    /// `SNOW_EVENT_EXIT`, `SNOW_EVENT_DOWN`: the encoded reason.
    pub reason: *const u8,
    /// Bytes at `reason`.
    pub reason_len: usize,
    /// `SNOW_EVENT_EXIT`: who sent the signal; `SNOW_EVENT_START`: the new process's own pid.
    pub pid: *const snow_pid,
    /// `SNOW_EVENT_DOWN`: the monitor's reference.
    pub reference: *const snow_ref,
    /// `SNOW_EVENT_EXIT`: whether the signal reports the end of a link.
    pub linked: bool,
}

/// Delivers an event to the embedder's process `token` (the token it gave when it registered the
/// process, or returned from its `spawn` callback). Called from any thread, including from inside
/// calls of this library on the caller's own thread (a send to a local process delivers at once);
/// events for one process from one sender come in order. It must not block: queue the event and
/// return. It may call this library.
pub type snow_deliver_fn = Option<unsafe extern "C" fn(ctx: *mut c_void, token: u64, event: *const snow_event)>;

/// [`snow_deliver_fn`] once checked non-null.
pub(crate) type DeliverFn = unsafe extern "C" fn(ctx: *mut c_void, token: u64, event: *const snow_event);

/// What the embedder is told.
pub(crate) enum Event {
    Message(Term),
    Exit { from: Pid, reason: Term, linked: bool },
    Down { reference: Ref, item: Monitored, reason: Term },
    Resume,
    Start { pid: Pid, args: Term },
}

thread_local! {
    /// Buffers events are encoded into; taken out while a callback runs (it may deliver again).
    static BUFFERS: RefCell<(Vec<u8>, Vec<u8>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Lays `event` out for C and gives it to the embedder's `deliver` callback for process `token`.
pub(crate) fn deliver_to(deliver: DeliverFn, ctx: Ctx, token: u64, event: &Event) {
    let (mut message, mut reason) = BUFFERS.with(|b| std::mem::take(&mut *b.borrow_mut()));
    message.clear();
    reason.clear();
    let (mut pid, mut reference) = (None, None);
    let (kind, linked) = match event {
        Event::Message(msg) => {
            codec::encode_into(msg, &mut message);
            (snow_event_kind::SNOW_EVENT_MESSAGE, false)
        }
        Event::Exit { from, reason: why, linked } => {
            codec::encode_into(&reason::exit_message(from, why.clone()), &mut message);
            codec::encode_into(why, &mut reason);
            pid = Some(snow_pid::from_pid(from));
            (snow_event_kind::SNOW_EVENT_EXIT, *linked)
        }
        Event::Down { reference: r, item, reason: why } => {
            codec::encode_into(&reason::down_message(r, item.to_term(), why.clone()), &mut message);
            codec::encode_into(why, &mut reason);
            reference = Some(snow_ref::from_ref(r));
            (snow_event_kind::SNOW_EVENT_DOWN, false)
        }
        Event::Resume => (snow_event_kind::SNOW_EVENT_RESUME, false),
        Event::Start { pid: p, args } => {
            codec::encode_into(args, &mut message);
            pid = Some(snow_pid::from_pid(p));
            (snow_event_kind::SNOW_EVENT_START, false)
        }
    };
    let bytes = |b: &Vec<u8>| if b.is_empty() { (std::ptr::null(), 0) } else { (b.as_ptr(), b.len()) };
    let ((m, m_len), (r, r_len)) = (bytes(&message), bytes(&reason));
    let c_event = snow_event {
        kind,
        message: m,
        message_len: m_len,
        reason: r,
        reason_len: r_len,
        pid: pid.as_ref().map_or(std::ptr::null(), |p| p as *const snow_pid),
        reference: reference.as_ref().map_or(std::ptr::null(), |r| r as *const snow_ref),
        linked,
    };
    // SAFETY: the embedder's callback with its own context; the event and everything it
    // points at live until the call returns.
    unsafe { deliver(ctx.get(), token, &c_event) };
    BUFFERS.with(|b| *b.borrow_mut() = (message, reason));
}
