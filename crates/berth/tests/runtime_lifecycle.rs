//! The runtime's lifecycle through runc's command line: run, create, start,
//! state, kill, delete, list, ps, exec, pause, resume, features, spec.

use std::time::{Duration, Instant};

mod common;

use berth_testkit::{Bundle, StateRoot, require_root, unique_id};
use common::{berth, wait_status};
use serde_json::Value;

#[test]
fn run_returns_the_container_exit_code_and_output() {
    require_root!();
    let id = unique_id("r1");
    let root = StateRoot::new(berth());
    let b = Bundle::from_spec(
        berth(),
        &["sh", "-c", "echo hello from $(hostname); exit 7"],
    );
    let out = root.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from berth\n");
    assert!(
        !root.path().join(&id).exists(),
        "run deletes the container afterwards"
    );
}

#[test]
fn run_keep_leaves_a_stopped_container() {
    require_root!();
    let id = unique_id("k1");
    let root = StateRoot::new(berth());
    let b = Bundle::from_spec(berth(), &["true"]);
    root.ok(&["run", "--keep", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_eq!(root.state(&id)["status"], "stopped");
    root.ok(&["delete", &id]);
}

#[test]
fn create_start_kill_delete() {
    require_root!();
    let id = unique_id("c1");
    let root = StateRoot::new(berth());
    let b = Bundle::from_spec(berth(), &["sleep", "100"]);
    let pidfile = b.path().join("init.pid");
    root.ok(&[
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        "--pid-file",
        pidfile.to_str().unwrap(),
        &id,
    ]);
    let s = root.state(&id);
    assert_eq!(s["status"], "created");
    assert_eq!(s["id"], id.as_str());
    assert_eq!(s["bundle"], b.path().to_str().unwrap());
    assert_eq!(s["ociVersion"], "1.2.0");
    let pid = s["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), pid.to_string());
    assert!(s["created"].as_str().unwrap().ends_with('Z'));

    root.ok(&["start", &id]);
    assert_eq!(wait_status(&root, &id, "running")["status"], "running");
    // /proc/PID/exe is the sleep applet now, not berth.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(exe.ends_with("busybox"), "{exe:?}");

    let out = root.run(&["delete", &id]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a running container needs --force"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&id) && err.contains("running"), "{err}");

    root.ok(&["kill", &id, "KILL"]);
    assert_eq!(wait_status(&root, &id, "stopped")["pid"], 0);
    let out = root.run(&["kill", &id, "TERM"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "kill of a stopped container fails"
    );
    root.ok(&["delete", &id]);
    assert!(!root.path().join(&id).exists());
    let out = root.run(&["state", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("{id} does not exist")));
}

#[test]
fn signals_by_name_and_number_reach_the_process() {
    require_root!();
    let id = unique_id("s1");
    let root = StateRoot::new(berth());
    // A shell as pid 1 only gets signals it has a handler for.
    let b = Bundle::from_spec(
        berth(),
        &[
            "sh",
            "-c",
            "trap 'echo got USR1 > /tmp/sig' USR1; trap 'exit 42' TERM; touch /tmp/ready; while :; do sleep 0.05; done",
        ],
    );
    let mut cfg = b.config.clone();
    cfg["root"]["readonly"] = Value::Bool(false);
    let b = Bundle::new(cfg);
    root.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    // Signals without a handler do not reach a pid 1: wait for the traps.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.rootfs().join("tmp/ready").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    root.ok(&["kill", &id, "SIGUSR1"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.rootfs().join("tmp/sig").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("tmp/sig")).unwrap(),
        "got USR1\n"
    );
    root.ok(&["kill", &id, "15"]);
    assert_eq!(wait_status(&root, &id, "stopped")["status"], "stopped");
    let out = root.run(&["kill", &id, "NOSUCHSIG"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NOSUCHSIG"));
    root.ok(&["delete", &id]);
}

#[test]
fn exec_list_ps_pause_resume() {
    require_root!();
    let id = unique_id("e1");
    let root = StateRoot::new(berth());
    let b = Bundle::from_spec(berth(), &["sleep", "100"]);
    root.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);

    let out = root.run(&["exec", &id, "sh", "-c", "echo in $(hostname); exit 5"]);
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "in berth\n");
    // exec joins the pid namespace: the container's init is pid 1 there.
    let out = root.ok(&["exec", &id, "cat", "/proc/1/cmdline"]);
    assert_eq!(out, "sleep\x00100\x00");
    let out = root.ok(&[
        "exec",
        "--env",
        "FOO=bar",
        "--cwd",
        "/tmp",
        &id,
        "sh",
        "-c",
        "echo $FOO $(pwd)",
    ]);
    assert_eq!(out, "bar /tmp\n");
    let out = root.run(&["exec", &id, "no-such-program"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("executable file not found"));

    let list = root.ok(&["list"]);
    assert!(list.starts_with("ID"), "{list}");
    assert!(list.contains(&id) && list.contains("running"), "{list}");
    assert_eq!(root.ok(&["list", "-q"]), format!("{id}\n"));
    let json: Value = serde_json::from_str(&root.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(json[0]["id"], id.as_str());

    let pids: Vec<i64> = serde_json::from_str(&root.ok(&["ps", "--format", "json", &id])).unwrap();
    let init = root.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(pids, vec![init]);
    let table = root.ok(&["ps", &id]);
    assert!(
        table.starts_with("UID") && table.contains("sleep 100"),
        "{table}"
    );

    root.ok(&["pause", &id]);
    assert_eq!(root.state(&id)["status"], "paused");
    root.ok(&["resume", &id]);
    assert_eq!(root.state(&id)["status"], "running");
    root.ok(&["delete", "--force", &id]);
    assert!(!root.path().join(&id).exists());
}

#[test]
fn exec_detached_writes_a_pid_file_and_process_json_works() {
    require_root!();
    let id = unique_id("e2");
    let root = StateRoot::new(berth());
    let b = Bundle::from_spec(berth(), &["sleep", "100"]);
    root.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let proc_json = b.path().join("process.json");
    std::fs::write(
        &proc_json,
        r#"{"terminal":false,"user":{"uid":65534,"gid":65534},"args":["sh","-c","id -u > /dev/shm/who"],"env":["PATH=/bin:/usr/bin"],"cwd":"/"}"#,
    )
    .unwrap();
    let pidfile = b.path().join("exec.pid");
    root.ok(&[
        "exec",
        "-d",
        "--pid-file",
        pidfile.to_str().unwrap(),
        "-p",
        proc_json.to_str().unwrap(),
        &id,
    ]);
    assert!(
        std::fs::read_to_string(&pidfile)
            .unwrap()
            .parse::<i32>()
            .unwrap()
            > 0
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = root.run(&["exec", &id, "cat", "/dev/shm/who"]);
        if out.status.success() {
            assert_eq!(String::from_utf8_lossy(&out.stdout), "65534\n");
            break;
        }
        assert!(Instant::now() < deadline, "detached exec never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    root.ok(&["delete", "-f", &id]);
}

#[test]
fn features_and_spec() {
    let root = StateRoot::new(berth());
    let f: Value = serde_json::from_str(&root.ok(&["features"])).unwrap();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert!(
        f["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "user")
    );
    assert_eq!(f["linux"]["cgroup"]["v2"], true);
    let dir = tempfile::tempdir().unwrap();
    root.ok(&["spec", "--bundle", dir.path().to_str().unwrap()]);
    let spec: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(spec["process"]["args"][0], "sh");
    let nofile = spec["process"]["rlimits"][0]["hard"].as_u64().unwrap();
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    assert!(
        nofile <= lim.rlim_max,
        "the default spec stays within the host's hard limit"
    );
    let out = root.run(&["spec", "--bundle", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "spec refuses to overwrite");
}

#[test]
fn berth_runtime_link_is_a_runc_drop_in() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("berth-runtime");
    std::os::unix::fs::symlink(berth(), &link).unwrap();
    let out = std::process::Command::new(&link)
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("spec: 1.2.0"));
    let out = std::process::Command::new(&link)
        .args([
            "--root",
            dir.path().join("st").to_str().unwrap(),
            "list",
            "-q",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
