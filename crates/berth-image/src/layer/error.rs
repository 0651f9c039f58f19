//! The typed error of layer application.

use std::io;
use std::path::PathBuf;

use berth_model::ErrorKind;

/// Why one entry of a layer was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidEntry {
    /// The path is longer than [`super::MAX_PATH_LEN`] bytes.
    #[error("path is {len} bytes long, more than the 4096 allowed")]
    PathTooLong {
        /// The path's length in bytes.
        len: usize,
    },
    /// The path or link target contains a NUL byte.
    #[error("path contains a NUL byte")]
    NulInPath,
    /// A non-directory entry names the layer root itself.
    #[error("entry has no file name")]
    EmptyName,
    /// A whiteout names nothing that can be removed (`.wh.`, `.wh..`).
    #[error("whiteout names no file")]
    BadWhiteout,
    /// A hard link has no target, or its target is the root.
    #[error("hard link has no target")]
    BadLinkTarget,
    /// A header field could not be read or is out of range.
    #[error("bad header field {field}")]
    BadHeader {
        /// The field, e.g. `uid`.
        field: &'static str,
    },
    /// The stream ended inside the entry's data.
    #[error("data truncated: {got} of {expected} bytes")]
    Truncated {
        /// Bytes the header announced.
        expected: u64,
        /// Bytes the stream held.
        got: u64,
    },
}

/// An error applying a layer to a directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayerError {
    /// The layer's compression is recognised but not supported.
    #[error("unsupported layer compression: {format}")]
    UnsupportedCompression {
        /// The format's name, e.g. `bzip2`.
        format: &'static str,
    },
    /// The entry's type (e.g. a GNU sparse file) is not supported.
    #[error("layer entry {path:?}: unsupported entry type {entry_type}")]
    UnsupportedEntry {
        /// The entry's path as written in the layer.
        path: String,
        /// The tar type byte.
        entry_type: u8,
    },
    /// The stream is not a readable (compressed) tar archive.
    #[error("reading layer stream: {source}")]
    Malformed {
        /// The decoder's or tar reader's error.
        #[source]
        source: io::Error,
    },
    /// One entry was refused.
    #[error("layer entry {path:?}: {reason}")]
    InvalidEntry {
        /// The entry's path as written in the layer.
        path: String,
        /// What was wrong with it.
        #[source]
        reason: InvalidEntry,
    },
    /// The layer holds more entries than the limit.
    #[error("layer has more than {limit} entries")]
    TooManyEntries {
        /// The limit, [`super::ApplyOptions::max_entries`].
        limit: usize,
    },
    /// The target directory could not be opened.
    #[error("opening layer target {path:?}: {source}")]
    Target {
        /// The target directory.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: io::Error,
    },
    /// A filesystem operation on an entry failed.
    #[error("layer entry {path:?}: {op}: {source}")]
    Io {
        /// The entry's path inside the target.
        path: PathBuf,
        /// The operation, e.g. `create file`.
        op: &'static str,
        /// The system's error.
        #[source]
        source: io::Error,
    },
    /// Setting an extended attribute failed.
    #[error("layer entry {path:?}: setting xattr {name}: {source}")]
    Xattr {
        /// The entry's path inside the target.
        path: PathBuf,
        /// The attribute's name.
        name: String,
        /// The system's error.
        #[source]
        source: io::Error,
    },
}

impl LayerError {
    /// The error's class.
    pub fn kind(&self) -> ErrorKind {
        match self {
            LayerError::UnsupportedCompression { .. }
            | LayerError::UnsupportedEntry { .. }
            | LayerError::Malformed { .. }
            | LayerError::InvalidEntry { .. }
            | LayerError::TooManyEntries { .. } => ErrorKind::InvalidArgument,
            LayerError::Target { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            LayerError::Target { .. } | LayerError::Io { .. } | LayerError::Xattr { .. } => {
                ErrorKind::Internal
            }
        }
    }
}
