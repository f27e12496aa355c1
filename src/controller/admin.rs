//! Prometheus metrics of the autoscaling controller and its admin HTTP endpoint
//! (`/metrics`, `/healthz`, `/readyz`). No per-object labels: cardinality stays fixed however
//! many RayClusters are watched.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CategoryLabels {
    pub category: &'static str,
}

/// Error categories (the only values of the `category` label).
pub mod category {
    pub const GCS: &str = "gcs";
    pub const VALIDATION: &str = "validation";
    pub const CONFLICT: &str = "conflict";
    pub const PATCH: &str = "patch";
    pub const DRAIN: &str = "drain";
    pub const POD: &str = "pod";
    pub const EVENT: &str = "event";
    pub const LEASE: &str = "lease";
    pub const WATCH: &str = "watch";
}

/// Every metric the controller exports.
pub struct Metrics {
    registry: Registry,
    /// Decisions applied, by kind (`scale_up`, `scale_down`, `clear`).
    pub decisions: Family<KindLabels, Counter>,
    pub iteration: Histogram,
    pub errors: Family<CategoryLabels, Counter>,
    pub clusters: Gauge,
    /// Opted-in clusters left alone because another autoscaler acts on them.
    pub clusters_skipped: Gauge,
    pub leader: Gauge,
    pub pods_created: Counter,
    pub pods_deleted: Counter,
    pub drains: Family<KindLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut root = Registry::default();
        // raygate_build_info and process_* (the same as the webhook's admin port)
        crate::webhook::metrics::register_process_and_build(&mut root);
        let registry = root.sub_registry_with_prefix("raygate_autoscaler");
        let decisions = Family::<KindLabels, Counter>::default();
        registry.register(
            "decisions",
            "Scale decisions applied to RayClusters (one JSON Patch each), by kind",
            decisions.clone(),
        );
        // 100 µs .. ~6.5 s
        let iteration = Histogram::new(exponential_buckets(0.000_1, 2.0, 17));
        registry.register(
            "iteration_duration_seconds",
            "One per-cluster iteration: observe, GCS, engine, drain, patch, pods",
            iteration.clone(),
        );
        let errors = Family::<CategoryLabels, Counter>::default();
        registry.register(
            "errors",
            "Errors by category (gcs, validation, conflict, patch, drain, pod, event, lease, watch)",
            errors.clone(),
        );
        let clusters = Gauge::default();
        registry.register(
            "clusters_watched",
            "RayClusters this controller autoscales or watches (opted in)",
            clusters.clone(),
        );
        let clusters_skipped = Gauge::default();
        registry.register(
            "clusters_skipped",
            "Opted-in RayClusters left alone because another autoscaler acts on them \
             (Warning event OtherAutoscaler)",
            clusters_skipped.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the Lease and may write",
            leader.clone(),
        );
        let pods_created = Counter::default();
        registry.register(
            "pods_created",
            "Worker pods created (--reconcile-pods)",
            pods_created.clone(),
        );
        let pods_deleted = Counter::default();
        registry.register(
            "pods_deleted",
            "Worker pods deleted because workersToDelete named them (--reconcile-pods)",
            pods_deleted.clone(),
        );
        let drains = Family::<KindLabels, Counter>::default();
        registry.register(
            "drains",
            "DrainNode calls by outcome (accepted, rejected, failed)",
            drains.clone(),
        );
        Metrics {
            registry: root,
            decisions,
            iteration,
            errors,
            clusters,
            clusters_skipped,
            leader,
            pods_created,
            pods_deleted,
            drains,
        }
    }

    pub fn error(&self, category: &'static str) {
        self.errors
            .get_or_create(&CategoryLabels { category })
            .inc();
    }

    pub fn decision(&self, kind: &'static str) {
        self.decisions.get_or_create(&KindLabels { kind }).inc();
    }

    pub fn drain(&self, kind: &'static str) {
        self.drains.get_or_create(&KindLabels { kind }).inc();
    }

    /// Text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// [`serve`] as a task on the current runtime (abort it to stop); a listener that cannot bind or
/// fails ends the process with exit status 1, as the controller cannot be observed without it.
pub fn spawn(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = serve(addr, metrics, ready).await {
            tracing::error!(%addr, error = %e, "admin listener failed");
            std::process::exit(1);
        }
    })
}

/// Serves `/metrics`, `/healthz` (process alive) and `/readyz` (initial watches synced) until
/// the returned future is dropped.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
) -> std::io::Result<()> {
    use axum::http::StatusCode;
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        m.encode(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let r = ready.clone();
                async move {
                    if r.load(Ordering::Relaxed) {
                        (StatusCode::OK, "ok")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "watches not synced")
                    }
                }
            }),
        );
    axum::serve(listener, app).await
}
