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
    // Open the started fifo before the init can possibly be done with it:
    // the read end must exist while the init still holds the write end.
    let started_path = c.started_fifo_path();
    let started = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&started_path)
        .map_err(Error::io("open", &started_path))?;
    f.write_all(b"0").map_err(Error::io("write", &fifo))?;
    drop(f);
    std::fs::remove_file(&fifo).map_err(Error::io("remove", &fifo))?;
    let outcome = wait_started(started, &started_path);
    let _ = std::fs::remove_file(&started_path);
    if let Some(why) = outcome? {
        return Err(Error::Init(format!(
            "container {id} failed to start: {why}"
        )));
    }
    let spec = c.spec()?;
    let mut warnings = Vec::new();
    if hooks::has(&spec, HookPoint::Poststart) {
        warnings = hooks::run_all(
            &spec,
            HookPoint::Poststart,
            &c.hook_state(ContainerStatus::Running),
        );
    }
    Ok(warnings)
}

/// Blocks until the init has executed the user's program (end of file: the
/// exec closed its write end) and returns the error it reported instead, if
/// any. Poststart hooks must not run before the program does.
fn wait_started(f: std::fs::File, path: &Path) -> Result<Option<String>> {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    // SAFETY: clearing O_NONBLOCK on our own descriptor.
    unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETFL, 0) };
    let mut msg = Vec::new();
    (&f).take(64 * 1024)
        .read_to_end(&mut msg)
        .map_err(Error::io("read", path))?;
    Ok((!msg.is_empty()).then(|| String::from_utf8_lossy(&msg).into_owned()))
}
