//! One established connection: its output queue, and the reader and writer tasks that move its
//! bytes (DESIGN.md 3.2).
//!
//! - The **writer** drains the [`Outbound`] scheduler in batches of up to [`BATCH_BYTES`]
//!   (many small frames coalesced into one TLS write), sends a TICK when the connection has been
//!   silent for ticktime/4, and declares the peer down when nothing arrived for a whole ticktime or
//!   a write stalls that long. It then shuts the TCP socket, which ends the reader.
//! - The **reader** feeds received bytes to [`Inbound`] (frames, fragment reassembly, decoding, all
//!   with limits) and dispatches each control message to the local processes. Any protocol error
//!   closes this connection only. When it ends, the node is reported down.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use async_std::channel::{Receiver, Sender};
use async_std::net::TcpStream;
use futures_lite::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use smol_timeout::TimeoutExt;
use snow_shared::dist::control::{Control, MonitorTarget};
use snow_shared::dist::handshake::PeerInfo;
use snow_shared::dist::inbound::Inbound;
use snow_shared::dist::liveness::{Liveness, LivenessAction};
use snow_shared::dist::outbound::{Lane, Outbound, OutboundConfig};
use snow_shared::dist::Flags;
use snow_shared::fragment::ReassemblyLimits;
use snow_shared::frame::DEFAULT_MAX_FRAME;
use snow_shared::{NodeName, Term};

use super::core::{lock, Dist};
use crate::node::{Node, Route};
use crate::reason;
use crate::seam::LocalProcesses;

/// Target size of one write: enough frames to fill several TLS records per syscall.
pub(crate) const BATCH_BYTES: usize = 256 << 10;
const READ_BUFFER: usize = 64 << 10;

/// An established, authenticated connection to one peer node.
pub(crate) struct Conn {
    pub peer: NodeName,
    pub creation: u32,
    pub flags: Flags,
    out: Mutex<Outbound>,
    wake_tx: Sender<()>,
    wake_rx: Receiver<()>,
    room: Mutex<Vec<Waker>>,
    closed: AtomicBool,
    tcp: TcpStream,
    liveness: Mutex<Liveness>,
}

impl Conn {
    /// A connection to the peer described by `info` over `tcp` (a handle used to shut the socket).
    pub fn new(dist: &Dist, info: &PeerInfo, tcp: TcpStream) -> Arc<Conn> {
        let config = OutboundConfig {
            byte_budget: dist.opts.byte_budget,
            fragments: info.flags.contains(Flags::FRAGMENTS),
            ..OutboundConfig::default()
        };
        let (wake_tx, wake_rx) = async_std::channel::bounded(1);
        Arc::new(Conn {
            peer: info.name.clone(),
            creation: info.creation,
            flags: info.flags,
            out: Mutex::new(Outbound::new(config)),
            wake_tx,
            wake_rx,
            room: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            tcp,
            liveness: Mutex::new(Liveness::new(dist.opts.ticktime, Instant::now())),
        })
    }

    /// Queues a frame unless the queue holds `cap` bytes or more (then it is dropped: `false`).
    pub fn enqueue(&self, lane: Lane, bytes: Vec<u8>, cap: usize) -> bool {
        {
            let mut out = lock(&self.out);
            if self.is_closed() || out.queued_bytes() >= cap {
                return false;
            }
            out.push(lane, bytes);
        }
        let _ = self.wake_tx.try_send(());
        true
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

    /// Whether the queue is under its byte budget.
    pub fn has_room(&self) -> bool {
        lock(&self.out).has_room()
    }

    /// Waits until the queue is under its budget or the connection closed.
    pub async fn wait_room(&self) {
        std::future::poll_fn(|cx| {
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
        })
        .await
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

    /// Closes the connection: the socket is shut (ending both tasks) and waiters are released.
    pub fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            let _ = self.tcp.shutdown(std::net::Shutdown::Both);
            let _ = self.wake_tx.try_send(());
            self.wake_room();
        }
    }
}

/// Starts the reader and writer tasks of an installed connection. `leftover` is what the
/// handshake read past its last message.
pub(crate) fn start<S>(dist: Arc<Dist>, conn: Arc<Conn>, stream: S, leftover: Vec<u8>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (r, w) = futures_lite::io::split(stream);
    async_std::task::spawn(writer(dist.clone(), conn.clone(), w));
    async_std::task::spawn(reader(dist, conn, r, leftover));
}

async fn writer<W: AsyncWrite + Unpin>(dist: Arc<Dist>, conn: Arc<Conn>, mut w: W) {
    let ticktime = dist.opts.ticktime;
    let mut batch = Vec::with_capacity(BATCH_BYTES + (64 << 10));
    let reason = loop {
        if conn.is_closed() {
            break None;
        }
        let now = Instant::now();
        match lock(&conn.liveness).handle_timeout(now) {
            Some(LivenessAction::SendTick) => lock(&conn.out).push(Lane::Urgent, Control::Tick.to_bytes()),
            Some(LivenessAction::PeerDown) => break Some(format!("no sign of life for {ticktime:?} (ticktime)")),
            None => {}
        }
        batch.clear();
        let room = {
            let mut out = lock(&conn.out);
            out.pop_batch_into(BATCH_BYTES, &mut batch);
            out.has_room()
        };
        if room {
            conn.wake_room();
        }
        if !batch.is_empty() {
            match w.write_all(&batch).timeout(ticktime).await {
                None => break Some(format!("a write stalled for {ticktime:?} (ticktime)")),
                Some(Err(e)) => break Some(format!("write failed: {e}")),
                Some(Ok(())) => lock(&conn.liveness).on_sent(Instant::now()),
            }
            continue;
        }
        match w.flush().timeout(ticktime).await {
            None => break Some(format!("a write stalled for {ticktime:?} (ticktime)")),
            Some(Err(e)) => break Some(format!("write failed: {e}")),
            Some(Ok(())) => {}
        }
        let deadline = lock(&conn.liveness).poll_timeout().unwrap_or(now);
        let wait = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        // Woken by a new frame, by close, or at the liveness deadline.
        let _ = conn.wake_rx.recv().timeout(wait).await;
    };
    if let Some(reason) = reason {
        log::warn!("{}: closing connection to {}: {reason}", dist.name, conn.peer);
    }
    conn.close();
}

async fn reader<R: AsyncRead + Unpin>(dist: Arc<Dist>, conn: Arc<Conn>, mut r: R, leftover: Vec<u8>) {
    let mut inbound = Inbound::new(
        snow_shared::dist::control::DecodeContext::new(conn.flags),
        DEFAULT_MAX_FRAME,
        ReassemblyLimits::default(),
    );
    inbound.feed(&leftover);
    let mut buf = vec![0u8; READ_BUFFER];
    let reason = 'conn: loop {
        if let Some(node) = dist.node() {
            loop {
                match inbound.next_message() {
                    Ok(Some(msg)) => dispatch(&dist, &node, &conn, msg),
                    Ok(None) => break,
                    Err(e) => {
                        log::warn!("{}: closing connection to {}: {e}", dist.name, conn.peer);
                        break 'conn format!("protocol error: {e}");
                    }
                }
            }
        }
        match r.read(&mut buf).await {
            Ok(0) => break "closed".to_owned(),
            Ok(n) => {
                lock(&conn.liveness).on_received(Instant::now());
                inbound.feed(&buf[..n]);
            }
            Err(e) => break format!("read failed: {e}"),
        }
    };
    let reason = if conn.is_closed() && reason == "closed" { "closed by this node".to_owned() } else { reason };
    dist.connection_down(&conn, &reason);
}

/// Acts on one control message from the peer.
fn dispatch(dist: &Arc<Dist>, node: &Node, conn: &Conn, msg: Control) {
    let ours = |pid: &snow_shared::Pid| pid.node() == &dist.name;
    match msg {
        Control::Send { to, msg, .. } => {
            if ours(&to) {
                node.deliver_message(&to, msg);
            }
        }
        Control::RegSend { name, msg, .. } => {
            node.deliver_named(name.as_str(), msg);
        }
        Control::Link { from, to } => {
            if !node.add_remote_link(&to, &from) {
                dist.reply(conn, &Control::Exit { from: to, to: from, reason: reason::noproc() });
            }
        }
        Control::Unlink { from, to } => node.remove_remote_link(&to, &from),
        Control::Exit { from, to, reason } => node.deliver_exit(&from, &to, reason, true),
        Control::Exit2 { from, to, reason } => node.deliver_exit(&from, &to, reason, false),
        Control::Monitor { from, target, reference } => {
            let target_pid = match &target {
                MonitorTarget::Pid(p) => Some(p.clone()),
                MonitorTarget::Name(name) => node.resolve_name(name.as_str()),
            };
            let attached = target_pid.as_ref().is_some_and(|t| node.add_remote_monitor(t, &from, &reference));
            if !attached {
                let from_target = target_pid.map(MonitorTarget::Pid).unwrap_or(target);
                let down = Control::MonitorExit { from: from_target, to: from, reference, reason: reason::noproc() };
                dist.reply(conn, &down);
            }
        }
        Control::Demonitor { target: MonitorTarget::Pid(target), reference, .. } => {
            node.remove_remote_monitor(&target, &reference)
        }
        Control::Demonitor { .. } => {}
        Control::MonitorExit { from: MonitorTarget::Pid(target), to, reference, reason } => {
            node.deliver_down(&to, &reference, &target, reason)
        }
        Control::MonitorExit { .. } => {}
        Control::SpawnReq { reference, from, function, args, opts } => {
            let mut reply = |pid: &snow_shared::Pid| {
                let ok =
                    Control::SpawnReply { reference: reference.clone(), to: from.clone(), result: Ok(pid.clone()) };
                dist.reply(conn, &ok);
            };
            let link_to = opts.link.then_some(&from);
            match node.spawn_registered(function.as_str(), Term::List(args), link_to, &mut reply) {
                Ok(pid) => {
                    if opts.monitor && !node.add_remote_monitor(&pid, &from, &reference) {
                        let down = Control::MonitorExit {
                            from: MonitorTarget::Pid(pid),
                            to: from,
                            reference,
                            reason: reason::noproc(),
                        };
                        dist.reply(conn, &down);
                    }
                }
                Err(e) => {
                    log::info!("{}: refused a remote spawn from {}: {e}", dist.name, conn.peer);
                    let why = Term::tuple([Term::atom("not_spawnable"), Term::String(function.as_str().to_owned())]);
                    dist.reply(conn, &Control::SpawnReply { reference, to: from, result: Err(why) });
                }
            }
        }
        Control::SpawnReply { reference, to, result } => spawn_reply(dist, node, conn, reference, to, result),
        Control::NodeList { nodes } => super::mesh::on_node_list(dist, &conn.peer, nodes),
        Control::Tick => {}
        other => {
            // Negotiated extensions and messages of features this build does not offer.
            log::debug!("{}: ignored {} from {}", dist.name, other.name(), conn.peer);
        }
    }
}

/// The answer to one of our remote spawns: record the link (for spawn_link) before anything the
/// new process sends can be processed, then wake the requester.
fn spawn_reply(
    dist: &Dist,
    node: &Node,
    conn: &Conn,
    reference: snow_shared::Ref,
    to: snow_shared::Pid,
    result: Result<snow_shared::Pid, Term>,
) {
    let Some(wait) = lock(&dist.spawns).remove(&reference) else {
        if let Ok(pid) = result {
            log::debug!("{}: late spawn reply for {pid} from {}", dist.name, conn.peer);
        }
        return;
    };
    if let (true, Ok(child)) = (wait.link, &result) {
        let linked = match node.route(&to) {
            Route::Local(p) => {
                let mut st = p.lock();
                if st.accepts_relations() {
                    st.rel().links.insert(child.clone());
                    true
                } else {
                    false
                }
            }
            Route::Dead | Route::Remote => false,
        };
        if !linked {
            dist.reply(conn, &Control::Exit { from: to, to: child.clone(), reason: reason::noproc() });
        }
    }
    let _ = wait.reply.try_send(result);
}
