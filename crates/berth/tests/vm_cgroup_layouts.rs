//! The runtime on pure cgroup v2 and pure cgroup v1 hosts: this machine is
//! hybrid, so `scripts/vm-check.sh` boots the installed Debian kernel under
//! qemu with the chosen layout and runs `scripts/check-host.sh` (limits
//! enforced, OOM kill, pids, devices, exec, pause, update, stats) there.

mod common;

use std::path::Path;

use berth_testkit::{busybox_rootfs, require_root};
use common::berth;

fn vm_available() -> bool {
    let qemu = std::process::Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let kernel = std::fs::read_dir("/boot")
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("vmlinuz-"))
        })
        .unwrap_or(false);
    qemu && kernel
}

fn check(layout: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/vm-check.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(layout)
        .env("BERTH", berth())
        .env("ROOTFS", busybox_rootfs())
        .output()
        .expect("run vm-check.sh");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("12 passed, 0 failed"),
        "cgroup {layout} in a VM:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = if layout == "v2" {
        "cgroups: v2"
    } else {
        "cgroups: v1"
    };
    assert!(text.contains(want), "{text}");
}

#[test]
fn pure_cgroup_v2_host() {
    require_root!();
    if !vm_available() {
        eprintln!("skipped: needs qemu-system-x86 and linux-image-amd64");
        return;
    }
    check("v2");
}

#[test]
fn pure_cgroup_v1_host() {
    require_root!();
    if !vm_available() {
        eprintln!("skipped: needs qemu-system-x86 and linux-image-amd64");
        return;
    }
    check("v1");
}
