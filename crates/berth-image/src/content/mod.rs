//! The content-addressed blob store.
//!
//! A [`ContentStore`] keeps every blob at `content/blobs/<alg>/<hex>` (the
//! OCI image-layout shape) and lets readers see a blob only once it is
//! complete and its digest verified. Data arrives through a [`Writer`]:
//!
//! 1. [`ContentStore::writer`] opens (or resumes) the ingest named by a
//!    caller-chosen ref, `content/ingest/<ref>/data`, holding a lock on it so
//!    one ref has one writer at a time.
//! 2. Writes go straight to that file and through the hash, so a process
//!    that dies mid-way loses nothing it wrote: the next writer for the same
//!    ref re-hashes what is there and continues at [`Writer::offset`].
//! 3. [`Writer::commit`] fsyncs, checks size and digest, and renames the
//!    file into `blobs/` (then fsyncs the directory). A mismatch discards the
//!    data; a blob that is already stored makes the commit a no-op success.
//!
//! [`ContentStore::ingests`] lists unfinished ingests and
//! [`ContentStore::abort`] drops one.

mod error;
mod ingest;
mod writer;

#[cfg(test)]
mod tests;

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use berth_model::{Digest, DigestAlgorithm};
use sha2::Digest as _;

pub use error::{ContentError, Result};
pub use ingest::IngestStatus;
pub use writer::Writer;

/// The largest manifest, index or config berth reads into memory.
pub const MAX_DOCUMENT: u64 = 8 << 20;

/// What the store knows about a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobInfo {
    /// The blob's length in bytes.
    pub size: u64,
}

/// The blob store rooted at `<root>/content`.
///
/// Cheap to clone; every method works from the paths alone, so several
/// handles (and several processes) may share one root.
#[derive(Debug, Clone)]
pub struct ContentStore {
    content: PathBuf,
}

impl ContentStore {
    /// Opens the store under `root`, creating `content/blobs` and
    /// `content/ingest` when missing.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let content = root.as_ref().join("content");
        for dir in [content.join("blobs"), content.join("ingest")] {
            fs::create_dir_all(&dir).map_err(ContentError::io("create directory", &dir))?;
        }
        Ok(ContentStore { content })
    }

    /// The size of the blob `digest`, or `None` when it is not stored.
    pub fn info(&self, digest: &Digest) -> Result<Option<BlobInfo>> {
        let path = self.blob_path(digest);
        match fs::metadata(&path) {
            Ok(m) => Ok(Some(BlobInfo { size: m.len() })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ContentError::io("stat", path)(e)),
        }
    }

    /// Opens the blob `digest` for reading.
    pub fn read(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| self.not_found_or(digest, "open", path, e))
    }

    /// The whole of a small blob (a manifest, index or config), refusing
    /// one larger than [`MAX_DOCUMENT`]: such blobs come from registries and
    /// archives, and must not make berth read gigabytes into memory.
    pub fn read_document(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut file = self.read(digest)?;
        let size = file
            .metadata()
            .map_err(ContentError::io("stat", self.blob_path(digest)))?
            .len();
        if size > MAX_DOCUMENT {
            return Err(ContentError::TooLarge {
                digest: digest.clone(),
                size,
                limit: MAX_DOCUMENT,
            });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        io::Read::read_to_end(&mut file, &mut bytes)
            .map_err(ContentError::io("read", self.blob_path(digest)))?;
        Ok(bytes)
    }

    /// Removes the blob `digest`. Readers that already opened it keep
    /// reading it.
    pub fn delete(&self, digest: &Digest) -> Result<()> {
        let path = self.blob_path(digest);
        fs::remove_file(&path).map_err(|e| self.not_found_or(digest, "remove", path, e))
    }

    /// Every stored blob with its size, sorted by digest.
    pub fn list(&self) -> Result<Vec<(Digest, u64)>> {
        let mut blobs = Vec::new();
        for algorithm in DigestAlgorithm::ALL {
            let dir = self.content.join("blobs").join(algorithm.as_str());
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(ContentError::io("read directory", dir)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(ContentError::io("read directory", &dir))?;
                // Anything that is not a digest-named file is not a blob.
                let Some(digest) = entry
                    .file_name()
                    .to_str()
                    .and_then(|hex| Digest::new(algorithm, hex).ok())
                else {
                    continue;
                };
                let meta = entry
                    .metadata()
                    .map_err(ContentError::io("stat", entry.path()))?;
                if meta.is_file() {
                    blobs.push((digest, meta.len()));
                }
            }
        }
        blobs.sort();
        Ok(blobs)
    }

    /// Opens a writer for the ingest `reference`, resuming whatever data an
    /// earlier writer of that ref left behind.
    ///
    /// `expected` is the digest and size the data must have; when it
    /// differs from what the earlier writer expected, its data belongs to
    /// another blob and is dropped. Fails with [`ContentError::Locked`] while
    /// another writer holds the ref.
    pub fn writer(&self, reference: &str, expected: Option<(Digest, u64)>) -> Result<Writer> {
        Writer::open(self.clone(), reference, expected)
    }

    /// Where the blob `digest` lives.
    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.content
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    fn ingest_root(&self) -> PathBuf {
        self.content.join("ingest")
    }

    fn not_found_or(
        &self,
        digest: &Digest,
        op: &'static str,
        path: PathBuf,
        e: io::Error,
    ) -> ContentError {
        if e.kind() == io::ErrorKind::NotFound {
            ContentError::NotFound {
                digest: digest.clone(),
            }
        } else {
            ContentError::io(op, path)(e)
        }
    }
}

/// The digest of `bytes` with `algorithm`.
pub fn digest_of(algorithm: DigestAlgorithm, bytes: &[u8]) -> Digest {
    match algorithm {
        DigestAlgorithm::Sha256 => sha256_of(bytes),
        DigestAlgorithm::Sha512 => digest_from_hash(algorithm, &sha2::Sha512::digest(bytes)),
    }
}

/// The sha256 digest of `bytes`.
pub fn sha256_of(bytes: &[u8]) -> Digest {
    digest_from_hash(DigestAlgorithm::Sha256, &sha2::Sha256::digest(bytes))
}

/// The digest of a finished sha256 hash.
pub(crate) fn digest_from_sha256(hash: sha2::Sha256) -> Digest {
    digest_from_hash(DigestAlgorithm::Sha256, &sha2::Digest::finalize(hash))
}

/// Turns a finished hash into a [`Digest`].
fn digest_from_hash(algorithm: DigestAlgorithm, hash: &[u8]) -> Digest {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hex: String = hash
        .iter()
        .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]])
        .map(char::from)
        .collect();
    Digest::new(algorithm, &hex).expect("a hash of the algorithm's length is a valid digest")
}

/// Fsyncs a directory, so that a rename or create inside it survives a crash.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(ContentError::io("fsync directory", dir))
}
