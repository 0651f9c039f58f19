//! The volume endpoints: `GET /volumes`, `POST /volumes/create`,
//! `GET|DELETE /volumes/{name}`, `POST /volumes/prune`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::images::api::{json_response, parse_filters, passes};
use crate::volumes::Volume;
use crate::{Engine, EngineError};

/// `POST /volumes/create`'s body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateVolume {
    /// The name (random when empty).
    pub name: Option<String>,
    /// `local`.
    pub driver: Option<String>,
    /// Driver options.
    pub driver_opts: Option<BTreeMap<String, String>>,
    /// Labels.
    pub labels: Option<BTreeMap<String, String>>,
}

fn matches(v: &Volume, users: usize, key: &str, value: &str) -> Result<bool, EngineError> {
    Ok(match key {
        "name" => v.name.contains(value),
        "driver" => v.driver == value,
        "dangling" => (users == 0) == matches!(value, "true" | "1"),
        "label" => match value.split_once('=') {
            Some((k, val)) => v.labels.get(k).is_some_and(|x| x == val),
            None => v.labels.contains_key(value),
        },
        _ => return Err(EngineError::bad_request(format!("invalid filter '{key}'"))),
    })
}

/// `GET /volumes`.
pub async fn list(
    State(engine): State<Arc<Engine>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response<Body>, EngineError> {
    let containers = engine.containers().await?;
    let filters = parse_filters(q.get("filters"))?;
    let mut out = Vec::new();
    for v in containers.volumes.list() {
        let users = containers.volume_users(&v.name).len();
        if passes(&filters, |k, val| matches(&v, users, k, val))? {
            out.push(v.to_json(&containers.volumes.data(&v.name)));
        }
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({ "Volumes": out, "Warnings": [] }),
    ))
}

/// `POST /volumes/create`.
pub async fn create(
    State(engine): State<Arc<Engine>>,
    body: axum::body::Bytes,
) -> Result<Response<Body>, EngineError> {
    let req: CreateVolume = if body.is_empty() {
        CreateVolume::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| EngineError::bad_request(format!("invalid JSON body: {e}")))?
    };
    let containers = engine.containers().await?;
    let existed = req
        .name
        .as_deref()
        .is_some_and(|n| containers.volumes.get(n).is_ok());
    let v = containers.volumes.create(
        req.name.as_deref(),
        req.driver.as_deref(),
        req.driver_opts.unwrap_or_default(),
        req.labels.unwrap_or_default(),
    )?;
    if !existed {
        let attrs = BTreeMap::from([("driver".to_owned(), v.driver.clone())]);
        containers
            .events
            .emit("volume", "create", v.name.clone(), attrs);
    }
    Ok(json_response(
        StatusCode::CREATED,
        &v.to_json(&containers.volumes.data(&v.name)),
    ))
}

/// `GET /volumes/{name}`.
pub async fn inspect(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
) -> Result<Response<Body>, EngineError> {
    let containers = engine.containers().await?;
    let v = containers.volumes.get(&name)?;
    Ok(json_response(
        StatusCode::OK,
        &v.to_json(&containers.volumes.data(&v.name)),
    ))
}

/// `DELETE /volumes/{name}`.
pub async fn remove(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response<Body>, EngineError> {
    let containers = engine.containers().await?;
    let force = q.get("force").is_some_and(|v| v == "1" || v == "true");
    let users = containers.volume_users(&name);
    containers.volumes.remove(&name, &users, force)?;
    containers
        .events
        .emit("volume", "destroy", name.clone(), BTreeMap::new());
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    Ok(r)
}

/// `POST /volumes/prune`: unused anonymous volumes, or every unused one
/// with the filter `all=true`.
pub async fn prune(
    State(engine): State<Arc<Engine>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response<Body>, EngineError> {
    let containers = engine.containers().await?;
    let filters = parse_filters(q.get("filters"))?;
    let all = filters
        .iter()
        .any(|(k, v)| k == "all" && matches!(v.as_str(), "true" | "1"));
    let mut deleted = Vec::new();
    let mut reclaimed = 0u64;
    for v in containers.volumes.list() {
        if !all && !v.anonymous() {
            continue;
        }
        let users = containers.volume_users(&v.name);
        if !users.is_empty() {
            continue;
        }
        let mut keep = false;
        for (k, val) in &filters {
            if k != "all" {
                keep |= !matches(&v, 0, k, val)?;
            }
        }
        if keep {
            continue;
        }
        let size = dir_size(&containers.volumes.data(&v.name));
        if containers.volumes.remove(&v.name, &users, false).is_ok() {
            reclaimed += size;
            deleted.push(v.name);
        }
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({ "VolumesDeleted": deleted, "SpaceReclaimed": reclaimed }),
    ))
}

fn dir_size(path: &std::path::Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| dir_size(&e.path()))
        .sum()
}
