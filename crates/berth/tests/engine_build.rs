//! The docker CLI's classic builder (`DOCKER_BUILDKIT=0 docker build`)
//! against berth's `POST /build`. `BERTH_TEST_DOCKERD=1` runs the same
//! checks against a dockerd.

mod common;

use std::process::Command;
use std::time::Duration;

use berth_testkit::daemon::DOCKER;
use berth_testkit::peer::run_with_timeout;
use common::engine::{classic_build, daemon, ok};
use common::text;

#[test]
fn docker_build_with_the_classic_builder_makes_runnable_images() {
    let Some(d) = daemon() else { return };
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    std::fs::write(c.join("message.txt"), "from the context\n").unwrap();
    std::fs::write(c.join("secret.key"), "never sent\n").unwrap();
    std::fs::write(c.join(".dockerignore"), "*.key\n").unwrap();
    std::fs::write(
        c.join("app.Dockerfile"),
        "FROM busybox:latest\nARG WHO=nobody\nCOPY . /ctx/\nRUN echo \"hello $WHO\" > /greeting\nCMD [\"cat\", \"/greeting\", \"/ctx/message.txt\"]\n",
    )
    .unwrap();
    let dir = c.to_str().unwrap();
    let file = format!("{dir}/app.Dockerfile");
    let app = |extra: &[&str]| {
        let mut args = extra.to_vec();
        args.extend(["-f", &file, "--build-arg", "WHO=docker", dir]);
        classic_build(&d, &args)
    };
    let out = app(&["-t", "classic:1"]);
    let progress = ok(&out);
    assert!(
        progress.contains("Step 1/5 : FROM busybox:latest"),
        "{progress}"
    );
    assert!(
        progress.contains("Successfully tagged classic:1"),
        "{progress}"
    );
    assert_eq!(
        ok(&d.docker(&["run", "--rm", "classic:1"])),
        "hello docker\nfrom the context\n"
    );
    assert_eq!(
        ok(&d.docker(&["run", "--rm", "classic:1", "ls", "/ctx"])),
        "app.Dockerfile\nmessage.txt\n"
    );

    // Again: the cache answers, and -q prints only the image ID.
    let out = app(&["-t", "classic:1"]);
    assert!(ok(&out).contains("Using cache"));
    let out = app(&["-q"]);
    let id = ok(&out);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(
        id.trim(),
        ok(&d.docker(&["image", "inspect", "-f", "{{.Id}}", "classic:1"])).trim()
    );

    // A Dockerfile on stdin with no context.
    let mut child = Command::new(DOCKER)
        .env("DOCKER_BUILDKIT", "0")
        .args(["-H", &d.host(), "build", "-t", "classic:stdin", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"FROM busybox:latest\nRUN echo piped > /piped\n")
        .unwrap();
    ok(&child.wait_with_output().unwrap());
    assert_eq!(
        ok(&d.docker(&["run", "--rm", "classic:stdin", "cat", "/piped"])),
        "piped\n"
    );

    // berth's ping says its builder is the classic one: a plain `docker
    // build` (no DOCKER_BUILDKIT, no buildx) builds through it.
    if common::engine::berth_only(&d) {
        let plain = run_with_timeout(
            Command::new(DOCKER).env_remove("DOCKER_BUILDKIT").args([
                "-H",
                &d.host(),
                "build",
                "-q",
                "-f",
                &file,
                dir,
            ]),
            Duration::from_secs(60),
        );
        assert!(ok(&plain).trim().starts_with("sha256:"));
    }

    // Stages build in parallel, but the classic output tells one step after
    // the other.
    std::fs::write(
        c.join("stages.Dockerfile"),
        "FROM busybox:latest AS one\nRUN sleep 0.3 && echo first\nFROM busybox:latest AS two\nRUN echo second\nFROM busybox:latest\nCOPY --from=one /bin/sh /one\nCOPY --from=two /bin/sh /two\n",
    )
    .unwrap();
    let staged = ok(&classic_build(
        &d,
        &["--no-cache", "-f", &format!("{dir}/stages.Dockerfile"), dir],
    ));
    let steps: Vec<&str> = staged.lines().filter(|l| l.starts_with("Step ")).collect();
    let numbers: Vec<usize> = steps
        .iter()
        .map(|l| l[5..l.find('/').unwrap()].parse().unwrap())
        .collect();
    assert_eq!(numbers, (1..=numbers.len()).collect::<Vec<_>>(), "{staged}");
    let first = staged.find("first").unwrap();
    assert!(first < staged.find("Step 3/").unwrap(), "{staged}");

    // A failing RUN fails the build, shows its output, tags nothing.
    std::fs::write(
        c.join("Dockerfile"),
        "FROM busybox:latest\nRUN echo about to fail; exit 4\n",
    )
    .unwrap();
    let out = classic_build(&d, &["-t", "classic:broken", dir]);
    // The docker CLI exits with the RUN's code.
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("about to fail"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        !d.docker(&["image", "inspect", "classic:broken"])
            .status
            .success()
    );
}

#[test]
fn docker_build_pulls_a_private_base_with_the_clients_credentials() {
    let Some(d) = daemon() else { return };
    let htpasswd = d.dir().join("htpasswd");
    if !berth_testkit::registry::write_htpasswd(&htpasswd, "alice", "secret") {
        eprintln!("skipped: htpasswd (apache2-utils) is not installed");
        return;
    }
    let registry = berth_testkit::registry::RegistryProcess::berth(
        common::berth(),
        &["--htpasswd", htpasswd.to_str().unwrap()],
    );
    let config = tempfile::tempdir().unwrap();
    let docker = |args: &[&str]| {
        run_with_timeout(
            Command::new(DOCKER)
                .env("DOCKER_CONFIG", config.path())
                .env("DOCKER_BUILDKIT", "0")
                .arg("-H")
                .arg(d.host())
                .args(args),
            Duration::from_secs(60),
        )
    };
    let base = format!("{}/private/base:1", registry.addr);
    ok(&docker(&[
        "login",
        "-u",
        "alice",
        "-p",
        "secret",
        &registry.addr,
    ]));
    ok(&docker(&["tag", "busybox:latest", &base]));
    ok(&docker(&["push", &base]));
    ok(&docker(&["rmi", &base]));
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {base}\nRUN echo built on a private base > /note\n"),
    )
    .unwrap();
    // The CLI sends its stored credentials (X-Registry-Config): the pull of
    // the base uses them.
    ok(&docker(&[
        "build",
        "-t",
        "from-private",
        ctx.path().to_str().unwrap(),
    ]));
    assert_eq!(
        ok(&d.docker(&["run", "--rm", "from-private", "cat", "/note"])),
        "built on a private base\n"
    );
}
