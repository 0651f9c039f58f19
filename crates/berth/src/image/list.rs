//! `images`, `tag`, `rmi` and `image inspect`.

use std::process::ExitCode;

use clap::Args;
use serde_json::{Value, json};

use super::Context;
use super::progress::human_size;
use crate::format::Format;
use berth_engine::images::{
    Image, Removed, created_at, inspect_json, keep, records, remove, repository_and_tag, since,
    unix_seconds,
};

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Show images of this repository only (REPOSITORY[:TAG]).
    pub repository: Option<String>,
    /// Show all images (berth keeps no intermediate images, so the same).
    #[arg(short, long)]
    pub all: bool,
    /// Show digests.
    #[arg(long)]
    pub digests: bool,
    /// Filter output based on conditions provided (dangling, reference,
    /// label, before, since).
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a custom template: 'table', 'table TEMPLATE',
    /// 'json', or a Go template.
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    /// SOURCE_IMAGE[:TAG]
    pub source: String,
    /// TARGET_IMAGE[:TAG]
    pub target: String,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Images to remove.
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Force removal of the image.
    #[arg(short, long)]
    pub force: bool,
    /// Do not delete untagged parents (berth keeps none).
    #[arg(long)]
    pub no_prune: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Images to inspect.
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Format output using a custom template.
    #[arg(short, long)]
    pub format: Option<String>,
}

pub fn images(ctx: &Context, args: ImagesArgs) -> Result<ExitCode, String> {
    let mut filters = Vec::new();
    for f in &args.filter {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| format!("bad format of filter (expected name=value): {f}"))?;
        filters.push((k.to_lowercase(), v.to_owned()));
    }
    if let Some(repo) = &args.repository {
        filters.push(("reference".into(), repo.clone()));
    }
    let all = records(ctx);
    let mut shown = Vec::new();
    for image in &all {
        if keep(image, &filters, &all)? {
            shown.push(image);
        }
    }
    shown.sort_by(|a, b| {
        let t = |i: &Image| {
            i.config
                .created
                .as_deref()
                .and_then(unix_seconds)
                .unwrap_or(0)
        };
        t(b).cmp(&t(a))
            .then_with(|| a.reference.to_string().cmp(&b.reference.to_string()))
    });
    let id = |i: &Image| {
        if args.no_trunc {
            i.id.to_string()
        } else {
            i.id.hex()[..12].to_owned()
        }
    };
    if args.quiet {
        // One line per row, as Docker prints them: an image with two tags
        // shows its ID twice.
        for image in &shown {
            println!("{}", id(image));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Value> = shown
        .iter()
        .map(|image| {
            let (repo, tag) = repository_and_tag(&image.reference);
            json!({
                "Containers": "N/A",
                "CreatedAt": created_at(image.config.created.as_deref()),
                "CreatedSince": since(image.config.created.as_deref()),
                "Digest": image.target.digest.to_string(),
                "ID": id(image),
                "Repository": repo,
                "SharedSize": "N/A",
                "Size": human_size(image.size),
                "Tag": tag,
                "UniqueSize": "N/A",
                "VirtualSize": human_size(image.size),
            })
        })
        .collect();
    let format = Format::parse(args.format.as_deref())?;
    let table = || {
        let mut header = vec!["REPOSITORY", "TAG"];
        if args.digests {
            header.push("DIGEST");
        }
        header.extend(["IMAGE ID", "CREATED", "SIZE"]);
        let mut cells = vec![header.into_iter().map(str::to_owned).collect::<Vec<_>>()];
        for row in &rows {
            let field = |k: &str| row[k].as_str().unwrap_or("").to_owned();
            let mut line = vec![field("Repository"), field("Tag")];
            if args.digests {
                line.push(field("Digest"));
            }
            line.extend([field("ID"), field("CreatedSince"), field("Size")]);
            cells.push(line);
        }
        crate::table::render(&cells, 10, 3)
    };
    let out = format.print(
        &rows,
        table,
        &[
            ("Repository", "REPOSITORY"),
            ("Tag", "TAG"),
            ("Digest", "DIGEST"),
            ("ID", "IMAGE ID"),
            ("CreatedSince", "CREATED"),
            ("CreatedAt", "CREATED AT"),
            ("Size", "SIZE"),
            ("VirtualSize", "VIRTUAL SIZE"),
            ("SharedSize", "SHARED SIZE"),
            ("UniqueSize", "UNIQUE SIZE"),
            ("Containers", "CONTAINERS"),
        ],
    )?;
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

pub fn tag(ctx: &Context, args: TagArgs) -> Result<ExitCode, String> {
    let (_, target) = ctx.find(&args.source)?;
    let reference = super::transfer::parse_ref(&args.target)?;
    if reference.digest().is_some() {
        return Err("refusing to create a tag with a digest reference".into());
    }
    ctx.images
        .put(&reference, target)
        .map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

pub fn rmi(ctx: &Context, args: RmiArgs) -> Result<ExitCode, String> {
    let mut failed = false;
    for name in &args.images {
        match remove(ctx, name, args.force) {
            Ok(done) => {
                for step in done {
                    match step {
                        Removed::Untagged(r) => println!("Untagged: {r}"),
                        Removed::Deleted(id) => println!("Deleted: {id}"),
                    }
                }
            }
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn inspect(ctx: &Context, args: InspectArgs) -> Result<ExitCode, String> {
    let format = args
        .format
        .as_deref()
        .map(|f| Format::parse(Some(f)))
        .transpose()?;
    let all = records(ctx);
    let mut out = Vec::new();
    let mut failed = false;
    for name in &args.images {
        let found = ctx.find(name).and_then(|(_, target)| {
            let id = ctx.image_id(&target)?;
            let same: Vec<&Image> = all.iter().filter(|i| i.id == id).collect();
            let first = same
                .first()
                .ok_or_else(|| format!("No such image: {name}"))?;
            Ok(inspect_json(first, &same))
        });
        match found {
            Ok(v) => out.push(v),
            Err(_) => {
                eprintln!("Error: No such image: {name}");
                failed = true;
            }
        }
    }
    match format {
        Some(format) => print!("{}", format.print(&out, String::new, &[])?),
        None => println!(
            "{}",
            serde_json::to_string_pretty(&out).expect("JSON serialises")
        ),
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
