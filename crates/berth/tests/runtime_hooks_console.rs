//! Hooks, the console socket, user namespaces, preserved descriptors.

mod common;

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;

use berth_testkit::{Bundle, StateRoot, leftover_cgroups, require_root, unique_id};
use common::{berth, stderr, stdout, wait_status};
use serde_json::{Value, json};

fn hook(out: &std::path::Path, name: &str) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}/{name}.json", out.display())]})
}

#[test]
fn every_hook_runs_with_the_state_on_stdin() {
    require_root!();
    let root = StateRoot::new(berth());
    let id = unique_id("hooks");
    let out = tempfile::tempdir().unwrap();
    let b = Bundle::from_spec(berth(), &["true"]);
    let mut cfg = b.config.clone();
    cfg["root"]["readonly"] = json!(false);
    // createContainer runs in the container's mount namespace before
    // pivot_root (host paths still visible); startContainer runs inside the
    // container, so it writes into the container's /tmp.
    cfg["hooks"] = json!({
        "prestart": [hook(out.path(), "prestart")],
        "createRuntime": [hook(out.path(), "createRuntime")],
        "createContainer": [hook(out.path(), "createContainer")],
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /tmp/startContainer.json"]}],
        "poststart": [hook(out.path(), "poststart")],
        "poststop": [hook(out.path(), "poststop")]
    });
    let b = Bundle::new(cfg);
    root.ok(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    for name in [
        "prestart",
        "createRuntime",
        "createContainer",
        "poststart",
        "poststop",
    ] {
        let text = std::fs::read_to_string(out.path().join(format!("{name}.json")))
            .unwrap_or_else(|e| panic!("{name} hook did not run: {e}"));
        let state: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(state["id"], id.as_str(), "{name}");
        assert_eq!(state["bundle"], b.path().to_str().unwrap(), "{name}");
        assert_eq!(state["ociVersion"], "1.2.0");
        if name != "poststop" {
            assert!(state["pid"].as_i64().unwrap() > 0, "{name}: {state}");
        }
    }
    let inside: Value =
        serde_json::from_slice(&std::fs::read(b.rootfs().join("tmp/startContainer.json")).unwrap())
            .unwrap();
    assert_eq!(inside["id"], id.as_str());
}

#[test]
fn a_failing_prestart_hook_fails_create_and_leaves_nothing() {
    require_root!();
    let root = StateRoot::new(berth());
    let id = unique_id("badhook");
    let b = Bundle::from_spec(berth(), &["true"]);
    let mut cfg = b.config.clone();
    cfg["hooks"] = json!({"prestart": [{"path": "/bin/false"}]});
    let b = Bundle::new(cfg);
    let o = root.run(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("prestart") && err.contains("/bin/false"),
        "{err}"
    );
    assert!(!root.path().join(&id).exists());
    assert!(leftover_cgroups(&id).is_empty());
}

/// Receives one descriptor over a unix stream (SCM_RIGHTS).
fn recv_fd(sock: &std::os::unix::net::UnixStream) -> std::fs::File {
    berth_runtime::console::recv_fd(sock.as_raw_fd())
        .map(std::fs::File::from)
        .expect("pty master over the console socket")
}

#[test]
fn the_console_socket_receives_the_pty_master() {
    require_root!();
    let root = StateRoot::new(berth());
    let id = unique_id("tty");
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock_path).unwrap();
    let b = Bundle::from_spec(berth(), &["sh", "-c", "tty; stty size; echo done"]);
    let mut cfg = b.config.clone();
    cfg["process"]["terminal"] = json!(true);
    cfg["process"]["consoleSize"] = json!({"height": 30, "width": 100});
    let b = Bundle::new(cfg);
    root.ok(&[
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        "--console-socket",
        sock_path.to_str().unwrap(),
        &id,
    ]);
    let (conn, _) = listener.accept().unwrap();
    let mut master = recv_fd(&conn);
    root.ok(&["start", &id]);
    let mut text = String::new();
    let mut buf = [0u8; 1024];
    // EIO once the last slave holder exits.
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        if text.contains("done") {
            break;
        }
    }
    assert!(text.contains("/dev/pts/0"), "{text:?}");
    assert!(text.contains("30 100"), "{text:?}");
    wait_status(&root, &id, "stopped");
    root.ok(&["delete", &id]);
}

#[test]
fn a_user_namespace_maps_root_to_an_unprivileged_host_user() {
    require_root!();
    let root = StateRoot::new(berth());
    let id = unique_id("userns");
    let b = Bundle::from_spec(
        berth(),
        &["sh", "-c", "id -u; cat /proc/self/uid_map; sleep 100"],
    );
    let mut cfg = b.config.clone();
    cfg["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let b = Bundle::new(cfg);
    let log = b.path().join("out");
    let o = berth_testkit::run_to_files(
        root.cmd()
            .args(["run", "-d", "--bundle", b.path().to_str().unwrap(), &id])
            .stdout(std::fs::File::create(&log).unwrap()),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let pid = root.state(&id)["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid.contains("100000"),
        "the init runs as host uid 100000: {uid}"
    );
    let out = root.ok(&["exec", &id, "id", "-u"]);
    assert_eq!(out.trim(), "0", "root inside");
    root.ok(&["delete", "-f", &id]);
}

#[test]
fn preserved_descriptors_reach_the_container() {
    require_root!();
    let root = StateRoot::new(berth());
    let id = unique_id("fds");
    let b = Bundle::from_spec(berth(), &["sh", "-c", "cat <&3"]);
    let msg = b.path().join("msg");
    std::fs::write(&msg, "through fd 3\n").unwrap();
    // A shell opens fd 3 for berth, as a caller passing descriptors would.
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("exec \"$0\" \"$@\" 3<\"$MSG\"")
        .env("MSG", &msg)
        .arg(berth())
        .args(["runtime", "--root", root.path().to_str().unwrap()])
        .args([
            "run",
            "--preserve-fds",
            "1",
            "--bundle",
            b.path().to_str().unwrap(),
            &id,
        ]);
    let o = berth_testkit::run_to_files(&mut cmd);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "through fd 3\n");
}

#[test]
fn start_fails_when_the_program_cannot_start() {
    require_root!();
    let root = StateRoot::new(berth());
    let id = unique_id("nostart");
    let b = Bundle::from_spec(berth(), &["true"]);
    let mut cfg = b.config.clone();
    cfg["hooks"] = json!({"startContainer": [{"path": "/bin/false"}]});
    let b = Bundle::new(cfg);
    root.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    let o = root.run(&["start", &id]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("startContainer") && err.contains("/bin/false"),
        "{err}"
    );
    assert_eq!(wait_status(&root, &id, "stopped")["status"], "stopped");
    root.ok(&["delete", &id]);
}

#[test]
fn poststart_runs_after_the_program_started() {
    require_root!();
    let root = StateRoot::new(berth());
    let id = unique_id("poststart");
    let out = tempfile::tempdir().unwrap();
    let b = Bundle::from_spec(berth(), &["sleep", "100"]);
    let mut cfg = b.config.clone();
    // The hook reads the init's command line: it must be the program's.
    cfg["hooks"] = json!({"poststart": [{"path": "/bin/sh", "args": ["sh", "-c",
        format!("read -r s; pid=$(echo \"$s\" | sed 's/.*\"pid\":\\([0-9]*\\).*/\\1/'); tr '\\0' ' ' < /proc/$pid/cmdline > {}/cmd", out.path().display())]}]});
    let b = Bundle::new(cfg);
    root.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_eq!(
        std::fs::read_to_string(out.path().join("cmd")).unwrap(),
        "sleep 100 "
    );
    root.ok(&["delete", "-f", &id]);
}
