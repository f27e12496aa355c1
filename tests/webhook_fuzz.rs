//! Property tests ("fuzzing") of the AdmissionReview and ConversionReview handlers: any input
//! gives a JSON reply with a sane status, never a panic; a readable uid is always echoed. The
//! validate and mutate handlers of every kind (RayCluster, RayJob, RayService, RayCronJob) get
//! the arbitrary inputs, and reviews of each kind's samples with parts overwritten.

mod webhook_common;

use proptest::prelude::*;
use raygate::model::Kind;
use raygate::webhook::admission::{self, AdmissionConfig};
use serde_json::{Value, json};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

static RUNS: AtomicUsize = AtomicUsize::new(0);

fn base_review() -> &'static Value {
    static R: OnceLock<Value> = OnceLock::new();
    R.get_or_init(|| {
        let obj = webhook_common::samples()
            .into_iter()
            .find(|(f, _)| f == "ray-cluster.complete.yaml")
            .map(|(_, o)| o)
            .unwrap();
        webhook_common::review("fuzz-uid", "CREATE", Some(&obj), None)
    })
}

/// A CREATE review of each RayJob, RayService and RayCronJob sample.
fn kind_reviews() -> &'static Vec<(Kind, Value)> {
    static R: OnceLock<Vec<(Kind, Value)>> = OnceLock::new();
    R.get_or_init(|| {
        webhook_common::kind_samples()
            .into_iter()
            .map(|(_, k, o)| {
                (
                    k,
                    webhook_common::review_kind(k, "fuzz-uid", "CREATE", Some(&o), None),
                )
            })
            .collect()
    })
}

fn check_admission(body: &[u8], expect_uid: Option<&str>) {
    check_admission_kind(Kind::RayCluster, body, expect_uid);
}

fn check_admission_kind(kind: Kind, body: &[u8], expect_uid: Option<&str>) {
    RUNS.fetch_add(1, Ordering::Relaxed);
    let cfg = AdmissionConfig::default();
    for reply in [
        admission::validate_kind(kind, body, &cfg),
        admission::mutate_kind(kind, body, &cfg),
    ] {
        assert!(
            reply.status == 200 || reply.status == 400,
            "status {}",
            reply.status
        );
        let v: Value = serde_json::from_slice(&reply.body).expect("reply is JSON");
        assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(v["kind"], "AdmissionReview");
        let r = &v["response"];
        assert!(r["allowed"].is_boolean());
        if reply.status == 400 {
            assert_eq!(r["allowed"], false);
        }
        if let Some(uid) = expect_uid {
            assert_eq!(r["uid"], uid, "uid echoed: {v}");
        }
        if let Some(p) = r.get("patch") {
            assert!(p.is_string(), "patch is base64");
        }
    }
    // mutate builds only apiVersion, kind and spec of the object: its patch must be the one
    // the whole object gives.
    let m = admission::mutate_kind(kind, body, &cfg);
    if matches!(m.outcome.decision, "patched" | "unchanged") {
        use base64::Engine;
        let v: Value = serde_json::from_slice(body).expect("a patched body is JSON");
        let obj = &v["request"]["object"];
        let expected = if kind == Kind::RayCluster {
            raygate::defaulting::mutation(obj, &cfg.opt_in).patch
        } else {
            raygate::defaulting::default_patch_kind(kind, obj)
        };
        let reply: Value = serde_json::from_slice(&m.body).unwrap();
        match reply["response"]["patch"].as_str() {
            None => assert!(expected.0.is_empty(), "no patch, expected {expected:?}"),
            Some(p) => assert_eq!(
                base64::engine::general_purpose::STANDARD.decode(p).unwrap(),
                serde_json::to_vec(&expected).unwrap()
            ),
        }
    }
}

fn check_conversion(body: &[u8], expect_uid: Option<&str>) {
    RUNS.fetch_add(1, Ordering::Relaxed);
    let reply = admission::convert(body);
    assert!(reply.status == 200 || reply.status == 400);
    let v: Value = serde_json::from_slice(&reply.body).expect("reply is JSON");
    assert_eq!(v["kind"], "ConversionReview");
    let r = &v["response"];
    let status = r["result"]["status"].as_str().unwrap_or("");
    assert!(status == "Success" || status == "Failure", "{v}");
    if status == "Failure" {
        assert!(r["convertedObjects"].as_array().is_none_or(Vec::is_empty));
    }
    if let (Some(uid), 200) = (expect_uid, reply.status) {
        assert_eq!(r["uid"], uid);
    }
}

/// Arbitrary JSON values, a few levels deep.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-zA-Z0-9./-]{0,12}".prop_map(Value::from),
        Just(json!("CREATE")),
        Just(json!("RayCluster")),
        Just(json!("RayJob")),
        Just(json!("RayService")),
        Just(json!("K8sJobMode")),
        Just(json!("ray.io/v1")),
        Just(json!("ray.io/v1alpha1")),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    "[a-z]{1,8}".prop_map(String::from),
                    Just("spec".to_string()),
                    Just("metadata".to_string()),
                    Just("workerGroupSpecs".to_string()),
                    Just("rayClusterSpec".to_string()),
                    Just("enableInTreeAutoscaling".to_string()),
                    Just("headGroupSpec".to_string()),
                    Just("name".to_string()),
                    Just("annotations".to_string()),
                    Just("raygate.io/v1-fields".to_string()),
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// JSON pointers into the base review to overwrite.
const POINTERS: &[&str] = &[
    "/request",
    "/request/uid",
    "/request/operation",
    "/request/kind",
    "/request/object",
    "/request/object/kind",
    "/request/object/apiVersion",
    "/request/object/metadata",
    "/request/object/metadata/name",
    "/request/object/spec",
    "/request/object/spec/headGroupSpec",
    "/request/object/spec/workerGroupSpecs",
    "/request/object/spec/workerGroupSpecs/0",
    "/request/object/spec/workerGroupSpecs/0/minReplicas",
    "/request/object/spec/workerGroupSpecs/0/template",
    "/request/oldObject",
    "/request/dryRun",
    "/apiVersion",
];

/// JSON pointers into a RayJob/RayService/RayCronJob review to overwrite (those a kind lacks
/// leave the review as it is).
const KIND_POINTERS: &[&str] = &[
    "/request/kind",
    "/request/object",
    "/request/object/kind",
    "/request/object/apiVersion",
    "/request/object/metadata",
    "/request/object/metadata/name",
    "/request/object/spec",
    "/request/object/spec/rayClusterSpec",
    "/request/object/spec/rayClusterSpec/workerGroupSpecs",
    "/request/object/spec/rayClusterSpec/workerGroupSpecs/0/minReplicas",
    "/request/object/spec/rayClusterSpec/headGroupSpec",
    "/request/object/spec/rayClusterSpec/enableInTreeAutoscaling",
    "/request/object/spec/clusterSelector",
    "/request/object/spec/submissionMode",
    "/request/object/spec/deletionStrategy",
    "/request/object/spec/backoffLimit",
    "/request/object/spec/rayClusterConfig",
    "/request/object/spec/rayClusterConfig/workerGroupSpecs/0",
    "/request/object/spec/rayClusterConfig/enableInTreeAutoscaling",
    "/request/object/spec/upgradeStrategy",
    "/request/object/spec/jobTemplate",
    "/request/object/spec/jobTemplate/rayClusterSpec",
    "/request/object/spec/schedule",
    "/request/object/spec/timeZone",
    "/request/oldObject",
];

fn set_pointer(v: &mut Value, ptr: &str, new: Value) {
    if let Some(slot) = v.pointer_mut(ptr) {
        *slot = new;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn admission_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..512), k in 0usize..4) {
        check_admission_kind(Kind::ALL[k], &body, None);
    }

    #[test]
    fn admission_arbitrary_json(v in arb_json(), k in 0usize..4) {
        check_admission_kind(Kind::ALL[k], &serde_json::to_vec(&v).unwrap(), None);
    }

    /// A RayJob/RayService/RayCronJob sample's review with one part overwritten, sent to its
    /// kind's endpoints (or, one time in four, to another kind's).
    #[test]
    fn admission_mutated_kind_review(i in 0usize..36, ptr in prop::sample::select(KIND_POINTERS), new in arb_json(), op in prop::sample::select(&["CREATE", "UPDATE", "DELETE"][..]), other in 0usize..16) {
        let (kind, base) = &kind_reviews()[i];
        let mut r = base.clone();
        r["request"]["operation"] = json!(op);
        if op == "UPDATE" {
            r["request"]["oldObject"] = r["request"]["object"].clone();
        }
        set_pointer(&mut r, ptr, new);
        let uid = r.pointer("/request/uid").and_then(Value::as_str).filter(|u| !u.is_empty()).map(str::to_string);
        let target = if other < 4 { Kind::ALL[other] } else { *kind };
        check_admission_kind(target, &serde_json::to_vec(&r).unwrap(), uid.as_deref());
    }

    #[test]
    fn admission_mutated_review(ptr in prop::sample::select(POINTERS), new in arb_json(), op in prop::sample::select(&["CREATE", "UPDATE", "DELETE", "CONNECT"][..])) {
        let mut r = base_review().clone();
        r["request"]["operation"] = json!(op);
        if op == "UPDATE" {
            r["request"]["oldObject"] = r["request"]["object"].clone();
        }
        set_pointer(&mut r, ptr, new);
        let uid = r.pointer("/request/uid").and_then(Value::as_str).filter(|u| !u.is_empty()).map(str::to_string);
        check_admission(&serde_json::to_vec(&r).unwrap(), uid.as_deref());
    }

    #[test]
    fn conversion_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        check_conversion(&body, None);
    }

    #[test]
    fn conversion_mutated_objects(objs in prop::collection::vec(arb_json(), 0..4), desired in prop::sample::select(&["ray.io/v1", "ray.io/v1alpha1", "ray.io/v2", ""][..]), keep_sample in any::<bool>()) {
        let mut objects = objs;
        if keep_sample {
            objects.push(base_review()["request"]["object"].clone());
            for (_, r) in kind_reviews().iter().filter(|(k, _)| *k != Kind::RayCronJob).step_by(7) {
                objects.push(r["request"]["object"].clone());
            }
        }
        // make some of them look like RayClusters
        for (i, o) in objects.iter_mut().enumerate() {
            if let (Value::Object(m), true) = (&mut *o, i % 2 == 0) {
                m.insert("kind".into(), json!(["RayCluster", "RayJob", "RayService", "RayCronJob"][i / 2 % 4]));
                m.insert("apiVersion".into(), json!(if i % 4 == 0 { "ray.io/v1" } else { "ray.io/v1alpha1" }));
            }
        }
        let body = webhook_common::conversion_review("conv-uid", desired, objects);
        check_conversion(&serde_json::to_vec(&body).unwrap(), Some("conv-uid"));
    }
}

#[test]
fn zz_report_run_count() {
    // Ordering between tests is not guaranteed; this only prints what ran in this process.
    eprintln!("fuzz inputs run so far: {}", RUNS.load(Ordering::Relaxed));
}
