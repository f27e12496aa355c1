//! `raygate autoscale local` against a real Ray 2.60.0 head on 127.0.0.1: the seed's quick start
//! (detached actors scale a 1-CPU worker group up and, after the idle timeout, down again), an
//! infeasible 2-CPU actor, a STRICT_SPREAD placement group and `request_resources`.
//!
//! Skipped when the Ray venv is missing, except under `CI=true` (then they fail).

#[path = "support/cli.rs"]
mod cli;
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

/// Issue #17 (1): `--timeline FILE.csv` records every iteration of a real run (demand, replicas,
/// pods, the decisions) and writes FILE.svg at exit. The rows' decisions must be the ones the
/// run logged, in order; replicas change only with a decision; the plot's lines and markers are
/// the rows'; demand rises first, replicas and pods follow it up to 4, and fall back to 0 only
/// after the 5 s idle timeout. `RAYGATE_TIMELINE_DOCS=1` also copies the run to
/// docs/img/autoscale-timeline.{csv,svg} (how the docs' plot is made).
#[test]
fn timeline_records_the_runs_decisions_and_plots_them() {
    use raygate::autoscale::timeline::{Axes, parse_csv};
    let Some(cluster) = RayCluster::start_head() else {
        return;
    };
    let mut cx = Gcs::connect(&cluster);
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("timeline.csv");
    let yaml = quick_start_yaml("raycluster-autoscaler", 5, 10);
    let spawned = std::time::Instant::now();
    let mut autoscaler = cluster.autoscale_local_with(
        &yaml,
        &cluster.gcs_address(),
        &["--timeline".as_ref(), csv.as_os_str()],
    );
    let minute = Duration::from_secs(60);
    std::thread::sleep(Duration::from_secs(3));
    // three actors at once, a fourth later, then none
    for a in ["t1", "t2", "t3"] {
        create_actor(&cluster, a, 1, false);
    }
    wait_workers(&mut cx, &cluster, &autoscaler, 3, minute);
    create_actor(&cluster, "t4", 1, true);
    wait_workers(&mut cx, &cluster, &autoscaler, 4, minute);
    // the plot is rewritten during the run (every 10 s, atomically): a run killed now leaves
    // one with the launches so far, and every read of it parses
    let svg_path = csv.with_extension("svg");
    poll(Duration::from_secs(30), Duration::from_millis(200), || {
        let text = std::fs::read_to_string(&svg_path).ok()?;
        let doc = roxmltree::Document::parse(&text)
            .unwrap_or_else(|e| panic!("a read of the plot during the run: {e}"));
        let launched: u64 = doc
            .descendants()
            .filter_map(|n| n.attribute("data-launch"))
            .filter_map(|a| a.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        (launched >= 4).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "no plot of the 4 launches during the run\n{}",
            autoscaler.log()
        )
    });
    // the run's clock starts after the spawn, so this is at most the CSV time of the first kill
    // plus the binary's start-up
    let kill_t = spawned.elapsed().as_secs_f64();
    for a in ["t1", "t2", "t3", "t4"] {
        kill_actor(&cluster, a);
    }
    wait_workers(&mut cx, &cluster, &autoscaler, 0, Duration::from_secs(90));
    std::thread::sleep(Duration::from_secs(3));
    let code = autoscaler.stop().expect("autoscaler exits on SIGTERM");
    assert!(code.success(), "{code:?}\n{}", autoscaler.log());
    let log = autoscaler.log();
    assert!(
        log.contains(&format!("timeline: {}", svg_path.display())),
        "the log says where the plot is: {log}"
    );

    let text = std::fs::read_to_string(&csv).unwrap();
    let rows = parse_csv("timeline.csv", &text).unwrap();
    assert!(rows.len() >= 10, "{text}");
    assert!(rows.iter().all(|r| r.group == "small-group"), "{text}");
    assert!(rows.windows(2).all(|w| w[0].t_s <= w[1].t_s), "{text}");
    // the decisions the run logged, in order: "small-group: replicas R (launch L, terminate [..])"
    let logged: Vec<(u64, u64, u64)> = log
        .lines()
        .filter_map(|l| {
            l.split("raygate autoscale local: small-group: replicas ")
                .nth(1)
        })
        .map(|rest| {
            let (r, rest) = rest.split_once(" (launch ").unwrap();
            let (l, rest) = rest.split_once(", terminate [").unwrap();
            let names = rest.trim_end_matches("])");
            let n = names.split(',').filter(|s| !s.trim().is_empty()).count();
            (r.parse().unwrap(), l.parse().unwrap(), n as u64)
        })
        .collect();
    let recorded: Vec<(u64, u64, u64)> = rows
        .iter()
        .filter(|r| r.launch > 0 || r.terminate > 0)
        .map(|r| (r.replicas, r.launch, r.terminate))
        .collect();
    assert_eq!(recorded, logged, "timeline vs log:\n{text}\n{log}");
    assert!(recorded.iter().any(|d| d.1 > 0) && recorded.iter().any(|d| d.2 > 0));
    let launched: u64 = rows.iter().map(|r| r.launch).sum();
    assert!(launched >= 4, "{text}");
    // replicas move only with a decision; a launch is seen as demand first and started at once
    for w in rows.windows(2) {
        if w[1].replicas != w[0].replicas {
            assert!(w[1].launch > 0 || w[1].terminate > 0, "{:?}", w[1]);
        }
    }
    for r in rows.iter().filter(|r| r.launch > 0) {
        assert!(r.demand > 0, "launch without demand: {r:?}");
        assert_eq!(r.pods, r.replicas, "pods started with the launch: {r:?}");
    }
    assert_eq!(rows.iter().map(|r| r.pods).max(), Some(4), "{text}");
    // demand rises first; replicas follow it up to 4 and stay while the actors live; they fall
    // back only after the idle timeout (5 s after the kills, 2 s allowed for the start-up)
    let first_demand = rows.iter().find(|r| r.demand > 0).expect("demand").t_s;
    let first_launch = rows.iter().find(|r| r.launch > 0).expect("a launch").t_s;
    assert!(first_demand <= first_launch, "{text}");
    let first_terminate = rows
        .iter()
        .find(|r| r.terminate > 0)
        .expect("a terminate")
        .t_s;
    assert!(
        first_terminate >= kill_t + 5.0 - 2.0,
        "terminated at {first_terminate} s, actors killed at ~{kill_t} s, idle timeout 5 s:\n{text}"
    );
    let before: Vec<u64> = rows
        .iter()
        .filter(|r| r.t_s < first_terminate)
        .map(|r| r.replicas)
        .collect();
    assert_eq!(before.iter().max(), Some(&4), "{text}");
    assert!(
        before.windows(2).all(|w| w[0] <= w[1]),
        "replicas only rise before the kills: {text}"
    );
    assert!(
        rows.iter()
            .filter(|r| r.t_s >= first_terminate)
            .all(|r| r.demand == 0),
        "no demand after the kills: {text}"
    );
    assert_eq!(
        rows.last().map(|r| (r.replicas, r.pods)),
        Some((0, 0)),
        "{text}"
    );

    // the plot written at exit: its lines and markers are the rows'
    let svg = std::fs::read_to_string(&svg_path).expect("timeline.svg written at exit");
    let ax = Axes::of(&rows);
    let points = |series: &str| -> Vec<(f64, f64)> {
        let at = svg
            .find(&format!("data-series=\"{series}\""))
            .unwrap_or_else(|| panic!("no {series} line"));
        let p = &svg[at..];
        let p = &p[p.find("points=\"").unwrap() + 8..];
        p[..p.find('"').unwrap()]
            .split(' ')
            .map(|xy| {
                let (x, y) = xy.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect()
    };
    for (series, value) in [
        (
            "replicas small-group",
            &(|r: &raygate::autoscale::timeline::Row| r.replicas) as &dyn Fn(&_) -> u64,
        ),
        (
            "pods small-group",
            &|r: &raygate::autoscale::timeline::Row| r.pods,
        ),
        ("demand", &|r: &raygate::autoscale::timeline::Row| r.demand),
    ] {
        let pts = points(series);
        // the distinct levels of the step line are the distinct successive values of the rows
        let mut want: Vec<u64> = rows.iter().map(value).collect();
        want.dedup();
        let mut got: Vec<f64> = pts.iter().map(|p| p.1).collect();
        got.dedup();
        let want_px: Vec<f64> = want
            .iter()
            .map(|v| (ax.y(*v) * 10.0).round() / 10.0)
            .collect();
        assert_eq!(got, want_px, "{series}");
        assert!((pts[0].0 - ax.x(rows[0].t_s)).abs() < 0.1);
        assert!((pts.last().unwrap().0 - ax.x(rows.last().unwrap().t_s)).abs() < 0.1);
    }
    assert_eq!(
        svg.matches("data-launch=").count(),
        rows.iter().filter(|r| r.launch > 0).count()
    );
    assert_eq!(
        svg.matches("data-terminate=").count(),
        rows.iter().filter(|r| r.terminate > 0).count()
    );
    // `raygate autoscale timeline` redraws the same plot from the CSV
    let again = dir.path().join("again.svg");
    cli::ok_with_paths(
        &[
            "autoscale",
            "timeline",
            "--title",
            "raygate autoscale local: raycluster-autoscaler",
            "-o",
        ],
        &[&again, &csv],
    );
    assert_eq!(std::fs::read_to_string(&again).unwrap(), svg);

    if std::env::var_os("RAYGATE_TIMELINE_DOCS").is_some() {
        let img = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/img");
        std::fs::create_dir_all(&img).unwrap();
        std::fs::copy(&csv, img.join("autoscale-timeline.csv")).unwrap();
        std::fs::copy(&svg_path, img.join("autoscale-timeline.svg")).unwrap();
    }
}

/// docs/img/autoscale-timeline.svg (shown in docs/autoscaler.md) is the plot of
/// docs/img/autoscale-timeline.csv, a run of the test above with `RAYGATE_TIMELINE_DOCS=1`, and
/// that run scaled up to 4 and back to 0.
#[test]
fn docs_timeline_is_the_plot_of_its_recorded_run() {
    use raygate::autoscale::timeline::{parse_csv, plot_of};
    let img = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/img");
    let csv = std::fs::read_to_string(img.join("autoscale-timeline.csv")).unwrap();
    let rows = parse_csv("autoscale-timeline.csv", &csv).unwrap();
    assert_eq!(rows.iter().map(|r| r.replicas).max(), Some(4));
    assert_eq!(rows.last().map(|r| (r.replicas, r.pods)), Some((0, 0)));
    let svg = std::fs::read_to_string(img.join("autoscale-timeline.svg")).unwrap();
    assert_eq!(
        svg,
        plot_of(rows, "raygate autoscale local: raycluster-autoscaler"),
        "regenerate: raygate autoscale timeline --title 'raygate autoscale local: raycluster-autoscaler' -o docs/img/autoscale-timeline.svg docs/img/autoscale-timeline.csv"
    );
}
