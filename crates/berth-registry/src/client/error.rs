//! The client's errors: each names the registry and repository, and says
//! what to do where there is something to do.

use berth_image::ContentError;
use berth_model::{Digest, ErrorKind};
use reqwest::StatusCode;

use crate::wire::ErrorBody;

/// What went wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The registry wants credentials it did not get, or refused them.
    #[error(
        "unauthorized: authentication required for {}{detail}; run `berth login {registry}`",
        place(registry, repository)
    )]
    Unauthorized {
        /// The registry.
        registry: String,
        /// The repository.
        repository: String,
        /// What the registry said, prefixed with ": ".
        detail: String,
    },
    /// The credentials do not allow the operation.
    #[error(
        "denied: requested access to {} is denied{detail}",
        place(registry, repository)
    )]
    Denied {
        /// The registry.
        registry: String,
        /// The repository.
        repository: String,
        /// What the registry said, prefixed with ": ".
        detail: String,
    },
    /// The manifest, blob or repository does not exist.
    #[error("{what} not found in {registry}/{repository}")]
    NotFound {
        /// The registry.
        registry: String,
        /// The repository.
        repository: String,
        /// What was asked for (`manifest latest`, `blob sha256:..`).
        what: String,
    },
    /// Content did not hash to the digest it was asked for by.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was transferred.
        what: String,
        /// The digest asked for.
        expected: Digest,
        /// The digest of what arrived.
        actual: Digest,
    },
    /// The registry rate-limits us.
    #[error("too many requests to {registry}; wait and try again")]
    TooManyRequests {
        /// The registry.
        registry: String,
    },
    /// Any other error status.
    #[error("{registry} answered {status} for {what}{detail}")]
    Http {
        /// The registry.
        registry: String,
        /// The HTTP status.
        status: u16,
        /// What was asked for.
        what: String,
        /// What the registry said, prefixed with ": ".
        detail: String,
    },
    /// The registry could not be reached, or the connection broke.
    #[error("cannot reach {registry}: {detail}")]
    Transport {
        /// The registry.
        registry: String,
        /// The network error.
        detail: String,
    },
    /// The content store failed.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// The registry sent something berth cannot use.
    #[error("{0}")]
    Invalid(String),
    /// A local file operation failed.
    #[error("{0}")]
    Io(String),
    /// Credentials could not be read or stored.
    #[error("credentials: {0}")]
    Credentials(String),
}

/// `registry/repository`, or the registry alone.
fn place(registry: &str, repository: &str) -> String {
    if repository.is_empty() {
        registry.to_owned()
    } else {
        format!("{registry}/{repository}")
    }
}

impl ClientError {
    /// Whether retrying may help.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Transport { .. } | ClientError::TooManyRequests { .. } => true,
            ClientError::Http { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// The class of the error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ClientError::Unauthorized { .. } | ClientError::Denied { .. } => {
                ErrorKind::FailedPrecondition
            }
            ClientError::NotFound { .. } => ErrorKind::NotFound,
            ClientError::DigestMismatch { .. } | ClientError::Invalid(_) => {
                ErrorKind::InvalidArgument
            }
            ClientError::TooManyRequests { .. } | ClientError::Transport { .. } => {
                ErrorKind::Unavailable
            }
            ClientError::Http { status, .. } if *status >= 500 => ErrorKind::Unavailable,
            ClientError::Http { .. } => ErrorKind::Internal,
            ClientError::Content(e) => e.kind(),
            ClientError::Io(_) | ClientError::Credentials(_) => ErrorKind::Internal,
        }
    }
}

/// The largest error body read.
const MAX_ERROR_BODY: usize = 64 << 10;

/// `response` when its status is a success, or the error it stands for,
/// with the registry's own words from its error body.
pub(super) async fn check(
    response: reqwest::Response,
    registry: &str,
    repository: &str,
    what: &str,
) -> Result<reqwest::Response, ClientError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let mut body = Vec::new();
    let mut response = response;
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_ERROR_BODY {
            break;
        }
    }
    let detail = serde_json::from_slice::<ErrorBody>(&body)
        .ok()
        .and_then(|b| {
            let parts: Vec<String> = b
                .errors
                .iter()
                .map(|e| {
                    let mut s = e.code.to_lowercase().replace('_', " ");
                    if !e.message.is_empty() {
                        s = format!("{s}: {}", e.message);
                    }
                    s
                })
                .collect();
            (!parts.is_empty()).then(|| format!(": {}", parts.join("; ")))
        })
        .unwrap_or_default();
    let (registry, repository) = (registry.to_owned(), repository.to_owned());
    Err(match status {
        StatusCode::UNAUTHORIZED => ClientError::Unauthorized {
            registry,
            repository,
            detail,
        },
        StatusCode::FORBIDDEN => ClientError::Denied {
            registry,
            repository,
            detail,
        },
        StatusCode::NOT_FOUND => ClientError::NotFound {
            registry,
            repository,
            what: what.to_owned(),
        },
        StatusCode::TOO_MANY_REQUESTS => ClientError::TooManyRequests { registry },
        _ => ClientError::Http {
            registry,
            status: status.as_u16(),
            what: what.to_owned(),
            detail,
        },
    })
}
