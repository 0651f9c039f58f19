//! `import`, `save`, `load`, `history` and `image prune`, checked against
//! skopeo (docker-archive and OCI layouts) and umoci, and against archives
//! that lie about their contents. Each test has its own data root.

mod common;

use common::{Env, check, text};

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use berth_testkit::peer::{find_program, run_with_timeout};
use berth_testkit::registry::{skopeo, tar_of};
use berth_testkit::write_busybox_image;

const TIMEOUT: Duration = Duration::from_secs(60);

/// Test helpers on top of [`Env`].
trait Import {
    fn import_busybox(&self, name: Option<&str>) -> String;
}

impl Import for Env {
    /// Imports the busybox rootfs as `name`; returns the image ID.
    fn import_busybox(&self, name: Option<&str>) -> String {
        let rootfs_tar = self.path().join("rootfs.tar");
        if !rootfs_tar.exists() {
            berth_testkit::write_busybox_rootfs_tar(&rootfs_tar).unwrap();
        }
        let mut args = vec![
            "import",
            "-c",
            r#"CMD ["sh"]"#,
            "-c",
            "ENV GREETING=hello",
            "-m",
            "from the test",
            rootfs_tar.to_str().unwrap(),
        ];
        if let Some(name) = name {
            args.push(name);
        }
        self.ok(&args).trim().to_owned()
    }
}

fn tar_dir(dir: &Path, out: &Path) {
    let status = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(out)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn import_save_and_load_round_trip() {
    let env = Env::new();
    let id = env.import_busybox(Some("local/busybox:v1"));
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let inspect: serde_json::Value =
        serde_json::from_str(&env.ok(&["image", "inspect", "local/busybox:v1"])).unwrap();
    assert_eq!(inspect[0]["Id"], id);
    assert_eq!(inspect[0]["Config"]["Cmd"][0], "sh");
    assert_eq!(inspect[0]["Config"]["Env"][0], "GREETING=hello");
    let history = env.ok(&["history", "local/busybox:v1"]);
    assert!(history.starts_with("IMAGE "), "{history}");
    assert!(
        history.contains(&id[7..19]) && history.contains("from the test"),
        "{history}"
    );

    let archive = env.path().join("saved.tar");
    env.ok(&["save", "-o", archive.to_str().unwrap(), "local/busybox:v1"]);
    let refused = env.run(&["save", "local/busybox:v1"]);
    assert!(refused.status.success(), "stdout is not a terminal here");

    // A fresh data root loads it back to the same image.
    let fresh = Env::new();
    let out = fresh.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: local/busybox:v1\n");
    assert_eq!(fresh.ok(&["images", "-q", "--no-trunc"]).trim(), id);
    // And from stdin, quietly.
    let stdin_env = Env::new();
    let loaded = stdin_env
        .cmd(&["load", "-q"])
        .stdin(std::fs::File::open(&archive).unwrap())
        .output()
        .unwrap();
    assert_eq!(check(loaded), "");
    assert_eq!(
        stdin_env.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]),
        "local/busybox:v1\n"
    );

    if find_program("skopeo").is_none() {
        eprintln!("skopeo checks skipped: skopeo is not installed");
        return;
    }
    // Both readings of the archive show the same image to skopeo.
    let docker: serde_json::Value = serde_json::from_str(&check(skopeo(&[
        "inspect",
        "--config",
        &format!("docker-archive:{}", archive.display()),
    ])))
    .unwrap();
    let oci: serde_json::Value = serde_json::from_str(&check(skopeo(&[
        "inspect",
        "--config",
        &format!("oci-archive:{}:v1", archive.display()),
    ])))
    .unwrap();
    assert_eq!(docker["config"]["Cmd"][0], "sh");
    assert_eq!(docker["rootfs"], oci["rootfs"]);
}

#[test]
fn layouts_written_by_skopeo_and_umoci_load() {
    if find_program("skopeo").is_none() {
        eprintln!("skipped: skopeo is not installed");
        return;
    }
    let env = Env::new();
    let source = env.path().join("busybox.tar");
    write_busybox_image(&source, "berth.test/busybox:latest").unwrap();
    let layout = env.path().join("layout");
    check(skopeo(&[
        "copy",
        &format!("docker-archive:{}", source.display()),
        &format!("oci:{}:berth.test/busybox:v2", layout.display()),
    ]));
    let layout_tar = env.path().join("layout.tar");
    tar_dir(&layout, &layout_tar);
    let out = env.ok(&["load", "-i", layout_tar.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: berth.test/busybox:v2\n");

    // skopeo also reads berth's docker-archive of a loaded image.
    let saved = env.path().join("saved.tar");
    env.ok(&[
        "save",
        "-o",
        saved.to_str().unwrap(),
        "berth.test/busybox:v2",
    ]);
    let copied = env.path().join("copied");
    check(skopeo(&[
        "copy",
        &format!("docker-archive:{}", saved.display()),
        &format!("dir:{}", copied.display()),
    ]));

    if find_program("umoci").is_none() {
        eprintln!("umoci part skipped: umoci is not installed");
        return;
    }
    let umoci_layout = env.path().join("umoci");
    let run = |args: &[&str]| check(run_with_timeout(Command::new("umoci").args(args), TIMEOUT));
    let image = format!("{}:latest", umoci_layout.display());
    run(&["init", "--layout", umoci_layout.to_str().unwrap()]);
    run(&["new", "--image", &image]);
    let file = env.path().join("hello.txt");
    std::fs::write(&file, "hello from umoci\n").unwrap();
    run(&[
        "insert",
        "--image",
        &image,
        file.to_str().unwrap(),
        "/hello.txt",
    ]);
    let umoci_tar = env.path().join("umoci.tar");
    tar_dir(&umoci_layout, &umoci_tar);
    let out = env.ok(&["load", "-i", umoci_tar.to_str().unwrap()]);
    assert!(out.starts_with("Loaded image ID: sha256:"), "{out}");
    let snapshots = env.path().join("data/snapshots/committed");
    let found = std::fs::read_dir(&snapshots).unwrap().flatten().any(|e| {
        std::fs::read_to_string(e.path().join("fs/hello.txt"))
            .is_ok_and(|s| s == "hello from umoci\n")
    });
    assert!(found, "the umoci layer was not unpacked");
}

#[test]
fn archives_that_lie_load_nothing() {
    let env = Env::new();
    let write = |name: &str, bytes: Vec<u8>| {
        let p = env.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    // A blob whose content is not what its name says.
    let claimed = format!("blobs/sha256/{}", "a".repeat(64));
    let lying = write(
        "lying.tar",
        tar_of(&[
            (&claimed, b"not what the name says"),
            ("index.json", br#"{"schemaVersion":2,"manifests":[]}"#),
        ]),
    );
    let out = env.run(&["load", "-i", lying.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("digest mismatch"),
        "{}",
        text(&out.stderr)
    );

    // manifest.json pointing outside the archive.
    let escaping = write(
        "escaping.tar",
        tar_of(&[(
            "manifest.json",
            br#"[{"Config":"../../etc/passwd","RepoTags":["evil:latest"],"Layers":[]}]"#,
        )]),
    );
    let out = env.run(&["load", "-i", escaping.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("not in the archive"),
        "{}",
        text(&out.stderr)
    );

    let empty = write("empty.tar", tar_of(&[("README", b"nothing here")]));
    let out = env.run(&["load", "-i", empty.to_str().unwrap()]);
    assert!(
        text(&out.stderr).contains("neither index.json"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(env.ok(&["images", "-q"]), "");

    let bad_change = env.run(&["import", "-c", "RUN rm -rf /", "/dev/null"]);
    assert_eq!(bad_change.status.code(), Some(125));
    assert!(
        text(&bad_change.stderr).contains("not a valid change command"),
        "{}",
        text(&bad_change.stderr)
    );
}

#[test]
fn prune_removes_dangling_images_then_all() {
    let env = Env::new();
    let tagged = env.import_busybox(Some("keep/me:v1"));
    // The same rootfs again without a name: a dangling image of its own
    // (its config has another creation time).
    let dangling = env.import_busybox(None);
    assert_ne!(tagged, dangling);
    let listing = env.ok(&["images"]);
    assert!(
        listing.contains("<none>         <none>") || listing.contains("<none>"),
        "{listing}"
    );
    assert_eq!(
        env.ok(&["images", "-q", "--filter", "dangling=true", "--no-trunc"])
            .trim(),
        dangling
    );

    let out = env.ok(&["image", "prune", "-f"]);
    assert!(out.starts_with("Deleted Images:\n"), "{out}");
    assert!(out.contains(&format!("deleted: {dangling}")), "{out}");
    assert!(out.contains("Total reclaimed space: "), "{out}");
    assert_eq!(env.ok(&["images", "-q", "--no-trunc"]).trim(), tagged);

    let mut ask = env.cmd(&["image", "prune", "-a"]);
    ask.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = ask.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"n\n").unwrap();
    let kept = child.wait_with_output().unwrap();
    assert!(text(&kept.stdout).contains("Are you sure you want to continue? [y/N]"));
    assert_eq!(
        env.ok(&["images", "-q", "--no-trunc"]).trim(),
        tagged,
        "answering no keeps everything"
    );

    let out = env.ok(&["image", "prune", "-a", "-f"]);
    assert!(out.contains("untagged: keep/me:v1"), "{out}");
    assert_eq!(env.ok(&["images", "-q"]), "");
    let blobs = env.path().join("data/content/blobs/sha256");
    assert_eq!(std::fs::read_dir(blobs).unwrap().count(), 0);
}
