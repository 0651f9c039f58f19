//! The error class.

/// The class of an error: what the caller can do about it.
///
/// Each crate keeps its own typed errors with their context in fields; each
/// such error answers `kind()` with one of these, and this is the single place
/// where a class becomes an exit code or an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The named object does not exist.
    NotFound,
    /// An object with that name already exists.
    AlreadyExists,
    /// The object is in a state that forbids the operation (e.g. deleting a
    /// running container).
    Conflict,
    /// The input is malformed or invalid.
    InvalidArgument,
    /// The system is not in a state that allows the operation (a missing
    /// kernel feature, a limit the host does not allow).
    FailedPrecondition,
    /// A dependency is not answering; retrying may help.
    Unavailable,
    /// A bug or an unexpected failure of the system.
    Internal,
    /// The credentials are missing or wrong (a registry refused them).
    Unauthenticated,
}

impl ErrorKind {
    /// The HTTP status the Engine API answers with for this class.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::NotFound => 404,
            ErrorKind::AlreadyExists | ErrorKind::Conflict => 409,
            ErrorKind::InvalidArgument => 400,
            ErrorKind::FailedPrecondition | ErrorKind::Internal => 500,
            ErrorKind::Unavailable => 503,
            ErrorKind::Unauthenticated => 401,
        }
    }

    /// The exit status of a docker-compatible CLI command failing with this
    /// class: Docker uses 125 for every error of its own.
    pub fn cli_exit_code(self) -> i32 {
        125
    }

    /// The exit status of the runc-compatible runtime command line, which
    /// (like runc) exits 1 for every error of its own.
    pub fn runtime_exit_code(self) -> i32 {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_map_to_docker_http_statuses() {
        assert_eq!(ErrorKind::NotFound.http_status(), 404);
        assert_eq!(ErrorKind::AlreadyExists.http_status(), 409);
        assert_eq!(ErrorKind::Conflict.http_status(), 409);
        assert_eq!(ErrorKind::InvalidArgument.http_status(), 400);
        assert_eq!(ErrorKind::Internal.cli_exit_code(), 125);
        assert_eq!(ErrorKind::Internal.runtime_exit_code(), 1);
    }
}
