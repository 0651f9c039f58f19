//! Shared helpers for the runtime's end-to-end tests.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use berth_testkit::StateRoot;
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
