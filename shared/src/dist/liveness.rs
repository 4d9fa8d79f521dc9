//! Connection liveness (`SNOW_TICKTIME`, README "Node environment"): send a TICK when we have sent
//! nothing for a quarter of the ticktime, and declare the peer down when nothing at all has
//! arrived from it for a whole ticktime, or when a write of ours has waited for the socket that
//! long (the peer stopped reading: it is as good as gone, and senders waiting for the queue to
//! drain must not wait for ever).
//!
//! The rule is purely time-based, so a peer that is frozen (stopped process, paused VM, a host
//! that went silent behind a firewall) is detected as reliably as one whose socket closed. Any
//! received bytes count as a sign of life, not only TICKs, so a busy connection needs no ticks.

use std::time::{Duration, Instant};

/// Ticktime used when `SNOW_TICKTIME` is unset.
pub const DEFAULT_TICKTIME: Duration = Duration::from_secs(20);

/// What the driver must do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LivenessAction {
    /// Queue a TICK (we have been silent for ticktime/4).
    SendTick,
    /// Nothing arrived for a whole ticktime: close the connection and report the node down.
    PeerDown,
    /// A write has waited for the socket for a whole ticktime: close the connection and report
    /// the node down.
    WriteStalled,
}

/// The liveness timers of one connection.
#[derive(Clone, Debug)]
pub struct Liveness {
    ticktime: Duration,
    last_sent: Instant,
    last_received: Instant,
    /// Since when a write has been waiting for the socket, if one is.
    stalled_since: Option<Instant>,
    down: bool,
}

impl Liveness {
    /// Timers for a connection that came up at `now`. A zero ticktime is raised to one
    /// millisecond so the timers stay meaningful.
    pub fn new(ticktime: Duration, now: Instant) -> Liveness {
        Liveness {
            ticktime: ticktime.max(Duration::from_millis(1)),
            last_sent: now,
            last_received: now,
            stalled_since: None,
            down: false,
        }
    }

    /// The ticktime.
    pub fn ticktime(&self) -> Duration {
        self.ticktime
    }

    /// How long we may stay silent before sending a TICK: a quarter of the ticktime.
    pub fn tick_interval(&self) -> Duration {
        self.ticktime / 4
    }

    /// We wrote bytes to the peer at `now`.
    pub fn on_sent(&mut self, now: Instant) {
        self.last_sent = self.last_sent.max(now);
    }

    /// Bytes arrived from the peer at `now`.
    pub fn on_received(&mut self, now: Instant) {
        self.last_received = self.last_received.max(now);
    }

    /// Where writes stand: `Some(since)` while a write has been waiting for the socket since
    /// then, `None` once the socket took everything.
    pub fn on_write_stall(&mut self, since: Option<Instant>) {
        self.stalled_since = since;
    }

    /// Whether the peer has been declared down.
    pub fn is_down(&self) -> bool {
        self.down
    }

    /// The next instant at which [`Liveness::handle_timeout`] has something to do; `None` once the
    /// peer is down.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.down {
            return None;
        }
        let next = (self.last_sent + self.tick_interval()).min(self.last_received + self.ticktime);
        Some(self.stalled_since.map_or(next, |since| next.min(since + self.ticktime)))
    }

    /// Checks the timers at `now`. `SendTick` counts as sending (the driver queues the TICK at
    /// once), so it is returned at most once per tick interval. `PeerDown` is returned once.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<LivenessAction> {
        if self.down {
            return None;
        }
        if now >= self.last_received + self.ticktime {
            self.down = true;
            return Some(LivenessAction::PeerDown);
        }
        if self.stalled_since.is_some_and(|since| now >= since + self.ticktime) {
            self.down = true;
            return Some(LivenessAction::WriteStalled);
        }
        if now >= self.last_sent + self.tick_interval() {
            self.last_sent = now;
            return Some(LivenessAction::SendTick);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_stalled_for_a_ticktime_brings_the_connection_down_even_while_the_peer_talks() {
        let start = Instant::now();
        let mut live = Liveness::new(T, start);
        // The write stalls at 1 s and never progresses; the peer keeps sending meanwhile.
        live.on_write_stall(Some(start + Duration::from_secs(1)));
        assert_eq!(live.poll_timeout(), Some(start + T / 4), "the next tick comes first");
        let log = simulate(&mut live, start, T * 2, Some(Duration::from_secs(1)));
        let last = log.last().copied();
        assert_eq!(last, Some((T + Duration::from_secs(1), LivenessAction::WriteStalled)));
        assert!(live.is_down());
    }

    #[test]
    fn a_write_that_progresses_in_time_is_no_stall() {
        let start = Instant::now();
        let mut live = Liveness::new(T, start);
        live.on_write_stall(Some(start));
        assert_eq!(live.handle_timeout(start + T / 2), Some(LivenessAction::SendTick));
        live.on_received(start + T / 2);
        live.on_write_stall(None);
        assert_eq!(live.handle_timeout(start + T + T / 4), Some(LivenessAction::SendTick));
        assert!(!live.is_down());
    }

    const T: Duration = Duration::from_secs(20);

    /// Steps simulated time in 100 ms increments, like a driver waking at each deadline would,
    /// and records what happened when.
    fn simulate(
        live: &mut Liveness,
        start: Instant,
        until: Duration,
        peer_sends_every: Option<Duration>,
    ) -> Vec<(Duration, LivenessAction)> {
        let step = Duration::from_millis(100);
        let mut log = Vec::new();
        let mut t = Duration::ZERO;
        while t <= until {
            let now = start + t;
            if let Some(every) = peer_sends_every {
                if t.as_millis() % every.as_millis() == 0 {
                    live.on_received(now);
                }
            }
            if let Some(action) = live.handle_timeout(now) {
                log.push((t, action));
            }
            t += step;
        }
        log
    }

    #[test]
    fn frozen_peer_is_down_after_ticktime_not_before() {
        let start = Instant::now();
        let mut live = Liveness::new(T, start);
        let log = simulate(&mut live, start, T * 2, None);
        let downs: Vec<_> = log.iter().filter(|(_, a)| *a == LivenessAction::PeerDown).collect();
        assert_eq!(downs.len(), 1);
        assert_eq!(downs[0].0, T);
        assert!(live.is_down());
        assert_eq!(live.poll_timeout(), None);
    }

    #[test]
    fn ticks_go_out_every_quarter_ticktime_while_silent() {
        let start = Instant::now();
        let mut live = Liveness::new(T, start);
        let log = simulate(&mut live, start, T * 3, Some(Duration::from_secs(1)));
        let ticks: Vec<Duration> =
            log.iter().filter(|(_, a)| *a == LivenessAction::SendTick).map(|(t, _)| *t).collect();
        assert_eq!(ticks.len(), 12);
        for (n, t) in ticks.iter().enumerate() {
            assert_eq!(*t, T / 4 * (n as u32 + 1));
        }
        assert!(!live.is_down());
    }

    #[test]
    fn traffic_replaces_ticks() {
        let start = Instant::now();
        let mut live = Liveness::new(T, start);
        for s in 1..=60 {
            let now = start + Duration::from_secs(s);
            live.on_sent(now);
            live.on_received(now);
            assert_eq!(live.handle_timeout(now), None);
        }
    }

    #[test]
    fn poll_timeout_is_the_earlier_deadline() {
        let start = Instant::now();
        let mut live = Liveness::new(T, start);
        assert_eq!(live.poll_timeout(), Some(start + T / 4));
        live.on_sent(start + T);
        assert_eq!(live.poll_timeout(), Some(start + T));
        // Time never runs backwards inside the timers.
        live.on_received(start + T);
        live.on_received(start);
        assert_eq!(live.poll_timeout(), Some(start + T + T / 4));
    }
}
