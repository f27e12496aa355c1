//! Autoscaler planning benchmark (harness = false).
//!
//! Generates the benchmark cases (nodes × demands, mixed CPU/GPU shapes, four worker groups)
//! as scenario JSON files — the same files `scripts/bench-ray-scheduler.py` feeds to Ray's own
//! v2 `ResourceDemandScheduler.schedule` and v1 `get_nodes_to_launch` — then times
//! `raygate::autoscale::plan` on each (single thread) and writes the launch counts.
//!
//! cargo bench --bench autoscale -- [--cases-dir DIR] [--results FILE] [--only NAME]

use raygate::autoscale::plan;
use raygate::autoscale::scenario::parse_scenario;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The five sizes plus two mid sizes where Ray v2 still finishes within the timeout,
/// and two "distinct" variants where every node has a different available memory (no two
/// nodes are alike, the worst case for grouping identical nodes).
const CASES: &[(usize, u64, bool)] = &[
    (10, 100, false),
    (100, 1_000, false),
    (200, 2_000, false),
    (300, 3_000, false),
    (1_000, 2_000, false),
    (1_000, 10_000, false),
    (10_000, 100_000, false),
    (1_000, 10_000, true),
    (10_000, 100_000, true),
];

/// (name, CPU, GPU, memory GiB, share of existing nodes in percent)
const GROUPS: &[(&str, u32, u32, u64, usize)] = &[
    ("cpu-small", 4, 0, 16, 40),
    ("cpu-large", 16, 0, 64, 30),
    ("gpu-small", 8, 1, 32, 20),
    ("gpu-large", 32, 4, 128, 10),
];

/// (resources, share of demands in percent)
fn shapes() -> Vec<(Value, u64)> {
    let gib = 1u64 << 30;
    vec![
        (json!({"CPU": 1}), 40),
        (json!({"CPU": 2}), 20),
        (json!({"CPU": 1, "GPU": 1}), 8),
        (json!({"CPU": 4, "GPU": 1}), 4),
        (json!({"CPU": 8}), 18),
        (json!({"CPU": 2, "memory": 4 * gib}), 8),
        (json!({"GPU": 2}), 2),
    ]
}

/// The benchmark case: a RayCluster with four groups, `n` running workers in a few
/// availability states, and `m` pending demands over seven shapes (grouped by count).
fn make_case(n: usize, m: u64, distinct: bool) -> Value {
    let gib = 1u64 << 30;
    let max = (n as u64 + m).max(10);
    let groups: Vec<Value> = GROUPS
        .iter()
        .map(|(name, cpu, gpu, mem, _)| {
            let mut rsp = json!({"num-cpus": cpu.to_string(), "memory": (mem * gib).to_string()});
            if *gpu > 0 {
                rsp["num-gpus"] = json!(gpu.to_string());
            }
            json!({"groupName": name, "replicas": 0, "minReplicas": 0, "maxReplicas": max,
                   "rayStartParams": rsp,
                   "template": {"spec": {"containers": [{"name": "ray-worker", "image": "rayproject/ray:2.60.0"}]}}})
        })
        .collect();
    let mut pods = Vec::with_capacity(n);
    let mut nodes = vec![json!({"pod": "rc-head", "total": {"CPU": 0}, "available": {"CPU": 0}})];
    let mut counts = vec![0usize; GROUPS.len()];
    for i in 0..n {
        // deterministic mix by share
        let slot = i % 100;
        let mut acc = 0;
        let mut g = 0;
        for (gi, grp) in GROUPS.iter().enumerate() {
            acc += grp.4;
            if slot < acc {
                g = gi;
                break;
            }
        }
        let (name, cpu, gpu, mem, _) = GROUPS[g];
        counts[g] += 1;
        let pod = format!("{name}-{i:06}");
        // availability states: busy, half free, one CPU free, free (idle 10 s, below the timeout)
        let state = (i / 7) % 4;
        let (acpu, agpu, amem, idle) = match state {
            0 => (0, 0, 0, 0.0),
            1 => (cpu / 2, gpu / 2, mem / 2, 0.0),
            2 => (1, 0, mem / 4, 0.0),
            _ => (cpu, gpu, mem, 10.0),
        };
        let mut total = json!({"CPU": cpu, "memory": mem * gib});
        let amem_bytes = if distinct {
            (amem * gib).saturating_sub(i as u64 * 4096)
        } else {
            amem * gib
        };
        let mut avail = json!({"CPU": acpu, "memory": amem_bytes});
        if gpu > 0 {
            total["GPU"] = json!(gpu);
            avail["GPU"] = json!(agpu);
        }
        pods.push(json!({"name": pod, "group": name}));
        nodes.push(json!({"pod": pod, "total": total, "available": avail, "idleSeconds": idle}));
    }
    let mut groups = groups;
    for (gi, c) in counts.iter().enumerate() {
        groups[gi]["replicas"] = json!(c);
    }
    let shapes = shapes();
    let mut demands = Vec::new();
    let mut given = 0;
    for (i, (res, pct)) in shapes.iter().enumerate() {
        let c = if i + 1 == shapes.len() {
            m - given
        } else {
            m * pct / 100
        };
        given += c;
        if c > 0 {
            demands.push(json!({"resources": res, "count": c}));
        }
    }
    json!({
        "rayCluster": {"apiVersion": "ray.io/v1", "kind": "RayCluster",
                       "metadata": {"name": "bench", "namespace": "default"},
                       "spec": {"enableInTreeAutoscaling": true, "autoscalerOptions": {"version": "v2"},
                                "headGroupSpec": {"rayStartParams": {"num-cpus": "0"},
                                                  "template": {"spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.60.0"}]}}},
                                "workerGroupSpecs": groups}},
        "options": {"maxConcurrentLaunches": u32::MAX},
        "pods": pods,
        "ray": {"nodes": nodes, "demands": demands}
    })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut cases_dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/autoscale-bench"
    ));
    if let Ok(t) = std::env::var("CARGO_TARGET_DIR") {
        cases_dir = PathBuf::from(t).join("autoscale-bench");
    }
    let mut results: Option<PathBuf> = None;
    let mut only: Option<String> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--cases-dir" => cases_dir = args.next().map(PathBuf::from).unwrap_or(cases_dir),
            "--results" => results = args.next().map(PathBuf::from),
            "--only" => only = args.next(),
            _ => {} // `cargo bench` passes --bench
        }
    }
    std::fs::create_dir_all(&cases_dir).expect("create cases dir");
    let results = results.unwrap_or_else(|| cases_dir.join("raygate.json"));
    let mut out = Vec::new();
    println!(
        "{:>7} x {:>7}  {:>10} {:>10} {:>10}  launches",
        "nodes", "demands", "min", "median", "max"
    );
    for &(n, m, distinct) in CASES {
        let name = if distinct {
            format!("{n}x{m}-distinct")
        } else {
            format!("{n}x{m}")
        };
        if only.as_ref().is_some_and(|o| o != &name) {
            continue;
        }
        let case = make_case(n, m, distinct);
        let path = cases_dir.join(format!("{name}.json"));
        let text = serde_json::to_string(&case).expect("serialize");
        std::fs::write(&path, &text).expect("write case");
        let input = parse_scenario(&path.display().to_string(), &text, &|_| {
            Err("no file".into())
        })
        .expect("parse case");
        // warm up, then time
        let first = plan(&input);
        let runs = if m >= 100_000 { 10 } else { 30 };
        let mut times: Vec<Duration> = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            let p = plan(&input);
            times.push(t.elapsed());
            assert_eq!(p, first, "plan is not deterministic");
        }
        times.sort();
        let launches: serde_json::Map<String, Value> = first
            .groups
            .iter()
            .filter(|g| g.launch + g.deferred.total() > 0)
            .map(|g| (g.name.clone(), json!(g.launch + g.deferred.total())))
            .collect();
        // unplaced demand: infeasible plus capped by maxReplicas (one figure, as before the split)
        let infeasible: u64 = first.infeasible.iter().map(|d| d.count).sum::<u64>()
            + first.capped.iter().map(|d| d.count).sum::<u64>();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{name:>24}  {:>8.3}ms {:>8.3}ms {:>8.3}ms  {} infeasible {infeasible}",
            ms(times[0]),
            ms(times[runs / 2]),
            ms(times[runs - 1]),
            Value::Object(launches.clone())
        );
        out.push(json!({"case": name, "nodes": n, "demands": m, "min_ms": ms(times[0]),
                        "median_ms": ms(times[runs / 2]), "max_ms": ms(times[runs - 1]), "runs": runs,
                        "launch": launches, "infeasible": infeasible}));
    }
    std::fs::write(&results, serde_json::to_string_pretty(&out).expect("json"))
        .expect("write results");
    println!(
        "cases: {}\nresults: {}",
        cases_dir.display(),
        results.display()
    );
}
