//! Reading the store as Docker's images: records, filters, inspect, and
//! removal.

use std::time::SystemTime;

use berth_image::{Descriptor, ImageConfig};
use berth_model::{Digest, ImageRef};
use serde_json::{Value, json};

use super::ImageService;

/// One image as the listing and inspect see it.
pub struct Image {
    /// The reference.
    pub reference: ImageRef,
    /// The manifest or index it names.
    pub target: Descriptor,
    /// The image ID (config digest).
    pub id: Digest,
    /// The config.
    pub config: ImageConfig,
    /// The config as stored.
    pub raw_config: Value,
    /// Bytes of config and layers.
    pub size: u64,
    /// When the reference was made.
    pub tagged_at: String,
}

/// Reads the image `reference` names.
pub fn load(
    ctx: &ImageService,
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

/// Every stored reference as an image (those that cannot be read skipped).
pub fn records(ctx: &ImageService) -> Vec<Image> {
    ctx.images
        .list()
        .into_iter()
        .filter_map(|(r, rec)| load(ctx, r, rec.target, rec.created).ok())
        .collect()
}

/// Seconds since the epoch of an RFC 3339 time.
pub fn unix_seconds(rfc3339: &str) -> Option<i64> {
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
    format!("{} ago", elapsed(then))
}

/// How long ago the unix time `then` was, as Docker words it.
pub fn elapsed(then: i64) -> String {
    human_duration(berth_model::time::unix_now().as_secs() as i64 - then)
}

/// A duration as Docker words it (`About an hour`).
pub fn human_duration(seconds: i64) -> String {
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
pub fn created_at(created: Option<&str>) -> String {
    let Some(secs) = created.and_then(unix_seconds) else {
        return String::new();
    };
    let full = berth_model::time::rfc3339_secs(secs);
    format!("{} {} +0000 UTC", &full[..10], &full[11..19])
}

/// Whether `name` matches the glob `pattern` (`*` within a path part, `?`).
pub fn glob(pattern: &str, name: &str) -> bool {
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

/// The REPOSITORY and TAG columns of a reference (`<none>` for unnamed).
pub fn repository_and_tag(reference: &ImageRef) -> (String, String) {
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

/// Whether `image` passes `filters` (`dangling`, `reference`, `label`,
/// `before`, `since`); `all` resolves `before`/`since`.
pub fn keep(
    image: &Image,
    filters: &[(String, String)],
    ctx_images: &[Image],
) -> Result<bool, String> {
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

/// What removing an image did, in order: Docker's `Untagged`/`Deleted`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// A reference was removed.
    Untagged(String),
    /// The image itself was removed.
    Deleted(Digest),
}

/// Removes `name`: by reference, that reference; by ID, every reference
/// (which needs `force` when several repositories name it). The image goes
/// with its last tag.
pub fn remove(
    ctx: &ImageService,
    name: &str,
    force: bool,
) -> Result<Vec<Removed>, crate::EngineError> {
    let mut done = Vec::new();
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
                return Err(crate::EngineError::conflict(format!(
                    "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                    &id.hex()[..12]
                )));
            }
            all
        }
    };
    // The last names of an image a container uses go only when forced,
    // and the image stays, unnamed, as Docker keeps it.
    let users = ctx.containers_using(&id);
    let others = ctx
        .images
        .list()
        .into_iter()
        .filter(|(r, rec)| {
            r.tag().is_some()
                && !to_remove.contains(r)
                && ctx.image_id(&rec.target).is_ok_and(|i| i == id)
        })
        .count();
    if let Some((container, running)) = users.first()
        && others == 0
    {
        if !force {
            return Err(crate::EngineError::conflict(format!(
                "conflict: unable to remove repository reference \"{name}\" (must force) - container {container} is using its referenced image {}",
                &id.hex()[..12]
            )));
        }
        if *running {
            return Err(crate::EngineError::conflict(format!(
                "conflict: unable to delete {} (cannot be forced) - image is being used by running container {container}",
                &id.hex()[..12]
            )));
        }
        let keep = super::untagged(&target)?;
        ctx.images
            .put(&keep, target.clone())
            .map_err(|e| e.to_string())?;
        for reference in &to_remove {
            ctx.images.remove(reference).map_err(|e| e.to_string())?;
            done.push(Removed::Untagged(reference.familiar()));
        }
        return Ok(done);
    }
    for reference in &to_remove {
        ctx.images.remove(reference).map_err(|e| e.to_string())?;
        done.push(Removed::Untagged(reference.familiar()));
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
        return Ok(done);
    }
    for (r, t) in &rest {
        if ctx.image_id(t).is_ok_and(|i| i == id) {
            ctx.images.remove(r).map_err(|e| e.to_string())?;
            done.push(Removed::Untagged(r.familiar()));
        }
    }
    ctx.collect_garbage(&target)?;
    done.push(Removed::Deleted(id));
    Ok(done)
}

/// Removes the images no container uses: with `all`, every one; without,
/// those with no tag. Returns what went and the bytes reclaimed. Also drops
/// downloads abandoned a day ago or more.
pub fn prune(ctx: &ImageService, all: bool) -> Result<(Vec<Removed>, u64), String> {
    let mut done = Vec::new();
    let stored = || -> Result<u64, String> {
        let blobs = ctx.content.list().map_err(|e| e.to_string())?;
        Ok(blobs.iter().map(|(_, size)| size).sum())
    };
    let before = stored()?;
    // The containers' images, read once.
    let in_use: std::collections::HashSet<String> = ctx
        .container_images()
        .into_iter()
        .map(|(image, _, _)| image)
        .collect();
    for (reference, record) in ctx.images.list() {
        if !all && reference.tag().is_some() {
            continue;
        }
        // An image a container uses is not pruned.
        if ctx
            .image_id(&record.target)
            .is_ok_and(|id| in_use.contains(&id.to_string()))
        {
            continue;
        }
        ctx.images.remove(&reference).map_err(|e| e.to_string())?;
        if reference.tag().is_some() {
            done.push(Removed::Untagged(reference.familiar()));
        }
        let id = ctx.image_id(&record.target).ok();
        ctx.collect_garbage(&record.target)?;
        // Deleted once no reference names it any more.
        if let Some(id) = id
            && !done.contains(&Removed::Deleted(id.clone()))
            && !ctx
                .images
                .list()
                .iter()
                .any(|(_, rec)| ctx.image_id(&rec.target).is_ok_and(|i| i == id))
        {
            done.push(Removed::Deleted(id));
        }
    }
    let reclaimed = before.saturating_sub(stored()?);
    let day_ago = SystemTime::now() - std::time::Duration::from_secs(24 * 3600);
    for ingest in ctx.content.ingests().map_err(|e| e.to_string())? {
        if ingest.updated < day_ago {
            // One a live writer holds is Locked: left alone.
            let _ = ctx.content.abort(&ingest.reference);
        }
    }
    Ok((done, reclaimed))
}

/// Docker's image inspect object for `image`, listing the references of
/// every record in `same` (the records of one image ID).
pub fn inspect_json(image: &Image, same: &[&Image]) -> Value {
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
