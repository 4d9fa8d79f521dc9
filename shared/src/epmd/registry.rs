//! Registration policy, sans-IO: who may register what, with which refusal code, and the names
//! that live only at this daemon (README "snow-epmd", PROTOCOL.md 5.2).
//!
//! - Registrations come from loopback only unless `allow_remote` (Snow's rule: refusal 3).
//! - At most `max_per_source` live registrations per source address (refusal 4).
//! - A name Erlang's epmd would refuse (over 255 characters or 1020 bytes, not UTF-8) or an Extra
//!   field over 1020 bytes gets result 1, as from Erlang's epmd.
//! - A name that is a Snow node name (`name@host`, or a short name with the daemon's host, per
//!   Snow's rules) goes into the gossiped [`Table`]; any other name Erlang's epmd accepts (UTF-8,
//!   spaces, a second `@`, ...) is registered here only, as Erlang's epmd would: answered by
//!   PORT_PLEASE2, NAMES, DUMP and LIST, counted against the daemon's own budget, never gossiped
//!   nor persisted (Snow nodes cannot have such names, so no other host asks for them).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use super::table::{RegisterError, Registration, Table};
use super::wire::{epmd_name, parse_extra, refusal, Alive2Req, MAX_EXTRA_LEN};
use crate::name::NodeName;

/// What the daemon's flags say about registrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryPolicy {
    /// Accept registrations from non-loopback addresses (`--allow-remote-register`).
    pub allow_remote: bool,
    /// Most live registrations from one source address (`--max-per-source`).
    pub max_per_source: usize,
    /// The host given to short names (`--hostname`).
    pub default_host: String,
}

/// A live registration's key, to release it when its connection closes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Registered {
    /// A Snow node name, in the gossiped table.
    Node(NodeName),
    /// A name outside Snow's rules, registered at this daemon only.
    Local(String),
}

impl std::fmt::Display for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Registered::Node(n) => n.fmt(f),
            Registered::Local(n) => write!(f, "{n:?} (EPMD name, local only)"),
        }
    }
}

/// A registration the policy accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    /// What to release later.
    pub key: Registered,
    /// The creation given.
    pub creation: u32,
    /// Something the operator should know (logged by the driver), e.g. a requested creation that
    /// was not granted, or a node that is served locally only.
    pub note: Option<String>,
}

/// A refused registration: the result code of the reply and the reason for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// An ALIVE2 result code ([`refusal`]).
    pub code: u8,
    /// Why, for the log.
    pub reason: String,
}

fn refused(code: u8, reason: impl Into<String>) -> Refused {
    Refused { code, reason: reason.into() }
}

/// A registration outside Snow's rules (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalName {
    /// The name as registered.
    pub name: String,
    /// The request's fields, as PORT2_RESP returns them.
    pub request: Alive2Req,
    /// The creation given.
    pub creation: u32,
    /// Local time (ms) of the registration.
    pub since: u64,
}

/// The registration state of one daemon besides its table: per-source counts and local names.
#[derive(Debug, Clone)]
pub struct Registry {
    policy: RegistryPolicy,
    per_source: HashMap<IpAddr, usize>,
    local: BTreeMap<String, LocalName>,
}

/// Registrations come from loopback only, unless `allow_remote`.
pub fn registration_allowed(allow_remote: bool, ip: IpAddr) -> bool {
    allow_remote
        || ip.is_loopback()
        || matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()))
}

impl Registry {
    /// An empty registry under `policy`.
    pub fn new(policy: RegistryPolicy) -> Registry {
        Registry { policy, per_source: HashMap::new(), local: BTreeMap::new() }
    }

    /// Decides ALIVE2_REQ `req` from `source` at local time `now`; on success the table (or the
    /// local names) hold the registration. `fresh_creation` is a random nonzero creation for a
    /// name never seen. The caller persists the table's changes before replying.
    pub fn register(
        &mut self,
        table: &mut Table,
        source: IpAddr,
        req: &Alive2Req,
        fresh_creation: u32,
        now: u64,
    ) -> Result<Granted, Refused> {
        if !registration_allowed(self.policy.allow_remote, source) {
            return Err(refused(
                refusal::NOT_LOCAL,
                "registration from a non-loopback address (see --allow-remote-register)",
            ));
        }
        let text = epmd_name(&req.name).map_err(|e| refused(refusal::TAKEN, e.to_string()))?;
        if req.extra.len() > MAX_EXTRA_LEN {
            return Err(refused(refusal::TAKEN, format!("the Extra field has {} bytes, over 1020", req.extra.len())));
        }
        let count = self.per_source.get(&source).copied().unwrap_or(0);
        if count >= self.policy.max_per_source {
            return Err(refused(
                refusal::LIMIT,
                format!("{count} live registrations from this address (--max-per-source)"),
            ));
        }
        // A Snow option in Extra (a node registering again asks for its creation) is consumed
        // here; only opaque Extra bytes are stored and returned in PORT2_RESP.
        let extra = parse_extra(&req.extra).map_err(|e| refused(refusal::BAD_EXTRA, e.to_string()))?;
        let granted = match NodeName::parse_with_default_host(text, &self.policy.default_host) {
            Ok(name) => {
                let reg = Registration {
                    name: name.clone(),
                    port: req.port,
                    node_type: req.node_type,
                    high_version: req.high_version,
                    low_version: req.low_version,
                    extra: extra.opaque.to_vec(),
                };
                let asked = extra.requested_creation;
                let entry = table.register_requesting(reg, asked, fresh_creation, now).map_err(|e| match e {
                    RegisterError::AlreadyRegistered(_) => refused(refusal::TAKEN, e.to_string()),
                    RegisterError::TableFull(_) => refused(refusal::LIMIT, e.to_string()),
                })?;
                let mut note = asked.filter(|c| c.get() != entry.creation).map(|asked| {
                    format!(
                        "{name} asked for creation {asked}, but its entry here is another daemon's or has another \
                         creation; assigned {}",
                        entry.creation
                    )
                });
                if !super::table::speaks_for(table.me(), name.host_for_connect()) {
                    note = Some(format!(
                        "{name} is served by this daemon only: other daemons accept from daemon {} only nodes on \
                         its own host; name the node after that host, or give this daemon --advertise {}:PORT",
                        table.me(),
                        name.host()
                    ));
                }
                Granted { key: Registered::Node(name), creation: entry.creation, note }
            }
            Err(_) => {
                if self.local.contains_key(text) {
                    return Err(refused(refusal::TAKEN, format!("{text:?} is already registered and alive")));
                }
                if self.local.len() + table.own_len() >= table.limits().max_entries {
                    return Err(refused(refusal::LIMIT, "this daemon's registrations are at --max-entries"));
                }
                let mut request = req.clone();
                request.extra = extra.opaque.to_vec();
                let creation = fresh_creation.max(1);
                let local = LocalName { name: text.to_owned(), request, creation, since: now };
                self.local.insert(text.to_owned(), local);
                Granted { key: Registered::Local(text.to_owned()), creation, note: None }
            }
        };
        *self.per_source.entry(source).or_insert(0) += 1;
        Ok(granted)
    }

    /// Ends a registration (its connection closed, or it could not be made durable): frees its
    /// per-source slot and, if `mark_down` (not when the daemon is stopping), marks a node down.
    /// Returns whether the table changed.
    pub fn release(
        &mut self,
        table: &mut Table,
        source: IpAddr,
        key: &Registered,
        creation: u32,
        mark_down: bool,
        now: u64,
    ) -> bool {
        if let Some(c) = self.per_source.get_mut(&source) {
            *c = c.saturating_sub(1);
            if *c == 0 {
                self.per_source.remove(&source);
            }
        }
        match key {
            Registered::Node(name) => mark_down && table.unregister(name, creation, now),
            Registered::Local(name) => {
                if self.local.get(name).is_some_and(|l| l.creation == creation) {
                    self.local.remove(name);
                }
                false
            }
        }
    }

    /// The names outside Snow's rules registered here, in name order.
    pub fn local_names(&self) -> impl Iterator<Item = &LocalName> {
        self.local.values()
    }

    /// The local registration named exactly `raw`, if any.
    pub fn local_name(&self, raw: &[u8]) -> Option<&LocalName> {
        std::str::from_utf8(raw).ok().and_then(|n| self.local.get(n))
    }

    /// True when no name outside Snow's rules is registered (the lookup path skips the search).
    pub fn is_empty(&self) -> bool {
        self.local.is_empty()
    }

    /// Live registrations from `source`.
    pub fn from_source(&self, source: IpAddr) -> usize {
        self.per_source.get(&source).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::epmd::identity::Identity;
    use crate::epmd::table::TableLimits;

    fn registry(max_per_source: usize) -> Registry {
        Registry::new(RegistryPolicy { allow_remote: false, max_per_source, default_host: "h".into() })
    }

    fn table() -> Table {
        Table::new("h:4369".into(), Identity::from_seed(&[1; 32]), 1, TableLimits::default())
    }

    fn req(name: &[u8]) -> Alive2Req {
        Alive2Req {
            port: 7,
            node_type: 77,
            protocol: 0,
            high_version: 6,
            low_version: 5,
            name: name.to_vec(),
            extra: vec![],
        }
    }

    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn non_local_registration_is_refused_unless_allowed() {
        let remote: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(!registration_allowed(false, remote));
        assert!(!registration_allowed(false, "2001:db8::1".parse().unwrap()));
        assert!(registration_allowed(true, remote));
        assert!(registration_allowed(false, "127.0.0.1".parse().unwrap()));
        assert!(registration_allowed(false, "::1".parse().unwrap()));
        assert!(registration_allowed(false, "::ffff:127.0.0.1".parse().unwrap()));
        let (mut r, mut t) = (registry(3), table());
        assert_eq!(r.register(&mut t, remote, &req(b"a"), 1, 0).unwrap_err().code, refusal::NOT_LOCAL);
    }

    #[test]
    fn snow_names_go_to_the_table_and_other_epmd_names_stay_local() {
        let (mut r, mut t) = (registry(10), table());
        let g = r.register(&mut t, LOOPBACK, &req(b"app"), 5, 0).unwrap();
        assert_eq!(g.key, Registered::Node(NodeName::parse("app@h").unwrap()));
        assert_eq!(t.len(), 1);
        for odd in ["été", "a b", "x@", "a@b@c"] {
            let g = r.register(&mut t, "::1".parse().unwrap(), &req(odd.as_bytes()), 9, 0).unwrap();
            assert_eq!(g.key, Registered::Local(odd.to_owned()), "{odd}");
        }
        assert_eq!(t.len(), 1, "local names are not in the gossiped table");
        assert_eq!(r.local_names().count(), 4);
        assert_eq!(r.register(&mut t, "::1".parse().unwrap(), &req("été".as_bytes()), 9, 0).unwrap_err().code, 1);
        assert!(!r.release(&mut t, "::1".parse().unwrap(), &Registered::Local("été".into()), 9, true, 1));
        assert!(r.local_name("été".as_bytes()).is_none());
    }

    #[test]
    fn names_erlang_refuses_get_result_1_and_the_source_cap_holds() {
        let (mut r, mut t) = (registry(3), table());
        for bad in [vec![b'a'; 256], vec![b'a'; 1021], vec![0xff, 0xfe]] {
            assert_eq!(r.register(&mut t, LOOPBACK, &req(&bad), 1, 0).unwrap_err().code, refusal::TAKEN);
        }
        let mut long_extra = req(b"e");
        long_extra.extra = vec![1; 1021];
        assert_eq!(r.register(&mut t, LOOPBACK, &long_extra, 1, 0).unwrap_err().code, refusal::TAKEN);
        for n in [&b"a"[..], b"b", b"c"] {
            r.register(&mut t, LOOPBACK, &req(n), 1, 0).unwrap();
        }
        assert_eq!(r.register(&mut t, LOOPBACK, &req(b"d"), 1, 0).unwrap_err().code, refusal::LIMIT);
        assert_eq!(r.from_source(LOOPBACK), 3);
    }
}
