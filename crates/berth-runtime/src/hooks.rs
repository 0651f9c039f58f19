//! Lifecycle hooks: each gets the container's state JSON on stdin.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Hooks, Spec};

use crate::error::{Error, Result};

/// The six points of the lifecycle where the spec runs hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookPoint {
    /// Deprecated, runs with createRuntime in the runtime namespace.
    Prestart,
    /// After namespaces are made, before pivot_root, in the runtime namespace.
    CreateRuntime,
    /// Same moment, in the container namespace.
    CreateContainer,
    /// After `start`, before the user program, in the container.
    StartContainer,
    /// After the user program started, in the runtime namespace.
    Poststart,
    /// After the container is deleted, in the runtime namespace.
    Poststop,
}

impl HookPoint {
    fn name(self) -> &'static str {
        match self {
            HookPoint::Prestart => "prestart",
            HookPoint::CreateRuntime => "createRuntime",
            HookPoint::CreateContainer => "createContainer",
            HookPoint::StartContainer => "startContainer",
            HookPoint::Poststart => "poststart",
            HookPoint::Poststop => "poststop",
        }
    }

    fn list(self, h: &Hooks) -> Option<&Vec<Hook>> {
        #[allow(deprecated)]
        match self {
            HookPoint::Prestart => h.prestart().as_ref(),
            HookPoint::CreateRuntime => h.create_runtime().as_ref(),
            HookPoint::CreateContainer => h.create_container().as_ref(),
            HookPoint::StartContainer => h.start_container().as_ref(),
            HookPoint::Poststart => h.poststart().as_ref(),
            HookPoint::Poststop => h.poststop().as_ref(),
        }
    }
}

/// Whether the spec has any hooks at `point`.
pub fn has(spec: &Spec, point: HookPoint) -> bool {
    spec.hooks()
        .as_ref()
        .and_then(|h| point.list(h))
        .is_some_and(|l| !l.is_empty())
}

/// Runs the hooks at `point` in order, stopping at the first failure.
pub fn run(spec: &Spec, point: HookPoint, state: &str) -> Result<()> {
    let Some(list) = spec.hooks().as_ref().and_then(|h| point.list(h)) else {
        return Ok(());
    };
    for hook in list {
        run_one(point.name(), hook, state)?;
    }
    Ok(())
}

/// Runs every hook at `point` in order, even after one fails, and returns
/// the failures: for poststart and poststop, where a failing hook only
/// warns and "the remaining hooks and lifecycle continue".
pub fn run_all(spec: &Spec, point: HookPoint, state: &str) -> Vec<Error> {
    let Some(list) = spec.hooks().as_ref().and_then(|h| point.list(h)) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|hook| run_one(point.name(), hook, state).err())
        .collect()
}

fn run_one(kind: &'static str, hook: &Hook, state: &str) -> Result<()> {
    let fail = |message: String| Error::Hook {
        kind,
        path: hook.path().clone(),
        message,
    };
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args()
        && let Some((a0, rest)) = args.split_first()
    {
        cmd.arg0(a0).args(rest);
    }
    cmd.env_clear();
    for e in hook.env().as_deref().unwrap_or_default() {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| fail(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is not an error.
        let _ = stdin.write_all(state.as_bytes());
    }
    let status = match hook.timeout() {
        Some(t) if t > 0 => {
            let deadline = Instant::now() + Duration::from_secs(t as u64);
            loop {
                if let Some(s) = child.try_wait().map_err(|e| fail(e.to_string()))? {
                    break s;
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(fail(format!("timed out after {t}s")));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        Some(t) => return Err(fail(format!("timeout {t} must be positive"))),
        None => child.wait().map_err(|e| fail(e.to_string()))?,
    };
    if status.success() {
        Ok(())
    } else {
        Err(fail(format!("exited with {status}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{HookBuilder, HooksBuilder, SpecBuilder};

    #[test]
    fn run_all_keeps_going_after_a_failure() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        let sh = |script: String| {
            HookBuilder::default()
                .path("/bin/sh")
                .args(vec!["sh".to_owned(), "-c".to_owned(), script])
                .build()
                .unwrap()
        };
        let hooks = vec![
            sh("exit 3".to_owned()),
            sh(format!("echo second >> {}", out.display())),
        ];
        let spec = SpecBuilder::default()
            .hooks(HooksBuilder::default().poststop(hooks).build().unwrap())
            .build()
            .unwrap();
        let errors = run_all(&spec, HookPoint::Poststop, "{}");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "second\n");
        // run stops at the first failure.
        std::fs::remove_file(&out).unwrap();
        assert!(run(&spec, HookPoint::Poststop, "{}").is_err());
        assert!(!out.exists());
    }
}
