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
mod create;
pub mod exec;
pub mod health;
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
use std::time::Duration;

use berth_model::ErrorKind;
use berth_shim::client::ShimClient;
use berth_shim::{ExitRecord, ShimConfig};
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

/// Parses Docker's sizes: `10m`, `1g`, `512k`, `100`.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let n: f64 = num.parse().ok()?;
    (n >= 0.0).then_some((n * mult as f64) as u64)
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

/// The exit code and API error of a failed create or start (`what`).
/// The docker CLI picks its exit code (126, 127) from the message's
/// words, in lower case.
fn start_error(what: &str, message: &str) -> (i32, EngineError) {
    let message = message.replace("Permission denied", "permission denied");
    let code = start_failure_code(&message);
    let kind = if code == 128 {
        ErrorKind::Internal
    } else {
        ErrorKind::InvalidArgument
    };
    let err = EngineError {
        kind,
        message: format!("failed to {what} the container: {message}"),
    };
    (code, err)
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

    /// Starts `c`; false when it was already running.
    pub async fn start(self: &Arc<Self>, c: &Arc<Container>) -> Result<bool, EngineError> {
        let _op = c.op.lock().await;
        self.start_locked(c).await
    }

    async fn start_locked(self: &Arc<Self>, c: &Arc<Container>) -> Result<bool, EngineError> {
        if c.removed() {
            return Err(EngineError::not_found(format!(
                "No such container: {}",
                c.id
            )));
        }
        if c.running() {
            return Ok(false);
        }
        let rec = c.record();
        let join_netns = match rec.host_config.network_mode.strip_prefix("container:") {
            Some(other) => {
                let o = self.get(other)?;
                let pid = o.record().state.pid;
                if !o.running() || pid == 0 {
                    return Err(EngineError {
                        kind: ErrorKind::Conflict,
                        message: format!(
                            "cannot join the network of container {other}: it is not running"
                        ),
                    });
                }
                Some(format!("/proc/{pid}/ns/net"))
            }
            None => None,
        };
        let this = self.clone();
        let c2 = c.clone();
        let config = tokio::task::spawn_blocking(move || this.prepare_bundle(&c2, join_netns))
            .await
            .map_err(|e| EngineError::internal(e.to_string()))?;
        let config = match config {
            Ok(c) => c,
            Err(e) => {
                self.teardown(c);
                let _ = c.update(|r| r.state.error = e.message.clone());
                return Err(e);
            }
        };
        let shim = self.shim(c);
        let pid = match berth_shim::client::spawn(&self.exe, shim.dir().path(), &config).await {
            Ok(pid) => pid,
            Err(e) => {
                self.teardown(c);
                let (code, err) = start_error("create", &e);
                let _ = c.update(|r| {
                    r.state.error = e.clone();
                    r.state.exit_code = code;
                    r.state.status = if r.state.started_at == ZERO_TIME {
                        "created".into()
                    } else {
                        "exited".into()
                    };
                });
                // Docker removes an auto-remove container whose start
                // failed (the CLI waits for that removal).
                if rec.host_config.auto_remove {
                    let this = self.clone();
                    let c = c.clone();
                    tokio::spawn(async move {
                        let _ = this.remove(&c, true, true).await;
                    });
                }
                return Err(err);
            }
        };
        self.connect_stdio(c, &shim, &rec).await;
        if let Err(e) = shim.start().await {
            // The init is gone; the shim records the exit. The docker CLI
            // picks its exit code (126, 127) from the message's words.
            let (code, err) = start_error("start", &e);
            let _ = c.update(|r| {
                r.state.error = e.clone();
                r.state.exit_code = code;
            });
            self.monitor(c.clone(), shim);
            return Err(err);
        }
        c.update(|r| {
            r.state = State {
                status: "running".into(),
                running: true,
                pid,
                started_at: berth_model::time::now_rfc3339_nanos(),
                finished_at: r.state.finished_at.clone(),
                ..State::default()
            };
            r.berth_stopped_by_user = false;
        })?;
        self.event(c, "start", &[]);
        self.start_health(c);
        self.monitor(c.clone(), shim);
        Ok(true)
    }

    /// Mounts the root, writes /etc files and the bundle, and returns the
    /// shim's configuration.
    fn prepare_bundle(
        &self,
        c: &Container,
        join_netns: Option<String>,
    ) -> Result<ShimConfig, EngineError> {
        let rec = c.record();
        let rootfs = c.rootfs();
        let _ = berth_image::snapshot::unmount(&rootfs);
        let mount = self
            .images
            .snapshots
            .mounts(&c.id)
            .map_err(|e| EngineError::internal(format!("the container's filesystem: {e}")))?;
        mount
            .mount(&rootfs)
            .map_err(|e| EngineError::internal(format!("mount {}: {e}", rootfs.display())))?;
        let write = |name: &str, text: String| {
            let p = c.dir.join(name);
            berth_sys::fs::atomic_write(&p, text.as_bytes())
                .map_err(|e| EngineError::internal(format!("write {}: {e}", p.display())))
                .map(|()| p)
        };
        let host_net = rec.host_config.network_mode == "host";
        let hostname_text = if host_net {
            nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else {
            rec.config.hostname.clone()
        };
        let hostname = write("hostname", format!("{hostname_text}\n"))?;
        let hosts_text = if host_net {
            std::fs::read_to_string("/etc/hosts").unwrap_or_default()
        } else {
            let mut h = String::from(
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
            );
            for e in &rec.host_config.extra_hosts {
                if let Some((name, ip)) = e.split_once(':') {
                    h.push_str(&format!("{ip}\t{name}\n"));
                }
            }
            h
        };
        let hosts = write("hosts", hosts_text)?;
        let resolv = write(
            "resolv.conf",
            std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        )?;
        let mut volumes = Vec::new();
        for mp in &rec.berth_volumes {
            let v = self.volumes.get(&mp.name)?;
            self.volumes.acquire(&v).map_err(EngineError::internal)?;
            let data = self.volumes.data(&mp.name);
            if !mp.no_copy {
                create::copy_up(&rootfs, &mp.destination, &data).map_err(EngineError::internal)?;
            }
            volumes.push((data, mp.destination.clone(), !mp.rw));
        }
        let spec = spec::build(
            &rec,
            &spec::Paths {
                rootfs: &rootfs,
                hostname: &hostname,
                hosts: &hosts,
                resolv: &resolv,
                join_netns,
                volumes,
            },
        )
        .map_err(EngineError::bad_request)?;
        let bundle = c.dir.join("bundle");
        std::fs::create_dir_all(&bundle)
            .map_err(|e| EngineError::internal(format!("create {}: {e}", bundle.display())))?;
        berth_sys::fs::atomic_write(
            &bundle.join("config.json"),
            &serde_json::to_vec_pretty(&spec).expect("specs serialise"),
        )
        .map_err(|e| EngineError::internal(format!("write the bundle: {e}")))?;
        let log = &rec.host_config.log_config;
        Ok(ShimConfig {
            id: c.id.clone(),
            bundle,
            runtime_root: self.runtime_root.clone(),
            log_path: (log.kind != "none").then(|| c.log_path()),
            log_max_size: log
                .config
                .get("max-size")
                .and_then(|s| parse_size(s))
                .unwrap_or(0),
            log_max_files: log
                .config
                .get("max-file")
                .and_then(|s| s.parse().ok())
                .unwrap_or(1),
            tty: rec.config.tty,
            open_stdin: rec.config.open_stdin,
            stdin_once: rec.config.stdin_once,
        })
    }

    /// Connects the daemon's stdio connection to the shim: output into
    /// the broadcast channel, the write half kept as the stdin.
    async fn connect_stdio(&self, c: &Arc<Container>, shim: &ShimClient, rec: &Record) {
        let Ok(stream) = shim.attach(rec.config.open_stdin, true, true).await else {
            return;
        };
        let (read, write) = stream.into_split();
        *c.stdin.lock().await = rec.config.open_stdin.then_some(write);
        tokio::spawn(stdio::pump(read, rec.config.tty, c.output.clone()));
    }

    /// Waits for the container's exit in the background, then settles it.
    fn monitor(self: &Arc<Self>, c: Arc<Container>, shim: ShimClient) {
        let this = self.clone();
        tokio::spawn(async move {
            let exit = shim.wait().await.unwrap_or_else(|_| ExitRecord {
                exit_code: 255,
                finished_at: berth_model::time::now_rfc3339_nanos(),
                oom_killed: false,
            });
            tracing::debug!(id = %c.id, "wait on the shim ended without an exit");
            this.exited(&c, exit).await;
        });
    }

    /// Reattaches to the shim of a container that was running when the
    /// daemon stopped, or settles its exit.
    async fn reconnect(self: &Arc<Self>, c: &Arc<Container>) {
        let shim = self.shim(c);
        if shim.alive().await {
            let rec = c.record();
            self.connect_stdio(c, &shim, &rec).await;
            self.monitor(c.clone(), shim);
            return;
        }
        let exit = shim.dir().read_exit().unwrap_or_else(|| ExitRecord {
            exit_code: 255,
            finished_at: berth_model::time::now_rfc3339_nanos(),
            oom_killed: false,
        });
        let _ = berth_runtime::ops::delete::delete(&self.runtime_root, &c.id, true);
        self.exited(c, exit).await;
    }

    async fn exited(self: &Arc<Self>, c: &Arc<Container>, exit: ExitRecord) {
        c.stdin.lock().await.take();
        self.teardown(c);
        let _ = std::fs::remove_dir_all(self.shims.join(&c.id));
        let _ = c.update(|r| {
            r.state.running = false;
            r.state.paused = false;
            r.state.pid = 0;
            r.state.status = "exited".into();
            r.state.exit_code = exit.exit_code;
            r.state.oom_killed = exit.oom_killed;
            r.state.finished_at = exit.finished_at.clone();
        });
        self.event(c, "die", &[("exitCode", exit.exit_code.to_string())]);
        if exit.oom_killed {
            self.event(c, "oom", &[]);
        }
        let rec = c.record();
        if rec.host_config.auto_remove {
            let this = self.clone();
            let c = c.clone();
            tokio::spawn(async move {
                let _ = this.remove(&c, true, true).await;
            });
            return;
        }
        let policy = &rec.host_config.restart_policy;
        let restart = !rec.berth_stopped_by_user
            && match policy.name.as_str() {
                "always" | "unless-stopped" => true,
                "on-failure" => {
                    exit.exit_code != 0
                        && (policy.maximum_retry_count <= 0
                            || i64::from(rec.restart_count) < policy.maximum_retry_count)
                }
                _ => false,
            };
        if restart {
            let delay = Duration::from_millis(100 << rec.restart_count.min(9));
            let _ = c.update(|r| {
                r.state.restarting = true;
                r.state.status = "restarting".into();
            });
            let this = self.clone();
            let c = c.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _op = c.op.lock().await;
                let rec = c.record();
                if c.removed() || !rec.state.restarting || rec.berth_stopped_by_user {
                    return;
                }
                let _ = c.update(|r| {
                    r.restart_count += 1;
                    r.state.restarting = false;
                });
                if this.start_locked(&c).await.is_err() {
                    let _ = c.update(|r| r.state.status = "exited".into());
                }
            });
        }
    }

    /// Sends `signal` to a running container.
    pub async fn kill(&self, c: &Container, signal: i32) -> Result<(), EngineError> {
        if !c.running() {
            return Err(EngineError {
                kind: ErrorKind::Conflict,
                message: format!("Container {} is not running", c.id),
            });
        }
        self.shim(c)
            .kill(signal)
            .await
            .map_err(|e| EngineError::internal(format!("kill container {}: {e}", c.id)))?;
        self.event(c, "kill", &[("signal", signal.to_string())]);
        Ok(())
    }

    /// Waits until `c` is not running (or `timeout`); true if it stopped.
    async fn wait_stopped(c: &Container, timeout: Duration) -> bool {
        let mut rx = c.watch();
        tokio::time::timeout(timeout, async {
            loop {
                if !c.running() {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
        .await
        .is_ok()
    }

    /// Stops `c`: its stop signal, then SIGKILL after `timeout` seconds;
    /// false when it was not running.
    pub async fn stop(
        &self,
        c: &Arc<Container>,
        timeout: Option<i64>,
        signal: Option<String>,
    ) -> Result<bool, EngineError> {
        let _op = c.op.lock().await;
        let rec = c.record();
        if rec.state.restarting {
            c.update(|r| {
                r.state.restarting = false;
                r.state.status = "exited".into();
                r.berth_stopped_by_user = true;
            })?;
            return Ok(true);
        }
        if !rec.state.running {
            return Ok(false);
        }
        c.update(|r| r.berth_stopped_by_user = true)?;
        let sig_name = signal
            .or(rec.config.stop_signal.clone())
            .unwrap_or_else(|| "SIGTERM".into());
        let sig = berth_runtime::ops::signal::parse_signal(&sig_name)
            .map_err(|e| EngineError::bad_request(e.to_string()))?;
        let timeout = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        if timeout != 0 {
            let _ = self.shim(c).kill(sig).await;
        }
        let grace = if timeout < 0 {
            Duration::from_secs(u64::MAX / 4)
        } else {
            Duration::from_secs(timeout as u64)
        };
        if !Self::wait_stopped(c, grace).await {
            let _ = self.shim(c).kill(libc::SIGKILL).await;
            if !Self::wait_stopped(c, Duration::from_secs(30)).await {
                return Err(EngineError::internal(format!(
                    "container {} did not stop after SIGKILL",
                    c.id
                )));
            }
        }
        self.event(c, "stop", &[]);
        Ok(true)
    }

    /// Removes `c`, killing it first when `force`, and its anonymous
    /// volumes with `volumes`.
    pub async fn remove(
        &self,
        c: &Arc<Container>,
        force: bool,
        volumes: bool,
    ) -> Result<(), EngineError> {
        let _op = c.op.lock().await;
        if c.removed() {
            return Ok(());
        }
        if c.running() {
            if !force {
                return Err(EngineError {
                    kind: ErrorKind::Conflict,
                    message: format!(
                        "cannot remove container \"{}\": container is running: stop the container before removing or force remove",
                        c.record().name
                    ),
                });
            }
            c.update(|r| r.berth_stopped_by_user = true)?;
            let _ = self.shim(c).kill(libc::SIGKILL).await;
            if !Self::wait_stopped(c, Duration::from_secs(30)).await {
                return Err(EngineError::internal(format!(
                    "container {} did not stop after SIGKILL",
                    c.id
                )));
            }
        }
        let rec = c.record();
        let dir = c.dir.clone();
        let images = self.images.clone();
        let id = c.id.clone();
        // Rename first: a crash half way leaves no record that looks whole.
        let doomed = self.root.join(format!(".removing-{id}"));
        tokio::task::spawn_blocking(move || {
            let _ = berth_image::snapshot::unmount(&dir.join("rootfs"));
            std::fs::rename(&dir, &doomed)
                .map_err(|e| EngineError::internal(format!("remove container {id}: {e}")))?;
            let _ = images.snapshots.remove(&id);
            let _ = std::fs::remove_dir_all(&doomed);
            Ok::<_, EngineError>(())
        })
        .await
        .map_err(|e| EngineError::internal(e.to_string()))??;
        c.removed.store(true, Ordering::SeqCst);
        self.all.write().expect("containers lock").remove(&c.id);
        self.names.lock().expect("names lock").remove(&rec.name);
        self.execs.forget(&c.id);
        self.event(c, "destroy", &[]);
        if volumes {
            self.remove_anonymous_volumes(&rec.berth_volumes);
        }
        c.changes.send_modify(|n| *n += 1);
        Ok(())
    }

    /// The containers that use the volume `name`.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        self.list()
            .iter()
            .filter(|c| c.record().berth_volumes.iter().any(|m| m.name == name))
            .map(|c| c.id.clone())
            .collect()
    }

    /// Unmounts the container's root and lets go of its volumes.
    fn teardown(&self, c: &Container) {
        let _ = berth_image::snapshot::unmount(&c.rootfs());
        for mp in &c.record().berth_volumes {
            self.volumes.release(&mp.name);
        }
    }

    /// Renames `c`.
    pub fn rename(&self, c: &Container, new: &str) -> Result<(), EngineError> {
        if !valid_name(new) {
            return Err(EngineError::bad_request(format!(
                "Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let new = format!("/{}", new.trim_start_matches('/'));
        let old = c.record().name;
        {
            let mut names = self.names.lock().expect("names lock");
            if let Some(other) = names.get(&new) {
                return Err(EngineError {
                    kind: ErrorKind::Conflict,
                    message: format!(
                        "Conflict. The container name \"{new}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                    ),
                });
            }
            names.insert(new.clone(), c.id.clone());
            names.remove(&old);
        }
        c.update(|r| r.name = new)?;
        self.event(c, "rename", &[("oldName", old)]);
        Ok(())
    }

    /// `docker update`: new limits (and restart policy) for `c`, applied
    /// to its cgroups at once when it runs.
    pub async fn update_resources(
        &self,
        c: &Container,
        body: &serde_json::Value,
    ) -> Result<(), EngineError> {
        let mut host = c.record().host_config;
        let int = |k: &str| body.get(k).and_then(serde_json::Value::as_i64);
        if let Some(v) = int("Memory").filter(|v| *v != 0) {
            host.memory = v;
        }
        if let Some(v) = int("MemorySwap").filter(|v| *v != 0) {
            host.memory_swap = v;
        }
        if let Some(v) = int("NanoCpus").filter(|v| *v != 0) {
            host.nano_cpus = v;
        }
        if let Some(v) = int("CpuShares").filter(|v| *v != 0) {
            host.cpu_shares = v;
        }
        if let Some(v) = int("CpuQuota").filter(|v| *v != 0) {
            host.cpu_quota = v;
        }
        if let Some(v) = int("CpuPeriod").filter(|v| *v != 0) {
            host.cpu_period = v;
        }
        if let Some(v) = body
            .get("CpusetCpus")
            .and_then(serde_json::Value::as_str)
            .filter(|v| !v.is_empty())
        {
            host.cpuset_cpus = v.to_owned();
        }
        if let Some(v) = int("PidsLimit").filter(|v| *v != 0) {
            host.pids_limit = Some(v);
        }
        if let Some(p) = body
            .get("RestartPolicy")
            .filter(|p| p.get("Name").is_some_and(|n| n != ""))
        {
            host.restart_policy = serde_json::from_value(p.clone())
                .map_err(|e| EngineError::bad_request(format!("invalid RestartPolicy: {e}")))?;
            if host.auto_remove && !matches!(host.restart_policy.name.as_str(), "" | "no") {
                return Err(EngineError::bad_request(
                    "Restart policy cannot be updated because AutoRemove is enabled for the container",
                ));
            }
        }
        if c.running() {
            let mut resources = spec::resources(&host);
            if let Some(r) = resources.as_object_mut() {
                r.remove("devices");
            }
            let resources: oci_spec::runtime::LinuxResources = serde_json::from_value(resources)
                .map_err(|e| EngineError::bad_request(format!("invalid resources: {e}")))?;
            let root = self.runtime_root.clone();
            let id = c.id.clone();
            tokio::task::spawn_blocking(move || {
                berth_runtime::ops::info::update(&root, &id, &resources)
            })
            .await
            .map_err(|e| EngineError::internal(e.to_string()))?
            .map_err(|e| {
                EngineError::bad_request(format!("Cannot update container {}: {e}", c.id))
            })?;
        }
        c.update(|r| r.host_config = host)?;
        self.event(c, "update", &[]);
        Ok(())
    }

    /// Freezes (`pause`) or thaws `c`.
    pub async fn pause(&self, c: &Container, pause: bool) -> Result<(), EngineError> {
        let rec = c.record();
        if !rec.state.running {
            return Err(EngineError {
                kind: ErrorKind::Conflict,
                message: format!("Container {} is not running", c.id),
            });
        }
        if rec.state.paused == pause {
            return Err(EngineError {
                kind: ErrorKind::Conflict,
                message: if pause {
                    format!("Container {} is already paused", c.id)
                } else {
                    format!("Container {} is not paused", c.id)
                },
            });
        }
        let root = self.runtime_root.clone();
        let id = c.id.clone();
        tokio::task::spawn_blocking(move || {
            if pause {
                berth_runtime::ops::signal::pause(&root, &id)
            } else {
                berth_runtime::ops::signal::resume(&root, &id)
            }
        })
        .await
        .map_err(|e| EngineError::internal(e.to_string()))?
        .map_err(|e| EngineError::internal(e.to_string()))?;
        c.update(|r| r.state.paused = pause)?;
        self.event(c, if pause { "pause" } else { "unpause" }, &[]);
        Ok(())
    }

    /// The bytes in `c`'s writable layer.
    pub fn writable_size(&self, c: &Container) -> u64 {
        match self.images.snapshots.mounts(&c.id) {
            Ok(berth_image::snapshot::Mount::Overlay { upper, .. }) => volume_api::dir_size(&upper),
            Ok(berth_image::snapshot::Mount::Bind { source }) => volume_api::dir_size(&source),
            Err(_) => 0,
        }
    }

    /// The size of the image `id` (0 when it is gone).
    pub fn image_size(&self, id: &str) -> i64 {
        crate::images::records(&self.images)
            .iter()
            .find(|i| i.id.to_string() == id)
            .map_or(0, |i| i.size as i64)
    }

    /// The ids of images that containers use.
    pub fn images_in_use(&self) -> Vec<String> {
        self.list().iter().map(|c| c.record().image).collect()
    }
}
