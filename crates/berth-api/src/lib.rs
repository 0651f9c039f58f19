//! The Docker Engine API as berth speaks it: the versions it negotiates,
//! the error body every failure answers with, and the wire types.
#![deny(missing_docs)]

pub mod client;
pub mod container;
pub mod types;
pub mod version;

pub use types::{ComponentVersion, ErrorResponse, PlatformName, SystemVersion};
pub use version::{ApiVersion, MAX_API_VERSION, MIN_API_VERSION, VersionError};
