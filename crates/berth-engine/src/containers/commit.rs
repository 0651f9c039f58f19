//! `docker commit`: a container's writable layer as a new image layer on
//! top of its image, with the container's config (and `--change`s).

use std::io::Write;
use std::path::Path;

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

/// Writes the overlay upper directory `upper` as a layer tar: overlayfs's
/// whiteouts (0:0 character devices, opaque directories) become the
/// `.wh.` entries of the image format.
pub fn write_diff(upper: &Path, out: &mut dyn Write) -> std::io::Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    walk(&mut b, upper, "")?;
    b.finish()
}

fn opaque(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    let mut buf = [0u8; 4];
    for name in [c"trusted.overlay.opaque", c"user.overlay.opaque"] {
        // SAFETY: valid NUL-terminated strings and a buffer of its length.
        let n = unsafe {
            libc::lgetxattr(
                path.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n == 1 && buf[0] == b'y' {
            return true;
        }
    }
    false
}

fn empty_entry<W: Write>(b: &mut tar::Builder<W>, name: &str) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(0);
    h.set_mode(0o600);
    b.append_data(&mut h, name, std::io::empty())
}

fn walk<W: Write>(b: &mut tar::Builder<W>, dir: &Path, rel: &str) -> std::io::Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if super::spec::engine_made(&path) {
            continue;
        }
        let meta = e.path().symlink_metadata()?;
        if meta.file_type().is_char_device() && meta.rdev() == 0 {
            let parent = if rel.is_empty() {
                String::new()
            } else {
                format!("{rel}/")
            };
            empty_entry(b, &format!("{parent}.wh.{name}"))?;
            continue;
        }
        b.append_path_with_name(e.path(), &path)?;
        if meta.is_dir() {
            if opaque(&e.path()) {
                empty_entry(b, &format!("{path}/.wh..wh..opq"))?;
            }
            walk(b, &e.path(), &path)?;
        }
    }
    Ok(())
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
                |w| write_diff(&upper, w),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whiteouts_become_image_whiteouts() {
        let dir = tempfile::tempdir().unwrap();
        let upper = dir.path();
        std::fs::create_dir_all(upper.join("etc/new")).unwrap();
        std::fs::write(upper.join("etc/new/f"), "x").unwrap();
        std::fs::write(upper.join("etc/hostname"), "").unwrap();
        nix::sys::stat::mknod(
            &upper.join("etc/gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        let mut tar_bytes = Vec::new();
        write_diff(upper, &mut tar_bytes).unwrap();
        let mut a = tar::Archive::new(&tar_bytes[..]);
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, vec!["etc", "etc/.wh.gone", "etc/new", "etc/new/f"]);
    }
}
