//! The node table of one snow-epmd daemon: owner-authoritative, signed, versioned entries
//! (PROTOCOL.md 5.5, README "Security").
//!
//! Every entry is owned by the daemon its node registered with. Only the owner changes an entry,
//! and each change gets a new [`Version`] `(owner incarnation, counter)`; a daemon restart starts a
//! new incarnation, so its versions beat everything it said before. A node leaving becomes a
//! `Down` entry (the tombstone), gossiped like any change and removed after a TTL.
//!
//! Trust: a daemon speaks only for the host of its own id (`host:port`, the address other daemons
//! dial). It signs every entry it owns with its [`Identity`]; an entry from gossip is stored only
//! if its node's host is its owner's host, its owner's public key is pinned here (learned on an
//! exchange this daemon started with that owner at its id, see `gossip.rs`), its signature verifies
//! with that key, and its version is within [`MAX_COUNTER`] / [`MAX_INCARNATION_STEP`] of what
//! was seen. Remote entries have their own budget ([`TableLimits::max_remote_entries`]) and a quota
//! per owner, so they never crowd out this daemon's registrations, and the number of daemons known
//! is capped. Own registrations for a host this daemon does not speak for stay local: stored and
//! answered here, never gossiped (no version of their own, not in the owner index).
//!
//! Invariant used by gossip: for each owner the table remembers the highest version it has seen
//! (`owner_max`), and it holds every entry of that owner whose current version is at most that
//! (or has seen it superseded or collected). So an unknown entry at or below `owner_max` is known
//! to be dead, and deltas are "entries of owner O above version v" sent in version order.
//!
//! Time is a `u64` of milliseconds supplied by the caller; the table never reads a clock.

use std::collections::BTreeMap;
use std::num::NonZeroU32;

pub use super::entry::{daemon_host, speaks_for, DaemonId, Entry, Registration, State, Version};
use super::identity::{ed25519_verify, Identity, PublicKey, Verifier};
use crate::name::NodeName;

/// Highest change counter accepted in a remote entry (an honest daemon making a million changes
/// a second needs nine years to reach it), so a version cannot be pushed to `u64::MAX`.
pub const MAX_COUNTER: u64 = 1 << 48;
/// Most incarnations (daemon restarts) a remote owner may advance past the highest version seen
/// from it in one step.
pub const MAX_INCARNATION_STEP: u64 = 1 << 20;
/// Highest incarnation accepted from an owner not seen before.
pub const MAX_FIRST_INCARNATION: u64 = 1 << 40;

/// Limits and timers of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableLimits {
    /// Most entries (any state) owned by this daemon: its own registrations. Remote entries
    /// never count against it.
    pub max_entries: usize,
    /// Most entries learned from other daemons, all owners together.
    pub max_remote_entries: usize,
    /// Most entries of any one other daemon.
    pub max_entries_per_daemon: usize,
    /// Most daemons known (owners, gossip targets), this one included.
    pub max_daemons: usize,
    /// How long a restarted owner keeps its old entries `unconfirmed` (ms).
    pub grace_ms: u64,
    /// How long a `Down` entry stays before it is collected (ms).
    pub tombstone_ttl_ms: u64,
}

impl Default for TableLimits {
    fn default() -> TableLimits {
        TableLimits {
            max_entries: 16_384,
            max_remote_entries: 65_536,
            max_entries_per_daemon: 16_384,
            max_daemons: 1_024,
            grace_ms: 30_000,
            tombstone_ttl_ms: 3_600_000,
        }
    }
}

/// Why a registration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// The name is registered and live (here or at another daemon).
    #[error("node name {0} is already registered and alive")]
    AlreadyRegistered(NodeName),
    /// This daemon's own budget is full.
    #[error(
        "this daemon holds {0} registrations (live or down); raise --max-entries or wait for tombstones to expire"
    )]
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
    /// A daemon's public key was pinned (persist it: trust on first use).
    Pin(DaemonId, PublicKey),
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

/// What [`Table::pin`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinOutcome {
    /// First contact: the key is pinned now.
    Pinned,
    /// The same key was pinned already.
    Known,
    /// Another key is pinned for this daemon id; nothing changed.
    Mismatch,
    /// The daemon is unknown and [`TableLimits::max_daemons`] are known already.
    NoRoom,
}

/// What the table remembers across restarts (the store loads it).
#[derive(Debug, Clone, Default)]
pub struct Persisted {
    /// Incarnation of the previous run (0 for a fresh data directory).
    pub incarnation: u64,
    /// Highest version seen per owner.
    pub owners: Vec<(DaemonId, Version)>,
    /// Pinned public keys.
    pub pins: Vec<(DaemonId, PublicKey)>,
    /// All stored entries.
    pub entries: Vec<Entry>,
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
    /// Pinned public key (None: not contacted directly yet; its entries are refused).
    key: Option<PublicKey>,
    /// Entries held of this owner.
    entries: usize,
}

/// The table of one daemon.
#[derive(Debug, Clone)]
pub struct Table {
    me: DaemonId,
    identity: Identity,
    verifier: Verifier,
    incarnation: u64,
    counter: u64,
    limits: TableLimits,
    entries: BTreeMap<Key, Entry>,
    by_owner: BTreeMap<(DaemonId, Version), NodeName>,
    owners: BTreeMap<DaemonId, OwnerState>,
    changes: Vec<Change>,
}

impl Table {
    /// An empty table for daemon `me` signing with `identity`, at `incarnation` (1 for a fresh
    /// data directory).
    pub fn new(me: DaemonId, identity: Identity, incarnation: u64, limits: TableLimits) -> Table {
        let mut t = Table {
            me,
            identity,
            verifier: ed25519_verify,
            incarnation,
            counter: 0,
            limits,
            entries: BTreeMap::new(),
            by_owner: BTreeMap::new(),
            owners: BTreeMap::new(),
            changes: Vec::new(),
        };
        let own = OwnerState { max: t.own_version(), key: Some(*t.identity.public_key()), ..OwnerState::default() };
        t.owners.insert(t.me.clone(), own);
        t
    }

    /// Rebuilds a table from persisted state after a restart (clean or not): starts incarnation
    /// `previous_incarnation + 1`, and marks every live entry owned by this daemon `Unconfirmed`
    /// (re-versioned and re-signed, so peers learn it) until its node registers again or the grace
    /// period ends. Pinned keys come back as they were.
    pub fn restore(me: DaemonId, identity: Identity, persisted: Persisted, limits: TableLimits, now: u64) -> Table {
        let mut t = Table::new(me, identity, persisted.incarnation + 1, limits);
        for (owner, key) in persisted.pins {
            if owner != t.me {
                t.owners.entry(owner).or_default().key = Some(key);
            }
        }
        for (owner, max) in persisted.owners {
            if owner != t.me {
                t.owners.entry(owner).or_default().max = max;
            }
        }
        for mut e in persisted.entries {
            if e.owner == t.me {
                if e.state.is_live() {
                    e.state = State::Unconfirmed;
                    e.changed_at = now;
                }
                e.version = t.version_for(&e.host);
            }
            let max = t.owner_mut(&e.owner).max.max(e.version);
            t.owner_mut(&e.owner).max = max;
            t.put(e);
        }
        t.changes.push(Change::Meta);
        t
    }

    /// Replaces the signature check (the simulation of 1,000 daemons uses a cheaper one).
    pub fn set_verifier(&mut self, verifier: Verifier) {
        self.verifier = verifier;
    }

    /// The signature check in use.
    pub fn verifier(&self) -> Verifier {
        self.verifier
    }

    /// This daemon's id.
    pub fn me(&self) -> &str {
        &self.me
    }
    /// This daemon's public key.
    pub fn public_key(&self) -> &PublicKey {
        self.identity.public_key()
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
    /// Entries owned by this daemon (its registrations, any state).
    pub fn own_len(&self) -> usize {
        self.owners.get(&self.me).map_or(0, |o| o.entries)
    }
    /// Entries learned from other daemons.
    pub fn remote_len(&self) -> usize {
        self.entries.len() - self.own_len()
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
    /// The pinned public key of `daemon`, if this daemon contacted it already.
    pub fn pinned_key(&self, daemon: &str) -> Option<&PublicKey> {
        self.owners.get(daemon).and_then(|o| o.key.as_ref())
    }
    /// How many other daemons are pinned.
    pub fn pinned_count(&self) -> usize {
        self.owners.iter().filter(|(o, s)| **o != self.me && s.key.is_some()).count()
    }

    /// Every pinned key, this daemon's own excepted (for persistence).
    pub fn pins(&self) -> Vec<(DaemonId, PublicKey)> {
        self.owners.iter().filter(|(o, _)| **o != self.me).filter_map(|(o, s)| Some((o.clone(), s.key?))).collect()
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

    /// The version of an own change for a node on `host`: a new one if it is gossiped, else the
    /// current one (a local-only entry has no version of its own, so peers never wait for it).
    fn version_for(&mut self, host: &str) -> Version {
        if speaks_for(&self.me, host) {
            self.bump()
        } else {
            self.own_version()
        }
    }

    /// Whether `e` takes part in gossip: everything of other owners, and own entries for the host
    /// this daemon speaks for.
    fn exported(&self, e: &Entry) -> bool {
        e.owner != self.me || speaks_for(&self.me, &e.host)
    }

    fn owner_mut(&mut self, owner: &str) -> &mut OwnerState {
        self.owners.entry(owner.to_owned()).or_default()
    }

    fn put(&mut self, mut entry: Entry) {
        self.remove_quiet(&entry.name);
        if entry.owner == self.me {
            entry.signature = self.identity.sign(&entry.signed_payload());
        }
        if self.exported(&entry) {
            let key = (entry.owner.clone(), entry.version);
            self.by_owner.insert(key, entry.name.clone());
            if entry.state.is_live() {
                self.owner_mut(&entry.owner).live_hash ^= live_hash(&entry.name, entry.version);
            }
        }
        self.owner_mut(&entry.owner).entries += 1;
        self.changes.push(Change::Put(entry.clone()));
        self.entries.insert(Key(entry.name.clone()), entry);
    }

    fn remove_quiet(&mut self, name: &NodeName) -> Option<Entry> {
        let old = self.entries.remove(name)?;
        if self.exported(&old) {
            self.by_owner.remove(&(old.owner.clone(), old.version));
            if old.state.is_live() {
                self.owner_mut(&old.owner).live_hash ^= live_hash(&old.name, old.version);
            }
        }
        let owner = self.owner_mut(&old.owner);
        owner.entries = owner.entries.saturating_sub(1);
        Some(old)
    }

    fn remove(&mut self, name: &NodeName) {
        if self.remove_quiet(name).is_some() {
            self.changes.push(Change::Remove(name.clone()));
        }
    }

    /// Registers a node at this daemon. `fresh_creation` is a random nonzero value used when the
    /// name was never seen; otherwise the creation is the previous one plus one (never 0), so each
    /// registration of a name gets a new creation (README "Guarantees and limits").
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
        }
        let adds_own = !previous.is_some_and(|p| p.owner == self.me);
        if adds_own && self.own_len() >= self.limits.max_entries {
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
        let version = self.version_for(reg.name.host_for_connect());
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
            signature: [0; 64],
        };
        let name = entry.name.clone();
        self.put(entry);
        self.changes.push(Change::Meta);
        Ok(self.entries.get(&name).cloned().unwrap_or_else(|| unreachable!("just stored")))
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
        e.version = self.version_for(&e.host);
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
                e.version = self.version_for(&e.host);
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

    /// Applies an entry received by gossip (`age_ms` = its age at the sender). Checks, in order:
    /// the entry names its owner's host; its version is within bounds of what was seen from that
    /// owner; it is newer than what is held; the owner's key is pinned and the signature
    /// verifies; no live entry of another owner holds the name; the owner's quota and the remote
    /// budget have room. A refusal before the signature check leaves the owner's maximum alone,
    /// so a forged version cannot hide the owner's real updates.
    pub fn apply_remote(&mut self, mut e: Entry, now: u64) -> Applied {
        if e.owner == self.me {
            return self.adopt_own(e, now);
        }
        if e.host != e.name.host_for_connect() || !speaks_for(&e.owner, &e.host) {
            return Applied::Rejected("entry for a host its owning daemon does not speak for");
        }
        let seen = self.owners.get(&e.owner).map(|s| s.max);
        if !version_within_bounds(seen, e.version) {
            return Applied::Rejected("entry version jumps past the bound");
        }
        let seen = seen.unwrap_or_default();
        if e.state == State::Down && e.changed_at.saturating_add(self.limits.tombstone_ttl_ms) <= now {
            return Applied::Stale;
        }
        let local = self.entries.get(&e.name);
        match local {
            None if e.version <= seen => return Applied::Stale,
            Some(local) if local.owner == e.owner && e.version <= local.version => return Applied::Stale,
            _ => {}
        }
        let Some(key) = self.owners.get(&e.owner).and_then(|o| o.key) else {
            return Applied::Rejected("its owning daemon is not pinned here yet (no exchange with it at its id)");
        };
        if !(self.verifier)(&key, &e.signed_payload(), &e.signature) {
            return Applied::Rejected("signature does not verify with the owning daemon's pinned key");
        }
        let outcome = match local {
            Some(local) if local.owner == e.owner => Applied::Stored,
            Some(local) if local.owner == self.me && local.state.is_live() => {
                Applied::Rejected("peer claims a live entry this daemon owns")
            }
            Some(local) if local.state.is_live() => Applied::Rejected("peer claims a live entry another daemon owns"),
            _ if self.owners.get(&e.owner).map_or(0, |o| o.entries) >= self.limits.max_entries_per_daemon => {
                return Applied::Rejected("its owning daemon's quota of entries is full (--max-entries-per-daemon)");
            }
            Some(local) if local.owner == self.me => Applied::Stored,
            _ if self.remote_len() >= self.limits.max_remote_entries => {
                return Applied::Rejected("the budget for other daemons' entries is full (--max-remote-entries)");
            }
            _ => Applied::Stored,
        };
        if outcome == Applied::Stored {
            if e.changed_at > now {
                e.changed_at = now;
            }
            self.put(e.clone());
        }
        if e.version > seen {
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
        if !(self.verifier)(self.identity.public_key(), &e.signed_payload(), &e.signature) {
            return Applied::Rejected("entry in this daemon's name without this daemon's signature");
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
        e.version = self.version_for(&e.host);
        self.put(e);
        self.changes.push(Change::Meta);
        Applied::Stored
    }

    /// Per-owner summary for gossip digests: `(owner, max version, hash of its live entries)`.
    pub fn digest(&self) -> Vec<(DaemonId, Version, u64)> {
        // Every owner, pinned or not; gossip filters.
        self.owners.iter().map(|(o, s)| (o.clone(), s.max, s.live_hash)).collect()
    }

    /// Records that daemon `owner` exists (learned from a digest or a message), without any
    /// entries or key yet. Returns false (and records nothing) when [`TableLimits::max_daemons`]
    /// daemons are known already, or `owner` is not a `host:port` id.
    pub fn note_owner(&mut self, owner: &str) -> bool {
        if self.owners.contains_key(owner) {
            return true;
        }
        if self.owners.len() >= self.limits.max_daemons || !valid_daemon_id(owner) {
            return false;
        }
        self.owners.insert(owner.to_owned(), OwnerState::default());
        self.changes.push(Change::Meta);
        true
    }

    /// Pins `key` for daemon `owner` (first authenticated contact at its id: trust on first use).
    pub fn pin(&mut self, owner: &str, key: PublicKey) -> PinOutcome {
        if owner == self.me {
            return if key == *self.identity.public_key() { PinOutcome::Known } else { PinOutcome::Mismatch };
        }
        if !self.note_owner(owner) {
            return PinOutcome::NoRoom;
        }
        let state = self.owner_mut(owner);
        match state.key {
            Some(k) if k == key => PinOutcome::Known,
            Some(_) => PinOutcome::Mismatch,
            None => {
                state.key = Some(key);
                self.changes.push(Change::Pin(owner.to_owned(), key));
                PinOutcome::Pinned
            }
        }
    }

    /// Forgets a daemon that was only heard of (never pinned, no entries held): the driver calls
    /// this after repeated failures to reach it, so invented ids do not stay gossip targets.
    pub fn forget_unpinned(&mut self, owner: &str) -> bool {
        let forgettable = owner != self.me && self.owners.get(owner).is_some_and(|o| o.key.is_none() && o.entries == 0);
        if forgettable {
            self.owners.remove(owner);
            self.changes.push(Change::Meta);
        }
        forgettable
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

/// Whether a remote owner's version is plausible given the highest seen from it (`None`: never).
fn version_within_bounds(seen: Option<Version>, v: Version) -> bool {
    let incarnation_ok = match seen {
        Some(s) if s != Version::default() => v.incarnation <= s.incarnation.saturating_add(MAX_INCARNATION_STEP),
        _ => v.incarnation <= MAX_FIRST_INCARNATION,
    };
    incarnation_ok && v.counter <= MAX_COUNTER
}

/// A daemon id is `host:port` with a nonempty host and a numeric port.
pub fn valid_daemon_id(id: &str) -> bool {
    let host = daemon_host(id);
    let port =
        if id.starts_with('[') { id.rsplit_once("]:").map(|(_, p)| p) } else { id.rsplit_once(':').map(|(_, p)| p) };
    !host.is_empty() && port.is_some_and(|p| p.parse::<u16>().is_ok())
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
#[path = "table_tests.rs"]
mod tests;
