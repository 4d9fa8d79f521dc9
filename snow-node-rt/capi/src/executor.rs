//! Where the runtime's own tasks run (connection readers and writers, the listener, the snow-epmd
//! keeper, waits for replies): on snow-node-rt's scheduler threads, or on the embedder's own
//! scheduler, which gets each runnable task through its `schedule` callback and runs it with
//! `snow_task_run` on a thread of its choosing. Either way the runtime never assumes that the
//! thread calling into it is one of its own.

use std::ffi::c_void;
use std::future::Future;
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use async_task::Runnable;
use snow_node_rt::seam::BoxFuture;
use snow_node_rt::{PoolRuntime, Runtime};

use crate::status::*;

/// A runnable task of the runtime, handed to the embedder's `schedule` callback. Opaque. Each
/// pointer must be given back exactly once: to `snow_task_run` (normally) or `snow_task_drop`
/// (when the embedder's scheduler shuts down without running it).
pub struct snow_task {
    _opaque: [u8; 0],
}

/// The embedder's scheduler: called from any thread, possibly from inside a call of this library
/// (even `snow_task_run` itself), whenever a task becomes runnable. It must only queue the task
/// and return; the embedder then calls `snow_task_run(task)` on one of its threads.
pub type snow_schedule_fn = Option<unsafe extern "C" fn(ctx: *mut c_void, task: *mut snow_task)>;

/// [`snow_schedule_fn`] once checked non-null.
type ScheduleFn = unsafe extern "C" fn(ctx: *mut c_void, task: *mut snow_task);

/// The embedder's context pointer. The callbacks' contract makes it usable from any thread.
#[derive(Clone, Copy)]
pub(crate) struct Ctx(pub *mut c_void);

impl Ctx {
    /// The pointer (a method, so that closures capture the whole `Ctx`, which is `Send`).
    pub fn get(self) -> *mut c_void {
        self.0
    }
}

// SAFETY: the header's contract: every callback given this pointer may be called from any thread,
// and the embedder keeps what it points at valid and thread-safe until the node is freed.
unsafe impl Send for Ctx {}
// SAFETY: as above.
unsafe impl Sync for Ctx {}

/// The runtime of one node: a [`Runtime`] that counts its live tasks, so that stopping a node
/// can wait until none is left (after which no callback is called).
pub(crate) struct Executor {
    schedule: Option<(ScheduleFn, Ctx)>,
    live: Arc<AtomicUsize>,
}

impl Executor {
    pub fn new(schedule: snow_schedule_fn, ctx: Ctx) -> Executor {
        Executor { schedule: schedule.map(|f| (f, ctx)), live: Arc::new(AtomicUsize::new(0)) }
    }

    /// Tasks spawned and not yet finished or dropped.
    pub fn live_tasks(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }
}

/// A task that counts itself among the live ones until it is dropped.
struct Counted {
    inner: BoxFuture<()>,
    live: Arc<AtomicUsize>,
}

impl Counted {
    fn new(inner: BoxFuture<()>, live: Arc<AtomicUsize>) -> Counted {
        live.fetch_add(1, Ordering::AcqRel);
        Counted { inner, live }
    }
}

impl Future for Counted {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.inner.as_mut().poll(cx)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Runtime for Executor {
    fn spawn(&self, task: BoxFuture<()>) {
        let task = Counted::new(task, self.live.clone());
        match self.schedule {
            None => PoolRuntime.spawn(Box::pin(task)),
            Some((schedule, ctx)) => {
                let (runnable, handle) = async_task::spawn(task, move |runnable: Runnable| {
                    let raw = runnable.into_raw().as_ptr().cast::<snow_task>();
                    // SAFETY: the embedder's callback, with its own context, per the contract of
                    // snow_schedule_fn.
                    unsafe { schedule(ctx.get(), raw) };
                });
                handle.detach();
                runnable.schedule();
            }
        }
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        match self.schedule {
            None => PoolRuntime.sleep_until(deadline),
            // async-io's timer: its reactor runs on a thread of its own when nothing else drives
            // it, so no thread of the embedder ever blocks in it.
            Some(_) => Box::pin(async move {
                async_io::Timer::at(deadline).await;
            }),
        }
    }
}

/// Runs a task that the `schedule` callback handed over, until it waits again (it is then
/// scheduled again when it can go on) or finishes. The pointer is consumed: do not use it again.
///
/// # Safety
/// `task` must be a pointer given to `schedule` and not yet given back.
#[no_mangle]
pub unsafe extern "C" fn snow_task_run(task: *mut snow_task) -> snow_status {
    guard("snow_task_run", || {
        let raw = NonNull::new(task.cast::<()>()).ok_or_else(|| Failure::argument("task is null"))?;
        // SAFETY: the caller's contract: a pointer from Runnable::into_raw, given back once.
        let runnable = unsafe { Runnable::<()>::from_raw(raw) };
        runnable.run();
        Ok(SNOW_OK)
    })
}

/// Drops a task without running it (the runtime's work it stood for is abandoned): for a
/// scheduler that shuts down with tasks still queued. The pointer is consumed.
///
/// # Safety
/// As `snow_task_run`.
#[no_mangle]
pub unsafe extern "C" fn snow_task_drop(task: *mut snow_task) -> snow_status {
    guard("snow_task_drop", || {
        let raw = NonNull::new(task.cast::<()>()).ok_or_else(|| Failure::argument("task is null"))?;
        // SAFETY: the caller's contract: a pointer from Runnable::into_raw, given back once.
        drop(unsafe { Runnable::<()>::from_raw(raw) });
        Ok(SNOW_OK)
    })
}
