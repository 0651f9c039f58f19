//! `save`, `load`, `import`, `history` and `image prune`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use berth_image::ImageConfig;
use berth_image::archive;
use berth_model::Platform;
use clap::Args;
use serde_json::json;

use super::Context;
use super::progress::human_size;
use crate::format::Format;

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Images to save.
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Write to a file, instead of STDOUT.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN.
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Suppress the load output.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A root filesystem tar (gzip, zstd or plain), or - for STDIN.
    pub file: String,
    /// The name to give the image: REPOSITORY[:TAG].
    pub reference: Option<String>,
    /// Apply Dockerfile instruction to the created image.
    #[arg(short, long)]
    pub change: Vec<String>,
    /// Set commit message for imported image.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable.
    #[arg(long)]
    pub platform: Option<String>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The image.
    pub image: String,
    /// Print sizes and dates in human readable format.
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub human: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Format output using a custom template.
    #[arg(long)]
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
}

pub fn save(ctx: &Context, args: SaveArgs) -> Result<ExitCode, String> {
    let images = berth_engine::images::archives::save_set(ctx, &args.images)?;
    match &args.output {
        Some(path) => {
            // Written beside the target and renamed over it: a failed save
            // leaves no half-written archive behind.
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let tmp = tempfile::NamedTempFile::new_in(dir)
                .map_err(|e| format!("create a file in {}: {e}", dir.display()))?;
            let out = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file());
            archive::save(&ctx.content, &images, out).map_err(|e| e.to_string())?;
            tmp.as_file().sync_all().map_err(|e| e.to_string())?;
            tmp.persist(path)
                .map_err(|e| format!("write {}: {e}", path.display()))?;
        }
        None => {
            if std::io::stdout().is_terminal() {
                return Err(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
                );
            }
            let out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
            archive::save(&ctx.content, &images, out).map_err(|e| e.to_string())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn load(ctx: &Context, args: LoadArgs) -> Result<ExitCode, String> {
    let loaded = match &args.input {
        Some(path) => {
            let file =
                std::fs::File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
            berth_engine::images::archives::load(
                ctx,
                std::io::BufReader::with_capacity(1 << 20, file),
            )
        }
        None => {
            if std::io::stdin().is_terminal() {
                return Err("requested load from stdin, but stdin is empty".into());
            }
            berth_engine::images::archives::load(
                ctx,
                std::io::BufReader::with_capacity(1 << 20, std::io::stdin().lock()),
            )
        }
    }?;
    if !args.quiet {
        for line in loaded {
            println!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn import(ctx: &Context, args: ImportArgs) -> Result<ExitCode, String> {
    let reference = args
        .reference
        .as_deref()
        .map(super::transfer::parse_ref)
        .transpose()?;
    let platform = args
        .platform
        .as_deref()
        .map(Platform::parse)
        .transpose()
        .map_err(|e| e.to_string())?;
    let request = berth_engine::images::import::ImportRequest {
        reference,
        changes: args.change.clone(),
        message: args.message.clone(),
        source: args.file.clone(),
        platform,
    };
    let id = if args.file == "-" {
        berth_engine::images::import::import(ctx, std::io::stdin().lock(), &request)
    } else if args.file.starts_with("http://") || args.file.starts_with("https://") {
        return Err(
            "importing from a URL is not supported; download the file and import it".into(),
        );
    } else {
        let file =
            std::fs::File::open(&args.file).map_err(|e| format!("open {}: {e}", args.file))?;
        berth_engine::images::import::import(
            ctx,
            std::io::BufReader::with_capacity(1 << 20, file),
            &request,
        )
    }?;
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}

pub fn history(ctx: &Context, args: HistoryArgs) -> Result<ExitCode, String> {
    let (_, target) = ctx.find(&args.image)?;
    let (_, manifest) = ctx.resolve(&target)?;
    let id = manifest.config.digest.clone();
    let config = ImageConfig::from_slice(&ctx.read_blob(&id)?).map_err(|e| e.to_string())?;
    let mut layers = manifest.layers.iter();
    let mut rows = Vec::new();
    for entry in config.history.clone().unwrap_or_default().iter().rev() {
        rows.push(entry.clone());
    }
    // Sizes go with the entries that made layers, base first.
    let mut sizes: Vec<u64> = Vec::new();
    for entry in config.history.clone().unwrap_or_default() {
        let empty = entry.empty_layer;
        sizes.push(if empty {
            0
        } else {
            layers.next().map_or(0, |l| l.size)
        });
    }
    sizes.reverse();
    let short = |s: &str| {
        if args.no_trunc {
            s.to_owned()
        } else {
            s.chars().take(12).collect::<String>()
        }
    };
    let out_rows: Vec<serde_json::Value> = rows
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let image = if i == 0 {
                if args.no_trunc {
                    id.to_string()
                } else {
                    short(id.hex())
                }
            } else {
                "<missing>".to_owned()
            };
            let created_by = h.created_by.clone().unwrap_or_default();
            let created_by = if args.no_trunc || created_by.chars().count() <= 45 {
                created_by
            } else {
                format!("{}…", created_by.chars().take(44).collect::<String>())
            };
            let size = sizes.get(i).copied().unwrap_or(0);
            json!({
                "ID": image,
                "CreatedSince": berth_engine::images::since(h.created.as_deref()),
                "CreatedAt": h.created.clone().unwrap_or_default(),
                "CreatedBy": created_by,
                "Size": if args.human { human_size(size) } else { size.to_string() },
                "Comment": h.comment.clone().unwrap_or_default(),
            })
        })
        .collect();
    if args.quiet {
        for r in &out_rows {
            println!("{}", r["ID"].as_str().unwrap_or(""));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let format = Format::parse(args.format.as_deref())?;
    let table = || {
        let mut cells = vec![
            ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
                .map(str::to_owned)
                .to_vec(),
        ];
        for r in &out_rows {
            cells.push(
                ["ID", "CreatedSince", "CreatedBy", "Size", "Comment"]
                    .iter()
                    .map(|k| r[*k].as_str().unwrap_or("").to_owned())
                    .collect(),
            );
        }
        crate::table::render(&cells, 10, 3)
    };
    let out = format.print(
        &out_rows,
        table,
        &[
            ("ID", "IMAGE"),
            ("CreatedSince", "CREATED"),
            ("CreatedAt", "CREATED AT"),
            ("CreatedBy", "CREATED BY"),
            ("Size", "SIZE"),
            ("Comment", "COMMENT"),
        ],
    )?;
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

pub fn prune(ctx: &Context, args: PruneArgs) -> Result<ExitCode, String> {
    if !args.force {
        let warning = if args.all {
            "WARNING! This will remove all images without at least one container associated to them."
        } else {
            "WARNING! This will remove all dangling images."
        };
        if !crate::confirm(warning) {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let (removed, reclaimed) = berth_engine::images::prune(ctx, args.all)?;
    let removed_lines: Vec<String> = removed
        .into_iter()
        .map(|step| match step {
            berth_engine::images::Removed::Untagged(r) => format!("untagged: {r}"),
            berth_engine::images::Removed::Deleted(id) => format!("deleted: {id}"),
        })
        .collect();
    if !removed_lines.is_empty() {
        println!("Deleted Images:");
        for line in removed_lines {
            println!("{line}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size(reclaimed));
    Ok(ExitCode::SUCCESS)
}
