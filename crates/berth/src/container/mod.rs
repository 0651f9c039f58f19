//! The container commands: a client of the daemon's Engine API, with the
//! docker CLI's flags, tables, `--format` and exit codes. When no daemon
//! answers, one is started in the background, so a first `berth run`
//! just works.

mod mount;
mod observe;
mod run;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use berth_api::client::{Client, ClientError};
use clap::{Args, Subcommand};
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::{Value, json};

use crate::format::Format;
use crate::image::EXIT_ERROR;

pub use observe::{
    CommitArgs, CpArgs, EventsArgs, ExportArgs, OneArgs, StatsArgs, TopArgs, UpdateArgs,
};
pub use run::{CreateArgs, RunArgs};

/// Where the CLI finds the daemon.
#[derive(Debug, Clone)]
pub struct Target {
    /// `unix://PATH`.
    pub host: String,
    /// The data root to start a daemon on.
    pub data_root: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Create and run a new container from an image.
    #[command(disable_help_flag = true)]
    Run(RunArgs),
    /// Create a new container.
    #[command(disable_help_flag = true)]
    Create(CreateArgs),
    /// Start one or more stopped containers.
    Start(StartArgs),
    /// Stop one or more running containers.
    Stop(StopArgs),
    /// Restart one or more containers.
    Restart(StopArgs),
    /// Kill one or more running containers.
    Kill(KillArgs),
    /// Remove one or more containers.
    Rm(RmArgs),
    /// List containers.
    #[command(visible_alias = "ps", alias = "list")]
    Ls(PsArgs),
    /// Fetch the logs of a container.
    Logs(LogsArgs),
    /// Execute a command in a running container.
    Exec(ExecArgs),
    /// Block until one or more containers stop, then print their exit codes.
    Wait(NamesArgs),
    /// Attach to a running container's stdio.
    Attach(AttachArgs),
    /// Display detailed information on one or more containers.
    Inspect(InspectArgs),
    /// Rename a container.
    Rename(RenameArgs),
    /// Pause all processes within one or more containers.
    Pause(NamesArgs),
    /// Unpause all processes within one or more containers.
    Unpause(NamesArgs),
    /// Remove all stopped containers.
    Prune(PruneArgs),
    /// Display the running processes of a container.
    Top(TopArgs),
    /// Display a live stream of container(s) resource usage statistics.
    Stats(StatsArgs),
    /// Inspect changes to files or directories on a container's filesystem.
    Diff(OneArgs),
    /// Export a container's filesystem as a tar archive.
    Export(ExportArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(CpArgs),
    /// Update configuration of one or more containers.
    Update(UpdateArgs),
    /// Create a new image from a container's changes.
    Commit(CommitArgs),
}

#[derive(Debug, Args)]
pub struct NamesArgs {
    /// Containers, by name or id.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals.
    #[arg(short, long)]
    pub attach: bool,
    /// Attach the container's STDIN.
    #[arg(short, long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long)]
    pub detach_keys: Option<String>,
    /// Containers, by name or id.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container.
    #[arg(short, long)]
    pub time: Option<i64>,
    /// Signal to send to the container.
    #[arg(short, long)]
    pub signal: Option<String>,
    /// Containers, by name or id.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send to the container.
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    /// Containers, by name or id.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL).
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container.
    #[arg(short, long)]
    pub volumes: bool,
    /// Containers, by name or id.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show n last created containers (includes all states).
    #[arg(short = 'n', long)]
    pub last: Option<i64>,
    /// Show the latest created container (includes all states).
    #[arg(short, long)]
    pub latest: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Display total file sizes.
    #[arg(short, long)]
    pub size: bool,
    /// Filter output based on conditions provided.
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a custom template.
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow log output.
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs.
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show logs since timestamp or relative (e.g. 42m).
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative (e.g. 42m).
    #[arg(long)]
    pub until: Option<String>,
    /// Show timestamps.
    #[arg(short, long)]
    pub timestamps: bool,
    /// The container.
    pub container: String,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background.
    #[arg(short, long)]
    pub detach: bool,
    #[command(flatten)]
    pub process: run::ProcessArgs,
    /// Give extended privileges to the command.
    #[arg(long)]
    pub privileged: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long)]
    pub detach_keys: Option<String>,
    /// The container.
    pub container: String,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Do not attach STDIN.
    #[arg(long)]
    pub no_stdin: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long)]
    pub detach_keys: Option<String>,
    /// The container.
    pub container: String,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template.
    #[arg(short, long)]
    pub format: Option<String>,
    /// Containers, by name or id.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    /// The container.
    pub container: String,
    /// Its new name.
    pub new_name: String,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>").
    #[arg(long)]
    pub filter: Vec<String>,
}

/// A failure and the exit code it gives.
pub struct Failure {
    /// The exit code.
    pub code: u8,
    /// What to print.
    pub message: String,
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Failure {
        let message = match &e {
            ClientError::Api { .. } => format!("Error response from daemon: {e}"),
            _ => e.to_string(),
        };
        Failure {
            code: EXIT_ERROR,
            message,
        }
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure {
            code: EXIT_ERROR,
            message,
        }
    }
}

/// The socket path of a `unix://` host.
fn socket_of(host: &str) -> Result<PathBuf, String> {
    host.strip_prefix("unix://")
        .map(PathBuf::from)
        .ok_or_else(|| format!("unsupported host {host:?}: berth speaks unix:// sockets"))
}

/// A client of the daemon at `target`, starting one when none answers.
pub async fn connect(target: &Target) -> Result<Client, Failure> {
    let socket = socket_of(&target.host)?;
    let client = Client::new(&socket);
    // A socket that accepts is a daemon; only when none does is one started
    // (the request itself then finds it, without a ping first).
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        return Ok(client);
    }
    start_daemon(target, &socket)?;
    let ping = || client.send(Method::GET, "/_ping", None, false);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match ping().await {
            Ok(_) => return Ok(client),
            Err(ClientError::Connect(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Starts `berth daemon` in the background, in a session of its own, with
/// its exec root beside the socket and its output in `daemon.log` there.
fn start_daemon(target: &Target, socket: &Path) -> Result<(), String> {
    let exec_root = socket
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("/run/berth"))
        .to_owned();
    std::fs::create_dir_all(&exec_root)
        .map_err(|e| format!("create {}: {e}", exec_root.display()))?;
    let log_path = exec_root.join("daemon.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("open {}: {e}", log_path.display()))?;
    let exe = std::env::current_exe().map_err(|e| format!("find berth's own binary: {e}"))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--data-root")
        .arg(&target.data_root)
        .arg("daemon")
        .arg("-H")
        .arg(&target.host)
        .arg("--exec-root")
        .arg(&exec_root)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe; the daemon leaves our session
    // so that the terminal's signals do not reach it.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    cmd.spawn()
        .map(drop)
        .map_err(|e| format!("start berth daemon: {e}"))
}

/// Runs a container command against the daemon at `target`.
pub fn main(target: Target, command: ContainerCommand) -> ExitCode {
    let result = crate::container::block_on_client(async move {
        let client = connect(&target).await?;
        dispatch(&client, command).await
    });
    finish(result)
}

/// Runs a client command on a single-threaded async runtime: a client
/// waits on one daemon, and starting worker threads would cost more than
/// the whole request.
pub fn block_on_client<T>(f: impl std::future::Future<Output = T>) -> Result<T, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("start the async runtime: {e}"))?;
    Ok(runtime.block_on(f))
}

/// A command's result as its exit code, its error printed.
pub fn finish(result: Result<Result<ExitCode, Failure>, String>) -> ExitCode {
    match result {
        Ok(Ok(code)) => code,
        Ok(Err(f)) => {
            if !f.message.is_empty() {
                eprintln!("{}", f.message);
            }
            ExitCode::from(f.code)
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// `GET /containers/NAME/json`: the container's inspect document.
pub async fn container_json(client: &Client, name: &str) -> Result<Value, ClientError> {
    client
        .json(Method::GET, &format!("/containers/{}/json", q(name)), None)
        .await
        .map(|(_, v)| v)
}

/// `s` percent-encoded for a query or path.
pub fn q(s: &str) -> String {
    berth_registry::wire::percent_encode(s)
}

/// Runs `f` over each name, printing what it returns (the name, for most
/// commands) and the error when it fails, as Docker's multi-container
/// commands do.
pub async fn each<F, Fut>(names: &[String], mut f: F) -> Result<ExitCode, Failure>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<String, ClientError>>,
{
    let mut failed = false;
    for name in names {
        match f(name.clone()).await {
            Ok(line) => println!("{line}"),
            Err(e) => {
                failed = true;
                eprintln!("{}", Failure::from(e).message);
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

async fn dispatch(client: &Client, command: ContainerCommand) -> Result<ExitCode, Failure> {
    match command {
        ContainerCommand::Run(args) => run::run(client, args).await,
        ContainerCommand::Create(args) => run::create_command(client, args).await,
        ContainerCommand::Start(args) => run::start(client, args).await,
        ContainerCommand::Stop(args) => {
            let query = stop_query(&args);
            each(&args.containers, |n| {
                let path = format!("/containers/{}/stop{query}", q(&n));
                async move { client.json(Method::POST, &path, None).await.map(|_| n) }
            })
            .await
        }
        ContainerCommand::Restart(args) => {
            let query = stop_query(&args);
            each(&args.containers, |n| {
                let path = format!("/containers/{}/restart{query}", q(&n));
                async move { client.json(Method::POST, &path, None).await.map(|_| n) }
            })
            .await
        }
        ContainerCommand::Kill(args) => {
            let signal = q(&args.signal);
            each(&args.containers, |n| {
                let path = format!("/containers/{}/kill?signal={signal}", q(&n));
                async move { client.json(Method::POST, &path, None).await.map(|_| n) }
            })
            .await
        }
        ContainerCommand::Rm(args) => {
            let query = format!("?force={}&v={}", args.force, args.volumes);
            each(&args.containers, |n| {
                let path = format!("/containers/{}{query}", q(&n));
                async move { client.json(Method::DELETE, &path, None).await.map(|_| n) }
            })
            .await
        }
        ContainerCommand::Pause(args) => {
            each(&args.containers, |n| {
                let path = format!("/containers/{}/pause", q(&n));
                async move { client.json(Method::POST, &path, None).await.map(|_| n) }
            })
            .await
        }
        ContainerCommand::Unpause(args) => {
            each(&args.containers, |n| {
                let path = format!("/containers/{}/unpause", q(&n));
                async move { client.json(Method::POST, &path, None).await.map(|_| n) }
            })
            .await
        }
        ContainerCommand::Rename(args) => {
            let path = format!(
                "/containers/{}/rename?name={}",
                q(&args.container),
                q(&args.new_name)
            );
            client.json(Method::POST, &path, None).await?;
            Ok(ExitCode::SUCCESS)
        }
        ContainerCommand::Wait(args) => {
            each(&args.containers, |n| {
                let path = format!("/containers/{}/wait", q(&n));
                async move {
                    let (_, v) = client.json(Method::POST, &path, None).await?;
                    Ok(v["StatusCode"].to_string())
                }
            })
            .await
        }
        ContainerCommand::Ls(args) => ps(client, args).await,
        ContainerCommand::Logs(args) => logs(client, args).await,
        ContainerCommand::Exec(args) => run::exec(client, args).await,
        ContainerCommand::Attach(args) => run::attach_command(client, args).await,
        ContainerCommand::Inspect(args) => inspect(client, args).await,
        ContainerCommand::Top(args) => observe::top(client, args).await,
        ContainerCommand::Stats(args) => observe::stats(client, args).await,
        ContainerCommand::Diff(args) => observe::diff(client, args).await,
        ContainerCommand::Export(args) => observe::export(client, args).await,
        ContainerCommand::Cp(args) => observe::cp(client, args).await,
        ContainerCommand::Update(args) => observe::update(client, args).await,
        ContainerCommand::Commit(args) => observe::commit(client, args).await,
        ContainerCommand::Prune(args) => {
            if !args.force && !crate::confirm("WARNING! This will remove all stopped containers.") {
                return Ok(ExitCode::SUCCESS);
            }
            let filters = filters_json(&args.filter)?;
            let path = format!("/containers/prune?filters={}", q(&filters));
            let (_, v) = client.json(Method::POST, &path, None).await?;
            let deleted: Vec<&str> = v["ContainersDeleted"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if !deleted.is_empty() {
                println!("Deleted Containers:");
                for id in deleted {
                    println!("{id}");
                }
                println!();
            }
            let reclaimed = v["SpaceReclaimed"].as_u64().unwrap_or(0);
            println!(
                "Total reclaimed space: {}",
                crate::image::progress::human_size(reclaimed)
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn stop_query(args: &StopArgs) -> String {
    let mut parts = Vec::new();
    if let Some(t) = args.time {
        parts.push(format!("t={t}"));
    }
    if let Some(s) = &args.signal {
        parts.push(format!("signal={}", q(s)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// `--filter key=value` flags as the API's `filters` JSON.
pub fn filters_json(filters: &[String]) -> Result<String, String> {
    let mut map: serde_json::Map<String, Value> = serde_json::Map::new();
    for f in filters {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| format!("bad format of filter (expected name=value): {f}"))?;
        map.entry(k.to_owned())
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .expect("arrays")
            .push(json!(v));
    }
    Ok(Value::Object(map).to_string())
}

fn short_id(id: &str) -> String {
    id.chars().take(12).collect()
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        let head: String = s.chars().take(n - 1).collect();
        format!("{head}…")
    } else {
        s.to_owned()
    }
}

fn created_ago(unix: i64) -> String {
    format!("{} ago", berth_engine::images::elapsed(unix))
}

async fn ps(client: &Client, args: PsArgs) -> Result<ExitCode, Failure> {
    let limit = if args.latest { Some(1) } else { args.last };
    let mut path = format!(
        "/containers/json?all={}&size={}&filters={}",
        args.all,
        args.size,
        q(&filters_json(&args.filter)?)
    );
    if let Some(n) = limit {
        path.push_str(&format!("&limit={n}"));
    }
    let (_, list) = client.json(Method::GET, &path, None).await?;
    let list = list.as_array().cloned().unwrap_or_default();
    if args.quiet {
        for c in &list {
            let id = c["Id"].as_str().unwrap_or_default();
            println!(
                "{}",
                if args.no_trunc {
                    id.to_owned()
                } else {
                    short_id(id)
                }
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Value> = list
        .iter()
        .map(|c| {
            let id = c["Id"].as_str().unwrap_or_default();
            let command = format!("\"{}\"", c["Command"].as_str().unwrap_or_default());
            let names: Vec<String> = c["Names"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|n| n.trim_start_matches('/').to_owned())
                .collect();
            let labels: Vec<String> = c["Labels"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            json!({
                "ID": if args.no_trunc { id.to_owned() } else { short_id(id) },
                "Image": c["Image"],
                "Command": if args.no_trunc { command } else { truncate(&command, 20) },
                "CreatedAt": c["Created"],
                "RunningFor": created_ago(c["Created"].as_i64().unwrap_or(0)),
                "Ports": "",
                "State": c["State"],
                "Status": c["Status"],
                "Size": format!(
                    "{} (virtual {})",
                    crate::image::progress::human_size(c["SizeRw"].as_u64().unwrap_or(0)),
                    crate::image::progress::human_size(c["SizeRootFs"].as_u64().unwrap_or(0))
                ),
                "Names": names.join(","),
                "Labels": labels.join(","),
                "Mounts": "",
                "Networks": "",
            })
        })
        .collect();
    let format = Format::parse(args.format.as_deref())?;
    let out = format.print(
        &rows,
        || {
            let mut columns = vec![
                ("ID", "CONTAINER ID"),
                ("Image", "IMAGE"),
                ("Command", "COMMAND"),
                ("RunningFor", "CREATED"),
                ("Status", "STATUS"),
                ("Ports", "PORTS"),
                ("Names", "NAMES"),
            ];
            if args.size {
                columns.push(("Size", "SIZE"));
            }
            let mut cells = vec![columns.iter().map(|(_, t)| (*t).to_owned()).collect()];
            for r in &rows {
                cells.push(
                    columns
                        .iter()
                        .map(|(k, _)| r[*k].as_str().unwrap_or_default().to_owned())
                        .collect(),
                );
            }
            crate::table::render(&cells, 10, 3)
        },
        &[
            ("ID", "CONTAINER ID"),
            ("Image", "IMAGE"),
            ("Command", "COMMAND"),
            ("CreatedAt", "CREATED AT"),
            ("RunningFor", "CREATED"),
            ("Ports", "PORTS"),
            ("State", "STATE"),
            ("Status", "STATUS"),
            ("Size", "SIZE"),
            ("Names", "NAMES"),
            ("Labels", "LABELS"),
            ("Mounts", "MOUNTS"),
            ("Networks", "NETWORKS"),
        ],
    )?;
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// Copies a log or attach stream to stdout and stderr: demultiplexed
/// frames, or raw bytes for a terminal.
pub async fn copy_output(
    mut body: impl hyper::body::Body<Data = bytes::Bytes, Error = hyper::Error> + Unpin,
    tty: bool,
) -> Result<(), String> {
    use std::io::Write;
    let mut buf: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if tty {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&data);
            let _ = out.flush();
            continue;
        }
        buf.extend_from_slice(&data);
        demux(&mut buf);
    }
    Ok(())
}

/// Writes every whole frame of `buf` to stdout or stderr, keeping the rest.
pub fn demux(buf: &mut Vec<u8>) {
    use std::io::Write;
    loop {
        if buf.len() < 8 {
            return;
        }
        let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
        if buf.len() < 8 + len {
            return;
        }
        let data = &buf[8..8 + len];
        if buf[0] == 2 {
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(data);
            let _ = e.flush();
        } else {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(data);
            let _ = o.flush();
        }
        buf.drain(..8 + len);
    }
}

async fn logs(client: &Client, args: LogsArgs) -> Result<ExitCode, Failure> {
    let info = container_json(client, &args.container).await?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let mut path = format!(
        "/containers/{}/logs?stdout=1&stderr=1&follow={}&timestamps={}&tail={}",
        q(&args.container),
        args.follow,
        args.timestamps,
        q(&args.tail)
    );
    for (key, value) in [("since", &args.since), ("until", &args.until)] {
        if let Some(v) = value {
            path.push_str(&format!("&{key}={}", q(&relative_time(v)?)));
        }
    }
    let body = client.stream(Method::GET, &path, None).await?;
    copy_output(body, tty).await?;
    Ok(ExitCode::SUCCESS)
}

/// `42m`, `10s`, `2h` before now as unix seconds; anything else as given.
pub fn relative_time(v: &str) -> Result<String, String> {
    let units = [('s', 1), ('m', 60), ('h', 3600)];
    for (suffix, secs) in units {
        if let Some(n) = v.strip_suffix(suffix)
            && let Ok(n) = n.parse::<f64>()
        {
            let now = berth_model::time::unix_now().as_secs_f64();
            return Ok(format!("{:.9}", now - n * secs as f64));
        }
    }
    Ok(v.to_owned())
}

async fn inspect(client: &Client, args: InspectArgs) -> Result<ExitCode, Failure> {
    let mut found = Vec::new();
    let mut failed = false;
    for name in &args.containers {
        match container_json(client, name).await {
            Ok(v) => found.push(v),
            // `inspect` of what is not a container: an image of that name.
            Err(ClientError::Api { status: 404, .. })
                if let Ok((_, v)) = client
                    .json(Method::GET, &format!("/images/{}/json", q(name)), None)
                    .await =>
            {
                found.push(v)
            }
            Err(e) => {
                failed = true;
                eprintln!("{}", Failure::from(e).message);
            }
        }
    }
    print_inspect(&found, args.format.as_deref())?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Prints inspect output: a JSON array, or `format` per object.
pub fn print_inspect(found: &[Value], format: Option<&str>) -> Result<(), String> {
    match format {
        None | Some("") | Some("json") => {
            println!(
                "{}",
                serde_json::to_string_pretty(found).map_err(|e| e.to_string())?
            );
        }
        Some(f) => print!(
            "{}",
            Format::parse(Some(f))?.print(found, String::new, &[])?
        ),
    }
    Ok(())
}

/// `berth events`.
pub fn events_main(target: Target, args: EventsArgs) -> ExitCode {
    let result = crate::container::block_on_client(async move {
        let client = connect(&target).await?;
        observe::events(&client, args).await
    });
    finish(result)
}
