//! `run`, `create`, `start`, `attach` and `exec`: the commands that carry a
//! container's stdio, with a raw terminal for `-t`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;

use berth_api::client::{Client, ClientError, Upgraded};
use clap::Args;
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{AttachArgs, ExecArgs, Failure, StartArgs, demux, q};
use crate::image::EXIT_ERROR;

/// The process flags `run`, `create` and `exec` share.
#[derive(Debug, Args)]
pub struct ProcessArgs {
    /// Keep STDIN open even if not attached.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables.
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short, long)]
    pub user: Option<String>,
}

/// The flags `run` and `create` share.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Print help (`-h` is the hostname, as in Docker).
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub process: ProcessArgs,
    /// Read in a file of environment variables.
    #[arg(long)]
    pub env_file: Vec<std::path::PathBuf>,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container host name.
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Set meta data on a container.
    #[arg(short, long)]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels.
    #[arg(long)]
    pub label_file: Vec<std::path::PathBuf>,
    /// Restart policy to apply when a container exits.
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Automatically remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Ulimit options (name=soft[:hard]).
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Size of /dev/shm.
    #[arg(long)]
    pub shm_size: Option<String>,
    /// Mount a tmpfs directory (path[:options]).
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Bind mount a volume (/host:/container[:options]).
    #[arg(short, long)]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container.
    #[arg(long)]
    pub mount: Vec<String>,
    /// Mount volumes from the specified container(s).
    #[arg(long)]
    pub volumes_from: Vec<String>,
    /// Command to run to check health.
    #[arg(long)]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h).
    #[arg(long)]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h).
    #[arg(long)]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy.
    #[arg(long)]
    pub health_retries: Option<u32>,
    /// Start period for the container to initialize before counting retries.
    #[arg(long)]
    pub health_start_period: Option<String>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long)]
    pub no_healthcheck: bool,
    /// Signal to stop the container.
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container.
    #[arg(long)]
    pub stop_timeout: Option<i64>,
    /// Connect a container to a network (none, host, container:NAME).
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// Give extended privileges to this container.
    #[arg(long)]
    pub privileged: bool,
    /// Add Linux capabilities.
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Security options.
    #[arg(long)]
    pub security_opt: Vec<String>,
    /// Mount the container's root filesystem as read only.
    #[arg(long)]
    pub read_only: bool,
    /// Run an init inside the container that forwards signals and reaps
    /// processes.
    #[arg(long)]
    pub init: bool,
    /// Logging driver for the container.
    #[arg(long)]
    pub log_driver: Option<String>,
    /// Log driver options.
    #[arg(long)]
    pub log_opt: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip).
    #[arg(long)]
    pub add_host: Vec<String>,
    /// Pull image before running (always, missing, never).
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Set platform if server is multi-platform capable.
    #[arg(long)]
    pub platform: Option<String>,
    /// The image.
    pub image: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// The resource limits `run`, `create` and `update` take.
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Memory limit.
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap.
    #[arg(long)]
    pub memory_swap: Option<String>,
    /// Number of CPUs.
    #[arg(long)]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited).
    #[arg(long)]
    pub pids_limit: Option<i64>,
}

impl LimitArgs {
    /// Sets the host config fields of the limits given in `host`.
    pub fn apply(&self, host: &mut Value) -> Result<(), String> {
        if let Some(m) = &self.memory {
            host["Memory"] = json!(size("--memory", m)?);
        }
        if let Some(m) = &self.memory_swap {
            host["MemorySwap"] = json!(size("--memory-swap", m)?);
        }
        if let Some(c) = self.cpus {
            host["NanoCpus"] = json!((c * 1e9) as i64);
        }
        if let Some(c) = self.cpu_shares {
            host["CpuShares"] = json!(c);
        }
        if let Some(c) = &self.cpuset_cpus {
            host["CpusetCpus"] = json!(c);
        }
        if let Some(p) = self.pids_limit {
            host["PidsLimit"] = json!(p);
        }
        Ok(())
    }
}

/// `run`'s flags.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run container in background and print container ID.
    #[arg(short, long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long)]
    pub detach_keys: Option<String>,
    #[command(flatten)]
    pub create: CreateArgs,
}

pub use berth_model::time::go_duration;

fn read_lines(path: &std::path::Path) -> Result<Vec<String>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

fn size(flag: &str, v: &str) -> Result<i64, String> {
    if v == "-1" {
        return Ok(-1);
    }
    berth_model::units::parse_bytes(v)
        .map(|n| n as i64)
        .map_err(|_| format!("invalid {flag} value {v:?}: use a size such as 512m or 1g"))
}

/// The create request of `args`.
pub fn create_body(args: &CreateArgs) -> Result<Value, String> {
    let mut env: Vec<String> = Vec::new();
    for f in &args.env_file {
        env.extend(read_lines(f)?);
    }
    for e in &args.process.env {
        // `-e NAME` takes the value from the caller's environment.
        if e.contains('=') {
            env.push(e.clone());
        } else if let Ok(v) = std::env::var(e) {
            env.push(format!("{e}={v}"));
        }
    }
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    let label_lines: Vec<String> = args
        .label_file
        .iter()
        .map(|f| read_lines(f))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .chain(args.label.iter().cloned())
        .collect();
    for l in label_lines {
        let (k, v) = l.split_once('=').unwrap_or((&l, ""));
        labels.insert(k.to_owned(), v.to_owned());
    }
    let (policy, retries) = match args.restart.split_once(':') {
        Some((p, n)) => (
            p.to_owned(),
            n.parse::<i64>()
                .map_err(|_| format!("invalid restart policy {:?}", args.restart))?,
        ),
        None => (args.restart.clone(), 0),
    };
    let mut ulimits = Vec::new();
    for u in &args.ulimit {
        let (name, limits) = u
            .split_once('=')
            .ok_or_else(|| format!("invalid ulimit {u:?}: use name=soft[:hard]"))?;
        let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
        let parse = |s: &str| {
            s.parse::<i64>()
                .map_err(|_| format!("invalid ulimit {u:?}: limits are numbers"))
        };
        ulimits.push(json!({ "Name": name, "Soft": parse(soft)?, "Hard": parse(hard)? }));
    }
    let mut tmpfs = BTreeMap::new();
    for t in &args.tmpfs {
        let (path, opts) = t.split_once(':').unwrap_or((t, ""));
        tmpfs.insert(path.to_owned(), opts.to_owned());
    }
    let mounts = args
        .mount
        .iter()
        .map(|m| super::mount::mount_spec(m))
        .collect::<Result<Vec<_>, _>>()?;
    let mut log_config = BTreeMap::new();
    for o in &args.log_opt {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| format!("invalid log option {o:?}: use key=value"))?;
        log_config.insert(k.to_owned(), v.to_owned());
    }
    let entrypoint = args.entrypoint.as_ref().map(|e| vec![e.clone()]);
    let mut host = json!({
        "Binds": args.volume,
        "NetworkMode": args.network.clone().unwrap_or_else(|| "default".into()),
        "RestartPolicy": { "Name": policy, "MaximumRetryCount": retries },
        "AutoRemove": args.rm,
        "Mounts": mounts,
        "VolumesFrom": args.volumes_from,
        "CapAdd": args.cap_add,
        "CapDrop": args.cap_drop,
        "ExtraHosts": args.add_host,
        "Privileged": args.privileged,
        "ReadonlyRootfs": args.read_only,
        "Init": args.init.then_some(true),
        "SecurityOpt": args.security_opt,
        "Tmpfs": tmpfs,
        "Ulimits": ulimits,
        "LogConfig": { "Type": args.log_driver.clone().unwrap_or_default(), "Config": log_config },
    });
    if let Some(s) = &args.shm_size {
        host["ShmSize"] = json!(size("--shm-size", s)?);
    }
    args.limits.apply(&mut host)?;
    let mut body = json!({
        "Hostname": args.hostname.clone().unwrap_or_default(),
        "User": args.process.user.clone().unwrap_or_default(),
        "AttachStdin": args.process.interactive,
        "AttachStdout": true,
        "AttachStderr": true,
        "Tty": args.process.tty,
        "OpenStdin": args.process.interactive,
        "StdinOnce": args.process.interactive,
        "Env": env,
        "Cmd": if args.command.is_empty() { Value::Null } else { json!(args.command) },
        "Image": args.image,
        "WorkingDir": args.process.workdir.clone().unwrap_or_default(),
        "Entrypoint": entrypoint,
        "Labels": labels,
        "HostConfig": host,
    });
    if let Some(s) = &args.stop_signal {
        body["StopSignal"] = json!(s);
    }
    if args.no_healthcheck {
        body["Healthcheck"] = json!({ "Test": ["NONE"] });
    } else {
        let mut check = serde_json::Map::new();
        if let Some(cmd) = &args.health_cmd {
            check.insert("Test".into(), json!(["CMD-SHELL", cmd]));
        }
        for (key, value) in [
            ("Interval", &args.health_interval),
            ("Timeout", &args.health_timeout),
            ("StartPeriod", &args.health_start_period),
        ] {
            if let Some(v) = value {
                check.insert(key.into(), json!(go_duration(v)?));
            }
        }
        if let Some(r) = args.health_retries {
            check.insert("Retries".into(), json!(r));
        }
        if !check.is_empty() {
            body["Healthcheck"] = Value::Object(check);
        }
    }
    if let Some(t) = args.stop_timeout {
        body["StopTimeout"] = json!(t);
    }
    Ok(body)
}

/// Pulls `image` through the daemon, printing its progress lines.
async fn pull(client: &Client, image: &str, platform: Option<&str>) -> Result<(), Failure> {
    let reference = berth_model::ImageRef::parse(image).map_err(|e| e.to_string())?;
    let (repo, tag) = berth_engine::images::repository_and_tag(&reference);
    let mut path = format!("/images/create?fromImage={}&tag={}", q(&repo), q(&tag));
    if let Some(p) = platform {
        path.push_str(&format!("&platform={}", q(p)));
    }
    let mut body = client.stream(Method::POST, &path, None).await?;
    let mut buf = Vec::new();
    let mut error = None;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|e| e.to_string())?.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let Ok(v) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            if let Some(e) = v["error"].as_str() {
                error = Some(e.to_owned());
            } else if let Some(s) = v["status"].as_str() {
                match v["id"].as_str() {
                    Some(id) if v["progressDetail"].get("current").is_none() => {
                        eprintln!("{id}: {s}")
                    }
                    None => eprintln!("{s}"),
                    _ => {}
                }
            }
        }
    }
    match error {
        Some(e) => Err(Failure {
            code: EXIT_ERROR,
            message: format!("Error response from daemon: {e}"),
        }),
        None => Ok(()),
    }
}

/// Creates the container, pulling its image first when `--pull` says so.
async fn create(client: &Client, args: &CreateArgs) -> Result<String, Failure> {
    let body = create_body(args)?;
    let mut query = Vec::new();
    if let Some(n) = &args.name {
        query.push(format!("name={}", q(n)));
    }
    if let Some(p) = &args.platform {
        query.push(format!("platform={}", q(p)));
    }
    let mut path = String::from("/containers/create");
    if !query.is_empty() {
        path.push('?');
        path.push_str(&query.join("&"));
    }
    if args.pull == "always" {
        pull(client, &args.image, args.platform.as_deref()).await?;
    }
    let created = match client.json(Method::POST, &path, Some(body.clone())).await {
        Err(ClientError::Api {
            status: 404,
            message,
        }) if message.starts_with("No such image") && args.pull == "missing" => {
            eprintln!("Unable to find image '{}' locally", args.image);
            pull(client, &args.image, args.platform.as_deref()).await?;
            client.json(Method::POST, &path, Some(body)).await?
        }
        other => other?,
    };
    Ok(created.1["Id"].as_str().unwrap_or_default().to_owned())
}

pub async fn create_command(client: &Client, args: CreateArgs) -> Result<ExitCode, Failure> {
    println!("{}", create(client, &args).await?);
    Ok(ExitCode::SUCCESS)
}

/// The exit code Docker's CLI gives a container that could not start.
fn start_failure(e: ClientError) -> Failure {
    let message = e.to_string();
    let code = match berth_engine::containers::start_failure_code(&message) {
        128 => EXIT_ERROR,
        c => c as u8,
    };
    Failure {
        code,
        message: format!("berth: Error response from daemon: {message}"),
    }
}

/// The terminal in raw mode for as long as this lives.
struct RawTerminal(Option<nix::sys::termios::Termios>);

impl RawTerminal {
    fn enter(tty: bool) -> RawTerminal {
        let stdin = std::io::stdin();
        if !tty || !stdin.is_terminal() {
            return RawTerminal(None);
        }
        let Ok(saved) = nix::sys::termios::tcgetattr(&stdin) else {
            return RawTerminal(None);
        };
        let mut raw = saved.clone();
        nix::sys::termios::cfmakeraw(&mut raw);
        let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &raw);
        RawTerminal(Some(saved))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                saved,
            );
        }
    }
}

/// Keeps the container's (or exec's) terminal the size of ours.
fn follow_size(client: &Client, path: String) -> Option<tokio::task::JoinHandle<()>> {
    let size = || {
        let ws = nix::pty::Winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let mut ws = ws;
        // SAFETY: TIOCGWINSZ fills a winsize.
        let r = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) };
        (r == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
    };
    size()?;
    let client = client.clone();
    Some(tokio::spawn(async move {
        let mut winch =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok();
        loop {
            if let Some((h, w)) = size() {
                let _ = client
                    .json(Method::POST, &format!("{path}?h={h}&w={w}"), None)
                    .await;
            }
            match &mut winch {
                Some(s) => {
                    if s.recv().await.is_none() {
                        return;
                    }
                }
                None => return,
            }
        }
    }))
}

/// Carries stdio over an upgraded connection until the output ends: our
/// stdin to it (when `stdin`), its output to our stdout and stderr.
/// Returns whether the user typed the detach keys (the daemon detaches
/// too; only this side knows it was asked to).
async fn carry(io: Upgraded, tty: bool, stdin: bool, detach_keys: Option<&str>) -> bool {
    let (mut r, mut w) = tokio::io::split(io);
    let keys = match detach_keys {
        Some(k) => berth_engine::containers::parse_detach_keys(k).unwrap_or_default(),
        None => vec![16, 17],
    };
    let detached = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = detached.clone();
    let input = stdin.then(|| {
        // A thread of its own, not the runtime's blocking pool: a read
        // blocked on a terminal must not keep the process from exiting.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
        std::thread::spawn(move || {
            use std::io::Read;
            let mut stdin = std::io::stdin().lock();
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.blocking_send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        tokio::spawn(async move {
            let mut scanner = berth_engine::containers::DetachScanner::new(keys.clone());
            while let Some(chunk) = rx.recv().await {
                if scanner.scan(&chunk).1 {
                    seen.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                if w.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            let _ = w.shutdown().await;
        })
    });
    let mut buf = vec![0u8; 32 * 1024];
    let mut pending = Vec::new();
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tty {
                    use std::io::Write;
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&buf[..n]);
                    let _ = out.flush();
                } else {
                    pending.extend_from_slice(&buf[..n]);
                    demux(&mut pending);
                }
            }
        }
    }
    if let Some(t) = input {
        t.abort();
    }
    detached.load(std::sync::atomic::Ordering::SeqCst)
}

fn attach_path(id: &str, stdin: bool, detach_keys: Option<&str>) -> String {
    let mut path = format!(
        "/containers/{}/attach?stream=1&stdout=1&stderr=1&stdin={}",
        q(id),
        u8::from(stdin)
    );
    if let Some(k) = detach_keys {
        path.push_str(&format!("&detachKeys={}", q(k)));
    }
    path
}

pub async fn run(client: &Client, args: RunArgs) -> Result<ExitCode, Failure> {
    let id = create(client, &args.create).await?;
    if args.detach {
        client
            .json(Method::POST, &format!("/containers/{id}/start"), None)
            .await
            .map_err(start_failure)?;
        println!("{id}");
        return Ok(ExitCode::SUCCESS);
    }
    let tty = args.create.process.tty;
    let stdin = args.create.process.interactive;
    // Attach and wait before the start, so no output and no exit is missed.
    let io = client
        .upgrade(
            Method::POST,
            &attach_path(&id, stdin, args.detach_keys.as_deref()),
            None,
        )
        .await?;
    let condition = if args.create.rm {
        "removed"
    } else {
        "next-exit"
    };
    let wait = client
        .send(
            Method::POST,
            &format!("/containers/{id}/wait?condition={condition}"),
            None,
            false,
        )
        .await?;
    let raw = RawTerminal::enter(tty);
    if let Err(e) = client
        .json(Method::POST, &format!("/containers/{id}/start"), None)
        .await
    {
        drop(raw);
        return Err(start_failure(e));
    }
    let resize = if tty {
        follow_size(client, format!("/containers/{id}/resize"))
    } else {
        None
    };
    let detached = carry(io, tty, stdin, args.detach_keys.as_deref()).await;
    drop(raw);
    if let Some(r) = resize {
        r.abort();
    }
    // Detached (ctrl-p ctrl-q): the container runs on.
    if detached {
        return Ok(ExitCode::SUCCESS);
    }
    let body = wait
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let status: Value = serde_json::from_slice(&body).unwrap_or_default();
    let code = status["StatusCode"].as_i64().unwrap_or(EXIT_ERROR as i64);
    Ok(ExitCode::from(code as u8))
}

pub async fn start(client: &Client, args: StartArgs) -> Result<ExitCode, Failure> {
    if !args.attach && !args.interactive {
        return super::each(&args.containers, |n| {
            let path = format!("/containers/{}/start", q(&n));
            async move { client.json(Method::POST, &path, None).await.map(|_| n) }
        })
        .await;
    }
    if args.containers.len() > 1 {
        return Err("you cannot start and attach multiple containers at once"
            .to_owned()
            .into());
    }
    let name = &args.containers[0];
    let info = crate::container::container_json(client, name).await?;
    let id = info["Id"].as_str().unwrap_or_default().to_owned();
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let io = client
        .upgrade(
            Method::POST,
            &attach_path(&id, args.interactive, args.detach_keys.as_deref()),
            None,
        )
        .await?;
    let wait = client
        .send(
            Method::POST,
            &format!("/containers/{id}/wait?condition=next-exit"),
            None,
            false,
        )
        .await?;
    let raw = RawTerminal::enter(tty);
    client
        .json(Method::POST, &format!("/containers/{id}/start"), None)
        .await
        .map_err(start_failure)?;
    if carry(io, tty, args.interactive, args.detach_keys.as_deref()).await {
        return Ok(ExitCode::SUCCESS);
    }
    drop(raw);
    let body = wait
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let status: Value = serde_json::from_slice(&body).unwrap_or_default();
    Ok(ExitCode::from(
        status["StatusCode"].as_i64().unwrap_or(0) as u8
    ))
}

pub async fn attach_command(client: &Client, args: AttachArgs) -> Result<ExitCode, Failure> {
    let info = crate::container::container_json(client, &args.container).await?;
    if info["State"]["Running"].as_bool() != Some(true) {
        return Err("You cannot attach to a stopped container, start it first"
            .to_owned()
            .into());
    }
    let id = info["Id"].as_str().unwrap_or_default().to_owned();
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = !args.no_stdin && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let io = client
        .upgrade(
            Method::POST,
            &attach_path(&id, stdin, args.detach_keys.as_deref()),
            None,
        )
        .await?;
    let raw = RawTerminal::enter(tty);
    let resize = if tty {
        follow_size(client, format!("/containers/{id}/resize"))
    } else {
        None
    };
    let detached = carry(io, tty, stdin, args.detach_keys.as_deref()).await;
    drop(raw);
    if let Some(r) = resize {
        r.abort();
    }
    if detached {
        // As the docker CLI ends an attach the user detached from.
        return Err(Failure {
            code: 1,
            message: "read escape sequence".into(),
        });
    }
    // The exit is recorded just after the output ends.
    let wait = format!("/containers/{id}/wait");
    let _ = client.json(Method::POST, &wait, None).await;
    let (_, info) = client
        .json(Method::GET, &format!("/containers/{id}/json"), None)
        .await?;
    if info["State"]["Running"].as_bool() == Some(true) {
        return Ok(ExitCode::SUCCESS);
    }
    Ok(ExitCode::from(
        info["State"]["ExitCode"].as_i64().unwrap_or(0) as u8,
    ))
}

pub async fn exec(client: &Client, args: ExecArgs) -> Result<ExitCode, Failure> {
    let body = json!({
        "AttachStdin": args.process.interactive && !args.detach,
        "AttachStdout": !args.detach,
        "AttachStderr": !args.detach,
        "Tty": args.process.tty,
        "Cmd": args.command,
        "Env": args.process.env,
        "WorkingDir": args.process.workdir.clone().unwrap_or_default(),
        "User": args.process.user.clone().unwrap_or_default(),
        "Privileged": args.privileged,
        "DetachKeys": args.detach_keys.clone().unwrap_or_default(),
    });
    let (_, created) = client
        .json(
            Method::POST,
            &format!("/containers/{}/exec", q(&args.container)),
            Some(body),
        )
        .await?;
    let id = created["Id"].as_str().unwrap_or_default().to_owned();
    let start = json!({ "Detach": args.detach, "Tty": args.process.tty });
    if args.detach {
        client
            .json(Method::POST, &format!("/exec/{id}/start"), Some(start))
            .await?;
        return Ok(ExitCode::SUCCESS);
    }
    let io = client
        .upgrade(Method::POST, &format!("/exec/{id}/start"), Some(start))
        .await?;
    let raw = RawTerminal::enter(args.process.tty);
    let resize = if args.process.tty {
        follow_size(client, format!("/exec/{id}/resize"))
    } else {
        None
    };
    carry(
        io,
        args.process.tty,
        args.process.interactive,
        args.detach_keys.as_deref(),
    )
    .await;
    drop(raw);
    if let Some(r) = resize {
        r.abort();
    }
    let (_, info) = client
        .json(Method::GET, &format!("/exec/{id}/json"), None)
        .await?;
    Ok(ExitCode::from(info["ExitCode"].as_i64().unwrap_or(0) as u8))
}
