//! The global name registry of one node (Erlang's `global`, without its locks): the cluster-wide
//! name table as this node knows it, kept in step with its peers by the GLOBAL_* messages
//! (PROTOCOL.md 4.3.5). The consistency model and the comparison with `global` and `syn` are in
//! the [module overview](super).
//!
//! Every node is the authority for the claims of its own processes: it alone announces them
//! (GLOBAL_REGISTER, GLOBAL_SYNC when a connection comes up) and withdraws them
//! (GLOBAL_UNREGISTER). A node's table is the union of the claims its connected peers and itself
//! announced; when it holds several claims on one name, [`Global::whereis_name`] answers with the
//! claim that wins under [the conflict rule](Global#conflict-rule), and a node whose own process
//! holds a losing claim withdraws it at once and tells the process.

use std::cmp::Reverse;
use std::collections::{HashMap, VecDeque};

use super::hlc::HybridClock;
use super::peers::{PeerSet, PeerUp};
use super::{PeerError, Transmit};
use crate::dist::control::{Control, GlobalEntry};
use crate::dist::Flags;
use crate::name::NodeName;
use crate::pid::Pid;
use crate::term::Term;

/// Claims per GLOBAL_SYNC message: a node with many names sends several moderate messages rather
/// than one that holds up its connection's other traffic.
pub const SYNC_CHUNK: usize = 256;

/// How the loser of a name conflict is told.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConflictNotice {
    /// An exit signal with reason `{:global_name_conflict, name, winner}` (the default): a process
    /// that traps exits receives it as a message and can hand over or stop cleanly; any other
    /// process stops, so two instances of a service registered under one name do not both keep
    /// running.
    #[default]
    Exit,
    /// The message `{:global_name_conflict, name, winner}`; the process keeps running unnamed.
    Message,
}

/// Settings of a [`Global`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GlobalConfig {
    /// How the loser of a conflict is told.
    pub conflict_notice: ConflictNotice,
}

/// Why a local process lost a name it held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossCause {
    /// Another process registered the same name without knowing of this one (a partition, or two
    /// nodes at the same moment) and won under the conflict rule.
    Conflict,
    /// `re_register_name` moved the name to another process.
    Replaced,
}

/// What the driver delivers to a process that lost a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// Send the process an exit signal with this reason.
    Exit(Term),
    /// Send the process this message.
    Message(Term),
}

/// A local process lost a name it held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameLost {
    /// The name.
    pub name: Term,
    /// The local process that held it.
    pub pid: Pid,
    /// The process that has it now.
    pub winner: Pid,
    /// Why.
    pub cause: LossCause,
    /// What to deliver to `pid`: for a conflict, as [`GlobalConfig::conflict_notice`] says; for a
    /// replacement nothing (as Erlang's `re_register_name`, which tells the old holder nothing).
    pub notice: Option<Notice>,
}

/// Something the driver must act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GlobalEvent {
    /// A local process now holds a name: watch it (a monitor) and call
    /// [`Global::process_exited`] when it exits. A monitor on a process that is already dead
    /// fires at once; the driver must treat that as an exit too, so a registration that raced
    /// with its process's exit is still removed.
    Watch(Pid),
    /// A live local process holds no name any more: the watch can go.
    Unwatch(Pid),
    /// A local process lost a name; deliver the notice, if any.
    NameLost(NameLost),
}

/// Why a local registration was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// The name is taken (Erlang's `global:register_name` returns `no`).
    #[error("the global name {name} is registered to {holder}; unregister it first, or use re_register_name")]
    Taken {
        /// The name.
        name: Term,
        /// Who holds it.
        holder: Pid,
    },
    /// Only a process's own node registers names for it.
    #[error("{pid} is not a process of this node; register it on its own node (the runtime routes the request there)")]
    NotLocal {
        /// The process.
        pid: Pid,
    },
}

/// Why a local unregistration was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnregisterError {
    /// Only the holder's node withdraws a name.
    #[error("the global name {name} is held by {holder} of another node; unregister it there (the runtime routes the request)")]
    NotLocal {
        /// The name.
        name: Term,
        /// Who holds it.
        holder: Pid,
    },
}

/// One process's claim on a name.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Claim {
    pid: Pid,
    stamp: u64,
    origin: NodeName,
    generation: u32,
}

impl Claim {
    fn from_entry(entry: GlobalEntry) -> (Term, Claim) {
        let GlobalEntry { name, pid, stamp, origin, generation } = entry;
        (name, Claim { pid, stamp, origin, generation })
    }

    fn entry(&self, name: &Term) -> GlobalEntry {
        GlobalEntry {
            name: name.clone(),
            pid: self.pid.clone(),
            stamp: self.stamp,
            origin: self.origin.clone(),
            generation: self.generation,
        }
    }

    /// The conflict rule's order: the lowest key wins.
    fn key(&self) -> (u64, &NodeName, Reverse<u32>, &Pid) {
        (self.stamp, &self.origin, Reverse(self.generation), &self.pid)
    }

    fn beats(&self, other: &Claim) -> bool {
        self.key() < other.key()
    }

    /// Whether `self` took the name over from `other` with `re_register_name` (directly or
    /// through other re-registrations): same registration, later generation.
    fn replaced(&self, other: &Claim) -> bool {
        self.stamp == other.stamp && self.origin == other.origin && self.generation > other.generation
    }
}

/// The global name registry as one node knows it: a deterministic value the driver feeds with
/// local requests, peer messages, connection changes and process exits, and drains of messages
/// ([`Global::poll_transmit`]) and events ([`Global::poll_event`]).
///
/// # Conflict rule
///
/// Two claims on one name are ordered by `(stamp, origin, generation descending, pid)`, and the
/// lowest wins: the registration made first (by its hybrid-logical-clock stamp, see
/// [`super::hlc`]) keeps the name; among equal stamps the origin node's name decides; a
/// re-registration continues the registration it took over (same stamp and origin) with a higher
/// generation, so it beats it; the pid (node, number, creation) makes the order total. Every node
/// applies the same order to the same claims, so every node picks the same winner; only the
/// loser's own node acts on it (withdraws the claim, tells the process), so the loser is told
/// once.
#[derive(Debug)]
pub struct Global {
    me: NodeName,
    creation: u32,
    config: GlobalConfig,
    clock: HybridClock,
    peers: PeerSet,
    /// Every claim known, per name, sorted by the conflict rule: the first one holds the name.
    /// Never an empty vector.
    names: HashMap<Term, Vec<Claim>>,
    /// The names each live local process claims. At most one local claim per name exists, and it
    /// is always the winning one (a local claim that loses is withdrawn at once).
    local: HashMap<Pid, Vec<Term>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<GlobalEvent>,
}

impl Global {
    /// The registry of node `me` in its start `creation`, empty and with no peers.
    pub fn new(me: NodeName, creation: u32, config: GlobalConfig) -> Global {
        Global {
            me,
            creation,
            config,
            clock: HybridClock::default(),
            peers: PeerSet::new(Flags::GLOBAL),
            names: HashMap::new(),
            local: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The process holding `name`, as this node knows it: one hash lookup, no allocation, no
    /// message. `None` if no claim on the name is known here.
    pub fn whereis_name(&self, name: &Term) -> Option<&Pid> {
        self.names.get(name).map(|claims| &claims[0].pid)
    }

    /// The holder's full claim on `name` (for inspection and diagnostics).
    pub fn entry(&self, name: &Term) -> Option<GlobalEntry> {
        self.names.get(name).map(|claims| claims[0].entry(name))
    }

    /// Every name known here (in no particular order).
    pub fn registered_names(&self) -> impl Iterator<Item = &Term> {
        self.names.keys()
    }

    /// Number of names known here.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no name is known here.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The names a local process holds.
    pub fn names_of(&self, pid: &Pid) -> &[Term] {
        self.local.get(pid).map_or(&[], Vec::as_slice)
    }

    /// Registers `name` for the local process `pid` (Erlang's `global:register_name/2`), decided
    /// here from what this node knows: it fails if any claim on the name is known, otherwise the
    /// claim is stamped at `wall_ms` (the wall clock, milliseconds since the Unix epoch) and
    /// announced to every peer. Nothing waits for an answer, so the cost does not grow with the
    /// number of nodes. A peer that registered the same name concurrently is resolved by the
    /// [conflict rule](Global#conflict-rule).
    ///
    /// `pid` must be alive: the driver watches it when [`GlobalEvent::Watch`] asks.
    pub fn register_name(&mut self, name: Term, pid: Pid, wall_ms: u64) -> Result<(), RegisterError> {
        self.check_local(&pid)?;
        if let Some(claims) = self.names.get(&name) {
            return Err(RegisterError::Taken { name, holder: claims[0].pid.clone() });
        }
        let claim = Claim { pid, stamp: self.clock.stamp(wall_ms), origin: self.me.clone(), generation: 0 };
        self.claim_locally(name, claim);
        Ok(())
    }

    /// Registers `name` for the local process `pid` even if another process holds it (Erlang's
    /// `global:re_register_name/2`): the new claim continues the holder's registration with the
    /// next generation, so it beats the old one everywhere, and the old holder's node withdraws
    /// it ([`LossCause::Replaced`], no notice). A name no one holds is registered as new.
    pub fn re_register_name(&mut self, name: Term, pid: Pid, wall_ms: u64) -> Result<(), RegisterError> {
        self.check_local(&pid)?;
        let Some(holder) = self.names.get(&name).map(|claims| claims[0].clone()) else {
            return self.register_name(name, pid, wall_ms);
        };
        if holder.pid == pid {
            return Ok(());
        }
        // 2^32 re-registrations of one name would saturate the generation; the pid order then
        // decides between the last two, still the same way everywhere.
        let claim = Claim {
            pid,
            stamp: holder.stamp,
            origin: holder.origin.clone(),
            generation: holder.generation.saturating_add(1),
        };
        let winner = claim.clone();
        self.claim_locally(name.clone(), claim);
        if self.is_local(&holder.pid) {
            self.withdraw_local(&name, &holder.pid, &winner);
        }
        Ok(())
    }

    /// Withdraws the local claim on `name` (Erlang's `global:unregister_name/1`). A name no one
    /// holds is fine (`Ok`); a name held by another node's process must be unregistered there.
    pub fn unregister_name(&mut self, name: &Term) -> Result<(), UnregisterError> {
        let Some(claims) = self.names.get(name) else { return Ok(()) };
        let holder = claims[0].pid.clone();
        if !self.is_local(&holder) {
            return Err(UnregisterError::NotLocal { name: name.clone(), holder });
        }
        self.remove_claim(name, &holder);
        self.forget_local_name(&holder, name, true);
        self.broadcast(Control::GlobalUnregister { name: name.clone(), pid: holder });
        Ok(())
    }

    /// A local process exited: its names are withdrawn everywhere. Other pids are ignored, so the
    /// driver may call this for every exit, or only for watched processes.
    pub fn process_exited(&mut self, pid: &Pid) {
        let Some(names) = self.local.remove(pid) else { return };
        for name in names {
            self.remove_claim(&name, pid);
            self.broadcast(Control::GlobalUnregister { name, pid: pid.clone() });
        }
    }

    /// A connection to `node` (start `creation`) came up with the negotiated `flags`. With the
    /// GLOBAL capability the peer is sent the claims of this node's processes (GLOBAL_SYNC) and
    /// from then on every change; without it, it is never sent GLOBAL_* messages. A peer reported
    /// up again without a `node_down` (it restarted) is first taken down.
    pub fn node_up(&mut self, node: NodeName, creation: u32, flags: Flags) {
        self.node_down(&node);
        if self.peers.up(node.clone(), creation, flags) == PeerUp::Incapable {
            return;
        }
        let mut entries: Vec<GlobalEntry> = self
            .local
            .iter()
            .flat_map(|(pid, names)| names.iter().map(move |name| (name, pid)))
            .filter_map(|(name, pid)| self.names.get(name)?.iter().find(|c| &c.pid == pid).map(|c| c.entry(name)))
            .collect();
        // A stable order, so the same inputs give the same messages.
        entries.sort_unstable_by(|a, b| (&a.name, &a.pid).cmp(&(&b.name, &b.pid)));
        while !entries.is_empty() {
            let rest = entries.split_off(entries.len().min(SYNC_CHUNK));
            let chunk = std::mem::replace(&mut entries, rest);
            self.transmits
                .push_back(Transmit { to: vec![node.clone()], message: Control::GlobalSync { entries: chunk } });
        }
    }

    /// The connection to `node` is gone: the claims of its processes are dropped here (they stay
    /// valid on its side of the partition, and come back with its GLOBAL_SYNC when it reconnects).
    pub fn node_down(&mut self, node: &NodeName) {
        if !self.peers.down(node) {
            return;
        }
        self.names.retain(|_, claims| {
            claims.retain(|c| c.pid.node() != node);
            !claims.is_empty()
        });
    }

    /// A GLOBAL_* message from the connected peer `from`. A message that breaks the protocol
    /// (a pid that is not the sender's own, a sender that is not a connected peer with the
    /// capability, a message of another kind) changes nothing and is returned as an error for the
    /// driver to log (the peer is broken or hostile; closing the connection is the safe answer).
    pub fn handle_message(&mut self, from: &NodeName, message: Control) -> Result<(), PeerError> {
        self.peers.check_sender(from, &message)?;
        match message {
            Control::GlobalRegister(entry) => {
                self.peers.check_owned(from, &entry.pid, "GLOBAL_REGISTER")?;
                self.accept_remote(entry);
            }
            Control::GlobalUnregister { name, pid } => {
                self.peers.check_owned(from, &pid, "GLOBAL_UNREGISTER")?;
                self.remove_claim(&name, &pid);
            }
            Control::GlobalSync { entries } => {
                for entry in &entries {
                    self.peers.check_owned(from, &entry.pid, "GLOBAL_SYNC")?;
                }
                for entry in entries {
                    self.accept_remote(entry);
                }
            }
            Control::GlobalConflict { loser, winner } => {
                if !self.is_local(&loser) {
                    return Err(PeerError::ForeignPid { from: from.clone(), message: "GLOBAL_CONFLICT", pid: loser });
                }
                let (name, winner) = Claim::from_entry(winner);
                let loses = self
                    .names
                    .get(&name)
                    .and_then(|claims| claims.iter().find(|c| c.pid == loser))
                    .is_some_and(|mine| winner.beats(mine));
                // A notice about a claim already withdrawn, or naming our own process as the
                // winner (we know our claims better), is stale: ignored.
                if loses && !self.is_local(&winner.pid) {
                    self.clock.observe(winner.stamp);
                    self.withdraw_local(&name, &loser, &winner);
                }
            }
            other => return Err(PeerError::NotHandled { message: other.name(), handler: "Global" }),
        }
        Ok(())
    }

    /// The next message to send, with its recipients (each a connected peer that negotiated
    /// GLOBAL). The driver encodes it once and writes it to each.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<GlobalEvent> {
        self.events.pop_front()
    }

    /// Every claim known, per name, winner first: for tests that compare nodes' tables.
    #[cfg(test)]
    pub(crate) fn claims(&self) -> std::collections::BTreeMap<Term, Vec<GlobalEntry>> {
        self.names.iter().map(|(name, claims)| (name.clone(), claims.iter().map(|c| c.entry(name)).collect())).collect()
    }

    fn is_local(&self, pid: &Pid) -> bool {
        pid.node() == &self.me && pid.creation() == self.creation
    }

    fn check_local(&self, pid: &Pid) -> Result<(), RegisterError> {
        if self.is_local(pid) {
            Ok(())
        } else {
            Err(RegisterError::NotLocal { pid: pid.clone() })
        }
    }

    fn broadcast(&mut self, message: Control) {
        if let Some(transmit) = self.peers.broadcast(message) {
            self.transmits.push_back(transmit);
        }
    }

    /// Inserts `claim` in order; returns its position.
    fn insert_claim(&mut self, name: &Term, claim: Claim) -> usize {
        let claims = match self.names.get_mut(name) {
            Some(claims) => claims,
            None => self.names.entry(name.clone()).or_default(),
        };
        claims.retain(|c| c.pid != claim.pid);
        let at = claims.partition_point(|c| c.beats(&claim));
        claims.insert(at, claim);
        at
    }

    fn remove_claim(&mut self, name: &Term, pid: &Pid) {
        if let Some(claims) = self.names.get_mut(name) {
            claims.retain(|c| &c.pid != pid);
            if claims.is_empty() {
                self.names.remove(name);
            }
        }
    }

    /// Records and announces a new winning local claim.
    fn claim_locally(&mut self, name: Term, claim: Claim) {
        self.broadcast(Control::GlobalRegister(claim.entry(&name)));
        let pid = claim.pid.clone();
        self.insert_claim(&name, claim);
        let names = self.local.entry(pid.clone()).or_default();
        if names.is_empty() {
            self.events.push_back(GlobalEvent::Watch(pid));
        }
        names.push(name);
    }

    /// Takes `name` off the list of the local process `pid`; `unwatch` emits [`GlobalEvent::Unwatch`]
    /// when it was the process's last name.
    fn forget_local_name(&mut self, pid: &Pid, name: &Term, unwatch: bool) {
        let Some(names) = self.local.get_mut(pid) else { return };
        names.retain(|n| n != name);
        if names.is_empty() {
            self.local.remove(pid);
            if unwatch {
                self.events.push_back(GlobalEvent::Unwatch(pid.clone()));
            }
        }
    }

    /// The local claim of `loser` on `name` lost to `winner`: withdraw it everywhere and tell the
    /// process.
    fn withdraw_local(&mut self, name: &Term, loser: &Pid, winner: &Claim) {
        let Some(mine) = self.names.get(name).and_then(|claims| claims.iter().find(|c| &c.pid == loser)).cloned()
        else {
            return;
        };
        self.remove_claim(name, loser);
        let cause = if winner.replaced(&mine) { LossCause::Replaced } else { LossCause::Conflict };
        let notice = match cause {
            LossCause::Replaced => None,
            LossCause::Conflict => {
                let reason =
                    Term::tuple([Term::atom("global_name_conflict"), name.clone(), Term::Pid(winner.pid.clone())]);
                Some(match self.config.conflict_notice {
                    ConflictNotice::Exit => Notice::Exit(reason),
                    ConflictNotice::Message => Notice::Message(reason),
                })
            }
        };
        self.events.push_back(GlobalEvent::NameLost(NameLost {
            name: name.clone(),
            pid: loser.clone(),
            winner: winner.pid.clone(),
            cause,
            notice,
        }));
        self.forget_local_name(loser, name, true);
        self.broadcast(Control::GlobalUnregister { name: name.clone(), pid: loser.clone() });
    }

    /// A peer's claim (already checked to be the sender's own process).
    fn accept_remote(&mut self, entry: GlobalEntry) {
        self.clock.observe(entry.stamp);
        let (name, claim) = Claim::from_entry(entry);
        let home = claim.pid.node().clone();
        let previous_holder = self.names.get(&name).map(|claims| claims[0].clone());
        let at = self.insert_claim(&name, claim.clone());
        let Some(previous) = previous_holder.filter(|p| p.pid != claim.pid) else { return };
        if at == 0 {
            // The new claim takes the name from the previous holder.
            if self.is_local(&previous.pid) {
                self.withdraw_local(&name, &previous.pid, &claim);
            } else if previous.pid.node() != &home && !claim.replaced(&previous) {
                // A re-registration was made by a node that knew the old claim, so it is
                // connected to the old holder's node and announced it there itself.
                self.send_conflict(&name, &previous.pid, &claim);
            }
        } else {
            // The new claim loses on arrival. A local holder was announced to the sender when it
            // registered or when the connection came up, so the sender will see it; a remote
            // holder may be on a node the sender is not connected to, so tell the sender.
            let holder = self.names[&name][0].clone();
            if !self.is_local(&holder.pid) && holder.pid.node() != &home {
                self.send_conflict(&name, &claim.pid, &holder);
            }
        }
    }

    /// Tells the node of `loser` that its claim on `name` loses to `winner`. Its node may not be
    /// connected to the winner's (an overlapping partition), so it might never learn otherwise.
    fn send_conflict(&mut self, name: &Term, loser: &Pid, winner: &Claim) {
        let node = loser.node().clone();
        if self.peers.contains(&node) {
            let message = Control::GlobalConflict { loser: loser.clone(), winner: winner.entry(name) };
            self.transmits.push_back(Transmit { to: vec![node], message });
        }
    }
}

#[cfg(test)]
#[path = "global_tests.rs"]
mod tests;
