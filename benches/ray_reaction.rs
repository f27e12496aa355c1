//! Reaction time of `raygate autoscale local` with a real Ray 2.60.0 head on 127.0.0.1: from a
//! detached 1-CPU actor's creation (the driver's `.remote()` returning) to the scale-up decision
//! being applied (raygate's "started worker" log line, millisecond timestamps, same clock).
//!
//! Run: `RAYGATE_RAY_VENV=$(scripts/ray-venv.sh) cargo bench --bench ray_reaction [-- RUNS] [ray]`
//! (default 10 runs). Prints each latency and p50/p90/max. Each run waits until the actor is
//! ALIVE and Ray's view has settled before the next actor, so every run measures a fresh demand.
//!
//! With `ray`: the same scenario under **Ray's own autoscaler** — `ray start --head` with its
//! monitor (autoscaler v1, Ray's default, `AUTOSCALER_UPDATE_INTERVAL_S` 5 s) and the
//! `fake_multinode` provider, which starts worker raylets on this machine; the decision time is
//! the monitor's `StandardAutoscaler: Queue 1 new nodes for launch` log line.

#[path = "../tests/support/ray.rs"]
mod ray;

use std::time::{Duration, Instant};

/// Parses `YYYY-MM-DD HH:MM:SS.mmm` (UTC) into Unix milliseconds.
fn parse_ts(line: &str) -> Option<i64> {
    let (date, rest) = line.split_once(' ')?;
    let time = rest.get(..12)?;
    let d: Vec<i64> = date.split('-').filter_map(|x| x.parse().ok()).collect();
    let (hms, ms) = time.split_once('.')?;
    let t: Vec<i64> = hms.split(':').filter_map(|x| x.parse().ok()).collect();
    if d.len() != 3 || t.len() != 3 {
        return None;
    }
    let (y, m, day) = (d[0], d[1], d[2]);
    // Days from civil (Howard Hinnant).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2]) * 1000) + ms.parse::<i64>().ok()?)
}

/// Ray's own autoscaler on the same shape: a 0-CPU head and a 1-CPU worker type, max 50.
const FAKE_MULTINODE: &str = r#"cluster_name: bench
max_workers: 50
upscaling_speed: 1.0
idle_timeout_minutes: 10
provider:
  type: fake_multinode
  gcs_address: "{GCS_ADDRESS}"
  use_node_id_as_ip: true
  disable_node_updaters: true
  disable_launch_config_check: true
available_node_types:
  ray.head.default:
    resources: {CPU: 0}
    node_config: {}
    max_workers: 0
  small-group:
    resources: {CPU: 1}
    node_config: {}
    min_workers: 0
    max_workers: 50
head_node_type: ray.head.default
auth: {ssh_user: ubuntu}
docker: {}
file_mounts: {}
cluster_synced_files: []
file_mounts_sync_continuously: false
rsync_exclude: []
rsync_filter: []
initialization_commands: []
setup_commands: []
head_setup_commands: []
worker_setup_commands: []
head_start_ray_commands: []
worker_start_ray_commands: []
"#;

/// Parses Python logging's `YYYY-MM-DD HH:MM:SS,mmm` (the machine runs in UTC).
fn parse_py_ts(line: &str) -> Option<i64> {
    parse_ts(&line.get(..23)?.replacen(',', ".", 1))
}

/// Creates the detached 1-CPU actor `a<i>` and waits until it is ALIVE; returns when its
/// `.remote()` returned (Unix ms).
fn actor_run(cluster: &ray::RayCluster, i: usize) -> i64 {
    cluster
        .create_actor("bench", &format!("a{i}"), 1, true)
        .lines()
        .find_map(|l| l.strip_prefix("CREATED "))
        .and_then(|v| v.trim().parse().ok())
        .expect("creation time")
}

fn report(who: &str, mut lat: Vec<i64>) {
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "{who} reaction (actor created -> scale-up decision), {} runs: p50 {} ms, p90 {} ms, max {} ms",
        lat.len(),
        pct(0.5),
        pct(0.9),
        lat[lat.len() - 1]
    );
}

fn ray_own(runs: usize) {
    let Some(cluster) = ray::RayCluster::start_head_with(Some(FAKE_MULTINODE)) else {
        eprintln!("no Ray venv: set RAYGATE_RAY_VENV (scripts/ray-venv.sh)");
        std::process::exit(2);
    };
    let monitor_log = cluster
        .temp
        .path()
        .join("r/session_latest/logs/monitor.log");
    let mut lat = Vec::new();
    for i in 0..runs {
        let decisions = |text: &str| -> Vec<i64> {
            text.lines()
                .filter(|l| l.contains("new nodes for launch"))
                .filter_map(parse_py_ts)
                .collect()
        };
        let before = decisions(&std::fs::read_to_string(&monitor_log).unwrap_or_default()).len();
        let created = actor_run(&cluster, i);
        let all = decisions(&std::fs::read_to_string(&monitor_log).unwrap_or_default());
        let decided = *all
            .get(before)
            .unwrap_or_else(|| panic!("no launch decision in {}", monitor_log.display()));
        let ms = decided - created;
        println!("run {i}: {ms} ms");
        lat.push(ms);
        std::thread::sleep(Duration::from_secs(4));
    }
    report(
        "Ray 2.60.0 own autoscaler (v1 monitor, fake_multinode)",
        lat,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; `cargo test --all-targets` does not: then one smoke run.
    let bench = args.iter().any(|a| a == "--bench");
    let runs: usize = if bench {
        args.iter().find_map(|a| a.parse().ok()).unwrap_or(10)
    } else {
        1
    };
    if bench && args.iter().any(|a| a == "ray") {
        ray_own(runs);
        return;
    }
    let Some(cluster) = ray::RayCluster::start_head() else {
        if bench {
            eprintln!("no Ray venv: set RAYGATE_RAY_VENV (scripts/ray-venv.sh)");
            std::process::exit(2);
        }
        return; // skipped (ray::venv() fails instead under CI=true)
    };
    let mut autoscaler = cluster.autoscale_local(
        &ray::quick_start_yaml("bench", 600, 50),
        &cluster.gcs_address(),
    );
    let log = autoscaler.log.clone();
    std::thread::sleep(Duration::from_secs(3));

    let mut lat = Vec::new();
    for i in 0..runs {
        let before = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("started worker")
            .count();
        let created = actor_run(&cluster, i);
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let started = text
            .lines()
            .filter(|l| l.contains("started worker"))
            .nth(before)
            .and_then(parse_ts)
            .expect("a started-worker line for this run");
        let ms = started - created;
        println!("run {i}: {ms} ms");
        lat.push(ms);
        // Let the new node's join settle (raygate defers launches 3 s after a join).
        let settle = Instant::now();
        while settle.elapsed() < Duration::from_secs(4) {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // It stops its workers; dropping it kills what is left of its process group.
    autoscaler.stop();
    drop(autoscaler);
    report("raygate autoscale local", lat);
}
