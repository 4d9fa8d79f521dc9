//! Network namespaces for multi-host tests: each namespace is a "host" with its own network stack;
//! veth pairs link them. Everything is created inside namespaces the test owns (names carry the
//! pid), and removed when the guards drop, also when a test fails or panics. Needs root, `ip netns`
//! and `unshare`; [`unavailable`] says why not, so a test can fail with a clear message.

use std::process::Command;

/// Why namespaced tests cannot run here, or `None` if they can.
pub fn unavailable() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if uid.as_deref() != Some("0") {
        return Some(format!("not running as root (uid {})", uid.unwrap_or_else(|| "unknown".into())));
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => return Some(format!("`ip netns list` failed: {}", String::from_utf8_lossy(&o.stderr).trim())),
        Err(e) => return Some(format!("cannot run `ip`: {e}")),
    }
    match Command::new("unshare").arg("--version").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("cannot run `unshare` (util-linux)".to_owned()),
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

/// Links `a` and `b` with a veth pair named `a_dev` in `a` and `b_dev` in `b`, without addresses
/// and down. The pair is created directly inside the two namespaces (never in the caller's) and
/// disappears with them.
pub fn veth_pair(a: &Netns, a_dev: &str, b: &Netns, b_dev: &str) -> Result<(), String> {
    ip(&["link", "add", a_dev, "netns", a.name(), "type", "veth", "peer", "name", b_dev, "netns", b.name()])
}

/// Files that `ip netns exec NAME` lays over `/etc` inside namespace NAME (it bind-mounts each
/// file of `/etc/netns/NAME/`), such as a `hosts` file naming the testbed's hosts. The directory
/// is removed on drop.
#[derive(Debug)]
pub struct EtcOverlay {
    dir: std::path::PathBuf,
}

/// Serialises creating and removing `/etc/netns` itself among this process's overlays; `true`
/// while this process created it (and so removes it when its last overlay goes).
static ETC_NETNS: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
const ETC_NETNS_DIR: &str = "/etc/netns";

impl EtcOverlay {
    /// Writes `/etc/netns/NAME/FILE` for each `(FILE, contents)`.
    pub fn create(ns: &Netns, files: &[(&str, String)]) -> Result<EtcOverlay, String> {
        let dir = std::path::Path::new(ETC_NETNS_DIR).join(ns.name());
        let mut created = ETC_NETNS.lock().unwrap_or_else(|e| e.into_inner());
        if !std::path::Path::new(ETC_NETNS_DIR).exists() {
            *created = true;
        }
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let overlay = EtcOverlay { dir };
        for (file, contents) in files {
            let path = overlay.dir.join(file);
            std::fs::write(&path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(overlay)
    }
}

impl Drop for EtcOverlay {
    fn drop(&mut self) {
        let mut created = ETC_NETNS.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("cleanup: cannot remove {}: {e}", self.dir.display());
        }
        // `/etc/netns` itself goes too if this process made it, once empty (removing a directory
        // that is not empty fails, which leaves other namespaces' files alone).
        if *created && std::fs::remove_dir(ETC_NETNS_DIR).is_ok() {
            *created = false;
        }
    }
}
