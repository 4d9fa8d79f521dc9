//! Decoding of control messages (PROTOCOL.md 4.3.2): one message's fields in order, each a
//! complete term, checked for kind and for the capabilities they need. Plain frames and the body
//! of a cached frame (4.4, whose fields may refer to the connection's atom cache) share it.

use super::{
    required_flag, tag, tag_name, Control, ControlError, DecodeContext, GlobalEntry, MonitorTarget, SpawnOpts,
};
use crate::atom::Atom;
use crate::binary::Binary;
use crate::codec::{decode_prefix, decode_prefix_cached, decode_prefix_shared, CacheLookup, DecodeLimits};
use crate::dist::Flags;
use crate::name::NodeName;
use crate::pid::{Pid, Ref};
use crate::term::Term;

/// Reads the fields of one message in order.
struct Fields<'a> {
    message: &'static str,
    rest: &'a [u8],
    limits: DecodeLimits,
    /// The connection's negotiated capabilities (options of a message may need one).
    flags: Flags,
    /// How the fields' terms are read.
    source: FieldSource<'a>,
}

/// How the terms of a message are decoded.
#[derive(Clone, Copy)]
enum FieldSource<'a> {
    /// Self-contained, binaries copied.
    Plain,
    /// Large binaries as views of the whole payload (of this length): [`decode_shared`].
    Shared(&'a Binary, usize),
    /// The body of a cached frame (PROTOCOL.md 4.4): references resolve through the atom cache.
    Cached(&'a dyn CacheLookup),
}

impl Fields<'_> {
    fn term(&mut self, field: &'static str) -> Result<Term, ControlError> {
        let decoded = match self.source {
            FieldSource::Plain => decode_prefix(self.rest, &self.limits),
            // `rest` is the payload's tail.
            FieldSource::Shared(payload, len) => decode_prefix_shared(payload, len - self.rest.len(), &self.limits),
            FieldSource::Cached(cache) => decode_prefix_cached(self.rest, &self.limits, cache),
        };
        let (term, used) = decoded.map_err(|source| ControlError::BadTerm { message: self.message, field, source })?;
        self.rest = &self.rest[used..];
        Ok(term)
    }

    fn bad(&self, field: &'static str, expected: &'static str, got: &Term) -> ControlError {
        ControlError::BadField { message: self.message, field, expected, got: got.kind() }
    }

    fn pid(&mut self, field: &'static str) -> Result<Pid, ControlError> {
        match self.term(field)? {
            Term::Pid(p) => Ok(p),
            other => Err(self.bad(field, "a pid", &other)),
        }
    }

    fn reference(&mut self, field: &'static str) -> Result<Ref, ControlError> {
        match self.term(field)? {
            Term::Ref(r) => Ok(r),
            other => Err(self.bad(field, "a reference", &other)),
        }
    }

    fn atom(&mut self, field: &'static str) -> Result<Atom, ControlError> {
        match self.term(field)? {
            Term::Atom(a) => Ok(a),
            other => Err(self.bad(field, "an atom", &other)),
        }
    }

    fn target(&mut self, field: &'static str) -> Result<MonitorTarget, ControlError> {
        match self.term(field)? {
            Term::Pid(p) => Ok(MonitorTarget::Pid(p)),
            Term::Atom(a) => Ok(MonitorTarget::Name(a)),
            other => Err(self.bad(field, "a pid or an atom", &other)),
        }
    }

    fn list(&mut self, field: &'static str) -> Result<Vec<Term>, ControlError> {
        match self.term(field)? {
            Term::List(items) => Ok(items),
            other => Err(self.bad(field, "a list", &other)),
        }
    }

    fn pids_of(&self, field: &'static str, items: Vec<Term>) -> Result<Vec<Pid>, ControlError> {
        items
            .into_iter()
            .map(|t| match t {
                Term::Pid(p) => Ok(p),
                other => Err(self.bad(field, "a list of pids", &other)),
            })
            .collect()
    }

    fn stamp(&self, field: &'static str, term: Term) -> Result<u64, ControlError> {
        match term {
            Term::Int(i) if i >= 0 => Ok(i as u64),
            other => Err(self.bad(field, "a non-negative integer", &other)),
        }
    }

    fn generation(&self, field: &'static str, term: Term) -> Result<u32, ControlError> {
        match term {
            Term::Int(i) if (0..=i64::from(u32::MAX)).contains(&i) => Ok(i as u32),
            other => Err(self.bad(field, "an integer from 0 to 4294967295", &other)),
        }
    }

    fn node(&self, field: &'static str, term: Term) -> Result<NodeName, ControlError> {
        match &term {
            Term::Atom(a) => NodeName::parse(a.as_str()).map_err(|_| self.bad(field, "a node name", &term)),
            _ => Err(self.bad(field, "a node-name atom", &term)),
        }
    }

    /// A `{name, pid, stamp, origin, generation}` tuple (GLOBAL_SYNC, GLOBAL_CONFLICT).
    fn entry_of(&self, field: &'static str, item: Term) -> Result<GlobalEntry, ControlError> {
        const EXPECTED: &str = "{name, pid, stamp, origin, generation} tuples";
        let fields = match item {
            Term::Tuple(t) => <[Term; 5]>::try_from(t).map_err(|t| self.bad(field, EXPECTED, &Term::Tuple(t)))?,
            other => return Err(self.bad(field, EXPECTED, &other)),
        };
        match fields {
            [name, Term::Pid(pid), stamp, origin, generation] => Ok(GlobalEntry {
                name,
                pid,
                stamp: self.stamp(field, stamp)?,
                origin: self.node(field, origin)?,
                generation: self.generation(field, generation)?,
            }),
            other => Err(self.bad(field, EXPECTED, &Term::tuple(other))),
        }
    }

    fn finish(&self) -> Result<(), ControlError> {
        match self.rest.len() {
            0 => Ok(()),
            extra => Err(ControlError::TrailingBytes { message: self.message, extra }),
        }
    }
}

/// Decodes one whole control message (a frame payload that is not a fragment, or a reassembled
/// fragmented message). Never panics; see [`ControlError`] for what it rejects.
pub fn decode(payload: &[u8], ctx: &DecodeContext) -> Result<Control, ControlError> {
    decode_fields_of(payload, ctx, FieldSource::Plain)
}

/// [`decode`], with the large binaries of the message's terms as views of `payload` instead of
/// copies, under [`crate::codec::decode_shared`]'s rule.
pub fn decode_shared(payload: &Binary, ctx: &DecodeContext) -> Result<Control, ControlError> {
    let bytes = payload.as_slice();
    decode_fields_of(bytes, ctx, FieldSource::Shared(payload, bytes.len()))
}

/// Decodes the control message of a cached frame (PROTOCOL.md 4.4), whose fields may refer to
/// the connection's atom cache.
pub(crate) fn decode_cached(
    payload: &[u8],
    ctx: &DecodeContext,
    cache: &dyn CacheLookup,
) -> Result<Control, ControlError> {
    decode_fields_of(payload, ctx, FieldSource::Cached(cache))
}

fn decode_fields_of<'a>(
    payload: &'a [u8],
    ctx: &DecodeContext,
    source: FieldSource<'a>,
) -> Result<Control, ControlError> {
    let (&tag, rest) = payload.split_first().ok_or(ControlError::Empty)?;
    if tag == 0 || tag > tag::EXTENSION_LAST {
        return Err(ControlError::NotControl(tag));
    }
    let message = tag_name(tag);
    if message == "UNKNOWN" {
        return if tag >= tag::EXTENSION_FIRST && ctx.flags.contains(Flags::EXTENSIONS) {
            Ok(Control::Unknown { tag })
        } else {
            Err(ControlError::UnknownTag(tag))
        };
    }
    if let Some(flag) = required_flag(tag).filter(|flag| !ctx.flags.contains(*flag)) {
        return Err(ControlError::NotNegotiated { message, flag });
    }
    let mut f = Fields { message, rest, limits: ctx.limits, flags: ctx.flags, source };
    let msg = decode_fields(tag, &mut f)?;
    f.finish()?;
    Ok(msg)
}

fn decode_fields(tag: u8, f: &mut Fields<'_>) -> Result<Control, ControlError> {
    Ok(match tag {
        tag::SEND => Control::Send { from: f.pid("from")?, to: f.pid("to")?, msg: f.term("msg")? },
        tag::REG_SEND => Control::RegSend { from: f.pid("from")?, name: f.atom("name")?, msg: f.term("msg")? },
        tag::LINK => Control::Link { from: f.pid("from")?, to: f.pid("to")? },
        tag::UNLINK => Control::Unlink { from: f.pid("from")?, to: f.pid("to")? },
        tag::EXIT => Control::Exit { from: f.pid("from")?, to: f.pid("to")?, reason: f.term("reason")? },
        tag::EXIT2 => Control::Exit2 { from: f.pid("from")?, to: f.pid("to")?, reason: f.term("reason")? },
        tag::MONITOR => {
            Control::Monitor { from: f.pid("from")?, target: f.target("target")?, reference: f.reference("ref")? }
        }
        tag::DEMONITOR => {
            Control::Demonitor { from: f.pid("from")?, target: f.target("target")?, reference: f.reference("ref")? }
        }
        tag::MONITOR_EXIT => Control::MonitorExit {
            from: f.target("from")?,
            to: f.pid("to")?,
            reference: f.reference("ref")?,
            reason: f.term("reason")?,
        },
        tag::SPAWN_REQ => {
            let (reference, from, function, args) =
                (f.reference("ref")?, f.pid("from")?, f.atom("function")?, f.list("args")?);
            const EXPECTED: &str =
                "an integer of bits 1 (link), 2 (monitor), 4 (call, with monitor), 8 (no reply, alone)";
            let opts = match f.term("opts")? {
                Term::Int(bits) => {
                    SpawnOpts::from_bits(bits).ok_or_else(|| f.bad("opts", EXPECTED, &Term::Int(bits)))?
                }
                other => return Err(f.bad("opts", EXPECTED, &other)),
            };
            if opts.needs_calls() && !f.flags.contains(Flags::CALLS) {
                return Err(ControlError::NotNegotiated { message: "SPAWN_REQ with call options", flag: Flags::CALLS });
            }
            Control::SpawnReq { reference, from, function, args, opts }
        }
        tag::SPAWN_REPLY => {
            let (reference, to) = (f.reference("ref")?, f.pid("to")?);
            let result = match f.term("result")? {
                Term::Tuple(t) => match <[Term; 2]>::try_from(t) {
                    Ok([status, Term::Pid(p)]) if status.is_atom("ok") => Ok(p),
                    Ok([status, reason]) if status.is_atom("error") => Err(reason),
                    Ok(pair) => return Err(f.bad("result", "{:ok, pid} or {:error, reason}", &Term::tuple(pair))),
                    Err(t) => return Err(f.bad("result", "{:ok, pid} or {:error, reason}", &Term::Tuple(t))),
                },
                other => return Err(f.bad("result", "{:ok, pid} or {:error, reason}", &other)),
            };
            Control::SpawnReply { reference, to, result }
        }
        tag::TICK => Control::Tick,
        tag::ALIAS_SEND => {
            Control::AliasSend { from: f.pid("from")?, alias: f.reference("alias")?, msg: f.term("msg")? }
        }
        tag::NODE_LIST => {
            let items = f.list("nodes")?;
            let nodes = items.into_iter().map(|t| f.node("nodes", t)).collect::<Result<_, _>>()?;
            Control::NodeList { nodes }
        }
        tag::GLOBAL_REGISTER => {
            let (name, pid) = (f.term("name")?, f.pid("pid")?);
            let stamp = f.term("stamp")?;
            let stamp = f.stamp("stamp", stamp)?;
            let origin = f.term("origin")?;
            let origin = f.node("origin", origin)?;
            let generation = f.term("generation")?;
            let generation = f.generation("generation", generation)?;
            Control::GlobalRegister(GlobalEntry { name, pid, stamp, origin, generation })
        }
        tag::GLOBAL_UNREGISTER => Control::GlobalUnregister { name: f.term("name")?, pid: f.pid("pid")? },
        tag::GLOBAL_SYNC => {
            let items = f.list("entries")?;
            let entries = items.into_iter().map(|item| f.entry_of("entries", item)).collect::<Result<_, _>>()?;
            Control::GlobalSync { entries }
        }
        tag::GLOBAL_CONFLICT => {
            let loser = f.pid("loser")?;
            let winner = f.term("winner")?;
            Control::GlobalConflict { loser, winner: f.entry_of("winner", winner)? }
        }
        tag::GROUP_JOIN | tag::GROUP_LEAVE => {
            let (scope, group) = (f.atom("scope")?, f.term("group")?);
            let items = f.list("pids")?;
            let pids = f.pids_of("pids", items)?;
            if tag == tag::GROUP_JOIN {
                Control::GroupJoin { scope, group, pids }
            } else {
                Control::GroupLeave { scope, group, pids }
            }
        }
        tag::GROUP_DISCOVER => Control::GroupDiscover { scope: f.atom("scope")? },
        tag::GROUP_SYNC => {
            let scope = f.atom("scope")?;
            let items = f.list("groups")?;
            let mut groups = Vec::with_capacity(items.len());
            for item in items {
                let pair = match item {
                    Term::Tuple(t) => <[Term; 2]>::try_from(t).map_err(Term::Tuple),
                    other => Err(other),
                };
                match pair {
                    Ok([group, Term::List(members)]) => groups.push((group, f.pids_of("groups", members)?)),
                    Ok(pair) => return Err(f.bad("groups", "{group, [pid]} tuples", &Term::tuple(pair))),
                    Err(other) => return Err(f.bad("groups", "{group, [pid]} tuples", &other)),
                }
            }
            Control::GroupSync { scope, groups }
        }
        other => return Err(ControlError::UnknownTag(other)),
    })
}
