//! Process aliases (Erlang's `alias/0,1`, `unalias/1`): references a process made deliverable.
//! A message sent to an active alias lands in its owner's mailbox; one sent to an inactive alias
//! (unaliased, used up, or its owner gone) is dropped, as is one sent to any other reference.
//!
//! The table is the node's: alias numbers are the node's unguessable reference numbers, so a
//! peer cannot aim at an alias it was not given. An alias is the owner's alone: only the owner
//! deactivates it, and it goes when the owner exits.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use snow_shared::{NodeName, Pid, Ref};

/// How long an alias stays active.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AliasMode {
    /// Until its owner calls [`Process::unalias`](crate::Process::unalias) or exits (Erlang's
    /// `alias()` / `alias([explicit_unalias])`).
    #[default]
    Explicit,
    /// Also deactivated by the first message sent to it (Erlang's `alias([reply])`): the reply
    /// to one request, and nothing after it.
    ReplyOnce,
}

struct Alias {
    owner: Pid,
    mode: AliasMode,
}

#[derive(Default)]
struct Inner {
    /// Active aliases by reference number.
    by_number: HashMap<u64, Alias>,
    /// The alias numbers of each owner, by pid number: what goes when it exits.
    by_owner: HashMap<u64, Vec<u64>>,
}

/// The active aliases of one node's processes.
pub(crate) struct AliasTable {
    name: NodeName,
    creation: u32,
    inner: Mutex<Inner>,
    /// How many aliases are active: a process exit looks at the table only when there are any.
    active: AtomicUsize,
}

impl AliasTable {
    pub fn new(name: NodeName, creation: u32) -> AliasTable {
        AliasTable { name, creation, inner: Mutex::new(Inner::default()), active: AtomicUsize::new(0) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `alias` is a reference of this node and creation (only those can be aliases here).
    fn is_ours(&self, alias: &Ref) -> bool {
        alias.node() == &self.name && alias.creation() == self.creation
    }

    /// Makes the fresh reference `alias` an alias of the live local `owner`.
    pub fn add(&self, owner: &Pid, alias: &Ref, mode: AliasMode) {
        let mut inner = self.lock();
        inner.by_number.insert(alias.id(), Alias { owner: owner.clone(), mode });
        inner.by_owner.entry(owner.id()).or_default().push(alias.id());
        self.active.store(inner.by_number.len(), Ordering::Release);
    }

    /// Deactivates `alias` if `owner` owns it and it is active; whether it was.
    pub fn remove(&self, owner: &Pid, alias: &Ref) -> bool {
        if !self.is_ours(alias) {
            return false;
        }
        let mut inner = self.lock();
        match inner.by_number.get(&alias.id()) {
            Some(a) if &a.owner == owner => {}
            _ => return false,
        }
        Self::forget(&mut inner, alias.id());
        self.active.store(inner.by_number.len(), Ordering::Release);
        true
    }

    /// The owner a message to `alias` goes to, if the alias is active; a reply-once alias is
    /// deactivated by this.
    pub fn target(&self, alias: &Ref) -> Option<Pid> {
        if !self.is_ours(alias) || self.active.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut inner = self.lock();
        let alias_entry = inner.by_number.get(&alias.id())?;
        let owner = alias_entry.owner.clone();
        if alias_entry.mode == AliasMode::ReplyOnce {
            Self::forget(&mut inner, alias.id());
            self.active.store(inner.by_number.len(), Ordering::Release);
        }
        Some(owner)
    }

    /// `owner` exited: its aliases go.
    pub fn owner_exited(&self, owner: &Pid) {
        if self.active.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut inner = self.lock();
        for number in inner.by_owner.remove(&owner.id()).unwrap_or_default() {
            inner.by_number.remove(&number);
        }
        self.active.store(inner.by_number.len(), Ordering::Release);
    }

    /// How many aliases are active (tests' view of the table).
    pub fn len(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    fn forget(inner: &mut Inner, number: u64) {
        if let Some(alias) = inner.by_number.remove(&number) {
            let id = alias.owner.id();
            if let Some(numbers) = inner.by_owner.get_mut(&id) {
                numbers.retain(|n| *n != number);
                if numbers.is_empty() {
                    inner.by_owner.remove(&id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> AliasTable {
        AliasTable::new(NodeName::parse("a@h").unwrap(), 1)
    }

    fn pid(id: u64) -> Pid {
        Pid::new(NodeName::parse("a@h").unwrap(), id, 1)
    }

    fn alias(id: u64) -> Ref {
        Ref::new(NodeName::parse("a@h").unwrap(), id, 1)
    }

    #[test]
    fn an_alias_delivers_until_unaliased_and_only_its_owner_unaliases() {
        let t = table();
        t.add(&pid(1), &alias(10), AliasMode::Explicit);
        assert_eq!(t.target(&alias(10)), Some(pid(1)));
        assert_eq!(t.target(&alias(10)), Some(pid(1)));
        assert!(!t.remove(&pid(2), &alias(10)), "another process cannot unalias it");
        assert!(t.remove(&pid(1), &alias(10)));
        assert!(!t.remove(&pid(1), &alias(10)), "already inactive");
        assert_eq!(t.target(&alias(10)), None);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn a_reply_once_alias_takes_one_message() {
        let t = table();
        t.add(&pid(1), &alias(10), AliasMode::ReplyOnce);
        assert_eq!(t.target(&alias(10)), Some(pid(1)));
        assert_eq!(t.target(&alias(10)), None);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn aliases_go_with_their_owner_and_foreign_references_are_never_aliases() {
        let t = table();
        t.add(&pid(1), &alias(10), AliasMode::Explicit);
        t.add(&pid(1), &alias(11), AliasMode::ReplyOnce);
        t.add(&pid(2), &alias(12), AliasMode::Explicit);
        t.owner_exited(&pid(1));
        assert_eq!((t.target(&alias(10)), t.target(&alias(11))), (None, None));
        assert_eq!(t.target(&alias(12)), Some(pid(2)));
        // The same number from another node or an older creation names nothing here.
        assert_eq!(t.target(&Ref::new(NodeName::parse("b@h").unwrap(), 12, 1)), None);
        assert_eq!(t.target(&Ref::new(NodeName::parse("a@h").unwrap(), 12, 2)), None);
        assert_eq!(t.len(), 1);
    }
}
