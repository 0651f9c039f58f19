//! The container endpoints of the Engine API.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, Method, Request, Response, StatusCode};
use berth_api::container::CreateRequest;
use berth_model::ErrorKind;
use serde_json::{Value, json};

use super::logs::{LogOptions, parse_time};
use super::record::ZERO_TIME;
use super::stdio::{AttachOptions, parse_detach_keys};
use super::{Container, Containers};
use crate::images::api::{channel_response, json_response, parse_filters, passes};
use crate::images::{elapsed, unix_seconds};
use crate::{Engine, EngineError};

/// A query flag as Docker reads it: `1`/`true`/`True`.
fn flag(q: &HashMap<String, String>, key: &str) -> bool {
    q.get(key)
        .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "True" | "TRUE"))
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

/// `POST /containers/create?name=`.
pub async fn create(
    State(engine): State<Arc<Engine>>,
    Query(q): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Result<Response<Body>, EngineError> {
    let req: CreateRequest = serde_json::from_slice(&body)
        .map_err(|e| EngineError::bad_request(format!("invalid JSON body: {e}")))?;
    let platform = match q.get("platform").filter(|p| !p.is_empty()) {
        Some(p) => Some(
            berth_model::Platform::parse(p)
                .map_err(|e| EngineError::bad_request(format!("invalid platform {p:?}: {e}")))?,
        ),
        None => None,
    };
    let containers = engine.containers().await?;
    let created = containers
        .create(req, q.get("name").cloned(), platform)
        .await?;
    Ok(json_response(StatusCode::CREATED, &created))
}

fn ago(t: &str) -> String {
    let now = berth_model::time::unix_now().as_secs() as i64;
    elapsed(unix_seconds(t).unwrap_or(now))
}

/// Docker's `Status` column.
pub fn status_text(c: &Container) -> String {
    let s = c.record().state;
    match s.status.as_str() {
        "running" if s.paused => format!("Up {} (Paused)", ago(&s.started_at)),
        "running" => match s.health.as_ref().map(|h| h.status.as_str()) {
            Some("starting") => format!("Up {} (health: starting)", ago(&s.started_at)),
            Some(h) => format!("Up {} ({h})", ago(&s.started_at)),
            None => format!("Up {}", ago(&s.started_at)),
        },
        "restarting" => format!("Restarting ({}) {} ago", s.exit_code, ago(&s.finished_at)),
        "exited" if s.finished_at == ZERO_TIME => "Created".into(),
        "exited" => format!("Exited ({}) {} ago", s.exit_code, ago(&s.finished_at)),
        "created" => "Created".into(),
        other => other.to_owned(),
    }
}

/// Inspect's `Mounts`: the bind mounts, then the volumes, as Docker lists
/// them.
fn mount_points(rec: &super::Record) -> Vec<Value> {
    let mut out: Vec<Value> = super::create::bind_specs(rec)
        .iter()
        .filter_map(|b| {
            let (src, dst, opts) = super::spec::split_bind(b).ok()?;
            let opts: Vec<&str> = opts.split(',').filter(|o| !o.is_empty()).collect();
            let propagation = opts.iter().find(|o| super::spec::PROPAGATIONS.contains(o));
            Some(json!({
                "Type": "bind", "Source": src, "Destination": dst, "Mode": opts.join(","),
                "RW": !opts.contains(&"ro"), "Propagation": propagation.unwrap_or(&"rprivate"),
            }))
        })
        .collect();
    out.extend(rec.berth_volumes.iter().map(|v| json!(v)));
    out
}

fn state_name(c: &Container) -> String {
    let s = c.record().state;
    if s.paused { "paused".into() } else { s.status }
}

fn command_text(rec: &super::Record) -> String {
    let mut parts = vec![rec.path.clone()];
    parts.extend(rec.args.iter().cloned());
    parts.join(" ")
}

fn summary(c: &Container) -> Value {
    let rec = c.record();
    json!({
        "Id": rec.id,
        "Names": [rec.name],
        "Image": rec.config.image,
        "ImageID": rec.image,
        "Command": command_text(&rec),
        "Created": unix_seconds(&rec.created).unwrap_or(0),
        "Ports": [],
        "Labels": rec.config.labels,
        "State": state_name(c),
        "Status": status_text(c),
        "HostConfig": { "NetworkMode": rec.host_config.network_mode },
        "NetworkSettings": { "Networks": {} },
        "Mounts": [],
    })
}

fn matches_filter(c: &Container, key: &str, value: &str) -> Result<bool, EngineError> {
    let rec = c.record();
    Ok(match key {
        "id" => rec.id.starts_with(value),
        "name" => rec.short_name().contains(value.trim_start_matches('/')),
        "status" => state_name(c) == value,
        "health" => {
            let h = rec
                .state
                .health
                .as_ref()
                .map(|h| h.status.as_str())
                .unwrap_or("none");
            h == value
        }
        "exited" => {
            rec.state.status == "exited"
                && rec.state.finished_at != ZERO_TIME
                && value.parse::<i32>().ok() == Some(rec.state.exit_code)
        }
        "label" => match value.split_once('=') {
            Some((k, v)) => rec.config.labels.get(k).is_some_and(|x| x == v),
            None => rec.config.labels.contains_key(value),
        },
        "ancestor" => rec.config.image == value || rec.image.contains(value),
        _ => {
            return Err(EngineError::bad_request(format!("invalid filter '{key}'")));
        }
    })
}

/// `GET /containers/json`.
pub async fn list(
    State(engine): State<Arc<Engine>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response<Body>, EngineError> {
    let containers = engine.containers().await?;
    let filters = parse_filters(q.get("filters"))?;
    let limit: i64 = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(-1);
    let all = flag(&q, "all") || limit > 0;
    let mut out = Vec::new();
    // With sizes: the images' sizes, read once for every row.
    let image_sizes = flag(&q, "size").then(|| containers.image_sizes());
    for c in containers.list() {
        if !all && !c.running() {
            continue;
        }
        if !passes(&filters, |k, v| matches_filter(&c, k, v))? {
            continue;
        }
        let mut entry = summary(&c);
        if let Some(sizes) = &image_sizes {
            // The image's size is what the writable layer sits on.
            let rw = containers.writable_size(&c) as i64;
            entry["SizeRw"] = json!(rw);
            entry["SizeRootFs"] = json!(rw + sizes.get(&c.record().image).copied().unwrap_or(0));
        }
        out.push(entry);
        if limit > 0 && out.len() as i64 >= limit {
            break;
        }
    }
    Ok(json_response(StatusCode::OK, &out))
}

fn inspect(c: &Container) -> Value {
    let rec = c.record();
    let dir = c.dir.clone();
    let path = |n: &str| dir.join(n).display().to_string();
    let mut state = serde_json::to_value(&rec.state).expect("state serialises");
    state["Status"] = json!(state_name(c));
    json!({
        "Id": rec.id,
        "Created": rec.created,
        "Path": rec.path,
        "Args": rec.args,
        "State": state,
        "Image": rec.image,
        "ResolvConfPath": path("resolv.conf"),
        "HostnamePath": path("hostname"),
        "HostsPath": path("hosts"),
        "LogPath": if rec.host_config.log_config.kind == "none" { String::new() } else { c.log_path().display().to_string() },
        "Name": rec.name,
        "RestartCount": rec.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": rec.host_config,
        "GraphDriver": { "Name": "overlay2", "Data": { "MergedDir": path("rootfs") } },
        "Mounts": mount_points(&rec),
        "Config": rec.config,
        "NetworkSettings": {
            "Bridge": "", "SandboxID": "", "SandboxKey": "",
            "Ports": {}, "Networks": {},
            "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "MacAddress": ""
        },
    })
}

/// `POST /containers/prune`.
pub async fn prune(
    State(engine): State<Arc<Engine>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response<Body>, EngineError> {
    let containers = engine.containers().await?;
    let filters = parse_filters(q.get("filters"))?;
    let mut deleted = Vec::new();
    let mut reclaimed = 0u64;
    for c in containers.list() {
        if c.running() || c.record().state.restarting {
            continue;
        }
        let mut keep = false;
        for (k, v) in &filters {
            match k.as_str() {
                "label" => keep |= !matches_filter(&c, k, v)?,
                "until" => {
                    let until = parse_time(v).unwrap_or(f64::MAX);
                    keep |= unix_seconds(&c.record().created).unwrap_or(0) as f64 >= until;
                }
                _ => return Err(EngineError::bad_request(format!("invalid filter '{k}'"))),
            }
        }
        if keep {
            continue;
        }
        let size = containers.writable_size(&c);
        if containers.remove(&c, false, false).await.is_ok() {
            deleted.push(c.id.clone());
            reclaimed += size;
        }
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({ "ContainersDeleted": deleted, "SpaceReclaimed": reclaimed }),
    ))
}

/// Everything under `/containers/{id}/...`.
pub async fn by_id(
    State(engine): State<Arc<Engine>>,
    Path(rest): Path<String>,
    method: Method,
    Query(q): Query<HashMap<String, String>>,
    request: Request<Body>,
) -> Result<Response<Body>, EngineError> {
    let (name, action) = match rest.split_once('/') {
        Some((n, a)) => (n.to_owned(), a.to_owned()),
        None => (rest.clone(), String::new()),
    };
    let containers = engine.containers().await?;
    let c = containers.get(&name)?;
    match (method, action.as_str()) {
        (Method::GET, "json") => Ok(json_response(StatusCode::OK, &inspect(&c))),
        (Method::POST, "start") => Ok(match containers.start(&c).await? {
            true => empty(StatusCode::NO_CONTENT),
            false => empty(StatusCode::NOT_MODIFIED),
        }),
        (Method::POST, "stop") => {
            let t = q.get("t").and_then(|t| t.parse().ok());
            let signal = q.get("signal").filter(|s| !s.is_empty()).cloned();
            Ok(match containers.stop(&c, t, signal).await? {
                true => empty(StatusCode::NO_CONTENT),
                false => empty(StatusCode::NOT_MODIFIED),
            })
        }
        (Method::POST, "restart") => {
            let t = q.get("t").and_then(|t| t.parse().ok());
            let signal = q.get("signal").filter(|s| !s.is_empty()).cloned();
            containers.stop(&c, t, signal).await?;
            containers.start(&c).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (Method::POST, "kill") => {
            let sig = q
                .get("signal")
                .map(String::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or("SIGKILL");
            let sig = berth_runtime::ops::signal::parse_signal(sig)
                .map_err(|e| EngineError::bad_request(e.to_string()))?;
            containers.kill(&c, sig).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (Method::POST, "wait") => wait(containers, c, q.get("condition").cloned()),
        (Method::POST, "attach") => attach(c, &q, request),
        (Method::POST, "resize") => {
            let h = q.get("h").and_then(|v| v.parse().ok()).unwrap_or(0);
            let w = q.get("w").and_then(|v| v.parse().ok()).unwrap_or(0);
            if c.running() {
                containers
                    .shim(&c)
                    .resize(h, w, None)
                    .await
                    .map_err(EngineError::internal)?;
            }
            Ok(empty(StatusCode::OK))
        }
        (Method::GET, "logs") => logs(c, &q),
        (Method::GET, "top") => {
            let args = q.get("ps_args").map(String::as_str).unwrap_or("-ef");
            Ok(json_response(
                StatusCode::OK,
                &containers.top(&c, args).await?,
            ))
        }
        (Method::GET, "stats") => stats(containers, c, &q).await,
        (Method::GET, "changes") => Ok(json_response(StatusCode::OK, &containers.changes(&c)?)),
        (Method::GET, "export") => {
            let view = containers.view(&c)?;
            Ok(crate::images::api::tar_response(move |out| {
                super::observe::tar_path(&view.path, "/", out)
            }))
        }
        (Method::GET | Method::HEAD, "archive") => {
            let path = q
                .get("path")
                .cloned()
                .ok_or_else(|| EngineError::bad_request("no path given (path=)"))?;
            let view = containers.view(&c)?;
            let stat = super::observe::path_stat(&view.path, &path)?;
            let header = base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                stat.to_string(),
            );
            let mut r = if request.method() == Method::HEAD {
                empty(StatusCode::OK)
            } else {
                crate::images::api::tar_response(move |out| {
                    super::observe::tar_path(&view.path, &path, out)
                })
            };
            if let Ok(h) = HeaderValue::from_str(&header) {
                r.headers_mut().insert("x-docker-container-path-stat", h);
            }
            Ok(r)
        }
        (Method::PUT, "archive") => {
            let path = q
                .get("path")
                .cloned()
                .ok_or_else(|| EngineError::bad_request("no path given (path=)"))?;
            let view = containers.view(&c)?;
            let dir = super::observe::open_in(&view.path, &path, libc::O_PATH | libc::O_DIRECTORY)?;
            let reader = crate::images::api::blocking_reader(request.into_body());
            tokio::task::spawn_blocking(move || {
                let _view = view;
                let target = super::observe::fd_path(&dir);
                let opts = berth_image::layer::ApplyOptions {
                    compute_diff_id: false,
                    allow_devices: false,
                    ..Default::default()
                };
                berth_image::layer::apply_layer(reader, &target, &opts)
                    .map(drop)
                    .map_err(|e| EngineError::bad_request(format!("extract into {path}: {e}")))
            })
            .await
            .map_err(|e| EngineError::internal(e.to_string()))??;
            Ok(empty(StatusCode::OK))
        }
        (Method::POST, "exec") => {
            let body = axum::body::to_bytes(request.into_body(), 1 << 20)
                .await
                .map_err(|e| EngineError::bad_request(format!("read the body: {e}")))?;
            let config: super::exec::ExecConfig = serde_json::from_slice(&body)
                .map_err(|e| EngineError::bad_request(format!("invalid JSON body: {e}")))?;
            let id = containers.exec_create(&c, config)?;
            Ok(json_response(StatusCode::CREATED, &json!({ "Id": id })))
        }
        (Method::POST, "rename") => {
            let new = q.get("name").cloned().unwrap_or_default();
            containers.rename(&c, &new)?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (Method::POST, "update") => {
            let body = axum::body::to_bytes(request.into_body(), 1 << 20)
                .await
                .map_err(|e| EngineError::bad_request(format!("read the body: {e}")))?;
            let body: Value = serde_json::from_slice(&body)
                .map_err(|e| EngineError::bad_request(format!("invalid JSON body: {e}")))?;
            containers.update_resources(&c, &body).await?;
            Ok(json_response(StatusCode::OK, &json!({ "Warnings": [] })))
        }
        (Method::POST, "pause") => {
            containers.pause(&c, true).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (Method::POST, "unpause") => {
            containers.pause(&c, false).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (Method::DELETE, "") => {
            containers
                .remove(&c, flag(&q, "force"), flag(&q, "v"))
                .await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (m, a) => Err(EngineError::not_found(format!(
            "page not found: {m} /containers/{name}/{a}"
        ))),
    }
}

/// `POST /containers/{id}/wait`: the headers at once, the body at the exit
/// (the docker CLI sends this before `start` and waits for the headers).
fn wait(
    containers: Arc<Containers>,
    c: Arc<Container>,
    condition: Option<String>,
) -> Result<Response<Body>, EngineError> {
    let condition = condition
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "not-running".into());
    if !matches!(condition.as_str(), "not-running" | "next-exit" | "removed") {
        return Err(EngineError::bad_request(format!(
            "invalid condition: {condition:?}"
        )));
    }
    let mut rx = c.watch();
    let start_finished = c.record().state.finished_at;
    let body = async move {
        let _keep = containers;
        loop {
            let rec = c.record();
            let done = match condition.as_str() {
                "removed" => c.removed(),
                "next-exit" => rec.state.finished_at != start_finished && !rec.state.running,
                _ => !rec.state.running && !rec.state.restarting,
            };
            if done {
                // `Error` is for failures of the wait itself, never the
                // container's own (the CLI prints it as such).
                let body = json!({ "StatusCode": rec.state.exit_code, "Error": null });
                let mut bytes = serde_json::to_vec(&body).expect("JSON serialises");
                bytes.push(b'\n');
                return Ok::<_, std::io::Error>(bytes::Bytes::from(bytes));
            }
            if rx.changed().await.is_err() {
                // The container is gone with its channel.
                let body = json!({ "StatusCode": rec.state.exit_code, "Error": null });
                return Ok(bytes::Bytes::from(
                    serde_json::to_vec(&body).expect("JSON serialises"),
                ));
            }
        }
    };
    Ok(crate::images::api::stream_response(
        futures_util::stream::once(body),
        HeaderValue::from_static("application/json"),
    ))
}

fn stream_type(tty: bool) -> HeaderValue {
    HeaderValue::from_static(if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    })
}

/// `POST /containers/{id}/attach`: upgrades the connection and carries
/// the container's stdio on it.
fn attach(
    c: Arc<Container>,
    q: &HashMap<String, String>,
    mut request: Request<Body>,
) -> Result<Response<Body>, EngineError> {
    let keys = match q.get("detachKeys").filter(|k| !k.is_empty()) {
        Some(k) => parse_detach_keys(k).map_err(EngineError::bad_request)?,
        None => vec![16, 17],
    };
    let opts = AttachOptions {
        stdin: flag(q, "stdin"),
        stdout: flag(q, "stdout"),
        stderr: flag(q, "stderr"),
        detach_keys: keys,
    };
    let live = flag(q, "stream");
    let past = flag(q, "logs").then(|| LogOptions {
        stdout: opts.stdout,
        stderr: opts.stderr,
        ..LogOptions::default()
    });
    if !live && past.is_none() {
        return Ok(empty(StatusCode::OK));
    }
    let upgrade = hyper::upgrade::on(&mut request);
    // Subscribe now: output from here on reaches this client.
    let rx = c.subscribe();
    let tty = c.record().config.tty;
    tokio::spawn(async move {
        let upgraded = match upgrade.await {
            Ok(u) => hyper_util::rt::TokioIo::new(u),
            Err(e) => {
                tracing::debug!(error = %e, "attach upgrade failed");
                return;
            }
        };
        let (r, mut w) = tokio::io::split(upgraded);
        // `logs=1`: what the container wrote before, first.
        if let Some(o) = past {
            use tokio::io::AsyncWriteExt;
            let mut chunks = super::logs::stream(c.clone(), o);
            while let Some(Ok(chunk)) = chunks.recv().await {
                if w.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            if !live {
                let _ = w.shutdown().await;
                return;
            }
        }
        let io = tokio::io::join(r, w);
        super::stdio::session(io, c, rx, opts).await
    });
    Ok(super::stdio::upgraded_response(tty))
}

/// `GET /containers/{id}/logs`.
fn logs(c: Arc<Container>, q: &HashMap<String, String>) -> Result<Response<Body>, EngineError> {
    let rec = c.record();
    if rec.host_config.log_config.kind == "none" {
        return Err(EngineError {
            kind: ErrorKind::InvalidArgument,
            message: "configured logging driver does not support reading".into(),
        });
    }
    let o = LogOptions {
        stdout: flag(q, "stdout"),
        stderr: flag(q, "stderr"),
        follow: flag(q, "follow"),
        since: q.get("since").and_then(|s| parse_time(s)),
        until: q.get("until").and_then(|s| parse_time(s)),
        timestamps: flag(q, "timestamps"),
        tail: q
            .get("tail")
            .filter(|t| t.as_str() != "all" && !t.is_empty())
            .map(|t| {
                t.parse::<usize>()
                    .map_err(|_| EngineError::bad_request(format!("invalid tail {t:?}")))
            })
            .transpose()?,
    };
    if !o.stdout && !o.stderr {
        return Err(EngineError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    Ok(channel_response(
        super::logs::stream(c, o),
        stream_type(rec.config.tty),
    ))
}

/// Everything under `/exec/{id}/...`.
pub async fn exec_by_id(
    State(engine): State<Arc<Engine>>,
    Path(rest): Path<String>,
    method: Method,
    Query(q): Query<HashMap<String, String>>,
    mut request: Request<Body>,
) -> Result<Response<Body>, EngineError> {
    let (id, action) = rest.split_once('/').unwrap_or((rest.as_str(), ""));
    let containers = engine.containers().await?;
    let e = containers.execs.get(id)?;
    match (method, action) {
        (Method::GET, "json") => Ok(json_response(StatusCode::OK, &e.inspect())),
        (Method::POST, "resize") => {
            let h = q.get("h").and_then(|v| v.parse().ok()).unwrap_or(0);
            let w = q.get("w").and_then(|v| v.parse().ok()).unwrap_or(0);
            containers.exec_resize(&e, h, w).await?;
            Ok(empty(StatusCode::OK))
        }
        (Method::POST, "start") => {
            let upgrade = hyper::upgrade::on(&mut request);
            let body = axum::body::to_bytes(request.into_body(), 1 << 20)
                .await
                .map_err(|e| EngineError::bad_request(format!("read the body: {e}")))?;
            let start: Value = if body.is_empty() {
                json!({})
            } else {
                serde_json::from_slice(&body)
                    .map_err(|e| EngineError::bad_request(format!("invalid JSON body: {e}")))?
            };
            let tty = start["Tty"].as_bool().unwrap_or(e.config.tty);
            if start["Detach"].as_bool().unwrap_or(false) {
                containers.exec_start_detached(&e, tty).await?;
                return Ok(empty(StatusCode::OK));
            }
            let keys = match e.config.detach_keys.as_deref().filter(|k| !k.is_empty()) {
                Some(k) => parse_detach_keys(k).map_err(EngineError::bad_request)?,
                None => vec![16, 17],
            };
            // Upgrade first, as Docker does: a process that cannot start
            // is reported on the stream, and its exit code (126, 127) by
            // inspect, which is where the docker CLI looks.
            tokio::spawn(async move {
                let upgraded = match upgrade.await {
                    Ok(u) => hyper_util::rt::TokioIo::new(u),
                    Err(err) => {
                        tracing::debug!(error = %err, "exec upgrade failed");
                        return;
                    }
                };
                match containers.exec_start_attached(&e, tty).await {
                    Ok(shim) => super::exec::session(upgraded, e, shim, tty, keys).await,
                    Err(err) => super::exec::report_failure(upgraded, tty, &err.message).await,
                }
            });
            Ok(super::stdio::upgraded_response(tty))
        }
        (m, a) => Err(EngineError::not_found(format!(
            "page not found: {m} /exec/{id}/{a}"
        ))),
    }
}

/// `GET /containers/{id}/stats`: one sample with the one before it
/// (`stream=false`), or a sample a second while it runs.
async fn stats(
    containers: Arc<Containers>,
    c: Arc<Container>,
    q: &HashMap<String, String>,
) -> Result<Response<Body>, EngineError> {
    let stream = q
        .get("stream")
        .is_none_or(|v| matches!(v.as_str(), "1" | "true" | "True"));
    let one_shot = flag(q, "one-shot");
    let first = containers.stats_sample(&c).await?;
    if !stream {
        let mut sample = first.clone();
        if !one_shot && c.running() {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            sample = containers.stats_sample(&c).await?;
            sample["precpu_stats"] = first["cpu_stats"].clone();
            sample["preread"] = first["read"].clone();
        }
        return Ok(json_response(StatusCode::OK, &sample));
    }
    let body = futures_util::stream::unfold(
        (containers, c, Some(first), Value::Null, true),
        |(containers, c, next, prev, go)| async move {
            if !go {
                return None;
            }
            let mut sample = match next {
                Some(s) => s,
                None => {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    containers.stats_sample(&c).await.ok()?
                }
            };
            if !prev.is_null() {
                sample["precpu_stats"] = prev["cpu_stats"].clone();
                sample["preread"] = prev["read"].clone();
            }
            let mut line = serde_json::to_vec(&sample).expect("JSON serialises");
            line.push(b'\n');
            let running = c.running();
            Some((
                Ok::<_, std::io::Error>(bytes::Bytes::from(line)),
                (containers, c, None, sample, running),
            ))
        },
    );
    Ok(crate::images::api::stream_response(
        body,
        HeaderValue::from_static("application/json"),
    ))
}

/// `GET /events?since=&until=&filters=`: the kept events from `since`,
/// then live ones until `until` (or the client goes).
pub async fn events(
    State(engine): State<Arc<Engine>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response<Body>, EngineError> {
    let containers = engine.containers().await?;
    let filters = parse_filters(q.get("filters"))?;
    let nanos = |key: &str| -> Result<Option<i64>, EngineError> {
        match q.get(key).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => parse_time(v)
                .map(|t| Some((t * 1e9) as i64))
                .ok_or_else(|| EngineError::bad_request(format!("invalid {key} {v:?}"))),
        }
    };
    let (since, until) = (nanos("since")?, nanos("until")?);
    let (past, mut rx) = containers.events.subscribe(since);
    let (tx, out) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(64);
    tokio::spawn(async move {
        let line = |e: &crate::events::Event| {
            let mut l = serde_json::to_vec(&e.to_json()).expect("JSON serialises");
            l.push(b'\n');
            bytes::Bytes::from(l)
        };
        let before_until = |e: &crate::events::Event| until.is_none_or(|u| e.time_nano < u);
        for e in past
            .iter()
            .filter(|e| e.matches(&filters) && before_until(e))
        {
            if tx.send(Ok(line(e))).await.is_err() {
                return;
            }
        }
        let deadline = until.map(|u| {
            let now = berth_model::time::unix_now().as_nanos() as i64;
            tokio::time::Instant::now()
                + std::time::Duration::from_nanos(u.saturating_sub(now).max(0) as u64)
        });
        loop {
            let next = async {
                match deadline {
                    Some(d) => tokio::time::timeout_at(d, rx.recv()).await.ok(),
                    None => Some(rx.recv().await),
                }
            };
            tokio::select! {
                got = next => match got {
                    None => return,
                    Some(Ok(e)) => {
                        if e.matches(&filters) && before_until(&e) && tx.send(Ok(line(&e))).await.is_err() {
                            return;
                        }
                    }
                    Some(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
                    Some(Err(_)) => return,
                },
                () = tx.closed() => return,
            }
        }
    });
    Ok(channel_response(
        out,
        HeaderValue::from_static("application/json"),
    ))
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`.
pub async fn commit(
    State(engine): State<Arc<Engine>>,
    Query(q): Query<HashMap<String, String>>,
    uri: axum::http::Uri,
) -> Result<Response<Body>, EngineError> {
    let containers = engine.containers().await?;
    let name = q
        .get("container")
        .ok_or_else(|| EngineError::bad_request("no container given (container=)"))?;
    let c = containers.get(name)?;
    let reference = match q.get("repo").filter(|r| !r.is_empty()) {
        None => None,
        Some(repo) => {
            let tag = q
                .get("tag")
                .filter(|t| !t.is_empty())
                .map_or("latest", String::as_str);
            Some(
                berth_model::ImageRef::parse(&format!("{repo}:{tag}"))
                    .map_err(|e| EngineError::bad_request(e.to_string()))?,
            )
        }
    };
    let req = super::commit::CommitRequest {
        reference,
        comment: q.get("comment").filter(|c| !c.is_empty()).cloned(),
        author: q.get("author").filter(|a| !a.is_empty()).cloned(),
        changes: crate::images::api::repeated(uri.query(), "changes"),
        pause: q.get("pause").is_none_or(|p| p != "0" && p != "false"),
    };
    let id = containers.commit(&c, req).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({ "Id": id.to_string() }),
    ))
}
