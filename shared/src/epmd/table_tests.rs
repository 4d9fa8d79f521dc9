//! Unit tests of `table.rs`.
use super::*;

use crate::epmd::identity::Identity;
use crate::epmd::sim::reg;

fn limits() -> TableLimits {
    TableLimits { max_entries: 4, grace_ms: 1000, tombstone_ttl_ms: 5000, ..TableLimits::default() }
}

fn identity(id: &str) -> Identity {
    let mut seed = [0u8; 32];
    for (i, b) in id.bytes().enumerate() {
        seed[i % 32] ^= b;
    }
    Identity::from_seed(&seed)
}

/// A table of daemon `id` (its nodes are named `x@<host of id>`).
fn table(id: &str) -> Table {
    Table::new(id.into(), identity(id), 1, limits())
}

/// `t` pins the key of daemon `other`, as after an exchange it started with it.
fn pin(t: &mut Table, other: &Table) {
    assert_eq!(t.pin(other.me(), *other.public_key()), PinOutcome::Pinned);
}

#[test]
fn register_refuses_live_duplicates_and_gives_new_creations() {
    let mut t = table("h:1");
    let e = t.register(reg("a@h"), 7, 0).unwrap();
    assert_eq!(e.creation, 7);
    assert!(matches!(t.register(reg("a@h"), 9, 1), Err(RegisterError::AlreadyRegistered(_))));
    assert!(!t.unregister(&e.name, 8, 2), "wrong creation must not unregister");
    assert!(t.unregister(&e.name, 7, 2));
    assert_eq!(t.get(&e.name).unwrap().state, State::Down);
    let again = t.register(reg("a@h"), 9, 3).unwrap();
    assert_eq!(again.creation, 8);
    assert!(again.version > e.version);
}

#[test]
fn get_by_str_finds_canonical_names_only() {
    let mut t = table("h:1");
    let e = t.register(reg("a@Host.Example"), 7, 0).unwrap();
    assert_eq!(e.name.as_str(), "a@host.example");
    assert_eq!(t.get_by_str("a@host.example"), Some(&e));
    assert_eq!(t.get_by_str("a@Host.Example"), None, "the caller canonicalises other spellings");
    assert_eq!(t.get_by_str("b@host.example"), None);
    t.register(reg("b@host.example"), 8, 0).unwrap();
    let names: Vec<&str> = t.entries().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["a@host.example", "b@host.example"]);
}

#[test]
fn creation_never_wraps_to_zero() {
    assert_eq!(next_creation(u32::MAX), 1);
}

#[test]
fn table_full_is_refused() {
    let mut t = table("h:1");
    for i in 0..4 {
        t.register(reg(&format!("n{i}@h")), 1, 0).unwrap();
    }
    assert_eq!(t.register(reg("n9@h"), 1, 0), Err(RegisterError::TableFull(4)));
}

#[test]
fn restart_makes_own_entries_unconfirmed_then_down_then_gone() {
    let mut t = table("h:1");
    t.register(reg("a@h"), 5, 0).unwrap();
    let entries: Vec<Entry> = t.entries().cloned().collect();
    let mut r = Table::restore(
        "h:1".into(),
        identity("h:1"),
        Persisted { incarnation: 1, owners: t.owner_maxima(), pins: vec![], entries },
        limits(),
        100,
    );
    assert_eq!(r.incarnation(), 2);
    let name = NodeName::parse("a@h").unwrap();
    assert_eq!(r.get(&name).unwrap().state, State::Unconfirmed);
    assert_eq!(r.get(&name).unwrap().version.incarnation, 2);
    r.tick(1099);
    assert_eq!(r.get(&name).unwrap().state, State::Unconfirmed);
    r.tick(1100);
    assert_eq!(r.get(&name).unwrap().state, State::Down);
    r.tick(6100);
    assert!(r.get(&name).is_none());
}

#[test]
fn re_registration_confirms_an_unconfirmed_entry() {
    let mut t = table("h:1");
    t.register(reg("a@h"), 5, 0).unwrap();
    let entries: Vec<Entry> = t.entries().cloned().collect();
    let mut r = Table::restore(
        "h:1".into(),
        identity("h:1"),
        Persisted { incarnation: 1, entries, ..Persisted::default() },
        limits(),
        100,
    );
    let e = r.register(reg("a@h"), 1, 200).unwrap();
    assert_eq!((e.state, e.creation), (State::Up, 6));
}

fn asked(c: u32) -> Option<NonZeroU32> {
    NonZeroU32::new(c)
}

/// A table at incarnation 2 of "h:1" holding `a@h` (creation 5) unconfirmed, as after a
/// daemon restart.
fn restarted_with_a_at_5() -> Table {
    let mut t = table("h:1");
    t.register(reg("a@h"), 5, 0).unwrap();
    let entries: Vec<Entry> = t.entries().cloned().collect();
    Table::restore(
        "h:1".into(),
        identity("h:1"),
        Persisted { incarnation: 1, entries, ..Persisted::default() },
        limits(),
        100,
    )
}

#[test]
fn requested_creation_is_honoured_for_an_unknown_name() {
    let mut t = table("h:1");
    let e = t.register_requesting(reg("a@h"), asked(42), 7, 0).unwrap();
    assert_eq!((e.state, e.creation), (State::Up, 42), "not the random fresh creation 7");
}

#[test]
fn requested_creation_is_honoured_for_our_unconfirmed_entry_with_that_creation() {
    let mut r = restarted_with_a_at_5();
    let before = r.get(&NodeName::parse("a@h").unwrap()).unwrap().version;
    let e = r.register_requesting(reg("a@h"), asked(5), 99, 200).unwrap();
    assert_eq!((e.state, e.creation), (State::Up, 5));
    assert!(e.version > before, "the change is versioned so gossip carries it");
}

#[test]
fn requested_creation_is_honoured_for_our_down_entry_with_that_creation() {
    let mut t = table("h:1");
    let e = t.register(reg("a@h"), 5, 0).unwrap();
    assert!(t.unregister(&e.name, 5, 1));
    let again = t.register_requesting(reg("a@h"), asked(5), 99, 2).unwrap();
    assert_eq!((again.state, again.creation), (State::Up, 5));
}

#[test]
fn requested_creation_other_than_the_entrys_is_ignored() {
    let mut r = restarted_with_a_at_5();
    let e = r.register_requesting(reg("a@h"), asked(9), 99, 200).unwrap();
    assert_eq!((e.state, e.creation), (State::Up, 6), "assigned as without a request");
    let mut t = table("h:1");
    t.register(reg("b@h"), 5, 0).unwrap();
    t.unregister(&NodeName::parse("b@h").unwrap(), 5, 1);
    assert_eq!(t.register_requesting(reg("b@h"), asked(4), 99, 2).unwrap().creation, 6);
}

#[test]
fn requested_creation_is_ignored_for_another_daemons_entry() {
    let mut a = table("h:1");
    let mut b = table("h:2");
    pin(&mut b, &a);
    let e = a.register(reg("x@h"), 5, 0).unwrap();
    a.unregister(&e.name, 5, 1);
    assert_eq!(b.apply_remote(a.get(&e.name).unwrap().clone(), 1), Applied::Stored);
    // x@h left a's table down; registering it at b with a's old creation gets a new one.
    let got = b.register_requesting(reg("x@h"), asked(5), 99, 2).unwrap();
    assert_eq!((got.creation, got.owner.as_str()), (6, "h:2"));
}

#[test]
fn requested_creation_never_lets_a_live_duplicate_in() {
    let mut t = table("h:1");
    t.register(reg("a@h"), 5, 0).unwrap();
    assert!(matches!(t.register_requesting(reg("a@h"), asked(5), 99, 1), Err(RegisterError::AlreadyRegistered(_))));
    // Live at another daemon (up or unconfirmed there): refused as well.
    let mut other = table("h:2");
    pin(&mut t, &other);
    let x = other.register(reg("x@h"), 3, 0).unwrap();
    assert_eq!(t.apply_remote(x.clone(), 0), Applied::Stored);
    assert!(matches!(t.register_requesting(reg("x@h"), asked(3), 99, 1), Err(RegisterError::AlreadyRegistered(_))));
    let entries: Vec<Entry> = other.entries().cloned().collect();
    let restarted = Table::restore(
        "h:2".into(),
        identity("h:2"),
        Persisted { incarnation: 1, entries, ..Persisted::default() },
        limits(),
        5,
    );
    let unconfirmed = restarted.get(&x.name).unwrap().clone();
    assert_eq!(t.apply_remote(unconfirmed, 5), Applied::Stored);
    assert!(matches!(t.register_requesting(reg("x@h"), asked(3), 99, 6), Err(RegisterError::AlreadyRegistered(_))));
}

#[test]
fn requested_creation_does_not_bypass_the_table_limit() {
    let mut t = table("h:1");
    for i in 0..4 {
        t.register(reg(&format!("n{i}@h")), 1, 0).unwrap();
    }
    assert_eq!(t.register_requesting(reg("n9@h"), asked(3), 1, 0), Err(RegisterError::TableFull(4)));
}

#[test]
fn remote_entries_follow_versions_and_ownership() {
    let mut a = table("h:1");
    let mut b = table("h:2");
    pin(&mut b, &a);
    let e = a.register(reg("x@h"), 3, 0).unwrap();
    assert_eq!(b.apply_remote(e.clone(), 0), Applied::Stored);
    assert_eq!(b.apply_remote(e.clone(), 0), Applied::Stale);
    // A forged entry in b's own name is refused; a claim on a live entry of another owner too.
    let mut forged = e.clone();
    forged.owner = "h:2".into();
    assert!(matches!(b.apply_remote(forged, 0), Applied::Rejected(_)));
    let mut c = table("h:3");
    pin(&mut b, &c);
    let takeover = c.register(reg("x@h"), 9, 0).unwrap();
    assert!(matches!(b.apply_remote(takeover, 0), Applied::Rejected(_)));
    assert_eq!(b.get(&e.name).unwrap().owner, "h:1");
    // Older versions lose.
    a.unregister(&e.name, 3, 1);
    let down = a.get(&e.name).unwrap().clone();
    assert_eq!(b.apply_remote(down.clone(), 1), Applied::Stored);
    assert_eq!(b.apply_remote(e, 1), Applied::Stale);
    assert_eq!(b.get(&down.name).unwrap().state, State::Down);
}

#[test]
fn lost_data_is_adopted_from_peers_as_unconfirmed() {
    let mut a = table("h:1");
    let e = a.register(reg("x@h"), 3, 0).unwrap();
    let mut fresh = Table::new("h:1".into(), identity("h:1"), 2, limits());
    assert_eq!(fresh.apply_remote(e.clone(), 10), Applied::Stored);
    // Not with another key (the data directory's key was lost too).
    let mut other_key = Table::new("h:1".into(), identity("other"), 2, limits());
    assert!(matches!(other_key.apply_remote(e.clone(), 10), Applied::Rejected(_)));
    let got = fresh.get(&e.name).unwrap();
    assert_eq!((got.state, got.version.incarnation), (State::Unconfirmed, 2));
}

#[test]
fn live_set_reconciliation_drops_entries_the_peer_saw_end() {
    let mut b = table("h:2");
    let mut a = table("h:1");
    pin(&mut b, &a);
    let x = a.register(reg("x@h"), 3, 0).unwrap();
    b.apply_remote(x.clone(), 0);
    let y = a.register(reg("y@h"), 3, 0).unwrap();
    // c saw x end and collected it; c's max equals b's once b has y.
    b.apply_remote(y.clone(), 0);
    let their = vec![(y.name.clone(), y.version)];
    assert_eq!(b.apply_live_set("h:1", y.version, &their), 1);
    assert!(b.get(&x.name).is_none());
    assert!(b.get(&y.name).is_some());
}

#[test]
fn entries_need_a_pinned_owner_a_valid_signature_and_the_owners_host() {
    let mut a = table("h:1");
    let mut b = table("k:1");
    let e = a.register(reg("x@h"), 3, 0).unwrap();
    assert!(matches!(b.apply_remote(e.clone(), 0), Applied::Rejected(why) if why.contains("not pinned")));
    assert_eq!(b.owner_max("h:1"), None, "a refused entry does not move the owner's maximum");
    pin(&mut b, &a);
    // Signed by another key (a relay forging the owner): refused.
    let mut forged = e.clone();
    forged.port = 6666;
    assert!(matches!(b.apply_remote(forged.clone(), 0), Applied::Rejected(why) if why.contains("signature")));
    forged.signature = identity("evil").sign(&forged.signed_payload());
    assert!(matches!(b.apply_remote(forged, 0), Applied::Rejected(why) if why.contains("signature")));
    // Owner h:1 signing a node of another host: refused whatever the signature.
    let mut elsewhere = a.clone();
    let other_host = elsewhere.register(reg("y@victim"), 3, 0).unwrap();
    assert!(matches!(b.apply_remote(other_host, 0), Applied::Rejected(why) if why.contains("host")));
    assert_eq!(b.apply_remote(e, 0), Applied::Stored);
    assert_eq!(b.pin("h:1", *identity("evil").public_key()), PinOutcome::Mismatch);
}

#[test]
fn versions_cannot_jump_past_the_bound() {
    let mut a = table("h:1");
    let mut b = table("k:1");
    pin(&mut b, &a);
    let e = a.register(reg("x@h"), 3, 0).unwrap();
    assert_eq!(b.apply_remote(e.clone(), 0), Applied::Stored);
    for v in [Version { incarnation: u64::MAX, counter: 0 }, Version { incarnation: 1, counter: u64::MAX }] {
        let mut high = e.clone();
        high.version = v;
        high.signature = identity("h:1").sign(&high.signed_payload());
        assert!(matches!(b.apply_remote(high, 0), Applied::Rejected(why) if why.contains("bound")), "{v:?}");
    }
    assert_eq!(b.owner_max("h:1"), Some(e.version));
    a.unregister(&e.name, 3, 1);
    assert_eq!(b.apply_remote(a.get(&e.name).unwrap().clone(), 1), Applied::Stored, "real updates still apply");
}

#[test]
fn remote_entries_have_their_own_budget_and_a_quota_per_daemon() {
    let small =
        TableLimits { max_entries: 2, max_remote_entries: 3, max_entries_per_daemon: 2, max_daemons: 4, ..limits() };
    let mut me = Table::new("m:1".into(), identity("m:1"), 1, small);
    let mut flooders: Vec<Table> =
        ["f:1", "g:1"].iter().map(|id| Table::new(id.to_string(), identity(id), 1, small)).collect();
    for f in &flooders {
        pin(&mut me, f);
    }
    let mut stored = 0;
    for (i, f) in flooders.iter_mut().enumerate() {
        let host = daemon_host(f.me()).to_owned();
        for n in 0..2 {
            let e = f.register(reg(&format!("n{n}@{host}")), 1, 0).unwrap();
            stored += usize::from(me.apply_remote(e, 0) == Applied::Stored);
        }
        let mut more = f.clone();
        more.limits.max_entries = 10;
        let e = more.register(reg(&format!("extra{i}@{host}")), 1, 0).unwrap();
        let limit = if i == 0 { "quota" } else { "budget" };
        assert!(matches!(me.apply_remote(e, 0), Applied::Rejected(why) if why.contains(limit)), "{limit}");
    }
    assert_eq!((stored, me.remote_len()), (3, 3), "the remote budget holds");
    // Local registrations are unaffected by remote entries.
    me.register(reg("a@m"), 1, 0).unwrap();
    me.register(reg("b@m"), 1, 0).unwrap();
    assert_eq!(me.register(reg("c@m"), 1, 0), Err(RegisterError::TableFull(2)));
    // The number of daemons is capped, and daemons never pinned can be forgotten.
    assert!(me.note_owner("x:1"));
    assert!(!me.note_owner("y:1"), "4 daemons known: m, f, g, x");
    assert!(!me.note_owner("not an id"));
    assert!(me.forget_unpinned("x:1"));
    assert!(!me.forget_unpinned("f:1"), "pinned daemons stay");
}

#[test]
fn own_nodes_of_another_host_are_served_but_not_gossiped() {
    let mut t = table("h:1");
    let before = t.owner_max("h:1").unwrap();
    let e = t.register(reg("x@elsewhere"), 3, 0).unwrap();
    assert_eq!(t.owner_max("h:1").unwrap(), before, "no version of its own");
    assert_eq!(t.entries_after("h:1", Version::default()).count(), 0);
    assert_eq!(t.get(&e.name).map(|e| e.port), Some(9000));
    t.register(reg("y@h"), 3, 0).unwrap();
    assert_eq!(t.entries_after("h:1", Version::default()).count(), 1);
    assert!(t.unregister(&e.name, 3, 1));
    assert_eq!(t.entries_after("h:1", Version::default()).count(), 1);
}

#[test]
fn daemon_hosts() {
    assert_eq!(daemon_host("db1.example.com:4369"), "db1.example.com");
    assert_eq!(daemon_host("[::1]:4369"), "::1");
    assert!(speaks_for("[::1]:4369", "0:0::1"));
    assert!(speaks_for("DB1.example.com:4369", "db1.example.com"));
    assert!(!speaks_for("10.0.0.1:4369", "10.0.0.2"));
    assert!(valid_daemon_id("[::1]:1") && valid_daemon_id("h:4369"));
    assert!(!valid_daemon_id("h") && !valid_daemon_id(":1") && !valid_daemon_id("h:x"));
}
