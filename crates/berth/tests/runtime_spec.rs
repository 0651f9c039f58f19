//! config.json features end to end: mounts, rlimits, sysctl, personality,
//! domain name, and the finer flags of exec, kill, delete and events.

mod common;

use std::time::Duration;

use berth_testkit::{Bundle, StateRoot, require_root, unique_id};
use common::{berth, stderr, stdout, wait_status};
use serde_json::json;

fn edited(args: &[&str], edit: impl FnOnce(&mut serde_json::Value)) -> Bundle {
    let b = Bundle::from_spec(berth(), args);
    let mut cfg = b.config.clone();
    edit(&mut cfg);
    Bundle::new(cfg)
}

fn run_ok(root: &StateRoot, b: &Bundle, id: &str) -> String {
    let o = root.run(&["run", "--bundle", b.path().to_str().unwrap(), id]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

#[test]
fn bind_mounts_honour_ro_and_files() {
    require_root!();
    let root = StateRoot::new(berth());
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("data"), "from the host\n").unwrap();
    let file = host.path().join("single");
    std::fs::write(&file, "one file\n").unwrap();
    let b = edited(
        &[
            "sh",
            "-c",
            "cat /mnt/ro/data; echo x > /mnt/ro/new 2>/dev/null || echo ro-refused; echo y > /mnt/rw/new && echo rw-ok; cat /etc/single; grep -c ' /mnt/tmp tmpfs' /proc/mounts",
        ],
        |c| {
            let mounts = c["mounts"].as_array_mut().unwrap();
            mounts.push(json!({"destination": "/mnt/ro", "type": "bind", "source": host.path(), "options": ["rbind", "ro"]}));
            mounts.push(json!({"destination": "/mnt/rw", "type": "bind", "source": host.path(), "options": ["bind", "rw"]}));
            mounts.push(json!({"destination": "/etc/single", "type": "bind", "source": file, "options": ["bind", "ro"]}));
            mounts.push(json!({"destination": "/mnt/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=1m"]}));
        },
    );
    let out = run_ok(&root, &b, &unique_id("bind"));
    assert_eq!(out, "from the host\nro-refused\nrw-ok\none file\n1\n");
    assert_eq!(
        std::fs::read_to_string(host.path().join("new")).unwrap(),
        "y\n"
    );
}

#[test]
fn a_symlink_in_the_image_cannot_redirect_a_mount_to_the_host() {
    require_root!();
    let root = StateRoot::new(berth());
    let b = edited(&["sh", "-c", "grep -c ' /here tmpfs' /proc/mounts"], |c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/escape/here", "type": "tmpfs", "source": "tmpfs"}));
    });
    // /escape -> / on the host would mount over the host's /here.
    std::os::unix::fs::symlink("/", b.rootfs().join("escape")).unwrap();
    let out = run_ok(&root, &b, &unique_id("link"));
    assert_eq!(out.trim(), "1");
    assert!(
        !std::path::Path::new("/here").exists(),
        "nothing was made on the host"
    );
    assert!(
        b.rootfs().join("here").is_dir(),
        "the mount point was made inside the rootfs"
    );
}

#[test]
fn rlimits_sysctl_personality_and_domainname_apply() {
    require_root!();
    let root = StateRoot::new(berth());
    let b = edited(
        &[
            "sh",
            "-c",
            "ulimit -n; ulimit -Hn; cat /proc/sys/net/ipv4/ip_forward; uname -m; cat /proc/sys/kernel/domainname",
        ],
        |c| {
            c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}]);
            c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
            c["linux"]["personality"] = json!({"domain": "LINUX32"});
            c["domainname"] = json!("example.test");
        },
    );
    let out = run_ok(&root, &b, &unique_id("misc"));
    assert_eq!(out, "100\n200\n1\ni686\nexample.test\n");
}

#[test]
fn exec_flags_user_caps_no_new_privs_and_tty() {
    require_root!();
    let root = StateRoot::new(berth());
    let id = unique_id("execf");
    let b = Bundle::from_spec(berth(), &["sleep", "100"]);
    root.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_eq!(
        root.ok(&["exec", "-u", "65534:65534", &id, "id", "-u"]),
        "65534\n"
    );
    let caps = |extra: &[&str]| {
        let mut args = vec!["exec"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&id, "grep", "CapEff", "/proc/self/status"]);
        let line = root.ok(&args);
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    const CAP_SYS_ADMIN: u64 = 1 << 21;
    assert_eq!(caps(&[]) & CAP_SYS_ADMIN, 0);
    assert_ne!(caps(&["--cap", "CAP_SYS_ADMIN"]) & CAP_SYS_ADMIN, 0);
    let nnp = root.ok(&[
        "exec",
        "--no-new-privs",
        &id,
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ]);
    assert!(nnp.trim_end().ends_with('1'), "{nnp}");
    let o = root.run(&["exec", "-t", &id, "true"]);
    assert!(
        o.status.success(),
        "a tty exec without a console socket is proxied: {}",
        stderr(&o)
    );
    root.ok(&["delete", "-f", &id]);
}

#[test]
fn kill_all_and_force_delete_of_a_paused_container() {
    require_root!();
    let root = StateRoot::new(berth());
    let id = unique_id("killall");
    // Without a pid namespace, killing the init does not kill the rest:
    // --all must reach every process in the cgroup.
    let b = edited(&["sh", "-c", "sleep 100 & sleep 100 & wait"], |c| {
        c["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "uts"}, {"type": "ipc"}]);
    });
    root.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let pids = loop {
        let pids: Vec<i32> =
            serde_json::from_str(&root.ok(&["ps", "--format", "json", &id])).unwrap();
        if pids.len() == 3 || std::time::Instant::now() > deadline {
            break pids;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(pids.len(), 3, "{pids:?}");
    root.ok(&["kill", "--all", &id, "KILL"]);
    wait_status(&root, &id, "stopped");
    std::thread::sleep(Duration::from_millis(100));
    for p in &pids {
        assert!(
            berth_runtime::state::proc_start_time(*p).is_none(),
            "pid {p} survived"
        );
    }
    root.ok(&["delete", &id]);

    let id = unique_id("paused");
    let b = Bundle::from_spec(berth(), &["sleep", "100"]);
    root.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    root.ok(&["pause", &id]);
    let o = root.run(&["delete", &id]);
    assert_eq!(o.status.code(), Some(1), "a paused container needs --force");
    root.ok(&["delete", "--force", &id]);
    assert!(!root.path().join(&id).exists());
}

#[test]
fn events_stream_until_the_container_stops() {
    require_root!();
    let root = StateRoot::new(berth());
    let id = unique_id("events");
    let b = Bundle::from_spec(berth(), &["sleep", "1"]);
    root.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let out = root.ok(&["events", "--interval", "200ms", &id]);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 2, "{out}");
    assert!(
        lines
            .iter()
            .all(|l| l["type"] == "stats" && l["id"] == id.as_str())
    );
    root.ok(&["delete", &id]);
}

#[test]
fn no_pivot_and_no_new_keyring_still_give_a_working_root() {
    require_root!();
    let root = StateRoot::new(berth());
    let id = unique_id("nopivot");
    let b = Bundle::from_spec(
        berth(),
        &[
            "sh",
            "-c",
            "ls /bin/busybox; cat /proc/1/cmdline | tr '\\0' ' '",
        ],
    );
    let o = root.run(&[
        "run",
        "--no-pivot",
        "--no-new-keyring",
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("/bin/busybox\nsh -c"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn namespaces_are_joined_by_path() {
    require_root!();
    let root = StateRoot::new(berth());
    let first = unique_id("nsowner");
    let b = edited(&["sleep", "100"], |c| c["hostname"] = json!("shared-uts"));
    root.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &first]);
    let pid = root.state(&first)["pid"].as_i64().unwrap();
    let b2 = edited(&["sh", "-c", "hostname; readlink /proc/self/ns/net"], |c| {
        c["hostname"] = serde_json::Value::Null;
        for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
            match ns["type"].as_str().unwrap() {
                "uts" => ns["path"] = json!(format!("/proc/{pid}/ns/uts")),
                "network" => ns["path"] = json!(format!("/proc/{pid}/ns/net")),
                _ => {}
            }
        }
    });
    let out = run_ok(&root, &b2, &unique_id("nsjoin"));
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_eq!(out, format!("shared-uts\n{}\n", theirs.display()));
    root.ok(&["delete", "-f", &first]);
}

#[test]
fn spec_devices_are_created_with_their_mode_and_owner() {
    require_root!();
    let root = StateRoot::new(berth());
    let b = edited(
        &[
            "sh",
            "-c",
            "stat -c '%F %t:%T %a %u:%g' /dev/mynull; echo hi > /dev/mynull && echo writable",
        ],
        |c| {
            c["linux"]["devices"] = json!([{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 432, "uid": 7, "gid": 8}]);
            // Mode 0660: writable by its owner, which the process runs as.
            c["process"]["user"] = json!({"uid": 7, "gid": 8});
        },
    );
    let out = run_ok(&root, &b, &unique_id("devs"));
    assert_eq!(out, "character special file 1:3 660 7:8\nwritable\n");
}
