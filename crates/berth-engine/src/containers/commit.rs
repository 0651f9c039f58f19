//! `docker commit`: a container's writable layer as a new image layer on
//! top of its image, with the container's config (and `--change`s).

use berth_image::ImageConfig;
use berth_image::archive::{LayerOptions, append_layer};
use berth_image::manifest::{ContainerConfig as ImageContainerConfig, Empty};
use berth_model::{Digest, ImageRef};

use super::{Container, Containers};
use crate::EngineError;

/// What `commit` was asked for.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    /// The name to give the image (none: unnamed).
    pub reference: Option<ImageRef>,
    /// The history comment.
    pub comment: Option<String>,
    /// The author.
    pub author: Option<String>,
    /// Dockerfile instructions applied to the config.
    pub changes: Vec<String>,
    /// Freeze the container while its files are read.
    pub pause: bool,
}

/// The API's container config as an image's.
fn image_config(c: &berth_api::container::ContainerConfig) -> ImageContainerConfig {
    let set = |m: &Option<std::collections::BTreeMap<String, serde_json::Value>>| {
        m.as_ref()
            .filter(|m| !m.is_empty())
            .map(|m| m.keys().map(|k| (k.clone(), Empty {})).collect())
    };
    ImageContainerConfig {
        user: Some(c.user.clone()).filter(|u| !u.is_empty()),
        exposed_ports: set(&c.exposed_ports),
        env: Some(c.env.clone()).filter(|e| !e.is_empty()),
        entrypoint: c.entrypoint.clone(),
        cmd: c.cmd.clone(),
        volumes: set(&c.volumes),
        working_dir: Some(c.working_dir.clone()).filter(|w| !w.is_empty()),
        labels: Some(c.labels.clone()).filter(|l| !l.is_empty()),
        stop_signal: c.stop_signal.clone(),
        healthcheck: c
            .healthcheck
            .as_ref()
            .and_then(|h| serde_json::from_value(h.clone()).ok()),
        ..ImageContainerConfig::default()
    }
}

impl Containers {
    /// `POST /commit`: the new image's ID.
    pub async fn commit(&self, c: &Container, req: CommitRequest) -> Result<Digest, EngineError> {
        let rec = c.record();
        let upper = match self.images.snapshots.mounts(&c.id) {
            Ok(berth_image::snapshot::Mount::Overlay { upper, .. }) => upper,
            Ok(_) => {
                return Err(EngineError::internal(
                    "commit needs the overlay snapshotter",
                ));
            }
            Err(e) => return Err(EngineError::internal(e.to_string())),
        };
        let mut config = image_config(&rec.config);
        for change in &req.changes {
            crate::images::import::apply_change(&mut config, change)
                .map_err(EngineError::bad_request)?;
        }
        let paused = req.pause && rec.state.running && !rec.state.paused;
        if paused {
            self.pause(c, true).await?;
        }
        let images = self.images.clone();
        let image_id: Digest = rec
            .image
            .parse()
            .map_err(|e| EngineError::internal(format!("the container's image id: {e}")))?;
        let created_by = std::iter::once(rec.path.clone())
            .chain(rec.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        let made = tokio::task::spawn_blocking(move || -> Result<Digest, EngineError> {
            // The container's image by its ID: a stored manifest whose config
            // is that ID (the image may have lost its names since).
            let base = images
                .images
                .list()
                .into_iter()
                .find_map(|(_, r)| {
                    images
                        .resolve(&r.target)
                        .ok()
                        .filter(|(_, m)| m.config.digest == image_id)
                })
                .map(|(_, m)| m);
            let base_config = match &base {
                Some(m) => Some(
                    ImageConfig::from_slice(
                        &images
                            .read_blob(&m.config.digest)
                            .map_err(EngineError::internal)?,
                    )
                    .map_err(|e| EngineError::internal(e.to_string()))?,
                ),
                None => None,
            };
            let options = LayerOptions {
                config,
                comment: req.comment.clone(),
                created_by: Some(format!("/bin/sh -c #(nop) {created_by}")),
                author: req.author.clone(),
                platform: None,
            };
            let target = append_layer(
                &images.content,
                base.as_ref().zip(base_config.as_ref()),
                |w| berth_image::layer::write_diff(&upper, w, &|p| super::spec::engine_made(p)),
                &options,
            )
            .map_err(|e| EngineError::internal(format!("commit: {e}")))?;
            images
                .unpack(&target, |_, _| {})
                .map_err(EngineError::internal)?;
            let name = match &req.reference {
                Some(r) => r.clone(),
                None => crate::images::untagged(&target).map_err(EngineError::internal)?,
            };
            images
                .images
                .put(&name, target.clone())
                .map_err(|e| EngineError::internal(e.to_string()))?;
            images.image_id(&target).map_err(EngineError::internal)
        })
        .await
        .map_err(|e| EngineError::internal(e.to_string()));
        if paused {
            let _ = self.pause(c, false).await;
        }
        let id = made??;
        self.event(c, "commit", &[]);
        Ok(id)
    }
}
