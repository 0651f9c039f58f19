//! Tests against fake hierarchies: directories in a tempdir "mounted" by a
//! synthetic mountinfo, with the control files the kernel would provide
//! created beforehand (the manager never creates files, so a write to an
//! unexpected file fails the test).

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxHugepageLimitBuilder, LinuxMemoryBuilder,
    LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder, LinuxThrottleDeviceBuilder,
    LinuxWeightDeviceBuilder,
};

use super::devices::tests::spec_rule;
use super::*;

fn touch(dir: &Path, file: &str, content: &str) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(file), content).unwrap();
}

fn get(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
}

const V1_HIERARCHIES: &[&str] = &[
    "cpu,cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "blkio",
    "pids",
    "hugetlb",
    "name=systemd",
];

/// Files each v1 controller's leaf gets (name, initial content).
fn v1_files(h: &str) -> &'static [(&'static str, &'static str)] {
    match h {
        "cpu,cpuacct" => &[
            ("cpu.shares", "1024"),
            ("cpu.cfs_period_us", "100000"),
            ("cpu.cfs_quota_us", "-1"),
            (
                "cpu.stat",
                "nr_periods 7\nnr_throttled 2\nthrottled_time 900\n",
            ),
            ("cpuacct.usage", "5000"),
            ("cpuacct.usage_percpu", "3000 2000 \n"),
            ("cpuacct.stat", "user 10\nsystem 20\n"),
        ],
        "cpuset" => &[("cpuset.cpus", ""), ("cpuset.mems", "")],
        "memory" => &[
            ("memory.limit_in_bytes", "9223372036854771712"),
            ("memory.memsw.limit_in_bytes", "9223372036854771712"),
            ("memory.soft_limit_in_bytes", ""),
            ("memory.swappiness", "60"),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
            ),
            ("memory.usage_in_bytes", "4096"),
            ("memory.stat", "cache 100\nrss 200\n"),
        ],
        "devices" => &[("devices.allow", ""), ("devices.deny", "")],
        "freezer" => &[("freezer.state", "THAWED")],
        "blkio" => &[
            ("blkio.bfq.weight", "100"),
            ("blkio.bfq.weight_device", ""),
            ("blkio.throttle.read_bps_device", ""),
            (
                "blkio.throttle.io_service_bytes_recursive",
                "8:0 Read 10\n8:0 Write 20\nTotal 30\n",
            ),
        ],
        "pids" => &[("pids.max", "max"), ("pids.current", "2")],
        "hugetlb" => &[
            ("hugetlb.2MB.limit_in_bytes", ""),
            ("hugetlb.2MB.usage_in_bytes", "0"),
        ],
        _ => &[],
    }
}

/// A legacy host under `root`: returns the manager for `/berth/c1`.
fn seed_v1(root: &Path, hierarchies: &[&str]) -> CgroupManager {
    let mut mountinfo = String::new();
    for (i, h) in hierarchies.iter().enumerate() {
        let mp = root.join(h.replace(',', "_"));
        let leaf = mp.join("berth/c1");
        touch(&leaf, "cgroup.procs", "");
        for (f, c) in v1_files(h) {
            touch(&leaf, f, c);
        }
        mountinfo.push_str(&format!(
            "{} 1 0:{i} / {} rw - cgroup cgroup rw,{h}\n",
            30 + i,
            mp.display()
        ));
    }
    CgroupManager::from_proc(&mountinfo, "1:memory:/\n", None, "c1").unwrap()
}

fn leaf(root: &Path, h: &str) -> PathBuf {
    root.join(h.replace(',', "_")).join("berth/c1")
}

fn full_resources() -> LinuxResources {
    let mem = LinuxMemoryBuilder::default()
        .limit(64 << 20)
        .swap(128 << 20)
        .reservation(32 << 20)
        .swappiness(10u64)
        .disable_oom_killer(true)
        .build()
        .unwrap();
    let cpu = LinuxCpuBuilder::default()
        .shares(512u64)
        .quota(50_000)
        .period(200_000u64)
        .realtime_runtime(1000)
        .cpus("0")
        .mems("0")
        .build()
        .unwrap();
    let blkio = LinuxBlockIoBuilder::default()
        .weight(300u16)
        .weight_device(vec![
            LinuxWeightDeviceBuilder::default()
                .major(8)
                .minor(0)
                .weight(400u16)
                .build()
                .unwrap(),
        ])
        .throttle_read_bps_device(vec![
            LinuxThrottleDeviceBuilder::default()
                .major(8)
                .minor(16)
                .rate(1_000_000u64)
                .build()
                .unwrap(),
        ])
        .build()
        .unwrap();
    LinuxResourcesBuilder::default()
        .memory(mem)
        .cpu(cpu)
        .pids(LinuxPidsBuilder::default().limit(0).build().unwrap())
        .block_io(blkio)
        .hugepage_limits(vec![
            LinuxHugepageLimitBuilder::default()
                .page_size("2MB")
                .limit(1 << 30)
                .build()
                .unwrap(),
        ])
        .devices(vec![
            spec_rule(false, 'a', None, None, "rwm"),
            spec_rule(true, 'c', Some(1), Some(3), "rwm"),
        ])
        .build()
        .unwrap()
}

#[test]
fn layout_detection() {
    let d = tempfile::tempdir().unwrap();
    let mp = d.path().display();
    let v1 = format!("1 0 0:1 / {mp}/m rw - cgroup cgroup rw,memory\n");
    let v2 = format!("2 0 0:2 / {mp}/u rw - cgroup2 cgroup2 rw\n");
    let named = format!("3 0 0:3 / {mp}/s rw - cgroup cgroup rw,none,name=systemd\n");
    let mk = |mi: &str| CgroupManager::from_proc(mi, "0::/\n", Some("/x"), "id");
    assert_eq!(mk(&v1).unwrap().layout(), Layout::Legacy);
    assert_eq!(mk(&(v1.clone() + &v2)).unwrap().layout(), Layout::Hybrid);
    assert_eq!(mk(&v2).unwrap().layout(), Layout::Unified);
    assert_eq!(
        mk(&(v2.clone() + &named)).unwrap().layout(),
        Layout::Unified
    );
    let e = mk("1 0 0:1 / / rw - ext4 /dev/sda rw\n").unwrap_err();
    assert!(matches!(e, CgroupError::NoCgroupMount { .. }), "{e}");
    let m = mk(&(v1 + &v2)).unwrap();
    assert_eq!(m.controller_dir("memory").unwrap(), d.path().join("m/x"));
    assert_eq!(m.unified_dir().unwrap(), d.path().join("u/x"));
    let names: Vec<String> = m.hierarchy_dirs().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["memory", "unified"]);
    let m2 = mk(&(v2.clone() + &named)).unwrap();
    let dirs = m2.hierarchy_dirs();
    assert_eq!(dirs[0], ("unified".to_owned(), d.path().join("u/x")));
    assert_eq!(dirs[1].0, "systemd");
    let back: CgroupManager = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
    assert_eq!(back, m);
}

#[test]
fn relative_paths_follow_own_cgroups() {
    let mi = "1 0 0:1 / /cg/memory rw - cgroup cgroup rw,memory\n\
              2 0 0:2 / /cg/pids rw - cgroup cgroup rw,pids\n";
    let pc = "2:pids:/\n1:memory:/outer/me\n";
    let m = CgroupManager::from_proc(mi, pc, Some("ctr"), "id").unwrap();
    assert_eq!(
        m.controller_dir("memory").unwrap(),
        Path::new("/cg/memory/outer/me/ctr")
    );
    assert_eq!(m.controller_dir("pids").unwrap(), Path::new("/cg/pids/ctr"));
    let e = CgroupManager::from_proc(mi, "2:pids:/\n", Some("ctr"), "id").unwrap_err();
    assert!(e.to_string().contains("memory"), "{e}");
    let e = CgroupManager::from_proc(mi, pc, Some("a/../../b"), "id").unwrap_err();
    assert!(e.to_string().contains("a/../../b"), "{e}");
}

#[test]
fn v1_apply_writes_every_controller() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    let m = seed_v1(r, V1_HIERARCHIES);
    assert_eq!(m.layout(), Layout::Legacy);
    m.apply(&full_resources()).unwrap();
    let mem = leaf(r, "memory");
    assert_eq!(
        get(&mem, "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    assert_eq!(
        get(&mem, "memory.memsw.limit_in_bytes"),
        (128u64 << 20).to_string()
    );
    assert_eq!(
        get(&mem, "memory.soft_limit_in_bytes"),
        (32u64 << 20).to_string()
    );
    assert_eq!(get(&mem, "memory.swappiness"), "10");
    assert_eq!(get(&mem, "memory.oom_control"), "1");
    let cpu = leaf(r, "cpu,cpuacct");
    assert_eq!(get(&cpu, "cpu.shares"), "512");
    assert_eq!(get(&cpu, "cpu.cfs_period_us"), "200000");
    assert_eq!(get(&cpu, "cpu.cfs_quota_us"), "50000");
    // No rt files: realtime silently skipped.
    assert_eq!(get(&leaf(r, "cpuset"), "cpuset.cpus"), "0");
    assert_eq!(get(&leaf(r, "pids"), "pids.max"), "max");
    let blk = leaf(r, "blkio");
    assert_eq!(get(&blk, "blkio.bfq.weight"), "300");
    assert_eq!(get(&blk, "blkio.bfq.weight_device"), "8:0 400");
    assert_eq!(get(&blk, "blkio.throttle.read_bps_device"), "8:16 1000000");
    assert_eq!(
        get(&leaf(r, "hugetlb"), "hugetlb.2MB.limit_in_bytes"),
        (1u64 << 30).to_string()
    );
    let dev = leaf(r, "devices");
    assert_eq!(get(&dev, "devices.deny"), "a *:* rwm");
    assert_eq!(get(&dev, "devices.allow"), "c 1:3 rwm");
}

#[test]
fn v1_refusals_name_what_is_missing() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    let m = seed_v1(r, &["memory", "blkio"]);
    fs::remove_file(leaf(r, "memory").join("memory.memsw.limit_in_bytes")).unwrap();
    fs::remove_file(leaf(r, "blkio").join("blkio.bfq.weight")).unwrap();
    let swap = |s| {
        let mem = LinuxMemoryBuilder::default()
            .limit(1 << 20)
            .swap(s)
            .build()
            .unwrap();
        LinuxResourcesBuilder::default()
            .memory(mem)
            .build()
            .unwrap()
    };
    let e = m.apply(&swap(2 << 20)).unwrap_err();
    assert!(matches!(e, CgroupError::SwapUnsupported { .. }), "{e}");
    assert!(e.to_string().contains("memory.memsw.limit_in_bytes"), "{e}");
    m.apply(&swap(-1)).unwrap();
    let blk = LinuxBlockIoBuilder::default()
        .weight(500u16)
        .build()
        .unwrap();
    let e = m
        .apply(
            &LinuxResourcesBuilder::default()
                .block_io(blk)
                .build()
                .unwrap(),
        )
        .unwrap_err();
    assert!(
        e.to_string().contains("blkio.bfq.weight") && e.to_string().contains("500"),
        "{e}"
    );
    // Absent controllers: fine when nothing is asked of them, an error naming
    // the controller when something is.
    let cpu = LinuxCpuBuilder::default().build().unwrap();
    m.apply(&LinuxResourcesBuilder::default().cpu(cpu).build().unwrap())
        .unwrap();
    let pids = LinuxPidsBuilder::default().limit(5).build().unwrap();
    let e = m
        .apply(&LinuxResourcesBuilder::default().pids(pids).build().unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("pids"), "{e}");
    let uni: std::collections::HashMap<_, _> = [("memory.high".to_owned(), "1".to_owned())]
        .into_iter()
        .collect();
    let e = m
        .apply(
            &LinuxResourcesBuilder::default()
                .unified(uni)
                .build()
                .unwrap(),
        )
        .unwrap_err();
    assert!(e.to_string().contains("memory.high"), "{e}");
    // A write the "kernel" refuses names the file and the value.
    let cpu = LinuxCpuBuilder::default().idle(1).build().unwrap();
    let m = seed_v1(r, &["cpu,cpuacct"]);
    let e = m
        .apply(&LinuxResourcesBuilder::default().cpu(cpu).build().unwrap())
        .unwrap_err();
    assert!(
        e.to_string().contains("cpu.idle") && e.to_string().contains("\"1\""),
        "{e}"
    );
}

#[test]
fn v1_create_fills_cpuset_from_first_nonempty_ancestor() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    let m = seed_v1(r, &["cpuset"]);
    let mp = r.join("cpuset");
    touch(&mp, "cpuset.cpus", "0-1\n");
    touch(&mp, "cpuset.mems", "0\n");
    touch(&mp.join("berth"), "cpuset.cpus", "");
    touch(&mp.join("berth"), "cpuset.mems", "");
    m.create().unwrap();
    for dir in [mp.join("berth"), mp.join("berth/c1")] {
        assert_eq!(get(&dir, "cpuset.cpus"), "0-1");
        assert_eq!(get(&dir, "cpuset.mems"), "0");
    }
}

#[test]
fn v1_tasks_freezer_stats_and_destroy() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    let m = seed_v1(r, V1_HIERARCHIES);
    let names: Vec<String> = m.hierarchy_dirs().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names[0], "cpu,cpuacct");
    assert_eq!(names.last().unwrap(), "systemd");
    m.add_task(4242).unwrap();
    for h in V1_HIERARCHIES {
        assert_eq!(get(&leaf(r, h), "cgroup.procs"), "4242", "{h}");
    }
    touch(&leaf(r, "pids").join("sub"), "cgroup.procs", "7\n8\n");
    assert_eq!(m.pids().unwrap(), [7, 8, 4242]);
    m.freeze().unwrap();
    assert!(m.is_frozen().unwrap());
    m.thaw().unwrap();
    assert!(!m.is_frozen().unwrap());
    assert_eq!(m.oom_kill_count().unwrap(), 3);
    let s = m.stats().unwrap();
    assert_eq!(s.cpu.usage.total, 5000);
    assert_eq!(s.cpu.usage.percpu, [3000, 2000]);
    assert_eq!(s.cpu.throttling.throttled_periods, 2);
    assert!(s.cpu.usage.user > 0 && s.cpu.usage.kernel == 2 * s.cpu.usage.user);
    assert_eq!(s.memory.usage.usage, 4096);
    assert_eq!(s.memory.cache, 100);
    assert_eq!(s.memory.raw["rss"], 200);
    assert_eq!(s.pids.current, 2);
    assert_eq!(s.pids.limit, 0);
    assert_eq!(s.blkio.io_service_bytes_recursive.len(), 2);
    assert!(s.hugetlb.contains_key("2MB"));
    // Directories holding (fake) control files cannot be removed; every
    // hierarchy is still attempted and reported.
    let e = m.destroy().unwrap_err();
    let CgroupError::Multiple { errors } = &e else {
        panic!("{e}")
    };
    assert_eq!(errors.len(), V1_HIERARCHIES.len());
}

#[test]
fn destroy_is_idempotent_and_removes_sub_cgroups() {
    let d = tempfile::tempdir().unwrap();
    let mi = format!(
        "1 0 0:1 / {} rw - cgroup cgroup rw,pids\n",
        d.path().display()
    );
    let m = CgroupManager::from_proc(&mi, "1:pids:/\n", Some("/a/b"), "id").unwrap();
    m.destroy().unwrap();
    m.create().unwrap();
    fs::create_dir_all(d.path().join("a/b/x/y")).unwrap();
    fs::create_dir_all(d.path().join("a/b/z")).unwrap();
    m.destroy().unwrap();
    assert!(!d.path().join("a/b").exists());
    assert!(
        d.path().join("a").exists(),
        "the parent is shared and stays"
    );
    m.destroy().unwrap();
}

const V2_LEAF_FILES: &[(&str, &str)] = &[
    ("cgroup.procs", ""),
    ("cgroup.controllers", "cpu io memory pids hugetlb"),
    ("cgroup.freeze", "0"),
    ("cgroup.events", "populated 1\nfrozen 0\n"),
    ("memory.max", "max"),
    ("memory.low", "0"),
    ("memory.swap.max", "max"),
    ("memory.current", "8192"),
    ("memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 2\n"),
    ("memory.stat", "anon 10\nfile 20\n"),
    ("cpu.weight", "100"),
    ("cpu.max", "max 100000"),
    (
        "cpu.stat",
        "usage_usec 7\nuser_usec 5\nsystem_usec 2\nnr_periods 3\nnr_throttled 1\nthrottled_usec 4\n",
    ),
    ("pids.max", "max"),
    ("pids.current", "1"),
    ("io.weight", "default 100"),
    ("io.max", ""),
    ("hugetlb.2MB.max", "max"),
    ("hugetlb.2MB.current", "0"),
    ("memory.high", "max"),
];

/// A unified host under `root` with the container at `/berth/c1`.
fn seed_v2(root: &Path) -> CgroupManager {
    touch(root, "cgroup.controllers", "cpu io memory pids hugetlb\n");
    touch(root, "cgroup.subtree_control", "");
    let leaf = root.join("berth/c1");
    for (f, c) in V2_LEAF_FILES {
        touch(&leaf, f, c);
    }
    let mi = format!("1 0 0:1 / {} rw - cgroup2 cgroup2 rw\n", root.display());
    CgroupManager::from_proc(&mi, "0::/\n", None, "c1").unwrap()
}

#[test]
fn v2_create_enables_controllers_top_down() {
    let d = tempfile::tempdir().unwrap();
    let m = seed_v2(d.path());
    assert_eq!(m.layout(), Layout::Unified);
    touch(
        &d.path().join("berth"),
        "cgroup.controllers",
        "cpu memory\n",
    );
    touch(&d.path().join("berth"), "cgroup.subtree_control", "");
    m.create().unwrap();
    assert_eq!(
        get(d.path(), "cgroup.subtree_control"),
        "+cpu +io +memory +pids +hugetlb"
    );
    assert_eq!(
        get(&d.path().join("berth"), "cgroup.subtree_control"),
        "+cpu +memory"
    );
}

#[test]
fn v2_apply_converts_values() {
    let d = tempfile::tempdir().unwrap();
    let m = seed_v2(d.path());
    let mut r = full_resources();
    r.set_devices(None);
    r.cpu_mut().as_mut().unwrap().set_cpus(None).set_mems(None);
    r.memory_mut().as_mut().unwrap().set_swap(Some(256 << 20));
    r.set_unified(Some(
        [("memory.high".to_owned(), "1000000".to_owned())].into(),
    ));
    m.apply(&r).unwrap();
    let leaf = d.path().join("berth/c1");
    assert_eq!(get(&leaf, "memory.max"), (64u64 << 20).to_string());
    assert_eq!(get(&leaf, "memory.swap.max"), (192u64 << 20).to_string());
    assert_eq!(get(&leaf, "memory.low"), (32u64 << 20).to_string());
    // 1 + (512 - 2) * 9999 / 262142
    assert_eq!(get(&leaf, "cpu.weight"), "20");
    assert_eq!(get(&leaf, "cpu.max"), "50000 200000");
    assert_eq!(get(&leaf, "pids.max"), "max");
    // 1 + (400 - 10) * 9999 / 990, the last weight written (per device).
    assert_eq!(get(&leaf, "io.weight"), "8:0 3940");
    assert_eq!(get(&leaf, "io.max"), "8:16 rbps=1000000");
    assert_eq!(get(&leaf, "hugetlb.2MB.max"), (1u64 << 30).to_string());
    assert_eq!(get(&leaf, "memory.high"), "1000000");
    assert_eq!(v2::shares_to_weight(1024), 39);
    assert_eq!(v2::shares_to_weight(2), 1);
    assert_eq!(v2::shares_to_weight(262_144), 10_000);
    assert_eq!(v2::blkio_to_io_weight(10), 1);
    assert_eq!(v2::blkio_to_io_weight(1000), 10_000);
}

#[test]
fn v2_partial_cpu_max_and_unlimited_values() {
    let d = tempfile::tempdir().unwrap();
    let m = seed_v2(d.path());
    let leaf = d.path().join("berth/c1");
    let apply_cpu = |quota: Option<i64>, period: Option<u64>| {
        let mut c = LinuxCpuBuilder::default().build().unwrap();
        c.set_quota(quota).set_period(period);
        m.apply(&LinuxResourcesBuilder::default().cpu(c).build().unwrap())
    };
    apply_cpu(None, Some(250_000)).unwrap();
    assert_eq!(get(&leaf, "cpu.max"), "max 250000");
    touch(&leaf, "cpu.max", "30000 250000");
    apply_cpu(None, Some(100_000)).unwrap();
    assert_eq!(get(&leaf, "cpu.max"), "30000 100000");
    apply_cpu(Some(-1), None).unwrap();
    assert_eq!(get(&leaf, "cpu.max"), "max");
    let mem = LinuxMemoryBuilder::default()
        .limit(-1)
        .swap(-1)
        .build()
        .unwrap();
    m.apply(
        &LinuxResourcesBuilder::default()
            .memory(mem)
            .build()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(get(&leaf, "memory.max"), "max");
    assert_eq!(get(&leaf, "memory.swap.max"), "max");
    let pids = LinuxPidsBuilder::default().limit(7).build().unwrap();
    m.apply(&LinuxResourcesBuilder::default().pids(pids).build().unwrap())
        .unwrap();
    assert_eq!(get(&leaf, "pids.max"), "7");
}

#[test]
fn v2_refusals() {
    let d = tempfile::tempdir().unwrap();
    let m = seed_v2(d.path());
    let mem = LinuxMemoryBuilder::default().swap(1 << 20).build().unwrap();
    let e = m
        .apply(
            &LinuxResourcesBuilder::default()
                .memory(mem)
                .build()
                .unwrap(),
        )
        .unwrap_err();
    assert!(e.to_string().contains("memory.swap"), "{e}");
    let uni: std::collections::HashMap<_, _> = [("../escape".to_owned(), "1".to_owned())]
        .into_iter()
        .collect();
    let e = m
        .apply(
            &LinuxResourcesBuilder::default()
                .unified(uni)
                .build()
                .unwrap(),
        )
        .unwrap_err();
    assert!(matches!(e, CgroupError::InvalidUnifiedKey { .. }), "{e}");
    // cpuset is not among the root's controllers.
    let cpu = LinuxCpuBuilder::default().cpus("0").build().unwrap();
    let e = m
        .apply(&LinuxResourcesBuilder::default().cpu(cpu).build().unwrap())
        .unwrap_err();
    assert!(
        matches!(
            e,
            CgroupError::ControllerUnavailable {
                controller: "cpuset",
                ..
            }
        ),
        "{e}"
    );
    let bad = LinuxHugepageLimitBuilder::default()
        .page_size("../x")
        .limit(1)
        .build()
        .unwrap();
    let r = LinuxResourcesBuilder::default()
        .hugepage_limits(vec![bad])
        .build()
        .unwrap();
    assert!(m.apply(&r).is_err());
}

#[test]
fn v2_tasks_stats_and_oom() {
    let d = tempfile::tempdir().unwrap();
    let m = seed_v2(d.path());
    m.add_task(99).unwrap();
    assert_eq!(m.pids().unwrap(), [99]);
    assert!(!m.is_frozen().unwrap());
    assert_eq!(m.oom_kill_count().unwrap(), 2);
    let s = m.stats().unwrap();
    assert_eq!(s.cpu.usage.total, 7000);
    assert_eq!(s.cpu.usage.user, 5000);
    assert_eq!(s.cpu.throttling.throttled_time, 4000);
    assert_eq!(s.memory.usage.usage, 8192);
    assert_eq!(s.memory.usage.limit, u64::MAX);
    assert_eq!(s.memory.usage.failcnt, 4);
    assert_eq!(s.memory.cache, 20);
    assert_eq!(s.pids.current, 1);
    assert!(s.hugetlb.contains_key("2MB"));
    let j = serde_json::to_value(&s).unwrap();
    assert_eq!(j["memory"]["usage"]["failcnt"], 4);
}

#[test]
fn v1_kernel_tcp_is_set_where_the_kernel_has_the_file() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    let m = seed_v1(r, &["memory"]);
    let res = |tcp: i64| {
        LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .kernel_tcp(tcp)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    };
    // No memory.kmem.tcp.limit_in_bytes: nothing to set, and no error.
    m.apply(&res(1 << 20)).unwrap();
    let mem = leaf(r, "memory");
    touch(
        &mem,
        "memory.kmem.tcp.limit_in_bytes",
        "9223372036854771712",
    );
    m.apply(&res(1 << 20)).unwrap();
    assert_eq!(
        get(&mem, "memory.kmem.tcp.limit_in_bytes"),
        (1u64 << 20).to_string()
    );
    assert!(m.apply(&res(-2)).is_err());
}
