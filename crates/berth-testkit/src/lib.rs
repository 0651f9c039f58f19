//! Test support for berth's end-to-end tests.
//!
//! - [`busybox_rootfs`]: a root filesystem made from the host's
//!   `busybox-static` (the binary plus a link per applet), built once per
//!   test run and shared read-only; tests never download anything.
//! - [`Bundle`]: an OCI bundle in a temporary directory whose rootfs is a
//!   cheap copy of the busybox rootfs, with a config.json to edit.
//! - [`StateRoot`]: a runtime state root that force-deletes every container
//!   left in it when dropped, so a failing test leaves no cgroup or process.
//! - [`write_busybox_image`]: the busybox rootfs as a docker-archive image
//!   tarball, for engines (containerd, Podman) that run berth as their
//!   runtime; [`peer`] finds those engines and cleans up after them.
#![deny(missing_docs)]

pub mod daemon;
mod image;
pub mod peer;
pub mod registry;

pub use image::{oci_arch, sha256_hex, write_busybox_image, write_busybox_rootfs_tar};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

/// Where the host's static busybox is (Debian's `busybox-static`).
pub const BUSYBOX: &str = "/bin/busybox";

fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "target"))
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir)
}

/// The shared busybox rootfs (read-only by convention: copy it with
/// [`Bundle`] before changing anything).
pub fn busybox_rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let dir = target_dir().join("testkit").join("busybox-rootfs");
        if dir.join("bin/sh").exists() {
            return dir;
        }
        assert!(
            Path::new(BUSYBOX).exists(),
            "{BUSYBOX} is missing: apt-get install busybox-static"
        );
        let tmp = dir.with_extension(format!("tmp{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        build_rootfs(&tmp).expect("build busybox rootfs");
        std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
        // Another test process may have won the race: theirs is as good.
        if std::fs::rename(&tmp, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        dir
    })
}

fn build_rootfs(dir: &Path) -> std::io::Result<()> {
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "var",
    ] {
        std::fs::create_dir_all(dir.join(d))?;
    }
    std::fs::copy(BUSYBOX, dir.join("bin/busybox"))?;
    let list = Command::new(BUSYBOX).arg("--list-full").output()?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let link = dir.join(applet);
        if link.exists() || applet == "bin/busybox" {
            continue;
        }
        std::os::unix::fs::symlink("/bin/busybox", link)?;
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    std::fs::write(
        dir.join("etc/group"),
        "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n",
    )?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("tmp"), std::fs::Permissions::from_mode(0o1777))?;
    Ok(())
}

/// Copies a directory tree, hard-linking regular files (the busybox binary
/// is shared, never written) and recreating symlinks and directories.
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    let meta = std::fs::metadata(from)?;
    std::fs::set_permissions(to, meta.permissions())?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let ft = entry.file_type()?;
        if ft.is_dir() {
            copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

/// An OCI bundle in a temporary directory.
pub struct Bundle {
    dir: tempfile::TempDir,
    /// The config.json, edited by the test and written by [`Bundle::save`].
    pub config: Value,
}

impl Bundle {
    /// A bundle with a copy of the busybox rootfs and `config` (usually from
    /// `berth runtime spec`, see [`Bundle::from_spec`]).
    pub fn new(config: Value) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("berth-bundle-")
            .tempdir()
            .expect("tempdir");
        copy_tree(busybox_rootfs(), &dir.path().join("rootfs")).expect("copy rootfs");
        let b = Bundle { dir, config };
        b.save();
        b
    }

    /// A bundle whose config is what `berth runtime spec` writes, with
    /// `terminal` off and `args` as given.
    pub fn from_spec(berth: &Path, args: &[&str]) -> Bundle {
        let tmp = tempfile::tempdir().expect("tempdir");
        let out = Command::new(berth)
            .args(["runtime", "spec", "--bundle"])
            .arg(tmp.path())
            .output()
            .expect("run berth runtime spec");
        assert!(
            out.status.success(),
            "berth runtime spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(tmp.path().join("config.json")).unwrap())
                .unwrap();
        config["process"]["terminal"] = Value::Bool(false);
        config["process"]["args"] = args.iter().map(|a| Value::String(a.to_string())).collect();
        Bundle::new(config)
    }

    /// The bundle directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The rootfs directory.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Writes `config` to config.json.
    pub fn save(&self) {
        std::fs::write(
            self.dir.path().join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }
}

/// A runtime state root that force-deletes its containers on drop.
pub struct StateRoot {
    dir: tempfile::TempDir,
    berth: PathBuf,
}

impl StateRoot {
    /// A fresh state root for the `berth` binary at `berth`.
    pub fn new(berth: &Path) -> StateRoot {
        let dir = tempfile::Builder::new()
            .prefix("berth-state-")
            .tempdir()
            .expect("tempdir");
        StateRoot {
            dir,
            berth: berth.to_owned(),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A `berth runtime --root <this>` command.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(&self.berth);
        c.arg("runtime").arg("--root").arg(self.dir.path());
        c
    }

    /// Runs `berth runtime --root <this> ARGS...` to completion.
    ///
    /// Output goes to files, not pipes: a created container inherits the
    /// runtime's stdio, and a pipe would not reach EOF until it exits.
    pub fn run(&self, args: &[&str]) -> Output {
        run_to_files(self.cmd().args(args))
    }

    /// Like [`StateRoot::run`], asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth runtime {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The `state` JSON of `id`.
    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).expect("state JSON")
    }
}

impl Drop for StateRoot {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(self.dir.path()) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.cmd().args(["delete", "--force", &id]).output();
            }
        }
    }
}

/// Runs `cmd` with stdout and stderr in temporary files and waits for the
/// process itself (not for every holder of its stdio) to exit.
pub fn run_to_files(cmd: &mut Command) -> Output {
    let out = tempfile::tempfile().expect("tempfile");
    let err = tempfile::tempfile().expect("tempfile");
    let status = cmd
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(err.try_clone().expect("dup"))
        .status()
        .expect("spawn");
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek};
        let mut v = Vec::new();
        f.seek(std::io::SeekFrom::Start(0)).expect("seek");
        f.read_to_end(&mut v).expect("read");
        v
    };
    Output {
        status,
        stdout: read(out),
        stderr: read(err),
    }
}

/// A container id unique across concurrently running tests (cgroup paths
/// are global: two tests must never share an id).
pub fn unique_id(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Host directories of a container's cgroup (`/berth/<id>` in every
/// mounted hierarchy) that exist now: a deleted container must leave none.
pub fn leftover_cgroups(id: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut roots = vec![PathBuf::from("/sys/fs/cgroup")];
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        roots.extend(entries.flatten().map(|e| e.path()));
    }
    for r in roots {
        let p = r.join("berth").join(id);
        if p.exists() {
            found.push(p);
        }
    }
    found
}

/// Whether the tests run as root (the runtime's tests need it).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Skips the current test (returning early) when not root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}
