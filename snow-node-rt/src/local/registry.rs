//! The local name registry: one name, one live process; a process has at most one name.
//!
//! Names are freed when their process exits, before its links and monitors fire, so a
//! supervisor restarting a child under the same name never finds the name still taken.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use snow_shared::{Atom, Pid};

use super::table::ProcessTable;
use crate::error::{RegisterError, UnregisterError};

/// Names of one node's processes.
#[derive(Default)]
pub(crate) struct Registry {
    names: Mutex<HashMap<Atom, Pid>>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<Atom, Pid>> {
        self.names.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers the live process `pid` of `table` as `name`.
    pub fn register(&self, table: &ProcessTable, name: &str, pid: &Pid) -> Result<(), RegisterError> {
        if name.is_empty() || name == "undefined" {
            return Err(RegisterError::Reserved(name.to_owned()));
        }
        let Some(p) = table.get(pid) else { return Err(RegisterError::NotAlive(pid.clone())) };
        let mut names = self.lock();
        if let Some(holder) = names.get(name) {
            if holder == pid || is_live(table, holder) {
                return Err(RegisterError::NameTaken { name: Atom::new(name), holder: holder.clone() });
            }
        }
        let atom = Atom::new(name);
        match p.set_name(&atom) {
            Ok(()) => {}
            Err(None) => return Err(RegisterError::NotAlive(pid.clone())),
            Err(Some(existing)) => return Err(RegisterError::AlreadyRegistered { pid: pid.clone(), name: existing }),
        }
        names.insert(atom, pid.clone());
        log::debug!("{}: registered {name} as {pid}", table.name());
        Ok(())
    }

    /// Removes the name; the process keeps running.
    pub fn unregister(&self, table: &ProcessTable, name: &str) -> Result<(), UnregisterError> {
        let pid = self.lock().remove(name).ok_or_else(|| UnregisterError::NotRegistered(name.to_owned()))?;
        if let Some(p) = table.get(&pid) {
            p.clear_name(name);
        }
        Ok(())
    }

    /// The live process registered as `name`, if any.
    pub fn whereis(&self, table: &ProcessTable, name: &str) -> Option<Pid> {
        self.lock().get(name).filter(|pid| is_live(table, pid)).cloned()
    }

    /// All registered names, sorted.
    pub fn names(&self) -> Vec<Atom> {
        let mut names: Vec<Atom> = self.lock().keys().cloned().collect();
        names.sort();
        names
    }

    /// Frees `name` after `pid` died, unless someone else holds it by now.
    pub fn forget(&self, name: &Atom, pid: &Pid) {
        let mut names = self.lock();
        if names.get(name) == Some(pid) {
            names.remove(name);
        }
    }
}

/// A process that is running or exiting, not yet gone.
fn is_live(table: &ProcessTable, pid: &Pid) -> bool {
    table.get(pid).is_some_and(|p| !p.is_dead())
}
