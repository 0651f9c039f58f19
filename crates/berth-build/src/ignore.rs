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

/// A glob for one path component (Go's `filepath.Match`): COPY's
/// wildcards, compiled once for all the names of a directory.
pub struct ComponentGlob(Option<Pattern>);

impl ComponentGlob {
    /// Compiles `pattern`; a malformed one matches nothing.
    pub fn new(pattern: &str) -> ComponentGlob {
        ComponentGlob(build_kind(pattern).ok().map(|kind| Pattern {
            text: pattern.to_owned(),
            exception: false,
            kind,
        }))
    }

    /// Whether the file name `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        self.0.as_ref().is_some_and(|p| p.matches(name))
    }
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
mod tests;
