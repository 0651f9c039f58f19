//! Creating containers: the image's config merged under the request's,
//! the name reserved, the volumes made, the writable snapshot prepared.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use berth_api::container::{CreateRequest, CreateResponse};
use berth_image::ImageConfig;
use berth_image::snapshot::chain_ids;
use berth_model::{Digest, ErrorKind};

use super::{Containers, MountPoint, Record, State, random_hex, spec, valid_name};
use crate::EngineError;
use crate::volumes::ANONYMOUS;

const ADJECTIVES: &[&str] = &[
    "agile", "bold", "brave", "bright", "calm", "clever", "crisp", "eager", "fair", "gentle",
    "happy", "keen", "kind", "lively", "lucid", "merry", "nimble", "proud", "quick", "quiet",
    "sharp", "steady", "swift", "tidy", "vivid", "warm", "wise", "witty", "zen", "jolly",
];

const NOUNS: &[&str] = &[
    "anchor", "beacon", "buoy", "cabin", "capstan", "compass", "current", "dock", "ferry",
    "galley", "harbor", "helm", "hull", "jetty", "keel", "lagoon", "lantern", "mast", "mooring",
    "pier", "quay", "rudder", "sail", "schooner", "shoal", "skiff", "tide", "wharf", "wake",
    "reef",
];

fn generated_name() -> String {
    let r = random_hex(4);
    let n = u32::from_str_radix(&r, 16).unwrap_or(0) as usize;
    format!(
        "{}_{}",
        ADJECTIVES[n % ADJECTIVES.len()],
        NOUNS[(n / ADJECTIVES.len()) % NOUNS.len()]
    )
}

/// Fills an empty volume from the image's files at `path` (as Docker
/// does on first use), resolving `path` inside `rootfs` so that the image
/// cannot point the copy elsewhere.
pub(super) fn copy_up(rootfs: &Path, path: &str, data: &Path) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let empty = std::fs::read_dir(data)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false);
    if !empty {
        return Ok(());
    }
    let root = berth_sys::fs::open_dir_path(rootfs)
        .map_err(|e| format!("open {}: {e}", rootfs.display()))?;
    let Ok(dir) =
        berth_sys::fs::open_in_root(&root, Path::new(path), libc::O_PATH | libc::O_DIRECTORY, 0)
    else {
        return Ok(());
    };
    let source = format!("/proc/{}/fd/{}/.", std::process::id(), dir.as_raw_fd());
    let out = std::process::Command::new("cp")
        .arg("-a")
        .arg(&source)
        .arg(data)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("copy the image's {path} into its volume: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "copy the image's {path} into its volume: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

fn merge_env(image: &[String], request: &[String]) -> Vec<String> {
    let key = |e: &str| {
        e.split_once('=')
            .map(|(k, _)| k.to_owned())
            .unwrap_or_else(|| e.to_owned())
    };
    let mut out: Vec<String> = image.to_vec();
    for e in request {
        let k = key(e);
        match out.iter().position(|x| key(x) == k) {
            Some(i) => out[i] = e.clone(),
            None => out.push(e.clone()),
        }
    }
    out
}

impl Containers {
    /// Creates a container from `req` (`POST /containers/create`).
    pub async fn create(
        self: &Arc<Self>,
        req: CreateRequest,
        name: Option<String>,
        platform: Option<berth_model::Platform>,
    ) -> Result<CreateResponse, EngineError> {
        let mut req = req;
        req.config.rest.remove("NetworkingConfig");
        if req.config.image.is_empty() {
            return Err(EngineError::bad_request(
                "no image given: config.Image is empty",
            ));
        }
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) if !valid_name(&n) => {
                return Err(EngineError::bad_request(format!(
                    "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )));
            }
            Some(n) => format!("/{}", n.trim_start_matches('/')),
            None => loop {
                let n = format!("/{}", generated_name());
                if !self.names.lock().expect("names lock").contains_key(&n) {
                    break n;
                }
            },
        };
        match req.host_config.restart_policy.name.as_str() {
            "" | "no" | "always" | "unless-stopped" | "on-failure" => {}
            other => {
                return Err(EngineError::bad_request(format!(
                    "invalid restart policy {other:?}: use no, always, unless-stopped or on-failure"
                )));
            }
        }
        if req.host_config.auto_remove
            && !matches!(req.host_config.restart_policy.name.as_str(), "" | "no")
        {
            return Err(EngineError::bad_request(
                "conflicting options: cannot specify both --restart and --rm",
            ));
        }
        let images = self.images.clone();
        let image_name = req.config.image.clone();
        let (image_id, image_config, chain) = tokio::task::spawn_blocking(move || {
            let (_, target) = images.find(&image_name).map_err(|e| {
                if e.kind == berth_model::ErrorKind::NotFound {
                    let shown = berth_model::ImageRef::parse(&image_name)
                        .map(|r| crate::images::repository_and_tag(&r))
                        .map(|(repo, tag)| format!("{repo}:{tag}"))
                        .unwrap_or(image_name.clone());
                    EngineError::not_found(format!("No such image: {shown}"))
                } else {
                    e
                }
            })?;
            let mismatch = |actual: &str| {
                let wanted = platform.as_ref().map(ToString::to_string).unwrap_or_default();
                EngineError::not_found(format!(
                    "image with reference {image_name} was found but does not match the specified platform: wanted {wanted}, actual: {actual}"
                ))
            };
            let (_, manifest) = images
                .resolve_for(&target, platform.as_ref())
                .map_err(|e| {
                    if platform.is_some() {
                        mismatch("none of the platforms pulled")
                    } else {
                        EngineError::internal(e)
                    }
                })?;
            let config = ImageConfig::from_slice(
                &images
                    .read_blob(&manifest.config.digest)
                    .map_err(EngineError::internal)?,
            )
            .map_err(|e| EngineError::internal(e.to_string()))?;
            if let Some(wanted) = &platform {
                let actual = berth_model::Platform {
                    os: config.os.clone(),
                    architecture: config.architecture.clone(),
                    variant: config.variant.clone(),
                    ..wanted.clone()
                };
                if !wanted.matches(&actual) {
                    return Err(mismatch(&actual.to_string()));
                }
            }
            // The layers of the manifest chosen (for --platform, maybe not
            // the host's).
            images
                .snapshots
                .unpack(&images.content, &manifest.layers, &config.rootfs.diff_ids, |_, _| {})
                .map_err(|e| EngineError::internal(format!("unpack {image_name}: {e}")))?;
            let chain = chain_ids(&config.rootfs.diff_ids).pop();
            Ok::<_, EngineError>((manifest.config.digest, config, chain))
        })
        .await
        .map_err(|e| EngineError::internal(e.to_string()))??;
        let id = random_hex(32);
        let mut cfg = req.config;
        let img = image_config.config.clone().unwrap_or_default();
        cfg.env = merge_env(img.env.as_deref().unwrap_or_default(), &cfg.env);
        match &cfg.entrypoint {
            Some(e) => {
                if e.len() == 1 && e[0].is_empty() {
                    cfg.entrypoint = None;
                }
            }
            None => {
                cfg.entrypoint = img.entrypoint.clone();
                if cfg.cmd.is_none() {
                    cfg.cmd = img.cmd.clone();
                }
            }
        }
        let mut argv: Vec<String> = cfg.entrypoint.clone().unwrap_or_default();
        argv.extend(cfg.cmd.clone().unwrap_or_default());
        if argv.is_empty() {
            return Err(EngineError::bad_request("no command specified"));
        }
        if cfg.working_dir.is_empty() {
            cfg.working_dir = img.working_dir.clone().unwrap_or_default();
        }
        if cfg.user.is_empty() {
            cfg.user = img.user.clone().unwrap_or_default();
        }
        let mut labels = img.labels.clone().unwrap_or_default();
        labels.extend(std::mem::take(&mut cfg.labels));
        cfg.labels = labels;
        if cfg.stop_signal.is_none() {
            cfg.stop_signal = img.stop_signal.clone();
        }
        // The image's health check, unless the request has its own (or
        // turns it off with `NONE`); fields it leaves out come from the
        // image's.
        let image_check = img
            .healthcheck
            .as_ref()
            .and_then(|h| serde_json::to_value(h).ok());
        cfg.healthcheck = match (cfg.healthcheck.take(), image_check) {
            (None, image) => image,
            (Some(mine), Some(serde_json::Value::Object(mut base)))
                if mine.get("Test").is_none() =>
            {
                if let serde_json::Value::Object(m) = mine {
                    base.extend(m);
                }
                Some(serde_json::Value::Object(base))
            }
            (mine, _) => mine,
        };
        if cfg.hostname.is_empty() {
            cfg.hostname = id[..12].to_owned();
        }
        if let Some(ports) = &img.exposed_ports {
            let mine = cfg.exposed_ports.get_or_insert_with(Default::default);
            for p in ports.keys() {
                mine.entry(p.clone())
                    .or_insert_with(|| serde_json::json!({}));
            }
        }
        if let Some(vols) = &img.volumes {
            let mine = cfg.volumes.get_or_insert_with(Default::default);
            for v in vols.keys() {
                mine.entry(v.clone())
                    .or_insert_with(|| serde_json::json!({}));
            }
        }
        let mut host = req.host_config;
        if host.network_mode.is_empty() {
            host.network_mode = "default".into();
        }
        if host.log_config.kind.is_empty() {
            host.log_config.kind = "json-file".into();
        }
        match host.log_config.kind.as_str() {
            "json-file" | "local" | "none" => {}
            other => {
                return Err(EngineError::bad_request(format!(
                    "log driver {other:?} is not supported: use json-file, local or none"
                )));
            }
        }
        for (k, v) in &host.log_config.config {
            let ok = match k.as_str() {
                "max-size" => berth_model::units::parse_bytes(v).is_ok(),
                "max-file" => v.parse::<u32>().is_ok_and(|n| n >= 1),
                "compress" | "mode" | "labels" | "env" | "tag" => true,
                _ => false,
            };
            if !ok {
                return Err(EngineError::bad_request(format!(
                    "invalid log option {k}={v:?}"
                )));
            }
        }
        spec::capabilities(&host).map_err(EngineError::bad_request)?;
        // The name first: a refused name changes nothing (no volume made).
        {
            let mut names = self.names.lock().expect("names lock");
            if let Some(other) = names.get(&name) {
                return Err(EngineError {
                    kind: ErrorKind::Conflict,
                    message: format!(
                        "Conflict. The container name \"{name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                    ),
                });
            }
            names.insert(name.clone(), id.clone());
        }
        let (volumes, binds_from) = match self.resolve_volumes(&cfg, &host) {
            Ok(v) => v,
            Err(e) => {
                self.names.lock().expect("names lock").remove(&name);
                return Err(e);
            }
        };
        let record = Record {
            id: id.clone(),
            created: berth_model::time::now_rfc3339_nanos(),
            path: argv[0].clone(),
            args: argv[1..].to_vec(),
            state: State::default(),
            image: image_id.to_string(),
            name: name.clone(),
            restart_count: 0,
            config: cfg,
            host_config: host,
            berth_chain: chain.as_ref().map(Digest::to_string),
            berth_stopped_by_user: false,
            berth_volumes: volumes,
            berth_binds_from: binds_from,
        };
        let this = self.clone();
        let rec2 = record.clone();
        let made = tokio::task::spawn_blocking(move || this.write_new(&rec2, chain.as_ref()))
            .await
            .map_err(|e| EngineError::internal(e.to_string()))
            .and_then(|r| r);
        if let Err(e) = made {
            self.names.lock().expect("names lock").remove(&name);
            self.remove_anonymous_volumes(&record.berth_volumes);
            return Err(e);
        }
        let c = self.insert(record);
        self.event(&c, "create", &[]);
        Ok(CreateResponse {
            id,
            warnings: Vec::new(),
        })
    }

    /// The container's directory, snapshot and record, or nothing.
    fn write_new(&self, rec: &Record, chain: Option<&Digest>) -> Result<(), EngineError> {
        let dir = self.root.join(&rec.id);
        let result = (|| {
            std::fs::create_dir(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
            std::fs::create_dir(dir.join("rootfs"))
                .map_err(|e| format!("create {}: {e}", dir.display()))?;
            self.images
                .snapshots
                .prepare(&rec.id, chain)
                .map_err(|e| format!("prepare the container's filesystem: {e}"))?;
            berth_sys::fs::atomic_write(
                &dir.join("container.json"),
                &serde_json::to_vec_pretty(rec).expect("records serialise"),
            )
            .map_err(|e| format!("write the container's record: {e}"))
        })();
        if let Err(e) = result {
            let _ = self.images.snapshots.remove(&rec.id);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(EngineError::internal(e));
        }
        Ok(())
    }

    /// Removes the anonymous volumes among `mounts` that no container uses.
    pub(super) fn remove_anonymous_volumes(&self, mounts: &[MountPoint]) {
        for mp in mounts {
            if self.volumes.get(&mp.name).is_ok_and(|v| v.anonymous()) {
                let users = self.volume_users(&mp.name);
                let _ = self.volumes.remove(&mp.name, &users, true);
            }
        }
    }

    /// The volumes of a new container: `-v NAME:/path`, `-v /path`,
    /// `--mount type=volume`, and the image's `VOLUME`s not otherwise
    /// mounted (anonymous), created as needed.
    fn resolve_volumes(
        &self,
        cfg: &berth_api::container::ContainerConfig,
        host: &berth_api::container::HostConfig,
    ) -> Result<(Vec<MountPoint>, Vec<String>), EngineError> {
        let mut wanted: Vec<Wanted> = Vec::new();
        let mut taken: Vec<String> = host.tmpfs.keys().cloned().collect();
        for b in &host.binds {
            let (src, dst, opts) = spec::split_bind(b).map_err(EngineError::bad_request)?;
            if !dst.starts_with('/') {
                return Err(EngineError::bad_request(format!(
                    "invalid volume specification {b:?}: the container path must be absolute"
                )));
            }
            taken.push(dst.to_owned());
            if src.starts_with('/') {
                continue;
            }
            wanted.push(Wanted {
                name: src.to_owned(),
                dst: dst.to_owned(),
                ro: opts.split(',').any(|o| o == "ro"),
                no_copy: opts.split(',').any(|o| o == "nocopy"),
                mode: opts.to_owned(),
                ..Default::default()
            });
        }
        for m in &host.mounts {
            taken.push(m.target.clone());
            if m.kind != "volume" {
                continue;
            }
            let options = m.rest.get("VolumeOptions");
            if let Some(sub) = options
                .and_then(|o| o.get("Subpath"))
                .and_then(serde_json::Value::as_str)
                .filter(|s| !s.is_empty())
            {
                return Err(EngineError::bad_request(format!(
                    "invalid mount config for type \"volume\": subpath {sub:?} is not supported: mount the whole volume"
                )));
            }
            let map = |key: &str| -> BTreeMap<String, String> {
                let found = match key {
                    "Labels" => options.and_then(|o| o.get("Labels")),
                    _ => options
                        .and_then(|o| o.get("DriverConfig"))
                        .and_then(|d| d.get("Options")),
                };
                found
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                    .unwrap_or_default()
            };
            let no_copy = options
                .and_then(|v| v.get("NoCopy"))
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false);
            let driver = options
                .and_then(|o| o.get("DriverConfig"))
                .and_then(|d| d.get("Name"))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned);
            wanted.push(Wanted {
                name: m.source.clone(),
                dst: m.target.clone(),
                ro: m.read_only,
                no_copy,
                mode: if no_copy { "nocopy" } else { "" }.into(),
                driver,
                options: map("Options"),
                labels: map("Labels"),
            });
        }
        let mut out: Vec<MountPoint> = Vec::new();
        let mut binds_from = Vec::new();
        for from in &host.volumes_from {
            let (name, mode) = match from.rsplit_once(':') {
                Some((n, m)) if m == "ro" || m == "rw" => (n, Some(m)),
                _ => (from.as_str(), None),
            };
            let other = self.get(name)?.record();
            let free = |dst: &str, taken: &[String]| {
                !taken.iter().any(|t| t == dst) && !wanted.iter().any(|w| w.dst == dst)
            };
            for mp in other.berth_volumes.clone() {
                if !free(&mp.destination, &taken) {
                    continue;
                }
                taken.push(mp.destination.clone());
                // `:ro` makes it read-only; `:rw` cannot make a read-only
                // one writable.
                let rw = mp.rw && mode != Some("ro");
                out.push(MountPoint { rw, ..mp });
            }
            // Its bind mounts too, as Docker takes them.
            for b in bind_specs(&other) {
                let Ok((src, dst, opts)) = spec::split_bind(&b) else {
                    continue;
                };
                if !src.starts_with('/') || !free(dst, &taken) {
                    continue;
                }
                taken.push(dst.to_owned());
                let ro = mode == Some("ro") || opts.split(',').any(|o| o == "ro");
                binds_from.push(format!("{src}:{dst}:{}", if ro { "ro" } else { "rw" }));
            }
        }
        // The image's VOLUMEs last: what is mounted there otherwise wins.
        for path in cfg.volumes.iter().flat_map(|v| v.keys()) {
            if !taken.contains(path) && !wanted.iter().any(|w| &w.dst == path) {
                wanted.push(Wanted {
                    dst: path.clone(),
                    ..Default::default()
                });
            }
        }
        for w in wanted {
            let Wanted {
                name,
                dst,
                ro,
                no_copy: nocopy,
                mode,
                driver,
                options,
                mut labels,
            } = w;
            if name.is_empty() {
                labels.insert(ANONYMOUS.to_owned(), String::new());
            }
            let made = self.volumes.create(
                (!name.is_empty()).then_some(name.as_str()),
                driver.as_deref(),
                options,
                labels,
            );
            let v = match made {
                Ok(v) => v,
                Err(e) => {
                    self.remove_anonymous_volumes(&out);
                    return Err(e);
                }
            };
            out.push(MountPoint {
                kind: "volume".into(),
                source: self.volumes.data(&v.name).display().to_string(),
                name: v.name,
                destination: dst,
                driver: "local".into(),
                mode,
                rw: !ro,
                propagation: String::new(),
                no_copy: nocopy,
            });
        }
        Ok((out, binds_from))
    }
}

/// A volume a new container asks for.
#[derive(Default)]
struct Wanted {
    /// Empty for an anonymous volume.
    name: String,
    dst: String,
    ro: bool,
    no_copy: bool,
    /// The options as given (`ro`, `nocopy`), for inspect.
    mode: String,
    /// `--mount volume-driver=`: only `local` exists.
    driver: Option<String>,
    /// `--mount volume-opt=`: the local driver's options for a new volume.
    options: BTreeMap<String, String>,
    /// `--mount volume-label=`.
    labels: BTreeMap<String, String>,
}

/// A container's bind mounts as `-v` specs: `-v /src:/dst` and `--mount
/// type=bind`.
pub(super) fn bind_specs(rec: &super::Record) -> Vec<String> {
    let host = &rec.host_config;
    let mut out: Vec<String> = host
        .binds
        .iter()
        .filter(|b| b.starts_with('/'))
        .cloned()
        .collect();
    for m in host.mounts.iter().filter(|m| m.kind == "bind") {
        let mut mode = if m.read_only { "ro" } else { "rw" }.to_owned();
        if let Some(p) = spec::bind_propagation(m) {
            mode = format!("{mode},{p}");
        }
        out.push(format!("{}:{}:{mode}", m.source, m.target));
    }
    out.extend(rec.berth_binds_from.iter().cloned());
    out
}
