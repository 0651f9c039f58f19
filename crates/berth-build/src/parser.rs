//! The Dockerfile's syntax, as BuildKit reads it: lines into nodes.
//!
//! Parsing happens in two steps. First the text becomes [`Node`]s, one per
//! instruction, each holding its keyword, leading `--flags` and its
//! arguments split the way that keyword splits them (JSON arrays,
//! whitespace-separated words, `key=value` pairs, or one string). This
//! module is that step: it knows the parser directives (`# escape=`,
//! `# syntax=`, `# check=`), line continuations with comments and blank
//! lines inside them, JSON and shell forms and heredocs. It does not judge
//! whether an instruction makes sense; [`crate::instructions`] does.

use std::fmt;

/// A parse error: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The 1-based line.
    pub line: usize,
    /// The 1-based column (1 when the whole line is at fault).
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}:{}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

/// A heredoc: `<<EOF` (or `<<-EOF`, `<<"EOF"`) and the lines up to `EOF`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The terminator word.
    pub name: String,
    /// The lines, each ending in `\n`.
    pub content: String,
    /// Variables are expanded in it (the terminator was not quoted).
    pub expand: bool,
    /// Leading tabs were stripped (`<<-`).
    pub chomp: bool,
}

/// One instruction as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The keyword, lower-case (`run`).
    pub keyword: String,
    /// The instruction's text after continuation lines are joined.
    pub original: String,
    /// The leading `--name=value` flags, as written.
    pub flags: Vec<String>,
    /// The arguments, split as the keyword splits them.
    pub args: Vec<String>,
    /// The arguments were a JSON array.
    pub json: bool,
    /// ONBUILD's instruction.
    pub sub: Option<Box<Node>>,
    /// The heredocs of a RUN, COPY or ADD.
    pub heredocs: Vec<Heredoc>,
    /// The first line (1-based).
    pub start_line: usize,
    /// The last line.
    pub end_line: usize,
}

impl Node {
    /// The node in BuildKit's test notation: `run ["--flag"] "arg" "arg"`.
    pub fn dump(&self) -> String {
        let mut s = self.keyword.clone();
        if !self.flags.is_empty() {
            let flags: Vec<String> = self.flags.iter().map(|f| go_quote(f)).collect();
            s.push_str(&format!(" [{}]", flags.join(" ")));
        }
        for a in &self.args {
            s.push(' ');
            s.push_str(&go_quote(a));
        }
        if let Some(sub) = &self.sub {
            s.push_str(&format!(" ({})", sub.dump()));
        }
        s
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The instructions in order.
    pub nodes: Vec<Node>,
    /// The escape character (`\` or `` ` ``).
    pub escape: char,
    /// The `# syntax=` directive.
    pub syntax: Option<String>,
    /// The `# check=` directive.
    pub check: Option<String>,
    /// Things worth telling the user that are not errors (empty
    /// continuation lines), with their line.
    pub warnings: Vec<(usize, String)>,
}

/// Quotes `s` as Go's `strconv.Quote` does (the notation of BuildKit's
/// test results).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whitespace as Go's regexp `[\t\v\f\r ]` (not newlines: there are none
/// in a joined line).
fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0b' | '\x0c' | '\r')
}

fn is_comment(line: &str) -> bool {
    line.trim_start_matches(is_ws).starts_with('#')
}

/// Splits `line` at its first run of whitespace.
fn split_ws2(s: &str) -> (&str, &str) {
    match s.find(is_ws) {
        Some(i) => (&s[..i], s[i..].trim_start_matches(is_ws)),
        None => (s, ""),
    }
}

/// Parses a parser directive (`# name = value`) in the directive section.
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('#')?;
    let rest = rest.trim_start_matches(is_ws);
    let name_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || i > 0 && c.is_ascii_digit()))
        .map(|(i, _)| i)
        .unwrap_or(rest.len());
    if name_len == 0 {
        return None;
    }
    let name = &rest[..name_len];
    let rest = rest[name_len..].trim_start_matches(is_ws);
    let value = rest.strip_prefix('=')?.trim_matches(is_ws);
    if value.is_empty() {
        return None;
    }
    Some((name.to_ascii_lowercase(), value.to_owned()))
}

/// Strips a trailing escape character (and whitespace after it): the line
/// continues. A doubled escape character at the end is an escaped one, not
/// a continuation.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let t = line.trim_end_matches(is_ws);
    match t.strip_suffix(escape) {
        Some(stripped) if !stripped.ends_with(escape) => (stripped.to_owned(), false),
        _ => (line.to_owned(), true),
    }
}

/// The parser's state over the text.
struct Lines<'a> {
    lines: Vec<&'a str>,
    pos: usize,
}

impl<'a> Lines<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let l = self.lines.get(self.pos).copied();
        if l.is_some() {
            self.pos += 1;
        }
        l
    }
}

/// Parses a Dockerfile.
pub fn parse(text: &str) -> Result<Parsed, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = Lines {
        lines: text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect(),
        pos: 0,
    };
    if text.ends_with('\n') {
        lines.lines.pop();
    }
    let mut parsed = Parsed {
        nodes: Vec::new(),
        escape: '\\',
        syntax: None,
        check: None,
        warnings: Vec::new(),
    };
    let mut directives_done = false;
    let mut seen = Vec::new();
    while let Some(raw) = lines.next() {
        let lineno = lines.pos;
        let stripped = raw.trim_start_matches(is_ws);
        if !directives_done {
            match directive(stripped) {
                Some((name, value)) => {
                    if seen.contains(&name) {
                        return Err(ParseError {
                            line: lineno,
                            column: 1,
                            message: format!("only one {name} parser directive can be used"),
                        });
                    }
                    seen.push(name.clone());
                    match name.as_str() {
                        "escape" => {
                            parsed.escape = match value.as_str() {
                                "\\" => '\\',
                                "`" => '`',
                                _ => {
                                    return Err(ParseError {
                                        line: lineno,
                                        column: 1,
                                        message: format!(
                                            "invalid escape token '{value}' does not match ` or \\"
                                        ),
                                    });
                                }
                            }
                        }
                        "syntax" => parsed.syntax = Some(value),
                        "check" => parsed.check = Some(value),
                        _ => {}
                    }
                    continue;
                }
                None => directives_done = true,
            }
        }
        if is_comment(stripped) {
            continue;
        }
        let (mut line, mut done) = trim_continuation(stripped, parsed.escape);
        if done && line.trim_matches(is_ws).is_empty() {
            continue;
        }
        let start_line = lineno;
        let mut empty_continuation = false;
        while !done {
            let Some(next) = lines.next() else { break };
            if is_comment(next) {
                continue;
            }
            if next.trim_matches(is_ws).is_empty() {
                empty_continuation = true;
                continue;
            }
            let (part, end) = trim_continuation(next, parsed.escape);
            line.push_str(&part);
            done = end;
        }
        if empty_continuation {
            parsed.warnings.push((
                start_line,
                "empty continuation lines will become errors in a future release".into(),
            ));
        }
        let mut node = node_from_line(&line, parsed.escape, start_line)?;
        node.end_line = lines.pos;
        if matches!(node.keyword.as_str(), "run" | "copy" | "add") && !node.json {
            read_heredocs(&mut node, &mut lines, parsed.escape)?;
        }
        parsed.nodes.push(node);
    }
    if parsed.nodes.is_empty() {
        return Err(ParseError {
            line: 1,
            column: 1,
            message: "the Dockerfile has no instructions".into(),
        });
    }
    Ok(parsed)
}

/// Parses one joined instruction line.
fn node_from_line(line: &str, escape: char, start_line: usize) -> Result<Node, ParseError> {
    let err = |message: String| ParseError {
        line: start_line,
        column: 1,
        message,
    };
    let trimmed = line.trim_matches(is_ws);
    let (cmd, rest) = split_ws2(trimmed);
    let (rest, flags) = extract_flags(rest);
    let rest = rest.trim_matches(is_ws);
    let keyword = cmd.to_ascii_lowercase();
    let mut node = Node {
        keyword: keyword.clone(),
        original: line.to_owned(),
        flags,
        args: Vec::new(),
        json: false,
        sub: None,
        heredocs: Vec::new(),
        start_line,
        end_line: start_line,
    };
    match keyword.as_str() {
        "add" | "copy" | "volume" => match parse_json(rest) {
            Some(Ok(args)) => {
                node.args = args;
                node.json = true;
            }
            Some(Err(JsonError::NotStrings)) => {
                return Err(err(format!(
                    "{}: the JSON array may hold only strings",
                    cmd.to_ascii_uppercase()
                )));
            }
            _ => node.args = split_whitespace(rest),
        },
        "cmd" | "entrypoint" | "run" | "shell" => {
            (node.args, node.json) = maybe_json(rest, cmd).map_err(err)?
        }
        "env" | "label" => node.args = name_val(rest, cmd, escape).map_err(err)?,
        "arg" => node.args = words(rest, escape),
        "expose" | "from" => node.args = split_whitespace(rest),
        "healthcheck" => {
            let (kind, cmdline) = split_ws2(rest);
            if !kind.is_empty() {
                node.args.push(kind.to_owned());
                let (args, json) = maybe_json(cmdline, cmd).map_err(err)?;
                node.args.extend(args);
                node.json = json;
            }
        }
        "onbuild" => {
            if !rest.is_empty() {
                node.sub = Some(Box::new(node_from_line(rest, escape, start_line)?));
            }
        }
        _ => {
            if !rest.is_empty() {
                node.args.push(rest.to_owned());
            }
        }
    }
    Ok(node)
}

enum JsonError {
    NotJson,
    NotStrings,
}

/// `Some` when `rest` looks like a JSON array: its strings, or why not.
fn parse_json(rest: &str) -> Option<Result<Vec<String>, JsonError>> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return None;
    }
    let value: serde_json::Value = match serde_json::from_str(rest) {
        Ok(v) => v,
        Err(_) => return Some(Err(JsonError::NotJson)),
    };
    let Some(items) = value.as_array() else {
        return Some(Err(JsonError::NotJson));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item {
            serde_json::Value::String(s) => out.push(s.clone()),
            _ => return Some(Err(JsonError::NotStrings)),
        }
    }
    Some(Ok(out))
}

/// The exec form when `rest` is a JSON array of strings, else the shell
/// form as one string.
fn maybe_json(rest: &str, cmd: &str) -> Result<(Vec<String>, bool), String> {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    match parse_json(rest) {
        Some(Ok(args)) => Ok((args, true)),
        Some(Err(JsonError::NotStrings)) => Err(format!(
            "{}: the JSON array may hold only strings",
            cmd.to_ascii_uppercase()
        )),
        _ => Ok((vec![rest.to_owned()], false)),
    }
}

fn split_whitespace(rest: &str) -> Vec<String> {
    rest.split(is_ws)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// ENV and LABEL: the legacy `KEY value with spaces` or `k=v k2="v 2"`,
/// as (key, value, separator) triples.
fn name_val(rest: &str, cmd: &str, escape: char) -> Result<Vec<String>, String> {
    let ws = words(rest, escape);
    let Some(first) = ws.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        let (key, value) = split_ws2(rest);
        if value.is_empty() {
            return Err(format!(
                "{} must have two arguments",
                cmd.to_ascii_uppercase()
            ));
        }
        return Ok(vec![key.to_owned(), value.to_owned(), String::new()]);
    }
    let mut out = Vec::new();
    for w in ws {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {}. Must be of the form: name=value",
                go_quote(&w)
            ));
        };
        out.extend([k.to_owned(), v.to_owned(), "=".to_owned()]);
    }
    Ok(out)
}

/// Splits on unquoted whitespace, keeping quotes and escapes in the words.
pub fn words(rest: &str, escape: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
                word.push(c);
                continue;
            }
            if c == escape && q != '\'' {
                match chars.next() {
                    Some(n) => {
                        word.push(c);
                        word.push(n);
                    }
                    None => quote = None,
                }
                continue;
            }
            word.push(c);
            continue;
        }
        if c.is_whitespace() {
            if in_word && (blank_ok || !word.is_empty()) {
                out.push(std::mem::take(&mut word));
            }
            in_word = false;
            blank_ok = false;
            continue;
        }
        in_word = true;
        if c == '\'' || c == '"' {
            quote = Some(c);
            blank_ok = true;
            word.push(c);
            continue;
        }
        if c == escape {
            match chars.next() {
                Some(n) => {
                    word.push(c);
                    word.push(n);
                }
                None => continue,
            }
            continue;
        }
        word.push(c);
    }
    if in_word && (blank_ok || !word.is_empty()) {
        out.push(word);
    }
    out
}

/// Takes the leading `--flag` words off `line`: (the rest, the flags).
/// Quotes group and `\` escapes inside a flag; a bare `--` ends the flags.
fn extract_flags(line: &str) -> (&str, Vec<String>) {
    let mut flags = Vec::new();
    let bytes = line.as_bytes();
    let mut pos = 0;
    loop {
        while pos < bytes.len() && (bytes[pos] as char).is_ascii_whitespace() {
            pos += 1;
        }
        if pos >= bytes.len() {
            return ("", flags);
        }
        if !line[pos..].starts_with("--") {
            return (&line[pos..], flags);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut blank_ok = false;
        let mut chars = line[pos..].char_indices();
        let mut end = line.len();
        while let Some((i, c)) = chars.next() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) if c == '\\' => match chars.next() {
                    Some((_, n)) => word.push(n),
                    None => quote = None,
                },
                Some(_) => word.push(c),
                None if c.is_whitespace() => {
                    end = pos + i;
                    break;
                }
                None if c == '\'' || c == '"' => {
                    quote = Some(c);
                    blank_ok = true;
                }
                None if c == '\\' => {
                    if let Some((_, n)) = chars.next() {
                        word.push(n);
                    }
                }
                None => word.push(c),
            }
        }
        if word == "--" {
            return (&line[end..], flags);
        }
        if blank_ok || !word.is_empty() {
            flags.push(word);
        }
        pos = end;
    }
}

/// Reads the heredocs a RUN, COPY or ADD line opens, from the lines after
/// it.
fn read_heredocs(node: &mut Node, lines: &mut Lines<'_>, escape: char) -> Result<(), ParseError> {
    let args = node.args.join(" ");
    let mut docs = Vec::new();
    for w in words(&args, escape) {
        let Some(spec) = w.strip_prefix("<<") else {
            continue;
        };
        let (chomp, spec) = match spec.strip_prefix('-') {
            Some(s) => (true, s),
            None => (false, spec),
        };
        let (name, expand) = match spec.chars().next() {
            Some(q @ ('"' | '\'')) => match spec[1..].strip_suffix(q) {
                Some(inner) => (inner.to_owned(), false),
                None => continue,
            },
            _ => (spec.to_owned(), true),
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '.')
        {
            continue;
        }
        docs.push((name, expand, chomp));
    }
    for (name, expand, chomp) in docs {
        let mut content = String::new();
        let mut closed = false;
        while let Some(l) = lines.next() {
            let l2 = if chomp { l.trim_start_matches('\t') } else { l };
            if l2 == name {
                closed = true;
                break;
            }
            content.push_str(l2);
            content.push('\n');
        }
        if !closed {
            return Err(ParseError {
                line: node.start_line,
                column: 1,
                message: format!("the heredoc <<{name} is not closed by a line {name}"),
            });
        }
        node.heredocs.push(Heredoc {
            name,
            content,
            expand,
            chomp,
        });
    }
    node.end_line = lines.pos;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(text: &str) -> Vec<String> {
        parse(text).unwrap().nodes.iter().map(Node::dump).collect()
    }

    #[test]
    fn flags_and_forms() {
        assert_eq!(
            dump(
                "FROM --platform=linux/amd64 busybox AS b\nCOPY --from=b --chown=1:1 a b /c/\nRUN [\"a\", \"b c\"]\nRUN a  b\n"
            ),
            vec![
                r#"from ["--platform=linux/amd64"] "busybox" "AS" "b""#,
                r#"copy ["--from=b" "--chown=1:1"] "a" "b" "/c/""#,
                r#"run "a" "b c""#,
                r#"run "a  b""#,
            ]
        );
    }

    #[test]
    fn quoted_flags_and_double_dash() {
        assert_eq!(
            dump("RUN --mount=type=cache,target=\"/a b\" -- --x\n"),
            vec![r#"run ["--mount=type=cache,target=/a b"] "--x""#]
        );
    }

    #[test]
    fn env_forms() {
        assert_eq!(
            dump("ENV a=b c=\"d e\" f=g\\ h\nENV x y z\n"),
            vec![
                r#"env "a" "b" "=" "c" "\"d e\"" "=" "f" "g\\ h" "=""#,
                r#"env "x" "y z" """#,
            ]
        );
        let e = parse("FROM x\nENV a=b c\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("can't find ="), "{e}");
        assert!(
            parse("ENV a\n")
                .unwrap_err()
                .message
                .contains("two arguments")
        );
    }

    #[test]
    fn heredocs() {
        let p = parse("FROM x\nRUN <<EOF\necho hi\necho there\nEOF\nCOPY <<-\"A\" /a\n\tline $x\n\tA\nRUN true\n")
            .unwrap();
        assert_eq!(p.nodes.len(), 4);
        let h = &p.nodes[1].heredocs[0];
        assert_eq!(
            (h.name.as_str(), h.content.as_str(), h.expand),
            ("EOF", "echo hi\necho there\n", true)
        );
        assert_eq!(p.nodes[1].end_line, 5);
        let h = &p.nodes[2].heredocs[0];
        assert_eq!(
            (h.content.as_str(), h.expand, h.chomp),
            ("line $x\n", false, true)
        );
        assert!(
            parse("FROM x\nRUN <<EOF\nnever closed\n")
                .unwrap_err()
                .message
                .contains("<<EOF")
        );
    }

    #[test]
    fn directives() {
        let p = parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM x\nRUN a `\n b\n").unwrap();
        assert_eq!(p.escape, '`');
        assert_eq!(p.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(p.nodes[1].args, vec!["a  b"]);
        assert!(
            parse("# escape=x\nFROM x\n")
                .unwrap_err()
                .message
                .contains("invalid escape")
        );
        assert!(parse("# escape=`\n# escape=\\\nFROM x\n").is_err());
        // After an instruction, it is a comment.
        let p = parse("FROM x\n# escape=`\n").unwrap();
        assert_eq!(p.escape, '\\');
    }

    #[test]
    fn empty_is_an_error() {
        assert!(parse("").is_err());
        assert!(parse("# just a comment\n\n").is_err());
    }

    #[test]
    fn quoting_like_go() {
        assert_eq!(go_quote("a\"b\\c\n\u{0}♥"), r#""a\"b\\c\n\x00♥""#);
    }
}
