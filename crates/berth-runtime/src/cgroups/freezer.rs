//! Freezing and thawing. v1 has freezer.state, which passes through FREEZING
//! and can stall there when tasks fork meanwhile; v2 has cgroup.freeze, whose
//! effect is reported asynchronously in cgroup.events. Either way the write
//! only starts the change, so both wait for the reported state.

use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::error::CgroupError;
use super::fsutil::{self, write};

const TIMEOUT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(5);

/// Polls `done` until it holds or the timeout passes; `kick` runs before
/// every check (to re-issue a request the kernel may have left half done).
fn wait(
    mut kick: impl FnMut() -> Result<(), CgroupError>,
    mut done: impl FnMut() -> Result<bool, CgroupError>,
) -> Result<bool, CgroupError> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        kick()?;
        if done()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        sleep(POLL);
    }
}

fn v1_state(dir: &Path) -> Result<String, CgroupError> {
    Ok(fsutil::read(dir, "freezer.state")?.trim().to_owned())
}

/// Freezes a v1 freezer cgroup and waits for FROZEN. On timeout the cgroup
/// is thawed again so it is not left half-frozen.
pub(super) fn freeze_v1(dir: &Path) -> Result<(), CgroupError> {
    // Re-writing FROZEN retries the tasks that escaped (forked while
    // FREEZING), which the kernel does not do by itself.
    let frozen = wait(
        || write(dir, "freezer.state", "FROZEN"),
        || Ok(v1_state(dir)? == "FROZEN"),
    )?;
    if frozen {
        return Ok(());
    }
    let _ = write(dir, "freezer.state", "THAWED");
    Err(CgroupError::FreezeTimeout {
        path: dir.join("freezer.state"),
        state: "FROZEN",
    })
}

/// Thaws a v1 freezer cgroup and waits for THAWED.
pub(super) fn thaw_v1(dir: &Path) -> Result<(), CgroupError> {
    if wait(
        || write(dir, "freezer.state", "THAWED"),
        || Ok(v1_state(dir)? == "THAWED"),
    )? {
        return Ok(());
    }
    Err(CgroupError::FreezeTimeout {
        path: dir.join("freezer.state"),
        state: "THAWED",
    })
}

/// Whether a v1 freezer cgroup is FROZEN (FREEZING does not count).
pub(super) fn is_frozen_v1(dir: &Path) -> Result<bool, CgroupError> {
    Ok(v1_state(dir)? == "FROZEN")
}

/// Whether a v2 cgroup is frozen: `frozen 1` in cgroup.events, which only
/// turns on once every task stopped; kernels without it report through
/// cgroup.freeze alone.
pub(super) fn is_frozen_v2(dir: &Path) -> Result<bool, CgroupError> {
    let events = fsutil::read_flat_keyed(dir, "cgroup.events")?;
    match events.get("frozen") {
        Some(v) => Ok(*v == 1),
        None => Ok(fsutil::read(dir, "cgroup.freeze")?.trim() == "1"),
    }
}

/// Sets cgroup.freeze and waits until cgroup.events agrees.
pub(super) fn set_frozen_v2(dir: &Path, freeze: bool) -> Result<(), CgroupError> {
    let (value, state) = if freeze {
        ("1", "frozen")
    } else {
        ("0", "thawed")
    };
    write(dir, "cgroup.freeze", value)?;
    if wait(|| Ok(()), || Ok(is_frozen_v2(dir)? == freeze))? {
        return Ok(());
    }
    if freeze {
        let _ = write(dir, "cgroup.freeze", "0");
    }
    Err(CgroupError::FreezeTimeout {
        path: dir.join("cgroup.events"),
        state,
    })
}
