//! Drives the sans-IO gossip exchange (`snow_shared::epmd::exchange`) over TCP: a round every
//! `gossip_interval` to the targets the gossip state picks (initiator side), and the responder
//! side for incoming GOSSIP requests. Each exchange is Syn -> Ack -> Ack2 on one connection,
//! every step under a deadline. Anything that fails authentication or decoding changes nothing
//! and is logged once a minute per peer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_executor::Executor;
use async_net::TcpStream;
use smol_timeout::TimeoutExt;
use snow_shared::epmd::exchange::{self, ExchangeError};
use snow_shared::epmd::gossip::{Report, Target};
use snow_shared::epmd::wire::{encode_request, Request};

use crate::clock::now_ms;
use crate::io::{read_request, write_all, ReadError};
use crate::state::Shared;

/// Most exchanges this daemon has in flight at once, as initiator.
pub(crate) fn max_in_flight(fanout: usize) -> usize {
    fanout.max(1) * 4 + snow_shared::epmd::gossip::GossipConfig::default().pin_probes
}

/// The gossip and timer loop of one daemon.
pub(crate) async fn run(sh: Arc<Shared>, ex: Arc<Executor<'static>>) {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_in_flight = max_in_flight(sh.config.fanout);
    loop {
        async_io::Timer::after(sh.config.gossip_interval).await;
        if sh.is_stopping() {
            return;
        }
        let targets = {
            let mut st = sh.state();
            let table = st.gossip.table_mut();
            table.tick(now_ms());
            if let Err(e) = sh.persist(table) {
                log::error!("snow-epmd {}: cannot store expired entries: {e}", sh.id);
            }
            if st.auth.is_none() {
                continue;
            }
            st.gossip.round_targets()
        };
        for target in targets {
            if in_flight.load(Ordering::SeqCst) >= max_in_flight {
                break;
            }
            in_flight.fetch_add(1, Ordering::SeqCst);
            let (sh, in_flight) = (sh.clone(), in_flight.clone());
            ex.spawn(async move {
                let outcome = initiate(&sh, &target).await;
                {
                    let mut st = sh.state();
                    match &outcome {
                        Ok(()) => st.gossip.exchange_succeeded(&target.peer),
                        Err(_) => st.gossip.exchange_failed(&target.peer),
                    }
                    let st = &mut *st;
                    if let Err(e) = sh.persist(st.gossip.table_mut()) {
                        log::error!("snow-epmd {}: cannot store gossip state: {e}", sh.id);
                    }
                }
                if let Err(e) = outcome {
                    sh.log_rejected(&target.peer, "gossip exchange", &e);
                }
                in_flight.fetch_sub(1, Ordering::SeqCst);
            })
            .detach();
        }
    }
}

/// Why a gossip exchange failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DriveError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("connect deadline passed")]
    ConnectTimeout,
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("reading: {0}")]
    Read(#[from] ReadError),
    #[error("expected a gossip frame")]
    NotGossip,
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    #[error("gossip is off (no cookie)")]
    NoCookie,
}

async fn read_sealed(sh: &Shared, stream: &mut TcpStream) -> Result<Vec<u8>, DriveError> {
    match read_request(stream, sh.config.request_timeout).await? {
        Request::Gossip(sealed) => Ok(sealed),
        _ => Err(DriveError::NotGossip),
    }
}

fn log_report(sh: &Shared, peer: &str, report: &Report) {
    if let Some(pinned) = &report.pinned {
        log::info!("snow-epmd {}: pinned the key of daemon {pinned} (first contact)", sh.id);
    }
    for (name, why) in &report.rejected {
        sh.log_rejected(peer, "gossip entry", &format_args!("{name}: {why}"));
    }
}

fn frame(sealed: Vec<u8>) -> Vec<u8> {
    encode_request(&Request::Gossip(sealed))
}

async fn initiate(sh: &Arc<Shared>, target: &Target) -> Result<(), DriveError> {
    let timeout = sh.config.request_timeout;
    let mut stream = match TcpStream::connect(target.peer.as_str()).timeout(timeout).await {
        None => return Err(DriveError::ConnectTimeout),
        Some(Err(e)) => return Err(DriveError::Connect(e)),
        Some(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    let (syn, started) = {
        let mut st = sh.state();
        let st = &mut *st;
        let auth = st.auth.as_ref().ok_or(DriveError::NoCookie)?;
        exchange::start(&mut st.gossip, auth, target, now_ms(), rand::random())
    };
    write_all(&mut stream, &frame(syn), timeout).await?;
    let ack = read_sealed(sh, &mut stream).await?;
    let (ack2, report) = {
        let mut st = sh.state();
        let st = &mut *st;
        let auth = st.auth.as_mut().ok_or(DriveError::NoCookie)?;
        let out = exchange::on_ack(&mut st.gossip, auth, &started, &ack, now_ms(), rand::random())?;
        if let Err(e) = sh.persist(st.gossip.table_mut()) {
            log::error!("snow-epmd {}: cannot store gossip from {}: {e}", sh.id, target.peer);
        }
        out
    };
    log_report(sh, &target.peer, &report);
    write_all(&mut stream, &frame(ack2), timeout).await?;
    Ok(())
}

/// Responder side: `sealed` is the Syn that arrived as a GOSSIP request.
pub(crate) async fn respond(sh: &Arc<Shared>, mut stream: TcpStream, peer: SocketAddr, sealed: Vec<u8>) {
    if let Err(e) = respond_inner(sh, &mut stream, &sealed).await {
        sh.log_rejected(&peer.ip().to_string(), "gossip", &e);
    }
}

async fn respond_inner(sh: &Arc<Shared>, stream: &mut TcpStream, sealed: &[u8]) -> Result<(), DriveError> {
    let timeout = sh.config.request_timeout;
    let (ack, answered) = {
        let mut st = sh.state();
        let st = &mut *st;
        let auth = st.auth.as_mut().ok_or(DriveError::NoCookie)?;
        let out = exchange::on_syn(&mut st.gossip, auth, sealed, now_ms(), rand::random())?;
        if let Err(e) = sh.persist(st.gossip.table_mut()) {
            log::error!("snow-epmd {}: cannot store gossip state: {e}", sh.id);
        }
        out
    };
    write_all(stream, &frame(ack), timeout).await?;
    let ack2 = read_sealed(sh, stream).await?;
    let report = {
        let mut st = sh.state();
        let st = &mut *st;
        let auth = st.auth.as_mut().ok_or(DriveError::NoCookie)?;
        let report = exchange::on_ack2(&mut st.gossip, auth, &answered, &ack2, now_ms())?;
        if let Err(e) = sh.persist(st.gossip.table_mut()) {
            log::error!("snow-epmd {}: cannot store gossip from {}: {e}", sh.id, answered.peer);
        }
        report
    };
    log_report(sh, &answered.peer, &report);
    Ok(())
}
