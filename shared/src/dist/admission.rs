//! Which incoming connections may start a handshake: the limits on peers that have not
//! authenticated yet (README, Security), as sans-IO state. Time is supplied by the caller.
//!
//! Every handshake runs in its own task with a deadline; what bounds the work and memory that
//! unauthenticated peers can cost is:
//!
//! - **Pending handshakes**: at most [`AdmissionLimits::max_pending`] at once in all, and at most
//!   [`AdmissionLimits::max_pending_per_source`] from one source, so one source cannot take every
//!   slot from everyone else.
//! - **Failed authentications**: every handshake that ends before the peer proved the cookie
//!   (wrong cookie, malformed or unexpected messages, TLS failures, timeouts, closes) is a failure
//!   of its source. After [`AdmissionLimits::failures_per_window`] failures within one
//!   [`AdmissionLimits::window`], the source's connections are refused (closed before TLS) until
//!   the window ends.
//!
//! A connection from this host itself (its peer address is the local address it arrived on: a
//! node of the same host, over loopback or the host's own address) counts against the total only:
//! neither the per-source cap nor the failure window applies ([`Admission::admit_same_host`]). A
//! host's own nodes dial each other in bursts (a dozen nodes started together, each told of the
//! others by one NODE_LIST, race to connect and close the duplicates before authenticating), and
//! a local user could bind many `127.x` addresses to get many sources' budgets anyway (README,
//! Security).
//!
//! A *source* is an IPv4 address, or the /64 prefix of an IPv6 address (one host usually holds a
//! whole /64, so counting single IPv6 addresses would let it multiply its budget); an IPv4-mapped
//! IPv6 address (a dual-stack listener) is its IPv4 address. Memory is bounded: pending entries
//! exist only while their handshakes run, and at most [`MAX_FAILURE_SOURCES`] sources' failures are
//! remembered (past it, expired windows and then the oldest make room).
//!
//! The driver calls [`Admission::admit`] for each accepted TCP connection, runs the handshake if it
//! gets a [`Ticket`], and hands the ticket back with the outcome to [`Admission::finish`].

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

/// Most sources whose failed authentications are remembered at once.
pub const MAX_FAILURE_SOURCES: usize = 10_000;

/// The pre-authentication limits of a node (defaults in [`AdmissionLimits::default`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Handshakes running at once, from all sources. Default 64.
    pub max_pending: usize,
    /// Handshakes running at once from one source. Default 8.
    pub max_pending_per_source: usize,
    /// Failed authentications of one source within [`AdmissionLimits::window`] after which its
    /// connections are refused for the rest of the window. Default 10.
    pub failures_per_window: u32,
    /// The failure-counting window. Default one minute.
    pub window: Duration,
}

impl Default for AdmissionLimits {
    fn default() -> AdmissionLimits {
        AdmissionLimits {
            max_pending: 64,
            max_pending_per_source: 8,
            failures_per_window: 10,
            window: Duration::from_secs(60),
        }
    }
}

/// A source address as the limits count it (module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Source(IpAddr);

impl Source {
    /// The source of a connection from `ip`.
    pub fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(_) => Source(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source(IpAddr::V4(v4)),
                None => {
                    let [a, b, c, d, ..] = v6.segments();
                    Source(IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0)))
                }
            },
        }
    }
}

/// Shows an IPv4 address as itself and an IPv6 source as its prefix (`2001:db8::/64`).
impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// Why a connection may not start a handshake. The driver closes it before TLS and logs this.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The source failed to authenticate too often in the current window.
    #[error("{from} failed to authenticate {failures} times within {window:?}; its connections are refused until the window ends")]
    TooManyFailures {
        /// The source.
        from: Source,
        /// Its failures in the window.
        failures: u32,
        /// The window.
        window: Duration,
    },
    /// The source already has as many handshakes running as it may.
    #[error("{from} already has {pending} handshakes running, the most one source may have")]
    SourceBusy {
        /// The source.
        from: Source,
        /// Its running handshakes.
        pending: usize,
    },
    /// As many handshakes as allowed are running.
    #[error("{pending} handshakes are already running, the most allowed at once")]
    Busy {
        /// Running handshakes.
        pending: usize,
    },
}

/// How a handshake admitted by [`Admission::admit`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The peer proved it knows the cookie (whatever happened after: a duplicate, a lost write).
    Authenticated,
    /// The handshake ended before that: a failed authentication of the source.
    Failed,
    /// This node refused it before TLS, as a duplicate of the connection it is making to the
    /// node the dialer named itself ([`early_refusal`](super::early_refusal)): neither.
    Refused,
}

/// A running handshake's slot; give it back to [`Admission::finish`] exactly once.
#[derive(Debug)]
#[must_use = "a ticket holds a pending-handshake slot until it is given to Admission::finish"]
pub struct Ticket {
    source: Source,
    /// Admitted by [`Admission::admit_same_host`]: counted against the total only.
    same_host: bool,
}

impl Ticket {
    /// The source the slot is counted against.
    pub fn source(&self) -> Source {
        self.source
    }
}

/// Failed authentications of one source in its current window.
#[derive(Clone, Copy, Debug)]
struct Failures {
    since: Instant,
    count: u32,
}

/// The pre-authentication accounting of one node (module documentation).
#[derive(Debug)]
pub struct Admission {
    limits: AdmissionLimits,
    pending: usize,
    pending_by_source: HashMap<Source, usize>,
    failures: HashMap<Source, Failures>,
}

impl Admission {
    /// No handshakes running and no failures remembered. Limits of 0 are raised to 1.
    pub fn new(limits: AdmissionLimits) -> Admission {
        let limits = AdmissionLimits {
            max_pending: limits.max_pending.max(1),
            max_pending_per_source: limits.max_pending_per_source.max(1),
            failures_per_window: limits.failures_per_window.max(1),
            ..limits
        };
        Admission { limits, pending: 0, pending_by_source: HashMap::new(), failures: HashMap::new() }
    }

    /// The limits in force.
    pub fn limits(&self) -> &AdmissionLimits {
        &self.limits
    }

    /// Whether a connection from `ip` may start a handshake at `now`; if so, its slot.
    pub fn admit(&mut self, ip: IpAddr, now: Instant) -> Result<Ticket, Refusal> {
        let source = Source::of(ip);
        let failures = self.failures_in_window(source, now);
        if failures >= self.limits.failures_per_window {
            return Err(Refusal::TooManyFailures { from: source, failures, window: self.limits.window });
        }
        if self.pending >= self.limits.max_pending {
            return Err(Refusal::Busy { pending: self.pending });
        }
        let mine = self.pending_by_source.entry(source).or_insert(0);
        if *mine >= self.limits.max_pending_per_source {
            return Err(Refusal::SourceBusy { from: source, pending: *mine });
        }
        *mine += 1;
        self.pending += 1;
        Ok(Ticket { source, same_host: false })
    }

    /// Whether a connection from this host itself (from `ip`, the local address it arrived on)
    /// may start a handshake: only the total applies (module documentation).
    pub fn admit_same_host(&mut self, ip: IpAddr) -> Result<Ticket, Refusal> {
        if self.pending >= self.limits.max_pending {
            return Err(Refusal::Busy { pending: self.pending });
        }
        self.pending += 1;
        Ok(Ticket { source: Source::of(ip), same_host: true })
    }

    /// A handshake ended at `now`: frees its slot, and counts a failure of its source unless the
    /// peer authenticated.
    pub fn finish(&mut self, ticket: Ticket, outcome: Outcome, now: Instant) {
        let source = ticket.source;
        if ticket.same_host {
            self.pending = self.pending.saturating_sub(1);
            return;
        }
        if let Some(mine) = self.pending_by_source.get_mut(&source) {
            *mine = mine.saturating_sub(1);
            if *mine == 0 {
                self.pending_by_source.remove(&source);
            }
        }
        self.pending = self.pending.saturating_sub(1);
        if outcome == Outcome::Failed {
            self.failed(source, now);
        }
    }

    /// Handshakes running now.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Handshakes running now from the source of `ip`.
    pub fn pending_from(&self, ip: IpAddr) -> usize {
        self.pending_by_source.get(&Source::of(ip)).copied().unwrap_or(0)
    }

    /// Failed authentications of the source of `ip` in its window running at `now`.
    pub fn failures_of(&self, ip: IpAddr, now: Instant) -> u32 {
        self.failures_in_window(Source::of(ip), now)
    }

    /// Sources whose failures are remembered.
    pub fn remembered_sources(&self) -> usize {
        self.failures.len()
    }

    fn failures_in_window(&self, source: Source, now: Instant) -> u32 {
        match self.failures.get(&source) {
            Some(f) if now.saturating_duration_since(f.since) < self.limits.window => f.count,
            _ => 0,
        }
    }

    fn failed(&mut self, source: Source, now: Instant) {
        let window = self.limits.window;
        if !self.failures.contains_key(&source) && self.failures.len() >= MAX_FAILURE_SOURCES {
            self.failures.retain(|_, f| now.saturating_duration_since(f.since) < window);
            if self.failures.len() >= MAX_FAILURE_SOURCES {
                let oldest = self.failures.iter().min_by_key(|(_, f)| f.since).map(|(s, _)| *s);
                if let Some(oldest) = oldest {
                    self.failures.remove(&oldest);
                }
            }
        }
        let entry = self.failures.entry(source).or_insert(Failures { since: now, count: 0 });
        if now.saturating_duration_since(entry.since) >= window {
            *entry = Failures { since: now, count: 0 };
        }
        entry.count = entry.count.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn limits(max_pending: usize, per_source: usize, failures: u32) -> AdmissionLimits {
        AdmissionLimits {
            max_pending,
            max_pending_per_source: per_source,
            failures_per_window: failures,
            window: Duration::from_secs(60),
        }
    }

    #[test]
    fn one_source_cannot_take_every_slot() {
        let (mut a, now) = (Admission::new(limits(4, 2, 10)), Instant::now());
        let t1 = a.admit(ip("10.0.0.1"), now).unwrap();
        let _t2 = a.admit(ip("10.0.0.1"), now).unwrap();
        let source = Source::of(ip("10.0.0.1"));
        assert_eq!(a.admit(ip("10.0.0.1"), now).unwrap_err(), Refusal::SourceBusy { from: source, pending: 2 });
        // Others still get in, up to the total.
        let _t3 = a.admit(ip("10.0.0.2"), now).unwrap();
        let _t4 = a.admit(ip("10.0.0.3"), now).unwrap();
        assert_eq!(a.admit(ip("10.0.0.4"), now).unwrap_err(), Refusal::Busy { pending: 4 });
        assert_eq!((a.pending(), a.pending_from(ip("10.0.0.1"))), (4, 2));
        // A finished handshake frees its source's slot and one of the total.
        a.finish(t1, Outcome::Authenticated, now);
        assert_eq!((a.pending(), a.pending_from(ip("10.0.0.1"))), (3, 1));
        let _again = a.admit(ip("10.0.0.1"), now).unwrap();
    }

    #[test]
    fn every_unauthenticated_end_counts_and_blocks_for_the_rest_of_the_window() {
        let (mut a, t0) = (Admission::new(limits(64, 8, 3)), Instant::now());
        let peer = ip("192.0.2.7");
        for i in 0..3 {
            let at = t0 + Duration::from_secs(i);
            let ticket = a.admit(peer, at).unwrap();
            a.finish(ticket, Outcome::Failed, at);
        }
        assert_eq!(a.failures_of(peer, t0 + Duration::from_secs(3)), 3);
        let refused = a.admit(peer, t0 + Duration::from_secs(59)).unwrap_err();
        assert!(matches!(refused, Refusal::TooManyFailures { failures: 3, .. }), "{refused}");
        assert_eq!(a.pending(), 0, "a refusal takes no slot");
        // Authenticated handshakes are not failures; other sources are not affected.
        let other = a.admit(ip("192.0.2.8"), t0).unwrap();
        a.finish(other, Outcome::Authenticated, t0);
        assert_eq!(a.failures_of(ip("192.0.2.8"), t0), 0);
        // The window ends one minute after the first failure: the source starts over.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(a.failures_of(peer, later), 0);
        let ticket = a.admit(peer, later).unwrap();
        a.finish(ticket, Outcome::Failed, later);
        assert_eq!(a.failures_of(peer, later), 1);
    }

    #[test]
    fn connections_from_this_host_count_against_the_total_only() {
        let (mut a, t0) = (Admission::new(limits(4, 1, 1)), Instant::now());
        let local = ip("10.0.0.9");
        let ticket = a.admit_same_host(local).unwrap();
        a.finish(ticket, Outcome::Failed, t0);
        assert_eq!(a.failures_of(local, t0), 0, "no failure counted");
        let tickets: Vec<Ticket> = (0..4).map(|_| a.admit_same_host(local).unwrap()).collect();
        assert_eq!(a.admit_same_host(local).unwrap_err(), Refusal::Busy { pending: 4 });
        assert_eq!(a.pending_from(local), 0, "not counted against the source");
        for t in tickets {
            a.finish(t, Outcome::Authenticated, t0);
        }
        assert_eq!(a.pending(), 0);
        // The same address seen from elsewhere keeps its caps.
        let _one = a.admit(local, t0).unwrap();
        assert!(matches!(a.admit(local, t0), Err(Refusal::SourceBusy { .. })));
    }

    #[test]
    fn an_ipv6_host_is_one_source_per_64_and_mapped_ipv4_is_ipv4() {
        let (mut a, now) = (Admission::new(limits(64, 2, 10)), Instant::now());
        let _t1 = a.admit(ip("2001:db8:1:2::1"), now).unwrap();
        let _t2 = a.admit(ip("2001:db8:1:2:ffff::9"), now).unwrap();
        assert!(matches!(a.admit(ip("2001:db8:1:2::77"), now), Err(Refusal::SourceBusy { .. })));
        let _t3 = a.admit(ip("2001:db8:1:3::1"), now).unwrap();
        assert_eq!(Source::of(ip("::ffff:10.1.2.3")), Source::of(ip("10.1.2.3")));
        assert_eq!(Source::of(ip("2001:db8:1:2::1")).to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn remembered_failures_are_bounded() {
        let (mut a, t0) = (Admission::new(limits(64, 8, 10)), Instant::now());
        for i in 0..MAX_FAILURE_SOURCES as u32 {
            let at = t0 + Duration::from_micros(u64::from(i));
            let ticket = a.admit(IpAddr::from(i.to_be_bytes()), at).unwrap();
            a.finish(ticket, Outcome::Failed, at);
        }
        assert_eq!(a.remembered_sources(), MAX_FAILURE_SOURCES);
        let at = t0 + Duration::from_secs(1);
        let newcomer = ip("203.0.113.1");
        let ticket = a.admit(newcomer, at).unwrap();
        a.finish(ticket, Outcome::Failed, at);
        assert_eq!(a.remembered_sources(), MAX_FAILURE_SOURCES, "the oldest made room");
        assert_eq!(a.failures_of(IpAddr::from(0u32.to_be_bytes()), at), 0);
        assert_eq!(a.failures_of(newcomer, at), 1);
        // Once windows have expired, they make room before anything live is dropped.
        let much_later = t0 + Duration::from_secs(120);
        let ticket = a.admit(ip("203.0.113.2"), much_later).unwrap();
        a.finish(ticket, Outcome::Failed, much_later);
        assert_eq!(a.remembered_sources(), 1);
    }
}
