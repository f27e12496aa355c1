//! `raygate autoscale run` and `raygate autoscale status <ns>/<cluster>` against a real
//! kube-apiserver + etcd with KubeRay's CRD, a stand-in GCS (tests/support/fake_gcs.rs) driven by
//! the test, and raygate as the real binary: scale up/down with `--reconcile-pods`, conflicts,
//! isolation, leader election, the autoscaler's own ServiceAccount RBAC (deploy/autoscaler) and
//! multi-host (numOfHosts > 1) replicas.
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
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use kube::runtime::watcher;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
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

/// One test's namespace on the shared control plane, with KubeRay's CRD installed.
struct Env {
    client: kube::Client,
    ns: String,
    api: Api<DynamicObject>,
    pods: Api<Pod>,
}

async fn env(ns: &str) -> Env {
    let client = controlplane::shared().client();
    install_kuberay_crd(&client).await;
    let ns = controlplane::create_namespace(&client, ns).await;
    Env {
        api: rayclusters(&client, &ns),
        pods: Api::namespaced(client.clone(), &ns),
        client,
        ns,
    }
}

/// The raygate binary under test (`RAYGATE_TEST_BIN`: a private copy when several checkouts
/// share one target dir, whose builds overwrite target/debug/raygate).
fn raygate_bin() -> PathBuf {
    std::env::var_os("RAYGATE_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_raygate")))
}

/// The quick-start shape: a head with no CPUs, `small-group` of 1-CPU workers, 0..=max, opted
/// into central mode (`raygate.io/autoscaler: central`, KubeRay's in-tree autoscaling off).
fn raycluster(name: &str, gcs: &str, max: u32) -> Value {
    json!({
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": name, "annotations": {
            "raygate.io/gcs-address": gcs, "raygate.io/autoscaler": "central"}},
        "spec": {
            "rayVersion": "2.46.0",
            "enableInTreeAutoscaling": false,
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

/// Waits until the controller's caches are synced (`/readyz` 200).
async fn wait_ready(ctl: &Controller) {
    wait_for(ctl, 30, "controller ready", || async {
        let (code, _) = controlplane::plain_get(ctl.admin_port, "/readyz").ok()?;
        (code == 200).then_some(())
    })
    .await;
}

/// Polls `fetch` until what it returns satisfies `ok` (60 s at most); returns that.
async fn wait_until<T, Fut>(
    ctl: &Controller,
    what: &str,
    fetch: impl Fn() -> Fut,
    ok: impl Fn(&T) -> bool,
) -> T
where
    Fut: std::future::Future<Output = Option<T>>,
{
    let (fetch, ok) = (&fetch, &ok);
    wait_for(ctl, 60, what, || async move {
        let v = fetch().await?;
        ok(&v).then_some(v)
    })
    .await
}

/// Waits until worker group 0 of `name` satisfies `ok`; returns the group.
async fn wait_group(
    ctl: &Controller,
    api: &Api<DynamicObject>,
    name: &str,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let fetch = || async { Some(group_of(&api.get(name).await.ok()?)) };
    wait_until(ctl, &format!("{name}: {what}"), fetch, ok).await
}

/// Waits until worker group 0 of `name` has `replicas: want`.
async fn wait_replicas(ctl: &Controller, api: &Api<DynamicObject>, name: &str, want: u64) {
    wait_group(ctl, api, name, &format!("replicas {want}"), |g| {
        g["replicas"] == json!(want)
    })
    .await;
}

/// Waits until group 0 of `name` has `replicas: want` and an empty `workersToDelete`.
async fn wait_cleared(ctl: &Controller, api: &Api<DynamicObject>, name: &str, want: u64) {
    let what = format!("replicas {want}, workersToDelete cleared");
    wait_group(ctl, api, name, &what, |g| {
        g["replicas"] == json!(want) && g["scaleStrategy"]["workersToDelete"] == json!([])
    })
    .await;
}

/// Waits until the live worker pods of `cluster` satisfy `ok`; returns them.
async fn wait_pods(
    ctl: &Controller,
    pods: &Api<Pod>,
    cluster: &str,
    what: &str,
    ok: impl Fn(&[Pod]) -> bool,
) -> Vec<Pod> {
    let fetch = || async { Some(worker_pods(pods, cluster).await) };
    wait_until(ctl, &format!("{cluster}: {what}"), fetch, |v: &Vec<Pod>| {
        ok(v)
    })
    .await
}

/// Waits until the stand-in GCS was asked to drain exactly `want` (any order).
async fn wait_drained(ctl: &Controller, gcs: &FakeGcs, want: &[String]) {
    let mut want = want.to_vec();
    want.sort();
    let fetch = || async {
        let mut d = gcs.with(|s| s.drained.clone());
        d.sort();
        Some(d)
    };
    wait_until(ctl, &format!("drained {want:?}"), fetch, |d| *d == want).await;
}

fn names(pods: &[Pod]) -> Vec<String> {
    pods.iter()
        .map(|p| p.metadata.name.clone().unwrap_or_default())
        .collect()
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
    let Env {
        client,
        ns,
        api,
        pods,
    } = env("e2e-autoscale-updown").await;
    let gcs = FakeGcs::start().await;
    let name = "quickstart";
    create(&api, raycluster(name, &gcs.address(), 10)).await;
    let (hist, watch_task) = record_history(api.clone(), name);

    // Demand for 3 CPUs (three 1-CPU actors) before the controller starts.
    gcs.set(|s| s.demands = vec![(BTreeMap::from([("CPU".into(), 1.0)]), 3)]);
    let out = tempfile::tempdir().unwrap();
    let csv = out.path().join("timeline.csv");
    let ctl = Controller::start(
        &ns,
        &["--reconcile-pods", "--timeline", csv.to_str().unwrap()],
    );

    wait_replicas(&ctl, &api, name, 3).await;
    let created = wait_pods(&ctl, &pods, name, "3 worker pods", |v| v.len() == 3).await;
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
    wait_drained(&ctl, &gcs, &idle).await;
    wait_pods(&ctl, &pods, name, "the idle pods deleted", |v| {
        self::names(v) == [names[0].clone()]
    })
    .await;
    // Ray forgets the stopped nodes.
    gcs.set(|s| s.nodes.retain(|n| !idle.contains(&n.instance_id)));
    wait_cleared(&ctl, &api, name, 1).await;
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
    // `--timeline`: the decisions as rows of namespace/cluster/group, and the plot at exit.
    ctl.proc.stop();
    let text = std::fs::read_to_string(&csv).unwrap();
    let rows = raygate::autoscale::timeline::parse_csv("timeline.csv", &text).unwrap();
    let group = format!("{ns}/{name}/{GROUP}");
    assert!(rows.iter().all(|r| r.group == group), "{text}");
    assert!(rows.windows(2).all(|w| w[0].t_s <= w[1].t_s), "{text}");
    let up = rows
        .iter()
        .position(|r| r.launch > 0)
        .unwrap_or_else(|| panic!("no launch: {text}"));
    assert_eq!(
        (rows[up].demand, rows[up].launch, rows[up].replicas),
        (3, 3, 3),
        "{text}"
    );
    let down = rows
        .iter()
        .position(|r| r.terminate > 0)
        .unwrap_or_else(|| panic!("no terminate: {text}"));
    assert!(down > up, "{text}");
    assert_eq!(
        (rows[down].terminate, rows[down].replicas),
        (2, 1),
        "{text}"
    );
    assert_eq!(rows.iter().map(|r| r.replicas).max(), Some(3), "{text}");
    assert_eq!(rows.last().map(|r| r.replicas), Some(1), "{text}");
    // The plot at exit is the plot of every row of the CSV: none recorded after it (the cluster
    // tasks are awaited before it is written).
    let svg = std::fs::read_to_string(csv.with_extension("svg")).expect("timeline.svg at exit");
    assert_eq!(
        svg,
        raygate::autoscale::timeline::plot_of(rows, "raygate autoscale run"),
        "{text}"
    );
    assert!(
        ctl.log().contains("timeline written"),
        "the log says where: {}",
        ctl.log()
    );
    watch_task.abort();
}

/// Parses `path` as XML (the `--timeline` plot): its `data-series` lines and `data-launch`
/// markers, or why it is not one.
fn svg_series(path: &Path) -> Result<(Vec<String>, usize), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc = roxmltree::Document::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let series = doc
        .descendants()
        .filter_map(|n| n.attribute("data-series").map(String::from))
        .collect();
    let launches = doc
        .descendants()
        .filter(|n| n.has_attribute("data-launch"))
        .count();
    Ok((series, launches))
}

/// Issue #17: a run stopped without an exit (SIGKILL: an OOM kill, the kubelet after the grace
/// period) still leaves the plot, rewritten while rows come, atomically (never half-written).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_plot_is_rewritten_during_the_run_and_survives_sigkill() {
    let Env { ns, api, .. } = env("e2e-autoscale-timeline-kill").await;
    let gcs = FakeGcs::start().await;
    let name = "plotted";
    create(&api, raycluster(name, &gcs.address(), 10)).await;
    let out = tempfile::tempdir().unwrap();
    let csv = out.path().join("run.csv");
    let svg = csv.with_extension("svg");
    let ctl = Controller::start(
        &ns,
        &["--no-leader-elect", "--timeline", csv.to_str().unwrap()],
    );
    wait_ready(&ctl).await;
    // The first row is plotted at once: the plot exists with no decision yet.
    let (series, launches) = wait_for(&ctl, 30, "the first plot", || async {
        svg_series(&svg).ok()
    })
    .await;
    let group = format!("replicas {ns}/{name}/{GROUP}");
    assert!(series.contains(&group), "{series:?}");
    assert_eq!(launches, 0);
    assert!(
        ctl.log().contains(&format!("plot to {}", svg.display())),
        "the log says where: {}",
        ctl.log()
    );
    gcs.set(|s| s.demands = vec![(BTreeMap::from([("CPU".into(), 1.0)]), 2)]);
    wait_replicas(&ctl, &api, name, 2).await;
    // Rewritten within 10 s (+ an iteration) with the launch; every read parses (atomic).
    wait_for(&ctl, 30, "the plot with the launch", || {
        let got = svg_series(&svg);
        async move {
            let (_, launches) = got.unwrap_or_else(|e| panic!("a read of the plot: {e}"));
            (launches == 1).then_some(())
        }
    })
    .await;
    // SIGKILL: no exit path runs; the last plot stays, and no temporary file is left over.
    ctl.proc.sigkill();
    wait_for(&ctl, 10, "the controller gone", || async {
        ctl.proc.exited().map(|_| ())
    })
    .await;
    let (series, launches) = svg_series(&svg).unwrap();
    assert!(series.contains(&group) && series.contains(&"demand".to_string()));
    assert_eq!(launches, 1);
    let left: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(
        BTreeSet::from_iter(left.iter().map(String::as_str)),
        BTreeSet::from(["run.csv", "run.svg"]),
        "{left:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_spec_update_is_never_overwritten() {
    let Env { ns, api, .. } = env("e2e-autoscale-conflict").await;
    let gcs = FakeGcs::start().await;
    let name = "contended";
    create(&api, raycluster(name, &gcs.address(), 10)).await;
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
    // replicas 2: the other writer's maxReplicas
    wait_replicas(&ctl, &api, name, 2).await;
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
    let Env {
        client, ns, api, ..
    } = env("e2e-autoscale-isolation").await;
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
    wait_ready(&ctl).await;
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

/// Installs KubeRay's RayJob and RayService CRDs once per test binary.
async fn install_owner_crds(client: &kube::Client) {
    static ONCE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    ONCE.get_or_init(|| async {
        for f in ["crd/ray.io_rayjobs.yaml", "crd/ray.io_rayservices.yaml"] {
            let mut docs = controlplane::yaml_docs(&controlplane::kuberay_path(f));
            controlplane::install_crd(client, docs.remove(0)).await;
        }
    })
    .await;
}

/// Issue #13 (4): a RayCluster that a RayJob or a RayService created is an ordinary RayCluster
/// with an ownerReference (and KubeRay's `ray.io/originated-from-*` labels). The owners here
/// are real RayJob / RayService objects stored through KubeRay's CRDs; the clusters look like
/// the ones KubeRay's RayJob and RayService controllers create. Both scale up (pods created
/// with `--reconcile-pods`), keep their owner, and scale back down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_owned_by_a_rayjob_or_a_rayservice_are_autoscaled() {
    let Env {
        client,
        ns,
        api,
        pods,
    } = env("e2e-autoscale-owned").await;
    install_owner_crds(&client).await;
    let gcs_job = FakeGcs::start().await;
    let gcs_svc = FakeGcs::start().await;
    let mut owners = Vec::new();
    for (kind, plural, name, spec_field) in [
        ("RayJob", "rayjobs", "pi-job", "rayClusterSpec"),
        ("RayService", "rayservices", "serve", "rayClusterConfig"),
    ] {
        let ar =
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("ray.io", "v1", kind), plural);
        let owner_api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
        let embedded = raycluster("unused", "unused", 4)["spec"].clone();
        let mut owner = json!({
            "apiVersion": "ray.io/v1", "kind": kind,
            "metadata": {"name": name},
            "spec": {spec_field: embedded}
        });
        if kind == "RayJob" {
            owner["spec"]["entrypoint"] = json!("python -c 'import ray; ray.init()'");
        }
        let owner: DynamicObject = serde_json::from_value(owner).unwrap();
        let stored = owner_api
            .create(&PostParams::default(), &owner)
            .await
            .unwrap_or_else(|e| panic!("create {kind} through KubeRay's CRD: {e}"));
        owners.push((kind, name, stored.metadata.uid.expect("owner uid")));
    }
    // The clusters KubeRay would create for them (RayJob: `<job>-<5 chars>`, RayService:
    // `<service>-<5 chars>`), with its labels and a controller ownerReference.
    let mut clusters = Vec::new();
    for ((kind, owner, uid), gcs) in owners.iter().zip([&gcs_job, &gcs_svc]) {
        let name = format!("{owner}-x7k2q");
        let mut rc = raycluster(&name, &gcs.address(), 4);
        rc["metadata"]["labels"] = json!({
            "ray.io/originated-from-crd": kind,
            "ray.io/originated-from-cr-name": owner,
        });
        // The opt-in of `autoscale run` to central autoscaling (harmless where not required).
        rc["metadata"]["annotations"]["raygate.io/autoscaler"] = json!("central");
        rc["metadata"]["ownerReferences"] = json!([{
            "apiVersion": "ray.io/v1", "kind": kind, "name": owner, "uid": uid,
            "controller": true, "blockOwnerDeletion": true
        }]);
        create(&api, rc).await;
        clusters.push((name, gcs, *kind, uid.clone()));
    }
    for (_, gcs, _, _) in &clusters {
        gcs.set(|s| s.demands = vec![(BTreeMap::from([("CPU".into(), 1.0)]), 2)]);
    }
    let ctl = Controller::start(&ns, &["--reconcile-pods"]);
    for (name, gcs, kind, uid) in &clusters {
        wait_replicas(&ctl, &api, name, 2).await;
        let created = wait_pods(&ctl, &pods, name, "2 worker pods", |v| v.len() == 2).await;
        let rc = api.get(name).await.unwrap();
        let refs = rc.metadata.owner_references.clone().unwrap_or_default();
        assert_eq!(refs.len(), 1, "{name}: the owner is kept: {refs:?}");
        assert_eq!(
            (
                refs[0].kind.as_str(),
                refs[0].uid.as_str(),
                refs[0].controller
            ),
            (*kind, uid.as_str(), Some(true)),
            "{name}"
        );
        let rc_uid = rc.metadata.uid.clone().unwrap();
        for p in &created {
            let owner = &p.metadata.owner_references.as_ref().unwrap()[0];
            assert_eq!(
                (owner.kind.as_str(), owner.uid.as_str()),
                ("RayCluster", rc_uid.as_str()),
                "pods belong to the RayCluster, not to the {kind}"
            );
        }
        // Both workers join Ray and go idle: scaled back to 0 through Ray's drain.
        let names = self::names(&created);
        gcs.set(|s| {
            s.demands.clear();
            for n in &names {
                s.nodes.push(FakeNode::worker(n, GROUP, 1.0, 30_000));
            }
        });
        wait_drained(&ctl, gcs, &names).await;
        wait_pods(&ctl, &pods, name, "the idle pods deleted", |v| v.is_empty()).await;
        gcs.set(|s| s.nodes.retain(|n| !names.contains(&n.instance_id)));
        wait_cleared(&ctl, &api, name, 0).await;
    }
    let m = ctl.metrics();
    assert!(m.contains("raygate_autoscaler_clusters_watched 2"), "{m}");
}

fn leader_gauge(ctl: &Controller) -> Option<i64> {
    ctl.metrics()
        .lines()
        .find_map(|l| l.strip_prefix("raygate_autoscaler_leader "))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_lease_holder_writes_and_the_other_takes_over_within_15_s() {
    let Env { ns, api, .. } = env("e2e-autoscale-ha").await;
    let gcs = FakeGcs::start().await;
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
    wait_ready(&b).await;
    gcs.set(|s| s.demands = vec![(BTreeMap::from([("CPU".into(), 1.0)]), 2)]);
    wait_replicas(&a, &api, name, 2).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(leader_gauge(&b), Some(0), "{}", b.log());
    assert!(a.log().contains("replicas 0 -> 2"), "{}", a.log());
    assert!(!b.log().contains("replicas 0 -> 2"), "{}", b.log());
    assert!(
        !b.metrics().contains("raygate_autoscaler_decisions_total{"),
        "the standby must not write"
    );

    // Kill the holder (SIGKILL: no lease release); more demand arrives meanwhile.
    a.proc.sigkill();
    let killed = Instant::now();
    gcs.set(|s| s.demands = vec![(BTreeMap::from([("CPU".into(), 1.0)]), 4)]);
    wait_replicas(&b, &api, name, 4).await;
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(15), "failover took {took:?}");
    // (b logs the decision after the API server answered its patch, which the test may see
    // first: poll the log.)
    wait_for(&b, 10, "replica-b logs replicas 2 -> 4", || async {
        b.log().contains("replicas 2 -> 4").then_some(())
    })
    .await;
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
    let Env { ns, api, .. } = env("bench-100").await;
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

// ---------------------------------------------------------------------------------------------
// `raygate autoscale status <ns>/<cluster>`

/// Runs `raygate autoscale status ARGS` as the admin: (exit code, stdout, stderr).
async fn status_cmd(args: &[&str]) -> (i32, String, String) {
    let kc = controlplane::shared().kubeconfig_path().to_path_buf();
    let args: Vec<String> = ["autoscale", "status"]
        .iter()
        .chain(args)
        .map(|s| s.to_string())
        .collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(raygate_bin())
            .args(&args)
            .env("KUBECONFIG", kc)
            .env_remove("RUST_LOG")
            .output()
            .expect("run raygate autoscale status")
    })
    .await
    .expect("join");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A worker pod as an operator would have made it (never scheduled: nothing runs here).
async fn make_worker_pod(pods: &Api<Pod>, cluster: &str, name: &str, phase: &str) {
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {
            "ray.io/cluster": cluster, "ray.io/group": GROUP, "ray.io/node-type": "worker"}},
        "spec": {"containers": [{"name": "ray-worker", "image": "rayproject/ray:2.46.0"}]}
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &p)
        .await
        .unwrap_or_else(|e| panic!("create pod {name}: {e}"));
    pods.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": phase}})),
    )
    .await
    .unwrap_or_else(|e| panic!("set phase of {name}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_prints_the_ray_status_layout_of_a_cluster() {
    let Env { ns, api, pods, .. } = env("e2e-autoscale-status").await;
    let gcs = FakeGcs::start().await;
    let name = "statuscl";
    let mut rc = raycluster(name, &gcs.address(), 10);
    rc["spec"]["workerGroupSpecs"][0]["replicas"] = json!(2);
    rc["spec"]["workerGroupSpecs"][0]["scaleStrategy"] =
        json!({"workersToDelete": ["statuscl-gone"]});
    create(&api, rc).await;
    make_worker_pod(&pods, name, "statuscl-w-a", "Running").await;
    make_worker_pod(&pods, name, "statuscl-w-b", "Pending").await;
    // Ray: the head, worker a busy; b has not joined. Two 1-CPU tasks are waiting.
    gcs.set(|s| {
        s.nodes = vec![
            FakeNode::head(),
            FakeNode::worker("statuscl-w-a", GROUP, 1.0, 0),
        ];
        s.demands = vec![(BTreeMap::from([("CPU".into(), 1.0)]), 2)];
    });
    let target = format!("{ns}/{name}");
    let (code, out, err) = status_cmd(&[&target, "--now", "2026-01-02 03:04:05"]).await;
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let header = "======== Autoscaler status: 2026-01-02 03:04:05 ========";
    assert!(
        out.starts_with(&format!("{header}\nNode status\n")),
        "{out}"
    );
    for want in [
        "\nActive:\n 1 headgroup\n 1 small-group\nIdle:\n (no idle nodes)\nPending:\n",
        // b fits one task; the other needs one more pod
        "\n small-group, 1 launching\n statuscl-w-b: small-group, allocated: pod is pending\n",
        "\nRecent failures:\n (no failures)\n",
        "\nTotal Usage:\n 1.0/1.0 CPU\n",
        "\nPending Demands:\n {'CPU': 1.0}: 2+ pending tasks/actors\n",
        // the plan, with the engine clearing the finished workersToDelete
        "\n small-group: replicas 3, launch 1\n",
        r#"{"op":"replace","path":"/spec/workerGroupSpecs/0/scaleStrategy","value":{"workersToDelete":[]}}"#,
        // what Kubernetes shows, under a separator as wide as the header
        &format!(
            "\n\nKubernetes\n{}\nRayCluster: {ns}/{name}\n",
            "-".repeat(header.len())
        ),
        &format!(
            "\nGCS: {} (annotation raygate.io/gcs-address)\n",
            gcs.address()
        ),
        "\n small-group: desired 2 (replicas 2, min 0, max 10)\n  workersToDelete: statuscl-gone\n  pods: 1 Running, 1 Pending\n",
        "\nWorker pods by phase: 1 Running, 1 Pending\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert!(
        gcs.with(|s| s.state_calls) >= 1,
        "the status must come from the GCS"
    );
    // The controller's flags decide the plan shown (here no launch may be in flight).
    let (code, out, err) = status_cmd(&[&target, "--max-concurrent-launches", "0"]).await;
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("\n small-group: replicas 2, 1 deferred (maxConcurrentLaunches)"),
        "{out}"
    );
    assert!(
        gcs.with(|s| s.drained.is_empty()),
        "status must not drain anything"
    );
    let g = group_of(&api.get(name).await.unwrap());
    assert_eq!(g["replicas"], json!(2), "status must not patch: {g}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_errors_name_the_cluster_and_the_gcs_address() {
    let Env { ns, api, .. } = env("e2e-autoscale-status-errors").await;
    // Not found.
    let (code, out, err) = status_cmd(&[&format!("{ns}/nosuch")]).await;
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(
        err.contains(&format!("RayCluster {ns}/nosuch not found")),
        "{err}"
    );
    // Autoscaling off: not opted in, no in-tree autoscaling.
    let mut off = raycluster("static", "127.0.0.1:1", 10);
    off["metadata"]["annotations"] = json!({"raygate.io/gcs-address": "127.0.0.1:1"});
    create(&api, off).await;
    let (code, _, err) = status_cmd(&[&format!("{ns}/static")]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("RayCluster {ns}/static does not autoscale"))
            && err.contains("enableInTreeAutoscaling"),
        "{err}"
    );
    // GCS unreachable: the annotation's address, then the head service's (the controller's
    // resolution), then --gcs.
    let closed = format!("127.0.0.1:{}", controlplane::pick_port());
    create(&api, raycluster("nogcs", &closed, 10)).await;
    let (code, _, err) = status_cmd(&[&format!("{ns}/nogcs"), "--timeout", "1s"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "GCS of RayCluster {ns}/nogcs unreachable at {closed} (annotation raygate.io/gcs-address)"
        )),
        "{err}"
    );
    let mut headsvc = raycluster("viasvc", "", 10);
    // No GCS address annotation (the head service is asked); still opted in.
    headsvc["metadata"]["annotations"] = json!({"raygate.io/autoscaler": "central"});
    create(&api, headsvc).await;
    let (code, _, err) = status_cmd(&[&format!("{ns}/viasvc"), "--timeout", "1s"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "unreachable at viasvc-head-svc.{ns}.svc:6379 (head service viasvc-head-svc, port 6379)"
        )),
        "{err}"
    );
    let (code, _, err) =
        status_cmd(&[&format!("{ns}/viasvc"), "--gcs", &closed, "--timeout", "1s"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("at {closed} (--gcs)")), "{err}");
    // Not <ns>/<cluster>.
    let (code, _, err) = status_cmd(&["a/b/c"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("<namespace>/<cluster>"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// RBAC: the controller on its own ServiceAccount token (deploy/autoscaler).

const SYSTEM_NS: &str = "raygate-system";
const SA: &str = "raygate-autoscaler";

/// The ServiceAccount and RBAC objects of `deploy/autoscaler/<overlay>` (kustomize build).
fn autoscaler_rbac(overlay: &str) -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/autoscaler")
        .join(overlay);
    let docs: Vec<Value> = controlplane::kustomize_build(&dir)
        .into_iter()
        .filter(|d| {
            matches!(
                d["kind"].as_str(),
                Some(
                    "ServiceAccount"
                        | "ClusterRole"
                        | "ClusterRoleBinding"
                        | "Role"
                        | "RoleBinding"
                )
            )
        })
        .collect();
    assert_eq!(docs.len(), 5, "{overlay}: {docs:?}");
    docs
}

/// Server-side apply of one of the objects of [`autoscaler_rbac`].
async fn apply(client: &kube::Client, obj: &Value) {
    let kind = obj["kind"].as_str().unwrap_or_default();
    let (group, plural, namespaced) = match kind {
        "ServiceAccount" => ("", "serviceaccounts", true),
        "ClusterRole" => ("rbac.authorization.k8s.io", "clusterroles", false),
        "ClusterRoleBinding" => ("rbac.authorization.k8s.io", "clusterrolebindings", false),
        "Role" => ("rbac.authorization.k8s.io", "roles", true),
        "RoleBinding" => ("rbac.authorization.k8s.io", "rolebindings", true),
        other => panic!("unexpected kind {other}"),
    };
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", kind), plural);
    let name = obj["metadata"]["name"].as_str().expect("name");
    let api: Api<DynamicObject> = if namespaced {
        let ns = obj["metadata"]["namespace"].as_str().expect("namespace");
        Api::namespaced_with(client.clone(), ns, &ar)
    } else {
        Api::all_with(client.clone(), &ar)
    };
    api.patch(
        name,
        &PatchParams::apply(controlplane::FIELD_MANAGER).force(),
        &Patch::Apply(obj),
    )
    .await
    .unwrap_or_else(|e| panic!("apply {kind} {name}: {e}"));
}

/// A token of the autoscaler's ServiceAccount from the TokenRequest API.
async fn service_account_token(client: &kube::Client) -> String {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), SYSTEM_NS);
    let req = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..Default::default()
        }),
        ..Default::default()
    };
    api.create_token_request(SA, &PostParams::default(), &req)
        .await
        .unwrap_or_else(|e| panic!("TokenRequest for {SYSTEM_NS}/{SA}: {e}"))
        .status
        .expect("TokenRequest status")
        .token
        .expect("TokenRequest token")
}

/// May the caller `verb` `group/resource` in `ns`? (SelfSubjectAccessReview). `resource` is
/// `plural[/subresource][@name]`.
async fn can_i(client: &kube::Client, verb: &str, group: &str, resource: &str, ns: &str) -> bool {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    };
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let (resource, name) = match resource.split_once('@') {
        Some((r, n)) => (r, Some(n.to_string())),
        None => (resource, None),
    };
    let (resource, sub) = match resource.split_once('/') {
        Some((r, s)) => (r, Some(s.to_string())),
        None => (resource, None),
    };
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some(group.into()),
                resource: Some(resource.into()),
                subresource: sub,
                name,
                verb: Some(verb.into()),
                namespace: Some(ns.into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    api.create(&PostParams::default(), &review)
        .await
        .expect("SelfSubjectAccessReview")
        .status
        .is_some_and(|s| s.allowed)
}

/// Asserts exactly what the ServiceAccount may do in the RayCluster namespace `ns` and in
/// raygate-system. `pods_write`: the reconcile-pods overlay is applied.
async fn assert_least_privilege(sa: &kube::Client, ns: &str, pods_write: bool) {
    let table: Vec<(&str, &str, &str, &str, bool)> = vec![
        ("get", "ray.io", "rayclusters", ns, true),
        ("list", "ray.io", "rayclusters", ns, true),
        ("watch", "ray.io", "rayclusters", ns, true),
        ("patch", "ray.io", "rayclusters", ns, true),
        ("update", "ray.io", "rayclusters", ns, false),
        ("create", "ray.io", "rayclusters", ns, false),
        ("delete", "ray.io", "rayclusters", ns, false),
        ("patch", "ray.io", "rayclusters/status", ns, false),
        ("get", "", "pods", ns, true),
        ("list", "", "pods", ns, true),
        ("watch", "", "pods", ns, true),
        ("create", "", "pods", ns, pods_write),
        ("delete", "", "pods", ns, pods_write),
        ("patch", "", "pods", ns, pods_write),
        ("update", "", "pods", ns, false),
        ("deletecollection", "", "pods", ns, false),
        ("create", "", "pods/exec", ns, false),
        ("create", "events.k8s.io", "events", ns, true),
        ("patch", "events.k8s.io", "events", ns, true),
        ("delete", "events.k8s.io", "events", ns, false),
        ("get", "", "secrets", ns, false),
        ("list", "", "secrets", SYSTEM_NS, false),
        // The leader-election Role names its Lease (#14.8): get/update only that one.
        (
            "get",
            "coordination.k8s.io",
            "leases@raygate-autoscaler",
            SYSTEM_NS,
            true,
        ),
        (
            "update",
            "coordination.k8s.io",
            "leases@raygate-autoscaler",
            SYSTEM_NS,
            true,
        ),
        (
            "get",
            "coordination.k8s.io",
            "leases@other",
            SYSTEM_NS,
            false,
        ),
        (
            "update",
            "coordination.k8s.io",
            "leases@other",
            SYSTEM_NS,
            false,
        ),
        ("create", "coordination.k8s.io", "leases", SYSTEM_NS, true),
        ("delete", "coordination.k8s.io", "leases", SYSTEM_NS, false),
        ("create", "coordination.k8s.io", "leases", ns, false),
        ("create", "", "services", ns, false),
    ];
    let mut wrong = Vec::new();
    for (verb, group, resource, in_ns, want) in table {
        if can_i(sa, verb, group, resource, in_ns).await != want {
            wrong.push(format!(
                "{verb} {group}/{resource} in {in_ns}: want allowed={want}"
            ));
        }
    }
    assert!(wrong.is_empty(), "RBAC differs:\n{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_autoscaler_works_on_its_service_account_with_least_privilege() {
    let cp = controlplane::shared();
    let Env {
        client,
        ns,
        api,
        pods,
    } = env("e2e-autoscale-rbac").await;
    controlplane::create_namespace(&client, SYSTEM_NS).await;
    for o in autoscaler_rbac("base") {
        apply(&client, &o).await;
    }
    let token = service_account_token(&client).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("autoscaler.kubeconfig");
    cp.write_kubeconfig(&token, &kc);
    let sa = {
        let mut cfg = cp.config();
        cfg.auth_info = serde_json::from_value(json!({ "token": token })).expect("auth");
        kube::Client::try_from(cfg).expect("client")
    };
    assert_least_privilege(&sa, &ns, false).await;
    // Concretely: the base RBAC refuses a pod create.
    let probe: Pod = serde_json::from_value(json!({"metadata": {"name": "probe"},
        "spec": {"containers": [{"name": "c", "image": "x"}]}}))
    .expect("pod");
    match Api::<Pod>::namespaced(sa.clone(), &ns)
        .create(&PostParams::default(), &probe)
        .await
    {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 403, "{s:?}"),
        other => panic!("pod create with the base RBAC must be forbidden: {other:?}"),
    }

    // The controller on that token, base RBAC: scaling works (watch, patch, events, Lease); with
    // --reconcile-pods on anyway, every pod create is refused.
    let gcs = FakeGcs::start().await;
    let name = "rbac";
    create(&api, raycluster(name, &gcs.address(), 10)).await;
    gcs.set(|s| s.demands = vec![(BTreeMap::from([("CPU".into(), 1.0)]), 2)]);
    let ctl = Controller::start_as(
        &ns,
        SYSTEM_NS,
        &kc,
        &[
            "--reconcile-pods",
            // The Lease the leader-election Role names (resourceNames, #14.8).
            "--lease-name",
            "raygate-autoscaler",
            "--identity",
            "sa-base",
        ],
    );
    wait_replicas(&ctl, &api, name, 2).await;
    wait_for(&ctl, 30, "pod creation refused", || async {
        let log = ctl.log();
        (log.contains("cannot create pod") && log.contains("forbidden")).then_some(())
    })
    .await;
    assert!(worker_pods(&pods, name).await.is_empty());
    let ev = events(&client, &ns).await;
    assert!(
        ev.iter().any(|(t, r, _)| t == "Normal" && r == "ScaledUp"),
        "{ev:?}"
    );
    let lease: k8s_openapi::api::coordination::v1::Lease =
        Api::namespaced(client.clone(), SYSTEM_NS)
            .get("raygate-autoscaler")
            .await
            .expect("the Lease in raygate-system");
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("sa-base")
    );
    let log = ctl.log();
    let other: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("forbidden") && !l.contains("cannot create pod"))
        .collect();
    assert!(other.is_empty(), "only pod creation may be refused:\n{log}");
    ctl.proc.stop();

    // The reconcile-pods overlay adds pods create/delete/patch, nothing else.
    for o in autoscaler_rbac("reconcile-pods") {
        apply(&client, &o).await;
    }
    let ctl = Controller::start_as(
        &ns,
        SYSTEM_NS,
        &kc,
        &[
            "--reconcile-pods",
            "--lease-name",
            "raygate-autoscaler",
            "--identity",
            "sa-pods",
        ],
    );
    wait_for(&ctl, 30, "the overlay's RBAC in effect", || async {
        can_i(&sa, "create", "", "pods", &ns).await.then_some(())
    })
    .await;
    assert_least_privilege(&sa, &ns, true).await;
    let created = wait_pods(&ctl, &pods, name, "2 worker pods", |v| v.len() == 2).await;
    let names = self::names(&created);
    gcs.set(|s| {
        s.demands.clear();
        s.nodes = vec![
            FakeNode::worker(&names[0], GROUP, 1.0, 0),
            FakeNode::worker(&names[1], GROUP, 1.0, 30_000),
        ];
    });
    wait_drained(&ctl, &gcs, &names[1..]).await;
    wait_pods(&ctl, &pods, name, "the idle pod deleted", |v| {
        self::names(v) == [names[0].clone()]
    })
    .await;
    gcs.set(|s| s.nodes.retain(|n| n.instance_id != names[1]));
    wait_cleared(&ctl, &api, name, 1).await;
    let log = ctl.log();
    assert!(
        log.contains("created worker pod") && !log.contains("forbidden"),
        "nothing may be refused with the overlay:\n{log}"
    );
}

// ---------------------------------------------------------------------------------------------
// Multi-host groups (numOfHosts > 1) with --reconcile-pods.

fn label(p: &Pod, k: &str) -> String {
    p.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(k).cloned())
        .unwrap_or_default()
}

/// Pods by `ray.io/worker-group-replica-name`: name → (replica index, host indices, pods).
fn replicas_of(pods: &[Pod]) -> BTreeMap<String, (String, Vec<String>, Vec<String>)> {
    let mut m: BTreeMap<String, (String, Vec<String>, Vec<String>)> = BTreeMap::new();
    for p in pods {
        let e = m
            .entry(label(p, "ray.io/worker-group-replica-name"))
            .or_default();
        e.0 = label(p, "ray.io/worker-group-replica-index");
        e.1.push(label(p, "ray.io/replica-host-index"));
        e.1.sort();
        e.2.push(p.metadata.name.clone().unwrap_or_default());
    }
    m
}

/// Every replica complete (2 hosts, indices 0 and 1) and `n` of them.
fn complete_replicas(pods: &[Pod], n: usize) -> bool {
    let r = replicas_of(pods);
    r.len() == n
        && pods.len() == 2 * n
        && r.iter()
            .all(|(name, (_, hosts, _))| !name.is_empty() && hosts == &["0", "1"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_host_replicas_are_created_and_removed_whole() {
    let Env { ns, api, pods, .. } = env("e2e-autoscale-multihost").await;
    let gcs = FakeGcs::start().await;
    let name = "slices";
    let mut rc = raycluster(name, &gcs.address(), 4);
    rc["spec"]["workerGroupSpecs"][0]["numOfHosts"] = json!(2);
    create(&api, rc).await;
    // Four 1-CPU tasks: two replicas of two 1-CPU hosts.
    gcs.set(|s| s.demands = vec![(BTreeMap::from([("CPU".into(), 1.0)]), 4)]);
    let ctl = Controller::start(&ns, &["--reconcile-pods"]);
    wait_replicas(&ctl, &api, name, 2).await;
    let created = wait_pods(&ctl, &pods, name, "2 complete replicas", |v| {
        complete_replicas(v, 2)
    })
    .await;
    let first = replicas_of(&created);
    let indices: BTreeSet<String> = first.values().map(|r| r.0.clone()).collect();
    assert_eq!(
        indices,
        BTreeSet::from(["0".into(), "1".into()]),
        "{first:?}"
    );
    for r in first.keys() {
        assert!(
            r.starts_with("small-group-") && r.len() == "small-group-".len() + 5,
            "{r}"
        );
    }
    // The tasks run: all four hosts busy.
    gcs.set(|s| {
        s.demands.clear();
        s.nodes = created
            .iter()
            .map(|p| FakeNode::worker(p.metadata.name.as_deref().unwrap(), GROUP, 1.0, 0))
            .collect();
    });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        self::names(&worker_pods(&pods, name).await),
        self::names(&created)
    );

    // A host of replica index 0 is deleted from outside: its sibling goes too, and a whole new
    // replica takes index 0.
    let (lost_name, (_, _, lost_pods)) = first.iter().find(|(_, r)| r.0 == "0").unwrap();
    pods.delete(&lost_pods[0], &DeleteParams::default())
        .await
        .expect("delete one host");
    let after = wait_pods(&ctl, &pods, name, "the lost replica replaced whole", |v| {
        complete_replicas(v, 2) && !replicas_of(v).contains_key(lost_name)
    })
    .await;
    let second = replicas_of(&after);
    let indices: BTreeSet<String> = second.values().map(|r| r.0.clone()).collect();
    assert_eq!(
        indices,
        BTreeSet::from(["0".into(), "1".into()]),
        "{second:?}"
    );
    assert!(
        !self::names(&after).contains(&lost_pods[1]),
        "the sibling of the lost host must be deleted"
    );
    assert!(
        ctl.log().contains("incomplete multi-host replica"),
        "{}",
        ctl.log()
    );
    assert_eq!(
        group_of(&api.get(name).await.unwrap())["replicas"],
        json!(2)
    );

    // One host of the replica at index 1 goes idle, its sibling stays busy: a replica is the
    // unit, so nothing is drained, named or deleted (naming the idle host would make the
    // operator side delete the busy one with it).
    let (hist, watch_task) = record_history(api.clone(), name);
    let (victim_replica, (_, _, victims)) = second.iter().find(|(_, r)| r.0 == "1").unwrap();
    let victims = victims.clone();
    let keep: Vec<String> = second
        .values()
        .find(|r| r.0 == "0")
        .map(|r| r.2.clone())
        .unwrap();
    let set_idle = |idle_of: &dyn Fn(&str) -> i64| {
        let nodes: Vec<FakeNode> = self::names(&after)
            .iter()
            .map(|n| FakeNode::worker(n, GROUP, 1.0, idle_of(n)))
            .collect();
        gcs.set(|s| s.nodes = nodes);
    };
    set_idle(&|n| if n == victims[0] { 30_000 } else { 0 });
    let calls = gcs.with(|s| s.state_calls);
    wait_for(
        &ctl,
        30,
        "3 more iterations on the half-idle replica",
        || async { (gcs.with(|s| s.state_calls) >= calls + 3).then_some(()) },
    )
    .await;
    assert!(gcs.with(|s| s.drained.is_empty()), "nothing may be drained");
    assert_eq!(
        self::names(&worker_pods(&pods, name).await),
        self::names(&after)
    );
    let g = group_of(&api.get(name).await.unwrap());
    assert_eq!(g["replicas"], json!(2), "{g}");
    assert!(
        hist.lock().unwrap().iter().all(|(_, w, _)| w.is_empty()),
        "{:?}",
        hist.lock().unwrap()
    );

    // Both hosts idle: both drained, both named in workersToDelete, replicas 2 -> 1, the replica
    // deleted, the other one kept.
    set_idle(&|n| {
        if victims.iter().any(|v| v == n) {
            30_000
        } else {
            0
        }
    });
    wait_drained(&ctl, &gcs, &victims).await;
    let mut keep_sorted = keep.clone();
    keep_sorted.sort();
    wait_pods(&ctl, &pods, name, "the idle replica deleted", |v| {
        self::names(v) == keep_sorted
    })
    .await;
    gcs.set(|s| s.nodes.retain(|n| !victims.contains(&n.instance_id)));
    wait_cleared(&ctl, &api, name, 1).await;
    let mut victims_sorted = victims.clone();
    victims_sorted.sort();
    let named: Vec<(u64, Vec<String>)> = hist
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, w, _)| !w.is_empty())
        .map(|(r, w, _)| {
            let mut w = w.clone();
            w.sort();
            (*r, w)
        })
        .collect();
    assert!(
        !named.is_empty() && named.iter().all(|x| *x == (1, victims_sorted.clone())),
        "workersToDelete must name the whole replica with replicas 1: {named:?}"
    );
    watch_task.abort();
    let log = ctl.log();
    for v in &victims {
        assert!(
            log.lines().any(|l| l.contains(v.as_str())
                && l.contains(&format!(
                    "replica {victim_replica} of workersToDelete entry"
                ))),
            "{v} must be deleted as part of its replica:\n{log}"
        );
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(self::names(&worker_pods(&pods, name).await), keep_sorted);
}

/// Creates a pod of `cluster`'s multi-host group by hand: no replica labels.
async fn make_bare_host(pods: &Api<Pod>, cluster: &str, name: &str) {
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {
            "ray.io/cluster": cluster, "ray.io/group": GROUP, "ray.io/node-type": "worker"}},
        "spec": {"containers": [{"name": "ray-worker", "image": "rayproject/ray:2.46.0"}]}
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &p)
        .await
        .unwrap_or_else(|e| panic!("create pod {name}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_host_pods_without_replica_labels_are_adopted_and_failed_replicas_replaced() {
    let Env { ns, api, pods, .. } = env("e2e-autoscale-adopt").await;
    let gcs = FakeGcs::start().await;
    let name = "adopt";
    let mut rc = raycluster(name, &gcs.address(), 4);
    rc["spec"]["workerGroupSpecs"][0]["numOfHosts"] = json!(2);
    rc["spec"]["workerGroupSpecs"][0]["replicas"] = json!(1);
    create(&api, rc).await;
    // Two hosts made by hand (an older raygate, or kubectl): no replica labels.
    make_bare_host(&pods, name, "old-0").await;
    make_bare_host(&pods, name, "old-1").await;
    gcs.set(|s| {
        s.nodes = vec![
            FakeNode::worker("old-0", GROUP, 1.0, 0),
            FakeNode::worker("old-1", GROUP, 1.0, 0),
        ]
    });
    let ctl = Controller::start(&ns, &["--reconcile-pods"]);
    // Adopted as one complete replica at index 0; no new replica beside them.
    let adopted = wait_pods(
        &ctl,
        &pods,
        name,
        "the two pods labelled as one replica",
        |v| complete_replicas(v, 1),
    )
    .await;
    assert_eq!(self::names(&adopted), ["old-0", "old-1"]);
    let r = replicas_of(&adopted);
    let (rname, (index, _, _)) = r.iter().next().unwrap();
    assert_eq!(index, "0");
    assert!(rname.starts_with("small-group-"), "{rname}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        self::names(&worker_pods(&pods, name).await),
        ["old-0", "old-1"]
    );
    assert!(
        ctl.log().contains("adopted into multi-host replica"),
        "{}",
        ctl.log()
    );

    // old-1 fails (evicted): its whole replica is deleted and a new one created in its place.
    pods.patch_status(
        "old-1",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Failed", "reason": "Evicted"}})),
    )
    .await
    .expect("fail old-1");
    let fresh = wait_pods(
        &ctl,
        &pods,
        name,
        "a new replica instead of the failed one",
        |v| complete_replicas(v, 1) && !self::names(v).contains(&"old-0".to_string()),
    )
    .await;
    assert!(!replicas_of(&fresh).contains_key(rname.as_str()));
    let log = ctl.log();
    for p in ["old-0", "old-1"] {
        assert!(
            log.lines().any(|l| l.contains(p)
                && l.contains(&format!(
                    "multi-host replica {rname}: pod old-1 unhealthy: pod phase is Failed (Evicted)"
                ))),
            "{p} must be deleted with its failed replica:\n{log}"
        );
    }
    assert_eq!(
        group_of(&api.get(name).await.unwrap())["replicas"],
        json!(1)
    );
}
