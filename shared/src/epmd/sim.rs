//! Simulated network and clock for the gossip state machine: many daemons, rounds, partitions.

use super::auth::Authenticator;
use super::gossip::{self, Gossip, GossipConfig, Message};
use super::table::{Registration, State, Table, TableLimits};
use crate::name::NodeName;

const ROUND_MS: u64 = 200;

pub(crate) struct Sim {
    pub daemons: Vec<Gossip>,
    pub now: u64,
    /// Daemons in different groups cannot talk; `None` = no partition.
    pub groups: Option<Vec<usize>>,
    /// Encode, seal, open and decode every message (slower; exercises the codec and MAC).
    pub wire: bool,
    auths: Vec<Authenticator>,
    nonce: u64,
}

pub(crate) fn id(i: usize) -> String {
    format!("10.0.{}.{}:4369", i / 250, i % 250 + 1)
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

impl Sim {
    /// `n` daemons, each seeded with daemon 0 only.
    pub fn new(n: usize, limits: TableLimits, seed: u64) -> Sim {
        let daemons = (0..n)
            .map(|i| {
                let t = Table::new(id(i), 1, limits);
                Gossip::new(t, vec![id(0)], seed.wrapping_mul(1000).wrapping_add(i as u64), GossipConfig::default())
            })
            .collect();
        let auths = (0..n).map(|_| Authenticator::new([42; 32], 30_000, 1 << 16)).collect();
        Sim { daemons, now: 1_000_000, groups: None, wire: false, auths, nonce: 0 }
    }

    fn index(&self, id_: &str) -> Option<usize> {
        self.daemons.iter().position(|d| d.table().me() == id_)
    }

    fn can_talk(&self, a: usize, b: usize) -> bool {
        self.groups.as_ref().map_or(true, |g| g[a] == g[b])
    }

    fn carry(&mut self, to: usize, msg: Message, reply_to: [u8; 16]) -> (Message, [u8; 16]) {
        if !self.wire {
            return (msg, [0; 16]);
        }
        self.nonce += 1;
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&self.nonce.to_be_bytes());
        let body = gossip::encode(&msg, self.now);
        let sealed = self.auths[0].seal(&body, self.now, nonce, reply_to);
        let expect = if reply_to == [0; 16] { None } else { Some(reply_to) };
        let opened = self.auths[to].open(&sealed, self.now, expect).unwrap();
        (gossip::decode(opened.body, self.now).unwrap(), opened.nonce)
    }

    fn exchange(&mut self, a: usize, b: usize) {
        let now = self.now;
        let syn = self.daemons[a].syn();
        let (syn, syn_nonce) = self.carry(b, syn, [0; 16]);
        let ack = self.daemons[b].handle_syn(&syn).unwrap();
        let (ack, _) = self.carry(a, ack, syn_nonce);
        let (ack2, report) = self.daemons[a].handle_ack(&ack, now).unwrap();
        assert!(report.rejected.is_empty(), "{report:?}");
        let (ack2, _) = self.carry(b, ack2, syn_nonce);
        let report = self.daemons[b].handle_ack2(&ack2, now).unwrap();
        assert!(report.rejected.is_empty(), "{report:?}");
    }

    /// One round: every daemon gossips with its targets; then time advances and timers run.
    pub fn round(&mut self) {
        for a in 0..self.daemons.len() {
            for target in self.daemons[a].round_targets() {
                let Some(b) = self.index(&target) else { continue };
                if self.can_talk(a, b) {
                    self.exchange(a, b);
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

    pub fn all_know_daemons(&self) -> bool {
        self.daemons.iter().all(|d| d.table().daemons().count() == self.daemons.len())
    }

    pub fn register(&mut self, i: usize, name: &str) -> u32 {
        let now = self.now;
        self.daemons[i].table_mut().register(reg(name), 77, now).unwrap().creation
    }
}

/// Registers one node per daemon and runs until every daemon sees them all up.
fn converge(n: usize, wire: bool) -> usize {
    let mut sim = Sim::new(n, TableLimits::default(), 7);
    sim.wire = wire;
    for i in 0..n {
        sim.register(i, &format!("n{i}@h{i}"));
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
    sim.run_until(200, Sim::all_know_daemons).unwrap();
    sim.register(500, "late@h");
    let spread = sim.run_until(100, |s| s.state_everywhere("late@h").iter().all(|x| *x == Some(State::Up))).unwrap();
    assert!(spread <= 12, "a change took {spread} rounds to reach 1,000 daemons");
}

#[test]
fn a_partition_heals() {
    let mut sim = Sim::new(6, TableLimits::default(), 3);
    sim.run_until(100, Sim::all_know_daemons).unwrap();
    sim.groups = Some(vec![0, 0, 0, 1, 1, 1]);
    sim.register(1, "left@h");
    sim.register(4, "right@h");
    for _ in 0..30 {
        sim.round();
    }
    assert_eq!(sim.state_everywhere("left@h")[..3], [Some(State::Up); 3]);
    assert_eq!(sim.state_everywhere("left@h")[3..], [None; 3]);
    assert_eq!(sim.state_everywhere("right@h")[..3], [None; 3]);
    sim.groups = None;
    sim.run_until(100, |s| {
        s.state_everywhere("left@h").iter().chain(&s.state_everywhere("right@h")).all(|x| *x == Some(State::Up))
    })
    .expect("partition did not heal");
}

#[test]
fn tombstones_spread_then_expire_and_do_not_come_back() {
    let limits = TableLimits { tombstone_ttl_ms: 10_000, ..TableLimits::default() };
    let mut sim = Sim::new(5, limits, 5);
    let creation = sim.register(2, "x@h");
    sim.run_until(100, |s| s.state_everywhere("x@h").iter().all(|x| *x == Some(State::Up))).unwrap();
    let now = sim.now;
    assert!(sim.daemons[2].table_mut().unregister(&NodeName::parse("x@h").unwrap(), creation, now));
    sim.run_until(100, |s| s.state_everywhere("x@h").iter().all(|x| *x == Some(State::Down))).unwrap();
    sim.run_until(100, |s| s.state_everywhere("x@h").iter().all(Option::is_none)).unwrap();
    for _ in 0..20 {
        sim.round();
    }
    assert!(sim.state_everywhere("x@h").iter().all(Option::is_none));
}

#[test]
fn a_daemon_cut_off_longer_than_the_tombstone_ttl_drops_dead_entries() {
    let limits = TableLimits { tombstone_ttl_ms: 2_000, ..TableLimits::default() };
    let mut sim = Sim::new(3, limits, 9);
    let creation = sim.register(0, "x@h");
    sim.run_until(100, |s| s.state_everywhere("x@h").iter().all(|x| *x == Some(State::Up))).unwrap();
    sim.groups = Some(vec![0, 0, 1]);
    let now = sim.now;
    sim.daemons[0].table_mut().unregister(&NodeName::parse("x@h").unwrap(), creation, now);
    for _ in 0..30 {
        sim.round();
    }
    sim.register(0, "y@h");
    assert_eq!(sim.state_everywhere("x@h"), [None, None, Some(State::Up)]);
    sim.groups = None;
    sim.run_until(100, |s| s.state_everywhere("x@h").iter().all(Option::is_none) && s.daemons[2].table().len() == 1)
        .expect("stale entry survived the partition");
}

#[test]
fn a_restarted_owner_wins_over_its_old_entries() {
    let mut sim = Sim::new(4, TableLimits::default(), 13);
    let first = sim.register(1, "x@h");
    sim.run_until(100, |s| s.state_everywhere("x@h").iter().all(|x| *x == Some(State::Up))).unwrap();
    // Daemon 1 restarts from its persisted state: a new incarnation, x unconfirmed.
    let old = sim.daemons[1].table().clone();
    let restored = Table::restore(
        id(1),
        old.incarnation(),
        old.owner_maxima(),
        old.entries().cloned().collect(),
        old.limits(),
        sim.now,
    );
    sim.daemons[1] = Gossip::new(restored, vec![id(0)], 99, GossipConfig::default());
    sim.run_until(100, |s| s.state_everywhere("x@h").iter().all(|x| *x == Some(State::Unconfirmed))).unwrap();
    // The node registers again: a new creation, up everywhere.
    let second = sim.register(1, "x@h");
    assert_ne!(first, second);
    sim.run_until(100, |s| {
        s.daemons.iter().all(|d| d.table().get(&NodeName::parse("x@h").unwrap()).is_some_and(|e| e.creation == second))
    })
    .unwrap();
    // Daemon 1 loses its data entirely (repair): it relearns x from peers as its own, unconfirmed.
    sim.daemons[1] = Gossip::new(Table::new(id(1), 3, TableLimits::default()), vec![id(0)], 5, GossipConfig::default());
    sim.run_until(100, |s| s.daemons[1].table().get(&NodeName::parse("x@h").unwrap()).is_some()).unwrap();
    let e = sim.daemons[1].table().get(&NodeName::parse("x@h").unwrap()).unwrap();
    assert_eq!((e.state, e.owner.as_str(), e.version.incarnation), (State::Unconfirmed, id(1).as_str(), 3));
}

#[test]
fn gossip_decoder_rejects_every_truncation() {
    let mut sim = Sim::new(2, TableLimits::default(), 1);
    sim.register(0, "a@h");
    let syn = sim.daemons[1].syn();
    let ack = sim.daemons[0].handle_syn(&syn).unwrap();
    let bytes = gossip::encode(&ack, sim.now);
    assert_eq!(gossip::decode(&bytes, sim.now).unwrap(), ack);
    for cut in 0..bytes.len() {
        assert!(gossip::decode(&bytes[..cut], sim.now).is_err(), "cut {cut}");
    }
}
