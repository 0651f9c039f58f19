//! `--mount`: Docker's comma-separated mount fields, as the API's `Mount`.

use serde_json::{Value, json};

/// One `--mount` as the API's `Mount`: Docker's comma-separated fields
/// (double quotes around a value that holds commas).
pub(super) fn mount_spec(m: &str) -> Result<Value, String> {
    let bad = |what: String| format!("invalid argument {m:?} for --mount: {what}");
    let flag = |k: &str, v: Option<&str>| match v {
        None | Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(other) => Err(bad(format!("{k}={other:?} is not a boolean"))),
    };
    let mut spec = json!({ "Type": "volume" });
    let mut volume = serde_json::Map::new();
    let mut bind = serde_json::Map::new();
    let mut tmpfs = serde_json::Map::new();
    for field in csv_fields(m) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.to_owned())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let value = || {
            v.clone()
                .ok_or_else(|| bad(format!("field {k:?} needs a value")))
        };
        match k.as_str() {
            "type" => spec["Type"] = json!(value()?),
            "source" | "src" => spec["Source"] = json!(value()?),
            "target" | "destination" | "dst" => spec["Target"] = json!(value()?),
            "readonly" | "ro" => spec["ReadOnly"] = json!(flag(&k, v.as_deref())?),
            "consistency" => spec["Consistency"] = json!(value()?),
            "bind-propagation" => {
                bind.insert("Propagation".into(), json!(value()?));
            }
            "bind-nonrecursive" => {
                bind.insert("NonRecursive".into(), json!(flag(&k, v.as_deref())?));
            }
            "bind-recursive" => match value()?.as_str() {
                "enabled" => {}
                "disabled" => {
                    bind.insert("NonRecursive".into(), json!(true));
                }
                "readonly" => {
                    bind.insert("ReadOnlyForceRecursive".into(), json!(true));
                }
                "writable" => {
                    bind.insert("ReadOnlyNonRecursive".into(), json!(true));
                }
                r => return Err(bad(format!("bind-recursive={r:?}"))),
            },
            "volume-nocopy" => {
                volume.insert("NoCopy".into(), json!(flag(&k, v.as_deref())?));
            }
            "volume-subpath" => {
                volume.insert("Subpath".into(), json!(value()?));
            }
            "volume-driver" => {
                let d = volume.entry("DriverConfig").or_insert_with(|| json!({}));
                d["Name"] = json!(value()?);
            }
            "volume-opt" | "volume-label" => {
                let kv = value()?;
                let (name, val) = kv.split_once('=').unwrap_or((&kv, ""));
                let entry = if k == "volume-opt" {
                    let d = volume.entry("DriverConfig").or_insert_with(|| json!({}));
                    &mut d["Options"]
                } else {
                    volume.entry("Labels").or_insert_with(|| json!({}))
                };
                if entry.is_null() {
                    *entry = json!({});
                }
                entry[name] = json!(val);
            }
            "tmpfs-size" => {
                let size = berth_model::units::parse_bytes(&value()?).map_err(bad)?;
                tmpfs.insert("SizeBytes".into(), json!(size));
            }
            "tmpfs-mode" => {
                let raw = value()?;
                let mode = u32::from_str_radix(&raw, 8)
                    .map_err(|_| bad(format!("tmpfs-mode {raw:?} is not octal")))?;
                tmpfs.insert("Mode".into(), json!(mode));
            }
            other => return Err(bad(format!("unexpected key {other:?}"))),
        }
    }
    let kind = spec["Type"].as_str().unwrap_or_default().to_owned();
    for (key, options, only) in [
        ("VolumeOptions", volume, "volume"),
        ("BindOptions", bind, "bind"),
        ("TmpfsOptions", tmpfs, "tmpfs"),
    ] {
        if options.is_empty() {
            continue;
        }
        if kind != only {
            return Err(bad(format!(
                "cannot mix '{only}' options with type {kind:?}"
            )));
        }
        spec[key] = Value::Object(options);
    }
    if spec.get("Target").is_none() {
        return Err(bad("target is required".into()));
    }
    Ok(spec)
}

/// Splits on commas outside double quotes, dropping the quotes.
fn csv_fields(s: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => fields.last_mut().expect("one field").push(c),
        }
    }
    fields.into_iter().filter(|f| !f.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_fields_map_to_the_api() {
        let m = mount_spec("type=bind,src=/a,dst=/b,readonly,bind-propagation=rslave").unwrap();
        assert_eq!(
            m,
            json!({"Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": true,
                   "BindOptions": {"Propagation": "rslave"}})
        );
        let m = mount_spec(
            r#"type=volume,source=v,target=/d,volume-nocopy,volume-label=a=b,"volume-opt=o=size=1m,mode=700",volume-opt=type=tmpfs"#,
        )
        .unwrap();
        assert_eq!(m["VolumeOptions"]["NoCopy"], true);
        assert_eq!(m["VolumeOptions"]["Labels"], json!({"a": "b"}));
        assert_eq!(
            m["VolumeOptions"]["DriverConfig"]["Options"],
            json!({"o": "size=1m,mode=700", "type": "tmpfs"})
        );
        let m = mount_spec("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770").unwrap();
        assert_eq!(
            m["TmpfsOptions"],
            json!({"SizeBytes": 1 << 20, "Mode": 0o1770})
        );
        for bad in [
            "type=bind,src=/a",
            "type=bind,src=/a,dst=/b,volume-nocopy",
            "type=tmpfs,dst=/t,tmpfs-mode=9",
            "type=bind,src=/a,dst=/b,readonly=maybe",
            "type=bind,src=/a,dst=/b,colour=blue",
        ] {
            assert!(mount_spec(bad).is_err(), "{bad}");
        }
    }
}
