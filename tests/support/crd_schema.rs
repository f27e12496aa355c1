//! Comparing raygate's generated JSON Schemas (`schemas/`) with KubeRay's CRDs
//! (`../shared/kuberay/crd/ray.io_<plural>.yaml`) field by field: shared by tests/schema_crd.rs
//! (RayCluster) and tests/schema_crd_kinds.rs (RayJob, RayService, RayCronJob).
//!
//! Include with `#[path = "support/crd_schema.rs"] mod crd_schema;`.
#![allow(dead_code)]

use raygate::schema::{property_types, type_of};
use serde_json::Value;
use std::collections::BTreeMap;

/// Fields whose insides belong to Kubernetes' types, not KubeRay's: compared at their root only.
pub fn stop(path: &str) -> bool {
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

/// The `openAPIV3Schema` of one version of KubeRay's CRD for `plural`.
pub fn crd_version(plural: &str, name: &str) -> Value {
    let path = format!(
        "{}/../shared/kuberay/crd/ray.io_{plural}.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
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

/// raygate's generated schema `schemas/<file>`.
pub fn ours(file: &str) -> Value {
    let all = raygate::schema::generate_all();
    let (_, s) = all
        .iter()
        .find(|(n, _)| *n == file)
        .expect("schema generated");
    serde_json::from_str(s).expect("schema is JSON")
}

/// Every (path → type) under `properties.<top>` of a schema.
pub fn types_under(schema: &Value, top: &str) -> BTreeMap<String, String> {
    property_types(schema, &schema["properties"][top], top, &stop)
        .into_iter()
        .collect()
}

/// The differences under `properties.<top>` between the CRD and our schema, in both directions,
/// and how many CRD fields were compared.
pub fn differences(crd: &Value, our: &Value, top: &str) -> (Vec<String>, usize) {
    let a = types_under(crd, top);
    let b = types_under(our, top);
    let mut problems = Vec::new();
    let (ct, ot) = (
        type_of(crd, &crd["properties"][top]),
        type_of(our, &our["properties"][top]),
    );
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
    (problems, a.len())
}
