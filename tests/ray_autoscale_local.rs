//! `raygate autoscale local` against a real Ray 2.60.0 head on 127.0.0.1: the seed's quick start
//! (detached actors scale a 1-CPU worker group up and, after the idle timeout, down again), an
//! infeasible 2-CPU actor, a STRICT_SPREAD placement group and `request_resources`.
//!
//! Skipped when the Ray venv is missing, except under `CI=true` (then they fail).

#[path = "support/ray.rs"]
mod ray;

use ray::{Gcs, LocalAutoscaler, RayCluster, live_workers as workers, poll, quick_start_yaml};
use std::time::Duration;

const NS: &str = "default_namespace";

fn start(cluster: &RayCluster, idle_timeout_s: u32) -> LocalAutoscaler {
    start_via(cluster, idle_timeout_s, &cluster.gcs_address())
}

/// raygate talks to the GCS at `gcs` (e.g. a proxy); its workers join the real GCS.
fn start_via(cluster: &RayCluster, idle_timeout_s: u32, gcs: &str) -> LocalAutoscaler {
    let yaml = quick_start_yaml("raycluster-autoscaler", idle_timeout_s, 10);
    cluster.autoscale_local(&yaml, gcs)
}

/// Waits until Ray has exactly `n` live workers; returns their pod names.
fn wait_workers(
    gcs: &mut Gcs,
    cluster: &RayCluster,
    a: &LocalAutoscaler,
    n: usize,
    within: Duration,
) -> Vec<String> {
    let s = gcs.wait_for(
        within,
        &format!("{n} live worker(s)"),
        |s| workers(s).len() == n,
        &|| format!("--- autoscaler ---\n{}\n{}", a.log(), cluster.logs()),
    );
    workers(&s)
}

fn create_actor(cluster: &RayCluster, name: &str, cpus: u32, wait_alive: bool) {
    cluster.create_actor(NS, name, cpus, wait_alive);
}

fn actor_alive(cluster: &RayCluster, name: &str) -> bool {
    cluster.actor_alive(NS, name)
}

fn kill_actor(cluster: &RayCluster, name: &str) {
    cluster.kill_actor(NS, name)
}

#[test]
fn seed_quick_start_scales_up_per_actor_and_down_after_idle_timeout() {
    let Some(cluster) = RayCluster::start_head() else {
        return;
    };
    let mut cx = Gcs::connect(&cluster);
    let mut autoscaler = start(&cluster, 5);
    let minute = Duration::from_secs(60);

    // No demand: no worker.
    std::thread::sleep(Duration::from_secs(3));
    assert!(workers(&cx.snapshot()).is_empty(), "{}", autoscaler.log());

    // actor1 → exactly one worker, the actor becomes ALIVE.
    create_actor(&cluster, "actor1", 1, true);
    let w1 = wait_workers(&mut cx, &cluster, &autoscaler, 1, minute);
    assert!(
        w1[0].starts_with("raycluster-autoscaler-small-group-worker-"),
        "pod name as KubeRay's: {w1:?}"
    );
    let s = cx.snapshot();
    let node = s.node_for_pod(&w1[0]).expect("node");
    assert_eq!(node.node_type, "small-group");

    // actor2 → a second worker.
    create_actor(&cluster, "actor2", 1, true);
    let w2 = wait_workers(&mut cx, &cluster, &autoscaler, 2, minute);
    assert!(w2.contains(&w1[0]));
    assert!(actor_alive(&cluster, "actor1") && actor_alive(&cluster, "actor2"));

    // Kill actor1 → after the 5 s idle timeout exactly one worker is drained and stopped.
    kill_actor(&cluster, "actor1");
    let left = wait_workers(&mut cx, &cluster, &autoscaler, 1, minute);
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
    wait_workers(&mut cx, &cluster, &autoscaler, 0, minute);

    // A 2-CPU actor fits no worker type: no worker starts, and it is reported infeasible.
    create_actor(&cluster, "big", 2, false);
    let infeasible = poll(Duration::from_secs(30), Duration::from_millis(500), || {
        let a = cx.reported()?;
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
    let mut cx = Gcs::connect(&cluster);
    let autoscaler = start(&cluster, 5);
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
    wait_workers(&mut cx, &cluster, &autoscaler, 3, minutes);

    // request_resources(num_cpus=4) → a fourth worker, and they stay while the request stands
    // (longer than the 5 s idle timeout).
    cluster.request_resources(4);
    let four = wait_workers(&mut cx, &cluster, &autoscaler, 4, minutes);
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
    let mut cx = Gcs::connect(&cluster);
    let proxy = Proxy::start(cluster.gcs_address());
    let autoscaler = start_via(&cluster, 3, &format!("127.0.0.1:{}", proxy.port));
    let minute = Duration::from_secs(60);

    create_actor(&cluster, "a", 1, true);
    let w = wait_workers(&mut cx, &cluster, &autoscaler, 1, minute);
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
    wait_workers(&mut cx, &cluster, &autoscaler, 0, minute);
}
