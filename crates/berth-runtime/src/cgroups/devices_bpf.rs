//! The cgroup v2 device controller: cgroup2 has no devices.allow file;
//! instead the kernel runs every `BPF_PROG_TYPE_CGROUP_DEVICE` program
//! attached to the process's cgroup (and its ancestors) on each device open
//! or mknod. This file compiles the OCI rule list into such a program by
//! hand (no LLVM, no libbpf) and loads and attaches it with raw `bpf(2)`.
//!
//! Semantics: rules are read as a list where later rules override earlier
//! ones, per access bit, and anything no rule decides is denied. The program
//! therefore walks the rules from last to first, tracking the requested
//! access bits still undecided: a matching deny rule that covers one of them
//! denies; a matching allow rule settles the bits it covers and allows once
//! none are left.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::devices::{DevKind, DeviceRule};
use super::error::CgroupError;

/// One eBPF instruction in the kernel's `struct bpf_insn` layout.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Insn {
    /// Opcode.
    pub code: u8,
    /// Destination and source registers, 4 bits each.
    pub regs: u8,
    /// Jump offset (in instructions, from the next one) or memory offset.
    pub off: i16,
    /// Immediate operand.
    pub imm: i32,
}

// Opcodes used: class | operation | source, per the kernel's eBPF ISA.
pub(super) const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
pub(super) const ALU64_AND_K: u8 = 0x57; // BPF_ALU64 | BPF_AND | BPF_K
pub(super) const ALU64_RSH_K: u8 = 0x77; // BPF_ALU64 | BPF_RSH | BPF_K
pub(super) const ALU64_MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
pub(super) const ALU64_MOV_X: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
pub(super) const JMP_JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
pub(super) const JMP_JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
pub(super) const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

// Registers. R1 holds the context (struct bpf_cgroup_dev_ctx) on entry;
// R2..R5 are scratch and hold the request for the whole program.
const R0: u8 = 0;
const R1: u8 = 1;
const R_TYPE: u8 = 2;
const R_ACCESS: u8 = 3;
const R_MAJOR: u8 = 4;
const R_MINOR: u8 = 5;

// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
// with access_type = (access << 16) | type.
const CTX_ACCESS_TYPE: i16 = 0;
const CTX_MAJOR: i16 = 4;
const CTX_MINOR: i16 = 8;
const DEV_BLOCK: i32 = 1; // BPF_DEVCG_DEV_BLOCK
const DEV_CHAR: i32 = 2; // BPF_DEVCG_DEV_CHAR

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        // C bit-fields `dst_reg:4, src_reg:4` fill a byte from its low bits
        // on little-endian targets and from its high bits on big-endian ones.
        let regs = if cfg!(target_endian = "big") {
            (dst << 4) | src
        } else {
            dst | (src << 4)
        };
        Self {
            code,
            regs,
            off,
            imm,
        }
    }

    /// The destination register.
    #[cfg(test)]
    pub(super) fn dst(&self) -> usize {
        usize::from(if cfg!(target_endian = "big") {
            self.regs >> 4
        } else {
            self.regs & 0xf
        })
    }

    /// The source register.
    #[cfg(test)]
    pub(super) fn src(&self) -> usize {
        usize::from(if cfg!(target_endian = "big") {
            self.regs & 0xf
        } else {
            self.regs >> 4
        })
    }
}

/// The fixed prologue: unpack the context into R2..R5.
fn prologue() -> [Insn; 6] {
    [
        Insn::new(LDX_MEM_W, R_TYPE, R1, CTX_ACCESS_TYPE, 0),
        Insn::new(ALU64_AND_K, R_TYPE, 0, 0, 0xffff),
        Insn::new(LDX_MEM_W, R_ACCESS, R1, CTX_ACCESS_TYPE, 0),
        Insn::new(ALU64_RSH_K, R_ACCESS, 0, 0, 16),
        Insn::new(LDX_MEM_W, R_MAJOR, R1, CTX_MAJOR, 0),
        Insn::new(LDX_MEM_W, R_MINOR, R1, CTX_MINOR, 0),
    ]
}

/// `return verdict`.
fn verdict(allow: bool) -> [Insn; 2] {
    [
        Insn::new(ALU64_MOV_K, R0, 0, 0, i32::from(allow)),
        Insn::new(JMP_EXIT, 0, 0, 0, 0),
    ]
}

/// One rule's block. Every "does not apply" jump targets the first
/// instruction after the block, whose offset is only known once the block is
/// complete; those jumps are emitted with `off = i16::MAX` and patched.
fn rule_block(rule: &DeviceRule) -> Vec<Insn> {
    const NEXT: i16 = i16::MAX;
    let mut b = Vec::with_capacity(12);
    let ty = match rule.kind {
        DevKind::All => None,
        DevKind::Block => Some(DEV_BLOCK),
        DevKind::Char => Some(DEV_CHAR),
    };
    if let Some(ty) = ty {
        b.push(Insn::new(JMP_JNE_K, R_TYPE, 0, NEXT, ty));
        // Type 'a' selects every device; its numbers are ignored, as the v1
        // kernel ignores them too.
        for (reg, n) in [(R_MAJOR, rule.major), (R_MINOR, rule.minor)] {
            if let Some(n) = n {
                // parse_rules keeps numbers within i32.
                b.push(Insn::new(JMP_JNE_K, reg, 0, NEXT, n as i32));
            }
        }
    }
    let access = i32::from(rule.access);
    b.push(Insn::new(ALU64_MOV_X, R0, R_ACCESS, 0, 0));
    b.push(Insn::new(ALU64_AND_K, R0, 0, 0, access));
    b.push(Insn::new(JMP_JEQ_K, R0, 0, NEXT, 0));
    if rule.allow {
        b.push(Insn::new(ALU64_AND_K, R_ACCESS, 0, 0, !access));
        b.push(Insn::new(JMP_JNE_K, R_ACCESS, 0, NEXT, 0));
    }
    b.extend(verdict(rule.allow));
    let len = b.len();
    for (i, insn) in b.iter_mut().enumerate() {
        if insn.off == NEXT {
            // Blocks are at most a dozen instructions: always fits.
            insn.off = (len - i - 1) as i16;
        }
    }
    b
}

/// Compiles `rules` (in spec order) into a device program.
pub(super) fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut insns = prologue().to_vec();
    for rule in rules.iter().rev() {
        insns.extend(rule_block(rule));
        if rule.is_total() {
            // Everything is decided here; earlier rules are unreachable.
            break;
        }
    }
    insns.extend(verdict(false));
    insns
}

// bpf(2) commands and constants from the kernel's uapi <linux/bpf.h>.
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// A zeroed `union bpf_attr`, larger than any kernel's, filled by offset.
///
/// The kernel copies in min(size, its own size) and rejects non-zero bytes
/// past what it knows, so a big zeroed buffer works on every version; it
/// also writes some results (e.g. the query revision) into the user buffer
/// without regard to the size passed, so the buffer must be full-sized.
#[repr(C, align(8))]
struct Attr([u8; 256]);

impl Attr {
    fn new() -> Self {
        Self([0; 256])
    }
    fn set_u32(&mut self, off: usize, v: u32) -> &mut Self {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn set_u64(&mut self, off: usize, v: u64) -> &mut Self {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u32_at(&self, off: usize) -> u32 {
        let mut b = [0; 4];
        b.copy_from_slice(&self.0[off..off + 4]);
        u32::from_ne_bytes(b)
    }
    fn bpf(&mut self, cmd: libc::c_int) -> io::Result<libc::c_long> {
        // SAFETY: the attr buffer is valid, writable and as large as the
        // size passed; every pointer stored in it is kept alive by the
        // caller for the duration of the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd,
                self.0.as_mut_ptr(),
                self.0.len() as libc::c_uint,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }
}

fn fd_from(r: libc::c_long) -> OwnedFd {
    // SAFETY: a successful bpf() that returns a descriptor hands us the only
    // reference to a fresh fd.
    unsafe { OwnedFd::from_raw_fd(r as RawFd) }
}

fn bpf_err(op: &'static str, path: &Path, source: io::Error, log: String) -> CgroupError {
    CgroupError::Bpf {
        op,
        path: path.to_owned(),
        source,
        log,
    }
}

/// Loads a device program, returning its fd. On failure the load is
/// repeated with the verifier log on, so the error says why.
pub(super) fn load(insns: &[Insn]) -> Result<OwnedFd, CgroupError> {
    let license: &CStr = c"Apache";
    let mut log = vec![0u8; 64 * 1024];
    let attempt = |log_buf: Option<&mut [u8]>| {
        let mut a = Attr::new();
        a.set_u32(0, BPF_PROG_TYPE_CGROUP_DEVICE)
            .set_u32(4, insns.len() as u32)
            .set_u64(8, insns.as_ptr() as u64)
            .set_u64(16, license.as_ptr() as u64);
        if let Some(buf) = log_buf {
            a.set_u32(24, 1)
                .set_u32(28, buf.len() as u32)
                .set_u64(32, buf.as_mut_ptr() as u64);
        }
        a.bpf(BPF_PROG_LOAD).map(fd_from)
    };
    let no_path = Path::new("-");
    match attempt(None) {
        Ok(fd) => Ok(fd),
        Err(first) => match attempt(Some(&mut log)) {
            Ok(fd) => Ok(fd),
            Err(_) => {
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                let text = String::from_utf8_lossy(&log[..end]).trim_end().to_owned();
                Err(bpf_err("BPF_PROG_LOAD", no_path, first, text))
            }
        },
    }
}

/// The ids of the device programs attached directly to the cgroup.
fn query(cgroup: &File, path: &Path) -> Result<Vec<u32>, CgroupError> {
    let mut cap = 16usize;
    loop {
        let mut ids = vec![0u32; cap];
        let mut a = Attr::new();
        a.set_u32(0, cgroup.as_raw_fd() as u32)
            .set_u32(4, BPF_CGROUP_DEVICE)
            .set_u64(16, ids.as_mut_ptr() as u64)
            .set_u32(24, cap as u32);
        match a.bpf(BPF_PROG_QUERY) {
            Ok(_) => {
                ids.truncate(a.u32_at(24) as usize);
                return Ok(ids);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && cap < 65536 => cap *= 16,
            Err(e) => return Err(bpf_err("BPF_PROG_QUERY", path, e, String::new())),
        }
    }
}

fn attach_or_detach(cmd: libc::c_int, cgroup: &File, prog: &OwnedFd, flags: u32) -> io::Result<()> {
    let mut a = Attr::new();
    a.set_u32(0, cgroup.as_raw_fd() as u32)
        .set_u32(4, prog.as_raw_fd() as u32)
        .set_u32(8, BPF_CGROUP_DEVICE)
        .set_u32(12, flags);
    a.bpf(cmd).map(drop)
}

/// Detaches the programs with these ids. A program that vanished meanwhile
/// (ENOENT) is already detached.
fn detach_ids(cgroup: &File, path: &Path, ids: &[u32]) -> Result<(), CgroupError> {
    for &id in ids {
        let mut a = Attr::new();
        a.set_u32(0, id);
        let prog = match a.bpf(BPF_PROG_GET_FD_BY_ID) {
            Ok(fd) => fd_from(fd),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(bpf_err("BPF_PROG_GET_FD_BY_ID", path, e, String::new())),
        };
        match attach_or_detach(BPF_PROG_DETACH, cgroup, &prog, 0) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(bpf_err("BPF_PROG_DETACH", path, e, String::new())),
        }
    }
    Ok(())
}

/// Opens a cgroup2 directory for attaching.
fn open_cgroup(dir: &Path) -> Result<File, CgroupError> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)
        .map_err(|source| CgroupError::Read {
            path: dir.to_owned(),
            source,
        })
}

/// Replaces the device programs attached to the cgroup at `dir` with one
/// enforcing `rules`.
///
/// The new program is attached before the old ones are detached so the
/// cgroup is never without a filter. If another manager attached a program
/// without `BPF_F_ALLOW_MULTI`, the kernel refuses to mix modes; then the old
/// programs must go first.
pub(super) fn apply(dir: &Path, rules: &[DeviceRule]) -> Result<(), CgroupError> {
    let cgroup = open_cgroup(dir)?;
    let old = query(&cgroup, dir)?;
    let prog = load(&program(rules))?;
    match attach_or_detach(BPF_PROG_ATTACH, &cgroup, &prog, BPF_F_ALLOW_MULTI) {
        Ok(()) => detach_ids(&cgroup, dir, &old),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) && !old.is_empty() => {
            detach_ids(&cgroup, dir, &old)?;
            attach_or_detach(BPF_PROG_ATTACH, &cgroup, &prog, BPF_F_ALLOW_MULTI)
                .map_err(|e| bpf_err("BPF_PROG_ATTACH", dir, e, String::new()))
        }
        Err(e) => Err(bpf_err("BPF_PROG_ATTACH", dir, e, String::new())),
    }
}

/// How many device programs are attached directly to the cgroup at `dir`.
#[cfg(test)]
pub(super) fn attached_count(dir: &Path) -> Result<usize, CgroupError> {
    let cgroup = open_cgroup(dir)?;
    Ok(query(&cgroup, dir)?.len())
}

#[cfg(test)]
#[path = "devices_bpf_tests.rs"]
mod tests;
