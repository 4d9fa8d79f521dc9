//! Reconnect backoff: exponential delays with jitter, so that many nodes that lost the same peer
//! do not all redial it in the same instant. The jitter comes from random bytes the caller draws
//! (no RNG in here).

use std::time::Duration;

/// Default first delay.
pub const DEFAULT_BASE: Duration = Duration::from_millis(100);
/// Default largest delay.
pub const DEFAULT_MAX: Duration = Duration::from_secs(10);

/// Exponential backoff with "equal jitter": the n-th delay is uniformly spread over
/// `[d/2, d]` where `d = min(max, base * 2^n)`. It never drops below half the exponential value, so
/// a failing peer is not hammered, and never exceeds `max`.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::new(DEFAULT_BASE, DEFAULT_MAX)
    }
}

impl Backoff {
    /// A backoff starting at `base` and capped at `max` (raised to `base` if smaller).
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff { base, max: max.max(base), attempt: 0 }
    }

    /// The delay before the next attempt, jittered with `random` (any value from a uniform RNG),
    /// and counts the attempt.
    pub fn next_delay(&mut self, random: u64) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let ceiling_ns = ceiling.as_nanos().min(u64::MAX as u128) as u64;
        let half = ceiling_ns / 2;
        let spread = ceiling_ns - half;
        let jitter = if spread == 0 { 0 } else { random % (spread + 1) };
        Duration::from_nanos(half + jitter)
    }

    /// The un-jittered delay of the next attempt: `min(max, base * 2^attempts)`.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.base.checked_mul(factor).unwrap_or(self.max).min(self.max)
    }

    /// Failed attempts since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// A connection succeeded: the next failure starts from `base` again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let ceilings: Vec<u128> = (0..6)
            .map(|_| {
                let c = b.ceiling().as_millis();
                b.next_delay(u64::MAX);
                c
            })
            .collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.attempts(), 0);
        assert_eq!(b.ceiling(), Duration::from_millis(100));
    }

    #[test]
    fn jitter_spans_half_to_full() {
        let mut lo = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let mut hi = lo.clone();
        assert_eq!(lo.next_delay(0), Duration::from_millis(50));
        assert_eq!(hi.next_delay(50_000_000), Duration::from_millis(100));
    }

    proptest! {
        #[test]
        fn delays_stay_within_bounds(base_ms in 1u64..5_000, max_ms in 1u64..100_000, randoms in proptest::collection::vec(any::<u64>(), 1..80)) {
            let (base, max) = (Duration::from_millis(base_ms), Duration::from_millis(max_ms));
            let mut b = Backoff::new(base, max);
            for r in randoms {
                let ceiling = b.ceiling();
                let d = b.next_delay(r);
                prop_assert!(d <= ceiling && d <= max.max(base));
                prop_assert!(d >= ceiling / 2);
            }
        }
    }
}
