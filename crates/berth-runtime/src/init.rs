//! The processes that become the container.
//!
//! The runtime process forks **stage 1**, which the runtime first moves into
//! the container's cgroups. Stage 1 joins the namespaces the spec names by
//! path, creates the user namespace (the runtime writes its id maps), then
//! unshares every other new namespace and forks **stage 2**: pid 1 of a new
//! pid namespace, and the container's init. Stage 1 reports stage 2's host
//! pid and exits. Stage 2 builds the root filesystem, asks the runtime to
//! run the createRuntime hooks, pivots, applies the process settings that can
//! fail (rlimits, the console, finding the program), reports `Ready`, and
//! then blocks on the exec fifo until `start` writes to it. After that it
//! drops to the spec's identity and executes the user's program.
//!
//! Everything here runs in a fork of a single-threaded process, so
//! allocating is safe; nothing here may return to the caller's stack.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::cgroups::CgroupManager;
use crate::error::{Error, Result};
use crate::hooks::{self, HookPoint};
use crate::process;
use crate::rootfs::{self, RootfsContext};
use crate::seccomp::CompiledFilter;
use crate::sync::{Channel, Msg};

/// What the container's processes inherit from the runtime.
pub struct InitArgs<'a> {
    /// The spec.
    pub spec: &'a Spec,
    /// Absolute rootfs path.
    pub rootfs: &'a std::path::Path,
    /// Absolute bundle path.
    pub bundle: &'a std::path::Path,
    /// The container's cgroups, which stage 1 joins first.
    pub cgroup: &'a CgroupManager,
    /// Stage 1 was born in the container's cgroup2 directory.
    pub born_in_unified: bool,
    /// The exec fifo, opened read-write: init blocks reading it until start.
    pub fifo: OwnedFd,
    /// The started fifo: closed by the exec, or given the reason it failed.
    pub started: OwnedFd,
    /// The connected console socket, when the process has a terminal.
    pub console: Option<OwnedFd>,
    /// The compiled seccomp filter.
    pub seccomp: Option<CompiledFilter>,
    /// `--no-pivot`.
    pub no_pivot: bool,
    /// `--no-new-keyring`.
    pub no_new_keyring: bool,
    /// `--preserve-fds`.
    pub preserve_fds: u32,
}

/// Runs `f` in a forked child and never returns: an error goes to the
/// parent over `chan` (or to stderr once the parent is gone) and the child
/// exits 1.
pub fn child_main(chan: &Channel, f: impl FnOnce() -> Result<std::convert::Infallible>) -> ! {
    let err = match f() {
        Ok(never) => match never {},
        Err(e) => e,
    };
    if chan
        .send(&Msg::Error {
            message: err.to_string(),
        })
        .is_err()
    {
        eprintln!("berth: {err}");
    }
    // SAFETY: _exit skips atexit handlers and stdio flushing that belong to
    // the parent's copy of this address space.
    unsafe { libc::_exit(1) }
}

fn ns_flag(t: LinuxNamespaceType) -> CloneFlags {
    CloneFlags::from_bits_truncate(t as i32)
}

/// Stage 1: namespaces, then fork the init.
pub fn stage1(args: InitArgs, chan: Channel) -> ! {
    child_main(&chan, || {
        args.cgroup.join_self(args.born_in_unified)?;
        let namespaces = args
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default();
        // Open every path before joining anything: after joining a mount
        // namespace the paths would resolve elsewhere.
        let mut joins = Vec::new();
        for ns in &namespaces {
            if let Some(p) = ns.path() {
                let fd = std::fs::File::open(p).map_err(|e| {
                    Error::InvalidSpec(format!("{} namespace path {}: {e}", ns.typ(), p.display()))
                })?;
                joins.push((ns.typ(), OwnedFd::from(fd)));
            }
        }
        // The user namespace comes first: it owns the others.
        joins.sort_by_key(|(t, _)| match t {
            LinuxNamespaceType::User => 0,
            LinuxNamespaceType::Mount => 2,
            _ => 1,
        });
        let mut new_flags = CloneFlags::empty();
        for ns in &namespaces {
            if ns.path().is_none() {
                new_flags |= ns_flag(ns.typ());
            }
        }
        let mut rest = joins.into_iter().peekable();
        if let Some((LinuxNamespaceType::User, _)) = rest.peek() {
            let (t, fd) = rest.next().expect("peeked");
            nix::sched::setns(&fd, ns_flag(t)).map_err(Error::sys("join user namespace"))?;
        }
        if new_flags.contains(CloneFlags::CLONE_NEWUSER) {
            nix::sched::unshare(CloneFlags::CLONE_NEWUSER)
                .map_err(Error::sys("create user namespace"))?;
            chan.send(&Msg::MapIds)?;
            chan.expect("id mapping")?;
            nix::unistd::setresgid(0.into(), 0.into(), 0.into())
                .map_err(Error::sys("become root in the user namespace"))?;
            nix::unistd::setresuid(0.into(), 0.into(), 0.into())
                .map_err(Error::sys("become root in the user namespace"))?;
        }
        for (t, fd) in rest {
            nix::sched::setns(&fd, ns_flag(t))
                .map_err(Error::sys(format!("join {t} namespace")))?;
        }
        let unshare = new_flags - CloneFlags::CLONE_NEWUSER;
        if !unshare.is_empty() {
            nix::sched::unshare(unshare)
                .map_err(Error::sys(format!("create namespaces {unshare:?}")))?;
        }
        write_time_offsets(args.spec, new_flags)?;
        // SAFETY: this process is single-threaded (a fork of the runtime).
        match unsafe { nix::unistd::fork() }.map_err(Error::sys("fork container init"))? {
            nix::unistd::ForkResult::Child => stage2(args, &chan),
            nix::unistd::ForkResult::Parent { child } => {
                chan.send(&Msg::Pid {
                    pid: child.as_raw(),
                })?;
                // SAFETY: see child_main.
                unsafe { libc::_exit(0) }
            }
        }
    })
}

fn write_time_offsets(spec: &Spec, new: CloneFlags) -> Result<()> {
    const CLONE_NEWTIME: i32 = 0x80;
    if !new.contains(CloneFlags::from_bits_retain(CLONE_NEWTIME)) {
        return Ok(());
    }
    let Some(offsets) = spec.linux().as_ref().and_then(|l| l.time_offsets().clone()) else {
        return Ok(());
    };
    let mut text = String::new();
    for (clock, off) in &offsets {
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    std::fs::write("/proc/self/timens_offsets", text)
        .map_err(Error::io("write", "/proc/self/timens_offsets"))
}

fn has_new(spec: &Spec, t: LinuxNamespaceType) -> bool {
    crate::config::namespace(spec, t).is_some_and(|n| n.path().is_none())
}

/// Stage 2: the container's init.
fn stage2(args: InitArgs, chan: &Channel) -> ! {
    child_main(chan, || {
        let spec = args.spec;
        let proc_ = spec.process().as_ref().expect("validated");
        nix::sys::stat::umask(nix::sys::stat::Mode::empty());
        let new_mnt = has_new(spec, LinuxNamespaceType::Mount);
        let userns = crate::config::namespace(spec, LinuxNamespaceType::User).is_some();
        if new_mnt {
            rootfs::prepare(&RootfsContext {
                spec,
                rootfs: args.rootfs,
                bundle: args.bundle,
                cgroup: args.cgroup,
                userns,
            })?;
        }
        if has_new(spec, LinuxNamespaceType::Uts) {
            if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
                nix::unistd::sethostname(h).map_err(Error::sys(format!("set hostname {h}")))?;
            }
            if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
                set_domainname(d)?;
            }
        }
        chan.send(&Msg::Hooks)?;
        let state = match chan.expect("hooks")? {
            Msg::HooksDone { state } => state,
            other => return Err(Error::Init(format!("unexpected message {other:?}"))),
        };
        hooks::run(spec, HookPoint::CreateContainer, &state)?;
        if new_mnt {
            rootfs::pivot(args.rootfs, args.no_pivot)?;
            rootfs::finalize(spec, userns)?;
        } else {
            nix::unistd::chroot(args.rootfs).map_err(Error::sys("chroot"))?;
            nix::unistd::chdir("/").map_err(Error::sys("chdir /"))?;
        }
        if !args.no_new_keyring {
            join_session_keyring();
        }
        process::set_oom_score_adj(proc_)?;
        process::set_rlimits(proc_)?;
        set_personality(spec)?;
        nix::unistd::setsid().map_err(Error::sys("setsid"))?;
        if proc_.terminal().unwrap_or(false) {
            let sock = args.console.as_ref().ok_or_else(|| {
                Error::InvalidArgument(
                    "process.terminal is true but no --console-socket was given".into(),
                )
            })?;
            let size = proc_
                .console_size()
                .map(|b| (b.height() as u16, b.width() as u16));
            let (master, slave) = crate::console::open_pty(size)?;
            crate::console::send_fd(sock.as_raw_fd(), master.as_raw_fd())?;
            drop(master);
            crate::console::become_tty(&slave)?;
        }
        let program = process::resolve_program(proc_)?;
        let (argv, envp) = process::exec_args(proc_);
        chan.send(&Msg::Ready)?;
        wait_for_start(&args.fifo)?;
        let err = (|| {
            hooks::run(spec, HookPoint::StartContainer, &state)?;
            process::set_umask_and_cwd(proc_)?;
            process::finalize_identity(proc_, args.seccomp.as_ref())?;
            if wants_init(spec) {
                reap_as_init(&args.started, &argv)?;
            }
            Err(process::exec(&program, &argv, &envp, args.preserve_fds))
        })()
        .unwrap_or_else(|e: Error| e);
        // `start` is waiting to hear how the exec went.
        let _ = nix::unistd::write(&args.started, err.to_string().as_bytes());
        Err(err)
    })
}

/// The annotation that asks for a built-in init (`docker run --init`).
pub const INIT_ANNOTATION: &str = "org.berth.init";

fn wants_init(spec: &Spec) -> bool {
    spec.annotations()
        .as_ref()
        .and_then(|a| a.get(INIT_ANNOTATION))
        .is_some_and(|v| v == "true")
}

/// Stays as the container's pid 1 while a child goes on to execute the
/// program (this returns in the child only): forwards every signal to it,
/// reaps every orphan, and exits with its status, as `docker run --init`
/// (tini) does. The started fifo is the child's to close or to write an
/// exec failure to.
fn reap_as_init(started: &OwnedFd, argv: &[std::ffi::CString]) -> Result<()> {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal};
    let all = SigSet::all();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None)
        .map_err(Error::sys("block signals"))?;
    // SAFETY: single-threaded (a fork of the runtime); the child returns to
    // execute the program, the parent never returns.
    let child = match unsafe { nix::unistd::fork() }.map_err(Error::sys("fork"))? {
        nix::unistd::ForkResult::Child => return Ok(()),
        nix::unistd::ForkResult::Parent { child } => child,
    };
    // SAFETY: closing our copy of the started fifo; the child keeps its own.
    unsafe { libc::close(started.as_raw_fd()) };
    let _ = nix::sys::prctl::set_name(c"berth-init");
    // As docker-init shows itself: `berth-init -- PROGRAM ARGS` in place of
    // the command line inherited from the process that made the container.
    let mut title: Vec<&[u8]> = vec![b"berth-init", b"--"];
    title.extend(argv.iter().map(|a| a.as_bytes()));
    set_cmdline(&title);
    loop {
        let sig = match all.wait() {
            Ok(s) => s,
            Err(_) => continue,
        };
        if sig != Signal::SIGCHLD {
            let _ = nix::sys::signal::kill(child, sig);
            continue;
        }
        loop {
            use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
            match waitpid(nix::unistd::Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(ws) if ws.pid() == Some(child) => {
                    let code = crate::ops::run::exit_code(ws).unwrap_or(1);
                    // SAFETY: leaving the forked init without unwinding.
                    unsafe { libc::_exit(code) }
                }
                Ok(_) => {}
            }
        }
    }
}

/// Rewrites this process's command line (what `/proc/self/cmdline` and
/// `ps` show) in the memory the kernel reads it from, truncated to the
/// space the original had; NUL-padded. Without privileges (prctl's
/// PR_SET_MM needs CAP_SYS_RESOURCE), as setproctitle does.
fn set_cmdline(parts: &[&[u8]]) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the command name (which may hold spaces): the third
    // field onwards; arg_start and arg_end are fields 48 and 49.
    let Some((_, rest)) = stat.rsplit_once(") ") else {
        return;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let (Some(start), Some(end)) = (
        fields.get(45).and_then(|f| f.parse::<usize>().ok()),
        fields.get(46).and_then(|f| f.parse::<usize>().ok()),
    ) else {
        return;
    };
    if end <= start || end - start > 1 << 20 {
        return;
    }
    let len = end - start;
    let mut buf = vec![0u8; len];
    let mut at = 0;
    for part in parts {
        if at >= len - 1 {
            break;
        }
        let n = part.len().min(len - 1 - at);
        buf[at..at + n].copy_from_slice(&part[..n]);
        at += n + 1;
    }
    // SAFETY: [arg_start, arg_end) is this process's argument area (on its
    // initial stack, writable), as the kernel reports it; nothing in this
    // single-threaded init reads the old arguments any more.
    unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), start as *mut u8, len) };
}

fn wait_for_start(fifo: &OwnedFd) -> Result<()> {
    let mut b = [0u8; 1];
    loop {
        match nix::unistd::read(fifo, &mut b) {
            Ok(1) => return Ok(()),
            Ok(_) => return Err(Error::Init("exec fifo closed before start".into())),
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(Error::sys("read exec fifo")(e)),
        }
    }
}

fn set_domainname(d: &str) -> Result<()> {
    // SAFETY: pointer and length of a live string.
    let r = unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) };
    if r < 0 {
        return Err(Error::sys(format!("set domainname {d}"))(nix::Error::last()));
    }
    Ok(())
}

fn join_session_keyring() {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: a NULL name asks for a new anonymous keyring. Kernels without
    // keyrings (ENOSYS) or seccomp-denied keyctl are fine to ignore.
    unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, 0usize) };
}

fn set_personality(spec: &Spec) -> Result<()> {
    use oci_spec::runtime::LinuxPersonalityDomain;
    let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().clone()) else {
        return Ok(());
    };
    let persona: libc::c_ulong = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    // SAFETY: plain syscall.
    if unsafe { libc::personality(persona) } < 0 {
        return Err(Error::sys("personality")(nix::Error::last()));
    }
    Ok(())
}
