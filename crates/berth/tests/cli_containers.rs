//! berth's own container commands, a client of the daemon: the first
//! `berth run` starts a daemon, and run, ps, logs, exec, stop, rm and
//! inspect behave as the docker CLI's.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use berth_testkit::daemon::Daemon;
use berth_testkit::peer::run_with_timeout;
use common::{berth, check, text};

fn berth_cli(d: &Daemon, args: &[&str]) -> Output {
    run_with_timeout(
        Command::new(berth())
            .arg("-H")
            .arg(d.host())
            .args(args)
            .env("BERTH_DATA_ROOT", d.data_root()),
        Duration::from_secs(30),
    )
}

fn berth_with_input(d: &Daemon, args: &[&str], input: &[u8]) -> Output {
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

#[test]
fn the_first_berth_run_starts_a_daemon_and_the_cli_manages_containers() {
    let mut d = Daemon::unstarted(berth());
    d.import_busybox("busybox:latest", &["-c", r#"CMD ["sh"]"#]);
    // No daemon yet: run starts one on the socket.
    let out = berth_cli(&d, &["run", "--rm", "busybox", "echo", "hello from berth"]);
    assert!(d.adopt(), "no daemon was started");
    assert_eq!(check(out), "hello from berth\n");
    assert!(d.dir().join("daemon.log").exists());

    let out = berth_cli(
        &d,
        &["run", "--rm", "busybox", "sh", "-c", "echo err >&2; exit 7"],
    );
    assert_eq!(out.status.code(), Some(7));
    assert!(text(&out.stderr).contains("err"));
    assert_eq!(
        berth_cli(&d, &["run", "--rm", "busybox", "no-such"])
            .status
            .code(),
        Some(127)
    );
    let out = berth_with_input(&d, &["run", "--rm", "-i", "busybox", "wc", "-c"], b"12345");
    assert_eq!(check(out).trim(), "5");
    assert_eq!(
        check(berth_cli(
            &d,
            &[
                "run",
                "--rm",
                "-e",
                "A=b",
                "-h",
                "named",
                "busybox",
                "sh",
                "-c",
                "echo $A $(hostname)"
            ]
        )),
        "b named\n"
    );

    let id = check(berth_cli(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "ticker",
            "busybox",
            "sh",
            "-c",
            "trap 'exit 9' TERM; while true; do echo tick; sleep 0.1; done",
        ],
    ))
    .trim()
    .to_owned();
    assert_eq!(id.len(), 64);
    let ps = check(berth_cli(&d, &["ps"]));
    assert!(ps.starts_with("CONTAINER ID   IMAGE"), "{ps}");
    assert!(ps.contains("ticker") && ps.contains("Up "), "{ps}");
    assert_eq!(check(berth_cli(&d, &["ps", "-q"])).trim(), &id[..12]);
    assert_eq!(
        check(berth_cli(&d, &["ps", "--format", "{{.Names}} {{.State}}"])).trim(),
        "ticker running"
    );
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        check(berth_cli(&d, &["logs", "--tail", "1", "ticker"])),
        "tick\n"
    );
    let out = berth_cli(&d, &["exec", "ticker", "sh", "-c", "echo in-exec; exit 4"]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(text(&out.stdout), "in-exec\n");
    assert_eq!(check(berth_cli(&d, &["stop", "ticker"])).trim(), "ticker");
    assert_eq!(
        check(berth_cli(
            &d,
            &[
                "inspect",
                "-f",
                "{{.State.Status}} {{.State.ExitCode}}",
                "ticker"
            ]
        ))
        .trim(),
        "exited 9"
    );
    assert_eq!(check(berth_cli(&d, &["wait", "ticker"])).trim(), "9");
    let out = berth_cli(&d, &["inspect", "nothing"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("No such container: nothing"));
    assert_eq!(check(berth_cli(&d, &["rm", "ticker"])).trim(), "ticker");
    assert_eq!(check(berth_cli(&d, &["ps", "-aq"])), "");
    let out = berth_cli(&d, &["run", "--rm", "--pull", "never", "nosuchimage"]);
    assert_eq!(out.status.code(), Some(125));
}
