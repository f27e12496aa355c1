//! Our generated schemas of RayJob, RayService and RayCronJob and KubeRay's CRDs
//! (`../shared/kuberay/crd/ray.io_{rayjobs,rayservices,raycronjobs}.yaml`) describe the same
//! KubeRay-specific fields with the same types, in both directions, for `spec` (including the
//! embedded RayCluster spec) and `status`. Kubernetes' own types (PodTemplateSpec, Service,
//! EnvVar, Condition, …) are compared at their root only, as in `schema_crd.rs`.

#[path = "support/crd_schema.rs"]
mod crd_schema;

use crd_schema::{crd_version, differences, ours, types_under};

fn compare(plural: &str, version: &str, file: &str) -> (Vec<String>, usize) {
    let (crd, our) = (crd_version(plural, version), ours(file));
    let (mut problems, mut compared) = (Vec::new(), 0);
    for top in ["spec", "status"] {
        let (p, n) = differences(&crd, &our, top);
        problems.extend(p);
        compared += n;
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
    let a = types_under(&crd_version("rayjobs", "v1"), "spec");
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
