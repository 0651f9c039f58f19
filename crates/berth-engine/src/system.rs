//! The handshake: `/_ping` and `/version`.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Response, header};
use berth_api::version::{MAX_API_VERSION, MIN_API_VERSION};
use berth_api::{ComponentVersion, PlatformName, SystemVersion};

use crate::{Engine, EngineError};

fn ping_response(body: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /_ping`: `OK`, with the API version in the headers.
pub async fn ping() -> Response<Body> {
    ping_response("OK")
}

/// `HEAD /_ping`.
pub async fn ping_head() -> Response<Body> {
    ping_response("")
}

/// `GET /version`.
pub async fn version(State(_engine): State<Arc<Engine>>) -> Json<SystemVersion> {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let arch = berth_model::Platform::host().architecture;
    let version = env!("CARGO_PKG_VERSION").to_owned();
    Json(SystemVersion {
        platform: PlatformName {
            name: format!("berth {version}"),
        },
        components: vec![ComponentVersion {
            name: "Engine".into(),
            version: version.clone(),
            details: Some(serde_json::json!({
                "ApiVersion": MAX_API_VERSION.to_string(),
                "MinAPIVersion": MIN_API_VERSION.to_string(),
                "Os": "linux",
                "Arch": arch,
                "KernelVersion": kernel,
                "GoVersion": "rust",
                "GitCommit": "",
                "BuildTime": "",
                "Experimental": "false",
            })),
        }],
        version,
        api_version: MAX_API_VERSION.to_string(),
        min_api_version: MIN_API_VERSION.to_string(),
        git_commit: String::new(),
        go_version: "rust".into(),
        os: "linux".into(),
        arch,
        kernel_version: kernel,
        build_time: String::new(),
    })
}

/// Anything else: Docker's 404.
pub async fn not_found() -> EngineError {
    EngineError::not_found("page not found")
}
