//! Resource limits through cgroups: enforced, visible, updatable.

mod common;

use berth_testkit::{Bundle, StateRoot, leftover_cgroups, require_root, unique_id};
use common::{berth, stderr, stdout};
use serde_json::{Value, json};

fn with_resources(args: &[&str], resources: Value) -> Bundle {
    let b = Bundle::from_spec(berth(), args);
    let mut cfg = b.config.clone();
    let devices = cfg["linux"]["resources"]["devices"].clone();
    cfg["linux"]["resources"] = resources;
    cfg["linux"]["resources"]["devices"] = devices;
    Bundle::new(cfg)
}

#[test]
fn a_memory_limit_oom_kills() {
    require_root!();
    let root = StateRoot::new(berth());
    let id = unique_id("oom");
    let limit = 32 << 20;
    // dd's 128 MiB buffer cannot fit: the OOM killer ends it with SIGKILL.
    let b = with_resources(
        &[
            "sh",
            "-c",
            "dd if=/dev/zero of=/dev/null bs=128M count=1 2>/dev/null; echo dd=$?",
        ],
        json!({"memory": {"limit": limit, "swap": limit}}),
    );
    let out = root.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "dd=137", "{}", stderr(&out));
    assert!(leftover_cgroups(&id).is_empty());
}

#[test]
fn a_pids_limit_stops_fork() {
    require_root!();
    let root = StateRoot::new(berth());
    let id = unique_id("pids");
    // The shell and four sleeps fill a limit of 5; the fifth fork fails and
    // busybox sh gives up.
    let b = with_resources(
        &[
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 3 & done; echo all-ten-started",
        ],
        json!({"pids": {"limit": 5}}),
    );
    let out = root.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(stderr(&out).contains("can't fork"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("all-ten-started"));
    assert!(!out.status.success());
    assert!(leftover_cgroups(&id).is_empty());
}

#[test]
fn limits_are_visible_updatable_and_reported() {
    require_root!();
    let root = StateRoot::new(berth());
    let id = unique_id("lim");
    let b = with_resources(
        &["sleep", "100"],
        json!({
            "memory": {"limit": 64 << 20, "reservation": 32 << 20},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"},
            "pids": {"limit": 50}
        }),
    );
    root.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let read = |file: &str| {
        root.ok(&[
            "exec",
            &id,
            "sh",
            "-c",
            &format!("cat /sys/fs/cgroup/{file} 2>/dev/null || cat /sys/fs/cgroup/unified/{file}"),
        ])
    };
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if v2 {
        assert_eq!(read("memory.max").trim(), (64u64 << 20).to_string());
        assert_eq!(read("pids.max").trim(), "50");
        assert_eq!(read("cpu.max").trim(), "50000 100000");
    } else {
        assert_eq!(
            read("memory/memory.limit_in_bytes").trim(),
            (64u64 << 20).to_string()
        );
        assert_eq!(
            read("memory/memory.soft_limit_in_bytes").trim(),
            (32u64 << 20).to_string()
        );
        assert_eq!(read("cpu/cpu.shares").trim(), "512");
        assert_eq!(read("cpu/cpu.cfs_quota_us").trim(), "50000");
        assert_eq!(read("cpuset/cpuset.cpus").trim(), "0");
        assert_eq!(read("pids/pids.max").trim(), "50");
    }
    root.ok(&["update", "--memory", "128m", "--pids-limit", "70", &id]);
    if v2 {
        assert_eq!(read("memory.max").trim(), (128u64 << 20).to_string());
        assert_eq!(read("pids.max").trim(), "70");
    } else {
        assert_eq!(
            read("memory/memory.limit_in_bytes").trim(),
            (128u64 << 20).to_string()
        );
        assert_eq!(read("pids/pids.max").trim(), "70");
    }
    let resources = b.path().join("r.json");
    std::fs::write(&resources, r#"{"pids": {"limit": 80}}"#).unwrap();
    root.ok(&["update", "-r", resources.to_str().unwrap(), &id]);
    assert!(read(if v2 { "pids.max" } else { "pids/pids.max" }).trim() == "80");

    let ev: Value = serde_json::from_str(&root.ok(&["events", "--stats", &id])).unwrap();
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], id.as_str());
    assert!(
        ev["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "{ev}"
    );
    assert_eq!(ev["data"]["pids"]["current"], 1, "{ev}");
    assert_eq!(
        ev["data"]["memory"]["usage"]["limit"].as_u64().unwrap(),
        128 << 20,
        "{ev}"
    );
    let out = root.run(&["update", "--memory", "lots", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("lots"));
    root.ok(&["delete", "-f", &id]);
    assert!(
        leftover_cgroups(&id).is_empty(),
        "{:?}",
        leftover_cgroups(&id)
    );
}

#[test]
fn device_rules_deny_what_the_spec_denies() {
    require_root!();
    let root = StateRoot::new(berth());
    let id = unique_id("dev");
    // /dev/full is made, but only read access to it is allowed; null stays
    // usable through the default rules.
    let b = Bundle::from_spec(
        berth(),
        &[
            "sh",
            "-c",
            "echo x > /dev/null && echo null-ok; echo x > /dev/full 2>/dev/null || echo full-denied; head -c1 /dev/full >/dev/null && echo full-read",
        ],
    );
    let mut cfg = b.config.clone();
    cfg["linux"]["resources"]["devices"] = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "r"}
    ]);
    let b = Bundle::new(cfg);
    let out = root.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "null-ok\nfull-denied\nfull-read\n",
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_init_and_execs_are_in_the_container_cgroup_in_every_hierarchy() {
    require_root!();
    let root = StateRoot::new(berth());
    let id = unique_id("cgjoin");
    let b = Bundle::from_spec(berth(), &["sleep", "100"]);
    root.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let state: Value = serde_json::from_str(&root.ok(&["state", &id])).unwrap();
    let init = state["pid"].as_i64().unwrap();
    let pidfile = b.path().join("exec.pid");
    let pidfile_arg = pidfile.to_str().unwrap();
    root.ok(&["exec", "-d", "--pid-file", pidfile_arg, &id, "sleep", "100"]);
    let exec: i64 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
    // Every hierarchy the host has (v1 ones, and the cgroup2 tree of a
    // hybrid or unified host), from the test's own /proc/self/cgroup.
    let hierarchies = std::fs::read_to_string("/proc/self/cgroup")
        .unwrap()
        .lines()
        .count();
    for pid in [init, exec] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let suffix = format!("/berth/{id}");
        assert_eq!(text.lines().count(), hierarchies, "{text}");
        for line in text.lines() {
            assert!(line.ends_with(&suffix), "{pid}: {line}\n{text}");
        }
    }
    root.ok(&["delete", "-f", &id]);
    assert!(leftover_cgroups(&id).is_empty());
}
