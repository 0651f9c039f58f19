//! Errors as the Engine API answers them.

use axum::body::Body;
use axum::http::{Response, StatusCode, header};
use berth_api::ErrorResponse;
use berth_model::ErrorKind;

/// An error answered to an API client: a class and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineError {
    /// The class, which picks the status.
    pub kind: ErrorKind,
    /// Docker's `message`.
    pub message: String,
}

impl EngineError {
    /// A malformed request (400).
    pub fn bad_request(message: impl Into<String>) -> EngineError {
        EngineError {
            kind: ErrorKind::InvalidArgument,
            message: message.into(),
        }
    }

    /// Something that does not exist (404).
    pub fn not_found(message: impl Into<String>) -> EngineError {
        EngineError {
            kind: ErrorKind::NotFound,
            message: message.into(),
        }
    }

    /// A state that forbids the request (409).
    pub fn conflict(message: impl Into<String>) -> EngineError {
        EngineError {
            kind: ErrorKind::Conflict,
            message: message.into(),
        }
    }

    /// A failure of berth itself (500).
    pub fn internal(message: impl Into<String>) -> EngineError {
        EngineError {
            kind: ErrorKind::Internal,
            message: message.into(),
        }
    }

    /// The error as Docker's JSON body with its status.
    pub fn into_response(self) -> Response<Body> {
        let status = StatusCode::from_u16(self.kind.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // With the newline Docker's JSON encoder ends every body with.
        let mut body = serde_json::to_vec(&ErrorResponse {
            message: self.message,
        })
        .expect("errors serialise");
        body.push(b'\n');
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        response
    }
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EngineError {}

/// For the in-process commands that speak in messages.
impl From<EngineError> for String {
    fn from(e: EngineError) -> String {
        e.message
    }
}

/// A message of a lower layer with no class of its own: berth's failure.
impl From<String> for EngineError {
    fn from(message: String) -> EngineError {
        EngineError::internal(message)
    }
}

impl axum::response::IntoResponse for EngineError {
    fn into_response(self) -> axum::response::Response {
        EngineError::into_response(self)
    }
}
