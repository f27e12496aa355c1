//! Test harness: a real Ray 2.60.0 head (and worker nodes) on 127.0.0.1, shared by
//! `tests/ray_gcs.rs`, `tests/ray_autoscale_local.rs`, `tests/e2e_autoscale_ray.rs` and
//! `benches/ray_reaction.rs`.
//!
//! Include with `#[path = "support/ray.rs"] mod ray;`.
//!
//! * [`RayCluster`]: the head, worker nodes started as KubeRay pods ([`WorkerSpec`],
//!   [`WorkerLauncher`] for another thread), Python drivers (actors of the seed's quick start),
//!   `ray status`, and `raygate autoscale local` as a child ([`LocalAutoscaler`]).
//! * [`Gcs`]: raygate's own GCS client with a runtime, for snapshots and polling.
//!
//! * The venv comes from `RAYGATE_RAY_VENV` (set by `scripts/test.sh`), else the default cache
//!   path of `scripts/ray-venv.sh`. Without it the test is skipped — except under `CI=true` or
//!   with `RAYGATE_RAY_VENV` set (always so under `scripts/test.sh`), where it fails.
//! * Every Ray process binds 127.0.0.1 only: `scripts/ray_loopback.py` stops Ray from rewriting
//!   127.0.0.1 into the host's external IP, and every port (GCS, raylet, object manager, agents,
//!   metrics, client server, dashboard, worker range) is chosen free at start.
//! * Each `ray start --block` runs in its own process group with `PR_SET_PDEATHSIG(SIGKILL)`; the
//!   group is SIGKILLed on drop (also when the test panics), and Ray itself kills its children
//!   when `ray start` dies. Clusters of one test binary run one at a time (a global lock), since
//!   each Ray node costs hundreds of MB and most of a core while starting.
#![allow(dead_code)]

use raygate::gcs::snapshot::{NodeStatus, RaySnapshot};
use raygate::gcs::{GcsClient, GcsOptions, proto};
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Holds the lock that lets one Ray cluster of this test binary run at a time (for clusters
/// whose nodes someone else starts, e.g. the kubelet stand-in's pods).
pub fn one_cluster_at_a_time() -> MutexGuard<'static, ()> {
    ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The Python venv with `ray==2.60.0`, or `None` (test skipped) outside CI and `scripts/test.sh`.
pub fn venv() -> Option<PathBuf> {
    // scripts/test.sh (and so .ci/run) always builds the venv and sets RAYGATE_RAY_VENV: a venv
    // named there that is not usable fails the test, as under CI=true, instead of skipping it.
    let ci = std::env::var("CI").map(|v| v == "true").unwrap_or(false)
        || std::env::var_os("RAYGATE_RAY_VENV").is_some();
    let candidate = match std::env::var_os("RAYGATE_RAY_VENV") {
        Some(p) => PathBuf::from(p),
        None => {
            let cache = std::env::var_os("RAYGATE_CACHE")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/raygate")));
            match cache {
                Some(c) => c.join("venv-ray-2.60.0"),
                None => PathBuf::from("/nonexistent"),
            }
        }
    };
    if candidate.join("bin/python").exists() && candidate.join("bin/ray").exists() {
        return Some(candidate);
    }
    let msg = format!(
        "Ray venv not found at {} (run scripts/ray-venv.sh and export RAYGATE_RAY_VENV, or use \
         scripts/test.sh)",
        candidate.display()
    );
    if ci {
        panic!(
            "{msg}; CI=true or RAYGATE_RAY_VENV set, so tests that need Ray fail instead of skipping"
        );
    }
    eprintln!("SKIPPED: {msg}");
    None
}

fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Ports are handed out from a per-process cursor in 12000..32000, below Linux's ephemeral
/// range (32768..60999) so outgoing connections cannot grab them between our check and Ray's
/// bind, starting at a random offset so concurrent test processes rarely meet, and each port is
/// checked free on 127.0.0.1 and never handed out twice by this process.
const PORT_LO: u32 = 12000;
const PORT_HI: u32 = 32000;
static PORT_CURSOR: Mutex<Option<u32>> = Mutex::new(None);

fn next_free_port_run(len: u32) -> u16 {
    let mut cursor = PORT_CURSOR.lock().unwrap_or_else(|p| p.into_inner());
    let mut at = cursor.unwrap_or_else(|| {
        let seed = (std::process::id() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
        PORT_LO + (seed % u64::from(PORT_HI - PORT_LO)) as u32
    });
    for _ in 0..2000 {
        if at + len >= PORT_HI {
            at = PORT_LO;
        }
        let base = at;
        at += len;
        let held: Vec<TcpListener> = (base..base + len)
            .map_while(|p| TcpListener::bind(("127.0.0.1", p as u16)).ok())
            .collect();
        if held.len() == len as usize {
            *cursor = Some(at);
            return base as u16;
        }
    }
    panic!("no free run of {len} ports on 127.0.0.1 in {PORT_LO}..{PORT_HI}");
}

/// `n` distinct free TCP ports on 127.0.0.1, never handed out before by this process.
pub fn free_ports(n: usize) -> Vec<u16> {
    (0..n).map(|_| next_free_port_run(1)).collect()
}

/// A free range of `len` consecutive ports for Ray worker processes.
pub fn free_port_range(len: u16) -> (u16, u16) {
    let base = next_free_port_run(u32::from(len));
    (base, base + len - 1)
}

/// A `ray start --block` process (one Ray node) in its own process group.
pub struct RayProcess {
    child: Child,
    pub name: String,
    pub log: PathBuf,
}

impl RayProcess {
    /// A process spawned elsewhere in its own process group (`process_group(0)`), e.g. a
    /// container of the kubelet stand-in.
    pub fn from_child(child: Child, name: &str, log: &Path) -> RayProcess {
        RayProcess {
            child,
            name: name.to_string(),
            log: log.to_path_buf(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status once the leader has exited (reaped), else `None`.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends `signal` to the whole process group.
    pub fn signal_group(&self, signal: libc::c_int) {
        signal_group(self.child.id(), signal);
    }

    /// Still running?
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL the whole process group and reap the leader.
    pub fn kill(&mut self) {
        signal_group(self.child.id(), libc::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the node as a kubelet stops a container: SIGTERM to the process group (`ray start
    /// --block` stops its raylet, which leaves the cluster), SIGKILL to whatever is left after
    /// `grace`. Returns true when `ray start` exited within the grace period.
    pub fn stop(&mut self, grace: Duration) -> bool {
        signal_group(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + grace;
        let mut exited = false;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        exited
    }

    /// True once no process of this node's process group is left.
    pub fn group_gone(&self) -> bool {
        // SAFETY: signal 0 only checks for existence.
        let r = unsafe { libc::kill(-(self.child.id() as libc::pid_t), 0) };
        r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for RayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn signal_group(leader: u32, signal: libc::c_int) {
    // SAFETY: kill(2) on the process group of a child we spawned with process_group(0).
    unsafe {
        libc::kill(-(leader as libc::pid_t), signal);
    }
}

/// Options of a worker node.
#[derive(Debug, Clone, Default)]
pub struct WorkerSpec<'a> {
    /// `RAY_CLOUD_INSTANCE_ID` (KubeRay: the pod name); also names the node's log.
    pub pod: &'a str,
    /// `RAY_NODE_TYPE_NAME` (KubeRay: the worker group name).
    pub group: &'a str,
    pub num_cpus: u32,
    /// `--memory` in bytes (None: Ray's default share of the machine).
    pub memory: Option<u64>,
    /// More environment of the Ray container, applied last (it overrides the variables derived
    /// from `pod` and `group`): e.g. the env of a Pod object.
    pub env: Vec<(String, String)>,
}

impl<'a> WorkerSpec<'a> {
    /// A KubeRay-style worker of `group` named `pod` with `num_cpus` CPUs.
    pub fn new(pod: &'a str, group: &'a str, num_cpus: u32) -> Self {
        WorkerSpec {
            pod,
            group,
            num_cpus,
            ..Default::default()
        }
    }
}

/// Starts worker nodes of one cluster; `Send`, so another thread (e.g. a kubelet stand-in) can
/// own the nodes it starts. Each `ray start` is spawned with PR_SET_PDEATHSIG: the node dies
/// with the *thread* that started it, so start them from a thread that outlives them.
#[derive(Clone)]
pub struct WorkerLauncher {
    venv: PathBuf,
    gcs_port: u16,
    dir: PathBuf,
    seq: Arc<AtomicUsize>,
}

impl WorkerLauncher {
    /// Starts a worker node the way a KubeRay worker pod runs Ray: `RAY_CLOUD_INSTANCE_ID` = pod
    /// name, `RAY_NODE_TYPE_NAME` = group, `ray start --address=… --block`. Does not wait for
    /// registration.
    pub fn launch(&self, spec: &WorkerSpec<'_>) -> RayProcess {
        let (mut args, _) = node_port_args();
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        let mut head = vec![
            "start".to_string(),
            format!("--address=127.0.0.1:{}", self.gcs_port),
            "--node-ip-address=127.0.0.1".to_string(),
            format!("--num-cpus={}", spec.num_cpus),
            // One temp dir per node: nodes sharing one race for the same socket and log
            // names when they start together ("bind: Address already in use").
            format!("--temp-dir={}", self.dir.join(format!("w{n}")).display()),
        ];
        if let Some(m) = spec.memory {
            head.push(format!("--memory={m}"));
        }
        args.splice(0..0, head);
        let mut envs: Vec<(String, String)> = [
            ("RAY_CLOUD_INSTANCE_ID", spec.pod),
            ("RAY_NODE_TYPE_NAME", spec.group),
            ("RAY_CLUSTER_NAME", "raycluster"),
            ("RAY_CLUSTER_NAMESPACE", "default"),
            ("RAY_USAGE_STATS_KUBERAY_IN_USE", "1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        envs.extend(spec.env.iter().cloned());
        let envs: Vec<(&str, String)> = envs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let log = self.dir.join(format!("{}.log", spec.pod));
        spawn_ray(&self.venv, &args, &envs, &log, spec.pod)
    }
}

/// A Ray head on 127.0.0.1 plus the worker nodes the test started.
pub struct RayCluster {
    pub venv: PathBuf,
    pub gcs_port: u16,
    pub node_manager_port: u16,
    pub temp: tempfile::TempDir,
    pub head: RayProcess,
    pub workers: Vec<RayProcess>,
    launcher: WorkerLauncher,
    _lock: MutexGuard<'static, ()>,
}

fn spawn_ray(
    venv: &Path,
    args: &[String],
    envs: &[(&str, String)],
    log: &Path,
    name: &str,
) -> RayProcess {
    let out = std::fs::File::create(log).expect("create log");
    let err = out.try_clone().expect("clone log");
    let mut cmd = Command::new(venv.join("bin/python"));
    // Inherited by every Ray process of this node (raylet, agents, workers whose process title
    // hides their command line), so scripts/test.sh can find strays by environment.
    let owner = log.parent().unwrap_or(log).display().to_string();
    cmd.env("RAYGATE_RAY_OWNER", owner)
        .arg(repo_dir().join("scripts/ray_loopback.py"))
        .args(args)
        .env_remove("RAY_ADDRESS")
        .env("RAY_USAGE_STATS_ENABLED", "0")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    // SAFETY: prctl is async-signal-safe; runs in the forked child before exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().expect("spawn ray start");
    RayProcess {
        child,
        name: name.to_string(),
        log: log.to_path_buf(),
    }
}

/// Ports every node needs, as `ray start` flags.
fn node_port_args() -> (Vec<String>, u16) {
    let p = free_ports(6);
    let (lo, hi) = free_port_range(40);
    (
        vec![
            format!("--node-manager-port={}", p[0]),
            format!("--object-manager-port={}", p[1]),
            format!("--dashboard-agent-listen-port={}", p[2]),
            format!("--dashboard-agent-grpc-port={}", p[3]),
            format!("--runtime-env-agent-port={}", p[4]),
            format!("--metrics-export-port={}", p[5]),
            format!("--min-worker-port={lo}"),
            format!("--max-worker-port={hi}"),
            "--object-store-memory=80000000".to_string(),
            "--disable-usage-stats".to_string(),
            "--block".to_string(),
        ],
        p[0],
    )
}

impl RayCluster {
    /// Starts a head with `num-cpus: 0` and autoscaler v2 enabled (so `ray status` shows what
    /// the autoscaler reports and `request_resources` goes to the GCS), without Ray's own
    /// monitor (as KubeRay does: `no-monitor`). Returns `None` when the venv is missing (outside
    /// CI). Waits until the GCS answers.
    pub fn start_head() -> Option<RayCluster> {
        Self::start_head_with(None)
    }

    /// With `Some(config)`: Ray's *own* autoscaler instead — the head runs its monitor with
    /// `--autoscaling-config=<config>` (the text of a cluster config, e.g. the `fake_multinode`
    /// provider, which launches worker raylets on this machine; `{GCS_ADDRESS}` in it is replaced
    /// by the head's GCS address), autoscaler v1 (Ray's default).
    pub fn start_head_with(ray_autoscaler_config: Option<&str>) -> Option<RayCluster> {
        let venv = venv()?;
        let lock = one_cluster_at_a_time();
        // Short names: Ray's socket paths under it must stay within AF_UNIX's 107 bytes.
        // scripts/test.sh points RAYGATE_RAY_TMPDIR at a per-run directory and afterwards checks
        // that no process still refers to it.
        let parent = std::env::var_os("RAYGATE_RAY_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let temp = tempfile::Builder::new()
            .prefix("rg-")
            .tempdir_in(parent)
            .expect("tempdir");
        let p = free_ports(5);
        let gcs_port = p[0];
        let (mut args, node_manager_port) = node_port_args();
        args.splice(
            0..0,
            [
                "start".to_string(),
                "--head".to_string(),
                format!("--port={gcs_port}"),
                "--node-ip-address=127.0.0.1".to_string(),
                "--num-cpus=0".to_string(),
                "--include-dashboard=false".to_string(),
                format!("--dashboard-port={}", p[1]),
                format!("--ray-client-server-port={}", p[2]),
                format!("--temp-dir={}", temp.path().join("r").display()),
            ],
        );
        let mut envs = vec![
            ("DASHBOARD_METRIC_PORT", p[3].to_string()),
            ("AUTOSCALER_METRIC_PORT", p[4].to_string()),
            ("RAY_CLOUD_INSTANCE_ID", "raycluster-head".to_string()),
            ("RAY_NODE_TYPE_NAME", "headgroup".to_string()),
        ];
        match ray_autoscaler_config {
            None => {
                args.push("--no-monitor".to_string());
                envs.push(("RAY_enable_autoscaler_v2", "1".to_string()));
            }
            Some(config) => {
                let file = temp.path().join("autoscaling.yaml");
                let config = config.replace("{GCS_ADDRESS}", &format!("127.0.0.1:{gcs_port}"));
                std::fs::write(&file, config).expect("write autoscaling config");
                args.push(format!("--autoscaling-config={}", file.display()));
                envs.push(("RAY_FAKE_CLUSTER", "1".to_string()));
                // The monitor starts the fake nodes itself: keep them on 127.0.0.1 too.
                envs.push(("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0".to_string()));
            }
        }
        let log = temp.path().join("head.log");
        let head = spawn_ray(&venv, &args, &envs, &log, "head");
        let launcher = WorkerLauncher {
            venv: venv.clone(),
            gcs_port,
            dir: temp.path().to_path_buf(),
            seq: Arc::new(AtomicUsize::new(0)),
        };
        let mut cluster = RayCluster {
            venv,
            gcs_port,
            node_manager_port,
            temp,
            head,
            workers: Vec::new(),
            launcher,
            _lock: lock,
        };
        cluster.wait_for_port(gcs_port, Duration::from_secs(90));
        Some(cluster)
    }

    /// `127.0.0.1:<gcs port>`.
    pub fn gcs_address(&self) -> String {
        format!("127.0.0.1:{}", self.gcs_port)
    }

    pub fn wait_for_port(&mut self, port: u16, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            if !self.head.is_running() {
                panic!("ray head exited early:\n{}", self.head.log_tail());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "GCS port {port} not open within {within:?}:\n{}",
            self.head.log_tail()
        );
    }

    /// Starts a worker node (see [`WorkerLauncher::launch`]) owned by this cluster. Returns its
    /// index in `workers`; does not wait for registration.
    pub fn start_worker(&mut self, spec: WorkerSpec<'_>) -> usize {
        let w = self.launcher.launch(&spec);
        self.workers.push(w);
        self.workers.len() - 1
    }

    /// A launcher for worker nodes owned by someone else (who must stop them before this
    /// cluster is dropped).
    pub fn launcher(&self) -> WorkerLauncher {
        self.launcher.clone()
    }

    /// Python drivers and `ray status` against this head.
    pub fn driver(&self) -> Driver {
        Driver {
            venv: self.venv.clone(),
            address: self.gcs_address(),
            dir: self.temp.path().to_path_buf(),
            ray_tmpdir: self.temp.path().join("r"),
        }
    }

    /// [`Driver::python`] against this head.
    pub fn python(&self, script: &str, timeout: Duration) -> String {
        self.driver().python(script, timeout)
    }

    /// [`Driver::ray_status`] against this head.
    pub fn ray_status(&self) -> String {
        self.driver().ray_status()
    }

    /// [`Driver::create_actor`] against this head.
    pub fn create_actor(&self, ns: &str, name: &str, cpus: u32, wait_alive: bool) -> String {
        self.driver().create_actor(ns, name, cpus, wait_alive)
    }

    /// [`Driver::actor_alive`] against this head.
    pub fn actor_alive(&self, ns: &str, name: &str) -> bool {
        self.driver().actor_alive(ns, name)
    }

    /// [`Driver::request_resources`] against this head.
    pub fn request_resources(&self, num_cpus: u32) {
        self.driver().request_resources(num_cpus)
    }

    /// [`Driver::kill_actor`] against this head.
    pub fn kill_actor(&self, ns: &str, name: &str) {
        self.driver().kill_actor(ns, name)
    }

    /// Logs of all nodes (for failure messages).
    pub fn logs(&self) -> String {
        let mut s = format!("--- head log ---\n{}\n", self.head.log_tail());
        for w in &self.workers {
            s += &format!("--- {} log ---\n{}\n", w.name, w.log_tail());
        }
        s
    }
}

impl Drop for RayCluster {
    fn drop(&mut self) {
        for w in &mut self.workers {
            w.kill();
        }
        self.head.kill();
        if std::thread::panicking() && std::env::var_os("RAYGATE_KEEP_RAY_TMP").is_some() {
            let kept = std::mem::replace(
                &mut self.temp,
                tempfile::tempdir().expect("placeholder tempdir"),
            )
            .keep();
            eprintln!("kept Ray temp dir {}", kept.display());
        }
    }
}

/// Python drivers (the seed's quick start) and `ray status` against a Ray cluster on 127.0.0.1,
/// whoever runs its nodes: each run is bounded, in its own process group with PR_SET_PDEATHSIG,
/// and carries `RAYGATE_RAY_OWNER=<dir>`.
#[derive(Debug, Clone)]
pub struct Driver {
    pub venv: PathBuf,
    /// The GCS address, `127.0.0.1:<port>`.
    pub address: String,
    /// Where driver scripts are written; also their `RAYGATE_RAY_OWNER`.
    pub dir: PathBuf,
    /// The head's `--temp-dir` (`RAY_TMPDIR` of the drivers).
    pub ray_tmpdir: PathBuf,
}

impl Driver {
    /// Runs a Python driver script against the cluster (`RAY_ADDRESS` set, loopback kept),
    /// bounded by `timeout`. Panics with its output when it fails.
    pub fn python(&self, script: &str, timeout: Duration) -> String {
        let path = self
            .dir
            .join(format!("driver-{}.py", std::process::id() ^ rand_u32()));
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(script.as_bytes()))
            .expect("write driver");
        let out = self.run_bounded(
            Command::new(self.venv.join("bin/python")).arg(&path),
            timeout,
        );
        if !out.status.success() {
            panic!(
                "python driver failed ({}):\nstdout:\n{}\nstderr:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `ray status` against the head (v2 layout when the autoscaler state was reported).
    pub fn ray_status(&self) -> String {
        let out = self.run_bounded(
            Command::new(self.venv.join("bin/ray"))
                .arg("status")
                .arg(format!("--address={}", self.address)),
            Duration::from_secs(60),
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    fn run_bounded(&self, cmd: &mut Command, timeout: Duration) -> Output {
        cmd.env("RAY_ADDRESS", &self.address)
            .env("RAYGATE_RAY_OWNER", &self.dir)
            // Keep 127.0.0.1 as the driver's node IP (Ray would use the external IP).
            .env("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
            .env("RAY_USAGE_STATS_ENABLED", "0")
            .env("RAY_TMPDIR", &self.ray_tmpdir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: see spawn_ray.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn python");
        let pid = child.id() as libc::pid_t;
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let out = child.wait_with_output();
            let _ = tx.send(());
            out
        });
        if rx.recv_timeout(timeout).is_err() {
            // SAFETY: kill our own child's process group.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
            let out = waiter.join().expect("join").expect("output");
            panic!(
                "command timed out after {timeout:?}:\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // Reap anything the driver left in its group (it has exited).
        // SAFETY: as above.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        waiter.join().expect("join").expect("output")
    }
}

fn rand_u32() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

/// Polls `f` every `every` until it returns `Some`, at most until `within` has passed.
pub fn poll<T>(within: Duration, every: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// The seed's quick start drivers (`detached_actor.py` / `terminate_detached_actor.py`), in the
/// Ray namespace `ns`.
impl Driver {
    /// Creates the detached actor `name` needing `cpus` CPUs; with `wait_alive`, waits (bounded)
    /// until it answers. Returns the driver's output, which has a line `CREATED <unix ms>` taken
    /// right after `.remote()` returned.
    pub fn create_actor(&self, ns: &str, name: &str, cpus: u32, wait_alive: bool) -> String {
        let wait = if wait_alive {
            "assert ray.get(a.ping.remote(), timeout=240) == 1"
        } else {
            ""
        };
        self.python(
            &format!(
                r#"
import ray, time
ray.init(namespace="{ns}")
@ray.remote(num_cpus={cpus})
class Actor:
    def ping(self):
        return 1
a = Actor.options(name="{name}", lifetime="detached").remote()
print("CREATED", int(time.time() * 1000), flush=True)
{wait}
"#
            ),
            Duration::from_secs(300),
        )
    }

    /// True when the actor `name` answers a ping.
    pub fn actor_alive(&self, ns: &str, name: &str) -> bool {
        let out = self.python(
            &format!(
                r#"
import ray
ray.init(namespace="{ns}")
a = ray.get_actor("{name}")
print("ALIVE" if ray.get(a.ping.remote(), timeout=60) == 1 else "NO")
"#
            ),
            Duration::from_secs(120),
        );
        out.contains("ALIVE")
    }

    /// `ray.autoscaler.sdk.request_resources(num_cpus=…)`: a standing cluster constraint.
    pub fn request_resources(&self, num_cpus: u32) {
        self.python(
            &format!(
                r#"
import ray
from ray.autoscaler.sdk import request_resources
ray.init()
request_resources(num_cpus={num_cpus})
"#
            ),
            Duration::from_secs(120),
        );
    }

    /// `ray.kill` of the actor `name`.
    pub fn kill_actor(&self, ns: &str, name: &str) {
        self.python(
            &format!(
                r#"
import ray
ray.init(namespace="{ns}")
ray.kill(ray.get_actor("{name}"))
"#
            ),
            Duration::from_secs(120),
        );
    }
}

/// The seed's quick-start RayCluster (KubeRay's `ray-cluster.autoscaler.yaml` shape): a head
/// with `num-cpus: 0` and `small-group` of 1-CPU workers, 0..=`max_replicas`, in-tree
/// autoscaling with the given idle timeout.
pub fn quick_start_yaml(name: &str, idle_timeout_s: u32, max_replicas: u32) -> String {
    format!(
        r#"apiVersion: ray.io/v1
kind: RayCluster
metadata:
  name: {name}
  namespace: default
spec:
  rayVersion: "2.60.0"
  enableInTreeAutoscaling: true
  autoscalerOptions:
    upscalingMode: Default
    idleTimeoutSeconds: {idle_timeout_s}
  headGroupSpec:
    rayStartParams:
      num-cpus: "0"
    template:
      spec:
        containers:
          - name: ray-head
            image: rayproject/ray:2.60.0
  workerGroupSpecs:
    - groupName: small-group
      replicas: 0
      minReplicas: 0
      maxReplicas: {max_replicas}
      rayStartParams:
        num-cpus: "1"
      template:
        spec:
          containers:
            - name: ray-worker
              image: rayproject/ray:2.60.0
"#
    )
}

/// A tokio runtime for blocking on GCS calls from a test thread.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// raygate's GCS client on the test's side, with its own runtime.
pub struct Gcs {
    pub rt: tokio::runtime::Runtime,
    pub client: GcsClient,
}

impl Gcs {
    /// Connects to the cluster's GCS (it answers once `start_head` returned).
    pub fn connect(cluster: &RayCluster) -> Gcs {
        Self::connect_to(&cluster.gcs_address())
    }

    /// Connects to the GCS at `address` (`127.0.0.1:<port>`).
    pub fn connect_to(address: &str) -> Gcs {
        let rt = rt();
        let client = rt
            .block_on(GcsClient::connect(address, GcsOptions::default()))
            .unwrap_or_else(|e| panic!("connect to the GCS at {address}: {e}"));
        Gcs { rt, client }
    }

    /// Ray's node table, demands and constraints now.
    pub fn snapshot(&mut self) -> RaySnapshot {
        let s = self
            .rt
            .block_on(self.client.get_cluster_resource_state(0))
            .expect("GetClusterResourceState");
        RaySnapshot::from_proto(&s)
    }

    /// The autoscaling state last reported to the GCS (None before any report).
    pub fn reported(&mut self) -> Option<proto::AutoscalingState> {
        self.rt
            .block_on(self.client.get_cluster_status())
            .expect("GetClusterStatus")
            .autoscaling_state
    }

    /// Polls the GCS every 250 ms until `pred` holds; panics after `within` with `what`, the
    /// last snapshot and `context()` (e.g. logs).
    pub fn wait_for(
        &mut self,
        within: Duration,
        what: &str,
        pred: impl Fn(&RaySnapshot) -> bool,
        context: &dyn Fn() -> String,
    ) -> RaySnapshot {
        let mut last = None;
        let got = poll(within, Duration::from_millis(250), || {
            let s = self.snapshot();
            let ok = pred(&s);
            last = Some(s.clone());
            ok.then_some(s)
        });
        got.unwrap_or_else(|| {
            panic!(
                "timed out after {within:?} waiting for {what}; last snapshot: {last:#?}\n{}",
                context()
            )
        })
    }
}

/// Pod names (instance ids) of the live worker nodes (RUNNING or IDLE), sorted.
pub fn live_workers(s: &RaySnapshot) -> Vec<String> {
    let mut v: Vec<String> = s
        .nodes
        .iter()
        .filter(|n| !n.is_head && matches!(n.status, NodeStatus::Running | NodeStatus::Idle))
        .map(|n| n.instance_id.clone())
        .collect();
    v.sort();
    v
}

/// `raygate autoscale local` as a child process (its own process group, PR_SET_PDEATHSIG);
/// SIGTERM (it stops its workers) then SIGKILL of the group on drop, with its log printed when
/// the test panics.
pub struct LocalAutoscaler {
    child: Child,
    pub log: PathBuf,
}

impl RayCluster {
    /// Starts `raygate autoscale local --interval 1` for the RayCluster `cluster_yaml`; raygate
    /// talks to the GCS at `gcs` (the head's, or a proxy in front of it) and its workers join the
    /// head's GCS.
    pub fn autoscale_local(&self, cluster_yaml: &str, gcs: &str) -> LocalAutoscaler {
        self.autoscale_local_with(cluster_yaml, gcs, &[])
    }

    /// [`Self::autoscale_local`] with `extra` arguments (e.g. `--timeline FILE`).
    pub fn autoscale_local_with(
        &self,
        cluster_yaml: &str,
        gcs: &str,
        extra: &[&std::ffi::OsStr],
    ) -> LocalAutoscaler {
        let n = self.launcher.seq.fetch_add(1, Ordering::SeqCst);
        let dir = self.temp.path().join(format!("as{n}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let file = dir.join("raycluster.yaml");
        std::fs::write(&file, cluster_yaml).expect("write raycluster");
        let log = dir.join("autoscaler.log");
        let out = std::fs::File::create(&log).expect("log");
        let err = out.try_clone().expect("log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_raygate"));
        cmd.args(["autoscale", "local", "--gcs", gcs, "--ray-address"])
            .arg(self.gcs_address())
            .arg("--cluster")
            .arg(&file)
            .arg("--ray-venv")
            .arg(&self.venv)
            .arg("--work-dir")
            .arg(dir.join("w"))
            .args(["--interval", "1"])
            .args(extra)
            // Inherited by the worker processes, for scripts/test.sh's stray check.
            .env("RAYGATE_RAY_OWNER", self.temp.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        // SAFETY: prctl in the forked child before exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                Ok(())
            });
        }
        LocalAutoscaler {
            child: cmd.spawn().expect("spawn raygate autoscale local"),
            log,
        }
    }
}

impl LocalAutoscaler {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM and wait (bounded, 30 s) for its exit.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        // SAFETY: signal our own child.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for LocalAutoscaler {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "--- raygate autoscale local log (tail) ---\n{}",
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            self.stop();
        }
        signal_group(self.child.id(), libc::SIGKILL);
        let _ = self.child.wait();
    }
}
