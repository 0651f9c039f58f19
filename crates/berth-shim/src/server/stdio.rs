//! The shim's descriptors: the container's stdio (pipes or a pty), what
//! it writes and what is waiting to be written to it.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use berth_runtime::ops::run::ConsoleListener;

use super::MAX_STDIN_BACKLOG;
use crate::protocol::stream;

pub(super) fn devnull() -> std::io::Result<OwnedFd> {
    Ok(std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?
        .into())
}

pub(super) fn dup_onto(fd: RawFd, target: RawFd) -> Result<(), String> {
    // SAFETY: dup2 of a descriptor we own onto one of the standard three.
    if unsafe { libc::dup2(fd, target) } < 0 {
        return Err(format!("dup2: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

pub(super) fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

/// Reads what is there: Ok(0) at end of file, Err(WouldBlock) when empty.
pub(super) fn read_fd(fd: RawFd, buf: &mut [u8]) -> std::io::Result<usize> {
    // SAFETY: reading into a buffer we own.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

pub(super) fn write_fd(fd: RawFd, buf: &[u8]) -> std::io::Result<usize> {
    // SAFETY: writing from a buffer we own.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// One output of the container: a pipe (stdout, stderr) or the pty master.
pub(super) struct Output {
    pub(super) fd: OwnedFd,
    /// The stream number; stdout for a terminal.
    pub(super) stream: u8,
    /// The part of a line not yet logged.
    pub(super) pending: Vec<u8>,
    /// The exec it belongs to (none: the container's own).
    pub(super) owner: Option<u64>,
}

/// The stdio of a process the shim starts: its outputs, its input, and
/// the pty master when it has a terminal.
pub(super) struct Stdio {
    pub(super) outputs: Vec<Output>,
    pub(super) input: Option<OwnedFd>,
    pub(super) master: Option<RawFd>,
}

impl Stdio {
    /// Runs `start` (a runtime create or exec, which forks a process that
    /// inherits the shim's descriptors 0-2) with a console socket when
    /// `tty`, else with pipes as the shim's standard descriptors for the
    /// duration, and returns what it returned with the other ends.
    pub(super) fn around<T>(
        tty: bool,
        stdin: bool,
        owner: Option<u64>,
        start: impl FnOnce(Option<std::path::PathBuf>) -> Result<T, String>,
    ) -> Result<(T, Stdio), String> {
        let output = |fd, stream| Output {
            fd,
            stream,
            pending: Vec::new(),
            owner,
        };
        if tty {
            let console = ConsoleListener::bind().map_err(|e| e.to_string())?;
            let started = start(Some(console.path().to_owned()))?;
            let master = console.receive().map_err(|e| e.to_string())?;
            set_nonblocking(master.as_raw_fd());
            let input = master.try_clone().map_err(|e| format!("dup: {e}"))?;
            let raw = master.as_raw_fd();
            let stdio = Stdio {
                outputs: vec![output(master, stream::STDOUT)],
                input: Some(input),
                master: Some(raw),
            };
            return Ok((started, stdio));
        }
        let pipe =
            || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"));
        let null = devnull().map_err(|e| format!("open /dev/null: {e}"))?;
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let stdin_pipe = if stdin { Some(pipe()?) } else { None };
        let saved: Vec<RawFd> = (0..3)
            // SAFETY: duplicating our own standard descriptors.
            .map(|fd| unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) })
            .collect();
        match &stdin_pipe {
            Some((r, _)) => dup_onto(r.as_raw_fd(), 0)?,
            None => dup_onto(null.as_raw_fd(), 0)?,
        }
        dup_onto(out_w.as_raw_fd(), 1)?;
        dup_onto(err_w.as_raw_fd(), 2)?;
        let started = start(None);
        for (fd, copy) in saved.into_iter().enumerate() {
            if copy >= 0 {
                let _ = dup_onto(copy, fd as RawFd);
                // SAFETY: closing the copy made above.
                unsafe { libc::close(copy) };
            }
        }
        let started = started?;
        drop((out_w, err_w));
        let input = stdin_pipe.map(|(_, w)| w);
        for fd in [&out_r, &err_r].into_iter().chain(input.as_ref()) {
            set_nonblocking(fd.as_raw_fd());
        }
        let stdio = Stdio {
            outputs: vec![output(out_r, stream::STDOUT), output(err_r, stream::STDERR)],
            input,
            master: None,
        };
        Ok((started, stdio))
    }
}

/// A process's stdin: its write end, and what waits to be written.
pub(super) struct Input {
    fd: Option<OwnedFd>,
    backlog: Vec<u8>,
}

impl Input {
    /// The stdin `fd` (none: the process has none).
    pub(super) fn new(fd: Option<OwnedFd>) -> Input {
        Input {
            fd,
            backlog: Vec::new(),
        }
    }

    /// Whether input still reaches the process.
    pub(super) fn is_open(&self) -> bool {
        self.fd.is_some()
    }

    /// Whether as much is waiting as the shim holds.
    pub(super) fn full(&self) -> bool {
        self.backlog.len() >= MAX_STDIN_BACKLOG
    }

    /// The descriptor to poll for writing: only while something waits.
    pub(super) fn poll_fd(&self) -> RawFd {
        match &self.fd {
            Some(fd) if !self.backlog.is_empty() => fd.as_raw_fd(),
            _ => -1,
        }
    }

    /// Queues `data` and writes what the process takes now.
    pub(super) fn push(&mut self, data: &[u8]) {
        if self.fd.is_some() {
            self.backlog.extend_from_slice(data);
            self.feed();
        }
    }

    /// Writes what the process takes; when it has closed its stdin, drops
    /// both.
    pub(super) fn feed(&mut self) {
        let Some(fd) = &self.fd else {
            self.backlog.clear();
            return;
        };
        match write_fd(fd.as_raw_fd(), &self.backlog) {
            Ok(n) => {
                self.backlog.drain(..n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => self.close(),
        }
    }

    /// Ends the process's stdin.
    pub(super) fn close(&mut self) {
        self.fd = None;
        self.backlog.clear();
    }
}
