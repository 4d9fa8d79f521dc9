//! The daemon's single time source.

/// Wall-clock milliseconds since the Unix epoch: entry ages, timers and the gossip replay window.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
