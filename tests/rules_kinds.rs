//! The RayJob, RayService and RayCronJob rules: for each rule id, one object that triggers it
//! (exact rule, field path and message, as KubeRay v1.7.0 prints it) and a close variant that
//! does not; embedded cluster findings carry the API server's path prefix and KubeRay's message
//! prefix. The table is `tests/support/kind_cases.rs`.

mod common;
#[path = "support/kind_cases.rs"]
mod kind_cases;
#[path = "support/rule_cases.rs"]
mod rule_cases;

use common::del;
use kind_cases::{C, INV, J, S, base, cases, edit};
use raygate::rules::kinds::{RULE_IDS, validate_kind};
use raygate::violation::{FeatureGates, Mode, Severity, ValidateOptions, Violation};
use rule_cases::Case;
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn run(c: &Case, obj: &Value) -> Vec<Violation> {
    let opts = ValidateOptions {
        gates: FeatureGates::parse(c.gates).unwrap(),
        ..Default::default()
    };
    validate_kind(c.kind, obj, c.old.as_ref(), &opts)
}

#[test]
fn every_case_triggers_exactly_its_rule_and_its_variant_does_not() {
    for c in cases() {
        let bad = run(&c, &c.bad);
        let hits: Vec<&Violation> = bad
            .iter()
            .filter(|v| v.rule == c.id && v.path == c.path)
            .collect();
        assert_eq!(
            hits.len(),
            1,
            "{} {:?}: want one at {}, got {bad:#?}",
            c.id,
            c.kind,
            c.path
        );
        assert_eq!(hits[0].message, c.msg, "{} message", c.id);
        assert_eq!(hits[0].severity, c.severity, "{} severity", c.id);
        let good = run(&c, &c.good);
        if c.id != "RG-CRONJOB-GATE" {
            assert!(
                !good.iter().any(|v| v.rule == c.id),
                "{} {:?}: variant still triggers: {good:#?}",
                c.id,
                c.kind
            );
        }
        if c.severity == Severity::Error && c.gates.is_empty() && !c.id.starts_with("RG-") {
            // FirstError mode returns exactly one error (in KubeRay's order; raygate's own
            // findings are not KubeRay's and are left out, as for RayCluster).
            let first = validate_kind(
                c.kind,
                &c.bad,
                None,
                &ValidateOptions {
                    mode: Mode::FirstError,
                    ..Default::default()
                },
            );
            assert_eq!(first.len(), 1, "{}: {first:?}", c.id);
        }
    }
}

#[test]
fn the_bases_are_valid() {
    for k in [J, S] {
        let v = validate_kind(k, &base(k), None, &ValidateOptions::default());
        assert!(v.is_empty(), "{k:?}: {v:?}");
    }
    let on = ValidateOptions {
        gates: FeatureGates::parse("RayCronJob=true").unwrap(),
        ..Default::default()
    };
    assert!(validate_kind(C, &base(C), None, &on).is_empty());
}

#[test]
fn every_own_rule_id_is_covered_or_listed_as_unreachable() {
    // Unreachable after the API server's checks (CRD minimum/CEL/required run first) or only
    // reachable through Go panics avoided by CRD defaults.
    let unreachable: BTreeSet<&str> = ["JD4", "JD10", "JD11", "J15", "SV4", "SVU3", "SVU4", "JD2"]
        .into_iter()
        .collect();
    let covered: BTreeSet<&str> = cases().iter().map(|c| c.id).collect();
    for id in RULE_IDS {
        assert!(
            covered.contains(id) || unreachable.contains(id),
            "rule {id} has no case"
        );
    }
}

#[test]
fn api_server_checks_come_first_and_cluster_findings_keep_kuberays_order() {
    // A RayJob with three violations in its embedded spec and one in its own fields.
    let obj = edit(
        J,
        &[
            ("/spec/activeDeadlineSeconds", json!(0)),
            (
                "/spec/rayClusterSpec/workerGroupSpecs/0/minReplicas",
                json!(5),
            ),
            (
                "/spec/rayClusterSpec/workerGroupSpecs/0/maxReplicas",
                json!(2),
            ),
            (
                "/spec/rayClusterSpec/headGroupSpec/template/spec/containers",
                json!([]),
            ),
            (
                "/spec/rayClusterSpec/workerGroupSpecs/0/idleTimeoutSeconds",
                json!(-1),
            ),
        ],
    );
    let v = validate_kind(J, &obj, None, &ValidateOptions::default());
    let ids: Vec<&str> = v
        .iter()
        .filter(|v| v.is_error())
        .map(|v| v.rule.as_str())
        .collect();
    assert_eq!(ids, ["S1", "W5", "W8", "J14"], "{v:#?}");
    let first = validate_kind(
        J,
        &obj,
        None,
        &ValidateOptions {
            mode: Mode::FirstError,
            ..Default::default()
        },
    );
    assert_eq!(
        first[0].message,
        format!("{INV}headGroupSpec should have at least one container")
    );
}

#[test]
fn v1alpha1_objects_are_checked_through_their_own_schema() {
    let mut obj = edit(
        J,
        &[(
            "/spec/rayClusterSpec/workerGroupSpecs/0/minReplicas",
            json!(9),
        )],
    );
    obj["apiVersion"] = json!("ray.io/v1alpha1");
    let v = validate_kind(J, &obj, None, &ValidateOptions::default());
    assert!(
        v.iter()
            .any(|v| v.rule == "W5"
                && v.path == "spec.rayClusterSpec.workerGroupSpecs[0].minReplicas"),
        "{v:#?}"
    );
    assert!(v.iter().any(|v| v.rule == "RG-DEPRECATED-V1ALPHA1"
        && v.message.contains("v1alpha1 RayJob is deprecated")));
    del(&mut obj, "/spec/entrypoint");
    let v = validate_kind(J, &obj, None, &ValidateOptions::default());
    assert!(
        v.iter()
            .any(|v| v.rule == "CRD-REQUIRED" && v.path == "spec.entrypoint"),
        "{v:#?}"
    );
}

#[test]
fn odd_shapes_never_panic() {
    for k in [J, S, C] {
        for v in [
            json!(null),
            json!(3),
            json!({"spec": 1}),
            json!({"spec": {"rayClusterSpec": []}}),
            json!({"kind": k.name(), "spec": {"jobTemplate": {"rayClusterSpec": {"workerGroupSpecs": 7}}}}),
            json!({"metadata": {"name": 5}}),
        ] {
            let _ = validate_kind(k, &v, Some(&v), &ValidateOptions::default());
        }
    }
}
