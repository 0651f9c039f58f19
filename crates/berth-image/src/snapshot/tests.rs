use std::io::Write;
use std::path::Path;

use berth_model::Digest;

use super::*;
use crate::content::{ContentStore, sha256_of};
use crate::manifest::media_types;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A tar of `(path, Some(content))` files and `(path, None)` directories.
fn tar(entries: &[(&str, Option<&str>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, content) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        match content {
            Some(data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, data.as_bytes()).unwrap();
            }
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, path, std::io::empty()).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Stores `blob` and returns its descriptor.
fn store(content: &ContentStore, blob: &[u8]) -> Descriptor {
    let digest = sha256_of(blob);
    let mut w = content
        .writer(&format!("t-{}", digest.hex()), None)
        .unwrap();
    w.write_all(blob).unwrap();
    w.commit(None).unwrap();
    Descriptor::new(media_types::OCI_LAYER_GZIP, digest, blob.len() as u64)
}

/// Two layers: the second whites out a file and makes a directory opaque.
fn two_layers(content: &ContentStore) -> (Vec<Descriptor>, Vec<Digest>) {
    let base = tar(&[
        ("a/", None),
        ("a/file1", Some("one")),
        ("a/keep", Some("k")),
        ("b/", None),
        ("b/old", Some("o")),
        ("c/", None),
        ("c/x", Some("x")),
    ]);
    let top = tar(&[
        ("a/", None),
        ("a/.wh.file1", Some("")),
        ("a/file2", Some("two")),
        ("b/", None),
        ("b/.wh..wh..opq", Some("")),
        ("b/new", Some("n")),
    ]);
    let layers = vec![store(content, &gzip(&base)), store(content, &top)];
    (layers, vec![sha256_of(&base), sha256_of(&top)])
}

/// A data root with the copy driver and the two layers stored.
fn copy_fixture() -> (
    tempfile::TempDir,
    ContentStore,
    Snapshotter,
    Vec<Descriptor>,
    Vec<Digest>,
) {
    let dir = tempfile::tempdir().unwrap();
    let content = ContentStore::open(dir.path()).unwrap();
    let snapshots = Snapshotter::open(dir.path(), Some(Driver::Copy)).unwrap();
    let (layers, diff_ids) = two_layers(&content);
    (dir, content, snapshots, layers, diff_ids)
}

fn check_merged(root: &Path) {
    let read = |p: &str| std::fs::read_to_string(root.join(p)).ok();
    assert_eq!(read("a/keep").as_deref(), Some("k"));
    assert_eq!(read("a/file2").as_deref(), Some("two"));
    assert_eq!(read("a/file1"), None, "whited out");
    assert_eq!(read("b/new").as_deref(), Some("n"));
    assert_eq!(read("b/old"), None, "hidden by the opaque directory");
    assert_eq!(read("c/x").as_deref(), Some("x"));
}

fn merged_view_for(driver: Driver) {
    let dir = tempfile::tempdir().unwrap();
    let content = ContentStore::open(dir.path()).unwrap();
    let snapshots = Snapshotter::open(dir.path(), Some(driver)).unwrap();
    assert_eq!(snapshots.driver(), driver);
    let (layers, diff_ids) = two_layers(&content);
    let mut fresh = Vec::new();
    let top = snapshots
        .unpack(&content, &layers, &diff_ids, |_, new| fresh.push(new))
        .unwrap()
        .unwrap();
    assert_eq!(fresh, [true, true]);
    assert_eq!(top, chain_ids(&diff_ids)[1]);
    // Unpacking again finds both layers.
    let mut again = Vec::new();
    snapshots
        .unpack(&content, &layers, &diff_ids, |_, new| again.push(new))
        .unwrap();
    assert_eq!(again, [false, false]);

    let mount = snapshots.prepare("c1", Some(&top)).unwrap();
    let target = dir.path().join("rootfs");
    std::fs::create_dir(&target).unwrap();
    mount.mount(&target).unwrap();
    let checked = std::panic::catch_unwind(|| {
        check_merged(&target);
        std::fs::write(target.join("c/written"), "w").unwrap();
    });
    mount::unmount(&target).unwrap();
    checked.unwrap();
    // The write landed in the container's layer, not the image's.
    assert!(!snapshots.path(&top).join("c/written").exists());
    assert_eq!(snapshots.active_keys().unwrap(), ["c1"]);
    assert!(
        snapshots.prune(&[]).unwrap().is_empty(),
        "the container holds the chain"
    );
    snapshots.remove("c1").unwrap();
    assert_eq!(snapshots.prune(&[]).unwrap().len(), 2);
    assert!(snapshots.committed_chains().unwrap().is_empty());
}

#[test]
fn overlay_snapshots_stack_with_whiteouts() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    if !mount::overlay_works(dir.path()) {
        eprintln!("skipped: overlayfs does not work here");
        return;
    }
    merged_view_for(Driver::Overlay);
}

#[test]
fn copy_snapshots_give_the_same_view() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    merged_view_for(Driver::Copy);
}

#[test]
fn a_wrong_diff_id_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let content = ContentStore::open(dir.path()).unwrap();
    let snapshots = Snapshotter::open(dir.path(), Some(Driver::Copy)).unwrap();
    let (layers, mut diff_ids) = two_layers(&content);
    diff_ids[0] = sha256_of(b"something else");
    let err = snapshots
        .unpack(&content, &layers, &diff_ids, |_, _| {})
        .unwrap_err();
    assert!(matches!(err, SnapshotError::DiffIdMismatch { .. }), "{err}");
    assert!(snapshots.committed_chains().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(dir.path().join("snapshots/tmp"))
            .unwrap()
            .count(),
        0
    );
    let short = snapshots.unpack(&content, &layers[..1], &diff_ids, |_, _| {});
    assert!(matches!(short, Err(SnapshotError::LayerCount { .. })));
}

#[test]
fn shared_bases_survive_pruning_and_crash_debris_is_cleared() {
    let (dir, content, snapshots, layers, diff_ids) = copy_fixture();
    let top = snapshots
        .unpack(&content, &layers, &diff_ids, |_, _| {})
        .unwrap()
        .unwrap();
    let base = snapshots
        .unpack(&content, &layers[..1], &diff_ids[..1], |_, _| {})
        .unwrap()
        .unwrap();
    assert_eq!(
        snapshots.lineage(&top).unwrap(),
        [top.clone(), base.clone()]
    );
    // Only the base image is still wanted: the top layer goes.
    let pruned = snapshots.prune(std::slice::from_ref(&base)).unwrap();
    assert_eq!(pruned, std::slice::from_ref(&top));
    assert!(snapshots.has(&base) && !snapshots.has(&top));

    std::fs::create_dir_all(dir.path().join("snapshots/tmp/half-done/fs")).unwrap();
    let reopened = Snapshotter::open(dir.path(), None).unwrap();
    assert_eq!(reopened.driver(), Driver::Copy, "the recorded driver wins");
    assert_eq!(
        std::fs::read_dir(dir.path().join("snapshots/tmp"))
            .unwrap()
            .count(),
        0
    );
    assert!(matches!(
        reopened.prepare("../x", None),
        Err(SnapshotError::InvalidKey(_))
    ));
    reopened.prepare("empty", None).unwrap();
    assert!(matches!(
        reopened.prepare("empty", None),
        Err(SnapshotError::Exists(_))
    ));
}

#[test]
fn chain_ids_follow_the_image_spec() {
    let a = sha256_of(b"a");
    let b = sha256_of(b"b");
    let chains = chain_ids(&[a.clone(), b.clone()]);
    assert_eq!(chains[0], a);
    assert_eq!(chains[1], sha256_of(format!("{a} {b}").as_bytes()));
}

#[test]
fn layers_unpacked_before_a_machine_crash_are_dropped() {
    let (dir, content, snapshots, layers, diff_ids) = copy_fixture();
    let top = snapshots
        .unpack(&content, &layers, &diff_ids, |_, _| {})
        .unwrap()
        .unwrap();
    let base = chain_ids(&diff_ids)[0].clone();
    let markers = dir.path().join("snapshots/unsynced");
    assert_eq!(std::fs::read_dir(&markers).unwrap().count(), 2);
    // Reopened in the same boot: kept, still unsynced.
    let same = Snapshotter::open(dir.path(), None).unwrap();
    assert!(same.has(&top) && same.has(&base));
    // The top layer's marker from another boot: it may be torn, so it goes.
    std::fs::write(markers.join(top.hex()), "another-boot").unwrap();
    let rebooted = Snapshotter::open(dir.path(), None).unwrap();
    assert!(!rebooted.has(&top) && rebooted.has(&base));
    // Unpacking again restores it; a sync makes everything durable.
    rebooted
        .unpack(&content, &layers, &diff_ids, |_, _| {})
        .unwrap();
    rebooted.sync().unwrap();
    assert_eq!(std::fs::read_dir(&markers).unwrap().count(), 0);
    assert!(rebooted.has(&top));
}
