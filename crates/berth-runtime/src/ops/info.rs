//! `ps`, `update`, and `events`: looking at and adjusting a live container.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::error::{Error, Result};
use crate::state::Container;

/// Host pids of every process in the container.
pub fn pids(root: &Path, id: &str) -> Result<Vec<i32>> {
    let c = Container::load(root, id)?;
    let mut p = c.saved.cgroup.pids()?;
    p.sort_unstable();
    Ok(p)
}

/// Applies new resource limits, merging them over the container's current
/// ones, and records them so a later `update` starts from them.
pub fn update(root: &Path, id: &str, new: &LinuxResources) -> Result<()> {
    let c = Container::load(root, id)?;
    let status = c.status();
    if status == berth_model::ContainerStatus::Stopped {
        return Err(Error::BadState {
            id: id.into(),
            status,
            op: "update",
        });
    }
    let mut spec = c.spec()?;
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut res = linux.resources().clone().unwrap_or_default();
    merge(&mut res, new);
    // Device rules are not updatable through `update` (runc ignores them too).
    let mut apply = res.clone();
    apply.set_devices(None);
    c.saved.cgroup.apply(&apply)?;
    linux.set_resources(Some(res));
    spec.set_linux(Some(linux));
    let path = c.dir.join("config.json");
    berth_sys::fs::atomic_write(&path, &serde_json::to_vec(&spec).expect("spec serialises"))
        .map_err(Error::io("write", path))
}

fn merge(cur: &mut LinuxResources, new: &LinuxResources) {
    macro_rules! take {
        ($get:ident, $set:ident) => {
            if new.$get().is_some() {
                cur.$set(new.$get().clone());
            }
        };
    }
    if let Some(m) = new.memory() {
        let mut mm = (*cur.memory()).unwrap_or_default();
        if m.limit().is_some() {
            mm.set_limit(m.limit());
        }
        if m.reservation().is_some() {
            mm.set_reservation(m.reservation());
        }
        if m.swap().is_some() {
            mm.set_swap(m.swap());
        }
        if m.swappiness().is_some() {
            mm.set_swappiness(m.swappiness());
        }
        if m.disable_oom_killer().is_some() {
            mm.set_disable_oom_killer(m.disable_oom_killer());
        }
        cur.set_memory(Some(mm));
    }
    if let Some(c) = new.cpu() {
        let mut cc = cur.cpu().clone().unwrap_or_default();
        if c.shares().is_some() {
            cc.set_shares(c.shares());
        }
        if c.quota().is_some() {
            cc.set_quota(c.quota());
        }
        if c.period().is_some() {
            cc.set_period(c.period());
        }
        if c.realtime_runtime().is_some() {
            cc.set_realtime_runtime(c.realtime_runtime());
        }
        if c.realtime_period().is_some() {
            cc.set_realtime_period(c.realtime_period());
        }
        if c.cpus().is_some() {
            cc.set_cpus(c.cpus().clone());
        }
        if c.mems().is_some() {
            cc.set_mems(c.mems().clone());
        }
        cur.set_cpu(Some(cc));
    }
    take!(pids, set_pids);
    take!(block_io, set_block_io);
    take!(hugepage_limits, set_hugepage_limits);
    take!(unified, set_unified);
}

/// The container's resource usage, as `events --stats` prints it.
pub fn stats(root: &Path, id: &str) -> Result<crate::cgroups::Stats> {
    let c = Container::load(root, id)?;
    Ok(c.saved.cgroup.stats()?)
}

/// How many times the kernel's OOM killer fired in the container.
pub fn oom_kills(root: &Path, id: &str) -> Result<u64> {
    let c = Container::load(root, id)?;
    Ok(c.saved.cgroup.oom_kill_count()?)
}
