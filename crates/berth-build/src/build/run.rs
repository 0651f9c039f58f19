//! RUN: a process in a writable snapshot over the parent image, through
//! the engine's runtime; its layer is what it changed.

use super::*;

impl Builder<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn run(
        &self,
        stage: usize,
        step: usize,
        ins: &Instruction,
        state: &State,
        scope: &Scope,
        command: &Command,
        mounts: &[RunMount],
        network: Option<&str>,
        heredocs: &[crate::parser::Heredoc],
    ) -> Result<State, BuildError> {
        let line = ins.line;
        let c = state.container();
        // `RUN <<EOF` alone whose script starts with `#!`: run as a file
        // (the kernel reads the interpreter line), as BuildKit does.
        let script_file = match (command, heredocs.first()) {
            (Command::Shell(s), Some(h))
                if heredoc_only(s, &h.name) && h.content.starts_with("#!") =>
            {
                Some(h)
            }
            _ => None,
        };
        let args = match command {
            _ if script_file.is_some() => {
                vec![format!("/dev/pipes/{}", script_file.expect("some").name)]
            }
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => {
                let mut v = state.shell();
                let script = match heredocs.first() {
                    // `RUN <<EOF` alone: the heredoc is the script.
                    Some(h) if heredoc_only(s, &h.name) => h.content.clone(),
                    Some(_) => {
                        let mut script = s.clone();
                        for h in heredocs {
                            script.push('\n');
                            script.push_str(&h.content);
                            script.push_str(&h.name);
                        }
                        script
                    }
                    None => s.clone(),
                };
                v.push(script);
                v
            }
        };
        if args.is_empty() {
            return Err(fail(line, "RUN has no command"));
        }
        // Build args the RUN sees, unless ENV sets them.
        let mut env = c.env.clone().unwrap_or_default();
        let mut arg_env = Vec::new();
        for (k, v) in &scope.args {
            if let Some(v) = v
                && !env
                    .iter()
                    .any(|e| e.split_once('=').map(|(n, _)| n) == Some(k.as_str()))
            {
                arg_env.push(format!("{k}={v}"));
            }
        }
        for p in PROXY_ARGS {
            if let Some(v) = self.options.build_args.get(p) {
                arg_env.push(format!("{p}={v}"));
            }
        }
        let mut mount_desc = Vec::new();
        let mut process_mounts = Vec::new();
        // Views of other stages mounted for the RUN, and its secrets' files:
        // gone when the step ends, however it ends.
        let mut views = Vec::new();
        let secrets_dir = self.stores.dir.join("tmp").join(random_key("secrets"));
        let _secrets = RemoveOnDrop(secrets_dir.clone());
        if let Some(h) = script_file {
            std::fs::create_dir_all(&secrets_dir)
                .map_err(|e| fail(line, format!("create {}: {e}", secrets_dir.display())))?;
            let file = secrets_dir.join("heredoc");
            std::fs::write(&file, &h.content)
                .and_then(|()| {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))
                })
                .map_err(|e| fail(line, format!("write the heredoc: {e}")))?;
            mount_desc.push(format!("heredoc:{}", h.content));
            process_mounts.push(ProcessMount {
                kind: "bind".into(),
                source: file,
                destination: format!("/dev/pipes/{}", h.name),
                readonly: true,
            });
        }
        for m in mounts {
            match m.kind.as_str() {
                "cache" => {
                    let id = m.id.clone().unwrap_or_else(|| m.target.clone());
                    let dir = self
                        .stores
                        .dir
                        .join("cache-mounts")
                        .join(self.key(&["cache-mount", &id]));
                    std::fs::create_dir_all(&dir)
                        .map_err(|e| fail(line, format!("create the cache mount: {e}")))?;
                    process_mounts.push(ProcessMount {
                        kind: "bind".into(),
                        source: dir,
                        destination: m.target.clone(),
                        readonly: false,
                    });
                    mount_desc.push(format!("cache:{id}:{}", m.target));
                }
                "tmpfs" => {
                    process_mounts.push(ProcessMount {
                        kind: "tmpfs".into(),
                        source: PathBuf::new(),
                        destination: m.target.clone(),
                        readonly: false,
                    });
                    mount_desc.push(format!("tmpfs:{}", m.target));
                }
                "bind" if m.from.is_some() => {
                    // A stage's or image's files, read-only unless rw (and
                    // then the writes are thrown away with the view).
                    let from = m.from.clone().unwrap_or_default();
                    let from_state = self.source_state(stage, line, &from)?;
                    let view = self.rootfs(&from_state, "build-mount")?;
                    let src = m.source.clone().unwrap_or_default();
                    let tree = Tree {
                        root: &view.dir,
                        confine: Confine::InRoot,
                        ignore: None,
                        exclude: None,
                    };
                    let found = tree.matches(&src).map_err(|e| fail(line, e))?;
                    process_mounts.push(ProcessMount {
                        kind: "bind".into(),
                        source: found[0].path.clone(),
                        destination: m.target.clone(),
                        readonly: !m.readwrite,
                    });
                    mount_desc.push(format!("bind-from:{}:{src}:{}", from_state.id(), m.target));
                    views.push(view);
                }
                "secret" => {
                    let id =
                        m.id.clone()
                            .or_else(|| {
                                Path::new(&m.target)
                                    .file_name()
                                    .map(|n| n.to_string_lossy().into_owned())
                            })
                            .ok_or_else(|| fail(line, "--mount=type=secret needs an id"))?;
                    let Some(value) = self.options.secrets.get(&id) else {
                        if m.required {
                            return Err(fail(
                                line,
                                format!(
                                    "secret {id} not found: pass it with --secret id={id},src=FILE"
                                ),
                            ));
                        }
                        continue;
                    };
                    std::fs::create_dir_all(&secrets_dir).map_err(|e| {
                        fail(line, format!("create {}: {e}", secrets_dir.display()))
                    })?;
                    let file = secrets_dir.join(self.key(&["secret", &id]));
                    write_private(&file, value)
                        .map_err(|e| fail(line, format!("write the secret {id}: {e}")))?;
                    let target = if m.target.is_empty() {
                        format!("/run/secrets/{id}")
                    } else {
                        m.target.clone()
                    };
                    // The secret's value stays out of the cache key, as in
                    // BuildKit: changing it does not rerun the step.
                    mount_desc.push(format!("secret:{id}:{target}"));
                    process_mounts.push(ProcessMount {
                        kind: "bind".into(),
                        source: file,
                        destination: target,
                        readonly: true,
                    });
                }
                "bind" if m.from.is_none() => {
                    let tree = self.context_tree();
                    let src = m.source.clone().unwrap_or_default();
                    let found = tree.matches(&src).map_err(|e| fail(line, e))?;
                    let mut h = Sha256::new();
                    for f in &found {
                        tree.hash(f, &mut h)
                            .map_err(|e| fail(line, format!("read {src}: {e}")))?;
                    }
                    process_mounts.push(ProcessMount {
                        kind: "bind".into(),
                        source: found[0].path.clone(),
                        destination: m.target.clone(),
                        readonly: !m.readwrite,
                    });
                    mount_desc.push(format!("bind:{src}:{}:{:x}", m.target, h.finalize()));
                }
                other => {
                    return Err(fail(
                        line,
                        format!(
                            "RUN --mount=type={other}{} is not supported by berth yet",
                            if m.from.is_some() { ",from=..." } else { "" }
                        ),
                    ));
                }
            }
        }
        let host_network = network != Some("none");
        let shown = match command {
            Command::Exec(v) => v.join(" "),
            Command::Shell(_) => args.join(" "),
        };
        let created_by = format!("RUN {shown} # buildkit");
        let key = self.key(&[
            "run",
            &state.id(),
            &serde_json::to_string(&args).expect("strings"),
            &arg_env.join("\n"),
            &mount_desc.join("\n"),
            &host_network.to_string(),
        ]);
        if let Some(s) = self.cached(&key) {
            (self.events)(Event::Cached { step });
            return Ok(s);
        }
        env.extend(arg_env);
        let mut rootfs = self.rootfs(state, "build")?;
        let cwd = c
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into());
        if let Ok(root) = berth_sys::fs::open_dir_path(&rootfs.dir) {
            let _ = berth_sys::fs::mkdir_all_in_root(&root, Path::new(&cwd), 0o755);
        }
        // Mount points the image lacks are made by the runtime; they are
        // not the RUN's doing, so they leave the layer after it.
        let stubs: Vec<String> = process_mounts
            .iter()
            .filter_map(|m| first_missing(&rootfs.dir, &m.destination))
            .collect();
        let process = Process {
            id: rootfs.key.clone(),
            args: args.clone(),
            env,
            cwd,
            user: c.user.clone().unwrap_or_default(),
            host_network,
            mounts: process_mounts,
        };
        let mut tail: Vec<u8> = Vec::new();
        let code = self
            .host
            .run(&rootfs.dir, &process, &mut |bytes| {
                tail.extend_from_slice(bytes);
                if tail.len() > 8192 {
                    tail.drain(..tail.len() - 8192);
                }
                (self.events)(Event::Output {
                    step,
                    bytes: bytes.to_vec(),
                });
            })
            .map_err(|e| fail(line, format!("RUN {shown}: {e}")))?;
        if code != 0 {
            let text = String::from_utf8_lossy(&tail);
            let last: Vec<&str> = text.lines().rev().take(6).collect();
            let last: Vec<&str> = last.into_iter().rev().collect();
            let mut message = format!(
                "process \"{}\" did not complete successfully: exit code: {code}",
                args.join(" ")
            );
            if !last.is_empty() {
                message.push_str("\nlast output:\n  ");
                message.push_str(&last.join("\n  "));
            }
            return Err(BuildError {
                exit_code: Some(code),
                ..fail(line, message)
            });
        }
        rootfs.unmount();
        let Mount::Overlay { upper, .. } = &rootfs.mount else {
            return Err(fail(line, "RUN needs the overlay snapshotter"));
        };
        let upper = upper.clone();
        for stub in &stubs {
            remove_stub(&upper, stub);
        }
        drop(views);
        // The upper directory, made to hold exactly the layer, becomes the
        // layer's snapshot as it is: the next step needs no unpacking.
        let skip = |p: &str| self.host.engine_made(p);
        berth_image::layer::strip(&upper, &skip)
            .map_err(|e| fail(line, format!("RUN's changes: {e}")))?;
        let layer = self.store_layer(|w| berth_image::layer::write_diff(&upper, w, &skip))?;
        let diff_id = layer.0.clone();
        let s = self.commit(state, Some(layer), c, created_by, false)?;
        if let Some(chain) = berth_image::snapshot::chain_ids(&s.config.rootfs.diff_ids).pop() {
            // Failing here costs only an unpack later.
            let _ = self.stores.snapshots.commit(&rootfs.key, &chain, &diff_id);
        }
        drop(rootfs);
        self.remember(&key, &s);
        Ok(s)
    }
}

/// Whether the shell form `s` is only the heredoc `name` (`<<EOF`,
/// `<<-EOF`, `<<"EOF"`).
fn heredoc_only(s: &str, name: &str) -> bool {
    s.trim()
        .trim_start_matches("<<")
        .trim_start_matches('-')
        .trim_matches(['"', '\''])
        == name
}

/// Removes a directory tree when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `bytes` to a new file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(path)?;
    f.write_all(bytes)
}

/// The first component of `dest` (absolute, in the image) that `root`
/// lacks, as a path relative to the root: what mounting there creates.
fn first_missing(root: &Path, dest: &str) -> Option<String> {
    let mut rel = String::new();
    for part in dest.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if !rel.is_empty() {
            rel.push('/');
        }
        rel.push_str(part);
        if std::fs::symlink_metadata(root.join(&rel)).is_err() {
            return Some(rel);
        }
    }
    None
}

/// Removes the mount stub `rel` from the upper directory when it holds
/// nothing but stubs (empty directories, empty files): whatever the RUN
/// put beside the mount point stays.
fn remove_stub(upper: &Path, rel: &str) {
    fn only_stubs(p: &Path) -> bool {
        match std::fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => std::fs::read_dir(p)
                .map(|d| d.flatten().all(|e| only_stubs(&e.path())))
                .unwrap_or(false),
            Ok(m) => m.is_file() && m.len() == 0,
            Err(_) => true,
        }
    }
    let path = upper.join(rel);
    if only_stubs(&path) {
        let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
    }
}
