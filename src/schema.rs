//! JSON Schemas of the RayCluster model: generation (from the Rust types, via schemars), the
//! committed copies under `schemas/` (embedded with `include_str!`), and validation of objects
//! against them with `jsonschema` (compiled once per process, lazily).
//!
//! Validation always runs against a *strict* variant of the schema (every object schema that
//! lists `properties` gets `additionalProperties: false`), so unknown fields are found; the
//! caller decides whether they are errors (`--strict`) or warnings (kubectl's default
//! `--validate=warn` behaviour: the API server prunes them with a warning).

use jsonschema::Validator;
use serde_json::Value;
use std::sync::OnceLock;

/// The committed schema for `ray.io/v1`.
pub const V1_JSON: &str = include_str!("../schemas/raycluster.v1.json");
/// The committed schema for `ray.io/v1alpha1`.
pub const V1ALPHA1_JSON: &str = include_str!("../schemas/raycluster.v1alpha1.json");

/// The committed schemas of the other kinds, `(kind, apiVersion, file name, contents)`.
pub const KIND_SCHEMAS: &[(&str, &str, &str, &str)] = &[
    (
        "RayJob",
        "ray.io/v1",
        "rayjob.v1.json",
        include_str!("../schemas/rayjob.v1.json"),
    ),
    (
        "RayJob",
        "ray.io/v1alpha1",
        "rayjob.v1alpha1.json",
        include_str!("../schemas/rayjob.v1alpha1.json"),
    ),
    (
        "RayService",
        "ray.io/v1",
        "rayservice.v1.json",
        include_str!("../schemas/rayservice.v1.json"),
    ),
    (
        "RayService",
        "ray.io/v1alpha1",
        "rayservice.v1alpha1.json",
        include_str!("../schemas/rayservice.v1alpha1.json"),
    ),
    (
        "RayCronJob",
        "ray.io/v1",
        "raycronjob.v1.json",
        include_str!("../schemas/raycronjob.v1.json"),
    ),
];

/// File names under `schemas/`, with the API version they describe (RayCluster first).
pub const FILES: &[(&str, &str)] = &[
    ("raycluster.v1.json", "ray.io/v1"),
    ("raycluster.v1alpha1.json", "ray.io/v1alpha1"),
    ("rayjob.v1.json", "ray.io/v1"),
    ("rayjob.v1alpha1.json", "ray.io/v1alpha1"),
    ("rayservice.v1.json", "ray.io/v1"),
    ("rayservice.v1alpha1.json", "ray.io/v1alpha1"),
    ("raycronjob.v1.json", "ray.io/v1"),
];

/// Generates the schema of a type as committed (pretty JSON, trailing newline).
pub fn render<T: schemars::JsonSchema>() -> String {
    let schema = schemars::schema_for!(T);
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_else(|_| "{}".to_string());
    s.push('\n');
    s
}

/// The schemas generated from the current Rust model, `(file name, contents)`.
pub fn generate_all() -> Vec<(&'static str, String)> {
    vec![
        (FILES[0].0, render::<crate::model::v1::RayCluster>()),
        (FILES[1].0, render::<crate::model::v1alpha1::RayCluster>()),
        (FILES[2].0, render::<crate::model::v1::RayJob>()),
        (FILES[3].0, render::<crate::model::v1alpha1::RayJob>()),
        (FILES[4].0, render::<crate::model::v1::RayService>()),
        (FILES[5].0, render::<crate::model::v1alpha1::RayService>()),
        (FILES[6].0, render::<crate::model::v1::RayCronJob>()),
    ]
}

/// One schema problem in an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    /// `SCHEMA-TYPE`, `SCHEMA-ENUM`, `SCHEMA-REQUIRED`, `SCHEMA-UNKNOWN-FIELD`, `SCHEMA-FORMAT`
    /// or `SCHEMA` (anything else).
    pub rule: &'static str,
    /// Field path in Kubernetes notation (`spec.workerGroupSpecs[0].replicas`).
    pub path: String,
    pub message: String,
}

/// Rewrites a schema so that objects with declared `properties` reject other properties.
pub fn strictify(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let has_props = m.get("properties").is_some_and(Value::is_object);
            if has_props {
                m.insert("additionalProperties".into(), Value::Bool(false));
            }
            for (_, child) in m.iter_mut() {
                strictify(child);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strictify),
        _ => {}
    }
}

/// Rewrites `anyOf: [X, {type: null}]` (how schemars spells `Option<X>`) to `X`, so that errors
/// inside `X` are reported at their field instead of as one opaque `anyOf` failure. Callers
/// drop `null` values from objects first ([`drop_nulls`]), as the API server does for fields
/// that are not `nullable`.
pub fn unwrap_optional(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let replacement = match m.get("anyOf") {
                Some(Value::Array(alts)) if alts.len() == 2 => {
                    let is_null = |a: &Value| a.get("type").and_then(Value::as_str) == Some("null");
                    match (is_null(&alts[0]), is_null(&alts[1])) {
                        (false, true) => Some(alts[0].clone()),
                        (true, false) => Some(alts[1].clone()),
                        _ => None,
                    }
                }
                _ => None,
            };
            if let Some(Value::Object(inner)) = replacement {
                m.remove("anyOf");
                for (k, x) in inner {
                    m.entry(k).or_insert(x);
                }
            }
            for (_, child) in m.iter_mut() {
                unwrap_optional(child);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(unwrap_optional),
        _ => {}
    }
}

/// Removes `null`-valued object entries, recursively (the API server prunes them for fields
/// that are not `nullable`, before defaulting and validation).
pub fn drop_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(drop_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// A compiled schema.
pub struct Compiled {
    validator: Validator,
}

fn compile(src: &str) -> Result<Compiled, String> {
    let mut v: Value =
        serde_json::from_str(src).map_err(|e| format!("embedded schema is not JSON: {e}"))?;
    unwrap_optional(&mut v);
    strictify(&mut v);
    let validator = jsonschema::options()
        .build(&v)
        .map_err(|e| format!("embedded schema does not compile: {e}"))?;
    Ok(Compiled { validator })
}

/// The compiled schema for `api_version` (`ray.io/v1` or `ray.io/v1alpha1`).
pub fn compiled(api_version: &str) -> Result<&'static Compiled, String> {
    static V1: OnceLock<Result<Compiled, String>> = OnceLock::new();
    static V1A1: OnceLock<Result<Compiled, String>> = OnceLock::new();
    let slot = match api_version {
        "ray.io/v1" => V1.get_or_init(|| compile(V1_JSON)),
        "ray.io/v1alpha1" => V1A1.get_or_init(|| compile(V1ALPHA1_JSON)),
        other => return Err(format!("no schema for apiVersion {other:?}")),
    };
    slot.as_ref().map_err(Clone::clone)
}

/// The compiled schema for `kind` (`RayCluster`, `RayJob`, `RayService`, `RayCronJob`) at
/// `api_version`.
pub fn compiled_kind(kind: &str, api_version: &str) -> Result<&'static Compiled, String> {
    if kind == "RayCluster" {
        return compiled(api_version);
    }
    static SLOTS: [OnceLock<Result<Compiled, String>>; 5] = [const { OnceLock::new() }; 5];
    let Some(i) = KIND_SCHEMAS
        .iter()
        .position(|(k, a, _, _)| *k == kind && *a == api_version)
    else {
        return Err(format!("no schema for {kind} {api_version:?}"));
    };
    SLOTS[i]
        .get_or_init(|| compile(KIND_SCHEMAS[i].3))
        .as_ref()
        .map_err(Clone::clone)
}

/// Appends `.name` or `[i]` to a Kubernetes-style path.
pub fn push_segment(path: &mut String, seg: &jsonschema::paths::LocationSegment<'_>) {
    use jsonschema::paths::LocationSegment;
    match seg {
        LocationSegment::Index(i) => {
            path.push('[');
            path.push_str(&i.to_string());
            path.push(']');
        }
        LocationSegment::Property(p) => push_field(path, p),
    }
}

fn push_field(path: &mut String, p: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(p);
}

impl Compiled {
    /// Every schema problem of `obj`, in a stable order, deduplicated.
    pub fn check(&self, obj: &Value) -> Vec<SchemaError> {
        use jsonschema::error::ValidationErrorKind as K;
        if self.validator.is_valid(obj) {
            return Vec::new();
        }
        let mut out: Vec<SchemaError> = Vec::new();
        for e in self.validator.iter_errors(obj) {
            let mut path = String::new();
            for seg in e.instance_path().iter() {
                push_segment(&mut path, &seg);
            }
            match e.kind() {
                K::AdditionalProperties { unexpected } => {
                    for u in unexpected {
                        let mut p = path.clone();
                        push_field(&mut p, u);
                        out.push(SchemaError {
                            rule: "SCHEMA-UNKNOWN-FIELD",
                            message: format!("unknown field \"{p}\""),
                            path: p,
                        });
                    }
                }
                K::Required { property } => {
                    let name = property
                        .as_str()
                        .map_or_else(|| property.to_string(), str::to_string);
                    let mut p = path.clone();
                    push_field(&mut p, &name);
                    out.push(SchemaError {
                        rule: "SCHEMA-REQUIRED",
                        message: format!("Required value: {p} is required"),
                        path: p,
                    });
                }
                kind => {
                    let rule = match kind {
                        K::Type { .. } => "SCHEMA-TYPE",
                        K::Enum { .. } | K::Constant { .. } => "SCHEMA-ENUM",
                        K::Format { .. } => "SCHEMA-FORMAT",
                        _ => "SCHEMA",
                    };
                    let shown = if path.is_empty() {
                        "<root>"
                    } else {
                        path.as_str()
                    };
                    out.push(SchemaError {
                        rule,
                        message: format!("{shown}: {}", e.masked()),
                        path,
                    });
                }
            }
        }
        // anyOf/oneOf branches can report the same thing twice.
        let mut seen = std::collections::HashSet::new();
        out.retain(|e| seen.insert((e.rule, e.path.clone(), e.message.clone())));
        out
    }
}

/// Property paths and their JSON types in a schema, for comparing our model with the CRD.
/// `$ref`s into `$defs`/`definitions` are followed (cycles cut); `stop` decides where not to
/// descend (e.g. PodTemplateSpec internals). Paths look like `spec.workerGroupSpecs[].replicas`.
pub fn property_types(
    schema: &Value,
    start: &Value,
    prefix: &str,
    stop: &dyn Fn(&str) -> bool,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = Vec::new();
    walk(schema, start, prefix, stop, &mut out, &mut stack);
    out.sort();
    out.dedup();
    out
}

fn resolve<'a>(root: &'a Value, v: &'a Value) -> (&'a Value, Option<String>) {
    if let Some(r) = v.get("$ref").and_then(Value::as_str) {
        let ptr = r.trim_start_matches('#');
        if let Some(t) = root.pointer(ptr) {
            return (t, Some(r.to_string()));
        }
    }
    (v, None)
}

/// The JSON type of a schema node, normalised (`integer`, `string`, `object`, `array`, …;
/// nullable unions reduced to the non-null type; int-or-string spelled `int-or-string`).
pub fn type_of(root: &Value, v: &Value) -> String {
    let (v, _) = resolve(root, v);
    if v.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true) {
        return "int-or-string".into();
    }
    match v.get("type") {
        Some(Value::String(t)) => return t.clone(),
        Some(Value::Array(ts)) => {
            let mut t: Vec<&str> = ts
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .collect();
            t.sort_unstable();
            if t == ["integer", "string"] {
                return "int-or-string".into();
            }
            if t.len() == 1 {
                return t[0].to_string();
            }
            return t.join("|");
        }
        _ => {}
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(alts)) = v.get(key) {
            let mut ts: Vec<String> = alts
                .iter()
                .map(|a| type_of(root, a))
                .filter(|t| t != "null" && !t.is_empty())
                .collect();
            ts.sort();
            ts.dedup();
            if ts == ["integer", "string"] {
                return "int-or-string".into();
            }
            return ts.join("|");
        }
    }
    if v.get("properties").is_some() || v.get("additionalProperties").is_some() {
        return "object".into();
    }
    String::new()
}

fn props_of<'a>(root: &'a Value, v: &'a Value) -> Vec<(&'a String, &'a Value)> {
    let (v, _) = resolve(root, v);
    let mut out = Vec::new();
    if let Some(Value::Object(p)) = v.get("properties") {
        out.extend(p.iter());
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(alts)) = v.get(key) {
            for a in alts {
                out.extend(props_of(root, a));
            }
        }
    }
    out
}

fn items_of<'a>(root: &'a Value, v: &'a Value) -> Option<&'a Value> {
    let (v, _) = resolve(root, v);
    if let Some(i) = v.get("items") {
        return Some(i);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(alts)) = v.get(key) {
            for a in alts {
                if let Some(i) = items_of(root, a) {
                    return Some(i);
                }
            }
        }
    }
    None
}

fn walk(
    root: &Value,
    node: &Value,
    path: &str,
    stop: &dyn Fn(&str) -> bool,
    out: &mut Vec<(String, String)>,
    stack: &mut Vec<String>,
) {
    let (_, r) = resolve(root, node);
    if let Some(r) = &r {
        if stack.contains(r) {
            return;
        }
        stack.push(r.clone());
    }
    for (name, child) in props_of(root, node) {
        let p = if path.is_empty() {
            name.clone()
        } else {
            format!("{path}.{name}")
        };
        let t = type_of(root, child);
        out.push((p.clone(), t.clone()));
        if stop(&p) {
            continue;
        }
        if t == "array" {
            if let Some(items) = items_of(root, child) {
                let ip = format!("{p}[]");
                walk(root, items, &ip, stop, out, stack);
            }
        } else {
            walk(root, child, &p, stop, out, stack);
        }
    }
    if r.is_some() {
        stack.pop();
    }
}
