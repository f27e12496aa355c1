//! Head-to-head load benchmark: `raygate serve` vs KubeRay's own RayCluster validating webhook
//! (`tools/kuberay serve`: ray-operator's `RayClusterWebhook` on controller-runtime's webhook
//! server, as the operator serves it; the ray-operator version is printed). Same certificate, same load generator, same bodies, same
//! concurrency, same machine, one run; the servers take turns (raygate, KubeRay, raygate, KubeRay).
//!
//! ```sh
//! bash scripts/kuberay-h2h.sh            # builds tools/kuberay (cached) and runs this + the diff
//! RAYGATE_KUBERAY_BIN=$(bash scripts/kuberay-bin.sh) cargo bench --bench kuberay_h2h -- \
//!     --duration 10 --concurrency 64 --connections 4 --rounds 2
//! ```
//! Bodies: every RayCluster sample as a CREATE AdmissionReview for
//! `/validate-ray-io-v1-raycluster`, plus each sample with a duplicated worker-group name (refused
//! by both). Client: `support` (the same lean HTTP/2 client and closed loop as `webhook_load`):
//! HTTP/2 over TLS 1.3 (both servers negotiate h2), `connections` connections shared by
//! `concurrency` request loops. Latency is client side (request written → response body read).
//! RSS is the server's peak VmRSS sampled every 100 ms while loaded.
//! Without `--bench` (as under `cargo test --all-targets`) it does nothing: not a pass/fail test.

mod support;

use raygate::webhook::client;
use serde_json::{Value, json};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{Load, ServerChild};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PATH: &str = "/validate-ray-io-v1-raycluster";

struct Opts {
    duration: f64,
    warmup: f64,
    concurrency: usize,
    connections: usize,
    rounds: usize,
}

fn parse_opts(args: &[String]) -> Opts {
    let mut o = Opts {
        duration: 10.0,
        warmup: 2.0,
        concurrency: 64,
        connections: 4,
        rounds: 2,
    };
    let mut i = 0;
    while i < args.len() {
        let val = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--duration" => o.duration = val.parse().expect("--duration SECS"),
            "--warmup" => o.warmup = val.parse().expect("--warmup SECS"),
            "--concurrency" => o.concurrency = val.parse().expect("--concurrency N"),
            "--connections" => o.connections = val.parse().expect("--connections N"),
            "--rounds" => o.rounds = val.parse().expect("--rounds N"),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o.connections = o.connections.clamp(1, o.concurrency.max(1));
    o
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn samples() -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(support::samples_dir())
        .expect("samples dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        // integral numbers as integers (Go's int32 fields refuse `511.0`)
        let docs = support::sample_docs(&f);
        out.extend(docs.iter().filter(|d| d["kind"] == "RayCluster").map(ints));
    }
    out
}

fn ints(v: &Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => json!(f as i64),
            _ => v.clone(),
        },
        Value::Array(a) => Value::Array(a.iter().map(ints).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), ints(x))).collect()),
        _ => v.clone(),
    }
}

fn review(obj: &Value, uid: usize) -> Value {
    let mut obj = obj.clone();
    obj["metadata"]["namespace"] = json!("default");
    support::review(
        &obj,
        &format!("00000000-0000-0000-0000-{uid:012}"),
        "default",
        json!({"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]}),
        json!({"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}),
    )
}

/// Valid samples plus, for each, a variant with a duplicated worker-group name.
fn bodies() -> Vec<bytes::Bytes> {
    let mut out = Vec::new();
    for (i, s) in samples().iter().enumerate() {
        out.push(bytes::Bytes::from(
            serde_json::to_vec(&review(s, 2 * i)).expect("json"),
        ));
        if let Some(groups) = s["spec"]["workerGroupSpecs"].as_array()
            && let Some(g) = groups.first()
        {
            let mut bad = s.clone();
            let mut gs = groups.clone();
            gs.push(g.clone());
            bad["spec"]["workerGroupSpecs"] = Value::Array(gs);
            out.push(bytes::Bytes::from(
                serde_json::to_vec(&review(&bad, 2 * i + 1)).expect("json"),
            ));
        }
    }
    out
}

async fn wait_tls(addr: SocketAddr, cfg: Arc<rustls::ClientConfig>, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if support::connect(addr, cfg.clone(), PATH).await.is_ok() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not accept TLS within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct RunResult {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    peak_rss_mib: f64,
    errors: u64,
    requests: usize,
}

async fn run(
    srv: &ServerChild,
    cfg: Arc<rustls::ClientConfig>,
    bodies: Arc<[bytes::Bytes]>,
    o: &Opts,
) -> RunResult {
    let mut conns = Vec::new();
    for _ in 0..o.connections {
        let c = support::connect(srv.addr, cfg.clone(), PATH)
            .await
            .expect("connect");
        assert_eq!(
            c.alpn.as_deref(),
            Some(&b"h2"[..]),
            "{} did not negotiate h2",
            srv.name
        );
        conns.push(c);
    }
    let load = Load {
        concurrency: o.concurrency,
        warmup: o.warmup,
        duration: o.duration,
        rate: None,
    };
    let s = support::run(&conns, bodies, srv.pid(), &load).await;
    RunResult {
        rps: s.rps(),
        p50_ms: s.pct_ms(0.50),
        p99_ms: s.pct_ms(0.99),
        peak_rss_mib: s.rss_max_kib as f64 / 1024.0,
        errors: s.errors,
        requests: s.lat_us.len(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!(
            "kuberay_h2h: benchmark only (cargo bench --bench kuberay_h2h / scripts/kuberay-h2h.sh)"
        );
        return;
    }
    let o = parse_opts(&args);
    let kuberay_bin = std::env::var("RAYGATE_KUBERAY_BIN").expect(
        "RAYGATE_KUBERAY_BIN: path of tools/kuberay's binary (scripts/kuberay-bin.sh builds it)",
    );
    let version = Command::new(&kuberay_bin)
        .arg("version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .expect("kuberay version");
    println!("KubeRay: ray-operator {version} (tools/kuberay serve)");
    let _ = rustls::crypto::ring::default_provider().install_default();

    // One certificate for both servers.
    let dir = std::env::temp_dir().join(format!("raygate-h2h-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let pki = {
        use rcgen::{
            BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
        };
        let ca_key = KeyPair::generate().expect("key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let ca_cert = ca.self_signed(&ca_key).expect("ca cert");
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(vec!["localhost".to_string()]).expect("leaf");
        p.subject_alt_names
            .push(SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
        let cert = p.signed_by(&key, &issuer).expect("leaf cert");
        (ca_cert.pem(), cert.pem(), key.serialize_pem())
    };
    std::fs::write(dir.join("tls.crt"), &pki.1).expect("write cert");
    std::fs::write(dir.join("tls.key"), &pki.2).expect("write key");

    let (rp, ap, kp) = (free_port(), free_port(), free_port());
    let raygate = ServerChild {
        name: "raygate",
        child: Command::new(env!("CARGO_BIN_EXE_raygate"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{rp}"),
                "--admin-listen",
                &format!("127.0.0.1:{ap}"),
            ])
            .arg("--tls-cert")
            .arg(dir.join("tls.crt"))
            .arg("--tls-key")
            .arg(dir.join("tls.key"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start raygate serve"),
        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, rp)),
    };
    let kuberay = ServerChild {
        name: "kuberay",
        child: Command::new(&kuberay_bin)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{kp}"),
                "--cert-dir",
            ])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start kuberay serve"),
        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, kp)),
    };

    // one client thread (as webhook_load): the cheapest client, the most CPU left to the servers
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cfg = client::tls_config(&pki.0, client::Proto::H2).expect("tls config");
    let bodies: Arc<[bytes::Bytes]> = Arc::from(bodies());
    let avg_kb =
        bodies.iter().map(|b| b.len()).sum::<usize>() as f64 / bodies.len() as f64 / 1024.0;
    rt.block_on(async {
        wait_tls(raygate.addr, cfg.clone(), "raygate").await;
        wait_tls(kuberay.addr, cfg.clone(), "kuberay").await;
        // Verdicts on every body, for the record.
        for srv in [&raygate, &kuberay] {
            let mut c = support::connect(srv.addr, cfg.clone(), PATH).await.expect("connect");
            let (mut allowed, mut denied) = (0, 0);
            for b in bodies.iter() {
                let (st, body) = c.post(b.clone()).await.expect("post");
                assert_eq!(st, 200, "{}: HTTP {st}", srv.name);
                let v: Value = serde_json::from_slice(&body).expect("review");
                if v["response"]["allowed"] == true {
                    allowed += 1;
                } else {
                    denied += 1;
                }
            }
            println!("{}: {allowed} allowed, {denied} denied of {} bodies (avg {avg_kb:.1} KiB)", srv.name, bodies.len());
        }
        println!(
            "\n| server | round | req/s | p50 ms | p99 ms | peak RSS MiB | errors |\n|---|---|---|---|---|---|---|"
        );
        let mut best: Vec<(&str, RunResult)> = Vec::new();
        for round in 1..=o.rounds {
            for srv in [&raygate, &kuberay] {
                let r = run(srv, cfg.clone(), bodies.clone(), &o).await;
                println!(
                    "| {} | {round} | {:.0} | {:.2} | {:.2} | {:.1} | {} |",
                    srv.name, r.rps, r.p50_ms, r.p99_ms, r.peak_rss_mib, r.errors
                );
                assert!(r.requests > 0, "{}: no successful request", srv.name);
                best.push((srv.name, r));
            }
        }
        let med = |name: &str, f: fn(&RunResult) -> f64| {
            let mut v: Vec<f64> = best.iter().filter(|(n, _)| *n == name).map(|(_, r)| f(r)).collect();
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        };
        let (rr, kr) = (med("raygate", |r| r.rps), med("kuberay", |r| r.rps));
        let (rp99, kp99) = (med("raygate", |r| r.p99_ms), med("kuberay", |r| r.p99_ms));
        println!(
            "\nraygate/KubeRay throughput: {:.2}x; p99 raygate {rp99:.2} ms vs KubeRay {kp99:.2} ms; bar (>= 2x at <= p99): {}",
            rr / kr,
            if rr >= 2.0 * kr && rp99 <= kp99 { "MET" } else { "NOT MET" }
        );
        println!(
            "peak RSS: raygate {:.1} MiB (VmHWM {:.1}), KubeRay {:.1} MiB (VmHWM {:.1})",
            med("raygate", |r| r.peak_rss_mib),
            support::proc_status_kib(raygate.pid(), "VmHWM:") as f64 / 1024.0,
            med("kuberay", |r| r.peak_rss_mib),
            support::proc_status_kib(kuberay.pid(), "VmHWM:") as f64 / 1024.0
        );
    });
    drop(raygate);
    drop(kuberay);
    let _ = std::fs::remove_dir_all(&dir);
}
