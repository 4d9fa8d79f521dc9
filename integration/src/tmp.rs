//! Private temporary directories (removed on drop) and secret files (mode 600), for cookies,
//! certificates, snow-epmd data and compiled Erlang modules.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A directory under the system temp dir, unique per process and call, removed with its contents
/// when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `$TMPDIR/snow-<label>-<pid>-<counter>-<nanos>` with mode 700.
    pub fn new(label: &str) -> std::io::Result<TempDir> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "snow-{label}-{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            nanos.unwrap_or(0)
        ));
        std::fs::create_dir_all(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
        Ok(TempDir(path))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `path/name`.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `contents` to `path` readable by the owner only (mode 600), as cookie files must be.
pub fn write_secret(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, contents)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

/// A fresh random cookie (the same format as `snow-epmd gen-cookie`).
pub fn random_cookie() -> String {
    snow_shared::cookie::Cookie::generate(rand::random())
}

/// A TCP port that was free a moment ago on 127.0.0.1 (bound to port 0, then released). Only for
/// programs that cannot be told to use port 0 and report the port, such as Erlang's epmd.
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
