//! Mounting snapshots.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// How to mount a container's root from its active snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// An overlay of `lower` (top first) under the writable `upper`.
    Overlay {
        /// The committed layers, top first.
        lower: Vec<PathBuf>,
        /// The writable layer.
        upper: PathBuf,
        /// overlayfs's work directory, on the same filesystem as `upper`.
        work: PathBuf,
    },
    /// A bind mount of a full copy.
    Bind {
        /// The copy.
        source: PathBuf,
    },
}

/// The longest option string `mount(2)` takes (one page).
const MAX_OPTIONS: usize = 4000;

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn check(r: libc::c_long) -> io::Result<libc::c_long> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl Mount {
    /// The `mount(2)` data of an overlay mount.
    fn overlay_options(lower: &[PathBuf], upper: &Path, work: &Path) -> String {
        let lower: Vec<String> = lower.iter().map(|p| p.display().to_string()).collect();
        format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            upper.display(),
            work.display()
        )
    }

    /// Mounts this at `target`.
    pub fn mount(&self, target: &Path) -> io::Result<()> {
        let target_c = cpath(target)?;
        match self {
            Mount::Bind { source } => {
                let source = cpath(source)?;
                // SAFETY: NUL-terminated strings; no data argument.
                let r = unsafe {
                    libc::mount(
                        source.as_ptr(),
                        target_c.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND | libc::MS_REC,
                        std::ptr::null(),
                    )
                };
                check(r.into()).map(drop)
            }
            Mount::Overlay { lower, upper, work } => {
                let options = Self::overlay_options(lower, upper, work);
                if options.len() > MAX_OPTIONS {
                    return mount_overlay_by_fsconfig(lower, upper, work, &target_c);
                }
                let options = CString::new(options)
                    .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
                // SAFETY: NUL-terminated strings; overlay reads `options`.
                let r = unsafe {
                    libc::mount(
                        c"overlay".as_ptr(),
                        target_c.as_ptr(),
                        c"overlay".as_ptr(),
                        0,
                        options.as_ptr().cast(),
                    )
                };
                check(r.into()).map(drop)
            }
        }
    }
}

/// Mounts an overlay whose options do not fit in a page, one lower layer
/// at a time through the new mount API (`lowerdir+`, Linux 6.8).
fn mount_overlay_by_fsconfig(
    lower: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &CString,
) -> io::Result<()> {
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_SET_STRING: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;
    // SAFETY: a NUL-terminated name; the descriptor is owned below.
    let fs =
        check(unsafe { libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), FSOPEN_CLOEXEC) })?;
    // SAFETY: fsopen returned a new descriptor.
    let fs = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fs as i32) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fs);
    let set = |key: &std::ffi::CStr, value: &Path| -> io::Result<()> {
        let value = cpath(value)?;
        // SAFETY: NUL-terminated key and value on a valid fs context.
        check(unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                raw,
                FSCONFIG_SET_STRING,
                key.as_ptr(),
                value.as_ptr(),
                0,
            )
        })
        .map(drop)
    };
    for layer in lower {
        set(c"lowerdir+", layer)?;
    }
    set(c"upperdir", upper)?;
    set(c"workdir", work)?;
    // SAFETY: a valid fs context; no key or value for CMD_CREATE.
    check(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            raw,
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_char>(),
            0,
        )
    })?;
    // SAFETY: a created fs context.
    let mnt = check(unsafe { libc::syscall(libc::SYS_fsmount, raw, FSMOUNT_CLOEXEC, 0) })?;
    // SAFETY: fsmount returned a new descriptor.
    let mnt = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(mnt as i32) };
    // SAFETY: attaches the detached mount at `target`.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            std::os::fd::AsRawFd::as_raw_fd(&mnt),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    })
    .map(drop)
}

/// Unmounts `target` (lazily, so a busy mount goes once its users do).
pub fn unmount(target: &Path) -> io::Result<()> {
    let target = cpath(target)?;
    // SAFETY: a NUL-terminated path.
    check(unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) }.into()).map(drop)
}

/// Whether an overlay with whiteouts can be mounted under `scratch`: the
/// kernel has overlayfs, the filesystem can be its upper layer, and berth
/// may create whiteout devices.
pub(super) fn overlay_works(scratch: &Path) -> bool {
    let probe = scratch.join(super::tmp_name("probe"));
    let (lower, upper, work, merged) = (
        probe.join("lower"),
        probe.join("upper"),
        probe.join("work"),
        probe.join("merged"),
    );
    let ok = (|| -> io::Result<bool> {
        for d in [&lower, &upper, &work, &merged] {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(lower.join("hidden"), b"")?;
        let whiteout = cpath(&upper.join("hidden"))?;
        // SAFETY: a NUL-terminated path.
        check(
            unsafe { libc::mknod(whiteout.as_ptr(), libc::S_IFCHR, libc::makedev(0, 0)) }.into(),
        )?;
        let mount = Mount::Overlay {
            lower: vec![lower.clone()],
            upper: upper.clone(),
            work: work.clone(),
        };
        mount.mount(&merged)?;
        let hidden = !merged.join("hidden").exists();
        let writable = std::fs::write(merged.join("new"), b"x").is_ok();
        unmount(&merged)?;
        Ok(hidden && writable)
    })()
    .unwrap_or(false);
    let _ = std::fs::remove_dir_all(&probe);
    ok
}
