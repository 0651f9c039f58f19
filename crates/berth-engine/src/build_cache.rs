//! The build cache seen as Docker's: `/system/df`'s `BuildCache` records,
//! and `POST /build/prune` (`docker builder prune`, `system prune`).
//!
//! A cache entry (`builds/cache/<key>`) names the image a build step made;
//! the blobs it holds are those that no stored image reaches. Pruning
//! removes entries (without `all`, those whose image is not also a named
//! image's), then the blobs only they reached, the cache mounts, and the
//! snapshots nothing needs. Builds and prunes exclude each other (the
//! engine's build gate), so a prune never takes a layer from under a
//! running build.

use std::collections::HashSet;
use std::path::PathBuf;

use berth_image::gc::reachable;
use berth_image::{Descriptor, ImageConfig, ImageManifest, Manifest};
use berth_model::Digest;
use serde_json::{Value, json};

use crate::images::ImageService;

/// One cache entry and what it made.
struct Entry {
    key: String,
    path: PathBuf,
    target: Descriptor,
    manifest: Option<ImageManifest>,
    config: Option<ImageConfig>,
}

fn cache_dir(images: &ImageService) -> PathBuf {
    images.root.join("builds").join("cache")
}

fn entries(images: &ImageService) -> Vec<Entry> {
    let Ok(dir) = std::fs::read_dir(cache_dir(images)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in dir.flatten() {
        let Ok(bytes) = std::fs::read(e.path()) else {
            continue;
        };
        let Ok(target) = serde_json::from_slice::<Descriptor>(&bytes) else {
            continue;
        };
        let manifest = images
            .read_blob(&target.digest)
            .ok()
            .and_then(|b| Manifest::from_slice(&b, Some(&target.media_type)).ok())
            .and_then(|m| match m {
                Manifest::Image(m) => Some(m),
                Manifest::Index(_) => None,
            });
        let config = manifest
            .as_ref()
            .and_then(|m| images.read_blob(&m.config.digest).ok())
            .and_then(|b| ImageConfig::from_slice(&b).ok());
        out.push(Entry {
            key: e.file_name().to_string_lossy().into_owned(),
            path: e.path(),
            target,
            manifest,
            config,
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

/// The images the cache entries name (garbage collection's other roots).
pub fn roots(images: &ImageService) -> Vec<Descriptor> {
    let Ok(dir) = std::fs::read_dir(cache_dir(images)) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice(&b).ok())
        .collect()
}

/// What the stored images reach.
fn in_use(images: &ImageService) -> (Vec<Descriptor>, HashSet<Digest>) {
    let kept = images.targets();
    let reached = reachable(&images.content, &kept).unwrap_or_default();
    (kept, reached)
}

fn blob_size(images: &ImageService, d: &Digest) -> u64 {
    images
        .content
        .info(d)
        .ok()
        .flatten()
        .map(|i| i.size)
        .unwrap_or(0)
}

/// The step's own layer (the last, when the step added one).
fn own_layer(e: &Entry) -> Option<&Digest> {
    let history = e.config.as_ref()?.history.as_ref()?;
    let last = history.last()?;
    if last.empty_layer {
        return None;
    }
    e.manifest.as_ref()?.layers.last().map(|l| &l.digest)
}

/// `/system/df`'s `BuildCache`: one record per cache entry.
pub fn records(images: &ImageService) -> Vec<Value> {
    let (_, reached) = in_use(images);
    entries(images)
        .iter()
        .map(|e| {
            let layer = own_layer(e);
            let size = layer.map(|l| blob_size(images, l)).unwrap_or(0);
            let shared = layer.is_some_and(|l| reached.contains(l));
            let config = e.config.as_ref();
            let created = config.and_then(|c| c.created.clone()).unwrap_or_default();
            let description = config
                .and_then(|c| c.history.as_ref())
                .and_then(|h| h.last())
                .and_then(|h| h.created_by.clone())
                .unwrap_or_default();
            json!({
                "ID": &e.key[..e.key.len().min(25)],
                "Parent": "",
                "Type": "regular",
                "Description": description,
                "InUse": false,
                "Shared": shared || reached.contains(&e.target.digest),
                "Size": size,
                "CreatedAt": created,
                "LastUsedAt": created,
                "UsageCount": 1,
            })
        })
        .collect()
}

/// Removes cache entries (all, or those whose image no name keeps), the
/// blobs only they held, the cache mounts and unneeded snapshots: the ids
/// removed and the bytes freed.
pub fn prune(images: &ImageService, all: bool) -> Result<(Vec<String>, u64), String> {
    let (kept, reached) = in_use(images);
    let mut removed_roots = Vec::new();
    let mut ids = Vec::new();
    for e in entries(images) {
        if !all && reached.contains(&e.target.digest) {
            continue;
        }
        std::fs::remove_file(&e.path)
            .map_err(|err| format!("remove {}: {err}", e.path.display()))?;
        ids.push(e.key[..e.key.len().min(25)].to_owned());
        removed_roots.push(e.target);
    }
    let doomed: Vec<Digest> = reachable(&images.content, &removed_roots)
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|d| !reached.contains(d))
        .collect();
    let mut freed: u64 = doomed.iter().map(|d| blob_size(images, d)).sum();
    berth_image::gc::remove_unreachable(&images.content, &removed_roots, &kept)
        .map_err(|e| e.to_string())?;
    let mounts = images.root.join("builds").join("cache-mounts");
    if all || !ids.is_empty() {
        freed += crate::containers::volume_api::dir_size(&mounts);
        let _ = std::fs::remove_dir_all(&mounts);
    }
    images.collect_snapshots(&kept)?;
    Ok((ids, freed))
}
