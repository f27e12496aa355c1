//! A real Kubernetes control plane (etcd + kube-apiserver) for end-to-end tests.
//!
//! Include from a test file with
//! `#[path = "support/controlplane.rs"] mod controlplane;`.
//!
//! The binaries come from `scripts/envtest-bins.sh` (built from Go modules, cached outside the
//! clone), or from the directory in `RAYGATE_ENVTEST_BIN` (set by `scripts/test.sh`).
//!
//! [`shared()`] starts one control plane per test binary on first use and stops it when the
//! process exits (an `atexit` hook). [`ControlPlane::start()`] starts a private one that is
//! stopped on drop (also while unwinding from a panic). Both processes are spawned from a
//! dedicated thread that lives as long as the control plane, with `PR_SET_PDEATHSIG = SIGKILL`,
//! so killing the test process (even with SIGKILL) kills etcd and kube-apiserver too.
//!
//! Layout of the temp dir (removed on stop): `etcd/` (data), `apiserver/` (cert-dir), `ca.crt`,
//! `serving.{crt,key}`, `sa.{key,pub}`, `tokens.csv`, `kubeconfig`, `etcd.log`, `apiserver.log`.
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long etcd may take to answer `/health`.
const ETCD_DEADLINE: Duration = Duration::from_secs(60);
/// How long kube-apiserver may take to answer `/readyz` with `ok` (2 shared cores are slow).
const APISERVER_DEADLINE: Duration = Duration::from_secs(180);
/// Poll interval for both readiness checks.
const POLL: Duration = Duration::from_millis(200);
/// Grace period between SIGTERM and SIGKILL on stop.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A running etcd + kube-apiserver pair.
pub struct ControlPlane {
    dir: PathBuf,
    server: String,
    ca_pem: String,
    ca_der: Vec<u8>,
    token: String,
    kubeconfig: PathBuf,
    etcd_url: String,
    etcd_pid: u32,
    apiserver_pid: u32,
    start_duration: Duration,
    /// Sends the stop request to the keeper thread, then waits for its acknowledgement.
    stop: Mutex<Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>>,
}

static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

/// The control plane shared by all tests of this test binary, started on first use.
///
/// Panics (failing the test) with the reason and the log tails when it cannot start, including
/// when the binaries are missing.
pub fn shared() -> &'static ControlPlane {
    shared_with_args(&[])
}

/// [`shared()`] with extra kube-apiserver flags. The first call in a test binary decides the
/// flags, so every test of one binary must pass the same ones.
pub fn shared_with_args(extra: &[&str]) -> &'static ControlPlane {
    let res = SHARED.get_or_init(|| {
        let res = ControlPlane::start_with_args(extra);
        if res.is_ok() {
            // SAFETY: registering a plain `extern "C" fn` with no captured state.
            unsafe {
                libc::atexit(stop_shared_at_exit);
            }
        }
        res
    });
    match res {
        Ok(cp) => cp,
        Err(e) => panic!("control plane unavailable: {e}"),
    }
}

extern "C" fn stop_shared_at_exit() {
    if let Some(Ok(cp)) = SHARED.get() {
        cp.stop();
    }
}

/// Directory holding `kube-apiserver` and `etcd`: `$RAYGATE_ENVTEST_BIN`, or what
/// `scripts/envtest-bins.sh` prints (which builds them on first use).
pub fn bin_dir() -> Result<PathBuf, String> {
    let dir = match std::env::var_os("RAYGATE_ENVTEST_BIN") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/envtest-bins.sh");
            let out = Command::new("bash")
                .arg(script)
                .stderr(Stdio::inherit())
                .output()
                .map_err(|e| format!("cannot run {script}: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "{script} failed ({}); the e2e tests need kube-apiserver and etcd built \
                     from tools/envtest (Go >= 1.24 and the Go module proxy)",
                    out.status
                ));
            }
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        }
    };
    for b in ["kube-apiserver", "etcd"] {
        if !dir.join(b).is_file() {
            return Err(format!(
                "{} is missing (RAYGATE_ENVTEST_BIN or scripts/envtest-bins.sh); run \
                 `bash scripts/envtest-bins.sh` to build it",
                dir.join(b).display()
            ));
        }
    }
    Ok(dir)
}

impl ControlPlane {
    /// Starts a private control plane; it is stopped when the value is dropped.
    pub fn start() -> Result<ControlPlane, String> {
        Self::start_with_args(&[])
    }

    /// Like [`ControlPlane::start`], with extra kube-apiserver flags (e.g.
    /// `--feature-gates=MutatingAdmissionPolicy=true`).
    pub fn start_with_args(extra: &[&str]) -> Result<ControlPlane, String> {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let bins = bin_dir()?;
        let mut last = String::new();
        // Ports are picked by binding :0 and releasing; another process may grab one in
        // between, so a start that failed on a busy port is retried with fresh ports.
        for _attempt in 0..3 {
            match Self::start_once(&bins, &extra) {
                Ok(cp) => return Ok(cp),
                Err(StartError::PortBusy(e)) => last = e,
                Err(StartError::Other(e)) => return Err(e),
            }
        }
        Err(last)
    }

    fn start_once(bins: &Path, extra: &[String]) -> Result<ControlPlane, StartError> {
        let (res_tx, res_rx) = mpsc::channel::<Result<Launched, StartError>>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let (ack_tx, ack_rx) = mpsc::channel::<()>();
        let bins = bins.to_path_buf();
        let extra = extra.to_vec();
        // The keeper thread spawns the processes and lives until stop: PR_SET_PDEATHSIG fires
        // when the *thread* that forked the child exits, so it must not be a test thread.
        std::thread::Builder::new()
            .name("envtest-keeper".into())
            .spawn(move || match launch(&bins, &extra) {
                Ok((procs, launched)) => {
                    if res_tx.send(Ok(launched)).is_err() {
                        return; // caller gone: `procs` drops and stops everything
                    }
                    // Blocks until a stop request or until the ControlPlane is gone.
                    let _ = stop_rx.recv();
                    drop(procs);
                    let _ = ack_tx.send(());
                }
                Err(e) => {
                    let _ = res_tx.send(Err(e));
                }
            })
            .map_err(|e| StartError::Other(format!("cannot spawn keeper thread: {e}")))?;
        let l = res_rx
            .recv()
            .map_err(|_| StartError::Other("keeper thread died while starting".into()))??;
        Ok(ControlPlane {
            dir: l.dir,
            server: l.server,
            ca_pem: l.ca_pem,
            ca_der: l.ca_der,
            token: l.token,
            kubeconfig: l.kubeconfig,
            etcd_url: l.etcd_url,
            etcd_pid: l.etcd_pid,
            apiserver_pid: l.apiserver_pid,
            start_duration: l.start_duration,
            stop: Mutex::new(Some((stop_tx, ack_rx))),
        })
    }

    /// Stops kube-apiserver, then etcd, and removes the temp dir. Idempotent.
    pub fn stop(&self) {
        let taken = match self.stop.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some((tx, ack)) = taken
            && tx.send(()).is_ok()
        {
            let _ = ack.recv_timeout(STOP_GRACE * 3);
        }
    }

    /// A new client (admin, `system:masters`). Must be called inside a tokio runtime; create one
    /// per test, since a client is tied to the runtime it was created in.
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(self.config()).expect("kube client from the control plane config")
    }

    /// The client configuration (server URL, CA, bearer token).
    pub fn config(&self) -> kube::Config {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut cfg = kube::Config::new(self.server.parse().expect("server URL"));
        cfg.root_cert = Some(vec![self.ca_der.clone()]);
        cfg.auth_info = serde_json::from_value(serde_json::json!({ "token": self.token }))
            .expect("auth info with token");
        cfg.default_namespace = "default".into();
        cfg.connect_timeout = Some(Duration::from_secs(10));
        cfg.read_timeout = Some(Duration::from_secs(60));
        cfg
    }

    /// `https://127.0.0.1:<port>`.
    pub fn server(&self) -> &str {
        &self.server
    }
    /// The CA that signed the API server's serving certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }
    /// The admin bearer token.
    pub fn token(&self) -> &str {
        &self.token
    }
    /// A kubeconfig file for this control plane (admin token).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }
    /// Writes a kubeconfig for this control plane that authenticates with `token` (e.g. a
    /// ServiceAccount token from the TokenRequest API).
    pub fn write_kubeconfig(&self, token: &str, path: &Path) {
        fs::write(path, kubeconfig_yaml(&self.server, &self.ca_pem, token))
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
    /// The temp dir with certificates, logs and etcd data.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn etcd_url(&self) -> &str {
        &self.etcd_url
    }
    pub fn etcd_pid(&self) -> u32 {
        self.etcd_pid
    }
    pub fn apiserver_pid(&self) -> u32 {
        self.apiserver_pid
    }
    /// From spawning etcd to kube-apiserver's `/readyz` answering `ok`.
    pub fn start_duration(&self) -> Duration {
        self.start_duration
    }
    /// The last `n` lines of the kube-apiserver log (for failure messages).
    pub fn apiserver_log_tail(&self, n: usize) -> String {
        log_tail(&self.dir.join("apiserver.log"), n)
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

enum StartError {
    PortBusy(String),
    Other(String),
}

impl From<String> for StartError {
    fn from(s: String) -> Self {
        StartError::Other(s)
    }
}

struct Launched {
    dir: PathBuf,
    server: String,
    ca_pem: String,
    ca_der: Vec<u8>,
    token: String,
    kubeconfig: PathBuf,
    etcd_url: String,
    etcd_pid: u32,
    apiserver_pid: u32,
    start_duration: Duration,
}

/// Owns the child processes and the temp dir; dropping it stops both and removes the dir.
struct Procs {
    dir: PathBuf,
    etcd: Option<Child>,
    apiserver: Option<Child>,
}

impl Drop for Procs {
    fn drop(&mut self) {
        // API server first, then its storage.
        if let Some(c) = self.apiserver.take() {
            terminate(c);
        }
        if let Some(c) = self.etcd.take() {
            terminate(c);
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// SIGTERM, wait up to STOP_GRACE, then SIGKILL; always reaps the child.
fn terminate(mut c: Child) {
    if let Ok(None) = c.try_wait() {
        // SAFETY: kill(2) on the pid of a child we own and have not reaped yet.
        unsafe {
            libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
    }
    let _ = c.wait();
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| format!("bind :0: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("local_addr: {e}"))
}

fn random_hex(bytes: usize) -> Result<String, String> {
    let mut buf = vec![0u8; bytes];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn write(path: &Path, contents: &[u8]) -> Result<(), String> {
    fs::write(path, contents).map_err(|e| format!("write {}: {e}", path.display()))
}

fn log_tail(path: &Path, n: usize) -> String {
    let s = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Spawns `bin` with its output in `log`, killed when the spawning thread dies.
fn spawn(bin: &Path, args: &[String], log: &Path) -> Result<Child, String> {
    spawn_with_env(bin, args, &[], log)
}

fn spawn_with_env(
    bin: &Path,
    args: &[String],
    envs: &[(String, String)],
    log: &Path,
) -> Result<Child, String> {
    let out = fs::File::create(log).map_err(|e| format!("create {}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("dup {}: {e}", log.display()))?;
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    // SAFETY: getpid is async-signal-safe.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure only calls async-signal-safe functions (prctl, getppid, _exit).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    cmd.spawn()
        .map_err(|e| format!("spawn {}: {e}", bin.display()))
}

/// Plain HTTP GET on loopback (etcd's client URL); returns the whole response.
fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn busy_port(log: &str) -> bool {
    log.contains("address already in use")
}

fn launch(bins: &Path, extra: &[String]) -> Result<(Procs, Launched), StartError> {
    let t0 = Instant::now();
    remove_stale_dirs();
    let dir = std::env::temp_dir().join(format!("raygate-envtest-{}", random_hex(8)?));
    fs::create_dir_all(dir.join("apiserver"))
        .map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    write(
        &dir.join("owner.pid"),
        std::process::id().to_string().as_bytes(),
    )?;
    let mut procs = Procs {
        dir: dir.clone(),
        etcd: None,
        apiserver: None,
    };

    // Certificates: a throw-away CA, the API server's serving cert for 127.0.0.1/localhost,
    // a service-account signing key, and an admin bearer token in system:masters.
    let certs = make_certs().map_err(|e| format!("certificates: {e}"))?;
    write(&dir.join("ca.crt"), certs.ca_pem.as_bytes())?;
    write(&dir.join("serving.crt"), certs.serving_pem.as_bytes())?;
    write(&dir.join("serving.key"), certs.serving_key_pem.as_bytes())?;
    write(&dir.join("sa.key"), certs.sa_key_pem.as_bytes())?;
    write(&dir.join("sa.pub"), certs.sa_pub_pem.as_bytes())?;
    let token = random_hex(24)?;
    write(
        &dir.join("tokens.csv"),
        format!("{token},raygate-envtest-admin,raygate-envtest-admin,\"system:masters\"\n")
            .as_bytes(),
    )?;

    // etcd
    let (ep, pp) = (free_port()?, free_port()?);
    let etcd_url = format!("http://127.0.0.1:{ep}");
    let peer_url = format!("http://127.0.0.1:{pp}");
    let etcd_args: Vec<String> = vec![
        "--name=default".into(),
        format!("--data-dir={}", dir.join("etcd").display()),
        format!("--listen-client-urls={etcd_url}"),
        format!("--advertise-client-urls={etcd_url}"),
        format!("--listen-peer-urls={peer_url}"),
        format!("--initial-advertise-peer-urls={peer_url}"),
        format!("--initial-cluster=default={peer_url}"),
        "--unsafe-no-fsync=true".into(),
        "--log-level=warn".into(),
    ];
    let etcd_log = dir.join("etcd.log");
    procs.etcd = Some(spawn(&bins.join("etcd"), &etcd_args, &etcd_log)?);
    let etcd_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, ep));
    let deadline = Instant::now() + ETCD_DEADLINE;
    loop {
        if let Some(c) = procs.etcd.as_mut()
            && let Ok(Some(st)) = c.try_wait()
        {
            let tail = log_tail(&etcd_log, 30);
            let msg = format!("etcd exited early ({st}); etcd.log tail:\n{tail}");
            return Err(if busy_port(&tail) {
                StartError::PortBusy(msg)
            } else {
                StartError::Other(msg)
            });
        }
        if let Ok(r) = http_get(etcd_addr, "/health")
            && r.contains("\"health\":\"true\"")
        {
            break;
        }
        if Instant::now() >= deadline {
            return Err(StartError::Other(format!(
                "etcd not healthy after {ETCD_DEADLINE:?}; etcd.log tail:\n{}",
                log_tail(&etcd_log, 30)
            )));
        }
        std::thread::sleep(POLL);
    }

    // kube-apiserver (envtest's flag set plus what 1.34 needs offline)
    let ap = free_port()?;
    let server = format!("https://127.0.0.1:{ap}");
    let d = |f: &str| dir.join(f).display().to_string();
    let mut api_args: Vec<String> = vec![
        format!("--etcd-servers={etcd_url}"),
        "--bind-address=127.0.0.1".into(),
        format!("--secure-port={ap}"),
        "--advertise-address=127.0.0.1".into(),
        "--endpoint-reconciler-type=none".into(),
        format!("--cert-dir={}", d("apiserver")),
        format!("--tls-cert-file={}", d("serving.crt")),
        format!("--tls-private-key-file={}", d("serving.key")),
        format!("--token-auth-file={}", d("tokens.csv")),
        "--authorization-mode=RBAC".into(),
        format!("--service-account-issuer={server}"),
        format!("--service-account-key-file={}", d("sa.pub")),
        format!("--service-account-signing-key-file={}", d("sa.key")),
        "--service-cluster-ip-range=10.0.0.0/16".into(),
        "--disable-admission-plugins=ServiceAccount".into(),
        "--allow-privileged=true".into(),
        "--v=1".into(),
    ];
    api_args.extend(extra.iter().cloned());
    let api_log = dir.join("apiserver.log");
    procs.apiserver = Some(spawn(&bins.join("kube-apiserver"), &api_args, &api_log)?);

    let kubeconfig = dir.join("kubeconfig");
    write(
        &kubeconfig,
        kubeconfig_yaml(&server, &certs.ca_pem, &token).as_bytes(),
    )?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut cfg = kube::Config::new(server.parse().map_err(|e| format!("url: {e}"))?);
    cfg.root_cert = Some(vec![certs.ca_der.clone()]);
    cfg.connect_timeout = Some(Duration::from_secs(2));
    cfg.read_timeout = Some(Duration::from_secs(5));
    cfg.auth_info = serde_json::from_value(serde_json::json!({ "token": token }))
        .map_err(|e| format!("auth info: {e}"))?;
    let deadline = Instant::now() + APISERVER_DEADLINE;
    let mut last = String::from("no answer yet");
    rt.block_on(async {
        let client = kube::Client::try_from(cfg).map_err(|e| format!("client: {e}"))?;
        loop {
            if let Some(c) = procs.apiserver.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                let tail = log_tail(&api_log, 40);
                let msg =
                    format!("kube-apiserver exited early ({st}); apiserver.log tail:\n{tail}");
                return Err(if busy_port(&tail) {
                    StartError::PortBusy(msg)
                } else {
                    StartError::Other(msg)
                });
            }
            let req = axum::http::Request::get("/readyz")
                .body(Vec::new())
                .map_err(|e| format!("request: {e}"))?;
            match client.request_text(req).await {
                Ok(body) if body.trim() == "ok" => return Ok(()),
                Ok(body) => last = body,
                Err(e) => last = e.to_string(),
            }
            if Instant::now() >= deadline {
                return Err(StartError::Other(format!(
                    "kube-apiserver not ready after {APISERVER_DEADLINE:?} (last /readyz: {last}); \
                     apiserver.log tail:\n{}",
                    log_tail(&api_log, 40)
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    })?;
    let start_duration = t0.elapsed();

    let launched = Launched {
        dir,
        server,
        ca_pem: certs.ca_pem,
        ca_der: certs.ca_der,
        token,
        kubeconfig,
        etcd_url,
        etcd_pid: procs.etcd.as_ref().map(|c| c.id()).unwrap_or(0),
        apiserver_pid: procs.apiserver.as_ref().map(|c| c.id()).unwrap_or(0),
        start_duration,
    };
    Ok((procs, launched))
}

/// Removes temp dirs left by test processes that were killed (SIGKILL skips all cleanup; their
/// etcd/kube-apiserver died with them through PDEATHSIG).
fn remove_stale_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let is_ours = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("raygate-envtest-"));
        if !is_ours {
            continue;
        }
        let owner = fs::read_to_string(path.join("owner.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        if let Some(pid) = owner
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = fs::remove_dir_all(&path);
        }
    }
}

fn kubeconfig_yaml(server: &str, ca_pem: &str, token: &str) -> String {
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: envtest\n  cluster:\n    server: {server}\n    \
         certificate-authority-data: {ca}\nusers:\n- name: envtest-admin\n  user:\n    token: {token}\n\
         contexts:\n- name: envtest\n  context:\n    cluster: envtest\n    user: envtest-admin\n\
         current-context: envtest\n"
    )
}

struct Certs {
    ca_pem: String,
    ca_der: Vec<u8>,
    serving_pem: String,
    serving_key_pem: String,
    sa_key_pem: String,
    sa_pub_pem: String,
}

fn make_certs() -> Result<Certs, rcgen::Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, SanType,
    };
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "raygate-envtest-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let serving_key = KeyPair::generate()?;
    let mut sp = CertificateParams::new(vec!["localhost".to_string()])?;
    sp.subject_alt_names
        .push(SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
    sp.distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    sp.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let serving = sp.signed_by(&serving_key, &issuer)?;

    let sa_key = KeyPair::generate()?;
    Ok(Certs {
        ca_pem: ca_cert.pem(),
        ca_der: ca_cert.der().to_vec(),
        serving_pem: serving.pem(),
        serving_key_pem: serving_key.serialize_pem(),
        sa_key_pem: sa_key.serialize_pem(),
        sa_pub_pem: sa_key.public_key_pem(),
    })
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the e2e tests.

/// Integral floats as integers, as kubectl's YAML-to-JSON conversion sends them.
fn integral(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
            _ => v.clone(),
        },
        Value::Array(a) => Value::Array(a.iter().map(integral).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, x)| (k.clone(), integral(x))).collect())
        }
        _ => v.clone(),
    }
}

/// Every YAML document of a file as JSON (empty documents skipped), numbers as kubectl sends them.
pub fn yaml_docs(path: &Path) -> Vec<serde_json::Value> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    // YAML 1.1 octals (`defaultMode: 0777`) as kubectl reads them.
    let opts = serde_saphyr::options! { legacy_octal_numbers: true };
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple_with_options(&text, opts)
        .unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
    docs.iter().filter(|d| !d.is_null()).map(integral).collect()
}

/// `../shared/kuberay/<rel>`.
pub fn kuberay_path(rel: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/kuberay")).join(rel)
}

/// Field manager for everything the e2e tests apply server-side.
pub const FIELD_MANAGER: &str = "raygate-e2e";

/// Applies a CRD (server-side apply, manager [`FIELD_MANAGER`]) and waits until it is
/// Established and its resource is served. `crd` is the full CustomResourceDefinition as JSON.
pub async fn install_crd(client: &kube::Client, crd: serde_json::Value) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Api, Patch, PatchParams};
    let crd: CustomResourceDefinition =
        serde_json::from_value(crd).expect("CustomResourceDefinition from JSON");
    let name = crd.metadata.name.clone().expect("CRD name");
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    // Server-side apply: idempotent when tests install the same CRD concurrently, and a later
    // apply by the same manager replaces what an earlier one set (e.g. a conversion clientConfig).
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap_or_else(|e| panic!("apply CRD {name}: {e}"));
    let est = kube::runtime::wait::await_condition(
        api.clone(),
        &name,
        kube::runtime::wait::conditions::is_crd_established(),
    );
    tokio::time::timeout(Duration::from_secs(60), est)
        .await
        .unwrap_or_else(|_| panic!("CRD {name} not Established within 60 s"))
        .expect("watch CRD");
    // Established can precede discovery serving the resource by a moment: list until it works.
    let group = &crd.spec.group;
    let plural = &crd.spec.names.plural;
    let deadline = Instant::now() + Duration::from_secs(30);
    for v in crd.spec.versions.iter().filter(|v| v.served) {
        loop {
            let req =
                axum::http::Request::get(format!("/apis/{group}/{}/{plural}?limit=1", v.name))
                    .body(Vec::new())
                    .expect("request");
            match client.request_text(req).await {
                Ok(_) => break,
                Err(e) if Instant::now() >= deadline => {
                    panic!("{plural}.{group}/{} not served after 30 s: {e}", v.name)
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }
}

/// `kustomize build <dir>` (kustomize from scripts/envtest-bins.sh) as JSON documents.
pub fn kustomize_build(dir: &Path) -> Vec<serde_json::Value> {
    let kustomize = bin_dir()
        .unwrap_or_else(|e| panic!("{e}"))
        .join("kustomize");
    let out = std::process::Command::new(&kustomize)
        .arg("build")
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", kustomize.display()));
    assert!(
        out.status.success(),
        "kustomize build {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("kustomize output is UTF-8");
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(&text).expect("kustomize output is YAML");
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// Creates a namespace (idempotent) and returns its name.
pub async fn create_namespace(client: &kube::Client, name: &str) -> String {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::{Api, PostParams};
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": { "name": name, "labels": { "raygate.test/e2e": "true" } }
    }))
    .expect("namespace");
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("create namespace {name}: {e}"),
    }
    name.to_string()
}

/// A child process (e.g. `raygate serve`) with the same hygiene as the control plane: spawned
/// from a dedicated keeper thread with PR_SET_PDEATHSIG, stopped (SIGTERM, then SIGKILL) on drop
/// or [`KeptProcess::stop`], and killed with the test process.
pub struct KeptProcess {
    pid: u32,
    stop: Mutex<Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>>,
    exited: std::sync::Arc<Mutex<Option<String>>>,
}

impl KeptProcess {
    /// Spawns `program args` with stdout+stderr appended to `log`.
    pub fn spawn(
        program: &Path,
        args: &[String],
        envs: &[(&str, &str)],
        log: &Path,
    ) -> Result<Self, String> {
        let (res_tx, res_rx) = mpsc::channel::<Result<u32, String>>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let (ack_tx, ack_rx) = mpsc::channel::<()>();
        let exited = std::sync::Arc::new(Mutex::new(None));
        let exited2 = exited.clone();
        let (program, args, log) = (program.to_path_buf(), args.to_vec(), log.to_path_buf());
        let envs: Vec<(String, String)> = envs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        std::thread::Builder::new()
            .name("kept-process".into())
            .spawn(move || {
                let child = spawn_with_env(&program, &args, &envs, &log);
                let mut child = match child {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = res_tx.send(Err(e));
                        return;
                    }
                };
                let _ = res_tx.send(Ok(child.id()));
                // Wait for stop, noticing an early exit meanwhile.
                loop {
                    match stop_rx.recv_timeout(Duration::from_millis(200)) {
                        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            if let Ok(Some(st)) = child.try_wait()
                                && let Ok(mut g) = exited2.lock()
                                && g.is_none()
                            {
                                *g = Some(st.to_string());
                            }
                        }
                    }
                }
                terminate(child);
                let _ = ack_tx.send(());
            })
            .map_err(|e| format!("cannot spawn keeper thread: {e}"))?;
        let pid = res_rx
            .recv()
            .map_err(|_| "keeper thread died while spawning".to_string())??;
        Ok(KeptProcess {
            pid,
            stop: Mutex::new(Some((stop_tx, ack_rx))),
            exited,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// SIGKILL now (no exit path runs: an OOM kill, the kubelet after the grace period); the
    /// keeper thread still reaps it.
    pub fn sigkill(&self) {
        // SAFETY: plain kill(2) of the child this keeper spawned.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGKILL);
        }
    }

    /// `Some(exit status)` once the process has exited on its own.
    pub fn exited(&self) -> Option<String> {
        self.exited.lock().ok().and_then(|g| g.clone())
    }

    /// SIGTERM, then SIGKILL after a grace period; waits for the process. Idempotent.
    pub fn stop(&self) {
        let taken = match self.stop.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some((tx, ack)) = taken
            && tx.send(()).is_ok()
        {
            let _ = ack.recv_timeout(STOP_GRACE * 3);
        }
    }
}

impl Drop for KeptProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A throw-away CA and a serving certificate signed by it (PEM).
pub struct TestPki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// CA + serving certificate for `dns_names` and 127.0.0.1.
pub fn test_pki(dns_names: &[&str]) -> TestPki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, SanType,
    };
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.distinguished_name
        .push(DnType::CommonName, "raygate-e2e-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).expect("CA cert");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("leaf key");
    let names: Vec<String> = dns_names.iter().map(|s| s.to_string()).collect();
    let mut p = CertificateParams::new(names).expect("leaf params");
    p.subject_alt_names
        .push(SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
    p.distinguished_name.push(DnType::CommonName, "raygate-e2e");
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = p.signed_by(&key, &issuer).expect("leaf cert");
    TestPki {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; tiny race window).
pub fn pick_port() -> u16 {
    free_port().expect("free port")
}

/// `GET http://127.0.0.1:<port><path>` over plain HTTP/1.0: `(status code, body)`.
pub fn plain_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let r = http_get(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), path)?;
    let code = r
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = r
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}
