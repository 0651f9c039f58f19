//! Thin `*at` syscall wrappers: every call names a file by a directory
//! descriptor and one path component, never by a host path string.

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A path component as a C string; the caller has already refused NULs.
pub(super) fn cname(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name contains NUL"))
}

/// `fstatat(AT_SYMLINK_NOFOLLOW)`: `None` when nothing is there.
pub(super) fn lstat_at(dir: RawFd, name: &CStr) -> io::Result<Option<libc::stat>> {
    // SAFETY: an all-zero `stat` is valid; the kernel fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid descriptor, NUL-terminated name, `st` outlives the call.
    let r = unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    match cvt(r) {
        Ok(_) => Ok(Some(st)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `openat(2)` relative to `dir`; `O_CLOEXEC` is always added.
pub(super) fn open_at(dir: RawFd, name: &CStr, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    // SAFETY: valid descriptor and NUL-terminated name.
    let fd = cvt(unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC, mode) })?;
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Creates a new regular file that must not exist yet and is never reached
/// through a symlink.
pub(super) fn create_file_at(dir: RawFd, name: &CStr) -> io::Result<File> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
    Ok(File::from(open_at(dir, name, flags, 0o600)?))
}

pub(super) fn mkdir_at(dir: RawFd, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: valid descriptor and NUL-terminated name.
    cvt(unsafe { libc::mkdirat(dir, name.as_ptr(), mode) }).map(drop)
}

pub(super) fn symlink_at(target: &CStr, dir: RawFd, name: &CStr) -> io::Result<()> {
    // SAFETY: valid descriptor and NUL-terminated strings.
    cvt(unsafe { libc::symlinkat(target.as_ptr(), dir, name.as_ptr()) }).map(drop)
}

/// `linkat` without `AT_SYMLINK_FOLLOW`: a symlink source is linked itself,
/// never followed.
pub(super) fn link_at(sdir: RawFd, sname: &CStr, dir: RawFd, name: &CStr) -> io::Result<()> {
    // SAFETY: valid descriptors and NUL-terminated names.
    cvt(unsafe { libc::linkat(sdir, sname.as_ptr(), dir, name.as_ptr(), 0) }).map(drop)
}

pub(super) fn mknod_at(dir: RawFd, name: &CStr, mode: u32, dev: libc::dev_t) -> io::Result<()> {
    // SAFETY: valid descriptor and NUL-terminated name.
    cvt(unsafe { libc::mknodat(dir, name.as_ptr(), mode, dev) }).map(drop)
}

pub(super) fn chown_at(dir: RawFd, name: &CStr, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: valid descriptor and NUL-terminated name.
    let r = unsafe { libc::fchownat(dir, name.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) };
    cvt(r).map(drop)
}

/// `fchmodat`; only called on entries this layer just created and that are
/// not symlinks, so following the last component cannot leave the target.
pub(super) fn chmod_at(dir: RawFd, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: valid descriptor and NUL-terminated name.
    cvt(unsafe { libc::fchmodat(dir, name.as_ptr(), mode, 0) }).map(drop)
}

fn times(mtime: i64) -> [libc::timespec; 2] {
    let ts = libc::timespec {
        tv_sec: mtime as libc::time_t,
        tv_nsec: 0,
    };
    [ts, ts]
}

pub(super) fn utimes_at(dir: RawFd, name: &CStr, mtime: i64) -> io::Result<()> {
    let ts = times(mtime);
    // SAFETY: valid descriptor, NUL-terminated name, `ts` outlives the call.
    let r = unsafe { libc::utimensat(dir, name.as_ptr(), ts.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    cvt(r).map(drop)
}

pub(super) fn futimes(fd: &impl AsRawFd, mtime: i64) -> io::Result<()> {
    let ts = times(mtime);
    // SAFETY: valid descriptor, `ts` outlives the call.
    cvt(unsafe { libc::futimens(fd.as_raw_fd(), ts.as_ptr()) }).map(drop)
}

pub(super) fn fchown(fd: &impl AsRawFd, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: valid descriptor.
    cvt(unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) }).map(drop)
}

pub(super) fn fchmod(fd: &impl AsRawFd, mode: u32) -> io::Result<()> {
    // SAFETY: valid descriptor.
    cvt(unsafe { libc::fchmod(fd.as_raw_fd(), mode) }).map(drop)
}

pub(super) fn fsetxattr(fd: &impl AsRawFd, name: &CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: valid descriptor, NUL-terminated name, `value` outlives the call.
    let r = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    cvt(r).map(drop)
}

/// Sets an xattr through the `/proc/self/fd/N` link of an `O_PATH`
/// descriptor: the kernel resolves that link to the very inode the
/// descriptor holds, symlinks and device nodes included.
pub(super) fn setxattr_path_fd(fd: &OwnedFd, name: &CStr, value: &[u8]) -> io::Result<()> {
    let path = cname(berth_sys::fs::proc_fd_path(fd).as_os_str())?;
    // SAFETY: NUL-terminated strings; `value` outlives the call.
    let r = unsafe {
        libc::setxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    cvt(r).map(drop)
}

/// The names in the directory `dir` (any descriptor of it, `O_PATH` too).
pub(super) fn list_dir(dir: &OwnedFd) -> io::Result<Vec<CString>> {
    let mut names = Vec::new();
    for ent in std::fs::read_dir(berth_sys::fs::proc_fd_path(dir))? {
        names.push(cname(&ent?.file_name())?);
    }
    Ok(names)
}

/// Removes `name` in `dir` and, when it is a directory, everything under
/// it. Every step is relative to a descriptor and never follows a symlink.
/// A missing `name` is not an error.
pub(super) fn remove_all_at(dir: RawFd, name: &CStr) -> io::Result<()> {
    // SAFETY: valid descriptor and NUL-terminated name.
    match cvt(unsafe { libc::unlinkat(dir, name.as_ptr(), 0) }) {
        Ok(_) => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EISDIR) => {}
        Err(e) => return Err(e),
    }
    let child = open_at(
        dir,
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )?;
    for n in list_dir(&child)? {
        remove_all_at(child.as_raw_fd(), &n)?;
    }
    // SAFETY: valid descriptor and NUL-terminated name.
    cvt(unsafe { libc::unlinkat(dir, name.as_ptr(), libc::AT_REMOVEDIR) }).map(drop)
}
