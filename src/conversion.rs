//! `ray.io/v1alpha1` ⇄ `ray.io/v1` conversion, lossless through an annotation. Pure.
//!
//! The two versions share every field except a handful that exist only in `v1` (KubeRay froze
//! `v1alpha1`). Going down to `v1alpha1`, those fields are removed (the API server would prune
//! them against the `v1alpha1` schema) and kept as JSON in the annotation [`V1_FIELDS_ANNOTATION`]
//! on the `v1alpha1` object; going back up, they are restored and the annotation is dropped.
//! Worker-group fields are keyed by `groupName` (with the index as a tie-breaker), so a group
//! removed or reordered through `v1alpha1` does not receive another group's fields.
//! Everything else, `metadata` included, is kept as is.

use serde_json::{Map, Value};

/// Annotation on a `v1alpha1` object holding its `v1`-only fields as JSON.
pub const V1_FIELDS_ANNOTATION: &str = "raygate.io/v1-fields";
pub const GROUP: &str = "ray.io";
pub const V1: &str = "ray.io/v1";
pub const V1ALPHA1: &str = "ray.io/v1alpha1";
pub const KIND: &str = "RayCluster";

/// Why an object could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversionError {
    #[error("object is not a JSON object")]
    NotAnObject,
    #[error("kind {0:?} is not RayCluster")]
    WrongKind(String),
    #[error("apiVersion {0:?} is not ray.io/v1 or ray.io/v1alpha1")]
    UnsupportedVersion(String),
    #[error("desired apiVersion {0:?} is not ray.io/v1 or ray.io/v1alpha1")]
    UnsupportedDesiredVersion(String),
    #[error("annotation {V1_FIELDS_ANNOTATION} is not valid: {0}")]
    BadAnnotation(String),
    #[error("field {0} is not a JSON object")]
    NotAnObjectAt(String),
}

/// What to do with one field when going down to `v1alpha1`.
enum Node {
    /// The field exists only in `v1`: move it whole.
    Move,
    /// Recurse into an object.
    Obj(&'static [(&'static str, Node)]),
    /// Recurse into each element of an array of worker groups.
    Groups(&'static [(&'static str, Node)]),
}

use Node::{Groups, Move, Obj};

/// The `v1`-only fields (KubeRay v1.7.0 CRD: `v1` schema minus `v1alpha1` schema).
const SHAPE: &[(&str, Node)] = &[
    (
        "spec",
        Obj(&[
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
        ]),
    ),
    (
        "status",
        Obj(&[
            ("conditions", Move),
            ("stateTransitionTimes", Move),
            ("head", Obj(&[("podName", Move), ("serviceName", Move)])),
        ]),
    ),
];

/// Converts one RayCluster to `desired_api_version` (`ray.io/v1` or `ray.io/v1alpha1`).
pub fn convert(obj: &Value, desired_api_version: &str) -> Result<Value, ConversionError> {
    convert_owned(obj.clone(), desired_api_version)
}

/// [`convert`], consuming the object (no copy of it).
pub fn convert_owned(obj: Value, desired_api_version: &str) -> Result<Value, ConversionError> {
    let map = obj.as_object().ok_or(ConversionError::NotAnObject)?;
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind != KIND {
        return Err(ConversionError::WrongKind(kind.to_string()));
    }
    let from = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if from != V1 && from != V1ALPHA1 {
        return Err(ConversionError::UnsupportedVersion(from.to_string()));
    }
    if desired_api_version != V1 && desired_api_version != V1ALPHA1 {
        return Err(ConversionError::UnsupportedDesiredVersion(
            desired_api_version.to_string(),
        ));
    }
    let same = from == desired_api_version;
    let mut out = obj;
    if same {
        return Ok(out);
    }
    let m = out.as_object_mut().ok_or(ConversionError::NotAnObject)?;
    if desired_api_version == V1ALPHA1 {
        down(m)?;
    } else {
        up(m)?;
    }
    m.insert(
        "apiVersion".to_string(),
        Value::String(desired_api_version.to_string()),
    );
    Ok(out)
}

fn down(m: &mut Map<String, Value>) -> Result<(), ConversionError> {
    let stash = split(m, SHAPE, "");
    if stash.is_empty() {
        // Nothing v1-only; drop any stale annotation so it cannot be restored later.
        remove_annotation(m);
        return Ok(());
    }
    let text = serde_json::to_string(&Value::Object(stash))
        .map_err(|e| ConversionError::BadAnnotation(e.to_string()))?;
    let meta = m
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| ConversionError::NotAnObjectAt("metadata".into()))?;
    let ann = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| ConversionError::NotAnObjectAt("metadata.annotations".into()))?;
    ann.insert(V1_FIELDS_ANNOTATION.to_string(), Value::String(text));
    Ok(())
}

fn remove_annotation(m: &mut Map<String, Value>) -> Option<String> {
    let meta = m.get_mut("metadata")?.as_object_mut()?;
    let ann = meta.get_mut("annotations")?.as_object_mut()?;
    let v = ann.remove(V1_FIELDS_ANNOTATION)?;
    if ann.is_empty() {
        meta.remove("annotations");
    }
    match v {
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

fn up(m: &mut Map<String, Value>) -> Result<(), ConversionError> {
    let Some(text) = remove_annotation(m) else {
        return Ok(());
    };
    let stash: Value =
        serde_json::from_str(&text).map_err(|e| ConversionError::BadAnnotation(e.to_string()))?;
    let stash = stash
        .as_object()
        .ok_or_else(|| ConversionError::BadAnnotation("not a JSON object".into()))?;
    merge(m, stash, SHAPE, "")
}

/// Moves the `v1`-only fields of `m` (described by `shape`) into the returned stash.
fn split(m: &mut Map<String, Value>, shape: &[(&str, Node)], path: &str) -> Map<String, Value> {
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
                    let s = split(child, sub, &format!("{path}.{key}"));
                    if !s.is_empty() {
                        stash.insert(key.to_string(), Value::Object(s));
                    }
                }
            }
            Groups(sub) => {
                if let Some(Value::Array(items)) = m.get_mut(*key) {
                    let mut entries = Vec::new();
                    for (i, item) in items.iter_mut().enumerate() {
                        if let Value::Object(g) = item {
                            let s = split(g, sub, &format!("{path}.{key}[{i}]"));
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
    shape: &[(&str, Node)],
    path: &str,
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
                let so = sv.as_object().ok_or_else(|| {
                    ConversionError::BadAnnotation(format!("{here}: not an object"))
                })?;
                let child = m
                    .entry(key.to_string())
                    .or_insert_with(|| Value::Object(Map::new()))
                    .as_object_mut()
                    .ok_or_else(|| ConversionError::NotAnObjectAt(here.clone()))?;
                merge(child, so, sub, &here)?;
            }
            Groups(sub) => {
                let entries = sv.as_array().ok_or_else(|| {
                    ConversionError::BadAnnotation(format!("{here}: not an array"))
                })?;
                let Some(Value::Array(items)) = m.get_mut(*key) else {
                    continue; // every group was removed through v1alpha1
                };
                let mut used = vec![false; items.len()];
                for e in entries {
                    let e = e.as_object().ok_or_else(|| {
                        ConversionError::BadAnnotation(format!("{here}: entry not an object"))
                    })?;
                    let fields = e.get("fields").and_then(Value::as_object).ok_or_else(|| {
                        ConversionError::BadAnnotation(format!("{here}: entry without fields"))
                    })?;
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
                        merge(g, fields, sub, &format!("{here}[{i}]"))?;
                    }
                }
            }
        }
    }
    Ok(())
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
            Err(ConversionError::BadAnnotation(_))
        ));
        let bad = json!({"kind": "RayCluster", "apiVersion": "ray.io/v1alpha1",
            "metadata": {"annotations": {V1_FIELDS_ANNOTATION: "{\"spec\": 3}"}}});
        assert!(matches!(
            convert(&bad, V1),
            Err(ConversionError::BadAnnotation(_))
        ));
    }

    #[test]
    fn same_version_is_identity() {
        let v1 = full_v1();
        assert_eq!(convert(&v1, V1).unwrap(), v1);
    }
}
