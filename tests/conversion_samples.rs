//! Pure conversion over every KubeRay sample: v1 → v1alpha1 drops exactly the v1-only fields
//! (into the annotation), v1alpha1 → v1 restores them, metadata is kept.

mod webhook_common;

use raygate::conversion::{V1, V1_FIELDS_ANNOTATION, V1ALPHA1, convert};
use serde_json::Value;

/// v1-only fields (CRD v1 schema minus v1alpha1 schema), as JSON pointers with `*` for groups.
const V1_ONLY: &[&str] = &[
    "/spec/authOptions",
    "/spec/gcsFaultToleranceOptions",
    "/spec/historyServerOptions",
    "/spec/managedBy",
    "/spec/networkPolicy",
    "/spec/tlsOptions",
    "/spec/upgradeStrategy",
    "/spec/autoscalerOptions/args",
    "/spec/autoscalerOptions/command",
    "/spec/autoscalerOptions/version",
    "/spec/headGroupSpec/ingressOptions",
    "/spec/headGroupSpec/labels",
    "/spec/headGroupSpec/resources",
    "/spec/workerGroupSpecs/*/idleTimeoutSeconds",
    "/spec/workerGroupSpecs/*/labels",
    "/spec/workerGroupSpecs/*/numOfHosts",
    "/spec/workerGroupSpecs/*/priority",
    "/spec/workerGroupSpecs/*/resources",
    "/spec/workerGroupSpecs/*/suspend",
    "/status/conditions",
    "/status/stateTransitionTimes",
    "/status/head/podName",
    "/status/head/serviceName",
];

fn present(obj: &Value, ptr: &str) -> bool {
    if let Some((pre, post)) = ptr.split_once("/*") {
        obj.pointer(pre)
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|g| g.pointer(post).is_some()))
    } else {
        obj.pointer(ptr).is_some()
    }
}

#[test]
fn every_sample_round_trips_losslessly() {
    let mut with_v1_only = 0;
    for (file, obj) in webhook_common::samples() {
        assert_eq!(obj["apiVersion"], V1, "{file}");
        let alpha = convert(&obj, V1ALPHA1).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(alpha["apiVersion"], V1ALPHA1);
        for p in V1_ONLY {
            assert!(!present(&alpha, p), "{file}: {p} left in v1alpha1");
        }
        let had = V1_ONLY.iter().any(|p| present(&obj, p));
        let ann = alpha.pointer(&format!(
            "/metadata/annotations/{}",
            V1_FIELDS_ANNOTATION.replace('/', "~1")
        ));
        assert_eq!(ann.is_some(), had, "{file}: annotation iff v1-only fields");
        if had {
            with_v1_only += 1;
        }
        // everything that is not v1-only is untouched
        let mut a_meta = alpha["metadata"].clone();
        if let Some(m) = a_meta.get_mut("annotations").and_then(Value::as_object_mut) {
            m.remove(V1_FIELDS_ANNOTATION);
            if m.is_empty() {
                a_meta.as_object_mut().unwrap().remove("annotations");
            }
        }
        assert_eq!(a_meta, obj["metadata"], "{file}: metadata kept");
        let back = convert(&alpha, V1).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(back, obj, "{file}: round trip");
        // idempotent per direction
        assert_eq!(convert(&back, V1).unwrap(), obj);
        assert_eq!(convert(&alpha, V1ALPHA1).unwrap(), alpha);
    }
    assert!(
        with_v1_only > 10,
        "samples exercise v1-only fields: {with_v1_only}"
    );
}
