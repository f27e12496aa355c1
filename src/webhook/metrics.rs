//! Prometheus metrics of the webhook (prometheus-client, text exposition on the admin port).

use crate::model::Kind;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::OnceLock;
use std::time::Duration;

const ENDPOINTS: [&str; 9] = [
    "validate",
    "mutate",
    "convert",
    "validate-rayjob",
    "mutate-rayjob",
    "validate-rayservice",
    "mutate-rayservice",
    "validate-raycronjob",
    "mutate-raycronjob",
];

/// The `endpoint` label of the validating endpoint of `kind`: `validate` for RayCluster (the
/// label it had before the other kinds were served), `validate-rayjob`, … otherwise.
pub fn validate_endpoint(kind: Kind) -> &'static str {
    match kind {
        Kind::RayCluster => "validate",
        Kind::RayJob => "validate-rayjob",
        Kind::RayService => "validate-rayservice",
        Kind::RayCronJob => "validate-raycronjob",
    }
}

/// [`validate_endpoint`] for the mutating endpoint.
pub fn mutate_endpoint(kind: Kind) -> &'static str {
    match kind {
        Kind::RayCluster => "mutate",
        Kind::RayJob => "mutate-rayjob",
        Kind::RayService => "mutate-rayservice",
        Kind::RayCronJob => "mutate-raycronjob",
    }
}
const OPERATIONS: [&str; 6] = [
    "CREATE", "UPDATE", "DELETE", "CONNECT", "CONVERT", "UNKNOWN",
];
const RESULTS: [&str; 7] = [
    "allowed",
    "denied",
    "patched",
    "unchanged",
    "converted",
    "failed",
    "invalid",
];
const N_REQ: usize = ENDPOINTS.len() * OPERATIONS.len() * RESULTS.len();

fn index_of(set: &[&str], s: &str) -> Option<usize> {
    set.iter().position(|x| *x == s)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub endpoint: &'static str,
    pub operation: &'static str,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: String,
}

fn latency_histogram() -> Histogram {
    // 50 µs .. ~1.6 s
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// Every metric the webhook exports.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    pub violations: Family<RuleLabels, Counter>,
    pub cert_expiry: Gauge,
    pub cert_reloads: Counter,
    pub cert_reload_failures: Counter,
    /// Handles into `requests` / `latency` for the fixed label combinations, resolved on first
    /// use (so the exposition only lists series that happened) and then used without the
    /// family's lock and hash lookup.
    request_cache: Box<[OnceLock<Counter>]>,
    latency_cache: [OnceLock<Histogram>; ENDPOINTS.len()],
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("raygate_webhook");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Webhook requests by endpoint, operation and result",
            requests.clone(),
        );
        let latency: Family<EndpointLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "request_duration_seconds",
            "Time to answer a webhook request (body read to response), by endpoint",
            latency.clone(),
        );
        let violations = Family::<RuleLabels, Counter>::default();
        registry.register(
            "violations",
            "Violations found by the validating endpoint, by rule id",
            violations.clone(),
        );
        let cert_expiry = Gauge::default();
        registry.register(
            "certificate_expiry_timestamp_seconds",
            "notAfter of the serving certificate, unix seconds",
            cert_expiry.clone(),
        );
        let cert_reloads = Counter::default();
        registry.register(
            "certificate_reloads",
            "Serving certificate pairs loaded after start",
            cert_reloads.clone(),
        );
        let cert_reload_failures = Counter::default();
        registry.register(
            "certificate_reload_failures",
            "Attempts to load a changed certificate pair that failed (the old pair kept serving)",
            cert_reload_failures.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            violations,
            cert_expiry,
            cert_reloads,
            cert_reload_failures,
            request_cache: (0..N_REQ).map(|_| OnceLock::new()).collect(),
            latency_cache: Default::default(),
        }
    }

    pub fn observe(
        &self,
        endpoint: &'static str,
        operation: &'static str,
        result: &'static str,
        elapsed: Duration,
    ) {
        let labels = || RequestLabels {
            endpoint,
            operation,
            result,
        };
        match (
            index_of(&ENDPOINTS, endpoint),
            index_of(&OPERATIONS, operation),
            index_of(&RESULTS, result),
        ) {
            (Some(e), Some(o), Some(r)) => {
                let i = (e * OPERATIONS.len() + o) * RESULTS.len() + r;
                self.request_cache[i]
                    .get_or_init(|| self.requests.get_or_create(&labels()).clone())
                    .inc();
            }
            _ => {
                self.requests.get_or_create(&labels()).inc();
            }
        }
        let secs = elapsed.as_secs_f64();
        match index_of(&ENDPOINTS, endpoint) {
            Some(e) => self.latency_cache[e]
                .get_or_init(|| {
                    self.latency
                        .get_or_create(&EndpointLabels { endpoint })
                        .clone()
                })
                .observe(secs),
            None => self
                .latency
                .get_or_create(&EndpointLabels { endpoint })
                .observe(secs),
        }
    }

    pub fn violation(&self, rule: &str) {
        self.violations
            .get_or_create(&RuleLabels {
                rule: rule.to_string(),
            })
            .inc();
    }

    /// OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
