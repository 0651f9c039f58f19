//! Image archives: `save`, `load` and `import`.
//!
//! [`save`] writes one tar that is at once an OCI image layout (`oci-layout`,
//! `index.json`, `blobs/sha256/..`) and a docker-archive (`manifest.json`
//! naming the same blobs), as Docker 25 and later do, so `docker load`,
//! `skopeo copy docker-archive:` and `skopeo copy oci-archive:` all read
//! it. [`load`] reads either shape (and the older docker-archive with
//! `<id>/layer.tar` files). [`import`] makes a one-layer image from a root
//! filesystem tar.
//!
//! A loaded archive is untrusted: every file goes through the content store
//! (hashed on the way in, so `blobs/sha256/<hex>` must hold what its name
//! says), the documents that describe images are size-limited, and nothing
//! is written anywhere but the store.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};

use berth_model::{Digest, ImageRef, Platform};
use serde::{Deserialize, Serialize};

use crate::content::{ContentError, ContentStore};
use crate::manifest::media_types::{
    self, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_LAYER_ZSTD, OCI_MANIFEST,
};
use crate::manifest::{
    ContainerConfig, Descriptor, History, ImageConfig, ImageManifest, Index, Manifest,
};

/// The annotation naming an image in an OCI layout, as containerd and
/// Docker write it (`docker.io/library/busybox:latest`).
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// The OCI annotation for a layout entry's reference (the tag).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The largest `manifest.json`, `index.json` or manifest read from an archive.
const MAX_DOCUMENT: u64 = 8 << 20;

/// What went wrong with an archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Reading or writing the tar failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The content store failed.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// The archive is not a valid image archive.
    #[error("invalid archive: {0}")]
    Invalid(String),
}

type Result<T, E = ArchiveError> = std::result::Result<T, E>;

/// An image to save: its names and the manifest to write.
#[derive(Debug, Clone)]
pub struct SaveImage {
    /// The names it is saved under (may be empty).
    pub names: Vec<ImageRef>,
    /// Its image manifest.
    pub manifest: Descriptor,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveManifest {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn blob_path(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm(), digest.hex())
}

fn read_all(content: &ContentStore, digest: &Digest) -> Result<Vec<u8>> {
    Ok(content.read_document(digest)?)
}

fn append(
    out: &mut tar::Builder<impl Write>,
    path: &str,
    size: u64,
    data: impl Read,
) -> Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    out.append_data(&mut h, path, data)?;
    Ok(())
}

/// Writes `images` (and every blob they need, once) as one tar to `out`.
pub fn save(content: &ContentStore, images: &[SaveImage], out: impl Write) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    let mut written: Vec<Digest> = Vec::new();
    let mut index = Vec::new();
    let mut docker = Vec::new();
    for image in images {
        let bytes = read_all(content, &image.manifest.digest)?;
        let Manifest::Image(manifest) =
            Manifest::from_slice(&bytes, Some(&image.manifest.media_type))
                .map_err(|e| ArchiveError::Invalid(e.to_string()))?
        else {
            return Err(ArchiveError::Invalid(format!(
                "{} is not an image manifest",
                image.manifest.digest
            )));
        };
        for d in std::iter::once(&image.manifest)
            .chain(std::iter::once(&manifest.config))
            .chain(&manifest.layers)
        {
            if written.contains(&d.digest) {
                continue;
            }
            let file = content.read(&d.digest)?;
            let size = file.metadata()?.len();
            append(
                &mut tar,
                &blob_path(&d.digest),
                size,
                io::BufReader::with_capacity(256 << 10, file),
            )?;
            written.push(d.digest.clone());
        }
        let base = Descriptor::new(
            &image.manifest.media_type,
            image.manifest.digest.clone(),
            image.manifest.size,
        );
        if image.names.is_empty() {
            index.push(base.clone());
        }
        for name in &image.names {
            let mut entry = base.clone();
            let mut annotations = BTreeMap::new();
            annotations.insert(ANNOTATION_IMAGE_NAME.to_owned(), name.to_string());
            if let Some(tag) = name.tag() {
                annotations.insert(ANNOTATION_REF_NAME.to_owned(), tag.to_owned());
            }
            entry.annotations = Some(annotations);
            index.push(entry);
        }
        docker.push(ArchiveManifest {
            config: blob_path(&manifest.config.digest),
            repo_tags: Some(
                image
                    .names
                    .iter()
                    .filter(|n| n.tag().is_some())
                    .map(|n| n.familiar())
                    .collect(),
            ),
            layers: manifest
                .layers
                .iter()
                .map(|l| blob_path(&l.digest))
                .collect(),
        });
    }
    let index = Index {
        schema_version: 2,
        media_type: Some(OCI_INDEX.to_owned()),
        artifact_type: None,
        manifests: index,
        subject: None,
        annotations: None,
        extra: Default::default(),
    };
    let documents: [(&str, Vec<u8>); 3] = [
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        (
            "index.json",
            serde_json::to_vec(&index).expect("index serialises"),
        ),
        (
            "manifest.json",
            serde_json::to_vec(&docker).expect("manifest serialises"),
        ),
    ];
    for (name, bytes) in documents {
        append(&mut tar, name, bytes.len() as u64, bytes.as_slice())?;
    }
    tar.into_inner()?.flush()?;
    Ok(())
}

/// What loading found: each image with the name it was saved under.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Its name, when the archive gives one.
    pub name: Option<ImageRef>,
    /// The manifest (or index) to record it by.
    pub target: Descriptor,
}

/// Reads an image archive (OCI layout or docker-archive, optionally
/// compressed as a whole) into `content`.
pub fn load(content: &ContentStore, input: impl Read) -> Result<Vec<Loaded>> {
    let mut added = Vec::new();
    let result = load_inner(content, input, &mut added);
    // What this load itself added and no loaded image needs (the archive's
    // own index.json, everything when it failed) goes again. Blobs other
    // processes add meanwhile are not this load's to remove.
    let keep = match &result {
        Ok(loaded) => crate::gc::reachable(content, loaded.iter().map(|l| &l.target))?,
        Err(_) => Default::default(),
    };
    for digest in added.iter().filter(|d| !keep.contains(*d)) {
        let _ = content.delete(digest);
    }
    result
}

/// Stores `data` through a fresh ingest, recording the digest in `added`
/// when the blob is new. A ref a crashed load left behind is cleared first,
/// so its bytes never join these.
fn ingest(
    content: &ContentStore,
    reference: &str,
    data: &mut dyn Read,
    expected: Option<(Digest, u64)>,
    added: &mut Vec<Digest>,
) -> Result<Digest> {
    content.abort(reference)?;
    let mut w = content.writer(reference, expected.clone())?;
    io::copy(data, &mut w)?;
    let digest = w.commit(expected)?;
    added.push(digest.clone());
    Ok(digest)
}

fn load_inner(
    content: &ContentStore,
    input: impl Read,
    added: &mut Vec<Digest>,
) -> Result<Vec<Loaded>> {
    let input =
        crate::layer::decompress_stream(input).map_err(|e| ArchiveError::Invalid(e.to_string()))?;
    let mut archive = tar::Archive::new(input);
    // Every regular file, by its (normalised) path; the archive's own
    // documents in memory as well.
    let mut files: HashMap<String, (Digest, u64)> = HashMap::new();
    let mut small: HashMap<String, Vec<u8>> = HashMap::new();
    for (n, entry) in archive.entries()?.enumerate() {
        let mut entry = entry?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        let path = String::from_utf8_lossy(&raw)
            .trim_start_matches("./")
            .trim_start_matches('/')
            .to_owned();
        // The PAX size where there is one (entries over 8 GiB).
        let size = entry.size();
        let reference = format!("load-{}-{n}", std::process::id());
        if matches!(path.as_str(), "index.json" | "manifest.json") {
            if size > MAX_DOCUMENT {
                return Err(ArchiveError::Invalid(format!(
                    "{path} is larger than {MAX_DOCUMENT} bytes"
                )));
            }
            let mut bytes = Vec::with_capacity(size as usize);
            (&mut entry).take(MAX_DOCUMENT).read_to_end(&mut bytes)?;
            small.insert(path, bytes);
            continue;
        }
        let named = path
            .strip_prefix("blobs/")
            .and_then(|rest| rest.split_once('/'))
            .and_then(|(alg, hex)| format!("{alg}:{hex}").parse::<Digest>().ok());
        // The content store checks a named blob against its name.
        let digest = match &named {
            Some(d) if content.info(d)?.is_some() => {
                io::copy(&mut entry, &mut io::sink())?;
                d.clone()
            }
            _ => ingest(
                content,
                &reference,
                &mut entry,
                named.clone().map(|d| (d, size)),
                added,
            )?,
        };
        files.insert(path, (digest, size));
    }

    if files.is_empty() && small.is_empty() {
        return Err(ArchiveError::Invalid("the archive holds no files".into()));
    }
    let document = |path: &str| -> Option<&Vec<u8>> { small.get(path) };
    if let Some(index) = document("index.json") {
        return load_oci(content, index);
    }
    if let Some(manifest) = document("manifest.json") {
        return load_docker(content, manifest, &files);
    }
    Err(ArchiveError::Invalid(
        "neither index.json (OCI layout) nor manifest.json (docker-archive) is in it".into(),
    ))
}

fn load_oci(content: &ContentStore, index: &[u8]) -> Result<Vec<Loaded>> {
    let index: Index = serde_json::from_slice(index)
        .map_err(|e| ArchiveError::Invalid(format!("index.json: {e}")))?;
    let mut loaded = Vec::new();
    for entry in &index.manifests {
        if content.info(&entry.digest)?.is_none() {
            return Err(ArchiveError::Invalid(format!(
                "index.json names {}, which is not in the archive",
                entry.digest
            )));
        }
        let name = entry
            .annotation(ANNOTATION_IMAGE_NAME)
            .and_then(|n| ImageRef::parse(n).ok())
            .or_else(|| {
                // A bare OCI layout names only the tag; a full name there
                // (skopeo's oci:dir:name) is taken as it is.
                entry.annotation(ANNOTATION_REF_NAME).and_then(|r| {
                    if r.contains('/') || r.contains(':') {
                        ImageRef::parse(r).ok()
                    } else {
                        None
                    }
                })
            });
        let target = Descriptor::new(&entry.media_type, entry.digest.clone(), entry.size);
        check_complete(content, &target, 0)?;
        loaded.push(Loaded { name, target });
    }
    Ok(loaded)
}

/// How deep indexes may nest in an archive.
const MAX_NESTING: usize = 4;

/// Fails unless every blob `target` needs for this host is stored.
fn check_complete(content: &ContentStore, target: &Descriptor, depth: usize) -> Result<()> {
    if depth > MAX_NESTING {
        return Err(ArchiveError::Invalid(format!(
            "indexes nest more than {MAX_NESTING} deep"
        )));
    }
    let bytes = read_all(content, &target.digest)?;
    match Manifest::from_slice(&bytes, Some(&target.media_type))
        .map_err(|e| ArchiveError::Invalid(e.to_string()))?
    {
        Manifest::Image(m) => {
            for d in std::iter::once(&m.config).chain(&m.layers) {
                if content.info(&d.digest)?.is_none() {
                    return Err(ArchiveError::Invalid(format!(
                        "blob {} of {} is not in the archive",
                        d.digest, target.digest
                    )));
                }
            }
            Ok(())
        }
        Manifest::Index(i) => {
            let entry = i.select(&Platform::host()).ok_or_else(|| {
                ArchiveError::Invalid(format!("{} has no image for this platform", target.digest))
            })?;
            check_complete(content, entry, depth + 1)
        }
    }
}

fn load_docker(
    content: &ContentStore,
    manifest: &[u8],
    files: &HashMap<String, (Digest, u64)>,
) -> Result<Vec<Loaded>> {
    let entries: Vec<ArchiveManifest> = serde_json::from_slice(manifest)
        .map_err(|e| ArchiveError::Invalid(format!("manifest.json: {e}")))?;
    let find = |path: &str| {
        files
            .get(path.trim_start_matches("./"))
            .cloned()
            .ok_or_else(|| {
                ArchiveError::Invalid(format!(
                    "manifest.json names {path}, which is not in the archive"
                ))
            })
    };
    let mut loaded = Vec::new();
    for entry in entries {
        let (config_digest, config_size) = find(&entry.config)?;
        let config_bytes = read_all(content, &config_digest)?;
        let config = ImageConfig::from_slice(&config_bytes)
            .map_err(|e| ArchiveError::Invalid(e.to_string()))?;
        if config.rootfs.diff_ids.len() != entry.layers.len() {
            return Err(ArchiveError::Invalid(format!(
                "{}: the config lists {} layers and manifest.json {}",
                entry.config,
                config.rootfs.diff_ids.len(),
                entry.layers.len()
            )));
        }
        let mut layers = Vec::new();
        for path in &entry.layers {
            let (digest, size) = find(path)?;
            layers.push(Descriptor::new(
                layer_media_type(content, &digest)?,
                digest,
                size,
            ));
        }
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.to_owned()),
            artifact_type: None,
            config: Descriptor::new(OCI_CONFIG, config_digest, config_size),
            layers,
            subject: None,
            annotations: None,
            extra: Default::default(),
        };
        let target = store_manifest(content, &Manifest::Image(manifest))?;
        let names: Vec<ImageRef> = entry
            .repo_tags
            .unwrap_or_default()
            .iter()
            .filter_map(|t| ImageRef::parse(t).ok())
            .collect();
        if names.is_empty() {
            loaded.push(Loaded {
                name: None,
                target: target.clone(),
            });
        }
        for name in names {
            loaded.push(Loaded {
                name: Some(name),
                target: target.clone(),
            });
        }
    }
    Ok(loaded)
}

/// The OCI layer type of a stored layer blob, by its magic bytes.
fn layer_media_type(content: &ContentStore, digest: &Digest) -> Result<&'static str> {
    let mut head = [0u8; 4];
    let mut file = content.read(digest)?;
    let n = file.read(&mut head)?;
    Ok(match &head[..n] {
        [0x1f, 0x8b, ..] => OCI_LAYER_GZIP,
        [0x28, 0xb5, 0x2f, 0xfd] => OCI_LAYER_ZSTD,
        _ => OCI_LAYER_TAR,
    })
}

/// Stores a manifest document, returning its descriptor.
pub fn store_manifest(content: &ContentStore, manifest: &Manifest) -> Result<Descriptor> {
    let bytes = manifest.to_vec();
    let digest = crate::content::sha256_of(&bytes);
    if content.info(&digest)?.is_none() {
        let reference = format!("manifest-{}", digest.hex());
        content.abort(&reference)?;
        let mut w = content.writer(&reference, None)?;
        w.write_all(&bytes)?;
        w.commit(Some((digest.clone(), bytes.len() as u64)))?;
    }
    Ok(Descriptor::new(
        manifest.media_type(),
        digest,
        bytes.len() as u64,
    ))
}

/// Stores `bytes` as a blob, returning its digest.
pub fn store_blob(content: &ContentStore, bytes: &[u8]) -> Result<Digest> {
    let digest = crate::content::sha256_of(bytes);
    if content.info(&digest)?.is_none() {
        let reference = format!("blob-{}", digest.hex());
        content.abort(&reference)?;
        let mut w = content.writer(&reference, None)?;
        w.write_all(bytes)?;
        w.commit(Some((digest.clone(), bytes.len() as u64)))?;
    }
    Ok(digest)
}

/// What `import` puts in the image config besides the layer.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The container config (from `--change`).
    pub config: ContainerConfig,
    /// The history comment (`--message`, or "Imported from ...").
    pub comment: String,
    /// The platform recorded.
    pub platform: Option<Platform>,
}

/// Makes a one-layer image from the root filesystem tar `input` (gzip,
/// zstd or plain). The layer is stored uncompressed, so its digest is its
/// diff ID.
pub fn import(
    content: &ContentStore,
    input: impl Read,
    options: &ImportOptions,
) -> Result<Descriptor> {
    let mut stream =
        crate::layer::decompress_stream(input).map_err(|e| ArchiveError::Invalid(e.to_string()))?;
    let layer = LayerOptions {
        config: options.config.clone(),
        comment: Some(options.comment.clone()),
        created_by: None,
        author: None,
        platform: options.platform.clone(),
    };
    append_layer(
        content,
        None,
        |w| io::copy(&mut stream, w).map(drop),
        &layer,
    )
}

/// What [`append_layer`] records besides the layer.
#[derive(Debug, Clone, Default)]
pub struct LayerOptions {
    /// The new image's container config.
    pub config: ContainerConfig,
    /// The history entry's comment.
    pub comment: Option<String>,
    /// The history entry's command.
    pub created_by: Option<String>,
    /// The image's (and history entry's) author.
    pub author: Option<String>,
    /// The platform recorded for a new image (default: the host's; a base
    /// image keeps its own).
    pub platform: Option<Platform>,
}

/// Makes an image of `base` (an image manifest and its config, or
/// nothing) plus one layer, the uncompressed tar `write` produces: stored
/// as it is, so its digest is its diff ID, and checked to be a tar before
/// any image names it.
pub fn append_layer(
    content: &ContentStore,
    base: Option<(&ImageManifest, &ImageConfig)>,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    options: &LayerOptions,
) -> Result<Descriptor> {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let reference = format!("layer-{}-{seq}", std::process::id());
    content.abort(&reference)?;
    let mut w = content.writer(&reference, None)?;
    write(&mut w)?;
    let size = w.offset();
    if size == 0 {
        return Err(ArchiveError::Invalid("the layer is empty".into()));
    }
    let layer = w.commit(None)?;
    let mut check = tar::Archive::new(content.read(&layer)?);
    for entry in check.entries()? {
        entry.map_err(|e| ArchiveError::Invalid(format!("not a tar archive: {e}")))?;
    }
    let now = berth_model::time::now_rfc3339_nanos();
    let mut config = match base {
        Some((_, c)) => c.clone(),
        None => {
            let platform = options.platform.clone().unwrap_or_else(Platform::host);
            ImageConfig {
                architecture: platform.architecture.clone(),
                os: platform.os.clone(),
                variant: platform.variant.clone(),
                rootfs: crate::manifest::RootFs {
                    kind: "layers".into(),
                    diff_ids: Vec::new(),
                },
                ..ImageConfig::default()
            }
        }
    };
    config.created = Some(now.clone());
    config.config = Some(options.config.clone());
    if options.author.is_some() {
        config.author = options.author.clone();
    }
    config.rootfs.diff_ids.push(layer.clone());
    config.history.get_or_insert_with(Vec::new).push(History {
        created: Some(now),
        created_by: options.created_by.clone(),
        author: options.author.clone(),
        comment: options.comment.clone(),
        ..History::default()
    });
    let config_bytes = serde_json::to_vec(&config).expect("config serialises");
    let config_digest = store_blob(content, &config_bytes)?;
    let mut layers = base.map(|(m, _)| m.layers.clone()).unwrap_or_default();
    layers.push(Descriptor::new(media_types::OCI_LAYER_TAR, layer, size));
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_owned()),
        artifact_type: None,
        config: Descriptor::new(OCI_CONFIG, config_digest, config_bytes.len() as u64),
        layers,
        subject: None,
        annotations: None,
        extra: Default::default(),
    };
    store_manifest(content, &Manifest::Image(manifest))
}
