//! Evaluation order and modes: `Mode::FirstError` returns KubeRay's first error (API server,
//! metadata, webhook, spec in §2.2 order, upgrade options, status) and ignores raygate's own
//! findings and warnings; UPDATE transition rules; v1alpha1 handling.

mod common;

use common::{base, with};
use raygate::rules::validate;
use raygate::violation::{Mode, ValidateOptions};
use serde_json::json;

fn first() -> ValidateOptions {
    ValidateOptions {
        mode: Mode::FirstError,
        ..Default::default()
    }
}

fn rules(v: &[raygate::violation::Violation]) -> Vec<&str> {
    v.iter().map(|v| v.rule.as_str()).collect()
}

#[test]
fn all_mode_reports_every_error_in_kuberay_order() {
    let v = with(&[
        ("/metadata/name", json!("Bad_Name")),
        ("/spec/headGroupSpec/template/spec/containers", json!([])),
        ("/spec/workerGroupSpecs/0/minReplicas", json!(7)),
        ("/spec/tlsOptions", json!({})),
        ("/spec/upgradeStrategy/type", json!("Bogus")),
        ("/spec/workerGroupSpecs/0/numOfHosts", json!(0)),
    ]);
    let all = validate(&v, None, &ValidateOptions::default());
    assert_eq!(
        rules(&all),
        vec!["CRD-ENUM", "M2", "S1", "W5", "T1", "U1", "RG-NUMOFHOSTS"],
        "{all:?}"
    );
    let f = validate(&v, None, &first());
    assert_eq!(rules(&f), vec!["CRD-ENUM"]);
}

#[test]
fn first_error_follows_kuberay_order() {
    // metadata before spec
    let v = with(&[
        ("/metadata/name", json!("x".repeat(60))),
        ("/spec/workerGroupSpecs/0/minReplicas", json!(-1)),
    ]);
    assert_eq!(rules(&validate(&v, None, &first())), vec!["M1"]);
    // W-rules of group 0 come before G-rules
    let v = with(&[
        ("/spec/workerGroupSpecs/0/minReplicas", json!(-1)),
        (
            "/spec/headGroupSpec/rayStartParams/redis-username",
            json!("u"),
        ),
    ]);
    assert_eq!(rules(&validate(&v, None, &first())), vec!["W3"]);
    // spec before upgrade options before status
    let v = with(&[
        ("/spec/upgradeStrategy/type", json!("Recreate")),
        (
            "/metadata/labels/ray.io~1originated-from-crd",
            json!("RayJob"),
        ),
        ("/spec/authOptions/enableK8sTokenAuth", json!(true)),
    ]);
    assert_eq!(rules(&validate(&v, None, &first())), vec!["AU6"]);
    // raygate-only errors and warnings are not KubeRay's: nothing to report in FirstError mode
    let v = with(&[
        ("/spec/workerGroupSpecs/0/numOfHosts", json!(0)),
        ("/apiVersion", json!("ray.io/v1alpha1")),
    ]);
    assert!(validate(&v, None, &first()).is_empty());
    assert!(validate(&base(), None, &first()).is_empty());
}

#[test]
fn m1_suppresses_m2_like_kuberay() {
    let v = with(&[("/metadata/name", json!("X".repeat(54)))]);
    assert_eq!(
        rules(&validate(&v, None, &ValidateOptions::default())),
        vec!["M1"]
    );
    let v = with(&[("/metadata/name", json!("a".repeat(53)))]);
    assert!(validate(&v, None, &ValidateOptions::default()).is_empty());
}

#[test]
fn wh3_reports_only_the_first_duplicate() {
    let mut v = base();
    let g = v["spec"]["workerGroupSpecs"][0].clone();
    v["spec"]["workerGroupSpecs"] = json!([g.clone(), g.clone(), g]);
    let all = validate(&v, None, &ValidateOptions::default());
    let wh3: Vec<_> = all.iter().filter(|v| v.rule == "WH3").collect();
    assert_eq!(wh3.len(), 1);
    assert_eq!(wh3[0].path, "spec.workerGroupSpecs[1].groupName");
}

#[test]
fn transition_rules_need_the_field_on_both_sides() {
    let old = base();
    let new = with(&[("/spec/managedBy", json!("kueue.x-k8s.io/multikueue"))]);
    // Adding managedBy where the old object had none is not a `self == oldSelf` violation.
    assert!(validate(&new, Some(&old), &ValidateOptions::default()).is_empty());
    // Removing it neither.
    assert!(validate(&old, Some(&new), &ValidateOptions::default()).is_empty());
    // Without an old object (CREATE) nothing is immutable.
    let old = with(&[(
        "/spec/gcsFaultToleranceOptions",
        json!({"backend": "redis"}),
    )]);
    let new = with(&[(
        "/spec/gcsFaultToleranceOptions",
        json!({"backend": "rocksdb"}),
    )]);
    let on_create = validate(&new, None, &ValidateOptions::default());
    assert_eq!(rules(&on_create), vec!["G7"]);
    let on_update = validate(&new, Some(&old), &ValidateOptions::default());
    assert_eq!(rules(&on_update), vec!["CRD-IMMUTABLE-BACKEND", "G7"]);
}

#[test]
fn v1alpha1_is_validated_through_its_own_schema() {
    // v1-only fields are pruned on the v1alpha1 path, so they cannot trigger v1 rules.
    let v = with(&[
        ("/apiVersion", json!("ray.io/v1alpha1")),
        ("/spec/networkPolicy", json!({})),
        ("/spec/workerGroupSpecs/0/numOfHosts", json!(0)),
    ]);
    assert_eq!(
        rules(&validate(&v, None, &ValidateOptions::default())),
        vec!["RG-DEPRECATED-V1ALPHA1"]
    );
    // v1alpha1 requires rayStartParams.
    let v = with(&[
        ("/apiVersion", json!("ray.io/v1alpha1")),
        ("/spec/workerGroupSpecs/0/rayStartParams", json!("<delete>")),
    ]);
    let all = validate(&v, None, &ValidateOptions::default());
    assert!(
        all.iter().any(
            |x| x.rule == "CRD-REQUIRED" && x.path == "spec.workerGroupSpecs[0].rayStartParams"
        ),
        "{all:?}"
    );
    // Shared rules still apply.
    let v = with(&[
        ("/apiVersion", json!("ray.io/v1alpha1")),
        ("/spec/workerGroupSpecs/0/minReplicas", json!(9)),
    ]);
    assert!(rules(&validate(&v, None, &ValidateOptions::default())).contains(&"W5"));
}

#[test]
fn type_errors_name_the_field_and_stop() {
    let v = with(&[(
        "/spec/workerGroupSpecs/0/template/spec/containers/0/ports",
        json!([{"containerPort": "80"}]),
    )]);
    let all = validate(&v, None, &ValidateOptions::default());
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].rule, "RG-TYPE");
    assert_eq!(
        all[0].path,
        "spec.workerGroupSpecs[0].template.spec.containers[0].ports[0].containerPort"
    );
    // Missing containers: the API server's CRD-REQUIRED first, then KubeRay's S1 (no type error).
    let v = with(&[(
        "/spec/headGroupSpec/template/spec/containers",
        json!("<delete>"),
    )]);
    let all = validate(&v, None, &ValidateOptions::default());
    assert_eq!(rules(&all), vec!["CRD-REQUIRED", "S1"], "{all:?}");
    for not_obj in [json!(null), json!(1), json!("x")] {
        let r = validate(&not_obj, None, &ValidateOptions::default());
        assert_eq!(rules(&r), vec!["RG-TYPE"]);
    }
}

#[test]
fn spec_edge_cases_from_the_research_notes() {
    let d = ValidateOptions::default();
    // ft-enabled "false" + GCS options: rejected (G1).
    let v = with(&[
        ("/metadata/annotations/ray.io~1ft-enabled", json!("false")),
        ("/spec/gcsFaultToleranceOptions", json!({})),
    ]);
    assert!(rules(&validate(&v, None, &d)).contains(&"G1"));
    // Upper-case group names are fine without networkPolicy.
    let v = with(&[("/spec/workerGroupSpecs/0/groupName", json!("GPU-Group"))]);
    assert!(validate(&v, None, &d).is_empty());
    // Token auth with rayVersion nightly.
    let v = with(&[
        ("/spec/authOptions/mode", json!("token")),
        ("/spec/rayVersion", json!("nightly")),
    ]);
    assert_eq!(rules(&validate(&v, None, &d)), vec!["AU2"]);
    // replicas above maxReplicas: admitted, with the value KubeRay will use.
    let v = with(&[("/spec/workerGroupSpecs/0/replicas", json!(100))]);
    let r = validate(&v, None, &d);
    assert!(r.iter().all(|x| !x.is_error()));
    assert!(r[0].message.ends_with("KubeRay will use 5 (maxReplicas 5)"));
}

#[test]
fn generate_name_is_checked_as_the_generated_name() {
    let d = ValidateOptions::default();
    let named = |edits: &[(&str, serde_json::Value)]| {
        let mut v = with(edits);
        v["metadata"].as_object_mut().unwrap().remove("name");
        v
    };
    // 48 + 5 = 53: fine; 49 + 5 = 54: M1 at metadata.generateName.
    assert!(
        validate(
            &named(&[("/metadata/generateName", json!("a".repeat(48)))]),
            None,
            &d
        )
        .is_empty()
    );
    let r = validate(
        &named(&[("/metadata/generateName", json!("a".repeat(49)))]),
        None,
        &d,
    );
    assert_eq!(
        (r[0].rule.as_str(), r[0].path.as_str()),
        ("M1", "metadata.generateName")
    );
    // A prefix ending in '-' is fine (the suffix is alphanumeric); one starting with a digit is not.
    assert!(
        validate(
            &named(&[("/metadata/generateName", json!("ray-"))]),
            None,
            &d
        )
        .is_empty()
    );
    let r = validate(
        &named(&[("/metadata/generateName", json!("1ray-"))]),
        None,
        &d,
    );
    assert_eq!(
        (r[0].rule.as_str(), r[0].path.as_str()),
        ("M2", "metadata.generateName")
    );
    // Neither name nor generateName: the API server's required-value error, not M2.
    let r = validate(&named(&[]), None, &d);
    assert_eq!(rules(&r), vec!["CRD-REQUIRED"]);
    assert_eq!(
        r[0].message,
        "Required value: name or generateName is required"
    );
}
