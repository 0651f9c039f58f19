//! Writing resources into a cgroup v2 (unified) directory, where all
//! controllers share one tree, file names and units differ from v1, and a
//! controller is only usable in a cgroup after its parent enabled it in
//! `cgroup.subtree_control`.

use std::collections::HashMap;
use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxThrottleDevice};

use super::error::CgroupError;
use super::fsutil::{self, write};
use super::v1::check_limit;

/// Creates `dir` below `mount_point`, enabling in every ancestor (from the
/// mount point down to the parent of `dir`) all the controllers that
/// ancestor has, so they reach the new cgroup.
///
/// Enabling is best effort: a non-root cgroup that holds processes may not
/// delegate controllers ("no internal processes"), and a delegated subtree
/// may not own its parent's subtree_control. A controller that did not make
/// it shows up later as a missing file when a limit for it is applied, which
/// names the file.
///
/// With `enable` false the directories are only made: on a hybrid host the
/// cgroup2 tree tracks processes, and enabling its controllers (hugetlb
/// here) would pin them to v2 for every other tool on the host; they are
/// enabled by [`enable_along`] when a limit needs them.
pub(super) fn create(mount_point: &Path, dir: &Path, enable: bool) -> Result<(), CgroupError> {
    let below = dir.strip_prefix(mount_point).unwrap_or(dir);
    let mut cur = mount_point.to_owned();
    for comp in below.components() {
        if enable {
            enable_controllers(&cur);
        }
        cur.push(comp);
        match std::fs::create_dir(&cur) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => return Err(CgroupError::Create { path: cur, source }),
        }
    }
    Ok(())
}

/// Enables every available controller in each ancestor of `dir`, from the
/// mount point down (best effort, as in [`create`]).
pub(super) fn enable_along(mount_point: &Path, dir: &Path) {
    let below = dir.strip_prefix(mount_point).unwrap_or(dir);
    let mut cur = mount_point.to_owned();
    for comp in below.components() {
        enable_controllers(&cur);
        cur.push(comp);
    }
}

fn enable_controllers(dir: &Path) {
    let Ok(Some(available)) = fsutil::read_opt(dir, "cgroup.controllers") else {
        return;
    };
    let wanted: Vec<String> = available
        .split_whitespace()
        .map(|c| format!("+{c}"))
        .collect();
    if wanted.is_empty() || write(dir, "cgroup.subtree_control", &wanted.join(" ")).is_ok() {
        return;
    }
    // One refused controller fails the whole write; enable the others.
    for c in &wanted {
        let _ = write(dir, "cgroup.subtree_control", c);
    }
}

/// "max" for -1, the number otherwise.
fn limit_str(v: i64) -> String {
    if v == -1 {
        "max".to_owned()
    } else {
        v.to_string()
    }
}

/// Applies `linux.resources.memory`. swappiness and disableOOMKiller have no
/// cgroup v2 counterpart and are ignored, as other runtimes do.
pub(super) fn set_memory(dir: &Path, m: &LinuxMemory) -> Result<(), CgroupError> {
    let nonzero = |v: Option<i64>| v.filter(|&v| v != 0);
    let limit = nonzero(m.limit())
        .map(|l| check_limit("memory.limit", l))
        .transpose()?;
    let swap = nonzero(m.swap())
        .map(|s| check_limit("memory.swap", s))
        .transpose()?;
    if let Some(l) = limit {
        write(dir, "memory.max", &limit_str(l))?;
    }
    if let Some(r) = nonzero(m.reservation()) {
        write(
            dir,
            "memory.low",
            &limit_str(check_limit("memory.reservation", r)?),
        )?;
    }
    let Some(s) = swap else { return Ok(()) };
    if !fsutil::exists(dir, "memory.swap.max") {
        if s == -1 {
            return Ok(());
        }
        return Err(CgroupError::SwapUnsupported {
            path: dir.join("memory.swap.max"),
        });
    }
    // The spec's swap is memory+swap (v1's memsw); v2 limits swap alone.
    let value = match (s, limit) {
        (-1, _) => "max".to_owned(),
        (s, Some(l)) if l != -1 && s >= l => (s - l).to_string(),
        _ => {
            return Err(CgroupError::InvalidValue {
                field: "memory.swap",
                value: s.to_string(),
                reason: "on cgroup v2 a finite memory+swap limit needs a finite memory.limit no larger than it",
            });
        }
    };
    write(dir, "memory.swap.max", &value)
}

/// cpu.weight (1..10000) from v1-style shares (2..262144).
pub(super) fn shares_to_weight(shares: u64) -> u64 {
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

/// Applies the cpu-controller part of `linux.resources.cpu`. Real-time
/// budgets have no v2 files and are skipped.
pub(super) fn set_cpu(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(s) = c.shares().filter(|&s| s != 0) {
        write(dir, "cpu.weight", &shares_to_weight(s).to_string())?;
    }
    let quota = c
        .quota()
        .map(|q| if q > 0 { q.to_string() } else { "max".into() });
    match (quota, c.period().filter(|&p| p != 0)) {
        (Some(q), Some(p)) => write(dir, "cpu.max", &format!("{q} {p}"))?,
        // The kernel keeps the period when only the quota is written.
        (Some(q), None) => write(dir, "cpu.max", &q)?,
        (None, Some(p)) => {
            // cpu.max has no period-only form: keep the current quota.
            let cur = fsutil::read(dir, "cpu.max")?;
            let q = cur.split_whitespace().next().unwrap_or("max").to_owned();
            write(dir, "cpu.max", &format!("{q} {p}"))?;
        }
        (None, None) => {}
    }
    if let Some(b) = c.burst() {
        write(dir, "cpu.max.burst", &b.to_string())?;
    }
    if let Some(i) = c.idle() {
        write(dir, "cpu.idle", &i.to_string())?;
    }
    Ok(())
}

/// io.weight (1..10000) from a v1 blkio weight (10..1000).
pub(super) fn blkio_to_io_weight(w: u16) -> u64 {
    let w = u64::from(w.clamp(10, 1000));
    1 + ((w - 10) * 9999) / 990
}

/// Applies `linux.resources.blockIO`. Leaf weights have no v2 counterpart
/// and are ignored.
pub(super) fn set_io(dir: &Path, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    // io.bfq.weight takes the v1 range unchanged; io.weight (iocost) needs
    // the conversion.
    let bfq = fsutil::exists(dir, "io.bfq.weight");
    let has_io_weight = fsutil::exists(dir, "io.weight");
    let convert = |w: u16| {
        if bfq {
            u64::from(w)
        } else {
            blkio_to_io_weight(w)
        }
    };
    let file = |field, w| match (bfq, has_io_weight) {
        (true, _) => Ok("io.bfq.weight"),
        (false, true) => Ok("io.weight"),
        (false, false) => Err(CgroupError::BlkioWeightUnsupported {
            field,
            dir: dir.to_owned(),
            candidates: "io.bfq.weight or io.weight",
            weight: w,
        }),
    };
    if let Some(w) = b.weight() {
        write(dir, file("weight", w)?, &format!("default {}", convert(w)))?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            let line = format!("{}:{} {}", d.major(), d.minor(), convert(w));
            write(dir, file("weightDevice", w)?, &line)?;
        }
    }
    let throttles: [(&str, &Option<Vec<LinuxThrottleDevice>>); 4] = [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ];
    for (key, list) in throttles {
        for t in list.iter().flatten() {
            // As with v1, a rate of 0 removes the limit.
            let rate = if t.rate() == 0 {
                "max".to_owned()
            } else {
                t.rate().to_string()
            };
            write(
                dir,
                "io.max",
                &format!("{}:{} {key}={rate}", t.major(), t.minor()),
            )?;
        }
    }
    Ok(())
}

/// Writes `linux.resources.unified` verbatim. Keys must be plain file names
/// of the cgroup, never paths out of it.
pub(super) fn set_unified(dir: &Path, map: &HashMap<String, String>) -> Result<(), CgroupError> {
    let mut keys: Vec<&String> = map.keys().collect();
    // A deterministic order makes failures reproducible.
    keys.sort();
    for key in keys {
        if key.is_empty() || key.contains('/') || key.starts_with('.') {
            return Err(CgroupError::InvalidUnifiedKey { key: key.clone() });
        }
        write(dir, key, &map[key])?;
    }
    Ok(())
}
