//! runc's command line, as clap structures only.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The OCI runtime with runc's command line.
#[derive(Debug, Parser)]
#[command(
    name = "berth-runtime",
    version = concat!(env!("CARGO_PKG_VERSION"), "\nspec: 1.2.0"),
    about = "berth's OCI runtime, with runc's command line"
)]
pub struct RuntimeCli {
    /// Where container state lives.
    #[arg(
        long,
        global = true,
        default_value = "/run/berth-runtime",
        env = "BERTH_RUNTIME_ROOT"
    )]
    pub root: PathBuf,
    /// Append log lines to this file (stderr by default).
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// The log format.
    #[arg(long = "log-format", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log debug output.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd to manage cgroups (not supported: berth writes cgroupfs).
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for runc compatibility; berth has no checkpointing.
    #[arg(long, global = true, hide = true)]
    pub criu: Option<String>,
    /// Accepted for runc compatibility.
    #[arg(long, global = true, hide = true)]
    pub rootless: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub command: RuntimeCommand,
}

/// Log line formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `time="..." level=error msg="..."`
    Text,
    /// `{"level":"error","msg":"...","time":"..."}`
    Json,
}

/// Table or JSON output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Columns for people.
    Table,
    /// JSON for programs.
    Json,
}

/// The runtime's commands.
#[derive(Debug, Subcommand)]
pub enum RuntimeCommand {
    /// Create a container from a bundle, ready to start.
    Create(CreateArgs),
    /// Run the user process of a created container.
    Start(IdArg),
    /// Create and start a container, and wait for it unless detached.
    Run(RunArgs),
    /// Print a container's state as JSON.
    State(IdArg),
    /// Send a signal to a container's init (or all its processes).
    Kill(KillArgs),
    /// Delete a container.
    Delete(DeleteArgs),
    /// Run a new process inside a container.
    Exec(ExecArgs),
    /// List the processes in a container.
    Ps(PsArgs),
    /// List containers.
    #[command(alias = "ls")]
    List(ListArgs),
    /// Freeze every process in a container.
    Pause(IdArg),
    /// Thaw a paused container.
    Resume(IdArg),
    /// Change a container's resource limits.
    Update(UpdateArgs),
    /// Print container events and resource statistics.
    Events(EventsArgs),
    /// Print the features this runtime supports, as OCI features JSON.
    Features,
    /// Write a default config.json.
    Spec(SpecArgs),
}

/// A command that takes only a container id.
#[derive(Debug, Args)]
pub struct IdArg {
    /// The container id.
    pub id: String,
}

/// Options shared by create and run.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The bundle directory (holding config.json).
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// Write the init's pid here.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// A unix socket to receive the pty master on.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Use MS_MOVE and chroot instead of pivot_root.
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass this many descriptors after stdio to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// The container id.
    pub id: String,
}

/// `run`'s options.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Do not wait for the container.
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Keep the container after it exits.
    #[arg(long)]
    pub keep: bool,
    /// The create options.
    #[command(flatten)]
    pub create: CreateArgs,
}

/// `kill`'s options.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal every process in the container.
    #[arg(long, short = 'a')]
    pub all: bool,
    /// The container id.
    pub id: String,
    /// A signal name or number.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

/// `delete`'s options.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kill a running container first.
    #[arg(long, short = 'f')]
    pub force: bool,
    /// The container id.
    pub id: String,
}

/// `exec`'s options.
#[derive(Debug, Args)]
#[command(trailing_var_arg = true)]
pub struct ExecArgs {
    /// A process.json to run instead of the arguments.
    #[arg(long, short = 'p')]
    pub process: Option<PathBuf>,
    /// Allocate a terminal.
    #[arg(long, short = 't')]
    pub tty: bool,
    /// A unix socket to receive the pty master on.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Do not wait for the process.
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Write the process's pid here.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Add an environment variable (KEY=VALUE).
    #[arg(long, short = 'e')]
    pub env: Vec<String>,
    /// The working directory.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// UID[:GID] to run as.
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// Additional group ids.
    #[arg(long = "additional-gids", short = 'g')]
    pub additional_gids: Vec<u32>,
    /// Add a capability.
    #[arg(long, short = 'c')]
    pub cap: Vec<String>,
    /// Set no_new_privs.
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Pass this many descriptors after stdio to the process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Accepted for runc compatibility.
    #[arg(long = "process-label", hide = true)]
    pub process_label: Option<String>,
    /// Accepted for runc compatibility.
    #[arg(long, hide = true)]
    pub apparmor: Option<String>,
    /// Accepted for runc compatibility.
    #[arg(long = "ignore-paused", hide = true)]
    pub ignore_paused: bool,
    /// The container id.
    pub id: String,
    /// The command and its arguments.
    pub command: Vec<String>,
}

/// `ps`'s options.
#[derive(Debug, Args)]
#[command(trailing_var_arg = true)]
pub struct PsArgs {
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// The container id.
    pub id: String,
    /// Options for ps(1) (default -ef).
    #[arg(allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// `list`'s options.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Print only the ids.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// `update`'s options.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// A JSON file of linux.resources ("-" for stdin).
    #[arg(long, short = 'r')]
    pub resources: Option<PathBuf>,
    /// Memory limit (bytes, or with k, m, g suffix).
    #[arg(long)]
    pub memory: Option<String>,
    /// Memory soft limit.
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit (-1 for unlimited).
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Accepted for runc compatibility; kernel memory limits are gone.
    #[arg(long = "kernel-memory", hide = true)]
    pub kernel_memory: Option<String>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    /// CPU CFS period in microseconds.
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota in microseconds (-1 for none).
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// Realtime period.
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    /// Realtime runtime.
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs to run on (e.g. 0-3,5).
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to use.
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Maximum number of processes (-1 for none).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block IO weight (10-1000).
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// The container id.
    pub id: String,
}

/// `events`' options.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Print statistics once and exit.
    #[arg(long)]
    pub stats: bool,
    /// How often to print statistics (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s")]
    pub interval: String,
    /// The container id.
    pub id: String,
}

/// `spec`'s options.
#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Where to write config.json.
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
}
