//! Exit reasons and the atoms that system messages are made of (README, "Guarantees (BEAM's)").
//!
//! A reason is any [`Term`]; these helpers build the ones the runtime itself uses. They are cached,
//! so building `:normal` for every exiting process costs a reference-count increment, not an
//! intern-table lookup.

use std::sync::OnceLock;

use snow_shared::{Atom, Term};

macro_rules! cached_atoms {
    ($($(#[$doc:meta])* $fn:ident => $text:literal;)*) => {$(
        $(#[$doc])*
        pub fn $fn() -> Term {
            static ATOM: OnceLock<Atom> = OnceLock::new();
            Term::Atom(ATOM.get_or_init(|| Atom::new($text)).clone())
        }
    )*};
}

cached_atoms! {
    /// `:normal`: the process finished its work. Does not kill linked processes that do not trap
    /// exits.
    normal => "normal";
    /// `:kill`: sent with [`Process::send_exit`](crate::Process::send_exit) it kills the target even
    /// if it traps exits; the target then exits with `:killed`.
    kill => "kill";
    /// `:killed`: the exit reason of a process that received an untrappable `:kill`.
    killed => "killed";
    /// `:noproc`: the process does not exist (dead, never existed, or from an older creation).
    noproc => "noproc";
    /// `:noconnection`: the node of a linked or monitored process became unreachable.
    noconnection => "noconnection";
    /// `:shutdown`: a supervisor asks a child to stop, or stops itself.
    shutdown => "shutdown";
    /// The tag of trapped exit messages: `{:EXIT, from, reason}`.
    exit_tag => "EXIT";
    /// The tag of monitor messages: `{:DOWN, ref, pid, reason}`.
    down_tag => "DOWN";
    /// The tag of panic reasons: `{:panic, "message"}`.
    panic_tag => "panic";
}

/// The reason of a process whose code panicked: `{:panic, "message"}`.
pub fn panic(message: impl Into<String>) -> Term {
    Term::Tuple(vec![panic_tag(), Term::String(message.into())])
}

/// `{:EXIT, from, reason}`, the message a process trapping exits receives for an exit signal.
pub fn exit_message(from: &snow_shared::Pid, reason: Term) -> Term {
    Term::Tuple(vec![exit_tag(), Term::Pid(from.clone()), reason])
}

/// `{:DOWN, ref, item, reason}`, the message a monitor delivers; `item` is the monitored pid, or
/// `{name, node}` for a monitor set up by registered name.
pub fn down_message(reference: &snow_shared::Ref, item: Term, reason: Term) -> Term {
    Term::Tuple(vec![down_tag(), Term::Ref(reference.clone()), item, reason])
}

/// `{:send_queue_overflow, node}`: the exit reason of a process that kept sending to a node whose
/// connection queue was at its hard ceiling without ever awaiting (README, "Guarantees").
pub fn send_queue_overflow(node: &snow_shared::NodeName) -> Term {
    Term::tuple([Term::atom("send_queue_overflow"), Term::Atom(node.as_atom().clone())])
}

/// `{:mailbox_overflow, limit}`: the exit reason of a process killed because a message arrived
/// while its mailbox held `limit` messages, its mailbox limit (README, "Limits"); like BEAM's
/// `max_heap_size` kill, it cannot be trapped. (A limit past `i64::MAX`, which no mailbox can
/// reach, would be shown as `i64::MAX`.)
pub fn mailbox_overflow(limit: usize) -> Term {
    Term::tuple([Term::atom("mailbox_overflow"), Term::Int(i64::try_from(limit).unwrap_or(i64::MAX))])
}

/// `:abandoned`: the exit reason a remote child spawned with a link gets when the process that
/// asked for it stopped waiting for the reply (it timed out, exited, or dropped the request's
/// future), as Erlang's `spawn_request_abandon/1`.
pub fn abandoned() -> Term {
    Term::atom("abandoned")
}

/// `{:not_spawnable, "function"}`: why a node refuses to run `function`, which is not on its
/// allow-list: a remote spawn's or a call's refusal.
pub fn not_spawnable(function: &str) -> Term {
    Term::tuple([Term::atom("not_spawnable"), Term::String(function.to_owned())])
}

/// `{ref, :return, value}`: the exit reason of a process that ran a remote call and returned
/// `value`; `ref` is the call's reference, so no other exit can pass for a result (PROTOCOL.md
/// 4.3.8).
pub fn call_return(reference: &snow_shared::Ref, value: Term) -> Term {
    Term::Tuple(vec![Term::Ref(reference.clone()), Term::atom("return"), value])
}

/// The value of a [`call_return`] reason for the call `reference`; `Err(reason)` for any other
/// reason (the function did not return).
pub fn returned_value(reference: &snow_shared::Ref, reason: Term) -> Result<Term, Term> {
    match reason {
        Term::Tuple(items) => match <[Term; 3]>::try_from(items) {
            Ok([Term::Ref(r), tag, value]) if &r == reference && tag.is_atom("return") => Ok(value),
            Ok(items) => Err(Term::tuple(items)),
            Err(items) => Err(Term::Tuple(items)),
        },
        other => Err(other),
    }
}

/// Whether `reason` is one a `transient` child may end with without being restarted: `:normal`,
/// `:shutdown` or `{:shutdown, _}` (as in OTP).
pub fn is_clean_shutdown(reason: &Term) -> bool {
    reason.is_atom("normal")
        || reason.is_atom("shutdown")
        || matches!(reason.as_tuple(), Some([tag, _]) if tag.is_atom("shutdown"))
}

/// What a process body may return: its exit reason.
///
/// `()` means `:normal`; a [`Term`] is the reason itself; `Result<(), Term>` is `:normal` on `Ok`
/// and the error term otherwise, so a body can use `?` on operations whose error is a reason.
pub trait IntoExitReason {
    /// The exit reason this value stands for.
    fn into_exit_reason(self) -> Term;
}

impl IntoExitReason for () {
    fn into_exit_reason(self) -> Term {
        normal()
    }
}

impl IntoExitReason for Term {
    fn into_exit_reason(self) -> Term {
        self
    }
}

impl IntoExitReason for Result<(), Term> {
    fn into_exit_reason(self) -> Term {
        match self {
            Ok(()) => normal(),
            Err(reason) => reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(panic("boom").to_string(), "{:panic, \"boom\"}");
        assert!(is_clean_shutdown(&normal()));
        assert!(is_clean_shutdown(&Term::tuple([shutdown(), Term::Int(1)])));
        assert!(!is_clean_shutdown(&killed()));
        assert_eq!(Err::<(), Term>(kill()).into_exit_reason(), kill());
        assert_eq!(().into_exit_reason(), normal());
    }

    #[test]
    fn a_call_result_is_recognised_only_with_its_own_reference() {
        let node = snow_shared::NodeName::parse("a@h").unwrap();
        let (mine, other) = (snow_shared::Ref::new(node.clone(), 1, 1), snow_shared::Ref::new(node, 2, 1));
        assert_eq!(returned_value(&mine, call_return(&mine, Term::Int(7))), Ok(Term::Int(7)));
        assert_eq!(returned_value(&other, call_return(&mine, Term::Int(7))), Err(call_return(&mine, Term::Int(7))));
        assert_eq!(returned_value(&mine, killed()), Err(killed()));
    }
}
