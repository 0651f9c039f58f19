//! Pulling an image: the manifest (through an index to the platform's
//! image), its config, and its layers downloaded in parallel into the
//! content store, every byte verified against its digest.

use std::sync::Arc;

use berth_image::{ContentStore, Descriptor, ImageConfig, Manifest};
use berth_model::{Digest, ImageRef, Platform};
use futures_util::StreamExt;

use super::{ClientError, FetchedManifest, Progress, Repo, Result};

/// What a pull fetched.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The manifest or index the reference names (what gets tagged).
    pub target: Descriptor,
    /// The platform's image manifest.
    pub manifest: Descriptor,
    /// The image config.
    pub config: Descriptor,
    /// The layers, base first.
    pub layers: Vec<Descriptor>,
    /// The layers that were downloaded (the others were already stored).
    pub downloaded: Vec<Digest>,
}

/// Where a pull can send a layer's bytes as they arrive, to unpack it
/// while it downloads.
pub trait LayerSink: Send + Sync {
    /// A layer's download starts: a channel for its bytes, or `None`.
    fn begin(&self, layer: &Descriptor) -> Option<tokio::sync::mpsc::Sender<bytes::Bytes>>;
    /// The layer's blob is stored and verified; `whole` says whether every
    /// byte of it went through the channel (a resumed download does not).
    /// Called on a blocking thread; the layer's `Done` event follows.
    fn finish(&self, layer: &Descriptor, whole: bool);
}

/// Pulls `reference` for `platform` from `repo` into `store`, with at
/// most `concurrency` layer downloads at once. Blobs already in the store
/// are not downloaded again. With a `sink`, each layer's bytes also go to
/// it as they arrive.
pub async fn pull(
    repo: &Repo,
    store: &ContentStore,
    reference: &ImageRef,
    platform: &Platform,
    concurrency: usize,
    progress: Arc<dyn Fn(Progress) + Send + Sync>,
    sink: Option<Arc<dyn LayerSink>>,
) -> Result<Pulled> {
    let wanted = match reference.digest() {
        Some(d) => d.to_string(),
        None => reference.tag().unwrap_or("latest").to_owned(),
    };
    let top = repo.manifest(&wanted).await?;
    store_bytes(store, &top).await?;
    let parsed = parse(&top, &wanted)?;
    let (image, manifest) = match parsed {
        Manifest::Image(m) => (top.clone(), m),
        Manifest::Index(index) => {
            let Some(entry) = index.select(platform) else {
                let available: Vec<String> = index
                    .manifests
                    .iter()
                    .filter(|d| !d.is_attestation())
                    .filter_map(|d| d.platform.as_ref().map(ToString::to_string))
                    .collect();
                return Err(ClientError::NotFound {
                    registry: repo.registry().to_owned(),
                    repository: repo.name().to_owned(),
                    what: format!(
                        "a manifest for {platform} in {wanted} (it has {})",
                        if available.is_empty() {
                            "no platforms".to_owned()
                        } else {
                            available.join(", ")
                        }
                    ),
                });
            };
            let child = repo.manifest(&entry.digest.to_string()).await?;
            store_bytes(store, &child).await?;
            match parse(&child, &entry.digest.to_string())? {
                Manifest::Image(m) => (child, m),
                Manifest::Index(_) => {
                    return Err(ClientError::Invalid(format!(
                        "{wanted}: the index entry for {platform} is another index; berth follows one level"
                    )));
                }
            }
        }
    };

    // The config first: it is small and says whether this is an image.
    let noop: &(dyn Fn(u64) + Send + Sync) = &|_| {};
    if !has_blob(store, &manifest.config.digest).await? {
        repo.fetch_blob(&manifest.config, store, noop).await?;
    }
    if berth_image::manifest::media_types::is_image_manifest(&image.media_type) {
        let bytes = read_blob(store, &manifest.config.digest).await?;
        let config = ImageConfig::from_slice(&bytes)
            .map_err(|e| ClientError::Invalid(format!("config of {wanted}: {e}")))?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(ClientError::Invalid(format!(
                "{wanted}: the config lists {} layers and the manifest {}",
                config.rootfs.diff_ids.len(),
                manifest.layers.len()
            )));
        }
        progress(Progress::Resolved {
            layers: manifest.layers.clone(),
            diff_ids: config.rootfs.diff_ids.clone(),
        });
    }

    let mut missing = Vec::new();
    for layer in &manifest.layers {
        if has_blob(store, &layer.digest).await? {
            progress(Progress::Exists {
                digest: layer.digest.clone(),
            });
        } else {
            progress(Progress::Waiting {
                digest: layer.digest.clone(),
                size: layer.size,
            });
            missing.push(layer.clone());
        }
    }
    let downloaded = missing.iter().map(|l| l.digest.clone()).collect();
    let downloads = futures_util::stream::iter(missing.into_iter().map(|layer| {
        let progress = progress.clone();
        let sink = sink.clone();
        async move {
            let digest = layer.digest.clone();
            let total = layer.size;
            let report = {
                let progress = progress.clone();
                let digest = digest.clone();
                move |current| {
                    progress(Progress::Transferring {
                        digest: digest.clone(),
                        current,
                        total,
                    })
                }
            };
            let tee = sink.as_ref().and_then(|s| s.begin(&layer));
            let whole = repo.fetch_blob_tee(&layer, store, &report, tee).await?;
            if let Some(sink) = sink.clone() {
                let layer = layer.clone();
                tokio::task::spawn_blocking(move || sink.finish(&layer, whole))
                    .await
                    .expect("the sink does not panic");
            }
            progress(Progress::Done { digest });
            Ok::<(), ClientError>(())
        }
    }))
    .buffer_unordered(concurrency.max(1));
    let results: Vec<Result<()>> = downloads.collect().await;
    results.into_iter().collect::<Result<Vec<()>>>()?;

    Ok(Pulled {
        target: top.descriptor(),
        manifest: image.descriptor(),
        config: manifest.config.clone(),
        layers: manifest.layers.clone(),
        downloaded,
    })
}

fn parse(fetched: &FetchedManifest, reference: &str) -> Result<Manifest> {
    Manifest::from_slice(&fetched.bytes, Some(&fetched.media_type))
        .map_err(|e| ClientError::Invalid(format!("manifest {reference}: {e}")))
}

/// Whether `store` holds `digest`.
pub(super) async fn has_blob(store: &ContentStore, digest: &Digest) -> Result<bool> {
    let (store, digest) = (store.clone(), digest.clone());
    tokio::task::spawn_blocking(move || store.info(&digest))
        .await
        .expect("stat does not panic")
        .map(|i| i.is_some())
        .map_err(ClientError::Content)
}

/// The bytes of a (small) stored blob: a manifest or config.
pub(super) async fn read_blob(store: &ContentStore, digest: &Digest) -> Result<Vec<u8>> {
    let (store, digest) = (store.clone(), digest.clone());
    tokio::task::spawn_blocking(move || store.read_document(&digest))
        .await
        .expect("read does not panic")
        .map_err(ClientError::Content)
}

/// Stores a fetched manifest, verified.
async fn store_bytes(store: &ContentStore, fetched: &FetchedManifest) -> Result<()> {
    let store = store.clone();
    let digest = fetched.digest.clone();
    let bytes = fetched.bytes.clone();
    tokio::task::spawn_blocking(move || {
        if store.info(&digest)?.is_some() {
            return Ok(());
        }
        // Unique per call: two pulls of one image may store it at once.
        let reference = format!("manifest-{}-{}", digest.hex(), uuid::Uuid::new_v4());
        let mut writer = store.writer(&reference, Some((digest.clone(), bytes.len() as u64)))?;
        std::io::Write::write_all(&mut writer, &bytes).map_err(|e| {
            berth_image::ContentError::Io {
                op: "write",
                path: digest.to_string().into(),
                source: e,
            }
        })?;
        writer.commit(Some((digest, bytes.len() as u64))).map(drop)
    })
    .await
    .expect("store does not panic")
    .map_err(ClientError::Content)
}
