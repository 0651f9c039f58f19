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
    // The builder behind POST /build is the classic one's API (no BuildKit
    // session): the docker CLI then builds through it without buildx.
    headers.insert("builder-version", HeaderValue::from_static("1"));
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

/// `GET /info`: what `docker info` shows, as far as berth has it.
pub async fn info(
    State(engine): State<Arc<Engine>>,
) -> Result<Json<serde_json::Value>, EngineError> {
    let root = engine.config().data_root.clone();
    let images = engine.image_service().await?;
    let (mut running, mut paused, mut stopped) = (0, 0, 0);
    for c in engine.containers().await?.list() {
        let state = c.record().state;
        match (state.running, state.paused) {
            (true, true) => paused += 1,
            (true, false) => running += 1,
            _ => stopped += 1,
        }
    }
    tokio::task::spawn_blocking(move || {
        let count = {
            let mut ids: Vec<_> = crate::images::records(&images).into_iter().map(|i| i.id).collect();
            ids.sort();
            ids.dedup();
            ids.len()
        };
        let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_owned()).unwrap_or_default();
        let memory = crate::containers::observe::host_memory();
        let os = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_owned())
            .unwrap_or_else(|| "Linux".into());
        let cgroup_version = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() { "2" } else { "1" };
        Ok(Json(serde_json::json!({
            "ID": read("/etc/machine-id"),
            "Containers": running + paused + stopped,
            "ContainersRunning": running,
            "ContainersPaused": paused,
            "ContainersStopped": stopped,
            "Images": count,
            "Driver": images.snapshots.driver().as_str(),
            "DriverStatus": [],
            "DockerRootDir": root.display().to_string(),
            "Plugins": { "Volume": [], "Network": [], "Authorization": null, "Log": [] },
            "MemoryLimit": true,
            "SwapLimit": true,
            "CpuCfsPeriod": true,
            "CpuCfsQuota": true,
            "CPUShares": true,
            "CPUSet": true,
            "PidsLimit": true,
            "IPv4Forwarding": true,
            "Debug": false,
            "NFd": 0,
            "NGoroutines": 0,
            "SystemTime": berth_model::time::now_rfc3339_nanos(),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgroup_version,
            "NEventsListener": 0,
            "KernelVersion": read("/proc/sys/kernel/osrelease"),
            "OperatingSystem": os,
            "OSVersion": "",
            "OSType": "linux",
            "Architecture": std::env::consts::ARCH,
            "NCPU": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "MemTotal": memory,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": { "IndexConfigs": {}, "InsecureRegistryCIDRs": ["127.0.0.0/8", "::1/128"], "Mirrors": [] },
            "GenericResources": null,
            "HttpProxy": "",
            "HttpsProxy": "",
            "NoProxy": "",
            "Name": read("/proc/sys/kernel/hostname"),
            "Labels": [],
            "ExperimentalBuild": false,
            "ServerVersion": env!("CARGO_PKG_VERSION"),
            "Runtimes": { "berth": { "path": "berth-runtime" } },
            "DefaultRuntime": "berth",
            "Swarm": { "NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": null },
            "LiveRestoreEnabled": false,
            "Isolation": "",
            "InitBinary": "",
            "SecurityOptions": ["name=seccomp,profile=builtin"],
            "Warnings": null,
        })))
    })
    .await
    .map_err(|e| EngineError::internal(e.to_string()))?
}
