//! API versions: `/v1.NN/` path prefixes and their negotiation.
//!
//! The docker CLI asks `/_ping` for the daemon's `Api-Version` and then
//! sends the lower of that and its own. berth answers 1.41 (Docker 20.10)
//! up to 1.50 (what the docker 28 client sends by default); a request for
//! a version outside that range gets Docker's own 400.

use std::fmt;
use std::str::FromStr;

/// An Engine API version, `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    /// Always 1.
    pub major: u16,
    /// The minor version.
    pub minor: u16,
}

/// The newest version berth speaks.
pub const MAX_API_VERSION: ApiVersion = ApiVersion {
    major: 1,
    minor: 50,
};
/// The oldest version berth speaks.
pub const MIN_API_VERSION: ApiVersion = ApiVersion {
    major: 1,
    minor: 41,
};

/// Why a requested version is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionError {
    /// Not `major.minor`.
    Malformed(String),
    /// Newer than [`MAX_API_VERSION`].
    TooNew(ApiVersion),
    /// Older than [`MIN_API_VERSION`].
    TooOld(ApiVersion),
}

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionError::Malformed(v) => write!(f, "invalid API version {v:?}"),
            VersionError::TooNew(v) => write!(
                f,
                "client version {v} is too new. Maximum supported API version is {MAX_API_VERSION}"
            ),
            VersionError::TooOld(v) => write!(
                f,
                "client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
            ),
        }
    }
}

impl std::error::Error for VersionError {}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for ApiVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, VersionError> {
        let malformed = || VersionError::Malformed(s.to_owned());
        let (major, minor) = s.split_once('.').ok_or_else(malformed)?;
        let parse = |p: &str| {
            (!p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| p.parse::<u16>().ok())
                .flatten()
                .ok_or_else(malformed)
        };
        Ok(ApiVersion {
            major: parse(major)?,
            minor: parse(minor)?,
        })
    }
}

impl ApiVersion {
    /// Checks that berth speaks this version.
    pub fn check(self) -> Result<ApiVersion, VersionError> {
        if self > MAX_API_VERSION {
            Err(VersionError::TooNew(self))
        } else if self < MIN_API_VERSION {
            Err(VersionError::TooOld(self))
        } else {
            Ok(self)
        }
    }
}

/// Splits a request path into the version it names (`/v1.45/images/json`)
/// and the rest (`/images/json`). A path without a prefix has no version
/// (the newest applies). Fails for a prefix berth does not speak.
pub fn split_path(path: &str) -> Result<(Option<ApiVersion>, &str), VersionError> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok((None, path));
    };
    let (version, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    // `/volumes`, `/version`: not a version prefix.
    if !version.starts_with(|c: char| c.is_ascii_digit()) {
        return Ok((None, path));
    }
    let version: ApiVersion = version.parse()?;
    Ok((Some(version.check()?), tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_split_and_are_checked() {
        assert_eq!(split_path("/_ping").unwrap(), (None, "/_ping"));
        assert_eq!(split_path("/version").unwrap(), (None, "/version"));
        assert_eq!(split_path("/volumes/x").unwrap(), (None, "/volumes/x"));
        let (v, rest) = split_path("/v1.45/images/json").unwrap();
        assert_eq!(
            v,
            Some(ApiVersion {
                major: 1,
                minor: 45
            })
        );
        assert_eq!(rest, "/images/json");
        assert_eq!(split_path("/v1.50").unwrap().1, "/");
        let too_new = split_path("/v1.99/info").unwrap_err();
        assert!(
            too_new
                .to_string()
                .contains("Maximum supported API version is 1.50")
        );
        assert!(matches!(
            split_path("/v1.12/info"),
            Err(VersionError::TooOld(_))
        ));
        assert!(matches!(
            split_path("/v1.x/info"),
            Err(VersionError::Malformed(_))
        ));
    }
}
