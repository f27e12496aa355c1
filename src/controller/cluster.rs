//! One task per autoscaling RayCluster: observe (RayCluster + worker pods from the watch caches,
//! Ray's view from the GCS) → plan with the pure engine → drain → apply one guarded JSON Patch →
//! reconcile pods. A slow or failing cluster only delays its own task: every GCS call has its own
//! timeout and nothing is shared but the API client.

use super::admin::{Metrics, category};
use super::lease::Leadership;
use super::pods::{self, PodInfo};
use super::scope::{Scope, Verdict};
use crate::autoscale::types::{EngineInput, EngineOptions, Plan, PodPhase, WorkerPod};
use crate::gcs::report;
use crate::gcs::snapshot::{NodeStatus, RaySnapshot};
use crate::gcs::{DrainOutcome, GcsClient, GcsOptions};
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, ResourceExt,
};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Annotation overriding the GCS address (`HOST:PORT`) of a RayCluster.
pub const GCS_ADDRESS_ANNOTATION: &str = "raygate.io/gcs-address";

/// Field manager of every write raygate's autoscaler makes (`autoscale run` and `autoscale
/// sidecar`): the name `managedFields` records for `replicas` / `workersToDelete`.
pub const FIELD_MANAGER: &str = "raygate-autoscaler";

/// Where a cluster task finds the GCS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GcsTarget {
    /// `<name>-head-svc.<ns>.svc:<Options::gcs_port>`, or the `raygate.io/gcs-address`
    /// annotation (`autoscale run`).
    HeadService,
    /// `127.0.0.1:<headGroupSpec.rayStartParams.port, default 6379>`: the head Pod's own loopback
    /// (`autoscale sidecar`, which runs in the head Pod).
    PodLoopback,
    /// This address (`autoscale sidecar --gcs-address`).
    Fixed(String),
}

/// Controller knobs shared by all cluster tasks.
#[derive(Debug, Clone)]
pub struct Options {
    pub interval: Duration,
    pub reconcile_pods: bool,
    pub gcs_timeout: Duration,
    pub drain_deadline: Duration,
    pub max_concurrent_launches: u32,
    /// Port of the GCS on the head service.
    pub gcs_port: u16,
    /// How the GCS address is found.
    pub gcs_target: GcsTarget,
    /// Which clusters are acted on ([`super::scope`]).
    pub scope: Scope,
}

/// What every cluster task shares.
pub struct Shared {
    pub client: kube::Client,
    pub ar: ApiResource,
    pub clusters: Store<DynamicObject>,
    pub pods: Store<Pod>,
    pub metrics: Arc<Metrics>,
    pub leader: Leadership,
    pub recorder: Recorder,
    /// Set once the API server refused an Event (403: e.g. the sidecar runs with KubeRay's
    /// autoscaler Role, which has no `events` rule); no Event is sent after that.
    pub events_forbidden: std::sync::atomic::AtomicBool,
    pub opts: Options,
    /// `autoscale run --timeline FILE.csv`: every cluster's decisions, one row per group
    /// (`namespace/cluster/group`).
    pub timeline: Option<std::sync::Mutex<crate::timeline_file::TimelineFile>>,
}

/// `--timeline`: a row per worker group of `rc` (the RayCluster after this iteration's write, or
/// as it stands when nothing was written); `applied` is the plan whose patch was written. Only
/// the leader records: a follower decides nothing, so its timeline stays empty.
fn record_timeline(
    shared: &Shared,
    st: &State,
    rc: &Value,
    applied: Option<&Plan>,
    snapshot: &RaySnapshot,
) {
    let Some(timeline) = &shared.timeline else {
        return;
    };
    if !shared.leader.is_leader() {
        return;
    }
    let infos = pod_infos(shared, &st.ns, &st.name);
    // (A task that panicked holding the lock left complete rows: keep recording.)
    let mut t = timeline
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let rows = crate::autoscale::timeline::rows_of(
        t.now(),
        rc,
        snapshot.pending_requests(),
        applied,
        |group| format!("{}/{}/{group}", st.ns, st.name),
        |group| {
            infos
                .iter()
                .filter(|(p, _)| p.group == group && !p.deleting)
                .count() as u64
        },
    );
    for row in rows {
        t.push(row);
    }
}

/// True when the RayCluster asks for in-tree autoscaling.
pub fn autoscaling_enabled(obj: &DynamicObject) -> bool {
    obj.data
        .pointer("/spec/enableInTreeAutoscaling")
        .and_then(Value::as_bool)
        == Some(true)
}

/// The RayCluster as the JSON the pure core reads (`apiVersion`, `kind`, `metadata`, `spec`).
pub fn as_json(obj: &DynamicObject) -> Value {
    let mut rc = serde_json::to_value(obj).unwrap_or(Value::Null);
    if rc.is_object() {
        rc["apiVersion"] = json!("ray.io/v1");
        rc["kind"] = json!("RayCluster");
    }
    rc
}

/// Whether a controller of `scope` keeps a task for this cluster: it is opted in (a cluster
/// another autoscaler acts on gets a task too, which reports that and does nothing else).
pub fn wants_task(obj: &DynamicObject, scope: Scope) -> bool {
    super::scope::verdict(scope, &as_json(obj), &[]) != Verdict::NotOurs
}

/// The GCS address of a RayCluster: the annotation, else `<name>-head-svc.<ns>.svc:<port>`.
pub fn gcs_address(obj: &DynamicObject, port: u16) -> String {
    if let Some(a) = obj.annotations().get(GCS_ADDRESS_ANNOTATION)
        && !a.trim().is_empty()
    {
        return a.trim().to_string();
    }
    format!(
        "{}-head-svc.{}.svc:{port}",
        obj.name_any(),
        obj.namespace().unwrap_or_default()
    )
}

/// The port in the head's `rayStartParams` (default 6379), or why it is not one.
pub fn head_gcs_port(obj: &DynamicObject) -> Result<u16, String> {
    let Some(v) = obj
        .data
        .pointer("/spec/headGroupSpec/rayStartParams/port")
        .filter(|v| !v.is_null())
    else {
        return Ok(6379);
    };
    let text = match v {
        Value::String(s) => s.trim().to_string(),
        other => other.to_string(),
    };
    match text.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!(
            "spec.headGroupSpec.rayStartParams.port: {v} is not a port (1-65535)"
        )),
    }
}

/// The GCS address of a cluster task, per [`GcsTarget`].
pub fn target_address(obj: &DynamicObject, opts: &Options) -> Result<String, String> {
    match &opts.gcs_target {
        GcsTarget::HeadService => Ok(gcs_address(obj, opts.gcs_port)),
        GcsTarget::PodLoopback => Ok(format!("127.0.0.1:{}", head_gcs_port(obj)?)),
        GcsTarget::Fixed(a) => Ok(a.clone()),
    }
}

/// The write options of every autoscaler write: raygate's field manager.
pub fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    }
}

/// Per-cluster memory across iterations.
struct State {
    ns: String,
    name: String,
    gcs: Option<GcsClient>,
    last_version: i64,
    /// Last Warning note per reason (a Warning is published when it changes).
    warned: BTreeMap<&'static str, String>,
    /// Pods created and not yet seen by the pod watch, and when.
    created: Vec<(PodInfo, Instant)>,
    /// The plan this iteration decided, reported to the GCS at its end.
    decided: Option<Plan>,
    /// Last `autoscaler_state_version` reported to the GCS.
    autoscaler_version: i64,
    /// Whether the cluster is being left alone for another autoscaler (the gauge).
    skip: SkipMark,
}

/// Runs until the cluster is deleted, stops autoscaling, or the task is aborted.
pub async fn run(shared: Arc<Shared>, ns: String, name: String, notify: Arc<Notify>) {
    let mut st = State {
        ns,
        name,
        gcs: None,
        last_version: 0,
        warned: BTreeMap::new(),
        created: Vec::new(),
        decided: None,
        autoscaler_version: 0,
        skip: SkipMark {
            on: false,
            gauge: shared.metrics.clusters_skipped.clone(),
        },
    };
    // Spawned only once both caches are synced (see `controller::run_async`): never act on a
    // half-listed pod cache (pods would be created twice).
    loop {
        let t0 = Instant::now();
        let keep = iterate(&shared, &mut st).await;
        shared.metrics.iteration.observe(t0.elapsed().as_secs_f64());
        if !keep {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(shared.opts.interval) => {}
            _ = notify.notified() => {
                // Coalesce bursts of watch events into one iteration.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

fn object_ref(obj: &DynamicObject) -> ObjectReference {
    ObjectReference {
        api_version: Some("ray.io/v1".into()),
        kind: Some("RayCluster".into()),
        name: obj.metadata.name.clone(),
        namespace: obj.metadata.namespace.clone(),
        uid: obj.metadata.uid.clone(),
        ..Default::default()
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max.saturating_sub(3);
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

async fn publish(
    shared: &Shared,
    obj: &DynamicObject,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    if !shared.leader.is_leader() {
        return;
    }
    let ev = Event {
        type_,
        reason: reason.into(),
        note: Some(truncate(note, 1000)),
        action: action.into(),
        secondary: None,
    };
    if shared
        .events_forbidden
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        return;
    }
    match shared.recorder.publish(&ev, &object_ref(obj)).await {
        Ok(()) => {}
        Err(kube::Error::Api(s)) if s.code == 403 => {
            shared.metrics.error(category::EVENT);
            if !shared
                .events_forbidden
                .swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                tracing::warn!(cluster = %obj.name_any(), error = %s.message,
                    "the API server refused an Event (no RBAC for events: KubeRay's autoscaler \
                     Role has none); publishing no more Events, decisions are still logged");
            }
        }
        Err(e) => {
            shared.metrics.error(category::EVENT);
            tracing::warn!(cluster = %obj.name_any(), error = %e, "cannot publish event");
        }
    }
}

/// A Warning, published once per distinct note (re-armed by [`clear_warning`]).
async fn warn_once(
    shared: &Shared,
    st: &mut State,
    obj: &DynamicObject,
    reason: &'static str,
    note: String,
) {
    if st.warned.get(reason) == Some(&note) {
        return;
    }
    tracing::warn!(namespace = %st.ns, cluster = %st.name, reason, "{note}");
    if shared.leader.is_leader() {
        st.warned.insert(reason, note.clone());
    }
    publish(shared, obj, EventType::Warning, reason, "Autoscale", note).await;
}

fn clear_warning(st: &mut State, reason: &'static str) {
    st.warned.remove(reason);
}

/// The cluster's live (not terminating) head Pods from the watch cache.
fn head_pods(shared: &Shared, ns: &str, cluster: &str) -> Vec<Arc<Pod>> {
    shared
        .pods
        .state()
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns))
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            let l = p.labels();
            l.get(pods::LABEL_CLUSTER).map(String::as_str) == Some(cluster)
                && l.get(pods::LABEL_NODE_TYPE).map(String::as_str) == Some("head")
        })
        .collect()
}

/// Counts a cluster in `raygate_autoscaler_clusters_skipped` while it is left alone for another
/// autoscaler; uncounted when that ends, the task ends or is aborted.
pub struct SkipMark {
    on: bool,
    gauge: prometheus_client::metrics::gauge::Gauge,
}

impl SkipMark {
    fn set(&mut self, on: bool) {
        if on != self.on {
            if on {
                self.gauge.inc();
            } else {
                self.gauge.dec();
            }
            self.on = on;
        }
    }
}

impl Drop for SkipMark {
    fn drop(&mut self) {
        self.set(false);
    }
}

fn pod_infos(shared: &Shared, ns: &str, cluster: &str) -> Vec<(PodInfo, PodPhase)> {
    shared
        .pods
        .state()
        .iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns))
        .filter(|p| {
            let l = p.labels();
            l.get(pods::LABEL_CLUSTER).map(String::as_str) == Some(cluster)
                && l.get(pods::LABEL_NODE_TYPE).map(String::as_str) == Some("worker")
        })
        .map(|p| {
            let info = PodInfo::from_pod(p);
            let phase = info.phase;
            (info, phase)
        })
        .collect()
}

/// One iteration. Returns false when the task should end.
async fn iterate(shared: &Shared, st: &mut State) -> bool {
    tracing::debug!(namespace = %st.ns, cluster = %st.name, "iteration");
    let key = ObjectRef::new_with(&st.name, shared.ar.clone()).within(&st.ns);
    let Some(obj) = shared.clusters.get(&key) else {
        return false;
    };
    let obj: DynamicObject = (*obj).clone();
    let mut rc = as_json(&obj);
    if !rc.is_object() {
        return true;
    }
    let heads = head_pods(shared, &st.ns, &st.name);
    let heads: Vec<&Pod> = heads.iter().map(|p| &**p).collect();
    match super::scope::verdict(shared.opts.scope, &rc, &heads) {
        Verdict::NotOurs => {
            st.skip.set(false);
            return false;
        }
        Verdict::OtherAutoscaler(why) => {
            // Never touched: no patch, no drain, no Pod, no report to its GCS.
            st.skip.set(true);
            warn_once(shared, st, &obj, "OtherAutoscaler", why).await;
            return true;
        }
        Verdict::Act => {
            st.skip.set(false);
            clear_warning(st, "OtherAutoscaler");
        }
    }
    crate::defaulting::apply_crd_defaults(&mut rc);
    let errors: Vec<_> = crate::rules::validate(&rc, None, &Default::default())
        .into_iter()
        .filter(|v| v.is_error())
        .collect();
    if !errors.is_empty() {
        shared.metrics.error(category::VALIDATION);
        let list: Vec<String> = errors
            .iter()
            .map(|v| format!("{} {}: {}", v.rule, v.path, v.message))
            .collect();
        let note = format!(
            "not autoscaled: the RayCluster is invalid: {}",
            list.join("; ")
        );
        warn_once(shared, st, &obj, "InvalidRayCluster", note).await;
        return true;
    }
    clear_warning(st, "InvalidRayCluster");

    // Pods first: they follow the RayCluster as it is, whatever the GCS does.
    if shared.opts.reconcile_pods {
        reconcile_pods(shared, st, &rc).await;
    }

    // Ray's view.
    let address = match target_address(&obj, &shared.opts) {
        Ok(a) => a,
        Err(e) => {
            shared.metrics.error(category::GCS);
            warn_once(
                shared,
                st,
                &obj,
                "GcsUnreachable",
                format!("no scaling: {e}"),
            )
            .await;
            return true;
        }
    };
    if st.gcs.as_ref().map(GcsClient::address) != Some(address.as_str()) {
        let o = GcsOptions {
            connect_timeout: shared.opts.gcs_timeout,
            request_timeout: shared.opts.gcs_timeout,
            max_attempts: 1,
            ..Default::default()
        };
        match GcsClient::lazy(&address, o) {
            Ok(c) => {
                st.gcs = Some(c);
                st.last_version = 0;
            }
            Err(e) => {
                shared.metrics.error(category::GCS);
                warn_once(shared, st, &obj, "GcsUnreachable", e.to_string()).await;
                return true;
            }
        }
    }
    let Some(gcs) = st.gcs.as_mut() else {
        return true;
    };
    let state = tokio::time::timeout(
        shared.opts.gcs_timeout * 2,
        gcs.get_cluster_resource_state(0),
    )
    .await;
    let state = match state {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            shared.metrics.error(category::GCS);
            let note = format!("no scaling: {e}");
            warn_once(shared, st, &obj, "GcsUnreachable", note).await;
            return true;
        }
        Err(_) => {
            shared.metrics.error(category::GCS);
            let note = format!("no scaling: GCS at {address} did not answer in time");
            warn_once(shared, st, &obj, "GcsUnreachable", note).await;
            return true;
        }
    };
    clear_warning(st, "GcsUnreachable");
    let snapshot = RaySnapshot::from_proto(&state);
    if snapshot.version < st.last_version {
        // Stale answer (e.g. a GCS restarted from an older state): do nothing this round.
        tracing::info!(cluster = %st.name, version = snapshot.version, last = st.last_version,
            "stale GCS state; skipping");
        return true;
    }
    st.last_version = snapshot.version;
    decide_and_apply(shared, st, obj, rc, &snapshot).await;
    report_state(shared, st, &snapshot).await;
    true
}

/// `ReportAutoscalingState` with what this iteration decided (the code `autoscale local` uses),
/// so `ray status` on the head shows raygate's launches and the pods waiting for Ray. Leader only.
async fn report_state(shared: &Shared, st: &mut State, snapshot: &RaySnapshot) {
    let Some(plan) = st.decided.take() else {
        return;
    };
    if !shared.leader.is_leader() {
        return;
    }
    let now_ms = unix_ms_in(Duration::ZERO);
    st.autoscaler_version = report::next_version(st.autoscaler_version, now_ms);
    // Pods created after the plan (not in its input) are pending too.
    let extra_pending = st
        .created
        .iter()
        .map(|(p, _)| {
            (
                p.name.clone(),
                p.group.clone(),
                report::POD_PENDING.to_string(),
            )
        })
        .collect();
    let r = report::Report {
        autoscaler_version: st.autoscaler_version,
        extra_pending,
        failures: Vec::new(),
        now_s: now_ms / 1000,
    };
    let Some(gcs) = st.gcs.as_mut() else {
        return;
    };
    let sent = tokio::time::timeout(
        shared.opts.gcs_timeout * 2,
        report::send(gcs, &plan, snapshot, &r),
    );
    let err = match sent.await {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e.to_string(),
        Err(_) => "timed out".to_string(),
    };
    shared.metrics.error(category::GCS);
    tracing::info!(namespace = %st.ns, cluster = %st.name, "ReportAutoscalingState failed: {err}");
}

fn engine_pods(infos: &[(PodInfo, PodPhase)]) -> Vec<WorkerPod> {
    infos.iter().map(|(p, _)| p.to_engine()).collect()
}

fn unix_ms_in(d: Duration) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from((now + d).as_millis()).unwrap_or(i64::MAX)
}

/// Plans, drains what the plan terminates, and applies the patch guarded by the
/// resourceVersion; on a conflict re-reads the RayCluster and plans again.
async fn decide_and_apply(
    shared: &Shared,
    st: &mut State,
    mut obj: DynamicObject,
    mut rc: Value,
    snapshot: &RaySnapshot,
) {
    let api: Api<DynamicObject> = Api::namespaced_with(shared.client.clone(), &st.ns, &shared.ar);
    let mut ray = snapshot.to_engine();
    let mut drained: BTreeSet<String> = BTreeSet::new();
    for attempt in 0..4 {
        let infos = pod_infos(shared, &st.ns, &st.name);
        let mut input = EngineInput {
            ray_cluster: rc.clone(),
            pods: engine_pods(&infos),
            ray: ray.clone(),
            options: EngineOptions {
                max_concurrent_launches: shared.opts.max_concurrent_launches,
            },
        };
        let mut plan = crate::autoscale::plan(&input);
        if !plan.violations.is_empty() {
            shared.metrics.error(category::VALIDATION);
            let list: Vec<String> = plan
                .violations
                .iter()
                .map(|v| format!("{} {}: {}", v.rule, v.path, v.message))
                .collect();
            let note = format!("not autoscaled: {}", list.join("; "));
            warn_once(shared, st, &obj, "InvalidRayCluster", note).await;
            return;
        }
        // Drain before delete: only pods whose node Ray agreed to drain are named.
        for _round in 0..3 {
            let to_drain: Vec<String> = plan
                .groups
                .iter()
                .flat_map(|g| g.terminate.iter().cloned())
                .filter(|p| !drained.contains(p))
                .collect();
            if to_drain.is_empty() {
                break;
            }
            if !shared.leader.is_leader() {
                return;
            }
            let mut refused = BTreeSet::new();
            for pod in to_drain {
                match drain(shared, st, snapshot, &pod).await {
                    Ok(()) => {
                        drained.insert(pod);
                    }
                    Err(why) => {
                        tracing::info!(cluster = %st.name, pod = %pod, "node kept: {why}");
                        refused.insert(pod);
                    }
                }
            }
            if refused.is_empty() {
                break;
            }
            // Ray refused: those nodes are busy for this decision; plan again without them.
            for n in ray.nodes.iter_mut().filter(|n| refused.contains(&n.pod)) {
                n.idle_ms = 0;
            }
            input.ray = ray.clone();
            plan = crate::autoscale::plan(&input);
        }
        if plan
            .groups
            .iter()
            .flat_map(|g| g.terminate.iter())
            .any(|p| !drained.contains(p))
        {
            // Drains kept failing: no termination this round.
            return;
        }
        st.decided = Some(plan.clone());
        report_infeasible(shared, st, &obj, &plan).await;
        report_capped(shared, st, &obj, &plan).await;
        // The engine's patch is the whole write, clearing of finished workersToDelete included.
        if plan.patch.is_empty() {
            record_timeline(shared, st, &rc, None, snapshot);
            return;
        }
        if !shared.leader.is_leader() {
            return;
        }
        let rv = obj.metadata.resource_version.clone().unwrap_or_default();
        let mut ops = vec![json!({"op": "test", "path": "/metadata/resourceVersion", "value": rv})];
        ops.extend(plan.patch.iter().cloned());
        let patch: json_patch::Patch = match serde_json::from_value(Value::Array(ops)) {
            Ok(p) => p,
            Err(e) => {
                shared.metrics.error(category::PATCH);
                tracing::error!(cluster = %st.name, error = %e, "engine produced an invalid patch");
                return;
            }
        };
        match api
            .patch(&st.name, &patch_params(), &Patch::Json::<()>(patch))
            .await
        {
            Ok(new) => {
                record_timeline(shared, st, &as_json(&new), Some(&plan), snapshot);
                let note = describe(&rc, &plan);
                let (reason, kind) = decision_kind(&plan);
                shared.metrics.decision(kind);
                tracing::info!(namespace = %st.ns, cluster = %st.name, "{note}");
                publish(shared, &new, EventType::Normal, reason, "Scale", note).await;
                if shared.opts.reconcile_pods {
                    let mut v = serde_json::to_value(&new).unwrap_or(Value::Null);
                    v["apiVersion"] = json!("ray.io/v1");
                    v["kind"] = json!("RayCluster");
                    crate::defaulting::apply_crd_defaults(&mut v);
                    reconcile_pods(shared, st, &v).await;
                }
                return;
            }
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 422 => {
                shared.metrics.error(category::CONFLICT);
                tracing::info!(cluster = %st.name, attempt, "RayCluster changed meanwhile ({}); planning again on fresh state", s.message);
                match api.get(&st.name).await {
                    Ok(fresh) => {
                        if !autoscaling_enabled(&fresh) {
                            return;
                        }
                        obj = fresh;
                        rc = match serde_json::to_value(&obj) {
                            Ok(v) => v,
                            Err(_) => return,
                        };
                        rc["apiVersion"] = json!("ray.io/v1");
                        rc["kind"] = json!("RayCluster");
                        crate::defaulting::apply_crd_defaults(&mut rc);
                    }
                    Err(e) => {
                        shared.metrics.error(category::PATCH);
                        tracing::warn!(cluster = %st.name, error = %e, "cannot re-read RayCluster");
                        return;
                    }
                }
            }
            Err(e) => {
                shared.metrics.error(category::PATCH);
                tracing::warn!(cluster = %st.name, error = %e, "patch failed");
                st.decided = None; // nothing of it happened: report nothing
                return;
            }
        }
    }
}

async fn drain(
    shared: &Shared,
    st: &mut State,
    snapshot: &RaySnapshot,
    pod: &str,
) -> Result<(), String> {
    let Some(node) = snapshot.node_for_pod(pod) else {
        // No Ray node on this pod (never joined): nothing to drain.
        return Ok(());
    };
    if matches!(node.status, NodeStatus::Dead | NodeStatus::Draining) {
        return Ok(());
    }
    let Some(gcs) = st.gcs.as_mut() else {
        return Err("no GCS client".into());
    };
    let deadline = unix_ms_in(shared.opts.drain_deadline);
    let res = tokio::time::timeout(
        shared.opts.gcs_timeout * 2,
        gcs.drain_node_idle(
            &node.node_id,
            "idle termination by raygate autoscaler",
            deadline,
        ),
    )
    .await;
    match res {
        Ok(Ok(DrainOutcome::Accepted)) => {
            shared.metrics.drain("accepted");
            Ok(())
        }
        Ok(Ok(DrainOutcome::Rejected { reason })) => {
            shared.metrics.drain("rejected");
            Err(format!("Ray rejected the drain: {reason}"))
        }
        Ok(Err(e)) => {
            shared.metrics.drain("failed");
            shared.metrics.error(category::DRAIN);
            Err(e.to_string())
        }
        Err(_) => {
            shared.metrics.drain("failed");
            shared.metrics.error(category::DRAIN);
            Err("DrainNode timed out".into())
        }
    }
}

fn fmt_shape(m: &BTreeMap<String, f64>) -> String {
    let parts: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("{k}: {}", crate::autoscale::status::py_float(*v)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

async fn report_infeasible(shared: &Shared, st: &mut State, obj: &DynamicObject, plan: &Plan) {
    if plan.infeasible.is_empty() {
        clear_warning(st, "InfeasibleDemand");
        return;
    }
    let list: Vec<String> = plan
        .infeasible
        .iter()
        .map(|d| format!("{}x {}", d.count, fmt_shape(&d.resources)))
        .collect();
    let note = format!(
        "no worker group can satisfy: {} (no group's pod has the resources)",
        list.join(", ")
    );
    warn_once(shared, st, obj, "InfeasibleDemand", note).await;
}

async fn report_capped(shared: &Shared, st: &mut State, obj: &DynamicObject, plan: &Plan) {
    if plan.capped.is_empty() {
        clear_warning(st, "MaxReplicasReached");
        return;
    }
    let list: Vec<String> = plan
        .capped
        .iter()
        .map(|d| {
            format!(
                "{}x {} ({})",
                d.count,
                fmt_shape(&d.resources),
                d.groups.join(", ")
            )
        })
        .collect();
    let note = format!(
        "demand waits for groups at maxReplicas: {} (raise maxReplicas to place it)",
        list.join(", ")
    );
    warn_once(shared, st, obj, "MaxReplicasReached", note).await;
}

fn decision_kind(plan: &Plan) -> (&'static str, &'static str) {
    if plan.groups.iter().any(|g| g.launch > 0) {
        ("ScaledUp", "scale_up")
    } else if plan.groups.iter().any(|g| !g.terminate.is_empty()) {
        ("ScaledDown", "scale_down")
    } else {
        ("WorkersToDeleteCleared", "clear")
    }
}

/// What the patch does and why, one clause per group.
pub fn describe(rc: &Value, plan: &Plan) -> String {
    let groups = rc
        .pointer("/spec/workerGroupSpecs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut parts = Vec::new();
    for g in &plan.groups {
        let old = groups
            .iter()
            .find(|x| x["groupName"] == g.name.as_str())
            .and_then(|x| x["replicas"].as_u64())
            .unwrap_or(0);
        if g.launch > 0 {
            parts.push(format!(
                "{}: replicas {old} -> {} (launch {})",
                g.name, g.replicas, g.launch
            ));
        } else if !g.terminate.is_empty() {
            parts.push(format!(
                "{}: replicas {old} -> {}, workersToDelete [{}] (idle past idleTimeoutSeconds, drained)",
                g.name,
                g.replicas,
                g.terminate.join(", ")
            ));
        }
    }
    let cleared: Vec<&str> = plan
        .patch
        .iter()
        .filter(|op| op["value"] == json!({"workersToDelete": []}))
        .filter_map(|op| op["path"].as_str())
        .collect();
    if !cleared.is_empty() {
        parts.push(format!(
            "workersToDelete cleared at {} (those pods are gone)",
            cleared.join(", ")
        ));
    }
    let mut why = Vec::new();
    for d in &plan.status.demands {
        why.push(format!("{}x {}", d.count, fmt_shape(&d.resources)));
    }
    for (s, b, n) in &plan.status.placement_groups {
        let shapes: Vec<String> = b.iter().map(fmt_shape).collect();
        why.push(format!(
            "{n}x placement group {} [{}]",
            s.as_str(),
            shapes.join(", ")
        ));
    }
    for d in &plan.status.constraints {
        why.push(format!(
            "request_resources {}x {}",
            d.count,
            fmt_shape(&d.resources)
        ));
    }
    let mut s = parts.join("; ");
    if plan.groups.iter().any(|g| g.launch > 0) && !why.is_empty() {
        s.push_str(&format!("; pending demand: {}", why.join(", ")));
    }
    s
}

/// `n` characters of Kubernetes' random-name alphabet (no vowels), as KubeRay's replica names.
fn random_suffix(n: usize) -> String {
    use std::hash::{BuildHasher, Hasher};
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    // A fresh RandomState has fresh random keys: its empty hash is a random number.
    let mut x = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (0..n)
        .map(|_| {
            let c = ALPHABET[(x % ALPHABET.len() as u64) as usize] as char;
            x /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// Creates missing worker pods, deletes the ones named in `workersToDelete` and unhealthy ones
/// (whole replicas in multi-host groups), labels unlabeled multi-host pods into replicas.
async fn reconcile_pods(shared: &Shared, st: &mut State, rc: &Value) {
    if !shared.leader.is_leader() {
        return;
    }
    let infos = pod_infos(shared, &st.ns, &st.name);
    // In flight until the watch shows the pod with the replica it was created or labelled with.
    let seen: BTreeSet<(&str, Option<&str>)> = infos
        .iter()
        .map(|(p, _)| (p.name.as_str(), p.replica_name.as_deref()))
        .collect();
    st.created.retain(|(p, t)| {
        !seen.contains(&(p.name.as_str(), p.replica_name.as_deref()))
            && t.elapsed() < Duration::from_secs(30)
    });
    let in_flight: Vec<PodInfo> = st.created.iter().map(|(p, _)| p.clone()).collect();
    let pods_only: Vec<PodInfo> = infos.into_iter().map(|(p, _)| p).collect();
    let mut replica_name = |g: &str| format!("{g}-{}", random_suffix(5));
    let actions = match pods::pod_actions(rc, &pods_only, &in_flight, &mut replica_name) {
        Ok(a) => a,
        Err(e) => {
            shared.metrics.error(category::POD);
            tracing::warn!(cluster = %st.name, "cannot build pods: {e}");
            return;
        }
    };
    let api: Api<Pod> = Api::namespaced(shared.client.clone(), &st.ns);
    for (name, labels, why) in actions.label {
        if !shared.leader.is_leader() {
            return;
        }
        let patch = json!({"metadata": {"labels": labels}});
        match api
            .patch(&name, &patch_params(), &Patch::Merge(&patch))
            .await
        {
            Ok(p) => {
                tracing::info!(cluster = %st.name, pod = %name, "labelled worker pod ({why})");
                st.created.push((PodInfo::from_pod(&p), Instant::now()));
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                shared.metrics.error(category::POD);
                tracing::warn!(cluster = %st.name, pod = %name, error = %e, "cannot label pod");
            }
        }
    }
    for (name, why) in actions.delete {
        if !shared.leader.is_leader() {
            return;
        }
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                shared.metrics.pods_deleted.inc();
                tracing::info!(cluster = %st.name, pod = %name, "deleted worker pod ({why})");
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                shared.metrics.error(category::POD);
                tracing::warn!(cluster = %st.name, pod = %name, error = %e, "cannot delete pod");
            }
        }
    }
    for (group, pod) in actions.create {
        if !shared.leader.is_leader() {
            return;
        }
        let pod: Pod = match serde_json::from_value(pod) {
            Ok(p) => p,
            Err(e) => {
                shared.metrics.error(category::POD);
                tracing::warn!(cluster = %st.name, group = %group, error = %e, "invalid pod template");
                return;
            }
        };
        let pp = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        match api.create(&pp, &pod).await {
            Ok(p) => {
                shared.metrics.pods_created.inc();
                let info = PodInfo::from_labels(&p.name_any(), p.labels(), false);
                tracing::info!(cluster = %st.name, group = %group, pod = %info.name,
                    replica = ?info.replica_name, "created worker pod");
                st.created.push((info, Instant::now()));
            }
            Err(e) => {
                shared.metrics.error(category::POD);
                tracing::warn!(cluster = %st.name, group = %group, error = %e, "cannot create pod");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_suffixes_are_five_kubernetes_name_characters_and_vary() {
        let a: BTreeSet<String> = (0..50).map(|_| random_suffix(5)).collect();
        assert!(a.len() > 45, "{a:?}");
        for s in &a {
            assert_eq!(s.len(), 5);
            assert!(
                s.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)),
                "{s}"
            );
        }
    }
}
