//! `berth volume`: create, list, inspect, remove and prune volumes through
//! the daemon.

use std::process::ExitCode;

use berth_api::client::Client;
use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::{Value, json};

use crate::container::{Failure, Target, connect, filters_json, q};
use crate::format::Format;

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume.
    Create(CreateArgs),
    /// List volumes.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes.
    Inspect(InspectArgs),
    /// Remove one or more volumes.
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes.
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Specify volume driver name.
    #[arg(short, long, default_value = "local")]
    pub driver: String,
    /// Set driver specific options (type, device, o).
    #[arg(short, long)]
    pub opt: Vec<String>,
    /// Set metadata for a volume.
    #[arg(long)]
    pub label: Vec<String>,
    /// The name (random when none).
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only display volume names.
    #[arg(short, long)]
    pub quiet: bool,
    /// Provide filter values (e.g. "dangling=true").
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a custom template.
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template.
    #[arg(short, long)]
    pub format: Option<String>,
    /// Volumes.
    #[arg(required = true)]
    pub volumes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of one or more volumes.
    #[arg(short, long)]
    pub force: bool,
    /// Volumes.
    #[arg(required = true)]
    pub volumes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "label=<label>").
    #[arg(long)]
    pub filter: Vec<String>,
}

fn pairs(items: &[String], what: &str) -> Result<serde_json::Map<String, Value>, String> {
    items
        .iter()
        .map(|i| {
            let (k, v) = i.split_once('=').unwrap_or((i, ""));
            if k.is_empty() {
                Err(format!("invalid {what} {i:?}: use key=value"))
            } else {
                Ok((k.to_owned(), json!(v)))
            }
        })
        .collect()
}

pub fn main(target: Target, command: VolumeCommand) -> ExitCode {
    let result = crate::container::block_on_client(async move {
        let client = connect(&target).await?;
        run(&client, command).await
    });
    crate::container::finish(result)
}

async fn run(client: &Client, command: VolumeCommand) -> Result<ExitCode, Failure> {
    match command {
        VolumeCommand::Create(a) => {
            let body = json!({
                "Name": a.name.unwrap_or_default(),
                "Driver": a.driver,
                "DriverOpts": pairs(&a.opt, "option")?,
                "Labels": pairs(&a.label, "label")?,
            });
            let (_, v) = client
                .json(Method::POST, "/volumes/create", Some(body))
                .await?;
            println!("{}", v["Name"].as_str().unwrap_or_default());
            Ok(ExitCode::SUCCESS)
        }
        VolumeCommand::Ls(a) => {
            let path = format!("/volumes?filters={}", q(&filters_json(&a.filter)?));
            let (_, v) = client.json(Method::GET, &path, None).await?;
            let list = v["Volumes"].as_array().cloned().unwrap_or_default();
            if a.quiet {
                for v in &list {
                    println!("{}", v["Name"].as_str().unwrap_or_default());
                }
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Value> = list
                .iter()
                .map(|v| {
                    json!({
                        "Driver": v["Driver"], "Name": v["Name"], "Mountpoint": v["Mountpoint"],
                        "Scope": v["Scope"], "CreatedAt": v["CreatedAt"],
                        "Labels": v["Labels"].as_object().map(|m| m.iter()
                            .map(|(k, x)| format!("{k}={}", x.as_str().unwrap_or_default()))
                            .collect::<Vec<_>>().join(",")).unwrap_or_default(),
                    })
                })
                .collect();
            let out = Format::parse(a.format.as_deref())?.print(
                &rows,
                || {
                    let mut cells = vec![vec!["DRIVER".to_owned(), "VOLUME NAME".to_owned()]];
                    for r in &rows {
                        cells.push(vec![
                            r["Driver"].as_str().unwrap_or_default().to_owned(),
                            r["Name"].as_str().unwrap_or_default().to_owned(),
                        ]);
                    }
                    crate::table::render(&cells, 10, 3)
                },
                &[
                    ("Driver", "DRIVER"),
                    ("Name", "VOLUME NAME"),
                    ("Mountpoint", "MOUNTPOINT"),
                    ("Scope", "SCOPE"),
                    ("CreatedAt", "CREATED AT"),
                    ("Labels", "LABELS"),
                ],
            )?;
            print!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        VolumeCommand::Inspect(a) => {
            let mut found = Vec::new();
            let mut failed = false;
            for name in &a.volumes {
                match client
                    .json(Method::GET, &format!("/volumes/{}", q(name)), None)
                    .await
                {
                    Ok((_, v)) => found.push(v),
                    Err(e) => {
                        failed = true;
                        eprintln!("{}", Failure::from(e).message);
                    }
                }
            }
            crate::container::print_inspect(&found, a.format.as_deref())?;
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        VolumeCommand::Rm(a) => {
            let force = a.force;
            crate::container::each(&a.volumes, |n| {
                let path = format!("/volumes/{}?force={force}", q(&n));
                async move { client.json(Method::DELETE, &path, None).await.map(|_| n) }
            })
            .await
        }
        VolumeCommand::Prune(a) => {
            let warning = if a.all {
                "WARNING! This will remove all local volumes not used by at least one container."
            } else {
                "WARNING! This will remove anonymous local volumes not used by at least one container."
            };
            if !a.force && !crate::confirm(warning) {
                return Ok(ExitCode::SUCCESS);
            }
            let mut filters = a.filter.clone();
            if a.all {
                filters.push("all=true".into());
            }
            let path = format!("/volumes/prune?filters={}", q(&filters_json(&filters)?));
            let (_, v) = client.json(Method::POST, &path, None).await?;
            println!("Deleted Volumes:");
            for name in v["VolumesDeleted"].as_array().into_iter().flatten() {
                println!("{}", name.as_str().unwrap_or_default());
            }
            println!();
            println!(
                "Total reclaimed space: {}",
                crate::image::progress::human_size(v["SpaceReclaimed"].as_u64().unwrap_or(0))
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
