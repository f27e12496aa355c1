//! Defaulting: the CRD's structural defaults and the autoscaler defaults, as an RFC 6902
//! JSON Patch against the original object. Pure and idempotent.
//!
//! Only absent (or `null`) fields are filled; nothing a user wrote is changed or merged into,
//! and unknown fields survive because the raw JSON is edited, not a typed view.

use crate::model::{self, Kind};
use serde_json::{Map, Value, json};

/// CRD default of `workerGroupSpecs[].maxReplicas` (MaxInt32).
pub const MAX_REPLICAS_DEFAULT: i64 = 2_147_483_647;

fn is_absent(m: &Map<String, Value>, k: &str) -> bool {
    m.get(k).is_none_or(Value::is_null)
}

fn set_default(m: &mut Map<String, Value>, k: &str, v: Value) {
    if is_absent(m, k) {
        m.insert(k.to_string(), v);
    }
}

fn is_v1alpha1(obj: &Value) -> bool {
    obj.get("apiVersion").and_then(Value::as_str) == Some(model::API_VERSION_V1ALPHA1)
}

/// The CRD-schema defaults of KubeRay's RayCluster (what the API server stores):
/// `workerGroupSpecs[].{replicas: 0, minReplicas: 0, maxReplicas: 2147483647}` and, for `v1`,
/// `workerGroupSpecs[].{numOfHosts: 1, priority: 0}` and `networkPolicy.mode: DenyAll` when
/// `networkPolicy` is present.
pub fn apply_crd_defaults(obj: &mut Value) {
    let alpha = is_v1alpha1(obj);
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(Value::Array(groups)) = spec.get_mut("workerGroupSpecs") {
        for g in groups.iter_mut().filter_map(Value::as_object_mut) {
            set_default(g, "replicas", json!(0));
            set_default(g, "minReplicas", json!(0));
            set_default(g, "maxReplicas", json!(MAX_REPLICAS_DEFAULT));
            if !alpha {
                set_default(g, "numOfHosts", json!(1));
                set_default(g, "priority", json!(0));
            }
        }
    }
    if !alpha && let Some(np) = spec.get_mut("networkPolicy").and_then(Value::as_object_mut) {
        set_default(np, "mode", json!("DenyAll"));
    }
}

/// Autoscaler defaults the operator applies anyway, written into the object when
/// `enableInTreeAutoscaling: true`: `imagePullPolicy: IfNotPresent`, `resources` (only when
/// absent entirely) requests and limits `cpu: 500m`, `memory: 512Mi`, `upscalingMode: Default`,
/// `idleTimeoutSeconds: 60`. `image` (follows the head image) and `version` are never set.
fn apply_autoscaler_defaults(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if spec.get("enableInTreeAutoscaling") != Some(&Value::Bool(true)) {
        return;
    }
    set_default(spec, "autoscalerOptions", json!({}));
    let Some(ao) = spec
        .get_mut("autoscalerOptions")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    set_default(ao, "imagePullPolicy", json!("IfNotPresent"));
    set_default(
        ao,
        "resources",
        json!({
            "limits": {"cpu": "500m", "memory": "512Mi"},
            "requests": {"cpu": "500m", "memory": "512Mi"}
        }),
    );
    set_default(ao, "upscalingMode", json!("Default"));
    set_default(ao, "idleTimeoutSeconds", json!(60));
}

/// CRD defaults + autoscaler defaults. Idempotent: `defaulted(&defaulted(x)) == defaulted(x)`.
pub fn defaulted(obj: &Value) -> Value {
    let mut out = obj.clone();
    apply_crd_defaults(&mut out);
    apply_autoscaler_defaults(&mut out);
    out
}

/// RFC 6902 `add` operations turning `obj` into [`defaulted`]`(obj)`; empty if nothing to do.
/// Parents that do not exist are added whole (one op), so the patch is minimal.
pub fn default_patch(obj: &Value) -> json_patch::Patch {
    let mut ops = Vec::new();
    // Defaulting reads `apiVersion` and changes nothing outside `spec`; within `spec` it reads
    // and fills only the members kept by `skeleton`. So the diff runs on a copy of just those
    // (in their original order, so the ops come out in the same order): a large spec is
    // neither cloned nor compared.
    let (Some(top), Some(Value::Object(spec))) = (obj.as_object(), obj.get("spec")) else {
        return json_patch::Patch(ops);
    };
    let old = Value::Object(skeleton(spec));
    let mut slim = Map::new();
    if let Some(av) = top.get("apiVersion") {
        slim.insert("apiVersion".into(), av.clone());
    }
    slim.insert("spec".into(), old.clone());
    let mut new = Value::Object(slim);
    apply_crd_defaults(&mut new);
    apply_autoscaler_defaults(&mut new);
    if let Some(new_spec) = new.get("spec") {
        let mut tokens: Vec<String> = vec!["spec".into()];
        diff_adds(&old, new_spec, &mut tokens, &mut ops);
    }
    json_patch::Patch(ops)
}

/// Members of a worker group that [`apply_crd_defaults`] fills.
const GROUP_DEFAULTED: &[&str] = &[
    "replicas",
    "minReplicas",
    "maxReplicas",
    "numOfHosts",
    "priority",
];
/// Members of `autoscalerOptions` that [`apply_autoscaler_defaults`] fills.
const AUTOSCALER_DEFAULTED: &[&str] = &[
    "imagePullPolicy",
    "resources",
    "upscalingMode",
    "idleTimeoutSeconds",
];

/// `m` with only the members in `keep`, in their order.
fn only(m: &Map<String, Value>, keep: &[&str]) -> Map<String, Value> {
    m.iter()
        .filter(|(k, _)| keep.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The part of `spec` defaulting reads or fills, with members in their original order. Values
/// of an unexpected type are kept whole: defaulting leaves them as they are.
fn skeleton(spec: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in spec {
        let kept = match (k.as_str(), v) {
            ("workerGroupSpecs", Value::Array(groups)) => Value::Array(
                groups
                    .iter()
                    .map(|g| match g {
                        Value::Object(g) => Value::Object(only(g, GROUP_DEFAULTED)),
                        other => other.clone(),
                    })
                    .collect(),
            ),
            ("networkPolicy", Value::Object(np)) => Value::Object(only(np, &["mode"])),
            ("autoscalerOptions", Value::Object(ao)) => {
                Value::Object(only(ao, AUTOSCALER_DEFAULTED))
            }
            ("workerGroupSpecs" | "networkPolicy" | "autoscalerOptions", other) => other.clone(),
            ("enableInTreeAutoscaling", other) => other.clone(),
            _ => continue,
        };
        out.insert(k.clone(), kept);
    }
    out
}

/// Defaulting only adds members (or replaces `null`s), so the difference is a set of `add`s.
fn diff_adds(
    old: &Value,
    new: &Value,
    tokens: &mut Vec<String>,
    ops: &mut Vec<json_patch::PatchOperation>,
) {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            for (k, nv) in n {
                tokens.push(k.clone());
                match o.get(k) {
                    Some(ov) if ov == nv => {}
                    Some(ov) if !ov.is_null() => diff_adds(ov, nv, tokens, ops),
                    _ => ops.push(add_op(tokens, nv.clone())),
                }
                tokens.pop();
            }
        }
        (Value::Array(o), Value::Array(n)) if o.len() == n.len() => {
            for (i, (ov, nv)) in o.iter().zip(n).enumerate() {
                if ov != nv {
                    tokens.push(i.to_string());
                    diff_adds(ov, nv, tokens, ops);
                    tokens.pop();
                }
            }
        }
        _ => {
            if old != new {
                ops.push(add_op(tokens, new.clone()));
            }
        }
    }
}

fn add_op(tokens: &[String], value: Value) -> json_patch::PatchOperation {
    let path = json_patch::jsonptr::PointerBuf::from_tokens(tokens.iter().map(String::as_str));
    json_patch::PatchOperation::Add(json_patch::AddOperation { path, value })
}

// ---------------------------------------------------------------------------------------------
// RayJob, RayService, RayCronJob

/// Applies RayCluster defaulting (`crd_only`: CRD defaults; else also the autoscaler defaults)
/// to an embedded cluster spec in place, as if it were a RayCluster of `api`.
fn default_embedded(m: &mut Map<String, Value>, field: &str, api: Option<&Value>, crd_only: bool) {
    let Some(slot) = m.get_mut(field) else { return };
    if !slot.is_object() {
        return;
    }
    let mut wrapper = Map::new();
    if let Some(a) = api {
        wrapper.insert("apiVersion".into(), a.clone());
    }
    wrapper.insert("spec".into(), std::mem::take(slot));
    let mut w = Value::Object(wrapper);
    apply_crd_defaults(&mut w);
    if !crd_only {
        apply_autoscaler_defaults(&mut w);
    }
    if let Value::Object(mut wm) = w
        && let Some(spec) = wm.remove("spec")
    {
        *slot = spec;
    }
}

/// CRD defaults of a RayJob spec (`v1`: `backoffLimit: 0`, `submissionMode: K8sJobMode`,
/// `ttlSecondsAfterFinished: 0`, `deletionStrategy.deletionRules[].condition.ttlSeconds: 0`;
/// `v1alpha1`: `ttlSecondsAfterFinished: 0`), plus the embedded `rayClusterSpec`'s.
fn default_rayjob_spec(
    spec: &mut Map<String, Value>,
    api: Option<&Value>,
    alpha: bool,
    crd_only: bool,
) {
    set_default(spec, "ttlSecondsAfterFinished", json!(0));
    if !alpha {
        set_default(spec, "backoffLimit", json!(0));
        set_default(spec, "submissionMode", json!("K8sJobMode"));
        if let Some(Value::Array(rules)) = spec
            .get_mut("deletionStrategy")
            .and_then(Value::as_object_mut)
            .and_then(|d| d.get_mut("deletionRules"))
        {
            for r in rules.iter_mut().filter_map(Value::as_object_mut) {
                if let Some(c) = r.get_mut("condition").and_then(Value::as_object_mut) {
                    set_default(c, "ttlSeconds", json!(0));
                }
            }
        }
    }
    default_embedded(spec, "rayClusterSpec", api, crd_only);
}

fn apply_kind_defaults(kind: Kind, obj: &mut Value, crd_only: bool) {
    if kind == Kind::RayCluster {
        apply_crd_defaults(obj);
        if !crd_only {
            apply_autoscaler_defaults(obj);
        }
        return;
    }
    let alpha = is_v1alpha1(obj);
    let api = obj.get("apiVersion").cloned();
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    match kind {
        Kind::RayJob => default_rayjob_spec(spec, api.as_ref(), alpha, crd_only),
        Kind::RayService => {
            if !alpha
                && let Some(o) = spec
                    .get_mut("upgradeStrategy")
                    .and_then(Value::as_object_mut)
                    .and_then(|u| u.get_mut("clusterUpgradeOptions"))
                    .and_then(Value::as_object_mut)
            {
                set_default(o, "maxSurgePercent", json!(100));
            }
            default_embedded(spec, "rayClusterConfig", api.as_ref(), crd_only);
        }
        Kind::RayCronJob => {
            if let Some(t) = spec.get_mut("jobTemplate").and_then(Value::as_object_mut) {
                default_rayjob_spec(t, api.as_ref(), false, crd_only);
            }
        }
        Kind::RayCluster => {}
    }
}

/// The CRD-schema defaults of `kind` (what the API server stores), in place; for RayJob,
/// RayService and RayCronJob also those of the embedded RayCluster spec.
pub fn apply_crd_defaults_kind(kind: Kind, obj: &mut Value) {
    apply_kind_defaults(kind, obj, true);
}

/// CRD defaults plus, for every embedded cluster spec with `enableInTreeAutoscaling: true`, the
/// autoscaler defaults (`IfNotPresent`, 500m/512Mi, …), as for a RayCluster. Idempotent.
pub fn defaulted_kind(kind: Kind, obj: &Value) -> Value {
    let mut out = obj.clone();
    apply_kind_defaults(kind, &mut out, false);
    out
}

/// RFC 6902 `add` operations turning `obj` into [`defaulted_kind`]`(kind, obj)`; empty if
/// nothing to do. Pure: this is what a mutating webhook returns.
pub fn default_patch_kind(kind: Kind, obj: &Value) -> json_patch::Patch {
    if kind == Kind::RayCluster {
        return default_patch(obj);
    }
    let new = defaulted_kind(kind, obj);
    let mut ops = Vec::new();
    diff_adds(obj, &new, &mut Vec::new(), &mut ops);
    json_patch::Patch(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_defaults_fill_only_absent_fields() {
        let mut v = json!({"apiVersion": "ray.io/v1", "spec": {
            "workerGroupSpecs": [{"groupName": "a", "minReplicas": 2}, {"groupName": "b", "maxReplicas": null}],
            "networkPolicy": {}
        }});
        apply_crd_defaults(&mut v);
        let g = &v["spec"]["workerGroupSpecs"];
        assert_eq!(g[0]["minReplicas"], 2);
        assert_eq!(g[0]["maxReplicas"], 2147483647);
        assert_eq!(g[0]["replicas"], 0);
        assert_eq!(g[0]["numOfHosts"], 1);
        assert_eq!(g[0]["priority"], 0);
        assert_eq!(g[1]["maxReplicas"], 2147483647);
        assert_eq!(v["spec"]["networkPolicy"]["mode"], "DenyAll");
    }

    #[test]
    fn v1alpha1_gets_only_its_own_defaults() {
        let mut v = json!({"apiVersion": "ray.io/v1alpha1", "spec": {"workerGroupSpecs": [{}], "networkPolicy": {}}});
        apply_crd_defaults(&mut v);
        assert_eq!(
            v["spec"]["workerGroupSpecs"][0],
            json!({"replicas": 0, "minReplicas": 0, "maxReplicas": 2147483647})
        );
        assert_eq!(v["spec"]["networkPolicy"], json!({}));
    }

    #[test]
    fn autoscaler_defaults_and_patch() {
        let v = json!({"apiVersion": "ray.io/v1", "spec": {"enableInTreeAutoscaling": true, "headGroupSpec": {}}});
        let d = defaulted(&v);
        assert_eq!(
            d["spec"]["autoscalerOptions"],
            json!({"imagePullPolicy": "IfNotPresent",
                   "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}, "requests": {"cpu": "500m", "memory": "512Mi"}},
                   "upscalingMode": "Default", "idleTimeoutSeconds": 60})
        );
        let p = default_patch(&v);
        assert_eq!(p.0.len(), 1, "one add for the missing parent: {p:?}");
        let mut patched = v.clone();
        json_patch::patch(&mut patched, &p).unwrap();
        assert_eq!(patched, d);
        assert!(default_patch(&d).0.is_empty());
        assert_eq!(defaulted(&d), d);
    }

    #[test]
    fn user_resources_block_is_never_merged() {
        let v = json!({"spec": {"enableInTreeAutoscaling": true, "autoscalerOptions": {"resources": {"limits": {"cpu": "1"}}, "image": "x"}}});
        let d = defaulted(&v);
        assert_eq!(
            d["spec"]["autoscalerOptions"]["resources"],
            json!({"limits": {"cpu": "1"}})
        );
        assert_eq!(d["spec"]["autoscalerOptions"]["image"], "x");
        assert!(d["spec"]["autoscalerOptions"].get("version").is_none());
    }

    #[test]
    fn patch_escapes_pointer_tokens_and_handles_nulls() {
        let v = json!({"spec": {"workerGroupSpecs": [{"replicas": null, "minReplicas": 0, "maxReplicas": 1, "numOfHosts": 1, "priority": 0, "a/b~c": 1}]}});
        let p = default_patch(&v);
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!([{"op": "add", "path": "/spec/workerGroupSpecs/0/replicas", "value": 0}])
        );
        assert!(default_patch(&json!("x")).0.is_empty());
        assert!(default_patch(&json!({"spec": 3})).0.is_empty());
    }
}
