//! RayCluster → node types, as Ray's KubeRay autoscaling config does it (spec §3.1). Pure.
//!
//! Reads the RayCluster through a small typed view of the fields the engine needs.

use crate::quantity::Quantity;
use crate::violation::Violation;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Default worker idle timeout (`idle_timeout_minutes` 1.0).
pub const DEFAULT_IDLE_TIMEOUT_S: f64 = 60.0;

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ClusterView {
    #[serde(default)]
    spec: SpecView,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SpecView {
    #[serde(default)]
    worker_group_specs: Vec<GroupView>,
    #[serde(default)]
    autoscaler_options: Option<AutoscalerOptionsView>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AutoscalerOptionsView {
    #[serde(default)]
    upscaling_mode: Option<String>,
    #[serde(default)]
    idle_timeout_seconds: Option<i64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct GroupView {
    group_name: String,
    #[serde(default)]
    replicas: Option<i64>,
    #[serde(default)]
    min_replicas: Option<i64>,
    #[serde(default)]
    max_replicas: Option<i64>,
    #[serde(default)]
    num_of_hosts: Option<i64>,
    #[serde(default)]
    idle_timeout_seconds: Option<i64>,
    #[serde(default)]
    ray_start_params: BTreeMap<String, String>,
    #[serde(default)]
    resources: Option<BTreeMap<String, String>>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    priority: Option<i64>,
    #[serde(default)]
    scale_strategy: Option<ScaleStrategyView>,
    #[serde(default)]
    suspend: Option<bool>,
    #[serde(default)]
    template: Option<TemplateView>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ScaleStrategyView {
    #[serde(default)]
    workers_to_delete: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct TemplateView {
    #[serde(default)]
    spec: Option<PodSpecView>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PodSpecView {
    #[serde(default)]
    containers: Vec<ContainerView>,
    #[serde(default)]
    node_selector: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ContainerView {
    #[serde(default)]
    resources: Option<ResourceRequirementsView>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ResourceRequirementsView {
    #[serde(default)]
    limits: BTreeMap<String, Value>,
    #[serde(default)]
    requests: BTreeMap<String, Value>,
}

/// A worker group as the engine sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeTypeConfig {
    pub name: String,
    /// Position in `spec.workerGroupSpecs`.
    pub index: usize,
    /// Logical resources of one pod.
    pub resources: BTreeMap<String, f64>,
    pub labels: BTreeMap<String, String>,
    pub priority: i64,
    pub hosts: u32,
    /// `spec.workerGroupSpecs[i].replicas` as written (None if absent).
    pub replicas: Option<i64>,
    pub min_replicas: i64,
    pub max_replicas: i64,
    /// `minReplicas × numOfHosts` (pods).
    pub min_pods: u64,
    /// `maxReplicas × numOfHosts` (pods).
    pub max_pods: u64,
    /// Per-group idle timeout, seconds.
    pub idle_timeout_s: Option<f64>,
    pub workers_to_delete: Vec<String>,
    pub suspended: bool,
}

/// The cluster-wide autoscaling config.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    pub node_types: Vec<NodeTypeConfig>,
    /// Conservative → 1, anything else → 1000.
    pub upscaling_speed: f64,
    pub idle_timeout_s: f64,
}

/// Builds the autoscaling config; errors are violations naming the field.
pub fn cluster_config(obj: &Value) -> Result<ClusterConfig, Vec<Violation>> {
    let view: ClusterView = serde_json::from_value(obj.clone()).map_err(|e| {
        vec![Violation::error(
            "AS-PARSE",
            "spec",
            format!("cannot read the RayCluster for autoscaling: {e}"),
        )]
    })?;
    let opts = view.spec.autoscaler_options.unwrap_or_default();
    let upscaling_speed = match opts.upscaling_mode.as_deref() {
        Some("Conservative") => 1.0,
        _ => 1000.0,
    };
    let idle_timeout_s = opts
        .idle_timeout_seconds
        .map(|s| s as f64)
        .unwrap_or(DEFAULT_IDLE_TIMEOUT_S);
    let mut violations = Vec::new();
    let mut node_types = Vec::new();
    for (index, g) in view.spec.worker_group_specs.iter().enumerate() {
        let path = format!("spec.workerGroupSpecs[{index}]");
        match group_resources(g, &path) {
            Ok(resources) => {
                let hosts = g.num_of_hosts.unwrap_or(1).max(1);
                let min_replicas = g.min_replicas.unwrap_or(0).max(0);
                let max_replicas = g.max_replicas.unwrap_or(i32::MAX as i64).max(0);
                node_types.push(NodeTypeConfig {
                    name: g.group_name.clone(),
                    index,
                    resources,
                    labels: g.labels.clone(),
                    priority: g.priority.unwrap_or(0),
                    hosts: hosts.min(u32::MAX as i64) as u32,
                    replicas: g.replicas,
                    min_replicas,
                    max_replicas,
                    min_pods: (min_replicas as u64).saturating_mul(hosts as u64),
                    max_pods: (max_replicas as u64).saturating_mul(hosts as u64),
                    idle_timeout_s: g.idle_timeout_seconds.map(|s| s as f64),
                    workers_to_delete: g
                        .scale_strategy
                        .as_ref()
                        .and_then(|s| s.workers_to_delete.clone())
                        .unwrap_or_default(),
                    suspended: g.suspend.unwrap_or(false),
                });
            }
            Err(v) => violations.push(v),
        }
    }
    if violations.is_empty() {
        Ok(ClusterConfig {
            node_types,
            upscaling_speed,
            idle_timeout_s,
        })
    } else {
        Err(violations)
    }
}

fn err(path: &str, msg: String) -> Violation {
    Violation::error("AS-RESOURCES", path, msg)
}

/// Ray's `_get_ray_resources_from_group_spec`.
fn group_resources(g: &GroupView, path: &str) -> Result<BTreeMap<String, f64>, Violation> {
    let pod_spec = g.template.as_ref().and_then(|t| t.spec.as_ref());
    let container_res = pod_spec
        .and_then(|s| s.containers.first())
        .and_then(|c| c.resources.as_ref());
    let empty = BTreeMap::new();
    let limits = container_res.map(|r| &r.limits).unwrap_or(&empty);
    let requests = container_res.map(|r| &r.requests).unwrap_or(&empty);
    let rsp = &g.ray_start_params;
    let top = g.resources.as_ref();
    let res_path = format!("{path}.template.spec.containers[0].resources");

    let top_q = |key: &str| -> Result<Option<u64>, Violation> {
        match top.and_then(|t| t.get(key)) {
            Some(q) => ceil_quantity(&Value::String(q.clone()))
                .map(Some)
                .map_err(|e| err(&format!("{path}.resources.{key}"), e)),
            None => Ok(None),
        }
    };
    let int_param = |key: &str| -> Result<Option<u64>, Violation> {
        match rsp.get(key) {
            Some(s) => s.trim().parse::<u64>().map(Some).map_err(|_| {
                err(
                    &format!("{path}.rayStartParams.{key}"),
                    format!(
                        "rayStartParams {key} {s:?} is not an integer (Ray reads it with int())"
                    ),
                )
            }),
            None => Ok(None),
        }
    };
    let container_q = |map: &BTreeMap<String, Value>, kind: &str, key: &str| match map.get(key) {
        Some(v) => ceil_quantity(v)
            .map(Some)
            .map_err(|e| err(&format!("{res_path}.{kind}.{key}"), e)),
        None => Ok(None),
    };

    let mut out = BTreeMap::new();
    // CPU (required)
    let cpu = match top_q("CPU")? {
        Some(v) => Some(v),
        None => match int_param("num-cpus")? {
            Some(v) => Some(v),
            None => match container_q(limits, "limits", "cpu")? {
                Some(v) => Some(v),
                None => container_q(requests, "requests", "cpu")?,
            },
        },
    };
    let Some(cpu) = cpu else {
        return Err(err(
            path,
            format!(
                "Autoscaler failed to detect `CPU` resources for group {}.\nSet the `--num-cpus` rayStartParam and/or the CPU resource limit for the Ray container.",
                g.group_name
            ),
        ));
    };
    out.insert("CPU".to_string(), cpu as f64);
    // GPU
    let gpu = match top_q("GPU")? {
        Some(v) => Some(v),
        None => match int_param("num-gpus")? {
            Some(v) => Some(v),
            None => {
                let mut found = None;
                for (kind, map) in [("limits", limits), ("requests", requests)] {
                    if let Some((k, v)) = map.iter().find(|(k, _)| k.ends_with("gpu")) {
                        let n = ceil_quantity(v)
                            .map_err(|e| err(&format!("{res_path}.{kind}.{k}"), e))?;
                        if n > 0 {
                            found = Some(n);
                        }
                        break;
                    }
                }
                found
            }
        },
    };
    if let Some(gpu) = gpu {
        out.insert("GPU".to_string(), gpu as f64);
    }
    // memory
    let memory = match top_q("memory")? {
        Some(v) => Some(v),
        None => match int_param("memory")? {
            Some(v) => Some(v),
            None => match container_q(limits, "limits", "memory")? {
                Some(v) => Some(v),
                None => container_q(requests, "requests", "memory")?,
            },
        },
    };
    if let Some(m) = memory {
        out.insert("memory".to_string(), m as f64);
    }
    // custom resources
    let mut custom: BTreeMap<String, f64> = BTreeMap::new();
    if let Some(top) = top {
        for (k, q) in top {
            if matches!(k.as_str(), "CPU" | "GPU" | "TPU" | "memory") {
                continue;
            }
            let n = ceil_quantity(&Value::String(q.clone()))
                .map_err(|e| err(&format!("{path}.resources.{k}"), e))?;
            custom.insert(k.clone(), n as f64);
        }
    } else if let Some(raw) = rsp.get("resources") {
        custom = parse_custom_resources(raw)
            .map_err(|e| err(&format!("{path}.rayStartParams.resources"), e))?;
    }
    // TPU
    let tpu = match top_q("TPU")? {
        Some(v) => Some(v as f64),
        None => match custom.get("TPU") {
            Some(v) => Some(*v),
            None => {
                let mut found = None;
                for (kind, map) in [("limits", limits), ("requests", requests)] {
                    if let Some(v) = map.get("google.com/tpu") {
                        let n = ceil_quantity(v)
                            .map_err(|e| err(&format!("{res_path}.{kind}.google.com/tpu"), e))?;
                        if n > 0 {
                            found = Some(n as f64);
                            break;
                        }
                    }
                }
                found
            }
        },
    };
    if let Some(t) = tpu {
        if !custom.contains_key("TPU") {
            out.insert("TPU".to_string(), t);
        }
        if let Some(ps) = pod_spec
            && let Some(name) = tpu_head_resource(&ps.node_selector)
        {
            out.insert(name, 1.0);
        }
    }
    for (k, v) in custom {
        out.insert(k, v);
    }
    Ok(out)
}

/// `TPU-<gen>-<cores>-head` from the GKE TPU node selectors.
fn tpu_head_resource(sel: &BTreeMap<String, String>) -> Option<String> {
    let acc = sel.get("cloud.google.com/gke-tpu-accelerator")?;
    let topo = sel.get("cloud.google.com/gke-tpu-topology")?;
    let (gen_name, cores_per_chip) = match acc.as_str() {
        "tpu-v4-podslice" => ("v4", 2),
        "tpu-v5-lite-device" | "tpu-v5-lite-podslice" => ("v5litepod", 1),
        "tpu-v5p-slice" => ("v5p", 2),
        "tpu-v6e-slice" => ("v6e", 1),
        "tpu7x" => ("v7x", 2),
        _ => return None,
    };
    let mut chips: u64 = 1;
    for part in topo.split('x') {
        chips = chips.checked_mul(part.trim().parse::<u64>().ok()?)?;
    }
    Some(format!("TPU-{gen_name}-{}-head", chips * cores_per_chip))
}

/// `rayStartParams.resources`: a JSON object wrapped in an extra pair of quotes; Ray strips the
/// first and last character and all backslashes; values must be integers.
fn parse_custom_resources(raw: &str) -> Result<BTreeMap<String, f64>, String> {
    let mut chars = raw.chars();
    chars.next();
    chars.next_back();
    let inner: String = chars.as_str().chars().filter(|c| *c != '\\').collect();
    let v: Value = serde_json::from_str(&inner).map_err(|e| {
        format!("rayStartParams resources {raw:?} is not a quoted JSON object: {e}")
    })?;
    let Value::Object(m) = v else {
        return Err(format!(
            "rayStartParams resources {raw:?} is not a JSON object"
        ));
    };
    let mut out = BTreeMap::new();
    for (k, v) in m {
        match v.as_i64() {
            Some(n) => {
                out.insert(k, n as f64);
            }
            None => {
                return Err(format!(
                    "rayStartParams resources: value of {k:?} must be an integer, got {v}"
                ));
            }
        }
    }
    Ok(out)
}

/// A Kubernetes quantity rounded up to an integer, as Ray's `_round_up_k8s_quantity` does
/// (exact: the core's `Quantity`, no floating point).
pub(crate) fn ceil_quantity(v: &Value) -> Result<u64, String> {
    let q = match Quantity::from_json(v) {
        Some(Ok(q)) => q,
        Some(Err(e)) => return Err(format!("quantity {v}: {e}")),
        None => return Err(format!("quantity {v} is not a number or string")),
    };
    if q.is_negative() {
        return Err(format!("quantity {v} is negative"));
    }
    q.ceil_scaled(0)
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| format!("quantity {v} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_round_up_like_ray() {
        let cases = [
            ("100m", 1),
            ("15001m", 16),
            ("2", 2),
            ("100Mi", 104857600),
            ("1G", 1000000000),
            ("500m", 1),
            ("2Gi", 2147483648),
            ("0.5Gi", 536870912),
            ("1.5", 2),
            ("1.2", 2),
            ("1k", 1000),
            ("1e3", 1000),
            ("7n", 1),
            ("2000m", 2),
        ];
        for (q, want) in cases {
            assert_eq!(ceil_quantity(&json!(q)).unwrap(), want, "{q}");
        }
        assert_eq!(ceil_quantity(&json!(3)).unwrap(), 3);
        assert!(ceil_quantity(&json!("1ki")).unwrap_err().contains("suffix"));
        assert!(
            ceil_quantity(&json!("abc"))
                .unwrap_err()
                .contains("regular expression")
        );
        assert!(
            ceil_quantity(&json!("-1"))
                .unwrap_err()
                .contains("negative")
        );
    }

    #[test]
    fn custom_resources_quoted_json() {
        let m = parse_custom_resources(r#""{\"Custom1\": 1, \"Custom2\": 5}""#).unwrap();
        assert_eq!(m.get("Custom1"), Some(&1.0));
        assert_eq!(m.get("Custom2"), Some(&5.0));
        assert!(parse_custom_resources(r#""{\"A\": 1.5}""#).is_err());
    }

    #[test]
    fn tpu_head_names() {
        let sel = |a: &str, t: &str| {
            BTreeMap::from([
                (
                    "cloud.google.com/gke-tpu-accelerator".to_string(),
                    a.to_string(),
                ),
                (
                    "cloud.google.com/gke-tpu-topology".to_string(),
                    t.to_string(),
                ),
            ])
        };
        assert_eq!(
            tpu_head_resource(&sel("tpu-v4-podslice", "2x2x2")).unwrap(),
            "TPU-v4-16-head"
        );
        assert_eq!(
            tpu_head_resource(&sel("tpu-v5-lite-device", "2x2")).unwrap(),
            "TPU-v5litepod-4-head"
        );
        assert_eq!(
            tpu_head_resource(&sel("tpu-v5-lite-podslice", "2x4")).unwrap(),
            "TPU-v5litepod-8-head"
        );
        assert_eq!(
            tpu_head_resource(&sel("tpu-v5p-slice", "2x2x4")).unwrap(),
            "TPU-v5p-32-head"
        );
        assert_eq!(
            tpu_head_resource(&sel("tpu-v6e-slice", "16x16")).unwrap(),
            "TPU-v6e-256-head"
        );
        assert_eq!(
            tpu_head_resource(&sel("tpu7x", "2x2x2")).unwrap(),
            "TPU-v7x-16-head"
        );
    }

    #[test]
    fn group_resource_precedence() {
        let rc = json!({"spec": {"workerGroupSpecs": [
            {"groupName": "small", "rayStartParams": {"resources": "\"{\\\"Custom2\\\": 5}\""},
             "template": {"spec": {"containers": [{"resources": {
                "limits": {"cpu": "1", "memory": "512Mi"}, "requests": {"cpu": "500m", "memory": "256Mi"}}}]}}},
            {"groupName": "gpu", "rayStartParams": {},
             "template": {"spec": {"containers": [{"resources": {
                "requests": {"cpu": "1500m", "nvidia.com/gpu": "3"}}}]}}},
            {"groupName": "over", "rayStartParams": {"num-cpus": "100", "num-gpus": "100", "memory": "300000000"},
             "template": {"spec": {"containers": [{"resources": {"limits": {"cpu": "1"}}}]}}},
            {"groupName": "top", "rayStartParams": {"num-cpus": "1"},
             "resources": {"CPU": "16", "GPU": "8", "memory": "2Gi", "CustomResource": "99"},
             "template": {"spec": {"containers": [{}]}}}
        ]}});
        let cfg = cluster_config(&rc).unwrap();
        let r = |i: usize| cfg.node_types[i].resources.clone();
        assert_eq!(
            r(0),
            BTreeMap::from([
                ("CPU".into(), 1.0),
                ("memory".into(), 536870912.0),
                ("Custom2".into(), 5.0)
            ])
        );
        assert_eq!(
            r(1),
            BTreeMap::from([("CPU".into(), 2.0), ("GPU".into(), 3.0)])
        );
        assert_eq!(
            r(2),
            BTreeMap::from([
                ("CPU".into(), 100.0),
                ("GPU".into(), 100.0),
                ("memory".into(), 300000000.0)
            ])
        );
        assert_eq!(
            r(3),
            BTreeMap::from([
                ("CPU".into(), 16.0),
                ("GPU".into(), 8.0),
                ("memory".into(), 2147483648.0),
                ("CustomResource".into(), 99.0)
            ])
        );
        assert_eq!(cfg.upscaling_speed, 1000.0);
        assert_eq!(cfg.idle_timeout_s, 60.0);
    }

    #[test]
    fn missing_cpu_is_a_violation() {
        let rc = json!({"spec": {"workerGroupSpecs": [{"groupName": "small-group", "template": {"spec": {"containers": [{}]}}}]}});
        let v = cluster_config(&rc).unwrap_err();
        assert_eq!(v[0].path, "spec.workerGroupSpecs[0]");
        assert!(
            v[0].message
                .contains("failed to detect `CPU` resources for group small-group")
        );
    }
}
