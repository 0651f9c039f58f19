//! berth's own container commands, a client of the daemon: the first
//! `berth run` starts a daemon, and run, ps, logs, exec, stop, rm and
//! inspect behave as the docker CLI's.

mod common;

use std::process::Command;
use std::time::Duration;

use berth_testkit::daemon::Daemon;
use common::{berth, berth_cli, berth_with_input, check, text};

#[test]
fn the_first_berth_run_starts_a_daemon_and_the_cli_manages_containers() {
    let mut d = Daemon::unstarted(berth());
    d.import_busybox("busybox:latest", &["-c", r#"CMD ["sh"]"#]);
    // No daemon yet: run starts one on the socket.
    let out = berth_cli(&d, &["run", "--rm", "busybox", "echo", "hello from berth"]);
    assert!(d.adopt(), "no daemon was started");
    assert_eq!(check(out), "hello from berth\n");
    assert!(d.exec_root().join("daemon.log").exists());

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
    let sized = check(berth_cli(&d, &["ps", "-s"]));
    assert!(
        sized.contains("SIZE") && sized.contains("(virtual "),
        "{sized}"
    );
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
    // inspect falls back to images.
    assert_eq!(
        check(berth_cli(&d, &["inspect", "-f", "{{.Os}}", "busybox"])).trim(),
        "linux"
    );
    let out = berth_cli(&d, &["inspect", "nothing"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("No such container: nothing"));
    assert_eq!(check(berth_cli(&d, &["rm", "ticker"])).trim(), "ticker");
    assert_eq!(check(berth_cli(&d, &["ps", "-aq"])), "");
    let out = berth_cli(&d, &["run", "--rm", "--pull", "never", "nosuchimage"]);
    assert_eq!(out.status.code(), Some(125));
}

#[test]
fn the_cli_copies_diffs_exports_and_reports() {
    let d = Daemon::start(berth());
    d.import_busybox("busybox:latest", &["-c", r#"CMD ["sh"]"#]);
    let since = common::unix_now().to_string();
    check(berth_cli(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "box",
            "busybox",
            "sh",
            "-c",
            "mkdir /made; sleep 1000",
        ],
    ));
    let host = d.dir().join("hello.txt");
    std::fs::write(&host, "hello\n").unwrap();
    check(berth_cli(&d, &["cp", host.to_str().unwrap(), "box:/made/"]));
    check(berth_cli(
        &d,
        &["cp", host.to_str().unwrap(), "box:/made/renamed.txt"],
    ));
    assert_eq!(
        check(berth_cli(
            &d,
            &["exec", "box", "cat", "/made/hello.txt", "/made/renamed.txt"]
        )),
        "hello\nhello\n"
    );
    let back = d.dir().join("back");
    check(berth_cli(&d, &["cp", "box:/made", back.to_str().unwrap()]));
    assert_eq!(
        std::fs::read_to_string(back.join("renamed.txt")).unwrap(),
        "hello\n"
    );
    let one = d.dir().join("one.txt");
    check(berth_cli(
        &d,
        &["cp", "box:/made/hello.txt", one.to_str().unwrap()],
    ));
    assert_eq!(std::fs::read_to_string(&one).unwrap(), "hello\n");
    assert_eq!(
        check(berth_cli(&d, &["diff", "box"])),
        "A /made\nA /made/hello.txt\nA /made/renamed.txt\n"
    );
    let top = check(berth_cli(&d, &["top", "box"]));
    assert!(
        top.starts_with("UID") && top.contains("sleep 1000"),
        "{top}"
    );
    let stats = check(berth_cli(
        &d,
        &[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.PIDs}}",
            "box",
        ],
    ));
    assert_eq!(stats.trim(), "box 1");
    check(berth_cli(&d, &["update", "--pids-limit", "20", "box"]));
    assert_eq!(
        check(berth_cli(
            &d,
            &["inspect", "-f", "{{.HostConfig.PidsLimit}}", "box"]
        ))
        .trim(),
        "20"
    );
    let tar = d.dir().join("box.tar");
    check(berth_cli(
        &d,
        &["export", "-o", tar.to_str().unwrap(), "box"],
    ));
    let list = Command::new("tar").arg("-tf").arg(&tar).output().unwrap();
    assert!(text(&list.stdout).contains("made/renamed.txt"));
    check(berth_cli(&d, &["rm", "-f", "box"]));
    let until = (common::unix_now() + 1).to_string();
    let events = check(berth_cli(
        &d,
        &[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "type=container",
            "--format",
            "{{.Action}}",
        ],
    ));
    assert!(
        events.starts_with("create\nstart\n") && events.contains("destroy"),
        "{events}"
    );
    // Volumes through the CLI.
    assert_eq!(
        check(berth_cli(&d, &["volume", "create", "vol"])).trim(),
        "vol"
    );
    assert!(check(berth_cli(&d, &["volume", "ls"])).contains("local     vol"));
    assert_eq!(check(berth_cli(&d, &["volume", "rm", "vol"])).trim(), "vol");
}

#[test]
fn the_cli_reports_the_system() {
    let d = Daemon::start(berth());
    d.import_busybox("busybox:latest", &["-c", r#"CMD ["sh"]"#]);
    let version = check(berth_cli(
        &d,
        &["version", "--format", "{{.Server.ApiVersion}}"],
    ));
    assert_eq!(version.trim(), "1.50");
    assert!(check(berth_cli(&d, &["version"])).contains("Server: berth"));
    check(berth_cli(
        &d,
        &["run", "-d", "--name", "up", "busybox", "sleep", "1000"],
    ));
    check(berth_cli(
        &d,
        &["create", "--name", "down", "busybox", "true"],
    ));
    let info = check(berth_cli(
        &d,
        &[
            "info",
            "--format",
            "{{.Containers}} {{.ContainersRunning}} {{.Images}}",
        ],
    ));
    assert_eq!(info.trim(), "2 1 1");
    assert!(check(berth_cli(&d, &["info"])).contains(" Running: 1"));
    let df = check(berth_cli(&d, &["system", "df"]));
    assert!(df.starts_with("TYPE") && df.contains("Containers"), "{df}");
    assert_eq!(check(berth_cli(&d, &["port", "up"])), "");
    // --format: {{json .}}, table, and a plain template.
    let json_rows = check(berth_cli(&d, &["ps", "-a", "--format", "{{json .}}"]));
    let rows: Vec<serde_json::Value> = json_rows
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut names: Vec<&str> = rows.iter().map(|r| r["Names"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["down", "up"], "{json_rows}");
    let table = check(berth_cli(
        &d,
        &["ps", "--format", "table {{.Names}}\t{{.Image}}"],
    ));
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines,
        [vec!["NAMES", "IMAGE"], vec!["up", "busybox"]],
        "{table}"
    );
    assert_eq!(
        check(berth_cli(
            &d,
            &["images", "--format", "{{.Repository}}:{{.Tag}}"]
        ))
        .trim(),
        "busybox:latest"
    );
    check(berth_cli(&d, &["rm", "-f", "up"]));
    let pruned = check(berth_cli(&d, &["system", "prune", "-af"]));
    assert!(
        pruned.contains("Deleted Containers") && pruned.contains("Total reclaimed space"),
        "{pruned}"
    );
    assert_eq!(check(berth_cli(&d, &["ps", "-aq"])), "");
    assert_eq!(check(berth_cli(&d, &["images", "-q"])), "");
}

#[test]
fn mounts_platforms_and_prunes_through_the_cli() {
    let d = Daemon::start(berth());
    d.import_busybox("busybox:latest", &["-c", r#"CMD ["sh"]"#]);
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("shared");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("in"), "bound\n").unwrap();
    let host = host.display().to_string();
    // --mount with each type's options.
    let bind = format!("type=bind,src={host},dst=/b,readonly,bind-propagation=rslave");
    let out = check(berth_cli(
        &d,
        &[
            "run",
            "--name",
            "mounted",
            "--mount",
            &bind,
            "--mount",
            "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770",
            "--mount",
            "type=volume,src=labelled,dst=/v,volume-label=team=blue,volume-nocopy",
            "busybox",
            "sh",
            "-c",
            "cat /b/in; touch /b/x 2>/dev/null || echo ro; stat -c %a /t; df -k /t | tail -1",
        ],
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..3], ["bound", "ro", "1770"], "{out}");
    assert_eq!(lines[3].split_whitespace().nth(1), Some("1024"), "{out}");
    let label = check(berth_cli(
        &d,
        &["volume", "inspect", "-f", "{{.Labels.team}}", "labelled"],
    ));
    assert_eq!(label.trim(), "blue");
    // inspect lists the bind mount with the volume, as Docker does.
    let mounts = check(berth_cli(
        &d,
        &[
            "inspect",
            "-f",
            "{{range .Mounts}}{{.Type}}:{{.Destination}}:{{.RW}}:{{.Propagation}} {{end}}",
            "mounted",
        ],
    ));
    assert_eq!(mounts.trim(), "bind:/b:false:rslave volume:/v:true:");
    // --volumes-from takes bind mounts too.
    let out = check(berth_cli(
        &d,
        &[
            "run",
            "--rm",
            "--volumes-from",
            "mounted",
            "busybox",
            "sh",
            "-c",
            "cat /b/in; ls -d /v",
        ],
    ));
    assert_eq!(out, "bound\n/v\n");
    // Only the local volume driver exists; asking for another is an error.
    let out = berth_cli(
        &d,
        &[
            "run",
            "--rm",
            "--mount",
            "type=volume,src=elsewhere,dst=/e,volume-driver=nfs-plugin",
            "busybox",
            "true",
        ],
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("nfs-plugin"),
        "{}",
        text(&out.stderr)
    );
    assert!(!check(berth_cli(&d, &["volume", "ls", "-q"])).contains("elsewhere"));
    // A bad field is refused before anything is made.
    let out = berth_cli(
        &d,
        &[
            "run",
            "--rm",
            "--mount",
            "type=bind,src=/,dst=/x,colour=blue",
            "busybox",
            "true",
        ],
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("colour"),
        "{}",
        text(&out.stderr)
    );
    // --platform reaches create: a local image of another platform is
    // refused rather than run.
    common::assert_other_platform_refused(|args| berth_cli(&d, args));
    // container prune asks first; no changes on anything but yes.
    let out = berth_with_input(&d, &["container", "prune"], b"n\n");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Are you sure you want to continue? [y/N]")
    );
    assert_eq!(check(berth_cli(&d, &["ps", "-aq"])).lines().count(), 1);
    let out = berth_with_input(&d, &["container", "prune"], b"y\n");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Deleted Containers:") && text.contains("Total reclaimed space:"),
        "{text}"
    );
    assert_eq!(check(berth_cli(&d, &["ps", "-aq"])), "");
}
