//! The table of remote calls waiting for their result (`calls.rs` fills and drains it; the
//! driver's state holds it and fails its calls when a node goes down).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_channel::Sender;
use snow_shared::{NodeName, Pid, Ref, Term};

/// How a call ended, as the driver learnt it.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The callee's process ended with this reason (a result, or an exit).
    Down(Term),
    /// The callee's node refused to spawn the function.
    Refused(Term),
    /// The connection went down before the result came.
    NoConnection,
}

/// A call waiting for its result.
pub(crate) struct CallWait {
    /// The node asked: a reply from any other is ignored.
    pub node: NodeName,
    /// The process that called (or the runtime pid, for a call from outside any process).
    pub requester: Pid,
    /// The callee's process, once its SPAWN_REPLY came: the only pid whose `:DOWN` is the result.
    pub child: Option<Pid>,
    /// Where the outcome goes; `None` once the caller stopped waiting (abandoned).
    pub reply: Option<Sender<Outcome>>,
}

/// The calls of one node that wait for a result, by reference.
pub(crate) type CallTable = HashMap<Ref, CallWait>;

/// `node` is unreachable: every call waiting on it fails with `NoConnection`.
pub(crate) fn node_gone(calls: &Mutex<CallTable>, node: &NodeName) {
    let gone: Vec<CallWait> = {
        let mut calls = calls.lock().unwrap_or_else(PoisonError::into_inner);
        let refs: Vec<Ref> = calls.iter().filter(|(_, w)| &w.node == node).map(|(r, _)| r.clone()).collect();
        refs.into_iter().filter_map(|r| calls.remove(&r)).collect()
    };
    for wait in gone {
        if let Some(tx) = wait.reply {
            let _ = tx.try_send(Outcome::NoConnection);
        }
    }
}
