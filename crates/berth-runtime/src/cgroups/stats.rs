//! Resource usage statistics in the shape of the `data` object of runc's
//! `runc events --stats`, so tools written for runc can read berth's output.
//! A controller that is not there yields zeros, never an error.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::CgroupError;
use super::fsutil::{self, read_flat_keyed, read_u64_or_zero};

/// All statistics of one container's cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// CPU time used and throttling.
    pub cpu: CpuStats,
    /// Memory use and limits.
    pub memory: MemoryStats,
    /// Process count and limit.
    pub pids: PidsStats,
    /// Block IO counters.
    pub blkio: BlkioStats,
    /// Huge page use, by page size ("2MB").
    pub hugetlb: BTreeMap<String, HugetlbStats>,
}

/// CPU statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuStats {
    /// Time used.
    pub usage: CpuUsage,
    /// CFS bandwidth throttling.
    pub throttling: Throttling,
}

/// CPU time, in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuUsage {
    /// Total time.
    pub total: u64,
    /// Total time per CPU (v1 only).
    pub percpu: Vec<u64>,
    /// Kernel-mode time per CPU (v1 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    /// User-mode time per CPU (v1 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    /// Kernel-mode time.
    pub kernel: u64,
    /// User-mode time.
    pub user: u64,
}

/// CFS bandwidth throttling counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Throttling {
    /// Enforcement periods elapsed.
    pub periods: u64,
    /// Periods in which the group was throttled.
    pub throttled_periods: u64,
    /// Total time throttled, in nanoseconds.
    pub throttled_time: u64,
}

/// Memory statistics, in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryStats {
    /// Page cache.
    pub cache: u64,
    /// Memory.
    pub usage: MemoryEntry,
    /// Memory plus swap (as v1's memsw counts it; v2 values are summed to
    /// match).
    pub swap: MemoryEntry,
    /// Kernel memory (v1 only).
    pub kernel: MemoryEntry,
    /// Kernel TCP buffer memory (v1 only).
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// Every counter of memory.stat.
    pub raw: BTreeMap<String, u64>,
}

/// One memory counter with its limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryEntry {
    /// The limit; `u64::MAX` (or v1's page-rounded maximum) when unlimited.
    pub limit: u64,
    /// Current use.
    pub usage: u64,
    /// Highest use seen.
    pub max: u64,
    /// How many times the limit was hit.
    pub failcnt: u64,
}

/// Process counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PidsStats {
    /// Processes and threads now.
    pub current: u64,
    /// The limit; 0 when unlimited.
    pub limit: u64,
}

/// Block IO counters, recursive over sub-cgroups.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct BlkioStats {
    /// Bytes transferred, per device and operation.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    /// Operations issued, per device and operation.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

/// One block IO counter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlkioEntry {
    /// Device major number.
    pub major: u64,
    /// Device minor number.
    pub minor: u64,
    /// Operation: Read, Write, Sync, Async, Discard or Total.
    pub op: String,
    /// The count.
    pub value: u64,
}

/// Huge page use for one page size.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HugetlbStats {
    /// Bytes in use.
    pub usage: u64,
    /// Highest use seen (v1 only).
    pub max: u64,
    /// How many times the limit was hit.
    pub failcnt: u64,
}

/// Space-separated numbers (cpuacct.usage_percpu).
fn read_list(dir: &Path, file: &str) -> Result<Vec<u64>, CgroupError> {
    let Some(text) = fsutil::read_opt(dir, file)? else {
        return Ok(Vec::new());
    };
    text.split_whitespace()
        .map(|w| fsutil::parse_u64(&dir.join(file), w))
        .collect()
}

/// v1 CPU statistics: usage from cpuacct, throttling from cpu (which may
/// be separate hierarchies).
pub(super) fn cpu_v1(cpuacct: Option<&Path>, cpu: Option<&Path>) -> Result<CpuStats, CgroupError> {
    let mut s = CpuStats::default();
    if let Some(dir) = cpuacct {
        s.usage.total = read_u64_or_zero(dir, "cpuacct.usage")?;
        s.usage.percpu = read_list(dir, "cpuacct.usage_percpu")?;
        s.usage.percpu_kernel = read_list(dir, "cpuacct.usage_percpu_sys")?;
        s.usage.percpu_user = read_list(dir, "cpuacct.usage_percpu_user")?;
        // cpuacct.stat counts in clock ticks (USER_HZ).
        // SAFETY: sysconf has no preconditions.
        let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
            .unwrap_or(100)
            .max(1);
        let ticks = read_flat_keyed(dir, "cpuacct.stat")?;
        let ns = |k: &str| {
            ticks
                .get(k)
                .copied()
                .unwrap_or(0)
                .saturating_mul(1_000_000_000)
                / hz
        };
        s.usage.user = ns("user");
        s.usage.kernel = ns("system");
    }
    if let Some(dir) = cpu {
        let st = read_flat_keyed(dir, "cpu.stat")?;
        let get = |k: &str| st.get(k).copied().unwrap_or(0);
        s.throttling = Throttling {
            periods: get("nr_periods"),
            throttled_periods: get("nr_throttled"),
            throttled_time: get("throttled_time"),
        };
    }
    Ok(s)
}

/// v2 CPU statistics from cpu.stat (microseconds, converted).
pub(super) fn cpu_v2(dir: &Path) -> Result<CpuStats, CgroupError> {
    let st = read_flat_keyed(dir, "cpu.stat")?;
    let us = |k: &str| st.get(k).copied().unwrap_or(0).saturating_mul(1000);
    Ok(CpuStats {
        usage: CpuUsage {
            total: us("usage_usec"),
            kernel: us("system_usec"),
            user: us("user_usec"),
            ..CpuUsage::default()
        },
        throttling: Throttling {
            periods: st.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: st.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: us("throttled_usec"),
        },
    })
}

fn memory_entry_v1(dir: &Path, prefix: &str) -> Result<MemoryEntry, CgroupError> {
    Ok(MemoryEntry {
        limit: read_u64_or_zero(dir, &format!("{prefix}.limit_in_bytes"))?,
        usage: read_u64_or_zero(dir, &format!("{prefix}.usage_in_bytes"))?,
        max: read_u64_or_zero(dir, &format!("{prefix}.max_usage_in_bytes"))?,
        failcnt: read_u64_or_zero(dir, &format!("{prefix}.failcnt"))?,
    })
}

/// v1 memory statistics.
pub(super) fn memory_v1(dir: &Path) -> Result<MemoryStats, CgroupError> {
    let raw = read_flat_keyed(dir, "memory.stat")?;
    Ok(MemoryStats {
        cache: raw.get("cache").copied().unwrap_or(0),
        usage: memory_entry_v1(dir, "memory")?,
        swap: memory_entry_v1(dir, "memory.memsw")?,
        kernel: memory_entry_v1(dir, "memory.kmem")?,
        kernel_tcp: memory_entry_v1(dir, "memory.kmem.tcp")?,
        raw,
    })
}

/// v2 memory statistics. Swap is reported as memory+swap like v1's memsw.
pub(super) fn memory_v2(dir: &Path) -> Result<MemoryStats, CgroupError> {
    let raw = read_flat_keyed(dir, "memory.stat")?;
    let events = read_flat_keyed(dir, "memory.events")?;
    let usage = MemoryEntry {
        limit: read_u64_or_zero(dir, "memory.max")?,
        usage: read_u64_or_zero(dir, "memory.current")?,
        max: read_u64_or_zero(dir, "memory.peak")?,
        failcnt: events.get("max").copied().unwrap_or(0),
    };
    let swap_events = read_flat_keyed(dir, "memory.swap.events")?;
    let swap = MemoryEntry {
        limit: read_u64_or_zero(dir, "memory.swap.max")?.saturating_add(usage.limit),
        usage: read_u64_or_zero(dir, "memory.swap.current")?.saturating_add(usage.usage),
        max: read_u64_or_zero(dir, "memory.swap.peak")?,
        failcnt: swap_events.get("max").copied().unwrap_or(0),
    };
    Ok(MemoryStats {
        cache: raw.get("file").copied().unwrap_or(0),
        usage,
        swap,
        raw,
        ..MemoryStats::default()
    })
}

/// pids statistics (same files in v1 and v2).
pub(super) fn pids(dir: &Path) -> Result<PidsStats, CgroupError> {
    let limit = read_u64_or_zero(dir, "pids.max")?;
    Ok(PidsStats {
        current: read_u64_or_zero(dir, "pids.current")?,
        limit: if limit == u64::MAX { 0 } else { limit },
    })
}

/// Parses v1 blkio lines "MAJ:MIN Op value" (the trailing "Total N" line,
/// with no device, is skipped).
fn blkio_entries(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (dev, op, value) = (it.next()?, it.next()?, it.next()?);
            let (major, minor) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: op.to_owned(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

/// v1 block IO statistics: BFQ's counters when the BFQ files exist (they
/// cover all IO), else the throttling layer's.
pub(super) fn blkio_v1(dir: &Path) -> Result<BlkioStats, CgroupError> {
    let prefix = if fsutil::exists(dir, "blkio.bfq.io_service_bytes_recursive") {
        "blkio.bfq"
    } else {
        "blkio.throttle"
    };
    let read = |name: &str| -> Result<Vec<BlkioEntry>, CgroupError> {
        Ok(fsutil::read_opt(dir, &format!("{prefix}.{name}"))?
            .map(|t| blkio_entries(&t))
            .unwrap_or_default())
    };
    Ok(BlkioStats {
        io_service_bytes_recursive: read("io_service_bytes_recursive")?,
        io_serviced_recursive: read("io_serviced_recursive")?,
    })
}

/// v2 block IO statistics from io.stat ("MAJ:MIN rbytes=.. wbytes=..").
pub(super) fn io_v2(dir: &Path) -> Result<BlkioStats, CgroupError> {
    let mut s = BlkioStats::default();
    let Some(text) = fsutil::read_opt(dir, "io.stat")? else {
        return Ok(s);
    };
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let Some((major, minor)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut s.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut s.io_service_bytes_recursive, "Write"),
                "rios" => (&mut s.io_serviced_recursive, "Read"),
                "wios" => (&mut s.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_owned(),
                value,
            });
        }
    }
    Ok(s)
}

/// Page sizes that have a `hugetlb.<size>.<suffix>` file in `dir`.
fn hugetlb_sizes(dir: &Path, suffix: &str) -> Result<Vec<String>, CgroupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CgroupError::Read {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut sizes: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| {
            let size = n
                .strip_prefix("hugetlb.")?
                .strip_suffix(suffix)?
                .strip_suffix('.')?;
            (!size.contains('.')).then(|| size.to_owned())
        })
        .collect();
    sizes.sort();
    Ok(sizes)
}

/// v1 hugetlb statistics.
pub(super) fn hugetlb_v1(dir: &Path) -> Result<BTreeMap<String, HugetlbStats>, CgroupError> {
    let mut out = BTreeMap::new();
    for size in hugetlb_sizes(dir, "usage_in_bytes")? {
        let f = |k: &str| read_u64_or_zero(dir, &format!("hugetlb.{size}.{k}"));
        let st = HugetlbStats {
            usage: f("usage_in_bytes")?,
            max: f("max_usage_in_bytes")?,
            failcnt: f("failcnt")?,
        };
        out.insert(size, st);
    }
    Ok(out)
}

/// v2 hugetlb statistics.
pub(super) fn hugetlb_v2(dir: &Path) -> Result<BTreeMap<String, HugetlbStats>, CgroupError> {
    let mut out = BTreeMap::new();
    for size in hugetlb_sizes(dir, "current")? {
        let events = read_flat_keyed(dir, &format!("hugetlb.{size}.events"))?;
        let st = HugetlbStats {
            usage: read_u64_or_zero(dir, &format!("hugetlb.{size}.current"))?,
            max: 0,
            failcnt: events.get("max").copied().unwrap_or(0),
        };
        out.insert(size, st);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_stats_json_shape() {
        let v = serde_json::to_value(Stats::default()).unwrap();
        assert_eq!(v["cpu"]["usage"]["total"], 0);
        assert!(v["cpu"]["usage"]["percpu"].as_array().unwrap().is_empty());
        assert_eq!(v["cpu"]["throttling"]["throttledPeriods"], 0);
        assert_eq!(v["cpu"]["throttling"]["throttledTime"], 0);
        for k in ["usage", "swap", "kernel", "kernelTCP"] {
            for f in ["limit", "usage", "max", "failcnt"] {
                assert_eq!(v["memory"][k][f], 0, "{k}.{f}");
            }
        }
        assert!(v["memory"]["raw"].as_object().unwrap().is_empty());
        assert_eq!(v["pids"]["current"], 0);
        assert_eq!(v["blkio"], serde_json::json!({}));
        assert_eq!(v["hugetlb"], serde_json::json!({}));
        let back: Stats = serde_json::from_value(v).unwrap();
        assert_eq!(back, Stats::default());
    }

    #[test]
    fn blkio_v1_and_v2_parsing() {
        let e = blkio_entries("8:0 Read 4096\n8:0 Write 0\nTotal 4096\n");
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].major, e[0].minor, e[0].op.as_str(), e[0].value),
            (8, 0, "Read", 4096)
        );
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("io.stat"),
            "259:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
        )
        .unwrap();
        let s = io_v2(d.path()).unwrap();
        assert_eq!(s.io_service_bytes_recursive.len(), 2);
        assert_eq!(s.io_serviced_recursive[1].value, 2);
        let j = serde_json::to_value(&s).unwrap();
        assert_eq!(j["ioServiceBytesRecursive"][1]["op"], "Write");
    }

    #[test]
    fn hugetlb_size_discovery() {
        let d = tempfile::tempdir().unwrap();
        for f in [
            "hugetlb.2MB.current",
            "hugetlb.2MB.rsvd.current",
            "hugetlb.1GB.current",
            "hugetlb.2MB.max",
        ] {
            std::fs::write(d.path().join(f), "0\n").unwrap();
        }
        std::fs::write(d.path().join("hugetlb.2MB.events"), "max 3\n").unwrap();
        let h = hugetlb_v2(d.path()).unwrap();
        assert_eq!(h.keys().collect::<Vec<_>>(), ["1GB", "2MB"]);
        assert_eq!(h["2MB"].failcnt, 3);
    }
}
