//! Snow's embedded runtime: BEAM-style processes in Rust, and the seam distribution plugs into.
//!
//! A [`Node`] holds processes. A process is an async task with a mailbox of [`Term`]s; its body
//! gets a [`Process`] handle to receive (plainly, with a timeout, or selectively), send, link,
//! monitor, trap exits and spawn. Names ([`Node::register`]), timers ([`Node::send_after`]) and
//! supervisors ([`supervisor`]) complete the local layer; [`seam`] is the narrow interface a
//! distribution layer (or a foreign scheduler) uses. The semantics are BEAM's; where they differ,
//! the item's documentation says so.
//!
//! Processes run on a process-wide pool of scheduler threads (one per CPU, or `SNOW_SCHEDULERS`),
//! built on `async-task` like smol's executor, but keeping communicating processes on
//! one thread as BEAM does: a process woken by a message runs next on the thread of the process
//! that sent it, instead of waking another thread. The runtime's sockets and timers are on its own
//! epoll reactor, in which an idle scheduler thread waits, so the process a socket or timer wakes
//! runs on the thread that saw the event; the distribution layer's own tasks (connection readers
//! and writers) run on the same pool. A process may also await async-io's (smol's) sockets and
//! timers: async-io's own thread drives those.
//! A process should not block its thread (a blocking call or a long computation without an
//! `.await`): the process it woke last waits until it yields.
//!
//! ```
//! use std::time::Duration;
//! use snow_node_rt::{reason, Node, Term};
//!
//! snow_node_rt::block_on(async {
//!     let node = Node::local();
//!     let (done_tx, done_rx) = async_channel::bounded(1);
//!     node.spawn(move |mut me| async move {
//!         // A worker that doubles numbers until told to stop.
//!         let worker = me.spawn(|mut w| async move {
//!             loop {
//!                 let msg = w.receive().await;
//!                 match msg.as_tuple() {
//!                     Some([Term::Pid(from), Term::Int(n)]) => w.send(from, Term::Int(n * 2)),
//!                     _ => return reason::normal(),
//!                 }
//!             }
//!         });
//!         let watch = me.monitor(&worker);
//!         me.send(&worker, Term::tuple([Term::Pid(me.pid().clone()), Term::Int(21)]));
//!         let answer = me.receive_timeout(Duration::from_secs(5)).await;
//!         me.send(&worker, Term::atom("stop"));
//!         // Selective receive: wait for this monitor's :DOWN, leaving anything else queued.
//!         let down = me
//!             .receive_match(|m| matches!(m.as_tuple(), Some([_, Term::Ref(r), ..]) if *r == watch))
//!             .await;
//!         let _ = done_tx.send((answer, down)).await;
//!     });
//!     let (answer, down) = done_rx.recv().await.unwrap();
//!     assert_eq!(answer, Some(Term::Int(42)));
//!     assert_eq!(down.as_tuple().unwrap()[3], reason::normal());
//! });
//! ```
// `deny`, not `forbid`: the one exception is `sched::heap::apply` (a call to glibc's `mallopt`).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod dist;
pub mod error;
mod local;
mod pool_runtime;
mod reactor;
pub mod reason;
mod sched;
pub mod seam;
mod sync;
mod timers;

pub use error::{
    CallError, DistError, GlobalError, GroupError, LinkError, RegisterError, RemoteSpawnError, SendError, SpawnError,
    TrySendError, UnregisterError,
};
pub use local::supervisor;
pub use local::{
    start_from_env, yield_now, AliasMode, GlobalRegistry, IdHasher, Node, Process, ProcessGroups, Receive,
    ReceiveMatch, Spawnable,
};
pub use pool_runtime::PoolRuntime;
pub use reason::IntoExitReason;
pub use sched::{block_on, spawn as spawn_task, JoinHandle};
pub use seam::{Backpressure, Cluster, Congestion, Distribution, Host, Monitored, Runtime};
pub use snow_shared::{Atom, Binary, NodeName, Pid, Ref, Term};
pub use timers::{sleep, TimerRef};
