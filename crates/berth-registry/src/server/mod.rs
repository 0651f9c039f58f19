//! `berth registry serve`: an OCI distribution registry.
//!
//! [`Registry`] is an axum router over [`Storage`]; [`serve`] runs it on a
//! TCP listener, with TLS when given a certificate. Every request resolves
//! its route from the path by suffix (repository names contain `/`),
//! checks access with [`auth`], and runs blocking filesystem work off the
//! async threads. Uploads stream into the content store through a writer
//! thread, so hashing overlaps with receiving.

pub mod auth;
pub mod gc;
mod handlers;
mod route;
pub mod storage;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};
use berth_image::{ContentError, Writer};
use tokio::net::TcpListener;

use crate::wire::{API_VERSION, ErrorBody, ErrorCode};
pub use auth::{Auth, Htpasswd, TokenIssuer};
pub use storage::Storage;

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a request head may take to arrive.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Connections served at once.
const MAX_CONNECTIONS: usize = 4096;

/// Upload writers kept open at most (each holds two descriptors).
const MAX_OPEN_WRITERS: usize = 256;

/// How a registry is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where blobs, manifests and uploads live.
    pub root: PathBuf,
    /// Who may do what.
    pub auth: Auth,
}

/// A registry: its storage, open uploads and access rules.
#[derive(Clone)]
pub struct Registry {
    shared: Arc<Shared>,
}

struct Shared {
    storage: Storage,
    auth: Auth,
    /// Upload writers kept open between the requests of one session, so a
    /// chunk does not re-hash what came before it; bounded, least recently
    /// used first out (a dropped writer costs only a re-hash on resume).
    writers: Mutex<HashMap<String, (Writer, std::time::Instant)>>,
    /// Password checks at once: bcrypt is slow on purpose, and a flood of
    /// wrong passwords must queue, not take every blocking thread.
    bcrypt: tokio::sync::Semaphore,
}

impl Registry {
    /// Opens the registry's storage.
    pub fn open(config: Config) -> Result<Registry, ApiError> {
        let storage = Storage::open(&config.root)?;
        Ok(Registry {
            shared: Arc::new(Shared {
                storage,
                auth: config.auth,
                writers: Mutex::new(HashMap::new()),
                bcrypt: tokio::sync::Semaphore::new(
                    std::thread::available_parallelism().map_or(2, |n| n.get()),
                ),
            }),
        })
    }

    /// The HTTP application.
    pub fn router(&self) -> Router {
        Router::new()
            .fallback(handlers::dispatch)
            .with_state(self.shared.clone())
    }
}

impl Shared {
    /// The open writer of upload `uuid`, taken out of the cache, or a new
    /// one resuming its data.
    async fn take_writer(&self, uuid: &str) -> Result<Writer, ApiError> {
        if let Some((w, _)) = self.writers.lock().expect("writer cache").remove(uuid) {
            return Ok(w);
        }
        let storage = self.storage.clone();
        let uuid = uuid.to_owned();
        blocking(move || storage.upload_writer(&uuid)).await
    }

    /// Runs `f` on the blocking pool with the storage and repository `name`.
    async fn in_repo<T: Send + 'static>(
        &self,
        name: &str,
        f: impl FnOnce(&Storage, &str) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let storage = self.storage.clone();
        let name = name.to_owned();
        blocking(move || f(&storage, &name)).await
    }

    /// Checks `user`'s `password`, at most one bcrypt per core at a time.
    async fn verify(&self, users: Htpasswd, user: String, password: String) -> bool {
        let Ok(_permit) = self.bcrypt.acquire().await else {
            return false;
        };
        tokio::task::spawn_blocking(move || users.verify(&user, &password))
            .await
            .unwrap_or(false)
    }

    fn put_writer(&self, uuid: &str, writer: Writer) {
        let mut writers = self.writers.lock().expect("writer cache");
        if writers.len() >= MAX_OPEN_WRITERS
            && let Some(oldest) = writers
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
        {
            writers.remove(&oldest);
        }
        writers.insert(uuid.to_owned(), (writer, std::time::Instant::now()));
    }

    fn drop_writer(&self, uuid: &str) {
        self.writers.lock().expect("writer cache").remove(uuid);
    }
}

/// Runs `f` on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(ApiError::internal(format!("worker failed: {e}"))))
}

/// An error answered to a client: a distribution error code, or an internal
/// failure (500).
#[derive(Debug)]
pub struct ApiError {
    code: Option<ErrorCode>,
    status: Option<StatusCode>,
    detail: Option<String>,
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    /// The error `code`.
    pub fn new(code: ErrorCode) -> ApiError {
        ApiError {
            code: Some(code),
            status: None,
            detail: None,
            headers: Vec::new(),
        }
    }

    /// The error `code` with a detail for people.
    pub fn with_detail(code: ErrorCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            detail: Some(detail.into()),
            ..ApiError::new(code)
        }
    }

    /// An internal failure.
    pub fn internal(detail: impl Into<String>) -> ApiError {
        ApiError {
            code: None,
            status: None,
            detail: Some(detail.into()),
            headers: Vec::new(),
        }
    }

    /// A filesystem failure.
    pub fn io(e: std::io::Error) -> ApiError {
        ApiError::internal(e.to_string())
    }

    /// A content-store failure, mapped to the code a client understands.
    pub fn content(e: ContentError) -> ApiError {
        match &e {
            ContentError::NotFound { .. } => {
                ApiError::with_detail(ErrorCode::BlobUnknown, e.to_string())
            }
            ContentError::DigestMismatch { .. } => {
                ApiError::with_detail(ErrorCode::DigestInvalid, e.to_string())
            }
            ContentError::SizeMismatch { .. } => {
                ApiError::with_detail(ErrorCode::SizeInvalid, e.to_string())
            }
            ContentError::Locked { .. } => {
                ApiError::with_detail(ErrorCode::BlobUploadInvalid, e.to_string())
            }
            _ => ApiError::internal(e.to_string()),
        }
    }

    /// Answers with `status` instead of the code's own.
    pub fn with_status(mut self, status: StatusCode) -> ApiError {
        self.status = Some(status);
        self
    }

    /// Adds a header to the response.
    pub fn header(mut self, name: header::HeaderName, value: HeaderValue) -> ApiError {
        self.headers.push((name, value));
        self
    }

    /// The code, or `None` for an internal failure.
    pub fn code(&self) -> Option<ErrorCode> {
        self.code
    }

    /// The error as an HTTP response.
    pub fn into_response(self) -> Response<Body> {
        let (status, body) = match self.code {
            Some(code) => (
                StatusCode::from_u16(code.status()).unwrap_or(StatusCode::BAD_REQUEST),
                ErrorBody::single(code, self.detail.map(serde_json::Value::String)),
            ),
            None => {
                tracing::error!(
                    detail = self.detail.as_deref().unwrap_or(""),
                    "internal error"
                );
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorBody {
                        // The detail (paths, system errors) goes to the log,
                        // not to clients.
                        errors: vec![crate::wire::ErrorEntry {
                            code: "UNKNOWN".into(),
                            message: "internal error; see the registry's log".into(),
                            detail: None,
                        }],
                    },
                )
            }
        };
        let status = self.status.unwrap_or(status);
        let json = serde_json::to_vec(&body).expect("error bodies serialise");
        let mut response = Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, json.len())
            .body(Body::from(json))
            .expect("a valid response");
        for (name, value) in self.headers {
            response.headers_mut().append(name, value);
        }
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, &self.detail) {
            (Some(code), Some(d)) => write!(f, "{}: {d}", code.as_str()),
            (Some(code), None) => write!(f, "{}: {}", code.as_str(), code.message()),
            (None, d) => write!(f, "internal error: {}", d.as_deref().unwrap_or("")),
        }
    }
}

impl std::error::Error for ApiError {}

/// The scheme a connection speaks, when the listener knows it is HTTPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// HTTP over TLS.
    Https,
}

/// TLS settings for [`serve`].
pub type TlsConfig = Arc<rustls::ServerConfig>;

/// Serves `registry` on `listener` until `shutdown` resolves, over TLS when
/// `tls` is given. Each connection runs on its own task (HTTP/1.1, and
/// HTTP/2 when TLS negotiates it).
pub async fn serve(
    listener: TcpListener,
    registry: Registry,
    tls: Option<TlsConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut app = registry.router();
    if tls.is_some() {
        // Tells handlers to announce https URLs (the token realm).
        app = app.layer(axum::Extension(Scheme::Https));
    }
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    // Connections at once: beyond this, accepting waits for one to end,
    // so idle or slow clients cannot exhaust descriptors.
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => return Ok(()),
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                // Out of descriptors or a reset before accept: keep serving.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match acceptor {
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => serve_connection(tls, app, peer).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
                None => serve_connection(stream, app, peer).await,
            }
        });
    }
}

async fn serve_connection<I>(io: I, app: Router, peer: SocketAddr)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper_util::service::TowerToHyperService::new(app);
    let mut builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    // A client that never finishes its request head is dropped.
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    if let Err(e) = builder
        .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(io), service)
        .await
    {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Adds the headers every response carries.
fn finish(mut response: Response<Body>) -> Response<Body> {
    response
        .headers_mut()
        .insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    response
}
