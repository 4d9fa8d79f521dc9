//! The [`RemoteRouter`] the distribution layer installs on its [`Node`](crate::Node): every
//! operation on a pid of another node becomes a control message queued for that node, on the
//! sending process's lane (per sender-receiver FIFO), connecting on demand.

use std::sync::Arc;

use snow_shared::dist::control::{Control, MonitorTarget};
use snow_shared::{Atom, NodeName, Pid, Ref, Term};

use super::core::{sender_lane, Dist, Origin};
use crate::seam::{Backpressure, Monitored, RemoteRouter};

/// The router: a handle on the driver state.
pub(crate) struct Router(pub Arc<Dist>);

impl Router {
    fn runtime_pid(&self) -> Pid {
        Pid::new(self.0.name.clone(), 0, self.0.creation)
    }

    /// Queues a signal a process sent.
    fn signal(&self, node: &NodeName, msg: Control) -> Backpressure {
        self.0.route(node, &msg, Origin::Signal { by_process: true })
    }
}

/// How a monitor's target travels: the node is the connection's, only the pid or name goes.
fn wire_target(target: &Monitored) -> MonitorTarget {
    match target {
        Monitored::Pid(pid) => MonitorTarget::Pid(pid.clone()),
        Monitored::Name { name, .. } => MonitorTarget::Name(name.clone()),
    }
}

impl RemoteRouter for Router {
    fn send(&self, from: Option<&Pid>, to: &Pid, msg: Term) -> Backpressure {
        // Encoded from the borrowed parts: no `Control`, no pid clones on the hot path.
        let runtime;
        let (from, origin) = match from {
            Some(pid) => (pid, Origin::Process),
            None => {
                runtime = self.runtime_pid();
                (&runtime, Origin::Runtime)
            }
        };
        self.0.route_frame(to.node(), sender_lane(from), Control::send_to_bytes(from, to, &msg), origin)
    }

    fn send_named(&self, from: Option<&Pid>, node: &NodeName, name: &Atom, msg: Term) -> Backpressure {
        let origin = if from.is_some() { Origin::Process } else { Origin::Runtime };
        let from = from.cloned().unwrap_or_else(|| self.runtime_pid());
        self.0.route(node, &Control::RegSend { from, name: name.clone(), msg }, origin)
    }

    fn link(&self, from: &Pid, to: &Pid) -> Backpressure {
        self.signal(to.node(), Control::Link { from: from.clone(), to: to.clone() })
    }

    fn unlink(&self, from: &Pid, to: &Pid) -> Backpressure {
        self.signal(to.node(), Control::Unlink { from: from.clone(), to: to.clone() })
    }

    fn exit(&self, from: &Pid, to: &Pid, reason: Term, linked: bool) -> Backpressure {
        let (from, to) = (from.clone(), to.clone());
        let node = to.node().clone();
        let msg = if linked { Control::Exit { from, to, reason } } else { Control::Exit2 { from, to, reason } };
        self.signal(&node, msg)
    }

    fn monitor(&self, watcher: &Pid, target: &Monitored, reference: &Ref) -> Backpressure {
        let msg = Control::Monitor { from: watcher.clone(), target: wire_target(target), reference: reference.clone() };
        self.signal(target.node(), msg)
    }

    fn demonitor(&self, watcher: &Pid, target: &Monitored, reference: &Ref) -> Backpressure {
        let msg =
            Control::Demonitor { from: watcher.clone(), target: wire_target(target), reference: reference.clone() };
        self.signal(target.node(), msg)
    }

    fn down(&self, target: &Pid, watcher: &Pid, reference: &Ref, reason: Term) {
        let msg = Control::MonitorExit {
            from: MonitorTarget::Pid(target.clone()),
            to: watcher.clone(),
            reference: reference.clone(),
            reason,
        };
        let _ = self.0.route(watcher.node(), &msg, Origin::Signal { by_process: false });
    }

    fn process_exited(&self, pid: &Pid) {
        self.0.process_exited(pid);
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
