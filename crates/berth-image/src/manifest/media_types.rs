//! Every media type berth reads or writes, in one place.

/// An OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// An OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// An OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// An uncompressed OCI layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// A gzip-compressed OCI layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// A zstd-compressed OCI layer.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// An OCI empty descriptor's content, `{}`.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// A Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// A Docker manifest list, schema 2.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// A Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// A gzip-compressed Docker layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// A Docker layer that must be fetched from its `urls` (Windows base layers).
pub const DOCKER_FOREIGN_LAYER_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// A signed Docker schema 1 manifest: recognised only to be refused.
pub const DOCKER_MANIFEST_V1_SIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// An unsigned Docker schema 1 manifest: recognised only to be refused.
pub const DOCKER_MANIFEST_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";

/// The annotation BuildKit sets on an index entry that holds attestations
/// (SBOM, provenance) rather than a runnable image.
pub const ANNOTATION_REFERENCE_TYPE: &str = "vnd.docker.reference.type";
/// The value of [`ANNOTATION_REFERENCE_TYPE`] on attestation entries.
pub const ATTESTATION_MANIFEST: &str = "attestation-manifest";

/// Whether `media_type` names an image manifest (OCI or Docker).
pub fn is_image_manifest(media_type: &str) -> bool {
    matches!(media_type, OCI_MANIFEST | DOCKER_MANIFEST)
}

/// Whether `media_type` names an index (OCI index or Docker manifest list).
pub fn is_index(media_type: &str) -> bool {
    matches!(media_type, OCI_INDEX | DOCKER_MANIFEST_LIST)
}

/// Whether `media_type` says nothing about the document's kind, so the body
/// must be sniffed: registries and files without a type answer with these.
pub fn is_generic(media_type: &str) -> bool {
    let base = media_type.split(';').next().unwrap_or("").trim();
    matches!(
        base,
        "" | "application/json" | "application/octet-stream" | "text/plain"
    )
}
