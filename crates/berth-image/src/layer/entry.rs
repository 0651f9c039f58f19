//! Creating one entry: the parent is resolved inside the root, the last
//! component is made with `*at` calls relative to the parent's descriptor.

use std::borrow::Cow;
use std::ffi::{CStr, CString};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use tar::EntryType;

use super::error::{InvalidEntry, LayerError};
use super::{Applier, MAX_PATH_LEN, normalize, sys};

/// What the header (and PAX records) say about an entry's metadata.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    xattrs: Vec<(CString, Vec<u8>)>,
}

fn io_err<'a>(rel: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> LayerError + 'a {
    move |source| LayerError::Io {
        path: rel.to_path_buf(),
        op,
        source,
    }
}

impl Applier<'_> {
    pub(super) fn apply_entry<R: Read>(
        &mut self,
        mut entry: tar::Entry<'_, R>,
    ) -> Result<(), LayerError> {
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let invalid = |reason| LayerError::InvalidEntry {
            path: shown.clone(),
            reason,
        };
        let rel = normalize(&raw).map_err(invalid)?;
        let etype = entry.header().entry_type();
        if rel
            .file_name()
            .is_some_and(|n| n.as_bytes().starts_with(b".wh."))
        {
            self.stats.whiteouts += 1;
            return self.apply_whiteout(&rel, &shown);
        }
        match etype {
            EntryType::Regular
            | EntryType::Continuous
            | EntryType::Directory
            | EntryType::Symlink
            | EntryType::Link => {}
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                if !self.opts.allow_devices {
                    self.stats.skipped_devices += 1;
                    return Ok(());
                }
            }
            // Global PAX headers carry defaults this reader does not need.
            EntryType::XGlobalHeader => return Ok(()),
            other => {
                return Err(LayerError::UnsupportedEntry {
                    path: shown,
                    entry_type: other.as_byte(),
                });
            }
        }
        let meta = read_meta(&mut entry).map_err(invalid)?;
        let Some(name) = rel.file_name() else {
            // The layer's own root (`./`): the target's metadata is the
            // caller's, not the layer's.
            return if etype.is_dir() {
                Ok(())
            } else {
                Err(invalid(InvalidEntry::EmptyName))
            };
        };
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        let parent = berth_sys::fs::mkdir_all_in_root(&self.root, parent_rel, 0o755)
            .map_err(io_err(&rel, "create parent directories"))?;
        let dfd = parent.as_raw_fd();
        let cname = sys::cname(name).map_err(io_err(&rel, "name"))?;
        match etype {
            EntryType::Directory => {
                if !self.clear_slot(dfd, &cname, true, &rel)? {
                    sys::mkdir_at(dfd, &cname, 0o700).map_err(io_err(&rel, "create directory"))?;
                }
                self.set_meta_at(dfd, &cname, &meta, false, &rel)?;
                self.dir_times.push((rel.clone(), meta.mtime));
            }
            EntryType::Symlink => {
                let target = link_name(&entry).map_err(invalid)?;
                self.clear_slot(dfd, &cname, false, &rel)?;
                sys::symlink_at(&target, dfd, &cname).map_err(io_err(&rel, "create symlink"))?;
                self.set_meta_at(dfd, &cname, &meta, true, &rel)?;
            }
            EntryType::Link => {
                let target = link_name(&entry).map_err(invalid)?;
                let target = normalize(target.as_bytes()).map_err(invalid)?;
                self.hard_link(dfd, &cname, &rel, &target)
                    .map_err(|e| match e {
                        LinkError::Invalid(reason) => invalid(reason),
                        LinkError::Layer(e) => e,
                    })?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (kind, dev) = node_kind(etype, entry.header());
                self.clear_slot(dfd, &cname, false, &rel)?;
                sys::mknod_at(dfd, &cname, kind | 0o600, dev)
                    .map_err(io_err(&rel, "create device node"))?;
                self.set_meta_at(dfd, &cname, &meta, false, &rel)?;
            }
            _ => {
                self.clear_slot(dfd, &cname, false, &rel)?;
                let size = entry.size();
                self.write_file(dfd, &cname, &rel, &meta, &mut entry, size)?;
            }
        }
        self.mark_created(&rel);
        Ok(())
    }

    /// Makes room for a new entry at `name`: whatever is there goes, except
    /// a directory that a directory entry replaces, which is kept (its
    /// contents stay). Returns whether such a directory was kept.
    fn clear_slot(
        &self,
        dfd: RawFd,
        name: &CStr,
        is_dir: bool,
        rel: &Path,
    ) -> Result<bool, LayerError> {
        let Some(st) = sys::lstat_at(dfd, name).map_err(io_err(rel, "stat"))? else {
            return Ok(false);
        };
        if is_dir && st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            return Ok(true);
        }
        sys::remove_all_at(dfd, name).map_err(io_err(rel, "remove existing entry"))?;
        Ok(false)
    }

    fn write_file(
        &mut self,
        dfd: RawFd,
        name: &CStr,
        rel: &Path,
        meta: &Meta,
        data: &mut impl Read,
        expected: u64,
    ) -> Result<(), LayerError> {
        let mut file = sys::create_file_at(dfd, name).map_err(io_err(rel, "create file"))?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0u64;
        loop {
            let n = match data.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(LayerError::Malformed { source }),
            };
            file.write_all(&buf[..n])
                .map_err(io_err(rel, "write file"))?;
            got += n as u64;
        }
        if expected != got {
            return Err(LayerError::InvalidEntry {
                path: rel.display().to_string(),
                reason: InvalidEntry::Truncated { expected, got },
            });
        }
        self.stats.bytes += got;
        if self.opts.preserve_owner {
            sys::fchown(&file, meta.uid, meta.gid).map_err(io_err(rel, "chown"))?;
        }
        // After chown, which clears setuid/setgid.
        sys::fchmod(&file, meta.mode).map_err(io_err(rel, "chmod"))?;
        for (k, v) in &meta.xattrs {
            let r = sys::fsetxattr(&file, k, v);
            self.xattr_result(r, k, rel)?;
        }
        sys::futimes(&file, meta.mtime).map_err(io_err(rel, "set mtime"))
    }

    /// Owner, mode (not on symlinks), xattrs and, for non-directories, the
    /// mtime of an entry just created or kept at `name`.
    fn set_meta_at(
        &mut self,
        dfd: RawFd,
        name: &CStr,
        meta: &Meta,
        symlink: bool,
        rel: &Path,
    ) -> Result<(), LayerError> {
        if self.opts.preserve_owner {
            sys::chown_at(dfd, name, meta.uid, meta.gid).map_err(io_err(rel, "chown"))?;
        }
        if !symlink {
            sys::chmod_at(dfd, name, meta.mode).map_err(io_err(rel, "chmod"))?;
        }
        if !meta.xattrs.is_empty() {
            let fd = sys::open_at(dfd, name, libc::O_PATH | libc::O_NOFOLLOW, 0)
                .map_err(io_err(rel, "open for xattrs"))?;
            for (k, v) in &meta.xattrs {
                let r = sys::setxattr_path_fd(&fd, k, v);
                self.xattr_result(r, k, rel)?;
            }
        }
        sys::utimes_at(dfd, name, meta.mtime).map_err(io_err(rel, "set mtime"))
    }

    /// `security.*` and `trusted.*` xattrs often cannot be set (LSM policy,
    /// user namespaces); they are dropped and counted. Others must succeed.
    fn xattr_result(
        &mut self,
        r: io::Result<()>,
        name: &CStr,
        rel: &Path,
    ) -> Result<(), LayerError> {
        let Err(source) = r else { return Ok(()) };
        let bytes = name.to_bytes();
        if bytes.starts_with(b"security.") || bytes.starts_with(b"trusted.") {
            self.stats.skipped_xattrs += 1;
            return Ok(());
        }
        Err(LayerError::Xattr {
            path: rel.to_path_buf(),
            name: String::from_utf8_lossy(bytes).into_owned(),
            source,
        })
    }

    /// Hard-links `name` (in `dfd`) to `target`, which is resolved inside
    /// the root; a symlink as the link's last component is linked itself.
    fn hard_link(
        &self,
        dfd: RawFd,
        name: &CStr,
        rel: &Path,
        target: &Path,
    ) -> Result<(), LinkError> {
        let Some(tname) = target.file_name() else {
            return Err(LinkError::Invalid(InvalidEntry::BadLinkTarget));
        };
        if target == rel {
            return Ok(());
        }
        let tparent = berth_sys::fs::open_in_root(
            &self.root,
            target.parent().unwrap_or(Path::new("")),
            libc::O_PATH | libc::O_DIRECTORY,
            0,
        )
        .map_err(io_err(rel, "open hard link target's directory"))?;
        let tname = sys::cname(tname).map_err(io_err(rel, "name"))?;
        self.clear_slot(dfd, name, false, rel)?;
        sys::link_at(tparent.as_raw_fd(), &tname, dfd, name)
            .map_err(io_err(rel, "create hard link"))?;
        Ok(())
    }
}

enum LinkError {
    Invalid(InvalidEntry),
    Layer(LayerError),
}

impl From<LayerError> for LinkError {
    fn from(e: LayerError) -> Self {
        LinkError::Layer(e)
    }
}

/// The file type bits and device number of a device or FIFO entry. A
/// device number that cannot be read becomes 0:0, which is harmless.
fn node_kind(etype: EntryType, h: &tar::Header) -> (u32, libc::dev_t) {
    let major = h.device_major().ok().flatten().unwrap_or(0);
    let minor = h.device_minor().ok().flatten().unwrap_or(0);
    match etype {
        EntryType::Char => (libc::S_IFCHR, libc::makedev(major, minor)),
        EntryType::Block => (libc::S_IFBLK, libc::makedev(major, minor)),
        _ => (libc::S_IFIFO, 0),
    }
}

fn link_name<R: Read>(entry: &tar::Entry<'_, R>) -> Result<CString, InvalidEntry> {
    let raw: Cow<'_, [u8]> = entry.link_name_bytes().ok_or(InvalidEntry::BadLinkTarget)?;
    if raw.len() > MAX_PATH_LEN {
        return Err(InvalidEntry::PathTooLong { len: raw.len() });
    }
    CString::new(raw.into_owned()).map_err(|_| InvalidEntry::NulInPath)
}

fn bad<E>(field: &'static str) -> impl FnOnce(E) -> InvalidEntry {
    move |_| InvalidEntry::BadHeader { field }
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Meta, InvalidEntry> {
    let h = entry.header();
    let mode = h.mode().map_err(bad("mode"))? & 0o7777;
    let mut uid = h.uid().map_err(bad("uid"))?;
    let mut gid = h.gid().map_err(bad("gid"))?;
    let mut mtime = h.mtime().map_err(bad("mtime"))? as i64;
    let mut xattrs = Vec::new();
    if let Some(pax) = entry.pax_extensions().map_err(bad("pax"))? {
        for ext in pax {
            let ext = ext.map_err(bad("pax"))?;
            let Ok(key) = ext.key() else { continue };
            let value = ext.value_bytes();
            let num = || -> Result<u64, InvalidEntry> {
                let s = std::str::from_utf8(value).map_err(bad("pax"))?;
                let int = s.split('.').next().unwrap_or("");
                int.parse().map_err(bad("pax"))
            };
            if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                // overlayfs reads its own metadata (opaque, redirect,
                // origin) from trusted.overlay.*: a layer must not forge it.
                if name.starts_with("trusted.overlay.") {
                    continue;
                }
                let name = CString::new(name).map_err(|_| InvalidEntry::NulInPath)?;
                xattrs.push((name, value.to_vec()));
            } else if key == "uid" {
                uid = num()?;
            } else if key == "gid" {
                gid = num()?;
            } else if key == "mtime" {
                mtime = num()? as i64;
            }
        }
    }
    let uid = u32::try_from(uid).map_err(bad("uid"))?;
    let gid = u32::try_from(gid).map_err(bad("gid"))?;
    Ok(Meta {
        mode,
        uid,
        gid,
        mtime,
        xattrs,
    })
}
