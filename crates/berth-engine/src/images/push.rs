//! Pushing an image from the data root, reporting as Docker does.

use std::sync::Arc;

use berth_image::Descriptor;
use berth_model::ImageRef;
use berth_registry::client::push::push as send;
use berth_registry::client::{Credentials, Progress};

use super::ImageService;
use super::pull::{TransferEvent, TransferEvents, layer_event, orderly};

/// Blob uploads at once (Docker's default is 5). Eight measured no faster
/// than six against distribution here: the server's hashing is the limit.
pub const UPLOAD_CONCURRENCY: usize = 6;

/// Pushes the image `reference` names to its registry, with
/// `credentials` instead of the stored ones when given. Reports Docker's
/// `The push refers to repository`, per-layer statuses, and the closing
/// `TAG: digest: D size: N`; returns what was pushed under the tag.
pub async fn push(
    images: &ImageService,
    reference: &ImageRef,
    credentials: Option<Credentials>,
    events: TransferEvents,
) -> Result<Descriptor, String> {
    let events = orderly(events);
    let Some(record) = images.images.get(reference) else {
        return Err(format!(
            "An image does not exist locally with the tag: {}",
            reference.familiar()
        ));
    };
    let tag = super::tag_or_digest(reference);
    let (_, manifest) = images.resolve(&record.target)?;
    let layers: Vec<_> = manifest.layers.iter().map(|l| l.digest.clone()).collect();
    // Other repositories of the same registry holding this image are where
    // its blobs can be mounted from.
    let mount_from: Vec<String> = images
        .images
        .references_to(&record.target.digest)
        .into_iter()
        .filter(|r| r.domain() == reference.domain() && r.path() != reference.path())
        .map(|r| r.path().to_owned())
        .collect();
    events(TransferEvent::Status {
        id: None,
        text: format!("The push refers to repository [{}]", reference.repository()),
    });
    for layer in layers.iter().rev() {
        events(layer_event(layer, "Preparing", None));
    }
    let progress: Arc<dyn Fn(Progress) + Send + Sync> = {
        let events = events.clone();
        Arc::new(move |event: Progress| {
            let (digest, status, moved) = match &event {
                Progress::Waiting { digest, .. } => (digest, "Waiting".to_owned(), None),
                Progress::Exists { digest } => (digest, "Layer already exists".to_owned(), None),
                Progress::Transferring {
                    digest,
                    current,
                    total,
                } => (digest, "Pushing".to_owned(), Some((*current, *total))),
                Progress::Mounted { digest, from } => {
                    (digest, format!("Mounted from {from}"), None)
                }
                Progress::Done { digest } => (digest, "Pushed".to_owned(), None),
                Progress::Resolved { .. } => return,
            };
            // The config is pushed too, but Docker shows layers only.
            if layers.contains(digest) {
                events(layer_event(digest, &status, moved));
            }
        })
    };
    let client = images.client_with(credentials);
    let repo = client
        .repo(reference.domain(), reference.path())
        .map_err(|e| e.to_string())?;
    let pushed = send(
        &repo,
        &images.content,
        &record.target,
        &tag,
        &mount_from,
        UPLOAD_CONCURRENCY,
        progress,
    )
    .await
    .map_err(|e| e.to_string())?;
    events(TransferEvent::Status {
        id: None,
        text: format!(
            "{tag}: digest: {} size: {}",
            pushed.target.digest, pushed.target.size
        ),
    });
    Ok(pushed.target)
}
