//! A container as the daemon keeps it: `containers/<id>/container.json`,
//! in the shape of Docker's inspect output so that inspect is mostly this
//! record plus what is derived at the time.

use berth_api::container::{ContainerConfig, HostConfig};
use serde::{Deserialize, Serialize};

/// Go's zero time, which Docker shows for "never".
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// `State` of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct State {
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited`, `dead`.
    pub status: String,
    /// Running (or paused).
    pub running: bool,
    /// Frozen.
    pub paused: bool,
    /// Waiting to be restarted by its policy.
    pub restarting: bool,
    /// The OOM killer ended it.
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    /// Broken beyond use.
    pub dead: bool,
    /// The init's host pid while running, else 0.
    pub pid: i32,
    /// The last exit code.
    pub exit_code: i32,
    /// Why the last start failed.
    pub error: String,
    /// When it last started.
    pub started_at: String,
    /// When it last stopped.
    pub finished_at: String,
    /// The health check's state, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<super::health::Health>,
}

impl Default for State {
    fn default() -> State {
        State {
            status: "created".into(),
            running: false,
            paused: false,
            restarting: false,
            oom_killed: false,
            dead: false,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
            health: None,
        }
    }
}

/// What the daemon remembers of a container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Record {
    /// The 64-hex id.
    pub id: String,
    /// When it was created, RFC 3339 nanos.
    pub created: String,
    /// The program.
    pub path: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// The run state.
    pub state: State,
    /// The image's id (`sha256:...`).
    pub image: String,
    /// `/name`.
    pub name: String,
    /// How often the restart policy restarted it.
    pub restart_count: u32,
    /// The merged config (image defaults and the request).
    pub config: ContainerConfig,
    /// The host side.
    pub host_config: HostConfig,
    /// The top layer's chain ID under the writable snapshot.
    #[serde(default)]
    pub berth_chain: Option<String>,
    /// The user stopped it (for `unless-stopped`, and so `always` does not
    /// restart it until the daemon restarts).
    #[serde(default)]
    pub berth_stopped_by_user: bool,
    /// Its volumes (named and anonymous), resolved at create.
    #[serde(default)]
    pub berth_volumes: Vec<MountPoint>,
    /// Bind mounts taken from `--volumes-from` containers, as `-v` specs
    /// (`SRC:DST:ro|rw`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub berth_binds_from: Vec<String>,
}

/// A volume of a container, as inspect's `Mounts` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountPoint {
    /// `volume`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// The volume's name.
    pub name: String,
    /// Its data directory.
    pub source: String,
    /// The path in the container.
    pub destination: String,
    /// `local`.
    pub driver: String,
    /// The options given (`ro`, `nocopy`).
    pub mode: String,
    /// Writable.
    #[serde(rename = "RW")]
    pub rw: bool,
    /// Propagation (none for volumes).
    pub propagation: String,
    /// Do not fill an empty volume from the image.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_copy: bool,
}

impl Record {
    /// The name without its slash.
    pub fn short_name(&self) -> &str {
        self.name.trim_start_matches('/')
    }
}
