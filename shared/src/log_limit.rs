//! Rate limiting for log lines that a peer or a program could make repeat without end (a refused
//! request, a message over a limit): at most one line per key per period, and the first line
//! allowed after a quiet spell says how many were suppressed before it. A flood then costs a few
//! lines a minute, not one per message, and no count is lost.
//!
//! Sans-IO: the caller passes the time in.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// How often one key may log by default.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(60);
/// Keys remembered at most; past this, keys whose period is over are forgotten first, and a key
/// that cannot be remembered is logged every time rather than never.
const MAX_KEYS: usize = 4096;

/// One key's state: when it last logged, and what it suppressed since.
#[derive(Debug, Clone, Copy)]
struct Window {
    logged_at: Instant,
    suppressed: u64,
}

/// Decides which occurrences of a repeating event are logged.
#[derive(Debug)]
pub struct LogLimit<K> {
    period: Duration,
    windows: HashMap<K, Window>,
}

impl<K: Hash + Eq + Clone> Default for LogLimit<K> {
    fn default() -> Self {
        LogLimit::new(DEFAULT_PERIOD)
    }
}

impl<K: Hash + Eq + Clone> LogLimit<K> {
    /// A limiter that lets each key log once per `period`.
    pub fn new(period: Duration) -> Self {
        LogLimit { period, windows: HashMap::new() }
    }

    /// Records one occurrence of `key` at `now`. `Some(n)`: log it, and say that `n` earlier
    /// occurrences were suppressed since the last line for this key; `None`: suppress it.
    pub fn check(&mut self, key: &K, now: Instant) -> Option<u64> {
        if let Some(window) = self.windows.get_mut(key) {
            if now.saturating_duration_since(window.logged_at) < self.period {
                window.suppressed = window.suppressed.saturating_add(1);
                return None;
            }
            let suppressed = window.suppressed;
            *window = Window { logged_at: now, suppressed: 0 };
            return Some(suppressed);
        }
        if self.windows.len() >= MAX_KEYS {
            let period = self.period;
            self.windows.retain(|_, w| now.saturating_duration_since(w.logged_at) < period || w.suppressed > 0);
        }
        if self.windows.len() < MAX_KEYS {
            self.windows.insert(key.clone(), Window { logged_at: now, suppressed: 0 });
        }
        Some(0)
    }

    /// Number of keys remembered.
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

/// The tail of a log line that reports suppressed repeats: empty for 0, else
/// `" (and N more like it since the last report)"`.
pub fn suppressed_note(suppressed: u64) -> String {
    if suppressed == 0 {
        String::new()
    } else {
        format!(" (and {suppressed} more like it since the last report)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_key_per_period_with_the_count_of_what_was_suppressed() {
        let start = Instant::now();
        let mut limit = LogLimit::new(Duration::from_secs(60));
        assert_eq!(limit.check(&"a", start), Some(0));
        for i in 1..=1000 {
            assert_eq!(limit.check(&"a", start + Duration::from_millis(i)), None);
        }
        assert_eq!(limit.check(&"b", start + Duration::from_secs(1)), Some(0), "keys are independent");
        assert_eq!(limit.check(&"a", start + Duration::from_secs(60)), Some(1000));
        assert_eq!(limit.check(&"a", start + Duration::from_secs(61)), None);
        assert_eq!(limit.check(&"a", start + Duration::from_secs(120)), Some(1));
        assert_eq!(suppressed_note(0), "");
        assert_eq!(suppressed_note(3), " (and 3 more like it since the last report)");
    }

    #[test]
    fn the_key_table_is_bounded_and_forgets_quiet_keys_first() {
        let start = Instant::now();
        let mut limit = LogLimit::new(Duration::from_secs(1));
        for key in 0..MAX_KEYS {
            assert_eq!(limit.check(&key, start), Some(0));
        }
        assert_eq!(limit.len(), MAX_KEYS);
        // A new key while full and nothing expired: logged, not remembered.
        assert_eq!(limit.check(&MAX_KEYS, start), Some(0));
        assert_eq!(limit.check(&MAX_KEYS, start), Some(0));
        assert_eq!(limit.len(), MAX_KEYS);
        // Once the period is over the quiet keys make room.
        assert_eq!(limit.check(&(MAX_KEYS + 1), start + Duration::from_secs(2)), Some(0));
        assert_eq!(limit.len(), 1);
    }
}
