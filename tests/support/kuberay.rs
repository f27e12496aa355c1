//! KubeRay's real operator for the end-to-end tests, and the seed's quick start run against it
//! (tests/e2e_kuberay_*.rs, benches/kuberay_autoscaler.rs).
//!
//! Include next to `support/controlplane.rs`, `support/ray.rs` and `support/kubelet.rs`:
//! `#[path = "support/kuberay.rs"] mod kuberay;`.
//!
//! * [`bin`]: the `kuberay` binary of tools/kuberay (ray-operator v1.6.2), from
//!   `RAYGATE_KUBERAY_BIN` (set by scripts/test.sh) or built by scripts/kuberay-bin.sh.
//! * [`Operator`]: `kuberay operator --watch-namespace NS` as a child process — KubeRay's RayCluster
//!   reconciler in a controller-runtime manager, with the control plane's admin kubeconfig.
//! * [`Harness`]: control plane + KubeRay's CRD + a namespace (with the `default`
//!   ServiceAccount the ServiceAccount controller would create) + the operator + the kubelet
//!   stand-in, and watches that record every state of the RayCluster (with the field managers
//!   that own its worker groups) and every Pod deletion.
//! * [`Harness::quick_start`]: the seed's quick start against the cluster, whichever autoscaler
//!   runs, with bounded waits and the phase durations.
#![allow(dead_code)]

use super::controlplane;
use super::kubelet::{Image, Kubelet, Options as KubeletOptions};
use super::ray::{self, Driver, Gcs, live_workers, poll};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams, WatchEvent,
    WatchParams,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// KubeRay's quick-start sample.
pub const SAMPLE: &str = "samples/ray-cluster.autoscaler.yaml";
pub const NAME: &str = "raycluster-autoscaler";
pub const GROUP: &str = "small-group";
/// The Ray namespace of the seed's `detached_actor.py`.
pub const RAY_NS: &str = "default_namespace";
/// The image the tests give the Ray containers (mapped to the ray 2.60.0 venv).
pub const RAY_IMAGE: &str = "rayproject/ray:2.60.0";
/// Field manager of KubeRay's operator writes (its User-Agent prefix).
pub const KUBERAY_MANAGER: &str = "kuberay-operator";

/// The `kuberay` binary: `$RAYGATE_KUBERAY_BIN`, or what scripts/kuberay-bin.sh prints (it
/// builds the binary on first use). Panics with the reason when neither works.
pub fn bin() -> PathBuf {
    if let Some(p) = std::env::var_os("RAYGATE_KUBERAY_BIN").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "RAYGATE_KUBERAY_BIN={} is not a file (run scripts/kuberay-bin.sh)",
            p.display()
        );
        return p;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kuberay-bin.sh");
    let out = Command::new("bash")
        .arg(script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    assert!(
        out.status.success(),
        "{script} failed ({}): KubeRay's operator is built from tools/kuberay (Go >= 1.25 and \
         the Go module proxy)",
        out.status
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// KubeRay's operator (RayCluster controller) watching one namespace; stopped on drop (SIGTERM,
/// then SIGKILL), its log tail printed when a test panics.
pub struct Operator {
    pub proc: controlplane::KeptProcess,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Operator {
    /// `kuberay operator --watch-namespace ns` plus `args`, with `env` (e.g.
    /// `ENABLE_RANDOM_POD_DELETE`), admin credentials.
    pub fn start(ns: &str, args: &[&str], env: &[(&str, &str)]) -> Operator {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("operator.log");
        let kc = controlplane::shared()
            .kubeconfig_path()
            .display()
            .to_string();
        let mut argv: Vec<String> = vec!["operator".into(), "--watch-namespace".into(), ns.into()];
        argv.extend(args.iter().map(|s| s.to_string()));
        let mut envs: Vec<(&str, &str)> = vec![("KUBECONFIG", kc.as_str())];
        envs.extend_from_slice(env);
        let proc = controlplane::KeptProcess::spawn(&bin(), &argv, &envs, &log)
            .expect("spawn kuberay operator");
        Operator {
            proc,
            log,
            _dir: dir,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The operator's log lines whose `msg` is `msg` (JSON log).
    pub fn log_msgs(&self, msg: &str) -> Vec<Value> {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["msg"] == msg)
            .collect()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "--- KubeRay operator log (tail) ---\n{}",
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        }
        self.proc.stop();
    }
}

/// One state of the RayCluster's first worker group, from the watch.
#[derive(Debug, Clone, PartialEq)]
pub struct RcState {
    pub resource_version: String,
    pub replicas: u64,
    pub workers_to_delete: Vec<String>,
    /// The field managers whose managedFields entry owns `spec.workerGroupSpecs` (an atomic
    /// list in KubeRay's CRD: whoever last changed a group owns all of it).
    pub group_owners: Vec<String>,
}

/// A Pod's deletion, as first seen by the watch.
#[derive(Debug, Clone, PartialEq)]
pub struct PodDeletion {
    pub pod: String,
    pub node_type: String,
    /// The RayCluster states recorded before the deletion was seen.
    pub states_before: usize,
    /// The Pod's resourceVersion in that event (its deletionTimestamp write, or the removal).
    pub resource_version: u64,
    pub at: Instant,
}

/// What the watches recorded.
#[derive(Default)]
pub struct Record {
    pub states: Vec<RcState>,
    pub deletions: Vec<PodDeletion>,
    /// Worker Pods by the time their creation was seen.
    pub created: Vec<(String, Instant)>,
}

/// Control plane, CRD, namespace, operator, kubelet stand-in and the watches.
pub struct Harness {
    pub rt: tokio::runtime::Runtime,
    pub ns: String,
    pub client: kube::Client,
    pub rcs: Api<DynamicObject>,
    pub pods: Api<Pod>,
    pub venv: PathBuf,
    /// The head's GCS port (`rayStartParams.port`).
    pub gcs_port: u16,
    pub record: Arc<Mutex<Record>>,
    pub t0: Instant,
    /// How long [`Harness::settle`] waits: a few autoscaler iterations (default 12 s: Ray's
    /// autoscaler runs every 5 s).
    pub settle_for: Duration,
    /// Whether the autoscaler clears `workersToDelete` once the named Pods are gone (raygate
    /// does; Ray 2.60's autoscaler v2 only rewrites it with its next scale request).
    pub clears_workers_to_delete: bool,
    // Dropped in this order: the stand-in (its processes), then the operator.
    pub kubelet: Kubelet,
    pub operator: Operator,
    _images: tempfile::TempDir,
    _lock: MutexGuard<'static, ()>,
}

impl Harness {
    /// Starts everything for namespace `ns`; `images` are added to the stand-in's images after
    /// `rayproject/ray` (the ray 2.60.0 venv). `operator_env` goes to KubeRay's operator.
    /// Returns `None` when the Ray venv is missing outside CI.
    pub fn start(
        ns: &str,
        images: Vec<(String, Image)>,
        operator_env: &[(&str, &str)],
    ) -> Option<Harness> {
        let venv = ray::venv()?;
        let lock = ray::one_cluster_at_a_time();
        let t0 = Instant::now();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let cp = controlplane::shared();
        let client = {
            let _g = rt.enter();
            cp.client()
        };
        let ns = rt.block_on(async {
            let mut docs =
                controlplane::yaml_docs(&controlplane::kuberay_path("crd/ray.io_rayclusters.yaml"));
            controlplane::install_crd(&client, docs.remove(0)).await;
            let ns = controlplane::create_namespace(&client, ns).await;
            super::kubelet::default_service_account(&client, &ns).await;
            ns
        });
        let gvk = GroupVersionKind::gvk("ray.io", "v1", "RayCluster");
        let ar = ApiResource::from_gvk_with_plural(&gvk, "rayclusters");
        let rcs: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let images_dir = tempfile::tempdir().expect("images dir");
        let mut all = vec![(
            "rayproject/ray".to_string(),
            Image::ray(&venv, &images_dir.path().join("ray")),
        )];
        all.extend(images);
        let mut kopts = KubeletOptions::new(&ns);
        kopts.selector = Some(format!("ray.io/cluster={NAME}"));
        kopts.images = all;
        let kubelet = Kubelet::start(kopts);
        let operator = Operator::start(&ns, &[], operator_env);
        let record: Arc<Mutex<Record>> = Arc::default();
        watch_cluster(&rt, rcs.clone(), record.clone());
        watch_pods(&rt, pods.clone(), record.clone());
        let gcs_port = ray::free_ports(1)[0];
        Some(Harness {
            rt,
            ns,
            client,
            rcs,
            pods,
            venv,
            gcs_port,
            record,
            t0,
            settle_for: Duration::from_secs(12),
            clears_workers_to_delete: true,
            kubelet,
            operator,
            _images: images_dir,
            _lock: lock,
        })
    }

    pub fn phase(&self, what: &str) {
        eprintln!("[{:>6.1} s] {what}", self.t0.elapsed().as_secs_f64());
    }

    /// KubeRay's quick-start sample as the tests run it: the RayCluster and the ConfigMap, with
    /// the images and `rayVersion` of what really runs (ray 2.60.0), the head's GCS on
    /// [`Harness::gcs_port`] (one machine: every node needs its own ports), and
    /// `idleTimeoutSeconds` = `idle`.
    pub fn sample(&self, idle: u64) -> (Value, Value) {
        let mut docs = controlplane::yaml_docs(&controlplane::kuberay_path(SAMPLE));
        assert_eq!(docs.len(), 2, "{SAMPLE}: a RayCluster and a ConfigMap");
        let cm = docs.remove(1);
        let mut rc = docs.remove(0);
        assert_eq!(rc["metadata"]["name"], NAME);
        rc["spec"]["rayVersion"] = json!("2.60.0");
        rc["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] =
            json!(RAY_IMAGE);
        rc["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["image"] =
            json!(RAY_IMAGE);
        rc["spec"]["headGroupSpec"]["rayStartParams"]["port"] = json!(self.gcs_port.to_string());
        rc["spec"]["autoscalerOptions"]["idleTimeoutSeconds"] = json!(idle);
        (rc, cm)
    }

    /// Creates the RayCluster (and the sample's ConfigMap).
    pub fn create(&self, rc: &Value, cm: &Value) -> DynamicObject {
        let cms: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            &self.ns,
            &ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "ConfigMap")),
        );
        // The user's writes carry their own field manager (kube-rs sends no User-Agent, which
        // the API server would record as "unknown").
        let pp = PostParams {
            field_manager: Some(controlplane::FIELD_MANAGER.into()),
            ..Default::default()
        };
        let cm: DynamicObject = serde_json::from_value(cm.clone()).expect("ConfigMap");
        self.rt
            .block_on(cms.create(&pp, &cm))
            .expect("create ConfigMap");
        let rc: DynamicObject = serde_json::from_value(rc.clone()).expect("RayCluster");
        self.rt
            .block_on(self.rcs.create(&pp, &rc))
            .unwrap_or_else(|e| panic!("create RayCluster: {e}"))
    }

    pub fn get(&self) -> DynamicObject {
        self.rt
            .block_on(self.rcs.get(NAME))
            .expect("get RayCluster")
    }

    /// (replicas, workersToDelete) of the first worker group now.
    pub fn rc(&self) -> (u64, Vec<String>) {
        let o = self.get();
        let s = group_state(&o);
        (s.replicas, s.workers_to_delete)
    }

    /// Live (not terminating) Pods of the cluster with `ray.io/node-type=<kind>`, by name.
    pub fn pods_of(&self, kind: &str) -> Vec<Pod> {
        let lp =
            ListParams::default().labels(&format!("ray.io/cluster={NAME},ray.io/node-type={kind}"));
        let mut v = self
            .rt
            .block_on(self.pods.list(&lp))
            .expect("list pods")
            .items;
        v.retain(|p| p.metadata.deletion_timestamp.is_none());
        v.sort_by_key(ResourceExt::name_any);
        v
    }

    pub fn workers(&self) -> Vec<String> {
        self.pods_of("worker")
            .iter()
            .map(ResourceExt::name_any)
            .collect()
    }

    /// Failure context: the stand-in's journal and container logs, the operator's log tail.
    pub fn context(&self) -> String {
        let op = self.operator.log();
        let lines: Vec<&str> = op.lines().collect();
        format!(
            "--- kubelet stand-in ---\n{}\n{}\n--- operator (tail) ---\n{}",
            self.kubelet.journal().join("\n"),
            self.kubelet.log_tails(30),
            lines[lines.len().saturating_sub(30)..].join("\n")
        )
    }

    /// Polls `f` every 250 ms for at most `secs`; panics naming `what`, with the context.
    pub fn wait<T>(&self, secs: u64, what: &str, f: impl FnMut() -> Option<T>) -> T {
        poll(Duration::from_secs(secs), Duration::from_millis(250), f).unwrap_or_else(|| {
            panic!(
                "timed out after {secs} s waiting for {what}\n{}",
                self.context()
            )
        })
    }

    /// Waits for the head Pod to run Ray, and returns a driver and a GCS client for it.
    pub fn head(&self) -> (String, Driver, Gcs) {
        let head = self.wait(
            180,
            "the head Pod Running (KubeRay created it, the stand-in ran it)",
            || {
                self.pods_of("head")
                    .into_iter()
                    .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            },
        );
        let head = head.name_any();
        let address = format!("127.0.0.1:{}", self.gcs_port);
        self.wait(120, "the head's GCS port open", || {
            std::net::TcpStream::connect(("127.0.0.1", self.gcs_port))
                .ok()
                .map(|_| ())
        });
        let tmp = self.wait(30, "the head's Ray temp dir", || {
            self.kubelet.ray_temp_dir(&head)
        });
        let driver = Driver {
            venv: self.venv.clone(),
            address: address.clone(),
            dir: self.kubelet.dir().to_path_buf(),
            ray_tmpdir: tmp,
        };
        let gcs = Gcs::connect_to(&address);
        (head, driver, gcs)
    }

    pub fn record(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every RayCluster state change of (replicas, workersToDelete) with the managers owning the
    /// worker groups at that resourceVersion (the first state is the creation).
    pub fn changes(&self) -> Vec<RcState> {
        let r = self.record();
        let mut out: Vec<RcState> = Vec::new();
        for s in &r.states {
            match out.last() {
                Some(l)
                    if l.replicas == s.replicas && l.workers_to_delete == s.workers_to_delete => {}
                _ => out.push(s.clone()),
            }
        }
        out
    }
}

/// The first worker group's state and the owners of `spec.workerGroupSpecs`.
pub fn group_state(o: &DynamicObject) -> RcState {
    let g = &o.data["spec"]["workerGroupSpecs"][0];
    let wtd = g["scaleStrategy"]["workersToDelete"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let mut owners: Vec<String> = o
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.subresource.as_deref().unwrap_or("").is_empty())
        .filter(|m| {
            m.fields_v1
                .as_ref()
                .map(|f| f.0["f:spec"].get("f:workerGroupSpecs").is_some())
                .unwrap_or(false)
        })
        .map(|m| m.manager.clone().unwrap_or_default())
        .collect();
    owners.sort();
    RcState {
        resource_version: o.resource_version().unwrap_or_default(),
        replicas: g["replicas"].as_u64().unwrap_or(0),
        workers_to_delete: wtd,
        group_owners: owners,
    }
}

fn watch_cluster(
    rt: &tokio::runtime::Runtime,
    api: Api<DynamicObject>,
    record: Arc<Mutex<Record>>,
) {
    rt.spawn(async move {
        // A raw watch from resourceVersion 0 of one object: every change, in order, restarted
        // from the last seen version when the server closes it.
        let mut rv = "0".to_string();
        loop {
            let wp = WatchParams::default().fields(&format!("metadata.name={NAME}"));
            let Ok(s) = api.watch(&wp, &rv).await else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            let mut s = std::pin::pin!(s);
            while let Some(ev) = s.next().await {
                match ev {
                    Ok(WatchEvent::Added(o) | WatchEvent::Modified(o)) => {
                        rv = o.resource_version().unwrap_or(rv);
                        let st = group_state(&o);
                        if let Ok(mut r) = record.lock() {
                            r.states.push(st);
                        }
                    }
                    Ok(WatchEvent::Bookmark(b)) => rv = b.metadata.resource_version,
                    Ok(WatchEvent::Error(_)) | Err(_) => {
                        rv = "0".into();
                        break;
                    }
                    Ok(WatchEvent::Deleted(_)) => {}
                }
            }
        }
    });
}

fn watch_pods(rt: &tokio::runtime::Runtime, api: Api<Pod>, record: Arc<Mutex<Record>>) {
    rt.spawn(async move {
        let mut seen_deleting: BTreeMap<String, ()> = BTreeMap::new();
        let mut seen_created: BTreeMap<String, ()> = BTreeMap::new();
        let mut rv = "0".to_string();
        loop {
            let wp = WatchParams::default().labels(&format!("ray.io/cluster={NAME}"));
            let Ok(s) = api.watch(&wp, &rv).await else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            let mut s = std::pin::pin!(s);
            while let Some(ev) = s.next().await {
                let (p, gone) = match ev {
                    Ok(WatchEvent::Added(p) | WatchEvent::Modified(p)) => (p, false),
                    Ok(WatchEvent::Deleted(p)) => (p, true),
                    Ok(WatchEvent::Bookmark(b)) => {
                        rv = b.metadata.resource_version;
                        continue;
                    }
                    Ok(WatchEvent::Error(_)) | Err(_) => break,
                };
                rv = p.resource_version().unwrap_or(rv);
                let name = p.name_any();
                let kind = p
                    .labels()
                    .get("ray.io/node-type")
                    .cloned()
                    .unwrap_or_default();
                let Ok(mut r) = record.lock() else { continue };
                if kind == "worker" && seen_created.insert(name.clone(), ()).is_none() {
                    r.created.push((name.clone(), Instant::now()));
                }
                if (gone || p.metadata.deletion_timestamp.is_some())
                    && seen_deleting.insert(name.clone(), ()).is_none()
                {
                    let states_before = r.states.len();
                    r.deletions.push(PodDeletion {
                        pod: name,
                        node_type: kind,
                        states_before,
                        resource_version: p
                            .resource_version()
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(u64::MAX),
                        at: Instant::now(),
                    });
                }
            }
        }
    });
}

/// The lines of one section of `ray status` (`Active:`, `Idle:`, `Pending:`).
pub fn section<'a>(status: &'a str, title: &str) -> Vec<&'a str> {
    status
        .lines()
        .skip_while(|l| l.trim() != title)
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .collect()
}

/// Durations of the quick start's phases and what it saw.
#[derive(Debug, Default)]
pub struct QuickStart {
    pub head: String,
    pub pod1: String,
    pub pod2: String,
    pub phases: Vec<(String, Duration)>,
}

impl Harness {
    /// Gives the autoscaler time to act (or, as the test then checks, not to): a few of its
    /// iterations ([`Harness::settle_for`]). Ray's autoscaler bumps its reported state version
    /// only when its instances change, so iterations cannot be counted the same way for both.
    pub fn settle(&self) {
        std::thread::sleep(self.settle_for);
    }

    /// The seed's quick start: actor1 → one worker Pod; actor2 → a second; kill actor1 → after
    /// the idle timeout exactly its Pod named in workersToDelete, deleted by KubeRay, the list
    /// cleared; kill actor2 → zero workers; a 2-CPU actor → no Pod.
    pub fn quick_start(&self, driver: &Driver, gcs: &mut Gcs, head: &str) -> QuickStart {
        let mut q = QuickStart {
            head: head.to_string(),
            ..Default::default()
        };
        let mut t = Instant::now();
        let mut mark = |q: &mut QuickStart, what: &str| {
            q.phases.push((what.to_string(), t.elapsed()));
            self.phase(what);
            t = Instant::now();
        };
        self.wait(120, "the autoscaler's first ReportAutoscalingState", || {
            gcs.reported().filter(|s| s.autoscaler_state_version > 0)
        });
        self.settle();
        assert_eq!(self.rc(), (0, vec![]), "no demand, no replicas");
        assert!(self.workers().is_empty(), "no demand, no worker Pod");
        mark(&mut q, "the autoscaler reports to the GCS, no worker");

        // actor1 → replicas 1, KubeRay creates one worker Pod, the stand-in runs it.
        driver.create_actor(RAY_NS, "actor1", 1, false);
        let p1 = self.wait(90, "replicas 1 and one worker Pod", || {
            let w = self.workers();
            (self.rc().0 == 1 && w.len() == 1).then(|| w[0].clone())
        });
        assert!(
            p1.starts_with(&format!("{NAME}-{GROUP}-worker-")),
            "KubeRay's worker Pod name: {p1}"
        );
        mark(&mut q, "actor1 → replicas 1, one worker Pod");
        let s = gcs.wait_for(
            Duration::from_secs(180),
            "pod1's Ray node",
            |s| live_workers(s) == vec![p1.clone()],
            &|| self.context(),
        );
        let node = s.node_for_pod(&p1).expect("pod1's node");
        assert_eq!(
            node.node_type, GROUP,
            "RAY_NODE_TYPE_NAME from KubeRay's env"
        );
        assert_eq!(
            node.total.get("CPU"),
            Some(&1.0),
            "--num-cpus from the limits"
        );
        assert!(driver.actor_alive(RAY_NS, "actor1"), "actor1 ALIVE on pod1");
        mark(&mut q, "actor1 ALIVE on pod1's Ray node");

        // actor2 → a second Pod.
        driver.create_actor(RAY_NS, "actor2", 1, false);
        let two = self.wait(90, "replicas 2 and two worker Pods", || {
            let w = self.workers();
            (self.rc().0 == 2 && w.len() == 2).then_some(w)
        });
        assert!(two.contains(&p1), "pod1 kept: {two:?}");
        let p2 = two.iter().find(|n| **n != p1).cloned().expect("pod2");
        gcs.wait_for(
            Duration::from_secs(180),
            "two Ray workers",
            |s| live_workers(s) == two,
            &|| self.context(),
        );
        assert!(driver.actor_alive(RAY_NS, "actor2"), "actor2 ALIVE on pod2");
        mark(&mut q, "actor2 → a second worker Pod, actor2 ALIVE");

        // kill actor1 → pod1 idle past the timeout → (1, [pod1]) → KubeRay deletes it → cleared.
        driver.kill_actor(RAY_NS, "actor1");
        self.scaled_down(gcs, &p1, std::slice::from_ref(&p2));
        assert!(driver.actor_alive(RAY_NS, "actor2"), "actor2 survives");
        mark(&mut q, "kill actor1 → pod1 named, deleted, list cleared");
        // Stays at one: the busy node is never chosen.
        self.settle();
        assert_eq!(self.rc().0, 1);
        if self.clears_workers_to_delete {
            assert_eq!(self.rc().1, Vec::<String>::new());
        }
        assert_eq!(self.workers(), vec![p2.clone()]);

        // kill actor2 → zero.
        driver.kill_actor(RAY_NS, "actor2");
        self.scaled_down(gcs, &p2, &[]);
        mark(&mut q, "kill actor2 → zero workers");

        // A 2-CPU actor fits no worker type: infeasible, no Pod.
        driver.create_actor(RAY_NS, "big", 2, false);
        self.wait(90, "the infeasible {CPU: 2} reported", || {
            gcs.reported().filter(|s| {
                s.infeasible_resource_requests
                    .iter()
                    .any(|r| r.resources_bundle.get("CPU") == Some(&2.0))
            })
        });
        self.settle();
        assert!(self.workers().is_empty(), "no Pod for the 2-CPU actor");
        assert_eq!(self.rc().0, 0);
        mark(&mut q, "2-CPU actor → infeasible, no Pod");
        q.pod1 = p1;
        q.pod2 = p2;
        q
    }

    /// After `pod`'s node went idle: `(left.len(), [pod])` was written, the Pod deleted, its node
    /// gone, the list cleared.
    fn scaled_down(&self, gcs: &mut Gcs, pod: &str, left: &[String]) {
        let replicas = left.len() as u64;
        self.wait(120, &format!("{pod} deleted and its Ray node gone"), || {
            (self.workers() == left && live_workers(&gcs.snapshot()) == left).then_some(())
        });
        if self.clears_workers_to_delete {
            self.wait(60, "workersToDelete cleared", || {
                (self.rc() == (replicas, vec![])).then_some(())
            });
        } else {
            assert_eq!(self.rc().0, replicas, "replicas after {pod} went");
        }
        let changes = self.changes();
        assert!(
            changes
                .iter()
                .any(|s| s.replicas == replicas && s.workers_to_delete == [pod.to_string()]),
            "replicas {replicas} with exactly {pod} in workersToDelete: {changes:?}"
        );
        self.wait(60, &format!("the stand-in stopped {pod}"), || {
            self.kubelet
                .journal()
                .iter()
                .any(|l| l.starts_with(&format!("stopped {pod} ")) && l.contains("Pod deleted"))
                .then_some(())
        });
    }
}

/// The proofs about who acted, given the field manager of the autoscaler that should have.
pub struct Proofs<'a> {
    pub h: &'a Harness,
}

impl Proofs<'_> {
    /// Every change of (replicas, workersToDelete) after the creation left the worker groups
    /// owned by `manager` alone.
    pub fn only_manager_wrote_groups(&self, manager: &str) -> Vec<RcState> {
        let changes = self.h.changes();
        assert!(
            changes.len() > 1,
            "the autoscaler changed the cluster: {changes:?}"
        );
        for c in &changes[1..] {
            assert_eq!(
                c.group_owners,
                vec![manager.to_string()],
                "the write that made (replicas {}, workersToDelete {:?}) at resourceVersion {} \
                 came from {:?}, not {manager:?}\nall changes: {changes:#?}",
                c.replicas,
                c.workers_to_delete,
                c.resource_version,
                c.group_owners
            );
        }
        changes
    }

    /// Every worker Pod deletion was of a Pod named in workersToDelete before it; no head Pod was
    /// deleted; KubeRay logged no random or unhealthy-Pod deletion.
    pub fn deletions_only_as_named(&self) -> Vec<PodDeletion> {
        let r = self.h.record();
        for d in &r.deletions {
            assert_eq!(d.node_type, "worker", "a non-worker Pod was deleted: {d:?}");
            // Ordered by resourceVersion, not by arrival: the two watches are separate streams,
            // and KubeRay's deletion of a Pod can reach the Pod watch before the RayCluster write
            // that named it reaches the RayCluster watch. One etcd orders both (its revision).
            let named = r.states.iter().any(|s| {
                s.resource_version
                    .parse::<u64>()
                    .is_ok_and(|v| v < d.resource_version)
                    && s.workers_to_delete.contains(&d.pod)
            });
            assert!(
                named,
                "{} was deleted (resourceVersion {}) but never named in workersToDelete \
                 before: states {:?}",
                d.pod,
                d.resource_version,
                r.states
                    .iter()
                    .map(|s| (&s.resource_version, s.replicas, &s.workers_to_delete))
                    .collect::<Vec<_>>()
            );
        }
        let random = self.h.operator.log_msgs("Randomly deleting Pod");
        assert!(
            random.is_empty(),
            "KubeRay deleted Pods at random: {random:?}"
        );
        let unhealthy: Vec<Value> = self
            .h
            .operator
            .log()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["shouldDelete"] == true)
            .collect();
        assert!(
            unhealthy.is_empty(),
            "KubeRay deleted unhealthy Pods: {unhealthy:?}"
        );
        r.deletions.clone()
    }

    /// Processes that ran Ray's autoscaler: the stand-in's container processes whose command runs
    /// `ray kuberay-autoscaler` through the Ray image, the shim's invocations of it, and any
    /// process (census) running Ray's monitor (`autoscaler/_private/monitor.py`,
    /// `autoscaler/v2/monitor.py`) or `kuberay-autoscaler`.
    pub fn ray_autoscaler_processes(&self) -> Vec<String> {
        let k = &self.h.kubelet;
        let mut out = Vec::new();
        for p in k.processes() {
            if p.image.starts_with("rayproject/ray")
                && p.argv.iter().any(|a| a.contains("kuberay-autoscaler"))
            {
                out.push(format!(
                    "container {}/{} pid {}: {:?}",
                    p.pod, p.container, p.pid, p.argv
                ));
            }
        }
        for v in k.ray_invocations() {
            if v["argv"][0] == "kuberay-autoscaler" {
                out.push(format!("ray shim: {v}"));
            }
        }
        for (pid, cmd) in k.census() {
            // Not `_private/log_monitor.py`, which every Ray node runs.
            if cmd.contains("autoscaler/_private/monitor.py")
                || cmd.contains("autoscaler/v2/monitor.py")
                || (cmd.contains("kuberay-autoscaler") && cmd.contains("python"))
            {
                out.push(format!("process {pid}: {cmd}"));
            }
        }
        out
    }
}

/// Whether `p` is the ray 2.60.0 venv's Python or a path under `venv`.
pub fn under(p: &Path, venv: &Path) -> bool {
    p.starts_with(venv)
}
