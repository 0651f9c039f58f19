//! Reading and validating a bundle's config.json.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

/// A parsed, validated bundle.
#[derive(Debug)]
pub struct Bundle {
    /// Absolute bundle directory.
    pub dir: PathBuf,
    /// Absolute rootfs directory.
    pub rootfs: PathBuf,
    /// The spec.
    pub spec: Spec,
}

/// Reads `<bundle>/config.json` and checks it before anything is created.
pub fn load_bundle(bundle: &Path) -> Result<Bundle> {
    let dir = std::path::absolute(bundle).map_err(Error::io("resolve bundle", bundle))?;
    let path = dir.join("config.json");
    let data = std::fs::read(&path).map_err(|e| Error::Config {
        path: path.clone(),
        message: match e.kind() {
            std::io::ErrorKind::NotFound => "no such file: is --bundle the right directory?".into(),
            _ => e.to_string(),
        },
    })?;
    let spec: Spec = serde_json::from_slice(&data).map_err(|e| Error::Config {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::InvalidSpec("root is missing".into()))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        dir.join(root.path())
    };
    match std::fs::metadata(&rootfs) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::InvalidSpec(format!(
                "root.path {} is not a directory",
                rootfs.display()
            )));
        }
        Err(e) => {
            return Err(Error::InvalidSpec(format!(
                "root.path {}: {e}",
                rootfs.display()
            )));
        }
    }
    validate(&spec)?;
    Ok(Bundle { dir, rootfs, spec })
}

/// Semantic checks that serde cannot make.
pub fn validate(spec: &Spec) -> Result<()> {
    let bad = |m: String| Err(Error::InvalidSpec(m));
    if !spec.version().starts_with("1.") {
        return bad(format!(
            "ociVersion {:?} is not supported (berth implements 1.x)",
            spec.version()
        ));
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::InvalidSpec("process is missing".into()))?;
    validate_process(process)?;
    let Some(linux) = spec.linux() else {
        return bad("linux section is missing".into());
    };
    let namespaces = linux.namespaces().clone().unwrap_or_default();
    let mut seen = Vec::new();
    for ns in &namespaces {
        if seen.contains(&ns.typ()) {
            return bad(format!("namespace {} is listed twice", ns.typ()));
        }
        seen.push(ns.typ());
        if let Some(p) = ns.path()
            && !p.is_absolute()
        {
            return bad(format!(
                "namespace {} path {} is not absolute",
                ns.typ(),
                p.display()
            ));
        }
    }
    let has = |t: LinuxNamespaceType| seen.contains(&t);
    let new_user = namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        && linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if new_user && !has_maps {
        return bad("a new user namespace needs linux.uidMappings and linux.gidMappings".into());
    }
    if !has(LinuxNamespaceType::User) && (linux.uid_mappings().is_some_and_nonempty()) {
        return bad("linux.uidMappings given without a user namespace".into());
    }
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return bad("hostname is set but the container has no uts namespace".into());
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return bad("domainname is set but the container has no uts namespace".into());
    }
    for m in spec.mounts().as_deref().unwrap_or_default() {
        if !m.destination().is_absolute() {
            return bad(format!(
                "mount destination {} is not absolute",
                m.destination().display()
            ));
        }
    }
    if let Some(p) = linux.rootfs_propagation()
        && !p.is_empty()
        && crate::mountopts::propagation_flag(p).is_none()
    {
        return bad(format!("rootfsPropagation {p:?} is not a propagation mode"));
    }
    Ok(())
}

/// Checks a process section (config.json's or an exec's).
pub fn validate_process(process: &oci_spec::runtime::Process) -> Result<()> {
    let bad = |m: String| Err(Error::InvalidSpec(m));
    match process.args() {
        Some(a) if !a.is_empty() && !a[0].is_empty() => {}
        _ => return bad("process.args must name a program".into()),
    }
    if !process.cwd().is_absolute() {
        return bad(format!(
            "process.cwd {} is not absolute",
            process.cwd().display()
        ));
    }
    for e in process.env().as_deref().unwrap_or_default() {
        if !e.contains('=') {
            return bad(format!("process.env entry {e:?} has no '='"));
        }
    }
    Ok(())
}

trait NonEmpty {
    fn is_some_and_nonempty(&self) -> bool;
}

impl<T> NonEmpty for &Option<Vec<T>> {
    fn is_some_and_nonempty(&self) -> bool {
        self.as_ref().is_some_and(|v| !v.is_empty())
    }
}

/// The devices every container gets, whatever the spec says: (path, type,
/// major, minor).
pub const DEFAULT_DEVICES: &[(&str, LinuxDeviceType, i64, i64)] = &[
    ("/dev/null", LinuxDeviceType::C, 1, 3),
    ("/dev/zero", LinuxDeviceType::C, 1, 5),
    ("/dev/full", LinuxDeviceType::C, 1, 7),
    ("/dev/random", LinuxDeviceType::C, 1, 8),
    ("/dev/urandom", LinuxDeviceType::C, 1, 9),
    ("/dev/tty", LinuxDeviceType::C, 5, 0),
];

/// The device-cgroup rules to apply: the spec's, then access to the default
/// devices, the console, ptys, and mknod of anything (as runc and Docker do,
/// so that images with device nodes unpack).
pub fn device_rules(spec: &Spec) -> Vec<LinuxDeviceCgroup> {
    let mut rules: Vec<LinuxDeviceCgroup> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.devices().clone())
        .unwrap_or_default();
    if rules.is_empty() {
        rules.push(rule(false, LinuxDeviceType::A, None, None, "rwm"));
    }
    for dev in spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default()
    {
        // FIFOs are created like devices but the device cgroup does not
        // govern them; a 'p' rule would be rejected.
        if dev.typ() == LinuxDeviceType::P {
            continue;
        }
        rules.push(LinuxDeviceCgroup::from(&dev));
    }
    rules.push(rule(true, LinuxDeviceType::C, None, None, "m"));
    rules.push(rule(true, LinuxDeviceType::B, None, None, "m"));
    for (_, t, maj, min) in DEFAULT_DEVICES {
        rules.push(rule(true, *t, Some(*maj), Some(*min), "rwm"));
    }
    rules.push(rule(true, LinuxDeviceType::C, Some(5), Some(1), "rwm")); // console
    rules.push(rule(true, LinuxDeviceType::C, Some(5), Some(2), "rwm")); // ptmx
    rules.push(rule(true, LinuxDeviceType::C, Some(136), None, "rwm")); // pts
    rules
}

fn rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow);
    r.set_typ(Some(typ));
    r.set_major(major);
    r.set_minor(minor);
    r.set_access(Some(access.to_owned()));
    r
}

/// The spec's namespace of type `t`, if the container has one.
pub fn namespace(spec: &Spec, t: LinuxNamespaceType) -> Option<oci_spec::runtime::LinuxNamespace> {
    spec.linux()
        .as_ref()?
        .namespaces()
        .as_ref()?
        .iter()
        .find(|n| n.typ() == t)
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxBuilder, LinuxDeviceBuilder, SpecBuilder};

    #[test]
    fn fifo_devices_get_no_cgroup_rule() {
        let dev = |path: &str, typ, major, minor| {
            LinuxDeviceBuilder::default()
                .path(path)
                .typ(typ)
                .major(major)
                .minor(minor)
                .build()
                .unwrap()
        };
        let spec = SpecBuilder::default()
            .linux(
                LinuxBuilder::default()
                    .devices(vec![
                        dev("/dev/fifo", LinuxDeviceType::P, 8, 666),
                        dev("/dev/chr", LinuxDeviceType::C, 10, 666),
                    ])
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let rules = device_rules(&spec);
        assert!(rules.iter().all(|r| r.typ() != Some(LinuxDeviceType::P)));
        assert!(rules.iter().any(|r| r.typ() == Some(LinuxDeviceType::C)
            && r.major() == Some(10)
            && r.minor() == Some(666)));
    }
}
