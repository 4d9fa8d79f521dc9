//! Push-pull anti-entropy between snow-epmd daemons (PROTOCOL.md 5.5), sans-IO.
//!
//! One exchange is three messages on one connection: the initiator sends `Syn` (a digest per
//! owner: highest version seen and a hash of the owner's live entries); the responder answers
//! `Ack` (entries the initiator lacks, the owners it wants newer entries for, and its own live set
//! where versions agree but live hashes differ); the initiator finishes with `Ack2` (what was
//! asked). Every owner in a digest is a daemon, so daemons learn each other transitively from
//! `--peer` seeds. Each round the driver asks [`Gossip::round_targets`] for `fanout` random pinned
//! peers, plus up to `pin_probes` daemons not pinned yet.
//!
//! Pinning (trust on first use): every message carries its sender's public key. When the
//! initiator's `Ack` comes from the daemon id it dialed, that key is pinned for the id (a later
//! different key is refused until an operator removes the pin). A daemon not pinned yet is sent a
//! *probe*: a `Syn` without digests, which anyone may answer and which reveals nothing but the
//! responder's id and key. Entries are signed by their owners and checked against pinned keys
//! (`table.rs`), so relays cannot forge them; a live set, which removes entries, is believed only
//! from its owner, in the `Ack` of an exchange this daemon started with it.
//!
//! Messages stay under the u16 frame limit: digests and entries are cut to a byte budget (entries
//! of an owner always as a prefix in version order, which keeps the table invariant), and the rest
//! follows in later rounds.

use std::collections::BTreeMap;

use super::identity::PublicKey;
use super::table::{Applied, DaemonId, Entry, PinOutcome, State, Table, Version};
use super::wire::{put_bytes16, DecodeError, Reader};
use crate::name::NodeName;

/// Budget for one encoded gossip body, leaving room for the envelope and frame header.
pub const BODY_BUDGET: usize = super::wire::MAX_GOSSIP_LEN - super::auth::ENVELOPE_OVERHEAD - 512;

/// Digest of one owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerDigest {
    /// The owning daemon.
    pub owner: DaemonId,
    /// Highest version seen.
    pub max: Version,
    /// XOR hash of its live entries' names and versions.
    pub live_hash: u64,
}

/// Live entries of one owner, for reconciliation when maxima agree but hashes differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSet {
    /// The owning daemon.
    pub owner: DaemonId,
    /// The sender's max version for that owner.
    pub max: Version,
    /// Names and versions of live entries.
    pub live: Vec<(NodeName, Version)>,
}

/// A gossip message body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Initiator's digests. `complete` is false when the digest list was cut to fit; a probe has
    /// no digests and `complete` false.
    Syn {
        /// Per-owner digests.
        digests: Vec<OwnerDigest>,
        /// Whether every known owner is listed.
        complete: bool,
    },
    /// Responder's answer.
    Ack {
        /// Entries the initiator lacks.
        entries: Vec<Entry>,
        /// Owners (with the responder's max) the responder wants newer entries of.
        want: Vec<(DaemonId, Version)>,
        /// The responder's own live set, when the initiator's hash of it differs.
        live_sets: Vec<LiveSet>,
    },
    /// Initiator's final message.
    Ack2 {
        /// Entries the responder asked for.
        entries: Vec<Entry>,
    },
}

impl Body {
    /// Whether this is a probe: a `Syn` without digests.
    pub fn is_probe(&self) -> bool {
        matches!(self, Body::Syn { digests, complete: false } if digests.is_empty())
    }
}

/// A gossip message: who sends it (its id and public key) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Sender's daemon id.
    pub sender: DaemonId,
    /// Sender's public key (pinned by an initiator when the sender is the daemon it dialed).
    pub key: PublicKey,
    /// The body.
    pub body: Body,
}

/// What applying a message did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Entries stored.
    pub stored: usize,
    /// Entries ignored as old.
    pub stale: usize,
    /// Entries refused, with the reason and name.
    pub rejected: Vec<(NodeName, &'static str)>,
    /// Entries removed by live-set reconciliation.
    pub reconciled: usize,
    /// The daemon answering was pinned on this exchange (first contact).
    pub pinned: Option<DaemonId>,
}

/// Why a gossip message was refused (nothing changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GossipError {
    /// Not the message kind expected at this step.
    #[error("unexpected gossip message kind")]
    WrongKind,
    /// A `Syn` addressed to nobody in particular that is more than a probe.
    #[error("a gossip Syn without a recipient must be a probe (no digests)")]
    AnonymousSyn,
    /// The daemon answering at a pinned id has another key.
    #[error(
        "daemon {daemon} answered with a key other than the one pinned for it; if it was reinstalled, \
         remove its line from known_daemons in this daemon's data directory and restart"
    )]
    KeyMismatch {
        /// The daemon id.
        daemon: DaemonId,
    },
}

/// Gossip settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GossipConfig {
    /// Pinned peers contacted per round.
    pub fanout: usize,
    /// Daemons not pinned yet probed per round (in addition to `fanout`).
    pub pin_probes: usize,
    /// Consecutive failed exchanges after which a daemon never pinned is forgotten.
    pub forget_after: u32,
    /// Byte budget for one message body.
    pub budget: usize,
}

impl Default for GossipConfig {
    fn default() -> GossipConfig {
        GossipConfig { fanout: 3, pin_probes: 16, forget_after: 3, budget: BODY_BUDGET }
    }
}

/// One peer to start an exchange with this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Its id (the address to dial).
    pub peer: DaemonId,
    /// Not pinned yet: send a probe.
    pub probe: bool,
}

/// The gossip state of one daemon: its table, its seeds and a deterministic random source.
#[derive(Debug, Clone)]
pub struct Gossip {
    table: Table,
    seeds: Vec<DaemonId>,
    rng: u64,
    config: GossipConfig,
    failures: BTreeMap<DaemonId, u32>,
}

impl Gossip {
    /// Gossip over `table`, starting from `seeds`, with `rng_seed` for peer choice (any value; the
    /// driver passes a random one, tests a fixed one).
    pub fn new(table: Table, seeds: Vec<DaemonId>, rng_seed: u64, config: GossipConfig) -> Gossip {
        let seeds = seeds.into_iter().filter(|s| s != table.me()).collect();
        Gossip { table, seeds, rng: rng_seed | 1, config, failures: BTreeMap::new() }
    }

    /// The table.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// The table, for registrations and timers.
    pub fn table_mut(&mut self) -> &mut Table {
        &mut self.table
    }

    fn next_random(&mut self) -> u64 {
        self.rng = xorshift(self.rng);
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Every daemon known (seeds and owners), except this one.
    pub fn peers(&self) -> Vec<DaemonId> {
        let mut all: Vec<DaemonId> = self.table.daemons().filter(|d| *d != self.table.me()).cloned().collect();
        for s in &self.seeds {
            if !all.contains(s) {
                all.push(s.clone());
            }
        }
        all
    }

    /// This round's exchanges: up to `fanout` distinct random pinned peers (a full `Syn`), and
    /// up to `pin_probes` random daemons not pinned yet (a probe).
    pub fn round_targets(&mut self) -> Vec<Target> {
        let me = self.table.me();
        let mut pinned: Vec<&DaemonId> = Vec::new();
        let mut unpinned: Vec<&DaemonId> = Vec::new();
        for d in self.table.daemons().filter(|d| *d != me) {
            if self.table.pinned_key(d).is_some() {
                pinned.push(d);
            } else {
                unpinned.push(d);
            }
        }
        for s in &self.seeds {
            if self.table.pinned_key(s).is_none() && !unpinned.contains(&s) {
                unpinned.push(s);
            }
        }
        let (fanout, probes) = (self.config.fanout, self.config.pin_probes);
        let mut rng = self.rng;
        let mut pick = |v: &mut Vec<&DaemonId>, n: usize| {
            for i in 0..n.min(v.len()) {
                rng = xorshift(rng);
                let j = i + (rng.wrapping_mul(0x2545_f491_4f6c_dd1d) % (v.len() - i) as u64) as usize;
                v.swap(i, j);
            }
            v.truncate(n);
        };
        pick(&mut pinned, fanout);
        pick(&mut unpinned, probes);
        let targets = pinned
            .into_iter()
            .map(|p| Target { peer: p.clone(), probe: false })
            .chain(unpinned.into_iter().map(|p| Target { peer: p.clone(), probe: true }))
            .collect();
        self.rng = rng;
        targets
    }

    /// The `Syn` that starts an exchange with `target`.
    pub fn syn_for(&mut self, target: &Target) -> Message {
        if target.probe {
            return self.message(Body::Syn { digests: Vec::new(), complete: false });
        }
        self.syn()
    }

    fn message(&self, body: Body) -> Message {
        Message { sender: self.table.me().to_owned(), key: *self.table.public_key(), body }
    }

    /// A full `Syn`: the digest of every owner whose key is pinned here (a random subset that
    /// fits, if they do not). Owners not pinned yet are left out, so the responder does not send
    /// entries this daemon would refuse; the Syn is then marked incomplete.
    pub fn syn(&mut self) -> Message {
        let all = self.table.digest();
        let known = all.len();
        let mut digests: Vec<OwnerDigest> = all
            .into_iter()
            .filter(|(owner, _, _)| self.table.pinned_key(owner).is_some())
            .map(|(owner, max, live_hash)| OwnerDigest { owner, max, live_hash })
            .collect();
        let mut complete = digests.len() == known;
        let mut size = 0;
        if digests.iter().map(digest_len).sum::<usize>() > self.config.budget {
            complete = false;
            let len = digests.len();
            // Keep a random subset that fits.
            for i in 0..len {
                let j = i + (self.next_random() % (len - i) as u64) as usize;
                digests.swap(i, j);
            }
            digests.retain(|d| {
                size += digest_len(d);
                size <= self.config.budget
            });
        }
        self.message(Body::Syn { digests, complete })
    }

    /// Answers a `Syn` with an `Ack`. `anonymous`: the Syn named no recipient, which only a probe
    /// may do. Learns the sender as a daemon (it becomes a gossip target; its key is pinned only
    /// when this daemon dials it).
    pub fn handle_syn(&mut self, msg: &Message, anonymous: bool) -> Result<Message, GossipError> {
        let Body::Syn { digests, complete } = &msg.body else { return Err(GossipError::WrongKind) };
        if anonymous && !msg.body.is_probe() {
            return Err(GossipError::AnonymousSyn);
        }
        self.table.note_owner(&msg.sender);
        let mut out = Budget::new(self.config.budget);
        let mut want = Vec::new();
        let mut live_sets = Vec::new();
        for d in digests {
            let restarted_sender = d.owner == msg.sender
                && self.table.owner_max(&d.owner).is_some_and(|m| m.incarnation < d.max.incarnation);
            if restarted_sender {
                // The sender restarted: let it see (and adopt) what it owned before.
                out.push_owner(&self.table, &d.owner, Version::default());
            }
            match self.table.owner_max(&d.owner) {
                Some(mine) if mine > d.max => out.push_owner(&self.table, &d.owner, d.max),
                Some(mine) if mine == d.max => {
                    // Only our own live set: a live set removes entries, so it is believed only
                    // from the owner itself.
                    if d.owner == self.table.me() && self.table.owner_live_hash(&d.owner) != d.live_hash {
                        let set = LiveSet { owner: d.owner.clone(), max: mine, live: self.table.live_set(&d.owner) };
                        if out.reserve(live_set_len(&set)) {
                            live_sets.push(set);
                        }
                    }
                }
                mine => {
                    if self.table.note_owner(&d.owner) && out.reserve(d.owner.len() + 18) {
                        want.push((d.owner.clone(), mine.unwrap_or_default()));
                    }
                }
            }
        }
        if *complete {
            let listed: std::collections::BTreeSet<&str> = digests.iter().map(|d| d.owner.as_str()).collect();
            let unlisted: Vec<DaemonId> =
                self.table.daemons().filter(|o| !listed.contains(o.as_str())).cloned().collect();
            for owner in unlisted {
                out.push_owner(&self.table, &owner, Version::default());
            }
        }
        Ok(self.message(Body::Ack { entries: out.entries, want, live_sets }))
    }

    /// Applies an `Ack` (at local time `now`) from the exchange this daemon started with
    /// `dialed`, and builds the `Ack2`. Pins the sender's key when the sender is `dialed`.
    pub fn handle_ack(&mut self, msg: &Message, dialed: &str, now: u64) -> Result<(Message, Report), GossipError> {
        let Body::Ack { entries, want, live_sets } = &msg.body else { return Err(GossipError::WrongKind) };
        let mut pinned = None;
        let verified = if msg.sender == dialed {
            match self.table.pin(dialed, msg.key) {
                PinOutcome::Mismatch => return Err(GossipError::KeyMismatch { daemon: dialed.to_owned() }),
                PinOutcome::Pinned => {
                    pinned = Some(dialed.to_owned());
                    true
                }
                PinOutcome::Known => true,
                PinOutcome::NoRoom => false,
            }
        } else {
            // A seed that calls itself otherwise: learn its id (it is pinned when dialed there)
            // and stop probing the seed's spelling.
            self.table.note_owner(&msg.sender);
            if self.table.daemons().any(|d| *d == msg.sender) {
                self.seeds.retain(|s| s != dialed);
            }
            false
        };
        let mut report = self.apply(entries, now);
        report.pinned = pinned;
        let mut out = Budget::new(self.config.budget);
        for (owner, theirs) in want {
            out.push_owner(&self.table, owner, *theirs);
        }
        for set in live_sets {
            if verified && set.owner == msg.sender && self.table.owner_max(&set.owner) == Some(set.max) {
                report.reconciled += self.table.apply_live_set(&set.owner, set.max, &set.live);
            }
        }
        Ok((self.message(Body::Ack2 { entries: out.entries }), report))
    }

    /// Applies an `Ack2`.
    pub fn handle_ack2(&mut self, msg: &Message, now: u64) -> Result<Report, GossipError> {
        let Body::Ack2 { entries } = &msg.body else { return Err(GossipError::WrongKind) };
        Ok(self.apply(entries, now))
    }

    /// Learns a peer address (a seed given later, or the sender of an accepted message).
    pub fn add_seed(&mut self, peer: DaemonId) {
        if peer != self.table.me() && !self.seeds.contains(&peer) {
            self.seeds.push(peer);
        }
    }

    /// An exchange with `peer` failed (unreachable, refused, timed out): after
    /// [`GossipConfig::forget_after`] failures in a row a daemon never pinned is forgotten, so
    /// invented ids in digests do not stay gossip targets. Seeds are kept.
    pub fn exchange_failed(&mut self, peer: &str) {
        let count = self.failures.entry(peer.to_owned()).or_insert(0);
        *count += 1;
        if *count >= self.config.forget_after {
            self.failures.remove(peer);
            self.table.forget_unpinned(peer);
        }
    }

    /// An exchange with `peer` completed.
    pub fn exchange_succeeded(&mut self, peer: &str) {
        self.failures.remove(peer);
    }

    fn apply(&mut self, entries: &[Entry], now: u64) -> Report {
        let mut report = Report::default();
        for e in entries {
            match self.table.apply_remote(e.clone(), now) {
                Applied::Stored => report.stored += 1,
                Applied::Stale => report.stale += 1,
                Applied::Rejected(why) => report.rejected.push((e.name.clone(), why)),
            }
        }
        report
    }
}

/// xorshift64 step (with the multiplier above, xorshift64*): deterministic, good enough to spread
/// peer choice.
fn xorshift(mut x: u64) -> u64 {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    x
}

struct Budget {
    left: usize,
    entries: Vec<Entry>,
}

impl Budget {
    fn new(budget: usize) -> Budget {
        Budget { left: budget.saturating_sub(64), entries: Vec::new() }
    }
    fn reserve(&mut self, n: usize) -> bool {
        if n > self.left {
            return false;
        }
        self.left -= n;
        true
    }
    /// Adds entries of `owner` above `after` in version order until the budget runs out.
    fn push_owner(&mut self, table: &Table, owner: &str, after: Version) {
        for e in table.entries_after(owner, after) {
            if !self.reserve(entry_len(e)) {
                return;
            }
            self.entries.push(e.clone());
        }
    }
}

fn digest_len(d: &OwnerDigest) -> usize {
    2 + d.owner.len() + 24
}

fn entry_len(e: &Entry) -> usize {
    2 + e.name.as_str().len() + 2 + e.host.len() + 2 + 4 + 1 + 1 + 4 + 2 + e.extra.len() + 2 + e.owner.len() + 24 + 64
}

fn live_set_len(s: &LiveSet) -> usize {
    2 + s.owner.len() + 16 + 4 + s.live.iter().map(|(n, _)| 2 + n.as_str().len() + 16).sum::<usize>()
}

const KIND_SYN: u8 = 1;
const KIND_ACK: u8 = 2;
const KIND_ACK2: u8 = 3;

/// Encodes a message body for sealing (PROTOCOL.md 5.5). Ages are `now - changed_at`.
pub fn encode(msg: &Message, now: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let head = |out: &mut Vec<u8>, kind: u8| {
        out.push(kind);
        put_bytes16(out, msg.sender.as_bytes());
        out.extend_from_slice(&msg.key);
    };
    match &msg.body {
        Body::Syn { digests, complete } => {
            head(&mut out, KIND_SYN);
            out.push(u8::from(*complete));
            out.extend_from_slice(&(digests.len() as u32).to_be_bytes());
            for d in digests {
                put_bytes16(&mut out, d.owner.as_bytes());
                put_version(&mut out, d.max);
                out.extend_from_slice(&d.live_hash.to_be_bytes());
            }
        }
        Body::Ack { entries, want, live_sets } => {
            head(&mut out, KIND_ACK);
            put_entries(&mut out, entries, now);
            out.extend_from_slice(&(want.len() as u32).to_be_bytes());
            for (owner, v) in want {
                put_bytes16(&mut out, owner.as_bytes());
                put_version(&mut out, *v);
            }
            put_live_sets(&mut out, live_sets);
        }
        Body::Ack2 { entries } => {
            head(&mut out, KIND_ACK2);
            put_entries(&mut out, entries, now);
        }
    }
    out
}

/// Appends a version (incarnation u64, counter u64).
pub fn put_version(out: &mut Vec<u8>, v: Version) {
    out.extend_from_slice(&v.incarnation.to_be_bytes());
    out.extend_from_slice(&v.counter.to_be_bytes());
}

fn put_entries(out: &mut Vec<u8>, entries: &[Entry], now: u64) {
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for e in entries {
        encode_entry(out, e, now);
    }
}

/// Appends one entry in the gossip layout; its age is `now - changed_at`. (The daemon's store
/// reuses this with `now = u64::MAX`, which makes the age field hold the absolute time.)
pub fn encode_entry(out: &mut Vec<u8>, e: &Entry, now: u64) {
    put_bytes16(out, e.name.as_str().as_bytes());
    put_bytes16(out, e.host.as_bytes());
    out.extend_from_slice(&e.port.to_be_bytes());
    out.extend_from_slice(&e.creation.to_be_bytes());
    out.push(e.state.to_u8());
    out.push(e.node_type);
    out.extend_from_slice(&e.high_version.to_be_bytes());
    out.extend_from_slice(&e.low_version.to_be_bytes());
    put_bytes16(out, &e.extra);
    put_bytes16(out, e.owner.as_bytes());
    put_version(out, e.version);
    out.extend_from_slice(&e.signature);
    out.extend_from_slice(&now.saturating_sub(e.changed_at).to_be_bytes());
}

fn put_live_sets(out: &mut Vec<u8>, sets: &[LiveSet]) {
    out.extend_from_slice(&(sets.len() as u32).to_be_bytes());
    for s in sets {
        put_bytes16(out, s.owner.as_bytes());
        put_version(out, s.max);
        out.extend_from_slice(&(s.live.len() as u32).to_be_bytes());
        for (n, v) in &s.live {
            put_bytes16(out, n.as_str().as_bytes());
            put_version(out, *v);
        }
    }
}

/// Decodes a message body received at local time `now` (ages become `changed_at = now - age`).
/// Rejects unknown kinds, truncation, trailing bytes, bad names and bad states; never panics, and
/// allocates only as items are actually read.
pub fn decode(bytes: &[u8], now: u64) -> Result<Message, DecodeError> {
    let mut r = Reader::new(bytes);
    let kind = r.u8()?;
    let sender = daemon_id(&mut r)?;
    let mut key = [0u8; 32];
    key.copy_from_slice(r.take(32)?);
    let body = match kind {
        KIND_SYN => {
            let complete = match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(DecodeError::Invalid("complete flag")),
            };
            let n = r.u32()?;
            let mut digests = Vec::new();
            for _ in 0..n {
                let owner = daemon_id(&mut r)?;
                let max = version(&mut r)?;
                let live_hash = r.u64()?;
                digests.push(OwnerDigest { owner, max, live_hash });
            }
            Body::Syn { digests, complete }
        }
        KIND_ACK => {
            let entries = entries(&mut r, now)?;
            let n = r.u32()?;
            let mut want = Vec::new();
            for _ in 0..n {
                want.push((daemon_id(&mut r)?, version(&mut r)?));
            }
            Body::Ack { entries, want, live_sets: live_sets(&mut r)? }
        }
        KIND_ACK2 => Body::Ack2 { entries: entries(&mut r, now)? },
        _ => return Err(DecodeError::BadTag),
    };
    if !r.is_empty() {
        return Err(DecodeError::Invalid("bytes after the message"));
    }
    Ok(Message { sender, key, body })
}

fn daemon_id(r: &mut Reader<'_>) -> Result<DaemonId, DecodeError> {
    let s = r.str16()?;
    if s.len() > MAX_DAEMON_ID_LEN || !super::table::valid_daemon_id(s) {
        return Err(DecodeError::Invalid("daemon id"));
    }
    Ok(s.to_owned())
}

/// Longest daemon id (`host:port`: a DNS name of 253 bytes or a bracketed IPv6 address, a port).
pub const MAX_DAEMON_ID_LEN: usize = 300;

/// Reads a version (incarnation u64, counter u64).
pub fn version(r: &mut Reader<'_>) -> Result<Version, DecodeError> {
    Ok(Version { incarnation: r.u64()?, counter: r.u64()? })
}

fn node_name(r: &mut Reader<'_>) -> Result<NodeName, DecodeError> {
    NodeName::parse(r.str16()?).map_err(|_| DecodeError::Invalid("node name"))
}

fn entries(r: &mut Reader<'_>, now: u64) -> Result<Vec<Entry>, DecodeError> {
    let n = r.u32()?;
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(decode_entry(r, now)?);
    }
    Ok(out)
}

/// Reads one entry written by [`encode_entry`]; `changed_at = now - age`.
pub fn decode_entry(r: &mut Reader<'_>, now: u64) -> Result<Entry, DecodeError> {
    let name = node_name(r)?;
    let host = r.str16()?.to_owned();
    let port = r.u16()?;
    let creation = r.u32()?;
    let state = State::from_u8(r.u8()?).ok_or(DecodeError::Invalid("entry state"))?;
    let node_type = r.u8()?;
    let high_version = r.u16()?;
    let low_version = r.u16()?;
    let extra = r.bytes16()?.to_vec();
    let owner = daemon_id(r)?;
    let version = version(r)?;
    let mut signature = [0u8; 64];
    signature.copy_from_slice(r.take(64)?);
    let age = r.u64()?;
    if creation == 0 {
        return Err(DecodeError::Invalid("creation 0"));
    }
    let changed_at = now.saturating_sub(age);
    Ok(Entry {
        name,
        host,
        port,
        creation,
        node_type,
        high_version,
        low_version,
        extra,
        state,
        owner,
        version,
        changed_at,
        signature,
    })
}

fn live_sets(r: &mut Reader<'_>) -> Result<Vec<LiveSet>, DecodeError> {
    let n = r.u32()?;
    let mut out = Vec::new();
    for _ in 0..n {
        let owner = daemon_id(r)?;
        let max = version(r)?;
        let count = r.u32()?;
        let mut live = Vec::new();
        for _ in 0..count {
            live.push((node_name(r)?, version(r)?));
        }
        out.push(LiveSet { owner, max, live });
    }
    Ok(out)
}
