//! Receiving: plain, with a timeout, and selective.
//!
//! A mailbox is two queues. Senders append to the shared inbox under the process's lock; the
//! owner moves the whole inbox into its private queue in one swap when the private queue runs
//! dry, so a burst of messages costs the receiver one lock, not one per message. Sends never
//! block and allocate nothing beyond the queue's amortised growth.
//!
//! Every receive is a suspension point: a process that a congested connection asked to wait
//! ([`Backpressure::Suspend`](crate::seam::Backpressure)) waits there until the congestion clears.
//!
//! The mailbox limit counts both queues: the owner publishes its private queue's length (one
//! relaxed store per message taken) and senders add it to the inbox's, under the process's lock
//! (`entry.rs`).
//!
//! Selective receive scans from the oldest message, takes the first one the predicate accepts and
//! leaves the others in order. A parked selective receive remembers how far it scanned, so each
//! message is tested once per receive (the predicate must not depend on anything but the message).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use snow_shared::Term;

use super::entry::ProcessEntry;

/// Consecutive messages a process may take without yielding to the executor, so a process with a
/// full mailbox cannot starve the others sharing its thread (BEAM uses reductions for this).
const BUDGET: u32 = 128;

/// The receiving side of one process's mailbox: the private queue the owner takes from, and the
/// fairness budget. The shared inbox senders append to is in the process's entry.
pub(crate) struct Mailbox {
    entry: Arc<ProcessEntry>,
    private: VecDeque<Term>,
    budget: u32,
}

impl Mailbox {
    pub fn new(entry: Arc<ProcessEntry>) -> Mailbox {
        Mailbox { entry, private: VecDeque::new(), budget: BUDGET }
    }

    /// The entry of the process this mailbox belongs to.
    pub fn entry(&self) -> &Arc<ProcessEntry> {
        &self.entry
    }

    /// Moves everything in the shared inbox to the private queue; if both are empty, parks the
    /// process (registers `cx`'s waker) and returns `false`.
    fn refill_or_park(&mut self, cx: &mut Context<'_>) -> bool {
        self.entry.refill_or_park(&mut self.private, cx.waker())
    }

    /// Takes the message at `at` from the private queue, publishing the new length first (so a
    /// sender counting the mailbox against its limit never counts a message already taken).
    fn take(&mut self, at: usize) -> Option<Term> {
        if at >= self.private.len() {
            return None;
        }
        self.entry.taking_private(self.private.len());
        if at == 0 {
            self.private.pop_front()
        } else {
            self.private.remove(at)
        }
    }

    /// Spends one unit of the fairness budget; `true` means "yield now".
    fn must_yield(&mut self, cx: &mut Context<'_>) -> bool {
        if self.budget == 0 {
            self.budget = BUDGET;
            cx.waker().wake_by_ref();
            return true;
        }
        self.budget -= 1;
        false
    }

    /// Waits for the oldest message and takes it.
    pub fn receive(&mut self) -> Receive<'_> {
        Receive { mailbox: self }
    }

    /// Waits for the oldest message `accept` returns `true` for and takes it.
    pub fn receive_match<P>(&mut self, accept: P) -> ReceiveMatch<'_, P>
    where
        P: FnMut(&Term) -> bool,
    {
        ReceiveMatch { mailbox: self, accept, scanned: 0 }
    }

    /// Takes the oldest message `accept` returns `true` for, without waiting.
    pub fn try_receive_match(&mut self, accept: impl FnMut(&Term) -> bool) -> Option<Term> {
        self.entry.refill(&mut self.private);
        let at = self.private.iter().position(accept)?;
        self.take(at)
    }

    /// Takes the oldest message if there is one, without waiting.
    pub fn try_receive(&mut self) -> Option<Term> {
        if self.private.is_empty() {
            self.entry.refill(&mut self.private);
        }
        self.take(0)
    }

    /// Number of messages waiting.
    pub fn len(&self) -> usize {
        self.private.len() + self.entry.inbox_len()
    }

    /// Removes every message `reject` returns `true` for; returns how many were removed.
    pub fn remove_matching(&mut self, mut reject: impl FnMut(&Term) -> bool) -> usize {
        let before = self.private.len();
        self.private.retain(|m| !reject(m));
        self.entry.private_shrunk(self.private.len());
        let removed = before - self.private.len();
        removed + self.entry.remove_from_inbox(reject)
    }
}

/// Future of [`Process::receive`](crate::Process::receive).
#[must_use = "futures do nothing unless awaited"]
pub struct Receive<'a> {
    mailbox: &'a mut Mailbox,
}

impl Future for Receive<'_> {
    type Output = Term;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Term> {
        let m = &mut *self.get_mut().mailbox;
        if m.entry.poll_congestion(cx).is_pending() {
            return Poll::Pending;
        }
        loop {
            if !m.private.is_empty() {
                if m.must_yield(cx) {
                    return Poll::Pending;
                }
                if let Some(msg) = m.take(0) {
                    return Poll::Ready(msg);
                }
            }
            if !m.refill_or_park(cx) {
                return Poll::Pending;
            }
        }
    }
}

/// Future of [`Process::receive_match`](crate::Process::receive_match).
#[must_use = "futures do nothing unless awaited"]
pub struct ReceiveMatch<'a, P> {
    mailbox: &'a mut Mailbox,
    accept: P,
    scanned: usize,
}

impl<P: FnMut(&Term) -> bool> Future for ReceiveMatch<'_, P> {
    type Output = Term;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Term> {
        // Every field is Unpin (a reference, a counter and the predicate, which is never pinned
        // in place), so the future can be taken apart by value.
        let this = Pin::into_inner(self);
        if this.mailbox.entry.poll_congestion(cx).is_pending() {
            return Poll::Pending;
        }
        loop {
            let m = &mut *this.mailbox;
            let start = this.scanned.min(m.private.len());
            if let Some(offset) = m.private.range(start..).position(&mut this.accept) {
                if m.must_yield(cx) {
                    this.scanned = start + offset;
                    return Poll::Pending;
                }
                this.scanned = 0;
                if let Some(msg) = m.take(start + offset) {
                    return Poll::Ready(msg);
                }
            }
            this.scanned = m.private.len();
            if !m.refill_or_park(cx) {
                return Poll::Pending;
            }
        }
    }
}

impl<P> Unpin for ReceiveMatch<'_, P> {}
