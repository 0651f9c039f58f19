//! Support for tests that drive other engines (containerd, Podman) with
//! berth as their runtime: finding them, bounding how long they may take,
//! and removing what they leave behind (mounts, cgroups, processes).

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The full path of `program` on `PATH` (or in the sbin directories, which
/// a non-login root shell may lack), if it is installed.
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Runs `cmd` like [`crate::run_to_files`], but kills it (by its pid) once
/// `timeout` has passed; the output then ends with a line saying so and the
/// status is the kill's. A peer that hangs fails the test instead of
/// hanging it.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let out = tempfile::tempfile().expect("tempfile");
    let err = tempfile::tempfile().expect("tempfile");
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(err.try_clone().expect("dup"))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek};
        let mut v = Vec::new();
        f.seek(std::io::SeekFrom::Start(0)).expect("seek");
        f.read_to_end(&mut v).expect("read");
        v
    };
    let mut stderr = read(err);
    if timed_out {
        stderr.extend_from_slice(format!("\n[killed after {timeout:?}: {cmd:?}]\n").as_bytes());
    }
    Output {
        status,
        stdout: read(out),
        stderr,
    }
}

/// Waits until `cond` holds, polling, for at most `timeout`; returns
/// whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Decodes the octal escapes (`\040` for a space) of a mountinfo field.
fn unescape_mountinfo(field: &str) -> PathBuf {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && let Ok(v) = u8::from_str_radix(&field[i + 1..i + 4], 8)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    PathBuf::from(std::ffi::OsStr::from_bytes(&out))
}

/// Detaches every mount at or under `dir` in this mount namespace, deepest
/// first (like `umount -R -l`), so the directory can be removed. Engines
/// mount overlays and bind mounts under their roots and a failing test may
/// leave them.
pub fn unmount_under(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    points.dedup();
    for p in points {
        let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
            continue;
        };
        // SAFETY: a valid C string; MNT_DETACH cannot block on a busy mount.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

/// Removes the cgroup `name` (a path relative to each hierarchy's root,
/// e.g. `berth-ctr-123`) and everything below it in every mounted
/// hierarchy, deepest first. Processes still in it must be gone first.
pub fn remove_cgroup_tree(name: &str) {
    let name = name.trim_start_matches('/');
    if name.is_empty() || name.split('/').any(|c| c == "..") {
        return;
    }
    let mut roots = vec![PathBuf::from("/sys/fs/cgroup")];
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        roots.extend(entries.flatten().map(|e| e.path()));
    }
    fn rmdir_tree(dir: &Path) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    rmdir_tree(&e.path());
                }
            }
        }
        // A cgroup directory is removed with rmdir even though it lists
        // files; retry briefly while the kernel finishes tearing down
        // processes that were just killed.
        let _ = wait_until(Duration::from_secs(2), || {
            std::fs::remove_dir(dir).is_ok() || !dir.exists()
        });
    }
    for root in roots {
        let dir = root.join(name);
        if dir.is_dir() {
            rmdir_tree(&dir);
        }
    }
}

/// The pids of processes whose command line contains `needle` (for
/// finding the daemons and shims a test started, by a path unique to it).
pub fn pids_with_cmdline(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                c.split(|&b| b == 0)
                    .any(|arg| String::from_utf8_lossy(arg).contains(needle))
            })
        })
        .collect()
}

/// Sends SIGKILL to `pid`.
pub fn kill_pid(pid: i32) {
    // SAFETY: plain syscall.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}
