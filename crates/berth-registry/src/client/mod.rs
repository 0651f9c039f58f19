//! The registry client: the OCI distribution protocol from the pulling and
//! pushing side.
//!
//! A [`Client`] keeps one HTTP client per registry host (TLS with the
//! system roots plus `certs.d` CAs; plain HTTP only for loopback and
//! registries marked insecure), and the auth state of each: a `Basic`
//! header, or `Bearer` tokens per scope, fetched from the realm the
//! registry's `WWW-Authenticate` challenge names, with the user's
//! credentials from [`CredentialStore`]. [`Repo`] is one repository on one
//! registry: manifests, blobs (streamed into the content store, digest
//! verified, resumed with `Range` after a dropped connection), mounts and
//! uploads. [`pull`] and [`push`] build whole-image transfers on it.

pub mod credentials;
mod error;
pub mod pull;
pub mod push;
mod transport;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_image::manifest::media_types;
use berth_image::{ContentStore, Descriptor};
use berth_model::Digest;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, RANGE};
use reqwest::{Method, StatusCode};

pub use credentials::{CredentialStore, Credentials};
pub use error::ClientError;
use transport::Host;

use crate::pipe::{PipeError, pipe_tee};
use crate::wire::{CONTENT_DIGEST, TagList};

type Result<T, E = ClientError> = std::result::Result<T, E>;

/// The manifest types berth asks for, most specific first.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
/// The largest manifest berth reads.
pub const MAX_MANIFEST: u64 = 4 << 20;
/// How often a blob download is retried after the connection drops.
const FETCH_ATTEMPTS: usize = 4;

/// What a transfer reports about each blob, for a progress display (and
/// for work that can start as blobs arrive, such as unpacking layers).
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// A pull knows the image's layers (base first) and their diff IDs;
    /// sent once, before any layer event.
    Resolved {
        /// The layer blobs.
        layers: Vec<Descriptor>,
        /// Their uncompressed digests, from the config.
        diff_ids: Vec<Digest>,
    },
    /// Queued.
    Waiting {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
    },
    /// Already at the destination: nothing to transfer.
    Exists {
        /// The blob.
        digest: Digest,
    },
    /// Bytes moving.
    Transferring {
        /// The blob.
        digest: Digest,
        /// Bytes so far.
        current: u64,
        /// Bytes in all.
        total: u64,
    },
    /// Linked from another repository of the registry.
    Mounted {
        /// The blob.
        digest: Digest,
        /// The repository it was mounted from.
        from: String,
    },
    /// Transferred and verified.
    Done {
        /// The blob.
        digest: Digest,
    },
}

/// How a [`Client`] is set up.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Where credentials come from.
    pub credentials: CredentialStore,
    /// Registries (`host[:port]`) that may be reached over plain HTTP, in
    /// addition to loopback ones.
    pub insecure_registries: Vec<String>,
    /// Directories of per-registry CAs, `<dir>/<host[:port]>/*.crt`, as
    /// Docker's `/etc/docker/certs.d`.
    pub certs_dirs: Vec<PathBuf>,
    /// The `User-Agent` sent.
    pub user_agent: String,
    /// Upload blobs in PATCHes of at most this many bytes (`None`: one
    /// streamed PATCH per blob).
    pub chunk_size: Option<u64>,
    /// Credentials to use instead of the store's (an API client's
    /// `X-Registry-Auth`).
    pub credentials_override: Option<Credentials>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            credentials: CredentialStore::default_location(),
            insecure_registries: Vec::new(),
            certs_dirs: vec![
                PathBuf::from("/etc/berth/certs.d"),
                PathBuf::from("/etc/docker/certs.d"),
            ],
            user_agent: format!("berth/{}", env!("CARGO_PKG_VERSION")),
            chunk_size: None,
            credentials_override: None,
        }
    }
}

/// A registry client; cheap to clone.
#[derive(Clone)]
pub struct Client {
    options: Arc<ClientOptions>,
    hosts: Arc<Mutex<HashMap<String, Arc<Host>>>>,
}

impl Client {
    /// A client with `options`.
    pub fn new(options: ClientOptions) -> Client {
        Client {
            options: Arc::new(options),
            hosts: Arc::default(),
        }
    }

    /// The options it was made with.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    fn host(&self, registry: &str) -> Result<Arc<Host>> {
        let mut hosts = self.hosts.lock().expect("host table");
        if let Some(host) = hosts.get(registry) {
            return Ok(host.clone());
        }
        let host = Arc::new(Host::new(registry, &self.options)?);
        hosts.insert(registry.to_owned(), host.clone());
        Ok(host)
    }

    /// Downloads `url` into the file `to` (ADD's URLs), with the TLS
    /// settings a registry on that host would get.
    pub async fn download(&self, url: &str, to: &std::path::Path) -> Result<()> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| ClientError::Invalid(format!("invalid URL {url:?}: {e}")))?;
        let host = parsed
            .host_str()
            .ok_or_else(|| ClientError::Invalid(format!("invalid URL {url:?}: no host")))?;
        let authority = match parsed.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        self.host(&authority)?.download(url, to).await
    }

    /// Repository `name` on `registry` (as an image reference's domain
    /// names it: `docker.io`, `localhost:5000`).
    pub fn repo(&self, registry: &str, name: &str) -> Result<Repo> {
        Ok(Repo {
            host: self.host(registry)?,
            name: name.to_owned(),
        })
    }

    /// Checks `credentials` against `registry`, as `docker login` does:
    /// the API base must answer, directly or through the token flow.
    pub async fn login(&self, registry: &str, credentials: &Credentials) -> Result<()> {
        self.host(registry)?.login(credentials).await
    }
}

/// A manifest as fetched.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// Its digest, verified against the bytes.
    pub digest: Digest,
    /// The media type the registry gave (or the body declares).
    pub media_type: String,
    /// The document.
    pub bytes: Vec<u8>,
}

impl FetchedManifest {
    /// A descriptor of this manifest.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            &self.media_type,
            self.digest.clone(),
            self.bytes.len() as u64,
        )
    }
}

/// One repository on one registry.
#[derive(Clone)]
pub struct Repo {
    host: Arc<Host>,
    name: String,
}

impl Repo {
    /// The repository's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The registry as references name it.
    pub fn registry(&self) -> &str {
        &self.host.registry
    }

    fn pull_scope(&self) -> Vec<String> {
        vec![format!("repository:{}:pull", self.name)]
    }

    fn push_scope(&self, mount_from: Option<&str>) -> Vec<String> {
        let mut scopes = vec![format!("repository:{}:pull,push", self.name)];
        if let Some(from) = mount_from {
            scopes.push(format!("repository:{from}:pull"));
        }
        scopes
    }

    fn path(&self, rest: &str) -> String {
        format!("/v2/{}/{rest}", self.name)
    }

    /// Fetches the manifest `reference` (a tag or `alg:hex`), verifying
    /// its digest: against the reference when it is a digest, and against
    /// the `Docker-Content-Digest` the registry sends otherwise.
    pub async fn manifest(&self, reference: &str) -> Result<FetchedManifest> {
        let path = self.path(&format!("manifests/{reference}"));
        let response = self
            .host
            .send(&self.pull_scope(), |base, http| {
                http.get(format!("{base}{path}"))
                    .header(ACCEPT, MANIFEST_ACCEPT)
            })
            .await?;
        let response = self
            .check(response, &format!("manifest {reference}"))
            .await?;
        let header_digest =
            header_str(&response, CONTENT_DIGEST).and_then(|d| d.parse::<Digest>().ok());
        let content_type = header_str(&response, CONTENT_TYPE.as_str())
            .map(|t| t.split(';').next().unwrap_or("").trim().to_owned());
        let bytes = transport::read_limited(response, MAX_MANIFEST, &self.host.registry).await?;
        let wanted = match reference.parse::<Digest>() {
            Ok(d) => Some(d),
            Err(_) => header_digest,
        };
        let algorithm = wanted
            .as_ref()
            .map_or(berth_model::DigestAlgorithm::Sha256, Digest::algorithm);
        let digest = berth_image::digest_of(algorithm, &bytes);
        if let Some(wanted) = wanted
            && wanted != digest
        {
            return Err(ClientError::DigestMismatch {
                what: format!(
                    "manifest {reference} from {}/{}",
                    self.host.registry, self.name
                ),
                expected: wanted,
                actual: digest,
            });
        }
        let media_type = match content_type {
            Some(t) if !media_types::is_generic(&t) => t,
            _ => berth_image::Manifest::from_slice(&bytes, None)
                .map(|m| m.media_type().to_owned())
                .map_err(|e| ClientError::Invalid(format!("manifest {reference}: {e}")))?,
        };
        Ok(FetchedManifest {
            digest,
            media_type,
            bytes,
        })
    }

    /// The size of blob `digest` when the repository has it.
    pub async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        let path = self.path(&format!("blobs/{digest}"));
        let response = self
            .host
            .send(&self.pull_scope(), |base, http| {
                http.head(format!("{base}{path}"))
            })
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = self.check(response, &format!("blob {digest}")).await?;
        Ok(response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()))
    }

    /// Downloads blob `descriptor` into `store`, verifying size and digest
    /// as it streams and resuming with `Range` where an earlier attempt (in
    /// this process or a crashed one) stopped. `progress` sees the bytes
    /// held so far.
    pub async fn fetch_blob(
        &self,
        descriptor: &Descriptor,
        store: &ContentStore,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<()> {
        self.fetch_blob_tee(descriptor, store, progress, None)
            .await
            .map(drop)
    }

    /// [`Repo::fetch_blob`], also sending the blob's bytes to `tee` as they
    /// arrive (to unpack a layer while it downloads). `Ok(true)` when the
    /// tee received the whole blob, in one piece from its first byte; it
    /// gets nothing when the download resumes an earlier one, and stops
    /// getting bytes when a retry resumes this one.
    pub async fn fetch_blob_tee(
        &self,
        descriptor: &Descriptor,
        store: &ContentStore,
        progress: &(dyn Fn(u64) + Send + Sync),
        tee: Option<tokio::sync::mpsc::Sender<bytes::Bytes>>,
    ) -> Result<bool> {
        let mut tee = tee;
        let expected = (descriptor.digest.clone(), descriptor.size);
        let reference = format!(
            "fetch-{}-{}",
            descriptor.digest.algorithm(),
            descriptor.digest.hex()
        );
        let open = {
            let store = store.clone();
            let reference = reference.clone();
            let expected = expected.clone();
            move || store.writer(&reference, Some(expected))
        };
        // Another pull fetching the same blob holds its ingest: wait for it
        // to finish (or give up) instead of failing.
        let mut writer = loop {
            match tokio::task::spawn_blocking(open.clone())
                .await
                .expect("writer open does not panic")
            {
                Ok(w) => break w,
                Err(berth_image::ContentError::Locked { .. }) => {
                    if store.info(&descriptor.digest)?.is_some() {
                        return Ok(false);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => return Err(ClientError::Content(e)),
            }
        };
        let path = self.path(&format!("blobs/{}", descriptor.digest));
        let mut last_error = None;
        if writer.offset() > 0 {
            // Resuming an earlier download: the tee would miss its start.
            tee = None;
        }
        let mut whole = tee.is_some();
        for _ in 0..FETCH_ATTEMPTS {
            let base_offset = writer.offset();
            if base_offset > 0 && tee.take().is_some() {
                whole = false;
            }
            if base_offset >= descriptor.size {
                break;
            }
            let range = format!("bytes={base_offset}-");
            let sent = self
                .host
                .send(&self.pull_scope(), |base, http| {
                    let request = http.get(format!("{base}{path}"));
                    if base_offset > 0 {
                        request.header(RANGE, range.clone())
                    } else {
                        request
                    }
                })
                .await;
            let response = match sent {
                Ok(r) => r,
                Err(e) if e.is_transient() => {
                    last_error = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let response = self
                .check(response, &format!("blob {}", descriptor.digest))
                .await?;
            if base_offset > 0 && response.status() != StatusCode::PARTIAL_CONTENT {
                // The registry ignored the range: start over.
                drop(writer);
                let (store, reference) = (store.clone(), reference.clone());
                tokio::task::spawn_blocking(move || store.abort(&reference))
                    .await
                    .expect("abort does not panic")
                    .map_err(ClientError::Content)?;
                writer = tokio::task::spawn_blocking(open.clone())
                    .await
                    .expect("writer open does not panic")
                    .map_err(ClientError::Content)?;
                if writer.offset() != 0 {
                    return Err(ClientError::Invalid("could not restart a download".into()));
                }
            }
            let start = writer.offset();
            let remaining = descriptor.size - start;
            let report = |n: u64| progress(start + n);
            let (w, result) = pipe_tee(
                writer,
                response.bytes_stream(),
                Some(remaining),
                &report,
                &mut tee,
            )
            .await;
            if tee.is_none() {
                whole = false;
            }
            writer = w;
            match result {
                Ok(()) => break,
                Err(PipeError::Stream(e)) => {
                    last_error = Some(ClientError::Transport {
                        registry: self.host.registry.clone(),
                        detail: e,
                    });
                }
                Err(PipeError::TooLong(_)) => {
                    last_error = None;
                    break;
                }
                Err(PipeError::Write(e)) => return Err(ClientError::Io(e.to_string())),
            }
        }
        if writer.offset() < descriptor.size
            && let Some(e) = last_error
        {
            return Err(e);
        }
        tokio::task::spawn_blocking(move || writer.commit(Some(expected)))
            .await
            .expect("commit does not panic")
            .map_err(|e| match e {
                berth_image::ContentError::DigestMismatch { expected, actual } => {
                    ClientError::DigestMismatch {
                        what: format!(
                            "blob {} from {}/{}",
                            descriptor.digest, self.host.registry, self.name
                        ),
                        expected,
                        actual,
                    }
                }
                e => ClientError::Content(e),
            })?;
        // The tee is closed (dropped) before the caller hears the result.
        drop(tee);
        Ok(whole)
    }

    /// Asks the registry to link blob `digest` from repository `from` on
    /// the same registry. `Ok(None)` when mounted; otherwise the upload
    /// session the registry opened instead.
    pub async fn mount_blob(&self, digest: &Digest, from: &str) -> Result<Option<String>> {
        let path = self.path(&format!("blobs/uploads/?mount={digest}&from={from}"));
        let response = self
            .host
            .send(&self.push_scope(Some(from)), |base, http| {
                http.post(format!("{base}{path}")).header(CONTENT_LENGTH, 0)
            })
            .await?;
        let response = self.check(response, &format!("blob {digest}")).await?;
        if response.status() == StatusCode::CREATED {
            return Ok(None);
        }
        Ok(Some(self.location(&response)?))
    }

    /// Opens an upload session, returning its URL.
    pub async fn start_upload(&self) -> Result<String> {
        let path = self.path("blobs/uploads/");
        let response = self
            .host
            .send(&self.push_scope(None), |base, http| {
                http.post(format!("{base}{path}")).header(CONTENT_LENGTH, 0)
            })
            .await?;
        let response = self.check(response, "an upload").await?;
        self.location(&response)
    }

    /// Uploads blob `descriptor` from `store` into the session at
    /// `location`: the data in one streamed PATCH (or in chunks, when the
    /// client has a chunk size), then the PUT that names its digest.
    pub async fn upload_blob(
        &self,
        location: &str,
        descriptor: &Descriptor,
        store: &ContentStore,
        progress: Arc<dyn Fn(u64) + Send + Sync>,
    ) -> Result<()> {
        let scope = self.push_scope(None);
        let size = descriptor.size;
        // One streamed PATCH (Docker's shape, which every registry takes),
        // or PATCHes of at most `chunk_size` with Content-Range.
        let chunk = self.host.chunk_size.filter(|c| *c > 0 && *c < size);
        let mut location = location.to_owned();
        let mut offset = 0u64;
        loop {
            let len = chunk.map_or(size - offset, |c| c.min(size - offset));
            let (store, digest, progress) =
                (store.clone(), descriptor.digest.clone(), progress.clone());
            let response = self
                .host
                .send_with_body(
                    &scope,
                    Method::PATCH,
                    &location,
                    chunk.map(|_| (offset, len)),
                    move || {
                        let file = store.read(&digest).map_err(ClientError::Content)?;
                        let progress = progress.clone();
                        let report: Arc<dyn Fn(u64) + Send + Sync> =
                            Arc::new(move |sent| progress(offset + sent));
                        Ok((transport::file_body(file, offset, len, report)?, len))
                    },
                )
                .await?;
            let response = self
                .check(response, &format!("blob {}", descriptor.digest))
                .await?;
            location = self.location(&response)?;
            offset += len;
            if offset >= size {
                break;
            }
        }
        let separator = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{separator}digest={}", descriptor.digest);
        let response = self
            .host
            .send(&scope, |_, http| {
                http.put(url.clone())
                    .header(CONTENT_LENGTH, 0)
                    .header(CONTENT_TYPE, "application/octet-stream")
            })
            .await?;
        self.check(response, &format!("blob {}", descriptor.digest))
            .await?;
        Ok(())
    }

    /// Pushes a manifest under `reference` (a tag or its digest).
    pub async fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest> {
        let path = self.path(&format!("manifests/{reference}"));
        let body = bytes::Bytes::copy_from_slice(bytes);
        let response = self
            .host
            .send(&self.push_scope(None), |base, http| {
                http.put(format!("{base}{path}"))
                    .header(CONTENT_TYPE, media_type)
                    .body(body.clone())
            })
            .await?;
        let response = self
            .check(response, &format!("manifest {reference}"))
            .await?;
        let digest = berth_image::digest_of(berth_model::DigestAlgorithm::Sha256, bytes);
        if let Some(sent) =
            header_str(&response, CONTENT_DIGEST).and_then(|d| d.parse::<Digest>().ok())
            && sent.algorithm() == digest.algorithm()
            && sent != digest
        {
            return Err(ClientError::DigestMismatch {
                what: format!(
                    "manifest {reference} pushed to {}/{}",
                    self.host.registry, self.name
                ),
                expected: digest,
                actual: sent,
            });
        }
        Ok(digest)
    }

    /// The repository's tags, following `Link` pages.
    pub async fn tags(&self) -> Result<Vec<String>> {
        let mut tags = Vec::new();
        let mut next = Some(self.path("tags/list"));
        let mut pages = 0;
        while let Some(path) = next.take() {
            pages += 1;
            if pages > 10_000 {
                return Err(ClientError::Invalid(format!(
                    "the tag list of {} never ends",
                    self.name
                )));
            }
            let response = self
                .host
                .send(&self.pull_scope(), |base, http| {
                    http.get(format!("{base}{path}"))
                })
                .await?;
            let response = self.check(response, "tags").await?;
            next = header_str(&response, "link").and_then(next_link);
            let bytes = transport::read_limited(response, 16 << 20, &self.host.registry).await?;
            let list: TagList = serde_json::from_slice(&bytes)
                .map_err(|e| ClientError::Invalid(format!("tag list of {}: {e}", self.name)))?;
            tags.extend(list.tags);
        }
        Ok(tags)
    }

    /// The absolute URL of a response's `Location`.
    fn location(&self, response: &reqwest::Response) -> Result<String> {
        let location = header_str(response, LOCATION.as_str())
            .ok_or_else(|| ClientError::Invalid("the registry sent no upload location".into()))?;
        Ok(response
            .url()
            .join(location)
            .map_err(|e| ClientError::Invalid(format!("upload location {location:?}: {e}")))?
            .to_string())
    }

    /// The response when it succeeded, or the error it names.
    async fn check(&self, response: reqwest::Response, what: &str) -> Result<reqwest::Response> {
        error::check(response, &self.host.registry, &self.name, what).await
    }
}

/// The target of a `Link: <path>; rel="next"` header, when it is a path on
/// the same registry.
fn next_link(link: &str) -> Option<String> {
    let (target, params) = link.split_once(';')?;
    let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
    (params.contains("rel=\"next\"") && target.starts_with("/v2/")).then(|| target.to_owned())
}

fn header_str<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::next_link;

    #[test]
    fn link_headers_name_the_next_page() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?n=2&last=b>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(next_link(r#"<https://elsewhere/v2/x>; rel="next""#), None);
        assert_eq!(next_link(r#"</v2/a/tags/list>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }
}
