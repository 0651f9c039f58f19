//! Tests for the device program generator: structure, semantics (through a
//! small interpreter of the instructions it emits, checked against a direct
//! reading of the rules) and loading into the running kernel.

use super::super::devices::tests::spec_rule;
use super::super::devices::{ACC_ALL, ACC_MKNOD, ACC_READ, ACC_WRITE, parse_rules};
use super::*;

/// A device request as the kernel presents it to the program.
#[derive(Debug, Clone, Copy)]
struct Request {
    kind: DevKind,
    major: u32,
    minor: u32,
    access: u8,
}

/// Runs a program of the opcodes `program` emits. Panics on anything else,
/// on a jump out of the program, or on running off its end.
fn run(insns: &[Insn], req: Request) -> u64 {
    let ty = match req.kind {
        DevKind::Block => 1u32,
        DevKind::Char => 2,
        DevKind::All => unreachable!("requests are for a concrete device"),
    };
    let ctx = [(u32::from(req.access) << 16) | ty, req.major, req.minor];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    for _ in 0..10_000 {
        let i = insns[pc];
        let (dst, src) = (i.dst(), i.src());
        let imm = i64::from(i.imm) as u64;
        let mut next = pc + 1;
        match i.code {
            LDX_MEM_W => {
                assert_eq!(src, 1, "loads only from the context");
                r[dst] = u64::from(ctx[i.off as usize / 4]);
            }
            ALU64_AND_K => r[dst] &= imm,
            ALU64_RSH_K => r[dst] >>= imm,
            ALU64_MOV_K => r[dst] = imm,
            ALU64_MOV_X => r[dst] = r[src],
            JMP_JEQ_K | JMP_JNE_K => {
                if (r[dst] == imm) == (i.code == JMP_JEQ_K) {
                    next = (pc as isize + 1 + i.off as isize) as usize;
                }
            }
            JMP_EXIT => return r[0],
            c => panic!("unexpected opcode {c:#x} at {pc}"),
        }
        assert!(next < insns.len(), "jump out of program at {pc}");
        pc = next;
    }
    panic!("program did not terminate");
}

/// The rules read directly: every requested access bit is decided by the
/// last rule covering the device and that bit; undecided means denied.
fn reference(rules: &[DeviceRule], req: Request) -> bool {
    let covers = |r: &DeviceRule| {
        r.kind == DevKind::All
            || (r.kind == req.kind
                && r.major.is_none_or(|m| m == req.major)
                && r.minor.is_none_or(|m| m == req.minor))
    };
    [ACC_MKNOD, ACC_READ, ACC_WRITE]
        .into_iter()
        .filter(|bit| req.access & bit != 0)
        .all(|bit| {
            rules
                .iter()
                .rev()
                .find(|r| covers(r) && r.access & bit != 0)
                .is_some_and(|r| r.allow)
        })
}

/// A deterministic pseudo-random rule list (no external RNG needed).
fn random_rules(seed: &mut u64, n: usize) -> Vec<DeviceRule> {
    let mut next = |m: u64| {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*seed >> 33) % m
    };
    (0..n)
        .map(|_| DeviceRule {
            allow: next(2) == 0,
            kind: [DevKind::All, DevKind::Block, DevKind::Char][next(3) as usize],
            major: [None, Some(1), Some(8)][next(3) as usize],
            minor: [None, Some(3), Some(5)][next(3) as usize],
            access: 1 + next(7) as u8,
        })
        .collect()
}

fn all_requests() -> Vec<Request> {
    let mut v = Vec::new();
    for kind in [DevKind::Block, DevKind::Char] {
        for major in [1, 2, 8] {
            for minor in [3, 4, 5] {
                for access in 1..=ACC_ALL {
                    v.push(Request {
                        kind,
                        major,
                        minor,
                        access,
                    });
                }
            }
        }
    }
    v
}

#[test]
fn empty_rule_list_denies_everything() {
    let p = program(&[]);
    assert_eq!(p.len(), 6 + 2);
    assert_eq!(p[6], Insn::new(ALU64_MOV_K, 0, 0, 0, 0));
    assert_eq!(p[7].code, JMP_EXIT);
    assert!(all_requests().into_iter().all(|r| run(&p, r) == 0));
}

#[test]
fn block_sizes_and_jump_targets() {
    let rules = parse_rules(&[
        spec_rule(false, 'a', None, None, "rwm"),
        spec_rule(true, 'c', Some(1), Some(3), "rw"),
        spec_rule(false, 'b', Some(8), None, "w"),
    ])
    .unwrap();
    let p = program(&rules);
    // prologue 6; allow c 1:3 = 3 checks + 3 access + 2 settle + 2 verdict;
    // deny b 8:* = 2 checks + 3 access + 2 verdict; deny-all = 3 + 2;
    // epilogue 2.
    assert_eq!(p.len(), 6 + 10 + 7 + 5 + 2);
    // Every jump lands inside the program, and every block's "does not
    // apply" jumps land on the next block's first instruction.
    for (pc, i) in p.iter().enumerate() {
        if i.code == JMP_JEQ_K || i.code == JMP_JNE_K {
            let t = pc as isize + 1 + i.off as isize;
            assert!(t > pc as isize && (t as usize) < p.len(), "jump at {pc}");
        }
    }
    assert_eq!(p.last().unwrap().code, JMP_EXIT);
}

#[test]
fn total_rule_cuts_off_earlier_rules() {
    let rules = parse_rules(&[
        spec_rule(true, 'c', Some(1), Some(3), "rw"),
        spec_rule(true, 'a', None, None, "rwm"),
    ])
    .unwrap();
    // Only the allow-all block: 3 access + 2 settle + 2 verdict.
    assert_eq!(program(&rules).len(), 6 + 7 + 2);
}

#[test]
fn typical_container_rules() {
    let rules = parse_rules(&[
        spec_rule(false, 'a', None, None, "rwm"),
        spec_rule(true, 'c', Some(1), Some(3), "rwm"),
        spec_rule(true, 'c', Some(1), None, "r"),
        spec_rule(false, 'c', Some(1), Some(5), "r"),
    ])
    .unwrap();
    let p = program(&rules);
    let req = |major, minor, access| Request {
        kind: DevKind::Char,
        major,
        minor,
        access,
    };
    assert_eq!(run(&p, req(1, 3, ACC_READ | ACC_WRITE)), 1);
    assert_eq!(run(&p, req(1, 4, ACC_READ)), 1);
    assert_eq!(run(&p, req(1, 4, ACC_READ | ACC_WRITE)), 0);
    assert_eq!(run(&p, req(1, 5, ACC_READ)), 0);
    assert_eq!(run(&p, req(2, 3, ACC_READ)), 0);
}

#[test]
fn matches_reference_semantics() {
    let mut seed = 0x5eed;
    let requests = all_requests();
    for n in 0..8 {
        for _ in 0..40 {
            let rules = random_rules(&mut seed, n);
            let p = program(&rules);
            for &req in &requests {
                let want = reference(&rules, req);
                assert_eq!(run(&p, req) == 1, want, "{rules:?} {req:?}");
            }
        }
    }
}

#[test]
fn kernel_accepts_generated_programs() {
    if !super::super::testutil::is_root() {
        eprintln!("skipped: BPF_PROG_LOAD needs root");
        return;
    }
    let mut seed = 7;
    for n in [0, 1, 5, 30] {
        let rules = random_rules(&mut seed, n);
        let fd = load(&program(&rules)).unwrap_or_else(|e| panic!("{e}"));
        assert!(fd.as_raw_fd() >= 0);
    }
}

#[test]
fn kernel_rejection_carries_the_verifier_log() {
    if !super::super::testutil::is_root() {
        eprintln!("skipped: BPF_PROG_LOAD needs root");
        return;
    }
    // Exits without setting R0: the verifier must refuse it.
    let bad = [Insn::new(JMP_EXIT, 0, 0, 0, 0)];
    let e = load(&bad).unwrap_err();
    let CgroupError::Bpf { op, log, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!(*op, "BPF_PROG_LOAD");
    assert!(log.contains("R0"), "{log}");
}
