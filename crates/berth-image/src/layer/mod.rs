//! Applying a layer: unpacking an OCI/Docker layer tar stream into a
//! directory, confined to it as if chrooted there.
//!
//! [`apply_layer`] detects the compression (gzip, zstd or none) from the
//! stream's first bytes and walks the tar entries itself — the `tar`
//! crate's own `unpack` is never used, because every path must be
//! controlled here. Each entry's parent directory is resolved inside the
//! target with `openat2(RESOLVE_IN_ROOT)` (so `..`, absolute paths and
//! symlinks planted by earlier entries stay inside), and the last component
//! is created with `*at` syscalls relative to that parent's descriptor.
//!
//! Whiteouts follow the OCI image spec: `.wh.<name>` removes `<name>`, and
//! `.wh..wh..opq` empties its directory of lower-layer content. Because the
//! layer is applied into one directory that already holds the lower layers,
//! "lower content" is approximated as "whatever this layer has not itself
//! created so far": an opaque marker keeps every path this layer created
//! before it, along with the directories that lead to them (and so, as a
//! simplification, lower content inside a directory the layer wrote into
//! before the marker survives).

mod diff;
mod entry;
mod error;
mod sys;
mod whiteout;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

pub use diff::{strip, write_diff};
pub use error::{InvalidEntry, LayerError};

/// The longest entry path (or link target) accepted, in bytes.
pub const MAX_PATH_LEN: usize = 4096;

/// How a layer is applied.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Entries beyond this many make the whole layer fail.
    pub max_entries: usize,
    /// Create character/block devices and FIFOs; when false they are
    /// skipped and counted in [`ApplyStats::skipped_devices`].
    pub allow_devices: bool,
    /// Give entries the uid/gid from their headers (needs root).
    pub preserve_owner: bool,
    /// Record whiteouts as overlayfs does (a 0:0 character device for
    /// `.wh.<name>`, the `trusted.overlay.opaque` xattr for an opaque
    /// directory) instead of removing lower content: for a layer unpacked
    /// into its own, empty directory that becomes an overlay lower layer.
    pub overlay_whiteouts: bool,
    /// Compute the diff ID ([`ApplyStats::diff_id`]). A caller that has
    /// already verified the uncompressed stream's digest can skip it.
    pub compute_diff_id: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        ApplyOptions {
            max_entries: 1_000_000,
            allow_devices: root,
            preserve_owner: root,
            overlay_whiteouts: false,
            compute_diff_id: true,
        }
    }
}

/// What applying a layer did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Tar entries read, whiteouts included.
    pub entries: u64,
    /// Bytes of regular-file content written.
    pub bytes: u64,
    /// Whiteout and opaque markers applied.
    pub whiteouts: u64,
    /// Device nodes and FIFOs skipped because devices were not allowed.
    pub skipped_devices: u64,
    /// `security.*`/`trusted.*` xattrs that could not be set and were dropped.
    pub skipped_xattrs: u64,
    /// The sha256 of the uncompressed tar stream: the layer's diff ID.
    pub diff_id: Option<berth_model::Digest>,
}

/// Unpacks the layer tar stream `reader` (gzip, zstd or uncompressed) into
/// the directory `target`, confined to it. Entries replace what is already
/// there; whiteouts remove lower content. Directory mtimes are set last.
pub fn apply_layer(
    reader: impl Read,
    target: &Path,
    opts: &ApplyOptions,
) -> Result<ApplyStats, LayerError> {
    let root = berth_sys::fs::open_dir_path(target).map_err(|source| LayerError::Target {
        path: target.to_path_buf(),
        source,
    })?;
    let mut stream = ZeroTail::new(HashingReader::new(
        decompress(reader)?,
        opts.compute_diff_id,
    ));
    let mut applier = Applier {
        root,
        opts,
        stats: ApplyStats::default(),
        created: HashSet::new(),
        dir_times: Vec::new(),
    };
    let data_end = applier.run(&mut stream)?;
    if let Some(end) = stream.end
        && end < data_end
    {
        return Err(LayerError::Malformed {
            source: io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the stream ends at byte {end}, inside an entry's data (which runs to {data_end})"
                ),
            ),
        });
    }
    // The diff ID covers the whole stream, tar's end-of-archive padding
    // included, which the tar reader leaves unread.
    io::copy(&mut stream, &mut io::sink()).map_err(|source| LayerError::Malformed { source })?;
    applier.fix_dir_times()?;
    applier.stats.diff_id = stream.inner.digest();
    Ok(applier.stats)
}

/// Some writers (Debian's umoci 0.4.7) end a layer right after the last
/// file's data, without the padding to 512 bytes or the two zero blocks
/// that close a tar. Every byte of content is there, so such a stream is
/// read as if it had been closed: up to 1535 zero bytes follow its end.
/// The diff ID is still that of the bytes actually sent, and a stream that
/// ends inside an entry's data is still an error ([`ZeroTail::end`]).
struct ZeroTail<R> {
    inner: R,
    /// Bytes read from `inner`.
    read: u64,
    /// Where `inner` ended, once it has.
    end: Option<u64>,
    tail: usize,
}

impl<R> ZeroTail<R> {
    const MAX_TAIL: usize = 511 + 1024;

    fn new(inner: R) -> Self {
        ZeroTail {
            inner,
            read: 0,
            end: None,
            tail: 0,
        }
    }
}

impl<R: Read> Read for ZeroTail<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.end.is_none() {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() {
                self.read += n as u64;
                return Ok(n);
            }
            self.end = Some(self.read);
        }
        let n = buf.len().min(Self::MAX_TAIL - self.tail);
        buf[..n].fill(0);
        self.tail += n;
        Ok(n)
    }
}

/// A reader that hashes what passes through it, when asked to.
struct HashingReader<R> {
    inner: R,
    hash: Option<sha2::Sha256>,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R, hash: bool) -> Self {
        HashingReader {
            inner,
            hash: hash.then(<sha2::Sha256 as sha2::Digest>::new),
        }
    }

    fn digest(self) -> Option<berth_model::Digest> {
        self.hash.map(crate::content::digest_from_sha256)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(hash) = &mut self.hash {
            sha2::Digest::update(hash, &buf[..n]);
        }
        Ok(n)
    }
}

/// `reader` decompressed: gzip and zstd are detected by their magic bytes,
/// anything else passes through; bzip2 and xz are refused by name.
pub fn decompress_stream<'a>(reader: impl Read + 'a) -> Result<Box<dyn Read + 'a>, LayerError> {
    decompress(reader)
}

/// Picks the decoder from the stream's magic bytes.
fn decompress<'a>(mut reader: impl Read + 'a) -> Result<Box<dyn Read + 'a>, LayerError> {
    let mut head = [0u8; 6];
    let mut n = 0;
    while n < head.len() {
        match reader.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => return Err(LayerError::Malformed { source }),
        }
    }
    let head = &head[..n];
    let whole = io::Cursor::new(head.to_vec()).chain(reader);
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(whole)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let dec = zstd::stream::read::Decoder::new(whole)
            .map_err(|source| LayerError::Malformed { source })?;
        Ok(Box::new(dec))
    } else if head.starts_with(b"BZh") {
        Err(LayerError::UnsupportedCompression { format: "bzip2" })
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Err(LayerError::UnsupportedCompression { format: "xz" })
    } else {
        Ok(Box::new(whole))
    }
}

/// Turns an entry path into a relative path with only normal components,
/// resolving `.` and `..` lexically and clamping at the root, as a chroot
/// would.
fn normalize(raw: &[u8]) -> Result<PathBuf, InvalidEntry> {
    if raw.len() > MAX_PATH_LEN {
        return Err(InvalidEntry::PathTooLong { len: raw.len() });
    }
    if raw.contains(&0) {
        return Err(InvalidEntry::NulInPath);
    }
    let mut out = PathBuf::new();
    for c in
        Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(raw)).components()
    {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Ok(out)
}

/// The state of one application.
struct Applier<'o> {
    root: OwnedFd,
    opts: &'o ApplyOptions,
    stats: ApplyStats,
    /// Paths this layer created, with their ancestors, for opaque markers.
    created: HashSet<PathBuf>,
    /// Directories whose mtime is set once their children are written.
    dir_times: Vec<(PathBuf, i64)>,
}

impl Applier<'_> {
    /// Applies every entry; returns where the last entry's data ends in
    /// the stream.
    fn run(&mut self, stream: &mut dyn Read) -> Result<u64, LayerError> {
        let mut archive = tar::Archive::new(stream);
        let mut data_end = 0;
        let entries = archive
            .entries()
            .map_err(|source| LayerError::Malformed { source })?;
        for entry in entries {
            let entry = entry.map_err(|source| LayerError::Malformed { source })?;
            self.stats.entries += 1;
            if self.stats.entries > self.opts.max_entries as u64 {
                return Err(LayerError::TooManyEntries {
                    limit: self.opts.max_entries,
                });
            }
            let size = entry.header().entry_size().unwrap_or(0);
            data_end = data_end.max(entry.raw_file_position() + size);
            self.apply_entry(entry)?;
        }
        Ok(data_end)
    }

    /// Records `rel` and its ancestors as written by this layer.
    fn mark_created(&mut self, rel: &Path) {
        let mut p = rel;
        loop {
            if !self.created.insert(p.to_path_buf()) {
                break;
            }
            match p.parent() {
                Some(parent) => p = parent,
                None => break,
            }
        }
    }

    fn fix_dir_times(&mut self) -> Result<(), LayerError> {
        for (rel, mtime) in std::mem::take(&mut self.dir_times) {
            let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
                continue;
            };
            let io_err = |op, source| LayerError::Io {
                path: rel.clone(),
                op,
                source,
            };
            let dir = match berth_sys::fs::open_in_root(
                &self.root,
                parent,
                libc::O_PATH | libc::O_DIRECTORY,
                0,
            ) {
                Ok(d) => d,
                // A later whiteout removed it; nothing to fix.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(e) => return Err(io_err("open parent directory", e)),
            };
            let cname = sys::cname(name).map_err(|e| io_err("set mtime", e))?;
            match sys::utimes_at(dir.as_raw_fd(), &cname, mtime) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(io_err("set mtime", e)),
            }
        }
        Ok(())
    }
}
