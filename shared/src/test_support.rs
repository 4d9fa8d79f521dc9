//! Test support shared by every crate's tests (feature `test-support`, a dev-dependency only):
//! a private temporary directory that is removed when dropped, and secret files written the way
//! cookie and key files must be. Not part of the protocol core: nothing else in this crate uses
//! it, and no release build contains it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A directory under the system temp dir, unique per process and call, removed with its contents
/// when dropped (also when the test fails).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temp_dir_is_private_and_removed_on_drop() {
        let dir = TempDir::new("support").unwrap();
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        write_secret(&dir.join("cookie"), b"secret").unwrap();
        let mode = std::fs::metadata(dir.join("cookie")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let path = dir.path().to_owned();
        drop(dir);
        assert!(!path.exists());
    }
}
