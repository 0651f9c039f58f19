//! The busybox rootfs as an image tarball that other engines can load.

use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

/// The GOARCH name of the machine the tests run on, as image configs spell
/// it (`amd64`, not `x86_64`).
pub fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes the busybox rootfs ([`crate::busybox_rootfs`]) as a
/// docker-archive (`docker save` format: `manifest.json`, the config blob
/// and one uncompressed `layer.tar`) tagged `reference`, e.g.
/// `berth.test/busybox:latest`. `ctr image import`, `podman load` and
/// `docker load` all read it; nothing is downloaded.
pub fn write_busybox_image(dest: &Path, reference: &str) -> std::io::Result<()> {
    let layer = layer_tar(crate::busybox_rootfs())?;
    let layer_hex = sha256_hex(&layer);
    let config = serde_json::json!({
        "architecture": oci_arch(),
        "os": "linux",
        "config": {
            "Env": [format!("PATH={}", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")],
            "Cmd": ["sh"],
            "WorkingDir": "/",
        },
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{layer_hex}")] },
        "history": [{ "created_by": "berth-testkit: busybox-static" }],
    });
    let config = serde_json::to_vec(&config).expect("config serialises");
    let config_name = format!("{}.json", sha256_hex(&config));
    let layer_name = format!("{layer_hex}/layer.tar");
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": config_name,
        "RepoTags": [reference],
        "Layers": [layer_name],
    }]))
    .expect("manifest serialises");

    let mut out = tar::Builder::new(std::io::BufWriter::new(std::fs::File::create(dest)?));
    let mut dir = tar::Header::new_ustar();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    out.append_data(&mut dir, format!("{layer_hex}/"), std::io::empty())?;
    for (name, data) in [
        (layer_name.as_str(), layer.as_slice()),
        (config_name.as_str(), config.as_slice()),
        ("manifest.json", manifest.as_slice()),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        out.append_data(&mut h, name, data)?;
    }
    out.into_inner()?.flush()
}

/// The rootfs as one uncompressed layer: entries in sorted order, symlinks
/// as links, owners and modes as on disk (root, and 1777 for /tmp).
fn layer_tar(rootfs: &Path) -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Complete);
    fn walk(b: &mut tar::Builder<Vec<u8>>, root: &Path, rel: &Path) -> std::io::Result<()> {
        let mut entries: Vec<_> =
            std::fs::read_dir(root.join(rel))?.collect::<std::io::Result<_>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let rel = rel.join(e.file_name());
            b.append_path_with_name(e.path(), &rel)?;
            if e.file_type()?.is_dir() {
                walk(b, root, &rel)?;
            }
        }
        Ok(())
    }
    walk(&mut b, rootfs, Path::new(""))?;
    b.into_inner()
}
