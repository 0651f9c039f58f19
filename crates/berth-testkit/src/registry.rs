//! Registries run by tests: `berth registry serve` and Debian's
//! `docker-registry` (the CNCF distribution server), each on a free
//! loopback port with its own storage, killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A registry process listening on `127.0.0.1:<port>`.
pub struct RegistryProcess {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub addr: String,
    /// Its storage directory.
    pub root: PathBuf,
    _dir: tempfile::TempDir,
}

impl RegistryProcess {
    /// Starts `berth registry serve` on a free port, with `extra` flags
    /// (`--htpasswd`, `--token-auth`, `--tls-cert`, ...).
    pub fn berth(berth: &Path, extra: &[&str]) -> RegistryProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("registry");
        let mut child = Command::new(berth)
            .args(["registry", "serve", "--addr", "127.0.0.1:0", "--root"])
            .arg(&root)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start berth registry serve");
        // The first line says where it listens: "... serving http://ADDR from ROOT".
        let stderr = child.stderr.take().expect("piped stderr");
        let mut line = String::new();
        BufReader::new(stderr)
            .read_line(&mut line)
            .expect("read registry banner");
        let addr = line
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("berth registry did not start: {line:?}"))
            .to_owned();
        RegistryProcess {
            child,
            addr,
            root,
            _dir: dir,
        }
    }

    /// Starts Debian's `docker-registry` (distribution 2.8) on a free port
    /// with filesystem storage and deletes enabled; `None` when it is not
    /// installed.
    pub fn distribution() -> Option<RegistryProcess> {
        let program = crate::peer::find_program("docker-registry")?;
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("registry");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                root.display()
            ),
        )
        .expect("write registry config");
        let child = Command::new(program)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let process = RegistryProcess {
            child,
            addr,
            root,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&process.addr).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(process)
    }
}

impl Drop for RegistryProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free port")
}

/// Runs `skopeo ARGS` (60 s at most).
pub fn skopeo(args: &[&str]) -> std::process::Output {
    crate::peer::run_with_timeout(Command::new("skopeo").args(args), Duration::from_secs(60))
}

/// Skips the calling test (returns) when `program` is not installed.
#[macro_export]
macro_rules! require_program {
    ($program:expr) => {
        if $crate::peer::find_program($program).is_none() {
            eprintln!("skipped: {} is not installed", $program);
            return;
        }
    };
}

/// Writes an htpasswd file at `path` with `user:password` hashed by
/// `htpasswd -B` (bcrypt, cost 5); `false` when apache2-utils is missing.
pub fn write_htpasswd(path: &std::path::Path, user: &str, password: &str) -> bool {
    let out = crate::peer::run_with_timeout(
        Command::new("htpasswd").args(["-nbB", "-C", "5", user, password]),
        Duration::from_secs(30),
    );
    out.status.success() && std::fs::write(path, &out.stdout).is_ok()
}

/// Writes a self-signed certificate for `localhost` and 127.0.0.1 and its
/// key (PEM) with openssl; `false` when openssl is missing.
pub fn write_self_signed(cert: &std::path::Path, key: &std::path::Path) -> bool {
    let out = crate::peer::run_with_timeout(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
            .arg("-keyout")
            .arg(key)
            .arg("-out")
            .arg(cert),
        Duration::from_secs(60),
    );
    out.status.success()
}

/// A tar of `(path, bytes)` regular files, owned by root, mode 0644.
pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, path, *data).expect("tar in memory");
    }
    b.into_inner().expect("tar in memory")
}
