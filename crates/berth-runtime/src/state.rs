//! Containers on disk: `<root>/<id>/state.json` plus the `config.json` the
//! container was created from, and the `exec.fifo` that marks a container
//! created but not yet started.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use berth_model::{ContainerId, ContainerStatus};
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::cgroups::CgroupManager;
use crate::error::{Error, Result};

/// The OCI runtime spec version berth implements.
pub const OCI_VERSION: &str = "1.2.0";

/// What the runtime remembers about one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    /// The container id.
    pub id: ContainerId,
    /// Host pid of the container's init, 0 once known to be gone.
    pub pid: i32,
    /// The init's start time in clock ticks since boot (field 22 of
    /// /proc/pid/stat), so a recycled pid is never mistaken for the init.
    pub start_time: u64,
    /// Absolute bundle path.
    pub bundle: PathBuf,
    /// Absolute rootfs path.
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339 with nanoseconds.
    pub created: String,
    /// The spec's annotations.
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The cgroups the container lives in.
    pub cgroup: CgroupManager,
}

/// runc's `state` JSON, which containerd and Podman parse.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateJson {
    /// Spec version.
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    /// Container id.
    pub id: String,
    /// Init pid (0 when stopped).
    pub pid: i32,
    /// created, running, paused or stopped.
    pub status: ContainerStatus,
    /// Bundle path.
    pub bundle: PathBuf,
    /// Root filesystem path.
    pub rootfs: PathBuf,
    /// Creation time.
    pub created: String,
    /// Owner (always empty: berth does not run rootless yet).
    pub owner: String,
    /// Annotations from the spec.
    #[serde(skip_serializing_if = "HashMap::is_empty", default)]
    pub annotations: HashMap<String, String>,
}

/// A container found under the state root.
#[derive(Debug)]
pub struct Container {
    /// Its state directory.
    pub dir: PathBuf,
    /// What was saved at creation.
    pub saved: Saved,
}

impl Container {
    /// The state directory of `id` under `root`.
    pub fn dir_of(root: &Path, id: &ContainerId) -> PathBuf {
        root.join(id.as_str())
    }

    /// Loads the container `id`.
    pub fn load(root: &Path, id: &str) -> Result<Container> {
        let cid = ContainerId::new(id)?;
        let dir = Self::dir_of(root, &cid);
        let path = dir.join("state.json");
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound { id: id.to_owned() });
            }
            Err(e) => return Err(Error::io("read", path)(e)),
        };
        let saved: Saved = serde_json::from_slice(&data).map_err(|e| Error::Config {
            path: path.clone(),
            message: format!("corrupt state: {e}"),
        })?;
        Ok(Container { dir, saved })
    }

    /// Writes the state atomically. Not fsynced, as runc's is not: it
    /// describes processes, which a host crash ends, and lives under /run.
    pub fn save(&self) -> Result<()> {
        let path = self.dir.join("state.json");
        let data = serde_json::to_vec(&self.saved).expect("state serialises");
        berth_sys::fs::replace_file(&path, &data, 0o600).map_err(Error::io("write", path))
    }

    /// The spec this container was created from.
    pub fn spec(&self) -> Result<Spec> {
        let path = self.dir.join("config.json");
        let data = std::fs::read(&path).map_err(Error::io("read", &path))?;
        serde_json::from_slice(&data).map_err(|e| Error::Config {
            path,
            message: e.to_string(),
        })
    }

    /// The path of the fifo whose presence means "created, not started".
    pub fn fifo_path(&self) -> PathBuf {
        self.dir.join("exec.fifo")
    }

    /// The fifo through which `start` learns that the user's program was
    /// executed (end of file) or failed to be (an error message).
    pub fn started_fifo_path(&self) -> PathBuf {
        self.dir.join("started.fifo")
    }

    /// Whether the init process is still the one this container started.
    pub fn init_alive(&self) -> bool {
        self.saved.pid > 0 && proc_start_time(self.saved.pid) == Some(self.saved.start_time)
    }

    /// The container's current status, read from the kernel.
    pub fn status(&self) -> ContainerStatus {
        if !self.init_alive() {
            return ContainerStatus::Stopped;
        }
        if self.fifo_path().exists() {
            return ContainerStatus::Created;
        }
        if self.saved.cgroup.is_frozen().unwrap_or(false) {
            return ContainerStatus::Paused;
        }
        ContainerStatus::Running
    }

    /// runc's state JSON for this container.
    pub fn state_json(&self) -> StateJson {
        let status = self.status();
        StateJson {
            oci_version: OCI_VERSION.to_owned(),
            id: self.saved.id.to_string(),
            pid: if status == ContainerStatus::Stopped {
                0
            } else {
                self.saved.pid
            },
            status,
            bundle: self.saved.bundle.clone(),
            rootfs: self.saved.rootfs.clone(),
            created: self.saved.created.clone(),
            owner: String::new(),
            annotations: self.saved.annotations.clone(),
        }
    }

    /// The state as the OCI spec hands it to hooks on stdin.
    pub fn hook_state(&self, status: ContainerStatus) -> String {
        let mut s = self.state_json();
        s.status = status;
        if status != ContainerStatus::Stopped {
            s.pid = self.saved.pid;
        }
        serde_json::to_string(&s).expect("state serialises")
    }
}

/// Every container under `root`, sorted by id; unreadable entries are skipped.
pub fn list(root: &Path) -> Result<Vec<Container>> {
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read directory", root)(e)),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if let Ok(c) = Container::load(root, &name.to_string_lossy()) {
            out.push(c);
        }
    }
    out.sort_by(|a, b| a.saved.id.cmp(&b.saved.id));
    Ok(out)
}

/// Field 22 of /proc/<pid>/stat: when the process started, in clock ticks
/// since boot. None if the process is gone or a zombie.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: split after the
    // last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // rest starts at field 3 (state).
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(22 - 3)?.parse().ok()
}

/// The current time as RFC 3339 UTC with nanoseconds, as runc writes it.
pub fn now_rfc3339() -> String {
    berth_model::time::now_rfc3339_nanos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time_is_readable() {
        let me = std::process::id() as i32;
        assert!(proc_start_time(me).is_some());
        assert_eq!(proc_start_time(me), proc_start_time(me));
    }
}
