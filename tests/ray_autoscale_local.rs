//! `raygate autoscale local` against a real Ray 2.60.0 head on 127.0.0.1: the seed's quick start
//! (detached actors scale a 1-CPU worker group up and, after the idle timeout, down again), an
//! infeasible 2-CPU actor, a STRICT_SPREAD placement group and `request_resources`.
//!
//! Skipped when the Ray venv is missing, except under `CI=true` (then they fail).

#[path = "support/ray.rs"]
mod ray;

use ray::{RayCluster, poll};
use raygate::gcs::snapshot::{NodeStatus, RaySnapshot};
use raygate::gcs::{GcsClient, GcsOptions};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NS: &str = "default_namespace";

fn raycluster_yaml(idle_timeout_s: u32) -> String {
    format!(
        r#"apiVersion: ray.io/v1
kind: RayCluster
metadata:
  name: raycluster-autoscaler
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
      maxReplicas: 10
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

/// `raygate autoscale local` as a child process; SIGTERM (it stops its workers) then SIGKILL on drop.
struct Autoscaler {
    child: Child,
    log: std::path::PathBuf,
}

impl Autoscaler {
    fn start(cluster: &RayCluster, idle_timeout_s: u32) -> Autoscaler {
        Self::start_via(cluster, idle_timeout_s, &cluster.gcs_address())
    }

    /// raygate talks to the GCS at `gcs` (e.g. a proxy); its workers join the real GCS.
    fn start_via(cluster: &RayCluster, idle_timeout_s: u32, gcs: &str) -> Autoscaler {
        let dir = cluster.temp.path().join("as");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let file = dir.join("raycluster.yaml");
        std::fs::write(&file, raycluster_yaml(idle_timeout_s)).expect("write raycluster");
        let log = dir.join("autoscaler.log");
        let out = std::fs::File::create(&log).expect("log");
        let err = out.try_clone().expect("log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_raygate"));
        cmd.args(["autoscale", "local", "--gcs", gcs, "--ray-address"])
            .arg(cluster.gcs_address())
            .arg("--cluster")
            .arg(&file)
            .arg("--ray-venv")
            .arg(&cluster.venv)
            .arg("--work-dir")
            .arg(dir.join("w"))
            .args(["--interval", "1"])
            // Inherited by the worker processes, for scripts/test.sh's stray check.
            .env("RAYGATE_RAY_OWNER", cluster.temp.path())
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
        Autoscaler {
            child: cmd.spawn().expect("spawn raygate"),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM and wait (bounded) for a clean exit.
    fn stop(&mut self) -> Option<std::process::ExitStatus> {
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

impl Drop for Autoscaler {
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
        // SAFETY: kill our own child's process group.
        unsafe {
            libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Live worker nodes (RUNNING or IDLE) by pod name.
fn workers(s: &RaySnapshot) -> Vec<String> {
    s.nodes
        .iter()
        .filter(|n| !n.is_head && matches!(n.status, NodeStatus::Running | NodeStatus::Idle))
        .map(|n| n.instance_id.clone())
        .collect()
}

struct Ctx {
    rt: tokio::runtime::Runtime,
    gcs: GcsClient,
}

impl Ctx {
    fn snapshot(&mut self) -> RaySnapshot {
        let s = self
            .rt
            .block_on(self.gcs.get_cluster_resource_state(0))
            .expect("GetClusterResourceState");
        RaySnapshot::from_proto(&s)
    }

    fn wait_workers(
        &mut self,
        cluster: &RayCluster,
        a: &Autoscaler,
        n: usize,
        within: Duration,
    ) -> Vec<String> {
        let mut last = Vec::new();
        poll(within, Duration::from_millis(250), || {
            last = workers(&self.snapshot());
            (last.len() == n).then(|| last.clone())
        })
        .unwrap_or_else(|| {
            panic!(
                "expected {n} worker(s) within {within:?}, have {last:?}\n--- autoscaler ---\n{}\n{}",
                a.log(),
                cluster.logs()
            )
        })
    }
}

fn create_actor(cluster: &RayCluster, name: &str, cpus: u32, wait_alive: bool) {
    let wait = if wait_alive {
        "assert ray.get(a.ping.remote(), timeout=240) == 1"
    } else {
        ""
    };
    cluster.python(
        &format!(
            r#"
import ray
ray.init(namespace="{NS}")
@ray.remote(num_cpus={cpus})
class Actor:
    def ping(self):
        return 1
a = Actor.options(name="{name}", lifetime="detached").remote()
{wait}
"#
        ),
        Duration::from_secs(300),
    );
}

fn actor_alive(cluster: &RayCluster, name: &str) -> bool {
    let out = cluster.python(
        &format!(
            r#"
import ray
ray.init(namespace="{NS}")
a = ray.get_actor("{name}")
print("ALIVE" if ray.get(a.ping.remote(), timeout=60) == 1 else "NO")
"#
        ),
        Duration::from_secs(120),
    );
    out.contains("ALIVE")
}

fn kill_actor(cluster: &RayCluster, name: &str) {
    cluster.python(
        &format!(
            r#"
import ray
ray.init(namespace="{NS}")
ray.kill(ray.get_actor("{name}"))
"#
        ),
        Duration::from_secs(120),
    );
}

#[test]
fn seed_quick_start_scales_up_per_actor_and_down_after_idle_timeout() {
    let Some(cluster) = RayCluster::start_head() else {
        return;
    };
    let rt = rt();
    let gcs = rt
        .block_on(GcsClient::connect(
            &cluster.gcs_address(),
            GcsOptions::default(),
        ))
        .expect("connect");
    let mut cx = Ctx { rt, gcs };
    let mut autoscaler = Autoscaler::start(&cluster, 5);
    let minute = Duration::from_secs(60);

    // No demand: no worker.
    std::thread::sleep(Duration::from_secs(3));
    assert!(workers(&cx.snapshot()).is_empty(), "{}", autoscaler.log());

    // actor1 → exactly one worker, the actor becomes ALIVE.
    create_actor(&cluster, "actor1", 1, true);
    let w1 = cx.wait_workers(&cluster, &autoscaler, 1, minute);
    assert!(
        w1[0].starts_with("raycluster-autoscaler-small-group-worker-"),
        "pod name as KubeRay's: {w1:?}"
    );
    let s = cx.snapshot();
    let node = s.node_for_pod(&w1[0]).expect("node");
    assert_eq!(node.node_type, "small-group");

    // actor2 → a second worker.
    create_actor(&cluster, "actor2", 1, true);
    let w2 = cx.wait_workers(&cluster, &autoscaler, 2, minute);
    assert!(w2.contains(&w1[0]));
    assert!(actor_alive(&cluster, "actor1") && actor_alive(&cluster, "actor2"));

    // Kill actor1 → after the 5 s idle timeout exactly one worker is drained and stopped.
    kill_actor(&cluster, "actor1");
    let left = cx.wait_workers(&cluster, &autoscaler, 1, minute);
    assert!(
        actor_alive(&cluster, "actor2"),
        "actor2 must survive the scale-down"
    );
    // It stays at one (the busy node is never drained).
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(workers(&cx.snapshot()), left, "{}", autoscaler.log());
    assert!(
        autoscaler.log().contains("terminate"),
        "{}",
        autoscaler.log()
    );

    // Kill actor2 → back to zero workers.
    kill_actor(&cluster, "actor2");
    cx.wait_workers(&cluster, &autoscaler, 0, minute);

    // A 2-CPU actor fits no worker type: no worker starts, and it is reported infeasible.
    create_actor(&cluster, "big", 2, false);
    let infeasible = poll(Duration::from_secs(30), Duration::from_millis(500), || {
        let st = cx.rt.block_on(cx.gcs.get_cluster_status()).ok()?;
        let a = st.autoscaling_state?;
        a.infeasible_resource_requests
            .iter()
            .any(|r| r.resources_bundle.get("CPU") == Some(&2.0))
            .then_some(())
    });
    assert!(infeasible.is_some(), "{}", autoscaler.log());
    std::thread::sleep(Duration::from_secs(5));
    assert!(workers(&cx.snapshot()).is_empty(), "{}", autoscaler.log());
    let status = cluster.ray_status();
    assert!(status.contains("Autoscaler status"), "{status}");

    // Clean exit stops exactly the workers it started.
    let code = autoscaler.stop().expect("autoscaler exits on SIGTERM");
    assert!(code.success(), "{code:?}\n{}", autoscaler.log());
}

#[test]
fn strict_spread_placement_group_and_request_resources_scale_out() {
    let Some(cluster) = RayCluster::start_head() else {
        return;
    };
    let rt = rt();
    let gcs = rt
        .block_on(GcsClient::connect(
            &cluster.gcs_address(),
            GcsOptions::default(),
        ))
        .expect("connect");
    let mut cx = Ctx { rt, gcs };
    let autoscaler = Autoscaler::start(&cluster, 5);
    let minutes = Duration::from_secs(120);

    // 3 STRICT_SPREAD bundles of 1 CPU → three workers, and the group gets placed.
    cluster.python(
        r#"
import ray
from ray.util.placement_group import placement_group
ray.init()
pg = placement_group([{"CPU": 1}] * 3, strategy="STRICT_SPREAD", lifetime="detached", name="pg3")
assert pg.wait(timeout_seconds=240)
"#,
        Duration::from_secs(300),
    );
    cx.wait_workers(&cluster, &autoscaler, 3, minutes);

    // request_resources(num_cpus=4) → a fourth worker, and they stay while the request stands
    // (longer than the 5 s idle timeout).
    cluster.python(
        r#"
import ray
from ray.autoscaler.sdk import request_resources
ray.init()
request_resources(num_cpus=4)
"#,
        Duration::from_secs(120),
    );
    let four = cx.wait_workers(&cluster, &autoscaler, 4, minutes);
    std::thread::sleep(Duration::from_secs(10));
    let mut now = workers(&cx.snapshot());
    let mut expected = four.clone();
    now.sort();
    expected.sort();
    assert_eq!(now, expected, "{}", autoscaler.log());
}

/// A TCP proxy on 127.0.0.1 that can be cut (all connections dropped, new ones refused).
struct Proxy {
    port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Proxy {
    fn start(target: String) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (cut2, conns2) = (cut.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if cut2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(&target) else {
                    continue;
                };
                let pairs = [
                    (client.try_clone(), server.try_clone()),
                    (server.try_clone(), client.try_clone()),
                ];
                if let Ok(mut v) = conns2.lock() {
                    v.push(client);
                    v.push(server);
                }
                for (from, to) in pairs {
                    if let (Ok(mut from), Ok(mut to)) = (from, to) {
                        std::thread::spawn(move || {
                            let _ = std::io::copy(&mut from, &mut to);
                            let _ = to.shutdown(std::net::Shutdown::Both);
                        });
                    }
                }
            }
        });
        Proxy { port, cut, conns }
    }

    fn set_cut(&self, on: bool) {
        self.cut.store(on, std::sync::atomic::Ordering::SeqCst);
        if on && let Ok(mut v) = self.conns.lock() {
            for c in v.drain(..) {
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

#[test]
fn gcs_unreachable_means_no_scale_down() {
    let Some(cluster) = RayCluster::start_head() else {
        return;
    };
    let rt = rt();
    let gcs = rt
        .block_on(GcsClient::connect(
            &cluster.gcs_address(),
            GcsOptions::default(),
        ))
        .expect("connect");
    let mut cx = Ctx { rt, gcs };
    let proxy = Proxy::start(cluster.gcs_address());
    let autoscaler = Autoscaler::start_via(&cluster, 3, &format!("127.0.0.1:{}", proxy.port));
    let minute = Duration::from_secs(60);

    create_actor(&cluster, "a", 1, true);
    let w = cx.wait_workers(&cluster, &autoscaler, 1, minute);
    // Cut raygate off from the GCS, then make the worker idle: it must stay.
    proxy.set_cut(true);
    kill_actor(&cluster, "a");
    std::thread::sleep(Duration::from_secs(15));
    assert_eq!(workers(&cx.snapshot()), w, "{}", autoscaler.log());
    assert!(
        autoscaler.log().contains("GCS unavailable, not scaling"),
        "{}",
        autoscaler.log()
    );
    // GCS back: the idle worker is drained and stopped.
    proxy.set_cut(false);
    cx.wait_workers(&cluster, &autoscaler, 0, minute);
}
