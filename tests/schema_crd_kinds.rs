//! Our generated schemas of RayJob, RayService and RayCronJob and KubeRay's CRDs
//! (`../shared/kuberay/crd/ray.io_{rayjobs,rayservices,raycronjobs}.yaml`) describe the same
//! KubeRay-specific fields with the same types, in both directions, for `spec` (including the
//! embedded RayCluster spec) and `status`. Kubernetes' own types (PodTemplateSpec, Service,
//! EnvVar, Condition, …) are compared at their root only, as in `schema_crd.rs`.

use raygate::schema::{property_types, type_of};
use serde_json::Value;
use std::collections::BTreeMap;

fn crd_path(plural: &str) -> String {
    format!(
        "{}/../shared/kuberay/crd/ray.io_{plural}.yaml",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Fields whose insides belong to Kubernetes' types, not KubeRay's.
fn stop(path: &str) -> bool {
    let last = path
        .rsplit('.')
        .next()
        .unwrap_or(path)
        .trim_end_matches("[]");
    matches!(
        last,
        "template"
            | "headService"
            | "serveService"
            | "submitterPodTemplate"
            | "env"
            | "envFrom"
            | "securityContext"
            | "volumeMounts"
            | "ingressRules"
            | "egressRules"
            | "valueFrom"
            | "resources"
            | "conditions"
    )
}

fn crd_version(plural: &str, name: &str) -> Value {
    let text = std::fs::read_to_string(crd_path(plural)).expect("read CRD");
    let doc = raygate::yaml::parse_all(&text)
        .expect("CRD parses")
        .into_iter()
        .next()
        .expect("one document");
    let versions = doc.value["spec"]["versions"]
        .as_array()
        .expect("versions")
        .clone();
    versions
        .into_iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("{plural} {name} present"))["schema"]["openAPIV3Schema"]
        .clone()
}

fn ours(file: &str) -> Value {
    let all = raygate::schema::generate_all();
    let (_, s) = all
        .iter()
        .find(|(n, _)| *n == file)
        .expect("schema generated");
    serde_json::from_str(s).expect("schema is JSON")
}

fn compare(plural: &str, version: &str, file: &str) -> (Vec<String>, usize) {
    let crd = crd_version(plural, version);
    let our = ours(file);
    let mut problems = Vec::new();
    let mut compared = 0;
    for top in ["spec", "status"] {
        let crd_t = &crd["properties"][top];
        let our_t = &our["properties"][top];
        let a: BTreeMap<String, String> = property_types(&crd, crd_t, top, &stop)
            .into_iter()
            .collect();
        let b: BTreeMap<String, String> = property_types(&our, our_t, top, &stop)
            .into_iter()
            .collect();
        compared += a.len();
        let (ct, ot) = (type_of(&crd, crd_t), type_of(&our, our_t));
        if ct != ot {
            problems.push(format!("{top}: CRD type {ct:?}, ours {ot:?}"));
        }
        for (p, t) in &a {
            match b.get(p) {
                None => problems.push(format!("missing in our model: {p} ({t})")),
                Some(u) if u != t => {
                    problems.push(format!("type differs at {p}: CRD {t:?}, ours {u:?}"))
                }
                _ => {}
            }
        }
        for (p, t) in &b {
            if !a.contains_key(p) {
                problems.push(format!("not in the CRD: {p} ({t})"));
            }
        }
    }
    (problems, compared)
}

fn check(plural: &str, version: &str, file: &str, at_least: usize) {
    let (problems, compared) = compare(plural, version, file);
    assert!(
        problems.is_empty(),
        "{} difference(s) between schemas/{file} and the KubeRay CRD {plural} {version}:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
    // Guard against a vacuous pass (the embedded cluster spec alone has > 60 fields).
    assert!(
        compared >= at_least,
        "{file}: only {compared} fields compared"
    );
}

#[test]
fn rayjob_v1_matches_the_crd() {
    check("rayjobs", "v1", "rayjob.v1.json", 120);
}

#[test]
fn rayjob_v1alpha1_matches_the_crd() {
    check("rayjobs", "v1alpha1", "rayjob.v1alpha1.json", 60);
}

#[test]
fn rayservice_v1_matches_the_crd() {
    check("rayservices", "v1", "rayservice.v1.json", 120);
}

#[test]
fn rayservice_v1alpha1_matches_the_crd() {
    check("rayservices", "v1alpha1", "rayservice.v1alpha1.json", 60);
}

#[test]
fn raycronjob_v1_matches_the_crd() {
    check("raycronjobs", "v1", "raycronjob.v1.json", 120);
}

#[test]
fn the_comparison_sees_the_embedded_cluster_and_job_fields() {
    let crd = crd_version("rayjobs", "v1");
    let a: BTreeMap<String, String> =
        property_types(&crd, &crd["properties"]["spec"], "spec", &stop)
            .into_iter()
            .collect();
    for (p, t) in [
        (
            "spec.rayClusterSpec.workerGroupSpecs[].maxReplicas",
            "integer",
        ),
        (
            "spec.deletionStrategy.deletionRules[].condition.ttlSeconds",
            "integer",
        ),
        ("spec.entrypointNumCpus", "number"),
        ("spec.clusterSelector", "object"),
    ] {
        assert_eq!(a.get(p).map(String::as_str), Some(t), "{p}");
    }
    assert!(
        !a.contains_key("spec.submitterPodTemplate.spec"),
        "PodTemplateSpec not entered"
    );
}
