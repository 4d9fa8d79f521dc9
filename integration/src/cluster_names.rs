//! [`TestNode`] commands for the global registry and process groups (the test node's
//! `cluster.rs` block): register and look up global names, call a process by its global name,
//! join groups and read their members, cut a connection. Names and groups are atoms; pids are
//! text as the runtime prints them.

use std::time::Duration;

use crate::cluster::TestNode;

/// Bound on one command's answer.
const ANSWER: Duration = Duration::from_secs(10);

impl TestNode {
    /// Registers the global name `name` for holder `label`; its pid, or the refusal.
    pub fn global_register(&mut self, name: &str, label: &str) -> Result<String, String> {
        let rest = self.command(&format!("gregister {name} {label}"), "GREGISTER", ANSWER)?;
        match rest.strip_prefix(&format!("ED {name} ")) {
            Some(pid) => Ok(pid.to_owned()),
            None => Err(format!("{}: GREGISTER{rest}", self.name)),
        }
    }

    /// The pid this node's view gives for the global name `name`.
    pub fn whereis(&mut self, name: &str) -> Result<Option<String>, String> {
        let rest = self.command(&format!("gwhereis {name}"), &format!("GWHEREIS {name} "), ANSWER)?;
        Ok((rest != "none").then_some(rest))
    }

    /// Sends `{self, :ping}` to the global name `name`; whether its process answered within 5 s.
    pub fn global_ping(&mut self, name: &str) -> Result<bool, String> {
        let rest = self.command(&format!("gsend {name}"), "GP", Duration::from_secs(15))?;
        match rest.split_once(' ') {
            Some(("ONG", n)) if n == name => Ok(true),
            Some(("ANG", n)) if n == name => Ok(false),
            _ => Err(format!("{}: GP{rest}", self.name)),
        }
    }

    /// Holder `label` joins `group` (default scope); its pid.
    pub fn join(&mut self, group: &str, label: &str) -> Result<String, String> {
        let rest = self.command(&format!("gjoin {group} {label}"), "GJOIN", ANSWER)?;
        match rest.strip_prefix(&format!("ED {group} ")) {
            Some(pid) => Ok(pid.to_owned()),
            None => Err(format!("{}: GJOIN{rest}", self.name)),
        }
    }

    /// Holder `label` leaves `group`.
    pub fn leave(&mut self, group: &str, label: &str) -> Result<(), String> {
        let rest = self.command(&format!("gleave {group} {label}"), "GLE", ANSWER)?;
        match rest.strip_prefix(&format!("FT {group} ")) {
            Some(_) => Ok(()),
            None => Err(format!("{}: GLE{rest}", self.name)),
        }
    }

    /// The members of `group` this node's view holds, sorted.
    pub fn members(&mut self, group: &str) -> Result<Vec<String>, String> {
        let line = format!("gmembers {group}");
        let rest = self.command(&line, &format!("GMEMBERS {group}"), ANSWER)?;
        Ok(rest.split(',').filter(|p| !p.is_empty()).map(str::to_owned).collect())
    }

    /// Closes the connection to `peer` (a partition of this pair until someone connects again);
    /// whether there was one.
    pub fn disconnect(&mut self, peer: &str) -> Result<bool, String> {
        let rest = self.command(&format!("disconnect {peer}"), &format!("DISCONNECTED {peer} "), ANSWER)?;
        Ok(rest == "true")
    }
}
