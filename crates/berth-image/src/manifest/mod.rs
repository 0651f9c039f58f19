//! Manifests, indexes and image configs, as OCI and Docker write them.
//!
//! [`Manifest::from_slice`] reads a manifest blob given the media type it
//! was served or stored with, sniffing the body when that type is missing
//! or generic. OCI and Docker schema 2 documents share one type per kind:
//! [`ImageManifest`] (a config and layers) and [`Index`] (per-platform
//! entries, picked with [`Index::select`]). Every media type lives in
//! [`media_types`]. Unknown fields land in each type's `extra` map, so a
//! parse/serialise round trip keeps them.

mod config;
mod descriptor;
mod image;
mod index;
pub mod media_types;
#[cfg(test)]
mod tests;

pub use config::{ContainerConfig, Empty, HealthConfig, History, ImageConfig, RootFs};
pub use descriptor::{Descriptor, Extra};
pub use image::{DockerManifest, ImageManifest};
pub use index::{DockerManifestList, Index};

use berth_model::ErrorKind;

/// Why a manifest or config could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The media type names a document berth does not read (Docker schema
    /// 1, an artifact, ...).
    #[error("unsupported manifest media type {media_type:?}")]
    Unsupported {
        /// The media type given or found.
        media_type: String,
    },
    /// The media type gave no kind and the body could not be sniffed.
    #[error(
        "cannot tell the manifest's kind: media type {media_type:?}, and the body has neither `manifests` nor `layers`"
    )]
    Unrecognized {
        /// The media type given, possibly empty.
        media_type: String,
    },
    /// The body's own `mediaType` names another kind of document than the
    /// media type it was served or stored with.
    #[error("manifest served as {media_type} declares itself {declared}")]
    Mismatch {
        /// The media type given.
        media_type: String,
        /// The media type in the body.
        declared: String,
    },
    /// The body is not valid JSON of the kind its media type names.
    #[error("invalid {media_type} document: {source}")]
    Invalid {
        /// The media type the body was read as.
        media_type: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

impl ManifestError {
    /// The error class: a manifest berth cannot read is bad input.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// A manifest blob: an image manifest or an index.
// Both variants are a few hundred bytes and a manifest is parsed a handful of
// times per pull: boxing would only make matching clumsier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Manifest {
    /// One image: a config and its layers.
    Image(ImageManifest),
    /// Per-platform entries pointing to images.
    Index(Index),
}

impl Manifest {
    /// Parses `bytes` as the manifest kind `media_type` names. When the
    /// type is absent or generic (`application/json`, ...), the body's
    /// `mediaType` decides, and failing that the presence of `manifests`
    /// (an index) or `layers`/`config` (an image). A specific media type
    /// given by the caller wins over the body's.
    pub fn from_slice(bytes: &[u8], media_type: Option<&str>) -> Result<Manifest, ManifestError> {
        let given = media_type.unwrap_or("");
        let resolved = if media_types::is_generic(given) {
            sniff(bytes, given)?
        } else {
            given.to_owned()
        };
        let manifest = parse_as(bytes, &resolved)?;
        let declared = manifest.declared_media_type().unwrap_or(&resolved);
        if !media_types::is_generic(declared)
            && media_types::is_index(declared) != media_types::is_index(&resolved)
        {
            return Err(ManifestError::Mismatch {
                declared: declared.to_owned(),
                media_type: resolved.clone(),
            });
        }
        Ok(manifest)
    }

    /// The `mediaType` field of the body, if any.
    fn declared_media_type(&self) -> Option<&str> {
        match self {
            Manifest::Image(m) => m.media_type.as_deref(),
            Manifest::Index(i) => i.media_type.as_deref(),
        }
    }

    /// The document's own media type, falling back to the OCI type of its
    /// kind when the body does not name one.
    pub fn media_type(&self) -> &str {
        match self {
            Manifest::Image(m) => m.media_type.as_deref().unwrap_or(media_types::OCI_MANIFEST),
            Manifest::Index(i) => i.media_type.as_deref().unwrap_or(media_types::OCI_INDEX),
        }
    }

    /// The document as JSON.
    pub fn to_vec(&self) -> Vec<u8> {
        let result = match self {
            Manifest::Image(m) => serde_json::to_vec(m),
            Manifest::Index(i) => serde_json::to_vec(i),
        };
        // Only maps with non-string keys fail to serialise; these have none.
        result.expect("manifest types always serialise")
    }
}

/// `bytes` read as the document kind `media_type` names.
fn parse_as(bytes: &[u8], media_type: &str) -> Result<Manifest, ManifestError> {
    let invalid = |source| ManifestError::Invalid {
        media_type: media_type.to_owned(),
        source,
    };
    if media_types::is_image_manifest(media_type) {
        serde_json::from_slice(bytes)
            .map(Manifest::Image)
            .map_err(invalid)
    } else if media_types::is_index(media_type) {
        serde_json::from_slice(bytes)
            .map(Manifest::Index)
            .map_err(invalid)
    } else {
        Err(ManifestError::Unsupported {
            media_type: media_type.to_owned(),
        })
    }
}

/// The media type a body declares or implies.
fn sniff(bytes: &[u8], given: &str) -> Result<String, ManifestError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
        manifests: Option<serde::de::IgnoredAny>,
        layers: Option<serde::de::IgnoredAny>,
        config: Option<serde::de::IgnoredAny>,
    }
    let probe: Probe = serde_json::from_slice(bytes).map_err(|source| ManifestError::Invalid {
        media_type: given.to_owned(),
        source,
    })?;
    if let Some(declared) = probe.media_type.filter(|m| !media_types::is_generic(m)) {
        return Ok(declared);
    }
    if probe.manifests.is_some() {
        Ok(media_types::OCI_INDEX.to_owned())
    } else if probe.layers.is_some() || probe.config.is_some() {
        Ok(media_types::OCI_MANIFEST.to_owned())
    } else {
        Err(ManifestError::Unrecognized {
            media_type: given.to_owned(),
        })
    }
}
