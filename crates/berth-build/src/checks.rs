//! Build checks (`berth build --check`): Docker's lint rules over a parsed
//! Dockerfile, without building.
//!
//! Each finding names its rule (as Docker's documentation does, e.g.
//! `JSONArgsRecommended`) and line. `# check=skip=Rule1,Rule2` leaves
//! rules out; `# check=error=true` makes findings fail the check.

use std::collections::BTreeSet;

use crate::instructions::{Command, Dockerfile, Kind};
use crate::parser::Parsed;
use crate::words::Lexer;

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule (`JSONArgsRecommended`).
    pub rule: &'static str,
    /// What is wrong.
    pub message: String,
    /// The line.
    pub line: usize,
}

/// The checks' verdict.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// The findings, in line order.
    pub findings: Vec<Finding>,
    /// `# check=error=true` and there are findings.
    pub error: bool,
}

/// Variables every build defines: the platforms and the proxies.
fn predefined(name: &str) -> bool {
    crate::build::PROXY_ARGS.contains(&name)
        || ["TARGET", "BUILD"].iter().any(|p| {
            name.strip_prefix(p)
                .is_some_and(|rest| matches!(rest, "PLATFORM" | "OS" | "ARCH" | "VARIANT"))
        })
}

fn secret_like(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.split(['_', '-']).any(|part| {
        matches!(
            part,
            "apikey"
                | "auth"
                | "credential"
                | "credentials"
                | "key"
                | "password"
                | "pword"
                | "passwd"
                | "secret"
                | "token"
        )
    })
}

/// Runs the checks. `base_env` gives the environment of a stage's base
/// image when it is known (`None`: unknown, so undefined variables are
/// not reported for that stage).
pub fn check(
    parsed: &Parsed,
    file: &Dockerfile,
    ignored: &dyn Fn(&str) -> bool,
    base_env: &dyn Fn(usize) -> Option<Vec<String>>,
) -> Report {
    let mut out = Vec::new();
    let mut push = |rule: &'static str, line: usize, message: String| {
        out.push(Finding {
            rule,
            message,
            line,
        })
    };
    // Directives.
    let mut skip: BTreeSet<String> = BTreeSet::new();
    let mut error = false;
    if let Some(c) = &parsed.check {
        for part in c.split(';') {
            match part.trim().split_once('=') {
                Some(("skip", rules)) => skip.extend(rules.split(',').map(|r| r.trim().to_owned())),
                Some(("error", v)) => error = v.trim() == "true",
                _ => {}
            }
        }
    }
    for (line, _) in &parsed.warnings {
        push(
            "NoEmptyContinuation",
            *line,
            "Empty continuation line found in: the line after a line continuation is empty".into(),
        );
    }
    // Instruction casing: the majority decides.
    let keywords: Vec<(&str, usize)> = parsed
        .nodes
        .iter()
        .map(|n| {
            (
                n.original.split_whitespace().next().unwrap_or(""),
                n.start_line,
            )
        })
        .collect();
    let upper = keywords
        .iter()
        .filter(|(k, _)| *k == k.to_ascii_uppercase())
        .count();
    let lower = keywords
        .iter()
        .filter(|(k, _)| *k == k.to_ascii_lowercase())
        .count();
    let want_upper = upper >= lower;
    for (k, line) in &keywords {
        let fits = if want_upper {
            *k == k.to_ascii_uppercase()
        } else {
            *k == k.to_ascii_lowercase()
        };
        if !fits {
            push(
                "ConsistentInstructionCasing",
                *line,
                format!(
                    "Command '{k}' should match the case of the command majority ({})",
                    if want_upper { "uppercase" } else { "lowercase" }
                ),
            );
        }
    }
    let lexer = Lexer::new(file.escape);
    let meta: BTreeSet<String> = file.meta_args.iter().map(|(_, a)| a.name.clone()).collect();
    for (line, a) in &file.meta_args {
        if secret_like(&a.name) {
            push(
                "SecretsUsedInArgOrEnv",
                *line,
                format!(
                    "Do not use ARG or ENV instructions for sensitive data (ARG \"{}\")",
                    a.name
                ),
            );
        }
    }
    for (i, stage) in file.stages.iter().enumerate() {
        let words: Vec<&str> = stage.original.split_whitespace().collect();
        if let Some(as_kw) = words.iter().find(|w| w.eq_ignore_ascii_case("as")) {
            let from_upper = words[0] == words[0].to_ascii_uppercase();
            let as_upper = *as_kw == as_kw.to_ascii_uppercase();
            if from_upper != as_upper {
                push(
                    "FromAsCasing",
                    stage.line,
                    format!(
                        "'{}' and '{}' keywords' casing do not match",
                        as_kw, words[0]
                    ),
                );
            }
        }
        if let Some(n) = &stage.name_written {
            if n.to_ascii_lowercase() != *n {
                push(
                    "StageNameCasing",
                    stage.line,
                    format!("Stage name '{n}' should be lowercase"),
                );
            }
            if matches!(n.to_ascii_lowercase().as_str(), "scratch" | "context") {
                push(
                    "ReservedStageName",
                    stage.line,
                    format!("'{n}' is reserved and should not be used as a stage name"),
                );
            }
        }
        // FROM's variables come from the ARGs before the first FROM.
        let from_text = format!(
            "{} {}",
            stage.base,
            stage.platform.clone().unwrap_or_default()
        );
        if let Ok(e) = lexer.process_word(&from_text, &|n| {
            (meta.contains(n) || predefined(n)).then(String::new)
        }) {
            for name in e.unset {
                push(
                    "UndefinedArgInFrom",
                    stage.line,
                    format!("FROM argument '{name}' is not declared"),
                );
            }
        }
        if let Some(p) = &stage.platform
            && p.trim() == "$TARGETPLATFORM"
        {
            push(
                "RedundantTargetPlatform",
                stage.line,
                "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior".into(),
            );
        }
        for (_, a) in &file.meta_args {
            if a.default.is_none()
                && (stage.base.contains(&format!("${}", a.name))
                    || stage.base.contains(&format!("${{{}}}", a.name)))
                && stage.base.trim_start_matches('$').trim_matches(['{', '}']) == a.name
            {
                push(
                    "InvalidDefaultArgInFrom",
                    stage.line,
                    format!(
                        "Default value for ARG {} results in empty or invalid base image name",
                        stage.base
                    ),
                );
            }
        }
        let base_is_stage = file.stage_index(&stage.base).is_some_and(|s| s < i);
        let mut known: Option<BTreeSet<String>> = if stage.base.eq_ignore_ascii_case("scratch") {
            Some(BTreeSet::new())
        } else if base_is_stage {
            None
        } else {
            base_env(i).map(|env| {
                env.iter()
                    .filter_map(|e| e.split_once('=').map(|(k, _)| k.to_owned()))
                    .collect()
            })
        };
        let mut counts = [0usize; 3];
        let mut absolute_workdir = false;
        for ins in &stage.instructions {
            let line = ins.line;
            let mut words_used: Vec<String> = Vec::new();
            match &ins.kind {
                Kind::Cmd(Command::Shell(_)) | Kind::Entrypoint(Command::Shell(_)) => {
                    let which = if matches!(ins.kind, Kind::Cmd(_)) { "CMD" } else { "ENTRYPOINT" };
                    push(
                        "JSONArgsRecommended",
                        line,
                        format!("JSON arguments recommended for {which} to prevent unintended behavior related to OS signals"),
                    );
                }
                Kind::Maintainer(_) => push(
                    "MaintainerDeprecated",
                    line,
                    "The MAINTAINER instruction is deprecated, use a label instead to define an image author".into(),
                ),
                Kind::Workdir(w) => {
                    if w.starts_with('/') || w.starts_with('$') {
                        absolute_workdir = true;
                    } else if !absolute_workdir {
                        push(
                            "WorkdirRelativePath",
                            line,
                            format!("Relative workdir \"{w}\" can have unexpected results if the base image changes"),
                        );
                    }
                    words_used.push(w.clone());
                }
                Kind::Env(pairs) | Kind::Label(pairs) => {
                    let rest = ins.original.trim().split_once(char::is_whitespace).map(|x| x.1).unwrap_or("");
                    let first = rest.split_whitespace().next().unwrap_or("");
                    if !first.contains('=') {
                        let kw = if matches!(ins.kind, Kind::Env(_)) { "ENV" } else { "LABEL" };
                        push(
                            "LegacyKeyValueFormat",
                            line,
                            format!("\"{kw} key=value\" should be used instead of legacy \"{kw} key value\" format"),
                        );
                    }
                    for (k, v) in pairs {
                        words_used.push(v.clone());
                        if matches!(ins.kind, Kind::Env(_)) && secret_like(k) {
                            push(
                                "SecretsUsedInArgOrEnv",
                                line,
                                format!("Do not use ARG or ENV instructions for sensitive data (ENV \"{k}\")"),
                            );
                        }
                    }
                }
                Kind::Arg(decls) => {
                    for d in decls {
                        if secret_like(&d.name) {
                            push(
                                "SecretsUsedInArgOrEnv",
                                line,
                                format!("Do not use ARG or ENV instructions for sensitive data (ARG \"{}\")", d.name),
                            );
                        }
                        if let Some(def) = &d.default {
                            words_used.push(def.clone());
                        }
                    }
                }
                Kind::Copy(c) => {
                    words_used.extend(c.sources.iter().filter(|s| !s.starts_with("<<")).cloned());
                    words_used.push(c.dest.clone());
                    if c.from.is_none() {
                        for s in &c.sources {
                            let cleaned = crate::context::clean(s.trim_start_matches('/')).unwrap_or_default();
                            if !cleaned.is_empty() && !crate::context::has_glob(&cleaned) && ignored(&cleaned) {
                                push(
                                    "CopyIgnoredFile",
                                    line,
                                    format!("Attempting to {} file \"{s}\" that is excluded by .dockerignore", if c.add { "Add" } else { "Copy" }),
                                );
                            }
                        }
                    }
                }
                Kind::User(u) | Kind::StopSignal(u) => words_used.push(u.clone()),
                Kind::Expose(p) | Kind::Volume(p) => words_used.extend(p.iter().cloned()),
                _ => {}
            }
            let slot = match &ins.kind {
                Kind::Cmd(_) => Some(0),
                Kind::Entrypoint(_) => Some(1),
                Kind::Healthcheck(_) => Some(2),
                _ => None,
            };
            if let Some(s) = slot {
                counts[s] += 1;
                if counts[s] == 2 {
                    let name = ["CMD", "ENTRYPOINT", "HEALTHCHECK"][s];
                    push(
                        "MultipleInstructionsDisallowed",
                        line,
                        format!(
                            "Multiple {name} instructions should not be used in the same stage because only the last one will be used"
                        ),
                    );
                }
            }
            if let Some(k) = known.as_mut() {
                for w in &words_used {
                    let look = |n: &str| (k.contains(n) || predefined(n)).then(String::new);
                    if let Ok(e) = lexer.process_word(w, &look) {
                        for name in e.unset {
                            push(
                                "UndefinedVar",
                                line,
                                format!("Usage of undefined variable '${name}'"),
                            );
                        }
                    }
                }
                match &ins.kind {
                    Kind::Env(pairs) => k.extend(pairs.iter().map(|(n, _)| n.clone())),
                    Kind::Arg(decls) => k.extend(decls.iter().map(|d| d.name.clone())),
                    _ => {}
                }
            }
        }
    }
    let mut findings: Vec<Finding> = out
        .into_iter()
        .filter(|f| !skip.contains(f.rule) && !skip.contains("all"))
        .collect();
    findings.sort_by_key(|f| f.line);
    findings.dedup();
    Report {
        error: error && !findings.is_empty(),
        findings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str, env: Option<Vec<String>>) -> Vec<(&'static str, usize)> {
        let parsed = crate::parser::parse(text).unwrap();
        let file = crate::instructions::parse(&parsed).unwrap();
        check(&parsed, &file, &|p| p == "secret.txt", &|_| env.clone())
            .findings
            .into_iter()
            .map(|f| (f.rule, f.line))
            .collect()
    }

    #[test]
    fn dockers_rules() {
        let found = rules(
            "FROM busybox as Builder\nCMD echo hi\nENV A b\nWORKDIR rel\nRUN echo $NOPE\nCOPY $NOPE2 /x\nARG DB_PASSWORD\nCMD [\"x\"]\nFROM $UNDECLARED\ncopy secret.txt /\n",
            Some(vec!["PATH=/bin".into()]),
        );
        for want in [
            ("FromAsCasing", 1),
            ("StageNameCasing", 1),
            ("JSONArgsRecommended", 2),
            ("LegacyKeyValueFormat", 3),
            ("WorkdirRelativePath", 4),
            ("UndefinedVar", 6),
            ("SecretsUsedInArgOrEnv", 7),
            ("MultipleInstructionsDisallowed", 8),
            ("UndefinedArgInFrom", 9),
            ("ConsistentInstructionCasing", 10),
            ("CopyIgnoredFile", 10),
        ] {
            assert!(found.contains(&want), "{want:?} missing from {found:?}");
        }
        // RUN is the shell's business, not the builder's.
        assert!(!found.contains(&("UndefinedVar", 5)));
    }

    #[test]
    fn clean_files_pass_and_directives_apply() {
        assert!(
            rules(
                "FROM busybox AS b\nENV A=1\nRUN echo $A\nCMD [\"sh\"]\n",
                Some(vec![])
            )
            .is_empty()
        );
        let parsed = crate::parser::parse(
            "# check=skip=JSONArgsRecommended;error=true\nFROM a\nCMD x\nENV A b\n",
        )
        .unwrap();
        let file = crate::instructions::parse(&parsed).unwrap();
        let r = check(&parsed, &file, &|_| false, &|_| None);
        assert_eq!(r.findings.len(), 1);
        assert!(r.error);
    }
}
