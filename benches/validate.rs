//! End-to-end throughput of `raygate validate`'s code path (read, split, parse with positions,
//! CRD defaults, JSON Schema, rules, positions) over a generated corpus: the 46 sample
//! RayClusters of `../shared/kuberay/samples` repeated into 2,000 files / 20,000 documents.
//! The corpus is generated in a temp dir at bench time (never committed). A second corpus wraps
//! the same 46 cluster specs as RayJobs (`spec.rayClusterSpec`, same file/document counts), so
//! the two throughputs compare the RayJob path (own rules + the embedded spec through every
//! RayCluster rule, prefixed paths) against plain RayClusters on identical cluster content.
//! Five rounds, one run of each corpus per round in alternating order, so both see the same
//! machine load; it prints the best and median of each and the RayJob / RayCluster ratio.
//!
//! Run: `cargo bench --bench validate` (env `RAYGATE_BENCH_THREADS`, default 2;
//! `RAYGATE_BENCH_KEEP=DIR` writes the corpus to DIR and keeps it, for hyperfine / time -v).

use raygate::pipeline::{self, Checker, DocStatus, Input};
use raygate::yaml;
use std::path::{Path, PathBuf};
use std::time::Instant;

const DOCS_PER_FILE: usize = 10;

fn sample_rayclusters() -> Vec<String> {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/kuberay/samples"
    ));
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("samples dir")
        .map(|e| e.expect("entry").path())
        .collect();
    names.sort();
    let mut out = Vec::new();
    for p in names {
        let bytes = std::fs::read(&p).expect("read sample");
        for c in yaml::chunks_of(&bytes) {
            let c = c.expect("utf-8 sample");
            for d in yaml::documents(&c.text, 0) {
                let d = d.expect("sample parses");
                if d.value.get("kind").and_then(|k| k.as_str()) == Some("RayCluster") {
                    out.push(c.text.trim_start_matches("---\n").to_string());
                }
            }
        }
    }
    out
}

/// The sample clusters as RayJobs: same cluster spec under `spec.rayClusterSpec`.
fn as_rayjobs(clusters: &[String]) -> Vec<String> {
    clusters
        .iter()
        .map(|text| {
            let d = yaml::documents(text, 0)
                .next()
                .expect("one document")
                .expect("parses");
            let name = d
                .value
                .pointer("/metadata/name")
                .and_then(|n| n.as_str())
                .unwrap_or("rayjob")
                .chars()
                .take(40)
                .collect::<String>();
            let job = serde_json::json!({
                "apiVersion": "ray.io/v1",
                "kind": "RayJob",
                "metadata": {"name": name.trim_end_matches('-')},
                "spec": {
                    "entrypoint": "python /home/ray/samples/sample_code.py",
                    "shutdownAfterJobFinishes": true,
                    "rayClusterSpec": d.value["spec"].clone(),
                }
            });
            yaml::to_yaml(&job)
        })
        .collect()
}

/// Writes `files` files of `DOCS_PER_FILE` documents cycling through `samples`; returns bytes.
fn write_corpus(root: &Path, files: usize, samples: &[String]) -> usize {
    std::fs::create_dir_all(root).expect("mkdir");
    let mut bytes = 0usize;
    let mut k = 0usize;
    for f in 0..files {
        let mut s = String::new();
        for _ in 0..DOCS_PER_FILE {
            s.push_str("---\n");
            s.push_str(&samples[k % samples.len()]);
            if !s.ends_with('\n') {
                s.push('\n');
            }
            k += 1;
        }
        bytes += s.len();
        let sub = root.join(format!("d{:02}", f / 100));
        std::fs::create_dir_all(&sub).expect("mkdir");
        std::fs::write(sub.join(format!("f{f:04}.yaml")), s).expect("write");
    }
    bytes
}

/// One end-to-end run over `root` (docs/s).
fn measure(label: &str, root: &Path, docs: usize, threads: usize, round: usize) -> f64 {
    let checker = Checker::default();
    let args = vec![root.display().to_string()];
    let inputs = pipeline::expand_args(&args);
    let t = Instant::now();
    let (mut rc, mut invalid, mut findings) = (0usize, 0usize, 0usize);
    pipeline::validate_inputs(inputs, threads, &checker, |f| {
        for d in &f.documents {
            if matches!(d.status, DocStatus::Valid | DocStatus::Invalid) {
                rc += 1;
            }
            invalid += usize::from(d.status == DocStatus::Invalid);
            findings += d.findings.len();
        }
    });
    let dt = t.elapsed().as_secs_f64();
    assert_eq!(rc, docs, "every document is a checked {label}");
    let rate = docs as f64 / dt;
    println!(
        "{label} round {round}: end to end, {threads} thread(s): {rate:.0} docs/s ({docs} docs in {dt:.3} s; {invalid} invalid, {findings} findings)"
    );
    rate
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it:
    // then only a quick smoke run (same code path, 20 files).
    let full = std::env::args().any(|a| a == "--bench");
    let files: usize = if full { 2_000 } else { 20 };
    let rounds = if full { 5 } else { 1 };
    let threads: usize = std::env::var("RAYGATE_BENCH_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let samples = sample_rayclusters();
    assert_eq!(samples.len(), 46, "expected the 46 sample RayClusters");
    let keep = std::env::var("RAYGATE_BENCH_KEEP").ok();
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = keep
        .as_ref()
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let bytes = write_corpus(&root, files, &samples);
    let docs = files * DOCS_PER_FILE;
    println!(
        "corpus: {files} files, {docs} RayCluster documents, {:.1} MiB at {}",
        bytes as f64 / 1048576.0,
        root.display()
    );

    // Parse only (one thread), for reference.
    let texts: Vec<String> = (0..docs / 10)
        .map(|i| samples[i % samples.len()].clone())
        .collect();
    let t = Instant::now();
    let mut n = 0;
    for s in &texts {
        for d in yaml::documents(s, 0) {
            n += usize::from(d.is_ok());
        }
    }
    let dt = t.elapsed().as_secs_f64();
    println!(
        "parse only, 1 thread: {:.0} docs/s ({n} docs)",
        n as f64 / dt
    );

    // End to end with the CLI's code path and default options (default feature gates): the
    // RayClusters and the same cluster specs as RayJobs, one round of each in turn (so both
    // see the same machine load).
    let jobs = as_rayjobs(&samples);
    let jtmp = tempfile::tempdir().expect("tempdir");
    let jroot = jtmp.path().join("rayjobs");
    let jbytes = write_corpus(&jroot, files, &jobs);
    println!(
        "corpus: {files} files, {docs} RayJob documents, {:.1} MiB",
        jbytes as f64 / 1048576.0
    );
    let (mut rc, mut job, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (a, b) = if round % 2 == 0 {
            let a = measure("RayCluster", &root, docs, threads, round);
            (a, measure("RayJob", &jroot, docs, threads, round))
        } else {
            let b = measure("RayJob", &jroot, docs, threads, round);
            (measure("RayCluster", &root, docs, threads, round), b)
        };
        rc.push(a);
        job.push(b);
        ratio.push(b / a);
    }
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    println!(
        "RayCluster: best {:.0}, median {:.0} docs/s; RayJob: best {:.0}, median {:.0} docs/s",
        best(&rc),
        median(rc.clone()),
        best(&job),
        median(job.clone())
    );
    println!(
        "RayJob / RayCluster throughput: best rounds {:.1} %, median of the {rounds} paired rounds {:.1} %",
        100.0 * best(&job) / best(&rc),
        100.0 * median(ratio)
    );
    let _ = Input::Stdin;
    if keep.is_some() {
        std::mem::forget(tmp);
    }
}
