//! `raygate autoscale local` and `raygate autoscale status`: the engine driving a Ray cluster on
//! this machine. Worker "pods" are `ray start --address=… --block` child processes, one per pod,
//! started the way KubeRay starts worker pods (`RAY_CLOUD_INSTANCE_ID` = pod name,
//! `RAY_NODE_TYPE_NAME` = group), each in its own process group.
//!
//! One iteration: read `ClusterResourceState` → plan with the engine → drain the pods it wants
//! to delete (`DrainNode`, reason idle termination; a rejected drain keeps the node and the plan
//! is redone without it) → apply the JSON Patch to the in-memory RayCluster → act as the
//! operator: stop pods named in `workersToDelete`, start pods up to `replicas × numOfHosts` →
//! `ReportAutoscalingState`. Fail-safe: no plan at all while the GCS is unreachable; no
//! scale-down when its state version goes backwards.

use super::client::{DrainOutcome, GcsClient, GcsOptions};
use super::proto;
use super::report;
use super::snapshot::{NodeStatus, RaySnapshot};
use crate::autoscale::engine_config::cluster_config;
use crate::autoscale::types::{EngineInput, EngineOptions, Plan, PodPhase, WorkerPod};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The loopback-keeping `ray` launcher (see the script's docstring).
const RAY_LOOPBACK_PY: &str = include_str!("../../scripts/ray_loopback.py");
/// Deadline given to Ray in `DrainNode` (after it the node may be force-stopped).
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);
/// Grace between SIGTERM and SIGKILL of a stopped pod's process group.
const STOP_GRACE: Duration = Duration::from_secs(10);

#[derive(clap::Args, Debug)]
pub struct LocalArgs {
    /// GCS address of the Ray head, HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:6379")]
    pub gcs: String,
    /// The RayCluster (YAML or JSON) whose worker groups describe the pods.
    #[arg(long)]
    pub cluster: PathBuf,
    /// GCS address the worker pods join (`ray start --address`); default: `--gcs`.
    #[arg(long)]
    pub ray_address: Option<String>,
    /// Seconds between iterations (an iteration also runs as soon as Ray reports new demand).
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,
    /// Python venv with `ray` (its `bin/python` runs `ray start`).
    #[arg(long, env = "RAYGATE_RAY_VENV")]
    pub ray_venv: PathBuf,
    /// Directory for worker temp dirs and logs (default: a new directory under /tmp).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Stop after this many seconds (stopping every worker it started); default: until SIGINT/SIGTERM.
    #[arg(long)]
    pub run_for: Option<f64>,
    /// Record the run: one CSV row per worker group per iteration
    /// (t_seconds,group,demand,replicas,pods,launch,terminate) to FILE, and a plot of demand,
    /// replicas and pods over time to FILE with the extension .svg, rewritten every 10 s and at
    /// exit (`raygate autoscale timeline FILE` redraws it; docs/autoscaler.md#timeline).
    #[arg(long, value_name = "FILE")]
    pub timeline: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// GCS address of the Ray head, HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:6379")]
    pub gcs: String,
    /// The RayCluster (YAML or JSON); groups and pods are taken from Ray's node types.
    #[arg(long)]
    pub cluster: PathBuf,
}

fn violation_text(v: &crate::violation::Violation) -> String {
    format!("{} [{}]: {}", v.path, v.rule, v.message)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn now_text() -> String {
    text_at(now_ms())
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of a Unix time in milliseconds.
fn text_at(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (d, s) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = d + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

fn load_cluster(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_saphyr::from_str::<Value>(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A worker pod = one `ray start --block` process group.
struct LocalPod {
    group: String,
    child: Child,
    /// Set once the pod is being deleted: SIGTERM sent at this instant.
    stopping_since: Option<Instant>,
}

fn kill_group(child: &Child, signal: libc::c_int) {
    let pgid = child.id() as libc::pid_t;
    if pgid > 0 {
        // SAFETY: kill(2) on the process group of a child we spawned with process_group(0).
        unsafe {
            libc::kill(-pgid, signal);
        }
    }
}

/// Ports per process, below the ephemeral range, checked free, never reused by this process.
struct Ports {
    next: u32,
}

impl Ports {
    fn new() -> Self {
        let seed =
            u64::from(std::process::id()).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ now_ms() as u64;
        Ports {
            next: 12_000 + (seed % 20_000) as u32,
        }
    }
    fn run(&mut self, len: u32) -> Result<u16, String> {
        for _ in 0..2000 {
            if self.next + len >= 32_000 {
                self.next = 12_000;
            }
            let base = self.next;
            self.next += len;
            let held: Vec<TcpListener> = (base..base + len)
                .map_while(|p| TcpListener::bind(("127.0.0.1", p as u16)).ok())
                .collect();
            if held.len() == len as usize {
                return Ok(base as u16);
            }
        }
        Err("no free ports on 127.0.0.1 in 12000..32000".into())
    }
}

struct Local {
    args: LocalArgs,
    cluster: Value,
    cluster_name: String,
    work_dir: PathBuf,
    launcher: PathBuf,
    pods: BTreeMap<String, LocalPod>,
    ports: Ports,
    seq: u64,
    last_version: i64,
    autoscaler_version: i64,
    /// Per group: consecutive start failures and the earliest next start.
    backoff: BTreeMap<String, (u32, Instant)>,
    failures: Vec<proto::FailedInstanceRequest>,
    /// When each pod's Ray node was first seen in the GCS.
    joined: BTreeMap<String, Instant>,
    /// `--timeline`: the CSV being written and the rows so far.
    timeline: Option<crate::timeline_file::TimelineFile>,
}

/// After one of our nodes joins, launches wait this long for Ray's demand view to catch up.
const SETTLE: Duration = Duration::from_secs(3);

fn resources_args(res: &BTreeMap<String, f64>) -> Vec<String> {
    let cpus = res.get("CPU").copied().unwrap_or(0.0);
    let gpus = res.get("GPU").copied().unwrap_or(0.0);
    let mut args = vec![
        format!("--num-cpus={}", cpus.max(0.0).floor() as u64),
        format!("--num-gpus={}", gpus.max(0.0).floor() as u64),
    ];
    if let Some(m) = res.get("memory").filter(|m| **m > 0.0) {
        args.push(format!("--memory={}", m.floor() as u64));
    }
    let custom: serde_json::Map<String, Value> = res
        .iter()
        .filter(|(k, _)| {
            !matches!(k.as_str(), "CPU" | "GPU" | "memory" | "object_store_memory")
                && !k.starts_with("node:")
        })
        .map(|(k, v)| (k.clone(), serde_json::json!(v)))
        .collect();
    if !custom.is_empty() {
        args.push(format!("--resources={}", Value::Object(custom)));
    }
    args
}

impl Local {
    fn log(&self, msg: &str) {
        let ms = now_ms();
        eprintln!(
            "{}.{:03} raygate autoscale local: {msg}",
            text_at(ms),
            ms.rem_euclid(1000)
        );
    }

    /// Starts one worker pod of `group` (index `gi` in workerGroupSpecs).
    fn start_pod(&mut self, group: &str, res: &BTreeMap<String, f64>) -> Result<String, String> {
        self.seq += 1;
        let name = format!(
            "{}-{group}-worker-{:05x}",
            self.cluster_name,
            (now_ms() as u64 ^ self.seq.wrapping_mul(0x2545_F491)) & 0xfffff
        );
        let p = self.ports.run(6)?;
        let workers = self.ports.run(40)?;
        let temp = self.work_dir.join(format!("p{}", self.seq));
        std::fs::create_dir_all(&temp).map_err(|e| format!("{}: {e}", temp.display()))?;
        let log_path = self.work_dir.join(format!("{name}.log"));
        let log =
            std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(self.args.ray_venv.join("bin/python"));
        cmd.arg(&self.launcher)
            .arg("start")
            .arg(format!(
                "--address={}",
                self.args.ray_address.as_deref().unwrap_or(&self.args.gcs)
            ))
            .arg("--node-ip-address=127.0.0.1")
            .args(resources_args(res))
            .arg(format!("--node-manager-port={p}"))
            .arg(format!("--object-manager-port={}", p + 1))
            .arg(format!("--dashboard-agent-listen-port={}", p + 2))
            .arg(format!("--dashboard-agent-grpc-port={}", p + 3))
            .arg(format!("--runtime-env-agent-port={}", p + 4))
            .arg(format!("--metrics-export-port={}", p + 5))
            .arg(format!("--min-worker-port={workers}"))
            .arg(format!("--max-worker-port={}", workers + 39))
            .arg("--object-store-memory=80000000")
            .arg(format!("--temp-dir={}", temp.display()))
            .arg("--disable-usage-stats")
            .arg("--block")
            .env("RAY_CLOUD_INSTANCE_ID", &name)
            .env("RAY_NODE_TYPE_NAME", group)
            .env("RAY_CLUSTER_NAME", &self.cluster_name)
            .env("RAY_USAGE_STATS_KUBERAY_IN_USE", "1")
            .env("RAY_USAGE_STATS_ENABLED", "0")
            .env_remove("RAY_ADDRESS")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0);
        // SAFETY: prctl is async-signal-safe; it runs in the child between fork and exec so the
        // pod dies with raygate (the main thread spawns, so thread exit cannot trigger it early).
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.args.ray_venv.display()))?;
        self.pods.insert(
            name.clone(),
            LocalPod {
                group: group.to_string(),
                child,
                stopping_since: None,
            },
        );
        Ok(name)
    }

    /// Deletes a pod: SIGTERM its process group now, SIGKILL after the grace period.
    fn stop_pod(&mut self, name: &str) {
        if let Some(p) = self.pods.get_mut(name)
            && p.stopping_since.is_none()
        {
            kill_group(&p.child, libc::SIGTERM);
            p.stopping_since = Some(Instant::now());
        }
    }

    /// Reaps exited processes; escalates stuck stops; records crashed pods as failures.
    fn reap(&mut self) {
        let mut gone = Vec::new();
        for (name, p) in &mut self.pods {
            match p.child.try_wait() {
                Ok(Some(status)) => {
                    kill_group(&p.child, libc::SIGKILL);
                    gone.push((
                        name.clone(),
                        p.group.clone(),
                        p.stopping_since.is_none(),
                        status,
                    ));
                }
                _ => {
                    if p.stopping_since.is_some_and(|t| t.elapsed() > STOP_GRACE) {
                        kill_group(&p.child, libc::SIGKILL);
                    }
                }
            }
        }
        for (name, group, crashed, status) in gone {
            self.pods.remove(&name);
            if crashed {
                let entry = self
                    .backoff
                    .entry(group.clone())
                    .or_insert((0, Instant::now()));
                entry.0 += 1;
                let wait = Duration::from_secs(1u64 << entry.0.min(5));
                entry.1 = Instant::now() + wait;
                self.log(&format!(
                    "worker {name} ({group}) exited unexpectedly ({status}); retrying the group in {wait:?}"
                ));
                self.failures.push(proto::FailedInstanceRequest {
                    instance_type_name: String::new(),
                    ray_node_type_name: group,
                    count: 1,
                    reason: format!("worker {name} exited: {status}"),
                    start_ts: now_ms() / 1000,
                    failed_ts: now_ms() / 1000,
                });
                if self.failures.len() > 20 {
                    self.failures.remove(0);
                }
            }
        }
    }

    /// Records newly joined nodes; returns how long ago the newest joined if within [`SETTLE`].
    fn settling(&mut self, snap: &RaySnapshot) -> Option<Duration> {
        for n in &snap.nodes {
            if self.pods.contains_key(&n.instance_id) && n.status != NodeStatus::Dead {
                self.joined
                    .entry(n.instance_id.clone())
                    .or_insert_with(Instant::now);
            }
        }
        self.joined.retain(|pod, _| self.pods.contains_key(pod));
        self.joined
            .values()
            .map(Instant::elapsed)
            .min()
            .filter(|d| *d < SETTLE)
    }

    fn engine_pods(&self) -> Vec<WorkerPod> {
        self.pods
            .iter()
            .filter(|(_, p)| p.stopping_since.is_none())
            .map(|(n, p)| WorkerPod {
                name: n.clone(),
                group: p.group.clone(),
                phase: PodPhase::Running,
                deleting: false,
                replica: None, // no replica labels here: a multi-host group is one unit
            })
            .collect()
    }

    /// The engine input: our pods, and Ray's view restricted to the head and our live pods.
    fn input(&self, snap: &RaySnapshot, no_scale_down: bool) -> EngineInput {
        let pods = self.engine_pods();
        let live: BTreeSet<&str> = pods.iter().map(|p| p.name.as_str()).collect();
        let mut ray = snap.to_engine();
        ray.nodes.retain(|n| {
            n.status != crate::autoscale::types::RayNodeStatus::Dead
                && (n.kind == crate::autoscale::types::NodeKind::Head
                    || live.contains(n.pod.as_str()))
        });
        if no_scale_down {
            for n in &mut ray.nodes {
                n.idle_ms = 0;
            }
        }
        EngineInput {
            ray_cluster: self.cluster.clone(),
            pods,
            ray,
            options: EngineOptions::default(),
        }
    }

    /// One iteration. Returns the demand key of the snapshot it planned from (None when the
    /// GCS could not be read).
    async fn iterate(&mut self, gcs: &mut GcsClient) -> Result<Option<String>, String> {
        self.reap();
        let state = match gcs.get_cluster_resource_state(self.last_version).await {
            Ok(s) => s,
            Err(e) => {
                self.log(&format!("GCS unavailable, not scaling: {e}"));
                return Ok(None);
            }
        };
        let snap = RaySnapshot::from_proto(&state);
        let stale = snap.version < self.last_version;
        if stale {
            self.log(&format!(
                "GCS state version went back ({} < {}): no scale-down this iteration",
                snap.version, self.last_version
            ));
        } else {
            self.last_version = snap.version;
        }
        let settle = self.settling(&snap);
        let mut input = self.input(&snap, stale);
        // Drain before delete: every pod the plan deletes must have been accepted by Ray
        // (`DrainNode`, idle termination). A refusal keeps that node: it is marked busy and the
        // plan is made again (at most 3 rounds; otherwise no deletion this iteration).
        let mut accepted = BTreeSet::new();
        let mut plan;
        let mut round = 0;
        loop {
            round += 1;
            plan = crate::autoscale::plan(&input);
            if !plan.violations.is_empty() {
                let msgs: Vec<String> = plan.violations.iter().map(violation_text).collect();
                return Err(format!("the RayCluster is invalid:\n{}", msgs.join("\n")));
            }
            let mut refused = BTreeSet::new();
            for pod in plan.groups.iter().flat_map(|g| g.terminate.iter()) {
                if accepted.contains(pod) {
                    continue;
                }
                let Some(node) = snap
                    .node_for_pod(pod)
                    .filter(|n| n.status != NodeStatus::Dead)
                else {
                    accepted.insert(pod.clone()); // a pod without a Ray node: nothing to drain
                    continue;
                };
                let out = gcs
                    .drain_node_idle(
                        &node.node_id,
                        &format!("raygate: {pod} idle for {} ms", node.idle_ms),
                        now_ms() + DRAIN_DEADLINE.as_millis() as i64,
                    )
                    .await;
                match out {
                    Ok(DrainOutcome::Accepted) => {
                        accepted.insert(pod.clone());
                    }
                    Ok(DrainOutcome::Rejected { reason }) => {
                        self.log(&format!("Ray refused to drain {pod}: {reason}; keeping it"));
                        refused.insert(pod.clone());
                    }
                    Err(e) => {
                        self.log(&format!("DrainNode {pod} failed: {e}; keeping it"));
                        refused.insert(pod.clone());
                    }
                }
            }
            if refused.is_empty() {
                break;
            }
            for n in &mut input.ray.nodes {
                if refused.contains(&n.pod) {
                    n.idle_ms = 0;
                }
            }
            if round == 3 {
                self.log("drains keep being refused: no deletion this iteration");
                self.operate()?;
                self.record(&snap, None);
                return Ok(Some(demand_key(&snap)));
            }
        }
        if plan.groups.iter().any(|g| g.launch > 0)
            && let Some(settle) = settle
        {
            // A node of ours joined moments ago: Ray may still list demand that is already
            // being placed on it, so launching now could start a pod nobody needs.
            self.log(&format!(
                "new node joined {settle:?} ago; deferring launches until Ray's view settles"
            ));
            self.operate()?;
            self.record(&snap, None);
            return Ok(Some(demand_key(&snap)));
        }
        if !plan.patch.is_empty() {
            normalize_scale_strategy(&mut self.cluster);
            let patch: json_patch::Patch = serde_json::from_value(Value::Array(plan.patch.clone()))
                .map_err(|e| format!("engine patch: {e}"))?;
            json_patch::patch(&mut self.cluster, &patch)
                .map_err(|e| format!("applying the engine patch: {e}"))?;
            for g in plan
                .groups
                .iter()
                .filter(|g| g.launch > 0 || !g.terminate.is_empty())
            {
                self.log(&format!(
                    "{}: replicas {} (launch {}, terminate {:?})",
                    g.name, g.replicas, g.launch, g.terminate
                ));
            }
        }
        self.operate()?;
        self.record(&snap, Some(&plan));
        self.report(gcs, &snap, &plan).await;
        Ok(Some(demand_key(&snap)))
    }

    /// `--timeline`: a row per group for this iteration; `applied` is the plan whose patch was
    /// applied (None when the iteration held its decision back).
    fn record(&mut self, snap: &RaySnapshot, applied: Option<&Plan>) {
        let Some(t_s) = self.timeline.as_ref().map(|t| t.now()) else {
            return;
        };
        let rows = crate::autoscale::timeline::rows_of(
            t_s,
            &self.cluster,
            snap.pending_requests(),
            applied,
            str::to_string,
            |group| {
                self.pods
                    .values()
                    .filter(|p| p.group == group && p.stopping_since.is_none())
                    .count() as u64
            },
        );
        if let Some(t) = self.timeline.as_mut() {
            for row in rows {
                t.push(row);
            }
        }
    }

    /// `--timeline`: the final plot, next to the CSV.
    fn write_timeline_svg(&mut self) {
        let Some(t) = self.timeline.as_mut() else {
            return;
        };
        match t.finish() {
            Ok(svg) => self.log(&format!("timeline: {}", svg.display())),
            Err(e) => eprintln!("warning: --timeline: {e}"),
        }
    }

    /// Acts as the KubeRay operator on the in-memory RayCluster.
    fn operate(&mut self) -> Result<(), String> {
        let cfg = cluster_config(&self.cluster)
            .map_err(|v| v.iter().map(violation_text).collect::<Vec<_>>().join("; "))?;
        for t in &cfg.node_types {
            for pod in &t.workers_to_delete {
                if self.pods.contains_key(pod) {
                    self.stop_pod(pod);
                }
            }
            let live = self
                .pods
                .values()
                .filter(|p| p.group == t.name && p.stopping_since.is_none())
                .count() as u64;
            let want = (t.replicas.unwrap_or(0).max(0) as u64) * u64::from(t.hosts.max(1));
            if live >= want || t.suspended {
                continue;
            }
            if let Some((_, not_before)) = self.backoff.get(&t.name)
                && Instant::now() < *not_before
            {
                continue;
            }
            for _ in live..want {
                match self.start_pod(&t.name, &t.resources) {
                    Ok(name) => self.log(&format!("started worker {name} ({})", t.name)),
                    Err(e) => {
                        self.log(&format!("cannot start a {} worker: {e}", t.name));
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// `ReportAutoscalingState` (shared with the Kubernetes controller: [`report`]); pods
    /// started by this iteration are not in the plan's input, so they are added here.
    async fn report(&mut self, gcs: &mut GcsClient, snap: &RaySnapshot, plan: &Plan) {
        self.autoscaler_version = report::next_version(self.autoscaler_version, now_ms());
        let extra_pending = self
            .pods
            .iter()
            .filter(|(_, p)| p.stopping_since.is_none())
            .map(|(n, p)| {
                (
                    n.clone(),
                    p.group.clone(),
                    report::WAITING_FOR_RAY.to_string(),
                )
            })
            .collect();
        let r = report::Report {
            autoscaler_version: self.autoscaler_version,
            extra_pending,
            failures: self.failures.clone(),
            now_s: now_ms() / 1000,
        };
        if let Err(e) = report::send(gcs, plan, snap, &r).await {
            self.log(&format!("ReportAutoscalingState failed: {e}"));
        }
    }

    /// Stops exactly the processes this run started (SIGTERM, then SIGKILL after the grace).
    fn shutdown(&mut self) {
        let names: Vec<String> = self.pods.keys().cloned().collect();
        for n in &names {
            self.stop_pod(n);
        }
        let deadline = Instant::now() + STOP_GRACE;
        while !self.pods.is_empty() && Instant::now() < deadline {
            self.pods
                .retain(|_, p| !matches!(p.child.try_wait(), Ok(Some(_))));
            std::thread::sleep(Duration::from_millis(100));
        }
        for p in self.pods.values_mut() {
            kill_group(&p.child, libc::SIGKILL);
            let _ = p.child.wait();
        }
        self.pods.clear();
    }
}

/// The operator's API server keeps `scaleStrategy` on every worker group; make sure the
/// in-memory object has it so the engine's `replace …/scaleStrategy` ops apply.
fn normalize_scale_strategy(cluster: &mut Value) {
    if let Some(groups) = cluster
        .pointer_mut("/spec/workerGroupSpecs")
        .and_then(Value::as_array_mut)
    {
        for g in groups {
            if let Some(o) = g.as_object_mut() {
                o.entry("scaleStrategy")
                    .or_insert_with(|| serde_json::json!({}));
            }
        }
    }
}

/// What changes the demand picture (an iteration runs as soon as it changes).
fn demand_key(s: &RaySnapshot) -> String {
    serde_json::to_string(&(&s.demands, &s.gangs, &s.constraints)).unwrap_or_default()
}

pub fn run_local(args: LocalArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: tokio runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(local_main(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

async fn local_main(args: LocalArgs) -> Result<(), String> {
    let cluster = load_cluster(&args.cluster)?;
    cluster_config(&cluster).map_err(|v| {
        format!(
            "{}: {}",
            args.cluster.display(),
            v.iter().map(violation_text).collect::<Vec<_>>().join("; ")
        )
    })?;
    if !(args.interval.is_finite() && args.interval > 0.0) {
        return Err("--interval must be a positive number of seconds".into());
    }
    if !args.ray_venv.join("bin/python").exists() {
        return Err(format!(
            "--ray-venv {}: no bin/python (make one with scripts/ray-venv.sh)",
            args.ray_venv.display()
        ));
    }
    let cluster_name = cluster
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("raycluster")
        .to_string();
    let work_dir = match &args.work_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("rgl-{}", std::process::id())),
    };
    std::fs::create_dir_all(&work_dir).map_err(|e| format!("{}: {e}", work_dir.display()))?;
    let launcher = work_dir.join("ray_loopback.py");
    std::fs::write(&launcher, RAY_LOOPBACK_PY)
        .map_err(|e| format!("{}: {e}", launcher.display()))?;
    let mut gcs = GcsClient::connect(&args.gcs, GcsOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let interval = Duration::from_secs_f64(args.interval);
    let stop_at = args
        .run_for
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| Instant::now() + Duration::from_secs_f64(s));
    let timeline = match &args.timeline {
        Some(path) => Some(crate::timeline_file::TimelineFile::create(
            path,
            &format!("raygate autoscale local: {cluster_name}"),
        )?),
        None => None,
    };
    let mut local = Local {
        args,
        cluster,
        cluster_name,
        work_dir,
        launcher,
        pods: BTreeMap::new(),
        ports: Ports::new(),
        seq: 0,
        last_version: 0,
        autoscaler_version: 0,
        backoff: BTreeMap::new(),
        failures: Vec::new(),
        joined: BTreeMap::new(),
        timeline,
    };
    // Installed now: a signal during an iteration ends the run at the next wait.
    let mut shutdown = crate::signal::Shutdown::install();
    if let Some(t) = &local.timeline {
        local.log(&format!("timeline: {}", t.describe()));
    }
    let result = async {
        loop {
            let started = Instant::now();
            let plan_key = local.iterate(&mut gcs).await?;
            // Wait for the interval, or less when Ray reports new demand.
            loop {
                if stop_at.is_some_and(|t| Instant::now() >= t) {
                    return Ok::<(), String>(());
                }
                let step = Duration::from_millis(100);
                tokio::select! {
                    _ = shutdown.recv() => return Ok(()),
                    _ = tokio::time::sleep(step) => {}
                }
                if started.elapsed() >= interval {
                    break;
                }
                if let Some(k) = &plan_key
                    && let Ok(s) = gcs.get_cluster_resource_state(0).await
                    && demand_key(&RaySnapshot::from_proto(&s)) != *k
                {
                    break;
                }
            }
        }
    }
    .await;
    // The plot first: stopping the workers can take STOP_GRACE, and a stop that does not wait
    // for it (SIGKILL) must still find the plot of the whole run.
    local.write_timeline_svg();
    local.shutdown();
    result
}

pub fn run_status(args: StatusArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: tokio runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = rt.block_on(async {
        let cluster = load_cluster(&args.cluster)?;
        let mut gcs = GcsClient::connect(&args.gcs, GcsOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        let state = gcs
            .get_cluster_resource_state(0)
            .await
            .map_err(|e| e.to_string())?;
        let snap = RaySnapshot::from_proto(&state);
        // Pods are what Ray reports: every live worker node with an instance id.
        let pods = snap
            .nodes
            .iter()
            .filter(|n| !n.is_head && n.status != NodeStatus::Dead && !n.instance_id.is_empty())
            .map(|n| WorkerPod {
                name: n.instance_id.clone(),
                group: n.node_type.clone(),
                phase: PodPhase::Running,
                deleting: false,
                replica: None, // no replica labels here: a multi-host group is one unit
            })
            .collect();
        let input = EngineInput {
            ray_cluster: cluster,
            pods,
            ray: snap.to_engine(),
            options: EngineOptions::default(),
        };
        Ok::<Plan, String>(crate::autoscale::plan(&input))
    });
    match result {
        Ok(plan) => {
            print!("{}", crate::autoscale::status::render(&plan, &now_text()));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_resources_become_ray_start_flags() {
        let res: BTreeMap<String, f64> = [
            ("CPU".to_string(), 2.0),
            ("GPU".to_string(), 1.0),
            ("memory".to_string(), 1073741824.0),
            ("TPU".to_string(), 4.0),
            ("node:__internal_head__".to_string(), 1.0),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            resources_args(&res),
            vec![
                "--num-cpus=2",
                "--num-gpus=1",
                "--memory=1073741824",
                r#"--resources={"TPU":4.0}"#
            ]
        );
        // Nothing given: 0 CPUs/GPUs, not Ray's auto-detection of the whole machine.
        assert_eq!(
            resources_args(&BTreeMap::new()),
            vec!["--num-cpus=0", "--num-gpus=0"]
        );
    }

    #[test]
    fn scale_strategy_is_added_so_replace_ops_apply() {
        let mut c = serde_json::json!({"spec": {"workerGroupSpecs": [
            {"groupName": "a"},
            {"groupName": "b", "scaleStrategy": {"workersToDelete": ["x"]}}
        ]}});
        normalize_scale_strategy(&mut c);
        assert_eq!(
            c["spec"]["workerGroupSpecs"][0]["scaleStrategy"],
            serde_json::json!({})
        );
        assert_eq!(
            c["spec"]["workerGroupSpecs"][1]["scaleStrategy"]["workersToDelete"][0],
            "x"
        );
        let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
            {"op": "replace", "path": "/spec/workerGroupSpecs/0/scaleStrategy",
             "value": {"workersToDelete": ["p"]}}
        ]))
        .unwrap();
        json_patch::patch(&mut c, &patch).unwrap();
    }

    #[test]
    fn timestamps_are_utc_civil_time() {
        assert_eq!(text_at(0), "1970-01-01 00:00:00");
        assert_eq!(text_at(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(text_at(1_795_840_743_999), "2026-11-28 04:39:03");
    }
}
