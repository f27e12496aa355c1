//! The largest schema-valid RayCluster AdmissionReviews that fit under a byte budget (issue
//! #14, defect 1), shared by `benches/webhook_hostile.rs` and `tests/webhook_memory.rs`.
//!
//! Each shape repeats the cheapest element the CRD schema allows as often as it fits: empty
//! container `args`, `env` entries, worker groups. All stay under the API server's 3 MiB
//! request limit when built with [`MAX_BODY`].

#![allow(dead_code)]

use serde_json::{Value, json};

/// The API server's request-body limit (kube-apiserver `MaxRequestBodyBytes`), 3 MiB.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// The hostile shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One head container with empty `args` (`"",` is 3 bytes each).
    EmptyArgs,
    /// One head container with `{"name":"E1","value":""}` env entries.
    HugeEnv,
    /// Minimal worker groups, each with a distinct name and one container.
    ManyGroups,
    /// Worker groups with `minReplicas > maxReplicas`: each one is a violation (a long denial).
    InvalidGroups,
}

pub const SHAPES: &[Shape] = &[
    Shape::EmptyArgs,
    Shape::HugeEnv,
    Shape::ManyGroups,
    Shape::InvalidGroups,
];

impl Shape {
    pub fn name(self) -> &'static str {
        match self {
            Shape::EmptyArgs => "empty args",
            Shape::HugeEnv => "huge env",
            Shape::ManyGroups => "many groups",
            Shape::InvalidGroups => "invalid groups",
        }
    }
}

fn container(name: &str) -> Value {
    json!({"name": name, "image": "rayproject/ray:2.46.0"})
}

/// A small valid RayCluster.
pub fn base_cluster(name: &str) -> Value {
    json!({
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "headGroupSpec": {
                "rayStartParams": {},
                "template": {"spec": {"containers": [container("ray-head")]}}
            },
            "workerGroupSpecs": [{
                "groupName": "workers",
                "replicas": 1, "minReplicas": 0, "maxReplicas": 5,
                "rayStartParams": {},
                "template": {"spec": {"containers": [container("ray-worker")]}}
            }]
        }
    })
}

fn group(i: usize, invalid: bool) -> Value {
    let (min, max) = if invalid { (2, 1) } else { (0, 1) };
    json!({
        "groupName": format!("g{i}"),
        "minReplicas": min, "maxReplicas": max,
        "rayStartParams": {},
        "template": {"spec": {"containers": [{"name": "w", "image": "r"}]}}
    })
}

/// A CREATE AdmissionReview of the RayCluster `obj` (`support::review` builds its reviews
/// with it too).
pub fn create_review(
    obj: &Value,
    uid: &str,
    namespace: &str,
    user: Value,
    options: Value,
    dry_run: bool,
) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "ray.io", "version": "v1", "kind": "RayCluster"},
            "resource": {"group": "ray.io", "version": "v1", "resource": "rayclusters"},
            "requestKind": {"group": "ray.io", "version": "v1", "kind": "RayCluster"},
            "requestResource": {"group": "ray.io", "version": "v1", "resource": "rayclusters"},
            "name": obj["metadata"]["name"],
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": user,
            "object": obj,
            "oldObject": null,
            "dryRun": dry_run,
            "options": options
        }
    })
}

/// A dry-run CREATE AdmissionReview for `obj` in `default`, from an ordinary user.
pub fn review_of(obj: &Value, uid: &str) -> Value {
    create_review(
        obj,
        uid,
        "default",
        json!({"username": "mallory", "groups": ["system:authenticated"]}),
        json!({"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}),
        true,
    )
}

/// The cluster of `shape` with `n` repeated elements.
pub fn cluster(shape: Shape, n: usize) -> Value {
    let mut obj = base_cluster("hostile");
    match shape {
        Shape::EmptyArgs => {
            obj["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["args"] =
                Value::Array(vec![json!(""); n]);
        }
        Shape::HugeEnv => {
            obj["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["env"] = Value::Array(
                (0..n)
                    .map(|i| json!({"name": format!("E{i}"), "value": ""}))
                    .collect(),
            );
        }
        Shape::ManyGroups | Shape::InvalidGroups => {
            obj["spec"]["workerGroupSpecs"] = Value::Array(
                (0..n)
                    .map(|i| group(i, shape == Shape::InvalidGroups))
                    .collect(),
            );
        }
    }
    obj
}

/// The serialised review of `shape` with as many elements as fit in `max_bytes`, and that
/// count.
pub fn review_bytes(shape: Shape, max_bytes: usize) -> (Vec<u8>, usize) {
    let size = |n: usize| serde_json::to_vec(&review_of(&cluster(shape, n), "hostile")).unwrap();
    let (a, b) = (size(100).len(), size(1100).len());
    let per = (b - a) as f64 / 1000.0;
    let est = 100 + ((max_bytes - a) as f64 / per) as usize;
    // lo fits, hi does not
    let (mut lo, mut hi) = (est - est / 20, est + est / 20);
    while size(lo).len() > max_bytes {
        (hi, lo) = (lo, lo - lo / 10);
    }
    while size(hi).len() <= max_bytes {
        (lo, hi) = (hi, hi + hi / 10);
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if size(mid).len() <= max_bytes {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (size(lo), lo)
}
