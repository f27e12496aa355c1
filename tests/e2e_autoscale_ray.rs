//! The seed's quick start through the Kubernetes path: a real kube-apiserver + etcd with
//! KubeRay's CRD, a real Ray 2.60.0 head on 127.0.0.1 named by the RayCluster's
//! `raygate.io/gcs-address` annotation, `raygate autoscale run --reconcile-pods` as the real
//! binary, and the kubelet stand-in (tests/support/kubelet.rs): for every worker Pod the
//! controller creates it binds the Pod to the stand-in node, runs `ray start --address=<head>
//! --block` with the Pod's own environment (`RAY_CLOUD_INSTANCE_ID` from `metadata.name`,
//! `RAY_NODE_TYPE_NAME`) and resource limits, and reports the Pod Running; when the Pod is deleted
//! it stops that worker (SIGTERM to its process group, SIGKILL after the grace period) and
//! removes the Pod object, as a kubelet does.
//!
//! Also checks that the controller reports its decisions to the GCS (`ReportAutoscalingState`),
//! so `ray status` on the head shows the pending Pod and then the active worker.
//!
//! Run alone: `RAYGATE_RAY_VENV=$(scripts/ray-venv.sh) cargo test --test e2e_autoscale_ray`.
//! Skipped without the Ray venv, except under `CI=true` (then it fails).

#[path = "support/controller.rs"]
mod controller;
#[path = "support/controlplane.rs"]
mod controlplane;
#[path = "support/kubelet.rs"]
mod kubelet;
#[path = "support/ray.rs"]
mod ray;

use controller::Controller;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Container, Pod};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams, ResourceExt,
};
use kube::runtime::watcher;
use kubelet::{Image, Kubelet, Options};
use ray::{Gcs, RayCluster, live_workers, poll};
use raygate::quantity::Quantity;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// KubeRay's quick-start sample, as the seed applies it.
const SAMPLE: &str = "samples/ray-cluster.autoscaler.yaml";
const NAME: &str = "raycluster-autoscaler";
const GROUP: &str = "small-group";
/// The Ray namespace of the seed's `detached_actor.py`.
const RAY_NS: &str = "default_namespace";
/// Grace between SIGTERM and SIGKILL when the stand-in stops a worker.
const GRACE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// The kubelet stand-in (tests/support/kubelet.rs) with the Ray venv as the worker image
// ---------------------------------------------------------------------------------------------

/// The stand-in for the cluster's worker Pods. raygate's operator half creates them from the
/// group template, whose container has no `command`, so the "image's entrypoint" is the `ray
/// start` KubeRay would generate for it: `--address` of the head, `--num-cpus`/`--memory` from
/// the container's limits, `--block` (the Ray image's `ray` adapts ports and dirs to one machine).
fn kubelet(ns: &str, gcs: &str, images: &std::path::Path, venv: &std::path::Path) -> Kubelet {
    let gcs = gcs.to_string();
    let entry = move |_: &Pod, c: &Container| -> Result<Vec<String>, String> {
        let limit = |k: &str| -> Result<Option<i128>, String> {
            let Some(q) = c
                .resources
                .as_ref()
                .and_then(|r| r.limits.as_ref())
                .and_then(|l| l.get(k))
            else {
                return Ok(None);
            };
            let parsed: Quantity = q.0.parse().map_err(|e| format!("limits.{k}: {e:?}"))?;
            Ok(parsed.ceil_scaled(0))
        };
        let mut argv = vec![
            "ray".to_string(),
            "start".to_string(),
            format!("--address={gcs}"),
            format!("--num-cpus={}", limit("cpu")?.unwrap_or(0)),
        ];
        if let Some(m) = limit("memory")? {
            argv.push(format!("--memory={m}"));
        }
        argv.push("--block".to_string());
        Ok(argv)
    };
    let mut image = Image::ray(venv, images);
    image.entrypoint = Some(Arc::new(entry));
    let mut o = Options::new(ns);
    o.selector = Some(format!("ray.io/cluster={NAME},ray.io/node-type=worker"));
    o.images = vec![(String::new(), image)];
    o.hold = true;
    o.max_grace = GRACE;
    Kubelet::start(o)
}

// ---------------------------------------------------------------------------------------------
// The controller and the API objects
// ---------------------------------------------------------------------------------------------

/// The first worker group of the RayCluster: (replicas, workersToDelete).
fn group_state(o: &DynamicObject) -> (u64, Vec<String>) {
    let g = &o.data["spec"]["workerGroupSpecs"][0];
    (
        g["replicas"].as_u64().unwrap_or(0),
        controller::workers_to_delete(g),
    )
}

/// Every (replicas, workersToDelete) the RayCluster went through, from a watch.
type History = Arc<Mutex<Vec<(u64, Vec<String>)>>>;

fn record_history(rt: &tokio::runtime::Runtime, api: Api<DynamicObject>) -> History {
    let hist: History = Arc::default();
    let h2 = hist.clone();
    let cfg = watcher::Config::default().fields(&format!("metadata.name={NAME}"));
    rt.spawn(async move {
        let mut s = std::pin::pin!(watcher::watcher(api, cfg));
        while let Some(ev) = s.next().await {
            if let Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) = ev
                && let Ok(mut h) = h2.lock()
            {
                h.push(group_state(&o));
            }
        }
    });
    hist
}

/// Live (not terminating) worker Pods of the cluster, by name.
fn worker_pods(rt: &tokio::runtime::Runtime, api: &Api<Pod>) -> Vec<Pod> {
    let lp = ListParams::default().labels(&format!("ray.io/cluster={NAME}"));
    let mut v = rt.block_on(api.list(&lp)).expect("list pods").items;
    v.retain(|p| p.metadata.deletion_timestamp.is_none());
    v.sort_by_key(ResourceExt::name_any);
    v
}

fn names(pods: &[Pod]) -> Vec<String> {
    pods.iter().map(ResourceExt::name_any).collect()
}

/// The lines of one section of `ray status` (`Active:`, `Idle:`, `Pending:`).
fn section<'a>(status: &'a str, title: &str) -> Vec<&'a str> {
    status
        .lines()
        .skip_while(|l| l.trim() != title)
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .collect()
}

/// What the steps of the scenario look at.
struct Ctx<'a> {
    rt: &'a tokio::runtime::Runtime,
    ray: &'a RayCluster,
    ctl: &'a Controller,
    kubelet: &'a Kubelet,
    rcs: Api<DynamicObject>,
    pods: Api<Pod>,
    history: History,
}

impl Ctx<'_> {
    fn context(&self) -> String {
        format!(
            "--- kubelet stand-in ---\n{}\n{}",
            self.kubelet.journal().join("\n"),
            self.ray.logs()
        )
    }

    /// Polls `f` every 250 ms for at most `secs`; panics naming `what` otherwise.
    fn wait<T>(&self, secs: u64, what: &str, f: impl FnMut() -> Option<T>) -> T {
        poll(Duration::from_secs(secs), Duration::from_millis(250), f).unwrap_or_else(|| {
            panic!(
                "timed out after {secs} s waiting for {what}\n{}",
                self.context()
            )
        })
    }

    /// (replicas, workersToDelete) of the RayCluster now.
    fn rc(&self) -> (u64, Vec<String>) {
        group_state(
            &self
                .rt
                .block_on(self.rcs.get(NAME))
                .expect("get RayCluster"),
        )
    }

    /// Names of the live (not terminating) worker Pods.
    fn pods(&self) -> Vec<String> {
        names(&worker_pods(self.rt, &self.pods))
    }

    /// After `pod`'s Ray node went idle: `replicas` = what is `left`, with exactly `pod` in
    /// `workersToDelete`, was written; the Pod is deleted, its worker stopped by the kubelet and
    /// its Ray node gone; then the list is cleared.
    fn scaled_down(&self, gcs: &mut Gcs, pod: &str, left: &[String]) {
        let replicas = left.len() as u64;
        self.wait(60, &format!("{pod} deleted and its Ray node gone"), || {
            (self.pods() == left && live_workers(&gcs.snapshot()) == left).then_some(())
        });
        self.wait(30, "workersToDelete cleared", || {
            (self.rc() == (replicas, vec![])).then_some(())
        });
        let h = self.history.lock().unwrap().clone();
        assert!(
            h.contains(&(replicas, vec![pod.to_string()])),
            "replicas {replicas} with exactly {pod} in workersToDelete: {h:?}"
        );
        // The stand-in journals the stop once the worker's process group has exited, which can
        // come after Ray already lists the node as dead and the list was cleared.
        self.wait(30, &format!("the kubelet stand-in stopped {pod}"), || {
            self.kubelet
                .journal()
                .iter()
                .any(|l| l.starts_with(&format!("stopped {pod} ")) && l.contains("Pod deleted"))
                .then_some(())
        });
    }

    /// Waits until the controller has run `n` more iterations.
    fn iterations(&self, n: u64) {
        let start = self.ctl.iterations();
        self.wait(60, &format!("{n} more controller iterations"), || {
            (self.ctl.iterations() >= start + n).then_some(())
        });
    }
}

#[test]
fn seed_quick_start_through_kubernetes_pods_on_a_real_ray_head() {
    let t0 = std::time::Instant::now();
    let phase = |what: &str| eprintln!("[{:>5.1} s] {what}", t0.elapsed().as_secs_f64());
    let Some(ray) = RayCluster::start_head() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let _in_rt = rt.enter();
    let cp = controlplane::shared();
    let client = cp.client();
    let ns = rt.block_on(async {
        let mut docs =
            controlplane::yaml_docs(&controlplane::kuberay_path("crd/ray.io_rayclusters.yaml"));
        controlplane::install_crd(&client, docs.remove(0)).await;
        let ns = controlplane::create_namespace(&client, "e2e-autoscale-ray").await;
        kubelet::default_service_account(&client, &ns).await;
        ns
    });
    let gvk = GroupVersionKind::gvk("ray.io", "v1", "RayCluster");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "rayclusters");
    let rcs: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);

    // KubeRay's quick-start sample as is, but for the GCS address of our head, a 5 s idle
    // timeout (the sample's 60 s would only make the test slower) and central mode (annotated,
    // KubeRay's in-tree autoscaler off).
    let mut rc = controlplane::yaml_docs(&controlplane::kuberay_path(SAMPLE)).remove(0);
    assert_eq!(rc["metadata"]["name"], NAME);
    rc["metadata"]["annotations"] = json!({"raygate.io/gcs-address": ray.gcs_address(),
        "raygate.io/autoscaler": "central"});
    rc["spec"]["enableInTreeAutoscaling"] = json!(false);
    rc["spec"]["autoscalerOptions"]["idleTimeoutSeconds"] = json!(5);
    let rc: DynamicObject = serde_json::from_value(rc).expect("RayCluster");
    rt.block_on(rcs.create(&PostParams::default(), &rc))
        .expect("create RayCluster");
    let history = record_history(&rt, rcs.clone());

    // Declared after `ray`: dropped (its workers stopped) before the head goes.
    let images = tempfile::tempdir().expect("images dir");
    let mut kubelet = kubelet(&ns, &ray.gcs_address(), images.path(), &ray.venv);
    // The deployed defaults (interval 1 s, GCS timeout 2 s) and the operator half.
    let ctl = Controller::start(
        &ns,
        &[
            "--reconcile-pods",
            "--interval",
            "1s",
            "--gcs-timeout",
            "2s",
        ],
    );
    let mut gcs = Gcs::connect(&ray);
    phase("Ray head, control plane, RayCluster and controller up");
    let cx = Ctx {
        rt: &rt,
        ray: &ray,
        ctl: &ctl,
        kubelet: &kubelet,
        rcs,
        pods,
        history,
    };

    // The controller reaches the head and reports; no demand, no pod.
    cx.wait(60, "the controller's first ReportAutoscalingState", || {
        gcs.reported().filter(|s| s.autoscaler_state_version > 0)
    });
    cx.iterations(3);
    assert_eq!(cx.rc(), (0, vec![]));
    assert!(cx.pods().is_empty());

    phase("the controller reports to the GCS");

    // actor1 → replicas 1 and one Pod, which the kubelet keeps Pending for now.
    ray.create_actor(RAY_NS, "actor1", 1, false);
    let pod1 = cx.wait(60, "replicas 1 and one worker Pod", || {
        let p = worker_pods(cx.rt, &cx.pods);
        (cx.rc().0 == 1 && p.len() == 1).then(|| p[0].clone())
    });
    let pod1_name = pod1.name_any();
    assert!(
        pod1_name.starts_with("raycluster-autoscaler-small-group-worker-"),
        "{pod1_name}"
    );
    let labels = pod1.labels();
    assert_eq!(labels.get("ray.io/group").map(String::as_str), Some(GROUP));
    assert_eq!(
        labels.get("ray.io/node-type").map(String::as_str),
        Some("worker")
    );

    // What raygate reported is what `ray status` shows: the Pod waiting, under Pending.
    let pending_line = format!(" {pod1_name}: {GROUP}, allocated: pod is pending");
    let reported = cx.wait(30, "the Pending Pod reported to the GCS", || {
        gcs.reported().filter(|s| {
            s.pending_instances
                .iter()
                .any(|p| p.instance_id == pod1_name && p.ray_node_type_name == GROUP)
        })
    });
    assert!(
        reported.infeasible_resource_requests.is_empty(),
        "{reported:?}"
    );
    let status = ray.ray_status();
    assert!(
        section(&status, "Pending:").contains(&pending_line.as_str()),
        "`ray status` must show {pending_line:?}:\n{status}"
    );
    eprintln!("`ray status` while {pod1_name} is Pending:\n{status}");
    // Still one Pod while it is pending (the demand is covered by it).
    cx.iterations(3);
    assert_eq!(cx.pods(), vec![pod1_name.clone()]);

    // The kubelet starts it: the Ray node is the Pod (instance id = Pod name, type = group).
    kubelet.release();
    let s = gcs.wait_for(
        Duration::from_secs(120),
        "pod1's Ray node",
        |s| live_workers(s) == vec![pod1_name.clone()],
        &|| cx.context(),
    );
    let node = s.node_for_pod(&pod1_name).expect("pod1 node");
    assert_eq!(node.node_type, GROUP);
    assert_eq!(node.ip, "127.0.0.1");
    assert_eq!(node.total.get("CPU"), Some(&1.0));
    assert_eq!(node.total.get("memory"), Some(&1073741824.0), "1Gi limit");
    assert!(ray.actor_alive(RAY_NS, "actor1"));
    // `ray status`: the worker is active and no longer pending.
    let status = cx.wait(60, "`ray status` with the worker active", || {
        let st = ray.ray_status();
        (section(&st, "Active:").contains(&format!(" 1 {GROUP}").as_str())
            && !st.contains(&pod1_name))
        .then_some(st)
    });
    assert!(status.contains("Autoscaler status"), "{status}");
    eprintln!("`ray status` once its worker runs actor1:\n{status}");

    phase("actor1 ALIVE on pod1's worker");

    // actor2 → a second Pod and worker.
    ray.create_actor(RAY_NS, "actor2", 1, false);
    let two = cx.wait(60, "replicas 2 and two worker Pods", || {
        let p = cx.pods();
        (cx.rc().0 == 2 && p.len() == 2).then_some(p)
    });
    assert!(two.contains(&pod1_name), "{two:?}");
    let pod2_name = two
        .iter()
        .find(|n| **n != pod1_name)
        .cloned()
        .expect("pod2");
    gcs.wait_for(
        Duration::from_secs(120),
        "two Ray workers",
        |s| live_workers(s) == two,
        &|| cx.context(),
    );
    assert!(ray.actor_alive(RAY_NS, "actor2"));

    phase("actor2 ALIVE on pod2's worker");

    // Kill actor1 → pod1 idles past 5 s → drained, replicas 1 with workersToDelete [pod1] →
    // Pod deleted (its worker stopped by the kubelet) → list cleared.
    ray.kill_actor(RAY_NS, "actor1");
    cx.scaled_down(&mut gcs, &pod1_name, std::slice::from_ref(&pod2_name));
    assert!(ray.actor_alive(RAY_NS, "actor2"), "actor2 survives");
    // It stays at one past another idle timeout: the busy node is never drained.
    cx.iterations(8);
    assert_eq!(cx.rc(), (1, vec![]));
    assert_eq!(cx.pods(), vec![pod2_name.clone()]);

    phase("scaled down to 1");

    // Kill actor2 → zero.
    ray.kill_actor(RAY_NS, "actor2");
    cx.scaled_down(&mut gcs, &pod2_name, &[]);
    phase("scaled down to 0");

    // A 2-CPU actor fits no worker: reported infeasible, no Pod.
    ray.create_actor(RAY_NS, "big", 2, false);
    cx.wait(60, "the infeasible {CPU: 2} reported", || {
        gcs.reported().filter(|s| {
            s.infeasible_resource_requests
                .iter()
                .any(|r| r.resources_bundle.get("CPU") == Some(&2.0))
        })
    });
    cx.iterations(3);
    assert!(cx.pods().is_empty());
    assert_eq!(cx.rc().0, 0);

    let h = cx.history.lock().unwrap().clone();
    assert!(h.iter().all(|(r, _)| *r <= 2), "never above 2: {h:?}");
    eprintln!("RayCluster (replicas, workersToDelete) history: {h:?}");

    // Every worker the kubelet started is stopped, its whole process group gone.
    ctl.proc.stop();
    drop(cx);
    let journal = kubelet.journal();
    let nodes = kubelet.shutdown();
    assert_eq!(
        nodes.len(),
        2,
        "exactly one Ray worker per Pod: {journal:?}"
    );
    for n in &nodes {
        assert!(
            n.group_gone(),
            "{} (pid {}) left processes",
            n.name,
            n.pid()
        );
    }
    assert!(
        !journal.iter().any(|l| l.starts_with("error")),
        "{journal:#?}"
    );
    eprintln!("kubelet stand-in:\n{}", journal.join("\n"));
    phase("done");
}
