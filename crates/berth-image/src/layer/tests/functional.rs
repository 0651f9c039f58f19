//! What a layer writes: files, links, metadata, whiteouts, compression, and
//! errors on broken streams.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use tar::{EntryType, Header};

use super::{Fixture, Layer};

#[test]
fn files_dirs_and_links_round_trip_with_metadata() {
    let fx = Fixture::new();
    let mut l = Layer::new();
    l.raw(b"d/", EntryType::Directory, b"", 0o750, b"");
    l.raw(b"d/f", EntryType::Regular, b"", 0o640, b"hello");
    l.raw(b"d/suid", EntryType::Regular, b"", 0o4755, b"#!");
    l.symlink("d/l", "f").hardlink("d/h", "d/f");
    let mut h = Header::new_gnu();
    h.set_path("d/owned").unwrap();
    h.set_entry_type(EntryType::Regular);
    h.set_size(0);
    h.set_mode(0o2755);
    h.set_uid(1234);
    h.set_gid(5678);
    h.set_mtime(1_234_567_890);
    h.set_cksum();
    l.0.append(&h, std::io::empty()).unwrap();
    let stats = fx.apply(l.finish()).unwrap();
    assert_eq!(stats.entries, 6);
    assert_eq!(stats.bytes, 7);

    let d = std::fs::symlink_metadata(fx.t("d")).unwrap();
    assert!(d.is_dir());
    assert_eq!(d.mode() & 0o7777, 0o750);
    assert_eq!(d.mtime(), 1_600_000_000, "directory mtime fixed up last");
    let f = std::fs::symlink_metadata(fx.t("d/f")).unwrap();
    assert_eq!(f.mode() & 0o7777, 0o640);
    assert_eq!(f.mtime(), 1_600_000_000);
    assert_eq!(f.nlink(), 2);
    assert_eq!(std::fs::read_to_string(fx.t("d/h")).unwrap(), "hello");
    assert_eq!(std::fs::read_link(fx.t("d/l")).unwrap().to_str(), Some("f"));
    let suid = std::fs::metadata(fx.t("d/suid")).unwrap();
    assert_eq!(suid.mode() & 0o7777, 0o4755);
    let owned = std::fs::metadata(fx.t("d/owned")).unwrap();
    assert_eq!((owned.uid(), owned.gid()), (1234, 5678));
    assert_eq!(owned.mode() & 0o7777, 0o2755, "setgid survives chown");
    assert_eq!(owned.mtime(), 1_234_567_890);
}

#[test]
fn user_xattr_is_kept() {
    let fx = Fixture::new();
    let mut l = Layer::new();
    l.0.append_pax_extensions([("SCHILY.xattr.user.test", b"value".as_slice())])
        .unwrap();
    l.file("f", "x");
    fx.apply(l.finish()).unwrap();
    let path = std::ffi::CString::new(fx.t("f").to_str().unwrap()).unwrap();
    let mut buf = [0u8; 16];
    // SAFETY: valid C strings and buffer.
    let n = unsafe {
        libc::getxattr(
            path.as_ptr(),
            c"user.test".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    assert_eq!(n, 5, "{}", std::io::Error::last_os_error());
    assert_eq!(&buf[..5], b"value");
}

#[test]
fn whiteouts_remove_file_and_tree_from_lower_layer() {
    let fx = Fixture::new();
    fx.apply(
        Layer::new()
            .file("a", "1")
            .file("dir/x/y", "2")
            .file("keep", "3")
            .finish(),
    )
    .unwrap();
    let stats = fx
        .apply(Layer::new().file(".wh.a", "").file(".wh.dir", "").finish())
        .unwrap();
    assert_eq!(stats.whiteouts, 2);
    assert!(!fx.t("a").exists());
    assert!(!fx.t("dir").exists());
    assert!(!fx.t(".wh.a").exists());
    assert!(fx.t("keep").exists());
}

#[test]
fn opaque_dir_clears_lower_but_keeps_same_layer_entries() {
    let fx = Fixture::new();
    fx.apply(
        Layer::new()
            .file("d/old1", "")
            .file("d/sub/old2", "")
            .file("other", "")
            .finish(),
    )
    .unwrap();
    let layer = Layer::new()
        .dir("d")
        .file("d/new1", "")
        .file("d/.wh..wh..opq", "")
        .file("d/new2", "")
        .finish();
    fx.apply(layer).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(fx.t("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["new1", "new2"]);
    assert!(fx.t("other").exists());
}

#[test]
fn entries_replace_lower_content() {
    let fx = Fixture::new();
    fx.apply(
        Layer::new()
            .file("x/inner", "")
            .file("y", "old")
            .file("d/kept", "")
            .finish(),
    )
    .unwrap();
    fx.apply(
        Layer::new()
            .file("x", "now a file")
            .symlink("y", "x")
            .dir("d")
            .finish(),
    )
    .unwrap();
    assert_eq!(std::fs::read_to_string(fx.t("x")).unwrap(), "now a file");
    assert!(std::fs::symlink_metadata(fx.t("y")).unwrap().is_symlink());
    assert!(
        fx.t("d/kept").exists(),
        "a directory over a directory keeps its contents"
    );
}

#[test]
fn gzip_and_zstd_layers_are_detected() {
    let tar = Layer::new().file("f", "compressed").finish();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let zst = zstd::encode_all(tar.as_slice(), 1).unwrap();
    for layer in [gz.finish().unwrap(), zst] {
        let fx = Fixture::new();
        fx.apply(layer).unwrap();
        assert_eq!(std::fs::read_to_string(fx.t("f")).unwrap(), "compressed");
    }
}

#[test]
fn devices_are_created_or_skipped() {
    let mut l = Layer::new();
    l.raw(b"fifo", EntryType::Fifo, b"", 0o600, b"");
    let layer = l.finish();
    let fx = Fixture::new();
    let opts = super::ApplyOptions {
        allow_devices: false,
        ..Default::default()
    };
    let stats = super::apply_layer(layer.as_slice(), &fx.target, &opts).unwrap();
    assert_eq!(stats.skipped_devices, 1);
    assert!(!fx.t("fifo").exists());
    let opts = super::ApplyOptions {
        allow_devices: true,
        ..Default::default()
    };
    super::apply_layer(layer.as_slice(), &fx.target, &opts).unwrap();
    assert!(
        std::fs::symlink_metadata(fx.t("fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
}

#[test]
fn a_stream_missing_only_its_padding_and_trailer_is_read() {
    // As Debian's umoci 0.4.7 writes layers: header, data, nothing more.
    let full = Layer::new().file("hello.txt", "hello\n").finish();
    let cut = full[..512 + 6].to_vec();
    let fx = Fixture::new();
    let stats = fx.apply(cut.clone()).unwrap();
    assert_eq!(
        std::fs::read_to_string(fx.t("hello.txt")).unwrap(),
        "hello\n"
    );
    assert_eq!(stats.diff_id, Some(crate::content::sha256_of(&cut)));
    // One byte of data short is still an error.
    assert!(Fixture::new().apply(full[..512 + 5].to_vec()).is_err());
}

#[test]
fn truncated_and_garbage_streams_are_errors() {
    let big = "x".repeat(10_000);
    let tar = Layer::new().file("f", &big).finish();
    let fx = Fixture::new();
    let err = fx.apply(tar[..5_000].to_vec()).unwrap_err();
    assert_eq!(err.kind(), berth_model::ErrorKind::InvalidArgument, "{err}");

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    assert!(Fixture::new().apply(gz[..gz.len() / 2].to_vec()).is_err());

    assert!(Fixture::new().apply(vec![0xab; 4096]).is_err());
    assert!(Fixture::new().apply(vec![0x1f, 0x8b, 0, 1, 2]).is_err());
    let err = Fixture::new().apply(b"BZh91AY&SY".to_vec()).unwrap_err();
    assert!(err.to_string().contains("bzip2"), "{err}");
}

#[test]
fn mutated_headers_never_panic() {
    let tar = Layer::new()
        .dir("d")
        .file("d/f", "data")
        .symlink("d/l", "f")
        .hardlink("d/h", "d/f")
        .finish();
    let fx = Fixture::new();
    for pos in 0..512 {
        for value in [0u8, b'/', b'.', 0xff, b'7'] {
            let mut t = tar.clone();
            t[pos] = value;
            let _ = fx.apply(t.clone());
            t[512 + pos] = value;
            let _ = fx.apply(t);
        }
    }
    fx.assert_outside_unchanged();
}
