//! Every scenario under tests/scenarios/*.yaml is planned and compared with its
//! `<name>.expected.json` (the `raygate autoscale plan -o json` document). The cases are spec
//! §6 acceptance cases under v2 semantics (see each file's comment).

use raygate::cli::autoscale::{plan_file, plan_json};
use std::path::{Path, PathBuf};

fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios")
}

fn scenarios() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(scenario_dir())
        .expect("tests/scenarios")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_scenario_matches_its_expected_plan() {
    let all = scenarios();
    assert!(all.len() >= 60, "only {} scenarios", all.len());
    let mut failures = Vec::new();
    for path in &all {
        let expected_path = path.with_extension("expected.json");
        let expected: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&expected_path)
                .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display())),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        let plan = plan_file(path).unwrap_or_else(|e| panic!("{e}"));
        let got = plan_json(&plan);
        if got != expected {
            failures.push(format!(
                "{}\n  expected {}\n  got      {}",
                path.file_name().unwrap_or_default().to_string_lossy(),
                expected,
                got
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} scenario(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_expected_file_has_a_scenario() {
    for e in std::fs::read_dir(scenario_dir()).expect("dir") {
        let p = e.expect("entry").path();
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if let Some(stem) = name.strip_suffix(".expected.json") {
            assert!(
                scenario_dir().join(format!("{stem}.yaml")).exists(),
                "{name} has no scenario"
            );
        }
    }
}

#[test]
fn planning_is_deterministic_across_runs() {
    for path in scenarios() {
        let a = plan_json(&plan_file(&path).expect("plan"));
        let b = plan_json(&plan_file(&path).expect("plan"));
        assert_eq!(a, b, "{}", path.display());
    }
}
