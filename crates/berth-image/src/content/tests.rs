//! The content store's behaviour, each test on a store of its own.

use std::io::{Read, Write};
use std::sync::{Arc, Barrier};

use berth_model::{Digest, ErrorKind};

use super::*;

fn store() -> (tempfile::TempDir, ContentStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path()).unwrap();
    (dir, store)
}

fn read_all(store: &ContentStore, digest: &Digest) -> Vec<u8> {
    let mut out = Vec::new();
    store.read(digest).unwrap().read_to_end(&mut out).unwrap();
    out
}

fn put(store: &ContentStore, reference: &str, data: &[u8]) -> Digest {
    let mut w = store.writer(reference, None).unwrap();
    w.write_all(data).unwrap();
    w.commit(None).unwrap()
}

#[test]
fn written_blob_reads_back_under_its_digest() {
    let (_dir, store) = store();
    let data = b"hello, layer";
    let want = sha256_of(data);
    let mut w = store
        .writer("up-1", Some((want.clone(), data.len() as u64)))
        .unwrap();
    w.write_all(&data[..5]).unwrap();
    w.write_all(&data[5..]).unwrap();
    assert_eq!(w.offset(), data.len() as u64);
    assert_eq!(w.commit(None).unwrap(), want);
    assert_eq!(read_all(&store, &want), data);
    assert_eq!(store.info(&want).unwrap(), Some(BlobInfo { size: 12 }));
    assert!(store.ingests().unwrap().is_empty(), "the ingest is gone");
}

#[test]
fn sha256_of_matches_the_known_empty_digest() {
    assert_eq!(
        sha256_of(b"").to_string(),
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn blobs_sit_in_the_oci_layout() {
    let (dir, store) = store();
    let digest = put(&store, "r", b"layout");
    let path = dir.path().join("content/blobs/sha256").join(digest.hex());
    assert_eq!(std::fs::read(path).unwrap(), b"layout");
}

#[test]
fn wrong_digest_is_rejected_and_nothing_becomes_visible() {
    let (_dir, store) = store();
    let claimed = sha256_of(b"something else");
    let mut w = store.writer("bad", Some((claimed.clone(), 4))).unwrap();
    w.write_all(b"evil").unwrap();
    let err = w.commit(None).unwrap_err();
    match &err {
        ContentError::DigestMismatch { expected, actual } => {
            assert_eq!(expected, &claimed);
            assert_eq!(actual, &sha256_of(b"evil"));
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains(&claimed.to_string()), "{err}");
    assert!(store.list().unwrap().is_empty());
    assert_eq!(store.info(&sha256_of(b"evil")).unwrap(), None);
    assert!(
        store.ingests().unwrap().is_empty(),
        "the bad data is discarded"
    );
}

#[test]
fn wrong_size_is_rejected() {
    let (_dir, store) = store();
    let data = b"twelve bytes";
    let mut w = store.writer("short", None).unwrap();
    w.write_all(&data[..6]).unwrap();
    let err = w.commit(Some((sha256_of(data), 12))).unwrap_err();
    assert!(
        matches!(
            err,
            ContentError::SizeMismatch {
                expected: 12,
                actual: 6
            }
        ),
        "{err:?}"
    );
    assert!(store.list().unwrap().is_empty());
    assert!(store.ingests().unwrap().is_empty());
}

#[test]
fn a_dropped_writer_is_resumed_at_its_offset() {
    let (_dir, store) = store();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let want = sha256_of(&data);
    let expected = Some((want.clone(), data.len() as u64));

    let mut w = store.writer("pull-layer", expected.clone()).unwrap();
    w.write_all(&data[..70_000]).unwrap();
    drop(w); // the process died here

    let status = store.ingests().unwrap();
    assert_eq!(
        status,
        vec![IngestStatus {
            reference: "pull-layer".into(),
            offset: 70_000,
            expected: expected.clone(),
            updated: status[0].updated,
        }]
    );
    assert!(status[0].updated > std::time::UNIX_EPOCH);
    assert_eq!(
        store.info(&want).unwrap(),
        None,
        "partial data is invisible"
    );

    // Resuming without repeating the expectation keeps the recorded one.
    let mut w = store.writer("pull-layer", None).unwrap();
    assert_eq!(w.offset(), 70_000);
    w.write_all(&data[70_000..]).unwrap();
    assert_eq!(w.commit(None).unwrap(), want);
    assert_eq!(read_all(&store, &want), data);
}

#[test]
fn resuming_with_another_expected_blob_starts_over() {
    let (_dir, store) = store();
    let mut w = store.writer("r", Some((sha256_of(b"aaaa"), 4))).unwrap();
    w.write_all(b"aa").unwrap();
    drop(w);
    let w = store.writer("r", Some((sha256_of(b"bbbb"), 4))).unwrap();
    assert_eq!(w.offset(), 0);
}

#[test]
fn a_held_ref_cannot_be_opened_twice_or_aborted() {
    let (_dir, store) = store();
    let w = store.writer("busy", None).unwrap();
    let err = store.writer("busy", None).unwrap_err();
    assert!(matches!(err, ContentError::Locked { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(matches!(
        store.abort("busy"),
        Err(ContentError::Locked { .. })
    ));
    drop(w);
    store.abort("busy").unwrap();
    assert!(store.ingests().unwrap().is_empty());
    store.abort("busy").unwrap();
}

#[test]
fn committing_an_existing_blob_succeeds() {
    let (_dir, store) = store();
    let first = put(&store, "one", b"same bytes");
    let second = put(&store, "two", b"same bytes");
    assert_eq!(first, second);
    assert_eq!(store.list().unwrap(), vec![(first.clone(), 10)]);
    assert_eq!(read_all(&store, &first), b"same bytes");
    assert!(store.ingests().unwrap().is_empty());
}

#[test]
fn concurrent_writers_of_one_blob_both_succeed() {
    let (_dir, store) = store();
    let data: Arc<Vec<u8>> = Arc::new((0..1_000_000u32).map(|i| i as u8).collect());
    let want = sha256_of(&data);
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|i| {
            let (store, data, barrier, want) =
                (store.clone(), data.clone(), barrier.clone(), want.clone());
            std::thread::spawn(move || {
                let mut w = store
                    .writer(&format!("writer-{i}"), Some((want, data.len() as u64)))
                    .unwrap();
                barrier.wait();
                for chunk in data.chunks(4096) {
                    w.write_all(chunk).unwrap();
                }
                barrier.wait();
                w.commit(None)
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap(), want);
    }
    assert_eq!(read_all(&store, &want), *data);
    assert_eq!(store.list().unwrap(), vec![(want, 1_000_000)]);
}

#[test]
fn invalid_refs_are_rejected() {
    let (_dir, store) = store();
    let long = "x".repeat(256);
    for bad in [
        "",
        ".",
        "..",
        "a/b",
        "../escape",
        "a..b",
        "nul\0",
        "tab\t",
        &long,
    ] {
        let err = store.writer(bad, None).unwrap_err();
        assert!(
            matches!(&err, ContentError::InvalidRef { reference, .. } if reference == bad),
            "{bad:?}: {err:?}"
        );
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(store.abort(bad).is_err());
    }
    let ok = "layer-sha256:0123.partial_1";
    assert!(store.writer(ok, None).is_ok());
    assert!(store.writer(&"y".repeat(255), None).is_ok());
}

#[test]
fn list_and_delete() {
    let (_dir, store) = store();
    let a = put(&store, "a", b"alpha");
    let b = put(&store, "b", b"bravo!");
    let mut want = vec![(a.clone(), 5), (b.clone(), 6)];
    want.sort();
    assert_eq!(store.list().unwrap(), want);

    store.delete(&a).unwrap();
    assert_eq!(store.list().unwrap(), vec![(b, 6)]);
    assert_eq!(store.info(&a).unwrap(), None);
    let err = store.delete(&a).unwrap_err();
    assert!(matches!(&err, ContentError::NotFound { digest } if digest == &a));
    let err = store.read(&a).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains(&a.to_string()), "{err}");
}

#[test]
fn sha512_blobs_are_verified_with_sha512() {
    let (dir, store) = store();
    let hex = "ee26b0dd4af7e749aa1a8ee3c10ae9923f618980772e473f8819a5d4940e0db2\
               7ac185f8a0e1d5f84f88bc887fd67b143732c304cc5fa9ad8e6f57f50028a8ff";
    let want = Digest::new(berth_model::DigestAlgorithm::Sha512, hex).unwrap();
    let mut w = store.writer("s", Some((want.clone(), 4))).unwrap();
    w.write_all(b"test").unwrap();
    assert_eq!(w.commit(None).unwrap(), want);
    assert!(dir.path().join("content/blobs/sha512").join(hex).is_file());
}
