//! `kill`, `pause`, `resume`, and waiting for a container's init to exit.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::error::{Error, Result};
use crate::state::Container;

/// Parses a signal as runc accepts it: a number, `KILL`, or `SIGKILL`
/// (any case).
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(Error::InvalidArgument(format!(
            "signal {n} is out of range (1-64)"
        )));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    if let Some(rest) = name.strip_prefix("SIGRTMIN") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.trim_start_matches('+').parse().unwrap_or(-1)
        };
        if (0..=30).contains(&off) {
            return Ok(libc::SIGRTMIN() + off);
        }
    }
    if let Some(rest) = name.strip_prefix("SIGRTMAX") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.trim_start_matches('-').parse().unwrap_or(-1)
        };
        if (0..=30).contains(&off) {
            return Ok(libc::SIGRTMAX() - off);
        }
    }
    name.parse::<Signal>()
        .map(|s| s as i32)
        .map_err(|_| Error::InvalidArgument(format!("unknown signal {s:?}")))
}

/// A pidfd for `pid`, so that signals cannot hit a recycled pid.
pub fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: plain syscall.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: a new descriptor owned by nobody else.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn pidfd_signal(fd: &OwnedFd, sig: i32) -> std::io::Result<()> {
    // SAFETY: plain syscall on a pidfd we own.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Sends `sig` to the container's init, or with `all` to every process in
/// its cgroup.
pub fn kill(root: &Path, id: &str, sig: i32, all: bool) -> Result<()> {
    let c = Container::load(root, id)?;
    let status = c.status();
    if !status.can_kill() && !all {
        return Err(Error::BadState {
            id: id.into(),
            status,
            op: "kill",
        });
    }
    if all {
        let pids = c.saved.cgroup.pids()?;
        for pid in pids {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::try_from(sig).ok());
        }
        if sig == libc::SIGKILL && status == berth_model::ContainerStatus::Paused {
            c.saved.cgroup.thaw()?;
        }
        return Ok(());
    }
    let fd = pidfd_open(c.saved.pid).ok_or_else(|| Error::BadState {
        id: id.into(),
        status: berth_model::ContainerStatus::Stopped,
        op: "kill",
    })?;
    // The pidfd may name a recycled pid if the init died between status()
    // and pidfd_open: check once more now that the pid is pinned.
    if !c.init_alive() {
        return Err(Error::BadState {
            id: id.into(),
            status: berth_model::ContainerStatus::Stopped,
            op: "kill",
        });
    }
    pidfd_signal(&fd, sig).map_err(|e| Error::Io {
        op: "signal",
        path: format!("pid {}", c.saved.pid).into(),
        source: e,
    })
}

/// Waits up to `timeout` for process `pid` (not necessarily our child) to
/// exit. Returns whether it did.
pub fn wait_exit(pid: i32, timeout: Duration) -> bool {
    let Some(fd) = pidfd_open(pid) else {
        return true;
    };
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let r = unsafe {
        libc::poll(
            &mut pfd,
            1,
            timeout.as_millis().min(i32::MAX as u128) as i32,
        )
    };
    r > 0
}

/// Freezes the container.
pub fn pause(root: &Path, id: &str) -> Result<()> {
    let c = Container::load(root, id)?;
    let status = c.status();
    if !status.can_pause() {
        return Err(Error::BadState {
            id: id.into(),
            status,
            op: "pause",
        });
    }
    Ok(c.saved.cgroup.freeze()?)
}

/// Thaws the container.
pub fn resume(root: &Path, id: &str) -> Result<()> {
    let c = Container::load(root, id)?;
    let status = c.status();
    if !status.can_resume() {
        return Err(Error::BadState {
            id: id.into(),
            status,
            op: "resume",
        });
    }
    Ok(c.saved.cgroup.thaw()?)
}
