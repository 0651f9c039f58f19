//! Execs: processes the shim starts in the running container, each with
//! its stdio on the connection that asked for it.

use std::os::fd::RawFd;
use std::time::Instant;

use super::stdio::{Input, Stdio};
use super::{DRAIN, Role, Shim, flush_client};
use crate::protocol::{frame_header, stream};

/// A process run in the container besides its init.
pub(super) struct Exec {
    pub(super) key: u64,
    pub(super) pid: i32,
    pub(super) input: Input,
    pub(super) master: Option<RawFd>,
    pub(super) exit: Option<i32>,
    pub(super) exited_at: Option<Instant>,
}

impl Shim<'_> {
    /// Starts an exec with pipes (or a pty) as its stdio.
    pub(super) fn spawn_exec(
        &mut self,
        process: serde_json::Value,
        stdin: bool,
    ) -> Result<(u64, i32), String> {
        // Parsed in the helper (below): oci-spec's code is large and the
        // loop has no other use for it.
        let tty = process
            .get("terminal")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let key = self.next_exec;
        self.next_exec += 1;
        let root = &self.config.runtime_root;
        let id = &self.config.id;
        let (pid, stdio) = Stdio::around(tty, stdin, Some(key), |console| {
            // In a child: the exec's work touches code (the runtime's,
            // libseccomp's) that the shim's loop never needs again, and what
            // a child touches does not count to the shim. The process
            // becomes the shim's child when the helper exits (the shim is a
            // subreaper).
            super::host::in_child(|| {
                let process: oci_spec::runtime::Process =
                    serde_json::from_value(process).map_err(|e| format!("invalid process: {e}"))?;
                let opts = berth_runtime::ops::exec::ExecOptions {
                    process,
                    console_socket: console,
                    ..Default::default()
                };
                berth_runtime::ops::exec::exec(root, id, &opts).map_err(|e| e.to_string())
            })
        })?;
        let Stdio {
            outputs,
            input,
            master,
        } = stdio;
        self.outputs.extend(outputs);
        self.execs.push(Exec {
            key,
            pid,
            input: Input::new(input),
            master,
            exit: None,
            exited_at: None,
        });
        Ok((key, pid))
    }

    /// Ends the execs that have exited and whose output is drained: their
    /// clients get the exit frame.
    pub(super) fn finish_execs(&mut self) {
        let mut i = 0;
        while i < self.execs.len() {
            let e = &self.execs[i];
            let key = e.key;
            let drained = !self.outputs.iter().any(|o| o.owner == Some(key));
            let done = match (e.exit, e.exited_at) {
                (Some(_), Some(at)) => drained || at.elapsed() > DRAIN || self.exit.is_some(),
                _ => false,
            };
            if !done {
                i += 1;
                continue;
            }
            let code = e.exit.unwrap_or(255);
            self.outputs.retain(|o| o.owner != Some(key));
            if let Some(c) = self
                .clients
                .iter_mut()
                .find(|c| c.role == Role::Exec { key })
            {
                c.output.extend_from_slice(&frame_header(stream::EXIT, 4));
                c.output.extend_from_slice(&code.to_be_bytes());
                c.role = Role::Done;
                flush_client(c);
            }
            self.execs.remove(i);
        }
    }
}
