use super::*;

fn p(s: &str) -> Platform {
    Platform::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn parses_and_normalises_like_containerd() {
    // input, normalised display
    for (input, expected) in [
        ("linux/amd64", "linux/amd64"),
        ("linux/x86_64", "linux/amd64"),
        ("linux/x86-64", "linux/amd64"),
        ("linux/amd64/v1", "linux/amd64"),
        ("linux/amd64/v3", "linux/amd64/v3"),
        ("Linux/AMD64", "linux/amd64"),
        ("linux/arm64", "linux/arm64/v8"),
        ("linux/arm64/v8", "linux/arm64/v8"),
        ("linux/aarch64", "linux/arm64/v8"),
        ("linux/arm64/8", "linux/arm64/v8"),
        ("linux/arm64/v8.0", "linux/arm64/v8"),
        ("linux/arm64/9", "linux/arm64/v9"),
        ("linux/arm64/v8.2", "linux/arm64/v8.2"),
        ("linux/arm", "linux/arm/v7"),
        ("linux/arm/7", "linux/arm/v7"),
        ("linux/arm/v7", "linux/arm/v7"),
        ("linux/arm/6", "linux/arm/v6"),
        ("linux/arm/v5", "linux/arm/v5"),
        ("linux/armhf", "linux/arm/v7"),
        ("linux/armel", "linux/arm/v6"),
        ("linux/i386", "linux/386"),
        ("linux/386", "linux/386"),
        ("linux/ppc64le", "linux/ppc64le"),
        ("linux/s390x", "linux/s390x"),
        ("linux/riscv64", "linux/riscv64"),
        ("macos/arm64", "darwin/arm64/v8"),
        ("windows(10.0.17763)/amd64", "windows(10.0.17763)/amd64"),
    ] {
        assert_eq!(p(input).to_string(), expected, "{input}");
        // The display form is a fixed point.
        assert_eq!(p(expected), p(input), "{input}");
    }
}

#[test]
fn parse_fills_parts_from_the_host() {
    let host = Platform::host();
    let linux = p("linux");
    assert_eq!(linux.os, "linux");
    assert_eq!(linux.architecture, host.architecture);
    assert_eq!(linux.variant, host.variant);

    let arm64 = p("arm64");
    assert_eq!(arm64.os, host.os);
    assert_eq!(arm64.architecture, "arm64");
    assert_eq!(arm64.variant.as_deref(), Some("v8"));
    assert_eq!(p("aarch64").architecture, "arm64");
    assert_eq!(p("windows(10.0)").os_version.as_deref(), Some("10.0"));
}

#[test]
fn rejects_bad_platforms_naming_the_input() {
    use PlatformProblem as P;
    for (input, reason) in [
        ("", P::Empty),
        ("linux/arm/v7/x", P::TooManyComponents(4)),
        ("linux/", P::BadComponent(String::new())),
        ("/amd64", P::BadComponent(String::new())),
        ("linux//v7", P::BadComponent(String::new())),
        ("linux/am d64", P::BadComponent("am d64".into())),
        ("linux/amd64/v7!", P::BadComponent("v7!".into())),
        ("plan10", P::Unknown("plan10".into())),
        ("windows(10/amd64", P::BadOsVersion("windows(10".into())),
        ("windows()/amd64", P::BadOsVersion("windows()".into())),
    ] {
        let err = Platform::parse(input).unwrap_err();
        assert_eq!(err.reason, reason, "{input:?}");
        assert_eq!(err.input, input);
        assert!(err.to_string().contains(&format!("{input:?}")), "{err}");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }
}

#[test]
fn host_uses_oci_names() {
    let host = Platform::host();
    let expected = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    if !std::env::consts::ARCH.starts_with("powerpc") {
        assert_eq!(host.architecture, expected);
    }
    if host.architecture == "arm64" {
        assert_eq!(host.variant.as_deref(), Some("v8"));
    }
    assert_eq!(host, host.normalized());
    assert!(host.matches(&host));
    assert_eq!(host.preference(&host), Some(0));
}

#[test]
fn matching_follows_containerds_rules() {
    // host, candidate, expected preference
    for (host, candidate, expected) in [
        ("linux/amd64", "linux/amd64", Some(0)),
        ("linux/amd64", "linux/x86_64", Some(0)),
        ("linux/amd64", "linux/amd64/v1", Some(0)),
        ("linux/amd64", "linux/amd64/v2", None),
        ("linux/amd64/v3", "linux/amd64/v3", Some(0)),
        ("linux/amd64/v3", "linux/amd64/v2", Some(1)),
        ("linux/amd64/v3", "linux/amd64", Some(2)),
        ("linux/amd64", "linux/386", None),
        ("linux/amd64", "windows/amd64", None),
        ("linux/amd64", "linux/arm64", None),
        // arm64: v8 is the default, so it matches no variant at all.
        ("linux/arm64/v8", "linux/arm64", Some(0)),
        ("linux/arm64", "linux/arm64/v8", Some(0)),
        ("linux/aarch64", "linux/arm64/v8", Some(0)),
        ("linux/arm64/v9", "linux/arm64/v8", Some(1)),
        ("linux/arm64/v8", "linux/arm64/v9", None),
        ("linux/arm64", "linux/arm/v8", Some(1)),
        ("linux/arm64", "linux/arm/v7", Some(2)),
        ("linux/arm64", "linux/arm/v5", Some(4)),
        // arm: a host runs its own variant, then older ones.
        ("linux/arm/v7", "linux/arm/v7", Some(0)),
        ("linux/arm/v7", "linux/arm", Some(0)),
        ("linux/arm/v7", "linux/armhf", Some(0)),
        ("linux/arm/v7", "linux/arm/v6", Some(1)),
        ("linux/arm/v7", "linux/armel", Some(1)),
        ("linux/arm/v7", "linux/arm/v5", Some(2)),
        ("linux/arm/v6", "linux/arm/v7", None),
        ("linux/arm/v7", "linux/arm64", None),
        ("linux/arm/v8", "linux/arm/v7", Some(1)),
        ("linux/s390x", "linux/s390x", Some(0)),
        ("linux/riscv64", "linux/amd64", None),
    ] {
        let (h, c) = (p(host), p(candidate));
        assert_eq!(h.preference(&c), expected, "{host} running {candidate}");
        assert_eq!(
            h.matches(&c),
            expected.is_some(),
            "{host} running {candidate}"
        );
    }
}

#[test]
fn matching_normalises_unparsed_platforms() {
    let raw = Platform {
        os: "Linux".into(),
        architecture: "aarch64".into(),
        variant: None,
        os_version: None,
    };
    assert_eq!(p("linux/arm64/v8").preference(&raw), Some(0));
}

#[test]
fn best_picks_the_most_preferred_candidate() {
    let host = p("linux/arm/v7");
    let index = [
        p("linux/amd64"),
        p("linux/arm/v5"),
        p("linux/arm/v6"),
        p("linux/arm64"),
    ];
    assert_eq!(host.best(&index), Some(2));
    let with_exact = [p("linux/arm/v6"), p("linux/arm/v7"), p("linux/arm/v7")];
    assert_eq!(host.best(&with_exact), Some(1));
    assert_eq!(host.best(&[p("linux/amd64")]), None);
    assert_eq!(host.best(&[]), None);
}

#[test]
fn serialises_with_oci_field_names() {
    let win = p("windows(10.0.17763)/amd64");
    let json = serde_json::to_value(&win).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"os": "windows", "architecture": "amd64", "os.version": "10.0.17763"})
    );
    let arm: Platform =
        serde_json::from_str(r#"{"architecture":"arm","os":"linux","variant":"v7"}"#).unwrap();
    assert_eq!(arm, p("linux/arm/v7"));
}
