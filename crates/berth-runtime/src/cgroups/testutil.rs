//! Helpers shared by the tests.

/// Whether the tests run as root, which the real-kernel tests need.
pub(super) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
