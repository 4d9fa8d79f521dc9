//! Process and reference identifiers that carry their node's identity (README, "Guarantees (BEAM's)").

use std::fmt;

use crate::name::NodeName;

/// A process identifier: which node, which process on it, and which start of that node.
///
/// A pid from an older `creation` of a node names a process that no longer exists: messages to it
/// are dropped and monitors on it fire `:noproc` at once.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pid {
    node: NodeName,
    id: u64,
    creation: u32,
}

impl Pid {
    /// A pid on `node` with the node-local `id`, minted during the node's `creation`.
    pub fn new(node: NodeName, id: u64, creation: u32) -> Pid {
        Pid { node, id, creation }
    }

    /// The node the process lives on.
    pub fn node(&self) -> &NodeName {
        &self.node
    }

    /// The process number, unique on its node for the node's lifetime.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The start of the node this pid belongs to (0 for a runtime that is not distributed).
    pub fn creation(&self) -> u32 {
        self.creation
    }
}

/// `<name@host.ID.CREATION>`; a non-distributed runtime's pids show as `<0.ID.0>`.
impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.creation == 0 && self.node == NodeName::local_only() {
            write!(f, "<0.{}.0>", self.id)
        } else {
            write!(f, "<{}.{}.{}>", self.node, self.id, self.creation)
        }
    }
}

impl fmt::Debug for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A unique reference (monitor references, request tags), tied to the node that made it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ref {
    node: NodeName,
    id: u64,
    creation: u32,
}

impl Ref {
    /// A reference made on `node` during its `creation`, with a node-unique `id`.
    pub fn new(node: NodeName, id: u64, creation: u32) -> Ref {
        Ref { node, id, creation }
    }

    /// The node that made the reference.
    pub fn node(&self) -> &NodeName {
        &self.node
    }

    /// The reference number, unique on its node for the node's lifetime.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The start of the node that made the reference.
    pub fn creation(&self) -> u32 {
        self.creation
    }
}

/// `#Ref<name@host.ID.CREATION>`.
impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#Ref<{}.{}.{}>", self.node, self.id, self.creation)
    }
}

impl fmt::Debug for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display() {
        let node = NodeName::parse("a@h").unwrap();
        assert_eq!(Pid::new(node.clone(), 12, 3).to_string(), "<a@h.12.3>");
        assert_eq!(Pid::new(NodeName::local_only(), 7, 0).to_string(), "<0.7.0>");
        assert_eq!(Ref::new(node, 9, 3).to_string(), "#Ref<a@h.9.3>");
    }

    #[test]
    fn creation_distinguishes_pids() {
        let node = NodeName::parse("a@h").unwrap();
        assert_ne!(Pid::new(node.clone(), 1, 1), Pid::new(node, 1, 2));
    }
}
