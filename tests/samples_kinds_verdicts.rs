//! Every RayJob, RayService and RayCronJob in KubeRay's samples
//! (`../shared/kuberay/samples-{rayjob,rayservice,raycronjob}`), after CRD defaulting, gets
//! KubeRay v1.7.0's verdict under default feature gates, worked out by hand from
//! `ValidateRayJobMetadata`/`ValidateRayJobSpec`, `ValidateRayServiceMetadata`/
//! `ValidateRayServiceSpec` and `ValidateRayCronJobSpec` (each with `ValidateRayClusterSpec` on
//! the embedded spec): every sample is accepted. The table below says why for the samples that
//! exercise a rule, and which raygate warnings they get. Defaulting twice gives no second patch.

use raygate::defaulting::{apply_crd_defaults_kind, default_patch_kind, defaulted_kind};
use raygate::model::Kind;
use raygate::rules::kinds::validate_kind;
use raygate::violation::{FeatureGates, Mode, ValidateOptions, Violation};
use serde_json::Value;
use std::collections::BTreeMap;

fn dir(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/kuberay")
        .join(name)
}

/// (file name, kind, document) for every object of the three kinds in the samples.
fn samples() -> Vec<(String, Kind, Value)> {
    let mut out = Vec::new();
    for d in ["samples-rayjob", "samples-rayservice", "samples-raycronjob"] {
        let mut files: Vec<_> = std::fs::read_dir(dir(d))
            .unwrap_or_else(|e| panic!("../shared/kuberay/{d}: {e}"))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            let docs =
                raygate::yaml::parse_all(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            for doc in docs {
                let kind = doc
                    .value
                    .get("kind")
                    .and_then(Value::as_str)
                    .and_then(Kind::from_name);
                if let Some(k @ (Kind::RayJob | Kind::RayService | Kind::RayCronJob)) = kind {
                    let name = f.file_name().unwrap().to_string_lossy().to_string();
                    out.push((name, k, doc.value));
                }
            }
        }
    }
    out
}

fn errors(v: &[Violation]) -> Vec<&Violation> {
    v.iter().filter(|v| v.is_error()).collect()
}

/// Samples whose verdict depends on a specific rule, and the warnings raygate adds.
/// `(file, why KubeRay accepts it, raygate warning ids)`.
const NOTABLE: &[(&str, &str, &[&str])] = &[
    (
        "ray-job.deletion-rules.yaml",
        "deletionRules without shutdownAfterJobFinishes, RayJobDeletionPolicy on, TTLs 30 <= 60 <= 90 per JobStatus",
        &[],
    ),
    (
        "ray-job.interactive-mode.yaml",
        "InteractiveMode with backoffLimit 0; the group's min/max come from CRD defaults",
        &[],
    ),
    (
        "ray-job.sidecar-mode.yaml",
        "SidecarMode with no submitterPodTemplate/submitterConfig and the head restartPolicy unset",
        &[],
    ),
    (
        "ray-job.use-existing-raycluster.yaml",
        "clusterSelector with ray.io/cluster set, no rayClusterSpec, backoffLimit 0",
        &[],
    ),
    (
        "ray-job.light-weight-submitter.yaml",
        "a custom submitterPodTemplate brings its own command, so no entrypoint is fine",
        &[],
    ),
    (
        "ray-job.kueue-toy-sample.yaml",
        "generateName `rayjob-sample-` + 5 characters is a 19-character DNS-1035 label",
        &[],
    ),
    (
        "ray-job.custom-head-svc.yaml",
        "a head Service name is refused only for RayService, not RayJob",
        &[],
    ),
    (
        "ray-service.incremental-upgrade.yaml",
        "NewClusterWithIncrementalUpgrade (gate on) with autoscaling, maxSurge 10 >= step 10, interval 30, gatewayClassName",
        &[],
    ),
    (
        "ray-service.high-availability.yaml",
        "gcsFaultToleranceOptions with Redis and no legacy annotation or env",
        &[],
    ),
    (
        "ray-service.high-throughput-llm.yaml",
        "worker group without min/max: CRD defaults 0 / 2147483647",
        &[],
    ),
    (
        "ray-cronjob.sample.yaml",
        "name 17 <= 36 characters, `* * * * *` parses",
        &["RG-CRONJOB-GATE"],
    ),
    (
        "ray-cronjob-timezone.sample.yaml",
        "timeZone Asia/Taipei is in Go's tz database",
        &["RG-CRONJOB-GATE"],
    ),
];

#[test]
fn every_sample_gets_kuberays_verdict_under_default_gates() {
    let all = samples();
    let count = |k: Kind| all.iter().filter(|(_, kk, _)| *kk == k).count();
    assert_eq!(count(Kind::RayJob), 19, "19 RayJobs");
    assert_eq!(count(Kind::RayService), 15, "15 RayServices");
    assert_eq!(count(Kind::RayCronJob), 2, "2 RayCronJobs");
    let notable: BTreeMap<&str, &[&str]> = NOTABLE.iter().map(|(f, _, w)| (*f, *w)).collect();
    let opts = ValidateOptions::default();
    for (file, kind, mut doc) in all {
        apply_crd_defaults_kind(kind, &mut doc);
        let v = validate_kind(kind, &doc, None, &opts);
        assert!(
            errors(&v).is_empty(),
            "{file}: KubeRay accepts it, raygate says {:?}",
            errors(&v)
        );
        let first = validate_kind(
            kind,
            &doc,
            None,
            &ValidateOptions {
                mode: Mode::FirstError,
                ..Default::default()
            },
        );
        assert!(first.is_empty(), "{file}: {first:?}");
        let warned: Vec<&str> = v.iter().map(|w| w.rule.as_str()).collect();
        if let Some(expected) = notable.get(file.as_str()) {
            assert_eq!(&warned, expected, "{file}: warnings");
        }
    }
}

#[test]
fn the_cronjob_gate_only_removes_the_gate_warning() {
    let gates = FeatureGates::parse("RayCronJob=true").unwrap();
    let opts = ValidateOptions {
        gates,
        ..Default::default()
    };
    for (file, kind, mut doc) in samples() {
        if kind != Kind::RayCronJob {
            continue;
        }
        apply_crd_defaults_kind(kind, &mut doc);
        let v = validate_kind(kind, &doc, None, &opts);
        assert!(v.is_empty(), "{file}: {v:?}");
    }
}

#[test]
fn a_gate_off_changes_the_deletion_rules_verdict() {
    // RayJobDeletionPolicy=false: KubeRay refuses any deletionStrategy.
    let gates = FeatureGates::parse("RayJobDeletionPolicy=false").unwrap();
    let opts = ValidateOptions {
        gates,
        ..Default::default()
    };
    let (_, kind, mut doc) = samples()
        .into_iter()
        .find(|(f, _, _)| f == "ray-job.deletion-rules.yaml")
        .unwrap();
    apply_crd_defaults_kind(kind, &mut doc);
    let v = validate_kind(kind, &doc, None, &opts);
    let errs = errors(&v);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].rule, "JD2");
    assert_eq!(errs[0].path, "spec.deletionStrategy");
    assert_eq!(
        errs[0].message,
        "RayJobDeletionPolicy feature gate must be enabled to use DeletionStrategy"
    );
}

#[test]
fn defaulting_every_sample_twice_gives_no_second_patch() {
    let opts = ValidateOptions::default();
    for (file, kind, doc) in samples() {
        let p1 = default_patch_kind(kind, &doc);
        let mut once = doc.clone();
        json_patch::patch(&mut once, &p1).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            once,
            defaulted_kind(kind, &doc),
            "{file}: patch = defaulted"
        );
        assert!(
            !p1.0.is_empty(),
            "{file}: CRD defaults (submissionMode, backoffLimit, …) apply"
        );
        let p2 = default_patch_kind(kind, &once);
        assert!(p2.0.is_empty(), "{file}: second patch {p2:?}");
        let v = validate_kind(kind, &once, None, &opts);
        assert!(
            errors(&v).is_empty(),
            "{file}: defaulted copy {:?}",
            errors(&v)
        );
    }
}
