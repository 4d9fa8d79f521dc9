//! The process scheduler: a pool of worker threads running async tasks built with `async-task`
//! (the task layer of smol's executor), shaped for message passing.
//!
//! Why not a general-purpose executor (smol's `async-executor`, which async-std also ran on): it
//! wakes every task through one global queue and a sleeping worker, so with two threads each
//! message to a parked process is a cross-thread futex wake-up. BEAM runs a woken process next on the scheduler that woke it; so does this pool:
//!
//! - Each worker has a local run queue and a **LIFO slot**. A task woken by a task running on
//!   worker W goes into W's LIFO slot and runs next on W, without waking another thread. A task
//!   already in the slot moves to W's local queue, where idle workers may steal it.
//! - A **fairness cap**: after [`LIFO_CAP`] consecutive runs from the LIFO slot, while other
//!   work waits, the slot's task goes to the back of the local queue, so two processes
//!   ping-ponging cannot starve the rest. Every [`INJECTOR_INTERVAL`] runs a worker looks at the
//!   global injector first.
//! - The **injector** takes wakes from outside the pool (the balancer when it turns the reactor,
//!   async-io's thread for async-io's sockets, plain threads) and tasks spawned from outside.
//! - **Work stealing**: a worker out of work steals half of another worker's local queue, then
//!   looks at the injector.
//! - **Wake another worker only when work waits**: a task queued from outside the pool (the
//!   injector) wakes a sleeping worker at once; a task queued by a worker on its own local queue
//!   does not. That worker runs it soon anyway, and at each scheduling point it wakes a sleeper
//!   only once its local queue has held tasks for [`WAKE_OTHER_AFTER`] (BEAM's "wake up other"
//!   rule). A task that computes for long reaches no scheduling point; the **balancer** thread
//!   (`balance.rs`) looks at the queues every few milliseconds while any holds tasks and wakes
//!   a sleeper for a queue stuck behind one task. Either way nobody is woken while a worker is already searching; a
//!   searching worker that finds work and was the last searcher wakes another if more work
//!   waits (tokio's scheme).
//! - **Idle workers drive I/O**: each worker runs its whole loop inside one of the reactor's
//!   `block_on`s (`reactor/mod.rs`), and parking is that loop returning `Pending`, so one of the
//!   parked workers waits in epoll and, when a socket or timer fires, runs the woken task itself
//!   (it lands in that worker's LIFO slot): a message arriving over the network reaches its
//!   process without a hop between threads. A turn that wakes more than one task here wakes a
//!   sleeping worker to share them. A busy worker turns the reactor without blocking every
//!   [`INJECTOR_INTERVAL`] runs.
//! - **A short spin before sleeping**: the first worker to park looks for work, and every
//!   [`SPIN_SLICE`] for I/O, without blocking for [`DEFAULT_SPIN`] (`SNOW_SCHED_SPIN_US`), as
//!   BEAM's schedulers busy-wait: an answer that arrives within the spin does not wait for a sleeping CPU to wake.
//!   The spinner must be the thread that sees the I/O: while one spins, the other parked
//!   workers wait off the reactor (on their thread's park), and a worker that starts spinning
//!   wakes one that was waiting in the reactor so that it moves off it. The pool spins only
//!   while spinning pays (`spin_credit.rs`): with more runnable threads than cores, a spin holds
//!   the core the thread that would send it work needs, and mostly runs out.
//! - **Parking cannot lose a wake-up**: a worker registers as sleeping, gives up its searching
//!   state, then checks every queue once more before it parks; a waker pushes its task before it
//!   looks for sleepers. Both sides order these steps with sequentially consistent fences, so at
//!   least one of them sees the other. There is no periodic wake-up as a backstop: an idle
//!   pool costs nothing (the balancer sleeps too), and a timer per park would cost a reactor
//!   wake-up per message.
//!
//! Limits, as in tokio: the LIFO slot is not stealable, so a task that blocks its thread (a
//! blocking call, a long computation without `.await`) delays the one task it woke last until it
//! returns; the others it woke wait a few milliseconds, for the balancer. Processes should not block,
//! as on BEAM (which preempts them; this pool cannot).
//!
//! A panic that escapes a task (processes turn theirs into exits before this) is caught here,
//! logged, and ends only that task: a worker thread never dies.
//!
//! The pool is process-wide and shared by every [`Node`](crate::Node) of the OS process. Its size
//! is the available parallelism, or `SNOW_SCHEDULERS` (1 to [`MAX_WORKERS`]).

use std::any::Any;
use std::cell::{Cell, OnceCell};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use async_task::{FallibleTask, Runnable, ScheduleInfo, WithInfo};

use crate::reactor::{self, Reactor, Waiting};
use crate::sync::lock;

mod balance;
pub(crate) mod heap;
mod park;
mod spin_credit;
use concurrent_queue::{ConcurrentQueue, PushError};
use park::Park;

/// Environment variable that sets the number of scheduler threads.
pub(crate) const ENV_SCHEDULERS: &str = "SNOW_SCHEDULERS";
/// Upper bound accepted for `SNOW_SCHEDULERS`.
pub(crate) const MAX_WORKERS: usize = 1024;
/// Consecutive LIFO-slot runs allowed while other work waits (tokio uses 3 per tick; a few more
/// keep a ping-ponging pair on one thread longer without hurting anyone noticeably).
pub(crate) const LIFO_CAP: u32 = 16;
/// A worker looks at the injector first once every this many runs, so tasks woken from outside
/// the pool are not starved by a busy local queue (tokio's default interval).
pub(crate) const INJECTOR_INTERVAL: u32 = 61;
/// How long tasks may wait in a busy worker's local queue before it wakes a sleeping worker to
/// share them (BEAM's "wake up other" threshold, in time rather than reductions). Waking one at
/// once for every task queued turns each burst of messages into a burst of futex wake-ups, and on
/// a loaded machine the woken thread preempts the worker that was doing the work: the remote-call
/// tail in README's cluster table.
const WAKE_OTHER_AFTER: Duration = Duration::from_micros(200);
/// Capacity of each worker's local queue; the overflow goes to the injector.
const LOCAL_QUEUE: usize = 256;

/// Environment variable that sets how long a parked worker spins (microseconds; 0: never).
pub(crate) const ENV_SPIN: &str = "SNOW_SCHED_SPIN_US";
/// Longest spin accepted for `SNOW_SCHED_SPIN_US`.
pub(crate) const MAX_SPIN_US: u64 = 10_000;
/// How long the first worker to park spins, looking for work and polling the reactor without
/// blocking, before it sleeps. A sleeping CPU, on a virtual machine above all, is slow to wake;
/// a message answered within the spin is seen at once (BEAM's schedulers busy-wait too). The
/// value is the shortest spin that caught the answers of a round trip between two nodes in the
/// distribution benchmark; shorter spins ended before the answer came, longer ones gained
/// nothing (README, "Benchmarks", has the figures).
pub(crate) const DEFAULT_SPIN: Duration = Duration::from_micros(60);

/// How long a spinning worker looks at the run queues between two non-blocking polls of the
/// reactor: short against a round trip, long against the cost of a poll (a few syscalls).
const SPIN_SLICE: Duration = Duration::from_micros(5);

/// A scheduler variable holds a value the pool does not accept.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum SchedulersError {
    /// `SNOW_SCHEDULERS` is not a positive integer in range.
    #[error(
        "{ENV_SCHEDULERS}={0:?} is not a scheduler thread count: set it to an integer from 1 to {MAX_WORKERS}, \
         or unset it to run one scheduler thread per CPU"
    )]
    Invalid(String),
    /// `SNOW_SCHED_SPIN_US` is not an integer in range.
    #[error(
        "{ENV_SPIN}={0:?} is not a spin time: set it to microseconds from 0 (never spin) to {MAX_SPIN_US}, \
         or unset it for the default of 60"
    )]
    InvalidSpin(String),
}

/// How long a parked worker spins: `value` of `SNOW_SCHED_SPIN_US` if set, else [`DEFAULT_SPIN`].
pub(crate) fn spin_time(value: Option<&str>) -> Result<Duration, SchedulersError> {
    let Some(text) = value else { return Ok(DEFAULT_SPIN) };
    match text.trim().parse::<u64>() {
        Ok(us) if us <= MAX_SPIN_US => Ok(Duration::from_micros(us)),
        _ => Err(SchedulersError::InvalidSpin(text.to_owned())),
    }
}

/// The number of worker threads: `value` of `SNOW_SCHEDULERS` if set, else `default`.
pub(crate) fn worker_count(value: Option<&str>, default: usize) -> Result<usize, SchedulersError> {
    let Some(text) = value else { return Ok(default.clamp(1, MAX_WORKERS)) };
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_WORKERS).contains(&n) => Ok(n),
        _ => Err(SchedulersError::Invalid(text.to_owned())),
    }
}

/// The process-wide pool, started on first use.
fn global() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let default = std::thread::available_parallelism().map_or(1, |n| n.get());
        let value = std::env::var(ENV_SCHEDULERS).ok();
        let count = worker_count(value.as_deref(), default).unwrap_or_else(|err| {
            log::error!("{err}; using {default} scheduler threads");
            default.clamp(1, MAX_WORKERS)
        });
        let spin = spin_time(std::env::var(ENV_SPIN).ok().as_deref()).unwrap_or_else(|err| {
            log::error!("{err}; using {DEFAULT_SPIN:?}");
            DEFAULT_SPIN
        });
        heap::tune_once();
        log::debug!("scheduler: starting {count} worker threads (spin {spin:?})");
        Pool::with_spin(count, "snow-sched", spin)
    })
}

/// Starts the process-wide pool if it is not running: its workers drive the reactor
/// (`reactor/mod.rs`), whoever runs the tasks that wait on it.
pub(crate) fn start() {
    global();
}

/// Runs `future` to completion on the calling thread (which must not be one of the scheduler's
/// threads), driving sockets and timers meanwhile: the entry point for code outside processes,
/// such as `main` or a test. Processes themselves run on the scheduler's threads.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let on_worker = WORKER.try_with(|cell| cell.get().is_some()).unwrap_or(false);
    if on_worker {
        // Against the rule above, but then this thread must drive the reactor as it would parked.
        return reactor::block_on(future, Waiting::Drive);
    }
    // The pool's workers drive the reactor: make sure there is one.
    start();
    reactor::block_on(future, Waiting::Park)
}

/// Runs `future` as a plain task (not a process: no mailbox, no pid) on the scheduler threads
/// that run the processes. Dropping the handle detaches the task (it runs on); awaiting it gives
/// the output, or `None` if the task panicked.
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    global().spawn(future)
}

/// The handle of a task spawned with [`spawn`]: a future of its output (`None` if the task
/// panicked). Dropping it lets the task run on, detached.
pub struct JoinHandle<T> {
    task: Option<FallibleTask<T>>,
}

impl<T> JoinHandle<T> {
    /// Stops the task at its next `.await` and waits until it is dropped; gives its output if it
    /// had already finished.
    pub async fn cancel(mut self) -> Option<T> {
        match self.task.take() {
            Some(task) => task.cancel().await,
            None => None,
        }
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Option<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        match self.task.as_mut() {
            Some(task) => Pin::new(task).poll(cx),
            None => Poll::Ready(None),
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.detach();
        }
    }
}

/// A pool of worker threads. The process-wide one lives forever; others (tests) stop their
/// threads when dropped.
pub(crate) struct Pool {
    shared: Arc<PoolShared>,
}

/// What the workers and the wakers of a pool share.
struct PoolShared {
    /// Tasks woken or spawned outside the pool's threads.
    injector: ConcurrentQueue<Runnable>,
    workers: Box<[WorkerSlot]>,
    /// Workers looking for work (not running a task, not parked).
    searching: AtomicUsize,
    /// Parked workers, by index; a notifier takes one out and unparks it.
    sleepers: Mutex<Vec<usize>>,
    /// `sleepers.len()`, readable without the lock.
    num_sleepers: AtomicUsize,
    shutdown: AtomicBool,
    /// A parked worker is spinning.
    spinner: AtomicBool,
    /// How long a parked worker spins before it sleeps.
    spin: Duration,
    /// Whether spinning has paid lately.
    spin_credit: spin_credit::SpinCredit,
    /// The origin of the workers' `queued_since` clocks.
    epoch: Instant,
    /// The balancer's thread (none with a single worker: nobody to wake).
    balancer: OnceLock<std::thread::Thread>,
    /// The balancer sleeps until a worker queues a task (see `balance.rs`).
    balancer_asleep: AtomicBool,
}

/// The part of a worker other threads see.
struct WorkerSlot {
    /// Local run queue; other workers steal from it.
    queue: ConcurrentQueue<Runnable>,
    /// Set to end the worker's current (or next) park.
    notified: AtomicBool,
    /// The waker of the worker's park, while it is parked.
    park_waker: Mutex<Option<Waker>>,
    /// The worker's thread, for a park that waits off the reactor (see [`Worker::poll_park`]).
    thread: OnceLock<std::thread::Thread>,
    /// Since when the local queue has held tasks ([`PoolShared::nanos_now`]; 0: not known to hold
    /// any). Set by the worker when it queues a task on an empty queue, cleared or restarted by the
    /// worker at its scheduling points, read by the balancer.
    queued_since: AtomicU64,
}

impl WorkerSlot {
    /// Ends the worker's park (or its next one, if it is about to park).
    fn unpark(&self) {
        self.notified.store(true, SeqCst);
        if let Some(waker) = lock(&self.park_waker).take() {
            waker.wake();
        }
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }
}

/// The part of a worker only its own thread touches.
struct Local {
    shared: Arc<PoolShared>,
    index: usize,
    lifo: Cell<Option<Runnable>>,
    /// The worker is parked (driving the reactor): a task it wakes must end the park.
    parked: Cell<bool>,
}

thread_local! {
    /// Set once on a worker thread, for its whole life.
    static WORKER: OnceCell<Local> = const { OnceCell::new() };
}

impl Pool {
    /// Starts `count` worker threads named `name-N`, with the default spin.
    #[cfg(test)]
    pub(crate) fn new(count: usize, name: &str) -> Pool {
        Pool::with_spin(count, name, DEFAULT_SPIN)
    }

    /// Starts `count` worker threads named `name-N`, whose parked workers spin for `spin`
    /// before they sleep.
    pub(crate) fn with_spin(count: usize, name: &str, spin: Duration) -> Pool {
        let count = count.clamp(1, MAX_WORKERS);
        let workers = (0..count)
            .map(|_| WorkerSlot {
                queue: ConcurrentQueue::bounded(LOCAL_QUEUE),
                notified: AtomicBool::new(false),
                park_waker: Mutex::new(None),
                thread: OnceLock::new(),
                queued_since: AtomicU64::new(0),
            })
            .collect();
        let shared = Arc::new(PoolShared {
            injector: ConcurrentQueue::unbounded(),
            workers,
            // Every worker starts out searching.
            searching: AtomicUsize::new(count),
            sleepers: Mutex::new(Vec::with_capacity(count)),
            num_sleepers: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            spinner: AtomicBool::new(false),
            spin_credit: spin_credit::SpinCredit::new(),
            spin,
            epoch: Instant::now(),
            balancer: OnceLock::new(),
            balancer_asleep: AtomicBool::new(false),
        });
        let mut started = 0;
        for index in 0..count {
            let worker_shared = shared.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-{index}"))
                .spawn(move || worker_main(worker_shared, index));
            match spawned {
                Ok(_) => started += 1,
                Err(err) => {
                    // The thread never runs: it is neither searching nor a sleeper, and its
                    // queue stays empty (only its own thread pushes there).
                    shared.searching.fetch_sub(1, SeqCst);
                    log::error!("scheduler: cannot start worker thread {name}-{index}: {err}");
                }
            }
        }
        if started == 0 {
            // Nothing could run the tasks: fail loudly rather than hang every process.
            panic!("scheduler: no worker thread could be started (see the errors above)");
        }
        if started > 1 {
            let balancer_shared = shared.clone();
            match std::thread::Builder::new()
                .name(format!("{name}-balance"))
                .spawn(move || balance::run(balancer_shared))
            {
                Ok(handle) => {
                    let _ = shared.balancer.set(handle.thread().clone());
                }
                // The workers still share their queues at their scheduling points.
                Err(err) => log::error!("scheduler: cannot start the balancer thread {name}-balance: {err}"),
            }
        }
        Pool { shared }
    }

    /// Number of worker threads.
    #[cfg(test)]
    pub(crate) fn workers(&self) -> usize {
        self.shared.workers.len()
    }

    /// Runs `future` on this pool.
    pub(crate) fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let shared = self.shared.clone();
        let schedule = WithInfo(move |runnable, info: ScheduleInfo| shared.schedule(runnable, info));
        let (runnable, task) = async_task::spawn(future, schedule);
        // A new task is not "woken by the running task": it goes where others may steal it.
        self.shared.schedule_queued(runnable);
        JoinHandle { task: Some(task.fallible()) }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, SeqCst);
        for slot in self.shared.workers.iter() {
            slot.unpark();
        }
        if let Some(balancer) = self.shared.balancer.get() {
            balancer.unpark();
        }
    }
}

impl PoolShared {
    /// The schedule function of every task: called when the task is woken.
    fn schedule(self: &Arc<Self>, runnable: Runnable, info: ScheduleInfo) {
        let mut pending = Some(runnable);
        let _ = WORKER.try_with(|cell| {
            if let Some(local) = cell.get().filter(|l| Arc::ptr_eq(&l.shared, self)) {
                if let Some(runnable) = pending.take() {
                    if info.woken_while_running {
                        // It yielded: behind the others, not first again.
                        self.push_local(local.index, runnable);
                        self.note_queued(local.index);
                    } else if let Some(previous) = local.lifo.replace(Some(runnable)) {
                        self.push_local(local.index, previous);
                        self.note_queued(local.index);
                        if local.parked.get() {
                            // A turn of the reactor woke more than one task here: wake a
                            // sleeping worker to share them (tokio's rule after a park).
                            self.notify();
                        }
                    }
                    if local.parked.get() {
                        // Woken by I/O this parked worker was waiting on: it runs the task.
                        self.workers[local.index].unpark();
                    }
                }
            }
        });
        if let Some(runnable) = pending {
            self.inject(runnable);
        }
    }

    /// Queues a task where other workers may steal it: the current worker's local queue, or the
    /// injector from outside the pool.
    fn schedule_queued(self: &Arc<Self>, runnable: Runnable) {
        let mut pending = Some(runnable);
        let _ = WORKER.try_with(|cell| {
            if let Some(local) = cell.get().filter(|l| Arc::ptr_eq(&l.shared, self)) {
                if let Some(runnable) = pending.take() {
                    self.push_local(local.index, runnable);
                    self.note_queued(local.index);
                }
            }
        });
        if let Some(runnable) = pending {
            self.inject(runnable);
        }
    }

    fn inject(&self, runnable: Runnable) {
        // The injector is unbounded and never closed, so the push cannot fail.
        let _ = self.injector.push(runnable);
        self.notify();
    }

    /// Pushes onto worker `index`'s local queue, spilling to the injector when it is full.
    fn push_local(&self, index: usize, runnable: Runnable) {
        if let Err(PushError::Full(runnable) | PushError::Closed(runnable)) = self.workers[index].queue.push(runnable) {
            let _ = self.injector.push(runnable);
        }
    }

    /// Nanoseconds since the pool began (at least 1, so that 0 can mean "none").
    fn nanos_now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1)
    }

    /// Worker `index` queued a task on its local queue: starts the queue's waiting clock if it was
    /// not running, and wakes the balancer if it sleeps.
    fn note_queued(&self, index: usize) {
        let slot = &self.workers[index];
        if slot.queued_since.load(Relaxed) != 0 {
            return;
        }
        // Pairs with the balancer's announce-then-look (`balance.rs`).
        slot.queued_since.store(self.nanos_now(), SeqCst);
        if self.balancer_asleep.load(SeqCst) && self.balancer_asleep.swap(false, SeqCst) {
            if let Some(balancer) = self.balancer.get() {
                balancer.unpark();
            }
        }
    }

    /// Wakes a parked worker if stealable work was just queued and nobody is searching.
    fn notify(&self) {
        // Pairs with the fence in `Worker::park`: either this sees the worker registered as a
        // sleeper (or still searching), or the worker sees the work just queued.
        fence(SeqCst);
        if self.searching.load(SeqCst) != 0 || self.num_sleepers.load(SeqCst) == 0 {
            return;
        }
        let mut sleepers = lock(&self.sleepers);
        if self.searching.load(SeqCst) != 0 {
            return;
        }
        let Some(index) = sleepers.pop() else { return };
        self.num_sleepers.fetch_sub(1, SeqCst);
        // The woken worker searches on our behalf from now on: other notifiers need not wake
        // a second one for the same work.
        self.searching.fetch_add(1, SeqCst);
        drop(sleepers);
        self.workers[index].unpark();
    }

    /// Whether any queue holds a task another worker could take.
    fn has_stealable_work(&self) -> bool {
        !self.injector.is_empty() || self.workers.iter().any(|w| !w.queue.is_empty())
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "a non-string payload"
    }
}

/// A worker's private loop state.
struct Worker {
    shared: Arc<PoolShared>,
    index: usize,
    searching: bool,
    tick: u32,
    lifo_streak: u32,
    rng: u32,
    /// The park in progress, if the worker is parked.
    park: Option<Park>,
}

fn worker_main(shared: Arc<PoolShared>, index: usize) {
    let _ = shared.workers[index].thread.set(std::thread::current());
    let installed = WORKER.with(|cell| {
        cell.set(Local { shared: shared.clone(), index, lifo: Cell::new(None), parked: Cell::new(false) }).is_ok()
    });
    if !installed {
        // Cannot happen: the thread is new. Keep the counts right and stop.
        shared.searching.fetch_sub(1, SeqCst);
        return;
    }
    let mut worker = Worker {
        shared,
        index,
        searching: true,
        tick: 0,
        lifo_streak: 0,
        rng: (index as u32).wrapping_mul(0x9E37_79B9) | 1,
        park: None,
    };
    worker.run();
}

impl Worker {
    /// The worker's whole life is one of the reactor's `block_on`s: tasks run inside its poll,
    /// and a park is that poll returning `Pending`, after which the worker waits in epoll (or,
    /// if another thread does, on its thread's park).
    fn run(&mut self) {
        reactor::block_on(std::future::poll_fn(|cx| self.poll_run(cx)), Waiting::Drive);
        self.drain();
    }

    /// Runs tasks until none is left, then parks: `Pending` until notified (or, while spinning,
    /// woken at once so that `block_on` polls the reactor without blocking and polls this again).
    fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if self.park.is_some() {
                if self.poll_park(cx).is_pending() {
                    return Poll::Pending;
                }
                self.end_park();
            }
            if self.shared.shutdown.load(SeqCst) {
                return Poll::Ready(());
            }
            if !self.searching {
                if let Some(runnable) = self.next_local() {
                    self.wake_other_if_work_waits();
                    self.run_task(runnable);
                    if self.tick % INJECTOR_INTERVAL == 0 {
                        // Busy: events may wait with nobody in epoll.
                        Reactor::get().poll_if_free();
                    }
                    continue;
                }
                self.searching = true;
                self.shared.searching.fetch_add(1, SeqCst);
            }
            // The LIFO slot first: a parked worker may have woken a task there.
            if let Some(runnable) = self.local().or_else(|| self.steal()) {
                self.stop_searching();
                self.run_task(runnable);
                continue;
            }
            self.begin_park();
        }
    }

    /// Wakes a sleeping worker when tasks have waited in this worker's local queue for
    /// [`WAKE_OTHER_AFTER`]; called at each scheduling point.
    fn wake_other_if_work_waits(&mut self) {
        let shared = &self.shared;
        let slot = &shared.workers[self.index];
        let since = slot.queued_since.load(Relaxed);
        if slot.queue.is_empty() {
            if since != 0 {
                slot.queued_since.store(0, Relaxed);
            }
            return;
        }
        let now = shared.nanos_now();
        if since == 0 {
            // Queued here by a steal or the fairness cap.
            slot.queued_since.store(now, Relaxed);
        } else if now.saturating_sub(since) >= WAKE_OTHER_AFTER.as_nanos() as u64 {
            slot.queued_since.store(now, Relaxed);
            shared.notify();
        }
    }

    fn run_task(&mut self, runnable: Runnable) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| runnable.run())) {
            log::error!(
                "scheduler: a task panicked ({}); the task ends, its worker thread goes on",
                panic_message(&*payload)
            );
        }
    }

    fn local(&self) -> Option<Runnable> {
        WORKER.with(|cell| cell.get().and_then(|l| l.lifo.take()))
    }

    fn set_parked(&self, parked: bool) {
        WORKER.with(|cell| {
            if let Some(local) = cell.get() {
                local.parked.set(parked);
            }
        });
    }

    /// The next task of this worker: now and then the injector, else the LIFO slot (within the
    /// fairness cap), else the local queue, else the injector.
    fn next_local(&mut self) -> Option<Runnable> {
        let shared = &self.shared;
        let queue = &shared.workers[self.index].queue;
        self.tick = self.tick.wrapping_add(1);
        if self.tick % INJECTOR_INTERVAL == 0 {
            if let Ok(runnable) = shared.injector.pop() {
                return Some(runnable);
            }
        }
        if let Some(runnable) = self.local() {
            let others_queued = !queue.is_empty();
            if self.lifo_streak < LIFO_CAP || (!others_queued && shared.injector.is_empty()) {
                self.lifo_streak += 1;
                return Some(runnable);
            }
            // Fairness: the others go first (those of the injector too, when the local queue
            // held nobody but this task).
            shared.push_local(self.index, runnable);
            self.lifo_streak = 0;
            if !others_queued {
                if let Ok(runnable) = shared.injector.pop() {
                    return Some(runnable);
                }
            }
        }
        self.lifo_streak = 0;
        queue.pop().ok().or_else(|| shared.injector.pop().ok())
    }

    /// Takes half of another worker's local queue (running the first task taken), else a task
    /// from the injector.
    fn steal(&mut self) -> Option<Runnable> {
        let workers = &self.shared.workers;
        let n = workers.len();
        // xorshift: a different victim order per attempt spreads the stealers.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 17;
        self.rng ^= self.rng << 5;
        let start = self.rng as usize % n;
        let own = &workers[self.index].queue;
        for k in 0..n {
            let victim = (start + k) % n;
            if victim == self.index {
                continue;
            }
            let from = &workers[victim].queue;
            let Ok(first) = from.pop() else { continue };
            for _ in 0..from.len() / 2 {
                let Ok(runnable) = from.pop() else { break };
                self.shared.push_local(self.index, runnable);
            }
            return Some(first);
        }
        own.pop().ok().or_else(|| self.shared.injector.pop().ok())
    }

    /// Leaves the searching state after finding work; the last searcher wakes another worker
    /// if more work waits, so parallelism is not lost.
    fn stop_searching(&mut self) {
        self.searching = false;
        if self.shared.searching.fetch_sub(1, SeqCst) == 1 && self.shared.has_stealable_work() {
            self.shared.notify();
        }
    }

    /// At shutdown: drop what is still queued here (cancelling those tasks).
    fn drain(&mut self) {
        drop(self.local());
        while self.shared.workers[self.index].queue.pop().is_ok() {}
    }
}

#[cfg(test)]
mod tests;
