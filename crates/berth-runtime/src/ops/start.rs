//! `start`: let a created container's init run the user's program.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use berth_model::ContainerStatus;

use crate::error::{Error, Result};
use crate::hooks::{self, HookPoint};
use crate::state::Container;

/// Starts the container `id`; poststart hook failures are returned as
/// warnings, since the spec says the lifecycle continues past them.
pub fn start(root: &Path, id: &str) -> Result<Vec<Error>> {
    let c = Container::load(root, id)?;
    let status = c.status();
    if !status.can_start() {
        return Err(Error::BadState {
            id: id.into(),
            status,
            op: "start",
        });
    }
    let fifo = c.fifo_path();
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo)
    {
        Ok(f) => f,
        // ENXIO: no reader, the init is gone.
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
            return Err(Error::BadState {
                id: id.into(),
                status: ContainerStatus::Stopped,
                op: "start",
            });
        }
        Err(e) => return Err(Error::io("open", fifo)(e)),
    };
    f.write_all(b"0").map_err(Error::io("write", &fifo))?;
    std::fs::remove_file(&fifo).map_err(Error::io("remove", &fifo))?;
    let spec = c.spec()?;
    let mut warnings = Vec::new();
    if hooks::has(&spec, HookPoint::Poststart)
        && let Err(e) = hooks::run(
            &spec,
            HookPoint::Poststart,
            &c.hook_state(ContainerStatus::Running),
        )
    {
        warnings.push(e);
    }
    Ok(warnings)
}
