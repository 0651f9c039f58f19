//! The image endpoints: `GET /images/json`, `GET /images/{name}/json`,
//! `GET /images/{name}/history`, `POST /images/{name}/tag`,
//! `DELETE /images/{name}`. Names contain `/`, so one catch-all route finds
//! the endpoint from the path's end.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, Response, StatusCode};
use berth_model::{ErrorKind, ImageRef};
use serde_json::{Value, json};

use super::{
    ImageService, Removed, inspect_json, is_untagged, keep, records, remove, unix_seconds,
};
use crate::{Engine, EngineError};

/// Runs `f` with the data root's images on a blocking thread.
async fn with_images<T: Send + 'static>(
    engine: &Arc<Engine>,
    f: impl FnOnce(&ImageService) -> Result<T, EngineError> + Send + 'static,
) -> Result<T, EngineError> {
    let images = engine.image_service().await?;
    tokio::task::spawn_blocking(move || f(&images))
        .await
        .unwrap_or_else(|e| Err(EngineError::internal(format!("image worker failed: {e}"))))
}

/// `filters` as Docker sends it: `{"dangling":["true"]}` (or the old
/// `{"dangling":{"true":true}}`).
pub(crate) fn parse_filters(raw: Option<&String>) -> Result<Vec<(String, String)>, EngineError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(Vec::new());
    };
    let value: HashMap<String, Value> = serde_json::from_str(raw)
        .map_err(|e| EngineError::bad_request(format!("invalid filters {raw:?}: {e}")))?;
    let mut out = Vec::new();
    for (key, values) in value {
        match values {
            Value::Array(list) => out.extend(
                list.iter()
                    .filter_map(Value::as_str)
                    .map(|v| (key.clone(), v.to_owned())),
            ),
            Value::Object(map) => out.extend(map.keys().map(|v| (key.clone(), v.clone()))),
            _ => return Err(EngineError::bad_request(format!("invalid filter {key}"))),
        }
    }
    Ok(out)
}

/// Whether an object passes `filters`: values of one key are ORed,
/// different keys ANDed, as Docker reads them; `hit` tests one.
pub(crate) fn passes(
    filters: &[(String, String)],
    mut hit: impl FnMut(&str, &str) -> Result<bool, EngineError>,
) -> Result<bool, EngineError> {
    let mut keys: HashMap<&str, bool> = HashMap::new();
    for (k, v) in filters {
        let h = hit(k, v)?;
        *keys.entry(k.as_str()).or_insert(false) |= h;
    }
    Ok(keys.values().all(|h| *h))
}

/// `GET /images/json`: one entry per image ID, with every name of it.
pub async fn list(
    State(engine): State<Arc<Engine>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Vec<Value>>, EngineError> {
    let filters = parse_filters(query.get("filters"))?;
    with_images(&engine, move |images| summaries(images, &filters))
        .await
        .map(Json)
}

/// One summary per image ID (`GET /images/json`), newest first.
pub(crate) fn summaries(
    images: &ImageService,
    filters: &[(String, String)],
) -> Result<Vec<Value>, EngineError> {
    let all = records(images);
    let mut by_id: BTreeMap<String, (Vec<String>, Vec<String>, &super::Image)> = BTreeMap::new();
    for image in &all {
        if !keep(image, filters, &all).map_err(EngineError::bad_request)? {
            continue;
        }
        let entry = by_id
            .entry(image.id.to_string())
            .or_insert_with(|| (Vec::new(), Vec::new(), image));
        if is_untagged(&image.reference) {
            continue;
        }
        if image.reference.tag().is_some() {
            entry.0.push(image.reference.familiar());
        }
        let (repo, _) = super::repository_and_tag(&image.reference);
        let digest = format!("{repo}@{}", image.target.digest);
        if !entry.1.contains(&digest) {
            entry.1.push(digest);
        }
    }
    let mut out: Vec<Value> = by_id
        .into_iter()
        .map(|(id, (tags, digests, image))| {
            let labels = image.config.config.as_ref().and_then(|c| c.labels.clone());
            json!({
                "Id": id,
                "ParentId": "",
                "RepoTags": tags,
                "RepoDigests": digests,
                "Created": image.config.created.as_deref().and_then(unix_seconds).unwrap_or(0),
                "Size": image.size,
                "SharedSize": -1,
                "Labels": labels,
                "Containers": -1,
            })
        })
        .collect();
    out.sort_by_key(|v| std::cmp::Reverse(v["Created"].as_i64().unwrap_or(0)));
    Ok(out)
}

/// Everything under `/images/`: inspect, history, tag and delete.
pub async fn by_name(
    State(engine): State<Arc<Engine>>,
    Path(rest): Path<String>,
    method: Method,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response<Body>, EngineError> {
    match method {
        Method::GET => {
            if let Some(name) = rest.strip_suffix("/json") {
                return inspect(&engine, name.to_owned()).await;
            }
            if let Some(name) = rest.strip_suffix("/history") {
                return history(&engine, name.to_owned()).await;
            }
            if let Some(name) = rest.strip_suffix("/get") {
                return save_response(&engine, vec![name.to_owned()]).await;
            }
            Err(EngineError::not_found("page not found"))
        }
        Method::POST => {
            if let Some(name) = rest.strip_suffix("/tag") {
                return tag(&engine, name.to_owned(), query).await;
            }
            if let Some(name) = rest.strip_suffix("/push") {
                return push(&engine, name.to_owned(), query, &headers).await;
            }
            Err(EngineError::not_found("page not found"))
        }
        Method::DELETE => {
            let force = query.get("force").is_some_and(|v| v == "1" || v == "true");
            delete(&engine, rest, force).await
        }
        _ => Err(EngineError {
            kind: ErrorKind::InvalidArgument,
            message: format!("{method} is not allowed here"),
        }),
    }
}

pub(crate) fn json_response(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    let mut response = Response::new(Body::from(
        serde_json::to_vec(value).expect("JSON serialises"),
    ));
    *response.status_mut() = status;
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
}

async fn inspect(engine: &Arc<Engine>, name: String) -> Result<Response<Body>, EngineError> {
    let object = with_images(engine, move |images| {
        let (_, target) = images.find(&name)?;
        let id = images.image_id(&target).map_err(EngineError::internal)?;
        let all = records(images);
        let same: Vec<&super::Image> = all.iter().filter(|i| i.id == id).collect();
        let first = same
            .first()
            .ok_or_else(|| EngineError::not_found(format!("No such image: {name}")))?;
        Ok(inspect_json(first, &same))
    })
    .await?;
    Ok(json_response(StatusCode::OK, &object))
}

async fn history(engine: &Arc<Engine>, name: String) -> Result<Response<Body>, EngineError> {
    let entries = with_images(engine, move |images| {
        let (refs, target) = images.find(&name)?;
        let (_, manifest) = images.resolve(&target).map_err(EngineError::internal)?;
        let config = berth_image::ImageConfig::from_slice(
            &images
                .read_blob(&manifest.config.digest)
                .map_err(EngineError::internal)?,
        )
        .map_err(|e| EngineError::internal(e.to_string()))?;
        let mut layers = manifest.layers.iter();
        let mut out = Vec::new();
        for h in config.history.unwrap_or_default() {
            let size = if h.empty_layer {
                0
            } else {
                layers.next().map_or(0, |l| l.size)
            };
            out.push(json!({
                "Id": "<missing>",
                "Created": h.created.as_deref().and_then(unix_seconds).unwrap_or(0),
                "CreatedBy": h.created_by.unwrap_or_default(),
                "Tags": Value::Null,
                "Size": size,
                "Comment": h.comment.unwrap_or_default(),
            }));
        }
        out.reverse();
        if let Some(top) = out.first_mut() {
            top["Id"] = json!(manifest.config.digest.to_string());
            let tags: Vec<String> = refs
                .iter()
                .filter(|r| r.tag().is_some())
                .map(ImageRef::familiar)
                .collect();
            top["Tags"] = json!(tags);
        }
        Ok(out)
    })
    .await?;
    Ok(json_response(StatusCode::OK, &entries))
}

async fn tag(
    engine: &Arc<Engine>,
    name: String,
    query: HashMap<String, String>,
) -> Result<Response<Body>, EngineError> {
    let repo = query
        .get("repo")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| EngineError::bad_request("repository name must be given (repo=)"))?
        .clone();
    let tag = query
        .get("tag")
        .filter(|t| !t.is_empty())
        .cloned()
        .unwrap_or_else(|| "latest".into());
    with_images(engine, move |images| {
        let (_, target) = images.find(&name)?;
        let reference = ImageRef::parse(&format!("{repo}:{tag}"))
            .map_err(|e| EngineError::bad_request(format!("invalid reference format: {e}")))?;
        images
            .images
            .put(&reference, target)
            .map_err(|e| EngineError::internal(e.to_string()))?;
        Ok(())
    })
    .await?;
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

async fn delete(
    engine: &Arc<Engine>,
    name: String,
    force: bool,
) -> Result<Response<Body>, EngineError> {
    let done = with_images(engine, move |images| remove(images, &name, force)).await?;
    let body: Vec<Value> = done
        .into_iter()
        .map(|step| match step {
            Removed::Untagged(r) => json!({ "Untagged": r }),
            Removed::Deleted(id) => json!({ "Deleted": id.to_string() }),
        })
        .collect();
    Ok(json_response(StatusCode::OK, &body))
}

/// `POST /images/create?fromImage=NAME&tag=TAG[&platform=P]`: a pull,
/// answered with Docker's stream of JSON progress messages (one per line),
/// ending with an `error` message if it fails.
pub async fn create(
    State(engine): State<Arc<Engine>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Body,
) -> Result<Response<Body>, EngineError> {
    let credentials = registry_auth(&headers)?;
    if let Some(source) = query.get("fromSrc") {
        return import(&engine, source, &query, uri.query(), body).await;
    }
    let from = query
        .get("fromImage")
        .filter(|f| !f.is_empty())
        .ok_or_else(|| EngineError::bad_request("fromImage must be given"))?;
    let name = match query.get("tag").filter(|t| !t.is_empty()) {
        Some(tag) if tag.contains(':') => format!("{from}@{tag}"),
        Some(tag) => format!("{from}:{tag}"),
        None => from.clone(),
    };
    let reference = ImageRef::parse(&name)
        .map_err(|e| EngineError::bad_request(format!("invalid reference format: {e}")))?;
    let platform = match query.get("platform").filter(|p| !p.is_empty()) {
        Some(p) => {
            berth_model::Platform::parse(p).map_err(|e| EngineError::bad_request(e.to_string()))?
        }
        None => berth_model::Platform::host(),
    };
    // No tag, in the parameter or the name: every tag, as Docker's API
    // reads it (the docker CLI sends `tag=latest` unless asked for `-a`).
    let last = from.rsplit('/').next().unwrap_or(from);
    let all_tags =
        query.get("tag").is_none_or(|t| t.is_empty()) && !from.contains('@') && !last.contains(':');
    let images = engine.image_service().await?;
    Ok(progress_stream(move |events| async move {
        if !all_tags {
            return super::pull::pull(&images, &reference, &platform, credentials, events)
                .await
                .map(drop);
        }
        let repo = images
            .client_with(credentials.clone())
            .repo(reference.domain(), reference.path())
            .map_err(|e| e.to_string())?;
        let tags = repo.tags().await.map_err(|e| e.to_string())?;
        if tags.is_empty() {
            return Err(format!("{} has no tags", reference.repository()));
        }
        for tag in tags {
            let tagged = reference.with_tag(&tag).map_err(|e| e.to_string())?;
            super::pull::pull(
                &images,
                &tagged,
                &platform,
                credentials.clone(),
                events.clone(),
            )
            .await?;
        }
        Ok(())
    }))
}

/// A response streaming Docker's JSON progress messages from the transfer
/// `run` does with the events it is given, ending with an `error` message
/// when it fails.
fn progress_stream<F, Fut>(run: F) -> Response<Body>
where
    F: FnOnce(super::pull::TransferEvents) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<bytes::Bytes>();
    let line = json_line;
    tokio::spawn(async move {
        let events_tx = tx.clone();
        let events: super::pull::TransferEvents = Arc::new(move |event| {
            let value = match event {
                super::pull::TransferEvent::Status { id: Some(id), text } => {
                    json!({ "status": text, "id": id })
                }
                super::pull::TransferEvent::Status { id: None, text } => json!({ "status": text }),
                super::pull::TransferEvent::Layer {
                    id,
                    status,
                    progress,
                } => match progress {
                    Some((current, total)) => json!({
                        "status": status,
                        "progressDetail": { "current": current, "total": total },
                        "id": id,
                    }),
                    None => json!({ "status": status, "progressDetail": {}, "id": id }),
                },
            };
            let _ = events_tx.send(line(value));
        });
        if let Err(message) = run(events).await {
            let _ = tx.send(line(
                json!({ "errorDetail": { "message": message }, "error": message }),
            ));
        }
    });
    json_stream_response(rx)
}

/// One message of a JSON progress stream.
pub(crate) fn json_line(value: Value) -> bytes::Bytes {
    let mut bytes = serde_json::to_vec(&value).expect("JSON serialises");
    bytes.extend_from_slice(b"\r\n");
    bytes::Bytes::from(bytes)
}

/// A response streaming the JSON messages `rx` receives, until its
/// senders are gone.
pub(crate) fn json_stream_response(
    rx: tokio::sync::mpsc::UnboundedReceiver<bytes::Bytes>,
) -> Response<Body> {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), rx))
    });
    stream_response(
        stream,
        axum::http::HeaderValue::from_static("application/json"),
    )
}

/// A response whose body is `stream`, as it produces, of `content_type`.
pub(crate) fn stream_response<S, E>(
    stream: S,
    content_type: axum::http::HeaderValue,
) -> Response<Body>
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut response = Response::new(Body::from_stream(stream));
    response
        .headers_mut()
        .insert(axum::http::header::CONTENT_TYPE, content_type);
    response
}

/// The credentials of an `X-Registry-Auth` header: base64 (URL-safe, as
/// the docker CLI writes it, or standard) of `{"username", "password",
/// "identitytoken", ...}`. An empty or `{}` header means none.
pub fn registry_auth(
    headers: &HeaderMap,
) -> Result<Option<berth_registry::client::Credentials>, EngineError> {
    let Some(value) = headers.get("x-registry-auth").and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let auth = decode_json_header(value, "X-Registry-Auth")?;
    Ok(auth_credentials(&auth))
}

/// The credentials of an `X-Registry-Config` header (`docker build`'s):
/// base64 of `{"REGISTRY": {auth config}, ...}`, keyed by registry host
/// (`https://index.docker.io/v1/` stands for `docker.io`).
pub fn registry_config(
    headers: &HeaderMap,
) -> Result<HashMap<String, berth_registry::client::Credentials>, EngineError> {
    let Some(value) = headers
        .get("x-registry-config")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
    else {
        return Ok(HashMap::new());
    };
    let config = decode_json_header(value, "X-Registry-Config")?;
    let mut out = HashMap::new();
    for (key, auth) in config.as_object().into_iter().flatten() {
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default();
        let host = match host {
            "index.docker.io" | "registry-1.docker.io" => "docker.io",
            h => h,
        };
        if let Some(c) = auth_credentials(auth) {
            out.insert(host.to_owned(), c);
        }
    }
    Ok(out)
}

/// A header of base64 (any of Docker's alphabets) JSON.
fn decode_json_header(value: &str, name: &str) -> Result<Value, EngineError> {
    use base64::Engine as _;
    let engines = [
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
    ];
    let decoded = engines
        .iter()
        .find_map(|e| e.decode(value).ok())
        .ok_or_else(|| EngineError::bad_request(format!("{name} is not base64")))?;
    serde_json::from_slice(&decoded)
        .map_err(|e| EngineError::bad_request(format!("{name} is not JSON: {e}")))
}

/// An auth config's credentials: `username`/`password`, `identitytoken`,
/// or `auth` (base64 of `user:password`); none when it holds none.
fn auth_credentials(auth: &Value) -> Option<berth_registry::client::Credentials> {
    use base64::Engine as _;
    let field = |k: &str| auth.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let (mut username, mut password, token) =
        (field("username"), field("password"), field("identitytoken"));
    if username.is_empty()
        && let Ok(pair) = base64::engine::general_purpose::STANDARD.decode(field("auth"))
        && let Some((u, p)) = String::from_utf8_lossy(&pair).split_once(':')
    {
        (username, password) = (u.to_owned(), p.to_owned());
    }
    if username.is_empty() && token.is_empty() {
        return None;
    }
    Some(berth_registry::client::Credentials {
        username,
        password,
        identity_token: (!token.is_empty()).then_some(token),
    })
}

/// `POST /images/{name}/push?tag=TAG`: a push, answered with Docker's JSON
/// progress stream.
async fn push(
    engine: &Arc<Engine>,
    name: String,
    query: HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response<Body>, EngineError> {
    let credentials = registry_auth(headers)?;
    let full = match query.get("tag").filter(|t| !t.is_empty()) {
        Some(tag) => format!("{name}:{tag}"),
        None => name,
    };
    let reference = ImageRef::parse(&full)
        .map_err(|e| EngineError::bad_request(format!("invalid reference format: {e}")))?;
    let images = engine.image_service().await?;
    Ok(progress_stream(move |events| async move {
        super::push::push(&images, &reference, credentials, events)
            .await
            .map(drop)
    }))
}

/// `POST /auth`: checks credentials against a registry, as `docker login`
/// does through the daemon. The client keeps the credentials; the daemon
/// stores nothing.
pub async fn auth(
    State(engine): State<Arc<Engine>>,
    body: axum::body::Bytes,
) -> Result<Response<Body>, EngineError> {
    let request: Value = serde_json::from_slice(&body)
        .map_err(|e| EngineError::bad_request(format!("invalid auth request: {e}")))?;
    let field = |k: &str| {
        request
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let server = field("serveraddress");
    let registry = berth_registry::client::credentials::registry_of_server(&server);
    let credentials = berth_registry::client::Credentials {
        username: field("username"),
        password: field("password"),
        identity_token: Some(field("identitytoken")).filter(|t| !t.is_empty()),
    };
    let images = engine.image_service().await?;
    images
        .client()
        .login(&registry, &credentials)
        .await
        .map_err(|e| EngineError {
            kind: ErrorKind::Unauthenticated,
            message: format!("login attempt to {registry} failed: {e}"),
        })?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "Status": "Login Succeeded", "IdentityToken": "" }),
    ))
}

/// The values of `key` in a query string that may repeat it
/// (`names=a&names=b`).
pub(crate) fn repeated(query: Option<&str>, key: &str) -> Vec<String> {
    query
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| berth_registry::wire::percent_decode(v))
        .collect()
}

/// A request body as a reader for a blocking thread, with a megabyte of
/// buffer.
pub(crate) fn blocking_reader(body: Body) -> impl std::io::Read + Send + 'static {
    use futures_util::TryStreamExt;
    let stream =
        tokio_util::io::StreamReader::new(body.into_data_stream().map_err(std::io::Error::other));
    std::io::BufReader::with_capacity(1 << 20, tokio_util::io::SyncIoBridge::new(stream))
}

/// A `Write` that sends what it is given, a megabyte at a time, to a
/// response body (blocking when the client reads slowly).
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    const CHUNK: usize = 1 << 20;

    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = bytes::Bytes::from(std::mem::take(&mut self.buf));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= Self::CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// `GET /images/get?names=...` (and `/images/{name}/get`): the images as
/// one tar, streamed as it is written.
pub async fn get(
    State(engine): State<Arc<Engine>>,
    uri: axum::http::Uri,
) -> Result<Response<Body>, EngineError> {
    save_response(&engine, repeated(uri.query(), "names")).await
}

async fn save_response(
    engine: &Arc<Engine>,
    names: Vec<String>,
) -> Result<Response<Body>, EngineError> {
    if names.is_empty() {
        return Err(EngineError::bad_request("no images named (names=)"));
    }
    let service = engine.image_service().await?;
    // Resolve first, so an unknown name is a 404 and not a broken stream.
    let images = tokio::task::spawn_blocking(
        move || -> Result<(Arc<ImageService>, Vec<String>), EngineError> {
            super::archives::save_set(&service, &names)?;
            Ok((service, names))
        },
    )
    .await
    .map_err(|e| EngineError::internal(e.to_string()))??;
    Ok(tar_response(move |writer| {
        let (images, names) = images;
        super::archives::save(&images, &names, writer)
    }))
}

/// A response whose body is a tar that `write` produces on a blocking
/// thread, streamed as it is written; a failure breaks the body (the
/// client sees a failed transfer, not a short archive).
pub(crate) fn tar_response(
    write: impl FnOnce(&mut dyn std::io::Write) -> Result<(), String> + Send + 'static,
) -> Response<Body> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let mut writer = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(ChannelWriter::CHUNK),
        };
        let result = write(&mut writer)
            .and_then(|()| std::io::Write::flush(&mut writer).map_err(|e| e.to_string()));
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(std::io::Error::other(e)));
        }
    });
    channel_response(
        rx,
        axum::http::HeaderValue::from_static("application/x-tar"),
    )
}

/// A response whose body is what arrives on `rx`, as it arrives; an error
/// breaks the body.
pub(crate) fn channel_response(
    rx: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>,
    content_type: axum::http::HeaderValue,
) -> Response<Body> {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    stream_response(stream, content_type)
}

/// `POST /images/load`: an archive in the body; Docker's
/// `{"stream": "Loaded image: ...\n"}` lines back (`quiet` only hides
/// progress, which berth's load does not report).
pub async fn load(
    State(engine): State<Arc<Engine>>,
    body: Body,
) -> Result<Response<Body>, EngineError> {
    let images = engine.image_service().await?;
    let reader = blocking_reader(body);
    let lines = tokio::task::spawn_blocking(move || -> Result<Vec<String>, EngineError> {
        super::archives::load(&images, reader).map_err(EngineError::bad_request)
    })
    .await
    .map_err(|e| EngineError::internal(e.to_string()))??;
    let mut out = Vec::new();
    for line in lines {
        out.extend(
            serde_json::to_vec(&json!({ "stream": format!("{line}\n") })).expect("JSON serialises"),
        );
        out.extend_from_slice(b"\r\n");
    }
    let mut response = Response::new(Body::from(out));
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// `POST /images/prune[?filters={"dangling":["false"]}]`: removes dangling
/// images, or with `dangling=false` every unused one.
pub async fn prune(
    State(engine): State<Arc<Engine>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response<Body>, EngineError> {
    let filters = parse_filters(query.get("filters"))?;
    let mut all = false;
    for (key, value) in &filters {
        match (key.as_str(), value.as_str()) {
            ("dangling", "false" | "0") => all = true,
            ("dangling", "true" | "1") => all = false,
            (key, _) => {
                return Err(EngineError::bad_request(format!(
                    "invalid filter '{key}' for image prune"
                )));
            }
        }
    }
    let (removed, reclaimed) = with_images(&engine, move |images| {
        super::prune(images, all).map_err(EngineError::internal)
    })
    .await?;
    let deleted: Vec<Value> = removed
        .into_iter()
        .map(|step| match step {
            Removed::Untagged(r) => json!({ "Untagged": r }),
            Removed::Deleted(id) => json!({ "Deleted": id.to_string() }),
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "ImagesDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) }, "SpaceReclaimed": reclaimed }),
    ))
}

/// `POST /images/create?fromSrc=-&repo=R&tag=T&changes=..&message=..`: a
/// root filesystem tar in the body becomes an image; answers
/// `{"status": "sha256:..."}`.
async fn import(
    engine: &Arc<Engine>,
    source: &str,
    query: &HashMap<String, String>,
    raw_query: Option<&str>,
    body: Body,
) -> Result<Response<Body>, EngineError> {
    if source != "-" {
        return Err(EngineError::bad_request(
            "importing from a URL is not supported; send the tar in the request body (fromSrc=-)",
        ));
    }
    let reference =
        match query.get("repo").filter(|r| !r.is_empty()) {
            Some(repo) => {
                // The docker CLI sends the whole reference as `repo`; a `tag`
                // parameter adds one.
                let full = match query.get("tag").filter(|t| !t.is_empty()) {
                    Some(tag) => format!("{repo}:{tag}"),
                    None => repo.clone(),
                };
                Some(ImageRef::parse(&full).map_err(|e| {
                    EngineError::bad_request(format!("invalid reference format: {e}"))
                })?)
            }
            None => None,
        };
    let platform = match query.get("platform").filter(|p| !p.is_empty()) {
        Some(p) => Some(
            berth_model::Platform::parse(p).map_err(|e| EngineError::bad_request(e.to_string()))?,
        ),
        None => None,
    };
    let request = super::import::ImportRequest {
        reference,
        changes: repeated(raw_query, "changes"),
        message: query.get("message").filter(|m| !m.is_empty()).cloned(),
        source: "-".into(),
        platform,
    };
    let images = engine.image_service().await?;
    let reader = blocking_reader(body);
    let id = tokio::task::spawn_blocking(move || -> Result<berth_model::Digest, EngineError> {
        super::import::import(&images, reader, &request).map_err(EngineError::bad_request)
    })
    .await
    .map_err(|e| EngineError::internal(e.to_string()))??;
    let mut line =
        serde_json::to_vec(&json!({ "status": id.to_string() })).expect("JSON serialises");
    line.extend_from_slice(b"\r\n");
    let mut response = Response::new(Body::from(line));
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_credentials_are_read_per_registry() {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let config = json!({
            "https://index.docker.io/v1/": { "auth": b64.encode("bob:pw") },
            "localhost:5000": { "username": "alice", "password": "secret" },
            "empty.example": {},
        });
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-registry-config",
            b64.encode(config.to_string()).parse().unwrap(),
        );
        let creds = registry_config(&headers).unwrap();
        assert_eq!(creds.len(), 2);
        assert_eq!(creds["docker.io"].username, "bob");
        assert_eq!(creds["docker.io"].password, "pw");
        assert_eq!(creds["localhost:5000"].username, "alice");
        headers.insert("x-registry-config", "%%%".parse().unwrap());
        assert!(registry_config(&headers).is_err());
    }
}
