//! Partial writes: `content/ingest/<ref>/`, their refs, locks and listing.
//!
//! An ingest directory holds `data` (the bytes written so far) and, when the
//! writer announced one, `expected` (the digest and size it must end with,
//! JSON). A writer holds an exclusive `flock` on the directory itself for its
//! whole life and removes the directory, still holding it, when it commits.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth_model::Digest;

use super::{ContentError, ContentStore, Result};

/// The longest ref accepted: one path component (`NAME_MAX`).
const MAX_REF_LEN: usize = 255;

/// An unfinished ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestStatus {
    /// The ref its writer was opened with.
    pub reference: String,
    /// How many bytes it holds: where a resumed writer continues.
    pub offset: u64,
    /// The digest and size it was announced to end with, if any.
    pub expected: Option<(Digest, u64)>,
    /// When its data last changed.
    pub updated: std::time::SystemTime,
}

/// The on-disk form of an ingest's expected digest and size.
#[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct Expected {
    pub(super) digest: Digest,
    pub(super) size: u64,
}

/// Checks that `reference` names exactly one entry of the ingest directory.
/// Refs may come from the network (an upload session), so nothing that could
/// climb out of it or confuse the listing is accepted.
pub(super) fn validate_ref(reference: &str) -> Result<()> {
    let reason = if reference.is_empty() {
        Some("it is empty")
    } else if reference.len() > MAX_REF_LEN {
        Some("it is longer than 255 bytes")
    } else if reference.contains('/') {
        Some("it contains '/'")
    } else if reference.contains('\0') {
        Some("it contains a NUL byte")
    } else if reference.contains("..") || reference == "." {
        Some("it contains '..' or is '.'")
    } else if reference.chars().any(char::is_control) {
        Some("it contains a control character")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ContentError::InvalidRef {
            reference: reference.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

impl ContentStore {
    /// The unfinished ingests, sorted by ref.
    pub fn ingests(&self) -> Result<Vec<IngestStatus>> {
        let root = self.ingest_root();
        let entries = fs::read_dir(&root).map_err(ContentError::io("read directory", &root))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(ContentError::io("read directory", &root))?;
            let Some(reference) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if validate_ref(&reference).is_err() {
                continue;
            }
            let dir = entry.path();
            let (offset, updated) = match fs::metadata(dir.join("data")) {
                Ok(m) => (m.len(), m.modified().unwrap_or(std::time::UNIX_EPOCH)),
                // Committed or aborted while we looked.
                Err(e) if e.kind() == io::ErrorKind::NotFound => (0, std::time::UNIX_EPOCH),
                Err(e) => return Err(ContentError::io("stat", dir.join("data"))(e)),
            };
            let expected = read_expected(&dir)?.map(|e| (e.digest, e.size));
            out.push(IngestStatus {
                reference,
                offset,
                expected,
                updated,
            });
        }
        out.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(out)
    }

    /// Drops the ingest `reference` and its data. Aborting a ref that has
    /// no ingest succeeds; one that a writer holds fails with
    /// [`ContentError::Locked`].
    pub fn abort(&self, reference: &str) -> Result<()> {
        validate_ref(reference)?;
        let dir = self.ingest_dir(reference);
        if !dir.exists() {
            return Ok(());
        }
        let _lock = lock_ingest(&dir, reference)?;
        fs::remove_dir_all(&dir).map_err(ContentError::io("remove directory", &dir))
    }

    pub(super) fn ingest_dir(&self, reference: &str) -> PathBuf {
        self.ingest_root().join(reference)
    }
}

/// Creates (if needed) and locks the ingest directory `dir`.
///
/// A writer that commits removes its directory while still holding the lock,
/// so a lock taken on a directory that has meanwhile been unlinked is worth
/// nothing: the directory's identity is checked after locking and the whole
/// dance retried when it changed.
pub(super) fn lock_ingest(dir: &Path, reference: &str) -> Result<File> {
    for _ in 0..16 {
        match fs::create_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(ContentError::io("create directory", dir)(e)),
        }
        let handle = match File::open(dir) {
            Ok(handle) => handle,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(ContentError::io("open", dir)(e)),
        };
        let locked =
            berth_sys::fs::try_lock_exclusive(&handle).map_err(ContentError::io("lock", dir))?;
        if !locked {
            return Err(ContentError::Locked {
                reference: reference.to_owned(),
            });
        }
        let held = handle.metadata().map_err(ContentError::io("stat", dir))?;
        match fs::metadata(dir) {
            Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => return Ok(handle),
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(ContentError::io("stat", dir)(e)),
        }
    }
    // Only a storm of concurrent commit-and-reopen cycles on one ref gets here.
    Err(ContentError::Locked {
        reference: reference.to_owned(),
    })
}

/// Reads an ingest's `expected` file. A file that does not parse (a crash
/// cannot produce one: it is written atomically) counts as absent.
pub(super) fn read_expected(dir: &Path) -> Result<Option<Expected>> {
    let path = dir.join("expected");
    match fs::read(&path) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ContentError::io("read", path)(e)),
    }
}

/// Records what an ingest is expected to end with.
pub(super) fn write_expected(dir: &Path, expected: &Expected) -> Result<()> {
    let path = dir.join("expected");
    let json = serde_json::to_vec(expected).expect("a digest and a size serialize");
    berth_sys::fs::atomic_write(&path, &json).map_err(ContentError::io("write", path))
}
