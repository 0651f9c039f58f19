//! The instructions that change the image config (ENV, LABEL, WORKDIR,
//! USER, EXPOSE, VOLUME, CMD, ENTRYPOINT, HEALTHCHECK, STOPSIGNAL, SHELL,
//! ONBUILD, MAINTAINER) and ARG.

use super::copy::resolve_dest;
use super::*;

impl Builder<'_> {
    /// Runs one instruction (cached when it can be).
    pub(super) fn step(
        &self,
        stage_index: usize,
        step: usize,
        ins: &Instruction,
        state: &State,
        scope: &mut Scope,
        trigger: bool,
    ) -> Result<State, BuildError> {
        let line = ins.line;
        let word = |w: &str, state: &State, scope: &Scope| {
            let look = self.lookup(state, scope);
            self.expand(line, w, &look)
        };
        let mut c = state.container();
        let created_by: String;
        match &ins.kind {
            Kind::Arg(decls) => {
                for d in decls {
                    let value = match self.options.build_args.get(&d.name) {
                        Some(v) => Some(v.clone()),
                        None => match &d.default {
                            Some(def) => Some(word(def, state, scope)?),
                            None => self.globals.get(&d.name).cloned().flatten(),
                        },
                    };
                    self.used(&d.name);
                    scope.args.insert(d.name.clone(), value);
                }
                // ARG changes no image; RUN's cache keys see the values.
                let _ = trigger;
                return Ok(state.clone());
            }
            Kind::Run {
                command,
                mounts,
                network,
                heredocs,
            } => {
                return self.run(
                    stage_index,
                    step,
                    ins,
                    state,
                    scope,
                    command,
                    mounts,
                    network.as_deref(),
                    heredocs,
                );
            }
            Kind::Copy(spec) => return self.copy(stage_index, step, ins, state, scope, spec),
            Kind::Env(pairs) => {
                let mut env = c.env.take().unwrap_or_default();
                let mut shown = Vec::new();
                let mut values = Vec::new();
                for (k, v) in pairs {
                    let k = word(k, state, scope)?;
                    let v = word(v, state, scope)?;
                    values.push((k, v));
                }
                for (k, v) in values {
                    shown.push(format!("{k}={v}"));
                    let entry = format!("{k}={v}");
                    match env
                        .iter_mut()
                        .find(|e| e.split_once('=').map(|(n, _)| n) == Some(k.as_str()))
                    {
                        Some(e) => *e = entry,
                        None => env.push(entry),
                    }
                }
                c.env = Some(env);
                created_by = format!("ENV {}", shown.join(" "));
            }
            Kind::Label(pairs) => {
                let labels = c.labels.get_or_insert_with(Default::default);
                let mut shown = Vec::new();
                for (k, v) in pairs {
                    let k = word(k, state, scope)?;
                    let v = word(v, state, scope)?;
                    shown.push(format!("{k}={v}"));
                    labels.insert(k, v);
                }
                created_by = format!("LABEL {}", shown.join(" "));
            }
            Kind::Workdir(w) => {
                let w = word(w, state, scope)?;
                let base = c.working_dir.clone().unwrap_or_else(|| "/".into());
                let joined = if w.starts_with('/') {
                    w.clone()
                } else {
                    format!("{base}/{w}")
                };
                let cleaned = format!("/{}", clean(&joined).unwrap_or_default());
                c.working_dir = Some(cleaned.clone());
                let created_by = format!("WORKDIR {cleaned}");
                let key = self.key(&["workdir", &state.id(), &created_by]);
                if let Some(s) = self.cached(&key) {
                    (self.events)(Event::Cached { step });
                    return Ok(s);
                }
                // The directory is made when the image lacks it.
                let view = match &state.descriptor {
                    Some(_) => Some(self.rootfs(state, "build-view")?),
                    None => None,
                };
                let root = view.as_ref().map(|v| v.dir.clone());
                let rel = resolve_dest(root.as_deref(), &cleaned);
                let exists = rel.is_empty() || root.as_ref().is_some_and(|r| r.join(&rel).is_dir());
                let s = if exists {
                    self.commit(state, None, c, created_by, true)?
                } else {
                    let layer = self
                        .store_layer(|w| {
                            let mut lw = LayerWriter::new(w, root.clone());
                            lw.ensure_dir(&rel, Ownership::default())?;
                            lw.finish().map(drop)
                        })
                        .map_err(|e| fail(line, format!("WORKDIR {cleaned}: {}", e.message)))?;
                    self.commit(state, Some(layer), c, created_by, false)?
                };
                drop(view);
                self.remember(&key, &s);
                return Ok(s);
            }
            Kind::User(u) => {
                let u = word(u, state, scope)?;
                c.user = Some(u.clone()).filter(|u| !u.is_empty());
                created_by = format!("USER {u}");
            }
            Kind::Expose(ports) => {
                let mut shown = Vec::new();
                for p in ports {
                    let p = word(p, state, scope)?;
                    for port in p.split_whitespace() {
                        let port = if port.contains('/') {
                            port.to_ascii_lowercase()
                        } else {
                            format!("{port}/tcp")
                        };
                        let number = port.split('/').next().unwrap_or_default();
                        let valid = number
                            .split('-')
                            .all(|n| n.parse::<u16>().is_ok_and(|n| n > 0));
                        if !valid {
                            return Err(fail(line, format!("invalid containerPort: {number}")));
                        }
                        shown.push(port.clone());
                        c.exposed_ports
                            .get_or_insert_with(Default::default)
                            .insert(port, Empty {});
                    }
                }
                created_by = format!("EXPOSE map[{}]", shown.join(" "));
            }
            Kind::Volume(vols) => {
                let mut shown = Vec::new();
                for v in vols {
                    let v = word(v, state, scope)?;
                    if v.trim().is_empty() {
                        return Err(fail(line, "VOLUME specified can not be an empty string"));
                    }
                    shown.push(v.clone());
                    c.volumes
                        .get_or_insert_with(Default::default)
                        .insert(v, Empty {});
                }
                created_by = format!("VOLUME [{}]", shown.join(" "));
            }
            Kind::Cmd(cmd) => {
                let v = self.command_vec(state, cmd);
                created_by = format!("CMD {}", serde_json::to_string(&v).expect("strings"));
                c.cmd = Some(v);
                scope.cmd_set = true;
            }
            Kind::Entrypoint(cmd) => {
                let v = self.command_vec(state, cmd);
                created_by = format!("ENTRYPOINT {}", serde_json::to_string(&v).expect("strings"));
                c.entrypoint = Some(v).filter(|v| !v.is_empty());
                if !scope.cmd_set {
                    c.cmd = None;
                }
            }
            Kind::Healthcheck(h) => {
                c.healthcheck = Some(self.health(line, state, h)?);
                created_by = format!(
                    "HEALTHCHECK {}",
                    ins.original
                        .trim()
                        .split_once(char::is_whitespace)
                        .map(|x| x.1)
                        .unwrap_or("")
                );
            }
            Kind::StopSignal(s) => {
                let s = word(s, state, scope)?;
                c.stop_signal = Some(s.clone());
                created_by = format!("STOPSIGNAL {s}");
            }
            Kind::Shell(sh) => {
                c.extra.insert("Shell".into(), serde_json::json!(sh));
                created_by = format!("SHELL {}", serde_json::to_string(sh).expect("strings"));
            }
            Kind::OnBuild(text) => {
                let list = c
                    .extra
                    .entry("OnBuild".to_owned())
                    .or_insert_with(|| serde_json::json!([]));
                if let Some(a) = list.as_array_mut() {
                    a.push(serde_json::json!(text));
                }
                created_by = format!("ONBUILD {text}");
            }
            Kind::Maintainer(m) => {
                let m = word(m, state, scope)?;
                created_by = format!("MAINTAINER {m}");
                let key = self.key(&["meta", &state.id(), &created_by]);
                if let Some(s) = self.cached(&key) {
                    (self.events)(Event::Cached { step });
                    return Ok(s);
                }
                let mut base = state.clone();
                base.config.author = Some(m);
                let s = self.commit(&base, None, c, created_by, true)?;
                self.remember(&key, &s);
                return Ok(s);
            }
        }
        let key = self.key(&["meta", &state.id(), &created_by]);
        if let Some(s) = self.cached(&key) {
            (self.events)(Event::Cached { step });
            return Ok(s);
        }
        let s = self.commit(state, None, c, created_by, true)?;
        self.remember(&key, &s);
        Ok(s)
    }

    fn command_vec(&self, state: &State, cmd: &Command) -> Vec<String> {
        match cmd {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => {
                let mut v = state.shell();
                v.push(s.clone());
                v
            }
        }
    }

    fn health(&self, line: usize, state: &State, h: &Health) -> Result<HealthConfig, BuildError> {
        if h.none {
            return Ok(HealthConfig {
                test: Some(vec!["NONE".into()]),
                ..HealthConfig::default()
            });
        }
        let d = |v: &Option<String>, what: &str| -> Result<Option<i64>, BuildError> {
            match v {
                None => Ok(None),
                Some(s) => {
                    let n = berth_model::time::go_duration(s)
                        .map_err(|e| fail(line, format!("--{what}: {e}")))?;
                    if n != 0 && n < 1_000_000 {
                        return Err(fail(line, format!("--{what} cannot be less than 1ms")));
                    }
                    Ok(Some(n).filter(|n| *n != 0))
                }
            }
        };
        let test = match &h.command {
            Some(Command::Exec(v)) => {
                let mut t = vec!["CMD".to_owned()];
                t.extend(v.iter().cloned());
                t
            }
            Some(Command::Shell(s)) => vec!["CMD-SHELL".to_owned(), s.clone()],
            None => Vec::new(),
        };
        let _ = state;
        Ok(HealthConfig {
            test: Some(test),
            interval: d(&h.interval, "interval")?,
            timeout: d(&h.timeout, "timeout")?,
            start_period: d(&h.start_period, "start-period")?,
            start_interval: d(&h.start_interval, "start-interval")?,
            retries: h.retries.map(i64::from).filter(|r| *r != 0),
        })
    }
}
