//! Nodes checked and typed: a Dockerfile as stages of instructions.
//!
//! Arguments stay as written; variables are expanded when the build reaches
//! an instruction, because their values depend on the ARGs and ENVs before
//! it.

use crate::parser::{Heredoc, Node, ParseError, Parsed};

/// A command as CMD, ENTRYPOINT, RUN and HEALTHCHECK take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// The JSON (exec) form.
    Exec(Vec<String>),
    /// The shell form, run with the stage's SHELL.
    Shell(String),
}

/// One `ARG name[=default]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    /// The name.
    pub name: String,
    /// The default, unexpanded.
    pub default: Option<String>,
}

/// A `RUN --mount=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMount {
    /// `cache`, `bind`, `tmpfs` or `secret`.
    pub kind: String,
    /// Where it is mounted.
    pub target: String,
    /// The cache's id (default: the target) or secret's id.
    pub id: Option<String>,
    /// `bind`: the stage or image the files come from.
    pub from: Option<String>,
    /// `bind`: the path in the source.
    pub source: Option<String>,
    /// Mounted read-write (`bind` is read-only unless `rw`).
    pub readwrite: bool,
    /// `secret`: fail when the secret was not given.
    pub required: bool,
}

/// COPY and ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySpec {
    /// ADD (tar extraction, URLs) rather than COPY.
    pub add: bool,
    /// The sources, unexpanded.
    pub sources: Vec<String>,
    /// The destination, unexpanded.
    pub dest: String,
    /// `--from`: a stage name or index, or an image.
    pub from: Option<String>,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod` (octal).
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// ADD `--checksum`.
    pub checksum: Option<String>,
    /// `--exclude` patterns.
    pub exclude: Vec<String>,
    /// The heredocs among the sources.
    pub heredocs: Vec<Heredoc>,
}

/// A HEALTHCHECK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// `NONE`: turn off the base image's check.
    pub none: bool,
    /// The test.
    pub command: Option<Command>,
    /// Durations as written (`30s`).
    pub interval: Option<String>,
    /// See `interval`.
    pub timeout: Option<String>,
    /// See `interval`.
    pub start_period: Option<String>,
    /// See `interval`.
    pub start_interval: Option<String>,
    /// Failures before unhealthy.
    pub retries: Option<u32>,
}

/// What an instruction does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// RUN.
    Run {
        /// The command.
        command: Command,
        /// `--mount`s.
        mounts: Vec<RunMount>,
        /// `--network`: `default`, `none` or `host`.
        network: Option<String>,
        /// The heredocs.
        heredocs: Vec<Heredoc>,
    },
    /// COPY or ADD.
    Copy(CopySpec),
    /// ENV pairs.
    Env(Vec<(String, String)>),
    /// LABEL pairs.
    Label(Vec<(String, String)>),
    /// ARGs.
    Arg(Vec<ArgDecl>),
    /// WORKDIR.
    Workdir(String),
    /// USER.
    User(String),
    /// EXPOSE ports.
    Expose(Vec<String>),
    /// VOLUME paths.
    Volume(Vec<String>),
    /// CMD.
    Cmd(Command),
    /// ENTRYPOINT.
    Entrypoint(Command),
    /// HEALTHCHECK.
    Healthcheck(Health),
    /// STOPSIGNAL.
    StopSignal(String),
    /// SHELL.
    Shell(Vec<String>),
    /// ONBUILD: the instruction's text, kept for the image's config.
    OnBuild(String),
    /// MAINTAINER (deprecated).
    Maintainer(String),
}

/// One instruction of a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// Its first line.
    pub line: usize,
    /// Its text (continuations joined).
    pub original: String,
    /// The keyword as written (for checks of casing).
    pub keyword: String,
    /// What it does.
    pub kind: Kind,
}

/// A `FROM` and the instructions up to the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// `AS name`, lower-cased.
    pub name: Option<String>,
    /// The name as written.
    pub name_written: Option<String>,
    /// The base, unexpanded: an image, a stage or `scratch`.
    pub base: String,
    /// `--platform`, unexpanded.
    pub platform: Option<String>,
    /// FROM's line.
    pub line: usize,
    /// FROM's text.
    pub original: String,
    /// The instructions after FROM.
    pub instructions: Vec<Instruction>,
}

/// A Dockerfile: the ARGs before the first FROM and the stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// ARGs before the first FROM (usable in FROM lines).
    pub meta_args: Vec<(usize, ArgDecl)>,
    /// The stages in order.
    pub stages: Vec<Stage>,
    /// The escape character.
    pub escape: char,
}

impl Dockerfile {
    /// The index of the stage `name` (its name, case-insensitively, or
    /// its number).
    pub fn stage_index(&self, name: &str) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        self.stages
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| name.parse().ok().filter(|&i: &usize| i < self.stages.len()))
    }
}

fn error(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        column: 1,
        message: message.into(),
    }
}

/// Flags an instruction was given, checked against those it takes.
struct Flags<'a> {
    node: &'a Node,
    values: Vec<(String, Option<String>)>,
}

impl<'a> Flags<'a> {
    fn new(node: &'a Node, allowed: &[&str]) -> Result<Flags<'a>, ParseError> {
        let mut values = Vec::new();
        for f in &node.flags {
            let body = f.strip_prefix("--").unwrap_or(f);
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (body, None),
            };
            if !allowed.contains(&name) {
                return Err(error(
                    node.start_line,
                    format!(
                        "unknown flag: --{name} ({} takes {})",
                        node.keyword.to_ascii_uppercase(),
                        if allowed.is_empty() {
                            "no flags".to_owned()
                        } else {
                            allowed
                                .iter()
                                .map(|a| format!("--{a}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    ),
                ));
            }
            values.push((name.to_owned(), value));
        }
        Ok(Flags { node, values })
    }

    /// The last value of a string flag.
    fn string(&self, name: &str) -> Result<Option<String>, ParseError> {
        match self.values.iter().rev().find(|(n, _)| n == name) {
            None => Ok(None),
            Some((_, Some(v))) => Ok(Some(v.clone())),
            Some((_, None)) => Err(error(
                self.node.start_line,
                format!("missing a value on flag: --{name}"),
            )),
        }
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.values
            .iter()
            .filter(|(n, _)| n == name)
            .filter_map(|(_, v)| v.clone())
            .collect()
    }

    fn bool(&self, name: &str) -> Result<bool, ParseError> {
        match self.values.iter().rev().find(|(n, _)| n == name) {
            None => Ok(false),
            Some((_, None)) => Ok(true),
            Some((_, Some(v))) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(error(
                    self.node.start_line,
                    format!("expecting boolean value for flag --{name}, not: {v}"),
                )),
            },
        }
    }
}

fn command(node: &Node) -> Command {
    if node.json {
        Command::Exec(node.args.clone())
    } else {
        Command::Shell(node.args.first().cloned().unwrap_or_default())
    }
}

fn pairs(node: &Node) -> Vec<(String, String)> {
    node.args
        .chunks(3)
        .map(|c| (c[0].clone(), c.get(1).cloned().unwrap_or_default()))
        .collect()
}

fn run_mount(line: usize, spec: &str) -> Result<RunMount, ParseError> {
    let mut m = RunMount {
        kind: "bind".into(),
        target: String::new(),
        id: None,
        from: None,
        source: None,
        readwrite: false,
        required: false,
    };
    for field in spec.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim().to_owned()),
            None => (field.trim().to_ascii_lowercase(), String::new()),
        };
        match k.as_str() {
            "type" => match v.as_str() {
                "bind" | "cache" | "tmpfs" | "secret" | "ssh" => m.kind = v,
                _ => return Err(error(line, format!("unsupported mount type {v:?}"))),
            },
            "target" | "dst" | "destination" => m.target = v,
            "id" => m.id = Some(v),
            "from" => m.from = Some(v),
            "source" | "src" => m.source = Some(v),
            "rw" | "readwrite" => m.readwrite = v.is_empty() || v == "true",
            "ro" | "readonly" => m.readwrite = !(v.is_empty() || v == "true"),
            "required" => m.required = v.is_empty() || v == "true",
            "sharing" | "mode" | "uid" | "gid" | "size" | "env" => {}
            "" => {}
            _ => return Err(error(line, format!("unexpected key '{k}' in '{field}'"))),
        }
    }
    if m.target.is_empty() && m.kind != "secret" && m.kind != "ssh" {
        return Err(error(line, format!("--mount={spec}: a target is required")));
    }
    Ok(m)
}

fn instruction(node: &Node) -> Result<Kind, ParseError> {
    let line = node.start_line;
    let keyword = node.keyword.to_ascii_uppercase();
    let need_args = |n: usize, what: &str| {
        if node.args.len() < n {
            Err(error(line, format!("{keyword} requires {what}")))
        } else {
            Ok(())
        }
    };
    let no_flags = || Flags::new(node, &[]).map(drop);
    Ok(match node.keyword.as_str() {
        "run" => {
            let f = Flags::new(node, &["mount", "network", "security"])?;
            if node.args.is_empty() && node.heredocs.is_empty() && !node.json {
                return Err(error(line, "RUN requires at least one argument"));
            }
            let mounts = f
                .all("mount")
                .iter()
                .map(|s| run_mount(line, s))
                .collect::<Result<_, _>>()?;
            let network = f.string("network")?;
            if let Some(n) = &network
                && !matches!(n.as_str(), "default" | "none" | "host")
            {
                return Err(error(
                    line,
                    format!("unsupported network mode {n:?}: use default, none or host"),
                ));
            }
            Kind::Run {
                command: command(node),
                mounts,
                network,
                heredocs: node.heredocs.clone(),
            }
        }
        "copy" | "add" => {
            let add = node.keyword == "add";
            let allowed: &[&str] = if add {
                &[
                    "chown",
                    "chmod",
                    "link",
                    "checksum",
                    "keep-git-dir",
                    "exclude",
                ]
            } else {
                &["from", "chown", "chmod", "link", "parents", "exclude"]
            };
            let f = Flags::new(node, allowed)?;
            if node.args.len() < 2 {
                return Err(error(
                    line,
                    format!(
                        "{keyword} requires at least two arguments, but only one was provided. Destination could not be determined"
                    ),
                ));
            }
            let (dest, sources) = node.args.split_last().expect("two or more");
            Kind::Copy(CopySpec {
                add,
                sources: sources.to_vec(),
                dest: dest.clone(),
                from: f.string("from")?,
                chown: f.string("chown")?,
                chmod: f.string("chmod")?,
                link: f.bool("link")?,
                checksum: f.string("checksum")?,
                exclude: f.all("exclude"),
                heredocs: node.heredocs.clone(),
            })
        }
        "env" => {
            no_flags()?;
            need_args(1, "at least one argument")?;
            Kind::Env(pairs(node))
        }
        "label" => {
            no_flags()?;
            need_args(1, "at least one argument")?;
            Kind::Label(pairs(node))
        }
        "arg" => {
            no_flags()?;
            need_args(1, "at least one argument")?;
            Kind::Arg(
                node.args
                    .iter()
                    .map(|a| match a.split_once('=') {
                        Some((n, d)) => ArgDecl {
                            name: n.to_owned(),
                            default: Some(d.to_owned()),
                        },
                        None => ArgDecl {
                            name: a.clone(),
                            default: None,
                        },
                    })
                    .collect(),
            )
        }
        "workdir" => {
            no_flags()?;
            need_args(1, "exactly one argument")?;
            Kind::Workdir(node.args[0].clone())
        }
        "user" => {
            no_flags()?;
            need_args(1, "exactly one argument")?;
            Kind::User(node.args[0].clone())
        }
        "expose" => {
            no_flags()?;
            need_args(1, "at least one argument")?;
            Kind::Expose(node.args.clone())
        }
        "volume" => {
            no_flags()?;
            need_args(1, "at least one argument")?;
            if node.args.iter().any(|v| v.trim().is_empty()) {
                return Err(error(line, "VOLUME specified can not be an empty string"));
            }
            Kind::Volume(node.args.clone())
        }
        "cmd" => {
            no_flags()?;
            Kind::Cmd(command(node))
        }
        "entrypoint" => {
            no_flags()?;
            Kind::Entrypoint(command(node))
        }
        "stopsignal" => {
            no_flags()?;
            need_args(1, "exactly one argument")?;
            Kind::StopSignal(node.args[0].clone())
        }
        "shell" => {
            no_flags()?;
            if !node.json {
                return Err(error(
                    line,
                    "SHELL requires the arguments to be in JSON form",
                ));
            }
            need_args(1, "at least one argument")?;
            Kind::Shell(node.args.clone())
        }
        "maintainer" => {
            no_flags()?;
            need_args(1, "exactly one argument")?;
            Kind::Maintainer(node.args[0].clone())
        }
        "onbuild" => {
            no_flags()?;
            let Some(sub) = &node.sub else {
                return Err(error(line, "ONBUILD requires at least one argument"));
            };
            match sub.keyword.as_str() {
                "onbuild" => {
                    return Err(error(
                        line,
                        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
                    ));
                }
                "from" | "maintainer" => {
                    return Err(error(
                        line,
                        format!(
                            "{} isn't allowed as an ONBUILD trigger",
                            sub.keyword.to_ascii_uppercase()
                        ),
                    ));
                }
                _ => {}
            }
            instruction(sub)?;
            let text = sub.original.trim();
            Kind::OnBuild(text.to_owned())
        }
        "healthcheck" => healthcheck(node)?,
        "from" => unreachable!("FROM starts a stage"),
        other => {
            return Err(error(
                line,
                format!("unknown instruction: {}", other.to_ascii_uppercase()),
            ));
        }
    })
}

fn healthcheck(node: &Node) -> Result<Kind, ParseError> {
    let line = node.start_line;
    let f = Flags::new(
        node,
        &[
            "interval",
            "timeout",
            "start-period",
            "start-interval",
            "retries",
        ],
    )?;
    let Some(kind) = node.args.first() else {
        return Err(error(line, "HEALTHCHECK requires an argument: CMD or NONE"));
    };
    let mut h = Health {
        none: false,
        command: None,
        interval: f.string("interval")?,
        timeout: f.string("timeout")?,
        start_period: f.string("start-period")?,
        start_interval: f.string("start-interval")?,
        retries: match f.string("retries")? {
            Some(r) => Some(r.parse().map_err(|_| {
                error(line, format!("--retries must be a whole number, not {r:?}"))
            })?),
            None => None,
        },
    };
    match kind.to_ascii_uppercase().as_str() {
        "NONE" => {
            if node.args.len() > 1 || !node.flags.is_empty() {
                return Err(error(line, "HEALTHCHECK NONE takes no arguments"));
            }
            h.none = true;
        }
        "CMD" => {
            let rest = &node.args[1..];
            if rest.is_empty() || (!node.json && rest[0].trim().is_empty()) {
                return Err(error(line, "HEALTHCHECK CMD requires a command"));
            }
            h.command = Some(if node.json {
                Command::Exec(rest.to_vec())
            } else {
                Command::Shell(rest[0].clone())
            });
        }
        other => {
            return Err(error(
                line,
                format!("unknown type {other:?} in HEALTHCHECK (try CMD)"),
            ));
        }
    }
    Ok(Kind::Healthcheck(h))
}

/// Checks the nodes and groups them into stages.
pub fn parse(parsed: &Parsed) -> Result<Dockerfile, ParseError> {
    let mut file = Dockerfile {
        meta_args: Vec::new(),
        stages: Vec::new(),
        escape: parsed.escape,
    };
    for node in &parsed.nodes {
        let line = node.start_line;
        if node.keyword == "from" {
            let f = Flags::new(node, &["platform"])?;
            let (base, name_written) = match node.args.as_slice() {
                [base] => (base.clone(), None),
                [base, as_, name] if as_.eq_ignore_ascii_case("as") => {
                    (base.clone(), Some(name.clone()))
                }
                _ => {
                    return Err(error(
                        line,
                        "FROM requires either one or three arguments: FROM image [AS name]",
                    ));
                }
            };
            let name = name_written.as_ref().map(|n| n.to_ascii_lowercase());
            if let Some(n) = &name {
                let valid = n.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
                if !valid {
                    return Err(error(
                        line,
                        format!(
                            "invalid name for build stage: {n:?}, name can't start with a number or contain symbols"
                        ),
                    ));
                }
                if file.stages.iter().any(|s| s.name.as_deref() == Some(n)) {
                    return Err(error(line, format!("duplicate stage name {n:?}")));
                }
            }
            file.stages.push(Stage {
                name,
                name_written,
                base,
                platform: f.string("platform")?,
                line,
                original: node.original.clone(),
                instructions: Vec::new(),
            });
            continue;
        }
        let kind = instruction(node)?;
        match file.stages.last_mut() {
            Some(stage) => stage.instructions.push(Instruction {
                line,
                original: node.original.clone(),
                keyword: node
                    .original
                    .split(is_space)
                    .next()
                    .unwrap_or("")
                    .to_owned(),
                kind,
            }),
            None => match kind {
                Kind::Arg(args) => file.meta_args.extend(args.into_iter().map(|a| (line, a))),
                _ => {
                    return Err(error(
                        line,
                        format!(
                            "{} before the first FROM: only ARG may come before FROM",
                            node.keyword.to_ascii_uppercase()
                        ),
                    ));
                }
            },
        }
    }
    if file.stages.is_empty() {
        return Err(error(1, "the Dockerfile has no FROM instruction"));
    }
    Ok(file)
}

fn is_space(c: char) -> bool {
    c.is_whitespace()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> Result<Dockerfile, ParseError> {
        parse(&crate::parser::parse(text)?)
    }

    #[test]
    fn stages_and_meta_args() {
        let f = file("ARG V=1\nFROM a:$V AS Build\nRUN x\nFROM scratch\nCOPY --from=build /a /b\n")
            .unwrap();
        assert_eq!(f.meta_args[0].1.name, "V");
        assert_eq!(f.stages.len(), 2);
        assert_eq!(f.stages[0].name.as_deref(), Some("build"));
        assert_eq!(f.stage_index("BUILD"), Some(0));
        assert_eq!(f.stage_index("1"), Some(1));
        let Kind::Copy(c) = &f.stages[1].instructions[0].kind else {
            panic!()
        };
        assert_eq!(c.from.as_deref(), Some("build"));
        assert_eq!(
            (c.sources.clone(), c.dest.as_str()),
            (vec!["/a".to_owned()], "/b")
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = file("FROM a\nRUN x\nFOO bar\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("unknown instruction: FOO"), "{e}");
        let e = file("RUN x\nFROM a\n").unwrap_err();
        assert!(e.message.contains("before the first FROM"), "{e}");
        let e = file("FROM a\nCOPY --nope /a /b\n").unwrap_err();
        assert!(e.message.contains("unknown flag: --nope"), "{e}");
        assert!(
            file("FROM a\nCOPY /a\n")
                .unwrap_err()
                .message
                .contains("two arguments")
        );
        assert!(
            file("FROM a AS x\nFROM b AS X\n")
                .unwrap_err()
                .message
                .contains("duplicate")
        );
        assert!(file("FROM a AS 1x\n").is_err());
        assert!(file("FROM a b\n").is_err());
        assert!(file("FROM a\nONBUILD ONBUILD RUN x\n").is_err());
        assert!(file("FROM a\nSHELL sh -c\n").is_err());
        assert!(file("FROM a\nHEALTHCHECK --retries=x CMD true\n").is_err());
        assert!(file("FROM a\nRUN --network=bridge true\n").is_err());
    }

    #[test]
    fn instructions_are_typed() {
        let f = file(
            "FROM a\nRUN --mount=type=cache,target=/c echo hi\nHEALTHCHECK --interval=5s CMD [\"true\"]\nHEALTHCHECK NONE\nONBUILD RUN echo x\nENV a=1 b=2\nCMD [\"x\"]\n",
        )
        .unwrap();
        let ins: Vec<&Kind> = f.stages[0].instructions.iter().map(|i| &i.kind).collect();
        let Kind::Run {
            mounts, command, ..
        } = ins[0]
        else {
            panic!()
        };
        assert_eq!(mounts[0].kind, "cache");
        assert_eq!(mounts[0].target, "/c");
        assert_eq!(*command, Command::Shell("echo hi".into()));
        let Kind::Healthcheck(h) = ins[1] else {
            panic!()
        };
        assert_eq!(h.command, Some(Command::Exec(vec!["true".into()])));
        assert_eq!(h.interval.as_deref(), Some("5s"));
        let Kind::Healthcheck(h) = ins[2] else {
            panic!()
        };
        assert!(h.none);
        assert_eq!(*ins[3], Kind::OnBuild("RUN echo x".into()));
        assert_eq!(
            *ins[4],
            Kind::Env(vec![("a".into(), "1".into()), ("b".into(), "2".into())])
        );
        assert_eq!(*ins[5], Kind::Cmd(Command::Exec(vec!["x".into()])));
    }
}
