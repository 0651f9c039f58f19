//! Volumes: `volumes/<name>/_data` under the data root, with the local
//! driver's options (`type`, `device`, `o`) mounted there while containers
//! use them.
//!
//! A volume's metadata is `volumes/<name>/volume.json`, written atomically
//! before its directory is renamed into place, so a half-created volume is
//! never listed. Data lives in `_data` and survives container removal,
//! daemon restarts and reboots.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_model::ErrorKind;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::EngineError;

/// The label Docker puts on anonymous volumes.
pub const ANONYMOUS: &str = "com.docker.volume.anonymous";

/// A volume as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    /// Its name.
    pub name: String,
    /// `local`.
    pub driver: String,
    /// When it was made.
    pub created_at: String,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The local driver's options.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// The volumes of a data root.
#[derive(Debug)]
pub struct Volumes {
    root: PathBuf,
    /// Serialises creation and removal; counts the mounts of volumes with
    /// driver options.
    mounted: Mutex<BTreeMap<String, usize>>,
}

/// Whether `name` is a valid volume name (Docker's rule).
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

impl Volume {
    /// The API's view, with its mountpoint.
    pub fn to_json(&self, mountpoint: &Path) -> Value {
        json!({
            "CreatedAt": self.created_at,
            "Driver": self.driver,
            "Labels": self.labels,
            "Mountpoint": mountpoint,
            "Name": self.name,
            "Options": self.options,
            "Scope": "local",
        })
    }

    /// Whether it was made for one container's image path.
    pub fn anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS)
    }
}

impl Volumes {
    /// The volumes under `data_root`; half-made ones are cleared.
    pub fn open(data_root: &Path) -> Result<Volumes, String> {
        let root = data_root.join("volumes");
        std::fs::create_dir_all(&root).map_err(|e| format!("create {}: {e}", root.display()))?;
        if let Ok(entries) = std::fs::read_dir(&root) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(".tmp-") {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(Volumes {
            root,
            mounted: Mutex::new(BTreeMap::new()),
        })
    }

    /// Where a volume's data is.
    pub fn data(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    /// The volume `name`.
    pub fn get(&self, name: &str) -> Result<Volume, EngineError> {
        if !valid_name(name) {
            return Err(EngineError::not_found(format!(
                "get {name}: no such volume"
            )));
        }
        let path = self.root.join(name).join("volume.json");
        let bytes = std::fs::read(&path)
            .map_err(|_| EngineError::not_found(format!("get {name}: no such volume")))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| EngineError::internal(format!("read {}: {e}", path.display())))
    }

    /// Every volume, by name.
    pub fn list(&self) -> Vec<Volume> {
        let mut out: Vec<Volume> = std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| self.get(&n).ok())
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Creates a volume (a random name when none); an existing one of the
    /// same name is returned as it is, as Docker does.
    pub fn create(
        &self,
        name: Option<&str>,
        driver: Option<&str>,
        options: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
    ) -> Result<Volume, EngineError> {
        let driver = driver.filter(|d| !d.is_empty()).unwrap_or("local");
        if driver != "local" {
            return Err(EngineError::not_found(format!(
                "error looking up volume plugin {driver}: plugin {driver:?} not found"
            )));
        }
        for key in options.keys() {
            if !matches!(key.as_str(), "type" | "device" | "o" | "size") {
                return Err(EngineError::bad_request(format!(
                    "invalid option key: {key:?} (the local driver takes type, device and o)"
                )));
            }
        }
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) if !valid_name(n) => {
                return Err(EngineError::bad_request(format!(
                    "create {n}: \"{n}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
                )));
            }
            Some(n) => n.to_owned(),
            None => crate::containers::random_hex(32),
        };
        let _guard = self.mounted.lock().expect("volumes lock");
        if let Ok(v) = self.get(&name) {
            return Ok(v);
        }
        let volume = Volume {
            name: name.clone(),
            driver: driver.to_owned(),
            created_at: berth_model::time::rfc3339_secs(
                berth_model::time::unix_now().as_secs() as i64
            ),
            labels,
            options,
        };
        let tmp = self.root.join(format!(".tmp-{name}"));
        let made = (|| {
            std::fs::create_dir_all(tmp.join("_data"))?;
            berth_sys::fs::atomic_write(
                &tmp.join("volume.json"),
                &serde_json::to_vec_pretty(&volume).expect("volumes serialise"),
            )?;
            std::fs::rename(&tmp, self.root.join(&name))
        })();
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(EngineError::internal(format!("create volume {name}: {e}")));
        }
        Ok(volume)
    }

    /// Removes `name` unless `users` (the containers that use it) is not
    /// empty; a missing volume is an error unless `force`.
    pub fn remove(&self, name: &str, users: &[String], force: bool) -> Result<(), EngineError> {
        let _guard = self.mounted.lock().expect("volumes lock");
        if let Err(e) = self.get(name) {
            return if force { Ok(()) } else { Err(e) };
        }
        if !users.is_empty() {
            return Err(EngineError {
                kind: ErrorKind::Conflict,
                message: format!("remove {name}: volume is in use - [{}]", users.join(", ")),
            });
        }
        let dir = self.root.join(name);
        let doomed = self.root.join(format!(".tmp-rm-{name}"));
        std::fs::rename(&dir, &doomed)
            .map_err(|e| EngineError::internal(format!("remove volume {name}: {e}")))?;
        let _ = std::fs::remove_dir_all(&doomed);
        Ok(())
    }

    /// Mounts the volume's driver options on its data (first user only);
    /// a plain volume needs nothing.
    pub fn acquire(&self, v: &Volume) -> Result<(), String> {
        let Some(kind) = v.options.get("type") else {
            return Ok(());
        };
        let mut mounted = self.mounted.lock().expect("volumes lock");
        let count = mounted.entry(v.name.clone()).or_insert(0);
        if *count == 0 {
            let target = self.data(&v.name);
            let device = v.options.get("device").map(String::as_str).unwrap_or(kind);
            let opts = v.options.get("o").cloned().unwrap_or_default();
            let bind = opts.split(',').any(|o| o == "bind" || o == "rbind");
            let result = if bind {
                nix::mount::mount(
                    Some(device),
                    &target,
                    None::<&str>,
                    nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REC,
                    None::<&str>,
                )
            } else {
                nix::mount::mount(
                    Some(device),
                    &target,
                    Some(kind.as_str()),
                    nix::mount::MsFlags::empty(),
                    Some(opts.as_str()),
                )
            };
            result.map_err(|e| format!("mount volume {} ({kind} {device}): {e}", v.name))?;
        }
        *count += 1;
        Ok(())
    }

    /// Undoes one [`Volumes::acquire`].
    pub fn release(&self, name: &str) {
        let mut mounted = self.mounted.lock().expect("volumes lock");
        if let Some(count) = mounted.get_mut(name) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                mounted.remove(name);
                let _ = nix::mount::umount2(&self.data(name), nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_are_created_once_listed_and_removed_unless_used() {
        let dir = tempfile::tempdir().unwrap();
        let vols = Volumes::open(dir.path()).unwrap();
        let a = vols
            .create(Some("data"), None, BTreeMap::new(), BTreeMap::new())
            .unwrap();
        std::fs::write(vols.data("data").join("f"), "kept").unwrap();
        let again = vols
            .create(Some("data"), None, BTreeMap::new(), BTreeMap::new())
            .unwrap();
        assert_eq!(a, again);
        assert_eq!(
            std::fs::read_to_string(vols.data("data").join("f")).unwrap(),
            "kept"
        );
        assert!(
            vols.create(Some("bad/name"), None, BTreeMap::new(), BTreeMap::new())
                .is_err()
        );
        let anon = vols
            .create(None, None, BTreeMap::new(), BTreeMap::new())
            .unwrap();
        assert_eq!(anon.name.len(), 64);
        assert_eq!(vols.list().len(), 2);
        let err = vols.remove("data", &["c1".into()], false).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Conflict);
        vols.remove("data", &[], false).unwrap();
        assert_eq!(vols.get("data").unwrap_err().kind, ErrorKind::NotFound);
        assert!(vols.remove("data", &[], true).is_ok());
        assert!(vols.remove("data", &[], false).is_err());
    }
}
