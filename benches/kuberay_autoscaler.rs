//! Ray's Python autoscaler v2 vs `raygate autoscale sidecar`, each as the `autoscaler` container
//! KubeRay's real operator (tools/kuberay, ray-operator v1.6.2) injects into the head Pod, on the
//! harness of tests/e2e_kuberay_sidecar.rs (real kube-apiserver + etcd, real Ray 2.60.0 head and
//! workers run by the kubelet stand-in from the Pods KubeRay creates).
//!
//! Same cluster (KubeRay's `ray-cluster.autoscaler.yaml`, `idleTimeoutSeconds` 2), same actor (a
//! detached 1-CPU actor), in one run, one autoscaler after the other:
//!
//! * Ray: the sample with `autoscalerOptions.version: v2` — `ray kuberay-autoscaler` from the
//!   ray 2.60.0 venv;
//! * raygate: `autoscalerOptions.image` is an image whose `ray` is the release raygate binary —
//!   KubeRay's same `ray kuberay-autoscaler ...` command runs `raygate autoscale sidecar`.
//!
//! Per autoscaler, RUNS times: create the actor → the worker Pod KubeRay creates is seen by a
//! watch (the reaction: from the driver's `.remote()` returning, its `CREATED <unix ms>` line, to
//! the Pod's ADDED event) → the actor runs on it → kill the actor → wait until the Pod is deleted
//! and its Ray node gone (zero workers) before the next run.
//!
//! Memory and CPU come from `/proc` of the autoscaler container's process tree (the container's
//! process and every descendant), sampled every 100 ms from the first autoscaling report to the
//! end of the last run: peak of the summed VmRSS, the main process's VmHWM, and utime+stime
//! (each process's last sample; the total since the container started and the average over the
//! window).
//!
//! Run: `RAYGATE_ENVTEST_BIN=$(bash scripts/envtest-bins.sh) RAYGATE_KUBERAY_BIN=$(bash
//! scripts/kuberay-bin.sh) RAYGATE_RAY_VENV=$(bash scripts/ray-venv.sh) cargo bench --bench
//! kuberay_autoscaler [-- RUNS]` (default 5, at most 20); `RAYGATE_TEST_BIN=PATH` runs that raygate
//! binary as the image's instead of the bench build's. Every wait is bounded (the harness
//! panics with the stand-in's journal and the operator's log).

#[path = "../tests/support/controlplane.rs"]
mod controlplane;
#[path = "../tests/support/kubelet.rs"]
mod kubelet;
#[path = "../tests/support/kuberay.rs"]
mod kuberay;
#[path = "../tests/support/ray.rs"]
mod ray;
mod support;

use kuberay::{Harness, RAY_NS};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const RAYGATE_IMAGE: &str = "ghcr.io/raygate/raygate:0.1.0";
const IDLE_TIMEOUT_S: u64 = 2;

#[derive(Clone, Copy, PartialEq)]
enum Autoscaler {
    Ray,
    Raygate,
}

impl Autoscaler {
    fn name(self) -> &'static str {
        match self {
            Autoscaler::Ray => "Ray autoscaler v2 (python)",
            Autoscaler::Raygate => "raygate autoscale sidecar",
        }
    }
}

/// What the `/proc` sampler saw of one process tree.
#[derive(Default, Clone)]
struct Usage {
    /// Peak of the tree's summed VmRSS, KiB.
    peak_rss_kib: u64,
    /// The root's VmHWM at the last sample, KiB.
    root_hwm_kib: u64,
    /// utime+stime per pid, seconds, as last sampled.
    cpu: BTreeMap<u32, f64>,
    /// CPU of the tree when the window opened, seconds.
    cpu_at_start: f64,
    /// Distinct command lines of the tree.
    cmds: BTreeMap<u32, String>,
    samples: u64,
}

impl Usage {
    fn cpu_total(&self) -> f64 {
        self.cpu.values().sum()
    }
}

/// The pids of `root` and all its descendants now.
fn process_tree(root: u32) -> Vec<u32> {
    let mut parent: Vec<(u32, u32)> = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // `pid (comm) state ppid ...`: the fields after the last ")".
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parent.push((pid, ppid));
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parent.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    tree.retain(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
    tree
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .split('\0')
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Samples the tree under `root` every 100 ms until `stop`.
fn sample(root: u32, stop: Arc<AtomicBool>, out: Arc<Mutex<Usage>>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut first = true;
        while !stop.load(Ordering::Relaxed) {
            let tree = process_tree(root);
            let rss: u64 = tree
                .iter()
                .map(|p| support::proc_status_kib(*p, "VmRSS:"))
                .sum();
            let hwm = support::proc_status_kib(root, "VmHWM:");
            if let Ok(mut u) = out.lock() {
                u.peak_rss_kib = u.peak_rss_kib.max(rss);
                if hwm > 0 {
                    u.root_hwm_kib = hwm;
                }
                for p in &tree {
                    let c = support::cpu_secs(*p);
                    if c > 0.0 || !u.cpu.contains_key(p) {
                        u.cpu.insert(*p, c);
                    }
                    if !u.cmds.contains_key(p) {
                        let c = cmdline(*p);
                        u.cmds.insert(*p, c);
                    }
                }
                if first {
                    u.cpu_at_start = u.cpu_total();
                    first = false;
                }
                u.samples += 1;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// When the driver's `.remote()` returned (its `CREATED <unix ms>` line), as an `Instant`.
fn created_at(driver_out: &str) -> Instant {
    let ms: u64 = driver_out
        .lines()
        .find_map(|l| l.strip_prefix("CREATED "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no CREATED line in the driver's output:\n{driver_out}"));
    let ago = now_unix_ms().saturating_sub(ms);
    Instant::now() - Duration::from_millis(ago)
}

struct Measured {
    who: Autoscaler,
    reactions: Vec<Duration>,
    usage: Usage,
    window: Duration,
    load: String,
}

fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2
    }
}

fn measure(who: Autoscaler, runs: usize) -> Measured {
    // RAYGATE_TEST_BIN: another raygate binary as the image's, e.g. the one
    // scripts/dockerfile-replay.sh builds (the image's own) with the bench built in the dev
    // profile (`cargo bench --profile dev`), saving a second release build.
    let raygate = std::env::var_os("RAYGATE_TEST_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_raygate").into());
    let image_dir = tempfile::tempdir().expect("tempdir");
    let images = match who {
        Autoscaler::Ray => vec![],
        Autoscaler::Raygate => vec![(
            RAYGATE_IMAGE.to_string(),
            kubelet::Image::with_ray_program(&raygate, image_dir.path()),
        )],
    };
    let ns = match who {
        Autoscaler::Ray => "bench-kuberay-ray",
        Autoscaler::Raygate => "bench-kuberay-raygate",
    };
    let mut h = Harness::start(ns, images, &[]).unwrap_or_else(|| {
        eprintln!("no Ray venv: set RAYGATE_RAY_VENV (scripts/ray-venv.sh)");
        std::process::exit(2)
    });
    let (mut rc, cm) = h.sample(IDLE_TIMEOUT_S);
    match who {
        Autoscaler::Ray => {
            rc["spec"]["autoscalerOptions"]["version"] = json!("v2");
            h.clears_workers_to_delete = false;
        }
        Autoscaler::Raygate => {
            rc["spec"]["autoscalerOptions"]["image"] = json!(RAYGATE_IMAGE);
            rc["spec"]["autoscalerOptions"]["env"] = json!([{
                "name": "RAYGATE_ADMIN_LISTEN",
                "value": format!("127.0.0.1:{}", controlplane::pick_port()),
            }]);
        }
    }
    h.create(&rc, &cm);
    let (head, driver, mut gcs) = h.head();
    let autoscaler = h
        .kubelet
        .processes()
        .into_iter()
        .find(|p| p.pod == head && p.container == "autoscaler")
        .expect("the autoscaler container ran");
    h.wait(120, "the autoscaler's first ReportAutoscalingState", || {
        gcs.reported().filter(|s| s.autoscaler_state_version > 0)
    });
    h.phase(&format!("{}: reporting to the GCS", who.name()));
    let stop = Arc::new(AtomicBool::new(false));
    let usage = Arc::new(Mutex::new(Usage::default()));
    let sampler = sample(autoscaler.pid, stop.clone(), usage.clone());
    let t0 = Instant::now();
    let mut reactions = Vec::new();
    for i in 0..runs {
        let before = h.record().created.len();
        let out = driver.create_actor(RAY_NS, &format!("bench-{i}"), 1, false);
        let at = created_at(&out);
        let (pod, seen) = h.wait(120, "the worker Pod for the actor", || {
            h.record().created.get(before).cloned()
        });
        let took = seen.saturating_duration_since(at);
        h.phase(&format!(
            "{} run {}: actor → Pod {pod} in {} ms",
            who.name(),
            i + 1,
            took.as_millis()
        ));
        reactions.push(took);
        gcs.wait_for(
            Duration::from_secs(180),
            "the worker's Ray node",
            |s| ray::live_workers(s) == vec![pod.clone()],
            &|| h.context(),
        );
        driver.kill_actor(RAY_NS, &format!("bench-{i}"));
        h.wait(180, "zero workers again", || {
            (h.workers().is_empty() && ray::live_workers(&gcs.snapshot()).is_empty()).then_some(())
        });
    }
    let window = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");
    let usage = usage.lock().expect("usage").clone();
    let restarts = h
        .kubelet
        .processes()
        .iter()
        .filter(|p| p.pod == head && p.container == "autoscaler")
        .count();
    assert_eq!(restarts, 1, "the autoscaler container never restarted");
    let seen = kuberay::Proofs { h: &h }.ray_autoscaler_processes();
    match who {
        Autoscaler::Ray => assert!(!seen.is_empty(), "Ray's autoscaler ran"),
        Autoscaler::Raygate => {
            assert!(seen.is_empty(), "no Ray autoscaler with raygate: {seen:#?}");
            let exe = std::fs::read_link(format!("/proc/{}/exe", autoscaler.pid));
            assert_eq!(
                exe.ok().as_deref(),
                Some(raygate.as_path()),
                "the container is raygate"
            );
        }
    }
    Measured {
        who,
        reactions,
        usage,
        window,
        load: support::loadavg(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("kuberay_autoscaler: benchmark only (cargo bench --bench kuberay_autoscaler)");
        return;
    }
    let runs: usize = args
        .iter()
        .find_map(|a| a.parse().ok())
        .unwrap_or(5)
        .clamp(1, 20);
    println!(
        "kuberay_autoscaler: {runs} runs per autoscaler, KubeRay ray-operator v1.6.2, ray 2.60.0, \
         idleTimeoutSeconds {IDLE_TIMEOUT_S}; load {}",
        support::loadavg()
    );
    let results: Vec<Measured> = [Autoscaler::Ray, Autoscaler::Raygate]
        .into_iter()
        .map(|w| measure(w, runs))
        .collect();
    println!();
    for r in &results {
        let u = &r.usage;
        let ms: Vec<String> = r
            .reactions
            .iter()
            .map(|d| d.as_millis().to_string())
            .collect();
        let window_cpu = u.cpu_total() - u.cpu_at_start;
        println!("{}:", r.who.name());
        println!(
            "  actor → worker Pod: median {} ms, min {} ms, max {} ms (runs: {} ms)",
            median(&r.reactions).as_millis(),
            r.reactions.iter().min().map_or(0, |d| d.as_millis()),
            r.reactions.iter().max().map_or(0, |d| d.as_millis()),
            ms.join(", ")
        );
        println!(
            "  RSS: peak {:.1} MiB (process tree, {} samples), main process VmHWM {:.1} MiB",
            u.peak_rss_kib as f64 / 1024.0,
            u.samples,
            u.root_hwm_kib as f64 / 1024.0
        );
        println!(
            "  CPU: {:.2} s since the container started; {:.2} s in the {:.0} s window ({:.1} % of \
             one core)",
            u.cpu_total(),
            window_cpu,
            r.window.as_secs_f64(),
            100.0 * window_cpu / r.window.as_secs_f64()
        );
        println!("  processes: {:?}", u.cmds.values().collect::<Vec<_>>());
        println!("  load after: {}", r.load);
    }
    let (ray, rg) = (&results[0], &results[1]);
    let (mr, mg) = (median(&ray.reactions), median(&rg.reactions));
    let rss = rg.usage.peak_rss_kib as f64 / 1024.0;
    println!(
        "\nsummary: reaction median raygate {} ms vs Ray {} ms ({:.2}x, target < 0.5x: {}); \
         peak RSS raygate {:.1} MiB vs Ray {:.1} MiB (target < 20 MiB: {})",
        mg.as_millis(),
        mr.as_millis(),
        mg.as_secs_f64() / mr.as_secs_f64(),
        if mg * 2 < mr { "met" } else { "MISSED" },
        rss,
        ray.usage.peak_rss_kib as f64 / 1024.0,
        if rss < 20.0 { "met" } else { "MISSED" },
    );
}
