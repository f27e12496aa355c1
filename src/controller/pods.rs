//! The operator half (`--reconcile-pods`): worker pods from the group template up to
//! clamp(replicas, min, max) × numOfHosts with KubeRay's labels, and deletion of exactly the pods
//! named in `workersToDelete`. Surplus pods are never deleted on our own (autoscaling is on:
//! only the autoscaler decides, through `workersToDelete`). Pure functions over JSON; the I/O is
//! in `cluster.rs`.

use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

pub const LABEL_CLUSTER: &str = "ray.io/cluster";
pub const LABEL_GROUP: &str = "ray.io/group";
pub const LABEL_NODE_TYPE: &str = "ray.io/node-type";
pub const LABEL_IS_RAY_NODE: &str = "ray.io/is-ray-node";
pub const LABEL_IDENTIFIER: &str = "ray.io/identifier";
pub const LABEL_APP_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_CREATED_BY: &str = "app.kubernetes.io/created-by";
/// Value of `app.kubernetes.io/created-by` on the pods raygate creates.
pub const CREATED_BY: &str = "raygate-autoscaler";

/// A worker pod as the controller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInfo {
    pub name: String,
    pub group: String,
    pub deleting: bool,
}

/// What to do with the pods of one cluster.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PodActions {
    /// (group, pod object) to create.
    pub create: Vec<(String, Value)>,
    /// Pods to delete (named in some group's `workersToDelete`).
    pub delete: Vec<String>,
}

fn u64_at(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

/// The desired pod count of a worker group: clamp(replicas, min, max) × numOfHosts (0 when the
/// group is suspended).
pub fn desired_pods(group: &Value) -> u64 {
    if group.get("suspend").and_then(Value::as_bool) == Some(true) {
        return 0;
    }
    let min = u64_at(group, "minReplicas").unwrap_or(0);
    let max = u64_at(group, "maxReplicas").unwrap_or(i32::MAX as u64);
    let replicas = u64_at(group, "replicas").unwrap_or(0);
    let hosts = u64_at(group, "numOfHosts").unwrap_or(1).max(1);
    replicas.max(min).min(max.max(min)).saturating_mul(hosts)
}

/// Decides pod creations and deletions. `in_flight[g]` counts pods created for group `g` that
/// the pod watch has not shown yet (so they are not created twice).
pub fn pod_actions(
    rc: &Value,
    pods: &[PodInfo],
    in_flight: &dyn Fn(&str) -> u64,
) -> Result<PodActions, String> {
    let name = rc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .ok_or("RayCluster without metadata.name")?;
    let groups = rc
        .pointer("/spec/workerGroupSpecs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = PodActions::default();
    let mut listed: BTreeSet<String> = BTreeSet::new();
    for g in &groups {
        if let Some(w) = g
            .pointer("/scaleStrategy/workersToDelete")
            .and_then(Value::as_array)
        {
            listed.extend(w.iter().filter_map(Value::as_str).map(str::to_string));
        }
    }
    for p in pods {
        if listed.contains(&p.name) && !p.deleting {
            out.delete.push(p.name.clone());
        }
    }
    for (i, g) in groups.iter().enumerate() {
        let gname = g
            .get("groupName")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("spec.workerGroupSpecs[{i}].groupName is missing"))?;
        let alive = pods
            .iter()
            .filter(|p| p.group == gname && !p.deleting && !listed.contains(&p.name))
            .count() as u64
            + in_flight(gname);
        let desired = desired_pods(g);
        if desired > alive {
            // desired is a multiple of numOfHosts: multi-host groups grow in whole replicas
            // when nothing of them exists yet; a partial replica is completed.
            for _ in 0..(desired - alive).min(10_000) {
                out.create
                    .push((gname.to_string(), worker_pod(rc, name, i, g)?));
            }
        }
    }
    Ok(out)
}

/// `replace …/scaleStrategy {"workersToDelete": []}` for every group whose list names only pods
/// that no longer exist (the deletions finished). The engine clears finished lists only together
/// with its next launch or termination (as Ray v2 does); the controller sends this on its own
/// when the engine has nothing else to write, so the list does not linger (as Ray v1's
/// `safe_to_scale` does).
pub fn clear_finished_ops(rc: &Value, pods: &[PodInfo]) -> Vec<Value> {
    let groups = rc
        .pointer("/spec/workerGroupSpecs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let existing: BTreeSet<&str> = pods.iter().map(|p| p.name.as_str()).collect();
    let mut ops = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        let Some(list) = g
            .pointer("/scaleStrategy/workersToDelete")
            .and_then(Value::as_array)
        else {
            continue;
        };
        if !list.is_empty()
            && list
                .iter()
                .filter_map(Value::as_str)
                .all(|n| !existing.contains(n))
        {
            ops.push(json!({"op": "replace",
                "path": format!("/spec/workerGroupSpecs/{i}/scaleStrategy"),
                "value": {"workersToDelete": []}}));
        }
    }
    ops
}

/// `<cluster>-<group>-worker-`, lower-cased, the prefix clipped to 50 characters as KubeRay does.
pub fn generate_name(cluster: &str, group: &str) -> String {
    let mut prefix = format!("{cluster}-{group}-worker").to_lowercase();
    if prefix.len() > 50 {
        let mut cut = 50;
        while !prefix.is_char_boundary(cut) {
            cut -= 1;
        }
        prefix.truncate(cut);
    }
    format!("{prefix}-")
}

/// A worker pod of group `g` (index `i`) from its template.
pub fn worker_pod(rc: &Value, cluster: &str, i: usize, g: &Value) -> Result<Value, String> {
    let group = g
        .get("groupName")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("spec.workerGroupSpecs[{i}].groupName is missing"))?;
    let template = g
        .get("template")
        .ok_or_else(|| format!("spec.workerGroupSpecs[{i}].template is missing"))?;
    let mut spec = template
        .get("spec")
        .cloned()
        .ok_or_else(|| format!("spec.workerGroupSpecs[{i}].template.spec is missing"))?;
    let tmeta = template.get("metadata").cloned().unwrap_or(json!({}));
    let mut labels: Map<String, Value> = tmeta
        .get("labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (k, v) in [
        (LABEL_CLUSTER, cluster.to_string()),
        (LABEL_GROUP, group.to_string()),
        (LABEL_NODE_TYPE, "worker".to_string()),
        (LABEL_IS_RAY_NODE, "yes".to_string()),
        (LABEL_IDENTIFIER, format!("{cluster}-worker")),
        (LABEL_APP_NAME, "kuberay".to_string()),
        (LABEL_CREATED_BY, CREATED_BY.to_string()),
    ] {
        labels.insert(k.to_string(), Value::String(v));
    }
    // Ray maps its nodes to pods through these (KubeRay sets them the same way).
    if let Some(c0) = spec
        .get_mut("containers")
        .and_then(Value::as_array_mut)
        .and_then(|c| c.first_mut())
        .and_then(Value::as_object_mut)
    {
        let env = c0.entry("env").or_insert_with(|| json!([]));
        if let Some(env) = env.as_array_mut() {
            let has = |env: &Vec<Value>, n: &str| env.iter().any(|e| e["name"] == n);
            if !has(env, "RAY_CLOUD_INSTANCE_ID") {
                env.push(json!({"name": "RAY_CLOUD_INSTANCE_ID",
                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}));
            }
            if !has(env, "RAY_NODE_TYPE_NAME") {
                env.push(json!({"name": "RAY_NODE_TYPE_NAME", "value": group}));
            }
        }
    }
    let mut meta = json!({
        "generateName": generate_name(cluster, group),
        "labels": labels,
    });
    if let Some(a) = tmeta.get("annotations").filter(|a| a.is_object()) {
        meta["annotations"] = a.clone();
    }
    if let (Some(ns), Some(uid)) = (
        rc.pointer("/metadata/namespace").and_then(Value::as_str),
        rc.pointer("/metadata/uid").and_then(Value::as_str),
    ) {
        meta["namespace"] = json!(ns);
        meta["ownerReferences"] = json!([{
            "apiVersion": "ray.io/v1", "kind": "RayCluster", "name": cluster, "uid": uid,
            "controller": true,
        }]);
    }
    if spec.get("restartPolicy").is_none() {
        spec["restartPolicy"] = json!("Always");
    }
    Ok(json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rc(replicas: u64, min: u64, max: u64, wtd: &[&str]) -> Value {
        json!({
            "apiVersion": "ray.io/v1", "kind": "RayCluster",
            "metadata": {"name": "rc", "namespace": "ns", "uid": "u-1"},
            "spec": {"workerGroupSpecs": [{
                "groupName": "small-group", "replicas": replicas, "minReplicas": min,
                "maxReplicas": max, "numOfHosts": 1,
                "scaleStrategy": {"workersToDelete": wtd},
                "template": {"metadata": {"labels": {"user": "x", "ray.io/group": "evil"}},
                    "spec": {"containers": [{"name": "ray-worker", "image": "ray"}]}}
            }]}
        })
    }

    fn pod(n: &str) -> PodInfo {
        PodInfo {
            name: n.into(),
            group: "small-group".into(),
            deleting: false,
        }
    }

    #[test]
    fn creates_up_to_clamped_replicas_with_kuberay_labels() {
        let a = pod_actions(&rc(3, 0, 10, &[]), &[pod("a")], &|_| 0).unwrap();
        assert_eq!(a.create.len(), 2);
        assert!(a.delete.is_empty());
        let p = &a.create[0].1;
        assert_eq!(p["metadata"]["generateName"], "rc-small-group-worker-");
        let l = &p["metadata"]["labels"];
        assert_eq!(l["ray.io/group"], "small-group");
        assert_eq!(l["ray.io/cluster"], "rc");
        assert_eq!(l["ray.io/node-type"], "worker");
        assert_eq!(l["ray.io/is-ray-node"], "yes");
        assert_eq!(l["user"], "x");
        assert_eq!(p["metadata"]["ownerReferences"][0]["uid"], "u-1");
        let env = p["spec"]["containers"][0]["env"].as_array().unwrap();
        assert!(env.iter().any(|e| e["name"] == "RAY_CLOUD_INSTANCE_ID"));
        // clamp: replicas above max → max; below min → min.
        assert_eq!(
            pod_actions(&rc(30, 0, 4, &[]), &[], &|_| 0)
                .unwrap()
                .create
                .len(),
            4
        );
        assert_eq!(
            pod_actions(&rc(0, 2, 4, &[]), &[], &|_| 0)
                .unwrap()
                .create
                .len(),
            2
        );
        // in-flight creations count as existing.
        assert!(
            pod_actions(&rc(3, 0, 10, &[]), &[pod("a")], &|_| 2)
                .unwrap()
                .create
                .is_empty()
        );
    }

    #[test]
    fn deletes_exactly_the_listed_pods_and_never_surplus() {
        let pods = [pod("a"), pod("b"), pod("c")];
        let a = pod_actions(&rc(1, 0, 10, &["b", "gone"]), &pods, &|_| 0).unwrap();
        assert_eq!(a.delete, vec!["b".to_string()]);
        assert!(a.create.is_empty());
        let a = pod_actions(&rc(0, 0, 10, &[]), &pods, &|_| 0).unwrap();
        assert!(a.delete.is_empty() && a.create.is_empty());
    }

    #[test]
    fn finished_lists_are_cleared_pending_ones_kept() {
        assert_eq!(
            clear_finished_ops(&rc(1, 0, 10, &["gone"]), &[pod("a")]),
            vec![
                json!({"op": "replace", "path": "/spec/workerGroupSpecs/0/scaleStrategy",
                "value": {"workersToDelete": []}})
            ]
        );
        // a deleting pod still exists
        let mut d = pod("b");
        d.deleting = true;
        assert!(clear_finished_ops(&rc(1, 0, 10, &["gone", "b"]), &[d]).is_empty());
        assert!(clear_finished_ops(&rc(1, 0, 10, &[]), &[]).is_empty());
    }

    #[test]
    fn long_names_are_clipped() {
        let n = generate_name(&"x".repeat(40), "Group-With-A-Long-Name");
        assert_eq!(n.len(), 51);
        assert!(n.ends_with('-') && n == n.to_lowercase());
    }
}
