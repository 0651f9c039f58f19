//! The daemon's side of a shim: spawn it, then talk to it.

use std::io;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::protocol::{ExitRecord, MAX_REQUEST, Reply, Request, ShimConfig, ShimDir};

/// A shim, by its directory.
#[derive(Debug, Clone)]
pub struct ShimClient {
    dir: ShimDir,
}

/// Starts `exe shim DIR` for `config` (written to `DIR/config.json`) and
/// returns once the container is created: its init's pid, or why it
/// could not be created.
pub async fn spawn(exe: &Path, dir: &Path, config: &ShimConfig) -> Result<i32, String> {
    let shim_dir = ShimDir(dir.to_owned());
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    for stale in [shim_dir.exit(), shim_dir.socket()] {
        let _ = std::fs::remove_file(stale);
    }
    // Under the exec root (/run): rebuilt at every start, gone with a
    // host crash, so not fsynced.
    berth_sys::fs::replace_file(
        &shim_dir.config(),
        &serde_json::to_vec_pretty(config).expect("configs serialise"),
        0o600,
    )
    .map_err(|e| format!("write {}: {e}", shim_dir.config().display()))?;
    let out = tokio::process::Command::new(exe)
        .arg("shim")
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(false)
        .output()
        .await
        .map_err(|e| format!("start the shim {}: {e}", exe.display()))?;
    if out.status.success() {
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| "the shim did not report the container's pid".to_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        Err(if err.is_empty() {
            format!("the shim failed ({})", out.status)
        } else {
            err
        })
    }
}

impl ShimClient {
    /// The shim whose directory is `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> ShimClient {
        ShimClient {
            dir: ShimDir(dir.into()),
        }
    }

    /// The shim's directory.
    pub fn dir(&self) -> &ShimDir {
        &self.dir
    }

    async fn connect(&self, request: &Request) -> io::Result<(UnixStream, Reply)> {
        // The connect completes at once (a listening unix socket), so the
        // directory's descriptor need not outlive this call.
        let std_stream = self
            .dir
            .with_socket_path(|p| std::os::unix::net::UnixStream::connect(p))??;
        std_stream.set_nonblocking(true)?;
        let mut stream = UnixStream::from_std(std_stream)?;
        let mut line = serde_json::to_vec(request).expect("requests serialise");
        line.push(b'\n');
        stream.write_all(&line).await?;
        // Byte by byte, so nothing after the answer is consumed.
        let mut answer = Vec::new();
        loop {
            let b = stream.read_u8().await?;
            if b == b'\n' {
                break;
            }
            answer.push(b);
            if answer.len() > MAX_REQUEST {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the shim's answer is too long",
                ));
            }
        }
        let reply: Reply = serde_json::from_slice(&answer)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok((stream, reply))
    }

    async fn simple(&self, request: Request) -> Result<Reply, String> {
        let (_, reply) = self
            .connect(&request)
            .await
            .map_err(|e| format!("the container's shim does not answer: {e}"))?;
        match reply.error {
            Some(e) => Err(e),
            None => Ok(reply),
        }
    }

    /// Whether the shim answers.
    pub async fn alive(&self) -> bool {
        self.connect(&Request::State).await.is_ok()
    }

    /// Starts the created container.
    pub async fn start(&self) -> Result<(), String> {
        self.simple(Request::Start).await.map(drop)
    }

    /// Sends `signal` to the container's init.
    pub async fn kill(&self, signal: i32) -> Result<(), String> {
        self.simple(Request::Kill { signal }).await.map(drop)
    }

    /// Resizes the container's terminal, or the exec `exec`'s.
    pub async fn resize(&self, height: u16, width: u16, exec: Option<i32>) -> Result<(), String> {
        self.simple(Request::Resize {
            height,
            width,
            exec,
        })
        .await
        .map(drop)
    }

    /// Runs `process` (an OCI process) in the container: its pid, and the
    /// connection that carries its stdio (see [`Request::Exec`]).
    pub async fn exec(
        &self,
        process: serde_json::Value,
        stdin: bool,
    ) -> Result<(i32, UnixStream), String> {
        let (stream, reply) = self
            .connect(&Request::Exec { process, stdin })
            .await
            .map_err(|e| format!("the container's shim does not answer: {e}"))?;
        match (reply.error, reply.pid) {
            (Some(e), _) => Err(e),
            (None, Some(pid)) => Ok((pid, stream)),
            (None, None) => Err("the shim did not report the exec's pid".into()),
        }
    }

    /// The init's pid, and the exit once there is one.
    pub async fn state(&self) -> Result<Reply, String> {
        self.simple(Request::State).await
    }

    /// Waits for the container to exit. When the shim is gone (it exits
    /// after the container), the exit it recorded.
    pub async fn wait(&self) -> Result<ExitRecord, String> {
        // When the shim is gone (it exits once the container has and it
        // has answered), what it recorded.
        if let Ok((_, reply)) = self.connect(&Request::Wait).await {
            if let Some(exit) = reply.exit {
                return Ok(exit);
            }
            if let Some(e) = reply.error {
                return Err(e);
            }
        }
        self.dir.read_exit().ok_or_else(|| {
            format!(
                "the container's shim in {} is gone and recorded no exit",
                self.dir.path().display()
            )
        })
    }

    /// Attaches to the container's stdio; the stream then carries it (see
    /// [`crate::protocol`]).
    pub async fn attach(
        &self,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<UnixStream, String> {
        let (stream, reply) = self
            .connect(&Request::Attach {
                stdin,
                stdout,
                stderr,
            })
            .await
            .map_err(|e| format!("the container's shim does not answer: {e}"))?;
        match reply.error {
            Some(e) => Err(e),
            None => Ok(stream),
        }
    }
}
