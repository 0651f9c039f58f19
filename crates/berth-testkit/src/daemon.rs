//! A `berth daemon` per test, on its own socket, data root and exec root,
//! that removes every container it ran when dropped (containers outlive a
//! daemon by design, so killing the daemon alone would leave them).
//!
//! With `BERTH_TEST_DOCKERD` set (to a dockerd binary, or `1` for the one
//! on PATH), [`Daemon::for_suite`] starts Debian's dockerd instead, on
//! roots of its own (`--bridge=none --iptables=false`: the host's network
//! is left alone), so that the docker CLI suites can be checked against
//! Docker itself.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::peer::run_with_timeout;

/// The docker CLI the end-to-end suites drive.
pub const DOCKER: &str = "/usr/local/bin/docker";

/// A daemon, killed and cleaned up when dropped.
pub struct Daemon {
    berth: PathBuf,
    /// The dockerd this runs instead of berth, when it does.
    dockerd: Option<PathBuf>,
    child: Option<Child>,
    /// A daemon the CLI started by itself on this socket.
    adopted: Option<i32>,
    /// The API socket.
    pub socket: PathBuf,
    dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `berth daemon` in a fresh temporary directory.
    pub fn start(berth: &Path) -> Daemon {
        let mut d = Daemon::unstarted(berth);
        d.spawn();
        d
    }

    /// The daemon a docker CLI suite runs against: berth's, or dockerd's
    /// when `BERTH_TEST_DOCKERD` says so.
    pub fn for_suite(berth: &Path) -> Daemon {
        let mut d = Daemon::unstarted(berth);
        if let Ok(v) = std::env::var("BERTH_TEST_DOCKERD")
            && !v.is_empty()
        {
            d.dockerd = Some(PathBuf::from(if v == "1" { "dockerd" } else { v.as_str() }));
        }
        d.spawn();
        d
    }

    /// Whether this is berth (and not a dockerd checking the tests).
    pub fn is_berth(&self) -> bool {
        self.dockerd.is_none()
    }

    /// The roots of a daemon without one: for the CLI to start it (see
    /// [`Daemon::adopt`]).
    pub fn unstarted(berth: &Path) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        // In the exec root, as a daemon the CLI starts keeps its state
        // beside its socket: cleanup then finds it either way.
        let socket = dir.path().join("run").join("berth.sock");
        std::fs::create_dir_all(dir.path().join("run")).expect("exec root");
        Daemon {
            berth: berth.to_owned(),
            dockerd: None,
            child: None,
            adopted: None,
            socket,
            dir,
        }
    }

    /// Finds the daemon serving this socket that something else started,
    /// so that dropping this cleans it up too; false when there is none.
    pub fn adopt(&mut self) -> bool {
        let needle = self.socket.display().to_string();
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return false;
        };
        for p in procs.flatten() {
            let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            let args: Vec<String> = cmdline
                .split(|&b| b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if args.iter().any(|a| a == "daemon") && args.iter().any(|a| a.contains(&needle)) {
                self.adopted = Some(pid);
                return true;
            }
        }
        false
    }

    fn spawn(&mut self) {
        if let Some(dockerd) = &self.dockerd {
            let root = self.dir.path();
            let child = Command::new(dockerd)
                .arg("--data-root")
                .arg(root.join("docker"))
                .arg("--exec-root")
                .arg(root.join("docker-exec"))
                .arg("--pidfile")
                .arg(root.join("docker.pid"))
                .arg("-H")
                .arg(self.host())
                .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(root.join("dockerd.log")).expect("log"))
                .spawn()
                .expect("start dockerd");
            self.child = Some(child);
            let deadline = Instant::now() + Duration::from_secs(60);
            while http(&self.socket, "GET", "/_ping").0 != 200 {
                assert!(Instant::now() < deadline, "dockerd did not start");
                std::thread::sleep(Duration::from_millis(50));
            }
            return;
        }
        let child = Command::new(&self.berth)
            .arg("daemon")
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .arg("--exec-root")
            .arg(self.exec_root())
            .env("BERTH_DATA_ROOT", self.data_root())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.path().join("daemon.log")).expect("log"))
            .spawn()
            .expect("start berth daemon");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while http(&self.socket, "GET", "/_ping").0 != 200 {
            assert!(Instant::now() < deadline, "the daemon did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the daemon with SIGKILL (its containers keep running) and
    /// starts a new one on the same roots.
    pub fn kill_and_restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Kills the daemon with SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the daemon again after [`Daemon::kill`].
    pub fn restart(&mut self) {
        self.spawn();
    }

    /// What a reboot does to running containers: every shim and container
    /// process killed, their runtime state gone (the exec root is a tmpfs).
    pub fn kill_containers(&self) {
        self.delete_leftovers();
        let _ = std::fs::remove_dir_all(self.exec_root().join("runtime"));
        let _ = std::fs::remove_dir_all(self.exec_root().join("shims"));
    }

    /// The temporary directory everything is under.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The data root.
    pub fn data_root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The exec root.
    pub fn exec_root(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// `DOCKER_HOST` for this daemon.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// A raw HTTP/1.1 exchange: the status, the headers (lowercased) and
    /// the body.
    pub fn request(&self, method: &str, path: &str) -> (u16, String, String) {
        http(&self.socket, method, path)
    }

    /// [`Daemon::request`] with a JSON body.
    pub fn request_json(&self, method: &str, path: &str, json: &str) -> (u16, String, String) {
        http_with_body(&self.socket, method, path, Some(json))
    }

    /// The docker CLI pointed at this daemon (30 s at most).
    pub fn docker(&self, args: &[&str]) -> Output {
        run_with_timeout(
            Command::new(DOCKER).arg("-H").arg(self.host()).args(args),
            Duration::from_secs(30),
        )
    }

    /// The docker CLI with `input` on its stdin.
    pub fn docker_with_input(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = Command::new(DOCKER)
            .arg("-H")
            .arg(self.host())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run docker");
        let mut stdin = child.stdin.take().expect("stdin");
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().expect("docker output");
        let _ = writer.join();
        out
    }

    /// Imports the busybox rootfs into the data root as `name` with
    /// berth's own CLI (`extra` are import flags); returns the image ID.
    pub fn import_busybox(&self, name: &str, extra: &[&str]) -> String {
        if self.dockerd.is_some() {
            // Docker's own way in: `docker load` of the same busybox image
            // (its config runs `sh` already).
            let archive = self.dir.path().join("busybox-image.tar");
            let tag = if name.is_empty() {
                "berth.test/busybox:latest"
            } else {
                name
            };
            crate::write_busybox_image(&archive, tag).expect("busybox image");
            let out = self.docker(&["load", "-i", archive.to_str().expect("path")]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let id = self.docker(&["image", "inspect", "-f", "{{.Id}}", tag]);
            return String::from_utf8_lossy(&id.stdout).trim().to_owned();
        }
        let rootfs = self.dir.path().join("rootfs.tar");
        if !rootfs.exists() {
            crate::write_busybox_rootfs_tar(&rootfs).expect("rootfs tar");
        }
        let imported = run_with_timeout(
            Command::new(&self.berth)
                .arg("import")
                .args(extra)
                .arg(&rootfs)
                .args((!name.is_empty()).then_some(name))
                .env("BERTH_DATA_ROOT", self.data_root()),
            Duration::from_secs(60),
        );
        assert!(
            imported.status.success(),
            "{}",
            String::from_utf8_lossy(&imported.stderr)
        );
        String::from_utf8_lossy(&imported.stdout).trim().to_owned()
    }

    /// The ids of every container the daemon knows.
    fn container_ids(&self) -> Vec<String> {
        let (status, _, body) = self.request("GET", "/containers/json?all=1");
        if status != 200 {
            return Vec::new();
        }
        let list: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        list.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c["Id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() || self.adopted.is_some() {
            for id in self.container_ids() {
                let _ = self.request("DELETE", &format!("/containers/{id}?force=1"));
            }
        }
        if let Some(mut c) = self.child.take() {
            if self.dockerd.is_some() {
                // SIGTERM: dockerd stops its containerd and cleans up.
                // SAFETY: kill(2) of our own child.
                unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
                let deadline = Instant::now() + Duration::from_secs(30);
                while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if self.dockerd.is_some() {
            let root = self.dir.path().display().to_string();
            let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            let mut points: Vec<&str> = mounts
                .lines()
                .filter_map(|l| l.split_whitespace().nth(4))
                .filter(|m| m.starts_with(&root))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for m in points {
                if let Ok(c) = std::ffi::CString::new(m) {
                    // SAFETY: a NUL-terminated path.
                    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
                }
            }
            return;
        }
        if let Some(pid) = self.adopted.take() {
            // SAFETY: kill(2) of the daemon the test's CLI started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        self.delete_leftovers();
    }
}

impl Daemon {
    /// Whatever the API did not remove: the runtime deletes its containers
    /// (processes and cgroups), shims are killed, then the mounts go.
    fn delete_leftovers(&self) {
        // Whatever the API could not remove: the runtime deletes its
        // containers (processes and cgroups), then the mounts go.
        let runtime = self.exec_root().join("runtime");
        if let Ok(entries) = std::fs::read_dir(&runtime) {
            for e in entries.flatten() {
                let _ = Command::new(&self.berth)
                    .arg("runtime")
                    .arg("--root")
                    .arg(&runtime)
                    .args(["delete", "--force"])
                    .arg(e.file_name())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        if let Ok(entries) = std::fs::read_dir(self.exec_root().join("shims")) {
            for e in entries.flatten() {
                let pid = std::fs::read_to_string(e.path().join("shim.pid"));
                let ours = |pid: &i32| {
                    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                        String::from_utf8_lossy(&c).contains(&*e.path().to_string_lossy())
                    })
                };
                if let Some(pid) = pid
                    .ok()
                    .and_then(|p| p.trim().parse::<i32>().ok())
                    .filter(ours)
                {
                    // SAFETY: kill(2) of a shim this daemon started.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        if let Ok(entries) = std::fs::read_dir(self.data_root().join("containers")) {
            for e in entries.flatten() {
                let target = e.path().join("rootfs");
                if let Ok(c) = std::ffi::CString::new(target.as_os_str().as_encoded_bytes()) {
                    // SAFETY: a NUL-terminated path.
                    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
                }
            }
        }
    }
}

/// A raw HTTP/1.1 exchange on a unix socket: the status, the headers
/// (lowercased) and the body.
pub fn http(socket: &Path, method: &str, path: &str) -> (u16, String, String) {
    http_with_body(socket, method, path, None)
}

/// [`http`] with a JSON body.
pub fn http_with_body(
    socket: &Path,
    method: &str,
    path: &str,
    json: Option<&str>,
) -> (u16, String, String) {
    let Ok(mut conn) = UnixStream::connect(socket) else {
        return (0, String::new(), String::new());
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
    let body = match json {
        Some(b) => format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        ),
        None => "\r\n".to_owned(),
    };
    if write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n{body}"
    )
    .is_err()
    {
        return (0, String::new(), String::new());
    }
    let mut response = String::new();
    let _ = conn.read_to_string(&mut response);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}
