//! A client of the Engine API on a unix socket: one HTTP/1.1 connection
//! per request (as the docker CLI's), JSON in and out, Docker's errors as
//! [`ClientError::Api`], and upgraded connections for attach and exec.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::ErrorResponse;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket.
    #[error("Cannot connect to the berth daemon at unix://{}. Is the daemon running?", .0.display())]
    Connect(PathBuf),
    /// The daemon answered with an error.
    #[error("{message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// Docker's `message`.
        message: String,
    },
    /// The exchange itself failed.
    #[error("{0}")]
    Transport(String),
}

impl ClientError {
    /// The status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// An upgraded connection: the container's (or exec's) stdio.
pub type Upgraded = TokioIo<hyper::upgrade::Upgraded>;

/// The Engine API at a unix socket.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

fn transport(e: impl std::fmt::Display) -> ClientError {
    ClientError::Transport(e.to_string())
}

impl Client {
    /// A client of the daemon listening on `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> Client {
        Client {
            socket: socket.into(),
        }
    }

    /// The socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends a request and returns the response, whatever its status.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        upgrade: bool,
    ) -> Result<Response<Incoming>, ClientError> {
        let body = body.map(|v| {
            (
                "application/json",
                Bytes::from(serde_json::to_vec(&v).expect("JSON serialises")),
            )
        });
        self.send_raw(method, path, body, upgrade, &[]).await
    }

    /// Sends a tar body (`PUT .../archive`), returning the response.
    pub async fn send_bytes(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Response<Incoming>, ClientError> {
        self.send_tar_with(method, path, body, &[]).await
    }

    /// [`Client::send_bytes`] with extra request headers.
    pub async fn send_tar_with(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        headers: &[(&str, String)],
    ) -> Result<Response<Incoming>, ClientError> {
        self.send_raw(
            method,
            path,
            Some(("application/x-tar", Bytes::from(body))),
            false,
            headers,
        )
        .await
    }

    async fn send_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Bytes)>,
        upgrade: bool,
        headers: &[(&str, String)],
    ) -> Result<Response<Incoming>, ClientError> {
        let (content_type, bytes) = match body {
            Some((t, b)) => (Some(t), b),
            None => (None, Bytes::new()),
        };
        self.send_body(
            method,
            path,
            content_type,
            Full::new(bytes),
            upgrade,
            headers,
        )
        .await
    }

    /// Sends `body` as it is produced (a build context written while it
    /// is sent), with extra request headers.
    pub async fn send_channel(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
        headers: &[(&str, String)],
    ) -> Result<Response<Incoming>, ClientError> {
        self.send_body(
            method,
            path,
            Some(content_type),
            ChannelBody(body),
            false,
            headers,
        )
        .await
    }

    async fn send_body<B>(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: B,
        upgrade: bool,
        headers: &[(&str, String)],
    ) -> Result<Response<Incoming>, ClientError>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|_| ClientError::Connect(self.socket.clone()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(transport)?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let mut req = Request::builder()
            .method(method)
            .uri(format!("http://berth{path}"))
            .header(hyper::header::HOST, "berth");
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        if upgrade {
            req = req
                .header(hyper::header::CONNECTION, "Upgrade")
                .header(hyper::header::UPGRADE, "tcp");
        }
        if let Some(t) = content_type {
            req = req.header(hyper::header::CONTENT_TYPE, t);
        }
        let req = req.body(body).map_err(transport)?;
        sender.send_request(req).await.map_err(transport)
    }

    /// The error in `response`, if its status is one.
    pub async fn check_status(
        response: Response<Incoming>,
    ) -> Result<Response<Incoming>, ClientError> {
        let status = response.status();
        if status.is_client_error() || status.is_server_error() {
            let body = response
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let message = serde_json::from_slice::<ErrorResponse>(&body)
                .map(|e| e.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).trim().to_owned());
            return Err(ClientError::Api {
                status: status.as_u16(),
                message,
            });
        }
        Ok(response)
    }

    /// A request answered with JSON (or nothing): the status and the value
    /// (`Null` for an empty body).
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value), ClientError> {
        let response = Self::check_status(self.send(method, path, body, false).await?).await?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(transport)?
            .to_bytes();
        if bytes.is_empty() {
            return Ok((status, Value::Null));
        }
        let value = serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Transport(format!("the daemon's answer is not JSON: {e}")))?;
        Ok((status, value))
    }

    /// A request whose body is streamed back.
    pub async fn stream(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Incoming, ClientError> {
        Ok(
            Self::check_status(self.send(method, path, body, false).await?)
                .await?
                .into_body(),
        )
    }

    /// A request that upgrades the connection (attach, exec start).
    pub async fn upgrade(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Upgraded, ClientError> {
        let response = Self::check_status(self.send(method, path, body, true).await?).await?;
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(ClientError::Transport(format!(
                "the daemon did not upgrade the connection ({})",
                response.status()
            )));
        }
        hyper::upgrade::on(response)
            .await
            .map(TokioIo::new)
            .map_err(transport)
    }
}

/// A request body fed by a channel: chunks as a producer makes them, and
/// the producer's error ends the request.
struct ChannelBody(tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|r| r.map(hyper::body::Frame::data)))
    }
}
