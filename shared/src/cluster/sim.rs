//! A simulated cluster that drives [`Global`] and [`Groups`] values the way a node runtime would:
//! nodes with processes, connections with per-direction FIFO queues and random delays, failure
//! detection that takes time on each side, partitions that cut pairs of nodes, node crashes and
//! restarts with a new creation. Every message crosses as bytes and is decoded with the
//! connection's negotiated flags. Alongside, an oracle records what the processes were told
//! (registrations accepted, names lost, groups joined), so tests can check the values against it.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use super::global::{Global, GlobalConfig, GlobalEvent, Notice};
use super::groups::{Change, GroupEvent, Groups};
use super::Transmit;
use crate::atom::Atom;
use crate::dist::control::{decode, tag, DecodeContext, GlobalEntry};
use crate::dist::Flags;
use crate::name::NodeName;
use crate::pid::{Pid, Ref};
use crate::term::Term;

/// Wall-clock milliseconds of simulated time 0; each step is 10 ms.
const WALL_START_MS: u64 = 1_700_000_000_000;
const STEP_MS: u64 = 10;

/// One simulated node and the processes on it.
pub(crate) struct SimNode {
    pub name: NodeName,
    pub creation: u32,
    pub alive: bool,
    pub flags: Flags,
    pub scopes: Vec<Atom>,
    pub global: Global,
    pub groups: Groups,
    /// Added to the simulated wall clock when this node stamps a registration.
    pub skew_ms: i64,
    next_id: u64,
    /// Live processes (watchers included).
    pub procs: BTreeSet<Pid>,
    /// The process subscribed to every scope this node runs, with its references.
    pub watcher: Option<(Pid, Vec<(Atom, Ref)>)>,
    global_watched: HashSet<Pid>,
    groups_watched: HashSet<Pid>,
}

/// A message on its way: when it arrives, and its bytes.
type InFlight = (u64, Vec<u8>);

/// A connection between two nodes (indexed by the lower node first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    /// No connection.
    Down,
    /// Connected both ways.
    Up,
    /// Cut or its node crashed: messages are lost, and each side still has to notice (`Some(at)`:
    /// its node_down is due at `at`; `None`: done, or that side is dead).
    Broken([Option<u64>; 2]),
}

/// The simulated cluster.
pub(crate) struct Sim {
    pub nodes: Vec<SimNode>,
    pub now: u64,
    rng: u64,
    /// Messages take 1..=max_delay steps.
    pub max_delay: u64,
    links: BTreeMap<(usize, usize), Link>,
    queues: BTreeMap<(usize, usize), VecDeque<InFlight>>,
    /// Pairs that may not connect.
    pub cut: BTreeSet<(usize, usize)>,
    /// Oracle: registrations accepted and not since unregistered, lost or ended by an exit.
    pub active: BTreeSet<(Pid, Term)>,
    /// Oracle: registrations accepted, and those whose loss was reported since.
    accepted: BTreeSet<(Pid, Term)>,
    told: BTreeSet<(Pid, Term)>,
    /// Oracle: group memberships accepted and not since left or ended by an exit.
    pub joined: BTreeSet<(Atom, Term, Pid)>,
    /// Every conflict notice delivered, per (loser, name).
    pub notices: BTreeMap<(Pid, Term), usize>,
    /// Per subscription, the membership its notifications describe, starting from its snapshot.
    pub replayed: BTreeMap<Ref, BTreeSet<(Term, Pid)>>,
    /// Messages delivered, per tag.
    pub delivered: BTreeMap<u8, usize>,
}

fn pair(i: usize, j: usize) -> (usize, usize) {
    (i.min(j), i.max(j))
}

impl Sim {
    /// `n` connected nodes `n0@h`..; every node runs scope `pg` and the even ones also `rooms`.
    pub fn new(n: usize, seed: u64, max_delay: u64) -> Sim {
        Sim::with_flags(vec![Flags::ALL; n], seed, max_delay)
    }

    /// Nodes with the given capability flags.
    pub fn with_flags(flags: Vec<Flags>, seed: u64, max_delay: u64) -> Sim {
        let nodes = flags
            .into_iter()
            .enumerate()
            .map(|(i, flags)| {
                let name = NodeName::parse(&format!("n{i}@h")).unwrap();
                let scopes = if i % 2 == 0 { vec![Atom::new("pg"), Atom::new("rooms")] } else { vec![Atom::new("pg")] };
                SimNode {
                    global: Global::new(name.clone(), 1, GlobalConfig::default()),
                    groups: Groups::new(name.clone(), 1),
                    name,
                    creation: 1,
                    alive: true,
                    flags,
                    scopes,
                    skew_ms: 0,
                    next_id: 1,
                    procs: BTreeSet::new(),
                    watcher: None,
                    global_watched: HashSet::new(),
                    groups_watched: HashSet::new(),
                }
            })
            .collect();
        let mut sim = Sim {
            nodes,
            now: 0,
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            max_delay: max_delay.max(1),
            links: BTreeMap::new(),
            queues: BTreeMap::new(),
            cut: BTreeSet::new(),
            active: BTreeSet::new(),
            accepted: BTreeSet::new(),
            told: BTreeSet::new(),
            joined: BTreeSet::new(),
            notices: BTreeMap::new(),
            replayed: BTreeMap::new(),
            delivered: BTreeMap::new(),
        };
        for i in 0..sim.nodes.len() {
            sim.start_node(i);
            for j in i + 1..sim.nodes.len() {
                sim.links.insert((i, j), Link::Down);
            }
        }
        sim.step();
        sim
    }

    fn random(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn delay(&mut self) -> u64 {
        1 + self.random() % self.max_delay
    }

    /// Starts the scopes and the subscriber of node `i` (a fresh start).
    fn start_node(&mut self, i: usize) {
        for scope in self.nodes[i].scopes.clone() {
            self.nodes[i].groups.add_scope(scope);
        }
        let watcher = self.spawn(i);
        let mut refs = Vec::new();
        for scope in self.nodes[i].scopes.clone() {
            let node = &mut self.nodes[i];
            let reference = Ref::new(node.name.clone(), node.next_id, node.creation);
            node.next_id += 1;
            let now = node.groups.monitor_scope(&scope, watcher.clone(), reference.clone()).unwrap();
            let seen = now.into_iter().flat_map(|(g, pids)| pids.into_iter().map(move |p| (g.clone(), p))).collect();
            self.replayed.insert(reference.clone(), seen);
            refs.push((scope, reference));
        }
        self.nodes[i].watcher = Some((watcher, refs));
        self.drain(i);
    }

    /// A new process on node `i`.
    pub fn spawn(&mut self, i: usize) -> Pid {
        let node = &mut self.nodes[i];
        let pid = Pid::new(node.name.clone(), node.next_id, node.creation);
        node.next_id += 1;
        node.procs.insert(pid.clone());
        pid
    }

    /// The live processes of node `i` other than its subscriber.
    pub fn workers(&self, i: usize) -> Vec<Pid> {
        let watcher = self.nodes[i].watcher.as_ref().map(|(p, _)| p);
        self.nodes[i].procs.iter().filter(|p| Some(*p) != watcher).cloned().collect()
    }

    /// The wall clock of node `i` now.
    pub fn wall_ms(&self, i: usize) -> u64 {
        (WALL_START_MS + self.now * STEP_MS).saturating_add_signed(self.nodes[i].skew_ms)
    }

    pub fn register(&mut self, i: usize, pid: &Pid, name: &Term) -> bool {
        let wall = self.wall_ms(i);
        let ok = self.nodes[i].global.register_name(name.clone(), pid.clone(), wall).is_ok();
        if ok {
            self.accepted(pid, name);
        }
        self.drain(i);
        ok
    }

    pub fn re_register(&mut self, i: usize, pid: &Pid, name: &Term) -> bool {
        let wall = self.wall_ms(i);
        let ok = self.nodes[i].global.re_register_name(name.clone(), pid.clone(), wall).is_ok();
        if ok {
            self.accepted(pid, name);
        }
        self.drain(i);
        ok
    }

    fn accepted(&mut self, pid: &Pid, name: &Term) {
        let key = (pid.clone(), name.clone());
        self.told.remove(&key);
        self.accepted.insert(key.clone());
        self.active.insert(key);
    }

    pub fn unregister(&mut self, i: usize, name: &Term) -> bool {
        let holder = self.nodes[i].global.whereis_name(name).cloned();
        let ok = self.nodes[i].global.unregister_name(name).is_ok();
        if let (true, Some(holder)) = (ok, holder) {
            self.active.remove(&(holder, name.clone()));
        }
        self.drain(i);
        ok
    }

    pub fn join(&mut self, i: usize, scope: &Atom, group: &Term, pid: &Pid) -> bool {
        let ok = self.nodes[i].groups.join(scope, group.clone(), std::slice::from_ref(pid)).is_ok();
        if ok {
            self.joined.insert((scope.clone(), group.clone(), pid.clone()));
        }
        self.drain(i);
        ok
    }

    pub fn leave(&mut self, i: usize, scope: &Atom, group: &Term, pid: &Pid) -> bool {
        let ok = self.nodes[i].groups.leave(scope, group, std::slice::from_ref(pid)).is_ok();
        if ok {
            self.joined.remove(&(scope.clone(), group.clone(), pid.clone()));
        }
        self.drain(i);
        ok
    }

    /// Process `pid` of node `i` exits; the values hear of it through the watches they asked for.
    pub fn exit(&mut self, i: usize, pid: &Pid) {
        self.kill(i, pid);
        self.drain(i);
    }

    fn kill(&mut self, i: usize, pid: &Pid) {
        let node = &mut self.nodes[i];
        if !node.procs.remove(pid) {
            return;
        }
        if node.global_watched.remove(pid) {
            node.global.process_exited(pid);
        }
        if node.groups_watched.remove(pid) {
            node.groups.process_exited(pid);
        }
        self.forget_process(pid);
    }

    fn forget_process(&mut self, pid: &Pid) {
        self.active.retain(|(p, _)| p != pid);
        self.joined.retain(|(_, _, p)| p != pid);
    }

    /// Cuts the connection between `i` and `j` and keeps them apart until [`Sim::heal`].
    pub fn cut(&mut self, i: usize, j: usize) {
        if i == j {
            return;
        }
        self.cut.insert(pair(i, j));
        self.break_link(i, j);
    }

    pub fn heal(&mut self, i: usize, j: usize) {
        self.cut.remove(&pair(i, j));
    }

    /// Splits the nodes into two sides.
    pub fn partition(&mut self, side: &[usize]) {
        for i in 0..self.nodes.len() {
            for j in 0..self.nodes.len() {
                if side.contains(&i) && !side.contains(&j) {
                    self.cut(i, j);
                }
            }
        }
    }

    pub fn heal_all(&mut self) {
        self.cut.clear();
    }

    fn break_link(&mut self, i: usize, j: usize) {
        let key = pair(i, j);
        let due = |sim: &mut Sim, side: usize| sim.nodes[side].alive.then(|| sim.now + sim.delay());
        let state = match self.links[&key] {
            Link::Up => Link::Broken([due(self, key.0), due(self, key.1)]),
            other => other,
        };
        self.links.insert(key, state);
        self.queues.remove(&(i, j));
        self.queues.remove(&(j, i));
    }

    /// Node `i` crashes: its processes are gone, its peers notice after a delay.
    pub fn crash(&mut self, i: usize) {
        if !self.nodes[i].alive {
            return;
        }
        self.nodes[i].alive = false;
        for pid in std::mem::take(&mut self.nodes[i].procs) {
            self.forget_process(&pid);
        }
        self.nodes[i].watcher = None;
        for j in 0..self.nodes.len() {
            if j != i {
                self.break_link(i, j);
                if let Some(Link::Broken(due)) = self.links.get_mut(&pair(i, j)) {
                    due[usize::from(i > j)] = None;
                }
            }
        }
    }

    /// Node `i` starts again with the next creation and empty state.
    pub fn restart(&mut self, i: usize) {
        if self.nodes[i].alive {
            return;
        }
        let node = &mut self.nodes[i];
        node.alive = true;
        node.creation += 1;
        node.global = Global::new(node.name.clone(), node.creation, GlobalConfig::default());
        node.groups = Groups::new(node.name.clone(), node.creation);
        node.global_watched.clear();
        node.groups_watched.clear();
        self.start_node(i);
    }

    /// One step of simulated time: failure detection, reconnection, delivery.
    pub fn step(&mut self) {
        self.now += 1;
        let now = self.now;
        for (&(a, b), link) in self.links.clone().iter() {
            match *link {
                Link::Broken(mut due) => {
                    for (side, other, slot) in [(a, b, 0), (b, a, 1)] {
                        if due[slot].is_some_and(|at| at <= now) {
                            due[slot] = None;
                            let peer = self.nodes[other].name.clone();
                            self.nodes[side].global.node_down(&peer);
                            self.nodes[side].groups.node_down(&peer);
                            self.drain(side);
                        }
                    }
                    let next = if due == [None, None] { Link::Down } else { Link::Broken(due) };
                    self.links.insert((a, b), next);
                }
                Link::Down if self.nodes[a].alive && self.nodes[b].alive && !self.cut.contains(&(a, b)) => {
                    self.links.insert((a, b), Link::Up);
                    let flags = self.nodes[a].flags.intersect(self.nodes[b].flags);
                    for (side, other) in [(a, b), (b, a)] {
                        let (peer, creation) = (self.nodes[other].name.clone(), self.nodes[other].creation);
                        self.nodes[side].global.node_up(peer.clone(), creation, flags);
                        self.nodes[side].groups.node_up(peer, creation, flags);
                    }
                    self.drain(a);
                    self.drain(b);
                }
                _ => {}
            }
        }
        // Deliver what is due, interleaving the connections at random (each stays in order).
        loop {
            let due: Vec<(usize, usize)> = self
                .queues
                .iter()
                .filter(|(_, q)| q.front().is_some_and(|(at, _)| *at <= now))
                .map(|(k, _)| *k)
                .collect();
            if due.is_empty() {
                break;
            }
            let start = (self.random() % due.len() as u64) as usize;
            for &(from, to) in due[start..].iter().chain(&due[..start]) {
                let Some((_, bytes)) = self.queues.get_mut(&(from, to)).and_then(VecDeque::pop_front) else { continue };
                self.deliver(from, to, &bytes);
            }
        }
    }

    fn deliver(&mut self, from: usize, to: usize, bytes: &[u8]) {
        let flags = self.nodes[from].flags.intersect(self.nodes[to].flags);
        let message = decode(bytes, &DecodeContext::new(flags)).expect("a value sent a message its peer cannot decode");
        *self.delivered.entry(message.tag()).or_default() += 1;
        let sender = self.nodes[from].name.clone();
        let node = &mut self.nodes[to];
        let outcome = match message.tag() {
            tag::GLOBAL_REGISTER..=tag::GLOBAL_CONFLICT => node.global.handle_message(&sender, message),
            _ => node.groups.handle_message(&sender, message),
        };
        outcome.expect("a correct peer's message was refused");
        self.drain(to);
    }

    fn send(&mut self, from: usize, transmit: Transmit) {
        let bytes = transmit.message.to_bytes();
        for peer in &transmit.to {
            let to = self.nodes.iter().position(|n| &n.name == peer).expect("a message to an unknown node");
            let flags = self.nodes[from].flags.intersect(self.nodes[to].flags);
            if let Some(flag) = transmit.message.required_flag() {
                assert!(flags.contains(flag), "{} sent to {peer}, which lacks {flag:?}", transmit.message.name());
            }
            match self.links[&pair(from, to)] {
                Link::Up => {
                    let at = self.now + self.delay();
                    let queue = self.queues.entry((from, to)).or_default();
                    let at = queue.back().map_or(at, |(last, _)| at.max(*last));
                    queue.push_back((at, bytes.clone()));
                }
                Link::Broken(_) => {} // Lost with the connection.
                Link::Down => panic!("{} sent to {peer}, which it was never told is up", transmit.message.name()),
            }
        }
    }

    /// Moves node `i`'s messages to the network and acts on its events, as a driver would.
    pub fn drain(&mut self, i: usize) {
        loop {
            let mut progress = false;
            while let Some(transmit) = self.nodes[i].global.poll_transmit() {
                progress = true;
                self.send(i, transmit);
            }
            while let Some(transmit) = self.nodes[i].groups.poll_transmit() {
                progress = true;
                self.send(i, transmit);
            }
            while let Some(event) = self.nodes[i].global.poll_event() {
                progress = true;
                self.on_global_event(i, event);
            }
            while let Some(event) = self.nodes[i].groups.poll_event() {
                progress = true;
                self.on_group_event(i, event);
            }
            if !progress {
                return;
            }
        }
    }

    fn on_global_event(&mut self, i: usize, event: GlobalEvent) {
        let node = &mut self.nodes[i];
        match event {
            GlobalEvent::Watch(pid) => {
                if node.procs.contains(&pid) {
                    node.global_watched.insert(pid);
                } else {
                    // A monitor on a dead process fires at once.
                    node.global.process_exited(&pid);
                }
            }
            GlobalEvent::Unwatch(pid) => {
                node.global_watched.remove(&pid);
            }
            GlobalEvent::NameLost(lost) => {
                // The process may have exited meanwhile (a conflict on another name killed it
                // while this event waited in the queue), but it must have registered the name and
                // not have been told already.
                let key = (lost.pid.clone(), lost.name.clone());
                assert!(
                    self.accepted.contains(&key),
                    "{} told it lost {}, which it never registered",
                    lost.pid,
                    lost.name
                );
                assert!(self.told.insert(key.clone()), "{} told twice that it lost {}", lost.pid, lost.name);
                self.active.remove(&key);
                if let Some(notice) = &lost.notice {
                    *self.notices.entry(key).or_default() += 1;
                    if matches!(notice, Notice::Exit(_)) {
                        self.kill(i, &lost.pid);
                    }
                }
            }
        }
    }

    fn on_group_event(&mut self, i: usize, event: GroupEvent) {
        let node = &mut self.nodes[i];
        match event {
            GroupEvent::Watch(pid) => {
                if node.procs.contains(&pid) {
                    node.groups_watched.insert(pid);
                } else {
                    node.groups.process_exited(&pid);
                }
            }
            GroupEvent::Unwatch(pid) => {
                node.groups_watched.remove(&pid);
            }
            GroupEvent::Notify(n) => {
                let seen = self.replayed.get_mut(&n.reference).expect("a notification for an unknown subscription");
                for pid in n.pids {
                    let fresh = seen.insert((n.group.clone(), pid.clone()));
                    match n.change {
                        Change::Join => assert!(fresh, "join of {pid} in {} told twice", n.group),
                        Change::Leave => {
                            seen.remove(&(n.group.clone(), pid.clone()));
                            assert!(!fresh, "leave of {pid} from {} that was never told joined", n.group);
                        }
                    }
                }
            }
        }
    }

    /// Whether every pair of live nodes is connected and no message is in flight.
    pub fn quiet(&self) -> bool {
        self.links.iter().all(|(&(a, b), link)| {
            let both_alive = self.nodes[a].alive && self.nodes[b].alive;
            !both_alive || *link == Link::Up
        }) && self.queues.values().all(VecDeque::is_empty)
    }

    /// Steps until `done` holds (checked before each step), at most `max`; the steps taken.
    pub fn run_until(&mut self, max: usize, done: impl Fn(&Sim) -> bool) -> Option<usize> {
        for steps in 0..=max {
            if done(self) {
                return Some(steps);
            }
            self.step();
        }
        None
    }

    /// Heals every partition, restarts crashed nodes and runs until the network is quiet.
    pub fn settle(&mut self) {
        self.heal_all();
        for i in 0..self.nodes.len() {
            self.restart(i);
        }
        self.run_until(10_000, Sim::quiet).expect("the network never went quiet");
    }

    /// Node `i`'s claims: name -> claims (winner first).
    pub fn claims(&self, i: usize) -> BTreeMap<Term, Vec<GlobalEntry>> {
        self.nodes[i].global.claims()
    }

    /// Node `i`'s members of `scope`, as (group, pid).
    pub fn members(&self, i: usize, scope: &Atom) -> BTreeSet<(Term, Pid)> {
        let groups = &self.nodes[i].groups;
        groups.which_groups(scope).flat_map(|g| groups.members(scope, g).map(move |p| (g.clone(), p.clone()))).collect()
    }

    /// The live nodes that negotiate `flag` with everyone.
    pub fn capable(&self, flag: Flags) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].alive && self.nodes[i].flags.contains(flag)).collect()
    }

    /// Whether every live capable node holds the same claims, one per name.
    pub fn registry_agrees(&self) -> bool {
        let nodes = self.capable(Flags::GLOBAL);
        let first = self.claims(nodes[0]);
        first.values().all(|claims| claims.len() == 1) && nodes.iter().all(|&i| self.claims(i) == first)
    }

    /// Whether every live capable node running each scope holds the same members.
    pub fn groups_agree(&self) -> bool {
        let nodes = self.capable(Flags::GROUPS);
        [Atom::new("pg"), Atom::new("rooms")].iter().all(|scope| {
            let running: Vec<usize> =
                nodes.iter().copied().filter(|&i| self.nodes[i].groups.has_scope(scope)).collect();
            running.iter().all(|&i| self.members(i, scope) == self.members(running[0], scope))
        })
    }

    /// Checks what must hold at every moment: a node's views hold only its own live processes and
    /// processes of the current start of nodes it is connected to (or has not yet noticed it lost).
    pub fn check_safe(&self) {
        for (i, node) in self.nodes.iter().enumerate().filter(|(_, n)| n.alive) {
            let may_hold = |pid: &Pid| -> bool {
                if pid.node() == &node.name {
                    return pid.creation() == node.creation && node.procs.contains(pid);
                }
                let Some(j) = self.nodes.iter().position(|n| n.name == *pid.node()) else { return false };
                match self.links[&pair(i, j)] {
                    Link::Up => pid.creation() == self.nodes[j].creation,
                    Link::Broken(due) => due[usize::from(i > j)].is_some(),
                    Link::Down => false,
                }
            };
            for (name, claims) in node.global.claims() {
                for claim in claims {
                    assert!(may_hold(&claim.pid), "node {i} holds a stale claim of {} on {name}", claim.pid);
                }
            }
            for scope in &node.scopes {
                for (group, pid) in self.members(i, scope) {
                    assert!(may_hold(&pid), "node {i} holds a stale member {pid} of {group} in {scope}");
                }
            }
        }
    }

    /// Checks the settled cluster against the oracle: registries identical everywhere with one
    /// claim per name, exactly the registrations the processes were left holding, each loser
    /// told once; group views identical and exactly the memberships the processes were left
    /// with; every subscriber's notifications add up to its node's view.
    pub fn check_settled(&self) {
        assert!(self.quiet());
        let nodes = self.capable(Flags::GLOBAL);
        let first = self.claims(nodes[0]);
        for &i in &nodes {
            assert_eq!(self.claims(i), first, "node {i}'s registry differs from node {}'s", nodes[0]);
        }
        let held: BTreeSet<(Pid, Term)> = first
            .iter()
            .map(|(name, claims)| {
                assert_eq!(claims.len(), 1, "{name} still has {} claims", claims.len());
                (claims[0].pid.clone(), name.clone())
            })
            .collect();
        assert_eq!(held, self.active, "registries and what the processes were told differ");
        for (pid, _) in &held {
            let home = self.nodes.iter().find(|n| n.name == *pid.node()).unwrap();
            assert!(home.procs.contains(pid), "{pid} is registered but dead");
        }
        for ((pid, name), count) in &self.notices {
            assert_eq!(*count, 1, "{pid} was told {count} times that it lost {name}");
        }
        for scope in [Atom::new("pg"), Atom::new("rooms")] {
            let expected: BTreeSet<(Term, Pid)> =
                self.joined.iter().filter(|(s, _, _)| *s == scope).map(|(_, g, p)| (g.clone(), p.clone())).collect();
            for &i in &self.capable(Flags::GROUPS) {
                if self.nodes[i].groups.has_scope(&scope) {
                    assert_eq!(self.members(i, &scope), expected, "node {i}'s view of {scope} is wrong");
                }
            }
        }
        for node in self.nodes.iter().filter(|n| n.alive) {
            for (scope, reference) in node.watcher.iter().flat_map(|(_, refs)| refs) {
                let i = self.nodes.iter().position(|n| n.name == node.name).unwrap();
                assert_eq!(
                    self.replayed[reference],
                    self.members(i, scope),
                    "notifications of {reference} do not add up"
                );
            }
        }
    }
}
