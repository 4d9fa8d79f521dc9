//! The process table of one node: which local pids are alive, and the numbers that make pids and
//! references unique.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use snow_shared::{NodeName, Pid, Ref};

use super::entry::{limit_from_raw, limit_to_raw, ProcessEntry, NO_MAILBOX_LIMIT};

const SHARDS: usize = 16;

/// Hasher for process ids: ids are sequential integers, so one multiplication spreads them well
/// and is much cheaper than SipHash on the send path. Public for other hosts of the seam (the C
/// ABI's table of the embedder's processes), whose tables are keyed by the same ids.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type Shard = RwLock<HashMap<u64, Arc<ProcessEntry>, BuildHasherDefault<IdHasher>>>;

/// Where a pid lives, as far as this node can tell.
pub(crate) enum Route {
    /// A live (or still exiting) process of this node.
    Local(Arc<ProcessEntry>),
    /// A pid of this node that is gone, never existed, or belongs to an older creation.
    Dead,
    /// A pid of another node.
    Remote,
}

/// Mints reference numbers: a counter (so every number is unique for the node's lifetime) passed
/// through a keyed permutation of 64-bit values (so the numbers of one node look random to others
/// and cannot be predicted from the ones they saw). The permutation is a four-round Feistel
/// network whose round function is SipHash under a key drawn at random when the node starts.
struct RefMint {
    counter: AtomicU64,
    key: std::collections::hash_map::RandomState,
}

impl RefMint {
    fn new() -> RefMint {
        RefMint { counter: AtomicU64::new(1), key: std::collections::hash_map::RandomState::new() }
    }

    fn next(&self) -> u64 {
        self.permute(self.counter.fetch_add(1, Ordering::Relaxed))
    }

    /// A bijection on `u64`: distinct counters give distinct numbers.
    fn permute(&self, value: u64) -> u64 {
        use std::hash::BuildHasher;
        let (mut left, mut right) = ((value >> 32) as u32, value as u32);
        for round in 0u32..4 {
            let mixed = self.key.hash_one((round, right)) as u32;
            (left, right) = (right, left ^ mixed);
        }
        (u64::from(left) << 32) | u64::from(right)
    }
}

/// The live processes of one node, sharded by pid number, and its pid and reference counters.
pub(crate) struct ProcessTable {
    name: NodeName,
    creation: u32,
    next_id: AtomicU64,
    refs: RefMint,
    shards: Box<[Shard]>,
    live: AtomicUsize,
    /// The mailbox limit of processes prepared from now on ([`NO_MAILBOX_LIMIT`]: none).
    mailbox_limit: AtomicUsize,
}

impl ProcessTable {
    pub fn new(name: NodeName, creation: u32) -> ProcessTable {
        ProcessTable {
            name,
            creation,
            // Id 0 is the runtime itself (see `Node::runtime_pid`), never a process.
            next_id: AtomicU64::new(1),
            refs: RefMint::new(),
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::default())).collect(),
            live: AtomicUsize::new(0),
            mailbox_limit: AtomicUsize::new(NO_MAILBOX_LIMIT),
        }
    }

    pub fn name(&self) -> &NodeName {
        &self.name
    }

    pub fn creation(&self) -> u32 {
        self.creation
    }

    fn shard(&self, id: u64) -> &Shard {
        &self.shards[(id as usize) % SHARDS]
    }

    /// A fresh reference, unique on this node and not guessable by others.
    pub fn make_ref(&self) -> Ref {
        Ref::new(self.name.clone(), self.refs.next(), self.creation)
    }

    /// Finds where `pid` lives.
    pub fn route(&self, pid: &Pid) -> Route {
        if pid.node() != &self.name {
            return Route::Remote;
        }
        if pid.creation() != self.creation {
            return Route::Dead;
        }
        match self.shard(pid.id()).read().unwrap_or_else(PoisonError::into_inner).get(&pid.id()) {
            Some(p) => Route::Local(p.clone()),
            None => Route::Dead,
        }
    }

    /// The live local process `pid`, if any.
    pub fn get(&self, pid: &Pid) -> Option<Arc<ProcessEntry>> {
        match self.route(pid) {
            Route::Local(p) => Some(p),
            Route::Dead | Route::Remote => None,
        }
    }

    /// Runs `f` on the local process `pid` under the table's read lock, without cloning its
    /// `Arc` (two atomic operations on a cache line the process also writes): the send path.
    /// `None` if `pid` is not a live process of this node.
    pub fn with<T>(&self, pid: &Pid, f: impl FnOnce(&ProcessEntry) -> T) -> Option<T> {
        if pid.node() != &self.name || pid.creation() != self.creation {
            return None;
        }
        self.shard(pid.id()).read().unwrap_or_else(PoisonError::into_inner).get(&pid.id()).map(|p| f(p))
    }

    /// Mints the pid of a process about to be spawned, with its state; not in the table yet.
    /// It gets the node's default mailbox limit.
    pub fn prepare(&self) -> Arc<ProcessEntry> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let limit = self.mailbox_limit.load(Ordering::Relaxed);
        Arc::new(ProcessEntry::new(Pid::new(self.name.clone(), id, self.creation), limit))
    }

    /// Sets the mailbox limit processes prepared from now on get (`None`: no limit); returns the
    /// previous one.
    pub fn set_mailbox_limit(&self, limit: Option<usize>) -> Option<usize> {
        limit_from_raw(self.mailbox_limit.swap(limit_to_raw(limit), Ordering::Relaxed))
    }

    /// The mailbox limit new processes get.
    pub fn mailbox_limit(&self) -> Option<usize> {
        limit_from_raw(self.mailbox_limit.load(Ordering::Relaxed))
    }

    /// Adds a prepared process.
    pub fn insert(&self, entry: Arc<ProcessEntry>) {
        let id = entry.pid().id();
        self.shard(id).write().unwrap_or_else(PoisonError::into_inner).insert(id, entry);
        self.live.fetch_add(1, Ordering::Relaxed);
    }

    /// Removes a process that died.
    pub fn remove(&self, pid: &Pid) {
        if self.shard(pid.id()).write().unwrap_or_else(PoisonError::into_inner).remove(&pid.id()).is_some() {
            self.live.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Number of processes alive (or exiting).
    pub fn len(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// Every local process, for node-wide sweeps (connection loss).
    pub fn all(&self) -> Vec<Arc<ProcessEntry>> {
        let mut all = Vec::with_capacity(self.len());
        for shard in self.shards.iter() {
            all.extend(shard.read().unwrap_or_else(PoisonError::into_inner).values().cloned());
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_unique_and_not_sequential() {
        let table = ProcessTable::new(NodeName::local_only(), 0);
        let refs: Vec<u64> = (0..100_000).map(|_| table.make_ref().id()).collect();
        let unique: std::collections::HashSet<u64> = refs.iter().copied().collect();
        assert_eq!(unique.len(), refs.len());
        let steps_of_one = refs.windows(2).filter(|w| w[1].wrapping_sub(w[0]) == 1).count();
        assert!(steps_of_one < 10, "{steps_of_one} consecutive references differ by one: guessable");
        let high_bits_used = refs.iter().filter(|r| *r >> 48 != 0).count();
        assert!(high_bits_used > 90_000, "references use the whole 64-bit range");
    }
}
