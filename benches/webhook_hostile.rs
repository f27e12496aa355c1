//! Hostile-load benchmark for `raygate serve` (harness = false; issue #14, defect 1).
//!
//! Starts the real binary on 127.0.0.1 (real TLS, HTTP/2; a fresh server per level) and, for
//! each in-flight level (`--in-flight 16,64`), keeps that many of the largest schema-valid
//! reviews under the API server's 3 MiB limit in flight at once (`support::hostile`: 1,048,228
//! empty container `args`, 108,526 `env` entries, 23,036 worker groups, 23,036 invalid worker
//! groups, in turn) on `--connections` HTTP/2 connections, while a closed loop sends normal
//! reviews (the ~1 KB base cluster) alongside at `--normal` in flight, on a connection of
//! their own or (`--share`) on the first hostile connection, as the API server multiplexes
//! every review on its connections. Reports the server's peak RSS (VmHWM, and VmRSS sampled
//! every 20 ms), how the hostile requests were answered (200 / 429 / other statuses / failed),
//! and the normal reviews' throughput and p50/p99.
//!
//! ```sh
//! cargo bench --bench webhook_hostile -- --duration 10 --in-flight 16,64 --normal 4
//! cargo bench --bench webhook_hostile -- --duration 10 --in-flight 16,64 --normal 4 --share
//! ```
//! Options: `--duration SECS` (per level, default 10), `--in-flight LIST` (16,64),
//! `--normal N` (4), `--connections N` (hostile connections, 4), `--share`, `--server-arg ARG` (repeatable:
//! passed to `raygate serve`, e.g. `--server-arg --large-concurrency=2`). `RAYGATE_BENCH_BIN`
//! runs another copy of the binary. Without `--bench` it only does a 1 s smoke run at 4 in
//! flight.

mod support;

use bytes::Bytes;
use raygate::webhook::client::{self, Proto};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::hostile::{self, MAX_BODY, SHAPES};
use support::{H2, RaygateServer};

const VALIDATE: &str = "/validate-ray-io-v1-raycluster";

struct Opts {
    duration: f64,
    in_flight: Vec<usize>,
    normal: usize,
    connections: usize,
    /// Send the normal reviews on the first hostile connection (as the API server multiplexes
    /// every review on its connections) instead of a connection of their own.
    share: bool,
    server_args: Vec<String>,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        duration: 10.0,
        in_flight: vec![16, 64],
        normal: 4,
        connections: 4,
        share: false,
        server_args: Vec::new(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let mut bench = false;
    while i < args.len() {
        let val = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--duration" => o.duration = val.parse().expect("--duration SECS"),
            "--in-flight" => {
                o.in_flight = val
                    .split(',')
                    .map(|v| v.parse().expect("--in-flight N,N"))
                    .collect()
            }
            "--normal" => o.normal = val.parse().expect("--normal N"),
            "--connections" => o.connections = val.parse().expect("--connections N"),
            "--server-arg" => o.server_args.push(val),
            "--share" => {
                o.share = true;
                i += 1;
                continue;
            }
            "--bench" => {
                bench = true;
                i += 1;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    if !bench {
        o.duration = 1.0;
        o.in_flight = vec![4];
    }
    o.normal = o.normal.max(1);
    o.connections = o.connections.max(1);
    o
}

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    busy: AtomicU64,
    /// Other statuses, by status.
    other: std::sync::Mutex<std::collections::BTreeMap<u16, u64>>,
    failed: AtomicU64,
}

struct Row {
    in_flight: usize,
    hostile_ok: u64,
    hostile_busy: u64,
    /// `status×count` of the other answers.
    hostile_other: String,
    hostile_failed: u64,
    normal_rps: f64,
    normal_p50: f64,
    normal_p99: f64,
    normal_errors: u64,
    rss_peak_mib: f64,
    idle_rss_mib: f64,
}

async fn connect_n(srv: &RaygateServer, n: usize) -> Vec<H2> {
    let cfg = client::tls_config(&srv.ca_pem, Proto::H2).expect("tls config");
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(
            support::connect(srv.srv.addr, cfg.clone(), VALIDATE)
                .await
                .expect("connect"),
        );
    }
    out
}

async fn level(
    srv: &RaygateServer,
    opts: &Opts,
    in_flight: usize,
    hostile: Arc<[Bytes]>,
    normal: Bytes,
) -> Row {
    let pid = srv.srv.pid();
    let idle = support::proc_status_kib(pid, "VmRSS:");
    let hconns = connect_n(srv, opts.connections).await;
    let nconns = if opts.share {
        vec![hconns[0].clone()]
    } else {
        connect_n(srv, 1).await
    };
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let mut tasks = Vec::new();
    for i in 0..in_flight {
        let mut c = hconns[i % hconns.len()].clone();
        let (stop, counts, bodies) = (stop.clone(), counts.clone(), hostile.clone());
        tasks.push(tokio::spawn(async move {
            let mut k = i;
            while !stop.load(Ordering::Relaxed) {
                let b = bodies[k % bodies.len()].clone();
                k += 1;
                match c.post(b).await {
                    Ok((200, _)) => counts.ok.fetch_add(1, Ordering::Relaxed),
                    Ok((429, _)) => {
                        // told to back off: do so briefly, as a client would
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        counts.busy.fetch_add(1, Ordering::Relaxed)
                    }
                    Ok((s, _)) => {
                        *counts
                            .other
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .entry(s)
                            .or_default() += 1;
                        0
                    }
                    Err(_) => counts.failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    let lat = Arc::new(std::sync::Mutex::new(Vec::<u32>::new()));
    let nerr = Arc::new(AtomicU64::new(0));
    for _ in 0..opts.normal {
        let mut c = nconns[0].clone();
        let (stop, lat, nerr, body) = (stop.clone(), lat.clone(), nerr.clone(), normal.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                match c.post(body.clone()).await {
                    Ok((200, _)) => lat
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(t.elapsed().as_micros().min(u32::MAX as u128) as u32),
                    _ => {
                        nerr.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let start = Instant::now();
    let mut rss_peak = 0u64;
    while start.elapsed().as_secs_f64() < opts.duration {
        rss_peak = rss_peak.max(support::proc_status_kib(pid, "VmRSS:"));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let secs = start.elapsed().as_secs_f64();
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(15), t).await;
    }
    let hwm = support::proc_status_kib(pid, "VmHWM:");
    let mut l = lat.lock().unwrap_or_else(|p| p.into_inner()).clone();
    l.sort_unstable();
    let pct = |p: f64| {
        if l.is_empty() {
            f64::NAN
        } else {
            f64::from(l[((l.len() - 1) as f64 * p).round() as usize]) / 1000.0
        }
    };
    Row {
        in_flight,
        hostile_ok: counts.ok.load(Ordering::SeqCst),
        hostile_busy: counts.busy.load(Ordering::SeqCst),
        hostile_other: {
            let other = counts.other.lock().unwrap_or_else(|p| p.into_inner());
            let v: Vec<String> = other.iter().map(|(s, n)| format!("{s}×{n}")).collect();
            if v.is_empty() {
                "0".into()
            } else {
                v.join(" ")
            }
        },
        hostile_failed: counts.failed.load(Ordering::SeqCst),
        normal_rps: l.len() as f64 / secs,
        normal_p50: pct(0.5),
        normal_p99: pct(0.99),
        normal_errors: nerr.load(Ordering::SeqCst),
        rss_peak_mib: rss_peak.max(hwm) as f64 / 1024.0,
        idle_rss_mib: idle as f64 / 1024.0,
    }
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let opts = parse_opts();
    let mut sizes = Vec::new();
    let hostile: Vec<Bytes> = SHAPES
        .iter()
        .map(|&s| {
            let (b, n) = hostile::review_bytes(s, MAX_BODY);
            sizes.push(format!("{} ({n}, {} bytes)", s.name(), b.len()));
            Bytes::from(b)
        })
        .collect();
    let normal = Bytes::from(
        serde_json::to_vec(&hostile::review_of(
            &hostile::base_cluster("normal"),
            "normal",
        ))
        .expect("json"),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let hostile: Arc<[Bytes]> = Arc::from(hostile);
    let rows: Vec<Row> = rt.block_on(async {
        let mut rows = Vec::new();
        for &n in &opts.in_flight {
            // a fresh server per level: its peak RSS is this level's
            let srv = support::start_raygate(&opts.server_args, "warn");
            rows.push(level(&srv, &opts, n, hostile.clone(), normal.clone()).await);
        }
        rows
    });
    println!(
        "\nraygate serve under hostile load: HTTP/2 over TLS 1.3 on 127.0.0.1, {} s per level, \
         hostile reviews in turn: {}; normal review {} bytes at {} in flight on {}; \
         server args {:?}; a fresh server per level; {} CPUs; load average {}\n",
        opts.duration,
        sizes.join(", "),
        normal.len(),
        opts.normal,
        if opts.share {
            "the first hostile connection"
        } else {
            "its own connection"
        },
        opts.server_args,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        support::loadavg(),
    );
    println!(
        "| hostile in flight | hostile 200 | hostile 429 | hostile other / failed | normal req/s | normal p50 ms | normal p99 ms | normal errors | server idle RSS MiB | server peak RSS MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} / {} | {:.0} | {:.2} | {:.2} | {} | {:.1} | {:.1} |",
            r.in_flight,
            r.hostile_ok,
            r.hostile_busy,
            r.hostile_other,
            r.hostile_failed,
            r.normal_rps,
            r.normal_p50,
            r.normal_p99,
            r.normal_errors,
            r.idle_rss_mib,
            r.rss_peak_mib
        );
    }
}
