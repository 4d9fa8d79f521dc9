//! Simulated network and clock for the gossip state machine: many daemons, rounds, partitions.
//! Every daemon has its own Ed25519 key; keys are pinned on first contact as in the daemon.

use super::auth::Authenticator;
use super::exchange;
use super::gossip::{self, Gossip, GossipConfig, Target};
use super::identity::{Identity, PublicKey, Signature};
use super::table::{Persisted, Registration, State, Table, TableLimits};
use crate::name::NodeName;

const ROUND_MS: u64 = 200;

pub(crate) struct Sim {
    pub daemons: Vec<Gossip>,
    pub now: u64,
    /// Daemons in different groups cannot talk; `None` = no partition.
    pub groups: Option<Vec<usize>>,
    /// Encode, seal, open and decode every message through `exchange` (slower; exercises the
    /// codec, the MAC, recipients and Ed25519).
    pub wire: bool,
    auths: Vec<Authenticator>,
    nonce: u64,
    index: std::collections::HashMap<String, usize>,
}

pub(crate) fn id(i: usize) -> String {
    format!("10.0.{}.{}:4369", i / 250, i % 250 + 1)
}

/// The host daemon `i` speaks for (nodes registered there are named after it).
pub(crate) fn host(i: usize) -> String {
    format!("10.0.{}.{}", i / 250, i % 250 + 1)
}

pub(crate) fn identity(i: usize) -> Identity {
    let mut seed = [7u8; 32];
    seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
    Identity::from_seed(&seed)
}

pub(crate) fn reg(name: &str) -> Registration {
    Registration {
        name: NodeName::parse(name).unwrap(),
        port: 9000,
        node_type: 77,
        high_version: 6,
        low_version: 6,
        extra: vec![],
    }
}

/// Accepts every signature: the 1,000-daemon simulation checks convergence, and a million
/// Ed25519 verifications would dominate it; the smaller simulations verify for real.
fn trusting(_: &PublicKey, _: &[u8], _: &Signature) -> bool {
    true
}

fn limits_for(n: usize, limits: TableLimits) -> TableLimits {
    TableLimits { max_daemons: limits.max_daemons.max(n + 1), ..limits }
}

impl Sim {
    /// `n` daemons, each seeded with daemon 0 only.
    pub fn new(n: usize, limits: TableLimits, seed: u64) -> Sim {
        let daemons =
            (0..n).map(|i| Sim::daemon(i, Table::new(id(i), identity(i), 1, limits_for(n, limits)), seed)).collect();
        let auths = (0..n).map(|_| Authenticator::new([42; 32], 30_000, 1 << 16)).collect();
        let index = (0..n).map(|i| (id(i), i)).collect();
        Sim { daemons, now: 1_000_000, groups: None, wire: false, auths, nonce: 0, index }
    }

    fn daemon(i: usize, table: Table, seed: u64) -> Gossip {
        // More probes per round than a daemon's default: a simulated network is free, and 1,000
        // daemons pin each other in a handful of rounds.
        let config = GossipConfig { pin_probes: 64, ..GossipConfig::default() };
        Gossip::new(table, vec![id(0)], seed.wrapping_mul(1000).wrapping_add(i as u64), config)
    }

    /// Replaces daemon `i` (a restart) with `table`.
    pub fn replace(&mut self, i: usize, mut table: Table, seed: u64) {
        if !self.wire {
            table.set_verifier(self.daemons[i].table().verifier());
        }
        self.daemons[i] = Sim::daemon(i, table, seed);
    }

    /// Skips Ed25519 verification (see [`trusting`]).
    pub fn trust_all(&mut self) {
        for d in &mut self.daemons {
            d.table_mut().set_verifier(trusting);
        }
    }

    fn index(&self, id_: &str) -> Option<usize> {
        self.index.get(id_).copied()
    }

    fn can_talk(&self, a: usize, b: usize) -> bool {
        self.groups.as_ref().map_or(true, |g| g[a] == g[b])
    }

    fn next_nonce(&mut self) -> [u8; 16] {
        self.nonce += 1;
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&self.nonce.to_be_bytes());
        nonce
    }

    fn exchange(&mut self, a: usize, b: usize, target: &Target) {
        let now = self.now;
        if self.wire {
            let (n1, n2, n3) = (self.next_nonce(), self.next_nonce(), self.next_nonce());
            let (syn, started) = exchange::start(&mut self.daemons[a], &self.auths[a], target, now, n1);
            let (ack, answered) = exchange::on_syn(&mut self.daemons[b], &mut self.auths[b], &syn, now, n2).unwrap();
            let (ack2, report) =
                exchange::on_ack(&mut self.daemons[a], &mut self.auths[a], &started, &ack, now, n3).unwrap();
            assert!(report.rejected.iter().all(|(_, why)| why.contains("not pinned")), "{report:?}");
            let report = exchange::on_ack2(&mut self.daemons[b], &mut self.auths[b], &answered, &ack2, now).unwrap();
            assert!(report.rejected.iter().all(|(_, why)| why.contains("not pinned")), "{report:?}");
            return;
        }
        let syn = self.daemons[a].syn_for(target);
        let ack = self.daemons[b].handle_syn(&syn, target.probe).unwrap();
        let (ack2, report) = self.daemons[a].handle_ack(&ack, &target.peer, now).unwrap();
        assert!(report.rejected.iter().all(|(_, why)| why.contains("not pinned")), "{report:?}");
        let report = self.daemons[b].handle_ack2(&ack2, now).unwrap();
        assert!(report.rejected.iter().all(|(_, why)| why.contains("not pinned")), "{report:?}");
    }

    /// One round: every daemon gossips with its targets; then time advances and timers run.
    pub fn round(&mut self) {
        for a in 0..self.daemons.len() {
            for target in self.daemons[a].round_targets() {
                let Some(b) = self.index(&target.peer) else {
                    self.daemons[a].exchange_failed(&target.peer);
                    continue;
                };
                if self.can_talk(a, b) {
                    self.exchange(a, b, &target);
                    self.daemons[a].exchange_succeeded(&target.peer);
                } else {
                    self.daemons[a].exchange_failed(&target.peer);
                }
            }
        }
        self.now += ROUND_MS;
        for d in &mut self.daemons {
            d.table_mut().tick(self.now);
            d.table_mut().take_changes();
        }
    }

    /// Rounds until `done` holds (checked before each round), at most `max`; returns the count.
    pub fn run_until(&mut self, max: usize, done: impl Fn(&Sim) -> bool) -> Option<usize> {
        for r in 0..=max {
            if done(self) {
                return Some(r);
            }
            self.round();
        }
        None
    }

    pub fn state_everywhere(&self, name: &str) -> Vec<Option<State>> {
        let n = NodeName::parse(name).unwrap();
        self.daemons.iter().map(|d| d.table().get(&n).map(|e| e.state)).collect()
    }

    /// Every daemon has pinned every other.
    pub fn all_pinned(&self) -> bool {
        self.daemons.iter().all(|d| d.table().pinned_count() == self.daemons.len() - 1)
    }

    /// Registers `short` at daemon `i` (as `short@<its host>`); returns the creation.
    pub fn register(&mut self, i: usize, short: &str) -> u32 {
        let now = self.now;
        self.daemons[i].table_mut().register(reg(&format!("{short}@{}", host(i))), 77, now).unwrap().creation
    }
}

/// Registers one node per daemon and runs until every daemon sees them all up.
fn converge(n: usize, wire: bool) -> usize {
    let mut sim = Sim::new(n, TableLimits::default(), 7);
    sim.wire = wire;
    if !wire {
        sim.trust_all();
    }
    for i in 0..n {
        sim.register(i, &format!("n{i}"));
    }
    sim.run_until(200, |s| s.daemons.iter().all(|d| d.table().len() == n))
        .unwrap_or_else(|| panic!("{n} daemons did not converge"))
}

#[test]
fn three_daemons_converge() {
    converge(3, true);
}

#[test]
fn thirty_daemons_converge_over_the_wire_format() {
    converge(30, true);
}

#[test]
fn a_thousand_daemons_converge_and_a_change_spreads_in_few_rounds() {
    let n = 1000;
    let rounds = converge(n, false);
    assert!(rounds < 200, "{rounds}");
    // Once everyone knows everyone, one new registration is a single rumor.
    let mut sim = Sim::new(n, TableLimits::default(), 11);
    sim.trust_all();
    sim.run_until(300, Sim::all_pinned).unwrap();
    sim.register(500, "late");
    let late = format!("late@{}", host(500));
    let spread = sim.run_until(100, |s| s.state_everywhere(&late).iter().all(|x| *x == Some(State::Up))).unwrap();
    assert!(spread <= 12, "a change took {spread} rounds to reach 1,000 daemons");
}

fn at(i: usize, short: &str) -> String {
    format!("{short}@{}", host(i))
}

#[test]
fn a_partition_heals() {
    let mut sim = Sim::new(6, TableLimits::default(), 3);
    sim.run_until(100, Sim::all_pinned).unwrap();
    sim.groups = Some(vec![0, 0, 0, 1, 1, 1]);
    sim.register(1, "left");
    sim.register(4, "right");
    let (left, right) = (at(1, "left"), at(4, "right"));
    for _ in 0..30 {
        sim.round();
    }
    assert_eq!(sim.state_everywhere(&left)[..3], [Some(State::Up); 3]);
    assert_eq!(sim.state_everywhere(&left)[3..], [None; 3]);
    assert_eq!(sim.state_everywhere(&right)[..3], [None; 3]);
    sim.groups = None;
    sim.run_until(100, |s| {
        s.state_everywhere(&left).iter().chain(&s.state_everywhere(&right)).all(|x| *x == Some(State::Up))
    })
    .expect("partition did not heal");
}

#[test]
fn tombstones_spread_then_expire_and_do_not_come_back() {
    let limits = TableLimits { tombstone_ttl_ms: 10_000, ..TableLimits::default() };
    let mut sim = Sim::new(5, limits, 5);
    let creation = sim.register(2, "x");
    let x = at(2, "x");
    sim.run_until(100, |s| s.state_everywhere(&x).iter().all(|e| *e == Some(State::Up))).unwrap();
    let now = sim.now;
    assert!(sim.daemons[2].table_mut().unregister(&NodeName::parse(&x).unwrap(), creation, now));
    sim.run_until(100, |s| s.state_everywhere(&x).iter().all(|e| *e == Some(State::Down))).unwrap();
    sim.run_until(100, |s| s.state_everywhere(&x).iter().all(Option::is_none)).unwrap();
    for _ in 0..20 {
        sim.round();
    }
    assert!(sim.state_everywhere(&x).iter().all(Option::is_none));
}

#[test]
fn a_daemon_cut_off_longer_than_the_tombstone_ttl_drops_dead_entries() {
    let limits = TableLimits { tombstone_ttl_ms: 2_000, ..TableLimits::default() };
    let mut sim = Sim::new(3, limits, 9);
    let creation = sim.register(0, "x");
    let x = at(0, "x");
    sim.run_until(100, |s| s.state_everywhere(&x).iter().all(|e| *e == Some(State::Up))).unwrap();
    sim.groups = Some(vec![0, 0, 1]);
    let now = sim.now;
    sim.daemons[0].table_mut().unregister(&NodeName::parse(&x).unwrap(), creation, now);
    for _ in 0..30 {
        sim.round();
    }
    sim.register(0, "y");
    assert_eq!(sim.state_everywhere(&x), [None, None, Some(State::Up)]);
    sim.groups = None;
    sim.run_until(100, |s| s.state_everywhere(&x).iter().all(Option::is_none) && s.daemons[2].table().len() == 1)
        .expect("stale entry survived the partition");
}

#[test]
fn a_restarted_owner_wins_over_its_old_entries() {
    let mut sim = Sim::new(4, TableLimits::default(), 13);
    sim.wire = true;
    let first = sim.register(1, "x");
    let x = at(1, "x");
    let name = NodeName::parse(&x).unwrap();
    sim.run_until(100, |s| s.state_everywhere(&x).iter().all(|e| *e == Some(State::Up))).unwrap();
    // Daemon 1 restarts from its persisted state (same key): a new incarnation, x unconfirmed.
    let old = sim.daemons[1].table().clone();
    let persisted = Persisted {
        incarnation: old.incarnation(),
        owners: old.owner_maxima(),
        pins: old.pins(),
        entries: old.entries().cloned().collect(),
    };
    sim.replace(1, Table::restore(id(1), identity(1), persisted, old.limits(), sim.now), 99);
    sim.run_until(100, |s| s.state_everywhere(&x).iter().all(|e| *e == Some(State::Unconfirmed))).unwrap();
    // The node registers again: a new creation, up everywhere.
    let second = sim.register(1, "x");
    assert_ne!(first, second);
    sim.run_until(100, |s| s.daemons.iter().all(|d| d.table().get(&name).is_some_and(|e| e.creation == second)))
        .unwrap();
    // Daemon 1 loses its database (repair) but keeps its key: it relearns x from peers as its
    // own, unconfirmed.
    sim.replace(1, Table::new(id(1), identity(1), 3, old.limits()), 5);
    sim.run_until(100, |s| s.daemons[1].table().get(&name).is_some()).unwrap();
    let e = sim.daemons[1].table().get(&name).unwrap();
    assert_eq!((e.state, e.owner.as_str(), e.version.incarnation), (State::Unconfirmed, id(1).as_str(), 3));
}

#[test]
fn gossip_decoder_rejects_every_truncation() {
    let mut sim = Sim::new(2, TableLimits::default(), 1);
    sim.register(0, "a");
    let syn = sim.daemons[1].syn();
    let ack = sim.daemons[0].handle_syn(&syn, false).unwrap();
    let bytes = gossip::encode(&ack, sim.now);
    assert_eq!(gossip::decode(&bytes, sim.now).unwrap(), ack);
    for cut in 0..bytes.len() {
        assert!(gossip::decode(&bytes[..cut], sim.now).is_err(), "cut {cut}");
    }
}
