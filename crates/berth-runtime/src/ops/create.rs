//! `create`: set a container up and leave its init waiting for `start`.

use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use berth_model::{ContainerId, ContainerStatus};
use nix::sys::stat::Mode;
use oci_spec::runtime::Spec;

use crate::cgroups::CgroupManager;
use crate::config::{self, Bundle};
use crate::error::{Error, Result};
use crate::hooks::{self, HookPoint};
use crate::init::{self, InitArgs};
use crate::state::{self, Container, Saved};
use crate::sync::{Channel, Msg};

/// `create`'s options, as runc's command line has them.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The container id.
    pub id: String,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// Where to write the init's host pid.
    pub pid_file: Option<PathBuf>,
    /// The unix socket that receives the pty master.
    pub console_socket: Option<PathBuf>,
    /// Use a move mount and chroot instead of pivot_root.
    pub no_pivot: bool,
    /// Keep the caller's session keyring.
    pub no_new_keyring: bool,
    /// Pass descriptors 3..3+N to the container.
    pub preserve_fds: u32,
}

/// Removes whatever a failed create left: the init, the cgroups, the state
/// directory. Disarmed once the container is fully created.
struct Undo {
    dir: PathBuf,
    cgroup: Option<CgroupManager>,
    pids: Vec<i32>,
    armed: bool,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        for pid in &self.pids {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), nix::sys::signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(*pid), None);
        }
        if let Some(cg) = &self.cgroup {
            for pid in cg.pids().unwrap_or_default() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::SIGKILL,
                );
            }
            let _ = cg.destroy();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Creates the container and returns it in the `created` state.
pub fn create(root: &Path, opts: &CreateOptions) -> Result<Container> {
    create_from(root, opts, config::load_bundle(&opts.bundle)?)
}

/// [`create`] from a bundle the caller has already loaded (`run` reads it
/// first, to see whether the process has a terminal).
pub fn create_from(root: &Path, opts: &CreateOptions, bundle: Bundle) -> Result<Container> {
    let id = ContainerId::new(&opts.id)?;
    let proc_ = bundle.spec.process().as_ref().expect("validated");
    if proc_.terminal().unwrap_or(false) && opts.console_socket.is_none() {
        return Err(Error::InvalidArgument(
            "process.terminal is true: --console-socket is required (or set terminal to false)"
                .into(),
        ));
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(root)
        .map_err(Error::io("create state root", root))?;
    let dir = Container::dir_of(root, &id);
    match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::AlreadyExists {
                id: opts.id.clone(),
            });
        }
        Err(e) => return Err(Error::io("create state directory", &dir)(e)),
    }
    let mut undo = Undo {
        dir: dir.clone(),
        cgroup: None,
        pids: Vec::new(),
        armed: true,
    };
    let config_copy = serde_json::to_vec(&bundle.spec).expect("spec serialises");
    berth_sys::fs::replace_file(&dir.join("config.json"), &config_copy, 0o600)
        .map_err(Error::io("write", dir.join("config.json")))?;
    let fifo = make_fifo(&dir.join("exec.fifo"))?;
    let started = make_fifo(&dir.join("started.fifo"))?;

    let linux = bundle.spec.linux().as_ref().expect("validated");
    let cgroups_path = linux
        .cgroups_path()
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    let cgroup = CgroupManager::new(cgroups_path.as_deref(), id.as_str())?;
    cgroup.create()?;
    undo.cgroup = Some(cgroup.clone());
    let mut resources = linux.resources().clone().unwrap_or_default();
    resources.set_devices(Some(config::device_rules(&bundle.spec)));
    cgroup.apply(&resources)?;

    let seccomp = match linux.seccomp() {
        Some(s) => Some(crate::seccomp::compile_cached(
            s,
            &crate::seccomp::cache_dir(root),
        )?),
        None => None,
    };
    let console = match &opts.console_socket {
        Some(p) if proc_.terminal().unwrap_or(false) => Some(crate::console::connect(p)?),
        _ => None,
    };
    let pid = spawn_init(
        &bundle,
        &cgroup,
        &dir,
        &id,
        Fifos {
            start: fifo,
            started,
        },
        console,
        seccomp,
        opts,
        &mut undo,
    )?;
    let container = Container {
        dir,
        saved: Saved {
            id,
            pid,
            start_time: state::proc_start_time(pid)
                .ok_or_else(|| Error::Init("container init exited during create".into()))?,
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            created: state::now_rfc3339(),
            annotations: bundle.spec.annotations().clone().unwrap_or_default(),
            cgroup,
        },
    };
    container.save()?;
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, pid)?;
    }
    undo.armed = false;
    Ok(container)
}

/// The two fifos between a created init and `start`, both held read-write
/// (close-on-exec) by the init: it blocks reading `start` until `start`
/// writes a byte, and `started` reaches end of file for a reader once the
/// init has executed the user's program (or carries why it could not).
struct Fifos {
    start: OwnedFd,
    started: OwnedFd,
}

fn make_fifo(path: &Path) -> Result<OwnedFd> {
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600))
        .map_err(Error::sys(format!("mkfifo {}", path.display())))?;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(Error::io("open", path))?;
    Ok(f.into())
}

/// Writes a pid file atomically (containerd reads it as soon as it appears).
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = std::path::absolute(path).map_err(Error::io("resolve pid file", path))?;
    berth_sys::fs::atomic_write(&path, pid.to_string().as_bytes())
        .map_err(Error::io("write pid file", path))
}

#[allow(clippy::too_many_arguments)]
fn spawn_init(
    bundle: &Bundle,
    cgroup: &CgroupManager,
    dir: &Path,
    id: &ContainerId,
    fifos: Fifos,
    console: Option<OwnedFd>,
    seccomp: Option<crate::seccomp::CompiledFilter>,
    opts: &CreateOptions,
    undo: &mut Undo,
) -> Result<i32> {
    let (parent, child) = Channel::pair()?;
    // SAFETY: the runtime is single-threaded; the child only runs
    // init::stage1, which never returns and uses no pthread locks.
    let stage1 = match unsafe { crate::process::fork_for(cgroup) }? {
        (nix::unistd::ForkResult::Child, born_in_unified) => {
            drop(parent);
            init::stage1(
                InitArgs {
                    spec: &bundle.spec,
                    rootfs: &bundle.rootfs,
                    bundle: &bundle.dir,
                    cgroup,
                    born_in_unified,
                    fifo: fifos.start,
                    started: fifos.started,
                    console,
                    seccomp,
                    no_pivot: opts.no_pivot,
                    no_new_keyring: opts.no_new_keyring,
                    preserve_fds: opts.preserve_fds,
                },
                child,
            )
        }
        (nix::unistd::ForkResult::Parent { child: pid }, _) => pid,
    };
    drop(child);
    drop(fifos);
    drop(console);
    undo.pids.push(stage1.as_raw());
    let mut init_pid = 0;
    // Stage 1 sends the init's pid and the init everything after: two
    // processes on one channel, so under load the init's first message can
    // overtake the pid, which the hooks' state and ours need. Such a message
    // is held until the pid has come (the init waits for our answer, or for
    // start).
    let mut held: Option<Msg> = None;
    loop {
        let msg = match held.take() {
            Some(m) if init_pid != 0 => m,
            h => {
                held = h;
                parent.expect("it was ready")?
            }
        };
        match msg {
            m @ (Msg::Hooks | Msg::Ready) if init_pid == 0 => held = Some(m),
            Msg::MapIds => {
                write_id_maps(&bundle.spec, stage1.as_raw())?;
                parent.send(&Msg::Go)?;
            }
            Msg::Pid { pid } => {
                init_pid = pid;
                undo.pids.push(pid);
                let _ = nix::sys::wait::waitpid(stage1, None);
            }
            Msg::Hooks => {
                let state = creating_state(bundle, id, dir, init_pid);
                hooks::run(&bundle.spec, HookPoint::Prestart, &state)?;
                hooks::run(&bundle.spec, HookPoint::CreateRuntime, &state)?;
                parent.send(&Msg::HooksDone { state })?;
            }
            Msg::Ready => return Ok(init_pid),
            other => return Err(Error::Init(format!("unexpected message {other:?}"))),
        }
    }
}

/// The state the prestart, createRuntime, createContainer and startContainer
/// hooks read on stdin. The spec runs them after the environment is created
/// (lifecycle step 2), and "created" is the status from then on; runc says
/// "creating", which runtime-tools' hooks_stdin test rejects.
fn creating_state(bundle: &Bundle, id: &ContainerId, _dir: &Path, pid: i32) -> String {
    let s = state::StateJson {
        oci_version: state::OCI_VERSION.into(),
        id: id.to_string(),
        pid,
        status: ContainerStatus::Created,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: state::now_rfc3339(),
        owner: String::new(),
        annotations: bundle.spec.annotations().clone().unwrap_or_default(),
    };
    serde_json::to_string(&s).expect("state serialises")
}

fn write_id_maps(spec: &Spec, pid: i32) -> Result<()> {
    let linux = spec.linux().as_ref().expect("validated");
    let fmt = |maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        maps.as_deref()
            .unwrap_or_default()
            .iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    for (file, text) in [
        ("uid_map", fmt(linux.uid_mappings())),
        ("gid_map", fmt(linux.gid_mappings())),
    ] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, text).map_err(Error::io("write", path))?;
    }
    Ok(())
}
