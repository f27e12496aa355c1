//! Pure mapping of the GCS `ClusterResourceState` into plain data (no I/O).
//!
//! [`RaySnapshot`] keeps everything raygate needs from one `GetClusterResourceState` answer:
//! the state version (for the stale-state fail-safe), per node the binary node id (for
//! `DrainNode`), the cloud instance id and node type that KubeRay sets on each pod
//! (`RAY_CLOUD_INSTANCE_ID` = pod name, `RAY_NODE_TYPE_NAME` = group name), resources, idle
//! time, status and activity, plus the pending demand.

use super::proto;
use std::collections::BTreeMap;

/// A resource dictionary as Ray reports it.
pub type Resources = BTreeMap<String, f64>;

/// Resource key only the head node carries.
pub const HEAD_RESOURCE: &str = "node:__internal_head__";

/// GCS node status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum NodeStatus {
    /// Not set by the GCS (treated as busy).
    Unspecified,
    Running,
    Idle,
    Draining,
    Dead,
}

impl NodeStatus {
    fn from_proto(v: i32) -> Self {
        match proto::NodeStatus::try_from(v) {
            Ok(proto::NodeStatus::Running) => NodeStatus::Running,
            Ok(proto::NodeStatus::Idle) => NodeStatus::Idle,
            Ok(proto::NodeStatus::Draining) => NodeStatus::Draining,
            Ok(proto::NodeStatus::Dead) => NodeStatus::Dead,
            Ok(proto::NodeStatus::Unspecified) | Err(_) => NodeStatus::Unspecified,
        }
    }
}

/// One Ray node.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Node {
    /// Binary node id, as `DrainNode` wants it.
    #[serde(skip)]
    pub node_id: Vec<u8>,
    /// The node id in hex (as `ray list nodes` prints it).
    pub node_id_hex: String,
    /// `RAY_CLOUD_INSTANCE_ID` of the node; the pod name under KubeRay. Empty if unset.
    pub instance_id: String,
    /// `RAY_NODE_TYPE_NAME` of the node; the worker group name under KubeRay. Empty if unset.
    pub node_type: String,
    pub ip: String,
    pub is_head: bool,
    pub status: NodeStatus,
    pub total: Resources,
    pub available: Resources,
    /// Static labels ∪ (deprecated) dynamic labels.
    pub labels: BTreeMap<String, String>,
    /// Milliseconds the node has been idle; 0 while it runs anything.
    pub idle_ms: u64,
    /// Why the node is not idle, as Ray describes it.
    pub activity: Vec<String>,
}

/// `count` copies of one shape, possibly with label selectors (kept for display only).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Demand {
    pub resources: Resources,
    pub count: u64,
}

/// Placement group strategy as carried in the gang request's details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Strategy {
    Pack,
    Spread,
    StrictPack,
    StrictSpread,
}

impl Strategy {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "PACK" => Some(Strategy::Pack),
            "SPREAD" => Some(Strategy::Spread),
            "STRICT_PACK" => Some(Strategy::StrictPack),
            "STRICT_SPREAD" => Some(Strategy::StrictSpread),
            _ => None,
        }
    }
}

/// A pending placement group: all its bundles or none.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Gang {
    /// The placement group id in hex, from the details or a `_PG_<hex>` constraint label.
    pub id: Option<String>,
    pub strategy: Strategy,
    pub bundles: Vec<Resources>,
    /// Ray's details string, e.g. `<pg id hex>:STRICT_SPREAD|PENDING`.
    pub details: String,
}

/// Everything raygate uses from one `ClusterResourceState`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RaySnapshot {
    /// `cluster_resource_state_version`: increases whenever the GCS view changes.
    pub version: i64,
    /// The last `autoscaler_state_version` the GCS saw from `ReportAutoscalingState`.
    pub last_seen_autoscaler_version: i64,
    pub session_name: String,
    pub nodes: Vec<Node>,
    pub demands: Vec<Demand>,
    pub gangs: Vec<Gang>,
    /// Bundles of the standing `request_resources` call(s), by shape.
    pub constraints: Vec<Demand>,
}

impl RaySnapshot {
    /// Pending resource requests: tasks/actors, placement-group bundles and the bundles of
    /// standing `request_resources` calls (the demand line of a timeline).
    pub fn pending_requests(&self) -> u64 {
        self.demands.iter().map(|d| d.count).sum::<u64>()
            + self
                .gangs
                .iter()
                .map(|g| g.bundles.len() as u64)
                .sum::<u64>()
            + self.constraints.iter().map(|d| d.count).sum::<u64>()
    }
}

fn resources(m: &std::collections::HashMap<String, f64>) -> Resources {
    m.iter()
        .filter(|(_, v)| v.is_finite())
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Splits Ray's gang details `<pg id hex>:<STRATEGY>|<STATE>` (Ray 2.60) into (id, strategy).
fn parse_details(details: &str) -> (Option<&str>, Option<Strategy>) {
    let head = details.split('|').next().unwrap_or("").trim();
    match head.rsplit_once(':') {
        Some((id, strategy)) => (
            Some(id.trim()).filter(|s| !s.is_empty()),
            Strategy::parse(strategy.trim()),
        ),
        None => (None, Strategy::parse(head)),
    }
}

/// The strategy of a gang: from the details (`<id>:STRICT_SPREAD|PENDING`), else from its
/// placement constraints (anti-affinity = STRICT_SPREAD, affinity = STRICT_PACK), else PACK.
fn gang_strategy(g: &proto::GangResourceRequest, bundles: &[&proto::ResourceRequest]) -> Strategy {
    if let (_, Some(s)) = parse_details(&g.details) {
        return s;
    }
    let constraints = bundles.iter().flat_map(|b| b.placement_constraints.iter());
    let mut anti = false;
    let mut aff = false;
    for c in constraints {
        anti |= c.anti_affinity.is_some();
        aff |= c.affinity.is_some();
    }
    if anti {
        Strategy::StrictSpread
    } else if aff {
        Strategy::StrictPack
    } else {
        Strategy::Pack
    }
}

fn gang_id(bundles: &[&proto::ResourceRequest]) -> Option<String> {
    bundles
        .iter()
        .flat_map(|b| b.placement_constraints.iter())
        .find_map(|c| {
            let name = c
                .anti_affinity
                .as_ref()
                .map(|a| a.label_name.as_str())
                .or_else(|| c.affinity.as_ref().map(|a| a.label_name.as_str()))?;
            name.strip_prefix("_PG_").map(str::to_string)
        })
}

fn add_demand(out: &mut Vec<Demand>, resources: Resources, count: u64) {
    if count == 0 {
        return;
    }
    if let Some(d) = out.iter_mut().find(|d| d.resources == resources) {
        d.count = d.count.saturating_add(count);
    } else {
        out.push(Demand { resources, count });
    }
}

impl RaySnapshot {
    /// Maps one `ClusterResourceState`. Never fails: missing parts map to empty values, negative
    /// counts and idle times to 0.
    pub fn from_proto(s: &proto::ClusterResourceState) -> Self {
        let nodes = s
            .node_states
            .iter()
            .map(|n| {
                let total = resources(&n.total_resources);
                let mut labels: BTreeMap<String, String> = n
                    .dynamic_labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                labels.extend(n.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
                Node {
                    node_id: n.node_id.clone(),
                    node_id_hex: hex(&n.node_id),
                    instance_id: n.instance_id.clone(),
                    node_type: n.ray_node_type_name.clone(),
                    ip: n.node_ip_address.clone(),
                    is_head: total.contains_key(HEAD_RESOURCE),
                    status: NodeStatus::from_proto(n.status),
                    available: resources(&n.available_resources),
                    total,
                    labels,
                    idle_ms: u64::try_from(n.idle_duration_ms).unwrap_or(0),
                    activity: n.node_activity.clone(),
                }
            })
            .collect();
        let mut demands = Vec::new();
        for r in &s.pending_resource_requests {
            let shape = r
                .request
                .as_ref()
                .map(|q| resources(&q.resources_bundle))
                .unwrap_or_default();
            add_demand(&mut demands, shape, u64::try_from(r.count).unwrap_or(0));
        }
        let gangs = s
            .pending_gang_resource_requests
            .iter()
            .map(|g| {
                // Ray 2.60 fills both the deprecated `requests` and `bundle_selectors[0]`;
                // prefer the selector (the first is the primary choice), else the flat list.
                let bundles: Vec<&proto::ResourceRequest> = match g.bundle_selectors.first() {
                    Some(sel) if !sel.resource_requests.is_empty() => {
                        sel.resource_requests.iter().collect()
                    }
                    _ => g.requests.iter().collect(),
                };
                Gang {
                    id: parse_details(&g.details)
                        .0
                        .map(str::to_string)
                        .or_else(|| gang_id(&bundles)),
                    strategy: gang_strategy(g, &bundles),
                    bundles: bundles
                        .iter()
                        .map(|b| resources(&b.resources_bundle))
                        .collect(),
                    details: g.details.clone(),
                }
            })
            .collect();
        let mut constraints = Vec::new();
        for c in &s.cluster_resource_constraints {
            for r in &c.resource_requests {
                let shape = r
                    .request
                    .as_ref()
                    .map(|q| resources(&q.resources_bundle))
                    .unwrap_or_default();
                add_demand(&mut constraints, shape, u64::try_from(r.count).unwrap_or(0));
            }
        }
        RaySnapshot {
            version: s.cluster_resource_state_version,
            last_seen_autoscaler_version: s.last_seen_autoscaler_state_version,
            session_name: s.cluster_session_name.clone(),
            nodes,
            demands,
            gangs,
            constraints,
        }
    }

    /// The node whose cloud instance id (pod name) is `pod`, preferring a live one.
    pub fn node_for_pod(&self, pod: &str) -> Option<&Node> {
        let mut it = self.nodes.iter().filter(|n| n.instance_id == pod);
        let all: Vec<&Node> = it.by_ref().collect();
        all.iter()
            .find(|n| n.status != NodeStatus::Dead)
            .or_else(|| all.first())
            .copied()
    }
}

/// Into the engine's input: nodes keyed by cloud instance id (= pod name under KubeRay), the
/// head recognised by its `node:__internal_head__` resource, resources Ray omits from
/// `available` (none free) staying absent (the engine reads absent as 0).
impl RaySnapshot {
    pub fn to_engine(&self) -> crate::autoscale::types::RayState {
        use crate::autoscale::types as t;
        let nodes = self
            .nodes
            .iter()
            .map(|n| t::RayNode {
                pod: n.instance_id.clone(),
                node_id: Some(n.node_id_hex.clone()).filter(|h| !h.is_empty()),
                node_type: Some(n.node_type.clone()).filter(|s| !s.is_empty()),
                kind: if n.is_head {
                    t::NodeKind::Head
                } else {
                    t::NodeKind::Worker
                },
                total: n.total.clone(),
                available: n.available.clone(),
                labels: n.labels.clone(),
                idle_ms: n.idle_ms,
                status: match n.status {
                    NodeStatus::Idle => t::RayNodeStatus::Idle,
                    NodeStatus::Draining => t::RayNodeStatus::Draining,
                    NodeStatus::Dead => t::RayNodeStatus::Dead,
                    NodeStatus::Running | NodeStatus::Unspecified => t::RayNodeStatus::Running,
                },
            })
            .collect();
        let demand = |d: &Demand| t::ResourceDemand {
            resources: d.resources.clone(),
            count: d.count,
        };
        t::RayState {
            nodes,
            demands: self.demands.iter().map(demand).collect(),
            placement_groups: self
                .gangs
                .iter()
                .map(|g| t::PlacementGroupDemand {
                    id: g.id.clone(),
                    strategy: match g.strategy {
                        Strategy::Pack => t::PlacementStrategy::Pack,
                        Strategy::Spread => t::PlacementStrategy::Spread,
                        Strategy::StrictPack => t::PlacementStrategy::StrictPack,
                        Strategy::StrictSpread => t::PlacementStrategy::StrictSpread,
                    },
                    bundles: g.bundles.clone(),
                })
                .collect(),
            constraints: self.constraints.iter().map(demand).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn req(shape: &[(&str, f64)]) -> proto::ResourceRequest {
        proto::ResourceRequest {
            resources_bundle: shape.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn maps_nodes_demands_gangs_and_constraints() {
        let head = proto::NodeState {
            node_id: vec![0xab, 0x01],
            instance_id: "rc-head-x".into(),
            ray_node_type_name: "headgroup".into(),
            total_resources: HashMap::from([(HEAD_RESOURCE.to_string(), 1.0)]),
            status: proto::NodeStatus::Running as i32,
            ..Default::default()
        };
        let worker = proto::NodeState {
            node_id: vec![0x02],
            instance_id: "rc-small-group-worker-a".into(),
            ray_node_type_name: "small-group".into(),
            total_resources: HashMap::from([("CPU".to_string(), 1.0)]),
            available_resources: HashMap::from([("CPU".to_string(), 1.0)]),
            status: proto::NodeStatus::Idle as i32,
            idle_duration_ms: 4200,
            labels: HashMap::from([("ray.io/node-group".into(), "small-group".into())]),
            dynamic_labels: HashMap::from([("_PG_x".into(), "".into())]),
            ..Default::default()
        };
        let anti = proto::PlacementConstraint {
            anti_affinity: Some(proto::AntiAffinityConstraint {
                label_name: "_PG_abcd".into(),
                label_value: String::new(),
            }),
            affinity: None,
        };
        let mut b = req(&[("CPU", 1.0)]);
        b.placement_constraints.push(anti);
        let state = proto::ClusterResourceState {
            cluster_resource_state_version: 7,
            node_states: vec![head, worker],
            pending_resource_requests: vec![
                proto::ResourceRequestByCount {
                    request: Some(req(&[("CPU", 1.0)])),
                    count: 2,
                },
                proto::ResourceRequestByCount {
                    request: Some(req(&[("CPU", 1.0)])),
                    count: 1,
                },
                proto::ResourceRequestByCount {
                    request: Some(req(&[("GPU", 1.0)])),
                    count: -3,
                },
            ],
            pending_gang_resource_requests: vec![proto::GangResourceRequest {
                requests: vec![b.clone(), b.clone()],
                details: String::new(),
                bundle_selectors: vec![],
            }],
            cluster_resource_constraints: vec![proto::ClusterResourceConstraint {
                resource_requests: vec![proto::ResourceRequestByCount {
                    request: Some(req(&[("CPU", 1.0)])),
                    count: 4,
                }],
            }],
            ..Default::default()
        };
        let s = RaySnapshot::from_proto(&state);
        assert_eq!(s.version, 7);
        assert!(s.nodes[0].is_head && !s.nodes[1].is_head);
        assert_eq!(s.nodes[0].node_id_hex, "ab01");
        assert_eq!(s.nodes[1].status, NodeStatus::Idle);
        assert_eq!(s.nodes[1].idle_ms, 4200);
        assert_eq!(s.nodes[1].labels.len(), 2);
        assert_eq!(
            s.node_for_pod("rc-small-group-worker-a")
                .map(|n| n.node_id.clone()),
            Some(vec![0x02])
        );
        // Same shapes merge; negative counts vanish.
        assert_eq!(s.demands.len(), 1);
        assert_eq!(s.demands[0].count, 3);
        assert_eq!(s.gangs.len(), 1);
        assert_eq!(s.gangs[0].strategy, Strategy::StrictSpread);
        assert_eq!(s.gangs[0].id.as_deref(), Some("abcd"));
        assert_eq!(s.gangs[0].bundles.len(), 2);
        assert_eq!(s.constraints[0].count, 4);

        use crate::autoscale::types as t;
        let e = s.to_engine();
        assert_eq!(e.nodes[0].kind, t::NodeKind::Head);
        assert_eq!(e.nodes[1].kind, t::NodeKind::Worker);
        assert_eq!(e.nodes[1].pod, "rc-small-group-worker-a");
        assert_eq!(e.nodes[1].node_type.as_deref(), Some("small-group"));
        assert_eq!(e.nodes[1].status, t::RayNodeStatus::Idle);
        assert_eq!(e.nodes[1].idle_ms, 4200);
        assert_eq!(e.nodes[1].node_id.as_deref(), Some("02"));
        assert_eq!(
            e.demands,
            vec![t::ResourceDemand {
                resources: s.demands[0].resources.clone(),
                count: 3
            }]
        );
        assert_eq!(
            e.placement_groups[0].strategy,
            t::PlacementStrategy::StrictSpread
        );
        assert_eq!(e.placement_groups[0].bundles.len(), 2);
        assert_eq!(e.constraints[0].count, 4);
    }

    #[test]
    fn strategy_from_details_wins() {
        let g = proto::GangResourceRequest {
            requests: vec![req(&[("CPU", 1.0)])],
            details: "c700eb9c:SPREAD|PENDING".into(),
            bundle_selectors: vec![],
        };
        let mut h = g.clone();
        h.details = "STRICT_PACK|RESCHEDULING".into();
        let s = RaySnapshot::from_proto(&proto::ClusterResourceState {
            pending_gang_resource_requests: vec![g, h],
            ..Default::default()
        });
        assert_eq!(s.gangs[0].strategy, Strategy::Spread);
        assert_eq!(s.gangs[0].id.as_deref(), Some("c700eb9c"));
        assert_eq!(s.gangs[1].strategy, Strategy::StrictPack);
        assert_eq!(s.gangs[1].id, None);
    }
}
