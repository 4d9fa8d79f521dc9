//! Keeping the node registered with snow-epmd: the registration lives as long as its TCP
//! connection, so when snow-epmd restarts the node registers again by itself (with backoff), and
//! at shutdown it closes the connection, which unregisters it.

use std::sync::Arc;

use futures_lite::future;
use snow_epmd::client::{register, Registration};
use snow_shared::dist::backoff::Backoff;

use super::core::Dist;

/// Runs `work` until it finishes (`false`) or the node stops first (`true`).
async fn stopped_during(stop: &async_std::channel::Receiver<()>, work: impl std::future::Future<Output = ()>) -> bool {
    future::or(
        async {
            work.await;
            false
        },
        async {
            let _ = stop.recv().await;
            true
        },
    )
    .await
}

/// Holds `reg` until shutdown, re-registering whenever snow-epmd drops it.
pub(crate) async fn keep_registered(dist: Arc<Dist>, mut reg: Registration, port: u16) {
    let stop = dist.stop_rx.clone();
    loop {
        if stopped_during(&stop, reg.closed()).await {
            reg.close();
            log::info!("{}: unregistered from snow-epmd at {}", dist.name, dist.epmd);
            return;
        }
        log::warn!("{}: snow-epmd at {} dropped our registration; registering again", dist.name, dist.epmd);
        let mut backoff = Backoff::default();
        reg = loop {
            match register(&dist.epmd, &dist.name, port).await {
                Ok(new) => {
                    if new.creation() != dist.creation {
                        log::info!(
                            "{}: re-registered with snow-epmd (it assigned creation {}; this node keeps creation {}, so its pids stay valid)",
                            dist.name,
                            new.creation(),
                            dist.creation
                        );
                    } else {
                        log::info!("{}: re-registered with snow-epmd", dist.name);
                    }
                    break new;
                }
                Err(e) => {
                    let delay = backoff.next_delay(rand::random());
                    log::warn!("{}: cannot re-register with snow-epmd: {e}; retrying in {delay:?}", dist.name);
                    if stopped_during(&stop, async_std::task::sleep(delay)).await {
                        return;
                    }
                }
            }
        };
    }
}
