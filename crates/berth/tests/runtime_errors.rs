//! Bad input: exit status 1, one line naming what is wrong, and nothing
//! left behind (no state directory, no cgroup, no process).

mod common;

use berth_testkit::{Bundle, StateRoot, leftover_cgroups, require_root, unique_id};
use common::{berth, stderr};
use serde_json::{Value, json};

/// Creates `id` from `b`, expecting failure; returns the error line.
fn create_fails(root: &StateRoot, b: &Bundle, id: &str) -> String {
    let out = root.run(&["create", "--bundle", b.path().to_str().unwrap(), id]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "create {id} should fail: {}",
        stderr(&out)
    );
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    assert!(
        !root.path().join(id).exists(),
        "no state directory is left behind"
    );
    assert!(
        leftover_cgroups(id).is_empty(),
        "no cgroup is left behind: {:?}",
        leftover_cgroups(id)
    );
    err
}

#[test]
fn malformed_config_json_is_named() {
    require_root!();
    let root = StateRoot::new(berth());
    let b = Bundle::from_spec(berth(), &["true"]);
    std::fs::write(
        b.path().join("config.json"),
        "{\"ociVersion\": \"1.2.0\", \"process\": [",
    )
    .unwrap();
    let err = create_fails(&root, &b, &unique_id("bad"));
    assert!(err.contains("config.json"), "{err}");
    assert!(err.contains("line 1"), "{err}");
}

#[test]
fn invalid_config_values_are_named() {
    require_root!();
    let root = StateRoot::new(berth());
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "process.args",
            Box::new(|c: &mut Value| c["process"]["args"] = json!([])),
        ),
        (
            "process.cwd",
            Box::new(|c: &mut Value| c["process"]["cwd"] = json!("relative")),
        ),
        (
            "ociVersion",
            Box::new(|c: &mut Value| c["ociVersion"] = json!("2.0.0")),
        ),
        (
            "unknown variant `bogus`",
            Box::new(|c: &mut Value| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "bogus"}))
            }),
        ),
        (
            "listed twice",
            Box::new(|c: &mut Value| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "pid"}))
            }),
        ),
        (
            "uidMappings",
            Box::new(|c: &mut Value| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "user"}))
            }),
        ),
        (
            "no_such_ns",
            Box::new(
                |c: &mut Value| c["linux"]["namespaces"] = json!([{"type": "network", "path": "/proc/self/ns/no_such_ns"}, {"type": "mount"}, {"type": "uts"}]),
            ),
        ),
        (
            "exec: \"no-such-binary\"",
            Box::new(|c: &mut Value| c["process"]["args"] = json!(["no-such-binary"])),
        ),
        (
            "hostname",
            Box::new(|c: &mut Value| {
                c["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "pid"}])
            }),
        ),
    ];
    for (want, edit) in cases {
        let b = Bundle::from_spec(berth(), &["true"]);
        let mut cfg = b.config.clone();
        edit(&mut cfg);
        let b = Bundle::new(cfg);
        let err = create_fails(&root, &b, &unique_id("inv"));
        assert!(err.contains(want), "expected {want:?} in {err:?}");
    }
}

#[test]
fn missing_rootfs_is_named() {
    require_root!();
    let root = StateRoot::new(berth());
    let b = Bundle::from_spec(berth(), &["true"]);
    std::fs::remove_dir_all(b.rootfs()).unwrap();
    let err = create_fails(&root, &b, &unique_id("nofs"));
    assert!(err.contains("root.path") && err.contains("rootfs"), "{err}");
    let tmp = tempfile::tempdir().unwrap();
    let out = root.run(&[
        "create",
        "--bundle",
        tmp.path().to_str().unwrap(),
        "nobundle",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("config.json"), "{}", stderr(&out));
}

#[test]
fn bad_ids_are_refused() {
    require_root!();
    let root = StateRoot::new(berth());
    let b = Bundle::from_spec(berth(), &["true"]);
    for (id, want) in [("", "empty"), ("a/b", "'/'"), ("..", ".."), ("../x", "'/'")] {
        let out = root.run(&["create", "--bundle", b.path().to_str().unwrap(), id]);
        assert_eq!(out.status.code(), Some(1), "id {id:?}");
        let err = stderr(&out);
        assert!(err.contains(want), "id {id:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
    assert_eq!(
        std::fs::read_dir(root.path())
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
}

#[test]
fn an_existing_id_is_refused_and_kept() {
    require_root!();
    let root = StateRoot::new(berth());
    let id = unique_id("dup");
    let b = Bundle::from_spec(berth(), &["sleep", "100"]);
    root.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    let out = root.run(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(
        root.state(&id)["status"],
        "created",
        "the first container is untouched"
    );
    root.ok(&["delete", &id]);
    assert!(leftover_cgroups(&id).is_empty());
}

#[test]
fn verbs_on_missing_or_stopped_containers_fail_cleanly() {
    require_root!();
    let root = StateRoot::new(berth());
    for args in [
        vec!["start", "ghost"],
        vec!["kill", "ghost"],
        vec!["delete", "ghost"],
        vec!["state", "ghost"],
        vec!["exec", "ghost", "true"],
        vec!["pause", "ghost"],
    ] {
        let out = root.run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).contains("ghost does not exist"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    root.ok(&["delete", "--force", "ghost"]);
    let id = unique_id("stopped");
    let b = Bundle::from_spec(berth(), &["true"]);
    root.ok(&["run", "--keep", "--bundle", b.path().to_str().unwrap(), &id]);
    for args in [
        vec!["kill", &id, "KILL"],
        vec!["start", &id],
        vec!["exec", &id, "true"],
        vec!["pause", &id],
    ] {
        let out = root.run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).contains("stopped"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    root.ok(&["delete", &id]);
}

#[test]
fn raising_an_rlimit_past_the_host_hard_limit_names_the_limit() {
    require_root!();
    let root = StateRoot::new(berth());
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    // Bit 24 is CAP_SYS_RESOURCE.
    let has_sys_resource = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap() & (1u64 << 24) != 0)
        .unwrap();
    if has_sys_resource || lim.rlim_max == libc::RLIM_INFINITY {
        eprintln!("skipped: this host lets us raise RLIMIT_NOFILE");
        return;
    }
    let too_high = lim.rlim_max * 2;
    let b = Bundle::from_spec(berth(), &["true"]);
    let mut cfg = b.config.clone();
    cfg["process"]["rlimits"] =
        json!([{"type": "RLIMIT_NOFILE", "soft": too_high, "hard": too_high}]);
    let b = Bundle::new(cfg);
    let err = create_fails(&root, &b, &unique_id("rlim"));
    assert!(err.contains("RLIMIT_NOFILE"), "{err}");
    assert!(err.contains(&too_high.to_string()), "{err}");
    assert!(
        err.contains(&lim.rlim_max.to_string()),
        "names the host's limit: {err}"
    );
}

#[test]
fn a_terminal_without_console_socket_is_refused() {
    require_root!();
    let root = StateRoot::new(berth());
    let b = Bundle::from_spec(berth(), &["true"]);
    let mut cfg = b.config.clone();
    cfg["process"]["terminal"] = json!(true);
    let b = Bundle::new(cfg);
    let err = create_fails(&root, &b, &unique_id("tty"));
    assert!(err.contains("console-socket"), "{err}");
}

#[test]
fn systemd_cgroup_is_refused_with_advice() {
    let root = StateRoot::new(berth());
    let out = root.run(&["--systemd-cgroup", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cgroupfs"), "{}", stderr(&out));
}

#[test]
fn delete_force_removes_a_container_whose_state_is_unreadable() {
    require_root!();
    let root = StateRoot::new(berth());
    let id = unique_id("torn");
    let b = Bundle::from_spec(berth(), &["sleep", "100"]);
    root.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    // A host crash: the processes are gone, and the state (not fsynced)
    // is an empty file.
    let pid = root.state(&id)["pid"].as_i64().unwrap() as i32;
    // SAFETY: killing the container's init, which this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let state = root.path().join(&id).join("state.json");
    std::fs::write(&state, b"").unwrap();
    let out = root.run(&["delete", &id]);
    assert!(!out.status.success(), "only --force removes it");
    root.ok(&["delete", "--force", &id]);
    assert!(!root.path().join(&id).exists());
    // What a reboot would have removed with the processes (the killed
    // init may take a moment to leave its cgroup).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !leftover_cgroups(&id).is_empty() && std::time::Instant::now() < deadline {
        for dir in leftover_cgroups(&id) {
            let _ = std::fs::remove_dir(dir);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(leftover_cgroups(&id).is_empty());
}
