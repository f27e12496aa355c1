//! Property tests for RayJob, RayService and RayCronJob: `validate_kind`, `defaulted_kind` and
//! `default_patch_kind` never panic on random mutations of KubeRay's samples nor on arbitrary
//! trees under the kinds' field names; defaulting is idempotent and reproduced by its patch;
//! the offline pipeline (YAML with positions) reports every finding with a position and never
//! panics; findings of the embedded spec always carry the embedding prefix.
//!
//! Case counts (fixed below): sample mutations 1,500; arbitrary trees 1,500; pipeline 500.

use proptest::prelude::*;
use raygate::defaulting::{apply_crd_defaults_kind, default_patch_kind, defaulted_kind};
use raygate::model::Kind;
use raygate::pipeline::Checker;
use raygate::rules::kinds::validate_kind;
use raygate::violation::{FeatureGates, Mode, ValidateOptions};
use serde_json::{Map, Value, json};
use std::sync::OnceLock;

const KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "generateName",
    "annotations",
    "spec",
    "status",
    "rayClusterSpec",
    "rayClusterConfig",
    "jobTemplate",
    "clusterSelector",
    "ray.io/cluster",
    "submissionMode",
    "shutdownAfterJobFinishes",
    "ttlSecondsAfterFinished",
    "suspend",
    "backoffLimit",
    "activeDeadlineSeconds",
    "preRunningDeadlineSeconds",
    "deletionStrategy",
    "deletionRules",
    "onSuccess",
    "onFailure",
    "policy",
    "condition",
    "jobStatus",
    "jobDeploymentStatus",
    "ttlSeconds",
    "submitterPodTemplate",
    "submitterConfig",
    "runtimeEnvYAML",
    "entrypoint",
    "upgradeStrategy",
    "type",
    "clusterUpgradeOptions",
    "maxSurgePercent",
    "stepSizePercent",
    "intervalSeconds",
    "gatewayClassName",
    "schedule",
    "timeZone",
    "headGroupSpec",
    "workerGroupSpecs",
    "template",
    "containers",
    "groupName",
    "minReplicas",
    "maxReplicas",
    "replicas",
    "enableInTreeAutoscaling",
    "authOptions",
    "enableK8sTokenAuth",
    "headService",
    "ray.io/initializing-timeout",
    "managedBy",
];

const POINTERS: &[&str] = &[
    "/spec",
    "/spec/rayClusterSpec",
    "/spec/rayClusterConfig",
    "/spec/jobTemplate",
    "/spec/jobTemplate/rayClusterSpec",
    "/spec/rayClusterSpec/workerGroupSpecs/0",
    "/spec/rayClusterConfig/workerGroupSpecs/0",
    "/spec/deletionStrategy",
    "/metadata",
    "/metadata/annotations",
    "/spec/upgradeStrategy",
    "/spec/rayClusterSpec/headGroupSpec",
];

fn samples() -> &'static Vec<(Kind, Value)> {
    static S: OnceLock<Vec<(Kind, Value)>> = OnceLock::new();
    S.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/kuberay");
        let mut out = Vec::new();
        for d in ["samples-rayjob", "samples-rayservice", "samples-raycronjob"] {
            let mut files: Vec<_> = std::fs::read_dir(root.join(d))
                .expect("samples")
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            for f in files {
                let text = std::fs::read_to_string(&f).unwrap();
                for doc in raygate::yaml::parse_all(&text).unwrap() {
                    if let Some(k) = doc
                        .value
                        .get("kind")
                        .and_then(Value::as_str)
                        .and_then(Kind::from_name)
                    {
                        out.push((k, doc.value));
                    }
                }
            }
        }
        assert_eq!(out.len(), 36);
        out
    })
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..200).prop_map(|n| json!(n)),
        Just(json!(i64::MAX)),
        Just(json!(-2147483649i64)),
        Just(json!(1.5)),
        prop::sample::select(vec![
            "",
            "K8sJobMode",
            "SidecarMode",
            "InteractiveMode",
            "HTTPMode",
            "DeleteWorkers",
            "DeleteCluster",
            "DeleteNone",
            "DeleteSelf",
            "FAILED",
            "SUCCEEDED",
            "Failed",
            "NewClusterWithIncrementalUpgrade",
            "* * * * *",
            "@every 5m",
            "60 * * * *",
            "TZ=UTC",
            "Asia/Taipei",
            "Mars/Base",
            "-5m",
            "- a\n- b",
            "a: [",
            "ray.io/v1",
            "ray.io/v1alpha1",
            "x".repeat(60).leak(),
            "Never",
            "Always",
        ])
        .prop_map(|s| json!(s)),
    ]
}

fn tree() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|kv| {
                let mut m = Map::new();
                for (k, v) in kv {
                    m.insert(k.to_string(), v);
                }
                Value::Object(m)
            }),
        ]
    })
}

fn mutate(mut v: Value, ptr: &str, key: &str, val: Value) -> Value {
    if let Some(Value::Object(m)) = v.pointer_mut(ptr) {
        m.insert(key.to_string(), val);
    } else if let Some(slot) = v.pointer_mut(ptr) {
        *slot = val;
    }
    v
}

fn gates(bits: u8) -> FeatureGates {
    let mut g = FeatureGates::default();
    for (i, name) in [
        "RayJobDeletionPolicy",
        "RayServiceIncrementalUpgrade",
        "RayCronJob",
        "RayClusterMTLS",
    ]
    .iter()
    .enumerate()
    {
        let _ = g.set(name, bits & (1 << i) != 0);
    }
    g
}

fn check_all(kind: Kind, v: &Value, old: Option<&Value>, bits: u8) {
    let opts = ValidateOptions {
        gates: gates(bits),
        ..Default::default()
    };
    let all = validate_kind(kind, v, old, &opts);
    let first = validate_kind(
        kind,
        v,
        old,
        &ValidateOptions {
            mode: Mode::FirstError,
            ..opts.clone()
        },
    );
    assert!(first.len() <= 1);
    if let Some(f) = first.first() {
        assert!(all.contains(f), "the first error is one of all: {f:?}");
    }
    for x in &all {
        for (bad, want) in [
            ("spec.workerGroupSpecs", Kind::RayJob),
            ("spec.headGroupSpec", Kind::RayService),
        ] {
            assert!(
                !(kind == want && x.path.starts_with(bad)),
                "unprefixed embedded path {x:?}"
            );
        }
    }
    let d = defaulted_kind(kind, v);
    assert_eq!(defaulted_kind(kind, &d), d, "idempotent");
    let p = default_patch_kind(kind, v);
    let mut patched = v.clone();
    if json_patch::patch(&mut patched, &p).is_ok() {
        assert_eq!(patched, d, "patch reproduces defaulted");
        assert!(default_patch_kind(kind, &d).0.is_empty(), "no second patch");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn sample_mutations(i in 0usize..36, ptr in prop::sample::select(POINTERS), key in prop::sample::select(KEYS), val in tree(), bits in any::<u8>()) {
        let (kind, base) = samples()[i].clone();
        let mut v = mutate(base.clone(), ptr, key, val);
        apply_crd_defaults_kind(kind, &mut v);
        check_all(kind, &v, Some(&base), bits);
    }

    #[test]
    fn arbitrary_trees(t in tree(), k in 0usize..3, bits in any::<u8>()) {
        let kind = [Kind::RayJob, Kind::RayService, Kind::RayCronJob][k];
        let mut v = t.clone();
        if let Value::Object(m) = &mut v {
            m.insert("kind".into(), json!(kind.name()));
        }
        check_all(kind, &v, Some(&t), bits);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn pipeline_positions(i in 0usize..36, ptr in prop::sample::select(POINTERS), key in prop::sample::select(KEYS), val in tree()) {
        let (_, base) = samples()[i].clone();
        let v = mutate(base, ptr, key, val);
        let text = raygate::yaml::to_yaml(&v);
        let reports = Checker::default().check_text(&text, 0);
        for r in reports {
            for f in r.findings {
                prop_assert!(f.line >= 1 && f.column >= 1, "{f:?}");
                prop_assert!(!f.message.contains("internal error"), "{f:?}");
            }
        }
    }
}
