//! Persistence of the table in sled. Every acknowledged change is written and flushed before the
//! reply (the driver awaits [`Store::flush`]). Layout: tree `entries` (node name -> entry in the
//! gossip entry layout with absolute times), tree `owners` (daemon id -> highest version seen),
//! tree `meta` (`incarnation` -> u64). Pins of other daemons' keys are appended to the
//! `known_daemons` file beside it ([`crate::keys`]).

use std::path::{Path, PathBuf};

use snow_shared::epmd::gossip::{decode_entry, encode_entry, put_version, version};
use snow_shared::epmd::table::{Change, Persisted, Table, Version};
use snow_shared::epmd::wire::Reader;

use crate::keys;

/// sled's page cache size: small, so the daemon stays small (10,000 entries fit easily).
const CACHE_BYTES: u64 = 2 * 1024 * 1024;

/// Why the database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled refused to open the directory (corrupt, unwritable, locked by another daemon).
    #[error(
        "cannot open the database in {}: {source}; check that the directory is writable and that no other \
         snow-epmd uses it, or start with --repair to move it aside and refill from peers",
        dir.display()
    )]
    Open {
        /// The data directory.
        dir: PathBuf,
        /// sled's reason.
        source: sled::Error,
    },
    /// A stored record does not decode.
    #[error("the database in {} holds an unreadable record ({what}); start with --repair to move it aside", dir.display())]
    Corrupt {
        /// The data directory.
        dir: PathBuf,
        /// Which record.
        what: String,
    },
    /// Moving a broken database aside failed.
    #[error("cannot move the broken database {} aside: {source}", dir.display())]
    Repair {
        /// The data directory.
        dir: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// A write or flush failed.
    #[error("database write failed: {0}; is the disk full?")]
    Write(#[from] sled::Error),
    /// The known-daemons file could not be written.
    #[error("cannot record a pinned daemon key in known_daemons: {source}; is the disk full?")]
    Pins {
        /// Why.
        source: std::io::Error,
    },
}

/// What was loaded at start-up.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The table's state (pins are read from the known-daemons file by the caller).
    pub table: Persisted,
    /// The daemon id of the previous run, if stored.
    pub previous_id: Option<String>,
}

/// The open database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    entries: sled::Tree,
    owners: sled::Tree,
    meta: sled::Tree,
    /// Owner maxima as last written, so a change rewrites only the owners that moved.
    written: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Version>>>,
    /// One flush at a time: concurrent registrations queue here instead of each occupying a
    /// blocking thread (every extra thread costs stack and a malloc arena).
    flushing: std::sync::Arc<async_lock::Mutex<()>>,
    /// The data directory (for the known-daemons file).
    dir: PathBuf,
}

impl Store {
    /// Opens (or creates) the database in `dir` and loads it. With `repair`, a database that
    /// cannot be opened or read is renamed to `<dir>.broken-<unix time>` and a fresh one started.
    pub fn open(dir: &Path, repair: bool) -> Result<(Store, Loaded), StoreError> {
        match Store::open_and_load(dir) {
            Ok(ok) => Ok(ok),
            Err(e) if repair => {
                let aside = dir.with_extension(format!("broken-{}", crate::clock::now_ms() / 1000));
                log::warn!("snow-epmd: {e}; --repair: moving it to {} and starting empty", aside.display());
                let repair_err = |source| StoreError::Repair { dir: dir.to_owned(), source };
                std::fs::rename(dir, &aside).map_err(repair_err)?;
                // The daemon's key and its pins are not the broken part: other daemons know the
                // key, so it comes back into the fresh directory.
                if aside.is_dir() {
                    std::fs::create_dir_all(dir).map_err(repair_err)?;
                    for file in [keys::KEY_FILE, keys::KNOWN_FILE] {
                        if aside.join(file).exists() {
                            std::fs::rename(aside.join(file), dir.join(file)).map_err(repair_err)?;
                        }
                    }
                }
                Store::open_and_load(dir)
            }
            Err(e) => Err(e),
        }
    }

    fn open_and_load(dir: &Path) -> Result<(Store, Loaded), StoreError> {
        let open_err = |source| StoreError::Open { dir: dir.to_owned(), source };
        let db = sled::Config::new().path(dir).cache_capacity(CACHE_BYTES).open().map_err(open_err)?;
        let store = Store {
            entries: db.open_tree("entries").map_err(open_err)?,
            owners: db.open_tree("owners").map_err(open_err)?,
            meta: db.open_tree("meta").map_err(open_err)?,
            written: Default::default(),
            flushing: Default::default(),
            dir: dir.to_owned(),
            db,
        };
        let corrupt = |what: String| StoreError::Corrupt { dir: dir.to_owned(), what };
        let mut loaded = Loaded::default();
        if let Some(v) = store.meta.get("incarnation").map_err(open_err)? {
            let bytes: [u8; 8] = v.as_ref().try_into().map_err(|_| corrupt("incarnation".into()))?;
            loaded.table.incarnation = u64::from_be_bytes(bytes);
        }
        if let Some(v) = store.meta.get("id").map_err(open_err)? {
            loaded.previous_id = Some(String::from_utf8(v.to_vec()).map_err(|_| corrupt("daemon id".into()))?);
        }
        for item in store.owners.iter() {
            let (k, v) = item.map_err(open_err)?;
            let owner = String::from_utf8(k.to_vec()).map_err(|_| corrupt("owner id".into()))?;
            let max = version(&mut Reader::new(&v)).map_err(|_| corrupt(format!("owner {owner}")))?;
            loaded.table.owners.push((owner, max));
        }
        for item in store.entries.iter() {
            let (k, v) = item.map_err(open_err)?;
            let entry = decode_entry(&mut Reader::new(&v), u64::MAX)
                .map_err(|_| corrupt(format!("entry {}", String::from_utf8_lossy(&k))))?;
            loaded.table.entries.push(entry);
        }
        Ok((store, loaded))
    }

    /// Writes the table's pending changes (not yet durable: call [`Store::flush`]).
    pub fn apply(&self, table: &Table, changes: Vec<Change>) -> Result<(), StoreError> {
        let mut meta_changed = false;
        for change in changes {
            match change {
                Change::Put(e) => {
                    let mut v = Vec::new();
                    encode_entry(&mut v, &e, u64::MAX);
                    self.entries.insert(e.name.as_str().as_bytes(), v)?;
                }
                Change::Remove(name) => {
                    self.entries.remove(name.as_str().as_bytes())?;
                }
                Change::Meta => meta_changed = true,
                Change::Pin(id, key) => {
                    keys::append_known(&self.dir, &id, &key).map_err(|source| StoreError::Pins { source })?
                }
            }
        }
        if meta_changed {
            self.meta.insert("incarnation", &table.incarnation().to_be_bytes())?;
            self.meta.insert("id", table.me().as_bytes())?;
            let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
            for (owner, max) in table.owner_maxima() {
                if written.get(&owner) == Some(&max) {
                    continue;
                }
                written.insert(owner.clone(), max);
                let mut v = Vec::with_capacity(16);
                put_version(&mut v, max);
                self.owners.insert(owner.as_bytes(), v)?;
            }
        }
        Ok(())
    }

    /// Makes everything written so far durable.
    pub async fn flush(&self) -> Result<(), StoreError> {
        // sled's flush blocks on disk I/O: keep it off the async executor's threads.
        let _one_at_a_time = self.flushing.lock().await;
        let db = self.db.clone();
        blocking::unblock(move || db.flush()).await?;
        Ok(())
    }
}
