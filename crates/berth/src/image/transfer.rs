//! `pull`, `push`, `login` and `logout`.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use berth_engine::images::pull::{TransferEvent, TransferEvents};
use berth_model::{ImageRef, Platform};
use berth_registry::client::{CredentialStore, Credentials};
use clap::Args;

use super::progress::ProgressView;
use super::{Context, stdout_is_tty};

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

/// The registry part of a `login`/`logout` argument, which may be a URL.
fn registry_of(server: Option<&str>) -> String {
    berth_registry::client::credentials::registry_of_server(server.unwrap_or(""))
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
    let view = Arc::new(ProgressView::new(stdout_is_tty(), Some("Pull complete")));
    let events = printer(view, quiet);
    super::block_on(berth_engine::images::pull::pull(
        ctx, reference, platform, None, events,
    ))?
    .map(drop)
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
    let view = Arc::new(ProgressView::new(stdout_is_tty(), None));
    let events = printer(view, quiet);
    super::block_on(berth_engine::images::push::push(
        ctx, reference, None, events,
    ))??;
    if quiet {
        println!("{reference}");
    }
    Ok(())
}

/// Prints transfer events (unless `quiet`): lines, and layer statuses
/// through `view`.
fn printer(view: Arc<ProgressView>, quiet: bool) -> TransferEvents {
    Arc::new(move |event: TransferEvent| {
        if quiet {
            return;
        }
        match event {
            TransferEvent::Status { id: Some(id), text } => println!("{id}: {text}"),
            TransferEvent::Status { id: None, text } => println!("{text}"),
            TransferEvent::Layer {
                id,
                status,
                progress,
            } => view.layer(&id, &status, progress),
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
