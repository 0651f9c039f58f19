//! What the builder asks of its caller: the engine's side (`Host`, the
//! RUN `Process`), what to build (`Options`, `Stores`), and what it reports
//! (`Event`, `BuildError`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_image::snapshot::Snapshotter;
use berth_image::{ContentStore, Descriptor};
use berth_model::{Digest, Platform};

use crate::ignore::IgnoreRules;

/// What the engine does for the builder.
pub trait Host: Sync {
    /// The image manifest of `reference` for `platform`, pulled when it is
    /// missing or `pull` is set. `say` reports progress.
    fn image(
        &self,
        reference: &str,
        platform: &Platform,
        pull: bool,
        say: &dyn Fn(&str),
    ) -> Result<Descriptor, String>;

    /// Runs `process` in the root filesystem mounted at `rootfs`, passing
    /// its output (stdout and stderr) to `output`: its exit code.
    fn run(
        &self,
        rootfs: &Path,
        process: &Process,
        output: &mut dyn FnMut(&[u8]),
    ) -> Result<i32, String>;

    /// Files the engine puts in every container (mount points of
    /// `/etc/hosts` and the like), left out of RUN's layers.
    fn engine_made(&self, path: &str) -> bool;

    /// Downloads `url` (ADD) into the file `to`.
    fn fetch(&self, url: &str, to: &Path) -> Result<(), String>;
}

/// A mount for a RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessMount {
    /// `bind` or `tmpfs`.
    pub kind: String,
    /// The host path (bind).
    pub source: PathBuf,
    /// The path in the container.
    pub destination: String,
    /// Read-only.
    pub readonly: bool,
}

/// A RUN's process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// A name for the container (unique while it runs).
    pub id: String,
    /// argv.
    pub args: Vec<String>,
    /// `NAME=value`.
    pub env: Vec<String>,
    /// The working directory.
    pub cwd: String,
    /// `user[:group]`.
    pub user: String,
    /// Share the host's network (else none).
    pub host_network: bool,
    /// Extra mounts.
    pub mounts: Vec<ProcessMount>,
}

/// What a build reports as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Step `step` of `total` starts: `name` is the instruction, `stage`
    /// `[name n/m]` places it in its stage.
    Step {
        /// The step's number (1-based, over the stages built).
        step: usize,
        /// Steps in all.
        total: usize,
        /// `[stage n/m]`.
        stage: String,
        /// The instruction after expansion.
        name: String,
    },
    /// Output of a step's process.
    Output {
        /// The step.
        step: usize,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// The step was found in the cache.
    Cached {
        /// The step.
        step: usize,
    },
    /// The step finished.
    Done {
        /// The step.
        step: usize,
        /// Seconds it took.
        seconds: f64,
        /// The image the step made.
        image: Digest,
    },
    /// Something the user should know.
    Warning(String),
}

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The Dockerfile's name, for messages.
    pub dockerfile_name: String,
    /// The build context (a directory).
    pub context: PathBuf,
    /// `.dockerignore`.
    pub ignore: IgnoreRules,
    /// `--build-arg`s.
    pub build_args: BTreeMap<String, String>,
    /// `--target`.
    pub target: Option<String>,
    /// `--label`s for the image.
    pub labels: BTreeMap<String, String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--pull`.
    pub pull: bool,
    /// `--platform` (default: the host's).
    pub platform: Option<Platform>,
    /// `--secret`s by id, for `RUN --mount=type=secret`.
    pub secrets: BTreeMap<String, Vec<u8>>,
}

/// A failed build: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    /// The Dockerfile line at fault.
    pub line: Option<usize>,
    /// What went wrong.
    pub message: String,
    /// A RUN's exit code, when that is what failed.
    pub exit_code: Option<i32>,
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for BuildError {}

pub(crate) fn fail(line: usize, message: impl Into<String>) -> BuildError {
    BuildError {
        line: Some(line),
        message: message.into(),
        exit_code: None,
    }
}

/// The stores a build reads and writes.
pub struct Stores<'a> {
    /// Blobs.
    pub content: &'a ContentStore,
    /// Unpacked layers.
    pub snapshots: &'a Snapshotter,
    /// The builder's directory (`<data-root>/builds`): the cache index,
    /// cache mounts, scratch space.
    pub dir: PathBuf,
}
