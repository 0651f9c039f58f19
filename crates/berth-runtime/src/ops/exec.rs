//! `exec`: run another process inside a running container.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use oci_spec::runtime::Process;

use crate::error::{Error, Result};
use crate::init::child_main;
use crate::process;
use crate::state::Container;
use crate::sync::{Channel, Msg};

/// `exec`'s options.
#[derive(Debug, Default)]
pub struct ExecOptions {
    /// The process to run (from `-p` or built from the arguments).
    pub process: Process,
    /// The console socket, for a process with a terminal.
    pub console_socket: Option<PathBuf>,
    /// Where to write the process's host pid.
    pub pid_file: Option<PathBuf>,
    /// Pass descriptors 3..3+N.
    pub preserve_fds: u32,
}

/// The namespaces exec joins, in order: user first (it owns the rest),
/// mount last (it changes how paths resolve).
const NAMESPACES: &[(&str, CloneFlags)] = &[
    ("user", CloneFlags::CLONE_NEWUSER),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// Starts the process and returns its host pid. The caller waits for it
/// (it becomes the caller's child if the caller is a subreaper) or detaches.
pub fn exec(root: &Path, id: &str, opts: &ExecOptions) -> Result<i32> {
    let c = Container::load(root, id)?;
    let status = c.status();
    if !status.can_exec() {
        return Err(Error::BadState {
            id: id.into(),
            status,
            op: "exec in it",
        });
    }
    crate::config::validate_process(&opts.process)?;
    let terminal = opts.process.terminal().unwrap_or(false);
    let console = match (&opts.console_socket, terminal) {
        (Some(p), true) => Some(crate::console::connect(p)?),
        (None, true) => {
            return Err(Error::InvalidArgument(
                "a process with a terminal needs --console-socket".into(),
            ));
        }
        _ => None,
    };
    let spec = c.spec()?;
    let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Some(crate::seccomp::compile_cached(
            s,
            &crate::seccomp::cache_dir(root),
        )?),
        None => None,
    };
    // Open the namespaces now, while the pid is known to be the init.
    let mut nsfds = Vec::new();
    for (name, flag) in NAMESPACES {
        let path = format!("/proc/{}/ns/{name}", c.saved.pid);
        let theirs = std::fs::metadata(&path).map_err(Error::io("open namespace", &path))?;
        let ours = std::fs::metadata(format!("/proc/self/ns/{name}")).ok();
        if ours.is_some_and(|o| o.ino() == theirs.ino() && o.dev() == theirs.dev()) {
            continue;
        }
        let f = std::fs::File::open(&path).map_err(Error::io("open namespace", &path))?;
        nsfds.push((*flag, OwnedFd::from(f)));
    }
    if !c.init_alive() {
        return Err(Error::BadState {
            id: id.into(),
            status: berth_model::ContainerStatus::Stopped,
            op: "exec in it",
        });
    }
    let (parent, child) = Channel::pair()?;
    let cgroup = &c.saved.cgroup;
    // SAFETY: the runtime is single-threaded and the child never returns
    // and uses no pthread locks.
    let stage1 = match unsafe { crate::process::fork_for(cgroup) }? {
        (nix::unistd::ForkResult::Child, born_in_unified) => {
            drop(parent);
            exec_stage1(
                (cgroup, born_in_unified),
                &opts.process,
                nsfds,
                console,
                seccomp,
                opts.preserve_fds,
                child,
            )
        }
        (nix::unistd::ForkResult::Parent { child: pid }, _) => pid,
    };
    drop(child);
    drop(nsfds);
    drop(console);
    let mut pid = 0;
    let mut ready = false;
    // Stage 1 sends the pid and the process itself Ready: two processes on
    // one channel, so under load Ready can overtake the pid. Wait for both;
    // returning at Ready wrote 0 to --pid-file, and conmon, waiting for
    // pid 0, reported exit code 255 for `podman exec`.
    while pid == 0 || !ready {
        match parent.expect("it started") {
            Ok(Msg::Pid { pid: p }) => {
                pid = p;
                let _ = nix::sys::wait::waitpid(stage1, None);
            }
            Ok(Msg::Ready) => ready = true,
            Ok(other) => return Err(Error::Init(format!("unexpected message {other:?}"))),
            Err(e) => {
                if pid > 0 {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::SIGKILL,
                    );
                }
                let _ = nix::sys::wait::waitpid(stage1, None);
                return Err(e);
            }
        }
    }
    // The channel closes when the process executes its program (it is
    // close-on-exec), or carries why it could not: a program that is not
    // executable is exec's failure, as runc reports it, not the process's.
    if let Ok(Some(Msg::Error { message })) = parent.recv() {
        return Err(Error::Init(message));
    }
    if let Some(p) = &opts.pid_file {
        crate::ops::create::write_pid_file(p, pid)?;
    }
    Ok(pid)
}

fn exec_stage1(
    (cgroup, born_in_unified): (&crate::cgroups::CgroupManager, bool),
    process: &Process,
    nsfds: Vec<(CloneFlags, OwnedFd)>,
    console: Option<OwnedFd>,
    seccomp: Option<crate::seccomp::CompiledFilter>,
    preserve_fds: u32,
    chan: Channel,
) -> ! {
    child_main(&chan, || {
        cgroup.join_self(born_in_unified)?;
        for (flag, fd) in &nsfds {
            nix::sched::setns(fd, *flag).map_err(Error::sys(format!("join namespace {flag:?}")))?;
        }
        drop(nsfds);
        // SAFETY: single-threaded; the child never returns.
        match unsafe { nix::unistd::fork() }.map_err(Error::sys("fork"))? {
            nix::unistd::ForkResult::Child => {
                exec_stage2(process, console, seccomp, preserve_fds, &chan)
            }
            nix::unistd::ForkResult::Parent { child } => {
                chan.send(&Msg::Pid {
                    pid: child.as_raw(),
                })?;
                // SAFETY: see init::child_main.
                unsafe { libc::_exit(0) }
            }
        }
    })
}

fn exec_stage2(
    process: &Process,
    console: Option<OwnedFd>,
    seccomp: Option<crate::seccomp::CompiledFilter>,
    preserve_fds: u32,
    chan: &Channel,
) -> ! {
    child_main(chan, || {
        process::set_rlimits(process)?;
        process::set_oom_score_adj(process)?;
        if let Some(sock) = &console {
            nix::unistd::setsid().map_err(Error::sys("setsid"))?;
            let size = process
                .console_size()
                .map(|b| (b.height() as u16, b.width() as u16));
            let (master, slave) = crate::console::open_pty(size)?;
            crate::console::send_fd(sock.as_raw_fd(), master.as_raw_fd())?;
            drop(master);
            crate::console::become_tty(&slave)?;
        }
        process::set_umask_and_cwd(process)?;
        let program = process::resolve_program(process)?;
        let (argv, envp) = process::exec_args(process);
        process::finalize_identity(process, seccomp.as_ref())?;
        chan.send(&Msg::Ready)?;
        Err(process::exec(&program, &argv, &envp, preserve_fds))
    })
}
