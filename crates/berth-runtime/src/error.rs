//! The runtime's error type.

use std::io;
use std::path::PathBuf;

use berth_model::ErrorKind;

/// Everything the runtime can fail with. Each variant names the object it is
/// about, so the single line the command line prints says what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The container id is not acceptable.
    #[error(transparent)]
    InvalidId(#[from] berth_model::IdError),
    /// No container with this id exists under the state root.
    #[error("container {id} does not exist")]
    NotFound {
        /// The id asked for.
        id: String,
    },
    /// A container with this id already exists.
    #[error("container {id} already exists")]
    AlreadyExists {
        /// The id asked for.
        id: String,
    },
    /// The container's state forbids the operation.
    #[error("container {id} is {status}: cannot {op}")]
    BadState {
        /// The container.
        id: String,
        /// Its current status.
        status: berth_model::ContainerStatus,
        /// What was attempted.
        op: &'static str,
    },
    /// config.json could not be read or parsed.
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// config.json parsed but asks for something invalid.
    #[error("invalid config.json: {0}")]
    InvalidSpec(String),
    /// An argument on the command line is invalid.
    #[error("{0}")]
    InvalidArgument(String),
    /// The host does not allow what the spec asks for.
    #[error("{0}")]
    Unsupported(String),
    /// A system call or file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or object it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A system call with no path failed.
    #[error("{op}: {source}")]
    Sys {
        /// What was being done.
        op: String,
        /// The errno.
        #[source]
        source: nix::Error,
    },
    /// The container's init process failed while setting the container up;
    /// the message comes from inside the container's namespaces.
    #[error("{0}")]
    Init(String),
    /// A lifecycle hook failed.
    #[error("{kind} hook {path}: {message}")]
    Hook {
        /// Which hook list.
        kind: &'static str,
        /// The hook's executable.
        path: PathBuf,
        /// How it failed.
        message: String,
    },
    /// The cgroup manager failed.
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    /// The seccomp profile could not be compiled or installed.
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    /// Several errors during teardown, all reported.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Multiple(Vec<Error>),
}

impl Error {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Error::BadState { .. } => ErrorKind::Conflict,
            Error::InvalidId(_)
            | Error::Config { .. }
            | Error::InvalidSpec(_)
            | Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::Unsupported(_) => ErrorKind::FailedPrecondition,
            _ => ErrorKind::Internal,
        }
    }

    /// Wraps an I/O error with what was done and to which path.
    pub fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }

    /// Wraps an errno with what was being done.
    pub fn sys(op: impl Into<String>) -> impl FnOnce(nix::Error) -> Error {
        let op = op.into();
        move |source| Error::Sys { op, source }
    }
}

/// The runtime's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
