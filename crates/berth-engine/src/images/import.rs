//! `import`: a one-layer image from a root filesystem tar, with
//! Dockerfile instructions (`--change`) applied to its config.

use std::collections::BTreeMap;
use std::io::Read;

use berth_image::archive::{self, ImportOptions};
use berth_image::manifest::{ContainerConfig, Empty};
use berth_model::{Digest, ImageRef, Platform};
use serde_json::json;

use super::ImageService;

/// What to import, besides the tar.
#[derive(Debug, Clone, Default)]
pub struct ImportRequest {
    /// The name to give the image (none: kept unnamed).
    pub reference: Option<ImageRef>,
    /// Dockerfile instructions for the config (`CMD ["sh"]`).
    pub changes: Vec<String>,
    /// The history comment (default: `Imported from SOURCE`).
    pub message: Option<String>,
    /// Where the tar came from, for the comment.
    pub source: String,
    /// The platform recorded (default: the host's).
    pub platform: Option<Platform>,
}

/// Imports the root filesystem tar `input`; returns the image ID.
pub fn import(
    images: &ImageService,
    input: impl Read,
    request: &ImportRequest,
) -> Result<Digest, String> {
    let mut config = ContainerConfig::default();
    for change in &request.changes {
        apply_change(&mut config, change)?;
    }
    let options = ImportOptions {
        config,
        comment: request
            .message
            .clone()
            .unwrap_or_else(|| format!("Imported from {}", request.source)),
        platform: request.platform.clone(),
    };
    let target = archive::import(&images.content, input, &options).map_err(|e| e.to_string())?;
    images.unpack(&target, |_, _| {})?;
    let name = match &request.reference {
        Some(r) => r.clone(),
        None => super::untagged(&target)?,
    };
    images
        .images
        .put(&name, target.clone())
        .map_err(|e| e.to_string())?;
    images.image_id(&target)
}

/// Splits an instruction's arguments as a shell would split words, with
/// quotes and backslash escapes.
fn words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => word.push(c),
            (_, '\\') => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
                in_word = true;
            }
            (_, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(format!("unterminated quote in {s:?}"));
    }
    if in_word {
        out.push(word);
    }
    Ok(out)
}

/// A command in JSON (exec) form, or shell form run by `/bin/sh -c`.
fn command(args: &str) -> Vec<String> {
    match serde_json::from_str::<Vec<String>>(args.trim()) {
        Ok(exec) => exec,
        Err(_) => vec!["/bin/sh".into(), "-c".into(), args.trim().to_owned()],
    }
}

/// `key=value ...`, or the legacy `key value` form.
fn pairs(args: &str) -> Result<Vec<(String, String)>, String> {
    let w = words(args)?;
    if w.first().is_some_and(|first| !first.contains('=')) {
        let (key, rest) = args
            .trim()
            .split_once(char::is_whitespace)
            .unwrap_or((args.trim(), ""));
        return Ok(vec![(key.to_owned(), rest.trim().to_owned())]);
    }
    w.into_iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| format!("{kv:?} is not key=value"))
        })
        .collect()
}

/// Applies one `--change` Dockerfile instruction to `config`.
pub fn apply_change(config: &mut ContainerConfig, change: &str) -> Result<(), String> {
    let change = change.trim();
    let (instruction, args) = change
        .split_once(char::is_whitespace)
        .unwrap_or((change, ""));
    let args = args.trim();
    match instruction.to_ascii_uppercase().as_str() {
        "CMD" => config.cmd = Some(command(args)),
        "ENTRYPOINT" => config.entrypoint = Some(command(args)),
        "ENV" => {
            let env = config.env.get_or_insert_with(Vec::new);
            for (k, v) in pairs(args)? {
                env.retain(|e| e.split('=').next() != Some(k.as_str()));
                env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            let labels = config.labels.get_or_insert_with(BTreeMap::new);
            labels.extend(pairs(args)?);
        }
        "EXPOSE" => {
            let ports = config.exposed_ports.get_or_insert_with(BTreeMap::new);
            for port in words(args)? {
                let port = if port.contains('/') {
                    port
                } else {
                    format!("{port}/tcp")
                };
                ports.insert(port, Empty {});
            }
        }
        "VOLUME" => {
            let volumes = config.volumes.get_or_insert_with(BTreeMap::new);
            let list = serde_json::from_str::<Vec<String>>(args).or_else(|_| words(args))?;
            for v in list {
                volumes.insert(v, Empty {});
            }
        }
        "USER" => config.user = Some(args.to_owned()),
        "WORKDIR" => config.working_dir = Some(args.to_owned()),
        "STOPSIGNAL" => config.stop_signal = Some(args.to_owned()),
        "ONBUILD" => {
            let onbuild = config
                .extra
                .entry("OnBuild".to_owned())
                .or_insert_with(|| json!([]));
            if let Some(list) = onbuild.as_array_mut() {
                list.push(json!(args));
            }
        }
        other => {
            return Err(format!(
                "{other} is not a valid change command (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_follow_dockerfile_syntax() {
        let mut c = ContainerConfig::default();
        for change in [
            r#"CMD ["/bin/sh", "-c", "echo hi"]"#,
            "ENTRYPOINT echo hello",
            "ENV A=1 B=\"two words\"",
            "ENV C 3 4",
            "EXPOSE 80 53/udp",
            "LABEL team=core",
            "USER nobody",
            "WORKDIR /srv",
            "VOLUME /data",
        ] {
            apply_change(&mut c, change).unwrap();
        }
        assert_eq!(c.cmd.unwrap(), ["/bin/sh", "-c", "echo hi"]);
        assert_eq!(c.entrypoint.unwrap(), ["/bin/sh", "-c", "echo hello"]);
        assert_eq!(c.env.unwrap(), ["A=1", "B=two words", "C=3 4"]);
        assert!(c.exposed_ports.as_ref().unwrap().contains_key("80/tcp"));
        assert!(c.exposed_ports.as_ref().unwrap().contains_key("53/udp"));
        assert_eq!(c.labels.unwrap()["team"], "core");
        assert_eq!(c.user.as_deref(), Some("nobody"));
        assert_eq!(c.working_dir.as_deref(), Some("/srv"));
        assert!(c.volumes.unwrap().contains_key("/data"));
        assert!(apply_change(&mut ContainerConfig::default(), "RUN rm -rf /").is_err());
        assert!(words("'open").is_err());
    }
}
