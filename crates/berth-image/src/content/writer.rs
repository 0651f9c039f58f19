//! The ingest writer: hashes while writing, resumes after a crash, and
//! publishes a blob only once it is verified.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use berth_model::{Digest, DigestAlgorithm};
use sha2::Digest as _;

use super::ingest::{self, Expected};
use super::{ContentError, ContentStore, Result, digest_from_hash, sync_dir};

/// A running hash of one of the supported algorithms.
#[derive(Clone)]
enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    fn new(algorithm: DigestAlgorithm) -> Self {
        match algorithm {
            DigestAlgorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            DigestAlgorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(h) => digest_from_hash(DigestAlgorithm::Sha256, &h.finalize()),
            Hasher::Sha512(h) => digest_from_hash(DigestAlgorithm::Sha512, &h.finalize()),
        }
    }
}

/// Writes one blob into the store; see the [module docs](super) for its
/// lifecycle.
///
/// Dropping a writer without committing keeps its data in the ingest
/// directory, where the next writer for the same ref resumes it (or
/// [`ContentStore::abort`] drops it).
pub struct Writer {
    store: ContentStore,
    reference: String,
    dir: PathBuf,
    data: File,
    hasher: Hasher,
    offset: u64,
    expected: Option<(Digest, u64)>,
    // Last, so the lock is released after the data file is closed.
    _lock: File,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("reference", &self.reference)
            .field("offset", &self.offset)
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// Opens or resumes the ingest `reference`; see [`ContentStore::writer`].
    pub(super) fn open(
        store: ContentStore,
        reference: &str,
        expected: Option<(Digest, u64)>,
    ) -> Result<Self> {
        ingest::validate_ref(reference)?;
        let dir = store.ingest_dir(reference);
        let lock = ingest::lock_ingest(&dir, reference)?;
        let recorded = ingest::read_expected(&dir)?;
        let data_path = dir.join("data");
        let mut data = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&data_path)
            .map_err(ContentError::io("open", &data_path))?;
        let wanted = expected.as_ref().map(|(digest, size)| Expected {
            digest: digest.clone(),
            size: *size,
        });
        if let Some(wanted) = &wanted {
            if recorded.as_ref().is_some_and(|r| r != wanted) {
                // The data left here was headed for another blob.
                data.set_len(0)
                    .map_err(ContentError::io("truncate", &data_path))?;
            }
            if recorded.as_ref() != Some(wanted) {
                ingest::write_expected(&dir, wanted)?;
            }
        }
        let expected = wanted.or(recorded).map(|e| (e.digest, e.size));
        let algorithm = expected
            .as_ref()
            .map_or(DigestAlgorithm::Sha256, |(d, _)| d.algorithm());
        let (hasher, offset) = rehash(&mut data, Hasher::new(algorithm))
            .map_err(ContentError::io("read", &data_path))?;
        Ok(Writer {
            store,
            reference: reference.to_owned(),
            dir,
            data,
            hasher,
            offset,
            expected,
            _lock: lock,
        })
    }

    /// The ref this writer was opened with.
    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// How many bytes the ingest holds: those an earlier writer left plus
    /// those written through this one.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Verifies the data and publishes it as a blob, returning its digest.
    ///
    /// `expected` overrides the digest and size given when the writer was
    /// opened; with neither, any data is accepted under its own digest. On a
    /// size or digest mismatch the data is discarded and nothing becomes
    /// visible. Committing a blob that is already stored succeeds.
    pub fn commit(mut self, expected: Option<(Digest, u64)>) -> Result<Digest> {
        let data_path = self.dir.join("data");
        self.data
            .sync_all()
            .map_err(ContentError::io("fsync", &data_path))?;
        let expected = expected.or(self.expected.take());
        if let Some((_, size)) = &expected
            && *size != self.offset
        {
            self.discard();
            return Err(ContentError::SizeMismatch {
                expected: *size,
                actual: self.offset,
            });
        }
        let actual = self.hasher.clone().finish();
        if let Some((digest, _)) = expected
            && digest != actual
        {
            self.discard();
            return Err(ContentError::DigestMismatch {
                expected: digest,
                actual,
            });
        }
        self.publish(&actual)?;
        self.discard();
        Ok(actual)
    }

    /// Renames the verified data into `blobs/`, unless an identical blob is
    /// already there.
    fn publish(&self, digest: &Digest) -> Result<()> {
        let target = self.store.blob_path(digest);
        if target.exists() {
            return Ok(());
        }
        let parent = target.parent().expect("a blob path has a parent");
        fs::create_dir_all(parent).map_err(ContentError::io("create directory", parent))?;
        let data_path = self.dir.join("data");
        // Blobs are immutable; say so on disk as the OCI layout tools do.
        self.data
            .set_permissions(fs::Permissions::from_mode(0o444))
            .map_err(ContentError::io("chmod", &data_path))?;
        // A concurrent writer of the same blob may win the race; replacing
        // its file with identical bytes is harmless, and readers holding
        // the old file keep it.
        fs::rename(&data_path, &target).map_err(ContentError::io("rename", &data_path))?;
        sync_dir(parent)
    }

    /// Removes the ingest directory, still holding its lock. Only called
    /// once the data is published or known to be wrong, so a failure here
    /// leaves at worst a stale ingest that `abort` or a resume clears up.
    fn discard(&self) {
        let _ = fs::remove_file(self.dir.join("data"));
        let _ = fs::remove_file(self.dir.join("expected"));
        let _ = fs::remove_dir(&self.dir);
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.data.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.offset += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.data.flush()
    }
}

/// Feeds the bytes already in `data` to `hasher`, leaving the file
/// positioned at its end: how a resumed writer catches up.
fn rehash(data: &mut File, mut hasher: Hasher) -> io::Result<(Hasher, u64)> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut offset = 0u64;
    loop {
        let n = match data.read(&mut buf) {
            Ok(0) => return Ok((hasher, offset)),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        offset += n as u64;
    }
}
