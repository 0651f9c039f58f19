//! Indexes: one image for several platforms.

use std::collections::BTreeMap;

use berth_model::Platform;
use serde::{Deserialize, Serialize};

use super::descriptor::{Descriptor, Extra};

/// An index: the OCI image index and Docker's manifest list share this shape
/// and differ only in their media types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// The index's own media type; optional in OCI, required by Docker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The artifact type, when the index describes an artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The manifests (or nested indexes) listed.
    pub manifests: Vec<Descriptor>,
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

/// A Docker manifest list: the same type as the OCI index.
pub type DockerManifestList = Index;

impl Index {
    /// The entry a host of platform `host` should run, by
    /// [`Platform::best`]: the closest match, the first of equals.
    /// Entries without a platform and attestation entries are never chosen.
    pub fn select(&self, host: &Platform) -> Option<&Descriptor> {
        let candidates: Vec<(&Descriptor, &Platform)> = self
            .manifests
            .iter()
            .filter(|d| !d.is_attestation())
            .filter_map(|d| d.platform.as_ref().map(|p| (d, p)))
            .collect();
        let best = host.best(candidates.iter().map(|(_, p)| *p))?;
        Some(candidates[best].0)
    }
}
