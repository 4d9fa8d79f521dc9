//! Asking snow-epmd where a node listens, on the runtime's own reactor.
//!
//! Every dial starts with a lookup (PROTOCOL.md 5.2, LOOKUP). snow-epmd's client does the same
//! over async-net, whose sockets async-io's own thread waits on: each of a forming mesh's
//! thousand-odd lookups then reached the dialing task through that thread and the scheduler's
//! injector, two thread switches per step. Here the lookup's socket is on the reactor the
//! scheduler's workers drive, like the connection it precedes.

use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use snow_epmd::client::ClientError;
use snow_shared::epmd::listing::{decode_lookup_resp, Found};
use snow_shared::epmd::wire::{encode_request, Request};
use snow_shared::NodeName;

use crate::reactor::tcp::TcpStream;

/// The longest LOOKUP reply: its 11 bytes of fixed fields (tag, result, port, creation, state,
/// host length) and a host of at most 65,535 bytes.
const MAX_LOOKUP_REPLY: u64 = 11 + u16::MAX as u64;

/// Looks `name` up at the snow-epmd listening on `epmd` (`host:port`, `a.b.c.d:port` or
/// `[v6]:port`): where it listens, `None` if the daemon does not know it. Fails after `timeout`.
pub(crate) async fn lookup(epmd: &str, name: &NodeName, timeout: Duration) -> Result<Option<Found>, ClientError> {
    let work = async {
        let (host, port) = split_host_port(epmd).ok_or_else(|| ClientError::Unreachable {
            addr: epmd.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not host:port"),
        })?;
        let mut stream = TcpStream::connect(host, port)
            .await
            .map_err(|source| ClientError::Unreachable { addr: epmd.to_owned(), source })?;
        let _ = stream.set_nodelay(true);
        let io = |source| ClientError::Io { addr: epmd.to_owned(), source };
        stream.write_all(&encode_request(&Request::Lookup(name.as_str().as_bytes().to_vec()))).await.map_err(io)?;
        // The daemon answers and closes: the reply is all there is to read.
        let mut reply = Vec::new();
        (&mut stream).take(MAX_LOOKUP_REPLY).read_to_end(&mut reply).await.map_err(io)?;
        decode_lookup_resp(&reply).map_err(|source| ClientError::BadReply { addr: epmd.to_owned(), source })
    };
    crate::timers::within(timeout, work).await.unwrap_or_else(|| Err(ClientError::Timeout(epmd.to_owned())))
}

/// `host:port` or `[v6]:port` as its host (without brackets) and port.
fn split_host_port(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.strip_suffix(']')?,
        None => host,
    };
    Some((host, port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    use snow_epmd::client::ClientError;
    use snow_shared::NodeName;

    use super::{lookup, split_host_port};

    /// A daemon on loopback that reads one request and answers with `reply` (`None`: never).
    fn daemon(reply: Option<&'static [u8]>) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = [0u8; 64];
            let _ = conn.read(&mut request);
            match reply {
                Some(reply) => drop(conn.write_all(reply)),
                None => std::thread::sleep(Duration::from_secs(3)),
            }
        });
        addr
    }

    fn ask(epmd: &str, timeout: Duration) -> Result<Option<snow_shared::epmd::listing::Found>, ClientError> {
        let name = NodeName::parse("peer@127.0.0.1").unwrap();
        crate::block_on(lookup(epmd, &name, timeout))
    }

    #[test]
    fn a_lookup_reads_the_daemons_answer_until_it_closes() {
        // LOOKUP_RESP: found, port 9100, creation 7, state up (0), host "127.0.0.1".
        let found = ask(&daemon(Some(b"l\x00\x23\x8c\x00\x00\x00\x07\x00\x00\x09127.0.0.1")), Duration::from_secs(5));
        let found = found.unwrap().unwrap();
        assert_eq!((found.host.as_str(), found.port, found.creation), ("127.0.0.1", 9100, 7));
        assert_eq!(ask(&daemon(Some(b"l\x01")), Duration::from_secs(5)).unwrap(), None);
    }

    #[test]
    fn a_bad_answer_a_silent_daemon_and_no_daemon_are_errors() {
        let bad = ask(&daemon(Some(b"?")), Duration::from_secs(5));
        assert!(matches!(bad, Err(ClientError::BadReply { .. })), "{bad:?}");
        let started = Instant::now();
        let silent = ask(&daemon(None), Duration::from_millis(200));
        assert!(matches!(silent, Err(ClientError::Timeout(_))), "{silent:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
        let refused = ask(&closed, Duration::from_secs(5));
        assert!(matches!(refused, Err(ClientError::Unreachable { .. })), "{refused:?}");
        let nonsense = ask("no port here", Duration::from_secs(5));
        assert!(matches!(nonsense, Err(ClientError::Unreachable { .. })), "{nonsense:?}");
    }

    #[test]
    fn daemon_addresses_split_into_host_and_port() {
        assert_eq!(split_host_port("127.0.0.1:4369"), Some(("127.0.0.1", 4369)));
        assert_eq!(split_host_port("db1.example:4370"), Some(("db1.example", 4370)));
        assert_eq!(split_host_port("[::1]:4369"), Some(("::1", 4369)));
        assert_eq!(split_host_port("[::1:4369"), None);
        assert_eq!(split_host_port("127.0.0.1"), None);
        assert_eq!(split_host_port("127.0.0.1:http"), None);
    }
}
