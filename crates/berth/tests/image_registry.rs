//! `berth pull`, `push`, `images`, `tag`, `rmi`, `image inspect`, `login`
//! and `logout` against berth's own registry and Debian's
//! `docker-registry` (distribution 2.8), with skopeo as the independent
//! client that seeds and checks them. Each test has its own data root,
//! Docker config and registries. Skipped where skopeo is not installed.

mod common;

use common::{Env, berth, check, text};

use std::path::Path;
use std::process::Stdio;

use berth_testkit::registry::{RegistryProcess, skopeo, tar_of, write_htpasswd, write_self_signed};
use berth_testkit::require_program;
use berth_testkit::write_busybox_image;

/// Pushes the busybox test image to `addr/repo:tag` with skopeo.
fn seed(addr: &str, repo: &str, dir: &Path) {
    let archive = dir.join("busybox.tar");
    if !archive.exists() {
        write_busybox_image(&archive, "berth.test/busybox:latest").unwrap();
    }
    check(skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("docker-archive:{}", archive.display()),
        &format!("docker://{addr}/{repo}"),
    ]));
}

#[test]
fn pull_tag_push_and_remove_through_berths_registry() {
    require_program!("skopeo");
    let registry = RegistryProcess::berth(berth(), &[]);
    let env = Env::new();
    let addr = &registry.addr;
    seed(addr, "team/busybox:v1", env.dir.path());

    let image = format!("{addr}/team/busybox:v1");
    let out = env.ok(&["pull", &image]);
    assert!(out.starts_with("v1: Pulling from team/busybox\n"), "{out}");
    assert!(out.contains(": Pull complete"), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {image}")),
        "{out}"
    );
    assert!(out.ends_with(&format!("{image}\n")), "{out}");
    // The layer is unpacked, ready for a container.
    let snapshots = env.dir.path().join("data/snapshots/committed");
    let unpacked: Vec<_> = std::fs::read_dir(&snapshots).unwrap().flatten().collect();
    assert_eq!(unpacked.len(), 1);
    assert!(unpacked[0].path().join("fs/bin/busybox").is_file());
    let again = env.ok(&["pull", &image]);
    assert!(again.contains(": Already exists"), "{again}");
    assert!(again.contains("Status: Image is up to date"), "{again}");

    let listing = env.ok(&["images"]);
    let lines: Vec<&str> = listing.lines().collect();
    assert!(lines[0].starts_with("REPOSITORY"), "{listing}");
    assert!(
        lines[0].contains("IMAGE ID") && lines[0].ends_with("SIZE"),
        "{listing}"
    );
    assert!(
        lines[1].starts_with(&format!("{addr}/team/busybox   v1 ")),
        "{listing}"
    );
    let id = env.ok(&["images", "-q"]);
    assert_eq!(id.trim().len(), 12, "{id}");

    // Inspect speaks Docker's shape.
    let inspect: serde_json::Value =
        serde_json::from_str(&env.ok(&["image", "inspect", &image])).unwrap();
    let object = &inspect[0];
    assert!(
        object["Id"]
            .as_str()
            .unwrap()
            .starts_with(&format!("sha256:{}", id.trim()))
    );
    assert_eq!(object["RepoTags"][0], image);
    assert_eq!(object["Config"]["Cmd"][0], "sh");
    assert_eq!(object["RootFS"]["Type"], "layers");
    let formatted = env.ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Os}}/{{.Architecture}}",
        &image,
    ]);
    assert_eq!(
        formatted.trim(),
        format!("linux/{}", berth_testkit::oci_arch())
    );

    // A second name, pushed to another repository: its blobs are mounted.
    let other = format!("{addr}/mirror/busybox:v2");
    env.ok(&["tag", &image, &other]);
    let pushed = env.ok(&["push", &other]);
    assert!(
        pushed.starts_with(&format!(
            "The push refers to repository [{addr}/mirror/busybox]\n"
        )),
        "{pushed}"
    );
    assert!(pushed.contains("Mounted from team/busybox"), "{pushed}");
    assert!(pushed.contains("v2: digest: sha256:"), "{pushed}");
    let remote: serde_json::Value = serde_json::from_str(&check(skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{other}"),
    ])))
    .unwrap();
    assert_eq!(remote["RepoTags"][0], "v2");
    let formatted = env.ok(&[
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}}",
        "--filter",
        "reference=*/mirror/*",
    ]);
    assert_eq!(formatted, format!("{addr}/mirror/busybox:v2\n"));

    // Removing by ID needs -f while two names use the image.
    let refused = env.run(&["rmi", id.trim()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("must be forced"),
        "{}",
        text(&refused.stderr)
    );
    let untag = env.ok(&["rmi", &other]);
    assert_eq!(untag, format!("Untagged: {other}\n"));
    let gone = env.ok(&["rmi", &image]);
    assert!(
        gone.contains(&format!("Untagged: {image}")) && gone.contains("Deleted: sha256:"),
        "{gone}"
    );
    assert_eq!(env.ok(&["images", "-q"]), "");
    assert_eq!(
        std::fs::read_dir(&snapshots).unwrap().count(),
        0,
        "rmi left snapshots behind"
    );
    let blobs = env.dir.path().join("data/content/blobs/sha256");
    assert_eq!(
        std::fs::read_dir(blobs).unwrap().count(),
        0,
        "rmi left blobs behind"
    );
    let missing = env.run(&["rmi", &image]);
    assert!(
        text(&missing.stderr).contains("No such image"),
        "{}",
        text(&missing.stderr)
    );

    // Pull by digest, and errors that say what is wrong.
    let digest = remote["Digest"].as_str().unwrap();
    let by_digest = format!("{addr}/mirror/busybox@{digest}");
    let out = env.ok(&["pull", "-q", &by_digest]);
    assert_eq!(out, format!("{by_digest}\n"));
    let nothing = env.run(&["pull", &format!("{addr}/mirror/busybox:nope")]);
    assert_eq!(nothing.status.code(), Some(125));
    assert!(
        text(&nothing.stderr).contains("manifest nope not found"),
        "{}",
        text(&nothing.stderr)
    );
    let not_local = env.run(&["push", &format!("{addr}/never/pulled:v1")]);
    assert!(
        text(&not_local.stderr).contains("does not exist locally"),
        "{}",
        text(&not_local.stderr)
    );
}

#[test]
fn push_to_and_pull_from_distribution() {
    require_program!("skopeo");
    let Some(distribution) = RegistryProcess::distribution() else {
        eprintln!("skipped: docker-registry is not installed");
        return;
    };
    let ours = RegistryProcess::berth(berth(), &[]);
    let env = Env::new();
    seed(&ours.addr, "src/busybox:v1", env.dir.path());
    env.ok(&["pull", &format!("{}/src/busybox:v1", ours.addr)]);
    let dest = format!("{}/copy/busybox:v1", distribution.addr);
    env.ok(&["tag", &format!("{}/src/busybox:v1", ours.addr), &dest]);
    let pushed = env.ok(&["push", &dest]);
    assert!(pushed.contains(": Pushed"), "{pushed}");
    let again = env.ok(&["push", &dest]);
    assert!(again.contains(": Layer already exists"), "{again}");

    // A fresh data root pulls it back and gets the same image.
    let fresh = Env::new();
    fresh.ok(&["pull", &dest]);
    assert_eq!(
        fresh.ok(&["images", "-q"]),
        env.ok(&["images", "-q"]).lines().next().unwrap().to_owned() + "\n"
    );
    let remote: serde_json::Value = serde_json::from_str(&check(skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{dest}"),
    ])))
    .unwrap();
    let ours_digest = fresh.ok(&["images", "--digests", "--format", "{{.Digest}}"]);
    assert_eq!(ours_digest.trim(), remote["Digest"].as_str().unwrap());
}

#[test]
fn login_and_logout_with_a_token_registry() {
    require_program!("skopeo");
    let env = Env::new();
    let htpasswd = env.dir.path().join("htpasswd");
    if !write_htpasswd(&htpasswd, "alice", "secret") {
        eprintln!("skipped: htpasswd (apache2-utils) is not installed");
        return;
    }
    let registry = RegistryProcess::berth(
        berth(),
        &["--htpasswd", htpasswd.to_str().unwrap(), "--token-auth"],
    );
    let addr = &registry.addr;
    check(skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "alice:secret",
        &format!("docker-archive:{}", {
            let archive = env.dir.path().join("busybox.tar");
            write_busybox_image(&archive, "berth.test/busybox:latest").unwrap();
            archive.display().to_string()
        }),
        &format!("docker://{addr}/private/busybox:v1"),
    ]));
    let image = format!("{addr}/private/busybox:v1");
    let denied = env.run(&["pull", &image]);
    assert_eq!(denied.status.code(), Some(125));
    assert!(
        text(&denied.stderr).contains(&format!("run `berth login {addr}`")),
        "{}",
        text(&denied.stderr)
    );

    let wrong = env.run(&["login", addr, "-u", "alice", "-p", "nope"]);
    assert_eq!(wrong.status.code(), Some(125));
    assert!(
        text(&wrong.stderr).contains("incorrect username or password"),
        "{}",
        text(&wrong.stderr)
    );

    let mut login = env.cmd(&["login", addr, "-u", "alice", "--password-stdin"]);
    login
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = login.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"secret\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "Login Succeeded\n");
    let config = std::fs::read_to_string(env.dir.path().join("docker/config.json")).unwrap();
    assert!(
        config.contains(addr.as_str()) && config.contains("\"auth\""),
        "{config}"
    );

    env.ok(&["pull", &image]);
    assert_eq!(
        env.ok(&["logout", addr]),
        format!("Removing login credentials for {addr}\n")
    );
    assert_eq!(
        env.ok(&["logout", addr]),
        format!("Not logged in to {addr}\n")
    );
}

/// An OCI layout tar holding one image for two platforms (one small layer,
/// a config per platform) under an index named `name`.
fn multi_platform_layout(name: &str) -> Vec<u8> {
    let sha = |b: &[u8]| format!("sha256:{}", berth_testkit::sha256_hex(b));
    let layer = tar_of(&[("hello", b"hello\n")]);
    let mut blobs: Vec<Vec<u8>> = vec![layer.clone()];
    let mut entries = Vec::new();
    for arch in ["amd64", "arm64"] {
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": arch, "os": "linux",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [sha(&layer)]},
        }))
        .unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(&layer), "size": layer.len()}],
        }))
        .unwrap();
        entries.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha(&manifest), "size": manifest.len(),
            "platform": {"os": "linux", "architecture": arch},
        }));
        blobs.push(config);
        blobs.push(manifest);
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    }))
    .unwrap();
    let top = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": sha(&index), "size": index.len(),
            "annotations": {"io.containerd.image.name": name},
        }],
    }))
    .unwrap();
    blobs.push(index);
    let names: Vec<String> = blobs
        .iter()
        .map(|b| format!("blobs/sha256/{}", berth_testkit::sha256_hex(b)))
        .collect();
    let mut files: Vec<(&str, &[u8])> = names
        .iter()
        .map(String::as_str)
        .zip(blobs.iter().map(Vec::as_slice))
        .collect();
    files.push(("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#));
    files.push(("index.json", &top));
    tar_of(&files)
}

#[test]
fn multi_platform_indexes_push_whole_and_pull_per_platform() {
    require_program!("skopeo");
    let registry = RegistryProcess::berth(berth(), &[]);
    let env = Env::new();
    let name = format!("{}/multi/hello:v1", registry.addr);
    let layout = env.path().join("multi.tar");
    std::fs::write(&layout, multi_platform_layout(&name)).unwrap();
    assert_eq!(
        env.ok(&["load", "-i", layout.to_str().unwrap()]),
        format!("Loaded image: {name}\n")
    );
    env.ok(&["push", &name]);
    let raw: serde_json::Value = serde_json::from_str(&check(skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{name}"),
    ])))
    .unwrap();
    assert_eq!(
        raw["manifests"].as_array().unwrap().len(),
        2,
        "the whole index was pushed: {raw}"
    );

    for arch in ["arm64", "amd64"] {
        let fresh = Env::new();
        fresh.ok(&["pull", "--platform", &format!("linux/{arch}"), &name]);
        let inspect: serde_json::Value =
            serde_json::from_str(&fresh.ok(&["image", "inspect", &name])).unwrap();
        assert_eq!(inspect[0]["Architecture"], arch);
    }
    let fresh = Env::new();
    let none = fresh.run(&["pull", "--platform", "linux/s390x", &name]);
    assert_eq!(none.status.code(), Some(125));
    let why = text(&none.stderr);
    assert!(
        why.contains("linux/s390x") && why.contains("linux/arm64"),
        "{why}"
    );
}

#[test]
fn chunked_pushes_and_private_cas() {
    require_program!("skopeo");
    require_program!("openssl");
    let env = Env::new();
    let (cert, key) = (env.path().join("cert.pem"), env.path().join("key.pem"));
    assert!(write_self_signed(&cert, &key), "openssl failed");
    let secure = RegistryProcess::berth(
        berth(),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let plain = RegistryProcess::berth(berth(), &[]);
    seed(&plain.addr, "src/busybox:v1", env.path());
    env.ok(&["pull", &format!("{}/src/busybox:v1", plain.addr)]);

    // A loopback registry is insecure as in Docker: its certificate need
    // not verify. Trusted through a certs.d directory, it verifies.
    let certs = env.path().join("certs.d");
    std::fs::create_dir_all(certs.join(&secure.addr)).unwrap();
    std::fs::copy(&cert, certs.join(&secure.addr).join("ca.crt")).unwrap();
    let dest = format!("{}/secure/busybox:v1", secure.addr);
    env.ok(&["tag", &format!("{}/src/busybox:v1", plain.addr), &dest]);
    let pushed = env
        .cmd(&["push", &dest])
        .env("BERTH_CERTS_D", &certs)
        .env("BERTH_PUSH_CHUNK_SIZE", "100000")
        .output()
        .unwrap();
    assert!(pushed.status.success(), "{}", text(&pushed.stderr));
    assert!(
        text(&pushed.stdout).contains(": Pushed"),
        "{}",
        text(&pushed.stdout)
    );
    // Without the CA, as an insecure registry.
    let again = env.ok(&["push", &dest]);
    assert!(again.contains(": Layer already exists"), "{again}");
    // Chunked or not, the registry holds the same image.
    let fresh = Env::new();
    let pulled = fresh
        .cmd(&["pull", &dest])
        .env("BERTH_CERTS_D", &certs)
        .output()
        .unwrap();
    assert!(pulled.status.success(), "{}", text(&pulled.stderr));
    assert_eq!(
        fresh.ok(&["images", "-q"]),
        env.ok(&["images", "-q"]).lines().next().unwrap().to_owned() + "\n"
    );
}

#[test]
fn all_tags_push_and_pull() {
    require_program!("skopeo");
    let registry = RegistryProcess::berth(berth(), &[]);
    let env = Env::new();
    let addr = &registry.addr;
    seed(addr, "seed/busybox:v1", env.path());
    env.ok(&["pull", &format!("{addr}/seed/busybox:v1")]);
    for tag in ["v1", "v2", "latest"] {
        env.ok(&[
            "tag",
            &format!("{addr}/seed/busybox:v1"),
            &format!("{addr}/all/busybox:{tag}"),
        ]);
    }
    let tagged = env.run(&["push", "-a", &format!("{addr}/all/busybox:v1")]);
    assert!(
        text(&tagged.stderr).contains("tag can't be used with --all-tags"),
        "{}",
        text(&tagged.stderr)
    );
    let pushed = env.ok(&["push", "--all-tags", &format!("{addr}/all/busybox")]);
    assert_eq!(pushed.matches(": digest: sha256:").count(), 3, "{pushed}");

    let fresh = Env::new();
    let pulled = fresh.ok(&["pull", "-a", &format!("{addr}/all/busybox")]);
    assert!(
        pulled.ends_with(&format!("{addr}/all/busybox\n")),
        "{pulled}"
    );
    let tags = fresh.ok(&["images", "--format", "{{.Tag}}"]);
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort();
    assert_eq!(tags, ["latest", "v1", "v2"]);
}
