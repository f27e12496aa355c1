//! Every RayCluster in KubeRay's samples (`../shared/kuberay/samples`), after CRD defaulting:
//! exactly the four documented samples are refused under default feature gates, none with the
//! alpha gates on; defaulting is idempotent and adds no errors.

use raygate::defaulting::{apply_crd_defaults, defaulted};
use raygate::rules::validate;
use raygate::violation::{FeatureGates, Mode, ValidateOptions, Violation};
use serde_json::Value;
use std::collections::BTreeMap;

fn samples_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/kuberay/samples")
}

/// (file name, RayCluster document) for every RayCluster in the samples.
fn sample_clusters() -> Vec<(String, Value)> {
    let mut files: Vec<_> = std::fs::read_dir(samples_dir())
        .expect("samples directory ../shared/kuberay/samples")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let opts = serde_saphyr::options! { legacy_octal_numbers: true };
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let docs: Vec<Value> = serde_saphyr::from_multiple_with_options(&text, opts.clone())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for d in docs {
            if d.get("kind").and_then(Value::as_str) == Some("RayCluster") {
                let name = f.file_name().unwrap().to_string_lossy().to_string();
                out.push((name, d));
            }
        }
    }
    out
}

fn errors(v: &[Violation]) -> Vec<&Violation> {
    v.iter().filter(|v| v.is_error()).collect()
}

fn alpha_gates() -> FeatureGates {
    FeatureGates::parse(
        "RayClusterHistoryServer=true,RayClusterMTLS=true,RayClusterNetworkPolicy=true,GCSFaultToleranceEmbeddedStorage=true",
    )
    .unwrap()
}

#[test]
fn default_gates_refuse_exactly_four_samples() {
    let clusters = sample_clusters();
    assert_eq!(clusters.len(), 46, "46 RayCluster documents in the samples");
    let expected: BTreeMap<&str, &str> = [
        ("ray-cluster.historyserver.yaml", "H1"),
        ("ray-cluster.mtls.yaml", "T1"),
        ("ray-cluster.network-policy-deny-all.yaml", "NP1"),
        ("ray-cluster.embedded-gcs-ft.yaml", "G7"),
    ]
    .into_iter()
    .collect();
    let opts = ValidateOptions::default();
    let mut refused = BTreeMap::new();
    for (file, mut doc) in clusters {
        apply_crd_defaults(&mut doc);
        let v = validate(&doc, None, &opts);
        let errs = errors(&v);
        match expected.get(file.as_str()) {
            Some(rule) => {
                assert_eq!(errs.len(), 1, "{file}: {errs:?}");
                assert_eq!(errs[0].rule, *rule, "{file}: {errs:?}");
                refused.insert(file.clone(), errs[0].rule.clone());
                let first = validate(
                    &doc,
                    None,
                    &ValidateOptions {
                        mode: Mode::FirstError,
                        ..Default::default()
                    },
                );
                assert_eq!(first.len(), 1);
                assert_eq!(first[0].rule, *rule);
            }
            None => assert!(errs.is_empty(), "{file}: unexpected errors {errs:?}"),
        }
    }
    assert_eq!(refused.len(), 4);
}

#[test]
fn alpha_gates_refuse_no_sample() {
    let opts = ValidateOptions {
        gates: alpha_gates(),
        ..Default::default()
    };
    for (file, mut doc) in sample_clusters() {
        apply_crd_defaults(&mut doc);
        let v = validate(&doc, None, &opts);
        assert!(errors(&v).is_empty(), "{file}: {:?}", errors(&v));
    }
}

#[test]
fn raw_kai_samples_fail_w2_only_before_crd_defaults() {
    let opts = ValidateOptions::default();
    for (file, doc) in sample_clusters() {
        if file.starts_with("ray-cluster.kai-") {
            let v = validate(&doc, None, &opts);
            let errs = errors(&v);
            assert!(!errs.is_empty(), "{file}");
            assert!(errs.iter().all(|e| e.rule == "W2"), "{file}: {errs:?}");
        }
    }
}

#[test]
fn defaulting_samples_is_idempotent_and_adds_no_errors() {
    for gates in [FeatureGates::default(), alpha_gates()] {
        let opts = ValidateOptions {
            gates,
            ..Default::default()
        };
        for (file, mut doc) in sample_clusters() {
            apply_crd_defaults(&mut doc);
            let before = errors(&validate(&doc, None, &opts)).len();
            let d = defaulted(&doc);
            assert_eq!(defaulted(&d), d, "{file}: not idempotent");
            let after: Vec<Violation> = validate(&d, None, &opts);
            assert_eq!(errors(&after).len(), before, "{file}: {:?}", errors(&after));
            // The patch reproduces `defaulted` exactly.
            let mut patched = doc.clone();
            json_patch::patch(&mut patched, &raygate::defaulting::default_patch(&doc)).unwrap();
            assert_eq!(patched, d, "{file}");
        }
    }
}
