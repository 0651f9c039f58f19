//! `berth registry gc`: removes blobs no manifest references.
//!
//! Mark: every manifest any repository holds, and the config, layers and
//! child manifests it names. Sweep: every other blob, unless a repository
//! linked it within the grace period: a push uploads its blobs before its
//! manifest, so a blob that was just linked is a push in flight, not
//! garbage. Links to swept blobs are removed with them, and upload sessions
//! older than a day are dropped.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use berth_image::Manifest;
use berth_model::Digest;

use super::ApiError;
use super::storage::Storage;

/// How gc runs.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Report what would be removed, removing nothing.
    pub dry_run: bool,
    /// Blobs linked more recently than this are kept.
    pub grace: Duration,
    /// Upload sessions older than this are dropped.
    pub upload_max_age: Duration,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            dry_run: false,
            grace: Duration::from_secs(3600),
            upload_max_age: Duration::from_secs(24 * 3600),
        }
    }
}

/// What gc removed (or would remove).
#[derive(Debug, Default)]
pub struct GcReport {
    /// Blobs removed, with their sizes.
    pub blobs: Vec<(Digest, u64)>,
    /// Upload sessions dropped.
    pub uploads: usize,
    /// Blobs (manifests included) that manifests reference, kept.
    pub referenced: usize,
}

impl GcReport {
    /// The bytes the removed blobs held.
    pub fn bytes(&self) -> u64 {
        self.blobs.iter().map(|(_, s)| s).sum()
    }
}

/// Collects the garbage of the registry under `root`.
pub fn collect(root: &Path, options: &GcOptions) -> Result<GcReport, ApiError> {
    let storage = Storage::open(root)?;
    let content = storage.content();
    let mut marked: HashSet<Digest> = HashSet::new();
    let manifests = storage.all_manifests()?;
    for (_, digest, media_type) in &manifests {
        if !marked.insert(digest.clone()) {
            continue;
        }
        let Ok(bytes) = content.read_document(digest) else {
            continue;
        };
        match Manifest::from_slice(&bytes, Some(media_type)) {
            Ok(Manifest::Image(m)) => {
                marked.insert(m.config.digest.clone());
                marked.extend(m.layers.iter().map(|l| l.digest.clone()));
            }
            Ok(Manifest::Index(i)) => marked.extend(i.manifests.iter().map(|m| m.digest.clone())),
            // A manifest berth cannot read keeps only itself.
            Err(_) => {}
        }
    }

    let now = SystemTime::now();
    let repos = storage.catalog()?;
    let mut recent: HashSet<Digest> = HashSet::new();
    let mut links: Vec<(String, Digest)> = Vec::new();
    for repo in &repos {
        for digest in storage.linked_blobs(repo)? {
            if storage.link_age(repo, &digest, now)? < options.grace {
                recent.insert(digest.clone());
            }
            links.push((repo.clone(), digest));
        }
    }

    let mut report = GcReport {
        referenced: marked.len(),
        ..GcReport::default()
    };
    let garbage: HashSet<Digest> = content
        .list()
        .map_err(ApiError::content)?
        .into_iter()
        .filter(|(d, _)| !marked.contains(d) && !recent.contains(d))
        .map(|(d, size)| {
            report.blobs.push((d.clone(), size));
            d
        })
        .collect();
    for repo in &repos {
        report.uploads +=
            storage.stale_uploads(repo, now, options.upload_max_age, options.dry_run)?;
    }
    if options.dry_run {
        return Ok(report);
    }
    // A push may have started using a blob since the mark: look again just
    // before removing anything.
    let mut garbage = garbage;
    for (repo, digest) in &links {
        if garbage.contains(digest)
            && storage.link_age(repo, digest, SystemTime::now())? < options.grace
        {
            garbage.remove(digest);
            report.blobs.retain(|(d, _)| d != digest);
        }
    }
    for (repo, digest) in links.iter().filter(|(_, d)| garbage.contains(d)) {
        storage.unlink_blob(repo, digest)?;
    }
    for digest in &garbage {
        match content.delete(digest) {
            Ok(()) | Err(berth_image::ContentError::NotFound { .. }) => {}
            Err(e) => return Err(ApiError::content(e)),
        }
    }
    Ok(report)
}

/// How long ago `path` was modified.
pub(super) fn age(path: &Path, now: SystemTime) -> Result<Duration, ApiError> {
    let modified = fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(ApiError::io)?;
    Ok(now.duration_since(modified).unwrap_or_default())
}
