//! The filters installed for real, each in a forked child (see the
//! parent module for why the child may not allocate).

use serde_json::json;

use super::super::*;
use super::{compiled, profile};

/// How a child ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Exited(i32),
    Signaled(i32),
}

/// Exit code of a child whose `install()` failed.
const INSTALL_FAILED: i32 = 200;

/// Forks; the child runs `body` and exits with its result. `body` must not
/// allocate, panic or print.
fn in_child(body: impl FnOnce() -> i32) -> Outcome {
    // SAFETY: the child only makes raw syscalls before `_exit`; see above.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    if pid == 0 {
        let code = body();
        // SAFETY: ends the child without running the harness's atexit code.
        unsafe { libc::_exit(code) }
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    while unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        let err = io::Error::last_os_error();
        assert_eq!(err.kind(), io::ErrorKind::Interrupted, "waitpid: {err}");
    }
    if libc::WIFEXITED(status) {
        Outcome::Exited(libc::WEXITSTATUS(status))
    } else {
        Outcome::Signaled(libc::WTERMSIG(status))
    }
}

/// In the child: no core dumps from SIGSYS deaths, and no_new_privs when
/// asked (so install() does not depend on CAP_SYS_ADMIN).
fn prepare_child(no_new_privs: bool) {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on the calling process.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
        if no_new_privs {
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        }
    }
}

/// Forks, installs `filter` in the child and runs `body` under it.
fn under(filter: &CompiledFilter, body: impl FnOnce() -> i32) -> Outcome {
    in_child(|| {
        prepare_child(true);
        match filter.install() {
            Ok(()) => body(),
            Err(_) => INSTALL_FAILED,
        }
    })
}

/// The errno a raw syscall return stands for, 0 for success.
fn errno(rc: libc::c_long) -> i32 {
    if rc == -1 {
        // SAFETY: reads this thread's errno.
        unsafe { *libc::__errno_location() }
    } else {
        0
    }
}

fn mkdirat_errno() -> i32 {
    let path = c"/nonexistent-berth-seccomp-test/x";
    // SAFETY: raw syscall with a valid C string.
    errno(unsafe { libc::syscall(libc::SYS_mkdirat, libc::AT_FDCWD, path.as_ptr(), 0o755) })
}

fn getppid_errno() -> i32 {
    // SAFETY: raw syscall without arguments.
    errno(unsafe { libc::syscall(libc::SYS_getppid) })
}

fn lseek_errno(fd: i64, offset: i64, whence: i64) -> i32 {
    // SAFETY: raw syscall; the fd is not open, so nothing moves.
    errno(unsafe { libc::syscall(libc::SYS_lseek, fd, offset, whence) })
}

fn personality_errno(persona: u64) -> i32 {
    // SAFETY: raw syscall; changing the persona only affects the child.
    errno(unsafe { libc::syscall(libc::SYS_personality, persona) })
}

/// An fd number nobody has open.
const NO_FD: i64 = 99_999;

#[test]
fn errno_rules_return_eperm_or_errno_ret() {
    assert_eq!(in_child(mkdirat_errno), Outcome::Exited(libc::ENOENT));
    let f = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::E2BIG}
        ]
    }));
    let out = under(&f, || {
        if mkdirat_errno() != libc::EPERM {
            return 1;
        }
        if getppid_errno() != libc::E2BIG {
            return 2;
        }
        // SAFETY: raw syscall without arguments.
        if errno(unsafe { libc::syscall(libc::SYS_getpid) }) != 0 {
            return 3;
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn default_errno_with_an_allow_list() {
    let f = compiled(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::EACCES,
        // openat2 (437 everywhere) makes the older syscalls known ones.
        "syscalls": [{"names": ["exit", "exit_group", "getpid", "openat2"], "action": "SCMP_ACT_ALLOW"}]
    }));
    let out = under(&f, || {
        // SAFETY: raw syscall without arguments.
        if errno(unsafe { libc::syscall(libc::SYS_getpid) }) != 0 {
            return 1;
        }
        if getppid_errno() != libc::EACCES || mkdirat_errno() != libc::EACCES {
            return 2;
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn syscalls_newer_than_the_profile_are_enosys() {
    let f = compiled(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["exit", "exit_group"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::E2BIG}
        ]
    }));
    let newest = [libc::SYS_exit, libc::SYS_exit_group, libc::SYS_getpid]
        .into_iter()
        .max()
        .unwrap();
    let expect = |nr: libc::c_long| {
        if nr > newest {
            libc::ENOSYS
        } else {
            libc::EPERM
        }
    };
    let (getppid, mkdirat) = (expect(libc::SYS_getppid), expect(libc::SYS_mkdirat));
    let out = under(&f, || {
        // SAFETY: raw syscalls; the numbers above the table do not exist.
        unsafe {
            if errno(libc::syscall(libc::SYS_getpid)) != libc::E2BIG {
                return 1;
            }
            if getppid_errno() != getppid || mkdirat_errno() != mkdirat {
                return 2;
            }
            if errno(libc::syscall(1000)) != libc::ENOSYS {
                return 3;
            }
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
    // With an allowing default nothing is stubbed: a listed refusal stays.
    let f = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO"}]
    }));
    assert!(f.instructions().len() < 10, "{f:?}");
    let out = under(&f, || {
        // SAFETY: as above.
        unsafe { errno(libc::syscall(1000)) }
    });
    assert_eq!(out, Outcome::Exited(libc::ENOSYS));
}

#[test]
fn argument_filter_allows_only_the_matching_value() {
    let f = compiled(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["exit", "exit_group"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0xffff_ffffu64, "op": "SCMP_CMP_EQ"}]}
        ]
    }));
    let out = under(&f, || {
        if personality_errno(0xffff_ffff) != 0 {
            return 1;
        }
        if personality_errno(8) != libc::EPERM {
            return 2;
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn masked_eq_and_anded_comparators() {
    let f = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            // (offset & 0xff00) == 0x1200
            {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::E2BIG,
             "args": [{"index": 1, "value": 0xff00, "valueTwo": 0x1200,
                       "op": "SCMP_CMP_MASKED_EQ"}]},
            // fd == NO_FD && whence == SEEK_END
            {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EDOM,
             "args": [{"index": 0, "value": NO_FD, "op": "SCMP_CMP_EQ"},
                      {"index": 2, "value": libc::SEEK_END, "op": "SCMP_CMP_EQ"}]}
        ]
    }));
    let out = under(&f, || {
        if lseek_errno(NO_FD, 0x12ab, 0) != libc::E2BIG {
            return 1;
        }
        if lseek_errno(NO_FD, 0x13ab, 0) != libc::EBADF {
            return 2;
        }
        if lseek_errno(NO_FD, 0, libc::SEEK_END.into()) != libc::EDOM {
            return 3;
        }
        if lseek_errno(NO_FD + 1, 0, libc::SEEK_END.into()) != libc::EBADF {
            return 4;
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn repeated_index_matches_any_of_its_comparators() {
    let f = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::E2BIG,
            "args": [{"index": 2, "value": libc::SEEK_CUR, "op": "SCMP_CMP_EQ"},
                     {"index": 2, "value": libc::SEEK_END, "op": "SCMP_CMP_EQ"}]}]
    }));
    let out = under(&f, || {
        if lseek_errno(NO_FD, 0, libc::SEEK_CUR.into()) != libc::E2BIG {
            return 1;
        }
        if lseek_errno(NO_FD, 0, libc::SEEK_END.into()) != libc::E2BIG {
            return 2;
        }
        if lseek_errno(NO_FD, 0, libc::SEEK_SET.into()) != libc::EBADF {
            return 3;
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn kill_and_trap_actions_end_in_sigsys() {
    for action in [
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
    ] {
        let f = compiled(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getppid"], "action": action}]
        }));
        let out = under(&f, || {
            getppid_errno();
            0
        });
        assert_eq!(out, Outcome::Signaled(libc::SIGSYS), "{action}");
    }
}

#[test]
fn trace_without_tracer_is_enosys_and_log_allows() {
    let f = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_TRACE", "errnoRet": 5},
            {"names": ["mkdirat"], "action": "SCMP_ACT_LOG"}
        ]
    }));
    let out = under(&f, || {
        if getppid_errno() != libc::ENOSYS {
            return 1;
        }
        if mkdirat_errno() != libc::ENOENT {
            return 2;
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn filter_flags_are_passed_to_the_kernel() {
    let f = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                  "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]
    }));
    assert_eq!(
        f.flags(),
        libc::SECCOMP_FILTER_FLAG_TSYNC
            | libc::SECCOMP_FILTER_FLAG_LOG
            | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
    );
    assert_eq!(under(&f, getppid_errno), Outcome::Exited(libc::EPERM));
}

#[test]
fn unknown_syscall_names_do_not_break_the_profile() {
    let f = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid", "no_such_syscall_berth"], "action": "SCMP_ACT_ERRNO"}]
    }));
    assert_eq!(f.unknown_syscalls(), ["no_such_syscall_berth"]);
    assert_eq!(under(&f, getppid_errno), Outcome::Exited(libc::EPERM));
}

#[test]
fn install_without_no_new_privs_needs_cap_sys_admin() {
    /// `struct __user_cap_header_struct`.
    #[repr(C)]
    struct CapHeader {
        version: u32,
        pid: i32,
    }
    /// `struct __user_cap_data_struct`.
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct CapData {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const NNP_ALREADY_SET: i32 = 150;
    const DENIED: i32 = 151;

    let f = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]
    }));
    let out = in_child(|| {
        prepare_child(false);
        // SAFETY: plain syscalls on the calling process, with structs that
        // live across the call.
        unsafe {
            if libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 0 {
                return NNP_ALREADY_SET;
            }
            let header = CapHeader {
                version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
                pid: 0,
            };
            let none = [CapData {
                effective: 0,
                permitted: 0,
                inheritable: 0,
            }; 2];
            if libc::syscall(libc::SYS_capset, &header, none.as_ptr()) != 0 {
                return 1;
            }
        }
        match f.install() {
            Err(SeccompError::InstallPermissionDenied) => DENIED,
            Err(_) => 2,
            Ok(()) => 3,
        }
    });
    if out == Outcome::Exited(NNP_ALREADY_SET) {
        eprintln!("skipped: the test process already has no_new_privs");
        return;
    }
    assert_eq!(out, Outcome::Exited(DENIED));
    assert!(
        SeccompError::InstallPermissionDenied
            .to_string()
            .contains("CAP_SYS_ADMIN")
    );
}

/// Makes an i386 `getpid` through `int 0x80`; returns its result.
#[cfg(target_arch = "x86_64")]
fn int80_getpid() -> i64 {
    int80(20) // __NR_getpid on i386
}

/// Makes the i386 syscall `nr` without arguments through `int 0x80`;
/// returns its result (a negative errno on failure).
#[cfg(target_arch = "x86_64")]
fn int80(nr: i64) -> i64 {
    let mut rax: i64 = nr;
    // SAFETY: a syscall without arguments; the registers the kernel may
    // touch are declared.
    unsafe {
        std::arch::asm!(
            "int 0x80",
            inout("rax") rax,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
            options(nostack),
        );
    }
    rax
}

#[cfg(target_arch = "x86_64")]
#[test]
fn newer_i386_syscalls_are_enosys_too_when_the_profile_lists_i386() {
    if in_child(|| i32::from(int80_getpid() <= 0)) != Outcome::Exited(0) {
        eprintln!("skipped: this kernel runs no i386 syscalls");
        return;
    }
    let f = compiled(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["exit", "exit_group", "getpid"], "action": "SCMP_ACT_ALLOW"}]
    }));
    let out = under(&f, || {
        // i386: getpid (20) listed, getuid (24) older than exit_group (252)
        // and not listed, 1000 newer than anything named.
        if int80(20) <= 0 {
            return 1;
        }
        if int80(24) != -i64::from(libc::EPERM) {
            return 2;
        }
        if int80(1000) != -i64::from(libc::ENOSYS) {
            return 3;
        }
        // SAFETY: a native syscall number that does not exist.
        if errno(unsafe { libc::syscall(1000) }) != libc::ENOSYS {
            return 4;
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}

#[cfg(target_arch = "x86_64")]
#[test]
fn foreign_arch_syscalls_are_killed_unless_listed() {
    let probe = || i32::from(int80_getpid() <= 0);
    if in_child(probe) != Outcome::Exited(0) {
        eprintln!("skipped: this kernel runs no i386 syscalls");
        return;
    }
    let native = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW"}));
    assert_eq!(under(&native, probe), Outcome::Signaled(libc::SIGSYS));
    let with_x86 = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"]
    }));
    assert_eq!(under(&with_x86, probe), Outcome::Exited(0));
}

/// A representative slice of Docker's default profile, in its own format:
/// several names per entry, the personality/clone/socket argument rules,
/// clone3 answered with ENOSYS, arch-specific and not-yet-known names.
fn docker_like_profile() -> serde_json::Value {
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["accept", "accept4", "access", "arch_prctl", "bind", "brk", "capget",
                       "capset", "chdir", "clock_gettime", "close", "connect", "dup", "dup3",
                       "epoll_create1", "epoll_pwait", "execve", "exit", "exit_group",
                       "fchmodat2", "fcntl", "fstat", "futex", "futex_waitv", "getcwd",
                       "getdents64", "getpid", "getppid", "gettid", "ioctl", "lseek",
                       "madvise", "mmap", "mprotect", "munmap", "newfstatat", "openat",
                       "pipe2", "read", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn",
                       "sched_yield", "set_robust_list", "set_tid_address", "socketcall",
                       "tgkill", "uname", "wait4", "write", "cachestat", "map_shadow_stack",
                       "mseal", "no_such_syscall_berth"],
             "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 131072, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 131080, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 4294967295u64, "op": "SCMP_CMP_EQ"}]},
            {"names": ["arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2"],
             "action": "SCMP_ACT_ALLOW"},
            {"names": ["modify_ldt"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288u64, "valueTwo": 0,
                       "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]},
            {"names": ["bpf", "clone", "fanotify_init", "lookup_dcookie", "mount",
                       "name_to_handle_at", "perf_event_open", "quotactl", "setdomainname",
                       "sethostname", "setns", "syslog", "umount", "umount2", "unshare"],
             "action": "SCMP_ACT_ALLOW"},
            {"names": ["chroot"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW"}
        ]
    })
}

#[test]
fn docker_like_profile_compiles_and_behaves() {
    // The unconditional clone rule above (Docker adds it for CAP_SYS_ADMIN)
    // would hide the masked one; keep the profile's shape but test the
    // conditional rule with the CAP_SYS_ADMIN entry removed.
    let mut v = docker_like_profile();
    let full = compile(&profile(v.clone())).expect("Docker-shaped profile compiles");
    assert!(
        full.unknown_syscalls()
            .contains(&"no_such_syscall_berth".to_string())
    );
    assert!(full.instructions().len() <= BPF_MAXINSNS);
    v["syscalls"]
        .as_array_mut()
        .unwrap()
        .retain(|e| !e["names"].as_array().unwrap().iter().any(|n| n == "mount"));
    let f = compile(&profile(v)).unwrap();

    let out = under(&f, || {
        // SAFETY (whole body): raw syscalls whose arguments are valid or
        // rejected before they are used.
        unsafe {
            if errno(libc::syscall(libc::SYS_getpid)) != 0 {
                return 1;
            }
            // Not listed: the default errno.
            if errno(libc::syscall(libc::SYS_acct, 0)) != libc::EPERM {
                return 2;
            }
            if errno(libc::syscall(libc::SYS_clone3, 0, 0)) != libc::ENOSYS {
                return 3;
            }
            // CLONE_NEWNS|CLONE_FS: filtered by the mask (EPERM); were it
            // let through, the kernel would answer EINVAL, not clone.
            let flags = libc::CLONE_NEWNS | libc::CLONE_FS;
            if errno(libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0)) != libc::EPERM {
                return 4;
            }
        }
        if personality_errno(0xffff_ffff) != 0 || personality_errno(4) != libc::EPERM {
            return 5;
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn an_allow_default_denies_clone_flags_rule_by_rule() {
    // The engine's default profile: allow, with one masked rule per
    // namespace flag of clone; a clone without those flags goes through.
    let rules: Vec<serde_json::Value> = CLONE_NAMESPACE_FLAGS
        .iter()
        .map(|f| {
            json!({"names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                   "args": [{"index": 0, "value": f, "valueTwo": f, "op": "SCMP_CMP_MASKED_EQ"}]})
        })
        .collect();
    let f = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
        "syscalls": rules,
    })))
    .unwrap();
    let out = under(&f, || {
        // SAFETY (whole body): raw clones that either fail or make a child
        // that exits at once.
        unsafe {
            let user = (libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_ulong;
            if errno(libc::syscall(libc::SYS_clone, user, 0, 0, 0, 0)) != libc::EPERM {
                return 1;
            }
            let net = (libc::CLONE_NEWNET | libc::SIGCHLD) as libc::c_ulong;
            if errno(libc::syscall(libc::SYS_clone, net, 0, 0, 0, 0)) != libc::EPERM {
                return 2;
            }
            let pid = libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0, 0, 0, 0);
            if pid == 0 {
                libc::_exit(0);
            }
            if pid < 0 {
                return 3;
            }
            let mut status = 0;
            libc::waitpid(pid as i32, &mut status, 0);
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn compiled_programs_are_cached_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache_dir(dir.path());
    let p = profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [{"names": ["exit_group", "no_such_syscall_berth"], "action": "SCMP_ACT_ALLOW"}]
    }));
    let fresh = compile(&p).unwrap();
    let first = compile_cached(&p, &cache).unwrap();
    let entries: Vec<_> = std::fs::read_dir(&cache).unwrap().flatten().collect();
    assert_eq!(entries.len(), 1);
    let file = entries[0].path();
    let same = |f: &CompiledFilter| {
        f.flags() == fresh.flags()
            && f.unknown_syscalls() == fresh.unknown_syscalls()
            && f.instructions().len() == fresh.instructions().len()
            && f.instructions()
                .iter()
                .zip(fresh.instructions())
                .all(|(a, b)| (a.code, a.jt, a.jf, a.k) == (b.code, b.jt, b.jf, b.k))
    };
    assert!(same(&first));
    // Read back from the file...
    let cached = decode_cached(&std::fs::read(&file).unwrap()).unwrap();
    assert!(same(&cached));
    assert!(same(&compile_cached(&p, &cache).unwrap()));
    // ...but not when a byte of it changed: compiled again and rewritten.
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    assert!(decode_cached(&bytes).is_none());
    std::fs::write(&file, &bytes).unwrap();
    assert!(same(&compile_cached(&p, &cache).unwrap()));
    assert!(decode_cached(&std::fs::read(&file).unwrap()).is_some());
    assert!(decode_cached(&bytes[..10]).is_none());
    // Another profile, another entry.
    let other = profile(json!({"defaultAction": "SCMP_ACT_ALLOW"}));
    compile_cached(&other, &cache).unwrap();
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 2);
}
