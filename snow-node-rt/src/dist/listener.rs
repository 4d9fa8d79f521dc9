//! The distribution listener: accepts TCP connections and runs each handshake in its own task,
//! so a peer that connects and never finishes cannot delay anyone else. The sans-IO
//! [`Admission`](snow_shared::dist::admission::Admission) decides which connections may start a
//! handshake: they are refused at once (closed before TLS) when `max_pending_handshakes` are
//! already running, when their source already runs its share, or when their source failed
//! authentication too often in the last minute; each handshake's outcome is reported back to it.

use std::sync::Arc;
use std::time::Instant;

use crate::reactor::tcp::TcpListener;
use futures_lite::future;
use snow_shared::dist::admission::Refusal;

use super::setup;
use super::state::Driver;
use crate::sync::lock;

/// Accepts until the node shuts down.
pub(crate) async fn run(dist: Arc<Driver>, listener: TcpListener) {
    let stop = dist.stop_rx.clone();
    loop {
        let next = future::or(async { Some(listener.accept().await) }, async {
            let _ = stop.recv().await;
            None
        })
        .await;
        let (tcp, addr) = match next {
            None => break,
            Some(Ok(pair)) => pair,
            Some(Err(e)) => {
                // Out of file descriptors and the like: pause instead of spinning.
                log::warn!("{}: accept failed: {e}", dist.name);
                dist.sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // A node of this host (the peer's address is the one it dialed) counts against the total only.
        let same_host = tcp.local_addr().is_ok_and(|local| local.ip() == addr.ip());
        let admitted = if same_host {
            lock(&dist.admission).admit_same_host(addr.ip())
        } else {
            lock(&dist.admission).admit(addr.ip(), Instant::now())
        };
        let ticket = match admitted {
            Ok(ticket) => ticket,
            Err(refusal) => {
                // A flood from one source is logged at debug level only, so it cannot flood the log.
                match refusal {
                    Refusal::Busy { .. } => log::warn!("{}: refused {addr}: {refusal}", dist.name),
                    _ => log::debug!("{}: refused {addr}: {refusal}", dist.name),
                }
                let _ = tcp.shutdown(std::net::Shutdown::Both);
                continue;
            }
        };
        let task_dist = dist.clone();
        dist.spawn(async move {
            let outcome = setup::accept(task_dist.clone(), tcp, addr).await;
            lock(&task_dist.admission).finish(ticket, outcome, Instant::now());
        });
    }
    log::debug!("{}: distribution listener stopped", dist.name);
    let _ = dist.tasks_done.0.try_send(());
}
