//! The volume endpoints: `GET /volumes`, `POST /volumes/create`,
//! `GET|DELETE /volumes/{name}`, `POST /volumes/prune`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

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

/// The bytes of the files under `path` (links not followed).
pub fn dir_size(path: &std::path::Path) -> u64 {
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

/// `GET /system/df`: images, containers and volumes with their sizes and
/// users.
pub async fn system_df(State(engine): State<Arc<Engine>>) -> Result<Response<Body>, EngineError> {
    let containers = engine.containers().await?;
    let images = engine.image_service().await?;
    let list = containers.list();
    let records: Vec<crate::containers::Record> = list.iter().map(|c| c.record()).collect();
    let volumes = containers.volumes.list();
    let users: Vec<usize> = volumes
        .iter()
        .map(|v| containers.volume_users(&v.name).len())
        .collect();
    let vol_dirs: Vec<std::path::PathBuf> = volumes
        .iter()
        .map(|v| containers.volumes.data(&v.name))
        .collect();
    let c2 = containers.clone();
    let body = tokio::task::spawn_blocking(move || -> Result<Value, EngineError> {
        let mut image_list = crate::images::api::summaries(&images, &[])?;
        let mut layers = 0i64;
        let mut sizes: BTreeMap<String, i64> = BTreeMap::new();
        for i in &mut image_list {
            let id = i["Id"].as_str().unwrap_or_default().to_owned();
            let n = records.iter().filter(|r| r.image == id).count();
            i["Containers"] = json!(n);
            // No layers are shared between image IDs berth lists apart.
            i["SharedSize"] = json!(0);
            let size = i["Size"].as_i64().unwrap_or(0);
            layers += size;
            sizes.insert(id, size);
        }
        let containers_json: Vec<Value> = list
            .iter()
            .zip(&records)
            .map(|(c, r)| {
                let rw = c2.writable_size(c) as i64;
                json!({
                    "Id": r.id, "Names": [r.name], "Image": r.config.image, "ImageID": r.image,
                    "Command": std::iter::once(r.path.clone()).chain(r.args.iter().cloned()).collect::<Vec<_>>().join(" "),
                    "Created": crate::images::unix_seconds(&r.created).unwrap_or(0),
                    "State": r.state.status, "Status": crate::containers::api::status_text(c),
                    "SizeRw": rw, "SizeRootFs": rw + sizes.get(&r.image).copied().unwrap_or(0),
                    "Labels": r.config.labels, "Mounts": r.berth_volumes,
                })
            })
            .collect();
        let volumes_json: Vec<Value> = volumes
            .iter()
            .zip(users)
            .zip(&vol_dirs)
            .map(|((v, n), dir)| {
                let mut j = v.to_json(dir);
                j["UsageData"] = json!({ "Size": dir_size(dir), "RefCount": n });
                j
            })
            .collect();
        Ok(json!({
            "LayersSize": layers,
            "Images": image_list,
            "Containers": containers_json,
            "Volumes": volumes_json,
            "BuildCache": crate::build_cache::records(&images),
        }))
    })
    .await
    .map_err(|e| EngineError::internal(e.to_string()))??;
    Ok(json_response(StatusCode::OK, &body))
}

/// `POST /networks/prune`: berth has no user networks yet, so nothing
/// goes (the docker CLI's `system prune` asks).
pub async fn nothing_to_prune() -> Response<Body> {
    json_response(StatusCode::OK, &json!({ "NetworksDeleted": [] }))
}
