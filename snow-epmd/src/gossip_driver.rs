//! Drives the sans-IO gossip state over TCP: a round every `gossip_interval` to `fanout` random
//! peers (initiator side), and the responder side for incoming GOSSIP requests. Each exchange is
//! Syn -> Ack -> Ack2 on one connection, every message sealed with the cookie-derived key and every
//! step under a deadline. Anything that fails authentication or decoding changes nothing and is
//! logged once a minute per peer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_std::net::TcpStream;
use async_std::task;
use smol_timeout::TimeoutExt;
use snow_shared::epmd::gossip::{self, Body, Message, Report};
use snow_shared::epmd::wire::{encode_request, Request};

use crate::now_ms;
use crate::server::{read_request, write_all, Shared};

/// The gossip and timer loop of one daemon.
pub(crate) async fn run(sh: Arc<Shared>) {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_in_flight = sh.config.fanout.max(1) * 4;
    loop {
        task::sleep(sh.config.gossip_interval).await;
        if sh.stopping.load(Ordering::SeqCst) {
            return;
        }
        let targets = {
            let mut st = sh.state();
            let table = st.gossip.table_mut();
            table.tick(now_ms());
            if let Err(e) = sh.persist(table) {
                log::error!("snow-epmd {}: cannot store expired entries: {e}", sh.id);
            }
            if sh.auth.is_none() {
                continue;
            }
            st.gossip.round_targets()
        };
        for peer in targets {
            if in_flight.load(Ordering::SeqCst) >= max_in_flight {
                break;
            }
            in_flight.fetch_add(1, Ordering::SeqCst);
            let (sh, in_flight) = (sh.clone(), in_flight.clone());
            task::spawn(async move {
                if let Err(e) = initiate(&sh, &peer).await {
                    sh.log_rejected(&peer, "gossip exchange", &e);
                }
                in_flight.fetch_sub(1, Ordering::SeqCst);
            });
        }
    }
}

/// Why a gossip exchange failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("connect deadline passed")]
    ConnectTimeout,
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("reading: {0}")]
    Read(#[from] crate::server::ReadError),
    #[error("expected a gossip frame")]
    NotGossip,
    #[error("authentication failed: {0}")]
    Auth(#[from] snow_shared::epmd::auth::AuthError),
    #[error("undecodable gossip: {0}")]
    Decode(#[from] snow_shared::epmd::wire::DecodeError),
    #[error("unexpected gossip message kind")]
    WrongKind,
    #[error("gossip is off (no cookie)")]
    NoCookie,
}

fn seal(sh: &Shared, msg: &Message, reply_to: [u8; 16]) -> Result<(Vec<u8>, [u8; 16]), ExchangeError> {
    let auth = sh.auth.as_ref().ok_or(ExchangeError::NoCookie)?;
    let now = now_ms();
    let nonce: [u8; 16] = rand::random();
    let sealed = auth.lock().unwrap_or_else(|p| p.into_inner()).seal(&gossip::encode(msg, now), now, nonce, reply_to);
    Ok((encode_request(&Request::Gossip(sealed)), nonce))
}

fn open(sh: &Shared, sealed: &[u8], expect: Option<[u8; 16]>) -> Result<(Message, [u8; 16]), ExchangeError> {
    let auth = sh.auth.as_ref().ok_or(ExchangeError::NoCookie)?;
    let now = now_ms();
    let opened = auth.lock().unwrap_or_else(|p| p.into_inner()).open(sealed, now, expect)?;
    Ok((gossip::decode(opened.body, now)?, opened.nonce))
}

async fn read_sealed(sh: &Shared, stream: &mut TcpStream) -> Result<Vec<u8>, ExchangeError> {
    match read_request(stream, sh.config.request_timeout).await? {
        Request::Gossip(sealed) => Ok(sealed),
        _ => Err(ExchangeError::NotGossip),
    }
}

fn log_report(sh: &Shared, peer: &str, report: &Report) {
    for (name, why) in &report.rejected {
        sh.log_rejected(peer, "gossip entry", &format_args!("{name}: {why}"));
    }
}

async fn initiate(sh: &Arc<Shared>, peer: &str) -> Result<(), ExchangeError> {
    let timeout = sh.config.request_timeout;
    let mut stream = match TcpStream::connect(peer).timeout(timeout).await {
        None => return Err(ExchangeError::ConnectTimeout),
        Some(Err(e)) => return Err(ExchangeError::Connect(e)),
        Some(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    let syn = sh.state().gossip.syn();
    let (frame, syn_nonce) = seal(sh, &syn, [0; 16])?;
    write_all(&mut stream, &frame, timeout).await?;
    let sealed = read_sealed(sh, &mut stream).await?;
    let (ack, ack_nonce) = open(sh, &sealed, Some(syn_nonce))?;
    if !matches!(ack.body, Body::Ack { .. }) {
        return Err(ExchangeError::WrongKind);
    }
    let (ack2, report) = {
        let mut st = sh.state();
        let out = st.gossip.handle_ack(&ack, now_ms()).ok_or(ExchangeError::WrongKind)?;
        if let Err(e) = sh.persist(st.gossip.table_mut()) {
            log::error!("snow-epmd {}: cannot store gossip from {peer}: {e}", sh.id);
        }
        out
    };
    log_report(sh, peer, &report);
    let (frame, _) = seal(sh, &ack2, ack_nonce)?;
    write_all(&mut stream, &frame, timeout).await?;
    Ok(())
}

/// Responder side: `sealed` is the Syn that arrived as a GOSSIP request.
pub(crate) async fn respond(sh: &Arc<Shared>, mut stream: TcpStream, peer: SocketAddr, sealed: Vec<u8>) {
    let who = peer.ip().to_string();
    if let Err(e) = respond_inner(sh, &mut stream, &sealed).await {
        sh.log_rejected(&who, "gossip", &e);
    }
}

async fn respond_inner(sh: &Arc<Shared>, stream: &mut TcpStream, sealed: &[u8]) -> Result<(), ExchangeError> {
    let timeout = sh.config.request_timeout;
    let (syn, syn_nonce) = open(sh, sealed, None)?;
    let ack = {
        let mut st = sh.state();
        let ack = st.gossip.handle_syn(&syn).ok_or(ExchangeError::WrongKind)?;
        if let Err(e) = sh.persist(st.gossip.table_mut()) {
            log::error!("snow-epmd {}: cannot store gossip from {}: {e}", sh.id, syn.sender);
        }
        ack
    };
    let (frame, ack_nonce) = seal(sh, &ack, syn_nonce)?;
    write_all(stream, &frame, timeout).await?;
    let sealed = read_sealed(sh, stream).await?;
    let (ack2, _) = open(sh, &sealed, Some(ack_nonce))?;
    let report = {
        let mut st = sh.state();
        let report = st.gossip.handle_ack2(&ack2, now_ms()).ok_or(ExchangeError::WrongKind)?;
        if let Err(e) = sh.persist(st.gossip.table_mut()) {
            log::error!("snow-epmd {}: cannot store gossip from {}: {e}", sh.id, syn.sender);
        }
        report
    };
    log_report(sh, &syn.sender, &report);
    Ok(())
}
