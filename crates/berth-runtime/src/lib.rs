//! berth's OCI runtime.
//!
//! A container is created in two forks from the (single-threaded) runtime
//! process, as [`init`] explains; its state lives in `<root>/<id>/` as
//! [`state`] describes; each verb of runc's command line is a function in
//! [`ops`]. The library is synchronous on purpose: it forks, and forking a
//! multi-threaded process is undefined behaviour in practice, so async
//! callers (the shim, the daemon) reach it through a process of its own.
#![deny(missing_docs)]

pub mod cgroups;
pub mod config;
pub mod console;
pub mod error;
pub mod features;
pub mod hooks;
pub mod init;
pub mod mountopts;
pub mod ops;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod selfexe;
pub mod spec;
pub mod state;
pub mod sync;

pub use error::{Error, Result};
