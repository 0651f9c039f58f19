//! Control groups: placing a container's processes in cgroups, limiting
//! their resources, freezing them, and reading their usage.
//!
//! # Layouts
//!
//! Linux has two cgroup interfaces, and hosts mount them in three ways:
//!
//! * **Legacy** (cgroup v1 only): one hierarchy per controller (or per group
//!   of co-mounted controllers, e.g. `cpu,cpuacct`), usually under
//!   `/sys/fs/cgroup/<controller>`. A container gets a directory in every
//!   hierarchy, and each limit is written in its own controller's hierarchy.
//! * **Unified** (cgroup v2 only): a single tree, usually at
//!   `/sys/fs/cgroup`, with other file names and units (`memory.max`,
//!   `cpu.weight`...). Controllers must be enabled top-down through
//!   `cgroup.subtree_control`, and there is no devices file: device access
//!   is filtered by an eBPF program attached to the cgroup, which this
//!   module assembles and attaches itself.
//! * **Hybrid**: v1 hierarchies for most controllers plus a cgroup2 mount
//!   (often `/sys/fs/cgroup/unified`) that holds whichever controllers are
//!   not bound to v1 — possibly none, possibly some (hugetlb, say). Each
//!   controller is then driven through v1 when a v1 hierarchy has it, and
//!   through the cgroup2 tree otherwise; the container also joins the
//!   cgroup2 tree, so its freezer and device filter are usable there.
//!
//! Which of these a host uses, and where, is discovered from
//! /proc/self/mountinfo rather than assumed from paths, because
//! distributions, container hosts and nested containers all mount them
//! differently (separate `cpu` and `cpuacct` hierarchies, a cgroup2 mount
//! that is not at /sys/fs/cgroup, subtrees bind-mounted as roots...).
//!
//! # Paths
//!
//! OCI's `linux.cgroupsPath` is resolved once, in [`CgroupManager::new`],
//! into one directory per hierarchy, and the manager is serializable so a
//! later command (kill, pause, delete) reuses exactly those directories even
//! if it runs in a different cgroup itself.

mod common;
mod devices;
mod devices_bpf;
mod error;
mod freezer;
mod fsutil;
mod hierarchy;
mod stats;
mod v1;
mod v2;

#[cfg(test)]
mod tests_kernel;
#[cfg(test)]
mod tests_seeded;
#[cfg(test)]
mod testutil;

use std::collections::BTreeSet;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

pub use error::CgroupError;
pub use stats::{
    BlkioEntry, BlkioStats, CpuStats, CpuUsage, HugetlbStats, MemoryEntry, MemoryStats, PidsStats,
    Stats, Throttling,
};

use hierarchy::CgroupPath;

const MOUNTINFO: &str = "/proc/self/mountinfo";
const PROC_CGROUP: &str = "/proc/self/cgroup";

/// How long destroy keeps retrying a cgroup that is busy because its last
/// processes are still exiting.
const RMDIR_RETRY: Duration = Duration::from_secs(1);

/// Which cgroup interfaces the host mounts (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// cgroup v1 hierarchies only.
    Legacy,
    /// cgroup v1 hierarchies plus a cgroup2 mount holding the rest.
    Hybrid,
    /// cgroup v2 only.
    Unified,
}

/// A container's directory in one v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct V1Dir {
    /// The hierarchy's controllers (and `name=X` for a named one).
    controllers: Vec<String>,
    /// Where the hierarchy is mounted.
    mount_point: PathBuf,
    /// The container's cgroup directory.
    dir: PathBuf,
}

/// A container's directory in the cgroup2 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct UnifiedDir {
    /// Where cgroup2 is mounted.
    mount_point: PathBuf,
    /// The container's cgroup directory.
    dir: PathBuf,
    /// Controllers available at the mount's root (its cgroup.controllers).
    controllers: Vec<String>,
}

/// Where a controller's files for this container live.
#[derive(Debug, Clone, Copy)]
enum Target<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

/// One container's cgroups, in every mounted hierarchy.
///
/// Build it with [`CgroupManager::new`]; store it (it serializes) to reach
/// the same cgroups from later commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupManager {
    layout: Layout,
    v1: Vec<V1Dir>,
    unified: Option<UnifiedDir>,
}

fn unavailable(controller: &'static str, field: &'static str) -> CgroupError {
    CgroupError::ControllerUnavailable { controller, field }
}

impl CgroupManager {
    /// Resolves the container's cgroups from this process's mounts and
    /// cgroups.
    ///
    /// `cgroups_path` is OCI's `linux.cgroupsPath`: `None` means
    /// `/berth/<id>`; an absolute path is taken from each hierarchy's root; a
    /// relative one from the calling process's own cgroup in each hierarchy.
    /// Paths with `..` components, or naming the root itself, are refused.
    /// Nothing is created yet: see [`create`](Self::create).
    pub fn new(cgroups_path: Option<&str>, id: &str) -> Result<Self, CgroupError> {
        let read = |p: &str| {
            std::fs::read_to_string(p).map_err(|source| CgroupError::ReadProc {
                path: p.into(),
                source,
            })
        };
        Self::from_proc(&read(MOUNTINFO)?, &read(PROC_CGROUP)?, cgroups_path, id)
    }

    /// Like [`new`](Self::new), but from given texts of
    /// /proc/self/mountinfo and /proc/self/cgroup: for another process's
    /// view, or for tests against hierarchies "mounted" in a directory tree.
    /// The cgroup2 root's `cgroup.controllers` is still read from the mount
    /// point named in `mountinfo`.
    pub fn from_proc(
        mountinfo: &str,
        proc_cgroup: &str,
        cgroups_path: Option<&str>,
        id: &str,
    ) -> Result<Self, CgroupError> {
        let mounts = hierarchy::parse_mountinfo(mountinfo, Path::new(MOUNTINFO))?;
        let own = hierarchy::parse_proc_cgroup(proc_cgroup, Path::new(PROC_CGROUP))?;
        let path = CgroupPath::parse(cgroups_path, id)?;
        let mut v1 = Vec::new();
        for m in &mounts.v1 {
            let own_path = m.controllers.iter().find_map(|c| own.v1.get(c));
            let name = m.controllers.join(",");
            let dir = path.dir_in(&m.mount_point, &m.root, own_path.map(String::as_str), &name)?;
            v1.push(V1Dir {
                controllers: m.controllers.clone(),
                mount_point: m.mount_point.clone(),
                dir,
            });
        }
        let unified = match &mounts.unified {
            None => None,
            Some(u) => Some(UnifiedDir {
                dir: path.dir_in(&u.mount_point, &u.root, own.unified.as_deref(), "unified")?,
                controllers: fsutil::read_opt(&u.mount_point, "cgroup.controllers")?
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect(),
                mount_point: u.mount_point.clone(),
            }),
        };
        let v1_controllers = v1
            .iter()
            .any(|h| h.controllers.iter().any(|c| !c.starts_with("name=")));
        let layout = match (v1_controllers, unified.is_some()) {
            (true, true) => Layout::Hybrid,
            (false, true) => Layout::Unified,
            _ if !v1.is_empty() => Layout::Legacy,
            _ => {
                return Err(CgroupError::NoCgroupMount {
                    path: MOUNTINFO.into(),
                });
            }
        };
        Ok(Self {
            layout,
            v1,
            unified,
        })
    }

    /// The host's cgroup layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The container's directory in the v1 hierarchy holding `controller`
    /// (e.g. "memory", or "name=systemd"), if one is mounted.
    pub fn controller_dir(&self, controller: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
            .map(|h| h.dir.as_path())
    }

    /// The container's directory in the cgroup2 hierarchy, if mounted.
    pub fn unified_dir(&self) -> Option<&Path> {
        self.unified.as_ref().map(|u| u.dir.as_path())
    }

    /// Every directory of the container, one per hierarchy.
    pub fn dirs(&self) -> Vec<&Path> {
        let v1 = self.v1.iter().map(|h| h.dir.as_path());
        v1.chain(self.unified_dir()).collect()
    }

    /// The container's directory in each hierarchy, named as a container's
    /// /sys/fs/cgroup would name the hierarchy: its controllers joined by
    /// commas ("cpu,cpuacct", "memory"), "systemd" for `name=systemd`, and
    /// "unified" for the cgroup2 tree. On a unified host the cgroup2 entry
    /// comes first; otherwise it comes last (a hybrid host's extra tree).
    pub fn hierarchy_dirs(&self) -> Vec<(String, PathBuf)> {
        let v1 = self.v1.iter().map(|h| {
            let names: Vec<&str> = h
                .controllers
                .iter()
                .map(|c| c.strip_prefix("name=").unwrap_or(c))
                .collect();
            (names.join(","), h.dir.clone())
        });
        let unified = self
            .unified
            .iter()
            .map(|u| ("unified".to_owned(), u.dir.clone()));
        if self.layout == Layout::Unified {
            unified.chain(v1).collect()
        } else {
            v1.chain(unified).collect()
        }
    }

    /// Where `controller` is driven: its v1 hierarchy when mounted, else the
    /// cgroup2 tree when it has `v2` (`None`: a core cgroup2 feature that
    /// every cgroup2 directory has).
    fn target(&self, controller: &str, v2: Option<&str>) -> Option<Target<'_>> {
        if let Some(d) = self.controller_dir(controller) {
            return Some(Target::V1(d));
        }
        let u = self.unified.as_ref()?;
        match v2 {
            Some(c) if !u.controllers.iter().any(|x| x == c) => None,
            _ => Some(Target::V2(&u.dir)),
        }
    }

    /// Creates the container's cgroup in every hierarchy (with missing
    /// parents). On v1 an empty cpuset is filled from its parent; on v2 the
    /// controllers are enabled in every ancestor's cgroup.subtree_control.
    /// Existing directories are fine.
    pub fn create(&self) -> Result<(), CgroupError> {
        for h in &self.v1 {
            if h.controllers.iter().any(|c| c == "cpuset") {
                v1::create_cpuset(&h.mount_point, &h.dir)?;
            } else {
                std::fs::create_dir_all(&h.dir).map_err(|source| CgroupError::Create {
                    path: h.dir.clone(),
                    source,
                })?;
            }
        }
        if let Some(u) = &self.unified {
            v2::create(&u.mount_point, &u.dir, self.layout == Layout::Unified)?;
        }
        Ok(())
    }

    /// Writes the limits of `r` (used both at creation and by `update`).
    /// Fields that are not set are left alone; a field that is set but whose
    /// controller is missing is an error, as is every value the kernel
    /// refuses (naming the file and the value).
    pub fn apply(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        self.apply_memory(r)?;
        self.apply_cpu(r)?;
        self.apply_pids(r)?;
        self.apply_blkio(r)?;
        self.apply_hugetlb(r)?;
        self.apply_network_rdma(r)?;
        self.apply_devices(r)?;
        self.apply_unified(r)
    }

    fn apply_memory(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        let Some(m) = r.memory() else { return Ok(()) };
        let requested = m.limit().is_some()
            || m.reservation().is_some()
            || m.swap().is_some()
            || m.swappiness().is_some()
            || m.disable_oom_killer().is_some()
            || m.kernel_tcp().is_some();
        if !requested {
            return Ok(());
        }
        match self.target("memory", Some("memory")) {
            Some(Target::V1(d)) => v1::set_memory(d, m),
            Some(Target::V2(d)) => v2::set_memory(d, m),
            None => Err(unavailable("memory", "linux.resources.memory")),
        }
    }

    fn apply_cpu(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        let Some(c) = r.cpu() else { return Ok(()) };
        let cpu_requested = c.shares().is_some()
            || c.quota().is_some()
            || c.period().is_some()
            || c.burst().is_some()
            || c.idle().is_some()
            || c.realtime_runtime().is_some()
            || c.realtime_period().is_some();
        if cpu_requested {
            match self.target("cpu", Some("cpu")) {
                Some(Target::V1(d)) => v1::set_cpu(d, c)?,
                Some(Target::V2(d)) => v2::set_cpu(d, c)?,
                None => return Err(unavailable("cpu", "linux.resources.cpu")),
            }
        }
        let cpus = c.cpus().as_deref().filter(|s| !s.is_empty());
        let mems = c.mems().as_deref().filter(|s| !s.is_empty());
        if cpus.is_none() && mems.is_none() {
            return Ok(());
        }
        match self.target("cpuset", Some("cpuset")) {
            Some(Target::V1(d) | Target::V2(d)) => common::set_cpuset(d, cpus, mems),
            None => Err(unavailable("cpuset", "linux.resources.cpu.cpus/mems")),
        }
    }

    fn apply_pids(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        let Some(p) = r.pids() else { return Ok(()) };
        match self.target("pids", Some("pids")) {
            Some(Target::V1(d) | Target::V2(d)) => common::set_pids(d, p.limit()),
            None => Err(unavailable("pids", "linux.resources.pids")),
        }
    }

    fn apply_blkio(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        let Some(b) = r.block_io() else { return Ok(()) };
        let non_empty = |v: &Option<Vec<_>>| v.as_ref().is_some_and(|v| !v.is_empty());
        let requested = b.weight().is_some()
            || b.leaf_weight().is_some()
            || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
            || non_empty(b.throttle_read_bps_device())
            || non_empty(b.throttle_write_bps_device())
            || non_empty(b.throttle_read_iops_device())
            || non_empty(b.throttle_write_iops_device());
        if !requested {
            return Ok(());
        }
        match self.target("blkio", Some("io")) {
            Some(Target::V1(d)) => v1::set_blkio(d, b),
            Some(Target::V2(d)) => v2::set_io(d, b),
            None => Err(unavailable("blkio", "linux.resources.blockIO")),
        }
    }

    fn apply_hugetlb(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        let limits = r.hugepage_limits().as_deref().unwrap_or_default();
        if limits.is_empty() {
            return Ok(());
        }
        match self.target("hugetlb", Some("hugetlb")) {
            Some(Target::V1(d)) => common::set_hugetlb(d, limits, "limit_in_bytes"),
            Some(Target::V2(d)) => {
                if let (Layout::Hybrid, Some(u)) = (self.layout, &self.unified) {
                    v2::enable_along(&u.mount_point, &u.dir);
                }
                common::set_hugetlb(d, limits, "max")
            }
            None => Err(unavailable("hugetlb", "linux.resources.hugepageLimits")),
        }
    }

    fn apply_network_rdma(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        if let Some(n) = r.network() {
            // net_cls and net_prio exist only in v1; on v2 their job is done
            // by eBPF, which has no counterpart in the spec.
            let (cls, prio) = (
                self.controller_dir("net_cls"),
                self.controller_dir("net_prio"),
            );
            v1::set_network(cls, prio, n)?;
        }
        let Some(rdma) = r.rdma().as_ref().filter(|m| !m.is_empty()) else {
            return Ok(());
        };
        match self.target("rdma", Some("rdma")) {
            Some(Target::V1(d) | Target::V2(d)) => common::set_rdma(d, rdma),
            None => Err(unavailable("rdma", "linux.resources.rdma")),
        }
    }

    fn apply_devices(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        let Some(list) = r.devices() else {
            return Ok(());
        };
        let rules = devices::parse_rules(list)?;
        match self.target("devices", None) {
            Some(Target::V1(d)) => v1::set_devices(d, &rules),
            Some(Target::V2(d)) => devices_bpf::apply(d, &rules),
            None => Err(unavailable("devices", "linux.resources.devices")),
        }
    }

    fn apply_unified(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        let Some(map) = r.unified().as_ref().filter(|m| !m.is_empty()) else {
            return Ok(());
        };
        match &self.unified {
            Some(u) => v2::set_unified(&u.dir, map),
            None => Err(CgroupError::UnifiedOnV1 {
                key: map.keys().min().cloned().unwrap_or_default(),
            }),
        }
    }

    /// The container's cgroup2 directory, opened for `CLONE_INTO_CGROUP`;
    /// None without a cgroup2 tree or when it cannot be opened.
    pub fn open_unified(&self) -> Option<std::os::fd::OwnedFd> {
        let dir = self.unified_dir()?;
        std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(dir)
            .ok()
            .map(Into::into)
    }

    /// Moves the calling process, which must be single-threaded, into the
    /// container's cgroup in every hierarchy; in the cgroup2 tree only
    /// unless it was born there (`born_in_unified`, from
    /// `CLONE_INTO_CGROUP`). A v1 hierarchy gets `0` in `tasks`: the kernel
    /// then moves one thread, the caller, and skips the global threadgroup
    /// lock, whose write side waits for an RCU grace period (5 to 12 ms on
    /// this kind of host); the cgroup2 tree only takes whole processes.
    pub fn join_self(&self, born_in_unified: bool) -> Result<(), CgroupError> {
        for h in &self.v1 {
            fsutil::write(&h.dir, "tasks", "0")?;
        }
        if !born_in_unified && let Some(dir) = self.unified_dir() {
            fsutil::write(dir, "cgroup.procs", "0")?;
        }
        Ok(())
    }

    /// Moves process `pid` (with all its threads) into the container's
    /// cgroup in every hierarchy.
    pub fn add_task(&self, pid: i32) -> Result<(), CgroupError> {
        let pid = pid.to_string();
        for dir in self.dirs() {
            fsutil::write(dir, "cgroup.procs", &pid)?;
        }
        Ok(())
    }

    /// Freezes every process of the container, returning once the kernel
    /// reports the cgroup frozen.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        match self.target("freezer", None) {
            Some(Target::V1(d)) => freezer::freeze_v1(d),
            Some(Target::V2(d)) => freezer::set_frozen_v2(d, true),
            None => Err(unavailable("freezer", "freeze")),
        }
    }

    /// Thaws the container's processes.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        match self.target("freezer", None) {
            Some(Target::V1(d)) => freezer::thaw_v1(d),
            Some(Target::V2(d)) => freezer::set_frozen_v2(d, false),
            None => Err(unavailable("freezer", "thaw")),
        }
    }

    /// Whether the container is completely frozen (a freeze in progress
    /// does not count).
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        match self.target("freezer", None) {
            Some(Target::V1(d)) => freezer::is_frozen_v1(d),
            Some(Target::V2(d)) => freezer::is_frozen_v2(d),
            None => Err(unavailable("freezer", "is_frozen")),
        }
    }

    /// Every process in the container's cgroup or its sub-cgroups, in any
    /// hierarchy, sorted. A cgroup that does not exist has none.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut all = BTreeSet::new();
        for dir in self.dirs() {
            for d in std::iter::once(dir.to_owned()).chain(fsutil::subdirs(dir)?) {
                if let Some(text) = fsutil::read_opt(&d, "cgroup.procs")? {
                    all.extend(fsutil::parse_pids(&d.join("cgroup.procs"), &text)?);
                }
            }
        }
        Ok(all.into_iter().collect())
    }

    /// Resource usage, shaped like runc's `events --stats` data. Missing
    /// controllers read as zero.
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        let mut s = Stats::default();
        let (cpuacct, cpu) = (self.controller_dir("cpuacct"), self.controller_dir("cpu"));
        if cpuacct.is_some() || cpu.is_some() {
            s.cpu = stats::cpu_v1(cpuacct, cpu)?;
        } else if let Some(d) = self.unified_dir() {
            // cpu.stat's usage counters are core: present without the cpu
            // controller.
            s.cpu = stats::cpu_v2(d)?;
        }
        match self.target("memory", Some("memory")) {
            Some(Target::V1(d)) => s.memory = stats::memory_v1(d)?,
            Some(Target::V2(d)) => s.memory = stats::memory_v2(d)?,
            None => {}
        }
        if let Some(Target::V1(d) | Target::V2(d)) = self.target("pids", Some("pids")) {
            s.pids = stats::pids(d)?;
        }
        match self.target("blkio", Some("io")) {
            Some(Target::V1(d)) => s.blkio = stats::blkio_v1(d)?,
            Some(Target::V2(d)) => s.blkio = stats::io_v2(d)?,
            None => {}
        }
        match self.target("hugetlb", Some("hugetlb")) {
            Some(Target::V1(d)) => s.hugetlb = stats::hugetlb_v1(d)?,
            Some(Target::V2(d)) => s.hugetlb = stats::hugetlb_v2(d)?,
            None => {}
        }
        Ok(s)
    }

    /// How many processes the OOM killer has killed in the container (0
    /// without a memory controller).
    pub fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        let counters = match self.target("memory", Some("memory")) {
            Some(Target::V1(d)) => fsutil::read_flat_keyed(d, "memory.oom_control")?,
            Some(Target::V2(d)) => fsutil::read_flat_keyed(d, "memory.events")?,
            None => return Ok(0),
        };
        Ok(counters.get("oom_kill").copied().unwrap_or(0))
    }

    /// Removes the container's cgroup, and any sub-cgroups (deepest first),
    /// in every hierarchy. Missing directories are fine, so it can be
    /// repeated. A cgroup still busy with exiting processes is retried for
    /// about a second. Every hierarchy is attempted; all errors are
    /// returned.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        // One deadline for all hierarchies: a busy cgroup is usually busy in
        // every hierarchy at once, and should not cost a second in each.
        let deadline = Instant::now() + RMDIR_RETRY;
        let errors = self
            .dirs()
            .into_iter()
            .filter_map(|d| remove_tree(d, deadline).err())
            .collect();
        CgroupError::collect(errors)
    }
}

/// Removes `dir` and its sub-cgroups, children first, stopping at the first
/// failure (the parents of a cgroup that stays cannot go either).
fn remove_tree(dir: &Path, deadline: Instant) -> Result<(), CgroupError> {
    let mut dirs = fsutil::subdirs(dir)?;
    dirs.reverse();
    dirs.push(dir.to_owned());
    dirs.iter().try_for_each(|d| rmdir_retry(d, deadline))
}

/// rmdir, retrying EBUSY (processes still exiting) until `deadline`.
fn rmdir_retry(dir: &Path, deadline: Instant) -> Result<(), CgroupError> {
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.to_owned(),
                    source,
                });
            }
        }
    }
}
