//! A layer from an overlay upper directory: what a container (or a build
//! step) changed, in the image format.

use std::io::Write;
use std::path::Path;

/// Writes the overlay upper directory `upper` as a layer tar: overlayfs's
/// whiteouts (0:0 character devices, opaque directories) become the
/// `.wh.` entries of the image format. Paths `skip` names are left out.
pub fn write_diff(
    upper: &Path,
    out: &mut dyn Write,
    skip: &dyn Fn(&str) -> bool,
) -> std::io::Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    walk(&mut b, upper, "", skip)?;
    b.finish()
}

fn opaque(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    let mut buf = [0u8; 4];
    for name in [c"trusted.overlay.opaque", c"user.overlay.opaque"] {
        // SAFETY: valid NUL-terminated strings and a buffer of its length.
        let n = unsafe {
            libc::lgetxattr(
                path.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n == 1 && buf[0] == b'y' {
            return true;
        }
    }
    false
}

fn empty_entry<W: Write>(b: &mut tar::Builder<W>, name: &str) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(0);
    h.set_mode(0o600);
    b.append_data(&mut h, name, std::io::empty())
}

fn walk<W: Write>(
    b: &mut tar::Builder<W>,
    dir: &Path,
    rel: &str,
    skip: &dyn Fn(&str) -> bool,
) -> std::io::Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if skip(&path) {
            continue;
        }
        let meta = e.path().symlink_metadata()?;
        if meta.file_type().is_char_device() && meta.rdev() == 0 {
            let parent = if rel.is_empty() {
                String::new()
            } else {
                format!("{rel}/")
            };
            empty_entry(b, &format!("{parent}.wh.{name}"))?;
            continue;
        }
        if meta.is_dir() && !opaque(&e.path()) && only_skipped(&e.path(), &path, skip) {
            // Copied up only to hold what is skipped (the mount points of
            // /etc/hosts and the like): not a change.
            continue;
        }
        b.append_path_with_name(e.path(), &path)?;
        if meta.is_dir() {
            if opaque(&e.path()) {
                empty_entry(b, &format!("{path}/.wh..wh..opq"))?;
            }
            walk(b, &e.path(), &path, skip)?;
        }
    }
    Ok(())
}

/// Removes from the upper directory `upper` what [`write_diff`] leaves
/// out (the paths `skip` names, and directories that held only those), so
/// that the directory can serve as the layer's snapshot as it is.
pub fn strip(upper: &Path, skip: &dyn Fn(&str) -> bool) -> std::io::Result<()> {
    strip_in(upper, "", skip).map(drop)
}

/// Strips `dir`: whether it held entries and holds none now.
fn strip_in(dir: &Path, rel: &str, skip: &dyn Fn(&str) -> bool) -> std::io::Result<bool> {
    let mut had = false;
    for e in std::fs::read_dir(dir)?.flatten() {
        had = true;
        let path = if rel.is_empty() {
            e.file_name().to_string_lossy().into_owned()
        } else {
            format!("{rel}/{}", e.file_name().to_string_lossy())
        };
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if skip(&path) {
            if is_dir {
                std::fs::remove_dir_all(e.path())?;
            } else {
                std::fs::remove_file(e.path())?;
            }
        } else if is_dir && !opaque(&e.path()) && strip_in(&e.path(), &path, skip)? {
            std::fs::remove_dir(e.path())?;
        }
    }
    Ok(had && std::fs::read_dir(dir)?.next().is_none())
}

/// Whether the directory `dir` (at `rel`) holds entries and every one of
/// them, recursively, is skipped.
fn only_skipped(dir: &Path, rel: &str, skip: &dyn Fn(&str) -> bool) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let mut any = false;
    for e in entries.flatten() {
        any = true;
        let path = format!("{rel}/{}", e.file_name().to_string_lossy());
        if skip(&path) {
            continue;
        }
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if !is_dir || opaque(&e.path()) || !only_skipped(&e.path(), &path, skip) {
            return false;
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whiteouts_become_image_whiteouts() {
        let dir = tempfile::tempdir().unwrap();
        let upper = dir.path();
        std::fs::create_dir_all(upper.join("etc/new")).unwrap();
        std::fs::write(upper.join("etc/new/f"), "x").unwrap();
        std::fs::write(upper.join("etc/hostname"), "").unwrap();
        let gone = std::ffi::CString::new(upper.join("etc/gone").to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mknod(gone.as_ptr(), libc::S_IFCHR, 0) }, 0);
        let mut tar_bytes = Vec::new();
        write_diff(upper, &mut tar_bytes, &|p| p == "etc/hostname").unwrap();
        let mut a = tar::Archive::new(&tar_bytes[..]);
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, vec!["etc", "etc/.wh.gone", "etc/new", "etc/new/f"]);
    }

    #[test]
    fn stripping_leaves_what_the_diff_holds() {
        let dir = tempfile::tempdir().unwrap();
        let upper = dir.path();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/hosts"), "").unwrap();
        std::fs::create_dir_all(upper.join("made/empty")).unwrap();
        std::fs::create_dir_all(upper.join("app")).unwrap();
        std::fs::write(upper.join("app/x"), "x").unwrap();
        strip(upper, &|p: &str| p == "etc/hosts").unwrap();
        assert!(!upper.join("etc").exists());
        assert!(upper.join("made/empty").is_dir());
        assert!(upper.join("app/x").is_file());
    }

    #[test]
    fn directories_holding_only_skipped_files_are_no_change() {
        let dir = tempfile::tempdir().unwrap();
        let upper = dir.path();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/hosts"), "").unwrap();
        std::fs::create_dir_all(upper.join("empty")).unwrap();
        let mut tar_bytes = Vec::new();
        write_diff(upper, &mut tar_bytes, &|p: &str| p == "etc/hosts").unwrap();
        let names: Vec<String> = tar::Archive::new(&tar_bytes[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, vec!["empty"]);
    }
}
