//! The registry's files.
//!
//! ```text
//! <root>/content/blobs/<alg>/<hex>                     every blob and manifest, verified
//! <root>/content/ingest/upload-<uuid>/                 uploads in progress
//! <root>/repositories/<name>/_blobs/<alg>/<hex>        blobs the repository holds (empty links)
//! <root>/repositories/<name>/_manifests/<alg>/<hex>    its manifests (the link holds the media type)
//! <root>/repositories/<name>/_tags/<tag>               tag -> manifest digest
//! <root>/repositories/<name>/_referrers/<alg>/<hex>/<alg>-<hex>
//!                                                      descriptors of manifests whose subject is <alg>:<hex>
//! <root>/repositories/<name>/_uploads/<uuid>           upload sessions of the repository
//! ```
//!
//! Repository names never have a component starting with `_`, so these
//! directories cannot collide with a nested repository. Blobs are shared
//! between repositories; a repository sees only those it links, so deleting
//! a blob from one leaves it in the others, and `gc` removes blobs no
//! repository links any more. Every file is written atomically.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use berth_image::manifest::media_types;
use berth_image::{ContentError, ContentStore, Descriptor, Manifest, Writer};
use berth_model::Digest;
use berth_sys::fs::atomic_write;

use super::ApiError;
use crate::names::Reference;
use crate::wire::ErrorCode;

/// The registry's storage under one root.
#[derive(Debug, Clone)]
pub struct Storage {
    repos: PathBuf,
    content: ContentStore,
}

/// A manifest as stored: its digest, media type and bytes.
#[derive(Debug)]
pub struct StoredManifest {
    /// The manifest's digest.
    pub digest: Digest,
    /// The media type it was pushed with.
    pub media_type: String,
    /// The document.
    pub bytes: Vec<u8>,
}

/// What a manifest push did.
#[derive(Debug)]
pub struct PutManifest {
    /// The manifest's digest.
    pub digest: Digest,
    /// Its subject, when it refers to another manifest.
    pub subject: Option<Digest>,
}

impl Storage {
    /// Opens (creating) the storage under `root`.
    pub fn open(root: &Path) -> Result<Storage, ApiError> {
        let content = ContentStore::open(root).map_err(ApiError::content)?;
        let repos = root.join("repositories");
        fs::create_dir_all(&repos).map_err(ApiError::io)?;
        Ok(Storage { repos, content })
    }

    /// The shared blob store.
    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    fn repo(&self, name: &str) -> PathBuf {
        self.repos.join(name)
    }

    fn blob_link(&self, name: &str, digest: &Digest) -> PathBuf {
        self.repo(name)
            .join("_blobs")
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    fn manifest_link(&self, name: &str, digest: &Digest) -> PathBuf {
        self.repo(name)
            .join("_manifests")
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    fn tag_path(&self, name: &str, tag: &str) -> PathBuf {
        self.repo(name).join("_tags").join(tag)
    }

    fn referrers_dir(&self, name: &str, subject: &Digest) -> PathBuf {
        self.repo(name)
            .join("_referrers")
            .join(subject.algorithm().as_str())
            .join(subject.hex())
    }

    fn upload_path(&self, name: &str, uuid: &str) -> PathBuf {
        self.repo(name).join("_uploads").join(uuid)
    }

    /// Whether the repository exists: it holds or held something.
    pub fn repo_exists(&self, name: &str) -> bool {
        self.repo(name).join("_manifests").is_dir() || self.repo(name).join("_blobs").is_dir()
    }

    // --- blobs -----------------------------------------------------------

    /// The size of blob `digest` when the repository holds it.
    pub fn blob(&self, name: &str, digest: &Digest) -> Result<Option<u64>, ApiError> {
        if !self.blob_link(name, digest).exists() && !self.manifest_link(name, digest).exists() {
            return Ok(None);
        }
        Ok(self
            .content
            .info(digest)
            .map_err(ApiError::content)?
            .map(|i| i.size))
    }

    /// Makes the stored blob `digest` part of the repository.
    pub fn link_blob(&self, name: &str, digest: &Digest) -> Result<(), ApiError> {
        write_link(&self.blob_link(name, digest), b"")
    }

    /// Removes blob `digest` from the repository; `false` when it was not
    /// there.
    pub fn unlink_blob(&self, name: &str, digest: &Digest) -> Result<bool, ApiError> {
        remove_if_exists(&self.blob_link(name, digest))
    }

    // --- uploads ---------------------------------------------------------

    /// The content-store ingest ref of upload `uuid`.
    pub fn ingest_ref(uuid: &str) -> String {
        format!("upload-{uuid}")
    }

    /// Records a new upload session of `name`.
    pub fn start_upload(&self, name: &str, uuid: &str) -> Result<(), ApiError> {
        let started = berth_model::time::now_rfc3339_nanos();
        write_link(&self.upload_path(name, uuid), started.as_bytes())
    }

    /// Whether `uuid` is an open upload session of `name`.
    pub fn upload_exists(&self, name: &str, uuid: &str) -> bool {
        uuid::Uuid::try_parse(uuid).is_ok() && self.upload_path(name, uuid).exists()
    }

    /// Opens the writer of upload `uuid`, resuming its data.
    pub fn upload_writer(&self, uuid: &str) -> Result<Writer, ApiError> {
        self.content
            .writer(&Self::ingest_ref(uuid), None)
            .map_err(ApiError::content)
    }

    /// Ends upload `uuid` of `name`, dropping whatever data it holds.
    pub fn end_upload(&self, name: &str, uuid: &str) -> Result<(), ApiError> {
        // The data first: a session file without data resumes at 0, data
        // without a session file would never be cleared.
        self.content
            .abort(&Self::ingest_ref(uuid))
            .map_err(ApiError::content)?;
        remove_if_exists(&self.upload_path(name, uuid)).map(drop)
    }

    // --- manifests -------------------------------------------------------

    /// Resolves `reference` in `name` to a manifest digest.
    pub fn resolve(&self, name: &str, reference: &Reference) -> Result<Option<Digest>, ApiError> {
        match reference {
            Reference::Digest(d) => Ok(self.manifest_link(name, d).exists().then(|| d.clone())),
            Reference::Tag(tag) => match fs::read_to_string(self.tag_path(name, tag)) {
                Ok(s) => Ok(s.trim().parse().ok()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(ApiError::io(e)),
            },
        }
    }

    /// The manifest `reference` names in `name`.
    pub fn manifest(
        &self,
        name: &str,
        reference: &Reference,
    ) -> Result<Option<StoredManifest>, ApiError> {
        let Some(digest) = self.resolve(name, reference)? else {
            return Ok(None);
        };
        let media_type = match fs::read_to_string(self.manifest_link(name, &digest)) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ApiError::io(e)),
        };
        let bytes = match self.content.read_document(&digest) {
            Ok(bytes) => bytes,
            Err(ContentError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(ApiError::content(e)),
        };
        Ok(Some(StoredManifest {
            digest,
            media_type,
            bytes,
        }))
    }

    /// Stores the manifest `bytes` in `name` under `reference`, after
    /// checking that it parses, matches a digest reference, and that the
    /// repository holds every blob and manifest it names.
    pub fn put_manifest(
        &self,
        name: &str,
        reference: &Reference,
        content_type: Option<&str>,
        bytes: &[u8],
    ) -> Result<PutManifest, ApiError> {
        // `application/...+json; charset=utf-8` names the same type.
        let content_type = content_type
            .map(|t| t.split(';').next().unwrap_or("").trim())
            .filter(|t| !t.is_empty());
        let manifest = Manifest::from_slice(bytes, content_type)
            .map_err(|e| ApiError::with_detail(ErrorCode::ManifestInvalid, e.to_string()))?;
        let media_type = match content_type {
            Some(t) if !media_types::is_generic(t) => t.to_owned(),
            _ => manifest.media_type().to_owned(),
        };
        let algorithm = match reference {
            Reference::Digest(d) => d.algorithm(),
            Reference::Tag(_) => berth_model::DigestAlgorithm::Sha256,
        };
        let digest = berth_image::digest_of(algorithm, bytes);
        if let Reference::Digest(wanted) = reference
            && *wanted != digest
        {
            return Err(ApiError::with_detail(
                ErrorCode::DigestInvalid,
                format!("the manifest's digest is {digest}, not {wanted}"),
            ));
        }
        self.check_references(name, &manifest)?;

        let mut writer = self
            .content
            .writer(
                &format!("manifest-{}", uuid::Uuid::new_v4()),
                Some((digest.clone(), bytes.len() as u64)),
            )
            .map_err(ApiError::content)?;
        writer.write_all(bytes).map_err(ApiError::io)?;
        writer
            .commit(Some((digest.clone(), bytes.len() as u64)))
            .map_err(ApiError::content)?;
        write_link(&self.manifest_link(name, &digest), media_type.as_bytes())?;

        let subject = subject_of(&manifest).map(|s| s.digest.clone());
        if let Some(subject) = &subject {
            let descriptor = referrer_descriptor(&manifest, &media_type, &digest, bytes.len());
            let json =
                serde_json::to_vec(&descriptor).map_err(|e| ApiError::internal(e.to_string()))?;
            let path = self.referrers_dir(name, subject).join(format!(
                "{}-{}",
                digest.algorithm(),
                digest.hex()
            ));
            write_link(&path, &json)?;
        }
        if let Reference::Tag(tag) = reference {
            write_link(&self.tag_path(name, tag), digest.to_string().as_bytes())?;
        }
        Ok(PutManifest { digest, subject })
    }

    /// Fails unless the repository holds every blob an image manifest
    /// names, and every manifest an index names.
    fn check_references(&self, name: &str, manifest: &Manifest) -> Result<(), ApiError> {
        let missing = |what: &str, d: &Descriptor| {
            ApiError::with_detail(
                ErrorCode::ManifestBlobUnknown,
                format!("{what} {} is not in repository {name}", d.digest),
            )
        };
        match manifest {
            Manifest::Image(m) => {
                if self.blob(name, &m.config.digest)?.is_none() {
                    return Err(missing("config", &m.config));
                }
                for layer in &m.layers {
                    // Foreign layers live at their URLs, not here.
                    let foreign = layer.urls.as_ref().is_some_and(|u| !u.is_empty());
                    if !foreign && self.blob(name, &layer.digest)?.is_none() {
                        return Err(missing("layer", layer));
                    }
                }
                // A running gc spares blobs linked recently: mark these as
                // just used, so it cannot sweep them from under this push.
                for d in std::iter::once(&m.config).chain(&m.layers) {
                    touch(&self.blob_link(name, &d.digest));
                }
            }
            Manifest::Index(i) => {
                for entry in &i.manifests {
                    if !self.manifest_link(name, &entry.digest).exists() {
                        return Err(ApiError::with_detail(
                            ErrorCode::ManifestBlobUnknown,
                            format!("manifest {} is not in repository {name}", entry.digest),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Deletes a manifest (by digest: the manifest, its tags and its
    /// referrer entry) or a tag. `false` when there was nothing to delete.
    pub fn delete_manifest(&self, name: &str, reference: &Reference) -> Result<bool, ApiError> {
        let digest = match reference {
            Reference::Tag(tag) => return remove_if_exists(&self.tag_path(name, tag)),
            Reference::Digest(d) => d,
        };
        let Some(stored) = self.manifest(name, reference)? else {
            return Ok(false);
        };
        for tag in self.tags(name)?.unwrap_or_default() {
            if self.resolve(name, &Reference::Tag(tag.clone()))?.as_ref() == Some(digest) {
                remove_if_exists(&self.tag_path(name, &tag))?;
            }
        }
        if let Ok(manifest) = Manifest::from_slice(&stored.bytes, Some(&stored.media_type))
            && let Some(subject) = subject_of(&manifest)
        {
            let entry = self.referrers_dir(name, &subject.digest).join(format!(
                "{}-{}",
                digest.algorithm(),
                digest.hex()
            ));
            remove_if_exists(&entry)?;
        }
        remove_if_exists(&self.manifest_link(name, digest))
    }

    /// The tags of `name` in lexical order; `None` when the repository does
    /// not exist.
    pub fn tags(&self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        if !self.repo_exists(name) {
            return Ok(None);
        }
        let mut tags = list_names(&self.repo(name).join("_tags"))?;
        tags.retain(|t| !t.starts_with('.'));
        tags.sort();
        Ok(Some(tags))
    }

    /// Every repository name, in lexical order.
    pub fn catalog(&self) -> Result<Vec<String>, ApiError> {
        let mut names = Vec::new();
        collect_repos(&self.repos, "", &mut names)?;
        names.sort();
        Ok(names)
    }

    /// Descriptors of the manifests in `name` whose subject is `subject`,
    /// ordered by digest.
    pub fn referrers(&self, name: &str, subject: &Digest) -> Result<Vec<Descriptor>, ApiError> {
        let dir = self.referrers_dir(name, subject);
        let mut out = Vec::new();
        for entry in list_names(&dir)? {
            if entry.starts_with('.') {
                continue;
            }
            let bytes = fs::read(dir.join(&entry)).map_err(ApiError::io)?;
            if let Ok(d) = serde_json::from_slice::<Descriptor>(&bytes) {
                out.push(d);
            }
        }
        out.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(out)
    }

    /// Every manifest digest and media type in every repository, for gc.
    pub fn all_manifests(&self) -> Result<Vec<(String, Digest, String)>, ApiError> {
        let mut out = Vec::new();
        for name in self.catalog()? {
            let dir = self.repo(&name).join("_manifests");
            for algorithm in list_names(&dir)? {
                for hex in list_names(&dir.join(&algorithm))? {
                    let Ok(digest) = format!("{algorithm}:{hex}").parse::<Digest>() else {
                        continue;
                    };
                    let media_type = fs::read_to_string(dir.join(&algorithm).join(&hex))
                        .map_err(ApiError::io)?;
                    out.push((name.clone(), digest, media_type));
                }
            }
        }
        Ok(out)
    }

    /// How long ago repository `name` linked blob `digest`.
    pub fn link_age(
        &self,
        name: &str,
        digest: &Digest,
        now: std::time::SystemTime,
    ) -> Result<std::time::Duration, ApiError> {
        super::gc::age(&self.blob_link(name, digest), now)
    }

    /// Drops (unless `dry_run`) the upload sessions of `name` older than
    /// `max_age`, returning how many there were.
    pub fn stale_uploads(
        &self,
        name: &str,
        now: std::time::SystemTime,
        max_age: std::time::Duration,
        dry_run: bool,
    ) -> Result<usize, ApiError> {
        let dir = self.repo(name).join("_uploads");
        let mut count = 0;
        for uuid in list_names(&dir)? {
            if uuid.starts_with('.') || super::gc::age(&dir.join(&uuid), now)? < max_age {
                continue;
            }
            if dry_run {
                count += 1;
                continue;
            }
            match self.content.abort(&Self::ingest_ref(&uuid)) {
                // A server holds it open: still in use after all.
                Err(ContentError::Locked { .. }) => continue,
                other => other.map_err(ApiError::content)?,
            }
            remove_if_exists(&dir.join(&uuid))?;
            count += 1;
        }
        Ok(count)
    }

    /// Every blob digest repository `name` links.
    pub fn linked_blobs(&self, name: &str) -> Result<Vec<Digest>, ApiError> {
        let dir = self.repo(name).join("_blobs");
        let mut out = Vec::new();
        for algorithm in list_names(&dir)? {
            for hex in list_names(&dir.join(&algorithm))? {
                if let Ok(d) = format!("{algorithm}:{hex}").parse() {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }
}

/// The descriptor the referrers API lists for `manifest`.
fn referrer_descriptor(
    manifest: &Manifest,
    media_type: &str,
    digest: &Digest,
    size: usize,
) -> Descriptor {
    let mut d = Descriptor::new(media_type, digest.clone(), size as u64);
    let (artifact_type, annotations) = match manifest {
        Manifest::Image(m) => (
            m.artifact_type
                .clone()
                .or_else(|| Some(m.config.media_type.clone())),
            m.annotations.clone(),
        ),
        Manifest::Index(i) => (i.artifact_type.clone(), i.annotations.clone()),
    };
    d.artifact_type = artifact_type;
    d.annotations = annotations;
    d
}

fn subject_of(manifest: &Manifest) -> Option<&Descriptor> {
    match manifest {
        Manifest::Image(m) => m.subject.as_ref(),
        Manifest::Index(i) => i.subject.as_ref(),
    }
}

/// Writes a link file atomically, creating its directory.
fn write_link(path: &Path, data: &[u8]) -> Result<(), ApiError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(ApiError::io)?;
    }
    atomic_write(path, data).map_err(ApiError::io)
}

/// Sets `path`'s modification time to now, if it exists.
fn touch(path: &Path) {
    if let Ok(f) = fs::File::options().append(true).open(path) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
}

fn remove_if_exists(path: &Path) -> Result<bool, ApiError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(ApiError::io(e)),
    }
}

/// The names in `dir`, or none when it does not exist.
fn list_names(dir: &Path) -> Result<Vec<String>, ApiError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ApiError::io(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(ApiError::io)?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

fn collect_repos(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<(), ApiError> {
    for name in list_names(dir)? {
        if name.starts_with('_') || name.starts_with('.') {
            continue;
        }
        let path = dir.join(&name);
        if !path.is_dir() {
            continue;
        }
        let full = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        if path.join("_manifests").is_dir() || path.join("_blobs").is_dir() {
            out.push(full.clone());
        }
        collect_repos(&path, &full, out)?;
    }
    Ok(())
}
