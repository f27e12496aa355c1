//! End-to-end tests of `raygate serve` for RayJob, RayService and RayCronJob on a real
//! kube-apiserver (issue #13): KubeRay's CRDs (RayJob and RayService with `deploy/`'s conversion
//! patch) and the Validating/Mutating webhook configurations from `deploy/base`, set up by
//! `tests/support/webhook_e2e.rs` as for `tests/e2e_webhook.rs`.
//!
//! - a RayJob and a RayService with three violations in their embedded cluster spec and one in
//!   their own fields are refused at create with all four causes and their field paths;
//! - every sample in `../shared/kuberay/samples-{rayjob,rayservice,raycronjob}` (all valid under
//!   KubeRay's default gates, see `tests/samples_kinds_verdicts.rs`) is stored with what
//!   `raygate default` prints for it, and defaulting the stored object again changes nothing;
//! - the embedded spec's autoscaler defaults are stored when autoscaling is on;
//! - a `v1alpha1` RayJob (and RayService) round-trips through `/convert`.
//!
//! Run alone: `cargo test --test e2e_kinds`. Binaries: see `tests/support/controlplane.rs`.

#[path = "support/controlplane.rs"]
mod controlplane;
#[path = "support/webhook_e2e.rs"]
mod webhook_e2e;

use kube::api::PostParams;
use raygate::model::Kind;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use webhook_e2e::{
    api_error, assert_causes_match, causes, content, env, ints, metric_sum, not_contained, ns_name,
    ray_api, raygate_bin, to_dynamic,
};

const SAMPLE_DIRS: &[&str] = &["samples-rayjob", "samples-rayservice", "samples-raycronjob"];

/// The first document of `kind` in `../shared/kuberay/<dir>/<file>`.
fn kind_sample(dir: &str, file: &str, kind: Kind) -> Value {
    controlplane::yaml_docs(&controlplane::kuberay_path(&format!("{dir}/{file}")))
        .into_iter()
        .find(|d| d["kind"] == kind.name())
        .unwrap_or_else(|| panic!("{dir}/{file}: no {}", kind.name()))
}

/// `(path, message)` of every error raygate's rules report for `obj` (CRD defaults applied
/// first, as the API server does before the validating webhooks).
fn expected_errors(kind: Kind, obj: &Value) -> BTreeSet<(String, String)> {
    let mut o = obj.clone();
    raygate::defaulting::apply_crd_defaults_kind(kind, &mut o);
    raygate::rules::kinds::validate_kind(kind, &o, None, &Default::default())
        .into_iter()
        .filter(|v| v.is_error())
        .map(|v| (v.path, v.message))
        .collect()
}

/// Three violations in the cluster spec at `cluster` (a JSON pointer): worker group 0 with
/// `minReplicas` 5 above `maxReplicas` 2, a second group with the same name, and an
/// `idleTimeoutSeconds` without autoscaler v2. None of them is a CRD schema error, so the API
/// server lets them through to the webhook.
fn break_cluster_spec(obj: &mut Value, cluster: &str) {
    let cs = obj.pointer_mut(cluster).expect("cluster spec");
    let mut g0 = cs["workerGroupSpecs"][0].clone();
    let mut g1 = g0.clone();
    g0["minReplicas"] = json!(5);
    g0["maxReplicas"] = json!(2);
    g0["replicas"] = json!(2);
    g1["minReplicas"] = json!(0);
    g1["maxReplicas"] = json!(3);
    g1["replicas"] = json!(0);
    g1["idleTimeoutSeconds"] = json!(60);
    cs["workerGroupSpecs"] = json!([g0, g1]);
}

/// Creating `obj` is refused by raygate's validating webhook for `kind` with exactly the
/// expected causes: four, three under `cluster_path` (with `min_path` among them) and one
/// elsewhere (`own_path`).
async fn refused_with_four_causes(
    kind: Kind,
    obj: Value,
    cluster_path: &str,
    min_path: &str,
    own_path: &str,
) {
    let client = controlplane::shared().client();
    let e = env();
    let name = obj["metadata"]["name"].as_str().expect("name").to_string();
    let expected = expected_errors(kind, &obj);
    let paths: BTreeSet<&str> = expected.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(expected.len(), 4, "{}: {expected:#?}", kind.name());
    assert_eq!(
        paths
            .iter()
            .filter(|p| p.starts_with(&format!("{cluster_path}.")))
            .count(),
        3,
        "three violations in the embedded spec: {paths:?}"
    );
    assert!(paths.contains(min_path), "{paths:?}");
    assert!(paths.contains(own_path), "{paths:?}");

    let ns = controlplane::create_namespace(&client, &format!("e2e-multi-{}", kind.plural())).await;
    let api = ray_api(&client, &ns, "v1", kind);
    let s = api_error(
        api.create(&PostParams::default(), &to_dynamic(obj.clone()))
            .await,
        "create",
    );
    assert_eq!(s.code, 422, "{s:?}");
    let hook = format!("v{}.raygate.io", kind.name().to_lowercase());
    assert!(
        e.validating_names.contains(&hook),
        "{hook} not in {:?}",
        e.validating_names
    );
    assert!(
        s.message
            .contains(&format!("admission webhook \"{hook}\" denied the request")),
        "{}",
        s.message
    );
    assert!(
        s.message
            .contains(&format!("{}.ray.io \"{name}\" is invalid", kind.name())),
        "{}",
        s.message
    );
    let got = causes(&s);
    assert_causes_match(kind.name(), &got, &expected);
    for (path, msg) in &got {
        assert!(
            s.message.contains(&format!("{path}: {msg}")),
            "message lacks {path}: {msg}: {}",
            s.message
        );
    }
    // Under dry run too, and nothing is stored either way.
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let s = api_error(api.create(&dry, &to_dynamic(obj)).await, "dry-run create");
    assert_causes_match(kind.name(), &causes(&s), &expected);
    assert!(api.get_opt(&name).await.expect("get").is_none());
}

#[tokio::test]
async fn a_rayjob_with_four_violations_is_refused_with_every_cause_and_path() {
    let mut job = kind_sample("samples-rayjob", "ray-job.sample.yaml", Kind::RayJob);
    job["metadata"] = json!({ "name": "multi" });
    break_cluster_spec(&mut job, "/spec/rayClusterSpec");
    // Own field: not a CRD error (no minimum), KubeRay's ValidateRayJobSpec refuses it.
    job["spec"]["activeDeadlineSeconds"] = json!(-5);
    refused_with_four_causes(
        Kind::RayJob,
        job,
        "spec.rayClusterSpec",
        "spec.rayClusterSpec.workerGroupSpecs[0].minReplicas",
        "spec.activeDeadlineSeconds",
    )
    .await;
}

#[tokio::test]
async fn a_rayservice_with_four_violations_is_refused_with_every_cause_and_path() {
    let mut svc = kind_sample(
        "samples-rayservice",
        "ray-service.sample.yaml",
        Kind::RayService,
    );
    svc["metadata"] = json!({ "name": "multi" });
    break_cluster_spec(&mut svc, "/spec/rayClusterConfig");
    // Own field: the CRD has no enum here, KubeRay's ValidateRayServiceSpec refuses it.
    svc["spec"]["upgradeStrategy"] = json!({ "type": "Rolling" });
    refused_with_four_causes(
        Kind::RayService,
        svc,
        "spec.rayClusterConfig",
        "spec.rayClusterConfig.workerGroupSpecs[0].minReplicas",
        "spec.upgradeStrategy.type",
    )
    .await;
}

/// `raygate default <file>`: the documents it prints.
fn raygate_default(file: &std::path::Path) -> Vec<Value> {
    let out = std::process::Command::new(raygate_bin())
        .arg("default")
        .arg(file)
        .output()
        .expect("run raygate default");
    assert!(
        out.status.success(),
        "raygate default {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let tmp = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(tmp.path(), &out.stdout).expect("write");
    controlplane::yaml_docs(tmp.path())
}

/// `v` without object members whose value is null: the API server drops those (a sample's empty
/// `metadata:` is stored as no metadata), so they cannot be compared.
fn drop_nulls(v: Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .filter(|(_, x)| !x.is_null())
                .map(|(k, x)| (k, drop_nulls(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(drop_nulls).collect()),
        x => x,
    }
}

#[tokio::test]
async fn every_sample_is_stored_with_the_defaults_raygate_default_prints() {
    let e = env();
    let client = controlplane::shared().client();
    let patched0: f64 = Kind::ALL[1..]
        .iter()
        .map(|k| {
            metric_sum(
                e.admin_port,
                &format!("mutate-{}", k.name().to_lowercase()),
                Some("patched"),
            )
        })
        .sum();
    let mut stored = Vec::new();
    let mut changed_by_defaulting = 0;
    for dir in SAMPLE_DIRS {
        let root = controlplane::kuberay_path(dir);
        let mut files: Vec<String> = std::fs::read_dir(&root)
            .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".yaml"))
            .collect();
        files.sort();
        for file in &files {
            let path = root.join(file);
            let raw = controlplane::yaml_docs(&path);
            let defaulted = raygate_default(&path);
            assert_eq!(raw.len(), defaulted.len(), "{file}: documents");
            let ns = controlplane::create_namespace(&client, &ns_name("k", file)).await;
            for (orig, want) in raw.into_iter().zip(defaulted) {
                let Some(kind) = orig["kind"]
                    .as_str()
                    .and_then(Kind::from_name)
                    .filter(|k| *k != Kind::RayCluster)
                else {
                    continue;
                };
                let mut obj = orig.clone();
                if let Some(m) = obj["metadata"].as_object_mut() {
                    m.remove("namespace");
                }
                let api = ray_api(&client, &ns, "v1", kind);
                let created = api
                    .create(&PostParams::default(), &to_dynamic(obj))
                    .await
                    .unwrap_or_else(|err| {
                        panic!("{file}: {} refused: {err}", kind.name());
                    });
                let name = created.metadata.name.clone().expect("name");
                let got =
                    ints(&serde_json::to_value(api.get(&name).await.expect("read back")).unwrap());
                let want = drop_nulls(ints(&want));
                if want["spec"] != ints(&orig)["spec"] {
                    changed_by_defaulting += 1;
                }
                if let Some(at) = not_contained(&got["spec"], &want["spec"], "spec") {
                    panic!(
                        "{file}: stored {} lacks what raygate default prints at {at}\nstored: {}\nraygate default: {}",
                        kind.name(),
                        got["spec"],
                        want["spec"]
                    );
                }
                let again = raygate::defaulting::default_patch_kind(kind, &got);
                assert!(
                    again.0.is_empty(),
                    "{file}: defaulting the stored object again patches {again:?}"
                );
                stored.push(format!("{file} {}", kind.name()));
            }
        }
    }
    eprintln!("stored {} samples", stored.len());
    assert_eq!(
        stored.len(),
        19 + 15 + 2,
        "every RayJob, RayService and RayCronJob of the samples: {stored:#?}"
    );
    assert!(
        changed_by_defaulting > 0,
        "no sample got a default, so this test proves nothing"
    );
    let patched1: f64 = Kind::ALL[1..]
        .iter()
        .map(|k| {
            metric_sum(
                e.admin_port,
                &format!("mutate-{}", k.name().to_lowercase()),
                Some("patched"),
            )
        })
        .sum();
    assert!(
        patched1 >= patched0 + 1.0,
        "raygate's mutating webhooks patched nothing ({patched0} -> {patched1})"
    );
}

/// The autoscaler defaults of the embedded spec (not CRD defaults: only raygate's mutating
/// webhook adds them) are stored for a RayJob, a RayService and a RayCronJob with autoscaling on.
#[tokio::test]
async fn embedded_autoscaler_defaults_are_stored() {
    let _e = env();
    let client = controlplane::shared().client();
    let ns = controlplane::create_namespace(&client, "e2e-kinds-autoscaler").await;
    let autoscaler = json!({
        "imagePullPolicy": "IfNotPresent",
        "idleTimeoutSeconds": 60,
        "upscalingMode": "Default",
        "resources": {
            "limits": {"cpu": "500m", "memory": "512Mi"},
            "requests": {"cpu": "500m", "memory": "512Mi"}
        }
    });
    for (kind, dir, file, cluster) in [
        (
            Kind::RayJob,
            "samples-rayjob",
            "ray-job.sample.yaml",
            "/spec/rayClusterSpec",
        ),
        (
            Kind::RayService,
            "samples-rayservice",
            "ray-service.sample.yaml",
            "/spec/rayClusterConfig",
        ),
        (
            Kind::RayCronJob,
            "samples-raycronjob",
            "ray-cronjob.sample.yaml",
            "/spec/jobTemplate/rayClusterSpec",
        ),
    ] {
        let mut obj = kind_sample(dir, file, kind);
        obj["metadata"] = json!({ "name": "autoscaled" });
        let cs = obj.pointer_mut(cluster).expect("cluster spec");
        cs["enableInTreeAutoscaling"] = json!(true);
        cs.as_object_mut().unwrap().remove("autoscalerOptions");
        let api = ray_api(&client, &ns, "v1", kind);
        api.create(&PostParams::default(), &to_dynamic(obj))
            .await
            .unwrap_or_else(|err| panic!("{}: {err}", kind.name()));
        let got = ints(&serde_json::to_value(api.get("autoscaled").await.expect("get")).unwrap());
        assert_eq!(
            got.pointer(&format!("{cluster}/autoscalerOptions")),
            Some(&autoscaler),
            "{}: {}",
            kind.name(),
            got["spec"]
        );
    }
}

#[tokio::test]
async fn v1alpha1_rayjob_and_rayservice_round_trip_through_convert() {
    let e = env();
    let client = controlplane::shared().client();
    let ns = controlplane::create_namespace(&client, "e2e-kinds-convert").await;
    let c0 = metric_sum(e.admin_port, "convert", None);
    for (kind, dir, file) in [
        (Kind::RayJob, "samples-rayjob", "ray-job.sample.yaml"),
        (
            Kind::RayService,
            "samples-rayservice",
            "ray-service.sample.yaml",
        ),
    ] {
        let v1 = ray_api(&client, &ns, "v1", kind);
        let alpha = ray_api(&client, &ns, "v1alpha1", kind);
        let mut obj = kind_sample(dir, file, kind);
        obj["metadata"] = json!({ "name": "conv-old", "labels": { "x": "y" } });
        // A v1alpha1 object as a v1alpha1 client writes it: raygate's conversion drops the
        // v1-only fields (into an annotation, removed here).
        let mut old = raygate::conversion::convert(&obj, raygate::conversion::V1ALPHA1)
            .expect("convert to v1alpha1");
        if let Some(a) = old["metadata"]["annotations"].as_object_mut() {
            a.remove(raygate::conversion::V1_FIELDS_ANNOTATION);
            if a.is_empty() {
                old["metadata"]
                    .as_object_mut()
                    .unwrap()
                    .remove("annotations");
            }
        }
        assert_eq!(old["apiVersion"], "ray.io/v1alpha1");
        let created = alpha
            .create(&PostParams::default(), &to_dynamic(old))
            .await
            .unwrap_or_else(|err| panic!("{}: create v1alpha1: {err}", kind.name()));
        // Stored as v1 (the storage version): read as v1 it is raygate's conversion of it.
        let as_v1 = serde_json::to_value(v1.get("conv-old").await.expect("read v1")).unwrap();
        assert_eq!(as_v1["apiVersion"], "ray.io/v1");
        let created_v = serde_json::to_value(&created).unwrap();
        let want_v1 = raygate::conversion::convert(&created_v, raygate::conversion::V1)
            .expect("convert to v1");
        assert_eq!(
            content(&as_v1)["spec"],
            content(&want_v1)["spec"],
            "{}",
            kind.name()
        );
        // Read back as v1alpha1: what was created, field for field.
        let as_alpha =
            serde_json::to_value(alpha.get("conv-old").await.expect("read v1alpha1")).unwrap();
        assert_eq!(as_alpha["apiVersion"], "ray.io/v1alpha1");
        assert_eq!(content(&as_alpha), content(&created_v), "{}", kind.name());

        // v1 with v1-only fields -> update through v1alpha1 -> read as v1: nothing lost.
        let mut obj = kind_sample(dir, file, kind);
        obj["metadata"] = json!({ "name": "conv" });
        match kind {
            Kind::RayJob => {
                obj["spec"]["submissionMode"] = json!("HTTPMode");
                obj["spec"]["backoffLimit"] = json!(0);
                obj["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["numOfHosts"] = json!(1);
            }
            _ => {
                obj["spec"]["rayClusterDeletionDelaySeconds"] = json!(30);
                obj["spec"]["excludeHeadPodFromServeSvc"] = json!(true);
            }
        }
        v1.create(&PostParams::default(), &to_dynamic(obj))
            .await
            .unwrap_or_else(|err| panic!("{}: create v1: {err}", kind.name()));
        let orig = serde_json::to_value(v1.get("conv").await.expect("get v1")).unwrap();
        let mut down = alpha.get("conv").await.expect("read as v1alpha1");
        assert!(
            down.metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(raygate::conversion::V1_FIELDS_ANNOTATION)),
            "{}: v1-only fields not kept in the annotation",
            kind.name()
        );
        down.metadata
            .labels
            .get_or_insert_default()
            .insert("touched".into(), "yes".into());
        alpha
            .replace("conv", &PostParams::default(), &down)
            .await
            .unwrap_or_else(|err| panic!("{}: update via v1alpha1: {err}", kind.name()));
        let back = serde_json::to_value(v1.get("conv").await.expect("read v1")).unwrap();
        let mut want = content(&orig);
        want["metadata"]["labels"] = json!({ "touched": "yes" });
        assert_eq!(
            content(&back),
            want,
            "{}: lost through v1alpha1",
            kind.name()
        );
    }
    let c1 = metric_sum(e.admin_port, "convert", None);
    assert!(c1 >= c0 + 4.0, "conversion webhook calls {c0} -> {c1}");
}
