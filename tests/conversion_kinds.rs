//! `v1alpha1` ⇄ `v1` conversion of RayJob and RayService (and RayCluster) against KubeRay's CRDs
//! in `../shared/kuberay/crd/`: the fields the conversion moves are exactly the fields one
//! version's schema has and the other lacks; every RayJob / RayService sample round-trips; and
//! random objects carrying any of those fields round-trip in both directions.

use proptest::prelude::*;
use raygate::conversion::{
    self, ConversionError, V1, V1_FIELDS_ANNOTATION, V1ALPHA1, V1ALPHA1_FIELDS_ANNOTATION, convert,
};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::OnceLock;

fn shared(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/kuberay")
        .join(rel)
}

fn yaml_docs(path: &PathBuf) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let opts = serde_saphyr::options! { legacy_octal_numbers: true };
    serde_saphyr::from_multiple_with_options(&text, opts)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `versions[].name → openAPIV3Schema` of a CRD file.
fn crd_versions(file: &str) -> BTreeMap<String, Value> {
    let doc = yaml_docs(&shared(&format!("crd/{file}"))).remove(0);
    doc["spec"]["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_string(),
                v["schema"]["openAPIV3Schema"].clone(),
            )
        })
        .collect()
}

/// Every property path of a schema (`.a.b`, `[]` for array items, `{}` for map values), with
/// the attributes that matter to conversion and validation (everything but the description
/// and the children).
fn schema_paths(s: &Value, path: &str, out: &mut BTreeMap<String, Value>) {
    let Some(m) = s.as_object() else { return };
    let attrs: Map<String, Value> = m
        .iter()
        .filter(|(k, v)| match k.as_str() {
            "properties" | "items" | "description" => false,
            "additionalProperties" => !v.is_object(),
            _ => true,
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.insert(path.to_string(), Value::Object(attrs));
    if let Some(Value::Object(props)) = m.get("properties") {
        for (k, v) in props {
            schema_paths(v, &format!("{path}.{k}"), out);
        }
    }
    if let Some(items) = m.get("items") {
        schema_paths(items, &format!("{path}[]"), out);
    }
    if let Some(ap @ Value::Object(_)) = m.get("additionalProperties") {
        schema_paths(ap, &format!("{path}{{}}"), out);
    }
}

/// The outermost paths of `a` missing from `b` (a missing object's children are not listed).
fn only_in(a: &BTreeMap<String, Value>, b: &BTreeMap<String, Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in a.keys().filter(|p| !b.contains_key(*p)) {
        let covered = out.iter().any(|q| {
            p.strip_prefix(q.as_str())
                .is_some_and(|rest| rest.starts_with(['.', '[', '{']))
        });
        if !covered {
            out.push(p.clone());
        }
    }
    out.sort();
    out
}

#[test]
fn moved_fields_are_exactly_the_schema_differences() {
    for (kind, file) in [
        ("RayCluster", "ray.io_rayclusters.yaml"),
        ("RayJob", "ray.io_rayjobs.yaml"),
        ("RayService", "ray.io_rayservices.yaml"),
    ] {
        let vs = crd_versions(file);
        assert_eq!(
            vs.keys().collect::<Vec<_>>(),
            ["v1", "v1alpha1"],
            "{file} serves v1 and v1alpha1"
        );
        let (mut v1, mut alpha) = (BTreeMap::new(), BTreeMap::new());
        schema_paths(&vs["v1"], "", &mut v1);
        schema_paths(&vs["v1alpha1"], "", &mut alpha);
        let (ours_v1, ours_alpha) = conversion::version_only_paths(kind).unwrap();
        assert_eq!(
            ours_v1,
            only_in(&v1, &alpha),
            "{kind}: v1-only fields (CRD v1 minus v1alpha1)"
        );
        assert_eq!(
            ours_alpha,
            only_in(&alpha, &v1),
            "{kind}: v1alpha1-only fields (CRD v1alpha1 minus v1)"
        );
        // Fields present in both have the same type, format, enum, default and bounds; the
        // one kind of difference is `required`, listed here (conversion moves no value for it).
        let mut required = BTreeSet::new();
        for (p, a) in &v1 {
            let Some(b) = alpha.get(p) else { continue };
            let (mut a, mut b) = (a.clone(), b.clone());
            let ra = a.as_object_mut().unwrap().remove("required");
            let rb = b.as_object_mut().unwrap().remove("required");
            assert_eq!(
                a, b,
                "{kind} {p}: attributes differ between v1 and v1alpha1"
            );
            let set = |r: Option<Value>| -> BTreeSet<String> {
                r.and_then(|r| r.as_array().cloned())
                    .unwrap_or_default()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_string())
                    .collect()
            };
            let (ra, rb) = (set(ra), set(rb));
            for f in ra.difference(&rb) {
                required.insert(format!("v1 requires {p}.{f}"));
            }
            for f in rb.difference(&ra) {
                required.insert(format!("v1alpha1 requires {p}.{f}"));
            }
        }
        let expected: &[&str] = match kind {
            "RayCluster" => &[
                "v1alpha1 requires .spec.headGroupSpec.rayStartParams",
                "v1alpha1 requires .spec.workerGroupSpecs[].rayStartParams",
            ],
            "RayJob" => &[
                "v1alpha1 requires .spec.entrypoint",
                "v1alpha1 requires .spec.rayClusterSpec.headGroupSpec.rayStartParams",
                "v1alpha1 requires .spec.rayClusterSpec.workerGroupSpecs[].rayStartParams",
            ],
            _ => &[
                "v1 requires .spec.rayClusterConfig",
                "v1alpha1 requires .spec.rayClusterConfig.headGroupSpec.rayStartParams",
                "v1alpha1 requires .spec.rayClusterConfig.workerGroupSpecs[].rayStartParams",
            ],
        };
        assert_eq!(
            required.iter().map(String::as_str).collect::<Vec<_>>(),
            expected,
            "{kind}: required differences"
        );
    }
    // RayCronJob is v1 only: nothing to convert, and /convert refuses it.
    let vs = crd_versions("ray.io_raycronjobs.yaml");
    assert_eq!(vs.keys().collect::<Vec<_>>(), ["v1"]);
    assert!(conversion::version_only_paths("RayCronJob").is_none());
    assert_eq!(
        convert(
            &json!({"apiVersion": V1, "kind": "RayCronJob", "spec": {}}),
            V1ALPHA1
        ),
        Err(ConversionError::WrongKind("RayCronJob".into()))
    );
}

/// Segments of a dotted path: `(key, "[]" | "{}" | "")`.
fn segments(path: &str) -> Vec<(&str, &str)> {
    path.trim_start_matches('.')
        .split('.')
        .map(|s| {
            if let Some(k) = s.strip_suffix("[]") {
                (k, "[]")
            } else if let Some(k) = s.strip_suffix("{}") {
                (k, "{}")
            } else {
                (s, "")
            }
        })
        .collect()
}

/// Is any value at `path` present (any element of an array, any value of a map)?
fn present(v: &Value, segs: &[(&str, &str)]) -> bool {
    let Some(((key, kind), rest)) = segs.split_first() else {
        return true;
    };
    let Some(child) = v.get(*key) else {
        return false;
    };
    match *kind {
        "[]" => child
            .as_array()
            .is_some_and(|a| a.iter().any(|e| present(e, rest))),
        "{}" => child
            .as_object()
            .is_some_and(|m| m.values().any(|e| present(e, rest))),
        _ => present(child, rest),
    }
}

/// Removes every value at `path` (what the API server's pruning does to the other version's
/// fields).
fn prune(v: &mut Value, segs: &[(&str, &str)]) {
    let Some(((key, kind), rest)) = segs.split_first() else {
        return;
    };
    let Some(m) = v.as_object_mut() else { return };
    if rest.is_empty() && kind.is_empty() {
        m.remove(*key);
        return;
    }
    let Some(child) = m.get_mut(*key) else { return };
    match *kind {
        "[]" => {
            for e in child.as_array_mut().into_iter().flatten() {
                prune(e, rest);
            }
        }
        "{}" => {
            for e in child
                .as_object_mut()
                .into_iter()
                .flat_map(|m| m.values_mut())
            {
                prune(e, rest);
            }
        }
        _ => prune(child, rest),
    }
}

/// Sets `leaf` at `path`, creating objects, worker groups (`[]`, element `idx`, named from
/// `names`) and map entries (`{}`, key `key`) on the way.
fn plant(
    v: &mut Value,
    segs: &[(&str, &str)],
    leaf: Value,
    idx: usize,
    key: &str,
    names: &[Option<String>],
) {
    let Some(((k, kind), rest)) = segs.split_first() else {
        *v = leaf;
        return;
    };
    if !v.is_object() {
        *v = json!({});
    }
    let m = v.as_object_mut().unwrap();
    let child = m.entry(k.to_string()).or_insert(Value::Null);
    match *kind {
        "[]" => {
            if !child.is_array() {
                *child = json!([]);
            }
            let a = child.as_array_mut().unwrap();
            while a.len() <= idx {
                let mut g = json!({"rayStartParams": {}});
                if let Some(Some(n)) = names.get(a.len()) {
                    g["groupName"] = json!(n);
                }
                a.push(g);
            }
            plant(&mut a[idx], rest, leaf, idx, key, names);
        }
        "{}" => {
            if !child.is_object() {
                *child = json!({});
            }
            let e = child
                .as_object_mut()
                .unwrap()
                .entry(key.to_string())
                .or_insert(json!({"status": "RUNNING"}));
            plant(e, rest, leaf, idx, key, names);
        }
        _ => plant(child, rest, leaf, idx, key, names),
    }
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        "[a-z0-9 :/-]{0,10}".prop_map(Value::from),
        prop::collection::btree_map("[a-z]{1,4}", "[a-z]{0,4}", 0..3).prop_map(|m| json!(m)),
        prop::collection::vec("[a-z]{0,4}", 0..3).prop_map(|v| json!(v)),
    ]
}

const KINDS: [&str; 3] = ["RayCluster", "RayJob", "RayService"];

fn all_paths(kind: &str) -> &'static (Vec<String>, Vec<String>) {
    static P: OnceLock<Vec<(Vec<String>, Vec<String>)>> = OnceLock::new();
    let all = P.get_or_init(|| {
        KINDS
            .iter()
            .map(|k| conversion::version_only_paths(k).unwrap())
            .collect()
    });
    &all[KINDS.iter().position(|k| *k == kind).unwrap()]
}

/// A `kind` object with a random subset of both versions' only-fields (and of fields both
/// have) planted at random worker groups and map entries.
fn arb_object() -> impl Strategy<Value = (String, Value)> {
    (
        prop::sample::select(&KINDS[..]),
        prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                leaf(),
                0..3usize,
                prop::sample::select(&["app1", "app2", "a/b~c"][..]),
            ),
            0..12,
        ),
        prop::collection::vec(
            prop::option::of(prop::sample::select(&["g", "h"][..]).prop_map(String::from)),
            3,
        ),
        prop::option::of(prop::collection::btree_map(
            "[a-z]{1,4}",
            "[a-z]{0,4}",
            1..3,
        )),
    )
        .prop_map(|(kind, plants, names, annotations)| {
            let (v1, alpha) = all_paths(kind);
            // fields both versions have, as anchors the conversion must leave alone
            let common = [
                ".spec.rayClusterSpec.rayVersion",
                ".spec.rayClusterConfig.headGroupSpec.serviceType",
                ".spec.workerGroupSpecs[].maxReplicas",
                ".status.state",
                ".status.activeServiceStatus.applicationStatuses{}.message",
            ];
            let pool: Vec<&str> = v1
                .iter()
                .chain(alpha)
                .map(String::as_str)
                .chain(common)
                .collect();
            let mut obj = json!({"kind": kind, "metadata": {"name": "x", "namespace": "ns"}});
            if let Some(a) = annotations {
                obj["metadata"]["annotations"] = json!(a);
            }
            for (i, leaf, idx, key) in plants {
                let path = pool[i.index(pool.len())];
                plant(&mut obj, &segments(path), leaf, idx, key, &names);
            }
            (kind.to_string(), obj)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    /// A `v1` object (as the API server stores it: no v1alpha1-only fields) goes down and back
    /// up unchanged; the `v1alpha1` form carries none of the `v1`-only fields.
    #[test]
    fn v1_down_and_up_is_lossless((kind, mut obj) in arb_object()) {
        let (v1_only, alpha_only) = all_paths(&kind);
        for p in alpha_only {
            prune(&mut obj, &segments(p));
        }
        obj["apiVersion"] = json!(V1);
        let alpha = convert(&obj, V1ALPHA1).unwrap();
        prop_assert_eq!(&alpha["apiVersion"], V1ALPHA1);
        for p in v1_only {
            prop_assert!(!present(&alpha, &segments(p)), "{} left in v1alpha1: {}", p, alpha);
        }
        let had = v1_only.iter().any(|p| present(&obj, &segments(p)));
        prop_assert_eq!(alpha["metadata"]["annotations"].get(V1_FIELDS_ANNOTATION).is_some(), had);
        let back = convert(&alpha, V1).unwrap();
        prop_assert_eq!(&back, &obj);
        prop_assert_eq!(convert(&alpha, V1ALPHA1).unwrap(), alpha);
    }

    /// A `v1alpha1` object (no v1-only fields) goes up and back down unchanged; the `v1` form
    /// carries none of the `v1alpha1`-only fields.
    #[test]
    fn v1alpha1_up_and_down_is_lossless((kind, mut obj) in arb_object()) {
        let (v1_only, alpha_only) = all_paths(&kind);
        for p in v1_only {
            prune(&mut obj, &segments(p));
        }
        obj["apiVersion"] = json!(V1ALPHA1);
        let v1 = convert(&obj, V1).unwrap();
        prop_assert_eq!(&v1["apiVersion"], V1);
        for p in alpha_only {
            prop_assert!(!present(&v1, &segments(p)), "{} left in v1: {}", p, v1);
        }
        let had = alpha_only.iter().any(|p| present(&obj, &segments(p)));
        prop_assert_eq!(v1["metadata"]["annotations"].get(V1ALPHA1_FIELDS_ANNOTATION).is_some(), had);
        let back = convert(&v1, V1ALPHA1).unwrap();
        prop_assert_eq!(&back, &obj);
    }
}

/// Every RayJob / RayService document of the KubeRay samples.
fn samples() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for dir in ["samples-rayjob", "samples-rayservice"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(shared(dir))
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        for f in files {
            for d in yaml_docs(&f) {
                if matches!(d["kind"].as_str(), Some("RayJob" | "RayService")) {
                    out.push((f.file_name().unwrap().to_string_lossy().to_string(), d));
                }
            }
        }
    }
    out
}

#[test]
fn every_rayjob_and_rayservice_sample_round_trips() {
    let all = samples();
    let jobs = all.iter().filter(|(_, d)| d["kind"] == "RayJob").count();
    assert_eq!((jobs, all.len() - jobs), (19, 15), "the KubeRay samples");
    let mut with_v1_only = 0;
    for (file, obj) in &all {
        let kind = obj["kind"].as_str().unwrap();
        assert_eq!(obj["apiVersion"], V1, "{file}");
        let (v1_only, _) = all_paths(kind);
        let alpha = convert(obj, V1ALPHA1).unwrap_or_else(|e| panic!("{file}: {e}"));
        for p in v1_only {
            assert!(
                !present(&alpha, &segments(p)),
                "{file}: {p} left in v1alpha1"
            );
        }
        if v1_only.iter().any(|p| present(obj, &segments(p))) {
            with_v1_only += 1;
        }
        assert_eq!(
            alpha["spec"].get("entrypoint"),
            obj["spec"].get("entrypoint")
        );
        assert_eq!(convert(&alpha, V1).unwrap(), *obj, "{file}: round trip");
    }
    assert!(
        with_v1_only >= 10,
        "samples exercise v1-only fields: {with_v1_only}"
    );
}

#[test]
fn rayjob_and_rayservice_fields_move_and_come_back() {
    let job = json!({
        "apiVersion": V1, "kind": "RayJob", "metadata": {"name": "j"},
        "spec": {"entrypoint": "python x.py", "submissionMode": "HTTPMode", "backoffLimit": 2,
            "rayClusterSpec": {"rayVersion": "2.46.0", "headGroupSpec": {"rayStartParams": {}},
                "workerGroupSpecs": [{"groupName": "w", "numOfHosts": 2, "rayStartParams": {}}]}},
        "status": {"jobStatus": "RUNNING", "succeeded": 0,
            "rayClusterStatus": {"state": "ready", "conditions": []}}
    });
    let a = convert(&job, V1ALPHA1).unwrap();
    assert_eq!(
        a["spec"],
        json!({"entrypoint": "python x.py",
            "rayClusterSpec": {"rayVersion": "2.46.0", "headGroupSpec": {"rayStartParams": {}},
                "workerGroupSpecs": [{"groupName": "w", "rayStartParams": {}}]}})
    );
    assert_eq!(
        a["status"],
        json!({"jobStatus": "RUNNING", "rayClusterStatus": {"state": "ready"}})
    );
    assert_eq!(convert(&a, V1).unwrap(), job);

    let alpha_svc = json!({
        "apiVersion": V1ALPHA1, "kind": "RayService", "metadata": {"name": "s"},
        "spec": {"rayClusterConfig": {"headGroupSpec": {"rayStartParams": {}}}},
        "status": {"activeServiceStatus": {"applicationStatuses": {"app": {
            "status": "RUNNING", "healthLastUpdateTime": "2024-01-01T00:00:00Z",
            "serveDeploymentStatuses": {"d": {"status": "HEALTHY", "healthLastUpdateTime": "2024-01-01T00:00:01Z"}}}}}}
    });
    let v1 = convert(&alpha_svc, V1).unwrap();
    assert_eq!(
        v1["status"],
        json!({"activeServiceStatus": {"applicationStatuses": {"app": {
            "status": "RUNNING", "serveDeploymentStatuses": {"d": {"status": "HEALTHY"}}}}}})
    );
    assert!(v1["metadata"]["annotations"][V1ALPHA1_FIELDS_ANNOTATION].is_string());
    assert_eq!(convert(&v1, V1ALPHA1).unwrap(), alpha_svc);
    // an application removed while stored as v1 gets nothing back
    let mut edited = v1.clone();
    edited["status"]["activeServiceStatus"]["applicationStatuses"] =
        json!({"other": {"status": "DEPLOYING"}});
    let down = convert(&edited, V1ALPHA1).unwrap();
    assert_eq!(
        down["status"]["activeServiceStatus"]["applicationStatuses"],
        json!({"other": {"status": "DEPLOYING"}})
    );
    assert!(down["metadata"].get("annotations").is_none());
    // a broken annotation is an error naming it
    let mut bad = v1.clone();
    bad["metadata"]["annotations"][V1ALPHA1_FIELDS_ANNOTATION] = json!("[1]");
    let e = convert(&bad, V1ALPHA1).unwrap_err();
    assert!(e.to_string().contains(V1ALPHA1_FIELDS_ANNOTATION), "{e}");
}
