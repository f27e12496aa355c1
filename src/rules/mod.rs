//! Validation rules: every KubeRay rule (exact messages) plus raygate's own checks. Pure.
//!
//! Rule ids: KubeRay's (`M1`, `M2`, `WH3`, `S1`–`S4`, `W1`–`W13`, `G1`–`G14`, `SU1`, `A1`–`A7`,
//! `H1`–`H7`, `AU1`–`AU6`, `NP1`–`NP4`, `T1`–`T3`, `U1`, `U2`, `ST1`), the API server's
//! (`CRD-REQUIRED`, `CRD-ENUM`, `CRD-MANAGEDBY`, `CRD-IMMUTABLE-MANAGEDBY`,
//! `CRD-IMMUTABLE-BACKEND`), the controller warning `W-RESTARTPOLICY-V1`, and raygate's own
//! `RG-*` checks (see [`raygate`]). The webhook's WH1/WH2 are the same checks as M1/M2 and are
//! reported once, as `M1`/`M2`.
//!
//! Rules read a typed view ([`crate::model::v1::RayCluster`]) deserialized straight from the
//! borrowed JSON; they never re-serialize it, so nothing is lost.

pub mod crd;
pub mod docs;
pub mod gotime;
pub mod k8s;
pub mod kinds;
pub mod kuberay;
pub mod path;
pub mod raygate;
pub(crate) mod tznames;

use crate::model::{self, v1, v1alpha1};

/// Every rule id `validate` can report, in KubeRay's evaluation order, then raygate's own.
pub const RULE_IDS: &[&str] = &[
    "CRD-REQUIRED",
    "CRD-ENUM",
    "CRD-MANAGEDBY",
    "CRD-IMMUTABLE-MANAGEDBY",
    "CRD-IMMUTABLE-BACKEND",
    "RG-TYPE",
    "M1",
    "M2",
    "WH3",
    "S1",
    "S2",
    "S3",
    "S4",
    "W1",
    "W2",
    "W3",
    "W4",
    "W5",
    "W6",
    "W7",
    "W8",
    "W9",
    "W10",
    "W11",
    "W12",
    "W13",
    "G1",
    "G2",
    "G3",
    "G4",
    "G5",
    "G6",
    "G7",
    "G8",
    "G9",
    "G10",
    "G11",
    "G12",
    "G13",
    "G14",
    "SU1",
    "A1",
    "A2",
    "A3",
    "A4",
    "A5",
    "A6",
    "A7",
    "H1",
    "H2",
    "H3",
    "H4",
    "H5",
    "H6",
    "H7",
    "AU1",
    "AU2",
    "AU3",
    "AU4",
    "AU5",
    "AU6",
    "NP1",
    "NP2",
    "NP3",
    "NP4",
    "T1",
    "T2",
    "T3",
    "U1",
    "U2",
    "ST1",
    "W-RESTARTPOLICY-V1",
    "RG-DEPRECATED-V1ALPHA1",
    "RG-REPLICAS-NEGATIVE",
    "RG-REPLICAS-CLAMPED",
    "RG-NUMOFHOSTS",
    "RG-QUANTITY",
    "RG-QUANTITY-NEGATIVE",
    "RG-REQUESTS-EXCEED-LIMITS",
    "RG-IMAGEPULLPOLICY",
    "RG-RAYSTARTPARAMS-NUMBER",
];
use crate::violation::{Mode, ValidateOptions, Violation};
use serde::Deserialize;
use serde_json::Value;

/// Validates one RayCluster (`ray.io/v1` or `ray.io/v1alpha1`, CRD defaults already applied, as
/// the API server does before admission). `old` is the stored object on UPDATE (immutability
/// rules). Returns every violation (or only the first error with `Mode::FirstError`).
///
/// Order of the result: the KubeRay-equivalent findings in KubeRay's evaluation order (API
/// server checks, metadata, webhook group names, spec in the §2.2 order, upgrade options,
/// status), then raygate's own findings and warnings.
pub fn validate(obj: &Value, old: Option<&Value>, opts: &ValidateOptions) -> Vec<Violation> {
    let mut ordered: Vec<Violation> = Vec::new();
    let mut extra: Vec<Violation> = Vec::new();
    if !obj.is_object() {
        ordered.push(Violation::error(
            raygate::TYPE,
            "",
            format!("a RayCluster must be a JSON object, got {}", json_type(obj)),
        ));
        return finish(ordered, extra, opts.mode);
    }
    let alpha = obj.get("apiVersion").and_then(Value::as_str) == Some(model::API_VERSION_V1ALPHA1);
    if alpha {
        extra.push(Violation::warning(
            raygate::DEPRECATED_V1ALPHA1,
            "apiVersion",
            model::V1ALPHA1_DEPRECATION_WARNING,
        ));
    }
    let spec = obj.get("spec");
    let old_spec = old.and_then(|o| o.get("spec"));
    let rc = match typed_view(obj, alpha) {
        Ok(rc) => rc,
        Err((path, msg)) => {
            crd::check(spec, old_spec, alpha, &mut ordered);
            // A missing required field the CRD check already reported is not repeated.
            if !ordered
                .iter()
                .any(|v| v.is_error() && v.path.starts_with(&path))
            {
                ordered.push(Violation::error(raygate::TYPE, path, msg));
            }
            return finish(ordered, extra, opts.mode);
        }
    };
    let default_spec = v1::RayClusterSpec::default();
    let cluster = kuberay::Cluster {
        metadata: rc.metadata.as_ref(),
        spec: rc.spec.as_ref().unwrap_or(&default_spec),
        status: rc.status.as_ref(),
    };
    check_cluster(
        spec,
        old_spec,
        alpha,
        &cluster,
        opts,
        &mut ordered,
        &mut extra,
    );
    finish(ordered, extra, opts.mode)
}

/// Every RayCluster check of one decoded cluster: the API server's CRD checks on the raw `spec`
/// (`old_spec`: the stored one on UPDATE), then KubeRay's rules in its order into `ordered`, and
/// raygate's own findings and the controller warnings into `extra`. A RayCluster and the
/// cluster spec a RayJob, RayService or RayCronJob embeds (typed once, with its parent: see
/// [`kinds`]) both go through here.
pub(crate) fn check_cluster(
    spec: Option<&Value>,
    old_spec: Option<&Value>,
    alpha: bool,
    rc: &kuberay::Cluster,
    opts: &ValidateOptions,
    ordered: &mut Vec<Violation>,
    extra: &mut Vec<Violation>,
) {
    crd::check(spec, old_spec, alpha, ordered);
    kuberay::metadata(rc, ordered);
    kuberay::unique_group_names(rc.spec, ordered);
    kuberay::spec_rules(rc, &opts.gates, ordered);
    kuberay::restart_policy_v1_warning(rc.spec, extra);
    kuberay::upgrade_options(rc, ordered);
    kuberay::status(rc, ordered);
    raygate::check(rc.spec, extra);
}

fn finish(ordered: Vec<Violation>, mut extra: Vec<Violation>, mode: Mode) -> Vec<Violation> {
    match mode {
        Mode::All => {
            let mut all = ordered;
            all.append(&mut extra);
            all
        }
        Mode::FirstError => ordered
            .into_iter()
            .filter(|v| v.is_error())
            .take(1)
            .collect(),
    }
}

pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Builds the v1 typed view. A v1alpha1 object is read through the v1alpha1 schema first (so
/// v1-only fields are dropped, as the API server prunes them) and then viewed as v1.
fn typed_view(obj: &Value, alpha: bool) -> Result<v1::RayCluster, (String, String)> {
    if alpha {
        let a: v1alpha1::RayCluster = deserialize_with_path(obj)?;
        let as_json = serde_json::to_value(&a).map_err(|e| (String::new(), e.to_string()))?;
        return deserialize_with_path(&as_json);
    }
    deserialize_with_path(obj)
}

/// Deserializes from a borrowed Value; on failure, re-runs with path tracking to name the field.
pub fn deserialize_with_path<'de, T: Deserialize<'de>>(
    obj: &'de Value,
) -> Result<T, (String, String)> {
    match T::deserialize(obj) {
        Ok(t) => Ok(t),
        Err(first) => match serde_path_to_error::deserialize::<_, T>(obj) {
            Ok(t) => Ok(t),
            Err(e) => {
                let mut p = String::new();
                for seg in e.path().iter() {
                    p = match seg {
                        serde_path_to_error::Segment::Seq { index } => path::idx(&p, *index),
                        serde_path_to_error::Segment::Map { key } => path::key(&p, key),
                        serde_path_to_error::Segment::Enum { variant } => path::key(&p, variant),
                        serde_path_to_error::Segment::Unknown => p,
                    };
                }
                let msg = e.inner().to_string();
                // "missing field `name`" is about a child of the current path.
                if let Some(field) = msg
                    .strip_prefix("missing field `")
                    .and_then(|r| r.strip_suffix('`'))
                {
                    p = path::key(&p, field);
                    return Err((p, crd::MSG_REQUIRED.to_string()));
                }
                let _ = first;
                Err((p, msg))
            }
        },
    }
}

/// A `help:` line for a finding, where raygate knows the fix: a feature gate named in the
/// message is enabled with `--feature-gates NAME=true` (on the operator and on `raygate
/// validate`/`serve`).
pub fn help(rule: &str, message: &str) -> Option<String> {
    let _ = rule;
    let gate = crate::violation::KUBERAY_GATES
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| message.contains(&format!("{n} feature gate")))
        .max_by_key(|n| n.len())?;
    Some(format!(
        "enable the gate: `--feature-gates {gate}=true` (on the KubeRay operator, and on raygate validate/serve)"
    ))
}
