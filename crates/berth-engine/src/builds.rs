//! `POST /build`: the builder ([`berth_build`]) behind the Engine API.
//!
//! The request body is the build context as a tar (plain or compressed),
//! or a Dockerfile alone. The daemon unpacks the context into a scratch
//! directory, reads the Dockerfile and `.dockerignore` from it, and builds
//! on a blocking thread. Progress streams back as Docker's JSON messages:
//! `stream` text as the classic builder writes it (what the docker CLI
//! prints), each line also carrying a `berthBuild` object (step, output,
//! cached, done) from which `berth build` draws BuildKit's plain display.
//!
//! RUN steps run through [`EngineHost`]: the container's OCI spec comes
//! from the same code as `docker run`'s (capabilities, seccomp, masked
//! paths), and `berth runtime run` executes it in the foreground, its
//! output read from one pipe.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Response, Uri};
use berth_build::build::{Event, Host, Process};
use berth_image::Descriptor;
use berth_model::{ImageRef, Platform};
use serde_json::{Value, json};

use crate::images::ImageService;
use crate::images::api::json_line as line;
use crate::{Engine, EngineError};

/// What the engine lends the builder.
pub struct EngineHost {
    images: Arc<ImageService>,
    /// The client's credentials by registry (`X-Registry-Config`).
    credentials: HashMap<String, berth_registry::client::Credentials>,
    exe: PathBuf,
    runtime_root: PathBuf,
    bundles: PathBuf,
    runtime: tokio::runtime::Handle,
}

impl EngineHost {
    fn find(&self, reference: &str, platform: &Platform) -> Option<Descriptor> {
        let (_, target) = self.images.find(reference).ok()?;
        self.images
            .resolve_for(&target, Some(platform))
            .ok()
            .map(|(d, _)| d)
    }
}

impl Host for EngineHost {
    fn image(
        &self,
        reference: &str,
        platform: &Platform,
        pull: bool,
        say: &dyn Fn(&str),
    ) -> Result<Descriptor, String> {
        if !pull && let Some(d) = self.find(reference, platform) {
            return Ok(d);
        }
        let parsed = ImageRef::parse(reference)
            .map_err(|e| format!("invalid reference format {reference:?}: {e}"))?;
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let events: crate::images::pull::TransferEvents = Arc::new(move |event| {
            if let crate::images::pull::TransferEvent::Status { text, .. } = event {
                let _ = tx.send(text);
            }
        });
        let images = self.images.clone();
        let platform2 = platform.clone();
        let credentials = self.credentials.get(parsed.domain()).cloned();
        let task = self.runtime.spawn(async move {
            crate::images::pull::pull(&images, &parsed, &platform2, credentials, events).await
        });
        for line in rx {
            say(&line);
        }
        let pulled = self.runtime.block_on(task).map_err(|e| e.to_string())?;
        if let Err(e) = pulled {
            // A registry out of reach: what is stored will do, unless
            // --pull asked for the registry's copy.
            if !pull {
                return Err(format!("pull {reference}: {e}"));
            }
            return self
                .find(reference, platform)
                .ok_or_else(|| format!("pull {reference}: {e}"));
        }
        self.find(reference, platform)
            .ok_or_else(|| format!("{reference}: no image for {platform} after the pull"))
    }

    fn run(
        &self,
        rootfs: &Path,
        process: &Process,
        output: &mut dyn FnMut(&[u8]),
    ) -> Result<i32, String> {
        let bundle = self.bundles.join(&process.id);
        std::fs::create_dir_all(&bundle).map_err(|e| format!("create the bundle: {e}"))?;
        let result = self.run_in(&bundle, rootfs, process, output);
        let _ = berth_runtime::ops::delete::delete(&self.runtime_root, &process.id, true);
        let _ = std::fs::remove_dir_all(&bundle);
        result
    }

    fn engine_made(&self, path: &str) -> bool {
        crate::containers::spec::engine_made(path)
    }

    fn fetch(&self, url: &str, to: &Path) -> Result<(), String> {
        let client = self.images.client();
        let url = url.to_owned();
        let to = to.to_path_buf();
        self.runtime
            .block_on(async move { client.download(&url, &to).await })
            .map_err(|e| e.to_string())
    }
}

impl EngineHost {
    fn run_in(
        &self,
        bundle: &Path,
        rootfs: &Path,
        process: &Process,
        output: &mut dyn FnMut(&[u8]),
    ) -> Result<i32, String> {
        let write = |name: &str, text: String| -> Result<PathBuf, String> {
            let p = bundle.join(name);
            std::fs::write(&p, text).map_err(|e| format!("write {}: {e}", p.display()))?;
            Ok(p)
        };
        let hostname = "buildkitsandbox";
        let hostname_file = write("hostname", format!("{hostname}\n"))?;
        let hosts = if process.host_network {
            std::fs::read_to_string("/etc/hosts").unwrap_or_default()
        } else {
            format!("127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n")
        };
        let hosts_file = write("hosts", hosts)?;
        let resolv = write(
            "resolv.conf",
            std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        )?;
        let (path, args) = process.args.split_first().ok_or("no command")?;
        let mut host = berth_api::container::HostConfig {
            network_mode: if process.host_network { "host" } else { "none" }.into(),
            ..Default::default()
        };
        for m in &process.mounts {
            match m.kind.as_str() {
                "tmpfs" => {
                    host.tmpfs.insert(m.destination.clone(), "exec".into());
                }
                _ => host.binds.push(format!(
                    "{}:{}:{}",
                    m.source.display(),
                    m.destination,
                    if m.readonly { "ro" } else { "rw" }
                )),
            }
        }
        let rec = crate::containers::record::Record {
            id: process.id.clone(),
            path: path.clone(),
            args: args.to_vec(),
            config: berth_api::container::ContainerConfig {
                hostname: hostname.into(),
                env: process.env.clone(),
                user: process.user.clone(),
                working_dir: process.cwd.clone(),
                ..Default::default()
            },
            host_config: host,
            ..Default::default()
        };
        let spec = crate::containers::spec::build(
            &rec,
            &crate::containers::spec::Paths {
                rootfs,
                hostname: &hostname_file,
                hosts: &hosts_file,
                resolv: &resolv,
                join_netns: None,
                volumes: Vec::new(),
            },
        )?;
        std::fs::write(
            bundle.join("config.json"),
            serde_json::to_vec(&spec).expect("specs serialise"),
        )
        .map_err(|e| format!("write the bundle: {e}"))?;
        let (read, write_end) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
        let stderr = write_end.try_clone().map_err(|e| format!("pipe: {e}"))?;
        let mut child = std::process::Command::new(&self.exe)
            .arg("runtime")
            .arg("--root")
            .arg(&self.runtime_root)
            .arg("run")
            .arg("--bundle")
            .arg(bundle)
            .arg(&process.id)
            .stdin(std::process::Stdio::null())
            .stdout(write_end)
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("start the runtime: {e}"))?;
        let mut read = std::fs::File::from(read);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match read.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => output(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read the output: {e}")),
            }
        }
        let status = child
            .wait()
            .map_err(|e| format!("wait for the runtime: {e}"))?;
        use std::os::unix::process::ExitStatusExt;
        Ok(status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
    }
}

/// Clears what a build cut short by a crash left: mounts and scratch
/// directories, and the runtime state of its containers.
pub fn recover(data_root: &Path, runtime_root: &Path) {
    let tmp = data_root.join("builds").join("tmp");
    if let Ok(dirs) = std::fs::read_dir(&tmp) {
        for d in dirs.flatten() {
            let _ = berth_image::snapshot::unmount(&d.path());
            let id = d.file_name().to_string_lossy().into_owned();
            let _ = berth_runtime::ops::delete::delete(runtime_root, &id, true);
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

/// What a `POST /build` asked for.
struct Request {
    tags: Vec<ImageRef>,
    dockerfile: String,
    options: berth_build::build::Options,
    quiet: bool,
    /// `--check`: report the build checks, build nothing.
    check: bool,
}

fn flag(query: &HashMap<String, String>, key: &str) -> bool {
    query
        .get(key)
        .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

fn json_map(
    query: &HashMap<String, String>,
    key: &str,
) -> Result<BTreeMap<String, String>, EngineError> {
    match query.get(key).filter(|v| !v.is_empty()) {
        None => Ok(BTreeMap::new()),
        Some(raw) => {
            let v: BTreeMap<String, Option<String>> = serde_json::from_str(raw)
                .map_err(|e| EngineError::bad_request(format!("{key}: {e}")))?;
            Ok(v.into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect())
        }
    }
}

fn parse_request(uri: &Uri) -> Result<Request, EngineError> {
    let query: HashMap<String, String> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), berth_registry::wire::percent_decode(v)))
        .collect();
    let mut tags = Vec::new();
    for t in crate::images::api::repeated(uri.query(), "t") {
        if t.is_empty() {
            continue;
        }
        tags.push(ImageRef::parse(&t).map_err(|e| {
            EngineError::bad_request(format!("invalid tag {t:?}: invalid reference format: {e}"))
        })?);
    }
    let platform = match query.get("platform").filter(|p| !p.is_empty()) {
        Some(p) => Some(Platform::parse(p).map_err(|e| EngineError::bad_request(e.to_string()))?),
        None => None,
    };
    if let Some(r) = query.get("remote").filter(|r| !r.is_empty()) {
        return Err(EngineError::bad_request(format!(
            "remote build contexts ({r}) are not supported: send the context as the request body"
        )));
    }
    Ok(Request {
        tags,
        dockerfile: query
            .get("dockerfile")
            .filter(|d| !d.is_empty())
            .cloned()
            .unwrap_or_else(|| "Dockerfile".into()),
        quiet: flag(&query, "q"),
        check: flag(&query, "berthcheck"),
        options: berth_build::build::Options {
            build_args: json_map(&query, "buildargs")?,
            labels: json_map(&query, "labels")?,
            target: query.get("target").filter(|t| !t.is_empty()).cloned(),
            no_cache: flag(&query, "nocache"),
            pull: flag(&query, "pull"),
            platform,
            ..Default::default()
        },
    })
}

/// The `--secret`s of the secrets header: base64 of a JSON object of ids
/// to base64 values.
fn decode_secrets(value: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, EngineError> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let bad = |e: String| EngineError::bad_request(format!("the build secrets header: {e}"));
    let json = b64.decode(value).map_err(|e| bad(e.to_string()))?;
    let map: BTreeMap<String, String> =
        serde_json::from_slice(&json).map_err(|e| bad(e.to_string()))?;
    map.into_iter()
        .map(|(k, v)| Ok((k, b64.decode(v).map_err(|e| bad(e.to_string()))?)))
        .collect()
}

/// Unpacks the uploaded context (or takes the body as a lone Dockerfile)
/// into `dir`: the Dockerfile's text.
fn unpack_context(
    body: impl Read,
    dir: &Path,
    dockerfile: &str,
) -> Result<(String, String), String> {
    let mut reader = std::io::BufReader::with_capacity(1 << 20, body);
    let head = {
        use std::io::BufRead;
        reader
            .fill_buf()
            .map_err(|e| format!("read the context: {e}"))?
            .to_vec()
    };
    let compressed = head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || head.starts_with(b"BZh")
        || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z']);
    if !compressed && !berth_build::context::looks_like_tar(&head) {
        // `docker build - < Dockerfile`: the body is the Dockerfile.
        let mut text = String::new();
        reader
            .take(1 << 20)
            .read_to_string(&mut text)
            .map_err(|e| format!("read the Dockerfile: {e}"))?;
        return Ok((text, "Dockerfile".into()));
    }
    let stream = berth_image::layer::decompress_stream(reader).map_err(|e| e.to_string())?;
    let mut archive = tar::Archive::new(stream);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(false);
    for entry in archive
        .entries()
        .map_err(|e| format!("read the context: {e}"))?
    {
        let mut entry = entry.map_err(|e| format!("read the context: {e}"))?;
        let kind = entry.header().entry_type();
        if kind.is_block_special() || kind.is_character_special() {
            continue;
        }
        // unpack_in refuses `..` and paths through symlinks that leave dir.
        entry
            .unpack_in(dir)
            .map_err(|e| format!("unpack the context: {e}"))?;
    }
    let root = berth_sys::fs::open_dir_path(dir).map_err(|e| e.to_string())?;
    let fd = berth_sys::fs::open_beneath(&root, Path::new(dockerfile), libc::O_RDONLY, 0).map_err(
        |e| match e.raw_os_error() {
            Some(libc::ENOENT) => format!("Cannot locate specified Dockerfile: {dockerfile}"),
            _ => format!("the Dockerfile {dockerfile}: {e}"),
        },
    )?;
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(16 << 20)
        .read_to_string(&mut text)
        .map_err(|e| format!("read {dockerfile}: {e}"))?;
    Ok((text, dockerfile.to_owned()))
}

/// The `.dockerignore` beside the Dockerfile (`NAME.dockerignore`) or at
/// the context's root.
fn ignore_rules(dir: &Path, dockerfile: &str) -> Result<berth_build::ignore::IgnoreRules, String> {
    let root = berth_sys::fs::open_dir_path(dir).map_err(|e| e.to_string())?;
    for name in [
        format!("{dockerfile}.dockerignore"),
        ".dockerignore".to_owned(),
    ] {
        if let Ok(fd) = berth_sys::fs::open_beneath(&root, Path::new(&name), libc::O_RDONLY, 0) {
            let mut text = String::new();
            std::fs::File::from(fd)
                .take(4 << 20)
                .read_to_string(&mut text)
                .map_err(|e| format!("read {name}: {e}"))?;
            return berth_build::ignore::IgnoreRules::parse(&text).map_err(|e| e.to_string());
        }
    }
    Ok(Default::default())
}

/// The build checks as the stream reports them. A base image's
/// environment is known when the image is stored here (nothing is pulled).
fn check_report(
    host: &EngineHost,
    syntax: &berth_build::parser::Parsed,
    file: &berth_build::instructions::Dockerfile,
    options: &berth_build::build::Options,
    name: &str,
) -> Value {
    let platform = options.platform.clone().unwrap_or_else(Platform::host);
    let base_env = |i: usize| -> Option<Vec<String>> {
        let base = &file.stages[i].base;
        if base.contains('$') {
            return None;
        }
        let d = host.find(base, &platform)?;
        let state = berth_build::build::State::load(&host.images.content, &d).ok()?;
        Some(state.config.config.and_then(|c| c.env).unwrap_or_default())
    };
    let report =
        berth_build::checks::check(syntax, file, &|p| options.ignore.excluded(p), &base_env);
    let warnings: Vec<Value> = report
        .findings
        .iter()
        .map(|f| json!({ "rule": f.rule, "message": f.message, "line": f.line, "place": format!("{name}:{}", f.line) }))
        .collect();
    json!({ "warnings": warnings, "error": report.error })
}

fn short(id: &berth_model::Digest) -> String {
    id.hex()[..12].to_owned()
}

/// The event as Docker's classic text plus berth's structured form.
fn event_message(event: &Event) -> Value {
    match event {
        Event::Step {
            step,
            total,
            stage,
            name,
        } => json!({
            "stream": format!("Step {step}/{total} : {name}\n"),
            "berthBuild": { "step": step, "total": total, "stage": stage, "name": name },
        }),
        Event::Output { step, bytes } => {
            let text = String::from_utf8_lossy(bytes);
            json!({ "stream": text, "berthBuild": { "step": step, "output": text } })
        }
        Event::Cached { step } => json!({
            "stream": " ---> Using cache\n",
            "berthBuild": { "step": step, "cached": true },
        }),
        Event::Done {
            step,
            seconds,
            image,
        } => json!({
            "stream": format!(" ---> {}\n", short(image)),
            "berthBuild": { "step": step, "done": seconds, "image": image.to_string() },
        }),
        Event::Warning(w) => json!({
            "stream": format!("[Warning] {w}\n"),
            "berthBuild": { "warning": w },
        }),
    }
}

/// Docker's classic text in step order: stages build in parallel, but the
/// classic builder's output (what the docker CLI prints) tells one step
/// after the other. A step's lines pass at once while it is the first
/// unfinished one and wait otherwise, until the steps before it are done.
#[derive(Default)]
struct ClassicOrder {
    /// The first step not done (steps count from 1).
    next: usize,
    done: std::collections::BTreeSet<usize>,
    waiting: BTreeMap<usize, Vec<bytes::Bytes>>,
}

impl ClassicOrder {
    /// Takes `text`, `event`'s message: what may be sent now, in order.
    fn admit(&mut self, event: &Event, text: bytes::Bytes) -> Vec<bytes::Bytes> {
        self.next = self.next.max(1);
        let step = match event {
            Event::Step { step, .. }
            | Event::Output { step, .. }
            | Event::Cached { step }
            | Event::Done { step, .. } => *step,
            Event::Warning(_) => return vec![text],
        };
        let mut out = Vec::new();
        if step <= self.next {
            out.push(text);
        } else {
            self.waiting.entry(step).or_default().push(text);
        }
        if let Event::Done { .. } = event {
            self.done.insert(step);
            while self.done.contains(&self.next) {
                self.next += 1;
                out.extend(self.waiting.remove(&self.next).unwrap_or_default());
            }
        }
        out
    }

    /// Whatever still waits (the build ended, perhaps early), in order.
    fn finish(&mut self) -> Vec<bytes::Bytes> {
        std::mem::take(&mut self.waiting)
            .into_values()
            .flatten()
            .collect()
    }
}

/// `POST /build/prune` (`docker builder prune [-a]`): `all=1` removes
/// every cache entry, else those whose image no name keeps.
pub async fn prune(
    State(engine): State<Arc<Engine>>,
    uri: Uri,
) -> Result<Response<Body>, EngineError> {
    let all = crate::images::api::repeated(uri.query(), "all")
        .iter()
        .any(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    let images = engine.image_service().await?;
    let _exclusive = engine.build_gate.clone().write_owned().await;
    let (ids, freed) = tokio::task::spawn_blocking(move || crate::build_cache::prune(&images, all))
        .await
        .map_err(|e| EngineError::internal(e.to_string()))?
        .map_err(EngineError::internal)?;
    Ok(crate::images::api::json_response(
        axum::http::StatusCode::OK,
        &json!({ "CachesDeleted": ids, "SpaceReclaimed": freed }),
    ))
}

/// `POST /build`.
pub async fn build(
    State(engine): State<Arc<Engine>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response<Body>, EngineError> {
    let mut request = parse_request(&uri)?;
    if let Some(v) = headers.get(berth_api::BUILD_SECRETS_HEADER) {
        request.options.secrets = decode_secrets(v.as_bytes())?;
    }
    let images = engine.image_service().await?;
    let containers = engine.containers().await?;
    let builds = engine.config().data_root.join("builds");
    let scratch = builds.join("tmp").join(crate::containers::random_hex(8));
    std::fs::create_dir_all(scratch.join("context"))
        .map_err(|e| EngineError::internal(format!("create {}: {e}", scratch.display())))?;
    let host = EngineHost {
        images: images.clone(),
        credentials: crate::images::api::registry_config(&headers)?,
        exe: containers.exe().to_path_buf(),
        runtime_root: containers.runtime_root().to_path_buf(),
        bundles: scratch.join("bundles"),
        runtime: tokio::runtime::Handle::current(),
    };
    let reader = crate::images::api::blocking_reader(body);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<bytes::Bytes>();
    let events_tx = tx.clone();
    let quiet = request.quiet;
    // Held for the whole build: a cache prune waits for it.
    let shared = engine.build_gate.clone().read_owned().await;
    let task = tokio::task::spawn_blocking(move || -> Result<(), (String, Option<i32>)> {
        let _shared = shared;
        let context = scratch.join("context");
        let exit_code = std::cell::Cell::new(None);
        let result = (|| {
            let (text, name) = unpack_context(reader, &context, &request.dockerfile)?;
            let mut options = request.options;
            options.ignore = ignore_rules(&context, &name)?;
            options.context = context.clone();
            options.dockerfile_name = name.clone();
            let syntax = berth_build::parser::parse(&text)
                .map_err(|e| format!("dockerfile parse error on {name} {e}"))?;
            let parsed = berth_build::instructions::parse(&syntax)
                .map_err(|e| format!("dockerfile parse error on {name} {e}"))?;
            if request.check {
                let report = check_report(&host, &syntax, &parsed, &options, &name);
                let _ = events_tx.send(line(json!({ "berthBuild": { "check": report } })));
                return Ok(());
            }
            let stores = berth_build::build::Stores {
                content: &images.content,
                snapshots: &images.snapshots,
                dir: images.root.join("builds"),
            };
            let classic = std::sync::Mutex::new(ClassicOrder::default());
            let send = |event: Event| {
                if quiet {
                    return;
                }
                // In step order (see ClassicOrder): a message without
                // `stream` text would print as an empty line in the docker
                // CLI, so berth's record travels with the text.
                let text = line(event_message(&event));
                for out in classic.lock().expect("order lock").admit(&event, text) {
                    let _ = events_tx.send(out);
                }
            };
            let built = berth_build::build::build(&stores, &host, &parsed, &options, &send);
            for out in classic.lock().expect("order lock").finish() {
                let _ = events_tx.send(out);
            }
            let built = built
                .inspect_err(|e| exit_code.set(e.exit_code))
                .map_err(|e| match e.line {
                    Some(l) => format!("{name}:{l}: {}", e.message),
                    None => e.message,
                })?;
            let target = built.descriptor.clone();
            let mut named = Vec::new();
            if request.tags.is_empty() {
                let r = crate::images::untagged(&target)?;
                if images.images.get(&r).map(|x| x.target.digest) != Some(target.digest.clone()) {
                    images
                        .images
                        .put(&r, target.clone())
                        .map_err(|e| e.to_string())?;
                }
            }
            for t in &request.tags {
                if images.images.get(t).map(|x| x.target.digest) != Some(target.digest.clone()) {
                    images
                        .images
                        .put(t, target.clone())
                        .map_err(|e| e.to_string())?;
                    // An unnamed copy of the same image is now named.
                    if let Ok(u) = crate::images::untagged(&target) {
                        let _ = images.images.remove(&u);
                    }
                }
                named.push(t.familiar());
            }
            // The build checks' findings, for berth build to list after
            // the build as BuildKit does (no `stream` text: the docker CLI's
            // classic output stays dockerd's).
            if !quiet {
                let report = check_report(&host, &syntax, &parsed, &options, &name);
                if report["warnings"].as_array().is_some_and(|w| !w.is_empty()) {
                    let _ = events_tx.send(line(
                        json!({ "berthBuild": { "checks": report["warnings"] } }),
                    ));
                }
            }
            let id = built.id.to_string();
            let _ = events_tx.send(line(json!({ "aux": { "ID": id } })));
            if quiet {
                let _ = events_tx.send(line(json!({ "stream": format!("{id}\n") })));
            } else {
                let _ = events_tx.send(line(json!({
                    "stream": format!("Successfully built {}\n", short(&built.id)),
                    "berthBuild": { "image": id, "tags": named },
                })));
                for n in &named {
                    let _ = events_tx.send(line(
                        json!({ "stream": format!("Successfully tagged {n}\n") }),
                    ));
                }
            }
            Ok(())
        })();
        let _ = std::fs::remove_dir_all(&scratch);
        result.map_err(|m| (m, exit_code.get()))
    });
    tokio::spawn(async move {
        let (message, code) = match task.await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e,
            Err(e) => (format!("the build failed: {e}"), None),
        };
        // A RUN's exit code becomes the docker CLI's, as the classic
        // builder reports it.
        let detail = match code {
            Some(c) => json!({ "message": message, "code": c }),
            None => json!({ "message": message }),
        };
        let _ = tx.send(line(json!({ "errorDetail": detail, "error": message })));
    });
    Ok(crate::images::api::json_stream_response(rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> bytes::Bytes {
        bytes::Bytes::from(s.to_owned())
    }

    #[test]
    fn classic_text_comes_out_in_step_order() {
        let mut o = ClassicOrder::default();
        let step = |n: usize| Event::Step {
            step: n,
            total: 3,
            stage: String::new(),
            name: String::new(),
        };
        let done = |n: usize| Event::Done {
            step: n,
            seconds: 0.0,
            image: berth_image::content::sha256_of(b""),
        };
        let mut got: Vec<bytes::Bytes> = Vec::new();
        // Step 2 (another stage) runs while step 1 does.
        got.extend(o.admit(&step(2), text("s2")));
        got.extend(o.admit(&step(1), text("s1")));
        got.extend(o.admit(&done(2), text("d2")));
        got.extend(o.admit(&Event::Warning("w".into()), text("w")));
        got.extend(o.admit(&done(1), text("d1")));
        got.extend(o.admit(&step(3), text("s3")));
        got.extend(o.finish());
        assert_eq!(got, ["s1", "w", "d1", "s2", "d2", "s3"].map(text));
    }
}
