//! BuildKit's parser test cases (`../shared/conformance/dockerfile-parser`):
//! each Dockerfile parses to its expected tree; each negative case fails.

use std::path::PathBuf;

fn cases(dir: &str) -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/dockerfile-parser")
        .join(dir);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("the conformance cases at {}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no cases under {}", root.display());
    out
}

#[test]
fn every_case_parses_to_its_tree() {
    let mut failures = Vec::new();
    let all = cases("testfiles");
    for case in &all {
        let text = std::fs::read_to_string(case.join("Dockerfile")).unwrap();
        let want = std::fs::read_to_string(case.join("result")).unwrap();
        let got = match berth_build::parser::parse(&text) {
            Ok(p) => p
                .nodes
                .iter()
                .map(|n| format!("({})\n", n.dump()))
                .collect::<String>(),
            Err(e) => format!("error: {e}\n"),
        };
        if got.trim_end() != want.trim_end() {
            failures.push(format!(
                "{}:\n--- want\n{want}\n--- got\n{got}",
                case.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

#[test]
fn every_negative_case_is_rejected() {
    for case in cases("testfiles-negative") {
        let text = std::fs::read_to_string(case.join("Dockerfile")).unwrap();
        let parsed = berth_build::parser::parse(&text)
            .map_err(|e| e.to_string())
            .and_then(|p| berth_build::instructions::parse(&p).map_err(|e| e.to_string()));
        let err = parsed.expect_err(&format!("{} must be rejected", case.display()));
        assert!(!err.is_empty());
    }
}
