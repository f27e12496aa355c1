//! `ray.io/v1alpha1` ⇄ `ray.io/v1` conversion of RayCluster, RayJob and RayService, lossless
//! through annotations. Pure.
//!
//! The two versions of each kind share every field except a handful (KubeRay froze `v1alpha1`):
//! fields that exist only in `v1` (all three kinds) and, for RayService, a few status fields that
//! exist only in `v1alpha1`. Going down to `v1alpha1`, the `v1`-only fields are removed (the API
//! server would prune them against the `v1alpha1` schema) and kept as JSON in the annotation
//! [`V1_FIELDS_ANNOTATION`]; going back up, they are restored and the annotation is dropped. The
//! `v1alpha1`-only fields travel the other way in [`V1ALPHA1_FIELDS_ANNOTATION`].
//! Worker-group fields are keyed by `groupName` (with the index as a tie-breaker), so a group
//! removed or reordered through `v1alpha1` does not receive another group's fields; entries of a
//! map (RayService's `applicationStatuses`) are keyed by their key.
//! Everything else, `metadata` included, is kept as is. RayJob and RayService embed the
//! RayCluster spec (`spec.rayClusterSpec`, `spec.rayClusterConfig`) and status, so their shapes
//! reuse the RayCluster ones. RayCronJob exists only as `v1` and is not converted.

use serde_json::{Map, Value};

/// Annotation on a `v1alpha1` object holding its `v1`-only fields as JSON.
pub const V1_FIELDS_ANNOTATION: &str = "raygate.io/v1-fields";
/// Annotation on a `v1` object holding its `v1alpha1`-only fields as JSON (RayService only).
pub const V1ALPHA1_FIELDS_ANNOTATION: &str = "raygate.io/v1alpha1-fields";
pub const GROUP: &str = "ray.io";
pub const V1: &str = "ray.io/v1";
pub const V1ALPHA1: &str = "ray.io/v1alpha1";
pub const KIND: &str = "RayCluster";
pub const KIND_RAYJOB: &str = "RayJob";
pub const KIND_RAYSERVICE: &str = "RayService";
/// The kinds served at both versions, which [`convert`] handles.
pub const CONVERTIBLE_KINDS: &[&str] = &[KIND, KIND_RAYJOB, KIND_RAYSERVICE];

/// Why an object could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversionError {
    #[error("object is not a JSON object")]
    NotAnObject,
    #[error("kind {0:?} is not RayCluster, RayJob or RayService")]
    WrongKind(String),
    #[error("apiVersion {0:?} is not ray.io/v1 or ray.io/v1alpha1")]
    UnsupportedVersion(String),
    #[error("desired apiVersion {0:?} is not ray.io/v1 or ray.io/v1alpha1")]
    UnsupportedDesiredVersion(String),
    #[error("annotation {0} is not valid: {1}")]
    BadAnnotation(&'static str, String),
    #[error("field {0} is not a JSON object")]
    NotAnObjectAt(String),
}

/// What to do with one field when moving the fields one version lacks.
enum Node {
    /// The field exists in one version only: move it whole.
    Move,
    /// Recurse into an object.
    Obj(&'static [(&'static str, Node)]),
    /// Recurse into each element of an array of worker groups.
    Groups(&'static [(&'static str, Node)]),
    /// Recurse into each value of a map (`additionalProperties`), keyed by its key.
    Map(&'static [(&'static str, Node)]),
}

use Node::{Groups, Map as Entries, Move, Obj};

type Shape = &'static [(&'static str, Node)];

/// `v1`-only fields of a RayCluster spec (KubeRay v1.7.0 CRD: `v1` schema minus `v1alpha1`).
const CLUSTER_SPEC_V1: Shape = &[
    ("authOptions", Move),
    ("gcsFaultToleranceOptions", Move),
    ("historyServerOptions", Move),
    ("managedBy", Move),
    ("networkPolicy", Move),
    ("tlsOptions", Move),
    ("upgradeStrategy", Move),
    (
        "autoscalerOptions",
        Obj(&[("args", Move), ("command", Move), ("version", Move)]),
    ),
    (
        "headGroupSpec",
        Obj(&[
            ("ingressOptions", Move),
            ("labels", Move),
            ("resources", Move),
        ]),
    ),
    (
        "workerGroupSpecs",
        Groups(&[
            ("idleTimeoutSeconds", Move),
            ("labels", Move),
            ("numOfHosts", Move),
            ("priority", Move),
            ("resources", Move),
            ("suspend", Move),
        ]),
    ),
];

/// `v1`-only fields of a RayCluster status.
const CLUSTER_STATUS_V1: Shape = &[
    ("conditions", Move),
    ("stateTransitionTimes", Move),
    ("head", Obj(&[("podName", Move), ("serviceName", Move)])),
];

const RAYCLUSTER_V1: Shape = &[
    ("spec", Obj(CLUSTER_SPEC_V1)),
    ("status", Obj(CLUSTER_STATUS_V1)),
];

const RAYJOB_V1: Shape = &[
    (
        "spec",
        Obj(&[
            ("activeDeadlineSeconds", Move),
            ("backoffLimit", Move),
            ("deletionStrategy", Move),
            ("managedBy", Move),
            ("preRunningDeadlineSeconds", Move),
            ("submissionMode", Move),
            ("submitterConfig", Move),
            ("rayClusterSpec", Obj(CLUSTER_SPEC_V1)),
        ]),
    ),
    (
        "status",
        Obj(&[
            ("failed", Move),
            ("jobStatusCheckFailureStartTime", Move),
            ("rayJobInfo", Move),
            ("reason", Move),
            ("succeeded", Move),
            ("rayClusterStatus", Obj(CLUSTER_STATUS_V1)),
        ]),
    ),
];

/// `v1`-only fields of a RayService `activeServiceStatus` / `pendingServiceStatus`.
const SERVICE_STATUS_V1: Shape = &[
    ("lastTrafficMigratedTime", Move),
    ("targetCapacity", Move),
    ("trafficRoutedPercent", Move),
    ("rayClusterStatus", Obj(CLUSTER_STATUS_V1)),
];

const RAYSERVICE_V1: Shape = &[
    (
        "spec",
        Obj(&[
            ("excludeHeadPodFromServeSvc", Move),
            ("managedBy", Move),
            ("rayClusterDeletionDelaySeconds", Move),
            ("suspend", Move),
            ("upgradeStrategy", Move),
            ("rayClusterConfig", Obj(CLUSTER_SPEC_V1)),
        ]),
    ),
    (
        "status",
        Obj(&[
            ("conditions", Move),
            ("numServeEndpoints", Move),
            ("activeServiceStatus", Obj(SERVICE_STATUS_V1)),
            ("pendingServiceStatus", Obj(SERVICE_STATUS_V1)),
        ]),
    ),
];

/// `v1alpha1`-only fields of a RayService `activeServiceStatus` / `pendingServiceStatus`.
const SERVICE_STATUS_V1ALPHA1: Shape = &[(
    "applicationStatuses",
    Entries(&[
        ("healthLastUpdateTime", Move),
        (
            "serveDeploymentStatuses",
            Entries(&[("healthLastUpdateTime", Move)]),
        ),
    ]),
)];

const RAYSERVICE_V1ALPHA1: Shape = &[(
    "status",
    Obj(&[
        ("activeServiceStatus", Obj(SERVICE_STATUS_V1ALPHA1)),
        ("pendingServiceStatus", Obj(SERVICE_STATUS_V1ALPHA1)),
    ]),
)];

/// The fields only `v1` has and the fields only `v1alpha1` has, for `kind`.
fn shapes(kind: &str) -> Option<(Shape, Shape)> {
    match kind {
        KIND => Some((RAYCLUSTER_V1, &[])),
        KIND_RAYJOB => Some((RAYJOB_V1, &[])),
        KIND_RAYSERVICE => Some((RAYSERVICE_V1, RAYSERVICE_V1ALPHA1)),
        _ => None,
    }
}

/// Converts one RayCluster, RayJob or RayService to `desired_api_version` (`ray.io/v1` or
/// `ray.io/v1alpha1`).
pub fn convert(obj: &Value, desired_api_version: &str) -> Result<Value, ConversionError> {
    let map = obj.as_object().ok_or(ConversionError::NotAnObject)?;
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
    let Some((v1_only, alpha_only)) = shapes(kind) else {
        return Err(ConversionError::WrongKind(kind.to_string()));
    };
    let from = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if from != V1 && from != V1ALPHA1 {
        return Err(ConversionError::UnsupportedVersion(from.to_string()));
    }
    if desired_api_version != V1 && desired_api_version != V1ALPHA1 {
        return Err(ConversionError::UnsupportedDesiredVersion(
            desired_api_version.to_string(),
        ));
    }
    let mut out = obj.clone();
    if from == desired_api_version {
        return Ok(out);
    }
    let m = out.as_object_mut().ok_or(ConversionError::NotAnObject)?;
    if desired_api_version == V1ALPHA1 {
        restore(m, alpha_only, V1ALPHA1_FIELDS_ANNOTATION)?;
        stash(m, v1_only, V1_FIELDS_ANNOTATION)?;
    } else {
        restore(m, v1_only, V1_FIELDS_ANNOTATION)?;
        stash(m, alpha_only, V1ALPHA1_FIELDS_ANNOTATION)?;
    }
    m.insert(
        "apiVersion".to_string(),
        Value::String(desired_api_version.to_string()),
    );
    Ok(out)
}

/// Moves the fields of `shape` out of `m` into the annotation `ann`.
fn stash(
    m: &mut Map<String, Value>,
    shape: Shape,
    ann: &'static str,
) -> Result<(), ConversionError> {
    let stash = split(m, shape);
    if stash.is_empty() {
        // Nothing to keep; drop any stale annotation so it cannot be restored later.
        remove_annotation(m, ann);
        return Ok(());
    }
    let text = serde_json::to_string(&Value::Object(stash))
        .map_err(|e| ConversionError::BadAnnotation(ann, e.to_string()))?;
    let meta = m
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| ConversionError::NotAnObjectAt("metadata".into()))?;
    let anns = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| ConversionError::NotAnObjectAt("metadata.annotations".into()))?;
    anns.insert(ann.to_string(), Value::String(text));
    Ok(())
}

fn remove_annotation(m: &mut Map<String, Value>, ann: &str) -> Option<String> {
    let meta = m.get_mut("metadata")?.as_object_mut()?;
    let anns = meta.get_mut("annotations")?.as_object_mut()?;
    let v = anns.remove(ann)?;
    if anns.is_empty() {
        meta.remove("annotations");
    }
    match v {
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

/// Takes the annotation `ann` off `m` and merges the fields it holds back in.
fn restore(
    m: &mut Map<String, Value>,
    shape: Shape,
    ann: &'static str,
) -> Result<(), ConversionError> {
    let Some(text) = remove_annotation(m, ann) else {
        return Ok(());
    };
    let bad = |msg: String| ConversionError::BadAnnotation(ann, msg);
    let stash: Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let stash = stash
        .as_object()
        .ok_or_else(|| bad("not a JSON object".into()))?;
    merge(m, stash, shape, "", &bad)
}

/// Moves the fields of `m` described by `shape` into the returned stash.
fn split(m: &mut Map<String, Value>, shape: Shape) -> Map<String, Value> {
    let mut stash = Map::new();
    for (key, node) in shape {
        match node {
            Move => {
                if let Some(v) = m.remove(*key) {
                    stash.insert(key.to_string(), v);
                }
            }
            Obj(sub) => {
                if let Some(Value::Object(child)) = m.get_mut(*key) {
                    let s = split(child, sub);
                    if !s.is_empty() {
                        stash.insert(key.to_string(), Value::Object(s));
                    }
                }
            }
            Entries(sub) => {
                if let Some(Value::Object(entries)) = m.get_mut(*key) {
                    let mut out = Map::new();
                    for (k, v) in entries.iter_mut() {
                        if let Value::Object(e) = v {
                            let s = split(e, sub);
                            if !s.is_empty() {
                                out.insert(k.clone(), Value::Object(s));
                            }
                        }
                    }
                    if !out.is_empty() {
                        stash.insert(key.to_string(), Value::Object(out));
                    }
                }
            }
            Groups(sub) => {
                if let Some(Value::Array(items)) = m.get_mut(*key) {
                    let mut entries = Vec::new();
                    for (i, item) in items.iter_mut().enumerate() {
                        if let Value::Object(g) = item {
                            let s = split(g, sub);
                            if !s.is_empty() {
                                let mut e = Map::new();
                                e.insert("index".into(), Value::from(i));
                                if let Some(n) = g.get("groupName") {
                                    e.insert("groupName".into(), n.clone());
                                }
                                e.insert("fields".into(), Value::Object(s));
                                entries.push(Value::Object(e));
                            }
                        }
                    }
                    if !entries.is_empty() {
                        stash.insert(key.to_string(), Value::Array(entries));
                    }
                }
            }
        }
    }
    stash
}

/// Restores stashed fields into `m`. Fields already present in `m` win.
fn merge(
    m: &mut Map<String, Value>,
    stash: &Map<String, Value>,
    shape: Shape,
    path: &str,
    bad: &dyn Fn(String) -> ConversionError,
) -> Result<(), ConversionError> {
    for (key, node) in shape {
        let Some(sv) = stash.get(*key) else { continue };
        let here = if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        };
        match node {
            Move => {
                if !m.contains_key(*key) {
                    m.insert(key.to_string(), sv.clone());
                }
            }
            Obj(sub) => {
                let so = sv
                    .as_object()
                    .ok_or_else(|| bad(format!("{here}: not an object")))?;
                let child = m
                    .entry(key.to_string())
                    .or_insert_with(|| Value::Object(Map::new()))
                    .as_object_mut()
                    .ok_or_else(|| ConversionError::NotAnObjectAt(here.clone()))?;
                merge(child, so, sub, &here, bad)?;
            }
            Entries(sub) => {
                let so = sv
                    .as_object()
                    .ok_or_else(|| bad(format!("{here}: not an object")))?;
                let Some(Value::Object(entries)) = m.get_mut(*key) else {
                    continue; // the whole map was removed
                };
                for (k, fields) in so {
                    let fields = fields
                        .as_object()
                        .ok_or_else(|| bad(format!("{here}[{k}]: not an object")))?;
                    // an entry removed meanwhile gets nothing back
                    if let Some(e) = entries.get_mut(k) {
                        let e = e.as_object_mut().ok_or_else(|| {
                            ConversionError::NotAnObjectAt(format!("{here}[{k}]"))
                        })?;
                        merge(e, fields, sub, &format!("{here}[{k}]"), bad)?;
                    }
                }
            }
            Groups(sub) => {
                let entries = sv
                    .as_array()
                    .ok_or_else(|| bad(format!("{here}: not an array")))?;
                let Some(Value::Array(items)) = m.get_mut(*key) else {
                    continue; // every group was removed through v1alpha1
                };
                let mut used = vec![false; items.len()];
                for e in entries {
                    let e = e
                        .as_object()
                        .ok_or_else(|| bad(format!("{here}: entry not an object")))?;
                    let fields = e
                        .get("fields")
                        .and_then(Value::as_object)
                        .ok_or_else(|| bad(format!("{here}: entry without fields")))?;
                    let name = e.get("groupName");
                    let idx = e.get("index").and_then(Value::as_u64).map(|i| i as usize);
                    let same_name = |g: &Value| g.get("groupName") == name;
                    let target = match idx {
                        Some(i) if i < items.len() && !used[i] && same_name(&items[i]) => Some(i),
                        _ => (0..items.len()).find(|&i| !used[i] && same_name(&items[i])),
                    };
                    if let Some(i) = target {
                        used[i] = true;
                        let g = items[i].as_object_mut().ok_or_else(|| {
                            ConversionError::NotAnObjectAt(format!("{here}[{i}]"))
                        })?;
                        merge(g, fields, sub, &format!("{here}[{i}]"), bad)?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// The fields only one version of `kind` has, as dotted paths (`[]` for each element of an
/// array of worker groups, `{}` for each value of a map), for comparing with the CRDs:
/// `(v1-only, v1alpha1-only)`. `None` for a kind [`convert`] does not handle.
pub fn version_only_paths(kind: &str) -> Option<(Vec<String>, Vec<String>)> {
    fn walk(shape: Shape, prefix: &str, out: &mut Vec<String>) {
        for (key, node) in shape {
            let here = format!("{prefix}.{key}");
            match node {
                Move => out.push(here),
                Obj(sub) => walk(sub, &here, out),
                Groups(sub) => walk(sub, &format!("{here}[]"), out),
                Entries(sub) => walk(sub, &format!("{here}{{}}"), out),
            }
        }
    }
    let (v1, alpha) = shapes(kind)?;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    walk(v1, "", &mut a);
    walk(alpha, "", &mut b);
    a.sort();
    b.sort();
    Some((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn full_v1() -> Value {
        json!({
            "apiVersion": "ray.io/v1", "kind": "RayCluster",
            "metadata": {"name": "c", "namespace": "ns", "labels": {"a": "b"}},
            "spec": {
                "rayVersion": "2.52.0",
                "managedBy": "ray.io/kuberay-operator",
                "authOptions": {"mode": "token"},
                "autoscalerOptions": {"version": "v2", "idleTimeoutSeconds": 60},
                "headGroupSpec": {"rayStartParams": {}, "labels": {"x": "y"},
                    "template": {"spec": {"containers": [{"name": "ray-head", "image": "r"}]}}},
                "workerGroupSpecs": [
                    {"groupName": "a", "replicas": 1, "numOfHosts": 2, "suspend": false,
                     "template": {"spec": {"containers": [{"name": "w", "image": "r"}]}}},
                    {"groupName": "b", "replicas": 2,
                     "template": {"spec": {"containers": [{"name": "w", "image": "r"}]}}},
                ]
            },
            "status": {"state": "ready", "conditions": [{"type": "HeadPodReady"}],
                       "head": {"podIP": "1.2.3.4", "podName": "h"}}
        })
    }

    #[test]
    fn down_moves_v1_only_fields_into_annotation_and_back() {
        let v1 = full_v1();
        let a = convert(&v1, V1ALPHA1).unwrap();
        assert_eq!(a["apiVersion"], V1ALPHA1);
        assert!(a["spec"].get("managedBy").is_none());
        assert!(a["spec"]["autoscalerOptions"].get("version").is_none());
        assert_eq!(a["spec"]["autoscalerOptions"]["idleTimeoutSeconds"], 60);
        assert!(a["spec"]["headGroupSpec"].get("labels").is_none());
        assert!(a["spec"]["workerGroupSpecs"][0].get("numOfHosts").is_none());
        assert!(a["status"].get("conditions").is_none());
        assert!(a["status"]["head"].get("podName").is_none());
        assert_eq!(a["status"]["head"]["podIP"], "1.2.3.4");
        assert_eq!(a["metadata"]["labels"], json!({"a": "b"}));
        let ann = a["metadata"]["annotations"][V1_FIELDS_ANNOTATION]
            .as_str()
            .unwrap();
        assert!(ann.contains("numOfHosts"));
        let back = convert(&a, V1).unwrap();
        assert_eq!(back, v1);
    }

    #[test]
    fn nothing_v1_only_means_no_annotation() {
        let v1 = json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
            "metadata": {"name": "c"}, "spec": {"headGroupSpec": {"rayStartParams": {}}}});
        let a = convert(&v1, V1ALPHA1).unwrap();
        assert!(a["metadata"].get("annotations").is_none());
        assert_eq!(convert(&a, V1).unwrap(), v1);
    }

    #[test]
    fn reordered_groups_get_their_own_fields() {
        let v1 = full_v1();
        let mut a = convert(&v1, V1ALPHA1).unwrap();
        let groups = a["spec"]["workerGroupSpecs"].as_array_mut().unwrap();
        groups.reverse();
        let back = convert(&a, V1).unwrap();
        assert_eq!(back["spec"]["workerGroupSpecs"][1]["numOfHosts"], 2);
        assert!(
            back["spec"]["workerGroupSpecs"][0]
                .get("numOfHosts")
                .is_none()
        );
        // a removed group's fields are dropped, not given to another group
        let mut a = convert(&v1, V1ALPHA1).unwrap();
        a["spec"]["workerGroupSpecs"]
            .as_array_mut()
            .unwrap()
            .remove(0);
        let back = convert(&a, V1).unwrap();
        assert!(
            back["spec"]["workerGroupSpecs"][0]
                .get("numOfHosts")
                .is_none()
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert_eq!(convert(&json!(1), V1), Err(ConversionError::NotAnObject));
        assert!(matches!(
            convert(&json!({"kind": "Pod", "apiVersion": "v1"}), V1),
            Err(ConversionError::WrongKind(_))
        ));
        assert!(matches!(
            convert(
                &json!({"kind": "RayCluster", "apiVersion": "ray.io/v2"}),
                V1
            ),
            Err(ConversionError::UnsupportedVersion(_))
        ));
        assert!(matches!(
            convert(
                &json!({"kind": "RayCluster", "apiVersion": "ray.io/v1"}),
                "ray.io/v9"
            ),
            Err(ConversionError::UnsupportedDesiredVersion(_))
        ));
        let bad = json!({"kind": "RayCluster", "apiVersion": "ray.io/v1alpha1",
            "metadata": {"annotations": {V1_FIELDS_ANNOTATION: "{not json"}}});
        assert!(matches!(
            convert(&bad, V1),
            Err(ConversionError::BadAnnotation(..))
        ));
        let bad = json!({"kind": "RayCluster", "apiVersion": "ray.io/v1alpha1",
            "metadata": {"annotations": {V1_FIELDS_ANNOTATION: "{\"spec\": 3}"}}});
        assert!(matches!(
            convert(&bad, V1),
            Err(ConversionError::BadAnnotation(..))
        ));
    }

    #[test]
    fn same_version_is_identity() {
        let v1 = full_v1();
        assert_eq!(convert(&v1, V1).unwrap(), v1);
    }
}
