//! Push-pull anti-entropy between snow-epmd daemons (DESIGN.md 4.7), sans-IO.
//!
//! One exchange is three messages on one connection: the initiator sends `Syn` (a digest per
//! owner: highest version seen and a hash of the owner's live entries); the responder answers
//! `Ack` (entries the initiator lacks, the owners it wants newer entries for, and live sets where
//! versions agree but live hashes differ); the initiator finishes with `Ack2` (what was asked).
//! Every owner in a digest is a daemon, so daemons learn each other transitively from `--peer`
//! seeds. Each round the driver asks [`Gossip::round_targets`] for `fanout` random peers.
//!
//! Messages stay under the u16 frame limit: digests and entries are cut to a byte budget (entries
//! of an owner always as a prefix in version order, which keeps the table invariant), and the rest
//! follows in later rounds.

use super::table::{Applied, DaemonId, Entry, State, Table, Version};
use super::wire::{put_bytes16, DecodeError, Reader};
use crate::name::NodeName;

/// Budget for one encoded gossip body, leaving room for the envelope and frame header.
pub const BODY_BUDGET: usize = super::wire::MAX_GOSSIP_LEN - super::auth::ENVELOPE_OVERHEAD - 16;

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
    /// Initiator's digests. `complete` is false when the digest list was cut to fit.
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
        /// Responder's live sets where hashes differ.
        live_sets: Vec<LiveSet>,
    },
    /// Initiator's final message.
    Ack2 {
        /// Entries the responder asked for.
        entries: Vec<Entry>,
        /// Initiator's live sets for the owners where hashes differ.
        live_sets: Vec<LiveSet>,
    },
}

/// A gossip message: who sends it and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Sender's daemon id.
    pub sender: DaemonId,
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
}

/// Gossip settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GossipConfig {
    /// Peers contacted per round.
    pub fanout: usize,
    /// Byte budget for one message body.
    pub budget: usize,
}

impl Default for GossipConfig {
    fn default() -> GossipConfig {
        GossipConfig { fanout: 3, budget: BODY_BUDGET }
    }
}

/// The gossip state of one daemon: its table, its seeds and a deterministic random source.
#[derive(Debug, Clone)]
pub struct Gossip {
    table: Table,
    seeds: Vec<DaemonId>,
    rng: u64,
    config: GossipConfig,
}

impl Gossip {
    /// Gossip over `table`, starting from `seeds`, with `rng_seed` for peer choice (any value; the
    /// driver passes a random one, tests a fixed one).
    pub fn new(table: Table, seeds: Vec<DaemonId>, rng_seed: u64, config: GossipConfig) -> Gossip {
        let seeds = seeds.into_iter().filter(|s| s != table.me()).collect();
        Gossip { table, seeds, rng: rng_seed | 1, config }
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
        // xorshift64*: deterministic, good enough to spread peer choice.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
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

    /// Up to `fanout` distinct random peers to start an exchange with this round.
    pub fn round_targets(&mut self) -> Vec<DaemonId> {
        let mut peers = self.peers();
        let n = self.config.fanout.min(peers.len());
        for i in 0..n {
            let j = i + (self.next_random() % (peers.len() - i) as u64) as usize;
            peers.swap(i, j);
        }
        peers.truncate(n);
        peers
    }

    /// The `Syn` that starts an exchange.
    pub fn syn(&mut self) -> Message {
        let mut digests: Vec<OwnerDigest> = self
            .table
            .digest()
            .into_iter()
            .map(|(owner, max, live_hash)| OwnerDigest { owner, max, live_hash })
            .collect();
        let mut complete = true;
        let mut size = 0;
        if digests.iter().map(digest_len).sum::<usize>() > self.config.budget {
            complete = false;
            // Keep a random subset that fits, always including ourselves.
            let len = digests.len();
            for i in 0..len {
                let j = i + (self.next_random() % (len - i) as u64) as usize;
                digests.swap(i, j);
            }
            digests.retain(|d| {
                size += digest_len(d);
                size <= self.config.budget
            });
        }
        Message { sender: self.table.me().to_owned(), body: Body::Syn { digests, complete } }
    }

    /// Answers a `Syn` with an `Ack`. Returns `None` (and changes nothing) for any other body.
    pub fn handle_syn(&mut self, msg: &Message) -> Option<Message> {
        let Body::Syn { digests, complete } = &msg.body else { return None };
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
                    if self.table.owner_live_hash(&d.owner) != d.live_hash {
                        let set = LiveSet { owner: d.owner.clone(), max: mine, live: self.table.live_set(&d.owner) };
                        if out.reserve(live_set_len(&set)) {
                            live_sets.push(set);
                        }
                    }
                }
                mine => {
                    self.table.note_owner(&d.owner);
                    let mine = mine.unwrap_or_default();
                    if out.reserve(d.owner.len() + 18) {
                        want.push((d.owner.clone(), mine));
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
        Some(Message { sender: self.table.me().to_owned(), body: Body::Ack { entries: out.entries, want, live_sets } })
    }

    /// Applies an `Ack` (at local time `now`) and builds the `Ack2`.
    pub fn handle_ack(&mut self, msg: &Message, now: u64) -> Option<(Message, Report)> {
        let Body::Ack { entries, want, live_sets } = &msg.body else { return None };
        self.table.note_owner(&msg.sender);
        let mut report = self.apply(entries, now);
        let mut out = Budget::new(self.config.budget);
        for (owner, theirs) in want {
            out.push_owner(&self.table, owner, *theirs);
        }
        let mut mine_sets = Vec::new();
        for set in live_sets {
            // Answer with our view before reconciling, so both sides see each other's sets.
            let ours = LiveSet { owner: set.owner.clone(), max: set.max, live: self.table.live_set(&set.owner) };
            if self.table.owner_max(&set.owner) == Some(set.max) {
                report.reconciled += self.table.apply_live_set(&set.owner, set.max, &set.live);
                if out.reserve(live_set_len(&ours)) {
                    mine_sets.push(ours);
                }
            }
        }
        let ack2 = Message {
            sender: self.table.me().to_owned(),
            body: Body::Ack2 { entries: out.entries, live_sets: mine_sets },
        };
        Some((ack2, report))
    }

    /// Applies an `Ack2`.
    pub fn handle_ack2(&mut self, msg: &Message, now: u64) -> Option<Report> {
        let Body::Ack2 { entries, live_sets } = &msg.body else { return None };
        let mut report = self.apply(entries, now);
        for set in live_sets {
            if self.table.owner_max(&set.owner) == Some(set.max) {
                report.reconciled += self.table.apply_live_set(&set.owner, set.max, &set.live);
            }
        }
        Some(report)
    }

    /// Learns a peer address (a seed given later, or the sender of an accepted message).
    pub fn add_seed(&mut self, peer: DaemonId) {
        if peer != self.table.me() && !self.seeds.contains(&peer) {
            self.seeds.push(peer);
        }
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
    2 + e.name.as_str().len() + 2 + e.host.len() + 2 + 4 + 1 + 1 + 4 + 2 + e.extra.len() + 2 + e.owner.len() + 24
}

fn live_set_len(s: &LiveSet) -> usize {
    2 + s.owner.len() + 16 + 4 + s.live.iter().map(|(n, _)| 2 + n.as_str().len() + 16).sum::<usize>()
}

const KIND_SYN: u8 = 1;
const KIND_ACK: u8 = 2;
const KIND_ACK2: u8 = 3;

/// Encodes a message body for sealing (layout in protocol-epmd.md). Ages are `now - changed_at`.
pub fn encode(msg: &Message, now: u64) -> Vec<u8> {
    let mut out = Vec::new();
    match &msg.body {
        Body::Syn { digests, complete } => {
            out.push(KIND_SYN);
            put_bytes16(&mut out, msg.sender.as_bytes());
            out.push(u8::from(*complete));
            out.extend_from_slice(&(digests.len() as u32).to_be_bytes());
            for d in digests {
                put_bytes16(&mut out, d.owner.as_bytes());
                put_version(&mut out, d.max);
                out.extend_from_slice(&d.live_hash.to_be_bytes());
            }
        }
        Body::Ack { entries, want, live_sets } => {
            out.push(KIND_ACK);
            put_bytes16(&mut out, msg.sender.as_bytes());
            put_entries(&mut out, entries, now);
            out.extend_from_slice(&(want.len() as u32).to_be_bytes());
            for (owner, v) in want {
                put_bytes16(&mut out, owner.as_bytes());
                put_version(&mut out, *v);
            }
            put_live_sets(&mut out, live_sets);
        }
        Body::Ack2 { entries, live_sets } => {
            out.push(KIND_ACK2);
            put_bytes16(&mut out, msg.sender.as_bytes());
            put_entries(&mut out, entries, now);
            put_live_sets(&mut out, live_sets);
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
        KIND_ACK2 => Body::Ack2 { entries: entries(&mut r, now)?, live_sets: live_sets(&mut r)? },
        _ => return Err(DecodeError::BadTag),
    };
    if !r.is_empty() {
        return Err(DecodeError::Invalid("bytes after the message"));
    }
    Ok(Message { sender, body })
}

fn daemon_id(r: &mut Reader<'_>) -> Result<DaemonId, DecodeError> {
    let s = r.str16()?;
    if s.is_empty() || s.len() > 300 {
        return Err(DecodeError::Invalid("daemon id"));
    }
    Ok(s.to_owned())
}

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
