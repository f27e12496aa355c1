//! raygate's GCS client against a real Ray 2.60.0 head on 127.0.0.1.
//!
//! Skipped when the Ray venv is missing, except under `CI=true` (then they fail).

#[path = "support/ray.rs"]
mod ray;

use ray::{Gcs, RayCluster, WorkerSpec};
use raygate::gcs::snapshot::{NodeStatus, RaySnapshot, Strategy};
use raygate::gcs::{DrainOutcome, GcsClient, GcsError, GcsOptions, proto};
use std::time::Duration;

/// Polls the GCS until `pred` holds; panics with the last snapshot and the logs otherwise.
fn wait_for(
    g: &mut Gcs,
    cluster: &RayCluster,
    within: Duration,
    what: &str,
    pred: impl Fn(&RaySnapshot) -> bool,
) -> RaySnapshot {
    g.wait_for(within, what, pred, &|| cluster.logs())
}

const NS: &str = "raygate_test";

/// Free CPUs of a node; Ray omits a resource from `available` when none of it is free.
fn cpu_free(n: &raygate::gcs::snapshot::Node) -> f64 {
    n.available.get("CPU").copied().unwrap_or(0.0)
}

#[test]
fn pending_actor_request_resources_and_strict_spread_pg_are_reported() {
    let Some(cluster) = RayCluster::start_head() else {
        return;
    };
    let mut g = Gcs::connect(&cluster);

    // The head alone: one node, the head, with its instance id and type, no CPU.
    let s = wait_for(
        &mut g,
        &cluster,
        Duration::from_secs(30),
        "the head node",
        |s| s.nodes.len() == 1,
    );
    let head = &s.nodes[0];
    assert!(head.is_head, "{head:?}");
    assert_eq!(head.instance_id, "raycluster-head");
    assert_eq!(head.node_type, "headgroup");
    assert_eq!(head.ip, "127.0.0.1");
    assert_eq!(head.total.get("CPU").copied().unwrap_or(0.0), 0.0);
    assert!(s.demands.is_empty() && s.gangs.is_empty() && s.constraints.is_empty());
    let v0 = s.version;

    // A detached actor needing 1 CPU cannot be placed on a 0-CPU head: a pending request.
    cluster.create_actor(NS, "actor1", 1, false);
    let s = wait_for(
        &mut g,
        &cluster,
        Duration::from_secs(30),
        "a pending {CPU: 1}",
        |s| {
            s.demands
                .iter()
                .any(|d| d.resources.get("CPU") == Some(&1.0) && d.count == 1)
        },
    );
    assert!(
        s.version > v0,
        "state version must increase: {v0} -> {}",
        s.version
    );

    // request_resources(num_cpus=4) is a cluster resource constraint (autoscaler v2 path).
    cluster.request_resources(4);
    wait_for(
        &mut g,
        &cluster,
        Duration::from_secs(30),
        "a 4×{CPU:1} constraint",
        |s| {
            let cpus: f64 = s
                .constraints
                .iter()
                .map(|d| d.resources.get("CPU").copied().unwrap_or(0.0) * d.count as f64)
                .sum();
            cpus == 4.0
        },
    );

    // A STRICT_SPREAD placement group of 3 × {CPU: 1} is one gang request.
    cluster.python(
        r#"
import ray
from ray.util.placement_group import placement_group
ray.init()
placement_group([{"CPU": 1}] * 3, strategy="STRICT_SPREAD", lifetime="detached", name="pg1")
"#,
        Duration::from_secs(120),
    );
    let s = wait_for(
        &mut g,
        &cluster,
        Duration::from_secs(30),
        "a STRICT_SPREAD gang",
        |s| !s.gangs.is_empty(),
    );
    assert_eq!(s.gangs.len(), 1, "{:#?}", s.gangs);
    let g = &s.gangs[0];
    assert_eq!(
        g.strategy,
        Strategy::StrictSpread,
        "details: {:?}",
        g.details
    );
    assert_eq!(g.bundles.len(), 3, "{g:?}");
    assert!(
        g.bundles.iter().all(|b| b.get("CPU") == Some(&1.0)),
        "{g:?}"
    );
    assert!(g.details.contains("STRICT_SPREAD"), "{:?}", g.details);
    let id = g.id.as_deref().expect("placement group id");
    assert!(
        id.len() >= 16 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
    // The actor demand and the constraint are still there.
    assert!(
        s.demands
            .iter()
            .any(|d| d.resources.get("CPU") == Some(&1.0))
    );
    assert!(!s.constraints.is_empty());
}

#[test]
fn worker_maps_to_pod_and_group_and_drain_respects_running_work() {
    let Some(mut cluster) = RayCluster::start_head() else {
        return;
    };
    let mut g = Gcs::connect(&cluster);
    cluster.start_worker(WorkerSpec::new(
        "raycluster-small-group-worker-aaaaa",
        "small-group",
        1,
    ));
    cluster.start_worker(WorkerSpec::new(
        "raycluster-small-group-worker-bbbbb",
        "small-group",
        1,
    ));
    let s = wait_for(
        &mut g,
        &cluster,
        Duration::from_secs(120),
        "two workers",
        |s| {
            s.nodes
                .iter()
                .filter(|n| !n.is_head && n.status != NodeStatus::Dead)
                .count()
                == 2
        },
    );
    for pod in [
        "raycluster-small-group-worker-aaaaa",
        "raycluster-small-group-worker-bbbbb",
    ] {
        let n = s
            .node_for_pod(pod)
            .unwrap_or_else(|| panic!("{pod} not in {s:#?}"));
        assert_eq!(n.node_type, "small-group");
        assert_eq!(n.ip, "127.0.0.1");
        assert_eq!(n.total.get("CPU"), Some(&1.0));
        assert!(!n.is_head);
        assert_eq!(n.node_id.len(), 28, "Ray node ids are 28 bytes");
    }

    // Put a detached actor on one worker (they are the only CPUs), then find which one.
    cluster.create_actor(NS, "busy", 1, true);
    let s = wait_for(
        &mut g,
        &cluster,
        Duration::from_secs(60),
        "one busy and one idle worker",
        |s| {
            let workers: Vec<_> = s.nodes.iter().filter(|n| !n.is_head).collect();
            workers.iter().any(|n| cpu_free(n) == 0.0 && n.idle_ms == 0)
                && workers.iter().any(|n| {
                    n.available.get("CPU") == Some(&1.0)
                        && n.status == NodeStatus::Idle
                        && n.idle_ms > 0
                })
        },
    );
    let busy = s
        .nodes
        .iter()
        .find(|n| !n.is_head && cpu_free(n) == 0.0)
        .expect("busy worker")
        .clone();
    let idle = s
        .nodes
        .iter()
        .find(|n| !n.is_head && n.available.get("CPU") == Some(&1.0))
        .expect("idle worker")
        .clone();
    assert_eq!(busy.status, NodeStatus::Running);

    let deadline_ms = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64)
        + 60_000;

    // Idle-termination drain of the node running the actor: Ray refuses.
    let out =
        g.rt.block_on(g.client.drain_node_idle(
            &busy.node_id,
            "raygate test: idle termination",
            deadline_ms,
        ))
        .expect("DrainNode busy");
    match &out {
        DrainOutcome::Rejected { reason } => assert!(!reason.is_empty(), "{out:?}"),
        DrainOutcome::Accepted => panic!("drain of a node running an actor was accepted"),
    }

    // Idle-termination drain of the idle node: accepted, and the node drains and leaves.
    let out =
        g.rt.block_on(g.client.drain_node_idle(
            &idle.node_id,
            "raygate test: idle termination",
            deadline_ms,
        ))
        .expect("DrainNode idle");
    assert_eq!(out, DrainOutcome::Accepted);
    wait_for(
        &mut g,
        &cluster,
        Duration::from_secs(60),
        "the idle node to drain",
        |s| {
            s.nodes
                .iter()
                .find(|n| n.node_id == idle.node_id)
                .is_none_or(|n| matches!(n.status, NodeStatus::Draining | NodeStatus::Dead))
        },
    );
    // The busy node is untouched and the actor is still alive.
    let s = g.snapshot();
    let still = s
        .nodes
        .iter()
        .find(|n| n.node_id == busy.node_id)
        .expect("busy node");
    assert_eq!(still.status, NodeStatus::Running);
    assert!(cluster.actor_alive(NS, "busy"));
}

#[test]
fn report_autoscaling_state_shows_in_ray_status_and_non_gcs_is_a_clear_error() {
    let Some(mut cluster) = RayCluster::start_head() else {
        return;
    };
    let mut g = Gcs::connect(&cluster);
    let s = g.snapshot();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let mut infeasible = proto::ResourceRequest::default();
    infeasible.resources_bundle.insert("CPU".into(), 2.0);
    let state = proto::AutoscalingState {
        last_seen_cluster_resource_state_version: s.version,
        autoscaler_state_version: 1,
        pending_instance_requests: vec![proto::PendingInstanceRequest {
            instance_type_name: String::new(),
            ray_node_type_name: "small-group".into(),
            count: 2,
            request_ts: now,
        }],
        infeasible_resource_requests: vec![infeasible],
        pending_instances: vec![proto::PendingInstance {
            instance_type_name: String::new(),
            ray_node_type_name: "small-group".into(),
            instance_id: "raycluster-small-group-worker-zzzzz".into(),
            ip_address: String::new(),
            details: "Waiting for Ray to start".into(),
        }],
        ..Default::default()
    };
    g.rt.block_on(g.client.report_autoscaling_state(state))
        .expect("ReportAutoscalingState accepted");
    let status =
        g.rt.block_on(g.client.get_cluster_status())
            .expect("GetClusterStatus");
    let reported = status.autoscaling_state.expect("autoscaling_state");
    assert_eq!(reported.autoscaler_state_version, 1);
    assert_eq!(reported.pending_instance_requests.len(), 1);
    assert_eq!(reported.pending_instance_requests[0].count, 2);

    // `ray status` (v2 formatter) on the head shows what we reported.
    let text = cluster.ray_status();
    // Ray's v2 formatter counts launch *requests* per type (one request for 2 pods prints 1).
    assert!(text.contains("Autoscaler status"), "{text}");
    assert!(text.contains(" small-group, 1 launching"), "{text}");
    assert!(
        text.contains(
            " raycluster-small-group-worker-zzzzz: small-group, waiting for ray to start"
        ),
        "{text}"
    );

    // The raylet's gRPC port is a real gRPC server without the autoscaler service.
    cluster.wait_for_port(cluster.node_manager_port, Duration::from_secs(60));
    let err =
        g.rt.block_on(GcsClient::connect(
            &format!("127.0.0.1:{}", cluster.node_manager_port),
            GcsOptions::default(),
        ))
        .expect_err("a raylet is not a GCS");
    assert!(matches!(err, GcsError::ServiceMissing { .. }), "{err}");
    assert!(err.to_string().contains("AutoscalerStateService"), "{err}");

    // A closed port: bounded retries, then Unreachable (no hang).
    let closed = ray::free_ports(1)[0];
    let started = std::time::Instant::now();
    let err =
        g.rt.block_on(GcsClient::connect(
            &format!("127.0.0.1:{closed}"),
            GcsOptions {
                max_attempts: 3,
                ..GcsOptions::default()
            },
        ))
        .expect_err("nothing listens there");
    assert!(
        matches!(err, GcsError::Unreachable { attempts: 3, .. }),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}
