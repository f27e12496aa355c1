//! Webhook-free admission: raygate's RayCluster rules compiled to Kubernetes
//! `ValidatingAdmissionPolicy` (CEL, GA since 1.30) and the autoscaler defaults to a
//! `MutatingAdmissionPolicy` (beta in 1.34). Pure: options in, `serde_json::Value` objects out.
//!
//! One policy holds every exported rule, in the order of [`crate::rules::RULE_IDS`]. The API
//! server reports the first failing validation of the first denying policy, so the message a
//! client sees is the first of raygate's errors in that order (see `tests/e2e_policy.rs`).
//! Rules that CEL cannot carry with KubeRay's exact message are listed by [`not_exported`].

mod kinds;
mod raycluster;

use crate::model::Kind;
use crate::violation::FeatureGates;
use serde_json::{Map, Value, json};

pub use kinds::KindPolicy;
pub use raycluster::{Check, checks};

/// How the policies are bound and named.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub gates: FeatureGates,
    /// `validationActions` of the binding: `Deny`, `Warn`, `Audit` (not both Deny and Warn).
    pub actions: Vec<String>,
    /// The binding's `matchResources.namespaceSelector` (a parsed label selector).
    pub namespace_selector: Option<Value>,
    /// Prefix of every object name (`raygate-`).
    pub name_prefix: String,
    /// Also export the MutatingAdmissionPolicy (autoscaler defaults) and its binding.
    pub mutating: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            gates: FeatureGates::default(),
            actions: vec!["Deny".into()],
            namespace_selector: None,
            name_prefix: "raygate-".into(),
            mutating: false,
        }
    }
}

pub const VALIDATION_ACTIONS: &[&str] = &["Deny", "Warn", "Audit"];

/// Parses `--validation-actions Deny,Audit` (case-sensitive, as the API server wants them).
pub fn parse_actions(s: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for a in s.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        if !VALIDATION_ACTIONS.contains(&a) {
            return Err(format!(
                "unknown validation action {a:?}; expected Deny, Warn or Audit"
            ));
        }
        if !out.iter().any(|x| x == a) {
            out.push(a.to_string());
        }
    }
    if out.is_empty() {
        return Err("--validation-actions needs at least one of Deny, Warn, Audit".into());
    }
    if out.iter().any(|a| a == "Deny") && out.iter().any(|a| a == "Warn") {
        return Err("validation actions Deny and Warn cannot be combined (the API server refuses the binding)".into());
    }
    out.sort_by_key(|a| VALIDATION_ACTIONS.iter().position(|x| x == a));
    Ok(out)
}

/// Parses a label selector in kubectl's syntax (`a=b,c!=d,e,!f,g in (x,y),h notin (z)`) into a
/// `LabelSelector` object.
pub fn parse_label_selector(s: &str) -> Result<Value, String> {
    let mut labels = Map::new();
    let mut exprs: Vec<Value> = Vec::new();
    for term in split_terms(s)? {
        let t = term.trim();
        if t.is_empty() {
            continue;
        }
        let set_op = [" notin ", " in "]
            .iter()
            .find_map(|op| t.split_once(op).map(|(k, v)| (op.trim(), k, v)));
        if let Some((op, k, vals)) = set_op {
            let vals = vals.trim();
            let inner = vals
                .strip_prefix('(')
                .and_then(|v| v.strip_suffix(')'))
                .ok_or_else(|| format!("selector term {t:?}: the values must be in parentheses"))?;
            let values: Vec<Value> = inner
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| json!(v))
                .collect();
            exprs.push(json!({
                "key": check_key(k.trim(), t)?,
                "operator": if op == "in" { "In" } else { "NotIn" },
                "values": values
            }));
        } else if let Some((k, v)) = t.split_once("!=") {
            exprs.push(
                json!({"key": check_key(k.trim(), t)?, "operator": "NotIn", "values": [v.trim()]}),
            );
        } else if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
            labels.insert(check_key(k.trim(), t)?, json!(v.trim()));
        } else if let Some(k) = t.strip_prefix('!') {
            exprs.push(json!({"key": check_key(k.trim(), t)?, "operator": "DoesNotExist"}));
        } else {
            exprs.push(json!({"key": check_key(t, t)?, "operator": "Exists"}));
        }
    }
    let mut sel = Map::new();
    if !labels.is_empty() {
        sel.insert("matchLabels".into(), Value::Object(labels));
    }
    if !exprs.is_empty() {
        sel.insert("matchExpressions".into(), Value::Array(exprs));
    }
    if sel.is_empty() {
        return Err(format!("empty namespace selector {s:?}"));
    }
    Ok(Value::Object(sel))
}

fn check_key(k: &str, term: &str) -> Result<String, String> {
    let errs = crate::rules::k8s::is_qualified_name(k);
    if errs.is_empty() {
        Ok(k.to_string())
    } else {
        Err(format!(
            "selector term {term:?}: invalid label key {k:?}: {}",
            errs.join("; ")
        ))
    }
}

/// Splits at commas outside parentheses.
fn split_terms(s: &str) -> Result<Vec<String>, String> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0i32);
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        if depth < 0 {
            return Err(format!("selector {s:?}: unbalanced ')'"));
        }
        cur.push(c);
    }
    if depth != 0 {
        return Err(format!("selector {s:?}: unbalanced '('"));
    }
    out.push(cur);
    Ok(out)
}

/// A rule that is not exported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotExported {
    pub rule: &'static str,
    pub reason: String,
}

/// The rules of [`crate::rules::RULE_IDS`] that the exported policies do not enforce with these
/// gates, with the reason. Every id is either in [`checks`] or here (tested).
pub fn not_exported(gates: &FeatureGates) -> Vec<NotExported> {
    raycluster::not_exported(gates)
}

/// Limits of the exported policies that are not about one rule's expressibility (printed by
/// `--explain`, measured in docs/policy.md "Cost").
pub const LIMITS: &[&str] = &[
    "WH3 (worker group names unique) runs indexOf for every worker group, which the API server \
     charges N x the sum of floor(bytes/10) of the names: with 10-19-byte names the expression \
     exceeds the per-expression CEL cost limit (1,000,000) at about 1,000 groups (measured: 500 \
     admitted, 1,000 refused), and with failurePolicy Fail the create is refused with \
     `operation cancelled: actual cost limit exceeded` although raygate validate and the webhook \
     accept it; with names under 10 bytes the per-group rules (W7, labels) reach the limit at \
     about 3,000 groups",
];

/// The variables and validations of `kind`'s policy with these gates (RayCluster: [`checks`]).
pub fn policy_for(kind: Kind, gates: &FeatureGates) -> KindPolicy {
    kinds::policy(kind, gates)
}

/// What `kind`'s policy does not enforce with these gates, and why (for RayJob, RayService and
/// RayCronJob: their own rule ids, and the RayCluster rules of the embedded spec).
pub fn not_exported_for(kind: Kind, gates: &FeatureGates) -> Vec<NotExported> {
    kinds::not_exported(kind, gates)
}

/// The kinds that get a policy, in export order (every kind, [`Kind::ALL`]).
pub const KINDS: [Kind; 4] = Kind::ALL;

/// The rule → exported table of docs/policy.md (checked by `tests/cli_policy.rs`): every rule
/// id, whether the default gates export it, else whether some gate setting does, else why not.
pub fn markdown_table() -> String {
    let default = FeatureGates::default();
    let mut s = String::from("| rule | exported | why not / when |\n|---|---|---|\n");
    for id in crate::rules::RULE_IDS {
        let in_default = checks(&default).iter().any(|c| c.id == *id);
        let (yes, why) = if in_default {
            ("yes", String::new())
        } else if let Some((gate, on)) = raycluster::gate_of(id) {
            (
                "yes",
                format!("with `--feature-gates {gate}={on}` (inactive otherwise, as in KubeRay)"),
            )
        } else {
            let r = not_exported(&default)
                .into_iter()
                .find(|n| n.rule == *id)
                .map(|n| n.reason)
                .unwrap_or_default();
            ("no", r)
        };
        s.push_str(&format!("| {id} | {yes} | {why} |\n"));
    }
    s
}

/// The RayJob / RayService / RayCronJob table of docs/policy.md (checked by
/// `tests/cli_policy.rs`): every own rule id of [`crate::rules::kinds::RULE_IDS`] per kind, with
/// the default gates.
pub fn markdown_table_kinds() -> String {
    let default = FeatureGates::default();
    let kinds = [Kind::RayJob, Kind::RayService, Kind::RayCronJob];
    let mut s = String::from("| rule | RayJob | RayService | RayCronJob |\n|---|---|---|---|\n");
    let policies: Vec<(Kind, Vec<&'static str>, Vec<NotExported>)> = kinds
        .iter()
        .map(|&k| {
            let ids = policy_for(k, &default)
                .checks
                .iter()
                .map(|c| c.id)
                .collect();
            (k, ids, not_exported_for(k, &default))
        })
        .collect();
    let cell = |id: &str, (k, ids, not): &(Kind, Vec<&'static str>, Vec<NotExported>)| {
        if ids.contains(&id) {
            "yes".to_string()
        } else if !kinds::applies(*k, id) {
            "—".to_string()
        } else {
            let why = not.iter().find(|n| n.rule == id).map(|n| n.reason.as_str());
            format!("no: {}", why.unwrap_or("not exported"))
        }
    };
    for id in crate::rules::kinds::RULE_IDS {
        let cells: Vec<String> = policies.iter().map(|p| cell(id, p)).collect();
        s.push_str(&format!("| {id} | {} |\n", cells.join(" | ")));
    }
    s.push_str("| embedded spec | the RayCluster rules above on `spec.rayClusterSpec` | on `spec.rayClusterConfig` | on `spec.jobTemplate.rayClusterSpec` |\n");
    s
}

fn resource_rules(kind: Kind) -> Value {
    json!({
        "matchPolicy": "Equivalent",
        "resourceRules": [{
            "apiGroups": ["ray.io"],
            "apiVersions": ["v1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": [kind.plural()],
            "scope": "Namespaced"
        }]
    })
}

fn labels() -> Value {
    json!({"app.kubernetes.io/part-of": "raygate", "app.kubernetes.io/component": "admission-policy"})
}

/// Names of the exported objects.
pub fn validating_name(opts: &ExportOptions) -> String {
    validating_name_for(opts, Kind::RayCluster)
}
pub fn validating_name_for(opts: &ExportOptions, kind: Kind) -> String {
    format!("{}{}", opts.name_prefix, kind.name().to_ascii_lowercase())
}
pub fn mutating_name(opts: &ExportOptions) -> String {
    format!("{}raycluster-defaults", opts.name_prefix)
}

fn match_resources(opts: &ExportOptions) -> Value {
    let mut m = Map::new();
    if let Some(sel) = &opts.namespace_selector {
        m.insert("namespaceSelector".into(), sel.clone());
    }
    Value::Object(m)
}

/// The RayCluster ValidatingAdmissionPolicy with every exported rule.
pub fn validating_policy(opts: &ExportOptions) -> Value {
    validating_policy_for(opts, Kind::RayCluster)
}

/// The ValidatingAdmissionPolicy of `kind` with every exported rule.
pub fn validating_policy_for(opts: &ExportOptions, kind: Kind) -> Value {
    let KindPolicy {
        variables: vars,
        checks: cs,
    } = policy_for(kind, &opts.gates);
    let mut variables: Vec<Value> = vars
        .into_iter()
        .map(|(n, e)| json!({"name": n, "expression": e}))
        .collect();
    let mut validations = Vec::new();
    for c in &cs {
        for (name, expr) in &c.variables {
            variables.push(json!({"name": name, "expression": expr}));
        }
        let mut v = Map::new();
        v.insert("expression".into(), json!(c.expression));
        match &c.message_expression {
            Some(me) => {
                // `message` is the fallback when the message expression fails to evaluate.
                v.insert(
                    "message".into(),
                    json!(format!("{} (raygate {})", c.message, c.id)),
                );
                v.insert("messageExpression".into(), json!(me));
            }
            None => {
                v.insert("message".into(), json!(c.message));
            }
        }
        v.insert("reason".into(), json!("Invalid"));
        validations.push(Value::Object(v));
    }
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {
            "name": validating_name_for(opts, kind),
            "labels": labels(),
            "annotations": {
                "raygate.io/rules": cs.iter().map(|c| format!("{}={}", c.id, c.field_path)).collect::<Vec<_>>().join(","),
                "raygate.io/feature-gates": gates_string(&opts.gates),
            }
        },
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": resource_rules(kind),
            "variables": variables,
            "validations": validations
        }
    })
}

fn gates_string(g: &FeatureGates) -> String {
    crate::violation::KUBERAY_GATES
        .iter()
        .map(|(n, _)| format!("{n}={}", g.enabled(n)))
        .collect::<Vec<_>>()
        .join(",")
}

pub fn validating_binding(opts: &ExportOptions) -> Value {
    validating_binding_for(opts, Kind::RayCluster)
}

pub fn validating_binding_for(opts: &ExportOptions, kind: Kind) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": validating_name_for(opts, kind), "labels": labels()},
        "spec": {
            "policyName": validating_name_for(opts, kind),
            "validationActions": opts.actions,
            "matchResources": match_resources(opts)
        }
    })
}

/// The autoscaler defaults of the mutating webhook ([`crate::defaulting`]) as a JSON Patch
/// mutation: with `enableInTreeAutoscaling: true`, `autoscalerOptions.{imagePullPolicy:
/// IfNotPresent, resources: 500m/512Mi requests and limits (only when absent entirely),
/// upscalingMode: Default, idleTimeoutSeconds: 60}`. Only absent fields are added, so a second
/// pass adds nothing (idempotent). The CRD defaults are the API server's own.
pub fn mutating_policy(opts: &ExportOptions) -> Value {
    let ao = "object.spec.?autoscalerOptions";
    let mut parts = vec![format!(
        "(!{ao}.hasValue() ? [JSONPatch{{op: \"add\", path: \"/spec/autoscalerOptions\", value: {{}}}}] : [])"
    )];
    // The values come from the webhook's own defaulting of an empty autoscalerOptions.
    let d = crate::defaulting::defaulted(&json!({
        "apiVersion": crate::model::API_VERSION_V1,
        "kind": "RayCluster",
        "spec": {"enableInTreeAutoscaling": true, "autoscalerOptions": {}}
    }));
    if let Some(Value::Object(fields)) = d.pointer("/spec/autoscalerOptions") {
        for (field, value) in fields {
            // JSON scalars, arrays and objects are CEL literals as written by serde_json.
            parts.push(format!(
                "(!{ao}.?{field}.hasValue() ? [JSONPatch{{op: \"add\", path: \"/spec/autoscalerOptions/{field}\", value: {}}}] : [])",
                serde_json::to_string(value).unwrap_or_default()
            ));
        }
    }
    let expr = parts.join(" +\n");
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1beta1",
        "kind": "MutatingAdmissionPolicy",
        "metadata": {"name": mutating_name(opts), "labels": labels()},
        "spec": {
            "failurePolicy": "Fail",
            "reinvocationPolicy": "IfNeeded",
            "matchConstraints": resource_rules(Kind::RayCluster),
            "matchConditions": [{
                "name": "in-tree-autoscaling",
                "expression": "has(object.spec) && object.spec.?enableInTreeAutoscaling.orValue(false) == true"
            }],
            "mutations": [{"patchType": "JSONPatch", "jsonPatch": {"expression": expr}}]
        }
    })
}

pub fn mutating_binding(opts: &ExportOptions) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1beta1",
        "kind": "MutatingAdmissionPolicyBinding",
        "metadata": {"name": mutating_name(opts), "labels": labels()},
        "spec": {
            "policyName": mutating_name(opts),
            "matchResources": match_resources(opts)
        }
    })
}

/// Every exported object, in a fixed order (policy before its binding; RayCluster, RayJob,
/// RayService, RayCronJob; validating, then mutating).
pub fn export(opts: &ExportOptions) -> Vec<Value> {
    let mut out = Vec::new();
    for k in KINDS {
        out.push(validating_policy_for(opts, k));
        out.push(validating_binding_for(opts, k));
    }
    if opts.mutating {
        out.push(mutating_policy(opts));
        out.push(mutating_binding(opts));
    }
    out
}

/// The objects as one multi-document YAML stream (deterministic: same options, same bytes).
pub fn to_yaml(objects: &[Value]) -> String {
    let mut s =
        String::from("# Generated by `raygate policy export`; do not edit (regenerate instead).\n");
    for (i, o) in objects.iter().enumerate() {
        if i > 0 || !s.is_empty() {
            s.push_str("---\n");
        }
        s.push_str(&crate::yaml::to_yaml(o));
    }
    s
}

/// `kustomization.yaml` listing `file`.
pub fn kustomization(file: &str) -> String {
    format!(
        "# Generated by `raygate policy export --output-dir`; do not edit (regenerate instead).\n\
         # Webhook-free admission: apply instead of deploy/base (no webhook Deployment, no certificates).\n\
         apiVersion: kustomize.config.k8s.io/v1beta1\n\
         kind: Kustomization\n\
         resources:\n  - {file}\n"
    )
}

#[cfg(test)]
mod tests;
