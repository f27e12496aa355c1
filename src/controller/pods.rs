//! The operator half (`--reconcile-pods`): worker pods from the group template up to
//! clamp(replicas, min, max) × numOfHosts with KubeRay's labels, and deletion of exactly the pods
//! named in `workersToDelete`. Surplus pods are never deleted on our own (autoscaling is on:
//! only the autoscaler decides, through `workersToDelete`). Clearing `workersToDelete` is the
//! autoscaler's job (the engine plans it), never this module's. Pure functions over JSON; the
//! I/O is in `cluster.rs`.
//!
//! Multi-host groups (`numOfHosts > 1`) follow KubeRay's `RayMultiHostIndexing` path: pods come
//! and go in replicas of `numOfHosts` pods sharing `ray.io/worker-group-replica-name`; a replica
//! with fewer live pods than `numOfHosts` is removed whole; a `workersToDelete` entry removes its
//! whole replica; new replicas take the lowest free `ray.io/worker-group-replica-index`.

use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

pub const LABEL_CLUSTER: &str = "ray.io/cluster";
pub const LABEL_GROUP: &str = "ray.io/group";
pub const LABEL_NODE_TYPE: &str = "ray.io/node-type";
pub const LABEL_IS_RAY_NODE: &str = "ray.io/is-ray-node";
pub const LABEL_IDENTIFIER: &str = "ray.io/identifier";
pub const LABEL_APP_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_CREATED_BY: &str = "app.kubernetes.io/created-by";
/// KubeRay `RayMultiHostIndexing`: the replica a pod belongs to (`<group>-<5 random chars>`),
/// shared by the `numOfHosts` pods of one replica (multi-host groups only).
pub const LABEL_REPLICA_NAME: &str = "ray.io/worker-group-replica-name";
/// KubeRay `RayMultiHostIndexing`: the replica's index in its group (lowest free at creation).
pub const LABEL_REPLICA_INDEX: &str = "ray.io/worker-group-replica-index";
/// KubeRay `RayMultiHostIndexing`: the pod's host index inside its replica, 0..numOfHosts
/// (multi-host groups only).
pub const LABEL_HOST_INDEX: &str = "ray.io/replica-host-index";
/// Value of `app.kubernetes.io/created-by` on the pods raygate creates.
pub const CREATED_BY: &str = "raygate-autoscaler";
/// Bound on the pods one pass creates for one group.
const MAX_CREATE: u64 = 10_000;

/// A worker pod as the controller sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodInfo {
    pub name: String,
    pub group: String,
    pub deleting: bool,
    /// `ray.io/worker-group-replica-name`, if set.
    pub replica_name: Option<String>,
    /// `ray.io/worker-group-replica-index`, if set and a number.
    pub replica_index: Option<u32>,
}

impl PodInfo {
    /// From a pod's name, labels and deletion state.
    pub fn from_labels(name: &str, labels: &BTreeMap<String, String>, deleting: bool) -> Self {
        PodInfo {
            name: name.to_string(),
            group: labels.get(LABEL_GROUP).cloned().unwrap_or_default(),
            deleting,
            replica_name: labels.get(LABEL_REPLICA_NAME).cloned(),
            replica_index: labels.get(LABEL_REPLICA_INDEX).and_then(|v| v.parse().ok()),
        }
    }
}

/// What to do with the pods of one cluster.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PodActions {
    /// (group, pod object) to create.
    pub create: Vec<(String, Value)>,
    /// (pod, why) to delete: named in some group's `workersToDelete`, or a multi-host replica
    /// that is incomplete or has a member named there.
    pub delete: Vec<(String, String)>,
}

impl PodActions {
    fn delete(&mut self, pod: &str, why: String) {
        if !self.delete.iter().any(|(p, _)| p == pod) {
            self.delete.push((pod.to_string(), why));
        }
    }
}

/// KubeRay's replica labels of a pod to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaLabels {
    /// `ray.io/worker-group-replica-index`.
    pub index: u32,
    /// (`ray.io/worker-group-replica-name`, `ray.io/replica-host-index`) for multi-host groups.
    pub host: Option<(String, u32)>,
}

fn u64_at(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

/// `numOfHosts`, at least 1.
pub fn hosts(group: &Value) -> u64 {
    u64_at(group, "numOfHosts").unwrap_or(1).max(1)
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
    replicas
        .max(min)
        .min(max.max(min))
        .saturating_mul(hosts(group))
}

fn workers_to_delete(g: &Value) -> impl Iterator<Item = &str> {
    g.pointer("/scaleStrategy/workersToDelete")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// The lowest index not in `used`, marking it used.
fn take_lowest_free(used: &mut BTreeSet<u32>) -> u32 {
    let mut i = 0;
    while used.contains(&i) {
        i += 1;
    }
    used.insert(i);
    i
}

/// Decides pod creations and deletions. `in_flight` are pods created earlier that the pod watch
/// has not shown yet (they count as existing, so nothing is created twice; a multi-host group
/// with creations in flight is left alone until they show, as KubeRay's scale expectations do).
/// `replica_name(group)` names a new multi-host replica (`<group>-<5 random chars>` in the
/// controller; deterministic in tests).
pub fn pod_actions(
    rc: &Value,
    pods: &[PodInfo],
    in_flight: &[PodInfo],
    replica_name: &mut dyn FnMut(&str) -> String,
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
    let multi_host: BTreeSet<&str> = groups
        .iter()
        .filter(|g| hosts(g) > 1)
        .filter_map(|g| g.get("groupName").and_then(Value::as_str))
        .collect();
    // Single-host path: every pod named in any list is deleted by name (KubeRay deletes by name
    // in the namespace); pods of multi-host groups are handled per replica below.
    let listed: BTreeSet<&str> = groups.iter().flat_map(workers_to_delete).collect();
    for p in pods {
        if listed.contains(p.name.as_str()) && !p.deleting && !multi_host.contains(p.group.as_str())
        {
            out.delete(&p.name, "named in workersToDelete".into());
        }
    }
    for (i, g) in groups.iter().enumerate() {
        let gname = g
            .get("groupName")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("spec.workerGroupSpecs[{i}].groupName is missing"))?;
        if hosts(g) > 1 {
            multi_host_group(
                rc,
                name,
                i,
                g,
                gname,
                pods,
                in_flight,
                replica_name,
                &mut out,
            )?;
            continue;
        }
        let live: Vec<&PodInfo> = pods
            .iter()
            .filter(|p| p.group == gname && !p.deleting && !listed.contains(p.name.as_str()))
            .chain(in_flight.iter().filter(|p| p.group == gname))
            .collect();
        let desired = desired_pods(g);
        let alive = live.len() as u64;
        if desired > alive {
            let mut used: BTreeSet<u32> = live.iter().filter_map(|p| p.replica_index).collect();
            for _ in 0..(desired - alive).min(MAX_CREATE) {
                let labels = ReplicaLabels {
                    index: take_lowest_free(&mut used),
                    host: None,
                };
                out.create
                    .push((gname.to_string(), worker_pod(rc, name, i, g, &labels)?));
            }
        }
    }
    Ok(out)
}

/// KubeRay's multi-host reconcile of one group (`numOfHosts > 1`).
#[allow(clippy::too_many_arguments)]
fn multi_host_group(
    rc: &Value,
    cluster: &str,
    i: usize,
    g: &Value,
    gname: &str,
    pods: &[PodInfo],
    in_flight: &[PodInfo],
    replica_name: &mut dyn FnMut(&str) -> String,
    out: &mut PodActions,
) -> Result<(), String> {
    if in_flight.iter().any(|p| p.group == gname) {
        return Ok(());
    }
    let hosts = hosts(g);
    let live: Vec<&PodInfo> = pods
        .iter()
        .filter(|p| p.group == gname && !p.deleting)
        .collect();
    // Replicas by name; pods without the label belong to no replica (KubeRay ignores them too).
    let mut replicas: BTreeMap<&str, Vec<&PodInfo>> = BTreeMap::new();
    for p in &live {
        if let Some(r) = p.replica_name.as_deref() {
            replicas.entry(r).or_default().push(p);
        }
    }
    // 1. Incomplete replicas (a host was deleted from outside, or failed) go whole; nothing is
    //    created in this pass.
    let mut removed_any = false;
    for (r, members) in &replicas {
        if (members.len() as u64) < hosts {
            for p in members {
                out.delete(
                    &p.name,
                    format!(
                        "incomplete multi-host replica {r} ({} of {hosts} pods)",
                        members.len()
                    ),
                );
            }
            removed_any = true;
        }
    }
    if removed_any {
        return Ok(());
    }
    // 2. A workersToDelete entry removes its whole replica.
    for w in workers_to_delete(g) {
        let Some(p) = live.iter().find(|p| p.name == w) else {
            continue;
        };
        match p.replica_name.as_deref().and_then(|r| replicas.get(r)) {
            Some(members) => {
                for m in members {
                    out.delete(
                        &m.name,
                        format!(
                            "replica {} of workersToDelete entry {w}",
                            m.replica_name.as_deref().unwrap_or_default()
                        ),
                    );
                }
            }
            None => out.delete(&p.name, "named in workersToDelete".into()),
        }
        removed_any = true;
    }
    if removed_any {
        return Ok(());
    }
    // 3. Whole replicas up to the desired count.
    let expected = desired_pods(g) / hosts;
    let have = replicas.len() as u64;
    if expected > have {
        let mut used: BTreeSet<u32> = replicas
            .values()
            .filter_map(|m| m.first().and_then(|p| p.replica_index))
            .collect();
        let budget = MAX_CREATE / hosts;
        for _ in 0..(expected - have).min(budget.max(1)) {
            let index = take_lowest_free(&mut used);
            let rname = replica_name(gname);
            for h in 0..hosts {
                let labels = ReplicaLabels {
                    index,
                    host: Some((rname.clone(), h as u32)),
                };
                out.create
                    .push((gname.to_string(), worker_pod(rc, cluster, i, g, &labels)?));
            }
        }
    }
    Ok(())
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

/// A worker pod of group `g` (index `i`) from its template, with KubeRay's replica labels.
pub fn worker_pod(
    rc: &Value,
    cluster: &str,
    i: usize,
    g: &Value,
    replica: &ReplicaLabels,
) -> Result<Value, String> {
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
    labels.insert(LABEL_REPLICA_INDEX.into(), json!(replica.index.to_string()));
    if let Some((rname, host)) = &replica.host {
        labels.insert(LABEL_REPLICA_NAME.into(), json!(rname));
        labels.insert(LABEL_HOST_INDEX.into(), json!(host.to_string()));
    } else {
        // A template cannot make a single-host pod look like part of a multi-host replica.
        labels.remove(LABEL_REPLICA_NAME);
        labels.remove(LABEL_HOST_INDEX);
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

    fn rc_hosts(replicas: u64, min: u64, max: u64, wtd: &[&str], hosts: u64) -> Value {
        json!({
            "apiVersion": "ray.io/v1", "kind": "RayCluster",
            "metadata": {"name": "rc", "namespace": "ns", "uid": "u-1"},
            "spec": {"workerGroupSpecs": [{
                "groupName": "small-group", "replicas": replicas, "minReplicas": min,
                "maxReplicas": max, "numOfHosts": hosts,
                "scaleStrategy": {"workersToDelete": wtd},
                "template": {"metadata": {"labels": {"user": "x", "ray.io/group": "evil",
                        "ray.io/worker-group-replica-name": "evil"}},
                    "spec": {"containers": [{"name": "ray-worker", "image": "ray"}]}}
            }]}
        })
    }

    fn rc(replicas: u64, min: u64, max: u64, wtd: &[&str]) -> Value {
        rc_hosts(replicas, min, max, wtd, 1)
    }

    fn pod(n: &str) -> PodInfo {
        PodInfo {
            name: n.into(),
            group: "small-group".into(),
            ..PodInfo::default()
        }
    }

    /// A host of multi-host replica `r` (index `idx`).
    fn host(n: &str, r: &str, idx: u32) -> PodInfo {
        PodInfo {
            replica_name: Some(r.into()),
            replica_index: Some(idx),
            ..pod(n)
        }
    }

    /// Replica names r0, r1, … in call order.
    fn namer() -> impl FnMut(&str) -> String {
        let mut n = 0;
        move |g: &str| {
            n += 1;
            format!("{g}-r{}", n - 1)
        }
    }

    fn actions(rc: &Value, pods: &[PodInfo], in_flight: &[PodInfo]) -> PodActions {
        pod_actions(rc, pods, in_flight, &mut namer()).unwrap()
    }

    fn label(p: &Value, k: &str) -> Option<String> {
        p["metadata"]["labels"][k].as_str().map(String::from)
    }

    fn deleted(a: &PodActions) -> Vec<&str> {
        let mut v: Vec<&str> = a.delete.iter().map(|(p, _)| p.as_str()).collect();
        v.sort();
        v
    }

    #[test]
    fn creates_up_to_clamped_replicas_with_kuberay_labels() {
        let a = actions(&rc(3, 0, 10, &[]), &[pod("a")], &[]);
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
        // single-host pods carry no multi-host labels, whatever the template says
        assert!(l.get(LABEL_REPLICA_NAME).is_none() && l.get(LABEL_HOST_INDEX).is_none());
        assert_eq!(p["metadata"]["ownerReferences"][0]["uid"], "u-1");
        let env = p["spec"]["containers"][0]["env"].as_array().unwrap();
        assert!(env.iter().any(|e| e["name"] == "RAY_CLOUD_INSTANCE_ID"));
        // clamp: replicas above max → max; below min → min.
        assert_eq!(actions(&rc(30, 0, 4, &[]), &[], &[]).create.len(), 4);
        assert_eq!(actions(&rc(0, 2, 4, &[]), &[], &[]).create.len(), 2);
        // in-flight creations count as existing.
        let flying = [pod("b"), pod("c")];
        assert!(
            actions(&rc(3, 0, 10, &[]), &[pod("a")], &flying)
                .create
                .is_empty()
        );
    }

    #[test]
    fn single_host_pods_take_the_lowest_free_replica_index() {
        let mut a = pod("a");
        a.replica_index = Some(0);
        let mut c = pod("c");
        c.replica_index = Some(2);
        let mut f = pod("f");
        f.replica_index = Some(3);
        let got = actions(&rc(5, 0, 10, &[]), &[a, c], &[f]);
        let idx: Vec<Option<String>> = got
            .create
            .iter()
            .map(|(_, p)| label(p, LABEL_REPLICA_INDEX))
            .collect();
        assert_eq!(idx, vec![Some("1".into()), Some("4".into())]);
    }

    #[test]
    fn deletes_exactly_the_listed_pods_and_never_surplus() {
        let pods = [pod("a"), pod("b"), pod("c")];
        let a = actions(&rc(1, 0, 10, &["b", "gone"]), &pods, &[]);
        assert_eq!(deleted(&a), vec!["b"]);
        assert!(a.create.is_empty());
        let a = actions(&rc(0, 0, 10, &[]), &pods, &[]);
        assert!(a.delete.is_empty() && a.create.is_empty());
        // a pod already terminating is not deleted again
        let mut b = pod("b");
        b.deleting = true;
        assert!(actions(&rc(1, 0, 10, &["b"]), &[b], &[]).delete.is_empty());
    }

    #[test]
    fn multi_host_replicas_are_created_whole_with_their_labels() {
        // replicas 2 × 2 hosts, one complete replica (index 0) → one new replica, index 1
        let pods = [host("a", "g-x", 0), host("b", "g-x", 0)];
        let a = actions(&rc_hosts(2, 0, 10, &[], 2), &pods, &[]);
        assert!(a.delete.is_empty());
        assert_eq!(a.create.len(), 2);
        for (h, (_, p)) in a.create.iter().enumerate() {
            assert_eq!(
                label(p, LABEL_REPLICA_NAME).as_deref(),
                Some("small-group-r0")
            );
            assert_eq!(label(p, LABEL_REPLICA_INDEX).as_deref(), Some("1"));
            assert_eq!(label(p, LABEL_HOST_INDEX), Some(h.to_string()));
            assert_eq!(label(p, LABEL_GROUP).as_deref(), Some("small-group"));
        }
        // from nothing: 3 replicas × 2 hosts, indices 0, 1, 2, one name per replica
        let a = actions(&rc_hosts(3, 0, 10, &[], 2), &[], &[]);
        let got: Vec<(String, String, String)> = a
            .create
            .iter()
            .map(|(_, p)| {
                (
                    label(p, LABEL_REPLICA_NAME).unwrap(),
                    label(p, LABEL_REPLICA_INDEX).unwrap(),
                    label(p, LABEL_HOST_INDEX).unwrap(),
                )
            })
            .collect();
        let want: Vec<(String, String, String)> = [
            ("r0", "0", "0"),
            ("r0", "0", "1"),
            ("r1", "1", "0"),
            ("r1", "1", "1"),
            ("r2", "2", "0"),
            ("r2", "2", "1"),
        ]
        .iter()
        .map(|(r, i, h)| (format!("small-group-{r}"), i.to_string(), h.to_string()))
        .collect();
        assert_eq!(got, want);
        // surplus replicas are never removed on our own (autoscaling on)
        let pods = [
            host("a", "g-x", 0),
            host("b", "g-x", 0),
            host("c", "g-y", 1),
            host("d", "g-y", 1),
        ];
        let a = actions(&rc_hosts(1, 0, 10, &[], 2), &pods, &[]);
        assert!(a.create.is_empty() && a.delete.is_empty(), "{a:?}");
    }

    #[test]
    fn a_workers_to_delete_entry_removes_its_whole_replica() {
        let pods = [
            host("a", "g-x", 0),
            host("b", "g-x", 0),
            host("c", "g-y", 1),
            host("d", "g-y", 1),
        ];
        let a = actions(&rc_hosts(1, 0, 10, &["c", "gone"], 2), &pods, &[]);
        assert_eq!(deleted(&a), vec!["c", "d"]);
        assert!(a.delete.iter().all(|(_, why)| why.contains("g-y")), "{a:?}");
        // nothing is created in the same pass, even though replicas asks for more
        let a = actions(&rc_hosts(5, 0, 10, &["a"], 2), &pods, &[]);
        assert_eq!(deleted(&a), vec!["a", "b"]);
        assert!(a.create.is_empty());
        // a listed pod without a replica label goes alone
        let a = actions(&rc_hosts(1, 0, 10, &["z"], 2), &[pod("z")], &[]);
        assert_eq!(deleted(&a), vec!["z"]);
    }

    #[test]
    fn an_incomplete_replica_is_removed_and_nothing_is_created_that_pass() {
        // g-y lost a host (deleted from outside, or terminating): the other host goes too.
        let mut d = host("d", "g-y", 1);
        d.deleting = true;
        let pods = [
            host("a", "g-x", 0),
            host("b", "g-x", 0),
            host("c", "g-y", 1),
            d,
        ];
        let a = actions(&rc_hosts(2, 0, 10, &[], 2), &pods, &[]);
        assert_eq!(deleted(&a), vec!["c"]);
        assert!(
            a.delete[0]
                .1
                .contains("incomplete multi-host replica g-y (1 of 2 pods)")
        );
        assert!(a.create.is_empty());
        // next pass (c gone): the missing replica is created whole, at the freed index 1
        let a = actions(
            &rc_hosts(2, 0, 10, &[], 2),
            &[host("a", "g-x", 0), host("b", "g-x", 0)],
            &[],
        );
        assert_eq!(a.create.len(), 2);
        assert_eq!(
            label(&a.create[0].1, LABEL_REPLICA_INDEX).as_deref(),
            Some("1")
        );
    }

    #[test]
    fn a_multi_host_group_with_creations_in_flight_is_left_alone() {
        // One host of a new replica is seen, the other is still in flight: not incomplete.
        let seen = [host("a", "g-x", 0)];
        let flying = [host("b", "g-x", 0)];
        let a = actions(&rc_hosts(2, 0, 10, &[], 2), &seen, &flying);
        assert!(a.create.is_empty() && a.delete.is_empty(), "{a:?}");
    }

    #[test]
    fn long_names_are_clipped() {
        let n = generate_name(&"x".repeat(40), "Group-With-A-Long-Name");
        assert_eq!(n.len(), 51);
        assert!(n.ends_with('-') && n == n.to_lowercase());
    }
}
