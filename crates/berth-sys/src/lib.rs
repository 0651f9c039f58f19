//! Thin safe wrappers over the Linux calls berth relies on.
//!
//! - [`fs::atomic_write`]: every state file is replaced by write-to-temp,
//!   fsync, rename, fsync-dir, so a crash leaves the old or the new file.
//! - [`fs::open_in_root`]: resolve a path *inside* a directory tree the way a
//!   process chrooted there would (`openat2` with `RESOLVE_IN_ROOT`), so a
//!   symlink in an untrusted rootfs cannot lead outside it.
//! - [`fs::try_lock_exclusive`]: a non-blocking `flock` that a crashed
//!   holder never leaves stale.
//! - [`fd`]: file-descriptor hygiene before handing control to untrusted code.
//! - [`process::fork_into_cgroup`]: a fork whose child is born in a cgroup.
#![deny(missing_docs)]

pub mod fd;
pub mod fs;
pub mod process;
pub mod users;
