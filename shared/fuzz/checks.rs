//! The checks the fuzz targets run, shared with `shared/tests/fuzz_corpus.rs`, which replays the
//! committed corpus through the same code on every `cargo test`.
// Each includer uses only some of these functions.
#![allow(dead_code)]

use snow_shared::codec::{decode, decode_with, encode, encoded_len, DecodeLimits};
use snow_shared::fragment::{is_fragment, Reassembler, ReassemblyLimits};
use snow_shared::frame::FrameDecoder;

/// Term decoder: any input decodes or errors; whatever decodes re-encodes to an equal term.
pub fn check_term(data: &[u8]) {
    if let Ok(term) = decode(data) {
        let bytes = encode(&term);
        assert_eq!(bytes.len(), encoded_len(&term));
        assert_eq!(decode(&bytes).as_ref(), Ok(&term));
    }
    let tight = DecodeLimits { max_depth: 4, max_elements: 32, max_bytes: 4096 };
    if let Ok(term) = decode_with(data, &tight) {
        // Anything accepted under tight limits is accepted under the defaults, identically.
        assert_eq!(decode(data).as_ref(), Ok(&term));
    }
}

/// Frame decoder and reassembler: the stream (after two control bytes that pick a split size and
/// a frame limit) gives the same frames and error whether fed at once or in pieces; fragment
/// frames go through a reassembler with small limits whose accounting must stay consistent.
pub fn check_frames(data: &[u8]) {
    let (split, max_frame, stream) = match data {
        [a, b, rest @ ..] => (usize::from(*a).max(1), usize::from(*b) * 4, rest),
        _ => return,
    };
    let whole = run_frames(&[stream], max_frame);
    let pieces: Vec<&[u8]> = stream.chunks(split).collect();
    assert_eq!(run_frames(&pieces, max_frame), whole);

    let limits = ReassemblyLimits { max_in_flight: 4, max_in_flight_bytes: 1024, max_message: 512 };
    let mut reassembler = Reassembler::new(limits);
    for frame in whole.0 {
        if !is_fragment(&frame) {
            let _ = decode(&frame);
            continue;
        }
        if let Ok(Some(message)) = reassembler.push(&frame) {
            assert!(message.len() <= limits.max_message);
            let _ = decode(&message);
        }
        assert!(reassembler.in_flight() <= limits.max_in_flight);
        assert!(reassembler.in_flight_bytes() <= limits.max_in_flight_bytes);
        assert!(reassembler.buffered_bytes() <= reassembler.in_flight_bytes());
        assert!(reassembler.buffered_bytes() <= stream.len());
    }
}

type FrameRun = (Vec<Vec<u8>>, Option<snow_shared::frame::FrameError>, usize);

fn run_frames(pieces: &[&[u8]], max_frame: usize) -> FrameRun {
    let mut decoder = FrameDecoder::new(max_frame);
    let mut frames = Vec::new();
    for piece in pieces {
        decoder.feed(piece);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= max_frame);
                    frames.push(frame);
                }
                Ok(None) => break,
                Err(err) => return (frames, Some(err), 0),
            }
        }
    }
    (frames, None, decoder.buffered())
}

/// Control-message decoder: the first byte picks the negotiated flags (so capability gating is
/// explored too); whatever decodes re-encodes to a message that decodes to the same value.
pub fn check_control(data: &[u8]) {
    use snow_shared::dist::control::{decode as decode_control, DecodeContext};
    use snow_shared::dist::Flags;
    let Some((&flags, payload)) = data.split_first() else { return };
    let ctx = DecodeContext {
        flags: Flags::from_bits(u64::from(flags)),
        limits: DecodeLimits { max_depth: 64, max_elements: 1 << 16, max_bytes: 1 << 20 },
    };
    if let Ok(message) = decode_control(payload, &ctx) {
        let again = decode_control(&message.to_bytes(), &ctx);
        assert_eq!(again.as_ref(), Ok(&message));
    }
}

/// Handshake: either role, in self-signed or CA-verified mode, fed arbitrary bytes in arbitrary
/// pieces never panics, and never reaches "established" or "peer authenticated" (impossible
/// without the key the fuzzer does not have). The first byte picks the side (bit 0), the mode
/// (bit 1), whether the rest is read as a peer certificate instead (bit 2), and the piece size
/// (high nibble).
pub fn check_handshake(data: &[u8]) {
    use snow_shared::cookie::DerivedKey;
    use snow_shared::dist::cert_names::CertNames;
    use snow_shared::dist::handshake::{ChannelBinding, Handshake, HandshakeConfig, HandshakeEvent, PeerCertificate};
    use snow_shared::NodeName;
    use std::time::{Duration, Instant};
    let Some((&mode, rest)) = data.split_first() else { return };
    let (Ok(me), Ok(peer)) = (NodeName::parse("me@host"), NodeName::parse("peer@host")) else { return };
    if mode & 4 != 0 {
        // The certificate reader behind CA mode's name check: errors, never panics.
        if let Ok(names) = CertNames::from_der(rest) {
            let _ = names.allows(&peer);
            let _ = names.hosts();
            let _ = names.to_string();
        }
        return;
    }
    let now = Instant::now();
    let config = HandshakeConfig::new(me, 1, DerivedKey::from_bytes([7; 32]));
    let peer_certificate = if mode & 2 == 0 {
        PeerCertificate::Unchecked
    } else {
        PeerCertificate::Names(CertNames::new(
            vec!["host".into()],
            vec!["127.0.0.1".parse().unwrap_or(std::net::Ipv4Addr::LOCALHOST.into())],
        ))
    };
    let channel = ChannelBinding { exporter: [1; 32], peer_certificate };
    let mut handshake = if mode & 1 == 0 {
        Handshake::acceptor(config, channel, [2; 32], now)
    } else {
        Handshake::initiator(config, peer, channel, [2; 32], now)
    };
    let chunk = usize::from(mode >> 4) + 1;
    for piece in rest.chunks(chunk) {
        let _ = handshake.feed(piece);
        while let Some(event) = handshake.poll_event() {
            if matches!(event, HandshakeEvent::DecisionNeeded(_)) {
                handshake.accept();
            }
        }
        let _ = handshake.take_output();
    }
    let _ = handshake.handle_timeout(now + Duration::from_secs(60));
    assert!(!handshake.is_established(), "handshake established without the key");
    assert!(!handshake.peer_authenticated(), "peer authenticated without the key");
}

/// snow-epmd requests. The first byte picks what is fuzzed: even, the request parser, which must
/// give the same outcome whether the bytes arrive at once or in pieces of the size the rest of
/// that byte gives; odd, a lookup session's input (pipelined lookups, each answered from a small
/// table), which must never panic and must take only complete requests.
pub fn check_epmd(data: &[u8]) {
    use snow_shared::epmd::session::next_query;
    use snow_shared::epmd::wire::RequestParser;
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode & 1 == 1 {
        let (table, registry) = epmd_fixture();
        let mut at = 0;
        let mut out = Vec::new();
        while let Ok(Some((query, used))) = next_query(&rest[at..]) {
            assert!(used > 0 && at + used <= rest.len());
            query.answer_framed(&table, &registry, "h", &mut out);
            at += used;
        }
        return;
    }
    let whole = RequestParser::new().feed(rest);
    let mut parser = RequestParser::new();
    let mut pieces = Ok(None);
    for piece in rest.chunks(usize::from(mode >> 1).max(1)) {
        pieces = parser.feed(piece);
        if !matches!(pieces, Ok(None)) {
            break;
        }
    }
    assert_eq!(format!("{whole:?}"), format!("{pieces:?}"));
}

fn epmd_fixture() -> (snow_shared::epmd::table::Table, snow_shared::epmd::registry::Registry) {
    use snow_shared::epmd::identity::Identity;
    use snow_shared::epmd::registry::{Registry, RegistryPolicy};
    use snow_shared::epmd::table::{Registration, Table, TableLimits};
    use snow_shared::NodeName;
    let mut table = Table::new("h:4369".into(), Identity::from_seed(&[1; 32]), 1, TableLimits::default());
    if let Ok(name) = NodeName::parse("a@h") {
        let reg = Registration { name, port: 7, node_type: 77, high_version: 6, low_version: 5, extra: vec![] };
        let _ = table.register(reg, 3, 0);
    }
    let registry = Registry::new(RegistryPolicy { allow_remote: false, max_per_source: 8, default_host: "h".into() });
    (table, registry)
}

/// Gossip messages (PROTOCOL.md 5.5). Whatever decodes re-encodes to bytes that decode to the same
/// message; then the message is applied to a small table (signatures trusted, so the fuzzer reaches
/// the table's rules), as a Syn, an Ack from a pinned peer or an Ack2 per the first byte, and the
/// table's budgets must hold afterwards. The sealed envelope is opened too (it must refuse).
pub fn check_gossip(data: &[u8]) {
    use snow_shared::epmd::auth::Authenticator;
    use snow_shared::epmd::gossip::{decode, encode, Gossip, GossipConfig};
    use snow_shared::epmd::identity::Identity;
    use snow_shared::epmd::table::{Table, TableLimits};
    const NOW: u64 = 1_764_000_000_000;
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut auth = Authenticator::new([7; 32], 30_000, 16);
    assert!(auth.open(rest, NOW, None, "h:4369").is_err(), "opened without the key");
    let Ok(msg) = decode(rest, NOW) else { return };
    assert_eq!(decode(&encode(&msg, NOW), NOW).as_ref(), Ok(&msg));
    let limits = TableLimits {
        max_entries: 4,
        max_remote_entries: 6,
        max_entries_per_daemon: 3,
        max_daemons: 5,
        ..TableLimits::default()
    };
    let mut table = Table::new("h:4369".into(), Identity::from_seed(&[1; 32]), 1, limits);
    table.set_verifier(|_, _, _| true);
    let _ = table.pin(&msg.sender, msg.key);
    let mut gossip = Gossip::new(table, vec!["s:1".into()], u64::from(mode), GossipConfig::default());
    let _ = match mode % 3 {
        0 => gossip.handle_syn(&msg, mode & 4 != 0).map(|_| ()),
        1 => gossip.handle_ack(&msg, &msg.sender, NOW).map(|_| ()),
        _ => gossip.handle_ack2(&msg, NOW).map(|_| ()),
    };
    let _ = gossip.round_targets();
    let t = gossip.table();
    assert!(t.remote_len() <= limits.max_remote_entries);
    assert!(t.own_len() + t.remote_len() == t.len());
    assert!(t.daemons().count() <= limits.max_daemons);
    for d in t.daemons().filter(|d| d.as_str() != t.me()) {
        assert!(t.entries().filter(|e| e.owner == *d).count() <= limits.max_entries_per_daemon);
    }
}

/// The GLOBAL_* and GROUP_* messages, decoded and then applied to a registry and a groups value
/// that hold some state of their own. The input is a sequence of records `len u8, selector u8,
/// body[len]`: the selector's low 3 bits pick the tag (so every record exercises a cluster
/// message), bit 3 reconnects the peer first (node_down + node_up), bit 4 makes a local
/// registration or join first. Whatever decodes must re-encode to the same message; applying it
/// must not panic, and the values' answers must stay consistent with each other.
pub fn check_cluster(data: &[u8]) {
    use snow_shared::cluster::global::{Global, GlobalConfig};
    use snow_shared::cluster::groups::Groups;
    use snow_shared::dist::control::{decode as decode_control, tag, DecodeContext};
    use snow_shared::dist::Flags;
    use snow_shared::{Atom, NodeName, Pid, Ref, Term};
    const TAGS: [u8; 8] = [
        tag::GLOBAL_REGISTER,
        tag::GLOBAL_UNREGISTER,
        tag::GLOBAL_SYNC,
        tag::GLOBAL_CONFLICT,
        tag::GROUP_JOIN,
        tag::GROUP_LEAVE,
        tag::GROUP_SYNC,
        tag::GROUP_DISCOVER,
    ];
    let (Ok(me), Ok(peer)) = (NodeName::parse("m@h"), NodeName::parse("p@h")) else { return };
    let ctx = DecodeContext {
        flags: Flags::GLOBAL.with(Flags::GROUPS),
        limits: DecodeLimits { max_depth: 16, max_elements: 1 << 12, max_bytes: 1 << 16 },
    };
    let pg = Atom::new("pg");
    let mut global = Global::new(me.clone(), 1, GlobalConfig::default());
    let mut groups = Groups::new(me.clone(), 1);
    groups.add_scope(pg.clone());
    groups.add_scope(Atom::new("rooms"));
    global.node_up(peer.clone(), 1, Flags::ALL);
    groups.node_up(peer.clone(), 1, Flags::ALL);
    let watcher = Pid::new(me.clone(), 1000, 1);
    let _ = groups.monitor_scope(&pg, watcher.clone(), Ref::new(me.clone(), 1, 1));
    let mut rest = data;
    let mut local = 0u64;
    while let [len, selector, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (body, next) = tail.split_at(len);
        rest = next;
        if selector & 0x08 != 0 {
            global.node_down(&peer);
            groups.node_down(&peer);
            global.node_up(peer.clone(), 1, Flags::ALL);
            groups.node_up(peer.clone(), 1, Flags::ALL);
        }
        if selector & 0x10 != 0 {
            local += 1;
            let pid = Pid::new(me.clone(), local % 4, 1);
            let name = Term::Int(i64::from(selector >> 5));
            let _ = global.register_name(name.clone(), pid.clone(), local);
            let _ = groups.join(&pg, name, std::slice::from_ref(&pid));
            if selector & 0x20 != 0 {
                global.process_exited(&pid);
                groups.process_exited(&pid);
            }
        }
        let mut payload = vec![TAGS[usize::from(selector & 0x07)]];
        payload.extend_from_slice(body);
        let Ok(message) = decode_control(&payload, &ctx) else { continue };
        assert_eq!(decode_control(&message.to_bytes(), &ctx).as_ref(), Ok(&message));
        let outcome = match message.tag() {
            tag::GLOBAL_REGISTER..=tag::GLOBAL_CONFLICT => global.handle_message(&peer, message),
            _ => groups.handle_message(&peer, message),
        };
        let _ = outcome;
        while let Some(transmit) = global.poll_transmit().or_else(|| groups.poll_transmit()) {
            assert_eq!(transmit.to, std::slice::from_ref(&peer), "only the one peer is connected");
        }
        while global.poll_event().is_some() || groups.poll_event().is_some() {}
        // The registry: every name has a holder, and a local process's names are its own.
        for name in global.registered_names() {
            let holder = global.whereis_name(name).expect("a known name has a holder");
            assert_eq!(global.entry(name).map(|e| e.pid).as_ref(), Some(holder));
            for own in global.names_of(holder) {
                assert_eq!(global.whereis_name(own), Some(holder));
            }
        }
        // Groups: no empty group, each node once with at least one member, local ones local.
        for scope in [pg.clone(), Atom::new("rooms")] {
            for group in groups.which_groups(&scope) {
                let count = groups.member_count(&scope, group);
                assert!(count > 0);
                assert_eq!(groups.members(&scope, group).count(), count);
                let mut nodes: Vec<&NodeName> = Vec::new();
                for (node, pids) in groups.members_by_node(&scope, group) {
                    assert!(!pids.is_empty() && !nodes.contains(&node));
                    assert!(pids.iter().all(|p| p.node() == node));
                    nodes.push(node);
                }
                assert!(groups.local_members(&scope, group).iter().all(|p| p.node() == &me));
            }
        }
    }
}

/// Cached frames (PROTOCOL.md 4.4): a stream of frames, each given as a length byte and that many
/// bytes, read by one connection's receiver with the atom cache negotiated, never panics; every
/// message it accepts (definitions applied in arrival order, references resolved) round-trips
/// through a fresh cache on both sides.
pub fn check_cached(data: &[u8]) {
    use snow_shared::dist::atom_cache::CacheEncoder;
    use snow_shared::dist::control::{DecodeContext, Outgoing};
    use snow_shared::dist::inbound::Inbound;
    use snow_shared::dist::Flags;
    use snow_shared::frame::encode_frame;
    let limits = ReassemblyLimits { max_in_flight: 4, max_in_flight_bytes: 1 << 16, max_message: 1 << 16 };
    let mut rx = Inbound::new(DecodeContext::new(Flags::ALL), 1 << 16, limits);
    let mut rest = data;
    let mut stream = Vec::new();
    while let Some((&len, tail)) = rest.split_first() {
        let (frame, tail) = tail.split_at(usize::from(len).min(tail.len()));
        if encode_frame(frame, &mut stream).is_err() {
            return;
        }
        rest = tail;
    }
    rx.feed(&stream);
    let (mut sender, mut again) = (CacheEncoder::new(), Inbound::new(DecodeContext::new(Flags::ALL), 1 << 20, limits));
    while let Ok(Some(message)) = rx.next_message() {
        let mut payload = Vec::new();
        let uses = sender.encode(&Outgoing::Control(&message), &mut payload);
        sender.written(&uses);
        let mut framed = Vec::new();
        assert!(encode_frame(&payload, &mut framed).is_ok());
        again.feed(&framed);
        assert_eq!(again.next_message(), Ok(Some(message)));
    }
}
