//! One established connection: its output queue, its TLS state, and the reader and writer tasks
//! that move its bytes (shared/ARCHITECTURE.md).
//!
//! After the handshake the connection drives rustls itself (no stream wrapper): one
//! [`rustls::Connection`] under a short-held lock encrypts outgoing frames and decrypts incoming
//! records, and the TCP socket is read and written without blocking.
//!
//! - **Write-through**: a sender whose frame finds the queue empty, TLS output flushed and the
//!   connection quiet for [`QUIET`] encrypts the frame and writes it to the socket itself: no hand-off
//!   to the writer task, no wake-up, one syscall. A busy connection (frames queued, or anything
//!   written within [`QUIET`]) queues instead, so back-to-back sends are coalesced by the writer.
//!   Per-sender FIFO holds because everything reaches the socket through the one TLS state, in
//!   the order it took its lock, and the writer pops queued frames only while holding that lock.
//! - The **writer** drains the [`Outbound`] scheduler in batches of up to [`BATCH_BYTES`] (many
//!   small frames coalesced into few TLS records and one `writev`), and finishes writes the socket
//!   could not take at once. It waits on a channel only: no timer per wait. Woken, it first yields
//!   once, to the back of its thread's run queue: the processes ready there (the callers a batch
//!   of replies woke, say) run first and queue what they send, which then leaves in one write.
//!   Waking it in the scheduler's LIFO slot instead ran it after each sender, one write per
//!   message: a send costs a TCP segment on loopback, and that was half of a remote call's CPU
//!   (README, "Benchmarks", has the before and after).
//! - The **ticker** wakes at the liveness deadlines: it queues a TICK when the connection has been
//!   silent for ticktime/4, and declares the peer down when nothing arrived for a whole ticktime or
//!   a write has been stalled that long. It then shuts the TCP socket, which ends the other tasks.
//! - The **reader** reads up to [`READ_BUFFER`] bytes of TLS records per wake-up, decrypts them,
//!   feeds the plaintext to [`Inbound`] (frames, fragment reassembly, decoding, all with limits) and
//!   dispatches each control message to the local processes. After [`READS_PER_TURN`] reads that
//!   found data waiting it yields, so the processes it woke run even while a bulk transfer keeps
//!   the socket full. Any protocol error closes this connection only. When it ends, the node is
//!   reported down.

use std::io::{BufRead, IoSlice, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, TryLockError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::reactor::tcp::TcpStream;
use async_channel::{Receiver, Sender};
use snow_shared::dist::control::Control;
use snow_shared::dist::handshake::PeerInfo;
use snow_shared::dist::inbound::Inbound;
use snow_shared::dist::liveness::{Liveness, LivenessAction};
use snow_shared::dist::outbound::{Encoded, Lane, Outbound, OutboundConfig};
use snow_shared::dist::Flags;
use snow_shared::fragment::{ReassemblyLimits, DEFAULT_FRAGMENT_SIZE};
use snow_shared::frame::{frame_header, DEFAULT_MAX_FRAME};
use snow_shared::NodeName;

use super::link::{Frame, Link, Pushed};
use super::reactions::{self, Reaction};
use super::state::{Driver, Origin};
use crate::seam::Host;
use crate::sync::lock;

/// Target size of one write: enough frames to fill several TLS records per syscall.
pub(crate) const BATCH_BYTES: usize = 256 << 10;
/// Batches the writer sends before it yields to other tasks.
const BATCHES_PER_TURN: usize = 8;
/// Most ciphertext read from the socket per wake-up of the reader (many TLS records per syscall).
const READ_BUFFER: usize = 256 << 10;
/// The reader's buffer at first: two full TLS records. It doubles, up to [`READ_BUFFER`], each
/// time a read fills it, so only a connection that carries bulk pays for the large buffer. A
/// forming mesh opens thousands of connections that stay quiet, and zeroing (and faulting in)
/// 256 KiB for each of them was about a twentieth of the formation's CPU (README, "Benchmarks").
const FIRST_READ_BUFFER: usize = 2 * (16 << 10) + 1024;
/// Reads that found data waiting, in a row, after which the reader yields to other tasks. A busy
/// connection always has data, so without this its reader would keep its thread for a whole
/// transfer, and the processes it delivered to (queued behind it on that thread) would wait just
/// as long. A read that has to wait ends the turn anyway, so quiet connections never yield.
const READS_PER_TURN: u32 = 4;
/// How long a connection must have been silent before a sender writes through to the socket
/// itself. Shorter gaps mean a burst: queue, and let the writer coalesce.
const QUIET: Duration = Duration::from_micros(20);
/// Largest frame payload written through; larger messages go through the queue.
const WRITE_THROUGH_MAX: usize = DEFAULT_FRAGMENT_SIZE;

/// An established, authenticated connection to one peer node.
pub(crate) struct Conn {
    pub peer: NodeName,
    pub creation: u32,
    pub flags: Flags,
    out: Mutex<Outbound>,
    /// The TLS state, once the handshake has handed it over ([`start`]).
    tls: Mutex<Option<rustls::Connection>>,
    wake_tx: Sender<()>,
    wake_rx: Receiver<()>,
    /// Closed by [`Conn::close`]: ends the ticker's wait at once.
    stop_tx: Sender<()>,
    stop_rx: Receiver<()>,
    room: Mutex<Vec<Waker>>,
    closed: AtomicBool,
    /// Held by the reader while it delivers what it decoded; taken by whoever declares the
    /// connection down, after closing it, so that nothing the peer sent is delivered after the
    /// `{:nodedown, peer}` and `:noconnection` signals ([`Conn::quiesce`]).
    dispatching: Mutex<()>,
    /// The socket, read and written without blocking through its reactor registration.
    tcp: TcpStream,
    liveness: Mutex<Liveness>,
    /// Time origin of the two clocks below.
    born: Instant,
    /// Nanoseconds after `born` of the last write to the socket (0: none yet); the ticker feeds
    /// it to the liveness state.
    last_write: AtomicU64,
    /// Nanoseconds after `born` since which a write has been waiting for the socket; 0 if none.
    stalled_since: AtomicU64,
    /// Writes to the socket that took bytes (for tests and benchmarks: how well frames coalesce).
    socket_writes: AtomicU64,
}

/// What one turn of the writer achieved.
enum Pump {
    /// Everything queued is written.
    Idle,
    /// More is queued: yield, then continue.
    More,
}

impl Conn {
    /// A connection to the peer described by `info` over `tcp` (the socket it reads and writes).
    pub fn new(dist: &Driver, info: &PeerInfo, tcp: TcpStream) -> Arc<Conn> {
        let config = OutboundConfig {
            byte_budget: dist.opts.byte_budget,
            fragments: info.flags.contains(Flags::FRAGMENTS),
            atom_cache: info.flags.contains(Flags::ATOM_CACHE),
            ..OutboundConfig::default()
        };
        let (wake_tx, wake_rx) = async_channel::bounded(1);
        let (stop_tx, stop_rx) = async_channel::bounded(1);
        let now = Instant::now();
        Arc::new(Conn {
            peer: info.name.clone(),
            creation: info.creation,
            flags: info.flags,
            out: Mutex::new(Outbound::new(config)),
            tls: Mutex::new(None),
            wake_tx,
            wake_rx,
            stop_tx,
            stop_rx,
            room: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            dispatching: Mutex::new(()),
            tcp,
            liveness: Mutex::new(Liveness::new(dist.opts.ticktime, now)),
            born: now,
            last_write: AtomicU64::new(0),
            stalled_since: AtomicU64::new(0),
            socket_writes: AtomicU64::new(0),
        })
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.born).as_nanos()).unwrap_or(u64::MAX).max(1)
    }

    /// Sends a frame: refused only when `ceiling` is given and the queue holds that many bytes or
    /// more, or when the connection is closed. A message is encoded here, under the queue's lock,
    /// because the atom cache's state must follow the order frames are queued and written in
    /// (PROTOCOL.md 4.4). On a quiet connection the frame is written through by the calling task
    /// (module docs).
    pub fn push(&self, lane: Lane, frame: Frame<'_>, ceiling: Option<usize>) -> Pushed {
        let mut out = lock(&self.out);
        if self.is_closed() {
            return Pushed::Closed;
        }
        if ceiling.is_some_and(|ceiling| out.queued_bytes() >= ceiling) {
            return Pushed::AtCeiling;
        }
        let encoded = match frame {
            Frame::Encoded(bytes) => Encoded::plain(bytes),
            Frame::Message(msg, term_len) => out.encode_sized(&msg, term_len),
        };
        if out.is_empty() && encoded.payload.len() <= WRITE_THROUGH_MAX {
            let now = Instant::now();
            if self.nanos(now).saturating_sub(self.last_write.load(Ordering::Relaxed)) >= QUIET.as_nanos() as u64 {
                match self.tls.try_lock() {
                    Ok(mut tls) => match tls.as_mut() {
                        Some(tls) if !tls.wants_write() => {
                            // Holding the TLS lock with an empty queue: nothing popped is waiting
                            // to be encrypted, so this frame is next in every sender's order,
                            // and ahead of every frame encoded after it.
                            out.written_through(&encoded);
                            drop(out);
                            self.write_through(tls, &encoded.payload, now);
                            return Pushed::Clear;
                        }
                        _ => {}
                    },
                    Err(TryLockError::WouldBlock | TryLockError::Poisoned(_)) => {}
                }
            }
        }
        // The writer goes idle only after finding the queue empty (under this lock): a frame
        // added to a non-empty queue will be found without a wake-up.
        let was_empty = out.is_empty();
        out.push_encoded(lane, encoded);
        let over_budget = !out.has_room();
        drop(out);
        if was_empty {
            let _ = self.wake_tx.try_send(());
        }
        if over_budget {
            Pushed::OverBudget
        } else {
            Pushed::Clear
        }
    }

    /// Encrypts one whole frame and writes what the socket takes now; the writer finishes the rest.
    fn write_through(&self, tls: &mut rustls::Connection, payload: &[u8], now: Instant) {
        let header = match frame_header(payload.len()) {
            Ok(header) => header,
            Err(e) => {
                // Cannot happen: only frames up to WRITE_THROUGH_MAX come here.
                log::warn!("connection to {}: {e}; closing", self.peer);
                self.close();
                return;
            }
        };
        let frame = [IoSlice::new(&header), IoSlice::new(payload)];
        match tls.writer().write_vectored(&frame) {
            Ok(n) if n == header.len() + payload.len() => {}
            Ok(n) => {
                // Cannot happen without a TLS buffer limit; never leave half a frame behind.
                log::warn!("{}: TLS took {n} of {} bytes of a frame; closing", self.peer, payload.len() + 4);
                self.close();
                return;
            }
            Err(e) => {
                log::warn!("connection to {}: encrypting a frame failed: {e}; closing", self.peer);
                self.close();
                return;
            }
        }
        self.last_write.store(self.nanos(now), Ordering::Relaxed);
        let mut cx = Context::from_waker(noop_waker());
        match flush_tls(tls, &self.tcp, &self.socket_writes, &mut cx) {
            Poll::Ready(Ok(())) => {}
            // The socket is full: the writer waits for it and sends the rest.
            Poll::Pending => {
                let _ = self.wake_tx.try_send(());
            }
            Poll::Ready(Err(e)) => {
                log::debug!("connection to {}: write failed: {e}", self.peer);
                self.close();
            }
        }
    }

    /// Queues frames that waited for the connection, whatever the budget (they were bounded when
    /// they were queued).
    pub fn enqueue_all(&self, frames: Vec<(Lane, Vec<u8>)>) {
        {
            let mut out = lock(&self.out);
            for (lane, bytes) in frames {
                out.push(lane, bytes);
            }
        }
        let _ = self.wake_tx.try_send(());
    }

    /// The most bytes the queue ever held.
    pub fn queue_high_water(&self) -> usize {
        lock(&self.out).high_water()
    }

    /// Whether everything queued has been handed to the socket, or the connection is closed.
    /// The queue and the TLS state are looked at one after the other, never both locked at
    /// once (the writer locks them in the other order).
    pub fn is_flushed(&self) -> bool {
        if self.is_closed() {
            return true;
        }
        if !lock(&self.out).is_empty() {
            return false;
        }
        lock(&self.tls).as_ref().map_or(true, |tls| !tls.wants_write())
    }

    /// Writes to the socket so far.
    pub fn socket_writes(&self) -> u64 {
        self.socket_writes.load(Ordering::Relaxed)
    }

    /// Frame bytes written so far (headers included, before encryption).
    pub fn written_bytes(&self) -> u64 {
        lock(&self.out).written_bytes()
    }

    /// Whether the queue is under its byte budget.
    pub fn has_room(&self) -> bool {
        lock(&self.out).has_room()
    }

    /// `Ready` once the queue is under its budget or the connection closed; else registers
    /// `cx`'s waker to be woken when the writer drains it below the budget.
    pub fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_closed() || self.has_room() {
            return Poll::Ready(());
        }
        lock(&self.room).push(cx.waker().clone());
        // Re-check: the writer may have drained between the test and the registration.
        if self.is_closed() || self.has_room() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Waits until the reader has finished delivering what it is delivering now. Called after
    /// [`Conn::close`], which stops it from delivering more: from then on nothing from this
    /// connection reaches a local process.
    pub fn quiesce(&self) {
        drop(lock(&self.dispatching));
    }

    fn wake_room(&self) {
        let wakers = std::mem::take(&mut *lock(&self.room));
        for w in wakers {
            w.wake();
        }
    }

    /// Whether the connection has been closed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Closes the connection: the socket is shut (ending the tasks) and waiters are released.
    pub fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            let _ = self.tcp.shutdown(std::net::Shutdown::Both);
            let _ = self.wake_tx.try_send(());
            self.stop_tx.close();
            self.wake_room();
        }
    }

    /// One turn of the writer: finish pending TLS output, then pop, encrypt and write batches
    /// until the queue is empty, the socket is full (`Pending`, woken when writable) or the turn's
    /// share is used.
    fn pump(&self, cx: &mut Context<'_>, batch: &mut Vec<u8>) -> Poll<std::io::Result<Pump>> {
        let mut guard = lock(&self.tls);
        let Some(tls) = guard.as_mut() else { return Poll::Ready(Ok(Pump::Idle)) };
        for _ in 0..BATCHES_PER_TURN {
            match flush_tls(tls, &self.tcp, &self.socket_writes, cx) {
                Poll::Ready(Ok(())) => self.stalled_since.store(0, Ordering::Relaxed),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    let now = self.nanos(Instant::now());
                    let _ = self.stalled_since.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
                    return Poll::Pending;
                }
            }
            batch.clear();
            let room = {
                let mut out = lock(&self.out);
                out.pop_batch_into(BATCH_BYTES, batch);
                out.has_room()
            };
            if room {
                self.wake_room();
            }
            if batch.is_empty() {
                return Poll::Ready(Ok(Pump::Idle));
            }
            tls.writer().write_all(batch)?;
            self.last_write.store(self.nanos(Instant::now()), Ordering::Relaxed);
        }
        Poll::Ready(Ok(Pump::More))
    }

    /// Decrypts `ciphertext` (and any plaintext rustls already holds) into `inbound`.
    fn decrypt(&self, ciphertext: &[u8], inbound: &mut Inbound) -> Result<(), String> {
        let mut guard = lock(&self.tls);
        let Some(tls) = guard.as_mut() else { return Err("no TLS state".to_owned()) };
        let mut rest = ciphertext;
        loop {
            loop {
                let mut reader = tls.reader();
                match reader.fill_buf() {
                    Ok([]) => return Err("closed by the peer".to_owned()),
                    Ok(plain) => {
                        let n = plain.len();
                        inbound.feed(plain);
                        reader.consume(n);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(format!("TLS: {e}")),
                }
            }
            if rest.is_empty() {
                break;
            }
            tls.read_tls(&mut rest).map_err(|e| format!("TLS: {e}"))?;
            tls.process_new_packets().map_err(|e| format!("TLS: {e}"))?;
        }
        if tls.wants_write() {
            // A TLS-level answer (key update, alert) to send.
            let _ = self.wake_tx.try_send(());
        }
        Ok(())
    }
}

impl Link for Conn {
    fn peer(&self) -> &NodeName {
        &self.peer
    }
    fn creation(&self) -> u32 {
        self.creation
    }
    fn flags(&self) -> Flags {
        self.flags
    }
    fn push(&self, lane: Lane, frame: Frame<'_>, ceiling: Option<usize>) -> Pushed {
        Conn::push(self, lane, frame, ceiling)
    }
    fn enqueue_all(&self, frames: Vec<(Lane, Vec<u8>)>) {
        Conn::enqueue_all(self, frames)
    }
    fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        Conn::poll_room(self, cx)
    }
    fn close(&self) {
        Conn::close(self)
    }
    fn quiesce(&self) {
        Conn::quiesce(self)
    }
    fn queue_high_water(&self) -> usize {
        Conn::queue_high_water(self)
    }
    fn written_bytes(&self) -> u64 {
        Conn::written_bytes(self)
    }

    fn socket_writes(&self) -> u64 {
        Conn::socket_writes(self)
    }

    fn is_flushed(&self) -> bool {
        Conn::is_flushed(self)
    }
}

/// A waker that does nothing: the write-through path polls the socket once and hands anything
/// left to the writer task, which then waits with its own waker.
fn noop_waker() -> &'static Waker {
    struct Noop;
    impl std::task::Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    static NOOP: std::sync::OnceLock<Waker> = std::sync::OnceLock::new();
    NOOP.get_or_init(|| Waker::from(Arc::new(Noop)))
}

/// Writes rustls's pending output to the socket without blocking: `Pending` when the socket is
/// full (the waker in `cx` is registered for writability).
fn flush_tls(
    tls: &mut rustls::Connection,
    tcp: &TcpStream,
    writes: &AtomicU64,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<()>> {
    while tls.wants_write() {
        match tls.write_tls(&mut SocketWriter { tcp, cx }) {
            Ok(0) => {}
            Ok(_) => {
                writes.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Poll::Pending,
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
    Poll::Ready(Ok(()))
}

/// The socket as a non-blocking `std::io::Write` for rustls: a write the socket cannot take now
/// is `WouldBlock`, with the task in `cx` registered to be woken when it can.
struct SocketWriter<'a, 'b> {
    tcp: &'a TcpStream,
    cx: &'a mut Context<'b>,
}

impl Write for SocketWriter<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.tcp.poll_write(self.cx, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(std::io::ErrorKind::WouldBlock.into()),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
        match self.tcp.poll_write_vectored(self.cx, bufs) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(std::io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts the tasks of an installed connection, handing it the TLS state the handshake ended
/// with. `leftover` is the plaintext the handshake read past its last message.
pub(crate) fn start(dist: Arc<Driver>, conn: Arc<Conn>, mut tls: rustls::Connection, leftover: Vec<u8>) {
    // The output queue bounds what is buffered; rustls holds at most one batch or one frame more.
    tls.set_buffer_limit(None);
    *lock(&conn.tls) = Some(tls);
    let _ = conn.wake_tx.try_send(());
    dist.spawn(writer(dist.clone(), conn.clone()));
    dist.spawn(ticker(dist.clone(), conn.clone()));
    dist.spawn(reader(dist.clone(), conn, leftover));
}

async fn writer(dist: Arc<Driver>, conn: Arc<Conn>) {
    // Grows with the batches this connection writes: a quiet connection keeps a small one.
    let mut batch = Vec::new();
    let reason = loop {
        if conn.is_closed() {
            break None;
        }
        match std::future::poll_fn(|cx| conn.pump(cx, &mut batch)).await {
            Err(e) => break Some(format!("write failed: {e}")),
            Ok(Pump::More) => futures_lite::future::yield_now().await,
            Ok(Pump::Idle) => {
                // Woken by a new frame, a write-through the socket could not take, or close.
                if conn.wake_rx.recv().await.is_err() {
                    break None;
                }
                // Behind the processes ready on this thread, so that what they send joins the
                // batch (module docs).
                futures_lite::future::yield_now().await;
            }
        }
    };
    if let Some(reason) = reason {
        log::warn!("{}: closing connection to {}: {reason}", dist.name, conn.peer);
    }
    conn.close();
}

/// Keeps time for the connection: feeds the liveness rules (shared/src/dist/liveness.rs) what the
/// connection's writes and reads did, and does what they say: a tick, or closing the connection.
async fn ticker(dist: Arc<Driver>, conn: Arc<Conn>) {
    let ticktime = dist.opts.ticktime;
    let reason = loop {
        if conn.is_closed() {
            break None;
        }
        let now = Instant::now();
        let (action, deadline) = {
            let mut liveness = lock(&conn.liveness);
            // Writes (the writer's and the senders' written through) count as signs of life sent.
            let last_write = conn.last_write.load(Ordering::Relaxed);
            if last_write != 0 {
                liveness.on_sent(conn.born + Duration::from_nanos(last_write));
            }
            let stalled = conn.stalled_since.load(Ordering::Relaxed);
            liveness.on_write_stall((stalled != 0).then(|| conn.born + Duration::from_nanos(stalled)));
            let action = liveness.handle_timeout(now);
            (action, liveness.poll_timeout().unwrap_or(now))
        };
        match action {
            Some(LivenessAction::SendTick) => {
                lock(&conn.out).push(Lane::Urgent, Control::Tick.to_bytes());
                let _ = conn.wake_tx.try_send(());
            }
            Some(LivenessAction::PeerDown) => break Some(format!("no sign of life for {ticktime:?} (ticktime)")),
            Some(LivenessAction::WriteStalled) => break Some(format!("a write stalled for {ticktime:?} (ticktime)")),
            None => {}
        }
        let wait = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        if let Some(Err(_)) = dist.within(wait, conn.stop_rx.recv()).await {
            break None;
        }
    };
    if let Some(reason) = reason {
        log::warn!("{}: closing connection to {}: {reason}", dist.name, conn.peer);
    }
    conn.close();
}

async fn reader(dist: Arc<Driver>, conn: Arc<Conn>, leftover: Vec<u8>) {
    let mut inbound = Inbound::new(
        snow_shared::dist::control::DecodeContext::new(conn.flags),
        DEFAULT_MAX_FRAME,
        ReassemblyLimits::default(),
    )
    .only_from(conn.peer.clone());
    inbound.feed(&leftover);
    let mut buf = vec![0u8; FIRST_READ_BUFFER];
    let mut len = 0;
    let mut reads_this_turn = 0;
    let reason = 'conn: loop {
        // Also drains plaintext rustls decrypted during the handshake's last read.
        if let Err(e) = conn.decrypt(&buf[..len], &mut inbound) {
            break e;
        }
        if let Some(host) = dist.host() {
            // Nothing is delivered once the connection is closed: whoever closed it waits for
            // this gate before reporting the node down (`Conn::quiesce`).
            let _gate = lock(&conn.dispatching);
            loop {
                if conn.is_closed() {
                    break 'conn "closed".to_owned();
                }
                match inbound.next_message() {
                    Ok(Some(msg)) => dispatch(&dist, &*host, &conn, msg),
                    Ok(None) => break,
                    Err(e) => {
                        log::warn!("{}: closing connection to {}: {e}", dist.name, conn.peer);
                        break 'conn format!("protocol error: {e}");
                    }
                }
            }
        }
        if reads_this_turn >= READS_PER_TURN {
            reads_this_turn = 0;
            futures_lite::future::yield_now().await;
        }
        // The last read's bytes are decrypted by now.
        buf.resize(read_buffer_after(len, buf.len()), 0);
        let mut waited = false;
        let read = futures_lite::future::poll_fn(|cx| {
            let poll = conn.tcp.poll_read(cx, &mut buf);
            waited |= poll.is_pending();
            poll
        });
        let result = read.await;
        reads_this_turn = if waited { 0 } else { reads_this_turn + 1 };
        len = match result {
            Ok(0) => break "closed".to_owned(),
            Ok(n) => {
                lock(&conn.liveness).on_received(Instant::now());
                n
            }
            Err(e) => break format!("read failed: {e}"),
        };
    };
    let reason =
        if conn.is_closed() && reason.starts_with("closed") { "closed by this node".to_owned() } else { reason };
    dist.connection_down(&*conn, &reason);
}

/// The reader's buffer size after a read of `read` bytes into `size`: doubled (up to
/// [`READ_BUFFER`]) when the read filled it, since more is likely waiting.
fn read_buffer_after(read: usize, size: usize) -> usize {
    if read == size {
        (size * 2).min(READ_BUFFER)
    } else {
        size
    }
}

/// A signal the reader sends back to the peer (never refused).
const REPLY: Origin = Origin::Signal { by_process: false };

/// Acts on one control message from the peer: its reactions ([`reactions::react`]), with
/// replies queued on this connection as they are made, then what concerns the driver's state.
fn dispatch(dist: &Arc<Driver>, host: &dyn Host, conn: &Conn, msg: Control) {
    let mut reply = |msg: Control| {
        let _ = dist.send_on(conn, &msg, REPLY);
    };
    // A call's spawn reply and `:DOWN` are the driver's, never a process's.
    let msg = match msg {
        Control::SpawnReply { .. } | Control::MonitorExit { .. } => {
            match dist.call_message(&conn.peer, msg, &mut reply) {
                Some(msg) => msg,
                None => return,
            }
        }
        msg => msg,
    };
    match reactions::react(msg, host, &conn.peer, &mut reply) {
        Reaction::Done => {}
        Reaction::SpawnReply { reference, to, result } => {
            reactions::spawn_reply(dist, host, &conn.peer, reference, to, result, &mut reply)
        }
        Reaction::NodeList(nodes) => dist.on_node_list(&conn.peer, nodes),
        Reaction::SpawnRefused(why) => dist.warn_limited("spawn-refused", || why),
        Reaction::Cluster(msg) => {
            if let Err(e) = dist.cluster.message(&**dist, &conn.peer, msg) {
                log::warn!("{}: closing connection to {}: {e}", dist.name, conn.peer);
                conn.close();
            }
        }
        Reaction::Ignored(name) => log::debug!("{}: ignored {name} from {}", dist.name, conn.peer),
    }
}

#[cfg(test)]
mod tests {
    use super::{read_buffer_after, FIRST_READ_BUFFER, READ_BUFFER};

    #[test]
    fn the_read_buffer_doubles_only_after_a_read_that_filled_it_and_stops_at_its_limit() {
        assert_eq!(read_buffer_after(100, FIRST_READ_BUFFER), FIRST_READ_BUFFER);
        assert_eq!(read_buffer_after(FIRST_READ_BUFFER, FIRST_READ_BUFFER), 2 * FIRST_READ_BUFFER);
        let mut size = FIRST_READ_BUFFER;
        for _ in 0..16 {
            size = read_buffer_after(size, size);
        }
        assert_eq!(size, READ_BUFFER);
    }
}
