//! The operator half (`--reconcile-pods`): worker pods from the group template up to
//! clamp(replicas, min, max) × numOfHosts with KubeRay's labels, deletion of exactly the pods
//! named in `workersToDelete`, and deletion of unhealthy pods (KubeRay's `shouldDeletePod`: a
//! terminal phase, or the Ray container terminated while `restartPolicy` is not `Always`; a
//! group that lost one creates nothing that pass). Surplus pods are never deleted on our own
//! (autoscaling is on: only the autoscaler decides, through `workersToDelete`). Clearing
//! `workersToDelete` is the autoscaler's job (the engine plans it), never this module's. Pure
//! functions; the I/O is in `cluster.rs`.
//!
//! Multi-host groups (`numOfHosts > 1`) follow KubeRay's `RayMultiHostIndexing` path: pods come
//! and go in replicas of `numOfHosts` pods sharing `ray.io/worker-group-replica-name`; a replica
//! with fewer live pods than `numOfHosts`, or with an unhealthy pod, is removed whole; a
//! `workersToDelete` entry removes its whole replica; new replicas take the lowest free
//! `ray.io/worker-group-replica-index`.
//!
//! Pods of a multi-host group without a replica name (made by an older raygate, by hand, or by
//! an operator without `RayMultiHostIndexing`) are adopted, not ignored (ignoring them would
//! create whole new replicas beside them): they are labelled into replicas, grouped by the GKE
//! TPU webhook's `replicaIndex` label when they have one, else in creation order, `numOfHosts`
//! at a time, and take the lowest free indices. Pods left over (fewer than `numOfHosts`) form
//! an incomplete replica, which the next pass removes as KubeRay removes any incomplete
//! replica. An unhealthy unlabeled pod is deleted alone.

use crate::autoscale::types::{PodPhase, WorkerPod};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
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
/// The GKE TPU webhook's slice label (`<group>-<n>`), which Ray's v1 provider also reads: the
/// replica of a multi-host pod made without `RayMultiHostIndexing`.
pub const LABEL_LEGACY_REPLICA: &str = "replicaIndex";
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
    /// The GKE TPU webhook's `replicaIndex` label, if set.
    pub legacy_replica: Option<String>,
    pub phase: PodPhase,
    /// Why the pod will never run Ray again and is deleted (KubeRay's `shouldDeletePod`).
    pub unhealthy: Option<String>,
    /// `metadata.creationTimestamp` (ms since the epoch), the adoption order of unlabeled pods.
    pub created: Option<i64>,
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
            legacy_replica: labels.get(LABEL_LEGACY_REPLICA).cloned(),
            ..PodInfo::default()
        }
    }

    /// From a pod as the API server shows it.
    pub fn from_pod(p: &Pod) -> Self {
        let phase = match p.status.as_ref().and_then(|s| s.phase.as_deref()) {
            Some("Pending") | None => PodPhase::Pending,
            Some("Running") => PodPhase::Running,
            Some("Succeeded") => PodPhase::Succeeded,
            Some("Failed") => PodPhase::Failed,
            _ => PodPhase::Unknown,
        };
        PodInfo {
            phase,
            unhealthy: unhealthy(p),
            created: p
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_millisecond()),
            ..PodInfo::from_labels(
                &p.name_any(),
                p.labels(),
                p.metadata.deletion_timestamp.is_some(),
            )
        }
    }

    /// The pod as the engine sees it: its multi-host replica is the replica name, else the
    /// webhook's `replicaIndex` (kept apart from replica names by a prefix).
    pub fn to_engine(&self) -> WorkerPod {
        WorkerPod {
            name: self.name.clone(),
            group: self.group.clone(),
            phase: self.phase,
            deleting: self.deleting,
            replica: self.replica_name.clone().or_else(|| {
                self.legacy_replica
                    .as_ref()
                    .map(|r| format!("{LABEL_LEGACY_REPLICA}={r}"))
            }),
        }
    }
}

/// KubeRay's `shouldDeletePod` for a worker: the reason the pod is deleted, or `None`.
///
/// - A terminal phase (`Failed`, `Succeeded`) is final in Kubernetes (an evicted pod stays
///   `Failed` whatever its `restartPolicy`), so the pod is deleted; KubeRay keeps such pods
///   when `restartPolicy` is `Always`, which leaves evicted workers in place for good.
/// - `Running` with the Ray container (the first container, found by name) terminated and a
///   `restartPolicy` other than `Always` (unset reads as the API server's default `Always`):
///   Kubernetes will not restart it, as in KubeRay.
pub fn unhealthy(p: &Pod) -> Option<String> {
    let status = p.status.as_ref()?;
    let phase = status.phase.as_deref().unwrap_or_default();
    if matches!(phase, "Failed" | "Succeeded") {
        let why = status
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        return Some(format!("pod phase is {phase}{why}"));
    }
    let spec = p.spec.as_ref()?;
    let policy = spec.restart_policy.as_deref().unwrap_or("Always");
    if phase != "Running" || policy == "Always" {
        return None;
    }
    let ray = &spec.containers.first()?.name;
    let terminated = status
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| &c.name == ray)?
        .state
        .as_ref()?
        .terminated
        .as_ref()?;
    Some(format!(
        "Ray container {ray} terminated (exit code {}{}) and restartPolicy is {policy}",
        terminated.exit_code,
        terminated
            .reason
            .as_deref()
            .map(|r| format!(", {r}"))
            .unwrap_or_default()
    ))
}

/// What to do with the pods of one cluster.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PodActions {
    /// (group, pod object) to create.
    pub create: Vec<(String, Value)>,
    /// (pod, why) to delete: named in some group's `workersToDelete`, unhealthy, or of a
    /// multi-host replica that is incomplete, has an unhealthy pod or a member named there.
    pub delete: Vec<(String, String)>,
    /// (pod, labels to add, why): unlabeled pods of a multi-host group adopted into replicas.
    pub label: Vec<(String, BTreeMap<String, String>, String)>,
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
        // Unhealthy pods go; the group creates nothing this pass (KubeRay requeues).
        let mut removed_any = false;
        for p in pods.iter().filter(|p| p.group == gname && !p.deleting) {
            if let Some(why) = &p.unhealthy {
                out.delete(&p.name, format!("unhealthy: {why}"));
                removed_any = true;
            }
        }
        if removed_any {
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
    // 0. Pods without a replica name: an unhealthy one is deleted alone, the others adopted
    //    into replicas (see the module doc); nothing else happens to the group this pass.
    let unlabeled: Vec<&PodInfo> = live
        .iter()
        .copied()
        .filter(|p| p.replica_name.is_none())
        .collect();
    if !unlabeled.is_empty() {
        let listed: BTreeSet<&str> = workers_to_delete(g).collect();
        let mut adoptable = Vec::new();
        for p in unlabeled {
            if listed.contains(p.name.as_str()) {
                out.delete(&p.name, "named in workersToDelete".into());
            } else if let Some(why) = &p.unhealthy {
                out.delete(
                    &p.name,
                    format!("unhealthy pod without a replica name: {why}"),
                );
            } else {
                adoptable.push(p);
            }
        }
        adopt(gname, hosts, &live, &adoptable, out);
        return Ok(());
    }
    // Replicas by name.
    let mut replicas: BTreeMap<&str, Vec<&PodInfo>> = BTreeMap::new();
    for p in &live {
        if let Some(r) = p.replica_name.as_deref() {
            replicas.entry(r).or_default().push(p);
        }
    }
    // 1. Incomplete replicas (a host was deleted from outside, or failed) and replicas with an
    //    unhealthy pod go whole; nothing is created in this pass.
    let mut removed_any = false;
    for (r, members) in &replicas {
        let why = if (members.len() as u64) < hosts {
            format!(
                "incomplete multi-host replica {r} ({} of {hosts} pods)",
                members.len()
            )
        } else if let Some(bad) = members.iter().find(|p| p.unhealthy.is_some()) {
            format!(
                "multi-host replica {r}: pod {} unhealthy: {}",
                bad.name,
                bad.unhealthy.as_deref().unwrap_or_default()
            )
        } else {
            continue;
        };
        for p in members {
            out.delete(&p.name, why.clone());
        }
        removed_any = true;
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

/// Kubernetes' random-name alphabet (no vowels), as in KubeRay's replica names.
pub const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `n` characters of [`NAME_ALPHABET`] from `x`.
pub fn name_suffix(mut x: u64, n: usize) -> String {
    (0..n)
        .map(|_| {
            let c = NAME_ALPHABET[(x % NAME_ALPHABET.len() as u64) as usize] as char;
            x /= NAME_ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// FNV-1a: a stable hash (the same across processes and releases).
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Labels the `unlabeled` pods of multi-host group `gname` into replicas: by the webhook's
/// `replicaIndex` when set, else `hosts` at a time in creation order (then name). A replica's
/// name derives from its first pod's name, so a pass that runs again on a watch cache that has
/// not caught up yet labels the same way.
fn adopt(gname: &str, hosts: u64, live: &[&PodInfo], unlabeled: &[&PodInfo], out: &mut PodActions) {
    let mut legacy: BTreeMap<&str, Vec<&PodInfo>> = BTreeMap::new();
    let mut rest: Vec<&PodInfo> = Vec::new();
    for p in unlabeled {
        match p.legacy_replica.as_deref() {
            Some(r) => legacy.entry(r).or_default().push(p),
            None => rest.push(p),
        }
    }
    let order = |v: &mut Vec<&PodInfo>| {
        v.sort_by(|a, b| (&a.created, &a.name).cmp(&(&b.created, &b.name)));
    };
    let mut groups: Vec<(String, Vec<&PodInfo>)> = Vec::new();
    for (r, mut members) in legacy {
        order(&mut members);
        groups.push((format!("label {LABEL_LEGACY_REPLICA}={r}"), members));
    }
    order(&mut rest);
    for chunk in rest.chunks(hosts.max(1) as usize) {
        groups.push(("creation order".to_string(), chunk.to_vec()));
    }
    let mut names: BTreeSet<String> = live.iter().filter_map(|p| p.replica_name.clone()).collect();
    let mut used: BTreeSet<u32> = live
        .iter()
        .filter(|p| p.replica_name.is_some())
        .filter_map(|p| p.replica_index)
        .collect();
    for (how, members) in groups {
        let Some(first) = members.first() else {
            continue;
        };
        let mut salt = 0u32;
        let rname = loop {
            let key = if salt == 0 {
                first.name.clone()
            } else {
                format!("{}#{salt}", first.name)
            };
            let n = format!("{gname}-{}", name_suffix(fnv1a(&key), 5));
            if names.insert(n.clone()) {
                break n;
            }
            salt += 1;
        };
        let index = take_lowest_free(&mut used);
        for (h, p) in members.iter().enumerate() {
            let labels = BTreeMap::from([
                (LABEL_REPLICA_NAME.to_string(), rname.clone()),
                (LABEL_REPLICA_INDEX.to_string(), index.to_string()),
                (LABEL_HOST_INDEX.to_string(), h.to_string()),
            ]);
            out.label.push((
                p.name.clone(),
                labels,
                format!(
                    "adopted into multi-host replica {rname} (index {index}, host {h} of {}; by {how})",
                    members.len()
                ),
            ));
        }
    }
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

    fn sick(p: PodInfo) -> PodInfo {
        PodInfo {
            phase: PodPhase::Failed,
            unhealthy: Some("pod phase is Failed (Evicted)".into()),
            ..p
        }
    }

    #[test]
    fn unhealthy_single_host_pods_are_deleted_and_nothing_is_created_that_pass() {
        let pods = [pod("a"), sick(pod("b"))];
        let a = actions(&rc(3, 0, 10, &[]), &pods, &[]);
        assert_eq!(deleted(&a), vec!["b"]);
        assert!(
            a.delete[0]
                .1
                .contains("unhealthy: pod phase is Failed (Evicted)")
        );
        assert!(a.create.is_empty(), "{a:?}");
        // next pass: b is terminating, so the missing pods are created
        let mut b = sick(pod("b"));
        b.deleting = true;
        let a = actions(&rc(3, 0, 10, &[]), &[pod("a"), b], &[]);
        assert!(a.delete.is_empty());
        assert_eq!(a.create.len(), 2);
    }

    #[test]
    fn a_replica_with_an_unhealthy_host_is_deleted_whole() {
        let pods = [
            host("a", "g-x", 0),
            host("b", "g-x", 0),
            host("c", "g-y", 1),
            sick(host("d", "g-y", 1)),
        ];
        let a = actions(&rc_hosts(3, 0, 10, &[], 2), &pods, &[]);
        assert_eq!(deleted(&a), vec!["c", "d"]);
        assert!(
            a.delete
                .iter()
                .all(|(_, why)| why.contains("multi-host replica g-y: pod d unhealthy")),
            "{a:?}"
        );
        assert!(a.create.is_empty() && a.label.is_empty(), "{a:?}");
    }

    fn pod_json(
        phase: &str,
        restart: Option<&str>,
        ray_terminated: bool,
        sidecar_terminated: bool,
    ) -> Pod {
        let state = |t: bool| {
            if t {
                json!({"terminated": {"exitCode": 1, "reason": "Error"}})
            } else {
                json!({"running": {}})
            }
        };
        let mut spec = json!({"containers": [{"name": "ray-worker", "image": "ray"},
                                             {"name": "sidecar", "image": "x"}]});
        if let Some(r) = restart {
            spec["restartPolicy"] = json!(r);
        }
        serde_json::from_value(json!({
            "metadata": {"name": "p", "labels": {"ray.io/group": "g"}},
            "spec": spec,
            "status": {"phase": phase, "reason": if phase == "Failed" { json!("Evicted") } else { Value::Null },
                "containerStatuses": [
                    // listed out of spec order: the Ray container is found by name
                    {"name": "sidecar", "ready": true, "restartCount": 0, "image": "x", "imageID": "",
                     "state": state(sidecar_terminated)},
                    {"name": "ray-worker", "ready": true, "restartCount": 0, "image": "ray", "imageID": "",
                     "state": state(ray_terminated)}]}
        }))
        .unwrap()
    }

    #[test]
    fn unhealthy_follows_kuberay_should_delete_pod() {
        // a terminal phase is final, whatever the restart policy (evicted pods stay Failed)
        for restart in [None, Some("Always"), Some("Never")] {
            let w = unhealthy(&pod_json("Failed", restart, true, false)).expect("failed pod");
            assert_eq!(w, "pod phase is Failed (Evicted)");
            assert!(unhealthy(&pod_json("Succeeded", restart, true, false)).is_some());
        }
        // Running with the Ray container terminated: deleted unless the kubelet restarts it
        let w = unhealthy(&pod_json("Running", Some("Never"), true, false)).expect("never");
        assert!(
            w.contains("Ray container ray-worker terminated (exit code 1, Error)")
                && w.contains("restartPolicy is Never"),
            "{w}"
        );
        assert!(unhealthy(&pod_json("Running", Some("OnFailure"), true, false)).is_some());
        assert!(unhealthy(&pod_json("Running", Some("Always"), true, false)).is_none());
        assert!(unhealthy(&pod_json("Running", None, true, false)).is_none());
        // another container terminating is not the Ray container
        assert!(unhealthy(&pod_json("Running", Some("Never"), false, true)).is_none());
        assert!(unhealthy(&pod_json("Running", Some("Never"), false, false)).is_none());
        assert!(unhealthy(&pod_json("Pending", Some("Never"), false, false)).is_none());
        let info = PodInfo::from_pod(&pod_json("Failed", None, true, false));
        assert_eq!(info.phase, PodPhase::Failed);
        assert!(info.unhealthy.is_some());
    }

    fn bare(n: &str, created: i64) -> PodInfo {
        PodInfo {
            created: Some(created),
            ..pod(n)
        }
    }

    fn labels_of(a: &PodActions) -> Vec<(String, String, String, String)> {
        a.label
            .iter()
            .map(|(p, l, _)| {
                (
                    p.clone(),
                    l[LABEL_REPLICA_NAME].clone(),
                    l[LABEL_REPLICA_INDEX].clone(),
                    l[LABEL_HOST_INDEX].clone(),
                )
            })
            .collect()
    }

    #[test]
    fn unlabeled_multi_host_pods_are_adopted_into_replicas_by_creation_order() {
        // one labelled replica at index 0, five unlabeled pods (created out of name order), one
        // of them unhealthy, one named in workersToDelete
        let pods = [
            host("a", "small-group-xxxxx", 0),
            host("b", "small-group-xxxxx", 0),
            bare("u3", 30),
            bare("u1", 10),
            bare("u2", 20),
            bare("u4", 40),
            bare("u5", 50),
            sick(bare("u6", 5)),
            bare("u7", 1),
        ];
        let a = actions(&rc_hosts(2, 0, 10, &["u7"], 2), &pods, &[]);
        // an adopting pass does nothing else to the group: nothing created; the sick pod and
        // the listed one are deleted alone
        assert!(a.create.is_empty(), "{a:?}");
        assert_eq!(deleted(&a), vec!["u6", "u7"]);
        let got = labels_of(&a);
        let names: Vec<&str> = got.iter().map(|l| l.1.as_str()).collect();
        assert_eq!(names[0], names[1]);
        assert_eq!(names[2], names[3]);
        assert_ne!(names[0], names[2]);
        assert_ne!(names[4], names[2]);
        for n in &names {
            assert!(
                n.starts_with("small-group-") && n.len() == "small-group-".len() + 5,
                "{n}"
            );
        }
        let shape: Vec<(&str, &str, &str)> = got
            .iter()
            .map(|(p, _, i, h)| (p.as_str(), i.as_str(), h.as_str()))
            .collect();
        assert_eq!(
            shape,
            vec![
                ("u1", "1", "0"),
                ("u2", "1", "1"),
                ("u3", "2", "0"),
                ("u4", "2", "1"),
                ("u5", "3", "0"),
            ]
        );
        assert!(a.label[4].2.contains("creation order"), "{:?}", a.label[4]);
        // the same input labels the same way (a pass on a watch cache that has not caught up)
        assert_eq!(
            labels_of(&actions(&rc_hosts(2, 0, 10, &["u7"], 2), &pods, &[])),
            got
        );
        // once labelled, the leftover u5 is an incomplete replica and goes
        let labelled: Vec<PodInfo> = got
            .iter()
            .map(|(p, r, i, _)| PodInfo {
                replica_name: Some(r.clone()),
                replica_index: i.parse().ok(),
                ..pod(p)
            })
            .chain([
                host("a", "small-group-xxxxx", 0),
                host("b", "small-group-xxxxx", 0),
            ])
            .collect();
        let a = actions(&rc_hosts(2, 0, 10, &[], 2), &labelled, &[]);
        assert_eq!(deleted(&a), vec!["u5"]);
        assert!(a.delete[0].1.contains("incomplete multi-host replica"));
        // while the labels are in flight, the group is left alone
        let flying: Vec<PodInfo> = labelled[..2].to_vec();
        let a = actions(&rc_hosts(2, 0, 10, &[], 2), &pods, &flying);
        assert!(a.label.is_empty() && a.delete.is_empty() && a.create.is_empty());
    }

    #[test]
    fn the_tpu_webhook_replica_label_groups_adopted_pods() {
        let legacy = |n: &str, r: &str, c: i64| PodInfo {
            legacy_replica: Some(r.into()),
            ..bare(n, c)
        };
        let pods = [
            legacy("p1", "small-group-1", 1),
            legacy("p2", "small-group-0", 2),
            legacy("p3", "small-group-1", 3),
            legacy("p4", "small-group-0", 4),
        ];
        let got = labels_of(&actions(&rc_hosts(2, 0, 10, &[], 2), &pods, &[]));
        let by_pod: BTreeMap<&str, (&str, &str)> = got
            .iter()
            .map(|(p, r, _, h)| (p.as_str(), (r.as_str(), h.as_str())))
            .collect();
        assert_eq!(by_pod["p2"].0, by_pod["p4"].0);
        assert_eq!(by_pod["p1"].0, by_pod["p3"].0);
        assert_ne!(by_pod["p1"].0, by_pod["p2"].0);
        assert_eq!((by_pod["p2"].1, by_pod["p4"].1), ("0", "1"));
        // the engine sees the webhook's replica until the pods are labelled
        let w = pods[0].to_engine();
        assert_eq!(w.replica.as_deref(), Some("replicaIndex=small-group-1"));
        assert_eq!(host("a", "r", 0).to_engine().replica.as_deref(), Some("r"));
        assert_eq!(pod("z").to_engine().replica, None);
    }

    #[test]
    fn long_names_are_clipped() {
        let n = generate_name(&"x".repeat(40), "Group-With-A-Long-Name");
        assert_eq!(n.len(), 51);
        assert!(n.ends_with('-') && n == n.to_lowercase());
    }
}
