//! What the driver's state needs of an established connection ([`Link`]), so that it can hold
//! connections without knowing how they move their bytes (`connection.rs` implements it).

use std::task::{Context, Poll};

use snow_shared::dist::control::Outgoing;
use snow_shared::dist::outbound::Lane;
use snow_shared::dist::Flags;
use snow_shared::NodeName;

/// What [`Link::push`] did with a frame.
pub(crate) enum Pushed {
    /// Queued (or written), and the queue is under its budget.
    Clear,
    /// Queued, and the queue is now over its budget: the sender should wait for it to drain.
    OverBudget,
    /// Not queued: the queue is at the ceiling given.
    AtCeiling,
    /// Not queued: the connection is closed (its loss is reported to links and monitors).
    Closed,
}

/// A frame for [`Link::push`]: encoded already, or a message the connection encodes (with its
/// atom cache, if negotiated: PROTOCOL.md 4.4) under its queue's lock.
pub(crate) enum Frame<'a> {
    /// A whole payload, names written in full.
    Encoded(Vec<u8>),
    /// A message to encode, and the size of its term written in full ([`Outgoing::term_len`]).
    Message(Outgoing<'a>, usize),
}

#[cfg(test)]
impl Frame<'_> {
    /// The payload in full, for a connection that does not encode (tests, recorders).
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Frame::Encoded(bytes) => bytes,
            Frame::Message(msg, _) => msg.to_bytes(),
        }
    }
}

/// An established, authenticated connection to one peer node, as the driver's state sees it.
pub(crate) trait Link: Send + Sync {
    /// The peer node.
    fn peer(&self) -> &NodeName;
    /// The peer's creation.
    fn creation(&self) -> u32;
    /// The capabilities both sides agreed to.
    fn flags(&self) -> Flags;
    /// Sends a frame: refused only when `ceiling` is given and the queue holds that many bytes
    /// or more, or when the connection is closed.
    fn push(&self, lane: Lane, frame: Frame<'_>, ceiling: Option<usize>) -> Pushed;
    /// Queues frames that waited for the connection, whatever the budget (they were bounded when
    /// they were queued).
    fn enqueue_all(&self, frames: Vec<(Lane, Vec<u8>)>);
    /// `Ready` once the queue is under its budget or the connection closed; else registers `cx`'s
    /// waker to be woken when it is.
    fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()>;
    /// Closes the connection: nothing more is read or written.
    fn close(&self);
    /// Waits until the connection has finished delivering what it is delivering now (after
    /// [`Link::close`]: from then on nothing from it reaches a process).
    fn quiesce(&self);
    /// The most bytes the queue ever held.
    fn queue_high_water(&self) -> usize;
    /// Frame bytes (headers included, before encryption) the connection has written so far.
    fn written_bytes(&self) -> u64;
    /// Writes to the socket so far that took bytes.
    fn socket_writes(&self) -> u64;
    /// Whether everything queued has been handed to the socket (nothing in the send queue, no
    /// TLS output waiting), or the connection is closed.
    fn is_flushed(&self) -> bool;
}

/// Whether `a` and `b` are the same connection (compared by address, whatever their vtables).
pub(crate) fn same(a: &dyn Link, b: &dyn Link) -> bool {
    std::ptr::addr_eq(a as *const dyn Link, b as *const dyn Link)
}
