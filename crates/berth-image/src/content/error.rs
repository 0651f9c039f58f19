//! The content store's errors.

use std::io;
use std::path::PathBuf;

use berth_model::{Digest, ErrorKind};

/// What went wrong in the content store, with the digest, ref or path it
/// concerns.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// No blob with this digest is stored.
    #[error("blob {digest} not found")]
    NotFound {
        /// The digest asked for.
        digest: Digest,
    },
    /// The data written does not hash to the digest it was expected to have;
    /// it was discarded.
    #[error("content digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The digest the caller announced.
        expected: Digest,
        /// The digest of the data actually written.
        actual: Digest,
    },
    /// The data written is not as long as expected; it was discarded.
    #[error("content size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The size the caller announced.
        expected: u64,
        /// The number of bytes actually written.
        actual: u64,
    },
    /// An ingest ref is not usable as a single path component.
    #[error("invalid ingest ref {reference:?}: {reason}")]
    InvalidRef {
        /// The rejected ref.
        reference: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// Another writer holds this ingest ref.
    #[error("ingest ref {reference:?} is being written by another writer")]
    Locked {
        /// The ref in use.
        reference: String,
    },
    /// A document (manifest, index, config) is larger than berth reads.
    #[error("blob {digest} is {size} bytes, more than the {limit} a manifest or config may have")]
    TooLarge {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A filesystem operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (`open`, `rename`, ...).
        op: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl ContentError {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ContentError::NotFound { .. } => ErrorKind::NotFound,
            ContentError::DigestMismatch { .. }
            | ContentError::SizeMismatch { .. }
            | ContentError::InvalidRef { .. }
            | ContentError::TooLarge { .. } => ErrorKind::InvalidArgument,
            ContentError::Locked { .. } => ErrorKind::Unavailable,
            ContentError::Io { .. } => ErrorKind::Internal,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| ContentError::Io { op, path, source }
    }
}

/// The content store's result type.
pub type Result<T, E = ContentError> = std::result::Result<T, E>;
