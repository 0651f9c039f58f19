#![recursion_limit = "256"]
//! berth's engine: the Docker Engine API on a unix socket.
//!
//! [`Engine::router`] is the API as an axum router; [`serve`] runs it on a
//! listener. Every request first has its `/v1.NN` prefix checked and
//! stripped ([`berth_api::version`]), so routes are written once; every
//! response carries Docker's `Api-Version`, `Ostype` and `Server` headers;
//! every error is Docker's `{"message": ...}` with the status its class
//! calls for. The engine answers the handshake (`/_ping`, `/version`,
//! `/info`), images (pull, push, list, inspect, tag, delete, save, load,
//! import, prune), containers (create, start, attach, wait, logs, exec,
//! stop, kill, restart, pause, rename, remove, prune) and volumes.
#![deny(missing_docs)]

mod build_cache;
pub mod builds;
pub mod containers;
mod error;
pub mod events;
pub mod images;
mod system;
pub mod volumes;

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, Uri, header};
use axum::routing::get;
use berth_api::version::{MAX_API_VERSION, split_path};
use tower::ServiceExt;

pub use error::EngineError;

/// How the engine is set up.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where images, containers and volumes live.
    pub data_root: PathBuf,
    /// Where runtime state (sockets, shims) lives.
    pub exec_root: PathBuf,
}

/// The engine's shared state.
pub struct Engine {
    config: EngineConfig,
    /// The data root's images, opened on first use and kept: the stores
    /// notice what other processes (a CLI on the same root) change, and
    /// opening once means crash debris is cleared once, at start.
    images: tokio::sync::OnceCell<Arc<images::ImageService>>,
    /// The containers, opened (and recovered) once.
    containers: tokio::sync::OnceCell<Arc<containers::Containers>>,
    /// Builds hold it shared, a build cache prune exclusively.
    build_gate: Arc<tokio::sync::RwLock<()>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine over `config`'s roots.
    pub fn new(config: EngineConfig) -> Arc<Engine> {
        Arc::new(Engine {
            config,
            images: tokio::sync::OnceCell::new(),
            containers: tokio::sync::OnceCell::new(),
            build_gate: Arc::default(),
        })
    }

    /// The data root's images.
    pub async fn image_service(&self) -> Result<Arc<images::ImageService>, EngineError> {
        self.images
            .get_or_try_init(|| async {
                let root = self.config.data_root.clone();
                tokio::task::spawn_blocking(move || images::ImageService::open(root))
                    .await
                    .map_err(|e| EngineError::internal(e.to_string()))?
                    .map(Arc::new)
                    .map_err(EngineError::internal)
            })
            .await
            .cloned()
    }

    /// The data root's containers; opening them reconnects to the shims
    /// of running containers and settles those that ended.
    pub async fn containers(&self) -> Result<Arc<containers::Containers>, EngineError> {
        let images = self.image_service().await?;
        self.containers
            .get_or_try_init(|| async {
                containers::Containers::open(&self.config.data_root, &self.config.exec_root, images)
                    .await
                    .map_err(EngineError::internal)
            })
            .await
            .cloned()
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The Engine API, without version handling (see [`api`]).
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/_ping", get(system::ping).head(system::ping_head))
            .route("/version", get(system::version))
            .route("/images/json", get(images::api::list))
            .route("/images/create", axum::routing::post(images::api::create))
            .route("/auth", axum::routing::post(images::api::auth))
            .route("/images/get", get(images::api::get))
            .route("/images/load", axum::routing::post(images::api::load))
            .route("/images/prune", axum::routing::post(images::api::prune))
            .route("/info", get(system::info))
            .route("/images/{*rest}", axum::routing::any(images::api::by_name))
            .route(
                "/containers/create",
                axum::routing::post(containers::api::create),
            )
            .route("/containers/json", get(containers::api::list))
            .route(
                "/containers/prune",
                axum::routing::post(containers::api::prune),
            )
            .route(
                "/containers/{*rest}",
                axum::routing::any(containers::api::by_id),
            )
            .route(
                "/exec/{*rest}",
                axum::routing::any(containers::api::exec_by_id),
            )
            .route("/events", get(containers::api::events))
            .route("/commit", axum::routing::post(containers::api::commit))
            .route("/system/df", get(containers::volume_api::system_df))
            .route(
                "/networks/prune",
                axum::routing::post(containers::volume_api::nothing_to_prune),
            )
            .route("/build", axum::routing::post(builds::build))
            .route("/build/prune", axum::routing::post(builds::prune))
            .route("/volumes", get(containers::volume_api::list))
            .route(
                "/volumes/create",
                axum::routing::post(containers::volume_api::create),
            )
            .route(
                "/volumes/prune",
                axum::routing::post(containers::volume_api::prune),
            )
            .route(
                "/volumes/{name}",
                get(containers::volume_api::inspect).delete(containers::volume_api::remove),
            )
            .fallback(system::not_found)
            .with_state(self.clone())
    }
}

/// The Engine API as a service: checks and strips the version prefix,
/// then routes, then adds the headers every response carries.
pub async fn api(router: Router, mut request: Request<Body>) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path().to_owned();
    let response = match split_path(&path) {
        Err(e) => EngineError::bad_request(e.to_string()).into_response(),
        Ok((_, rest)) => {
            if rest != path {
                let mut parts = request.uri().clone().into_parts();
                let query = request
                    .uri()
                    .query()
                    .map(|q| format!("?{q}"))
                    .unwrap_or_default();
                parts.path_and_query = format!("{rest}{query}").parse().ok();
                if let Ok(uri) = Uri::from_parts(parts) {
                    *request.uri_mut() = uri;
                }
            }
            match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
    };
    Ok(with_headers(response))
}

fn with_headers(mut response: Response<Body>) -> Response<Body> {
    let headers = response.headers_mut();
    headers.insert(
        "api-version",
        HeaderValue::from_static(api_version_header()),
    );
    headers.insert("ostype", HeaderValue::from_static("linux"));
    headers.insert("docker-experimental", HeaderValue::from_static("false"));
    headers.insert(
        header::SERVER,
        HeaderValue::from_static(concat!("berth/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    response
}

/// `MAX_API_VERSION` as a static header value.
fn api_version_header() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| MAX_API_VERSION.to_string())
}

/// Serves `engine` on `listener` until `shutdown` resolves, one task per
/// connection.
pub async fn serve(
    listener: tokio::net::UnixListener,
    engine: Arc<Engine>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Recover containers before serving: reattach to running shims,
    // settle exits, restart by policy.
    if let Err(e) = engine.containers().await {
        tracing::warn!(error = %e.message, "opening the containers failed");
    }
    let router = engine.router();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let router = router.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    api(router.clone(), request.map(Body::new))
                });
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "API connection ended with an error");
            }
        });
    }
}
