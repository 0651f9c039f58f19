//! What confines containers and what they are given: capabilities,
//! seccomp, --init, read-only roots, mounts, limits and their updates.

mod common;

use std::time::{Duration, Instant};

use common::engine::{daemon, inspect, ok};
use common::text;

#[test]
fn security_and_mount_options_reach_the_container() {
    let Some(d) = daemon() else { return };
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(args);
        d.docker(&all)
    };
    // Docker's default capabilities; --cap-drop/--cap-add; --privileged.
    let caps = |args: &[&str]| {
        let mut a = args.to_vec();
        a.extend_from_slice(&["busybox", "sh", "-c", "grep CapBnd /proc/self/status"]);
        let out = ok(&run(&a));
        u64::from_str_radix(out.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    let default = caps(&[]);
    assert_eq!(default, 0xa80425fb, "Docker's default set");
    assert_eq!(caps(&["--cap-drop", "ALL"]), 0);
    assert_eq!(
        caps(&["--cap-drop", "ALL", "--cap-add", "NET_ADMIN"]),
        1 << 12
    );
    // This host's bounding set lacks CAP_SYS_RESOURCE: berth gives a
    // privileged container what the host has, runc (under dockerd) fails.
    if d.is_berth() {
        assert!(caps(&["--privileged"]) > default);
    }
    // --read-only, --tmpfs, -v with :ro, --shm-size, --ulimit, no-new-privileges.
    let out = run(&["--read-only", "busybox", "touch", "/x"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("Read-only file system"),
        "{}",
        text(&out.stderr)
    );
    ok(&run(&[
        "--read-only",
        "--tmpfs",
        "/scratch",
        "busybox",
        "touch",
        "/scratch/x",
    ]));
    let host = d.dir().join("shared");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in"), "from host\n").unwrap();
    let bind = format!("{}:/shared:ro", host.display());
    assert_eq!(
        ok(&run(&["-v", &bind, "busybox", "cat", "/shared/in"])),
        "from host\n"
    );
    assert!(
        !run(&["-v", &bind, "busybox", "touch", "/shared/new"])
            .status
            .success()
    );
    let rw = format!("{}:/shared", host.display());
    ok(&run(&["-v", &rw, "busybox", "touch", "/shared/new"]));
    assert!(host.join("new").exists());
    let shm = ok(&run(&[
        "--shm-size",
        "8m",
        "busybox",
        "sh",
        "-c",
        "df -k /dev/shm | tail -1",
    ]));
    assert_eq!(shm.split_whitespace().nth(1), Some("8192"), "{shm}");
    // The files written for the container are its users' to read.
    let etc = ok(&run(&[
        "-u",
        "1000",
        "busybox",
        "sh",
        "-c",
        "cat /etc/hostname /etc/hosts /etc/resolv.conf >/dev/null && stat -c %a /etc/hosts",
    ]));
    assert_eq!(etc.trim(), "644");
    assert_eq!(
        ok(&run(&[
            "--ulimit",
            "nofile=512:1024",
            "busybox",
            "sh",
            "-c",
            "ulimit -n"
        ]))
        .trim(),
        "512"
    );
    let nnp = ok(&run(&[
        "--security-opt",
        "no-new-privileges",
        "busybox",
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ]));
    assert!(nnp.trim().ends_with('1'), "{nnp}");
    // Limits land in the cgroup (v1's file here; v2's on a v2 host).
    let limit = ok(&run(&[
        "-m",
        "32m",
        "busybox",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]));
    assert_eq!(limit.trim(), (32u64 << 20).to_string());
    // --network host shares the host's interfaces and hostname.
    let hostname = ok(&run(&["--network", "host", "busybox", "hostname"]));
    let ours = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(hostname.trim(), ours.trim());
}

#[test]
fn the_default_seccomp_profile_applies_and_can_be_replaced() {
    let Some(d) = daemon() else { return };
    // A user namespace needs no capability; the default profile refuses it.
    let out = d.docker(&["run", "--rm", "busybox", "unshare", "-U", "true"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("Operation not permitted"),
        "{}",
        text(&out.stderr)
    );
    ok(&d.docker(&[
        "run",
        "--rm",
        "--security-opt",
        "seccomp=unconfined",
        "busybox",
        "unshare",
        "-U",
        "true",
    ]));
    if d.is_berth() {
        ok(&d.docker(&[
            "run",
            "--rm",
            "--privileged",
            "busybox",
            "unshare",
            "-U",
            "true",
        ]));
    }
    // What the allow-list lets through: chroot with CAP_SYS_CHROOT (in the
    // default set), the 32-bit persona, reading the clock's state; and what
    // it refuses: chroot once the capability is dropped.
    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "chroot / true && adjtimex >/dev/null && linux32 uname -m",
    ]));
    assert_eq!(out.trim(), "i686");
    let out = d.docker(&[
        "run",
        "--rm",
        "--cap-drop",
        "SYS_CHROOT",
        "busybox",
        "chroot",
        "/",
        "true",
    ]);
    assert!(!out.status.success());
    // Execs get the container's filter.
    ok(&d.docker(&[
        "run", "-d", "--name", "filtered", "busybox", "sleep", "1000",
    ]));
    assert!(
        !d.docker(&["exec", "filtered", "unshare", "-U", "true"])
            .status
            .success()
    );
    // A profile of Docker's format, from a file (the CLI sends its text).
    let profile = d.dir().join("profile.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let out = d.docker(&[
        "run",
        "--rm",
        "--security-opt",
        &opt,
        "busybox",
        "mkdir",
        "/x",
    ]);
    assert!(!out.status.success());
    ok(&d.docker(&[
        "run",
        "--rm",
        "--security-opt",
        &opt,
        "busybox",
        "touch",
        "/x",
    ]));
}

#[test]
fn init_forwards_signals_and_passes_the_exit_code() {
    let Some(d) = daemon() else { return };
    let ps = ok(&d.docker(&[
        "run",
        "--rm",
        "--init",
        "busybox",
        "sh",
        "-c",
        "cat /proc/1/comm; echo $$; tr '\\0' ' ' < /proc/1/cmdline; echo",
    ]));
    let lines: Vec<&str> = ps.lines().collect();
    let init = if d.is_berth() {
        "berth-init"
    } else {
        "docker-init"
    };
    assert_eq!(lines[0], init, "{ps}");
    assert_ne!(lines[1], "1", "the program is not pid 1 under --init");
    // Its command line names it and the program, not berth's shim.
    let cmdline = lines[2].trim_end();
    assert!(
        cmdline.starts_with(&format!("/sbin/{init} -- sh -c"))
            || cmdline.starts_with(&format!("{init} -- sh -c")),
        "{cmdline}"
    );
    let out = d.docker(&["run", "--rm", "--init", "busybox", "sh", "-c", "exit 5"]);
    assert_eq!(out.status.code(), Some(5));
    // A program that ignores nothing: SIGTERM reaches it through the init.
    ok(&d.docker(&[
        "run", "-d", "--init", "--name", "sleeper", "busybox", "sleep", "1000",
    ]));
    let started = Instant::now();
    ok(&d.docker(&["stop", "-t", "20", "sleeper"]));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "SIGTERM was not forwarded"
    );
    assert_eq!(inspect(&d, "sleeper", "{{.State.ExitCode}}"), "143");
}

#[test]
fn update_changes_limits_of_a_running_container_and_info_counts_containers() {
    let Some(d) = daemon() else { return };
    ok(&d.docker(&[
        "run", "-d", "--name", "limited", "-m", "128m", "busybox", "sleep", "1000",
    ]));
    ok(&d.docker(&["create", "--name", "idle", "busybox", "true"]));
    ok(&d.docker(&[
        "update",
        "-m",
        "64m",
        "--memory-swap",
        "64m",
        "--pids-limit",
        "50",
        "limited",
    ]));
    assert_eq!(
        inspect(
            &d,
            "limited",
            "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}"
        ),
        "67108864 50"
    );
    // The cgroup itself changed: more than 50 processes cannot start.
    let out = d.docker(&[
        "exec",
        "limited",
        "sh",
        "-c",
        "for i in $(seq 60); do sleep 5 & done 2>/dev/null; sleep 0.2; ps | grep -c 'sleep 5'",
    ]);
    let started: u32 = text(&out.stdout).trim().parse().unwrap_or(0);
    assert!(started < 60, "the pids limit did not hold: {started}");
    assert_eq!(
        ok(&d.docker(&[
            "info",
            "--format",
            "{{.Containers}} {{.ContainersRunning}} {{.ContainersStopped}}"
        ]))
        .trim(),
        "2 1 1"
    );
}
