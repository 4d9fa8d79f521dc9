//! Opening the daemon's listening sockets, and making sure the process may open as many files as
//! `--max-connections` needs.
//!
//! `--listen PORT` binds two sockets, `0.0.0.0:PORT` and `[::]:PORT` with IPV6_V6ONLY set, rather
//! than one dual-stack socket: clients keep their plain IPv4 addresses (not `::ffff:a.b.c.d`, which
//! the per-source limits and the loopback rule would otherwise have to unmap), the behaviour does
//! not depend on the host's `net.ipv6.bindv6only`, and a host without IPv6 still gets its IPv4
//! socket (the IPv6 one is skipped with a log line), as with Erlang's epmd.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};

use rustix::net::{AddressFamily, SocketFlags, SocketType};
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

use crate::config::Listen;

/// Why the daemon cannot start listening.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// An address could not be bound.
    #[error("cannot listen on {addr}: {source}; is another epmd running there? pick another port with --listen")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The reason.
        source: io::Error,
    },
    /// No `--listen` was given.
    #[error("no address to listen on: give --listen PORT or --listen ADDR:PORT")]
    Nothing,
    /// The open-file limit cannot cover `--max-connections`.
    #[error(
        "--max-connections {max_connections} needs {needed} open files, but this process may open at most {hard} \
         (hard RLIMIT_NOFILE): lower --max-connections, or raise the limit (ulimit -Hn, or LimitNOFILE= in the \
         systemd unit)"
    )]
    FileLimit {
        /// The flag's value.
        max_connections: usize,
        /// Files needed.
        needed: u64,
        /// The hard limit.
        hard: u64,
    },
    /// Raising the soft open-file limit failed.
    #[error("cannot raise the open-file limit to {needed} for --max-connections: {source}")]
    RaiseLimit {
        /// Files needed.
        needed: u64,
        /// Why.
        source: io::Error,
    },
}

/// Binds every listen address; returns the listeners in order (for `AllAddresses`, IPv4 first).
pub(crate) fn bind_all(listen: &[Listen]) -> Result<Vec<TcpListener>, ListenError> {
    let mut out = Vec::new();
    for l in listen {
        match *l {
            Listen::Addr(addr) => out.push(bind(addr)?),
            Listen::AllAddresses(port) => out.extend(bind_both(port)?),
        }
    }
    if out.is_empty() {
        return Err(ListenError::Nothing);
    }
    Ok(out)
}

/// `0.0.0.0:port` and `[::]:port` (the same port when `port` is 0); IPv6 is skipped if the host
/// has none, IPv4 if it has none but IPv6 works.
fn bind_both(port: u16) -> Result<Vec<TcpListener>, ListenError> {
    let v4 = bind(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port));
    let port = match &v4 {
        Ok(l) => l.local_addr().map_or(port, |a| a.port()),
        Err(_) => port,
    };
    let v6 = bind(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port));
    match (v4, v6) {
        (Ok(a), Ok(b)) => Ok(vec![a, b]),
        (Ok(a), Err(e)) => {
            log::info!("snow-epmd: serving IPv4 only on port {port} ({e})");
            Ok(vec![a])
        }
        (Err(e), Ok(b)) => {
            log::info!("snow-epmd: serving IPv6 only on port {port} ({e})");
            Ok(vec![b])
        }
        (Err(e), Err(_)) => Err(e),
    }
}

/// How many connections the kernel may queue for the accept loop. Every node of a forming mesh
/// looks each of its peers up at once: 32 nodes make about a thousand lookups within half a
/// second, and the 128 that `std` asks for overflowed, which the kernel answers by dropping the
/// connection's handshake and retrying it a whole second later. Linux caps this at
/// `net.core.somaxconn` (4096 by default).
const LISTEN_BACKLOG: i32 = 4096;

/// One listening socket; IPv6 sockets are IPv6-only (see the module doc).
fn bind(addr: SocketAddr) -> Result<TcpListener, ListenError> {
    let err = |source: rustix::io::Errno| ListenError::Bind { addr, source: source.into() };
    let family = match addr.ip() {
        IpAddr::V4(_) => AddressFamily::INET,
        IpAddr::V6(_) => AddressFamily::INET6,
    };
    let fd = rustix::net::socket_with(family, SocketType::STREAM, SocketFlags::CLOEXEC, None).map_err(err)?;
    rustix::net::sockopt::set_socket_reuseaddr(&fd, true).map_err(err)?;
    if family == AddressFamily::INET6 {
        rustix::net::sockopt::set_ipv6_v6only(&fd, true).map_err(err)?;
    }
    rustix::net::bind(&fd, &addr).map_err(err)?;
    rustix::net::listen(&fd, LISTEN_BACKLOG).map_err(err)?;
    Ok(TcpListener::from(fd))
}

/// Files the daemon needs besides its client connections: listeners, the database, the reactor,
/// standard streams, gossip connections and blocking-pool threads' descriptors.
const OWN_FILES: u64 = 128;

/// Raises the soft RLIMIT_NOFILE to what `max_connections` and `gossip_in_flight` need, or
/// explains which limit to change.
pub(crate) fn ensure_file_limit(max_connections: usize, gossip_in_flight: usize) -> Result<(), ListenError> {
    let needed = max_connections as u64 + gossip_in_flight as u64 + OWN_FILES;
    let limit = getrlimit(Resource::Nofile);
    let soft = limit.current.unwrap_or(u64::MAX);
    if soft >= needed {
        return Ok(());
    }
    let hard = limit.maximum.unwrap_or(u64::MAX);
    if hard < needed {
        return Err(ListenError::FileLimit { max_connections, needed, hard });
    }
    setrlimit(Resource::Nofile, Rlimit { current: Some(needed), maximum: limit.maximum })
        .map_err(|e| ListenError::RaiseLimit { needed, source: e.into() })?;
    log::info!("snow-epmd: raised the open-file limit from {soft} to {needed} for --max-connections {max_connections}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::TcpStream;
    use std::time::Duration;

    use super::*;

    #[test]
    fn both_families_queue_a_burst_of_lookups_std_would_overflow() {
        let addrs: [SocketAddr; 2] = ["127.0.0.1:0".parse().unwrap(), "[::1]:0".parse().unwrap()];
        for addr in addrs {
            let listener = match bind(addr) {
                Ok(l) => l,
                // A host without IPv6 loopback: the IPv4 case still ran.
                Err(e) if addr.is_ipv6() => {
                    eprintln!("skipping {addr}: {e}");
                    continue;
                }
                Err(e) => panic!("{e}"),
            };
            let local = listener.local_addr().unwrap();
            // 300 connections before the first accept: past std's queue of 128, the kernel would
            // drop a SYN and retry only after a second.
            let clients: Vec<TcpStream> = (0..300)
                .map(|i| {
                    TcpStream::connect_timeout(&local, Duration::from_millis(500))
                        .unwrap_or_else(|e| panic!("{local}: connection {i} was not queued: {e}"))
                })
                .collect();
            assert_eq!(clients.len(), 300);
        }
    }
}
