//! The cgroup module's error type.

use std::io;
use std::path::PathBuf;

/// Everything the cgroup manager can fail with. Each variant names the file,
/// controller or value it is about, so a single printed line says what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CgroupError {
    /// A file under /proc describing the process's mounts or cgroups could
    /// not be read.
    #[error("read {path}: {source}")]
    ReadProc {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A line of /proc/self/mountinfo or /proc/self/cgroup is malformed.
    #[error("{path}: malformed line {line:?}")]
    Malformed {
        /// The file the line came from.
        path: PathBuf,
        /// The offending line.
        line: String,
    },
    /// Neither a cgroup (v1) nor a cgroup2 filesystem is mounted.
    #[error("no cgroup or cgroup2 filesystem is mounted (according to {path})")]
    NoCgroupMount {
        /// The mount table that was searched.
        path: PathBuf,
    },
    /// `linux.cgroupsPath` (or the id it defaults from) is not acceptable.
    #[error("invalid cgroups path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A relative cgroups path needs the caller's own cgroup in a hierarchy,
    /// but /proc/self/cgroup does not list that hierarchy.
    #[error(
        "cannot resolve relative cgroups path {path:?}: /proc/self/cgroup has no entry for {hierarchy}"
    )]
    OwnCgroupUnknown {
        /// The relative path.
        path: String,
        /// The hierarchy (controller list, or "unified").
        hierarchy: String,
    },
    /// A cgroup directory could not be created.
    #[error("create cgroup {path}: {source}")]
    Create {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A cgroup file or directory could not be read.
    #[error("read {path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The kernel refused a value written to a cgroup file.
    #[error("write {value:?} to {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// The underlying error (EINVAL, EBUSY, ENOENT...).
        #[source]
        source: io::Error,
    },
    /// A cgroup directory could not be removed.
    #[error("remove cgroup {path}: {source}")]
    Remove {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A cgroup file holds something that is not in the expected format.
    #[error("{path}: cannot parse {value:?} as {expected}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The text that did not parse.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A resource in the spec has a value this module cannot apply.
    #[error("linux.resources.{field} = {value}: {reason}")]
    InvalidValue {
        /// The spec field, e.g. `memory.swap`.
        field: &'static str,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A resource or operation needs a controller that no hierarchy
    /// provides (not mounted on v1, not enabled on v2).
    #[error("{field} requires the {controller} cgroup controller, which is not available")]
    ControllerUnavailable {
        /// The controller needed.
        controller: &'static str,
        /// What needs it: a spec field such as `linux.resources.memory`, or
        /// an operation such as `freeze`.
        field: &'static str,
    },
    /// A swap limit was requested but the kernel does not account swap.
    #[error(
        "linux.resources.memory.swap requested but swap accounting is disabled ({path} does not exist)"
    )]
    SwapUnsupported {
        /// The missing control file.
        path: PathBuf,
    },
    /// A block IO weight was requested but no weight file exists (no CFQ/BFQ
    /// scheduler and no io.weight).
    #[error(
        "linux.resources.blockIO.{field} = {weight} requested but {dir} has no {candidates} file"
    )]
    BlkioWeightUnsupported {
        /// The spec field (`weight`, `leafWeight` or `weightDevice`).
        field: &'static str,
        /// The cgroup directory searched.
        dir: PathBuf,
        /// The files that were looked for.
        candidates: &'static str,
        /// The weight asked for.
        weight: u16,
    },
    /// `linux.resources.unified` was given on a host without cgroup v2.
    #[error(
        "linux.resources.unified key {key:?} requires cgroup v2, but only cgroup v1 is mounted"
    )]
    UnifiedOnV1 {
        /// The first key found.
        key: String,
    },
    /// A `linux.resources.unified` key does not name a plain cgroup file.
    #[error("linux.resources.unified key {key:?} is not a cgroup file name")]
    InvalidUnifiedKey {
        /// The key.
        key: String,
    },
    /// A device cgroup rule is malformed.
    #[error("linux.resources.devices[{index}].{field} = {value:?}: {reason}")]
    InvalidDeviceRule {
        /// The rule's position in the list.
        index: usize,
        /// The rule's field (`type`, `major`, `minor`, `access`).
        field: &'static str,
        /// The offending value.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A `bpf(2)` operation for the cgroup v2 device filter failed.
    #[error("bpf {op} on {path}: {source}{}", verifier_suffix(.log))]
    Bpf {
        /// The bpf command, e.g. `BPF_PROG_LOAD`.
        op: &'static str,
        /// The cgroup directory (or `-` for a load).
        path: PathBuf,
        /// The errno.
        #[source]
        source: io::Error,
        /// The verifier log for a failed load; empty otherwise.
        log: String,
    },
    /// The freezer did not reach the requested state in time.
    #[error("timed out waiting for {path} to become {state}")]
    FreezeTimeout {
        /// The freezer file polled.
        path: PathBuf,
        /// The state waited for.
        state: &'static str,
    },
    /// Several operations failed (for example while destroying every
    /// hierarchy); all the errors are kept.
    #[error("{}", join_errors(.errors))]
    Multiple {
        /// The individual errors, in the order they happened.
        errors: Vec<CgroupError>,
    },
}

fn verifier_suffix(log: &str) -> String {
    if log.is_empty() {
        String::new()
    } else {
        format!("; verifier log:\n{log}")
    }
}

fn join_errors(errors: &[CgroupError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl CgroupError {
    /// The raw OS error code underneath, if this error wraps one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::ReadProc { source, .. }
            | Self::Create { source, .. }
            | Self::Read { source, .. }
            | Self::Write { source, .. }
            | Self::Remove { source, .. }
            | Self::Bpf { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// Folds a list of errors into one: none is `Ok`, one is itself, more
    /// become [`CgroupError::Multiple`].
    pub(super) fn collect(mut errors: Vec<CgroupError>) -> Result<(), CgroupError> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(Self::Multiple { errors }),
        }
    }
}
