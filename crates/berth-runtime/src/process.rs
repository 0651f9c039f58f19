//! The last steps before the user's program runs, shared by a container's
//! init and by `exec`: rlimits, identity, capabilities, no_new_privs,
//! seccomp, file descriptors, and execve.

use std::collections::HashSet;
use std::ffi::CString;
use std::path::{Path, PathBuf};

use caps::{CapSet, Capability};
use oci_spec::runtime::{PosixRlimitType, Process};

use crate::error::{Error, Result};
use crate::seccomp::CompiledFilter;

/// The default PATH when the process's environment has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Applies `process.rlimits`. The error names the limit, what was asked, and
/// the host's ceiling when the failure is a hard limit that needs
/// CAP_SYS_RESOURCE to raise.
pub fn set_rlimits(process: &Process) -> Result<()> {
    for rl in process.rlimits().as_deref().unwrap_or_default() {
        let (res, name) = rlimit_resource(rl.typ());
        let lim = libc::rlimit {
            rlim_cur: rl.soft(),
            rlim_max: rl.hard(),
        };
        // SAFETY: plain syscall with a valid struct.
        if unsafe { libc::setrlimit(res, &lim) } != 0 {
            let err = std::io::Error::last_os_error();
            let mut cur = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: as above.
            unsafe { libc::getrlimit(res, &mut cur) };
            let why = if err.raw_os_error() == Some(libc::EPERM) {
                format!(
                    ": the host's hard limit is {}, and raising it needs CAP_SYS_RESOURCE, which this host withholds",
                    fmt_limit(cur.rlim_max)
                )
            } else {
                format!(": {err}")
            };
            return Err(Error::Unsupported(format!(
                "cannot set {name} to soft={} hard={}{why}",
                fmt_limit(rl.soft()),
                fmt_limit(rl.hard())
            )));
        }
    }
    Ok(())
}

fn fmt_limit(v: u64) -> String {
    if v == libc::RLIM_INFINITY {
        "unlimited".into()
    } else {
        v.to_string()
    }
}

fn rlimit_resource(t: PosixRlimitType) -> (u32, &'static str) {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => (libc::RLIMIT_CPU, "RLIMIT_CPU"),
        RlimitFsize => (libc::RLIMIT_FSIZE, "RLIMIT_FSIZE"),
        RlimitData => (libc::RLIMIT_DATA, "RLIMIT_DATA"),
        RlimitStack => (libc::RLIMIT_STACK, "RLIMIT_STACK"),
        RlimitCore => (libc::RLIMIT_CORE, "RLIMIT_CORE"),
        RlimitRss => (libc::RLIMIT_RSS, "RLIMIT_RSS"),
        RlimitNproc => (libc::RLIMIT_NPROC, "RLIMIT_NPROC"),
        RlimitNofile => (libc::RLIMIT_NOFILE, "RLIMIT_NOFILE"),
        RlimitMemlock => (libc::RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK"),
        RlimitAs => (libc::RLIMIT_AS, "RLIMIT_AS"),
        RlimitLocks => (libc::RLIMIT_LOCKS, "RLIMIT_LOCKS"),
        RlimitSigpending => (libc::RLIMIT_SIGPENDING, "RLIMIT_SIGPENDING"),
        RlimitMsgqueue => (libc::RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE"),
        RlimitNice => (libc::RLIMIT_NICE, "RLIMIT_NICE"),
        RlimitRtprio => (libc::RLIMIT_RTPRIO, "RLIMIT_RTPRIO"),
        RlimitRttime => (libc::RLIMIT_RTTIME, "RLIMIT_RTTIME"),
    }
}

/// Writes `process.oomScoreAdj` for the calling process.
pub fn set_oom_score_adj(process: &Process) -> Result<()> {
    if let Some(v) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", v.to_string())
            .map_err(Error::io("write", "/proc/self/oom_score_adj"))?;
    }
    Ok(())
}

/// The program to execute, found like execvp would in the container's root
/// (call after pivot_root or setns): `exec: "x": executable file not found in
/// $PATH` as runc says it.
pub fn resolve_program(process: &Process) -> Result<PathBuf> {
    let arg0 = &process.args().as_ref().expect("validated")[0];
    if arg0.contains('/') {
        let p = if Path::new(arg0).is_absolute() {
            PathBuf::from(arg0)
        } else {
            process.cwd().join(arg0)
        };
        return match std::fs::metadata(&p) {
            Ok(m) if m.is_file() => Ok(p),
            Ok(_) => Err(Error::Init(format!("exec: {arg0:?}: is a directory"))),
            Err(e) => Err(Error::Init(format!("exec: {arg0:?}: {e}"))),
        };
    }
    let path = env_value(process, "PATH").unwrap_or_else(|| DEFAULT_PATH.to_owned());
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = Path::new(dir).join(arg0);
        if let Ok(m) = std::fs::metadata(&cand) {
            use std::os::unix::fs::PermissionsExt;
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return Ok(cand);
            }
        }
    }
    Err(Error::Init(format!(
        "exec: {arg0:?}: executable file not found in $PATH"
    )))
}

fn env_value(process: &Process, key: &str) -> Option<String> {
    process
        .env()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix(key)?.strip_prefix('=').map(str::to_owned))
}

/// argv and envp for execve; HOME is added from the container's
/// /etc/passwd (or `/`) when the spec does not set it, as runc does.
pub fn exec_args(process: &Process) -> (Vec<CString>, Vec<CString>) {
    let to_c = |s: &String| CString::new(s.as_bytes()).unwrap_or_default();
    let argv: Vec<CString> = process
        .args()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(to_c)
        .collect();
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    if env_value(process, "HOME").is_none() {
        env.push(format!("HOME={}", home_of(process.user().uid())));
    }
    (argv, env.iter().map(to_c).collect())
}

fn home_of(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| f[5].to_owned())
            })
        })
        .unwrap_or_else(|| "/".into())
}

fn cap_set(names: Option<&HashSet<oci_spec::runtime::Capability>>) -> caps::CapsHashSet {
    let mut out = caps::CapsHashSet::new();
    for c in names.into_iter().flatten() {
        let name = c.to_string();
        let name = if name.starts_with("CAP_") {
            name
        } else {
            format!("CAP_{name}")
        };
        if let Ok(cap) = name.parse::<Capability>() {
            out.insert(cap);
        }
    }
    out
}

/// Becomes the spec's user with the spec's capabilities, applies
/// no_new_privs and seccomp in the order that lets each succeed, and sets
/// the umask and working directory.
pub fn finalize_identity(process: &Process, seccomp: Option<&CompiledFilter>) -> Result<()> {
    let caps_spec = process.capabilities().as_ref();
    let bounding = cap_set(caps_spec.and_then(|c| c.bounding().as_ref()));
    for cap in caps::all() {
        if !bounding.contains(&cap) {
            match caps::drop(None, CapSet::Bounding, cap) {
                Ok(()) => {}
                // The kernel may not know the newest capabilities.
                Err(_) if !caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) => {}
                Err(e) => return Err(Error::Init(format!("drop {cap} from bounding set: {e}"))),
            }
        }
    }
    let nnp = process.no_new_privileges().unwrap_or(false);
    if let (Some(f), false) = (seccomp, nnp) {
        // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN, so
        // it goes in while we still have it.
        f.install()?;
    }
    let user = process.user();
    nix::sys::prctl::set_keepcaps(true).map_err(Error::sys("keep capabilities"))?;
    let gids: Vec<nix::unistd::Gid> = user
        .additional_gids()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|g| nix::unistd::Gid::from_raw(*g))
        .collect();
    match nix::unistd::setgroups(&gids) {
        Ok(()) => {}
        // setgroups is denied in a user namespace with setgroups=deny.
        Err(nix::Error::EPERM) if gids.is_empty() => {}
        Err(e) => return Err(Error::sys("setgroups")(e)),
    }
    let gid = nix::unistd::Gid::from_raw(user.gid());
    nix::unistd::setresgid(gid, gid, gid).map_err(Error::sys(format!("setgid {}", user.gid())))?;
    let uid = nix::unistd::Uid::from_raw(user.uid());
    nix::unistd::setresuid(uid, uid, uid).map_err(Error::sys(format!("setuid {}", user.uid())))?;
    nix::sys::prctl::set_keepcaps(false).map_err(Error::sys("clear keepcaps"))?;
    let set = |which: CapSet, names: Option<&HashSet<oci_spec::runtime::Capability>>| {
        caps::set(None, which, &cap_set(names))
            .map_err(|e| Error::Init(format!("set {which:?} capabilities: {e}")))
    };
    set(
        CapSet::Inheritable,
        caps_spec.and_then(|c| c.inheritable().as_ref()),
    )?;
    set(
        CapSet::Effective,
        caps_spec.and_then(|c| c.effective().as_ref()),
    )?;
    set(
        CapSet::Permitted,
        caps_spec.and_then(|c| c.permitted().as_ref()),
    )?;
    let ambient = cap_set(caps_spec.and_then(|c| c.ambient().as_ref()));
    for cap in ambient {
        // As runc: an ambient capability the kernel refuses is not fatal.
        let _ = caps::raise(None, CapSet::Ambient, cap);
    }
    if nnp {
        nix::sys::prctl::set_no_new_privs().map_err(Error::sys("set no_new_privs"))?;
        if let Some(f) = seccomp {
            f.install()?;
        }
    }
    Ok(())
}

/// Sets the umask and working directory of the process.
pub fn set_umask_and_cwd(process: &Process) -> Result<()> {
    let umask = process.user().umask().unwrap_or(0o022);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
    nix::unistd::chdir(process.cwd()).map_err(Error::sys(format!(
        "chdir to cwd {}",
        process.cwd().display()
    )))?;
    // A cwd reached through a descriptor the runtime still holds (the
    // CVE-2024-21626 class, e.g. cwd /proc/self/fd/7) lies outside the
    // container's root, where getcwd(3) reports it unreachable.
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => Ok(()),
        _ => Err(Error::InvalidSpec(format!(
            "process.cwd {} lies outside the container's root",
            process.cwd().display()
        ))),
    }
}

/// Replaces the process with the user's program. Every descriptor from
/// `3 + preserve_fds` up is closed by the exec, so nothing of the runtime's
/// (the host directories it opened, its sockets) reaches the container.
pub fn exec(program: &Path, argv: &[CString], envp: &[CString], preserve_fds: u32) -> Error {
    if let Err(e) = berth_sys::fd::cloexec_from(3 + preserve_fds) {
        return Error::Init(format!("close descriptors: {e}"));
    }
    reset_signals();
    let p = CString::new(program.as_os_str().as_encoded_bytes()).unwrap_or_default();
    match nix::unistd::execve(&p, argv, envp) {
        Ok(never) => match never {},
        // runc's words (`exec: "/x": permission denied`), which engines
        // such as Docker's CLI read to pick the exit code (126, 127).
        Err(e) => {
            let desc = e.desc();
            let mut reason = desc.to_owned();
            if let Some(first) = desc.chars().next() {
                reason.replace_range(..first.len_utf8(), &first.to_lowercase().to_string());
            }
            Error::Init(format!(
                "exec: {:?}: {reason}",
                program.display().to_string()
            ))
        }
    }
}

/// Gives the program the signal state a fresh process has: the runtime
/// ignores SIGPIPE (as every Rust program does) and blocks the signals it
/// supervises, and both would otherwise survive execve.
fn reset_signals() {
    // SAFETY: resetting dispositions to SIG_DFL and clearing the mask are
    // always valid; SIGKILL and SIGSTOP just fail with EINVAL.
    unsafe {
        for sig in 1..libc::SIGRTMAX() {
            libc::signal(sig, libc::SIG_DFL);
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// Forks the (single-threaded) runtime for a process of the container
/// whose cgroups are `cgroup`: where the kernel can, the child is born in
/// the container's cgroup2 directory (`CLONE_INTO_CGROUP`); the second
/// value says whether it was. The child then joins the rest itself
/// ([`CgroupManager::join_self`](crate::cgroups::CgroupManager::join_self)).
///
/// # Safety
///
/// As [`berth_sys::process::fork_into_cgroup`]: the caller is
/// single-threaded, and the child relies on neither libc's cached thread id
/// nor `pthread_atfork` handlers.
pub(crate) unsafe fn fork_for(
    cgroup: &crate::cgroups::CgroupManager,
) -> crate::error::Result<(nix::unistd::ForkResult, bool)> {
    use std::os::fd::AsFd;
    if let Some(dir) = cgroup.open_unified() {
        // SAFETY: forwarded to the caller.
        match unsafe { berth_sys::process::fork_into_cgroup(dir.as_fd()) } {
            Ok(0) => return Ok((nix::unistd::ForkResult::Child, true)),
            Ok(pid) => {
                let child = nix::unistd::Pid::from_raw(pid);
                return Ok((nix::unistd::ForkResult::Parent { child }, true));
            }
            // An older kernel, or a move it refuses: the child tries the
            // move through cgroup.procs, which reports the error.
            Err(_) => {}
        }
    }
    // SAFETY: forwarded to the caller.
    let forked = unsafe { nix::unistd::fork() }.map_err(crate::error::Error::sys("fork"))?;
    Ok((forked, false))
}
