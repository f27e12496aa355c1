//! CRD-level checks the API server performs before any webhook or controller sees the object:
//! `required` fields, string enums, and the two CEL rules (`managedBy`, GCS FT `backend`).
//! Read straight from the raw JSON so they work even when the typed view cannot be built.

use super::path::{idx, key};
use crate::violation::Violation;
use serde_json::Value;

pub const REQUIRED: &str = "CRD-REQUIRED";
pub const ENUM: &str = "CRD-ENUM";
pub const MANAGED_BY: &str = "CRD-MANAGEDBY";
pub const IMMUTABLE_MANAGED_BY: &str = "CRD-IMMUTABLE-MANAGEDBY";
pub const IMMUTABLE_BACKEND: &str = "CRD-IMMUTABLE-BACKEND";

pub const MANAGED_BY_VALUES: &[&str] = &["ray.io/kuberay-operator", "kueue.x-k8s.io/multikueue"];
pub const MSG_MANAGED_BY_VALUE: &str = "the managedBy field value must be either 'ray.io/kuberay-operator' or 'kueue.x-k8s.io/multikueue'";
pub const MSG_MANAGED_BY_IMMUTABLE: &str = "the managedBy field is immutable";
pub const MSG_BACKEND_IMMUTABLE: &str = "gcsFaultToleranceOptions.backend is immutable";

/// Kubernetes' `field.Required` detail.
pub const MSG_REQUIRED: &str = "Required value";

/// Kubernetes' `field.NotSupported` detail: `Unsupported value: "x": supported values: "a", "b"`.
pub fn unsupported_value(value: &str, allowed: &[&str]) -> String {
    let list: Vec<String> = allowed.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "Unsupported value: {}: supported values: {}",
        super::k8s::go_quote(value),
        list.join(", ")
    )
}

fn obj_field<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    v.as_object()
        .and_then(|m| m.get(k))
        .filter(|x| !x.is_null())
}

fn require(parent: &Value, parent_path: &str, field: &str, out: &mut Vec<Violation>) {
    if parent.is_object() && obj_field(parent, field).is_none() {
        out.push(Violation::error(
            REQUIRED,
            key(parent_path, field),
            MSG_REQUIRED,
        ));
    }
}

fn check_enum(
    parent: Option<&Value>,
    parent_path: &str,
    field: &str,
    allowed: &[&str],
    out: &mut Vec<Violation>,
) {
    if let Some(Value::String(s)) = parent.and_then(|p| obj_field(p, field))
        && !allowed.contains(&s.as_str())
    {
        out.push(Violation::error(
            ENUM,
            key(parent_path, field),
            unsupported_value(s, allowed),
        ));
    }
}

fn check_template(group: &Value, group_path: &str, out: &mut Vec<Violation>) {
    if let Some(t) = obj_field(group, "template") {
        let tp = key(group_path, "template");
        if let Some(ps) = obj_field(t, "spec") {
            let psp = key(&tp, "spec");
            require(ps, &psp, "containers", out);
            if let Some(Value::Array(cs)) = obj_field(ps, "containers") {
                let cp = key(&psp, "containers");
                for (i, c) in cs.iter().enumerate() {
                    require(c, &idx(&cp, i), "name", out);
                }
            }
        }
    }
}

/// Appends the CRD-level violations of a RayCluster's `spec` (and, on UPDATE, the transition
/// rules against the stored `old_spec`). Paths start at `spec`.
pub fn check(
    spec: Option<&Value>,
    old_spec: Option<&Value>,
    v1alpha1: bool,
    out: &mut Vec<Violation>,
) {
    let Some(spec) = spec.filter(|s| s.is_object()) else {
        return;
    };
    let sp = "spec";
    require(spec, sp, "headGroupSpec", out);
    if let Some(head) = obj_field(spec, "headGroupSpec") {
        let hp = key(sp, "headGroupSpec");
        require(head, &hp, "template", out);
        if v1alpha1 {
            require(head, &hp, "rayStartParams", out);
        }
        check_template(head, &hp, out);
        if let Some(io) = obj_field(head, "ingressOptions") {
            check_enum(
                Some(io),
                &key(&hp, "ingressOptions"),
                "pathType",
                &["Exact", "Prefix", "ImplementationSpecific"],
                out,
            );
        }
    }
    if let Some(Value::Array(groups)) = obj_field(spec, "workerGroupSpecs") {
        let wp = key(sp, "workerGroupSpecs");
        for (i, g) in groups.iter().enumerate() {
            let gp = idx(&wp, i);
            require(g, &gp, "groupName", out);
            require(g, &gp, "template", out);
            if v1alpha1 {
                require(g, &gp, "rayStartParams", out);
            }
            check_template(g, &gp, out);
        }
    }
    let ao = obj_field(spec, "autoscalerOptions");
    let aop = key(sp, "autoscalerOptions");
    check_enum(
        ao,
        &aop,
        "upscalingMode",
        &["Default", "Aggressive", "Conservative"],
        out,
    );
    if !v1alpha1 {
        check_enum(ao, &aop, "version", &["v1", "v2"], out);
        check_enum(
            obj_field(spec, "authOptions"),
            "spec.authOptions",
            "mode",
            &["disabled", "token"],
            out,
        );
        check_enum(
            obj_field(spec, "upgradeStrategy"),
            "spec.upgradeStrategy",
            "type",
            &["Recreate", "None"],
            out,
        );
        let gcs = obj_field(spec, "gcsFaultToleranceOptions");
        check_enum(
            gcs,
            "spec.gcsFaultToleranceOptions",
            "backend",
            &["redis", "rocksdb"],
            out,
        );
        check_enum(
            gcs.and_then(|g| obj_field(g, "storage")),
            "spec.gcsFaultToleranceOptions.storage",
            "deletionPolicy",
            &["DeleteWithCluster", "Retain"],
            out,
        );
        if let Some(np) = obj_field(spec, "networkPolicy") {
            check_enum(
                Some(np),
                "spec.networkPolicy",
                "mode",
                &["DenyAll", "DenyAllIngress", "DenyAllEgress"],
                out,
            );
            if let Some(Value::Array(wgs)) = obj_field(np, "workerGroups") {
                for (i, wg) in wgs.iter().enumerate() {
                    require(
                        wg,
                        &idx("spec.networkPolicy.workerGroups", i),
                        "groupName",
                        out,
                    );
                }
            }
        }
        if let Some(Value::String(m)) = obj_field(spec, "managedBy")
            && !MANAGED_BY_VALUES.contains(&m.as_str())
        {
            out.push(Violation::error(
                MANAGED_BY,
                "spec.managedBy",
                MSG_MANAGED_BY_VALUE,
            ));
        }
    }

    // Transition rules (`self == oldSelf`) are evaluated only when both old and new have the field.
    if let Some(old_spec) = old_spec {
        if let (Some(new_m), Some(old_m)) = (
            obj_field(spec, "managedBy"),
            obj_field(old_spec, "managedBy"),
        ) && new_m != old_m
        {
            out.push(Violation::error(
                IMMUTABLE_MANAGED_BY,
                "spec.managedBy",
                MSG_MANAGED_BY_IMMUTABLE,
            ));
        }
        let backend = |s: Option<&Value>| {
            s.and_then(|s| obj_field(s, "gcsFaultToleranceOptions"))
                .and_then(|g| obj_field(g, "backend"))
                .cloned()
        };
        if let (Some(n), Some(o)) = (backend(Some(spec)), backend(Some(old_spec)))
            && n != o
        {
            out.push(Violation::error(
                IMMUTABLE_BACKEND,
                "spec.gcsFaultToleranceOptions.backend",
                MSG_BACKEND_IMMUTABLE,
            ));
        }
    }
}
