//! `berth version`, `info`, `system df|prune|info|events` and `port`:
//! clients of the daemon's API, printed as Docker's CLI prints them.

use std::process::ExitCode;

use berth_api::client::Client;
use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::{Value, json};

use crate::container::{EventsArgs, Failure, OneArgs, Target, connect, filters_json, q};
use crate::format::Format;
use crate::image::progress::human_size;

#[derive(Debug, Args)]
pub struct FormatArgs {
    /// Format output using a custom template.
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Prune anonymous volumes.
    #[arg(long)]
    pub volumes: bool,
    /// Provide filter values (e.g. "label=<key>=<value>").
    #[arg(long)]
    pub filter: Vec<String>,
}

/// `builder prune`'s options.
#[derive(Debug, Args)]
pub struct BuilderPruneArgs {
    /// Remove all build cache, not just what no image uses.
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

/// `berth builder`.
#[derive(Debug, Subcommand)]
pub enum BuilderCommand {
    /// Remove build cache.
    Prune(BuilderPruneArgs),
}

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show docker disk usage.
    Df(FormatArgs),
    /// Remove unused data.
    Prune(PruneArgs),
    /// Display system-wide information.
    Info(FormatArgs),
    /// Get real time events from the server.
    Events(EventsArgs),
}

/// The commands of this module.
#[derive(Debug)]
pub enum Command {
    Version(FormatArgs),
    Info(FormatArgs),
    System(SystemCommand),
    Port(OneArgs),
    Builder(BuilderCommand),
}

/// `POST /build/prune`: prints what went, returns the bytes freed.
async fn prune_build_cache(client: &Client, all: bool) -> Result<u64, Failure> {
    let (_, b) = client
        .json(
            Method::POST,
            &format!("/build/prune?all={}", if all { "1" } else { "0" }),
            None,
        )
        .await?;
    let ids: Vec<&str> = b["CachesDeleted"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !ids.is_empty() {
        println!("Deleted build cache objects:\n{}\n", ids.join("\n"));
    }
    Ok(b["SpaceReclaimed"].as_u64().unwrap_or(0))
}

pub fn main(target: Target, command: Command) -> ExitCode {
    if let Command::System(SystemCommand::Events(args)) = command {
        return crate::container::events_main(target, args);
    }
    let result = crate::container::block_on_client(async move {
        let client = connect(&target).await?;
        run(&client, command).await
    });
    crate::container::finish(result)
}

fn print_formatted(v: &Value, format: &str) -> Result<(), Failure> {
    print!(
        "{}",
        Format::parse(Some(format))?.print(std::slice::from_ref(v), String::new, &[])?
    );
    Ok(())
}

async fn run(client: &Client, command: Command) -> Result<ExitCode, Failure> {
    match command {
        Command::Version(a) => {
            let (_, server) = client.json(Method::GET, "/version", None).await?;
            let arch = match std::env::consts::ARCH {
                "x86_64" => "amd64",
                "aarch64" => "arm64",
                other => other,
            };
            let v = json!({
                "Client": {
                    "Version": env!("CARGO_PKG_VERSION"),
                    "ApiVersion": berth_api::MAX_API_VERSION.to_string(),
                    "Os": "linux", "Arch": arch,
                },
                "Server": server,
            });
            if let Some(f) = &a.format {
                print_formatted(&v, f)?;
                return Ok(ExitCode::SUCCESS);
            }
            let s = &v["Server"];
            let t = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            println!("Client: berth");
            println!(" Version:           {}", env!("CARGO_PKG_VERSION"));
            println!(" API version:       {}", berth_api::MAX_API_VERSION);
            println!(" OS/Arch:           linux/{arch}");
            println!();
            println!("Server: berth");
            println!(" Engine:");
            println!("  Version:          {}", t(&s["Version"]));
            println!(
                "  API version:      {} (minimum version {})",
                t(&s["ApiVersion"]),
                t(&s["MinAPIVersion"])
            );
            println!("  OS/Arch:          {}/{}", t(&s["Os"]), t(&s["Arch"]));
            println!("  Kernel Version:   {}", t(&s["KernelVersion"]));
            Ok(ExitCode::SUCCESS)
        }
        Command::Info(a) | Command::System(SystemCommand::Info(a)) => {
            let (_, i) = client.json(Method::GET, "/info", None).await?;
            if let Some(f) = &a.format {
                print_formatted(&i, f)?;
                return Ok(ExitCode::SUCCESS);
            }
            let t = |k: &str| match &i[k] {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            println!("Server:");
            println!(" Containers: {}", t("Containers"));
            println!("  Running: {}", t("ContainersRunning"));
            println!("  Paused: {}", t("ContainersPaused"));
            println!("  Stopped: {}", t("ContainersStopped"));
            println!(" Images: {}", t("Images"));
            println!(" Server Version: {}", t("ServerVersion"));
            println!(" Storage Driver: {}", t("Driver"));
            println!(" Logging Driver: {}", t("LoggingDriver"));
            println!(" Cgroup Driver: {}", t("CgroupDriver"));
            println!(" Cgroup Version: {}", t("CgroupVersion"));
            println!(" Kernel Version: {}", t("KernelVersion"));
            println!(" Operating System: {}", t("OperatingSystem"));
            println!(" Architecture: {}", t("Architecture"));
            println!(" CPUs: {}", t("NCPU"));
            println!(
                " Total Memory: {}",
                human_size(i["MemTotal"].as_u64().unwrap_or(0))
            );
            println!(" Name: {}", t("Name"));
            println!(" ID: {}", t("ID"));
            println!(" Docker Root Dir: {}", t("DockerRootDir"));
            Ok(ExitCode::SUCCESS)
        }
        Command::System(SystemCommand::Df(a)) => {
            let (_, df) = client.json(Method::GET, "/system/df", None).await?;
            let list = |k: &str| df[k].as_array().cloned().unwrap_or_default();
            let (images, containers, volumes) =
                (list("Images"), list("Containers"), list("Volumes"));
            let size = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
            let image_total: u64 = images.iter().map(|i| size(i, "Size")).sum();
            let image_active: Vec<&Value> = images
                .iter()
                .filter(|i| i["Containers"].as_u64().unwrap_or(0) > 0)
                .collect();
            let image_used: u64 = image_active.iter().map(|i| size(i, "Size")).sum();
            let c_total: u64 = containers.iter().map(|c| size(c, "SizeRw")).sum();
            let c_running = containers
                .iter()
                .filter(|c| c["State"] == "running")
                .count();
            let c_used: u64 = containers
                .iter()
                .filter(|c| c["State"] == "running")
                .map(|c| size(c, "SizeRw"))
                .sum();
            let v_size = |v: &Value| v["UsageData"]["Size"].as_u64().unwrap_or(0);
            let v_total: u64 = volumes.iter().map(v_size).sum();
            let v_active: Vec<&Value> = volumes
                .iter()
                .filter(|v| v["UsageData"]["RefCount"].as_u64().unwrap_or(0) > 0)
                .collect();
            let v_used: u64 = v_active.iter().map(|v| v_size(v)).sum();
            let cache = list("BuildCache");
            let cache_total: u64 = cache.iter().map(|c| size(c, "Size")).sum();
            let cache_reclaimable: u64 = cache
                .iter()
                .filter(|c| c["Shared"] != true)
                .map(|c| size(c, "Size"))
                .sum();
            let pct = |part: u64, total: u64| match (part * 100).checked_div(total) {
                None => "0B".to_owned(),
                Some(p) => format!("{} ({p}%)", human_size(part)),
            };
            let rows = vec![
                json!({ "Type": "Images", "TotalCount": images.len(), "Active": image_active.len(),
                        "Size": human_size(image_total), "Reclaimable": pct(image_total - image_used, image_total) }),
                json!({ "Type": "Containers", "TotalCount": containers.len(), "Active": c_running,
                        "Size": human_size(c_total), "Reclaimable": pct(c_total - c_used, c_total) }),
                json!({ "Type": "Local Volumes", "TotalCount": volumes.len(), "Active": v_active.len(),
                        "Size": human_size(v_total), "Reclaimable": pct(v_total - v_used, v_total) }),
                json!({ "Type": "Build Cache", "TotalCount": cache.len(), "Active": 0,
                        "Size": human_size(cache_total), "Reclaimable": human_size(cache_reclaimable) }),
            ];
            let out = crate::format::print_columns(
                &Format::parse(a.format.as_deref())?,
                &rows,
                &[
                    ("Type", "TYPE"),
                    ("TotalCount", "TOTAL"),
                    ("Active", "ACTIVE"),
                    ("Size", "SIZE"),
                    ("Reclaimable", "RECLAIMABLE"),
                ],
            )?;
            print!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        Command::System(SystemCommand::Prune(a)) => {
            let mut warning = String::from(
                "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n",
            );
            if a.volumes {
                warning.push_str("  - all anonymous volumes not used by at least one container\n");
            }
            warning.push_str(if a.all {
                "  - all images without at least one container associated to them\n  - all build cache\n"
            } else {
                "  - all dangling images\n  - unused build cache\n"
            });
            if !a.force && !crate::confirm(&warning) {
                return Ok(ExitCode::SUCCESS);
            }
            let filters = q(&filters_json(&a.filter)?);
            let (_, c) = client
                .json(
                    Method::POST,
                    &format!("/containers/prune?filters={filters}"),
                    None,
                )
                .await?;
            let mut reclaimed = c["SpaceReclaimed"].as_u64().unwrap_or(0);
            let deleted: Vec<String> = c["ContainersDeleted"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            if !deleted.is_empty() {
                println!("Deleted Containers:\n{}\n", deleted.join("\n"));
            }
            if a.volumes {
                let (_, v) = client
                    .json(
                        Method::POST,
                        &format!("/volumes/prune?filters={filters}"),
                        None,
                    )
                    .await?;
                reclaimed += v["SpaceReclaimed"].as_u64().unwrap_or(0);
                let names: Vec<&str> = v["VolumesDeleted"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                if !names.is_empty() {
                    println!("Deleted Volumes:\n{}\n", names.join("\n"));
                }
            }
            let mut image_filters = a.filter.clone();
            image_filters.push(format!("dangling={}", !a.all));
            let path = format!(
                "/images/prune?filters={}",
                q(&filters_json(&image_filters)?)
            );
            let (_, i) = client.json(Method::POST, &path, None).await?;
            reclaimed += i["SpaceReclaimed"].as_u64().unwrap_or(0);
            let gone: Vec<String> = i["ImagesDeleted"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| match (e["Untagged"].as_str(), e["Deleted"].as_str()) {
                    (Some(u), _) => format!("untagged: {u}"),
                    (_, Some(d)) => format!("deleted: {d}"),
                    _ => String::new(),
                })
                .collect();
            if !gone.is_empty() {
                println!("Deleted Images:\n{}\n", gone.join("\n"));
            }
            reclaimed += prune_build_cache(client, a.all).await?;
            println!("Total reclaimed space: {}", human_size(reclaimed));
            Ok(ExitCode::SUCCESS)
        }
        Command::System(SystemCommand::Events(_)) => unreachable!("handled in main"),
        Command::Builder(BuilderCommand::Prune(a)) => {
            let warning = if a.all {
                "WARNING! This will remove all build cache."
            } else {
                "WARNING! This will remove all dangling build cache."
            };
            if !a.force && !crate::confirm(warning) {
                return Ok(ExitCode::SUCCESS);
            }
            let freed = prune_build_cache(client, a.all).await?;
            println!("Total reclaimed space: {}", human_size(freed));
            Ok(ExitCode::SUCCESS)
        }
        Command::Port(a) => {
            let c = crate::container::container_json(client, &a.container).await?;
            for (port, bindings) in c["NetworkSettings"]["Ports"]
                .as_object()
                .into_iter()
                .flatten()
            {
                for b in bindings.as_array().into_iter().flatten() {
                    println!(
                        "{port} -> {}:{}",
                        b["HostIp"].as_str().unwrap_or_default(),
                        b["HostPort"].as_str().unwrap_or_default()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
