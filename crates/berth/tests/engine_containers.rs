//! Containers through `berth daemon`, driven by the real docker CLI: run,
//! attach, logs, exec, ps, stop, kill, rm, inspect, a real terminal, and
//! bad requests.
//!
//! `BERTH_TEST_DOCKERD=1 cargo nextest run -p berth --test 'engine_*'` runs
//! these suites against Debian's dockerd, to check the tests themselves;
//! what only berth promises (its roots, its recovery) is skipped there.

mod common;

use std::path::Path;
use std::time::Duration;

use berth_testkit::daemon::DOCKER;
use common::engine::{daemon, eventually, inspect, ok};
use common::text;

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
    let here = common::platforms().0;
    ok(&d.docker(&["run", "--rm", "--platform", here, "busybox", "true"]));
    common::assert_other_platform_refused(|args| d.docker(args));

    let (status, _, body) = d.request("GET", "/containers/nothing/json");
    assert_eq!(
        (status, body.as_str()),
        (404, "{\"message\":\"No such container: nothing\"}\n")
    );
    let (status, _, body) = d.request("POST", "/containers/create");
    // Docker 20.10 answers an empty body with 500 "EOF".
    assert_eq!(status, if d.is_berth() { 400 } else { 500 }, "{body}");
    assert!(body.contains("message"), "{body}");
    let (status, _, body) = d.request_json("POST", "/containers/create", r#"{"Image": "busybox","#);
    // Docker 20.10 answers broken JSON with 500 too; later ones with 400.
    assert_eq!(status, if d.is_berth() { 400 } else { 500 }, "{body}");
    assert!(body.starts_with("{\"message\":"), "{body}");
    // A name in use is a 409, and refused before anything is made: no
    // anonymous or named volume is left behind.
    let volumes = || ok(&d.docker(&["volume", "ls", "-q"]));
    let before = volumes();
    let (status, _, body) = d.request_json(
        "POST",
        "/containers/create?name=taken",
        r#"{"Image": "busybox", "Cmd": ["true"], "Volumes": {"/anon": {}},
            "HostConfig": {"Binds": ["fresh-named-volume:/named"]}}"#,
    );
    assert_eq!(status, 409, "{body}");
    assert_eq!(volumes(), before);
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

    /// Types `line` until `needle` shows: an attach that is not connected
    /// yet when the first line goes out (under load) gets the next one.
    fn type_until(&self, session: &str, line: &str, needle: &str) {
        for _ in 0..10 {
            self.run(&["send-keys", "-t", session, line, "Enter"]);
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            while std::time::Instant::now() < deadline {
                if self.screen(session).contains(needle) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!(
            "{needle:?} never showed in {session}: {}",
            self.screen(session)
        );
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
    drive_a_terminal(&d, &tmux, &docker, "tty");
    // berth's own CLI, as a user types it.
    if d.is_berth() {
        let berth = format!("{} -H {}", common::berth().display(), d.host());
        drive_a_terminal(&d, &tmux, &berth, "berth-tty");
    }
}

/// `CLI run -it` under tmux: type, resize, detach with ctrl-p ctrl-q,
/// reattach, leave with a code; the container is `name`.
fn drive_a_terminal(d: &berth_testkit::daemon::Daemon, tmux: &Tmux, cli: &str, name: &str) {
    let (run, attach) = (format!("{name}-run"), format!("{name}-attach"));
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        &run,
        "-x",
        "100",
        "-y",
        "30",
        &format!("{cli} run -it --name {name} busybox sh; echo run-ended=$?; sleep 60"),
    ]);
    tmux.wait_for(&run, "/ #");
    tmux.run(&[
        "send-keys",
        "-t",
        &run,
        "echo hi from $(tty); stty size",
        "Enter",
    ]);
    tmux.wait_for(&run, "hi from /dev/pts/0");
    tmux.wait_for(&run, "30 100");
    // A resize of the terminal reaches the container's.
    tmux.run(&["resize-window", "-t", &run, "-x", "120", "-y", "40"]);
    std::thread::sleep(Duration::from_millis(300));
    tmux.run(&["send-keys", "-t", &run, "stty size", "Enter"]);
    tmux.wait_for(&run, "40 120");
    // Detach with ctrl-p ctrl-q: the CLI ends, the container runs on.
    tmux.run(&["send-keys", "-t", &run, "C-p", "C-q"]);
    tmux.wait_for(&run, "run-ended=0");
    assert_eq!(inspect(d, name, "{{.State.Status}}"), "running");
    // Attach with detach keys of one's own: they end the attach, not the
    // container.
    let keyed = format!("{name}-keys");
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        &keyed,
        "-x",
        "100",
        "-y",
        "30",
        &format!("{cli} attach --detach-keys ctrl-x {name}; echo keys-ended=$?; sleep 60"),
    ]);
    tmux.type_until(&keyed, "echo keyed-$((2*3))", "keyed-6");
    tmux.run(&["send-keys", "-t", &keyed, "C-x"]);
    // The docker CLI's words and code for a detached attach.
    tmux.wait_for(&keyed, "read escape sequence");
    tmux.wait_for(&keyed, "keys-ended=1");
    assert_eq!(inspect(d, name, "{{.State.Status}}"), "running");
    // Reattach, type, and leave the shell with a code.
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        &attach,
        "-x",
        "100",
        "-y",
        "30",
        &format!("{cli} attach {name}; echo attach-ended=$?; sleep 60"),
    ]);
    tmux.type_until(&attach, "echo reattached-$((6*7))", "reattached-42");
    tmux.run(&["send-keys", "-t", &attach, "exit 3", "Enter"]);
    tmux.wait_for(&attach, "attach-ended=3");
    assert_eq!(
        inspect(d, name, "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 3"
    );
    // The terminal's output is in the log too.
    assert!(ok(&d.docker(&["logs", name])).contains("reattached-42"));
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
        "echo first; sleep 0.2; echo second >&2",
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
