//! Shared helpers for the runtime's end-to-end tests.
#![allow(dead_code)]

pub mod engine;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_testkit::StateRoot;
use berth_testkit::peer::run_with_timeout;
use serde_json::Value;

/// The berth binary under test.
pub fn berth() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_berth"))
}

/// Polls `state` until the status is `want` (or 10 s pass).
pub fn wait_status(root: &StateRoot, id: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = root.state(id);
        if s["status"] == want || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Bytes as (lossy) text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Stderr as text.
pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Stdout as text.
pub fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A data root and Docker config of a test's own, for the image commands.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `berth ARGS` with this data root and Docker config, stdin closed.
    pub fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(berth());
        cmd.args(args)
            .env("BERTH_DATA_ROOT", self.path().join("data"))
            .env("DOCKER_CONFIG", self.path().join("docker"))
            .stdin(std::process::Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> std::process::Output {
        berth_testkit::peer::run_with_timeout(&mut self.cmd(args), Duration::from_secs(60))
    }

    /// Runs `berth ARGS`, fails the test unless it succeeds, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        if !out.status.success() {
            eprintln!("berth {args:?} failed");
        }
        check(out)
    }
}

/// Fails the test unless `out` succeeded; returns its stdout.
pub fn check(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Seconds since the epoch (for `--since` and `--until`).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

/// `berth ARGS` against the daemon `d` (30 s at most).
pub fn berth_cli(d: &berth_testkit::daemon::Daemon, args: &[&str]) -> Output {
    run_with_timeout(
        Command::new(berth())
            .arg("-H")
            .arg(d.host())
            .args(args)
            .env("BERTH_DATA_ROOT", d.data_root()),
        Duration::from_secs(30),
    )
}

/// `berth ARGS` against the daemon `d`, with `input` on its stdin.
pub fn berth_with_input(d: &berth_testkit::daemon::Daemon, args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(berth())
        .arg("-H")
        .arg(d.host())
        .args(args)
        .env("BERTH_DATA_ROOT", d.data_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// This host's platform, and another one.
#[allow(dead_code)]
pub fn platforms() -> (&'static str, &'static str) {
    if cfg!(target_arch = "x86_64") {
        ("linux/amd64", "linux/arm64")
    } else {
        ("linux/arm64", "linux/amd64")
    }
}

/// `run --pull never --platform OTHER busybox` through `cli` is refused as
/// Docker refuses it: the local image is of another platform.
#[allow(dead_code)]
pub fn assert_other_platform_refused(cli: impl Fn(&[&str]) -> Output) {
    let other = platforms().1;
    let out = cli(&[
        "run",
        "--rm",
        "--pull",
        "never",
        "--platform",
        other,
        "busybox",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("does not match the specified platform"),
        "{}",
        text(&out.stderr)
    );
}
