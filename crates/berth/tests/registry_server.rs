//! `berth registry serve` against skopeo (containers/image), the client
//! Podman and CRI-O use: push, pull, tags, delete and gc; basic auth, the
//! bearer-token flow and TLS. The OCI conformance suite itself is not
//! built here (it needs Go modules from the network); its result is in
//! docs/ARCHITECTURE.md. Skipped where skopeo is not installed.

mod common;

use common::{berth, check as ok, text};

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use berth_testkit::peer::{find_program, run_with_timeout};
use berth_testkit::registry::{RegistryProcess, skopeo, write_htpasswd, write_self_signed};
use berth_testkit::require_program;
use berth_testkit::write_busybox_image;

const TIMEOUT: Duration = Duration::from_secs(60);

fn image_archive(dir: &Path) -> String {
    let archive = dir.join("busybox.tar");
    write_busybox_image(&archive, "berth.test/busybox:latest").expect("write image");
    format!("docker-archive:{}", archive.display())
}

#[test]
fn skopeo_pushes_lists_pulls_deletes_and_gc_collects() {
    require_program!("skopeo");
    let registry = RegistryProcess::berth(berth(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let src = image_archive(dir.path());
    let dest = format!("docker://{}/team/busybox:v1", registry.addr);
    ok(skopeo(&["copy", "--dest-tls-verify=false", &src, &dest]));
    // A second tag in another repository mounts the blobs.
    let other = format!("docker://{}/other/busybox:v2", registry.addr);
    ok(skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &dest,
        &other,
    ]));

    let tags = ok(skopeo(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{}/team/busybox", registry.addr),
    ]));
    assert!(tags.contains("\"v1\""), "{tags}");
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(skopeo(&["inspect", "--tls-verify=false", &dest]))).unwrap();
    let digest = inspect["Digest"].as_str().unwrap().to_owned();

    let out = dir.path().join("pulled");
    ok(skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &dest,
        &format!("dir:{}", out.display()),
    ]));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let blob = std::fs::read(out.join(layer.trim_start_matches("sha256:"))).unwrap();
    assert_eq!(
        format!("sha256:{}", berth_testkit::sha256_hex(&blob)),
        layer
    );

    // Deleting from one repository leaves the other intact, and gc keeps
    // what the other still references.
    ok(skopeo(&[
        "delete",
        "--tls-verify=false",
        &format!("docker://{}/team/busybox@{digest}", registry.addr),
    ]));
    let gone = skopeo(&["inspect", "--tls-verify=false", &dest]);
    assert!(!gone.status.success());
    let gc = |extra: &[&str]| {
        let mut cmd = Command::new(berth());
        cmd.args(["registry", "gc", "--grace", "0", "--root"])
            .arg(&registry.root)
            .args(extra);
        ok(run_with_timeout(&mut cmd, TIMEOUT))
    };
    let report = gc(&[]);
    assert!(report.contains("removed 0 blobs"), "{report}");
    ok(skopeo(&["inspect", "--tls-verify=false", &other]));

    ok(skopeo(&["delete", "--tls-verify=false", &other]));
    let report = gc(&["--dry-run"]);
    assert!(report.contains("would remove 3 blobs"), "{report}");
    let report = gc(&[]);
    assert!(report.contains("removed 3 blobs"), "{report}");
    let blobs = registry.root.join("content/blobs/sha256");
    assert_eq!(
        std::fs::read_dir(&blobs).unwrap().count(),
        0,
        "all blobs collected"
    );
}

#[test]
fn basic_auth_and_bearer_tokens_admit_users_only() {
    require_program!("skopeo");
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    if !write_htpasswd(&htpasswd, "alice", "secret") {
        eprintln!("skipped: htpasswd (apache2-utils) is not installed");
        return;
    }
    let src = image_archive(dir.path());
    for mode in [&[][..], &["--token-auth"][..]] {
        let mut args = vec!["--htpasswd", htpasswd.to_str().unwrap()];
        args.extend_from_slice(mode);
        let registry = RegistryProcess::berth(berth(), &args);
        let dest = format!("docker://{}/private/busybox:v1", registry.addr);
        let denied = skopeo(&["copy", "--dest-tls-verify=false", &src, &dest]);
        assert!(
            !denied.status.success(),
            "anonymous push succeeded with {mode:?}"
        );
        let why = text(&denied.stderr);
        assert!(
            why.contains("authentication required") || why.contains("denied"),
            "{why}"
        );
        let wrong = skopeo(&[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            "alice:wrong",
            &src,
            &dest,
        ]);
        assert!(!wrong.status.success());
        ok(skopeo(&[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            "alice:secret",
            &src,
            &dest,
        ]));
        ok(skopeo(&[
            "inspect",
            "--tls-verify=false",
            "--creds",
            "alice:secret",
            &dest,
        ]));
    }
}

#[test]
fn tls_with_a_private_ca() {
    require_program!("skopeo");
    if find_program("openssl").is_none() {
        eprintln!("skipped: openssl is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    assert!(write_self_signed(&cert, &key), "openssl failed");
    let registry = RegistryProcess::berth(
        berth(),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let certs = dir.path().join("certs.d");
    std::fs::create_dir(&certs).unwrap();
    std::fs::copy(&cert, certs.join("ca.crt")).unwrap();
    let src = image_archive(dir.path());
    let dest = format!("docker://{}/secure/busybox:v1", registry.addr);
    let untrusted = skopeo(&["copy", &src, &dest]);
    assert!(!untrusted.status.success(), "an unknown CA was trusted");
    ok(skopeo(&[
        "copy",
        "--dest-cert-dir",
        certs.to_str().unwrap(),
        &src,
        &dest,
    ]));
    ok(skopeo(&[
        "inspect",
        "--cert-dir",
        certs.to_str().unwrap(),
        &dest,
    ]));
}
