//! What travels on the wire besides blobs: the error body every registry
//! answers with, tag lists, the catalog, and the header names.

use serde::{Deserialize, Serialize};

/// `Docker-Content-Digest`: the digest of the blob or manifest in a response.
pub const CONTENT_DIGEST: &str = "docker-content-digest";
/// `Docker-Upload-UUID`: the session id of a blob upload.
pub const UPLOAD_UUID: &str = "docker-upload-uuid";
/// `Docker-Distribution-API-Version`, answered on every response.
pub const API_VERSION: &str = "docker-distribution-api-version";
/// `OCI-Subject`: the subject digest of a manifest just pushed.
pub const OCI_SUBJECT: &str = "oci-subject";
/// `OCI-Filters-Applied`: which referrers filters a response honours.
pub const OCI_FILTERS_APPLIED: &str = "oci-filters-applied";
/// `OCI-Chunk-Min-Length`: the smallest PATCH the server wants.
pub const OCI_CHUNK_MIN_LENGTH: &str = "oci-chunk-min-length";

/// The error codes of the distribution spec (and Docker's additions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The blob is not in the repository.
    BlobUnknown,
    /// The upload failed; the client should restart it.
    BlobUploadInvalid,
    /// The upload session does not exist (finished, cancelled, or never).
    BlobUploadUnknown,
    /// The content does not match its digest, or the digest is malformed.
    DigestInvalid,
    /// A manifest names a blob the repository does not hold.
    ManifestBlobUnknown,
    /// The manifest is malformed.
    ManifestInvalid,
    /// The manifest is not in the repository.
    ManifestUnknown,
    /// The repository name is malformed.
    NameInvalid,
    /// The repository does not exist.
    NameUnknown,
    /// The content's length does not match what was declared.
    SizeInvalid,
    /// The tag is malformed.
    TagInvalid,
    /// Authentication is required.
    Unauthorized,
    /// Access to the resource is denied.
    Denied,
    /// The operation is not supported.
    Unsupported,
    /// A chunk does not continue the upload where it stands.
    RangeInvalid,
    /// The client sends too many requests.
    TooManyRequests,
    /// A listing's `n` is not a number.
    PaginationNumberInvalid,
}

impl ErrorCode {
    /// The code as the wire writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BlobUnknown => "BLOB_UNKNOWN",
            ErrorCode::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            ErrorCode::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            ErrorCode::DigestInvalid => "DIGEST_INVALID",
            ErrorCode::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            ErrorCode::ManifestInvalid => "MANIFEST_INVALID",
            ErrorCode::ManifestUnknown => "MANIFEST_UNKNOWN",
            ErrorCode::NameInvalid => "NAME_INVALID",
            ErrorCode::NameUnknown => "NAME_UNKNOWN",
            ErrorCode::SizeInvalid => "SIZE_INVALID",
            ErrorCode::TagInvalid => "TAG_INVALID",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Denied => "DENIED",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::RangeInvalid => "RANGE_INVALID",
            ErrorCode::TooManyRequests => "TOOMANYREQUESTS",
            ErrorCode::PaginationNumberInvalid => "PAGINATION_NUMBER_INVALID",
        }
    }

    /// The HTTP status a server answers with for this code.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::BlobUnknown
            | ErrorCode::BlobUploadUnknown
            | ErrorCode::ManifestUnknown
            | ErrorCode::NameUnknown => 404,
            ErrorCode::BlobUploadInvalid
            | ErrorCode::DigestInvalid
            | ErrorCode::ManifestBlobUnknown
            | ErrorCode::ManifestInvalid
            | ErrorCode::NameInvalid
            | ErrorCode::SizeInvalid
            | ErrorCode::TagInvalid
            | ErrorCode::PaginationNumberInvalid => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Denied => 403,
            ErrorCode::Unsupported => 405,
            ErrorCode::RangeInvalid => 416,
            ErrorCode::TooManyRequests => 429,
        }
    }

    /// The spec's one-line description of the code.
    pub fn message(self) -> &'static str {
        match self {
            ErrorCode::BlobUnknown => "blob unknown to registry",
            ErrorCode::BlobUploadInvalid => "blob upload invalid",
            ErrorCode::BlobUploadUnknown => "blob upload unknown to registry",
            ErrorCode::DigestInvalid => "provided digest did not match uploaded content",
            ErrorCode::ManifestBlobUnknown => "manifest references a blob unknown to registry",
            ErrorCode::ManifestInvalid => "manifest invalid",
            ErrorCode::ManifestUnknown => "manifest unknown",
            ErrorCode::NameInvalid => "invalid repository name",
            ErrorCode::NameUnknown => "repository name not known to registry",
            ErrorCode::SizeInvalid => "provided length did not match content length",
            ErrorCode::TagInvalid => "manifest tag did not match URI",
            ErrorCode::Unauthorized => "authentication required",
            ErrorCode::Denied => "requested access to the resource is denied",
            ErrorCode::Unsupported => "the operation is unsupported",
            ErrorCode::RangeInvalid => "invalid content range",
            ErrorCode::TooManyRequests => "too many requests",
            ErrorCode::PaginationNumberInvalid => "invalid number of results requested",
        }
    }
}

/// One entry of an error body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEntry {
    /// The code, e.g. `MANIFEST_UNKNOWN`.
    pub code: String,
    /// A message for people.
    #[serde(default)]
    pub message: String,
    /// Anything else the server said about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

/// The body of every error response: `{"errors": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The errors; usually one.
    #[serde(default)]
    pub errors: Vec<ErrorEntry>,
}

impl ErrorBody {
    /// A body with the single error `code`, with `detail` when given.
    pub fn single(code: ErrorCode, detail: Option<serde_json::Value>) -> ErrorBody {
        ErrorBody {
            errors: vec![ErrorEntry {
                code: code.as_str().to_owned(),
                message: code.message().to_owned(),
                detail,
            }],
        }
    }
}

/// `GET /v2/<name>/tags/list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagList {
    /// The repository.
    pub name: String,
    /// Its tags, in lexical order.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// `GET /v2/_catalog`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    /// Repository names, in lexical order.
    #[serde(default)]
    pub repositories: Vec<String>,
}

/// Percent-encodes `s` for a query string or form: everything but RFC 3986's
/// unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes a query-string value: `%XX` escapes and `+` for space; a bad
/// escape stays as it is.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        out.push((hi * 16 + lo) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
