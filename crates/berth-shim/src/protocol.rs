//! What the daemon and a shim say to each other.
//!
//! A connection to `shim.sock` opens with one JSON [`Request`] on one line;
//! the shim answers one JSON [`Reply`] line. After a successful `attach` the
//! connection carries the container's stdio: output as Docker's
//! multiplexed frames (8-byte header: stream, three zero bytes, big-endian
//! length) or, with a terminal, raw; input as raw bytes, and a half-close
//! of the client's side ends the container's stdin when it was opened
//! with `StdinOnce`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The longest request line the shim reads.
pub const MAX_REQUEST: usize = 64 * 1024;

/// How the daemon sets a shim up (`DIR/config.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ShimConfig {
    /// The container's id (and its id in the runtime).
    pub id: String,
    /// The OCI bundle (config.json and a mounted rootfs).
    pub bundle: PathBuf,
    /// The runtime's state root.
    pub runtime_root: PathBuf,
    /// The json-file log, or none (log driver `none`).
    pub log_path: Option<PathBuf>,
    /// Rotate the log past this many bytes (0: never).
    #[serde(default)]
    pub log_max_size: u64,
    /// How many log files to keep, the current one included (at least 1).
    #[serde(default = "one")]
    pub log_max_files: u32,
    /// Give the container a terminal.
    pub tty: bool,
    /// Keep the container's stdin open for attached clients.
    pub open_stdin: bool,
    /// Close the container's stdin when the first attached client closes
    /// its input.
    pub stdin_once: bool,
}

fn one() -> u32 {
    1
}

/// A request, the first line of a connection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Start the created container.
    Start,
    /// Stream the container's stdio on this connection.
    Attach {
        /// Forward this connection's input to the container's stdin.
        stdin: bool,
        /// Send stdout.
        stdout: bool,
        /// Send stderr.
        stderr: bool,
    },
    /// Answer once the container has exited.
    Wait,
    /// Send a signal to the container's init.
    Kill {
        /// The signal number.
        signal: i32,
    },
    /// Resize the container's terminal (or an exec's).
    Resize {
        /// Rows.
        height: u16,
        /// Columns.
        width: u16,
        /// The exec's pid, for an exec's terminal.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exec: Option<i32>,
    },
    /// Run another process in the container; the connection then carries
    /// its stdio, always framed (stdout for a terminal), and ends with an
    /// [`stream::EXIT`] frame holding its exit code (4 bytes, big-endian).
    Exec {
        /// The OCI `process`.
        process: serde_json::Value,
        /// Give it a stdin fed from this connection.
        stdin: bool,
    },
    /// The init's pid and whether it still runs.
    State,
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Reply {
    /// Why the request failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The container's init pid (`state`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// How the container ended (`wait`, and `state` once it has).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitRecord>,
}

impl Reply {
    /// A failure.
    pub fn error(message: impl Into<String>) -> Reply {
        Reply {
            error: Some(message.into()),
            ..Reply::default()
        }
    }
}

/// How a container ended (`DIR/exit.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExitRecord {
    /// The exit code, or 128 + the signal that killed it.
    pub exit_code: i32,
    /// When, RFC 3339 with nanoseconds.
    pub finished_at: String,
    /// Whether the kernel's OOM killer killed a process of the container.
    #[serde(default)]
    pub oom_killed: bool,
}

/// The files of a shim directory.
#[derive(Debug, Clone)]
pub struct ShimDir(pub PathBuf);

impl ShimDir {
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// `config.json`.
    pub fn config(&self) -> PathBuf {
        self.0.join("config.json")
    }
    /// `shim.sock`.
    pub fn socket(&self) -> PathBuf {
        self.0.join("shim.sock")
    }
    /// `exit.json`.
    pub fn exit(&self) -> PathBuf {
        self.0.join("exit.json")
    }
    /// `shim.pid`, the shim's own pid.
    pub fn shim_pid(&self) -> PathBuf {
        self.0.join("shim.pid")
    }
    /// Runs `f` with a path to `shim.sock` short enough for a socket
    /// address (108 bytes): through a descriptor of the directory, since
    /// data roots can be deep and ids are 64 characters.
    pub fn with_socket_path<T>(&self, f: impl FnOnce(&Path) -> T) -> std::io::Result<T> {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::OpenOptionsExt;
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&self.0)?;
        let short = PathBuf::from(format!("/proc/self/fd/{}/shim.sock", dir.as_raw_fd()));
        let result = f(&short);
        drop(dir);
        Ok(result)
    }

    /// The recorded exit, if the container has ended.
    pub fn read_exit(&self) -> Option<ExitRecord> {
        serde_json::from_slice(&std::fs::read(self.exit()).ok()?).ok()
    }
}

/// Docker's stream numbers in a multiplexed frame.
pub mod stream {
    /// stdin (never sent).
    pub const STDIN: u8 = 0;
    /// stdout.
    pub const STDOUT: u8 = 1;
    /// stderr.
    pub const STDERR: u8 = 2;
    /// The end of an exec: its exit code (shim to daemon only).
    pub const EXIT: u8 = 3;
}

/// The 8-byte header of a multiplexed frame of `len` bytes on `stream`.
pub fn frame_header(stream: u8, len: usize) -> [u8; 8] {
    let l = (len as u32).to_be_bytes();
    [stream, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_tagged_lines() {
        let r = Request::Attach {
            stdin: true,
            stdout: true,
            stderr: false,
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(
            s,
            r#"{"op":"attach","stdin":true,"stdout":true,"stderr":false}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&s).unwrap(), r);
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"op":"kill","signal":9}"#).unwrap(),
            Request::Kill { signal: 9 }
        );
    }

    #[test]
    fn frame_headers_are_dockers() {
        assert_eq!(frame_header(stream::STDERR, 258), [2, 0, 0, 0, 0, 0, 1, 2]);
    }
}
