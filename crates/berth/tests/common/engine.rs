//! The docker CLI suites' daemon and helpers (`engine_*.rs`).

use std::path::Path;
use std::time::{Duration, Instant};

use berth_testkit::daemon::{DOCKER, Daemon};

use super::berth;

/// A daemon with the busybox image as `busybox:latest`, or none when the
/// docker CLI is missing.
pub fn daemon() -> Option<Daemon> {
    if !Path::new(DOCKER).exists() {
        eprintln!("skipped: {DOCKER} is missing");
        return None;
    }
    let d = Daemon::for_suite(berth());
    d.import_busybox("busybox:latest", &["-c", r#"CMD ["sh"]"#]);
    Some(d)
}

/// Whether `d` is berth: what only berth promises (its roots on disk, its
/// recovery after SIGKILL) is not asked of a dockerd checking the suite.
pub fn berth_only(d: &Daemon) -> bool {
    if !d.is_berth() {
        eprintln!("skipped against dockerd: berth's own behaviour");
    }
    d.is_berth()
}

/// A daemon for what only berth promises: none against a dockerd.
pub fn berth_daemon() -> Option<Daemon> {
    daemon().filter(berth_only)
}

/// `docker build ARGS` with the CLI's classic builder (`DOCKER_BUILDKIT=0`),
/// 60 s at most.
#[allow(dead_code)]
pub fn classic_build(d: &Daemon, args: &[&str]) -> std::process::Output {
    berth_testkit::peer::run_with_timeout(
        std::process::Command::new(DOCKER)
            .env("DOCKER_BUILDKIT", "0")
            .arg("-H")
            .arg(d.host())
            .arg("build")
            .args(args),
        Duration::from_secs(60),
    )
}

/// The output of a command that must succeed.
pub fn ok(out: &std::process::Output) -> String {
    super::check(out.clone())
}

pub fn inspect(d: &Daemon, name: &str, format: &str) -> String {
    ok(&d.docker(&["inspect", "-f", format, name]))
        .trim()
        .to_owned()
}

/// Polls until `f` holds (or 20 s pass).
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
