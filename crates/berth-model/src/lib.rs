//! berth's shared vocabulary.
//!
//! Every other crate speaks in these types: a [`ContainerId`] that is known
//! to be safe as a path component, a [`ContainerStatus`] state machine whose
//! `can_*` predicates guard every verb, and the [`ErrorKind`] class that each
//! crate's typed errors map to exactly once, so that an error keeps its
//! meaning (an exit code, later an HTTP status) across process boundaries.
//! A [`Digest`] names content by its hash (`sha256:…`), validated once so
//! it is safe as a path component.
//!
//! Images are named by an [`ImageRef`], parsed and normalised as Docker does
//! (`busybox` is `docker.io/library/busybox:latest`), and built for a
//! [`Platform`] (`linux/arm64/v8`) that decides which manifest of an index a
//! host pulls.
#![deny(missing_docs)]

mod digest;
mod error;
mod id;
mod platform;
mod reference;
mod status;
pub mod time;
pub mod units;

pub use digest::{Digest, DigestAlgorithm, DigestError};
pub use error::ErrorKind;
pub use id::{ContainerId, IdError};
pub use platform::{Platform, PlatformError, PlatformProblem};
pub use reference::{
    DEFAULT_DOMAIN, DEFAULT_TAG, ImageRef, NAME_MAX_LEN, ReferenceError, ReferenceProblem,
    TAG_MAX_LEN,
};
pub use status::ContainerStatus;
