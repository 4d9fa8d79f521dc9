//! Keeping the node registered with snow-epmd: the registration lives as long as its TCP
//! connection, so when snow-epmd restarts the node registers again by itself, asking for the
//! creation it already has (its pids carry it, so that is what `snow-epmd list` and gossip must
//! advertise), and at shutdown it closes the connection, which unregisters it. Retries are spaced
//! by a backoff capped at [`REREGISTER_MAX_DELAY`], so a restarted daemon sees the node again
//! within about a second of listening.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::future;
use snow_epmd::client::{register_requesting, Registration, DEFAULT_TIMEOUT};
use snow_shared::dist::backoff::{Backoff, DEFAULT_BASE};

use super::state::Driver;

/// Longest wait between two re-registration attempts. A node learns at once that snow-epmd went
/// away (its registration connection closes) and then keeps trying; with this cap (jittered over
/// half to all of it by [`Backoff`]) it registers within about 1 s of the daemon listening again,
/// which keeps the daemon's view of the node (and gossip's) accurate, while one local attempt
/// per second costs nothing.
pub(crate) const REREGISTER_MAX_DELAY: Duration = Duration::from_secs(1);

/// The retry schedule after snow-epmd dropped the registration: doubling from 100 ms, capped at
/// [`REREGISTER_MAX_DELAY`], jittered so that a host's nodes do not all knock at once.
fn reregister_backoff() -> Backoff {
    Backoff::new(DEFAULT_BASE, REREGISTER_MAX_DELAY)
}

/// Runs `work` until it finishes (`false`) or the node stops first (`true`).
async fn stopped_during(stop: &async_channel::Receiver<()>, work: impl std::future::Future<Output = ()>) -> bool {
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
pub(crate) async fn keep_registered(dist: Arc<Driver>, mut reg: Registration, port: u16) {
    let stop = dist.stop_rx.clone();
    loop {
        if stopped_during(&stop, reg.closed()).await {
            reg.close();
            log::info!("{}: unregistered from snow-epmd at {}", dist.name, dist.epmd);
            let _ = dist.tasks_done.0.try_send(());
            return;
        }
        log::warn!("{}: snow-epmd at {} dropped our registration; registering again", dist.name, dist.epmd);
        let mut backoff = reregister_backoff();
        // The node was started with a registration, whose creation is never 0 (builder.rs).
        let creation = NonZeroU32::new(dist.creation).unwrap_or(NonZeroU32::MIN);
        reg = loop {
            match register_requesting(&dist.epmd, &dist.name, port, creation, DEFAULT_TIMEOUT).await {
                Ok(new) => {
                    let (kept, got) = (dist.creation, new.creation());
                    if got != kept {
                        log::warn!(
                            "{}: re-registered with snow-epmd at {}, which assigned creation {got} instead of this \
                             node's {kept} (the daemon does not hold our entry as ours any more: it changed \
                             meanwhile or another daemon has the name); `snow-epmd list`, lookups and gossip now \
                             advertise {got} while this node's pids carry {kept}. Connections still work (the \
                             handshake carries {kept}); restart the node to make them agree",
                            dist.name,
                            dist.epmd
                        );
                    } else {
                        log::info!("{}: re-registered with snow-epmd, creation {kept} kept", dist.name);
                    }
                    break new;
                }
                Err(e) => {
                    let delay = backoff.next_delay(rand::random());
                    log::warn!("{}: cannot re-register with snow-epmd: {e}; retrying in {delay:?}", dist.name);
                    if stopped_during(&stop, dist.sleep(delay)).await {
                        let _ = dist.tasks_done.0.try_send(());
                        return;
                    }
                }
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn re_registration_retries_at_most_a_second_apart_with_jitter() {
        let mut backoff = reregister_backoff();
        // Random values as a uniform RNG gives them; a long outage (many failed attempts).
        let delays: Vec<Duration> =
            (0u64..40).map(|i| backoff.next_delay(i.wrapping_mul(0x9e37_79b9_7f4a_7c15))).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(1)), "{delays:?}");
        assert!(delays[0] < Duration::from_millis(200), "the first retry comes quickly: {:?}", delays[0]);
        // At the cap: jittered over 0.5-1 s, so not every node retries in the same instant.
        let (low, high) = (backoff.next_delay(0), backoff.next_delay(u64::MAX));
        assert!(low >= Duration::from_millis(500) && low < high, "{low:?} {high:?}");
    }
}
