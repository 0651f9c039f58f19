//! One test per way out of the target; each checks that nothing outside
//! changed, whether the layer was refused or confined.

use std::os::unix::fs::MetadataExt;

use super::{Fixture, Layer};

#[test]
fn dotdot_escape_is_confined() {
    let fx = Fixture::new();
    fx.apply(Layer::new().file("../escape", "x").finish())
        .unwrap();
    assert_eq!(std::fs::read_to_string(fx.t("escape")).unwrap(), "x");
    fx.assert_outside_unchanged();
}

#[test]
fn absolute_path_is_confined() {
    let fx = Fixture::new();
    fx.apply(Layer::new().file("/abs/path", "x").finish())
        .unwrap();
    assert_eq!(std::fs::read_to_string(fx.t("abs/path")).unwrap(), "x");
    fx.assert_outside_unchanged();
}

#[test]
fn nested_dotdot_escape_is_confined() {
    let fx = Fixture::new();
    fx.apply(Layer::new().file("a/../../escape", "x").finish())
        .unwrap();
    assert!(fx.t("escape").is_file());
    fx.assert_outside_unchanged();
}

#[test]
fn symlink_to_root_then_file_is_confined() {
    let fx = Fixture::new();
    let layer = Layer::new()
        .symlink("a", "/")
        .file("a/escape", "x")
        .finish();
    fx.apply(layer).unwrap();
    assert_eq!(std::fs::read_to_string(fx.t("escape")).unwrap(), "x");
    fx.assert_outside_unchanged();
}

#[test]
fn symlink_dotdot_then_file_is_confined() {
    let fx = Fixture::new();
    let layer = Layer::new()
        .symlink("a", "../..")
        .file("a/escape", "x")
        .finish();
    fx.apply(layer).unwrap();
    assert!(fx.t("escape").is_file());
    fx.assert_outside_unchanged();
}

#[test]
fn symlink_to_host_dir_then_overwrite_is_confined() {
    let fx = Fixture::new();
    let base = fx.base.to_str().unwrap().to_string();
    let layer = Layer::new()
        .symlink("a", &base)
        .file("a/sentinel", "pwned")
        .finish();
    // The link resolves to `target/<base>`, which does not exist: refused.
    let _ = fx.apply(layer);
    fx.assert_outside_unchanged();
}

#[test]
fn symlink_to_host_dir_then_hardlink_through_it_is_confined() {
    let fx = Fixture::new();
    let base = fx.base.to_str().unwrap().to_string();
    let layer = Layer::new()
        .symlink("a", &base)
        .hardlink("b", "a/sentinel")
        .finish();
    let _ = fx.apply(layer);
    fx.assert_outside_unchanged();
}

#[test]
fn hardlink_to_parent_dir_is_confined() {
    let fx = Fixture::new();
    let err = fx
        .apply(Layer::new().hardlink("b", "../sentinel").finish())
        .unwrap_err();
    assert!(err.to_string().contains("\"b\""), "{err}");
    fx.assert_outside_unchanged();
}

#[test]
fn outward_symlink_is_created_but_not_followed() {
    let fx = Fixture::new();
    let layer = Layer::new()
        .symlink("l", "../sentinel")
        .symlink("m", "/etc/passwd")
        .file("l", "replaced")
        .finish();
    fx.apply(layer).unwrap();
    assert_eq!(
        std::fs::read_link(fx.t("m")).unwrap().to_str(),
        Some("/etc/passwd")
    );
    let l = std::fs::symlink_metadata(fx.t("l")).unwrap();
    assert!(
        l.is_file(),
        "the file replaced the link instead of writing through it"
    );
    assert_eq!(std::fs::read_to_string(fx.t("l")).unwrap(), "replaced");
    fx.assert_outside_unchanged();
}

#[test]
fn whiteout_cannot_escape() {
    let fx = Fixture::new();
    let layer = Layer::new()
        .file("../.wh.sentinel", "")
        .symlink("up", "..")
        .file("up/.wh.sentinel", "")
        .finish();
    fx.apply(layer).unwrap();
    fx.assert_outside_unchanged();
}

#[test]
fn opaque_through_symlink_cannot_escape() {
    let fx = Fixture::new();
    let layer = Layer::new()
        .symlink("up", "../..")
        .file("up/.wh..wh..opq", "")
        .finish();
    fx.apply(layer).unwrap();
    fx.assert_outside_unchanged();
    // The opaque marker emptied the target itself, the link included.
    assert!(std::fs::read_dir(&fx.target).unwrap().next().is_none());
}

#[test]
fn overlong_path_is_refused() {
    let fx = Fixture::new();
    let long = "d/".repeat(2100) + "f";
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, &long, std::io::empty()).unwrap();
    let err = fx.apply(b.into_inner().unwrap()).unwrap_err();
    assert!(err.to_string().contains("4096"), "{err}");
    fx.assert_outside_unchanged();
}

#[test]
fn entry_limit_is_enforced() {
    let fx = Fixture::new();
    let layer = Layer::new()
        .file("a", "")
        .file("b", "")
        .file("c", "")
        .finish();
    let opts = super::ApplyOptions {
        max_entries: 2,
        ..Default::default()
    };
    let err = super::apply_layer(layer.as_slice(), &fx.target, &opts).unwrap_err();
    assert!(matches!(
        err,
        super::LayerError::TooManyEntries { limit: 2 }
    ));
    assert_eq!(err.kind(), berth_model::ErrorKind::InvalidArgument);
}

#[test]
fn hardlink_through_symlinked_dir_stays_inside() {
    let fx = Fixture::new();
    let layer = Layer::new()
        .file("real/f", "data")
        .symlink("a", "/real")
        .hardlink("b", "a/f")
        .finish();
    fx.apply(layer).unwrap();
    assert_eq!(std::fs::metadata(fx.t("b")).unwrap().nlink(), 2);
    assert_eq!(std::fs::read_to_string(fx.t("b")).unwrap(), "data");
    fx.assert_outside_unchanged();
}
