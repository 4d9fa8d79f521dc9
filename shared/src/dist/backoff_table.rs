//! Which nodes are in connection backoff, and until when: the driver's table of failed attempts
//! (README, "Guarantees"), bounded in size and in time. Time is supplied by the caller; the table never
//! reads a clock or starts a task, it says when it wants to be swept.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::backoff::Backoff;
use crate::name::NodeName;

/// Most nodes the backoff table remembers at once. Past it, the entry closest to being forgotten
/// makes room, so a flood of failing names cannot grow the table without bound.
pub const BACKOFF_MAX_ENTRIES: usize = 4096;
/// Least time between two sweeps of the backoff table: entries are forgotten up to this late, and
/// a table of many entries is not swept once per entry.
pub const SWEEP_GRANULARITY: Duration = Duration::from_millis(100);
/// How soon a forgettable entry is looked at again while an attempt to its node runs.
pub const SWEEP_RECHECK: Duration = Duration::from_millis(500);

/// One node's failed attempts.
struct BackoffEntry {
    backoff: Backoff,
    /// Until then, on-demand connects to the node fail at once (no dial).
    until: Instant,
    /// From then on the entry is forgotten: `until` plus the same delay again. A failure before
    /// then lengthens the next delay (exponential backoff); a node that fails again only later
    /// starts from the shortest delay, as a node never seen.
    forget: Instant,
}

/// The nodes whose last connection attempt failed (README, "Guarantees"), with their backoff state.
///
/// An entry is useful while its backoff period runs (it holds off on-demand dials) and for one
/// delay after it (a failure then escalates the delay). After that [`BackoffTable::sweep`] removes
/// it (the driver runs a sweeper task at the times `sweep` returns), unless an attempt to that node is running (its outcome refreshes or removes the entry).
/// The sweeper runs only while the table is non-empty, and the table frees its memory when it
/// empties. A successful connection removes the node's entry at once.
#[derive(Default)]
pub struct BackoffTable {
    entries: HashMap<NodeName, BackoffEntry>,
    /// Whether a sweeper task is running for this table.
    sweeping: bool,
}

impl BackoffTable {
    /// How long `node` is still in its backoff period at `now`; `None` if it is not.
    pub fn retry_in(&self, node: &NodeName, now: Instant) -> Option<Duration> {
        self.entries.get(node).map(|e| e.until).filter(|until| *until > now).map(|until| until - now)
    }

    /// Records a failed attempt to `node` at `now` (`random` jitters the delay) and starts its
    /// backoff period. Returns whether the caller must start a sweeper (none is running).
    pub fn failed(&mut self, node: &NodeName, now: Instant, random: u64) -> bool {
        if !self.entries.contains_key(node) && self.entries.len() >= BACKOFF_MAX_ENTRIES {
            self.entries.retain(|_, e| e.forget > now);
            if self.entries.len() >= BACKOFF_MAX_ENTRIES {
                let oldest = self.entries.iter().min_by_key(|(_, e)| e.forget).map(|(n, _)| n.clone());
                if let Some(oldest) = oldest {
                    self.entries.remove(&oldest);
                }
            }
        }
        let entry = self.entries.entry(node.clone()).or_insert_with(|| BackoffEntry {
            backoff: Backoff::default(),
            until: now,
            forget: now,
        });
        let delay = entry.backoff.next_delay(random);
        entry.until = now + delay;
        entry.forget = entry.until + delay;
        !std::mem::replace(&mut self.sweeping, true)
    }

    /// Forgets `node` (a connection to it came up).
    pub fn remove(&mut self, node: &NodeName) {
        self.entries.remove(node);
    }

    /// Number of nodes remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no node is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes the entries forgettable at `now` whose node is not in `busy` (an attempt runs).
    /// Returns when to sweep next, or `None` when the table is empty: the sweeper then stops, and
    /// the next failure starts another.
    pub fn sweep(&mut self, now: Instant, busy: &HashSet<NodeName>) -> Option<Instant> {
        self.entries.retain(|node, e| e.forget > now || busy.contains(node));
        if self.entries.is_empty() {
            self.entries.shrink_to_fit();
            self.sweeping = false;
            return None;
        }
        let next = self.entries.values().map(|e| if e.forget > now { e.forget } else { now + SWEEP_RECHECK }).min();
        next.map(|at| at.max(now + SWEEP_GRANULARITY))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(i: usize) -> NodeName {
        NodeName::parse(&format!("n{i}@h")).unwrap()
    }

    /// The first delay with `random` 0 (half the 100 ms ceiling; the jitter adds nothing).
    const FIRST: Duration = Duration::from_millis(50);

    #[test]
    fn a_failure_holds_off_dials_for_its_delay_then_is_forgotten_one_delay_later() {
        let (mut t, t0, n) = (BackoffTable::default(), Instant::now(), node(1));
        assert!(t.failed(&n, t0, 0), "the first failure asks for a sweeper");
        assert!(!t.failed(&node(2), t0, 0), "one sweeper is enough");
        t.remove(&node(2));
        assert_eq!(t.retry_in(&n, t0), Some(FIRST));
        assert_eq!(t.retry_in(&n, t0 + FIRST), None, "the backoff period is over");
        let busy = HashSet::new();
        // Kept until `until + delay`, and swept no sooner than the granularity allows.
        let forget = t0 + 2 * FIRST;
        assert_eq!(t.sweep(t0 + FIRST, &busy), Some(forget.max(t0 + FIRST + SWEEP_GRANULARITY)));
        assert_eq!(t.len(), 1);
        assert_eq!(t.sweep(t0 + 2 * FIRST, &busy), None, "empty: the sweeper stops");
        assert!(t.is_empty());
        assert!(t.failed(&n, t0 + 3 * FIRST, 0), "a new failure asks for a new sweeper");
    }

    #[test]
    fn a_failure_before_the_entry_is_forgotten_doubles_the_delay_and_a_later_one_starts_over() {
        let (mut t, t0, n) = (BackoffTable::default(), Instant::now(), node(1));
        t.failed(&n, t0, 0);
        let again = t0 + FIRST + FIRST / 2;
        t.failed(&n, again, 0);
        assert_eq!(t.retry_in(&n, again), Some(2 * FIRST), "escalated");
        let busy = HashSet::new();
        let late = again + 4 * FIRST;
        assert_eq!(t.sweep(late, &busy), None);
        t.failed(&n, late, 0);
        assert_eq!(t.retry_in(&n, late), Some(FIRST), "forgotten, so the shortest delay again");
    }

    #[test]
    fn an_entry_whose_node_is_being_dialed_is_kept_and_rechecked() {
        let (mut t, t0, n) = (BackoffTable::default(), Instant::now(), node(1));
        t.failed(&n, t0, 0);
        let busy: HashSet<NodeName> = [n.clone()].into();
        let at = t0 + 10 * FIRST;
        assert_eq!(t.sweep(at, &busy), Some(at + SWEEP_RECHECK));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn the_table_never_holds_more_than_its_bound() {
        let (mut t, t0) = (BackoffTable::default(), Instant::now());
        // Each failure a microsecond later than the previous: node 0 is the closest to forgotten.
        for i in 0..BACKOFF_MAX_ENTRIES {
            t.failed(&node(i), t0 + Duration::from_micros(i as u64), 0);
        }
        assert_eq!(t.len(), BACKOFF_MAX_ENTRIES);
        let later = t0 + Duration::from_millis(1);
        t.failed(&node(BACKOFF_MAX_ENTRIES), later, 0);
        assert_eq!(t.len(), BACKOFF_MAX_ENTRIES);
        assert_eq!(t.retry_in(&node(0), later), None, "the oldest made room");
        assert!(t.retry_in(&node(BACKOFF_MAX_ENTRIES), later).is_some());
        // Once entries are forgettable, they make room before any live one is dropped.
        let all_old = t0 + 10 * FIRST;
        t.failed(&node(BACKOFF_MAX_ENTRIES + 1), all_old, 0);
        assert_eq!(t.len(), 1);
    }
}
