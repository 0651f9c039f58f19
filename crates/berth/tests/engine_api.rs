//! `berth daemon` and the Engine API handshake, driven by the real docker
//! CLI (DOCKER_HOST at the daemon's socket) and by raw HTTP on the socket.

mod common;

use common::{berth, text};

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use berth_testkit::daemon::{Daemon, http};
use berth_testkit::peer::run_with_timeout;

fn start() -> Daemon {
    Daemon::start(berth())
}

#[test]
fn the_docker_cli_negotiates_with_the_daemon() {
    let docker = Path::new("/usr/local/bin/docker");
    let daemon = start();
    if !docker.exists() {
        eprintln!("docker CLI part skipped: /usr/local/bin/docker is missing");
    } else {
        let out = run_with_timeout(
            Command::new(docker)
                .arg("-H")
                .arg(format!("unix://{}", daemon.socket.display()))
                .args(["version", "--format", "{{.Server.Version}}|{{.Server.APIVersion}}|{{.Server.MinAPIVersion}}|{{.Server.Os}}"]),
            Duration::from_secs(30),
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout).trim(),
            format!("{}|1.50|1.41|linux", env!("CARGO_PKG_VERSION"))
        );
    }

    let (status, head, body) = daemon.request("GET", "/_ping");
    assert_eq!((status, body.as_str()), (200, "OK"));
    assert!(
        head.contains("api-version: 1.50") && head.contains("ostype: linux"),
        "{head}"
    );
    assert_eq!(daemon.request("HEAD", "/_ping").0, 200);
    let (status, _, body) = daemon.request("GET", "/v1.45/version");
    assert_eq!(status, 200);
    let version: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(version["ApiVersion"], "1.50");

    // Docker's errors: a version out of range, an unknown endpoint.
    let (status, _, body) = daemon.request("GET", "/v1.99/version");
    assert_eq!(status, 400);
    let message: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        message["message"].as_str().unwrap().contains("too new"),
        "{body}"
    );
    let (status, _, body) = daemon.request("GET", "/v1.30/version");
    assert_eq!(status, 400, "{body}");
    let (status, _, body) = daemon.request("GET", "/no/such/endpoint");
    assert_eq!(
        (status, body.as_str()),
        (404, "{\"message\":\"page not found\"}\n")
    );
}

#[test]
fn a_second_daemon_on_the_same_socket_is_refused() {
    let daemon = start();
    let out = run_with_timeout(
        Command::new(berth())
            .arg("daemon")
            .arg("-H")
            .arg(format!("unix://{}", daemon.socket.display()))
            .env("BERTH_DATA_ROOT", daemon.dir().join("data2")),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("another daemon is listening"),
        "{}",
        text(&out.stderr)
    );
    // The first one still answers.
    assert_eq!(daemon.request("GET", "/_ping").0, 200);
}

#[test]
fn the_docker_cli_lists_tags_inspects_and_removes_images() {
    if !Path::new("/usr/local/bin/docker").exists() {
        eprintln!("skipped: /usr/local/bin/docker is missing");
        return;
    }
    let daemon = start();
    // An image in the daemon's data root, made by berth's own import.
    let id = daemon.import_busybox(
        "local/busybox:v1",
        &["-c", "CMD [\"sh\"]", "-m", "made by the test"],
    );

    let ok = |args: &[&str]| {
        let out = daemon.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    let listing = ok(&["images"]);
    assert!(listing.starts_with("REPOSITORY"), "{listing}");
    assert!(
        listing.contains("local/busybox") && listing.contains(&id[7..19]),
        "{listing}"
    );
    ok(&["tag", "local/busybox:v1", "local/busybox:v2"]);
    let names = ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["local/busybox:v1", "local/busybox:v2"]);
    assert_eq!(
        ok(&["images", "-q", "--no-trunc"]),
        format!("{id}\n{id}\n"),
        "one line per tag, as Docker"
    );
    let inspected = ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}}|{{.Os}}|{{json .Config.Cmd}}",
        "local/busybox:v2",
    ]);
    assert_eq!(inspected.trim(), format!("{id}|linux|[\"sh\"]"));
    let history = ok(&["history", "local/busybox:v1"]);
    assert!(history.contains("made by the test"), "{history}");

    // Removing by ID needs -f while two tags share it; by name untags.
    let refused = daemon.docker(&["rmi", &id[7..19]]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("must be forced"),
        "{}",
        text(&refused.stderr)
    );
    assert_eq!(
        ok(&["rmi", "local/busybox:v2"]).trim(),
        "Untagged: local/busybox:v2"
    );
    let gone = ok(&["rmi", "local/busybox:v1"]);
    assert!(gone.contains(&format!("Deleted: {id}")), "{gone}");
    assert_eq!(ok(&["images", "-q"]), "");
    let missing = daemon.docker(&["image", "inspect", "local/busybox:v1"]);
    assert_eq!(missing.status.code(), Some(1));

    // The API's own shapes.
    let (status, _, body) = daemon.request("DELETE", "/v1.50/images/nope:latest");
    assert_eq!(status, 404);
    assert_eq!(body, "{\"message\":\"No such image: nope:latest\"}\n");
    let (status, _, body) = daemon.request("GET", "/images/json?filters=%7Bbad");
    assert_eq!(status, 400, "{body}");
    let (status, _, body) = daemon.request("GET", "/images/json");
    assert_eq!((status, body.as_str()), (200, "[]"));
}

#[test]
fn the_docker_cli_pulls_through_the_daemon() {
    if !Path::new("/usr/local/bin/docker").exists() {
        eprintln!("skipped: /usr/local/bin/docker is missing");
        return;
    }
    // An image in berth's registry, pushed from a data root of its own.
    let registry = berth_testkit::registry::RegistryProcess::berth(berth(), &[]);
    let source = tempfile::tempdir().unwrap();
    let rootfs = source.path().join("rootfs.tar");
    berth_testkit::write_busybox_rootfs_tar(&rootfs).unwrap();
    let image = format!("{}/team/busybox:v1", registry.addr);
    // berth's own CLI on the source data root.
    let source_berth = |args: &[&str]| {
        let out = run_with_timeout(
            Command::new(berth())
                .args(args)
                .env("BERTH_DATA_ROOT", source.path().join("data")),
            Duration::from_secs(60),
        );
        assert!(
            out.status.success(),
            "berth {args:?}: {}",
            text(&out.stderr)
        );
    };
    source_berth(&["import", rootfs.to_str().unwrap(), &image]);
    source_berth(&["push", &image]);

    let daemon = start();
    let pulled = daemon.docker(&["pull", &image]);
    assert!(pulled.status.success(), "{}", text(&pulled.stderr));
    let out = text(&pulled.stdout);
    assert!(out.starts_with("v1: Pulling from team/busybox\n"), "{out}");
    assert!(out.contains(": Pull complete\n"), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {image}")),
        "{out}"
    );
    let listed = daemon.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(text(&listed.stdout), format!("{image}\n"));
    let again = daemon.docker(&["pull", &image]);
    assert!(
        text(&again.stdout).contains("Status: Image is up to date"),
        "{}",
        text(&again.stdout)
    );

    let missing = daemon.docker(&["pull", &format!("{}/team/busybox:nope", registry.addr)]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("manifest nope not found"),
        "{}",
        text(&missing.stderr)
    );

    // `docker pull -a`: every tag of the repository.
    let second = format!("{}/team/busybox:v2", registry.addr);
    source_berth(&["tag", &image, &second]);
    source_berth(&["push", &second]);
    let fresh = start();
    let all = fresh.docker(&["pull", "-a", &format!("{}/team/busybox", registry.addr)]);
    assert!(all.status.success(), "{}", text(&all.stderr));
    let tags = text(&fresh.docker(&["images", "--format", "{{.Tag}}"]).stdout);
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort();
    assert_eq!(tags, ["v1", "v2"]);
}

#[test]
fn the_docker_cli_logs_in_and_pushes_through_the_daemon() {
    if !Path::new("/usr/local/bin/docker").exists() {
        eprintln!("skipped: /usr/local/bin/docker is missing");
        return;
    }
    let daemon = start();
    let htpasswd = daemon.dir().join("htpasswd");
    if !berth_testkit::registry::write_htpasswd(&htpasswd, "alice", "secret") {
        eprintln!("skipped: htpasswd (apache2-utils) is not installed");
        return;
    }
    let registry = berth_testkit::registry::RegistryProcess::berth(
        berth(),
        &["--htpasswd", htpasswd.to_str().unwrap(), "--token-auth"],
    );
    let image = format!("{}/private/busybox:v1", registry.addr);
    daemon.import_busybox(&image, &[]);
    // The docker CLI keeps its credentials in a config of this test's own.
    let config = daemon.dir().join("docker-config");
    let docker = |args: &[&str], stdin: Option<&str>| {
        let mut cmd = Command::new("/usr/local/bin/docker");
        cmd.arg("-H")
            .arg(format!("unix://{}", daemon.socket.display()))
            .args(args)
            .env("DOCKER_CONFIG", &config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    };

    let denied = docker(&["push", &image], None);
    assert_eq!(denied.status.code(), Some(1));
    assert!(
        text(&denied.stderr).contains("authentication required"),
        "{}",
        text(&denied.stderr)
    );
    let wrong = docker(
        &["login", &registry.addr, "-u", "alice", "--password-stdin"],
        Some("nope\n"),
    );
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        text(&wrong.stderr).contains("incorrect username or password"),
        "{}",
        text(&wrong.stderr)
    );
    let login = docker(
        &["login", &registry.addr, "-u", "alice", "--password-stdin"],
        Some("secret\n"),
    );
    assert!(login.status.success(), "{}", text(&login.stderr));
    assert!(text(&login.stdout).contains("Login Succeeded"));

    let pushed = docker(&["push", &image], None);
    assert!(pushed.status.success(), "{}", text(&pushed.stderr));
    let out = text(&pushed.stdout);
    assert!(
        out.starts_with(&format!(
            "The push refers to repository [{}/private/busybox]",
            registry.addr
        )),
        "{out}"
    );
    assert!(
        out.contains(": Pushed") && out.contains("v1: digest: sha256:"),
        "{out}"
    );

    // Pulled back with the same credentials, into a fresh daemon root.
    let other = start();
    let pulled = {
        let mut cmd = Command::new("/usr/local/bin/docker");
        cmd.arg("-H")
            .arg(format!("unix://{}", other.socket.display()))
            .args(["pull", &image])
            .env("DOCKER_CONFIG", &config);
        run_with_timeout(&mut cmd, Duration::from_secs(60))
    };
    assert!(pulled.status.success(), "{}", text(&pulled.stderr));
    assert!(
        text(&pulled.stdout).contains("Status: Downloaded newer image"),
        "{}",
        text(&pulled.stdout)
    );
}

#[test]
fn the_docker_cli_saves_and_loads_through_the_daemon() {
    if !Path::new("/usr/local/bin/docker").exists() {
        eprintln!("skipped: /usr/local/bin/docker is missing");
        return;
    }
    let daemon = start();
    daemon.import_busybox("local/busybox:v1", &[]);
    let archive = daemon.dir().join("saved.tar");
    let saved = daemon.docker(&["save", "-o", archive.to_str().unwrap(), "local/busybox:v1"]);
    assert!(saved.status.success(), "{}", text(&saved.stderr));

    // Another daemon loads it: the same image under the same name.
    let other = start();
    let loaded = other.docker(&["load", "-i", archive.to_str().unwrap()]);
    assert!(loaded.status.success(), "{}", text(&loaded.stderr));
    assert_eq!(text(&loaded.stdout), "Loaded image: local/busybox:v1\n");
    let ids = |d: &Daemon| text(&d.docker(&["images", "-q", "--no-trunc"]).stdout);
    assert_eq!(ids(&other), ids(&daemon));

    let missing = daemon.docker(&["save", "-o", archive.to_str().unwrap(), "nope"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("No such image: nope"),
        "{}",
        text(&missing.stderr)
    );
    let garbage = daemon.dir().join("garbage.tar");
    std::fs::write(&garbage, "not an archive").unwrap();
    let bad = other.docker(&["load", "-i", garbage.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
}

#[test]
fn the_docker_cli_shows_info_and_prunes_images() {
    if !Path::new("/usr/local/bin/docker").exists() {
        eprintln!("skipped: /usr/local/bin/docker is missing");
        return;
    }
    let daemon = start();
    let dangling = daemon.import_busybox("", &[]);
    let kept = daemon.import_busybox("keep/me:v1", &[]);
    let info = daemon.docker(&[
        "info",
        "--format",
        "{{.ServerVersion}}|{{.Images}}|{{.OSType}}|{{.DefaultRuntime}}",
    ]);
    assert!(info.status.success(), "{}", text(&info.stderr));
    assert_eq!(
        text(&info.stdout).trim(),
        format!("{}|2|linux|berth", env!("CARGO_PKG_VERSION"))
    );

    let pruned = daemon.docker(&["image", "prune", "-f"]);
    assert!(pruned.status.success(), "{}", text(&pruned.stderr));
    let out = text(&pruned.stdout);
    assert!(
        out.contains(&format!("deleted: {dangling}")) && !out.contains(&kept),
        "{out}"
    );
    let all = daemon.docker(&["image", "prune", "-a", "-f"]);
    let out = text(&all.stdout);
    assert!(
        out.contains("untagged: keep/me:v1") && out.contains(&format!("deleted: {kept}")),
        "{out}"
    );
    assert_eq!(text(&daemon.docker(&["images", "-q"]).stdout), "");
}

#[test]
fn the_docker_cli_imports_through_the_daemon() {
    if !Path::new("/usr/local/bin/docker").exists() {
        eprintln!("skipped: /usr/local/bin/docker is missing");
        return;
    }
    let daemon = start();
    let rootfs = daemon.dir().join("rootfs.tar");
    berth_testkit::write_busybox_rootfs_tar(&rootfs).unwrap();
    let imported = daemon.docker(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        "-c",
        "ENV GREETING=hello",
        "-m",
        "from docker",
        rootfs.to_str().unwrap(),
        "imported/busybox:v1",
    ]);
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    let id = text(&imported.stdout).trim().to_owned();
    assert!(id.starts_with("sha256:"), "{id}");
    let config = daemon.docker(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}} {{json .Config.Cmd}} {{json .Config.Env}}",
        "imported/busybox:v1",
    ]);
    assert_eq!(
        text(&config.stdout).trim(),
        format!("{id} [\"sh\"] [\"GREETING=hello\"]")
    );
    let bad = daemon.docker(&[
        "import",
        "-c",
        "RUN true",
        rootfs.to_str().unwrap(),
        "imported/busybox:v2",
    ]);
    assert_eq!(bad.status.code(), Some(1));
}

#[test]
fn the_daemon_survives_many_clients_and_ones_that_hang_up() {
    let daemon = start();
    // A thousand requests at once, across the endpoints.
    let socket = daemon.socket.clone();
    let handles: Vec<_> = (0..1000)
        .map(|i| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let (path, want) = match i % 5 {
                    0 => ("/_ping", 200),
                    1 => ("/v1.45/images/json", 200),
                    2 => ("/v1.47/containers/json?all=1", 200),
                    3 => ("/volumes", 200),
                    _ => ("/containers/nothing/json", 404),
                };
                (http(&socket, "GET", path).0, want)
            })
        })
        .collect();
    for h in handles {
        let (got, want) = h.join().unwrap();
        assert_eq!(got, want);
    }
    // Clients that go away mid-request or before reading a stream.
    for path in [
        "/images/create?fromImage=127.0.0.1:1/nothing/here&tag=v1",
        "/images/load",
    ] {
        let mut conn = UnixStream::connect(&daemon.socket).unwrap();
        write!(
            conn,
            "POST {path} HTTP/1.1\r\nHost: berth\r\nContent-Length: 100000\r\n\r\npartial"
        )
        .unwrap();
        drop(conn);
    }
    let mut conn = UnixStream::connect(&daemon.socket).unwrap();
    conn.write_all(b"GARBAGE\r\n\r\n").unwrap();
    drop(conn);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        daemon.request("GET", "/_ping").0,
        200,
        "the daemon still answers"
    );
}

#[test]
fn concurrent_tags_are_all_kept() {
    let daemon = start();
    let id = daemon.import_busybox("local/busybox:v0", &[]);
    let socket = daemon.socket.clone();
    let handles: Vec<_> = (1..=40)
        .map(|i| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                http(
                    &socket,
                    "POST",
                    &format!("/images/local/busybox:v0/tag?repo=local/busybox&tag=v{i}"),
                )
                .0
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 201);
    }
    let (status, _, body) = daemon.request("GET", "/images/json");
    assert_eq!(status, 200);
    let images: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(images[0]["Id"], id);
    assert_eq!(
        images[0]["RepoTags"].as_array().unwrap().len(),
        41,
        "{body}"
    );
}
