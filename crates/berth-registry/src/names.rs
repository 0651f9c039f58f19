//! The names the distribution protocol carries in its paths: repository
//! names, tags, and the `<reference>` of a manifest URL (a tag or a digest).

use std::fmt;

use berth_model::Digest;

/// The longest repository name the server accepts, as distribution does.
pub const MAX_NAME_LEN: usize = 255;
/// The longest tag, as the distribution spec's grammar allows.
pub const MAX_TAG_LEN: usize = 128;

/// Whether `name` is a repository name: slash-separated components of
/// lowercase letters and digits, joined inside a component by `.`, `_`,
/// `__` or runs of `-` (the spec's
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`).
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_LEN && name.split('/').all(is_valid_component)
}

fn is_valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    loop {
        // A run of letters and digits.
        let start = i;
        while i < bytes.len() && alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        // A separator: `.`, `_`, `__`, or any number of `-`.
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if bytes.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// Whether `tag` is a tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    match bytes.split_first() {
        Some((first, rest)) => {
            bytes.len() <= MAX_TAG_LEN
                && word(first)
                && rest.iter().all(|b| word(b) || *b == b'.' || *b == b'-')
        }
        None => false,
    }
}

/// The `<reference>` of a manifest URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    /// A tag, mutable.
    Tag(String),
    /// A content digest, immutable.
    Digest(Digest),
}

impl Reference {
    /// Reads `s` as a digest when it has the digest shape (`alg:hex`), and as
    /// a tag otherwise; `None` when it is neither.
    pub fn parse(s: &str) -> Option<Reference> {
        if s.contains(':') {
            s.parse().ok().map(Reference::Digest)
        } else if is_valid_tag(s) {
            Some(Reference::Tag(s.to_owned()))
        } else {
            None
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => f.write_str(t),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_spec_grammar() {
        for good in [
            "a",
            "library/busybox",
            "a.b/c_d/e__f/g--h---i",
            "0/1/2",
            "myorg/myrepo",
        ] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in [
            "",
            "A",
            "a/",
            "/a",
            "a//b",
            "a..b",
            "a___b",
            "-a",
            "a-",
            "a_",
            "_a",
            "a/_tags",
            "a:b",
            &"a".repeat(256),
        ] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn tags_follow_the_spec_grammar() {
        for good in ["latest", "v1.0", "_x", "A-b.c_d", &"t".repeat(128)] {
            assert!(is_valid_tag(good), "{good}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", "a b", &"t".repeat(129)] {
            assert!(!is_valid_tag(bad), "{bad}");
        }
    }

    #[test]
    fn references_are_tags_or_digests() {
        assert_eq!(Reference::parse("v1"), Some(Reference::Tag("v1".into())));
        let digest = format!("sha256:{}", "a".repeat(64));
        assert!(matches!(
            Reference::parse(&digest),
            Some(Reference::Digest(_))
        ));
        assert_eq!(Reference::parse("sha256:zz"), None);
        assert_eq!(Reference::parse("bad/tag"), None);
    }
}
