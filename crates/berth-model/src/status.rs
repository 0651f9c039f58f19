//! The container lifecycle.

use std::fmt;

/// Where a container is in its lifecycle, as the OCI runtime spec names the
/// states (plus `paused`, which runc reports for a frozen cgroup).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerStatus {
    /// The runtime is still setting the container up.
    Creating,
    /// Set up and waiting for `start`; the user process has not run yet.
    Created,
    /// The user process is running.
    Running,
    /// The container's processes are frozen.
    Paused,
    /// The container's init has exited.
    Stopped,
}

impl ContainerStatus {
    /// Whether `start` may run the user process.
    pub fn can_start(self) -> bool {
        self == ContainerStatus::Created
    }

    /// Whether a signal can be delivered to the container's init.
    pub fn can_kill(self) -> bool {
        matches!(
            self,
            ContainerStatus::Created | ContainerStatus::Running | ContainerStatus::Paused
        )
    }

    /// Whether `delete` (without force) may remove the container.
    pub fn can_delete(self) -> bool {
        matches!(self, ContainerStatus::Stopped | ContainerStatus::Created)
    }

    /// Whether a new process can be executed inside the container.
    pub fn can_exec(self) -> bool {
        matches!(self, ContainerStatus::Created | ContainerStatus::Running)
    }

    /// Whether the container can be frozen.
    pub fn can_pause(self) -> bool {
        matches!(self, ContainerStatus::Running | ContainerStatus::Created)
    }

    /// Whether the container can be thawed.
    pub fn can_resume(self) -> bool {
        self == ContainerStatus::Paused
    }

    /// The lowercase name used in state JSON and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerStatus::Creating => "creating",
            ContainerStatus::Created => "created",
            ContainerStatus::Running => "running",
            ContainerStatus::Paused => "paused",
            ContainerStatus::Stopped => "stopped",
        }
    }
}

impl fmt::Display for ContainerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ContainerStatus::*;

    #[test]
    fn predicates_follow_the_oci_lifecycle() {
        assert!(Created.can_start() && !Running.can_start() && !Stopped.can_start());
        assert!(Running.can_kill() && Created.can_kill() && !Stopped.can_kill());
        assert!(Stopped.can_delete() && !Running.can_delete() && !Paused.can_delete());
        assert!(Paused.can_resume() && !Running.can_resume());
        assert_eq!(serde_json::to_string(&Running).unwrap(), "\"running\"");
    }
}
