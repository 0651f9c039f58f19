//! Writing resources into cgroup v1 controllers, each of which has its own
//! hierarchy (or shares one with co-mounted controllers) and its own file
//! names and units.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxNetwork, LinuxThrottleDevice};

use super::devices::DeviceRule;
use super::error::CgroupError;
use super::fsutil::{self, write};

const MEMSW_LIMIT: &str = "memory.memsw.limit_in_bytes";
const MEM_LIMIT: &str = "memory.limit_in_bytes";
const KMEM_TCP_LIMIT: &str = "memory.kmem.tcp.limit_in_bytes";

/// Treats 0 as "not set" for byte limits, as runc does: a zero limit would
/// make the container unusable and is what tools emit for "unspecified".
fn nonzero(v: Option<i64>) -> Option<i64> {
    v.filter(|&v| v != 0)
}

/// Checks a byte limit: positive, or -1 for unlimited.
pub(super) fn check_limit(field: &'static str, v: i64) -> Result<i64, CgroupError> {
    if v < -1 {
        return Err(CgroupError::InvalidValue {
            field,
            value: v.to_string(),
            reason: "must be a positive number of bytes or -1 for unlimited",
        });
    }
    Ok(v)
}

/// Applies `linux.resources.memory`. The kernel memory limit is ignored:
/// current kernels accept writes to memory.kmem.limit_in_bytes but do
/// nothing with them. The kernel TCP buffer limit (kernelTCP) still works
/// and is set where the kernel has the file.
pub(super) fn set_memory(dir: &Path, m: &LinuxMemory) -> Result<(), CgroupError> {
    set_limit_and_swap(dir, nonzero(m.limit()), nonzero(m.swap()))?;
    if let Some(t) = nonzero(m.kernel_tcp()).filter(|_| fsutil::exists(dir, KMEM_TCP_LIMIT)) {
        let t = check_limit("memory.kernelTCP", t)?;
        write(dir, KMEM_TCP_LIMIT, &t.to_string())?;
    }
    if let Some(r) = nonzero(m.reservation()) {
        let r = check_limit("memory.reservation", r)?;
        write(dir, "memory.soft_limit_in_bytes", &r.to_string())?;
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(CgroupError::InvalidValue {
                field: "memory.swappiness",
                value: s.to_string(),
                reason: "must be between 0 and 100",
            });
        }
        write(dir, "memory.swappiness", &s.to_string())?;
    }
    if let Some(d) = m.disable_oom_killer() {
        write(dir, "memory.oom_control", if d { "1" } else { "0" })?;
    }
    Ok(())
}

/// Writes the memory and memory+swap limits in an order the kernel accepts.
///
/// v1 requires memsw.limit >= limit at every instant: when memsw grows it
/// must be written first, when it shrinks the memory limit must go first.
fn set_limit_and_swap(
    dir: &Path,
    limit: Option<i64>,
    swap: Option<i64>,
) -> Result<(), CgroupError> {
    let limit = limit.map(|l| check_limit("memory.limit", l)).transpose()?;
    let mut swap = swap.map(|s| check_limit("memory.swap", s)).transpose()?;
    let has_memsw = fsutil::exists(dir, MEMSW_LIMIT);
    if limit == Some(-1) && swap.is_none() && has_memsw {
        // An unlimited memory limit above a finite memsw limit is refused;
        // "unlimited memory" means unlimited swap too.
        swap = Some(-1);
    }
    if swap.is_some() && !has_memsw {
        if swap == Some(-1) {
            // Unlimited is what no swap accounting gives anyway.
            swap = None;
        } else {
            return Err(CgroupError::SwapUnsupported {
                path: dir.join(MEMSW_LIMIT),
            });
        }
    }
    match (limit, swap) {
        (Some(l), Some(s)) => {
            if s != -1 && (l == -1 || s < l) {
                return Err(CgroupError::InvalidValue {
                    field: "memory.swap",
                    value: s.to_string(),
                    reason: "memory+swap must be at least memory.limit",
                });
            }
            let cur = fsutil::parse_u64(&dir.join(MEMSW_LIMIT), &fsutil::read(dir, MEMSW_LIMIT)?)?;
            let new = if s == -1 { u64::MAX } else { s as u64 };
            if new >= cur {
                write(dir, MEMSW_LIMIT, &s.to_string())?;
                write(dir, MEM_LIMIT, &l.to_string())
            } else {
                write(dir, MEM_LIMIT, &l.to_string())?;
                write(dir, MEMSW_LIMIT, &s.to_string())
            }
        }
        (Some(l), None) => write(dir, MEM_LIMIT, &l.to_string()),
        (None, Some(s)) => write(dir, MEMSW_LIMIT, &s.to_string()),
        (None, None) => Ok(()),
    }
}

/// Writes two interdependent values (a period and the quota or runtime
/// within it). The kernel checks each write against the other's current
/// value, so one order can fail where the other works; try both.
fn write_pair(
    dir: &Path,
    first: (&str, String),
    second: Option<(&str, String)>,
) -> Result<(), CgroupError> {
    let Some(second) = second else {
        return write(dir, first.0, &first.1);
    };
    match write(dir, first.0, &first.1) {
        Ok(()) => write(dir, second.0, &second.1),
        Err(e) if e.errno() == Some(libc::EINVAL) => {
            write(dir, second.0, &second.1)?;
            write(dir, first.0, &first.1).map_err(|_| e)
        }
        Err(e) => Err(e),
    }
}

/// Applies the cpu-controller part of `linux.resources.cpu`.
pub(super) fn set_cpu(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(s) = c.shares().filter(|&s| s != 0) {
        write(dir, "cpu.shares", &s.to_string())?;
    }
    // A quota of 0 or less means no limit.
    let quota = c
        .quota()
        .map(|q| ("cpu.cfs_quota_us", if q > 0 { q } else { -1 }.to_string()));
    match c.period().filter(|&p| p != 0) {
        Some(p) => write_pair(dir, ("cpu.cfs_period_us", p.to_string()), quota)?,
        None => {
            if let Some((f, v)) = quota {
                write(dir, f, &v)?;
            }
        }
    }
    if let Some(b) = c.burst() {
        write(dir, "cpu.cfs_burst_us", &b.to_string())?;
    }
    if let Some(i) = c.idle() {
        write(dir, "cpu.idle", &i.to_string())?;
    }
    set_realtime(dir, c)
}

/// Real-time scheduling budgets; kernels without CONFIG_RT_GROUP_SCHED lack
/// the files, and then there is nothing to set.
fn set_realtime(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    let runtime = c
        .realtime_runtime()
        .filter(|_| fsutil::exists(dir, "cpu.rt_runtime_us"))
        .map(|r| ("cpu.rt_runtime_us", r.to_string()));
    match c
        .realtime_period()
        .filter(|_| fsutil::exists(dir, "cpu.rt_period_us"))
    {
        Some(p) => write_pair(dir, ("cpu.rt_period_us", p.to_string()), runtime),
        None => match runtime {
            Some((f, v)) => write(dir, f, &v),
            None => Ok(()),
        },
    }
}

/// The first of `names` that exists in `dir`.
fn first_existing<'a>(dir: &Path, names: &[&'a str]) -> Option<&'a str> {
    names.iter().copied().find(|n| fsutil::exists(dir, n))
}

/// Applies `linux.resources.blockIO`.
pub(super) fn set_blkio(dir: &Path, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    // CFQ kernels call it blkio.weight, BFQ ones blkio.bfq.weight.
    let weight_file = first_existing(dir, &["blkio.weight", "blkio.bfq.weight"]);
    let unsupported = |field, weight| CgroupError::BlkioWeightUnsupported {
        field,
        dir: dir.to_owned(),
        candidates: "blkio.weight or blkio.bfq.weight",
        weight,
    };
    if let Some(w) = b.weight() {
        write(
            dir,
            weight_file.ok_or_else(|| unsupported("weight", w))?,
            &w.to_string(),
        )?;
    }
    if let Some(w) = b.leaf_weight() {
        write(dir, "blkio.leaf_weight", &w.to_string())?;
    }
    for d in b.weight_device().iter().flatten() {
        let dev = format!("{}:{}", d.major(), d.minor());
        if let Some(w) = d.weight() {
            let f = match weight_file {
                Some("blkio.bfq.weight") => "blkio.bfq.weight_device",
                Some(_) => "blkio.weight_device",
                None => return Err(unsupported("weightDevice", w)),
            };
            write(dir, f, &format!("{dev} {w}"))?;
        }
        if let Some(w) = d.leaf_weight() {
            write(dir, "blkio.leaf_weight_device", &format!("{dev} {w}"))?;
        }
    }
    let throttles: [(&str, &Option<Vec<LinuxThrottleDevice>>); 4] = [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    for (file, list) in throttles {
        for t in list.iter().flatten() {
            write(
                dir,
                file,
                &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
            )?;
        }
    }
    Ok(())
}

/// Applies `linux.resources.network` (net_cls and net_prio; v1 only).
pub(super) fn set_network(
    cls_dir: Option<&Path>,
    prio_dir: Option<&Path>,
    n: &LinuxNetwork,
) -> Result<(), CgroupError> {
    if let Some(id) = n.class_id() {
        let dir = cls_dir.ok_or(CgroupError::ControllerUnavailable {
            controller: "net_cls",
            field: "linux.resources.network.classID",
        })?;
        write(dir, "net_cls.classid", &id.to_string())?;
    }
    for p in n.priorities().iter().flatten() {
        let dir = prio_dir.ok_or(CgroupError::ControllerUnavailable {
            controller: "net_prio",
            field: "linux.resources.network.priorities",
        })?;
        write(
            dir,
            "net_prio.ifpriomap",
            &format!("{} {}", p.name(), p.priority()),
        )?;
    }
    Ok(())
}

/// Replaces the device whitelist: deny everything, then replay the rules in
/// order, which the v1 kernel evaluates with later rules refining earlier
/// ones.
pub(super) fn set_devices(dir: &Path, rules: &[DeviceRule]) -> Result<(), CgroupError> {
    write(dir, "devices.deny", "a")?;
    for r in rules {
        let file = if r.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        write(dir, file, &r.v1_line())?;
    }
    Ok(())
}

/// Creates a cpuset cgroup and every missing ancestor below `mount_point`.
///
/// A new v1 cpuset starts with empty cpuset.cpus and cpuset.mems, and the
/// kernel refuses to admit tasks into it until both are set. Walking down
/// from the mount point, each empty value is copied from the parent, which
/// the walk has already filled.
pub(super) fn create_cpuset(mount_point: &Path, dir: &Path) -> Result<(), CgroupError> {
    let below = dir.strip_prefix(mount_point).unwrap_or(dir);
    let mut parent = mount_point.to_owned();
    for comp in below.components() {
        let cur = parent.join(comp);
        match std::fs::create_dir(&cur) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => return Err(CgroupError::Create { path: cur, source }),
        }
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let empty = fsutil::read_opt(&cur, file)?.is_some_and(|v| v.trim().is_empty());
            if empty {
                let from_parent = fsutil::read(&parent, file)?;
                write(&cur, file, from_parent.trim())?;
            }
        }
        parent = cur;
    }
    Ok(())
}
