//! A kubelet stand-in for the end-to-end tests: it runs the Pods of one namespace as local
//! processes on this machine, against the control plane of `support/controlplane.rs`.
//!
//! Include next to it: `#[path = "support/controlplane.rs"] mod controlplane;`,
//! `#[path = "support/ray.rs"] mod ray;` and `#[path = "support/kubelet.rs"] mod kubelet;`.
//!
//! What it does for every Pod it selects (namespace + optional label selector), as a kubelet:
//! * binds it to the node `kubelet-standin` (a Binding; there is no scheduler);
//! * for a ServiceAccount token (unless `automountServiceAccountToken: false`) asks the
//!   TokenRequest API for a token of the Pod's ServiceAccount bound to the Pod, and writes
//!   `token`, `ca.crt` and `namespace`;
//! * runs the init containers one after the other to completion, then the containers, each as a
//!   process: `command` + `args` with `$(VAR)` expanded from the container's environment as the
//!   kubelet expands them (`$$` is a literal `$`, unknown references stay as written), found on
//!   the "image's" PATH (see [`Image`]); the environment is the image's, then
//!   `KUBERNETES_SERVICE_HOST/PORT(_HTTPS)` and `KUBERNETES_PORT*` pointing at the API server on
//!   127.0.0.1, then the container's `env` (values with `$(VAR)` expansion; `fieldRef` to
//!   `metadata.name/namespace/uid/labels['…']/annotations['…']`, `spec.nodeName`,
//!   `spec.serviceAccountName`, `status.podIP/hostIP`; `resourceFieldRef`; `configMapKeyRef` and
//!   `secretKeyRef` read from the API) — nothing is inherited from the test process;
//! * each container process gets its own mount namespace (we are root; nothing changes on the
//!   host): a tmpfs on `/run` (so `/var/run`) holding the token files at
//!   `/var/run/secrets/kubernetes.io/serviceaccount`, read-only, and a bind-mounted `/etc/hosts`
//!   that maps every Service of the namespace (`<svc>`, `<svc>.<ns>`, `<svc>.<ns>.svc`,
//!   `<svc>.<ns>.svc.cluster.local`) to 127.0.0.1 — the cluster DNS of one machine. Ray's Python
//!   client and kube-rs both read the standard paths;
//! * reports the Pod's status (phase, `podIP`/`hostIP` 127.0.0.1, conditions, init and container
//!   statuses with running/terminated states and restart counts) and restarts exited containers
//!   per `restartPolicy` (1 s back-off);
//! * when the Pod is deleted (deletionTimestamp), SIGTERMs each container's process group, SIGKILLs
//!   what is left after the grace period (the Pod's, capped by [`Options::max_grace`]), then
//!   removes the Pod object (grace 0, uid precondition), as a kubelet's final delete does.
//!
//! What it does not do: pull images (an image is a PATH directory, [`Image`]), mount volumes
//! (emptyDir/configMap mounts are not made; Ray finds its temp and log directories by absolute
//! path), run probes (a running container counts as ready), enforce resource limits, or give pods
//! their own network: every pod is 127.0.0.1, so Ray nodes need distinct ports, which the Ray
//! image's `ray` shim (`scripts/standin_ray.py`) takes care of.
//!
//! Every process it starts carries `RAYGATE_RAY_OWNER=<its directory>` (scripts/test.sh's stray
//! check), runs in its own process group with `PR_SET_PDEATHSIG(SIGKILL)` (started from the
//! stand-in's own thread, which outlives them), and is recorded in [`Kubelet::processes`]; a
//! census of `/proc` ([`Kubelet::census`]) records every process ever seen with that owner, and
//! the Ray shim journals each `ray` invocation ([`Kubelet::ray_invocations`]) — the proofs of
//! which processes ran.
#![allow(dead_code)]

use super::controlplane;
use super::ray::{RayProcess, free_port_range, free_ports};
use k8s_openapi::api::core::v1::{Container, Pod, Service};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use raygate::quantity::Quantity;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The node every Pod is bound to.
pub const NODE: &str = "kubelet-standin";
/// Field manager of the stand-in's status writes.
pub const FIELD_MANAGER: &str = "kubelet-standin";
/// How often the stand-in looks at the Pods.
const TICK: Duration = Duration::from_millis(200);
/// Back-off before a container is restarted.
const RESTART_BACKOFF: Duration = Duration::from_secs(1);

/// A container image as the stand-in "runs" it: a PATH and an environment.
#[derive(Clone, Default)]
pub struct Image {
    /// Directories searched for the command, first to last, before
    /// `/usr/local/bin:/usr/bin:/bin`; also the container's `PATH`.
    pub path: Vec<PathBuf>,
    /// The image's environment (Docker `ENV`), below everything Kubernetes sets.
    pub env: Vec<(String, String)>,
    /// What a container without `command` runs (the image's entrypoint), given the Pod and the
    /// container; `None`: such a container fails to start.
    pub entrypoint: Option<Arc<EntrypointFn>>,
}

/// See [`Image::entrypoint`].
pub type EntrypointFn = dyn Fn(&Pod, &Container) -> Result<Vec<String>, String> + Send + Sync;

impl Image {
    /// The ray 2.60.0 venv as an image: its `ray` is `scripts/standin_ray.py` (in `dir/bin`,
    /// written here), which adapts `ray start` to one machine; `python`, `python3` and the rest
    /// of the venv follow on the PATH.
    pub fn ray(venv: &Path, dir: &Path) -> Image {
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).expect("mkdir image bin");
        let shim = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/standin_ray.py");
        write_executable(
            &bin.join("ray"),
            &format!(
                "#!/bin/sh\nexec '{}' '{}' \"$@\"\n",
                venv.join("bin/python").display(),
                shim.display()
            ),
        );
        Image {
            path: vec![bin, venv.join("bin")],
            env: vec![("PYTHONUNBUFFERED".into(), "1".into())],
            entrypoint: None,
        }
    }

    /// An image whose `ray` is `program` (e.g. raygate's compat entry point): `dir/bin/ray` is a
    /// symlink to it.
    pub fn with_ray_program(program: &Path, dir: &Path) -> Image {
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).expect("mkdir image bin");
        let link = bin.join("ray");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(program, &link).expect("symlink ray");
        Image {
            path: vec![bin],
            env: Vec::new(),
            entrypoint: None,
        }
    }
}

fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Creates the namespace's `default` ServiceAccount, which the ServiceAccount controller (not
/// running on this control plane) creates in every namespace and whose token the stand-in
/// mounts into Pods that name no ServiceAccount. Idempotent.
pub async fn default_service_account(client: &kube::Client, ns: &str) {
    let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(client.clone(), ns);
    let sa = serde_json::from_value(json!({"metadata": {"name": "default"}})).expect("sa");
    match sas.create(&PostParams::default(), &sa).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("create ServiceAccount {ns}/default: {e}"),
    }
}

/// What the stand-in runs.
pub struct Options {
    pub namespace: String,
    /// Label selector of the Pods it runs (`None`: every Pod of the namespace).
    pub selector: Option<String>,
    /// Images by name prefix: the first entry whose prefix the Pod's image starts with.
    pub images: Vec<(String, Image)>,
    /// New Pods stay Pending while set (as if their image were still being pulled);
    /// [`Kubelet::release`] lets them start.
    pub hold: bool,
    /// Cap on the grace period between SIGTERM and SIGKILL.
    pub max_grace: Duration,
}

impl Options {
    pub fn new(namespace: &str) -> Options {
        Options {
            namespace: namespace.to_string(),
            selector: None,
            images: Vec::new(),
            hold: false,
            max_grace: Duration::from_secs(10),
        }
    }
}

/// One container process the stand-in started.
#[derive(Debug, Clone)]
pub struct ProcRecord {
    pub pod: String,
    pub container: String,
    pub init: bool,
    pub image: String,
    pub pid: u32,
    /// The command line after `$(VAR)` expansion (argv[0] as written in the spec).
    pub argv: Vec<String>,
    /// The program that was executed (argv[0] found on the image's PATH).
    pub program: PathBuf,
    /// `Some(status)` once it exited.
    pub exit: Option<String>,
    pub log: PathBuf,
}

#[derive(Default)]
struct Shared {
    journal: Vec<String>,
    procs: Vec<ProcRecord>,
    /// pid → command line of every process seen carrying our RAYGATE_RAY_OWNER.
    census: BTreeMap<u32, String>,
    /// Ray `--temp-dir` of each container that ran `ray start` through the shim: pod → dir.
    ray_temp: BTreeMap<String, PathBuf>,
}

/// The stand-in, running on its own thread until [`Kubelet::shutdown`] or drop.
pub struct Kubelet {
    hold: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    shared: Arc<Mutex<Shared>>,
    dir: PathBuf,
    _dir: Option<tempfile::TempDir>,
    thread: Option<std::thread::JoinHandle<Vec<RayProcess>>>,
}

impl Kubelet {
    /// Starts the stand-in. Its directory (container logs, Ray temp dirs, token files, the
    /// hosts file) is under `RAYGATE_RAY_TMPDIR` (else the system temp dir), short enough for
    /// Ray's socket paths.
    pub fn start(opts: Options) -> Kubelet {
        let parent = std::env::var_os("RAYGATE_RAY_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let tmp = tempfile::Builder::new()
            .prefix("kl-")
            .tempdir_in(parent)
            .expect("kubelet tempdir");
        let dir = tmp.path().to_path_buf();
        let hold = Arc::new(AtomicBool::new(opts.hold));
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (h, s, sh, d) = (hold.clone(), stop.clone(), shared.clone(), dir.clone());
        let thread = std::thread::Builder::new()
            .name("kubelet-standin".into())
            .spawn(move || {
                let mut k = Loop::new(opts, d, h, s, sh);
                k.run()
            })
            .expect("spawn kubelet stand-in");
        Kubelet {
            hold,
            stop,
            shared,
            dir,
            _dir: Some(tmp),
            thread: Some(thread),
        }
    }

    /// The stand-in's directory (`RAYGATE_RAY_OWNER` of its processes).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Lets held Pods start.
    pub fn release(&self) {
        self.hold.store(false, Ordering::SeqCst);
    }

    /// What it did, one line per event; failures start with `error`.
    pub fn journal(&self) -> Vec<String> {
        self.shared
            .lock()
            .map(|s| s.journal.clone())
            .unwrap_or_default()
    }

    /// Every container process it started.
    pub fn processes(&self) -> Vec<ProcRecord> {
        self.shared
            .lock()
            .map(|s| s.procs.clone())
            .unwrap_or_default()
    }

    /// (pid, command line) of every process seen (sampled every second) carrying this
    /// stand-in's `RAYGATE_RAY_OWNER`: the container processes and all their descendants.
    pub fn census(&self) -> Vec<(u32, String)> {
        self.shared
            .lock()
            .map(|s| s.census.iter().map(|(p, c)| (*p, c.clone())).collect())
            .unwrap_or_default()
    }

    /// Every invocation of the Ray image's `ray` shim: `{"pid", "argv", "exec"}`.
    pub fn ray_invocations(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("ray-journal.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The Ray `--temp-dir` of the Pod's Ray node (set once its `ray start` ran).
    pub fn ray_temp_dir(&self, pod: &str) -> Option<PathBuf> {
        self.shared
            .lock()
            .ok()
            .and_then(|s| s.ray_temp.get(pod).cloned())
    }

    /// The output of the Pod's container `container` so far (all its runs).
    pub fn log(&self, pod: &str, container: &str) -> String {
        std::fs::read_to_string(
            self.dir
                .join("pods")
                .join(pod)
                .join(format!("{container}.log")),
        )
        .unwrap_or_default()
    }

    /// The last `n` lines of every container log, for failure messages.
    pub fn log_tails(&self, n: usize) -> String {
        let mut out = String::new();
        for p in self.processes() {
            let text = std::fs::read_to_string(&p.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out += &format!(
                "--- {}/{} (pid {}, exit {:?}) ---\n{}\n",
                p.pod,
                p.container,
                p.pid,
                p.exit,
                lines[lines.len().saturating_sub(n)..].join("\n")
            );
        }
        out
    }

    /// Stops every container still running (SIGTERM, then SIGKILL after the grace period) and
    /// returns every process it ever started, stopped.
    pub fn shutdown(&mut self) -> Vec<RayProcess> {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.take() {
            Some(t) => t.join().unwrap_or_default(),
            None => Vec::new(),
        }
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- kubelet stand-in journal ---\n{}\n{}",
                self.journal().join("\n"),
                self.log_tails(25)
            );
        }
        self.shutdown();
        if std::thread::panicking()
            && std::env::var_os("RAYGATE_KEEP_RAY_TMP").is_some()
            && let Some(t) = self._dir.take()
        {
            eprintln!("kept kubelet dir {}", t.keep().display());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The loop
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum CState {
    Waiting(&'static str),
    Running {
        since: String,
    },
    Terminated {
        code: i32,
        since: String,
        finished: String,
    },
}

struct Ctr {
    spec: Container,
    init: bool,
    proc: Option<RayProcess>,
    /// Index into Shared::procs of the current run.
    record: Option<usize>,
    restarts: u32,
    state: CState,
    last: Option<CState>,
    restart_at: Option<Instant>,
}

struct PodRun {
    name: String,
    uid: String,
    image_of: BTreeMap<String, String>,
    dir: PathBuf,
    sa_dir: Option<PathBuf>,
    init: Vec<Ctr>,
    main: Vec<Ctr>,
    restart_policy: String,
    started: String,
    gcs: String,
    /// Set once the Pod is being stopped: the SIGKILL deadline and why.
    stopping: Option<(Instant, String)>,
    last_status: Value,
    failed_start: Option<String>,
}

struct Loop {
    opts: Options,
    dir: PathBuf,
    hold: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    shared: Arc<Mutex<Shared>>,
    rt: tokio::runtime::Runtime,
    pods_api: Api<Pod>,
    svc_api: Api<Service>,
    client: kube::Client,
    running: BTreeMap<String, PodRun>,
    /// Pods that finished (stopped) or failed to set up, by uid, never started again.
    done: BTreeSet<String>,
    stopped: Vec<RayProcess>,
    hosts: PathBuf,
    hosts_text: String,
    seq: AtomicUsize,
    last_census: Instant,
    server_port: u16,
}

fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

impl Loop {
    fn new(
        opts: Options,
        dir: PathBuf,
        hold: Arc<AtomicBool>,
        stop: Arc<AtomicBool>,
        shared: Arc<Mutex<Shared>>,
    ) -> Loop {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let client = {
            let _g = rt.enter();
            controlplane::shared().client()
        };
        let pods_api = Api::namespaced(client.clone(), &opts.namespace);
        let svc_api = Api::namespaced(client.clone(), &opts.namespace);
        let server_port = controlplane::shared()
            .server()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("API server port");
        let hosts = dir.join("hosts");
        let mut l = Loop {
            opts,
            hosts,
            hosts_text: String::new(),
            dir,
            hold,
            stop,
            shared,
            rt,
            pods_api,
            svc_api,
            client,
            running: BTreeMap::new(),
            done: BTreeSet::new(),
            stopped: Vec::new(),
            seq: AtomicUsize::new(0),
            last_census: Instant::now() - Duration::from_secs(10),
            server_port,
        };
        l.write_hosts(&[]);
        l
    }

    fn note(&self, s: String) {
        if let Ok(mut sh) = self.shared.lock() {
            sh.journal.push(s);
        }
    }

    fn run(&mut self) -> Vec<RayProcess> {
        let _in_rt = self.rt.enter();
        while !self.stop.load(Ordering::SeqCst) {
            self.tick();
            if self.last_census.elapsed() >= Duration::from_secs(1) {
                self.census();
                self.last_census = Instant::now();
            }
            std::thread::sleep(TICK);
        }
        // Test over: stop whatever still runs.
        let names: Vec<String> = self.running.keys().cloned().collect();
        for n in &names {
            self.begin_stop(n, "test over", Duration::ZERO);
        }
        let deadline = Instant::now() + self.opts.max_grace;
        while self.running.values().any(|r| r.stopping.is_some()) && Instant::now() < deadline {
            for n in &names {
                self.finish_stop(n);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for n in &names {
            self.finish_stop(n);
        }
        self.census();
        std::mem::take(&mut self.stopped)
    }

    fn tick(&mut self) {
        let mut lp = ListParams::default();
        if let Some(s) = &self.opts.selector {
            lp = lp.labels(s);
        }
        let pods = match self.rt.block_on(self.pods_api.list(&lp)) {
            Ok(l) => l.items,
            Err(e) => {
                self.note(format!("error: list pods: {e}"));
                return;
            }
        };
        self.refresh_hosts();
        let listed: BTreeSet<String> = pods.iter().map(ResourceExt::name_any).collect();
        for pod in &pods {
            let name = pod.name_any();
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            if pod.metadata.deletion_timestamp.is_some() {
                if self.running.contains_key(&name) {
                    let grace = pod
                        .metadata
                        .deletion_grace_period_seconds
                        .or(pod
                            .spec
                            .as_ref()
                            .and_then(|s| s.termination_grace_period_seconds))
                        .unwrap_or(30);
                    let grace = Duration::from_secs(grace.max(0) as u64).min(self.opts.max_grace);
                    self.begin_stop(&name, "Pod deleted", grace);
                    if self.finish_stop(&name) {
                        self.final_delete(&name, &uid);
                    }
                } else {
                    // Never started here (or already stopped): its containers are gone.
                    self.final_delete(&name, &uid);
                }
                continue;
            }
            if self.done.contains(&uid) {
                continue;
            }
            if !self.running.contains_key(&name) {
                if self.hold.load(Ordering::SeqCst) {
                    continue;
                }
                match self.setup(pod) {
                    Ok(run) => {
                        self.note(format!("admitted {name}"));
                        self.running.insert(name.clone(), run);
                    }
                    Err(e) => {
                        // Retried next tick (e.g. the ServiceAccount is not there yet); noted once.
                        let line = format!("error: set up {name}: {e}");
                        if self
                            .shared
                            .lock()
                            .map(|s| s.journal.last() != Some(&line))
                            .unwrap_or(true)
                        {
                            self.note(line);
                        }
                        continue;
                    }
                }
            }
            self.drive(&name, pod);
        }
        // Pods removed without our seeing their deletion.
        let vanished: Vec<String> = self
            .running
            .keys()
            .filter(|n| !listed.contains(*n))
            .cloned()
            .collect();
        for n in vanished {
            self.begin_stop(&n, "Pod vanished", Duration::ZERO);
            self.finish_stop(&n);
        }
    }

    /// Binds the Pod, writes its token files and prepares its containers.
    fn setup(&mut self, pod: &Pod) -> Result<PodRun, String> {
        let name = pod.name_any();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let spec = pod.spec.as_ref().ok_or("no spec")?;
        let dir = self.dir.join("pods").join(&name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        // The ServiceAccount token, as the kubelet projects it.
        let sa_dir = if spec.automount_service_account_token == Some(false) {
            None
        } else {
            // Without the ServiceAccount admission plugin (disabled on this control plane) a Pod
            // that names none keeps an empty name instead of `default`; such a token cannot be
            // bound to the Pod, so it is `default`'s unbound one.
            let named = spec.service_account_name.clone().filter(|s| !s.is_empty());
            let token = match &named {
                Some(sa) => self.token(sa, Some((&name, &uid)))?,
                None => self.token("default", None)?,
            };
            let d = dir.join("serviceaccount");
            std::fs::create_dir_all(&d).map_err(|e| format!("mkdir: {e}"))?;
            let w = |f: &str, s: &str| {
                std::fs::write(d.join(f), s).map_err(|e| format!("write {f}: {e}"))
            };
            w("token", &token)?;
            w("ca.crt", controlplane::shared().ca_pem())?;
            w("namespace", &self.opts.namespace)?;
            Some(d)
        };
        if spec.node_name.as_deref().unwrap_or("").is_empty() {
            let binding = json!({
                "apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": name},
                "target": {"apiVersion": "v1", "kind": "Node", "name": NODE}
            });
            self.rt
                .block_on(self.pods_api.create_subresource::<_, Value>(
                    "binding",
                    &name,
                    &PostParams::default(),
                    &binding,
                ))
                .map_err(|e| format!("bind to {NODE}: {e}"))?;
        }
        let mk = |c: &Container, init: bool| Ctr {
            spec: c.clone(),
            init,
            proc: None,
            record: None,
            restarts: 0,
            state: CState::Waiting(if init {
                "PodInitializing"
            } else {
                "ContainerCreating"
            }),
            last: None,
            restart_at: None,
        };
        let image_of = spec
            .init_containers
            .iter()
            .flatten()
            .chain(spec.containers.iter())
            .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
            .collect();
        // The Pod's own GCS: KubeRay's RAY_PORT on the Ray container (6379 by default).
        let gcs_port = spec
            .containers
            .iter()
            .flat_map(|c| c.env.iter().flatten())
            .find(|e| e.name == "RAY_PORT")
            .and_then(|e| e.value.clone())
            .unwrap_or_else(|| "6379".into());
        Ok(PodRun {
            name,
            uid,
            image_of,
            dir,
            sa_dir,
            init: spec
                .init_containers
                .iter()
                .flatten()
                .map(|c| mk(c, true))
                .collect(),
            main: spec.containers.iter().map(|c| mk(c, false)).collect(),
            restart_policy: spec
                .restart_policy
                .clone()
                .unwrap_or_else(|| "Always".into()),
            started: now_rfc3339(),
            gcs: format!("127.0.0.1:{gcs_port}"),
            stopping: None,
            last_status: Value::Null,
            failed_start: None,
        })
    }

    /// A token for ServiceAccount `sa` (TokenRequest API), bound to the Pod `(name, uid)`.
    fn token(&self, sa: &str, pod: Option<(&str, &str)>) -> Result<String, String> {
        let api: Api<k8s_openapi::api::core::v1::ServiceAccount> =
            Api::namespaced(self.client.clone(), &self.opts.namespace);
        let mut req = json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600}
        });
        if let Some((name, uid)) = pod {
            req["spec"]["boundObjectRef"] =
                json!({"apiVersion": "v1", "kind": "Pod", "name": name, "uid": uid});
        }
        let resp: Value = self
            .rt
            .block_on(api.create_subresource("token", sa, &PostParams::default(), &req))
            .map_err(|e| format!("TokenRequest for ServiceAccount {sa}: {e}"))?;
        resp["status"]["token"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| format!("TokenRequest for {sa}: no token in {resp}"))
    }

    /// Starts, restarts and watches the Pod's containers, and reports its status.
    fn drive(&mut self, name: &str, pod: &Pod) {
        let Some(mut run) = self.running.remove(name) else {
            return;
        };
        if run.stopping.is_none() && run.failed_start.is_none() {
            self.advance(&mut run, pod);
        }
        let status = pod_status(&run);
        if status != run.last_status {
            let pp = PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            };
            match self.rt.block_on(self.pods_api.patch_status(
                name,
                &pp,
                &Patch::Merge(&json!({ "status": status })),
            )) {
                Ok(_) => run.last_status = status,
                Err(e) => self.note(format!("error: status of {name}: {e}")),
            }
        }
        self.running.insert(name.to_string(), run);
    }

    fn advance(&mut self, run: &mut PodRun, pod: &Pod) {
        // Reap exits.
        for c in run.init.iter_mut().chain(run.main.iter_mut()) {
            if let Some(p) = c.proc.as_mut()
                && let Some(st) = p.try_exit()
            {
                let code = st.code().unwrap_or_else(|| {
                    128 + std::os::unix::process::ExitStatusExt::signal(&st).unwrap_or(0)
                });
                let since = match &c.state {
                    CState::Running { since } => since.clone(),
                    _ => now_rfc3339(),
                };
                c.state = CState::Terminated {
                    code,
                    since,
                    finished: now_rfc3339(),
                };
                if let Some(i) = c.record
                    && let Ok(mut sh) = self.shared.lock()
                {
                    sh.procs[i].exit = Some(st.to_string());
                }
                let p = c.proc.take().expect("proc");
                if !c.init || code != 0 {
                    self.note(format!(
                        "{}: container {} of {} (pid {}) exited on its own: {st}",
                        if code == 0 { "exit" } else { "error" },
                        c.spec.name,
                        run.name,
                        p.pid()
                    ));
                }
                self.stopped.push(p);
                let restart = match run.restart_policy.as_str() {
                    "Never" => false,
                    "OnFailure" => code != 0,
                    _ => !c.init || code != 0,
                };
                if restart {
                    c.restart_at = Some(Instant::now() + RESTART_BACKOFF);
                }
            }
        }
        // Init containers in order, then all containers.
        let next_init = run
            .init
            .iter()
            .position(|c| !matches!(c.state, CState::Terminated { code: 0, .. }));
        let targets: Vec<(bool, usize)> = match next_init {
            Some(i) => vec![(true, i)],
            None => (0..run.main.len()).map(|i| (false, i)).collect(),
        };
        for (init, i) in targets {
            let due = {
                let c = if init { &run.init[i] } else { &run.main[i] };
                c.proc.is_none()
                    && match (&c.state, c.restart_at) {
                        (CState::Waiting(_), _) => true,
                        (CState::Terminated { .. }, Some(at)) => Instant::now() >= at,
                        _ => false,
                    }
            };
            if !due {
                continue;
            }
            let spec = if init {
                run.init[i].spec.clone()
            } else {
                run.main[i].spec.clone()
            };
            match self.start_container(run, pod, &spec, init) {
                Ok((p, rec)) => {
                    let c = if init {
                        &mut run.init[i]
                    } else {
                        &mut run.main[i]
                    };
                    if matches!(c.state, CState::Terminated { .. }) {
                        c.restarts += 1;
                        c.last = Some(c.state.clone());
                    }
                    c.state = CState::Running {
                        since: now_rfc3339(),
                    };
                    c.restart_at = None;
                    c.record = Some(rec);
                    c.proc = Some(p);
                }
                Err(e) => {
                    self.note(format!("error: start {} of {}: {e}", spec.name, run.name));
                    run.failed_start = Some(e);
                    return;
                }
            }
        }
    }

    fn start_container(
        &mut self,
        run: &PodRun,
        pod: &Pod,
        c: &Container,
        init: bool,
    ) -> Result<(RayProcess, usize), String> {
        let image_name = run.image_of.get(&c.name).cloned().unwrap_or_default();
        let image = self
            .opts
            .images
            .iter()
            .find(|(prefix, _)| image_name.starts_with(prefix.as_str()))
            .map(|(_, i)| i.clone())
            .ok_or_else(|| format!("image {image_name:?}: no image of the stand-in matches"))?;
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        // Harness variables (the Ray shim's ports and dirs; the stray check's owner).
        let ports = free_ports(12);
        let (lo, hi) = free_port_range(40);
        let ray_temp = self.dir.join(format!("n{n}"));
        let mut env: Vec<(String, String)> = vec![(
            "PATH".into(),
            image
                .path
                .iter()
                .map(|p| p.display().to_string())
                .chain(["/usr/local/bin", "/usr/bin", "/bin"].map(String::from))
                .collect::<Vec<_>>()
                .join(":"),
        )];
        env.extend(image.env.iter().cloned());
        env.push(("HOME".into(), run.dir.display().to_string()));
        let port = self.server_port;
        for (k, v) in [
            ("KUBERNETES_SERVICE_HOST", "127.0.0.1".to_string()),
            ("KUBERNETES_SERVICE_PORT", port.to_string()),
            ("KUBERNETES_SERVICE_PORT_HTTPS", port.to_string()),
            ("KUBERNETES_PORT", format!("tcp://127.0.0.1:{port}")),
            ("KUBERNETES_PORT_443_TCP", format!("tcp://127.0.0.1:{port}")),
            ("KUBERNETES_PORT_443_TCP_PROTO", "tcp".to_string()),
            ("KUBERNETES_PORT_443_TCP_PORT", port.to_string()),
            ("KUBERNETES_PORT_443_TCP_ADDR", "127.0.0.1".to_string()),
        ] {
            env.push((k.into(), v));
        }
        let container_env = self.resolve_env(pod, c, &env)?;
        env.extend(container_env);
        let mut argv: Vec<String> = c.command.clone().unwrap_or_default();
        if argv.is_empty() {
            argv = match &image.entrypoint {
                Some(f) => f(pod, c)?,
                None => {
                    return Err(format!(
                        "container {} has no command and image {image_name:?} no entrypoint",
                        c.name
                    ));
                }
            };
        }
        argv.extend(c.args.clone().unwrap_or_default());
        let vars: BTreeMap<&str, &str> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let argv: Vec<String> = argv.iter().map(|a| expand(a, &vars)).collect();
        let program = find_program(&argv[0], &image.path)
            .ok_or_else(|| format!("{}: not found on the image's PATH", argv[0]))?;
        for (k, v) in [
            ("RAYGATE_RAY_OWNER", self.dir.display().to_string()),
            (
                "RAYGATE_STANDIN_PORTS",
                ports
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("RAYGATE_STANDIN_WORKER_PORTS", format!("{lo}-{hi}")),
            ("RAYGATE_STANDIN_TEMP", ray_temp.display().to_string()),
            ("RAYGATE_STANDIN_GCS", run.gcs.clone()),
            (
                "RAYGATE_STANDIN_JOURNAL",
                self.dir.join("ray-journal.jsonl").display().to_string(),
            ),
        ] {
            env.push((k.into(), v));
        }
        let log = run.dir.join(format!("{}.log", c.name));
        let child = spawn_sandboxed(
            &program,
            &argv,
            &env,
            &log,
            run.sa_dir.as_deref(),
            &self.hosts,
        )?;
        let p = RayProcess::from_child(child, &format!("{}/{}", run.name, c.name), &log);
        let rec = ProcRecord {
            pod: run.name.clone(),
            container: c.name.clone(),
            init,
            image: image_name,
            pid: p.pid(),
            argv: argv.clone(),
            program,
            exit: None,
            log,
        };
        self.note(format!(
            "started {} {} (pid {}): {}",
            run.name,
            c.name,
            p.pid(),
            argv.join(" ")
        ));
        let idx = {
            let mut sh = self.shared.lock().map_err(|_| "poisoned")?;
            if !init && argv.iter().any(|a| a.contains("ray start")) {
                sh.ray_temp.insert(run.name.clone(), ray_temp.clone());
            }
            sh.procs.push(rec);
            sh.procs.len() - 1
        };
        Ok((p, idx))
    }

    /// The container's `env` as the kubelet resolves it, given what is defined before it.
    fn resolve_env(
        &self,
        pod: &Pod,
        c: &Container,
        before: &[(String, String)],
    ) -> Result<Vec<(String, String)>, String> {
        let mut vars: BTreeMap<String, String> = before.iter().cloned().collect();
        let mut out = Vec::new();
        if let Some(from) = &c.env_from
            && !from.is_empty()
        {
            for f in from {
                let prefix = f.prefix.clone().unwrap_or_default();
                let data = if let Some(cm) = &f.config_map_ref {
                    self.config_data("configmaps", &cm.name, cm.optional == Some(true))?
                } else if let Some(s) = &f.secret_ref {
                    self.config_data("secrets", &s.name, s.optional == Some(true))?
                } else {
                    BTreeMap::new()
                };
                for (k, v) in data {
                    vars.insert(format!("{prefix}{k}"), v.clone());
                    out.push((format!("{prefix}{k}"), v));
                }
            }
        }
        for e in c.env.iter().flatten() {
            let v = if let Some(v) = &e.value {
                let m: BTreeMap<&str, &str> =
                    vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                expand(v, &m)
            } else if let Some(from) = &e.value_from {
                if let Some(f) = &from.field_ref {
                    field_value(pod, &f.field_path).ok_or_else(|| {
                        format!("env {}: fieldRef {} not resolvable", e.name, f.field_path)
                    })?
                } else if let Some(r) = &from.resource_field_ref {
                    resource_value(c, &r.resource)
                        .map_err(|err| format!("env {}: {err}", e.name))?
                } else if let Some(k) = &from.config_map_key_ref {
                    let d = self.config_data("configmaps", &k.name, k.optional == Some(true))?;
                    d.get(&k.key).cloned().unwrap_or_default()
                } else if let Some(k) = &from.secret_key_ref {
                    let d = self.config_data("secrets", &k.name, k.optional == Some(true))?;
                    d.get(&k.key).cloned().unwrap_or_default()
                } else {
                    return Err(format!("env {}: empty valueFrom", e.name));
                }
            } else {
                String::new()
            };
            vars.insert(e.name.clone(), v.clone());
            out.push((e.name.clone(), v));
        }
        Ok(out)
    }

    /// `data` of a ConfigMap or Secret (Secret values base64-decoded).
    fn config_data(
        &self,
        kind: &str,
        name: &str,
        optional: bool,
    ) -> Result<BTreeMap<String, String>, String> {
        use base64::Engine as _;
        let ar = kube::api::ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: if kind == "secrets" {
                "Secret"
            } else {
                "ConfigMap"
            }
            .into(),
            plural: kind.into(),
        };
        let api: Api<kube::api::DynamicObject> =
            Api::namespaced_with(self.client.clone(), &self.opts.namespace, &ar);
        let obj = match self.rt.block_on(api.get_opt(name)) {
            Ok(Some(o)) => o,
            Ok(None) if optional => return Ok(BTreeMap::new()),
            Ok(None) => return Err(format!("{kind}/{name} not found")),
            Err(e) => return Err(format!("get {kind}/{name}: {e}")),
        };
        let mut out = BTreeMap::new();
        if let Some(d) = obj.data["data"].as_object() {
            for (k, v) in d {
                let s = v.as_str().unwrap_or_default();
                let s = if kind == "secrets" {
                    let b = base64::engine::general_purpose::STANDARD
                        .decode(s)
                        .map_err(|e| format!("{kind}/{name} {k}: {e}"))?;
                    String::from_utf8_lossy(&b).into_owned()
                } else {
                    s.to_string()
                };
                out.insert(k.clone(), s);
            }
        }
        Ok(out)
    }

    /// SIGTERM to every running container of the Pod (once); SIGKILL after `grace`.
    fn begin_stop(&mut self, name: &str, why: &str, grace: Duration) {
        let Some(run) = self.running.get_mut(name) else {
            return;
        };
        if run.stopping.is_some() {
            return;
        }
        for c in run.init.iter().chain(run.main.iter()) {
            if let Some(p) = &c.proc {
                p.signal_group(libc::SIGTERM);
            }
        }
        run.stopping = Some((Instant::now() + grace, why.to_string()));
    }

    /// Once every container exited (or the grace period is over: SIGKILL), forgets the Pod.
    /// Returns true when it is done.
    fn finish_stop(&mut self, name: &str) -> bool {
        let Some(run) = self.running.get_mut(name) else {
            return true;
        };
        let Some((deadline, why)) = run.stopping.clone() else {
            return false;
        };
        let mut all_exited = true;
        for c in run.init.iter_mut().chain(run.main.iter_mut()) {
            if let Some(p) = c.proc.as_mut()
                && p.try_exit().is_none()
            {
                all_exited = false;
            }
        }
        if !all_exited && Instant::now() < deadline {
            return false;
        }
        let mut lines = Vec::new();
        for c in run.init.iter_mut().chain(run.main.iter_mut()) {
            if let Some(mut p) = c.proc.take() {
                let on_sigterm = p.try_exit().is_some();
                p.kill();
                if let Some(i) = c.record
                    && let Ok(mut sh) = self.shared.lock()
                {
                    sh.procs[i].exit = Some(if on_sigterm { "SIGTERM" } else { "SIGKILL" }.into());
                }
                lines.push(format!(
                    "stopped {name} {} (pid {}, {why}): {}",
                    c.spec.name,
                    p.pid(),
                    if on_sigterm {
                        "exited on SIGTERM"
                    } else {
                        "SIGKILL after the grace period"
                    }
                ));
                self.stopped.push(p);
            }
        }
        let uid = run.uid.clone();
        self.running.remove(name);
        self.done.insert(uid);
        for l in lines {
            self.note(l);
        }
        true
    }

    /// Removes the Pod object once its containers are gone.
    fn final_delete(&self, name: &str, uid: &str) {
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match self.rt.block_on(self.pods_api.delete(name, &dp)) {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => self.note(format!("error: delete {name}: {e}")),
        }
    }

    /// Rewrites the hosts file (in place: it is bind-mounted) when the Services changed.
    fn refresh_hosts(&mut self) {
        let svcs = match self.rt.block_on(self.svc_api.list(&ListParams::default())) {
            Ok(l) => l.items,
            Err(e) => {
                self.note(format!("error: list services: {e}"));
                return;
            }
        };
        let names: Vec<String> = svcs.iter().map(ResourceExt::name_any).collect();
        self.write_hosts(&names);
    }

    fn write_hosts(&mut self, services: &[String]) {
        let ns = &self.opts.namespace;
        let mut text = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n");
        for s in services {
            text += &format!("127.0.0.1\t{s}.{ns}.svc.cluster.local {s}.{ns}.svc {s}.{ns} {s}\n");
        }
        if text == self.hosts_text && self.hosts.exists() {
            return;
        }
        // Truncate and write the same inode (a rename would leave the bind mounts on the old).
        if let Err(e) = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.hosts)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
        {
            self.note(format!("error: write {}: {e}", self.hosts.display()));
        }
        self.hosts_text = text;
    }

    /// Records every process carrying our RAYGATE_RAY_OWNER.
    fn census(&self) {
        let needle = format!("RAYGATE_RAY_OWNER={}\0", self.dir.display());
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        let mut seen = Vec::new();
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(environ) = std::fs::read(e.path().join("environ")) else {
                continue;
            };
            if !contains(&environ, needle.as_bytes()) {
                continue;
            }
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            seen.push((pid, cmd.trim().to_string()));
        }
        if let Ok(mut sh) = self.shared.lock() {
            for (pid, cmd) in seen {
                sh.census.entry(pid).or_insert(cmd);
            }
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    // environ starts with the first variable; match at the start or after a NUL.
    hay.windows(needle.len())
        .enumerate()
        .any(|(i, w)| w == needle && (i == 0 || hay[i - 1] == 0))
}

/// The Pod's status as the kubelet reports it.
fn pod_status(run: &PodRun) -> Value {
    let cstatus = |c: &Ctr| {
        let state = match &c.state {
            CState::Waiting(r) => json!({"waiting": {"reason": r}}),
            CState::Running { since } => json!({"running": {"startedAt": since}}),
            CState::Terminated {
                code,
                since,
                finished,
            } => json!({"terminated": {
                "exitCode": code,
                "reason": if *code == 0 { "Completed" } else { "Error" },
                "startedAt": since, "finishedAt": finished
            }}),
        };
        let mut s = json!({
            "name": c.spec.name,
            "image": c.spec.image.clone().unwrap_or_default(),
            "imageID": "",
            "ready": matches!(c.state, CState::Running { .. }) && !c.init
                || c.init && matches!(c.state, CState::Terminated { code: 0, .. }),
            "started": matches!(c.state, CState::Running { .. }),
            "restartCount": c.restarts,
            "state": state,
        });
        if let Some(CState::Terminated {
            code,
            since,
            finished,
        }) = &c.last
        {
            s["lastState"] = json!({"terminated": {
                "exitCode": code, "reason": if *code == 0 { "Completed" } else { "Error" },
                "startedAt": since, "finishedAt": finished
            }});
        }
        s
    };
    let initialized = run
        .init
        .iter()
        .all(|c| matches!(c.state, CState::Terminated { code: 0, .. }));
    let all_running = run
        .main
        .iter()
        .all(|c| matches!(c.state, CState::Running { .. }));
    let all_terminated = run
        .main
        .iter()
        .all(|c| matches!(c.state, CState::Terminated { .. }) && c.restart_at.is_none());
    let any_failed = run
        .main
        .iter()
        .any(|c| matches!(c.state, CState::Terminated { code, .. } if code != 0));
    let init_failed_never = run.restart_policy == "Never"
        && run
            .init
            .iter()
            .any(|c| matches!(c.state, CState::Terminated { code, .. } if code != 0));
    let phase = if run.failed_start.is_some() || init_failed_never {
        "Failed"
    } else if !initialized {
        "Pending"
    } else if all_terminated && !run.main.is_empty() {
        if any_failed { "Failed" } else { "Succeeded" }
    } else if run
        .main
        .iter()
        .any(|c| !matches!(c.state, CState::Waiting(_)))
    {
        "Running"
    } else {
        "Pending"
    };
    let cond = |t: &str, ok: bool| json!({"type": t, "status": if ok { "True" } else { "False" }});
    let mut st = json!({
        "phase": phase,
        "hostIP": "127.0.0.1",
        "hostIPs": [{"ip": "127.0.0.1"}],
        "podIP": "127.0.0.1",
        "podIPs": [{"ip": "127.0.0.1"}],
        "startTime": run.started,
        "conditions": [
            cond("PodScheduled", true),
            cond("Initialized", initialized),
            cond("ContainersReady", initialized && all_running),
            cond("Ready", initialized && all_running),
        ],
        "containerStatuses": run.main.iter().map(cstatus).collect::<Vec<_>>(),
    });
    if !run.init.is_empty() {
        st["initContainerStatuses"] = json!(run.init.iter().map(cstatus).collect::<Vec<_>>());
    }
    if let Some(e) = &run.failed_start {
        st["message"] = json!(e);
    }
    st
}

/// `$(VAR)` expansion as the kubelet does it (k8s.io/kubernetes third_party expansion): `$$` is
/// `$`, `$(NAME)` is NAME's value when defined and stays as written otherwise, any other `$` is
/// literal.
pub fn expand(input: &str, vars: &BTreeMap<&str, &str>) -> String {
    let b = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            match b[i + 1] {
                b'$' => {
                    out.push_str(&input[last..i]);
                    out.push('$');
                    i += 2;
                    last = i;
                    continue;
                }
                b'(' => {
                    if let Some(close) = input[i + 2..].find(')') {
                        let name = &input[i + 2..i + 2 + close];
                        out.push_str(&input[last..i]);
                        match vars.get(name) {
                            Some(v) => out.push_str(v),
                            None => out.push_str(&input[i..i + 3 + close]),
                        }
                        i += 3 + close;
                        last = i;
                        continue;
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    out.push_str(&input[last..]);
    out
}

/// A `fieldRef` value of the Pod.
fn field_value(pod: &Pod, path: &str) -> Option<String> {
    let m = &pod.metadata;
    let sel = |prefix: &str, map: Option<&BTreeMap<String, String>>| -> Option<Option<String>> {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(map.and_then(|l| l.get(key).cloned()))
    };
    if let Some(v) = sel("metadata.labels['", m.labels.as_ref()) {
        return Some(v.unwrap_or_default());
    }
    if let Some(v) = sel("metadata.annotations['", m.annotations.as_ref()) {
        return Some(v.unwrap_or_default());
    }
    let spec = pod.spec.as_ref();
    Some(match path {
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_default(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "spec.nodeName" => NODE.to_string(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into()),
        "status.podIP" | "status.hostIP" | "status.podIPs" | "status.hostIPs" => {
            "127.0.0.1".to_string()
        }
        _ => return None,
    })
}

/// A `resourceFieldRef` value (divisor 1): CPU rounded up to whole cores, memory in bytes.
fn resource_value(c: &Container, resource: &str) -> Result<String, String> {
    let (kind, name) = resource
        .split_once('.')
        .ok_or_else(|| format!("resourceFieldRef {resource}"))?;
    let r = c.resources.as_ref();
    let list = match kind {
        "limits" => r.and_then(|r| r.limits.as_ref()),
        "requests" => r.and_then(|r| r.requests.as_ref()),
        _ => return Err(format!("resourceFieldRef {resource}")),
    };
    let Some(q) = list.and_then(|l| l.get(name)) else {
        return Ok("0".into());
    };
    let parsed: Quantity =
        q.0.parse()
            .map_err(|e| format!("{resource} {:?}: {e:?}", q.0))?;
    parsed
        .ceil_scaled(0)
        .map(|v| v.to_string())
        .ok_or_else(|| format!("{resource} {:?} out of range", q.0))
}

/// argv[0] as the container runtime finds it: a path as is, a name on the image's PATH.
fn find_program(arg0: &str, path: &[PathBuf]) -> Option<PathBuf> {
    if arg0.contains('/') {
        return Path::new(arg0).exists().then(|| PathBuf::from(arg0));
    }
    path.iter()
        .cloned()
        .chain(["/usr/local/bin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(arg0))
        .find(|p| p.is_file())
}

fn cstring(p: &Path) -> Result<CString, String> {
    CString::new(p.as_os_str().as_bytes()).map_err(|e| format!("{}: {e}", p.display()))
}

/// Spawns `program argv[1..]` with exactly `env`, its output appended to `log`, in its own
/// process group with PR_SET_PDEATHSIG(SIGKILL) and its own mount namespace: tmpfs on /run, the
/// token files at /run/secrets/kubernetes.io/serviceaccount (read-only), `hosts` on /etc/hosts.
fn spawn_sandboxed(
    program: &Path,
    argv: &[String],
    env: &[(String, String)],
    log: &Path,
    sa_dir: Option<&Path>,
    hosts: &Path,
) -> Result<std::process::Child, String> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("open {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| format!("dup log: {e}"))?;
    let mut cmd = Command::new(program);
    cmd.arg0(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    let sa = sa_dir.map(cstring).transpose()?;
    let hosts = cstring(hosts)?;
    let run = c"/run";
    let tmpfs = c"tmpfs";
    let tmpfs_opts = c"mode=755,size=16m";
    let root = c"/";
    let dirs = [
        c"/run/secrets",
        c"/run/secrets/kubernetes.io",
        c"/run/secrets/kubernetes.io/serviceaccount",
    ];
    let sa_target = c"/run/secrets/kubernetes.io/serviceaccount";
    let etc_hosts = c"/etc/hosts";
    // SAFETY: between fork and exec only async-signal-safe syscalls (prctl, unshare, mount,
    // mkdir) on C strings prepared before the fork; nothing allocates.
    unsafe {
        cmd.pre_exec(move || {
            let check = |r: libc::c_int| {
                if r != 0 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(())
                }
            };
            check(libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
            ))?;
            check(libc::unshare(libc::CLONE_NEWNS))?;
            let null = std::ptr::null();
            check(libc::mount(
                null,
                root.as_ptr(),
                null,
                libc::MS_REC | libc::MS_PRIVATE,
                null as *const libc::c_void,
            ))?;
            check(libc::mount(
                tmpfs.as_ptr(),
                run.as_ptr(),
                tmpfs.as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                tmpfs_opts.as_ptr() as *const libc::c_void,
            ))?;
            for d in dirs {
                check(libc::mkdir(d.as_ptr(), 0o755))?;
            }
            if let Some(sa) = &sa {
                check(libc::mount(
                    sa.as_ptr(),
                    sa_target.as_ptr(),
                    null,
                    libc::MS_BIND,
                    null as *const libc::c_void,
                ))?;
                check(libc::mount(
                    null,
                    sa_target.as_ptr(),
                    null,
                    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                    null as *const libc::c_void,
                ))?;
            }
            check(libc::mount(
                hosts.as_ptr(),
                etc_hosts.as_ptr(),
                null,
                libc::MS_BIND,
                null as *const libc::c_void,
            ))?;
            Ok(())
        });
    }
    cmd.spawn()
        .map_err(|e| format!("spawn {} in its mount namespace: {e}", program.display()))
}
