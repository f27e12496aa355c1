//! The RayJob, RayService and RayCronJob rule table shared by `tests/rules_kinds.rs` (offline
//! verdicts) and `tests/e2e_policy.rs` (the exported admission policies on a real API server):
//! for each rule id, one object that triggers it (exact rule, field path and message, as KubeRay
//! v1.7.0 prints it) and a close variant that does not; embedded cluster findings carry the API
//! server's path prefix and KubeRay's message prefix. Objects are built from valid bases with
//! JSON-pointer edits.
//!
//! Include with `mod common;` at the crate root, `#[path = "support/rule_cases.rs"] mod
//! rule_cases;` and `#[path = "support/kind_cases.rs"] mod kind_cases;`.
#![allow(dead_code)]

use crate::common::{del, set};
use crate::rule_cases::Case;
use raygate::model::Kind;
use serde_json::{Value, json};

/// The valid RayCluster spec the kinds embed (the spec of `common::base()`).
pub fn cluster_spec() -> Value {
    crate::common::base()["spec"].clone()
}

fn job_spec() -> Value {
    json!({
        "entrypoint": "python /home/ray/samples/sample_code.py",
        "submissionMode": "K8sJobMode", "backoffLimit": 0, "ttlSecondsAfterFinished": 0,
        "rayClusterSpec": cluster_spec()
    })
}

pub fn base(kind: Kind) -> Value {
    match kind {
        Kind::RayJob => json!({"apiVersion": "ray.io/v1", "kind": "RayJob",
            "metadata": {"name": "rayjob-sample"}, "spec": job_spec()}),
        Kind::RayService => json!({"apiVersion": "ray.io/v1", "kind": "RayService",
            "metadata": {"name": "rayservice-sample"},
            "spec": {"serveConfigV2": "applications: []", "rayClusterConfig": cluster_spec()}}),
        Kind::RayCronJob => json!({"apiVersion": "ray.io/v1", "kind": "RayCronJob",
            "metadata": {"name": "raycronjob-sample"},
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": job_spec()}}),
        Kind::RayCluster => unreachable!(),
    }
}

pub fn edit(kind: Kind, edits: &[(&str, Value)]) -> Value {
    let mut v = base(kind);
    for (p, val) in edits {
        if val == &json!("<delete>") {
            del(&mut v, p);
        } else {
            set(&mut v, p, val.clone());
        }
    }
    v
}

/// A case of `kind`: `bad` and `good` are edits of [`base`].
fn case(
    id: &'static str,
    kind: Kind,
    path: &str,
    msg: &str,
    bad: Vec<(&'static str, Value)>,
    good: Vec<(&'static str, Value)>,
) -> Case {
    crate::rule_cases::case(id, path, msg, edit(kind, &bad), edit(kind, &good)).kind(kind)
}

pub const J: Kind = Kind::RayJob;
pub const S: Kind = Kind::RayService;
pub const C: Kind = Kind::RayCronJob;
pub const INV: &str = "The RayJob spec is invalid: ";
pub const SINV: &str = "The RayService spec is invalid: ";
const DNS1035: &str = "[a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')]";

fn rules(policy_rules: Value) -> Vec<(&'static str, Value)> {
    vec![(
        "/spec/deletionStrategy",
        json!({"deletionRules": policy_rules}),
    )]
}

pub fn cases() -> Vec<Case> {
    let long47 = "a".repeat(47);
    let long48 = "a".repeat(48);
    let long36 = "a".repeat(36);
    let long37 = "a".repeat(37);
    let legacy = |s: &str, f: &str| json!({"onSuccess": {"policy": s}, "onFailure": {"policy": f}});
    let rule = |js: &str, ttl: i32, p: &str| json!({"condition": {"jobStatus": js, "ttlSeconds": ttl}, "policy": p});
    vec![
        // ---- RayJob metadata
        case("JM1", J, "metadata.name", "The RayJob metadata is invalid: RayJob name should be no more than 47 characters",
            vec![("/metadata/name", json!(long48))], vec![("/metadata/name", json!(long47))]),
        case("JM2", J, "metadata.name", &format!("The RayJob metadata is invalid: RayJob name should be a valid DNS1035 label: {DNS1035}"),
            vec![("/metadata/name", json!("1job"))], vec![("/metadata/name", json!("job1"))]),
        // ---- RayJob spec
        case("J1", J, "spec.suspend", &format!("{INV}a RayJob with shutdownAfterJobFinishes set to false is not allowed to be suspended"),
            vec![("/spec/suspend", json!(true))], vec![("/spec/suspend", json!(true)), ("/spec/shutdownAfterJobFinishes", json!(true))]),
        case("J2", J, "spec.ttlSecondsAfterFinished", &format!("{INV}TTLSecondsAfterFinished must be a non-negative integer"),
            vec![("/spec/ttlSecondsAfterFinished", json!(-1))], vec![("/spec/ttlSecondsAfterFinished", json!(0))]),
        case("JD1", J, "spec.ttlSecondsAfterFinished", &format!("{INV}a RayJob with shutdownAfterJobFinishes set to false cannot have TTLSecondsAfterFinished"),
            vec![("/spec/ttlSecondsAfterFinished", json!(60))], vec![("/spec/ttlSecondsAfterFinished", json!(60)), ("/spec/shutdownAfterJobFinishes", json!(true))]),
        case("JD2", J, "spec.deletionStrategy", "RayJobDeletionPolicy feature gate must be enabled to use DeletionStrategy",
            vec![("/spec/deletionStrategy", legacy("DeleteCluster", "DeleteCluster"))], vec![]).gates("RayJobDeletionPolicy=false"),
        case("JD3", J, "spec.deletionStrategy.deletionRules", &format!("{INV}spec.shutdownAfterJobFinishes and spec.deletionStrategy.deletionRules are mutually exclusive"),
            { let mut r = rules(json!([rule("SUCCEEDED", 0, "DeleteSelf")])); r.push(("/spec/shutdownAfterJobFinishes", json!(true))); r },
            rules(json!([rule("SUCCEEDED", 0, "DeleteSelf")]))),
        case("JD5", J, "spec.deletionStrategy.onFailure", "both DeletionStrategy.OnSuccess and DeletionStrategy.OnFailure must be set when using the legacy deletion policy fields of DeletionStrategy",
            vec![("/spec/deletionStrategy", json!({"onSuccess": {"policy": "DeleteCluster"}}))], vec![("/spec/deletionStrategy", legacy("DeleteCluster", "DeleteCluster"))]),
        case("JD6", J, "spec.deletionStrategy.onFailure.policy", "the DeletionPolicyType field of DeletionStrategy.OnFailure cannot be unset when DeletionStrategy is enabled",
            vec![("/spec/deletionStrategy", json!({"onSuccess": {"policy": "DeleteCluster"}, "onFailure": {}}))], vec![("/spec/deletionStrategy", legacy("DeleteCluster", "DeleteSelf"))]),
        case("JD7", J, "spec.deletionStrategy.onSuccess.policy", "the ClusterSelector mode doesn't support DeletionStrategy=DeleteCluster on success",
            vec![("/spec/rayClusterSpec", json!("<delete>")), ("/spec/clusterSelector", json!({"ray.io/cluster": "c"})), ("/spec/deletionStrategy", legacy("DeleteCluster", "DeleteSelf"))],
            vec![("/spec/rayClusterSpec", json!("<delete>")), ("/spec/clusterSelector", json!({"ray.io/cluster": "c"})), ("/spec/deletionStrategy", legacy("DeleteSelf", "DeleteSelf"))]),
        case("JD8", J, "spec.deletionStrategy.onSuccess.policy", "DeletionStrategy=DeleteWorkers currently does not support RayCluster with autoscaling enabled",
            vec![("/spec/rayClusterSpec/enableInTreeAutoscaling", json!(true)), ("/spec/deletionStrategy", legacy("DeleteWorkers", "DeleteCluster"))],
            vec![("/spec/deletionStrategy", legacy("DeleteWorkers", "DeleteCluster"))]),
        case("JD9", J, "spec.deletionStrategy.onFailure.policy", "The RayJob spec is invalid: shutdownAfterJobFinshes is set to 'true' while deletion policy is 'DeleteNone'",
            vec![("/spec/shutdownAfterJobFinishes", json!(true)), ("/spec/deletionStrategy", legacy("DeleteCluster", "DeleteNone"))],
            vec![("/spec/deletionStrategy", legacy("DeleteCluster", "DeleteNone"))]),
        case("JD12", J, "spec.deletionStrategy.deletionRules[0].policy", "deletionRules[0]: DeletionPolicyType 'DeleteWorkers' not supported when ClusterSelector is set",
            { let mut r = rules(json!([rule("FAILED", 0, "DeleteWorkers")])); r.push(("/spec/clusterSelector", json!({"ray.io/cluster": "c"}))); r },
            { let mut r = rules(json!([rule("FAILED", 0, "DeleteSelf")])); r.push(("/spec/clusterSelector", json!({"ray.io/cluster": "c"}))); r }),
        case("JD13", J, "spec.deletionStrategy.deletionRules[0].policy", "deletionRules[0]: DeletionPolicyType 'DeleteWorkers' not supported with autoscaling enabled",
            { let mut r = rules(json!([rule("FAILED", 0, "DeleteWorkers")])); r.push(("/spec/rayClusterSpec/enableInTreeAutoscaling", json!(true))); r },
            { let mut r = rules(json!([rule("FAILED", 0, "DeleteCluster")])); r.push(("/spec/rayClusterSpec/enableInTreeAutoscaling", json!(true))); r }),
        case("JD14", J, "spec.deletionStrategy.deletionRules[1]", "deletionRules[1]: duplicate rule for DeletionPolicyType 'DeleteSelf' and JobStatus 'FAILED'",
            rules(json!([rule("FAILED", 0, "DeleteSelf"), rule("FAILED", 5, "DeleteSelf")])),
            rules(json!([rule("FAILED", 0, "DeleteSelf"), rule("SUCCEEDED", 5, "DeleteSelf")]))),
        case("JD15", J, "spec.deletionStrategy.deletionRules[1].condition.ttlSeconds", "for JobStatus 'SUCCEEDED': DeleteCluster TTL (10) must be >= DeleteWorkers TTL (60)",
            rules(json!([rule("SUCCEEDED", 60, "DeleteWorkers"), rule("SUCCEEDED", 10, "DeleteCluster")])),
            rules(json!([rule("SUCCEEDED", 10, "DeleteWorkers"), rule("SUCCEEDED", 60, "DeleteCluster")]))),
        case("JD16", J, "spec.deletionStrategy", &format!("{INV}DeletionStrategy requires either BOTH onSuccess and onFailure, OR the deletionRules field (cannot be empty)"),
            vec![("/spec/deletionStrategy", json!({"deletionRules": []}))], vec![]),
        case("J3", J, "spec.suspend", &format!("{INV}the ClusterSelector mode doesn't support the suspend operation"),
            vec![("/spec/rayClusterSpec", json!("<delete>")), ("/spec/clusterSelector", json!({"ray.io/cluster": "c"})), ("/spec/suspend", json!(true)), ("/spec/shutdownAfterJobFinishes", json!(true))],
            vec![("/spec/suspend", json!(true)), ("/spec/shutdownAfterJobFinishes", json!(true))]),
        case("J4", J, "spec.rayClusterSpec", &format!("{INV}one of RayClusterSpec or ClusterSelector must be set"),
            vec![("/spec/rayClusterSpec", json!("<delete>"))], vec![("/spec/rayClusterSpec", json!("<delete>")), ("/spec/clusterSelector", json!({"ray.io/cluster": "c"}))]),
        case("J5", J, "spec.clusterSelector[ray.io/cluster]", "cluster name in ClusterSelector should not be empty",
            vec![("/spec/rayClusterSpec", json!("<delete>")), ("/spec/clusterSelector", json!({"app": "c"}))], vec![("/spec/rayClusterSpec", json!("<delete>")), ("/spec/clusterSelector", json!({"ray.io/cluster": "c"}))]),
        case("J6", J, "spec.submissionMode", "ClusterSelector is not supported in SidecarMode",
            vec![("/spec/rayClusterSpec", json!("<delete>")), ("/spec/clusterSelector", json!({"ray.io/cluster": "c"})), ("/spec/submissionMode", json!("SidecarMode"))],
            vec![("/spec/rayClusterSpec", json!("<delete>")), ("/spec/clusterSelector", json!({"ray.io/cluster": "c"})), ("/spec/submissionMode", json!("HTTPMode"))]),
        case("J7", J, "spec.backoffLimit", &format!("{INV}BackoffLimit is incompatible with ClusterSelector mode"),
            vec![("/spec/rayClusterSpec", json!("<delete>")), ("/spec/clusterSelector", json!({"ray.io/cluster": "c"})), ("/spec/backoffLimit", json!(2))],
            vec![("/spec/backoffLimit", json!(2))]),
        case("J8", J, "spec.backoffLimit", &format!("{INV}BackoffLimit is incompatible with InteractiveMode"),
            vec![("/spec/submissionMode", json!("InteractiveMode")), ("/spec/backoffLimit", json!(1))], vec![("/spec/submissionMode", json!("InteractiveMode"))]),
        case("J9", J, "spec.submitterPodTemplate", "Currently, SidecarMode doesn't support SubmitterPodTemplate",
            vec![("/spec/submissionMode", json!("SidecarMode")), ("/spec/submitterPodTemplate", json!({"spec": {"containers": [{"name": "s"}]}}))],
            vec![("/spec/submitterPodTemplate", json!({"spec": {"containers": [{"name": "s"}]}}))]),
        case("J10", J, "spec.submitterConfig", "Currently, SidecarMode doesn't support SubmitterConfig",
            vec![("/spec/submissionMode", json!("SidecarMode")), ("/spec/submitterConfig", json!({"backoffLimit": 1}))], vec![("/spec/submitterConfig", json!({"backoffLimit": 1}))]),
        case("J11", J, "spec.rayClusterSpec.headGroupSpec.template.spec.restartPolicy", "restartPolicy for head Pod should be Never or unset when using SidecarMode",
            vec![("/spec/submissionMode", json!("SidecarMode")), ("/spec/rayClusterSpec/headGroupSpec/template/spec/restartPolicy", json!("Always"))],
            vec![("/spec/submissionMode", json!("SidecarMode")), ("/spec/rayClusterSpec/headGroupSpec/template/spec/restartPolicy", json!("Never"))]),
        case("J12", J, "spec.rayClusterSpec.authOptions.enableK8sTokenAuth", &format!("{INV}K8s token auth mode is currently not supported for RayJob"),
            vec![("/spec/rayClusterSpec/authOptions", json!({"mode": "token", "enableK8sTokenAuth": true}))], vec![("/spec/rayClusterSpec/authOptions", json!({"mode": "token"}))]),
        case("J13", J, "spec.runtimeEnvYAML", "failed to unmarshal RuntimeEnvYAML: - pip: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal array into Go value of type types.RuntimeEnvType",
            vec![("/spec/runtimeEnvYAML", json!("- pip"))], vec![("/spec/runtimeEnvYAML", json!("pip: [requests]"))]),
        case("J14", J, "spec.activeDeadlineSeconds", &format!("{INV}activeDeadlineSeconds must be a positive integer"),
            vec![("/spec/activeDeadlineSeconds", json!(0))], vec![("/spec/activeDeadlineSeconds", json!(1))]),
        case("J16", J, "spec.backoffLimit", &format!("{INV}backoffLimit must be a positive integer"),
            vec![("/spec/backoffLimit", json!(-1))], vec![("/spec/backoffLimit", json!(0))]),
        case("JST1", J, "status.jobDeploymentStatus", "The RayJob status is invalid: JobDeploymentStatus cannot be `Waiting` when SubmissionMode is not InteractiveMode",
            vec![("/status", json!({"jobDeploymentStatus": "Waiting"}))], vec![("/status", json!({"jobDeploymentStatus": "Waiting"})), ("/spec/submissionMode", json!("InteractiveMode"))]),
        // ---- embedded cluster spec: RayCluster rules, prefixed path and message
        case("W5", J, "spec.rayClusterSpec.workerGroupSpecs[0].minReplicas", &format!("{INV}worker group workers has minReplicas 5 greater than maxReplicas 2"),
            vec![("/spec/rayClusterSpec/workerGroupSpecs/0/minReplicas", json!(5)), ("/spec/rayClusterSpec/workerGroupSpecs/0/maxReplicas", json!(2))],
            vec![("/spec/rayClusterSpec/workerGroupSpecs/0/minReplicas", json!(2)), ("/spec/rayClusterSpec/workerGroupSpecs/0/maxReplicas", json!(2))]),
        case("S1", S, "spec.rayClusterConfig.headGroupSpec.template.spec.containers", &format!("{SINV}headGroupSpec should have at least one container"),
            vec![("/spec/rayClusterConfig/headGroupSpec/template/spec/containers", json!([]))], vec![]),
        case("W5", C, "spec.jobTemplate.rayClusterSpec.workerGroupSpecs[0].minReplicas", &format!("invalid RayJob template: {INV}worker group workers has minReplicas 6 greater than maxReplicas 5"),
            vec![("/spec/jobTemplate/rayClusterSpec/workerGroupSpecs/0/minReplicas", json!(6))], vec![]).gates("RayCronJob=true"),
        case("WH3", J, "spec.rayClusterSpec.workerGroupSpecs[1].groupName", "worker group names must be unique",
            vec![("/spec/rayClusterSpec/workerGroupSpecs/1", cluster_spec()["workerGroupSpecs"][0].clone())], vec![]),
        case("U2", S, "spec.rayClusterConfig.upgradeStrategy.type", "upgradeStrategy cannot be set when RayCluster is created by RayService",
            vec![("/spec/rayClusterConfig/upgradeStrategy", json!({"type": "Recreate"}))], vec![]),
        case("G1", J, "spec.rayClusterSpec.gcsFaultToleranceOptions", &format!("{INV}ray.io/ft-enabled annotation and GcsFaultToleranceOptions are both set. Please use only GcsFaultToleranceOptions to configure GCS fault tolerance"),
            vec![("/metadata/annotations", json!({"ray.io/ft-enabled": "true"})), ("/spec/rayClusterSpec/gcsFaultToleranceOptions", json!({"redisAddress": "r:6379"}))],
            vec![("/spec/rayClusterSpec/gcsFaultToleranceOptions", json!({"redisAddress": "r:6379"}))]),
        case("CRD-ENUM", J, "spec.rayClusterSpec.autoscalerOptions.upscalingMode", "Unsupported value: \"Fast\": supported values: \"Default\", \"Aggressive\", \"Conservative\"",
            vec![("/spec/rayClusterSpec/autoscalerOptions", json!({"upscalingMode": "Fast"}))], vec![("/spec/rayClusterSpec/autoscalerOptions", json!({"upscalingMode": "Default"}))]),
        // ---- API server checks of the kinds' own fields
        case("CRD-MINIMUM", J, "spec.preRunningDeadlineSeconds", "Invalid value: 0: spec.preRunningDeadlineSeconds in body should be greater than or equal to 1",
            vec![("/spec/preRunningDeadlineSeconds", json!(0))], vec![("/spec/preRunningDeadlineSeconds", json!(1))]),
        case("CRD-CEL", J, "spec.deletionStrategy", "legacy policies (onSuccess/onFailure) and deletionRules cannot be used together within the same deletionStrategy",
            vec![("/spec/deletionStrategy", json!({"onSuccess": {"policy": "DeleteSelf"}, "onFailure": {"policy": "DeleteSelf"}, "deletionRules": [rule("FAILED", 0, "DeleteSelf")]}))],
            vec![("/spec/deletionStrategy", legacy("DeleteSelf", "DeleteSelf"))]),
        case("CRD-MANAGEDBY", J, "spec.managedBy", "the managedBy field value must be either 'ray.io/kuberay-operator' or 'kueue.x-k8s.io/multikueue'",
            vec![("/spec/managedBy", json!("me"))], vec![("/spec/managedBy", json!("kueue.x-k8s.io/multikueue"))]),
        case("CRD-REQUIRED", S, "spec.rayClusterConfig", "Required value",
            vec![("/spec/rayClusterConfig", json!("<delete>"))], vec![]),
        // ---- RayService
        case("SM1", S, "metadata.name", "The RayService metadata is invalid: RayService name should be no more than 47 characters",
            vec![("/metadata/name", json!(long48))], vec![("/metadata/name", json!(long47))]),
        case("SM2", S, "metadata.name", &format!("The RayService metadata is invalid: RayService name should be a valid DNS1035 label: {DNS1035}"),
            vec![("/metadata/name", json!("svc.x"))], vec![("/metadata/name", json!("svc-x"))]),
        case("SM3", S, "metadata.annotations[ray.io/initializing-timeout]", "The RayService metadata is invalid: RayService annotations is invalid: annotation ray.io/initializing-timeout must be a positive duration, got: -5m",
            vec![("/metadata/annotations", json!({"ray.io/initializing-timeout": "-5m"}))], vec![("/metadata/annotations", json!({"ray.io/initializing-timeout": "5m"}))]),
        case("SV1", S, "spec.rayClusterConfig.authOptions.enableK8sTokenAuth", &format!("{SINV}K8s token auth mode is currently not supported for RayService"),
            vec![("/spec/rayClusterConfig/authOptions", json!({"mode": "token", "enableK8sTokenAuth": true}))], vec![("/spec/rayClusterConfig/authOptions", json!({"mode": "token"}))]),
        case("SV2", S, "spec.rayClusterConfig.headGroupSpec.headService.metadata.name", &format!("{SINV}spec.rayClusterConfig.headGroupSpec.headService.metadata.name should not be set"),
            vec![("/spec/rayClusterConfig/headGroupSpec/headService", json!({"metadata": {"name": "svc"}}))], vec![("/spec/rayClusterConfig/headGroupSpec/headService", json!({"metadata": {"labels": {"a": "b"}}}))]),
        case("SV3", S, "spec.upgradeStrategy.type", &format!("{SINV}Spec.UpgradeStrategy.Type value BlueGreen is invalid, valid options are NewClusterWithIncrementalUpgrade, NewCluster, or None"),
            vec![("/spec/upgradeStrategy", json!({"type": "BlueGreen"}))], vec![("/spec/upgradeStrategy", json!({"type": "NewCluster"}))]),
        case("SVU1", S, "spec.rayClusterConfig.enableInTreeAutoscaling", &format!("{SINV}Ray Autoscaler is required for NewClusterWithIncrementalUpgrade"),
            vec![("/spec/upgradeStrategy", json!({"type": "NewClusterWithIncrementalUpgrade", "clusterUpgradeOptions": {"gatewayClassName": "istio", "stepSizePercent": 10, "intervalSeconds": 30, "maxSurgePercent": 100}}))],
            vec![("/spec/rayClusterConfig/enableInTreeAutoscaling", json!(true)), ("/spec/upgradeStrategy", json!({"type": "NewClusterWithIncrementalUpgrade", "clusterUpgradeOptions": {"gatewayClassName": "istio", "stepSizePercent": 10, "intervalSeconds": 30, "maxSurgePercent": 100}}))]),
        case("SVU2", S, "spec.upgradeStrategy.clusterUpgradeOptions", &format!("{SINV}ClusterUpgradeOptions are required for NewClusterWithIncrementalUpgrade"),
            vec![("/spec/rayClusterConfig/enableInTreeAutoscaling", json!(true)), ("/spec/upgradeStrategy", json!({"type": "NewClusterWithIncrementalUpgrade"}))],
            vec![("/spec/rayClusterConfig/enableInTreeAutoscaling", json!(true)), ("/spec/upgradeStrategy", json!({"type": "NewCluster"}))]),
        case("SVU5", S, "spec.upgradeStrategy.clusterUpgradeOptions.stepSizePercent", &format!("{SINV}stepSizePercent must be less than or equal to maxSurgePercent"),
            vec![("/spec/rayClusterConfig/enableInTreeAutoscaling", json!(true)), ("/spec/upgradeStrategy", json!({"type": "NewClusterWithIncrementalUpgrade", "clusterUpgradeOptions": {"gatewayClassName": "istio", "stepSizePercent": 50, "intervalSeconds": 30, "maxSurgePercent": 20}}))],
            vec![("/spec/rayClusterConfig/enableInTreeAutoscaling", json!(true)), ("/spec/upgradeStrategy", json!({"type": "NewClusterWithIncrementalUpgrade", "clusterUpgradeOptions": {"gatewayClassName": "istio", "stepSizePercent": 20, "intervalSeconds": 30, "maxSurgePercent": 20}}))]),
        case("SVU6", S, "spec.upgradeStrategy.clusterUpgradeOptions.intervalSeconds", &format!("{SINV}intervalSeconds must be greater than 0"),
            vec![("/spec/rayClusterConfig/enableInTreeAutoscaling", json!(true)), ("/spec/upgradeStrategy", json!({"type": "NewClusterWithIncrementalUpgrade", "clusterUpgradeOptions": {"gatewayClassName": "istio", "stepSizePercent": 10, "intervalSeconds": 0, "maxSurgePercent": 100}}))],
            vec![]),
        case("SVU7", S, "spec.upgradeStrategy.clusterUpgradeOptions.gatewayClassName", &format!("{SINV}gatewayClassName is required for NewClusterWithIncrementalUpgrade"),
            vec![("/spec/rayClusterConfig/enableInTreeAutoscaling", json!(true)), ("/spec/upgradeStrategy", json!({"type": "NewClusterWithIncrementalUpgrade", "clusterUpgradeOptions": {"gatewayClassName": "", "stepSizePercent": 10, "intervalSeconds": 5, "maxSurgePercent": 100}}))],
            vec![]),
        // ---- RayCronJob
        case("CJ1", C, "metadata.name", "RayCronJob name should be no more than 36 characters",
            vec![("/metadata/name", json!(long37))], vec![("/metadata/name", json!(long36))]).gates("RayCronJob=true"),
        case("CJ2", C, "spec.schedule", "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            vec![("/spec/schedule", json!("CRON_TZ=UTC 0 * * * *"))], vec![("/spec/schedule", json!("0 * * * *")), ("/spec/timeZone", json!("UTC"))]).gates("RayCronJob=true"),
        case("CJ3", C, "spec.schedule", "invalid cron schedule: end of range (24) above maximum (23): 24",
            vec![("/spec/schedule", json!("0 24 * * *"))], vec![("/spec/schedule", json!("0 23 * * *"))]).gates("RayCronJob=true"),
        case("CJ4", C, "spec.timeZone", "timeZone must not be empty string, omit the field to use the local time zone of the KubeRay operator",
            vec![("/spec/timeZone", json!(""))], vec![("/spec/timeZone", json!("Europe/Paris"))]).gates("RayCronJob=true"),
        case("CJ5", C, "spec.timeZone", "invalid time zone: unknown time zone Europe/Atlantis",
            vec![("/spec/timeZone", json!("Europe/Atlantis"))], vec![("/spec/timeZone", json!("Europe/Paris"))]).gates("RayCronJob=true"),
        case("J4", C, "spec.jobTemplate.rayClusterSpec", &format!("invalid RayJob template: {INV}one of RayClusterSpec or ClusterSelector must be set"),
            vec![("/spec/jobTemplate/rayClusterSpec", json!("<delete>"))], vec![]).gates("RayCronJob=true"),
        // ---- raygate's own
        case("RG-JOB-SELECTOR-IGNORES-SPEC", J, "spec.rayClusterSpec", "rayClusterSpec is ignored because clusterSelector is set: the job runs on the existing RayCluster named by clusterSelector[ray.io/cluster] and KubeRay creates no cluster from this spec",
            vec![("/spec/clusterSelector", json!({"ray.io/cluster": "c"}))], vec![]).warning(),
        case("RG-JOB-SELECTOR-SHUTDOWN", J, "spec.shutdownAfterJobFinishes", "shutdownAfterJobFinishes has no effect with clusterSelector: KubeRay never deletes a RayCluster it did not create, so the selected cluster keeps running after the job finishes",
            vec![("/spec/rayClusterSpec", json!("<delete>")), ("/spec/clusterSelector", json!({"ray.io/cluster": "c"})), ("/spec/shutdownAfterJobFinishes", json!(true))],
            vec![("/spec/shutdownAfterJobFinishes", json!(true))]).warning(),
        case("RG-JOB-SUBMISSION-MODE", J, "spec.submissionMode", "Unsupported value: \"K8sJob\": supported values: \"K8sJobMode\", \"HTTPMode\", \"InteractiveMode\", \"SidecarMode\"; KubeRay does not check it and would never submit the job",
            vec![("/spec/submissionMode", json!("K8sJob"))], vec![("/spec/submissionMode", json!("HTTPMode"))]),
        case("RG-JOB-NO-ENTRYPOINT", J, "spec.entrypoint", "entrypoint is empty: in K8sJobMode the submitter runs `ray job submit` with no command and the job fails; set entrypoint, or use submissionMode InteractiveMode to submit it yourself",
            vec![("/spec/entrypoint", json!("<delete>"))], vec![("/spec/entrypoint", json!("<delete>")), ("/spec/submissionMode", json!("InteractiveMode"))]).warning(),
        case("RG-SERVICE-INCREMENTAL-GATE", S, "spec.upgradeStrategy.type", "upgradeStrategy.type is NewClusterWithIncrementalUpgrade but the RayServiceIncrementalUpgrade feature gate is off: KubeRay skips the incremental upgrade checks and does not upgrade incrementally",
            vec![("/spec/upgradeStrategy", json!({"type": "NewClusterWithIncrementalUpgrade"}))], vec![("/spec/upgradeStrategy", json!({"type": "NewCluster"}))]).warning().gates("RayServiceIncrementalUpgrade=false"),
        case("RG-CRONJOB-GATE", C, "kind", "the RayCronJob feature gate is off (KubeRay's default): the operator runs no RayCronJob controller, so this object is stored but never schedules a RayJob",
            vec![], vec![]).warning(),
        case("RG-SERVICE-MINMAX-NOT-PROPAGATED", S, "spec.rayClusterConfig.workerGroupSpecs[0].maxReplicas", "worker group workers: changing minReplicas/maxReplicas of a RayService does not update its running RayCluster (KubeRay leaves them out of the spec hash so the autoscaler is not overridden); the new bounds apply only when the cluster is next replaced, or patch the RayCluster too",
            vec![("/spec/rayClusterConfig/workerGroupSpecs/0/maxReplicas", json!(10))], vec![("/spec/rayClusterConfig/workerGroupSpecs/0/replicas", json!(3))]).warning().old(base(S)),
    ]
}

/// `ray.io/initializing-timeout` values for SM3 (KubeRay's `validateInitializingTimeout`:
/// `time.ParseDuration`, then `strconv.Atoi`): the edges of both parsers (signs, `0`, units,
/// fractions past 19 digits, the int64 and 2^63 ns bounds, Go's uint64 wrap-around of the sum)
/// and 300 strings built from their pieces with a fixed-seed generator.
pub fn initializing_timeouts() -> Vec<String> {
    let mut out: Vec<String> = [
        "",
        "5m",
        "-5m",
        "+5m",
        "0",
        "-0",
        "+0",
        "00",
        "-00",
        "300",
        "-30",
        "+30",
        "soon",
        "1h30m",
        "1.5h",
        "1.s",
        ".5s",
        ".s",
        "-.s",
        "5",
        "5x",
        "5hm",
        "1h1h",
        "µs",
        "5µs",
        "5μs",
        "5us",
        "0s",
        "-0s",
        "0.0000000001ns",
        "0.9ns",
        "1.9ns",
        "9223372036854775807ns",
        "9223372036854775808ns",
        "-9223372036854775808ns",
        "-9223372036854775809ns",
        "2562047h47m16.854775807s",
        "2562047h47m16.854775808s",
        "2562048h",
        "9223372036854775808ns9223372036854775808ns",
        "-9223372036854775808ns9223372036854775808ns",
        "4611686018427387904ns4611686018427387904ns9223372036854775808ns",
        "4611686018427387904ns4611686018427387904ns9223372036854775808ns1ns",
        "9223372036854775808ns1ns",
        "1ns9223372036854775807ns",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "99999999999999999999",
        "000000000000000000000000001",
        "0.1234567890123456789012h",
        "0.00000000000012345678901234567h",
        "1.9223372036854775808h",
        "1.9223372036854775809h",
        "0.9223372036854775807999h",
        "0.0000000000000000000000000000000000000000000001h",
        "0.000000000001h",
        "0.0000000000000000000000000999999999999h",
        "2562047.788015215h",
        "2562047.7880152156h",
        "153722867.28091944m",
        "1.000000000000000000000000000000000000000000000000001s",
        " 5m",
        "5m ",
        "5 m",
        "1e3s",
        "0x10",
        "1_000",
        "\u{663}",
        "-",
        "+",
        "--5m",
        "5m-",
        "1h-5m",
        "5m0",
        "5.5.5s",
        "1.",
        ".1",
        "1..5s",
        "+-5m",
        "5M",
        "5H",
        "1d",
        "5ms5",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // [sign] component{1,3} (number [fraction] unit), now and then a piece out of place.
    const NUMS: &[&str] = &[
        "0",
        "1",
        "9",
        "00",
        "12",
        "30",
        "300",
        "9223372036854775807",
        "9223372036854775808",
        "4611686018427387904",
        "2562047",
        "153722867",
        "",
    ];
    const FRACS: &[&str] = &[
        "",
        "",
        ".",
        ".5",
        ".0001",
        ".854775807",
        ".9999999999999999999999",
    ];
    const UNITS: &[&str] = &["ns", "us", "µs", "μs", "ms", "s", "m", "h", "", "x"];
    let mut next = picker(0x5eed_0015);
    for _ in 0..300 {
        let mut s = ["", "", "", "-", "+"][next(5)].to_string();
        for _ in 0..1 + next(3) {
            s.push_str(NUMS[next(NUMS.len())]);
            s.push_str(FRACS[next(FRACS.len())]);
            s.push_str(UNITS[next(UNITS.len())]);
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// A RayService per [`initializing_timeouts`] value, in the annotation (SM3).
pub fn initializing_timeout_objects() -> Vec<(String, Value)> {
    initializing_timeouts()
        .into_iter()
        .map(|t| {
            let obj = edit(
                S,
                &[(
                    "/metadata/annotations",
                    json!({"ray.io/initializing-timeout": t}),
                )],
            );
            (format!("SM3 {t:?}"), obj)
        })
        .collect()
}

/// RayJobs with 1–6 deletion rules (JD10–JD15: TTL order per condition, duplicates, the first
/// valid rule's TTL), over the conditions and policies the CRD admits, with a fixed-seed
/// generator; some with autoscaling or a cluster selector (JD12/JD13 skip a rule).
pub fn deletion_rule_objects() -> Vec<(String, Value)> {
    let conds = [
        json!({"jobStatus": "SUCCEEDED"}),
        json!({"jobStatus": "FAILED"}),
        json!({"jobDeploymentStatus": "Failed"}),
    ];
    let policies = ["DeleteWorkers", "DeleteCluster", "DeleteSelf", "DeleteNone"];
    let ttls = [0, 5, 10, 60];
    let mut next = picker(0x5eed_0d15);
    let mut out = Vec::new();
    for k in 0..150 {
        let n = 1 + next(6);
        let rules: Vec<Value> = (0..n)
            .map(|_| {
                let mut c = conds[next(3)].clone();
                c["ttlSeconds"] = json!(ttls[next(4)]);
                json!({"condition": c, "policy": policies[next(4)]})
            })
            .collect();
        let mut edits = vec![("/spec/deletionStrategy", json!({"deletionRules": rules}))];
        match next(8) {
            0 => edits.push(("/spec/rayClusterSpec/enableInTreeAutoscaling", json!(true))),
            1 => {
                edits.push(("/spec/rayClusterSpec", json!("<delete>")));
                edits.push(("/spec/clusterSelector", json!({"ray.io/cluster": "c"})));
            }
            _ => {}
        }
        out.push((format!("deletion rules #{k}"), edit(J, &edits)));
    }
    out
}

/// A fixed-seed pseudo-random `next(n)` in `0..n` (a 64-bit LCG) for the generated cases.
fn picker(mut seed: u64) -> impl FnMut(usize) -> usize {
    move |n| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize % n
    }
}

/// RayCronJobs with `timeZone` values for CJ4/CJ5 (`time.LoadLocation` on Go's embedded tz
/// database): zone names, links, case, the `..` and leading-slash refusals.
pub fn time_zone_objects() -> Vec<(String, Value)> {
    [
        "Europe/Paris",
        "UTC",
        "Local",
        "utc",
        "local",
        "GMT",
        "Etc/GMT+5",
        "EST5EDT",
        "Zulu",
        "America/Argentina/Buenos_Aires",
        "America/New_York",
        "Asia/Kolkata",
        "Asia/Calcutta",
        "Europe/Atlantis",
        "Mars/Olympus",
        "europe/paris",
        "../etc/passwd",
        "Europe/../UTC",
        "/etc/localtime",
        "\\UTC",
        "America",
        "Etc/GMT+15",
        "US/Pacific",
        "Antarctica/Troll",
        "",
    ]
    .iter()
    .map(|tz| {
        (
            format!("CJ5 {tz:?}"),
            edit(C, &[("/spec/timeZone", json!(tz))]),
        )
    })
    .collect()
}
