//! Snapshots: image layers unpacked once, shared by every image that has
//! them, and the writable layers containers run on.
//!
//! ```text
//! <root>/snapshots/driver                       "overlay" or "copy", chosen once
//! <root>/snapshots/committed/<chain>/fs         one layer, named by its chain ID
//! <root>/snapshots/committed/<chain>/meta.json  parent chain, diff ID, size
//! <root>/snapshots/active/<key>/{fs,work}       a container's writable layer
//! <root>/snapshots/active/<key>/meta.json       its parent chain
//! <root>/snapshots/tmp/<random>/                unpacks in progress
//! ```
//!
//! A layer's snapshot is named by its chain ID (the OCI image spec's
//! `ChainID`: the diff IDs of it and every layer below, hashed together),
//! so two images that share a base share its snapshots, and a snapshot is
//! complete exactly when its directory exists: an unpack works in `tmp/`,
//! verifies the layer's diff ID, and renames the result into place. A crash
//! leaves only `tmp/` debris, which [`Snapshotter::open`] clears.
//!
//! With the **overlay** driver a committed snapshot holds its layer alone,
//! whiteouts recorded as overlayfs reads them, and a container's root is an
//! overlay mount of the chain. Where overlayfs is missing (or the data root
//! is itself on overlayfs, or berth is not root) the **copy** driver keeps a
//! full copy of the tree at every layer and a container gets a copy of its
//! image's top layer, bind-mounted.
//!
//! Snapshots are shared, so removing one is decided by reachability rather
//! than per-image counters that a crash could leave wrong:
//! [`Snapshotter::prune`] keeps the chains the caller still needs (the
//! images' top chains), every ancestor of those, and the parents of active
//! snapshots, and removes the rest.

mod mount;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use berth_model::{Digest, ErrorKind};
use serde::{Deserialize, Serialize};

use crate::content::ContentStore;
use crate::layer::{ApplyOptions, LayerError, apply_layer};
use crate::manifest::Descriptor;
pub use mount::{Mount, unmount};

/// How snapshots are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// Layers as overlayfs lower directories.
    Overlay,
    /// A full copy of the tree per layer.
    Copy,
}

impl Driver {
    /// The driver's name on disk and in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Overlay => "overlay",
            Driver::Copy => "copy",
        }
    }
}

/// What went wrong with a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A filesystem operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A layer could not be applied.
    #[error("layer {digest}: {source}")]
    Layer {
        /// The layer blob.
        digest: Digest,
        /// Why.
        #[source]
        source: LayerError,
    },
    /// A layer's content does not match the diff ID its image declares.
    #[error("layer {digest} unpacks to {actual}, but the image says {expected}")]
    DiffIdMismatch {
        /// The layer blob.
        digest: Digest,
        /// The diff ID from the image config.
        expected: Digest,
        /// The diff ID of what was unpacked.
        actual: Digest,
    },
    /// The parent or snapshot named does not exist.
    #[error("snapshot {0} not found")]
    NotFound(String),
    /// An active snapshot of that key exists.
    #[error("snapshot {0} already exists")]
    Exists(String),
    /// A key that is not a single path component.
    #[error("invalid snapshot key {0:?}")]
    InvalidKey(String),
    /// The image lists a different number of layers and diff IDs.
    #[error("the image has {layers} layers and {diff_ids} diff IDs")]
    LayerCount {
        /// Layers in the manifest.
        layers: usize,
        /// Diff IDs in the config.
        diff_ids: usize,
    },
    /// The content store failed.
    #[error(transparent)]
    Content(#[from] crate::content::ContentError),
}

impl SnapshotError {
    /// The class of the error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SnapshotError::NotFound(_) => ErrorKind::NotFound,
            SnapshotError::Exists(_) => ErrorKind::AlreadyExists,
            SnapshotError::InvalidKey(_)
            | SnapshotError::DiffIdMismatch { .. }
            | SnapshotError::LayerCount { .. } => ErrorKind::InvalidArgument,
            SnapshotError::Layer { source, .. } => source.kind(),
            SnapshotError::Content(e) => e.kind(),
            SnapshotError::Io { .. } => ErrorKind::Internal,
        }
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// What a committed snapshot records about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CommittedMeta {
    chain_id: Digest,
    parent: Option<Digest>,
    diff_id: Digest,
    /// Bytes of file content the layer holds.
    size: u64,
}

/// What an active snapshot records about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ActiveMeta {
    parent: Option<Digest>,
}

/// The chain IDs of layers `0..=index`, checking that the layers and diff
/// IDs go together.
fn chains_upto(
    layers: &[Descriptor],
    diff_ids: &[Digest],
    index: usize,
) -> Result<Vec<Digest>, SnapshotError> {
    if layers.len() != diff_ids.len() || index >= layers.len() {
        return Err(SnapshotError::LayerCount {
            layers: layers.len(),
            diff_ids: diff_ids.len(),
        });
    }
    Ok(chain_ids(&diff_ids[..=index]))
}

/// The chain IDs of a stack of diff IDs, base first.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match out.last() {
            None => diff_id.clone(),
            Some(parent) => crate::content::sha256_of(format!("{parent} {diff_id}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// The snapshots under one data root.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    dir: PathBuf,
    driver: Driver,
}

impl Snapshotter {
    /// Opens the snapshots under `root`, clearing unpacks a crash left
    /// half-done. The driver is the one recorded there; the first open
    /// records `driver`, or when `None` overlay if it works here and copy
    /// otherwise.
    pub fn open(root: &Path, driver: Option<Driver>) -> Result<Snapshotter, SnapshotError> {
        let dir = root.join("snapshots");
        for sub in ["committed", "active", "tmp", "unsynced"] {
            let p = dir.join(sub);
            fs::create_dir_all(&p).map_err(io_err("create", &p))?;
        }
        // Debris of processes that died mid-way; what a live process (this
        // one's other threads included) is working on stays.
        let tmp = dir.join("tmp");
        for entry in fs::read_dir(&tmp).map_err(io_err("list", &tmp))?.flatten() {
            if is_stale(&entry.file_name().to_string_lossy()) {
                remove_tree(&entry.path())?;
            }
        }
        let snapshotter_dir = dir.clone();
        let record = dir.join("driver");
        let driver = match fs::read_to_string(&record) {
            Ok(name) if name.trim() == "overlay" => Driver::Overlay,
            Ok(name) if name.trim() == "copy" => Driver::Copy,
            _ => {
                let chosen = driver.unwrap_or_else(|| {
                    if mount::overlay_works(&tmp) {
                        Driver::Overlay
                    } else {
                        Driver::Copy
                    }
                });
                berth_sys::fs::atomic_write(&record, chosen.as_str().as_bytes())
                    .map_err(io_err("write", &record))?;
                chosen
            }
        };
        let snapshotter = Snapshotter {
            dir: snapshotter_dir,
            driver,
        };
        snapshotter.settle()?;
        Ok(snapshotter)
    }

    /// Deals with layers unpacked without a sync (see [`Snapshotter::sync`]):
    /// those unpacked before the machine last went down may be torn, so
    /// they go (the blobs they come from are durable, and the next use
    /// unpacks them again); those of this boot old enough for the kernel to
    /// have written them back are synced, cheaply, and counted as durable.
    fn settle(&self) -> Result<(), SnapshotError> {
        let markers = self.dir.join("unsynced");
        let boot = boot_id();
        let now = std::time::SystemTime::now();
        let mut settled = Vec::new();
        for entry in fs::read_dir(&markers)
            .map_err(io_err("list", &markers))?
            .flatten()
        {
            let path = entry.path();
            let Some(chain) = entry
                .file_name()
                .to_str()
                .and_then(|hex| Digest::new(berth_model::DigestAlgorithm::Sha256, hex).ok())
            else {
                continue;
            };
            let recorded = fs::read_to_string(&path).unwrap_or_default();
            if recorded.trim() != boot {
                let dir = self.committed(&chain);
                let doomed = self
                    .dir
                    .join("tmp")
                    .join(tmp_name(&format!("torn-{}", chain.hex())));
                if dir.exists() {
                    fs::rename(&dir, &doomed).map_err(io_err("rename", &dir))?;
                    remove_tree(&doomed)?;
                }
                fs::remove_file(&path).map_err(io_err("remove", &path))?;
                continue;
            }
            let age = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .unwrap_or_default();
            if age >= SETTLE_AFTER {
                settled.push(path);
            }
        }
        if !settled.is_empty() {
            sync_tree(&self.dir)?;
            for path in settled {
                let _ = fs::remove_file(path);
            }
        }
        Ok(())
    }

    /// Makes every unpacked layer durable (one `syncfs`). Unpacking does
    /// not sync: snapshots are derived from durable blobs, so a layer the
    /// machine lost in a crash is dropped at the next open and unpacked
    /// again, instead of every pull paying for a second flush of its data.
    pub fn sync(&self) -> Result<(), SnapshotError> {
        sync_tree(&self.dir)?;
        let markers = self.dir.join("unsynced");
        for entry in fs::read_dir(&markers)
            .map_err(io_err("list", &markers))?
            .flatten()
        {
            let _ = fs::remove_file(entry.path());
        }
        Ok(())
    }

    /// The driver in use.
    pub fn driver(&self) -> Driver {
        self.driver
    }

    fn committed(&self, chain: &Digest) -> PathBuf {
        self.dir.join("committed").join(chain.hex())
    }

    fn active(&self, key: &str) -> Result<PathBuf, SnapshotError> {
        if key.is_empty() || key.contains('/') || key.starts_with('.') || key.len() > 128 {
            return Err(SnapshotError::InvalidKey(key.to_owned()));
        }
        Ok(self.dir.join("active").join(key))
    }

    /// Whether the layer with chain ID `chain` is unpacked.
    pub fn has(&self, chain: &Digest) -> bool {
        self.committed(chain).join("meta.json").is_file()
    }

    /// The directory holding the committed snapshot `chain`'s files: the
    /// layer alone (overlay) or the whole tree up to it (copy).
    pub fn path(&self, chain: &Digest) -> PathBuf {
        self.committed(chain).join("fs")
    }

    fn meta(&self, chain: &Digest) -> Result<CommittedMeta, SnapshotError> {
        let path = self.committed(chain).join("meta.json");
        let bytes = fs::read(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                SnapshotError::NotFound(chain.to_string())
            } else {
                SnapshotError::Io {
                    op: "read",
                    path: path.clone(),
                    source: e,
                }
            }
        })?;
        serde_json::from_slice(&bytes).map_err(|e| SnapshotError::Io {
            op: "parse",
            path,
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        })
    }

    /// The chain from `chain` down to the base, top first.
    pub fn lineage(&self, chain: &Digest) -> Result<Vec<Digest>, SnapshotError> {
        let mut out = vec![chain.clone()];
        let mut meta = self.meta(chain)?;
        while let Some(parent) = meta.parent {
            meta = self.meta(&parent)?;
            out.push(parent);
        }
        Ok(out)
    }

    /// Unpacks the image layers `layers` (whose uncompressed digests are
    /// `diff_ids`) from `content`, skipping those already unpacked, and
    /// returns the top chain ID. `unpacked` is told of each layer as it is
    /// done. Each layer's diff ID is verified.
    pub fn unpack(
        &self,
        content: &ContentStore,
        layers: &[Descriptor],
        diff_ids: &[Digest],
        mut unpacked: impl FnMut(&Descriptor, bool),
    ) -> Result<Option<Digest>, SnapshotError> {
        if layers.len() != diff_ids.len() {
            return Err(SnapshotError::LayerCount {
                layers: layers.len(),
                diff_ids: diff_ids.len(),
            });
        }
        let chains = chain_ids(diff_ids);
        for (i, layer) in layers.iter().enumerate() {
            if self.has(&chains[i]) {
                unpacked(layer, false);
                continue;
            }
            let parent = i.checked_sub(1).map(|p| &chains[p]);
            self.unpack_one(content, layer, &diff_ids[i], &chains[i], parent)?;
            unpacked(layer, true);
        }
        Ok(chains.last().cloned())
    }

    /// Unpacks layer `index` of the image whose layers and diff IDs are
    /// `layers` and `diff_ids`, unless it already is; `true` when it was
    /// unpacked now. With the copy driver the layer below must be unpacked
    /// first; overlay layers can be unpacked in any order (as downloads
    /// finish).
    pub fn unpack_layer(
        &self,
        content: &ContentStore,
        layers: &[Descriptor],
        diff_ids: &[Digest],
        index: usize,
    ) -> Result<bool, SnapshotError> {
        let chains = chains_upto(layers, diff_ids, index)?;
        if self.has(&chains[index]) {
            return Ok(false);
        }
        let parent = index.checked_sub(1).map(|p| &chains[p]);
        if self.driver == Driver::Copy
            && let Some(p) = parent
            && !self.has(p)
        {
            return Err(SnapshotError::NotFound(p.to_string()));
        }
        self.unpack_one(
            content,
            &layers[index],
            &diff_ids[index],
            &chains[index],
            parent,
        )?;
        Ok(true)
    }

    /// Whether a layer can be unpacked only after the one below it.
    pub fn unpacks_in_order(&self) -> bool {
        self.driver == Driver::Copy
    }

    fn unpack_one(
        &self,
        content: &ContentStore,
        layer: &Descriptor,
        diff_id: &Digest,
        chain: &Digest,
        parent: Option<&Digest>,
    ) -> Result<(), SnapshotError> {
        let blob = content.read(&layer.digest)?;
        self.stage(blob, layer, diff_id, chain, parent)?.publish()
    }

    /// Unpacks layer `index` from `reader` (the blob's bytes as they
    /// arrive) into a staging directory; [`Staged::publish`] makes it a
    /// snapshot, which the caller does only once the blob's digest is
    /// verified. `None` when the layer is unpacked already. Only for
    /// drivers that do not unpack in order ([`Snapshotter::unpacks_in_order`]).
    pub fn stage_stream(
        &self,
        reader: impl Read,
        layers: &[Descriptor],
        diff_ids: &[Digest],
        index: usize,
    ) -> Result<Option<Staged<'_>>, SnapshotError> {
        let chains = chains_upto(layers, diff_ids, index)?;
        if self.has(&chains[index]) {
            return Ok(None);
        }
        let parent = index.checked_sub(1).map(|p| &chains[p]);
        self.stage(
            reader,
            &layers[index],
            &diff_ids[index],
            &chains[index],
            parent,
        )
        .map(Some)
    }

    /// Applies `layer` from `reader` into a fresh staging directory and
    /// checks its diff ID (unless its blob digest is its diff ID, which the
    /// blob's own verification covers).
    fn stage(
        &self,
        reader: impl Read,
        layer: &Descriptor,
        diff_id: &Digest,
        chain: &Digest,
        parent: Option<&Digest>,
    ) -> Result<Staged<'_>, SnapshotError> {
        let staged = self.staging(chain)?;
        let fs_dir = staged.work.join("fs");
        let verified = layer.digest == *diff_id;
        let options = ApplyOptions {
            overlay_whiteouts: self.driver == Driver::Overlay,
            compute_diff_id: !verified,
            ..ApplyOptions::default()
        };
        match (self.driver, parent) {
            (Driver::Copy, Some(parent)) => copy_tree(&self.path(parent), &fs_dir)?,
            _ => fs::create_dir(&fs_dir).map_err(io_err("create", &fs_dir))?,
        }
        let stats = apply_layer(
            io::BufReader::with_capacity(256 << 10, reader),
            &fs_dir,
            &options,
        )
        .map_err(|source| SnapshotError::Layer {
            digest: layer.digest.clone(),
            source,
        })?;
        if let Some(actual) = stats.diff_id
            && actual != *diff_id
        {
            return Err(SnapshotError::DiffIdMismatch {
                digest: layer.digest.clone(),
                expected: diff_id.clone(),
                actual,
            });
        }
        let meta = CommittedMeta {
            chain_id: chain.clone(),
            parent: parent.cloned(),
            diff_id: diff_id.clone(),
            size: stats.bytes,
        };
        let meta_path = staged.work.join("meta.json");
        berth_sys::fs::atomic_write(
            &meta_path,
            &serde_json::to_vec(&meta).expect("meta serialises"),
        )
        .map_err(io_err("write", &meta_path))?;
        Ok(staged)
    }

    /// Creates the writable snapshot `key` over the committed chain
    /// `parent` (or empty), and returns how to mount it.
    pub fn prepare(&self, key: &str, parent: Option<&Digest>) -> Result<Mount, SnapshotError> {
        let dir = self.active(key)?;
        if dir.exists() {
            return Err(SnapshotError::Exists(key.to_owned()));
        }
        if let Some(p) = parent
            && !self.has(p)
        {
            return Err(SnapshotError::NotFound(p.to_string()));
        }
        let work = self
            .dir
            .join("tmp")
            .join(tmp_name(&format!("active-{key}")));
        let result = (|| {
            fs::create_dir_all(&work).map_err(io_err("create", &work))?;
            match (self.driver, parent) {
                (Driver::Copy, Some(p)) => copy_tree(&self.path(p), &work.join("fs"))?,
                _ => fs::create_dir(work.join("fs")).map_err(io_err("create", &work))?,
            }
            if self.driver == Driver::Overlay {
                fs::create_dir(work.join("work")).map_err(io_err("create", &work))?;
            }
            let meta = ActiveMeta {
                parent: parent.cloned(),
            };
            let meta_path = work.join("meta.json");
            berth_sys::fs::atomic_write(
                &meta_path,
                &serde_json::to_vec(&meta).expect("meta serialises"),
            )
            .map_err(io_err("write", &meta_path))?;
            fs::rename(&work, &dir).map_err(io_err("rename", &work))
        })();
        if result.is_err() {
            let _ = remove_tree(&work);
            return result.map(|()| unreachable!());
        }
        self.mounts(key)
    }

    /// A staging directory for the snapshot `chain`; dropping it
    /// unpublished removes the directory.
    fn staging(&self, chain: &Digest) -> Result<Staged<'_>, SnapshotError> {
        let work = self.dir.join("tmp").join(tmp_name(chain.hex()));
        fs::create_dir_all(&work).map_err(io_err("create", &work))?;
        Ok(Staged {
            snapshots: self,
            work,
            chain: chain.clone(),
            published: false,
        })
    }

    /// Turns the (unmounted) active snapshot `key` into the committed
    /// snapshot `chain`, whose layer has the diff ID `diff_id`: its upper
    /// directory becomes the layer's files without a copy (overlay only;
    /// with the copy driver nothing happens and `false` is returned). The
    /// caller has made the directory hold exactly the layer (see
    /// [`crate::layer::strip`]). Another snapshot of the same chain that got
    /// there first is as good: the active one is then just removed.
    pub fn commit(
        &self,
        key: &str,
        chain: &Digest,
        diff_id: &Digest,
    ) -> Result<bool, SnapshotError> {
        if self.driver != Driver::Overlay {
            return Ok(false);
        }
        let dir = self.active(key)?;
        let bytes = fs::read(dir.join("meta.json")).map_err(io_err("read", &dir))?;
        let active: ActiveMeta = serde_json::from_slice(&bytes).map_err(|e| SnapshotError::Io {
            op: "parse",
            path: dir.join("meta.json"),
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        })?;
        if self.has(chain) {
            self.remove(key)?;
            return Ok(true);
        }
        let staged = self.staging(chain)?;
        fs::rename(dir.join("fs"), staged.work.join("fs")).map_err(io_err("rename", &dir))?;
        let meta = CommittedMeta {
            chain_id: chain.clone(),
            parent: active.parent,
            diff_id: diff_id.clone(),
            size: 0,
        };
        let meta_path = staged.work.join("meta.json");
        berth_sys::fs::atomic_write(
            &meta_path,
            &serde_json::to_vec(&meta).expect("meta serialises"),
        )
        .map_err(io_err("write", &meta_path))?;
        staged.publish()?;
        self.remove(key)?;
        Ok(true)
    }

    /// How to mount the active snapshot `key`.
    pub fn mounts(&self, key: &str) -> Result<Mount, SnapshotError> {
        let dir = self.active(key)?;
        let meta_path = dir.join("meta.json");
        let bytes = fs::read(&meta_path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                SnapshotError::NotFound(key.to_owned())
            } else {
                io_err("read", &meta_path)(e)
            }
        })?;
        let meta: ActiveMeta = serde_json::from_slice(&bytes).map_err(|e| SnapshotError::Io {
            op: "parse",
            path: meta_path.clone(),
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        })?;
        match (self.driver, &meta.parent) {
            (Driver::Overlay, Some(parent)) => {
                let lower = self.lineage(parent)?.iter().map(|c| self.path(c)).collect();
                Ok(Mount::Overlay {
                    lower,
                    upper: dir.join("fs"),
                    work: dir.join("work"),
                })
            }
            _ => Ok(Mount::Bind {
                source: dir.join("fs"),
            }),
        }
    }

    /// Removes the active snapshot `key` (unmounted by the caller).
    pub fn remove(&self, key: &str) -> Result<(), SnapshotError> {
        let dir = self.active(key)?;
        if !dir.exists() {
            return Err(SnapshotError::NotFound(key.to_owned()));
        }
        // Rename first, so a crash mid-removal leaves debris in tmp/ and
        // not a half-deleted snapshot that looks whole.
        let doomed = self.dir.join("tmp").join(tmp_name(&format!("rm-{key}")));
        fs::rename(&dir, &doomed).map_err(io_err("rename", &dir))?;
        remove_tree(&doomed)
    }

    /// The keys of the active snapshots.
    pub fn active_keys(&self) -> Result<Vec<String>, SnapshotError> {
        let dir = self.dir.join("active");
        let mut keys: Vec<String> = fs::read_dir(&dir)
            .map_err(io_err("list", &dir))?
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// The chain IDs of the committed snapshots.
    pub fn committed_chains(&self) -> Result<Vec<Digest>, SnapshotError> {
        let dir = self.dir.join("committed");
        let mut chains: Vec<Digest> = fs::read_dir(&dir)
            .map_err(io_err("list", &dir))?
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|hex| Digest::new(berth_model::DigestAlgorithm::Sha256, &hex).ok())
            .collect();
        chains.sort();
        Ok(chains)
    }

    /// Removes every committed snapshot that neither `keep` (top chains of
    /// the images still stored) nor an active snapshot needs, returning the
    /// chains removed.
    pub fn prune(&self, keep: &[Digest]) -> Result<Vec<Digest>, SnapshotError> {
        let mut needed: HashSet<Digest> = HashSet::new();
        let mut roots: Vec<Digest> = keep.to_vec();
        for key in self.active_keys()? {
            let bytes = fs::read(self.active(&key)?.join("meta.json")).unwrap_or_default();
            if let Ok(ActiveMeta { parent: Some(p) }) = serde_json::from_slice(&bytes) {
                roots.push(p);
            }
        }
        for root in roots {
            if let Ok(chain) = self.lineage(&root) {
                needed.extend(chain);
            }
        }
        let mut removed = Vec::new();
        for chain in self.committed_chains()? {
            if needed.contains(&chain) {
                continue;
            }
            let dir = self.committed(&chain);
            let doomed = self
                .dir
                .join("tmp")
                .join(tmp_name(&format!("rm-{}", chain.hex())));
            fs::rename(&dir, &doomed).map_err(io_err("rename", &dir))?;
            remove_tree(&doomed)?;
            let _ = fs::remove_file(self.dir.join("unsynced").join(chain.hex()));
            removed.push(chain);
        }
        Ok(removed)
    }
}

/// A layer unpacked into a staging directory, not yet a snapshot; removed
/// when dropped unpublished.
pub struct Staged<'a> {
    snapshots: &'a Snapshotter,
    work: PathBuf,
    chain: Digest,
    published: bool,
}

impl Staged<'_> {
    /// Makes the staged layer a committed snapshot. Another unpack of the
    /// same layer that got there first is as good: this one is dropped.
    pub fn publish(mut self) -> Result<(), SnapshotError> {
        let dir = &self.snapshots.dir;
        // Not synced (see `Snapshotter::sync`): the marker, durable before
        // the rename, says so until the data is known to be on disk.
        let marker = dir.join("unsynced").join(self.chain.hex());
        berth_sys::fs::atomic_write(&marker, boot_id().as_bytes())
            .map_err(io_err("write", &marker))?;
        let target = self.snapshots.committed(&self.chain);
        match fs::rename(&self.work, &target) {
            Ok(()) => self.published = true,
            Err(e)
                if target.exists()
                    && matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST)) =>
            {
                return Ok(());
            }
            Err(e) => return Err(io_err("rename", &self.work)(e)),
        }
        let committed = dir.join("committed");
        fs::File::open(&committed)
            .and_then(|d| d.sync_all())
            .map_err(io_err("fsync", &committed))
    }
}

impl Drop for Staged<'_> {
    fn drop(&mut self) {
        if !self.published {
            let _ = remove_tree(&self.work);
        }
    }
}

/// Copies the tree `from` to `to` (which must not exist) with everything a
/// layer can hold: owners, modes, xattrs, devices, hard links, times; with
/// reflinks where the filesystem has them.
fn copy_tree(from: &Path, to: &Path) -> Result<(), SnapshotError> {
    let out = std::process::Command::new("cp")
        .args(["-a", "--reflink=auto"])
        .arg(from)
        .arg(to)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(io_err("run cp for", to))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(SnapshotError::Io {
            op: "copy",
            path: from.to_owned(),
            source: io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
        })
    }
}

/// A name in `tmp/` for `what`: `<pid>.<seq>.<what>`, unique in this
/// process and telling whose it is.
pub(crate) fn tmp_name(what: &str) -> String {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}.{seq}.{what}", std::process::id())
}

/// Whether the `tmp/` entry `name` belongs to no live process (or has no
/// owner recorded, as earlier versions wrote them).
fn is_stale(name: &str) -> bool {
    let Some(pid) = name.split('.').next().and_then(|p| p.parse::<u32>().ok()) else {
        return true;
    };
    pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
}

/// How old an unsynced layer of this boot must be to count as written back.
const SETTLE_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// This boot's id: unsynced data is lost only when it changes.
fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Flushes the filesystem holding `dir` to disk.
fn sync_tree(dir: &Path) -> Result<(), SnapshotError> {
    // syncfs covers every file of the tree in one call.
    let f = fs::File::open(dir).map_err(io_err("open", dir))?;
    // SAFETY: syncfs on a valid descriptor.
    let r = unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f)) };
    if r != 0 {
        return Err(io_err("syncfs", dir)(io::Error::last_os_error()));
    }
    Ok(())
}

/// Removes a tree, making read-only directories writable as it goes.
fn remove_tree(path: &Path) -> Result<(), SnapshotError> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            let _ = std::process::Command::new("chmod")
                .args(["-R", "u+rwx"])
                .arg(path)
                .status();
            fs::remove_dir_all(path).map_err(io_err("remove", path))
        }
        Err(e) => Err(io_err("remove", path)(e)),
    }
}
