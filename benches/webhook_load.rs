//! Load benchmark for `raygate serve` (harness = false).
//!
//! Starts the real binary on 127.0.0.1 with a generated certificate, then drives it over
//! HTTP/2 + TLS 1.3 from an in-process client (`support`: `h2` directly, pre-serialised body)
//! with a ~10 KB RayCluster AdmissionReview, once for /validate and once for /mutate. Reports
//! requests/s, latency percentiles, the server's RSS, and the server's and the client's CPU time
//! per request (from `/proc`). Before the load runs it times the two handlers in-process
//! (`admission::validate` / `mutate` on the same body, one thread, no network).
//!
//! ```sh
//! cargo bench --bench webhook_load -- --duration 10 --warmup 2 --concurrency 64 --connections 4
//! cargo bench --bench webhook_load -- --rate 10000       # open loop as well (see below)
//! ```
//! Options: `--duration SECS` (per endpoint, default 10), `--warmup SECS` (2),
//! `--concurrency N` (64), `--connections N` (4), `--endpoint validate|mutate|both`,
//! `--rate R` (also run open loop: R requests/s scheduled, at most `--concurrency` in flight,
//! latency from the scheduled time), `--client-threads N` (client runtime workers, default 1),
//! `--log LEVEL` (server RUST_LOG, default `info`: one JSON log line per request, written to a
//! pipe the bench drains), `--handler-secs SECS` (in-process timing of each handler and of
//! reading the review with `raygate::json` and with `serde_json`, 1),
//! `--dump-body PATH` (write the AdmissionReview and exit, e.g. for curl).
//! Set `RAYGATE_BENCH_BIN` to run another copy of the binary.
//! Without `--bench` (as under `cargo test --all-targets`) it only does a 0.5 s smoke run.

mod support;

use raygate::webhook::admission::{self, AdmissionConfig};
use raygate::webhook::client::{self, Proto};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use support::{H2, Load, RaygateServer, Sample};

// The server's allocator, so the in-process handler timing matches the server (and the client
// is cheaper).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const VALIDATE: &str = "/validate-ray-io-v1-raycluster";
const MUTATE: &str = "/mutate-ray-io-v1-raycluster";

struct Opts {
    duration: f64,
    warmup: f64,
    concurrency: usize,
    connections: usize,
    endpoint: String,
    log: String,
    rate: Option<f64>,
    client_threads: usize,
    handler_secs: f64,
    dump_body: Option<String>,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        duration: 10.0,
        warmup: 2.0,
        concurrency: 64,
        connections: 4,
        endpoint: "both".into(),
        log: "info".into(),
        rate: None,
        client_threads: 1,
        handler_secs: 1.0,
        dump_body: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let val = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--duration" => o.duration = val.parse().expect("--duration SECS"),
            "--warmup" => o.warmup = val.parse().expect("--warmup SECS"),
            "--concurrency" => o.concurrency = val.parse().expect("--concurrency N"),
            "--connections" => o.connections = val.parse().expect("--connections N"),
            "--endpoint" => o.endpoint = val,
            "--log" => o.log = val,
            "--rate" => o.rate = Some(val.parse().expect("--rate REQ_PER_SEC")),
            "--client-threads" => o.client_threads = val.parse().expect("--client-threads N"),
            "--handler-secs" => o.handler_secs = val.parse().expect("--handler-secs SECS"),
            "--dump-body" => o.dump_body = Some(val),
            // cargo bench passes --bench
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    // `cargo test --all-targets` runs this binary without `--bench`: a short smoke run only.
    if !args.iter().any(|a| a == "--bench") {
        o.duration = o.duration.min(0.5);
        o.warmup = o.warmup.min(0.2);
        o.handler_secs = o.handler_secs.min(0.1);
    }
    o.concurrency = o.concurrency.max(1);
    o.connections = o.connections.clamp(1, o.concurrency);
    o
}

/// A realistic in-cluster RayCluster: the autoscaler sample with four worker groups, env,
/// tolerations, and the `last-applied-configuration` annotation `kubectl apply` adds.
fn big_raycluster() -> Value {
    let mut obj = support::sample_docs(&support::samples_dir().join("ray-cluster.autoscaler.yaml"))
        .into_iter()
        .find(|d| d["kind"] == "RayCluster")
        .expect("RayCluster");
    obj["metadata"]["namespace"] = json!("ml-team");
    obj["metadata"]["uid"] = json!("5e0c7c8e-64b9-4a44-9d0b-1f7f2c1d9a11");
    obj["metadata"]["labels"] =
        json!({"team": "ml", "env": "prod", "app.kubernetes.io/managed-by": "kubectl"});
    let g0 = obj["spec"]["workerGroupSpecs"][0].clone();
    let mut groups = Vec::new();
    for (i, (cpu, mem)) in [("2", "8Gi"), ("4", "16Gi"), ("8", "32Gi"), ("16", "64Gi")]
        .iter()
        .enumerate()
    {
        let mut g = g0.clone();
        g["groupName"] = json!(format!("cpu-{cpu}"));
        g["replicas"] = json!(1 + i);
        g["minReplicas"] = json!(0);
        g["maxReplicas"] = json!(10 * (i + 1));
        let c = &mut g["template"]["spec"]["containers"][0];
        c["resources"] =
            json!({"limits": {"cpu": cpu, "memory": mem}, "requests": {"cpu": cpu, "memory": mem}});
        c["env"] = json!([
            {"name": "RAY_GRAFANA_HOST", "value": "http://prometheus-grafana.prometheus-system.svc:80"},
            {"name": "RAY_PROMETHEUS_HOST", "value": "http://prometheus-kube-prometheus-prometheus.prometheus-system.svc:9090"},
            {"name": "MY_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "GROUP", "value": format!("cpu-{cpu}")}
        ]);
        g["template"]["spec"]["tolerations"] = json!([
            {"key": "ray.io/node-type", "operator": "Equal", "value": "worker", "effect": "NoSchedule"}
        ]);
        g["template"]["spec"]["nodeSelector"] =
            json!({"cloud.google.com/machine-family": "n2", "pool": format!("cpu-{cpu}")});
        groups.push(g);
    }
    obj["spec"]["workerGroupSpecs"] = Value::Array(groups);
    let last_applied = serde_json::to_string(&obj).expect("json");
    obj["metadata"]["annotations"] =
        json!({"kubectl.kubernetes.io/last-applied-configuration": last_applied});
    obj
}

fn body() -> bytes::Bytes {
    let review = support::review(
        &big_raycluster(),
        "bench",
        "ml-team",
        json!({"username": "alice@example.com", "uid": "u-1", "groups": ["system:authenticated", "ml-team"]}),
        json!({"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-client-side-apply"}),
    );
    bytes::Bytes::from(serde_json::to_vec(&review).expect("json"))
}

/// In-process cost of one handler call on `body` (one thread, no network), µs.
fn handler_us(f: &dyn Fn(&[u8]) -> usize, body: &[u8], secs: f64) -> f64 {
    for _ in 0..50 {
        std::hint::black_box(f(body));
    }
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed().as_secs_f64() < secs {
        for _ in 0..50 {
            std::hint::black_box(f(std::hint::black_box(body)));
        }
        n += 50;
    }
    t.elapsed().as_secs_f64() * 1e6 / n as f64
}

async fn connect_all(srv: &RaygateServer, n: usize, path: &str) -> Vec<H2> {
    let cfg = client::tls_config(&srv.ca_pem, Proto::H2).expect("tls config");
    let mut conns = Vec::new();
    for _ in 0..n {
        let c = support::connect(srv.srv.addr, cfg.clone(), path)
            .await
            .expect("connect");
        assert_eq!(c.alpn.as_deref(), Some(&b"h2"[..]), "HTTP/2 negotiated");
        conns.push(c);
    }
    conns
}

struct Row {
    endpoint: &'static str,
    mode: String,
    s: Sample,
    log_lines: u64,
}

async fn run_endpoint(
    srv: &RaygateServer,
    opts: &Opts,
    endpoint: &'static str,
    path: &'static str,
    body: bytes::Bytes,
) -> Vec<Row> {
    let conns = connect_all(srv, opts.connections, path).await;
    // sanity: the answer is what we expect
    {
        let (s, b) = conns[0].clone().post(body.clone()).await.expect("request");
        let v: Value = serde_json::from_slice(&b).expect("json");
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["response"]["uid"], "bench", "{v}");
        assert_eq!(v["response"]["allowed"], true, "{v}");
        eprintln!(
            "{endpoint}: allowed={} patch={} warnings={}",
            v["response"]["allowed"],
            v["response"].get("patch").is_some(),
            v["response"]["warnings"]
        );
    }
    let bodies: Arc<[bytes::Bytes]> = Arc::from(vec![body]);
    let mut modes = vec![None];
    if opts.rate.is_some() {
        modes.push(opts.rate);
    }
    let mut rows = Vec::new();
    for rate in modes {
        let load = Load {
            concurrency: opts.concurrency,
            warmup: opts.warmup,
            duration: opts.duration,
            rate,
        };
        let l0 = srv.log_lines.load(Ordering::Relaxed);
        let s = support::run(&conns, bodies.clone(), srv.srv.pid(), &load).await;
        // let the drain catch up (it reads every 10 ms)
        tokio::time::sleep(Duration::from_millis(50)).await;
        let log_lines = srv.log_lines.load(Ordering::Relaxed) - l0;
        rows.push(Row {
            endpoint,
            mode: match rate {
                None => format!("closed loop, {} in flight", opts.concurrency),
                Some(r) => format!("open loop, {r:.0}/s, ≤ {} in flight", opts.concurrency),
            },
            s,
            log_lines,
        });
    }
    rows
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let opts = parse_opts();
    let body = body();
    if let Some(p) = &opts.dump_body {
        std::fs::write(p, &body).unwrap_or_else(|e| panic!("--dump-body {p}: {e}"));
        println!("AdmissionReview body written to {p}");
        return;
    }
    let load0 = support::loadavg();

    // In-process handler cost (what the server does per request minus HTTP/2, TLS and logging).
    let cfg = AdmissionConfig::default();
    let v_us = handler_us(
        &|b| admission::validate(b, &cfg).body.len(),
        &body,
        opts.handler_secs,
    );
    let m_us = handler_us(
        &|b| admission::mutate(b, &cfg).body.len(),
        &body,
        opts.handler_secs,
    );

    // The review read into a `Value`: raygate's reader and serde_json.
    let json_us = handler_us(
        &|b| usize::from(raygate::json::parse(b).is_some()),
        &body,
        opts.handler_secs,
    );
    let serde_us = handler_us(
        &|b| usize::from(serde_json::from_slice::<Value>(b).is_ok()),
        &body,
        opts.handler_secs,
    );

    let srv = support::start_raygate(&[], &opts.log);
    let rt = if opts.client_threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(opts.client_threads)
            .enable_all()
            .build()
    }
    .expect("runtime");
    let mut rows = Vec::new();
    rt.block_on(async {
        if opts.endpoint == "both" || opts.endpoint == "validate" {
            rows.extend(run_endpoint(&srv, &opts, "validate", VALIDATE, body.clone()).await);
        }
        if opts.endpoint == "both" || opts.endpoint == "mutate" {
            rows.extend(run_endpoint(&srv, &opts, "mutate", MUTATE, body.clone()).await);
        }
    });
    let hwm = support::proc_status_kib(srv.srv.pid(), "VmHWM:");
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!(
        "\nraygate serve load: HTTP/2 over TLS 1.3 on 127.0.0.1, {} connections, AdmissionReview body {} bytes, \
         {} s per run after {} s warm-up, {} CPUs shared by client ({} runtime thread{}) and server, server RUST_LOG={} \
         (JSON log lines to a pipe)\n",
        opts.connections,
        body.len(),
        opts.duration,
        opts.warmup,
        cpus,
        opts.client_threads.max(1),
        if opts.client_threads > 1 { "s" } else { "" },
        opts.log
    );
    println!(
        "in-process handler, one thread: validate {v_us:.1} µs/request, mutate {m_us:.1} µs/request \
         (the review into a Value: raygate::json {json_us:.1} µs, serde_json {serde_us:.1} µs)\n"
    );
    println!(
        "| endpoint | load | requests/s | p50 ms | p99 ms | p99.9 ms | max ms | errors | server RSS MiB | server CPU µs/req | client CPU µs/req | log lines/req |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let s = &r.s;
        println!(
            "| {} | {}{} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.1} | {:.0} | {:.0} | {:.2} |",
            r.endpoint,
            r.mode,
            if s.late > 0 {
                format!(" ({} sent late)", s.late)
            } else {
                String::new()
            },
            s.rps(),
            s.pct_ms(0.50),
            s.pct_ms(0.99),
            s.pct_ms(0.999),
            s.pct_ms(1.0),
            s.errors,
            s.rss_max_kib as f64 / 1024.0,
            s.per_req_us(s.server_cpu),
            s.per_req_us(s.client_cpu),
            r.log_lines as f64 / s.total.max(1) as f64,
        );
    }
    println!(
        "\nserver peak RSS (VmHWM) over the whole run: {:.1} MiB",
        hwm as f64 / 1024.0
    );
    println!(
        "load average (1, 5, 15 min): {load0} before, {} at the end",
        support::loadavg()
    );
    for r in &rows {
        assert_eq!(r.s.errors, 0, "{} {}: failed requests", r.endpoint, r.mode);
        assert!(
            !r.s.lat_us.is_empty(),
            "{} {}: no request",
            r.endpoint,
            r.mode
        );
    }
    drop(srv);
}
