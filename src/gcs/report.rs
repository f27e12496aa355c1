//! `ReportAutoscalingState`: what raygate decided, in the message Ray's autoscaler v2 reports to
//! the GCS, so `ray status` on the head shows raygate's pending launches, the pods still waiting
//! for Ray and the infeasible demands. One builder for both runtimes (`autoscale local` and the
//! Kubernetes controller); only the pod list differs.

use super::client::{GcsClient, GcsError};
use super::proto;
use super::snapshot::{NodeStatus, RaySnapshot};
use crate::autoscale::types::Plan;
use std::collections::BTreeSet;

/// Details of a pod whose Ray node has not joined yet (the engine's wording for a running pod;
/// `ray status` prints it lower-cased after the pod's type).
pub const WAITING_FOR_RAY: &str = "allocated: waiting for ray to start";
/// Details of a pod that was just created and is not running yet.
pub const POD_PENDING: &str = "allocated: pod is pending";

/// What one report says besides the plan.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Must grow from report to report, also across restarts and leader changes: Ray's GCS
    /// silently discards a report whose version is lower than the one it holds. See [`next_version`].
    pub autoscaler_version: i64,
    /// Pods that were not in the plan's input, e.g. created after the plan in the same
    /// iteration: (pod, group, details). Those with a live Ray node and those already in
    /// `plan.status.pending` are left out.
    pub extra_pending: Vec<(String, String, String)>,
    /// Launches that failed (shown by `ray status` as `LaunchFailed`).
    pub failures: Vec<proto::FailedInstanceRequest>,
    /// Unix seconds of the launch requests.
    pub now_s: i64,
}

/// The next autoscaler state version: above `last`, and at least the wall clock in milliseconds,
/// so a restarted runtime or a new leader (counting from scratch) is not ignored by the GCS.
pub fn next_version(last: i64, now_ms: i64) -> i64 {
    last.saturating_add(1).max(now_ms)
}

/// The `AutoscalingState` for `plan`, made from `snap`: launch requests of this plan (one per
/// group, as Ray's `ray status` counts requests, not pods), pods without a Ray node yet,
/// infeasible demands, and the failures given.
pub fn autoscaling_state(plan: &Plan, snap: &RaySnapshot, r: &Report) -> proto::AutoscalingState {
    let mut seen: BTreeSet<&str> = snap
        .nodes
        .iter()
        .filter(|n| n.status != NodeStatus::Dead && !n.instance_id.is_empty())
        .map(|n| n.instance_id.as_str())
        .collect();
    let pending_instances = plan
        .status
        .pending
        .iter()
        .chain(r.extra_pending.iter())
        .filter(|(pod, _, _)| seen.insert(pod.as_str()))
        .map(|(pod, group, details)| proto::PendingInstance {
            instance_type_name: String::new(),
            ray_node_type_name: group.clone(),
            instance_id: pod.clone(),
            ip_address: String::new(),
            details: details.clone(),
        })
        .collect();
    proto::AutoscalingState {
        last_seen_cluster_resource_state_version: snap.version,
        autoscaler_state_version: r.autoscaler_version,
        pending_instance_requests: plan
            .groups
            .iter()
            .filter(|g| g.launch > 0)
            .map(|g| proto::PendingInstanceRequest {
                instance_type_name: String::new(),
                ray_node_type_name: g.name.clone(),
                count: i32::try_from(g.launch).unwrap_or(i32::MAX),
                request_ts: r.now_s,
            })
            .collect(),
        // Ray's own autoscaler reports every request it could not schedule here, the ones
        // max_workers (maxReplicas) held back included; raygate's plan tells the two apart,
        // the GCS gets both, as Ray sends them.
        infeasible_resource_requests: plan
            .infeasible
            .iter()
            .map(|d| &d.resources)
            .chain(plan.capped.iter().map(|d| &d.resources))
            .map(|r| proto::ResourceRequest {
                resources_bundle: r.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                ..Default::default()
            })
            .collect(),
        pending_instances,
        failed_instance_requests: r.failures.clone(),
        ..Default::default()
    }
}

/// Builds the state for `plan` and sends it with `ReportAutoscalingState`.
pub async fn send(
    gcs: &mut GcsClient,
    plan: &Plan,
    snap: &RaySnapshot,
    r: &Report,
) -> Result<(), GcsError> {
    gcs.report_autoscaling_state(autoscaling_state(plan, snap, r))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autoscale::types::{GroupPlan, ResourceDemand};

    #[test]
    fn versions_grow_and_follow_the_clock() {
        assert_eq!(next_version(0, 1_000), 1_000);
        assert_eq!(next_version(1_000, 1_000), 1_001);
        assert_eq!(next_version(5_000, 1_000), 5_001);
        assert_eq!(next_version(i64::MAX, 0), i64::MAX);
    }

    #[test]
    fn plan_becomes_launch_requests_pending_pods_and_infeasible_demands() {
        let mut plan = Plan {
            groups: vec![
                GroupPlan {
                    name: "small-group".into(),
                    replicas: 3,
                    launch: 2,
                    ..Default::default()
                },
                GroupPlan {
                    name: "idle-group".into(),
                    replicas: 1,
                    ..Default::default()
                },
            ],
            infeasible: vec![ResourceDemand {
                resources: [("CPU".to_string(), 2.0)].into_iter().collect(),
                count: 1,
            }],
            ..Default::default()
        };
        plan.status.pending = vec![(
            "rc-small-group-worker-a".into(),
            "small-group".into(),
            POD_PENDING.into(),
        )];
        // pod c has a live Ray node (not pending); d's node is dead (pending again).
        let node = |pod: &str, status: proto::NodeStatus| proto::NodeState {
            node_id: vec![1; 28],
            instance_id: pod.into(),
            ray_node_type_name: "small-group".into(),
            status: status as i32,
            ..Default::default()
        };
        let snap = RaySnapshot::from_proto(&proto::ClusterResourceState {
            cluster_resource_state_version: 7,
            node_states: vec![
                node("rc-small-group-worker-c", proto::NodeStatus::Idle),
                node("rc-small-group-worker-d", proto::NodeStatus::Dead),
            ],
            ..Default::default()
        });
        let extra = |pod: &str| {
            (
                pod.to_string(),
                "small-group".to_string(),
                POD_PENDING.to_string(),
            )
        };
        let r = Report {
            autoscaler_version: 9,
            extra_pending: vec![
                (
                    "rc-small-group-worker-a".into(),
                    "small-group".into(),
                    "dup".into(),
                ),
                extra("rc-small-group-worker-b"),
                extra("rc-small-group-worker-c"),
                extra("rc-small-group-worker-d"),
            ],
            failures: Vec::new(),
            now_s: 100,
        };
        let s = autoscaling_state(&plan, &snap, &r);
        assert_eq!(s.last_seen_cluster_resource_state_version, 7);
        assert_eq!(s.autoscaler_state_version, 9);
        assert_eq!(s.pending_instance_requests.len(), 1);
        assert_eq!(
            s.pending_instance_requests[0].ray_node_type_name,
            "small-group"
        );
        assert_eq!(s.pending_instance_requests[0].count, 2);
        assert_eq!(s.pending_instance_requests[0].request_ts, 100);
        let pods: Vec<(&str, &str)> = s
            .pending_instances
            .iter()
            .map(|p| (p.instance_id.as_str(), p.details.as_str()))
            .collect();
        assert_eq!(
            pods,
            vec![
                ("rc-small-group-worker-a", "allocated: pod is pending"),
                ("rc-small-group-worker-b", "allocated: pod is pending"),
                ("rc-small-group-worker-d", "allocated: pod is pending"),
            ]
        );
        assert_eq!(s.infeasible_resource_requests.len(), 1);
        assert_eq!(
            s.infeasible_resource_requests[0]
                .resources_bundle
                .get("CPU"),
            Some(&2.0)
        );
    }
}
