//! The embedder's processes as the [`Host`] of a node's distribution: one table of the processes
//! registered through the ABI (their token, name, links and monitors), the operations on it, and
//! which of the embedder's processes hears of what happens (messages, exit signals, `:DOWN`s;
//! laid out for its `deliver` callback by [`crate::event`]). The embedder's scheduler owns the processes themselves; this table holds
//! exactly what Erlang's semantics need the runtime to know about them.
//!
//! Callbacks are never called with the table locked, so a callback may call back into the
//! library.

use std::collections::{HashMap, HashSet};
use std::ffi::{c_char, c_void};
use std::hash::BuildHasherDefault;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use snow_node_rt::{reason, Atom, Distribution, Host, IdHasher, Monitored, NodeName, Pid, Ref, SpawnError, Term};
use snow_shared::codec;

use crate::event::{DeliverFn, Event};
use crate::executor::{Ctx, Executor};
use crate::status::*;

/// Another node asks this one to spawn `function` with `args` (an encoded list). Allow-list by
/// name: return `SNOW_ERR_REFUSED` for every function you do not offer (the requester then gets
/// `{:not_spawnable, "function"}`). To accept, create the process in a state where it does not run,
/// store your token for it in `*token` and return `SNOW_OK`: it gets `SNOW_EVENT_START`, with
/// its pid, once its links and monitors are in place. Called from a runtime thread; must not
/// block. Pointers are valid during the call only.
pub type snow_spawn_fn = Option<
    unsafe extern "C" fn(
        ctx: *mut c_void,
        function: *const c_char,
        function_len: usize,
        args: *const u8,
        args_len: usize,
        token: *mut u64,
    ) -> snow_status,
>;

/// A monitor a process holds: what it watches, and for a local target, which process holds the
/// other end.
#[derive(Clone)]
struct Watch {
    target: Monitored,
    holder: Option<u64>,
}

/// One registered process.
struct Entry {
    token: u64,
    name: Option<Atom>,
    links: HashSet<Pid>,
    /// Monitors on this process: reference -> watcher.
    watchers: HashMap<Ref, Pid>,
    /// Monitors this process holds: reference -> what it watches.
    monitoring: HashMap<Ref, Watch>,
    /// The distribution layer asked to hear of its exit.
    notify: bool,
    /// Made for the first call the process waits for; closed when the entry is dropped (the
    /// process exited), which abandons the calls it waits for.
    gone: Option<(async_channel::Sender<()>, async_channel::Receiver<()>)>,
}

impl Entry {
    fn new(token: u64) -> Entry {
        Entry {
            token,
            name: None,
            links: HashSet::new(),
            watchers: HashMap::new(),
            monitoring: HashMap::new(),
            notify: false,
            gone: None,
        }
    }
}

/// Process ids are sequential: [`IdHasher`] instead of SipHash on every send's liveness check.
#[derive(Default)]
struct Table {
    procs: HashMap<u64, Entry, BuildHasherDefault<IdHasher>>,
    names: HashMap<Atom, u64>,
    next_id: u64,
}

/// Events gathered under the table's lock, delivered after it is released.
type Outbox = Vec<(u64, Event)>;

/// Operations on remote pids gathered under the lock, done after it.
enum Remote {
    Exit(Pid),
    Down(Pid, Ref),
    Demonitor(Monitored, Ref),
}

/// The host of one node's embedder processes.
pub(crate) struct CHost {
    name: NodeName,
    creation: u32,
    deliver: DeliverFn,
    spawn: snow_spawn_fn,
    ctx: Ctx,
    table: Mutex<Table>,
    dist: OnceLock<Arc<dyn Distribution>>,
    pub(crate) runtime: Arc<Executor>,
    me: Weak<CHost>,
}

/// Why an operation names no live local process.
pub(crate) fn no_process(id: u64) -> Failure {
    Failure::new(
        SNOW_ERR_NO_PROCESS,
        format!("process {id} is not a live process of this node (it exited, or was never registered)"),
    )
}

impl CHost {
    pub fn new(
        name: NodeName,
        creation: u32,
        deliver: DeliverFn,
        spawn: snow_spawn_fn,
        ctx: Ctx,
        runtime: Arc<Executor>,
    ) -> Arc<CHost> {
        Arc::new_cyclic(|me| CHost {
            name,
            creation,
            deliver,
            spawn,
            ctx,
            table: Mutex::new(Table::default()),
            dist: OnceLock::new(),
            runtime,
            me: me.clone(),
        })
    }

    pub fn set_distribution(&self, dist: Arc<dyn Distribution>) {
        let _ = self.dist.set(dist);
    }

    pub fn distribution(&self) -> Option<&Arc<dyn Distribution>> {
        self.dist.get()
    }

    pub fn name(&self) -> &NodeName {
        &self.name
    }

    pub fn creation_of_node(&self) -> u32 {
        self.creation
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic while the table was locked was caught at the boundary; the table is still a
        // table (every operation leaves it consistent before anything that could panic).
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn pid_of(&self, id: u64) -> Pid {
        Pid::new(self.name.clone(), id, self.creation)
    }

    /// Whether `pid` belongs to this node (alive or not): such pids never go to distribution.
    pub fn is_local(&self, pid: &Pid) -> bool {
        pid.node() == &self.name
    }

    /// The table key of a local pid of this creation.
    fn local_id(&self, pid: &Pid) -> Option<u64> {
        (self.is_local(pid) && pid.creation() == self.creation).then_some(pid.id())
    }

    /// The pid of the live process `id`; `None` for id 0, the node itself.
    pub fn acting(&self, id: u64) -> Outcome<Option<Pid>> {
        if id == 0 {
            return Ok(None);
        }
        if self.lock().procs.contains_key(&id) {
            Ok(Some(self.pid_of(id)))
        } else {
            Err(no_process(id))
        }
    }

    /// [`CHost::acting`] for operations only a process can do.
    pub fn process(&self, id: u64) -> Outcome<Pid> {
        self.acting(id)?
            .ok_or_else(|| Failure::argument("process 0 is the node itself; this operation needs a process"))
    }

    /// Registers a new process of the embedder.
    pub fn new_process(&self, token: u64) -> Pid {
        let mut t = self.lock();
        t.next_id += 1;
        let id = t.next_id;
        t.procs.insert(id, Entry::new(token));
        self.pid_of(id)
    }

    /// A receiver that closes when process `id` exits: a call it waits for stops waiting then.
    pub fn exit_watch(&self, id: u64) -> Outcome<async_channel::Receiver<()>> {
        let mut t = self.lock();
        let entry = t.procs.get_mut(&id).ok_or_else(|| no_process(id))?;
        Ok(entry.gone.get_or_insert_with(|| async_channel::bounded(1)).1.clone())
    }

    pub fn make_reference(&self) -> Ref {
        Ref::new(self.name.clone(), random_id(), self.creation)
    }

    // ---- delivery ----

    fn post(&self, outbox: Outbox) {
        for (token, event) in outbox {
            self.deliver_event(token, &event);
        }
    }

    pub(crate) fn deliver_event(&self, token: u64, event: &Event) {
        crate::event::deliver_to(self.deliver, self.ctx, token, event);
    }

    /// Delivers a message to the local `to` (dropped if it is dead).
    pub fn deliver_local(&self, to: &Pid, msg: Term) {
        let token = self.local_id(to).and_then(|id| self.lock().procs.get(&id).map(|e| e.token));
        if let Some(token) = token {
            self.deliver_event(token, &Event::Message(msg));
        }
    }

    /// Tells process `pid` to go on after a suspension.
    pub fn resume(&self, pid: &Pid) {
        let token = self.local_id(pid).and_then(|id| self.lock().procs.get(&id).map(|e| e.token));
        if let Some(token) = token {
            self.deliver_event(token, &Event::Resume);
        }
    }

    pub fn weak(&self) -> Weak<CHost> {
        self.me.clone()
    }

    // ---- names ----

    pub fn register(&self, id: u64, name: Atom) -> Outcome {
        if name.as_str().is_empty() || name.as_str() == "undefined" {
            return Err(Failure::argument(format!(
                "{:?} cannot be a registered name; choose another name",
                name.as_str()
            )));
        }
        let mut t = self.lock();
        if let Some(holder) = t.names.get(&name) {
            return Err(Failure::new(
                SNOW_ERR_NAME_TAKEN,
                format!(
                    "the name {name} is already registered to {}; unregister it first or choose another name",
                    self.pid_of(*holder)
                ),
            ));
        }
        let entry = t.procs.get_mut(&id).ok_or_else(|| no_process(id))?;
        if let Some(old) = &entry.name {
            return Err(Failure::new(
                SNOW_ERR_NAME_TAKEN,
                format!("process {id} is already registered as {old}; unregister that name before registering another"),
            ));
        }
        entry.name = Some(name.clone());
        t.names.insert(name, id);
        Ok(SNOW_OK)
    }

    pub fn unregister(&self, name: &Atom) -> Outcome {
        let mut t = self.lock();
        let id = t.names.remove(name).ok_or_else(|| {
            Failure::new(SNOW_ERR_NOT_REGISTERED, format!("no process is registered as {name}; nothing to unregister"))
        })?;
        if let Some(entry) = t.procs.get_mut(&id) {
            entry.name = None;
        }
        Ok(SNOW_OK)
    }

    pub fn whereis(&self, name: &Atom) -> Option<Pid> {
        self.lock().names.get(name).map(|id| self.pid_of(*id))
    }

    // ---- exit ----

    /// Process `id` exits with `reason`: its name is freed, its links and monitors fire, the
    /// monitors it holds are removed, and it is forgotten.
    pub fn exit_process(&self, id: u64, reason: Term) -> Outcome {
        let pid = self.pid_of(id);
        let mut outbox = Outbox::new();
        let mut remote = Vec::new();
        let notify = {
            let mut t = self.lock();
            let entry = t.procs.remove(&id).ok_or_else(|| no_process(id))?;
            if let Some(name) = &entry.name {
                t.names.remove(name);
            }
            for linked in entry.links {
                match self.local_id(&linked) {
                    Some(other) => {
                        if let Some(e) = t.procs.get_mut(&other) {
                            if e.links.remove(&pid) {
                                let exit = Event::Exit { from: pid.clone(), reason: reason.clone(), linked: true };
                                outbox.push((e.token, exit));
                            }
                        }
                    }
                    None if !self.is_local(&linked) => remote.push(Remote::Exit(linked)),
                    None => {}
                }
            }
            for (reference, watcher) in entry.watchers {
                match self.local_id(&watcher) {
                    Some(other) => {
                        if let Some(e) = t.procs.get_mut(&other) {
                            if let Some(watch) = e.monitoring.remove(&reference) {
                                let down = Event::Down { reference, item: watch.target, reason: reason.clone() };
                                outbox.push((e.token, down));
                            }
                        }
                    }
                    None if !self.is_local(&watcher) => remote.push(Remote::Down(watcher, reference)),
                    None => {}
                }
            }
            for (reference, watch) in entry.monitoring {
                match watch.holder {
                    Some(holder) => {
                        if let Some(e) = t.procs.get_mut(&holder) {
                            e.watchers.remove(&reference);
                        }
                    }
                    None => remote.push(Remote::Demonitor(watch.target, reference)),
                }
            }
            entry.notify
        };
        self.post(outbox);
        if let Some(dist) = self.distribution() {
            // A dying process is past every suspension point: backpressure no longer applies.
            for op in remote {
                match op {
                    Remote::Exit(to) => drop(dist.exit(&pid, &to, reason.clone(), true)),
                    Remote::Down(watcher, reference) => dist.down(&pid, &watcher, &reference, reason.clone()),
                    Remote::Demonitor(target, reference) => drop(dist.demonitor(&pid, &target, &reference)),
                }
            }
            if notify {
                dist.process_exited(&pid);
            }
        }
        Ok(SNOW_OK)
    }

    // ---- links ----

    /// Links process `id` with `other`. A dead `other` gives the process an exit signal `:noproc`
    /// (at once for a local pid, from the other node for a remote one). `Some` is the
    /// distribution layer's answer for a remote pid.
    pub fn link(&self, id: u64, other: &Pid) -> Outcome<Option<snow_node_rt::Backpressure>> {
        let me = self.pid_of(id);
        if *other == me {
            return self.acting(id).map(|_| None);
        }
        let mut outbox = Outbox::new();
        {
            let mut t = self.lock();
            let token = t.procs.get(&id).map(|e| e.token).ok_or_else(|| no_process(id))?;
            match self.local_id(other).filter(|o| t.procs.contains_key(o)) {
                Some(o) => {
                    if let Some(e) = t.procs.get_mut(&o) {
                        e.links.insert(me.clone());
                    }
                    if let Some(e) = t.procs.get_mut(&id) {
                        e.links.insert(other.clone());
                    }
                }
                None if self.is_local(other) || self.distribution().is_none() => {
                    outbox.push((token, Event::Exit { from: other.clone(), reason: reason::noproc(), linked: true }));
                }
                None => {
                    if let Some(e) = t.procs.get_mut(&id) {
                        e.links.insert(other.clone());
                    }
                }
            }
        }
        if !outbox.is_empty() {
            self.post(outbox);
            return Ok(None);
        }
        Ok(match self.distribution() {
            Some(dist) if !self.is_local(other) => Some(dist.link(&me, other)),
            _ => None,
        })
    }

    pub fn unlink(&self, id: u64, other: &Pid) -> Outcome<Option<snow_node_rt::Backpressure>> {
        let me = self.pid_of(id);
        {
            let mut t = self.lock();
            let entry = t.procs.get_mut(&id).ok_or_else(|| no_process(id))?;
            entry.links.remove(other);
            if let Some(e) = self.local_id(other).and_then(|o| t.procs.get_mut(&o)) {
                e.links.remove(&me);
            }
        }
        Ok(match self.distribution() {
            Some(dist) if !self.is_local(other) => Some(dist.unlink(&me, other)),
            _ => None,
        })
    }

    /// An exit signal (`exit/2`) from `from` (a process, or the node itself) to the local `to`.
    pub fn exit_signal_local(&self, from: &Pid, to: &Pid, reason: Term) {
        let token = self.local_id(to).and_then(|id| self.lock().procs.get(&id).map(|e| e.token));
        if let Some(token) = token {
            self.deliver_event(token, &Event::Exit { from: from.clone(), reason, linked: false });
        }
    }

    // ---- monitors ----

    /// Process `id` monitors `target`. A dead target fires `:noproc` at once (local), or from its
    /// node (remote). `Some` is the distribution layer's answer for a remote target.
    pub fn monitor(&self, id: u64, target: Monitored) -> Outcome<(Ref, Option<snow_node_rt::Backpressure>)> {
        let me = self.pid_of(id);
        let reference = self.make_reference();
        let local_target = target.node() == &self.name;
        let mut outbox = Outbox::new();
        {
            let mut t = self.lock();
            let token = t.procs.get(&id).map(|e| e.token).ok_or_else(|| no_process(id))?;
            let holder = match &target {
                _ if !local_target => None,
                Monitored::Pid(pid) => self.local_id(pid).filter(|h| t.procs.contains_key(h)),
                Monitored::Name { name, .. } => t.names.get(name).copied(),
            };
            if local_target && holder.is_none() || !local_target && self.distribution().is_none() {
                let down = Event::Down { reference: reference.clone(), item: target.clone(), reason: reason::noproc() };
                outbox.push((token, down));
            } else {
                if let Some(h) = holder.and_then(|h| t.procs.get_mut(&h)) {
                    h.watchers.insert(reference.clone(), me.clone());
                }
                if let Some(e) = t.procs.get_mut(&id) {
                    e.monitoring.insert(reference.clone(), Watch { target: target.clone(), holder });
                }
            }
        }
        if !outbox.is_empty() {
            self.post(outbox);
            return Ok((reference, None));
        }
        let answer = match self.distribution() {
            Some(dist) if !local_target => Some(dist.monitor(&me, &target, &reference)),
            _ => None,
        };
        Ok((reference, answer))
    }

    /// Process `id` drops its monitor `reference` (nothing if it holds none such).
    pub fn demonitor(&self, id: u64, reference: &Ref) -> Outcome<Option<snow_node_rt::Backpressure>> {
        let me = self.pid_of(id);
        let watch = {
            let mut t = self.lock();
            let entry = t.procs.get_mut(&id).ok_or_else(|| no_process(id))?;
            let Some(watch) = entry.monitoring.remove(reference) else { return Ok(None) };
            if let Some(h) = watch.holder.and_then(|h| t.procs.get_mut(&h)) {
                h.watchers.remove(reference);
            }
            watch
        };
        Ok(match (self.distribution(), watch.holder) {
            (Some(dist), None) => Some(dist.demonitor(&me, &watch.target, reference)),
            _ => None,
        })
    }
}

/// A reference number other nodes cannot guess: the standard library's per-process random hash
/// keys, mixed with a counter.
fn random_id() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static KEYS: RandomState = RandomState::new();
    }
    KEYS.with(|keys| {
        let mut h = keys.build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.finish()
    })
}

impl Host for CHost {
    fn node_name(&self) -> &NodeName {
        &self.name
    }

    fn creation(&self) -> u32 {
        self.creation
    }

    fn make_ref(&self) -> Ref {
        self.make_reference()
    }

    fn deliver_message(&self, to: &Pid, msg: Term) {
        self.deliver_local(to, msg);
    }

    fn deliver_named(&self, name: &Atom, msg: Term) -> bool {
        let token = {
            let t = self.lock();
            t.names.get(name).and_then(|id| t.procs.get(id)).map(|e| e.token)
        };
        match token {
            Some(token) => {
                self.deliver_event(token, &Event::Message(msg));
                true
            }
            None => false,
        }
    }

    fn deliver_exit(&self, from: &Pid, to: &Pid, reason: Term, linked: bool) {
        let token = {
            let mut t = self.lock();
            let Some(entry) = self.local_id(to).and_then(|id| t.procs.get_mut(&id)) else { return };
            if linked && !entry.links.remove(from) {
                // No link (any more): an exit signal of a link that is gone is not delivered.
                return;
            }
            entry.token
        };
        self.deliver_event(token, &Event::Exit { from: from.clone(), reason, linked });
    }

    fn deliver_down(&self, watcher: &Pid, reference: &Ref, reported: &Monitored, reason: Term) {
        let token = {
            let mut t = self.lock();
            let Some(entry) = self.local_id(watcher).and_then(|id| t.procs.get_mut(&id)) else { return };
            match entry.monitoring.get(reference) {
                Some(watch) if watch.holder.is_none() && watch.target == *reported => {}
                _ => return,
            }
            entry.monitoring.remove(reference);
            entry.token
        };
        let down = Event::Down { reference: reference.clone(), item: reported.clone(), reason };
        self.deliver_event(token, &down);
    }

    fn add_remote_link(&self, local: &Pid, remote: &Pid) -> bool {
        let mut t = self.lock();
        match self.local_id(local).and_then(|id| t.procs.get_mut(&id)) {
            Some(entry) => {
                entry.links.insert(remote.clone());
                true
            }
            None => false,
        }
    }

    fn remove_remote_link(&self, local: &Pid, remote: &Pid) {
        let mut t = self.lock();
        if let Some(entry) = self.local_id(local).and_then(|id| t.procs.get_mut(&id)) {
            entry.links.remove(remote);
        }
    }

    fn add_remote_monitor(&self, target: &Pid, watcher: &Pid, reference: &Ref) -> bool {
        let mut t = self.lock();
        match self.local_id(target).and_then(|id| t.procs.get_mut(&id)) {
            Some(entry) => {
                entry.watchers.insert(reference.clone(), watcher.clone());
                true
            }
            None => false,
        }
    }

    fn remove_remote_monitor(&self, target: &Pid, reference: &Ref) {
        let mut t = self.lock();
        if let Some(entry) = self.local_id(target).and_then(|id| t.procs.get_mut(&id)) {
            entry.watchers.remove(reference);
        }
    }

    fn add_monitor(&self, watcher: &Pid, reference: &Ref, target: Monitored) -> bool {
        let mut t = self.lock();
        match self.local_id(watcher).and_then(|id| t.procs.get_mut(&id)) {
            Some(entry) => {
                entry.monitoring.insert(reference.clone(), Watch { target, holder: None });
                true
            }
            None => false,
        }
    }

    fn remove_monitor(&self, watcher: &Pid, reference: &Ref) {
        let mut t = self.lock();
        if let Some(entry) = self.local_id(watcher).and_then(|id| t.procs.get_mut(&id)) {
            entry.monitoring.remove(reference);
        }
    }

    fn notify_exit(&self, pid: &Pid) -> bool {
        let mut t = self.lock();
        match self.local_id(pid).and_then(|id| t.procs.get_mut(&id)) {
            Some(entry) => {
                entry.notify = true;
                true
            }
            None => false,
        }
    }

    fn resolve_name(&self, name: &Atom) -> Option<Pid> {
        self.whereis(name)
    }

    fn spawn_registered(
        &self,
        function: &Atom,
        args: Term,
        link_to: Option<&Pid>,
        monitor_by: Option<(&Pid, &Ref)>,
        before_start: &mut dyn FnMut(&Pid),
    ) -> Result<Pid, SpawnError> {
        let refused = || SpawnError::NotSpawnable(function.as_str().to_owned());
        let hook = self.spawn.ok_or_else(refused)?;
        let encoded = codec::encode(&args);
        let name = function.as_str();
        let mut token = 0u64;
        // SAFETY: the embedder's callback with its own context; the pointers live for the call.
        let status = unsafe {
            hook(self.ctx.0, name.as_ptr().cast::<c_char>(), name.len(), encoded.as_ptr(), encoded.len(), &mut token)
        };
        if status != SNOW_OK {
            return Err(refused());
        }
        let pid = self.new_process(token);
        {
            let mut t = self.lock();
            if let Some(entry) = t.procs.get_mut(&pid.id()) {
                if let Some(remote) = link_to {
                    entry.links.insert(remote.clone());
                }
                if let Some((watcher, reference)) = monitor_by {
                    entry.watchers.insert(reference.clone(), watcher.clone());
                }
            }
        }
        before_start(&pid);
        self.deliver_event(token, &Event::Start { pid: pid.clone(), args });
        Ok(pid)
    }

    /// On: CALLS is negotiated only if both nodes offer it, and this node's processes make calls
    /// (`snow_call`, `snow_cast`). A cast to this node goes to the `spawn` callback.
    fn supports_calls(&self) -> bool {
        true
    }

    /// The embedder's processes end with an exit reason, not a return value, so none runs a
    /// function as a call: every call to this node is refused (README, "Embedding").
    fn spawn_call(
        &self,
        function: &Atom,
        _args: Term,
        caller: &Pid,
        _reference: &Ref,
        _link_to: Option<&Pid>,
        _before_start: &mut dyn FnMut(&Pid),
    ) -> Result<Pid, SpawnError> {
        log::info!("{}: refused a call of {function} from {caller}: a C node runs no function as a call", self.name);
        Err(SpawnError::NotSpawnable(function.as_str().to_owned()))
    }

    fn connection_lost(&self, node: &NodeName) {
        let mut outbox = Outbox::new();
        {
            let mut t = self.lock();
            for entry in t.procs.values_mut() {
                entry.watchers.retain(|_, watcher| watcher.node() != node);
                let lost: Vec<Pid> = entry.links.iter().filter(|l| l.node() == node).cloned().collect();
                for remote in lost {
                    entry.links.remove(&remote);
                    outbox.push((
                        entry.token,
                        Event::Exit { from: remote, reason: reason::noconnection(), linked: true },
                    ));
                }
                let downs: Vec<Ref> = entry
                    .monitoring
                    .iter()
                    .filter(|(_, w)| w.holder.is_none() && w.target.node() == node)
                    .map(|(r, _)| r.clone())
                    .collect();
                for reference in downs {
                    if let Some(watch) = entry.monitoring.remove(&reference) {
                        let down = Event::Down { reference, item: watch.target, reason: reason::noconnection() };
                        outbox.push((entry.token, down));
                    }
                }
            }
        }
        log::info!("{}: connection to {node} lost; links and monitors fired with :noconnection", self.name);
        self.post(outbox);
    }
}
