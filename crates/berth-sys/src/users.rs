//! Users and groups of a root filesystem: `user[:group]` resolved against
//! its `/etc/passwd` and `/etc/group`, read confined to that root.

use std::os::fd::OwnedFd;
use std::path::Path;

/// A user resolved against the image's `/etc/passwd` and `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// `$HOME`.
    pub home: String,
}

fn read_in_root(root: &OwnedFd, path: &str) -> Option<String> {
    let fd = crate::fs::open_in_root(root, Path::new(path), libc::O_RDONLY, 0).ok()?;
    let mut s = String::new();
    use std::io::Read;
    std::fs::File::from(fd)
        .take(4 << 20)
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

/// Resolves `user[:group]` (names or numbers) in the root filesystem
/// `rootfs`, confined to it.
pub fn resolve(rootfs: &Path, spec: &str) -> Result<User, String> {
    let root =
        crate::fs::open_dir_path(rootfs).map_err(|e| format!("open {}: {e}", rootfs.display()))?;
    let passwd = read_in_root(&root, "/etc/passwd").unwrap_or_default();
    let group = read_in_root(&root, "/etc/group").unwrap_or_default();
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let entries: Vec<Vec<&str>> = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 7)
        .collect();
    let by_name = entries.iter().find(|f| f[0] == user);
    let (uid, mut gid, home, name) = match (by_name, user.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse()
                .map_err(|_| format!("bad uid for {user} in /etc/passwd"))?,
            f[3].parse().unwrap_or(0),
            f[5].to_owned(),
            Some(f[0]),
        ),
        (None, Ok(uid)) => match entries.iter().find(|f| f[2] == uid.to_string()) {
            Some(f) => (uid, f[3].parse().unwrap_or(0), f[5].to_owned(), Some(f[0])),
            None => (uid, 0, "/".to_owned(), None),
        },
        (None, Err(_)) => {
            return Err(format!(
                "unable to find user {user}: no matching entries in passwd file"
            ));
        }
    };
    let groups: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    if let Some(g) = grp {
        gid = match groups.iter().find(|f| f[0] == g) {
            Some(f) => f[2].parse().unwrap_or(0),
            None => g.parse().map_err(|_| {
                format!("unable to find group {g}: no matching entries in group file")
            })?,
        };
    }
    let supplementary = match (name, grp) {
        (Some(name), None) => groups
            .iter()
            .filter(|f| f[3].split(',').any(|m| m == name))
            .filter_map(|f| f[2].parse().ok())
            .filter(|g| *g != gid)
            .collect(),
        _ => Vec::new(),
    };
    Ok(User {
        uid,
        gid,
        groups: supplementary,
        home,
    })
}
