//! `delete`: remove a container and everything it left on the host.

use std::path::Path;
use std::time::Duration;

use berth_model::ContainerStatus;

use crate::error::{Error, Result};
use crate::hooks::{self, HookPoint};
use crate::state::Container;

/// Deletes `id`. A running or paused container needs `force`, which kills
/// it first. Poststop hook failures and teardown errors are all collected;
/// the state directory goes last so a failed delete can be retried.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<Vec<Error>> {
    let c = match Container::load(root, id) {
        Ok(c) => c,
        // runc's delete --force of a missing container succeeds.
        Err(Error::NotFound { .. }) if force => return Ok(Vec::new()),
        // An unreadable state (the state is not fsynced: an empty file after
        // a host crash, whose processes the crash ended): --force removes
        // what is left of it.
        Err(Error::Config { .. }) if force => {
            let dir = Container::dir_of(root, &berth_model::ContainerId::new(id)?);
            return match std::fs::remove_dir_all(&dir) {
                Ok(()) => Ok(Vec::new()),
                Err(e) => Err(Error::io("remove", dir)(e)),
            };
        }
        Err(e) => return Err(e),
    };
    let status = c.status();
    if !force && !status.can_delete() {
        return Err(Error::BadState {
            id: id.into(),
            status,
            op: "delete it without --force",
        });
    }
    let mut errors = Vec::new();
    if status != ContainerStatus::Stopped {
        if status == ContainerStatus::Paused {
            let _ = c.saved.cgroup.thaw();
        }
        if c.init_alive() {
            let _ = crate::ops::signal::kill(root, id, libc::SIGKILL, false);
        }
        for pid in c.saved.cgroup.pids().unwrap_or_default() {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        }
        if !crate::ops::signal::wait_exit(c.saved.pid, Duration::from_secs(10)) {
            errors.push(Error::Init(format!(
                "container {id}'s init did not exit after SIGKILL"
            )));
        }
    }
    let spec = c.spec().ok();
    if let Err(e) = c.saved.cgroup.destroy() {
        errors.push(e.into());
    }
    let mut warnings = Vec::new();
    if let Some(spec) = &spec
        && hooks::has(spec, HookPoint::Poststop)
    {
        warnings = hooks::run_all(
            spec,
            HookPoint::Poststop,
            &c.hook_state(ContainerStatus::Stopped),
        );
    }
    if let Err(e) = std::fs::remove_dir_all(&c.dir) {
        errors.push(Error::io("remove state directory", &c.dir)(e));
    }
    match errors.len() {
        0 => Ok(warnings),
        1 => Err(errors.pop().expect("one")),
        _ => Err(Error::Multiple(errors)),
    }
}
