//! `run` (create + start + wait) and the foreground supervision shared with
//! `exec`: forwarding signals, proxying a terminal, reaping, exit codes.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus};

use crate::error::{Error, Result};
use crate::ops::create::{CreateOptions, create, create_from};

/// Signals a foreground runtime passes on to the container.
const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCHLD,
    Signal::SIGCONT,
];

/// Makes the calling process a child subreaper and blocks the signals it
/// will supervise through a signalfd. Call before forking anything.
pub fn prepare_foreground() -> Result<SigSet> {
    nix::sys::prctl::set_child_subreaper(true).map_err(Error::sys("become subreaper"))?;
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(*s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .map_err(Error::sys("block signals"))?;
    Ok(set)
}

/// A unix socket the runtime itself listens on to receive a pty master,
/// for a foreground process with a terminal and no `--console-socket`.
pub struct ConsoleListener {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleListener {
    /// Binds a fresh socket under /tmp.
    pub fn bind() -> Result<ConsoleListener> {
        let path = std::env::temp_dir().join(format!("berth-console-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener =
            UnixListener::bind(&path).map_err(Error::io("bind console socket", &path))?;
        Ok(ConsoleListener { listener, path })
    }

    /// The socket's path, to pass as the console socket.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the pty master the container sent.
    pub fn receive(&self) -> Result<OwnedFd> {
        let (s, _) = self
            .listener
            .accept()
            .map_err(Error::io("accept on console socket", &self.path))?;
        crate::console::recv_fd(s.as_raw_fd())
    }
}

impl Drop for ConsoleListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `run`: create, start, and unless detached wait for the container and
/// return its exit code, deleting it afterwards unless `keep`.
pub fn run(root: &Path, mut opts: CreateOptions, detach: bool, keep: bool) -> Result<i32> {
    if detach {
        create(root, &opts)?;
        crate::ops::start::start(root, &opts.id)?;
        return Ok(0);
    }
    let bundle = crate::config::load_bundle(&opts.bundle)?;
    let terminal = bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let sigs = prepare_foreground()?;
    let listener = if terminal && opts.console_socket.is_none() {
        let l = ConsoleListener::bind()?;
        opts.console_socket = Some(l.path().to_owned());
        Some(l)
    } else {
        None
    };
    let c = create_from(root, &opts, bundle)?;
    let master = match &listener {
        Some(l) => Some(l.receive()?),
        None => None,
    };
    drop(listener);
    let result = crate::ops::start::start(root, &opts.id)
        .and_then(|_| supervise(c.saved.pid, master, &sigs));
    if !keep {
        let _ = crate::ops::delete::delete(root, &opts.id, true);
    }
    result
}

/// The shell's convention for an exit status: the code, or 128 + signal.
pub fn exit_code(ws: WaitStatus) -> Option<i32> {
    match ws {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}

/// Waits for `pid` (which must be our child, directly or by subreaping),
/// forwarding signals and proxying the terminal `master` if any; returns
/// its exit code.
pub fn supervise(pid: i32, master: Option<OwnedFd>, sigs: &SigSet) -> Result<i32> {
    // kill(0, sig) would signal our own process group, which forwards the
    // signal back to us, forever.
    if pid <= 0 {
        return Err(Error::Init(format!("no process to wait for (pid {pid})")));
    }
    let sfd = SignalFd::with_flags(sigs, SfdFlags::SFD_CLOEXEC).map_err(Error::sys("signalfd"))?;
    let stdin = std::io::stdin();
    let _raw = master
        .as_ref()
        .and_then(|m| RawMode::enter(stdin.as_fd(), m.as_fd()));
    let mut stdin_open = master.is_some();
    let mut master = master;
    let mut code = None;
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        if code.is_some() && master.is_none() {
            break;
        }
        let mut fds = vec![libc::pollfd {
            fd: sfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if let Some(m) = &master {
            fds.push(libc::pollfd {
                fd: m.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
            if stdin_open {
                fds.push(libc::pollfd {
                    fd: 0,
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
        }
        // SAFETY: a valid array of pollfds. The timeout is only a backstop
        // for a SIGCHLD that never comes (the target reaped elsewhere).
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as _, 1000) };
        if n == 0 {
            if code.is_none() && reap(pid, &mut code) {
                return Err(Error::Init(format!(
                    "lost track of process {pid}: it was reaped elsewhere"
                )));
            }
            continue;
        }
        if n < 0 {
            if nix::Error::last() == nix::Error::EINTR {
                continue;
            }
            return Err(Error::sys("poll")(nix::Error::last()));
        }
        if fds[0].revents != 0
            && let Ok(Some(si)) = sfd.read_signal()
        {
            let sig = si.ssi_signo as i32;
            if sig == libc::SIGCHLD {
                reap(pid, &mut code);
            } else if sig == libc::SIGWINCH {
                if let Some(m) = &master {
                    copy_winsize(0, m.as_raw_fd());
                }
            } else {
                // SAFETY: plain kill(2).
                unsafe { libc::kill(pid, sig) };
            }
        }
        if let Some(m) = &master
            && fds[1].revents != 0
        {
            match nix::unistd::read(m, &mut buf) {
                Ok(0) | Err(_) => master = None,
                Ok(k) => write_all(1, &buf[..k]),
            }
        }
        if let (Some(m), true) = (&master, stdin_open)
            && fds.len() > 2
            && fds[2].revents != 0
        {
            match nix::unistd::read(std::io::stdin().as_fd(), &mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(k) => write_all(m.as_raw_fd(), &buf[..k]),
            }
        }
    }
    Ok(code.unwrap_or(255))
}

/// Reaps every exited child, noting the target's exit code. Returns true
/// if we have no children left and never saw the target exit.
fn reap(target: i32, code: &mut Option<i32>) -> bool {
    loop {
        match nix::sys::wait::waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return false,
            Err(_) => return code.is_none(),
            Ok(ws) => {
                if ws.pid().map(|p| p.as_raw()) == Some(target) {
                    *code = exit_code(ws);
                }
            }
        }
    }
}

fn write_all(fd: i32, mut data: &[u8]) {
    while !data.is_empty() {
        // SAFETY: writing a live buffer to a descriptor.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n <= 0 {
            if n < 0 && nix::Error::last() == nix::Error::EINTR {
                continue;
            }
            return;
        }
        data = &data[n as usize..];
    }
}

fn copy_winsize(from: i32, to: i32) {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: ioctls with a valid winsize.
    unsafe {
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &ws);
        }
    }
}

/// The caller's terminal in raw mode for the duration of a proxy.
struct RawMode {
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    fn enter(stdin: BorrowedFd, master: BorrowedFd) -> Option<RawMode> {
        use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
        let saved = tcgetattr(stdin).ok()?;
        copy_winsize(stdin.as_raw_fd(), master.as_raw_fd());
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(stdin, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(
            std::io::stdin().as_fd(),
            nix::sys::termios::SetArg::TCSANOW,
            &self.saved,
        );
    }
}
