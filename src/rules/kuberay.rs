//! KubeRay v1.7.0's own rules (webhook + controller), with KubeRay's exact messages, evaluated
//! in KubeRay's order. Unlike KubeRay, every failing rule is reported (the caller picks the first
//! error for `Mode::FirstError`), so each rule guards the preconditions KubeRay gets from the
//! rules before it (e.g. the head pod having a container).

use super::k8s::{
    GenericVersion, go_quote, go_string_slice, is_dns1035_label, is_dns1123_label,
    is_qualified_name, is_valid_label_value,
};
use super::path::{idx, key};
use crate::model::pod::{Container, EnvVar, PodSpec, PodTemplateSpec};
use crate::model::v1::{RayClusterSpec, RayClusterStatus, StringMap, WorkerGroupSpec};
use crate::violation::{FeatureGates, Violation};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

pub const MAX_RAYCLUSTER_NAME_LENGTH: usize = 53;
const FT_ANNOTATION: &str = "ray.io/ft-enabled";
const EXTERNAL_STORAGE_NS_ANNOTATION: &str = "ray.io/external-storage-namespace";
pub const ORIGINATED_FROM_CRD_LABEL: &str = "ray.io/originated-from-crd";
const RAY_ENABLE_AUTOSCALER_V2: &str = "RAY_enable_autoscaler_v2";
const COLLECTOR_CONTAINER_NAME: &str = "ray-history-collector";
const TLS_VOLUME_NAME: &str = "ray-tls";
const TLS_MOUNT_PATH: &str = "/etc/ray/tls";
const GCS_STORAGE_VOLUME: &str = "gcs-storage";
const GCS_STORAGE_MOUNT_PATH: &str = "/data/gcs";

/// What the RayCluster rules read of one cluster, borrowed from its typed view: a RayCluster's
/// own parts, or (for the cluster spec a RayJob, RayService or RayCronJob embeds) the spec
/// decoded with its parent and the metadata of the RayCluster KubeRay would create from it.
#[derive(Clone, Copy)]
pub struct Cluster<'a> {
    pub metadata: Option<&'a ObjectMeta>,
    pub spec: &'a RayClusterSpec,
    pub status: Option<&'a RayClusterStatus>,
}

fn pod_spec(t: Option<&PodTemplateSpec>) -> Option<&PodSpec> {
    t.and_then(|t| t.spec.as_ref())
}

fn containers(t: Option<&PodTemplateSpec>) -> &[Container] {
    pod_spec(t).map_or(&[], |s| s.containers.as_slice())
}

fn env_of(c: Option<&Container>) -> &[EnvVar] {
    c.and_then(|c| c.env.as_deref()).unwrap_or(&[])
}

/// An env entry's name: the pod templates' lean [`EnvVar`] and `k8s-openapi`'s
/// (`autoscalerOptions.env`).
trait EnvName {
    fn env_name(&self) -> &str;
}

impl EnvName for EnvVar {
    fn env_name(&self) -> &str {
        &self.name
    }
}

impl EnvName for k8s_openapi::api::core::v1::EnvVar {
    fn env_name(&self) -> &str {
        &self.name
    }
}

fn env_find<'a, E: EnvName>(env: &'a [E], name: &str) -> Option<(usize, &'a E)> {
    env.iter().enumerate().find(|(_, e)| e.env_name() == name)
}

fn map_get<'a>(m: Option<&'a StringMap>, k: &str) -> Option<&'a str> {
    m.and_then(|m| m.get(k)).map(String::as_str)
}

fn non_empty(m: Option<&StringMap>, k: &str) -> bool {
    map_get(m, k).is_some_and(|v| !v.is_empty())
}

/// Head container 0 env is the reference for every "head env" rule.
struct Head<'a> {
    c0: Option<&'a Container>,
    env: &'a [EnvVar],
    env_path: String,
}

fn head<'a>(spec: &'a RayClusterSpec) -> Head<'a> {
    let t = spec
        .head_group_spec
        .as_ref()
        .and_then(|h| h.template.as_ref());
    let c0 = containers(t).first();
    Head {
        c0,
        env: env_of(c0),
        env_path: "spec.headGroupSpec.template.spec.containers[0].env".to_string(),
    }
}

fn group_name(g: &WorkerGroupSpec) -> &str {
    g.group_name.as_deref().unwrap_or("")
}

fn workers(spec: &RayClusterSpec) -> &[WorkerGroupSpec] {
    spec.worker_group_specs.as_deref().unwrap_or(&[])
}

fn wg_path(i: usize) -> String {
    idx("spec.workerGroupSpecs", i)
}

pub fn autoscaling_enabled(spec: &RayClusterSpec) -> bool {
    spec.enable_in_tree_autoscaling == Some(true)
}

fn autoscaler_version(spec: &RayClusterSpec) -> Option<&str> {
    spec.autoscaler_options.as_ref()?.version.as_deref()
}

/// v2 by field, or env `RAY_enable_autoscaler_v2` ∈ {"1","true"} on head container 0.
fn v2_by_field_or_env(spec: &RayClusterSpec, h: &Head) -> bool {
    autoscaler_version(spec) == Some("v2")
        || env_find(h.env, RAY_ENABLE_AUTOSCALER_V2)
            .is_some_and(|(_, e)| matches!(e.value.as_deref(), Some("1") | Some("true")))
}

fn annotations<'a>(rc: &Cluster<'a>) -> Option<&'a StringMap> {
    rc.metadata.as_ref()?.annotations.as_ref()
}

/// Kubernetes appends 5 random alphanumerics to `generateName` (cut to 58 bytes first).
const GENERATE_NAME_BASE_MAX: usize = 58;

/// M1, M2 (= webhook WH1, WH2; reported once under the M ids).
///
/// With only `generateName`, the checks apply to the name the API server will generate (the
/// prefix plus 5 alphanumerics) and point at `metadata.generateName`; with neither, the API
/// server's own `name or generateName is required` is reported.
pub fn metadata(rc: &Cluster, out: &mut Vec<Violation>) {
    let meta = rc.metadata;
    let name = meta.and_then(|m| m.name.as_deref()).unwrap_or("");
    let generate = meta.and_then(|m| m.generate_name.as_deref()).unwrap_or("");
    let (candidate, path) = if name.is_empty() && !generate.is_empty() {
        let mut cut = generate.len().min(GENERATE_NAME_BASE_MAX);
        while !generate.is_char_boundary(cut) {
            cut -= 1;
        }
        (
            format!("{}x2b4z", &generate[..cut]),
            "metadata.generateName",
        )
    } else if name.is_empty() {
        out.push(Violation::error(
            super::crd::REQUIRED,
            "metadata.name",
            "Required value: name or generateName is required",
        ));
        return;
    } else {
        (name.to_string(), "metadata.name")
    };
    if candidate.len() > MAX_RAYCLUSTER_NAME_LENGTH {
        out.push(Violation::error(
            "M1",
            path,
            format!(
                "RayCluster name should be no more than {MAX_RAYCLUSTER_NAME_LENGTH} characters"
            ),
        ));
        return; // the webhook checks M2 only when M1 passed; the controller returns on M1
    }
    let errs = is_dns1035_label(&candidate);
    if !errs.is_empty() {
        out.push(Violation::error(
            "M2",
            path,
            format!(
                "RayCluster name should be a valid DNS1035 label: {}",
                go_string_slice(&errs)
            ),
        ));
    }
}

/// WH3: unique worker group names (webhook only); stops at the first duplicate.
pub fn unique_group_names(spec: &RayClusterSpec, out: &mut Vec<Violation>) {
    let mut seen = std::collections::HashSet::new();
    for (i, g) in workers(spec).iter().enumerate() {
        if !seen.insert(group_name(g)) {
            out.push(Violation::error(
                "WH3",
                key(&wg_path(i), "groupName"),
                "worker group names must be unique",
            ));
            return;
        }
    }
}

fn group_resources(
    group: &str,
    params: Option<&StringMap>,
    resources: Option<&StringMap>,
    path: &str,
    id: &str,
    out: &mut Vec<Violation>,
) {
    let has_start = ["num-cpus", "num-gpus", "memory", "resources"]
        .iter()
        .any(|k| non_empty(params, k));
    if has_start && resources.is_some_and(|r| !r.is_empty()) {
        out.push(Violation::error(
            id,
            key(path, "resources"),
            format!(
                "resource fields should not be set in both rayStartParams and Resources for {group} group; please use only one"
            ),
        ));
    }
}

fn group_labels(
    group: &str,
    params: Option<&StringMap>,
    labels: Option<&StringMap>,
    path: &str,
    id_params: &str,
    id_labels: &str,
    out: &mut Vec<Violation>,
) {
    if params.is_some_and(|p| p.contains_key("labels")) {
        out.push(Violation::error(
            id_params,
            key(&key(path, "rayStartParams"), "labels"),
            format!(
                "rayStartParams['labels'] is not supported for {group} group; please use the top-level Labels field instead"
            ),
        ));
        return; // KubeRay returns before looking at the labels
    }
    let Some(labels) = labels else { return };
    let lp = key(path, "labels");
    for (k, v) in labels {
        let mut errs = Vec::new();
        for e in is_qualified_name(k) {
            errs.push(format!(
                "invalid label key for {group} group: '{k}', error: {e}"
            ));
        }
        for e in is_valid_label_value(v) {
            errs.push(format!(
                "invalid label value for key '{k}' in {group} group: '{v}', error: {e}"
            ));
        }
        if !errs.is_empty() {
            out.push(Violation::error(id_labels, key(&lp, k), errs.join("; ")));
        }
    }
}

fn parse_ray_version(rv: &str) -> Result<GenericVersion, String> {
    GenericVersion::parse(rv)
}

/// `ValidateRayClusterSpec`, in KubeRay's order.
pub fn spec_rules(rc: &Cluster, gates: &FeatureGates, out: &mut Vec<Violation>) {
    let spec = rc.spec;
    let hg = spec.head_group_spec.as_ref();
    let head_t = hg.and_then(|h| h.template.as_ref());
    let head_params = hg.and_then(|h| h.ray_start_params.as_ref());
    let hp = "spec.headGroupSpec";
    let h = head(spec);
    let autoscaling = autoscaling_enabled(spec);
    let v2 = v2_by_field_or_env(spec, &h);
    let annotations = annotations(rc);

    // S1
    if containers(head_t).is_empty() {
        out.push(Violation::error(
            "S1",
            "spec.headGroupSpec.template.spec.containers",
            "headGroupSpec should have at least one container",
        ));
    }
    // S2, S3, S4
    group_resources(
        "Head",
        head_params,
        hg.and_then(|h| h.resources.as_ref()),
        hp,
        "S2",
        out,
    );
    group_labels(
        "Head",
        head_params,
        hg.and_then(|h| h.labels.as_ref()),
        hp,
        "S3",
        "S4",
        out,
    );

    // W1..W13 per group
    for (i, g) in workers(spec).iter().enumerate() {
        let gp = wg_path(i);
        let name = group_name(g);
        if containers(g.template.as_ref()).is_empty() {
            out.push(Violation::error(
                "W1",
                format!("{gp}.template.spec.containers"),
                "workerGroupSpec should have at least one container",
            ));
        }
        if !autoscaling && (g.min_replicas.is_none() || g.max_replicas.is_none()) {
            let field = if g.min_replicas.is_none() {
                "minReplicas"
            } else {
                "maxReplicas"
            };
            out.push(Violation::error(
                "W2",
                key(&gp, field),
                format!("worker group {name} must set both minReplicas and maxReplicas when autoscaling is disabled"),
            ));
        }
        if let Some(min) = g.min_replicas
            && min < 0
        {
            out.push(Violation::error(
                "W3",
                key(&gp, "minReplicas"),
                format!("worker group {name} has negative minReplicas {min}"),
            ));
        }
        if let Some(max) = g.max_replicas
            && max < 0
        {
            out.push(Violation::error(
                "W4",
                key(&gp, "maxReplicas"),
                format!("worker group {name} has negative maxReplicas {max}"),
            ));
        }
        if let (Some(min), Some(max)) = (g.min_replicas, g.max_replicas)
            && min > max
        {
            out.push(Violation::error(
                "W5",
                key(&gp, "minReplicas"),
                format!("worker group {name} has minReplicas {min} greater than maxReplicas {max}"),
            ));
        }
        let params = g.ray_start_params.as_ref();
        group_resources(name, params, g.resources.as_ref(), &gp, "W6", out);
        group_labels(name, params, g.labels.as_ref(), &gp, "W7", "W7", out);
        if let Some(idle) = g.idle_timeout_seconds {
            if idle < 0 {
                out.push(Violation::error(
                    "W8",
                    key(&gp, "idleTimeoutSeconds"),
                    format!(
                        "worker group {name}: idleTimeoutSeconds must be non-negative, got {idle}"
                    ),
                ));
            } else if !v2 {
                out.push(Violation::error(
                    "W9",
                    key(&gp, "idleTimeoutSeconds"),
                    format!("worker group {name}: idleTimeoutSeconds is set, but autoscaler v2 is not enabled. Please set .spec.autoscalerOptions.version to 'v2' (or set {RAY_ENABLE_AUTOSCALER_V2} environment variable to 'true' in the head pod if using KubeRay < 1.4.0)"),
                ));
            }
        }
        if let Some(p) = g.priority
            && p != 0
        {
            let pp = key(&gp, "priority");
            let rv = spec.ray_version.as_deref().unwrap_or("");
            if rv.is_empty() {
                out.push(Violation::error(
                    "W10",
                    pp.clone(),
                    format!("worker group {name}: priority is set, but RayVersion was not specified. Ray version 2.56.0 or later is required"),
                ));
            } else {
                match parse_ray_version(rv) {
                    Err(e) => out.push(Violation::error(
                        "W11",
                        pp.clone(),
                        format!("worker group {name}: priority is set, but RayVersion format is invalid: {rv}, {e}"),
                    )),
                    Ok(v) if v.less_than(&GenericVersion::new(&[2, 56, 0])) => out.push(Violation::error(
                        "W12",
                        pp.clone(),
                        format!("worker group {name}: priority is set, but minimum Ray version is 2.56.0, got {rv}"),
                    )),
                    Ok(_) => {}
                }
            }
            if !v2 {
                out.push(Violation::error(
                    "W13",
                    pp,
                    format!("worker group {name}: priority is set to {p}, but autoscaler v2 is not enabled. Priority is only supported with autoscaler v2 enabled"),
                ));
            }
        }
    }

    // G1..G14
    let gcs = spec.gcs_fault_tolerance_options.as_ref();
    if map_get(annotations, FT_ANNOTATION).is_some_and(|v| !v.is_empty()) && gcs.is_some() {
        out.push(Violation::error(
            "G1",
            "spec.gcsFaultToleranceOptions",
            format!("{FT_ANNOTATION} annotation and GcsFaultToleranceOptions are both set. Please use only GcsFaultToleranceOptions to configure GCS fault tolerance"),
        ));
    }
    let ft_enabled = map_get(annotations, FT_ANNOTATION)
        .is_some_and(|v| v.to_lowercase() == "true")
        || gcs.is_some();
    if !ft_enabled && let Some((j, _)) = env_find(h.env, "RAY_REDIS_ADDRESS") {
        out.push(Violation::error(
            "G2",
            idx(&h.env_path, j),
            "RAY_REDIS_ADDRESS is set which implicitly enables GCS fault tolerance, but GcsFaultToleranceOptions is not set. Please set GcsFaultToleranceOptions to enable GCS fault tolerance",
        ));
    }
    if let Some(opts) = gcs {
        let gp = "spec.gcsFaultToleranceOptions";
        if non_empty(head_params, "redis-password") {
            out.push(Violation::error(
                "G3",
                "spec.headGroupSpec.rayStartParams.redis-password",
                "cannot set `redis-password` in rayStartParams when GcsFaultToleranceOptions is enabled - use GcsFaultToleranceOptions.RedisPassword instead",
            ));
        }
        if let Some((j, _)) = env_find(h.env, "REDIS_PASSWORD") {
            out.push(Violation::error(
                "G4",
                idx(&h.env_path, j),
                "cannot set `REDIS_PASSWORD` env var in head Pod when GcsFaultToleranceOptions is enabled - use GcsFaultToleranceOptions.RedisPassword instead",
            ));
        }
        if let Some((j, _)) = env_find(h.env, "RAY_REDIS_ADDRESS") {
            out.push(Violation::error(
                "G5",
                idx(&h.env_path, j),
                "cannot set `RAY_REDIS_ADDRESS` env var in head Pod when GcsFaultToleranceOptions is enabled - use GcsFaultToleranceOptions.RedisAddress instead",
            ));
        }
        if non_empty(annotations, EXTERNAL_STORAGE_NS_ANNOTATION) {
            out.push(Violation::error(
                "G6",
                key("metadata.annotations", EXTERNAL_STORAGE_NS_ANNOTATION),
                "cannot set `ray.io/external-storage-namespace` annotation when GcsFaultToleranceOptions is enabled - use GcsFaultToleranceOptions.ExternalStorageNamespace instead",
            ));
        }
        let backend = opts.backend.as_deref().unwrap_or("");
        if backend == "rocksdb" {
            if !gates.enabled("GCSFaultToleranceEmbeddedStorage") {
                out.push(Violation::error(
                    "G7",
                    key(gp, "backend"),
                    "the embedded RocksDB GCS fault tolerance backend (GcsFaultToleranceOptions.Backend: 'rocksdb') requires the GCSFaultToleranceEmbeddedStorage feature gate to be enabled",
                ));
            } else {
                let g8 = |field: &str, go: &str, out: &mut Vec<Violation>| {
                    out.push(Violation::error(
                        "G8",
                        key(gp, field),
                        format!(
                            "cannot set GcsFaultToleranceOptions.{go} when backend is 'rocksdb'"
                        ),
                    ))
                };
                if opts.redis_address.as_deref().is_some_and(|s| !s.is_empty()) {
                    g8("redisAddress", "RedisAddress", out);
                }
                if opts.redis_username.is_some() {
                    g8("redisUsername", "RedisUsername", out);
                }
                if opts.redis_password.is_some() {
                    g8("redisPassword", "RedisPassword", out);
                }
                if opts
                    .external_storage_namespace
                    .as_deref()
                    .is_some_and(|s| !s.is_empty())
                {
                    g8("externalStorageNamespace", "ExternalStorageNamespace", out);
                }
                if let Some(st) = opts.storage.as_ref()
                    && st.claim_name.as_deref().is_some_and(|s| !s.is_empty())
                    && (st.size.is_some()
                        || st.storage_class_name.is_some()
                        || st.access_modes.as_ref().is_some_and(|a| !a.is_empty()))
                {
                    out.push(Violation::error(
                        "G9",
                        "spec.gcsFaultToleranceOptions.storage.claimName",
                        "GcsFaultToleranceOptions.Storage.ClaimName is mutually exclusive with size, storageClassName, and accessModes",
                    ));
                }
                if let Some((j, _)) =
                    h.env.iter().enumerate().find(|(_, e)| {
                        e.name == "RAY_gcs_storage" || e.name == "RAY_gcs_storage_path"
                    })
                {
                    out.push(Violation::error(
                        "G10",
                        idx(&h.env_path, j),
                        "cannot set `RAY_gcs_storage` or `RAY_gcs_storage_path` env var in head Pod when the embedded GCS FT backend is used - these are managed by KubeRay",
                    ));
                }
                let mounts = h.c0.and_then(|c| c.volume_mounts.as_deref()).unwrap_or(&[]);
                if let Some(k) = mounts.iter().position(|m| {
                    m.mount_path == GCS_STORAGE_MOUNT_PATH || m.name == GCS_STORAGE_VOLUME
                }) {
                    out.push(Violation::error(
                        "G11",
                        idx("spec.headGroupSpec.template.spec.containers[0].volumeMounts", k),
                        format!("cannot set a volume mount named \"{GCS_STORAGE_VOLUME}\" or mounted at {GCS_STORAGE_MOUNT_PATH} in the head container when the embedded GCS FT backend is used - it is managed by KubeRay"),
                    ));
                }
                let volumes = pod_spec(head_t)
                    .and_then(|s| s.volumes.as_deref())
                    .unwrap_or(&[]);
                if let Some(k) = volumes.iter().position(|v| v.name == GCS_STORAGE_VOLUME) {
                    out.push(Violation::error(
                        "G12",
                        idx("spec.headGroupSpec.template.spec.volumes", k),
                        format!("cannot set a volume named \"{GCS_STORAGE_VOLUME}\" in the head Pod when the embedded GCS FT backend is used - it is managed by KubeRay"),
                    ));
                }
            }
        } else if opts.storage.is_some() {
            out.push(Violation::error(
                "G13",
                "spec.gcsFaultToleranceOptions.storage",
                "cannot set GcsFaultToleranceOptions.Storage when backend is 'redis' - it only applies to the 'rocksdb' backend",
            ));
        }
    }
    let g14 = "cannot set redis username in rayStartParams or environment variables - use GcsFaultToleranceOptions.RedisUsername instead";
    if non_empty(head_params, "redis-username") {
        out.push(Violation::error(
            "G14",
            "spec.headGroupSpec.rayStartParams.redis-username",
            g14,
        ));
    } else if let Some((j, _)) = env_find(h.env, "REDIS_USERNAME") {
        out.push(Violation::error("G14", idx(&h.env_path, j), g14));
    }

    // SU1
    if !gates.enabled("RayJobDeletionPolicy") {
        for (i, g) in workers(spec).iter().enumerate() {
            if g.suspend == Some(true) {
                out.push(Violation::error(
                    "SU1",
                    key(&wg_path(i), "suspend"),
                    format!("worker group {} can be suspended only when the RayJobDeletionPolicy feature gate is enabled", group_name(g)),
                ));
            }
        }
    }

    // A1..A5
    if !autoscaling {
        if let Some((j, e)) = env_find(h.env, RAY_ENABLE_AUTOSCALER_V2) {
            let v = e.value.as_deref().unwrap_or("");
            if v == "1" || v == "true" {
                out.push(Violation::error(
                    "A1",
                    key(&idx(&h.env_path, j), "value"),
                    format!("environment variable {RAY_ENABLE_AUTOSCALER_V2} cannot be set to '{v}' when enableInTreeAutoscaling is false. Please set enableInTreeAutoscaling: true to use autoscaler v2"),
                ));
            }
        }
    } else {
        for (i, g) in workers(spec).iter().enumerate() {
            if g.suspend == Some(true) {
                out.push(Violation::error(
                    "A2",
                    key(&wg_path(i), "suspend"),
                    format!(
                        "worker group {} cannot be suspended with Autoscaler enabled",
                        group_name(g)
                    ),
                ));
            }
        }
        if autoscaler_version(spec).is_some() && env_find(h.env, RAY_ENABLE_AUTOSCALER_V2).is_some()
        {
            out.push(Violation::error(
                "A3",
                "spec.autoscalerOptions.version",
                format!("both .spec.autoscalerOptions.version and head Pod env var {RAY_ENABLE_AUTOSCALER_V2} are set, please only use the former"),
            ));
        }
        if autoscaler_version(spec) == Some("v2") {
            let rp = pod_spec(head_t)
                .and_then(|s| s.restart_policy.as_deref())
                .unwrap_or("");
            if !rp.is_empty() && rp != "Never" {
                out.push(Violation::error(
                    "A4",
                    "spec.headGroupSpec.template.spec.restartPolicy",
                    "restartPolicy for head Pod should be Never or unset when using autoscaler V2",
                ));
            }
            for (i, g) in workers(spec).iter().enumerate() {
                let rp = pod_spec(g.template.as_ref())
                    .and_then(|s| s.restart_policy.as_deref())
                    .unwrap_or("");
                if !rp.is_empty() && rp != "Never" {
                    out.push(Violation::error(
                        "A5",
                        format!("{}.template.spec.restartPolicy", wg_path(i)),
                        format!("restartPolicy for worker group {} should be Never or unset when using autoscaler V2", group_name(g)),
                    ));
                }
            }
        }
    }
    // A6, A7
    if let Some(ao) = spec.autoscaler_options.as_ref() {
        if let Some(t) = ao.idle_timeout_seconds
            && t < 0
        {
            out.push(Violation::error(
                "A6",
                "spec.autoscalerOptions.idleTimeoutSeconds",
                format!("autoscalerOptions.idleTimeoutSeconds must be non-negative, got {t}"),
            ));
        }
        if let Some((j, _)) = env_find(
            ao.env.as_deref().unwrap_or(&[]),
            "KUBERAY_GEN_AUTOSCALER_START_CMD",
        ) {
            out.push(Violation::error(
                "A7",
                idx("spec.autoscalerOptions.env", j),
                "autoscalerOptions.env must not contain KUBERAY_GEN_AUTOSCALER_START_CMD: it is managed by KubeRay and injected automatically into the autoscaler container",
            ));
        }
    }

    // H1..H7
    if let Some(hso) = spec.history_server_options.as_ref() {
        if !gates.enabled("RayClusterHistoryServer") {
            out.push(Violation::error(
                "H1",
                "spec.historyServerOptions",
                "RayClusterHistoryServer feature gate is not enabled",
            ));
        } else {
            match hso.collector_options.as_ref() {
                None => out.push(Violation::error(
                    "H2",
                    "spec.historyServerOptions.collectorOptions",
                    "historyServerOptions.collectorOptions must be set",
                )),
                Some(co) => collector_options(co, out),
            }
            for (k, c) in containers(head_t).iter().enumerate() {
                if c.name == COLLECTOR_CONTAINER_NAME {
                    out.push(Violation::error(
                        "H7",
                        format!("spec.headGroupSpec.template.spec.containers[{k}].name"),
                        format!("head pod template must not define a container with name '{COLLECTOR_CONTAINER_NAME}' when history server collector options are enabled"),
                    ));
                }
            }
            for (i, g) in workers(spec).iter().enumerate() {
                for (k, c) in containers(g.template.as_ref()).iter().enumerate() {
                    if c.name == COLLECTOR_CONTAINER_NAME {
                        out.push(Violation::error(
                            "H7",
                            format!("{}.template.spec.containers[{k}].name", wg_path(i)),
                            format!("worker group {} pod template must not define a container with name '{COLLECTOR_CONTAINER_NAME}' when history server collector options are enabled", group_name(g)),
                        ));
                    }
                }
            }
        }
    }

    // AU1..AU6
    let auth = spec.auth_options.as_ref();
    let k8s_auth = auth.is_some_and(|a| a.enable_k8s_token_auth == Some(true));
    if auth.is_some_and(|a| a.mode.as_deref() == Some("token")) {
        let rv = spec.ray_version.as_deref().unwrap_or("");
        if rv.is_empty() {
            out.push(Violation::error(
                "AU1",
                "spec.rayVersion",
                "authOptions.mode is 'token' but RayVersion was not specified. Ray version 2.52.0 or later is required",
            ));
        } else {
            match parse_ray_version(rv) {
                Err(e) => out.push(Violation::error(
                    "AU2",
                    "spec.rayVersion",
                    format!(
                        "authOptions.mode is 'token' but RayVersion format is invalid: {rv}, {e}"
                    ),
                )),
                Ok(v) => {
                    if v.less_than(&GenericVersion::new(&[2, 52, 0])) {
                        out.push(Violation::error(
                            "AU3",
                            "spec.rayVersion",
                            format!("authOptions.mode is 'token' but minimum Ray version is 2.52.0, got {rv}"),
                        ));
                    } else if k8s_auth && v.less_than(&GenericVersion::new(&[2, 55, 0])) {
                        out.push(Violation::error(
                            "AU4",
                            "spec.authOptions.enableK8sTokenAuth",
                            format!("authOptions.enableK8sTokenAuth is enabled but minimum Ray version is 2.55.0, got {rv}"),
                        ));
                    }
                }
            }
        }
        if k8s_auth
            && auth
                .and_then(|a| a.secret_name.as_deref())
                .is_some_and(|s| !s.is_empty())
        {
            out.push(Violation::error(
                "AU5",
                "spec.authOptions.secretName",
                "authOptions.enableK8sTokenAuth is enabled and authOptions.secretName is also set",
            ));
        }
    } else if k8s_auth {
        out.push(Violation::error(
            "AU6",
            "spec.authOptions.enableK8sTokenAuth",
            "authOptions.enableK8sTokenAuth is enabled but authOptions.mode not set to 'token'",
        ));
    }

    // NP1..NP4
    if let Some(np) = spec.network_policy.as_ref() {
        if !gates.enabled("RayClusterNetworkPolicy") {
            out.push(Violation::error(
                "NP1",
                "spec.networkPolicy",
                "spec.networkPolicy requires the RayClusterNetworkPolicy feature gate to be enabled",
            ));
        } else {
            let mode = np.mode.as_deref().unwrap_or("DenyAll");
            let rules = |which: &str,
                         path: String,
                         ingress: bool,
                         egress: bool,
                         out: &mut Vec<Violation>| {
                if mode == "DenyAllEgress" && ingress {
                    out.push(Violation::error(
                        if which.starts_with("workerGroups") { "NP4" } else { "NP2" },
                        format!("{path}.ingressRules"),
                        format!("networkPolicy.{which}.ingressRules cannot be set when mode is {} (ingress is not restricted)", go_quote(mode)),
                    ));
                }
                if mode == "DenyAllIngress" && egress {
                    out.push(Violation::error(
                        if which.starts_with("workerGroups") { "NP4" } else { "NP2" },
                        format!("{path}.egressRules"),
                        format!("networkPolicy.{which}.egressRules cannot be set when mode is {} (egress is not restricted)", go_quote(mode)),
                    ));
                }
            };
            let has = |v: &Option<Vec<_>>| v.as_ref().is_some_and(|v: &Vec<_>| !v.is_empty());
            if let Some(r) = np.head.as_ref() {
                rules(
                    "head",
                    "spec.networkPolicy.head".into(),
                    has(&r.ingress_rules),
                    r.egress_rules.as_ref().is_some_and(|v| !v.is_empty()),
                    out,
                );
            }
            if let Some(r) = np.worker.as_ref() {
                rules(
                    "worker",
                    "spec.networkPolicy.worker".into(),
                    has(&r.ingress_rules),
                    r.egress_rules.as_ref().is_some_and(|v| !v.is_empty()),
                    out,
                );
            }
            let mut names = std::collections::HashSet::new();
            for (i, g) in workers(spec).iter().enumerate() {
                let name = group_name(g);
                let errs = is_dns1123_label(name);
                if !errs.is_empty() {
                    out.push(Violation::error(
                        "NP3",
                        key(&wg_path(i), "groupName"),
                        format!("worker group name {} must be a valid DNS1123 label when networkPolicy is enabled (it is embedded in the NetworkPolicy name): {}", go_quote(name), go_string_slice(&errs)),
                    ));
                }
                names.insert(name);
            }
            for (k, wg) in np
                .worker_groups
                .as_deref()
                .unwrap_or(&[])
                .iter()
                .enumerate()
            {
                let name = wg.group_name.as_deref().unwrap_or("");
                let p = idx("spec.networkPolicy.workerGroups", k);
                rules(
                    &format!("workerGroups[{}]", go_quote(name)),
                    p.clone(),
                    wg.ingress_rules.as_ref().is_some_and(|v| !v.is_empty()),
                    wg.egress_rules.as_ref().is_some_and(|v| !v.is_empty()),
                    out,
                );
                if !names.contains(name) {
                    out.push(Violation::error(
                        "NP4",
                        key(&p, "groupName"),
                        format!("networkPolicy.workerGroups[{}] does not match any group name in workerGroupSpecs", go_quote(name)),
                    ));
                }
            }
        }
    }

    // T1..T3
    if let Some(tls) = spec.tls_options.as_ref() {
        if !gates.enabled("RayClusterMTLS") {
            out.push(Violation::error(
                "T1",
                "spec.tlsOptions",
                "spec.tlsOptions requires the RayClusterMTLS feature gate to be enabled",
            ));
        } else if tls.enabled == Some(true) {
            tls_rules(spec, out);
        }
    }
}

fn collector_options(co: &crate::model::v1::CollectorOptions, out: &mut Vec<Violation>) {
    let cp = "spec.historyServerOptions.collectorOptions";
    if co.image.as_deref().is_none_or(str::is_empty) {
        out.push(Violation::error(
            "H3",
            format!("{cp}.image"),
            "historyServerOptions.collectorOptions.image must be set",
        ));
    }
    let env = co.env.as_deref().unwrap_or(&[]);
    let ep = format!("{cp}.env");
    // Later entries win, as in KubeRay's map.
    let last = |name: &str| env.iter().enumerate().rev().find(|(_, e)| e.name == name);
    let has_value = |name: &str| {
        last(name).is_some_and(|(_, e)| {
            e.value.as_deref().is_some_and(|v| !v.is_empty()) || e.value_from.is_some()
        })
    };
    for name in [
        "POD_IP",
        "FQ_RAY_IP",
        "RAY_CLUSTER_NAME",
        "RAY_CLUSTER_NAMESPACE",
        "RAY_ROLE",
        "OWNER_KIND",
        "OWNER_NAME",
        "EVENTS_PORT",
    ] {
        if let Some((j, _)) = env.iter().enumerate().find(|(_, e)| e.name == name) {
            out.push(Violation::error(
                "H4",
                idx(&ep, j),
                format!("historyServerOptions.collectorOptions.env must not contain {name}: it is managed by KubeRay and injected automatically into the collector container"),
            ));
        }
    }
    let backend = match last("STORAGE_BACKEND") {
        Some((_, e)) if e.value.as_deref().is_some_and(|v| !v.is_empty()) => {
            e.value.as_deref().unwrap_or("")
        }
        found => {
            let p = found.map_or(ep.clone(), |(j, _)| idx(&ep, j));
            out.push(Violation::error(
                "H5",
                p,
                "STORAGE_BACKEND environment variable must be set with a literal string value in historyServerOptions.collectorOptions.env",
            ));
            return;
        }
    };
    let need = |var: &str, msg: String, out: &mut Vec<Violation>| {
        if !has_value(var) {
            out.push(Violation::error("H6", ep.clone(), msg));
        }
    };
    match backend.to_uppercase().as_str() {
        "GCS" => need(
            "GCS_BUCKET",
            "GCS_BUCKET environment variable must be set when STORAGE_BACKEND is GCS".into(),
            out,
        ),
        "S3" => need(
            "S3_REGION",
            "S3_REGION environment variable must be set when STORAGE_BACKEND is S3".into(),
            out,
        ),
        "ALIYUNOSS" => {
            for v in ["OSS_BUCKET", "OSS_ENDPOINT", "OSS_REGION"] {
                need(
                    v,
                    format!(
                        "{v} environment variable must be set when STORAGE_BACKEND is ALIYUNOSS"
                    ),
                    out,
                );
            }
        }
        "AZUREBLOB" => {
            let mode = last("AZURE_STORAGE_AUTH_MODE")
                .and_then(|(_, e)| e.value.as_deref())
                .map(|v| v.trim().to_lowercase())
                .unwrap_or_default();
            match mode.as_str() {
                "connection_string" => need(
                    "AZURE_STORAGE_CONNECTION_STRING",
                    "AZURE_STORAGE_CONNECTION_STRING environment variable must be set when STORAGE_BACKEND is AZUREBLOB and AZURE_STORAGE_AUTH_MODE is connection_string".into(),
                    out,
                ),
                "workload_identity" | "default" => need(
                    "AZURE_STORAGE_ACCOUNT_URL",
                    format!("AZURE_STORAGE_ACCOUNT_URL environment variable must be set when STORAGE_BACKEND is AZUREBLOB and AZURE_STORAGE_AUTH_MODE is {mode}"),
                    out,
                ),
                _ => {
                    if !has_value("AZURE_STORAGE_CONNECTION_STRING") && !has_value("AZURE_STORAGE_ACCOUNT_URL") {
                        out.push(Violation::error(
                            "H6",
                            ep.clone(),
                            "either AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT_URL environment variable must be set when STORAGE_BACKEND is AZUREBLOB",
                        ));
                    }
                }
            }
        }
        _ => {}
    }
}

const TLS_ENV: [&str; 4] = [
    "RAY_USE_TLS",
    "RAY_TLS_SERVER_CERT",
    "RAY_TLS_SERVER_KEY",
    "RAY_TLS_CA_CERT",
];

fn tls_mounts(
    mounts: &[k8s_openapi::api::core::v1::VolumeMount],
    path: &str,
    location: &str,
    out: &mut Vec<Violation>,
) {
    for (k, m) in mounts.iter().enumerate() {
        if m.name == TLS_VOLUME_NAME {
            out.push(Violation::error(
                "T3",
                idx(path, k),
                format!("cannot use volume mount named \"{TLS_VOLUME_NAME}\" in {location} when tlsOptions is set - the operator manages TLS configuration automatically"),
            ));
        } else if m.mount_path == TLS_MOUNT_PATH {
            out.push(Violation::error(
                "T3",
                idx(path, k),
                format!("cannot use volume mount at path \"{TLS_MOUNT_PATH}\" in {location} when tlsOptions is set - the operator manages TLS configuration automatically"),
            ));
        }
    }
}

fn tls_container(c: &Container, cpath: &str, location: &str, out: &mut Vec<Violation>) {
    let env = c.env.as_deref().unwrap_or(&[]);
    for var in TLS_ENV {
        if let Some((j, _)) = env_find(env, var) {
            out.push(Violation::error(
                "T2",
                idx(&format!("{cpath}.env"), j),
                format!("cannot set {var} environment variable in {location} when tlsOptions is set - the operator manages TLS configuration automatically"),
            ));
        }
    }
    tls_mounts(
        c.volume_mounts.as_deref().unwrap_or(&[]),
        &format!("{cpath}.volumeMounts"),
        location,
        out,
    );
}

fn tls_rules(spec: &RayClusterSpec, out: &mut Vec<Violation>) {
    let head_t = spec
        .head_group_spec
        .as_ref()
        .and_then(|h| h.template.as_ref());
    if let Some(c) = containers(head_t).first() {
        tls_container(
            c,
            "spec.headGroupSpec.template.spec.containers[0]",
            "head Pod",
            out,
        );
    }
    for (i, g) in workers(spec).iter().enumerate() {
        if let Some(c) = containers(g.template.as_ref()).first() {
            let location = format!("worker group {}", go_quote(group_name(g)));
            tls_container(
                c,
                &format!("{}.template.spec.containers[0]", wg_path(i)),
                &location,
                out,
            );
        }
    }
    if let Some(ao) = spec.autoscaler_options.as_ref() {
        let env = ao.env.as_deref().unwrap_or(&[]);
        for var in TLS_ENV {
            if let Some((j, _)) = env_find(env, var) {
                out.push(Violation::error(
                    "T2",
                    idx("spec.autoscalerOptions.env", j),
                    format!("cannot set {var} environment variable in autoscalerOptions.env when tlsOptions is set - the operator manages TLS configuration for the autoscaler automatically"),
                ));
            }
        }
        tls_mounts(
            ao.volume_mounts.as_deref().unwrap_or(&[]),
            "spec.autoscalerOptions.volumeMounts",
            "autoscalerOptions.volumeMounts",
            out,
        );
    }
}

/// §2.6: warning-only (reconcile continues).
pub fn restart_policy_v1_warning(spec: &RayClusterSpec, out: &mut Vec<Violation>) {
    if !(autoscaling_enabled(spec) && autoscaler_version(spec) == Some("v1")) {
        return;
    }
    let mut names = Vec::new();
    let mut first = None;
    for (i, g) in workers(spec).iter().enumerate() {
        let rp = pod_spec(g.template.as_ref())
            .and_then(|s| s.restart_policy.as_deref())
            .unwrap_or("");
        if !rp.is_empty() && rp != "Never" {
            names.push(group_name(g).to_string());
            first.get_or_insert(i);
        }
    }
    if let Some(i) = first {
        out.push(Violation::warning(
            "W-RESTARTPOLICY-V1",
            format!("{}.template.spec.restartPolicy", wg_path(i)),
            format!("restartPolicy for worker groups [{}] should be Never or unset when using autoscaler V1", names.join(", ")),
        ));
    }
}

/// U1, U2 (`ValidateRayClusterUpgradeOptions`).
pub fn upgrade_options(rc: &Cluster, out: &mut Vec<Violation>) {
    let Some(t) = rc
        .spec
        .upgrade_strategy
        .as_ref()
        .and_then(|u| u.type_.as_deref())
    else {
        return;
    };
    if t != "Recreate" && t != "None" {
        out.push(Violation::error(
            "U1",
            "spec.upgradeStrategy.type",
            format!("The RayCluster spec is invalid: Spec.UpgradeStrategy.Type value {t} is invalid, valid options are Recreate or None"),
        ));
        return;
    }
    let creator = rc
        .metadata
        .and_then(|m| m.labels.as_ref())
        .and_then(|l| l.get(ORIGINATED_FROM_CRD_LABEL))
        .map(String::as_str);
    if let Some(c @ ("RayJob" | "RayService")) = creator {
        out.push(Violation::error(
            "U2",
            "spec.upgradeStrategy.type",
            format!("upgradeStrategy cannot be set when RayCluster is created by {c}"),
        ));
    }
}

/// ST1 (`ValidateRayClusterStatus`).
pub fn status(rc: &Cluster, out: &mut Vec<Violation>) {
    let conds = rc
        .status
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or(&[]);
    let is_true = |t: &str| {
        conds
            .iter()
            .find(|c| c.type_ == t)
            .is_some_and(|c| c.status == "True")
    };
    if is_true("RayClusterSuspending") && is_true("RayClusterSuspended") {
        out.push(Violation::error(
            "ST1",
            "status.conditions",
            "invalid RayCluster State: rayv1.RayClusterSuspending and rayv1.RayClusterSuspended conditions should not be both true",
        ));
    }
}
