//! berth's shared vocabulary.
//!
//! Every other crate speaks in these types: a [`ContainerId`] that is known
//! to be safe as a path component, a [`ContainerStatus`] state machine whose
//! `can_*` predicates guard every verb, and the [`ErrorKind`] class that each
//! crate's typed errors map to exactly once, so that an error keeps its
//! meaning (an exit code, later an HTTP status) across process boundaries.
//! A [`Digest`] names content by its hash (`sha256:…`), validated once so
//! it is safe as a path component.
#![deny(missing_docs)]

mod digest;
mod error;
mod id;
mod status;

pub use digest::{Digest, DigestAlgorithm, DigestError};
pub use error::ErrorKind;
pub use id::{ContainerId, IdError};
pub use status::ContainerStatus;
