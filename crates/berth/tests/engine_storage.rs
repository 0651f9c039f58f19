//! What containers keep: volumes, images in use, commit, and the disk
//! usage and pruning of all of it.

mod common;

use common::engine::{daemon, eventually, inspect, ok};
use common::text;

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
