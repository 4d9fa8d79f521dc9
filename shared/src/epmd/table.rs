//! The node table of one snow-epmd daemon: owner-authoritative, versioned entries (DESIGN.md 4.7).
//!
//! Every entry is owned by the daemon its node registered with. Only the owner changes an entry,
//! and each change gets a new [`Version`] `(owner incarnation, counter)`; a daemon restart starts a
//! new incarnation, so its versions beat everything it said before. A node leaving becomes a
//! `Down` entry (the tombstone), gossiped like any change and removed after a TTL.
//!
//! Invariant used by gossip: for each owner the table remembers the highest version it has seen
//! (`owner_max`), and it holds every entry of that owner whose current version is at most that
//! (or has seen it superseded or collected). So an unknown entry at or below `owner_max` is known
//! to be dead, and deltas are "entries of owner O above version v" sent in version order.
//!
//! Time is a `u64` of milliseconds supplied by the caller; the table never reads a clock.

use std::collections::BTreeMap;
use std::num::NonZeroU32;

use crate::name::NodeName;

/// Identity of a daemon: its advertised `host:port`. Also used as the gossip peer address.
pub type DaemonId = String;

/// Version of an entry: `(owner incarnation, counter)`, compared in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Version {
    /// The owner's incarnation (bumped on every daemon start).
    pub incarnation: u64,
    /// Change counter within that incarnation.
    pub counter: u64,
}

/// State of an entry as shown by `snow-epmd list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// The node is registered and its registration connection is open.
    Up,
    /// The node left (tombstone); removed after the tombstone TTL.
    Down,
    /// Loaded after an owner restart; waits for the node to register again or the grace period.
    Unconfirmed,
}

impl State {
    /// Wire value.
    pub fn to_u8(self) -> u8 {
        match self {
            State::Up => 0,
            State::Down => 1,
            State::Unconfirmed => 2,
        }
    }
    /// From the wire value.
    pub fn from_u8(v: u8) -> Option<State> {
        match v {
            0 => Some(State::Up),
            1 => Some(State::Down),
            2 => Some(State::Unconfirmed),
            _ => None,
        }
    }
    /// Lowercase name, as `list` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Up => "up",
            State::Down => "down",
            State::Unconfirmed => "unconfirmed",
        }
    }
    /// Up or unconfirmed: the name is taken.
    pub fn is_live(self) -> bool {
        self != State::Down
    }
}

/// One node's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Full node name.
    pub name: NodeName,
    /// Address to connect to (the name's host, without IPv6 brackets).
    pub host: String,
    /// Distribution port.
    pub port: u16,
    /// Creation of this registration (nonzero). New on every registration, except when a node
    /// registering again asks for the creation it already has (see [`Table::register_requesting`]).
    pub creation: u32,
    /// EPMD node type (77 normal, 72 hidden).
    pub node_type: u8,
    /// Highest distribution version (EPMD field).
    pub high_version: u16,
    /// Lowest distribution version (EPMD field).
    pub low_version: u16,
    /// Extra bytes from ALIVE2_REQ.
    pub extra: Vec<u8>,
    /// Up, down or unconfirmed.
    pub state: State,
    /// The owning daemon.
    pub owner: DaemonId,
    /// Version under the owner.
    pub version: Version,
    /// Local time (ms) of the last change, for `age` and the grace/TTL timers.
    pub changed_at: u64,
}

/// A new registration, as the daemon builds it from ALIVE2_REQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Full node name.
    pub name: NodeName,
    /// Distribution port.
    pub port: u16,
    /// EPMD node type.
    pub node_type: u8,
    /// Highest distribution version.
    pub high_version: u16,
    /// Lowest distribution version.
    pub low_version: u16,
    /// Extra bytes.
    pub extra: Vec<u8>,
}

/// Limits and timers of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableLimits {
    /// Most entries (any owner, any state) the table holds; new registrations beyond are refused.
    pub max_entries: usize,
    /// How long a restarted owner keeps its old entries `unconfirmed` (ms).
    pub grace_ms: u64,
    /// How long a `Down` entry stays before it is collected (ms).
    pub tombstone_ttl_ms: u64,
}

impl Default for TableLimits {
    fn default() -> TableLimits {
        TableLimits { max_entries: 16_384, grace_ms: 30_000, tombstone_ttl_ms: 3_600_000 }
    }
}

/// Why a registration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// The name is registered and live (here or at another daemon).
    #[error("node name {0} is already registered and alive")]
    AlreadyRegistered(NodeName),
    /// The table is full.
    #[error("the table is full ({0} entries); raise --max-entries or wait for tombstones to expire")]
    TableFull(usize),
}

/// A change the driver must persist (sled) before acknowledging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Store or replace this entry.
    Put(Entry),
    /// Delete this entry.
    Remove(NodeName),
    /// The table's own metadata (incarnation, counter, owner maxima) changed.
    Meta,
}

/// What happened to one entry received by gossip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// New information, stored.
    Stored,
    /// Old or already known information, ignored.
    Stale,
    /// Refused: the reason is logged by the driver.
    Rejected(&'static str),
}

/// Key of the entry map: a node name, ordered by its canonical text, so that the map can be
/// searched by `&NodeName` or by `&str` (the orders agree: `NodeName` orders by that text).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key(NodeName);

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Key) -> std::cmp::Ordering {
        self.0.as_str().cmp(other.0.as_str())
    }
}

impl std::borrow::Borrow<str> for Key {
    fn borrow(&self) -> &str {
        self.0.as_str()
    }
}

impl std::borrow::Borrow<NodeName> for Key {
    fn borrow(&self) -> &NodeName {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct OwnerState {
    max: Version,
    live_hash: u64,
}

/// The table of one daemon.
#[derive(Debug, Clone)]
pub struct Table {
    me: DaemonId,
    incarnation: u64,
    counter: u64,
    limits: TableLimits,
    entries: BTreeMap<Key, Entry>,
    by_owner: BTreeMap<(DaemonId, Version), NodeName>,
    owners: BTreeMap<DaemonId, OwnerState>,
    changes: Vec<Change>,
}

impl Table {
    /// An empty table for daemon `me` at `incarnation` (1 for a fresh data directory).
    pub fn new(me: DaemonId, incarnation: u64, limits: TableLimits) -> Table {
        let mut t = Table {
            me,
            incarnation,
            counter: 0,
            limits,
            entries: BTreeMap::new(),
            by_owner: BTreeMap::new(),
            owners: BTreeMap::new(),
            changes: Vec::new(),
        };
        t.owners.insert(t.me.clone(), OwnerState { max: t.own_version(), live_hash: 0 });
        t
    }

    /// Rebuilds a table from persisted state after a restart (clean or not): starts incarnation
    /// `previous_incarnation + 1`, and marks every live entry owned by this daemon `Unconfirmed`
    /// (re-versioned, so peers learn it) until its node registers again or the grace period ends.
    pub fn restore(
        me: DaemonId,
        previous_incarnation: u64,
        owner_maxima: Vec<(DaemonId, Version)>,
        entries: Vec<Entry>,
        limits: TableLimits,
        now: u64,
    ) -> Table {
        let mut t = Table::new(me, previous_incarnation + 1, limits);
        for (owner, max) in owner_maxima {
            if owner != t.me {
                t.owners.entry(owner).or_default().max = max;
            }
        }
        for mut e in entries {
            if e.owner == t.me {
                if e.state.is_live() {
                    e.state = State::Unconfirmed;
                    e.changed_at = now;
                }
                e.version = t.bump();
            }
            t.owner_mut(&e.owner).max = t.owner_mut(&e.owner).max.max(e.version);
            t.put(e);
        }
        t.changes.push(Change::Meta);
        t
    }

    /// This daemon's id.
    pub fn me(&self) -> &str {
        &self.me
    }
    /// Current incarnation.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }
    /// The limits in force.
    pub fn limits(&self) -> TableLimits {
        self.limits
    }
    /// Number of entries (all states).
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    /// True if there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// One entry.
    pub fn get(&self, name: &NodeName) -> Option<&Entry> {
        self.entries.get(name)
    }
    /// One entry by the canonical text of its name (`name@host` as [`NodeName::as_str`] gives
    /// it), without building a [`NodeName`]: the daemon's lookup path neither allocates nor
    /// interns the names that clients ask for. Non-canonical spellings are not found.
    pub fn get_by_str(&self, full: &str) -> Option<&Entry> {
        self.entries.get(full)
    }
    /// All entries in name order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }
    /// Every daemon this table has heard of (owners), including itself.
    pub fn daemons(&self) -> impl Iterator<Item = &DaemonId> {
        self.owners.keys()
    }
    /// Highest version seen per owner, for persistence.
    pub fn owner_maxima(&self) -> Vec<(DaemonId, Version)> {
        self.owners.iter().map(|(o, s)| (o.clone(), s.max)).collect()
    }
    /// Current own counter (persisted with the incarnation).
    pub fn counter(&self) -> u64 {
        self.counter
    }

    /// Takes the changes made since the last call; the driver persists them, in order.
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    fn own_version(&self) -> Version {
        Version { incarnation: self.incarnation, counter: self.counter }
    }

    fn bump(&mut self) -> Version {
        self.counter += 1;
        let v = self.own_version();
        let me = self.me.clone();
        self.owner_mut(&me).max = v;
        v
    }

    fn owner_mut(&mut self, owner: &str) -> &mut OwnerState {
        self.owners.entry(owner.to_owned()).or_default()
    }

    fn put(&mut self, entry: Entry) {
        self.remove_quiet(&entry.name);
        let key = (entry.owner.clone(), entry.version);
        self.by_owner.insert(key, entry.name.clone());
        if entry.state.is_live() {
            self.owner_mut(&entry.owner).live_hash ^= live_hash(&entry.name, entry.version);
        }
        self.changes.push(Change::Put(entry.clone()));
        self.entries.insert(Key(entry.name.clone()), entry);
    }

    fn remove_quiet(&mut self, name: &NodeName) -> Option<Entry> {
        let old = self.entries.remove(name)?;
        self.by_owner.remove(&(old.owner.clone(), old.version));
        if old.state.is_live() {
            self.owner_mut(&old.owner).live_hash ^= live_hash(&old.name, old.version);
        }
        Some(old)
    }

    fn remove(&mut self, name: &NodeName) {
        if self.remove_quiet(name).is_some() {
            self.changes.push(Change::Remove(name.clone()));
        }
    }

    /// Registers a node at this daemon. `fresh_creation` is a random nonzero value used when the
    /// name was never seen; otherwise the creation is the previous one plus one (never 0), so each
    /// registration of a name gets a new creation (DESIGN.md 4.1).
    pub fn register(&mut self, reg: Registration, fresh_creation: u32, now: u64) -> Result<Entry, RegisterError> {
        self.register_requesting(reg, None, fresh_creation, now)
    }

    /// [`Table::register`] for a client that asks for `requested` (a running node registering
    /// again after this daemon dropped its registration, e.g. by restarting: its pids carry that
    /// creation, so the table should advertise it). The request is honoured only where it cannot
    /// clash with another start of the node:
    /// - the name is unknown here (this daemon lost its state), or
    /// - the entry is owned by this daemon, not up (`unconfirmed` after a restart, or `down`), and
    ///   has exactly that creation (the same node coming back).
    ///
    /// Otherwise it is ignored and the creation is assigned as by [`Table::register`]; a live
    /// duplicate is refused either way. Callers compare the returned creation with the request.
    pub fn register_requesting(
        &mut self,
        reg: Registration,
        requested: Option<NonZeroU32>,
        fresh_creation: u32,
        now: u64,
    ) -> Result<Entry, RegisterError> {
        let previous = self.entries.get(&reg.name);
        if let Some(prev) = previous {
            // An unconfirmed entry of ours is this node coming back after our restart.
            let ours_unconfirmed = prev.owner == self.me && prev.state == State::Unconfirmed;
            if prev.state.is_live() && !ours_unconfirmed {
                return Err(RegisterError::AlreadyRegistered(reg.name));
            }
        } else if self.entries.len() >= self.limits.max_entries {
            return Err(RegisterError::TableFull(self.limits.max_entries));
        }
        let creation = match (previous, requested.map(NonZeroU32::get)) {
            (None, Some(asked)) => asked,
            (Some(prev), Some(asked)) if prev.owner == self.me && prev.state != State::Up && prev.creation == asked => {
                asked
            }
            (Some(prev), _) => next_creation(prev.creation),
            (None, None) => fresh_creation.max(1),
        };
        let version = self.bump();
        let entry = Entry {
            host: reg.name.host_for_connect().to_owned(),
            name: reg.name,
            port: reg.port,
            creation,
            node_type: reg.node_type,
            high_version: reg.high_version,
            low_version: reg.low_version,
            extra: reg.extra,
            state: State::Up,
            owner: self.me.clone(),
            version,
            changed_at: now,
        };
        self.put(entry.clone());
        self.changes.push(Change::Meta);
        Ok(entry)
    }

    /// Marks a registration gone (its connection closed). Only acts if the entry is still the
    /// one with this `creation` and owned here; returns whether it changed anything.
    pub fn unregister(&mut self, name: &NodeName, creation: u32, now: u64) -> bool {
        let Some(e) = self.entries.get(name) else { return false };
        if e.owner != self.me || e.creation != creation || !e.state.is_live() {
            return false;
        }
        let mut e = e.clone();
        e.state = State::Down;
        e.version = self.bump();
        e.changed_at = now;
        self.put(e);
        self.changes.push(Change::Meta);
        true
    }

    /// Advances timers: own unconfirmed entries past the grace period become `Down`; `Down`
    /// entries past the tombstone TTL are removed.
    pub fn tick(&mut self, now: u64) {
        let expired_grace: Vec<NodeName> = self
            .entries
            .values()
            .filter(|e| e.owner == self.me && e.state == State::Unconfirmed)
            .filter(|e| now.saturating_sub(e.changed_at) >= self.limits.grace_ms)
            .map(|e| e.name.clone())
            .collect();
        for name in expired_grace {
            if let Some(mut e) = self.entries.get(&name).cloned() {
                e.state = State::Down;
                e.version = self.bump();
                e.changed_at = now;
                self.put(e);
                self.changes.push(Change::Meta);
            }
        }
        let ttl = self.limits.tombstone_ttl_ms;
        let collect: Vec<NodeName> = self
            .entries
            .values()
            .filter(|e| e.state == State::Down && now.saturating_sub(e.changed_at) >= ttl)
            .map(|e| e.name.clone())
            .collect();
        for name in collect {
            self.remove(&name);
        }
    }

    /// The next time (ms) [`Table::tick`] has something to do, if any.
    pub fn next_deadline(&self) -> Option<u64> {
        self.entries
            .values()
            .filter_map(|e| match e.state {
                State::Unconfirmed if e.owner == self.me => Some(e.changed_at + self.limits.grace_ms),
                State::Down => Some(e.changed_at + self.limits.tombstone_ttl_ms),
                _ => None,
            })
            .min()
    }

    /// Applies an entry received by gossip (`age_ms` = its age at the sender).
    pub fn apply_remote(&mut self, mut e: Entry, now: u64) -> Applied {
        if e.owner == self.me {
            return self.adopt_own(e, now);
        }
        if e.state == State::Down && e.changed_at.saturating_add(self.limits.tombstone_ttl_ms) <= now {
            return Applied::Stale;
        }
        let seen = self.owners.get(&e.owner).map(|s| s.max).unwrap_or_default();
        let outcome = match self.entries.get(&e.name) {
            None if e.version <= seen => Applied::Stale,
            None if self.entries.len() >= self.limits.max_entries => Applied::Rejected("table full"),
            None => Applied::Stored,
            Some(local) if local.owner == e.owner => {
                if e.version > local.version {
                    Applied::Stored
                } else {
                    Applied::Stale
                }
            }
            Some(local) if local.owner == self.me && local.state.is_live() => {
                Applied::Rejected("peer claims a live entry this daemon owns")
            }
            Some(local) if local.state.is_live() => Applied::Rejected("peer claims a live entry another daemon owns"),
            Some(_) => Applied::Stored,
        };
        if outcome == Applied::Stored {
            if e.changed_at > now {
                e.changed_at = now;
            }
            self.put(e.clone());
        }
        if !matches!(outcome, Applied::Rejected("table full")) && e.version > seen {
            self.owner_mut(&e.owner).max = e.version;
            self.changes.push(Change::Meta);
        }
        outcome
    }

    /// An entry that names this daemon as owner came back from a peer: accepted only from an
    /// older incarnation (we lost our data, e.g. `--repair`), and then taken over as unconfirmed.
    fn adopt_own(&mut self, mut e: Entry, now: u64) -> Applied {
        if e.version.incarnation >= self.incarnation {
            return Applied::Rejected("peer sent an entry in this daemon's name and incarnation");
        }
        if self.entries.get(&e.name).is_some_and(|l| l.owner == self.me) {
            return Applied::Stale;
        }
        if e.state == State::Down && e.changed_at.saturating_add(self.limits.tombstone_ttl_ms) <= now {
            return Applied::Stale;
        }
        if e.state.is_live() {
            e.state = State::Unconfirmed;
            e.changed_at = now;
        }
        e.version = self.bump();
        self.put(e);
        self.changes.push(Change::Meta);
        Applied::Stored
    }

    /// Per-owner summary for gossip digests: `(owner, max version, hash of its live entries)`.
    pub fn digest(&self) -> Vec<(DaemonId, Version, u64)> {
        self.owners.iter().map(|(o, s)| (o.clone(), s.max, s.live_hash)).collect()
    }

    /// Records that daemon `owner` exists (learned from a digest), without any entries yet.
    pub fn note_owner(&mut self, owner: &str) {
        if !self.owners.contains_key(owner) {
            self.owners.insert(owner.to_owned(), OwnerState::default());
            self.changes.push(Change::Meta);
        }
    }

    /// Highest version seen for `owner`.
    pub fn owner_max(&self, owner: &str) -> Option<Version> {
        self.owners.get(owner).map(|s| s.max)
    }

    /// Live-set hash for `owner`.
    pub fn owner_live_hash(&self, owner: &str) -> u64 {
        self.owners.get(owner).map(|s| s.live_hash).unwrap_or(0)
    }

    /// Entries of `owner` with a version above `after`, in version order.
    pub fn entries_after<'a>(&'a self, owner: &str, after: Version) -> impl Iterator<Item = &'a Entry> + 'a {
        let start =
            (owner.to_owned(), Version { incarnation: after.incarnation, counter: after.counter.saturating_add(1) });
        let end = (owner.to_owned(), Version { incarnation: u64::MAX, counter: u64::MAX });
        self.by_owner.range(start..=end).filter_map(|(_, name)| self.entries.get(name))
    }

    /// Names and versions of the live entries of `owner`.
    pub fn live_set(&self, owner: &str) -> Vec<(NodeName, Version)> {
        self.entries_after(owner, Version::default())
            .filter(|e| e.state.is_live())
            .map(|e| (e.name.clone(), e.version))
            .collect()
    }

    /// Reconciles with a peer's live set of `owner` at the same owner maximum: a live entry here
    /// at or below `their_max` that the peer does not hold live is dead (the peer saw it end and
    /// collected it), so it is removed. Never touches this daemon's own entries.
    pub fn apply_live_set(&mut self, owner: &str, their_max: Version, set: &[(NodeName, Version)]) -> usize {
        if owner == self.me {
            return 0;
        }
        let theirs: std::collections::BTreeSet<&NodeName> = set.iter().map(|(n, _)| n).collect();
        let dead: Vec<NodeName> = self
            .live_set(owner)
            .into_iter()
            .filter(|(n, v)| *v <= their_max && !theirs.contains(n))
            .map(|(n, _)| n)
            .collect();
        for n in &dead {
            self.remove(n);
        }
        dead.len()
    }
}

fn next_creation(previous: u32) -> u32 {
    match previous.wrapping_add(1) {
        0 => 1,
        c => c,
    }
}

/// Order-independent hash of one live entry (FNV-1a over the name and version), XOR-combined.
fn live_hash(name: &NodeName, v: Version) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.as_str().bytes().chain(v.incarnation.to_be_bytes()).chain(v.counter.to_be_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::epmd::sim::reg;

    fn limits() -> TableLimits {
        TableLimits { max_entries: 4, grace_ms: 1000, tombstone_ttl_ms: 5000 }
    }

    #[test]
    fn register_refuses_live_duplicates_and_gives_new_creations() {
        let mut t = Table::new("d1:1".into(), 1, limits());
        let e = t.register(reg("a@h"), 7, 0).unwrap();
        assert_eq!(e.creation, 7);
        assert!(matches!(t.register(reg("a@h"), 9, 1), Err(RegisterError::AlreadyRegistered(_))));
        assert!(!t.unregister(&e.name, 8, 2), "wrong creation must not unregister");
        assert!(t.unregister(&e.name, 7, 2));
        assert_eq!(t.get(&e.name).unwrap().state, State::Down);
        let again = t.register(reg("a@h"), 9, 3).unwrap();
        assert_eq!(again.creation, 8);
        assert!(again.version > e.version);
    }

    #[test]
    fn get_by_str_finds_canonical_names_only() {
        let mut t = Table::new("d1:1".into(), 1, limits());
        let e = t.register(reg("a@Host.Example"), 7, 0).unwrap();
        assert_eq!(e.name.as_str(), "a@host.example");
        assert_eq!(t.get_by_str("a@host.example"), Some(&e));
        assert_eq!(t.get_by_str("a@Host.Example"), None, "the caller canonicalises other spellings");
        assert_eq!(t.get_by_str("b@host.example"), None);
        t.register(reg("b@host.example"), 8, 0).unwrap();
        let names: Vec<&str> = t.entries().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a@host.example", "b@host.example"]);
    }

    #[test]
    fn creation_never_wraps_to_zero() {
        assert_eq!(next_creation(u32::MAX), 1);
    }

    #[test]
    fn table_full_is_refused() {
        let mut t = Table::new("d1:1".into(), 1, limits());
        for i in 0..4 {
            t.register(reg(&format!("n{i}@h")), 1, 0).unwrap();
        }
        assert_eq!(t.register(reg("n9@h"), 1, 0), Err(RegisterError::TableFull(4)));
    }

    #[test]
    fn restart_makes_own_entries_unconfirmed_then_down_then_gone() {
        let mut t = Table::new("d1:1".into(), 1, limits());
        t.register(reg("a@h"), 5, 0).unwrap();
        let entries: Vec<Entry> = t.entries().cloned().collect();
        let mut r = Table::restore("d1:1".into(), 1, t.owner_maxima(), entries, limits(), 100);
        assert_eq!(r.incarnation(), 2);
        let name = NodeName::parse("a@h").unwrap();
        assert_eq!(r.get(&name).unwrap().state, State::Unconfirmed);
        assert_eq!(r.get(&name).unwrap().version.incarnation, 2);
        r.tick(1099);
        assert_eq!(r.get(&name).unwrap().state, State::Unconfirmed);
        r.tick(1100);
        assert_eq!(r.get(&name).unwrap().state, State::Down);
        r.tick(6100);
        assert!(r.get(&name).is_none());
    }

    #[test]
    fn re_registration_confirms_an_unconfirmed_entry() {
        let mut t = Table::new("d1:1".into(), 1, limits());
        t.register(reg("a@h"), 5, 0).unwrap();
        let entries: Vec<Entry> = t.entries().cloned().collect();
        let mut r = Table::restore("d1:1".into(), 1, vec![], entries, limits(), 100);
        let e = r.register(reg("a@h"), 1, 200).unwrap();
        assert_eq!((e.state, e.creation), (State::Up, 6));
    }

    fn asked(c: u32) -> Option<NonZeroU32> {
        NonZeroU32::new(c)
    }

    /// A table at incarnation 2 of "d1:1" holding `a@h` (creation 5) unconfirmed, as after a
    /// daemon restart.
    fn restarted_with_a_at_5() -> Table {
        let mut t = Table::new("d1:1".into(), 1, limits());
        t.register(reg("a@h"), 5, 0).unwrap();
        let entries: Vec<Entry> = t.entries().cloned().collect();
        Table::restore("d1:1".into(), 1, vec![], entries, limits(), 100)
    }

    #[test]
    fn requested_creation_is_honoured_for_an_unknown_name() {
        let mut t = Table::new("d1:1".into(), 1, limits());
        let e = t.register_requesting(reg("a@h"), asked(42), 7, 0).unwrap();
        assert_eq!((e.state, e.creation), (State::Up, 42), "not the random fresh creation 7");
    }

    #[test]
    fn requested_creation_is_honoured_for_our_unconfirmed_entry_with_that_creation() {
        let mut r = restarted_with_a_at_5();
        let before = r.get(&NodeName::parse("a@h").unwrap()).unwrap().version;
        let e = r.register_requesting(reg("a@h"), asked(5), 99, 200).unwrap();
        assert_eq!((e.state, e.creation), (State::Up, 5));
        assert!(e.version > before, "the change is versioned so gossip carries it");
    }

    #[test]
    fn requested_creation_is_honoured_for_our_down_entry_with_that_creation() {
        let mut t = Table::new("d1:1".into(), 1, limits());
        let e = t.register(reg("a@h"), 5, 0).unwrap();
        assert!(t.unregister(&e.name, 5, 1));
        let again = t.register_requesting(reg("a@h"), asked(5), 99, 2).unwrap();
        assert_eq!((again.state, again.creation), (State::Up, 5));
    }

    #[test]
    fn requested_creation_other_than_the_entrys_is_ignored() {
        let mut r = restarted_with_a_at_5();
        let e = r.register_requesting(reg("a@h"), asked(9), 99, 200).unwrap();
        assert_eq!((e.state, e.creation), (State::Up, 6), "assigned as without a request");
        let mut t = Table::new("d1:1".into(), 1, limits());
        t.register(reg("b@h"), 5, 0).unwrap();
        t.unregister(&NodeName::parse("b@h").unwrap(), 5, 1);
        assert_eq!(t.register_requesting(reg("b@h"), asked(4), 99, 2).unwrap().creation, 6);
    }

    #[test]
    fn requested_creation_is_ignored_for_another_daemons_entry() {
        let mut a = Table::new("a:1".into(), 1, limits());
        let mut b = Table::new("b:1".into(), 1, limits());
        let e = a.register(reg("x@h"), 5, 0).unwrap();
        a.unregister(&e.name, 5, 1);
        assert_eq!(b.apply_remote(a.get(&e.name).unwrap().clone(), 1), Applied::Stored);
        // x@h left a's table down; registering it at b with a's old creation gets a new one.
        let got = b.register_requesting(reg("x@h"), asked(5), 99, 2).unwrap();
        assert_eq!((got.creation, got.owner.as_str()), (6, "b:1"));
    }

    #[test]
    fn requested_creation_never_lets_a_live_duplicate_in() {
        let mut t = Table::new("d1:1".into(), 1, limits());
        t.register(reg("a@h"), 5, 0).unwrap();
        assert!(matches!(t.register_requesting(reg("a@h"), asked(5), 99, 1), Err(RegisterError::AlreadyRegistered(_))));
        // Live at another daemon (up or unconfirmed there): refused as well.
        let mut other = Table::new("o:1".into(), 1, limits());
        let x = other.register(reg("x@h"), 3, 0).unwrap();
        t.apply_remote(x.clone(), 0);
        assert!(matches!(t.register_requesting(reg("x@h"), asked(3), 99, 1), Err(RegisterError::AlreadyRegistered(_))));
        let entries: Vec<Entry> = other.entries().cloned().collect();
        let restarted = Table::restore("o:1".into(), 1, vec![], entries, limits(), 5);
        let unconfirmed = restarted.get(&x.name).unwrap().clone();
        assert_eq!(t.apply_remote(unconfirmed, 5), Applied::Stored);
        assert!(matches!(t.register_requesting(reg("x@h"), asked(3), 99, 6), Err(RegisterError::AlreadyRegistered(_))));
    }

    #[test]
    fn requested_creation_does_not_bypass_the_table_limit() {
        let mut t = Table::new("d1:1".into(), 1, limits());
        for i in 0..4 {
            t.register(reg(&format!("n{i}@h")), 1, 0).unwrap();
        }
        assert_eq!(t.register_requesting(reg("n9@h"), asked(3), 1, 0), Err(RegisterError::TableFull(4)));
    }

    #[test]
    fn remote_entries_follow_versions_and_ownership() {
        let mut a = Table::new("a:1".into(), 1, limits());
        let mut b = Table::new("b:1".into(), 1, limits());
        let e = a.register(reg("x@h"), 3, 0).unwrap();
        assert_eq!(b.apply_remote(e.clone(), 0), Applied::Stored);
        assert_eq!(b.apply_remote(e.clone(), 0), Applied::Stale);
        // A forged entry in b's own name is refused; a claim on a live entry of another owner too.
        let mut forged = e.clone();
        forged.owner = "b:1".into();
        assert!(matches!(b.apply_remote(forged, 0), Applied::Rejected(_)));
        let mut takeover = e.clone();
        takeover.owner = "c:1".into();
        takeover.version = Version { incarnation: 9, counter: 9 };
        assert!(matches!(b.apply_remote(takeover, 0), Applied::Rejected(_)));
        assert_eq!(b.get(&e.name).unwrap().owner, "a:1");
        // Older versions lose.
        a.unregister(&e.name, 3, 1);
        let down = a.get(&e.name).unwrap().clone();
        assert_eq!(b.apply_remote(down.clone(), 1), Applied::Stored);
        assert_eq!(b.apply_remote(e, 1), Applied::Stale);
        assert_eq!(b.get(&down.name).unwrap().state, State::Down);
    }

    #[test]
    fn lost_data_is_adopted_from_peers_as_unconfirmed() {
        let mut a = Table::new("a:1".into(), 1, limits());
        let e = a.register(reg("x@h"), 3, 0).unwrap();
        let mut fresh = Table::new("a:1".into(), 2, limits());
        assert_eq!(fresh.apply_remote(e.clone(), 10), Applied::Stored);
        let got = fresh.get(&e.name).unwrap();
        assert_eq!((got.state, got.version.incarnation), (State::Unconfirmed, 2));
    }

    #[test]
    fn live_set_reconciliation_drops_entries_the_peer_saw_end() {
        let mut b = Table::new("b:1".into(), 1, limits());
        let mut a = Table::new("a:1".into(), 1, limits());
        let x = a.register(reg("x@h"), 3, 0).unwrap();
        b.apply_remote(x.clone(), 0);
        let y = a.register(reg("y@h"), 3, 0).unwrap();
        // c saw x end and collected it; c's max equals b's once b has y.
        b.apply_remote(y.clone(), 0);
        let their = vec![(y.name.clone(), y.version)];
        assert_eq!(b.apply_live_set("a:1", y.version, &their), 1);
        assert!(b.get(&x.name).is_none());
        assert!(b.get(&y.name).is_some());
    }
}
