//! Containers on the wire: the create request's `Config` and `HostConfig`,
//! with Docker's field names.
//!
//! Fields berth acts on are typed; everything else a client sends is kept
//! in `rest` so that inspect shows it back.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// A list Docker also accepts as one string (`Cmd`, `Entrypoint`, `Shell`).
fn str_slice<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => None,
        Some(OneOrMany::One(s)) => Some(vec![s]),
        Some(OneOrMany::Many(v)) => Some(v),
    })
}

/// `null` as the default.
fn null_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A container's `Config`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    /// The hostname.
    #[serde(default, deserialize_with = "null_default")]
    pub hostname: String,
    /// The domain name.
    #[serde(default, deserialize_with = "null_default")]
    pub domainname: String,
    /// `user[:group]`.
    #[serde(default, deserialize_with = "null_default")]
    pub user: String,
    /// Attach stdin (`run -i`).
    #[serde(default)]
    pub attach_stdin: bool,
    /// Attach stdout.
    #[serde(default)]
    pub attach_stdout: bool,
    /// Attach stderr.
    #[serde(default)]
    pub attach_stderr: bool,
    /// Ports exposed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    /// Allocate a terminal.
    #[serde(default)]
    pub tty: bool,
    /// Keep stdin open.
    #[serde(default)]
    pub open_stdin: bool,
    /// Close stdin after the first attached client detaches.
    #[serde(default)]
    pub stdin_once: bool,
    /// `KEY=value`.
    #[serde(default, deserialize_with = "null_default")]
    pub env: Vec<String>,
    /// The command.
    #[serde(default, deserialize_with = "str_slice")]
    pub cmd: Option<Vec<String>>,
    /// The health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Value>,
    /// The image as the client named it.
    #[serde(default, deserialize_with = "null_default")]
    pub image: String,
    /// Anonymous volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Value>>,
    /// The working directory.
    #[serde(default, deserialize_with = "null_default")]
    pub working_dir: String,
    /// The entrypoint.
    #[serde(default, deserialize_with = "str_slice")]
    pub entrypoint: Option<Vec<String>>,
    /// Labels.
    #[serde(default, deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    /// The signal `stop` sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    /// Everything else the client sent.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// `HostConfig.RestartPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    /// `""`/`no`, `always`, `unless-stopped`, `on-failure`.
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// Retries for `on-failure`.
    #[serde(default)]
    pub maximum_retry_count: i64,
}

/// `HostConfig.LogConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogConfig {
    /// `json-file` (default), `local` (as json-file) or `none`.
    #[serde(rename = "Type", default, deserialize_with = "null_default")]
    pub kind: String,
    /// Driver options (`max-size`, `max-file`).
    #[serde(default, deserialize_with = "null_default")]
    pub config: BTreeMap<String, String>,
}

/// One `HostConfig.Mounts` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountSpec {
    /// `bind`, `volume` or `tmpfs`.
    #[serde(rename = "Type", default, deserialize_with = "null_default")]
    pub kind: String,
    /// The host path or volume name.
    #[serde(default, deserialize_with = "null_default")]
    pub source: String,
    /// The path in the container.
    #[serde(default, deserialize_with = "null_default")]
    pub target: String,
    /// Read-only.
    #[serde(default)]
    pub read_only: bool,
    /// Everything else (options of each type).
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// One `HostConfig.Ulimits` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ulimit {
    /// `nofile`, `nproc`, ...
    pub name: String,
    /// Soft limit.
    pub soft: i64,
    /// Hard limit.
    pub hard: i64,
}

/// A container's `HostConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    /// `src:dst[:opts]` bind mounts and volumes.
    #[serde(default, deserialize_with = "null_default")]
    pub binds: Vec<String>,
    /// The log driver.
    #[serde(default)]
    pub log_config: LogConfig,
    /// `none`, `host`, `container:ID`, `default`, `bridge`.
    #[serde(default, deserialize_with = "null_default")]
    pub network_mode: String,
    /// When to restart.
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    /// `--rm`.
    #[serde(default)]
    pub auto_remove: bool,
    /// Mounts.
    #[serde(default, deserialize_with = "null_default")]
    pub mounts: Vec<MountSpec>,
    /// `container[:ro|rw]`: mount the volumes of these containers too.
    #[serde(default, deserialize_with = "null_default")]
    pub volumes_from: Vec<String>,
    /// Capabilities to add.
    #[serde(default, deserialize_with = "null_default")]
    pub cap_add: Vec<String>,
    /// Capabilities to drop.
    #[serde(default, deserialize_with = "null_default")]
    pub cap_drop: Vec<String>,
    /// Extra `/etc/hosts` lines, `host:ip`.
    #[serde(default, deserialize_with = "null_default")]
    pub extra_hosts: Vec<String>,
    /// `--privileged`.
    #[serde(default)]
    pub privileged: bool,
    /// `--read-only`.
    #[serde(default)]
    pub readonly_rootfs: bool,
    /// `--security-opt`.
    #[serde(default, deserialize_with = "null_default")]
    pub security_opt: Vec<String>,
    /// `--tmpfs`: path to options.
    #[serde(default, deserialize_with = "null_default")]
    pub tmpfs: BTreeMap<String, String>,
    /// `/dev/shm`'s size in bytes (0: 64 MiB).
    #[serde(default)]
    pub shm_size: i64,
    /// `--init`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    /// Memory limit in bytes.
    #[serde(default)]
    pub memory: i64,
    /// Memory plus swap (-1: unlimited).
    #[serde(default)]
    pub memory_swap: i64,
    /// CPUs in billionths.
    #[serde(default)]
    pub nano_cpus: i64,
    /// Relative CPU weight.
    #[serde(default)]
    pub cpu_shares: i64,
    /// CFS period.
    #[serde(default)]
    pub cpu_period: i64,
    /// CFS quota.
    #[serde(default)]
    pub cpu_quota: i64,
    /// `--cpuset-cpus`.
    #[serde(default, deserialize_with = "null_default")]
    pub cpuset_cpus: String,
    /// `--pids-limit` (0 or -1: unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    /// `--ulimit`.
    #[serde(default, deserialize_with = "null_default")]
    pub ulimits: Vec<Ulimit>,
    /// Everything else the client sent.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// `POST /containers/create`'s body: the config with `HostConfig` inside.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateRequest {
    /// The container's config.
    #[serde(flatten)]
    pub config: ContainerConfig,
    /// The host side.
    #[serde(default, deserialize_with = "null_default")]
    pub host_config: HostConfig,
}

/// `POST /containers/create`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateResponse {
    /// The new container's id.
    pub id: String,
    /// Anything the client should know.
    pub warnings: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_requests_parse_as_the_docker_cli_sends_them() {
        let body = r#"{"Hostname":"","User":"","AttachStdout":true,"Tty":false,"Env":null,
            "Cmd":["echo","hi"],"Image":"busybox","Entrypoint":null,"Labels":{},
            "Volumes":{},"OnBuild":null,"HostConfig":{"Binds":null,"LogConfig":{"Type":"","Config":{}},
            "NetworkMode":"default","RestartPolicy":{"Name":"no","MaximumRetryCount":0},
            "AutoRemove":true,"CapAdd":null,"Dns":[],"ShmSize":0,"Memory":0}}"#;
        let r: CreateRequest = serde_json::from_str(body).unwrap();
        assert_eq!(
            r.config.cmd.as_deref(),
            Some(&["echo".to_owned(), "hi".to_owned()][..])
        );
        assert!(r.config.entrypoint.is_none());
        assert!(r.host_config.auto_remove);
        assert_eq!(r.host_config.network_mode, "default");
        assert!(r.config.rest.contains_key("OnBuild"));
        assert!(r.host_config.rest.contains_key("Dns"));
        let one: ContainerConfig = serde_json::from_str(r#"{"Cmd":"sh"}"#).unwrap();
        assert_eq!(one.cmd, Some(vec!["sh".to_owned()]));
    }
}
