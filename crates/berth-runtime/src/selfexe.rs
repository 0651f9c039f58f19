//! Protection of the runtime binary from the containers it runs (the
//! CVE-2019-5736 class).
//!
//! Processes that enter a container run berth's code until they execute the
//! user's program, and while they do, a container process can open
//! `/proc/<pid>/exe`, keep it, and write the host's berth binary once
//! nothing executes it any more. Before entering any container the runtime
//! therefore re-executes itself from a *detached, read-only bind mount* of
//! its own binary (`open_tree` + `mount_setattr` + `execveat`): every
//! `/proc/<pid>/exe` of ours then resolves through that read-only mount and
//! opening it for writing fails with EROFS. This costs one exec, not a copy
//! of the binary. Where the new mount API is missing we fall back to a
//! sealed memfd copy. The processes are also made non-dumpable, so a
//! container without CAP_SYS_PTRACE cannot open their /proc files at all.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const MARK: &str = "_BERTH_RO_EXE";

/// Re-executes the current process from a read-only view of its binary,
/// unless it already runs from one. Returns only if it does already, or if
/// neither protection could be set up (the error says why).
pub fn ensure_protected() -> std::io::Result<()> {
    // SAFETY: prctl with plain integers.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if std::env::var_os(MARK).is_some() {
        // SAFETY: single-threaded at this point (called first in main).
        unsafe { std::env::remove_var(MARK) };
        return Ok(());
    }
    if exe_is_readonly() {
        return Ok(());
    }
    let fd = match readonly_clone() {
        Ok(fd) => fd,
        Err(_) => sealed_copy()?,
    };
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.into_encoded_bytes()).unwrap_or_default())
        .collect();
    // SAFETY: see above; the process is single-threaded.
    unsafe { std::env::set_var(MARK, "1") };
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut b = k.into_encoded_bytes();
            b.push(b'=');
            b.extend(v.into_encoded_bytes());
            CString::new(b).unwrap_or_default()
        })
        .collect();
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    let empty = c"";
    // SAFETY: NULL-terminated arrays of live C strings.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            empty.as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    let err = std::io::Error::last_os_error();
    // SAFETY: as above.
    unsafe { std::env::remove_var(MARK) };
    Err(err)
}

fn exe_is_readonly() -> bool {
    nix::sys::statvfs::statvfs("/proc/self/exe")
        .map(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
        .unwrap_or(false)
}

fn readonly_clone() -> std::io::Result<OwnedFd> {
    const OPEN_TREE_CLONE: u32 = 1;
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    const MOUNT_ATTR_NOSUID: u64 = 0x2;
    const MOUNT_ATTR_NODEV: u64 = 0x4;
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let path = c"/proc/self/exe";
    // SAFETY: plain syscalls with valid pointers.
    unsafe {
        let fd = libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as u32,
        );
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fd = OwnedFd::from_raw_fd(fd as i32);
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
            attr_clr: 0,
            propagation: 0,
            userns_fd: 0,
        };
        let r = libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as u32,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        );
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(fd)
    }
}

fn sealed_copy() -> std::io::Result<OwnedFd> {
    let name = c"berth";
    // SAFETY: memfd_create with a valid name.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut src = std::fs::File::open("/proc/self/exe")?;
    let mut dst = std::fs::File::from(fd.try_clone()?);
    std::io::copy(&mut src, &mut dst)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on our memfd.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd)
}
