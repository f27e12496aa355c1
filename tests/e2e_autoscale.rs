//! `raygate autoscale run` against a real kube-apiserver + etcd with KubeRay's CRD, a stand-in
//! GCS (tests/support/fake_gcs.rs) driven by the test, and the controller as the real binary.
//!
//! Run alone: `cargo test --test e2e_autoscale`.

#[path = "support/controller.rs"]
mod controller;
#[path = "support/controlplane.rs"]
mod controlplane;
#[path = "support/fake_gcs.rs"]
mod fake_gcs;

use controller::Controller;
use fake_gcs::{FakeGcs, FakeNode};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube::runtime::watcher;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const GROUP: &str = "small-group";

fn rayclusters(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("ray.io", "v1", "RayCluster");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "rayclusters");
    Api::namespaced_with(client.clone(), ns, &ar)
}

/// Installs KubeRay's CRD once per test binary (tests run in parallel; concurrent replaces of
/// the same CRD would conflict).
async fn install_kuberay_crd(client: &kube::Client) {
    static ONCE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    ONCE.get_or_init(|| async {
        let mut docs =
            controlplane::yaml_docs(&controlplane::kuberay_path("crd/ray.io_rayclusters.yaml"));
        controlplane::install_crd(client, docs.remove(0)).await;
    })
    .await;
}

/// The quick-start shape: a head with no CPUs, `small-group` of 1-CPU workers, 0..=max.
fn raycluster(name: &str, gcs: &str, max: u32) -> Value {
    json!({
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": name, "annotations": {"raygate.io/gcs-address": gcs}},
        "spec": {
            "rayVersion": "2.46.0",
            "enableInTreeAutoscaling": true,
            "autoscalerOptions": {"idleTimeoutSeconds": 5},
            "headGroupSpec": {
                "rayStartParams": {"num-cpus": "0"},
                "template": {"spec": {"containers": [{
                    "name": "ray-head", "image": "rayproject/ray:2.46.0",
                    "resources": {"limits": {"cpu": "1", "memory": "2G"},
                                  "requests": {"cpu": "1", "memory": "2G"}},
                    "ports": [{"containerPort": 6379, "name": "gcs-server"}]
                }]}}
            },
            "workerGroupSpecs": [{
                "groupName": GROUP,
                "replicas": 0, "minReplicas": 0, "maxReplicas": max,
                "rayStartParams": {},
                "template": {
                    "metadata": {"labels": {"team": "e2e"}},
                    "spec": {"containers": [{
                        "name": "ray-worker", "image": "rayproject/ray:2.46.0",
                        "resources": {"limits": {"cpu": "1", "memory": "1G"},
                                      "requests": {"cpu": "1", "memory": "1G"}}
                    }]}
                }
            }]
        }
    })
}

/// Every (replicas, workersToDelete, maxReplicas) the RayCluster went through, from a watch.
type History = Arc<Mutex<Vec<(u64, Vec<String>, u64)>>>;

fn record_history(api: Api<DynamicObject>, name: &str) -> (History, tokio::task::JoinHandle<()>) {
    let hist: History = Arc::default();
    let h2 = hist.clone();
    let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let task = tokio::spawn(async move {
        let mut s = std::pin::pin!(watcher::watcher(api, cfg));
        while let Some(ev) = s.next().await {
            if let Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) = ev {
                let g = &o.data["spec"]["workerGroupSpecs"][0];
                let w = controller::workers_to_delete(g);
                h2.lock().unwrap().push((
                    g["replicas"].as_u64().unwrap_or(0),
                    w,
                    g["maxReplicas"].as_u64().unwrap_or(0),
                ));
            }
        }
    });
    (hist, task)
}

/// Polls `f` every 100 ms until it returns `Some`, or fails after `secs` with `what` and the
/// controller log.
async fn wait_for<T, F, Fut>(ctl: &Controller, secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out after {secs} s waiting for {what}\n--- controller log ---\n{}",
                ctl.log()
            );
        }
        if let Some(st) = ctl.proc.exited() {
            panic!("controller exited ({st})\n{}", ctl.log());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn worker_pods(pods: &Api<Pod>, cluster: &str) -> Vec<Pod> {
    let lp = ListParams::default().labels(&format!("ray.io/cluster={cluster}"));
    let mut v: Vec<Pod> = pods.list(&lp).await.expect("list pods").items;
    v.retain(|p| p.metadata.deletion_timestamp.is_none());
    v.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    v
}

fn group_of(o: &DynamicObject) -> Value {
    o.data["spec"]["workerGroupSpecs"][0].clone()
}

async fn events(client: &kube::Client, ns: &str) -> Vec<(String, String, String)> {
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), ns);
    api.list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .map(|e| {
            (
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.note.unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scales_up_creates_pods_then_drains_and_deletes_idle_ones() {
    let cp = controlplane::shared();
    let client = cp.client();
    install_kuberay_crd(&client).await;
    let ns = controlplane::create_namespace(&client, "e2e-autoscale-updown").await;
    let gcs = FakeGcs::start().await;
    let api = rayclusters(&client, &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let name = "quickstart";
    let rc: DynamicObject =
        serde_json::from_value(raycluster(name, &gcs.address(), 10)).expect("rc");
    api.create(&PostParams::default(), &rc)
        .await
        .expect("create RayCluster");
    let (hist, watch_task) = record_history(api.clone(), name);

    // Demand for 3 CPUs (three 1-CPU actors) before the controller starts.
    gcs.set(|s| s.demands = vec![(BTreeMap::from([("CPU".into(), 1.0)]), 3)]);
    let ctl = Controller::start(&ns, &["--reconcile-pods"]);

    wait_for(&ctl, 60, "replicas 3", || async {
        let o = api.get(name).await.ok()?;
        (group_of(&o)["replicas"] == json!(3)).then_some(())
    })
    .await;
    let created = wait_for(&ctl, 30, "3 worker pods", || async {
        let v = worker_pods(&pods, name).await;
        (v.len() == 3).then_some(v)
    })
    .await;
    let uid = api.get(name).await.unwrap().metadata.uid.unwrap();
    for p in &created {
        let l = p.metadata.labels.clone().unwrap_or_default();
        let n = p.metadata.name.clone().unwrap();
        assert!(n.starts_with("quickstart-small-group-worker-"), "{n}");
        for (k, v) in [
            ("ray.io/cluster", name),
            ("ray.io/group", GROUP),
            ("ray.io/node-type", "worker"),
            ("ray.io/is-ray-node", "yes"),
            ("ray.io/identifier", "quickstart-worker"),
            ("app.kubernetes.io/name", "kuberay"),
            ("team", "e2e"),
        ] {
            assert_eq!(
                l.get(k).map(String::as_str),
                Some(v),
                "{n} label {k}: {l:?}"
            );
        }
        assert!(l.contains_key("app.kubernetes.io/created-by"), "{l:?}");
        let owner = &p.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("RayCluster", uid.as_str())
        );
    }
    // Still exactly 3 a moment later (no duplicate creations from a lagging cache).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(worker_pods(&pods, name).await.len(), 3);
    assert!(
        events(&client, &ns)
            .await
            .iter()
            .any(|(t, r, n)| t == "Normal"
                && r == "ScaledUp"
                && n.contains("replicas 0 -> 3")
                && n.contains("3x {CPU: 1.0}")),
        "{:?}",
        events(&client, &ns).await
    );

    // The actors run: the three nodes join Ray; then two of them go idle past the timeout.
    let names: Vec<String> = created
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    gcs.set(|s| {
        s.demands.clear();
        s.nodes.push(FakeNode::worker(&names[0], GROUP, 1.0, 0));
        s.nodes.push(FakeNode::worker(&names[1], GROUP, 1.0, 0));
        s.nodes.push(FakeNode::worker(&names[2], GROUP, 1.0, 0));
    });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        group_of(&api.get(name).await.unwrap())["replicas"],
        json!(3),
        "busy nodes are kept"
    );
    gcs.set(|s| {
        for n in s.nodes.iter_mut().filter(|n| n.instance_id != names[0]) {
            if !n.head {
                *n = FakeNode::worker(&n.instance_id, GROUP, 1.0, 30_000);
            }
        }
    });
    let mut idle = vec![names[1].clone(), names[2].clone()];
    idle.sort();
    wait_for(&ctl, 30, "the two idle nodes drained", || async {
        let mut d = gcs.with(|s| s.drained.clone());
        d.sort();
        (d == idle).then_some(())
    })
    .await;
    wait_for(&ctl, 30, "the idle pods deleted", || async {
        let v = worker_pods(&pods, name).await;
        (v.len() == 1 && v[0].metadata.name.as_deref() == Some(names[0].as_str())).then_some(())
    })
    .await;
    // Ray forgets the stopped nodes.
    gcs.set(|s| s.nodes.retain(|n| !idle.contains(&n.instance_id)));
    wait_for(&ctl, 30, "workersToDelete cleared", || async {
        let g = group_of(&api.get(name).await.ok()?);
        (g["replicas"] == json!(1) && g["scaleStrategy"]["workersToDelete"] == json!([]))
            .then_some(())
    })
    .await;
    let h = hist.lock().unwrap().clone();
    assert!(
        h.iter().any(|(r, w, _)| {
            let mut w = w.clone();
            w.sort();
            *r == 1 && w == idle
        }),
        "replicas 1 with exactly the idle pods in workersToDelete must have been written: {h:?}"
    );
    assert!(
        h.iter().all(|(r, _, _)| *r <= 3),
        "never above the demand: {h:?}"
    );
    let after_up = h.iter().position(|(r, _, _)| *r == 3).unwrap();
    assert!(
        h[after_up..].iter().all(|(r, _, _)| *r >= 1),
        "never below the busy node: {h:?}"
    );
    // The busy pod is untouched; a scale-down event names the pods.
    assert_eq!(worker_pods(&pods, name).await.len(), 1);
    let ev = events(&client, &ns).await;
    assert!(
        ev.iter().any(|(t, r, n)| t == "Normal"
            && r == "ScaledDown"
            && n.contains(&idle[0])
            && n.contains(&idle[1])),
        "{ev:?}"
    );
    let m = ctl.metrics();
    assert!(m.contains("raygate_autoscaler_clusters_watched 1"), "{m}");
    assert!(
        m.contains("raygate_autoscaler_decisions_total{kind=\"scale_up\"}"),
        "{m}"
    );
    watch_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_spec_update_is_never_overwritten() {
    let cp = controlplane::shared();
    let client = cp.client();
    install_kuberay_crd(&client).await;
    let ns = controlplane::create_namespace(&client, "e2e-autoscale-conflict").await;
    let gcs = FakeGcs::start().await;
    let api = rayclusters(&client, &ns);
    let name = "contended";
    let rc: DynamicObject =
        serde_json::from_value(raycluster(name, &gcs.address(), 10)).expect("rc");
    api.create(&PostParams::default(), &rc)
        .await
        .expect("create RayCluster");
    let (hist, watch_task) = record_history(api.clone(), name);
    // Demand for 5 workers; the controller's next GCS read is held until we release it, so it
    // plans from the RayCluster it read before another writer lowers maxReplicas to 2.
    gcs.set(|s| {
        s.demands = vec![(BTreeMap::from([("CPU".into(), 1.0)]), 5)];
        s.hold_next = true;
    });
    let ctl = Controller::start(&ns, &[]);
    tokio::time::timeout(Duration::from_secs(60), gcs.held_call_arrived())
        .await
        .unwrap_or_else(|_| panic!("controller never asked the GCS\n{}", ctl.log()));
    let other = json!({"spec": {"workerGroupSpecs": [{
        "groupName": GROUP, "replicas": 0, "minReplicas": 0, "maxReplicas": 2,
        "rayStartParams": {},
        "template": {"metadata": {"labels": {"team": "e2e", "edited-by": "other-writer"}},
            "spec": {"containers": [{"name": "ray-worker", "image": "rayproject/ray:2.46.0",
                "resources": {"limits": {"cpu": "1", "memory": "1G"},
                              "requests": {"cpu": "1", "memory": "1G"}}}]}}
    }]}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&other))
        .await
        .expect("the other writer's update");
    gcs.release();
    wait_for(
        &ctl,
        30,
        "replicas 2 (the other writer's maxReplicas)",
        || async {
            let g = group_of(&api.get(name).await.ok()?);
            (g["replicas"] == json!(2)).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let g = group_of(&api.get(name).await.unwrap());
    assert_eq!(g["maxReplicas"], json!(2), "{g}");
    assert_eq!(g["replicas"], json!(2), "{g}");
    assert_eq!(
        g["template"]["metadata"]["labels"]["edited-by"],
        json!("other-writer"),
        "{g}"
    );
    let h = hist.lock().unwrap().clone();
    assert!(
        h.iter().all(|(r, _, _)| *r <= 2),
        "a patch planned on the stale object (replicas 5) must never land: {h:?}"
    );
    // The guard fired: the stale patch was refused and re-planned on fresh state.
    let m = ctl.metrics();
    assert!(
        m.lines()
            .any(|l| l.starts_with("raygate_autoscaler_errors_total{category=\"conflict\"}")),
        "{m}\n{}",
        ctl.log()
    );
    watch_task.abort();
}

async fn create(api: &Api<DynamicObject>, v: Value) {
    let rc: DynamicObject = serde_json::from_value(v).expect("rc");
    api.create(&PostParams::default(), &rc)
        .await
        .expect("create RayCluster");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_are_independent_and_problems_are_reported_as_warnings() {
    let cp = controlplane::shared();
    let client = cp.client();
    install_kuberay_crd(&client).await;
    let ns = controlplane::create_namespace(&client, "e2e-autoscale-isolation").await;
    let api = rayclusters(&client, &ns);
    // A GCS that accepts the call and never answers, one that refuses connections, an invalid
    // RayCluster, and a healthy cluster with some infeasible demand.
    let stuck = FakeGcs::start().await;
    stuck.set(|s| s.stuck = true);
    let healthy = FakeGcs::start().await;
    let closed = format!("127.0.0.1:{}", controlplane::pick_port());
    create(&api, raycluster("stuck", &stuck.address(), 10)).await;
    create(&api, raycluster("nogcs", &closed, 10)).await;
    let mut invalid = raycluster("invalid", &healthy.address(), 1);
    invalid["spec"]["workerGroupSpecs"][0]["minReplicas"] = json!(3);
    create(&api, invalid).await;
    create(&api, raycluster("healthy", &healthy.address(), 10)).await;
    // A GCS call may take 60 s here: a design that serialized clusters would stall behind
    // `stuck` for that long.
    let ctl = Controller::start(&ns, &["--gcs-timeout", "60s"]);
    wait_for(&ctl, 30, "controller ready", || async {
        let (code, _) = controlplane::plain_get(ctl.admin_port, "/readyz").ok()?;
        (code == 200).then_some(())
    })
    .await;
    wait_for(&ctl, 30, "the stuck GCS being asked", || async {
        (stuck.with(|s| s.state_calls) > 0).then_some(())
    })
    .await;
    healthy.set(|s| {
        s.demands = vec![
            (BTreeMap::from([("CPU".into(), 1.0)]), 2),
            (BTreeMap::from([("CPU".into(), 2.0)]), 1),
        ]
    });
    wait_for(
        &ctl,
        10,
        "healthy scaled to 2 while stuck hangs",
        || async {
            let o = api.get("healthy").await.ok()?;
            (group_of(&o)["replicas"] == json!(2)).then_some(())
        },
    )
    .await;
    let want = [
        ("InfeasibleDemand", "1x {CPU: 2.0}"),
        ("GcsUnreachable", closed.as_str()),
        ("InvalidRayCluster", "minReplicas"),
    ];
    let ev = wait_for(&ctl, 30, "the three warnings", || async {
        let ev = events(&client, &ns).await;
        want.iter()
            .all(|(r, n)| {
                ev.iter()
                    .any(|(t, rr, nn)| t == "Warning" && rr == r && nn.contains(n))
            })
            .then_some(ev)
    })
    .await;
    // One warning per problem, not one per iteration.
    for (r, _) in want {
        let n = ev.iter().filter(|(_, rr, _)| rr == r).count();
        assert_eq!(n, 1, "{r}: {ev:?}");
    }
    for c in ["stuck", "nogcs", "invalid"] {
        let g = group_of(&api.get(c).await.unwrap());
        assert_eq!(g["replicas"], json!(0), "{c} must not be scaled: {g}");
    }
    let m = ctl.metrics();
    assert!(m.contains("raygate_autoscaler_clusters_watched 4"), "{m}");
    for c in ["gcs", "validation"] {
        assert!(
            m.contains(&format!(
                "raygate_autoscaler_errors_total{{category=\"{c}\"}}"
            )),
            "{c}: {m}"
        );
    }
}

fn leader_gauge(ctl: &Controller) -> Option<i64> {
    ctl.metrics()
        .lines()
        .find_map(|l| l.strip_prefix("raygate_autoscaler_leader "))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_lease_holder_writes_and_the_other_takes_over_within_15_s() {
    let cp = controlplane::shared();
    let client = cp.client();
    install_kuberay_crd(&client).await;
    let ns = controlplane::create_namespace(&client, "e2e-autoscale-ha").await;
    let gcs = FakeGcs::start().await;
    let api = rayclusters(&client, &ns);
    let name = "ha";
    create(&api, raycluster(name, &gcs.address(), 10)).await;
    let (hist, watch_task) = record_history(api.clone(), name);
    // Default lease timings (10 s lease, 7 s renew deadline, 2 s retry).
    let a = Controller::start(&ns, &["--identity", "replica-a"]);
    wait_for(&a, 30, "replica-a leads", || async {
        (leader_gauge(&a) == Some(1)).then_some(())
    })
    .await;
    let b = Controller::start(&ns, &["--identity", "replica-b"]);
    wait_for(&b, 30, "replica-b ready", || async {
        let (code, _) = controlplane::plain_get(b.admin_port, "/readyz").ok()?;
        (code == 200).then_some(())
    })
    .await;
    gcs.set(|s| s.demands = vec![(BTreeMap::from([("CPU".into(), 1.0)]), 2)]);
    wait_for(&a, 30, "replicas 2", || async {
        let o = api.get(name).await.ok()?;
        (group_of(&o)["replicas"] == json!(2)).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(leader_gauge(&b), Some(0), "{}", b.log());
    assert!(a.log().contains("replicas 0 -> 2"), "{}", a.log());
    assert!(!b.log().contains("replicas 0 -> 2"), "{}", b.log());
    assert!(
        !b.metrics().contains("raygate_autoscaler_decisions_total{"),
        "the standby must not write"
    );

    // Kill the holder (SIGKILL: no lease release); more demand arrives meanwhile.
    // SAFETY: plain kill(2) of the child we spawned.
    unsafe {
        libc::kill(a.proc.pid() as i32, libc::SIGKILL);
    }
    let killed = Instant::now();
    gcs.set(|s| s.demands = vec![(BTreeMap::from([("CPU".into(), 1.0)]), 4)]);
    wait_for(&b, 30, "replica-b scales to 4", || async {
        let o = api.get(name).await.ok()?;
        (group_of(&o)["replicas"] == json!(4)).then_some(())
    })
    .await;
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(15), "failover took {took:?}");
    assert!(b.log().contains("replicas 2 -> 4"), "{}", b.log());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let h = hist.lock().unwrap().clone();
    assert!(
        h.iter().all(|(r, _, _)| *r <= 4),
        "no double scaling: {h:?}"
    );
    assert_eq!(
        group_of(&api.get(name).await.unwrap())["replicas"],
        json!(4)
    );
    eprintln!("failover: replica-b patched {took:?} after replica-a was killed");
    watch_task.abort();
}

fn vm_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Benchmark (run by `scripts/bench-controller.sh`, not by CI): 100 RayClusters, each with its
/// own stand-in GCS, one of which never answers. Demand arrives for the 99 others at once;
/// prints the time until each one's replicas were patched, and the controller's RSS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: scripts/bench-controller.sh"]
async fn bench_100_clusters_one_stuck() {
    const N: usize = 100;
    let cp = controlplane::shared();
    let client = cp.client();
    install_kuberay_crd(&client).await;
    let ns = controlplane::create_namespace(&client, "bench-100").await;
    let api = rayclusters(&client, &ns);
    let mut gcss = Vec::new();
    for i in 0..N {
        let g = FakeGcs::start().await;
        if i == 0 {
            g.set(|s| s.stuck = true);
        }
        create(&api, raycluster(&format!("c{i:03}"), &g.address(), 10)).await;
        gcss.push(g);
    }
    let ctl = Controller::start(&ns, &["--interval", "1s", "--gcs-timeout", "60s"]);
    wait_for(&ctl, 60, "100 clusters watched", || async {
        ctl.metrics()
            .contains(&format!("raygate_autoscaler_clusters_watched {N}"))
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_rss = vm_rss_kib(ctl.proc.pid());
    let t0 = Instant::now();
    for g in &gcss[1..] {
        g.set(|s| s.demands = vec![(BTreeMap::from([("CPU".into(), 1.0)]), 2)]);
    }
    let mut done: BTreeMap<String, Duration> = BTreeMap::new();
    let deadline = t0 + Duration::from_secs(60);
    while done.len() < N - 1 && Instant::now() < deadline {
        for o in api.list(&ListParams::default()).await.expect("list").items {
            let n = o.metadata.name.clone().unwrap_or_default();
            if group_of(&o)["replicas"] == json!(2) && !done.contains_key(&n) {
                done.insert(n, t0.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let peak_rss = vm_rss_kib(ctl.proc.pid());
    let mut lat: Vec<Duration> = done.values().copied().collect();
    lat.sort();
    assert_eq!(
        lat.len(),
        N - 1,
        "not all healthy clusters scaled\n{}",
        ctl.log()
    );
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize];
    println!(
        "BENCH clusters={N} stuck=1 scaled={} p50_ms={} p99_ms={} max_ms={} rss_idle_mib={:.1} rss_after_mib={:.1}",
        lat.len(),
        pct(0.5).as_millis(),
        pct(0.99).as_millis(),
        lat[lat.len() - 1].as_millis(),
        idle_rss as f64 / 1024.0,
        peak_rss as f64 / 1024.0
    );
    assert_eq!(
        group_of(&api.get("c000").await.unwrap())["replicas"],
        json!(0)
    );
}
