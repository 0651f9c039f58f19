//! containerd 1.6 with berth as its runc: `ctr` drives
//! containerd-shim-runc-v2, which calls `berth-runtime` (a link to the berth
//! binary) with runc's command line — `--root`, `--log <file> --log-format
//! json`, `create --bundle --pid-file [--console-socket]`, `start`, `ps`,
//! `pause`, `resume`, `kill`, `exec --process --detach --pid-file`,
//! `delete [--force]`.
//!
//! Each test starts its own containerd (root, state, socket, runc root,
//! fifo directory and namespace under a temporary directory, the busybox
//! image imported from a tarball made on the spot); dropping [`Containerd`]
//! stops it and removes every task, shim, mount, cgroup and file it made,
//! even when the test fails. Skipped when containerd is not installed.

mod common;

use common::{berth, text};

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use berth_testkit::peer::{
    find_program, kill_pid, pids_with_cmdline, remove_cgroup_tree, run_with_timeout, unmount_under,
    wait_until,
};
use berth_testkit::{require_root, write_busybox_image};

const IMAGE: &str = "berth.test/busybox:latest";
/// How long one `ctr` command may take before the test fails.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A private containerd with berth as the runtime of every container that
/// its tests run.
struct Containerd {
    dir: tempfile::TempDir,
    /// The containerd namespace, also the parent cgroup of the containers
    /// (containerd's default cgroupsPath is `/<namespace>/<id>`).
    ns: String,
    daemon: Child,
    /// The `ctr` binary.
    ctr: PathBuf,
}

impl Containerd {
    /// Starts containerd and imports the busybox image, or returns `None`
    /// (having said why) when containerd is not installed.
    fn start(tag: &str) -> Option<Containerd> {
        let mut bins = Vec::new();
        for p in ["containerd", "ctr", "containerd-shim-runc-v2"] {
            match find_program(p) {
                Some(path) => bins.push(path),
                None => {
                    eprintln!("skipped: {p} is not installed (apt-get install containerd)");
                    return None;
                }
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-containerd-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path();
        for sub in ["root", "state", "runc", "fifo"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        std::os::unix::fs::symlink(berth(), d.join("berth-runtime")).unwrap();
        // Only what berth's tests need: no CRI (it wants CNI and a sandbox
        // image), no snapshotters for filesystems this host lacks, no
        // tracing. The default snapshotter stays overlayfs.
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{sock}"

[ttrpc]
  address = "{sock}.ttrpc"

[debug]
  address = ""
  level = "debug"

[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
"#,
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = d.join("containerd.sock").display(),
            opt = d.join("opt").display(),
        );
        std::fs::write(d.join("config.toml"), config).unwrap();
        let log = std::fs::File::create(d.join("containerd.log")).unwrap();
        // containerd finds containerd-shim-runc-v2 on its PATH.
        let shim_dir = bins[2].parent().unwrap().to_owned();
        let path = std::env::join_paths(std::iter::once(shim_dir).chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )))
        .unwrap();
        let daemon = Command::new(&bins[0])
            .arg("--config")
            .arg(d.join("config.toml"))
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let mut c = Containerd {
            dir,
            ns: format!("berth-{tag}-{}", std::process::id()),
            daemon,
            ctr: bins[1].clone(),
        };
        let up = wait_until(Duration::from_secs(30), || {
            if let Ok(Some(status)) = c.daemon.try_wait() {
                panic!("containerd exited ({status}):\n{}", c.diagnostics());
            }
            std::os::unix::net::UnixStream::connect(c.sock()).is_ok()
        });
        assert!(up, "containerd did not listen:\n{}", c.diagnostics());
        let image = c.dir.path().join("busybox.tar");
        write_busybox_image(&image, IMAGE).expect("write the busybox image");
        c.ctr_ok(&["image".as_ref(), "import".as_ref(), image.as_os_str()]);
        Some(c)
    }

    fn sock(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    /// The runc root the shim passes to berth as `--root`.
    fn runtime_root(&self) -> PathBuf {
        self.dir.path().join("runc").join(&self.ns)
    }

    /// Where the shim keeps each task's bundle (and berth's `--log`).
    fn task_dir(&self) -> PathBuf {
        self.dir
            .path()
            .join("state/io.containerd.runtime.v2.task")
            .join(&self.ns)
    }

    /// `ctr -a SOCK -n NS ARGS...`.
    fn ctr<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        run_with_timeout(
            Command::new(&self.ctr)
                .arg("--address")
                .arg(self.sock())
                .arg("--namespace")
                .arg(&self.ns)
                .args(args),
            TIMEOUT,
        )
    }

    /// Like [`Containerd::ctr`], asserting success; returns stdout.
    fn ctr_ok<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> String {
        let out = self.ctr(args);
        assert!(
            out.status.success(),
            "ctr {:?} failed ({}):\n{}{}\n{}",
            args.iter().map(|a| a.as_ref()).collect::<Vec<_>>(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.diagnostics()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `ctr run` options that make berth the runtime, then `args`.
    fn run_args(&self, args: &[&str]) -> Vec<OsString> {
        let d = self.dir.path();
        let mut v: Vec<OsString> = vec![
            "run".into(),
            "--runc-binary".into(),
            d.join("berth-runtime").into(),
            "--runc-root".into(),
            d.join("runc").into(),
            "--fifo-dir".into(),
            d.join("fifo").into(),
        ];
        v.extend(args.iter().map(OsString::from));
        v
    }

    /// That berth ran this namespace's containers: the shim passed it the
    /// `--runc-root` we gave ctr (berth made the directory), and nothing
    /// used runc's default root.
    fn assert_berth_ran(&self) {
        assert!(
            self.runtime_root().is_dir(),
            "berth never ran with --root {}",
            self.runtime_root().display()
        );
        let default = Path::new("/run/containerd/runc").join(&self.ns);
        assert!(
            !default.exists(),
            "something ran with runc's default root {}",
            default.display()
        );
    }

    /// The status column of `ctr task ls` for `id` (RUNNING, PAUSED,
    /// STOPPED, ...).
    fn task_status(&self, id: &str) -> Option<String> {
        let out = self.ctr_ok(&["task", "ls"]);
        out.lines().find_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols.first() == Some(&id)).then(|| cols.last().unwrap().to_string())
        })
    }

    fn wait_task_status(&self, id: &str, want: &str) {
        let ok = wait_until(Duration::from_secs(10), || {
            self.task_status(id).as_deref() == Some(want)
        });
        assert!(
            ok,
            "task {id} is {:?}, not {want}:\n{}",
            self.task_status(id),
            self.diagnostics()
        );
    }

    /// What to read when something failed: the end of containerd's log and
    /// every runtime log (berth's JSON lines) the shims kept.
    fn diagnostics(&self) -> String {
        let mut s = String::from("--- containerd.log: warnings and errors ---\n");
        let log =
            std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default();
        let bad: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("level=warning") || l.contains("level=error"))
            .collect();
        for l in &bad[bad.len().saturating_sub(30)..] {
            s += l;
            s.push('\n');
        }
        for e in std::fs::read_dir(self.task_dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            let log = e.path().join("log.json");
            if let Ok(text) = std::fs::read_to_string(&log) {
                s += &format!("--- {} ---\n{text}", log.display());
            }
        }
        s
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let (sock, ns, bin) = (self.sock(), self.ns.clone(), self.ctr.clone());
        let ctr = |args: &[&str]| {
            run_with_timeout(
                Command::new(&bin)
                    .arg("--address")
                    .arg(&sock)
                    .arg("--namespace")
                    .arg(&ns)
                    .args(args),
                Duration::from_secs(10),
            )
        };
        // Containers a failed test left: through containerd first, so its
        // shims exit and unmount the rootfs.
        let mut ids: Vec<String> = std::fs::read_dir(self.task_dir())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if matches!(self.daemon.try_wait(), Ok(None)) {
            let out = ctr(&["container", "ls", "-q"]);
            let listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(String::from)
                .collect();
            for id in &listed {
                let _ = ctr(&["task", "kill", "--all", "--signal", "SIGKILL", id]);
                let _ = ctr(&["task", "delete", "--force", id]);
                let _ = ctr(&["container", "delete", id]);
            }
            ids.extend(listed);
        }
        // Stop containerd: TERM, then KILL.
        // SAFETY: plain syscall on our own child's pid.
        unsafe { libc::kill(self.daemon.id() as i32, libc::SIGTERM) };
        if !wait_until(Duration::from_secs(5), || {
            matches!(self.daemon.try_wait(), Ok(Some(_)))
        }) {
            let _ = self.daemon.kill();
        }
        let _ = self.daemon.wait();
        // Shims outlive containerd; ours name our socket on their command
        // line (`-address SOCK`).
        for pid in pids_with_cmdline(&self.sock().to_string_lossy()) {
            kill_pid(pid);
        }
        // Whatever is left in berth's state: kill it and remove its cgroups.
        let root = self.runtime_root();
        for e in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let _ = Command::new(berth())
                .arg("runtime")
                .arg("--root")
                .arg(&root)
                .args(["delete", "--force"])
                .arg(e.file_name())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            ids.push(e.file_name().to_string_lossy().into_owned());
        }
        // A killed shim leaves its socket in containerd's fixed directory,
        // named by sha256(<containerd address>/<namespace>/<id>).
        ids.sort();
        ids.dedup();
        for id in ids {
            let key = format!("{}/{}/{id}", self.sock().display(), self.ns);
            let _ = std::fs::remove_file(
                Path::new("/run/containerd/s").join(berth_testkit::sha256_hex(key.as_bytes())),
            );
        }
        unmount_under(self.dir.path());
        remove_cgroup_tree(&self.ns);
        // The temporary directory goes when `dir` drops.
    }
}

/// `a` as one word for sh(1).
fn sh_quote(a: &std::ffi::OsStr) -> OsString {
    let mut q = OsString::from("'");
    q.push(a.to_string_lossy().replace('\'', r"'\''"));
    q.push("'");
    q
}

#[test]
fn ctr_run_prints_the_output_and_returns_the_exit_code() {
    require_root!();
    let Some(c) = Containerd::start("run") else {
        return;
    };
    let out = c.ctr(&c.run_args(&[
        "--rm",
        IMAGE,
        "fg1",
        "sh",
        "-c",
        "echo hello from busybox; echo to stderr >&2; grep :memory: /proc/self/cgroup; exit 7",
    ]));
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}{}\n{}",
        text(&out.stdout),
        text(&out.stderr),
        c.diagnostics()
    );
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("hello from busybox"), "{stdout}");
    // containerd's cgroupsPath, which berth must honour.
    let cgroup = lines.next().unwrap_or_default();
    assert!(
        cgroup.ends_with(&format!(":memory:/{}/fg1", c.ns)),
        "{stdout}"
    );
    assert!(
        text(&out.stderr).contains("to stderr"),
        "{}",
        text(&out.stderr)
    );

    // --rm: containerd forgot it, berth deleted its state and cgroups.
    assert_eq!(c.ctr_ok(&["container", "ls", "-q"]).trim(), "");
    assert!(!c.runtime_root().join("fg1").exists());
    assert!(
        !Path::new("/sys/fs/cgroup/memory")
            .join(&c.ns)
            .join("fg1")
            .exists()
    );
    c.assert_berth_ran();
}

#[test]
fn ctr_run_failure_reaches_ctr_through_the_json_log() {
    require_root!();
    let Some(c) = Containerd::start("fail") else {
        return;
    };
    let out = c.ctr(&c.run_args(&["--rm", IMAGE, "bad1", "/no/such/program"]));
    assert!(!out.status.success());
    // The shim reads the reason from `--log <file> --log-format json`.
    let err = text(&out.stderr);
    assert!(
        err.contains("OCI runtime create failed") && err.contains("/no/such/program"),
        "{err}\n{}",
        c.diagnostics()
    );
    assert!(!c.runtime_root().join("bad1").exists());
    assert!(
        !Path::new("/sys/fs/cgroup/memory")
            .join(&c.ns)
            .join("bad1")
            .exists()
    );
    c.assert_berth_ran();
}

#[test]
fn ctr_run_options_reach_the_process() {
    require_root!();
    let Some(c) = Containerd::start("opts") else {
        return;
    };
    // Not `--uidmap`: ctr 1.6 then sends task options of its own (the I/O
    // owner), which replace the runtime options, so the shim ignores
    // `--runc-binary` and runs plain runc. User namespaces are tested
    // through Podman.
    let out = c.ctr_ok(&c.run_args(&[
        "--rm",
        "--env",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "--read-only",
        "--cap-add",
        "CAP_NET_ADMIN",
        IMAGE,
        "o1",
        "sh",
        "-c",
        "echo $FOO $(pwd); touch /x 2>/dev/null && echo rw || echo ro; grep CapEff /proc/self/status",
    ]));
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("bar /tmp"), "{out}");
    assert_eq!(lines.next(), Some("ro"), "{out}");
    let eff = lines.next().and_then(|l| l.split_whitespace().nth(1));
    let eff = u64::from_str_radix(eff.unwrap_or_default(), 16).unwrap_or_default();
    assert!(
        eff & (1 << 12) != 0,
        "CAP_NET_ADMIN (12) is effective: {out}"
    );
    c.assert_berth_ran();
}

#[test]
fn ctr_detached_task_exec_ps_pause_kill_delete() {
    require_root!();
    let Some(c) = Containerd::start("task") else {
        return;
    };
    // A shell as pid 1 only dies of the signals it handles.
    c.ctr_ok(&c.run_args(&[
        "-d",
        IMAGE,
        "d1",
        "sh",
        "-c",
        "trap 'exit 42' TERM; while :; do sleep 0.05; done",
    ]));
    c.wait_task_status("d1", "RUNNING");
    assert!(c.runtime_root().join("d1/state.json").exists());

    let out = c.ctr(&[
        "task",
        "exec",
        "--fifo-dir",
        c.dir.path().join("fifo").to_str().unwrap(),
        "--cwd",
        "/tmp",
        "--exec-id",
        "x1",
        "d1",
        "sh",
        "-c",
        "echo exec in $(pwd) next to $(cat /proc/1/comm); exit 5",
    ]);
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}{}\n{}",
        text(&out.stdout),
        text(&out.stderr),
        c.diagnostics()
    );
    assert_eq!(text(&out.stdout), "exec in /tmp next to sh\n");

    // `task ps` is `berth-runtime ps --format json`.
    let ps = c.ctr_ok(&["task", "ps", "d1"]);
    assert!(ps.lines().count() >= 2, "{ps}");

    c.ctr_ok(&["task", "pause", "d1"]);
    c.wait_task_status("d1", "PAUSED");
    c.ctr_ok(&["task", "resume", "d1"]);
    c.wait_task_status("d1", "RUNNING");

    c.ctr_ok(&["task", "kill", "d1"]);
    c.wait_task_status("d1", "STOPPED");
    let out = c.ctr(&["task", "delete", "d1"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        c.diagnostics()
    );
    assert!(
        text(&out.stderr).contains("exit code 42"),
        "{}",
        text(&out.stderr)
    );
    c.ctr_ok(&["container", "delete", "d1"]);
    assert_eq!(c.ctr_ok(&["container", "ls", "-q"]).trim(), "");
    assert!(!c.runtime_root().join("d1").exists());
    assert!(
        !Path::new("/sys/fs/cgroup/memory")
            .join(&c.ns)
            .join("d1")
            .exists()
    );
    c.assert_berth_ran();
}

#[test]
fn ctr_terminal_goes_through_the_console_socket() {
    require_root!();
    // ctr -t wants its own stdin to be a terminal: script(1) gives it one.
    let Some(script) = find_program("script") else {
        eprintln!("skipped: script(1) is not installed (apt-get install bsdutils)");
        return;
    };
    let Some(c) = Containerd::start("tty") else {
        return;
    };
    let in_pty = |args: Vec<OsString>| {
        let mut line = OsString::from("exec");
        let global: [OsString; 5] = [
            c.ctr.clone().into(),
            "--address".into(),
            c.sock().into(),
            "--namespace".into(),
            c.ns.clone().into(),
        ];
        for a in global.into_iter().chain(args) {
            line.push(" ");
            line.push(sh_quote(&a));
        }
        run_with_timeout(
            Command::new(&script)
                .args(["--quiet", "--return", "--command"])
                .arg(line)
                .arg("/dev/null"),
            TIMEOUT,
        )
    };
    // The pause before exiting: once, under heavy load, `ctr task exec -t`
    // printed nothing of a process that exited at once (its exit code was
    // right); ctr and the shim copy a terminal's output asynchronously.
    let out = in_pty(c.run_args(&[
        "-t",
        "--rm",
        IMAGE,
        "t1",
        "sh",
        "-c",
        "tty; sleep 0.2; exit 4",
    ]));
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}{}\n{}",
        text(&out.stdout),
        text(&out.stderr),
        c.diagnostics()
    );
    assert!(
        text(&out.stdout).contains("/dev/pts/0"),
        "{}",
        text(&out.stdout)
    );

    c.ctr_ok(&c.run_args(&["-d", IMAGE, "t2", "sleep", "1000"]));
    c.wait_task_status("t2", "RUNNING");
    let fifo = c.dir.path().join("fifo");
    let out = in_pty(
        [
            "task",
            "exec",
            "-t",
            "--fifo-dir",
            fifo.to_str().unwrap(),
            "--exec-id",
            "x1",
            "t2",
            "sh",
            "-c",
            "tty; sleep 0.2; exit 3",
        ]
        .map(OsString::from)
        .to_vec(),
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}{}\n{}",
        text(&out.stdout),
        text(&out.stderr),
        c.diagnostics()
    );
    assert!(
        text(&out.stdout).contains("/dev/pts/"),
        "{}",
        text(&out.stdout)
    );
    c.ctr_ok(&["task", "kill", "--signal", "SIGKILL", "t2"]);
    c.wait_task_status("t2", "STOPPED");
    c.ctr_ok(&["task", "delete", "t2"]);
    c.ctr_ok(&["container", "delete", "t2"]);
    assert!(!c.runtime_root().join("t2").exists());
    c.assert_berth_ran();
}
