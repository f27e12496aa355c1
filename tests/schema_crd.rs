//! Our generated v1 schema and KubeRay's CRD (`../shared/kuberay/crd/ray.io_rayclusters.yaml`)
//! describe the same RayCluster-specific fields with the same types, in both directions.
//! Kubernetes' own types (PodTemplateSpec, Service, ResourceRequirements, EnvVar, SecurityContext,
//! VolumeMount, NetworkPolicy rules…) are compared at their root only, not inside.

#[path = "support/crd_schema.rs"]
mod crd_schema;

use crd_schema::{crd_version, differences, ours, types_under};

fn compare(version: &str, file: &str) -> Vec<String> {
    differences(&crd_version("rayclusters", version), &ours(file), "spec").0
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
    let a = types_under(&crd_version("rayclusters", "v1"), "spec");
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
