//! Files: atomic replacement and root-confined resolution.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Replaces `path` with `data` atomically and durably: the data goes to a
/// temporary file in the same directory, is fsynced, renamed over `path`, and
/// the directory is fsynced. Readers see the old or the new content, never a
/// mix, and a crash after return loses nothing.
pub fn atomic_write(path: &Path, data: &[u8]) -> io::Result<()> {
    replace(path, data, 0o600, true)
}

/// Replaces `path` with `data` atomically but not durably (no fsync), with
/// permissions `mode`: for files rebuilt from durable state every time they
/// are used (a container's `/etc/hosts` at each start, the runtime's state
/// under /run). Readers see the old or the new content; after a host crash
/// the file may be old, new or empty, and is rebuilt before it is read.
pub fn replace_file(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    replace(path, data, mode, false)
}

fn replace(path: &Path, data: &[u8], mode: u32, durable: bool) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    // Unique per process and per call, so concurrent writers of one path
    // (threads of a server) never share a temporary file.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tmp_name.push(format!(".tmp{}-{seq}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)?;
        // The mode as asked, whatever the umask.
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(data)?;
        if !durable {
            return std::fs::rename(&tmp, path);
        }
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Opens `path` as resolved inside `root`: absolute symlinks and `..` are
/// confined to `root`, as if the calling process were chrooted there.
///
/// `flags` are `open(2)` flags (`O_CLOEXEC` is always added); `mode` applies
/// when `O_CREAT` is given.
pub fn open_in_root(root: &OwnedFd, path: &Path, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    const RESOLVE_IN_ROOT: u64 = 0x10;
    openat2(root, path, flags, mode, RESOLVE_IN_ROOT)
}

/// Opens `path` below `root`, failing (`EXDEV`) where `..`, an absolute
/// path or a symlink would lead out of `root`: for trees whose escapes are
/// errors (a build context), not paths to re-read as if chrooted.
pub fn open_beneath(root: &OwnedFd, path: &Path, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    const RESOLVE_BENEATH: u64 = 0x08;
    openat2(root, path, flags, mode, RESOLVE_BENEATH)
}

fn openat2(
    root: &OwnedFd,
    path: &Path,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let c = CString::new(rel.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: if flags & libc::O_CREAT != 0 {
            mode as u64
        } else {
            0
        },
        resolve: resolve | RESOLVE_NO_MAGICLINKS,
    };
    use std::os::fd::AsRawFd;
    // SAFETY: `how` and `c` outlive the call; the kernel copies both.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Opens a directory as an `O_PATH` handle, for use as the root of
/// [`open_in_root`].
pub fn open_dir_path(path: &Path) -> io::Result<OwnedFd> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)?;
    Ok(OwnedFd::from(f))
}

/// Creates every missing directory of `path` inside `root` (confined like
/// [`open_in_root`]) and returns an `O_PATH` handle to the last one.
pub fn mkdir_all_in_root(root: &OwnedFd, path: &Path, mode: u32) -> io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    let rel = path.strip_prefix("/").unwrap_or(path);
    let mut cur = std::path::PathBuf::from("/");
    for comp in rel.components() {
        cur.push(comp);
        match open_in_root(root, &cur, libc::O_PATH | libc::O_DIRECTORY, 0) {
            Ok(_) => continue,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let parent = open_in_root(
                    root,
                    cur.parent().unwrap_or(Path::new("/")),
                    libc::O_PATH | libc::O_DIRECTORY,
                    0,
                )?;
                let name = CString::new(comp.as_os_str().as_bytes()).map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL")
                })?;
                // SAFETY: valid descriptor and NUL-terminated name.
                let r = unsafe { libc::mkdirat(parent.as_raw_fd(), name.as_ptr(), mode) };
                if r < 0 {
                    let e = io::Error::last_os_error();
                    if e.raw_os_error() != Some(libc::EEXIST) {
                        return Err(e);
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    open_in_root(root, &cur, libc::O_PATH | libc::O_DIRECTORY, 0)
}

/// The `/proc/self/fd/N` path of a descriptor, the usual way to hand an
/// already-resolved file to a path-based call such as `mount(2)`.
pub fn proc_fd_path(fd: &impl std::os::fd::AsRawFd) -> std::path::PathBuf {
    format!("/proc/self/fd/{}", fd.as_raw_fd()).into()
}

/// Takes an exclusive advisory lock (`flock`) on `file`, waiting for it.
/// The lock belongs to this open file description and is released when the
/// last descriptor closes: a crashed holder never leaves it stale.
pub fn lock_exclusive(file: &impl std::os::fd::AsFd) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: flock only reads the descriptor number, which the borrow keeps open.
        let r = unsafe { libc::flock(file.as_fd().as_raw_fd(), libc::LOCK_EX) };
        if r == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Takes an exclusive advisory lock (`flock`) on `file` without waiting:
/// `Ok(true)` when taken, `Ok(false)` when another open file description
/// holds it. The lock belongs to this open file description, so two opens
/// of one file conflict even within a process, and it is released when the
/// last descriptor closes — a crashed holder never leaves it stale.
pub fn try_lock_exclusive(file: &impl std::os::fd::AsFd) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock only reads the descriptor number, which the borrow keeps open.
    let r = unsafe { libc::flock(file.as_fd().as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_lock_conflicts_between_opens_and_frees_on_close() {
        let dir = tempfile::tempdir().unwrap();
        let first = File::open(dir.path()).unwrap();
        let second = File::open(dir.path()).unwrap();
        assert!(try_lock_exclusive(&first).unwrap());
        assert!(!try_lock_exclusive(&second).unwrap());
        drop(first);
        assert!(try_lock_exclusive(&second).unwrap());
    }

    #[test]
    fn replace_file_gives_the_mode_asked_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hosts");
        // 0666 survives no usual umask: only an explicit chmod gives it.
        replace_file(&p, b"127.0.0.1 localhost\n", 0o666).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666);
        assert_eq!(std::fs::read(&p).unwrap(), b"127.0.0.1 localhost\n");
        replace_file(&p, b"x", 0o600).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn symlinks_cannot_escape_the_root() {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(outer.path().join("secret"), b"host").unwrap();
        std::fs::write(root.join("secret"), b"container").unwrap();
        std::os::unix::fs::symlink("/secret", root.join("etc/abs")).unwrap();
        std::os::unix::fs::symlink("../../../secret", root.join("etc/rel")).unwrap();
        let rfd = open_dir_path(&root).unwrap();
        for link in ["/etc/abs", "/etc/rel", "../secret"] {
            let fd = open_in_root(&rfd, Path::new(link), libc::O_RDONLY, 0).unwrap();
            let got = std::fs::read(proc_fd_path(&fd)).unwrap();
            assert_eq!(got, b"container", "{link} stayed inside the root");
        }
    }

    #[test]
    fn mkdir_all_follows_links_inside_root_only() {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        std::os::unix::fs::symlink("/", root.join("up")).unwrap();
        let rfd = open_dir_path(&root).unwrap();
        mkdir_all_in_root(&rfd, Path::new("/up/../a/b/c"), 0o755).unwrap();
        assert!(root.join("a/b/c").is_dir());
        assert!(!outer.path().join("a").exists());
    }
}
