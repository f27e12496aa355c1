//! End-to-end tests of `raygate serve` as a real kube-apiserver's admission and conversion
//! webhook: KubeRay's CRD with our `deploy/` conversion patch, the Validating/Mutating webhook
//! configurations from `deploy/` (url + caBundle of the test server instead of the Service),
//! every KubeRay sample, multi-violation objects, stored defaults, immutability on UPDATE,
//! server-side dry run, DELETE, `v1alpha1` ⇄ `v1` through the conversion webhook, and the whole
//! `deploy/` kustomization accepted by a server-side dry-run apply.
//!
//! The setup (server, CRDs, webhook configurations) is `tests/support/webhook_e2e.rs`, shared
//! with `tests/e2e_kinds.rs` (RayJob, RayService, RayCronJob).
//!
//! Run alone: `cargo test --test e2e_webhook`. Binaries: see `tests/support/controlplane.rs`.

#[path = "support/controlplane.rs"]
mod controlplane;
#[path = "support/webhook_e2e.rs"]
mod webhook_e2e;

use base64::Engine as _;
use kube::api::{
    Api, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};
use webhook_e2e::{
    api_error, assert_causes_match, causes, content, env, ints, metric_sum, not_contained, ns_name,
    prepare_deploy, rayclusters, raygate_bin, sample_doc, to_dynamic,
};

/// Samples KubeRay refuses under its default feature gates (`kuberay-rules.md` §6).
const REFUSED_SAMPLES: &[&str] = &[
    "ray-cluster.embedded-gcs-ft.yaml",
    "ray-cluster.historyserver.yaml",
    "ray-cluster.mtls.yaml",
    "ray-cluster.network-policy-deny-all.yaml",
];

/// `(path, message)` of every error `raygate validate -o json <file>` reports, per RayCluster
/// name, plus the exit status.
fn raygate_validate(file: &Path) -> (BTreeMap<String, BTreeSet<(String, String)>>, i32) {
    let out = std::process::Command::new(raygate_bin())
        .args(["validate", "-o", "json"])
        .arg(file)
        .output()
        .expect("run raygate validate");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "raygate validate -o json {}: not JSON ({e}): {}",
            file.display(),
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let mut per_name = BTreeMap::new();
    for f in v["files"].as_array().into_iter().flatten() {
        for d in f["documents"].as_array().into_iter().flatten() {
            if d["kind"] != "RayCluster" {
                continue;
            }
            let errs: BTreeSet<(String, String)> = d["findings"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|x| x["severity"] == "error")
                .map(|x| {
                    (
                        x["path"].as_str().unwrap_or("").to_string(),
                        x["message"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect();
            per_name.insert(d["name"].as_str().unwrap_or("").to_string(), errs);
        }
    }
    (per_name, out.status.code().unwrap_or(-1))
}

#[tokio::test]
async fn every_sample_is_admitted_or_refused_like_raygate_validate() {
    let e = env();
    let client = controlplane::shared().client();
    let dir = controlplane::kuberay_path("samples");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("samples dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    files.sort();
    let mut refused = Vec::new();
    let mut stored = 0;
    for file in &files {
        let path = dir.join(file);
        let Some(mut rc) = sample_doc(file) else {
            continue;
        };
        if let Some(m) = rc["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        let (expected, _) = raygate_validate(&path);
        let name = rc["metadata"]["name"]
            .as_str()
            .expect("sample name")
            .to_string();
        let ns = controlplane::create_namespace(&client, &ns_name("s", file)).await;
        let api = rayclusters(&client, &ns, "v1");
        match api.create(&PostParams::default(), &to_dynamic(rc)).await {
            Ok(_) => {
                stored += 1;
                let got = api.get(&name).await.expect("stored sample readable");
                assert_eq!(got.metadata.name.as_deref(), Some(name.as_str()));
                let exp = expected.get(&name).cloned().unwrap_or_default();
                assert!(
                    exp.is_empty(),
                    "{file}: stored, but raygate validate reports {exp:#?}"
                );
            }
            Err(kube::Error::Api(s)) => {
                assert_eq!(s.code, 422, "{file}: {s:?}");
                assert!(
                    e.validating_names.iter().any(|n| s
                        .message
                        .contains(&format!("admission webhook \"{n}\" denied the request"))),
                    "{file}: not refused by our webhook: {}",
                    s.message
                );
                let exp = expected.get(&name).cloned().unwrap_or_default();
                assert!(
                    !exp.is_empty(),
                    "{file}: refused, but raygate validate finds no error: {}",
                    s.message
                );
                assert_causes_match(file, &causes(&s), &exp);
                for (path, msg) in &exp {
                    assert!(
                        s.message.contains(path.as_str()) && s.message.contains(msg.as_str()),
                        "{file}: message lacks {path}: {msg}: {}",
                        s.message
                    );
                }
                refused.push(file.clone());
            }
            Err(err) => panic!("{file}: {err}"),
        }
    }
    assert_eq!(refused, REFUSED_SAMPLES, "refused samples");
    assert!(stored >= 40, "only {stored} samples stored");
}

/// A RayCluster with several violations in different places.
fn multi_violation(name: &str) -> Value {
    let mut rc = sample_doc("ray-cluster.sample.yaml").expect("sample");
    rc["metadata"] = json!({ "name": name });
    let mut g0 = rc["spec"]["workerGroupSpecs"][0].clone();
    g0["minReplicas"] = json!(5);
    g0["maxReplicas"] = json!(1);
    let mut g1 = rc["spec"]["workerGroupSpecs"][0].clone();
    g1["groupName"] = g0["groupName"].clone();
    rc["spec"]["workerGroupSpecs"] = json!([g0, g1]);
    rc
}

#[tokio::test]
async fn every_violation_reaches_the_client_with_its_field_path() {
    let _e = env();
    let client = controlplane::shared().client();
    let ns = controlplane::create_namespace(&client, "e2e-multi").await;
    let api = rayclusters(&client, &ns, "v1");
    let rc = multi_violation("multi");
    let expected: BTreeSet<(String, String)> =
        raygate::rules::validate(&rc, None, &Default::default())
            .into_iter()
            .filter(|v| v.is_error())
            .map(|v| (v.path, v.message))
            .collect();
    assert!(
        expected.len() >= 2,
        "the test object should break several rules: {expected:#?}"
    );
    let s = api_error(
        api.create(&PostParams::default(), &to_dynamic(rc.clone()))
            .await,
        "create",
    );
    assert_eq!(s.code, 422);
    assert_causes_match("multi", &causes(&s), &expected);
    // Also under dry run, and nothing is stored either way.
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let s = api_error(api.create(&dry, &to_dynamic(rc)).await, "dry-run create");
    assert_causes_match("multi (dry run)", &causes(&s), &expected);
    assert!(api.get_opt("multi").await.expect("get").is_none());
}

#[tokio::test]
async fn defaults_are_stored_updates_checked_dry_run_and_delete() {
    let e = env();
    let client = controlplane::shared().client();
    let ns = controlplane::create_namespace(&client, "e2e-lifecycle").await;
    let api = rayclusters(&client, &ns, "v1");
    // The autoscaler sample without autoscalerOptions: the CRD has no defaults there, so only
    // raygate's mutating webhook can fill them in.
    let mut rc = sample_doc("ray-cluster.autoscaler.yaml").expect("sample");
    rc["metadata"] = json!({ "name": "life" });
    assert_eq!(rc["spec"]["enableInTreeAutoscaling"], json!(true));
    rc["spec"]
        .as_object_mut()
        .expect("spec")
        .remove("autoscalerOptions");
    rc["spec"]["managedBy"] = json!("ray.io/kuberay-operator");

    // Server-side dry run: admitted and defaulted (through the webhooks), nothing written.
    let patched0 = metric_sum(e.admin_port, "mutate", Some("patched"));
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let d = api
        .create(&dry, &to_dynamic(rc.clone()))
        .await
        .expect("dry-run create");
    assert_eq!(d.metadata.name.as_deref(), Some("life"));
    assert!(
        d.data["spec"]["autoscalerOptions"].is_object(),
        "dry-run answer not defaulted: {}",
        d.data["spec"]
    );
    assert!(
        api.get_opt("life").await.expect("get").is_none(),
        "dry run wrote the object"
    );

    // Defaults: everything raygate's defaulting adds is in the stored object (which may carry
    // more: the API server applies every CRD default, e.g. container port protocols), and
    // defaulting the stored object again changes nothing.
    api.create(&PostParams::default(), &to_dynamic(rc.clone()))
        .await
        .expect("create");
    let stored = api.get("life").await.expect("read back");
    let stored_v = ints(&serde_json::to_value(&stored).expect("json"));
    let expected = ints(&raygate::defaulting::defaulted(&rc));
    if let Some(path) = not_contained(&stored_v["spec"], &expected["spec"], "spec") {
        panic!(
            "stored object lacks a raygate default at {path}\nstored: {}\nexpected: {}",
            stored_v["spec"], expected["spec"]
        );
    }
    assert_eq!(
        stored_v["spec"]["autoscalerOptions"],
        json!({
            "imagePullPolicy": "IfNotPresent",
            "idleTimeoutSeconds": 60,
            "upscalingMode": "Default",
            "resources": {
                "limits": {"cpu": "500m", "memory": "512Mi"},
                "requests": {"cpu": "500m", "memory": "512Mi"}
            }
        })
    );
    let again = raygate::defaulting::default_patch(&stored_v);
    assert!(
        again.0.is_empty(),
        "stored object lacks defaults: {again:?}"
    );
    assert!(
        metric_sum(e.admin_port, "mutate", Some("patched")) >= patched0 + 2.0,
        "the mutating webhook did not patch the dry run and the create"
    );

    // UPDATE changing spec.managedBy is refused; an allowed UPDATE passes. (The API server's
    // own CEL rule `self == oldSelf` runs before validating webhooks; raygate's rules give the
    // same refusal for the same old/new pair.)
    let mut upd = stored.clone();
    upd.data["spec"]["managedBy"] = json!("kueue.x-k8s.io/multikueue");
    let s = api_error(
        api.replace("life", &PostParams::default(), &upd).await,
        "managedBy update",
    );
    assert_eq!(s.code, 422, "{s:?}");
    assert!(
        causes(&s)
            .iter()
            .any(|(f, m)| f == "spec.managedBy" && m.contains("the managedBy field is immutable")),
        "no spec.managedBy immutability cause: {s:?}"
    );
    let new_v = serde_json::to_value(&upd).expect("json");
    let ours = raygate::rules::validate(&new_v, Some(&stored_v), &Default::default());
    assert!(
        ours.iter().any(|v| v.is_error()
            && v.path == "spec.managedBy"
            && v.message == "the managedBy field is immutable"),
        "raygate's rules disagree: {ours:?}"
    );
    let mut ok = api.get("life").await.expect("get");
    ok.data["spec"]["workerGroupSpecs"][0]["maxReplicas"] = json!(7);
    let after = api
        .replace("life", &PostParams::default(), &ok)
        .await
        .expect("allowed update");
    assert_eq!(
        after.data["spec"]["workerGroupSpecs"][0]["maxReplicas"],
        json!(7)
    );

    // DELETE passes (the webhooks allow it or are not called for it).
    api.delete("life", &DeleteParams::default())
        .await
        .expect("delete");
    let deadline = Instant::now() + Duration::from_secs(10);
    while api.get_opt("life").await.expect("get").is_some() {
        assert!(Instant::now() < deadline, "not deleted after 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn v1alpha1_and_v1_go_through_the_conversion_webhook_losslessly() {
    let e = env();
    let client = controlplane::shared().client();
    let ns = controlplane::create_namespace(&client, "e2e-convert").await;
    let v1 = rayclusters(&client, &ns, "v1");
    let alpha = rayclusters(&client, &ns, "v1alpha1");
    let c0 = metric_sum(e.admin_port, "convert", None);

    // v1 with v1-only fields -> read as v1alpha1 -> update through v1alpha1 -> read as v1.
    let mut rc = sample_doc("ray-cluster.sample.yaml").expect("sample");
    rc["metadata"] = json!({ "name": "conv" });
    rc["spec"]["managedBy"] = json!("ray.io/kuberay-operator");
    rc["spec"]["workerGroupSpecs"][0]["numOfHosts"] = json!(1);
    rc["spec"]["workerGroupSpecs"][0]["labels"] = json!({ "team": "a" });
    rc["spec"]["workerGroupSpecs"][0]["idleTimeoutSeconds"] = json!(120);
    rc["spec"]["enableInTreeAutoscaling"] = json!(true);
    rc["spec"]["autoscalerOptions"] = json!({ "version": "v2" });
    v1.create(&PostParams::default(), &to_dynamic(rc))
        .await
        .expect("create v1");
    let orig = serde_json::to_value(v1.get("conv").await.expect("get v1")).expect("json");

    let old = alpha.get("conv").await.expect("read as v1alpha1");
    assert_eq!(
        old.types.as_ref().map(|t| t.api_version.as_str()),
        Some("ray.io/v1alpha1")
    );
    assert!(
        old.data["spec"].get("managedBy").is_none(),
        "v1-only field in v1alpha1 view"
    );
    assert!(
        old.metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(raygate::conversion::V1_FIELDS_ANNOTATION)),
        "v1-only fields not kept in the annotation: {:?}",
        old.metadata.annotations
    );
    let mut upd = old.clone();
    upd.data["spec"]["workerGroupSpecs"][0]["maxReplicas"] = json!(9);
    alpha
        .replace("conv", &PostParams::default(), &upd)
        .await
        .expect("update through v1alpha1");

    let back = serde_json::to_value(v1.get("conv").await.expect("read as v1")).expect("json");
    let mut want = content(&orig);
    want["spec"]["workerGroupSpecs"][0]["maxReplicas"] = json!(9);
    assert_eq!(content(&back), want, "a field was lost through v1alpha1");

    // v1alpha1 write -> v1 read -> v1alpha1 read: same content both ways.
    let mut rc = sample_doc("ray-cluster.sample.yaml").expect("sample");
    rc["apiVersion"] = json!("ray.io/v1alpha1");
    rc["metadata"] = json!({ "name": "conv-old", "labels": { "x": "y" } });
    let created = alpha
        .create(&PostParams::default(), &to_dynamic(rc))
        .await
        .expect("create v1alpha1");
    let as_v1 = v1.get("conv-old").await.expect("read v1");
    assert_eq!(
        as_v1.data["spec"]["rayVersion"],
        created.data["spec"]["rayVersion"]
    );
    let as_alpha =
        serde_json::to_value(alpha.get("conv-old").await.expect("read v1alpha1")).expect("json");
    assert_eq!(
        content(&as_alpha),
        content(&serde_json::to_value(&created).expect("json"))
    );

    let c1 = metric_sum(e.admin_port, "convert", None);
    assert!(c1 >= c0 + 4.0, "conversion webhook calls {c0} -> {c1}");
}

#[tokio::test]
async fn the_whole_deploy_kustomization_passes_a_server_side_dry_run_apply() {
    let _e = env();
    let client = controlplane::shared().client();
    let deploy = prepare_deploy();
    let root = deploy.path().join("deploy");
    // Every kustomization under deploy/ (base, overlays, and the crd-conversion Component through
    // crd-with-conversion); a Component cannot be built on its own.
    let mut roots = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        let k = d.join("kustomization.yaml");
        if k.is_file()
            && !std::fs::read_to_string(&k)
                .expect("read")
                .contains("kind: Component")
        {
            roots.push(d.clone());
        }
        for e in std::fs::read_dir(&d).expect("read deploy").flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            }
        }
    }
    roots.sort();
    let rel: Vec<String> = roots
        .iter()
        .map(|r| {
            r.strip_prefix(&root)
                .expect("under root")
                .display()
                .to_string()
        })
        .collect();
    for must in [
        "base",
        "monitoring",
        "overlays/cert-manager",
        "overlays/self-managed",
        "crd-with-conversion",
    ] {
        assert!(
            rel.iter().any(|r| r == must),
            "no kustomization {must} in {rel:?}"
        );
    }

    // cert-manager's CRDs are not part of this project and cannot be fetched here: stand-ins
    // with open schemas let the API server accept the kinds (their fields are not checked).
    for (kind, plural, scope) in [
        ("Issuer", "issuers", "Namespaced"),
        ("ClusterIssuer", "clusterissuers", "Cluster"),
        ("Certificate", "certificates", "Namespaced"),
    ] {
        controlplane::install_crd(&client, json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": { "name": format!("{plural}.cert-manager.io") },
            "spec": {
                "group": "cert-manager.io",
                "names": { "kind": kind, "plural": plural, "singular": kind.to_lowercase(), "listKind": format!("{kind}List") },
                "scope": scope,
                "versions": [{ "name": "v1", "served": true, "storage": true,
                    "schema": { "openAPIV3Schema": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } } }]
            }
        })).await;
    }
    // Likewise the Prometheus Operator's PrometheusRule for deploy/monitoring (its rules are
    // checked by promtool in tests/monitoring.rs).
    controlplane::install_crd(&client, json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": "prometheusrules.monitoring.coreos.com" },
        "spec": {
            "group": "monitoring.coreos.com",
            "names": { "kind": "PrometheusRule", "plural": "prometheusrules", "singular": "prometheusrule", "listKind": "PrometheusRuleList" },
            "scope": "Namespaced",
            "versions": [{ "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } } }]
        }
    })).await;

    let discovery = kube::discovery::Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    let mut applied = BTreeMap::new();
    let built: Vec<Vec<Value>> = roots
        .iter()
        .map(|dir| controlplane::kustomize_build(dir))
        .collect();
    // Namespaces of every kustomization for real first (a dry-run object cannot live in a
    // missing namespace; deploy/autoscaler expects the namespace deploy/base creates).
    for o in built.iter().flatten().filter(|o| o["kind"] == "Namespace") {
        controlplane::create_namespace(&client, o["metadata"]["name"].as_str().expect("ns name"))
            .await;
    }
    for ((dir, name), objs) in roots.iter().zip(&rel).zip(built) {
        if name == "overlays/self-managed" {
            // The CA from `raygate certs generate` became both webhooks' caBundle.
            let ca = std::fs::read(dir.join("certs/ca.crt")).expect("ca.crt");
            let want = base64::engine::general_purpose::STANDARD.encode(ca);
            let bundles: Vec<&Value> = objs
                .iter()
                .filter(|o| {
                    o["kind"]
                        .as_str()
                        .is_some_and(|k| k.ends_with("WebhookConfiguration"))
                })
                .flat_map(|o| o["webhooks"].as_array().into_iter().flatten())
                .map(|h| &h["clientConfig"]["caBundle"])
                .collect();
            assert_eq!(
                bundles.len(),
                2 * raygate::model::Kind::ALL.len(),
                "{name}: one validating and one mutating webhook per kind"
            );
            // kustomize folds the base64 over lines; base64 decoders skip the line breaks.
            assert!(
                bundles.iter().all(|b| b
                    .as_str()
                    .is_some_and(|b| b.split_whitespace().collect::<String>() == want)),
                "{name}: caBundle {bundles:?}"
            );
        }
        for o in &objs {
            let api_version = o["apiVersion"].as_str().expect("apiVersion");
            let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
            let kind = o["kind"].as_str().expect("kind");
            let gvk = GroupVersionKind::gvk(group, version, kind);
            let (ar, caps) = discovery
                .resolve_gvk(&gvk)
                .unwrap_or_else(|| panic!("{name}: {gvk:?} is not served by the API server"));
            let obj_name = o["metadata"]["name"].as_str().expect("name");
            let api: Api<DynamicObject> = if caps.scope == kube::discovery::Scope::Namespaced {
                let ns = o["metadata"]["namespace"].as_str().unwrap_or_else(|| {
                    panic!("{name}: namespaced {kind} {obj_name} without namespace")
                });
                Api::namespaced_with(client.clone(), ns, &ar)
            } else {
                Api::all_with(client.clone(), &ar)
            };
            // Same field manager as the setup: what it applied (url instead of service) is
            // replaced, not merged.
            let got = api
                .patch(
                    obj_name,
                    &PatchParams::apply(controlplane::FIELD_MANAGER)
                        .dry_run()
                        .force(),
                    &Patch::Apply(o),
                )
                .await
                .unwrap_or_else(|err| panic!("{name}: {kind} {obj_name} refused: {err}"));
            if name == "overlays/self-managed" && kind.ends_with("WebhookConfiguration") {
                // The API server decoded the folded base64 into exactly the generated CA.
                let ca = std::fs::read(dir.join("certs/ca.crt")).expect("ca.crt");
                let want = base64::engine::general_purpose::STANDARD.encode(ca);
                for h in got.data["webhooks"].as_array().into_iter().flatten() {
                    assert_eq!(h["clientConfig"]["caBundle"], json!(want), "{name}: {kind}");
                }
            }
            *applied.entry(name.clone()).or_insert(0) += 1;
        }
    }
    eprintln!("server-side dry-run apply accepted: {applied:?}");
    assert!(
        applied.get("base").copied().unwrap_or(0) >= 7,
        "{applied:?}"
    );
}
