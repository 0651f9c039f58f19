//! Pulling an image into the data root, reporting as Docker does: the
//! transfer (berth-registry), layers unpacked as they arrive, and the
//! reference recorded last.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_image::Descriptor;
use berth_image::snapshot::Snapshotter;
use berth_model::{Digest, ImageRef, Platform};
use berth_registry::client::Progress;
use berth_registry::client::pull::{LayerSink, pull as fetch};

use super::ImageService;

/// Layer downloads at once (Docker's default is 3; a registry on a fast
/// link is limited by round trips, so berth uses more).
pub const CONCURRENCY: usize = 6;

/// What a pull reports: Docker's progress messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferEvent {
    /// A line about the whole pull, with Docker's `id` where it has one
    /// (`v1` + `Pulling from team/busybox`, `Digest: ...`).
    Status {
        /// The message's `id`.
        id: Option<String>,
        /// The text.
        text: String,
    },
    /// A layer's status, with bytes so far and in all while downloading.
    Layer {
        /// The layer's short (12-hex) id.
        id: String,
        /// `Pulling fs layer`, `Downloading`, `Pull complete`, ...
        status: String,
        /// `(current, total)` while downloading.
        progress: Option<(u64, u64)>,
    },
}

/// Where pull events go.
pub type TransferEvents = Arc<dyn Fn(TransferEvent) + Send + Sync>;

/// The 12-hex short form of a digest, as Docker names layers.
pub fn short(digest: &Digest) -> String {
    digest.hex().chars().take(12).collect()
}

pub(super) fn layer_event(
    digest: &Digest,
    status: &str,
    progress: Option<(u64, u64)>,
) -> TransferEvent {
    TransferEvent::Layer {
        id: short(digest),
        status: status.to_owned(),
        progress,
    }
}

/// `events`, minus what would mislead: nothing about a layer after its
/// `Pull complete`, and download progress only when it moved by a
/// percent (a registry's chunks would otherwise flood a slow client).
pub(super) fn orderly(events: TransferEvents) -> TransferEvents {
    let state: Mutex<HashMap<String, (bool, u64)>> = Mutex::new(HashMap::new());
    Arc::new(move |event: TransferEvent| {
        if let TransferEvent::Layer {
            id,
            status,
            progress,
        } = &event
        {
            let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
            let entry = state.entry(id.clone()).or_insert((false, 0));
            if entry.0 {
                return;
            }
            if status == "Pull complete" {
                entry.0 = true;
            }
            if let Some((current, total)) = progress {
                let step = (total / 100).max(1);
                if current < total && current.saturating_sub(entry.1) < step && entry.1 != 0 {
                    return;
                }
                entry.1 = *current;
            }
        }
        events(event)
    })
}

/// The outcome of a pull.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The manifest or index recorded.
    pub target: Descriptor,
    /// Whether the reference already named it.
    pub up_to_date: bool,
}

/// Pulls `reference` for `platform`, unpacking its layers as they arrive,
/// and records the reference. Reports through `events`, ending with
/// Docker's `Digest:` and `Status:` lines.
pub async fn pull(
    images: &ImageService,
    reference: &ImageRef,
    platform: &Platform,
    credentials: Option<berth_registry::client::Credentials>,
    events: TransferEvents,
) -> Result<Pulled, String> {
    let events = orderly(events);
    let tag_or_digest = super::tag_or_digest(reference);
    events(TransferEvent::Status {
        id: Some(tag_or_digest),
        text: format!("Pulling from {}", reference.path()),
    });
    let client = images.client_with(credentials);
    let repo = client
        .repo(reference.domain(), reference.path())
        .map_err(|e| e.to_string())?;
    // Layers are unpacked as their downloads finish, on a thread of their
    // own, so unpacking overlaps the transfer; with overlay, from their
    // bytes as they arrive.
    let (unpack_events, unpacker) = spawn_unpacker(images, events.clone());
    let streamer = Arc::new(StreamUnpack::new(images, events.clone()));
    let progress: Arc<dyn Fn(Progress) + Send + Sync> = {
        let events = events.clone();
        let unpack_events = Mutex::new(unpack_events);
        let streamer = streamer.clone();
        Arc::new(move |event: Progress| {
            if let Progress::Resolved { layers, diff_ids } = &event {
                streamer.plan(layers, diff_ids);
            }
            match &event {
                Progress::Waiting { digest, .. } => {
                    events(layer_event(digest, "Pulling fs layer", None))
                }
                Progress::Exists { digest } => events(layer_event(digest, "Already exists", None)),
                Progress::Transferring {
                    digest,
                    current,
                    total,
                } => events(layer_event(digest, "Downloading", Some((*current, *total)))),
                Progress::Done { digest } => events(layer_event(digest, "Download complete", None)),
                Progress::Mounted { .. } | Progress::Resolved { .. } => {}
            }
            if matches!(
                event,
                Progress::Resolved { .. } | Progress::Done { .. } | Progress::Exists { .. }
            ) {
                let _ = unpack_events
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .send(event);
            }
        })
    };
    let content = images.content.clone();
    let pulled = fetch(
        &repo,
        &content,
        reference,
        platform,
        CONCURRENCY,
        progress,
        Some(streamer.clone() as Arc<dyn LayerSink>),
    )
    .await;
    drop(streamer);
    // The progress callback (and with it the channel) is gone: the
    // unpacker finishes what it was given.
    // What is left is file system work: off the async threads' duty.
    let outcome = tokio::task::block_in_place(|| -> Result<Pulled, String> {
        let finished = unpacker
            .join()
            .unwrap_or_else(|_| Err("the unpacker panicked".into()));
        let pulled = pulled.map_err(|e| e.to_string())?;
        finished?;
        // Anything the unpacker did not get to (an interrupted earlier
        // pull left it packed): unpack now.
        images.unpack(&pulled.target, |layer, fresh| {
            if fresh {
                events(layer_event(&layer.digest, "Pull complete", None));
            }
        })?;
        let previous = images.images.get(reference);
        images
            .images
            .put(reference, pulled.target.clone())
            .map_err(|e| e.to_string())?;
        Ok(Pulled {
            up_to_date: previous.is_some_and(|p| p.target.digest == pulled.target.digest),
            target: pulled.target,
        })
    })?;
    let familiar = reference.familiar();
    events(TransferEvent::Status {
        id: None,
        text: format!("Digest: {}", outcome.target.digest),
    });
    events(TransferEvent::Status {
        id: None,
        text: if outcome.up_to_date {
            format!("Status: Image is up to date for {familiar}")
        } else {
            format!("Status: Downloaded newer image for {familiar}")
        },
    });
    Ok(outcome)
}

/// Unpacks overlay layers from their bytes while they download: each layer
/// gets a thread applying the stream into a staging directory, published
/// only once the blob is verified and the stream was the whole blob
/// (otherwise the unpacker thread unpacks it from the store as usual).
struct StreamUnpack {
    snapshots: Snapshotter,
    events: TransferEvents,
    plan: std::sync::Mutex<Option<(Vec<Descriptor>, Vec<Digest>)>>,
    #[allow(clippy::type_complexity)]
    running: std::sync::Mutex<
        Vec<(
            Digest,
            std::sync::mpsc::Sender<bool>,
            std::thread::JoinHandle<bool>,
        )>,
    >,
}

impl StreamUnpack {
    fn new(images: &ImageService, events: TransferEvents) -> StreamUnpack {
        StreamUnpack {
            snapshots: images.snapshots.clone(),
            events,
            plan: Default::default(),
            running: Default::default(),
        }
    }

    fn plan(&self, layers: &[Descriptor], diff_ids: &[Digest]) {
        *self.plan.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((layers.to_vec(), diff_ids.to_vec()));
    }
}

impl LayerSink for StreamUnpack {
    fn begin(&self, layer: &Descriptor) -> Option<tokio::sync::mpsc::Sender<bytes::Bytes>> {
        if self.snapshots.unpacks_in_order() {
            return None;
        }
        let (layers, diff_ids) = self
            .plan
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        let index = layers.iter().position(|l| l.digest == layer.digest)?;
        let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(64);
        let (decide, decision) = std::sync::mpsc::channel::<bool>();
        let snapshots = self.snapshots.clone();
        let handle = std::thread::spawn(move || {
            let reader = ChannelReader {
                rx,
                chunk: bytes::Bytes::new(),
            };
            let staged = snapshots.stage_stream(reader, &layers, &diff_ids, index);
            // Publish only what the verified blob was, whole.
            match (staged, decision.recv()) {
                (Ok(Some(staged)), Ok(true)) => staged.publish().is_ok(),
                _ => false,
            }
        });
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((layer.digest.clone(), decide, handle));
        Some(tx)
    }

    fn finish(&self, layer: &Descriptor, whole: bool) {
        let entry = {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            running
                .iter()
                .position(|(d, _, _)| *d == layer.digest)
                .map(|i| running.swap_remove(i))
        };
        if let Some((digest, decide, handle)) = entry {
            (self.events)(layer_event(&digest, "Download complete", None));
            let _ = decide.send(whole);
            if handle.join().unwrap_or(false) {
                (self.events)(layer_event(&digest, "Pull complete", None));
            }
        }
    }
}

/// The bytes of a channel as a blocking reader.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    chunk: bytes::Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.chunk = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        bytes::Buf::advance(&mut self.chunk, n);
        Ok(n)
    }
}

/// A thread that unpacks the layers of the image being pulled as their
/// blobs arrive: every layer as soon as it is there with the overlay
/// driver, each after the one below with the copy driver. It stops at the
/// first error, which it returns once the channel closes.
fn spawn_unpacker(
    images: &ImageService,
    events: TransferEvents,
) -> (
    std::sync::mpsc::Sender<Progress>,
    std::thread::JoinHandle<Result<(), String>>,
) {
    let (tx, rx) = std::sync::mpsc::channel::<Progress>();
    let (content, snapshots) = (images.content.clone(), images.snapshots.clone());
    let handle = std::thread::spawn(move || {
        let mut plan: Option<(Vec<Descriptor>, Vec<Digest>)> = None;
        let mut ready: Vec<Digest> = Vec::new();
        let mut done = Vec::new();
        let mut failed: Option<String> = None;
        for event in rx {
            match event {
                Progress::Resolved { layers, diff_ids } => {
                    done = vec![false; layers.len()];
                    plan = Some((layers, diff_ids));
                }
                Progress::Done { digest } | Progress::Exists { digest } => ready.push(digest),
                _ => {}
            }
            let Some((layers, diff_ids)) = &plan else {
                continue;
            };
            if failed.is_some() {
                continue;
            }
            for i in 0..layers.len() {
                if done[i] || !ready.contains(&layers[i].digest) {
                    if snapshots.unpacks_in_order() && !done[i] {
                        break;
                    }
                    continue;
                }
                match snapshots.unpack_layer(&content, layers, diff_ids, i) {
                    Ok(fresh) => {
                        done[i] = true;
                        if fresh {
                            events(layer_event(&layers[i].digest, "Pull complete", None));
                        }
                    }
                    Err(e) => {
                        failed = Some(e.to_string());
                        break;
                    }
                }
            }
        }
        failed.map_or(Ok(()), Err)
    });
    (tx, handle)
}
