//! runc-style log lines: to `--log` (appended) or stderr, text or JSON.
//! containerd reads the JSON lines back to explain a failed call.

use std::io::Write;
use std::path::PathBuf;

use super::cli::LogFormat;

/// Where and how to log.
pub struct Logger {
    /// The `--log` file, if any.
    pub file: Option<PathBuf>,
    /// The format.
    pub format: LogFormat,
    /// Whether debug lines are written.
    pub debug: bool,
}

impl Logger {
    /// Logs an error: always to stderr as one line, and to the log file.
    pub fn error(&self, msg: &str) {
        eprintln!("berth: {msg}");
        if self.file.is_some() {
            self.write("error", msg);
        }
    }

    /// Logs a warning.
    pub fn warn(&self, msg: &str) {
        if self.file.is_some() {
            self.write("warning", msg);
        } else {
            eprintln!("berth: warning: {msg}");
        }
    }

    /// Logs a debug line when `--debug` is set.
    pub fn debug(&self, msg: &str) {
        if self.debug {
            self.write("debug", msg);
        }
    }

    fn write(&self, level: &str, msg: &str) {
        let time = berth_runtime::state::now_rfc3339();
        let line = match self.format {
            LogFormat::Json => {
                serde_json::json!({ "level": level, "msg": msg, "time": time }).to_string()
            }
            LogFormat::Text => format!("time={time:?} level={level} msg={msg:?}"),
        };
        match &self.file {
            Some(p) => {
                if let Ok(mut f) = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                {
                    let _ = writeln!(f, "{line}");
                }
            }
            None => eprintln!("{line}"),
        }
    }
}
