//! The local name registry: one name, one live process; a process has at most one name.
//!
//! Names are freed when their process exits, before its links and monitors fire, so a
//! supervisor restarting a child under the same name never finds the name still taken.

use std::sync::PoisonError;

use snow_shared::{Atom, Pid};

use crate::error::{RegisterError, UnregisterError};
use crate::node::{Node, Route};
use crate::proc::Status;

impl Node {
    /// Registers `pid` (a live process of this node) as `name`.
    ///
    /// Fails if the name is taken by a live process, if the process already has a name, or if
    /// it is not alive. A process that is exiting but not yet gone counts as alive, as in BEAM
    /// before the exit signal is handled.
    pub fn register(&self, name: &str, pid: &Pid) -> Result<(), RegisterError> {
        if name.is_empty() || name == "undefined" {
            return Err(RegisterError::Reserved(name.to_owned()));
        }
        let Route::Local(p) = self.route(pid) else { return Err(RegisterError::NotAlive(pid.clone())) };
        let mut reg = self.inner.registry.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(holder) = reg.get(name) {
            if holder == pid || self.is_live_local(holder) {
                return Err(RegisterError::NameTaken { name: Atom::new(name), holder: holder.clone() });
            }
        }
        let mut st = p.lock();
        if st.status == Status::Dead {
            return Err(RegisterError::NotAlive(pid.clone()));
        }
        if let Some(existing) = &st.name {
            return Err(RegisterError::AlreadyRegistered { pid: pid.clone(), name: existing.clone() });
        }
        let atom = Atom::new(name);
        st.name = Some(atom.clone());
        reg.insert(atom, pid.clone());
        log::debug!("{}: registered {name} as {pid}", self.inner.name);
        Ok(())
    }

    /// Removes the name; the process keeps running.
    pub fn unregister(&self, name: &str) -> Result<(), UnregisterError> {
        let mut reg = self.inner.registry.lock().unwrap_or_else(PoisonError::into_inner);
        let pid = reg.remove(name).ok_or_else(|| UnregisterError::NotRegistered(name.to_owned()))?;
        if let Route::Local(p) = self.route(&pid) {
            let mut st = p.lock();
            if st.name.as_ref().is_some_and(|n| n.as_str() == name) {
                st.name = None;
            }
        }
        Ok(())
    }

    /// The live process registered as `name`, if any.
    pub fn whereis(&self, name: &str) -> Option<Pid> {
        let reg = self.inner.registry.lock().unwrap_or_else(PoisonError::into_inner);
        reg.get(name).filter(|pid| self.is_live_local(pid)).cloned()
    }

    /// All registered names, sorted.
    pub fn registered(&self) -> Vec<Atom> {
        let reg = self.inner.registry.lock().unwrap_or_else(PoisonError::into_inner);
        let mut names: Vec<Atom> = reg.keys().cloned().collect();
        names.sort();
        names
    }

    /// Sends `msg` to the process registered as `name`, from outside any process.
    pub fn send_named(&self, name: &str, msg: snow_shared::Term) -> Result<(), crate::error::SendError> {
        let pid = self.whereis(name).ok_or_else(|| crate::error::SendError::NotRegistered(name.to_owned()))?;
        self.send(&pid, msg);
        Ok(())
    }

    /// Frees `name` after `pid` died, unless someone else holds it by now.
    pub(crate) fn registry_forget(&self, name: &Atom, pid: &Pid) {
        let mut reg = self.inner.registry.lock().unwrap_or_else(PoisonError::into_inner);
        if reg.get(name) == Some(pid) {
            reg.remove(name);
        }
    }

    fn is_live_local(&self, pid: &Pid) -> bool {
        match self.route(pid) {
            Route::Local(p) => p.lock().status != Status::Dead,
            _ => false,
        }
    }
}
