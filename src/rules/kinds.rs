//! RayJob, RayService and RayCronJob: KubeRay v1.7.0's `ValidateRayJobMetadata`,
//! `ValidateRayJobSpec`, `ValidateRayJobStatus`, `ValidateRayServiceMetadata`,
//! `ValidateRayServiceSpec` (with `ValidateClusterUpgradeOptions`) and `ValidateRayCronJobSpec`,
//! with KubeRay's exact messages and feature gates; the API server's CRD checks for their own
//! fields; the embedded RayCluster spec checked by every RayCluster rule (paths prefixed as the
//! API server prints them, messages prefixed as KubeRay prints them); and raygate's own
//! `RG-*` checks for these kinds. Pure.
//!
//! Rule ids: `JM1`/`JM2` (RayJob metadata), `J1`–`J16` (RayJob spec), `JD1`–`JD16` (RayJob
//! deletion strategy), `JST1` (RayJob status), `SM1`–`SM3` (RayService metadata), `SV1`–`SV5`
//! (RayService spec), `SVU1`–`SVU7` (incremental upgrade options), `CJ1`–`CJ5` (RayCronJob),
//! `CRD-MINIMUM`/`CRD-CEL` (API server); embedded RayCluster findings keep their RayCluster ids
//! (`W5`, `S1`, …).

use super::crd::{self, unsupported_value};
use super::k8s::{go_string_slice, is_dns1035_label};
use super::path::{idx, key};
use super::{gotime, raygate};
use crate::model::{self, Kind, v1, v1alpha1};
use crate::violation::{Mode, ValidateOptions, Violation};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Map, Value};

pub const MAX_RAYJOB_NAME_LENGTH: usize = super::kuberay::MAX_RAYCLUSTER_NAME_LENGTH - 6;
pub const MAX_RAYSERVICE_NAME_LENGTH: usize = super::kuberay::MAX_RAYCLUSTER_NAME_LENGTH - 6;
pub const MAX_RAYCRONJOB_NAME_LENGTH: usize = MAX_RAYJOB_NAME_LENGTH - 11;
/// `validateTTLConsistency`: within one deletion condition, the TTLs must not decrease along
/// this order (JD15; also the order of its findings, and of the policy's CEL).
pub const DELETION_TTL_ORDER: [&str; 3] = ["DeleteWorkers", "DeleteCluster", "DeleteSelf"];

pub const INITIALIZING_TIMEOUT_ANNOTATION: &str = "ray.io/initializing-timeout";
pub const CLUSTER_SELECTOR_KEY: &str = "ray.io/cluster";
/// KubeRay's prefix of the `ValidateRayJobSpec` messages.
pub const RAYJOB_SPEC_INVALID: &str = "The RayJob spec is invalid: ";
/// KubeRay's prefix of the `ValidateRayServiceSpec` messages.
pub const RAYSERVICE_SPEC_INVALID: &str = "The RayService spec is invalid: ";

/// raygate's own rule ids for these kinds.
pub const RG_SELECTOR_IGNORES_SPEC: &str = "RG-JOB-SELECTOR-IGNORES-SPEC";
pub const RG_SELECTOR_SHUTDOWN: &str = "RG-JOB-SELECTOR-SHUTDOWN";
pub const RG_SUBMISSION_MODE: &str = "RG-JOB-SUBMISSION-MODE";
pub const RG_NO_ENTRYPOINT: &str = "RG-JOB-NO-ENTRYPOINT";
pub const RG_CRONJOB_GATE: &str = "RG-CRONJOB-GATE";
pub const RG_SERVICE_MINMAX: &str = "RG-SERVICE-MINMAX-NOT-PROPAGATED";
pub const RG_SERVICE_INCREMENTAL_GATE: &str = "RG-SERVICE-INCREMENTAL-GATE";
pub const RG_DEPRECATED_V1ALPHA1: &str = raygate::DEPRECATED_V1ALPHA1;

/// Every rule id this module can report (besides the embedded RayCluster ids).
pub const RULE_IDS: &[&str] = &[
    "JM1",
    "JM2",
    "J1",
    "J2",
    "JD1",
    "JD2",
    "JD3",
    "JD4",
    "JD5",
    "JD6",
    "JD7",
    "JD8",
    "JD9",
    "JD10",
    "JD11",
    "JD12",
    "JD13",
    "JD14",
    "JD15",
    "JD16",
    "J3",
    "J4",
    "J5",
    "J6",
    "J7",
    "J8",
    "J9",
    "J10",
    "J11",
    "J12",
    "J13",
    "J14",
    "J15",
    "J16",
    "JST1",
    "SM1",
    "SM2",
    "SM3",
    "SV1",
    "SV2",
    "SV3",
    "SV4",
    "SVU1",
    "SVU2",
    "SVU3",
    "SVU4",
    "SVU5",
    "SVU6",
    "SVU7",
    "CJ1",
    "CJ2",
    "CJ3",
    "CJ4",
    "CJ5",
    "CRD-MINIMUM",
    "CRD-CEL",
    RG_SELECTOR_IGNORES_SPEC,
    RG_SELECTOR_SHUTDOWN,
    RG_SUBMISSION_MODE,
    RG_NO_ENTRYPOINT,
    RG_CRONJOB_GATE,
    RG_SERVICE_MINMAX,
    RG_SERVICE_INCREMENTAL_GATE,
];

pub const SUBMISSION_MODES: &[&str] = &["K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode"];
pub const DELETION_POLICIES: &[&str] =
    &["DeleteCluster", "DeleteWorkers", "DeleteSelf", "DeleteNone"];
pub const RAYSERVICE_UPGRADE_TYPES: &[&str] =
    &["NewClusterWithIncrementalUpgrade", "NewCluster", "None"];

/// Validates one object of any of the four kinds, read from its `kind`; objects of another
/// kind get a single `RG-TYPE` error. See [`validate_kind`].
pub fn validate_object(obj: &Value, old: Option<&Value>, opts: &ValidateOptions) -> Vec<Violation> {
    match obj
        .get("kind")
        .and_then(Value::as_str)
        .and_then(Kind::from_name)
    {
        Some(k) => validate_kind(k, obj, old, opts),
        None => vec![Violation::error(
            raygate::TYPE,
            "kind",
            "kind must be one of RayCluster, RayJob, RayService, RayCronJob",
        )],
    }
}

/// Validates one `kind` object (`ray.io/v1`, or `ray.io/v1alpha1` for RayCluster, RayJob and
/// RayService), CRD defaults already applied as the API server does before admission. `old`
/// is the stored object on UPDATE. Returns every violation in KubeRay's evaluation order (API
/// server checks, metadata, spec — with the embedded cluster spec's findings where KubeRay
/// checks it — status), then raygate's own findings and warnings; with `Mode::FirstError`, only
/// the first error.
pub fn validate_kind(
    kind: Kind,
    obj: &Value,
    old: Option<&Value>,
    opts: &ValidateOptions,
) -> Vec<Violation> {
    if kind == Kind::RayCluster {
        return super::validate(obj, old, opts);
    }
    let mut c = Collect::default();
    if !obj.is_object() {
        c.ordered.push(Violation::error(
            raygate::TYPE,
            "",
            format!(
                "a {} must be a JSON object, got {}",
                kind.name(),
                super::json_type(obj)
            ),
        ));
        return c.finish(opts.mode);
    }
    let api = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or(model::API_VERSION_V1);
    let alpha = api == model::API_VERSION_V1ALPHA1;
    if let Some(w) = kind.deprecation_warning(api) {
        c.extra
            .push(Violation::warning(RG_DEPRECATED_V1ALPHA1, "apiVersion", w));
    }
    match kind {
        Kind::RayJob => rayjob(obj, old, alpha, opts, &mut c),
        Kind::RayService => rayservice(obj, old, alpha, opts, &mut c),
        Kind::RayCronJob => raycronjob(obj, old, opts, &mut c),
        Kind::RayCluster => {}
    }
    c.finish(opts.mode)
}

#[derive(Default)]
struct Collect {
    /// API server checks (run before anything else).
    api: Vec<Violation>,
    /// KubeRay's checks, in its order.
    ordered: Vec<Violation>,
    /// raygate's own findings and warnings.
    extra: Vec<Violation>,
}

impl Collect {
    fn finish(self, mode: Mode) -> Vec<Violation> {
        let mut all = self.api;
        all.extend(self.ordered);
        match mode {
            Mode::All => {
                all.extend(self.extra);
                all
            }
            Mode::FirstError => all
                .into_iter()
                .filter(Violation::is_error)
                .take(1)
                .collect(),
        }
    }
}

fn obj_field<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    v.as_object()
        .and_then(|m| m.get(k))
        .filter(|x| !x.is_null())
}

fn at<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().try_fold(v, |cur, k| obj_field(cur, k))
}

// ---------------------------------------------------------------------------------------------
// API-server (CRD) checks on the kinds' own fields

fn require(parent: Option<&Value>, parent_path: &str, field: &str, out: &mut Vec<Violation>) {
    if let Some(p) = parent
        && p.is_object()
        && obj_field(p, field).is_none()
    {
        out.push(Violation::error(
            crd::REQUIRED,
            key(parent_path, field),
            crd::MSG_REQUIRED,
        ));
    }
}

fn enum_of(
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
            crd::ENUM,
            key(parent_path, field),
            unsupported_value(s, allowed),
        ));
    }
}

fn minimum(
    parent: Option<&Value>,
    parent_path: &str,
    field: &str,
    min: i64,
    out: &mut Vec<Violation>,
) {
    if let Some(n) = parent
        .and_then(|p| obj_field(p, field))
        .and_then(Value::as_i64)
        && n < min
    {
        let p = key(parent_path, field);
        out.push(Violation::error(
            "CRD-MINIMUM",
            p.clone(),
            format!("Invalid value: {n}: {p} in body should be greater than or equal to {min}"),
        ));
    }
}

fn managed_by(spec: &Value, sp: &str, old_spec: Option<&Value>, out: &mut Vec<Violation>) {
    let p = key(sp, "managedBy");
    if let Some(Value::String(m)) = obj_field(spec, "managedBy")
        && !crd::MANAGED_BY_VALUES.contains(&m.as_str())
    {
        out.push(Violation::error(
            crd::MANAGED_BY,
            p.clone(),
            crd::MSG_MANAGED_BY_VALUE,
        ));
    }
    if let (Some(n), Some(o)) = (
        obj_field(spec, "managedBy"),
        old_spec.and_then(|s| obj_field(s, "managedBy")),
    ) && n != o
    {
        out.push(Violation::error(
            crd::IMMUTABLE_MANAGED_BY,
            p,
            crd::MSG_MANAGED_BY_IMMUTABLE,
        ));
    }
}

/// CRD checks of a v1 RayJob spec (also a RayCronJob's `jobTemplate`).
fn rayjob_spec_crd(spec: &Value, sp: &str, old_spec: Option<&Value>, out: &mut Vec<Violation>) {
    minimum(Some(spec), sp, "preRunningDeadlineSeconds", 1, out);
    managed_by(spec, sp, old_spec, out);
    let Some(ds) = obj_field(spec, "deletionStrategy") else {
        return;
    };
    let dp = key(sp, "deletionStrategy");
    if ds.is_object() {
        let legacy = obj_field(ds, "onSuccess").is_some() || obj_field(ds, "onFailure").is_some();
        let rules = obj_field(ds, "deletionRules").is_some();
        if legacy && rules {
            out.push(Violation::error(
                "CRD-CEL",
                dp.clone(),
                "legacy policies (onSuccess/onFailure) and deletionRules cannot be used together within the same deletionStrategy",
            ));
        }
        let complete =
            (obj_field(ds, "onSuccess").is_some() && obj_field(ds, "onFailure").is_some()) || rules;
        if !complete {
            out.push(Violation::error(
                "CRD-CEL",
                dp.clone(),
                "deletionStrategy requires either BOTH onSuccess and onFailure, OR the deletionRules field (cannot be empty)",
            ));
        }
    }
    for which in ["onSuccess", "onFailure"] {
        enum_of(
            obj_field(ds, which),
            &key(&dp, which),
            "policy",
            DELETION_POLICIES,
            out,
        );
    }
    if let Some(Value::Array(rules)) = obj_field(ds, "deletionRules") {
        let rp = key(&dp, "deletionRules");
        for (i, r) in rules.iter().enumerate() {
            let ip = idx(&rp, i);
            require(Some(r), &ip, "condition", out);
            require(Some(r), &ip, "policy", out);
            enum_of(Some(r), &ip, "policy", DELETION_POLICIES, out);
            let cond = obj_field(r, "condition");
            let cp = key(&ip, "condition");
            enum_of(cond, &cp, "jobStatus", &["SUCCEEDED", "FAILED"], out);
            enum_of(cond, &cp, "jobDeploymentStatus", &["Failed"], out);
            minimum(cond, &cp, "ttlSeconds", 0, out);
            if let Some(c) = cond.filter(|c| c.is_object()) {
                let js = obj_field(c, "jobStatus").is_some();
                let jd = obj_field(c, "jobDeploymentStatus").is_some();
                if js && jd {
                    out.push(Violation::error(
                        "CRD-CEL",
                        cp.clone(),
                        "JobStatus and JobDeploymentStatus cannot be used together within the same deletion condition.",
                    ));
                }
                if !js && !jd {
                    out.push(Violation::error(
                        "CRD-CEL",
                        cp.clone(),
                        "the deletion condition requires either the JobStatus or the JobDeploymentStatus field.",
                    ));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Typed views

fn typed<T: for<'de> serde::Deserialize<'de>>(obj: &Value, c: &mut Collect) -> Option<T> {
    match super::deserialize_with_path::<T>(obj) {
        Ok(t) => Some(t),
        Err((path, msg)) => {
            if !c
                .api
                .iter()
                .any(|v| v.is_error() && v.path.starts_with(&path))
            {
                c.api.push(Violation::error(raygate::TYPE, path, msg));
            }
            None
        }
    }
}

/// v1alpha1 objects are read through their own schema (pruning v1-only fields, as the API
/// server does) and then viewed as v1 (conversion strategy None).
fn typed_via<A, T>(obj: &Value, alpha: bool, c: &mut Collect) -> Option<T>
where
    A: for<'de> serde::Deserialize<'de> + serde::Serialize,
    T: for<'de> serde::Deserialize<'de>,
{
    if alpha {
        let a: A = typed(obj, c)?;
        let v = serde_json::to_value(&a).ok()?;
        typed(&v, c)
    } else {
        typed(obj, c)
    }
}

// ---------------------------------------------------------------------------------------------
// Metadata

/// The name the checks apply to (a `generateName` gets 5 generated characters) and its path.
fn name_of(meta: Option<&ObjectMeta>) -> Option<(String, &'static str)> {
    let name = meta.and_then(|m| m.name.as_deref()).unwrap_or("");
    let generate = meta.and_then(|m| m.generate_name.as_deref()).unwrap_or("");
    if !name.is_empty() {
        return Some((name.to_string(), "metadata.name"));
    }
    if generate.is_empty() {
        return None;
    }
    let mut cut = generate.len().min(58);
    while !generate.is_char_boundary(cut) {
        cut -= 1;
    }
    Some((
        format!("{}x2b4z", &generate[..cut]),
        "metadata.generateName",
    ))
}

fn name_required(out: &mut Vec<Violation>) {
    out.push(Violation::error(
        crd::REQUIRED,
        "metadata.name",
        "Required value: name or generateName is required",
    ));
}

/// `ValidateRayJobMetadata` / the name part of `ValidateRayServiceMetadata`.
fn name_rules(
    kind: &str,
    meta: Option<&ObjectMeta>,
    max: usize,
    ids: (&str, &str),
    out: &mut Vec<Violation>,
) -> bool {
    let Some((name, path)) = name_of(meta) else {
        name_required(out);
        return false;
    };
    if name.len() > max {
        out.push(Violation::error(
            ids.0,
            path,
            format!("The {kind} metadata is invalid: {kind} name should be no more than {max} characters"),
        ));
        return false;
    }
    let errs = is_dns1035_label(&name);
    if !errs.is_empty() {
        out.push(Violation::error(
            ids.1,
            path,
            format!(
                "The {kind} metadata is invalid: {kind} name should be a valid DNS1035 label: {}",
                go_string_slice(&errs)
            ),
        ));
        return false;
    }
    true
}

// ---------------------------------------------------------------------------------------------
// The embedded RayCluster spec

/// RayCluster rule ids that belong to `ValidateRayClusterSpec` (KubeRay prefixes their
/// messages when it checks an embedded spec).
pub(crate) fn in_validate_spec(rule: &str) -> bool {
    let head = rule.trim_end_matches(|c: char| c.is_ascii_digit());
    matches!(head, "S" | "W" | "G" | "SU" | "A" | "H" | "AU" | "NP" | "T")
        && head.len() < rule.len()
}

/// `spec…` → `<prefix>…`; other paths (the parent's `metadata.annotations[…]`) unchanged.
pub(crate) fn rebase(path: &str, prefix: &str) -> String {
    if path == "spec" {
        prefix.to_string()
    } else if let Some(rest) = path.strip_prefix("spec") {
        if rest.starts_with('.') || rest.starts_with('[') {
            format!("{prefix}{rest}")
        } else {
            path.to_string()
        }
    } else {
        path.to_string()
    }
}

/// Findings on an embedded RayCluster spec, split the way KubeRay reports them.
#[derive(Default)]
struct Embedded {
    /// API server (CRD) checks of the embedded spec.
    api: Vec<Violation>,
    /// `ValidateRayClusterSpec`, messages prefixed.
    spec: Vec<Violation>,
    /// What KubeRay refuses only when it creates the RayCluster (webhook WH3, U1/U2).
    later: Vec<Violation>,
    /// raygate's own findings and controller warnings.
    extra: Vec<Violation>,
}

/// Runs every RayCluster check on an embedded cluster spec (`raw` for the API server's checks,
/// `spec` its typed view, decoded once with the parent) as KubeRay would see the RayCluster it
/// creates: the parent's annotations (none for a RayCronJob's template) and the
/// `ray.io/originated-from-crd` label.
#[allow(clippy::too_many_arguments)]
fn embedded(
    raw: &Value,
    spec: &v1::RayClusterSpec,
    alpha: bool,
    origin: &str,
    annotations: Option<&v1::StringMap>,
    prefix: &str,
    msg_prefix: &str,
    opts: &ValidateOptions,
) -> Embedded {
    let meta = ObjectMeta {
        name: Some("embedded".into()),
        labels: Some(v1::StringMap::from([(
            super::kuberay::ORIGINATED_FROM_CRD_LABEL.to_string(),
            origin.to_string(),
        )])),
        annotations: annotations.cloned(),
        ..ObjectMeta::default()
    };
    let cluster = super::kuberay::Cluster {
        metadata: Some(&meta),
        spec,
        status: None,
    };
    let (mut ordered, mut extra) = (Vec::new(), Vec::new());
    super::check_cluster(
        Some(raw),
        None,
        alpha,
        &cluster,
        opts,
        &mut ordered,
        &mut extra,
    );
    let mut e = Embedded::default();
    for mut v in ordered.into_iter().chain(extra) {
        match v.rule.as_str() {
            "M1" | "M2" | "ST1" => continue,
            _ => {}
        }
        if v.path == "metadata.name" {
            continue;
        }
        v.path = rebase(&v.path, prefix);
        if v.rule.starts_with("CRD-") || v.rule == raygate::TYPE {
            e.api.push(v);
        } else if in_validate_spec(&v.rule) && v.is_error() {
            v.message = format!("{msg_prefix}{}", v.message);
            e.spec.push(v);
        } else if matches!(v.rule.as_str(), "WH3" | "U1" | "U2") {
            e.later.push(v);
        } else {
            e.extra.push(v);
        }
    }
    e
}

// ---------------------------------------------------------------------------------------------
// RayJob

fn rayjob(obj: &Value, old: Option<&Value>, alpha: bool, opts: &ValidateOptions, c: &mut Collect) {
    let spec_raw = obj_field(obj, "spec");
    let old_spec = old.and_then(|o| obj_field(o, "spec"));
    if alpha {
        require(spec_raw, "spec", "entrypoint", &mut c.api);
    } else if let Some(s) = spec_raw.filter(|s| s.is_object()) {
        rayjob_spec_crd(s, "spec", old_spec, &mut c.api);
    }
    let job: Option<v1::RayJob> = typed_via::<v1alpha1::RayJob, v1::RayJob>(obj, alpha, c);
    let Some(job) = job else { return };
    // ValidateRayJobMetadata
    name_rules(
        "RayJob",
        job.metadata.as_ref(),
        MAX_RAYJOB_NAME_LENGTH,
        ("JM1", "JM2"),
        &mut c.ordered,
    );
    let default_spec = v1::RayJobSpec::default();
    let spec = job.spec.as_ref().unwrap_or(&default_spec);
    let annotations = job.metadata.as_ref().and_then(|m| m.annotations.as_ref());
    let raw_cluster = spec_raw.and_then(|s| obj_field(s, "rayClusterSpec"));
    rayjob_spec(spec, raw_cluster, "spec", alpha, annotations, "", opts, c);
    // ValidateRayJobStatus
    if let Some(st) = job.status.as_ref()
        && st.job_deployment_status.as_deref() == Some("Waiting")
        && spec.submission_mode.as_deref() != Some("InteractiveMode")
    {
        c.ordered.push(Violation::error(
            "JST1",
            "status.jobDeploymentStatus",
            "The RayJob status is invalid: JobDeploymentStatus cannot be `Waiting` when SubmissionMode is not InteractiveMode",
        ));
    }
}

/// Go's `%v` of `*DeletionPolicyType` inside a message (the string itself).
fn policy_of(p: Option<&v1::DeletionPolicy>) -> Option<&str> {
    p.and_then(|p| p.policy.as_deref())
}

/// `ValidateRayJobSpec` (and, for a RayCronJob, on its `jobTemplate`): `sp` is the spec's path
/// (`spec` or `spec.jobTemplate`), `wrap` the prefix KubeRay adds around every message
/// (`invalid RayJob template: ` for a RayCronJob).
#[allow(clippy::too_many_arguments)]
fn rayjob_spec(
    spec: &v1::RayJobSpec,
    raw_cluster: Option<&Value>,
    sp: &str,
    alpha: bool,
    annotations: Option<&v1::StringMap>,
    wrap: &str,
    opts: &ValidateOptions,
    c: &mut Collect,
) {
    let p = |f: &str| key(sp, f);
    let err = |c: &mut Collect, id: &str, path: String, msg: String| {
        c.ordered
            .push(Violation::error(id, path, format!("{wrap}{msg}")));
    };
    const INV: &str = RAYJOB_SPEC_INVALID;
    let suspend = spec.suspend == Some(true);
    let shutdown = spec.shutdown_after_job_finishes == Some(true);
    let ttl = spec.ttl_seconds_after_finished.unwrap_or(0);
    let selector = spec.cluster_selector.as_ref().filter(|m| !m.is_empty());
    let mode = spec.submission_mode.as_deref().unwrap_or("");
    let autoscaling = spec
        .ray_cluster_spec
        .as_ref()
        .is_some_and(super::kuberay::autoscaling_enabled);

    if suspend && !shutdown {
        err(
            c,
            "J1",
            p("suspend"),
            format!(
                "{INV}a RayJob with shutdownAfterJobFinishes set to false is not allowed to be suspended"
            ),
        );
    }
    if ttl < 0 {
        err(
            c,
            "J2",
            p("ttlSecondsAfterFinished"),
            format!("{INV}TTLSecondsAfterFinished must be a non-negative integer"),
        );
    }

    // validateDeletionConfiguration
    if !shutdown && ttl > 0 {
        err(
            c,
            "JD1",
            p("ttlSecondsAfterFinished"),
            format!(
                "{INV}a RayJob with shutdownAfterJobFinishes set to false cannot have TTLSecondsAfterFinished"
            ),
        );
    }
    if let Some(ds) = spec.deletion_strategy.as_ref() {
        let dp = p("deletionStrategy");
        if !opts.gates.enabled("RayJobDeletionPolicy") {
            err(
                c,
                "JD2",
                dp.clone(),
                "RayJobDeletionPolicy feature gate must be enabled to use DeletionStrategy".into(),
            );
        } else {
            let legacy = ds.on_success.is_some() || ds.on_failure.is_some();
            let rules = ds.deletion_rules.as_deref().unwrap_or(&[]);
            let rules_on = !rules.is_empty();
            if rules_on && shutdown {
                err(
                    c,
                    "JD3",
                    key(&dp, "deletionRules"),
                    format!(
                        "{INV}spec.shutdownAfterJobFinishes and spec.deletionStrategy.deletionRules are mutually exclusive"
                    ),
                );
            } else if rules_on && legacy {
                err(
                    c,
                    "JD4",
                    dp.clone(),
                    format!(
                        "{INV}Cannot use both legacy onSuccess/onFailure fields and deletionRules simultaneously"
                    ),
                );
            } else if legacy {
                legacy_policies(
                    ds,
                    &dp,
                    selector.is_some(),
                    autoscaling,
                    shutdown,
                    &mut |id, path, msg| err(c, id, path, msg),
                );
            } else if rules_on {
                deletion_rules(
                    rules,
                    &key(&dp, "deletionRules"),
                    selector.is_some(),
                    autoscaling,
                    &mut |id, path, msg| err(c, id, path, msg),
                );
            } else {
                err(
                    c,
                    "JD16",
                    dp.clone(),
                    format!(
                        "{INV}DeletionStrategy requires either BOTH onSuccess and onFailure, OR the deletionRules field (cannot be empty)"
                    ),
                );
            }
        }
    }

    if suspend && selector.is_some() {
        err(
            c,
            "J3",
            p("suspend"),
            format!("{INV}the ClusterSelector mode doesn't support the suspend operation"),
        );
    }
    if spec.ray_cluster_spec.is_none() && selector.is_none() {
        err(
            c,
            "J4",
            p("rayClusterSpec"),
            format!("{INV}one of RayClusterSpec or ClusterSelector must be set"),
        );
    }
    if let Some(sel) = selector {
        let sel_path = p("clusterSelector");
        if sel.get(CLUSTER_SELECTOR_KEY).is_none_or(|n| n.is_empty()) {
            err(
                c,
                "J5",
                key(&sel_path, CLUSTER_SELECTOR_KEY),
                "cluster name in ClusterSelector should not be empty".into(),
            );
        } else if mode == "SidecarMode" {
            err(
                c,
                "J6",
                p("submissionMode"),
                "ClusterSelector is not supported in SidecarMode".into(),
            );
        } else if spec.backoff_limit.is_some_and(|b| b > 0) {
            err(
                c,
                "J7",
                p("backoffLimit"),
                format!("{INV}BackoffLimit is incompatible with ClusterSelector mode"),
            );
        }
    }
    if mode == "InteractiveMode" && spec.backoff_limit.is_some_and(|b| b > 0) {
        err(
            c,
            "J8",
            p("backoffLimit"),
            format!("{INV}BackoffLimit is incompatible with InteractiveMode"),
        );
    }
    if mode == "SidecarMode" {
        if spec.submitter_pod_template.is_some() {
            err(
                c,
                "J9",
                p("submitterPodTemplate"),
                "Currently, SidecarMode doesn't support SubmitterPodTemplate".into(),
            );
        } else if spec.submitter_config.is_some() {
            err(
                c,
                "J10",
                p("submitterConfig"),
                "Currently, SidecarMode doesn't support SubmitterConfig".into(),
            );
        } else if let Some(rp) = spec
            .ray_cluster_spec
            .as_ref()
            .and_then(|s| s.head_group_spec.as_ref())
            .and_then(|h| h.template.as_ref())
            .and_then(|t| t.spec.as_ref())
            .and_then(|s| s.restart_policy.as_deref())
            && !rp.is_empty()
            && rp != "Never"
        {
            err(
                c,
                "J11",
                format!("{sp}.rayClusterSpec.headGroupSpec.template.spec.restartPolicy"),
                "restartPolicy for head Pod should be Never or unset when using SidecarMode".into(),
            );
        }
    }
    let cluster_prefix = p("rayClusterSpec");
    if let Some(cs) = spec.ray_cluster_spec.as_ref() {
        if cs
            .auth_options
            .as_ref()
            .is_some_and(|a| a.enable_k8s_token_auth == Some(true))
        {
            err(
                c,
                "J12",
                format!("{cluster_prefix}.authOptions.enableK8sTokenAuth"),
                format!("{INV}K8s token auth mode is currently not supported for RayJob"),
            );
        }
        let empty = Value::Object(Map::new());
        let e = embedded(
            raw_cluster.unwrap_or(&empty),
            cs,
            alpha,
            "RayJob",
            annotations,
            &cluster_prefix,
            &format!("{wrap}{INV}"),
            opts,
        );
        c.api.extend(e.api);
        c.ordered.extend(e.spec);
        c.ordered.extend(e.later);
        c.extra.extend(e.extra);
    }
    if let Some(y) = spec.runtime_env_yaml.as_deref()
        && let Err(e) = runtime_env(y)
    {
        err(
            c,
            "J13",
            p("runtimeEnvYAML"),
            format!("failed to unmarshal RuntimeEnvYAML: {y}: {e}"),
        );
    }
    if spec.active_deadline_seconds.is_some_and(|d| d <= 0) {
        err(
            c,
            "J14",
            p("activeDeadlineSeconds"),
            format!("{INV}activeDeadlineSeconds must be a positive integer"),
        );
    }
    if spec.pre_running_deadline_seconds.is_some_and(|d| d <= 0) {
        err(
            c,
            "J15",
            p("preRunningDeadlineSeconds"),
            format!("{INV}preRunningDeadlineSeconds must be a positive integer"),
        );
    }
    if spec.backoff_limit.is_some_and(|b| b < 0) {
        err(
            c,
            "J16",
            p("backoffLimit"),
            format!("{INV}backoffLimit must be a positive integer"),
        );
    }

    // raygate's own checks
    if !mode.is_empty() && !SUBMISSION_MODES.contains(&mode) {
        c.extra.push(Violation::error(
            RG_SUBMISSION_MODE,
            p("submissionMode"),
            format!(
                "{}; KubeRay does not check it and would never submit the job",
                unsupported_value(mode, SUBMISSION_MODES)
            ),
        ));
    }
    if selector.is_some() && spec.ray_cluster_spec.is_some() {
        c.extra.push(Violation::warning(RG_SELECTOR_IGNORES_SPEC, cluster_prefix.clone(),
            "rayClusterSpec is ignored because clusterSelector is set: the job runs on the existing RayCluster named by clusterSelector[ray.io/cluster] and KubeRay creates no cluster from this spec"));
    }
    if selector.is_some() && shutdown {
        c.extra.push(Violation::warning(RG_SELECTOR_SHUTDOWN, p("shutdownAfterJobFinishes"),
            "shutdownAfterJobFinishes has no effect with clusterSelector: KubeRay never deletes a RayCluster it did not create, so the selected cluster keeps running after the job finishes"));
    }
    // In K8sJobMode a custom submitterPodTemplate brings its own command.
    let own_submitter = matches!(mode, "" | "K8sJobMode") && spec.submitter_pod_template.is_some();
    if mode != "InteractiveMode"
        && !own_submitter
        && spec
            .entrypoint
            .as_deref()
            .is_none_or(|e| e.trim().is_empty())
    {
        c.extra.push(Violation::warning(RG_NO_ENTRYPOINT, p("entrypoint"), format!(
            "entrypoint is empty: in {} the submitter runs `ray job submit` with no command and the job fails; set entrypoint, or use submissionMode InteractiveMode to submit it yourself",
            if mode.is_empty() { "K8sJobMode" } else { mode }
        )));
    }
}

/// `validateLegacyDeletionPolicies`.
fn legacy_policies(
    ds: &v1::DeletionStrategy,
    dp: &str,
    selector: bool,
    autoscaling: bool,
    shutdown: bool,
    err: &mut dyn FnMut(&str, String, String),
) {
    let (Some(on_s), Some(on_f)) = (ds.on_success.as_ref(), ds.on_failure.as_ref()) else {
        let missing = if ds.on_success.is_none() {
            "onSuccess"
        } else {
            "onFailure"
        };
        err("JD5", key(dp, missing), "both DeletionStrategy.OnSuccess and DeletionStrategy.OnFailure must be set when using the legacy deletion policy fields of DeletionStrategy".into());
        return;
    };
    let (Some(s), Some(f)) = (policy_of(Some(on_s)), policy_of(Some(on_f))) else {
        let (which, go) = if on_s.policy.is_none() {
            ("onSuccess", "OnSuccess")
        } else {
            ("onFailure", "OnFailure")
        };
        err(
            "JD6",
            format!("{dp}.{which}.policy"),
            format!(
                "the DeletionPolicyType field of DeletionStrategy.{go} cannot be unset when DeletionStrategy is enabled"
            ),
        );
        return;
    };
    let cluster_bound = |p: &str| p == "DeleteCluster" || p == "DeleteWorkers";
    if selector {
        if cluster_bound(s) {
            err(
                "JD7",
                format!("{dp}.onSuccess.policy"),
                format!("the ClusterSelector mode doesn't support DeletionStrategy={s} on success"),
            );
            return;
        }
        if cluster_bound(f) {
            err(
                "JD7",
                format!("{dp}.onFailure.policy"),
                format!("the ClusterSelector mode doesn't support DeletionStrategy={f} on failure"),
            );
            return;
        }
    }
    if (s == "DeleteWorkers" || f == "DeleteWorkers") && autoscaling {
        let which = if s == "DeleteWorkers" {
            "onSuccess"
        } else {
            "onFailure"
        };
        err("JD8", format!("{dp}.{which}.policy"), "DeletionStrategy=DeleteWorkers currently does not support RayCluster with autoscaling enabled".into());
        return;
    }
    if shutdown && (s == "DeleteNone" || f == "DeleteNone") {
        let which = if s == "DeleteNone" {
            "onSuccess"
        } else {
            "onFailure"
        };
        err("JD9", format!("{dp}.{which}.policy"), "The RayJob spec is invalid: shutdownAfterJobFinshes is set to 'true' while deletion policy is 'DeleteNone'".into());
    }
}

/// `validateDeletionRules` (KubeRay joins these with newlines into one error; raygate reports
/// each at its own rule).
fn deletion_rules(
    rules: &[v1::DeletionRule],
    rp: &str,
    selector: bool,
    autoscaling: bool,
    err: &mut dyn FnMut(&str, String, String),
) {
    use std::collections::BTreeMap;
    // (condition type, condition value) -> policy -> (ttl, rule index)
    let mut groups: BTreeMap<(u8, String), BTreeMap<String, i32>> = BTreeMap::new();
    for (i, r) in rules.iter().enumerate() {
        let ip = idx(rp, i);
        let cond = r.condition.clone().unwrap_or_default();
        let policy = r.policy.as_deref().unwrap_or("");
        let cp = key(&ip, "condition");
        match (
            cond.job_status.as_deref(),
            cond.job_deployment_status.as_deref(),
        ) {
            (Some(_), Some(_)) => {
                err(
                    "JD10",
                    cp,
                    format!(
                        "deletionRules[{i}]: cannot set both JobStatus and JobDeploymentStatus at the same time"
                    ),
                );
                continue;
            }
            (None, None) => {
                err(
                    "JD10",
                    cp,
                    format!(
                        "deletionRules[{i}]: exactly one of JobStatus and JobDeploymentStatus must be set"
                    ),
                );
                continue;
            }
            _ => {}
        }
        let ttl = cond.ttl_seconds.unwrap_or(0);
        if ttl < 0 {
            err(
                "JD11",
                key(&cp, "ttlSeconds"),
                format!("deletionRules[{i}]: TTLSeconds must be non-negative"),
            );
            continue;
        }
        if selector && (policy == "DeleteCluster" || policy == "DeleteWorkers") {
            err(
                "JD12",
                key(&ip, "policy"),
                format!(
                    "deletionRules[{i}]: DeletionPolicyType '{policy}' not supported when ClusterSelector is set"
                ),
            );
            continue;
        }
        if autoscaling && policy == "DeleteWorkers" {
            err(
                "JD13",
                key(&ip, "policy"),
                format!(
                    "deletionRules[{i}]: DeletionPolicyType 'DeleteWorkers' not supported with autoscaling enabled"
                ),
            );
            continue;
        }
        let (t, name, value) = match (cond.job_status, cond.job_deployment_status) {
            (Some(s), _) => (0u8, "JobStatus", s),
            (_, Some(d)) => (1u8, "JobDeploymentStatus", d),
            _ => continue,
        };
        let g = groups.entry((t, value.clone())).or_default();
        if g.contains_key(policy) {
            err(
                "JD14",
                ip,
                format!(
                    "deletionRules[{i}]: duplicate rule for DeletionPolicyType '{policy}' and {name} '{value}'"
                ),
            );
            continue;
        }
        g.insert(policy.to_string(), ttl);
    }
    for ((t, value), ttls) in groups {
        let name = if t == 0 {
            "JobStatus"
        } else {
            "JobDeploymentStatus"
        };
        let mut prev: Option<(&str, i32)> = None;
        for policy in DELETION_TTL_ORDER {
            let Some(&ttl) = ttls.get(policy) else {
                continue;
            };
            if let Some((pp, pt)) = prev
                && ttl < pt
            {
                let i = rules
                    .iter()
                    .position(|r| {
                        r.policy.as_deref() == Some(policy)
                            && r.condition.as_ref().is_some_and(|c| {
                                (if t == 0 {
                                    c.job_status.as_deref()
                                } else {
                                    c.job_deployment_status.as_deref()
                                }) == Some(value.as_str())
                            })
                    })
                    .unwrap_or(0);
                err(
                    "JD15",
                    format!("{}.condition.ttlSeconds", idx(rp, i)),
                    format!(
                        "for {name} '{value}': {policy} TTL ({ttl}) must be >= {pp} TTL ({pt})"
                    ),
                );
            }
            prev = Some((policy, ttl));
        }
    }
}

/// `UnmarshalRuntimeEnvYAML`: a YAML mapping (or nothing). The texts for non-mappings are Go's
/// (`sigs.k8s.io/yaml` + `encoding/json`); YAML syntax errors carry raygate's parser message.
pub fn runtime_env(y: &str) -> Result<(), String> {
    let docs = crate::yaml::parse_all(y).map_err(|e| {
        format!(
            "error converting YAML to JSON: yaml: line {}: {}",
            e.line, e.message
        )
    })?;
    let Some(d) = docs.into_iter().next() else {
        return Ok(());
    };
    let what = match d.value {
        Value::Null | Value::Object(_) => return Ok(()),
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
    };
    Err(format!(
        "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {what} into Go value of type types.RuntimeEnvType"
    ))
}

// ---------------------------------------------------------------------------------------------
// RayService

fn rayservice(
    obj: &Value,
    old: Option<&Value>,
    alpha: bool,
    opts: &ValidateOptions,
    c: &mut Collect,
) {
    let spec_raw = obj_field(obj, "spec");
    let old_spec = old.and_then(|o| obj_field(o, "spec"));
    if !alpha && let Some(s) = spec_raw.filter(|s| s.is_object()) {
        require(Some(s), "spec", "rayClusterConfig", &mut c.api);
        minimum(
            Some(s),
            "spec",
            "rayClusterDeletionDelaySeconds",
            0,
            &mut c.api,
        );
        managed_by(s, "spec", old_spec, &mut c.api);
        let cuo = at(s, &["upgradeStrategy", "clusterUpgradeOptions"]);
        let cp = "spec.upgradeStrategy.clusterUpgradeOptions";
        for f in ["gatewayClassName", "intervalSeconds", "stepSizePercent"] {
            require(cuo, cp, f, &mut c.api);
        }
    }
    let svc: Option<v1::RayService> =
        typed_via::<v1alpha1::RayService, v1::RayService>(obj, alpha, c);
    let Some(svc) = svc else { return };
    const INV: &str = RAYSERVICE_SPEC_INVALID;

    // ValidateRayServiceMetadata
    let meta = svc.metadata.as_ref();
    if name_rules(
        "RayService",
        meta,
        MAX_RAYSERVICE_NAME_LENGTH,
        ("SM1", "SM2"),
        &mut c.ordered,
    ) && let Some(t) = meta
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(INITIALIZING_TIMEOUT_ANNOTATION))
        && let Err(e) = initializing_timeout(t)
    {
        c.ordered.push(Violation::error(
            "SM3",
            key("metadata.annotations", INITIALIZING_TIMEOUT_ANNOTATION),
            initializing_timeout_message(&e),
        ));
    }

    // ValidateRayServiceSpec
    let default_spec = v1::RayServiceSpec::default();
    let spec = svc.spec.as_ref().unwrap_or(&default_spec);
    let default_cluster = v1::RayClusterSpec::default();
    let cluster = spec.ray_cluster_config.as_ref().unwrap_or(&default_cluster);
    let cp = "spec.rayClusterConfig";
    if cluster
        .auth_options
        .as_ref()
        .is_some_and(|a| a.enable_k8s_token_auth == Some(true))
    {
        c.ordered.push(Violation::error(
            "SV1",
            format!("{cp}.authOptions.enableK8sTokenAuth"),
            format!("{INV}K8s token auth mode is currently not supported for RayService"),
        ));
    }
    match spec_raw.and_then(|s| obj_field(s, "rayClusterConfig")) {
        Some(raw) => {
            let e = embedded(
                raw,
                cluster,
                alpha,
                "RayService",
                meta.and_then(|m| m.annotations.as_ref()),
                cp,
                INV,
                opts,
            );
            c.api.extend(e.api);
            c.ordered.extend(e.spec);
            c.ordered.extend(e.later);
            c.extra.extend(e.extra);
        }
        None if alpha => {
            // v1alpha1 does not require it; KubeRay then validates an empty cluster spec.
            c.ordered.push(Violation::error(
                "S1",
                cp,
                format!("{INV}headGroupSpec should have at least one container"),
            ));
        }
        None => {}
    }
    if let Some(name) = cluster
        .head_group_spec
        .as_ref()
        .and_then(|h| h.head_service.as_ref())
        .and_then(|s| s.metadata.name.as_deref())
        && !name.is_empty()
    {
        c.ordered.push(Violation::error("SV2", format!("{cp}.headGroupSpec.headService.metadata.name"), format!("{INV}spec.rayClusterConfig.headGroupSpec.headService.metadata.name should not be set")));
    }
    let us = spec.upgrade_strategy.as_ref();
    let utype = us.and_then(|u| u.type_.as_deref());
    if let Some(t) = utype
        && !RAYSERVICE_UPGRADE_TYPES.contains(&t)
    {
        c.ordered.push(Violation::error("SV3", "spec.upgradeStrategy.type", format!("{INV}Spec.UpgradeStrategy.Type value {t} is invalid, valid options are NewClusterWithIncrementalUpgrade, NewCluster, or None")));
    }
    if let Some(d) = spec.ray_cluster_deletion_delay_seconds
        && d < 0
    {
        c.ordered.push(Violation::error(
            "SV4",
            "spec.rayClusterDeletionDelaySeconds",
            format!(
                "{INV}Spec.RayClusterDeletionDelaySeconds should be a non-negative integer, got {d}"
            ),
        ));
    }
    if utype == Some("NewClusterWithIncrementalUpgrade") {
        if opts.gates.enabled("RayServiceIncrementalUpgrade") {
            upgrade_options(cluster, us, c);
        } else {
            c.extra.push(Violation::warning(RG_SERVICE_INCREMENTAL_GATE, "spec.upgradeStrategy.type",
                "upgradeStrategy.type is NewClusterWithIncrementalUpgrade but the RayServiceIncrementalUpgrade feature gate is off: KubeRay skips the incremental upgrade checks and does not upgrade incrementally"));
        }
    }

    // raygate: min/max edits do not reach the running cluster (KubeRay PR 2333, issue 4568).
    if let Some(old) = old
        && let Some(old_svc) = typed_quiet::<v1::RayService>(old)
    {
        let groups = |s: &v1::RayService| -> Vec<(String, Option<i32>, Option<i32>)> {
            s.spec
                .as_ref()
                .and_then(|s| s.ray_cluster_config.as_ref())
                .and_then(|c| c.worker_group_specs.as_ref())
                .map(|g| {
                    g.iter()
                        .map(|g| {
                            (
                                g.group_name.clone().unwrap_or_default(),
                                g.min_replicas,
                                g.max_replicas,
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let before = groups(&old_svc);
        for (i, (name, min, max)) in groups(&svc).into_iter().enumerate() {
            if let Some((_, omin, omax)) = before.iter().find(|(n, _, _)| *n == name)
                && (omin != &min || omax != &max)
            {
                let field = if omin != &min {
                    "minReplicas"
                } else {
                    "maxReplicas"
                };
                c.extra.push(Violation::warning(
                    RG_SERVICE_MINMAX,
                    format!("{cp}.workerGroupSpecs[{i}].{field}"),
                    format!("worker group {name}: changing minReplicas/maxReplicas of a RayService does not update its running RayCluster (KubeRay leaves them out of the spec hash so the autoscaler is not overridden); the new bounds apply only when the cluster is next replaced, or patch the RayCluster too"),
                ));
            }
        }
    }
}

fn typed_quiet<T: for<'de> serde::Deserialize<'de>>(v: &Value) -> Option<T> {
    T::deserialize(v).ok()
}

/// The CJ5 message for a [`gotime::load_location`] error.
pub fn time_zone_message(e: &str) -> String {
    format!("invalid time zone: {e}")
}

/// The SM3 message for an [`initializing_timeout`] error (`ValidateRayServiceMetadata`'s wrap).
pub fn initializing_timeout_message(e: &str) -> String {
    format!("The RayService metadata is invalid: RayService annotations is invalid: {e}")
}

/// `validateInitializingTimeout`.
pub fn initializing_timeout(t: &str) -> Result<(), String> {
    const A: &str = INITIALIZING_TIMEOUT_ANNOTATION;
    if t.is_empty() {
        return Ok(());
    }
    if let Ok(d) = gotime::parse_duration(t) {
        if d <= 0 {
            return Err(format!(
                "annotation {A} must be a positive duration, got: {t}"
            ));
        }
        return Ok(());
    }
    if let Ok(s) = gotime::atoi(t) {
        if s <= 0 {
            return Err(format!(
                "annotation {A} must be a positive integer (seconds), got: {t}"
            ));
        }
        return Ok(());
    }
    Err(format!(
        "annotation {A} has invalid format: {t}. Expected Go duration format (e.g., '5m', '1h') or positive integer seconds"
    ))
}

/// `ValidateClusterUpgradeOptions` (only with `NewClusterWithIncrementalUpgrade` and the gate on).
fn upgrade_options(
    cluster: &v1::RayClusterSpec,
    us: Option<&v1::RayServiceUpgradeStrategy>,
    c: &mut Collect,
) {
    const INV: &str = RAYSERVICE_SPEC_INVALID;
    let up = "spec.upgradeStrategy.clusterUpgradeOptions";
    let mut e = |id: &str, path: String, msg: &str| {
        c.ordered
            .push(Violation::error(id, path, format!("{INV}{msg}")));
    };
    if !super::kuberay::autoscaling_enabled(cluster) {
        e(
            "SVU1",
            "spec.rayClusterConfig.enableInTreeAutoscaling".into(),
            "Ray Autoscaler is required for NewClusterWithIncrementalUpgrade",
        );
        return;
    }
    let Some(o) = us.and_then(|u| u.cluster_upgrade_options.as_ref()) else {
        e(
            "SVU2",
            up.into(),
            "ClusterUpgradeOptions are required for NewClusterWithIncrementalUpgrade",
        );
        return;
    };
    // The CRD defaults maxSurgePercent to 100 (KubeRay dereferences it unchecked).
    let surge = o.max_surge_percent.unwrap_or(100);
    if !(0..=100).contains(&surge) {
        e(
            "SVU3",
            format!("{up}.maxSurgePercent"),
            "maxSurgePercent must be between 0 and 100",
        );
        return;
    }
    let Some(step) = o.step_size_percent.filter(|s| (0..=100).contains(s)) else {
        e(
            "SVU4",
            format!("{up}.stepSizePercent"),
            "stepSizePercent must be between 0 and 100",
        );
        return;
    };
    if step > surge {
        e(
            "SVU5",
            format!("{up}.stepSizePercent"),
            "stepSizePercent must be less than or equal to maxSurgePercent",
        );
        return;
    }
    if o.interval_seconds.is_none_or(|i| i <= 0) {
        e(
            "SVU6",
            format!("{up}.intervalSeconds"),
            "intervalSeconds must be greater than 0",
        );
        return;
    }
    if o.gateway_class_name.as_deref().unwrap_or("").is_empty() {
        e(
            "SVU7",
            format!("{up}.gatewayClassName"),
            "gatewayClassName is required for NewClusterWithIncrementalUpgrade",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// RayCronJob

fn raycronjob(obj: &Value, old: Option<&Value>, opts: &ValidateOptions, c: &mut Collect) {
    let spec_raw = obj_field(obj, "spec");
    if let Some(s) = spec_raw.filter(|s| s.is_object()) {
        require(Some(s), "spec", "jobTemplate", &mut c.api);
        require(Some(s), "spec", "schedule", &mut c.api);
        if let Some(t) = obj_field(s, "jobTemplate").filter(|t| t.is_object()) {
            let old_t = old.and_then(|o| at(o, &["spec", "jobTemplate"]));
            rayjob_spec_crd(t, "spec.jobTemplate", old_t, &mut c.api);
        }
    }
    let cron: Option<v1::RayCronJob> = typed(obj, c);
    let Some(cron) = cron else { return };
    if !opts.gates.enabled("RayCronJob") {
        c.extra.push(Violation::warning(RG_CRONJOB_GATE, "kind",
            "the RayCronJob feature gate is off (KubeRay's default): the operator runs no RayCronJob controller, so this object is stored but never schedules a RayJob"));
    }
    match name_of(cron.metadata.as_ref()) {
        None => name_required(&mut c.ordered),
        Some((name, path)) => {
            if name.len() > MAX_RAYCRONJOB_NAME_LENGTH {
                c.ordered.push(Violation::error("CJ1", path, format!("RayCronJob name should be no more than {MAX_RAYCRONJOB_NAME_LENGTH} characters")));
            }
        }
    }
    let default_spec = v1::RayCronJobSpec::default();
    let spec = cron.spec.as_ref().unwrap_or(&default_spec);
    let schedule = spec.schedule.as_deref().unwrap_or("");
    if schedule.contains("TZ") {
        c.ordered.push(Violation::error(
            "CJ2",
            "spec.schedule",
            "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
        ));
    } else if let Err(e) = gotime::parse_cron_standard(schedule) {
        c.ordered.push(Violation::error(
            "CJ3",
            "spec.schedule",
            format!("invalid cron schedule: {e}"),
        ));
    }
    if let Some(tz) = spec.time_zone.as_deref() {
        if tz.is_empty() {
            c.ordered.push(Violation::error("CJ4", "spec.timeZone", "timeZone must not be empty string, omit the field to use the local time zone of the KubeRay operator"));
        } else if let Err(e) = gotime::load_location(tz) {
            c.ordered.push(Violation::error(
                "CJ5",
                "spec.timeZone",
                time_zone_message(&e),
            ));
        }
    }
    let default_job = v1::RayJobSpec::default();
    let job = spec.job_template.as_ref().unwrap_or(&default_job);
    let raw_cluster = spec_raw.and_then(|s| at(s, &["jobTemplate", "rayClusterSpec"]));
    // KubeRay validates the template as a RayJob with empty metadata (no annotations).
    rayjob_spec(
        job,
        raw_cluster,
        "spec.jobTemplate",
        false,
        None,
        "invalid RayJob template: ",
        opts,
        c,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebase_prefixes_spec_paths_only() {
        assert_eq!(
            rebase(
                "spec.workerGroupSpecs[0].minReplicas",
                "spec.rayClusterSpec"
            ),
            "spec.rayClusterSpec.workerGroupSpecs[0].minReplicas"
        );
        assert_eq!(
            rebase("spec", "spec.rayClusterConfig"),
            "spec.rayClusterConfig"
        );
        assert_eq!(
            rebase("metadata.annotations[ray.io/ft-enabled]", "spec.x"),
            "metadata.annotations[ray.io/ft-enabled]"
        );
        assert_eq!(rebase("specx", "p"), "specx");
    }

    #[test]
    fn spec_rule_ids() {
        for id in [
            "S1", "W5", "W13", "G14", "SU1", "A7", "H7", "AU6", "NP4", "T3",
        ] {
            assert!(in_validate_spec(id), "{id}");
        }
        for id in [
            "WH3",
            "U2",
            "ST1",
            "M1",
            "CRD-ENUM",
            "RG-NUMOFHOSTS",
            "W-RESTARTPOLICY-V1",
            "S",
        ] {
            assert!(!in_validate_spec(id), "{id}");
        }
    }

    #[test]
    fn runtime_env_texts() {
        assert!(runtime_env("").is_ok());
        assert!(runtime_env("pip: [requests]\nenv_vars: {A: b}").is_ok());
        assert_eq!(
            runtime_env("just a string"),
            Err("error unmarshaling JSON: while decoding JSON: json: cannot unmarshal string into Go value of type types.RuntimeEnvType".into())
        );
        assert!(
            runtime_env("a: [")
                .unwrap_err()
                .starts_with("error converting YAML to JSON: yaml: line")
        );
    }

    #[test]
    fn initializing_timeout_texts() {
        assert!(initializing_timeout("5m").is_ok());
        assert!(initializing_timeout("300").is_ok());
        assert_eq!(
            initializing_timeout("-5m"),
            Err(
                "annotation ray.io/initializing-timeout must be a positive duration, got: -5m"
                    .into()
            )
        );
        assert_eq!(
            initializing_timeout("0"),
            Err(
                "annotation ray.io/initializing-timeout must be a positive duration, got: 0".into()
            )
        );
        assert_eq!(initializing_timeout("-30"), Err("annotation ray.io/initializing-timeout must be a positive integer (seconds), got: -30".into()));
        assert_eq!(initializing_timeout("soon"), Err("annotation ray.io/initializing-timeout has invalid format: soon. Expected Go duration format (e.g., '5m', '1h') or positive integer seconds".into()));
    }
}
