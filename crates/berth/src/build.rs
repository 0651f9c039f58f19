//! `berth build`: `docker build`'s command line, against the daemon's
//! `POST /build`.
//!
//! The context directory is sent as a tar, leaving out what
//! `.dockerignore` excludes (the Dockerfile and `.dockerignore` always go);
//! `-` sends standard input (a tar, or a Dockerfile with no context), and
//! `-f -` reads the Dockerfile from standard input. Progress is drawn as
//! BuildKit's plain display from the `berthBuild` records of the stream.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use berth_api::client::Client;
use clap::Args;
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::Value;

use crate::container::{Failure, Target, connect, finish, q};

/// `build`'s options, as `docker build`'s.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Name and optionally a tag in the name:tag format (repeatable).
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: PATH/Dockerfile; `-` reads stdin).
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Set build-time variables (NAME=value, or NAME to take it from the
    /// environment).
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Set the target build stage to build.
    #[arg(long)]
    pub target: Option<String>,
    /// Set metadata for an image (KEY=value).
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Do not use cache when building the image.
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the base images.
    #[arg(long)]
    pub pull: bool,
    /// Set the target platform for the build.
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress the build output and print the image ID on success.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Write the image ID to the file.
    #[arg(long)]
    pub iidfile: Option<PathBuf>,
    /// Type of progress output: auto, plain, tty, quiet.
    #[arg(long, default_value = "auto")]
    pub progress: String,
    /// Output destination: type=local,dest=DIR or type=tar,dest=FILE (or
    /// just a directory).
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Check the Dockerfile (build checks) without building.
    #[arg(long)]
    pub check: bool,
    /// A secret for `RUN --mount=type=secret`: id=ID[,src=FILE|env=VAR].
    #[arg(long)]
    pub secret: Vec<String>,
    /// Build context: a directory, or `-` for a tar or a Dockerfile on
    /// standard input.
    pub context: String,
}

/// The header that carries `--secret`s to the daemon (never the query
/// string, which servers log).
const SECRETS_HEADER: &str = berth_api::BUILD_SECRETS_HEADER;

/// `--secret id=ID[,src=FILE|env=VAR]`s as the header's value: base64 of a
/// JSON object of ids to base64 contents.
fn secrets_header(specs: &[String]) -> Result<String, String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut map = serde_json::Map::new();
    for spec in specs {
        let (mut id, mut src, mut env) = (None, None, None);
        for field in spec.split(',') {
            match field.split_once('=') {
                Some(("id", v)) => id = Some(v.to_owned()),
                Some(("src" | "source", v)) => src = Some(v.to_owned()),
                Some(("env", v)) => env = Some(v.to_owned()),
                Some(("type", "file" | "env")) => {}
                _ => {
                    return Err(format!(
                        "--secret {spec}: expected id=ID[,src=FILE|env=VAR]"
                    ));
                }
            }
        }
        let id = id.ok_or_else(|| format!("--secret {spec}: an id is required"))?;
        let value = match (src, env) {
            (Some(path), _) => {
                std::fs::read(&path).map_err(|e| format!("--secret {id}: read {path}: {e}"))?
            }
            (None, Some(var)) => std::env::var(&var)
                .map_err(|_| format!("--secret {id}: the environment has no {var}"))?
                .into_bytes(),
            (None, None) => std::env::var(&id)
                .map_err(|_| format!("--secret {id}: give src=FILE or env=VAR"))?
                .into_bytes(),
        };
        map.insert(id, Value::String(b64.encode(value)));
    }
    Ok(b64.encode(serde_json::to_vec(&map).expect("JSON serialises")))
}

/// `--output`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Output {
    Local(PathBuf),
    Tar(Option<PathBuf>),
}

fn parse_output(spec: &str) -> Result<Output, String> {
    if !spec.contains('=') {
        return Ok(if spec == "-" {
            Output::Tar(None)
        } else {
            Output::Local(PathBuf::from(spec))
        });
    }
    let mut kind = None;
    let mut dest = None;
    for field in spec.split(',') {
        match field.split_once('=') {
            Some(("type", t)) => kind = Some(t.to_owned()),
            Some(("dest", d)) => dest = Some(d.to_owned()),
            _ => {
                return Err(format!(
                    "--output: unexpected {field:?} (type=local|tar,dest=PATH)"
                ));
            }
        }
    }
    match (kind.as_deref(), dest) {
        (Some("local"), Some(d)) => Ok(Output::Local(PathBuf::from(d))),
        (Some("tar"), Some(d)) if d == "-" => Ok(Output::Tar(None)),
        (Some("tar"), d) => Ok(Output::Tar(d.map(PathBuf::from))),
        (Some("local"), None) => Err("--output type=local needs dest=DIR".into()),
        (Some(t), _) => Err(format!("--output: unsupported type {t:?} (local or tar)")),
        (None, _) => Err("--output needs type=local or type=tar".into()),
    }
}

/// Runs `berth build`.
pub fn main(target: Target, args: BuildArgs) -> ExitCode {
    let result = crate::container::block_on_client(async move {
        let client = connect(&target).await?;
        build(&client, args).await
    });
    finish(result)
}

fn failure(message: impl Into<String>) -> Failure {
    Failure {
        code: 1,
        message: message.into(),
    }
}

/// The context, sent as it is read: chunks for the request body, the
/// thread producing them, and the Dockerfile's path in the context.
struct Context {
    chunks: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    producer: std::thread::JoinHandle<Result<(), String>>,
    /// The daemon stopped reading (it answered, or failed, first): the
    /// producer's error is then not the one to show.
    abandoned: std::sync::Arc<std::sync::atomic::AtomicBool>,
    dockerfile: String,
}

/// A `Write` that hands what it is given, a megabyte at a time, to the
/// request body (blocking while the daemon is behind).
struct ChunkSender {
    tx: tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
    buf: Vec<u8>,
    abandoned: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

const CHUNK: usize = 1 << 20;

impl Write for ChunkSender {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = bytes::Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            self.abandoned
                .store(true, std::sync::atomic::Ordering::Relaxed);
            std::io::Error::from(std::io::ErrorKind::BrokenPipe)
        })
    }
}

/// Starts sending the context: the directory as a tar (what
/// `.dockerignore` excludes left out, the Dockerfile and `.dockerignore`
/// always in), or standard input as it is.
fn context(args: &BuildArgs) -> Result<Context, String> {
    let mut stdin_dockerfile = None;
    if args.file.as_deref() == Some("-") {
        if args.context == "-" {
            return Err(
                "the Dockerfile and the context cannot both come from standard input".into(),
            );
        }
        let mut text = Vec::new();
        std::io::stdin()
            .read_to_end(&mut text)
            .map_err(|e| format!("read the Dockerfile from standard input: {e}"))?;
        stdin_dockerfile = Some(text);
    }
    let (tx, chunks) = tokio::sync::mpsc::channel(4);
    let abandoned = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut out = ChunkSender {
        tx,
        buf: Vec::with_capacity(CHUNK),
        abandoned: abandoned.clone(),
    };
    if args.context == "-" {
        let dockerfile = args.file.clone().unwrap_or_else(|| "Dockerfile".into());
        let producer = std::thread::spawn(move || {
            std::io::copy(&mut std::io::stdin().lock(), &mut out)
                .and_then(|_| out.flush())
                .map_err(|e| format!("read the context from standard input: {e}"))
        });
        return Ok(Context {
            chunks,
            producer,
            abandoned,
            dockerfile,
        });
    }
    let dir = PathBuf::from(&args.context);
    if !dir.is_dir() {
        return Err(format!(
            "unable to prepare context: path {:?} not found",
            args.context
        ));
    }
    let mut extra: Option<(String, Vec<u8>)> = None;
    let dockerfile = match (&stdin_dockerfile, &args.file) {
        (Some(text), _) => {
            let name = format!(".dockerfile.{}", berth_engine::containers::random_hex(6));
            extra = Some((name.clone(), text.clone()));
            name
        }
        (None, Some(f)) => {
            let path = Path::new(f);
            let abs = std::fs::canonicalize(path)
                .map_err(|e| format!("unable to prepare context: the Dockerfile {f}: {e}"))?;
            let root = std::fs::canonicalize(&dir).map_err(|e| e.to_string())?;
            match abs.strip_prefix(&root) {
                Ok(rel) => rel.to_string_lossy().into_owned(),
                Err(_) => {
                    let text = std::fs::read(&abs).map_err(|e| format!("read {f}: {e}"))?;
                    let name = format!(".dockerfile.{}", berth_engine::containers::random_hex(6));
                    extra = Some((name.clone(), text));
                    name
                }
            }
        }
        (None, None) => "Dockerfile".to_owned(),
    };
    let ignore_text = std::fs::read_to_string(dir.join(format!("{dockerfile}.dockerignore")))
        .or_else(|_| std::fs::read_to_string(dir.join(".dockerignore")))
        .unwrap_or_default();
    let rules = berth_build::ignore::IgnoreRules::parse(&ignore_text).map_err(|e| e.to_string())?;
    let always = [dockerfile.clone(), ".dockerignore".to_owned()];
    let producer = std::thread::spawn(move || {
        let mut tar = tar::Builder::new(out);
        tar.follow_symlinks(false);
        add_dir(&mut tar, &dir, "", &rules, &always)?;
        if let Some((name, text)) = extra {
            let mut h = tar::Header::new_gnu();
            h.set_size(text.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, &name, &text[..])
                .map_err(|e| format!("send the context: {e}"))?;
        }
        tar.into_inner()
            .and_then(|mut out| out.flush())
            .map_err(|e| format!("send the context: {e}"))
    });
    Ok(Context {
        chunks,
        producer,
        abandoned,
        dockerfile,
    })
}

fn add_dir(
    tar: &mut tar::Builder<ChunkSender>,
    dir: &Path,
    rel: &str,
    rules: &berth_build::ignore::IgnoreRules,
    always: &[String],
) -> Result<(), String> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("read {}: {e}", dir.display()))?
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let meta = std::fs::symlink_metadata(e.path()).map_err(|e| e.to_string())?;
        let excluded = rules.excluded(&child) && !always.contains(&child);
        if excluded && !(meta.is_dir() && rules.must_descend(&child)) {
            continue;
        }
        if !excluded {
            tar.append_path_with_name(e.path(), &child)
                .map_err(|err| format!("add {} to the context: {err}", e.path().display()))?;
        }
        if meta.is_dir() {
            add_dir(tar, &e.path(), &child, rules, always)?;
        }
    }
    Ok(())
}

fn key_values(list: &[String], from_env: bool) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for item in list {
        match item.split_once('=') {
            Some((k, v)) => {
                out.insert(k.to_owned(), v.to_owned());
            }
            None if from_env => {
                if let Ok(v) = std::env::var(item) {
                    out.insert(item.clone(), v);
                }
            }
            None => {
                out.insert(item.clone(), String::new());
            }
        }
    }
    out
}

/// How progress is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// BuildKit's plain lines: every step's start, output and end.
    Plain,
    /// BuildKit's terminal summary: one line per finished step.
    Tty,
    /// Nothing but the image ID.
    Quiet,
}

/// Draws BuildKit's progress from the stream's records.
struct Display {
    mode: Mode,
    cached: std::collections::BTreeSet<u64>,
    started: BTreeMap<u64, Instant>,
    names: BTreeMap<u64, String>,
    last: u64,
    finished: u64,
    total: u64,
    begun: Instant,
}

impl Display {
    fn new(mode: Mode) -> Display {
        if mode == Mode::Tty {
            eprintln!("[+] Building");
        }
        Display {
            mode,
            cached: Default::default(),
            started: BTreeMap::new(),
            names: BTreeMap::new(),
            last: 0,
            finished: 0,
            total: 0,
            begun: Instant::now(),
        }
    }

    /// A ` => NAME   1.2s` line, the time at column 80.
    fn summary(name: &str, seconds: f64) -> String {
        let time = format!("{seconds:.1}s");
        let room = 80usize.saturating_sub(time.len() + 4);
        let mut shown: String = name.chars().take(room).collect();
        while shown.chars().count() < room {
            shown.push(' ');
        }
        format!(" => {shown} {time}")
    }

    fn record(&mut self, r: &Value) {
        if self.mode == Mode::Quiet {
            return;
        }
        let mut out = std::io::stderr().lock();
        if let Some(w) = r.get("warning").and_then(Value::as_str) {
            let _ = writeln!(out, "WARNING: {w}");
            return;
        }
        let Some(step) = r.get("step").and_then(Value::as_u64) else {
            return;
        };
        self.last = self.last.max(step);
        let plain = self.mode == Mode::Plain;
        if let Some(name) = r.get("name").and_then(Value::as_str) {
            let stage = r.get("stage").and_then(Value::as_str).unwrap_or("");
            self.started.insert(step, Instant::now());
            self.names.insert(step, format!("{stage} {name}"));
            self.total = r.get("total").and_then(Value::as_u64).unwrap_or(self.total);
            if plain {
                let _ = writeln!(out, "#{step} {stage} {name}");
            }
        } else if let Some(text) = r.get("output").and_then(Value::as_str) {
            let t = self
                .started
                .get(&step)
                .map(|s| s.elapsed().as_secs_f64())
                .unwrap_or(0.0);
            if plain {
                for line in text.lines() {
                    let _ = writeln!(out, "#{step} {t:.3} {line}");
                }
            }
        } else if r.get("cached").is_some() {
            self.cached.insert(step);
            self.finished += 1;
            if plain {
                let _ = writeln!(out, "#{step} CACHED");
            } else {
                let name = self.names.get(&step).cloned().unwrap_or_default();
                let _ = writeln!(out, "{}", Self::summary(&format!("CACHED {name}"), 0.0));
            }
        } else if let Some(s) = r.get("done").and_then(Value::as_f64)
            && !self.cached.contains(&step)
        {
            self.finished += 1;
            if plain {
                let _ = writeln!(out, "#{step} DONE {s:.1}s");
            } else {
                let name = self.names.get(&step).cloned().unwrap_or_default();
                let _ = writeln!(out, "{}", Self::summary(&name, s));
            }
        }
    }

    /// The export's lines, after the steps.
    fn exported(&self, id: &str, tags: &[String]) {
        let mut err = std::io::stderr().lock();
        let seconds = self.begun.elapsed().as_secs_f64();
        match self.mode {
            Mode::Quiet => {}
            Mode::Plain => {
                let n = self.last + 1;
                let _ = writeln!(err, "#{n} exporting to image");
                let _ = writeln!(err, "#{n} writing image {id} done");
                for t in tags {
                    let _ = writeln!(err, "#{n} naming to {t} done");
                }
                let _ = writeln!(err, "#{n} DONE {seconds:.1}s");
            }
            Mode::Tty => {
                let _ = writeln!(err, "{}", Self::summary("exporting to image", 0.0));
                let _ = writeln!(
                    err,
                    "{}",
                    Self::summary(&format!("=> writing image {id}"), 0.0)
                );
                for t in tags {
                    let _ = writeln!(err, "{}", Self::summary(&format!("=> naming to {t}"), 0.0));
                }
                let _ = writeln!(
                    err,
                    "[+] Building {seconds:.1}s ({}/{}) FINISHED",
                    self.finished,
                    self.total.max(self.finished)
                );
            }
        }
    }
}

async fn build(client: &Client, args: BuildArgs) -> Result<ExitCode, Failure> {
    let output = args.output.as_deref().map(parse_output).transpose()?;
    let Context {
        chunks,
        producer,
        abandoned,
        dockerfile,
    } = context(&args)?;
    let mut path = format!("/build?dockerfile={}", q(&dockerfile));
    for t in &args.tags {
        path.push_str(&format!("&t={}", q(t)));
    }
    let build_args = key_values(&args.build_args, true);
    if !build_args.is_empty() {
        path.push_str(&format!(
            "&buildargs={}",
            q(&serde_json::to_string(&build_args).expect("maps serialise"))
        ));
    }
    let labels = key_values(&args.labels, false);
    if !labels.is_empty() {
        path.push_str(&format!(
            "&labels={}",
            q(&serde_json::to_string(&labels).expect("maps serialise"))
        ));
    }
    if let Some(t) = &args.target {
        path.push_str(&format!("&target={}", q(t)));
    }
    if let Some(p) = &args.platform {
        path.push_str(&format!("&platform={}", q(p)));
    }
    if args.no_cache {
        path.push_str("&nocache=1");
    }
    if args.pull {
        path.push_str("&pull=1");
    }
    if args.check {
        path.push_str("&berthcheck=1");
    }
    let mode = match args.progress.as_str() {
        _ if args.quiet => Mode::Quiet,
        "quiet" => Mode::Quiet,
        "plain" => Mode::Plain,
        "tty" => Mode::Tty,
        "auto" if std::io::stderr().is_terminal() => Mode::Tty,
        "auto" => Mode::Plain,
        other => {
            return Err(failure(format!(
                "invalid --progress {other:?}: use auto, plain, tty or quiet"
            )));
        }
    };
    let quiet = mode == Mode::Quiet;
    let mut headers = Vec::new();
    if !args.secret.is_empty() {
        headers.push((SECRETS_HEADER, secrets_header(&args.secret)?));
    }
    let sent = client
        .send_channel(Method::POST, &path, "application/x-tar", chunks, &headers)
        .await;
    // Reading the context failed (an unreadable file): that is the error
    // to show, not the broken request or stream it caused.
    let producer_failed = move || match producer.join() {
        Ok(Err(e)) if !abandoned.load(std::sync::atomic::Ordering::Relaxed) => {
            Some(failure(format!("ERROR: {e}")))
        }
        _ => None,
    };
    let response = match sent {
        Ok(r) => r,
        Err(e) => return Err(producer_failed().unwrap_or_else(|| Failure::from(e))),
    };
    let mut body = Client::check_status(response)
        .await
        .map_err(Failure::from)?
        .into_body();
    let mut display = Display::new(mode);
    let mut buf = Vec::new();
    let mut id = None;
    let mut tags: Vec<String> = Vec::new();
    let mut error = None;
    let mut check: Option<Value> = None;
    let mut findings: Vec<Value> = Vec::new();
    let mut broken = None;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                broken = Some(failure(format!("the build stream broke: {e}")));
                break;
            }
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(end) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            let Ok(v) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            if let Some(r) = v.get("berthBuild") {
                display.record(r);
                if let Some(t) = r.get("tags").and_then(Value::as_array) {
                    tags = t
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect();
                }
                if let Some(c) = r.get("check") {
                    check = Some(c.clone());
                }
                if let Some(w) = r.get("checks").and_then(Value::as_array) {
                    findings = w.clone();
                }
            }
            if let Some(i) = v.pointer("/aux/ID").and_then(Value::as_str) {
                id = Some(i.to_owned());
            }
            if let Some(e) = v.get("error").and_then(Value::as_str) {
                error = Some(e.to_owned());
            }
        }
    }
    if let Some(f) = producer_failed() {
        return Err(f);
    }
    if let Some(f) = broken {
        return Err(f);
    }
    if let Some(c) = check {
        return Ok(print_check(&c));
    }
    if let Some(e) = error {
        return Err(failure(format!("ERROR: failed to build: {e}")));
    }
    let Some(id) = id else {
        return Err(failure("ERROR: the build ended without an image"));
    };
    display.exported(&id, &tags);
    if !findings.is_empty() && !quiet {
        let mut err = std::io::stderr().lock();
        let n = findings.len();
        let _ = writeln!(
            err,
            "\n {n} warning{} found:",
            if n == 1 { "" } else { "s" }
        );
        for f in &findings {
            let _ = writeln!(
                err,
                " - {}: {} (line {})",
                f["rule"].as_str().unwrap_or_default(),
                f["message"].as_str().unwrap_or_default(),
                f["line"]
            );
        }
    }
    if quiet {
        println!("{id}");
    }
    if let Some(file) = &args.iidfile {
        std::fs::write(file, &id).map_err(|e| failure(format!("write {}: {e}", file.display())))?;
    }
    if let Some(out) = output {
        export(client, &id, &out).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the daemon's check results as BuildKit does; non-zero when one
/// is an error.
fn print_check(c: &Value) -> ExitCode {
    let warnings = c
        .get("warnings")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut err = std::io::stderr().lock();
    for w in &warnings {
        let rule = w.get("rule").and_then(Value::as_str).unwrap_or("");
        let text = w.get("message").and_then(Value::as_str).unwrap_or("");
        let place = w.get("place").and_then(Value::as_str).unwrap_or("");
        let _ = writeln!(
            err,
            "WARNING: {rule} - https://docs.docker.com/go/dockerfile/rule/{}/",
            kebab(rule)
        );
        let _ = writeln!(err, "{text}\n{place}\n");
    }
    if warnings.is_empty() {
        let _ = writeln!(err, "Check complete, no warnings found.");
    } else {
        let _ = writeln!(
            err,
            "Check complete, {} warning{} been found!",
            warnings.len(),
            if warnings.len() == 1 {
                " has"
            } else {
                "s have"
            }
        );
    }
    if c.get("error").and_then(Value::as_bool) == Some(true) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `JSONArgsRecommended` as its page's name, `json-args-recommended`.
fn kebab(rule: &str) -> String {
    let chars: Vec<char> = rule.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let prev_lower = i > 0 && chars[i - 1].is_ascii_lowercase();
        let acronym_end = i > 0
            && chars[i - 1].is_ascii_uppercase()
            && chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
        if c.is_ascii_uppercase() && (prev_lower || acronym_end) {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// `--output`: the image's files, from a container made of it and
/// exported, written as a directory or a tar.
async fn export(client: &Client, id: &str, out: &Output) -> Result<(), Failure> {
    let (_, created) = client
        .json(
            Method::POST,
            "/containers/create",
            Some(serde_json::json!({ "Image": id, "Cmd": ["true"], "Entrypoint": [] })),
        )
        .await
        .map_err(Failure::from)?;
    let cid = created["Id"].as_str().unwrap_or_default().to_owned();
    let result = async {
        let mut body = client
            .stream(Method::GET, &format!("/containers/{cid}/export"), None)
            .await
            .map_err(Failure::from)?;
        let mut tar = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| failure(format!("export: {e}")))?;
            if let Ok(d) = frame.into_data() {
                tar.extend_from_slice(&d);
            }
        }
        match out {
            Output::Tar(None) => std::io::stdout()
                .write_all(&tar)
                .map_err(|e| failure(format!("write the tar: {e}"))),
            Output::Tar(Some(p)) => {
                std::fs::write(p, &tar).map_err(|e| failure(format!("write {}: {e}", p.display())))
            }
            Output::Local(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| failure(format!("create {}: {e}", dir.display())))?;
                let mut a = tar::Archive::new(&tar[..]);
                for entry in a.entries().map_err(|e| failure(e.to_string()))? {
                    let mut entry = entry.map_err(|e| failure(e.to_string()))?;
                    let kind = entry.header().entry_type();
                    if kind.is_block_special() || kind.is_character_special() {
                        continue;
                    }
                    entry
                        .unpack_in(dir)
                        .map_err(|e| failure(format!("write into {}: {e}", dir.display())))?;
                }
                Ok(())
            }
        }
    }
    .await;
    let _ = client
        .send(
            Method::DELETE,
            &format!("/containers/{cid}?force=1"),
            None,
            false,
        )
        .await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_parse() {
        assert_eq!(parse_output("out").unwrap(), Output::Local("out".into()));
        assert_eq!(parse_output("-").unwrap(), Output::Tar(None));
        assert_eq!(
            parse_output("type=tar,dest=a.tar").unwrap(),
            Output::Tar(Some("a.tar".into()))
        );
        assert_eq!(
            parse_output("type=local,dest=d").unwrap(),
            Output::Local("d".into())
        );
        assert!(parse_output("type=image").is_err());
        assert!(parse_output("type=local").is_err());
    }

    #[test]
    fn rule_links() {
        assert_eq!(kebab("JSONArgsRecommended"), "json-args-recommended");
        assert_eq!(kebab("FromAsCasing"), "from-as-casing");
    }
}
