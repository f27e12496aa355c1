//! Shared by the HTTP/2 load benchmarks (`webhook_load`, `kuberay_h2h`): a lean HTTP/2 + TLS
//! client, the closed- and open-loop load drivers, AdmissionReview bodies, server process
//! guards and `/proc` readers.
//!
//! The client speaks `h2` directly (no hyper dispatch task, channel hop or per-request body
//! task), sends pre-serialised bodies as `Bytes` (a clone is a reference count) and shares the
//! 2 cores with the server, so it is kept as cheap as it can be: its CPU per request is reported
//! next to the server's.

#![allow(dead_code)] // each bench uses a subset

pub mod hostile;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Uri};
use rustls::pki_types::ServerName;
use serde_json::Value;
use std::io::Read;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// One HTTP/2 connection over TLS; clones share the connection (requests are multiplexed).
#[derive(Clone)]
pub struct H2 {
    send: h2::client::SendRequest<Bytes>,
    /// Full request URI (`https://localhost:PORT/path`), built once.
    uri: Uri,
    /// ALPN protocol the server chose.
    pub alpn: Option<Vec<u8>>,
}

const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Connects to `addr` (SNI `localhost`) trusting `cfg`'s roots and performs the HTTP/2
/// handshake; `path` is where every request of this handle goes.
pub async fn connect(
    addr: SocketAddr,
    cfg: Arc<rustls::ClientConfig>,
    path: &str,
) -> Result<H2, String> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    tcp.set_nodelay(true)
        .map_err(|e| format!("nodelay {addr}: {e}"))?;
    let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let (send, conn) = h2::client::Builder::new()
        // the server's responses are small; a large window never stalls them
        .initial_window_size(1 << 20)
        .initial_connection_window_size(1 << 22)
        .handshake::<_, Bytes>(tls)
        .await
        .map_err(|e| format!("HTTP/2 handshake with {addr}: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let uri: Uri = format!("https://localhost:{}{path}", addr.port())
        .parse()
        .map_err(|e| format!("uri: {e}"))?;
    Ok(H2 { send, uri, alpn })
}

impl H2 {
    /// POSTs `body` as JSON; returns the status and the response body.
    pub async fn post(&mut self, body: Bytes) -> Result<(u16, Bytes), h2::Error> {
        let mut req = Request::new(());
        *req.method_mut() = Method::POST;
        *req.uri_mut() = self.uri.clone();
        let h = req.headers_mut();
        h.insert(CONTENT_TYPE, JSON);
        h.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        std::future::poll_fn(|cx| self.send.poll_ready(cx)).await?;
        let (resp, mut stream) = self.send.send_request(req, false)?;
        stream.send_data(body, true)?;
        let resp = resp.await?;
        let status = resp.status().as_u16();
        let mut recv = resp.into_body();
        let mut out: Option<Bytes> = None;
        let mut more: Vec<u8> = Vec::new();
        while let Some(chunk) = recv.data().await {
            let chunk = chunk?;
            let _ = recv.flow_control().release_capacity(chunk.len());
            match &out {
                None => out = Some(chunk),
                Some(first) => {
                    if more.is_empty() {
                        more.extend_from_slice(first);
                    }
                    more.extend_from_slice(&chunk);
                }
            }
        }
        let body = if more.is_empty() {
            out.unwrap_or_default()
        } else {
            Bytes::from(more)
        };
        Ok((status, body))
    }
}

/// How to load the server.
#[derive(Clone, Debug)]
pub struct Load {
    /// Requests in flight at most (closed loop: always).
    pub concurrency: usize,
    pub warmup: f64,
    pub duration: f64,
    /// Open loop: scheduled arrivals per second (`None`: closed loop).
    pub rate: Option<f64>,
}

/// What one load run measured.
pub struct Sample {
    /// Latencies of the successful requests, µs, sorted.
    pub lat_us: Vec<u32>,
    pub errors: u64,
    /// Measured window, seconds.
    pub secs: f64,
    /// Peak VmRSS of the server during the window, KiB.
    pub rss_max_kib: u64,
    /// CPU seconds (user + system) of the server and of this process in the window.
    pub server_cpu: f64,
    pub client_cpu: f64,
    /// Open loop: requests whose scheduled time passed while all `concurrency` slots were busy.
    pub late: u64,
    /// Requests answered over the whole run (warm-up included).
    pub total: u64,
}

impl Sample {
    pub fn rps(&self) -> f64 {
        self.lat_us.len() as f64 / self.secs
    }

    /// Percentile `p` (0..=1) of the latencies, ms.
    pub fn pct_ms(&self, p: f64) -> f64 {
        if self.lat_us.is_empty() {
            return f64::NAN;
        }
        let idx = ((self.lat_us.len() as f64 - 1.0) * p).round() as usize;
        f64::from(self.lat_us[idx.min(self.lat_us.len() - 1)]) / 1000.0
    }

    /// CPU µs per successful request.
    pub fn per_req_us(&self, cpu_secs: f64) -> f64 {
        cpu_secs * 1e6 / (self.lat_us.len().max(1) as f64)
    }
}

/// Drives `conns` (round robin) with `bodies` (round robin) for `warmup + duration` seconds.
///
/// Closed loop (`rate: None`): `concurrency` loops, each sending its next request when the
/// previous answer arrived; latency = request written → response body read.
///
/// Open loop (`rate: Some(r)`): request `i` is due at `start + i / r`; `concurrency` senders
/// take the next due request, so at most that many are in flight. Latency is measured from the
/// due time when the request had to wait for a free sender (the wait counts: no coordinated
/// omission), else from when it was sent (the timer's own wake-up lag, up to 1 ms, is the
/// bench's, not the server's).
pub async fn run(conns: &[H2], bodies: Arc<[Bytes]>, server_pid: u32, load: &Load) -> Sample {
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let late = Arc::new(AtomicU64::new(0));
    let ticket = Arc::new(AtomicU64::new(0));
    let total = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let per_task = (load.rate.unwrap_or(20_000.0) * (load.warmup + load.duration)
        / load.concurrency as f64) as usize
        + 1024;
    let mut tasks = Vec::new();
    for i in 0..load.concurrency {
        let mut c = conns[i % conns.len()].clone();
        let (measuring, stop, errors, late, ticket, total, bodies) = (
            measuring.clone(),
            stop.clone(),
            errors.clone(),
            late.clone(),
            ticket.clone(),
            total.clone(),
            bodies.clone(),
        );
        let rate = load.rate;
        tasks.push(tokio::spawn(async move {
            let mut lat: Vec<u32> = Vec::with_capacity(per_task.min(1 << 20));
            let mut k = i;
            while !stop.load(Ordering::Relaxed) {
                let t0 = match rate {
                    None => Instant::now(),
                    Some(r) => {
                        let n = ticket.fetch_add(1, Ordering::Relaxed);
                        let due = start + Duration::from_secs_f64(n as f64 / r);
                        let now = Instant::now();
                        if due > now {
                            tokio::time::sleep_until(due.into()).await;
                            Instant::now()
                        } else {
                            if measuring.load(Ordering::Relaxed) {
                                late.fetch_add(1, Ordering::Relaxed);
                            }
                            due
                        }
                    }
                };
                let body = bodies[k % bodies.len()].clone();
                k += 1;
                let ok = matches!(c.post(body).await, Ok((200, _)));
                let us = t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                total.fetch_add(1, Ordering::Relaxed);
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
    tokio::time::sleep(Duration::from_secs_f64(load.warmup)).await;
    measuring.store(true, Ordering::SeqCst);
    let (s0, c0) = (cpu_secs(server_pid), self_cpu_secs());
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(load.duration);
    let mut rss_max = 0;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(100)).await;
        rss_max = rss_max.max(proc_status_kib(server_pid, "VmRSS:"));
    }
    measuring.store(false, Ordering::SeqCst);
    let secs = t0.elapsed().as_secs_f64();
    let (s1, c1) = (cpu_secs(server_pid), self_cpu_secs());
    stop.store(true, Ordering::SeqCst);
    let mut lat_us = Vec::new();
    for t in tasks {
        lat_us.extend(t.await.expect("load task"));
    }
    lat_us.sort_unstable();
    Sample {
        lat_us,
        errors: errors.load(Ordering::SeqCst),
        secs,
        rss_max_kib: rss_max,
        server_cpu: s1 - s0,
        client_cpu: c1 - c0,
        late: late.load(Ordering::SeqCst),
        total: total.load(Ordering::SeqCst),
    }
}

/// A CREATE AdmissionReview for `/validate` or `/mutate` carrying `obj`.
pub fn review(obj: &Value, uid: &str, namespace: &str, user: Value, options: Value) -> Value {
    hostile::create_review(obj, uid, namespace, user, options, false)
}

/// The documents of one KubeRay sample file (`../shared/kuberay/samples/NAME`), YAML 1.1 octals
/// read as kubectl reads them.
pub fn sample_docs(file: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("read sample {}: {e}", file.display()));
    let opts = serde_saphyr::options! { legacy_octal_numbers: true };
    serde_saphyr::from_multiple_with_options(&text, opts)
        .unwrap_or_else(|e| panic!("sample YAML {}: {e}", file.display()))
}

/// The KubeRay samples directory.
pub fn samples_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/kuberay/samples")
}

/// A `raygate serve` child on 127.0.0.1 (ephemeral ports) with a generated loopback
/// certificate, started by [`start_raygate`].
pub struct RaygateServer {
    pub srv: ServerChild,
    /// The CA the client trusts.
    pub ca_pem: String,
    /// Log lines the server wrote (stderr), counted by the drain thread.
    pub log_lines: Arc<AtomicU64>,
    _dir: tempfile::TempDir,
}

/// Starts `raygate serve` (`RAYGATE_BENCH_BIN` or this build's binary) with `extra` arguments
/// and `RUST_LOG={log},raygate::cli::serve=info`, JSON logs on a 1 MiB stderr pipe that a
/// thread drains and counts; returns once the server logged its bound address (30 s at most).
pub fn start_raygate(extra: &[String], log: &str) -> RaygateServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key, ca_pem) = loopback_cert(dir.path());
    // RAYGATE_BENCH_BIN: a copy of the binary, for shared target dirs where another checkout
    // may overwrite target/release/raygate.
    let bin = std::env::var("RAYGATE_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_raygate").to_string());
    let mut child = Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--admin-listen", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .args(["--log-format", "json"])
        .args(extra)
        // the bench reads the bound address from the "webhook listening" line
        .env("RUST_LOG", format!("{log},raygate::cli::serve=info"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn raygate serve");
    let mut stderr = child.stderr.take().expect("stderr");
    // A 1 MiB pipe (as a container runtime's log pipe): the server never blocks on it while
    // the drain below reads it in large chunks every 10 ms (not once per line).
    // SAFETY: fcntl on a pipe fd we own; failure only leaves the default size.
    unsafe {
        libc::fcntl(stderr.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20);
    }
    let (tx, rx) = std::sync::mpsc::channel::<SocketAddr>();
    let log_lines = Arc::new(AtomicU64::new(0));
    let lines = log_lines.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 20];
        let mut head = Vec::new();
        let mut sent = false;
        loop {
            let n = match stderr.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            lines.fetch_add(
                buf[..n].iter().filter(|b| **b == b'\n').count() as u64,
                Ordering::Relaxed,
            );
            if !sent {
                head.extend_from_slice(&buf[..n]);
                let addr = String::from_utf8_lossy(&head)
                    .lines()
                    .filter(|l| l.contains("webhook listening"))
                    .find_map(|l| {
                        serde_json::from_str::<Value>(l)
                            .ok()
                            .and_then(|v| v["addr"].as_str().and_then(|a| a.parse().ok()))
                    });
                if let Some(a) = addr {
                    let _ = tx.send(a);
                    sent = true;
                    head = Vec::new();
                }
            } else {
                std::thread::sleep(Duration::from_millis(10));
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
    RaygateServer {
        srv: ServerChild {
            name: "raygate",
            child,
            addr,
        },
        ca_pem,
        log_lines,
        _dir: dir,
    }
}

/// A server child process, stopped (SIGTERM, then SIGKILL after 10 s) when dropped.
pub struct ServerChild {
    pub name: &'static str,
    pub child: Child,
    pub addr: SocketAddr,
}

impl ServerChild {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: kill(2) on our own child's pid, which is not reaped yet.
            unsafe {
                libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
            }
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

fn clk_tck() -> f64 {
    // SAFETY: sysconf reads a constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

fn stat_cpu_secs(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // fields after the ")" of the command name; utime and stime are fields 14 and 15
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / clk_tck()
}

/// utime + stime of process `pid` (all its threads), seconds.
pub fn cpu_secs(pid: u32) -> f64 {
    stat_cpu_secs(&format!("/proc/{pid}/stat"))
}

/// utime + stime of this process, seconds.
pub fn self_cpu_secs() -> f64 {
    stat_cpu_secs("/proc/self/stat")
}

/// A `/proc/PID/status` value in KiB (`VmRSS:`, `VmHWM:`); 0 when unreadable.
pub fn proc_status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The 1-minute load average.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A serving certificate for `localhost`/127.0.0.1 written as `tls.crt`/`tls.key` into `dir`:
/// (certificate path, key path, CA PEM for the client).
pub fn loopback_cert(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let g = raygate::certs::generate(
        "raygate-webhook",
        &["localhost".to_string()],
        &["127.0.0.1".parse().expect("ip")],
        1,
        1,
    )
    .expect("certs");
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert, &g.cert_pem).expect("write");
    std::fs::write(&key, &g.key_pem).expect("write");
    (cert, key, g.ca_cert_pem)
}
