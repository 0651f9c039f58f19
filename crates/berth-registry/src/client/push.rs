//! Pushing an image: blobs the registry lacks (mounted from a sibling
//! repository where possible, uploaded otherwise, in parallel), then the
//! manifests, the tagged one last, so a reader never sees a manifest whose
//! blobs are missing.

use std::sync::Arc;

use berth_image::{ContentStore, Descriptor, Manifest};
use futures_util::StreamExt;

use super::pull::{has_blob, read_blob};
use super::{ClientError, Progress, Repo, Result};

/// What a push sent.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The manifest (or index) pushed under the tag.
    pub target: Descriptor,
}

/// Pushes the image `target` (a manifest or an index in `store`) to `repo`
/// under `tag`, trying to mount blobs from the repositories in
/// `mount_from` (on the same registry) before uploading them, with at most
/// `concurrency` uploads at once.
///
/// An index whose children are not all in the store (an image pulled for
/// one platform) is pushed as the one image manifest it has.
pub async fn push(
    repo: &Repo,
    store: &ContentStore,
    target: &Descriptor,
    tag: &str,
    mount_from: &[String],
    concurrency: usize,
    progress: Arc<dyn Fn(Progress) + Send + Sync>,
) -> Result<Pushed> {
    let bytes = read_blob(store, &target.digest).await?;
    let manifest = Manifest::from_slice(&bytes, Some(&target.media_type))
        .map_err(|e| ClientError::Invalid(format!("manifest {}: {e}", target.digest)))?;
    let (images, top) = match manifest {
        Manifest::Image(_) => (vec![target.clone()], target.clone()),
        Manifest::Index(index) => {
            let mut present = Vec::new();
            for entry in &index.manifests {
                if has_blob(store, &entry.digest).await? {
                    present.push(entry.clone());
                }
            }
            if present.len() == index.manifests.len() {
                (present, target.clone())
            } else if let [only] = present.as_slice() {
                (vec![only.clone()], only.clone())
            } else {
                return Err(ClientError::Invalid(format!(
                    "{} lists {} manifests and only {} are stored; pull the others first",
                    target.digest,
                    index.manifests.len(),
                    present.len()
                )));
            }
        }
    };

    // Every blob of every image, once.
    let mut blobs: Vec<Descriptor> = Vec::new();
    let mut image_docs = Vec::new();
    for image in &images {
        let bytes = read_blob(store, &image.digest).await?;
        let Manifest::Image(m) = Manifest::from_slice(&bytes, Some(&image.media_type))
            .map_err(|e| ClientError::Invalid(format!("manifest {}: {e}", image.digest)))?
        else {
            return Err(ClientError::Invalid(format!(
                "{} is a nested index; berth pushes one level",
                image.digest
            )));
        };
        for blob in std::iter::once(&m.config).chain(&m.layers) {
            if !blobs.iter().any(|b| b.digest == blob.digest) {
                blobs.push(blob.clone());
            }
        }
        image_docs.push((image.clone(), bytes));
    }

    let uploads = futures_util::stream::iter(blobs.into_iter().map(|blob| {
        let progress = progress.clone();
        async move { push_blob(repo, store, &blob, mount_from, progress).await }
    }))
    .buffer_unordered(concurrency.max(1));
    let results: Vec<Result<()>> = uploads.collect().await;
    results.into_iter().collect::<Result<Vec<()>>>()?;

    for (image, bytes) in &image_docs {
        let reference = if image.digest == top.digest {
            tag.to_owned()
        } else {
            image.digest.to_string()
        };
        repo.put_manifest(&reference, &image.media_type, bytes)
            .await?;
    }
    if !image_docs
        .iter()
        .any(|(image, _)| image.digest == top.digest)
    {
        // The index goes last, under the tag.
        let bytes = read_blob(store, &top.digest).await?;
        repo.put_manifest(tag, &top.media_type, &bytes).await?;
    }
    Ok(Pushed { target: top })
}

async fn push_blob(
    repo: &Repo,
    store: &ContentStore,
    blob: &Descriptor,
    mount_from: &[String],
    progress: Arc<dyn Fn(Progress) + Send + Sync>,
) -> Result<()> {
    let digest = blob.digest.clone();
    progress(Progress::Waiting {
        digest: digest.clone(),
        size: blob.size,
    });
    if repo.blob_size(&digest).await?.is_some() {
        progress(Progress::Exists { digest });
        return Ok(());
    }
    // One mount attempt: a registry that cannot mount opens an upload
    // session instead, which the upload then uses.
    let mut session = None;
    if let Some(from) = mount_from.iter().find(|f| *f != repo.name()) {
        match repo.mount_blob(&digest, from).await? {
            None => {
                progress(Progress::Mounted {
                    digest,
                    from: from.clone(),
                });
                return Ok(());
            }
            Some(location) => session = Some(location),
        }
    }
    let location = match session {
        Some(l) => l,
        None => repo.start_upload().await?,
    };
    let total = blob.size;
    let report: Arc<dyn Fn(u64) + Send + Sync> = {
        let progress = progress.clone();
        let digest = digest.clone();
        Arc::new(move |current| {
            progress(Progress::Transferring {
                digest: digest.clone(),
                current,
                total,
            })
        })
    };
    repo.upload_blob(&location, blob, store, report).await?;
    progress(Progress::Done { digest });
    Ok(())
}
