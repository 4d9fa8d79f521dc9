//! The daemon's Ed25519 key (`DATA_DIR/daemon.key`, PKCS#8, mode 600, created on first start)
//! and the pinned keys of other daemons (`DATA_DIR/known_daemons`, one `ID HEX-KEY` line per
//! daemon, like ssh's known_hosts). README "Security" says how an operator resets a pin: stop the
//! daemon, delete that daemon's line, start it again.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ring::rand::SystemRandom;
use ring::signature::Ed25519KeyPair;
use snow_shared::cookie::{read_secret_file, SecretFileError};
use snow_shared::epmd::identity::{Identity, PublicKey};
use snow_shared::epmd::table::DaemonId;

/// File name of the daemon's key in the data directory.
pub const KEY_FILE: &str = "daemon.key";
/// Largest daemon key file accepted (an Ed25519 PKCS#8 document is under 100 bytes).
const MAX_KEY_FILE: usize = 4096;
/// File name of the pinned keys in the data directory.
pub const KNOWN_FILE: &str = "known_daemons";

/// Why a key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing failed.
    #[error("cannot use {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The key file was refused (a symbolic link, not a regular file, owned by another user,
    /// accessible by group or others) or could not be read; the message says how to fix it.
    #[error(transparent)]
    KeyFile(#[from] SecretFileError),
    /// The key file does not hold a key.
    #[error("{} does not hold an Ed25519 key ({why}); move it away to make a new one (other daemons then refuse this daemon until they reset its pin)", path.display())]
    Bad {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// A line of the known-daemons file is malformed.
    #[error("{} line {line} is not `HOST:PORT HEX-KEY`; fix or delete that line", path.display())]
    KnownLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
}

/// Loads the daemon's key from `dir`, or creates it (mode 600) on first start. The file is read
/// with the checked secret-file reader the cookie and TLS keys go through
/// ([`read_secret_file`]: opened once without following symlinks, a regular file whose owner and
/// mode are checked on the open file, read from it and zeroed when dropped).
pub fn load_or_create(dir: &Path) -> Result<Identity, KeyError> {
    let path = dir.join(KEY_FILE);
    let io = |source| KeyError::Io { path: path.clone(), source };
    match read_secret_file(&path, "snow-epmd daemon key", MAX_KEY_FILE) {
        Ok(pkcs8) => Identity::from_pkcs8(&pkcs8).map_err(|e| KeyError::Bad { path: path.clone(), why: e.to_string() }),
        Err(SecretFileError::Open { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|e| KeyError::Bad { path: path.clone(), why: e.to_string() })?;
            let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(io)?;
            file.write_all(pkcs8.as_ref()).and_then(|()| file.sync_all()).map_err(io)?;
            log::info!("snow-epmd: created this daemon's key {}", path.display());
            Identity::from_pkcs8(pkcs8.as_ref()).map_err(|e| KeyError::Bad { path, why: e.to_string() })
        }
        Err(e) => Err(e.into()),
    }
}

/// The pinned keys in `dir` (none if the file does not exist).
pub fn load_known(dir: &Path) -> Result<Vec<(DaemonId, PublicKey)>, KeyError> {
    let path = dir.join(KNOWN_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(KeyError::Io { path, source }),
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || KeyError::KnownLine { path: path.clone(), line: i + 1 };
        let (id, hex) = line.split_once(' ').ok_or_else(bad)?;
        out.push((id.to_owned(), parse_key(hex.trim()).ok_or_else(bad)?));
    }
    Ok(out)
}

/// Appends a pin to the known-daemons file in `dir`.
pub fn append_known(dir: &Path, id: &str, key: &PublicKey) -> std::io::Result<()> {
    let mut file = OpenOptions::new().append(true).create(true).mode(0o644).open(dir.join(KNOWN_FILE))?;
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    writeln!(file, "{id} {hex}")
}

fn parse_key(hex: &str) -> Option<PublicKey> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, k) in key.iter_mut().enumerate() {
        *k = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn key_is_created_private_reloaded_and_refused_when_readable() {
        let dir = std::env::temp_dir().join(format!("snow-epmd-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let a = load_or_create(&dir).unwrap();
        let mode = std::fs::metadata(dir.join(KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load_or_create(&dir).unwrap().public_key(), a.public_key());
        std::fs::set_permissions(dir.join(KEY_FILE), std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create(&dir).unwrap_err();
        assert!(matches!(err, KeyError::KeyFile(SecretFileError::InsecurePermissions { mode: 0o644, .. })), "{err}");
        assert!(err.to_string().contains("chmod 600"), "{err}");
        // A symbolic link to a private key is refused too (it could be repointed).
        std::fs::set_permissions(dir.join(KEY_FILE), std::fs::Permissions::from_mode(0o600)).unwrap();
        let moved = dir.join("elsewhere.key");
        std::fs::rename(dir.join(KEY_FILE), &moved).unwrap();
        std::os::unix::fs::symlink(&moved, dir.join(KEY_FILE)).unwrap();
        let err = load_or_create(&dir).unwrap_err();
        assert!(matches!(err, KeyError::KeyFile(SecretFileError::SymbolicLink { .. })), "{err}");
        std::fs::remove_file(dir.join(KEY_FILE)).unwrap();
        std::fs::rename(&moved, dir.join(KEY_FILE)).unwrap();
        assert_eq!(load_or_create(&dir).unwrap().public_key(), a.public_key());
        append_known(&dir, "h:1", a.public_key()).unwrap();
        assert_eq!(load_known(&dir).unwrap(), vec![("h:1".to_owned(), *a.public_key())]);
        std::fs::write(dir.join(KNOWN_FILE), "h:1 zz\n").unwrap();
        assert!(matches!(load_known(&dir), Err(KeyError::KnownLine { line: 1, .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
