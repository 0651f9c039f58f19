use std::sync::Arc;

use berth_model::{Digest, ImageRef};

use super::*;
use crate::manifest::media_types::{OCI_INDEX, OCI_MANIFEST};

fn digest(n: u32) -> Digest {
    format!("sha256:{n:064x}").parse().unwrap()
}

fn target(n: u32) -> Descriptor {
    Descriptor::new(OCI_MANIFEST, digest(n), 100 + u64::from(n))
}

fn r(s: &str) -> ImageRef {
    ImageRef::parse(s).unwrap()
}

#[test]
fn put_get_remove() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    assert!(store.get(&r("busybox")).is_none());
    let rec = store.put(&r("busybox"), target(1)).unwrap();
    assert_eq!(rec.target.digest, digest(1));
    // Short and long forms are the same reference.
    let got = store.get(&r("docker.io/library/busybox:latest")).unwrap();
    assert_eq!(got, rec);

    // Repointing replaces the target.
    let mut index = target(2);
    index.media_type = OCI_INDEX.to_owned();
    store.put(&r("busybox"), index.clone()).unwrap();
    assert_eq!(store.get(&r("busybox")).unwrap().target, index);

    assert!(store.remove(&r("busybox:latest")).unwrap());
    assert!(!store.remove(&r("busybox:latest")).unwrap());
    assert!(store.get(&r("busybox")).is_none());
}

#[test]
fn put_of_the_same_target_keeps_created() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let first = store.put(&r("alpine:3"), target(1)).unwrap();
    assert!(first.created.ends_with('Z'), "{}", first.created);
    let mut record = first.clone();
    record.created = "2000-01-01T00:00:00Z".to_owned();
    store
        .update(|images| images.get_mut("docker.io/library/alpine:3").unwrap().1 = record)
        .unwrap();
    let again = store.put(&r("alpine:3"), target(1)).unwrap();
    assert_eq!(again.created, "2000-01-01T00:00:00Z");
}

#[test]
fn get_by_digest_finds_a_tagged_reference() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    store.put(&r("busybox:1.36"), target(7)).unwrap();
    let by_digest = r(&format!("busybox@{}", digest(7)));
    assert_eq!(store.get(&by_digest).unwrap().target.digest, digest(7));
    // Another repository with the same digest is not this image's name.
    let other = r(&format!("alpine@{}", digest(7)));
    assert!(store.get(&other).is_none());
    assert!(store.get(&r(&format!("busybox@{}", digest(8)))).is_none());
}

#[test]
fn list_is_sorted_and_references_to_finds_all_names() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    store.put(&r("zeta:1"), target(1)).unwrap();
    store.put(&r("alpha:1"), target(1)).unwrap();
    store.put(&r("ghcr.io/x/y:2"), target(2)).unwrap();
    let names: Vec<String> = store
        .list()
        .into_iter()
        .map(|(r, _)| r.to_string())
        .collect();
    assert_eq!(
        names,
        [
            "docker.io/library/alpha:1",
            "docker.io/library/zeta:1",
            "ghcr.io/x/y:2"
        ]
    );
    let to_one: Vec<String> = store
        .references_to(&digest(1))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        to_one,
        ["docker.io/library/alpha:1", "docker.io/library/zeta:1"]
    );
    assert_eq!(store.references_to(&digest(2)), vec![r("ghcr.io/x/y:2")]);
    assert!(store.references_to(&digest(3)).is_empty());
}

#[test]
fn persists_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    {
        let store = ImageStore::open(&root).unwrap();
        store.put(&r("busybox"), target(1)).unwrap();
        store.put(&r("nginx:1.27"), target(2)).unwrap();
        store.put(&r("redis"), target(3)).unwrap();
        store.remove(&r("redis")).unwrap();
    }
    let store = ImageStore::open(&root).unwrap();
    let list = store.list();
    assert_eq!(list.len(), 2);
    assert_eq!(store.get(&r("nginx:1.27")).unwrap().target, target(2));
    assert!(store.get(&r("redis")).is_none());
    // The file is keyed by the normalised reference.
    let text = std::fs::read_to_string(root.join(IMAGES_FILE)).unwrap();
    assert!(
        text.contains("\"docker.io/library/busybox:latest\""),
        "{text}"
    );
}

#[test]
fn corrupt_file_is_a_typed_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(IMAGES_FILE);
    for bad in ["{not json", "{\"images\": []}", "[]"] {
        std::fs::write(&path, bad).unwrap();
        let err = ImageStore::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{bad}: {err:?}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
    let bad_key = format!(
        r#"{{"images": {{"UPPER/Case:x": {{"target": {}, "created": "x"}}}}}}"#,
        serde_json::to_string(&target(1)).unwrap()
    );
    std::fs::write(&path, bad_key).unwrap();
    let err = ImageStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::BadReference { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn concurrent_puts_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ImageStore::open(dir.path()).unwrap());
    let threads: Vec<_> = (0..8u32)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..10u32 {
                    let n = t * 100 + i;
                    store.put(&r(&format!("img{t}:v{i}")), target(n)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(store.list().len(), 80);
    let reopened = ImageStore::open(dir.path()).unwrap();
    assert_eq!(reopened.list().len(), 80);
    assert_eq!(
        reopened.get(&r("img7:v9")).unwrap().target.digest,
        digest(709)
    );
}

#[test]
fn two_handles_on_one_root_see_and_keep_each_others_changes() {
    // A daemon and a CLI on the same data root.
    let dir = tempfile::tempdir().unwrap();
    let a = ImageStore::open(dir.path()).unwrap();
    let b = ImageStore::open(dir.path()).unwrap();
    a.put(&r("one:1"), target(1)).unwrap();
    assert!(b.get(&r("one:1")).is_some(), "b sees a's put");
    b.put(&r("two:2"), target(2)).unwrap();
    a.put(&r("three:3"), target(3)).unwrap();
    let names: Vec<String> = b.list().into_iter().map(|(r, _)| r.to_string()).collect();
    assert_eq!(names.len(), 3, "no put lost: {names:?}");
    assert!(a.remove(&r("two:2")).unwrap());
    assert!(b.get(&r("two:2")).is_none());
}
