//! berth's OCI distribution layer.
//!
//! [`names`] and [`wire`] hold what both sides of the protocol share: the
//! grammar of repository names and tags, the error body, the listings.
//! [`server`] is `berth registry serve`, an OCI distribution v1.1 registry
//! over the content store; [`client`] pulls from and pushes to any
//! registry.
#![deny(missing_docs)]

pub mod client;
pub mod names;
pub mod pipe;
pub mod server;
pub mod tls;
pub mod wire;
