use super::*;

const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn sha() -> String {
    format!("sha256:{HEX}")
}

/// Valid references: input, normalised form, familiar form.
fn valid_cases() -> Vec<(String, String, String)> {
    let d = sha();
    let owned = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    vec![
        owned(
            "busybox",
            "docker.io/library/busybox:latest",
            "busybox:latest",
        ),
        owned(
            "busybox:1.36",
            "docker.io/library/busybox:1.36",
            "busybox:1.36",
        ),
        owned("user/app", "docker.io/user/app:latest", "user/app:latest"),
        owned("user/app:1", "docker.io/user/app:1", "user/app:1"),
        owned(
            "library/busybox",
            "docker.io/library/busybox:latest",
            "busybox:latest",
        ),
        owned(
            "docker.io/busybox",
            "docker.io/library/busybox:latest",
            "busybox:latest",
        ),
        owned(
            "docker.io/library/busybox:x",
            "docker.io/library/busybox:x",
            "busybox:x",
        ),
        owned(
            "index.docker.io/x",
            "docker.io/library/x:latest",
            "x:latest",
        ),
        owned("index.docker.io/u/x:2", "docker.io/u/x:2", "u/x:2"),
        owned(
            "docker.io/library/a/b",
            "docker.io/library/a/b:latest",
            "library/a/b:latest",
        ),
        owned(
            "localhost/app",
            "localhost/app:latest",
            "localhost/app:latest",
        ),
        owned(
            "localhost:5000/app:1.0",
            "localhost:5000/app:1.0",
            "localhost:5000/app:1.0",
        ),
        owned(
            "registry.example.com/a/b/c:tag",
            "registry.example.com/a/b/c:tag",
            "registry.example.com/a/b/c:tag",
        ),
        owned(
            "127.0.0.1:5000/x",
            "127.0.0.1:5000/x:latest",
            "127.0.0.1:5000/x:latest",
        ),
        owned("[::1]:5000/x:t", "[::1]:5000/x:t", "[::1]:5000/x:t"),
        owned("[fe80::1]/x", "[fe80::1]/x:latest", "[fe80::1]/x:latest"),
        owned(
            "Example.COM/x",
            "Example.COM/x:latest",
            "Example.COM/x:latest",
        ),
        // Uppercase makes the first component a host, as in Docker.
        owned("Foo/bar", "Foo/bar:latest", "Foo/bar:latest"),
        owned(
            "my-registry/x",
            "docker.io/my-registry/x:latest",
            "my-registry/x:latest",
        ),
        owned(
            &format!("app@{d}"),
            &format!("docker.io/library/app@{d}"),
            &format!("app@{d}"),
        ),
        owned(
            &format!("app:tag@{d}"),
            &format!("docker.io/library/app:tag@{d}"),
            &format!("app:tag@{d}"),
        ),
        owned(
            &format!("localhost:5000/a/b@{d}"),
            &format!("localhost:5000/a/b@{d}"),
            &format!("localhost:5000/a/b@{d}"),
        ),
        owned(
            "u/a.b_c__d-e---f",
            "docker.io/u/a.b_c__d-e---f:latest",
            "u/a.b_c__d-e---f:latest",
        ),
        owned(
            "x:Tag_1.2-rc",
            "docker.io/library/x:Tag_1.2-rc",
            "x:Tag_1.2-rc",
        ),
        owned("x:_", "docker.io/library/x:_", "x:_"),
        owned("0/1:2", "docker.io/0/1:2", "0/1:2"),
        // No `/`, so `localhost` is the repository and 5000 the tag.
        owned(
            "localhost:5000",
            "docker.io/library/localhost:5000",
            "localhost:5000",
        ),
        owned(
            &format!("x:{}", "t".repeat(128)),
            &format!("docker.io/library/x:{}", "t".repeat(128)),
            &format!("x:{}", "t".repeat(128)),
        ),
    ]
}

#[test]
fn valid_references_normalise_like_docker() {
    let cases = valid_cases();
    assert!(cases.len() >= 25);
    for (input, normalised, familiar) in cases {
        let r = ImageRef::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(r.to_string(), normalised, "{input}");
        assert_eq!(r.familiar(), familiar, "{input}");
        // Both forms parse back to the same reference.
        assert_eq!(ImageRef::parse(&normalised).unwrap(), r, "{input}");
        assert_eq!(ImageRef::parse(&familiar).unwrap(), r, "{input}");
    }
}

#[test]
fn invalid_references_say_why() {
    use ReferenceProblem as P;
    let bad_component = |c: &str| P::BadPathComponent {
        component: c.to_owned(),
    };
    let bad_tag = |t: &str| P::BadTag { tag: t.to_owned() };
    let bad_domain = |d: &str| P::BadDomain {
        domain: d.to_owned(),
    };
    let long_tag = format!("x:{}", "t".repeat(129));
    let long_name = format!("a/{}", "b".repeat(250));
    let cases: Vec<(&str, P)> = vec![
        ("", P::Empty),
        (HEX, P::ImageId),
        ("Busybox", P::Uppercase),
        ("user/App", P::Uppercase),
        ("localhost:5000/App:1", P::Uppercase),
        ("busybox:", bad_tag("")),
        ("busybox:-x", bad_tag("-x")),
        ("busybox:.x", bad_tag(".x")),
        ("busybox:a+b", bad_tag("a+b")),
        (&long_tag, P::TagTooLong { len: 129 }),
        (&long_name, P::NameTooLong { len: 262 }),
        ("/busybox", P::EmptyPathComponent),
        ("user//app", P::EmptyPathComponent),
        ("user/app/", P::EmptyPathComponent),
        ("localhost:5000/", P::EmptyPathComponent),
        ("a..b", bad_component("a..b")),
        ("x/../y", bad_component("..")),
        ("a___b", bad_component("a___b")),
        ("-a", bad_component("-a")),
        ("a-", bad_component("a-")),
        ("a_.b", bad_component("a_.b")),
        ("user/a b", bad_component("a b")),
        ("ünïcode", bad_component("ünïcode")),
        ("-bad.com/x", bad_domain("-bad.com")),
        ("bad..com/x", bad_domain("bad..com")),
        // A `.` makes the first component a registry, even a bad one.
        ("a_b.c/x", bad_domain("a_b.c")),
        ("host.com:/x", bad_domain("host.com:")),
        ("host.com:50a/x", bad_domain("host.com:50a")),
        ("[::1/x", bad_domain("[::1")),
        ("[zz]:5000/x", bad_domain("[zz]:5000")),
    ];
    for (input, reason) in cases {
        let err = ImageRef::parse(input).unwrap_err();
        assert_eq!(err.reason, reason, "{input:?}");
        assert_eq!(err.input, input);
        let text = err.to_string();
        assert!(text.starts_with("invalid reference format: "), "{text}");
        assert!(text.contains(&format!("{input:?}")), "{text}");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }
}

#[test]
fn bad_digests_are_reported_by_the_digest_parser() {
    for (input, check) in [
        ("app@", "malformed"),
        ("app@sha256:abc", "lowercase hex"),
        (
            "app@md5:d41d8cd98f00b204e9800998ecf8427e",
            "unsupported algorithm",
        ),
        (
            &*format!("app@sha256:{}", HEX.to_uppercase()),
            "lowercase hex",
        ),
    ] {
        let err = ImageRef::parse(input).unwrap_err();
        assert!(
            matches!(err.reason, ReferenceProblem::BadDigest(_)),
            "{input}: {err:?}"
        );
        assert!(err.to_string().contains(check), "{err}");
    }
}

#[test]
fn lowercase_message_matches_docker() {
    let err = ImageRef::parse("Busybox").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid reference format: repository name must be lowercase"),
        "{err}"
    );
}

#[test]
fn accessors_expose_the_parts() {
    let r = ImageRef::parse(&format!("localhost:5000/a/b:1@{}", sha())).unwrap();
    assert_eq!(r.domain(), "localhost:5000");
    assert_eq!(r.path(), "a/b");
    assert_eq!(r.repository(), "localhost:5000/a/b");
    assert_eq!(r.tag(), Some("1"));
    assert_eq!(r.digest().map(ToString::to_string), Some(sha()));

    let hub = ImageRef::parse("busybox").unwrap();
    assert_eq!(hub.domain(), DEFAULT_DOMAIN);
    assert_eq!(hub.path(), "library/busybox");
    assert_eq!(hub.repository(), "docker.io/library/busybox");
    assert_eq!(hub.tag(), Some("latest"));
    assert_eq!(hub.digest(), None);

    let pinned = ImageRef::parse(&format!("app@{}", sha())).unwrap();
    assert_eq!(pinned.tag(), None);
}

#[test]
fn with_tag_validates_and_keeps_the_digest() {
    let r = ImageRef::parse("busybox").unwrap();
    assert_eq!(
        r.with_tag("1.36").unwrap().to_string(),
        "docker.io/library/busybox:1.36"
    );
    let err = r.with_tag("bad tag").unwrap_err();
    assert_eq!(err.input, "docker.io/library/busybox:bad tag");
    assert!(matches!(err.reason, ReferenceProblem::BadTag { .. }));

    let pinned = ImageRef::parse(&format!("app@{}", sha())).unwrap();
    let tagged = pinned.with_tag("v1").unwrap();
    assert_eq!(tagged.familiar(), format!("app:v1@{}", sha()));

    let d: Digest = sha().parse().unwrap();
    assert_eq!(
        r.with_digest(d).to_string(),
        format!("docker.io/library/busybox:latest@{}", sha())
    );
}

#[test]
fn from_str_and_serde_use_the_normalised_string() {
    let r: ImageRef = "user/app:1".parse().unwrap();
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(json, "\"docker.io/user/app:1\"");
    assert_eq!(serde_json::from_str::<ImageRef>(&json).unwrap(), r);
    assert_eq!(
        serde_json::from_str::<ImageRef>("\"busybox\"")
            .unwrap()
            .path(),
        "library/busybox"
    );
    let err = serde_json::from_str::<ImageRef>("\"Busybox\"").unwrap_err();
    assert!(err.to_string().contains("must be lowercase"), "{err}");
}

#[test]
fn name_length_counts_the_normalised_name() {
    // "docker.io/library/" + 237 = 255: the longest allowed.
    let ok = "a".repeat(255 - "docker.io/library/".len());
    assert!(ImageRef::parse(&ok).is_ok());
    let too_long = format!("{ok}a");
    assert_eq!(
        ImageRef::parse(&too_long).unwrap_err().reason,
        ReferenceProblem::NameTooLong { len: 256 }
    );
}
