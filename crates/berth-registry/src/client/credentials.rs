//! Registry credentials in Docker's `config.json`, so `berth login` and
//! `docker login` share them, with credential helpers
//! (`docker-credential-<name>`, as ECR, GCR and desktop keychains ship)
//! chosen per registry by `credHelpers` or for all by `credsStore`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

/// The key Docker files Docker Hub's credentials under.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A user's credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name; empty with an identity token.
    pub username: String,
    /// The password or access token.
    pub password: String,
    /// An OAuth2 refresh token the registry issued (`identitytoken`).
    pub identity_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The file credentials live in, and the helpers it names.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    path: PathBuf,
    /// Where helpers are looked up instead of `PATH` (tests).
    helper_dir: Option<PathBuf>,
}

/// The registry a `login` server argument names: `https://host:port/path`
/// is `host:port`; Docker Hub's names and an empty one are `docker.io`.
pub fn registry_of_server(server: &str) -> String {
    let s = server
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    match s.split('/').next().unwrap_or("") {
        "" | "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        other => other.to_owned(),
    }
}

/// The key a registry's credentials are filed under: Docker Hub's legacy
/// URL for `docker.io`, the host otherwise.
pub fn config_key(registry: &str) -> String {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_KEY.to_owned(),
        other => other.to_owned(),
    }
}

impl CredentialStore {
    /// The store at `path` (a `config.json`).
    pub fn at(path: impl Into<PathBuf>) -> CredentialStore {
        CredentialStore {
            path: path.into(),
            helper_dir: None,
        }
    }

    /// Looks credential helpers up in `dir` instead of on `PATH`.
    pub fn with_helper_dir(mut self, dir: impl Into<PathBuf>) -> CredentialStore {
        self.helper_dir = Some(dir.into());
        self
    }

    fn helper(&self, name: &str) -> PathBuf {
        let program = format!("docker-credential-{name}");
        match &self.helper_dir {
            Some(dir) => dir.join(program),
            None => PathBuf::from(program),
        }
    }

    /// Docker's default: `$DOCKER_CONFIG/config.json`, or
    /// `~/.docker/config.json`.
    pub fn default_location() -> CredentialStore {
        let dir = std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".docker")))
            .unwrap_or_else(|| PathBuf::from("/root/.docker"));
        CredentialStore::at(dir.join("config.json"))
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> Result<Map<String, Value>, String> {
        match std::fs::read(&self.path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(map)) => Ok(map),
                Ok(_) => Err(format!("{} is not a JSON object", self.path.display())),
                Err(e) => Err(format!("{} is not valid JSON: {e}", self.path.display())),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
            Err(e) => Err(format!("read {}: {e}", self.path.display())),
        }
    }

    fn save(&self, config: &Map<String, Value>) -> Result<(), String> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        }
        let mut bytes = serde_json::to_vec_pretty(config).expect("JSON serialises");
        bytes.push(b'\n');
        // atomic_write creates the file 0600: it holds secrets.
        berth_sys::fs::atomic_write(&self.path, &bytes)
            .map_err(|e| format!("write {}: {e}", self.path.display()))
    }

    /// The helper that holds `key`'s credentials, if any.
    fn helper_for(config: &Map<String, Value>, key: &str) -> Option<String> {
        config
            .get("credHelpers")
            .and_then(|h| h.get(key))
            .or_else(|| config.get("credsStore"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    /// The credentials for `registry`, or `None` when none are stored.
    pub fn get(&self, registry: &str) -> Result<Option<Credentials>, String> {
        let key = config_key(registry);
        let config = self.load()?;
        if let Some(helper) = Self::helper_for(&config, &key) {
            return helper_get(&self.helper(&helper), &key);
        }
        let Some(entry) = config.get("auths").and_then(|a| a.get(&key)) else {
            return Ok(None);
        };
        let identity_token = entry
            .get("identitytoken")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let (username, password) = match entry.get("auth").and_then(Value::as_str) {
            Some(auth) if !auth.is_empty() => {
                let decoded = STANDARD
                    .decode(auth.trim())
                    .ok()
                    .and_then(|d| String::from_utf8(d).ok())
                    .ok_or_else(|| {
                        format!(
                            "the auth entry for {key} in {} is not base64",
                            self.path.display()
                        )
                    })?;
                let (u, p) = decoded.split_once(':').unwrap_or((&decoded, ""));
                (u.to_owned(), p.to_owned())
            }
            _ => (String::new(), String::new()),
        };
        if username.is_empty() && identity_token.is_none() {
            return Ok(None);
        }
        Ok(Some(Credentials {
            username,
            password,
            identity_token,
        }))
    }

    /// Stores `credentials` for `registry`, through its helper when one is
    /// configured.
    pub fn store(&self, registry: &str, credentials: &Credentials) -> Result<(), String> {
        let key = config_key(registry);
        let mut config = self.load()?;
        if let Some(helper) = Self::helper_for(&config, &key) {
            let (user, secret) = match &credentials.identity_token {
                Some(token) => ("<token>", token.as_str()),
                None => (credentials.username.as_str(), credentials.password.as_str()),
            };
            let input = serde_json::json!({ "ServerURL": key, "Username": user, "Secret": secret });
            return helper_call(&self.helper(&helper), "store", input.to_string().as_bytes())
                .map(drop);
        }
        let auths = config
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        let mut entry = Map::new();
        let pair = format!("{}:{}", credentials.username, credentials.password);
        entry.insert("auth".into(), Value::String(STANDARD.encode(pair)));
        if let Some(token) = &credentials.identity_token {
            entry.insert("identitytoken".into(), Value::String(token.clone()));
        }
        auths
            .as_object_mut()
            .expect("made an object above")
            .insert(key, Value::Object(entry));
        self.save(&config)
    }

    /// Removes the credentials for `registry`; `false` when there were none.
    pub fn erase(&self, registry: &str) -> Result<bool, String> {
        let key = config_key(registry);
        let mut config = self.load()?;
        if let Some(helper) = Self::helper_for(&config, &key) {
            return match helper_call(&self.helper(&helper), "erase", key.as_bytes()) {
                Ok(_) => Ok(true),
                Err(e) if e.contains("not found") => Ok(false),
                Err(e) => Err(e),
            };
        }
        let removed = config
            .get_mut("auths")
            .and_then(Value::as_object_mut)
            .and_then(|a| a.remove(&key))
            .is_some();
        if removed {
            self.save(&config)?;
        }
        Ok(removed)
    }
}

/// `docker-credential-<helper> get` for `key`.
fn helper_get(helper: &Path, key: &str) -> Result<Option<Credentials>, String> {
    let out = match helper_call(helper, "get", key.as_bytes()) {
        Ok(out) => out,
        // The protocol's answer for "nothing stored".
        Err(e) if e.contains("credentials not found") => return Ok(None),
        Err(e) => return Err(e),
    };
    let value: Value = serde_json::from_slice(&out)
        .map_err(|e| format!("{} get answered with invalid JSON: {e}", helper.display()))?;
    let field = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let (username, secret) = (field("Username"), field("Secret"));
    if username.is_empty() && secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(if username == "<token>" {
        Credentials {
            username: String::new(),
            password: String::new(),
            identity_token: Some(secret),
        }
    } else {
        Credentials {
            username,
            password: secret,
            identity_token: None,
        }
    }))
}

/// Runs `docker-credential-<helper> <action>` with `input` on stdin.
fn helper_call(helper: &Path, action: &str, input: &[u8]) -> Result<Vec<u8>, String> {
    let program = helper.display();
    let mut child = Command::new(helper)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run {program} (the credential helper named in config.json): {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("run {program}: {e}"))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        let mut why = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if why.is_empty() {
            why = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        }
        Err(format!("{program} {action}: {why}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(user: &str, pass: &str) -> Credentials {
        Credentials {
            username: user.into(),
            password: pass.into(),
            identity_token: None,
        }
    }

    #[test]
    fn config_json_round_trips_and_keeps_other_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"psFormat":"table {{.ID}}","auths":{}}"#).unwrap();
        let store = CredentialStore::at(&path);
        assert_eq!(store.get("localhost:5000").unwrap(), None);
        store
            .store("localhost:5000", &creds("alice", "s:cret"))
            .unwrap();
        store.store("docker.io", &creds("bob", "pw")).unwrap();
        assert_eq!(
            store.get("localhost:5000").unwrap(),
            Some(creds("alice", "s:cret"))
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("psFormat"), "{text}");
        assert!(text.contains(DOCKER_HUB_KEY), "{text}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(store.erase("localhost:5000").unwrap());
        assert!(!store.erase("localhost:5000").unwrap());
        assert_eq!(store.get("localhost:5000").unwrap(), None);
        assert_eq!(
            store.get("index.docker.io").unwrap(),
            Some(creds("bob", "pw"))
        );
    }

    #[test]
    fn helpers_are_asked_per_registry() {
        let dir = tempfile::tempdir().unwrap();
        // A helper that answers `get` for one registry and stores nothing.
        let helper = dir.path().join("docker-credential-berthtest");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread url\nif [ \"$1\" = get ] && [ \"$url\" = reg.example ]; then\n  echo '{\"ServerURL\":\"reg.example\",\"Username\":\"u\",\"Secret\":\"p\"}'\nelse\n  echo 'credentials not found in native keychain'; exit 1\nfi\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"credHelpers":{"reg.example":"berthtest"}}"#).unwrap();
        let store = CredentialStore::at(&path).with_helper_dir(dir.path());
        assert_eq!(store.get("reg.example").unwrap(), Some(creds("u", "p")));
        assert_eq!(
            store.get("other.example").unwrap(),
            None,
            "not the helper's registry"
        );
    }
}
