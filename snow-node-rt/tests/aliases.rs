//! Process aliases (README, "Aliases"; PROTOCOL.md 4.3.8): a message sent to an active alias
//! lands in its owner's mailbox, here or from another node; after `unalias`, after the one
//! message of a reply-once alias, or once the owner exited, it is dropped. A forged ALIAS_SEND
//! (a reference that is no alias) is dropped without harming the connection.

mod support;

use snow_node_rt::{AliasMode, Node, Pid, Ref, Term};
use snow_shared::dist::control::Control;
use support::*;

/// A process on `node` that makes an alias with `mode` and reports it first, then forwards what
/// it receives; `{:unalias, alias}` makes it unalias and report `{:unaliased, was_active}`.
async fn owner(node: &Node, mode: AliasMode) -> (Pid, Ref, async_channel::Receiver<Term>) {
    let (tx, rx) = async_channel::unbounded();
    let pid = node.spawn(move |mut me| async move {
        let alias = me.alias_with(mode);
        let _ = tx.send(Term::Ref(alias)).await;
        loop {
            let msg = me.receive().await;
            let report = match msg.as_tuple() {
                Some([tag, Term::Ref(alias)]) if tag.is_atom("unalias") => {
                    Term::tuple([Term::atom("unaliased"), Term::Bool(me.unalias(alias))])
                }
                _ => msg,
            };
            if tx.send(report).await.is_err() {
                return;
            }
        }
    });
    let Term::Ref(alias) = next(&rx).await else { panic!("no alias reported") };
    (pid, alias, rx)
}

fn unalias(alias: &Ref) -> Term {
    Term::tuple([Term::atom("unalias"), Term::Ref(alias.clone())])
}

#[test]
fn a_local_alias_delivers_until_unaliased() {
    run(async {
        let node = Node::local();
        let (pid, alias, rx) = owner(&node, AliasMode::Explicit).await;
        assert_eq!(alias.node(), node.name());
        // From outside any process, and from a process.
        node.send_alias(&alias, Term::atom("one"));
        assert_eq!(next(&rx).await, Term::atom("one"));
        let sent = alias.clone();
        in_process(&node, move |me| async move { me.send_alias(&sent, Term::atom("two")) }).await;
        assert_eq!(next(&rx).await, Term::atom("two"));
        // Only the owner can unalias; then messages are dropped.
        let stranger = alias.clone();
        in_process(&node, move |me| async move { assert!(!me.unalias(&stranger)) }).await;
        node.send(&pid, unalias(&alias));
        assert_eq!(next(&rx).await, Term::tuple([Term::atom("unaliased"), Term::Bool(true)]));
        node.send_alias(&alias, Term::atom("dropped"));
        node.send(&pid, unalias(&alias));
        assert_eq!(next(&rx).await, Term::tuple([Term::atom("unaliased"), Term::Bool(false)]));
        quiet(&rx, "a message to an inactive alias").await;
        // A reference that was never an alias names nothing.
        node.send_alias(&node.make_ref(), Term::atom("nobody"));
        quiet(&rx, "a message to a plain reference").await;
        assert_eq!(node.alias_count(), 0);
    });
}

#[test]
fn a_reply_once_alias_takes_one_message_and_aliases_go_with_their_owner() {
    run(async {
        let node = Node::local();
        let (_, once, rx) = owner(&node, AliasMode::ReplyOnce).await;
        node.send_alias(&once, Term::atom("reply"));
        node.send_alias(&once, Term::atom("second"));
        assert_eq!(next(&rx).await, Term::atom("reply"));
        quiet(&rx, "a second message to a reply-once alias").await;
        let (pid, alias, rx) = owner(&node, AliasMode::Explicit).await;
        assert_eq!(node.alias_count(), 1);
        node.exit(&pid, Term::atom("kill"));
        eventually("the owner's alias is gone", || node.alias_count() == 0).await;
        node.send_alias(&alias, Term::atom("late"));
        quiet(&rx, "a message to the alias of an exited process").await;
    });
}

#[test]
fn a_remote_alias_delivers_across_nodes_until_unaliased() {
    run(async {
        let epmd = epmd().await;
        let nodes = mesh(&epmd, &["a", "b", "c"]).await;
        let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
        let (pid, alias, rx) = owner(a, AliasMode::Explicit).await;
        b.send_alias(&alias, Term::atom("from-b"));
        assert_eq!(next(&rx).await, Term::atom("from-b"));
        // From a process on c: ordered with its messages to the owner's pid.
        let (to_alias, to_pid) = (alias.clone(), pid.clone());
        in_process(c, move |me| async move {
            for i in 0..5 {
                if i % 2 == 0 {
                    me.send_alias(&to_alias, Term::Int(i));
                } else {
                    me.send(&to_pid, Term::Int(i));
                }
            }
        })
        .await;
        for i in 0..5 {
            assert_eq!(next(&rx).await, Term::Int(i));
        }
        a.send(&pid, unalias(&alias));
        assert_eq!(next(&rx).await, Term::tuple([Term::atom("unaliased"), Term::Bool(true)]));
        b.send_alias(&alias, Term::atom("dropped"));
        quiet(&rx, "a remote message to an inactive alias").await;
        // A reply-once alias, used from another node.
        let (_, once, rx) = owner(a, AliasMode::ReplyOnce).await;
        c.send_alias(&once, Term::atom("reply"));
        c.send_alias(&once, Term::atom("second"));
        assert_eq!(next(&rx).await, Term::atom("reply"));
        quiet(&rx, "a second remote message to a reply-once alias").await;
        shutdown_all(&nodes).await;
    });
}

#[test]
fn a_forged_alias_send_is_dropped_and_the_connection_stays() {
    run(async {
        let epmd = epmd().await;
        let a = node(&epmd, "a").await;
        let (pid, alias, rx) = owner(&a, AliasMode::Explicit).await;
        let mut x = raw::Conversation::dial(&a, "x", None).await;
        eventually("x connected", || a.nodes() == vec![name("x")]).await;
        let from = Pid::new(name("x"), 1, 7);
        let forged = |alias: Ref| Control::AliasSend { from: from.clone(), alias, msg: Term::atom("forged") };
        // A reference of a that is no alias, a guess next to the real one, one of another node.
        x.send(&forged(a.make_ref())).await;
        x.send(&forged(Ref::new(a.name().clone(), alias.id().wrapping_add(1), alias.creation()))).await;
        x.send(&forged(Ref::new(name("c"), alias.id(), alias.creation()))).await;
        x.send(&forged(Ref::new(a.name().clone(), alias.id(), alias.creation().wrapping_add(1)))).await;
        // The real alias still works over the same connection, after them.
        x.send(&Control::AliasSend { from: from.clone(), alias: alias.clone(), msg: Term::atom("real") }).await;
        assert_eq!(next(&rx).await, Term::atom("real"));
        quiet(&rx, "a forged alias message").await;
        assert_eq!(a.nodes(), vec![name("x")], "dropping is not closing");
        // A message to the pid behind an alias is a plain SEND, unaffected.
        x.send(&Control::Send { from, to: pid, msg: Term::atom("direct") }).await;
        assert_eq!(next(&rx).await, Term::atom("direct"));
        a.shutdown().await;
    });
}
