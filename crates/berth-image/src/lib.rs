//! berth's image layer.
//!
//! Today it holds the [`content`] store: every blob (layer, config,
//! manifest, index) lives under `<root>/content/blobs/<alg>/<hex>`, named by
//! its digest and written there only after that digest has been verified, in
//! the OCI image-layout shape. Downloads and uploads land in
//! `<root>/content/ingest/<ref>/` first, where they survive a crash and
//! resume from where they stopped. [`layer::apply_layer`] unpacks a layer
//! tar stream into a directory, confined to it. [`manifest`] types the
//! OCI and Docker manifests, indexes and configs, and picks an index entry
//! for a platform; [`store::ImageStore`] maps image references to the
//! manifest or index they name, in `<root>/images.json`. Snapshots and
//! garbage collection build on these.
#![deny(missing_docs)]

pub mod archive;
pub mod content;
pub mod gc;
pub mod layer;
pub mod manifest;
pub mod snapshot;
pub mod store;

pub use content::{
    BlobInfo, ContentError, ContentStore, IngestStatus, MAX_DOCUMENT, Writer, digest_of, sha256_of,
};
pub use layer::{ApplyOptions, ApplyStats, LayerError, apply_layer};
pub use manifest::{Descriptor, ImageConfig, ImageManifest, Index, Manifest, ManifestError};
pub use store::{ImageRecord, ImageStore, StoreError};
