//! Log rate limiting: hostile or broken input is logged once per minute per (peer, kind), never
//! per packet, so a flood cannot fill the disk through the log.

use std::collections::HashMap;

const PERIOD_MS: u64 = 60_000;
const MAX_KEYS: usize = 10_000;

/// Remembers when each key was last logged.
#[derive(Debug, Default)]
pub struct LogLimiter {
    last: HashMap<String, u64>,
}

impl LogLimiter {
    /// True if `key` may be logged at `now_ms` (and records that it was).
    pub fn allow(&mut self, key: &str, now_ms: u64) -> bool {
        if self.last.len() >= MAX_KEYS {
            self.last.retain(|_, t| now_ms.saturating_sub(*t) < PERIOD_MS);
        }
        match self.last.get(key) {
            Some(t) if now_ms.saturating_sub(*t) < PERIOD_MS => false,
            _ => {
                if self.last.len() < MAX_KEYS {
                    self.last.insert(key.to_owned(), now_ms);
                }
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_minute_per_key() {
        let mut l = LogLimiter::default();
        assert!(l.allow("a", 0));
        assert!(!l.allow("a", 59_999));
        assert!(l.allow("b", 10));
        assert!(l.allow("a", 60_000));
    }
}
