//! The build: stages into images, step by step, cached.
//!
//! Each step turns a [`State`] (an image in the content store: manifest,
//! config, layers) into the next. A step's cache key hashes its parent's
//! manifest digest, the instruction after expansion and its inputs (the
//! contents of the files a COPY reads, the build args a RUN sees); the
//! cache maps keys to the manifests they made, so a fully cached build
//! reads one small file per step and writes nothing. RUN executes in a
//! writable snapshot over the parent's layers through the [`Host`] (the
//! engine's runtime); its layer is the snapshot's upper directory. COPY
//! and ADD write their layer straight from the sources. Metadata-only
//! instructions change the config and add a history entry, no layer.
//!
//! Stages the target does not need are skipped; the others run on their
//! own threads, each waiting only for the stages it reads from.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use berth_image::archive::{store_blob, store_manifest};
use berth_image::manifest::{ContainerConfig, Empty, HealthConfig, History, media_types};
use berth_image::snapshot::{Mount, Snapshotter};
use berth_image::{ContentStore, Descriptor, ImageConfig, ImageManifest, Manifest};
use berth_model::{Digest, Platform};
use sha2::{Digest as _, Sha256};

use crate::context::{Confine, LayerWriter, Matched, Ownership, Tree, clean, has_glob};
use crate::ignore::IgnoreRules;
use crate::instructions::{Command, CopySpec, Dockerfile, Health, Instruction, Kind, RunMount};
use crate::words::Lexer;

/// The shell of a stage without SHELL.
const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// The build args every build knows without an ARG line.
pub(crate) const PROXY_ARGS: [&str; 8] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// What the engine does for the builder.
pub trait Host: Sync {
    /// The image manifest of `reference` for `platform`, pulled when it is
    /// missing or `pull` is set. `say` reports progress.
    fn image(
        &self,
        reference: &str,
        platform: &Platform,
        pull: bool,
        say: &dyn Fn(&str),
    ) -> Result<Descriptor, String>;

    /// Runs `process` in the root filesystem mounted at `rootfs`, passing
    /// its output (stdout and stderr) to `output`: its exit code.
    fn run(
        &self,
        rootfs: &Path,
        process: &Process,
        output: &mut dyn FnMut(&[u8]),
    ) -> Result<i32, String>;

    /// Files the engine puts in every container (mount points of
    /// `/etc/hosts` and the like), left out of RUN's layers.
    fn engine_made(&self, path: &str) -> bool;

    /// Downloads `url` (ADD) into the file `to`.
    fn fetch(&self, url: &str, to: &Path) -> Result<(), String>;
}

/// A mount for a RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessMount {
    /// `bind` or `tmpfs`.
    pub kind: String,
    /// The host path (bind).
    pub source: PathBuf,
    /// The path in the container.
    pub destination: String,
    /// Read-only.
    pub readonly: bool,
}

/// A RUN's process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// A name for the container (unique while it runs).
    pub id: String,
    /// argv.
    pub args: Vec<String>,
    /// `NAME=value`.
    pub env: Vec<String>,
    /// The working directory.
    pub cwd: String,
    /// `user[:group]`.
    pub user: String,
    /// Share the host's network (else none).
    pub host_network: bool,
    /// Extra mounts.
    pub mounts: Vec<ProcessMount>,
}

/// What a build reports as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Step `step` of `total` starts: `name` is the instruction, `stage`
    /// `[name n/m]` places it in its stage.
    Step {
        /// The step's number (1-based, over the stages built).
        step: usize,
        /// Steps in all.
        total: usize,
        /// `[stage n/m]`.
        stage: String,
        /// The instruction after expansion.
        name: String,
    },
    /// Output of a step's process.
    Output {
        /// The step.
        step: usize,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// The step was found in the cache.
    Cached {
        /// The step.
        step: usize,
    },
    /// The step finished.
    Done {
        /// The step.
        step: usize,
        /// Seconds it took.
        seconds: f64,
        /// The image the step made.
        image: Digest,
    },
    /// Something the user should know.
    Warning(String),
}

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The Dockerfile's name, for messages.
    pub dockerfile_name: String,
    /// The build context (a directory).
    pub context: PathBuf,
    /// `.dockerignore`.
    pub ignore: IgnoreRules,
    /// `--build-arg`s.
    pub build_args: BTreeMap<String, String>,
    /// `--target`.
    pub target: Option<String>,
    /// `--label`s for the image.
    pub labels: BTreeMap<String, String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--pull`.
    pub pull: bool,
    /// `--platform` (default: the host's).
    pub platform: Option<Platform>,
}

/// A failed build: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    /// The Dockerfile line at fault.
    pub line: Option<usize>,
    /// What went wrong.
    pub message: String,
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for BuildError {}

fn fail(line: usize, message: impl Into<String>) -> BuildError {
    BuildError {
        line: Some(line),
        message: message.into(),
    }
}

/// The stores a build reads and writes.
pub struct Stores<'a> {
    /// Blobs.
    pub content: &'a ContentStore,
    /// Unpacked layers.
    pub snapshots: &'a Snapshotter,
    /// The builder's directory (`<data-root>/builds`): the cache index,
    /// cache mounts, scratch space.
    pub dir: PathBuf,
}

/// An image in the making.
#[derive(Debug, Clone)]
pub struct State {
    /// Its manifest (none: `scratch`, nothing stored yet).
    pub descriptor: Option<Descriptor>,
    /// The manifest.
    pub manifest: ImageManifest,
    /// The config.
    pub config: ImageConfig,
}

impl State {
    fn scratch(platform: &Platform) -> State {
        State {
            descriptor: None,
            manifest: ImageManifest {
                schema_version: 2,
                media_type: Some(media_types::OCI_MANIFEST.to_owned()),
                artifact_type: None,
                config: Descriptor::new(
                    media_types::OCI_CONFIG,
                    berth_image::content::sha256_of(b"{}"),
                    2,
                ),
                layers: Vec::new(),
                subject: None,
                annotations: None,
                extra: Default::default(),
            },
            config: ImageConfig {
                architecture: platform.architecture.clone(),
                os: platform.os.clone(),
                variant: platform.variant.clone(),
                config: Some(ContainerConfig {
                    env: Some(vec![format!("PATH={}", crate::DEFAULT_PATH)]),
                    ..ContainerConfig::default()
                }),
                ..ImageConfig::default()
            },
        }
    }

    /// Reads the image whose manifest is `descriptor`.
    pub fn load(content: &ContentStore, descriptor: &Descriptor) -> Result<State, String> {
        let bytes = content
            .read_document(&descriptor.digest)
            .map_err(|e| e.to_string())?;
        let manifest = match Manifest::from_slice(&bytes, Some(&descriptor.media_type))
            .map_err(|e| e.to_string())?
        {
            Manifest::Image(m) => m,
            Manifest::Index(_) => return Err("an index where an image was expected".into()),
        };
        let config = ImageConfig::from_slice(
            &content
                .read_document(&manifest.config.digest)
                .map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
        Ok(State {
            descriptor: Some(descriptor.clone()),
            manifest,
            config,
        })
    }

    /// What the cache knows this state by.
    fn id(&self) -> String {
        match &self.descriptor {
            Some(d) => d.digest.to_string(),
            None => format!("scratch:{}/{}", self.config.os, self.config.architecture),
        }
    }

    /// The image ID (the config's digest).
    pub fn image_id(&self) -> &Digest {
        &self.manifest.config.digest
    }

    fn container(&self) -> ContainerConfig {
        self.config.config.clone().unwrap_or_default()
    }

    fn env(&self) -> Vec<String> {
        self.container().env.unwrap_or_default()
    }

    fn shell(&self) -> Vec<String> {
        self.container()
            .extra
            .get("Shell")
            .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_SHELL.iter().map(|s| s.to_string()).collect())
    }
}

/// The result of a build.
#[derive(Debug, Clone)]
pub struct Built {
    /// The image's manifest.
    pub descriptor: Descriptor,
    /// Its ID.
    pub id: Digest,
}

/// The per-stage results, filled as stages finish.
struct Slots {
    results: Mutex<Vec<Option<Result<State, BuildError>>>>,
    ready: Condvar,
}

impl Slots {
    fn wait(&self, index: usize) -> Result<State, BuildError> {
        let mut r = self.results.lock().expect("slots lock");
        loop {
            if let Some(result) = &r[index] {
                return result.clone().map_err(|_| BuildError {
                    line: None,
                    message: format!("stage {index} failed"),
                });
            }
            r = self.ready.wait(r).expect("slots lock");
        }
    }

    fn set(&self, index: usize, result: Result<State, BuildError>) {
        self.results.lock().expect("slots lock")[index] = Some(result);
        self.ready.notify_all();
    }
}

/// A build in progress.
struct Builder<'a> {
    stores: &'a Stores<'a>,
    host: &'a dyn Host,
    options: &'a Options,
    file: &'a Dockerfile,
    lexer: Lexer,
    platform: Platform,
    globals: BTreeMap<String, Option<String>>,
    numbers: Vec<usize>,
    total: usize,
    needed: Vec<bool>,
    slots: Slots,
    events: &'a (dyn Fn(Event) + Sync),
    used_args: Mutex<HashSet<String>>,
}

/// Builds `file` (parsed from the Dockerfile) per `options`.
pub fn build(
    stores: &Stores<'_>,
    host: &dyn Host,
    file: &Dockerfile,
    options: &Options,
    events: &(dyn Fn(Event) + Sync),
) -> Result<Built, BuildError> {
    let platform = options.platform.clone().unwrap_or_else(Platform::host);
    let mut b = Builder {
        stores,
        host,
        options,
        file,
        lexer: Lexer::new(file.escape),
        globals: BTreeMap::new(),
        numbers: Vec::new(),
        total: 0,
        needed: vec![false; file.stages.len()],
        slots: Slots {
            results: Mutex::new(vec![None; file.stages.len()]),
            ready: Condvar::new(),
        },
        events,
        used_args: Mutex::new(HashSet::new()),
        platform,
    };
    b.globals = b.global_args()?;
    let target = match &options.target {
        Some(t) => file
            .stage_index(t)
            .filter(|_| t.parse::<usize>().is_err())
            .ok_or_else(|| BuildError {
                line: None,
                message: format!("target stage \"{t}\" could not be found"),
            })?,
        None => file.stages.len() - 1,
    };
    b.mark_needed(target)?;
    let mut n = 0;
    for (i, s) in file.stages.iter().enumerate() {
        b.numbers.push(n + 1);
        if b.needed[i] {
            n += 1 + s.instructions.len();
        }
    }
    b.total = n;
    std::fs::create_dir_all(stores.dir.join("tmp")).map_err(|e| BuildError {
        line: None,
        message: format!("create {}: {e}", stores.dir.display()),
    })?;
    let b = &b;
    let mut state = std::thread::scope(|scope| {
        for i in 0..file.stages.len() {
            if b.needed[i] && i != target {
                scope.spawn(move || {
                    let r = b.stage(i);
                    b.slots.set(i, r);
                });
            }
        }
        let r = b.stage(target);
        b.slots.set(target, r.clone());
        r
    })?;
    let unused: Vec<String> = {
        let used = b.used_args.lock().expect("args lock");
        options
            .build_args
            .keys()
            .filter(|k| !used.contains(*k) && !PROXY_ARGS.contains(&k.as_str()))
            .cloned()
            .collect()
    };
    if !unused.is_empty() {
        (b.events)(Event::Warning(format!(
            "One or more build-args [{}] were not consumed",
            unused.join(" ")
        )));
    }
    if !options.labels.is_empty() {
        let labels = options.labels.clone();
        let key = b.key(&["labels", &state.id(), &format!("{labels:?}")]);
        state = match b.cached(&key) {
            Some(s) => s,
            None => {
                let mut c = state.container();
                c.labels.get_or_insert_with(Default::default).extend(labels);
                let s = b.commit(&state, None, c, "LABEL (--label)".into(), true)?;
                b.remember(&key, &s);
                s
            }
        };
    }
    if state.descriptor.is_none() {
        // FROM scratch and nothing else: an image with no layers.
        let c = state.container();
        state = b.commit(&state, None, c, "FROM scratch".into(), true)?;
    }
    Ok(Built {
        id: state.image_id().clone(),
        descriptor: state.descriptor.expect("stored"),
    })
}

/// Resolves `user[:group]` to numbers in `root` (numbers need no root).
fn owner(root: Option<&Path>, spec: &str) -> Result<(u32, u32), String> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if let (Ok(uid), Some(Ok(gid))) = (u.parse::<u32>(), g.map(str::parse::<u32>)) {
        return Ok((uid, gid));
    }
    if let (Ok(uid), None) = (u.parse::<u32>(), g) {
        return Ok((uid, uid));
    }
    let Some(root) = root else {
        return Err(format!(
            "unable to resolve --chown={spec}: the image has no /etc/passwd"
        ));
    };
    let user = berth_sys::users::resolve(root, spec)?;
    // `--chown=name` takes the user's own group, as `name:name`.
    let gid = if g.is_none() && u.parse::<u32>().is_ok() {
        user.uid
    } else {
        user.gid
    };
    Ok((user.uid, gid))
}

/// Per-stage variables: the ARGs declared in it (`None`: declared with no
/// value).
#[derive(Default)]
struct Scope {
    args: BTreeMap<String, Option<String>>,
    cmd_set: bool,
}

/// Guard of a mounted writable snapshot: unmounted and removed on drop.
struct Rootfs<'a> {
    snapshots: &'a Snapshotter,
    key: String,
    dir: PathBuf,
    mount: Mount,
    mounted: bool,
}

impl Rootfs<'_> {
    fn unmount(&mut self) {
        if self.mounted {
            let _ = berth_image::snapshot::unmount(&self.dir);
            self.mounted = false;
        }
    }
}

impl Drop for Rootfs<'_> {
    fn drop(&mut self) {
        self.unmount();
        let _ = std::fs::remove_dir(&self.dir);
        let _ = self.snapshots.remove(&self.key);
    }
}

fn random_key(prefix: &str) -> String {
    let mut bytes = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut bytes);
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}-{hex}")
}

impl Builder<'_> {
    fn global_args(&self) -> Result<BTreeMap<String, Option<String>>, BuildError> {
        let mut g: BTreeMap<String, Option<String>> = BTreeMap::new();
        let p = &self.platform;
        let host = Platform::host();
        let platform_args = |prefix: &str, p: &Platform| {
            let mut full = format!("{}/{}", p.os, p.architecture);
            if let Some(v) = &p.variant {
                full.push('/');
                full.push_str(v);
            }
            vec![
                (format!("{prefix}PLATFORM"), full),
                (format!("{prefix}OS"), p.os.clone()),
                (format!("{prefix}ARCH"), p.architecture.clone()),
                (
                    format!("{prefix}VARIANT"),
                    p.variant.clone().unwrap_or_default(),
                ),
            ]
        };
        for (k, v) in platform_args("TARGET", p)
            .into_iter()
            .chain(platform_args("BUILD", &host))
        {
            g.insert(k, Some(v));
        }
        for (line, a) in &self.file.meta_args {
            let value = match self.options.build_args.get(&a.name) {
                Some(v) => {
                    self.used(&a.name);
                    Some(v.clone())
                }
                None => match &a.default {
                    Some(d) => Some(self.expand(*line, d, &|n| g.get(n).cloned().flatten())?),
                    None => None,
                },
            };
            g.insert(a.name.clone(), value);
        }
        Ok(g)
    }

    fn used(&self, name: &str) {
        self.used_args
            .lock()
            .expect("args lock")
            .insert(name.to_owned());
    }

    fn expand(
        &self,
        line: usize,
        word: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<String, BuildError> {
        self.lexer
            .process_word(word, lookup)
            .map(|e| e.value)
            .map_err(|e| fail(line, e.message))
    }

    /// Marks stage `i` and the stages it reads from as needed.
    fn mark_needed(&mut self, i: usize) -> Result<(), BuildError> {
        if self.needed[i] {
            return Ok(());
        }
        self.needed[i] = true;
        let stage = &self.file.stages[i];
        let mut deps = Vec::new();
        if let Some(d) = self.earlier_stage(i, &self.expand_global(stage.line, &stage.base)?) {
            deps.push(d);
        }
        for ins in &stage.instructions {
            let from = match &ins.kind {
                Kind::Copy(CopySpec { from: Some(f), .. }) => vec![f.clone()],
                Kind::Run { mounts, .. } => mounts.iter().filter_map(|m| m.from.clone()).collect(),
                _ => Vec::new(),
            };
            for f in from {
                if let Some(d) = self.earlier_stage(i, &f) {
                    deps.push(d);
                } else if let Some(later) = self.file.stage_index(&f)
                    && later >= i
                {
                    return Err(fail(
                        ins.line,
                        format!(
                            "stage \"{f}\" is not defined before this stage: circular dependency"
                        ),
                    ));
                }
            }
        }
        for d in deps {
            self.mark_needed(d)?;
        }
        Ok(())
    }

    fn expand_global(&self, line: usize, word: &str) -> Result<String, BuildError> {
        let g = &self.globals;
        self.expand(line, word, &|n| g.get(n).cloned().flatten())
    }

    /// The stage before `before` that `name` names.
    fn earlier_stage(&self, before: usize, name: &str) -> Option<usize> {
        self.file.stage_index(name).filter(|&i| i < before)
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p.as_bytes());
            h.update([0]);
        }
        format!("{:x}", h.finalize())
    }

    fn cache_path(&self, key: &str) -> PathBuf {
        self.stores.dir.join("cache").join(key)
    }

    /// The state the cache holds for `key`, when its blobs are all there.
    fn cached(&self, key: &str) -> Option<State> {
        if self.options.no_cache {
            return None;
        }
        let bytes = std::fs::read(self.cache_path(key)).ok()?;
        let d: Descriptor = serde_json::from_slice(&bytes).ok()?;
        let s = State::load(self.stores.content, &d).ok()?;
        s.manifest
            .layers
            .iter()
            .all(|l| matches!(self.stores.content.info(&l.digest), Ok(Some(_))))
            .then_some(s)
    }

    fn remember(&self, key: &str, state: &State) {
        let Some(d) = &state.descriptor else { return };
        let path = self.cache_path(key);
        let _ = std::fs::create_dir_all(path.parent().expect("cache dir"));
        let _ = berth_sys::fs::atomic_write(
            &path,
            &serde_json::to_vec(d).expect("descriptors serialise"),
        );
    }

    /// Stores `base` plus `layer` (a blob's digest and size) with the
    /// container config `c` and a history entry.
    fn commit(
        &self,
        base: &State,
        layer: Option<(Digest, u64)>,
        c: ContainerConfig,
        created_by: String,
        empty: bool,
    ) -> Result<State, BuildError> {
        let now = berth_model::time::now_rfc3339_nanos();
        let mut config = base.config.clone();
        config.created = Some(now.clone());
        config.config = Some(c);
        let mut manifest = base.manifest.clone();
        if let Some((digest, size)) = &layer {
            config.rootfs.diff_ids.push(digest.clone());
            manifest.layers.push(Descriptor::new(
                media_types::OCI_LAYER_TAR,
                digest.clone(),
                *size,
            ));
        }
        config.history.get_or_insert_with(Vec::new).push(History {
            created: Some(now),
            created_by: Some(created_by),
            comment: Some("buildkit.dockerfile.v0".into()),
            empty_layer: empty,
            ..History::default()
        });
        let internal = |e: berth_image::archive::ArchiveError| BuildError {
            line: None,
            message: format!("store the image: {e}"),
        };
        let bytes = serde_json::to_vec(&config).expect("configs serialise");
        let config_digest = store_blob(self.stores.content, &bytes).map_err(internal)?;
        manifest.media_type = Some(media_types::OCI_MANIFEST.to_owned());
        manifest.config =
            Descriptor::new(media_types::OCI_CONFIG, config_digest, bytes.len() as u64);
        let descriptor = store_manifest(self.stores.content, &Manifest::Image(manifest.clone()))
            .map_err(internal)?;
        Ok(State {
            descriptor: Some(descriptor),
            manifest,
            config,
        })
    }

    /// The stage's base state.
    fn base(&self, i: usize, step: usize) -> Result<State, BuildError> {
        let stage = &self.file.stages[i];
        let base = self.expand_global(stage.line, &stage.base)?;
        let platform = match &stage.platform {
            Some(p) => {
                let p = self.expand_global(stage.line, p)?;
                p.parse::<Platform>()
                    .map_err(|e| fail(stage.line, format!("--platform={p}: {e}")))?
            }
            None => self.platform.clone(),
        };
        let label = self.label(i, 0);
        (self.events)(Event::Step {
            step,
            total: self.total,
            stage: label,
            name: format!("FROM {base}"),
        });
        let start = Instant::now();
        if let Some(d) = self.earlier_stage(i, &base) {
            let s = self.slots.wait(d)?;
            self.done(step, start, &s);
            return Ok(s);
        }
        if base.eq_ignore_ascii_case("scratch") {
            return Ok(State::scratch(&platform));
        }
        if base.is_empty() {
            return Err(fail(
                stage.line,
                "FROM names no image (its variable is empty)",
            ));
        }
        let d = self
            .host
            .image(&base, &platform, self.options.pull, &|msg| {
                (self.events)(Event::Output {
                    step,
                    bytes: format!("{msg}\n").into_bytes(),
                })
            })
            .map_err(|e| fail(stage.line, e))?;
        let mut s = State::load(self.stores.content, &d).map_err(|e| fail(stage.line, e))?;
        // As BuildKit does: a base without PATH gets the default one, so
        // that `ENV PATH=/x:$PATH` and RUN see it.
        let mut c = s.container();
        let env = c.env.get_or_insert_with(Vec::new);
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, format!("PATH={}", crate::DEFAULT_PATH));
            s.config.config = Some(c);
        }
        self.done(step, start, &s);
        Ok(s)
    }

    fn label(&self, i: usize, n: usize) -> String {
        let stage = &self.file.stages[i];
        let count = stage.instructions.len() + 1;
        match &stage.name_written {
            Some(name) => format!("[{name} {}/{count}]", n + 1),
            None if self.file.stages.len() > 1 => format!("[stage-{i} {}/{count}]", n + 1),
            None => format!("[{}/{count}]", n + 1),
        }
    }

    fn done(&self, step: usize, start: Instant, s: &State) {
        (self.events)(Event::Done {
            step,
            seconds: start.elapsed().as_secs_f64(),
            image: s.image_id().clone(),
        });
    }

    fn stage(&self, i: usize) -> Result<State, BuildError> {
        let first = self.numbers[i];
        let mut state = self.base(i, first)?;
        let stage = &self.file.stages[i];
        let mut scope = Scope::default();
        // The base image's ONBUILD triggers run first.
        let triggers: Vec<String> = state
            .container()
            .extra
            .get("OnBuild")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        if !triggers.is_empty() {
            let text = triggers.join("\n") + "\n";
            let parsed = crate::parser::parse(&text)
                .and_then(|p| {
                    crate::instructions::parse(&crate::parser::Parsed {
                        nodes: std::iter::once(
                            crate::parser::parse("FROM scratch\n")
                                .expect("static")
                                .nodes[0]
                                .clone(),
                        )
                        .chain(p.nodes)
                        .collect(),
                        ..p
                    })
                })
                .map_err(|e| fail(stage.line, format!("the base image's ONBUILD: {e}")))?;
            let mut c = state.container();
            c.extra.remove("OnBuild");
            state.config.config = Some(c);
            for ins in &parsed.stages[0].instructions {
                let ins = Instruction {
                    line: stage.line,
                    ..ins.clone()
                };
                state = self.step(i, first, &ins, &state, &mut scope, true)?;
            }
        }
        for (n, ins) in stage.instructions.iter().enumerate() {
            let step = first + 1 + n;
            (self.events)(Event::Step {
                step,
                total: self.total,
                stage: self.label(i, n + 1),
                name: ins.original.trim().to_owned(),
            });
            let start = Instant::now();
            state = self.step(i, step, ins, &state, &mut scope, false)?;
            self.done(step, start, &state);
        }
        Ok(state)
    }

    /// The variables an instruction's words expand with: ENV over ARG.
    fn lookup<'s>(
        &self,
        state: &'s State,
        scope: &'s Scope,
    ) -> impl Fn(&str) -> Option<String> + 's {
        let env = state.env();
        move |name: &str| {
            env.iter()
                .rev()
                .find_map(|e| e.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
                .map(str::to_owned)
                .or_else(|| scope.args.get(name).cloned().flatten())
        }
    }

    /// Runs one instruction (cached when it can be).
    fn step(
        &self,
        stage_index: usize,
        step: usize,
        ins: &Instruction,
        state: &State,
        scope: &mut Scope,
        trigger: bool,
    ) -> Result<State, BuildError> {
        let line = ins.line;
        let word = |w: &str, state: &State, scope: &Scope| {
            let look = self.lookup(state, scope);
            self.expand(line, w, &look)
        };
        let mut c = state.container();
        let created_by: String;
        match &ins.kind {
            Kind::Arg(decls) => {
                for d in decls {
                    let value = match self.options.build_args.get(&d.name) {
                        Some(v) => Some(v.clone()),
                        None => match &d.default {
                            Some(def) => Some(word(def, state, scope)?),
                            None => self.globals.get(&d.name).cloned().flatten(),
                        },
                    };
                    self.used(&d.name);
                    scope.args.insert(d.name.clone(), value);
                }
                // ARG changes no image; RUN's cache keys see the values.
                let _ = trigger;
                return Ok(state.clone());
            }
            Kind::Run {
                command,
                mounts,
                network,
                heredocs,
            } => {
                return self.run(
                    stage_index,
                    step,
                    ins,
                    state,
                    scope,
                    command,
                    mounts,
                    network.as_deref(),
                    heredocs,
                );
            }
            Kind::Copy(spec) => return self.copy(step, ins, state, scope, spec),
            Kind::Env(pairs) => {
                let mut env = c.env.take().unwrap_or_default();
                let mut shown = Vec::new();
                let mut values = Vec::new();
                for (k, v) in pairs {
                    let k = word(k, state, scope)?;
                    let v = word(v, state, scope)?;
                    values.push((k, v));
                }
                for (k, v) in values {
                    shown.push(format!("{k}={v}"));
                    let entry = format!("{k}={v}");
                    match env
                        .iter_mut()
                        .find(|e| e.split_once('=').map(|(n, _)| n) == Some(k.as_str()))
                    {
                        Some(e) => *e = entry,
                        None => env.push(entry),
                    }
                }
                c.env = Some(env);
                created_by = format!("ENV {}", shown.join(" "));
            }
            Kind::Label(pairs) => {
                let labels = c.labels.get_or_insert_with(Default::default);
                let mut shown = Vec::new();
                for (k, v) in pairs {
                    let k = word(k, state, scope)?;
                    let v = word(v, state, scope)?;
                    shown.push(format!("{k}={v}"));
                    labels.insert(k, v);
                }
                created_by = format!("LABEL {}", shown.join(" "));
            }
            Kind::Workdir(w) => {
                let w = word(w, state, scope)?;
                let base = c.working_dir.clone().unwrap_or_else(|| "/".into());
                let joined = if w.starts_with('/') {
                    w.clone()
                } else {
                    format!("{base}/{w}")
                };
                let cleaned = format!("/{}", clean(&joined).unwrap_or_default());
                c.working_dir = Some(cleaned.clone());
                let created_by = format!("WORKDIR {cleaned}");
                let key = self.key(&["workdir", &state.id(), &created_by]);
                if let Some(s) = self.cached(&key) {
                    (self.events)(Event::Cached { step });
                    return Ok(s);
                }
                // The directory is made when the image lacks it.
                let view = match &state.descriptor {
                    Some(_) => Some(self.rootfs(state, "build-view")?),
                    None => None,
                };
                let root = view.as_ref().map(|v| v.dir.clone());
                let rel = resolve_dest(root.as_deref(), &cleaned);
                let exists = rel.is_empty() || root.as_ref().is_some_and(|r| r.join(&rel).is_dir());
                let s = if exists {
                    self.commit(state, None, c, created_by, true)?
                } else {
                    let layer = self
                        .store_layer(|w| {
                            let mut lw = LayerWriter::new(w, root.clone());
                            lw.ensure_dir(&rel, Ownership::default())?;
                            lw.finish().map(drop)
                        })
                        .map_err(|e| fail(line, format!("WORKDIR {cleaned}: {}", e.message)))?;
                    self.commit(state, Some(layer), c, created_by, false)?
                };
                drop(view);
                self.remember(&key, &s);
                return Ok(s);
            }
            Kind::User(u) => {
                let u = word(u, state, scope)?;
                c.user = Some(u.clone()).filter(|u| !u.is_empty());
                created_by = format!("USER {u}");
            }
            Kind::Expose(ports) => {
                let mut shown = Vec::new();
                for p in ports {
                    let p = word(p, state, scope)?;
                    for port in p.split_whitespace() {
                        let port = if port.contains('/') {
                            port.to_ascii_lowercase()
                        } else {
                            format!("{port}/tcp")
                        };
                        let number = port.split('/').next().unwrap_or_default();
                        let valid = number
                            .split('-')
                            .all(|n| n.parse::<u16>().is_ok_and(|n| n > 0));
                        if !valid {
                            return Err(fail(line, format!("invalid containerPort: {number}")));
                        }
                        shown.push(port.clone());
                        c.exposed_ports
                            .get_or_insert_with(Default::default)
                            .insert(port, Empty {});
                    }
                }
                created_by = format!("EXPOSE map[{}]", shown.join(" "));
            }
            Kind::Volume(vols) => {
                let mut shown = Vec::new();
                for v in vols {
                    let v = word(v, state, scope)?;
                    if v.trim().is_empty() {
                        return Err(fail(line, "VOLUME specified can not be an empty string"));
                    }
                    shown.push(v.clone());
                    c.volumes
                        .get_or_insert_with(Default::default)
                        .insert(v, Empty {});
                }
                created_by = format!("VOLUME [{}]", shown.join(" "));
            }
            Kind::Cmd(cmd) => {
                let v = self.command_vec(state, cmd);
                created_by = format!("CMD {}", serde_json::to_string(&v).expect("strings"));
                c.cmd = Some(v);
                scope.cmd_set = true;
            }
            Kind::Entrypoint(cmd) => {
                let v = self.command_vec(state, cmd);
                created_by = format!("ENTRYPOINT {}", serde_json::to_string(&v).expect("strings"));
                c.entrypoint = Some(v).filter(|v| !v.is_empty());
                if !scope.cmd_set {
                    c.cmd = None;
                }
            }
            Kind::Healthcheck(h) => {
                c.healthcheck = Some(self.health(line, state, h)?);
                created_by = format!(
                    "HEALTHCHECK {}",
                    ins.original
                        .trim()
                        .split_once(char::is_whitespace)
                        .map(|x| x.1)
                        .unwrap_or("")
                );
            }
            Kind::StopSignal(s) => {
                let s = word(s, state, scope)?;
                c.stop_signal = Some(s.clone());
                created_by = format!("STOPSIGNAL {s}");
            }
            Kind::Shell(sh) => {
                c.extra.insert("Shell".into(), serde_json::json!(sh));
                created_by = format!("SHELL {}", serde_json::to_string(sh).expect("strings"));
            }
            Kind::OnBuild(text) => {
                let list = c
                    .extra
                    .entry("OnBuild".to_owned())
                    .or_insert_with(|| serde_json::json!([]));
                if let Some(a) = list.as_array_mut() {
                    a.push(serde_json::json!(text));
                }
                created_by = format!("ONBUILD {text}");
            }
            Kind::Maintainer(m) => {
                let m = word(m, state, scope)?;
                created_by = format!("MAINTAINER {m}");
                let key = self.key(&["meta", &state.id(), &created_by]);
                if let Some(s) = self.cached(&key) {
                    (self.events)(Event::Cached { step });
                    return Ok(s);
                }
                let mut base = state.clone();
                base.config.author = Some(m);
                let s = self.commit(&base, None, c, created_by, true)?;
                self.remember(&key, &s);
                return Ok(s);
            }
        }
        let key = self.key(&["meta", &state.id(), &created_by]);
        if let Some(s) = self.cached(&key) {
            (self.events)(Event::Cached { step });
            return Ok(s);
        }
        let s = self.commit(state, None, c, created_by, true)?;
        self.remember(&key, &s);
        Ok(s)
    }

    fn command_vec(&self, state: &State, cmd: &Command) -> Vec<String> {
        match cmd {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => {
                let mut v = state.shell();
                v.push(s.clone());
                v
            }
        }
    }

    fn health(&self, line: usize, state: &State, h: &Health) -> Result<HealthConfig, BuildError> {
        if h.none {
            return Ok(HealthConfig {
                test: Some(vec!["NONE".into()]),
                ..HealthConfig::default()
            });
        }
        let d = |v: &Option<String>, what: &str| -> Result<Option<i64>, BuildError> {
            match v {
                None => Ok(None),
                Some(s) => {
                    let n = berth_model::time::go_duration(s)
                        .map_err(|e| fail(line, format!("--{what}: {e}")))?;
                    if n != 0 && n < 1_000_000 {
                        return Err(fail(line, format!("--{what} cannot be less than 1ms")));
                    }
                    Ok(Some(n).filter(|n| *n != 0))
                }
            }
        };
        let test = match &h.command {
            Some(Command::Exec(v)) => {
                let mut t = vec!["CMD".to_owned()];
                t.extend(v.iter().cloned());
                t
            }
            Some(Command::Shell(s)) => vec!["CMD-SHELL".to_owned(), s.clone()],
            None => Vec::new(),
        };
        let _ = state;
        Ok(HealthConfig {
            test: Some(test),
            interval: d(&h.interval, "interval")?,
            timeout: d(&h.timeout, "timeout")?,
            start_period: d(&h.start_period, "start-period")?,
            start_interval: d(&h.start_interval, "start-interval")?,
            retries: h.retries.map(i64::from).filter(|r| *r != 0),
        })
    }

    /// Unpacks `state`'s layers (those not yet unpacked): its top chain.
    fn unpacked(&self, state: &State) -> Result<Option<Digest>, BuildError> {
        self.stores
            .snapshots
            .unpack(
                self.stores.content,
                &state.manifest.layers,
                &state.config.rootfs.diff_ids,
                |_, _| {},
            )
            .map_err(|e| BuildError {
                line: None,
                message: format!("unpack the image: {e}"),
            })
    }

    /// Mounts a writable snapshot over `state`.
    fn rootfs(&self, state: &State, prefix: &str) -> Result<Rootfs<'_>, BuildError> {
        let internal = |m: String| BuildError {
            line: None,
            message: m,
        };
        let chain = self.unpacked(state)?;
        let key = random_key(prefix);
        let mount = self
            .stores
            .snapshots
            .prepare(&key, chain.as_ref())
            .map_err(|e| internal(format!("prepare a snapshot: {e}")))?;
        let dir = self.stores.dir.join("tmp").join(&key);
        let mut r = Rootfs {
            snapshots: self.stores.snapshots,
            key,
            dir,
            mount,
            mounted: false,
        };
        std::fs::create_dir_all(&r.dir)
            .map_err(|e| internal(format!("create {}: {e}", r.dir.display())))?;
        r.mount
            .mount(&r.dir)
            .map_err(|e| internal(format!("mount {}: {e}", r.dir.display())))?;
        r.mounted = true;
        Ok(r)
    }

    /// Stores the tar `write` makes as a layer blob.
    fn store_layer(
        &self,
        write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<(Digest, u64), BuildError> {
        let internal = |m: String| BuildError {
            line: None,
            message: m,
        };
        let reference = random_key("build-layer");
        let mut w = self
            .stores
            .content
            .writer(&reference, None)
            .map_err(|e| internal(format!("store a layer: {e}")))?;
        write(&mut w).map_err(|e| internal(format!("write a layer: {e}")))?;
        let size = w.offset();
        let digest = w
            .commit(None)
            .map_err(|e| internal(format!("store a layer: {e}")))?;
        Ok((digest, size))
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        _stage: usize,
        step: usize,
        ins: &Instruction,
        state: &State,
        scope: &Scope,
        command: &Command,
        mounts: &[RunMount],
        network: Option<&str>,
        heredocs: &[crate::parser::Heredoc],
    ) -> Result<State, BuildError> {
        let line = ins.line;
        let c = state.container();
        let args = match command {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => {
                let mut v = state.shell();
                let script = match heredocs.first() {
                    // `RUN <<EOF` alone: the heredoc is the script.
                    Some(h)
                        if s.trim()
                            .trim_start_matches("<<")
                            .trim_start_matches('-')
                            .trim_matches(['"', '\''])
                            == h.name =>
                    {
                        h.content.clone()
                    }
                    Some(_) => {
                        let mut script = s.clone();
                        for h in heredocs {
                            script.push('\n');
                            script.push_str(&h.content);
                            script.push_str(&h.name);
                        }
                        script
                    }
                    None => s.clone(),
                };
                v.push(script);
                v
            }
        };
        if args.is_empty() {
            return Err(fail(line, "RUN has no command"));
        }
        // Build args the RUN sees, unless ENV sets them.
        let mut env = c.env.clone().unwrap_or_default();
        let mut arg_env = Vec::new();
        for (k, v) in &scope.args {
            if let Some(v) = v
                && !env
                    .iter()
                    .any(|e| e.split_once('=').map(|(n, _)| n) == Some(k.as_str()))
            {
                arg_env.push(format!("{k}={v}"));
            }
        }
        for p in PROXY_ARGS {
            if let Some(v) = self.options.build_args.get(p) {
                arg_env.push(format!("{p}={v}"));
            }
        }
        let mut mount_desc = Vec::new();
        let mut process_mounts = Vec::new();
        for m in mounts {
            match m.kind.as_str() {
                "cache" => {
                    let id = m.id.clone().unwrap_or_else(|| m.target.clone());
                    let dir = self
                        .stores
                        .dir
                        .join("cache-mounts")
                        .join(self.key(&["cache-mount", &id]));
                    std::fs::create_dir_all(&dir)
                        .map_err(|e| fail(line, format!("create the cache mount: {e}")))?;
                    process_mounts.push(ProcessMount {
                        kind: "bind".into(),
                        source: dir,
                        destination: m.target.clone(),
                        readonly: false,
                    });
                    mount_desc.push(format!("cache:{id}:{}", m.target));
                }
                "tmpfs" => {
                    process_mounts.push(ProcessMount {
                        kind: "tmpfs".into(),
                        source: PathBuf::new(),
                        destination: m.target.clone(),
                        readonly: false,
                    });
                    mount_desc.push(format!("tmpfs:{}", m.target));
                }
                "bind" if m.from.is_none() => {
                    let tree = self.context_tree();
                    let src = m.source.clone().unwrap_or_default();
                    let found = tree.matches(&src).map_err(|e| fail(line, e))?;
                    let mut h = Sha256::new();
                    for f in &found {
                        tree.hash(f, &mut h)
                            .map_err(|e| fail(line, format!("read {src}: {e}")))?;
                    }
                    process_mounts.push(ProcessMount {
                        kind: "bind".into(),
                        source: found[0].path.clone(),
                        destination: m.target.clone(),
                        readonly: !m.readwrite,
                    });
                    mount_desc.push(format!("bind:{src}:{}:{:x}", m.target, h.finalize()));
                }
                other => {
                    return Err(fail(
                        line,
                        format!(
                            "RUN --mount=type={other}{} is not supported by berth yet",
                            if m.from.is_some() { ",from=..." } else { "" }
                        ),
                    ));
                }
            }
        }
        let host_network = network != Some("none");
        let shown = match command {
            Command::Exec(v) => v.join(" "),
            Command::Shell(_) => args.join(" "),
        };
        let created_by = format!("RUN {shown} # buildkit");
        let key = self.key(&[
            "run",
            &state.id(),
            &serde_json::to_string(&args).expect("strings"),
            &arg_env.join("\n"),
            &mount_desc.join("\n"),
            &host_network.to_string(),
        ]);
        if let Some(s) = self.cached(&key) {
            (self.events)(Event::Cached { step });
            return Ok(s);
        }
        env.extend(arg_env);
        let mut rootfs = self.rootfs(state, "build")?;
        let cwd = c
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into());
        if let Ok(root) = berth_sys::fs::open_dir_path(&rootfs.dir) {
            let _ = berth_sys::fs::mkdir_all_in_root(&root, Path::new(&cwd), 0o755);
        }
        let process = Process {
            id: rootfs.key.clone(),
            args: args.clone(),
            env,
            cwd,
            user: c.user.clone().unwrap_or_default(),
            host_network,
            mounts: process_mounts,
        };
        let mut tail: Vec<u8> = Vec::new();
        let code = self
            .host
            .run(&rootfs.dir, &process, &mut |bytes| {
                tail.extend_from_slice(bytes);
                if tail.len() > 8192 {
                    tail.drain(..tail.len() - 8192);
                }
                (self.events)(Event::Output {
                    step,
                    bytes: bytes.to_vec(),
                });
            })
            .map_err(|e| fail(line, format!("RUN {shown}: {e}")))?;
        if code != 0 {
            let text = String::from_utf8_lossy(&tail);
            let last: Vec<&str> = text.lines().rev().take(6).collect();
            let last: Vec<&str> = last.into_iter().rev().collect();
            let mut message = format!(
                "process \"{}\" did not complete successfully: exit code: {code}",
                args.join(" ")
            );
            if !last.is_empty() {
                message.push_str("\nlast output:\n  ");
                message.push_str(&last.join("\n  "));
            }
            return Err(fail(line, message));
        }
        rootfs.unmount();
        let Mount::Overlay { upper, .. } = &rootfs.mount else {
            return Err(fail(line, "RUN needs the overlay snapshotter"));
        };
        let upper = upper.clone();
        let layer = self.store_layer(|w| {
            berth_image::layer::write_diff(&upper, w, &|p| self.host.engine_made(p))
        })?;
        drop(rootfs);
        let s = self.commit(state, Some(layer), c, created_by, false)?;
        self.remember(&key, &s);
        Ok(s)
    }

    fn context_tree(&self) -> Tree<'_> {
        Tree {
            root: &self.options.context,
            confine: Confine::Beneath,
            ignore: Some(&self.options.ignore),
        }
    }

    fn copy(
        &self,
        step: usize,
        ins: &Instruction,
        state: &State,
        scope: &Scope,
        spec: &CopySpec,
    ) -> Result<State, BuildError> {
        let line = ins.line;
        let look = self.lookup(state, scope);
        let word = |w: &str| self.expand(line, w, &look);
        let keyword = if spec.add { "ADD" } else { "COPY" };
        let dest_written = word(&spec.dest)?;
        let from = spec.from.as_deref().map(word).transpose()?;
        let chown = spec.chown.as_deref().map(word).transpose()?;
        let chmod = match spec.chmod.as_deref().map(word).transpose()? {
            Some(m) => Some(
                u32::from_str_radix(&m, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| {
                        fail(
                            line,
                            format!("invalid --chmod={m}: use an octal mode such as 755"),
                        )
                    })?,
            ),
            None => None,
        };
        // Where the files come from.
        let from_state = match &from {
            Some(f) => match self.file.stage_index(f) {
                Some(i)
                    if i < self.file.stages.len()
                        && self.needed[i]
                        && self.file.stage_index(f).is_some() =>
                {
                    Some(self.slots.wait(i)?)
                }
                _ => {
                    if f.parse::<usize>().is_ok() {
                        return Err(fail(line, format!("invalid stage index {f} in --from")));
                    }
                    let d = self
                        .host
                        .image(f, &self.platform, self.options.pull, &|_| {})
                        .map_err(|e| fail(line, format!("{keyword} --from={f}: {e}")))?;
                    Some(State::load(self.stores.content, &d).map_err(|e| fail(line, e))?)
                }
            },
            None => None,
        };
        // From a stage or image: its state and the expanded instruction
        // find the cache first, without mounting anything; when that
        // misses, the files' contents decide (a rebuilt stage whose files
        // did not change still hits).
        let fast_key = match &from_state {
            Some(s) if s.descriptor.is_some() => {
                let mut expanded = Vec::new();
                for src in &spec.sources {
                    expanded.push(if src.starts_with("<<") {
                        src.clone()
                    } else {
                        word(src)?
                    });
                }
                Some(self.key(&[
                    "copy-from-state",
                    &state.id(),
                    &s.id(),
                    &format!("{keyword}\0{dest_written}\0{chown:?}\0{chmod:?}\0{expanded:?}"),
                ]))
            }
            _ => None,
        };
        if let Some(k) = &fast_key
            && let Some(s) = self.cached(k)
        {
            (self.events)(Event::Cached { step });
            return Ok(s);
        }
        let from_root = match &from_state {
            Some(s) if s.descriptor.is_some() => Some(self.rootfs(s, "build-from")?),
            _ => None,
        };
        let empty_dir;
        let tree = match (&from_state, &from_root) {
            (Some(_), Some(r)) => Tree {
                root: &r.dir,
                confine: Confine::InRoot,
                ignore: None,
            },
            (Some(_), None) => {
                empty_dir = self.stores.dir.join("tmp").join(random_key("empty"));
                let _ = std::fs::create_dir_all(&empty_dir);
                Tree {
                    root: &empty_dir,
                    confine: Confine::InRoot,
                    ignore: None,
                }
            }
            (None, _) => self.context_tree(),
        };
        enum Src {
            Files(Vec<Matched>, bool),
            Heredoc(String, String),
            Url(String),
        }
        let mut sources = Vec::new();
        let mut h = Sha256::new();
        h.update(state.id().as_bytes());
        h.update(format!("{keyword}\0{dest_written}\0{chown:?}\0{chmod:?}\0{from:?}\0").as_bytes());
        for src in &spec.sources {
            if let Some(name) = src
                .strip_prefix("<<")
                .map(|n| n.trim_start_matches('-').trim_matches(['"', '\'']))
                && let Some(doc) = spec.heredocs.iter().find(|d| d.name == name)
            {
                let content = if doc.expand {
                    word(&doc.content)?
                } else {
                    doc.content.clone()
                };
                h.update(format!("heredoc\0{name}\0{content}\0").as_bytes());
                sources.push(Src::Heredoc(name.to_owned(), content));
                continue;
            }
            let src = word(src)?;
            if spec.add && (src.starts_with("http://") || src.starts_with("https://")) {
                h.update(format!("url\0{src}\0{:?}\0", spec.checksum).as_bytes());
                sources.push(Src::Url(src));
                continue;
            }
            if spec.add && src.starts_with("git@") {
                return Err(fail(
                    line,
                    "ADD of git repositories is not supported by berth yet",
                ));
            }
            let found = tree
                .matches(&src)
                .map_err(|e| fail(line, format!("{keyword} failed: {e}")))?;
            h.update(format!("src\0{src}\0").as_bytes());
            for m in &found {
                h.update(m.rel.as_bytes());
                tree.hash(m, &mut h)
                    .map_err(|e| fail(line, format!("{keyword} failed: read {src}: {e}")))?;
            }
            sources.push(Src::Files(found, has_glob(&src)));
        }
        let key = self.key(&["copy", &format!("{:x}", h.finalize())]);
        let shown = format!(
            "{keyword} {}{} {dest_written} # buildkit",
            from.as_ref()
                .map(|f| format!("--from={f} "))
                .unwrap_or_default(),
            spec.sources.join(" ")
        );
        if let Some(s) = self.cached(&key) {
            if let Some(k) = &fast_key {
                self.remember(k, &s);
            }
            (self.events)(Event::Cached { step });
            return Ok(s);
        }
        // The destination, inside the parent image.
        let c = state.container();
        let workdir = c.working_dir.clone().unwrap_or_else(|| "/".into());
        let dest_abs = if dest_written.starts_with('/') {
            dest_written.clone()
        } else {
            format!("{workdir}/{dest_written}")
        };
        let parent_root = match &state.descriptor {
            Some(_) => Some(self.rootfs(state, "build-view")?),
            None => None,
        };
        let parent_dir = parent_root.as_ref().map(|r| r.dir.clone());
        let dest_rel = resolve_dest(parent_dir.as_deref(), &dest_abs);
        let dest_is_dir = parent_dir
            .as_ref()
            .is_some_and(|r| !dest_rel.is_empty() && r.join(&dest_rel).is_dir())
            || dest_rel.is_empty();
        let count: usize = sources
            .iter()
            .map(|s| match s {
                Src::Files(f, _) => f.len(),
                _ => 1,
            })
            .sum();
        let globbed = sources.iter().any(|s| matches!(s, Src::Files(_, true)));
        let into_dir = dest_written.ends_with('/') || dest_is_dir || count > 1 || globbed;
        if (count > 1 || globbed) && !dest_written.ends_with('/') && !dest_is_dir {
            return Err(fail(
                line,
                format!(
                    "When using {keyword} with more than one source file, the destination must be a directory and end with a /"
                ),
            ));
        }
        let owner = match &chown {
            Some(spec) => Some(owner(parent_dir.as_deref(), spec).map_err(|e| fail(line, e))?),
            None => None,
        };
        let own = Ownership { owner, mode: chmod };
        let target = |name: &str| {
            if into_dir {
                if dest_rel.is_empty() {
                    name.to_owned()
                } else {
                    format!("{dest_rel}/{name}")
                }
            } else {
                dest_rel.clone()
            }
        };
        let downloads = self.stores.dir.join("tmp").join(random_key("add"));
        let layer = self.store_layer(|w| {
            let mut lw = LayerWriter::new(w, parent_dir.clone());
            if into_dir && !dest_rel.is_empty() {
                lw.ensure_dir(&dest_rel, own)?;
            }
            for s in &sources {
                match s {
                    Src::Heredoc(name, content) => {
                        lw.append_bytes(&target(name), content.as_bytes(), own)?
                    }
                    Src::Url(url) => {
                        std::fs::create_dir_all(&downloads)?;
                        let file = downloads.join("download");
                        self.host.fetch(url, &file).map_err(io::Error::other)?;
                        if let Some(sum) = &spec.checksum {
                            let mut h = Sha256::new();
                            io::copy(&mut std::fs::File::open(&file)?, &mut h)?;
                            let got = format!("sha256:{:x}", h.finalize());
                            if &got != sum {
                                return Err(io::Error::other(format!(
                                    "the download of {url} has digest {got}, not the --checksum {sum}"
                                )));
                            }
                        }
                        let name = url
                            .split(['?', '#'])
                            .next()
                            .unwrap_or_default()
                            .rsplit('/')
                            .next()
                            .filter(|n| !n.is_empty())
                            .unwrap_or("download")
                            .to_owned();
                        let m = Matched {
                            rel: String::new(),
                            path: file.clone(),
                            dir: false,
                            name: name.clone(),
                        };
                        let own = Ownership {
                            mode: own.mode.or(Some(0o600)),
                            ..own
                        };
                        lw.copy(&tree, &m, &target(&name), own)?;
                    }
                    Src::Files(found, _) => {
                        for m in found {
                            if m.dir {
                                lw.copy(&tree, m, &dest_rel, own)?;
                            } else if spec.add && is_archive(&m.path)? {
                                let f = std::fs::File::open(&m.path)?;
                                let stream = berth_image::layer::decompress_stream(f)
                                    .map_err(io::Error::other)?;
                                lw.extract(stream, &dest_rel, own)?;
                            } else {
                                lw.copy(&tree, m, &target(&m.name), own)?;
                            }
                        }
                    }
                }
            }
            lw.finish().map(drop)
        });
        let _ = std::fs::remove_dir_all(&downloads);
        let layer = layer.map_err(|e| fail(line, format!("{keyword} failed: {}", e.message)))?;
        drop(parent_root);
        drop(from_root);
        let s = self.commit(state, Some(layer), c, shown, false)?;
        self.remember(&key, &s);
        if let Some(k) = &fast_key {
            self.remember(k, &s);
        }
        Ok(s)
    }
}

/// Whether the file at `path` is a (possibly compressed) tar archive.
fn is_archive(path: &Path) -> io::Result<bool> {
    let f = std::fs::File::open(path)?;
    let Ok(mut stream) = berth_image::layer::decompress_stream(f) else {
        return Ok(false);
    };
    let mut head = vec![0u8; 512];
    let mut n = 0;
    while n < head.len() {
        match stream.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return Ok(false),
        }
    }
    Ok(crate::context::looks_like_tar(&head[..n]))
}

/// `dest` (absolute) relative to the image root, with the symlinks of the
/// parent image's existing directories followed inside it (so COPY to
/// `/bin/x` lands in `/usr/bin` where `/bin` links there).
fn resolve_dest(root: Option<&Path>, dest: &str) -> String {
    let cleaned = clean(dest).unwrap_or_default();
    let Some(root) = root else { return cleaned };
    let Ok(fd) = berth_sys::fs::open_dir_path(root) else {
        return cleaned;
    };
    let parts: Vec<&str> = cleaned.split('/').filter(|p| !p.is_empty()).collect();
    let root_real = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    // The longest existing prefix, resolved; the rest appended as written.
    for k in (1..=parts.len()).rev() {
        let prefix = parts[..k].join("/");
        if let Ok(f) = berth_sys::fs::open_in_root(&fd, Path::new(&prefix), libc::O_PATH, 0)
            && let Ok(real) = std::fs::read_link(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&f)
            ))
            && let Ok(inside) = real.strip_prefix(&root_real)
        {
            let mut out = inside.to_string_lossy().into_owned();
            for p in &parts[k..] {
                if !out.is_empty() {
                    out.push('/');
                }
                out.push_str(p);
            }
            return out;
        }
    }
    cleaned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners() {
        assert_eq!(owner(None, "10:20"), Ok((10, 20)));
        assert_eq!(owner(None, "7"), Ok((7, 7)));
        assert!(owner(None, "www").is_err());
    }

    #[test]
    fn destinations_follow_the_images_links() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("usr/bin")).unwrap();
        std::os::unix::fs::symlink("usr/bin", d.path().join("bin")).unwrap();
        assert_eq!(resolve_dest(Some(d.path()), "/bin/x"), "usr/bin/x");
        assert_eq!(resolve_dest(Some(d.path()), "/new/dir/"), "new/dir");
        assert_eq!(resolve_dest(None, "/a/../b"), "b");
        assert_eq!(resolve_dest(Some(d.path()), "/"), "");
    }
}
