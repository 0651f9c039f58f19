//! Image references (`busybox`, `localhost:5000/app:1.0`, `app@sha256:…`),
//! parsed and normalised as Docker does.
//!
//! The grammar is distribution's reference grammar:
//!
//! ```text
//! reference      := name [ ":" tag ] [ "@" digest ]
//! name           := [ domain "/" ] path-component [ "/" path-component ]*
//! domain         := host [ ":" port ]          host: dns name or "[" ipv6 "]"
//! path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"* ) [a-z0-9]+ )*
//! tag            := [\w][\w.-]{0,127}
//! ```
//!
//! Normalisation follows Docker: the first path component is a registry only
//! if it looks like a host (it contains `.` or `:`, is `localhost`, or has an
//! uppercase letter, which no repository may have); otherwise the reference
//! lives on `docker.io`, where single-component names belong to `library/`.
//! A reference with neither tag nor digest gets the tag `latest`.

use std::fmt;
use std::str::FromStr;

use crate::{Digest, DigestError, ErrorKind};

/// The registry that unqualified references live on.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// Docker's legacy name for [`DEFAULT_DOMAIN`], rewritten to it when parsing.
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// The namespace of Docker Hub's official images.
const OFFICIAL_PREFIX: &str = "library/";
/// The tag a reference gets when it names neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// The longest a normalised repository name (`domain/path`) may be.
pub const NAME_MAX_LEN: usize = 255;
/// The longest a tag may be.
pub const TAG_MAX_LEN: usize = 128;

/// A string that is not a valid image reference, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reference format: {reason} (in {input:?})")]
pub struct ReferenceError {
    /// The rejected reference, as given.
    pub input: String,
    /// What is wrong with it.
    pub reason: ReferenceProblem,
}

impl ReferenceError {
    /// The error class: a bad reference is always the caller's input.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// What makes a reference invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceProblem {
    /// The reference is the empty string.
    #[error("reference is empty")]
    Empty,
    /// The reference is 64 hex characters: an image id, never a name.
    #[error("a 64-character hexadecimal string is an image id, not a repository name")]
    ImageId,
    /// The repository path has an uppercase letter.
    #[error("repository name must be lowercase")]
    Uppercase,
    /// The registry part is not `host[:port]`.
    #[error("registry {domain:?} is not a valid host[:port]")]
    BadDomain {
        /// The registry part as given.
        domain: String,
    },
    /// The repository path has an empty component (a leading, trailing or
    /// doubled `/`).
    #[error("repository name has an empty path component")]
    EmptyPathComponent,
    /// A repository path component breaks the grammar.
    #[error(
        "repository path component {component:?} is invalid (use lowercase letters and digits, \
         separated by '.', '_', '__' or dashes)"
    )]
    BadPathComponent {
        /// The offending component.
        component: String,
    },
    /// The normalised repository name is longer than [`NAME_MAX_LEN`].
    #[error("repository name must not be more than {NAME_MAX_LEN} characters (it is {len})")]
    NameTooLong {
        /// The normalised name's length.
        len: usize,
    },
    /// The tag is empty or has a character outside `[A-Za-z0-9_.-]`, or
    /// starts with `.` or `-`.
    #[error("tag {tag:?} is invalid (use letters, digits, '_', '.' and '-', not first '.' or '-')")]
    BadTag {
        /// The offending tag.
        tag: String,
    },
    /// The tag is longer than [`TAG_MAX_LEN`].
    #[error("tag must not be more than {TAG_MAX_LEN} characters (it is {len})")]
    TagTooLong {
        /// The tag's length.
        len: usize,
    },
    /// The part after `@` is not a valid digest.
    #[error("{0}")]
    BadDigest(DigestError),
}

/// A parsed, normalised image reference: `domain/path[:tag][@digest]`.
///
/// Always fully qualified (`docker.io/library/busybox:latest`); it has a tag,
/// a digest or both. [`familiar`](Self::familiar) gives the short form Docker
/// shows users. Serialises as its [`Display`](fmt::Display) string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl ImageRef {
    /// Parses and normalises `input` as Docker does.
    pub fn parse(input: &str) -> Result<ImageRef, ReferenceError> {
        parse(input).map_err(|reason| ReferenceError {
            input: input.to_owned(),
            reason,
        })
    }

    /// The registry, e.g. `docker.io` or `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path on the registry, e.g. `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The fully qualified repository, e.g. `docker.io/library/busybox`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The tag, if any; absent only when the reference names a digest alone.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the reference pins one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The same repository with tag `tag` (any digest is kept, as Docker
    /// keeps it).
    pub fn with_tag(&self, tag: &str) -> Result<ImageRef, ReferenceError> {
        validate_tag(tag).map_err(|reason| ReferenceError {
            input: format!("{}:{tag}", self.repository()),
            reason,
        })?;
        Ok(ImageRef {
            tag: Some(tag.to_owned()),
            ..self.clone()
        })
    }

    /// The same repository pinned to `digest`, keeping any tag.
    pub fn with_digest(&self, digest: Digest) -> ImageRef {
        ImageRef {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// Docker's short form: `docker.io/` and a sole `library/` left out
    /// (`busybox:latest`, `user/app:1`, `localhost:5000/app:1.0`).
    pub fn familiar(&self) -> String {
        let mut out = if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_PREFIX) {
                Some(name) if !name.contains('/') => name.to_owned(),
                _ => self.path.clone(),
            }
        } else {
            self.repository()
        };
        self.push_suffix(&mut out);
        out
    }

    fn push_suffix(&self, out: &mut String) {
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(&digest.to_string());
        }
    }
}

fn parse(input: &str) -> Result<ImageRef, ReferenceProblem> {
    if input.is_empty() {
        return Err(ReferenceProblem::Empty);
    }
    if input.len() == 64
        && input
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(ReferenceProblem::ImageId);
    }
    let (rest, digest) = match input.split_once('@') {
        Some((rest, digest)) => (
            rest,
            Some(digest.parse().map_err(ReferenceProblem::BadDigest)?),
        ),
        None => (input, None),
    };
    let (name, tag) = split_tag(rest);
    let (domain, path) = split_domain(name);
    // Docker checks case first, so that `Busybox` says "lowercase".
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ReferenceProblem::Uppercase);
    }
    if let Some(bad) = domain.filter(|d| !is_valid_domain(d)) {
        return Err(ReferenceProblem::BadDomain {
            domain: bad.to_owned(),
        });
    }
    for component in path.split('/') {
        if component.is_empty() {
            return Err(ReferenceProblem::EmptyPathComponent);
        }
        if !is_valid_path_component(component) {
            return Err(ReferenceProblem::BadPathComponent {
                component: component.to_owned(),
            });
        }
    }
    let domain = match domain {
        None | Some(LEGACY_DEFAULT_DOMAIN) => DEFAULT_DOMAIN,
        Some(domain) => domain,
    };
    let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
        format!("{OFFICIAL_PREFIX}{path}")
    } else {
        path.to_owned()
    };
    let len = domain.len() + 1 + path.len();
    if len > NAME_MAX_LEN {
        return Err(ReferenceProblem::NameTooLong { len });
    }
    if let Some(tag) = tag {
        validate_tag(tag)?;
    }
    let tag = match (tag, &digest) {
        (None, None) => Some(DEFAULT_TAG.to_owned()),
        (tag, _) => tag.map(str::to_owned),
    };
    Ok(ImageRef {
        domain: domain.to_owned(),
        path,
        tag,
        digest,
    })
}

/// Splits `name[:tag]`: a `:` is a tag separator only after the last `/`,
/// since before it the `:` belongs to a registry port.
fn split_tag(s: &str) -> (&str, Option<&str>) {
    match s.rfind(':') {
        Some(colon) if s.rfind('/').is_none_or(|slash| colon > slash) => {
            (&s[..colon], Some(&s[colon + 1..]))
        }
        _ => (s, None),
    }
}

/// Splits off the registry when the first component looks like a host, as
/// Docker's `splitDockerDomain` does; `None` means Docker Hub.
fn split_domain(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

/// `host[:port]`, where host is a DNS name (or IPv4 address) or `[ipv6]`.
fn is_valid_domain(domain: &str) -> bool {
    let (host_ok, port) = if let Some(rest) = domain.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        let v6_ok = !v6.is_empty() && v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        match after {
            "" => (v6_ok, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (v6_ok, Some(port)),
                None => return false,
            },
        }
    } else {
        let (host, port) = match domain.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        };
        (host.split('.').all(is_valid_domain_component), port)
    };
    host_ok && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn is_valid_domain_component(c: &str) -> bool {
    !c.is_empty()
        && !c.starts_with('-')
        && !c.ends_with('-')
        && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn is_valid_path_component(c: &str) -> bool {
    let alnum = |b: u8| matches!(b, b'a'..=b'z' | b'0'..=b'9');
    let bytes = c.as_bytes();
    if !bytes.first().is_some_and(|&b| alnum(b)) || !bytes.last().is_some_and(|&b| alnum(b)) {
        return false;
    }
    // With both ends alphanumeric, every separator run sits between two
    // alphanumeric runs; each must be one of the allowed separators.
    c.split(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
        .filter(|sep| !sep.is_empty())
        .all(|sep| matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-'))
}

fn validate_tag(tag: &str) -> Result<(), ReferenceProblem> {
    if tag.len() > TAG_MAX_LEN {
        return Err(ReferenceProblem::TagTooLong { len: tag.len() });
    }
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ok = tag.as_bytes().first().is_some_and(|&b| word(b))
        && tag.bytes().all(|b| word(b) || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ReferenceProblem::BadTag {
            tag: tag.to_owned(),
        })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.repository();
        self.push_suffix(&mut out);
        f.write_str(&out)
    }
}

impl FromStr for ImageRef {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, ReferenceError> {
        ImageRef::parse(s)
    }
}

impl serde::Serialize for ImageRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ImageRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
