//! Wire types of the Engine API, with Docker's field names.

use serde::{Deserialize, Serialize};

/// The body of every error: `{"message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// What went wrong, for people.
    pub message: String,
}

/// `GET /version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SystemVersion {
    /// The product.
    pub platform: PlatformName,
    /// The engine's parts and their versions.
    pub components: Vec<ComponentVersion>,
    /// The engine's version.
    pub version: String,
    /// The newest API version.
    pub api_version: String,
    /// The oldest API version.
    #[serde(rename = "MinAPIVersion")]
    pub min_api_version: String,
    /// The source revision.
    pub git_commit: String,
    /// Docker reports its Go version; berth its Rust one.
    pub go_version: String,
    /// `linux`.
    pub os: String,
    /// The machine architecture, as Go names it (`amd64`).
    pub arch: String,
    /// The running kernel.
    pub kernel_version: String,
    /// When the engine was built.
    pub build_time: String,
}

/// `Platform` of [`SystemVersion`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PlatformName {
    /// The product's name.
    pub name: String,
}

/// One entry of [`SystemVersion::components`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ComponentVersion {
    /// The component.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Anything else about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}
