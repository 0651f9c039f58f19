//! Tests for layer application: every layer is built in memory, malicious
//! names through hand-written header bytes.

mod attacks;
mod functional;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tar::{Builder, EntryType, Header};

use super::{ApplyOptions, ApplyStats, LayerError, apply_layer};

/// A tempdir holding `target/` and, beside it, a `sentinel` file that no
/// layer may touch.
struct Fixture {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    target: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_path_buf();
        let target = base.join("target");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(base.join("sentinel"), "keep").unwrap();
        Fixture {
            _tmp: tmp,
            base,
            target,
        }
    }

    fn apply(&self, layer: Vec<u8>) -> Result<ApplyStats, LayerError> {
        apply_layer(layer.as_slice(), &self.target, &ApplyOptions::default())
    }

    fn t(&self, rel: &str) -> PathBuf {
        self.target.join(rel)
    }

    /// Nothing beside `target/` changed, and nothing landed in `/`.
    fn assert_outside_unchanged(&self) {
        let mut names: Vec<_> = std::fs::read_dir(&self.base)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["sentinel", "target"]);
        let sentinel = self.base.join("sentinel");
        assert_eq!(std::fs::read_to_string(&sentinel).unwrap(), "keep");
        let md = std::fs::symlink_metadata(&sentinel).unwrap();
        assert!(md.is_file());
        assert_eq!(md.nlink(), 1, "sentinel gained a hard link");
        assert!(!Path::new("/escape").exists());
    }
}

/// Builds a layer entry by entry, writing names and link targets straight
/// into the header bytes so that nothing is normalised on the way.
struct Layer(Builder<Vec<u8>>);

impl Layer {
    fn new() -> Self {
        Layer(Builder::new(Vec::new()))
    }

    fn raw(
        &mut self,
        name: &[u8],
        kind: EntryType,
        link: &[u8],
        mode: u32,
        data: &[u8],
    ) -> &mut Self {
        let mut h = Header::new_gnu();
        {
            let old = h.as_old_mut();
            old.name[..name.len()].copy_from_slice(name);
            old.linkname[..link.len()].copy_from_slice(link);
        }
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    fn file(&mut self, name: &str, data: &str) -> &mut Self {
        self.raw(
            name.as_bytes(),
            EntryType::Regular,
            b"",
            0o644,
            data.as_bytes(),
        )
    }

    fn dir(&mut self, name: &str) -> &mut Self {
        self.raw(name.as_bytes(), EntryType::Directory, b"", 0o755, b"")
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(
            name.as_bytes(),
            EntryType::Symlink,
            target.as_bytes(),
            0o777,
            b"",
        )
    }

    fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(
            name.as_bytes(),
            EntryType::Link,
            target.as_bytes(),
            0o644,
            b"",
        )
    }

    fn finish(&mut self) -> Vec<u8> {
        let b = std::mem::replace(&mut self.0, Builder::new(Vec::new()));
        b.into_inner().unwrap()
    }
}
