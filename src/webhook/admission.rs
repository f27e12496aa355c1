//! AdmissionReview (`admission.k8s.io/v1`) and ConversionReview (`apiextensions.k8s.io/v1`)
//! handling as synchronous functions from request bytes to response bytes, so the HTTP layer
//! stays thin and the handlers can be fuzzed without a network.
//!
//! Requests are read into a lean struct with the objects as raw `serde_json::Value` (no typed
//! round trip, so fields this crate does not model are seen exactly as sent); responses are
//! kube's `AdmissionResponse` / `ConversionResponse`. kube serialises `patch` as an array of
//! numbers (kube-rs#1781); we replace it with the documented base64 string.

use crate::conversion;
use crate::model::Kind;
use crate::violation::{Severity, ValidateOptions, Violation};
use base64::Engine;
use kube::core::Status;
use kube::core::admission::{AdmissionResponse, Operation};
use kube::core::conversion::{ConversionRequest, ConversionResponse, ConversionReview};
use kube::core::response::{StatusCause, StatusDetails, StatusSummary};
use serde::Deserialize;
use serde_json::Value;

pub const ADMISSION_API_VERSION: &str = "admission.k8s.io/v1";
pub const CONVERSION_API_VERSION: &str = "apiextensions.k8s.io/v1";
/// API server limits on admission warnings.
pub const MAX_WARNING_LEN: usize = 256;
pub const MAX_WARNINGS_TOTAL: usize = 4096;
/// Caps on a denial (see [`invalid_status`]).
pub const MAX_CAUSES: usize = 50;
pub const MAX_CAUSE_LEN: usize = 256;
pub const MAX_DENIAL_MESSAGE: usize = 5 * 1024;
pub const V1ALPHA1_DEPRECATED: &str =
    "ray.io/v1alpha1 RayCluster is deprecated; use ray.io/v1 RayCluster";

/// `/validate-ray-io-v1-<kind>`: where [`validate_kind`] is served for `kind`.
pub fn validate_path(kind: Kind) -> &'static str {
    match kind {
        Kind::RayCluster => "/validate-ray-io-v1-raycluster",
        Kind::RayJob => "/validate-ray-io-v1-rayjob",
        Kind::RayService => "/validate-ray-io-v1-rayservice",
        Kind::RayCronJob => "/validate-ray-io-v1-raycronjob",
    }
}

/// `/mutate-ray-io-v1-<kind>`: where [`mutate_kind`] is served for `kind`.
pub fn mutate_path(kind: Kind) -> &'static str {
    match kind {
        Kind::RayCluster => "/mutate-ray-io-v1-raycluster",
        Kind::RayJob => "/mutate-ray-io-v1-rayjob",
        Kind::RayService => "/mutate-ray-io-v1-rayservice",
        Kind::RayCronJob => "/mutate-ray-io-v1-raycronjob",
    }
}

/// What the handler decided, for logs and metrics.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub operation: &'static str,
    /// `allowed`, `denied`, `patched`, `unchanged`, `converted`, `failed`, `invalid`
    pub decision: &'static str,
    pub dry_run: bool,
    /// Rule ids of error violations (validate only).
    pub violations: Vec<String>,
    /// Free-text reason for invalid / failed.
    pub detail: String,
}

impl Outcome {
    /// The distinct rule ids of [`Outcome::violations`], in first-seen order, comma-separated
    /// (for the request log line: 10,000 violations of one rule are one id, not 30 KB).
    pub fn violated_rules(&self) -> String {
        let mut seen: Vec<&str> = Vec::new();
        for r in &self.violations {
            if !seen.contains(&r.as_str()) {
                seen.push(r);
            }
        }
        seen.join(",")
    }
}

/// HTTP status + JSON body + outcome.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub outcome: Outcome,
}

/// Inputs shared by the admission handlers.
#[derive(Debug, Clone, Default)]
pub struct AdmissionConfig {
    pub validate: ValidateOptions,
    /// What the mutating webhook fills for the `raygate.io/autoscaler` opt-in.
    pub opt_in: crate::defaulting::OptIn,
}

#[derive(Debug, Default, Deserialize)]
struct Gvk {
    #[serde(default)]
    group: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    kind: String,
}

/// The request fields the handlers read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestIn {
    uid: String,
    #[serde(default)]
    kind: Gvk,
    #[serde(default)]
    request_kind: Option<Gvk>,
    #[serde(default)]
    sub_resource: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    operation: Operation,
    #[serde(default)]
    object: Option<Value>,
    #[serde(default)]
    old_object: Option<Value>,
    #[serde(default)]
    dry_run: Option<bool>,
}

fn op_str(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

fn json_bytes(v: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_else(|e| {
        format!(r#"{{"error":"failed to serialise response: {e}"}}"#).into_bytes()
    })
}

/// A reply for a body that could not be read as an AdmissionReview (no uid available).
fn admission_unreadable(status: u16, msg: String, uid: String, op: &'static str) -> Reply {
    let mut resp = AdmissionResponse::invalid(&msg);
    resp.uid = uid.clone();
    resp.result.code = status;
    resp.result.reason = "BadRequest".into();
    Reply {
        status,
        body: json_bytes(&resp.into_review()),
        outcome: Outcome {
            uid,
            operation: op,
            decision: "invalid",
            detail: msg,
            ..Default::default()
        },
    }
}

/// The reply to a request whose body was not read (too large, server busy): the uid is
/// unknown. `reason` is the Kubernetes `StatusReason` (`RequestEntityTooLarge`, ...).
pub fn admission_refused(status: u16, reason: &str, msg: String) -> Reply {
    let mut resp = AdmissionResponse::invalid(&msg);
    resp.result.code = status;
    resp.result.reason = reason.into();
    Reply {
        status,
        body: json_bytes(&resp.into_review()),
        outcome: Outcome {
            decision: "refused",
            detail: msg,
            ..Default::default()
        },
    }
}

/// [`admission_refused`] for `/convert`: a ConversionReview.
pub fn conversion_refused(status: u16, reason: &str, msg: String) -> Reply {
    let mut st = Status::failure(&msg, reason);
    st.code = status;
    conversion_reply(
        status,
        ConversionResponse::invalid(st),
        Outcome {
            operation: "CONVERT",
            decision: "refused",
            detail: msg,
            ..Default::default()
        },
    )
}

/// A readable request that we refuse to decide on: HTTP 200, `allowed: false`, uid echoed.
fn admission_refuse(uid: &str, code: u16, msg: String, outcome: Outcome) -> Reply {
    let mut resp = AdmissionResponse::invalid(&msg);
    resp.uid = uid.to_string();
    resp.result.code = code;
    resp.result.reason = "BadRequest".into();
    Reply {
        status: 200,
        body: json_bytes(&resp.into_review()),
        outcome: Outcome {
            decision: "invalid",
            detail: msg,
            ..outcome
        },
    }
}

fn allowed_response(uid: &str) -> AdmissionResponse {
    let mut r = AdmissionResponse::invalid("");
    r.uid = uid.to_string();
    r.allowed = true;
    r.result = Status::default();
    r
}

/// Bodies up to this size that [`crate::json`] does not read (nesting deeper than
/// [`crate::json::MAX_DEPTH`], a number `serde_json` refuses) are read by `serde_json` for its
/// exact error; larger ones are refused without building them (bounded memory).
pub const SERDE_FALLBACK_MAX: usize = 256 * 1024;

/// The body as one `Value` read by [`crate::json::parse_lean`]; on failure the text after
/// "request body is not valid JSON: ".
fn read_json(body: &[u8], skip: &[&str], elide: &[&str]) -> Result<Value, String> {
    if let Some(v) = crate::json::parse_lean(body, skip, elide) {
        return Ok(v);
    }
    // Syntax errors without building anything.
    serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(|e| e.to_string())?;
    if body.len() > SERDE_FALLBACK_MAX {
        return Err(format!(
            "a body over {SERDE_FALLBACK_MAX} bytes must nest at most {} levels deep and hold only numbers within range",
            crate::json::MAX_DEPTH
        ));
    }
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

/// Reads the AdmissionReview; on failure returns the reply to send.
///
/// [`crate::json`] reads the whole body into one `Value` (the objects are built once, never
/// re-read, and string arrays the rules never read are elided); the envelope is then read
/// without the objects.
/// With `skip_old`, `oldObject` is checked but not built (always `None`).
fn parse_admission(body: &[u8], skip_old: bool) -> Result<RequestIn, Box<Reply>> {
    let skip: &[&str] = if skip_old {
        &["request", "oldObject"]
    } else {
        &[]
    };
    let mut v = read_json(body, skip, crate::json::UNREAD_STRING_ARRAYS).map_err(|e| {
        Box::new(admission_unreadable(
            400,
            format!("request body is not valid JSON: {e}"),
            String::new(),
            "",
        ))
    })?;
    let Some(top) = v.as_object_mut() else {
        return Err(Box::new(admission_unreadable(
            400,
            "request body is not a JSON object (expected an AdmissionReview)".into(),
            String::new(),
            "",
        )));
    };
    // Echo the uid whenever it can be read, even when the envelope is wrong.
    let uid = top
        .get("request")
        .and_then(|r| r.get("uid"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let av = top.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = top.get("kind").and_then(Value::as_str).unwrap_or("");
    if av != ADMISSION_API_VERSION || kind != "AdmissionReview" {
        return Err(Box::new(admission_unreadable(
            400,
            format!(
                "expected apiVersion {ADMISSION_API_VERSION:?} and kind \"AdmissionReview\", \
                 got apiVersion {av:?} and kind {kind:?}"
            ),
            uid,
            "",
        )));
    }
    let mut request = match top.remove("request") {
        Some(Value::Object(r)) => r,
        _ => {
            return Err(Box::new(admission_unreadable(
                400,
                "AdmissionReview has no request object".into(),
                uid,
                "",
            )));
        }
    };
    if uid.is_empty() {
        return Err(Box::new(admission_unreadable(
            400,
            "AdmissionReview request has no uid".into(),
            String::new(),
            "",
        )));
    }
    // The envelope without the objects, so they are moved, never copied.
    let object = request.remove("object");
    let old_object = request.remove("oldObject");
    let mut r = RequestIn::deserialize(&Value::Object(request)).map_err(|e| {
        Box::new(admission_unreadable(
            400,
            format!("AdmissionReview request is malformed: {e}"),
            uid,
            "",
        ))
    })?;
    r.object = object.filter(|o| !o.is_null());
    r.old_object = old_object.filter(|o| !o.is_null());
    Ok(r)
}

fn base_outcome(req: &RequestIn) -> Outcome {
    Outcome {
        uid: req.uid.clone(),
        namespace: req.namespace.clone().unwrap_or_default(),
        name: req.name.clone().unwrap_or_default(),
        operation: op_str(&req.operation),
        dry_run: req.dry_run.unwrap_or(false),
        ..Default::default()
    }
}

/// Why `obj` (the request's `what`: `object` or `oldObject`) is not something this endpoint
/// decides on: the request is not for a ray.io `kind` (named by `request.kind`), or the object
/// itself is not one (named by the object's own `kind`). Shared by validate and mutate, so both
/// say the same thing.
fn kind_mismatch(kind: Kind, req: &RequestIn, obj: &Value, what: &str) -> Option<String> {
    let name = kind.name();
    if req.kind.group != conversion::GROUP || req.kind.kind != name {
        return Some(format!(
            "this webhook only handles ray.io {name}, got {}/{} {}",
            req.kind.group, req.kind.version, req.kind.kind
        ));
    }
    let got = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    if !obj.is_object() || got != name {
        return Some(format!("request.{what} is not a {name} (kind {got:?})"));
    }
    None
}

/// Checks the request targets `kind` and returns the object as `ray.io/v1`.
fn object_v1(kind: Kind, req: &RequestIn, obj: Value, what: &str) -> Result<Value, String> {
    if let Some(msg) = kind_mismatch(kind, req, &obj, what) {
        return Err(msg);
    }
    let av = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if av == conversion::V1 {
        return Ok(obj);
    }
    if !conversion::CONVERTIBLE_KINDS.contains(&kind.name()) {
        return Err(format!(
            "request.{what}: apiVersion {av:?} is not {} ({} is served only as v1)",
            conversion::V1,
            kind.name()
        ));
    }
    conversion::convert_owned(obj, conversion::V1).map_err(|e| format!("request.{what}: {e}"))
}

/// The deprecation warning of a `ray.io/v1alpha1` request for `kind`.
fn v1alpha1_deprecated(kind: Kind) -> String {
    match kind {
        Kind::RayCluster => V1ALPHA1_DEPRECATED.to_string(),
        k => format!(
            "ray.io/v1alpha1 {0} is deprecated; use ray.io/v1 {0}",
            k.name()
        ),
    }
}

fn is_v1alpha1_request(req: &RequestIn) -> bool {
    req.kind.version == "v1alpha1"
        || req
            .request_kind
            .as_ref()
            .is_some_and(|k| k.version == "v1alpha1")
        || req
            .object
            .as_ref()
            .and_then(|o| o.get("apiVersion"))
            .and_then(Value::as_str)
            == Some(conversion::V1ALPHA1)
}

/// Handles `POST /validate-ray-io-v1-raycluster`.
pub fn validate(body: &[u8], cfg: &AdmissionConfig) -> Reply {
    validate_kind(Kind::RayCluster, body, cfg)
}

/// Handles `POST /validate-ray-io-v1-<kind>` (see [`validate_path`]): CRD defaults applied as
/// the API server does, then every rule of `kind` ([`crate::rules::kinds::validate_kind`]; for
/// RayJob, RayService and RayCronJob also the RayCluster rules on the embedded spec, with its
/// field paths).
pub fn validate_kind(kind: Kind, body: &[u8], cfg: &AdmissionConfig) -> Reply {
    let mut req = match parse_admission(body, false) {
        Ok(r) => r,
        Err(reply) => return *reply,
    };
    let mut outcome = base_outcome(&req);
    let allow = |outcome: Outcome, warnings: Vec<String>| Reply {
        status: 200,
        body: allowed_body(&req.uid, None, &warnings),
        outcome: Outcome {
            decision: "allowed",
            ..outcome
        },
    };
    if !matches!(req.operation, Operation::Create | Operation::Update) || req.sub_resource.is_some()
    {
        return allow(outcome, Vec::new());
    }
    let v1alpha1 = is_v1alpha1_request(&req);
    let Some(raw) = req.object.take().filter(|o| !o.is_null()) else {
        return admission_refuse(&req.uid, 400, "request.object is missing".into(), outcome);
    };
    let mut obj = match object_v1(kind, &req, raw, "object") {
        Ok(o) => o,
        Err(msg) => return admission_refuse(&req.uid, 400, msg, outcome),
    };
    if outcome.name.is_empty() {
        outcome.name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
    }
    crate::defaulting::apply_crd_defaults_kind(kind, &mut obj);
    let old = match (&req.operation, req.old_object.take()) {
        (Operation::Update, Some(o)) if !o.is_null() => {
            match object_v1(kind, &req, o, "oldObject") {
                Ok(mut o) => {
                    crate::defaulting::apply_crd_defaults_kind(kind, &mut o);
                    Some(o)
                }
                Err(msg) => return admission_refuse(&req.uid, 400, msg, outcome),
            }
        }
        _ => None,
    };
    let violations = crate::rules::kinds::validate_kind(kind, &obj, old.as_ref(), &cfg.validate);
    let mut warnings: Vec<String> = Vec::new();
    if v1alpha1 {
        warnings.push(v1alpha1_deprecated(kind));
    }
    let (errors, warns): (Vec<&Violation>, Vec<&Violation>) = violations
        .iter()
        .partition(|v| v.severity == Severity::Error);
    warnings.extend(warns.iter().map(|v| format!("{}: {}", v.path, v.message)));
    let warnings = limit_warnings(warnings);
    if errors.is_empty() {
        return allow(outcome, warnings);
    }
    outcome.violations = errors.iter().map(|v| v.rule.clone()).collect();
    let name = outcome.name.clone();
    let mut resp = allowed_response(&req.uid);
    resp.allowed = false;
    resp.result = invalid_status_kind(kind, &name, &obj, &errors);
    if !warnings.is_empty() {
        resp.warnings = Some(warnings);
    }
    Reply {
        status: 200,
        body: json_bytes(&resp.into_review()),
        outcome: Outcome {
            decision: "denied",
            ..outcome
        },
    }
}

/// Kubernetes `NewInvalid` status for a RayCluster: 422, reason Invalid, one cause per error,
/// capped (issue #14.8) with the limits the API server puts on the text it relays:
/// at most [`MAX_CAUSES`] causes (its audit annotation of policy failures keeps 50), each cause
/// message at most [`MAX_CAUSE_LEN`] characters (a warning once it truncates), and a message
/// of at most [`MAX_DENIAL_MESSAGE`] bytes (the longest denial message a policy may produce).
/// What is left out is counted in a final `… and N more` (message and causes).
pub fn invalid_status(name: &str, obj: &Value, errors: &[&Violation]) -> Status {
    invalid_status_kind(Kind::RayCluster, name, obj, errors)
}

/// [`invalid_status`] for an object of `kind` (`RayJob.ray.io "x" is invalid: …`), capped alike.
pub fn invalid_status_kind(kind: Kind, name: &str, obj: &Value, errors: &[&Violation]) -> Status {
    let name = truncate_chars(name, 253);
    let prefix = format!("{}.ray.io {name:?} is invalid: ", kind.name());
    let mut causes: Vec<StatusCause> = errors
        .iter()
        .take(MAX_CAUSES)
        .map(|v| StatusCause {
            reason: "FieldValueInvalid".into(),
            message: truncate_chars(
                &format!(
                    "Invalid value: {}: {}",
                    render_value(lookup_path(obj, &v.path)),
                    v.message
                ),
                MAX_CAUSE_LEN,
            ),
            field: truncate_chars(&v.path, MAX_CAUSE_LEN),
        })
        .collect();
    // the message lists causes while they fit, leaving room for the tail
    let budget = MAX_DENIAL_MESSAGE - prefix.len() - TAIL_ROOM;
    let mut items: Vec<String> = Vec::new();
    let mut used = 0;
    for c in &causes {
        let item = format!("{}: {}", c.field, c.message);
        if used + item.len() + 2 > budget {
            break;
        }
        used += item.len() + 2;
        items.push(item);
    }
    let omitted = errors.len() - items.len();
    let list = match (items.len(), omitted) {
        (1, 0) => items.pop().unwrap_or_default(),
        (_, 0) => format!("[{}]", items.join(", ")),
        (0, n) => format!("[{}]", more_tail(n)),
        (_, n) => format!("[{}, {}]", items.join(", "), more_tail(n)),
    };
    if errors.len() > causes.len() {
        causes.push(StatusCause {
            reason: String::new(),
            message: more_tail(errors.len() - causes.len()),
            field: String::new(),
        });
    }
    Status {
        status: Some(StatusSummary::Failure),
        code: 422,
        message: format!("{prefix}{list}"),
        metadata: None,
        reason: "Invalid".into(),
        details: Some(StatusDetails {
            name,
            group: conversion::GROUP.into(),
            kind: kind.name().into(),
            uid: String::new(),
            causes,
            retry_after_seconds: 0,
        }),
    }
}

/// Room kept at the end of a capped denial message for its `… and N more]`.
const TAIL_ROOM: usize = 32;

fn more_tail(n: usize) -> String {
    format!("\u{2026} and {n} more")
}

/// Follows a Kubernetes field path (`spec.workerGroupSpecs[1].minReplicas`,
/// `metadata.labels[ray.io/x]`) into `obj`.
pub fn lookup_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let key = &r[..end];
            cur = match cur {
                Value::Array(a) => a.get(key.parse::<usize>().ok()?)?,
                Value::Object(m) => m.get(key.trim_matches('"'))?,
                _ => return None,
            };
            rest = &r[end + 1..];
        } else {
            let r = rest.strip_prefix('.').unwrap_or(rest);
            let end = r.find(['.', '[']).unwrap_or(r.len());
            cur = cur.as_object()?.get(&r[..end])?;
            rest = &r[end..];
        }
    }
    Some(cur)
}

/// Renders a value like apimachinery's `field.Invalid` (strings quoted), compacting
/// objects and arrays to at most 80 characters.
fn render_value(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "null".into(),
        Some(Value::String(s)) => format!("{s:?}"),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(other) => {
            let s = other.to_string();
            truncate_chars(&s, 80)
        }
    }
}

fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(3)).collect();
    out.push_str("...");
    out
}

/// Applies the API server's limits: each warning ≤ 256 characters, all together ≤ 4096.
pub fn limit_warnings(warnings: Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut total = 0;
    let n = warnings.len();
    for (i, w) in warnings.into_iter().enumerate() {
        let w = truncate_chars(&w, MAX_WARNING_LEN);
        let len = w.chars().count();
        // keep room for the "N more" note
        if total + len > MAX_WARNINGS_TOTAL - 40 {
            out.push(format!("{} more warnings omitted", n - i));
            break;
        }
        total += len;
        out.push(w);
    }
    out
}

/// Handles `POST /mutate-ray-io-v1-raycluster`: the core's defaulting and the autoscaler opt-in
/// ([`crate::defaulting::mutation`]) as a base64 JSONPatch, with its warnings.
///
/// `oldObject` is not built: the patch depends on the object alone.
pub fn mutate(body: &[u8], cfg: &AdmissionConfig) -> Reply {
    mutate_kind(Kind::RayCluster, body, cfg)
}

/// Handles `POST /mutate-ray-io-v1-<kind>` (see [`mutate_path`]): the CRD defaults of `kind`
/// and, for RayJob, RayService and RayCronJob, the RayCluster defaults of the embedded spec
/// (autoscaler `IfNotPresent`/500m/512Mi where `enableInTreeAutoscaling` is on), as a base64
/// JSONPatch ([`crate::defaulting::default_patch_kind`]); no patch for an object already
/// defaulted.
pub fn mutate_kind(kind: Kind, body: &[u8], cfg: &AdmissionConfig) -> Reply {
    let mut req = match parse_admission(body, true) {
        Ok(r) => r,
        Err(reply) => return *reply,
    };
    let outcome = base_outcome(&req);
    if !matches!(req.operation, Operation::Create | Operation::Update) || req.sub_resource.is_some()
    {
        return Reply {
            status: 200,
            body: allowed_body(&req.uid, None, &[]),
            outcome: Outcome {
                decision: "allowed",
                ..outcome
            },
        };
    }
    let Some(raw) = req.object.take() else {
        return admission_refuse(&req.uid, 400, "request.object is missing".into(), outcome);
    };
    if let Some(msg) = kind_mismatch(kind, &req, &raw, "object") {
        return admission_refuse(&req.uid, 400, msg, outcome);
    }
    if raw.get("apiVersion").and_then(Value::as_str) != Some(conversion::V1) {
        // The configuration uses matchPolicy Equivalent, so objects arrive as ray.io/v1; a
        // patch against any other version would target the wrong schema.
        return admission_refuse(
            &req.uid,
            400,
            "request.object is not ray.io/v1 (configure matchPolicy: Equivalent)".into(),
            outcome,
        );
    }
    // RayClusters get the raygate.io/autoscaler opt-in too (it is a RayCluster annotation);
    // the other kinds their own and their embedded spec's defaults.
    let crate::defaulting::Mutation { patch, warnings } = if kind == Kind::RayCluster {
        crate::defaulting::mutation(&raw, &cfg.opt_in)
    } else {
        crate::defaulting::Mutation {
            patch: crate::defaulting::default_patch_kind(kind, &raw),
            warnings: Vec::new(),
        }
    };
    let warnings = limit_warnings(warnings);
    if patch.0.is_empty() {
        return Reply {
            status: 200,
            body: allowed_body(&req.uid, None, &warnings),
            outcome: Outcome {
                decision: "unchanged",
                ..outcome
            },
        };
    }
    let patch = match serde_json::to_vec(&patch) {
        Ok(p) => p,
        Err(e) => {
            return admission_refuse(
                &req.uid,
                500,
                format!("failed to encode patch: {e}"),
                outcome,
            );
        }
    };
    Reply {
        status: 200,
        body: allowed_body(&req.uid, Some(&patch), &warnings),
        outcome: Outcome {
            decision: "patched",
            ..outcome
        },
    }
}

/// The AdmissionReview of an allowed request, written directly: byte for byte what kube's
/// `AdmissionResponse` (uid, `allowed: true`, empty status, then the patch as base64 with
/// `patchType: JSONPatch`, then the warnings) serialises to, with the patch as the base64
/// string the API documents (see [`base64_patch`]).
pub fn allowed_body(uid: &str, patch: Option<&[u8]>, warnings: &[String]) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + uid.len() + patch.map_or(0, |p| p.len() / 3 * 4 + 48));
    out.extend_from_slice(
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"#,
    );
    // serde_json escapes strings exactly as the serialised struct would
    let _ = serde_json::to_writer(&mut out, uid);
    out.extend_from_slice(br#","allowed":true,"status":{}"#);
    if let Some(p) = patch {
        out.extend_from_slice(br#","patch":""#);
        let at = out.len();
        out.resize(at + base64::encoded_len(p.len(), true).unwrap_or(0), 0);
        let n = base64::engine::general_purpose::STANDARD
            .encode_slice(p, &mut out[at..])
            .unwrap_or(0);
        out.truncate(at + n);
        out.extend_from_slice(br#"","patchType":"JSONPatch""#);
    }
    if !warnings.is_empty() {
        out.extend_from_slice(br#","warnings":"#);
        let _ = serde_json::to_writer(&mut out, warnings);
    }
    out.extend_from_slice(b"}}");
    out
}

/// Replaces `response.patch` (kube's array of byte values) with the base64 string the
/// AdmissionReview API documents (kube-rs#1781).
pub fn base64_patch(review: &mut Value) {
    let Some(p) = review.pointer_mut("/response/patch") else {
        return;
    };
    if let Value::Array(items) = p {
        let bytes: Option<Vec<u8>> = items
            .iter()
            .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
            .collect();
        if let Some(bytes) = bytes {
            *p = Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
        }
    }
}

fn conversion_reply(status: u16, resp: ConversionResponse, outcome: Outcome) -> Reply {
    let mut review = resp.into_review();
    review.types.api_version = CONVERSION_API_VERSION.into();
    review.types.kind = "ConversionReview".into();
    Reply {
        status,
        body: json_bytes(&review),
        outcome,
    }
}

fn conversion_invalid(status: u16, uid: String, msg: String) -> Reply {
    let mut resp = ConversionResponse::invalid(Status::failure(&msg, "BadRequest"));
    resp.result.code = status;
    resp.uid = uid.clone();
    conversion_reply(
        status,
        resp,
        Outcome {
            uid,
            operation: "CONVERT",
            decision: "invalid",
            detail: msg,
            ..Default::default()
        },
    )
}

/// Handles `POST /convert`: every object or none.
pub fn convert(body: &[u8]) -> Reply {
    // Conversion returns the objects whole: nothing is elided.
    let v: Value = match read_json(body, &[], &[]) {
        Ok(v) => v,
        Err(e) => {
            return conversion_invalid(
                400,
                String::new(),
                format!("request body is not valid JSON: {e}"),
            );
        }
    };
    let uid = v
        .pointer("/request/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let av = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    if av != CONVERSION_API_VERSION || kind != "ConversionReview" {
        return conversion_invalid(
            400,
            uid,
            format!(
                "expected apiVersion {CONVERSION_API_VERSION:?} and kind \"ConversionReview\", \
                 got apiVersion {av:?} and kind {kind:?}"
            ),
        );
    }
    // The objects are taken out first, so the envelope is read without copying them.
    let mut v = v;
    let objects = match v.pointer_mut("/request/objects") {
        Some(o @ Value::Array(_)) => match std::mem::replace(o, Value::Array(Vec::new())) {
            Value::Array(a) => Some(a),
            _ => None,
        },
        _ => None,
    };
    let review: ConversionReview = match serde_json::from_value(v) {
        Ok(r) => r,
        Err(e) => {
            return conversion_invalid(400, uid, format!("ConversionReview is malformed: {e}"));
        }
    };
    let mut req = match ConversionRequest::from_review(review) {
        Ok(r) => r,
        Err(_) => return conversion_invalid(400, uid, "ConversionReview has no request".into()),
    };
    if uid.is_empty() {
        return conversion_invalid(400, uid, "ConversionReview request has no uid".into());
    }
    let desired = req.desired_api_version.clone();
    // Each object is converted in place (moved, not copied).
    let objects = objects.unwrap_or_else(|| std::mem::take(&mut req.objects));
    let mut converted = Vec::with_capacity(objects.len());
    let mut failure = None;
    for (i, obj) in objects.into_iter().enumerate() {
        let meta = |key: &str| {
            obj.pointer(key)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let (ns, name) = (meta("/metadata/namespace"), meta("/metadata/name"));
        match conversion::convert_owned(obj, &desired) {
            Ok(o) => converted.push(o),
            Err(e) => {
                failure = Some(format!(
                    "object {i} ({ns}/{name}) cannot be converted to {desired}: {e}"
                ));
                break;
            }
        }
    }
    let outcome = Outcome {
        uid: uid.clone(),
        operation: "CONVERT",
        ..Default::default()
    };
    match failure {
        None => conversion_reply(
            200,
            ConversionResponse::for_request(req).success(converted),
            Outcome {
                decision: "converted",
                ..outcome
            },
        ),
        Some(msg) => {
            let mut st = Status::failure(&msg, "BadRequest");
            st.code = 400;
            conversion_reply(
                200,
                ConversionResponse::for_request(req).failure(st),
                Outcome {
                    decision: "failed",
                    detail: msg,
                    ..outcome
                },
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What the handlers sent before `allowed_body`: kube's response, patch made base64.
    fn reference_allowed(uid: &str, patch: Option<&[u8]>, warnings: &[String]) -> Vec<u8> {
        let mut r = allowed_response(uid);
        if !warnings.is_empty() {
            r.warnings = Some(warnings.to_vec());
        }
        if let Some(p) = patch {
            r = r.with_patch(serde_json::from_slice(p).unwrap()).unwrap();
        }
        let mut v = serde_json::to_value(r.into_review()).unwrap();
        base64_patch(&mut v);
        json_bytes(&v)
    }

    #[test]
    fn allowed_body_is_what_kube_serialises() {
        let patch = serde_json::to_vec(&json!([
            {"op": "add", "path": "/spec/workerGroupSpecs/0/numOfHosts", "value": 1},
            {"op": "add", "path": "/spec/a~1b", "value": {"x": "é\"\n"}}
        ]))
        .unwrap();
        let warnings = ["w".to_string(), "with \"quotes\" and é\u{1}".to_string()];
        for uid in [
            "",
            "bench",
            "a\"b\\c",
            "é\u{2028}\n\t\u{1}/<>",
            &"u".repeat(300),
        ] {
            for p in [None, Some(&patch[..]), Some(&b"[]"[..])] {
                for w in [&[][..], &warnings[..]] {
                    assert_eq!(
                        String::from_utf8(allowed_body(uid, p, w)).unwrap(),
                        String::from_utf8(reference_allowed(uid, p, w)).unwrap()
                    );
                }
            }
        }
    }

    fn review_body(object: &str) -> Vec<u8> {
        format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u\u00e9","kind":{{"group":"ray.io","version":"v1","kind":"RayCluster"}},"name":"caf\u00e9","namespace":"ns","operation":"CREATE","userInfo":{{"username":"a"}},"object":{object},"oldObject":null}}}}"#
        )
        .into_bytes()
    }

    /// mutate's reply computed the old way: the whole object as a `Value`.
    fn reference_mutate(body: &[u8]) -> Vec<u8> {
        let v: Value = serde_json::from_slice(body).unwrap();
        let req = &v["request"];
        let patch = crate::defaulting::default_patch(&req["object"]);
        let uid = req["uid"].as_str().unwrap();
        if patch.0.is_empty() {
            reference_allowed(uid, None, &[])
        } else {
            reference_allowed(uid, Some(&serde_json::to_vec(&patch).unwrap()), &[])
        }
    }

    #[test]
    fn mutate_reads_only_what_the_patch_needs_and_the_same_way() {
        let big = "x\\\"y\\u00e9".repeat(100_000); // ~1 MB of escapes in an annotation
        let cases = [
            // plain, with escaped member names and strings
            r#"{"apiVersion":"ray.io/v1","kind":"RayCluster","metadata":{"name":"caf\u00e9"},"spec":{"workerGroupSpecs":[{"groupName":"g"}]}}"#.to_string(),
            r#"{"apiVersion":"ray.io/v1","k\u0069nd":"RayCluster","sp\u0065c":{"enableInTreeAutoscaling":true,"workerGroupSpecs":[{"replicas":null}]}}"#.to_string(),
            // a repeated member: the last one wins, as in a Value
            r#"{"apiVersion":"ray.io/v1","kind":"RayCluster","spec":{"workerGroupSpecs":[{}]},"spec":{}}"#.to_string(),
            r#"{"apiVersion":"ray.io/v1","kind":"RayCluster","spec":{},"spec":{"workerGroupSpecs":[{}]}}"#.to_string(),
            // nothing to default
            r#"{"apiVersion":"ray.io/v1","kind":"RayCluster","spec":{"headGroupSpec":{}}}"#.to_string(),
            r#"{"apiVersion":"ray.io/v1","kind":"RayCluster","spec":null}"#.to_string(),
            // a large body
            format!(
                r#"{{"apiVersion":"ray.io/v1","kind":"RayCluster","metadata":{{"annotations":{{"a":"{big}"}}}},"status":[1,2,{{"x":[]}}],"spec":{{"workerGroupSpecs":[{{}},{{"minReplicas":1}}]}}}}"#
            ),
        ];
        for obj in &cases {
            let body = review_body(obj);
            let r = mutate(&body, &AdmissionConfig::default());
            assert_eq!(r.status, 200);
            assert_eq!(
                String::from_utf8(r.body).unwrap(),
                String::from_utf8(reference_mutate(&body)).unwrap(),
                "object {}",
                &obj[..obj.len().min(200)]
            );
            assert_eq!(r.outcome.uid, "ué");
            assert_eq!(r.outcome.name, "café");
        }
        // the big one is large and patched
        let r = mutate(&review_body(&cases[6]), &AdmissionConfig::default());
        assert_eq!(r.outcome.decision, "patched");
        assert!(review_body(&cases[6]).len() > 1_000_000);
        assert_eq!(
            validate(&review_body(&cases[6]), &AdmissionConfig::default())
                .outcome
                .name,
            "café"
        );
    }

    #[test]
    fn mutate_refuses_what_a_value_refuses_in_skipped_members() {
        // Members mutate does not build are still checked like a Value: bad numbers, bad
        // escapes and invalid UTF-8 in `metadata` make the body unreadable, as before.
        let cfg = AdmissionConfig::default();
        let mut bad_utf8 = review_body(
            r#"{"apiVersion":"ray.io/v1","kind":"RayCluster","metadata":{"name":"XX"},"spec":{}}"#,
        );
        let at = bad_utf8.windows(2).position(|w| w == b"XX").unwrap();
        bad_utf8[at] = 0xff;
        let bodies = [
            review_body(
                r#"{"apiVersion":"ray.io/v1","kind":"RayCluster","metadata":{"x":1e999},"spec":{}}"#,
            ),
            review_body(
                r#"{"apiVersion":"ray.io/v1","kind":"RayCluster","metadata":{"x":"\q"},"spec":{}}"#,
            ),
            bad_utf8,
        ];
        for body in bodies {
            for r in [mutate(&body, &cfg), validate(&body, &cfg)] {
                assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
                assert_eq!(r.outcome.decision, "invalid");
                assert!(
                    r.outcome
                        .detail
                        .starts_with("request body is not valid JSON"),
                    "{}",
                    r.outcome.detail
                );
            }
        }
        // not an object: refused with the kind message, as validate does
        let r = mutate(&review_body("[1,{}]"), &cfg);
        assert_eq!(r.status, 200);
        assert_eq!(
            r.outcome.detail,
            "request.object is not a RayCluster (kind \"\")"
        );
        assert_eq!(
            r.outcome.detail,
            validate(&review_body("[1,{}]"), &cfg).outcome.detail
        );
    }

    /// Issue #14 (6): mutate named `request.kind` ("got ray.io/v1 RayCluster") for an object
    /// that is a Pod; both handlers now name what is wrong, in the same words.
    #[test]
    fn wrong_kind_messages_name_the_object_and_agree() {
        let cfg = AdmissionConfig::default();
        let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}"#;
        // request.kind says RayCluster, the object is a Pod
        let body = review_body(pod);
        let (v, m) = (validate(&body, &cfg), mutate(&body, &cfg));
        assert_eq!(
            m.outcome.detail,
            "request.object is not a RayCluster (kind \"Pod\")"
        );
        assert_eq!(v.outcome.detail, m.outcome.detail);
        let reply: Value = serde_json::from_slice(&m.body).unwrap();
        assert_eq!(
            reply["response"]["status"]["message"],
            "request.object is not a RayCluster (kind \"Pod\")"
        );
        // request.kind is a Pod: the request kind is what is named
        let body = String::from_utf8(body)
            .unwrap()
            .replace(
                r#""kind":{"group":"ray.io","version":"v1","kind":"RayCluster"}"#,
                r#""kind":{"group":"","version":"v1","kind":"Pod"}"#,
            )
            .into_bytes();
        let (v, m) = (validate(&body, &cfg), mutate(&body, &cfg));
        assert_eq!(
            m.outcome.detail,
            "this webhook only handles ray.io RayCluster, got /v1 Pod"
        );
        assert_eq!(v.outcome.detail, m.outcome.detail);
    }
    #[test]
    fn paths_resolve() {
        let o = json!({"spec": {"workerGroupSpecs": [{"a": 1}, {"minReplicas": 5}]},
                       "metadata": {"labels": {"ray.io/x": "y"}}});
        assert_eq!(
            lookup_path(&o, "spec.workerGroupSpecs[1].minReplicas"),
            Some(&json!(5))
        );
        assert_eq!(
            lookup_path(&o, "metadata.labels[ray.io/x]"),
            Some(&json!("y"))
        );
        assert_eq!(lookup_path(&o, "spec.nope"), None);
        assert_eq!(lookup_path(&o, "spec.workerGroupSpecs[9]"), None);
        assert_eq!(lookup_path(&o, "spec.workerGroupSpecs[x"), None);
    }

    #[test]
    fn warnings_are_limited() {
        let w = limit_warnings(vec!["x".repeat(1000); 40]);
        assert!(w.iter().all(|w| w.chars().count() <= MAX_WARNING_LEN));
        assert!(w.iter().map(|w| w.chars().count()).sum::<usize>() <= MAX_WARNINGS_TOTAL);
        assert!(w.last().unwrap().ends_with("more warnings omitted"));
        assert_eq!(limit_warnings(vec!["a".into()]), vec!["a".to_string()]);
    }

    #[test]
    fn patch_becomes_base64() {
        let mut v = json!({"response": {"patch": [91, 93]}});
        base64_patch(&mut v);
        assert_eq!(v["response"]["patch"], "W10=");
    }

    #[test]
    fn invalid_status_shape() {
        let o =
            json!({"metadata": {"name": "c"}, "spec": {"workerGroupSpecs": [{"minReplicas": 3}]}});
        let v1 = Violation::error("W5", "spec.workerGroupSpecs[0].minReplicas", "too big");
        let v2 = Violation::error("M1", "metadata.name", "bad name");
        let st = invalid_status("c", &o, &[&v1, &v2]);
        assert_eq!(st.code, 422);
        assert_eq!(st.reason, "Invalid");
        assert_eq!(
            st.message,
            "RayCluster.ray.io \"c\" is invalid: [spec.workerGroupSpecs[0].minReplicas: \
             Invalid value: 3: too big, metadata.name: Invalid value: \"c\": bad name]"
        );
        let d = st.details.unwrap();
        assert_eq!(d.causes.len(), 2);
        assert_eq!(d.group, "ray.io");
        let st = invalid_status("c", &o, &[&v2]);
        assert_eq!(
            st.message,
            "RayCluster.ray.io \"c\" is invalid: metadata.name: Invalid value: \"c\": bad name"
        );
    }
}
