//! Differential test against KubeRay itself: `Mode::FirstError` must give exactly the message
//! KubeRay's controller validation (`ValidateRayClusterMetadata`, `…Spec`, `…UpgradeOptions`,
//! `…Status`) returns, on thousands of generated RayClusters, under default and alpha gates.
//!
//! KubeRay runs through `tools/kuberay-oracle` (a Go program importing ray-operator v1.7.0). The
//! proxy reachable from the build machine does not serve ray-operator v1.7.0, so the oracle is
//! built against a local KubeRay checkout (see tools/kuberay-oracle/README.md) and this test is
//! ignored by default. Run it with:
//!
//! ```sh
//! RAYGATE_KUBERAY_ORACLE=/path/to/kuberay-oracle cargo test --test rules_kuberay_diff -- --ignored
//! ```

mod common;

use common::{base, del, set};
use raygate::defaulting::apply_crd_defaults;
use raygate::rules::validate;
use raygate::violation::{FeatureGates, Mode, ValidateOptions};
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};

const ALL_GATES: &str = "RayClusterHistoryServer=true,RayClusterMTLS=true,RayClusterNetworkPolicy=true,GCSFaultToleranceEmbeddedStorage=true";

/// Edits that touch KubeRay's rules (pointer, value; `null` deletes).
fn catalog() -> Vec<(&'static str, Value)> {
    vec![
        ("/metadata/name", json!("a".repeat(54))),
        ("/metadata/name", json!("invalid.name")),
        ("/metadata/name", json!("Upper")),
        ("/spec/headGroupSpec/template/spec/containers", json!([])),
        ("/spec/headGroupSpec/rayStartParams/num-cpus", json!("1")),
        ("/spec/headGroupSpec/resources", json!({"CPU": "1"})),
        ("/spec/headGroupSpec/rayStartParams/labels", json!("a=b")),
        ("/spec/headGroupSpec/labels", json!({"bad key!": "v"})),
        ("/spec/headGroupSpec/labels", json!({"tier": "-bad"})),
        ("/spec/headGroupSpec/labels", json!({"ok.io/x": "fine"})),
        (
            "/spec/workerGroupSpecs/0/template/spec/containers",
            json!([]),
        ),
        ("/spec/workerGroupSpecs/0/maxReplicas", Value::Null),
        ("/spec/workerGroupSpecs/0/minReplicas", json!(-1)),
        ("/spec/workerGroupSpecs/0/maxReplicas", json!(-2)),
        ("/spec/workerGroupSpecs/0/minReplicas", json!(9)),
        (
            "/spec/workerGroupSpecs/0/rayStartParams/num-gpus",
            json!("1"),
        ),
        ("/spec/workerGroupSpecs/0/resources", json!({"GPU": "1"})),
        ("/spec/workerGroupSpecs/0/rayStartParams/labels", json!("")),
        (
            "/spec/workerGroupSpecs/0/labels",
            json!({"zone": "bad value"}),
        ),
        ("/spec/workerGroupSpecs/0/idleTimeoutSeconds", json!(-3)),
        ("/spec/workerGroupSpecs/0/idleTimeoutSeconds", json!(30)),
        ("/spec/workerGroupSpecs/0/priority", json!(4)),
        ("/spec/workerGroupSpecs/0/priority", json!(-4)),
        ("/spec/rayVersion", Value::Null),
        ("/spec/rayVersion", json!("nightly")),
        ("/spec/rayVersion", json!("2")),
        ("/spec/rayVersion", json!("2.51.0")),
        ("/spec/rayVersion", json!("2.54.1")),
        ("/spec/rayVersion", json!("v2.60")),
        ("/metadata/annotations/ray.io~1ft-enabled", json!("false")),
        ("/metadata/annotations/ray.io~1ft-enabled", json!("TRUE")),
        (
            "/metadata/annotations/ray.io~1external-storage-namespace",
            json!("ns"),
        ),
        (
            "/spec/gcsFaultToleranceOptions",
            json!({"redisAddress": "redis:6379"}),
        ),
        (
            "/spec/gcsFaultToleranceOptions",
            json!({"backend": "rocksdb"}),
        ),
        (
            "/spec/gcsFaultToleranceOptions",
            json!({"backend": "rocksdb", "redisAddress": "r:1", "redisPassword": {"value": "x"}}),
        ),
        (
            "/spec/gcsFaultToleranceOptions",
            json!({"backend": "rocksdb", "storage": {"claimName": "c", "accessModes": ["ReadWriteOnce"]}}),
        ),
        (
            "/spec/gcsFaultToleranceOptions",
            json!({"backend": "redis", "storage": {"size": "1Gi"}}),
        ),
        (
            "/spec/headGroupSpec/template/spec/containers/0/env",
            json!([{"name": "RAY_REDIS_ADDRESS", "value": "r:1"}]),
        ),
        (
            "/spec/headGroupSpec/template/spec/containers/0/env",
            json!([{"name": "REDIS_PASSWORD", "value": "p"}]),
        ),
        (
            "/spec/headGroupSpec/template/spec/containers/0/env",
            json!([{"name": "REDIS_USERNAME", "value": "u"}]),
        ),
        (
            "/spec/headGroupSpec/template/spec/containers/0/env",
            json!([{"name": "RAY_gcs_storage", "value": "x"}]),
        ),
        (
            "/spec/headGroupSpec/template/spec/containers/0/env",
            json!([{"name": "RAY_enable_autoscaler_v2", "value": "true"}]),
        ),
        (
            "/spec/headGroupSpec/template/spec/containers/0/env",
            json!([{"name": "RAY_enable_autoscaler_v2", "value": "True"}]),
        ),
        (
            "/spec/headGroupSpec/template/spec/containers/0/env",
            json!([{"name": "RAY_USE_TLS", "value": "1"}]),
        ),
        (
            "/spec/headGroupSpec/template/spec/containers/0/volumeMounts",
            json!([{"name": "gcs-storage", "mountPath": "/x"}]),
        ),
        (
            "/spec/headGroupSpec/template/spec/containers/0/volumeMounts",
            json!([{"name": "ray-tls", "mountPath": "/x"}]),
        ),
        (
            "/spec/headGroupSpec/template/spec/volumes",
            json!([{"name": "gcs-storage", "emptyDir": {}}]),
        ),
        (
            "/spec/headGroupSpec/rayStartParams/redis-password",
            json!("pw"),
        ),
        (
            "/spec/headGroupSpec/rayStartParams/redis-username",
            json!("u"),
        ),
        ("/spec/workerGroupSpecs/0/suspend", json!(true)),
        ("/spec/enableInTreeAutoscaling", json!(true)),
        ("/spec/enableInTreeAutoscaling", json!(false)),
        ("/spec/autoscalerOptions/version", json!("v2")),
        ("/spec/autoscalerOptions/version", json!("v1")),
        ("/spec/autoscalerOptions/idleTimeoutSeconds", json!(-1)),
        (
            "/spec/autoscalerOptions/env",
            json!([{"name": "KUBERAY_GEN_AUTOSCALER_START_CMD", "value": "x"}]),
        ),
        (
            "/spec/autoscalerOptions/env",
            json!([{"name": "RAY_TLS_CA_CERT", "value": "x"}]),
        ),
        (
            "/spec/autoscalerOptions/volumeMounts",
            json!([{"name": "x", "mountPath": "/etc/ray/tls"}]),
        ),
        (
            "/spec/headGroupSpec/template/spec/restartPolicy",
            json!("Always"),
        ),
        (
            "/spec/workerGroupSpecs/0/template/spec/restartPolicy",
            json!("OnFailure"),
        ),
        ("/spec/historyServerOptions", json!({})),
        (
            "/spec/historyServerOptions",
            json!({"collectorOptions": {"image": "c:1", "env": [{"name": "STORAGE_BACKEND", "value": "s3"}]}}),
        ),
        (
            "/spec/historyServerOptions",
            json!({"collectorOptions": {"env": [{"name": "STORAGE_BACKEND", "value": "gcs"}, {"name": "GCS_BUCKET", "value": "b"}]}}),
        ),
        (
            "/spec/historyServerOptions",
            json!({"collectorOptions": {"image": "c:1", "env": [{"name": "POD_IP", "value": "x"}]}}),
        ),
        (
            "/spec/historyServerOptions",
            json!({"collectorOptions": {"image": "c:1", "env": [{"name": "STORAGE_BACKEND", "value": "AZUREBLOB"}, {"name": "AZURE_STORAGE_AUTH_MODE", "value": "default"}]}}),
        ),
        (
            "/spec/historyServerOptions",
            json!({"collectorOptions": {"image": "c:1", "env": [{"name": "STORAGE_BACKEND", "value": "gcs"}, {"name": "GCS_BUCKET", "value": "b"}]}}),
        ),
        (
            "/spec/workerGroupSpecs/0/template/spec/containers/0/name",
            json!("ray-history-collector"),
        ),
        ("/spec/authOptions", json!({"mode": "token"})),
        (
            "/spec/authOptions",
            json!({"mode": "token", "enableK8sTokenAuth": true}),
        ),
        (
            "/spec/authOptions",
            json!({"mode": "token", "enableK8sTokenAuth": true, "secretName": "s"}),
        ),
        ("/spec/authOptions", json!({"enableK8sTokenAuth": true})),
        ("/spec/networkPolicy", json!({"mode": "DenyAll"})),
        (
            "/spec/networkPolicy",
            json!({"mode": "DenyAllEgress", "head": {"ingressRules": [{}]}}),
        ),
        (
            "/spec/networkPolicy",
            json!({"mode": "DenyAllIngress", "worker": {"egressRules": [{}]}}),
        ),
        (
            "/spec/networkPolicy",
            json!({"mode": "DenyAll", "workerGroups": [{"groupName": "nope"}]}),
        ),
        ("/spec/workerGroupSpecs/0/groupName", json!("Upper-Group")),
        ("/spec/tlsOptions", json!({"enabled": true})),
        ("/spec/tlsOptions", json!({"enabled": false})),
        (
            "/spec/workerGroupSpecs/0/template/spec/containers/0/env",
            json!([{"name": "RAY_TLS_SERVER_CERT", "value": "x"}]),
        ),
        ("/spec/upgradeStrategy", json!({"type": "Recreate"})),
        (
            "/metadata/labels/ray.io~1originated-from-crd",
            json!("RayJob"),
        ),
        (
            "/status/conditions",
            json!([
            {"type": "RayClusterSuspending", "status": "True", "reason": "r", "message": "m", "lastTransitionTime": "2026-01-01T00:00:00Z"},
            {"type": "RayClusterSuspended", "status": "True", "reason": "r", "message": "m", "lastTransitionTime": "2026-01-01T00:00:00Z"}]),
        ),
    ]
}

fn samples() -> Vec<Value> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/kuberay/samples");
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
    out
}

/// Deterministic documents: the samples and the base object, each with 0–5 catalog edits.
fn documents(n: usize) -> Vec<Value> {
    let cat = catalog();
    let mut starts = samples();
    starts.push(base());
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut docs = Vec::with_capacity(n);
    for i in 0..n {
        let mut d = starts[i % starts.len()].clone();
        let edits = (next() % 6) as usize;
        for _ in 0..edits {
            let (p, v) = &cat[(next() % cat.len() as u64) as usize];
            if d.pointer(p.rsplit_once('/').map_or("", |x| x.0)).is_none() && p.contains("/0/") {
                continue; // no worker group 0 / container 0 in this sample
            }
            if v.is_null() {
                del(&mut d, p);
            } else {
                set(&mut d, p, v.clone());
            }
        }
        apply_crd_defaults(&mut d);
        docs.push(d);
    }
    docs
}

fn run_oracle(oracle: &str, gates: &str, docs: &[Value]) -> Vec<Value> {
    let mut child = Command::new(oracle)
        .arg(gates)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start kuberay-oracle");
    let mut input = Vec::new();
    for d in docs {
        serde_json::to_writer(&mut input, d).unwrap();
        input.push(b'\n');
    }
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
#[ignore = "needs RAYGATE_KUBERAY_ORACLE (tools/kuberay-oracle built against KubeRay v1.7.0)"]
fn first_error_matches_kuberay() {
    let oracle = std::env::var("RAYGATE_KUBERAY_ORACLE").expect("RAYGATE_KUBERAY_ORACLE");
    let docs = documents(20_000);
    let mut compared = 0;
    let mut refused = 0;
    let mut mismatches = Vec::new();
    for gates in ["", ALL_GATES, "RayJobDeletionPolicy=false"] {
        let expected = run_oracle(&oracle, gates, &docs);
        assert_eq!(expected.len(), docs.len());
        let opts = ValidateOptions {
            gates: FeatureGates::parse(gates).unwrap(),
            mode: Mode::FirstError,
            strict: false,
        };
        let all_opts = ValidateOptions {
            mode: Mode::All,
            ..opts.clone()
        };
        for (d, k) in docs.iter().zip(&expected) {
            if k["step"] == "decode" || k["step"] == "panic" {
                continue;
            }
            // API-server and webhook findings are outside the controller's verdict.
            let all = validate(d, None, &all_opts);
            if all.iter().any(|v| {
                v.is_error()
                    && (v.rule.starts_with("CRD-") || v.rule == "RG-TYPE" || v.rule == "WH3")
            }) {
                continue;
            }
            let ours = validate(d, None, &opts);
            let ours_msg = ours.first().map_or("", |v| v.message.as_str());
            let theirs = k["error"].as_str().unwrap_or("");
            compared += 1;
            if !theirs.is_empty() {
                refused += 1;
            }
            if ours_msg != theirs {
                mismatches.push(format!(
                    "gates {gates:?}\n  kuberay: {theirs}\n  raygate: {ours_msg}\n  doc: {d}"
                ));
            }
        }
    }
    eprintln!(
        "compared {compared} verdicts with KubeRay ({refused} refusals), {} mismatches",
        mismatches.len()
    );
    assert!(
        compared > 10_000,
        "too few comparable documents: {compared}"
    );
    assert!(
        mismatches.is_empty(),
        "{}",
        mismatches
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
