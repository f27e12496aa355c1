//! The seed's quick start with KubeRay's real operator (tools/kuberay, ray-operator v1.6.2) on a
//! real kube-apiserver + etcd with KubeRay's v1.7.0 RayCluster CRD, a real Ray 2.60.0 head and
//! workers run by the kubelet stand-in (tests/support/kubelet.rs) from the Pods KubeRay creates,
//! and the autoscaler in the head Pod's `autoscaler` container:
//!
//! * `ray_python_autoscaler_baseline`: Ray's own Python autoscaler (v2), as KubeRay injects it —
//!   proves the harness is faithful, and that the proofs below can fail (here the autoscaler is
//!   Ray's, so they see it).
//!
//! Run alone: `cargo test --test e2e_kuberay_sidecar` (the Ray venv, kube-apiserver/etcd and the
//! KubeRay binary come from scripts/test.sh's env vars, or are built on first use).

#[path = "support/controlplane.rs"]
mod controlplane;
#[path = "support/kubelet.rs"]
mod kubelet;
#[path = "support/kuberay.rs"]
mod kuberay;
#[path = "support/ray.rs"]
mod ray;

use kuberay::{Harness, KUBERAY_MANAGER, Proofs};
use serde_json::json;

#[test]
fn ray_python_autoscaler_baseline() {
    let Some(mut h) = Harness::start("e2e-kuberay-baseline", vec![], &[]) else {
        return;
    };
    // Ray's autoscaler v2 writes workersToDelete with a scale request and only clears it with
    // its next one (cloud_provider.py `_submit_scale_request`), so the list outlives the Pod.
    h.clears_workers_to_delete = false;
    let (mut rc, cm) = h.sample(5);
    rc["spec"]["autoscalerOptions"]["version"] = json!("v2");
    h.create(&rc, &cm);
    h.phase("RayCluster created (Ray's autoscaler v2 in the head Pod)");
    let (head, driver, mut gcs) = h.head();
    h.phase("head Pod Running, GCS up");

    // KubeRay's head Pod: the generated `ray start`, its autoscaler container running Ray's
    // `ray kuberay-autoscaler`, the v2 env, and the ServiceAccount it made for the autoscaler.
    let procs = h.kubelet.processes();
    let ray_head = procs
        .iter()
        .find(|p| p.pod == head && p.container == "ray-head")
        .expect("the ray-head container ran");
    let cmd = ray_head.argv.join(" ");
    assert!(cmd.contains("ray start --head"), "{cmd}");
    assert!(
        cmd.contains("--no-monitor"),
        "KubeRay disables Ray's monitor: {cmd}"
    );
    assert!(
        cmd.contains(&format!("--port={}", h.gcs_port)),
        "the head's rayStartParams port: {cmd}"
    );
    let autoscaler = procs
        .iter()
        .find(|p| p.pod == head && p.container == "autoscaler")
        .expect("the autoscaler container ran");
    assert_eq!(
        autoscaler.argv[..3],
        ["/bin/bash", "-c", "--"],
        "{:?}",
        autoscaler.argv
    );
    assert!(
        autoscaler.argv[3].starts_with(&format!(
            "ray kuberay-autoscaler --cluster-name {} --cluster-namespace {}",
            kuberay::NAME,
            h.ns
        )),
        "$(RAY_CLUSTER_NAME) and $(RAY_CLUSTER_NAMESPACE) expanded: {:?}",
        autoscaler.argv
    );

    let q = h.quick_start(&driver, &mut gcs, &head);
    eprintln!("quick start phases: {:#?}", q.phases);

    // The proofs see Ray's autoscaler: they can fail.
    let p = Proofs { h: &h };
    let seen = p.ray_autoscaler_processes();
    assert!(
        seen.iter().any(|s| s.starts_with("container "))
            && seen.iter().any(|s| s.starts_with("process ")),
        "Ray's autoscaler ran as the head's autoscaler container and was seen running: {seen:#?}"
    );
    let changes = h.changes();
    let owners: Vec<&Vec<String>> = changes[1..].iter().map(|c| &c.group_owners).collect();
    assert!(
        owners
            .iter()
            .all(|o| o.len() == 1 && o[0] != KUBERAY_MANAGER),
        "Ray's autoscaler, not KubeRay, wrote every change: {changes:#?}"
    );
    eprintln!("RayCluster changes: {changes:#?}");
    let deletions = p.deletions_only_as_named();
    assert_eq!(
        deletions.iter().map(|d| d.pod.clone()).collect::<Vec<_>>(),
        vec![q.pod1.clone(), q.pod2.clone()],
        "exactly the two workers were deleted, in order"
    );
    eprintln!("kubelet stand-in:\n{}", h.kubelet.journal().join("\n"));
    h.phase("done");
}
