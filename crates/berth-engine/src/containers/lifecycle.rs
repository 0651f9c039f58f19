//! Running containers: start (the bundle, the shim, its stdio), the watch
//! on the exit, reconnection after a daemon restart, and what an exit
//! sets off (`--rm`, restart policies).

use std::sync::Arc;
use std::time::Duration;

use berth_model::ErrorKind;
use berth_shim::client::ShimClient;
use berth_shim::{ExitRecord, ShimConfig};

use super::{Container, Containers, Record, State, ZERO_TIME, create, spec, start_failure_code};
use crate::EngineError;

/// The exit code and API error of a failed create or start (`what`).
/// The docker CLI picks its exit code (126, 127) from the message's
/// words, which the runtime writes as runc does.
fn start_error(what: &str, message: &str) -> (i32, EngineError) {
    let code = start_failure_code(message);
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
        // As Docker: a working directory the image lacks is made.
        if !rec.config.working_dir.is_empty()
            && let Ok(root) = berth_sys::fs::open_dir_path(&rootfs)
        {
            let _ = berth_sys::fs::mkdir_all_in_root(
                &root,
                std::path::Path::new(&rec.config.working_dir),
                0o755,
            );
        }
        // Rebuilt at every start, so not fsynced; readable by the
        // container's users, as Docker's are.
        let write = |name: &str, text: String| {
            let p = c.dir.join(name);
            berth_sys::fs::replace_file(&p, text.as_bytes(), 0o644)
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
        berth_sys::fs::replace_file(
            &bundle.join("config.json"),
            &serde_json::to_vec_pretty(&spec).expect("specs serialise"),
            0o600,
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
                .and_then(|s| berth_model::units::parse_bytes(s).ok())
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
        tokio::spawn(super::stdio::pump(read, rec.config.tty, c.output.clone()));
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
    pub(super) async fn reconnect(self: &Arc<Self>, c: &Arc<Container>) {
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

    /// Unmounts the container's root and lets go of its volumes.
    pub(super) fn teardown(&self, c: &Container) {
        let _ = berth_image::snapshot::unmount(&c.rootfs());
        for mp in &c.record().berth_volumes {
            self.volumes.release(&mp.name);
        }
    }
}
