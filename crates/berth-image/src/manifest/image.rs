//! Image manifests: a config and its layers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::descriptor::{Descriptor, Extra};

/// An image manifest: the OCI image manifest and Docker's schema 2 manifest
/// share this shape and differ only in their media types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest's own media type; optional in OCI, required by Docker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The artifact type, when the manifest describes an artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The image config.
    pub config: Descriptor,
    /// The layers, base first.
    pub layers: Vec<Descriptor>,
    /// The manifest this one refers to (OCI referrers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Arbitrary metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Fields berth does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A Docker schema 2 manifest: the same type as the OCI one.
pub type DockerManifest = ImageManifest;
