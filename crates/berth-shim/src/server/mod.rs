//! The shim process: `berth shim DIR`.
//!
//! [`main`] forks once: the parent waits until the child has created the
//! container (or failed to), prints `PID` (or the error), and exits, so the
//! daemon's exec of the shim returns as soon as the container exists, and
//! the child, in a session of its own, is nobody's child but init's. The
//! child then runs one `poll(2)` loop until the container has exited and
//! its output is drained.
//!
//! This file holds the loop and the requests; `stdio` the descriptors
//! (pipes or a pty, and input waiting for a process), `output` where the
//! container's output goes, `exec` the execs, `host` the loopback and
//! the shim's own memory.

use std::io::{BufRead, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use berth_runtime::ops::create::CreateOptions;

mod exec;
mod host;
mod output;
mod stdio;

use exec::Exec;
use host::{loopback_up, shed_file_pages};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use stdio::{Input, Output, Stdio, devnull, dup_onto};

use crate::logfile::LogWriter;
use crate::protocol::{ExitRecord, MAX_REQUEST, Reply, Request, ShimConfig, ShimDir};

/// How much output an attached client may fall behind before it is cut off.
const MAX_CLIENT_BACKLOG: usize = 4 << 20;
/// How much input the shim holds for a container that does not read it.
const MAX_STDIN_BACKLOG: usize = 1 << 20;
/// How long after the init's exit the shim waits for its output to drain
/// (a process outside the container's pid namespace may hold the pipes).
const DRAIN: Duration = Duration::from_secs(2);
/// How long the shim waits, quiet, after a request before it drops the
/// pages the request touched.
const QUIET_MS: i32 = 100;
/// How long the shim keeps flushing output to attached clients at the end.
const FLUSH: Duration = Duration::from_secs(5);

/// Runs the shim for the directory `dir`; returns the process exit code.
pub fn main(dir: &Path) -> i32 {
    let dir = ShimDir(dir.to_owned());
    let config: ShimConfig = match std::fs::read(dir.config())
        .map_err(|e| format!("read {}: {e}", dir.config().display()))
        .and_then(|b| {
            serde_json::from_slice(&b).map_err(|e| format!("parse {}: {e}", dir.config().display()))
        }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth shim: {e}");
            return 1;
        }
    };
    let (ready_r, ready_w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("berth shim: pipe: {e}");
            return 1;
        }
    };
    // SAFETY: `berth shim` is single-threaded (it runs before anything
    // starts a thread), so the child may go on running Rust code.
    match unsafe { nix::unistd::fork() } {
        Err(e) => {
            eprintln!("berth shim: fork: {e}");
            1
        }
        Ok(nix::unistd::ForkResult::Parent { .. }) => {
            drop(ready_w);
            // One line: the container's init inherits the pipe until it
            // executes, so end of file would come only at `start`.
            let mut answer = String::new();
            let _ = std::io::BufReader::new(std::fs::File::from(ready_r)).read_line(&mut answer);
            match serde_json::from_str::<Result<i32, String>>(answer.trim_end()) {
                Ok(Ok(pid)) => {
                    println!("{pid}");
                    0
                }
                Ok(Err(e)) => {
                    eprintln!("{e}");
                    1
                }
                Err(_) => {
                    eprintln!("berth shim: the shim died while creating the container");
                    1
                }
            }
        }
        Ok(nix::unistd::ForkResult::Child) => {
            drop(ready_r);
            let code = child(&dir, &config, ready_w);
            // SAFETY: leaving without unwinding into the caller's stack.
            unsafe { libc::_exit(code) }
        }
    }
}

fn child(dir: &ShimDir, config: &ShimConfig, ready: OwnedFd) -> i32 {
    let mut ready = std::fs::File::from(ready);
    let answer = |r: Result<i32, String>| {
        let mut line = serde_json::to_string(&r).expect("answers serialise");
        line.push('\n');
        line
    };
    let mut shim = match Shim::setup(dir, config) {
        Ok(s) => s,
        Err(e) => {
            // Whatever was created goes (a missing container is no error).
            let _ = berth_runtime::ops::delete::delete(&config.runtime_root, &config.id, true);
            let _ = ready.write_all(answer(Err(e)).as_bytes());
            return 1;
        }
    };
    let _ = ready.write_all(answer(Ok(shim.pid)).as_bytes());
    drop(ready);
    shim.run();
    0
}

/// What a connected client is.
#[derive(Debug, PartialEq, Eq)]
enum Role {
    /// Its request line has not come yet.
    Requesting,
    /// Attached to the container's stdio.
    Attached {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    /// Waiting for the exit.
    Waiting,
    /// Carrying the stdio of the exec `key`.
    Exec { key: u64 },
    /// Answered; closed once its output is flushed.
    Done,
}

struct Client {
    stream: UnixStream,
    role: Role,
    input: Vec<u8>,
    output: Vec<u8>,
    /// The client has closed its side (no more input).
    input_closed: bool,
}

struct Shim<'a> {
    config: &'a ShimConfig,
    dir: &'a ShimDir,
    pid: i32,
    listener: UnixListener,
    signals: SignalFd,
    outputs: Vec<Output>,
    /// Where the container's input goes: the stdin pipe or the pty master.
    input: Input,
    /// The pty master (also in `outputs`, for resizing).
    master: Option<RawFd>,
    log: Option<LogWriter>,
    clients: Vec<Client>,
    exit: Option<ExitRecord>,
    exited_at: Option<Instant>,
    /// The exit is recorded and the runtime state removed.
    finished: bool,
    execs: Vec<Exec>,
    next_exec: u64,
    /// Something ran since the pages were last dropped.
    busy: bool,
    started: bool,
}

impl<'a> Shim<'a> {
    fn setup(dir: &'a ShimDir, config: &'a ShimConfig) -> Result<Shim<'a>, String> {
        nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
        let null = devnull().map_err(|e| format!("open /dev/null: {e}"))?;
        // The shim's own stdio would keep the daemon's pipes open.
        let shim_log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("shim.log"))
            .map_err(|e| format!("open the shim log: {e}"))?;
        dup_onto(null.as_raw_fd(), 0)?;
        dup_onto(null.as_raw_fd(), 1)?;
        dup_onto(shim_log.as_raw_fd(), 2)?;
        // Files under the exec root (/run) describe processes, which a host
        // crash ends: atomic, not fsynced.
        let pid = std::process::id().to_string();
        let _ = berth_sys::fs::replace_file(&dir.shim_pid(), pid.as_bytes(), 0o600);
        // SAFETY: ignoring SIGPIPE; writes to gone clients then fail with EPIPE.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        nix::sys::prctl::set_child_subreaper(true).map_err(|e| format!("subreaper: {e}"))?;
        let mut set = SigSet::empty();
        set.add(Signal::SIGCHLD);
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
            .map_err(|e| format!("block SIGCHLD: {e}"))?;
        let signals = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(|e| format!("signalfd: {e}"))?;
        let sock = dir.socket();
        let _ = std::fs::remove_file(&sock);
        let listener = dir
            .with_socket_path(|p| UnixListener::bind(p))
            .and_then(|r| r)
            .map_err(|e| format!("listen on {}: {e}", sock.display()))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("listen on {}: {e}", sock.display()))?;
        let log = match &config.log_path {
            Some(p) => Some(
                LogWriter::open(p, config.log_max_size, config.log_max_files)
                    .map_err(|e| format!("open the log {}: {e}", p.display()))?,
            ),
            None => None,
        };
        let mut opts = CreateOptions {
            id: config.id.clone(),
            bundle: config.bundle.clone(),
            ..CreateOptions::default()
        };
        let root = config.runtime_root.clone();
        let (pid, stdio) = Stdio::around(config.tty, config.open_stdin, None, |console| {
            opts.console_socket = console;
            berth_runtime::ops::create::create(&root, &opts)
                .map(|c| c.saved.pid)
                .map_err(|e| e.to_string())
        })?;
        let Stdio {
            outputs,
            input,
            master,
        } = stdio;
        loopback_up(pid)?;
        Ok(Shim {
            config,
            dir,
            pid,
            listener,
            signals,
            outputs,
            input: Input::new(input),
            master,
            log,
            clients: Vec::new(),
            exit: None,
            exited_at: None,
            finished: false,
            execs: Vec::new(),
            next_exec: 0,
            busy: true,
            started: false,
        })
    }

    fn run(&mut self) {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            if let Some(at) = self.exited_at
                && (self.outputs.is_empty() || at.elapsed() > DRAIN)
            {
                break;
            }
            // Woken soon after a request, to drop the pages it touched.
            self.poll_once(&mut buf, if self.busy { QUIET_MS } else { 1000 });
            self.finish_execs();
        }
        self.finish_execs();
        self.finish();
        let deadline = Instant::now() + FLUSH;
        while !self.clients.is_empty() && Instant::now() < deadline {
            self.poll_once(&mut buf, 100);
        }
    }

    /// Everything after the container's exit: the last log lines, the
    /// exit record, the runtime state, and the answers to waiters.
    fn finish(&mut self) {
        for i in 0..self.outputs.len() {
            self.flush_pending(i);
        }
        self.outputs.clear();
        let mut exit = self.exit.clone().expect("exited");
        exit.oom_killed =
            berth_runtime::ops::info::oom_kills(&self.config.runtime_root, &self.config.id)
                .map(|n| n > 0)
                .unwrap_or(false);
        let _ = berth_sys::fs::replace_file(
            &self.dir.exit(),
            &serde_json::to_vec(&exit).expect("exit records serialise"),
            0o600,
        );
        let _ =
            berth_runtime::ops::delete::delete(&self.config.runtime_root, &self.config.id, true);
        self.exit = Some(exit.clone());
        self.finished = true;
        let _ = std::fs::remove_file(self.dir.socket());
        self.input.close();
        for c in &mut self.clients {
            if c.role == Role::Waiting {
                queue_reply(
                    c,
                    &Reply {
                        exit: Some(exit.clone()),
                        ..Reply::default()
                    },
                );
            }
            c.role = Role::Done;
        }
        self.clients.retain(|c| !c.output.is_empty());
    }

    fn poll_once(&mut self, buf: &mut [u8], timeout_ms: i32) {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        let pfd = |fd: RawFd, events: i16| libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        fds.push(pfd(self.signals.as_raw_fd(), libc::POLLIN));
        let listening = self.exit.is_none();
        fds.push(pfd(
            if listening {
                self.listener.as_raw_fd()
            } else {
                -1
            },
            libc::POLLIN,
        ));
        fds.push(pfd(self.input.poll_fd(), libc::POLLOUT));
        let first_exec = fds.len();
        for e in &self.execs {
            fds.push(pfd(e.input.poll_fd(), libc::POLLOUT));
        }
        let first_output = fds.len();
        for o in &self.outputs {
            fds.push(pfd(o.fd.as_raw_fd(), libc::POLLIN));
        }
        let first_client = fds.len();
        let stdin_full = self.input.full();
        for c in &self.clients {
            let mut events = 0;
            let held_back = stdin_full && matches!(c.role, Role::Attached { .. });
            if !c.input_closed && !held_back {
                events |= libc::POLLIN;
            }
            if !c.output.is_empty() {
                events |= libc::POLLOUT;
            }
            fds.push(pfd(c.stream.as_raw_fd(), events));
        }
        // SAFETY: a valid array of pollfds.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if n <= 0 {
            // Quiet after the start or a request: what that took (the
            // runtime's start, an exec) is not needed any more.
            if n == 0 && self.started && self.busy {
                self.busy = false;
                shed_file_pages();
            }
            return;
        }
        if fds[0].revents != 0 {
            self.reap();
        }
        if fds[1].revents != 0 {
            self.accept();
        }
        if fds[2].revents != 0 {
            self.input.feed();
        }
        for (i, f) in fds[first_exec..first_output].iter().enumerate() {
            if f.revents != 0 && i < self.execs.len() {
                self.execs[i].input.feed();
            }
        }
        let mut closed_outputs = Vec::new();
        for (i, f) in fds[first_output..first_client].iter().enumerate() {
            if f.revents != 0 && !self.read_output(i, buf) {
                closed_outputs.push(i);
            }
        }
        let mut gone = Vec::new();
        for (i, f) in fds[first_client..].iter().enumerate() {
            if i >= self.clients.len() {
                break;
            }
            if f.revents & libc::POLLOUT != 0 && !flush_client(&mut self.clients[i]) {
                gone.push(i);
                continue;
            }
            if f.revents & (libc::POLLHUP | libc::POLLERR) != 0 && self.clients[i].input_closed {
                gone.push(i);
                continue;
            }
            if f.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
                && !self.read_client(i, buf)
            {
                gone.push(i);
            }
        }
        for i in closed_outputs.into_iter().rev() {
            self.flush_pending(i);
            self.outputs.remove(i);
        }
        for i in gone.into_iter().rev() {
            self.clients.remove(i);
        }
        // Answered clients leave once their answer is out.
        self.clients
            .retain(|c| !(c.role == Role::Done && c.output.is_empty()));
    }

    fn reap(&mut self) {
        while let Ok(Some(_)) = self.signals.read_signal() {}
        loop {
            match nix::sys::wait::waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(ws) => {
                    let code = berth_runtime::ops::run::exit_code(ws);
                    if let (Some(pid), Some(code)) = (ws.pid(), code)
                        && let Some(e) = self.execs.iter_mut().find(|e| e.pid == pid.as_raw())
                    {
                        e.exit = Some(code);
                        e.exited_at = Some(Instant::now());
                    }
                    if ws.pid() == Some(Pid::from_raw(self.pid))
                        && let Some(code) = berth_runtime::ops::run::exit_code(ws)
                    {
                        self.exit = Some(ExitRecord {
                            exit_code: code,
                            finished_at: berth_model::time::now_rfc3339_nanos(),
                            oom_killed: false,
                        });
                        self.exited_at = Some(Instant::now());
                    }
                }
            }
        }
    }

    fn accept(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            let _ = stream.set_nonblocking(true);
            self.clients.push(Client {
                stream,
                role: Role::Requesting,
                input: Vec::new(),
                output: Vec::new(),
                input_closed: false,
            });
        }
    }

    /// Reads from the client `i`; false when it has gone.
    fn read_client(&mut self, i: usize, buf: &mut [u8]) -> bool {
        let n = match self.clients[i].stream.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return true,
            Err(_) => return false,
        };
        let c = &mut self.clients[i];
        if n == 0 {
            c.input_closed = true;
            match c.role {
                Role::Attached { stdin: true, .. } => {
                    if self.config.stdin_once && !self.config.tty {
                        self.input.close();
                    }
                    true
                }
                Role::Exec { key } => {
                    if let Some(e) = self.execs.iter_mut().find(|e| e.key == key)
                        && e.master.is_none()
                    {
                        e.input.close();
                    }
                    true
                }
                Role::Attached { .. } | Role::Done => !c.output.is_empty() || c.role != Role::Done,
                // A waiter that hangs up no longer waits.
                Role::Waiting | Role::Requesting => false,
            }
        } else {
            match c.role {
                Role::Requesting => {
                    c.input.extend_from_slice(&buf[..n]);
                    if let Some(nl) = c.input.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = c.input.drain(..=nl).collect();
                        let rest = std::mem::take(&mut c.input);
                        self.handle(i, &line, rest);
                    } else if c.input.len() > MAX_REQUEST {
                        return false;
                    }
                    true
                }
                Role::Exec { key } => {
                    if let Some(e) = self.execs.iter_mut().find(|e| e.key == key) {
                        e.input.push(&buf[..n]);
                    }
                    true
                }
                Role::Attached { stdin: true, .. } => {
                    if self.input.is_open() {
                        self.input.push(&buf[..n]);
                    }
                    true
                }
                _ => true,
            }
        }
    }

    fn handle(&mut self, i: usize, line: &[u8], rest: Vec<u8>) {
        self.busy = true;
        let request: Request = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => {
                let c = &mut self.clients[i];
                queue_reply(c, &Reply::error(format!("bad request: {e}")));
                c.role = Role::Done;
                return;
            }
        };
        let reply = match request {
            Request::Start => {
                if self.started {
                    Reply::error("the container has already been started")
                } else {
                    self.started = true;
                    match berth_runtime::ops::start::start(
                        &self.config.runtime_root,
                        &self.config.id,
                    ) {
                        Ok(_) => Reply::default(),
                        Err(e) => Reply::error(e.to_string()),
                    }
                }
            }
            Request::Attach {
                stdin,
                stdout,
                stderr,
            } => {
                let c = &mut self.clients[i];
                queue_reply(c, &Reply::default());
                c.role = Role::Attached {
                    stdin: stdin && self.input.is_open(),
                    stdout,
                    stderr,
                };
                if stdin && !rest.is_empty() {
                    self.input.push(&rest);
                }
                return;
            }
            Request::Wait => match &self.exit {
                Some(e) if self.finished => Reply {
                    exit: Some(e.clone()),
                    ..Reply::default()
                },
                _ => {
                    self.clients[i].role = Role::Waiting;
                    return;
                }
            },
            Request::Kill { signal } => {
                if self.exit.is_some() {
                    Reply::error("the container is not running")
                } else {
                    match Signal::try_from(signal) {
                        Ok(sig) => match nix::sys::signal::kill(Pid::from_raw(self.pid), sig) {
                            Ok(()) => Reply::default(),
                            Err(e) => Reply::error(format!("kill: {e}")),
                        },
                        Err(_) => Reply::error(format!("invalid signal {signal}")),
                    }
                }
            }
            Request::Exec { process, stdin } => {
                if self.exit.is_some() || !self.started {
                    Reply::error("the container is not running")
                } else {
                    match self.spawn_exec(process, stdin) {
                        Ok((key, pid)) => {
                            let c = &mut self.clients[i];
                            queue_reply(
                                c,
                                &Reply {
                                    pid: Some(pid),
                                    ..Reply::default()
                                },
                            );
                            c.role = Role::Exec { key };
                            return;
                        }
                        Err(e) => Reply::error(e),
                    }
                }
            }
            Request::Resize {
                height,
                width,
                exec: Some(pid),
            } => match self
                .execs
                .iter()
                .find(|e| e.pid == pid)
                .and_then(|e| e.master)
            {
                Some(fd) => resize(fd, height, width),
                None => Reply::error(format!("exec {pid} has no terminal")),
            },
            Request::Resize {
                height,
                width,
                exec: None,
            } => match self.master {
                Some(fd) => resize(fd, height, width),
                None => Reply::error("the container has no terminal"),
            },
            Request::State => Reply {
                pid: Some(self.pid),
                exit: self.exit.clone(),
                ..Reply::default()
            },
        };
        let c = &mut self.clients[i];
        queue_reply(c, &reply);
        c.role = Role::Done;
    }
}

fn resize(fd: RawFd, height: u16, width: u16) -> Reply {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ with a valid winsize on our pty master.
    if unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) } < 0 {
        Reply::error(format!("resize: {}", std::io::Error::last_os_error()))
    } else {
        Reply::default()
    }
}

fn queue_reply(c: &mut Client, reply: &Reply) {
    let mut line = serde_json::to_vec(reply).expect("replies serialise");
    line.push(b'\n');
    c.output.extend_from_slice(&line);
    // Most answers fit the socket buffer: try at once.
    flush_client(c);
}

/// Writes what the client can take; false when it has gone.
fn flush_client(c: &mut Client) -> bool {
    while !c.output.is_empty() {
        match c.stream.write(&c.output) {
            Ok(0) => return false,
            Ok(n) => {
                c.output.drain(..n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}
