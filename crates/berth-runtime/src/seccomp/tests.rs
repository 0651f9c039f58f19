//! Tests. These check the profile -> rule mapping without touching the
//! kernel; `kernel` installs real filters.
//!
//! A filter binds the process that installs it, so every kernel test forks.
//! The test harness is multi-threaded, so the child may not allocate: the
//! filter is compiled in the parent, and the child runs only `install()`,
//! raw syscalls and `_exit`, reporting through its exit status.

use serde_json::json;

use super::*;

fn profile(v: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("profile JSON matches the OCI schema")
}

fn planned(v: serde_json::Value) -> Plan {
    plan(&profile(v)).expect("profile plans")
}

fn compiled(v: serde_json::Value) -> CompiledFilter {
    compile(&profile(v)).expect("profile compiles")
}

fn nr(name: &str) -> ScmpSyscall {
    ScmpSyscall::from_name(name).expect("known syscall")
}

fn cmp(index: u32, op: ScmpCompareOp, value: u64) -> ScmpArgCompare {
    ScmpArgCompare::new(index, op, value)
}

// ---- mapping, no kernel involved ----

#[test]
fn actions_map_like_runc() {
    use LinuxSeccompAction as A;
    let scope = ActionScope::Default;
    let cases = [
        (A::ScmpActKill, None, ScmpAction::KillThread),
        (A::ScmpActKillThread, None, ScmpAction::KillThread),
        (A::ScmpActKillProcess, None, ScmpAction::KillProcess),
        (A::ScmpActTrap, None, ScmpAction::Trap),
        (A::ScmpActErrno, None, ScmpAction::Errno(libc::EPERM)),
        (A::ScmpActErrno, Some(38), ScmpAction::Errno(38)),
        (A::ScmpActErrno, Some(0), ScmpAction::Errno(0)),
        (A::ScmpActTrace, None, ScmpAction::Trace(1)),
        (A::ScmpActTrace, Some(7), ScmpAction::Trace(7)),
        (A::ScmpActLog, None, ScmpAction::Log),
        (A::ScmpActAllow, Some(5), ScmpAction::Allow),
    ];
    for (action, errno, want) in cases {
        let got = resolve_action(action, errno, &scope).expect("maps");
        assert_eq!(got, want, "{action} with {errno:?}");
    }
}

#[test]
fn errno_larger_than_16_bits_is_rejected() {
    let err = plan(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 65536}]
    })))
    .unwrap_err();
    assert!(matches!(
        err,
        SeccompError::ErrnoOutOfRange { value: 65536, .. }
    ));
    assert!(err.to_string().contains("getppid"), "{err}");

    let err = plan(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000
    })))
    .unwrap_err();
    assert!(err.to_string().contains("defaultAction"), "{err}");
}

#[test]
fn default_errno_ret_applies_to_the_default_action() {
    let p = planned(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38}));
    assert_eq!(p.default.0, ScmpAction::Errno(38));
    let p = planned(json!({"defaultAction": "SCMP_ACT_ERRNO"}));
    assert_eq!(p.default.0, ScmpAction::Errno(libc::EPERM));
}

#[test]
fn rules_equal_to_the_default_are_dropped() {
    let p = planned(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "syscalls": [
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["gettid"], "action": "SCMP_ACT_ALLOW"}
        ]
    }));
    let names: Vec<_> = p.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["getppid", "gettid"]);
    assert_eq!(p.rules[0].action, ScmpAction::Errno(libc::EACCES));
}

#[test]
fn comparators_of_one_rule_are_anded() {
    let p = planned(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["lseek", "getppid"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 0, "value": 3, "op": "SCMP_CMP_EQ"},
            {"index": 2, "value": 1, "op": "SCMP_CMP_GE"}
        ]}]
    }));
    let want = vec![
        cmp(0, ScmpCompareOp::Equal, 3),
        cmp(2, ScmpCompareOp::GreaterEqual, 1),
    ];
    assert_eq!(p.rules.len(), 2, "one rule per name");
    assert_eq!(p.rules[0].syscall, nr("lseek"));
    assert_eq!(p.rules[1].syscall, nr("getppid"));
    assert!(p.rules.iter().all(|r| r.conditions == want));
}

#[test]
fn a_repeated_index_splits_into_one_rule_per_comparator() {
    let p = planned(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 2, "value": 1, "op": "SCMP_CMP_EQ"},
            {"index": 0, "value": 9, "op": "SCMP_CMP_NE"},
            {"index": 2, "value": 2, "op": "SCMP_CMP_EQ"}
        ]}]
    }));
    let sets: Vec<_> = p.rules.iter().map(|r| r.conditions.clone()).collect();
    assert_eq!(
        sets,
        [
            vec![cmp(2, ScmpCompareOp::Equal, 1)],
            vec![cmp(0, ScmpCompareOp::NotEqual, 9)],
            vec![cmp(2, ScmpCompareOp::Equal, 2)],
        ]
    );
}

#[test]
fn every_operator_maps_and_masked_eq_uses_value_as_mask() {
    let ops = [
        ("SCMP_CMP_NE", ScmpCompareOp::NotEqual),
        ("SCMP_CMP_LT", ScmpCompareOp::Less),
        ("SCMP_CMP_LE", ScmpCompareOp::LessOrEqual),
        ("SCMP_CMP_EQ", ScmpCompareOp::Equal),
        ("SCMP_CMP_GE", ScmpCompareOp::GreaterEqual),
        ("SCMP_CMP_GT", ScmpCompareOp::Greater),
    ];
    for (name, op) in ops {
        let arg: LinuxSeccompArg =
            serde_json::from_value(json!({"index": 1, "value": 42, "op": name})).unwrap();
        assert_eq!(comparator(&arg), cmp(1, op, 42), "{name}");
    }
    // Docker's clone rule: (flags & 0x7e020000) == 0.
    let arg: LinuxSeccompArg = serde_json::from_value(json!(
        {"index": 0, "value": 2114060288u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}
    ))
    .unwrap();
    assert_eq!(
        comparator(&arg),
        cmp(0, ScmpCompareOp::MaskedEqual(0x7e02_0000), 0)
    );
}

#[test]
fn bad_arguments_and_names_are_errors() {
    let err = plan(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["lseek"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]
    })))
    .unwrap_err();
    assert!(matches!(
        err,
        SeccompError::ArgIndexOutOfRange { index: 6, .. }
    ));

    let err = plan(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpid", ""], "action": "SCMP_ACT_ERRNO"}]
    })))
    .unwrap_err();
    assert!(matches!(err, SeccompError::EmptySyscallName));
}

#[test]
fn unknown_syscall_names_are_skipped_and_reported() {
    let p = planned(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["no_such_syscall_berth", "getppid"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["no_such_syscall_berth"], "action": "SCMP_ACT_LOG"}
        ]
    }));
    assert_eq!(p.unknown, ["no_such_syscall_berth"], "listed once");
    assert_eq!(p.rules.len(), 1);
    assert_eq!(p.rules[0].syscall, nr("getppid"));
}

#[test]
fn flags_map_to_kernel_bits() {
    let p = planned(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                  "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG"]
    }));
    assert_eq!(p.flags, 0b111);
}

#[test]
fn unknown_and_unsupported_flags_are_rejected() {
    // A flag outside the spec never reaches compile(): the typed OCI model
    // refuses it while parsing config.json.
    let bogus = serde_json::from_value::<LinuxSeccomp>(json!({
        "defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]
    }));
    assert!(bogus.is_err());

    let err = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
    })))
    .unwrap_err();
    assert!(matches!(err, SeccompError::UnsupportedFlag { .. }));
    assert!(
        err.to_string()
            .contains("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"),
        "{err}"
    );
}

#[test]
fn notify_is_rejected() {
    let err = compile(&profile(json!({"defaultAction": "SCMP_ACT_NOTIFY"}))).unwrap_err();
    assert!(matches!(
        err,
        SeccompError::NotifyUnsupported {
            scope: ActionScope::Default
        }
    ));

    let err = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["openat", "open"], "action": "SCMP_ACT_NOTIFY"}]
    })))
    .unwrap_err();
    assert!(err.to_string().contains("openat,open"), "{err}");

    let err = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"
    })))
    .unwrap_err();
    assert!(err.to_string().contains("/run/agent.sock"), "{err}");

    // An empty listenerPath means none.
    compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": ""}));
}

#[test]
fn architectures_are_added_to_the_program() {
    let rules = json!([{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]);
    let native = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
    let listed = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_NATIVE", "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": rules
    }));
    assert_eq!(native.flags(), 0);
    assert!(!native.instructions().is_empty());
    if cfg!(target_arch = "x86_64") {
        // Each extra architecture adds at least its own arch check.
        assert!(listed.instructions().len() > native.instructions().len());
    }
    assert!(format!("{listed:?}").contains("instructions"));
}

#[test]
fn decoding_checks_the_program_length() {
    assert!(matches!(
        decode_program(&[]),
        Err(SeccompError::MalformedProgram { bytes: 0 })
    ));
    assert!(matches!(
        decode_program(&[0; 12]),
        Err(SeccompError::MalformedProgram { bytes: 12 })
    ));
    assert!(matches!(
        decode_program(&vec![0; (BPF_MAXINSNS + 1) * INSN_SIZE]),
        Err(SeccompError::ProgramTooLong { instructions: 4097 })
    ));
    // BPF_RET|BPF_K 0x7fff0000 (allow), native-endian.
    let mut insn = Vec::new();
    insn.extend_from_slice(&0x06u16.to_ne_bytes());
    insn.extend_from_slice(&[0, 0]);
    insn.extend_from_slice(&0x7fff_0000u32.to_ne_bytes());
    let prog = decode_program(&insn).unwrap();
    assert_eq!((prog[0].code, prog[0].k), (0x06, 0x7fff_0000));
}

// The real kernel, in forked children.
mod kernel;
