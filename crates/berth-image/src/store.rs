//! The image reference store: which manifest or index each name points to.
//!
//! One file, `<root>/images.json`, maps each normalised reference
//! (`docker.io/library/busybox:latest`, [`ImageRef`]'s `Display`) to an
//! [`ImageRecord`]. Every change rewrites the whole file atomically, so a
//! crash leaves the old map or the new one. A mutex serialises writers
//! within one process; cross-process locking comes with the daemon, which
//! will be the only writer.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use berth_model::{Digest, ErrorKind, ImageRef, ReferenceError};
use serde::{Deserialize, Serialize};

use crate::manifest::Descriptor;

/// The file name under the store's root.
pub const IMAGES_FILE: &str = "images.json";

/// What a reference points to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The manifest or index.
    pub target: Descriptor,
    /// When the reference was first pointed at this target, RFC 3339 UTC.
    pub created: String,
}

/// Why the image store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `images.json` is not valid JSON of the expected shape.
    #[error("corrupt image store {}: {source}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// `images.json` holds a key that is not a valid reference.
    #[error("corrupt image store {}: bad reference {reference:?}: {source}", path.display())]
    BadReference {
        /// The file.
        path: PathBuf,
        /// The key.
        reference: String,
        /// Why it is not a reference.
        #[source]
        source: ReferenceError,
    },
    /// A filesystem operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl StoreError {
    /// The error class.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

/// The on-disk shape of `images.json`.
#[derive(Serialize, Deserialize, Default)]
struct File {
    images: BTreeMap<String, ImageRecord>,
}

/// The references known to berth, persisted in `<root>/images.json`.
#[derive(Debug)]
pub struct ImageStore {
    path: PathBuf,
    images: Mutex<Cached>,
}

/// The map as last read or written, and which file it came from.
#[derive(Debug)]
struct Cached {
    // Keyed by the reference's Display string, which is also its on-disk key.
    map: BTreeMap<String, (ImageRef, ImageRecord)>,
    /// Inode, length and modification time of the file the map matches;
    /// every write makes a new inode (atomic replace), so another
    /// process's change is always noticed.
    stamp: Option<(u64, u64, SystemTime)>,
}

type Map = BTreeMap<String, (ImageRef, ImageRecord)>;

fn stamp(path: &Path) -> Option<(u64, u64, SystemTime)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.ino(), meta.len(), meta.modified().ok()?))
}

impl ImageStore {
    /// Opens the store under `root`, creating the directory if needed. A
    /// missing `images.json` is an empty store.
    pub fn open(root: impl AsRef<Path>) -> Result<ImageStore, StoreError> {
        let root = root.as_ref();
        std::fs::create_dir_all(root).map_err(|source| StoreError::Io {
            op: "create",
            path: root.to_owned(),
            source,
        })?;
        let path = root.join(IMAGES_FILE);
        let images = load(&path)?;
        let stamp = stamp(&path);
        Ok(ImageStore {
            path,
            images: Mutex::new(Cached { map: images, stamp }),
        })
    }

    /// The path of `images.json`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What `reference` points to. A reference by digest
    /// (`busybox@sha256:...`) not stored as such also finds any stored
    /// reference in the same repository whose target has that digest.
    pub fn get(&self, reference: &ImageRef) -> Option<ImageRecord> {
        let cached = self.fresh();
        let images = &cached.map;
        if let Some((_, record)) = images.get(&reference.to_string()) {
            return Some(record.clone());
        }
        let digest = reference.digest()?;
        let repository = reference.repository();
        images
            .values()
            .find(|(r, rec)| rec.target.digest == *digest && r.repository() == repository)
            .map(|(_, rec)| rec.clone())
    }

    /// Points `reference` at `target`, replacing what it pointed to. The
    /// creation time is kept when the target's digest is unchanged.
    pub fn put(&self, reference: &ImageRef, target: Descriptor) -> Result<ImageRecord, StoreError> {
        let key = reference.to_string();
        self.update(|images| {
            let created = match images.get(&key) {
                Some((_, old)) if old.target.digest == target.digest => old.created.clone(),
                _ => berth_model::time::rfc3339_secs(
                    SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs() as i64),
                ),
            };
            let record = ImageRecord { target, created };
            images.insert(key, (reference.clone(), record.clone()));
            record
        })
    }

    /// Forgets `reference`; whether it was known.
    pub fn remove(&self, reference: &ImageRef) -> Result<bool, StoreError> {
        let key = reference.to_string();
        self.update(|images| images.remove(&key).is_some())
    }

    /// Changes the map as `change` does: under an exclusive lock on
    /// `images.json.lock` (so changes from other processes, a daemon and a
    /// CLI, are never lost), on the file as it is now, written back
    /// atomically.
    fn update<T>(&self, change: impl FnOnce(&mut Map) -> T) -> Result<T, StoreError> {
        let mut cached = self.lock();
        let lock_path = self.path.with_extension("json.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| StoreError::Io {
                op: "open",
                path: lock_path.clone(),
                source,
            })?;
        berth_sys::fs::lock_exclusive(&lock).map_err(|source| StoreError::Io {
            op: "lock",
            path: lock_path,
            source,
        })?;
        let mut next = load(&self.path)?;
        let out = change(&mut next);
        self.save(&next)?;
        cached.stamp = stamp(&self.path);
        cached.map = next;
        Ok(out)
    }

    /// Every reference and its record, sorted by reference string.
    pub fn list(&self) -> Vec<(ImageRef, ImageRecord)> {
        self.fresh().map.values().cloned().collect()
    }

    /// The references whose target has `digest`, sorted.
    pub fn references_to(&self, digest: &Digest) -> Vec<ImageRef> {
        self.fresh()
            .map
            .values()
            .filter(|(_, rec)| rec.target.digest == *digest)
            .map(|(r, _)| r.clone())
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Cached> {
        // The map is replaced only after a successful write, so a panic
        // elsewhere cannot leave it half-changed: the poison can be ignored.
        self.images.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The map, read again when another process changed the file (a file
    /// that cannot be read keeps the last good map).
    fn fresh(&self) -> MutexGuard<'_, Cached> {
        let mut cached = self.lock();
        let now = stamp(&self.path);
        if now != cached.stamp
            && let Ok(map) = load(&self.path)
        {
            cached.map = map;
            cached.stamp = now;
        }
        cached
    }

    fn save(&self, images: &Map) -> Result<(), StoreError> {
        let file = File {
            images: images
                .iter()
                .map(|(k, (_, rec))| (k.clone(), rec.clone()))
                .collect(),
        };
        let mut data = serde_json::to_vec_pretty(&file).expect("string-keyed maps serialise");
        data.push(b'\n');
        berth_sys::fs::atomic_write(&self.path, &data).map_err(|source| StoreError::Io {
            op: "write",
            path: self.path.clone(),
            source,
        })
    }
}

fn load(path: &Path) -> Result<BTreeMap<String, (ImageRef, ImageRecord)>, StoreError> {
    let data = match std::fs::read(path) {
        Ok(data) => data,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(source) => {
            return Err(StoreError::Io {
                op: "read",
                path: path.to_owned(),
                source,
            });
        }
    };
    let file: File = serde_json::from_slice(&data).map_err(|source| StoreError::Corrupt {
        path: path.to_owned(),
        source,
    })?;
    file.images
        .into_iter()
        .map(|(key, record)| {
            let reference = ImageRef::parse(&key).map_err(|source| StoreError::BadReference {
                path: path.to_owned(),
                reference: key.clone(),
                source,
            })?;
            // Re-key by the normalised form, so a hand-edited short name
            // is still found.
            Ok((reference.to_string(), (reference, record)))
        })
        .collect()
}

#[cfg(test)]
mod tests;
