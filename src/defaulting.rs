//! Defaulting: the CRD's structural defaults and the autoscaler defaults, as an RFC 6902
//! JSON Patch against the original object. Pure and idempotent.
//!
//! Only absent (or `null`) fields are filled; nothing a user wrote is changed or merged into,
//! and unknown fields survive because the raw JSON is edited, not a typed view.
//!
//! The mutating webhook adds the autoscaler opt-in ([`mutation`]): a RayCluster annotated
//! [`AUTOSCALER_ANNOTATION`] `sidecar` or `central` gets what that mode needs, under the same
//! rule (only absent fields are filled), with admission warnings for what cannot be filled.

use crate::model::{self, Kind};
use serde_json::{Map, Value, json};

/// CRD default of `workerGroupSpecs[].maxReplicas` (MaxInt32).
pub const MAX_REPLICAS_DEFAULT: i64 = 2_147_483_647;

fn is_absent(m: &Map<String, Value>, k: &str) -> bool {
    m.get(k).is_none_or(Value::is_null)
}

fn set_default(m: &mut Map<String, Value>, k: &str, v: Value) {
    if is_absent(m, k) {
        m.insert(k.to_string(), v);
    }
}

fn is_v1alpha1(obj: &Value) -> bool {
    obj.get("apiVersion").and_then(Value::as_str) == Some(model::API_VERSION_V1ALPHA1)
}

/// The CRD-schema defaults of KubeRay's RayCluster (what the API server stores):
/// `workerGroupSpecs[].{replicas: 0, minReplicas: 0, maxReplicas: 2147483647}` and, for `v1`,
/// `workerGroupSpecs[].{numOfHosts: 1, priority: 0}` and `networkPolicy.mode: DenyAll` when
/// `networkPolicy` is present.
pub fn apply_crd_defaults(obj: &mut Value) {
    let alpha = is_v1alpha1(obj);
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(Value::Array(groups)) = spec.get_mut("workerGroupSpecs") {
        for g in groups.iter_mut().filter_map(Value::as_object_mut) {
            set_default(g, "replicas", json!(0));
            set_default(g, "minReplicas", json!(0));
            set_default(g, "maxReplicas", json!(MAX_REPLICAS_DEFAULT));
            if !alpha {
                set_default(g, "numOfHosts", json!(1));
                set_default(g, "priority", json!(0));
            }
        }
    }
    if !alpha && let Some(np) = spec.get_mut("networkPolicy").and_then(Value::as_object_mut) {
        set_default(np, "mode", json!("DenyAll"));
    }
}

/// Autoscaler defaults the operator applies anyway, written into the object when
/// `enableInTreeAutoscaling: true`: `imagePullPolicy: IfNotPresent`, `resources` (only when
/// absent entirely) requests and limits `cpu: 500m`, `memory: 512Mi`, `upscalingMode: Default`,
/// `idleTimeoutSeconds: 60`. `image` (follows the head image) and `version` are never set.
fn apply_autoscaler_defaults(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if spec.get("enableInTreeAutoscaling") != Some(&Value::Bool(true)) {
        return;
    }
    set_default(spec, "autoscalerOptions", json!({}));
    let Some(ao) = spec
        .get_mut("autoscalerOptions")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    set_default(ao, "imagePullPolicy", json!("IfNotPresent"));
    set_default(
        ao,
        "resources",
        json!({
            "limits": {"cpu": "500m", "memory": "512Mi"},
            "requests": {"cpu": "500m", "memory": "512Mi"}
        }),
    );
    set_default(ao, "upscalingMode", json!("Default"));
    set_default(ao, "idleTimeoutSeconds", json!(60));
}

/// Annotation through which a RayCluster chooses raygate's autoscaler (issue #12).
pub const AUTOSCALER_ANNOTATION: &str = "raygate.io/autoscaler";
/// `autoscalerOptions.command` the webhook gives the sidecar (KubeRay >= 1.7; the Dockerfile's
/// binary).
pub const SIDECAR_COMMAND: &[&str] = &["/usr/local/bin/raygate"];
/// `autoscalerOptions.args` the webhook gives the sidecar (KubeRay >= 1.7).
pub const SIDECAR_ARGS: &[&str] = &["autoscale", "sidecar"];

/// How a RayCluster is autoscaled by raygate, from [`AUTOSCALER_ANNOTATION`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoscalerMode {
    /// `sidecar`: `raygate autoscale sidecar` is the `autoscaler` container KubeRay injects into
    /// the head Pod (`enableInTreeAutoscaling: true`, `autoscalerOptions.image` = raygate's).
    Sidecar,
    /// `central`: `raygate autoscale run` scales it from outside; KubeRay injects no autoscaler
    /// (`enableInTreeAutoscaling` not true) and the head runs no Ray monitor (`no-monitor`).
    Central,
}

/// The mode a RayCluster asks for: `Ok(None)` without the annotation, `Err(value)` for a value
/// that is neither `sidecar` nor `central` (surrounding blanks ignored).
pub fn autoscaler_mode(obj: &Value) -> Result<Option<AutoscalerMode>, String> {
    let Some(v) = obj
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .and_then(|a| a.get(AUTOSCALER_ANNOTATION))
    else {
        return Ok(None);
    };
    match v.as_str().map(str::trim) {
        Some("sidecar") => Ok(Some(AutoscalerMode::Sidecar)),
        Some("central") => Ok(Some(AutoscalerMode::Central)),
        _ => Err(match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
    }
}

/// What the mutating webhook fills for the opt-in annotation (`raygate serve` flags).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptIn {
    /// `--sidecar-image`: `autoscalerOptions.image` of a `sidecar` cluster. `None`: the
    /// annotation only gets a warning (the cluster is left as written).
    pub sidecar_image: Option<String>,
    /// Also fill `autoscalerOptions.command`/`args` ([`SIDECAR_COMMAND`], [`SIDECAR_ARGS`]):
    /// KubeRay >= 1.7 runs them; older versions ignore them and run
    /// `ray kuberay-autoscaler ...` through the image's `ray` entry point.
    pub sidecar_command: bool,
}

const ANNOTATION_PATH: &str = "metadata.annotations[raygate.io/autoscaler]";

/// Fills what `mode` needs into `obj` (a RayCluster, or the part [`skeleton`] keeps of it), only
/// where absent; what cannot be done becomes a warning.
fn apply_opt_in(obj: &mut Value, mode: AutoscalerMode, opts: &OptIn, warnings: &mut Vec<String>) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    match mode {
        AutoscalerMode::Sidecar => {
            let Some(image) = opts.sidecar_image.as_deref() else {
                warnings.push(format!(
                    "{ANNOTATION_PATH}: sidecar is ignored: this webhook has no sidecar image \
                     (raygate serve --sidecar-image); the cluster is left as written, so with \
                     enableInTreeAutoscaling KubeRay injects Ray's own autoscaler"
                ));
                return;
            };
            set_default(spec, "enableInTreeAutoscaling", json!(true));
            if spec.get("enableInTreeAutoscaling") != Some(&Value::Bool(true)) {
                warnings.push(format!(
                    "{ANNOTATION_PATH}: sidecar has no effect: spec.enableInTreeAutoscaling is \
                     not true, so KubeRay injects no autoscaler container; set it to true"
                ));
                return;
            }
            set_default(spec, "autoscalerOptions", json!({}));
            let Some(ao) = spec
                .get_mut("autoscalerOptions")
                .and_then(Value::as_object_mut)
            else {
                return;
            };
            set_default(ao, "image", json!(image));
            if let Some(other) = ao.get("image").and_then(Value::as_str)
                && other != image
            {
                warnings.push(format!(
                    "{ANNOTATION_PATH}: sidecar: spec.autoscalerOptions.image {other:?} is kept \
                     (not {image:?}); the head runs raygate's autoscaler only if that image is \
                     raygate's"
                ));
            }
            // command and args go together: a user's command with raygate's args (or the
            // reverse) would be neither's intent.
            if opts.sidecar_command && is_absent(ao, "command") && is_absent(ao, "args") {
                ao.insert("command".into(), json!(SIDECAR_COMMAND));
                ao.insert("args".into(), json!(SIDECAR_ARGS));
            }
        }
        AutoscalerMode::Central => {
            set_default(spec, "enableInTreeAutoscaling", json!(false));
            if spec.get("enableInTreeAutoscaling") == Some(&Value::Bool(true)) {
                warnings.push(format!(
                    "{ANNOTATION_PATH}: central: spec.enableInTreeAutoscaling is true, so KubeRay \
                     runs Ray's autoscaler in the head Pod and raygate autoscale run leaves this \
                     cluster alone; set it to false"
                ));
                return;
            }
            // Without `no-monitor`, `ray start --head` also starts Ray's (read-only) monitor.
            if let Some(head) = spec.get_mut("headGroupSpec").and_then(Value::as_object_mut) {
                set_default(head, "rayStartParams", json!({}));
                if let Some(p) = head
                    .get_mut("rayStartParams")
                    .and_then(Value::as_object_mut)
                {
                    set_default(p, "no-monitor", json!("true"));
                }
            }
        }
    }
}

/// The mutating webhook's answer for a RayCluster: [`default_patch`]'s defaults plus the
/// autoscaler opt-in of [`AUTOSCALER_ANNOTATION`], as one patch, and the admission warnings.
/// Idempotent: applying `patch` and mutating again gives an empty patch (only absent fields are
/// filled), as `reinvocationPolicy: IfNeeded` needs.
#[derive(Debug, Clone, Default)]
pub struct Mutation {
    pub patch: json_patch::Patch,
    pub warnings: Vec<String>,
}

/// [`Mutation`] of `obj` with the webhook's `opts`.
pub fn mutation(obj: &Value, opts: &OptIn) -> Mutation {
    let mut warnings = Vec::new();
    let mode = match autoscaler_mode(obj) {
        Ok(m) => m,
        Err(v) => {
            warnings.push(format!(
                "{ANNOTATION_PATH}: unknown value {v:?} is ignored (expected sidecar or central)"
            ));
            None
        }
    };
    let patch = patch_with(obj, |new| {
        if let Some(m) = mode {
            apply_opt_in(new, m, opts, &mut warnings);
        }
    });
    Mutation { patch, warnings }
}

/// [`defaulted`] with the opt-in: the object [`mutation`]'s patch produces, and its warnings.
pub fn defaulted_with(obj: &Value, opts: &OptIn) -> (Value, Vec<String>) {
    let mut out = obj.clone();
    let mut warnings = Vec::new();
    match autoscaler_mode(obj) {
        Ok(Some(m)) => apply_opt_in(&mut out, m, opts, &mut warnings),
        Ok(None) => {}
        Err(v) => warnings.push(format!(
            "{ANNOTATION_PATH}: unknown value {v:?} is ignored (expected sidecar or central)"
        )),
    }
    apply_crd_defaults(&mut out);
    apply_autoscaler_defaults(&mut out);
    (out, warnings)
}

/// CRD defaults + autoscaler defaults. Idempotent: `defaulted(&defaulted(x)) == defaulted(x)`.
pub fn defaulted(obj: &Value) -> Value {
    let mut out = obj.clone();
    apply_crd_defaults(&mut out);
    apply_autoscaler_defaults(&mut out);
    out
}

/// RFC 6902 `add` operations turning `obj` into [`defaulted`]`(obj)`; empty if nothing to do.
/// Parents that do not exist are added whole (one op), so the patch is minimal.
pub fn default_patch(obj: &Value) -> json_patch::Patch {
    patch_with(obj, |_| {})
}

/// The `add`s of `first` (run on the slim copy) followed by the CRD and autoscaler defaults.
fn patch_with(obj: &Value, first: impl FnOnce(&mut Value)) -> json_patch::Patch {
    let mut ops = Vec::new();
    // Defaulting reads `apiVersion` and changes nothing outside `spec`; within `spec` it reads
    // and fills only the members kept by `skeleton`. So the diff runs on a copy of just those
    // (in their original order, so the ops come out in the same order): a large spec is
    // neither cloned nor compared.
    let (Some(top), Some(Value::Object(spec))) = (obj.as_object(), obj.get("spec")) else {
        return json_patch::Patch(ops);
    };
    let old = Value::Object(skeleton(spec));
    let mut slim = Map::new();
    if let Some(av) = top.get("apiVersion") {
        slim.insert("apiVersion".into(), av.clone());
    }
    slim.insert("spec".into(), old.clone());
    let mut new = Value::Object(slim);
    first(&mut new);
    apply_crd_defaults(&mut new);
    apply_autoscaler_defaults(&mut new);
    if let Some(new_spec) = new.get("spec") {
        let mut tokens: Vec<String> = vec!["spec".into()];
        diff_adds(&old, new_spec, &mut tokens, &mut ops);
    }
    json_patch::Patch(ops)
}

/// Members of a worker group that [`apply_crd_defaults`] fills.
const GROUP_DEFAULTED: &[&str] = &[
    "replicas",
    "minReplicas",
    "maxReplicas",
    "numOfHosts",
    "priority",
];
/// Members of `autoscalerOptions` that [`apply_autoscaler_defaults`] and [`apply_opt_in`] fill.
const AUTOSCALER_DEFAULTED: &[&str] = &[
    "imagePullPolicy",
    "resources",
    "upscalingMode",
    "idleTimeoutSeconds",
    "image",
    "command",
    "args",
];

/// `m` with only the members in `keep`, in their order.
fn only(m: &Map<String, Value>, keep: &[&str]) -> Map<String, Value> {
    m.iter()
        .filter(|(k, _)| keep.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The part of `spec` defaulting reads or fills, with members in their original order. Values
/// of an unexpected type are kept whole: defaulting leaves them as they are.
fn skeleton(spec: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in spec {
        let kept = match (k.as_str(), v) {
            ("workerGroupSpecs", Value::Array(groups)) => Value::Array(
                groups
                    .iter()
                    .map(|g| match g {
                        Value::Object(g) => Value::Object(only(g, GROUP_DEFAULTED)),
                        other => other.clone(),
                    })
                    .collect(),
            ),
            ("networkPolicy", Value::Object(np)) => Value::Object(only(np, &["mode"])),
            ("autoscalerOptions", Value::Object(ao)) => {
                Value::Object(only(ao, AUTOSCALER_DEFAULTED))
            }
            ("headGroupSpec", Value::Object(h)) => {
                let mut kept = Map::new();
                match h.get("rayStartParams") {
                    Some(Value::Object(p)) => {
                        kept.insert(
                            "rayStartParams".into(),
                            Value::Object(only(p, &["no-monitor"])),
                        );
                    }
                    Some(other) => {
                        kept.insert("rayStartParams".into(), other.clone());
                    }
                    None => {}
                }
                Value::Object(kept)
            }
            (
                "workerGroupSpecs" | "networkPolicy" | "autoscalerOptions" | "headGroupSpec",
                other,
            ) => other.clone(),
            ("enableInTreeAutoscaling", other) => other.clone(),
            _ => continue,
        };
        out.insert(k.clone(), kept);
    }
    out
}

/// Defaulting only adds members (or replaces `null`s), so the difference is a set of `add`s.
fn diff_adds(
    old: &Value,
    new: &Value,
    tokens: &mut Vec<String>,
    ops: &mut Vec<json_patch::PatchOperation>,
) {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            for (k, nv) in n {
                tokens.push(k.clone());
                match o.get(k) {
                    Some(ov) if ov == nv => {}
                    Some(ov) if !ov.is_null() => diff_adds(ov, nv, tokens, ops),
                    _ => ops.push(add_op(tokens, nv.clone())),
                }
                tokens.pop();
            }
        }
        (Value::Array(o), Value::Array(n)) if o.len() == n.len() => {
            for (i, (ov, nv)) in o.iter().zip(n).enumerate() {
                if ov != nv {
                    tokens.push(i.to_string());
                    diff_adds(ov, nv, tokens, ops);
                    tokens.pop();
                }
            }
        }
        _ => {
            if old != new {
                ops.push(add_op(tokens, new.clone()));
            }
        }
    }
}

fn add_op(tokens: &[String], value: Value) -> json_patch::PatchOperation {
    let path = json_patch::jsonptr::PointerBuf::from_tokens(tokens.iter().map(String::as_str));
    json_patch::PatchOperation::Add(json_patch::AddOperation { path, value })
}

// ---------------------------------------------------------------------------------------------
// RayJob, RayService, RayCronJob

/// Applies RayCluster defaulting (`crd_only`: CRD defaults; else also the autoscaler defaults)
/// to an embedded cluster spec in place, as if it were a RayCluster of `api`.
fn default_embedded(m: &mut Map<String, Value>, field: &str, api: Option<&Value>, crd_only: bool) {
    let Some(slot) = m.get_mut(field) else { return };
    if !slot.is_object() {
        return;
    }
    let mut wrapper = Map::new();
    if let Some(a) = api {
        wrapper.insert("apiVersion".into(), a.clone());
    }
    wrapper.insert("spec".into(), std::mem::take(slot));
    let mut w = Value::Object(wrapper);
    apply_crd_defaults(&mut w);
    if !crd_only {
        apply_autoscaler_defaults(&mut w);
    }
    if let Value::Object(mut wm) = w
        && let Some(spec) = wm.remove("spec")
    {
        *slot = spec;
    }
}

/// CRD defaults of a RayJob spec (`v1`: `backoffLimit: 0`, `submissionMode: K8sJobMode`,
/// `ttlSecondsAfterFinished: 0`, `deletionStrategy.deletionRules[].condition.ttlSeconds: 0`;
/// `v1alpha1`: `ttlSecondsAfterFinished: 0`), plus the embedded `rayClusterSpec`'s.
fn default_rayjob_spec(
    spec: &mut Map<String, Value>,
    api: Option<&Value>,
    alpha: bool,
    crd_only: bool,
) {
    set_default(spec, "ttlSecondsAfterFinished", json!(0));
    if !alpha {
        set_default(spec, "backoffLimit", json!(0));
        set_default(spec, "submissionMode", json!("K8sJobMode"));
        if let Some(Value::Array(rules)) = spec
            .get_mut("deletionStrategy")
            .and_then(Value::as_object_mut)
            .and_then(|d| d.get_mut("deletionRules"))
        {
            for r in rules.iter_mut().filter_map(Value::as_object_mut) {
                if let Some(c) = r.get_mut("condition").and_then(Value::as_object_mut) {
                    set_default(c, "ttlSeconds", json!(0));
                }
            }
        }
    }
    default_embedded(spec, "rayClusterSpec", api, crd_only);
}

fn apply_kind_defaults(kind: Kind, obj: &mut Value, crd_only: bool) {
    if kind == Kind::RayCluster {
        apply_crd_defaults(obj);
        if !crd_only {
            apply_autoscaler_defaults(obj);
        }
        return;
    }
    let alpha = is_v1alpha1(obj);
    let api = obj.get("apiVersion").cloned();
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    match kind {
        Kind::RayJob => default_rayjob_spec(spec, api.as_ref(), alpha, crd_only),
        Kind::RayService => {
            if !alpha
                && let Some(o) = spec
                    .get_mut("upgradeStrategy")
                    .and_then(Value::as_object_mut)
                    .and_then(|u| u.get_mut("clusterUpgradeOptions"))
                    .and_then(Value::as_object_mut)
            {
                set_default(o, "maxSurgePercent", json!(100));
            }
            default_embedded(spec, "rayClusterConfig", api.as_ref(), crd_only);
        }
        Kind::RayCronJob => {
            if let Some(t) = spec.get_mut("jobTemplate").and_then(Value::as_object_mut) {
                default_rayjob_spec(t, api.as_ref(), false, crd_only);
            }
        }
        Kind::RayCluster => {}
    }
}

/// The CRD-schema defaults of `kind` (what the API server stores), in place; for RayJob,
/// RayService and RayCronJob also those of the embedded RayCluster spec.
pub fn apply_crd_defaults_kind(kind: Kind, obj: &mut Value) {
    apply_kind_defaults(kind, obj, true);
}

/// CRD defaults plus, for every embedded cluster spec with `enableInTreeAutoscaling: true`, the
/// autoscaler defaults (`IfNotPresent`, 500m/512Mi, …), as for a RayCluster. Idempotent.
pub fn defaulted_kind(kind: Kind, obj: &Value) -> Value {
    let mut out = obj.clone();
    apply_kind_defaults(kind, &mut out, false);
    out
}

/// RFC 6902 `add` operations turning `obj` into [`defaulted_kind`]`(kind, obj)`; empty if
/// nothing to do. Pure: this is what a mutating webhook returns.
pub fn default_patch_kind(kind: Kind, obj: &Value) -> json_patch::Patch {
    if kind == Kind::RayCluster {
        return default_patch(obj);
    }
    let new = defaulted_kind(kind, obj);
    let mut ops = Vec::new();
    diff_adds(obj, &new, &mut Vec::new(), &mut ops);
    json_patch::Patch(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_defaults_fill_only_absent_fields() {
        let mut v = json!({"apiVersion": "ray.io/v1", "spec": {
            "workerGroupSpecs": [{"groupName": "a", "minReplicas": 2}, {"groupName": "b", "maxReplicas": null}],
            "networkPolicy": {}
        }});
        apply_crd_defaults(&mut v);
        let g = &v["spec"]["workerGroupSpecs"];
        assert_eq!(g[0]["minReplicas"], 2);
        assert_eq!(g[0]["maxReplicas"], 2147483647);
        assert_eq!(g[0]["replicas"], 0);
        assert_eq!(g[0]["numOfHosts"], 1);
        assert_eq!(g[0]["priority"], 0);
        assert_eq!(g[1]["maxReplicas"], 2147483647);
        assert_eq!(v["spec"]["networkPolicy"]["mode"], "DenyAll");
    }

    #[test]
    fn v1alpha1_gets_only_its_own_defaults() {
        let mut v = json!({"apiVersion": "ray.io/v1alpha1", "spec": {"workerGroupSpecs": [{}], "networkPolicy": {}}});
        apply_crd_defaults(&mut v);
        assert_eq!(
            v["spec"]["workerGroupSpecs"][0],
            json!({"replicas": 0, "minReplicas": 0, "maxReplicas": 2147483647})
        );
        assert_eq!(v["spec"]["networkPolicy"], json!({}));
    }

    #[test]
    fn autoscaler_defaults_and_patch() {
        let v = json!({"apiVersion": "ray.io/v1", "spec": {"enableInTreeAutoscaling": true, "headGroupSpec": {}}});
        let d = defaulted(&v);
        assert_eq!(
            d["spec"]["autoscalerOptions"],
            json!({"imagePullPolicy": "IfNotPresent",
                   "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}, "requests": {"cpu": "500m", "memory": "512Mi"}},
                   "upscalingMode": "Default", "idleTimeoutSeconds": 60})
        );
        let p = default_patch(&v);
        assert_eq!(p.0.len(), 1, "one add for the missing parent: {p:?}");
        let mut patched = v.clone();
        json_patch::patch(&mut patched, &p).unwrap();
        assert_eq!(patched, d);
        assert!(default_patch(&d).0.is_empty());
        assert_eq!(defaulted(&d), d);
    }

    #[test]
    fn user_resources_block_is_never_merged() {
        let v = json!({"spec": {"enableInTreeAutoscaling": true, "autoscalerOptions": {"resources": {"limits": {"cpu": "1"}}, "image": "x"}}});
        let d = defaulted(&v);
        assert_eq!(
            d["spec"]["autoscalerOptions"]["resources"],
            json!({"limits": {"cpu": "1"}})
        );
        assert_eq!(d["spec"]["autoscalerOptions"]["image"], "x");
        assert!(d["spec"]["autoscalerOptions"].get("version").is_none());
    }

    #[test]
    fn patch_escapes_pointer_tokens_and_handles_nulls() {
        let v = json!({"spec": {"workerGroupSpecs": [{"replicas": null, "minReplicas": 0, "maxReplicas": 1, "numOfHosts": 1, "priority": 0, "a/b~c": 1}]}});
        let p = default_patch(&v);
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!([{"op": "add", "path": "/spec/workerGroupSpecs/0/replicas", "value": 0}])
        );
        assert!(default_patch(&json!("x")).0.is_empty());
        assert!(default_patch(&json!({"spec": 3})).0.is_empty());
    }

    fn annotated(mode: &str, spec: Value) -> Value {
        json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
               "metadata": {"name": "c", "annotations": {"raygate.io/autoscaler": mode}},
               "spec": spec})
    }

    fn sidecar_opts() -> OptIn {
        OptIn {
            sidecar_image: Some("ghcr.io/raygate/raygate:1".into()),
            sidecar_command: true,
        }
    }

    /// The patch applied, and that mutating the result again gives no patch.
    fn applied_once(v: &Value, opts: &OptIn) -> (Value, Vec<String>) {
        let m = mutation(v, opts);
        let mut out = v.clone();
        json_patch::patch(&mut out, &m.patch).unwrap();
        assert!(
            mutation(&out, opts).patch.0.is_empty(),
            "idempotent (reinvocationPolicy: IfNeeded): {out}"
        );
        let (expected, warnings) = defaulted_with(v, opts);
        assert_eq!(out, expected, "the patch makes defaulted_with");
        assert_eq!(warnings, m.warnings);
        (out, m.warnings)
    }

    #[test]
    fn sidecar_annotation_fills_image_command_args_and_turns_autoscaling_on() {
        let v = annotated(
            "sidecar",
            json!({"headGroupSpec": {}, "workerGroupSpecs": [{"groupName": "g"}]}),
        );
        let (out, warnings) = applied_once(&v, &sidecar_opts());
        assert!(warnings.is_empty(), "{warnings:?}");
        let spec = &out["spec"];
        assert_eq!(spec["enableInTreeAutoscaling"], true);
        let ao = &spec["autoscalerOptions"];
        assert_eq!(ao["image"], "ghcr.io/raygate/raygate:1");
        assert_eq!(ao["command"], json!(["/usr/local/bin/raygate"]));
        assert_eq!(ao["args"], json!(["autoscale", "sidecar"]));
        // the autoscaler defaults follow, as for any autoscaled cluster
        assert_eq!(ao["imagePullPolicy"], "IfNotPresent");
        assert_eq!(ao["idleTimeoutSeconds"], 60);
        assert_eq!(
            spec["workerGroupSpecs"][0]["maxReplicas"],
            MAX_REPLICAS_DEFAULT
        );
        // KubeRay < 1.7: image only
        let old = OptIn {
            sidecar_command: false,
            ..sidecar_opts()
        };
        let (out, _) = applied_once(&v, &old);
        assert_eq!(
            out["spec"]["autoscalerOptions"]["image"],
            "ghcr.io/raygate/raygate:1"
        );
        assert!(out["spec"]["autoscalerOptions"].get("command").is_none());
        assert!(out["spec"]["autoscalerOptions"].get("args").is_none());
    }

    #[test]
    fn sidecar_never_overwrites_what_the_user_wrote() {
        let opts = sidecar_opts();
        // their image: kept, with a warning naming both
        let v = annotated(
            "sidecar",
            json!({"enableInTreeAutoscaling": true,
            "autoscalerOptions": {"image": "mine:2", "command": null}}),
        );
        let (out, warnings) = applied_once(&v, &opts);
        assert_eq!(out["spec"]["autoscalerOptions"]["image"], "mine:2");
        assert_eq!(
            out["spec"]["autoscalerOptions"]["command"],
            json!(["/usr/local/bin/raygate"])
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("\"mine:2\" is kept"), "{warnings:?}");
        // their command (or args) alone: neither is filled
        for (k, val) in [
            ("command", json!(["/bin/sh"])),
            ("args", json!(["-c", "x"])),
            ("args", json!([])),
        ] {
            let v = annotated("sidecar", json!({"autoscalerOptions": {k: val.clone()}}));
            let (out, _) = applied_once(&v, &opts);
            let ao = out["spec"]["autoscalerOptions"].as_object().unwrap();
            assert_eq!(ao[k], val);
            assert_eq!(ao.contains_key("command"), k == "command", "{ao:?}");
            assert_eq!(ao.contains_key("args"), k == "args", "{ao:?}");
            assert_eq!(ao["image"], "ghcr.io/raygate/raygate:1");
        }
        // enableInTreeAutoscaling: false is theirs: nothing is filled, a warning says why
        let v = annotated("sidecar", json!({"enableInTreeAutoscaling": false}));
        let (out, warnings) = applied_once(&v, &opts);
        assert_eq!(out, v);
        assert!(
            warnings[0].contains("enableInTreeAutoscaling is not true"),
            "{warnings:?}"
        );
    }

    #[test]
    fn sidecar_without_an_image_is_a_warning_and_no_change() {
        let v = annotated("sidecar", json!({"headGroupSpec": {}}));
        let (out, warnings) = applied_once(&v, &OptIn::default());
        assert_eq!(out, v, "left as written");
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0]
                .starts_with("metadata.annotations[raygate.io/autoscaler]: sidecar is ignored")
        );
        assert!(warnings[0].contains("--sidecar-image"), "{warnings:?}");
    }

    #[test]
    fn central_annotation_turns_kuberay_autoscaling_and_the_monitor_off() {
        let opts = sidecar_opts();
        let v = annotated(
            "central",
            json!({"headGroupSpec": {"rayStartParams": {"num-cpus": "0"}}}),
        );
        let (out, warnings) = applied_once(&v, &opts);
        assert!(warnings.is_empty());
        assert_eq!(out["spec"]["enableInTreeAutoscaling"], false);
        assert_eq!(
            out["spec"]["headGroupSpec"]["rayStartParams"],
            json!({"num-cpus": "0", "no-monitor": "true"})
        );
        assert!(
            out["spec"].get("autoscalerOptions").is_none(),
            "not an in-tree cluster"
        );
        let p = mutation(&v, &opts).patch;
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!([{"op": "add", "path": "/spec/headGroupSpec/rayStartParams/no-monitor", "value": "true"},
                   {"op": "add", "path": "/spec/enableInTreeAutoscaling", "value": false}])
        );
        // no rayStartParams, or a user's no-monitor
        let v = annotated("central", json!({"headGroupSpec": {}}));
        let (out, _) = applied_once(&v, &opts);
        assert_eq!(
            out["spec"]["headGroupSpec"]["rayStartParams"],
            json!({"no-monitor": "true"})
        );
        let v = annotated(
            "central",
            json!({"headGroupSpec": {"rayStartParams": {"no-monitor": "false"}}}),
        );
        let (out, _) = applied_once(&v, &opts);
        assert_eq!(
            out["spec"]["headGroupSpec"]["rayStartParams"]["no-monitor"],
            "false"
        );
        // enableInTreeAutoscaling: true is theirs: a warning, nothing changed but the defaults
        let v = annotated(
            "central",
            json!({"enableInTreeAutoscaling": true, "headGroupSpec": {}}),
        );
        let (out, warnings) = applied_once(&v, &opts);
        assert_eq!(out, defaulted(&v));
        assert!(
            warnings[0].contains("leaves this cluster alone"),
            "{warnings:?}"
        );
    }

    #[test]
    fn unknown_modes_warn_and_unannotated_clusters_are_as_before() {
        for bad in [json!("Sidecar"), json!(""), json!(1)] {
            let v = annotated("x", json!({"headGroupSpec": {}}));
            let mut v = v;
            v["metadata"]["annotations"]["raygate.io/autoscaler"] = bad.clone();
            let (out, warnings) = applied_once(&v, &sidecar_opts());
            assert_eq!(out, defaulted(&v));
            assert_eq!(warnings.len(), 1, "{bad}");
            assert!(warnings[0].contains("unknown value"), "{warnings:?}");
        }
        assert_eq!(
            autoscaler_mode(&annotated(" central ", json!({}))),
            Ok(Some(AutoscalerMode::Central))
        );
        let plain = json!({"apiVersion": "ray.io/v1", "spec": {"enableInTreeAutoscaling": true,
            "headGroupSpec": {"rayStartParams": {}}, "workerGroupSpecs": [{}]}});
        let m = mutation(&plain, &sidecar_opts());
        assert_eq!(m.patch, default_patch(&plain));
        assert!(m.warnings.is_empty());
    }
}
