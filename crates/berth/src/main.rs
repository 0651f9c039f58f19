//! berth: build, ship and run containers.
//!
//! One binary. Invoked as `berth-runtime` (a link or copy under that name)
//! it is a drop-in for runc; otherwise its first argument picks the tool.

mod build;
mod container;
mod daemon;
mod format;
mod image;
mod registry;
mod runtime;
mod system;
mod table;
mod volume;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "berth: build, ship and run containers"
)]
struct Cli {
    /// Where images, containers and volumes live.
    #[arg(
        long,
        global = true,
        env = "BERTH_DATA_ROOT",
        default_value = "/var/lib/berth"
    )]
    data_root: std::path::PathBuf,
    /// The daemon's socket (unix://PATH); one is started there if none
    /// answers.
    #[arg(short = 'H', long, env = "BERTH_HOST", default_value = daemon::DEFAULT_HOST)]
    host: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The OCI runtime, with runc's command line.
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Runtime {
        /// runc's arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// The engine: the Docker Engine API on a unix socket.
    Daemon(daemon::DaemonArgs),
    /// Manage containers.
    Container {
        #[command(subcommand)]
        command: container::ContainerCommand,
    },
    /// Create and run a new container from an image.
    #[command(disable_help_flag = true)]
    Run(container::RunArgs),
    /// Create a new container.
    #[command(disable_help_flag = true)]
    Create(container::CreateArgs),
    /// Start one or more stopped containers.
    Start(container::StartArgs),
    /// Stop one or more running containers.
    Stop(container::StopArgs),
    /// Restart one or more containers.
    Restart(container::StopArgs),
    /// Kill one or more running containers.
    Kill(container::KillArgs),
    /// Remove one or more containers.
    Rm(container::RmArgs),
    /// List containers.
    Ps(container::PsArgs),
    /// Fetch the logs of a container.
    Logs(container::LogsArgs),
    /// Execute a command in a running container.
    Exec(container::ExecArgs),
    /// Block until one or more containers stop, then print their exit codes.
    Wait(container::NamesArgs),
    /// Attach to a running container's stdio.
    Attach(container::AttachArgs),
    /// Display detailed information on one or more containers.
    Inspect(container::InspectArgs),
    /// Rename a container.
    Rename(container::RenameArgs),
    /// Pause all processes within one or more containers.
    Pause(container::NamesArgs),
    /// Unpause all processes within one or more containers.
    Unpause(container::NamesArgs),
    /// Display the running processes of a container.
    Top(container::TopArgs),
    /// Display a live stream of container(s) resource usage statistics.
    Stats(container::StatsArgs),
    /// Inspect changes to files or directories on a container's filesystem.
    Diff(container::OneArgs),
    /// Export a container's filesystem as a tar archive.
    Export(container::ExportArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(container::CpArgs),
    /// Update configuration of one or more containers.
    Update(container::UpdateArgs),
    /// Get real time events from the daemon.
    Events(container::EventsArgs),
    /// Create a new image from a container's changes.
    Commit(container::CommitArgs),
    /// Show the berth version information.
    Version(system::FormatArgs),
    /// Display system-wide information.
    Info(system::FormatArgs),
    /// Manage berth.
    System {
        #[command(subcommand)]
        command: system::SystemCommand,
    },
    /// List port mappings for the container.
    Port(container::OneArgs),
    /// Manage volumes.
    Volume {
        #[command(subcommand)]
        command: volume::VolumeCommand,
    },
    /// Build an image from a Dockerfile.
    Build(build::BuildArgs),
    /// Manage builds.
    Builder {
        #[command(subcommand)]
        command: system::BuilderCommand,
    },
    /// Manage images.
    Image {
        #[command(subcommand)]
        command: image::ImageCommand,
    },
    /// List images.
    Images(image::ImagesArgs),
    /// Download an image from a registry.
    Pull(image::PullArgs),
    /// Upload an image to a registry.
    Push(image::PushArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(image::TagArgs),
    /// Remove one or more images.
    Rmi(image::RmiArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default).
    Save(image::SaveArgs),
    /// Load an image from a tar archive or STDIN.
    Load(image::LoadArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(image::ImportArgs),
    /// Show the history of an image.
    History(image::HistoryArgs),
    /// Log in to a registry.
    Login(image::LoginArgs),
    /// Log out from a registry.
    Logout(image::LogoutArgs),
    /// An OCI distribution registry: serve it, collect its garbage.
    Registry {
        #[command(subcommand)]
        command: registry::RegistryCommand,
    },
}

/// Raises the soft open-file limit to the hard one, as servers need many
/// descriptors (raising the hard limit itself needs CAP_SYS_RESOURCE).
pub fn raise_nofile() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// Resolves when the process is asked to stop (SIGTERM or SIGINT): the
/// servers' graceful shutdown.
pub async fn terminated() {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        // Without a handler only ctrl-c stops the server.
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn main() -> ExitCode {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let argv0 = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if argv0 == "berth-runtime" || argv0.starts_with("berth-runtime") {
        return runtime::main(args);
    }
    // The per-container shim, started by the daemon: before clap, and
    // before anything could start a thread (it forks).
    if args.get(1).is_some_and(|a| a == "shim") {
        return match args.get(2) {
            Some(dir) if args.len() == 3 => {
                ExitCode::from(berth_shim::server::main(std::path::Path::new(dir)) as u8)
            }
            _ => {
                eprintln!("usage: berth shim DIR (started by berth daemon)");
                ExitCode::from(2)
            }
        };
    }
    if args.get(1).is_some_and(|a| a == "runtime") {
        args.remove(1);
        args[0] = "berth runtime".into();
        return runtime::main(args);
    }
    let cli = Cli::parse();
    let root = cli.data_root;
    let target = container::Target {
        host: cli.host,
        data_root: root.clone(),
    };
    use container::ContainerCommand as C;
    match cli.command {
        Command::Container { command } => container::main(target, command),
        Command::Run(a) => container::main(target, C::Run(a)),
        Command::Create(a) => container::main(target, C::Create(a)),
        Command::Start(a) => container::main(target, C::Start(a)),
        Command::Stop(a) => container::main(target, C::Stop(a)),
        Command::Restart(a) => container::main(target, C::Restart(a)),
        Command::Kill(a) => container::main(target, C::Kill(a)),
        Command::Rm(a) => container::main(target, C::Rm(a)),
        Command::Ps(a) => container::main(target, C::Ls(a)),
        Command::Logs(a) => container::main(target, C::Logs(a)),
        Command::Exec(a) => container::main(target, C::Exec(a)),
        Command::Wait(a) => container::main(target, C::Wait(a)),
        Command::Attach(a) => container::main(target, C::Attach(a)),
        Command::Inspect(a) => container::main(target, C::Inspect(a)),
        Command::Rename(a) => container::main(target, C::Rename(a)),
        Command::Pause(a) => container::main(target, C::Pause(a)),
        Command::Unpause(a) => container::main(target, C::Unpause(a)),
        Command::Volume { command } => volume::main(target, command),
        Command::Top(a) => container::main(target, C::Top(a)),
        Command::Stats(a) => container::main(target, C::Stats(a)),
        Command::Diff(a) => container::main(target, C::Diff(a)),
        Command::Export(a) => container::main(target, C::Export(a)),
        Command::Cp(a) => container::main(target, C::Cp(a)),
        Command::Update(a) => container::main(target, C::Update(a)),
        Command::Events(a) => container::events_main(target, a),
        Command::Commit(a) => container::main(target, C::Commit(a)),
        Command::Version(a) => system::main(target, system::Command::Version(a)),
        Command::Info(a) => system::main(target, system::Command::Info(a)),
        Command::System { command } => system::main(target, system::Command::System(command)),
        Command::Port(a) => system::main(target, system::Command::Port(a)),
        Command::Runtime { .. } => unreachable!("handled above"),
        Command::Daemon(args) => daemon::main(root, args),
        Command::Image { command } => image::main(root, command),
        Command::Images(args) => image::main(root, image::ImageCommand::Ls(args)),
        Command::Pull(args) => image::main(root, image::ImageCommand::Pull(args)),
        Command::Push(args) => image::main(root, image::ImageCommand::Push(args)),
        Command::Tag(args) => image::main(root, image::ImageCommand::Tag(args)),
        Command::Rmi(args) => image::main(root, image::ImageCommand::Rm(args)),
        Command::Save(args) => image::main(root, image::ImageCommand::Save(args)),
        Command::Load(args) => image::main(root, image::ImageCommand::Load(args)),
        Command::Import(args) => image::main(root, image::ImageCommand::Import(args)),
        Command::History(args) => image::main(root, image::ImageCommand::History(args)),
        Command::Login(args) => image::run(root, |ctx| image::login(ctx, args)),
        Command::Logout(args) => image::run(root, |ctx| image::logout(ctx, args)),
        Command::Registry { command } => registry::main(command),
        Command::Build(args) => build::main(target, args),
        Command::Builder { command } => system::main(target, system::Command::Builder(command)),
    }
}

/// Asks, as Docker's prune commands do, after `warning`; true for y or yes
/// on the first line of standard input.
pub(crate) fn confirm(warning: &str) -> bool {
    use std::io::{BufRead, Write};
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}
