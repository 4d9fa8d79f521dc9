//! The hybrid logical clock that stamps global registrations.
//!
//! A stamp is `wall-clock milliseconds << 16 | counter`: it follows the wall clock when clocks
//! agree, never runs backwards, and is greater than every stamp the node has seen from others. So
//! of two registrations of a name, one made by a node that had already seen the other always has
//! the greater stamp (it cannot win a conflict against a registration it knew about), and
//! registrations made without knowledge of each other (two sides of a partition) are ordered by
//! wall-clock time, within the clocks' skew.
//!
//! A node whose clock runs far ahead pulls ahead the stamps of every node that hears from it (as
//! with any hybrid logical clock). Causality is kept whatever the clocks say; only the order of
//! registrations that did not know of each other depends on the clocks.

/// Bits of a stamp below the milliseconds: a counter for stamps issued within one millisecond (it
/// carries into the milliseconds when it overflows, so stamps stay unique).
pub const COUNTER_BITS: u32 = 16;

/// The largest stamp: stamps cross the wire as non-negative 64-bit integers. A clock that reaches
/// it stays there (ties are then broken by the rest of the claim's order).
pub const MAX_STAMP: u64 = i64::MAX as u64;

/// A node's registration clock. The caller passes the wall clock in; nothing here reads it.
#[derive(Clone, Debug, Default)]
pub struct HybridClock {
    last: u64,
}

impl HybridClock {
    /// A new stamp at wall-clock time `wall_ms` (milliseconds since the Unix epoch), greater than
    /// every stamp issued or observed before.
    pub fn stamp(&mut self, wall_ms: u64) -> u64 {
        let physical = wall_ms.saturating_mul(1 << COUNTER_BITS).min(MAX_STAMP);
        self.last = physical.max(self.last.saturating_add(1)).min(MAX_STAMP);
        self.last
    }

    /// Takes note of a stamp another node issued, so later local stamps are greater.
    pub fn observe(&mut self, stamp: u64) {
        self.last = self.last.max(stamp.min(MAX_STAMP));
    }

    /// The wall-clock milliseconds a stamp was issued at (or after, if its counter overflowed).
    pub fn wall_ms(stamp: u64) -> u64 {
        stamp >> COUNTER_BITS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_follow_the_wall_clock_and_never_repeat_or_run_backwards() {
        let mut clock = HybridClock::default();
        let a = clock.stamp(1_000);
        assert_eq!(HybridClock::wall_ms(a), 1_000);
        let b = clock.stamp(1_000);
        assert_eq!(b, a + 1, "same millisecond: the counter moves");
        let c = clock.stamp(999);
        assert!(c > b, "a wall clock that steps back does not take the stamps with it");
        let d = clock.stamp(2_000);
        assert_eq!(HybridClock::wall_ms(d), 2_000);
    }

    #[test]
    fn a_stamp_issued_after_observing_another_is_greater() {
        let mut ahead = HybridClock::default();
        let theirs = ahead.stamp(50_000);
        let mut behind = HybridClock::default();
        behind.observe(theirs);
        assert!(behind.stamp(10_000) > theirs, "the lagging clock still orders after what it saw");
    }

    #[test]
    fn the_clock_saturates_at_the_wire_maximum() {
        let mut clock = HybridClock::default();
        clock.observe(u64::MAX);
        assert_eq!(clock.stamp(u64::MAX), MAX_STAMP);
        assert_eq!(clock.stamp(1), MAX_STAMP);
    }
}
