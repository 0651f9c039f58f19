//! berth's image layer.
//!
//! Today it holds the [`content`] store: every blob (layer, config,
//! manifest, index) lives under `<root>/content/blobs/<alg>/<hex>`, named by
//! its digest and written there only after that digest has been verified, in
//! the OCI image-layout shape. Downloads and uploads land in
//! `<root>/content/ingest/<ref>/` first, where they survive a crash and
//! resume from where they stopped. [`layer::apply_layer`] unpacks a layer
//! tar stream into a directory, confined to it. Snapshots, images, manifests and garbage
//! collection build on this store.
#![deny(missing_docs)]

pub mod content;
pub mod layer;

pub use content::{BlobInfo, ContentError, ContentStore, IngestStatus, Writer, sha256_of};
pub use layer::{ApplyOptions, ApplyStats, LayerError, apply_layer};
