//! Small helpers for reading and writing cgroup control files, each turning
//! an I/O failure into a [`CgroupError`] that names the file and the value.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::error::CgroupError;

/// Writes `value` to `dir/file` with a single `write(2)`.
///
/// Control files treat every write as one command, so the value must not be
/// split; the file is never created, because a missing control file means the
/// controller or feature is absent and that must surface as an error.
pub(super) fn write(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    let path = dir.join(file);
    let err = |source| CgroupError::Write {
        path: path.clone(),
        value: value.to_owned(),
        source,
    };
    let mut f = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .map_err(err)?;
    let n = f.write(value.as_bytes()).map_err(err)?;
    if n != value.len() {
        return Err(err(io::Error::from(io::ErrorKind::WriteZero)));
    }
    Ok(())
}

/// Reads `dir/file` whole.
pub(super) fn read(dir: &Path, file: &str) -> Result<String, CgroupError> {
    let path = dir.join(file);
    fs::read_to_string(&path).map_err(|source| CgroupError::Read { path, source })
}

/// Reads `dir/file`, or `None` when it does not exist (absent controller or a
/// kernel without that feature).
pub(super) fn read_opt(dir: &Path, file: &str) -> Result<Option<String>, CgroupError> {
    let path = dir.join(file);
    match fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read { path, source }),
    }
}

/// Whether `dir/file` exists.
pub(super) fn exists(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}

/// Parses one number from a control file; "max" means unlimited and reads as
/// `u64::MAX`, and v1's "-1"-style negative values likewise.
pub(super) fn parse_u64(path: &Path, text: &str) -> Result<u64, CgroupError> {
    let t = text.trim();
    if t == "max" || t.starts_with('-') {
        return Ok(u64::MAX);
    }
    t.parse().map_err(|_| CgroupError::Parse {
        path: path.to_owned(),
        value: t.to_owned(),
        expected: "an unsigned integer or \"max\"",
    })
}

/// Reads a single-number file; absent files read as 0 so that statistics of
/// missing controllers are zero rather than errors.
pub(super) fn read_u64_or_zero(dir: &Path, file: &str) -> Result<u64, CgroupError> {
    match read_opt(dir, file)? {
        Some(s) if !s.trim().is_empty() => parse_u64(&dir.join(file), &s),
        _ => Ok(0),
    }
}

/// Parses "key value" lines (memory.stat, cpu.stat, memory.events...).
/// Lines whose value is not a number are skipped: kernels add fields freely.
pub(super) fn parse_flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let key = it.next()?;
            let value = it.next()?.parse().ok()?;
            Some((key.to_owned(), value))
        })
        .collect()
}

/// Reads a flat-keyed file, empty when absent.
pub(super) fn read_flat_keyed(
    dir: &Path,
    file: &str,
) -> Result<BTreeMap<String, u64>, CgroupError> {
    Ok(read_opt(dir, file)?
        .map(|s| parse_flat_keyed(&s))
        .unwrap_or_default())
}

/// Parses a `cgroup.procs` file.
pub(super) fn parse_pids(path: &Path, text: &str) -> Result<Vec<i32>, CgroupError> {
    text.split_whitespace()
        .map(|w| {
            w.parse().map_err(|_| CgroupError::Parse {
                path: path.to_owned(),
                value: w.to_owned(),
                expected: "a process id",
            })
        })
        .collect()
}

/// Every directory below `dir` (not `dir` itself), parents before children.
/// A missing `dir` yields nothing: the cgroup is already gone.
pub(super) fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let entries = match fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(CgroupError::Read { path: d, source }),
        };
        for entry in entries {
            let entry = entry.map_err(|source| CgroupError::Read {
                path: d.clone(),
                source,
            })?;
            // Control files are regular files; only directories are
            // sub-cgroups. file_type() does not follow symlinks, which
            // cgroupfs never has.
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                out.push(entry.path());
                stack.push(entry.path());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed_skips_junk() {
        let m = parse_flat_keyed("a 1\nb x\n\nc 3 extra\n");
        assert_eq!(m.get("a"), Some(&1));
        assert_eq!(m.get("b"), None);
        assert_eq!(m.get("c"), Some(&3));
    }

    #[test]
    fn u64_max_and_negative() {
        let p = Path::new("/x");
        assert_eq!(parse_u64(p, "max\n").unwrap(), u64::MAX);
        assert_eq!(parse_u64(p, "-1").unwrap(), u64::MAX);
        assert_eq!(parse_u64(p, " 42 ").unwrap(), 42);
        assert!(parse_u64(p, "abc").is_err());
    }

    #[test]
    fn write_refuses_to_create() {
        let d = tempfile::tempdir().unwrap();
        let e = write(d.path(), "nope", "1").unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        assert!(e.to_string().contains("\"1\""), "{e}");
        fs::write(d.path().join("yes"), "old-long-value\n").unwrap();
        write(d.path(), "yes", "2").unwrap();
        assert_eq!(fs::read_to_string(d.path().join("yes")).unwrap(), "2");
    }

    #[test]
    fn subdirs_parents_first() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("a/b/c")).unwrap();
        fs::write(d.path().join("a/file"), "").unwrap();
        let s = subdirs(d.path()).unwrap();
        assert_eq!(s.len(), 3);
        let pos = |p: &str| s.iter().position(|x| x.ends_with(p)).unwrap();
        assert!(pos("a") < pos("a/b") && pos("a/b") < pos("a/b/c"));
        assert!(subdirs(&d.path().join("missing")).unwrap().is_empty());
    }
}
