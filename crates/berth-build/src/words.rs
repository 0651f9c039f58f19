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
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn word_with(escape: char, input: &str, pairs: &[(&str, &str)]) -> Result<Expanded, WordError> {
        let env = env_of(pairs);
        Lexer::new(escape).process_word(input, &|k: &str| env.get(k).cloned())
    }

    fn word(input: &str, pairs: &[(&str, &str)]) -> Result<String, WordError> {
        word_with('\\', input, pairs).map(|e| e.value)
    }

    fn words(input: &str, pairs: &[(&str, &str)]) -> Result<Vec<String>, WordError> {
        let env = env_of(pairs);
        Lexer::new('\\').process_words(input, &|k: &str| env.get(k).cloned())
    }

    /// `(input, environment, expected)`.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

    const ENVVAR_ENV: &[(&str, &str)] = &[
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ];

    /// BuildKit's `envVarTest` cases (the Unix/"all" ones), with its env.
    const ENVVAR_TEST: &str = r#"
hello                    |     hello
he'll'o                  |     hello
he'llo                   |     error
he\'llo                  |     he'llo
he\\'llo                 |     error
abc\tdef                 |     abctdef
"abc\tdef"               |     abc\tdef
"abc\\tdef"              |     abc\tdef
'abc\tdef'               |     abc\tdef
hello\                   |     hello
hello\\                  |     hello\
"hello                   |     error
"hello\"                 |     error
"hel'lo"                 |     hel'lo
'hello                   |     error
'hello\'                 |     hello\
'hello\there'            |     hello\there
'hello\\there'           |     hello\\there
"''"                     |     ''
$.                       |     $.
he$1x                    |     hex
he$.x                    |     he$.x
he$pwd.                  |     he.
he$PWD                   |     he/home
he\$PWD                  |     he$PWD
he\\$PWD                 |     he\/home
"he\$PWD"                |     he$PWD
"he\\$PWD"               |     he\/home
\${}                     |     ${}
\${}aaa                  |     ${}aaa
he\${}                   |     he${}
he\${}xx                 |     he${}xx
${}                      |     error
${}aaa                   |     error
he${}                    |     error
he${}xx                  |     error
he${hi}                  |     he
he${hi}xx                |     hexx
he${PWD}                 |     he/home
he${.}                   |     error
he${XXX:-000}xx          |     he000xx
he${PWD:-000}xx          |     he/homexx
he${XXX:-$PWD}xx         |     he/homexx
he${XXX:-${PWD:-yyy}}xx  |     he/homexx
he${XXX:-${YYY:-yyy}}xx  |     heyyyxx
he${XXX:YYY}             |     error
he${XXX?}                |     error
he${XXX:?}               |     error
he${PWD?}                |     he/home
he${PWD:?}               |     he/home
he${NULL?}               |     he
he${NULL:?}              |     error
he${XXX:+${PWD}}xx       |     hexx
he${PWD:+${XXX}}xx       |     hexx
he${PWD:+${SHELL}}xx     |     hebashxx
he${XXX:+000}xx          |     hexx
he${PWD:+000}xx          |     he000xx
'he${XX}'                |     he${XX}
"he${PWD}"               |     he/home
"he'$PWD'"               |     he'/home'
"$PWD"                   |     /home
'$PWD'                   |     $PWD
'\$PWD'                  |     \$PWD
'"hello"'                |     "hello"
he\$PWD                  |     he$PWD
"he\$PWD"                |     he$PWD
'he\$PWD'                |     he\$PWD
he${PWD                  |     error
he${PWD:=000}xx          |     error
he${PWD:+${PWD}:}xx      |     he/home:xx
he${XXX:-\$PWD:}xx       |     he$PWD:xx
he${XXX:-\${PWD}z}xx     |     he${PWDz}xx
안녕하세요                 |     안녕하세요
안'녕'하세요               |     안녕하세요
안'녕하세요                |     error
안녕\'하세요               |     안녕'하세요
안\\'녕하세요              |     error
안녕\t하세요               |     안녕t하세요
"안녕\t하세요"             |     안녕\t하세요
'안녕\t하세요              |     error
안녕하세요\                |     안녕하세요
안녕하세요\\               |     안녕하세요\
"안녕하세요                |     error
"안녕하세요\"              |     error
"안녕'하세요"              |     안녕'하세요
'안녕하세요                |     error
'안녕하세요\'              |     안녕하세요\
안녕$1x                    |     안녕x
안녕$.x                    |     안녕$.x
안녕$pwd.                  |     안녕.
안녕$PWD                   |     안녕/home
안녕\$PWD                  |     안녕$PWD
안녕\\$PWD                 |     안녕\/home
안녕\${}                   |     안녕${}
안녕\${}xx                 |     안녕${}xx
안녕${}                    |     error
안녕${}xx                  |     error
안녕${hi}                  |     안녕
안녕${hi}xx                |     안녕xx
안녕${PWD}                 |     안녕/home
안녕${.}                   |     error
안녕${XXX:-000}xx          |     안녕000xx
안녕${PWD:-000}xx          |     안녕/homexx
안녕${XXX:-$PWD}xx         |     안녕/homexx
안녕${XXX:-${PWD:-yyy}}xx  |     안녕/homexx
안녕${XXX:-${YYY:-yyy}}xx  |     안녕yyyxx
안녕${XXX:YYY}             |     error
안녕${XXX:+${PWD}}xx       |     안녕xx
안녕${PWD:+${XXX}}xx       |     안녕xx
안녕${PWD:+${SHELL}}xx     |     안녕bashxx
안녕${XXX:+000}xx          |     안녕xx
안녕${PWD:+000}xx          |     안녕000xx
'안녕${XX}'                |     안녕${XX}
"안녕${PWD}"               |     안녕/home
"안녕'$PWD'"               |     안녕'/home'
'"안녕"'                   |     "안녕"
안녕\$PWD                  |     안녕$PWD
"안녕\$PWD"                |     안녕$PWD
'안녕\$PWD'                |     안녕\$PWD
안녕${PWD                  |     error
안녕${PWD:=000}xx          |     error
안녕${PWD:+${PWD}:}xx      |     안녕/home:xx
안녕${XXX:-\$PWD:}xx       |     안녕$PWD:xx
안녕${XXX:-\${PWD}z}xx     |     안녕${PWDz}xx
$KOREAN                    |     한국어
안녕$KOREAN                |     안녕한국어
${{aaa}                   |     error
${aaa}}                   |     }
${aaa                     |     error
${{aaa:-bbb}              |     error
${aaa:-bbb}}              |     bbb}
${aaa:-bbb                |     error
${aaa:-bbb}               |     bbb
${aaa:-${bbb:-ccc}}       |     ccc
${aaa:-bbb ${foo}         |     error
${aaa:-bbb {foo}          |     bbb {foo
${:}                      |     error
${:-bbb}                  |     error
${:+bbb}                  |     error
$1                        |
${1}                      |
${1:+bbb}                 |
${1:-bbb}                 |     bbb
$9                        |
${9}                      |
${9:+bbb}                 |
${9:-bbb}                 |     bbb
$999                      |
${999}                    |
${999:+bbb}               |
${999:-bbb}               |     bbb
$999aaa                   |     aaa
${999}aaa                 |     aaa
${999:+bbb}aaa            |     aaa
${999:-bbb}aaa            |     bbbaaa
$001                      |
${001}                    |
${001:+bbb}               |
${001:-bbb}               |     bbb
$001aaa                   |     aaa
${001}aaa                 |     aaa
${001:+bbb}aaa            |     aaa
${001:-bbb}aaa            |     bbbaaa
$@                        |
${@}                      |
${@:+bbb}                 |
${@:-bbb}                 |     bbb
$@@@                      |     @@
$@aaa                     |     aaa
${@}aaa                   |     aaa
${@:+bbb}aaa              |     aaa
${@:-bbb}aaa              |     bbbaaa
$*                        |
${*}                      |
${*:+bbb}                 |
${*:-bbb}                 |     bbb
$#                        |
${#}                      |
${#:+bbb}                 |
${#:-bbb}                 |     bbb
$?                        |
${?}                      |
${?:+bbb}                 |
${?:-bbb}                 |     bbb
$-                        |
${-}                      |
${-:+bbb}                 |
${-:-bbb}                 |     bbb
$$                        |
${$}                      |
${$:+bbb}                 |
${$:-bbb}                 |     bbb
$!                        |
${!}                      |
${!:+bbb}                 |
${!:-bbb}                 |     bbb
$0                        |
${0}                      |
${0:+bbb}                 |
${0:-bbb}                 |     bbb
"#;

    #[test]
    fn buildkit_envvar_test_data() {
        let mut count = 0;
        for line in ENVVAR_TEST.lines() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (source, expected) = line.split_once('|').unwrap();
            let (source, expected) = (source.trim(), expected.trim());
            let got = word(source, ENVVAR_ENV);
            if expected == "error" {
                assert!(got.is_err(), "{source:?} should fail, got {got:?}");
            } else {
                assert_eq!(got.as_deref(), Ok(expected), "input {source:?}");
            }
            count += 1;
        }
        assert!(count >= 200, "{count}");
    }

    /// BuildKit's `wordsTest` cases for `process_words` (`,` separates words).
    #[test]
    fn buildkit_words_test_data() {
        let data: &[Case] = &[
            ("hello", &[], "hello"),
            ("hello${hi}bye", &[], "hellobye"),
            ("hello${hi}bye", &[("hi", "hi")], "hellohibye"),
            (
                "hello${space}bye",
                &[("space", "abc  def")],
                "helloabc,defbye",
            ),
            (
                "hello\"${space}\"bye",
                &[("space", "abc  def")],
                "helloabc  defbye",
            ),
            (
                "hello \"${space}\"bye",
                &[("space", "abc  def")],
                "hello,abc  defbye",
            ),
            (
                "hello${leading}def",
                &[("leading", "  ab c")],
                "hello,ab,cdef",
            ),
            (
                "hello\"${leading}\" def",
                &[("leading", "  ab c")],
                "hello  ab c,def",
            ),
            (
                "hello\"${leading}\"",
                &[("leading", "  ab c")],
                "hello  ab c",
            ),
            ("hello${leading}", &[("leading", "  ab c")], "hello,ab,c"),
            ("hello${trailing}", &[("trailing", "ab c   ")], "helloab,c"),
            (
                "hello${trailing}d",
                &[("trailing", "ab c   ")],
                "helloab,c,d",
            ),
            (
                "hello\"${trailing}\"d",
                &[("trailing", "ab c   ")],
                "helloab c   d",
            ),
            (
                "hel\"lo${trailing}\"",
                &[("trailing", "ab c   ")],
                "helloab c   ",
            ),
            ("hello\" there  \"", &[], "hello there  "),
            ("hello there     ", &[], "hello,there"),
            ("hello\\ there", &[], "hello there"),
            ("hello\" there", &[], "error"),
            ("hello\\\" there", &[], "hello\",there"),
            ("hello\"\\\\there\"", &[], "hello\\there"),
            ("hello\"\\there\"", &[], "hello\\there"),
            ("hello'\\\\there'", &[], "hello\\\\there"),
            ("hello'\\there'", &[], "hello\\there"),
            ("hello'$there'", &[], "hello$there"),
        ];
        for &(input, env, expected) in data {
            let got = match words(input, env) {
                Ok(w) => w.join(","),
                Err(_) => "error".to_string(),
            };
            assert_eq!(got, expected, "input {input:?}");
        }
    }

    #[test]
    fn words_edge_cases() {
        assert_eq!(words("", &[]).unwrap(), Vec::<String>::new());
        assert_eq!(words("   ", &[]).unwrap(), Vec::<String>::new());
        assert_eq!(words("\"\"", &[]).unwrap(), Vec::<String>::new());
        assert_eq!(words("a \"\" b", &[]).unwrap(), vec!["a", "b"]);
        assert_eq!(words("a\tb\nc", &[]).unwrap(), vec!["a", "b", "c"]);
        assert_eq!(words("'a b' c", &[]).unwrap(), vec!["a b", "c"]);
        assert_eq!(words("$X", &[("X", "  ")]).unwrap(), Vec::<String>::new());
        // The value of a modifier word is split when unquoted...
        assert_eq!(words("${U:-a b}", &[]).unwrap(), vec!["a", "b"]);
        // ...even when the word itself had quotes (they are consumed inside).
        assert_eq!(words("${U:-\"a b\"}", &[]).unwrap(), vec!["a", "b"]);
        assert_eq!(words("\"${U:-a b}\"", &[]).unwrap(), vec!["a b"]);
        // Text before a modifier expansion is kept in the same word.
        assert_eq!(words("foo${U:-bar}", &[]).unwrap(), vec!["foobar"]);
        assert_eq!(
            words("x foo${U:-bar}baz y", &[]).unwrap(),
            vec!["x", "foobarbaz", "y"]
        );
        assert_eq!(
            words("80/tcp ${P:-443}", &[]).unwrap(),
            vec!["80/tcp", "443"]
        );
        assert!(words("${", &[]).is_err());
    }

    #[test]
    fn mandatory_env_vars() {
        let no_empty = "${VAR:?message here$ARG}";
        let no_unset = "${VAR?message here$ARG}";
        let set = [("VAR", "plain"), ("ARG", "x")];
        let empty = [("VAR", ""), ("ARG", "x")];
        let unset = [("ARG", "x")];

        assert_eq!(word(no_empty, &set).unwrap(), "plain");
        let e = word(no_empty, &empty).unwrap_err();
        assert!(e.message.contains("VAR: message herex"), "{e}");
        let e = word(no_empty, &unset).unwrap_err();
        assert!(e.message.contains("VAR: message herex"), "{e}");

        assert_eq!(word(no_unset, &set).unwrap(), "plain");
        assert_eq!(word(no_unset, &empty).unwrap(), "");
        let e = word(no_unset, &unset).unwrap_err();
        assert!(e.message.contains("message herex"), "{e}");

        let e = word("${V?}", &[]).unwrap_err();
        assert!(e.message.contains("V: is not allowed to be unset"), "{e}");
        let e = word("${V:?}", &[("V", "")]).unwrap_err();
        assert!(e.message.contains("V: is not allowed to be empty"), "{e}");
        assert_eq!(
            e.message,
            "failed to process \"${V:?}\": V: is not allowed to be empty"
        );
    }

    #[test]
    fn used_and_unset_tracking() {
        let e = word_with('\\', "x", &[("DUMMY", "d")]).unwrap();
        assert!(e.used.is_empty() && e.unset.is_empty());

        let e = word_with('\\', "x ${UNUSED}", &[]).unwrap();
        assert_eq!(e.value, "x ");
        assert_eq!(e.used, vec!["UNUSED"]);
        assert_eq!(e.unset, vec!["UNUSED"]);

        let env = [("FOO", "xxx"), ("BAR", "")];
        let e = word_with('\\', "${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", &env).unwrap();
        assert_eq!(e.value, "xxx  ccc");
        assert_eq!(e.used, vec!["FOO", "BAR", "BAZ"]);
        assert_eq!(e.unset, vec!["BAZ"]);

        let e = word_with('\\', "${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", &env).unwrap();
        assert_eq!(e.value, "xxx bbb ccc");
        let e = word_with('\\', "${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", &env).unwrap();
        assert_eq!(e.value, "aaa bbb ");
        let e = word_with('\\', "${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", &env).unwrap();
        assert_eq!(e.value, "aaa  ");
        assert_eq!(e.unset, vec!["BAZ"]);

        // Duplicates are reported once; names inside modifier words count.
        let e = word_with('\\', "$A$A${A:-$B}${C:+$D}", &[("A", "1")]).unwrap();
        assert_eq!(e.value, "111");
        // A modifier's word is expanded before the variable is looked up.
        assert_eq!(e.used, vec!["A", "B", "D", "C"]);
        assert_eq!(e.unset, vec!["B", "D", "C"]);

        // Names in single quotes or escaped are not looked up.
        let e = word_with('\\', "'$A' \\$B", &[]).unwrap();
        assert!(e.used.is_empty());
        assert_eq!(e.value, "$A $B");
    }

    #[test]
    fn unsupported_modifiers() {
        for input in [
            "${FOO=aaa}",
            "${FOO=:aaa}",
            "${FOO=}",
            "${FOO:#}",
            "${FOO:##}",
            "${FOO:%}",
            "${FOO:%%}",
            "${FOO:x}",
            "${FOO:=x}",
            "${FOO x}",
            "${FOO.x}",
            "${FOO:",
            "${FOO:}",
        ] {
            assert!(word(input, &[("FOO", "xxx")]).is_err(), "{input}");
        }
        let e = word("${FOO=aaa}", &[]).unwrap_err();
        assert_eq!(
            e.message,
            "failed to process \"${FOO=aaa}\": unsupported modifier (=) in substitution"
        );
    }

    #[test]
    fn unterminated_errors() {
        let cases = [
            ("${", "missing '}'"),
            ("${A", "missing '}'"),
            ("${A:-x", "missing '}'"),
            ("${A:-'x}", "missing '}'"),
            ("${A/x}", "missing '/' in ${"),
            ("${A//}", "missing '/' in ${"),
            ("${A/x/y", "missing '}'"),
            ("'abc", "matching single-quote"),
            ("\"abc", "matching double-quote"),
            ("${}", "bad substitution"),
            ("${{a}", "bad substitution"),
            ("${:a}", "bad substitution"),
        ];
        for (input, needle) in cases {
            let e = word(input, &[("A", "v")]).unwrap_err();
            assert!(e.message.contains(needle), "{input}: {e}");
            assert!(e.to_string().starts_with("failed to process"));
        }
    }

    #[test]
    fn pattern_modifiers() {
        let cases: &[Case] = &[
            (
                "${FOO#()[]{\\}^$.\\*\\?|\\\\}",
                &[("FOO", "()[]{}^$.*?|\\x")],
                "x",
            ),
            ("${FOO%%\\**}", &[("FOO", "xx**")], "xx"),
            ("${FOO#*x*y}", &[("FOO", "xxyy")], "y"),
            ("${FOO#*}", &[("FOO", "xxyy")], "xxyy"),
            ("${FOO##*}", &[("FOO", "xxyy")], ""),
            ("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "x")], "xyy"),
            ("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "")], "xxyy"),
            ("${FOO#}", &[("FOO", "xxyy")], "xxyy"),
            ("${FOO##*x}", &[("FOO", "xxyy")], "yy"),
            ("${FOO#*x}", &[("FOO", "xxyy")], "xyy"),
            ("${FOO##}", &[("FOO", "xxyy")], "xxyy"),
            ("${FOO#?\\?}", &[("FOO", "???y")], "?y"),
            ("${ABC:-.}${FOO%x}${ABC:-.}", &[("FOO", "xxyy")], ".xxyy."),
            ("${FOO%%\\**\\*}", &[("FOO", "a***yy*")], "a"),
            ("${FOO%\\**\\*}", &[("FOO", "a***yy*")], "a**"),
            ("${FOO%}", &[("FOO", "xxyy")], "xxyy"),
            ("${FOO%%$BAR}", &[("FOO", "xxyy"), ("BAR", "")], "xxyy"),
            ("${FOO%y*}", &[("FOO", "xxyy")], "xxy"),
            ("${FOO%%y*}", &[("FOO", "xxyy")], "xx"),
            ("${FOO%.*}", &[("FOO", "file.tar.gz")], "file.tar"),
            ("${FOO%%.*}", &[("FOO", "file.tar.gz")], "file"),
            ("${FOO#*.}", &[("FOO", "file.tar.gz")], "tar.gz"),
            ("${FOO##*.}", &[("FOO", "file.tar.gz")], "gz"),
            ("${FOO##*/}", &[("FOO", "/usr/local/bin/tool")], "tool"),
            (
                "${FOO%/*}",
                &[("FOO", "/usr/local/bin/tool")],
                "/usr/local/bin",
            ),
            ("${FOO#v}", &[("FOO", "v1.2.3")], "1.2.3"),
            ("${FOO#?}", &[("FOO", "안녕")], "녕"),
            ("${NOPE#x}", &[], ""),
            ("${FOO#nomatch}", &[("FOO", "abc")], "abc"),
            ("${FOO#\"a*\"}", &[("FOO", "abc")], "bc"),
            ("${FOO#'a*'}", &[("FOO", "abc")], "bc"),
        ];
        for &(input, env, expected) in cases {
            assert_eq!(word(input, env).as_deref(), Ok(expected), "input {input:?}");
        }
        assert!(word("${FOO#\\x}", &[("FOO", "x")]).is_err());
        let e = word("${FOO#a\\x}", &[("FOO", "x")]).unwrap_err();
        assert!(
            e.message.contains("invalid pattern (a\\x) in substitution"),
            "{e}"
        );
    }

    #[test]
    fn replace_modifiers() {
        let cases: &[Case] = &[
            (
                "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
                &[("FOO", "/foo*/*/*.txt"), ("NEEDLE", "\\*/")],
                "/foo.*/*.txt - /foo..*.txt",
            ),
            (
                "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
                &[("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")],
                "/tmp/bar.txt - /bar.txt",
            ),
            (
                "${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
                &[
                    ("FOO", "/a/foo/b/c.txt"),
                    ("NEEDLE", "/?/"),
                    ("REPLACEMENT", "/"),
                ],
                "/foo/b/c.txt - /foo/c.txt",
            ),
            (
                "${FOO/$NEEDLE/$REPLACEMENT}",
                &[
                    ("FOO", "http://google.de"),
                    ("NEEDLE", "http://"),
                    ("REPLACEMENT", "https://"),
                ],
                "https://google.de",
            ),
            (
                "${FOO//\\//\\/}",
                &[("FOO", "/tmp/foo.txt")],
                "\\/tmp\\/foo.txt",
            ),
            ("${FOO/$BAR/ww}", &[("FOO", "xxyy"), ("BAR", "")], "wwxxyy"),
            ("${FOO///}", &[("FOO", "xxyy")], "xxyy"),
            ("${FOO///}", &[], ""),
            ("${FOO/x/z}", &[("FOO", "xxyy")], "zxyy"),
            ("${FOO//x/z}", &[("FOO", "xxyy")], "zzyy"),
            ("${FOO/x*/z}", &[("FOO", "axxyy")], "az"),
            ("${FOO//?/z}", &[("FOO", "abc")], "zzz"),
            ("${FOO//-/_}", &[("FOO", "a-b-c")], "a_b_c"),
            ("${FOO//*/z}", &[("FOO", "abc")], "z"),
            ("${FOO//*/z}", &[("FOO", "")], "z"),
            ("${FOO//y*/z}", &[("FOO", "abc")], "abc"),
            ("${FOO/ab/$BAR}", &[("FOO", "abab"), ("BAR", "Q")], "Qab"),
            ("${FOO//a b/_}", &[("FOO", "a ba b")], "__"),
            ("${FOO//\"a b\"/_}", &[("FOO", "a ba b")], "__"),
        ];
        for &(input, env, expected) in cases {
            assert_eq!(word(input, env).as_deref(), Ok(expected), "input {input:?}");
        }
        let e = word("${FOO//ww}", &[("FOO", "xxyy")]).unwrap_err();
        assert!(e.message.contains("missing '/' in ${}"), "{e}");
        assert!(word("${FOO//}", &[("FOO", "xxyy")]).is_err());
        assert!(word("${FOO/\\a/b}", &[("FOO", "xxyy")]).is_err());
    }

    #[test]
    fn replace_all_empty_matches_like_go() {
        // An empty pattern matches between every character in Go's
        // ReplaceAllString, but not directly after a previous match.
        let toks = parse_pattern("").unwrap();
        assert_eq!(replace(&toks, "ab", "-", true), "-a-b-");
        assert_eq!(replace(&toks, "", "-", true), "-");
        assert_eq!(replace(&toks, "ab", "-", false), "-ab");
        let toks = parse_pattern("x*").unwrap();
        assert_eq!(replace(&toks, "axxbx", "-", true), "a-");
        let toks = parse_pattern("x?").unwrap();
        assert_eq!(replace(&toks, "axxbxy", "-", true), "a-b-");
    }

    #[test]
    fn platform_release_name() {
        let release = "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz";
        let base = [("VERSION", "v1.2.3"), ("TARGETOS", "linux")];
        let mut env = base.to_vec();
        env.extend([("TARGETARCH", "arm"), ("TARGETVARIANT", "v7")]);
        assert_eq!(
            word(release, &env).unwrap(),
            "something-v1.2.3.linux-arm-v7.tar.gz"
        );
        let mut env = base.to_vec();
        env.extend([("TARGETARCH", "arm64"), ("TARGETVARIANT", "")]);
        assert_eq!(
            word(release, &env).unwrap(),
            "something-v1.2.3.linux-arm64.tar.gz"
        );
        let mut env = base.to_vec();
        env.push(("TARGETARCH", "arm64"));
        assert_eq!(
            word(release, &env).unwrap(),
            "something-v1.2.3.linux-arm64.tar.gz"
        );
    }

    #[test]
    fn nested_modifiers_and_quotes() {
        assert_eq!(word("${a:-${b:-c}}", &[]).unwrap(), "c");
        assert_eq!(word("${a:-${b:-c}}", &[("b", "B")]).unwrap(), "B");
        assert_eq!(word("${a:-${b:-c}}", &[("a", "A")]).unwrap(), "A");
        assert_eq!(word("${a:-${b:-${c:-d}}}x", &[]).unwrap(), "dx");
        assert_eq!(word("${a:+[${a}]}", &[("a", "1")]).unwrap(), "[1]");
        assert_eq!(word("${a:-'}'}", &[]).unwrap(), "}");
        assert_eq!(word("${a:-\"}\"}", &[]).unwrap(), "}");
        assert_eq!(word("${a:-\\}}", &[]).unwrap(), "}");
        assert_eq!(word("${a:-'$b'}", &[("b", "B")]).unwrap(), "$b");
        assert_eq!(word("${a:-\"$b c\"}", &[("b", "B")]).unwrap(), "B c");
        assert_eq!(word("\"${a:-x y}\"", &[]).unwrap(), "x y");
        assert_eq!(word("\"${a:-\"q\"}\"", &[]).unwrap(), "q");
        assert_eq!(word("${a-}", &[]).unwrap(), "");
        assert_eq!(word("${a:-}", &[("a", "")]).unwrap(), "");
        assert_eq!(word("${a-x}", &[("a", "")]).unwrap(), "");
        assert_eq!(word("${a+x}", &[("a", "")]).unwrap(), "x");
        assert_eq!(word("${a:+x}", &[("a", "")]).unwrap(), "");
    }

    #[test]
    fn dollar_literals_and_names() {
        assert_eq!(word("$", &[]).unwrap(), "$");
        assert_eq!(word("a$", &[]).unwrap(), "a$");
        assert_eq!(word("$ x", &[]).unwrap(), "$ x");
        assert_eq!(word("$/", &[]).unwrap(), "$/");
        assert_eq!(word("\"$\"", &[]).unwrap(), "$");
        assert_eq!(word("$A_B1", &[("A_B1", "v")]).unwrap(), "v");
        assert_eq!(word("$A-B", &[("A", "v")]).unwrap(), "v-B");
        assert_eq!(word("$_x", &[("_x", "u")]).unwrap(), "u");
        assert_eq!(word("$12", &[("12", "twelve")]).unwrap(), "twelve");
        assert_eq!(word("$1a", &[("1", "one")]).unwrap(), "onea");
        assert_eq!(word("${A}B", &[("A", "x")]).unwrap(), "xB");
        assert_eq!(word("$AB", &[("A", "x")]).unwrap(), "");
    }

    #[test]
    fn escapes_backslash() {
        assert_eq!(word("a\\ b", &[]).unwrap(), "a b");
        assert_eq!(word("\\\"x\\\"", &[]).unwrap(), "\"x\"");
        assert_eq!(word("\"a\\\"b\"", &[]).unwrap(), "a\"b");
        assert_eq!(word("\"a\\nb\"", &[]).unwrap(), "a\\nb");
        assert_eq!(word("\"a\\`b\"", &[]).unwrap(), "a\\`b");
        assert_eq!(word("'a\\'", &[]).unwrap(), "a\\");
        assert_eq!(word("\\'", &[]).unwrap(), "'");
        assert_eq!(word("`$A`", &[("A", "x")]).unwrap(), "`x`");
    }

    #[test]
    fn escapes_backtick() {
        let w = |input: &str, env: &[(&str, &str)]| word_with('`', input, env).map(|e| e.value);
        assert_eq!(w("a`$b", &[("b", "B")]).unwrap(), "a$b");
        assert_eq!(w("C:\\path\\$b", &[("b", "B")]).unwrap(), "C:\\path\\B");
        assert_eq!(w("\"a`\"b\"", &[]).unwrap(), "a\"b");
        assert_eq!(w("\"a`$b\"", &[]).unwrap(), "a$b");
        assert_eq!(w("\"a``b\"", &[]).unwrap(), "a`b");
        assert_eq!(w("\"a\\\"", &[]).unwrap(), "a\\");
        assert_eq!(w("\"a`xb\"", &[]).unwrap(), "a`xb");
        assert_eq!(w("a` b", &[]).unwrap(), "a b");
        assert_eq!(w("ab`", &[]).unwrap(), "ab");
        assert_eq!(w("'a`b'", &[]).unwrap(), "a`b");
        assert_eq!(w("${x:-`}}", &[]).unwrap(), "}");
        let lexer = Lexer::new('`');
        assert_eq!(lexer.escape(), '`');
        let env = |_: &str| None;
        assert_eq!(
            lexer.process_words("a` b c", &env).unwrap(),
            vec!["a b", "c"]
        );
    }

    #[test]
    fn heredoc_markers_are_kept() {
        assert_eq!(word("cat <<EOF", &[]).unwrap(), "cat <<EOF");
        assert_eq!(word("a<b", &[]).unwrap(), "a<b");
        assert_eq!(words("cat << EOF", &[]).unwrap(), vec!["cat", "<< EOF"]);
        assert_eq!(
            words("cat <<EOF x", &[]).unwrap(),
            vec!["cat", "<<EOF", "x"]
        );
    }

    #[test]
    fn whitespace_is_kept_by_process_word() {
        assert_eq!(word("  a   b  ", &[]).unwrap(), "  a   b  ");
        assert_eq!(word("a $X b", &[("X", " x ")]).unwrap(), "a  x  b");
    }

    #[test]
    fn pattern_parsing() {
        use PatToken::*;
        assert_eq!(parse_pattern("a*?").unwrap(), vec![Lit('a'), Star, Any]);
        assert_eq!(
            parse_pattern("\\*\\?\\\\").unwrap(),
            vec![Lit('*'), Lit('?'), Lit('\\')]
        );
        assert_eq!(parse_pattern("\\}\\/").unwrap(), vec![Lit('}'), Lit('/')]);
        for bad in ["\\", "\\x", "\\\\\\"] {
            assert!(parse_pattern(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stars_do_not_cross_newlines() {
        // Go's `.` does not match a newline, and BuildKit builds a regexp.
        assert_eq!(word("${X#*b}", &[("X", "a\nb")]).unwrap(), "a\nb");
        assert_eq!(word("${X#a?b}", &[("X", "a\nb")]).unwrap(), "a\nb");
        assert_eq!(word("${X#a\nb}", &[("X", "a\nbc")]).unwrap(), "c");
    }

    #[test]
    fn error_type() {
        let e = WordError {
            message: "m".into(),
        };
        assert_eq!(e.to_string(), "m");
        let _: &dyn std::error::Error = &e;
        assert_eq!(Lexer::default().escape(), '\\');
    }
}
