//! Container identifiers.

use std::fmt;

/// Why a string is not a valid container id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The id is the empty string.
    #[error("container id must not be empty")]
    Empty,
    /// The id is `.` or `..`, which name directories rather than containers.
    #[error("container id {0:?} is not allowed: it names a directory")]
    Dot(String),
    /// The id contains a character outside `[A-Za-z0-9_+.-]`.
    #[error(
        "container id {id:?} is invalid: character {bad:?} is not allowed (use letters, digits, '_', '+', '-' and '.')"
    )]
    BadChar {
        /// The rejected id.
        id: String,
        /// The first offending character.
        bad: char,
    },
    /// The id is longer than 1024 bytes.
    #[error("container id is {0} bytes long; at most 1024 are allowed")]
    TooLong(usize),
}

/// A container id that is safe to use as a single path component.
///
/// Construction validates once, so code holding a `ContainerId` never has to
/// worry about `/`, `..` or an empty id escaping a state directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ContainerId(String);

impl ContainerId {
    /// Validates `id`.
    pub fn new(id: &str) -> Result<Self, IdError> {
        if id.is_empty() {
            return Err(IdError::Empty);
        }
        if id == "." || id == ".." {
            return Err(IdError::Dot(id.to_owned()));
        }
        if id.len() > 1024 {
            return Err(IdError::TooLong(id.len()));
        }
        if let Some(bad) = id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.')))
        {
            return Err(IdError::BadChar {
                id: id.to_owned(),
                bad,
            });
        }
        Ok(ContainerId(id.to_owned()))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for ContainerId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ContainerId::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_runc_style_ids() {
        for id in ["a", "abc-123", "x_y.z+1", "0123456789abcdef"] {
            assert_eq!(ContainerId::new(id).unwrap().as_str(), id);
        }
    }

    #[test]
    fn rejects_path_like_ids() {
        assert_eq!(ContainerId::new(""), Err(IdError::Empty));
        assert!(matches!(ContainerId::new(".."), Err(IdError::Dot(_))));
        assert!(matches!(
            ContainerId::new("a/b"),
            Err(IdError::BadChar { bad: '/', .. })
        ));
        assert!(matches!(
            ContainerId::new("../x"),
            Err(IdError::BadChar { .. })
        ));
        assert!(matches!(
            ContainerId::new("a b"),
            Err(IdError::BadChar { bad: ' ', .. })
        ));
        assert!(ContainerId::new(&"a".repeat(2000)).is_err());
    }

    #[test]
    fn deserialising_validates() {
        assert!(serde_json::from_str::<ContainerId>("\"ok\"").is_ok());
        assert!(serde_json::from_str::<ContainerId>("\"a/b\"").is_err());
    }
}
