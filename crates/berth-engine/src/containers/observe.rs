//! Looking at containers: `top`, `stats` (from cgroups), `changes` (the
//! writable layer), `export` and the archive endpoints of `docker cp`.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{Container, Containers};
use crate::EngineError;
use berth_model::ErrorKind;

fn not_running(c: &Container) -> EngineError {
    EngineError {
        kind: ErrorKind::Conflict,
        message: format!("Container {} is not running", c.id),
    }
}

impl Containers {
    /// `GET /containers/{id}/top`: `ps` on the host, narrowed to the
    /// container's processes.
    pub async fn top(&self, c: &Container, ps_args: &str) -> Result<Value, EngineError> {
        if !c.running() {
            return Err(not_running(c));
        }
        let root = self.runtime_root.clone();
        let id = c.id.clone();
        let pids = tokio::task::spawn_blocking(move || berth_runtime::ops::info::pids(&root, &id))
            .await
            .map_err(|e| EngineError::internal(e.to_string()))?
            .map_err(|e| EngineError::internal(e.to_string()))?;
        let args: Vec<&str> = ps_args.split_whitespace().collect();
        let out = tokio::process::Command::new("ps")
            .args(if args.is_empty() { vec!["-ef"] } else { args })
            .output()
            .await
            .map_err(|e| EngineError::internal(format!("run ps: {e}")))?;
        if !out.status.success() {
            return Err(EngineError::internal(format!(
                "ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let header = lines.next().unwrap_or_default();
        let titles: Vec<&str> = header.split_whitespace().collect();
        let pid_col = titles
            .iter()
            .position(|t| *t == "PID")
            .ok_or_else(|| EngineError::bad_request("ps output has no PID column"))?;
        let mut processes = Vec::new();
        for line in lines {
            // The last column (the command) may hold spaces.
            let parts: Vec<&str> = line.split_whitespace().collect();
            if parts.len() < titles.len() {
                continue;
            }
            let mut fields: Vec<String> = parts[..titles.len() - 1]
                .iter()
                .map(|p| (*p).to_owned())
                .collect();
            fields.push(parts[titles.len() - 1..].join(" "));
            if fields
                .get(pid_col)
                .and_then(|p| p.parse::<i32>().ok())
                .is_some_and(|p| pids.contains(&p))
            {
                processes.push(fields);
            }
        }
        Ok(json!({ "Titles": titles, "Processes": processes }))
    }

    /// One sample of `GET /containers/{id}/stats`, in Docker's shape.
    pub async fn stats_sample(&self, c: &Container) -> Result<Value, EngineError> {
        let rec = c.record();
        let now = berth_model::time::now_rfc3339_nanos();
        let mut v = json!({
            "read": now, "preread": "0001-01-01T00:00:00Z",
            "id": rec.id, "name": rec.name,
            "num_procs": 0,
            "pids_stats": {}, "blkio_stats": {}, "cpu_stats": { "cpu_usage": { "total_usage": 0 }, "throttling_data": {} },
            "precpu_stats": { "cpu_usage": { "total_usage": 0 }, "throttling_data": {} },
            "memory_stats": {}, "networks": {},
        });
        if !rec.state.running {
            return Ok(v);
        }
        let root = self.runtime_root.clone();
        let id = c.id.clone();
        let stats =
            tokio::task::spawn_blocking(move || berth_runtime::ops::info::stats(&root, &id))
                .await
                .map_err(|e| EngineError::internal(e.to_string()))?
                .map_err(|e| EngineError::internal(e.to_string()))?;
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let system = system_cpu_usage();
        v["cpu_stats"] = json!({
            "cpu_usage": {
                "total_usage": stats.cpu.usage.total,
                "percpu_usage": stats.cpu.usage.percpu,
                "usage_in_kernelmode": stats.cpu.usage.kernel,
                "usage_in_usermode": stats.cpu.usage.user,
            },
            "system_cpu_usage": system,
            "online_cpus": cpus,
            "throttling_data": {
                "periods": stats.cpu.throttling.periods,
                "throttled_periods": stats.cpu.throttling.throttled_periods,
                "throttled_time": stats.cpu.throttling.throttled_time,
            },
        });
        let limit = match stats.memory.usage.limit {
            0 | u64::MAX => host_memory(),
            l if l >= 1 << 62 => host_memory(),
            l => l,
        };
        v["memory_stats"] = json!({
            "usage": stats.memory.usage.usage,
            "max_usage": stats.memory.usage.max,
            "limit": limit,
            "failcnt": stats.memory.usage.failcnt,
            "stats": stats.memory.raw,
        });
        v["pids_stats"] = json!({ "current": stats.pids.current, "limit": stats.pids.limit });
        v["blkio_stats"] = json!({
            "io_service_bytes_recursive": stats.blkio.io_service_bytes_recursive.iter().map(|e| json!({
                "major": e.major, "minor": e.minor, "op": e.op, "value": e.value,
            })).collect::<Vec<_>>(),
        });
        Ok(v)
    }

    /// A view of the container's files: its mounted root while it runs,
    /// else its snapshot mounted at a directory of its own until dropped.
    pub fn view(&self, c: &Container) -> Result<RootfsView, EngineError> {
        if c.running() {
            return Ok(RootfsView {
                path: c.rootfs(),
                temporary: false,
            });
        }
        let mount = self
            .images
            .snapshots
            .mounts(&c.id)
            .map_err(|e| EngineError::internal(e.to_string()))?;
        let path = c.dir.join(format!("view-{}", super::random_hex(4)));
        std::fs::create_dir(&path)
            .map_err(|e| EngineError::internal(format!("create {}: {e}", path.display())))?;
        if let Err(e) = mount.mount(&path) {
            let _ = std::fs::remove_dir(&path);
            return Err(EngineError::internal(format!(
                "mount the files of container {}: {e}",
                c.id
            )));
        }
        Ok(RootfsView {
            path,
            temporary: true,
        })
    }

    /// `GET /containers/{id}/changes`: what the writable layer holds.
    pub fn changes(&self, c: &Container) -> Result<Value, EngineError> {
        let layer = self
            .images
            .snapshots
            .mounts(&c.id)
            .map_err(|e| EngineError::internal(e.to_string()))?;
        let (upper, lower) = match layer {
            berth_image::snapshot::Mount::Overlay { lower, upper, .. } => (upper, lower),
            berth_image::snapshot::Mount::Bind { .. } => {
                return Err(EngineError::internal(
                    "changes are only known with the overlay snapshotter",
                ));
            }
        };
        let mut out = Vec::new();
        walk_changes(&upper, Path::new("/"), &lower, &mut out);
        // What the engine itself puts there (mount points, /etc files) is
        // not the container's change, as Docker's init layer is not.
        out.retain(|v| !super::spec::engine_made(v["Path"].as_str().unwrap_or_default()));
        // A directory counts as changed only through what changed in it.
        let paths: Vec<String> = out
            .iter()
            .map(|v| v["Path"].as_str().unwrap_or_default().to_owned())
            .collect();
        out.retain(|v| {
            let p = v["Path"].as_str().unwrap_or_default();
            v["Kind"] != 0
                || !upper.join(p.trim_start_matches('/')).is_dir()
                || paths.iter().any(|o| o.starts_with(&format!("{p}/")))
        });
        out.sort_by(|a: &Value, b: &Value| a["Path"].as_str().cmp(&b["Path"].as_str()));
        Ok(Value::Array(out))
    }
}

/// A container's files, unmounted on drop when mounted for the purpose.
pub struct RootfsView {
    /// Where they are.
    pub path: PathBuf,
    temporary: bool,
}

impl Drop for RootfsView {
    fn drop(&mut self) {
        if self.temporary {
            let _ = berth_image::snapshot::unmount(&self.path);
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

/// Writes `path` of `root` (resolved inside it) to `out` as a tar whose
/// entries are named from the path's last component, as `docker cp` wants.
pub fn tar_path(root: &Path, path: &str, out: &mut dyn std::io::Write) -> Result<(), String> {
    let fd = open_in(root, path, libc::O_PATH | libc::O_NOFOLLOW).map_err(|e| e.message)?;
    let st = fd_stat(&fd)?;
    let name = Path::new(path)
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    // `/proc/PID/fd/N` is itself a link; `/proc/PID/fd/N/.` is the
    // directory, and opening the link opens the file.
    let source = fd_path(&fd);
    let archived = if is_kind(&st, libc::S_IFDIR) {
        builder.append_dir_all(&name, source.join("."))
    } else if is_kind(&st, libc::S_IFLNK) {
        let target = nix::fcntl::readlinkat(&fd, "").map_err(|e| e.to_string())?;
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_mode(0o777);
        header.set_size(0);
        header.set_mtime(st.st_mtime.max(0) as u64);
        builder.append_link(&mut header, &name, target)
    } else if is_kind(&st, libc::S_IFREG) {
        let mut file = std::fs::File::open(&source).map_err(|e| e.to_string())?;
        builder.append_file(&name, &mut file)
    } else {
        return Err(format!("{path} is not a file, directory or link"));
    };
    archived.map_err(|e| format!("archive {path}: {e}"))?;
    builder.finish().map_err(|e| e.to_string())
}

/// Kind 0 modified, 1 added, 2 deleted, as Docker numbers them.
fn walk_changes(dir: &Path, at: &Path, lower: &[PathBuf], out: &mut Vec<Value>) {
    use std::os::unix::fs::FileTypeExt;
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = at.join(e.file_name());
        let Ok(meta) = e.path().symlink_metadata() else {
            continue;
        };
        let in_lower = lower.iter().any(|l| {
            l.join(path.strip_prefix("/").unwrap_or(&path))
                .symlink_metadata()
                .is_ok()
        });
        let kind = if meta.file_type().is_char_device() && meta.rdev() == 0 {
            2
        } else if in_lower {
            0
        } else {
            1
        };
        out.push(json!({ "Path": path.display().to_string(), "Kind": kind }));
        if meta.is_dir() {
            walk_changes(&e.path(), &path, lower, out);
        }
    }
}

fn system_cpu_usage() -> u64 {
    // The first line of /proc/stat, in clock ticks, as nanoseconds.
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks * (1_000_000_000 / hz)
}

/// The host's memory in bytes (`MemTotal`).
pub fn host_memory() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Opens `path` inside `rootfs` (never outside it, whatever its links say).
pub fn open_in(rootfs: &Path, path: &str, flags: i32) -> Result<std::os::fd::OwnedFd, EngineError> {
    let root = berth_sys::fs::open_dir_path(rootfs)
        .map_err(|e| EngineError::internal(format!("open {}: {e}", rootfs.display())))?;
    berth_sys::fs::open_in_root(&root, Path::new(path), flags, 0).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            EngineError::not_found(format!("Could not find the file {path} in container"))
        } else {
            EngineError::bad_request(format!("{path}: {e}"))
        }
    })
}

/// The path of an open descriptor, for tools that take paths.
pub fn fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!(
        "/proc/{}/fd/{}",
        std::process::id(),
        fd.as_raw_fd()
    ))
}

/// The status of an `O_PATH` descriptor's own inode (a link is not
/// followed: the descriptor is the link).
fn fd_stat(fd: &std::os::fd::OwnedFd) -> Result<nix::sys::stat::FileStat, String> {
    nix::sys::stat::fstat(fd).map_err(|e| e.to_string())
}

fn is_kind(st: &nix::sys::stat::FileStat, kind: libc::mode_t) -> bool {
    st.st_mode & libc::S_IFMT == kind
}

/// Docker's `X-Docker-Container-Path-Stat` of `path` in `rootfs`.
pub fn path_stat(rootfs: &Path, path: &str) -> Result<Value, EngineError> {
    let fd = open_in(rootfs, path, libc::O_PATH | libc::O_NOFOLLOW)?;
    let st = fd_stat(&fd).map_err(EngineError::internal)?;
    let name = Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into());
    // Go's FileMode: the permission bits plus its own type bits.
    let mut mode = st.st_mode & 0o7777;
    let mut link = String::new();
    if is_kind(&st, libc::S_IFDIR) {
        mode |= 1 << 31;
    } else if is_kind(&st, libc::S_IFLNK) {
        mode |= 1 << 27;
        link = nix::fcntl::readlinkat(&fd, "")
            .map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_default();
    }
    let mtime = berth_model::time::rfc3339_nanos(st.st_mtime, st.st_mtime_nsec as u32);
    Ok(
        json!({ "name": name, "size": st.st_size, "mode": mode, "mtime": mtime, "linkTarget": link }),
    )
}
