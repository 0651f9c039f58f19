//! `berth daemon`: the engine, serving the Docker Engine API.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use berth_engine::{Engine, EngineConfig};
use clap::Args;

/// The default API socket, as `DOCKER_HOST=unix:///run/berth/berth.sock`.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// The socket to listen on (unix://PATH).
    #[arg(short = 'H', long = "host", default_value = DEFAULT_HOST)]
    pub host: String,
    /// Where runtime state (sockets, shims) lives.
    #[arg(long, default_value = "/run/berth")]
    pub exec_root: PathBuf,
}

pub fn main(data_root: PathBuf, args: DaemonArgs) -> ExitCode {
    match run(data_root, args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth daemon: {e}");
            ExitCode::from(crate::image::EXIT_ERROR)
        }
    }
}

/// Binds `path`, replacing a stale socket but never a live daemon's.
fn bind(path: &Path) -> Result<std::os::unix::net::UnixListener, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!(
                "another daemon is listening on {}; stop it or give -H another socket",
                path.display()
            ));
        }
        std::fs::remove_file(path)
            .map_err(|e| format!("remove the stale socket {}: {e}", path.display()))?;
    }
    let listener = std::os::unix::net::UnixListener::bind(path)
        .map_err(|e| format!("listen on {}: {e}", path.display()))?;
    // Owner and group only, as Docker's socket (root and the docker group).
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("chmod {}: {e}", path.display()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("socket {}: {e}", path.display()))?;
    Ok(listener)
}

fn run(data_root: PathBuf, args: DaemonArgs) -> Result<(), String> {
    let path = args.host.strip_prefix("unix://").ok_or_else(|| {
        format!(
            "unsupported host {:?}: berth listens on unix:// sockets",
            args.host
        )
    })?;
    let path = PathBuf::from(path);
    std::fs::create_dir_all(&data_root)
        .map_err(|e| format!("create {}: {e}", data_root.display()))?;
    std::fs::create_dir_all(&args.exec_root)
        .map_err(|e| format!("create {}: {e}", args.exec_root.display()))?;
    let listener = bind(&path)?;
    let engine = Engine::new(EngineConfig {
        data_root,
        exec_root: args.exec_root,
    });
    crate::raise_nofile();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("start the async runtime: {e}"))?;
    let served = runtime.block_on(async {
        let listener = tokio::net::UnixListener::from_std(listener).map_err(|e| e.to_string())?;
        eprintln!("berth daemon: API listening on {}", path.display());
        berth_engine::serve(listener, engine, crate::terminated())
            .await
            .map_err(|e| e.to_string())
    });
    let _ = std::fs::remove_file(&path);
    served
}
