//! The OCI runtime spec of a container: Docker's defaults (capabilities,
//! mounts, masked paths, namespaces) under the container's config.

use std::path::Path;

use berth_api::container::HostConfig;
use serde_json::{Value, json};

use super::record::Record;

/// Docker's default capabilities.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// What the engine puts in every container's writable layer: the mount
/// points of `/dev`, `/proc` and `/sys` and the `/etc` files it binds.
/// They are not the container's own changes (Docker keeps them in an
/// "init" layer), so `diff` and `commit` leave them out.
const ENGINE_FILES: &[&str] = &[
    "dev",
    "proc",
    "sys",
    "etc/hostname",
    "etc/hosts",
    "etc/resolv.conf",
];

/// Whether `path` (relative to the root, or absolute) is, or is under, one
/// of [`ENGINE_FILES`].
pub fn engine_made(path: &str) -> bool {
    let rel = path.trim_start_matches('/');
    ENGINE_FILES
        .iter()
        .any(|m| rel == *m || rel.strip_prefix(m).is_some_and(|r| r.starts_with('/')))
}

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where the container's own files are.
pub struct Paths<'a> {
    /// The mounted root filesystem.
    pub rootfs: &'a Path,
    /// `/etc/hostname` to bind.
    pub hostname: &'a Path,
    /// `/etc/hosts` to bind.
    pub hosts: &'a Path,
    /// `/etc/resolv.conf` to bind.
    pub resolv: &'a Path,
    /// The network namespace to join (`--network container:X`).
    pub join_netns: Option<String>,
    /// Volumes: (data directory, path in the container, read-only).
    pub volumes: Vec<(std::path::PathBuf, String, bool)>,
}

/// The capabilities the daemon itself may hand out (its bounding set).
fn host_caps() -> Vec<String> {
    let mut all: Vec<String> = caps::read(None, caps::CapSet::Bounding)
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.to_string())
        .collect();
    all.sort();
    all
}

fn cap_name(s: &str) -> String {
    let up = s.to_ascii_uppercase();
    if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// The capability set of `host`: Docker's defaults, `--cap-add`,
/// `--cap-drop` (either may say `ALL`), or everything when privileged.
pub fn capabilities(host: &HostConfig) -> Result<Vec<String>, String> {
    let all = host_caps();
    if host.privileged {
        return Ok(all);
    }
    let known = |c: &str| -> Result<String, String> {
        let n = cap_name(c);
        if caps::Capability::from_str_checked(&n).is_some() {
            Ok(n)
        } else {
            Err(format!("unknown capability: {c:?}"))
        }
    };
    let mut set: Vec<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
    let adds_all = host.cap_add.iter().any(|c| c.eq_ignore_ascii_case("ALL"));
    if host.cap_drop.iter().any(|c| c.eq_ignore_ascii_case("ALL")) {
        set.clear();
    } else {
        for c in &host.cap_drop {
            let n = known(c)?;
            set.retain(|s| *s != n);
        }
    }
    if adds_all {
        set = all.clone();
    }
    for c in &host.cap_add {
        if c.eq_ignore_ascii_case("ALL") {
            continue;
        }
        let n = known(c)?;
        if !set.contains(&n) {
            set.push(n);
        }
    }
    if adds_all {
        for c in &host.cap_drop {
            if !c.eq_ignore_ascii_case("ALL") {
                let n = known(c)?;
                set.retain(|s| *s != n);
            }
        }
    }
    // A capability outside the daemon's own bounding set cannot be given.
    set.retain(|c| all.contains(c));
    Ok(set)
}

trait CheckedCap {
    fn from_str_checked(s: &str) -> Option<caps::Capability>;
}

impl CheckedCap for caps::Capability {
    fn from_str_checked(s: &str) -> Option<caps::Capability> {
        s.parse().ok()
    }
}

pub use berth_sys::users::{User, resolve as resolve_user};

fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// Parses a `--tmpfs` option string into mount options.
fn tmpfs_options(opts: &str) -> Vec<String> {
    let mut out = vec!["nosuid".to_owned(), "nodev".to_owned(), "noexec".to_owned()];
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "exec" => out.retain(|x| x != "noexec"),
            "suid" => out.retain(|x| x != "nosuid"),
            "dev" => out.retain(|x| x != "nodev"),
            other => out.push(other.to_owned()),
        }
    }
    out
}

/// Splits a `-v` value: `src:dst[:opts]` or just `dst` (an anonymous
/// volume).
pub fn split_bind(bind: &str) -> Result<(&str, &str, &str), String> {
    let parts: Vec<&str> = bind.split(':').collect();
    match parts.as_slice() {
        [d] => Ok(("", *d, "")),
        [s, d] => Ok((*s, *d, "")),
        [s, d, o] => Ok((*s, *d, *o)),
        _ => Err(format!("invalid volume specification: {bind:?}")),
    }
}

/// A `-v` bind (`/host:/ctr[:opts]`) as an OCI mount; none for a volume
/// (a name, or no source), which the container's volumes carry.
/// The propagation modes a bind mount may name.
pub const PROPAGATIONS: [&str; 6] = [
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

/// The propagation a `--mount type=bind` names, if any.
pub fn bind_propagation(m: &berth_api::container::MountSpec) -> Option<&str> {
    m.rest
        .get("BindOptions")
        .and_then(|b| b.get("Propagation"))
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
}

fn bind_mount(bind: &str) -> Result<Option<Value>, String> {
    let (src, dst, opts) = split_bind(bind)?;
    if !src.starts_with('/') {
        return Ok(None);
    }
    if !dst.starts_with('/') {
        return Err(format!(
            "invalid volume specification {bind:?}: the container path must be absolute"
        ));
    }
    let mut options = vec!["rbind".to_owned()];
    let mut propagation = "rprivate".to_owned();
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" | "rw" => options.push(o.to_owned()),
            "z" | "Z" | "nocopy" => {}
            o if PROPAGATIONS.contains(&o) => propagation = o.to_owned(),
            other => return Err(format!("invalid mode {other:?} in {bind:?}")),
        }
    }
    options.push(propagation);
    if !Path::new(src).exists() {
        std::fs::create_dir_all(src).map_err(|e| format!("create the bind source {src}: {e}"))?;
    }
    Ok(Some(
        json!({ "destination": dst, "type": "bind", "source": src, "options": options }),
    ))
}

fn mounts(rec: &Record, paths: &Paths) -> Result<Vec<Value>, String> {
    let host = &rec.host_config;
    let shm = if host.shm_size > 0 {
        host.shm_size
    } else {
        64 << 20
    };
    let sys_ro = if host.privileged { "rw" } else { "ro" };
    let mut m = vec![
        json!({ "destination": "/proc", "type": "proc", "source": "proc",
                "options": ["nosuid", "noexec", "nodev"] }),
        json!({ "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] }),
        json!({ "destination": "/dev/pts", "type": "devpts", "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] }),
        json!({ "destination": "/sys", "type": "sysfs", "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", sys_ro] }),
        json!({ "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", sys_ro] }),
        json!({ "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"] }),
        json!({ "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")] }),
    ];
    for (dst, src) in [
        ("/etc/resolv.conf", paths.resolv),
        ("/etc/hostname", paths.hostname),
        ("/etc/hosts", paths.hosts),
    ] {
        m.push(json!({ "destination": dst, "type": "bind", "source": src,
                       "options": ["rbind", "rprivate"] }));
    }
    for b in host.binds.iter().chain(&rec.berth_binds_from) {
        m.extend(bind_mount(b)?);
    }
    for (src, dst, ro) in &paths.volumes {
        let rw = if *ro { "ro" } else { "rw" };
        m.push(json!({ "destination": dst, "type": "bind", "source": src,
                       "options": ["rbind", rw, "rprivate"] }));
    }
    for (dst, opts) in &host.tmpfs {
        m.push(
            json!({ "destination": dst, "type": "tmpfs", "source": "tmpfs",
                       "options": tmpfs_options(opts) }),
        );
    }
    for spec in &host.mounts {
        if !spec.target.starts_with('/') {
            return Err(format!(
                "invalid mount target {:?}: must be absolute",
                spec.target
            ));
        }
        match spec.kind.as_str() {
            "bind" => {
                if !Path::new(&spec.source).is_absolute() {
                    return Err(format!(
                        "invalid mount config for type \"bind\": invalid mount path: {:?} mount path must be absolute",
                        spec.source
                    ));
                }
                if !Path::new(&spec.source).exists() {
                    return Err(format!(
                        "invalid mount config for type \"bind\": bind source path does not exist: {}",
                        spec.source
                    ));
                }
                let ro = if spec.read_only { "ro" } else { "rw" };
                let options = spec.rest.get("BindOptions");
                let set = |key: &str| {
                    options
                        .and_then(|b| b.get(key))
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                };
                if set("ReadOnlyForceRecursive") || set("ReadOnlyNonRecursive") {
                    return Err(format!(
                        "invalid mount config for type \"bind\" at {}: choosing how read-only applies to submounts is not supported",
                        spec.target
                    ));
                }
                // NonRecursive: the submounts of the source stay out.
                let bind = if set("NonRecursive") { "bind" } else { "rbind" };
                let propagation = bind_propagation(spec).unwrap_or("rprivate");
                m.push(
                    json!({ "destination": spec.target, "type": "bind", "source": spec.source,
                               "options": [bind, ro, propagation] }),
                );
            }
            "tmpfs" => {
                let mut opts = tmpfs_options("");
                if let Some(t) = spec.rest.get("TmpfsOptions") {
                    if let Some(size) = t
                        .get("SizeBytes")
                        .and_then(Value::as_i64)
                        .filter(|s| *s > 0)
                    {
                        opts.push(format!("size={size}"));
                    }
                    if let Some(mode) = t.get("Mode").and_then(Value::as_u64).filter(|m| *m > 0) {
                        opts.push(format!("mode={mode:o}"));
                    }
                }
                if spec.read_only {
                    opts.push("ro".into());
                }
                m.push(
                    json!({ "destination": spec.target, "type": "tmpfs", "source": "tmpfs",
                               "options": opts }),
                );
            }
            // The container's volumes carry these.
            "volume" => {}
            other => {
                return Err(format!(
                    "invalid mount type {other:?}: use bind, volume or tmpfs"
                ));
            }
        }
    }
    Ok(m)
}

/// The OCI `linux.resources` of `host`: memory, CPU, pids and devices.
pub fn resources(host: &HostConfig) -> Value {
    let mut r = serde_json::Map::new();
    let mut memory = serde_json::Map::new();
    if host.memory > 0 {
        memory.insert("limit".into(), json!(host.memory));
        let swap = match host.memory_swap {
            0 => host.memory * 2,
            s => s,
        };
        memory.insert("swap".into(), json!(swap));
    }
    if !memory.is_empty() {
        r.insert("memory".into(), Value::Object(memory));
    }
    let mut cpu = serde_json::Map::new();
    if host.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(host.cpu_shares));
    }
    if host.nano_cpus > 0 {
        cpu.insert("period".into(), json!(100_000));
        cpu.insert(
            "quota".into(),
            json!(host.nano_cpus * 100_000 / 1_000_000_000),
        );
    } else if host.cpu_quota > 0 {
        cpu.insert("quota".into(), json!(host.cpu_quota));
        if host.cpu_period > 0 {
            cpu.insert("period".into(), json!(host.cpu_period));
        }
    }
    if !host.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(host.cpuset_cpus));
    }
    if !cpu.is_empty() {
        r.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(p) = host.pids_limit.filter(|p| *p > 0) {
        r.insert("pids".into(), json!({ "limit": p }));
    }
    let devices = if host.privileged {
        json!([{ "allow": true, "access": "rwm" }])
    } else {
        json!([{ "allow": false, "access": "rwm" }])
    };
    r.insert("devices".into(), devices);
    Value::Object(r)
}

/// The OCI spec for `rec` with the image's files at `paths.rootfs`.
pub fn build(rec: &Record, paths: &Paths) -> Result<Value, String> {
    let config = &rec.config;
    let host = &rec.host_config;
    let user = resolve_user(paths.rootfs, &config.user)?;
    let mut env: Vec<String> = config.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_owned());
    }
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        env.push(format!("HOSTNAME={}", config.hostname));
    }
    if config.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home));
    }
    let caps = capabilities(host)?;
    let no_new_privs = host.security_opt.iter().any(|o| {
        o == "no-new-privileges" || o == "no-new-privileges:true" || o == "no-new-privileges=true"
    });
    let mut rlimits = Vec::new();
    for u in &host.ulimits {
        rlimits.push(json!({
            "type": format!("RLIMIT_{}", u.name.to_ascii_uppercase()),
            "soft": u.soft, "hard": u.hard
        }));
    }
    let mut args = vec![rec.path.clone()];
    args.extend(rec.args.iter().cloned());
    let cwd = if config.working_dir.is_empty() {
        "/"
    } else {
        &config.working_dir
    };
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "mount"}),
    ];
    match host.network_mode.as_str() {
        "host" => {}
        _ => match &paths.join_netns {
            Some(p) => namespaces.push(json!({"type": "network", "path": p})),
            None => namespaces.push(json!({"type": "network"})),
        },
    }
    if host.network_mode != "host" {
        namespaces.push(json!({"type": "uts"}));
    }
    if cgroup_v2() {
        namespaces.push(json!({"type": "cgroup"}));
    }
    let mut spec = json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": config.tty,
            "user": { "uid": user.uid, "gid": user.gid, "additionalGids": user.groups },
            "args": args,
            "env": env,
            "cwd": cwd,
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps
            },
            "noNewPrivileges": no_new_privs,
        },
        "root": { "path": paths.rootfs, "readonly": host.readonly_rootfs },
        "mounts": mounts(rec, paths)?,
        "linux": {
            "cgroupsPath": format!("/berth/{}", rec.id),
            "resources": resources(host),
            "namespaces": namespaces,
        }
    });
    if !rlimits.is_empty() {
        spec["process"]["rlimits"] = Value::Array(rlimits);
    }
    if let Some(profile) =
        super::seccomp::for_container(&host.security_opt, host.privileged, &caps)?
    {
        spec["linux"]["seccomp"] = profile;
    }
    if host.init == Some(true) {
        spec["annotations"] = json!({ berth_runtime::init::INIT_ANNOTATION: "true" });
    }
    if host.network_mode != "host" {
        spec["hostname"] = json!(config.hostname);
    }
    if !host.privileged {
        spec["linux"]["maskedPaths"] = json!(MASKED);
        spec["linux"]["readonlyPaths"] = json!(READONLY);
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_follow_dockers_rules() {
        let mut h = HostConfig::default();
        let c = capabilities(&h).unwrap();
        assert!(c.contains(&"CAP_CHOWN".to_owned()));
        assert!(!c.contains(&"CAP_SYS_ADMIN".to_owned()));
        h.cap_drop = vec!["chown".into()];
        h.cap_add = vec!["SYS_ADMIN".into()];
        let c = capabilities(&h).unwrap();
        assert!(!c.contains(&"CAP_CHOWN".to_owned()));
        assert!(c.contains(&"CAP_SYS_ADMIN".to_owned()));
        h.cap_drop = vec!["ALL".into()];
        h.cap_add = vec!["NET_ADMIN".into()];
        assert_eq!(capabilities(&h).unwrap(), vec!["CAP_NET_ADMIN".to_owned()]);
        h.cap_add = vec!["NOPE".into()];
        assert!(capabilities(&h).unwrap_err().contains("NOPE"));
    }

    #[test]
    fn users_resolve_in_the_image() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nwww:x:33:\nextra:x:50:www\n",
        )
        .unwrap();
        let u = resolve_user(dir.path(), "www").unwrap();
        assert_eq!(
            (u.uid, u.gid, u.groups.clone(), u.home.as_str()),
            (33, 33, vec![50], "/var/www")
        );
        let u = resolve_user(dir.path(), "").unwrap();
        assert_eq!((u.uid, u.home.as_str()), (0, "/root"));
        let u = resolve_user(dir.path(), "1000:extra").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 50));
        assert!(
            resolve_user(dir.path(), "nobody")
                .unwrap_err()
                .contains("unable to find user nobody")
        );
    }
}
