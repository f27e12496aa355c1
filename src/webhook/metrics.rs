//! Prometheus metrics of the webhook (prometheus-client, text exposition on the admin port).
//!
//! Three sets in one registry:
//! - `raygate_webhook_*`: requests by endpoint/operation/result, latency, violations by rule,
//!   the serving certificate's expiry and reloads;
//! - `controller_runtime_webhook_*`: the series controller-runtime's webhook server exports
//!   (`requests_total{webhook,code}`, `requests_in_flight{webhook}`, `latency_seconds{webhook}`,
//!   `webhook` = the URL path), so dashboards and alerts written for controller-runtime
//!   webhooks work unchanged;
//! - [`register_process_and_build`]: `raygate_build_info` and the `process_*` metrics of the
//!   Prometheus client libraries, read from /proc at scrape time (shared with the autoscaler's
//!   admin port).

use crate::model::Kind;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
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

/// controller-runtime's labels: `webhook` is the URL path, `code` the HTTP status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub webhook: &'static str,
    pub code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    pub webhook: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: &'static str,
    pub commit: &'static str,
    pub kuberay: &'static str,
    pub ray: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: String,
}

fn latency_histogram() -> Histogram {
    // 50 µs .. ~1.6 s
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// Status codes the webhook answers with, for the handle cache (others take the family).
const CODES: [u16; 7] = [200, 400, 408, 413, 429, 500, 503];

/// Every metric the webhook exports.
pub struct Metrics {
    registry: Registry,
    paths: [&'static str; 3],
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    pub violations: Family<RuleLabels, Counter>,
    pub cert_expiry: Gauge,
    pub cert_reloads: Counter,
    pub cert_reload_failures: Counter,
    /// controller-runtime's `controller_runtime_webhook_requests_total{webhook,code}`.
    pub http_requests: Family<HttpLabels, Counter>,
    /// controller-runtime's `controller_runtime_webhook_requests_in_flight{webhook}`.
    pub in_flight: Family<WebhookLabels, Gauge>,
    /// controller-runtime's `controller_runtime_webhook_latency_seconds{webhook}`.
    pub http_latency: Family<WebhookLabels, Histogram, fn() -> Histogram>,
    http_cache: Box<[OnceLock<Counter>]>,
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

/// Decrements the in-flight gauge when the request is done, however it ends.
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    /// A request to webhook `path` started: the in-flight gauge counts it until the guard drops.
    pub fn start(&self, path: &'static str) -> InFlight {
        let g = self
            .in_flight
            .get_or_create(&WebhookLabels { webhook: path });
        g.inc();
        InFlight(g.clone())
    }

    /// A request to webhook `path` was answered with `code` after `elapsed`.
    pub fn answered(&self, path: &'static str, code: u16, elapsed: Duration) {
        let labels = || HttpLabels {
            webhook: path,
            code,
        };
        let p = self.paths.iter().position(|x| *x == path);
        let c = CODES.iter().position(|x| *x == code);
        match (p, c) {
            (Some(p), Some(c)) => self.http_cache[p * CODES.len() + c]
                .get_or_init(|| self.http_requests.get_or_create(&labels()).clone())
                .inc(),
            _ => self.http_requests.get_or_create(&labels()).inc(),
        };
        self.http_latency
            .get_or_create(&WebhookLabels { webhook: path })
            .observe(elapsed.as_secs_f64());
    }

    /// The webhook's metrics, for the server's paths.
    pub fn new() -> Self {
        use crate::webhook::server::{CONVERT_PATH, MUTATE_PATH, VALIDATE_PATH};
        Self::with_paths([VALIDATE_PATH, MUTATE_PATH, CONVERT_PATH])
    }

    /// The webhook's metrics, with the webhook paths `paths` (`validate`, `mutate`, `convert`
    /// order) as controller-runtime's `webhook` label values.
    pub fn with_paths(paths: [&'static str; 3]) -> Self {
        let mut root = Registry::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        root.register(
            "controller_runtime_webhook_requests",
            "Total number of admission requests by HTTP status code",
            http_requests.clone(),
        );
        let in_flight = Family::<WebhookLabels, Gauge>::default();
        root.register(
            "controller_runtime_webhook_requests_in_flight",
            "Current number of admission requests being served",
            in_flight.clone(),
        );
        let http_latency: Family<WebhookLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        root.register(
            "controller_runtime_webhook_latency_seconds",
            "Histogram of the latency of processing admission requests",
            http_latency.clone(),
        );
        for webhook in paths {
            // present (at 0) from the start, as controller-runtime's
            drop(in_flight.get_or_create(&WebhookLabels { webhook }));
        }
        register_process_and_build(&mut root);
        let registry = root.sub_registry_with_prefix("raygate_webhook");
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
            registry: root,
            paths,
            http_requests,
            in_flight,
            http_latency,
            http_cache: (0..paths.len() * CODES.len())
                .map(|_| OnceLock::new())
                .collect(),
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

/// Registers `raygate_build_info{version,commit,kuberay,ray} 1` and the standard `process_*`
/// metrics (read from /proc at each scrape) on `registry`, which must have no prefix.
pub fn register_process_and_build(registry: &mut Registry) {
    let build = Family::<BuildLabels, Gauge>::default();
    build
        .get_or_create(&BuildLabels {
            version: env!("CARGO_PKG_VERSION"),
            commit: crate::GIT_COMMIT,
            kuberay: crate::KUBERAY_VERSION,
            ray: crate::RAY_VERSION,
        })
        .set(1);
    registry.register(
        "raygate_build_info",
        "raygate's version, the commit it was built from and the KubeRay and Ray versions it targets (always 1)",
        build,
    );
    registry.register_collector(Box::new(ProcessCollector));
}

/// The process metrics of the Prometheus client libraries (Go's `collectors.NewProcessCollector`
/// names), from /proc/self at scrape time. A value /proc does not give is left out, not 0.
#[derive(Debug)]
pub struct ProcessCollector;

/// What /proc/self says about this process.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub start_time_seconds: Option<f64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub threads: Option<u64>,
}

impl ProcessStats {
    /// Reads /proc/self/{stat,fd,limits} and /proc/stat (boot time).
    pub fn read() -> ProcessStats {
        // SAFETY: sysconf only reads a configuration value.
        let (ticks, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<u64>().ok())
        });
        let mut st = parse_stat(&stat, ticks.max(1) as f64, page.max(1) as u64, boot);
        st.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64);
        st.max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|l| parse_max_open_files(&l));
        st
    }
}

/// Fields of /proc/<pid>/stat (proc(5)): after the `(comm)` (which may hold spaces and
/// parentheses, so split at the last `)`), field 14 utime, 15 stime, 20 num_threads, 22
/// starttime (ticks after boot), 23 vsize (bytes), 24 rss (pages).
pub fn parse_stat(stat: &str, ticks: f64, page: u64, boot_time: Option<u64>) -> ProcessStats {
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return ProcessStats::default();
    };
    // rest starts at field 3 (state)
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    ProcessStats {
        cpu_seconds: match (field(14), field(15)) {
            (Some(u), Some(s)) => Some((u + s) as f64 / ticks),
            _ => None,
        },
        threads: field(20),
        start_time_seconds: match (field(22), boot_time) {
            (Some(t), Some(b)) => Some(b as f64 + t as f64 / ticks),
            _ => None,
        },
        virtual_bytes: field(23),
        resident_bytes: field(24).map(|p| p * page),
        open_fds: None,
        max_fds: None,
    }
}

/// The soft limit of `Max open files` in /proc/<pid>/limits (`unlimited`: none).
pub fn parse_max_open_files(limits: &str) -> Option<u64> {
    let l = limits.lines().find(|l| l.starts_with("Max open files"))?;
    l["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let st = ProcessStats::read();
        if let Some(v) = st.cpu_seconds {
            let c = ConstCounter::new(v);
            c.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                c.metric_type(),
            )?)?;
        }
        let gauges: [(&str, &str, Option<f64>); 6] = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                st.resident_bytes.map(|v| v as f64),
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                st.virtual_bytes.map(|v| v as f64),
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                st.start_time_seconds,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                st.open_fds.map(|v| v as f64),
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors",
                st.max_fds.map(|v| v as f64),
            ),
            (
                "process_threads",
                "Number of OS threads in the process",
                st.threads.map(|v| v as f64),
            ),
        ];
        for (name, help, v) in gauges {
            if let Some(v) = v {
                let g = ConstGauge::new(v);
                g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_and_parens_in_comm() {
        // pid (comm) state ppid ... : utime=300 stime=100 threads=7 starttime=5000 vsize rss
        let mut fields: Vec<String> = (3..=52).map(|i| format!("{i}")).collect();
        fields[14 - 3] = "300".into();
        fields[15 - 3] = "100".into();
        fields[20 - 3] = "7".into();
        fields[22 - 3] = "5000".into();
        fields[23 - 3] = "123456789".into();
        fields[24 - 3] = "2500".into();
        let stat = format!("4242 (ray gate) (x)) {}", fields.join(" "));
        let st = parse_stat(&stat, 100.0, 4096, Some(1_700_000_000));
        assert_eq!(st.cpu_seconds, Some(4.0));
        assert_eq!(st.threads, Some(7));
        assert_eq!(st.start_time_seconds, Some(1_700_000_050.0));
        assert_eq!(st.virtual_bytes, Some(123_456_789));
        assert_eq!(st.resident_bytes, Some(2500 * 4096));
        assert_eq!(
            parse_stat("garbage", 100.0, 4096, None),
            ProcessStats::default()
        );
    }

    #[test]
    fn max_open_files_soft_limit() {
        let l = "Limit                     Soft Limit           Hard Limit           Units\nMax cpu time              unlimited            unlimited            seconds\nMax open files            1024                 524288               files\n";
        assert_eq!(parse_max_open_files(l), Some(1024));
        assert_eq!(
            parse_max_open_files("Max open files  unlimited unlimited files\n"),
            None
        );
        assert_eq!(parse_max_open_files(""), None);
    }
}
