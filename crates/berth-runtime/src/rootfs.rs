//! The container's root filesystem: mounts, device nodes, pivot_root, and
//! the masking done after it.
//!
//! Runs in the container's init process, inside its new mount namespace.
//! Every destination is resolved *inside* the rootfs with `openat2`
//! (`RESOLVE_IN_ROOT`) and mounted through `/proc/self/fd/N`, so a symlink
//! planted in an image cannot redirect a mount onto the host.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use berth_sys::fs::{mkdir_all_in_root, open_dir_path, open_in_root, proc_fd_path};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag};
use oci_spec::runtime::{LinuxDeviceType, Mount, Spec};

use crate::cgroups::CgroupManager;
use crate::config::DEFAULT_DEVICES;
use crate::error::{Error, Result};
use crate::mountopts::{self, MountOptions};

/// What the rootfs setup needs besides the spec.
pub struct RootfsContext<'a> {
    /// The spec.
    pub spec: &'a Spec,
    /// Absolute rootfs path on the host.
    pub rootfs: &'a Path,
    /// Absolute bundle path (relative bind sources are resolved from it).
    pub bundle: &'a Path,
    /// The container's cgroups, for `cgroup` mounts.
    pub cgroup: &'a CgroupManager,
    /// Whether the container has its own user namespace (devices must then be
    /// bind-mounted from the host: mknod is not allowed there).
    pub userns: bool,
}

/// Everything before pivot_root: propagation, the rootfs bind mount, the
/// spec's mounts, and /dev.
pub fn prepare(ctx: &RootfsContext) -> Result<()> {
    let linux = ctx.spec.linux().as_ref();
    let prop = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .filter(|p| !p.is_empty())
        .and_then(mountopts::propagation_flag);
    // Stop our mounts from reaching the host first; a shared propagation the
    // spec asks for is applied to the new root after pivot_root. So is an
    // unbindable one: made unbindable now, the rootfs could not be bound
    // below (EINVAL); private is unbindable's bindable equivalent.
    let root_flag = match prop {
        Some(p) if p.contains(MsFlags::MS_SHARED) => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some(p) if p.contains(MsFlags::MS_UNBINDABLE) => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        Some(p) => p | MsFlags::MS_REC,
        None => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    mount(None::<&str>, "/", None::<&str>, root_flag, None::<&str>)
        .map_err(Error::sys("make / a slave mount"))?;
    make_parent_private(ctx.rootfs)?;
    mount(
        Some(ctx.rootfs),
        ctx.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(Error::sys(format!("bind rootfs {}", ctx.rootfs.display())))?;
    let root = open_dir_path(ctx.rootfs).map_err(Error::io("open rootfs", ctx.rootfs))?;
    let mounts = ctx.spec.mounts().clone().unwrap_or_default();
    for m in &mounts {
        mount_one(ctx, &root, m)?;
    }
    if open_in_root(
        &root,
        Path::new("/dev"),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
    )
    .is_ok()
    {
        create_devices(ctx, &root)?;
        dev_symlinks(&root);
    }
    Ok(())
}

/// pivot_root needs the rootfs's parent mount not to be shared.
fn make_parent_private(rootfs: &Path) -> Result<()> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(Error::io("read", "/proc/self/mountinfo"))?;
    let mut best: Option<(PathBuf, bool)> = None;
    for line in info.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let Some(mp) = f.get(4) else { continue };
        let mp = PathBuf::from(unescape_mountinfo(mp));
        if rootfs.starts_with(&mp)
            && best
                .as_ref()
                .is_none_or(|(b, _)| mp.as_os_str().len() >= b.as_os_str().len())
        {
            let shared = f
                .iter()
                .skip(6)
                .take_while(|x| **x != "-")
                .any(|x| x.starts_with("shared:"));
            best = Some((mp, shared));
        }
    }
    if let Some((mp, true)) = best {
        mount(
            None::<&str>,
            &mp,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(Error::sys(format!("make {} private", mp.display())))?;
    }
    Ok(())
}

fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

fn mount_one(ctx: &RootfsContext, root: &OwnedFd, m: &Mount) -> Result<()> {
    let opts = mountopts::parse(m.options().as_deref().unwrap_or_default());
    let typ = m.typ().clone().unwrap_or_default();
    let dest = m.destination();
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(ctx, root, dest, &opts);
    }
    let bind = opts.bind || typ == "bind";
    let source = m.source().clone().map(|s| {
        if bind && s.is_relative() {
            ctx.bundle.join(s)
        } else {
            s
        }
    });
    let is_file = bind
        && source
            .as_ref()
            .and_then(|s| std::fs::metadata(s).ok())
            .is_some_and(|md| !md.is_dir());
    if bind && let Some(s) = &source {
        std::fs::metadata(s).map_err(Error::io("bind mount source", s))?;
    }
    let target = make_target(root, dest, is_file)?;
    let tpath = proc_fd_path(&target);
    if bind {
        let src = source.ok_or_else(|| {
            Error::InvalidSpec(format!("bind mount {} has no source", dest.display()))
        })?;
        let mut f = MsFlags::MS_BIND;
        if opts.recursive {
            f |= MsFlags::MS_REC;
        }
        mount(Some(&src), &tpath, None::<&str>, f, None::<&str>).map_err(Error::sys(format!(
            "bind {} to {}",
            src.display(),
            dest.display()
        )))?;
        let extra = opts.flags - MsFlags::MS_REMOUNT;
        if !extra.is_empty() {
            remount_bind(root, dest, extra, ctx.userns)?;
        }
    } else {
        let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
        let src = source.clone().unwrap_or_else(|| PathBuf::from(&typ));
        let r = mount(Some(&src), &tpath, Some(typ.as_str()), opts.flags, data);
        match r {
            Ok(()) => {}
            // Without its own network or ipc namespace, a container may not
            // mount a fresh sysfs or mqueue: give it the host's, as runc does.
            Err(nix::Error::EPERM) if typ == "sysfs" || typ == "mqueue" => {
                let host = if typ == "sysfs" {
                    "/sys"
                } else {
                    "/dev/mqueue"
                };
                mount(
                    Some(host),
                    &tpath,
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .map_err(Error::sys(format!("bind {host} to {}", dest.display())))?;
                remount_bind(root, dest, opts.flags, ctx.userns)?;
            }
            Err(e) => {
                return Err(Error::Sys {
                    op: format!("mount {typ} on {}", dest.display()),
                    source: e,
                });
            }
        }
    }
    apply_propagation(root, dest, &opts)
}

fn apply_propagation(root: &OwnedFd, dest: &Path, opts: &MountOptions) -> Result<()> {
    if opts.propagation.is_empty() {
        return Ok(());
    }
    let t = open_in_root(root, dest, libc::O_PATH, 0).map_err(Error::io("reopen", dest))?;
    for p in &opts.propagation {
        mount(
            None::<&str>,
            &proc_fd_path(&t),
            None::<&str>,
            *p,
            None::<&str>,
        )
        .map_err(Error::sys(format!("set propagation of {}", dest.display())))?;
    }
    Ok(())
}

/// Remounts the bind mount at `dest` (inside `root`) with `flags`, keeping
/// the flags the kernel locks in a user namespace.
fn remount_bind(root: &OwnedFd, dest: &Path, flags: MsFlags, userns: bool) -> Result<()> {
    // Re-resolve: the descriptor used to mount points *under* the new mount.
    let t = open_in_root(root, dest, libc::O_PATH, 0).map_err(Error::io("reopen", dest))?;
    let p = proc_fd_path(&t);
    let mut f = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags;
    if userns {
        f |= locked_flags(&p);
    }
    mount(None::<&str>, &p, None::<&str>, f, None::<&str>).map_err(Error::sys(format!(
        "remount {} with {:?}",
        dest.display(),
        flags
    )))
}

fn locked_flags(p: &Path) -> MsFlags {
    let mut f = MsFlags::empty();
    if let Ok(st) = nix::sys::statvfs::statvfs(p) {
        use nix::sys::statvfs::FsFlags;
        let ff = st.flags();
        for (a, b) in [
            (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
            (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
            (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
            (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
            (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
            (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        ] {
            if ff.contains(a) {
                f |= b;
            }
        }
    }
    f
}

/// Creates the mount point `dest` inside `root` (a directory, or an empty
/// file for a file bind mount) and returns an `O_PATH` handle to it.
fn make_target(root: &OwnedFd, dest: &Path, is_file: bool) -> Result<OwnedFd> {
    if !is_file {
        return mkdir_all_in_root(root, dest, 0o755).map_err(Error::io("create mount point", dest));
    }
    let parent = dest.parent().unwrap_or(Path::new("/"));
    mkdir_all_in_root(root, parent, 0o755).map_err(Error::io("create mount point", parent))?;
    match open_in_root(root, dest, libc::O_PATH, 0) {
        Ok(fd) => Ok(fd),
        Err(_) => {
            open_in_root(root, dest, libc::O_CREAT | libc::O_WRONLY, 0o644)
                .map_err(Error::io("create mount point", dest))?;
            open_in_root(root, dest, libc::O_PATH, 0).map_err(Error::io("open mount point", dest))
        }
    }
}

/// A `cgroup` mount: cgroup2 on a unified host, else a tmpfs holding a bind
/// of each of the container's v1 hierarchies.
fn mount_cgroup(
    ctx: &RootfsContext,
    root: &OwnedFd,
    dest: &Path,
    opts: &MountOptions,
) -> Result<()> {
    let target = make_target(root, dest, false)?;
    let tpath = proc_fd_path(&target);
    let flags = opts.flags & !MsFlags::MS_RDONLY;
    let dirs = ctx.cgroup.hierarchy_dirs();
    if ctx.cgroup.layout() == crate::cgroups::Layout::Unified {
        let r = mount(
            Some("cgroup2"),
            &tpath,
            Some("cgroup2"),
            opts.flags,
            None::<&str>,
        );
        if r.is_ok() {
            return Ok(());
        }
        if let Some((_, dir)) = dirs.first() {
            mount(
                Some(dir.as_path()),
                &tpath,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(Error::sys(format!(
                "bind cgroup {} to {}",
                dir.display(),
                dest.display()
            )))?;
            return remount_bind(root, dest, opts.flags, ctx.userns);
        }
        return Ok(());
    }
    mount(
        Some("tmpfs"),
        &tpath,
        Some("tmpfs"),
        flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=755"),
    )
    .map_err(Error::sys(format!("mount tmpfs on {}", dest.display())))?;
    for (name, dir) in &dirs {
        let sub = dest.join(name);
        let t = make_target(root, &sub, false)?;
        mount(
            Some(dir.as_path()),
            &proc_fd_path(&t),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(Error::sys(format!(
            "bind cgroup {} to {}",
            dir.display(),
            sub.display()
        )))?;
        remount_bind(
            root,
            &sub,
            opts.flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            ctx.userns,
        )?;
    }
    comount_symlinks(root, dest, &dirs);
    if opts.flags.contains(MsFlags::MS_RDONLY) {
        remount_bind(
            root,
            dest,
            opts.flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            false,
        )
        .or_else(|_| {
            let t = open_in_root(root, dest, libc::O_PATH, 0).map_err(Error::io("reopen", dest))?;
            mount(
                None::<&str>,
                &proc_fd_path(&t),
                None::<&str>,
                MsFlags::MS_REMOUNT
                    | MsFlags::MS_RDONLY
                    | MsFlags::MS_NOSUID
                    | MsFlags::MS_NODEV
                    | MsFlags::MS_NOEXEC,
                Some("mode=755"),
            )
            .map_err(Error::sys(format!("remount {} read-only", dest.display())))
        })?;
    }
    Ok(())
}

fn create_devices(ctx: &RootfsContext, root: &OwnedFd) -> Result<()> {
    let spec_devs = ctx
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default();
    for d in &spec_devs {
        make_device(
            root,
            d.path(),
            d.typ(),
            d.major(),
            d.minor(),
            d.file_mode().unwrap_or(0o666),
            d.uid(),
            d.gid(),
            ctx.userns,
        )?;
    }
    for (path, typ, major, minor) in DEFAULT_DEVICES {
        if spec_devs.iter().any(|d| d.path() == Path::new(path)) {
            continue;
        }
        make_device(
            root,
            Path::new(path),
            *typ,
            *major,
            *minor,
            0o666,
            None,
            None,
            ctx.userns,
        )?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn make_device(
    root: &OwnedFd,
    path: &Path,
    typ: LinuxDeviceType,
    major: i64,
    minor: i64,
    mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
    userns: bool,
) -> Result<()> {
    if !path.starts_with("/dev") {
        return Err(Error::InvalidSpec(format!(
            "device {} is outside /dev",
            path.display()
        )));
    }
    let parent = path.parent().unwrap_or(Path::new("/dev"));
    let pfd = mkdir_all_in_root(root, parent, 0o755).map_err(Error::io("create", parent))?;
    let name = path
        .file_name()
        .ok_or_else(|| Error::InvalidSpec(format!("device path {} has no name", path.display())))?;
    let cname = CString::new(name.as_bytes()).expect("no NUL in path");
    if userns {
        // No mknod in a user namespace: bind the host's node instead.
        let t = make_target(root, path, true)?;
        return mount(
            Some(path),
            &proc_fd_path(&t),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(Error::sys(format!("bind device {}", path.display())));
    }
    let kind = match typ {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(Error::InvalidSpec(format!(
                "device {} has type 'a', which only device cgroup rules may use",
                path.display()
            )));
        }
    };
    // SAFETY: plain syscalls on a valid directory descriptor and C string.
    unsafe { libc::unlinkat(pfd.as_raw_fd(), cname.as_ptr(), 0) };
    let dev = libc::makedev(major as u32, minor as u32);
    let r = unsafe {
        libc::mknodat(
            pfd.as_raw_fd(),
            cname.as_ptr(),
            kind.bits() | (mode & 0o7777),
            dev,
        )
    };
    if r < 0 {
        return Err(Error::io("mknod", path)(std::io::Error::last_os_error()));
    }
    let r = unsafe {
        libc::fchownat(
            pfd.as_raw_fd(),
            cname.as_ptr(),
            uid.unwrap_or(0),
            gid.unwrap_or(0),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r < 0 {
        return Err(Error::io("chown", path)(std::io::Error::last_os_error()));
    }
    let _ = Mode::from_bits_truncate(mode);
    Ok(())
}

/// In a v1 `cgroup` mount at `dest`, a link per controller of each co-mounted
/// hierarchy (`cpu -> cpu,cpuacct`, `cpuacct -> cpu,cpuacct`), as runc makes
/// and as hosts lay them out, so `/sys/fs/cgroup/cpu/...` works in the
/// container. Best effort: a name already there is kept.
fn comount_symlinks(root: &OwnedFd, dest: &Path, dirs: &[(String, PathBuf)]) {
    let Ok(dir) = open_in_root(root, dest, libc::O_PATH | libc::O_DIRECTORY, 0) else {
        return;
    };
    for (name, _) in dirs.iter().filter(|(n, _)| n.contains(',')) {
        let Ok(t) = CString::new(name.as_str()) else {
            continue;
        };
        for part in name
            .split(',')
            .filter(|p| !p.is_empty() && !p.contains('/'))
        {
            let Ok(n) = CString::new(part) else { continue };
            // SAFETY: valid descriptor and C strings.
            unsafe {
                libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), n.as_ptr());
            }
        }
    }
}

fn dev_symlinks(root: &OwnedFd) {
    let Ok(dev) = open_in_root(root, Path::new("/dev"), libc::O_PATH | libc::O_DIRECTORY, 0) else {
        return;
    };
    for (target, name) in [
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
    ] {
        let t = CString::new(target).expect("static");
        let n = CString::new(name).expect("static");
        // SAFETY: valid descriptor and C strings.
        unsafe {
            if name == "ptmx" {
                libc::unlinkat(dev.as_raw_fd(), n.as_ptr(), 0);
            }
            libc::symlinkat(t.as_ptr(), dev.as_raw_fd(), n.as_ptr());
        }
    }
}

/// Makes `rootfs` the root: pivot_root, or with `no_pivot` a move mount and
/// chroot (for ramdisk roots, where pivot_root is impossible).
pub fn pivot(rootfs: &Path, no_pivot: bool) -> Result<()> {
    nix::unistd::chdir(rootfs).map_err(Error::sys(format!("chdir {}", rootfs.display())))?;
    if no_pivot {
        mount(
            Some(rootfs),
            "/",
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .map_err(Error::sys("move rootfs to /"))?;
        nix::unistd::chroot(".").map_err(Error::sys("chroot"))?;
    } else {
        // pivot_root(".", ".") stacks the old root under the new one, so no
        // put_old directory is needed in the image.
        nix::unistd::pivot_root(".", ".")
            .map_err(Error::sys(format!("pivot_root to {}", rootfs.display())))?;
        mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(Error::sys("make old root a slave"))?;
        umount2(".", MntFlags::MNT_DETACH).map_err(Error::sys("detach old root"))?;
    }
    nix::unistd::chdir("/").map_err(Error::sys("chdir /"))
}

/// Everything after pivot_root: the spec's propagation for `/`, masked and
/// read-only paths, sysctls, and a read-only root.
pub fn finalize(spec: &Spec, userns: bool) -> Result<()> {
    let linux = spec.linux().as_ref();
    if let Some(p) = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(mountopts::propagation_flag)
    {
        mount(None::<&str>, "/", None::<&str>, p, None::<&str>)
            .map_err(Error::sys("set rootfs propagation"))?;
    }
    // Sysctls first: /proc/sys is usually among the read-only paths.
    if let Some(sysctl) = linux.and_then(|l| l.sysctl().clone()) {
        let mut keys: Vec<_> = sysctl.keys().collect();
        keys.sort();
        for k in keys {
            let file = PathBuf::from("/proc/sys").join(k.replace('.', "/"));
            if k.contains("..") || k.contains('/') {
                return Err(Error::InvalidSpec(format!(
                    "sysctl {k:?} is not a sysctl name"
                )));
            }
            std::fs::write(&file, &sysctl[k])
                .map_err(|e| Error::InvalidSpec(format!("sysctl {k}={}: {e}", sysctl[k])))?;
        }
    }
    for p in linux
        .and_then(|l| l.readonly_paths().clone())
        .unwrap_or_default()
    {
        readonly_path(&p, userns)?;
    }
    for p in linux
        .and_then(|l| l.masked_paths().clone())
        .unwrap_or_default()
    {
        mask_path(&p)?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        let mut f = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        f |= locked_flags(Path::new("/"));
        mount(None::<&str>, "/", None::<&str>, f, None::<&str>)
            .map_err(Error::sys("remount / read-only"))?;
    }
    Ok(())
}

fn readonly_path(p: &str, userns: bool) -> Result<()> {
    match mount(
        Some(p),
        p,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    ) {
        Ok(()) => {}
        Err(nix::Error::ENOENT) => return Ok(()),
        Err(e) => {
            return Err(Error::Sys {
                op: format!("bind readonly path {p}"),
                source: e,
            });
        }
    }
    let mut f = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC;
    if userns {
        f |= locked_flags(Path::new(p));
    } else {
        f |= MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    }
    mount(None::<&str>, p, None::<&str>, f, None::<&str>)
        .map_err(Error::sys(format!("remount {p} read-only")))
}

fn mask_path(p: &str) -> Result<()> {
    let md = match std::fs::metadata(p) {
        Ok(m) => m,
        Err(_) => return Ok(()),
    };
    let r = if md.is_dir() {
        mount(
            Some("tmpfs"),
            p,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
    } else {
        mount(
            Some("/dev/null"),
            p,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    };
    r.map_err(Error::sys(format!("mask {p}")))
}
