//! `.dockerignore` parsing and matching with Docker's semantics.
//!
//! This reproduces the behaviour of the Docker CLI's ignore-file reader
//! (`ignorefile.ReadAll`) combined with `moby/patternmatcher`
//! (`PatternMatcher.MatchesOrParentMatches`), which is what BuildKit and the
//! classic builder use to filter the build context.
//!
//! Reading rules:
//!
//! * A UTF-8 byte-order mark at the start of the file is ignored.
//! * A line whose very first character is `#` is a comment (the check is made
//!   *before* whitespace is trimmed, exactly like Docker, so `  # x` is a
//!   pattern, not a comment).
//! * Surrounding whitespace is trimmed and empty lines are skipped.
//! * A leading `!` makes the line an exception (it re-includes paths).
//! * The rest is cleaned like Go's `filepath.Clean`, and a leading `/` is
//!   removed, so `/foo` and `foo` are the same pattern.
//!
//! Pattern syntax is Go's `filepath.Match` (`*`, `?`, `[...]` classes with
//! `^` negation and ranges, `\` escapes) plus `**`, which matches any number of
//! path segments (including zero). Patterns are matched against the path
//! relative to the context root, and a pattern also matches every path below a
//! directory it matches. When several patterns match a path, the last one
//! wins: the path is excluded iff that last pattern is not an exception.

use std::fmt;

/// An error found while reading a `.dockerignore` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreError {
    /// The 1-based line number of the offending line.
    pub line: usize,
    /// What is wrong, naming the pattern.
    pub message: String,
}

impl fmt::Display for IgnoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, ".dockerignore line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for IgnoreError {}

/// One token of a compiled pattern (used for the general, wildcard case).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A literal character.
    Lit(char),
    /// `?`: any single character except `/`.
    Any,
    /// `*`: any run of characters other than `/`.
    Star,
    /// `[...]`: a character class (may match `/`).
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**` or `**/` not at the end: zero or more whole leading segments,
    /// i.e. the regular expression `(.*/)?`.
    AnyDirs,
    /// `**` at the end: anything at all, i.e. the regular expression `.*`.
    AnyRest,
    /// A `^` outside a class. patternmatcher copies it into its regular
    /// expression unescaped, where it asserts the start of the path.
    StartAnchor,
}

/// How a pattern is matched; mirrors patternmatcher's match types, whose
/// fast paths have slightly different semantics from the general case.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// No wildcard: the path must equal the pattern.
    Exact,
    /// Literal text followed by a final `**`: a plain prefix test.
    Prefix(String),
    /// A leading `**` followed by literal text: a plain suffix test.
    Suffix(String),
    /// Anything else: a full, anchored match of the token list.
    General(Vec<Token>),
}

#[derive(Debug, Clone)]
struct Pattern {
    /// The cleaned pattern text (without the `!`).
    text: String,
    exception: bool,
    kind: Kind,
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.text,
            Kind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Kind::Suffix(suffix) => {
                // `**/foo` also matches `foo` itself.
                path.ends_with(suffix.as_str()) || suffix.strip_prefix('/') == Some(path)
            }
            Kind::General(tokens) => {
                let chars: Vec<char> = path.chars().collect();
                let mut memo = vec![None; (tokens.len() + 1) * (chars.len() + 1)];
                match_tokens(tokens, &chars, 0, 0, &mut memo)
            }
        }
    }

    /// The pattern without a trailing `/**` or `/*` (fsutil's
    /// `patternWithoutTrailingGlob`), used to decide whether to descend.
    fn without_trailing_glob(&self) -> &str {
        let p = self.text.as_str();
        let p = p.strip_suffix("/**").unwrap_or(p);
        p.strip_suffix("/*").unwrap_or(p)
    }
}

/// Anchored match of `tokens[ti..]` against `path[pi..]`, memoised on
/// `(ti, pi)` so that patterns with many wildcards stay polynomial.
fn match_tokens(
    tokens: &[Token],
    path: &[char],
    ti: usize,
    pi: usize,
    memo: &mut [Option<bool>],
) -> bool {
    let key = ti * (path.len() + 1) + pi;
    if let Some(done) = memo[key] {
        return done;
    }
    let result = match tokens.get(ti) {
        None => pi == path.len(),
        Some(Token::Lit(c)) => {
            path.get(pi) == Some(c) && match_tokens(tokens, path, ti + 1, pi + 1, memo)
        }
        Some(Token::Any) => {
            matches!(path.get(pi), Some(&c) if c != '/')
                && match_tokens(tokens, path, ti + 1, pi + 1, memo)
        }
        Some(Token::Class { negated, ranges }) => match path.get(pi) {
            Some(&c) => {
                let inside = ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
                inside != *negated && match_tokens(tokens, path, ti + 1, pi + 1, memo)
            }
            None => false,
        },
        Some(Token::Star) => {
            let mut end = pi;
            loop {
                if match_tokens(tokens, path, ti + 1, end, memo) {
                    break true;
                }
                match path.get(end) {
                    Some(&c) if c != '/' => end += 1,
                    _ => break false,
                }
            }
        }
        Some(Token::AnyDirs) => {
            // `(.*/)?`: nothing, or any run of non-newline characters that
            // ends with a `/` (Go's `.` does not match a newline).
            if match_tokens(tokens, path, ti + 1, pi, memo) {
                true
            } else {
                let mut found = false;
                let mut end = pi;
                while let Some(&c) = path.get(end) {
                    if c == '\n' {
                        break;
                    }
                    end += 1;
                    if c == '/' && match_tokens(tokens, path, ti + 1, end, memo) {
                        found = true;
                        break;
                    }
                }
                found
            }
        }
        Some(Token::StartAnchor) => pi == 0 && match_tokens(tokens, path, ti + 1, pi, memo),
        Some(Token::AnyRest) => {
            let mut end = pi;
            loop {
                if match_tokens(tokens, path, ti + 1, end, memo) {
                    break true;
                }
                match path.get(end) {
                    Some(&c) if c != '\n' => end += 1,
                    _ => break false,
                }
            }
        }
    };
    memo[key] = Some(result);
    result
}

/// The rules of one `.dockerignore` file.
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    patterns: Vec<Pattern>,
}

impl IgnoreRules {
    /// Parses the text of a `.dockerignore` file.
    ///
    /// Fails on a malformed pattern (such as an unterminated `[`) or on an
    /// exception with nothing after the `!`, naming the line and pattern.
    pub fn parse(text: &str) -> Result<IgnoreRules, IgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (index, raw) in text.split('\n').enumerate() {
            let line = index + 1;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            if let Some(pattern) = read_line(raw) {
                patterns.push(compile(&pattern).map_err(|message| IgnoreError { line, message })?);
            }
        }
        Ok(IgnoreRules { patterns })
    }

    /// Whether there are no patterns at all (nothing is ever excluded).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether the context path `path` (relative, '/'-separated) is left out.
    ///
    /// A pattern matches a path if it matches the path itself or any of its
    /// parent directories; the last matching pattern decides. The context
    /// root itself (`""` or `"."`) is never excluded.
    pub fn excluded(&self, path: &str) -> bool {
        let path = normalize_path(path);
        if path == "." || self.patterns.is_empty() {
            return false;
        }
        let parents: Vec<&str> = match path.rfind('/') {
            Some(idx) => {
                let parent = &path[..idx];
                parent
                    .char_indices()
                    .filter(|&(_, c)| c == '/')
                    .map(|(i, _)| &parent[..i])
                    .chain(std::iter::once(parent))
                    .collect()
            }
            None => Vec::new(),
        };
        let mut matched = false;
        for pattern in &self.patterns {
            // Same as "last matching pattern wins", but skips patterns that
            // cannot change the outcome (as patternmatcher does).
            if pattern.exception != matched {
                continue;
            }
            let hit = pattern.matches(&path) || parents.iter().any(|p| pattern.matches(p));
            if hit {
                matched = !pattern.exception;
            }
        }
        matched
    }

    /// Whether a walker must still descend into the excluded directory `dir`,
    /// because an exception pattern could re-include something below it
    /// (Docker walks such directories; otherwise it skips them).
    ///
    /// This follows BuildKit's file walker (fsutil): with no exception
    /// patterns, never; when any exception pattern (less a trailing `/**` or
    /// `/*`) contains wildcard characters, always; otherwise only when an
    /// exception pattern names `dir` or a path below it.
    pub fn must_descend(&self, dir: &str) -> bool {
        let dir = normalize_path(dir);
        let mut exceptions = self.patterns.iter().filter(|p| p.exception).peekable();
        if exceptions.peek().is_none() {
            return false;
        }
        let exceptions: Vec<&Pattern> = exceptions.collect();
        let has_glob = exceptions.iter().any(|p| {
            p.without_trailing_glob()
                .contains(['*', '[', ']', '?', '^', '\\'])
        });
        if has_glob {
            return true;
        }
        let dir_slash = if dir == "." {
            String::new()
        } else {
            format!("{dir}/")
        };
        exceptions
            .iter()
            .any(|p| format!("{}/", p.without_trailing_glob()).starts_with(&dir_slash))
    }
}

/// Applies the CLI's `ReadAll` rules to one line; `None` for comments and
/// blank lines. The result keeps a leading `!` for exceptions.
fn read_line(raw: &str) -> Option<String> {
    if raw.starts_with('#') {
        return None;
    }
    let mut pattern = raw.trim();
    if pattern.is_empty() {
        return None;
    }
    let invert = pattern.starts_with('!');
    if invert {
        pattern = pattern[1..].trim();
    }
    let mut out = String::new();
    if !pattern.is_empty() {
        let cleaned = clean(pattern);
        let cleaned = if cleaned.len() > 1 && cleaned.starts_with('/') {
            cleaned[1..].to_string()
        } else {
            cleaned
        };
        out = cleaned;
    }
    if invert {
        out.insert(0, '!');
    }
    Some(out)
}

/// Compiles one pattern line as patternmatcher's `New` does (trim, clean,
/// split off the `!`, check syntax, pick the match kind).
fn compile(line: &str) -> Result<Pattern, String> {
    let p = clean(line.trim());
    let (exception, text) = match p.strip_prefix('!') {
        Some("") => return Err("illegal exclusion pattern: \"!\"".to_string()),
        Some(rest) => (true, rest.to_string()),
        None => (false, p),
    };
    let kind = build_kind(&text).map_err(|why| format!("{why} in pattern {text:?}"))?;
    Ok(Pattern {
        text,
        exception,
        kind,
    })
}

/// Parses a `[...]` class starting just after the `[`; returns the token and
/// the index just after the closing `]`. Follows Go's `filepath.Match`
/// syntax rules (a class needs at least one range; `-` and `]` must be
/// escaped where they could be ambiguous).
fn parse_class(chars: &[char], mut i: usize) -> Result<(Token, usize), String> {
    const BAD: &str = "syntax error";
    let mut negated = false;
    if chars.get(i) == Some(&'^') {
        negated = true;
        i += 1;
    }
    let mut ranges = Vec::new();
    // Reads one (possibly escaped) class character, as Go's getEsc does.
    let get_esc = |i: &mut usize| -> Result<char, String> {
        let mut c = match chars.get(*i) {
            None | Some('-') | Some(']') => return Err(BAD.to_string()),
            Some(&c) => c,
        };
        if c == '\\' {
            *i += 1;
            c = *chars.get(*i).ok_or_else(|| BAD.to_string())?;
        }
        *i += 1;
        if *i >= chars.len() {
            return Err(BAD.to_string());
        }
        Ok(c)
    };
    loop {
        if chars.get(i) == Some(&']') && !ranges.is_empty() {
            return Ok((Token::Class { negated, ranges }, i + 1));
        }
        let lo = get_esc(&mut i)?;
        let mut hi = lo;
        if chars.get(i) == Some(&'-') {
            i += 1;
            hi = get_esc(&mut i)?;
        }
        if lo > hi {
            return Err("invalid character class range".to_string());
        }
        ranges.push((lo, hi));
    }
}

/// Turns a cleaned pattern into its match kind, mirroring patternmatcher's
/// `compile` (including its exact/prefix/suffix fast paths).
fn build_kind(text: &str) -> Result<Kind, String> {
    #[derive(PartialEq)]
    enum Detected {
        Exact,
        Prefix,
        Suffix,
        General,
    }
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut detected = Detected::Exact;
    let mut i = 0;
    let mut first = true;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        match ch {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i >= chars.len() {
                    if detected == Detected::Exact {
                        detected = Detected::Prefix;
                    } else {
                        tokens.push(Token::AnyRest);
                        detected = Detected::General;
                    }
                } else {
                    tokens.push(Token::AnyDirs);
                    detected = Detected::General;
                }
                if first {
                    detected = Detected::Suffix;
                }
            }
            '*' => {
                tokens.push(Token::Star);
                detected = Detected::General;
            }
            '?' => {
                tokens.push(Token::Any);
                detected = Detected::General;
            }
            '\\' => match chars.get(i) {
                Some(&next) => {
                    i += 1;
                    tokens.push(Token::Lit(next));
                    detected = Detected::General;
                }
                None => return Err("syntax error".to_string()),
            },
            '[' => {
                let (token, next) = parse_class(&chars, i)?;
                tokens.push(token);
                i = next;
                detected = Detected::General;
            }
            ']' => {
                tokens.push(Token::Lit(']'));
                detected = Detected::General;
            }
            // Does not by itself leave the exact/prefix/suffix fast paths,
            // where it is compared literally (as in patternmatcher).
            '^' => tokens.push(Token::StartAnchor),
            c => tokens.push(Token::Lit(c)),
        }
        first = false;
    }
    Ok(match detected {
        Detected::Exact => Kind::Exact,
        // Only reachable when the pattern is literal text plus a final `**`.
        Detected::Prefix => Kind::Prefix(text[..text.len() - 2].to_string()),
        Detected::Suffix => Kind::Suffix(text[2..].to_string()),
        Detected::General => Kind::General(tokens),
    })
}

/// Whether the file name `name` matches the glob `pattern`, as Go's
/// `filepath.Match` matches one path component: COPY's wildcards.
pub fn component_match(pattern: &str, name: &str) -> bool {
    let Ok(kind) = build_kind(pattern) else {
        return false;
    };
    Pattern {
        text: pattern.to_owned(),
        exception: false,
        kind,
    }
    .matches(name)
}

/// Normalises a context path for matching: cleaned, without a leading `/`.
fn normalize_path(path: &str) -> String {
    let cleaned = clean(path);
    match cleaned.strip_prefix('/') {
        Some("") => ".".to_string(),
        Some(rest) => rest.to_string(),
        None => cleaned,
    }
}

/// Lexical path cleaning with the semantics of Go's `filepath.Clean` on Unix.
fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ => {
                    if !rooted {
                        parts.push("..");
                    }
                }
            },
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_string()
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> IgnoreRules {
        IgnoreRules::parse(text).unwrap_or_else(|e| panic!("parse {text:?}: {e}"))
    }

    fn one(pattern: &str, path: &str) -> bool {
        rules(pattern).excluded(path)
    }

    /// Checks (pattern, path, excluded) rows, one pattern at a time.
    fn table(cases: &[(&str, &str, bool)]) {
        for &(pattern, path, want) in cases {
            assert_eq!(
                one(pattern, path),
                want,
                "pattern {pattern:?} path {path:?}"
            );
        }
    }

    #[test]
    fn clean_like_go() {
        for (input, want) in [
            ("", "."),
            (".", "."),
            ("./", "."),
            ("/", "/"),
            ("//", "/"),
            ("a/", "a"),
            ("./a", "a"),
            ("a//b", "a/b"),
            ("a/./b", "a/b"),
            ("a/../b", "b"),
            ("a/..", "."),
            ("../a", "../a"),
            ("../../a/..", "../.."),
            ("/../a", "/a"),
            ("/a/b/../../..", "/"),
            ("**/", "**"),
            ("!foo/../bar", "bar"),
        ] {
            assert_eq!(clean(input), want, "clean({input:?})");
        }
    }

    #[test]
    fn reading_rules() {
        let text =
            "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n";
        let r = rules(text);
        let texts: Vec<(bool, &str)> = r
            .patterns
            .iter()
            .map(|p| (p.exception, p.text.as_str()))
            .collect();
        assert_eq!(
            texts,
            vec![
                (false, "test1"),
                (false, "test2"),
                (false, "a/file/here"),
                (false, "lastfile"),
                (true, "inverted/abs/path"),
            ]
        );
        assert!(!r.is_empty());
    }

    #[test]
    fn empty_and_comment_only() {
        assert!(rules("").is_empty());
        assert!(rules("\n\n   \n# c\n#another\n").is_empty());
        assert!(!rules("").excluded("anything"));
    }

    #[test]
    fn comments_only_at_column_zero() {
        // Docker checks for `#` before trimming, so an indented `#` is a pattern.
        let r = rules("  # not a comment");
        assert!(!r.is_empty());
        assert!(r.excluded("# not a comment"));
        assert!(rules("#foo").is_empty());
        assert!(!rules("#foo\n").excluded("#foo"));
    }

    #[test]
    fn bom_crlf_and_whitespace() {
        let r = rules("\u{feff}foo\r\n  bar  \r\n\t!baz\t\r\n");
        assert!(r.excluded("foo"));
        assert!(r.excluded("bar"));
        assert!(!r.excluded("baz"));
        assert_eq!(r.patterns.len(), 3);
    }

    #[test]
    fn leading_slash_and_cleaning() {
        assert!(one("/foo", "foo"));
        assert!(one("/foo/bar", "foo/bar"));
        assert!(one("foo/", "foo/x"));
        assert!(one("./foo", "foo"));
        assert!(one("foo//bar/", "foo/bar"));
        assert!(one("foo/../bar", "bar"));
        assert!(!one("foo/../bar", "foo"));
        let r = rules("*\n! /keep");
        assert!(!r.excluded("keep"));
        assert!(r.excluded("other"));
    }

    #[test]
    fn dot_and_root_patterns_match_nothing() {
        for pattern in [".", "./", "/", "//"] {
            let r = rules(pattern);
            assert!(!r.is_empty());
            assert!(!r.excluded("foo"), "{pattern}");
            assert!(!r.excluded("foo/bar"), "{pattern}");
        }
        // The root itself is never excluded.
        assert!(!rules("**").excluded("."));
        assert!(!rules("*").excluded(""));
    }

    #[test]
    fn docs_example_star_slash_temp() {
        let r = rules("# comment\n*/temp*\n*/*/temp*\ntemp?\n");
        assert!(r.excluded("somedir/temporary.txt"));
        assert!(r.excluded("somedir/temp"));
        assert!(r.excluded("somedir/temp/inner/file"));
        assert!(r.excluded("somedir/subdir/temporary.txt"));
        assert!(r.excluded("tempa"));
        assert!(r.excluded("tempb"));
        assert!(!r.excluded("temp"));
        assert!(!r.excluded("tempab"));
        assert!(!r.excluded("temporary.txt"));
        assert!(!r.excluded("a/b/c/temporary.txt"));
        assert!(!r.excluded("comment"));
        assert!(!r.excluded("# comment"));
    }

    #[test]
    fn docs_example_double_star_go() {
        let r = rules("**/*.go");
        assert!(r.excluded("main.go"));
        assert!(r.excluded("a/main.go"));
        assert!(r.excluded("a/b/c/main.go"));
        assert!(!r.excluded("main.go.txt"));
        assert!(!r.excluded("a/main.rs"));
    }

    #[test]
    fn docs_example_markdown_exceptions() {
        let r = rules("*.md\n!README.md");
        assert!(r.excluded("CHANGELOG.md"));
        assert!(!r.excluded("README.md"));
        // `*` does not cross directories.
        assert!(!r.excluded("docs/guide.md"));

        let r = rules("*.md\n!README*.md\nREADME-secret.md");
        assert!(r.excluded("CHANGELOG.md"));
        assert!(!r.excluded("README.md"));
        assert!(!r.excluded("README-public.md"));
        assert!(r.excluded("README-secret.md"));

        let r = rules("*.md\nREADME-secret.md\n!README*.md");
        assert!(r.excluded("CHANGELOG.md"));
        assert!(!r.excluded("README.md"));
        assert!(!r.excluded("README-secret.md"));
    }

    #[test]
    fn parent_directory_matching() {
        let r = rules("node_modules");
        assert!(r.excluded("node_modules"));
        assert!(r.excluded("node_modules/x"));
        assert!(r.excluded("node_modules/x/y"));
        assert!(!r.excluded("src/node_modules"));
        assert!(!r.excluded("node_modules2"));

        let r = rules("docs\n!docs/README.md");
        assert!(r.excluded("docs/other.md"));
        assert!(!r.excluded("docs/README.md"));

        let r = rules("docs/*\n!docs/README.md");
        assert!(!r.excluded("docs/README.md"));
        assert!(r.excluded("docs/a/b"));
        assert!(!r.excluded("docs"));

        // An exception for a directory re-includes everything below it.
        let r = rules("**\n!src");
        assert!(!r.excluded("src/main.rs"));
        assert!(r.excluded("target/debug"));

        let r = rules("**\n!util/docker/web");
        assert!(!r.excluded("util/docker/web/foo"));
        let r = rules("**\n!util/docker/web\nutil/docker/web/foo");
        assert!(r.excluded("util/docker/web/foo"));
        assert!(r.excluded("util/docker/web/foo/bar"));
        assert!(!r.excluded("util/docker/web/bar"));
    }

    #[test]
    fn order_matters() {
        assert!(rules("!fileutils.go\n*.go").excluded("fileutils.go"));
        assert!(!rules("*.go\n!fileutils.go").excluded("fileutils.go"));
        assert!(rules("*.go\n!fileutils.go\nfileutils.go").excluded("fileutils.go"));
    }

    #[test]
    fn path_normalisation() {
        let r = rules("foo/bar");
        assert!(r.excluded("./foo/bar"));
        assert!(r.excluded("/foo/bar"));
        assert!(r.excluded("foo//bar"));
        assert!(r.excluded("foo/bar/"));
    }

    /// Single-pattern cases from patternmatcher's own test table.
    #[test]
    fn patternmatcher_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("**", "file", true),
            ("**", "file/", true),
            ("**/", "file", true),
            ("**/", "file/", true),
            ("**", "dir/file", true),
            ("**/", "dir/file", true),
            ("**/**", "dir/file", true),
            ("**/**", "dir/file/", true),
            ("dir/**", "dir/file", true),
            ("dir/**", "dir/dir2/file", true),
            ("**/dir", "dir", true),
            ("**/dir", "dir/file", true),
            ("**/dir2/*", "dir/dir2/file", true),
            ("**/dir2/**", "dir/dir2/dir3/file", true),
            ("**file", "file", true),
            ("**file", "dir/file", true),
            ("**/file", "dir/file", true),
            ("**file", "dir/dir/file", true),
            ("**/file", "dir/dir/file", true),
            ("**/file*", "dir/dir/file", true),
            ("**/file*", "dir/dir/file.txt", true),
            ("**/file*txt", "dir/dir/file.txt", true),
            ("**/file*.txt", "dir/dir/file.txt", true),
            ("**/file*.txt*", "dir/dir/file.txt", true),
            ("**/**/*.txt", "dir/dir/file.txt", true),
            ("**/**/*.txt2", "dir/dir/file.txt", false),
            ("**/*.txt", "file.txt", true),
            ("**/**/*.txt", "file.txt", true),
            ("a**/*.txt", "a/file.txt", true),
            ("a**/*.txt", "a/dir/file.txt", true),
            ("a**/*.txt", "a/dir/dir/file.txt", true),
            ("a/*.txt", "a/dir/file.txt", false),
            ("a/*.txt", "a/file.txt", true),
            ("a/*.txt**", "a/file.txt", true),
            ("a[b-d]e", "ae", false),
            ("a[b-d]e", "ace", true),
            ("a[b-d]e", "aae", false),
            ("a[^b-d]e", "aze", true),
            (".*", ".foo", true),
            (".*", "foo", false),
            ("abc.def", "abcdef", false),
            ("abc.def", "abc.def", true),
            ("abc.def", "abcZdef", false),
            ("abc?def", "abcZdef", true),
            ("abc?def", "abcdef", false),
            ("a\\\\", "a\\", true),
            ("**/foo/bar", "foo/bar", true),
            ("**/foo/bar", "dir/foo/bar", true),
            ("**/foo/bar", "dir/dir2/foo/bar", true),
            ("abc/**", "abc", false),
            ("abc/**", "abc/def", true),
            ("abc/**", "abc/def/ghi", true),
            ("**/.foo", ".foo", true),
            ("**/.foo", "bar.foo", false),
            ("a(b)c/def", "a(b)c/def", true),
            ("a(b)c/def", "a(b)c/xyz", false),
            ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
            (
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            (
                "dist/*.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
        ];
        table(cases);
    }

    /// Cases adapted from Go's filepath.Match tests (as used by patternmatcher).
    #[test]
    fn go_match_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", true), // parent "ab" matches
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("a[^a][^a][^a]b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "x", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("[\\-x]", "x", true),
            ("[\\-x]", "-", true),
            ("[\\-x]", "a", false),
            ("*x", "xxx", true),
        ];
        table(cases);
    }

    #[test]
    fn character_classes_and_escapes() {
        assert!(one("file[0-9].txt", "file3.txt"));
        assert!(!one("file[0-9].txt", "filex.txt"));
        assert!(one("file[^0-9].txt", "filex.txt"));
        assert!(!one("file[^0-9].txt", "file3.txt"));
        assert!(one("[abc]", "b"));
        assert!(!one("[abc]", "d"));
        assert!(one("[a-cx-z]", "y"));
        // Go's filepath.Match only negates with `^`; `!` is an ordinary member.
        assert!(one("[!a]", "!"));
        assert!(one("[!a]", "a"));
        assert!(!one("[!a]", "b"));
        // Escapes make wildcards literal.
        assert!(one("\\?", "?"));
        assert!(!one("\\?", "x"));
        assert!(one("\\[a]", "[a]"));
        assert!(one("x\\]", "x]"));
        assert!(one("a]", "a]"));
        assert!(one("\\!keep", "!keep"));
        assert!(one("[*]", "*"));
        assert!(!one("[*]", "x"));
    }

    #[test]
    fn double_star_positions() {
        // start
        assert!(one("**/foo", "foo"));
        assert!(one("**/foo", "a/b/foo"));
        assert!(one("**/foo", "a/b/foo/c"));
        assert!(!one("**/foo", "a/bfoo"));
        // middle
        assert!(one("a/**/b", "a/b"));
        assert!(one("a/**/b", "a/x/b"));
        assert!(one("a/**/b", "a/x/y/z/b"));
        assert!(one("a/**/b", "a/x/b/c"));
        assert!(!one("a/**/b", "a/xb"));
        assert!(!one("a/**/b", "x/a/b"));
        // end
        assert!(one("a/**", "a/b"));
        assert!(one("a/**", "a/b/c"));
        assert!(!one("a/**", "a"));
        assert!(one("a**", "abc/d"));
        assert!(one("a*/**", "ab/c"));
        assert!(!one("a*/**", "ab"));
        // everything
        assert!(one("**", "x"));
        assert!(one("**", "x/y/z"));
        assert!(one("**/*", "x/y"));
        // `**` not followed by `/` in the middle only matches whole segments.
        assert!(one("a**b", "ab"));
        assert!(one("a**b", "ax/b"));
        assert!(!one("a**b", "axb"));
        // `**` followed by literal text only: plain suffix test.
        assert!(one("**file", "dirfile"));
        // Mixed wildcards after a leading `**`.
        assert!(one("**/*.go", "x.go"));
        assert!(one("**/src/**/*.rs", "src/lib.rs"));
        assert!(one("**/src/**/*.rs", "a/src/b/c/lib.rs"));
        assert!(!one("**/src/**/*.rs", "a/src/b/c/lib.go"));
    }

    #[test]
    fn caret_outside_class_is_a_start_anchor() {
        // patternmatcher copies `^` into its regexp unescaped: with other
        // wildcards it anchors at the start; in a literal pattern it is literal.
        assert!(one("a^b", "a^b"));
        assert!(!one("a^b*", "a^bc"));
        assert!(one("^a*", "abc"));
        assert!(one("*^*", "anything"));
    }

    #[test]
    fn star_does_not_cross_slash() {
        assert!(one("*/temp", "a/temp"));
        assert!(!one("*/temp", "a/b/temp"));
        assert!(!one("*.txt", "dir/a.txt"));
        assert!(one("*", "dir/a.txt"));
    }

    #[test]
    fn bad_patterns() {
        for (text, line) in [
            ("[", 1),
            ("ok\n\n[abc", 3),
            ("a[", 1),
            ("[]", 1),
            ("[^]", 1),
            ("[]a]", 1),
            ("[-a]", 1),
            ("[a-]", 1),
            ("[a", 1),
            ("[a-", 1),
            ("[a-b", 1),
            ("[\\", 1),
            ("[x-a]", 1),
            ("a\\", 1),
            ("# comment\nfoo\n!", 3),
            ("! ", 1),
            ("!/", 1),
            ("!   \n", 1),
            ("foo\n![", 2),
        ] {
            let err = IgnoreRules::parse(text).expect_err(text);
            assert_eq!(err.line, line, "{text:?}: {err}");
            assert!(err.to_string().contains(&format!("line {line}")));
        }
        let err = IgnoreRules::parse("ok\n  [abc  ").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("\"[abc\""), "{}", err.message);
        let err = IgnoreRules::parse("!").unwrap_err();
        assert!(err.message.contains("illegal exclusion pattern"));
    }

    #[test]
    fn exception_dot_is_allowed() {
        let r = rules("*\n!.");
        assert!(r.excluded("foo"));
    }

    #[test]
    fn must_descend_rules() {
        // No exceptions at all: never.
        let r = rules("node_modules\nbuild");
        assert!(!r.must_descend("node_modules"));

        // Literal exception below the directory.
        let r = rules("docs\n!docs/README.md");
        assert!(r.must_descend("docs"));
        assert!(!r.must_descend("other"));
        assert!(!r.must_descend("doc"));
        assert!(!r.must_descend("docs/README.md/x"));

        // Exception naming the directory itself.
        let r = rules("build\n!build");
        assert!(r.must_descend("build"));

        // Deeper exception: every ancestor must be walked.
        let r = rules("a\n!a/b/c/d");
        assert!(r.must_descend("a"));
        assert!(r.must_descend("a/b"));
        assert!(r.must_descend("a/b/c"));
        assert!(!r.must_descend("a/c"));

        // Trailing glob is ignored for the prefix test.
        let r = rules("vendor\n!vendor/keep/**");
        assert!(r.must_descend("vendor"));
        assert!(r.must_descend("vendor/keep"));
        assert!(!r.must_descend("vendor/drop"));
        let r = rules("vendor\n!vendor/*");
        assert!(r.must_descend("vendor"));

        // Any exception with wildcards: always descend.
        let r = rules("**\n!**/*.go");
        assert!(r.must_descend("anything"));
        let r = rules("x\n!a/[bc]");
        assert!(r.must_descend("zzz"));
    }

    #[test]
    fn error_display() {
        let e = IgnoreError {
            line: 4,
            message: "bad".into(),
        };
        assert_eq!(e.to_string(), ".dockerignore line 4: bad");
        let _: &dyn std::error::Error = &e;
    }

    #[test]
    fn non_ascii_and_long_paths() {
        assert!(one("안녕*", "안녕하세요"));
        assert!(one("?", "é"));
        let deep = "a/".repeat(200) + "x.go";
        assert!(one("**/*.go", &deep));
        assert!(!one("**/*.rs", &deep));
        // Many wildcards must not blow up.
        let long = "a".repeat(60);
        assert!(!one("*a*a*a*a*a*a*a*a*a*a*b", &long));
    }
}
