//! `raygate autoscale sidecar`: raygate as the `autoscaler` container KubeRay injects into the
//! head Pod of a RayCluster with `enableInTreeAutoscaling: true`, in place of Ray's Python
//! autoscaler.
//!
//! One cluster, named by the environment KubeRay gives that container (`RAY_CLUSTER_NAME`,
//! `RAY_CLUSTER_NAMESPACE`, `RAY_HEAD_POD_NAME`); the GCS on the Pod's own loopback at the head's
//! `rayStartParams.port` (default 6379); Kubernetes through the Pod's ServiceAccount. The
//! per-cluster loop is `autoscale run`'s ([`super::cluster::run`]: engine, drain, guarded JSON
//! Patch, `ReportAutoscalingState`, events, metrics); only how the RayCluster and its Pods reach
//! that loop differs, because KubeRay's autoscaler Role allows no list/watch of RayClusters:
//!
//! * the RayCluster is read with GET every `--interval` into the store the loop reads;
//! * worker Pods come from a namespaced watch (`ray.io/cluster=<name>,ray.io/node-type=worker`);
//! * no leader election (one container per cluster), no Pod writes (KubeRay creates and deletes
//!   Pods), Events only while the API server allows them (the Role has no `events` rule: the
//!   first 403 is logged once, see `cluster::publish`).

use super::admin::{self, category};
use super::cluster::{self, GcsTarget};
use super::{LogFormat, lease, parse_duration};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ResourceExt};
use kube::runtime::WatchStreamExt;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, store::Writer};
use kube::runtime::watcher::{self, Event, watcher};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// `raygate autoscale sidecar` options. Every one can come from the container's environment
/// (KubeRay < 1.7 cannot set the autoscaler container's args; `autoscalerOptions.env` can).
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct SidecarArgs {
    /// The RayCluster (KubeRay sets RAY_CLUSTER_NAME from the head Pod's `ray.io/cluster` label).
    #[arg(long, env = "RAY_CLUSTER_NAME")]
    pub cluster_name: Option<String>,
    /// Its namespace (KubeRay sets RAY_CLUSTER_NAMESPACE from the Pod's namespace).
    #[arg(long, env = "RAY_CLUSTER_NAMESPACE")]
    pub cluster_namespace: Option<String>,
    /// The head Pod this container runs in (logs and the Events' reporting instance).
    #[arg(long, env = "RAY_HEAD_POD_NAME")]
    pub head_pod_name: Option<String>,
    /// GCS address HOST:PORT (default: 127.0.0.1 and the head's `rayStartParams.port`, else 6379).
    #[arg(long, env = "RAYGATE_GCS_ADDRESS")]
    pub gcs_address: Option<String>,
    /// Period of the loop: one GET of the RayCluster and one autoscaler iteration (it also runs
    /// on every change of the cluster's worker Pods or of the RayCluster).
    #[arg(long, env = "RAYGATE_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Admin listener: /metrics, /healthz, /readyz (default: Ray's autoscaler metrics port).
    #[arg(long, env = "RAYGATE_ADMIN_LISTEN", default_value = "0.0.0.0:44217")]
    pub admin_listen: SocketAddr,
    /// Timeout of each GCS call (connect and RPC).
    #[arg(long, env = "RAYGATE_GCS_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub gcs_timeout: Duration,
    /// Cap on launches in flight (Ray's AUTOSCALER_MAX_CONCURRENT_LAUNCHES).
    #[arg(long, env = "RAYGATE_MAX_CONCURRENT_LAUNCHES", default_value_t = 10)]
    pub max_concurrent_launches: u32,
    /// Deadline given to Ray's DrainNode for idle terminations.
    #[arg(long, env = "RAYGATE_DRAIN_DEADLINE", default_value = "60s", value_parser = parse_duration)]
    pub drain_deadline: Duration,
    /// Log format.
    #[arg(long, env = "RAYGATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter when RUST_LOG is unset (`debug`, `info`, `warn`, `error`).
    #[arg(long, env = "RAYGATE_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// KubeRay's generated autoscaler command line as one argument (`ray kuberay-autoscaler
    /// --cluster-name X --cluster-namespace Y`): what KubeRay >= 1.7 leaves in `args` when only
    /// `autoscalerOptions.command` is set. Its cluster name and namespace fill in missing flags.
    #[arg(hide = true, value_name = "KUBERAY_COMMAND")]
    pub generated: Vec<String>,
}

/// The cluster the sidecar autoscales, resolved from flags, environment and KubeRay's command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub namespace: String,
    pub head_pod: Option<String>,
    pub gcs: GcsTarget,
}

impl SidecarArgs {
    /// Flags/env first, then KubeRay's generated command line; both a name and a namespace are
    /// required, and the two sources must agree.
    pub fn target(&self) -> Result<Target, String> {
        let mut name = self.cluster_name.clone().filter(|s| !s.is_empty());
        let mut namespace = self.cluster_namespace.clone().filter(|s| !s.is_empty());
        let mut gcs = self.gcs_address.clone().filter(|s| !s.is_empty());
        for g in &self.generated {
            let words: Vec<String> = g.split_whitespace().map(String::from).collect();
            let rest = match words.first().map(String::as_str) {
                Some("ray") => &words[1..],
                _ => &words[..],
            };
            let cmd = crate::cli::ray_compat::parse(rest).map_err(|e| {
                format!("unexpected argument {g:?}: not KubeRay's autoscaler command ({e})")
            })?;
            let crate::cli::ray_compat::RayCommand::KuberayAutoscaler(k) = cmd else {
                return Err(format!(
                    "unexpected argument {g:?}: not KubeRay's autoscaler command"
                ));
            };
            merge(&mut name, k.cluster_name, "cluster name")?;
            merge(&mut namespace, k.cluster_namespace, "cluster namespace")?;
            if gcs.is_none() {
                gcs = k.gcs_address;
            }
        }
        let name = name
            .ok_or("no RayCluster name: set RAY_CLUSTER_NAME (KubeRay does) or --cluster-name")?;
        let namespace = namespace.ok_or(
            "no RayCluster namespace: set RAY_CLUSTER_NAMESPACE (KubeRay does) or \
             --cluster-namespace",
        )?;
        if let Some(a) = &gcs {
            crate::gcs::GcsClient::lazy(a, Default::default())
                .map_err(|e| format!("--gcs-address {a:?}: {e}"))?;
        }
        Ok(Target {
            name,
            namespace,
            head_pod: self.head_pod_name.clone().filter(|s| !s.is_empty()),
            gcs: gcs.map_or(GcsTarget::PodLoopback, GcsTarget::Fixed),
        })
    }
}

fn merge(have: &mut Option<String>, from_cmd: String, what: &str) -> Result<(), String> {
    match have {
        Some(h) if *h != from_cmd => Err(format!(
            "{what} {h:?} (flag/environment) differs from {from_cmd:?} in KubeRay's command"
        )),
        Some(_) => Ok(()),
        None => {
            *have = Some(from_cmd);
            Ok(())
        }
    }
}

/// Entry point of `raygate autoscale sidecar` (and of `ray kuberay-autoscaler`): runs until
/// SIGTERM/SIGINT. Exit codes: 2 bad arguments, 1 cannot start.
pub fn run(args: SidecarArgs) -> ExitCode {
    let target = match args.target() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    super::init_logging_at(args.log_format, &args.log_level);
    // One cluster: a single runtime thread is plenty and keeps the RSS small.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run_async(args, target)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The in-cluster config when running in a Pod (and KUBECONFIG is not set), else the usual
/// inference (KUBECONFIG, ~/.kube/config, in-cluster).
async fn kube_config() -> Result<kube::Config, String> {
    let in_pod = std::env::var_os("KUBECONFIG").is_none()
        && std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    if in_pod {
        kube::Config::incluster().map_err(|e| format!("in-cluster config: {e}"))
    } else {
        kube::Config::infer()
            .await
            .map_err(|e| format!("cannot configure the Kubernetes client: {e}"))
    }
}

async fn run_async(args: SidecarArgs, target: Target) -> Result<(), String> {
    let config = kube_config().await?;
    let client = kube::Client::try_from(config)
        .map_err(|e| format!("cannot configure the Kubernetes client: {e}"))?;
    let metrics = Arc::new(admin::Metrics::new());
    metrics.leader.set(1);
    let ready = Arc::new(AtomicBool::new(false));
    let listener = admin::spawn(args.admin_listen, metrics.clone(), ready.clone());
    let instance = target
        .head_pod
        .clone()
        .unwrap_or_else(|| format!("{}-{}", super::hostname(), std::process::id()));
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: cluster::FIELD_MANAGER.into(),
            instance: Some(instance),
        },
    );
    let gvk = GroupVersionKind::gvk("ray.io", "v1", "RayCluster");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "rayclusters");
    let rc_api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &target.namespace, &ar);
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), &target.namespace);
    let mut rc_writer = Writer::new(ar.clone());
    let pod_writer: Writer<Pod> = Writer::default();
    let pod_store = pod_writer.as_reader();
    let shared = Arc::new(cluster::Shared {
        client: client.clone(),
        ar: ar.clone(),
        clusters: rc_writer.as_reader(),
        pods: pod_store,
        metrics: metrics.clone(),
        leader: lease::Leadership::always(),
        recorder,
        events_forbidden: AtomicBool::new(false),
        opts: cluster::Options {
            interval: args.interval,
            reconcile_pods: false,
            gcs_timeout: args.gcs_timeout,
            drain_deadline: args.drain_deadline,
            max_concurrent_launches: args.max_concurrent_launches,
            gcs_port: 6379,
            gcs_target: target.gcs.clone(),
            scope: super::scope::Scope::Sidecar,
        },
        timeline: None,
    });
    let selector = format!(
        "{}={},{}=worker",
        super::pods::LABEL_CLUSTER,
        target.name,
        super::pods::LABEL_NODE_TYPE
    );
    let pod_stream = reflector::reflector(
        pod_writer,
        watcher(pod_api, watcher::Config::default().labels(&selector))
            .default_backoff()
            .modify(|p: &mut Pod| p.managed_fields_mut().clear()),
    );
    let mut pod_stream = std::pin::pin!(pod_stream);
    let key = ObjectRef::new_with(&target.name, ar.clone()).within(&target.namespace);
    let notify = Arc::new(Notify::new());
    let mut task: Option<tokio::task::JoinHandle<()>> = None;
    let mut tick = tokio::time::interval(args.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let get_timeout = (args.interval * 5).max(Duration::from_secs(5));
    let mut last_rv: Option<String> = None;
    let mut rc_seen = false;
    let mut pods_synced = false;
    let mut last_get_error: Option<String> = None;
    let mut shutdown = std::pin::pin!(crate::signal::shutdown_signal());
    tracing::info!(cluster = %target.name, namespace = %target.namespace,
        head_pod = ?target.head_pod, gcs = ?target.gcs, "raygate autoscaler sidecar started");
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => {
                let got = tokio::time::timeout(get_timeout, rc_api.get_opt(&target.name)).await;
                let err = match got {
                    Ok(Ok(Some(mut o))) => {
                        rc_seen = true;
                        let rv = o.resource_version();
                        if rv != last_rv {
                            o.managed_fields_mut().clear();
                            rc_writer.apply_watcher_event(&Event::Apply(o));
                            last_rv = rv;
                            notify.notify_one();
                        }
                        None
                    }
                    Ok(Ok(None)) => {
                        if let Some(o) = shared.clusters.get(&key) {
                            rc_writer.apply_watcher_event(&Event::Delete((*o).clone()));
                        }
                        last_rv = None;
                        Some(format!("RayCluster {}/{} not found", target.namespace, target.name))
                    }
                    Ok(Err(e)) => Some(format!("cannot read RayCluster {}/{}: {e}", target.namespace, target.name)),
                    Err(_) => Some(format!("reading RayCluster {}/{} timed out", target.namespace, target.name)),
                };
                match err {
                    Some(e) => {
                        metrics.error(category::WATCH);
                        if last_get_error.as_ref() != Some(&e) {
                            tracing::warn!("{e} (retrying every {:?})", args.interval);
                            last_get_error = Some(e);
                        }
                    }
                    None => {
                        if last_get_error.take().is_some() {
                            tracing::info!(cluster = %target.name, "RayCluster readable again");
                        }
                    }
                }
            },
            ev = pod_stream.next() => match ev {
                None => return Err("Pod watch ended".into()),
                Some(Err(e)) => {
                    metrics.error(category::WATCH);
                    tracing::warn!(error = %e, "Pod watch error (retrying)");
                }
                Some(Ok(ev)) => {
                    if matches!(ev, Event::InitDone) {
                        pods_synced = true;
                    }
                    notify.notify_one();
                }
            },
        }
        // The loop runs once both are known (never on a half-listed Pod cache), and again if it
        // ended (the RayCluster was deleted or stopped autoscaling, then came back).
        let running = task.as_ref().is_some_and(|h| !h.is_finished());
        if pods_synced
            && !running
            && let Some(o) = shared.clusters.get(&key)
            && cluster::autoscaling_enabled(&o)
        {
            task = Some(tokio::spawn(cluster::run(
                shared.clone(),
                target.namespace.clone(),
                target.name.clone(),
                notify.clone(),
            )));
        }
        metrics
            .clusters
            .set(i64::from(task.as_ref().is_some_and(|h| !h.is_finished())));
        if rc_seen && pods_synced && !ready.load(Ordering::Relaxed) {
            ready.store(true, Ordering::Relaxed);
            tracing::info!(cluster = %target.name, "RayCluster read, Pod cache synced; ready");
        }
    }
    tracing::info!("shutting down");
    if let Some(h) = task {
        h.abort();
    }
    listener.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        a: SidecarArgs,
    }

    fn args(argv: &[&str]) -> SidecarArgs {
        Cli::try_parse_from(std::iter::once("sidecar").chain(argv.iter().copied()))
            .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
            .a
    }

    #[test]
    fn flags_name_the_cluster_and_the_gcs_defaults_to_the_pod_loopback() {
        let t = args(&["--cluster-name", "rc", "--cluster-namespace", "ns"])
            .target()
            .unwrap();
        assert_eq!(t.name, "rc");
        assert_eq!(t.namespace, "ns");
        assert_eq!(t.gcs, GcsTarget::PodLoopback);
        let t = args(&[
            "--cluster-name=rc",
            "--cluster-namespace=ns",
            "--gcs-address",
            "10.0.0.1:6380",
        ])
        .target()
        .unwrap();
        assert_eq!(t.gcs, GcsTarget::Fixed("10.0.0.1:6380".into()));
    }

    #[test]
    fn missing_name_or_namespace_and_bad_gcs_addresses_are_clear_errors() {
        let e = args(&["--cluster-namespace", "ns"]).target().unwrap_err();
        assert!(e.contains("RAY_CLUSTER_NAME"), "{e}");
        let e = args(&["--cluster-name", "rc"]).target().unwrap_err();
        assert!(e.contains("RAY_CLUSTER_NAMESPACE"), "{e}");
        let e = args(&["--cluster-name", "rc", "--cluster-namespace", "ns"])
            .clone()
            .target()
            .map(|_| ());
        assert!(e.is_ok());
        let e = args(&[
            "--cluster-name",
            "rc",
            "--cluster-namespace",
            "ns",
            "--gcs-address",
            "no-port",
        ])
        .target()
        .unwrap_err();
        assert!(e.contains("--gcs-address \"no-port\""), "{e}");
    }

    #[test]
    fn kuberay_17_command_only_leaves_its_generated_args_which_fill_the_target() {
        // KubeRay >= 1.7 with only `autoscalerOptions.command: [raygate, autoscale, sidecar]`
        // keeps its generated args: the kubelet expands `$(RAY_CLUSTER_NAME)` etc. into one
        // string.
        let a = args(&["ray kuberay-autoscaler --cluster-name rc --cluster-namespace ns"]);
        let t = a.target().unwrap();
        assert_eq!((t.name.as_str(), t.namespace.as_str()), ("rc", "ns"));
        // Agreeing flags are fine, disagreeing ones an error.
        let a = args(&[
            "--cluster-name",
            "rc",
            "ray kuberay-autoscaler --cluster-name rc --cluster-namespace ns",
        ]);
        assert_eq!(a.target().unwrap().namespace, "ns");
        let a = args(&[
            "--cluster-name",
            "other",
            "ray kuberay-autoscaler --cluster-name rc --cluster-namespace ns",
        ]);
        let e = a.target().unwrap_err();
        assert!(e.contains("\"other\"") && e.contains("\"rc\""), "{e}");
        let e = args(&[
            "--cluster-name",
            "rc",
            "--cluster-namespace",
            "ns",
            "start --head",
        ])
        .target()
        .unwrap_err();
        assert!(e.contains("not KubeRay's autoscaler command"), "{e}");
    }

    #[test]
    fn kuberay_17_command_and_args() {
        // autoscalerOptions.command: [/usr/local/bin/raygate], args: [autoscale, sidecar]: the
        // target comes from KubeRay's env.
        let a = args(&[]);
        assert!(a.generated.is_empty());
        // The full raygate command line parses from the binary's own CLI.
        let cli =
            crate::cli::ray_compat::sidecar_argv(&crate::cli::ray_compat::KuberayAutoscaler {
                cluster_name: "rc".into(),
                cluster_namespace: "ns".into(),
                ..Default::default()
            });
        let a = args(
            &cli[3..]
                .iter()
                .map(|s| s.to_str().unwrap())
                .collect::<Vec<_>>(),
        );
        assert_eq!(a.target().unwrap().name, "rc");
    }

    #[test]
    fn defaults() {
        let a = args(&[]);
        assert_eq!(a.interval, Duration::from_secs(1));
        assert_eq!(a.admin_listen, "0.0.0.0:44217".parse().unwrap());
        assert_eq!(a.gcs_timeout, Duration::from_secs(2));
        assert_eq!(a.drain_deadline, Duration::from_secs(60));
        assert_eq!(a.max_concurrent_launches, 10);
    }
}
