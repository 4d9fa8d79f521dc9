//! The names a peer's node list named while a node already had as many connection attempts in
//! progress as it allows (transitive mesh): queued to dial as attempts end, each name once, in
//! the order they came, and bounded, so a hostile list cannot make the queue grow without limit.

use std::collections::{HashSet, VecDeque};

use crate::NodeName;

/// Most names a [`DialQueue`] holds; names beyond it are refused (a later node list names them
/// again).
pub const MAX_QUEUED_DIALS: usize = 1024;

/// Names to dial later, each once, in arrival order, at most [`MAX_QUEUED_DIALS`].
#[derive(Debug, Default)]
pub struct DialQueue {
    order: VecDeque<NodeName>,
    queued: HashSet<NodeName>,
}

impl DialQueue {
    /// Queues `node` unless it is queued already. `false` if the queue is full and `node` was
    /// not in it.
    pub fn push(&mut self, node: NodeName) -> bool {
        if self.queued.contains(&node) {
            return true;
        }
        if self.order.len() >= MAX_QUEUED_DIALS {
            return false;
        }
        self.queued.insert(node.clone());
        self.order.push_back(node);
        true
    }

    /// The name queued longest, taken out of the queue.
    pub fn pop(&mut self) -> Option<NodeName> {
        let node = self.order.pop_front()?;
        self.queued.remove(&node);
        Some(node)
    }

    /// How many names are queued.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether no name is queued.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(i: usize) -> NodeName {
        NodeName::parse(&format!("n{i}@h")).unwrap()
    }

    #[test]
    fn names_come_out_once_in_the_order_they_went_in() {
        let mut queue = DialQueue::default();
        for i in [1, 2, 1, 3, 2] {
            assert!(queue.push(name(i)));
        }
        assert_eq!(queue.len(), 3);
        let out: Vec<NodeName> = std::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(out, vec![name(1), name(2), name(3)]);
        assert!(queue.is_empty());
        // Taken out, a name may be queued again.
        assert!(queue.push(name(1)));
        assert_eq!(queue.pop(), Some(name(1)));
    }

    #[test]
    fn a_full_queue_refuses_new_names_but_not_queued_ones() {
        let mut queue = DialQueue::default();
        for i in 0..MAX_QUEUED_DIALS {
            assert!(queue.push(name(i)));
        }
        assert!(!queue.push(name(MAX_QUEUED_DIALS)));
        assert!(queue.push(name(0)), "already queued");
        assert_eq!(queue.len(), MAX_QUEUED_DIALS);
    }
}
