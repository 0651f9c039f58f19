//! Discovery of the mounted cgroup hierarchies (from /proc/self/mountinfo)
//! and of the caller's own cgroups (from /proc/self/cgroup), and the mapping
//! of an OCI `cgroupsPath` onto a directory in each hierarchy.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::error::CgroupError;

/// Controllers a v1 `cgroup` mount may name in its super options. Anything
/// else there (`rw`, `xattr`, `clone_children`, `release_agent=`...) is a
/// mount option, not a controller.
const V1_CONTROLLERS: &[&str] = &[
    "blkio",
    "cpu",
    "cpuacct",
    "cpuset",
    "debug",
    "devices",
    "freezer",
    "hugetlb",
    "memory",
    "misc",
    "net_cls",
    "net_prio",
    "perf_event",
    "pids",
    "rdma",
];

/// A mounted cgroup v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct V1Mount {
    /// Its controllers, plus `name=X` for a named hierarchy, sorted.
    pub controllers: Vec<String>,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// The cgroup that the mount shows as its root (not "/" when a subtree
    /// was bind-mounted, as in a container without a cgroup namespace).
    pub root: String,
}

/// The mounted cgroup2 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct V2Mount {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// The cgroup that the mount shows as its root.
    pub root: String,
}

/// Every cgroup hierarchy the process can see.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Mounts {
    /// The v1 hierarchies, in mount order, one per distinct controller set.
    pub v1: Vec<V1Mount>,
    /// The cgroup2 hierarchy, if mounted.
    pub unified: Option<V2Mount>,
}

/// The caller's own cgroup in each hierarchy, as /proc/self/cgroup lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct OwnCgroups {
    /// Controller (or `name=X`) to cgroup path.
    pub v1: BTreeMap<String, String>,
    /// The cgroup2 path (the `0::` line).
    pub unified: Option<String>,
}

/// Undoes mountinfo's octal escaping of space, tab, newline and backslash.
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                let v = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses /proc/self/mountinfo text into the cgroup hierarchies it shows.
/// `source` names the file in errors.
pub(super) fn parse_mountinfo(text: &str, source: &Path) -> Result<Mounts, CgroupError> {
    let mut mounts = Mounts::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let malformed = || CgroupError::Malformed {
            path: source.to_owned(),
            line: line.to_owned(),
        };
        // The optional fields vary in number; " - " separates them from the
        // filesystem type, source and super options.
        let (pre, post) = line.split_once(" - ").ok_or_else(malformed)?;
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 6 || post.len() < 3 {
            return Err(malformed());
        }
        let root = unescape(pre[3]);
        let mount_point = PathBuf::from(unescape(pre[4]));
        match post[0] {
            "cgroup2" if mounts.unified.is_none() => {
                mounts.unified = Some(V2Mount { mount_point, root });
            }
            "cgroup" => {
                let mut controllers: Vec<String> = post[2]
                    .split(',')
                    .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                    .map(str::to_owned)
                    .collect();
                controllers.sort();
                let seen = mounts.v1.iter().any(|m| m.controllers == controllers);
                if !controllers.is_empty() && !seen {
                    mounts.v1.push(V1Mount {
                        controllers,
                        mount_point,
                        root,
                    });
                }
            }
            _ => {}
        }
    }
    Ok(mounts)
}

/// Parses /proc/self/cgroup text. `source` names the file in errors.
pub(super) fn parse_proc_cgroup(text: &str, source: &Path) -> Result<OwnCgroups, CgroupError> {
    let mut own = OwnCgroups::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut it = line.splitn(3, ':');
        let (Some(_id), Some(ctrls), Some(path)) = (it.next(), it.next(), it.next()) else {
            return Err(CgroupError::Malformed {
                path: source.to_owned(),
                line: line.to_owned(),
            });
        };
        if ctrls.is_empty() {
            own.unified = Some(path.to_owned());
        } else {
            for c in ctrls.split(',') {
                own.v1.insert(c.to_owned(), path.to_owned());
            }
        }
    }
    Ok(own)
}

/// A validated `cgroupsPath`: normalized, without `.` or `..`, never the
/// hierarchy root itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum CgroupPath {
    /// From each hierarchy's root.
    Absolute(PathBuf),
    /// From the caller's own cgroup in each hierarchy.
    Relative(PathBuf),
}

impl CgroupPath {
    /// Validates `linux.cgroupsPath`; `None` means `/berth/<id>`.
    pub(super) fn parse(cgroups_path: Option<&str>, id: &str) -> Result<Self, CgroupError> {
        let owned;
        let given = match cgroups_path {
            Some(p) => p,
            None => {
                if id.is_empty() || id.contains('/') {
                    return Err(CgroupError::InvalidPath {
                        path: id.to_owned(),
                        reason: "a container id used as a cgroup name must be non-empty and contain no '/'",
                    });
                }
                owned = format!("/berth/{id}");
                &owned
            }
        };
        let invalid = |reason| CgroupError::InvalidPath {
            path: given.to_owned(),
            reason,
        };
        let mut rel = PathBuf::new();
        for c in Path::new(given).components() {
            match c {
                Component::Normal(n) => rel.push(n),
                Component::ParentDir => return Err(invalid("\"..\" components are not allowed")),
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
        if rel.as_os_str().is_empty() {
            return Err(invalid("names no cgroup below the hierarchy root"));
        }
        Ok(if given.starts_with('/') {
            Self::Absolute(Path::new("/").join(rel))
        } else {
            Self::Relative(rel)
        })
    }

    /// The path as written, for error messages.
    pub(super) fn display(&self) -> String {
        match self {
            Self::Absolute(p) | Self::Relative(p) => p.display().to_string(),
        }
    }

    /// The directory this path names in a hierarchy mounted at
    /// `mount_point` whose mount shows `root`; `own` is the caller's cgroup
    /// in that hierarchy, needed only for a relative path.
    pub(super) fn dir_in(
        &self,
        mount_point: &Path,
        root: &str,
        own: Option<&str>,
        hierarchy: &str,
    ) -> Result<PathBuf, CgroupError> {
        let full = match self {
            Self::Absolute(p) => p.clone(),
            Self::Relative(p) => {
                let own = own.ok_or_else(|| CgroupError::OwnCgroupUnknown {
                    path: self.display(),
                    hierarchy: hierarchy.to_owned(),
                })?;
                Path::new("/").join(own.trim_start_matches('/')).join(p)
            }
        };
        // Cgroup paths are hierarchy-absolute; the mount may expose only a
        // subtree (root != "/"), whose prefix is then not in the filesystem.
        let below = full
            .strip_prefix(root)
            .or_else(|_| full.strip_prefix("/"))
            .unwrap_or(&full);
        Ok(mount_point.join(below))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:5 - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
42 31 0:32 / /mnt/again rw,relatime - cgroup cgroup rw,memory
";

    #[test]
    fn mountinfo_hybrid() {
        let m = parse_mountinfo(HYBRID, Path::new("mi")).unwrap();
        let names: Vec<_> = m.v1.iter().map(|h| h.controllers.join(",")).collect();
        assert_eq!(names, ["cpu", "cpuacct", "memory", "name=systemd"]);
        assert_eq!(m.v1[2].mount_point, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(
            m.unified.unwrap().mount_point,
            Path::new("/sys/fs/cgroup/unified")
        );
    }

    #[test]
    fn mountinfo_comounted_and_escaped() {
        let t = "1 0 0:1 /docker/x /sys/fs/cgroup/cpu\\040acct rw - cgroup cgroup rw,cpuacct,cpu,clone_children\n";
        let m = parse_mountinfo(t, Path::new("mi")).unwrap();
        assert_eq!(m.v1[0].controllers, ["cpu", "cpuacct"]);
        assert_eq!(m.v1[0].mount_point, Path::new("/sys/fs/cgroup/cpu acct"));
        assert_eq!(m.v1[0].root, "/docker/x");
        assert!(m.unified.is_none());
    }

    #[test]
    fn mountinfo_malformed() {
        let e = parse_mountinfo("garbage line\n", Path::new("mi")).unwrap_err();
        assert!(matches!(e, CgroupError::Malformed { .. }), "{e}");
    }

    #[test]
    fn proc_cgroup() {
        let t = "9:name=systemd:/\n4:memory:/a/b\n2:cpu,cpuacct:/c\n0::/u:v\n";
        let o = parse_proc_cgroup(t, Path::new("pc")).unwrap();
        assert_eq!(o.v1["memory"], "/a/b");
        assert_eq!(o.v1["cpuacct"], "/c");
        assert_eq!(o.v1["name=systemd"], "/");
        assert_eq!(o.unified.as_deref(), Some("/u:v"));
    }

    #[test]
    fn path_validation() {
        let p = CgroupPath::parse(None, "abc").unwrap();
        assert_eq!(p, CgroupPath::Absolute("/berth/abc".into()));
        let p = CgroupPath::parse(Some("x/./y"), "id").unwrap();
        assert_eq!(p, CgroupPath::Relative("x/y".into()));
        for bad in ["/a/../b", "..", "/", ""] {
            let e = CgroupPath::parse(Some(bad), "id").unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
        assert!(CgroupPath::parse(None, "a/b").is_err());
    }

    #[test]
    fn dirs_absolute_relative_and_subtree_root() {
        let mp = Path::new("/sys/fs/cgroup/memory");
        let abs = CgroupPath::parse(Some("/x/y"), "id").unwrap();
        let rel = CgroupPath::parse(Some("x"), "id").unwrap();
        assert_eq!(abs.dir_in(mp, "/", None, "memory").unwrap(), mp.join("x/y"));
        assert_eq!(
            rel.dir_in(mp, "/", Some("/own/cg"), "memory").unwrap(),
            mp.join("own/cg/x")
        );
        assert_eq!(
            rel.dir_in(mp, "/docker/c", Some("/docker/c/sub"), "memory")
                .unwrap(),
            mp.join("sub/x")
        );
        let e = rel.dir_in(mp, "/", None, "memory").unwrap_err();
        assert!(matches!(e, CgroupError::OwnCgroupUnknown { .. }));
    }
}
