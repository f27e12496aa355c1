//! Shared helpers for the rule tests: a valid base RayCluster and JSON-pointer edits.
#![allow(dead_code)]

use serde_json::{Value, json};

/// A valid `ray.io/v1` RayCluster after CRD defaulting: no violation at all.
pub fn base() -> Value {
    json!({
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": "raycluster-sample", "namespace": "default"},
        "spec": {
            "rayVersion": "2.56.0",
            "headGroupSpec": {
                "rayStartParams": {},
                "template": {"spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.56.0"}]}}
            },
            "workerGroupSpecs": [{
                "groupName": "workers",
                "replicas": 1, "minReplicas": 1, "maxReplicas": 5, "numOfHosts": 1, "priority": 0,
                "rayStartParams": {},
                "template": {"spec": {"containers": [{"name": "ray-worker", "image": "rayproject/ray:2.56.0"}]}}
            }]
        }
    })
}

fn token(t: &str) -> String {
    t.replace("~1", "/").replace("~0", "~")
}

/// Sets the value at an RFC 6901 pointer, creating missing objects (and appending to arrays).
pub fn set(v: &mut Value, ptr: &str, val: Value) {
    let toks: Vec<String> = ptr.split('/').skip(1).map(token).collect();
    let mut cur = v;
    for (i, t) in toks.iter().enumerate() {
        let last = i + 1 == toks.len();
        if cur.is_array() {
            let arr = cur.as_array_mut().unwrap();
            let idx: usize = t.parse().unwrap();
            if idx >= arr.len() {
                arr.push(if last { val.clone() } else { json!({}) });
            }
            if last {
                arr[idx] = val;
                return;
            }
            cur = &mut arr[idx];
        } else {
            if !cur.is_object() {
                *cur = json!({});
            }
            let m = cur.as_object_mut().unwrap();
            if last {
                m.insert(t.clone(), val);
                return;
            }
            cur = m.entry(t.clone()).or_insert_with(|| json!({}));
        }
    }
}

/// Removes the value at a pointer (no-op if absent).
pub fn del(v: &mut Value, ptr: &str) {
    let (parent, last) = ptr.rsplit_once('/').unwrap();
    if let Some(p) = v.pointer_mut(parent) {
        match p {
            Value::Object(m) => {
                m.remove(&token(last));
            }
            Value::Array(a) => {
                let i: usize = last.parse().unwrap();
                if i < a.len() {
                    a.remove(i);
                }
            }
            _ => {}
        }
    }
}

/// `base()` with edits applied.
pub fn with(edits: &[(&str, Value)]) -> Value {
    let mut v = base();
    for (p, val) in edits {
        if val == &json!("<delete>") {
            del(&mut v, p);
        } else {
            set(&mut v, p, val.clone());
        }
    }
    v
}
