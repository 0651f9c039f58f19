use berth_model::{Digest, Platform};

use super::media_types::*;
use super::*;

fn hex(c: char) -> String {
    std::iter::repeat_n(c, 64).collect()
}

fn digest(c: char) -> Digest {
    format!("sha256:{}", hex(c)).parse().unwrap()
}

fn oci_manifest() -> String {
    format!(
        r#"{{
  "schemaVersion": 2,
  "mediaType": "{OCI_MANIFEST}",
  "config": {{"mediaType": "{OCI_CONFIG}", "digest": "sha256:{}", "size": 1470}},
  "layers": [
    {{"mediaType": "{OCI_LAYER_GZIP}", "digest": "sha256:{}", "size": 3623807}},
    {{"mediaType": "{OCI_LAYER_ZSTD}", "digest": "sha256:{}", "size": 120,
      "annotations": {{"org.opencontainers.image.title": "app"}}}}
  ],
  "annotations": {{"org.opencontainers.image.created": "2026-01-01T00:00:00Z"}},
  "futureField": {{"kept": true}}
}}"#,
        hex('a'),
        hex('b'),
        hex('c')
    )
}

fn entry(media_type: &str, c: char, platform: &str, extra: &str) -> String {
    format!(
        r#"{{"mediaType": "{media_type}", "digest": "sha256:{}", "size": 500, "platform": {platform}{extra}}}"#,
        hex(c)
    )
}

fn oci_index() -> String {
    let entries = [
        entry(
            OCI_MANIFEST,
            '1',
            r#"{"architecture": "amd64", "os": "linux"}"#,
            "",
        ),
        entry(
            OCI_MANIFEST,
            '2',
            r#"{"architecture": "arm64", "os": "linux", "variant": "v8"}"#,
            "",
        ),
        entry(
            OCI_MANIFEST,
            '3',
            r#"{"architecture": "arm", "os": "linux", "variant": "v7"}"#,
            "",
        ),
        entry(
            OCI_MANIFEST,
            '4',
            r#"{"architecture": "unknown", "os": "unknown"}"#,
            &format!(
                r#", "annotations": {{"{ANNOTATION_REFERENCE_TYPE}": "{ATTESTATION_MANIFEST}", "vnd.docker.reference.digest": "sha256:{}"}}"#,
                hex('1')
            ),
        ),
    ];
    format!(
        r#"{{"schemaVersion": 2, "mediaType": "{OCI_INDEX}", "manifests": [{}]}}"#,
        entries.join(",")
    )
}

fn docker_manifest() -> String {
    format!(
        r#"{{
  "schemaVersion": 2,
  "mediaType": "{DOCKER_MANIFEST}",
  "config": {{"mediaType": "{DOCKER_CONFIG}", "size": 7023, "digest": "sha256:{}"}},
  "layers": [
    {{"mediaType": "{DOCKER_LAYER_GZIP}", "size": 32654, "digest": "sha256:{}"}},
    {{"mediaType": "{DOCKER_FOREIGN_LAYER_GZIP}", "size": 16724, "digest": "sha256:{}",
      "urls": ["https://example.com/layer"]}}
  ]
}}"#,
        hex('d'),
        hex('e'),
        hex('f')
    )
}

fn docker_list() -> String {
    docker_list_with(r#"{"architecture": "amd64", "os": "linux"}"#)
}

fn docker_list_with(amd64_platform: &str) -> String {
    let entries = [
        entry(
            DOCKER_MANIFEST,
            '5',
            r#"{"architecture": "ppc64le", "os": "linux"}"#,
            "",
        ),
        entry(DOCKER_MANIFEST, '6', amd64_platform, ""),
    ];
    format!(
        r#"{{"schemaVersion": 2, "mediaType": "{DOCKER_MANIFEST_LIST}", "manifests": [{}]}}"#,
        entries.join(",")
    )
}

fn config_json() -> String {
    format!(
        r#"{{
  "architecture": "amd64",
  "os": "linux",
  "created": "2026-01-02T03:04:05Z",
  "config": {{
    "User": "app:app",
    "Env": ["PATH=/usr/local/bin:/usr/bin", "LANG=C.UTF-8"],
    "Entrypoint": ["/entry.sh"],
    "Cmd": ["serve", "--port", "80"],
    "WorkingDir": "/srv",
    "ExposedPorts": {{"80/tcp": {{}}, "53/udp": {{}}}},
    "Volumes": {{"/data": {{}}}},
    "Labels": {{"org.example": "yes"}},
    "StopSignal": "SIGQUIT",
    "Healthcheck": {{"Test": ["CMD-SHELL", "true"], "Interval": 30000000000, "Retries": 3}},
    "ArgsEscaped": true
  }},
  "rootfs": {{"type": "layers", "diff_ids": ["sha256:{}", "sha256:{}"]}},
  "history": [
    {{"created": "2026-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:x in /"}},
    {{"created_by": "/bin/sh -c #(nop) CMD [\"serve\"]", "empty_layer": true}},
    {{"created_by": "RUN make", "comment": "buildkit.dockerfile.v0"}}
  ],
  "docker_version": "27.0.0"
}}"#,
        hex('7'),
        hex('8')
    )
}

/// Parsing, serialising and parsing again gives the same value, and the
/// serialised JSON is the input's as a JSON value (nothing dropped).
fn assert_round_trip(json: &str, media_type: Option<&str>) -> Manifest {
    let m = Manifest::from_slice(json.as_bytes(), media_type).unwrap();
    let again = Manifest::from_slice(&m.to_vec(), media_type).unwrap();
    assert_eq!(m, again);
    let original: serde_json::Value = serde_json::from_str(json).unwrap();
    let written: serde_json::Value = serde_json::from_slice(&m.to_vec()).unwrap();
    assert_eq!(original, written);
    m
}

#[test]
fn oci_manifest_parses_and_round_trips() {
    let Manifest::Image(m) = assert_round_trip(&oci_manifest(), Some(OCI_MANIFEST)) else {
        panic!("not an image manifest");
    };
    assert_eq!(m.schema_version, 2);
    assert_eq!(m.config.digest, digest('a'));
    assert_eq!(m.config.size, 1470);
    assert_eq!(m.layers.len(), 2);
    assert_eq!(m.layers[1].media_type, OCI_LAYER_ZSTD);
    assert_eq!(
        m.layers[1].annotation("org.opencontainers.image.title"),
        Some("app")
    );
    assert_eq!(m.extra["futureField"]["kept"], true);
}

#[test]
fn oci_index_parses_and_round_trips() {
    let Manifest::Index(i) = assert_round_trip(&oci_index(), Some(OCI_INDEX)) else {
        panic!("not an index");
    };
    assert_eq!(i.manifests.len(), 4);
    assert!(i.manifests[3].is_attestation());
    assert!(!i.manifests[0].is_attestation());
    assert_eq!(
        i.manifests[1].platform.as_ref().unwrap().variant.as_deref(),
        Some("v8")
    );
}

#[test]
fn docker_manifest_and_list_parse_and_round_trip() {
    let m = assert_round_trip(&docker_manifest(), Some(DOCKER_MANIFEST));
    assert_eq!(m.media_type(), DOCKER_MANIFEST);
    let Manifest::Image(m) = m else { panic!() };
    assert_eq!(m.config.media_type, DOCKER_CONFIG);
    assert_eq!(
        m.layers[1].urls.as_deref(),
        Some(&["https://example.com/layer".to_owned()][..])
    );

    let l = assert_round_trip(&docker_list(), Some(DOCKER_MANIFEST_LIST));
    assert_eq!(l.media_type(), DOCKER_MANIFEST_LIST);
    let Manifest::Index(l) = l else { panic!() };
    assert_eq!(
        l.select(&Platform::new("linux", "amd64", None))
            .unwrap()
            .digest,
        digest('6')
    );
    // `features` is accepted, but `Platform` (berth-model) keeps only the
    // fields it knows, so it does not survive a round trip.
    let with_features =
        docker_list_with(r#"{"architecture": "amd64", "os": "linux", "features": ["sse4"]}"#);
    let m = Manifest::from_slice(with_features.as_bytes(), None).unwrap();
    assert!(!String::from_utf8(m.to_vec()).unwrap().contains("sse4"));
}

#[test]
fn config_parses_and_round_trips() {
    let json = config_json();
    let c = ImageConfig::from_slice(json.as_bytes()).unwrap();
    assert_eq!(c.architecture, "amd64");
    assert_eq!(c.os, "linux");
    assert_eq!(c.rootfs.kind, "layers");
    assert_eq!(c.rootfs.diff_ids, vec![digest('7'), digest('8')]);
    let history = c.history.as_ref().unwrap();
    assert_eq!(history.len(), 3);
    assert!(history[1].empty_layer);
    assert!(!history[2].empty_layer);
    assert_eq!(
        history[2].comment.as_deref(),
        Some("buildkit.dockerfile.v0")
    );
    let cc = c.config.as_ref().unwrap();
    assert_eq!(cc.user.as_deref(), Some("app:app"));
    assert_eq!(cc.cmd.as_ref().unwrap()[0], "serve");
    assert_eq!(cc.entrypoint.as_ref().unwrap(), &["/entry.sh"]);
    assert_eq!(cc.working_dir.as_deref(), Some("/srv"));
    assert!(cc.exposed_ports.as_ref().unwrap().contains_key("53/udp"));
    assert!(cc.volumes.as_ref().unwrap().contains_key("/data"));
    assert_eq!(cc.labels.as_ref().unwrap()["org.example"], "yes");
    assert_eq!(cc.stop_signal.as_deref(), Some("SIGQUIT"));
    let hc = cc.healthcheck.as_ref().unwrap();
    assert_eq!(hc.interval, Some(30_000_000_000));
    assert_eq!(hc.retries, Some(3));
    assert_eq!(cc.extra["ArgsEscaped"], true);
    assert_eq!(c.extra["docker_version"], "27.0.0");

    let written = serde_json::to_vec(&c).unwrap();
    assert_eq!(ImageConfig::from_slice(&written).unwrap(), c);
    let a: serde_json::Value = serde_json::from_str(&json).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&written).unwrap();
    assert_eq!(a, b);
}

#[test]
fn bad_config_is_a_typed_error() {
    let err = ImageConfig::from_slice(b"{\"rootfs\": 3}").unwrap_err();
    assert!(matches!(err, ManifestError::Invalid { .. }), "{err:?}");
}

#[test]
fn sniffs_kind_when_media_type_is_missing_or_generic() {
    for given in [
        None,
        Some(""),
        Some("application/json"),
        Some("application/octet-stream"),
    ] {
        let m = Manifest::from_slice(oci_manifest().as_bytes(), given).unwrap();
        assert!(matches!(m, Manifest::Image(_)), "{given:?}");
        let i = Manifest::from_slice(docker_list().as_bytes(), given).unwrap();
        assert!(matches!(i, Manifest::Index(_)), "{given:?}");
    }
    // No mediaType field at all: the shape decides.
    let bare_index = format!(
        r#"{{"schemaVersion": 2, "manifests": [{}]}}"#,
        entry(
            OCI_MANIFEST,
            '1',
            r#"{"architecture": "amd64", "os": "linux"}"#,
            ""
        )
    );
    let i = Manifest::from_slice(bare_index.as_bytes(), None).unwrap();
    assert!(matches!(i, Manifest::Index(_)));
    assert_eq!(i.media_type(), OCI_INDEX);
    let bare_manifest = format!(
        r#"{{"schemaVersion": 2, "config": {{"mediaType": "{OCI_CONFIG}", "digest": "sha256:{}", "size": 2}}, "layers": []}}"#,
        hex('a')
    );
    let m = Manifest::from_slice(bare_manifest.as_bytes(), Some("application/json")).unwrap();
    assert_eq!(m.media_type(), OCI_MANIFEST);
}

#[test]
fn errors_name_the_media_type() {
    let err = Manifest::from_slice(b"{}", Some(DOCKER_MANIFEST_V1_SIGNED)).unwrap_err();
    match &err {
        ManifestError::Unsupported { media_type } => {
            assert_eq!(media_type, DOCKER_MANIFEST_V1_SIGNED)
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains(DOCKER_MANIFEST_V1_SIGNED));

    let err = Manifest::from_slice(b"{\"schemaVersion\": 2}", None).unwrap_err();
    assert!(matches!(err, ManifestError::Unrecognized { .. }), "{err:?}");

    // Declared an index, but the body is a manifest.
    let err = Manifest::from_slice(oci_manifest().as_bytes(), Some(OCI_INDEX)).unwrap_err();
    match &err {
        ManifestError::Invalid { media_type, .. } => assert_eq!(media_type, OCI_INDEX),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains(OCI_INDEX));

    let err = Manifest::from_slice(b"not json", Some(OCI_MANIFEST)).unwrap_err();
    assert!(matches!(err, ManifestError::Invalid { .. }));
    let err = Manifest::from_slice(b"not json", None).unwrap_err();
    assert!(matches!(err, ManifestError::Invalid { .. }));
}

fn index() -> Index {
    match Manifest::from_slice(oci_index().as_bytes(), None).unwrap() {
        Manifest::Index(i) => i,
        Manifest::Image(_) => panic!("not an index"),
    }
}

#[test]
fn select_picks_the_platform_entry() {
    let i = index();
    let pick = |p: &str| {
        i.select(&Platform::parse(p).unwrap())
            .map(|d| d.digest.clone())
    };
    assert_eq!(pick("linux/amd64"), Some(digest('1')));
    // arm64 with no variant is v8.
    assert_eq!(pick("linux/arm64"), Some(digest('2')));
    assert_eq!(pick("linux/arm64/v8"), Some(digest('2')));
    assert_eq!(pick("linux/arm/v7"), Some(digest('3')));
    // A v6 host cannot run v7.
    assert_eq!(pick("linux/arm/v6"), None);
    assert_eq!(pick("windows/amd64"), None);
}

#[test]
fn select_never_picks_attestations_or_platformless_entries() {
    let mut i = index();
    // Make the attestation entry look like a perfect amd64 match and put it
    // first: it must still be skipped.
    let mut att = i.manifests.remove(3);
    att.platform = Some(Platform::new("linux", "amd64", None));
    i.manifests.insert(0, att);
    let mut bare = Descriptor::new(OCI_MANIFEST, digest('9'), 1);
    bare.platform = None;
    i.manifests.insert(0, bare);
    let chosen = i.select(&Platform::new("linux", "amd64", None)).unwrap();
    assert_eq!(chosen.digest, digest('1'));

    i.manifests.retain(|d| d.digest != digest('1'));
    assert!(i.select(&Platform::new("linux", "amd64", None)).is_none());
}

#[test]
fn a_body_declaring_another_kind_is_refused() {
    // Served as a manifest, shaped like one, but declaring itself an index.
    let body = oci_manifest().replace(
        &format!("\"mediaType\": \"{OCI_MANIFEST}\""),
        &format!("\"mediaType\": \"{OCI_INDEX}\""),
    );
    let err = Manifest::from_slice(body.as_bytes(), Some(DOCKER_MANIFEST)).unwrap_err();
    match &err {
        ManifestError::Mismatch {
            media_type,
            declared,
        } => {
            assert_eq!(media_type, DOCKER_MANIFEST);
            assert_eq!(declared, OCI_INDEX);
        }
        other => panic!("{other:?}"),
    }
    // Docker and OCI types of the same kind are interchangeable.
    let m = Manifest::from_slice(oci_manifest().as_bytes(), Some(DOCKER_MANIFEST)).unwrap();
    assert!(matches!(m, Manifest::Image(_)));
}
