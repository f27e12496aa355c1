//! Defaulting: the CRD's structural defaults and the autoscaler defaults, as an RFC 6902
//! JSON Patch against the original object. Pure and idempotent.

// TEMP stub defaulting API (drop on merge): the core branch provides the real functions.
use serde_json::Value;

/// TEMP stub: CRD structural defaults for worker groups only.
pub fn apply_crd_defaults(obj: &mut Value) {
    if let Some(groups) = obj
        .pointer_mut("/spec/workerGroupSpecs")
        .and_then(Value::as_array_mut)
    {
        for g in groups.iter_mut().filter_map(Value::as_object_mut) {
            for (k, v) in [
                ("replicas", 0i64),
                ("minReplicas", 0),
                ("maxReplicas", 2147483647),
                ("numOfHosts", 1),
            ] {
                g.entry(k).or_insert(Value::from(v));
            }
        }
    }
}

/// TEMP stub.
pub fn defaulted(obj: &Value) -> Value {
    let mut o = obj.clone();
    apply_crd_defaults(&mut o);
    o
}

/// TEMP stub.
pub fn default_patch(obj: &Value) -> json_patch::Patch {
    json_patch::diff(obj, &defaulted(obj))
}
