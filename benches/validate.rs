//! End-to-end throughput of `raygate validate`'s code path (read, split, parse with positions,
//! CRD defaults, JSON Schema, rules, positions) over generated corpora of 2,000 files / 20,000
//! documents each, generated in a temp dir at bench time (never committed):
//!
//! - RayCluster: the 46 sample RayClusters of `../shared/kuberay/samples` repeated, as written
//!   (comments included);
//! - RayJob and RayService: the same 46 samples' `spec:` blocks, the very text indented under
//!   `spec.rayClusterSpec` / `spec.rayClusterConfig` (the RayJob adds `entrypoint` and
//!   `shutdownAfterJobFinishes`), with each sample's name and annotations; each embedding is
//!   checked to parse back to the sample's exact cluster spec.
//!
//! So the throughputs compare each kind's path (its own rules, and the embedded spec through
//! every RayCluster check, prefixed paths) against plain RayClusters on identical cluster text.
//! Five rounds, each corpus once per round in rotating order, so all see the same machine load;
//! it prints the best and median of each and the ratios to RayCluster.
//!
//! Run: `cargo bench --bench validate` (env `RAYGATE_BENCH_THREADS`, default 2;
//! `RAYGATE_BENCH_KEEP=DIR` writes the corpora to DIR/rayclusters, DIR/rayjobs and
//! DIR/rayservices and keeps them, for hyperfine / time -v / perf).

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

/// The lines of a sample's top-level `spec:` mapping (up to the next top-level key or document
/// marker), comments and all, each indented by `by` more spaces.
fn spec_block(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    let mut out = String::new();
    let mut inside = false;
    for line in text.lines() {
        if !inside {
            inside = line.trim_end() == "spec:";
            continue;
        }
        if line.starts_with(|c: char| !c.is_whitespace() && c != '#') {
            break;
        }
        if !line.trim().is_empty() {
            out.push_str(&pad);
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The sample clusters embedded in `kind` documents: the very text of each sample's `spec:`
/// block (comments and layout kept, indented two more) under `spec.<field>`, after the kind's
/// `own` spec lines, with the sample's name (cut to 40 characters) and annotations (KubeRay
/// copies them to the RayCluster it creates). Each result is checked to parse back to the
/// sample's exact cluster spec.
fn embed(clusters: &[String], kind: &str, own: &str, field: &str) -> Vec<String> {
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
                .unwrap_or("sample")
                .chars()
                .take(40)
                .collect::<String>();
            let mut meta = serde_json::json!({"name": name.trim_end_matches('-')});
            if let Some(a) = d.value.pointer("/metadata/annotations") {
                meta["annotations"] = a.clone();
            }
            let head =
                serde_json::json!({"apiVersion": "ray.io/v1", "kind": kind, "metadata": meta});
            let out = format!(
                "{}spec:\n{own}  {field}:\n{}",
                yaml::to_yaml(&head),
                spec_block(text, 2)
            );
            let back = yaml::documents(&out, 0)
                .next()
                .expect("one document")
                .expect("the embedding parses");
            assert_eq!(
                back.value["spec"][field], d.value["spec"],
                "{kind} embeds the sample's cluster spec unchanged"
            );
            out
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
    let base = keep
        .as_ref()
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let root = base.join("rayclusters");
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
    // RayClusters, and the same cluster specs as RayJobs and as RayServices; each round runs
    // every corpus once, the order rotating, so all see the same machine load.
    let kinds = [
        ("RayCluster", root.clone(), bytes),
        {
            let jobs = embed(
                &samples,
                "RayJob",
                "  entrypoint: python /home/ray/samples/sample_code.py\n  shutdownAfterJobFinishes: true\n",
                "rayClusterSpec",
            );
            let r = base.join("rayjobs");
            let b = write_corpus(&r, files, &jobs);
            ("RayJob", r, b)
        },
        {
            let services = embed(&samples, "RayService", "", "rayClusterConfig");
            let r = base.join("rayservices");
            let b = write_corpus(&r, files, &services);
            ("RayService", r, b)
        },
    ];
    for (label, r, b) in &kinds[1..] {
        println!(
            "corpus: {files} files, {docs} {label} documents, {:.1} MiB at {}",
            *b as f64 / 1048576.0,
            r.display()
        );
    }
    let mut rates = vec![Vec::new(); kinds.len()];
    for round in 0..rounds {
        for k in 0..kinds.len() {
            let i = (round + k) % kinds.len();
            let (label, r, _) = &kinds[i];
            rates[i].push(measure(label, r, docs, threads, round));
        }
    }
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    for (i, (label, _, _)) in kinds.iter().enumerate() {
        println!(
            "{label}: best {:.0}, median {:.0} docs/s",
            best(&rates[i]),
            median(rates[i].clone())
        );
    }
    for (i, (label, _, _)) in kinds.iter().enumerate().skip(1) {
        let ratio: Vec<f64> = rates[i].iter().zip(&rates[0]).map(|(a, b)| a / b).collect();
        println!(
            "{label} / RayCluster throughput: best rounds {:.1} %, median of the {rounds} paired rounds {:.1} %",
            100.0 * best(&rates[i]) / best(&rates[0]),
            100.0 * median(ratio)
        );
    }
    let _ = Input::Stdin;
    if keep.is_some() {
        std::mem::forget(tmp);
    }
}
