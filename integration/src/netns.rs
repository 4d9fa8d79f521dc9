//! Network namespaces for multi-host tests (DESIGN.md 6): each namespace is a "host" with its own
//! network stack; a veth pair links two of them with addresses chosen by the test. Everything is
//! created inside namespaces the test owns (names carry the pid), and removed when the guards drop,
//! also when a test fails. Needs root and `ip netns`; [`unavailable`] says why not, so a test can
//! print a clear skip message.

use std::process::Command;

/// Why namespaced tests cannot run here, or `None` if they can.
pub fn unavailable() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if uid.as_deref() != Some("0") {
        return Some(format!("not running as root (uid {})", uid.unwrap_or_else(|| "unknown".into())));
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!("`ip netns list` failed: {}", String::from_utf8_lossy(&o.stderr).trim())),
        Err(e) => Some(format!("cannot run `ip`: {e}")),
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// A network namespace, deleted (with its interfaces) on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates namespace `snow-<label>-<pid>` with its loopback up.
    pub fn create(label: &str) -> Result<Netns, String> {
        let name = format!("snow-{label}-{}", std::process::id());
        ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `program` inside this namespace (`ip netns exec NAME program`).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Runs `ip -n NAME args...`.
    pub fn ip(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("cleanup: {e}");
        }
    }
}

/// Links `a` and `b` with a veth pair named `dev` on both sides, addresses `a_addr` and `b_addr`
/// (CIDR, e.g. `10.231.7.1/24`), both up. The pair lives only inside the two namespaces and
/// disappears with them.
pub fn veth(a: &Netns, a_addr: &str, b: &Netns, b_addr: &str, dev: &str) -> Result<(), String> {
    ip(&["link", "add", dev, "netns", a.name(), "type", "veth", "peer", "name", dev, "netns", b.name()])?;
    a.ip(&["addr", "add", a_addr, "dev", dev])?;
    b.ip(&["addr", "add", b_addr, "dev", dev])?;
    a.ip(&["link", "set", dev, "up"])?;
    b.ip(&["link", "set", dev, "up"])
}
