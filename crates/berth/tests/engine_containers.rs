//! Containers through `berth daemon`, driven by the real docker CLI: run,
//! attach, logs, ps, stop, kill, rm, inspect, restart policies, and
//! containers that outlive a daemon killed with SIGKILL.
//!
//! `BERTH_TEST_DOCKERD=1 cargo nextest run --test engine_containers` runs
//! the same suite against Debian's dockerd, to check the tests themselves;
//! what only berth promises (its roots, its recovery) is skipped there.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use berth_testkit::daemon::{DOCKER, Daemon};
use common::{berth, text};

/// A daemon with the busybox image as `busybox:latest`, or none when the
/// docker CLI is missing.
fn daemon() -> Option<Daemon> {
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
fn berth_only(d: &Daemon) -> bool {
    if !d.is_berth() {
        eprintln!("skipped against dockerd: berth's own behaviour");
    }
    d.is_berth()
}

/// The output of a command that must succeed.
fn ok(out: &std::process::Output) -> String {
    common::check(out.clone())
}

fn inspect(d: &Daemon, name: &str, format: &str) -> String {
    ok(&d.docker(&["inspect", "-f", format, name]))
        .trim()
        .to_owned()
}

/// Polls until `f` holds (or 20 s pass).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn run_prints_output_and_returns_the_containers_exit_code() {
    let Some(d) = daemon() else { return };
    let out = d.docker(&["run", "--rm", "busybox", "echo", "hello from berth"]);
    assert_eq!(ok(&out), "hello from berth\n");

    let out = d.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo to-stdout; echo to-stderr >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(text(&out.stdout), "to-stdout\n");
    assert!(text(&out.stderr).contains("to-stderr"));

    // 127: the command is not in the image; the --rm container is gone.
    let out = d.docker(&["run", "--rm", "busybox", "no-such-command"]);
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("executable file not found"),
        "{}",
        text(&out.stderr)
    );
    // 126: found, but not executable.
    let out = d.docker(&["run", "--rm", "busybox", "/etc/passwd"]);
    assert_eq!(out.status.code(), Some(126), "{}", text(&out.stderr));
    assert_eq!(ok(&d.docker(&["ps", "-aq"])), "");

    // Config: env, workdir, user, hostname; the image's CMD by default.
    let out = d.docker(&[
        "run",
        "--rm",
        "-e",
        "GREETING=hi",
        "-w",
        "/tmp",
        "-u",
        "1000:1000",
        "-h",
        "box",
        "busybox",
        "sh",
        "-c",
        "echo $GREETING $(pwd) $(id -u):$(id -g) $(hostname) $HOME",
    ]);
    assert_eq!(ok(&out), "hi /tmp 1000:1000 box /\n");
    let out = d.docker_with_input(
        &["run", "--rm", "-i", "busybox"],
        b"echo default cmd is sh\n",
    );
    assert_eq!(ok(&out), "default cmd is sh\n");

    // stdin through -i, closed at its end.
    let out = d.docker_with_input(&["run", "--rm", "-i", "busybox", "wc", "-l"], b"a\nb\nc\n");
    assert_eq!(ok(&out).trim(), "3");

    // A private network namespace with its loopback up.
    let out = d.docker(&["run", "--rm", "busybox", "ip", "-o", "addr", "show", "lo"]);
    assert!(
        ok(&out).contains("inet 127.0.0.1/8"),
        "{}",
        text(&out.stdout)
    );
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ip",
        "-o",
        "link",
    ]);
    assert_eq!(ok(&out).lines().count(), 1, "{}", text(&out.stdout));
}

#[test]
fn detached_containers_are_listed_logged_stopped_and_removed() {
    let Some(d) = daemon() else { return };
    let id = ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "--label",
        "role=test",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got TERM; exit 42' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
    ]))
    .trim()
    .to_owned();
    assert_eq!(id.len(), 64);
    assert_eq!(ok(&d.docker(&["ps", "-q"])).trim(), &id[..12]);
    assert_eq!(
        ok(&d.docker(&[
            "ps",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.Names}} {{.Image}} {{.State}}"
        ]))
        .trim(),
        format!("{id} ticker busybox running")
    );
    assert_eq!(
        ok(&d.docker(&[
            "ps",
            "-q",
            "--filter",
            "label=role=test",
            "--filter",
            "status=running"
        ]))
        .trim(),
        &id[..12]
    );
    assert_eq!(ok(&d.docker(&["ps", "-q", "--filter", "name=nothing"])), "");
    // Names resolve by name, full id and unique prefix.
    for name in ["ticker", id.as_str(), &id[..5]] {
        assert_eq!(
            inspect(&d, name, "{{.Name}} {{.State.Status}}"),
            "/ticker running"
        );
    }
    let pid: i32 = inspect(&d, "ticker", "{{.State.Pid}}").parse().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());

    eventually("three ticks in the log", || {
        text(&d.docker(&["logs", "ticker"]).stdout).lines().count() >= 3
    });
    let logs = ok(&d.docker(&["logs", "ticker"]));
    assert!(logs.starts_with("tick 0\ntick 1\ntick 2\n"), "{logs}");
    assert_eq!(
        ok(&d.docker(&["logs", "--tail", "1", "ticker"]))
            .lines()
            .count(),
        1
    );
    let stamped = ok(&d.docker(&["logs", "-t", "--tail", "1", "ticker"]));
    assert!(
        stamped.starts_with("20") && stamped.contains("Z tick"),
        "{stamped}"
    );

    // The stop signal is trapped: the container exits with its own code.
    let out = d.docker(&["stop", "ticker"]);
    assert_eq!(ok(&out).trim(), "ticker");
    assert_eq!(
        inspect(
            &d,
            "ticker",
            "{{.State.Status}} {{.State.ExitCode}} {{.State.Running}}"
        ),
        "exited 42 false"
    );
    assert!(ok(&d.docker(&["logs", "ticker"])).ends_with("got TERM\n"));
    assert!(ok(&d.docker(&["ps", "-a", "--format", "{{.Status}}"])).starts_with("Exited (42)"),);
    assert_eq!(ok(&d.docker(&["ps", "-q"])), "");
    // Stopping a stopped container is fine; killing one is not.
    assert!(d.docker(&["stop", "ticker"]).status.success());
    let out = d.docker(&["kill", "ticker"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("is not running"),
        "{}",
        text(&out.stderr)
    );

    // Start again, then wait, kill with a signal, restart, rename.
    ok(&d.docker(&["start", "ticker"]));
    assert_eq!(inspect(&d, "ticker", "{{.State.Status}}"), "running");
    ok(&d.docker(&["restart", "-t", "5", "ticker"]));
    assert_eq!(inspect(&d, "ticker", "{{.State.Status}}"), "running");
    ok(&d.docker(&["pause", "ticker"]));
    assert_eq!(
        inspect(&d, "ticker", "{{.State.Status}} {{.State.Paused}}"),
        "paused true"
    );
    ok(&d.docker(&["unpause", "ticker"]));
    let out = d.docker(&["rm", "ticker"]);
    assert!(!out.status.success(), "a running container was removed");
    // Docker 25+'s words; 20.10 says "Stop the container before attempting
    // removal or force remove".
    assert!(
        text(&out.stderr).contains("force remove"),
        "{}",
        text(&out.stderr)
    );
    // dockerd run with --bridge=none cannot rename ("sandbox not found").
    let name = if d.is_berth() {
        ok(&d.docker(&["rename", "ticker", "tocker"]));
        "tocker"
    } else {
        "ticker"
    };
    ok(&d.docker(&["kill", "-s", "KILL", name]));
    assert_eq!(ok(&d.docker(&["wait", name])).trim(), "137");
    ok(&d.docker(&["rm", name]));
    assert_eq!(ok(&d.docker(&["ps", "-aq"])), "");
    let out = d.docker(&["inspect", name]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("No such"),
        "{}",
        text(&out.stderr)
    );
    // Nothing is left mounted for it.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&id), "{mounts}");
}

#[test]
fn logs_follow_until_the_container_exits_and_rotate() {
    let Some(d) = daemon() else { return };
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "counter",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line $i; sleep 0.1; done",
    ]));
    let out = d.docker(&["logs", "-f", "counter"]);
    assert_eq!(ok(&out), "line 1\nline 2\nline 3\nline 4\nline 5\n");

    // A flood of output with max-size 1k and 2 files: bounded on disk.
    ok(&d.docker(&[
        "run",
        "--rm",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        "--name",
        "flood",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 2000 ]; do echo flood line $i; i=$((i+1)); done",
    ]));
    ok(&d.docker(&[
        "run",
        "-d",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        "--name",
        "flood2",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 2000 ]; do echo flood line $i; i=$((i+1)); done",
    ]));
    assert_eq!(ok(&d.docker(&["wait", "flood2"])).trim(), "0");
    let log = inspect(&d, "flood2", "{{.LogPath}}");
    let size = |p: &str| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    // berth rotates before a line would pass max-size; Docker after, so
    // its files may pass it by a line.
    let bound = if d.is_berth() { 1024 } else { 1024 + 256 };
    assert!(size(&log) <= bound, "{}", size(&log));
    assert!(size(&format!("{log}.1")) <= bound);
    assert!(!Path::new(&format!("{log}.2")).exists());
    let tail = ok(&d.docker(&["logs", "--tail", "1", "flood2"]));
    assert_eq!(tail, "flood line 1999\n");
}

#[test]
fn restart_policies_restart_containers_that_exit() {
    let Some(d) = daemon() else { return };
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 1",
    ]));
    eventually("two restarts, then exited", || {
        inspect(&d, "flaky", "{{.RestartCount}} {{.State.Status}}") == "2 exited"
    });
    assert_eq!(inspect(&d, "flaky", "{{.State.ExitCode}}"), "1");

    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "busybox",
        "true",
    ]));
    eventually("a restart", || {
        inspect(&d, "always", "{{.RestartCount}}")
            .parse::<u32>()
            .unwrap()
            >= 1
    });
    ok(&d.docker(&["stop", "always"]));
    let count = inspect(&d, "always", "{{.RestartCount}}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        inspect(&d, "always", "{{.RestartCount}} {{.State.Running}}"),
        format!("{count} false")
    );

    let out = d.docker(&["run", "--rm", "--restart", "always", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
}

#[test]
fn containers_outlive_a_killed_daemon() {
    let Some(mut d) = daemon() else { return };
    if !berth_only(&d) {
        return;
    }
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "survivor",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo beat $i; i=$((i+1)); sleep 0.1; done",
    ]));
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "finisher",
        "busybox",
        "sh",
        "-c",
        "sleep 1; exit 7",
    ]));
    let pid = inspect(&d, "survivor", "{{.State.Pid}}");
    d.kill_and_restart();
    // The container kept running and the new daemon knows it.
    assert_eq!(
        inspect(&d, "survivor", "{{.State.Status}} {{.State.Pid}}"),
        format!("running {pid}")
    );
    let before = text(&d.docker(&["logs", "survivor"]).stdout)
        .lines()
        .count();
    eventually("more beats after the restart", || {
        text(&d.docker(&["logs", "survivor"]).stdout)
            .lines()
            .count()
            > before + 2
    });
    // The one that ended while no daemon watched (or after) has its code.
    assert_eq!(ok(&d.docker(&["wait", "finisher"])).trim(), "7");
    ok(&d.docker(&["stop", "-t", "1", "survivor"]));
    assert_eq!(inspect(&d, "survivor", "{{.State.Running}}"), "false");

    // Killed while a container is down: the state on disk is whole.
    d.kill_and_restart();
    assert_eq!(inspect(&d, "survivor", "{{.State.Status}}"), "exited");
    ok(&d.docker(&["start", "survivor"]));
    assert_eq!(inspect(&d, "survivor", "{{.State.Status}}"), "running");
}

#[test]
fn bad_requests_change_nothing() {
    let Some(d) = daemon() else { return };
    ok(&d.docker(&["create", "--name", "taken", "busybox", "true"]));
    let out = d.docker(&["create", "--name", "taken", "busybox", "true"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("is already in use"),
        "{}",
        text(&out.stderr)
    );
    let out = d.docker(&["create", "--name", "bad/name", "busybox", "true"]);
    assert!(
        text(&out.stderr).contains("Invalid container name"),
        "{}",
        text(&out.stderr)
    );
    let out = d.docker(&["run", "--rm", "--pull", "never", "nosuchimage", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("No such image"),
        "{}",
        text(&out.stderr)
    );
    let out = d.docker(&["run", "--rm", "--cap-add", "NOT_A_CAP", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    // --platform: the image's platform must match.
    let (here, other) = if cfg!(target_arch = "x86_64") {
        ("linux/amd64", "linux/arm64")
    } else {
        ("linux/arm64", "linux/amd64")
    };
    ok(&d.docker(&["run", "--rm", "--platform", here, "busybox", "true"]));
    let out = d.docker(&[
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

    let (status, _, body) = d.request("GET", "/containers/nothing/json");
    assert_eq!(
        (status, body.as_str()),
        (404, "{\"message\":\"No such container: nothing\"}\n")
    );
    let (status, _, body) = d.request("POST", "/containers/create");
    // Docker 20.10 answers an empty body with 500 "EOF".
    assert_eq!(status, if d.is_berth() { 400 } else { 500 }, "{body}");
    assert!(body.contains("message"), "{body}");
    assert_eq!(
        ok(&d.docker(&["ps", "-a", "--format", "{{.Names}}"])).trim(),
        "taken"
    );
    ok(&d.docker(&["rm", "taken"]));
}

#[test]
fn exec_runs_processes_in_a_running_container() {
    let Some(d) = daemon() else { return };
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "host",
        "-e",
        "FROM_RUN=1",
        "busybox",
        "sleep",
        "1000",
    ]));
    let out = d.docker(&[
        "exec",
        "host",
        "sh",
        "-c",
        "echo $FROM_RUN $(hostname); echo oops >&2; exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5));
    let hostname = inspect(&d, "host", "{{.Config.Hostname}}");
    assert_eq!(text(&out.stdout), format!("1 {hostname}\n"));
    assert!(text(&out.stderr).contains("oops"));

    let out = d.docker_with_input(
        &[
            "exec",
            "-i",
            "host",
            "sh",
            "-c",
            "cat > /seen; wc -c < /seen",
        ],
        b"12345",
    );
    assert_eq!(ok(&out).trim(), "5");
    ok(&d.docker(&[
        "exec",
        "-d",
        "host",
        "sh",
        "-c",
        "echo detached > /detached",
    ]));
    eventually("the detached exec's file", || {
        text(&d.docker(&["exec", "host", "cat", "/detached"]).stdout) == "detached\n"
    });
    let out = d.docker(&[
        "exec",
        "-u",
        "1000:1000",
        "-w",
        "/bin",
        "-e",
        "X=y",
        "host",
        "sh",
        "-c",
        "echo $(id -u) $(pwd) $X",
    ]);
    assert_eq!(ok(&out), "1000 /bin y\n");

    // Docker's exit codes for a command that cannot run.
    // 127 as Docker 23+ (20.10 said 126).
    let code = d.docker(&["exec", "host", "no-such-command"]).status.code();
    assert!(
        code == Some(127) || (!d.is_berth() && code == Some(126)),
        "{code:?}"
    );
    assert_eq!(
        d.docker(&["exec", "host", "/etc/passwd"]).status.code(),
        Some(126)
    );
    assert_eq!(
        d.docker(&["exec", "-u", "no-such-user", "host", "true"])
            .status
            .code(),
        Some(126)
    );

    // Not in a stopped container.
    ok(&d.docker(&["kill", "host"]));
    let out = d.docker(&["exec", "host", "true"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("is not running"),
        "{}",
        text(&out.stderr)
    );
}

/// A tmux server of the test's own, killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new() -> Option<Tmux> {
        let found = std::process::Command::new("tmux").arg("-V").output();
        if found.is_err() {
            eprintln!("skipped: tmux is missing");
            return None;
        }
        Some(Tmux {
            socket: format!("berth-test-{}", std::process::id()),
        })
    }

    fn run(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap();
        text(&out.stdout)
    }

    fn screen(&self, session: &str) -> String {
        self.run(&["capture-pane", "-p", "-t", session])
    }

    fn wait_for(&self, session: &str, needle: &str) {
        eventually(&format!("{needle:?} on the screen"), || {
            self.screen(session).contains(needle)
        });
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

#[test]
fn run_it_works_in_a_real_terminal() {
    let Some(d) = daemon() else { return };
    let Some(tmux) = Tmux::new() else { return };
    let docker = format!("{DOCKER} -H {}", d.host());
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "run",
        "-x",
        "100",
        "-y",
        "30",
        &format!("{docker} run -it --name tty busybox sh; echo run-ended=$?; sleep 60"),
    ]);
    tmux.wait_for("run", "/ #");
    tmux.run(&[
        "send-keys",
        "-t",
        "run",
        "echo hi from $(tty); stty size",
        "Enter",
    ]);
    tmux.wait_for("run", "hi from /dev/pts/0");
    tmux.wait_for("run", "30 100");
    // A resize of the terminal reaches the container's.
    tmux.run(&["resize-window", "-t", "run", "-x", "120", "-y", "40"]);
    std::thread::sleep(Duration::from_millis(300));
    tmux.run(&["send-keys", "-t", "run", "stty size", "Enter"]);
    tmux.wait_for("run", "40 120");
    // Detach with ctrl-p ctrl-q: the CLI ends, the container runs on.
    tmux.run(&["send-keys", "-t", "run", "C-p", "C-q"]);
    tmux.wait_for("run", "run-ended=0");
    assert_eq!(inspect(&d, "tty", "{{.State.Status}}"), "running");
    // Reattach, type, and leave the shell with a code.
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "attach",
        "-x",
        "100",
        "-y",
        "30",
        &format!("{docker} attach tty; echo attach-ended=$?; sleep 60"),
    ]);
    std::thread::sleep(Duration::from_millis(500));
    tmux.run(&[
        "send-keys",
        "-t",
        "attach",
        "echo reattached-$((6*7))",
        "Enter",
    ]);
    tmux.wait_for("attach", "reattached-42");
    tmux.run(&["send-keys", "-t", "attach", "exit 3", "Enter"]);
    tmux.wait_for("attach", "attach-ended=3");
    assert_eq!(
        inspect(&d, "tty", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 3"
    );
    // The terminal's output is in the log too.
    assert!(ok(&d.docker(&["logs", "tty"])).contains("reattached-42"));
}

#[test]
fn volumes_keep_data_across_containers_and_restarts() {
    let Some(mut d) = daemon() else { return };
    assert_eq!(ok(&d.docker(&["volume", "create", "data"])).trim(), "data");
    assert!(ok(&d.docker(&["volume", "ls", "-q"])).contains("data"));
    let mountpoint = ok(&d.docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", "data"]));
    assert!(
        mountpoint.trim().ends_with("/volumes/data/_data"),
        "{mountpoint}"
    );

    ok(&d.docker(&[
        "run",
        "--name",
        "writer",
        "-v",
        "data:/data",
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]));
    assert_eq!(
        inspect(
            &d,
            "writer",
            "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}}{{end}}"
        ),
        "volume data /data true"
    );
    let out = d.docker(&["volume", "rm", "data"]);
    assert!(!out.status.success(), "a volume in use was removed");
    assert!(
        text(&out.stderr).contains("volume is in use"),
        "{}",
        text(&out.stderr)
    );
    ok(&d.docker(&["rm", "writer"]));
    if d.is_berth() {
        d.kill_and_restart();
    }
    let out = d.docker(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,source=data,target=/again,readonly",
        "busybox",
        "sh",
        "-c",
        "cat /again/f; touch /again/g",
    ]);
    assert_eq!(text(&out.stdout), "kept\n");
    assert!(!out.status.success(), "a read-only volume was written");

    // A new named volume is filled from the image's files at its path.
    let out = d.docker(&[
        "run",
        "--rm",
        "-v",
        "etc:/etc",
        "busybox",
        "cat",
        "/etc/passwd",
    ]);
    assert!(ok(&out).contains("root:"), "{}", text(&out.stdout));

    // Anonymous volumes: -v /path, removed by rm -v and by --rm.
    ok(&d.docker(&[
        "run",
        "--name",
        "anon",
        "-v",
        "/scratch",
        "busybox",
        "touch",
        "/scratch/x",
    ]));
    let anon = inspect(&d, "anon", "{{range .Mounts}}{{.Name}}{{end}}");
    assert_eq!(anon.len(), 64);
    ok(&d.docker(&["rm", "-v", "anon"]));
    assert!(!ok(&d.docker(&["volume", "ls", "-q"])).contains(&anon));
    ok(&d.docker(&["run", "--rm", "-v", "/scratch", "busybox", "true"]));
    let names = ok(&d.docker(&["volume", "ls", "-q"]));
    assert_eq!(names.lines().count(), 2, "{names}");

    // --volumes-from: another container's volumes, read-only on request.
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "owner",
        "-v",
        "data:/data",
        "busybox",
        "sleep",
        "1000",
    ]));
    assert_eq!(
        ok(&d.docker(&[
            "run",
            "--rm",
            "--volumes-from",
            "owner:ro",
            "busybox",
            "cat",
            "/data/f"
        ])),
        "kept\n"
    );
    assert!(
        !d.docker(&[
            "run",
            "--rm",
            "--volumes-from",
            "owner:ro",
            "busybox",
            "touch",
            "/data/g"
        ])
        .status
        .success()
    );
    ok(&d.docker(&["rm", "-f", "owner"]));
    // ps -s: the writable layer's size.
    ok(&d.docker(&[
        "run",
        "--name",
        "sized",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/zero of=/z bs=1k count=32 2>/dev/null",
    ]));
    let size = ok(&d.docker(&[
        "ps",
        "-a",
        "-s",
        "--filter",
        "name=sized",
        "--format",
        "{{.Size}}",
    ]));
    assert!(size.contains("kB") && size.contains("virtual"), "{size}");
    ok(&d.docker(&["rm", "sized"]));

    // The local driver's options: a tmpfs volume.
    ok(&d.docker(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=1m",
        "scratchpad",
    ]));
    let out = d.docker(&[
        "run",
        "--rm",
        "-v",
        "scratchpad:/s",
        "busybox",
        "sh",
        "-c",
        "grep ' /s ' /proc/mounts",
    ]);
    assert!(ok(&out).contains("tmpfs"), "{}", text(&out.stdout));

    // Prune: anonymous by default, every unused one with --all.
    // --all needs API 1.42 (before it, prune took named volumes too).
    if d.is_berth() {
        ok(&d.docker(&["volume", "prune", "-f", "--all"]));
    } else {
        ok(&d.docker(&["volume", "prune", "-f"]));
    }
    if d.is_berth() {
        assert_eq!(ok(&d.docker(&["volume", "ls", "-q"])), "");
    }
}

#[test]
fn images_in_use_are_removed_only_when_forced() {
    let Some(d) = daemon() else { return };
    ok(&d.docker(&["create", "--name", "user", "busybox", "true"]));
    let out = d.docker(&["rmi", "busybox"]);
    assert!(!out.status.success(), "an image in use was removed");
    assert!(
        text(&out.stderr).contains("must force"),
        "{}",
        text(&out.stderr)
    );
    ok(&d.docker(&["image", "prune", "-af"]));
    assert!(ok(&d.docker(&["images", "-q"])).trim().len() == 12);
    // Forced: the name goes; berth keeps the image (unnamed) for its
    // container, where Docker deletes the record and keeps the layers.
    ok(&d.docker(&["rmi", "-f", "busybox"]));
    if d.is_berth() {
        assert_eq!(
            ok(&d.docker(&["images", "--format", "{{.Repository}}"])).trim(),
            "<none>"
        );
    }
    ok(&d.docker(&["start", "-a", "user"]));
    ok(&d.docker(&["rm", "user"]));
    ok(&d.docker(&["image", "prune", "-f"]));
    assert_eq!(ok(&d.docker(&["images", "-q"])), "");
}

#[test]
fn top_stats_diff_cp_export_and_events() {
    let Some(d) = daemon() else { return };
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "obs",
        "busybox",
        "sh",
        "-c",
        "mkdir /made; echo x > /made/f; rm /bin/vi; sleep 1000",
    ]));
    eventually("the container's changes", || {
        text(&d.docker(&["diff", "obs"]).stdout).contains("A /made/f")
    });
    let mut changes: Vec<String> = ok(&d.docker(&["diff", "obs"]))
        .lines()
        .map(str::to_owned)
        .collect();
    changes.sort();
    assert_eq!(changes, ["A /made", "A /made/f", "C /bin", "D /bin/vi"]);
    let top = ok(&d.docker(&["top", "obs"]));
    assert!(
        top.starts_with("UID") && top.contains("sleep 1000"),
        "{top}"
    );
    let stats = ok(&d.docker(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        "obs",
    ]));
    assert_eq!(stats.trim(), "obs 1");

    // cp both ways, confined to the container's root.
    let host = d.dir().join("from-host.txt");
    std::fs::write(&host, "from the host\n").unwrap();
    ok(&d.docker(&["cp", host.to_str().unwrap(), "obs:/made/"]));
    assert_eq!(
        ok(&d.docker(&["exec", "obs", "cat", "/made/from-host.txt"])),
        "from the host\n"
    );
    let out_dir = d.dir().join("copied");
    ok(&d.docker(&["cp", "obs:/made", out_dir.to_str().unwrap()]));
    assert_eq!(std::fs::read_to_string(out_dir.join("f")).unwrap(), "x\n");
    ok(&d.docker(&["exec", "obs", "ln", "-s", "/../../../../etc", "/escape"]));
    let escaped = d.dir().join("escaped");
    // The link resolves inside the container: its /etc/passwd, not the host's.
    ok(&d.docker(&["cp", "obs:/escape/passwd", escaped.to_str().unwrap()]));
    let inside = ok(&d.docker(&["exec", "obs", "cat", "/etc/passwd"]));
    assert_eq!(std::fs::read_to_string(&escaped).unwrap(), inside);

    // export of a stopped container: the image's files and its changes.
    ok(&d.docker(&["stop", "-t", "0", "obs"]));
    let tar = d.dir().join("obs.tar");
    ok(&d.docker(&["export", "-o", tar.to_str().unwrap(), "obs"]));
    let list = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&tar)
        .output()
        .unwrap();
    let names = text(&list.stdout);
    assert!(
        names.contains("made/from-host.txt") && names.contains("bin/busybox"),
        "{names}"
    );
    assert!(!names.lines().any(|l| l == "bin/vi"), "{names}");

    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let events = ok(&d.docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "container=obs",
        "--format",
        "{{.Type}} {{.Action}}",
    ]));
    for want in [
        "container create",
        "container start",
        "container exec_create: cat /made/from-host.txt",
        "container die",
        "container stop",
    ] {
        assert!(events.contains(want), "{want} missing from {events}");
    }
    ok(&d.docker(&["rm", "obs"]));
}

#[test]
fn update_changes_limits_of_a_running_container_and_info_counts_containers() {
    let Some(d) = daemon() else { return };
    ok(&d.docker(&[
        "run", "-d", "--name", "limited", "-m", "128m", "busybox", "sleep", "1000",
    ]));
    ok(&d.docker(&["create", "--name", "idle", "busybox", "true"]));
    ok(&d.docker(&[
        "update",
        "-m",
        "64m",
        "--memory-swap",
        "64m",
        "--pids-limit",
        "50",
        "limited",
    ]));
    assert_eq!(
        inspect(
            &d,
            "limited",
            "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}"
        ),
        "67108864 50"
    );
    // The cgroup itself changed: more than 50 processes cannot start.
    let out = d.docker(&[
        "exec",
        "limited",
        "sh",
        "-c",
        "for i in $(seq 60); do sleep 5 & done 2>/dev/null; sleep 0.2; ps | grep -c 'sleep 5'",
    ]);
    let started: u32 = text(&out.stdout).trim().parse().unwrap_or(0);
    assert!(started < 60, "the pids limit did not hold: {started}");
    assert_eq!(
        ok(&d.docker(&[
            "info",
            "--format",
            "{{.Containers}} {{.ContainersRunning}} {{.ContainersStopped}}"
        ]))
        .trim(),
        "2 1 1"
    );
}

#[test]
fn health_checks_report_healthy_and_unhealthy() {
    let Some(d) = daemon() else { return };
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "checked",
        "--health-cmd",
        "test -f /ready",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "busybox",
        "sh",
        "-c",
        "sleep 1; touch /ready; sleep 1000",
    ]));
    assert_eq!(
        inspect(&d, "checked", "{{.State.Health.Status}}"),
        "starting"
    );
    eventually("healthy", || {
        inspect(&d, "checked", "{{.State.Health.Status}}") == "healthy"
    });
    assert!(ok(&d.docker(&["ps", "--format", "{{.Status}}"])).contains("(healthy)"));
    assert_eq!(
        ok(&d.docker(&["ps", "-q", "--filter", "health=healthy"]))
            .trim()
            .len(),
        12
    );
    ok(&d.docker(&["exec", "checked", "rm", "/ready"]));
    eventually("unhealthy", || {
        inspect(&d, "checked", "{{.State.Health.Status}}") == "unhealthy"
    });
    let log = inspect(
        &d,
        "checked",
        "{{range .State.Health.Log}}{{.ExitCode}} {{end}}",
    );
    assert!(log.trim_end().ends_with("1 1"), "{log}");
    // --no-healthcheck: none at all.
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "unchecked",
        "--no-healthcheck",
        "busybox",
        "sleep",
        "1000",
    ]));
    assert_eq!(
        inspect(
            &d,
            "unchecked",
            "{{if .State.Health}}has{{else}}none{{end}}"
        ),
        "none"
    );
}

#[test]
fn security_and_mount_options_reach_the_container() {
    let Some(d) = daemon() else { return };
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(args);
        d.docker(&all)
    };
    // Docker's default capabilities; --cap-drop/--cap-add; --privileged.
    let caps = |args: &[&str]| {
        let mut a = args.to_vec();
        a.extend_from_slice(&["busybox", "sh", "-c", "grep CapBnd /proc/self/status"]);
        let out = ok(&run(&a));
        u64::from_str_radix(out.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    let default = caps(&[]);
    assert_eq!(default, 0xa80425fb, "Docker's default set");
    assert_eq!(caps(&["--cap-drop", "ALL"]), 0);
    assert_eq!(
        caps(&["--cap-drop", "ALL", "--cap-add", "NET_ADMIN"]),
        1 << 12
    );
    // This host's bounding set lacks CAP_SYS_RESOURCE: berth gives a
    // privileged container what the host has, runc (under dockerd) fails.
    if d.is_berth() {
        assert!(caps(&["--privileged"]) > default);
    }
    // --read-only, --tmpfs, -v with :ro, --shm-size, --ulimit, no-new-privileges.
    let out = run(&["--read-only", "busybox", "touch", "/x"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("Read-only file system"),
        "{}",
        text(&out.stderr)
    );
    ok(&run(&[
        "--read-only",
        "--tmpfs",
        "/scratch",
        "busybox",
        "touch",
        "/scratch/x",
    ]));
    let host = d.dir().join("shared");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in"), "from host\n").unwrap();
    let bind = format!("{}:/shared:ro", host.display());
    assert_eq!(
        ok(&run(&["-v", &bind, "busybox", "cat", "/shared/in"])),
        "from host\n"
    );
    assert!(
        !run(&["-v", &bind, "busybox", "touch", "/shared/new"])
            .status
            .success()
    );
    let rw = format!("{}:/shared", host.display());
    ok(&run(&["-v", &rw, "busybox", "touch", "/shared/new"]));
    assert!(host.join("new").exists());
    let shm = ok(&run(&[
        "--shm-size",
        "8m",
        "busybox",
        "sh",
        "-c",
        "df -k /dev/shm | tail -1",
    ]));
    assert_eq!(shm.split_whitespace().nth(1), Some("8192"), "{shm}");
    assert_eq!(
        ok(&run(&[
            "--ulimit",
            "nofile=512:1024",
            "busybox",
            "sh",
            "-c",
            "ulimit -n"
        ]))
        .trim(),
        "512"
    );
    let nnp = ok(&run(&[
        "--security-opt",
        "no-new-privileges",
        "busybox",
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ]));
    assert!(nnp.trim().ends_with('1'), "{nnp}");
    // Limits land in the cgroup (v1's file here; v2's on a v2 host).
    let limit = ok(&run(&[
        "-m",
        "32m",
        "busybox",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]));
    assert_eq!(limit.trim(), (32u64 << 20).to_string());
    // --network host shares the host's interfaces and hostname.
    let hostname = ok(&run(&["--network", "host", "busybox", "hostname"]));
    let ours = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(hostname.trim(), ours.trim());
}

#[test]
fn init_forwards_signals_and_passes_the_exit_code() {
    let Some(d) = daemon() else { return };
    let ps = ok(&d.docker(&[
        "run",
        "--rm",
        "--init",
        "busybox",
        "sh",
        "-c",
        "cat /proc/1/comm; echo $$",
    ]));
    let lines: Vec<&str> = ps.lines().collect();
    let init = if d.is_berth() {
        "berth-init"
    } else {
        "docker-init"
    };
    assert_eq!(lines[0], init, "{ps}");
    assert_ne!(lines[1], "1", "the program is not pid 1 under --init");
    let out = d.docker(&["run", "--rm", "--init", "busybox", "sh", "-c", "exit 5"]);
    assert_eq!(out.status.code(), Some(5));
    // A program that ignores nothing: SIGTERM reaches it through the init.
    ok(&d.docker(&[
        "run", "-d", "--init", "--name", "sleeper", "busybox", "sleep", "1000",
    ]));
    let started = Instant::now();
    ok(&d.docker(&["stop", "-t", "20", "sleeper"]));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "SIGTERM was not forwarded"
    );
    assert_eq!(inspect(&d, "sleeper", "{{.State.ExitCode}}"), "143");
}

#[test]
fn the_default_seccomp_profile_applies_and_can_be_replaced() {
    let Some(d) = daemon() else { return };
    // A user namespace needs no capability; the default profile refuses it.
    let out = d.docker(&["run", "--rm", "busybox", "unshare", "-U", "true"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("Operation not permitted"),
        "{}",
        text(&out.stderr)
    );
    ok(&d.docker(&[
        "run",
        "--rm",
        "--security-opt",
        "seccomp=unconfined",
        "busybox",
        "unshare",
        "-U",
        "true",
    ]));
    if d.is_berth() {
        ok(&d.docker(&[
            "run",
            "--rm",
            "--privileged",
            "busybox",
            "unshare",
            "-U",
            "true",
        ]));
    }
    // Execs get the container's filter.
    ok(&d.docker(&[
        "run", "-d", "--name", "filtered", "busybox", "sleep", "1000",
    ]));
    assert!(
        !d.docker(&["exec", "filtered", "unshare", "-U", "true"])
            .status
            .success()
    );
    // A profile of Docker's format, from a file (the CLI sends its text).
    let profile = d.dir().join("profile.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let out = d.docker(&[
        "run",
        "--rm",
        "--security-opt",
        &opt,
        "busybox",
        "mkdir",
        "/x",
    ]);
    assert!(!out.status.success());
    ok(&d.docker(&[
        "run",
        "--rm",
        "--security-opt",
        &opt,
        "busybox",
        "touch",
        "/x",
    ]));
}

#[test]
fn after_a_reboot_restart_policies_bring_containers_back() {
    let Some(mut d) = daemon() else { return };
    if !berth_only(&d) {
        return;
    }
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "busybox",
        "sleep",
        "1000",
    ]));
    ok(&d.docker(&["run", "-d", "--name", "once", "busybox", "sleep", "1000"]));
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "stopped",
        "--restart",
        "unless-stopped",
        "busybox",
        "sleep",
        "1000",
    ]));
    ok(&d.docker(&["stop", "-t", "0", "stopped"]));
    // The machine goes down: no daemon, no shims, no containers.
    d.kill();
    d.kill_containers();
    d.restart();
    eventually("the always container running again", || {
        inspect(&d, "always", "{{.State.Status}}") == "running"
    });
    assert_eq!(inspect(&d, "once", "{{.State.Status}}"), "exited");
    assert_eq!(inspect(&d, "stopped", "{{.State.Status}}"), "exited");
    // And it works as before.
    assert_eq!(ok(&d.docker(&["exec", "always", "echo", "back"])), "back\n");
}

#[test]
fn system_df_and_prune_account_for_everything() {
    let Some(d) = daemon() else { return };
    ok(&d.docker(&[
        "run",
        "--name",
        "writer",
        "-v",
        "kept:/v",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/zero of=/big bs=1k count=64 2>/dev/null; echo x > /v/x",
    ]));
    let df = ok(&d.docker(&[
        "system",
        "df",
        "--format",
        "{{.Type}} {{.TotalCount}} {{.Active}}",
    ]));
    assert!(df.contains("Images 1 1"), "{df}");
    assert!(df.contains("Containers 1 0"), "{df}");
    assert!(df.contains("Local Volumes 1 1"), "{df}");
    let size = ok(&d.docker(&[
        "system",
        "df",
        "-v",
        "--format",
        "{{range .Containers}}{{.Size}}{{end}}",
    ]));
    assert!(size.contains("kB"), "{size}");
    let pruned = ok(&d.docker(&["system", "prune", "-af", "--volumes"]));
    assert!(pruned.contains("Deleted Containers"), "{pruned}");
    assert_eq!(ok(&d.docker(&["ps", "-aq"])), "");
    assert_eq!(ok(&d.docker(&["images", "-q"])), "");
    // A named volume stays unless asked for with --all (Docker 23+).
    // Docker 20.10 (API 1.41) prunes named volumes too.
    if d.is_berth() {
        assert_eq!(ok(&d.docker(&["volume", "ls", "-q"])).trim(), "kept");
    }
}

#[test]
fn commit_makes_an_image_of_a_containers_changes() {
    let Some(d) = daemon() else { return };
    ok(&d.docker(&[
        "run",
        "--name",
        "changed",
        "busybox",
        "sh",
        "-c",
        "echo committed > /note; rm /bin/vi",
    ]));
    let id = ok(&d.docker(&[
        "commit",
        "-c",
        r#"CMD ["cat", "/note"]"#,
        "-m",
        "a note",
        "changed",
        "noted:v1",
    ]));
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(ok(&d.docker(&["run", "--rm", "noted:v1"])), "committed\n");
    assert!(
        !d.docker(&["run", "--rm", "noted:v1", "ls", "/bin/vi"])
            .status
            .success()
    );
    assert_eq!(
        ok(&d.docker(&["history", "--format", "{{.Comment}}", "noted:v1"]))
            .lines()
            .next(),
        Some("a note")
    );
    // Committing a running container pauses it and leaves it running.
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "live",
        "busybox",
        "sh",
        "-c",
        "echo live > /state; sleep 1000",
    ]));
    eventually("the file", || {
        d.docker(&["exec", "live", "cat", "/state"])
            .status
            .success()
    });
    ok(&d.docker(&["commit", "live", "snapshot:v1"]));
    assert_eq!(inspect(&d, "live", "{{.State.Status}}"), "running");
    assert_eq!(
        ok(&d.docker(&["run", "--rm", "snapshot:v1", "cat", "/state"])),
        "live\n"
    );
}

#[test]
fn a_removal_cut_short_is_finished_at_the_next_start() {
    let Some(mut d) = daemon() else { return };
    if !berth_only(&d) {
        return;
    }
    let id = ok(&d.docker(&["run", "-d", "--name", "doomed", "busybox", "sleep", "1000"]))
        .trim()
        .to_owned();
    // The daemon dies just after renaming the container's directory away:
    // its record is gone, its shim, container and snapshot are not.
    d.kill();
    let dir = d.data_root().join("containers");
    std::fs::rename(dir.join(&id), dir.join(format!(".removing-{id}"))).unwrap();
    d.restart();
    assert!(!d.docker(&["inspect", "doomed"]).status.success());
    let active = std::fs::read_dir(d.data_root().join("snapshots/active"))
        .unwrap()
        .count();
    assert_eq!(active, 0, "the writable snapshot is left");
    assert!(!d.exec_root().join("shims").join(&id).exists());
    assert!(!dir.join(format!(".removing-{id}")).exists());
    // The name is free again.
    ok(&d.docker(&["run", "--rm", "--name", "doomed", "busybox", "true"]));
}

#[test]
fn attach_with_logs_replays_what_was_written() {
    let Some(d) = daemon() else { return };
    ok(&d.docker(&[
        "run",
        "--name",
        "past",
        "busybox",
        "sh",
        "-c",
        "echo first; echo second >&2",
    ]));
    let id = inspect(&d, "past", "{{.Id}}");
    use std::io::{Read, Write};
    let mut conn = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        conn,
        "POST /v1.41/containers/{id}/attach?logs=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
    )
    .unwrap();
    let mut got = Vec::new();
    let _ = conn.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    let body = &got[got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..];
    // Docker's frames: stdout's line, then stderr's.
    assert_eq!(&body[..8], &[1, 0, 0, 0, 0, 0, 0, 6]);
    assert_eq!(&body[8..14], b"first\n");
    assert_eq!(&body[14..22], &[2, 0, 0, 0, 0, 0, 0, 7]);
    assert_eq!(&body[22..29], b"second\n");
}
