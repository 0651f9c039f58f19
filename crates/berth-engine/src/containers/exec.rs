//! `docker exec`: processes run in a running container through its shim.
//!
//! Exec instances live in the daemon's memory, as Docker's do: created by
//! `POST /containers/{id}/exec`, run by `POST /exec/{id}/start` (attached
//! over an upgraded connection, or detached), inspected for their exit code
//! by `GET /exec/{id}/json`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_shim::protocol::{frame_header, stream};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::stdio::DetachScanner;
use super::{Container, Containers};
use crate::EngineError;
use berth_model::ErrorKind;

/// `POST /containers/{id}/exec`'s body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecConfig {
    /// Feed the process's stdin.
    pub attach_stdin: bool,
    /// Send its stdout.
    pub attach_stdout: bool,
    /// Send its stderr.
    pub attach_stderr: bool,
    /// A terminal.
    pub tty: bool,
    /// The command.
    pub cmd: Option<Vec<String>>,
    /// Extra environment.
    pub env: Option<Vec<String>>,
    /// The working directory.
    pub working_dir: Option<String>,
    /// `user[:group]`.
    pub user: Option<String>,
    /// Every capability.
    pub privileged: bool,
    /// The detach sequence.
    pub detach_keys: Option<String>,
}

/// One exec.
#[derive(Debug)]
pub struct ExecInstance {
    /// Its id.
    pub id: String,
    /// The container it runs in.
    pub container: Arc<Container>,
    /// What to run.
    pub config: ExecConfig,
    state: Mutex<ExecState>,
}

#[derive(Debug, Default, Clone)]
struct ExecState {
    started: bool,
    running: bool,
    pid: i32,
    exit_code: Option<i32>,
}

/// The execs of a daemon.
#[derive(Debug, Default)]
pub struct Execs {
    all: Mutex<HashMap<String, Arc<ExecInstance>>>,
}

impl Execs {
    /// Finds an exec by id.
    pub fn get(&self, id: &str) -> Result<Arc<ExecInstance>, EngineError> {
        self.all
            .lock()
            .expect("execs lock")
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::not_found(format!("No such exec instance: {id}")))
    }

    /// Forgets the execs of a removed container.
    pub fn forget(&self, container: &str) {
        self.all
            .lock()
            .expect("execs lock")
            .retain(|_, e| e.container.id != container);
    }
}

impl Containers {
    /// `POST /containers/{id}/exec`.
    pub fn exec_create(
        &self,
        c: &Arc<Container>,
        config: ExecConfig,
    ) -> Result<String, EngineError> {
        if !c.running() {
            return Err(EngineError {
                kind: ErrorKind::Conflict,
                message: format!("Container {} is not running", c.id),
            });
        }
        if c.record().state.paused {
            return Err(EngineError {
                kind: ErrorKind::Conflict,
                message: format!(
                    "Container {} is paused, unpause the container before exec",
                    c.id
                ),
            });
        }
        if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(EngineError::bad_request("No exec command specified"));
        }
        let cmd = config.cmd.clone().unwrap_or_default().join(" ");
        let id = super::random_hex(32);
        let e = Arc::new(ExecInstance {
            id: id.clone(),
            container: c.clone(),
            config,
            state: Mutex::new(ExecState::default()),
        });
        self.execs
            .all
            .lock()
            .expect("execs lock")
            .insert(id.clone(), e);
        self.event(c, &format!("exec_create: {cmd}"), &[("execID", id.clone())]);
        Ok(id)
    }

    /// The OCI process of `e`: the container's environment, user and
    /// capabilities under the exec's own settings.
    fn exec_process(&self, e: &ExecInstance, tty: bool) -> Result<Value, EngineError> {
        process_for(&e.container, &e.config, tty)
    }

    /// Starts `e`: the shim's stdio connection for it.
    async fn exec_start_inner(
        &self,
        e: &Arc<ExecInstance>,
        tty: bool,
    ) -> Result<tokio::net::UnixStream, EngineError> {
        {
            let mut st = e.state.lock().expect("exec lock");
            if st.started {
                return Err(EngineError {
                    kind: ErrorKind::Conflict,
                    message: format!("Error: Exec command {} has already run", e.id),
                });
            }
            st.started = true;
        }
        if !e.container.running() {
            return Err(EngineError {
                kind: ErrorKind::Conflict,
                message: format!("Container {} is not running", e.container.id),
            });
        }
        let started = match self.exec_process(e, tty) {
            Ok(process) => self
                .shim(&e.container)
                .exec(process, e.config.attach_stdin)
                .await
                .map_err(|m| EngineError {
                    kind: ErrorKind::Internal,
                    message: format!("OCI runtime exec failed: {}", m),
                }),
            Err(err) => Err(err),
        };
        let (pid, stream) = match started {
            Ok(x) => x,
            Err(mut err) => {
                // Docker's codes: 127 not found, else 126 cannot invoke.
                let code = match super::start_failure_code(&err.message) {
                    128 => 126,
                    c => c,
                };
                e.finished(code);
                if code != 126 || err.kind == ErrorKind::Internal {
                    err.kind = ErrorKind::InvalidArgument;
                }
                return Err(err);
            }
        };
        {
            let mut st = e.state.lock().expect("exec lock");
            st.running = true;
            st.pid = pid;
        }
        let cmd = e.config.cmd.clone().unwrap_or_default().join(" ");
        self.event(
            &e.container,
            &format!("exec_start: {cmd}"),
            &[("execID", e.id.clone())],
        );
        Ok(stream)
    }

    /// `POST /exec/{id}/start` detached: runs it, draining its output.
    pub async fn exec_start_detached(
        &self,
        e: &Arc<ExecInstance>,
        tty: bool,
    ) -> Result<(), EngineError> {
        let stream = self.exec_start_inner(e, tty).await?;
        let e = e.clone();
        tokio::spawn(async move {
            let (r, _w) = stream.into_split();
            relay(r, tokio::io::sink(), &e, tty, false, false).await;
        });
        Ok(())
    }

    /// `POST /exec/{id}/start` attached: runs it over `io` once upgraded.
    pub async fn exec_start_attached(
        &self,
        e: &Arc<ExecInstance>,
        tty: bool,
    ) -> Result<tokio::net::UnixStream, EngineError> {
        self.exec_start_inner(e, tty).await
    }

    /// Resizes an exec's terminal.
    pub async fn exec_resize(&self, e: &ExecInstance, h: u16, w: u16) -> Result<(), EngineError> {
        let pid = e.state.lock().expect("exec lock").pid;
        if pid == 0 {
            return Err(EngineError {
                kind: ErrorKind::Conflict,
                message: format!("exec {} is not running", e.id),
            });
        }
        self.shim(&e.container)
            .resize(h, w, Some(pid))
            .await
            .map_err(EngineError::internal)
    }
}

impl ExecInstance {
    /// `GET /exec/{id}/json`.
    pub fn inspect(&self) -> Value {
        let st = self.state.lock().expect("exec lock").clone();
        let cmd = self.config.cmd.clone().unwrap_or_default();
        json!({
            "ID": self.id,
            "Running": st.running,
            "ExitCode": st.exit_code,
            "ProcessConfig": {
                "tty": self.config.tty,
                "entrypoint": cmd.first().cloned().unwrap_or_default(),
                "arguments": cmd.get(1..).unwrap_or_default(),
                "privileged": self.config.privileged,
                "user": self.config.user.clone().unwrap_or_default(),
            },
            "OpenStdin": self.config.attach_stdin,
            "OpenStderr": self.config.attach_stderr,
            "OpenStdout": self.config.attach_stdout,
            "CanRemove": false,
            "ContainerID": self.container.id,
            "DetachKeys": self.config.detach_keys.clone().unwrap_or_default(),
            "Pid": st.pid,
        })
    }

    fn finished(&self, code: i32) {
        let mut st = self.state.lock().expect("exec lock");
        st.running = false;
        st.exit_code = Some(code);
    }
}

/// Copies the shim's framed exec output to `to` (raw for a terminal),
/// records the exit code from the exit frame, and returns.
async fn relay(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    e: &ExecInstance,
    tty: bool,
    want_out: bool,
    want_err: bool,
) {
    let mut code = None;
    let mut gone = false;
    loop {
        let Some((s, data)) = super::stdio::read_frame(&mut from).await else {
            break;
        };
        let len = data.len();
        match s {
            stream::EXIT if len == 4 => {
                code = Some(i32::from_be_bytes([data[0], data[1], data[2], data[3]]));
                break;
            }
            s => {
                let wanted = if s == stream::STDERR {
                    want_err
                } else {
                    want_out
                };
                if gone || !wanted {
                    continue;
                }
                let written = if tty {
                    to.write_all(&data).await
                } else {
                    match to.write_all(&frame_header(s, len)).await {
                        Ok(()) => to.write_all(&data).await,
                        Err(err) => Err(err),
                    }
                };
                // A client that went away stops the copy, not the exec.
                gone = written.is_err();
            }
        }
    }
    // The exit code first: the docker CLI reads it once the stream ends.
    e.finished(code.unwrap_or(255));
    let _ = to.flush().await;
    let _ = to.shutdown().await;
}

/// Runs an attached exec session: the client's input to the exec, its
/// output to the client.
pub async fn session(
    io: impl AsyncRead + AsyncWrite + Send + 'static,
    e: Arc<ExecInstance>,
    shim: tokio::net::UnixStream,
    tty: bool,
    detach_keys: Vec<u8>,
) {
    let (mut client_r, client_w) = tokio::io::split(io);
    let (shim_r, mut shim_w) = shim.into_split();
    let stdin = e.config.attach_stdin;
    let input = async move {
        if !stdin {
            return;
        }
        let mut scanner = DetachScanner::new(detach_keys);
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match client_r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let (data, detach) = scanner.scan(&buf[..n]);
                    if shim_w.write_all(&data).await.is_err() || detach {
                        break;
                    }
                }
            }
        }
        let _ = shim_w.shutdown().await;
    };
    let input = tokio::spawn(input);
    let (out, err) = (e.config.attach_stdout, e.config.attach_stderr);
    relay(shim_r, client_w, &e, tty, out, err).await;
    input.abort();
}

/// Tells an attached client why its exec did not start, on its stderr.
pub async fn report_failure(mut io: impl AsyncWrite + Unpin, tty: bool, message: &str) {
    let text = format!("{message}\r\n");
    if !tty {
        let _ = io
            .write_all(&frame_header(stream::STDERR, text.len()))
            .await;
    }
    let _ = io.write_all(text.as_bytes()).await;
    let _ = io.shutdown().await;
}

/// The OCI process of an exec (or a health probe) in `c`: the container's
/// environment, user and capabilities under `config`'s own settings.
pub(super) fn process_for(
    c: &Container,
    config: &ExecConfig,
    tty: bool,
) -> Result<Value, EngineError> {
    let rec = c.record();

    let user_spec = config
        .user
        .clone()
        .filter(|u| !u.is_empty())
        .unwrap_or(rec.config.user.clone());
    let user =
        super::spec::resolve_user(&c.rootfs(), &user_spec).map_err(EngineError::bad_request)?;
    let mut env = rec.config.env.clone();
    if !env.iter().any(|v| v.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    env.push(format!("HOSTNAME={}", rec.config.hostname));
    if tty {
        env.push("TERM=xterm".into());
    }
    env.extend(config.env.clone().unwrap_or_default());
    if !env.iter().any(|v| v.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home));
    }
    let mut host = rec.host_config.clone();
    host.privileged |= config.privileged;
    let caps = super::spec::capabilities(&host).map_err(EngineError::bad_request)?;
    let cwd = config
        .working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or(if rec.config.working_dir.is_empty() {
            "/".into()
        } else {
            rec.config.working_dir.clone()
        });
    let no_new_privs = host
        .security_opt
        .iter()
        .any(|o| o.starts_with("no-new-privileges") && !o.ends_with("false"));
    Ok(json!({
        "terminal": tty,
        "user": { "uid": user.uid, "gid": user.gid, "additionalGids": user.groups },
        "args": config.cmd.clone().unwrap_or_default(),
        "env": env,
        "cwd": cwd,
        "capabilities": { "bounding": caps, "effective": caps, "permitted": caps },
        "noNewPrivileges": no_new_privs,
    }))
}
