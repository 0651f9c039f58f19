//! Process creation the standard library and nix do not offer.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `CLONE_INTO_CGROUP` (Linux 5.7): the child starts in the cgroup2
/// directory given by `clone_args.cgroup`.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` up to `cgroup` (`CLONE_ARGS_SIZE_VER2`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Forks the calling process with the child born in the cgroup2 directory
/// `cgroup` (an `O_PATH` or read-only descriptor of it): `clone3` with
/// `CLONE_INTO_CGROUP`. Unlike a move through `cgroup.procs` after the
/// fact, this does not take the kernel's global threadgroup lock for
/// writing, which waits for an RCU grace period (several milliseconds on
/// an idle host). Returns 0 in the child and the child's pid in the parent,
/// as `fork` does; fails where the kernel is older than 5.7, or cannot put
/// the child there (then the caller may fork and move it).
///
/// # Safety
///
/// As `fork` from a single-threaded process, with one more limit: libc's
/// fork bookkeeping does not run, so the child must not rely on libc's
/// cached thread id (pthread mutexes of the error-checking, recursive or
/// robust kinds; Rust's locks do not use it) or on `pthread_atfork`
/// handlers.
pub unsafe fn fork_into_cgroup(cgroup: BorrowedFd<'_>) -> io::Result<libc::pid_t> {
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..Default::default()
    };
    // SAFETY: a fork-like clone3 (no new stack, no shared memory); the
    // caller upholds the rest.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as libc::pid_t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_is_born_in_the_cgroup_or_the_call_fails_cleanly() {
        // Our own cgroup2 directory, where there is one: the child must be
        // born there (a no-op move, which needs no privilege).
        let Ok(text) = std::fs::read_to_string("/proc/self/cgroup") else {
            return;
        };
        let Some(path) = text.lines().find_map(|l| l.strip_prefix("0::")) else {
            return;
        };
        let Some(mount) = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .find(|l| l.contains(" - cgroup2 "))
            .and_then(|l| l.split(' ').nth(4).map(str::to_owned))
        else {
            return;
        };
        let dir = std::fs::File::open(format!("{mount}{path}")).unwrap();
        use std::os::fd::AsFd;
        // SAFETY: the child only makes raw syscalls before _exit.
        match unsafe { fork_into_cgroup(dir.as_fd()) } {
            Ok(0) => unsafe { libc::_exit(7) },
            Ok(pid) => {
                let mut status = 0;
                // SAFETY: waits for our own child.
                assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
                assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 7);
            }
            // Only a kernel without clone3 may refuse.
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ENOSYS), "{e}"),
        }
    }
}
