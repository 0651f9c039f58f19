//! `GET /containers/{id}/logs`: the json-file log, filtered, tailed, and
//! followed while the container runs.

use std::io::BufRead;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_shim::logfile::{self, Entry};
use berth_shim::protocol::{frame_header, stream};
use bytes::Bytes;

use super::Container;

/// What `logs` asks for.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// stdout lines.
    pub stdout: bool,
    /// stderr lines.
    pub stderr: bool,
    /// Keep streaming while the container runs.
    pub follow: bool,
    /// Only entries at or after this unix time.
    pub since: Option<f64>,
    /// Only entries before this unix time.
    pub until: Option<f64>,
    /// Prefix each line with its time.
    pub timestamps: bool,
    /// Only the last N entries.
    pub tail: Option<usize>,
}

/// Parses `since`/`until`: unix seconds with an optional fraction
/// (`1700000000.5`), or RFC 3339; 0 or empty is none.
pub fn parse_time(s: &str) -> Option<f64> {
    if s.is_empty() || s == "0" {
        return None;
    }
    if let Ok(f) = s.parse::<f64>() {
        return Some(f);
    }
    entry_time(s)
}

/// The unix time of an RFC 3339 timestamp with nanoseconds.
fn entry_time(t: &str) -> Option<f64> {
    let secs = crate::images::unix_seconds(t)? as f64;
    let frac = t
        .split_once('.')
        .map(|(_, f)| f.trim_end_matches(|c: char| !c.is_ascii_digit()))
        .map(|digits| {
            let d: String = digits.chars().take_while(char::is_ascii_digit).collect();
            format!("0.{d}").parse::<f64>().unwrap_or(0.0)
        })
        .unwrap_or(0.0);
    Some(secs + frac)
}

fn keep(e: &Entry, o: &LogOptions) -> bool {
    let stream_ok = if e.stream == "stderr" {
        o.stderr
    } else {
        o.stdout
    };
    if !stream_ok {
        return false;
    }
    if o.since.is_some() || o.until.is_some() {
        let t = entry_time(&e.time).unwrap_or(0.0);
        if o.since.is_some_and(|s| t < s) || o.until.is_some_and(|u| t >= u) {
            return false;
        }
    }
    true
}

fn encode(e: &Entry, o: &LogOptions, tty: bool, out: &mut Vec<u8>) {
    let mut text = Vec::with_capacity(e.log.len() + 40);
    if o.timestamps {
        text.extend_from_slice(e.time.as_bytes());
        text.push(b' ');
    }
    text.extend_from_slice(e.log.as_bytes());
    if tty {
        out.extend_from_slice(&text);
    } else {
        let s = if e.stream == "stderr" {
            stream::STDERR
        } else {
            stream::STDOUT
        };
        out.extend_from_slice(&frame_header(s, text.len()));
        out.extend_from_slice(&text);
    }
}

/// A reader that follows the log file across rotations.
struct Follower {
    path: PathBuf,
    file: Option<std::io::BufReader<std::fs::File>>,
    inode: u64,
    partial: Vec<u8>,
}

impl Follower {
    /// New entries since the last call.
    fn read(&mut self) -> Vec<Entry> {
        let mut entries = Vec::new();
        loop {
            if self.file.is_none() {
                match std::fs::File::open(&self.path) {
                    Ok(f) => {
                        self.inode = f.metadata().map(|m| m.ino()).unwrap_or(0);
                        self.file = Some(std::io::BufReader::new(f));
                    }
                    Err(_) => return entries,
                }
            }
            let f = self.file.as_mut().expect("opened");
            loop {
                let mut line = std::mem::take(&mut self.partial);
                match f.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => {
                        self.partial = line;
                        break;
                    }
                    Ok(_) if !line.ends_with(b"\n") => {
                        self.partial = line;
                        break;
                    }
                    Ok(_) => {
                        if let Ok(e) = serde_json::from_slice::<Entry>(&line) {
                            entries.push(e);
                        }
                    }
                }
            }
            // Rotated: the file at the path is another one now.
            let now = std::fs::metadata(&self.path).map(|m| m.ino()).unwrap_or(0);
            if now != 0 && now != self.inode {
                self.file = None;
                self.partial.clear();
                continue;
            }
            return entries;
        }
    }
}

/// The log of `c` as a stream of encoded chunks.
pub fn stream(
    c: Arc<Container>,
    o: LogOptions,
) -> tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        let tty = c.record().config.tty;
        let path = c.log_path();
        let o2 = o.clone();
        let path2 = path.clone();
        // Everything up to now, and where the current file ends.
        let first = tokio::task::spawn_blocking(move || {
            let mut entries = Vec::new();
            let files = logfile::files(&path2);
            let (older, current) = files.split_at(files.len() - 1);
            for f in older {
                if let Ok(mut es) = logfile::read_all_file(f) {
                    entries.append(&mut es);
                }
            }
            let mut follower = Follower {
                path: current[0].clone(),
                file: None,
                inode: 0,
                partial: Vec::new(),
            };
            entries.extend(follower.read());
            entries.retain(|e| keep(e, &o2));
            if let Some(n) = o2.tail {
                let skip = entries.len().saturating_sub(n);
                entries.drain(..skip);
            }
            (entries, follower)
        })
        .await;
        let Ok((entries, mut follower)) = first else {
            return;
        };
        let mut out = Vec::new();
        for e in &entries {
            encode(e, &o, tty, &mut out);
            if out.len() > 64 * 1024
                && tx
                    .send(Ok(Bytes::from(std::mem::take(&mut out))))
                    .await
                    .is_err()
            {
                return;
            }
        }
        if !out.is_empty() && tx.send(Ok(Bytes::from(out))).await.is_err() {
            return;
        }
        if !o.follow {
            return;
        }
        let mut changes = c.watch();
        loop {
            let running = c.running() || c.record().state.restarting;
            let (entries, f) = match tokio::task::spawn_blocking(move || {
                let es = follower.read();
                (es, follower)
            })
            .await
            {
                Ok(x) => x,
                Err(_) => return,
            };
            follower = f;
            let mut out = Vec::new();
            for e in entries.iter().filter(|e| keep(e, &o)) {
                encode(e, &o, tty, &mut out);
            }
            if !out.is_empty() && tx.send(Ok(Bytes::from(out))).await.is_err() {
                return;
            }
            if !running || c.removed() {
                return;
            }
            if o.until
                .is_some_and(|u| berth_model::time::unix_now().as_secs_f64() >= u)
            {
                return;
            }
            // New lines come without a signal; poll briefly, or wake at
            // a state change (the exit).
            let _ = tokio::time::timeout(Duration::from_millis(100), changes.changed()).await;
            if tx.is_closed() {
                return;
            }
        }
    });
    rx
}
