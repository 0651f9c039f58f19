//! The seccomp filter of a container: berth's default profile, a profile
//! given with `--security-opt seccomp=PROFILE` (Docker's JSON format, sent
//! by the CLI as its contents), or none (`seccomp=unconfined`,
//! `--privileged`).
//!
//! The default profile blocks, with EPERM, what Docker's blocks for a
//! container: the syscalls that reach outside a container (modules, kexec,
//! reboot, the clock, swap, accounting, keyrings, mount and namespace
//! changes, tracing other processes, raw I/O ports, BPF, perf, handles by
//! inode, userfaultfd, io_uring), each unless the container holds the
//! capability that Docker's profile allows it with; `clone` may not make
//! namespaces without CAP_SYS_ADMIN; `clone3` answers ENOSYS so that libcs
//! fall back to `clone`, as under Docker. It is written as a
//! deny-list over an allow default, where Docker's is an allow-list: the
//! effect on the syscalls a container can make is the same for the calls
//! listed, and a kernel's new syscall is allowed rather than refused.

use serde::Deserialize;
use serde_json::{Value, json};

/// Syscalls blocked unless the container has the capability.
const GATED: &[(&str, &[&str])] = &[
    (
        "CAP_SYS_ADMIN",
        &[
            "mount",
            "umount",
            "umount2",
            "pivot_root",
            "setns",
            "unshare",
            "quotactl",
            "quotactl_fd",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "move_mount",
            "open_tree",
            "mount_setattr",
            "lookup_dcookie",
            "fanotify_init",
            "sethostname",
            "setdomainname",
            "name_to_handle_at",
            "open_by_handle_at",
            "bpf",
            "perf_event_open",
        ],
    ),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_MODULE",
        &[
            "create_module",
            "delete_module",
            "finit_module",
            "init_module",
            "query_module",
            "get_kernel_syms",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot", "kexec_load", "kexec_file_load"]),
    (
        "CAP_SYS_TIME",
        &[
            "settimeofday",
            "stime",
            "clock_settime",
            "clock_settime64",
            "adjtimex",
            "clock_adjtime",
            "clock_adjtime64",
        ],
    ),
    // ptrace and process_vm_* are allowed as in Docker's profile (kernels
    // from 4.8 check them against seccomp themselves).
    ("CAP_SYS_PTRACE", &["kcmp", "pidfd_getfd"]),
    ("CAP_SYS_PACCT", &["acct"]),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "CAP_SYS_NICE",
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "move_pages",
            "migrate_pages",
        ],
    ),
];

/// Syscalls blocked whatever the capabilities (as in Docker's profile).
const DENIED: &[&str] = &[
    "add_key",
    "keyctl",
    "request_key",
    "nfsservctl",
    "swapon",
    "swapoff",
    "sysfs",
    "_sysctl",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
    // Docker's profile leaves io_uring out since 25.0.
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
];

/// The default profile for a container with `caps`, as an OCI
/// `linux.seccomp` value.
pub fn default_profile(caps: &[String]) -> Value {
    let mut denied: Vec<&str> = DENIED.to_vec();
    for (cap, calls) in GATED {
        if !caps.iter().any(|c| c == cap) {
            denied.extend_from_slice(calls);
        }
    }
    let mut rules = vec![
        json!({ "names": denied, "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM }),
        json!({ "names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS }),
    ];
    if !caps.iter().any(|c| c == "CAP_SYS_ADMIN") {
        // One rule per flag: rules for a syscall are alternatives, and a
        // flag set in the first argument (the flags on every architecture
        // listed) makes its rule match.
        for flag in berth_runtime::seccomp::CLONE_NAMESPACE_FLAGS {
            rules.push(json!({
                "names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM,
                "args": [{ "index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ" }],
            }));
        }
    }
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        "syscalls": rules,
    })
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

    fn names(v: &Value, action_errno: i64) -> Vec<String> {
        v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["errnoRet"] == action_errno)
            .flat_map(|r| {
                r["names"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n.as_str().unwrap().to_owned())
            })
            .collect()
    }

    #[test]
    fn the_default_profile_follows_the_capabilities() {
        let plain = default_profile(&["CAP_CHOWN".into()]);
        let denied = names(&plain, libc::EPERM as i64);
        assert!(denied.contains(&"mount".to_owned()));
        assert!(denied.contains(&"keyctl".to_owned()));
        assert!(denied.contains(&"io_uring_setup".to_owned()));
        assert!(denied.contains(&"kcmp".to_owned()));
        // As Docker's: ptrace is the kernel's to check.
        assert!(!denied.contains(&"ptrace".to_owned()));
        // clone may not make namespaces, one rule per flag.
        let clone_rules: Vec<&Value> = plain["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["names"] == json!(["clone"]))
            .collect();
        assert_eq!(clone_rules.len(), 7);
        assert!(
            clone_rules
                .iter()
                .any(|r| r["args"][0]["value"] == 0x1000_0000)
        );
        let admin = default_profile(&["CAP_SYS_ADMIN".into()]);
        let denied = names(&admin, libc::EPERM as i64);
        assert!(!denied.contains(&"mount".to_owned()));
        assert!(!denied.contains(&"clone".to_owned()));
        assert_eq!(names(&plain, libc::ENOSYS as i64), vec!["clone3"]);
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
