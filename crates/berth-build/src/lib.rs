//! berth's builder.
//!
//! [`parser`] turns a Dockerfile into nodes as BuildKit does;
//! [`instructions`] checks them and gives each its typed form, grouped
//! into stages.
#![deny(missing_docs)]

pub mod build;
pub mod checks;
pub mod context;
pub mod ignore;
pub mod instructions;
pub mod parser;
pub mod words;

/// The `PATH` of a container whose image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
