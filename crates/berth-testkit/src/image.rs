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

/// Writes the busybox rootfs as a plain tar (what `berth import` and
/// `docker import` take) at `dest`.
pub fn write_busybox_rootfs_tar(dest: &Path) -> std::io::Result<()> {
    std::fs::write(dest, layer_tar(crate::busybox_rootfs())?)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::Read;

    use super::*;

    fn entries(data: &[u8]) -> HashMap<String, (tar::Header, Vec<u8>)> {
        let mut out = HashMap::new();
        for e in tar::Archive::new(data).entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut body = Vec::new();
            e.read_to_end(&mut body).unwrap();
            out.insert(name, (e.header().clone(), body));
        }
        out
    }

    #[test]
    fn the_archive_is_a_docker_save_of_the_busybox_rootfs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("image.tar");
        write_busybox_image(&path, "berth.test/busybox:latest").unwrap();
        let outer = entries(&std::fs::read(&path).unwrap());

        let manifest: serde_json::Value =
            serde_json::from_slice(&outer["manifest.json"].1).unwrap();
        assert_eq!(manifest[0]["RepoTags"][0], "berth.test/busybox:latest");
        let config_name = manifest[0]["Config"].as_str().unwrap();
        let config = &outer[config_name].1;
        assert_eq!(format!("{}.json", sha256_hex(config)), config_name);
        let config: serde_json::Value = serde_json::from_slice(config).unwrap();
        assert_eq!(config["os"], "linux");
        assert_eq!(config["architecture"], oci_arch());

        // The layer is named by, and its diff_id is, its own digest.
        let layer_name = manifest[0]["Layers"][0].as_str().unwrap();
        let layer = &outer[layer_name].1;
        let digest = sha256_hex(layer);
        assert_eq!(layer_name, format!("{digest}/layer.tar"));
        assert_eq!(config["rootfs"]["diff_ids"][0], format!("sha256:{digest}"));

        let files = entries(layer);
        let (busybox, body) = &files["bin/busybox"];
        assert_eq!(busybox.entry_type(), tar::EntryType::Regular);
        assert_eq!(
            body.len() as u64,
            std::fs::metadata(crate::BUSYBOX).unwrap().len()
        );
        let (sh, _) = &files["bin/sh"];
        assert_eq!(sh.entry_type(), tar::EntryType::Symlink);
        assert_eq!(
            sh.link_name().unwrap().unwrap().to_str(),
            Some("/bin/busybox")
        );
        let (tmp, _) = &files["tmp"];
        assert_eq!(tmp.entry_type(), tar::EntryType::Directory);
        assert_eq!(tmp.mode().unwrap() & 0o7777, 0o1777);
    }
}
