//! Our generated v1 schema and KubeRay's CRD (`../shared/kuberay/crd/ray.io_rayclusters.yaml`)
//! describe the same RayCluster-specific fields with the same types, in both directions.
//! Kubernetes' own types (PodTemplateSpec, Service, ResourceRequirements, EnvVar, SecurityContext,
//! VolumeMount, NetworkPolicy rules…) are compared at their root only, not inside.

use raygate::schema::{property_types, type_of};
use serde_json::Value;
use std::collections::BTreeMap;

const CRD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/kuberay/crd/ray.io_rayclusters.yaml"
);

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
            | "env"
            | "envFrom"
            | "securityContext"
            | "volumeMounts"
            | "ingressRules"
            | "egressRules"
            | "valueFrom"
            | "resources"
    )
}

fn crd_version(name: &str) -> Value {
    let text = std::fs::read_to_string(CRD).expect("read CRD");
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
        .expect("version present")["schema"]["openAPIV3Schema"]
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

fn compare(version: &str, file: &str) -> Vec<String> {
    let crd = crd_version(version);
    let our = ours(file);
    let crd_spec = &crd["properties"]["spec"];
    let our_spec_ref = &our["properties"]["spec"];
    let a: BTreeMap<String, String> = property_types(&crd, crd_spec, "spec", &stop)
        .into_iter()
        .collect();
    let b: BTreeMap<String, String> = property_types(&our, our_spec_ref, "spec", &stop)
        .into_iter()
        .collect();
    let mut problems = Vec::new();
    let crd_t = type_of(&crd, crd_spec);
    let our_t = type_of(&our, our_spec_ref);
    if crd_t != our_t {
        problems.push(format!("spec: CRD type {crd_t:?}, ours {our_t:?}"));
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
    problems
}

#[test]
fn v1_spec_matches_the_crd() {
    let problems = compare("v1", "raycluster.v1.json");
    assert!(
        problems.is_empty(),
        "{} difference(s) between schemas/raycluster.v1.json and the KubeRay CRD:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

#[test]
fn v1alpha1_spec_matches_the_crd() {
    let problems = compare("v1alpha1", "raycluster.v1alpha1.json");
    assert!(
        problems.is_empty(),
        "{} difference(s) between schemas/raycluster.v1alpha1.json and the KubeRay CRD:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

#[test]
fn the_comparison_sees_real_fields() {
    // Guard against a vacuous pass: the CRD side lists the fields we know are there.
    let crd = crd_version("v1");
    let a: BTreeMap<String, String> =
        property_types(&crd, &crd["properties"]["spec"], "spec", &stop)
            .into_iter()
            .collect();
    assert_eq!(
        a.get("spec.workerGroupSpecs[].maxReplicas")
            .map(String::as_str),
        Some("integer")
    );
    assert_eq!(
        a.get("spec.autoscalerOptions.upscalingMode")
            .map(String::as_str),
        Some("string")
    );
    assert_eq!(
        a.get("spec.headGroupSpec.template").map(String::as_str),
        Some("object")
    );
    assert!(
        !a.contains_key("spec.headGroupSpec.template.spec"),
        "PodTemplateSpec not entered"
    );
    assert!(a.len() > 60, "{}", a.len());
}
