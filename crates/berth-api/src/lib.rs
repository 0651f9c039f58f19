//! The Docker Engine API as berth speaks it: the versions it negotiates,
//! the error body every failure answers with, and the wire types.
#![deny(missing_docs)]

pub mod client;
pub mod container;
pub mod types;
pub mod version;

pub use types::{ComponentVersion, ErrorResponse, PlatformName, SystemVersion};
pub use version::{ApiVersion, MAX_API_VERSION, MIN_API_VERSION, VersionError};

/// The request header of `POST /build` that carries `berth build
/// --secret`s: base64 of a JSON object of secret ids to base64 values.
/// (Headers, unlike the query string, are not logged by servers.)
pub const BUILD_SECRETS_HEADER: &str = "x-berth-build-secrets";
