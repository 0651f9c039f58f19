//! The image config: how to run an image, and the diff ids of its layers.
//!
//! Docker's `application/vnd.docker.container.image.v1+json` and OCI's
//! config share these fields; Docker's extra ones (`container_config`,
//! `docker_version`, ...) survive a round trip in `extra`.

use std::collections::BTreeMap;

use berth_model::Digest;
use serde::{Deserialize, Serialize};

use super::ManifestError;
use super::descriptor::Extra;

/// An image config.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ImageConfig {
    /// When the image was created, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Who created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The CPU architecture, e.g. `amd64`.
    #[serde(default)]
    pub architecture: String,
    /// The operating system, e.g. `linux`.
    #[serde(default)]
    pub os: String,
    /// The CPU variant, e.g. `v7`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The OS version (Windows).
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// How to run a container from the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    /// The layers' uncompressed digests.
    #[serde(default)]
    pub rootfs: RootFs,
    /// How each layer was made, base first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<History>>,
    /// Fields berth does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ImageConfig {
    /// Parses a config blob.
    pub fn from_slice(bytes: &[u8]) -> Result<ImageConfig, ManifestError> {
        serde_json::from_slice(bytes).map_err(|source| ManifestError::Invalid {
            media_type: super::media_types::OCI_CONFIG.to_owned(),
            source,
        })
    }
}

/// An empty JSON object, the value of set-like maps (`ExposedPorts`,
/// `Volumes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Empty {}

/// The runtime defaults of an image, with Docker's field names.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    /// The user to run as, `user[:group]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Ports exposed, as `port/proto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Empty>>,
    /// Environment, `KEY=value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    /// The entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// The default arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// Paths that get an anonymous volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Empty>>,
    /// The working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// The signal that stops the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// The health check (a Docker extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    /// Fields berth does not know (`ArgsEscaped`, `OnBuild`, `Shell`, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// A health check, durations in nanoseconds as Docker writes them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `["NONE"]`, `["CMD", args...]` or `["CMD-SHELL", command]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    /// Time between checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    /// Time before a check is failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    /// Grace period after start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
    /// Time between checks during the start period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<i64>,
    /// Failures in a row before unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
}

/// The layers of the image's root filesystem, by uncompressed digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The uncompressed digests, base first.
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> RootFs {
        RootFs {
            kind: "layers".to_owned(),
            diff_ids: Vec::new(),
        }
    }
}

/// One step of the image's history.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct History {
    /// When the step ran, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The command that ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Who ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// A comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Whether the step made no layer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}
