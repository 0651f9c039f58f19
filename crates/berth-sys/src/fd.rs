//! File-descriptor hygiene.

use std::io;

/// Marks every descriptor from `first` upwards close-on-exec, so nothing the
/// runtime happened to hold (a host directory, a state file, a socket) reaches
/// the container's process. Descriptors below `first` (stdio and any
/// deliberately preserved ones) are left as they are.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;
    // SAFETY: close_range takes plain integers; CLOEXEC closes nothing now.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if r == 0 {
        return Ok(());
    }
    // Kernels before 5.11 lack CLOSE_RANGE_CLOEXEC: walk /proc/self/fd.
    let mut fds = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        if let Ok(fd) = entry?.file_name().to_string_lossy().parse::<i32>()
            && fd >= first as i32
        {
            fds.push(fd);
        }
    }
    for fd in fds {
        // SAFETY: setting FD_CLOEXEC on a descriptor number is harmless even
        // if it was the directory handle that has since been closed.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}
