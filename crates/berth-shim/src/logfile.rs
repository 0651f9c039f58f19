//! Docker's json-file log format: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"RFC 3339 nanos"}`, in a file
//! rotated to `NAME.1`, `NAME.2`, ... once it passes `max-size`.

use std::fs::File;
use std::io::{self, BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A line longer than this is logged in pieces, as Docker does (16 KiB).
pub const MAX_LINE: usize = 16 * 1024;

/// One log entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    /// The text, with its newline when it ended one.
    pub log: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// When it was written, RFC 3339 with nanoseconds.
    pub time: String,
}

/// Appends entries to a json-file log, rotating it.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    max_files: u32,
}

fn open_append(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

/// The `n`th rotated file of `path` (`path.n`).
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(format!(".{n}"));
    PathBuf::from(p)
}

impl LogWriter {
    /// Opens (creating) the log at `path`; `max_size` 0 never rotates.
    pub fn open(path: &Path, max_size: u64, max_files: u32) -> io::Result<LogWriter> {
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            path: path.to_owned(),
            file,
            size,
            max_size,
            max_files: max_files.max(1),
        })
    }

    /// Logs `text` (one line or a piece of one) from `stream`.
    pub fn write(&mut self, stream: &str, text: &[u8]) -> io::Result<()> {
        let entry = Entry {
            log: String::from_utf8_lossy(text).into_owned(),
            stream: stream.to_owned(),
            time: berth_model::time::now_rfc3339_nanos(),
        };
        let mut line = serde_json::to_vec(&entry).expect("entries serialise");
        line.push(b'\n');
        if self.max_size > 0 && self.size > 0 && self.size + line.len() as u64 > self.max_size {
            self.rotate()?;
        }
        self.file.write_all(&line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.max_files > 1 {
            for n in (1..self.max_files - 1).rev() {
                let from = rotated(&self.path, n);
                if from.exists() {
                    std::fs::rename(&from, rotated(&self.path, n + 1))?;
                }
            }
            std::fs::rename(&self.path, rotated(&self.path, 1))?;
            self.file = open_append(&self.path)?;
        } else {
            self.file.set_len(0)?;
        }
        self.size = 0;
        Ok(())
    }
}

/// The log files of `path`, oldest first: `path.N` ... `path.1`, `path`.
pub fn files(path: &Path) -> Vec<PathBuf> {
    let mut older = Vec::new();
    let mut n = 1;
    loop {
        let p = rotated(path, n);
        if !p.exists() {
            break;
        }
        older.push(p);
        n += 1;
    }
    older.reverse();
    older.push(path.to_owned());
    older
}

/// Every entry of the log at `path`, rotated files included, oldest first;
/// lines that do not parse (a torn last line) are skipped.
pub fn read_all(path: &Path) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for file in files(path) {
        entries.append(&mut read_all_file(&file)?);
    }
    Ok(entries)
}

/// Every entry of one log file (none if it does not exist).
pub fn read_all_file(file: &Path) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let f = match File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(entries),
        Err(e) => return Err(e),
    };
    for line in io::BufReader::new(f).split(b'\n') {
        if let Ok(e) = serde_json::from_slice::<Entry>(&line?) {
            entries.push(e);
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut w = LogWriter::open(&path, 200, 3).unwrap();
        for i in 0..20 {
            w.write("stdout", format!("line {i}\n").as_bytes()).unwrap();
        }
        w.write("stderr", b"\xffbad utf8").unwrap();
        let entries = read_all(&path).unwrap();
        // Three files of at most 200 bytes hold the newest entries only.
        assert!(
            entries.len() < 21 && entries.len() >= 4,
            "{}",
            entries.len()
        );
        assert_eq!(entries.last().unwrap().log, "\u{fffd}bad utf8");
        assert_eq!(entries.last().unwrap().stream, "stderr");
        assert!(rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists());
        for f in files(&path) {
            assert!(std::fs::metadata(&f).unwrap().len() <= 200);
        }
        let logs: Vec<&str> = entries.iter().map(|e| e.log.as_str()).collect();
        assert!(logs.contains(&"line 19\n"));
    }

    #[test]
    fn one_file_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut w = LogWriter::open(&path, 100, 1).unwrap();
        for _ in 0..10 {
            w.write("stdout", b"0123456789\n").unwrap();
        }
        assert!(std::fs::metadata(&path).unwrap().len() <= 100);
        assert!(!rotated(&path, 1).exists());
    }
}
