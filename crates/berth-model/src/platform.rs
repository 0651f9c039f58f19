//! Platforms (`linux/arm64/v8`): what an image was built for, and which of
//! an index's manifests a host can run.
//!
//! Names are normalised as containerd normalises them (`aarch64` is `arm64`,
//! `armhf` is `arm/v7`), so that two spellings of one platform compare
//! equal. Choosing a manifest follows containerd's matcher: the OS and
//! architecture must agree, and a host runs its own variant first and older
//! variants of its family after it, in a fixed order of
//! [`preference`](Platform::preference).

use std::fmt;
use std::str::FromStr;

use crate::ErrorKind;

/// Why a string is not a valid platform.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid platform {input:?}: {reason}")]
pub struct PlatformError {
    /// The rejected platform string.
    pub input: String,
    /// What is wrong with it.
    pub reason: PlatformProblem,
}

impl PlatformError {
    /// The error class: a bad platform is always the caller's input.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// What makes a platform string invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlatformProblem {
    /// The string is empty.
    #[error("platform is empty")]
    Empty,
    /// More than `os/arch/variant`.
    #[error("expected os[/arch[/variant]], found {0} components")]
    TooManyComponents(usize),
    /// A component has a character outside `[A-Za-z0-9_.-]`, or is empty.
    #[error("component {0:?} is invalid (use letters, digits, '_', '.' and '-')")]
    BadComponent(String),
    /// A lone component that is neither a known OS nor a known architecture.
    #[error("{0:?} is not a known operating system or architecture")]
    Unknown(String),
    /// An `os(version)` with no closing parenthesis or an empty version.
    #[error("OS version in {0:?} is malformed (expected os(version))")]
    BadOsVersion(String),
}

/// An OCI platform: the OS and CPU an image runs on.
///
/// Fields are as OCI names them and serialise that way (`os.version`);
/// [`parse`](Self::parse) and [`new`](Self::new) normalise, and matching
/// normalises both sides, so a platform read from a manifest as written can
/// be compared directly.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Platform {
    /// The operating system, e.g. `linux`.
    pub os: String,
    /// The CPU architecture, e.g. `amd64` or `arm64`.
    pub architecture: String,
    /// The CPU variant, e.g. `v7` for `arm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The OS version, used by Windows images.
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
}

const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "wasip1",
    "windows",
    "zos",
];

const KNOWN_ARCH: &[&str] = &[
    "386",
    "amd64",
    "amd64p32",
    "arm",
    "armbe",
    "arm64",
    "arm64be",
    "loong64",
    "mips",
    "mipsle",
    "mips64",
    "mips64le",
    "mips64p32",
    "mips64p32le",
    "ppc",
    "ppc64",
    "ppc64le",
    "riscv",
    "riscv64",
    "s390",
    "s390x",
    "sparc",
    "sparc64",
    "wasm",
];

impl Platform {
    /// A normalised platform from its parts.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.map(str::to_owned),
            os_version: None,
        }
        .normalized()
    }

    /// Parses `os[(version)][/arch[/variant]]`, or a lone architecture,
    /// normalising the result. A lone OS takes the host's architecture and
    /// a lone architecture takes the host's OS, as containerd does.
    pub fn parse(input: &str) -> Result<Platform, PlatformError> {
        parse(input).map_err(|reason| PlatformError {
            input: input.to_owned(),
            reason,
        })
    }

    /// The platform of the machine berth was built for, with OCI names
    /// (`x86_64` is `amd64`; `aarch64` is `arm64/v8`). Knows nothing of the
    /// running CPU's features: 32-bit `arm` is assumed `v7`.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86" => "386",
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "powerpc" => "ppc",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "powerpc64" => "ppc64",
            "mips" if cfg!(target_endian = "little") => "mipsle",
            "mips64" if cfg!(target_endian = "little") => "mips64le",
            "loongarch64" => "loong64",
            "sparc64" => "sparc64",
            other => other,
        };
        Platform::new(host_os(), arch, None)
    }

    /// This platform with names normalised: lowercase, architecture aliases
    /// resolved, and the family's default variant filled in (`v8` for
    /// `arm64`, `v7` for `arm`; `amd64`'s baseline `v1` is written as none).
    pub fn normalized(&self) -> Platform {
        let os = match self.os.to_ascii_lowercase().as_str() {
            "macos" => "darwin".to_owned(),
            os => os.to_owned(),
        };
        let (architecture, variant) = normalize_arch(
            &self.architecture.to_ascii_lowercase(),
            self.variant.as_deref().map(str::to_ascii_lowercase),
        );
        Platform {
            os,
            architecture,
            variant,
            os_version: self.os_version.clone(),
        }
    }

    /// Whether a host of this platform can run an image built for
    /// `candidate`.
    pub fn matches(&self, candidate: &Platform) -> bool {
        self.preference(candidate).is_some()
    }

    /// How well `candidate` suits a host of this platform: `Some(0)` for an
    /// exact match (after normalisation), larger for older variants of the
    /// same family, `None` when the host cannot run it.
    ///
    /// The order is containerd's: `arm/vN` runs `vN` down to `v5`; `arm64/vN`
    /// runs `vN` down to `v8`, then 32-bit `arm/v8` down to `v5`; `amd64/vN`
    /// runs `vN` down to the baseline. Other architectures need an exact
    /// variant. The OS version is not compared.
    pub fn preference(&self, candidate: &Platform) -> Option<u8> {
        let host = self.normalized();
        let candidate = candidate.normalized();
        if host.os != candidate.os {
            return None;
        }
        let position = compatible(&host.architecture, host.variant.as_deref())
            .iter()
            .position(|(arch, variant)| {
                *arch == candidate.architecture
                    && variant.as_deref() == candidate.variant.as_deref()
            })?;
        u8::try_from(position).ok()
    }

    /// The index of the candidate this host prefers, the first of equals;
    /// `None` when it can run none of them.
    pub fn best<'a>(&self, candidates: impl IntoIterator<Item = &'a Platform>) -> Option<usize> {
        candidates
            .into_iter()
            .enumerate()
            .filter_map(|(i, c)| self.preference(c).map(|p| (p, i)))
            .min()
            .map(|(_, i)| i)
    }
}

fn host_os() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        os => os,
    }
}

fn parse(input: &str) -> Result<Platform, PlatformProblem> {
    if input.is_empty() {
        return Err(PlatformProblem::Empty);
    }
    let parts: Vec<&str> = input.split('/').collect();
    if parts.len() > 3 {
        return Err(PlatformProblem::TooManyComponents(parts.len()));
    }
    let (os, os_version) = split_os_version(parts[0])?;
    for part in std::iter::once(os).chain(parts[1..].iter().copied()) {
        let ok = !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !ok {
            return Err(PlatformProblem::BadComponent(part.to_owned()));
        }
    }
    let mut platform = match parts[..] {
        [_] => {
            let lower = os.to_ascii_lowercase();
            let as_arch = normalize_arch(&lower, None).0;
            if KNOWN_OS.contains(&lower.as_str()) || lower == "macos" {
                Platform {
                    os: os.to_owned(),
                    ..Platform::host()
                }
            } else if os_version.is_none() && KNOWN_ARCH.contains(&as_arch.as_str()) {
                Platform::new(host_os(), os, None)
            } else {
                return Err(PlatformProblem::Unknown(os.to_owned()));
            }
        }
        [_, arch] => Platform::new(os, arch, None),
        [_, arch, variant] => Platform::new(os, arch, Some(variant)),
        _ => unreachable!("between one and three components"),
    };
    platform.os_version = os_version.map(str::to_owned);
    Ok(platform.normalized())
}

/// Splits `windows(10.0.17763)` into the OS and its version.
fn split_os_version(part: &str) -> Result<(&str, Option<&str>), PlatformProblem> {
    let Some((os, rest)) = part.split_once('(') else {
        return Ok((part, None));
    };
    match rest.strip_suffix(')') {
        Some(version) if !version.is_empty() && !version.contains(['(', ')']) => {
            Ok((os, Some(version)))
        }
        _ => Err(PlatformProblem::BadOsVersion(part.to_owned())),
    }
}

/// containerd's architecture aliases and default variants; both arguments
/// lowercase.
fn normalize_arch(arch: &str, variant: Option<String>) -> (String, Option<String>) {
    let variant = variant.filter(|v| !v.is_empty());
    let (arch, variant) = match arch {
        "i386" | "386" => ("386", None),
        "x86_64" | "x86-64" | "amd64" => match variant.as_deref() {
            Some("v1") => ("amd64", None),
            _ => ("amd64", variant),
        },
        "aarch64" | "arm64" => match variant.as_deref() {
            None | Some("8" | "v8" | "v8.0") => ("arm64", Some("v8".to_owned())),
            Some("9" | "9.0" | "v9.0") => ("arm64", Some("v9".to_owned())),
            _ => ("arm64", variant),
        },
        "armhf" => ("arm", Some("v7".to_owned())),
        "armel" => ("arm", Some("v6".to_owned())),
        "arm" => match variant.as_deref() {
            None | Some("7") => ("arm", Some("v7".to_owned())),
            Some(v @ ("5" | "6" | "8")) => ("arm", Some(format!("v{v}"))),
            _ => ("arm", variant),
        },
        other => (other, variant),
    };
    (arch.to_owned(), variant)
}

/// The `(architecture, variant)` pairs a normalised host runs, best first.
fn compatible(arch: &str, variant: Option<&str>) -> Vec<(String, Option<String>)> {
    let exact = (arch.to_owned(), variant.map(str::to_owned));
    // `vN` or `vN.M`: the major version N.
    let major = variant
        .and_then(|v| v.strip_prefix('v'))
        .and_then(|v| v.split('.').next())
        .and_then(|n| n.parse::<u8>().ok());
    let down_to = |arch: &str, from: u8, to: u8| {
        (to..=from)
            .rev()
            .map(|n| (arch.to_owned(), Some(format!("v{n}"))))
            .collect::<Vec<_>>()
    };
    let mut out = vec![exact];
    match (arch, major) {
        ("arm", Some(n)) if (5..=8).contains(&n) => out.extend(down_to("arm", n, 5)),
        ("arm64", Some(n)) if n >= 8 => {
            out.extend(down_to("arm64", n.min(9), 8));
            out.extend(down_to("arm", 8, 5));
        }
        ("amd64", n) => {
            out.extend(down_to("amd64", n.unwrap_or(1).min(4), 2));
            out.push(("amd64".to_owned(), None));
        }
        _ => {}
    }
    // The exact entry may reappear in its family's list; keep the first.
    let mut seen = Vec::with_capacity(out.len());
    out.retain(|entry| {
        let new = !seen.contains(entry);
        if new {
            seen.push(entry.clone());
        }
        new
    });
    out
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.os)?;
        if let Some(version) = &self.os_version {
            write!(f, "({version})")?;
        }
        write!(f, "/{}", self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = PlatformError;

    fn from_str(s: &str) -> Result<Self, PlatformError> {
        Platform::parse(s)
    }
}

#[cfg(test)]
mod tests;
