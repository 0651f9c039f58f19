//! Security regressions: descriptor and cwd leaks (CVE-2024-21626 class),
//! the runtime binary through /proc/self/exe (CVE-2019-5736 class), masked
//! and read-only paths, seccomp and no_new_privs before the user process,
//! and an init that only ever sees its own container's processes.

mod common;

use std::os::unix::fs::OpenOptionsExt;

use berth_testkit::{Bundle, StateRoot, require_root, unique_id};
use common::{berth, stderr, stdout, wait_status};
use serde_json::json;

#[test]
fn no_host_descriptor_reaches_the_container() {
    require_root!();
    let root = StateRoot::new(berth());
    let id = unique_id("fds");
    let b = Bundle::from_spec(berth(), &["sleep", "100"]);
    root.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let pid = root.state(&id)["pid"].as_i64().unwrap();
    let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().parse().unwrap())
        .collect();
    fds.sort();
    assert_eq!(
        fds,
        vec![0, 1, 2],
        "only stdio reaches the container's init"
    );
    // The same for a process that exec joined.
    let pidfile = b.path().join("exec.pid");
    root.ok(&[
        "exec",
        "-d",
        "--pid-file",
        pidfile.to_str().unwrap(),
        &id,
        "sleep",
        "100",
    ]);
    let epid = std::fs::read_to_string(&pidfile).unwrap();
    let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{epid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().parse().unwrap())
        .collect();
    fds.sort();
    assert_eq!(fds, vec![0, 1, 2], "only stdio reaches an exec'd process");
    root.ok(&["delete", "-f", &id]);
}

#[test]
fn a_cwd_through_a_leaked_descriptor_is_refused() {
    require_root!();
    let root = StateRoot::new(berth());
    for n in 3..10 {
        let id = unique_id("cwd");
        let b = Bundle::from_spec(berth(), &["sh", "-c", "pwd; ls .."]);
        let mut cfg = b.config.clone();
        cfg["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        let b = Bundle::new(cfg);
        let out = root.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
        // Either refused, or the cwd is a path inside the container; never a
        // host directory.
        let text = stdout(&out);
        assert!(
            !out.status.success() || !text.contains("berth-state") && !text.contains("cgroup"),
            "fd {n}: {text}"
        );
        if !out.status.success() {
            assert_eq!(out.status.code(), Some(1), "fd {n}: {}", stderr(&out));
        }
    }
}

#[test]
fn the_runtime_binary_cannot_be_written_through_proc_exe() {
    require_root!();
    // A private copy of the binary: while any process executes a file the
    // kernel answers ETXTBSY before it looks at the mount, and other tests
    // run berth concurrently.
    let bin_dir = tempfile::tempdir().unwrap();
    let bin = bin_dir.path().join("berth");
    std::fs::copy(berth(), &bin).unwrap();
    let root = StateRoot::new(&bin);
    let id = unique_id("exe");
    let b = Bundle::from_spec(&bin, &["sleep", "100"]);
    root.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    // While created, the container's init is berth's own code: its exe is
    // the runtime binary, as a container process would find it.
    let pid = root.state(&id)["pid"].as_i64().unwrap();
    let exe = format!("/proc/{pid}/exe");
    let before = std::fs::read(&bin).unwrap();
    // While it runs, the kernel answers ETXTBSY before it looks at the mount.
    let err = std::fs::OpenOptions::new()
        .write(true)
        .open(&exe)
        .unwrap_err();
    assert!(
        [Some(libc::EROFS), Some(libc::ETXTBSY)].contains(&err.raw_os_error()),
        "writing {exe}: {err}"
    );
    // The attack proper: hold the file open, and write once berth no longer
    // runs (ETXTBSY no longer protects it then).
    let held = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(&exe)
        .unwrap();
    root.ok(&["start", &id]);
    wait_status(&root, &id, "running");
    std::thread::sleep(std::time::Duration::from_millis(100));
    let via = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&held));
    let err = std::fs::OpenOptions::new()
        .write(true)
        .open(&via)
        .unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(libc::EROFS),
        "writing through a held handle: {err}"
    );
    assert_eq!(
        std::fs::read(berth()).unwrap(),
        before,
        "the binary is unchanged"
    );
    root.ok(&["delete", "-f", &id]);
}

#[test]
fn masked_and_readonly_paths_are_applied() {
    require_root!();
    let root = StateRoot::new(berth());
    let id = unique_id("mask");
    // /proc/timer_list and /sys/firmware are in the default maskedPaths and
    // exist on every host seen here (unlike /proc/kcore).
    let script = "wc -c < /proc/timer_list; ls /sys/firmware | wc -l; \
                  echo x > /proc/sys/kernel/domainname 2>/dev/null && echo sysrq-writable || echo sysrq-ro; \
                  touch /rootfile 2>/dev/null && echo root-writable || echo root-ro; \
                  touch /dev/shm/x && echo shm-writable";
    let b = Bundle::from_spec(berth(), &["sh", "-c", script]);
    let out = root.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<String> = stdout(&out).lines().map(|l| l.trim().to_owned()).collect();
    assert_eq!(
        lines,
        ["0", "0", "sysrq-ro", "root-ro", "shm-writable"],
        "{}",
        stderr(&out)
    );
}

#[test]
fn seccomp_and_no_new_privs_apply_before_the_user_process() {
    require_root!();
    let root = StateRoot::new(berth());
    let id = unique_id("sec");
    let b = Bundle::from_spec(
        berth(),
        &[
            "sh",
            "-c",
            "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; mkdir /tmp/x && echo mkdir-ok || echo mkdir-denied",
        ],
    );
    let mut cfg = b.config.clone();
    cfg["root"]["readonly"] = json!(false);
    cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    let b = Bundle::new(cfg);
    let out = root.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out).replace('\t', " ");
    assert!(text.contains("NoNewPrivs: 1"), "{text}");
    assert!(text.contains("Seccomp: 2"), "{text}");
    assert!(text.contains("mkdir-denied"), "{text}");
    assert!(!b.rootfs().join("tmp/x").exists());
}

#[test]
fn seccomp_without_no_new_privs_still_applies() {
    require_root!();
    let root = StateRoot::new(berth());
    let id = unique_id("sec2");
    let b = Bundle::from_spec(
        berth(),
        &[
            "sh",
            "-c",
            "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status",
        ],
    );
    let mut cfg = b.config.clone();
    cfg["process"]["noNewPrivileges"] = json!(false);
    cfg["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["kexec_load"], "action": "SCMP_ACT_ERRNO"}]});
    let b = Bundle::new(cfg);
    let out = root.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out).replace('\t', " ");
    assert!(
        text.contains("NoNewPrivs: 0") && text.contains("Seccomp: 2"),
        "{text}"
    );
}

#[test]
fn the_init_sees_and_reaps_only_its_own_processes() {
    require_root!();
    let root = StateRoot::new(berth());
    let id = unique_id("reap");
    let b = Bundle::from_spec(berth(), &["sleep", "100"]);
    root.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let out = root.ok(&["exec", &id, "ps", "-o", "pid,comm"]);
    let comms: Vec<&str> = out
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(comms, ["sleep", "ps"], "{out}");
    let init = root.state(&id)["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert!(
        nspid.trim_end().ends_with("\t1"),
        "the init is pid 1 in its namespace: {nspid}"
    );
    // The runtime is not the init's parent: it exited after create.
    let ppid: i32 = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let parent = std::fs::read_to_string(format!("/proc/{ppid}/cmdline")).unwrap_or_default();
    assert!(!parent.contains("runtime"), "parent is {parent:?}");
    root.ok(&["delete", "-f", &id]);
}
