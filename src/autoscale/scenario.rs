//! The snapshot format of `raygate autoscale plan` (YAML). Pure: text in, `EngineInput` out;
//! reading `rayClusterFile` is left to the caller through a closure.

use super::types::*;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Scenario {
    #[serde(default)]
    ray_cluster: Option<Value>,
    #[serde(default)]
    ray_cluster_file: Option<String>,
    #[serde(default)]
    options: ScenarioOptions,
    #[serde(default)]
    pods: Vec<WorkerPodDoc>,
    #[serde(default)]
    ray: RayDoc,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ScenarioOptions {
    #[serde(default)]
    max_concurrent_launches: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WorkerPodDoc {
    name: String,
    group: String,
    #[serde(default)]
    phase: PodPhase,
    #[serde(default)]
    deleting: bool,
    /// Multi-host replica name (`ray.io/worker-group-replica-name`).
    #[serde(default)]
    replica: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RayDoc {
    #[serde(default)]
    nodes: Vec<NodeDoc>,
    #[serde(default)]
    demands: Vec<DemandDoc>,
    #[serde(default)]
    placement_groups: Vec<PgDoc>,
    #[serde(default)]
    constraints: Vec<DemandDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NodeDoc {
    pod: String,
    #[serde(default)]
    total: ResourceMap,
    /// Absent: the node is free (available = total).
    #[serde(default)]
    available: Option<ResourceMap>,
    /// Absent or 0: busy.
    #[serde(default)]
    idle_seconds: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DemandDoc {
    resources: ResourceMap,
    #[serde(default = "one")]
    count: u64,
}

fn one() -> u64 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PgDoc {
    strategy: PlacementStrategy,
    bundles: Vec<ResourceMap>,
}

/// Parses a scenario. `load_cluster(path)` reads `rayClusterFile` (YAML or JSON, relative paths
/// are the caller's business). Errors name the file, line and column (or the field).
pub fn parse_scenario(
    name: &str,
    text: &str,
    load_cluster: &dyn Fn(&str) -> Result<Value, String>,
) -> Result<EngineInput, String> {
    let doc: Scenario = serde_saphyr::from_str(text).map_err(|e| format!("{name}: {e}"))?;
    let ray_cluster = match (doc.ray_cluster, doc.ray_cluster_file) {
        (Some(rc), None) => rc,
        (None, Some(path)) => {
            load_cluster(&path).map_err(|e| format!("{name}: rayClusterFile {path}: {e}"))?
        }
        (Some(_), Some(_)) => {
            return Err(format!(
                "{name}: give either rayCluster or rayClusterFile, not both"
            ));
        }
        (None, None) => return Err(format!("{name}: missing rayCluster (or rayClusterFile)")),
    };
    if !ray_cluster.is_object() {
        return Err(format!("{name}: rayCluster is not a mapping"));
    }
    // A repeated name would make two pods (or two Ray nodes) one: an error, never a silent merge.
    let mut seen = std::collections::HashMap::new();
    for (i, p) in doc.pods.iter().enumerate() {
        if let Some(j) = seen.insert(p.name.as_str(), i) {
            return Err(format!(
                "{name}: pods[{i}].name {:?} repeats pods[{j}].name",
                p.name
            ));
        }
    }
    let mut seen = std::collections::HashMap::new();
    for (i, n) in doc.ray.nodes.iter().enumerate() {
        if let Some(j) = seen.insert(n.pod.as_str(), i) {
            return Err(format!(
                "{name}: ray.nodes[{i}].pod {:?} repeats ray.nodes[{j}].pod",
                n.pod
            ));
        }
    }
    let worker_pods: std::collections::HashSet<&str> =
        doc.pods.iter().map(|p| p.name.as_str()).collect();
    let mut nodes = Vec::with_capacity(doc.ray.nodes.len());
    for (i, n) in doc.ray.nodes.iter().enumerate() {
        let idle = n.idle_seconds.unwrap_or(0.0);
        if !idle.is_finite() || idle < 0.0 {
            return Err(format!(
                "{name}: ray.nodes[{i}].idleSeconds {idle} is not a non-negative number"
            ));
        }
        let idle_ms = (idle * 1000.0).round() as u64;
        nodes.push(RayNode {
            pod: n.pod.clone(),
            node_id: None,
            node_type: None,
            kind: if worker_pods.contains(n.pod.as_str()) {
                NodeKind::Worker
            } else {
                NodeKind::Head
            },
            total: n.total.clone(),
            available: n.available.clone().unwrap_or_else(|| n.total.clone()),
            labels: BTreeMap::new(),
            idle_ms,
            status: if idle_ms > 0 {
                RayNodeStatus::Idle
            } else {
                RayNodeStatus::Running
            },
        });
    }
    let demand = |d: &DemandDoc| ResourceDemand {
        resources: d.resources.clone(),
        count: d.count,
    };
    Ok(EngineInput {
        ray_cluster,
        pods: doc
            .pods
            .into_iter()
            .map(|p| WorkerPod {
                name: p.name,
                group: p.group,
                phase: p.phase,
                deleting: p.deleting,
                replica: p.replica,
            })
            .collect(),
        ray: RayState {
            nodes,
            demands: doc.ray.demands.iter().map(demand).collect(),
            placement_groups: doc
                .ray
                .placement_groups
                .into_iter()
                .map(|pg| PlacementGroupDemand {
                    id: None,
                    strategy: pg.strategy,
                    bundles: pg.bundles,
                })
                .collect(),
            constraints: doc.ray.constraints.iter().map(demand).collect(),
        },
        options: EngineOptions {
            max_concurrent_launches: doc
                .options
                .max_concurrent_launches
                .unwrap_or(EngineOptions::default().max_concurrent_launches),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_file(_: &str) -> Result<Value, String> {
        Err("no files here".into())
    }

    #[test]
    fn unknown_key_has_location() {
        let text = "rayCluster: {spec: {}}\npods:\n  - {name: w1, group: g, phaze: Running}\n";
        let e = parse_scenario("s.yaml", text, &no_file).unwrap_err();
        assert!(e.contains("phaze"), "{e}");
        assert!(e.contains("line 3") || e.contains("3:"), "{e}");
    }

    #[test]
    fn defaults() {
        let text = "rayCluster: {spec: {}}\npods: [{name: w1, group: g}]\nray:\n  nodes: [{pod: w1, total: {CPU: 1}}, {pod: head, total: {CPU: 0}}]\n  demands: [{resources: {CPU: 1}}]\n";
        let i = parse_scenario("s.yaml", text, &no_file).unwrap();
        assert_eq!(i.pods[0].phase, PodPhase::Running);
        assert!(!i.pods[0].deleting);
        assert_eq!(i.ray.nodes[0].kind, NodeKind::Worker);
        assert_eq!(i.ray.nodes[1].kind, NodeKind::Head);
        assert_eq!(i.ray.nodes[0].available.get("CPU"), Some(&1.0));
        assert_eq!(i.ray.demands[0].count, 1);
        assert_eq!(i.options.max_concurrent_launches, 10);
    }
}
