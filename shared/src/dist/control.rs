//! Control messages of an established connection (PROTOCOL.md section 4.3): what one node tells another
//! about processes (messages, links, monitors, exits, spawns and remote calls, messages to process
//! aliases), liveness (TICK), the mesh (which nodes it is connected to), the global registry and
//! process groups.
//!
//! Layout: one tag byte, then the message's fields in a fixed order, each a complete encoded term
//! (version byte + value, [`crate::codec`]). A frame payload is either one whole control message
//! (first byte `0x01..=0xEF`) or a fragment of one ([`crate::fragment`], first byte
//! `0xF0..=0xF2`). Tags `0x80..=0xEF` are the extension range: a receiver that does not know such a
//! tag ignores the message if [`Flags::EXTENSIONS`] was negotiated, and treats it as a protocol
//! error otherwise. An unknown tag below `0x80` is always an error.
//!
//! [`decode`] never panics and never allocates more than its input justifies (term decoding is
//! bounded by [`DecodeLimits`]), so it can be fed arbitrary bytes.

use crate::atom::Atom;
use crate::codec::{
    encode_into, encode_into_with, encode_pid_into, DecodeError, DecodeLimits, IdKind, InFull, NameWriter, WIRE_VERSION,
};
use crate::dist::Flags;
use crate::name::NodeName;
use crate::pid::{Pid, Ref};
use crate::term::Term;

/// Control message tags.
pub mod tag {
    /// SEND {from, to, msg}: a message to a pid.
    pub const SEND: u8 = 0x01;
    /// REG_SEND {from, name, msg}: a message to a locally registered name on the receiver.
    pub const REG_SEND: u8 = 0x02;
    /// LINK {from, to}.
    pub const LINK: u8 = 0x03;
    /// UNLINK {from, to}.
    pub const UNLINK: u8 = 0x04;
    /// EXIT {from, to, reason}: a linked process exited (trappable, even with reason `kill`).
    pub const EXIT: u8 = 0x05;
    /// EXIT2 {from, to, reason}: an explicit exit signal (`exit(pid, reason)`; `kill` is untrappable).
    pub const EXIT2: u8 = 0x06;
    /// MONITOR {from, target, ref}.
    pub const MONITOR: u8 = 0x07;
    /// DEMONITOR {from, target, ref}.
    pub const DEMONITOR: u8 = 0x08;
    /// MONITOR_EXIT {from, to, ref, reason}: a monitored process is gone.
    pub const MONITOR_EXIT: u8 = 0x09;
    /// SPAWN_REQ {ref, from, function, args, opts}.
    pub const SPAWN_REQ: u8 = 0x0A;
    /// SPAWN_REPLY {ref, to, result}.
    pub const SPAWN_REPLY: u8 = 0x0B;
    /// TICK: no fields; keeps an idle connection alive.
    pub const TICK: u8 = 0x0C;
    /// NODE_LIST {nodes}: the sender's connected nodes, for the transitive mesh.
    pub const NODE_LIST: u8 = 0x0D;
    /// ALIAS_SEND {from, alias, msg}: a message to an alias (a reference) of a process of the
    /// receiver.
    pub const ALIAS_SEND: u8 = 0x0E;
    /// GLOBAL_REGISTER {name, pid, stamp, origin, generation}: a process of the sender claims a
    /// global name.
    pub const GLOBAL_REGISTER: u8 = 0x10;
    /// GLOBAL_UNREGISTER {name, pid}: a process of the sender gave up its claim.
    pub const GLOBAL_UNREGISTER: u8 = 0x11;
    /// GLOBAL_SYNC {entries}: claims of the sender's processes, sent when a connection comes up.
    pub const GLOBAL_SYNC: u8 = 0x12;
    /// GLOBAL_CONFLICT {loser, winner}: a claim of the receiver's process loses to `winner`.
    pub const GLOBAL_CONFLICT: u8 = 0x13;
    /// GROUP_JOIN {scope, group, pids}: processes of the sender joined a group.
    pub const GROUP_JOIN: u8 = 0x18;
    /// GROUP_LEAVE {scope, group, pids}: processes of the sender left a group.
    pub const GROUP_LEAVE: u8 = 0x19;
    /// GROUP_SYNC {scope, groups}: every membership of the sender's processes in one scope.
    pub const GROUP_SYNC: u8 = 0x1A;
    /// GROUP_DISCOVER {scope}: the sender runs the scope and asks for the receiver's GROUP_SYNC.
    pub const GROUP_DISCOVER: u8 = 0x1B;
    /// First tag of the ignorable extension range.
    pub const EXTENSION_FIRST: u8 = 0x80;
    /// Last tag of the ignorable extension range; `0xF0..=0xFF` are connection frame kinds.
    pub const EXTENSION_LAST: u8 = 0xEF;
}

/// SPAWN_REQ option bits.
const SPAWN_LINK: i64 = 1;
const SPAWN_MONITOR: i64 = 2;
/// The new process runs a remote call: its return value reaches the requester as the monitor's
/// reason `{ref, :return, value}` (needs [`Flags::CALLS`] and the monitor bit).
const SPAWN_CALL: i64 = 4;
/// No SPAWN_REPLY, and nothing else back: a cast (needs [`Flags::CALLS`]; no link, monitor or call).
const SPAWN_NO_REPLY: i64 = 8;

/// What a MONITOR names: a pid, or a name registered on the receiving node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MonitorTarget {
    /// A process.
    Pid(Pid),
    /// A registered name on the node the message goes to (or comes from, in MONITOR_EXIT).
    Name(Atom),
}

/// Options of a remote spawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SpawnOpts {
    /// Link the new process to the requester.
    pub link: bool,
    /// Monitor the new process from the requester (the reply's ref is the monitor ref).
    pub monitor: bool,
    /// A remote call: the process's return value becomes the reason of the requester's monitor,
    /// as `{ref, :return, value}` (PROTOCOL.md 4.3.8). Only with `monitor`, and only to a peer that
    /// negotiated [`Flags::CALLS`].
    pub call: bool,
    /// A cast: the receiver sends no SPAWN_REPLY, not even a refusal. Never with `link`, `monitor`
    /// or `call`; only to a peer that negotiated [`Flags::CALLS`].
    pub no_reply: bool,
}

impl SpawnOpts {
    /// The wire bits of these options.
    pub fn bits(&self) -> i64 {
        let bit = |on: bool, bit: i64| if on { bit } else { 0 };
        bit(self.link, SPAWN_LINK)
            | bit(self.monitor, SPAWN_MONITOR)
            | bit(self.call, SPAWN_CALL)
            | bit(self.no_reply, SPAWN_NO_REPLY)
    }

    /// Whether these options need [`Flags::CALLS`].
    pub fn needs_calls(&self) -> bool {
        self.call || self.no_reply
    }

    /// Options from wire bits, if they are a valid combination (`None` otherwise).
    fn from_bits(bits: i64) -> Option<SpawnOpts> {
        if bits & !(SPAWN_LINK | SPAWN_MONITOR | SPAWN_CALL | SPAWN_NO_REPLY) != 0 {
            return None;
        }
        let opts = SpawnOpts {
            link: bits & SPAWN_LINK != 0,
            monitor: bits & SPAWN_MONITOR != 0,
            call: bits & SPAWN_CALL != 0,
            no_reply: bits & SPAWN_NO_REPLY != 0,
        };
        let valid = (!opts.call || opts.monitor) && (!opts.no_reply || !(opts.link || opts.monitor || opts.call));
        valid.then_some(opts)
    }
}

/// One claim on a global name (PROTOCOL.md 4.3.5). `stamp`, `origin` and `generation` order
/// competing claims of one name the same way on every node (`crate::cluster::global` has the rule).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GlobalEntry {
    /// The globally registered name.
    pub name: Term,
    /// The process that claims it; it lives on the node that sends the claim.
    pub pid: Pid,
    /// Hybrid logical clock reading taken when the name was first registered (re-registrations
    /// keep it); at most `i64::MAX`.
    pub stamp: u64,
    /// The node whose clock gave `stamp`.
    pub origin: NodeName,
    /// How many times the registration was taken over with `re_register_name` (0 for a fresh one).
    pub generation: u32,
}

/// A decoded control message. Field names are the protocol's (notes in each variant).
#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq)]
pub enum Control {
    /// Deliver `msg` to `to`.
    Send { from: Pid, to: Pid, msg: Term },
    /// Deliver `msg` to the process registered as `name` on the receiver.
    RegSend { from: Pid, name: Atom, msg: Term },
    /// Create a link between `from` and `to`.
    Link { from: Pid, to: Pid },
    /// Remove the link between `from` and `to`.
    Unlink { from: Pid, to: Pid },
    /// Linked process `from` exited with `reason`.
    Exit { from: Pid, to: Pid, reason: Term },
    /// `from` called `exit(to, reason)`.
    Exit2 { from: Pid, to: Pid, reason: Term },
    /// `from` starts monitoring `target`, identified by `reference`.
    Monitor { from: Pid, target: MonitorTarget, reference: Ref },
    /// `from` stops monitoring `target`.
    Demonitor { from: Pid, target: MonitorTarget, reference: Ref },
    /// The monitored `from` is gone; `to` gets `{:DOWN, reference, from, reason}`.
    MonitorExit { from: MonitorTarget, to: Pid, reference: Ref, reason: Term },
    /// Spawn the receiver's spawnable function `function` with `args` for `from`.
    SpawnReq { reference: Ref, from: Pid, function: Atom, args: Vec<Term>, opts: SpawnOpts },
    /// The answer to a SPAWN_REQ: the new pid, or why not.
    SpawnReply { reference: Ref, to: Pid, result: Result<Pid, Term> },
    /// Keep-alive.
    Tick,
    /// The sender's connected nodes.
    NodeList { nodes: Vec<NodeName> },
    /// Deliver `msg` to the process whose alias `alias` is, if the alias is active.
    AliasSend { from: Pid, alias: Ref, msg: Term },
    /// A process of the sender claims a global name.
    GlobalRegister(GlobalEntry),
    /// `pid`, a process of the sender, gave up its claim on `name`.
    GlobalUnregister { name: Term, pid: Pid },
    /// Claims of the sender's processes (all of them, possibly over several messages).
    GlobalSync { entries: Vec<GlobalEntry> },
    /// The claim of `loser` (a process of the receiver) on `winner.name` loses to `winner`.
    GlobalConflict { loser: Pid, winner: GlobalEntry },
    /// Processes of the sender joined `group` in `scope`.
    GroupJoin { scope: Atom, group: Term, pids: Vec<Pid> },
    /// Processes of the sender left `group` in `scope`.
    GroupLeave { scope: Atom, group: Term, pids: Vec<Pid> },
    /// Every membership of the sender's processes in `scope`; replaces what the receiver knew.
    GroupSync { scope: Atom, groups: Vec<(Term, Vec<Pid>)> },
    /// The sender runs `scope`; a receiver that runs it too answers with its GROUP_SYNC.
    GroupDiscover { scope: Atom },
    /// An extension-range message this build does not know, ignored as negotiated.
    Unknown { tag: u8 },
}

/// What the receiver negotiated with the sender, and how much it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeContext {
    /// The connection's negotiated capabilities.
    pub flags: Flags,
    /// Limits for each term in a message.
    pub limits: DecodeLimits,
}

impl DecodeContext {
    /// A context for a connection with the given negotiated flags and default limits.
    pub fn new(flags: Flags) -> DecodeContext {
        DecodeContext { flags, limits: DecodeLimits::default() }
    }
}

/// Why a frame payload is not an acceptable control message. Any of these means the peer is
/// broken or hostile; the connection should be closed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// The payload is empty.
    #[error("empty control message")]
    Empty,
    /// A fragment or reserved frame kind was handed to the control decoder.
    #[error("frame kind 0x{0:02x} is not a control message (fragments go to the reassembler first)")]
    NotControl(u8),
    /// A tag this build does not know, outside the ignorable range or without the flag.
    #[error("unknown control message tag 0x{0:02x}; the peer speaks a newer protocol without negotiating it")]
    UnknownTag(u8),
    /// A message for a capability that was not negotiated.
    #[error("{message} received, but capability {flag:?} was not negotiated on this connection")]
    NotNegotiated {
        /// The message's name.
        message: &'static str,
        /// The capability it needs.
        flag: Flags,
    },
    /// A field's bytes are not a valid term.
    #[error("{message}: field `{field}` is not a valid term: {source}")]
    BadTerm {
        /// The message's name.
        message: &'static str,
        /// The field.
        field: &'static str,
        /// What the term decoder found.
        source: DecodeError,
    },
    /// A field holds the wrong kind of term.
    #[error("{message}: field `{field}` must be {expected}, got {got}")]
    BadField {
        /// The message's name.
        message: &'static str,
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
        /// What it was.
        got: &'static str,
    },
    /// Bytes follow the last field.
    #[error("{message}: {extra} bytes after the last field")]
    TrailingBytes {
        /// The message's name.
        message: &'static str,
        /// How many.
        extra: usize,
    },
}

impl Control {
    /// The message's tag byte.
    pub fn tag(&self) -> u8 {
        match self {
            Control::Send { .. } => tag::SEND,
            Control::RegSend { .. } => tag::REG_SEND,
            Control::Link { .. } => tag::LINK,
            Control::Unlink { .. } => tag::UNLINK,
            Control::Exit { .. } => tag::EXIT,
            Control::Exit2 { .. } => tag::EXIT2,
            Control::Monitor { .. } => tag::MONITOR,
            Control::Demonitor { .. } => tag::DEMONITOR,
            Control::MonitorExit { .. } => tag::MONITOR_EXIT,
            Control::SpawnReq { .. } => tag::SPAWN_REQ,
            Control::SpawnReply { .. } => tag::SPAWN_REPLY,
            Control::Tick => tag::TICK,
            Control::NodeList { .. } => tag::NODE_LIST,
            Control::AliasSend { .. } => tag::ALIAS_SEND,
            Control::GlobalRegister(_) => tag::GLOBAL_REGISTER,
            Control::GlobalUnregister { .. } => tag::GLOBAL_UNREGISTER,
            Control::GlobalSync { .. } => tag::GLOBAL_SYNC,
            Control::GlobalConflict { .. } => tag::GLOBAL_CONFLICT,
            Control::GroupJoin { .. } => tag::GROUP_JOIN,
            Control::GroupLeave { .. } => tag::GROUP_LEAVE,
            Control::GroupSync { .. } => tag::GROUP_SYNC,
            Control::GroupDiscover { .. } => tag::GROUP_DISCOVER,
            Control::Unknown { tag } => *tag,
        }
    }

    /// The message's protocol name, for logs and errors.
    pub fn name(&self) -> &'static str {
        tag_name(self.tag())
    }

    /// The capability that must be negotiated before this message may be sent, if any: the
    /// tag's ([`required_flag`]), or [`Flags::CALLS`] for a SPAWN_REQ with call options.
    pub fn required_flag(&self) -> Option<Flags> {
        match self {
            Control::SpawnReq { opts, .. } if opts.needs_calls() => Some(Flags::SPAWN.with(Flags::CALLS)),
            _ => required_flag(self.tag()),
        }
    }

    /// The process whose signal ordering this message belongs to: signals from one process to
    /// another must arrive in the order they were sent, so a writer queues each sender's messages
    /// in one FIFO. `None` for node-level messages.
    pub fn sender(&self) -> Option<&Pid> {
        match self {
            Control::Send { from, .. }
            | Control::RegSend { from, .. }
            | Control::Link { from, .. }
            | Control::Unlink { from, .. }
            | Control::Exit { from, .. }
            | Control::Exit2 { from, .. }
            | Control::Monitor { from, .. }
            | Control::Demonitor { from, .. }
            | Control::SpawnReq { from, .. }
            | Control::AliasSend { from, .. }
            | Control::MonitorExit { from: MonitorTarget::Pid(from), .. } => Some(from),
            _ => None,
        }
    }

    /// Appends the message (tag and fields, no frame header) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(CONTROL_HEAD_ROOM + self.term().map_or(0, crate::codec::encoded_len));
        self.encode_with(&mut InFull, out);
    }

    /// [`Control::encode`] with names written through `names` (in full, or as references to the
    /// connection's atom cache, PROTOCOL.md 4.4).
    pub(crate) fn encode_with<N: NameWriter>(&self, names: &mut N, out: &mut Vec<u8>) {
        out.push(self.tag());
        let n = names;
        match self {
            Control::Send { from, to, msg }
            | Control::Exit { from, to, reason: msg }
            | Control::Exit2 { from, to, reason: msg } => {
                pid_field(n, from, out);
                pid_field(n, to, out);
                term_field(n, msg, out);
            }
            Control::RegSend { from, name, msg } => {
                pid_field(n, from, out);
                atom_field(n, name, out);
                term_field(n, msg, out);
            }
            Control::AliasSend { from, alias, msg } => {
                pid_field(n, from, out);
                ref_field(n, alias, out);
                term_field(n, msg, out);
            }
            Control::Link { from, to } | Control::Unlink { from, to } => {
                pid_field(n, from, out);
                pid_field(n, to, out);
            }
            Control::Monitor { from, target, reference: r } | Control::Demonitor { from, target, reference: r } => {
                pid_field(n, from, out);
                term_field(n, &target_term(target), out);
                ref_field(n, r, out);
            }
            Control::MonitorExit { from, to, reference: r, reason } => {
                term_field(n, &target_term(from), out);
                pid_field(n, to, out);
                ref_field(n, r, out);
                term_field(n, reason, out);
            }
            Control::SpawnReq { reference: r, from, function, args, opts } => {
                ref_field(n, r, out);
                pid_field(n, from, out);
                atom_field(n, function, out);
                term_field(n, &Term::List(args.clone()), out);
                term_field(n, &Term::Int(opts.bits()), out);
            }
            Control::SpawnReply { reference: r, to, result } => {
                ref_field(n, r, out);
                pid_field(n, to, out);
                let result = match result {
                    Ok(p) => Term::tuple([Term::atom("ok"), Term::Pid(p.clone())]),
                    Err(reason) => Term::tuple([Term::atom("error"), reason.clone()]),
                };
                term_field(n, &result, out);
            }
            Control::Tick | Control::Unknown { .. } => {}
            Control::NodeList { nodes } => {
                let list = Term::List(nodes.iter().map(|node| Term::Atom(node.as_atom().clone())).collect());
                term_field(n, &list, out)
            }
            Control::GlobalRegister(entry) => {
                term_field(n, &entry.name, out);
                pid_field(n, &entry.pid, out);
                term_field(n, &stamp_term(entry.stamp), out);
                atom_field(n, entry.origin.as_atom(), out);
                term_field(n, &Term::Int(i64::from(entry.generation)), out);
            }
            Control::GlobalUnregister { name, pid: p } => {
                term_field(n, name, out);
                pid_field(n, p, out);
            }
            Control::GlobalSync { entries } => {
                term_field(n, &Term::List(entries.iter().map(entry_term).collect()), out);
            }
            Control::GlobalConflict { loser, winner } => {
                pid_field(n, loser, out);
                term_field(n, &entry_term(winner), out);
            }
            Control::GroupJoin { scope, group, pids: ps } | Control::GroupLeave { scope, group, pids: ps } => {
                atom_field(n, scope, out);
                term_field(n, group, out);
                term_field(n, &pid_list(ps), out);
            }
            Control::GroupSync { scope, groups } => {
                atom_field(n, scope, out);
                let list = groups.iter().map(|(g, ps)| Term::tuple([g.clone(), pid_list(ps)])).collect();
                term_field(n, &Term::List(list), out);
            }
            Control::GroupDiscover { scope } => atom_field(n, scope, out),
        }
    }

    /// The bytes of `Control::Send { from, to, msg }.to_bytes()`, for a sender that holds the
    /// parts by reference: the hot path of a remote send builds no `Control` (no pid clones).
    pub fn send_to_bytes(from: &Pid, to: &Pid, msg: &Term) -> Vec<u8> {
        let mut out = Vec::with_capacity(CONTROL_HEAD_ROOM + crate::codec::encoded_len(msg));
        out.push(tag::SEND);
        encode_pids_and_term(from, to, msg, &mut out);
        out
    }

    /// The encoded message as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Sized for the message term exactly and the pids and atoms around it generously, so the
        // buffer is allocated once and never grows.
        let mut out = Vec::with_capacity(CONTROL_HEAD_ROOM + self.term().map_or(0, crate::codec::encoded_len));
        self.encode_with(&mut InFull, &mut out);
        out
    }

    /// The message's one large term, if it has one (the message of a send, an exit's reason).
    fn term(&self) -> Option<&Term> {
        match self {
            Control::Send { msg, .. }
            | Control::RegSend { msg, .. }
            | Control::AliasSend { msg, .. }
            | Control::Exit { reason: msg, .. }
            | Control::Exit2 { reason: msg, .. } => Some(msg),
            _ => None,
        }
    }
}

/// Bytes reserved for a control message's tag, pids, atoms and references besides its message
/// term: two pids of typical node names take about 60.
const CONTROL_HEAD_ROOM: usize = 128;

/// The fields of SEND, EXIT and EXIT2: two pids and a term.
fn encode_pids_and_term(from: &Pid, to: &Pid, term: &Term, out: &mut Vec<u8>) {
    encode_pid_into(from, out);
    encode_pid_into(to, out);
    encode_into(term, out);
}

/// A pid field: version byte and the pid (PROTOCOL.md 4.3.2).
#[inline]
fn pid_field<N: NameWriter>(names: &mut N, pid: &Pid, out: &mut Vec<u8>) {
    out.push(WIRE_VERSION);
    names.id(IdKind::Pid, pid.node(), pid.id(), pid.creation(), out);
}

/// A reference field.
#[inline]
fn ref_field<N: NameWriter>(names: &mut N, reference: &Ref, out: &mut Vec<u8>) {
    out.push(WIRE_VERSION);
    names.id(IdKind::Ref, reference.node(), reference.id(), reference.creation(), out);
}

/// An atom field.
#[inline]
fn atom_field<N: NameWriter>(names: &mut N, atom: &Atom, out: &mut Vec<u8>) {
    out.push(WIRE_VERSION);
    names.atom(atom, out);
}

/// A field of any term.
#[inline]
fn term_field<N: NameWriter>(names: &mut N, term: &Term, out: &mut Vec<u8>) {
    encode_into_with(term, out, names);
}

/// A control message to encode, borrowed: the hot path of a remote send builds no [`Control`]
/// (no pid clones), and a connection with an atom cache encodes it under its queue's lock
/// ([`crate::dist::outbound::Outbound::encode`]).
#[derive(Clone, Copy, Debug)]
pub enum Outgoing<'a> {
    /// SEND from its parts.
    Send {
        /// The sending process.
        from: &'a Pid,
        /// The receiving process.
        to: &'a Pid,
        /// The message.
        msg: &'a Term,
    },
    /// Any control message.
    Control(&'a Control),
}

impl Outgoing<'_> {
    /// The message encoded in full (PROTOCOL.md 4.3.2), as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Outgoing::Send { from, to, msg } => Control::send_to_bytes(from, to, msg),
            Outgoing::Control(msg) => msg.to_bytes(),
        }
    }

    /// [`Outgoing::to_bytes`] for a caller that has measured the term already
    /// ([`Outgoing::term_len`]): the term is not walked a second time to size the buffer.
    pub fn to_bytes_sized(&self, term_len: usize) -> Vec<u8> {
        let mut out = Outgoing::buffer(term_len);
        self.encode_with(&mut InFull, &mut out);
        out
    }

    /// Bytes of its message term written in full (0 for messages without one): what decides
    /// whether a message is small enough for the atom cache to matter.
    pub fn term_len(&self) -> usize {
        match self {
            Outgoing::Send { msg, .. } => crate::codec::encoded_len(msg),
            Outgoing::Control(msg) => msg.term().map_or(0, crate::codec::encoded_len),
        }
    }

    /// The process whose signal ordering the message belongs to ([`Control::sender`]).
    pub fn sender(&self) -> Option<&Pid> {
        match self {
            Outgoing::Send { from, .. } => Some(from),
            Outgoing::Control(msg) => msg.sender(),
        }
    }

    /// Appends the message; `out` should have room for [`CONTROL_HEAD_ROOM`] bytes and the
    /// message term ([`Outgoing::term_len`]), as [`Outgoing::buffer`] makes.
    pub(crate) fn encode_with<N: NameWriter>(&self, names: &mut N, out: &mut Vec<u8>) {
        match self {
            Outgoing::Send { from, to, msg } => {
                out.push(tag::SEND);
                pid_field(names, from, out);
                pid_field(names, to, out);
                term_field(names, msg, out);
            }
            Outgoing::Control(msg) => msg.encode_with(names, out),
        }
    }

    /// An empty buffer with room for the message whose term takes `term_len` bytes in full.
    pub fn buffer(term_len: usize) -> Vec<u8> {
        Vec::with_capacity(CONTROL_HEAD_ROOM + term_len)
    }
}

fn pid_list(pids: &[Pid]) -> Term {
    Term::List(pids.iter().cloned().map(Term::Pid).collect())
}

fn target_term(target: &MonitorTarget) -> Term {
    match target {
        MonitorTarget::Pid(p) => Term::Pid(p.clone()),
        MonitorTarget::Name(a) => Term::Atom(a.clone()),
    }
}

fn stamp_term(stamp: u64) -> Term {
    Term::Int(i64::try_from(stamp).unwrap_or(i64::MAX))
}

/// A claim as the tuple `{name, pid, stamp, origin, generation}` of GLOBAL_SYNC and GLOBAL_CONFLICT.
fn entry_term(entry: &GlobalEntry) -> Term {
    Term::tuple([
        entry.name.clone(),
        Term::Pid(entry.pid.clone()),
        stamp_term(entry.stamp),
        Term::Atom(entry.origin.as_atom().clone()),
        Term::Int(i64::from(entry.generation)),
    ])
}

/// The protocol name of a tag (`"UNKNOWN"` for tags this build does not define).
pub fn tag_name(tag: u8) -> &'static str {
    match tag {
        tag::SEND => "SEND",
        tag::REG_SEND => "REG_SEND",
        tag::LINK => "LINK",
        tag::UNLINK => "UNLINK",
        tag::EXIT => "EXIT",
        tag::EXIT2 => "EXIT2",
        tag::MONITOR => "MONITOR",
        tag::DEMONITOR => "DEMONITOR",
        tag::MONITOR_EXIT => "MONITOR_EXIT",
        tag::SPAWN_REQ => "SPAWN_REQ",
        tag::SPAWN_REPLY => "SPAWN_REPLY",
        tag::TICK => "TICK",
        tag::NODE_LIST => "NODE_LIST",
        tag::ALIAS_SEND => "ALIAS_SEND",
        tag::GLOBAL_REGISTER => "GLOBAL_REGISTER",
        tag::GLOBAL_UNREGISTER => "GLOBAL_UNREGISTER",
        tag::GLOBAL_SYNC => "GLOBAL_SYNC",
        tag::GLOBAL_CONFLICT => "GLOBAL_CONFLICT",
        tag::GROUP_JOIN => "GROUP_JOIN",
        tag::GROUP_LEAVE => "GROUP_LEAVE",
        tag::GROUP_SYNC => "GROUP_SYNC",
        tag::GROUP_DISCOVER => "GROUP_DISCOVER",
        _ => "UNKNOWN",
    }
}

/// The capability a message with this tag needs (a SPAWN_REQ with call options needs
/// [`Flags::CALLS`] too: [`Control::required_flag`]). A sender checks it before queueing a frame
/// for a connection; a receiver refuses a message whose capability was not negotiated.
pub fn required_flag(tag: u8) -> Option<Flags> {
    match tag {
        tag::SPAWN_REQ | tag::SPAWN_REPLY => Some(Flags::SPAWN),
        tag::NODE_LIST => Some(Flags::MESH),
        tag::ALIAS_SEND => Some(Flags::ALIAS),
        tag::GLOBAL_REGISTER | tag::GLOBAL_UNREGISTER | tag::GLOBAL_SYNC | tag::GLOBAL_CONFLICT => Some(Flags::GLOBAL),
        tag::GROUP_JOIN | tag::GROUP_LEAVE | tag::GROUP_SYNC | tag::GROUP_DISCOVER => Some(Flags::GROUPS),
        _ => None,
    }
}

#[path = "control_decode.rs"]
mod decoding;
pub(crate) use decoding::decode_cached;
pub use decoding::{decode, decode_shared};

#[cfg(test)]
#[path = "control_tests.rs"]
mod tests;
