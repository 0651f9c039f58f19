//! Looking at containers: top, stats, diff, cp, export, events, and
//! health checks.

mod common;

use common::engine::{daemon, eventually, inspect, ok};
use common::text;

#[test]
fn top_stats_diff_cp_export_and_events() {
    let Some(d) = daemon() else { return };
    let since = common::unix_now().to_string();
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

    let until = (common::unix_now() + 1).to_string();
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
