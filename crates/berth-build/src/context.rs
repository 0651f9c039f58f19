//! Where COPY and ADD read files, and the layers they make.
//!
//! A source tree is either the build context (a directory the daemon
//! unpacked from the client's upload), where a path that leaves the tree
//! through `..` or a symlink is an error, or another stage's or image's
//! root filesystem, where paths resolve as if chrooted there. Sources are
//! hashed for the cache (names, modes and contents, never times) and
//! written straight into a layer tar under the destination.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::ignore::IgnoreRules;

/// How paths resolve in a source tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confine {
    /// A path that leaves the tree is an error (the build context).
    Beneath,
    /// Paths resolve as in a chroot (an image's root filesystem).
    InRoot,
}

/// A tree COPY reads from.
pub struct Tree<'a> {
    /// Its directory.
    pub root: &'a Path,
    /// How paths in it resolve.
    pub confine: Confine,
    /// Paths left out (the context's `.dockerignore`).
    pub ignore: Option<&'a IgnoreRules>,
    /// Paths COPY `--exclude` leaves out of what it copies.
    pub exclude: Option<&'a IgnoreRules>,
}

/// One source matched in a tree.
#[derive(Debug, Clone)]
pub struct Matched {
    /// Its path relative to the tree, after symlinks (`a/b`; empty: the
    /// root).
    pub rel: String,
    /// Where it is on this host.
    pub path: PathBuf,
    /// It is a directory (whose contents are copied).
    pub dir: bool,
    /// Its name as matched, before symlinks (what a copy is called).
    pub name: String,
}

/// Whether `s` has glob characters.
pub fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Cleans a path lexically: no `.`, no empty components, `..` applied;
/// `None` when `..` climbs above the start.
pub fn clean(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

impl Tree<'_> {
    fn root_fd(&self) -> io::Result<OwnedFd> {
        berth_sys::fs::open_dir_path(self.root)
    }

    /// Resolves `rel` in the tree (following symlinks as the confinement
    /// allows) to its real path relative to the root.
    fn resolve(&self, root: &OwnedFd, rel: &str) -> io::Result<String> {
        let flags = libc::O_PATH;
        let fd = match self.confine {
            Confine::Beneath => berth_sys::fs::open_beneath(root, Path::new(rel), flags, 0)?,
            Confine::InRoot => berth_sys::fs::open_in_root(root, Path::new(rel), flags, 0)?,
        };
        let real = fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
        let root_real = fs::read_link(format!("/proc/self/fd/{}", root.as_raw_fd()))?;
        let inside = real
            .strip_prefix(&root_real)
            .map_err(|_| io::Error::from_raw_os_error(libc::EXDEV))?;
        Ok(inside.to_string_lossy().into_owned())
    }

    fn excluded(&self, rel: &str) -> bool {
        self.excluded_in(rel, "")
    }

    /// Whether `rel` is left out of a copy of the source at `base`:
    /// `.dockerignore` speaks of context paths, `--exclude` of paths
    /// inside the source.
    fn excluded_in(&self, rel: &str, base: &str) -> bool {
        let inside = inside(rel, base);
        !rel.is_empty()
            && (self.ignore.is_some_and(|i| i.excluded(rel))
                || self
                    .exclude
                    .is_some_and(|i| !inside.is_empty() && i.excluded(inside)))
    }

    /// Whether an excluded directory must still be walked, for an
    /// exception below it.
    fn must_descend(&self, rel: &str, base: &str) -> bool {
        let inside = inside(rel, base);
        self.ignore
            .is_none_or(|i| !i.excluded(rel) || i.must_descend(rel))
            && self
                .exclude
                .is_none_or(|i| !i.excluded(inside) || i.must_descend(inside))
    }

    /// The sources `pattern` names: one path, or every path its globs
    /// match. Errors name the source as the user wrote it.
    pub fn matches(&self, pattern: &str) -> Result<Vec<Matched>, String> {
        let Some(cleaned) = clean(pattern.trim_start_matches('/')) else {
            return Err(format!(
                "forbidden path outside the build context: {pattern}"
            ));
        };
        let root = self
            .root_fd()
            .map_err(|e| format!("open {}: {e}", self.root.display()))?;
        let candidates = if has_glob(&cleaned) {
            let mut found = Vec::new();
            self.glob("", &cleaned.split('/').collect::<Vec<_>>(), &mut found);
            found.sort();
            if found.is_empty() {
                return Err(format!(
                    "no source files were specified: {pattern} matches nothing"
                ));
            }
            found
        } else {
            vec![cleaned]
        };
        let mut out = Vec::new();
        for rel in candidates {
            let real = self.resolve(&root, &rel).map_err(|e| match e.raw_os_error() {
                Some(libc::ENOENT) | Some(libc::ENOTDIR) => {
                    format!("\"{pattern}\": not found in the build context")
                }
                Some(libc::EXDEV) => format!(
                    "forbidden path outside the build context: {pattern} (a symlink leads out of it)"
                ),
                _ => format!("{pattern}: {e}"),
            })?;
            if self.excluded(&real) {
                return Err(format!(
                    "\"{pattern}\": not found: it is excluded by .dockerignore"
                ));
            }
            let path = self.root.join(&real);
            let dir = fs::metadata(&path).map(|m| m.is_dir()).unwrap_or(false);
            let name = rel.rsplit('/').next().unwrap_or_default().to_owned();
            out.push(Matched {
                rel: real,
                path,
                dir,
                name,
            });
        }
        Ok(out)
    }

    fn glob(&self, dir: &str, parts: &[&str], found: &mut Vec<String>) {
        let Some((first, rest)) = parts.split_first() else {
            return;
        };
        let here = if dir.is_empty() {
            self.root.to_path_buf()
        } else {
            self.root.join(dir)
        };
        let join = |name: &str| {
            if dir.is_empty() {
                name.to_owned()
            } else {
                format!("{dir}/{name}")
            }
        };
        if !has_glob(first) {
            let rel = join(first);
            if rest.is_empty() {
                if fs::symlink_metadata(self.root.join(&rel)).is_ok() && !self.excluded(&rel) {
                    found.push(rel);
                }
            } else {
                self.glob(&rel, rest, found);
            }
            return;
        }
        let Ok(entries) = fs::read_dir(&here) else {
            return;
        };
        let glob = crate::ignore::ComponentGlob::new(first);
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !glob.matches(&name) {
                continue;
            }
            let rel = join(&name);
            if self.excluded(&rel) {
                continue;
            }
            if rest.is_empty() {
                found.push(rel);
            } else if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                self.glob(&rel, rest, found);
            }
        }
    }

    /// Hashes what copying `m` would copy: names, types, modes, sizes,
    /// link targets and contents (not times or owners).
    pub fn hash(&self, m: &Matched, h: &mut Sha256) -> io::Result<()> {
        let meta = fs::metadata(&m.path)?;
        if meta.is_dir() {
            h.update(b"dir\0");
            self.walk(&m.path, &m.rel, &mut |rel, path, meta| {
                h.update(rel.as_bytes());
                h.update([0]);
                h.update(meta.mode().to_le_bytes());
                if meta.file_type().is_symlink() {
                    h.update(fs::read_link(path)?.as_os_str().as_encoded_bytes());
                } else if meta.is_file() {
                    hash_file(path, h)?;
                }
                h.update([0xff]);
                Ok(())
            })
        } else {
            h.update(b"file\0");
            h.update(meta.mode().to_le_bytes());
            hash_file(&m.path, h)
        }
    }

    /// Visits every entry below `dir` (not following symlinks, skipping
    /// ignored paths), parents before children, in name order.
    fn walk(
        &self,
        dir: &Path,
        rel: &str,
        visit: &mut dyn FnMut(&str, &Path, &fs::Metadata) -> io::Result<()>,
    ) -> io::Result<()> {
        self.walk_from(dir, rel, rel, visit)
    }

    fn walk_from(
        &self,
        dir: &Path,
        rel: &str,
        base: &str,
        visit: &mut dyn FnMut(&str, &Path, &fs::Metadata) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut entries: Vec<_> = fs::read_dir(dir)?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let child_rel = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let path = e.path();
            let meta = fs::symlink_metadata(&path)?;
            let excluded = self.excluded_in(&child_rel, base);
            if excluded && !(meta.is_dir() && self.must_descend(&child_rel, base)) {
                continue;
            }
            if !excluded {
                visit(&child_rel, &path, &meta)?;
            }
            if meta.is_dir() {
                self.walk_from(&path, &child_rel, base, visit)?;
            }
        }
        Ok(())
    }
}

/// `rel` relative to `base` (both context paths).
fn inside<'a>(rel: &'a str, base: &str) -> &'a str {
    if base.is_empty() {
        return rel;
    }
    rel.strip_prefix(base)
        .map(|r| r.trim_start_matches('/'))
        .unwrap_or(rel)
}

fn hash_file(path: &Path, h: &mut Sha256) -> io::Result<()> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        h.update(&buf[..n]);
    }
}

/// How copied files are owned and moded.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ownership {
    /// `--chown` (else 0:0).
    pub owner: Option<(u32, u32)>,
    /// `--chmod` (else the source's mode).
    pub mode: Option<u32>,
}

/// A header of `kind` owned and moded per `own` (else root and `mode`).
fn header(kind: tar::EntryType, own: Ownership, mode: u32, mtime: i64, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    let (uid, gid) = own.owner.unwrap_or((0, 0));
    h.set_entry_type(kind);
    h.set_uid(uid.into());
    h.set_gid(gid.into());
    h.set_mode(own.mode.unwrap_or(mode));
    h.set_mtime(mtime.max(0) as u64);
    h.set_size(size);
    h
}

/// Writes layer tars: parent directories once, then entries.
pub struct LayerWriter<W: Write> {
    tar: tar::Builder<W>,
    dirs: std::collections::HashSet<String>,
    /// The parent image's root, to copy the metadata of directories that
    /// already exist (so a layer does not change them).
    parent_root: Option<PathBuf>,
}

impl<W: Write> LayerWriter<W> {
    /// A writer into `out`.
    pub fn new(out: W, parent_root: Option<PathBuf>) -> LayerWriter<W> {
        let mut tar = tar::Builder::new(out);
        tar.follow_symlinks(false);
        LayerWriter {
            tar,
            dirs: Default::default(),
            parent_root,
        }
    }

    /// Ends the tar.
    pub fn finish(mut self) -> io::Result<W> {
        self.tar.finish()?;
        self.tar.into_inner()
    }

    /// A directory entry for `name` and each of its parents not written
    /// yet: with the parent image's metadata where it has the directory,
    /// else `owner` and mode 0755.
    pub fn ensure_dir(&mut self, name: &str, own: Ownership) -> io::Result<()> {
        let mut prefix = String::new();
        for part in name.split('/').filter(|p| !p.is_empty()) {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            if self.dirs.contains(&prefix) {
                continue;
            }
            self.dirs.insert(prefix.clone());
            let existing = self
                .parent_root
                .as_ref()
                .and_then(|r| fs::symlink_metadata(r.join(&prefix)).ok())
                .filter(|m| m.is_dir());
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            match existing {
                Some(m) => {
                    h.set_mode(m.mode() & 0o7777);
                    h.set_uid(m.uid().into());
                    h.set_gid(m.gid().into());
                    h.set_mtime(m.mtime().max(0) as u64);
                }
                None => {
                    let (uid, gid) = own.owner.unwrap_or((0, 0));
                    h.set_mode(0o755);
                    h.set_uid(uid.into());
                    h.set_gid(gid.into());
                    h.set_mtime(0);
                }
            }
            self.tar
                .append_data(&mut h, format!("{prefix}/"), io::empty())?;
        }
        Ok(())
    }

    /// Appends the file, symlink or directory at `path` as `name`.
    pub fn append(&mut self, name: &str, path: &Path, own: Ownership) -> io::Result<()> {
        let meta = fs::symlink_metadata(path)?;
        if let Some((parent, _)) = name.rsplit_once('/') {
            self.ensure_dir(parent, own)?;
        }
        let ft = meta.file_type();
        let mut h = header(
            tar::EntryType::Regular,
            own,
            meta.mode() & 0o7777,
            meta.mtime(),
            0,
        );
        if ft.is_dir() {
            if self.dirs.insert(name.to_owned()) {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                self.tar
                    .append_data(&mut h, format!("{name}/"), io::empty())?;
            }
        } else if ft.is_symlink() {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            h.set_mode(0o777);
            let target = fs::read_link(path)?;
            self.tar.append_link(&mut h, name, target)?;
        } else if ft.is_file() {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(meta.len());
            self.tar.append_data(&mut h, name, File::open(path)?)?;
        } else if ft.is_fifo() {
            h.set_entry_type(tar::EntryType::Fifo);
            h.set_size(0);
            self.tar.append_data(&mut h, name, io::empty())?;
        }
        Ok(())
    }

    /// Appends `bytes` as the regular file `name`.
    pub fn append_bytes(&mut self, name: &str, bytes: &[u8], own: Ownership) -> io::Result<()> {
        if let Some((parent, _)) = name.rsplit_once('/') {
            self.ensure_dir(parent, own)?;
        }
        let mut h = header(tar::EntryType::Regular, own, 0o644, 0, bytes.len() as u64);
        self.tar.append_data(&mut h, name, bytes)
    }

    /// Copies the matched source `m` of `tree` to `dest`: a directory's
    /// contents into `dest`, a file as `dest` itself.
    pub fn copy(
        &mut self,
        tree: &Tree<'_>,
        m: &Matched,
        dest: &str,
        own: Ownership,
    ) -> io::Result<()> {
        if m.dir {
            if !dest.is_empty() {
                self.ensure_dir(dest, own)?;
            }
            let mut err = Ok(());
            tree.walk(&m.path, &m.rel, &mut |rel, path, _| {
                let inside = rel
                    .strip_prefix(m.rel.as_str())
                    .unwrap_or(rel)
                    .trim_start_matches('/');
                let name = if dest.is_empty() {
                    inside.to_owned()
                } else {
                    format!("{dest}/{inside}")
                };
                if let Err(e) = self.append(&name, path, own) {
                    err = Err(e);
                }
                Ok(())
            })?;
            err
        } else {
            // The source itself is followed (a symlink copies its target).
            let meta = fs::metadata(&m.path)?;
            if let Some((parent, _)) = dest.rsplit_once('/') {
                self.ensure_dir(parent, own)?;
            }
            let mut h = header(
                tar::EntryType::Regular,
                own,
                meta.mode() & 0o7777,
                meta.mtime(),
                meta.len(),
            );
            self.tar.append_data(&mut h, dest, File::open(&m.path)?)
        }
    }

    /// Extracts the (possibly compressed) tar archive `input` under
    /// `dest`: ADD's local archives. Entries that would leave `dest` are
    /// refused.
    pub fn extract(&mut self, input: impl Read, dest: &str, own: Ownership) -> io::Result<()> {
        let mut archive = tar::Archive::new(input);
        if !dest.is_empty() {
            self.ensure_dir(dest, own)?;
        }
        for entry in archive.entries()? {
            let mut entry = entry?;
            let raw = entry.path()?.to_string_lossy().into_owned();
            let Some(rel) = clean(raw.trim_start_matches('/')) else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("the archive's entry {raw:?} leaves the destination"),
                ));
            };
            if rel.is_empty() {
                continue;
            }
            let name = if dest.is_empty() {
                rel.clone()
            } else {
                format!("{dest}/{rel}")
            };
            if let Some((parent, _)) = name.rsplit_once('/') {
                self.ensure_dir(parent, own)?;
            }
            // A fresh header from the parsed fields: archives in the wild
            // carry odd encodings that the layer reader rejects.
            let src = entry.header();
            let kind = src.entry_type();
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(src.mode().unwrap_or(0o644) & 0o7777);
            let (uid, gid) = own
                .owner
                .unwrap_or((src.uid().unwrap_or(0) as u32, src.gid().unwrap_or(0) as u32));
            h.set_uid(uid.into());
            h.set_gid(gid.into());
            h.set_mtime(src.mtime().unwrap_or(0));
            h.set_size(if kind.is_file() || kind == tar::EntryType::Continuous {
                entry.size()
            } else {
                0
            });
            if kind.is_dir() {
                if !self.dirs.insert(name.clone()) {
                    continue;
                }
                self.tar
                    .append_data(&mut h, format!("{name}/"), io::empty())?;
            } else if kind.is_hard_link() {
                let target = entry
                    .link_name()?
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let Some(t) = clean(target.trim_start_matches('/')) else {
                    continue;
                };
                let t = if dest.is_empty() {
                    t
                } else {
                    format!("{dest}/{t}")
                };
                self.tar.append_link(&mut h, &name, t)?;
            } else if kind.is_symlink() {
                let target = entry.link_name()?.unwrap_or_default().into_owned();
                self.tar.append_link(&mut h, &name, target)?;
            } else if kind.is_file() || kind == tar::EntryType::Continuous {
                self.tar.append_data(&mut h, &name, &mut entry)?;
            } else if kind.is_pax_global_extensions()
                || kind.is_pax_local_extensions()
                || kind.is_gnu_longname()
                || kind.is_gnu_longlink()
            {
                continue;
            } else {
                self.tar.append_data(&mut h, &name, io::empty())?;
            }
        }
        Ok(())
    }
}

/// Whether the start of `head` (decompressed) is a tar header.
pub fn looks_like_tar(head: &[u8]) -> bool {
    head.len() >= 262 && &head[257..262] == b"ustar"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (p, c) in files {
            let path = d.path().join(p);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, c).unwrap();
        }
        d
    }

    #[test]
    fn cleaning() {
        assert_eq!(clean("a/./b//c/../d").as_deref(), Some("a/b/d"));
        assert_eq!(clean("../x"), None);
        assert_eq!(clean(".").as_deref(), Some(""));
    }

    #[test]
    fn sources_match_and_stay_inside() {
        let d = tree_with(&[("a.txt", "a"), ("b.txt", "b"), ("sub/c.md", "c")]);
        std::os::unix::fs::symlink("/etc", d.path().join("out")).unwrap();
        std::os::unix::fs::symlink("sub/c.md", d.path().join("in")).unwrap();
        let t = Tree {
            root: d.path(),
            confine: Confine::Beneath,
            ignore: None,
            exclude: None,
        };
        let m = t.matches("*.txt").unwrap();
        assert_eq!(
            m.iter().map(|m| m.rel.as_str()).collect::<Vec<_>>(),
            ["a.txt", "b.txt"]
        );
        assert!(t.matches("sub").unwrap()[0].dir);
        assert_eq!(t.matches("in").unwrap()[0].rel, "sub/c.md");
        assert!(
            t.matches("../x")
                .unwrap_err()
                .contains("outside the build context")
        );
        assert!(
            t.matches("out/passwd")
                .unwrap_err()
                .contains("outside the build context")
        );
        assert!(t.matches("nope").unwrap_err().contains("not found"));
        assert!(t.matches("*.none").unwrap_err().contains("matches nothing"));
    }

    #[test]
    fn ignored_files_are_not_sources_and_not_hashed() {
        let d = tree_with(&[
            ("keep", "1"),
            ("skip.log", "2"),
            ("dir/x.log", "3"),
            ("dir/y", "4"),
        ]);
        let rules = IgnoreRules::parse("*.log\n**/*.log\n").unwrap();
        let t = Tree {
            root: d.path(),
            confine: Confine::Beneath,
            ignore: Some(&rules),
            exclude: None,
        };
        assert!(t.matches("skip.log").is_err());
        let m = &t.matches(".").unwrap()[0];
        let mut h1 = Sha256::new();
        t.hash(m, &mut h1).unwrap();
        fs::write(d.path().join("dir/x.log"), "changed").unwrap();
        let mut h2 = Sha256::new();
        t.hash(m, &mut h2).unwrap();
        assert_eq!(h1.finalize(), h2.finalize());
        fs::write(d.path().join("dir/y"), "changed").unwrap();
        let mut h3 = Sha256::new();
        t.hash(m, &mut h3).unwrap();
        let mut h4 = Sha256::new();
        t.hash(m, &mut h4).unwrap();
        assert_eq!(h3.finalize(), h4.finalize());
    }

    #[test]
    fn archives_cannot_climb_out() {
        let mut inner = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.as_gnu_mut().unwrap().name[..10].copy_from_slice(b"../escaped");
        h.set_cksum();
        inner.append(&h, &b"x"[..]).unwrap();
        let bytes = inner.into_inner().unwrap();
        let mut w = LayerWriter::new(Vec::new(), None);
        let e = w
            .extract(&bytes[..], "dst", Ownership::default())
            .unwrap_err();
        assert!(e.to_string().contains("leaves the destination"), "{e}");
    }
}
