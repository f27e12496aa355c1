//! Central mode next to KubeRay's real operator (issue #12): `raygate autoscale run` as the only
//! autoscaler of a RayCluster annotated `raygate.io/autoscaler: central`, with KubeRay's
//! operator (tools/kuberay, ray-operator v1.6.2) on a real kube-apiserver + etcd with KubeRay's
//! v1.7.0 CRD, and a real Ray 2.60.0 head and workers run by the kubelet stand-in from the Pods
//! KubeRay creates (tests/support/kubelet.rs, tests/support/kuberay.rs).
//!
//! * `central_quick_start_with_kuberay`: the RayCluster is KubeRay's quick-start sample with the
//!   annotation and what raygate's mutating webhook fills for it (the core's
//!   `defaulting::mutation`: `enableInTreeAutoscaling: false`, head `no-monitor`); the seed's quick
//!   start passes with raygate alone: no Ray autoscaler process ever ran, every replicas /
//!   workersToDelete write came from raygate's field manager, KubeRay deleted only Pods raygate
//!   named (so never one at random, although with in-tree autoscaling off it would).
//! * `in_tree_cluster_is_never_touched_even_annotated`: the same cluster with
//!   `enableInTreeAutoscaling: true` (Ray's autoscaler in its head) and the annotation: Ray's
//!   autoscaler scales it, `autoscale run` never writes it and says why (Warning event
//!   `OtherAutoscaler`, log, `raygate_autoscaler_clusters_skipped`); switched to
//!   `enableInTreeAutoscaling: false` afterwards, its head Pod still runs Ray's autoscaler, and
//!   raygate still leaves it alone.
//!
//! Run alone: `cargo test --test e2e_kuberay_central` (the Ray venv, kube-apiserver/etcd and the
//! KubeRay binary come from scripts/test.sh's env vars, or are built on first use).

#[path = "support/controller.rs"]
mod controller;
#[path = "support/controlplane.rs"]
mod controlplane;
#[path = "support/kubelet.rs"]
mod kubelet;
#[path = "support/kuberay.rs"]
mod kuberay;
#[path = "support/ray.rs"]
mod ray;

use controller::Controller;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kuberay::{Harness, NAME, Proofs};
use raygate::controller::cluster::FIELD_MANAGER;
use serde_json::{Value, json};
use std::time::Duration;

/// The sample annotated for central mode, with the GCS address `autoscale run` (a process on
/// this machine, outside the stand-in's /etc/hosts) dials, and `in_tree` as given.
fn central_sample(h: &Harness, in_tree: bool) -> (Value, Value) {
    let (mut rc, cm) = h.sample(5);
    rc["metadata"]["annotations"] = json!({
        "raygate.io/autoscaler": "central",
        "raygate.io/gcs-address": format!("127.0.0.1:{}", h.gcs_port),
    });
    rc["spec"]["enableInTreeAutoscaling"] = json!(in_tree);
    (rc, cm)
}

fn controller(h: &Harness) -> Controller {
    Controller::start(&h.ns, &["--interval", "1s", "--gcs-timeout", "2s"])
}

/// Warning events `reason` on the RayCluster, by note.
fn warnings(h: &Harness, reason: &str) -> Vec<String> {
    let api: Api<Event> = Api::namespaced(h.client.clone(), &h.ns);
    let list =
        h.rt.block_on(api.list(&ListParams::default()))
            .expect("list events");
    list.items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(NAME))
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.note)
        .collect()
}

/// Managers that ever owned the worker groups, over every recorded state.
fn group_writers(h: &Harness) -> Vec<String> {
    let mut all: Vec<String> = h
        .record()
        .states
        .iter()
        .flat_map(|s| s.group_owners.clone())
        .collect();
    all.sort();
    all.dedup();
    all
}

#[test]
fn central_quick_start_with_kuberay() {
    let Some(mut h) = Harness::start("e2e-kuberay-central", vec![], &[]) else {
        return;
    };
    // raygate iterates every second: a few iterations are seconds, not Ray's 5 s ticks.
    h.settle_for = Duration::from_secs(5);
    let (rc, cm) = central_sample(&h, false);
    // What raygate's mutating webhook returns for the annotated sample (the pure core; the
    // webhook endpoint itself is tested in tests/webhook_api.rs).
    let m = raygate::defaulting::mutation(&rc, &Default::default());
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    let mut rc = rc;
    json_patch::patch(&mut rc, &m.patch).expect("the webhook's patch applies");
    assert_eq!(rc["spec"]["enableInTreeAutoscaling"], false);
    assert_eq!(
        rc["spec"]["headGroupSpec"]["rayStartParams"]["no-monitor"],
        "true"
    );
    let ctl = controller(&h);
    h.create(&rc, &cm);
    h.phase("RayCluster created (central mode), raygate autoscale run started");
    let (head, driver, mut gcs) = h.head();
    h.phase("head Pod Running, GCS up");

    // KubeRay's head Pod for in-tree autoscaling off: no autoscaler container, no v2 env, the
    // generated `ray start` with the no-monitor the webhook added.
    let procs = h.kubelet.processes();
    let containers: Vec<&str> = procs
        .iter()
        .filter(|p| p.pod == head)
        .map(|p| p.container.as_str())
        .collect();
    assert_eq!(containers, ["ray-head"], "no autoscaler container");
    let ray_head = procs.iter().find(|p| p.pod == head).expect("ray-head ran");
    let cmd = ray_head.argv.join(" ");
    assert!(cmd.contains("ray start --head"), "{cmd}");
    assert!(cmd.contains("--no-monitor"), "Ray's monitor off: {cmd}");
    let head_pod = h.rt.block_on(h.pods.get(&head)).expect("head Pod");
    let env: Vec<String> = head_pod.spec.as_ref().unwrap().containers[0]
        .env
        .iter()
        .flatten()
        .map(|e| e.name.clone())
        .collect();
    assert!(
        !env.iter().any(|e| e == "RAY_enable_autoscaler_v2"),
        "KubeRay sets no v2 env with in-tree autoscaling off: {env:?}"
    );

    let q = h.quick_start(&driver, &mut gcs, &head);
    eprintln!("quick start phases: {:#?}", q.phases);

    let p = Proofs { h: &h };
    let seen = p.ray_autoscaler_processes();
    assert!(seen.is_empty(), "a Ray autoscaler process ran: {seen:#?}");
    let changes = p.only_manager_wrote_groups(FIELD_MANAGER);
    eprintln!("RayCluster changes: {changes:#?}");
    let deletions = p.deletions_only_as_named();
    assert_eq!(
        deletions.iter().map(|d| d.pod.clone()).collect::<Vec<_>>(),
        vec![q.pod1.clone(), q.pod2.clone()],
        "exactly the two workers were deleted, in order"
    );
    // KubeRay's own view: its scale-down path was the autoscaler's list every time.
    assert!(
        !h.operator
            .log()
            .contains("Number workers to delete randomly"),
        "KubeRay planned a random deletion"
    );
    let log = ctl.log();
    assert!(
        !log.contains("OtherAutoscaler"),
        "the cluster was not skipped: {log}"
    );
    assert!(
        ctl.metrics()
            .contains("raygate_autoscaler_clusters_skipped 0"),
        "{}",
        ctl.metrics()
    );
    h.phase("done");
}

#[test]
fn in_tree_cluster_is_never_touched_even_annotated() {
    let Some(h) = Harness::start("e2e-kuberay-central-neg", vec![], &[]) else {
        return;
    };
    let (mut rc, cm) = central_sample(&h, true);
    rc["spec"]["autoscalerOptions"]["version"] = json!("v2");
    // The webhook keeps the user's `true` and says why raygate will not act.
    let m = raygate::defaulting::mutation(&rc, &Default::default());
    assert!(
        m.warnings.len() == 1 && m.warnings[0].contains("leaves this cluster alone"),
        "{:?}",
        m.warnings
    );
    let ctl = controller(&h);
    h.create(&rc, &cm);
    let (head, driver, mut gcs) = h.head();
    h.phase("head Pod Running with Ray's autoscaler");

    // Ray's autoscaler (not raygate) scales the cluster up.
    h.wait(60, "raygate's OtherAutoscaler warning", || {
        warnings(&h, "OtherAutoscaler")
            .into_iter()
            .find(|n| n.contains("enableInTreeAutoscaling is true"))
    });
    driver.create_actor(kuberay::RAY_NS, "actor1", 1, false);
    let p1 = h.wait(
        120,
        "Ray's autoscaler: replicas 1 and one worker Pod",
        || {
            let w = h.workers();
            (h.rc().0 == 1 && w.len() == 1).then(|| w[0].clone())
        },
    );
    gcs.wait_for(
        Duration::from_secs(180),
        "pod1's Ray node",
        |s| ray::live_workers(s) == vec![p1.clone()],
        &|| h.context(),
    );
    h.phase("Ray's autoscaler scaled up; raygate left it alone");
    let p = Proofs { h: &h };
    assert!(
        p.ray_autoscaler_processes()
            .iter()
            .any(|s| s.starts_with("container ")),
        "Ray's autoscaler is the head's autoscaler container"
    );
    let writers = group_writers(&h);
    assert!(
        !writers.iter().any(|w| w == FIELD_MANAGER),
        "raygate wrote the cluster: {writers:?}"
    );
    assert!(
        ctl.metrics()
            .contains("raygate_autoscaler_clusters_skipped 1"),
        "{}",
        ctl.metrics()
    );

    // Autoscaling switched off in the spec: KubeRay does not recreate the head, whose
    // autoscaler container keeps running, so raygate still leaves the cluster alone.
    let pp = PatchParams {
        field_manager: Some(controlplane::FIELD_MANAGER.into()),
        ..Default::default()
    };
    h.rt.block_on(h.rcs.patch(
        NAME,
        &pp,
        &Patch::Merge(json!({"spec": {"enableInTreeAutoscaling": false,
            "autoscalerOptions": {"version": null}}})),
    ))
    .expect("switch in-tree autoscaling off");
    // (The log, not the Event: kube's event recorder folds a second note of the same reason
    // into the first Event's series.)
    let note = h.wait(
        60,
        "raygate's OtherAutoscaler reason naming the head Pod",
        || {
            ctl.log()
                .lines()
                .find(|l| {
                    l.contains("OtherAutoscaler")
                        && l.contains(&format!("head Pod {head} has container \"autoscaler\""))
                })
                .map(String::from)
        },
    );
    eprintln!("raygate: {note}");
    let before = ctl.iterations();
    h.wait(60, "5 more raygate iterations", || {
        (ctl.iterations() >= before + 5).then_some(())
    });
    let writers = group_writers(&h);
    assert!(
        !writers.iter().any(|w| w == FIELD_MANAGER),
        "raygate wrote the cluster: {writers:?}"
    );
    let log = ctl.log();
    assert!(
        log.contains("OtherAutoscaler") && log.contains("leaves the cluster alone"),
        "{log}"
    );
    h.phase("done");
}
