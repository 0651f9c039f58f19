//! Runs one `berth runtime` command.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use berth_runtime::ops::{self, create::CreateOptions, exec::ExecOptions};
use berth_runtime::state::{self, Container};
use berth_runtime::{Error, Result};
use clap::Parser;

use super::cli::{ExecArgs, Format, RuntimeCli, RuntimeCommand};
use super::log::Logger;

/// Parses `args` (with the program name first) as runc's command line and
/// runs the command.
pub fn main(args: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    let cli = RuntimeCli::parse_from(args);
    let log = Logger {
        file: cli.log.clone(),
        format: cli.log_format,
        debug: cli.debug,
    };
    log.debug(&format!("{:?}", cli.command));
    if cli.systemd_cgroup {
        log.error("--systemd-cgroup is not supported: berth manages cgroups through cgroupfs; omit the flag (for Podman: cgroup_manager = \"cgroupfs\")");
        return ExitCode::from(1);
    }
    if matches!(
        cli.command,
        RuntimeCommand::Create(_) | RuntimeCommand::Run(_) | RuntimeCommand::Exec(_)
    ) && let Err(e) = berth_runtime::selfexe::ensure_protected()
    {
        log.error(&format!(
            "cannot protect the runtime binary from containers: {e}"
        ));
        return ExitCode::from(1);
    }
    match run(&cli, &log) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            log.error(&e.to_string());
            ExitCode::from(1)
        }
    }
}

fn create_opts(a: &super::cli::CreateArgs) -> CreateOptions {
    CreateOptions {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
    }
}

fn run(cli: &RuntimeCli, log: &Logger) -> Result<i32> {
    let root = cli.root.as_path();
    match &cli.command {
        RuntimeCommand::Create(a) => {
            ops::create::create(root, &create_opts(a))?;
            Ok(0)
        }
        RuntimeCommand::Start(a) => {
            for w in ops::start::start(root, &a.id)? {
                log.warn(&w.to_string());
            }
            Ok(0)
        }
        RuntimeCommand::Run(a) => ops::run::run(root, create_opts(&a.create), a.detach, a.keep),
        RuntimeCommand::State(a) => {
            let c = Container::load(root, &a.id)?;
            print_json(&c.state_json(), true);
            Ok(0)
        }
        RuntimeCommand::Kill(a) => {
            let sig = ops::signal::parse_signal(&a.signal)?;
            ops::signal::kill(root, &a.id, sig, a.all)?;
            Ok(0)
        }
        RuntimeCommand::Delete(a) => {
            for w in ops::delete::delete(root, &a.id, a.force)? {
                log.warn(&w.to_string());
            }
            Ok(0)
        }
        RuntimeCommand::Exec(a) => exec(root, a),
        RuntimeCommand::Ps(a) => ps(root, a),
        RuntimeCommand::List(a) => list(root, a.format, a.quiet),
        RuntimeCommand::Pause(a) => ops::signal::pause(root, &a.id).map(|_| 0),
        RuntimeCommand::Resume(a) => ops::signal::resume(root, &a.id).map(|_| 0),
        RuntimeCommand::Update(a) => {
            let r = super::update::resources(a).map_err(Error::InvalidArgument)?;
            ops::info::update(root, &a.id, &r)?;
            Ok(0)
        }
        RuntimeCommand::Events(a) => events(root, a),
        RuntimeCommand::Features => {
            print_json(&berth_runtime::features::features(), true);
            Ok(0)
        }
        RuntimeCommand::Spec(a) => {
            let path = a.bundle.join("config.json");
            if path.exists() {
                return Err(Error::InvalidArgument(format!(
                    "{} exists: remove it first",
                    path.display()
                )));
            }
            let text = serde_json::to_string_pretty(&berth_runtime::spec::default_spec())
                .expect("spec serialises");
            std::fs::write(&path, text + "\n").map_err(Error::io("write", &path))?;
            Ok(0)
        }
    }
}

fn print_json<T: serde::Serialize>(v: &T, pretty: bool) {
    let s = if pretty {
        serde_json::to_string_pretty(v)
    } else {
        serde_json::to_string(v)
    }
    .expect("serialises");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{s}");
}

fn exec(root: &Path, a: &ExecArgs) -> Result<i32> {
    let c = Container::load(root, &a.id)?;
    let mut process = match &a.process {
        Some(p) => {
            let data = std::fs::read(p).map_err(Error::io("read process file", p))?;
            serde_json::from_slice::<oci_spec::runtime::Process>(&data).map_err(|e| {
                Error::Config {
                    path: p.clone(),
                    message: e.to_string(),
                }
            })?
        }
        None => {
            if a.command.is_empty() {
                return Err(Error::InvalidArgument(
                    "exec needs a command, or a process file with -p".into(),
                ));
            }
            let mut p = c.spec()?.process().clone().unwrap_or_default();
            p.set_args(Some(a.command.clone()));
            p.set_terminal(Some(a.tty));
            p
        }
    };
    if a.tty {
        process.set_terminal(Some(true));
    }
    if let Some(cwd) = &a.cwd {
        process.set_cwd(cwd.clone());
    }
    if !a.env.is_empty() {
        let mut env = process.env().clone().unwrap_or_default();
        env.extend(a.env.iter().cloned());
        process.set_env(Some(env));
    }
    if let Some(u) = &a.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
        let parse = |s: &str| {
            s.parse::<u32>().map_err(|_| {
                Error::InvalidArgument(format!("--user {u:?}: use UID[:GID] with numbers"))
            })
        };
        process.user_mut().set_uid(parse(uid)?);
        process.user_mut().set_gid(parse(gid)?);
    }
    if !a.additional_gids.is_empty() {
        process
            .user_mut()
            .set_additional_gids(Some(a.additional_gids.clone()));
    }
    if !a.cap.is_empty() {
        add_caps(&mut process, &a.cap)?;
    }
    if a.no_new_privs {
        process.set_no_new_privileges(Some(true));
    }
    let terminal = process.terminal().unwrap_or(false);
    let foreground = !a.detach;
    let sigs = if foreground {
        Some(ops::run::prepare_foreground()?)
    } else {
        None
    };
    let listener = if foreground && terminal && a.console_socket.is_none() {
        Some(ops::run::ConsoleListener::bind()?)
    } else {
        None
    };
    let opts = ExecOptions {
        process,
        console_socket: a
            .console_socket
            .clone()
            .or_else(|| listener.as_ref().map(|l| l.path().to_owned())),
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
    };
    let pid = ops::exec::exec(root, &a.id, &opts)?;
    let Some(sigs) = sigs else { return Ok(0) };
    let master = match &listener {
        Some(l) => Some(l.receive()?),
        None => None,
    };
    ops::run::supervise(pid, master, &sigs)
}

fn add_caps(process: &mut oci_spec::runtime::Process, caps: &[String]) -> Result<()> {
    let mut add = HashSet::new();
    for c in caps {
        let name = if c.to_ascii_uppercase().starts_with("CAP_") {
            c.to_ascii_uppercase()
        } else {
            format!("CAP_{}", c.to_ascii_uppercase())
        };
        let cap: oci_spec::runtime::Capability =
            serde_json::from_value(serde_json::Value::String(name.clone()))
                .map_err(|_| Error::InvalidArgument(format!("unknown capability {c:?}")))?;
        add.insert(cap);
    }
    let mut set = process.capabilities().clone().unwrap_or_default();
    let merge = |cur: &Option<HashSet<oci_spec::runtime::Capability>>| {
        let mut s = cur.clone().unwrap_or_default();
        s.extend(add.iter().copied());
        Some(s)
    };
    set.set_bounding(merge(set.bounding()));
    set.set_effective(merge(set.effective()));
    set.set_permitted(merge(set.permitted()));
    process.set_capabilities(Some(set));
    Ok(())
}

fn ps(root: &Path, a: &super::cli::PsArgs) -> Result<i32> {
    let pids = ops::info::pids(root, &a.id)?;
    if a.format == Format::Json {
        print_json(&pids, false);
        return Ok(0);
    }
    let args: Vec<String> = if a.ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        a.ps_args.clone()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(Error::io("run", "ps"))?;
    if !out.status.success() {
        return Err(Error::InvalidArgument(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| Error::InvalidArgument("ps output has no PID column".into()))?;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            let _ = writeln!(stdout, "{line}");
        }
    }
    Ok(0)
}

fn list(root: &Path, format: Format, quiet: bool) -> Result<i32> {
    let cs = state::list(root)?;
    let mut out = std::io::stdout().lock();
    if quiet {
        for c in &cs {
            let _ = writeln!(out, "{}", c.saved.id);
        }
        return Ok(0);
    }
    if format == Format::Json {
        let all: Vec<_> = cs
            .iter()
            .map(|c| {
                let mut s = c.state_json();
                s.owner = "root".into();
                s
            })
            .collect();
        print_json(&all, false);
        return Ok(0);
    }
    let mut rows = vec![
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
            .map(String::from)
            .to_vec(),
    ];
    for c in &cs {
        let s = c.state_json();
        rows.push(vec![
            s.id,
            s.pid.to_string(),
            s.status.to_string(),
            s.bundle.display().to_string(),
            s.created,
            "root".into(),
        ]);
    }
    let _ = write!(out, "{}", crate::table::render(&rows, 12, 3));
    Ok(0)
}

fn events(root: &Path, a: &super::cli::EventsArgs) -> Result<i32> {
    let interval = parse_duration(&a.interval)?;
    let emit = |kind: &str, data: serde_json::Value| {
        print_json(
            &serde_json::json!({ "type": kind, "id": a.id, "data": data }),
            false,
        );
    };
    let stats = |id: &str| -> Result<serde_json::Value> {
        Ok(serde_json::to_value(ops::info::stats(root, id)?).expect("stats serialise"))
    };
    if a.stats {
        emit("stats", stats(&a.id)?);
        return Ok(0);
    }
    let mut ooms = ops::info::oom_kills(root, &a.id).unwrap_or(0);
    loop {
        let c = Container::load(root, &a.id)?;
        if c.status() == berth_model::ContainerStatus::Stopped {
            return Ok(0);
        }
        let now = ops::info::oom_kills(root, &a.id).unwrap_or(ooms);
        if now > ooms {
            emit("oom", serde_json::Value::Null);
            ooms = now;
        }
        emit("stats", stats(&a.id)?);
        std::thread::sleep(interval);
    }
}

fn parse_duration(s: &str) -> Result<std::time::Duration> {
    let bad = || Error::InvalidArgument(format!("invalid --interval {s:?}: use e.g. 5s or 500ms"));
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| s.split_at(i))
        .ok_or_else(bad)?;
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if secs <= 0.0 {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}
