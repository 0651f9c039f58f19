//! `top`, `stats`, `diff`, `export`, `cp`, `update` and `events`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use berth_api::client::{Client, ClientError};
use clap::Args;
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::{Value, json};

use super::{Failure, filters_json, q};
use crate::format::Format;

#[derive(Debug, Args)]
pub struct TopArgs {
    /// The container.
    pub container: String,
    /// `ps` options (default -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result.
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output using a custom template.
    #[arg(long)]
    pub format: Option<String>,
    /// Containers (default: all running).
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct OneArgs {
    /// The container.
    pub container: String,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// The container.
    pub container: String,
}

#[derive(Debug, Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information); always on.
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH (not supported: links are copied as links).
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// CONTAINER:SRC_PATH or a host path (`-`: a tar on STDIN).
    pub src: String,
    /// CONTAINER:DEST_PATH or a host path (`-`: a tar to STDOUT).
    pub dest: String,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub limits: super::run::LimitArgs,
    /// Restart policy to apply when a container exits.
    #[arg(long)]
    pub restart: Option<String>,
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>").
    #[arg(short, long)]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image.
    #[arg(short, long)]
    pub change: Vec<String>,
    /// Commit message.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Pause container during commit.
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub pause: bool,
    /// The container.
    pub container: String,
    /// REPOSITORY[:TAG].
    pub reference: Option<String>,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Show all events created since timestamp.
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp.
    #[arg(long)]
    pub until: Option<String>,
    /// Filter output based on conditions provided.
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a custom template.
    #[arg(long)]
    pub format: Option<String>,
}

pub async fn top(client: &Client, args: TopArgs) -> Result<ExitCode, Failure> {
    let mut path = format!("/containers/{}/top", q(&args.container));
    if !args.ps_args.is_empty() {
        path.push_str(&format!("?ps_args={}", q(&args.ps_args.join(" "))));
    }
    let (_, v) = client.json(Method::GET, &path, None).await?;
    let mut cells: Vec<Vec<String>> = vec![
        v["Titles"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| t.as_str().unwrap_or_default().to_owned())
            .collect(),
    ];
    for p in v["Processes"].as_array().into_iter().flatten() {
        cells.push(
            p.as_array()
                .into_iter()
                .flatten()
                .map(|f| f.as_str().unwrap_or_default().to_owned())
                .collect(),
        );
    }
    print!("{}", crate::table::render(&cells, 10, 3));
    Ok(ExitCode::SUCCESS)
}

pub async fn diff(client: &Client, args: OneArgs) -> Result<ExitCode, Failure> {
    let path = format!("/containers/{}/changes", q(&args.container));
    let (_, v) = client.json(Method::GET, &path, None).await?;
    for c in v.as_array().into_iter().flatten() {
        let kind = match c["Kind"].as_i64() {
            Some(1) => "A",
            Some(2) => "D",
            _ => "C",
        };
        println!("{kind} {}", c["Path"].as_str().unwrap_or_default());
    }
    Ok(ExitCode::SUCCESS)
}

/// Copies a streamed body to `out`.
async fn body_to(mut body: hyper::body::Incoming, out: &mut dyn Write) -> Result<(), String> {
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.map_err(|e| e.to_string())?.into_data() {
            out.write_all(&data).map_err(|e| e.to_string())?;
        }
    }
    out.flush().map_err(|e| e.to_string())
}

pub async fn export(client: &Client, args: ExportArgs) -> Result<ExitCode, Failure> {
    let path = format!("/containers/{}/export", q(&args.container));
    let body = client.stream(Method::GET, &path, None).await?;
    match &args.output {
        Some(p) => {
            let mut f =
                std::fs::File::create(p).map_err(|e| format!("create {}: {e}", p.display()))?;
            body_to(body, &mut f).await?;
        }
        None => body_to(body, &mut std::io::stdout().lock()).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `CONTAINER:PATH`, or none for a host path.
fn split_container(s: &str) -> Option<(&str, &str)> {
    if s.starts_with('/') || s.starts_with('.') {
        return None;
    }
    s.split_once(':').filter(|(c, _)| !c.is_empty())
}

pub async fn cp(client: &Client, args: CpArgs) -> Result<ExitCode, Failure> {
    match (split_container(&args.src), split_container(&args.dest)) {
        (Some((c, src)), None) => copy_out(client, c, src, &args.dest).await,
        (None, Some((c, dest))) => copy_in(client, &args.src, c, dest).await,
        (Some(_), Some(_)) => Err("copying between containers is not supported"
            .to_owned()
            .into()),
        (None, None) => Err("must specify at least one container source"
            .to_owned()
            .into()),
    }
}

async fn copy_out(client: &Client, c: &str, src: &str, dest: &str) -> Result<ExitCode, Failure> {
    let path = format!("/containers/{}/archive?path={}", q(c), q(src));
    let body = client.stream(Method::GET, &path, None).await?;
    if dest == "-" {
        body_to(body, &mut std::io::stdout().lock()).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut tar_bytes = Vec::new();
    body_to(body, &mut tar_bytes).await?;
    let dest = Path::new(dest);
    let name = Path::new(src)
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let (into, rename) = if dest.is_dir() {
        (dest.to_owned(), None)
    } else {
        let parent = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = parent.join(format!(".berth-cp-{}", std::process::id()));
        (tmp, Some(dest.to_owned()))
    };
    std::fs::create_dir_all(&into).map_err(|e| format!("create {}: {e}", into.display()))?;
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    archive.set_preserve_permissions(true);
    let unpacked = archive
        .unpack(&into)
        .map_err(|e| format!("extract into {}: {e}", into.display()));
    if let Some(to) = rename {
        let result = unpacked.and_then(|()| {
            std::fs::rename(into.join(&name), &to)
                .map_err(|e| format!("create {}: {e}", to.display()))
        });
        let _ = std::fs::remove_dir_all(&into);
        result?;
    } else {
        unpacked?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn copy_in(client: &Client, src: &str, c: &str, dest: &str) -> Result<ExitCode, Failure> {
    // Into a directory that exists: keep the source's name; else the last
    // component of DEST is the new name, in its parent.
    let stat = client
        .send(
            Method::HEAD,
            &format!("/containers/{}/archive?path={}", q(c), q(dest)),
            None,
            false,
        )
        .await?;
    let is_dir = stat
        .headers()
        .get("x-docker-container-path-stat")
        .and_then(|h| {
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, h.as_bytes()).ok()
        })
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|s| s["mode"].as_u64())
        .is_some_and(|m| m & (1 << 31) != 0);
    let tar_bytes = if src == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).map_err(|e| e.to_string())?;
        b
    } else {
        let source = Path::new(src);
        let name = if is_dir || dest.ends_with('/') {
            source
                .file_name()
                .map(PathBuf::from)
                .ok_or_else(|| format!("cannot copy {src}: it has no name"))?
        } else {
            PathBuf::from(Path::new(dest).file_name().unwrap_or_default())
        };
        let mut builder = tar::Builder::new(Vec::new());
        builder.follow_symlinks(false);
        let meta = std::fs::symlink_metadata(source).map_err(|e| format!("stat {src}: {e}"))?;
        let added = if meta.is_dir() {
            builder.append_dir_all(&name, source)
        } else {
            builder.append_path_with_name(source, &name)
        };
        added.map_err(|e| format!("archive {src}: {e}"))?;
        builder.into_inner().map_err(|e| e.to_string())?
    };
    let target = if is_dir || src == "-" {
        dest.to_owned()
    } else {
        Path::new(dest)
            .parent()
            .map(|p| p.display().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into())
    };
    let path = format!("/containers/{}/archive?path={}", q(c), q(&target));
    put_tar(client, &path, tar_bytes).await?;
    Ok(ExitCode::SUCCESS)
}

async fn put_tar(client: &Client, path: &str, tar_bytes: Vec<u8>) -> Result<(), ClientError> {
    let response = client.send_bytes(Method::PUT, path, tar_bytes).await?;
    Client::check_status(response).await.map(drop)
}

pub async fn update(client: &Client, args: UpdateArgs) -> Result<ExitCode, Failure> {
    let mut body = json!({});
    args.limits.apply(&mut body)?;
    if let Some(r) = &args.restart {
        let (name, n) = r.split_once(':').unwrap_or((r, "0"));
        let n: i64 = n
            .parse()
            .map_err(|_| format!("invalid restart policy {r:?}"))?;
        body["RestartPolicy"] = json!({ "Name": name, "MaximumRetryCount": n });
    }
    super::each(&args.containers, |n| {
        let path = format!("/containers/{}/update", q(&n));
        let body = body.clone();
        async move {
            client
                .json(Method::POST, &path, Some(body))
                .await
                .map(|_| n)
        }
    })
    .await
}

fn human(bytes: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.4}")
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_owned()
        + units[i]
}

/// One row of `stats` from a sample with its previous CPU numbers.
fn stats_row(s: &Value, no_trunc: bool) -> Value {
    let cpu = |k: &str| s[k]["cpu_usage"]["total_usage"].as_f64().unwrap_or(0.0);
    let sys = |k: &str| s[k]["system_cpu_usage"].as_f64().unwrap_or(0.0);
    let (cpu_delta, sys_delta) = (
        cpu("cpu_stats") - cpu("precpu_stats"),
        sys("cpu_stats") - sys("precpu_stats"),
    );
    let cpus = s["cpu_stats"]["online_cpus"].as_f64().unwrap_or(1.0);
    let cpu_pct = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * cpus * 100.0
    } else {
        0.0
    };
    let mem = &s["memory_stats"];
    let cache = mem["stats"]["total_inactive_file"]
        .as_f64()
        .or_else(|| mem["stats"]["inactive_file"].as_f64())
        .unwrap_or(0.0);
    let used = (mem["usage"].as_f64().unwrap_or(0.0) - cache).max(0.0);
    let limit = mem["limit"].as_f64().unwrap_or(0.0);
    let mem_pct = if limit > 0.0 {
        used / limit * 100.0
    } else {
        0.0
    };
    let id = s["id"].as_str().unwrap_or_default();
    let blkio = |op: &str| -> f64 {
        s["blkio_stats"]["io_service_bytes_recursive"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["op"].as_str().is_some_and(|o| o.eq_ignore_ascii_case(op)))
            .filter_map(|e| e["value"].as_f64())
            .sum()
    };
    let (blk_read, blk_write) = (blkio("read"), blkio("write"));
    json!({
        "Container": id,
        "ID": if no_trunc { id.to_owned() } else { id.chars().take(12).collect() },
        "Name": s["name"].as_str().unwrap_or_default().trim_start_matches('/'),
        "CPUPerc": format!("{cpu_pct:.2}%"),
        "MemUsage": format!("{} / {}", human(used), human(limit)),
        "MemPerc": format!("{mem_pct:.2}%"),
        "NetIO": "0B / 0B",
        "BlockIO": format!("{} / {}", human(blk_read), human(blk_write)),
        "PIDs": s["pids_stats"]["current"].as_u64().unwrap_or(0).to_string(),
    })
}

pub async fn stats(client: &Client, args: StatsArgs) -> Result<ExitCode, Failure> {
    let names: Vec<String> = if args.containers.is_empty() {
        let (_, list) = client
            .json(
                Method::GET,
                &format!("/containers/json?all={}", args.all),
                None,
            )
            .await?;
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["Id"].as_str().map(str::to_owned))
            .collect()
    } else {
        args.containers.clone()
    };
    let format = Format::parse(args.format.as_deref())?;
    loop {
        let mut rows = Vec::new();
        for n in &names {
            let path = format!("/containers/{}/stats?stream=false", q(n));
            let (_, s) = client.json(Method::GET, &path, None).await?;
            rows.push(stats_row(&s, args.no_trunc));
        }
        let out = crate::format::print_columns(
            &format,
            &rows,
            &[
                ("ID", "CONTAINER ID"),
                ("Name", "NAME"),
                ("CPUPerc", "CPU %"),
                ("MemUsage", "MEM USAGE / LIMIT"),
                ("MemPerc", "MEM %"),
                ("NetIO", "NET I/O"),
                ("BlockIO", "BLOCK I/O"),
                ("PIDs", "PIDS"),
            ],
        )?;
        if args.no_stream {
            print!("{out}");
            return Ok(ExitCode::SUCCESS);
        }
        // Redraw in place, as Docker's does.
        print!("\x1b[2J\x1b[H{out}");
        let _ = std::io::stdout().flush();
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

pub async fn events(client: &Client, args: EventsArgs) -> Result<ExitCode, Failure> {
    let mut path = format!("/events?filters={}", q(&filters_json(&args.filter)?));
    for (k, v) in [("since", &args.since), ("until", &args.until)] {
        if let Some(v) = v {
            path.push_str(&format!("&{k}={}", q(&super::relative_time(v)?)));
        }
    }
    let format = match args.format.as_deref() {
        None => None,
        Some(f) => Some(Format::parse(Some(f))?),
    };
    let mut body = client.stream(Method::GET, &path, None).await?;
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|e| e.to_string())?.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let Ok(e) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            match &format {
                Some(f) => print!("{}", f.print(std::slice::from_ref(&e), String::new, &[])?),
                None => {
                    let nanos = e["timeNano"].as_i64().unwrap_or(0);
                    let time = berth_model::time::rfc3339_nanos(
                        nanos / 1_000_000_000,
                        (nanos % 1_000_000_000) as u32,
                    );
                    let attrs: Vec<String> = e["Actor"]["Attributes"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect();
                    println!(
                        "{time} {} {} {} ({})",
                        e["Type"].as_str().unwrap_or_default(),
                        e["Action"].as_str().unwrap_or_default(),
                        e["Actor"]["ID"].as_str().unwrap_or_default(),
                        attrs.join(", ")
                    );
                }
            }
            let _ = std::io::stdout().flush();
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn commit(client: &Client, args: CommitArgs) -> Result<ExitCode, Failure> {
    let mut path = format!(
        "/commit?container={}&pause={}",
        q(&args.container),
        args.pause
    );
    if let Some(r) = &args.reference {
        let parsed = berth_model::ImageRef::parse(r).map_err(|e| e.to_string())?;
        let (repo, tag) = berth_engine::images::repository_and_tag(&parsed);
        path.push_str(&format!("&repo={}&tag={}", q(&repo), q(&tag)));
    }
    for (k, v) in [("comment", &args.message), ("author", &args.author)] {
        if let Some(v) = v {
            path.push_str(&format!("&{k}={}", q(v)));
        }
    }
    for c in &args.change {
        path.push_str(&format!("&changes={}", q(c)));
    }
    let (_, v) = client.json(Method::POST, &path, None).await?;
    println!("{}", v["Id"].as_str().unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}
