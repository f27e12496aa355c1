//! `raygate autoscale run`: the in-cluster autoscaler for every RayCluster annotated
//! `raygate.io/autoscaler: central` whose head runs no other autoscaler ([`scope`]; with
//! KubeRay installed such a cluster has `enableInTreeAutoscaling: false`, see
//! docs/autoscaler-central.md).
//!
//! - [`cluster`]: one task per RayCluster (observe → engine → drain → guarded JSON Patch → pods);
//! - [`pods`]: the operator half (`--reconcile-pods`), pure;
//! - [`scope`]: which clusters are acted on (exactly one autoscaler per cluster), pure;
//! - [`lease`]: leader election through a `coordination.k8s.io` Lease;
//! - [`admin`]: Prometheus metrics, `/healthz`, `/readyz`;
//! - [`status`]: `raygate autoscale status <namespace>/<cluster>`.
//!
//! Decisions come from the pure engine ([`crate::autoscale::plan`]); this module only observes
//! and applies. It reads and writes `ray.io/v1` only (no dependency on the conversion webhook).

pub mod admin;
pub mod cluster;
pub mod lease;
pub mod pods;
pub mod scope;
pub mod sidecar;
pub mod status;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ResourceExt};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher::watcher};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mul) = if let Some(v) = s.strip_suffix("ms") {
        (v, 0.001)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix('m') {
        (v, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 1s, 500ms, 2m)"))?;
    if !v.is_finite() || v <= 0.0 || v * mul > 86_400.0 {
        return Err(format!("{s:?} must be > 0 and at most 24h"));
    }
    Ok(Duration::from_secs_f64(v * mul))
}

/// `raygate autoscale run` options.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "RAYGATE_NAMESPACE")]
    pub namespace: Option<String>,
    /// Period of the per-cluster loop (it also runs on every change).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Also create worker pods and delete the ones in workersToDelete (KubeRay's operator does
    /// this when it is installed; leave off then).
    #[arg(long)]
    pub reconcile_pods: bool,
    /// Admin listener: /metrics, /healthz, /readyz.
    #[arg(long, default_value = "0.0.0.0:8081")]
    pub admin_listen: SocketAddr,
    #[command(flatten)]
    pub planning: PlanningArgs,
    /// Deadline given to Ray's DrainNode for idle terminations.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub drain_deadline: Duration,
    /// Disable leader election (single replica only).
    #[arg(long)]
    pub no_leader_elect: bool,
    /// Namespace of the Lease (default: $POD_NAMESPACE, else `default`).
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Name of the Lease.
    #[arg(long, default_value = "raygate-autoscaler")]
    pub lease_name: String,
    /// Identity in the Lease (default: $POD_NAME, else hostname-pid).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// A non-holder takes over after not seeing the Lease renewed for this long.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub lease_duration: Duration,
    /// The holder stops writing when it could not renew for this long (< lease duration).
    #[arg(long, default_value = "7s", value_parser = parse_duration)]
    pub renew_deadline: Duration,
    /// Period of the lease loop (renew / try to acquire).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub lease_retry: Duration,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Record every decision: one CSV row per worker group per cluster iteration
    /// (t_seconds,group,demand,replicas,pods,launch,terminate; group = namespace/cluster/group)
    /// to FILE, and a plot of demand, replicas and pods over time to FILE with the extension
    /// .svg, rewritten every 10 s and at exit (`raygate autoscale timeline FILE` redraws it;
    /// docs/autoscaler.md#timeline).
    #[arg(long, value_name = "FILE")]
    pub timeline: Option<std::path::PathBuf>,
}

/// What decides a cluster's plan and which GCS is asked: shared by `autoscale run` and
/// `autoscale status <namespace>/<cluster>` (same flags, same defaults), so status shows the plan
/// the controller makes.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct PlanningArgs {
    /// Timeout of each GCS call (connect and RPC).
    #[arg(long, alias = "timeout", default_value = "2s", value_parser = parse_duration)]
    pub gcs_timeout: Duration,
    /// GCS port on `<cluster>-head-svc` (annotation `raygate.io/gcs-address` overrides the
    /// whole address).
    #[arg(long, default_value_t = 6379)]
    pub gcs_port: u16,
    /// Global cap on launches in flight per cluster (Ray's AUTOSCALER_MAX_CONCURRENT_LAUNCHES).
    #[arg(long, default_value_t = 10)]
    pub max_concurrent_launches: u32,
}

impl PlanningArgs {
    /// The engine knobs these flags set.
    pub fn engine_options(&self) -> crate::autoscale::types::EngineOptions {
        crate::autoscale::types::EngineOptions {
            max_concurrent_launches: self.max_concurrent_launches,
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

fn init_logging(format: LogFormat) {
    init_logging_at(format, "info");
}

/// Logging to stderr: `RUST_LOG` if set, else `default_filter` (e.g. `info`).
pub(crate) fn init_logging_at(format: LogFormat, default_filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder
            .fmt_fields(crate::cli::logfmt::EscapedFields)
            .try_init(),
    };
}

/// Entry point of `raygate autoscale run`: runs until SIGTERM/SIGINT.
pub fn run(args: RunArgs) -> ExitCode {
    init_logging(args.log_format);
    if args.renew_deadline >= args.lease_duration {
        eprintln!("error: --renew-deadline must be shorter than --lease-duration");
        return ExitCode::from(2);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run_async(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "raygate".into())
}

async fn run_async(args: RunArgs) -> Result<(), String> {
    let client = kube::Client::try_default()
        .await
        .map_err(|e| format!("cannot configure the Kubernetes client: {e}"))?;
    let metrics = Arc::new(admin::Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));
    let listener = admin::spawn(args.admin_listen, metrics.clone(), ready.clone());
    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| format!("{}-{}", hostname(), std::process::id()));
    let leader = if args.no_leader_elect {
        metrics.leader.set(1);
        lease::Leadership::always()
    } else {
        lease::start(
            client.clone(),
            lease::LeaseOptions {
                namespace: args
                    .lease_namespace
                    .clone()
                    .unwrap_or_else(|| "default".into()),
                name: args.lease_name.clone(),
                identity: identity.clone(),
                lease_duration: args.lease_duration,
                renew_deadline: args.renew_deadline,
                retry: args.lease_retry,
            },
            metrics.clone(),
        )
    };
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "raygate-autoscaler".into(),
            instance: Some(identity.clone()),
        },
    );
    let gvk = GroupVersionKind::gvk("ray.io", "v1", "RayCluster");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "rayclusters");
    let (rc_api, pod_api): (Api<DynamicObject>, Api<Pod>) = match &args.namespace {
        Some(ns) => (
            Api::namespaced_with(client.clone(), ns, &ar),
            Api::namespaced(client.clone(), ns),
        ),
        None => (Api::all_with(client.clone(), &ar), Api::all(client.clone())),
    };
    let rc_writer = Writer::new(ar.clone());
    let rc_store = rc_writer.as_reader();
    let pod_writer: Writer<Pod> = Writer::default();
    let pod_store = pod_writer.as_reader();
    let timeline = match &args.timeline {
        Some(p) => {
            let t = crate::timeline_file::TimelineFile::create(p, "raygate autoscale run")?;
            tracing::info!("timeline: {}", t.describe());
            Some(std::sync::Mutex::new(t))
        }
        None => None,
    };
    let shared = Arc::new(cluster::Shared {
        timeline,
        client: client.clone(),
        ar: ar.clone(),
        clusters: rc_store.clone(),
        pods: pod_store.clone(),
        metrics: metrics.clone(),
        leader,
        recorder,
        events_forbidden: Default::default(),
        opts: cluster::Options {
            interval: args.interval,
            reconcile_pods: args.reconcile_pods,
            gcs_timeout: args.planning.gcs_timeout,
            drain_deadline: args.drain_deadline,
            max_concurrent_launches: args.planning.max_concurrent_launches,
            gcs_port: args.planning.gcs_port,
            gcs_target: cluster::GcsTarget::HeadService,
            scope: scope::Scope::Central,
        },
    });

    // Trim what the caches keep: managed fields are large and never read.
    let rc_stream = reflector::reflector(
        rc_writer,
        watcher(rc_api, watcher::Config::default())
            .default_backoff()
            .modify(|o: &mut DynamicObject| o.managed_fields_mut().clear()),
    );
    let pod_stream = reflector::reflector(
        pod_writer,
        watcher(
            pod_api,
            // Head Pods too: a head still running an autoscaler container is never acted on.
            watcher::Config::default().labels("ray.io/node-type in (worker,head)"),
        )
        .default_backoff()
        .modify(|p: &mut Pod| p.managed_fields_mut().clear()),
    );
    let mut rc_stream = std::pin::pin!(rc_stream);
    let mut pod_stream = std::pin::pin!(pod_stream);
    let mut tasks: Tasks = HashMap::new();
    let (mut rc_synced, mut pods_synced) = (false, false);
    let mut shutdown = std::pin::pin!(crate::signal::shutdown_signal());
    tracing::info!(identity = %identity, namespace = ?args.namespace, reconcile_pods = args.reconcile_pods, "raygate autoscaler started");
    let ended = loop {
        tokio::select! {
            _ = &mut shutdown => break Ok(()),
            ev = rc_stream.next() => match ev {
                None => break Err("RayCluster watch ended".to_string()),
                Some(Err(e)) => {
                    metrics.error(admin::category::WATCH);
                    tracing::warn!(error = %e, "RayCluster watch error (retrying)");
                }
                Some(Ok(ev)) => {
                    match ev {
                        Event::Apply(o) if rc_synced && pods_synced => upsert(&shared, &mut tasks, &o),
                        Event::Apply(_) => {}
                        // The store swaps in the listed objects at InitDone.
                        Event::InitApply(_) => {}
                        Event::Delete(o) => {
                            let key = (o.namespace().unwrap_or_default(), o.name_any());
                            if let Some((_, h)) = tasks.remove(&key) {
                                h.abort();
                            }
                        }
                        Event::Init => {}
                        Event::InitDone => {
                            rc_synced = true;
                            // Drop clusters that vanished while the watch was down.
                            let store = &shared.clusters;
                            tasks.retain(|(ns, name), (_, h)| {
                                let r = reflector::ObjectRef::new_with(name, ar.clone()).within(ns);
                                let keep = store.get(&r).is_some_and(|o| cluster::wants_task(&o, scope::Scope::Central));
                                if !keep { h.abort(); }
                                keep
                            });
                            if pods_synced {
                                for o in store.state() {
                                    upsert(&shared, &mut tasks, &o);
                                }
                            }
                        }
                    }
                    tasks.retain(|_, (_, h)| !h.is_finished());
                    metrics.clusters.set(tasks.len() as i64);
                }
            },
            ev = pod_stream.next() => match ev {
                None => break Err("Pod watch ended".to_string()),
                Some(Err(e)) => {
                    metrics.error(admin::category::WATCH);
                    tracing::warn!(error = %e, "Pod watch error (retrying)");
                }
                Some(Ok(ev)) => match ev {
                    Event::Apply(p) | Event::Delete(p) | Event::InitApply(p) => {
                        if let Some(c) = p.labels().get(pods::LABEL_CLUSTER) {
                            let key = (p.namespace().unwrap_or_default(), c.clone());
                            if let Some((n, _)) = tasks.get(&key) {
                                n.notify_one();
                            }
                        }
                    }
                    Event::InitDone => {
                        // (Kube's `Store::wait_until_ready` wakes only one waiter, so the
                        // cluster tasks are started here instead of waiting on it.)
                        let first = !pods_synced;
                        pods_synced = true;
                        if first && rc_synced {
                            for o in shared.clusters.state() {
                                upsert(&shared, &mut tasks, &o);
                            }
                            metrics.clusters.set(tasks.len() as i64);
                        }
                    }
                    Event::Init => {}
                },
            },
        }
        if rc_synced && pods_synced && !ready.load(Ordering::Relaxed) {
            ready.store(true, Ordering::Relaxed);
            tracing::info!(clusters = tasks.len(), "caches synced; ready");
        }
    };
    match &ended {
        Ok(()) => tracing::info!("shutting down"),
        Err(e) => tracing::error!(error = %e, "shutting down"),
    }
    // The cluster tasks end at their next await: wait for that, so no row is recorded after
    // the final plot (the CSV holds the rows plotted).
    let handles: Vec<_> = tasks.drain().map(|(_, (_, h))| h).collect();
    for h in &handles {
        h.abort();
    }
    if tokio::time::timeout(Duration::from_secs(5), futures::future::join_all(handles))
        .await
        .is_err()
    {
        tracing::warn!("cluster tasks still running 5 s after the abort");
    }
    listener.abort();
    if let Some(t) = shared.timeline.as_ref() {
        let mut t = t.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match t.finish() {
            Ok(svg) => tracing::info!(svg = %svg.display(), "timeline written"),
            Err(e) => tracing::warn!(error = %e, "--timeline"),
        }
    }
    ended
}

/// Per (namespace, name): the wake-up handle and the task of an opted-in RayCluster.
type Tasks = HashMap<(String, String), (Arc<Notify>, tokio::task::JoinHandle<()>)>;

fn upsert(shared: &Arc<cluster::Shared>, tasks: &mut Tasks, o: &DynamicObject) {
    let key = (o.namespace().unwrap_or_default(), o.name_any());
    if !cluster::wants_task(o, shared.opts.scope) {
        if let Some((_, h)) = tasks.remove(&key) {
            h.abort();
        }
        return;
    }
    if let Some((n, h)) = tasks.get(&key)
        && !h.is_finished()
    {
        n.notify_one();
        return;
    }
    let notify = Arc::new(Notify::new());
    let h = tokio::spawn(cluster::run(
        shared.clone(),
        key.0.clone(),
        key.1.clone(),
        notify.clone(),
    ));
    tasks.insert(key, (notify, h));
}
