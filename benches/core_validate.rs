//! Cost of the pure core per RayCluster document (no YAML, no I/O in the timed loop):
//! typed-view deserialization alone, `validate` (default gates, Mode::All), `defaulted`, and
//! `default_patch`, over KubeRay's 46 sample RayClusters (CRD defaults applied first).
//!
//! Run: `CARGO_TARGET_DIR=/work/target cargo bench --bench core_validate`
//! (optional argument: rounds over the 46 samples, default 2000).

use raygate::defaulting::{apply_crd_defaults, default_patch, defaulted};
use raygate::model::v1::RayCluster;
use raygate::rules::validate;
use raygate::violation::ValidateOptions;
use serde::Deserialize;
use serde_json::Value;
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2000);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/kuberay/samples");
    let opts = serde_saphyr::options! { legacy_octal_numbers: true };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("../shared/kuberay/samples")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut docs: Vec<Value> = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let all: Vec<Value> =
            serde_saphyr::from_multiple_with_options(&text, opts.clone()).unwrap();
        docs.extend(all.into_iter().filter(|d| d["kind"] == "RayCluster"));
    }
    for d in &mut docs {
        apply_crd_defaults(d);
    }
    let bytes: usize = docs
        .iter()
        .map(|d| serde_json::to_vec(d).unwrap().len())
        .sum();
    let n = docs.len() * rounds;
    println!(
        "{} sample RayClusters (mean {} bytes as JSON) x {rounds} rounds = {n} documents",
        docs.len(),
        bytes / docs.len()
    );
    let vo = ValidateOptions::default();

    let run = |name: &str, f: &dyn Fn(&Value) -> usize| {
        // warm-up
        for d in &docs {
            black_box(f(d));
        }
        let t = Instant::now();
        let mut acc = 0usize;
        for _ in 0..rounds {
            for d in &docs {
                acc = acc.wrapping_add(f(black_box(d)));
            }
        }
        let el = t.elapsed();
        black_box(acc);
        println!(
            "{name:<28} {:>8.2} µs/doc  {:>10.0} docs/s (1 thread)",
            el.as_secs_f64() * 1e6 / n as f64,
            n as f64 / el.as_secs_f64()
        );
    };
    run("typed view (deserialize)", &|d| {
        RayCluster::deserialize(d)
            .map(|r| r.spec.is_some() as usize)
            .unwrap_or(0)
    });
    run("validate", &|d| validate(d, None, &vo).len());
    run("validate (UPDATE, old=new)", &|d| {
        validate(d, Some(d), &vo).len()
    });
    run("defaulted", &|d| {
        defaulted(d).as_object().map_or(0, |m| m.len())
    });
    run("default_patch", &|d| default_patch(d).0.len());
}
