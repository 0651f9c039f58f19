//! Seccomp: turning the OCI `linux.seccomp` section into a kernel filter.
//!
//! The work is split in two halves because they run in different processes:
//!
//! * [`compile`] runs in the runtime's parent process, before it forks. It
//!   maps the profile onto libseccomp rules, lets libseccomp generate the
//!   classic BPF program and exports it (through a memfd, because libseccomp
//!   2.5 has no in-memory export) into a [`CompiledFilter`]. libseccomp
//!   allocates freely, which is unsafe after `fork` in a multi-threaded
//!   program, so none of it may happen in the child.
//! * [`CompiledFilter::install`] runs in the container process just before
//!   `execve`. It is a single raw `seccomp(2)` call on the already-built
//!   program and does not allocate.
//!
//! Semantics follow the OCI runtime spec and, where the spec is silent, runc:
//!
//! * `SCMP_ACT_KILL` is `SCMP_ACT_KILL_THREAD`. `SCMP_ACT_ERRNO` and
//!   `SCMP_ACT_TRACE` take `errnoRet` (`defaultErrnoRet` for the default
//!   action) and fall back to `EPERM`.
//! * `SCMP_ACT_NOTIFY`, `listenerPath` and the notify-only flag
//!   `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` are refused: berth has no
//!   seccomp agent support, and silently dropping a notify rule would either
//!   widen or narrow the profile behind the user's back.
//! * Syscall names libseccomp does not know are skipped, so a profile written
//!   for a newer kernel still loads; they are listed by
//!   [`CompiledFilter::unknown_syscalls`] for logging.
//! * A rule whose action equals the default action is dropped (libseccomp
//!   refuses such rules and they change nothing).
//! * The comparators of one rule are ANDed. libseccomp cannot compare the
//!   same argument twice in one rule, so when an index repeats, every
//!   comparator becomes a rule of its own (an OR), exactly as runc does.
//! * `SCMP_CMP_MASKED_EQ` uses `value` as the mask and `valueTwo` as the
//!   value the masked argument must equal (the runc/libseccomp-golang
//!   reading, which Docker's profile is written for).
//! * The native architecture is always part of the filter; `architectures`
//!   adds more. A syscall made with an architecture that is not in the
//!   filter gets libseccomp's default bad-arch action, `SCMP_ACT_KILL`
//!   (kill the thread). The OCI spec does not define a bad-arch action and
//!   runc keeps libseccomp's default, so berth does too: a container run by
//!   berth and by runc reacts the same way to a foreign-ABI syscall.
//!
//! * As runc does, when the default action refuses (anything but allow and
//!   log), a syscall of the native architecture (or of its 32-bit one, when
//!   the profile lists it) whose number is above every syscall the profile
//!   names for that architecture fails with `ENOSYS`, not the default action:
//!   a syscall newer than the profile is then one the kernel "lacks", and
//!   libc falls back to the older call it replaces (`fchmodat2`,
//!   `clone3`...). The check is a few instructions put before libseccomp's
//!   program ([`enosys_stub`]).

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use libseccomp::error::SeccompError as LibError;
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};
use sha2::{Digest, Sha256};

/// The errno an `SCMP_ACT_ERRNO`/`SCMP_ACT_TRACE` action returns when the
/// profile gives none (runc's choice).
const DEFAULT_ERRNO: u32 = libc::EPERM as u32;
/// A syscall has at most six arguments.
const MAX_SYSCALL_ARGS: usize = 6;
/// The kernel's limit on the length of one classic BPF program.
const BPF_MAXINSNS: usize = 4096;
/// The size of one exported `struct sock_filter`.
const INSN_SIZE: usize = std::mem::size_of::<libc::sock_filter>();

/// Which part of the profile an action belongs to, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionScope {
    /// The profile's `defaultAction`.
    Default,
    /// A `syscalls` entry, named by its syscall names joined with commas.
    Syscalls(String),
}

impl fmt::Display for ActionScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActionScope::Default => f.write_str("defaultAction"),
            ActionScope::Syscalls(names) => write!(f, "syscalls [{names}]"),
        }
    }
}

/// Why a seccomp profile could not be compiled or installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeccompError {
    /// An action asks for seccomp user notification, which berth lacks.
    #[error("seccomp: {scope} uses SCMP_ACT_NOTIFY, but berth does not support seccomp notify")]
    NotifyUnsupported {
        /// Where the action appears.
        scope: ActionScope,
    },
    /// `listenerPath` is set; it only exists for seccomp notify.
    #[error(
        "seccomp: listenerPath {} is set, but berth does not support seccomp notify",
        path.display()
    )]
    ListenerUnsupported {
        /// The socket path from the profile.
        path: PathBuf,
    },
    /// A filter flag berth cannot honour.
    #[error("seccomp: flag {flag} is not supported (it only applies to seccomp notify)")]
    UnsupportedFlag {
        /// The flag.
        flag: LinuxSeccompFilterFlag,
    },
    /// `errnoRet`/`defaultErrnoRet` does not fit the 16 data bits of a
    /// seccomp return value.
    #[error("seccomp: {scope}: {action} return value {value} is larger than 65535")]
    ErrnoOutOfRange {
        /// Where the action appears.
        scope: ActionScope,
        /// The action (ERRNO or TRACE).
        action: LinuxSeccompAction,
        /// The value asked for.
        value: u32,
    },
    /// A `syscalls` entry contains an empty name.
    #[error("seccomp: an empty string is not a syscall name")]
    EmptySyscallName,
    /// An argument comparator names an argument a syscall cannot have.
    #[error("seccomp: syscalls [{syscalls}]: argument index {index} is out of range (0-5)")]
    ArgIndexOutOfRange {
        /// The entry's syscall names, joined with commas.
        syscalls: String,
        /// The index given.
        index: usize,
    },
    /// libseccomp could not create a filter with this default action.
    #[error("seccomp: creating a filter with default action {action}: {source}")]
    CreateFilter {
        /// The default action.
        action: LinuxSeccompAction,
        /// libseccomp's error.
        #[source]
        source: LibError,
    },
    /// libseccomp (or the kernel) does not support an architecture.
    #[error("seccomp: adding architecture {arch}: {source}")]
    UnsupportedArch {
        /// The architecture.
        arch: Arch,
        /// libseccomp's error.
        #[source]
        source: LibError,
    },
    /// libseccomp refused a rule.
    #[error("seccomp: adding rule {action} for syscall {syscall}: {source}")]
    AddRule {
        /// The syscall.
        syscall: String,
        /// The rule's action.
        action: LinuxSeccompAction,
        /// libseccomp's error.
        #[source]
        source: LibError,
    },
    /// libseccomp could not generate the BPF program.
    #[error("seccomp: exporting the BPF program: {source}")]
    Export {
        /// libseccomp's error.
        #[source]
        source: LibError,
    },
    /// The memfd the program is exported through failed.
    #[error("seccomp: reading the exported BPF program: {source}")]
    ExportBuffer {
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// libseccomp produced something that is not a whole number of
    /// instructions, or nothing at all.
    #[error("seccomp: exported BPF program has a bad length of {bytes} bytes")]
    MalformedProgram {
        /// The length in bytes.
        bytes: usize,
    },
    /// The program is longer than the kernel accepts.
    #[error("seccomp: BPF program has {instructions} instructions, the kernel accepts 4096")]
    ProgramTooLong {
        /// Its length in instructions.
        instructions: usize,
    },
    /// `seccomp(2)` failed with EACCES.
    #[error(
        "seccomp: installing the filter was refused (EACCES): the process needs \
         no_new_privs or CAP_SYS_ADMIN"
    )]
    InstallPermissionDenied,
    /// With `SECCOMP_FILTER_FLAG_TSYNC`, another thread could not be
    /// synchronised to the new filter.
    #[error("seccomp: SECCOMP_FILTER_FLAG_TSYNC failed: thread {tid} cannot be synchronised")]
    TsyncFailed {
        /// The thread the kernel reported.
        tid: i32,
    },
    /// `seccomp(2)` failed otherwise.
    #[error("seccomp: installing the filter (flags {flags:#x}): {source}")]
    Install {
        /// The flags passed to the kernel.
        flags: libc::c_ulong,
        /// The errno.
        #[source]
        source: io::Error,
    },
}

/// A compiled seccomp program, ready to be installed after `fork`.
#[derive(Clone)]
pub struct CompiledFilter {
    /// The `struct sock_filter[]` libseccomp generated.
    program: Vec<libc::sock_filter>,
    /// `SECCOMP_FILTER_FLAG_*` bits for `seccomp(2)`.
    flags: libc::c_ulong,
    /// Names from the profile that libseccomp does not know.
    unknown: Vec<String>,
}

impl fmt::Debug for CompiledFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledFilter")
            .field("instructions", &self.program.len())
            .field("flags", &self.flags)
            .field("unknown_syscalls", &self.unknown)
            .finish()
    }
}

impl CompiledFilter {
    /// The BPF instructions, as handed to the kernel.
    pub fn instructions(&self) -> &[libc::sock_filter] {
        &self.program
    }

    /// The `SECCOMP_FILTER_FLAG_*` bits passed to `seccomp(2)`.
    pub fn flags(&self) -> libc::c_ulong {
        self.flags
    }

    /// Syscall names from the profile that libseccomp does not know and
    /// that were therefore left out, in profile order.
    pub fn unknown_syscalls(&self) -> &[String] {
        &self.unknown
    }

    /// Installs the filter on the calling thread (on all threads with
    /// `SECCOMP_FILTER_FLAG_TSYNC`) with `seccomp(SECCOMP_SET_MODE_FILTER)`.
    ///
    /// Safe to call in a child forked from a multi-threaded process: it does
    /// not allocate, and neither does building any of its errors. Unless the
    /// process has set no_new_privs, it needs CAP_SYS_ADMIN in its user
    /// namespace, otherwise [`SeccompError::InstallPermissionDenied`].
    pub fn install(&self) -> Result<(), SeccompError> {
        let prog = libc::sock_fprog {
            // compile() guarantees 1..=BPF_MAXINSNS instructions.
            len: self.program.len() as libc::c_ushort,
            filter: self.program.as_ptr().cast_mut(),
        };
        // SAFETY: `prog` points at `self.program`, which outlives the call;
        // the kernel copies the program and does not write to it.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                self.flags,
                &prog as *const libc::sock_fprog,
            )
        };
        match rc {
            0 => Ok(()),
            // With TSYNC the kernel reports the thread that could not be
            // synchronised as a positive return value.
            tid if tid > 0 => Err(SeccompError::TsyncFailed { tid: tid as i32 }),
            _ => {
                let err = io::Error::last_os_error();
                if err.raw_os_error() == Some(libc::EACCES) {
                    Err(SeccompError::InstallPermissionDenied)
                } else {
                    Err(SeccompError::Install {
                        flags: self.flags,
                        source: err,
                    })
                }
            }
        }
    }
}

/// clone's namespace flags (CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC,
/// NEWUSER, NEWPID, NEWNET): Docker's profile lets clone make namespaces
/// only with CAP_SYS_ADMIN, as unshare.
pub const CLONE_NAMESPACE_FLAGS: [u64; 7] = [
    0x0002_0000,
    0x0200_0000,
    0x0400_0000,
    0x0800_0000,
    0x1000_0000,
    0x2000_0000,
    0x4000_0000,
];

/// Compiles the OCI `linux.seccomp` section into a BPF program.
///
/// Call this before forking: libseccomp allocates. The result is installed
/// later with [`CompiledFilter::install`].
pub fn compile(s: &LinuxSeccomp) -> Result<CompiledFilter, SeccompError> {
    let plan = plan(s)?;
    let program = build(&plan)?;
    Ok(CompiledFilter {
        program,
        flags: plan.flags,
        unknown: plan.unknown,
    })
}

/// Like [`compile`], but keeps each program under `cache` (a directory of
/// the runtime's root) and reuses it for the same profile: libseccomp
/// takes milliseconds for a profile of a few hundred syscalls on three
/// architectures, which a container start should not pay each time. The
/// key covers the profile, libseccomp's version and this executable (so an
/// upgrade of either compiles afresh); an entry carries its own checksum,
/// and a missing, torn or unreadable one is compiled and written again.
/// The cache is only an optimisation: failing to write it is not an error.
pub fn compile_cached(s: &LinuxSeccomp, cache: &Path) -> Result<CompiledFilter, SeccompError> {
    // Without all of its key, no cache.
    let Some(key) = cache_key(s) else {
        return compile(s);
    };
    let path = cache.join(format!("{key}.bpf"));
    if let Some(filter) = std::fs::read(&path).ok().and_then(|b| decode_cached(&b)) {
        return Ok(filter);
    }
    let filter = compile(s)?;
    if std::fs::create_dir_all(cache).is_ok() {
        let _ = berth_sys::fs::atomic_write(&path, &encode_cached(&filter));
    }
    Ok(filter)
}

/// Where the runtime with state root `root` keeps compiled programs: a
/// name no container id can have.
pub fn cache_dir(root: &Path) -> PathBuf {
    root.join("@seccomp")
}

/// Bump when the program generated for the same profile changes.
const CACHE_FORMAT: &str = "berth-seccomp-2";

fn cache_key(s: &LinuxSeccomp) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let mut h = Sha256::new();
    h.update(CACHE_FORMAT);
    let v = libseccomp::ScmpVersion::current().ok()?;
    h.update(format!("\0{}.{}.{}", v.major, v.minor, v.micro));
    let m = std::fs::metadata("/proc/self/exe").ok()?;
    let id = (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec());
    h.update(format!("\0{id:?}\0"));
    h.update(serde_json::to_vec(s).expect("the profile serialises"));
    Some(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// `sha256(rest) | flags (native c_ulong) | length u32 LE | unknown names joined by
/// newlines | program`.
fn encode_cached(f: &CompiledFilter) -> Vec<u8> {
    let names = f.unknown.join("\n");
    let mut rest = Vec::new();
    rest.extend_from_slice(&f.flags.to_ne_bytes());
    rest.extend_from_slice(&(names.len() as u32).to_le_bytes());
    rest.extend_from_slice(names.as_bytes());
    for i in &f.program {
        rest.extend_from_slice(&i.code.to_ne_bytes());
        rest.extend_from_slice(&[i.jt, i.jf]);
        rest.extend_from_slice(&i.k.to_ne_bytes());
    }
    let mut out = Sha256::digest(&rest).to_vec();
    out.append(&mut rest);
    out
}

fn decode_cached(bytes: &[u8]) -> Option<CompiledFilter> {
    let (sum, rest) = bytes.split_at_checked(32)?;
    if Sha256::digest(rest).as_slice() != sum {
        return None;
    }
    let (flags, rest) = rest.split_at_checked(size_of::<libc::c_ulong>())?;
    let (len, rest) = rest.split_at_checked(4)?;
    let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
    let (names, program) = rest.split_at_checked(len)?;
    let names = std::str::from_utf8(names).ok()?;
    Some(CompiledFilter {
        program: decode_program(program).ok()?,
        flags: libc::c_ulong::from_ne_bytes(flags.try_into().ok()?),
        unknown: names
            .split('\n')
            .filter(|n| !n.is_empty())
            .map(String::from)
            .collect(),
    })
}

/// The profile, checked and translated into libseccomp terms, before any
/// libseccomp filter exists. Kept separate so tests can look at it.
#[derive(Debug, Clone, PartialEq)]
struct Plan {
    /// The default action, and the profile's spelling of it.
    default: (ScmpAction, LinuxSeccompAction),
    /// Extra architectures (native is always present).
    arches: Vec<(ScmpArch, Arch)>,
    /// `SECCOMP_FILTER_FLAG_*` bits.
    flags: libc::c_ulong,
    /// The rules, in profile order.
    rules: Vec<PlannedRule>,
    /// Syscall names libseccomp does not know.
    unknown: Vec<String>,
    /// For each architecture the ENOSYS stub covers, its `AUDIT_ARCH_*`,
    /// whether its numbers may carry the x32 bit, and the highest syscall
    /// number the profile names for it, whatever the action: the syscalls
    /// above it are newer than the profile.
    newest: Vec<(u32, bool, u32)>,
}

/// One libseccomp rule.
#[derive(Debug, Clone, PartialEq)]
struct PlannedRule {
    /// The syscall's name, for errors.
    name: String,
    /// The syscall, resolved for the native architecture.
    syscall: ScmpSyscall,
    /// What happens when the rule matches.
    action: ScmpAction,
    /// The profile's spelling of `action`, for errors.
    oci_action: LinuxSeccompAction,
    /// Comparators, all of which must hold.
    conditions: Vec<ScmpArgCompare>,
}

/// Checks the profile and translates it, without touching libseccomp's
/// filter state.
fn plan(s: &LinuxSeccomp) -> Result<Plan, SeccompError> {
    // An empty listenerPath means "none", as in runc.
    if let Some(path) = s
        .listener_path()
        .as_ref()
        .filter(|p| !p.as_os_str().is_empty())
    {
        return Err(SeccompError::ListenerUnsupported { path: path.clone() });
    }
    let default_oci = s.default_action();
    let default = resolve_action(default_oci, s.default_errno_ret(), &ActionScope::Default)?;

    let mut flags: libc::c_ulong = 0;
    for &flag in s.flags().iter().flatten() {
        flags |= flag_bits(flag)?;
    }

    let arches: Vec<(ScmpArch, Arch)> = s
        .architectures()
        .iter()
        .flatten()
        .map(|&a| (arch_to_scmp(a), a))
        .collect();

    let mut rules = Vec::new();
    let mut unknown = Vec::new();
    for entry in s.syscalls().iter().flatten() {
        plan_entry(entry, default, &mut rules, &mut unknown)?;
    }
    let listed: Vec<ScmpArch> = arches.iter().map(|(a, _)| *a).collect();
    let mut newest = Vec::new();
    for (arch, audit, x32) in stub_arches(&listed) {
        // Names that do not exist on an architecture resolve to
        // libseccomp's negative pseudo-numbers.
        let max = s
            .syscalls()
            .iter()
            .flatten()
            .flat_map(|e| e.names())
            .filter_map(|n| ScmpSyscall::from_name_by_arch(n, arch).ok())
            .filter_map(|nr| u32::try_from(i32::from(nr)).ok())
            .max();
        if let Some(max) = max {
            newest.push((audit, x32, max));
        }
    }

    Ok(Plan {
        default: (default, default_oci),
        arches,
        flags,
        rules,
        unknown,
        newest,
    })
}

/// Translates one `syscalls` entry into rules (or none).
fn plan_entry(
    entry: &LinuxSyscall,
    default: ScmpAction,
    rules: &mut Vec<PlannedRule>,
    unknown: &mut Vec<String>,
) -> Result<(), SeccompError> {
    let names = entry.names();
    let joined = || names.join(",");
    if names.iter().any(|n| n.is_empty()) {
        return Err(SeccompError::EmptySyscallName);
    }
    let oci_action = entry.action();
    let action = resolve_action(
        oci_action,
        entry.errno_ret(),
        &ActionScope::Syscalls(joined()),
    )?;
    if action == default {
        // libseccomp refuses rules that repeat the default action, and such
        // a rule would change nothing anyway.
        return Ok(());
    }
    let args = entry.args().as_deref().unwrap_or_default();
    let mut conditions = Vec::with_capacity(args.len());
    let mut seen = [0usize; MAX_SYSCALL_ARGS];
    for arg in args {
        let index = arg.index();
        if index >= MAX_SYSCALL_ARGS {
            return Err(SeccompError::ArgIndexOutOfRange {
                syscalls: joined(),
                index,
            });
        }
        seen[index] += 1;
        conditions.push(comparator(arg));
    }
    // One rule ANDs its comparators, but libseccomp rejects a rule that
    // compares the same argument twice. Like runc, fall back to one rule per
    // comparator then, so that any one of them matching triggers the action.
    let condition_sets: Vec<Vec<ScmpArgCompare>> = if seen.iter().any(|&n| n > 1) {
        conditions.into_iter().map(|c| vec![c]).collect()
    } else {
        vec![conditions]
    };

    for name in names {
        // libseccomp knows every architecture's syscalls; a name it cannot
        // resolve is newer than this libseccomp. runc skips those so that
        // profiles written for newer kernels keep working; so do we.
        let Ok(syscall) = ScmpSyscall::from_name(name) else {
            if !unknown.contains(name) {
                unknown.push(name.clone());
            }
            continue;
        };
        for set in &condition_sets {
            rules.push(PlannedRule {
                name: name.clone(),
                syscall,
                action,
                oci_action,
                conditions: set.clone(),
            });
        }
    }
    Ok(())
}

/// Maps an OCI action (plus its errno/trace value) to libseccomp's.
fn resolve_action(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    scope: &ActionScope,
) -> Result<ScmpAction, SeccompError> {
    // The seccomp return value carries 16 bits of data.
    let value = |v: Option<u32>| -> Result<u16, SeccompError> {
        let v = v.unwrap_or(DEFAULT_ERRNO);
        u16::try_from(v).map_err(|_| SeccompError::ErrnoOutOfRange {
            scope: scope.clone(),
            action,
            value: v,
        })
    };
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(i32::from(value(errno_ret)?)),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(value(errno_ret)?),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(SeccompError::NotifyUnsupported {
                scope: scope.clone(),
            });
        }
    })
}

/// Maps one OCI argument comparator to libseccomp's. `valueTwo` only
/// matters for `SCMP_CMP_MASKED_EQ`; elsewhere it is ignored, as in runc.
fn comparator(arg: &LinuxSeccompArg) -> ScmpArgCompare {
    let op = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        // `value` is the mask and `valueTwo` what the masked argument must
        // equal: (arg & value) == valueTwo.
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            let datum = arg.value_two().unwrap_or(0);
            return ScmpArgCompare::new(
                arg.index() as u32,
                ScmpCompareOp::MaskedEqual(arg.value()),
                datum,
            );
        }
    };
    ScmpArgCompare::new(arg.index() as u32, op, arg.value())
}

/// Maps a filter flag to its `seccomp(2)` bit.
fn flag_bits(flag: LinuxSeccompFilterFlag) -> Result<libc::c_ulong, SeccompError> {
    match flag {
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync => Ok(libc::SECCOMP_FILTER_FLAG_TSYNC),
        LinuxSeccompFilterFlag::SeccompFilterFlagLog => Ok(libc::SECCOMP_FILTER_FLAG_LOG),
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
            Ok(libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW)
        }
        // The kernel rejects this flag without a notify listener, which berth
        // never creates; say so now rather than failing with EINVAL in the
        // container's init.
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
            Err(SeccompError::UnsupportedFlag { flag })
        }
    }
}

/// Maps an OCI architecture to libseccomp's token.
fn arch_to_scmp(arch: Arch) -> ScmpArch {
    match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

/// Builds the libseccomp filter from the plan and exports its program.
fn build(plan: &Plan) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let (default, default_oci) = plan.default;
    let mut ctx = ScmpFilterContext::new(default).map_err(|source| SeccompError::CreateFilter {
        action: default_oci,
        source,
    })?;
    // The context starts with the native architecture; add_arch treats an
    // architecture already present as success, so listing native is fine.
    for &(scmp, arch) in &plan.arches {
        ctx.add_arch(scmp)
            .map_err(|source| SeccompError::UnsupportedArch { arch, source })?;
    }
    for rule in &plan.rules {
        ctx.add_rule_conditional(rule.action, rule.syscall, &rule.conditions)
            .map_err(|source| SeccompError::AddRule {
                syscall: rule.name.clone(),
                action: rule.oci_action,
                source,
            })?;
    }
    let mut program = export(&ctx)?;
    let refuses = !matches!(default, ScmpAction::Allow | ScmpAction::Log);
    if refuses && !plan.newest.is_empty() {
        let mut stubbed = enosys_stub(&plan.newest);
        stubbed.append(&mut program);
        program = stubbed;
    }
    if program.len() > BPF_MAXINSNS {
        return Err(SeccompError::ProgramTooLong {
            instructions: program.len(),
        });
    }
    Ok(program)
}

/// The architectures the ENOSYS stub covers: the native one, and the
/// 32-bit one it also runs when the profile lists it, each with its
/// `AUDIT_ARCH_*` value (the `arch` field of `struct seccomp_data`) and
/// whether its syscalls may carry the x32 bit.
fn stub_arches(listed: &[ScmpArch]) -> Vec<(ScmpArch, u32, bool)> {
    let mut out = Vec::new();
    if cfg!(target_arch = "x86_64") {
        out.push((ScmpArch::X8664, 0xC000_003E, true));
        if listed.contains(&ScmpArch::X86) {
            out.push((ScmpArch::X86, 0x4000_0003, false));
        }
    } else if cfg!(target_arch = "aarch64") {
        out.push((ScmpArch::Aarch64, 0xC000_00B7, false));
        if listed.contains(&ScmpArch::Arm) {
            out.push((ScmpArch::Arm, 0x4000_0028, false));
        }
    }
    out
}

/// Instructions that answer `ENOSYS` to a syscall of one of `arches`
/// (`AUDIT_ARCH_*`, x32 bit possible, newest number) numbered above its
/// newest, and otherwise go on to the instruction after the stub (the start
/// of libseccomp's program, which loads what it needs itself). x32 syscalls
/// (numbers with bit 30 set, on the x86_64 audit arch) are left to
/// libseccomp, which filters them as their own architecture.
///
/// One block per architecture, then one return:
/// `ld arch; jeq ARCH ? on : next; ld nr; [jset X32 ? out : on;] jgt NEWEST ? enosys : out`.
fn enosys_stub(arches: &[(u32, bool, u32)]) -> Vec<libc::sock_filter> {
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    let insn = |code: u32, jt: usize, jf: usize, k: u32| libc::sock_filter {
        code: code as u16,
        jt: u8::try_from(jt).expect("short jump"),
        jf: u8::try_from(jf).expect("short jump"),
        k,
    };
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let jump = |op: u32| libc::BPF_JMP | op | libc::BPF_K;
    let block_len = |x32: bool| if x32 { 5 } else { 4 };
    let enosys_at: usize = arches.iter().map(|a| block_len(a.1)).sum();
    let out_at = enosys_at + 1;
    let mut stub = Vec::with_capacity(out_at);
    for (audit, x32, newest) in arches {
        let start = stub.len();
        let next = start + block_len(*x32);
        // Offsets count from the instruction after the jump.
        let from = |at: usize, target: usize| target - (at + 1);
        // seccomp_data: nr at offset 0, arch at offset 4.
        stub.push(insn(load, 0, 0, 4));
        let at = stub.len();
        let elsewhere = if next == enosys_at { out_at } else { next };
        stub.push(insn(jump(libc::BPF_JEQ), 0, from(at, elsewhere), *audit));
        stub.push(insn(load, 0, 0, 0));
        if *x32 {
            let at = stub.len();
            stub.push(insn(
                jump(libc::BPF_JSET),
                from(at, out_at),
                0,
                X32_SYSCALL_BIT,
            ));
        }
        let at = stub.len();
        stub.push(insn(
            jump(libc::BPF_JGT),
            from(at, enosys_at),
            from(at, out_at),
            *newest,
        ));
    }
    stub.push(insn(
        libc::BPF_RET | libc::BPF_K,
        0,
        0,
        libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
    ));
    stub
}

/// Exports the filter's BPF program through a memfd (libseccomp 2.5 can only
/// write it to a file descriptor) and decodes it.
fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let io_err = |source| SeccompError::ExportBuffer { source };
    // SAFETY: plain syscall with a NUL-terminated name.
    let fd = unsafe { libc::memfd_create(c"berth-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io_err(io::Error::last_os_error()));
    }
    // SAFETY: `fd` was just created and is owned by nobody else.
    let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    ctx.export_bpf(&file)
        .map_err(|source| SeccompError::Export { source })?;
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0)).map_err(io_err)?;
    file.read_to_end(&mut bytes).map_err(io_err)?;
    decode_program(&bytes)
}

/// Decodes exported bytes (native-endian `struct sock_filter`s).
fn decode_program(bytes: &[u8]) -> Result<Vec<libc::sock_filter>, SeccompError> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(INSN_SIZE) {
        return Err(SeccompError::MalformedProgram { bytes: bytes.len() });
    }
    let instructions = bytes.len() / INSN_SIZE;
    if instructions > BPF_MAXINSNS {
        return Err(SeccompError::ProgramTooLong { instructions });
    }
    Ok(bytes
        .chunks_exact(INSN_SIZE)
        .map(|b| libc::sock_filter {
            code: u16::from_ne_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        })
        .collect())
}

#[cfg(test)]
mod tests;
