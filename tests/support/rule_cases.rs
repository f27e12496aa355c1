//! The rule table shared by `tests/rules_table.rs` (offline verdicts) and `tests/e2e_policy.rs`
//! (the exported admission policies on a real API server): for every rule id, one object that
//! triggers it (exact rule, field path, message and severity) and a close variant that does not.
//! Objects are built from a valid base with JSON-pointer edits.
//!
//! Include with `mod common;` at the crate root and
//! `#[path = "support/rule_cases.rs"] mod rule_cases;`.
#![allow(dead_code)]
#![allow(clippy::cloned_ref_to_slice_refs)] // table rows read better with `x.clone()`

use crate::common::{base, with};
use raygate::model::Kind;
use raygate::violation::Severity;
use serde_json::{Value, json};

pub const HC0: &str = "/spec/headGroupSpec/template/spec/containers/0";
pub const WG0: &str = "/spec/workerGroupSpecs/0";
pub const ALL_GATES: &str = "RayClusterHistoryServer=true,RayClusterMTLS=true,RayClusterNetworkPolicy=true,GCSFaultToleranceEmbeddedStorage=true";
pub const DNS1035: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

pub struct Case {
    pub id: &'static str,
    /// The kind of `bad`, `good` and `old` (RayCluster in this table).
    pub kind: Kind,
    pub path: String,
    pub msg: String,
    pub severity: Severity,
    pub gates: &'static str,
    pub bad: Value,
    pub good: Value,
    pub old: Option<Value>,
}

pub fn case(id: &'static str, path: &str, msg: &str, bad: Value, good: Value) -> Case {
    Case {
        id,
        kind: Kind::RayCluster,
        path: path.to_string(),
        msg: msg.to_string(),
        severity: Severity::Error,
        gates: "",
        bad,
        good,
        old: None,
    }
}

impl Case {
    pub fn gates(mut self, g: &'static str) -> Self {
        self.gates = g;
        self
    }
    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }
    pub fn old(mut self, o: Value) -> Self {
        self.old = Some(o);
        self
    }
    pub fn kind(mut self, k: Kind) -> Self {
        self.kind = k;
        self
    }
}

fn p(s: &str) -> String {
    s.to_string()
}

fn e(edits: &[(String, Value)]) -> Value {
    let v: Vec<(&str, Value)> = edits.iter().map(|(a, b)| (a.as_str(), b.clone())).collect();
    with(&v)
}

fn hc0(rest: &str) -> String {
    format!("{HC0}{rest}")
}

fn wg0(rest: &str) -> String {
    format!("{WG0}{rest}")
}

fn gcs(opts: Value) -> (String, Value) {
    (p("/spec/gcsFaultToleranceOptions"), opts)
}

fn collector(env: Value) -> Value {
    json!({"collectorOptions": {"image": "collector:1", "env": env}})
}

fn cond(t: &str, status: &str) -> Value {
    json!({"type": t, "status": status, "reason": "r", "message": "m", "lastTransitionTime": "2026-01-01T00:00:00Z"})
}

pub fn cases() -> Vec<Case> {
    let del = json!("<delete>");
    let autoscaling = (p("/spec/enableInTreeAutoscaling"), json!(true));
    let v2 = (p("/spec/autoscalerOptions/version"), json!("v2"));
    let rocksdb = gcs(json!({"backend": "rocksdb"}));
    let redis = gcs(json!({"redisAddress": "redis:6379"}));
    let token = (p("/spec/authOptions/mode"), json!("token"));
    let k8s_auth = (p("/spec/authOptions/enableK8sTokenAuth"), json!(true));
    let tls_on = (p("/spec/tlsOptions"), json!({"enabled": true}));
    let good_collector = collector(
        json!([{"name": "STORAGE_BACKEND", "value": "gcs"}, {"name": "GCS_BUCKET", "value": "b"}]),
    );
    let group = |name: &str| {
        let mut g = base()["spec"]["workerGroupSpecs"][0].clone();
        g["groupName"] = json!(name);
        g
    };
    vec![
        // --- API server (CRD) ---
        case("CRD-REQUIRED", "spec.headGroupSpec", "Required value",
            e(&[(p("/spec/headGroupSpec"), del.clone())]), base()),
        case("CRD-REQUIRED", "spec.workerGroupSpecs[0].groupName", "Required value",
            e(&[(wg0("/groupName"), del.clone())]), base()),
        case("CRD-REQUIRED", "spec.headGroupSpec.template.spec.containers", "Required value",
            e(&[(hc0(""), del.clone()), (p("/spec/headGroupSpec/template/spec/containers"), del.clone())]), base()),
        case("CRD-ENUM", "spec.autoscalerOptions.upscalingMode",
            "Unsupported value: \"Fast\": supported values: \"Default\", \"Aggressive\", \"Conservative\"",
            e(&[(p("/spec/autoscalerOptions/upscalingMode"), json!("Fast"))]),
            e(&[(p("/spec/autoscalerOptions/upscalingMode"), json!("Conservative"))])),
        case("CRD-ENUM", "spec.autoscalerOptions.version",
            "Unsupported value: \"v3\": supported values: \"v1\", \"v2\"",
            e(&[(p("/spec/autoscalerOptions/version"), json!("v3"))]),
            e(&[(p("/spec/autoscalerOptions/version"), json!("v1"))])),
        case("CRD-MANAGEDBY", "spec.managedBy",
            "the managedBy field value must be either 'ray.io/kuberay-operator' or 'kueue.x-k8s.io/multikueue'",
            e(&[(p("/spec/managedBy"), json!("me"))]),
            e(&[(p("/spec/managedBy"), json!("kueue.x-k8s.io/multikueue"))])),
        case("CRD-IMMUTABLE-MANAGEDBY", "spec.managedBy", "the managedBy field is immutable",
            e(&[(p("/spec/managedBy"), json!("kueue.x-k8s.io/multikueue"))]),
            e(&[(p("/spec/managedBy"), json!("ray.io/kuberay-operator"))]))
            .old(e(&[(p("/spec/managedBy"), json!("ray.io/kuberay-operator"))])),
        case("CRD-IMMUTABLE-BACKEND", "spec.gcsFaultToleranceOptions.backend", "gcsFaultToleranceOptions.backend is immutable",
            e(&[rocksdb.clone()]), e(&[gcs(json!({"backend": "redis"}))]))
            .old(e(&[gcs(json!({"backend": "redis"}))])).gates(ALL_GATES),
        case("RG-TYPE", "spec.workerGroupSpecs[0].minReplicas", "invalid type: string \"one\", expected i32",
            e(&[(wg0("/minReplicas"), json!("one"))]), base()),
        case("RG-TYPE", "spec.enableInTreeAutoscaling", "invalid type: string \"yes\", expected a boolean",
            e(&[(p("/spec/enableInTreeAutoscaling"), json!("yes"))]), e(&[(p("/spec/enableInTreeAutoscaling"), json!(false))])),
        case("RG-TYPE", "", "a RayCluster must be a JSON object, got array", json!([]), base()),
        case("CRD-REQUIRED", "spec.workerGroupSpecs[0].template.spec.containers[0].name", "Required value",
            e(&[(wg0("/template/spec/containers/0/name"), del.clone())]), base()),
        // --- metadata / webhook ---
        case("M1", "metadata.name", "RayCluster name should be no more than 53 characters",
            e(&[(p("/metadata/name"), json!("a".repeat(54)))]), e(&[(p("/metadata/name"), json!("a".repeat(53)))])),
        case("M2", "metadata.name", &format!("RayCluster name should be a valid DNS1035 label: [{DNS1035}]"),
            e(&[(p("/metadata/name"), json!("invalid.name"))]), e(&[(p("/metadata/name"), json!("valid-name"))])),
        case("WH3", "spec.workerGroupSpecs[1].groupName", "worker group names must be unique",
            e(&[(p("/spec/workerGroupSpecs/1"), group("workers"))]), e(&[(p("/spec/workerGroupSpecs/1"), group("workers-2"))])),
        // --- head group ---
        case("S1", "spec.headGroupSpec.template.spec.containers", "headGroupSpec should have at least one container",
            e(&[(p("/spec/headGroupSpec/template/spec/containers"), json!([]))]), base()),
        case("S2", "spec.headGroupSpec.resources",
            "resource fields should not be set in both rayStartParams and Resources for Head group; please use only one",
            e(&[(p("/spec/headGroupSpec/rayStartParams/num-cpus"), json!("1")), (p("/spec/headGroupSpec/resources"), json!({"CPU": "1"}))]),
            e(&[(p("/spec/headGroupSpec/rayStartParams/num-cpus"), json!("")), (p("/spec/headGroupSpec/resources"), json!({"CPU": "1"}))])),
        case("S3", "spec.headGroupSpec.rayStartParams.labels",
            "rayStartParams['labels'] is not supported for Head group; please use the top-level Labels field instead",
            e(&[(p("/spec/headGroupSpec/rayStartParams/labels"), json!(""))]), e(&[(p("/spec/headGroupSpec/labels"), json!({"a": "b"}))])),
        case("S4", "spec.headGroupSpec.labels[bad key!]",
            "invalid label key for Head group: 'bad key!', error: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            e(&[(p("/spec/headGroupSpec/labels"), json!({"bad key!": "v"}))]), e(&[(p("/spec/headGroupSpec/labels"), json!({"ray.io/zone": "us-1"}))])),
        case("S4", "spec.headGroupSpec.labels.tier",
            "invalid label value for key 'tier' in Head group: 'bad value', error: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            e(&[(p("/spec/headGroupSpec/labels"), json!({"tier": "bad value"}))]), e(&[(p("/spec/headGroupSpec/labels"), json!({"tier": ""}))])),
        // --- worker groups ---
        case("W1", "spec.workerGroupSpecs[0].template.spec.containers", "workerGroupSpec should have at least one container",
            e(&[(wg0("/template/spec/containers"), json!([]))]), base()),
        case("W2", "spec.workerGroupSpecs[0].maxReplicas", "worker group workers must set both minReplicas and maxReplicas when autoscaling is disabled",
            e(&[(wg0("/maxReplicas"), del.clone())]), e(&[(wg0("/maxReplicas"), del.clone()), autoscaling.clone()])),
        case("W3", "spec.workerGroupSpecs[0].minReplicas", "worker group workers has negative minReplicas -1",
            e(&[(wg0("/minReplicas"), json!(-1))]), e(&[(wg0("/minReplicas"), json!(0))])),
        case("W4", "spec.workerGroupSpecs[0].maxReplicas", "worker group workers has negative maxReplicas -1",
            e(&[(wg0("/maxReplicas"), json!(-1))]), e(&[(wg0("/maxReplicas"), json!(1))])),
        case("W5", "spec.workerGroupSpecs[0].minReplicas", "worker group workers has minReplicas 3 greater than maxReplicas 2",
            e(&[(wg0("/minReplicas"), json!(3)), (wg0("/maxReplicas"), json!(2)), (wg0("/replicas"), json!(2))]),
            e(&[(wg0("/minReplicas"), json!(2)), (wg0("/maxReplicas"), json!(2)), (wg0("/replicas"), json!(2))])),
        case("W6", "spec.workerGroupSpecs[0].resources",
            "resource fields should not be set in both rayStartParams and Resources for workers group; please use only one",
            e(&[(wg0("/rayStartParams/num-gpus"), json!("1")), (wg0("/resources"), json!({"GPU": "1"}))]),
            e(&[(wg0("/rayStartParams/num-gpus"), json!("1")), (wg0("/resources"), json!({}))])),
        case("W7", "spec.workerGroupSpecs[0].rayStartParams.labels",
            "rayStartParams['labels'] is not supported for workers group; please use the top-level Labels field instead",
            e(&[(wg0("/rayStartParams/labels"), json!("a=b"))]), e(&[(wg0("/labels"), json!({"a": "b"}))])),
        case("W7", "spec.workerGroupSpecs[0].labels.zone",
            "invalid label value for key 'zone' in workers group: '-us', error: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            e(&[(wg0("/labels"), json!({"zone": "-us"}))]), e(&[(wg0("/labels"), json!({"zone": "us"}))])),
        case("W8", "spec.workerGroupSpecs[0].idleTimeoutSeconds", "worker group workers: idleTimeoutSeconds must be non-negative, got -5",
            e(&[(wg0("/idleTimeoutSeconds"), json!(-5)), v2.clone()]), e(&[(wg0("/idleTimeoutSeconds"), json!(0)), v2.clone()])),
        case("W9", "spec.workerGroupSpecs[0].idleTimeoutSeconds",
            "worker group workers: idleTimeoutSeconds is set, but autoscaler v2 is not enabled. Please set .spec.autoscalerOptions.version to 'v2' (or set RAY_enable_autoscaler_v2 environment variable to 'true' in the head pod if using KubeRay < 1.4.0)",
            e(&[(wg0("/idleTimeoutSeconds"), json!(30)), autoscaling.clone(), (hc0("/env"), json!([{"name": "RAY_enable_autoscaler_v2", "value": "True"}]))]),
            e(&[(wg0("/idleTimeoutSeconds"), json!(30)), autoscaling.clone(), (hc0("/env"), json!([{"name": "RAY_enable_autoscaler_v2", "value": "1"}]))])),
        case("W10", "spec.workerGroupSpecs[0].priority",
            "worker group workers: priority is set, but RayVersion was not specified. Ray version 2.56.0 or later is required",
            e(&[(wg0("/priority"), json!(5)), (p("/spec/rayVersion"), del.clone()), v2.clone()]),
            e(&[(wg0("/priority"), json!(0)), (p("/spec/rayVersion"), del.clone())])),
        case("W11", "spec.workerGroupSpecs[0].priority",
            "worker group workers: priority is set, but RayVersion format is invalid: nightly, could not parse \"nightly\" as version",
            e(&[(wg0("/priority"), json!(5)), (p("/spec/rayVersion"), json!("nightly")), v2.clone()]),
            e(&[(wg0("/priority"), json!(5)), (p("/spec/rayVersion"), json!("2.56.0")), v2.clone()])),
        case("W12", "spec.workerGroupSpecs[0].priority",
            "worker group workers: priority is set, but minimum Ray version is 2.56.0, got 2.55.0",
            e(&[(wg0("/priority"), json!(5)), (p("/spec/rayVersion"), json!("2.55.0")), v2.clone()]),
            e(&[(wg0("/priority"), json!(-5)), (p("/spec/rayVersion"), json!("2.56")), v2.clone()])),
        case("W13", "spec.workerGroupSpecs[0].priority",
            "worker group workers: priority is set to 5, but autoscaler v2 is not enabled. Priority is only supported with autoscaler v2 enabled",
            e(&[(wg0("/priority"), json!(5))]), e(&[(wg0("/priority"), json!(5)), v2.clone(), autoscaling.clone()])),
        // --- GCS fault tolerance ---
        case("G1", "spec.gcsFaultToleranceOptions",
            "ray.io/ft-enabled annotation and GcsFaultToleranceOptions are both set. Please use only GcsFaultToleranceOptions to configure GCS fault tolerance",
            e(&[(p("/metadata/annotations/ray.io~1ft-enabled"), json!("false")), redis.clone()]), e(&[redis.clone()])),
        case("G2", "spec.headGroupSpec.template.spec.containers[0].env[0]",
            "RAY_REDIS_ADDRESS is set which implicitly enables GCS fault tolerance, but GcsFaultToleranceOptions is not set. Please set GcsFaultToleranceOptions to enable GCS fault tolerance",
            e(&[(hc0("/env"), json!([{"name": "RAY_REDIS_ADDRESS", "value": "redis:6379"}]))]),
            e(&[(hc0("/env"), json!([{"name": "RAY_REDIS_ADDRESS", "value": "redis:6379"}])), (p("/metadata/annotations/ray.io~1ft-enabled"), json!("TRUE"))])),
        case("G3", "spec.headGroupSpec.rayStartParams.redis-password",
            "cannot set `redis-password` in rayStartParams when GcsFaultToleranceOptions is enabled - use GcsFaultToleranceOptions.RedisPassword instead",
            e(&[redis.clone(), (p("/spec/headGroupSpec/rayStartParams/redis-password"), json!("x"))]),
            e(&[redis.clone(), (p("/spec/headGroupSpec/rayStartParams/redis-password"), json!(""))])),
        case("G4", "spec.headGroupSpec.template.spec.containers[0].env[1]",
            "cannot set `REDIS_PASSWORD` env var in head Pod when GcsFaultToleranceOptions is enabled - use GcsFaultToleranceOptions.RedisPassword instead",
            e(&[redis.clone(), (hc0("/env"), json!([{"name": "A", "value": "1"}, {"name": "REDIS_PASSWORD", "value": "x"}]))]),
            e(&[(hc0("/env"), json!([{"name": "REDIS_PASSWORD", "value": "x"}]))])),
        case("G5", "spec.headGroupSpec.template.spec.containers[0].env[0]",
            "cannot set `RAY_REDIS_ADDRESS` env var in head Pod when GcsFaultToleranceOptions is enabled - use GcsFaultToleranceOptions.RedisAddress instead",
            e(&[redis.clone(), (hc0("/env"), json!([{"name": "RAY_REDIS_ADDRESS", "value": "x"}]))]),
            e(&[(p("/metadata/annotations/ray.io~1ft-enabled"), json!("true")), (hc0("/env"), json!([{"name": "RAY_REDIS_ADDRESS", "value": "x"}]))])),
        case("G6", "metadata.annotations[ray.io/external-storage-namespace]",
            "cannot set `ray.io/external-storage-namespace` annotation when GcsFaultToleranceOptions is enabled - use GcsFaultToleranceOptions.ExternalStorageNamespace instead",
            e(&[redis.clone(), (p("/metadata/annotations/ray.io~1external-storage-namespace"), json!("ns"))]),
            e(&[(p("/metadata/annotations/ray.io~1external-storage-namespace"), json!("ns"))])),
        case("G7", "spec.gcsFaultToleranceOptions.backend",
            "the embedded RocksDB GCS fault tolerance backend (GcsFaultToleranceOptions.Backend: 'rocksdb') requires the GCSFaultToleranceEmbeddedStorage feature gate to be enabled",
            e(&[rocksdb.clone()]), e(&[gcs(json!({"backend": "redis"}))])),
        case("G7", "spec.gcsFaultToleranceOptions.backend", "", base(), e(&[rocksdb.clone()])).gates(ALL_GATES),
        case("G8", "spec.gcsFaultToleranceOptions.redisAddress", "cannot set GcsFaultToleranceOptions.RedisAddress when backend is 'rocksdb'",
            e(&[gcs(json!({"backend": "rocksdb", "redisAddress": "r:1"}))]), e(&[gcs(json!({"backend": "redis", "redisAddress": "r:1"}))])).gates(ALL_GATES),
        case("G8", "spec.gcsFaultToleranceOptions.redisPassword", "cannot set GcsFaultToleranceOptions.RedisPassword when backend is 'rocksdb'",
            e(&[gcs(json!({"backend": "rocksdb", "redisPassword": {"value": "x"}}))]), e(&[rocksdb.clone()])).gates(ALL_GATES),
        case("G9", "spec.gcsFaultToleranceOptions.storage.claimName",
            "GcsFaultToleranceOptions.Storage.ClaimName is mutually exclusive with size, storageClassName, and accessModes",
            e(&[gcs(json!({"backend": "rocksdb", "storage": {"claimName": "pvc", "size": "1Gi"}}))]),
            e(&[gcs(json!({"backend": "rocksdb", "storage": {"claimName": "pvc"}}))])).gates(ALL_GATES),
        case("G10", "spec.headGroupSpec.template.spec.containers[0].env[0]",
            "cannot set `RAY_gcs_storage` or `RAY_gcs_storage_path` env var in head Pod when the embedded GCS FT backend is used - these are managed by KubeRay",
            e(&[rocksdb.clone(), (hc0("/env"), json!([{"name": "RAY_gcs_storage_path", "value": "/x"}]))]),
            e(&[rocksdb.clone(), (hc0("/env"), json!([{"name": "RAY_gcs_storage_paths", "value": "/x"}]))])).gates(ALL_GATES),
        case("G11", "spec.headGroupSpec.template.spec.containers[0].volumeMounts[0]",
            "cannot set a volume mount named \"gcs-storage\" or mounted at /data/gcs in the head container when the embedded GCS FT backend is used - it is managed by KubeRay",
            e(&[rocksdb.clone(), (hc0("/volumeMounts"), json!([{"name": "data", "mountPath": "/data/gcs"}]))]),
            e(&[rocksdb.clone(), (hc0("/volumeMounts"), json!([{"name": "data", "mountPath": "/data/other"}]))])).gates(ALL_GATES),
        case("G12", "spec.headGroupSpec.template.spec.volumes[0]",
            "cannot set a volume named \"gcs-storage\" in the head Pod when the embedded GCS FT backend is used - it is managed by KubeRay",
            e(&[rocksdb.clone(), (p("/spec/headGroupSpec/template/spec/volumes"), json!([{"name": "gcs-storage", "emptyDir": {}}]))]),
            e(&[rocksdb.clone(), (p("/spec/headGroupSpec/template/spec/volumes"), json!([{"name": "data", "emptyDir": {}}]))])).gates(ALL_GATES),
        case("G13", "spec.gcsFaultToleranceOptions.storage",
            "cannot set GcsFaultToleranceOptions.Storage when backend is 'redis' - it only applies to the 'rocksdb' backend",
            e(&[gcs(json!({"redisAddress": "r:1", "storage": {"size": "1Gi"}}))]),
            e(&[gcs(json!({"backend": "rocksdb", "storage": {"size": "1Gi"}}))])).gates(ALL_GATES),
        case("G14", "spec.headGroupSpec.rayStartParams.redis-username",
            "cannot set redis username in rayStartParams or environment variables - use GcsFaultToleranceOptions.RedisUsername instead",
            e(&[(p("/spec/headGroupSpec/rayStartParams/redis-username"), json!("u"))]),
            e(&[(p("/spec/headGroupSpec/rayStartParams/redis-username"), json!(""))])),
        case("G14", "spec.headGroupSpec.template.spec.containers[0].env[0]",
            "cannot set redis username in rayStartParams or environment variables - use GcsFaultToleranceOptions.RedisUsername instead",
            e(&[(hc0("/env"), json!([{"name": "REDIS_USERNAME", "value": "u"}]))]),
            e(&[(wg0("/template/spec/containers/0/env"), json!([{"name": "REDIS_USERNAME", "value": "u"}]))])),
        // --- suspend / autoscaler ---
        case("SU1", "spec.workerGroupSpecs[0].suspend",
            "worker group workers can be suspended only when the RayJobDeletionPolicy feature gate is enabled",
            e(&[(wg0("/suspend"), json!(true))]), e(&[(wg0("/suspend"), json!(false))])).gates("RayJobDeletionPolicy=false"),
        case("SU1", "spec.workerGroupSpecs[0].suspend", "", base(), e(&[(wg0("/suspend"), json!(true))])),
        case("A1", "spec.headGroupSpec.template.spec.containers[0].env[0].value",
            "environment variable RAY_enable_autoscaler_v2 cannot be set to 'true' when enableInTreeAutoscaling is false. Please set enableInTreeAutoscaling: true to use autoscaler v2",
            e(&[(hc0("/env"), json!([{"name": "RAY_enable_autoscaler_v2", "value": "true"}]))]),
            e(&[(hc0("/env"), json!([{"name": "RAY_enable_autoscaler_v2", "value": "True"}]))])),
        case("A2", "spec.workerGroupSpecs[0].suspend", "worker group workers cannot be suspended with Autoscaler enabled",
            e(&[(wg0("/suspend"), json!(true)), autoscaling.clone()]), e(&[(wg0("/suspend"), json!(true))])),
        case("A3", "spec.autoscalerOptions.version",
            "both .spec.autoscalerOptions.version and head Pod env var RAY_enable_autoscaler_v2 are set, please only use the former",
            e(&[autoscaling.clone(), (p("/spec/autoscalerOptions/version"), json!("v1")), (hc0("/env"), json!([{"name": "RAY_enable_autoscaler_v2", "value": "false"}]))]),
            e(&[autoscaling.clone(), (hc0("/env"), json!([{"name": "RAY_enable_autoscaler_v2", "value": "false"}]))])),
        case("A4", "spec.headGroupSpec.template.spec.restartPolicy", "restartPolicy for head Pod should be Never or unset when using autoscaler V2",
            e(&[autoscaling.clone(), v2.clone(), (p("/spec/headGroupSpec/template/spec/restartPolicy"), json!("Always"))]),
            e(&[autoscaling.clone(), v2.clone(), (p("/spec/headGroupSpec/template/spec/restartPolicy"), json!("Never"))])),
        case("A5", "spec.workerGroupSpecs[0].template.spec.restartPolicy", "restartPolicy for worker group workers should be Never or unset when using autoscaler V2",
            e(&[autoscaling.clone(), v2.clone(), (wg0("/template/spec/restartPolicy"), json!("OnFailure"))]),
            e(&[v2.clone(), (wg0("/template/spec/restartPolicy"), json!("OnFailure"))])),
        case("A6", "spec.autoscalerOptions.idleTimeoutSeconds", "autoscalerOptions.idleTimeoutSeconds must be non-negative, got -1",
            e(&[(p("/spec/autoscalerOptions/idleTimeoutSeconds"), json!(-1))]), e(&[(p("/spec/autoscalerOptions/idleTimeoutSeconds"), json!(0))])),
        case("A7", "spec.autoscalerOptions.env[0]",
            "autoscalerOptions.env must not contain KUBERAY_GEN_AUTOSCALER_START_CMD: it is managed by KubeRay and injected automatically into the autoscaler container",
            e(&[(p("/spec/autoscalerOptions/env"), json!([{"name": "KUBERAY_GEN_AUTOSCALER_START_CMD", "value": "x"}]))]),
            e(&[(p("/spec/autoscalerOptions/env"), json!([{"name": "OTHER", "value": "x"}]))])),
        // --- history server ---
        case("H1", "spec.historyServerOptions", "RayClusterHistoryServer feature gate is not enabled",
            e(&[(p("/spec/historyServerOptions"), good_collector.clone())]), base()),
        case("H1", "spec.historyServerOptions", "", base(), e(&[(p("/spec/historyServerOptions"), good_collector.clone())])).gates(ALL_GATES),
        case("H2", "spec.historyServerOptions.collectorOptions", "historyServerOptions.collectorOptions must be set",
            e(&[(p("/spec/historyServerOptions"), json!({}))]), e(&[(p("/spec/historyServerOptions"), good_collector.clone())])).gates(ALL_GATES),
        case("H3", "spec.historyServerOptions.collectorOptions.image", "historyServerOptions.collectorOptions.image must be set",
            e(&[(p("/spec/historyServerOptions"), good_collector.clone()), (p("/spec/historyServerOptions/collectorOptions/image"), json!(""))]),
            e(&[(p("/spec/historyServerOptions"), good_collector.clone())])).gates(ALL_GATES),
        case("H4", "spec.historyServerOptions.collectorOptions.env[2]",
            "historyServerOptions.collectorOptions.env must not contain POD_IP: it is managed by KubeRay and injected automatically into the collector container",
            e(&[(p("/spec/historyServerOptions"), collector(json!([{"name": "STORAGE_BACKEND", "value": "gcs"}, {"name": "GCS_BUCKET", "value": "b"}, {"name": "POD_IP", "value": "x"}])))]),
            e(&[(p("/spec/historyServerOptions"), collector(json!([{"name": "STORAGE_BACKEND", "value": "gcs"}, {"name": "GCS_BUCKET", "value": "b"}, {"name": "POD_IPS", "value": "x"}])))])).gates(ALL_GATES),
        case("H5", "spec.historyServerOptions.collectorOptions.env",
            "STORAGE_BACKEND environment variable must be set with a literal string value in historyServerOptions.collectorOptions.env",
            e(&[(p("/spec/historyServerOptions"), collector(json!([{"name": "GCS_BUCKET", "value": "b"}])))]),
            e(&[(p("/spec/historyServerOptions"), good_collector.clone())])).gates(ALL_GATES),
        case("H6", "spec.historyServerOptions.collectorOptions.env", "S3_REGION environment variable must be set when STORAGE_BACKEND is S3",
            e(&[(p("/spec/historyServerOptions"), collector(json!([{"name": "STORAGE_BACKEND", "value": "s3"}])))]),
            e(&[(p("/spec/historyServerOptions"), collector(json!([{"name": "STORAGE_BACKEND", "value": "s3"}, {"name": "S3_REGION", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}])))])).gates(ALL_GATES),
        case("H6", "spec.historyServerOptions.collectorOptions.env",
            "AZURE_STORAGE_CONNECTION_STRING environment variable must be set when STORAGE_BACKEND is AZUREBLOB and AZURE_STORAGE_AUTH_MODE is connection_string",
            e(&[(p("/spec/historyServerOptions"), collector(json!([{"name": "STORAGE_BACKEND", "value": "AzureBlob"}, {"name": "AZURE_STORAGE_AUTH_MODE", "value": " Connection_String "}, {"name": "AZURE_STORAGE_ACCOUNT_URL", "value": "u"}])))]),
            e(&[(p("/spec/historyServerOptions"), collector(json!([{"name": "STORAGE_BACKEND", "value": "AzureBlob"}, {"name": "AZURE_STORAGE_ACCOUNT_URL", "value": "u"}])))])).gates(ALL_GATES),
        case("H6", "spec.historyServerOptions.collectorOptions.env",
            "either AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT_URL environment variable must be set when STORAGE_BACKEND is AZUREBLOB",
            e(&[(p("/spec/historyServerOptions"), collector(json!([{"name": "STORAGE_BACKEND", "value": "azureblob"}])))]),
            e(&[(p("/spec/historyServerOptions"), collector(json!([{"name": "STORAGE_BACKEND", "value": "unknown"}])))])).gates(ALL_GATES),
        case("H6", "spec.historyServerOptions.collectorOptions.env", "OSS_ENDPOINT environment variable must be set when STORAGE_BACKEND is ALIYUNOSS",
            e(&[(p("/spec/historyServerOptions"), collector(json!([{"name": "STORAGE_BACKEND", "value": "aliyunoss"}, {"name": "OSS_BUCKET", "value": "b"}, {"name": "OSS_REGION", "value": "r"}])))]),
            e(&[(p("/spec/historyServerOptions"), collector(json!([{"name": "STORAGE_BACKEND", "value": "aliyunoss"}, {"name": "OSS_BUCKET", "value": "b"}, {"name": "OSS_REGION", "value": "r"}, {"name": "OSS_ENDPOINT", "value": "e"}])))])).gates(ALL_GATES),
        case("H7", "spec.headGroupSpec.template.spec.containers[1].name",
            "head pod template must not define a container with name 'ray-history-collector' when history server collector options are enabled",
            e(&[(p("/spec/historyServerOptions"), good_collector.clone()), (p("/spec/headGroupSpec/template/spec/containers/1"), json!({"name": "ray-history-collector"}))]),
            e(&[(p("/spec/headGroupSpec/template/spec/containers/1"), json!({"name": "ray-history-collector"}))])).gates(ALL_GATES),
        case("H7", "spec.workerGroupSpecs[0].template.spec.containers[0].name",
            "worker group workers pod template must not define a container with name 'ray-history-collector' when history server collector options are enabled",
            e(&[(p("/spec/historyServerOptions"), good_collector.clone()), (wg0("/template/spec/containers/0/name"), json!("ray-history-collector"))]),
            e(&[(p("/spec/historyServerOptions"), good_collector.clone())])).gates(ALL_GATES),
        // --- auth ---
        case("AU1", "spec.rayVersion", "authOptions.mode is 'token' but RayVersion was not specified. Ray version 2.52.0 or later is required",
            e(&[token.clone(), (p("/spec/rayVersion"), del.clone())]), e(&[(p("/spec/authOptions/mode"), json!("disabled")), (p("/spec/rayVersion"), del.clone())])),
        case("AU2", "spec.rayVersion", "authOptions.mode is 'token' but RayVersion format is invalid: nightly, could not parse \"nightly\" as version",
            e(&[token.clone(), (p("/spec/rayVersion"), json!("nightly"))]), e(&[(p("/spec/rayVersion"), json!("nightly"))])),
        case("AU2", "spec.rayVersion", "authOptions.mode is 'token' but RayVersion format is invalid: 2, illegal version string \"2\"",
            e(&[token.clone(), (p("/spec/rayVersion"), json!("2"))]), e(&[token.clone(), (p("/spec/rayVersion"), json!("v2.52"))])),
        case("AU3", "spec.rayVersion", "authOptions.mode is 'token' but minimum Ray version is 2.52.0, got 2.51.0",
            e(&[token.clone(), (p("/spec/rayVersion"), json!("2.51.0"))]), e(&[token.clone(), (p("/spec/rayVersion"), json!("2.52.0"))])),
        case("AU4", "spec.authOptions.enableK8sTokenAuth", "authOptions.enableK8sTokenAuth is enabled but minimum Ray version is 2.55.0, got 2.54.0",
            e(&[token.clone(), k8s_auth.clone(), (p("/spec/rayVersion"), json!("2.54.0"))]), e(&[token.clone(), k8s_auth.clone(), (p("/spec/rayVersion"), json!("2.55.0"))])),
        case("AU5", "spec.authOptions.secretName", "authOptions.enableK8sTokenAuth is enabled and authOptions.secretName is also set",
            e(&[token.clone(), k8s_auth.clone(), (p("/spec/authOptions/secretName"), json!("s"))]), e(&[token.clone(), (p("/spec/authOptions/secretName"), json!("s"))])),
        case("AU6", "spec.authOptions.enableK8sTokenAuth", "authOptions.enableK8sTokenAuth is enabled but authOptions.mode not set to 'token'",
            e(&[k8s_auth.clone()]), e(&[token.clone(), k8s_auth.clone()])),
        // --- network policy ---
        case("NP1", "spec.networkPolicy", "spec.networkPolicy requires the RayClusterNetworkPolicy feature gate to be enabled",
            e(&[(p("/spec/networkPolicy"), json!({"mode": "DenyAll"}))]), base()),
        case("NP1", "spec.networkPolicy", "", base(), e(&[(p("/spec/networkPolicy"), json!({"mode": "DenyAll"}))])).gates(ALL_GATES),
        case("NP2", "spec.networkPolicy.head.ingressRules",
            "networkPolicy.head.ingressRules cannot be set when mode is \"DenyAllEgress\" (ingress is not restricted)",
            e(&[(p("/spec/networkPolicy"), json!({"mode": "DenyAllEgress", "head": {"ingressRules": [{}]}}))]),
            e(&[(p("/spec/networkPolicy"), json!({"mode": "DenyAll", "head": {"ingressRules": [{}]}}))])).gates(ALL_GATES),
        case("NP2", "spec.networkPolicy.worker.egressRules",
            "networkPolicy.worker.egressRules cannot be set when mode is \"DenyAllIngress\" (egress is not restricted)",
            e(&[(p("/spec/networkPolicy"), json!({"mode": "DenyAllIngress", "worker": {"egressRules": [{}]}}))]),
            e(&[(p("/spec/networkPolicy"), json!({"mode": "DenyAllIngress", "worker": {"ingressRules": [{}]}}))])).gates(ALL_GATES),
        case("NP3", "spec.workerGroupSpecs[0].groupName",
            "worker group name \"Workers\" must be a valid DNS1123 label when networkPolicy is enabled (it is embedded in the NetworkPolicy name): [a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')]",
            e(&[(p("/spec/networkPolicy"), json!({"mode": "DenyAll"})), (wg0("/groupName"), json!("Workers"))]),
            e(&[(wg0("/groupName"), json!("Workers"))])).gates(ALL_GATES),
        case("NP4", "spec.networkPolicy.workerGroups[0].groupName",
            "networkPolicy.workerGroups[\"other\"] does not match any group name in workerGroupSpecs",
            e(&[(p("/spec/networkPolicy"), json!({"mode": "DenyAll", "workerGroups": [{"groupName": "other"}]}))]),
            e(&[(p("/spec/networkPolicy"), json!({"mode": "DenyAll", "workerGroups": [{"groupName": "workers"}]}))])).gates(ALL_GATES),
        case("NP4", "spec.networkPolicy.workerGroups[0].egressRules",
            "networkPolicy.workerGroups[\"workers\"].egressRules cannot be set when mode is \"DenyAllIngress\" (egress is not restricted)",
            e(&[(p("/spec/networkPolicy"), json!({"mode": "DenyAllIngress", "workerGroups": [{"groupName": "workers", "egressRules": [{}]}]}))]),
            e(&[(p("/spec/networkPolicy"), json!({"mode": "DenyAll", "workerGroups": [{"groupName": "workers", "egressRules": [{}]}]}))])).gates(ALL_GATES),
        // --- TLS ---
        case("T1", "spec.tlsOptions", "spec.tlsOptions requires the RayClusterMTLS feature gate to be enabled",
            e(&[(p("/spec/tlsOptions"), json!({"enabled": false}))]), base()),
        case("T1", "spec.tlsOptions", "", base(), e(&[(p("/spec/tlsOptions"), json!({"enabled": false}))])).gates(ALL_GATES),
        case("T2", "spec.headGroupSpec.template.spec.containers[0].env[0]",
            "cannot set RAY_USE_TLS environment variable in head Pod when tlsOptions is set - the operator manages TLS configuration automatically",
            e(&[tls_on.clone(), (hc0("/env"), json!([{"name": "RAY_USE_TLS", "value": "1"}]))]),
            e(&[(p("/spec/tlsOptions"), json!({"enabled": false})), (hc0("/env"), json!([{"name": "RAY_USE_TLS", "value": "1"}]))])).gates(ALL_GATES),
        case("T2", "spec.workerGroupSpecs[0].template.spec.containers[0].env[0]",
            "cannot set RAY_TLS_CA_CERT environment variable in worker group \"workers\" when tlsOptions is set - the operator manages TLS configuration automatically",
            e(&[tls_on.clone(), (wg0("/template/spec/containers/0/env"), json!([{"name": "RAY_TLS_CA_CERT", "value": "x"}]))]),
            e(&[tls_on.clone(), (wg0("/template/spec/containers/0/env"), json!([{"name": "RAY_TLS_CA", "value": "x"}]))])).gates(ALL_GATES),
        case("T2", "spec.autoscalerOptions.env[0]",
            "cannot set RAY_TLS_SERVER_KEY environment variable in autoscalerOptions.env when tlsOptions is set - the operator manages TLS configuration for the autoscaler automatically",
            e(&[tls_on.clone(), (p("/spec/autoscalerOptions/env"), json!([{"name": "RAY_TLS_SERVER_KEY", "value": "x"}]))]),
            e(&[(p("/spec/autoscalerOptions/env"), json!([{"name": "RAY_TLS_SERVER_KEY", "value": "x"}]))])).gates(ALL_GATES),
        case("T3", "spec.headGroupSpec.template.spec.containers[0].volumeMounts[0]",
            "cannot use volume mount named \"ray-tls\" in head Pod when tlsOptions is set - the operator manages TLS configuration automatically",
            e(&[tls_on.clone(), (hc0("/volumeMounts"), json!([{"name": "ray-tls", "mountPath": "/x"}]))]),
            e(&[tls_on.clone(), (hc0("/volumeMounts"), json!([{"name": "tls", "mountPath": "/x"}]))])).gates(ALL_GATES),
        case("T3", "spec.autoscalerOptions.volumeMounts[0]",
            "cannot use volume mount at path \"/etc/ray/tls\" in autoscalerOptions.volumeMounts when tlsOptions is set - the operator manages TLS configuration automatically",
            e(&[tls_on.clone(), (p("/spec/autoscalerOptions/volumeMounts"), json!([{"name": "x", "mountPath": "/etc/ray/tls"}]))]),
            e(&[tls_on.clone(), (p("/spec/autoscalerOptions/volumeMounts"), json!([{"name": "x", "mountPath": "/etc/ray/tls2"}]))])).gates(ALL_GATES),
        // --- upgrade / status ---
        case("U1", "spec.upgradeStrategy.type",
            "The RayCluster spec is invalid: Spec.UpgradeStrategy.Type value Rolling is invalid, valid options are Recreate or None",
            e(&[(p("/spec/upgradeStrategy/type"), json!("Rolling"))]), e(&[(p("/spec/upgradeStrategy/type"), json!("None"))])),
        case("U2", "spec.upgradeStrategy.type", "upgradeStrategy cannot be set when RayCluster is created by RayService",
            e(&[(p("/spec/upgradeStrategy/type"), json!("Recreate")), (p("/metadata/labels/ray.io~1originated-from-crd"), json!("RayService"))]),
            e(&[(p("/spec/upgradeStrategy/type"), json!("Recreate")), (p("/metadata/labels/ray.io~1originated-from-crd"), json!("RayCluster"))])),
        case("ST1", "status.conditions",
            "invalid RayCluster State: rayv1.RayClusterSuspending and rayv1.RayClusterSuspended conditions should not be both true",
            e(&[(p("/status/conditions"), json!([cond("RayClusterSuspending", "True"), cond("RayClusterSuspended", "True")]))]),
            e(&[(p("/status/conditions"), json!([cond("RayClusterSuspending", "True"), cond("RayClusterSuspended", "False")]))])),
        case("W-RESTARTPOLICY-V1", "spec.workerGroupSpecs[1].template.spec.restartPolicy",
            "restartPolicy for worker groups [b, c] should be Never or unset when using autoscaler V1",
            {
                let mut v = e(&[autoscaling.clone(), (p("/spec/autoscalerOptions/version"), json!("v1"))]);
                let g = |n: &str, rp: &str| { let mut g = group(n); g["template"]["spec"]["restartPolicy"] = json!(rp); g };
                v["spec"]["workerGroupSpecs"] = json!([g("a", "Never"), g("b", "OnFailure"), g("c", "Always")]);
                v
            },
            e(&[autoscaling.clone(), (wg0("/template/spec/restartPolicy"), json!("OnFailure"))])).warning(),
        // --- raygate's own ---
        case("RG-DEPRECATED-V1ALPHA1", "apiVersion",
            "ray.io/v1alpha1 RayCluster is deprecated; use ray.io/v1 RayCluster. v1alpha1 receives no new fields and will be unavailable in KubeRay 1.9.",
            e(&[(p("/apiVersion"), json!("ray.io/v1alpha1"))]), base()).warning(),
        case("RG-REPLICAS-NEGATIVE", "spec.workerGroupSpecs[0].replicas", "worker group workers has negative replicas -1",
            e(&[(wg0("/replicas"), json!(-1))]), e(&[(wg0("/replicas"), json!(3))])),
        case("RG-REPLICAS-CLAMPED", "spec.workerGroupSpecs[0].replicas",
            "worker group workers has replicas 9 outside [minReplicas 1, maxReplicas 5]; KubeRay will use 5 (maxReplicas 5)",
            e(&[(wg0("/replicas"), json!(9))]), e(&[(wg0("/replicas"), json!(5))])).warning(),
        case("RG-REPLICAS-CLAMPED", "spec.workerGroupSpecs[0].replicas",
            "worker group workers has replicas 0 outside [minReplicas 1, maxReplicas 5]; KubeRay will use 1 (minReplicas 1)",
            e(&[(wg0("/replicas"), json!(0))]), e(&[(wg0("/replicas"), json!(0)), (wg0("/suspend"), json!(true))])).warning(),
        case("RG-NUMOFHOSTS", "spec.workerGroupSpecs[0].numOfHosts",
            "worker group workers has numOfHosts 0; it must be at least 1 (KubeRay would create no pods for this group)",
            e(&[(wg0("/numOfHosts"), json!(0))]), e(&[(wg0("/numOfHosts"), json!(4))])),
        case("RG-QUANTITY", "spec.autoscalerOptions.resources.limits.cpu",
            "invalid quantity \"lots\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            e(&[(p("/spec/autoscalerOptions/resources/limits/cpu"), json!("lots"))]), e(&[(p("/spec/autoscalerOptions/resources/limits/cpu"), json!(2))])),
        case("RG-QUANTITY", "spec.workerGroupSpecs[0].resources.CPU",
            "invalid quantity \"1 core\" for resource CPU in workers group: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' (KubeRay would silently ignore it)",
            e(&[(wg0("/resources"), json!({"CPU": "1 core"}))]), e(&[(wg0("/resources"), json!({"CPU": "1", "TPU": "4"}))])),
        case("RG-QUANTITY", "spec.headGroupSpec.template.spec.containers[0].resources.requests.memory",
            "invalid quantity \"512mi\": unable to parse quantity's suffix",
            e(&[(hc0("/resources/requests/memory"), json!("512mi"))]), e(&[(hc0("/resources/requests/memory"), json!("2Gi"))])),
        case("RG-QUANTITY-NEGATIVE", "spec.autoscalerOptions.resources.requests.memory",
            "autoscalerOptions.resources.requests.memory must not be negative, got -1Gi",
            e(&[(p("/spec/autoscalerOptions/resources/requests/memory"), json!("-1Gi"))]), e(&[(p("/spec/autoscalerOptions/resources/requests/memory"), json!("1Gi"))])),
        case("RG-REQUESTS-EXCEED-LIMITS", "spec.autoscalerOptions.resources.requests.cpu",
            "autoscalerOptions.resources.requests.cpu (2) must be less than or equal to autoscalerOptions.resources.limits.cpu (1)",
            e(&[(p("/spec/autoscalerOptions/resources"), json!({"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}))]),
            e(&[(p("/spec/autoscalerOptions/resources"), json!({"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1024Mi"}}))])),
        case("RG-REQUESTS-EXCEED-LIMITS", "spec.workerGroupSpecs[0].template.spec.containers[0].resources.requests.memory",
            "container \"ray-worker\" resources.requests.memory (1073741825) must be less than or equal to container \"ray-worker\" resources.limits.memory (1073741824)",
            e(&[(wg0("/template/spec/containers/0/resources"), json!({"requests": {"memory": "1073741825"}, "limits": {"memory": "1Gi"}}))]),
            e(&[(wg0("/template/spec/containers/0/resources"), json!({"requests": {"memory": "1Gi"}, "limits": {"memory": "1073741824"}}))])),
        case("RG-IMAGEPULLPOLICY", "spec.autoscalerOptions.imagePullPolicy",
            "Unsupported value: \"Sometimes\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
            e(&[(p("/spec/autoscalerOptions/imagePullPolicy"), json!("Sometimes"))]), e(&[(p("/spec/autoscalerOptions/imagePullPolicy"), json!("Never"))])),
        case("RG-RAYSTARTPARAMS-NUMBER", "spec.headGroupSpec.rayStartParams.num-cpus",
            "rayStartParams['num-cpus'] should be a non-negative integer (ray start rejects other values), got \"1.5\"",
            e(&[(p("/spec/headGroupSpec/rayStartParams/num-cpus"), json!("1.5"))]), e(&[(p("/spec/headGroupSpec/rayStartParams/num-cpus"), json!("0"))])).warning(),
    ]
}
