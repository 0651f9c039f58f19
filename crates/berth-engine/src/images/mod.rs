//! Images: the store of a data root, seen as Docker's images.
//!
//! [`ImageService`] holds the content store, the reference store and the
//! snapshots; [`records`] reads every reference as an [`Image`]; the
//! functions here list, inspect, tag and remove, returning data that the
//! CLI prints and the API serves.

pub mod api;
pub mod archives;
pub mod import;
pub mod pull;
pub mod push;
mod query;

use std::path::PathBuf;

use berth_image::snapshot::{Snapshotter, chain_ids};
use berth_image::{ContentStore, Descriptor, ImageConfig, ImageManifest, ImageStore, Manifest};
use berth_model::{Digest, ImageRef, Platform};
use berth_registry::client::{Client, ClientOptions, CredentialStore, Credentials};

pub use query::*;

/// The repository unnamed images (loaded or imported without a name) are
/// kept under, by digest; shown as `<none>`.
pub const UNTAGGED_REPOSITORY: &str = "untagged.berth.invalid/image";

/// The reference an unnamed image is kept under.
pub fn untagged(target: &Descriptor) -> Result<ImageRef, String> {
    ImageRef::parse(&format!("{UNTAGGED_REPOSITORY}@{}", target.digest)).map_err(|e| e.to_string())
}

/// The tag of `reference`, or its digest (`latest` when it has neither).
pub fn tag_or_digest(reference: &ImageRef) -> String {
    match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_owned(),
        (None, None) => "latest".to_owned(),
    }
}

/// Whether `reference` is the placeholder of an unnamed image.
pub fn is_untagged(reference: &ImageRef) -> bool {
    reference.repository() == UNTAGGED_REPOSITORY
}

/// The images under one data root: blobs, references and snapshots.
pub struct ImageService {
    /// The blobs.
    pub content: ContentStore,
    /// References to manifests and indexes.
    pub images: ImageStore,
    /// Unpacked layers.
    pub snapshots: Snapshotter,
    /// The data root.
    pub root: PathBuf,
}

impl ImageService {
    /// Opens (creating) the stores under `root`.
    pub fn open(root: PathBuf) -> Result<ImageService, String> {
        std::fs::create_dir_all(&root)
            .map_err(|e| format!("create the data root {}: {e}", root.display()))?;
        let content = ContentStore::open(&root)
            .map_err(|e| format!("open the content store under {}: {e}", root.display()))?;
        let images = ImageStore::open(&root)
            .map_err(|e| format!("open the image store under {}: {e}", root.display()))?;
        let snapshots = Snapshotter::open(&root, None)
            .map_err(|e| format!("open the snapshots under {}: {e}", root.display()))?;
        Ok(ImageService {
            content,
            images,
            snapshots,
            root,
        })
    }

    /// A registry client with the user's credentials and the insecure
    /// registries named in `BERTH_INSECURE_REGISTRIES` (comma-separated).
    pub fn client(&self) -> Client {
        self.client_with(None)
    }

    /// [`ImageService::client`], with `credentials` instead of the stored
    /// ones when given (an API client's `X-Registry-Auth`).
    pub fn client_with(&self, credentials: Option<Credentials>) -> Client {
        let mut options = ClientOptions {
            credentials_override: credentials,
            credentials: CredentialStore::default_location(),
            ..ClientOptions::default()
        };
        if let Ok(list) = std::env::var("BERTH_INSECURE_REGISTRIES") {
            options.insecure_registries = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
        }
        // Chunked uploads, for registries (or proxies) that cap a request.
        options.chunk_size = std::env::var("BERTH_PUSH_CHUNK_SIZE")
            .ok()
            .and_then(|s| s.parse().ok());
        if let Ok(dirs) = std::env::var("BERTH_CERTS_D") {
            options.certs_dirs = std::env::split_paths(&dirs).collect();
        }
        Client::new(options)
    }

    /// A stored manifest or config (size-capped).
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, String> {
        self.content
            .read_document(digest)
            .map_err(|e| e.to_string())
    }

    /// The image manifest `target` stands for on this host: itself, or the
    /// entry of an index for the host's platform (or, when only another
    /// platform's image was pulled, that one).
    pub fn resolve(&self, target: &Descriptor) -> Result<(Descriptor, ImageManifest), String> {
        self.resolve_for(target, None)
    }

    /// [`ImageService::resolve`] for `platform` (none: the host's, or
    /// whatever was pulled).
    pub fn resolve_for(
        &self,
        target: &Descriptor,
        platform: Option<&Platform>,
    ) -> Result<(Descriptor, ImageManifest), String> {
        let bytes = self.read_blob(&target.digest)?;
        match Manifest::from_slice(&bytes, Some(&target.media_type)).map_err(|e| e.to_string())? {
            Manifest::Image(m) => Ok((target.clone(), m)),
            Manifest::Index(mut index) => {
                // The host's platform among the entries pulled; failing
                // that, whichever platform was pulled (`pull --platform`).
                let host = platform.cloned().unwrap_or_else(Platform::host);
                index.manifests.retain(|m| {
                    !m.is_attestation() && self.content.info(&m.digest).ok().flatten().is_some()
                });
                let entry = index
                    .select(&host)
                    .or_else(|| index.manifests.first().filter(|_| platform.is_none()))
                    .ok_or_else(|| {
                        format!("image {} has no manifest stored for {host}", target.digest)
                    })?;
                let bytes = self.read_blob(&entry.digest)?;
                match Manifest::from_slice(&bytes, Some(&entry.media_type))
                    .map_err(|e| e.to_string())?
                {
                    Manifest::Image(m) => Ok((entry.clone(), m)),
                    Manifest::Index(_) => Err(format!("image {} nests indexes", target.digest)),
                }
            }
        }
    }

    /// The image ID of `target`: its config's digest, as Docker shows it.
    pub fn image_id(&self, target: &Descriptor) -> Result<Digest, String> {
        self.resolve(target).map(|(_, m)| m.config.digest)
    }

    /// The diff IDs of `target`'s image on this host.
    pub fn diff_ids(&self, target: &Descriptor) -> Result<(ImageManifest, Vec<Digest>), String> {
        let (_, manifest) = self.resolve(target)?;
        let config = ImageConfig::from_slice(&self.read_blob(&manifest.config.digest)?)
            .map_err(|e| e.to_string())?;
        Ok((manifest, config.rootfs.diff_ids))
    }

    /// Unpacks `target`'s layers into snapshots, telling `done` of each
    /// layer as it is ready (and whether it was unpacked now).
    pub fn unpack(
        &self,
        target: &Descriptor,
        done: impl FnMut(&Descriptor, bool),
    ) -> Result<(), String> {
        let (manifest, diff_ids) = self.diff_ids(target)?;
        self.snapshots
            .unpack(&self.content, &manifest.layers, &diff_ids, done)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// What every stored reference names.
    pub fn targets(&self) -> Vec<Descriptor> {
        self.images
            .list()
            .into_iter()
            .map(|(_, rec)| rec.target)
            .collect()
    }

    /// Removes the snapshots and blobs no stored image needs any more.
    /// The build cache's images count as kept: only `builder prune`
    /// drops them.
    pub fn collect_garbage(&self, removed: &Descriptor) -> Result<(), String> {
        let kept = self.targets();
        let mut roots = kept.clone();
        roots.extend(crate::build_cache::roots(self));
        berth_image::gc::remove_unreachable(&self.content, [removed], &roots)
            .map_err(|e| e.to_string())?;
        self.collect_snapshots(&kept)
    }

    /// Removes the snapshots that none of the images `kept` needs (a
    /// build unpacks what it needs again).
    pub fn collect_snapshots(&self, kept: &[Descriptor]) -> Result<(), String> {
        let chains: Vec<Digest> = kept
            .iter()
            .filter_map(|t| self.diff_ids(t).ok())
            .filter_map(|(_, ids)| chain_ids(&ids).pop())
            .collect();
        self.snapshots
            .prune(&chains)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// The containers (short id, running) whose image is `id`, read from
    /// their records, so that the in-process CLI sees them as the daemon.
    pub fn containers_using(&self, id: &Digest) -> Vec<(String, bool)> {
        let wanted = id.to_string();
        self.container_images()
            .into_iter()
            .filter(|(image, _, _)| *image == wanted)
            .map(|(_, short, running)| (short, running))
            .collect()
    }

    /// Every container's (image ID, short id, running), read from their
    /// records.
    pub fn container_images(&self) -> Vec<(String, String, bool)> {
        let Ok(dirs) = std::fs::read_dir(self.root.join("containers")) else {
            return Vec::new();
        };
        dirs.flatten()
            .filter_map(|d| std::fs::read(d.path().join("container.json")).ok())
            .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .map(|r| {
                let short: String = r["Id"]
                    .as_str()
                    .unwrap_or_default()
                    .chars()
                    .take(12)
                    .collect();
                (
                    r["Image"].as_str().unwrap_or_default().to_owned(),
                    short,
                    r["State"]["Running"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    }

    /// Finds an image by reference, full or short ID, or digest: the
    /// references that name it and its target.
    pub fn find(&self, name: &str) -> Result<(Vec<ImageRef>, Descriptor), crate::EngineError> {
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        let looks_like_id = hex.len() >= 4
            && hex.len() <= 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        if looks_like_id {
            let mut matches: Vec<(ImageRef, Descriptor, Digest)> = Vec::new();
            for (reference, record) in self.images.list() {
                if let Ok(id) = self.image_id(&record.target)
                    && (id.hex().starts_with(hex)
                        || record.target.digest.hex().starts_with(hex) && hex.len() == 64)
                {
                    matches.push((reference, record.target, id));
                }
            }
            let mut ids: Vec<&Digest> = matches.iter().map(|(_, _, id)| id).collect();
            ids.dedup();
            if ids.len() > 1 {
                return Err(crate::EngineError::bad_request(format!(
                    "{name} is ambiguous: it matches several images; give more of the ID"
                )));
            }
            if let Some((_, target, _)) = matches.first() {
                let target = target.clone();
                let refs = matches.into_iter().map(|(r, _, _)| r).collect();
                return Ok((refs, target));
            }
        }
        let reference = ImageRef::parse(name).map_err(|e| {
            crate::EngineError::bad_request(format!("invalid reference format: {e}"))
        })?;
        match self.images.get(&reference) {
            Some(record) => Ok((vec![reference], record.target)),
            None => Err(crate::EngineError::not_found(format!(
                "No such image: {name}"
            ))),
        }
    }
}
