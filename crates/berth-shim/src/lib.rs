//! The per-container shim and its client.
//!
//! The daemon starts one `berth shim DIR` per running container, by exec
//! (never by fork: the daemon is multi-threaded). The shim reads
//! [`ShimConfig`] from `DIR/config.json`, detaches into its own session,
//! creates the container through the runtime library with pipes (or a pty)
//! as its stdio, and answers on `DIR/shim.sock`. It starts the container
//! when asked to (so the daemon can attach first and miss no output),
//! copies the output into the json-file log and to attached clients,
//! reaps the container, records its exit in `DIR/exit.json`, removes its
//! runtime state and exits. Because the shim is not the daemon's child
//! once detached, containers keep running while the daemon restarts.
//!
//! The shim is synchronous and single-threaded: one `poll(2)` loop, a few
//! buffers, no async runtime, so that its resident memory, the cost of
//! every running container, stays small. [`client`] is the daemon's side.
#![deny(missing_docs)]

pub mod client;
pub mod logfile;
pub mod protocol;
pub mod server;

pub use protocol::{ExitRecord, Reply, Request, ShimConfig};
