//! Acting on containers: kill, stop, remove, rename, update, pause.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use berth_model::ErrorKind;

use super::{Container, Containers, spec, valid_name};
use crate::EngineError;

impl Containers {
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
}
