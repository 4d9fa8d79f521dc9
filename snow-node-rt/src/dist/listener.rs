//! The distribution listener: accepts TCP connections and runs each handshake in its own task,
//! so a peer that connects and never finishes cannot delay anyone else. Connections are refused
//! at once (closed before TLS) when `max_pending_handshakes` handshakes are already running, or
//! when their source address failed authentication too often in the last minute.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use async_net::TcpListener;
use futures_lite::future;

use super::core::{lock, Dist};
use super::session;

/// Accepts until the node shuts down.
pub(crate) async fn run(dist: Arc<Dist>, listener: TcpListener) {
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
        if lock(&dist.auth).blocked(addr.ip(), dist.opts.auth_failures_per_minute, Instant::now()) {
            log::debug!("{}: refused {addr}: too many failed authentications from it", dist.name);
            let _ = tcp.shutdown(std::net::Shutdown::Both);
            continue;
        }
        if dist.pending_handshakes.fetch_add(1, Ordering::AcqRel) >= dist.opts.max_pending_handshakes {
            dist.pending_handshakes.fetch_sub(1, Ordering::AcqRel);
            log::warn!(
                "{}: refused {addr}: {} handshakes already pending",
                dist.name,
                dist.opts.max_pending_handshakes
            );
            let _ = tcp.shutdown(std::net::Shutdown::Both);
            continue;
        }
        let task_dist = dist.clone();
        dist.spawn(async move {
            session::accept(task_dist.clone(), tcp, addr).await;
            task_dist.pending_handshakes.fetch_sub(1, Ordering::AcqRel);
        });
    }
    log::debug!("{}: distribution listener stopped", dist.name);
    let _ = dist.tasks_done.0.try_send(());
}
