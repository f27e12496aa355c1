//! Input and output types of the autoscaling decision engine (pure data, no I/O).
//!
//! The engine plans from one snapshot: the RayCluster object, the worker pods that exist, and
//! what Ray's GCS reports (nodes, pending demands, pending placement groups and the standing
//! `request_resources` constraint). Time enters only as idle durations. Resource amounts are
//! `f64` in Ray's units (CPU count, bytes for `memory`); the engine converts them to Ray's
//! fixed-point representation (1/10000) internally, so `0.1 + 0.2` behaves as in Ray.

use crate::violation::Violation;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A resource dictionary, e.g. `{"CPU": 4, "GPU": 1, "memory": 8589934592}`.
pub type ResourceMap = BTreeMap<String, f64>;

/// Everything the engine plans from.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineInput {
    /// The RayCluster (`ray.io/v1`), with CRD defaults applied (the engine applies the core's
    /// defaulting again, which is idempotent).
    pub ray_cluster: serde_json::Value,
    /// Worker pods of this cluster as the API server lists them (head pod excluded).
    pub pods: Vec<WorkerPod>,
    /// What Ray's GCS reports.
    pub ray: RayState,
    pub options: EngineOptions,
}

/// A worker pod (`ray.io/node-type=worker`) of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerPod {
    /// Pod name; for KubeRay this is the cloud instance id Ray reports for the node.
    pub name: String,
    /// `ray.io/group` label: the worker group (node type).
    pub group: String,
    #[serde(default)]
    pub phase: PodPhase,
    /// `metadata.deletionTimestamp` is set. Such pods are ignored, as Ray's provider does.
    #[serde(default)]
    pub deleting: bool,
    /// The multi-host replica the pod belongs to (KubeRay's `ray.io/worker-group-replica-name`)
    /// in a group with `numOfHosts > 1`: such a replica is scaled down whole, only when every
    /// one of its hosts is idle. `None` in a multi-host group: membership unknown, so all such
    /// pods of the group are treated as one unit. Ignored in single-host groups.
    #[serde(default)]
    pub replica: Option<String>,
}

/// Kubernetes pod phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum PodPhase {
    Pending,
    #[default]
    Running,
    Succeeded,
    Failed,
    Unknown,
}

/// The GCS view (`ClusterResourceState` / `GetClusterStatus`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RayState {
    pub nodes: Vec<RayNode>,
    /// Pending tasks/actors, grouped by shape.
    pub demands: Vec<ResourceDemand>,
    /// Pending (or rescheduling) placement groups; only their unplaced bundles.
    pub placement_groups: Vec<PlacementGroupDemand>,
    /// Bundles of the one standing `request_resources` call (satisfied all together or not at
    /// all, against total capacity).
    pub constraints: Vec<ResourceDemand>,
}

/// A Ray node as GCS reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct RayNode {
    /// Cloud instance id (`ray.io/cloud-instance-id`), i.e. the pod name under KubeRay.
    pub pod: String,
    /// Ray node id (hex), if known.
    pub node_id: Option<String>,
    /// `ray.io/node-group` / node type name, if GCS reports one. Informational: the engine maps
    /// a node to its group through the pod list.
    pub node_type: Option<String>,
    pub kind: NodeKind,
    pub total: ResourceMap,
    pub available: ResourceMap,
    /// Node labels (static ∪ dynamic).
    pub labels: BTreeMap<String, String>,
    /// Milliseconds since the last non-implicit resource became free; 0 = busy.
    pub idle_ms: u64,
    pub status: RayNodeStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum NodeKind {
    Head,
    #[default]
    Worker,
}

/// GCS node status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RayNodeStatus {
    #[default]
    Running,
    Idle,
    Draining,
    Dead,
}

/// `count` copies of one resource shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceDemand {
    pub resources: ResourceMap,
    pub count: u64,
}

/// Placement group strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PlacementStrategy {
    Pack,
    Spread,
    StrictPack,
    StrictSpread,
}

impl PlacementStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            PlacementStrategy::Pack => "PACK",
            PlacementStrategy::Spread => "SPREAD",
            PlacementStrategy::StrictPack => "STRICT_PACK",
            PlacementStrategy::StrictSpread => "STRICT_SPREAD",
        }
    }
}

/// One pending placement group (a gang: all bundles or none).
#[derive(Debug, Clone, PartialEq)]
pub struct PlacementGroupDemand {
    /// Placement group id (hex), if known; used only in messages.
    pub id: Option<String>,
    pub strategy: PlacementStrategy,
    pub bundles: Vec<ResourceMap>,
}

/// Engine knobs that are not in the RayCluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineOptions {
    /// Global cap on launches in flight (`AUTOSCALER_MAX_CONCURRENT_LAUNCHES`, default 10).
    pub max_concurrent_launches: u32,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            max_concurrent_launches: 10,
        }
    }
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// RFC 6902 operations on the RayCluster, exactly as Ray v2's KubeRay provider writes them;
    /// empty when there is nothing to do. Clearing a finished `scaleStrategy.workersToDelete`
    /// (`{"workersToDelete": []}`, once none of the named pods is a live pod) is part of it, also
    /// when nothing else changes: the controller writes only what the engine planned.
    pub patch: Vec<serde_json::Value>,
    /// Per worker group, in `spec.workerGroupSpecs` order.
    pub groups: Vec<GroupPlan>,
    /// Demands that no worker group can hold, however many pods it had (tasks/actors, bundles of
    /// infeasible placement groups, and the constraint bundles when the constraint is
    /// infeasible).
    pub infeasible: Vec<ResourceDemand>,
    /// Demands a worker group could hold but that stay unplaced because every group that fits
    /// them is at `maxReplicas`: not infeasible, the limit is the reason.
    pub capped: Vec<CappedDemand>,
    /// Why the RayCluster was refused (then `patch` is empty).
    pub violations: Vec<Violation>,
    pub status: StatusSummary,
}

/// What happens to one worker group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupPlan {
    pub name: String,
    /// `replicas` after the patch (unchanged when the group has no op).
    pub replicas: u32,
    /// Pods requested by this plan (after rate limits and maxReplicas).
    pub launch: u32,
    /// Pods named in `workersToDelete` by this plan, in termination order.
    pub terminate: Vec<String>,
    /// Pods the scheduler wanted that this plan does not launch, by the limit that held them.
    pub deferred: Deferred,
    /// A previous `workersToDelete` still names a live pod: no launch, no termination.
    pub blocked: bool,
}

/// Pods of a group the scheduler wanted but this plan does not launch, by the limit that held
/// each back. The limits apply in this order, and a pod counts under the first that held it:
/// a pending `workersToDelete`, the upscaling rate (`upscalingSpeed` × running pods, at least 1
/// per iteration), `maxConcurrentLaunches` (pods requested and not yet created, all groups),
/// then `maxReplicas` (`replicas` after the patch may not exceed it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Deferred {
    pub workers_to_delete: u32,
    pub upscaling_rate: u32,
    pub max_concurrent_launches: u32,
    pub max_replicas: u32,
}

impl Deferred {
    pub fn total(&self) -> u32 {
        self.workers_to_delete
            .saturating_add(self.upscaling_rate)
            .saturating_add(self.max_concurrent_launches)
            .saturating_add(self.max_replicas)
    }

    /// (key, pods) of the limits that held pods back, in the order above: `workersToDelete`,
    /// `upscalingRate`, `maxConcurrentLaunches`, `maxReplicas`.
    pub fn reasons(&self) -> Vec<(&'static str, u32)> {
        [
            ("workersToDelete", self.workers_to_delete),
            ("upscalingRate", self.upscaling_rate),
            ("maxConcurrentLaunches", self.max_concurrent_launches),
            ("maxReplicas", self.max_replicas),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect()
    }
}

/// A demand held back by `maxReplicas`: `groups` could hold it but are at their maximum.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CappedDemand {
    pub resources: ResourceMap,
    pub count: u64,
    /// The worker groups whose pods would fit it, in `spec.workerGroupSpecs` order.
    pub groups: Vec<String>,
}

/// Inputs of the `ray status` text (v2 layout), computed from the snapshot.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StatusSummary {
    /// (node type, count) of non-idle Ray nodes, head included, in first-seen order.
    pub active: Vec<(String, u32)>,
    /// (node type, count) of idle Ray nodes.
    pub idle: Vec<(String, u32)>,
    /// (node type, pods) launched by this plan.
    pub launching: Vec<(String, u32)>,
    /// (pod, node type, details) of pods that exist without a Ray node yet.
    pub pending: Vec<(String, String, String)>,
    /// (pod, node type) of DEAD Ray nodes.
    pub failed: Vec<(String, String)>,
    /// resource → (used, total) over live Ray nodes.
    pub usage: BTreeMap<String, (f64, f64)>,
    pub constraints: Vec<ResourceDemand>,
    pub demands: Vec<ResourceDemand>,
    /// (strategy, bundles, count of identical pending groups).
    pub placement_groups: Vec<(PlacementStrategy, Vec<ResourceMap>, u64)>,
}
