//! Shared helpers for the webhook tests: certificates in a temp dir, an in-process server on
//! 127.0.0.1, AdmissionReview builders, the KubeRay samples, a tiny admin-port HTTP client.
#![allow(dead_code)]

use raygate::model::Kind;
use raygate::webhook::client::{self, Conn, Proto};
use raygate::webhook::{Server, ServerOptions, TlsMode};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

pub const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/kuberay/samples");

/// Every RayCluster document of every sample file, as (file, object).
pub fn samples() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(SAMPLES)
        .expect("samples dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read sample");
        let opts = serde_saphyr::options! { legacy_octal_numbers: true };
        let docs: Vec<Value> =
            serde_saphyr::from_multiple_with_options(&text, opts).expect("parse sample");
        for d in docs {
            if d.get("kind").and_then(Value::as_str) == Some("RayCluster") {
                let name = f.file_name().unwrap().to_string_lossy().to_string();
                out.push((name, d));
            }
        }
    }
    assert!(
        out.len() >= 40,
        "expected the KubeRay samples, found {}",
        out.len()
    );
    out
}

pub struct Certs {
    pub dir: tempfile::TempDir,
    pub ca_pem: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn gen_certs() -> Certs {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = raygate::certs::generate(
        "raygate-webhook",
        &["localhost".to_string()],
        &["127.0.0.1".parse().unwrap()],
        30,
        30,
    )
    .expect("generate");
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    std::fs::write(&cert, &g.cert_pem).unwrap();
    std::fs::write(&key, &g.key_pem).unwrap();
    Certs {
        dir,
        ca_pem: g.ca_cert_pem,
        cert,
        key,
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub ca_pem: String,
    pub store: std::sync::Arc<raygate::webhook::tls::CertStore>,
    pub budget: std::sync::Arc<raygate::webhook::budget::Budget>,
    stop: Option<oneshot::Sender<()>>,
    join: Option<tokio::task::JoinHandle<Result<(), raygate::webhook::server::ServeError>>>,
    _certs: Option<Certs>,
}

pub fn test_options() -> ServerOptions {
    ServerOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        ..ServerOptions::default()
    }
}

/// Starts a server with certificates from a fresh temp dir.
pub async fn start(edit: impl FnOnce(&mut ServerOptions)) -> TestServer {
    let certs = gen_certs();
    let mut opts = test_options();
    opts.tls = TlsMode::Files {
        cert: certs.cert.clone(),
        key: certs.key.clone(),
    };
    edit(&mut opts);
    let ca = certs.ca_pem.clone();
    start_with(opts, ca, Some(certs)).await
}

pub async fn start_with(opts: ServerOptions, ca_pem: String, certs: Option<Certs>) -> TestServer {
    let server = Server::bind(opts).await.expect("bind");
    let addr = server.local_addr().unwrap();
    let admin = server.admin_addr().unwrap();
    let ca_pem = server
        .ephemeral_ca_pem()
        .map(str::to_string)
        .unwrap_or(ca_pem);
    let store = server.cert_store();
    let budget = server.budget();
    let (tx, rx) = oneshot::channel::<()>();
    let join = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    TestServer {
        addr,
        admin,
        ca_pem,
        store,
        budget,
        stop: Some(tx),
        join: Some(join),
        _certs: certs,
    }
}

impl TestServer {
    pub async fn conn(&self, proto: Proto) -> Conn {
        let cfg = client::tls_config(&self.ca_pem, proto).unwrap();
        client::connect(self.addr, "localhost", cfg)
            .await
            .expect("connect")
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(j) = self.join.take() {
            tokio::time::timeout(Duration::from_secs(30), j)
                .await
                .expect("server stops")
                .expect("join")
                .expect("run ok");
        }
    }

    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        admin_get(self.admin, path).await
    }

    /// Most large requests the server held at once.
    pub fn large_peak(&self) -> usize {
        self.budget.large_peak()
    }
}

/// Minimal HTTP/1.1 GET over plain TCP.
pub async fn admin_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("admin connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("admin read timeout")
        .unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// An AdmissionReview for a RayCluster.
pub fn review(uid: &str, op: &str, obj: Option<&Value>, old: Option<&Value>) -> Value {
    review_kind(Kind::RayCluster, uid, op, obj, old)
}

/// Every RayJob, RayService and RayCronJob of KubeRay's samples
/// (`../shared/kuberay/samples-{rayjob,rayservice,raycronjob}`), as (file, kind, object).
pub fn kind_samples() -> Vec<(String, Kind, Value)> {
    let mut out = Vec::new();
    for d in ["samples-rayjob", "samples-rayservice", "samples-raycronjob"] {
        let dir = Path::new(SAMPLES).with_file_name(d);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).expect("read sample");
            for d in raygate::yaml::parse_all(&text).expect("parse sample") {
                if let Some(k) = d.value["kind"].as_str().and_then(Kind::from_name) {
                    let name = f.file_name().unwrap().to_string_lossy().to_string();
                    out.push((name, k, d.value));
                }
            }
        }
    }
    assert_eq!(
        out.len(),
        36,
        "expected the KubeRay RayJob/RayService/RayCronJob samples"
    );
    out
}

/// An AdmissionReview for an object of `kind`.
pub fn review_kind(
    kind: Kind,
    uid: &str,
    op: &str,
    obj: Option<&Value>,
    old: Option<&Value>,
) -> Value {
    let name = obj
        .or(old)
        .and_then(|o| o.pointer("/metadata/name"))
        .cloned()
        .unwrap_or(json!(""));
    let version = obj
        .or(old)
        .and_then(|o| o.get("apiVersion"))
        .and_then(Value::as_str)
        .and_then(|a| a.strip_prefix("ray.io/"))
        .unwrap_or("v1")
        .to_string();
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "ray.io", "version": version, "kind": kind.name()},
            "resource": {"group": "ray.io", "version": version, "resource": kind.plural()},
            "requestKind": {"group": "ray.io", "version": version, "kind": kind.name()},
            "requestResource": {"group": "ray.io", "version": version, "resource": kind.plural()},
            "name": name,
            "namespace": "default",
            "operation": op,
            "userInfo": {"username": "tester", "groups": ["system:authenticated"]},
            "object": obj.cloned().unwrap_or(Value::Null),
            "oldObject": old.cloned().unwrap_or(Value::Null),
            "dryRun": false,
            "options": null
        }
    })
}

pub fn conversion_review(uid: &str, desired: &str, objects: Vec<Value>) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {"uid": uid, "desiredAPIVersion": desired, "objects": objects}
    })
}

pub async fn post_json(conn: &mut Conn, path: &str, body: &Value) -> (u16, Value) {
    let bytes = bytes::Bytes::from(serde_json::to_vec(body).unwrap());
    let (status, body) = conn.post(path, bytes).await.expect("request");
    let v: Value = serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "response not JSON ({e}): {}",
            String::from_utf8_lossy(&body)
        )
    });
    (status, v)
}

/// Writes a Kubernetes-Secret-like layout: `dir/..<ts>/{tls.crt,tls.key}`, `dir/..data ->
/// ..<ts>`, `dir/tls.crt -> ..data/tls.crt`, `dir/tls.key -> ..data/tls.key`; calling it
/// again swaps `..data` atomically, as the kubelet does.
pub fn write_secret_layout(dir: &Path, version: &str, cert_pem: &str, key_pem: &str) {
    let ts = dir.join(format!("..{version}"));
    std::fs::create_dir_all(&ts).unwrap();
    std::fs::write(ts.join("tls.crt"), cert_pem).unwrap();
    std::fs::write(ts.join("tls.key"), key_pem).unwrap();
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(format!("..{version}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for f in ["tls.crt", "tls.key"] {
        let link = dir.join(f);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{f}"), &link).unwrap();
        }
    }
}

/// A `raygate serve` child process on 127.0.0.1 (ports 0), killed when dropped.
pub struct Proc {
    pub child: std::process::Child,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    _certs: Certs,
    pub ca_pem: String,
    /// stderr, line by line, after the "webhook listening" line.
    pub logs: std::sync::mpsc::Receiver<String>,
}

impl Drop for Proc {
    /// A failed assertion must not leave the server running (std never signals a reaped pid).
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The value of `key=` in a text log line (`addr=127.0.0.1:9443`).
fn text_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(&format!(" {key}="))? + key.len() + 2;
    line[at..].split(' ').next()
}

/// Starts the real binary (`--log-format FORMAT`, `text` or `json`) with a fresh certificate and
/// waits for its "webhook listening" line.
// The child is waited for by the caller or in `Drop`.
#[allow(clippy::zombie_processes)]
pub fn spawn_serve(format: &str, extra: &[&str]) -> Proc {
    spawn_serve_with(format, extra, |_| {})
}

/// [`spawn_serve`], with a last say on the command (environment, resource limits).
#[allow(clippy::zombie_processes)]
pub fn spawn_serve_with(
    format: &str,
    extra: &[&str],
    edit: impl FnOnce(&mut std::process::Command),
) -> Proc {
    use std::io::BufRead;
    use std::time::Instant;
    let certs = gen_certs();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_raygate"));
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--admin-listen", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(&certs.cert)
        .arg("--tls-key")
        .arg(&certs.key)
        .args(["--log-format", format])
        .args(extra)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    edit(&mut cmd);
    let mut child = cmd.spawn().expect("spawn raygate serve");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`{} serve` did not log 'webhook listening'; stderr:\n{}",
                env!("CARGO_BIN_EXE_raygate"),
                seen.join("\n")
            );
        };
        seen.push(line.clone());
        if !line.contains("webhook listening") {
            continue;
        }
        let addrs = match serde_json::from_str::<Value>(&line) {
            Ok(v) => v["addr"]
                .as_str()
                .zip(v["admin_addr"].as_str())
                .map(|(a, b)| (a.to_string(), b.to_string())),
            Err(_) => text_field(&line, "addr")
                .zip(text_field(&line, "admin_addr"))
                .map(|(a, b)| (a.to_string(), b.to_string())),
        };
        let Some((addr, admin)) = addrs else {
            continue;
        };
        let ca_pem = certs.ca_pem.clone();
        return Proc {
            child,
            addr: addr.parse().expect("addr"),
            admin: admin.parse().expect("admin addr"),
            _certs: certs,
            ca_pem,
            logs: rx,
        };
    }
}

/// One sample of a text exposition: name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub value: f64,
}

/// Parses the sample lines of a Prometheus/OpenMetrics text exposition (label values without
/// escaped quotes, as raygate writes them); panics on a line it cannot read.
pub fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad exposition line {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|e| panic!("bad value in {line:?}: {e}"));
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), Default::default()),
            Some((n, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("bad labels in {line:?}"));
                let labels = body
                    .split("\",")
                    .filter(|kv| !kv.is_empty())
                    .map(|kv| {
                        let (k, v) = kv
                            .split_once("=\"")
                            .unwrap_or_else(|| panic!("bad label in {line:?}"));
                        (k.to_string(), v.trim_end_matches('"').to_string())
                    })
                    .collect();
                (n.to_string(), labels)
            }
        };
        out.push(Sample {
            name,
            labels,
            value,
        });
    }
    out
}

/// The value of the one sample named `name` whose labels include `labels`.
pub fn sample_value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let hits: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert!(hits.len() <= 1, "{name} {labels:?} matches {hits:?}");
    hits.first().map(|s| s.value)
}

/// A TLS (HTTP/1.1) connection to `addr` that has sent the head of a POST to `path` announcing
/// a `content_length`-byte JSON body, and then only `first` of the body.
pub async fn partial_post(
    addr: SocketAddr,
    ca_pem: &str,
    path: &str,
    content_length: usize,
    first: &[u8],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let cfg = client::tls_config(ca_pem, Proto::H1).unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {content_length}\r\n\r\n"
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(first).await.unwrap();
    tls
}

/// [`partial_post`] of 1000 announced bytes that stalls after a few: the server's request
/// timeout must answer 408.
pub async fn stalled_post(
    addr: SocketAddr,
    ca_pem: &str,
    path: &str,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    partial_post(addr, ca_pem, path, 1000, b"{\"apiVersion\"").await
}
