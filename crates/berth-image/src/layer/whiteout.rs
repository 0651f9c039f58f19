//! Whiteouts: `.wh.<name>` removes `<name>`, `.wh..wh..opq` empties its
//! directory of content this layer did not write.

use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::error::{InvalidEntry, LayerError};
use super::{Applier, sys};

const OPAQUE: &[u8] = b".wh..wh..opq";
const PREFIX: &[u8] = b".wh.";

impl Applier<'_> {
    pub(super) fn apply_whiteout(&mut self, rel: &Path, shown: &str) -> Result<(), LayerError> {
        let name = rel.file_name().map(|n| n.as_bytes()).unwrap_or_default();
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        let io_err = |op, source| LayerError::Io {
            path: rel.to_path_buf(),
            op,
            source,
        };
        let dir = match berth_sys::fs::open_in_root(
            &self.root,
            parent_rel,
            libc::O_PATH | libc::O_DIRECTORY,
            0,
        ) {
            Ok(d) => d,
            // Nothing below to hide.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
            Err(e) => return Err(io_err("open whiteout's directory", e)),
        };
        if self.opts.overlay_whiteouts {
            return self.overlay_whiteout(&dir, name, rel, shown);
        }
        if name == OPAQUE {
            for child in sys::list_dir(&dir).map_err(|e| io_err("list directory", e))? {
                let child_rel = parent_rel.join(std::ffi::OsStr::from_bytes(child.to_bytes()));
                if self.created.contains(&child_rel) {
                    continue;
                }
                sys::remove_all_at(dir.as_raw_fd(), &child)
                    .map_err(|e| io_err("remove for opaque directory", e))?;
            }
            return Ok(());
        }
        let hidden = hidden_name(name, rel, shown)?;
        sys::remove_all_at(dir.as_raw_fd(), &hidden)
            .map_err(|e| io_err("remove whited-out entry", e))
    }

    /// Records a whiteout the way overlayfs reads it.
    fn overlay_whiteout(
        &mut self,
        dir: &std::os::fd::OwnedFd,
        name: &[u8],
        rel: &Path,
        shown: &str,
    ) -> Result<(), LayerError> {
        let io_err = |op, source| LayerError::Io {
            path: rel.to_path_buf(),
            op,
            source,
        };
        if name == OPAQUE {
            let key = c"trusted.overlay.opaque";
            return sys::setxattr_path_fd(dir, key, b"y")
                .map_err(|e| io_err("mark directory opaque", e));
        }
        let hidden = hidden_name(name, rel, shown)?;
        // Whatever this layer put there before is replaced by the marker.
        sys::remove_all_at(dir.as_raw_fd(), &hidden)
            .map_err(|e| io_err("replace with whiteout", e))?;
        sys::mknod_at(dir.as_raw_fd(), &hidden, libc::S_IFCHR, libc::makedev(0, 0))
            .map_err(|e| io_err("create whiteout device", e))
    }
}

/// The name a `.wh.<name>` marker hides, refusing `.`, `..` and empty.
fn hidden_name(marker: &[u8], rel: &Path, shown: &str) -> Result<std::ffi::CString, LayerError> {
    let hidden = &marker[PREFIX.len()..];
    if hidden.is_empty() || hidden == b"." || hidden == b".." {
        return Err(LayerError::InvalidEntry {
            path: shown.to_string(),
            reason: InvalidEntry::BadWhiteout,
        });
    }
    sys::cname(std::ffi::OsStr::from_bytes(hidden)).map_err(|source| LayerError::Io {
        path: rel.to_path_buf(),
        op: "whiteout name",
        source,
    })
}
