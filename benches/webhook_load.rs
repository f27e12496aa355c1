//! Load benchmark for `raygate serve` (harness = false).
//!
//! Starts the real binary on 127.0.0.1 with a generated certificate, then drives it over
//! HTTP/2 + TLS from an in-process client at a fixed concurrency with a ~10 KB RayCluster
//! AdmissionReview, once for /validate and once for /mutate. Reports requests/s, latency
//! percentiles (client side, request written → response body read) and the server's RSS.
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target cargo bench --bench webhook_load -- \
//!     --duration 10 --concurrency 64 --connections 4
//! ```
//! Set `RAYGATE_BENCH_BIN` to run another copy of the binary.
//! Options: `--duration SECS` (per endpoint, default 10), `--warmup SECS` (2),
//! `--concurrency N` (64), `--connections N` (4), `--endpoint validate|mutate|both`,
//! `--log LEVEL` (server RUST_LOG, default `info`: one JSON log line per request, read and discarded by the bench).
//! Without `--bench` (as under `cargo test --all-targets`) it only does a 0.5 s smoke run.

use raygate::webhook::client::{self, Proto};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Opts {
    duration: f64,
    warmup: f64,
    concurrency: usize,
    connections: usize,
    endpoint: String,
    log: String,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        duration: 10.0,
        warmup: 2.0,
        concurrency: 64,
        connections: 4,
        endpoint: "both".into(),
        log: "info".into(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let val = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--duration" => o.duration = val.parse().expect("--duration"),
            "--warmup" => o.warmup = val.parse().expect("--warmup"),
            "--concurrency" => o.concurrency = val.parse().expect("--concurrency"),
            "--connections" => o.connections = val.parse().expect("--connections"),
            "--endpoint" => o.endpoint = val,
            "--log" => o.log = val,
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
    }
    o.connections = o.connections.clamp(1, o.concurrency.max(1));
    o
}

/// A realistic in-cluster RayCluster: the autoscaler sample with four worker groups, env,
/// tolerations, and the `last-applied-configuration` annotation `kubectl apply` adds.
fn big_raycluster() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/kuberay/samples/ray-cluster.autoscaler.yaml"
    );
    let text = std::fs::read_to_string(path).expect("sample");
    let opts = serde_saphyr::options! { legacy_octal_numbers: true };
    let mut obj: Value = serde_saphyr::from_multiple_with_options::<Value>(&text, opts)
        .expect("parse")
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

fn review(obj: &Value, uid: &str) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "ray.io", "version": "v1", "kind": "RayCluster"},
            "resource": {"group": "ray.io", "version": "v1", "resource": "rayclusters"},
            "requestKind": {"group": "ray.io", "version": "v1", "kind": "RayCluster"},
            "requestResource": {"group": "ray.io", "version": "v1", "resource": "rayclusters"},
            "name": obj["metadata"]["name"],
            "namespace": "ml-team",
            "operation": "CREATE",
            "userInfo": {"username": "alice@example.com", "uid": "u-1", "groups": ["system:authenticated", "ml-team"]},
            "object": obj,
            "oldObject": null,
            "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-client-side-apply"}
        }
    })
}

struct ServerProc {
    child: Child,
    addr: SocketAddr,
    ca_pem: String,
    _dir: tempfile::TempDir,
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[allow(clippy::zombie_processes)] // waited for in Drop
fn start_server(log: &str) -> ServerProc {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = raygate::certs::generate(
        "raygate-webhook",
        &["localhost".to_string()],
        &["127.0.0.1".parse().expect("ip")],
        1,
        1,
    )
    .expect("certs");
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert, &g.cert_pem).expect("write");
    std::fs::write(&key, &g.key_pem).expect("write");
    // RAYGATE_BENCH_BIN: a copy of the binary, for shared target dirs where another checkout
    // may overwrite target/release/raygate.
    let bin = std::env::var("RAYGATE_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_raygate").to_string());
    let mut child = Command::new(bin)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .args(["--log-format", "json"])
        // the bench reads the bound address from the "webhook listening" line
        .env("RUST_LOG", format!("{log},raygate::cli::serve=info"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn raygate serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel::<SocketAddr>();
    std::thread::spawn(move || {
        let mut sent = false;
        // Keep draining stderr (logs) so the server never blocks on a full pipe.
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent
                && line.contains("webhook listening")
                && let Some(a) = serde_json::from_str::<Value>(&line)
                    .ok()
                    .and_then(|v| v["addr"].as_str().and_then(|a| a.parse().ok()))
            {
                let _ = tx.send(a);
                sent = true;
            }
        }
    });
    let addr = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(a) => a,
        Err(e) => {
            // do not leave the server running
            let _ = child.kill();
            let _ = child.wait();
            panic!("server did not start: {e}");
        }
    };
    ServerProc {
        child,
        addr,
        ca_pem: g.ca_cert_pem,
        _dir: dir,
    }
}

/// utime + stime of a process, seconds.
fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // fields after the ")" of the command name; utime and stime are fields 14 and 15
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / clk_tck()
}

fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let get = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (get("VmRSS:"), get("VmHWM:"))
}

struct Result_ {
    endpoint: &'static str,
    requests: u64,
    errors: u64,
    secs: f64,
    lat_us: Vec<u32>,
    rss_kib: u64,
    server_cpu: f64,
    client_cpu: f64,
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[idx.min(sorted.len() - 1)]) / 1000.0
}

async fn run_endpoint(
    srv: &ServerProc,
    opts: &Opts,
    endpoint: &'static str,
    path: &'static str,
    body: bytes::Bytes,
) -> Result_ {
    let cfg = client::tls_config(&srv.ca_pem, Proto::H2).expect("tls config");
    let mut conns = Vec::new();
    for _ in 0..opts.connections {
        let c = client::connect(srv.addr, "localhost", cfg.clone())
            .await
            .expect("connect");
        assert_eq!(c.alpn.as_deref(), Some(&b"h2"[..]), "HTTP/2 negotiated");
        conns.push(c);
    }
    // sanity: the answer is what we expect
    {
        let mut c = conns[0].try_clone().expect("h2");
        let (s, b) = c.post(path, body.clone()).await.expect("request");
        let v: Value = serde_json::from_slice(&b).expect("json");
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["response"]["uid"], "bench", "{v}");
        eprintln!(
            "{endpoint}: allowed={} patch={} warnings={}",
            v["response"]["allowed"],
            v["response"].get("patch").is_some(),
            v["response"]["warnings"]
        );
    }
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..opts.concurrency {
        let mut c = conns[i % conns.len()].try_clone().expect("h2");
        let (measuring, stop, errors, body) = (
            measuring.clone(),
            stop.clone(),
            errors.clone(),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(200_000);
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                let ok = matches!(c.post(path, body.clone()).await, Ok((200, _)));
                let us = t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                if measuring.load(Ordering::Relaxed) {
                    if ok {
                        lat.push(us);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            lat
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(opts.warmup)).await;
    measuring.store(true, Ordering::SeqCst);
    let pid = srv.child.id().to_string();
    let (s0, c0) = (cpu_secs(&pid), cpu_secs("self"));
    let t0 = Instant::now();
    // sample RSS during the run
    let mut rss_max = 0;
    let end = t0 + Duration::from_secs_f64(opts.duration);
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(250)).await;
        rss_max = rss_max.max(rss_kib(srv.child.id()).0);
    }
    measuring.store(false, Ordering::SeqCst);
    let secs = t0.elapsed().as_secs_f64();
    let (s1, c1) = (cpu_secs(&pid), cpu_secs("self"));
    stop.store(true, Ordering::SeqCst);
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("task"));
    }
    lat.sort_unstable();
    Result_ {
        endpoint,
        requests: lat.len() as u64,
        errors: errors.load(Ordering::SeqCst),
        secs,
        lat_us: lat,
        rss_kib: rss_max,
        server_cpu: s1 - s0,
        client_cpu: c1 - c0,
    }
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let opts = parse_opts();
    let obj = big_raycluster();
    let body = bytes::Bytes::from(serde_json::to_vec(&review(&obj, "bench")).expect("json"));
    let srv = start_server(&opts.log);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut results = Vec::new();
    rt.block_on(async {
        if opts.endpoint == "both" || opts.endpoint == "validate" {
            results.push(
                run_endpoint(
                    &srv,
                    &opts,
                    "validate",
                    "/validate-ray-io-v1-raycluster",
                    body.clone(),
                )
                .await,
            );
        }
        if opts.endpoint == "both" || opts.endpoint == "mutate" {
            results.push(
                run_endpoint(
                    &srv,
                    &opts,
                    "mutate",
                    "/mutate-ray-io-v1-raycluster",
                    body.clone(),
                )
                .await,
            );
        }
    });
    let (_, hwm) = rss_kib(srv.child.id());
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!(
        "\nraygate serve load: HTTP/2 over TLS 1.3 on 127.0.0.1, {} concurrent requests on {} connections, \
         AdmissionReview body {} bytes, {} s per endpoint after {} s warm-up, {} CPUs (client and server share them), server RUST_LOG={}\n",
        opts.concurrency,
        opts.connections,
        body.len(),
        opts.duration,
        opts.warmup,
        cpus,
        opts.log
    );
    println!(
        "| endpoint | requests/s | p50 ms | p99 ms | p99.9 ms | max ms | errors | server RSS MiB | server CPU µs/req | client CPU µs/req |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in &results {
        let per = |cpu: f64| cpu * 1e6 / (r.requests.max(1) as f64);
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.1} | {:.0} | {:.0} |",
            r.endpoint,
            r.requests as f64 / r.secs,
            pct(&r.lat_us, 0.50),
            pct(&r.lat_us, 0.99),
            pct(&r.lat_us, 0.999),
            pct(&r.lat_us, 1.0),
            r.errors,
            r.rss_kib as f64 / 1024.0,
            per(r.server_cpu),
            per(r.client_cpu)
        );
    }
    println!(
        "\nserver peak RSS (VmHWM) over the whole run: {:.1} MiB",
        hwm as f64 / 1024.0
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at the end: {}", load.trim());
    drop(srv);
}
