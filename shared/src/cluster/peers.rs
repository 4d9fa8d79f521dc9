//! The peers one cluster value talks to: the connected nodes that negotiated its capability, with
//! the creation each runs, so a message can be checked to speak only for its sender's processes.

use std::collections::BTreeMap;

use super::{PeerError, Transmit};
use crate::dist::control::Control;
use crate::dist::Flags;
use crate::name::NodeName;
use crate::pid::Pid;

/// Connected peers with one capability. Ordered by name, so broadcasts list them in a stable
/// order (the simulation replays the same schedule for the same seed).
#[derive(Clone, Debug)]
pub(crate) struct PeerSet {
    flag: Flags,
    peers: BTreeMap<NodeName, u32>,
}

/// What [`PeerSet::up`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PeerUp {
    /// The peer is new: synchronise with it.
    New,
    /// The peer lacks the capability: it is never sent this value's messages.
    Incapable,
}

impl PeerSet {
    /// An empty set for peers that negotiated `flag`.
    pub fn new(flag: Flags) -> PeerSet {
        PeerSet { flag, peers: BTreeMap::new() }
    }

    /// Records that a connection to `node` (running start `creation`) came up with the negotiated
    /// `flags`. The caller has removed any previous connection of `node` first.
    pub fn up(&mut self, node: NodeName, creation: u32, flags: Flags) -> PeerUp {
        if !flags.contains(self.flag) {
            return PeerUp::Incapable;
        }
        self.peers.insert(node, creation);
        PeerUp::New
    }

    /// Forgets `node`; whether it was a peer.
    pub fn down(&mut self, node: &NodeName) -> bool {
        self.peers.remove(node).is_some()
    }

    /// Whether `node` is a connected peer with the capability.
    pub fn contains(&self, node: &NodeName) -> bool {
        self.peers.contains_key(node)
    }

    /// The peers, in name order.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeName> {
        self.peers.keys()
    }

    /// A message to every peer, or `None` when there are none.
    pub fn broadcast(&self, message: Control) -> Option<Transmit> {
        if self.peers.is_empty() {
            return None;
        }
        Some(Transmit { to: self.peers.keys().cloned().collect(), message })
    }

    /// Checks that a message may be taken from `from`: it is a connected peer with the
    /// capability.
    pub fn check_sender(&self, from: &NodeName, message: &Control) -> Result<(), PeerError> {
        if self.contains(from) {
            Ok(())
        } else {
            Err(PeerError::UnknownPeer { from: from.clone(), message: message.name(), flag: self.flag })
        }
    }

    /// Checks that `pid` is a process of `from`'s current start: a node speaks only for its own
    /// processes.
    pub fn check_owned(&self, from: &NodeName, pid: &Pid, message: &'static str) -> Result<(), PeerError> {
        match self.peers.get(from) {
            Some(&creation) if pid.node() == from && pid.creation() == creation => Ok(()),
            _ => Err(PeerError::ForeignPid { from: from.clone(), message, pid: pid.clone() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(text: &str) -> NodeName {
        NodeName::parse(text).unwrap()
    }

    #[test]
    fn only_capable_peers_are_kept_and_they_speak_only_for_their_current_start() {
        let mut peers = PeerSet::new(Flags::GLOBAL);
        assert_eq!(peers.up(node("a@h"), 3, Flags::GROUPS), PeerUp::Incapable);
        assert!(!peers.contains(&node("a@h")));
        assert_eq!(peers.up(node("b@h"), 3, Flags::ALL), PeerUp::New);
        assert!(peers.check_owned(&node("b@h"), &Pid::new(node("b@h"), 1, 3), "X").is_ok());
        // Another node's pid, or an earlier start's, is refused.
        assert!(peers.check_owned(&node("b@h"), &Pid::new(node("a@h"), 1, 3), "X").is_err());
        assert!(peers.check_owned(&node("b@h"), &Pid::new(node("b@h"), 1, 2), "X").is_err());
        assert!(peers.check_sender(&node("a@h"), &Control::Tick).is_err());
        let all = peers.broadcast(Control::Tick).unwrap();
        assert_eq!(all.to, [node("b@h")]);
        assert!(peers.down(&node("b@h")));
        assert!(peers.broadcast(Control::Tick).is_none(), "nobody to send to");
    }
}
