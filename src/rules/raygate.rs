//! raygate's own checks, for things KubeRay accepts but then gets wrong at runtime.
//! Rule ids start with `RG-`; messages follow KubeRay's style.

use super::path::{idx, key};
use crate::model::pod::{Container, PodTemplateSpec};
use crate::model::v1::{RayClusterSpec, StringMap};
use crate::quantity::Quantity;
use crate::violation::Violation;
use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use std::collections::BTreeMap;

pub const REPLICAS_NEGATIVE: &str = "RG-REPLICAS-NEGATIVE";
pub const REPLICAS_CLAMPED: &str = "RG-REPLICAS-CLAMPED";
pub const NUM_OF_HOSTS: &str = "RG-NUMOFHOSTS";
pub const QUANTITY: &str = "RG-QUANTITY";
pub const QUANTITY_NEGATIVE: &str = "RG-QUANTITY-NEGATIVE";
pub const REQUESTS_EXCEED_LIMITS: &str = "RG-REQUESTS-EXCEED-LIMITS";
pub const IMAGE_PULL_POLICY: &str = "RG-IMAGEPULLPOLICY";
pub const RAY_START_PARAMS_NUMBER: &str = "RG-RAYSTARTPARAMS-NUMBER";
pub const DEPRECATED_V1ALPHA1: &str = "RG-DEPRECATED-V1ALPHA1";
pub const TYPE: &str = "RG-TYPE";

pub const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];

/// Replica bounds, numOfHosts, quantities, pull policy and rayStartParams numbers.
pub fn check(spec: &RayClusterSpec, out: &mut Vec<Violation>) {
    for (i, g) in spec
        .worker_group_specs
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        let gp = idx("spec.workerGroupSpecs", i);
        let name = g.group_name.as_deref().unwrap_or("");
        if let Some(r) = g.replicas {
            if r < 0 {
                out.push(Violation::error(
                    REPLICAS_NEGATIVE,
                    key(&gp, "replicas"),
                    format!("worker group {name} has negative replicas {r}"),
                ));
            } else if g.suspend != Some(true) {
                // KubeRay: desired = clamp(replicas, min, max) (GetWorkerGroupDesiredReplicas).
                let min = g.min_replicas.unwrap_or(0);
                let max = g.max_replicas.unwrap_or(i32::MAX);
                if min >= 0 && max >= 0 && min <= max && (r < min || r > max) {
                    let used = r.clamp(min, max);
                    let (bound, which) = if r < min {
                        (min, "minReplicas")
                    } else {
                        (max, "maxReplicas")
                    };
                    out.push(Violation::warning(
                        REPLICAS_CLAMPED,
                        key(&gp, "replicas"),
                        format!("worker group {name} has replicas {r} outside [minReplicas {min}, maxReplicas {max}]; KubeRay will use {used} ({which} {bound})"),
                    ));
                }
            }
        }
        if let Some(n) = g.num_of_hosts
            && n < 1
        {
            out.push(Violation::error(
                NUM_OF_HOSTS,
                key(&gp, "numOfHosts"),
                format!("worker group {name} has numOfHosts {n}; it must be at least 1 (KubeRay would create no pods for this group)"),
            ));
        }
        group_resource_map(name, g.resources.as_ref(), &key(&gp, "resources"), out);
        ray_start_params(
            g.ray_start_params.as_ref(),
            &key(&gp, "rayStartParams"),
            out,
        );
        for (k, c) in containers_of(g.template.as_ref()).iter().enumerate() {
            container_resources(c, &|| format!("{gp}.template.spec.containers[{k}]"), out);
        }
    }
    if let Some(h) = spec.head_group_spec.as_ref() {
        group_resource_map(
            "Head",
            h.resources.as_ref(),
            "spec.headGroupSpec.resources",
            out,
        );
        ray_start_params(
            h.ray_start_params.as_ref(),
            "spec.headGroupSpec.rayStartParams",
            out,
        );
        for (k, c) in containers_of(h.template.as_ref()).iter().enumerate() {
            container_resources(
                c,
                &|| format!("spec.headGroupSpec.template.spec.containers[{k}]"),
                out,
            );
        }
    }
    if let Some(ao) = spec.autoscaler_options.as_ref() {
        if let Some(r) = ao.resources.as_ref() {
            requirements(
                r,
                &|| "spec.autoscalerOptions.resources".to_string(),
                &|| "autoscalerOptions.resources".to_string(),
                out,
            );
        }
        if let Some(p) = ao.image_pull_policy.as_deref()
            && !PULL_POLICIES.contains(&p)
        {
            out.push(Violation::error(
                IMAGE_PULL_POLICY,
                "spec.autoscalerOptions.imagePullPolicy",
                super::crd::unsupported_value(p, PULL_POLICIES),
            ));
        }
    }
    if let Some(co) = spec
        .history_server_options
        .as_ref()
        .and_then(|h| h.collector_options.as_ref())
        && let Some(r) = co.resources.as_ref()
    {
        requirements(
            r,
            &|| "spec.historyServerOptions.collectorOptions.resources".to_string(),
            &|| "historyServerOptions.collectorOptions.resources".to_string(),
            out,
        );
    }
    if let Some(size) = spec
        .gcs_fault_tolerance_options
        .as_ref()
        .and_then(|g| g.storage.as_ref())
        .and_then(|s| s.size.as_ref())
    {
        let p = "spec.gcsFaultToleranceOptions.storage.size";
        if let Some(q) = parse_quantity(&size.0, p, out)
            && q.is_negative()
        {
            out.push(Violation::error(
                QUANTITY_NEGATIVE,
                p,
                format!(
                    "gcsFaultToleranceOptions.storage.size must not be negative, got {}",
                    size.0
                ),
            ));
        }
    }
}

fn containers_of(t: Option<&PodTemplateSpec>) -> &[Container] {
    t.and_then(|t| t.spec.as_ref())
        .map_or(&[], |s| s.containers.as_slice())
}

fn parse_quantity(s: &str, path: &str, out: &mut Vec<Violation>) -> Option<Quantity> {
    match s.parse::<Quantity>() {
        Ok(q) => Some(q),
        Err(e) => {
            out.push(Violation::error(
                QUANTITY,
                path,
                format!("invalid quantity {}: {e}", super::k8s::go_quote(s)),
            ));
            None
        }
    }
}

/// Parses one `limits`/`requests` map; paths and labels are built only for violations.
fn quantities<'a>(
    m: Option<&'a BTreeMap<String, K8sQuantity>>,
    path: &dyn Fn() -> String,
    label: &dyn Fn() -> String,
    out: &mut Vec<Violation>,
) -> Vec<(&'a str, Quantity)> {
    let mut parsed = Vec::new();
    for (name, q) in m.into_iter().flatten() {
        match q.0.parse::<Quantity>() {
            Ok(v) => {
                if v.is_negative() {
                    out.push(Violation::error(
                        QUANTITY_NEGATIVE,
                        key(&path(), name),
                        format!("{}.{name} must not be negative, got {}", label(), q.0),
                    ));
                }
                parsed.push((name.as_str(), v));
            }
            Err(e) => out.push(Violation::error(
                QUANTITY,
                key(&path(), name),
                format!("invalid quantity {}: {e}", super::k8s::go_quote(&q.0)),
            )),
        }
    }
    parsed
}

/// Every quantity parses, none negative, requests ≤ limits per resource.
fn requirements(
    r: &ResourceRequirements,
    path: &dyn Fn() -> String,
    label: &dyn Fn() -> String,
    out: &mut Vec<Violation>,
) {
    let limits = quantities(
        r.limits.as_ref(),
        &|| key(&path(), "limits"),
        &|| format!("{}.limits", label()),
        out,
    );
    let requests = quantities(
        r.requests.as_ref(),
        &|| key(&path(), "requests"),
        &|| format!("{}.requests", label()),
        out,
    );
    for (name, req) in &requests {
        if let Some((_, lim)) = limits.iter().find(|(n, _)| n == name)
            && req > lim
        {
            let label = label();
            out.push(Violation::error(
                REQUESTS_EXCEED_LIMITS,
                key(&key(&path(), "requests"), name),
                format!(
                    "{label}.requests.{name} ({req}) must be less than or equal to {label}.limits.{name} ({lim})"
                ),
            ));
        }
    }
}

fn container_resources(c: &Container, cpath: &dyn Fn() -> String, out: &mut Vec<Violation>) {
    if let Some(r) = c.resources.as_ref() {
        requirements(
            r,
            &|| format!("{}.resources", cpath()),
            &|| format!("container {} resources", super::k8s::go_quote(&c.name)),
            out,
        );
    }
}

/// KubeRay parses group `resources` values as quantities and silently skips the ones that fail.
fn group_resource_map(group: &str, m: Option<&StringMap>, path: &str, out: &mut Vec<Violation>) {
    for (name, v) in m.into_iter().flatten() {
        let p = key(path, name);
        match v.parse::<Quantity>() {
            Err(e) => out.push(Violation::error(
                QUANTITY,
                p,
                format!("invalid quantity {} for resource {name} in {group} group: {e} (KubeRay would silently ignore it)", super::k8s::go_quote(v)),
            )),
            Ok(q) if q.is_negative() => out.push(Violation::error(
                QUANTITY_NEGATIVE,
                p,
                format!("resource {name} in {group} group must not be negative, got {v}"),
            )),
            Ok(_) => {}
        }
    }
}

/// `ray start --num-cpus/--num-gpus/--memory` take non-negative integers.
fn ray_start_params(m: Option<&StringMap>, path: &str, out: &mut Vec<Violation>) {
    for k in ["num-cpus", "num-gpus", "memory"] {
        if let Some(v) = m.and_then(|m| m.get(k)) {
            let t = v.trim();
            if !t.is_empty() && !t.bytes().all(|c| c.is_ascii_digit()) {
                out.push(Violation::warning(
                    RAY_START_PARAMS_NUMBER,
                    key(path, k),
                    format!("rayStartParams['{k}'] should be a non-negative integer (ray start rejects other values), got {}", super::k8s::go_quote(v)),
                ));
            }
        }
    }
}
