//! Descriptors: the typed, sized pointers from one document to another.

use std::collections::BTreeMap;

use berth_model::{Digest, Platform};
use serde::{Deserialize, Serialize};

use super::media_types::{ANNOTATION_REFERENCE_TYPE, ATTESTATION_MANIFEST};

/// Fields a document carries that berth has no type for, kept so that a
/// parse/serialise round trip does not drop them.
pub type Extra = BTreeMap<String, serde_json::Value>;

/// An OCI content descriptor (Docker's schema 2 uses the same shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type of the content pointed to.
    pub media_type: String,
    /// The digest of the content.
    pub digest: Digest,
    /// The size of the content in bytes.
    pub size: u64,
    /// Where else the content may be fetched from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// Arbitrary metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// The platform of the image an index entry points to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// The type of an artifact, when the content is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The content itself, base64-encoded, when embedded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Fields berth does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Descriptor {
    /// A descriptor with only the required fields set.
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            urls: None,
            annotations: None,
            platform: None,
            artifact_type: None,
            data: None,
            extra: Extra::new(),
        }
    }

    /// The annotation `key`, if set.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }

    /// Whether this index entry holds BuildKit attestations rather than a
    /// runnable image; such entries are never selected for a platform.
    pub fn is_attestation(&self) -> bool {
        self.annotation(ANNOTATION_REFERENCE_TYPE) == Some(ATTESTATION_MANIFEST)
    }
}
