//! Building `update`'s resources from its flags or a JSON file.

use std::io::Read;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use super::cli::UpdateArgs;

/// Parses a byte size like runc does (see [`berth_model::units`]), or
/// `-1` for unlimited.
pub fn parse_bytes(s: &str) -> Result<i64, String> {
    if s.trim() == "-1" {
        return Ok(-1);
    }
    berth_model::units::parse_bytes(s).map(|n| n as i64)
}

/// The resources `update` should apply.
pub fn resources(a: &UpdateArgs) -> Result<LinuxResources, String> {
    let mut r = match &a.resources {
        Some(p) => {
            let mut data = String::new();
            if p.as_os_str() == "-" {
                std::io::stdin()
                    .read_to_string(&mut data)
                    .map_err(|e| format!("read stdin: {e}"))?;
            } else {
                data = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            }
            serde_json::from_str(&data).map_err(|e| format!("resources JSON: {e}"))?
        }
        None => LinuxResources::default(),
    };
    let bytes = |o: &Option<String>| o.as_deref().map(parse_bytes).transpose();
    let (limit, reservation, swap) = (
        bytes(&a.memory)?,
        bytes(&a.memory_reservation)?,
        bytes(&a.memory_swap)?,
    );
    if limit.is_some() || reservation.is_some() || swap.is_some() {
        let mut m = (*r.memory()).unwrap_or_else(LinuxMemory::default);
        if limit.is_some() {
            m.set_limit(limit);
        }
        if reservation.is_some() {
            m.set_reservation(reservation);
        }
        if swap.is_some() {
            m.set_swap(swap);
        }
        r.set_memory(Some(m));
    }
    if a.cpu_shares.is_some()
        || a.cpu_period.is_some()
        || a.cpu_quota.is_some()
        || a.cpu_rt_period.is_some()
        || a.cpu_rt_runtime.is_some()
        || a.cpuset_cpus.is_some()
        || a.cpuset_mems.is_some()
    {
        let mut c = r.cpu().clone().unwrap_or_else(LinuxCpu::default);
        if a.cpu_shares.is_some() {
            c.set_shares(a.cpu_shares);
        }
        if a.cpu_period.is_some() {
            c.set_period(a.cpu_period);
        }
        if a.cpu_quota.is_some() {
            c.set_quota(a.cpu_quota);
        }
        if a.cpu_rt_period.is_some() {
            c.set_realtime_period(a.cpu_rt_period);
        }
        if a.cpu_rt_runtime.is_some() {
            c.set_realtime_runtime(a.cpu_rt_runtime);
        }
        if a.cpuset_cpus.is_some() {
            c.set_cpus(a.cpuset_cpus.clone());
        }
        if a.cpuset_mems.is_some() {
            c.set_mems(a.cpuset_mems.clone());
        }
        r.set_cpu(Some(c));
    }
    if let Some(p) = a.pids_limit {
        let mut pids = LinuxPids::default();
        pids.set_limit(p);
        r.set_pids(Some(pids));
    }
    if let Some(w) = a.blkio_weight {
        let mut b = r.block_io().clone().unwrap_or_else(LinuxBlockIo::default);
        b.set_weight(Some(w));
        r.set_block_io(Some(b));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes_parse_like_runc() {
        assert_eq!(parse_bytes("512"), Ok(512));
        assert_eq!(parse_bytes("64k"), Ok(65536));
        assert_eq!(parse_bytes("100M"), Ok(100 << 20));
        assert_eq!(parse_bytes("1g"), Ok(1 << 30));
        assert_eq!(parse_bytes("-1"), Ok(-1));
        assert!(parse_bytes("lots").is_err());
    }
}
