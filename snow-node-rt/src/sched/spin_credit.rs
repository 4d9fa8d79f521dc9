//! Whether a parked worker's spin is worth its CPU, learned from how the last spins ended.
//!
//! A spin pays when work arrives before it ends (an answer caught without waking a sleeping
//! CPU); it is waste when it runs out. On a machine with more runnable threads than cores (many
//! nodes on one host, a busy neighbour) it is worse than waste: the spinner holds a core the
//! thread that would send it work needs, so the spin mostly runs out. The pool then stops
//! spinning once wasted spins outnumber those that paid by [`MAX_CREDIT`] (see [`SpinCredit`]),
//! and tries one spin in every [`PROBE_EVERY`] parks, so it spins again once spinning pays
//! again. (HotSpot adapts its lock spinning to past success the same way.)

use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::Relaxed;

/// The credit a pool starts with and the most it holds: from full, this many wasted spins in a
/// row stop the spinning.
pub(super) const MAX_CREDIT: u32 = 8;
/// Out of credit, one park in this many spins anyway.
pub(super) const PROBE_EVERY: u32 = 32;

/// A pool's spin credit: one more (up to [`MAX_CREDIT`]) after a spin that paid, one less after
/// each spin that did not, so the pool spins while at least about half of its spins pay.
pub(super) struct SpinCredit {
    credit: AtomicU32,
    parks_without_credit: AtomicU32,
}

impl SpinCredit {
    pub(super) fn new() -> SpinCredit {
        SpinCredit { credit: AtomicU32::new(MAX_CREDIT), parks_without_credit: AtomicU32::new(0) }
    }

    /// Whether a worker about to park should spin first.
    pub(super) fn may_spin(&self) -> bool {
        if self.credit.load(Relaxed) > 0 {
            return true;
        }
        self.parks_without_credit.fetch_add(1, Relaxed) % PROBE_EVERY == PROBE_EVERY - 1
    }

    /// A spin found work before it ended.
    pub(super) fn paid(&self) {
        let _ = self.credit.fetch_update(Relaxed, Relaxed, |c| (c < MAX_CREDIT).then_some(c + 1));
    }

    /// A spin ran out without finding work.
    pub(super) fn wasted(&self) {
        let _ = self.credit.fetch_update(Relaxed, Relaxed, |c| c.checked_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spinning_stops_after_wasted_spins_and_resumes_after_one_that_paid() {
        let credit = SpinCredit::new();
        for _ in 0..MAX_CREDIT {
            assert!(credit.may_spin());
            credit.wasted();
        }
        let spins = (0..PROBE_EVERY * 4).filter(|_| credit.may_spin()).count();
        assert_eq!(spins, 4, "out of credit, one park in {PROBE_EVERY} probes");
        credit.paid();
        assert!(credit.may_spin(), "one spin that paid is enough to spin again");
    }

    #[test]
    fn spinning_goes_on_while_about_half_the_spins_pay() {
        let credit = SpinCredit::new();
        for _ in 0..1000 {
            credit.wasted();
            credit.paid();
            assert!(credit.may_spin());
        }
        for _ in 0..MAX_CREDIT {
            credit.wasted();
        }
        assert!(!credit.may_spin());
    }
}
