//! `run`/`create`/`exec`/`ps`/`logs` flags and volume behaviours beyond the
//! common ones, through the docker CLI (so the suite also runs against a
//! dockerd: `BERTH_TEST_DOCKERD=1`).

mod common;

use std::process::{Command, Stdio};

use common::engine::{classic_build, daemon, eventually, inspect, ok};
use common::text;

#[test]
fn process_and_metadata_flags_reach_the_container() {
    let Some(d) = daemon() else { return };
    let env_file = d.dir().join("env.list");
    std::fs::write(&env_file, "# a comment\nFROM_FILE=yes\n\nSPACED=a b\n").unwrap();
    let label_file = d.dir().join("labels");
    std::fs::write(&label_file, "team=blue\n# skipped\ntier=back\n").unwrap();
    let out = ok(&d.docker(&[
        "run",
        "--name",
        "flagged",
        "--env-file",
        env_file.to_str().unwrap(),
        "--label-file",
        label_file.to_str().unwrap(),
        "--entrypoint",
        "/bin/sh",
        "--health-cmd",
        "true",
        "--health-timeout",
        "7s",
        "--health-start-period",
        "9s",
        "--stop-timeout",
        "3",
        "busybox",
        "-c",
        "echo $FROM_FILE/$SPACED",
    ]));
    assert_eq!(out, "yes/a b\n");
    assert_eq!(
        inspect(
            &d,
            "flagged",
            "{{.Config.Labels.team}} {{.Config.Labels.tier}}"
        ),
        "blue back"
    );
    assert_eq!(
        inspect(
            &d,
            "flagged",
            "{{json .Config.Entrypoint}} {{.Config.StopTimeout}}"
        ),
        r#"["/bin/sh"] 3"#
    );
    assert_eq!(
        inspect(
            &d,
            "flagged",
            "{{.Config.Healthcheck.Timeout}} {{.Config.Healthcheck.StartPeriod}}"
        ),
        "7s 9s"
    );
    // ps -n and -l: the last created.
    ok(&d.docker(&["create", "--name", "newest", "busybox", "true"]));
    let names = |args: &[&str]| {
        let mut all = vec!["ps", "--format", "{{.Names}}"];
        all.extend_from_slice(args);
        ok(&d.docker(&all)).trim().to_owned()
    };
    assert_eq!(names(&["-l"]), "newest");
    assert_eq!(names(&["-n", "2"]), "newest\nflagged");
    ok(&d.docker(&["rm", "flagged", "newest"]));
}

#[test]
fn resource_flags_of_run_are_the_container_cgroups() {
    let Some(d) = daemon() else { return };
    // Each file on a v1 host, then its v2 name.
    let script = "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cut -d' ' -f1 /sys/fs/cgroup/cpu.max; \
                  cat /sys/fs/cgroup/cpu/cpu.shares 2>/dev/null || cat /sys/fs/cgroup/cpu.weight; \
                  cat /sys/fs/cgroup/cpuset/cpuset.cpus 2>/dev/null || cat /sys/fs/cgroup/cpuset.cpus; \
                  cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; \
                  cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max";
    let out = ok(&d.docker(&[
        "run",
        "--name",
        "limited",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "--cpuset-cpus",
        "0",
        "--pids-limit",
        "64",
        "-m",
        "64m",
        "--memory-swap",
        "128m",
        "busybox",
        "sh",
        "-c",
        script,
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "50000", "{out}");
    // cpu.shares on v1; v2's weight for 512 shares.
    assert!(lines[1] == "512" || lines[1] == "20", "{out}");
    assert_eq!(&lines[2..], ["0", "64", "67108864"], "{out}");
    assert_eq!(
        inspect(
            &d,
            "limited",
            "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.PidsLimit}}"
        ),
        "500000000 67108864 134217728 64"
    );
    ok(&d.docker(&["rm", "limited"]));
}

#[test]
fn stop_signal_and_timeout_are_honoured() {
    let Some(d) = daemon() else { return };
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "usr1",
        "--stop-signal",
        "USR1",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 7' USR1; while true; do sleep 0.1; done",
    ]));
    ok(&d.docker(&["stop", "usr1"]));
    assert_eq!(inspect(&d, "usr1", "{{.State.ExitCode}}"), "7");
    // A process that ignores SIGTERM is killed once the timeout passes.
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "stubborn",
        "--stop-timeout",
        "1",
        "busybox",
        "sh",
        "-c",
        "trap '' TERM; while true; do sleep 0.1; done",
    ]));
    ok(&d.docker(&["stop", "stubborn"]));
    assert_eq!(inspect(&d, "stubborn", "{{.State.ExitCode}}"), "137");
    ok(&d.docker(&["rm", "usr1", "stubborn"]));
}

#[test]
fn another_containers_network_namespace_is_joined() {
    let Some(d) = daemon() else { return };
    ok(&d.docker(&[
        "run", "-d", "--name", "netowner", "busybox", "sleep", "1000",
    ]));
    let theirs = ok(&d.docker(&["exec", "netowner", "readlink", "/proc/self/ns/net"]));
    let ours = ok(&d.docker(&[
        "run",
        "--rm",
        "--network",
        "container:netowner",
        "busybox",
        "readlink",
        "/proc/self/ns/net",
    ]));
    assert_eq!(ours, theirs);
    let alone = ok(&d.docker(&["run", "--rm", "busybox", "readlink", "/proc/self/ns/net"]));
    assert_ne!(alone, theirs);
    ok(&d.docker(&["rm", "-f", "netowner"]));
}

#[test]
fn start_i_exec_t_and_exec_privileged() {
    let Some(d) = daemon() else { return };
    ok(&d.docker(&["create", "-i", "--name", "cat", "busybox", "cat"]));
    let out = d.docker_with_input(&["start", "-ai", "cat"], b"through start -i\n");
    assert_eq!(ok(&out), "through start -i\n");
    ok(&d.docker(&["run", "-d", "--name", "target", "busybox", "sleep", "1000"]));
    let tty = ok(&d.docker(&["exec", "-t", "target", "tty"]));
    assert!(tty.starts_with("/dev/pts/"), "{tty}");
    let caps = |args: &[&str]| {
        let mut all = vec!["exec"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["target", "grep", "CapEff", "/proc/self/status"]);
        ok(&d.docker(&all))
    };
    let plain = caps(&[]);
    // runc asks for CAP_SYS_RESOURCE, which this host's bounding set
    // lacks: dockerd cannot run privileged processes here.
    if !d.is_berth() {
        ok(&d.docker(&["rm", "-f", "cat", "target"]));
        return;
    }
    let privileged = caps(&["--privileged"]);
    assert_ne!(plain, privileged);
    // Every capability the host has.
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    let host_bound = host
        .lines()
        .find(|l| l.starts_with("CapBnd:"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    assert!(
        privileged.contains(&host_bound),
        "{privileged} vs {host_bound}"
    );
    ok(&d.docker(&["rm", "-f", "cat", "target"]));
}

#[test]
fn logs_since_and_until_select_by_time() {
    let Some(d) = daemon() else { return };
    ok(&d.docker(&[
        "run",
        "--name",
        "talker",
        "busybox",
        "sh",
        "-c",
        "echo one; echo two",
    ]));
    let logs = |args: &[&str]| {
        let mut all = vec!["logs"];
        all.extend_from_slice(args);
        all.push("talker");
        ok(&d.docker(&all))
    };
    assert_eq!(logs(&["--since", "2000-01-01T00:00:00Z"]), "one\ntwo\n");
    assert_eq!(logs(&["--since", "2100-01-01T00:00:00Z"]), "");
    assert_eq!(logs(&["--until", "2000-01-01T00:00:00Z"]), "");
    assert_eq!(logs(&["--until", "2100-01-01T00:00:00Z"]), "one\ntwo\n");
    // Relative: everything was written within the last hour.
    assert_eq!(logs(&["--since", "1h"]), "one\ntwo\n");
    ok(&d.docker(&["rm", "talker"]));
}

#[test]
fn the_daemon_outlives_clients_that_leave_mid_stream() {
    let Some(d) = daemon() else { return };
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "chatty",
        "busybox",
        "sh",
        "-c",
        "while true; do echo line; sleep 0.05; done",
    ]));
    for args in [
        vec!["logs", "-f", "chatty"],
        vec!["attach", "chatty"],
        vec!["events"],
        vec!["stats", "chatty"],
    ] {
        let mut child = Command::new(berth_testkit::daemon::DOCKER)
            .arg("-H")
            .arg(d.host())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert_eq!(inspect(&d, "chatty", "{{.State.Status}}"), "running");
    assert!(ok(&d.docker(&["logs", "--tail", "1", "chatty"])).starts_with("line"));
    ok(&d.docker(&["rm", "-f", "chatty"]));
}

#[test]
fn image_volumes_and_local_bind_volumes() {
    let Some(d) = daemon() else { return };
    // An image's VOLUME: an anonymous volume per container, filled from the
    // image, gone with rm -v.
    let ctx = d.dir().join("withvol");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN mkdir /data && echo from-image > /data/seed\nVOLUME /data\n",
    )
    .unwrap();
    ok(&classic_build(
        &d,
        &["-q", "-t", "withvol:1", ctx.to_str().unwrap()],
    ));
    let seeded = ok(&d.docker(&[
        "run",
        "--name",
        "anon",
        "withvol:1",
        "sh",
        "-c",
        "cat /data/seed && echo kept > /data/f",
    ]));
    assert_eq!(seeded, "from-image\n");
    let volume = inspect(
        &d,
        "anon",
        "{{range .Mounts}}{{.Type}} {{.Destination}} {{.Name}}{{end}}",
    );
    let parts: Vec<&str> = volume.split(' ').collect();
    assert_eq!(&parts[..2], ["volume", "/data"], "{volume}");
    let name = parts[2].to_owned();
    assert!(ok(&d.docker(&["volume", "ls", "-q"])).contains(&name));
    // --volumes-from brings that volume, not a fresh one for the image's
    // VOLUME; and `:rw` does not make a read-only volume writable.
    let shared = ok(&d.docker(&[
        "run",
        "--rm",
        "--volumes-from",
        "anon",
        "withvol:1",
        "cat",
        "/data/f",
    ]));
    assert_eq!(shared, "kept\n");
    ok(&d.docker(&[
        "create",
        "--name",
        "ro-source",
        "-v",
        "rovol:/r:ro",
        "busybox",
    ]));
    let out = d.docker(&[
        "run",
        "--rm",
        "--volumes-from",
        "ro-source:rw",
        "busybox",
        "touch",
        "/r/x",
    ]);
    assert!(!out.status.success(), "a read-only volume became writable");
    ok(&d.docker(&["rm", "-v", "ro-source"]));
    ok(&d.docker(&["volume", "rm", "rovol"]));
    ok(&d.docker(&["rm", "-v", "anon"]));
    assert!(!ok(&d.docker(&["volume", "ls", "-q"])).contains(&name));
    // The local driver's bind: the volume is a host directory.
    let host = d.dir().join("bound-volume");
    std::fs::create_dir_all(&host).unwrap();
    let device = format!("device={}", host.display());
    ok(&d.docker(&[
        "volume",
        "create",
        "--opt",
        "type=none",
        "--opt",
        &device,
        "--opt",
        "o=bind",
        "hostdir",
    ]));
    ok(&d.docker(&[
        "run",
        "--rm",
        "-v",
        "hostdir:/v",
        "busybox",
        "sh",
        "-c",
        "echo through the volume > /v/note",
    ]));
    eventually("the note on the host", || host.join("note").exists());
    assert_eq!(
        std::fs::read_to_string(host.join("note")).unwrap(),
        "through the volume\n"
    );
    ok(&d.docker(&["volume", "rm", "hostdir"]));
    assert!(
        host.join("note").exists(),
        "removing the volume keeps the host's files"
    );
    ok(&d.docker(&["rmi", "withvol:1"]));
}

#[test]
fn run_pulls_a_missing_image_and_always_when_told() {
    let Some(d) = daemon() else { return };
    let registry = berth_testkit::registry::RegistryProcess::berth(common::berth(), &[]);
    let image = format!("{}/flags/pulled:1", registry.addr);
    ok(&d.docker(&["tag", "busybox:latest", &image]));
    ok(&d.docker(&["push", &image]));
    ok(&d.docker(&["rmi", &image]));
    // --pull missing, the default: absent, so pulled.
    let out = d.docker(&["run", "--rm", &image, "echo", "ran"]);
    assert_eq!(ok(&out), "ran\n");
    let said = text(&out.stderr);
    assert!(
        said.contains("Unable to find image") && said.contains("Pulling from flags/pulled"),
        "{said}"
    );
    // Present now: not pulled again...
    let out = d.docker(&["run", "--rm", "--pull", "missing", &image, "echo", "local"]);
    assert_eq!(ok(&out), "local\n");
    assert!(
        !text(&out.stderr).contains("Pulling from"),
        "{}",
        text(&out.stderr)
    );
    // ...unless always.
    let out = d.docker(&["run", "--rm", "--pull", "always", &image, "echo", "fresh"]);
    assert_eq!(ok(&out), "fresh\n");
    assert!(
        text(&out.stderr).contains("Pulling from flags/pulled"),
        "{}",
        text(&out.stderr)
    );
    ok(&d.docker(&["rmi", &image]));
}

/// A mount point of the test's own, unmounted (with what is under it)
/// when dropped.
struct HostMount(std::path::PathBuf);

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-R").arg(&self.0).status();
    }
}

#[test]
fn bind_propagation_carries_host_mounts_into_the_container() {
    let Some(d) = daemon() else { return };
    if !berth_testkit::is_root() {
        eprintln!("skipped: needs root to mount");
        return;
    }
    // A shared mount of our own, bound into the container rslave.
    let dir = d.dir().join("propagated");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let run = |args: &[&str]| {
        assert!(
            Command::new(args[0])
                .args(&args[1..])
                .status()
                .unwrap()
                .success()
        )
    };
    let path = dir.to_str().unwrap();
    run(&["mount", "--bind", path, path]);
    let _mounted = HostMount(dir.clone());
    run(&["mount", "--make-shared", path]);
    let slave = format!("{path}:/p:rslave");
    let private = format!("{path}:/q");
    ok(&d.docker(&[
        "run", "-d", "--name", "watcher", "-v", &slave, "-v", &private, "busybox", "sleep", "1000",
    ]));
    // A mount made on the host after the start...
    let sub = dir.join("sub");
    run(&[
        "mount",
        "-t",
        "tmpfs",
        "-o",
        "size=1m",
        "berth-test",
        sub.to_str().unwrap(),
    ]);
    std::fs::write(sub.join("arrived"), "").unwrap();
    // ...reaches the rslave bind, not the private one.
    let seen = ok(&d.docker(&["exec", "watcher", "sh", "-c", "ls /p/sub; ls /q/sub"]));
    assert_eq!(seen, "arrived\n", "{seen}");
    // A bind takes the source's submounts, unless told not to.
    let flat = format!("type=bind,src={path},dst=/n,bind-recursive=disabled");
    let seen = ok(&d.docker(&[
        "run",
        "--rm",
        "-v",
        &private,
        "--mount",
        &flat,
        "busybox",
        "sh",
        "-c",
        "ls /q/sub; echo -; ls /n/sub",
    ]));
    assert_eq!(seen, "arrived\n-\n", "{seen}");
    ok(&d.docker(&["rm", "-f", "watcher"]));
}
