//! Podman (4.x, through conmon) with berth as its OCI runtime: `podman
//! --runtime <dir>/berth-runtime` (a link to the berth binary) calls it with
//! runc's command line — `--log <file> --log-format=json` (berth-runtime is
//! listed in `runtime_supports_json`), `create --bundle --pid-file
//! [--console-socket]`, `start`, `exec --process --detach --pid-file`,
//! `kill`, `pause`, `resume`, `delete --force`.
//!
//! Each test runs Podman isolated under a temporary directory: its own
//! `--root`, `--runroot`, containers.conf (`CONTAINERS_CONF`) and
//! storage.conf (`CONTAINERS_STORAGE_CONF`), file locks instead of
//! /dev/shm, no network, and a cgroup parent of its own; the busybox image
//! is loaded from a docker-archive made on the spot. Podman does not pass
//! its `--runtime-flag`s to the `podman container cleanup` that conmon
//! runs when a container exits, so berth keeps these containers in its
//! default root, /run/berth-runtime, as runc keeps Podman's in /run/runc;
//! dropping [`Podman`] force-deletes those whose bundle is in the temporary
//! directory, with every process, mount and cgroup Podman made, even when
//! the test fails. Skipped when Podman is not installed.

mod common;

use common::{berth, text};

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use berth_testkit::peer::{
    find_program, kill_pid, pids_with_cmdline, remove_cgroup_tree, run_with_timeout, unmount_under,
    wait_until,
};
use berth_testkit::{require_root, write_busybox_image};

const IMAGE: &str = "berth.test/busybox:latest";
/// How long one `podman` command may take before the test fails.
const TIMEOUT: Duration = Duration::from_secs(60);
/// berth's default state root, where Podman's containers live.
const RUNTIME_ROOT: &str = "/run/berth-runtime";

fn hard_limit(resource: nix::sys::resource::Resource) -> u64 {
    nix::sys::resource::getrlimit(resource).map_or(u64::MAX, |(_, hard)| hard)
}

/// A Podman confined to a temporary directory, with berth as its runtime.
struct Podman {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// The cgroup parent of every container (and conmon) the test runs.
    cgroup_parent: String,
}

impl Podman {
    /// Sets Podman up and loads the busybox image, or returns `None`
    /// (having said why) when Podman is not installed.
    fn start(tag: &str) -> Option<Podman> {
        let Some(bin) = find_program("podman") else {
            eprintln!("skipped: podman is not installed (apt-get install podman)");
            return None;
        };
        if find_program("conmon").is_none() {
            eprintln!("skipped: conmon is not installed (apt-get install conmon)");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-podman-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path();
        for sub in ["root", "runroot", "tmp", "cni"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        std::os::unix::fs::symlink(berth(), d.join("berth-runtime")).unwrap();
        // Podman as root asks for RLIMIT_NOFILE=1048576:1048576 and
        // RLIMIT_NPROC=1048576:1048576 in every container unless told
        // otherwise. Raising a hard limit above the runtime's own needs
        // CAP_SYS_RESOURCE, which this machine withholds from every bounding
        // set (its nofile hard limit is 20000), so the container's init
        // could not set them and `create` fails ("cannot set RLIMIT_NOFILE
        // to soft=1048576 hard=1048576: the host's hard limit is 20000, and
        // raising it needs CAP_SYS_RESOURCE"). Ask for the hard limits
        // Podman itself runs with instead: ours for nofile, and for nproc at
        // most 32768, to which Podman lowers its own limit when it starts.
        let nofile = hard_limit(nix::sys::resource::Resource::RLIMIT_NOFILE);
        let nproc = hard_limit(nix::sys::resource::Resource::RLIMIT_NPROC).min(32768);
        let conf = format!(
            r#"[containers]
default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]
netns = "none"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{events}"
tmp_dir = "{tmp}"
lock_type = "file"
network_config_dir = "{cni}"
runtime_supports_json = ["berth-runtime"]
"#,
            events = d.join("events.log").display(),
            tmp = d.join("tmp").display(),
            cni = d.join("cni").display(),
        );
        std::fs::write(d.join("containers.conf"), conf).unwrap();
        let storage = format!(
            "[storage]\ndriver = \"overlay\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            d.join("root").display(),
            d.join("runroot").display()
        );
        std::fs::write(d.join("storage.conf"), storage).unwrap();
        let p = Podman {
            dir,
            bin,
            cgroup_parent: format!("berth-podman-{tag}-{}", std::process::id()),
        };
        let image = p.dir.path().join("busybox.tar");
        write_busybox_image(&image, IMAGE).expect("write the busybox image");
        p.load(&image);
        Some(p)
    }

    /// `podman load`s the image tarball. It also records the blobs in
    /// containers/image's system-wide blob-info cache,
    /// /var/lib/containers/cache, which Podman 4 has no option to move: so
    /// it loads in a mount namespace of its own with a scratch /var/lib,
    /// and nothing outside the temporary directory changes. (The image
    /// itself goes to --root.)
    fn load(&self, image: &Path) {
        let mut load = self.cmd();
        load.args(["load", "--input"]).arg(image);
        if let Some(unshare) = find_program("unshare") {
            let mut c = Command::new(unshare);
            c.args(["--mount", "--propagation", "private", "sh", "-c"])
                .arg(r#"mount -t tmpfs -o mode=0755 berth-test /var/lib && exec "$@""#)
                .arg("sh")
                .arg(load.get_program())
                .args(load.get_args());
            for (k, v) in load.get_envs() {
                match v {
                    Some(v) => c.env(k, v),
                    None => c.env_remove(k),
                };
            }
            load = c;
        }
        let out = run_with_timeout(&mut load, TIMEOUT);
        assert!(
            out.status.success(),
            "podman load failed ({}):\n{}{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
    }

    /// `podman` with every global option that confines it.
    fn cmd(&self) -> Command {
        let d = self.dir.path();
        let mut c = Command::new(&self.bin);
        c.env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"))
            .env_remove("CONTAINER_HOST")
            .env_remove("CONTAINER_CONNECTION")
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("runroot"))
            .arg("--runtime")
            .arg(d.join("berth-runtime"));
        c
    }

    fn podman<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        run_with_timeout(self.cmd().args(args), TIMEOUT)
    }

    /// Like [`Podman::podman`], asserting success; returns stdout.
    fn ok<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> String {
        let out = self.podman(args);
        assert!(
            out.status.success(),
            "podman {:?} failed ({}):\n{}{}",
            args.iter().map(|a| a.as_ref()).collect::<Vec<_>>(),
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// `podman run` with the isolating options (no network, nothing pulled,
    /// our cgroup parent), then `args`.
    fn run_args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec![
            "run",
            "--pull",
            "never",
            "--network",
            "none",
            "--cgroup-parent",
            &self.cgroup_parent,
        ];
        v.extend_from_slice(args);
        v
    }

    /// The ids of berth containers that belong to this Podman.
    fn runtime_containers(&self) -> Vec<String> {
        let out = run_with_timeout(
            Command::new(berth()).args([
                "runtime",
                "--root",
                RUNTIME_ROOT,
                "list",
                "--format",
                "json",
            ]),
            Duration::from_secs(10),
        );
        let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
        list.iter()
            .filter(|c| {
                c["bundle"]
                    .as_str()
                    .is_some_and(|b| Path::new(b).starts_with(self.dir.path()))
            })
            .filter_map(|c| c["id"].as_str().map(String::from))
            .collect()
    }

    /// Waits until berth has deleted every container of this Podman
    /// (Podman's cleanup may finish just after the command that caused it).
    fn assert_runtime_clean(&self) {
        let clean = wait_until(Duration::from_secs(10), || {
            self.runtime_containers().is_empty()
        });
        assert!(clean, "left in berth: {:?}", self.runtime_containers());
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = run_with_timeout(
            self.cmd().args(["rm", "--all", "--force", "--time", "0"]),
            Duration::from_secs(30),
        );
        // conmon outlives podman; ours name the temporary directory.
        for pid in pids_with_cmdline(&self.dir.path().to_string_lossy()) {
            kill_pid(pid);
        }
        for id in self.runtime_containers() {
            let _ = Command::new(berth())
                .args(["runtime", "--root", RUNTIME_ROOT, "delete", "--force", &id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        unmount_under(self.dir.path());
        remove_cgroup_tree(&self.cgroup_parent);
        // The temporary directory goes when `dir` drops.
    }
}

#[test]
fn podman_run_rm_prints_the_output_and_returns_the_exit_code() {
    require_root!();
    let Some(p) = Podman::start("run") else {
        return;
    };
    let out = p.podman(&p.run_args(&[
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "echo hi from podman; echo to stderr >&2; exit 3",
    ]));
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "hi from podman\n");
    assert!(
        text(&out.stderr).contains("to stderr"),
        "{}",
        text(&out.stderr)
    );

    // A terminal: conmon receives the pty master on --console-socket.
    let out = p.podman(&p.run_args(&["--rm", "-t", IMAGE, "sh", "-c", "tty; exit 4"]));
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("/dev/pts/0"),
        "{}",
        text(&out.stdout)
    );

    assert_eq!(p.ok(&["ps", "--all", "--quiet"]).trim(), "");
    p.assert_runtime_clean();
}

#[test]
fn podman_run_of_a_missing_program_fails_with_127() {
    require_root!();
    let Some(p) = Podman::start("missing") else {
        return;
    };
    // Podman reads berth's error from the JSON log and, like Docker,
    // answers "no such file or directory" with 127.
    let out = p.podman(&p.run_args(&["--rm", IMAGE, "/no/such/program"]));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(127), "{err}");
    assert!(err.contains("/no/such/program"), "{err}");
    p.assert_runtime_clean();
}

#[test]
fn podman_run_honours_the_spec_podman_writes() {
    require_root!();
    let Some(p) = Podman::start("spec") else {
        return;
    };
    // Podman's spec makes /proc/sys read-only, so the sysctl must be
    // written before that; cgroup files are read where v1 or v2 has them.
    let out = p.ok(&p.run_args(&[
        "--rm",
        "--user",
        "65534:65534",
        "--read-only",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        "--sysctl",
        "kernel.shm_rmid_forced=1",
        "--hostname",
        "pod-box",
        "--env",
        "FOO=bar",
        "--workdir",
        "/tmp",
        "--tmpfs",
        "/scratch",
        "--cap-drop",
        "all",
        "--cap-add",
        "NET_RAW",
        IMAGE,
        "sh",
        "-c",
        "id -u; id -g; echo $(hostname) $FOO $(pwd); \
         touch /x 2>/dev/null && echo rw || echo ro; touch /scratch/y && echo scratch-rw; \
         cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; \
         cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; \
         cat /proc/sys/kernel/shm_rmid_forced; grep CapBnd /proc/self/status",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "65534",
            "65534",
            "pod-box bar /tmp",
            "ro",
            "scratch-rw",
            "67108864",
            "50",
            "1",
            "CapBnd:\t0000000000002000",
        ],
        "{out}"
    );

    // A user namespace: Podman chowns a copy of the image for the mapping,
    // berth makes the namespace and writes the maps.
    let out = p.ok(&p.run_args(&[
        "--rm",
        "--uidmap",
        "0:100000:65536",
        "--gidmap",
        "0:100000:65536",
        IMAGE,
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map /proc/self/gid_map; echo x > /tmp/f && echo tmp-rw",
    ]));
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        words,
        [
            "0", "0", "100000", "65536", "0", "100000", "65536", "tmp-rw"
        ],
        "{out}"
    );
    p.assert_runtime_clean();
}

#[test]
fn podman_exec_pause_stop_in_a_detached_container() {
    require_root!();
    let Some(p) = Podman::start("exec") else {
        return;
    };
    // A shell as pid 1 only dies of the signals it handles.
    let id = p.ok(&p.run_args(&[
        "-d",
        "--name",
        "box",
        IMAGE,
        "sh",
        "-c",
        "trap 'exit 42' TERM; while :; do sleep 0.05; done",
    ]));
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");
    assert_eq!(p.runtime_containers(), [id]);

    let out = p.podman(&[
        "exec",
        "--workdir",
        "/tmp",
        "box",
        "sh",
        "-c",
        "echo exec in $(pwd) next to $(cat /proc/1/comm); exit 5",
    ]);
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "exec in /tmp next to sh\n");

    let out = p.ok(&["exec", "-t", "box", "tty"]);
    assert!(out.contains("/dev/pts/"), "{out}");

    p.ok(&["pause", "box"]);
    assert_eq!(
        p.ok(&["inspect", "--format", "{{.State.Status}}", "box"])
            .trim(),
        "paused"
    );
    p.ok(&["unpause", "box"]);
    assert_eq!(
        p.ok(&["inspect", "--format", "{{.State.Status}}", "box"])
            .trim(),
        "running"
    );

    p.ok(&["stop", "--time", "10", "box"]);
    assert_eq!(
        p.ok(&["inspect", "--format", "{{.State.ExitCode}}", "box"])
            .trim(),
        "42"
    );
    p.ok(&["rm", "box"]);
    assert_eq!(p.ok(&["ps", "--all", "--quiet"]).trim(), "");
    p.assert_runtime_clean();
    assert!(
        !Path::new("/sys/fs/cgroup/memory")
            .join(&p.cgroup_parent)
            .join(format!("libpod-{id}"))
            .exists()
    );
}
