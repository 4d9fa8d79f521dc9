//! The [`RemoteRouter`] the distribution layer installs on its [`Node`](crate::Node): every
//! operation on a pid of another node becomes a control message queued for that node, on the
//! sending process's lane (per sender-receiver FIFO), connecting on demand.

use std::sync::Arc;

use snow_shared::dist::control::{Control, MonitorTarget};
use snow_shared::{Atom, NodeName, Pid, Ref, Term};

use super::core::{sender_lane, Dist};
use crate::seam::RemoteRouter;

/// The router: a handle on the driver state.
pub(crate) struct Router(pub Arc<Dist>);

impl Router {
    fn runtime_pid(&self) -> Pid {
        Pid::new(self.0.name.clone(), 0, self.0.creation)
    }

    fn queue(&self, node: &NodeName, msg: Control) {
        self.0.route(node, &msg);
    }
}

impl RemoteRouter for Router {
    fn send(&self, from: Option<&Pid>, to: &Pid, msg: Term) {
        // Encoded from the borrowed parts: no `Control`, no pid clones on the hot path.
        let runtime;
        let from = match from {
            Some(pid) => pid,
            None => {
                runtime = self.runtime_pid();
                &runtime
            }
        };
        self.0.route_frame(to.node(), sender_lane(from), Control::send_to_bytes(from, to, &msg));
    }

    fn send_named(&self, from: Option<&Pid>, node: &NodeName, name: &Atom, msg: Term) {
        let from = from.cloned().unwrap_or_else(|| self.runtime_pid());
        self.queue(node, Control::RegSend { from, name: name.clone(), msg });
    }

    fn link(&self, from: &Pid, to: &Pid) {
        self.queue(to.node(), Control::Link { from: from.clone(), to: to.clone() });
    }

    fn unlink(&self, from: &Pid, to: &Pid) {
        self.queue(to.node(), Control::Unlink { from: from.clone(), to: to.clone() });
    }

    fn exit(&self, from: &Pid, to: &Pid, reason: Term, linked: bool) {
        let (from, to) = (from.clone(), to.clone());
        let node = to.node().clone();
        let msg = if linked { Control::Exit { from, to, reason } } else { Control::Exit2 { from, to, reason } };
        self.queue(&node, msg);
    }

    fn monitor(&self, watcher: &Pid, target: &Pid, reference: &Ref) {
        let msg = Control::Monitor {
            from: watcher.clone(),
            target: MonitorTarget::Pid(target.clone()),
            reference: reference.clone(),
        };
        self.queue(target.node(), msg);
    }

    fn demonitor(&self, watcher: &Pid, target: &Pid, reference: &Ref) {
        let msg = Control::Demonitor {
            from: watcher.clone(),
            target: MonitorTarget::Pid(target.clone()),
            reference: reference.clone(),
        };
        self.queue(target.node(), msg);
    }

    fn down(&self, target: &Pid, watcher: &Pid, reference: &Ref, reason: Term) {
        let msg = Control::MonitorExit {
            from: MonitorTarget::Pid(target.clone()),
            to: watcher.clone(),
            reference: reference.clone(),
            reason,
        };
        self.queue(watcher.node(), msg);
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
