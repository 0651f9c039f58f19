//! What outlives a daemon: containers under their shims after SIGKILL,
//! restart policies (also after a reboot), and half-done work finished at
//! the next start.

mod common;

use std::time::Duration;

use common::engine::{berth_daemon, daemon, eventually, inspect, ok};
use common::text;

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
    let Some(mut d) = berth_daemon() else { return };
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
fn after_a_reboot_restart_policies_bring_containers_back_and_volumes_keep_data() {
    let Some(mut d) = berth_daemon() else { return };
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
    ok(&d.docker(&[
        "run",
        "--rm",
        "-v",
        "kept:/data",
        "busybox",
        "sh",
        "-c",
        "echo persisted > /data/f",
    ]));
    // The machine goes down: no daemon, no shims, no containers.
    d.kill();
    d.kill_containers();
    d.restart();
    // A named volume's data is still there.
    assert_eq!(
        ok(&d.docker(&[
            "run",
            "--rm",
            "-v",
            "kept:/data",
            "busybox",
            "cat",
            "/data/f"
        ])),
        "persisted\n"
    );
    eventually("the always container running again", || {
        inspect(&d, "always", "{{.State.Status}}") == "running"
    });
    assert_eq!(inspect(&d, "once", "{{.State.Status}}"), "exited");
    assert_eq!(inspect(&d, "stopped", "{{.State.Status}}"), "exited");
    // And it works as before.
    assert_eq!(ok(&d.docker(&["exec", "always", "echo", "back"])), "back\n");
}

#[test]
fn a_removal_cut_short_is_finished_at_the_next_start() {
    let Some(mut d) = berth_daemon() else { return };
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
