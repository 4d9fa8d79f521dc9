//! What the handles of one node share: its process table, names, aliases, remote-spawn allow-list
//! and distribution layer ([`NodeState`]), and the [`Node`] handle on it. The operations a program
//! calls on a node are `node.rs`'s; this module only holds the state and its accessors, so that
//! every other module of the local layer can depend on it without depending on each other.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock, Weak};

use snow_shared::{Atom, Pid, Ref, Term};

use super::aliases::AliasTable;
use super::entry::ProcessEntry;
use super::registry::Registry;
use super::table::ProcessTable;
use crate::seam::{Backpressure, Distribution};

/// A function on the allow-list of remote spawn, as the node holds it: a way to start a prepared
/// process running the function with the spawn arguments.
pub(crate) trait AllowListed: Send + Sync {
    /// Starts the prepared process `entry` of `node`; its pid.
    fn start(&self, node: &Node, entry: Arc<ProcessEntry>, args: Term) -> Pid;
    /// Starts it to run the call `reference`: returning `value` ends it with the reason
    /// `{reference, :return, value}` ([`crate::reason::call_return`]).
    fn start_call(&self, node: &Node, entry: Arc<ProcessEntry>, args: Term, reference: Ref) -> Pid;
}

/// What a node handle shares: its processes, names, aliases, allow-list and distribution.
pub(crate) struct NodeState {
    /// This value's own `Arc`, to hand out [`Node`] handles from `&NodeState` (the [`Host`]
    /// implementation spawns processes, whose handle needs one).
    me: Weak<NodeState>,
    pub table: ProcessTable,
    pub registry: Registry,
    pub aliases: AliasTable,
    spawnables: RwLock<HashMap<Atom, Arc<dyn AllowListed>>>,
    distribution: RwLock<Option<Arc<dyn Distribution>>>,
}

impl NodeState {
    /// Sends `msg` to `alias` from `from` (`None`: outside any process): delivered here if the
    /// alias is this node's, else through the distribution layer (dropped without one).
    pub fn send_alias(&self, from: Option<&Pid>, alias: &Ref, msg: Term) -> Backpressure {
        if alias.node() == self.table.name() {
            self.deliver_alias(alias, msg);
            return Backpressure::Clear;
        }
        self.with_distribution(|d| d.send_alias(from, alias, msg)).unwrap_or(Backpressure::Clear)
    }

    /// Delivers `msg` to the owner of the local `alias`, if it is active; whether it was.
    pub fn deliver_alias(&self, alias: &Ref, msg: Term) -> bool {
        match self.aliases.target(alias) {
            Some(owner) => self.table.with(&owner, |p| p.deliver(msg)).is_some(),
            None => false,
        }
    }

    /// The state of a new node, and its first handle.
    pub fn new_node(table: ProcessTable) -> Node {
        let aliases = AliasTable::new(table.name().clone(), table.creation());
        let inner = Arc::new_cyclic(|me| NodeState {
            me: me.clone(),
            aliases,
            table,
            registry: Registry::default(),
            spawnables: RwLock::new(HashMap::new()),
            distribution: RwLock::new(None),
        });
        Node { inner }
    }

    /// Installs (or, with `None`, removes and returns) the distribution layer.
    pub fn set_distribution(&self, distribution: Option<Arc<dyn Distribution>>) -> Option<Arc<dyn Distribution>> {
        std::mem::replace(&mut *self.distribution.write().unwrap_or_else(PoisonError::into_inner), distribution)
    }

    /// Adds (or replaces) an allow-listed function.
    pub fn add_spawnable(&self, name: Atom, function: Arc<dyn AllowListed>) {
        self.spawnables.write().unwrap_or_else(PoisonError::into_inner).insert(name, function);
    }

    /// A handle on this node.
    pub fn handle(&self) -> Option<Node> {
        self.me.upgrade().map(|inner| Node { inner })
    }

    /// Runs `f` on the distribution layer, if any, under the read lock: no reference count
    /// changes, for the per-message paths. `f` must be short and must not install or remove it.
    pub fn with_distribution<T>(&self, f: impl FnOnce(&dyn Distribution) -> T) -> Option<T> {
        self.distribution.read().unwrap_or_else(PoisonError::into_inner).as_deref().map(f)
    }

    pub fn distribution(&self) -> Option<Arc<dyn Distribution>> {
        self.distribution.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn spawnable(&self, function: &Atom) -> Option<Arc<dyn AllowListed>> {
        self.spawnables.read().unwrap_or_else(PoisonError::into_inner).get(function).cloned()
    }
}

/// A runtime: the processes of one node. Cheap to clone (a shared handle).
///
/// A node that is not distributed is [`Node::local`] (`nonode@nohost`, creation 0). A distributed
/// node is started by [`NodeBuilder`](crate::dist::NodeBuilder) or
/// [`start_from_env`](crate::start_from_env), which give it its name and creation and
/// install the distribution layer.
///
/// ```
/// use snow_node_rt::{Node, Term};
///
/// let node = Node::local();
/// let (tx, rx) = async_channel::bounded(1);
/// let pid = node.spawn(move |mut me| async move {
///     let greeting = me.receive().await;
///     let _ = tx.send(greeting).await;
/// });
/// node.send(&pid, Term::atom("hello"));
/// assert_eq!(snow_node_rt::block_on(rx.recv()).unwrap(), Term::atom("hello"));
/// ```
#[derive(Clone)]
pub struct Node {
    pub(crate) inner: Arc<NodeState>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Node({}, creation {})", self.inner.table.name(), self.inner.table.creation())
    }
}

impl PartialEq for Node {
    fn eq(&self, other: &Node) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for Node {}

impl std::hash::Hash for Node {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (Arc::as_ptr(&self.inner) as usize).hash(state)
    }
}
