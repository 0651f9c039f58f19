//! `pull`, `push`, `login` and `logout`.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use berth_model::{ImageRef, Platform};
use berth_registry::client::pull::{LayerSink, pull as pull_image};
use berth_registry::client::push::push as push_image;
use berth_registry::client::{CredentialStore, Credentials, Progress};
use clap::Args;

use super::progress::{ProgressView, Verbs, short};
use super::{Context, stdout_is_tty};

/// Layer downloads at once (Docker's default is 3; a registry on a fast
/// link is limited by round trips, so berth uses more).
const CONCURRENCY: usize = 6;
/// Blob uploads at once (Docker's default is 5). Eight measured no faster
/// than six against distribution here: the server's hashing is the limit.
const UPLOAD_CONCURRENCY: usize = 6;

#[derive(Debug, Args)]
pub struct PullArgs {
    /// The image: NAME[:TAG|@DIGEST].
    pub name: String,
    /// Set platform if server is multi-platform capable (os/arch[/variant]).
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress verbose output.
    #[arg(short, long)]
    pub quiet: bool,
    /// Download all tagged images in the repository (not supported).
    #[arg(short = 'a', long)]
    pub all_tags: bool,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The image: NAME[:TAG].
    pub name: String,
    /// Suppress verbose output.
    #[arg(short, long)]
    pub quiet: bool,
    /// Push all tags of the repository (not supported).
    #[arg(short = 'a', long)]
    pub all_tags: bool,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry (default: Docker Hub).
    pub server: Option<String>,
    /// Username.
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password.
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from stdin.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry (default: Docker Hub).
    pub server: Option<String>,
}

/// `name` as a reference, `:latest` when it names neither tag nor digest.
pub fn parse_ref(name: &str) -> Result<ImageRef, String> {
    let reference = ImageRef::parse(name).map_err(|e| format!("invalid reference format: {e}"))?;
    if reference.tag().is_none() && reference.digest().is_none() {
        return reference.with_tag("latest").map_err(|e| e.to_string());
    }
    Ok(reference)
}

/// `name` for `--all-tags`: a repository, without tag or digest (which
/// parsing would otherwise default to `latest`).
fn repository_only(name: &str) -> Result<ImageRef, String> {
    let last = name.rsplit('/').next().unwrap_or(name);
    if name.contains('@') || last.contains(':') {
        return Err("tag can't be used with --all-tags/-a".into());
    }
    ImageRef::parse(name).map_err(|e| format!("invalid reference format: {e}"))
}

/// The tag of `reference`, or its digest.
fn tag_or_digest(reference: &ImageRef) -> String {
    match (reference.tag(), reference.digest()) {
        (Some(t), _) => t.to_owned(),
        (None, Some(d)) => d.to_string(),
        (None, None) => "latest".to_owned(),
    }
}

/// The registry part of a `login`/`logout` argument, which may be a URL.
fn registry_of(server: Option<&str>) -> String {
    let Some(server) = server else {
        return "docker.io".to_owned();
    };
    let s = server
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let s = s.split('/').next().unwrap_or(s);
    match s {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        other => other.to_owned(),
    }
}

pub fn pull(ctx: &Context, args: PullArgs) -> Result<ExitCode, String> {
    let platform = match &args.platform {
        Some(p) => Platform::parse(p).map_err(|e| e.to_string())?,
        None => Platform::host(),
    };
    if !args.all_tags {
        let reference = parse_ref(&args.name)?;
        pull_one(ctx, &reference, &platform, args.quiet)?;
        println!("{reference}");
        return Ok(ExitCode::SUCCESS);
    }
    // Every tag of the repository, one after the other, as Docker does.
    let named = repository_only(&args.name)?;
    let client = ctx.client();
    let repo = client
        .repo(named.domain(), named.path())
        .map_err(|e| e.to_string())?;
    let tags = super::block_on(repo.tags())?.map_err(|e| e.to_string())?;
    if tags.is_empty() {
        return Err(format!("{} has no tags", named.repository()));
    }
    for tag in tags {
        let reference = named.with_tag(&tag).map_err(|e| e.to_string())?;
        pull_one(ctx, &reference, &platform, args.quiet)?;
    }
    println!("{}", named.repository());
    Ok(ExitCode::SUCCESS)
}

/// Pulls one reference, printing Docker's progress and status lines.
fn pull_one(
    ctx: &Context,
    reference: &ImageRef,
    platform: &Platform,
    quiet: bool,
) -> Result<(), String> {
    let reference = reference.clone();
    let platform = platform.clone();
    let tag_or_digest = tag_or_digest(&reference);
    if !quiet {
        println!("{tag_or_digest}: Pulling from {}", reference.path());
    }
    let client = ctx.client();
    let repo = client
        .repo(reference.domain(), reference.path())
        .map_err(|e| e.to_string())?;
    let view = Arc::new(ProgressView::new(
        stdout_is_tty(),
        None,
        Verbs {
            waiting: "Pulling fs layer",
            moving: "Downloading",
            done: "Download complete",
            exists: "Already exists",
            last: Some("Pull complete"),
        },
    ));
    // Layers are unpacked as their downloads finish, on a thread of their
    // own, so unpacking overlaps the transfer.
    let (events, unpacker) = spawn_unpacker(ctx, view.clone(), quiet);
    // With overlay, a layer is unpacked from its bytes as they arrive.
    let streamer = Arc::new(StreamUnpack::new(ctx, view.clone(), quiet));
    let progress: Arc<dyn Fn(Progress) + Send + Sync> = {
        let display = reporter(&view, quiet);
        let events = std::sync::Mutex::new(events);
        let streamer = streamer.clone();
        Arc::new(move |event: Progress| {
            if let Progress::Resolved { layers, diff_ids } = &event {
                streamer.plan(layers, diff_ids);
            }
            let forward = matches!(
                event,
                Progress::Resolved { .. } | Progress::Done { .. } | Progress::Exists { .. }
            );
            display(event.clone());
            if forward {
                let _ = events.lock().unwrap_or_else(|e| e.into_inner()).send(event);
            }
        })
    };
    let content = ctx.content.clone();
    let pulled = super::block_on(async {
        pull_image(
            &repo,
            &content,
            &reference,
            &platform,
            CONCURRENCY,
            progress,
            Some(streamer.clone() as Arc<dyn LayerSink>),
        )
        .await
    });
    drop(streamer);
    // The progress callback (and with it the channel) is gone: the
    // unpacker finishes what it was given.
    let unpacked = unpacker
        .join()
        .unwrap_or_else(|_| Err("the unpacker panicked".into()));
    let pulled = pulled?.map_err(|e| e.to_string())?;
    unpacked?;
    // Anything the unpacker did not get to (an interrupted earlier pull
    // left it packed): unpack now.
    ctx.unpack(&pulled.target, |layer, fresh| {
        if fresh && !quiet {
            view.set(&short(&layer.digest), "Pull complete".to_owned());
        }
    })?;
    let previous = ctx.images.get(&reference);
    ctx.images
        .put(&reference, pulled.target.clone())
        .map_err(|e| e.to_string())?;
    if !quiet {
        println!("Digest: {}", pulled.target.digest);
        let up_to_date = previous.is_some_and(|p| p.target.digest == pulled.target.digest);
        if up_to_date {
            println!("Status: Image is up to date for {}", reference.familiar());
        } else {
            println!(
                "Status: Downloaded newer image for {}",
                reference.familiar()
            );
        }
    }
    Ok(())
}

pub fn push(ctx: &Context, args: PushArgs) -> Result<ExitCode, String> {
    if !args.all_tags {
        push_one(ctx, &parse_ref(&args.name)?, args.quiet)?;
        return Ok(ExitCode::SUCCESS);
    }
    // Every local tag of the repository.
    let named = repository_only(&args.name)?;
    let tagged: Vec<ImageRef> = ctx
        .images
        .list()
        .into_iter()
        .map(|(r, _)| r)
        .filter(|r| r.repository() == named.repository() && r.tag().is_some())
        .collect();
    if tagged.is_empty() {
        return Err(format!(
            "An image does not exist locally with the tag: {}",
            named.familiar()
        ));
    }
    for reference in &tagged {
        push_one(ctx, reference, args.quiet)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Pushes one reference, printing Docker's progress and digest lines.
fn push_one(ctx: &Context, reference: &ImageRef, quiet: bool) -> Result<(), String> {
    let reference = reference.clone();
    let Some(record) = ctx.images.get(&reference) else {
        return Err(format!(
            "An image does not exist locally with the tag: {}",
            reference.familiar()
        ));
    };
    let tag = tag_or_digest(&reference);
    let (_, manifest) = ctx.resolve(&record.target)?;
    let layers: Vec<_> = manifest.layers.iter().map(|l| l.digest.clone()).collect();
    // Other repositories of the same registry holding this image are where
    // its blobs can be mounted from.
    let mount_from: Vec<String> = ctx
        .images
        .references_to(&record.target.digest)
        .into_iter()
        .filter(|r| r.domain() == reference.domain() && r.path() != reference.path())
        .map(|r| r.path().to_owned())
        .collect();
    if !quiet {
        println!("The push refers to repository [{}]", reference.repository());
    }
    let view = Arc::new(ProgressView::new(
        stdout_is_tty(),
        Some(layers.iter().rev().cloned().collect()),
        Verbs {
            waiting: "Waiting",
            moving: "Pushing",
            done: "Pushed",
            exists: "Layer already exists",
            last: None,
        },
    ));
    if !quiet {
        for layer in layers.iter().rev() {
            view.set(&short(layer), "Preparing".to_owned());
        }
    }
    let progress = reporter(&view, quiet);
    let client = ctx.client();
    let repo = client
        .repo(reference.domain(), reference.path())
        .map_err(|e| e.to_string())?;
    let content = ctx.content.clone();
    let target = record.target.clone();
    let pushed = super::block_on(async {
        push_image(
            &repo,
            &content,
            &target,
            &tag,
            &mount_from,
            UPLOAD_CONCURRENCY,
            progress,
        )
        .await
    })?
    .map_err(|e| e.to_string())?;
    if !quiet {
        println!(
            "{tag}: digest: {} size: {}",
            pushed.target.digest, pushed.target.size
        );
    } else {
        println!("{reference}");
    }
    Ok(())
}

/// Unpacks overlay layers from their bytes while they download: each layer
/// gets a thread applying the stream into a staging directory, published
/// only once the blob is verified and the stream was the whole blob
/// (otherwise the unpacker thread unpacks it from the store as usual).
struct StreamUnpack {
    snapshots: berth_image::snapshot::Snapshotter,
    view: Arc<ProgressView>,
    quiet: bool,
    plan: std::sync::Mutex<Option<(Vec<berth_image::Descriptor>, Vec<berth_model::Digest>)>>,
    #[allow(clippy::type_complexity)]
    running: std::sync::Mutex<
        Vec<(
            berth_model::Digest,
            std::sync::mpsc::Sender<bool>,
            std::thread::JoinHandle<bool>,
        )>,
    >,
}

impl StreamUnpack {
    fn new(ctx: &Context, view: Arc<ProgressView>, quiet: bool) -> StreamUnpack {
        StreamUnpack {
            snapshots: ctx.snapshots.clone(),
            view,
            quiet,
            plan: Default::default(),
            running: Default::default(),
        }
    }

    fn plan(&self, layers: &[berth_image::Descriptor], diff_ids: &[berth_model::Digest]) {
        *self.plan.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((layers.to_vec(), diff_ids.to_vec()));
    }
}

impl LayerSink for StreamUnpack {
    fn begin(
        &self,
        layer: &berth_image::Descriptor,
    ) -> Option<tokio::sync::mpsc::Sender<bytes::Bytes>> {
        if self.snapshots.unpacks_in_order() {
            return None;
        }
        let (layers, diff_ids) = self
            .plan
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        let index = layers.iter().position(|l| l.digest == layer.digest)?;
        let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(64);
        let (decide, decision) = std::sync::mpsc::channel::<bool>();
        let snapshots = self.snapshots.clone();
        let handle = std::thread::spawn(move || {
            let reader = ChannelReader {
                rx,
                chunk: bytes::Bytes::new(),
            };
            let staged = snapshots.stage_stream(reader, &layers, &diff_ids, index);
            // Publish only what the verified blob was, whole.
            match (staged, decision.recv()) {
                (Ok(Some(staged)), Ok(true)) => staged.publish().is_ok(),
                _ => false,
            }
        });
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((layer.digest.clone(), decide, handle));
        Some(tx)
    }

    fn finish(&self, layer: &berth_image::Descriptor, whole: bool) {
        let entry = {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            running
                .iter()
                .position(|(d, _, _)| *d == layer.digest)
                .map(|i| running.swap_remove(i))
        };
        if let Some((digest, decide, handle)) = entry {
            if !self.quiet {
                self.view
                    .set(&short(&digest), "Download complete".to_owned());
            }
            let _ = decide.send(whole);
            if handle.join().unwrap_or(false) && !self.quiet {
                self.view.set(&short(&digest), "Pull complete".to_owned());
            }
        }
    }
}

/// The bytes of a channel as a blocking reader.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    chunk: bytes::Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.chunk = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        bytes::Buf::advance(&mut self.chunk, n);
        Ok(n)
    }
}

/// A thread that unpacks the layers of the image being pulled as their
/// blobs arrive: every layer as soon as it is there with the overlay
/// driver, each after the one below with the copy driver. It stops at the
/// first error, which it returns once the channel closes.
fn spawn_unpacker(
    ctx: &Context,
    view: Arc<ProgressView>,
    quiet: bool,
) -> (
    std::sync::mpsc::Sender<Progress>,
    std::thread::JoinHandle<Result<(), String>>,
) {
    let (tx, rx) = std::sync::mpsc::channel::<Progress>();
    let (content, snapshots) = (ctx.content.clone(), ctx.snapshots.clone());
    let handle = std::thread::spawn(move || {
        let mut plan: Option<(Vec<berth_image::Descriptor>, Vec<berth_model::Digest>)> = None;
        let mut ready: Vec<berth_model::Digest> = Vec::new();
        let mut done = Vec::new();
        let mut failed: Option<String> = None;
        for event in rx {
            match event {
                Progress::Resolved { layers, diff_ids } => {
                    done = vec![false; layers.len()];
                    plan = Some((layers, diff_ids));
                }
                Progress::Done { digest } | Progress::Exists { digest } => ready.push(digest),
                _ => {}
            }
            let Some((layers, diff_ids)) = &plan else {
                continue;
            };
            if failed.is_some() {
                continue;
            }
            for i in 0..layers.len() {
                if done[i] || !ready.contains(&layers[i].digest) {
                    if snapshots.unpacks_in_order() && !done[i] {
                        break;
                    }
                    continue;
                }
                match snapshots.unpack_layer(&content, layers, diff_ids, i) {
                    Ok(fresh) => {
                        done[i] = true;
                        if fresh && !quiet {
                            view.set(&short(&layers[i].digest), "Pull complete".to_owned());
                        }
                    }
                    Err(e) => {
                        failed = Some(e.to_string());
                        break;
                    }
                }
            }
        }
        failed.map_or(Ok(()), Err)
    });
    (tx, handle)
}

/// Feeds transfer events to `view`, unless `quiet`.
fn reporter(view: &Arc<ProgressView>, quiet: bool) -> Arc<dyn Fn(Progress) + Send + Sync> {
    let view = view.clone();
    Arc::new(move |event: Progress| {
        if !quiet {
            view.event(&event);
        }
    })
}

fn read_line(prompt: &str) -> Result<String, String> {
    print!("{prompt}");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("read from stdin: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Reads a password from the terminal without echoing it.
fn read_password(prompt: &str) -> Result<String, String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).map_err(|e| format!("read terminal settings: {e}"))?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet).map_err(|e| format!("turn off echo: {e}"))?;
    let line = read_line(prompt);
    let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    println!();
    line
}

pub fn login(ctx: &Context, args: LoginArgs) -> Result<ExitCode, String> {
    let registry = registry_of(args.server.as_deref());
    let interactive = std::io::stdin().is_terminal();
    let username = match args.username {
        Some(u) => u,
        None if interactive && !args.password_stdin => read_line("Username: ")?,
        None => {
            return Err(
                "Must provide --username with --password-stdin or when stdin is not a terminal"
                    .into(),
            );
        }
    };
    let password = if args.password_stdin {
        if args.password.is_some() {
            return Err("--password and --password-stdin are mutually exclusive".into());
        }
        let mut all = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut all)
            .map_err(|e| format!("read the password from stdin: {e}"))?;
        all.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        match args.password {
            Some(p) => {
                eprintln!(
                    "WARNING! Using --password via the CLI is insecure. Use --password-stdin."
                );
                p
            }
            None if interactive => read_password("Password: ")?,
            None => {
                return Err(
                    "Must provide --password or --password-stdin when stdin is not a terminal"
                        .into(),
                );
            }
        }
    };
    if username.is_empty() {
        return Err("Username is required".into());
    }
    let credentials = Credentials {
        username,
        password,
        identity_token: None,
    };
    let client = ctx.client();
    super::block_on(client.login(&registry, &credentials))?
        .map_err(|e| format!("login attempt to {registry} failed: {e}"))?;
    let store = CredentialStore::default_location();
    store.store(&registry, &credentials)?;
    println!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

pub fn logout(_ctx: &Context, args: LogoutArgs) -> Result<ExitCode, String> {
    let registry = registry_of(args.server.as_deref());
    let store = CredentialStore::default_location();
    if store.erase(&registry)? {
        println!("Removing login credentials for {registry}");
    } else {
        println!("Not logged in to {registry}");
    }
    Ok(ExitCode::SUCCESS)
}
