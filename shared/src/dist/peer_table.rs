//! Which connection serves each peer node, and the rules that move a peer between states, as a
//! value (no sockets, no tasks): a peer is **connecting** (frames queued while its connection is
//! set up, and who waits for the outcome) or **up** (its connection).
//!
//! The decisions made here:
//! - where a frame goes ([`PeerTable::route`]): onto the peer's connection, into its pending
//!   queue while it connects (refused at a ceiling), or into a new pending queue, in which case
//!   the driver must start a connection attempt;
//! - whether an authenticated incoming connection is kept ([`PeerTable::decide`]): a peer that
//!   restarted (new creation) replaces its old connection; on simultaneous connects the one
//!   dialed by the node whose name sorts first is kept, on both sides
//!   ([`keep_initiated`](super::handshake::keep_initiated));
//! - installing a connection hands over what was queued for it, to be queued on the connection
//!   while the caller still holds the table (so a sender can never queue ahead of it: per-sender
//!   order across the connecting phase);
//! - which node watches fire when a node goes ([`NodeWatches`]).
//!
//! Generic over the driver's connection handle `C` and its outcome waiter `W`.

use std::collections::{HashMap, HashSet};
use std::task::Waker;

use super::outbound::Lane;
use crate::{NodeName, Pid};

/// Frames and waiters of a node whose connection is being set up.
#[derive(Debug)]
pub struct Pending<W> {
    /// Frames queued meanwhile, in queueing order.
    pub queue: Vec<(Lane, Vec<u8>)>,
    /// Their total size.
    pub bytes: usize,
    /// Those who wait for the outcome of the attempt.
    pub waiters: Vec<W>,
    /// Senders suspended because `bytes` reached the budget: wake them when the queue moves onto
    /// the connection (they then wait on it if it is still over budget) or the attempt ends.
    pub room: Vec<Waker>,
}

impl<W> Default for Pending<W> {
    fn default() -> Self {
        Pending { queue: Vec::new(), bytes: 0, waiters: Vec::new(), room: Vec::new() }
    }
}

impl<W> Pending<W> {
    /// Wakes the suspended senders.
    pub fn wake_room(&mut self) {
        for waker in self.room.drain(..) {
            waker.wake();
        }
    }
}

/// Where a peer node stands.
#[derive(Debug)]
pub enum Peer<C, W> {
    /// Its connection is being set up.
    Connecting(Pending<W>),
    /// Its connection is up.
    Up(C),
}

/// Where [`PeerTable::route`] put a frame.
#[derive(Debug)]
pub enum Routed<C> {
    /// The peer is up: queue the frame (handed back) on this connection.
    Connection(C, Vec<u8>),
    /// Queued while the peer connects; `bytes` are now queued for it.
    Queued {
        /// Bytes queued for the peer, this frame included.
        bytes: usize,
    },
    /// The peer had no entry: the frame is queued and the driver must start an attempt.
    StartAttempt,
    /// Not queued: the pending queue is at the ceiling given (the frame is handed back).
    AtCeiling(Vec<u8>),
    /// Not queued: the node is this one, or the table is closing.
    Dropped,
}

/// What [`PeerTable::ensure`] found.
#[derive(Debug)]
pub enum Ensured<W> {
    /// The peer is up (the waiter is handed back, to be told at once).
    Up(Option<W>),
    /// An attempt is under way; the waiter was added to it.
    Waiting,
    /// A new pending entry was made (with the waiter): the driver must start an attempt.
    StartAttempt,
    /// The table is closing (the waiter is handed back, to be told).
    Closing(Option<W>),
}

/// The verdict on an authenticated incoming connection ([`PeerTable::decide`]).
#[derive(Debug)]
pub enum Verdict<C, W> {
    /// Keep it: it is installed. `replaced` is the peer's previous connection (it restarted),
    /// `pending` what was queued for the peer and who waited: queue `pending.queue` on the new
    /// connection before releasing the table.
    Accept {
        /// The connection of the peer's previous creation, to close and report down.
        replaced: Option<C>,
        /// What waited for a connection to the peer.
        pending: Option<Pending<W>>,
    },
    /// Refuse it: another connection with that node is kept.
    Duplicate,
}

/// What [`PeerTable::poll_room`] found for a suspended sender.
#[derive(Debug)]
pub enum Room<C> {
    /// The peer is up: ask its connection.
    Connection(C),
    /// The sender may go on (the pending queue is under the budget, or the peer is gone).
    Ready,
    /// Still over the budget while connecting: the waker was registered.
    Wait,
}

/// The peers of one node.
#[derive(Debug)]
pub struct PeerTable<C, W> {
    local: NodeName,
    peers: HashMap<NodeName, Peer<C, W>>,
    closing: bool,
}

impl<C: Clone, W> PeerTable<C, W> {
    /// An empty table for node `local` (frames for it are dropped, never dialed).
    pub fn new(local: NodeName) -> Self {
        PeerTable { local, peers: HashMap::new(), closing: false }
    }

    /// Routes a frame for `node` (see the module documentation). A frame for a connecting peer
    /// is refused when `ceiling` is given and the pending queue holds that many bytes or more.
    pub fn route(&mut self, node: &NodeName, lane: Lane, frame: Vec<u8>, ceiling: Option<usize>) -> Routed<C> {
        match self.peers.get_mut(node) {
            Some(Peer::Up(conn)) => Routed::Connection(conn.clone(), frame),
            Some(Peer::Connecting(pending)) => {
                if ceiling.is_some_and(|ceiling| pending.bytes >= ceiling) {
                    return Routed::AtCeiling(frame);
                }
                pending.bytes += frame.len();
                pending.queue.push((lane, frame));
                Routed::Queued { bytes: pending.bytes }
            }
            None => {
                if self.closing || node == &self.local {
                    return Routed::Dropped;
                }
                let pending = Pending { bytes: frame.len(), queue: vec![(lane, frame)], ..Pending::default() };
                self.peers.insert(node.clone(), Peer::Connecting(pending));
                Routed::StartAttempt
            }
        }
    }

    /// Makes sure a connection to `node` exists or is being made; `waiter` (if any) is told the
    /// outcome.
    pub fn ensure(&mut self, node: &NodeName, waiter: Option<W>) -> Ensured<W> {
        match self.peers.get_mut(node) {
            Some(Peer::Up(_)) => Ensured::Up(waiter),
            Some(Peer::Connecting(pending)) => {
                pending.waiters.extend(waiter);
                Ensured::Waiting
            }
            None if self.closing => Ensured::Closing(waiter),
            None => {
                let pending = Pending { waiters: waiter.into_iter().collect(), ..Pending::default() };
                self.peers.insert(node.clone(), Peer::Connecting(pending));
                Ensured::StartAttempt
            }
        }
    }

    /// Adds `waiter` to `node`'s connection attempt, if one is under way; else hands it back with
    /// whether the node is up.
    pub fn wait_for(&mut self, node: &NodeName, waiter: W) -> Result<(), (W, bool)> {
        match self.peers.get_mut(node) {
            Some(Peer::Connecting(pending)) => {
                pending.waiters.push(waiter);
                Ok(())
            }
            Some(Peer::Up(_)) => Err((waiter, true)),
            None => Err((waiter, false)),
        }
    }

    /// The connection to `node`, if it is up.
    pub fn connection(&self, node: &NodeName) -> Option<&C> {
        match self.peers.get(node) {
            Some(Peer::Up(conn)) => Some(conn),
            _ => None,
        }
    }

    /// Whether `node` has an entry (up or connecting).
    pub fn knows(&self, node: &NodeName) -> bool {
        self.peers.contains_key(node)
    }

    /// Whether a connection that `dialer` says it is dialing may be refused before TLS
    /// ([`early_refusal`](super::early_refusal)): this node is dialing it too, and its own
    /// connection is the one [`decide`](Self::decide) would keep.
    pub fn refuses_before_tls(&self, dialer: &NodeName) -> bool {
        self.is_connecting(dialer) && super::handshake::keep_initiated(&self.local, dialer)
    }

    /// Whether a connection attempt to `node` is under way.
    pub fn is_connecting(&self, node: &NodeName) -> bool {
        matches!(self.peers.get(node), Some(Peer::Connecting(_)))
    }

    /// Bytes queued for `node` while it connects (`None` if it is not connecting).
    pub fn pending_bytes(&self, node: &NodeName) -> Option<usize> {
        match self.peers.get(node) {
            Some(Peer::Connecting(pending)) => Some(pending.bytes),
            _ => None,
        }
    }

    /// The nodes whose connection is up, sorted.
    pub fn connected(&self) -> Vec<NodeName> {
        let mut up: Vec<NodeName> =
            self.peers.iter().filter(|(_, p)| matches!(p, Peer::Up(_))).map(|(n, _)| n.clone()).collect();
        up.sort();
        up
    }

    /// The nodes being connected to.
    pub fn connecting(&self) -> HashSet<NodeName> {
        self.peers.iter().filter(|(_, p)| matches!(p, Peer::Connecting(_))).map(|(n, _)| n.clone()).collect()
    }

    /// How many nodes are being connected to (what [`PeerTable::connecting`] would list).
    pub fn connecting_count(&self) -> usize {
        self.peers.values().filter(|p| matches!(p, Peer::Connecting(_))).count()
    }

    /// A suspended sender to `node` asks whether it may go on (registering `waker` if not).
    pub fn poll_room(&mut self, node: &NodeName, budget: usize, waker: &Waker) -> Room<C> {
        match self.peers.get_mut(node) {
            Some(Peer::Up(conn)) => Room::Connection(conn.clone()),
            Some(Peer::Connecting(pending)) if pending.bytes >= budget => {
                pending.room.push(waker.clone());
                Room::Wait
            }
            Some(Peer::Connecting(_)) | None => Room::Ready,
        }
    }

    /// Acceptor side: an authenticated connection `make` from `peer` (of `creation`) is kept or
    /// refused; if kept, it is installed (see [`Verdict::Accept`]). `creation_of` tells the
    /// creation of an installed connection.
    pub fn decide(
        &mut self,
        peer: &NodeName,
        creation: u32,
        creation_of: impl Fn(&C) -> u32,
        make: impl FnOnce() -> C,
    ) -> Verdict<C, W> {
        let replaced = match self.peers.get(peer) {
            Some(Peer::Up(old)) if creation_of(old) == creation => return Verdict::Duplicate,
            Some(Peer::Up(old)) => Some(old.clone()),
            Some(Peer::Connecting(_)) if super::handshake::keep_initiated(&self.local, peer) => {
                return Verdict::Duplicate
            }
            _ => None,
        };
        let pending = match self.peers.insert(peer.clone(), Peer::Up(make())) {
            Some(Peer::Connecting(pending)) => Some(pending),
            _ => None,
        };
        Verdict::Accept { replaced, pending }
    }

    /// Initiator side, the acceptor said yes: installs `conn` for `peer`. Returns the connection
    /// it replaced (the peer restarted) or what waited for it (queue it on `conn` before
    /// releasing the table).
    pub fn install(&mut self, peer: &NodeName, conn: C) -> (Option<C>, Option<Pending<W>>) {
        match self.peers.insert(peer.clone(), Peer::Up(conn)) {
            Some(Peer::Up(old)) => (Some(old), None),
            Some(Peer::Connecting(pending)) => (None, Some(pending)),
            None => (None, None),
        }
    }

    /// The attempt to connect to `node` failed: its pending entry, if it still has one.
    pub fn attempt_failed(&mut self, node: &NodeName) -> Option<Pending<W>> {
        match self.peers.get(node) {
            Some(Peer::Connecting(_)) => match self.peers.remove(node) {
                Some(Peer::Connecting(pending)) => Some(pending),
                _ => None,
            },
            _ => None,
        }
    }

    /// Removes `node`'s connection if `is_it` says it is the one installed; whether it was (a
    /// superseded connection going down changes nothing).
    pub fn remove_if_current(&mut self, node: &NodeName, is_it: impl Fn(&C) -> bool) -> bool {
        match self.peers.get(node) {
            Some(Peer::Up(conn)) if is_it(conn) => {
                self.peers.remove(node);
                true
            }
            _ => false,
        }
    }

    /// Closes the table: no new entries from now on; every peer is handed back.
    pub fn close(&mut self) -> Vec<(NodeName, Peer<C, W>)> {
        self.closing = true;
        self.peers.drain().collect()
    }

    /// Whether the table is closing.
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// (peers, of which connecting, frames queued for connecting peers): for tests that check
    /// nothing is left behind.
    pub fn sizes(&self) -> (usize, usize, usize) {
        let (mut connecting, mut queued) = (0, 0);
        for peer in self.peers.values() {
            if let Peer::Connecting(pending) = peer {
                connecting += 1;
                queued += pending.queue.len();
            }
        }
        (self.peers.len(), connecting, queued)
    }
}

/// Who watches which nodes: `monitor_node` watches (one `{:nodedown, node}` each, then gone) and
/// `monitor_nodes` subscribers (every nodeup and nodedown).
#[derive(Debug, Default)]
pub struct NodeWatches {
    once: HashMap<NodeName, Vec<Pid>>,
    all: HashSet<Pid>,
}

impl NodeWatches {
    /// `watcher` gets one `{:nodedown, node}`.
    pub fn watch(&mut self, node: &NodeName, watcher: &Pid) {
        self.once.entry(node.clone()).or_default().push(watcher.clone());
    }

    /// Removes one watch of `watcher` on `node`; whether there was one.
    pub fn unwatch(&mut self, node: &NodeName, watcher: &Pid) -> bool {
        let Some(list) = self.once.get_mut(node) else { return false };
        let Some(at) = list.iter().position(|p| p == watcher) else { return false };
        list.remove(at);
        if list.is_empty() {
            self.once.remove(node);
        }
        true
    }

    /// Subscribes or unsubscribes `watcher` to every node event.
    pub fn subscribe(&mut self, watcher: &Pid, on: bool) {
        if on {
            self.all.insert(watcher.clone());
        } else {
            self.all.remove(watcher);
        }
    }

    /// `pid` exited: drops all its watches and its subscription.
    pub fn forget(&mut self, pid: &Pid) {
        self.all.remove(pid);
        self.once.retain(|_, watchers| {
            watchers.retain(|w| w != pid);
            !watchers.is_empty()
        });
    }

    /// Who hears of a node coming up: the subscribers.
    pub fn subscribers(&self) -> Vec<Pid> {
        self.all.iter().cloned().collect()
    }

    /// Who hears `{:nodedown, node}`: its watches (taken: each fires once) and, if the node was
    /// up, the subscribers.
    pub fn take_for_down(&mut self, node: &NodeName, was_up: bool) -> Vec<Pid> {
        let mut told = self.once.remove(node).unwrap_or_default();
        if was_up {
            told.extend(self.all.iter().cloned());
        }
        told
    }

    /// Watches and subscriptions held.
    pub fn len(&self) -> usize {
        self.once.values().map(Vec::len).sum::<usize>() + self.all.len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> NodeName {
        NodeName::parse(text).unwrap()
    }

    /// A connection handle: the peer's creation and a serial number.
    type Conn = (u32, u32);

    fn table(local: &str) -> PeerTable<Conn, &'static str> {
        PeerTable::new(name(local))
    }

    #[test]
    fn frames_wait_in_order_while_connecting_and_move_onto_the_connection() {
        let mut t = table("a@h");
        let b = name("b@h");
        assert!(matches!(t.route(&b, Lane::Sender(1), vec![1; 10], None), Routed::StartAttempt));
        assert!(matches!(t.route(&b, Lane::Sender(1), vec![2; 5], None), Routed::Queued { bytes: 15 }));
        assert!(matches!(t.route(&b, Lane::Urgent, vec![3; 5], Some(15)), Routed::AtCeiling(_)));
        assert!(matches!(t.route(&b, Lane::Urgent, vec![3; 5], None), Routed::Queued { bytes: 20 }));
        assert!(matches!(t.ensure(&b, Some("waiter")), Ensured::Waiting));
        assert_eq!(t.sizes(), (1, 1, 3));
        let (replaced, pending) = t.install(&b, (7, 1));
        assert!(replaced.is_none());
        let pending = pending.unwrap();
        let order: Vec<u8> = pending.queue.iter().map(|(_, f)| f[0]).collect();
        assert_eq!(order, [1, 2, 3], "queueing order kept");
        assert_eq!(pending.waiters, ["waiter"]);
        assert!(matches!(t.route(&b, Lane::Sender(1), vec![4], Some(0)), Routed::Connection((7, 1), _)));
        assert_eq!(t.connected(), vec![b]);
    }

    #[test]
    fn frames_for_this_node_or_after_closing_are_dropped() {
        let mut t = table("a@h");
        assert!(matches!(t.route(&name("a@h"), Lane::Urgent, vec![1], None), Routed::Dropped));
        t.ensure(&name("b@h"), None);
        let closed = t.close();
        assert_eq!(closed.len(), 1);
        assert!(matches!(t.route(&name("c@h"), Lane::Urgent, vec![1], None), Routed::Dropped));
        assert!(matches!(t.ensure(&name("c@h"), Some("w")), Ensured::Closing(Some("w"))));
        assert_eq!(t.sizes(), (0, 0, 0));
    }

    #[test]
    fn simultaneous_connects_keep_the_one_dialed_by_the_smaller_name_on_both_sides() {
        let (a, b) = (name("a@h"), name("b@h"));
        let mut at_a = table("a@h");
        let mut at_b = table("b@h");
        // Both dial: both have a pending entry when the other's connection arrives.
        at_a.ensure(&b, None);
        at_b.ensure(&a, None);
        // a's incoming connection (dialed by b) is refused: a dialed too and a < b.
        assert!(matches!(at_a.decide(&b, 2, |c| c.0, || (2, 1)), Verdict::Duplicate));
        // b accepts a's connection (dialed by a): it takes over b's pending entry.
        match at_b.decide(&a, 1, |c| c.0, || (1, 9)) {
            Verdict::Accept { replaced: None, pending: Some(_) } => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(at_b.connection(&a), Some(&(1, 9)));
    }

    #[test]
    fn a_restarted_peer_replaces_its_old_connection_and_a_duplicate_is_refused() {
        let mut t = table("b@h");
        let a = name("a@h");
        t.install(&a, (1, 1));
        assert!(matches!(t.decide(&a, 1, |c| c.0, || (1, 2)), Verdict::Duplicate), "same creation");
        match t.decide(&a, 2, |c| c.0, || (2, 3)) {
            Verdict::Accept { replaced: Some((1, 1)), pending: None } => {}
            other => panic!("{other:?}"),
        }
        // Only the current connection's end removes the entry.
        assert!(!t.remove_if_current(&a, |c| *c == (1, 1)));
        assert!(t.remove_if_current(&a, |c| *c == (2, 3)));
        assert!(!t.knows(&a));
    }

    #[test]
    fn a_failed_attempt_hands_back_its_queue_and_waiters_once() {
        let mut t = table("a@h");
        let b = name("b@h");
        t.route(&b, Lane::Urgent, vec![1], None);
        t.ensure(&b, Some("w"));
        let pending = t.attempt_failed(&b).unwrap();
        assert_eq!((pending.queue.len(), pending.waiters), (1, vec!["w"]));
        assert!(t.attempt_failed(&b).is_none());
        t.install(&b, (1, 1));
        assert!(t.attempt_failed(&b).is_none(), "an up connection is not a failed attempt");
    }

    #[test]
    fn suspended_senders_wait_only_while_the_pending_queue_is_over_budget() {
        let mut t = table("a@h");
        let b = name("b@h");
        struct Noop;
        impl std::task::Wake for Noop {
            fn wake(self: std::sync::Arc<Self>) {}
        }
        let waker = &Waker::from(std::sync::Arc::new(Noop));
        assert!(matches!(t.poll_room(&b, 10, waker), Room::Ready), "unknown node");
        t.route(&b, Lane::Urgent, vec![0; 10], None);
        assert!(matches!(t.poll_room(&b, 10, waker), Room::Wait));
        assert!(matches!(t.poll_room(&b, 11, waker), Room::Ready));
        let (_, pending) = t.install(&b, (1, 1));
        assert_eq!(pending.unwrap().room.len(), 1);
        assert!(matches!(t.poll_room(&b, 10, waker), Room::Connection((1, 1))));
    }

    #[test]
    fn node_watches_fire_once_and_leave_nothing_for_exited_processes() {
        let (a, b) = (name("a@h"), name("b@h"));
        let (p, q) = (Pid::new(a.clone(), 1, 1), Pid::new(a.clone(), 2, 1));
        let mut w = NodeWatches::default();
        w.watch(&b, &p);
        w.watch(&b, &p);
        w.watch(&b, &q);
        w.subscribe(&q, true);
        assert!(w.unwatch(&b, &p));
        assert_eq!(w.len(), 3);
        let mut told = w.take_for_down(&b, true);
        told.sort();
        assert_eq!(told, vec![p.clone(), q.clone(), q.clone()]);
        assert_eq!(w.take_for_down(&b, false), Vec::<Pid>::new(), "watches fire once");
        w.watch(&a, &p);
        w.forget(&p);
        w.forget(&q);
        assert!(w.is_empty());
    }
}
