//! The seed's quick start with KubeRay's real operator (tools/kuberay, ray-operator v1.6.2) on a
//! real kube-apiserver + etcd with KubeRay's v1.7.0 RayCluster CRD, a real Ray 2.60.0 head and
//! workers run by the kubelet stand-in (tests/support/kubelet.rs) from the Pods KubeRay creates,
//! and the autoscaler in the head Pod's `autoscaler` container:
//!
//! * `ray_python_autoscaler_baseline`: Ray's own Python autoscaler (v2), as KubeRay injects it —
//!   proves the harness is faithful, and that the proofs below can fail (here the autoscaler is
//!   Ray's, so they see it).
//! * `raygate_sidecar_quick_start`: raygate's sidecar in that container, switched over as on
//!   KubeRay < 1.7 (only `autoscalerOptions.image`: an image whose `ray` is raygate), with exactly
//!   the RBAC KubeRay creates for its autoscaler; the proofs show that only raygate acted.
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

/// The image the test gives the autoscaler container (`autoscalerOptions.image`): the stand-in
/// maps it to a PATH whose `ray` is the built raygate binary, as the Dockerfile's runtime image
/// links `/usr/local/bin/ray` to raygate.
const RAYGATE_IMAGE: &str = "ghcr.io/raygate/raygate:0.1.0";

#[test]
fn raygate_sidecar_quick_start() {
    let raygate = std::path::Path::new(env!("CARGO_BIN_EXE_raygate"));
    let image_dir = tempfile::tempdir().expect("tempdir");
    let images = vec![(
        RAYGATE_IMAGE.to_string(),
        kubelet::Image::with_ray_program(raygate, image_dir.path()),
    )];
    let Some(h) = Harness::start("e2e-kuberay-sidecar", images, &[]) else {
        return;
    };
    let (mut rc, cm) = h.sample(5);
    // The switch for KubeRay < 1.7 (v1.6.2 here): only the autoscaler container's image. KubeRay
    // still runs its fixed `ray kuberay-autoscaler ...` command in it; that `ray` is raygate.
    // The admin listener on loopback (one machine: no Pod network), through the env KubeRay
    // passes to the container.
    let admin_port = controlplane::pick_port();
    rc["spec"]["autoscalerOptions"]["image"] = json!(RAYGATE_IMAGE);
    rc["spec"]["autoscalerOptions"]["env"] = json!([
        {"name": "RAYGATE_ADMIN_LISTEN", "value": format!("127.0.0.1:{admin_port}")},
    ]);
    h.create(&rc, &cm);
    h.phase("RayCluster created (raygate's image as the autoscaler container)");
    let (head, driver, mut gcs) = h.head();
    h.phase("head Pod Running, GCS up");

    // KubeRay's own autoscaler container, unchanged but for the image: its fixed command line,
    // run by bash, whose `ray` is raygate (bash execs the single command: the container's
    // process is raygate itself).
    let autoscaler = h
        .kubelet
        .processes()
        .into_iter()
        .find(|p| p.pod == head && p.container == "autoscaler")
        .expect("the autoscaler container ran");
    assert_eq!(autoscaler.image, RAYGATE_IMAGE);
    assert_eq!(
        autoscaler.argv,
        [
            "/bin/bash".to_string(),
            "-c".into(),
            "--".into(),
            format!(
                "ray kuberay-autoscaler --cluster-name {} --cluster-namespace {}",
                kuberay::NAME,
                h.ns
            ),
        ],
        "KubeRay v1.6.2's generated autoscaler command"
    );
    let exe = h.wait(30, "the autoscaler process to be raygate", || {
        std::fs::read_link(format!("/proc/{}/exe", autoscaler.pid))
            .ok()
            .filter(|e| e == raygate)
    });
    h.phase(&format!("autoscaler container is {}", exe.display()));

    // Exactly the RBAC KubeRay creates for its autoscaler (ray-operator v1.6.2
    // controllers/ray/common/rbac.go BuildRole): the head Pod's ServiceAccount, bound to one Role
    // with pods get/list/watch/patch, pods/resize patch and rayclusters get/patch; nothing else
    // exists in the namespace (and the test grants nothing cluster-wide). raygate uses less.
    let head_pod = h.rt.block_on(h.pods.get(&head)).expect("head Pod");
    let sa = head_pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .expect("KubeRay sets the head Pod's serviceAccountName");
    assert_eq!(sa, kuberay::NAME, "KubeRay's autoscaler ServiceAccount");
    let (roles, bindings) = h.rt.block_on(async {
        let roles: kube::Api<k8s_openapi::api::rbac::v1::Role> =
            kube::Api::namespaced(h.client.clone(), &h.ns);
        let rbs: kube::Api<k8s_openapi::api::rbac::v1::RoleBinding> =
            kube::Api::namespaced(h.client.clone(), &h.ns);
        let lp = kube::api::ListParams::default();
        (
            roles.list(&lp).await.expect("list Roles").items,
            rbs.list(&lp).await.expect("list RoleBindings").items,
        )
    });
    let rules: Vec<(Vec<String>, Vec<String>, Vec<String>)> = roles
        .iter()
        .flat_map(|r| r.rules.clone().unwrap_or_default())
        .map(|r| {
            (
                r.api_groups.unwrap_or_default(),
                r.resources.unwrap_or_default(),
                r.verbs,
            )
        })
        .collect();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        rules,
        vec![
            (
                s(&[""]),
                s(&["pods"]),
                s(&["get", "list", "watch", "patch"])
            ),
            (s(&[""]), s(&["pods/resize"]), s(&["patch"])),
            (s(&["ray.io"]), s(&["rayclusters"]), s(&["get", "patch"])),
        ],
        "the one Role in the namespace is KubeRay's autoscaler Role: {roles:#?}"
    );
    assert_eq!(bindings.len(), 1, "{bindings:#?}");
    let subjects = bindings[0].subjects.clone().unwrap_or_default();
    assert_eq!(
        (
            subjects.len(),
            subjects[0].name.as_str(),
            bindings[0].role_ref.name.as_str()
        ),
        (
            1,
            sa.as_str(),
            roles[0].metadata.name.as_deref().unwrap_or("")
        ),
        "KubeRay's RoleBinding: {bindings:#?}"
    );

    let q = h.quick_start(&driver, &mut gcs, &head);
    eprintln!("quick start phases: {:#?}", q.phases);

    // Only raygate acted.
    let p = Proofs { h: &h };
    let seen = p.ray_autoscaler_processes();
    assert!(seen.is_empty(), "Ray's autoscaler ran: {seen:#?}");
    let changes = p.only_manager_wrote_groups(raygate::controller::cluster::FIELD_MANAGER);
    eprintln!("RayCluster changes: {changes:#?}");
    let deletions = p.deletions_only_as_named();
    assert_eq!(
        deletions.iter().map(|d| d.pod.clone()).collect::<Vec<_>>(),
        vec![q.pod1.clone(), q.pod2.clone()],
        "exactly the two workers raygate named were deleted, in order"
    );

    // raygate's sidecar, as its own admin endpoint reports it: one cluster, the scale-ups and
    // idle terminations applied, each after an accepted drain.
    let (code, metrics) =
        controlplane::plain_get(admin_port, "/metrics").expect("the sidecar's /metrics");
    assert_eq!(code, 200, "{metrics}");
    let value = |line: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(line))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {line} in\n{metrics}"))
    };
    assert_eq!(value("raygate_autoscaler_clusters_watched "), 1.0);
    assert!(value("raygate_autoscaler_drains_total{kind=\"accepted\"}") >= 2.0);
    let log = h.kubelet.log(&head, "autoscaler");
    assert!(
        log.contains("raygate autoscaler sidecar started"),
        "the sidecar's log:\n{log}"
    );
    h.phase("done");
}
