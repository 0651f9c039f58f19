//! Writers whose files have the same names and formats in cgroup v1 and v2.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use oci_spec::runtime::{LinuxHugepageLimit, LinuxRdma};

use super::error::CgroupError;
use super::fsutil::write;

/// Writes cpuset.cpus / cpuset.mems; empty strings mean "not set".
pub(super) fn set_cpuset(
    dir: &Path,
    cpus: Option<&str>,
    mems: Option<&str>,
) -> Result<(), CgroupError> {
    if let Some(c) = cpus.filter(|c| !c.is_empty()) {
        write(dir, "cpuset.cpus", c)?;
    }
    if let Some(m) = mems.filter(|m| !m.is_empty()) {
        write(dir, "cpuset.mems", m)?;
    }
    Ok(())
}

/// Writes pids.max; zero or negative means unlimited.
pub(super) fn set_pids(dir: &Path, limit: i64) -> Result<(), CgroupError> {
    let v = if limit > 0 {
        limit.to_string()
    } else {
        "max".to_owned()
    };
    write(dir, "pids.max", &v)
}

/// Writes hugetlb limits; v1 names the file `hugetlb.<size>.limit_in_bytes`
/// and v2 `hugetlb.<size>.max`, given here as `suffix`.
pub(super) fn set_hugetlb(
    dir: &Path,
    limits: &[LinuxHugepageLimit],
    suffix: &str,
) -> Result<(), CgroupError> {
    for l in limits {
        let size = l.page_size();
        // The size becomes part of a file name: refuse anything but "2MB"-like.
        if size.is_empty() || !size.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(CgroupError::InvalidValue {
                field: "hugepageLimits.pageSize",
                value: size.clone(),
                reason: "must be a page size such as 2MB or 1GB",
            });
        }
        let v = if l.limit() < 0 && suffix == "max" {
            "max".to_owned()
        } else {
            l.limit().to_string()
        };
        write(dir, &format!("hugetlb.{size}.{suffix}"), &v)?;
    }
    Ok(())
}

/// Writes rdma.max, one line per device (same syntax in v1 and v2).
pub(super) fn set_rdma(dir: &Path, rdma: &HashMap<String, LinuxRdma>) -> Result<(), CgroupError> {
    let mut devices: Vec<&String> = rdma.keys().collect();
    devices.sort();
    for dev in devices {
        let r = &rdma[dev];
        let mut line = dev.clone();
        if let Some(h) = r.hca_handles() {
            let _ = write!(line, " hca_handle={h}");
        }
        if let Some(o) = r.hca_objects() {
            let _ = write!(line, " hca_object={o}");
        }
        write(dir, "rdma.max", &line)?;
    }
    Ok(())
}
