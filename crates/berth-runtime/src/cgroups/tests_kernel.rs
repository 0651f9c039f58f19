//! Tests against the running kernel's real cgroups (they need root and skip
//! otherwise). Every test works in its own `berth-test-<pid>-<n>` cgroup and
//! a [`Guard`] kills what runs there and removes it, even when the test
//! fails.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxHugepageLimitBuilder, LinuxMemoryBuilder, LinuxPidsBuilder,
    LinuxResourcesBuilder,
};

use super::devices::tests::spec_rule;
use super::testutil::is_root;
use super::*;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A cgroup name no other test (or test run) uses.
fn unique_name() -> String {
    format!(
        "berth-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Owns a test cgroup and the children started in it; dropping it cleans
/// everything up.
struct Guard {
    mgr: CgroupManager,
    children: Vec<Child>,
}

impl Guard {
    fn new(mgr: CgroupManager) -> Self {
        Self {
            mgr,
            children: Vec::new(),
        }
    }

    /// Starts `sh -c script` held at a `read` until [`release`] so that it
    /// is inside the cgroup before it does anything.
    fn spawn_held(&mut self, script: &str) -> usize {
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("read _go; {script}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        self.mgr.add_task(child.id() as i32).unwrap();
        self.children.push(child);
        self.children.len() - 1
    }

    /// Lets a held child go on.
    fn go(&mut self, i: usize) {
        let mut stdin = self.children[i].stdin.take().unwrap();
        stdin.write_all(b"go\n").unwrap();
    }

    /// Lets a held child go and waits for it: (exit code, stdout, stderr).
    fn release(&mut self, i: usize) -> (Option<i32>, String, String) {
        self.go(i);
        let child = self.children.remove(i);
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Frozen tasks cannot act on SIGKILL.
        let _ = self.mgr.thaw();
        let me = std::process::id() as i32;
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let pids = self.mgr.pids().unwrap_or_default();
            if pids.is_empty() || Instant::now() > deadline {
                break;
            }
            for pid in pids.into_iter().filter(|&p| p != me && p > 0) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            for c in &mut self.children {
                let _ = c.try_wait();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Err(e) = self.mgr.destroy() {
            eprintln!("cleanup of test cgroup failed: {e}");
        }
        for d in self.mgr.dirs() {
            if d.exists() {
                eprintln!("test cgroup left behind: {}", d.display());
            }
        }
    }
}

fn mountinfo_has(fstype: &str) -> bool {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mi.lines().any(|l| {
        l.split(" - ")
            .nth(1)
            .is_some_and(|p| p.starts_with(&format!("{fstype} ")))
    })
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap()
        .trim()
        .to_owned()
}

macro_rules! need_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root for real cgroups");
            return;
        }
    };
}

#[test]
fn detects_this_hosts_layout() {
    let m = CgroupManager::new(Some(&format!("/{}", unique_name())), "x").unwrap();
    let expected = match (mountinfo_has("cgroup"), mountinfo_has("cgroup2")) {
        (true, true) => Layout::Hybrid,
        (true, false) => Layout::Legacy,
        _ => Layout::Unified,
    };
    assert_eq!(m.layout(), expected);
    if expected == Layout::Hybrid {
        assert!(m.controller_dir("memory").is_some());
        assert!(m.unified_dir().is_some());
    }
}

#[test]
fn relative_path_lands_under_own_cgroup() {
    need_root!();
    let name = unique_name();
    let g = Guard::new(CgroupManager::new(Some(&name), "x").unwrap());
    g.mgr.create().unwrap();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    for line in own.lines() {
        let mut it = line.splitn(3, ':');
        let (_, ctrl, path) = (it.next(), it.next().unwrap(), it.next().unwrap());
        let dir = match ctrl {
            "" => g.mgr.unified_dir(),
            c => g.mgr.controller_dir(c.split(',').next().unwrap()),
        };
        let Some(dir) = dir else { continue };
        assert!(dir.is_dir(), "{}", dir.display());
        assert!(
            dir.ends_with(Path::new(path.trim_start_matches('/')).join(&name)),
            "{}",
            dir.display()
        );
    }
}

/// 64 MiB memory, half a CPU at 512 shares, 20 pids, and 4 MiB of 2 MiB
/// huge pages when the kernel has them.
fn lifecycle_resources(huge: bool) -> oci_spec::runtime::LinuxResources {
    let mem = LinuxMemoryBuilder::default()
        .limit(64 << 20)
        .build()
        .unwrap();
    let cpu = LinuxCpuBuilder::default()
        .shares(512u64)
        .quota(50_000)
        .period(100_000u64)
        .build()
        .unwrap();
    let mut r = LinuxResourcesBuilder::default()
        .memory(mem)
        .cpu(cpu)
        .pids(LinuxPidsBuilder::default().limit(20).build().unwrap())
        .build()
        .unwrap();
    if huge {
        let l = LinuxHugepageLimitBuilder::default()
            .page_size("2MB")
            .limit(4 << 20)
            .build()
            .unwrap();
        r.set_hugepage_limits(Some(vec![l]));
    }
    r
}

fn check_lifecycle_limits(mgr: &CgroupManager, huge: bool) {
    if huge {
        // On a hybrid host without a v1 hugetlb hierarchy this goes through
        // the cgroup2 tree.
        let (dir, file) = match mgr.controller_dir("hugetlb") {
            Some(d) => (d, "hugetlb.2MB.limit_in_bytes"),
            None => (mgr.unified_dir().unwrap(), "hugetlb.2MB.max"),
        };
        assert_eq!(read(dir, file), (4u64 << 20).to_string());
    }
    match mgr.layout() {
        Layout::Unified => {
            let d = mgr.unified_dir().unwrap();
            assert_eq!(read(d, "memory.max"), (64u64 << 20).to_string());
            assert_eq!(read(d, "cpu.max"), "50000 100000");
            assert_eq!(read(d, "pids.max"), "20");
        }
        _ => {
            let mem = mgr.controller_dir("memory").unwrap();
            assert_eq!(
                read(mem, "memory.limit_in_bytes"),
                (64u64 << 20).to_string()
            );
            let cpu = mgr.controller_dir("cpu").unwrap();
            assert_eq!(read(cpu, "cpu.shares"), "512");
            assert_eq!(read(cpu, "cpu.cfs_quota_us"), "50000");
            assert_eq!(read(mgr.controller_dir("pids").unwrap(), "pids.max"), "20");
        }
    }
}

#[test]
fn lifecycle_limits_tasks_freeze_stats_destroy() {
    need_root!();
    let mut g = Guard::new(CgroupManager::new(Some(&format!("/{}", unique_name())), "x").unwrap());
    g.mgr.create().unwrap();
    let huge = Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists();
    g.mgr.apply(&lifecycle_resources(huge)).unwrap();
    check_lifecycle_limits(&g.mgr, huge);

    // v1 does not move memory charges with a task, so the child starts
    // its real work (an exec) only once inside, to be charged there.
    let i = g.spawn_held("exec sleep 60");
    let pid = g.children[i].id() as i32;
    assert_eq!(g.mgr.pids().unwrap(), [pid]);
    g.go(i);
    let exec_deadline = Instant::now() + Duration::from_secs(5);
    while !read(Path::new(&format!("/proc/{pid}")), "comm").starts_with("sleep") {
        assert!(Instant::now() < exec_deadline, "child never exec'd");
        std::thread::sleep(Duration::from_millis(5));
    }

    g.mgr.freeze().unwrap();
    assert!(g.mgr.is_frozen().unwrap());
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    assert!(state.contains(") S ") || state.contains(") D "), "{state}");
    g.mgr.thaw().unwrap();
    assert!(!g.mgr.is_frozen().unwrap());

    let s = g.mgr.stats().unwrap();
    assert_eq!(s.pids.current, 1);
    assert_eq!(s.pids.limit, 20);
    assert!(s.memory.usage.usage > 0, "{:?}", s.memory);
    assert_eq!(s.memory.usage.limit, 64 << 20);
    assert!(s.cpu.usage.total > 0, "{:?}", s.cpu);
    if huge {
        assert!(s.hugetlb.contains_key("2MB"), "{:?}", s.hugetlb);
    }
    assert_eq!(g.mgr.oom_kill_count().unwrap(), 0);

    let t = Instant::now();
    // Busy: the sleeper is still inside.
    let e = g.mgr.destroy().unwrap_err();
    assert!(
        e.errno() == Some(libc::EBUSY) || matches!(e, CgroupError::Multiple { .. }),
        "{e}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "one retry budget for all hierarchies"
    );
    g.children[i].kill().unwrap();
    g.children[i].wait().unwrap();
    g.mgr.destroy().unwrap();
    assert!(g.mgr.dirs().iter().all(|d| !d.exists()));
    g.mgr.destroy().unwrap();
}

#[test]
fn pids_limit_stops_forking() {
    need_root!();
    let mut g = Guard::new(CgroupManager::new(Some(&format!("/{}", unique_name())), "x").unwrap());
    g.mgr.create().unwrap();
    let pids = LinuxPidsBuilder::default().limit(5).build().unwrap();
    g.mgr
        .apply(&LinuxResourcesBuilder::default().pids(pids).build().unwrap())
        .unwrap();
    // The shell plus 4 sleeps reach the limit; the 5th fork must fail, so
    // the 10th is never reached.
    let i = g.spawn_held("for n in 1 2 3 4 5 6 7 8 9 10; do sleep 2 & echo forked $n; done; wait");
    let (code, out, err) = g.release(i);
    assert_ne!(code, Some(0), "{out}");
    assert!(!out.contains("forked 10"), "{out}");
    assert!(
        out.contains("forked 4") && !out.contains("forked 5"),
        "{out}"
    );
    assert!(err.to_lowercase().contains("fork"), "{err}");
    let stats = g.mgr.stats().unwrap();
    assert!(stats.pids.current <= 5, "{stats:?}");
}

#[test]
fn kernel_rejection_names_file_and_value() {
    need_root!();
    let g = Guard::new(CgroupManager::new(Some(&format!("/{}", unique_name())), "x").unwrap());
    g.mgr.create().unwrap();
    let cpu = LinuxCpuBuilder::default().cpus("4095").build().unwrap();
    let e = g
        .mgr
        .apply(&LinuxResourcesBuilder::default().cpu(cpu).build().unwrap())
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("cpuset.cpus") && msg.contains("\"4095\""),
        "{msg}"
    );
    assert!(e.errno().is_some(), "{e:?}");
}

#[test]
fn memsw_order_when_raising_and_lowering() {
    need_root!();
    let g = Guard::new(CgroupManager::new(Some(&format!("/{}", unique_name())), "x").unwrap());
    let Some(dir) = g.mgr.controller_dir("memory") else {
        eprintln!("skipped: no v1 memory hierarchy");
        return;
    };
    g.mgr.create().unwrap();
    if !dir.join("memory.memsw.limit_in_bytes").exists() {
        eprintln!("skipped: no swap accounting");
        return;
    }
    let set = |limit: i64, swap: Option<i64>| {
        let mut m = LinuxMemoryBuilder::default().limit(limit).build().unwrap();
        m.set_swap(swap);
        g.mgr
            .apply(&LinuxResourcesBuilder::default().memory(m).build().unwrap())
    };
    let check = |limit: u64, memsw: u64| {
        assert_eq!(read(dir, "memory.limit_in_bytes"), limit.to_string());
        assert_eq!(read(dir, "memory.memsw.limit_in_bytes"), memsw.to_string());
    };
    set(64 << 20, Some(128 << 20)).unwrap();
    check(64 << 20, 128 << 20);
    // Raising past the current memsw: memsw must be written first.
    set(256 << 20, Some(512 << 20)).unwrap();
    check(256 << 20, 512 << 20);
    // Lowering below the current limit: the limit must be written first.
    set(32 << 20, Some(48 << 20)).unwrap();
    check(32 << 20, 48 << 20);
    // Unlimited memory lifts swap too.
    set(-1, None).unwrap();
    let unlimited: u64 = read(dir, "memory.limit_in_bytes").parse().unwrap();
    check(unlimited, unlimited);
    // memsw below the limit is the kernel's to refuse, naming the file.
    set(64 << 20, None).unwrap();
    let m = LinuxMemoryBuilder::default()
        .swap(16 << 20)
        .build()
        .unwrap();
    let e = g
        .mgr
        .apply(&LinuxResourcesBuilder::default().memory(m).build().unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("memory.memsw.limit_in_bytes"), "{e}");
}

/// Rules allowing only reads of /dev/zero (1:5).
fn zero_only_rules() -> Vec<oci_spec::runtime::LinuxDeviceCgroup> {
    vec![
        spec_rule(false, 'a', None, None, "rwm"),
        spec_rule(true, 'c', Some(1), Some(5), "r"),
    ]
}

const DEVICE_PROBE: &str =
    "if cat /dev/null; then echo null-open; fi; echo zero-bytes $(head -c 3 /dev/zero | wc -c)";

#[test]
fn v1_device_rules_are_enforced() {
    need_root!();
    let mut g = Guard::new(CgroupManager::new(Some(&format!("/{}", unique_name())), "x").unwrap());
    let Some(dir) = g.mgr.controller_dir("devices").map(Path::to_owned) else {
        eprintln!("skipped: no v1 devices hierarchy");
        return;
    };
    g.mgr.create().unwrap();
    let r = LinuxResourcesBuilder::default()
        .devices(zero_only_rules())
        .build()
        .unwrap();
    g.mgr.apply(&r).unwrap();
    assert_eq!(read(&dir, "devices.list"), "c 1:5 r");
    let i = g.spawn_held(DEVICE_PROBE);
    let (_, out, err) = g.release(i);
    assert!(!out.contains("null-open"), "{out}");
    assert!(out.contains("zero-bytes 3"), "{out} {err}");
    assert!(err.contains("Operation not permitted"), "{err}");
}

/// A manager for the real cgroup2 mount alone (on a hybrid host that is the
/// cgroup2 tree beside the v1 hierarchies), to exercise the v2 paths here.
fn unified_only_manager() -> Option<CgroupManager> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = mi.lines().find(|l| l.contains(" - cgroup2 "))?;
    let pc = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let own = pc.lines().find(|l| l.starts_with("0::"))?;
    let name = format!("/{}", unique_name());
    Some(CgroupManager::from_proc(line, own, Some(&name), "x").unwrap())
}

#[test]
fn v2_device_filter_freeze_and_destroy_on_real_cgroup2() {
    need_root!();
    let Some(m) = unified_only_manager() else {
        eprintln!("skipped: no cgroup2 mount");
        return;
    };
    let mut g = Guard::new(m);
    assert_eq!(g.mgr.layout(), Layout::Unified);
    g.mgr.create().unwrap();
    let dir = g.mgr.unified_dir().unwrap().to_owned();
    let r = LinuxResourcesBuilder::default()
        .devices(zero_only_rules())
        .build()
        .unwrap();
    g.mgr.apply(&r).unwrap();
    assert_eq!(devices_bpf::attached_count(&dir).unwrap(), 1);
    let i = g.spawn_held(DEVICE_PROBE);
    let (_, out, err) = g.release(i);
    assert!(!out.contains("null-open"), "{out}");
    assert!(out.contains("zero-bytes 3"), "{out} {err}");

    // Re-applying replaces the program rather than stacking another.
    let mut rules = zero_only_rules();
    rules.push(spec_rule(true, 'c', Some(1), Some(3), "rw"));
    let r = LinuxResourcesBuilder::default()
        .devices(rules)
        .build()
        .unwrap();
    g.mgr.apply(&r).unwrap();
    assert_eq!(devices_bpf::attached_count(&dir).unwrap(), 1);
    let i = g.spawn_held(DEVICE_PROBE);
    let (_, out, _) = g.release(i);
    assert!(
        out.contains("null-open") && out.contains("zero-bytes 3"),
        "{out}"
    );

    let i = g.spawn_held("exec sleep 60");
    g.go(i);
    g.mgr.freeze().unwrap();
    assert!(g.mgr.is_frozen().unwrap());
    assert_eq!(read(&dir, "cgroup.freeze"), "1");
    g.mgr.thaw().unwrap();
    assert!(!g.mgr.is_frozen().unwrap());
    assert_eq!(g.mgr.pids().unwrap(), [g.children[i].id() as i32]);
    g.children[i].kill().unwrap();
    g.children[i].wait().unwrap();
    g.mgr.destroy().unwrap();
    assert!(!dir.exists());
}
