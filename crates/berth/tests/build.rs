//! `berth build`: Dockerfiles into images through the daemon's
//! `POST /build`, with the berth CLI as a user drives it.

mod common;

use std::path::Path;
use std::process::Output;

use berth_testkit::daemon::Daemon;
use common::{berth, berth_cli, berth_with_input, check, stderr, stdout};

fn daemon() -> Daemon {
    let d = Daemon::start(berth());
    d.import_busybox("busybox:latest", &["-c", r#"CMD ["sh"]"#]);
    d
}

fn cli(d: &Daemon, args: &[&str]) -> Output {
    berth_cli(d, args)
}

fn cli_with_input(d: &Daemon, args: &[&str], input: &[u8]) -> Output {
    berth_with_input(d, args, input)
}

/// Writes `files` (path, contents) under `dir`.
fn write(dir: &Path, files: &[(&str, &str)]) {
    for (p, c) in files {
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, c).unwrap();
    }
}

/// A build that must succeed: its progress (stderr).
fn build(d: &Daemon, args: &[&str]) -> String {
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    let out = cli(d, &all);
    assert!(
        out.status.success(),
        "berth {all:?} failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    stderr(&out)
}

fn run(d: &Daemon, image: &str, script: &str) -> String {
    check(cli(d, &["run", "--rm", image, "sh", "-c", script]))
}

fn inspect(d: &Daemon, name: &str, format: &str) -> String {
    check(cli(d, &["inspect", "-f", format, name]))
        .trim()
        .to_owned()
}

/// What a failed build left: mounts under the data root, writable
/// snapshots, scratch directories, containers' runtime state.
fn leftovers(d: &Daemon) -> Vec<String> {
    let root = d.data_root();
    let mut out: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&*root.to_string_lossy()))
        .map(str::to_owned)
        .collect();
    for dir in [
        root.join("snapshots/active"),
        root.join("builds/tmp"),
        d.exec_root().join("runtime"),
    ] {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            // The runtime's cache of compiled seccomp programs stays.
            let kept = |e: &std::fs::DirEntry| e.file_name() == "@seccomp";
            out.extend(
                entries
                    .flatten()
                    .filter(|e| !kept(e))
                    .map(|e| e.path().display().to_string()),
            );
        }
    }
    out
}

const MULTI_STAGE: &str = r#"ARG BASE=busybox
FROM $BASE AS builder
ARG MSG=hi
ENV GREETING="hello world"
WORKDIR /src
COPY a.txt sub ./
RUN echo "$MSG $GREETING" > out.txt && cat a.txt d.txt > both.txt

FROM busybox AS unused
RUN echo this stage must not run && exit 1

FROM busybox
COPY --from=builder /src/out.txt /app/
RUN cat /app/out.txt
CMD ["cat", "/app/out.txt"]
"#;

#[test]
fn a_multi_stage_build_runs_caches_and_skips_what_the_target_does_not_need() {
    let d = daemon();
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    write(
        c,
        &[
            ("Dockerfile", MULTI_STAGE),
            ("a.txt", "A\n"),
            ("sub/d.txt", "D\n"),
            ("x.log", "ignored\n"),
            (".dockerignore", "*.log\n"),
        ],
    );
    let ctx_s = c.to_str().unwrap();
    let iid1 = c.join("iid1");
    let progress = build(
        &d,
        &["-t", "app:1", "--iidfile", iid1.to_str().unwrap(), ctx_s],
    );
    assert!(!progress.contains("this stage must not run"), "{progress}");
    assert!(progress.contains("[builder 6/6] RUN"), "{progress}");
    assert!(progress.contains("naming to app:1"), "{progress}");
    assert_eq!(
        check(cli(&d, &["run", "--rm", "app:1"])),
        "hi hello world\n"
    );
    assert_eq!(
        inspect(&d, "app:1", "{{.Id}}"),
        std::fs::read_to_string(&iid1).unwrap()
    );

    // Nothing changed: every step is cached, the same image comes out.
    let iid2 = c.join("iid2");
    let again = build(
        &d,
        &["-t", "app:1", "--iidfile", iid2.to_str().unwrap(), ctx_s],
    );
    assert_eq!(again.matches("CACHED").count(), 7, "{again}");
    // The terminal display: one line per step, then the summary.
    let tty = build(&d, &["-t", "app:1", "--progress", "tty", ctx_s]);
    assert!(
        tty.contains(" => CACHED [builder 5/6] COPY a.txt sub ./"),
        "{tty}"
    );
    assert!(tty.contains("FINISHED"), "{tty}");
    assert!(!tty.contains("#5"), "{tty}");
    assert_eq!(
        std::fs::read_to_string(&iid1).unwrap(),
        std::fs::read_to_string(&iid2).unwrap()
    );

    // One file changes: the steps from its COPY on run again; the final
    // stage's COPY --from reads a file that did not change, so it and what
    // follows stay cached.
    write(c, &[("a.txt", "A2\n")]);
    let changed = build(&d, &["-t", "app:1", ctx_s]);
    let cached_steps: Vec<&str> = changed.lines().filter(|l| l.ends_with("CACHED")).collect();
    assert!(
        changed.contains("[builder 5/6] COPY a.txt sub ./"),
        "{changed}"
    );
    assert!(
        !changed.contains("#5 CACHED"),
        "the COPY must rerun:\n{changed}"
    );
    assert!(
        !changed.contains("#6 CACHED"),
        "the RUN must rerun:\n{changed}"
    );
    assert_eq!(cached_steps.len(), 5, "{changed}");

    // A build arg reaches RUN and invalidates it.
    build(&d, &["-t", "app:2", "--build-arg", "MSG=bye", ctx_s]);
    assert_eq!(
        check(cli(&d, &["run", "--rm", "app:2"])),
        "bye hello world\n"
    );

    // --target: only the builder stage (and what it needs) is built.
    let target = build(&d, &["-t", "app:builder", "--target", "builder", ctx_s]);
    assert!(!target.contains("stage-2"), "{target}");
    assert_eq!(run(&d, "app:builder", "cat /src/both.txt"), "A2\nD\n");
    assert_eq!(
        run(&d, "app:builder", "ls /src"),
        "a.txt\nboth.txt\nd.txt\nout.txt\n"
    );

    // --no-cache runs everything again.
    let fresh = build(&d, &["-t", "app:1", "--no-cache", ctx_s]);
    assert!(!fresh.contains("CACHED"), "{fresh}");

    // An unknown target is an error that names it.
    let out = cli(&d, &["build", "--target", "nope", ctx_s]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("\"nope\""), "{}", stderr(&out));
}

#[test]
fn instructions_set_the_image_config_and_onbuild_triggers_run_in_children() {
    let d = daemon();
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    write(
        c,
        &[(
            "Dockerfile",
            r#"FROM busybox
ARG VERSION=1.0
ENV APP_HOME=/opt/app PATH=/opt/app/bin:$PATH
LABEL org.example.version=$VERSION "with space"="yes"
WORKDIR $APP_HOME
WORKDIR sub
USER nobody:nogroup
EXPOSE 8080 53/udp
VOLUME ["/data"]
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=2s --retries=4 CMD ["true"]
SHELL ["/bin/sh", "-ec"]
ONBUILD USER root
ONBUILD RUN echo triggered > /triggered
ENTRYPOINT ["/bin/echo"]
CMD ["default"]
"#,
        )],
    );
    build(
        &d,
        &["-t", "cfg", "--label", "extra=label", c.to_str().unwrap()],
    );
    let get = |f: &str| inspect(&d, "cfg", f);
    assert_eq!(get("{{.Config.WorkingDir}}"), "/opt/app/sub");
    assert_eq!(get("{{.Config.User}}"), "nobody:nogroup");
    assert_eq!(
        get("{{index .Config.Labels \"org.example.version\"}}"),
        "1.0"
    );
    assert_eq!(get("{{index .Config.Labels \"with space\"}}"), "yes");
    assert_eq!(get("{{index .Config.Labels \"extra\"}}"), "label");
    assert_eq!(
        get("{{json .Config.ExposedPorts}}"),
        r#"{"53/udp":{},"8080/tcp":{}}"#
    );
    assert_eq!(get("{{json .Config.Volumes}}"), r#"{"/data":{}}"#);
    assert_eq!(get("{{.Config.StopSignal}}"), "SIGINT");
    assert_eq!(get("{{json .Config.Entrypoint}}"), r#"["/bin/echo"]"#);
    assert_eq!(get("{{json .Config.Cmd}}"), r#"["default"]"#);
    let health: serde_json::Value =
        serde_json::from_str(&get("{{json .Config.Healthcheck}}")).unwrap();
    assert_eq!(
        health,
        serde_json::json!({"Test":["CMD","true"],"Interval":5000000000u64,"Timeout":2000000000u64,"Retries":4})
    );
    let env = get("{{json .Config.Env}}");
    assert!(env.contains(r#""APP_HOME=/opt/app""#), "{env}");
    assert!(env.contains("PATH=/opt/app/bin:/usr/local/sbin"), "{env}");
    assert!(!env.contains("VERSION"), "ARGs do not persist: {env}");
    assert_eq!(check(cli(&d, &["run", "--rm", "cfg"])), "default\n");

    // A child of the image runs its ONBUILD trigger first.
    let child = tempfile::tempdir().unwrap();
    write(
        child.path(),
        &[(
            "Dockerfile",
            "FROM cfg\nENTRYPOINT []\nCMD [\"cat\", \"/triggered\"]\n",
        )],
    );
    build(&d, &["-t", "child", child.path().to_str().unwrap()]);
    assert_eq!(check(cli(&d, &["run", "--rm", "child"])), "triggered\n");
    assert_eq!(inspect(&d, "child", "{{json .Config.OnBuild}}"), "null");
}

/// The instructions of `copy_and_add_follow_dockers_rules`' image.
const FILES_DOCKERFILE: &str = r#"RUN mkdir -p /usr/local/real && ln -s /usr/local/real /linked
COPY *.txt /globbed/
COPY one.txt /renamed.txt
COPY dir /copied
COPY --chown=nobody:nogroup --chmod=700 two.txt /owned/
ADD pkg.tar.gz /unpacked/
COPY pkg.tar.gz /kept/
COPY one.txt /linked/
COPY link /followed
COPY . /ctx/
COPY <<EOF /heredoc.txt
made by a heredoc
EOF
RUN <<EOF
echo from a heredoc script > /script.txt
EOF
RUN <<EOF
#!/bin/sh -e
echo "run as $0" > /shebang.txt
EOF
"#;

#[test]
fn copy_and_add_follow_dockers_rules() {
    let d = daemon();
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    write(
        c,
        &[
            ("one.txt", "1\n"),
            ("two.txt", "2\n"),
            ("dir/inner/deep.txt", "deep\n"),
            ("dir/top.txt", "top\n"),
            ("skip.log", "no\n"),
            (".dockerignore", "*.log\n"),
        ],
    );
    // A local tar (gzip) that ADD unpacks.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    {
        let mut t = tar::Builder::new(&mut gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        t.append_data(&mut h, "pkg/file", &b"tar\n"[..]).unwrap();
        t.finish().unwrap();
    }
    std::fs::write(c.join("pkg.tar.gz"), gz.finish().unwrap()).unwrap();
    std::os::unix::fs::symlink("one.txt", c.join("link")).unwrap();
    // A web server on loopback for ADD's URLs.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let body = "remote\n";
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let sum = berth_testkit::sha256_hex(b"remote\n");
    let url = format!("http://127.0.0.1:{port}/files/remote.txt");
    write(
        c,
        &[(
            "Dockerfile",
            &format!(
                "FROM busybox\nADD --checksum=sha256:{sum} {url} /downloaded/\nADD {url} /renamed-download\n{}",
                FILES_DOCKERFILE
            ),
        )],
    );
    build(&d, &["-t", "files", c.to_str().unwrap()]);
    assert_eq!(run(&d, "files", "cat /downloaded/remote.txt"), "remote\n");
    assert_eq!(run(&d, "files", "cat /renamed-download"), "remote\n");
    write(
        c,
        &[(
            "Dockerfile",
            &format!(
                "FROM busybox\nADD --checksum=sha256:{} {url} /x\n",
                "0".repeat(64)
            ),
        )],
    );
    let out = cli(&d, &["build", c.to_str().unwrap()]);
    assert!(stderr(&out).contains("--checksum"), "{}", stderr(&out));
    let ls = |p: &str| run(&d, "files", &format!("ls {p}"));
    assert_eq!(ls("/globbed"), "one.txt\ntwo.txt\n");
    assert_eq!(run(&d, "files", "cat /renamed.txt"), "1\n");
    assert_eq!(ls("/copied"), "inner\ntop.txt\n");
    assert_eq!(run(&d, "files", "cat /copied/inner/deep.txt"), "deep\n");
    assert_eq!(
        run(&d, "files", "stat -c '%u:%g %a' /owned/two.txt"),
        "65534:65534 700\n"
    );
    assert_eq!(run(&d, "files", "cat /unpacked/pkg/file"), "tar\n");
    assert_eq!(ls("/kept"), "pkg.tar.gz\n");
    // Through the image's symlink, not over it.
    assert_eq!(run(&d, "files", "cat /usr/local/real/one.txt"), "1\n");
    assert_eq!(run(&d, "files", "cat /followed"), "1\n");
    let all = ls("-a /ctx");
    assert!(
        all.contains("Dockerfile") && all.contains("one.txt"),
        "{all}"
    );
    assert!(
        !all.contains("skip.log"),
        ".dockerignore must keep skip.log out: {all}"
    );
    assert_eq!(run(&d, "files", "cat /heredoc.txt"), "made by a heredoc\n");
    assert_eq!(
        run(&d, "files", "cat /script.txt"),
        "from a heredoc script\n"
    );
    assert_eq!(
        run(&d, "files", "cat /shebang.txt"),
        "run as /dev/pipes/EOF\n"
    );
}

#[test]
fn bad_builds_fail_clearly_and_leave_nothing_behind() {
    let d = daemon();
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    std::os::unix::fs::symlink("/etc/passwd", c.join("escape")).unwrap();
    let cases: &[(&str, &[&str])] = &[
        (
            "FROM busybox\nRUN echo first line; echo the last words; exit 3\n",
            &["Dockerfile:2", "exit code: 3", "the last words"],
        ),
        (
            "FROM busybox\nCOPY ../outside /x\n",
            &["Dockerfile:2", "outside the build context"],
        ),
        (
            "FROM busybox\nCOPY escape /x\n",
            &["Dockerfile:2", "outside the build context"],
        ),
        (
            "FROM busybox\nCOPY missing.txt /x\n",
            &["Dockerfile:2", "missing.txt", "not found"],
        ),
        (
            "FROM busybox\nRUN true\nFROB x\n",
            &["line 3", "unknown instruction: FROB"],
        ),
        (
            "FROM busybox\nCOPY --nope=1 a /b\n",
            &["line 2", "unknown flag: --nope"],
        ),
        (
            "FROM busybox AS me\nCOPY --from=me /a /b\n",
            &["Dockerfile:2", "circular"],
        ),
        ("", &["no instructions"]),
        (
            "FROM busybox AS first\nRUN exit 5\nFROM busybox\nCOPY --from=first /x /y\n",
            &["Dockerfile:2", "exit code: 5"],
        ),
    ];
    for (dockerfile, wants) in cases {
        std::fs::write(c.join("Dockerfile"), dockerfile).unwrap();
        let out = cli(&d, &["build", "-t", "broken:1", c.to_str().unwrap()]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{dockerfile}\n{err}");
        for w in *wants {
            assert!(err.contains(w), "{dockerfile}: {w:?} missing from\n{err}");
        }
        assert!(!cli(&d, &["image", "inspect", "broken:1"]).status.success());
        assert_eq!(leftovers(&d), Vec::<String>::new(), "after {dockerfile}");
    }
    // A context directory that does not exist.
    let out = cli(&d, &["build", "/no/such/dir"]);
    assert_eq!(out.status.code(), Some(125));
}

#[test]
fn contexts_from_stdin_quiet_builds_and_outputs() {
    let d = daemon();
    // A Dockerfile alone on stdin: no context.
    let out = cli_with_input(
        &d,
        &["build", "-q", "-t", "stdin:1", "-"],
        b"FROM busybox\nRUN echo made > /made\n",
    );
    let id = check(out);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(run(&d, "stdin:1", "cat /made"), "made\n");

    // -f - with a context directory.
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), &[("f.txt", "from the context\n")]);
    let out = cli_with_input(
        &d,
        &[
            "build",
            "-t",
            "stdin:2",
            "-f",
            "-",
            ctx.path().to_str().unwrap(),
        ],
        b"FROM busybox\nCOPY f.txt /\n",
    );
    check(out);
    assert_eq!(run(&d, "stdin:2", "cat /f.txt"), "from the context\n");

    // A tar context on stdin, with the Dockerfile named by -f.
    let mut t = tar::Builder::new(Vec::new());
    for (name, body) in [
        ("build.df", "FROM busybox\nCOPY g.txt /\n"),
        ("g.txt", "in the tar\n"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        t.append_data(&mut h, name, body.as_bytes()).unwrap();
    }
    let tar_bytes = t.into_inner().unwrap();
    check(cli_with_input(
        &d,
        &["build", "-t", "stdin:3", "-f", "build.df", "-"],
        &tar_bytes,
    ));
    assert_eq!(run(&d, "stdin:3", "cat /g.txt"), "in the tar\n");

    // --output: the image's files as a directory and as a tar.
    let df = "FROM busybox\nRUN echo exported > /result.txt\n";
    let context = ctx.path().to_str().unwrap();
    let export = |spec: &str| {
        check(cli_with_input(
            &d,
            &["build", "-o", spec, "-f", "-", context],
            df.as_bytes(),
        ))
    };
    let out_dir = ctx.path().join("out");
    export(&format!("type=local,dest={}", out_dir.display()));
    assert_eq!(
        std::fs::read_to_string(out_dir.join("result.txt")).unwrap(),
        "exported\n"
    );
    let tar_path = ctx.path().join("out.tar");
    export(&format!("type=tar,dest={}", tar_path.display()));
    let mut a = tar::Archive::new(std::fs::File::open(&tar_path).unwrap());
    assert!(
        a.entries()
            .unwrap()
            .flatten()
            .any(|e| e.path().unwrap().to_string_lossy() == "result.txt")
    );
}

#[test]
fn run_cache_mounts_persist_between_builds_and_stay_out_of_the_image() {
    let d = daemon();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=cache,target=/cache echo x >> /cache/log && wc -l < /cache/log > /count\n",
        )],
    );
    let c = ctx.path().to_str().unwrap();
    build(&d, &["-t", "cm", "--no-cache", c]);
    assert_eq!(run(&d, "cm", "cat /count").trim(), "1");
    build(&d, &["-t", "cm", "--no-cache", c]);
    assert_eq!(run(&d, "cm", "cat /count").trim(), "2");
    // The mount point the RUN needed is not part of the image.
    assert_eq!(
        run(&d, "cm", "test -e /cache && echo there || echo absent"),
        "absent\n"
    );
}

#[test]
fn secrets_and_stage_mounts_reach_run_but_not_the_image() {
    let d = daemon();
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    write(
        c,
        &[
            ("token.txt", "s3cr3t"),
            ("keep/a.txt", "a"),
            ("keep/b.md", "b"),
            (
                "Dockerfile",
                r#"FROM busybox AS tools
RUN mkdir -p /opt/tools && echo "from the tools stage" > /opt/tools/note
FROM busybox
RUN --mount=type=secret,id=token cat /run/secrets/token > /seen-secret
RUN --mount=type=secret,id=token,target=/etc/app-token,required wc -c < /etc/app-token > /secret-size
RUN --mount=type=bind,from=tools,source=/opt/tools,target=/mnt/tools cat /mnt/tools/note > /seen-note
COPY --exclude=*.md keep /kept/
"#,
            ),
        ],
    );
    let src = format!("id=token,src={}", c.join("token.txt").display());
    let dir = c.to_str().unwrap();
    build(&d, &["-t", "sec", "--secret", &src, dir]);
    assert_eq!(run(&d, "sec", "cat /seen-secret"), "s3cr3t");
    assert_eq!(run(&d, "sec", "cat /secret-size").trim(), "6");
    assert_eq!(run(&d, "sec", "cat /seen-note"), "from the tools stage\n");
    assert_eq!(run(&d, "sec", "ls /kept"), "a.txt\n");
    for gone in ["/run/secrets", "/etc/app-token", "/mnt/tools"] {
        assert_eq!(
            run(
                &d,
                "sec",
                &format!("test -e {gone} && echo there || echo absent")
            ),
            "absent\n",
            "{gone}"
        );
    }
    // A required secret that was not given fails the build.
    write(
        c,
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=secret,id=token,required true\n",
        )],
    );
    let out = cli(&d, &["build", "--no-cache", dir]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("secret token not found"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn independent_stages_build_at_the_same_time() {
    // Each stage waits for a file the other writes in a shared cache mount:
    // built one after the other, both would time out.
    let d = daemon();
    let ctx = tempfile::tempdir().unwrap();
    let wait = |mine: &str, theirs: &str| {
        format!(
            "RUN --mount=type=cache,id=rendezvous,target=/sync touch /sync/{mine} && for i in $(seq 200); do [ -e /sync/{theirs} ] && exit 0; sleep 0.05; done; exit 1"
        )
    };
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!(
                "FROM busybox AS a\n{}\nFROM busybox AS b\n{}\nFROM busybox\nCOPY --from=a /bin/busybox /a\nCOPY --from=b /bin/busybox /b\n",
                wait("a", "b"),
                wait("b", "a")
            ),
        )],
    );
    build(
        &d,
        &["-t", "par", "--no-cache", ctx.path().to_str().unwrap()],
    );
}

#[test]
fn check_reports_dockers_build_checks_without_building() {
    let d = daemon();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM busybox as Build\nENV A b\nCMD echo $UNDEFINED_THING\n",
        )],
    );
    let c = ctx.path().to_str().unwrap();
    // A real build lists the findings after it, as BuildKit does.
    let built = build(&d, &["-t", "linted", c]);
    assert!(built.contains("warnings found:"), "{built}");
    assert!(built.contains(" - JSONArgsRecommended: "), "{built}");
    let out = cli(&d, &["build", "--check", "-t", "checked", c]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    for rule in [
        "FromAsCasing",
        "StageNameCasing",
        "LegacyKeyValueFormat",
        "JSONArgsRecommended",
    ] {
        assert!(err.contains(rule), "{rule} missing:\n{err}");
    }
    assert!(err.contains("Dockerfile:2"), "{err}");
    assert!(!cli(&d, &["image", "inspect", "checked"]).status.success());
    // check=error=true turns findings into a failure; a clean file passes.
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "# check=error=true\nFROM busybox\nCMD echo hi\n",
        )],
    );
    assert_eq!(cli(&d, &["build", "--check", c]).status.code(), Some(1));
    write(
        ctx.path(),
        &[("Dockerfile", "FROM busybox\nENV A=1\nCMD [\"sh\"]\n")],
    );
    let out = cli(&d, &["build", "--check", c]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("no warnings"), "{}", stderr(&out));
}

#[test]
fn a_daemon_killed_mid_build_leaves_nothing_behind_once_restarted() {
    let mut d = daemon();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo started && sleep 4321\n",
        )],
    );
    let mut client = std::process::Command::new(berth())
        .arg("-H")
        .arg(d.host())
        .args(["build", "-t", "never", ctx.path().to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let sleeping = || {
        std::fs::read_dir("/proc").unwrap().flatten().any(|p| {
            std::fs::read(p.path().join("cmdline")).is_ok_and(|c| c == b"sleep\x004321\x00")
        })
    };
    common::engine::eventually("the RUN to start", sleeping);
    d.kill();
    d.restart();
    let _ = client.kill();
    let _ = client.wait();
    common::engine::eventually("the RUN's process to be gone", || !sleeping());
    assert_eq!(leftovers(&d), Vec::<String>::new());
    assert!(!cli(&d, &["image", "inspect", "never"]).status.success());
    // The daemon builds again.
    write(
        ctx.path(),
        &[("Dockerfile", "FROM busybox\nRUN echo fine\n")],
    );
    build(&d, &["-t", "after", ctx.path().to_str().unwrap()]);
}

#[test]
fn run_layers_record_deletions_and_metadata_adds_no_layer() {
    let d = daemon();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM busybox\nARG TARGETARCH\nARG TARGETPLATFORM\nRUN echo $TARGETPLATFORM $TARGETARCH > /arch && mkdir /d && echo x > /d/victim\nENV X=1\nLABEL a=b\nEXPOSE 80\nRUN rm /d/victim\n",
        )],
    );
    let arch = berth_testkit::oci_arch();
    let platform = format!("linux/{arch}");
    build(
        &d,
        &[
            "-t",
            "layers",
            "--platform",
            &platform,
            ctx.path().to_str().unwrap(),
        ],
    );
    assert_eq!(
        run(&d, "layers", "cat /arch"),
        format!("linux/{arch} {arch}\n")
    );
    assert_eq!(
        run(&d, "layers", "test -e /d/victim && echo there || echo gone"),
        "gone\n"
    );
    // The base's layer and the RUNs': ENV, LABEL and EXPOSE add none.
    assert_eq!(inspect(&d, "layers", "{{len .RootFS.Layers}}"), "3");
}

#[test]
fn base_images_are_pulled_when_missing_or_when_asked() {
    let d = daemon();
    let registry = berth_testkit::registry::RegistryProcess::berth(berth(), &[]);
    let name = format!("{}/base/busybox:1", registry.addr);
    check(cli(&d, &["tag", "busybox:latest", &name]));
    check(cli(&d, &["push", &name]));
    check(cli(&d, &["rmi", &name]));
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!("FROM {name}\nRUN echo pulled > /p\n"),
        )],
    );
    let c = ctx.path().to_str().unwrap();
    let first = build(&d, &["-t", "pulled", c]);
    assert!(first.contains("Pulling from base/busybox"), "{first}");
    assert_eq!(run(&d, "pulled", "cat /p"), "pulled\n");
    // Present now: no pull unless --pull.
    let again = build(&d, &["-t", "pulled", c]);
    assert!(!again.contains("Pulling from"), "{again}");
    let forced = build(&d, &["-t", "pulled", "--pull", c]);
    assert!(forced.contains("Pulling from base/busybox"), "{forced}");
    assert!(forced.contains("CACHED"), "{forced}");
}

#[test]
fn the_build_cache_outlives_rmi_and_builder_prune_reclaims_it() {
    let d = daemon();
    let blobs = || {
        std::fs::read_dir(d.data_root().join("content/blobs/sha256"))
            .map(|r| r.count())
            .unwrap_or(0)
    };
    let before = blobs();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=cache,target=/c head -c 100000 /dev/urandom > /big && touch /c/x\nENV A=1\n",
        )],
    );
    let c = ctx.path().to_str().unwrap();
    build(&d, &["-t", "cached", c]);
    let df = check(cli(
        &d,
        &["system", "df", "--format", "{{.Type}} {{.TotalCount}}"],
    ));
    assert!(df.contains("Build Cache 2"), "{df}");
    // rmi leaves the cache: the rebuild needs no RUN.
    check(cli(&d, &["rmi", "cached"]));
    let again = build(&d, &["-t", "cached", c]);
    assert_eq!(again.matches("CACHED").count(), 2, "{again}");
    check(cli(&d, &["rmi", "cached"]));
    // Without -a nothing a named image holds goes; with it, everything.
    let out = check(cli(&d, &["builder", "prune", "-a", "-f"]));
    assert!(out.contains("Deleted build cache objects"), "{out}");
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert_eq!(blobs(), before, "the cache's blobs are gone");
    assert!(!d.data_root().join("builds/cache-mounts").exists());
    let fresh = build(&d, &["-t", "cached", c]);
    assert!(!fresh.contains("CACHED"), "{fresh}");
}
