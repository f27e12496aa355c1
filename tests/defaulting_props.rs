//! Property tests: defaulting is idempotent and reproducible by its JSON Patch; defaulting a valid
//! object never adds errors; `validate`, `defaulted` and `default_patch` never panic on arbitrary
//! JSON trees nor on random mutations of KubeRay's samples.
//!
//! Case counts (per run, fixed in the configs below): arbitrary trees 3,000; sample mutations
//! 3,000; generated valid clusters 2,000; samples with autoscaling toggled 2,000 (10,000 total).

mod common;

use proptest::prelude::*;
use raygate::defaulting::{apply_crd_defaults, default_patch, defaulted};
use raygate::rules::validate;
use raygate::violation::{FeatureGates, Mode, ValidateOptions};
use serde_json::{Map, Value, json};
use std::sync::OnceLock;

const KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "spec",
    "status",
    "headGroupSpec",
    "workerGroupSpecs",
    "template",
    "containers",
    "env",
    "value",
    "groupName",
    "replicas",
    "minReplicas",
    "maxReplicas",
    "numOfHosts",
    "priority",
    "idleTimeoutSeconds",
    "rayStartParams",
    "resources",
    "labels",
    "autoscalerOptions",
    "enableInTreeAutoscaling",
    "version",
    "upscalingMode",
    "imagePullPolicy",
    "limits",
    "requests",
    "cpu",
    "memory",
    "networkPolicy",
    "mode",
    "workerGroups",
    "tlsOptions",
    "enabled",
    "gcsFaultToleranceOptions",
    "backend",
    "storage",
    "authOptions",
    "conditions",
    "historyServerOptions",
    "collectorOptions",
    "upgradeStrategy",
    "type",
    "suspend",
    "annotations",
    "restartPolicy",
    "volumeMounts",
    "mountPath",
    "managedBy",
    "rayVersion",
    "a/b~c",
    "",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-3i64..10).prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        prop::sample::select(vec![
            "",
            "v2",
            "v1",
            "token",
            "true",
            "1",
            "rocksdb",
            "redis",
            "DenyAllEgress",
            "500m",
            "-1Gi",
            "1e999",
            "nightly",
            "2.52.0",
            "ray.io/v1",
            "ray.io/v1alpha1",
            "RayCluster",
            "Never",
            "Always",
            "x.y/z",
            "RAY_enable_autoscaler_v2",
            "ü",
        ])
        .prop_map(|s| json!(s)),
        ".{0,12}".prop_map(Value::String),
    ]
}

fn tree() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS.to_vec()), inner), 0..6).prop_map(
                |kv| {
                    let mut m = Map::new();
                    for (k, v) in kv {
                        m.insert(k.to_string(), v);
                    }
                    Value::Object(m)
                }
            ),
        ]
    })
}

fn samples() -> &'static Vec<Value> {
    static S: OnceLock<Vec<Value>> = OnceLock::new();
    S.get_or_init(|| {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/kuberay/samples");
        let opts = serde_saphyr::options! { legacy_octal_numbers: true };
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let mut out = Vec::new();
        for f in files {
            let docs: Vec<Value> = serde_saphyr::from_multiple_with_options(
                &std::fs::read_to_string(&f).unwrap(),
                opts.clone(),
            )
            .unwrap();
            out.extend(docs.into_iter().filter(|d| d["kind"] == "RayCluster"));
        }
        assert_eq!(out.len(), 46);
        out
    })
}

/// JSON pointers of every node of `v`.
fn pointers(v: &Value, prefix: String, out: &mut Vec<String>) {
    out.push(prefix.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                pointers(
                    c,
                    format!("{prefix}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                pointers(c, format!("{prefix}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn mutate(mut doc: Value, edits: &[(usize, Value)]) -> Value {
    for (sel, val) in edits {
        let mut ps = Vec::new();
        pointers(&doc, String::new(), &mut ps);
        let p = &ps[sel % ps.len()];
        if p.is_empty() {
            doc = val.clone();
        } else if let Some(slot) = doc.pointer_mut(p) {
            *slot = val.clone();
        }
    }
    doc
}

fn all_gates() -> FeatureGates {
    FeatureGates::parse("RayClusterHistoryServer=true,RayClusterMTLS=true,RayClusterNetworkPolicy=true,GCSFaultToleranceEmbeddedStorage=true").unwrap()
}

/// Exercises every entry point; panics only if a property fails.
fn check_total(x: &Value) {
    for gates in [FeatureGates::default(), all_gates()] {
        for mode in [Mode::All, Mode::FirstError] {
            let opts = ValidateOptions {
                gates: gates.clone(),
                mode,
                strict: false,
            };
            let v = validate(x, None, &opts);
            if mode == Mode::FirstError {
                assert!(v.len() <= 1);
            }
            let _ = validate(x, Some(x), &opts);
        }
    }
    let d = defaulted(x);
    assert_eq!(defaulted(&d), d, "defaulting is not idempotent for {x}");
    assert_eq!(
        serde_json::to_string(&default_patch(x)).unwrap(),
        serde_json::to_string(&reference_patch(x)).unwrap(),
        "default_patch differs from the whole-spec diff for {x}"
    );
    let mut patched = x.clone();
    json_patch::patch(&mut patched, &default_patch(x)).expect("patch applies");
    assert_eq!(patched, d, "patch != defaulted for {x}");
    assert!(default_patch(&d).0.is_empty());
}

/// The patch as the whole-object diff computes it: `defaulted(x)` against `x`, member by member
/// in `defaulted(x)`'s order (what `default_patch` did before it diffed only the defaulted
/// members). `default_patch` must give the same ops in the same order.
fn reference_patch(x: &Value) -> json_patch::Patch {
    fn add(tokens: &[String], value: &Value) -> json_patch::PatchOperation {
        json_patch::PatchOperation::Add(json_patch::AddOperation {
            path: json_patch::jsonptr::PointerBuf::from_tokens(tokens.iter().map(String::as_str)),
            value: value.clone(),
        })
    }
    fn diff(o: &Value, n: &Value, t: &mut Vec<String>, ops: &mut Vec<json_patch::PatchOperation>) {
        match (o, n) {
            (Value::Object(om), Value::Object(nm)) => {
                for (k, nv) in nm {
                    t.push(k.clone());
                    match om.get(k) {
                        Some(ov) if ov == nv => {}
                        Some(ov) if !ov.is_null() => diff(ov, nv, t, ops),
                        _ => ops.push(add(t, nv)),
                    }
                    t.pop();
                }
            }
            (Value::Array(oa), Value::Array(na)) if oa.len() == na.len() => {
                for (i, (ov, nv)) in oa.iter().zip(na).enumerate() {
                    if ov != nv {
                        t.push(i.to_string());
                        diff(ov, nv, t, ops);
                        t.pop();
                    }
                }
            }
            _ => {
                if o != n {
                    ops.push(add(t, n));
                }
            }
        }
    }
    let mut ops = Vec::new();
    if let (Some(spec), Some(new_spec)) = (x.get("spec"), defaulted(x).get("spec")) {
        diff(spec, new_spec, &mut vec!["spec".to_string()], &mut ops);
    }
    json_patch::Patch(ops)
}

fn errors(x: &Value, opts: &ValidateOptions) -> usize {
    validate(x, None, opts)
        .iter()
        .filter(|v| v.is_error())
        .count()
}

/// Valid-ish clusters: random replica bounds, autoscaling settings and optional fields.
fn valid_cluster() -> impl Strategy<Value = Value> {
    (
        any::<bool>(),
        prop::option::of(prop::sample::select(vec!["v1", "v2"])),
        prop::option::of(0i32..600),
        prop::option::of(prop::sample::select(vec!["Default", "Aggressive", "Conservative"])),
        prop::option::of(prop::sample::select(vec!["Always", "IfNotPresent", "Never"])),
        prop::collection::vec((0i32..5, 0i32..5, prop::option::of(0i32..12), prop::option::of(1i32..4), any::<bool>()), 1..4),
        any::<bool>(),
    )
        .prop_map(|(autoscaling, version, idle, mode, pull, groups, drop_ao)| {
            let mut v = common::base();
            v["spec"]["enableInTreeAutoscaling"] = json!(autoscaling);
            let mut ao = Map::new();
            if let Some(x) = version { ao.insert("version".into(), json!(x)); }
            if let Some(x) = idle { ao.insert("idleTimeoutSeconds".into(), json!(x)); }
            if let Some(x) = mode { ao.insert("upscalingMode".into(), json!(x)); }
            if let Some(x) = pull { ao.insert("imagePullPolicy".into(), json!(x)); }
            if !drop_ao { v["spec"]["autoscalerOptions"] = Value::Object(ao); }
            let template = v["spec"]["workerGroupSpecs"][0]["template"].clone();
            let gs: Vec<Value> = groups.iter().enumerate().map(|(i, (a, b, r, hosts, with_max))| {
                let (min, max) = if a <= b { (*a, *b) } else { (*b, *a) };
                let mut g = json!({"groupName": format!("g{i}"), "minReplicas": min, "rayStartParams": {}, "template": template});
                if *with_max || !autoscaling { g["maxReplicas"] = json!(max); }
                if let Some(r) = r { g["replicas"] = json!(r); }
                if let Some(h) = hosts { g["numOfHosts"] = json!(h); }
                g
            }).collect();
            v["spec"]["workerGroupSpecs"] = json!(gs);
            v
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics(x in tree()) {
        check_total(&x);
        let wrapped = json!({"apiVersion": "ray.io/v1", "kind": "RayCluster", "spec": x.clone()});
        check_total(&wrapped);
    }

    #[test]
    fn sample_mutations_never_panic(i in 0usize..46, edits in prop::collection::vec((any::<usize>(), tree()), 1..4)) {
        let doc = mutate(samples()[i].clone(), &edits);
        check_total(&doc);
        let mut with_defaults = doc.clone();
        apply_crd_defaults(&mut with_defaults);
        check_total(&with_defaults);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn defaulting_a_valid_object_adds_no_errors(x in valid_cluster(), gates_on in any::<bool>()) {
        let opts = ValidateOptions { gates: if gates_on { all_gates() } else { FeatureGates::default() }, ..Default::default() };
        let mut crd = x.clone();
        apply_crd_defaults(&mut crd);
        let d = defaulted(&x);
        prop_assert_eq!(defaulted(&d), d.clone());
        if errors(&crd, &opts) == 0 {
            prop_assert_eq!(errors(&d, &opts), 0, "defaulted: {}", d);
        }
        if errors(&x, &opts) == 0 {
            prop_assert_eq!(errors(&d, &opts), 0, "defaulted: {}", d);
        }
    }

    #[test]
    fn defaulting_samples_with_random_autoscaling_adds_no_errors(i in 0usize..46, autoscaling in any::<bool>()) {
        let mut doc = samples()[i].clone();
        doc["spec"]["enableInTreeAutoscaling"] = json!(autoscaling);
        apply_crd_defaults(&mut doc);
        let opts = ValidateOptions { gates: all_gates(), ..Default::default() };
        let before = errors(&doc, &opts);
        prop_assert_eq!(errors(&defaulted(&doc), &opts), before);
    }
}
