//! Dockerfile variable substitution and word splitting.
//!
//! This reproduces BuildKit's Dockerfile shell lexer
//! (`frontend/dockerfile/shell`, `Lex.ProcessWord` / `Lex.ProcessWords`):
//!
//! * `$NAME` and `${NAME}`, where a name is a run of letters, digits and `_`;
//!   a name starting with a digit is all the following digits (`$1x` is `$1`
//!   then `x`), and the special parameters `@ * # ? - $ !` are one-character
//!   names. A `$` that starts no name stays a literal `$`. Unset variables
//!   expand to nothing.
//! * `${NAME:-word}`, `${NAME-word}`, `${NAME:+word}`, `${NAME+word}`,
//!   `${NAME:?message}`, `${NAME?message}`, and the pattern forms
//!   `${NAME#pat}`, `${NAME##pat}`, `${NAME%pat}`, `${NAME%%pat}`,
//!   `${NAME/pat/repl}` and `${NAME//pat/repl}`; words are expanded in turn.
//!   Patterns support `*`, `?` and `\` escapes (no bracket expressions).
//! * Single quotes are literal and removed; double quotes are removed but
//!   expand variables inside; the escape character (`\` or `` ` ``) escapes
//!   the next character outside quotes, and only `$`, `"` and itself inside
//!   double quotes.
//!
//! [`Lexer::process_word`] returns one string (no splitting) plus the names
//! of the variables that were looked up; [`Lexer::process_words`] splits the
//! result on unquoted whitespace, including whitespace that comes from an
//! unquoted variable's value.

use std::fmt;

/// An error from variable substitution (bad syntax, unterminated quote or
/// `${`, or a `${NAME?message}` whose variable is unset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordError {
    /// The message, in BuildKit's wording: `failed to process "<word>": ...`.
    pub message: String,
}

impl fmt::Display for WordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for WordError {}

/// The result of [`Lexer::process_word`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expanded {
    /// The expanded word, quotes and escapes removed.
    pub value: String,
    /// Every variable name that was looked up, in order of first use, without
    /// duplicates (this includes names that turned out to be unset).
    pub used: Vec<String>,
    /// The names in `used` that were unset (the lookup returned `None`).
    pub unset: Vec<String>,
}

/// A Dockerfile word lexer, parameterised by the escape character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    escape: char,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer::new('\\')
    }
}

impl Lexer {
    /// A lexer using `escape` (`\` by default, `` ` `` after `# escape=``).
    pub fn new(escape: char) -> Lexer {
        Lexer { escape }
    }

    /// The escape character this lexer uses.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// Expands variables in `word` and removes quotes and escapes, returning
    /// a single string (whitespace is kept as is) and the variables used.
    ///
    /// `env` looks a variable up; `None` means unset.
    pub fn process_word(
        &self,
        word: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Expanded, WordError> {
        let mut state = State::new(self.escape, word, env);
        let (value, _) = state.run(word)?;
        Ok(Expanded {
            value,
            used: state.used,
            unset: state.unset,
        })
    }

    /// Expands `word` like [`Lexer::process_word`], then splits it into words
    /// on unquoted whitespace. Whitespace produced by an unquoted variable is
    /// a separator too; quoted text (even `"${VAR}"`) is kept whole. Empty
    /// words (such as `""`) are dropped.
    pub fn process_words(
        &self,
        word: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<String>, WordError> {
        let mut state = State::new(self.escape, word, env);
        let (_, words) = state.run(word)?;
        Ok(words)
    }
}

/// Word-splitting accumulator (BuildKit's `wordsStruct`).
#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    /// Adds a character that is subject to splitting.
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.buf.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        for ch in s.chars() {
            self.add_char(ch);
        }
    }

    fn add_raw_string(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(std::mem::take(&mut self.buf));
        }
        self.words
    }
}

/// One token of a `${VAR#pattern}`-style shell pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PatToken {
    Lit(char),
    /// `?`: one character (not a newline, like Go's `.`).
    Any,
    /// `*`: any run of characters (not newlines, like Go's `.*`).
    Star,
}

struct State<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    env: &'a dyn Fn(&str) -> Option<String>,
    used: Vec<String>,
    unset: Vec<String>,
}

type Res<T> = Result<T, String>;

impl<'a> State<'a> {
    fn new(escape: char, word: &str, env: &'a dyn Fn(&str) -> Option<String>) -> Self {
        State {
            chars: word.chars().collect(),
            pos: 0,
            escape,
            env,
            used: Vec::new(),
            unset: Vec::new(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let ch = self.peek();
        if ch.is_some() {
            self.pos += 1;
        }
        ch
    }

    fn run(&mut self, source: &str) -> Result<(String, Vec<String>), WordError> {
        self.process_stop_on(None, false).map_err(|e| WordError {
            message: format!("failed to process {source:?}: {e}"),
        })
    }

    fn get_env(&mut self, name: &str) -> Option<String> {
        let value = (self.env)(name);
        if !self.used.iter().any(|n| n == name) {
            self.used.push(name.to_string());
        }
        if value.is_none() && !self.unset.iter().any(|n| n == name) {
            self.unset.push(name.to_string());
        }
        value
    }

    /// Processes until `stop` (consumed) or the end of input. With
    /// `raw_escapes`, escape characters are kept in the output (used for
    /// pattern words, whose own escapes are interpreted later).
    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Res<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                    words.add_string(&value);
                }
                '<' => {
                    let text = self.process_possible_heredoc();
                    result.push_str(&text);
                    words.add_raw_string(&text);
                }
                '\'' => {
                    let text = self.process_single_quote()?;
                    result.push_str(&text);
                    words.add_raw_string(&text);
                }
                '"' => {
                    let text = self.process_double_quote(raw_escapes)?;
                    result.push_str(&text);
                    words.add_raw_string(&text);
                }
                _ => {
                    self.next();
                    if ch == self.escape {
                        if raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        // The escape escapes the next character; a trailing
                        // escape is dropped.
                        let Some(escaped) = self.next() else { break };
                        words.add_raw_char(escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
        }
        if let Some(stop) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        Ok((result, words.finish()))
    }

    fn process_single_quote(&mut self) -> Res<String> {
        self.next();
        let mut out = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .to_string(),
                    );
                }
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn process_double_quote(&mut self, raw_escapes: bool) -> Res<String> {
        self.next();
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .to_string(),
                    );
                }
                Some('"') => {
                    self.next();
                    return Ok(out);
                }
                Some('$') => {
                    let value = self.process_dollar()?;
                    out.push_str(&value);
                }
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.escape {
                        if raw_escapes {
                            out.push(ch);
                        }
                        match self.peek() {
                            // An escape right before the end: dropped (the
                            // missing quote is reported next time round).
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.escape => {
                                self.next();
                                ch = c;
                            }
                            // Any other escape stays as is.
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    fn process_possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".to_string();
        }
        self.next();
        let mut out = "<<".to_string();
        while let Some(c @ (' ' | '\t' | '\r')) = self.peek() {
            out.push(c);
            self.next();
        }
        out
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_numeric() {
                while let Some(d) = self.peek().filter(|c| c.is_numeric()) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            name.push(ch);
            self.next();
        }
        name
    }

    /// Wraps an error from a nested word: at the end of input it is reported
    /// as the missing terminator instead.
    fn nested_err(&self, err: String, at_end: &str) -> String {
        if self.peek().is_none() {
            at_end.to_string()
        } else {
            err
        }
    }

    fn process_dollar(&mut self) -> Res<String> {
        self.next(); // '$'
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(self.get_env(&name).unwrap_or_default());
        }
        self.next(); // '{'
        match self.peek() {
            None => return Err("syntax error: missing '}'".to_string()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".to_string()),
            Some(_) => {}
        }
        let name = self.process_name();
        let Some(ch) = self.next() else {
            return Err("syntax error: missing '}'".to_string());
        };
        match ch {
            '}' => Ok(self.get_env(&name).unwrap_or_default()),
            ':' | '+' | '-' | '?' | '#' | '%' => {
                let (null_is_unset, op, chs) = if ch == ':' {
                    let Some(op) = self.next() else {
                        return Err("syntax error: missing '}'".to_string());
                    };
                    (true, op, format!(":{op}"))
                } else {
                    (false, ch, ch.to_string())
                };
                let pattern_op = op == '#' || op == '%';
                if null_is_unset && pattern_op {
                    return Err(format!("unsupported modifier ({chs}) in substitution"));
                }
                let (word, _) = self
                    .process_stop_on(Some('}'), pattern_op)
                    .map_err(|e| self.nested_err(e, "syntax error: missing '}'"))?;
                let value = self.get_env(&name);
                let empty = match &value {
                    None => true,
                    Some(v) => null_is_unset && v.is_empty(),
                };
                match op {
                    '-' => Ok(if empty {
                        word
                    } else {
                        value.unwrap_or_default()
                    }),
                    '+' => Ok(if empty { String::new() } else { word }),
                    '?' => match value {
                        None => Err(format!(
                            "{name}: {}",
                            if word.is_empty() {
                                "is not allowed to be unset"
                            } else {
                                &word
                            }
                        )),
                        Some(v) if null_is_unset && v.is_empty() => Err(format!(
                            "{name}: {}",
                            if word.is_empty() {
                                "is not allowed to be empty"
                            } else {
                                &word
                            }
                        )),
                        Some(v) => Ok(v),
                    },
                    '#' | '%' => {
                        let value = value.unwrap_or_default();
                        let (greedy, pattern) = match word.strip_prefix(op) {
                            Some(rest) => (true, rest),
                            None => (false, word.as_str()),
                        };
                        let tokens = parse_pattern(pattern).map_err(|e| {
                            format!("invalid pattern ({pattern}) in substitution: {e}")
                        })?;
                        Ok(if op == '#' {
                            trim_prefix(&tokens, &value, greedy)
                        } else {
                            trim_suffix(&tokens, &value, greedy)
                        })
                    }
                    _ => Err(format!("unsupported modifier ({chs}) in substitution")),
                }
            }
            '/' => {
                let replace_all = self.peek() == Some('/');
                if replace_all {
                    self.next();
                }
                let (pattern, _) = self
                    .process_stop_on(Some('/'), true)
                    .map_err(|e| self.nested_err(e, "syntax error: missing '/' in ${}"))?;
                let (replacement, _) = self
                    .process_stop_on(Some('}'), true)
                    .map_err(|e| self.nested_err(e, "syntax error: missing '}'"))?;
                let value = self.get_env(&name).unwrap_or_default();
                let tokens = parse_pattern(&pattern)
                    .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
                Ok(replace(&tokens, &value, &replacement, replace_all))
            }
            other => Err(format!("unsupported modifier ({other}) in substitution")),
        }
    }
}

/// Parses a shell pattern as BuildKit does: `*`, `?`, and `\` escaping `*`,
/// `?` or `\`; a `\` before `}` or `/` is dropped (it only protected the
/// character from ending the `${...}`); any other escape is an error.
fn parse_pattern(pattern: &str) -> Res<Vec<PatToken>> {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '*' => tokens.push(PatToken::Star),
            '?' => tokens.push(PatToken::Any),
            '\\' => match chars.peek().copied() {
                Some('}' | '/') => {}
                Some(c @ ('*' | '?' | '\\')) => {
                    chars.next();
                    tokens.push(PatToken::Lit(c));
                }
                Some(c) => return Err(format!("invalid escape '\\{c}'")),
                None => return Err("invalid escape '\\' at end of pattern".to_string()),
            },
            c => tokens.push(PatToken::Lit(c)),
        }
    }
    Ok(tokens)
}

/// Every `end` such that `tokens` matches all of `text[start..end]`, in
/// increasing order (an NFA simulation, so it is linear per start).
fn match_ends(tokens: &[PatToken], text: &[char], start: usize) -> Vec<usize> {
    let n = tokens.len();
    let close = |set: &mut Vec<bool>| {
        for i in 0..n {
            if set[i] && tokens[i] == PatToken::Star {
                set[i + 1] = true;
            }
        }
    };
    let mut current = vec![false; n + 1];
    current[0] = true;
    close(&mut current);
    let mut ends = Vec::new();
    if current[n] {
        ends.push(start);
    }
    for (offset, &c) in text[start..].iter().enumerate() {
        let mut next = vec![false; n + 1];
        for i in 0..n {
            if !current[i] {
                continue;
            }
            match tokens[i] {
                PatToken::Lit(l) if l == c => next[i + 1] = true,
                PatToken::Any if c != '\n' => next[i + 1] = true,
                PatToken::Star if c != '\n' => next[i] = true,
                _ => {}
            }
        }
        close(&mut next);
        if !next.iter().any(|&s| s) {
            break;
        }
        current = next;
        if current[n] {
            ends.push(start + offset + 1);
        }
    }
    ends
}

/// `${VAR#pat}` (shortest) / `${VAR##pat}` (longest): removes a matching
/// prefix.
fn trim_prefix(tokens: &[PatToken], value: &str, greedy: bool) -> String {
    let chars: Vec<char> = value.chars().collect();
    let ends = match_ends(tokens, &chars, 0);
    let end = if greedy { ends.last() } else { ends.first() };
    match end {
        Some(&end) => chars[end..].iter().collect(),
        None => value.to_string(),
    }
}

/// `${VAR%pat}` (shortest) / `${VAR%%pat}` (longest): removes a matching
/// suffix, by matching the reversed pattern against the reversed value.
fn trim_suffix(tokens: &[PatToken], value: &str, greedy: bool) -> String {
    let reversed_tokens: Vec<PatToken> = tokens.iter().rev().copied().collect();
    let reversed: String = value.chars().rev().collect();
    trim_prefix(&reversed_tokens, &reversed, greedy)
        .chars()
        .rev()
        .collect()
}

/// `${VAR/pat/repl}` and `${VAR//pat/repl}`: replaces the first (or every)
/// leftmost-longest match of the pattern, like Go's regexp replacement
/// (an empty match right after a previous match is not replaced).
fn replace(tokens: &[PatToken], value: &str, replacement: &str, all: bool) -> String {
    let chars: Vec<char> = value.chars().collect();
    let find = |from: usize| -> Option<(usize, usize)> {
        (from..=chars.len()).find_map(|start| {
            match_ends(tokens, &chars, start)
                .last()
                .map(|&end| (start, end))
        })
    };
    let mut out = String::new();
    if !all {
        return match find(0) {
            Some((start, end)) => {
                out.extend(&chars[..start]);
                out.push_str(replacement);
                out.extend(&chars[end..]);
                out
            }
            None => value.to_string(),
        };
    }
    let mut last_end = 0;
    let mut search = 0;
    while search <= chars.len() {
        let Some((start, end)) = find(search) else {
            break;
        };
        out.extend(&chars[last_end..start]);
        // Like Go: no replacement for an empty match right after a match.
        if end > last_end || start == 0 {
            out.push_str(replacement);
        }
        last_end = end;
        search = if end > search { end } else { search + 1 };
    }
    out.extend(&chars[last_end..]);
    out
}

#[cfg(test)]
mod tests;
