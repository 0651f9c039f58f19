//! Content digests, as OCI writes them: `algorithm:hex`.

use std::fmt;
use std::str::FromStr;

/// Why a string is not a valid digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The string has no `:` separating the algorithm from the hex.
    #[error("digest {input:?} is malformed: expected \"algorithm:hex\"")]
    Malformed {
        /// The rejected string.
        input: String,
    },
    /// The algorithm is not one berth verifies.
    #[error("digest {input:?} uses unsupported algorithm {algorithm:?} (use sha256 or sha512)")]
    UnsupportedAlgorithm {
        /// The rejected string.
        input: String,
        /// The algorithm it named.
        algorithm: String,
    },
    /// The hex part has the wrong length or characters other than `[0-9a-f]`.
    #[error("digest {input:?} is invalid: expected {expected_len} lowercase hex characters")]
    InvalidHex {
        /// The rejected string.
        input: String,
        /// How many hex characters the algorithm needs.
        expected_len: usize,
    },
}

/// A hash algorithm a [`Digest`] may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DigestAlgorithm {
    /// SHA-256, the algorithm of nearly every OCI digest.
    Sha256,
    /// SHA-512.
    Sha512,
}

impl DigestAlgorithm {
    /// Every supported algorithm.
    pub const ALL: [DigestAlgorithm; 2] = [DigestAlgorithm::Sha256, DigestAlgorithm::Sha512];

    /// The name used in digests and on disk (`sha256`).
    pub fn as_str(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha256",
            DigestAlgorithm::Sha512 => "sha512",
        }
    }

    /// The number of hex characters in a digest of this algorithm.
    pub fn hex_len(self) -> usize {
        match self {
            DigestAlgorithm::Sha256 => 64,
            DigestAlgorithm::Sha512 => 128,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated OCI content digest such as `sha256:e3b0c442…`.
///
/// The hex part is exactly as long as the algorithm needs and lowercase, so
/// a `Digest` is always safe as a path component and compares equal exactly
/// when the strings do.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: DigestAlgorithm,
    hex: String,
}

impl Digest {
    /// Builds a digest from an algorithm and the hex of a hash, validating
    /// the hex.
    pub fn new(algorithm: DigestAlgorithm, hex: &str) -> Result<Self, DigestError> {
        if hex.len() != algorithm.hex_len()
            || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(DigestError::InvalidHex {
                input: format!("{algorithm}:{hex}"),
                expected_len: algorithm.hex_len(),
            });
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_owned(),
        })
    }

    /// The algorithm.
    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The lowercase hex of the hash.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, DigestError> {
        let (name, hex) = s.split_once(':').ok_or_else(|| DigestError::Malformed {
            input: s.to_owned(),
        })?;
        let algorithm =
            DigestAlgorithm::from_name(name).ok_or_else(|| DigestError::UnsupportedAlgorithm {
                input: s.to_owned(),
                algorithm: name.to_owned(),
            })?;
        Digest::new(algorithm, hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str =
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_prints_sha256() {
        let d: Digest = EMPTY_SHA256.parse().unwrap();
        assert_eq!(d.algorithm(), DigestAlgorithm::Sha256);
        assert_eq!(d.hex(), &EMPTY_SHA256[7..]);
        assert_eq!(d.to_string(), EMPTY_SHA256);
    }

    #[test]
    fn parses_sha512() {
        let s = format!("sha512:{}", "ab".repeat(64));
        let d: Digest = s.parse().unwrap();
        assert_eq!(d.algorithm(), DigestAlgorithm::Sha512);
        assert_eq!(d.to_string(), s);
    }

    #[test]
    fn rejects_malformed_digests_naming_the_input() {
        assert_eq!(
            "nocolon".parse::<Digest>(),
            Err(DigestError::Malformed {
                input: "nocolon".into()
            })
        );
        let md5 = "md5:d41d8cd98f00b204e9800998ecf8427e";
        assert!(matches!(
            md5.parse::<Digest>(),
            Err(DigestError::UnsupportedAlgorithm { ref input, ref algorithm })
                if input == md5 && algorithm == "md5"
        ));
        for bad in [
            "sha256:",
            "sha256:abc",
            &EMPTY_SHA256.to_uppercase().replace("SHA256", "sha256"),
            &format!("{EMPTY_SHA256}0"),
            &format!("sha256:{}", "g".repeat(64)),
            &format!("sha512:{}", "a".repeat(64)),
            &format!("sha256:../{}", "a".repeat(61)),
        ] {
            let err = bad.parse::<Digest>().unwrap_err();
            assert!(
                matches!(err, DigestError::InvalidHex { ref input, .. } if input == bad),
                "{bad}: {err:?}"
            );
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn new_validates_the_hex() {
        assert!(Digest::new(DigestAlgorithm::Sha256, &"0".repeat(64)).is_ok());
        assert!(Digest::new(DigestAlgorithm::Sha512, &"0".repeat(64)).is_err());
    }

    #[test]
    fn serde_uses_the_string_form_and_validates() {
        let d: Digest = EMPTY_SHA256.parse().unwrap();
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{EMPTY_SHA256}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        assert!(serde_json::from_str::<Digest>("\"sha256:abc\"").is_err());
    }
}
