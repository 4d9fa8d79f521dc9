//! The seam is real: a second host, written here without this crate's local process layer or
//! scheduler, runs the processes of a node on a single-threaded executor of its own, and through
//! the `Host` / `Distribution` / `Runtime` traits alone gets remote messages, links, monitors,
//! node monitors and a lost connection right against a node of this crate's own layer.

mod support;

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use async_channel::{Receiver, Sender};
use snow_node_rt::seam::BoxFuture;
use snow_node_rt::{reason, Atom, Distribution, Host, Monitored, NodeName, Pid, Ref, Runtime, SpawnError, Term};
use support::*;

/// A single-threaded executor: one thread runs every task spawned on it, in order.
struct OneThread {
    queue: Sender<async_task::Runnable>,
}

impl OneThread {
    fn start() -> Arc<OneThread> {
        let (queue, runnables) = async_channel::unbounded::<async_task::Runnable>();
        std::thread::Builder::new()
            .name("foreign-host".into())
            .spawn(move || {
                while let Ok(runnable) = runnables.recv_blocking() {
                    runnable.run();
                }
            })
            .unwrap();
        Arc::new(OneThread { queue })
    }
}

impl Runtime for OneThread {
    fn spawn(&self, task: BoxFuture<()>) {
        let queue = self.queue.clone();
        let (runnable, handle) = async_task::spawn(task, move |r| {
            let _ = queue.try_send(r);
        });
        handle.detach();
        runnable.schedule();
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        Box::pin(async move {
            async_io::Timer::at(deadline).await;
        })
    }
}

/// One process of the foreign host: a mailbox, its links and monitors. It traps exits (every
/// exit signal becomes an `{:EXIT, from, reason}` message), which is all this test needs.
#[derive(Default)]
struct Proc {
    links: HashSet<Pid>,
    /// Monitors on this process: reference -> remote watcher.
    watchers: HashMap<Ref, Pid>,
    /// Monitors this process holds: reference -> what it watches.
    monitoring: HashMap<Ref, Monitored>,
}

/// The foreign host: its processes are mailboxes (channels) plus their relations.
struct MiniHost {
    name: NodeName,
    creation: u32,
    next: Mutex<u64>,
    procs: Mutex<HashMap<Pid, (Sender<Term>, Proc)>>,
}

impl MiniHost {
    fn new(name: NodeName, creation: u32) -> Arc<MiniHost> {
        Arc::new(MiniHost { name, creation, next: Mutex::new(1), procs: Mutex::new(HashMap::new()) })
    }

    /// A new process: its pid and its mailbox.
    fn spawn(&self) -> (Pid, Receiver<Term>) {
        let id = {
            let mut next = self.next.lock().unwrap();
            *next += 1;
            *next
        };
        let pid = Pid::new(self.name.clone(), id, self.creation);
        let (tx, rx) = async_channel::unbounded();
        self.procs.lock().unwrap().insert(pid.clone(), (tx, Proc::default()));
        (pid, rx)
    }

    fn with<T>(&self, pid: &Pid, f: impl FnOnce(&Sender<Term>, &mut Proc) -> T) -> Option<T> {
        let mut procs = self.procs.lock().unwrap();
        procs.get_mut(pid).map(|(tx, p)| f(tx, p))
    }
}

impl Host for MiniHost {
    fn node_name(&self) -> &NodeName {
        &self.name
    }
    fn creation(&self) -> u32 {
        self.creation
    }
    fn make_ref(&self) -> Ref {
        Ref::new(self.name.clone(), rand::random(), self.creation)
    }
    fn deliver_message(&self, to: &Pid, msg: Term) {
        self.with(to, |tx, _| {
            let _ = tx.try_send(msg);
        });
    }
    fn deliver_named(&self, _name: &Atom, _msg: Term) -> bool {
        false
    }
    fn deliver_exit(&self, from: &Pid, to: &Pid, reason: Term, linked: bool) {
        self.with(to, |tx, p| {
            if !linked || p.links.remove(from) {
                let _ = tx.try_send(reason::exit_message(from, reason));
            }
        });
    }
    fn deliver_down(&self, watcher: &Pid, reference: &Ref, reported: &Monitored, reason: Term) {
        self.with(watcher, |tx, p| {
            if p.monitoring.get(reference) == Some(reported) {
                p.monitoring.remove(reference);
                let _ = tx.try_send(reason::down_message(reference, reported.to_term(), reason));
            }
        });
    }
    fn add_remote_link(&self, local: &Pid, remote: &Pid) -> bool {
        self.with(local, |_, p| p.links.insert(remote.clone())).is_some()
    }
    fn remove_remote_link(&self, local: &Pid, remote: &Pid) {
        self.with(local, |_, p| p.links.remove(remote));
    }
    fn add_remote_monitor(&self, target: &Pid, watcher: &Pid, reference: &Ref) -> bool {
        self.with(target, |_, p| p.watchers.insert(reference.clone(), watcher.clone())).is_some()
    }
    fn remove_remote_monitor(&self, target: &Pid, reference: &Ref) {
        self.with(target, |_, p| p.watchers.remove(reference));
    }
    fn add_monitor(&self, watcher: &Pid, reference: &Ref, target: Monitored) -> bool {
        self.with(watcher, |_, p| p.monitoring.insert(reference.clone(), target)).is_some()
    }
    fn remove_monitor(&self, watcher: &Pid, reference: &Ref) {
        self.with(watcher, |_, p| p.monitoring.remove(reference));
    }
    fn notify_exit(&self, pid: &Pid) -> bool {
        self.procs.lock().unwrap().contains_key(pid)
    }
    fn resolve_name(&self, _name: &Atom) -> Option<Pid> {
        None
    }
    fn spawn_registered(
        &self,
        function: &Atom,
        _args: Term,
        _link_to: Option<&Pid>,
        _monitor_by: Option<(&Pid, &Ref)>,
        _before_start: &mut dyn FnMut(&Pid),
    ) -> Result<Pid, SpawnError> {
        Err(SpawnError::NotSpawnable(function.as_str().to_owned()))
    }
    fn connection_lost(&self, node: &NodeName) {
        let mut procs = self.procs.lock().unwrap();
        for (tx, p) in procs.values_mut() {
            p.watchers.retain(|_, watcher| watcher.node() != node);
            let lost: Vec<Pid> = p.links.iter().filter(|l| l.node() == node).cloned().collect();
            for remote in lost {
                p.links.remove(&remote);
                let _ = tx.try_send(reason::exit_message(&remote, reason::noconnection()));
            }
            let downs: Vec<(Ref, Monitored)> =
                p.monitoring.iter().filter(|(_, m)| m.node() == node).map(|(r, m)| (r.clone(), m.clone())).collect();
            for (reference, target) in downs {
                p.monitoring.remove(&reference);
                let _ = tx.try_send(reason::down_message(&reference, target.to_term(), reason::noconnection()));
            }
        }
    }
}

/// Starts node `short@127.0.0.1` hosted by a [`MiniHost`] on its own single-threaded executor.
async fn foreign_node(epmd: &Epmd, short: &str) -> (Arc<MiniHost>, Arc<dyn Distribution>) {
    let prepared = builder(epmd, short).prepare().await.unwrap();
    let host = MiniHost::new(prepared.name().clone(), prepared.creation());
    let weak: Weak<dyn Host> = Arc::downgrade(&host) as Weak<MiniHost>;
    let distribution = prepared.start(weak, OneThread::start());
    (host, distribution)
}

type Pinned<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

#[test]
fn a_foreign_host_gets_messages_links_monitors_and_nodedown_right() {
    run(async {
        let epmd = epmd().await;
        let (host, dist) = foreign_node(&epmd, "foreign").await;
        let b = node(&epmd, "b").await;
        let (f1, f1_mail) = host.spawn();
        dist.monitor_nodes(&f1, true);

        // A message from a process of b reaches the foreign process, after {:nodeup, b}.
        let (sink, sink_rx) = collector(&b);
        let to = f1.clone();
        b.spawn(move |me| async move { me.send(&to, Term::tuple([Term::atom("hello"), Term::Pid(me.pid().clone())])) });
        assert_eq!(next(&f1_mail).await, Term::tuple([Term::atom("nodeup"), Term::Atom(b.name().as_atom().clone())]));
        let hello = next(&f1_mail).await;
        assert!(hello.as_tuple().unwrap()[0].is_atom("hello"), "{hello}");
        // And the foreign process answers through its distribution.
        let _ = dist.send(Some(&f1), &sink, Term::atom("from_foreign"));
        assert_eq!(next(&sink_rx).await, Term::atom("from_foreign"));

        // A link and a monitor from the foreign process to a process of b fire with the real
        // reason when it exits.
        let doomed = idle(&b);
        assert!(host.add_remote_link(&f1, &doomed));
        let _ = dist.link(&f1, &doomed);
        let watch = host.make_ref();
        assert!(host.add_monitor(&f1, &watch, Monitored::Pid(doomed.clone())));
        let _ = dist.monitor(&f1, &Monitored::Pid(doomed.clone()), &watch);
        eventually("b recorded the link and the monitor", || b.relation_counts(&doomed) == Some((1, 1, 0))).await;
        b.exit(&doomed, Term::atom("crashed"));
        let mut got = [next(&f1_mail).await, next(&f1_mail).await];
        got.sort_by_key(|m| m.as_tuple().unwrap()[0].to_string());
        assert_eq!(got[0], reason::down_message(&watch, Term::Pid(doomed.clone()), Term::atom("crashed")));
        assert_eq!(got[1], reason::exit_message(&doomed, Term::atom("crashed")));

        // A process of b links to and monitors the foreign process: recorded on the foreign side.
        let f2 = host.spawn().0;
        let (watcher, watcher_rx) = forwarder(&b, {
            let f2 = f2.clone();
            move |me, tx| {
                me.trap_exit(true);
                me.link(&f2).unwrap();
                me.monitor(&f2);
                let _ = tx.try_send(Term::atom("ready"));
            }
        });
        assert_eq!(next(&watcher_rx).await, Term::atom("ready"));
        eventually("the foreign host recorded b's link and monitor", || {
            host.with(&f2, |_, p| p.links.contains(&watcher) && p.watchers.len() == 1).unwrap_or(false)
        })
        .await;

        // b goes away: the foreign process hears {:nodedown, b} and its link fires :noconnection.
        let survivor = idle(&b);
        assert!(host.add_remote_link(&f1, &survivor));
        let _ = dist.link(&f1, &survivor);
        eventually("b recorded the second link", || b.relation_counts(&survivor) == Some((1, 0, 0))).await;
        b.shutdown().await;
        let mut got = [next(&f1_mail).await, next(&f1_mail).await];
        got.sort_by_key(|m| m.as_tuple().unwrap()[0].to_string());
        assert_eq!(got[0], reason::exit_message(&survivor, reason::noconnection()));
        assert_eq!(got[1], Term::tuple([Term::atom("nodedown"), Term::Atom(b.name().as_atom().clone())]));
        eventually("b's monitor of the foreign process was dropped", || {
            host.with(&f2, |_, p| p.watchers.is_empty()).unwrap_or(false)
        })
        .await;
        let shutdown: Pinned<()> = dist.shutdown();
        shutdown.await;
    });
}
