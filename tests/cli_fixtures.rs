//! Hand-written invalid RayClusters (tests/fixtures/invalid/), as a new user would write them:
//! each gets the right rule id, field path and line.

use std::process::Command;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/invalid");

fn bin() -> Command {
    Command::new(
        std::env::var("RAYGATE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_raygate").to_string()),
    )
}

/// (rule, severity, path, line, column)
type Found = (String, String, String, u64, u64);

/// Runs `validate -o json` on one fixture; returns the exit code and the findings.
fn check(file: &str, extra: &[&str]) -> (i32, Vec<Found>) {
    let p = format!("{DIR}/{file}");
    let mut args = vec!["validate", "-o", "json"];
    args.extend_from_slice(extra);
    args.push(&p);
    let o = bin().args(&args).output().expect("run raygate");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let mut out = Vec::new();
    for d in v["files"][0]["documents"].as_array().expect("documents") {
        for x in d["findings"].as_array().unwrap() {
            out.push((
                x["rule"].as_str().unwrap().to_string(),
                x["severity"].as_str().unwrap().to_string(),
                x["path"].as_str().unwrap().to_string(),
                x["line"].as_u64().unwrap(),
                x["column"].as_u64().unwrap(),
            ));
        }
    }
    (o.status.code().unwrap_or(-1), out)
}

/// Asserts exit 1 and that an error with this rule, path and line is reported.
fn expect_error(file: &str, extra: &[&str], rule: &str, path: &str, line: u64, col: u64) {
    let (code, f) = check(file, extra);
    assert_eq!(code, 1, "{file}: {f:?}");
    assert!(
        f.iter().any(|(r, s, p, l, c)| r == rule
            && s == "error"
            && p == path
            && *l == line
            && *c == col),
        "{file}: expected error {rule} at {path} ({line}:{col}), got {f:?}"
    );
}

#[test]
fn min_greater_than_max() {
    expect_error(
        "min-greater-than-max.yaml",
        &[],
        "W5",
        "spec.workerGroupSpecs[0].minReplicas",
        18,
        5,
    );
}

#[test]
fn negative_min_replicas() {
    expect_error(
        "negative-min-replicas.yaml",
        &[],
        "W3",
        "spec.workerGroupSpecs[0].minReplicas",
        16,
        5,
    );
}

#[test]
fn duplicate_group_names() {
    expect_error(
        "duplicate-group-names.yaml",
        &[],
        "WH3",
        "spec.workerGroupSpecs[1].groupName",
        24,
        5,
    );
}

#[test]
fn upscaling_mode_typo() {
    expect_error(
        "upscaling-mode-typo.yaml",
        &[],
        "CRD-ENUM",
        "spec.autoscalerOptions.upscalingMode",
        9,
        5,
    );
}

#[test]
fn autoscaler_bad_quantity() {
    expect_error(
        "autoscaler-bad-quantity.yaml",
        &[],
        "RG-QUANTITY",
        "spec.autoscalerOptions.resources.limits.memory",
        12,
        9,
    );
}

#[test]
fn replicas_wrong_type() {
    expect_error(
        "replicas-wrong-type.yaml",
        &[],
        "RG-TYPE",
        "spec.workerGroupSpecs[0].replicas",
        15,
        5,
    );
}

#[test]
fn autoscaling_flag_string() {
    expect_error(
        "autoscaling-flag-string.yaml",
        &[],
        "RG-TYPE",
        "spec.enableInTreeAutoscaling",
        6,
        3,
    );
}

#[test]
fn unknown_field_is_a_warning_then_an_error_with_strict() {
    let (code, f) = check("unknown-field.yaml", &[]);
    assert_eq!(code, 0, "{f:?}");
    assert!(
        f.iter().any(|(r, s, p, l, _)| r == "SCHEMA-UNKNOWN-FIELD"
            && s == "warning"
            && p == "spec.workerGroupSpecs[0].minReplica"
            && *l == 17),
        "{f:?}"
    );
    expect_error(
        "unknown-field.yaml",
        &["--strict"],
        "SCHEMA-UNKNOWN-FIELD",
        "spec.workerGroupSpecs[0].minReplica",
        17,
        5,
    );
}

#[test]
fn missing_worker_template() {
    // The field is absent: the location is its nearest ancestor, the list item (line 14).
    expect_error(
        "missing-worker-template.yaml",
        &[],
        "CRD-REQUIRED",
        "spec.workerGroupSpecs[0].template",
        14,
        5,
    );
}

#[test]
fn name_too_long() {
    expect_error("name-too-long.yaml", &[], "M1", "metadata.name", 4, 3);
}

#[test]
fn idle_timeout_without_v2() {
    expect_error(
        "idle-timeout-without-v2.yaml",
        &[],
        "W9",
        "spec.workerGroupSpecs[0].idleTimeoutSeconds",
        19,
        5,
    );
}

#[test]
fn empty_head_containers() {
    expect_error(
        "empty-head-containers.yaml",
        &[],
        "S1",
        "spec.headGroupSpec.template.spec.containers",
        10,
        9,
    );
}

#[test]
fn pull_policy_lowercase() {
    expect_error(
        "pull-policy-lowercase.yaml",
        &[],
        "RG-IMAGEPULLPOLICY",
        "spec.autoscalerOptions.imagePullPolicy",
        8,
        5,
    );
}

#[test]
fn the_whole_directory_is_invalid_and_nothing_is_unreadable() {
    let o = bin()
        .args(["validate", "-o", "json", DIR])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["summary"]["unreadable"], 0);
    // unknown-field.yaml is only a warning without --strict.
    assert_eq!(
        v["summary"]["invalid"].as_u64(),
        Some(v["summary"]["rayclusters"].as_u64().unwrap() - 1)
    );
}
