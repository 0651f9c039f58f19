//! Containers: their records, their lifecycle, and their shims.
//!
//! [`Containers`] holds every container of the data root, each an
//! [`Container`] whose [`Record`] is written atomically to
//! `containers/<id>/container.json` on every change. Starting a container
//! mounts its snapshot, writes its OCI bundle, and execs a `berth shim`;
//! the daemon then keeps one connection to the shim for the container's
//! stdio (fanned out to API clients through a broadcast channel, so an
//! attach made before the start misses nothing) and one that waits for
//! the exit. When the daemon restarts, [`Containers::open`] reconnects to
//! the shims still running and settles those whose containers ended.

pub mod api;
pub mod commit;
mod control;
mod create;
pub mod exec;
pub mod health;
mod lifecycle;
mod logs;
pub mod observe;
pub mod record;
pub mod seccomp;
pub mod spec;
mod stdio;
pub mod volume_api;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use berth_model::ErrorKind;
use berth_shim::client::ShimClient;
use bytes::Bytes;
use tokio::sync::{broadcast, watch};

use crate::EngineError;
use crate::images::ImageService;
use crate::volumes::Volumes;
pub use record::{MountPoint, Record, State, ZERO_TIME};
pub use stdio::{DetachScanner, parse_detach_keys};

/// The stream number that marks the end of a run's output.
pub const END_OF_OUTPUT: u8 = 255;

/// One container.
pub struct Container {
    /// The 64-hex id.
    pub id: String,
    dir: PathBuf,
    record: Mutex<Record>,
    /// Bumped on every change of the record.
    changes: watch::Sender<u64>,
    /// Serialises start, stop, restart and remove.
    op: tokio::sync::Mutex<()>,
    /// The running container's output: (stream, bytes), and
    /// [`END_OF_OUTPUT`] when a run's output has ended.
    output: broadcast::Sender<(u8, Bytes)>,
    /// The container's stdin: the write half of the daemon's attach
    /// connection to the shim.
    stdin: tokio::sync::Mutex<Option<tokio::net::unix::OwnedWriteHalf>>,
    removed: AtomicBool,
}

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Container {
    /// A copy of the record.
    pub fn record(&self) -> Record {
        self.record.lock().expect("record lock").clone()
    }

    /// Whether it is running.
    pub fn running(&self) -> bool {
        self.record.lock().expect("record lock").state.running
    }

    /// Whether it has been removed.
    pub fn removed(&self) -> bool {
        self.removed.load(Ordering::SeqCst)
    }

    /// Changes the record, writes it, and tells the watchers.
    fn update(&self, f: impl FnOnce(&mut Record)) -> Result<(), EngineError> {
        let bytes = {
            let mut rec = self.record.lock().expect("record lock");
            f(&mut rec);
            serde_json::to_vec_pretty(&*rec).expect("records serialise")
        };
        let result = if self.removed() {
            Ok(())
        } else {
            berth_sys::fs::atomic_write(&self.dir.join("container.json"), &bytes).map_err(|e| {
                EngineError::internal(format!("write the state of container {}: {e}", self.id))
            })
        };
        self.changes.send_modify(|n| *n += 1);
        result
    }

    /// A receiver of change notifications.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// A receiver of the container's output.
    pub fn subscribe(&self) -> broadcast::Receiver<(u8, Bytes)> {
        self.output.subscribe()
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// The json-file log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(format!("{}-json.log", self.id))
    }

    /// Writes `data` to the container's stdin; false when it has none.
    pub async fn write_stdin(&self, data: &[u8]) -> bool {
        use tokio::io::AsyncWriteExt;
        let mut stdin = self.stdin.lock().await;
        match stdin.as_mut() {
            Some(w) => w.write_all(data).await.is_ok(),
            None => false,
        }
    }

    /// Ends the container's stdin (when it was opened with `StdinOnce`).
    pub async fn close_stdin(&self) {
        use tokio::io::AsyncWriteExt;
        if let Some(mut w) = self.stdin.lock().await.take() {
            let _ = w.shutdown().await;
        }
    }
}

/// Every container of a data root.
pub struct Containers {
    root: PathBuf,
    runtime_root: PathBuf,
    shims: PathBuf,
    exe: PathBuf,
    images: Arc<ImageService>,
    all: RwLock<BTreeMap<String, Arc<Container>>>,
    /// Names (with their slash) to ids, reserved before a record exists.
    names: Mutex<BTreeMap<String, String>>,
    /// Exec instances.
    pub execs: exec::Execs,
    /// Volumes.
    pub volumes: Arc<Volumes>,
    /// What happened, for `GET /events`.
    pub events: crate::events::Events,
}

impl std::fmt::Debug for Containers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Containers")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

/// `bytes` random bytes as hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("/dev/urandom is readable");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `name` is a valid container name (Docker's rule).
pub fn valid_name(name: &str) -> bool {
    let n = name.strip_prefix('/').unwrap_or(name);
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && n.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// The exit code Docker gives a start that failed for `message`.
pub fn start_failure_code(message: &str) -> i32 {
    if message.contains("executable file not found")
        || message.contains("no such file or directory")
    {
        127
    } else if message.contains("permission denied") {
        126
    } else {
        128
    }
}

impl Containers {
    /// Opens the containers of `data_root`, settling what happened while
    /// no daemon was watching: reconnects to shims still running, records
    /// the exits of those that ended, clears half-created containers.
    pub async fn open(
        data_root: &Path,
        exec_root: &Path,
        images: Arc<ImageService>,
    ) -> Result<Arc<Containers>, String> {
        let root = data_root.join("containers");
        for dir in [&root, &exec_root.join("shims"), &exec_root.join("runtime")] {
            std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        }
        let exe = std::env::current_exe().map_err(|e| format!("find berth's own binary: {e}"))?;
        let this = Arc::new(Containers {
            root: root.clone(),
            runtime_root: exec_root.join("runtime"),
            shims: exec_root.join("shims"),
            exe,
            images,
            all: RwLock::new(BTreeMap::new()),
            names: Mutex::new(BTreeMap::new()),
            execs: exec::Execs::default(),
            volumes: Arc::new(Volumes::open(data_root)?),
            events: crate::events::Events::default(),
        });
        let entries =
            std::fs::read_dir(&root).map_err(|e| format!("list {}: {e}", root.display()))?;
        for entry in entries.flatten() {
            let dir = entry.path();
            let id = entry.file_name().to_string_lossy().into_owned();
            let record: Option<Record> = std::fs::read(dir.join("container.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            match record {
                Some(rec) if rec.id == id => {
                    let c = this.insert(rec);
                    this.names
                        .lock()
                        .expect("names lock")
                        .insert(c.record().name.clone(), id);
                }
                // A create that crashed before its record was written.
                _ => {
                    let _ = berth_image::snapshot::unmount(&dir.join("rootfs"));
                    let _ = this.images.snapshots.remove(&id);
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
        }
        crate::builds::recover(data_root, &this.runtime_root);
        this.clear_orphans();
        for c in this.list() {
            if c.running() {
                this.reconnect(&c).await;
            } else if this.restarts_on_boot(&c.record()) {
                let this2 = this.clone();
                tokio::spawn(async move {
                    let _ = this2.start(&c).await;
                });
            }
        }
        Ok(this)
    }

    /// berth's own binary (what shims and build steps run).
    pub fn exe(&self) -> &Path {
        &self.exe
    }

    /// The runtime's state directory.
    pub fn runtime_root(&self) -> &Path {
        &self.runtime_root
    }

    /// Removes what belongs to no container: writable snapshots and shim
    /// directories left by a removal or creation the daemon did not finish
    /// (a shim still running there is stopped first).
    fn clear_orphans(&self) {
        let known = |id: &str| self.all.read().expect("containers lock").contains_key(id);
        if let Ok(keys) = self.images.snapshots.active_keys() {
            for key in keys.iter().filter(|k| !known(k)) {
                let _ = self.images.snapshots.remove(key);
            }
        }
        if let Ok(dirs) = std::fs::read_dir(&self.shims) {
            for d in dirs.flatten() {
                let id = d.file_name().to_string_lossy().into_owned();
                if known(&id) {
                    continue;
                }
                let pid = std::fs::read_to_string(d.path().join("shim.pid"));
                // Only the shim of this directory: after a reboot the pid is
                // someone else's.
                let is_shim = |pid: i32| {
                    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                        String::from_utf8_lossy(&c).contains(&*d.path().to_string_lossy())
                    })
                };
                if let Some(pid) = pid
                    .ok()
                    .and_then(|p| p.trim().parse::<i32>().ok())
                    .filter(|p| is_shim(*p))
                {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::SIGKILL,
                    );
                }
                let _ = berth_runtime::ops::delete::delete(&self.runtime_root, &id, true);
                let _ = std::fs::remove_dir_all(d.path());
            }
        }
    }

    fn insert(&self, rec: Record) -> Arc<Container> {
        let id = rec.id.clone();
        let c = Arc::new(Container {
            dir: self.root.join(&id),
            id: id.clone(),
            record: Mutex::new(rec),
            changes: watch::channel(0).0,
            op: tokio::sync::Mutex::new(()),
            output: broadcast::channel(1024).0,
            stdin: tokio::sync::Mutex::new(None),
            removed: AtomicBool::new(false),
        });
        self.all
            .write()
            .expect("containers lock")
            .insert(id, c.clone());
        c
    }

    /// Records a container event with Docker's attributes (name, image,
    /// labels) and `extra` ones.
    pub fn event(&self, c: &Container, action: &str, extra: &[(&str, String)]) {
        let rec = c.record();
        let mut attrs: BTreeMap<String, String> = rec.config.labels.clone();
        attrs.insert("name".into(), rec.short_name().to_owned());
        attrs.insert("image".into(), rec.config.image.clone());
        for (k, v) in extra {
            attrs.insert((*k).to_owned(), v.clone());
        }
        self.events.emit("container", action, c.id.clone(), attrs);
    }

    fn shim(&self, c: &Container) -> ShimClient {
        ShimClient::new(self.shims.join(&c.id))
    }

    fn restarts_on_boot(&self, rec: &Record) -> bool {
        let policy = rec.host_config.restart_policy.name.as_str();
        rec.state.started_at != ZERO_TIME
            && (policy == "always" || (policy == "unless-stopped" && !rec.berth_stopped_by_user))
    }

    /// Every container, newest first.
    pub fn list(&self) -> Vec<Arc<Container>> {
        let mut all: Vec<Arc<Container>> = self
            .all
            .read()
            .expect("containers lock")
            .values()
            .cloned()
            .collect();
        all.sort_by_cached_key(|c| std::cmp::Reverse(c.record().created));
        all
    }

    /// Finds a container by id, name, or unique id prefix.
    pub fn get(&self, name: &str) -> Result<Arc<Container>, EngineError> {
        let all = self.all.read().expect("containers lock");
        if let Some(c) = all.get(name) {
            return Ok(c.clone());
        }
        let with_slash = if name.starts_with('/') {
            name.to_owned()
        } else {
            format!("/{name}")
        };
        if let Some(id) = self.names.lock().expect("names lock").get(&with_slash)
            && let Some(c) = all.get(id)
        {
            return Ok(c.clone());
        }
        if !name.is_empty() {
            let mut found = all
                .range(name.to_owned()..)
                .take_while(|(id, _)| id.starts_with(name));
            if let Some((_, c)) = found.next() {
                if found.next().is_some() {
                    return Err(EngineError {
                        kind: ErrorKind::InvalidArgument,
                        message: format!("multiple IDs found with provided prefix: {name}"),
                    });
                }
                return Ok(c.clone());
            }
        }
        Err(EngineError::not_found(format!("No such container: {name}")))
    }

    /// The containers that use the volume `name`.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        self.list()
            .iter()
            .filter(|c| c.record().berth_volumes.iter().any(|m| m.name == name))
            .map(|c| c.id.clone())
            .collect()
    }

    /// The bytes in `c`'s writable layer.
    pub fn writable_size(&self, c: &Container) -> u64 {
        match self.images.snapshots.mounts(&c.id) {
            Ok(berth_image::snapshot::Mount::Overlay { upper, .. }) => volume_api::dir_size(&upper),
            Ok(berth_image::snapshot::Mount::Bind { source }) => volume_api::dir_size(&source),
            Err(_) => 0,
        }
    }

    /// The size of every stored image, by ID.
    pub fn image_sizes(&self) -> BTreeMap<String, i64> {
        crate::images::records(&self.images)
            .iter()
            .map(|i| (i.id.to_string(), i.size as i64))
            .collect()
    }
}
