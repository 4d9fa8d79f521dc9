//! A set of pids kept as a slice, so a group's members on one node can be handed out without
//! copying, with constant-time insert and remove.

use std::collections::HashMap;

use crate::pid::Pid;

/// Pids in a vector plus an index of their positions. Removal swaps the last pid into the hole,
/// so the order is insertion order only until the first removal.
#[derive(Clone, Debug, Default)]
pub(crate) struct PidSet {
    pids: Vec<Pid>,
    index: HashMap<Pid, usize>,
}

impl PidSet {
    /// Adds `pid`; whether it was absent.
    pub fn insert(&mut self, pid: Pid) -> bool {
        if self.index.contains_key(&pid) {
            return false;
        }
        self.index.insert(pid.clone(), self.pids.len());
        self.pids.push(pid);
        true
    }

    /// Removes `pid`; whether it was present.
    pub fn remove(&mut self, pid: &Pid) -> bool {
        let Some(at) = self.index.remove(pid) else { return false };
        self.pids.swap_remove(at);
        if let Some(moved) = self.pids.get(at) {
            self.index.insert(moved.clone(), at);
        }
        true
    }

    /// The pids.
    pub fn as_slice(&self) -> &[Pid] {
        &self.pids
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.pids.is_empty()
    }

    /// Number of pids.
    pub fn len(&self) -> usize {
        self.pids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::NodeName;

    #[test]
    fn inserts_and_removals_keep_the_slice_and_index_in_step() {
        let node = NodeName::parse("a@h").unwrap();
        let pid = |i| Pid::new(node.clone(), i, 1);
        let mut set = PidSet::default();
        for i in 0..5 {
            assert!(set.insert(pid(i)));
        }
        assert!(!set.insert(pid(2)), "no duplicates");
        assert!(set.remove(&pid(1)));
        assert!(!set.remove(&pid(1)));
        assert!(set.remove(&pid(4)), "the last one");
        let mut left: Vec<u64> = set.as_slice().iter().map(Pid::id).collect();
        left.sort_unstable();
        assert_eq!(left, [0, 2, 3]);
        for (at, p) in set.as_slice().iter().enumerate() {
            assert_eq!(set.index[p], at, "the index points at each pid");
        }
        assert!(set.remove(&pid(0)) && set.remove(&pid(2)) && set.remove(&pid(3)));
        assert!(set.is_empty());
        assert_eq!(set.len(), 0);
    }
}
