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

mod api;
mod copy;
mod run;
mod steps;

use api::fail;
pub use api::{BuildError, Event, Host, Options, Process, ProcessMount, Stores};

use crate::context::{Confine, LayerWriter, Matched, Ownership, Tree, clean, has_glob};
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
                // A stage that reads from a failed one fails with its error.
                return result.clone();
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
                exit_code: None,
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
        exit_code: None,
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
    // `--chown=name` takes the user's primary group.
    let user = berth_sys::users::resolve(root, spec)?;
    Ok((user.uid, user.gid))
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
                let f = self.expand_global(ins.line, &f).unwrap_or(f);
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
            exit_code: None,
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
                exit_code: None,
            })
    }

    /// Mounts a writable snapshot over `state`.
    fn rootfs(&self, state: &State, prefix: &str) -> Result<Rootfs<'_>, BuildError> {
        let internal = |m: String| BuildError {
            line: None,
            message: m,
            exit_code: None,
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
            exit_code: None,
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

    fn context_tree(&self) -> Tree<'_> {
        Tree {
            root: &self.options.context,
            confine: Confine::Beneath,
            ignore: Some(&self.options.ignore),
            exclude: None,
        }
    }

    /// The state a `--from` names: an earlier stage (waited for) or an
    /// image.
    fn source_state(&self, stage: usize, line: usize, from: &str) -> Result<State, BuildError> {
        if let Some(i) = self.earlier_stage(stage, from) {
            if !self.needed[i] {
                return Err(fail(
                    line,
                    format!(
                        "--from={from}: the stage is named through a variable the build could not resolve up front"
                    ),
                ));
            }
            return self.slots.wait(i);
        }
        if from.parse::<usize>().is_ok() {
            return Err(fail(
                line,
                format!("invalid stage index {from}: a stage reads only from stages before it"),
            ));
        }
        let d = self
            .host
            .image(from, &self.platform, self.options.pull, &|_| {})
            .map_err(|e| fail(line, format!("--from={from}: {e}")))?;
        State::load(self.stores.content, &d).map_err(|e| fail(line, e))
    }
}
