//! `images`, `tag`, `rmi` and `image inspect`.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use berth_image::{Descriptor, ImageConfig};
use berth_model::{Digest, ImageRef};
use clap::Args;
use serde_json::{Value, json};

use super::Context;
use super::progress::human_size;
use crate::format::Format;

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

/// One image as the listing and inspect see it.
struct Image {
    reference: ImageRef,
    target: Descriptor,
    id: Digest,
    config: ImageConfig,
    raw_config: Value,
    size: u64,
    tagged_at: String,
}

fn load(
    ctx: &Context,
    reference: ImageRef,
    target: Descriptor,
    tagged_at: String,
) -> Result<Image, String> {
    let (_, manifest) = ctx.resolve(&target)?;
    let bytes = ctx.read_blob(&manifest.config.digest)?;
    let config = ImageConfig::from_slice(&bytes).map_err(|e| e.to_string())?;
    let raw_config = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    let size = manifest.layers.iter().map(|l| l.size).sum::<u64>() + manifest.config.size;
    Ok(Image {
        reference,
        target,
        id: manifest.config.digest,
        config,
        raw_config,
        size,
        tagged_at,
    })
}

fn all_images(ctx: &Context) -> Vec<Image> {
    ctx.images
        .list()
        .into_iter()
        .filter_map(|(r, rec)| load(ctx, r, rec.target, rec.created).ok())
        .collect()
}

fn unix_seconds(rfc3339: &str) -> Option<i64> {
    // YYYY-MM-DDTHH:MM:SS, fraction and offset ignored beyond Z or +hh:mm.
    let (date, time) = rfc3339.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let hms: Vec<i64> = time
        .get(..8)?
        .split(':')
        .filter_map(|p| p.parse().ok())
        .collect();
    let [h, min, s] = hms[..] else { return None };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let mut secs = days * 86_400 + h * 3600 + min * 60 + s;
    let rest = &time[8..];
    let offset = rest.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    if let Some(sign) = offset.chars().next().filter(|c| *c == '+' || *c == '-') {
        let parts: Vec<i64> = offset[1..]
            .split(':')
            .filter_map(|p| p.parse().ok())
            .collect();
        if let [oh, om] = parts[..] {
            let delta = oh * 3600 + om * 60;
            secs += if sign == '+' { -delta } else { delta };
        }
    }
    Some(secs)
}

/// `2 hours ago`, as Docker's go-units HumanDuration words it.
pub fn since(created: Option<&str>) -> String {
    let Some(then) = created.and_then(unix_seconds) else {
        return "N/A".into();
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    format!("{} ago", human_duration(now - then))
}

fn human_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => plural(s, "second"),
        s if s / 60 == 1 => "About a minute".into(),
        s if s < 3600 => plural(s / 60, "minute"),
        s if (s as f64 / 3600.0).round() == 1.0 => "About an hour".into(),
        s if s < 48 * 3600 => plural((s as f64 / 3600.0).round() as i64, "hour"),
        s if s < 7 * 24 * 3600 * 2 => plural(s / 86_400, "day"),
        s if s < 30 * 24 * 3600 * 3 => plural(s / (7 * 86_400), "week"),
        s if s < 365 * 24 * 3600 * 2 => plural(s / (30 * 86_400), "month"),
        s => plural(s / (365 * 86_400), "year"),
    }
}

/// Docker's `CreatedAt`: `2006-01-02 15:04:05 -0700 MST`.
fn created_at(created: Option<&str>) -> String {
    let Some(secs) = created.and_then(unix_seconds) else {
        return String::new();
    };
    let full = berth_model::time::rfc3339_secs(secs);
    format!("{} {} +0000 UTC", &full[..10], &full[11..19])
}

/// Whether `name` matches the glob `pattern` (`*` within a path part, `?`).
fn glob(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && n[0] != b'/' && go(p, &n[1..])),
            (Some(b'?'), Some(c)) if *c != b'/' => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

fn repository_and_tag(reference: &ImageRef) -> (String, String) {
    if super::is_untagged(reference) {
        return ("<none>".into(), "<none>".into());
    }
    let familiar = reference.familiar();
    let repo = familiar.split('@').next().unwrap_or(&familiar).to_owned();
    let repo = match reference.tag() {
        Some(tag) => repo
            .strip_suffix(&format!(":{tag}"))
            .unwrap_or(&repo)
            .to_owned(),
        None => repo,
    };
    (repo, reference.tag().unwrap_or("<none>").to_owned())
}

fn keep(image: &Image, filters: &[(String, String)], ctx_images: &[Image]) -> Result<bool, String> {
    for (key, value) in filters {
        let ok = match key.as_str() {
            "dangling" => {
                let dangling = image.reference.tag().is_none();
                match value.as_str() {
                    "true" | "1" => dangling,
                    "false" | "0" => !dangling,
                    v => return Err(format!("invalid filter 'dangling={v}'")),
                }
            }
            "reference" => {
                let (repo, tag) = repository_and_tag(&image.reference);
                glob(value, &repo) || glob(value, &format!("{repo}:{tag}"))
            }
            "label" => {
                let labels = image
                    .config
                    .config
                    .as_ref()
                    .and_then(|c| c.labels.clone())
                    .unwrap_or_default();
                match value.split_once('=') {
                    Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
                    None => labels.contains_key(value.as_str()),
                }
            }
            "before" | "since" => {
                let anchor = ctx_images
                    .iter()
                    .find(|i| {
                        i.reference.familiar() == *value
                            || i.reference.to_string() == *value
                            || i.id.hex().starts_with(value.trim_start_matches("sha256:"))
                    })
                    .ok_or_else(|| format!("No such image: {value}"))?;
                let (a, b) = (
                    anchor.config.created.as_deref().and_then(unix_seconds),
                    image.config.created.as_deref().and_then(unix_seconds),
                );
                match (a, b) {
                    (Some(a), Some(b)) if key == "before" => b < a,
                    (Some(a), Some(b)) => b > a,
                    _ => false,
                }
            }
            other => return Err(format!("invalid filter '{other}'")),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
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
    let all = all_images(ctx);
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
        let mut seen = Vec::new();
        for image in &shown {
            let id = id(image);
            if !seen.contains(&id) {
                println!("{id}");
                seen.push(id);
            }
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
        if let Err(e) = remove_one(ctx, name, args.force) {
            eprintln!("Error response from daemon: {e}");
            failed = true;
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn remove_one(ctx: &Context, name: &str, force: bool) -> Result<(), String> {
    let (refs, target) = ctx.find(name)?;
    let id = ctx.image_id(&target)?;
    // By ID, every reference goes; by name, that one only.
    let by_name = ImageRef::parse(name).ok().filter(|r| refs.contains(r));
    let to_remove: Vec<ImageRef> = match by_name {
        Some(r) => vec![r],
        None => {
            let all: Vec<ImageRef> = ctx
                .images
                .list()
                .into_iter()
                .filter(|(_, rec)| ctx.image_id(&rec.target).is_ok_and(|i| i == id))
                .map(|(r, _)| r)
                .collect();
            let tagged = all.iter().filter(|r| r.tag().is_some()).count();
            if tagged > 1 && !force {
                return Err(format!(
                    "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                    &id.hex()[..12]
                ));
            }
            all
        }
    };
    for reference in &to_remove {
        ctx.images.remove(reference).map_err(|e| e.to_string())?;
        println!("Untagged: {}", reference.familiar());
    }
    // Digest references (`repo@sha256:..`) of the same image go with its
    // last tag, as Docker's do.
    let rest: Vec<(ImageRef, Descriptor)> = ctx
        .images
        .list()
        .into_iter()
        .map(|(r, rec)| (r, rec.target))
        .collect();
    let still_used = rest
        .iter()
        .any(|(r, t)| r.tag().is_some() && ctx.image_id(t).is_ok_and(|i| i == id));
    if still_used {
        return Ok(());
    }
    for (r, t) in &rest {
        if ctx.image_id(t).is_ok_and(|i| i == id) {
            ctx.images.remove(r).map_err(|e| e.to_string())?;
            println!("Untagged: {}", r.familiar());
        }
    }
    ctx.collect_garbage(&target)?;
    println!("Deleted: {id}");
    Ok(())
}

pub fn inspect(ctx: &Context, args: InspectArgs) -> Result<ExitCode, String> {
    let format = args
        .format
        .as_deref()
        .map(|f| Format::parse(Some(f)))
        .transpose()?;
    let all = all_images(ctx);
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

/// Docker's image inspect object for `image`, listing the references of
/// every record in `same` (the records of one image ID).
fn inspect_json(image: &Image, same: &[&Image]) -> Value {
    let mut tags = Vec::new();
    let mut digests = Vec::new();
    for i in same.iter().filter(|i| !super::is_untagged(&i.reference)) {
        if i.reference.tag().is_some() {
            tags.push(i.reference.familiar());
        }
        let (repo, _) = repository_and_tag(&i.reference);
        let d = format!("{repo}@{}", i.target.digest);
        if !digests.contains(&d) {
            digests.push(d);
        }
    }
    let c = &image.raw_config;
    let config = c.get("config").cloned().unwrap_or(Value::Null);
    let mut container = serde_json::Map::new();
    for (key, default) in [
        ("Hostname", json!("")),
        ("Domainname", json!("")),
        ("User", json!("")),
        ("AttachStdin", json!(false)),
        ("AttachStdout", json!(false)),
        ("AttachStderr", json!(false)),
        ("ExposedPorts", Value::Null),
        ("Tty", json!(false)),
        ("OpenStdin", json!(false)),
        ("StdinOnce", json!(false)),
        ("Env", Value::Null),
        ("Cmd", Value::Null),
        ("Healthcheck", Value::Null),
        ("Image", json!("")),
        ("Volumes", Value::Null),
        ("WorkingDir", json!("")),
        ("Entrypoint", Value::Null),
        ("OnBuild", Value::Null),
        ("Labels", Value::Null),
        ("StopSignal", Value::Null),
    ] {
        let value = config.get(key).cloned().unwrap_or(default);
        if !(value.is_null() && matches!(key, "ExposedPorts" | "Healthcheck" | "StopSignal")) {
            container.insert(key.to_owned(), value);
        }
    }
    let mut object = json!({
        "Id": image.id.to_string(),
        "RepoTags": tags,
        "RepoDigests": digests,
        "Parent": "",
        "Comment": c.get("comment").cloned().unwrap_or(json!("")),
        "Created": c.get("created").cloned().unwrap_or(json!("")),
        "DockerVersion": c.get("docker_version").cloned().unwrap_or(json!("")),
        "Author": c.get("author").cloned().unwrap_or(json!("")),
        "Config": container,
        "Architecture": image.config.architecture,
        "Os": image.config.os,
        "Size": image.size,
        "GraphDriver": { "Data": null, "Name": "overlayfs" },
        "RootFS": {
            "Type": "layers",
            "Layers": image.config.rootfs.diff_ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
        },
        "Metadata": { "LastTagTime": image.tagged_at },
    });
    if let Some(v) = &image.config.variant {
        object["Variant"] = json!(v);
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_dockers() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(45), "45 seconds");
        assert_eq!(human_duration(70), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(3700), "About an hour");
        assert_eq!(human_duration(5 * 3600), "5 hours");
        assert_eq!(human_duration(3 * 86_400), "3 days");
        assert_eq!(human_duration(20 * 86_400), "2 weeks");
        assert_eq!(human_duration(120 * 86_400), "4 months");
        assert_eq!(human_duration(800 * 86_400), "2 years");
    }

    #[test]
    fn timestamps_parse() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_seconds("2000-03-01T00:00:01.5Z"), Some(951_868_801));
        assert_eq!(unix_seconds("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(unix_seconds("garbage"), None);
    }

    #[test]
    fn globs_match_within_path_parts() {
        assert!(glob("busy*", "busybox"));
        assert!(glob("busybox:v?", "busybox:v1"));
        assert!(!glob("*", "library/busybox"));
        assert!(glob("*/busybox", "library/busybox"));
    }
}
