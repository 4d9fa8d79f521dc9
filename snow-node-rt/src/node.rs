//! The runtime value: process table, name registry, pid and reference counters, node identity.
//!
//! Several [`Node`]s can live in one OS process (tests run whole clusters in-process); nothing in
//! the runtime is a hidden global.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use snow_shared::{Atom, NodeName, Pid, Ref, Term};

use crate::proc::{self, ProcShared};
use crate::process::Process;
use crate::reason::IntoExitReason;
use crate::seam::{RemoteRouter, Spawnable};

const SHARDS: usize = 16;

/// Hasher for process ids: ids are sequential integers, so one multiplication spreads them well
/// and is much cheaper than SipHash on the send path.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

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

pub(crate) type Shard = RwLock<HashMap<u64, Arc<ProcShared>, BuildHasherDefault<IdHasher>>>;

/// Where a pid lives, as far as this node can tell.
pub(crate) enum Route {
    /// A live (or still exiting) process of this node.
    Local(Arc<ProcShared>),
    /// A pid of this node that is gone, never existed, or belongs to an older creation.
    Dead,
    /// A pid of another node.
    Remote,
}

pub(crate) struct NodeInner {
    pub name: NodeName,
    pub creation: u32,
    next_id: AtomicU64,
    refs: RefMint,
    shards: Box<[Shard]>,
    live: AtomicUsize,
    pub registry: Mutex<HashMap<Atom, Pid>>,
    pub router: RwLock<Option<Arc<dyn RemoteRouter>>>,
    pub spawnables: RwLock<HashMap<String, Spawnable>>,
}

/// A runtime: the processes of one node. Cheap to clone (a shared handle).
///
/// A node that is not distributed is [`Node::local`] (`nonode@nohost`, creation 0). A distributed
/// node gets its name and creation from the distribution layer ([`Node::new`]), which then
/// installs a [`RemoteRouter`] with [`Node::set_router`].
///
/// ```
/// use snow_node_rt::{Node, Term};
///
/// let node = Node::local();
/// let (tx, rx) = async_channel::bounded(1);
/// node.spawn(move |mut me| async move {
///     let reply = me.receive().await;
///     let _ = tx.send(reply).await;
/// })
/// .and_then_send(Term::atom("hello"));
/// assert_eq!(snow_node_rt::block_on(rx.recv()).unwrap(), Term::atom("hello"));
/// ```
#[derive(Clone)]
pub struct Node {
    pub(crate) inner: Arc<NodeInner>,
}

/// The pid of a freshly spawned process, with a shortcut to send it a first message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Spawned {
    node: Node,
    pid: Pid,
}

impl Spawned {
    /// The new process's pid.
    pub fn pid(&self) -> &Pid {
        &self.pid
    }

    /// Sends `msg` to the new process and returns its pid.
    pub fn and_then_send(self, msg: Term) -> Pid {
        self.node.send(&self.pid, msg);
        self.pid
    }
}

impl From<Spawned> for Pid {
    fn from(s: Spawned) -> Pid {
        s.pid
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Node({}, creation {})", self.inner.name, self.inner.creation)
    }
}

impl PartialEq for Node {
    fn eq(&self, other: &Node) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for Node {}

impl std::hash::Hash for Node {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (Arc::as_ptr(&self.inner) as usize).hash(state)
    }
}

impl Node {
    /// A runtime that is not distributed: `nonode@nohost`, creation 0.
    pub fn local() -> Node {
        Node::new(NodeName::local_only(), 0)
    }

    /// A runtime for node `name` in its `creation` (DESIGN.md 4.1). Pids it mints carry both, so
    /// they stay valid when sent to other nodes.
    pub fn new(name: NodeName, creation: u32) -> Node {
        let shards = (0..SHARDS).map(|_| RwLock::new(HashMap::default())).collect();
        Node {
            inner: Arc::new(NodeInner {
                name,
                creation,
                // Id 0 is the runtime itself (see `runtime_pid`), never a process.
                next_id: AtomicU64::new(1),
                refs: RefMint::new(),
                shards,
                live: AtomicUsize::new(0),
                registry: Mutex::new(HashMap::new()),
                router: RwLock::new(None),
                spawnables: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// This node's name.
    pub fn name(&self) -> &NodeName {
        &self.inner.name
    }

    /// This node's creation.
    pub fn creation(&self) -> u32 {
        self.inner.creation
    }

    /// The pid standing for "the runtime itself": the sender of signals and messages that code
    /// outside any process sends through [`Node::send`] or [`Node::exit`]. No process has it, so
    /// it is never alive.
    pub fn runtime_pid(&self) -> Pid {
        Pid::new(self.inner.name.clone(), 0, self.inner.creation)
    }

    /// A fresh reference (Erlang's `make_ref()`): unique on this node for its lifetime, and not
    /// guessable by other nodes (see [`RefMint`]), so a peer cannot forge a reply or a `:DOWN` for
    /// a request or monitor it was not told about.
    pub fn make_ref(&self) -> Ref {
        Ref::new(self.inner.name.clone(), self.inner.refs.next(), self.inner.creation)
    }

    /// Number of processes currently alive (or exiting) on this node.
    pub fn process_count(&self) -> usize {
        self.inner.live.load(Ordering::Relaxed)
    }

    /// Whether `pid` is a live process of this node (`false` for remote pids: ask their node).
    ///
    /// A process is not alive from the moment an exit is decided for it, even if its task has
    /// not finished cleaning up, so `exit(pid, :kill)` followed by `is_alive(pid)` gives `false`.
    pub fn is_alive(&self, pid: &Pid) -> bool {
        match self.route(pid) {
            Route::Local(p) => p.lock().status == proc::Status::Running,
            Route::Dead | Route::Remote => false,
        }
    }

    /// For tests: how many links, monitors on it, and monitors it holds the live local process
    /// `pid` has (`None` if it is not one). Tests use it to show that the relations of dead
    /// processes on other nodes are freed. Not a stable API.
    #[doc(hidden)]
    pub fn relation_counts(&self, pid: &Pid) -> Option<(usize, usize, usize)> {
        let Route::Local(p) = self.route(pid) else { return None };
        let mut st = p.lock();
        Some(st.rel_opt().map_or((0, 0, 0), |rel| (rel.links.len(), rel.watchers.len(), rel.monitoring.len())))
    }

    /// Whether `pid` belongs to this node and this creation.
    pub fn is_local(&self, pid: &Pid) -> bool {
        pid.node() == &self.inner.name && pid.creation() == self.inner.creation
    }

    /// Installs the distribution layer's router. Signals to pids of other nodes go through it;
    /// without one they behave as if sent to a dead process.
    pub fn set_router(&self, router: Arc<dyn RemoteRouter>) {
        *self.inner.router.write().unwrap_or_else(PoisonError::into_inner) = Some(router);
    }

    /// Removes the router (the node stops being distributed).
    pub fn clear_router(&self) {
        *self.inner.router.write().unwrap_or_else(PoisonError::into_inner) = None;
    }

    pub(crate) fn router(&self) -> Option<Arc<dyn RemoteRouter>> {
        self.inner.router.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Runs `f` on the router, if any, under the read lock: no reference count changes, for the
    /// per-message paths. `f` must be short and must not install or clear the router.
    pub(crate) fn with_router<T>(&self, f: impl FnOnce(&dyn RemoteRouter) -> T) -> Option<T> {
        self.inner.router.read().unwrap_or_else(PoisonError::into_inner).as_deref().map(f)
    }

    pub(crate) fn shard_of(&self, id: u64) -> &Shard {
        self.shard(id)
    }

    fn shard(&self, id: u64) -> &Shard {
        &self.inner.shards[(id as usize) % SHARDS]
    }

    /// Finds where `pid` lives.
    pub(crate) fn route(&self, pid: &Pid) -> Route {
        if pid.node() != &self.inner.name {
            return Route::Remote;
        }
        if pid.creation() != self.inner.creation {
            return Route::Dead;
        }
        match self.shard(pid.id()).read().unwrap_or_else(PoisonError::into_inner).get(&pid.id()) {
            Some(p) => Route::Local(p.clone()),
            None => Route::Dead,
        }
    }

    /// Mints the pid of a process about to be spawned, with its state, not yet running.
    pub(crate) fn prepare(&self) -> Arc<ProcShared> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        Arc::new(ProcShared::new(Pid::new(self.inner.name.clone(), id, self.inner.creation)))
    }

    /// Starts a prepared process running `body`.
    pub(crate) fn start<F, Fut>(&self, shared: Arc<ProcShared>, body: F) -> Pid
    where
        F: FnOnce(Process) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: IntoExitReason,
    {
        let pid = shared.pid.clone();
        self.shard(pid.id()).write().unwrap_or_else(PoisonError::into_inner).insert(pid.id(), shared.clone());
        self.inner.live.fetch_add(1, Ordering::Relaxed);
        let fut = body(Process::new(self.clone(), shared.clone()));
        // The join handle is dropped: the task is detached and reports its end through links
        // and monitors, like any process.
        drop(crate::sched::spawn(proc::run(self.clone(), shared, fut)));
        pid
    }

    /// Spawns a process running `body`, which gets the handle to its own mailbox.
    ///
    /// The body's output is its exit reason ([`IntoExitReason`]: `()` is `:normal`). A panic in
    /// the body ends the process with `{:panic, "message"}`; nothing else is affected.
    pub fn spawn<F, Fut>(&self, body: F) -> Spawned
    where
        F: FnOnce(Process) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: IntoExitReason,
    {
        let pid = self.start(self.prepare(), body);
        Spawned { node: self.clone(), pid }
    }

    /// Sends `msg` to `pid` from outside any process (the sender is [`Node::runtime_pid`]).
    /// Never blocks; a dead pid makes it a no-op.
    pub fn send(&self, pid: &Pid, msg: Term) {
        // Sends from outside any process are never refused (README, "Guarantees").
        let _ = self.send_message(None, pid, msg);
    }

    /// Sends an exit signal to `pid` from outside any process (the sender is
    /// [`Node::runtime_pid`]); see [`Process::send_exit`] for what the target does with it.
    pub fn exit(&self, pid: &Pid, reason: Term) {
        let _ = self.exit_signal(&self.runtime_pid(), pid, reason, false);
    }

    /// The exit procedure, run by the process's own task: mark dead, free the name, fire links
    /// and monitors, drop the mailbox.
    pub(crate) fn finish(&self, shared: &ProcShared, reason: Term) {
        let pid = &shared.pid;
        let (relations, name, inbox) = shared.mark_dead();
        self.shard(pid.id()).write().unwrap_or_else(PoisonError::into_inner).remove(&pid.id());
        self.inner.live.fetch_sub(1, Ordering::Relaxed);
        log::debug!("{}: process {pid} exited: {reason} ({} messages dropped)", self.inner.name, inbox.len());
        drop(inbox);
        if let Some(name) = name {
            self.registry_forget(&name, pid);
        }
        let Some(rel) = relations else { return };
        // A dying process is past every suspension point: backpressure no longer applies to it.
        for linked in rel.links {
            let _ = self.exit_signal(pid, &linked, reason.clone(), true);
        }
        for (reference, watcher) in rel.watchers {
            self.down(&watcher, &reference, pid, reason.clone());
        }
        for (reference, monitoring) in rel.monitoring {
            let _ = self.forget_watcher(pid, &monitoring, &reference);
        }
        if rel.tell_router_on_exit {
            if let Some(router) = self.router() {
                router.process_exited(pid);
            }
        }
    }

    /// Every local process, for node-wide sweeps (connection loss).
    pub(crate) fn all_processes(&self) -> Vec<Arc<ProcShared>> {
        let mut all = Vec::with_capacity(self.process_count());
        for shard in self.inner.shards.iter() {
            all.extend(shard.read().unwrap_or_else(PoisonError::into_inner).values().cloned());
        }
        all
    }
}
