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
        let hidden = &name[PREFIX.len()..];
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(LayerError::InvalidEntry {
                path: shown.to_string(),
                reason: InvalidEntry::BadWhiteout,
            });
        }
        let hidden = sys::cname(std::ffi::OsStr::from_bytes(hidden))
            .map_err(|e| io_err("whiteout name", e))?;
        sys::remove_all_at(dir.as_raw_fd(), &hidden)
            .map_err(|e| io_err("remove whited-out entry", e))
    }
}
