//! The seccomp filter of a container: berth's default profile, a profile
//! given with `--security-opt seccomp=PROFILE` (Docker's JSON format, sent
//! by the CLI as its contents), or none (`seccomp=unconfined`,
//! `--privileged`).
//!
//! The default profile is an allow-list, as Docker's is: a syscall not
//! named below fails with EPERM (and one newer than every syscall named
//! with ENOSYS, which the runtime arranges, so that libc falls back to the
//! call it replaces). What a container may call is what Docker's profile
//! lets it call: the ordinary syscalls of files, memory, processes,
//! signals, time, sockets and System V IPC; the ones that reach outside a
//! container (modules, kexec, reboot, setting the clock, swap, accounting,
//! keyrings, mounts and namespaces, raw I/O ports, BPF, perf, handles by
//! inode) only with the capability that makes them safe; `clone` without
//! namespace flags unless the container holds CAP_SYS_ADMIN, and `clone3`
//! (whose flags are out of a filter's reach) answered with ENOSYS so that
//! libcs fall back to `clone`; `socket` for every family but AF_VSOCK;
//! `personality` for the common personas only. io_uring is left out, as
//! Docker has left it out since 25.0.

use serde::Deserialize;
use serde_json::{Value, json};

/// Files, directories, descriptors and their I/O.
#[rustfmt::skip]
const FILES: &[&str] = &[
    "access", "faccessat", "faccessat2", "chdir", "fchdir", "getcwd", "chmod", "fchmod",
    "fchmodat", "fchmodat2", "chown", "chown32", "fchown", "fchown32", "fchownat", "lchown",
    "lchown32", "umask", "open", "openat", "openat2", "creat", "close", "close_range", "dup",
    "dup2", "dup3", "fcntl", "fcntl64", "flock", "ioctl", "read", "readv", "pread64", "preadv",
    "preadv2", "write", "writev", "pwrite64", "pwritev", "pwritev2", "lseek", "_llseek",
    "sendfile", "sendfile64", "splice", "tee", "vmsplice", "copy_file_range", "readahead",
    "fadvise64", "fadvise64_64", "fallocate", "truncate", "truncate64", "ftruncate", "ftruncate64",
    "fsync", "fdatasync", "sync", "syncfs", "sync_file_range", "stat", "stat64", "lstat",
    "lstat64", "fstat", "fstat64", "newfstatat", "fstatat64", "statx", "statfs", "statfs64",
    "fstatfs", "fstatfs64", "getdents", "getdents64", "mkdir", "mkdirat", "mknod", "mknodat",
    "rmdir", "link", "linkat", "symlink", "symlinkat", "readlink", "readlinkat", "unlink",
    "unlinkat", "rename", "renameat", "renameat2", "utime", "utimes", "futimesat", "utimensat",
    "utimensat_time64", "getxattr", "lgetxattr", "fgetxattr", "setxattr", "lsetxattr", "fsetxattr",
    "listxattr", "llistxattr", "flistxattr", "removexattr", "lremovexattr", "fremovexattr",
    "inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch", "fanotify_mark",
    "name_to_handle_at", "cachestat", "pipe", "pipe2",
];

/// Waiting on descriptors, and the descriptors made for waiting.
#[rustfmt::skip]
const EVENTS: &[&str] = &[
    "select", "_newselect", "pselect6", "pselect6_time64", "poll", "ppoll", "ppoll_time64",
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_wait", "epoll_wait_old",
    "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "signalfd", "signalfd4",
    "timerfd_create", "timerfd_settime", "timerfd_settime64", "timerfd_gettime",
    "timerfd_gettime64", "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64",
];

/// Memory of the calling process.
#[rustfmt::skip]
const MEMORY: &[&str] = &[
    "brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync", "mlock",
    "mlock2", "mlockall", "munlock", "munlockall", "remap_file_pages", "memfd_create",
    "memfd_secret", "membarrier", "pkey_alloc", "pkey_free", "pkey_mprotect", "map_shadow_stack",
    "mseal",
];

/// Processes, threads, their identities, limits and scheduling.
#[rustfmt::skip]
const PROCESSES: &[&str] = &[
    "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid", "waitpid",
    "getpid", "getppid", "gettid", "getpgid", "setpgid", "getpgrp", "getsid", "setsid", "getuid",
    "getuid32", "geteuid", "geteuid32", "getgid", "getgid32", "getegid", "getegid32", "getresuid",
    "getresuid32", "getresgid", "getresgid32", "getgroups", "getgroups32", "setuid", "setuid32",
    "setgid", "setgid32", "setreuid", "setreuid32", "setregid", "setregid32", "setresuid",
    "setresuid32", "setresgid", "setresgid32", "setfsuid", "setfsuid32", "setfsgid", "setfsgid32",
    "setgroups", "setgroups32", "capget", "capset", "prctl", "seccomp", "landlock_create_ruleset",
    "landlock_add_rule", "landlock_restrict_self", "getrlimit", "ugetrlimit", "setrlimit",
    "prlimit64", "getrusage", "getpriority", "setpriority", "ioprio_get", "ioprio_set",
    "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getattr", "sched_setattr",
    "sched_getparam", "sched_setparam", "sched_getscheduler", "sched_setscheduler",
    "sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval",
    "sched_rr_get_interval_time64", "getcpu", "set_tid_address", "set_robust_list",
    "get_robust_list", "rseq", "set_thread_area", "get_thread_area", "futex", "futex_time64",
    "futex_waitv", "futex_wake", "futex_wait", "futex_requeue", "uname", "sysinfo", "getrandom",
    "restart_syscall", "pidfd_open", "pidfd_send_signal", "process_mrelease",
    // Kernels from 4.8 check these against seccomp themselves.
    "ptrace", "process_vm_readv", "process_vm_writev",
];

/// Signals, timers and clocks (reading the clock; `adjtimex` and
/// `clock_adjtime` change it only with CAP_SYS_TIME, which the kernel
/// checks).
#[rustfmt::skip]
const SIGNALS_AND_TIME: &[&str] = &[
    "kill", "tkill", "tgkill", "rt_sigaction", "rt_sigprocmask", "rt_sigpending", "rt_sigsuspend",
    "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
    "rt_sigreturn", "sigreturn", "sigprocmask", "sigaltstack", "pause", "alarm", "getitimer",
    "setitimer", "timer_create", "timer_delete", "timer_settime", "timer_settime64",
    "timer_gettime", "timer_gettime64", "timer_getoverrun", "time", "times", "gettimeofday",
    "clock_gettime", "clock_gettime64", "clock_getres", "clock_getres_time64", "clock_nanosleep",
    "clock_nanosleep_time64", "nanosleep", "adjtimex", "clock_adjtime", "clock_adjtime64",
];

/// Sockets (`socket` itself has a rule of its own) and System V and POSIX
/// IPC.
#[rustfmt::skip]
const SOCKETS_AND_IPC: &[&str] = &[
    "socketpair", "socketcall", "bind", "listen", "accept", "accept4", "connect", "getsockname",
    "getpeername", "getsockopt", "setsockopt", "shutdown", "send", "sendto", "sendmsg", "sendmmsg",
    "recv", "recvfrom", "recvmsg", "recvmmsg", "recvmmsg_time64", "ipc", "msgget", "msgsnd",
    "msgrcv", "msgctl", "semget", "semop", "semtimedop", "semtimedop_time64", "semctl", "shmget",
    "shmat", "shmdt", "shmctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedsend_time64",
    "mq_timedreceive", "mq_timedreceive_time64", "mq_notify", "mq_getsetattr",
];

/// Syscalls of one architecture family, by Docker's names for the
/// architectures.
const BY_ARCH: &[(&[&str], &[&str])] = &[
    (&["amd64", "x32"], &["arch_prctl"]),
    (&["amd64", "x32", "x86"], &["modify_ldt"]),
    (
        &["arm", "arm64"],
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
    ),
];

/// Syscalls allowed to a container holding the capability.
const BY_CAPABILITY: &[(&str, &[&str])] = &[
    (
        "CAP_SYS_ADMIN",
        &[
            "mount",
            "umount",
            "umount2",
            "pivot_root",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "setns",
            "unshare",
            "clone",
            "clone3",
            "quotactl",
            "quotactl_fd",
            "sethostname",
            "setdomainname",
            "lookup_dcookie",
            "fanotify_init",
            "bpf",
            "perf_event_open",
            "syslog",
        ],
    ),
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    ("CAP_SYS_BOOT", &["reboot"]),
    (
        "CAP_SYS_MODULE",
        &["init_module", "finit_module", "delete_module"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &["kcmp", "pidfd_getfd", "process_madvise"],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "CAP_SYS_TIME",
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_NICE",
        &[
            "get_mempolicy",
            "set_mempolicy",
            "set_mempolicy_home_node",
            "mbind",
        ],
    ),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// The personas `personality` may switch to: Linux, Linux32, and both with
/// UNAME26; 0xffffffff only queries.
const PERSONAS: [u64; 5] = [0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// The address family `socket` may not open: AF_VSOCK reaches the host.
const AF_VSOCK: u64 = 40;

/// The default profile for a container with `caps`, as an OCI
/// `linux.seccomp` value.
pub fn default_profile(caps: &[String]) -> Value {
    let has = |cap: &str| caps.iter().any(|c| c == cap);
    let mut allowed: Vec<&str> = [
        FILES,
        EVENTS,
        MEMORY,
        PROCESSES,
        SIGNALS_AND_TIME,
        SOCKETS_AND_IPC,
    ]
    .concat();
    for (arches, calls) in BY_ARCH {
        if arches.iter().any(|a| host_arches().contains(a)) {
            allowed.extend_from_slice(calls);
        }
    }
    for (cap, calls) in BY_CAPABILITY {
        if has(cap) {
            allowed.extend(
                calls
                    .iter()
                    .filter(|c| !allowed.contains(c))
                    .collect::<Vec<_>>(),
            );
        }
    }
    let mut rules = vec![
        json!({ "names": allowed, "action": "SCMP_ACT_ALLOW" }),
        json!({ "names": ["socket"], "action": "SCMP_ACT_ALLOW",
                "args": [{ "index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_NE" }] }),
    ];
    for persona in PERSONAS {
        rules.push(
            json!({ "names": ["personality"], "action": "SCMP_ACT_ALLOW",
                           "args": [{ "index": 0, "value": persona, "op": "SCMP_CMP_EQ" }] }),
        );
    }
    if !has("CAP_SYS_ADMIN") {
        let mask = berth_runtime::seccomp::CLONE_NAMESPACE_FLAGS
            .iter()
            .fold(0, |m, f| m | f);
        rules.push(json!({ "names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [{ "index": 0, "value": mask, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ" }] }));
        rules.push(
            json!({ "names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS }),
        );
    }
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::EPERM,
        "architectures": host_seccomp_arches(),
        "syscalls": rules,
    })
}

/// The architectures a container's processes may call the kernel with:
/// the host's and the 32-bit ones it runs.
fn host_seccomp_arches() -> &'static [&'static str] {
    if cfg!(target_arch = "x86_64") {
        &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    } else if cfg!(target_arch = "aarch64") {
        &["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    } else {
        &[]
    }
}

/// Docker's profile format (`moby/profiles/seccomp`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerProfile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    arch_map: Vec<ArchMap>,
    #[serde(default)]
    syscalls: Vec<DockerSyscall>,
    #[serde(default)]
    flags: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerSyscall {
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    name: Option<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Vec<Value>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Debug, Default, Deserialize)]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default, rename = "minKernel")]
    min_kernel: Option<String>,
}

/// Docker's names for the host's architecture.
fn host_arches() -> &'static [&'static str] {
    if cfg!(target_arch = "x86_64") {
        &["amd64", "x86_64", "x32", "x86"]
    } else if cfg!(target_arch = "aarch64") {
        &["arm64", "aarch64", "arm"]
    } else {
        &[]
    }
}

/// A profile in Docker's format (what `--security-opt seccomp=FILE` sends)
/// as an OCI `linux.seccomp` value for a container with `caps`: rules
/// whose `includes` the container does not meet, or whose `excludes` it
/// does, are left out, as Docker does.
pub fn from_docker(profile: &str, caps: &[String]) -> Result<Value, String> {
    let p: DockerProfile =
        serde_json::from_str(profile).map_err(|e| format!("invalid seccomp profile: {e}"))?;
    let mut arches = p.architectures.clone();
    for m in &p.arch_map {
        arches.push(m.architecture.clone());
        arches.extend(m.sub_architectures.iter().cloned());
    }
    let has = |c: &String| caps.iter().any(|x| x == c);
    let on_arch = |a: &String| host_arches().contains(&a.as_str());
    let mut syscalls = Vec::new();
    for s in p.syscalls {
        if !s.includes.caps.iter().all(has)
            || (!s.excludes.caps.is_empty() && s.excludes.caps.iter().any(has))
        {
            continue;
        }
        if !s.includes.arches.is_empty() && !s.includes.arches.iter().any(on_arch) {
            continue;
        }
        if s.excludes.arches.iter().any(on_arch) {
            continue;
        }
        let _ = s.includes.min_kernel;
        let mut names = s.names;
        names.extend(s.name);
        let mut rule = json!({ "names": names, "action": s.action });
        if let Some(e) = s.errno_ret {
            rule["errnoRet"] = json!(e);
        }
        if !s.args.is_empty() {
            rule["args"] = Value::Array(s.args);
        }
        syscalls.push(rule);
    }
    let mut out = json!({
        "defaultAction": p.default_action,
        "architectures": arches,
        "syscalls": syscalls,
    });
    if let Some(e) = p.default_errno_ret {
        out["defaultErrnoRet"] = json!(e);
    }
    if !p.flags.is_empty() {
        out["flags"] = json!(p.flags);
    }
    Ok(out)
}

/// The `linux.seccomp` of a container: from its `--security-opt`s and
/// capabilities; none when unconfined or privileged.
pub fn for_container(
    security_opt: &[String],
    privileged: bool,
    caps: &[String],
) -> Result<Option<Value>, String> {
    let mut chosen: Option<&str> = None;
    for o in security_opt {
        if let Some(v) = o
            .strip_prefix("seccomp=")
            .or_else(|| o.strip_prefix("seccomp:"))
        {
            chosen = Some(v);
        }
    }
    match chosen {
        Some("unconfined") => Ok(None),
        Some(profile) if profile.trim_start().starts_with('{') => {
            from_docker(profile, caps).map(Some)
        }
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("read the seccomp profile {path}: {e}"))?;
            from_docker(&text, caps).map(Some)
        }
        None if privileged => Ok(None),
        None => Ok(Some(default_profile(caps))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names the profile allows without conditions.
    fn allowed(v: &Value) -> Vec<String> {
        rules(v)
            .filter(|r| r["action"] == "SCMP_ACT_ALLOW" && r.get("args").is_none())
            .flat_map(|r| r["names"].as_array().unwrap().clone())
            .map(|n| n.as_str().unwrap().to_owned())
            .collect()
    }

    fn rules(v: &Value) -> impl Iterator<Item = &Value> {
        v["syscalls"].as_array().unwrap().iter()
    }

    #[test]
    fn the_default_profile_is_an_allow_list_that_follows_the_capabilities() {
        let docker_caps: Vec<String> = ["CAP_CHOWN", "CAP_SYS_CHROOT", "CAP_KILL"]
            .map(String::from)
            .to_vec();
        let plain = default_profile(&docker_caps);
        assert_eq!(plain["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(plain["defaultErrnoRet"], libc::EPERM);
        let ok = allowed(&plain);
        for call in [
            "read",
            "openat",
            "pipe2",
            "getrandom",
            "execve",
            "ptrace",
            "chroot",
            "arch_prctl",
        ] {
            assert!(ok.iter().any(|c| c == call), "{call}");
        }
        for call in [
            "mount",
            "keyctl",
            "io_uring_setup",
            "kcmp",
            "reboot",
            "clone",
            "acct",
        ] {
            assert!(!ok.iter().any(|c| c == call), "{call}");
        }
        let mut sorted = ok.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ok.len(), "no name is listed twice");
        // clone without namespace flags; clone3 is ENOSYS.
        let clone: Vec<&Value> = rules(&plain)
            .filter(|r| r["names"] == json!(["clone"]))
            .collect();
        assert_eq!(clone.len(), 1);
        assert_eq!(clone[0]["args"][0]["value"], 0x7E02_0000u64);
        assert!(
            rules(&plain).any(|r| r["names"] == json!(["clone3"]) && r["errnoRet"] == libc::ENOSYS)
        );
        assert_eq!(
            rules(&plain)
                .filter(|r| r["names"] == json!(["personality"]))
                .count(),
            5
        );

        let admin = default_profile(&["CAP_SYS_ADMIN".into()]);
        let ok = allowed(&admin);
        for call in ["mount", "clone", "clone3", "unshare", "setns", "bpf"] {
            assert!(ok.iter().any(|c| c == call), "{call}");
        }
        assert!(!ok.iter().any(|c| c == "chroot"));
        assert!(!rules(&admin).any(|r| r["names"] == json!(["clone3"])));
    }

    #[test]
    fn the_default_profile_compiles_into_a_filter() {
        let caps = ["CAP_CHOWN", "CAP_SYS_CHROOT"].map(String::from).to_vec();
        for caps in [caps, vec!["CAP_SYS_ADMIN".to_owned()]] {
            let v = default_profile(&caps);
            let oci: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(v).unwrap();
            let filter = berth_runtime::seccomp::compile(&oci).unwrap();
            // Only names newer than this machine's libseccomp are left out.
            for name in filter.unknown_syscalls() {
                assert!(
                    [
                        "cachestat",
                        "fchmodat2",
                        "map_shadow_stack",
                        "futex_wake",
                        "futex_wait",
                        "futex_requeue",
                        "mseal",
                        "set_mempolicy_home_node"
                    ]
                    .contains(&name.as_str()),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn docker_profiles_are_translated_with_their_conditions() {
        let profile = r#"{
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "excludes": {"caps": ["CAP_FOWNER"]}}
            ]}"#;
        let v = from_docker(profile, &[]).unwrap();
        assert_eq!(v["defaultErrnoRet"], 1);
        assert_eq!(
            v["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
        );
        assert_eq!(v["syscalls"].as_array().unwrap().len(), 2);
        let v = from_docker(profile, &["CAP_SYS_ADMIN".into(), "CAP_FOWNER".into()]).unwrap();
        let rules: Vec<&Value> = v["syscalls"].as_array().unwrap().iter().collect();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[1]["names"], json!(["mount"]));
        assert!(from_docker("{", &[]).is_err());
        assert_eq!(
            for_container(&["seccomp=unconfined".into()], false, &[]).unwrap(),
            None
        );
        assert_eq!(for_container(&[], true, &[]).unwrap(), None);
        assert!(for_container(&[], false, &[]).unwrap().is_some());
    }
}
