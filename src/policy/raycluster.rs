//! The RayCluster rules of [`crate::rules::kuberay`] and [`crate::rules::raygate`] as CEL, one
//! [`Check`] per rule id, in [`crate::rules::RULE_IDS`] order. Each check mirrors its Rust rule:
//! same preconditions, same order of findings within the rule, same message; fixed message
//! texts of the Kubernetes validators are taken from [`crate::rules::k8s`] itself. The
//! differential test `tests/e2e_policy.rs` runs both on every case through a real API server.
//!
//! CEL conventions: optional chaining (`a.?b.orValue(x)`) for absent fields; a rule whose
//! message has values keeps "the first finding's message, or ''" in a variable, so the
//! validation is `variables.x == ''` and its `messageExpression` is `variables.x`.

use super::NotExported;
use crate::rules::k8s::{
    is_dns1035_label, is_dns1123_label, is_qualified_name, is_valid_label_value,
};
use crate::violation::FeatureGates;

/// One exported rule.
#[derive(Debug, Clone)]
pub struct Check {
    pub id: &'static str,
    /// Where the Rust rule reports, list indices elided (`spec.workerGroupSpecs[].minReplicas`);
    /// alternatives separated by ` | ` when the rule reports in more than one place.
    /// Documentation only: a ValidatingAdmissionPolicy validation has no field path (see
    /// docs/policy.md); the policy's `raygate.io/rules` annotation records it.
    pub field_path: String,
    /// True when the object passes.
    pub expression: String,
    /// The message (fallback text when `message_expression` is set).
    pub message: String,
    pub message_expression: Option<String>,
    /// Policy variables this check owns (name, expression), in dependency order.
    pub variables: Vec<(String, String)>,
}

/// A CEL string literal.
pub(super) fn lit(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// `"\"" + e + "\""`: Go's `%q` for strings without quotes, backslashes or control characters.
pub(super) fn q(e: &str) -> String {
    format!("'\"' + {e} + '\"'")
}

pub(super) fn fixed(id: &'static str, path: &str, expr: String, msg: &str) -> Check {
    Check {
        id,
        field_path: path.to_string(),
        expression: expr,
        message: msg.to_string(),
        message_expression: None,
        variables: Vec::new(),
    }
}

/// A rule whose message has values: `msg` evaluates to the first finding's message or ''.
pub(super) fn valued(id: &'static str, path: &str, msg: String, fallback: &str) -> Check {
    let var = id.to_ascii_lowercase().replace('-', "_");
    Check {
        id,
        field_path: path.to_string(),
        expression: format!("variables.{var} == ''"),
        message: fallback.to_string(),
        message_expression: Some(format!("variables.{var}")),
        variables: vec![(var, msg)],
    }
}

/// Like [`valued`], with helper variables evaluated before the message variable.
pub(super) fn valued_with(
    id: &'static str,
    path: &str,
    helpers: Vec<(String, String)>,
    msg: String,
    fallback: &str,
) -> Check {
    let mut c = valued(id, path, msg, fallback);
    let mut vars = helpers;
    vars.append(&mut c.variables);
    c.variables = vars;
    c
}

/// With `gate` off, the check `id` refuses the field `field` (a CEL optional) at `path` with
/// `msg`; returns whether the gate is on (its gated checks apply instead).
fn gate_on(
    v: &mut Vec<Check>,
    gates: &FeatureGates,
    gate: &str,
    (id, path, field): (&'static str, &'static str, &str),
    msg: &str,
) -> bool {
    if gates.enabled(gate) {
        return true;
    }
    v.push(fixed(id, path, format!("!{field}.hasValue()"), msg));
    false
}

/// `first(list, x, cond)`: the first element of `list` with `cond`, for use under `exists`.
pub(super) fn first(list: &str, x: &str, cond: &str) -> String {
    format!("{list}.filter({x}, {cond})[0]")
}

/// `cond ? f(first match) : ''`.
pub(super) fn when_first(list: &str, x: &str, cond: &str, f: impl Fn(&str) -> String) -> String {
    let item = first(list, x, cond);
    format!("({list}.exists({x}, {cond}) ? {} : '')", f(&item))
}

fn env_has(env: &str, name: &str) -> String {
    format!("{env}.exists(e, e.name == '{name}')")
}

/// `value` of the first env entry named `name` ('' when unset); guard with [`env_has`].
fn env_first_value(env: &str, name: &str) -> String {
    format!("{env}.filter(e, e.name == '{name}')[0].?value.orValue('')")
}

/// Non-empty `rayStartParams` resource keys (KubeRay's "resources in both places" test).
fn has_start_resources(params: &str) -> String {
    format!(
        "['num-cpus', 'num-gpus', 'memory', 'resources'].exists(k, {params}[?k].orValue('') != '')"
    )
}

fn containers(template_owner: &str) -> String {
    format!("{template_owner}.?template.?spec.?containers.orValue([])")
}

const DNS1123_LABEL_RE: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
const DNS1123_SUBDOMAIN_RE: &str =
    "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
const LABEL_NAME_RE: &str = "^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$";

/// CEL list of `IsQualifiedName(k)` errors (texts from [`is_qualified_name`]).
fn qualified_name_errs(k: &str) -> String {
    let three = lit(&is_qualified_name("a/b/c")[0]);
    let prefix_len = lit(is_qualified_name(&format!("{}/a", "a".repeat(254)))
        .first()
        .map(String::as_str)
        .unwrap_or(""));
    let prefix_re = lit(&is_qualified_name("-/a")[0]);
    let name_empty = lit(&is_qualified_name("a/")[0]);
    let name_len = lit(&is_qualified_name(&"a".repeat(64))[0]);
    let name_re = lit(&is_qualified_name("-")[0]);
    let parts = format!("{k}.split('/')");
    let prefix = format!("{parts}[0]");
    let name = format!("(size({parts}) == 2 ? {parts}[1] : {k})");
    format!(
        "(size({parts}) > 2 ? [{three}] : \
         (size({parts}) == 2 ? ({prefix} == '' ? ['prefix part must be non-empty'] : \
           (size(bytes({prefix})) > 253 ? [{prefix_len}] : []) + \
           (!{prefix}.matches('{sub}') ? [{prefix_re}] : [])) : []) + \
         ({name} == '' ? [{name_empty}] : size(bytes({name})) > 63 ? [{name_len}] : []) + \
         (!{name}.matches('{lre}') ? [{name_re}] : []))",
        sub = DNS1123_SUBDOMAIN_RE,
        lre = LABEL_NAME_RE,
    )
}

/// CEL list of `IsValidLabelValue(v)` errors.
fn label_value_errs(v: &str) -> String {
    let len = lit(&is_valid_label_value(&"a".repeat(64))[0]);
    let re = lit(&is_valid_label_value("-")[0]);
    format!(
        "((size(bytes({v})) > 63 ? [{len}] : []) + \
         ({v} != '' && !{v}.matches('{LABEL_NAME_RE}') ? [{re}] : []))"
    )
}

/// CEL: the label `k` (value `v`) of a group has an error.
fn label_bad(k: &str, v: &str) -> String {
    format!(
        "size({}) + size({}) > 0",
        qualified_name_errs(k),
        label_value_errs(v)
    )
}

/// The S4/W7 message for label `key` with value `val` of group `group` (all short CEL
/// expressions: variables).
fn label_msg(key: &str, val: &str, group: &str) -> String {
    format!(
        "({}.map(e, 'invalid label key for ' + {group} + ' group: \\'' + {key} + '\\', error: ' + e) + \
         {}.map(e, 'invalid label value for key \\'' + {key} + '\\' in ' + {group} + ' group: \\'' + {val} + '\\', error: ' + e)).join('; ')",
        qualified_name_errs(key),
        label_value_errs(val),
    )
}

/// Variables every check may use.
pub fn shared_variables() -> Vec<(&'static str, String)> {
    vec![
        ("wgs", "object.?spec.?workerGroupSpecs.orValue([])".into()),
        (
            "headParams",
            "object.?spec.?headGroupSpec.?rayStartParams.orValue({})".into(),
        ),
        (
            "headCs",
            "object.?spec.?headGroupSpec.?template.?spec.?containers.orValue([])".into(),
        ),
        (
            "headEnv",
            "size(variables.headCs) > 0 ? variables.headCs[0].?env.orValue([]) : []".into(),
        ),
        ("ann", "object.metadata.?annotations.orValue({})".into()),
        (
            "origin",
            "object.metadata.?labels[?'ray.io/originated-from-crd'].orValue('')".into(),
        ),
        (
            "autoscaling",
            "object.?spec.?enableInTreeAutoscaling.orValue(false) == true".into(),
        ),
        (
            "aoVersion",
            "object.?spec.?autoscalerOptions.?version.orValue('')".into(),
        ),
        (
            "v2",
            format!(
                "variables.aoVersion == 'v2' || ({} && {} in ['1', 'true'])",
                env_has("variables.headEnv", "RAY_enable_autoscaler_v2"),
                env_first_value("variables.headEnv", "RAY_enable_autoscaler_v2")
            ),
        ),
        (
            "hasGcs",
            "object.?spec.?gcsFaultToleranceOptions.hasValue()".into(),
        ),
        (
            "backend",
            "object.?spec.?gcsFaultToleranceOptions.?backend.orValue('')".into(),
        ),
        ("rv", "object.?spec.?rayVersion.orValue('')".into()),
        // apimachinery ParseGeneric: '' when valid, else Go's error text.
        (
            "rvErr",
            format!(
                "!variables.rv.matches('^[ \\\\t\\\\n\\\\f\\\\r]*v?[0-9]+(\\\\.[0-9]+)*[^\\\\n]*$') ? 'could not parse ' + {} + ' as version' : \
                 size(variables.rv.find('[0-9]+(\\\\.[0-9]+)*').split('.')) < 2 ? 'illegal version string ' + {} : \
                 (variables.rv.find('[0-9]+').startsWith('0') && variables.rv.find('[0-9]+') != '0') ? 'illegal zero-prefixed version component ' + {} + ' in ' + {} : ''",
                q("variables.rv"),
                q("variables.rv"),
                q("variables.rv.find('[0-9]+')"),
                q("variables.rv"),
            ),
        ),
        (
            "rvC",
            "variables.rv.find('[0-9]+(\\\\.[0-9]+)*').split('.').map(c, int(c))".into(),
        ),
        (
            "authToken",
            "object.?spec.?authOptions.?mode.orValue('') == 'token'".into(),
        ),
        (
            "k8sAuth",
            "object.?spec.?authOptions.?enableK8sTokenAuth.orValue(false) == true".into(),
        ),
    ]
}

/// `rayVersion < major.minor.0` (valid versions only).
fn rv_less(major: i64, minor: i64) -> String {
    format!(
        "(variables.rvC[0] < {major} || (variables.rvC[0] == {major} && variables.rvC[1] < {minor}))"
    )
}

const TLS_ENV: &str =
    "['RAY_USE_TLS', 'RAY_TLS_SERVER_CERT', 'RAY_TLS_SERVER_KEY', 'RAY_TLS_CA_CERT']";
const H4_ENV: &str = "['POD_IP', 'FQ_RAY_IP', 'RAY_CLUSTER_NAME', 'RAY_CLUSTER_NAMESPACE', 'RAY_ROLE', 'OWNER_KIND', 'OWNER_NAME', 'EVENTS_PORT']";

/// The exported checks for these gates, in [`crate::rules::RULE_IDS`] order.
pub fn checks(gates: &FeatureGates) -> Vec<Check> {
    let w = "variables.wgs";
    let mut v = Vec::new();
    let name = "object.metadata.name";
    let dns1035 = crate::rules::k8s::go_string_slice(&is_dns1035_label("-"));

    v.push(fixed(
        "M1",
        "metadata.name",
        format!("size(bytes({name})) <= 53"),
        "RayCluster name should be no more than 53 characters",
    ));
    v.push(fixed(
        "M2",
        "metadata.name",
        format!("size(bytes({name})) > 53 || {name}.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')"),
        &format!("RayCluster name should be a valid DNS1035 label: {dns1035}"),
    ));
    // Each name's first index is its own. `indexOf` scans natively and costs one traversal of
    // the list (the API server charges a string 0.1 per byte, rounded down per element), where
    // a CEL comprehension over pairs costs several units per pair; see docs/policy.md "Cost".
    let mut wh3 = fixed(
        "WH3",
        "spec.workerGroupSpecs[].groupName",
        "variables.wh3Names.all(i, n, variables.wh3Names.indexOf(n) == i)".into(),
        "worker group names must be unique",
    );
    wh3.variables = vec![("wh3Names".into(), format!("{w}.map(g, g.groupName)"))];
    v.push(wh3);
    v.push(fixed(
        "S1",
        "spec.headGroupSpec.template.spec.containers",
        "size(variables.headCs) > 0".into(),
        "headGroupSpec should have at least one container",
    ));
    v.push(fixed(
        "S2",
        "spec.headGroupSpec.resources",
        format!(
            "!({} && size(object.spec.headGroupSpec.?resources.orValue({{}})) > 0)",
            has_start_resources("variables.headParams")
        ),
        "resource fields should not be set in both rayStartParams and Resources for Head group; please use only one",
    ));
    v.push(fixed(
        "S3",
        "spec.headGroupSpec.rayStartParams.labels",
        "!('labels' in variables.headParams)".into(),
        "rayStartParams['labels'] is not supported for Head group; please use the top-level Labels field instead",
    ));
    {
        let labels = "object.spec.headGroupSpec.?labels.orValue({})";
        v.push(valued_with(
            "S4",
            "spec.headGroupSpec.labels",
            vec![(
                "s4Key".into(),
                format!(
                    "{labels}.filter(k, {}).min()",
                    label_bad("k", &format!("{labels}[k]"))
                ),
            )],
            format!(
                "'labels' in variables.headParams || !{labels}.exists(k, {}) ? '' : {}",
                label_bad("k", &format!("{labels}[k]")),
                label_msg(
                    "variables.s4Key",
                    &format!("{labels}[variables.s4Key]"),
                    "'Head'"
                )
            ),
            "invalid head group label",
        ));
    }
    v.push(fixed(
        "W1",
        "spec.workerGroupSpecs[].template.spec.containers",
        format!("{w}.all(g, size({}) > 0)", containers("g")),
        "workerGroupSpec should have at least one container",
    ));
    v.push(valued(
        "W2",
        "spec.workerGroupSpecs[].minReplicas",
        format!(
            "variables.autoscaling ? '' : {}",
            when_first(w, "g", "!has(g.minReplicas) || !has(g.maxReplicas)", |g| format!(
                "'worker group ' + {g}.groupName + ' must set both minReplicas and maxReplicas when autoscaling is disabled'"
            ))
        ),
        "worker groups must set both minReplicas and maxReplicas when autoscaling is disabled",
    ));
    v.push(valued(
        "W3",
        "spec.workerGroupSpecs[].minReplicas",
        when_first(w, "g", "g.?minReplicas.orValue(0) < 0", |g| {
            format!("'worker group ' + {g}.groupName + ' has negative minReplicas ' + string({g}.minReplicas)")
        }),
        "negative minReplicas",
    ));
    v.push(valued(
        "W4",
        "spec.workerGroupSpecs[].maxReplicas",
        when_first(w, "g", "g.?maxReplicas.orValue(0) < 0", |g| {
            format!("'worker group ' + {g}.groupName + ' has negative maxReplicas ' + string({g}.maxReplicas)")
        }),
        "negative maxReplicas",
    ));
    v.push(valued(
        "W5",
        "spec.workerGroupSpecs[].minReplicas",
        when_first(
            w,
            "g",
            "has(g.minReplicas) && has(g.maxReplicas) && g.minReplicas > g.maxReplicas",
            |g| {
                format!("'worker group ' + {g}.groupName + ' has minReplicas ' + string({g}.minReplicas) + ' greater than maxReplicas ' + string({g}.maxReplicas)")
            },
        ),
        "minReplicas greater than maxReplicas",
    ));
    v.push(valued(
        "W6",
        "spec.workerGroupSpecs[].resources",
        when_first(
            w,
            "g",
            &format!(
                "{} && size(g.?resources.orValue({{}})) > 0",
                has_start_resources("g.?rayStartParams.orValue({})")
            ),
            |g| {
                format!("'resource fields should not be set in both rayStartParams and Resources for ' + {g}.groupName + ' group; please use only one'")
            },
        ),
        "resource fields set in both rayStartParams and Resources",
    ));
    {
        let g_bad = format!(
            "'labels' in g.?rayStartParams.orValue({{}}) || g.?labels.orValue({{}}).exists(k, {})",
            label_bad("k", "g.labels[k]")
        );
        let lab = "variables.w7G.?labels.orValue({})";
        v.push(valued_with(
            "W7",
            "spec.workerGroupSpecs[].labels | spec.workerGroupSpecs[].rayStartParams.labels",
            vec![
                ("w7Groups".into(), format!("{w}.filter(g, {g_bad})")),
                ("w7G".into(), "variables.w7Groups[0]".into()),
                (
                    "w7Key".into(),
                    format!("{lab}.filter(k, {}).min()", label_bad("k", &format!("{lab}[k]"))),
                ),
            ],
            format!(
                "size(variables.w7Groups) == 0 ? '' : 'labels' in variables.w7G.?rayStartParams.orValue({{}}) ? 'rayStartParams[\\'labels\\'] is not supported for ' + variables.w7G.groupName + ' group; please use the top-level Labels field instead' : {}",
                label_msg("variables.w7Key", &format!("{lab}[variables.w7Key]"), "variables.w7G.groupName")
            ),
            "invalid worker group labels",
        ));
    }
    v.push(valued(
        "W8",
        "spec.workerGroupSpecs[].idleTimeoutSeconds",
        when_first(w, "g", "g.?idleTimeoutSeconds.orValue(0) < 0", |g| {
            format!("'worker group ' + {g}.groupName + ': idleTimeoutSeconds must be non-negative, got ' + string({g}.idleTimeoutSeconds)")
        }),
        "negative idleTimeoutSeconds",
    ));
    v.push(valued(
        "W9",
        "spec.workerGroupSpecs[].idleTimeoutSeconds",
        format!("variables.v2 ? '' : {}", when_first(w, "g", "g.?idleTimeoutSeconds.orValue(-1) >= 0", |g| {
            format!("'worker group ' + {g}.groupName + ': idleTimeoutSeconds is set, but autoscaler v2 is not enabled. Please set .spec.autoscalerOptions.version to \\'v2\\' (or set RAY_enable_autoscaler_v2 environment variable to \\'true\\' in the head pod if using KubeRay < 1.4.0)'")
        })),
        "idleTimeoutSeconds needs autoscaler v2",
    ));
    let prio = "g.?priority.orValue(0) != 0";
    v.push(valued(
        "W10",
        "spec.workerGroupSpecs[].priority",
        format!("variables.rv != '' ? '' : {}", when_first(w, "g", prio, |g| {
            format!("'worker group ' + {g}.groupName + ': priority is set, but RayVersion was not specified. Ray version 2.56.0 or later is required'")
        })),
        "priority needs rayVersion",
    ));
    v.push(valued(
        "W11",
        "spec.workerGroupSpecs[].priority",
        format!("variables.rv == '' || variables.rvErr == '' ? '' : {}", when_first(w, "g", prio, |g| {
            format!("'worker group ' + {g}.groupName + ': priority is set, but RayVersion format is invalid: ' + variables.rv + ', ' + variables.rvErr")
        })),
        "priority with an invalid rayVersion",
    ));
    v.push(valued(
        "W12",
        "spec.workerGroupSpecs[].priority",
        format!(
            "variables.rv == '' || variables.rvErr != '' || !{} ? '' : {}",
            rv_less(2, 56),
            when_first(w, "g", prio, |g| {
                format!("'worker group ' + {g}.groupName + ': priority is set, but minimum Ray version is 2.56.0, got ' + variables.rv")
            })
        ),
        "priority needs Ray 2.56.0",
    ));
    v.push(valued(
        "W13",
        "spec.workerGroupSpecs[].priority",
        format!("variables.v2 ? '' : {}", when_first(w, "g", prio, |g| {
            format!("'worker group ' + {g}.groupName + ': priority is set to ' + string({g}.priority) + ', but autoscaler v2 is not enabled. Priority is only supported with autoscaler v2 enabled'")
        })),
        "priority needs autoscaler v2",
    ));

    // G1..G14
    let ft = "variables.ann[?'ray.io/ft-enabled']";
    v.push(fixed(
        "G1",
        "spec.gcsFaultToleranceOptions",
        format!("!({ft}.orValue('') != '' && variables.hasGcs)"),
        "ray.io/ft-enabled annotation and GcsFaultToleranceOptions are both set. Please use only GcsFaultToleranceOptions to configure GCS fault tolerance",
    ));
    v.push(fixed(
        "G2",
        "spec.headGroupSpec.template.spec.containers[0].env[]",
        format!(
            "{ft}.orValue('').lowerAscii() == 'true' || variables.hasGcs || !{}",
            env_has("variables.headEnv", "RAY_REDIS_ADDRESS")
        ),
        "RAY_REDIS_ADDRESS is set which implicitly enables GCS fault tolerance, but GcsFaultToleranceOptions is not set. Please set GcsFaultToleranceOptions to enable GCS fault tolerance",
    ));
    v.push(fixed(
        "G3",
        "spec.headGroupSpec.rayStartParams.redis-password",
        "!(variables.hasGcs && variables.headParams[?'redis-password'].orValue('') != '')".into(),
        "cannot set `redis-password` in rayStartParams when GcsFaultToleranceOptions is enabled - use GcsFaultToleranceOptions.RedisPassword instead",
    ));
    v.push(fixed(
        "G4",
        "spec.headGroupSpec.template.spec.containers[0].env[]",
        format!("!(variables.hasGcs && {})", env_has("variables.headEnv", "REDIS_PASSWORD")),
        "cannot set `REDIS_PASSWORD` env var in head Pod when GcsFaultToleranceOptions is enabled - use GcsFaultToleranceOptions.RedisPassword instead",
    ));
    v.push(fixed(
        "G5",
        "spec.headGroupSpec.template.spec.containers[0].env[]",
        format!("!(variables.hasGcs && {})", env_has("variables.headEnv", "RAY_REDIS_ADDRESS")),
        "cannot set `RAY_REDIS_ADDRESS` env var in head Pod when GcsFaultToleranceOptions is enabled - use GcsFaultToleranceOptions.RedisAddress instead",
    ));
    v.push(fixed(
        "G6",
        "metadata.annotations[ray.io/external-storage-namespace]",
        "!(variables.hasGcs && variables.ann[?'ray.io/external-storage-namespace'].orValue('') != '')".into(),
        "cannot set `ray.io/external-storage-namespace` annotation when GcsFaultToleranceOptions is enabled - use GcsFaultToleranceOptions.ExternalStorageNamespace instead",
    ));
    let gcs = "object.spec.gcsFaultToleranceOptions";
    let rocks = "variables.hasGcs && variables.backend == 'rocksdb'";
    if !gates.enabled("GCSFaultToleranceEmbeddedStorage") {
        v.push(fixed(
            "G7",
            "spec.gcsFaultToleranceOptions.backend",
            format!("!({rocks})"),
            "the embedded RocksDB GCS fault tolerance backend (GcsFaultToleranceOptions.Backend: 'rocksdb') requires the GCSFaultToleranceEmbeddedStorage feature gate to be enabled",
        ));
    } else {
        let g8 = |go: &str| {
            lit(&format!(
                "cannot set GcsFaultToleranceOptions.{go} when backend is 'rocksdb'"
            ))
        };
        v.push(valued(
            "G8",
            "spec.gcsFaultToleranceOptions.redisAddress | spec.gcsFaultToleranceOptions.redisUsername | spec.gcsFaultToleranceOptions.redisPassword | spec.gcsFaultToleranceOptions.externalStorageNamespace",
            format!(
                "!({rocks}) ? '' : {gcs}.?redisAddress.orValue('') != '' ? {} : has({gcs}.redisUsername) ? {} : has({gcs}.redisPassword) ? {} : {gcs}.?externalStorageNamespace.orValue('') != '' ? {} : ''",
                g8("RedisAddress"),
                g8("RedisUsername"),
                g8("RedisPassword"),
                g8("ExternalStorageNamespace")
            ),
            "redis settings with the rocksdb backend",
        ));
        v.push(fixed(
            "G9",
            "spec.gcsFaultToleranceOptions.storage.claimName",
            format!(
                "!({rocks} && {gcs}.?storage.?claimName.orValue('') != '' && ({gcs}.?storage.?size.hasValue() || {gcs}.?storage.?storageClassName.hasValue() || size({gcs}.?storage.?accessModes.orValue([])) > 0))"
            ),
            "GcsFaultToleranceOptions.Storage.ClaimName is mutually exclusive with size, storageClassName, and accessModes",
        ));
        v.push(fixed(
            "G10",
            "spec.headGroupSpec.template.spec.containers[0].env[]",
            format!(
                "!({rocks} && variables.headEnv.exists(e, e.name == 'RAY_gcs_storage' || e.name == 'RAY_gcs_storage_path'))"
            ),
            "cannot set `RAY_gcs_storage` or `RAY_gcs_storage_path` env var in head Pod when the embedded GCS FT backend is used - these are managed by KubeRay",
        ));
        v.push(fixed(
            "G11",
            "spec.headGroupSpec.template.spec.containers[0].volumeMounts[]",
            format!(
                "!({rocks} && size(variables.headCs) > 0 && variables.headCs[0].?volumeMounts.orValue([]).exists(m, m.mountPath == '/data/gcs' || m.name == 'gcs-storage'))"
            ),
            "cannot set a volume mount named \"gcs-storage\" or mounted at /data/gcs in the head container when the embedded GCS FT backend is used - it is managed by KubeRay",
        ));
        v.push(fixed(
            "G12",
            "spec.headGroupSpec.template.spec.volumes[]",
            format!(
                "!({rocks} && object.spec.headGroupSpec.?template.?spec.?volumes.orValue([]).exists(x, x.name == 'gcs-storage'))"
            ),
            "cannot set a volume named \"gcs-storage\" in the head Pod when the embedded GCS FT backend is used - it is managed by KubeRay",
        ));
    }
    v.push(fixed(
        "G13",
        "spec.gcsFaultToleranceOptions.storage",
        format!("!(variables.hasGcs && variables.backend != 'rocksdb' && has({gcs}.storage))"),
        "cannot set GcsFaultToleranceOptions.Storage when backend is 'redis' - it only applies to the 'rocksdb' backend",
    ));
    v.push(fixed(
        "G14",
        "spec.headGroupSpec.rayStartParams.redis-username | spec.headGroupSpec.template.spec.containers[0].env[]",
        format!(
            "variables.headParams[?'redis-username'].orValue('') == '' && !{}",
            env_has("variables.headEnv", "REDIS_USERNAME")
        ),
        "cannot set redis username in rayStartParams or environment variables - use GcsFaultToleranceOptions.RedisUsername instead",
    ));
    let suspended = "g.?suspend.orValue(false) == true";
    if !gates.enabled("RayJobDeletionPolicy") {
        v.push(valued(
            "SU1",
            "spec.workerGroupSpecs[].suspend",
            when_first(w, "g", suspended, |g| {
                format!("'worker group ' + {g}.groupName + ' can be suspended only when the RayJobDeletionPolicy feature gate is enabled'")
            }),
            "suspended worker group needs RayJobDeletionPolicy",
        ));
    }
    let v2env = "RAY_enable_autoscaler_v2";
    v.push(valued(
        "A1",
        "spec.headGroupSpec.template.spec.containers[0].env[].value",
        format!(
            "!variables.autoscaling && {} && {} in ['1', 'true'] ? 'environment variable {v2env} cannot be set to \\'' + {} + '\\' when enableInTreeAutoscaling is false. Please set enableInTreeAutoscaling: true to use autoscaler v2' : ''",
            env_has("variables.headEnv", v2env),
            env_first_value("variables.headEnv", v2env),
            env_first_value("variables.headEnv", v2env),
        ),
        "autoscaler v2 env without in-tree autoscaling",
    ));
    v.push(valued(
        "A2",
        "spec.workerGroupSpecs[].suspend",
        format!("!variables.autoscaling ? '' : {}", when_first(w, "g", suspended, |g| {
            format!("'worker group ' + {g}.groupName + ' cannot be suspended with Autoscaler enabled'")
        })),
        "suspended worker group with the autoscaler",
    ));
    v.push(fixed(
        "A3",
        "spec.autoscalerOptions.version",
        format!(
            "!(variables.autoscaling && object.spec.?autoscalerOptions.?version.hasValue() && {})",
            env_has("variables.headEnv", v2env)
        ),
        "both .spec.autoscalerOptions.version and head Pod env var RAY_enable_autoscaler_v2 are set, please only use the former",
    ));
    let restart_bad = |t: &str| {
        format!(
            "{t}.?template.?spec.?restartPolicy.orValue('') != '' && {t}.?template.?spec.?restartPolicy.orValue('') != 'Never'"
        )
    };
    v.push(fixed(
        "A4",
        "spec.headGroupSpec.template.spec.restartPolicy",
        format!(
            "!(variables.autoscaling && variables.aoVersion == 'v2' && {})",
            restart_bad("object.spec.headGroupSpec")
        ),
        "restartPolicy for head Pod should be Never or unset when using autoscaler V2",
    ));
    v.push(valued(
        "A5",
        "spec.workerGroupSpecs[].template.spec.restartPolicy",
        format!(
            "!(variables.autoscaling && variables.aoVersion == 'v2') ? '' : {}",
            when_first(w, "g", &restart_bad("g"), |g| {
                format!("'restartPolicy for worker group ' + {g}.groupName + ' should be Never or unset when using autoscaler V2'")
            })
        ),
        "restartPolicy with autoscaler v2",
    ));
    v.push(valued(
        "A6",
        "spec.autoscalerOptions.idleTimeoutSeconds",
        "object.?spec.?autoscalerOptions.?idleTimeoutSeconds.orValue(0) < 0 ? 'autoscalerOptions.idleTimeoutSeconds must be non-negative, got ' + string(object.spec.autoscalerOptions.idleTimeoutSeconds) : ''".into(),
        "negative autoscalerOptions.idleTimeoutSeconds",
    ));
    v.push(fixed(
        "A7",
        "spec.autoscalerOptions.env[]",
        format!(
            "!{}",
            env_has(
                "object.?spec.?autoscalerOptions.?env.orValue([])",
                "KUBERAY_GEN_AUTOSCALER_START_CMD"
            )
        ),
        "autoscalerOptions.env must not contain KUBERAY_GEN_AUTOSCALER_START_CMD: it is managed by KubeRay and injected automatically into the autoscaler container",
    ));

    // H1..H7
    let hso = "object.?spec.?historyServerOptions";
    let co = format!("{hso}.?collectorOptions");
    if gate_on(
        &mut v,
        gates,
        "RayClusterHistoryServer",
        ("H1", "spec.historyServerOptions", hso),
        "RayClusterHistoryServer feature gate is not enabled",
    ) {
        let coenv = format!("{co}.?env.orValue([])");
        v.push(fixed(
            "H2",
            "spec.historyServerOptions.collectorOptions",
            format!("!{hso}.hasValue() || {co}.hasValue()"),
            "historyServerOptions.collectorOptions must be set",
        ));
        v.push(fixed(
            "H3",
            "spec.historyServerOptions.collectorOptions.image",
            format!("!{co}.hasValue() || {co}.?image.orValue('') != ''"),
            "historyServerOptions.collectorOptions.image must be set",
        ));
        v.push(valued(
            "H4",
            "spec.historyServerOptions.collectorOptions.env[]",
            format!(
                "!{co}.hasValue() ? '' : {}",
                when_first(H4_ENV, "n", &format!("{coenv}.exists(e, e.name == n)"), |n| format!(
                    "'historyServerOptions.collectorOptions.env must not contain ' + {n} + ': it is managed by KubeRay and injected automatically into the collector container'"
                ))
            ),
            "collector env managed by KubeRay",
        ));
        // The last entry of a name wins, as in KubeRay's map.
        let last = |n: &str| {
            format!(
                "{coenv}.filter(e, e.name == '{n}')[size({coenv}.filter(e, e.name == '{n}')) - 1]"
            )
        };
        let has_entry = |n: &str| format!("{coenv}.exists(e, e.name == '{n}')");
        let has_value = |n: &str| {
            format!(
                "({} && ({}.?value.orValue('') != '' || {}.?valueFrom.hasValue()))",
                has_entry(n),
                last(n),
                last(n)
            )
        };
        let backend_ok = format!(
            "{} && {}.?value.orValue('') != ''",
            has_entry("STORAGE_BACKEND"),
            last("STORAGE_BACKEND")
        );
        v.push(fixed(
            "H5",
            "spec.historyServerOptions.collectorOptions.env",
            format!("!{co}.hasValue() || ({backend_ok})"),
            "STORAGE_BACKEND environment variable must be set with a literal string value in historyServerOptions.collectorOptions.env",
        ));
        let be = format!("{}.value.upperAscii()", last("STORAGE_BACKEND"));
        let mode = format!(
            "({} ? {}.?value.orValue('').trim().lowerAscii() : '')",
            has_entry("AZURE_STORAGE_AUTH_MODE"),
            last("AZURE_STORAGE_AUTH_MODE")
        );
        let need = |var: &str, msg: &str| format!("(!{} ? {} : '')", has_value(var), lit(msg));
        let oss = ["OSS_BUCKET", "OSS_ENDPOINT", "OSS_REGION"]
            .iter()
            .map(|x| {
                format!(
                    "!{} ? {} : ",
                    has_value(x),
                    lit(&format!(
                        "{x} environment variable must be set when STORAGE_BACKEND is ALIYUNOSS"
                    ))
                )
            })
            .collect::<String>();
        v.push(valued(
            "H6",
            "spec.historyServerOptions.collectorOptions.env",
            format!(
                "!{co}.hasValue() || !({backend_ok}) ? '' : \
                 {be} == 'GCS' ? {} : {be} == 'S3' ? {} : {be} == 'ALIYUNOSS' ? ({oss}'') : \
                 {be} == 'AZUREBLOB' ? ({mode} == 'connection_string' ? {} : ({mode} == 'workload_identity' || {mode} == 'default') ? (!{} ? 'AZURE_STORAGE_ACCOUNT_URL environment variable must be set when STORAGE_BACKEND is AZUREBLOB and AZURE_STORAGE_AUTH_MODE is ' + {mode} : '') : \
                 (!{} && !{} ? {} : '')) : ''",
                need("GCS_BUCKET", "GCS_BUCKET environment variable must be set when STORAGE_BACKEND is GCS"),
                need("S3_REGION", "S3_REGION environment variable must be set when STORAGE_BACKEND is S3"),
                need("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_CONNECTION_STRING environment variable must be set when STORAGE_BACKEND is AZUREBLOB and AZURE_STORAGE_AUTH_MODE is connection_string"),
                has_value("AZURE_STORAGE_ACCOUNT_URL"),
                has_value("AZURE_STORAGE_CONNECTION_STRING"),
                has_value("AZURE_STORAGE_ACCOUNT_URL"),
                lit("either AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT_URL environment variable must be set when STORAGE_BACKEND is AZUREBLOB"),
            ),
            "collector storage settings",
        ));
        v.push(valued(
            "H7",
            "spec.headGroupSpec.template.spec.containers[].name | spec.workerGroupSpecs[].template.spec.containers[].name",
            format!(
                "!{hso}.hasValue() ? '' : variables.headCs.exists(c, c.name == 'ray-history-collector') ? 'head pod template must not define a container with name \\'ray-history-collector\\' when history server collector options are enabled' : {}",
                when_first(w, "g", &format!("{}.exists(c, c.name == 'ray-history-collector')", containers("g")), |g| format!(
                    "'worker group ' + {g}.groupName + ' pod template must not define a container with name \\'ray-history-collector\\' when history server collector options are enabled'"
                ))
            ),
            "collector container name reserved",
        ));
    }

    // AU1..AU6
    v.push(fixed(
        "AU1",
        "spec.rayVersion",
        "!(variables.authToken && variables.rv == '')".into(),
        "authOptions.mode is 'token' but RayVersion was not specified. Ray version 2.52.0 or later is required",
    ));
    v.push(valued(
        "AU2",
        "spec.rayVersion",
        "variables.authToken && variables.rv != '' && variables.rvErr != '' ? 'authOptions.mode is \\'token\\' but RayVersion format is invalid: ' + variables.rv + ', ' + variables.rvErr : ''".into(),
        "invalid rayVersion with token auth",
    ));
    let rv_ok = "variables.authToken && variables.rv != '' && variables.rvErr == ''";
    v.push(valued(
        "AU3",
        "spec.rayVersion",
        format!(
            "{rv_ok} && {} ? 'authOptions.mode is \\'token\\' but minimum Ray version is 2.52.0, got ' + variables.rv : ''",
            rv_less(2, 52)
        ),
        "token auth needs Ray 2.52.0",
    ));
    v.push(valued(
        "AU4",
        "spec.authOptions.enableK8sTokenAuth",
        format!(
            "{rv_ok} && !{} && variables.k8sAuth && {} ? 'authOptions.enableK8sTokenAuth is enabled but minimum Ray version is 2.55.0, got ' + variables.rv : ''",
            rv_less(2, 52),
            rv_less(2, 55)
        ),
        "Kubernetes token auth needs Ray 2.55.0",
    ));
    v.push(fixed(
        "AU5",
        "spec.authOptions.secretName",
        "!(variables.authToken && variables.k8sAuth && object.spec.authOptions.?secretName.orValue('') != '')".into(),
        "authOptions.enableK8sTokenAuth is enabled and authOptions.secretName is also set",
    ));
    v.push(fixed(
        "AU6",
        "spec.authOptions.enableK8sTokenAuth",
        "variables.authToken || !variables.k8sAuth".into(),
        "authOptions.enableK8sTokenAuth is enabled but authOptions.mode not set to 'token'",
    ));

    // NP1..NP4
    let np = "object.?spec.?networkPolicy";
    if gate_on(
        &mut v,
        gates,
        "RayClusterNetworkPolicy",
        ("NP1", "spec.networkPolicy", np),
        "spec.networkPolicy requires the RayClusterNetworkPolicy feature gate to be enabled",
    ) {
        let mode = format!("{np}.?mode.orValue('DenyAll')");
        let rules = |which: &str, owner: &str| {
            format!(
                "{mode} == 'DenyAllEgress' && size({owner}.?ingressRules.orValue([])) > 0 ? 'networkPolicy.' + {which} + '.ingressRules cannot be set when mode is \"DenyAllEgress\" (ingress is not restricted)' : \
                 {mode} == 'DenyAllIngress' && size({owner}.?egressRules.orValue([])) > 0 ? 'networkPolicy.' + {which} + '.egressRules cannot be set when mode is \"DenyAllIngress\" (egress is not restricted)' : ''"
            )
        };
        v.push(valued(
            "NP2",
            "spec.networkPolicy.head | spec.networkPolicy.worker",
            format!(
                "!{np}.hasValue() ? '' : ({}) != '' ? ({}) : ({})",
                rules("'head'", &format!("{np}.?head")),
                rules("'head'", &format!("{np}.?head")),
                rules("'worker'", &format!("{np}.?worker"))
            ),
            "network policy rules the mode does not restrict",
        ));
        let too_long = lit(&is_dns1123_label(&"a".repeat(64))[0]);
        let dots = lit(&is_dns1123_label("a.b")[0]);
        let re = lit(&is_dns1123_label("-")[0]);
        let errs = |n: &str| {
            format!(
                "((size(bytes({n})) > 63 ? [{too_long}] : []) + (!{n}.matches('{DNS1123_LABEL_RE}') ? ({n}.matches('{DNS1123_SUBDOMAIN_RE}') ? [{dots}] : [{re}]) : []))"
            )
        };
        v.push(valued(
            "NP3",
            "spec.workerGroupSpecs[].groupName",
            format!(
                "!{np}.hasValue() ? '' : {}",
                when_first(w, "g", &format!("size({}) > 0", errs("g.groupName")), |g| format!(
                    "'worker group name ' + {} + ' must be a valid DNS1123 label when networkPolicy is enabled (it is embedded in the NetworkPolicy name): [' + {}.join(' ') + ']'",
                    q(&format!("{g}.groupName")),
                    errs(&format!("{g}.groupName"))
                ))
            ),
            "worker group name not a DNS-1123 label",
        ));
        let x = "variables.np4X";
        let n = format!("{x}.?groupName.orValue('')");
        let which = format!("'workerGroups[' + {} + ']'", q(&n));
        v.push(valued_with(
            "NP4",
            "spec.networkPolicy.workerGroups[]",
            vec![
                ("np4Names".into(), format!("{w}.map(g, g.groupName)")),
                (
                    "np4Bad".into(),
                    format!(
                        "{np}.?workerGroups.orValue([]).filter(x, ({mode} == 'DenyAllEgress' && size(x.?ingressRules.orValue([])) > 0) || ({mode} == 'DenyAllIngress' && size(x.?egressRules.orValue([])) > 0) || !(x.?groupName.orValue('') in variables.np4Names))"
                    ),
                ),
                ("np4X".into(), "variables.np4Bad[0]".into()),
            ],
            format!(
                "!{np}.hasValue() || size(variables.np4Bad) == 0 ? '' : ({}) != '' ? ({}) : 'networkPolicy.workerGroups[' + {} + '] does not match any group name in workerGroupSpecs'",
                rules(&which, x),
                rules(&which, x),
                q(&n)
            ),
            "network policy worker group entry",
        ));
    }

    // T1..T3
    let tls = "object.?spec.?tlsOptions";
    if gate_on(
        &mut v,
        gates,
        "RayClusterMTLS",
        ("T1", "spec.tlsOptions", tls),
        "spec.tlsOptions requires the RayClusterMTLS feature gate to be enabled",
    ) {
        let on = format!("{tls}.?enabled.orValue(false) == true");
        let env_msg = |env: &str, loc: &str| {
            when_first(
                TLS_ENV,
                "t",
                &format!("{env}.exists(e, e.name == t)"),
                |t| {
                    format!(
                        "'cannot set ' + {t} + ' environment variable in ' + {loc} + ' when tlsOptions is set - the operator manages TLS configuration automatically'"
                    )
                },
            )
        };
        let wc0 = |g: &str| format!("{}[0]", containers(g));
        let has_c0 = |g: &str| format!("size({}) > 0", containers(g));
        let wloc = |g: &str| format!("'worker group ' + {}", q(&format!("{g}.groupName")));
        let worker_env = |g: &str| env_msg(&format!("{}.?env.orValue([])", wc0(g)), &wloc(g));
        let ao_env = "object.?spec.?autoscalerOptions.?env.orValue([])";
        v.push(valued(
            "T2",
            "spec.headGroupSpec.template.spec.containers[0].env[] | spec.workerGroupSpecs[].template.spec.containers[0].env[] | spec.autoscalerOptions.env[]",
            format!(
                "!({on}) ? '' : size(variables.headCs) > 0 && {} != '' ? {} : {w}.exists(g, {} && {} != '') ? {} : {}",
                env_msg("variables.headCs[0].?env.orValue([])", "'head Pod'"),
                env_msg("variables.headCs[0].?env.orValue([])", "'head Pod'"),
                has_c0("g"),
                worker_env("g"),
                {
                    let g = first(w, "g", &format!("{} && {} != ''", has_c0("g"), worker_env("g")));
                    worker_env(&g)
                },
                when_first(TLS_ENV, "t", &format!("{ao_env}.exists(e, e.name == t)"), |t| format!(
                    "'cannot set ' + {t} + ' environment variable in autoscalerOptions.env when tlsOptions is set - the operator manages TLS configuration for the autoscaler automatically'"
                ))
            ),
            "TLS environment managed by the operator",
        ));
        let mount_bad = "m.name == 'ray-tls' || m.mountPath == '/etc/ray/tls'";
        let mount_msg = |mounts: &str, loc: &str| {
            when_first(mounts, "m", mount_bad, |m| {
                format!(
                    "({m}.name == 'ray-tls' ? 'cannot use volume mount named \"ray-tls\" in ' + {loc} + ' when tlsOptions is set - the operator manages TLS configuration automatically' : 'cannot use volume mount at path \"/etc/ray/tls\" in ' + {loc} + ' when tlsOptions is set - the operator manages TLS configuration automatically')"
                )
            })
        };
        let wm = |g: &str| format!("{}.?volumeMounts.orValue([])", wc0(g));
        v.push(valued(
            "T3",
            "spec.headGroupSpec.template.spec.containers[0].volumeMounts[] | spec.workerGroupSpecs[].template.spec.containers[0].volumeMounts[] | spec.autoscalerOptions.volumeMounts[]",
            format!(
                "!({on}) ? '' : size(variables.headCs) > 0 && {} != '' ? {} : {w}.exists(g, {} && {} != '') ? {} : {}",
                mount_msg("variables.headCs[0].?volumeMounts.orValue([])", "'head Pod'"),
                mount_msg("variables.headCs[0].?volumeMounts.orValue([])", "'head Pod'"),
                has_c0("g"),
                mount_msg(&wm("g"), &wloc("g")),
                {
                    let g = first(w, "g", &format!("{} && {} != ''", has_c0("g"), mount_msg(&wm("g"), &wloc("g"))));
                    mount_msg(&wm(&g), &wloc(&g))
                },
                mount_msg(
                    "object.?spec.?autoscalerOptions.?volumeMounts.orValue([])",
                    "'autoscalerOptions.volumeMounts'"
                )
            ),
            "TLS volume mounts managed by the operator",
        ));
    }

    // U1, U2
    let ut = "object.?spec.?upgradeStrategy.?type";
    v.push(valued(
        "U1",
        "spec.upgradeStrategy.type",
        format!(
            "{ut}.hasValue() && !({ut}.value() in ['Recreate', 'None']) ? 'The RayCluster spec is invalid: Spec.UpgradeStrategy.Type value ' + {ut}.value() + ' is invalid, valid options are Recreate or None' : ''"
        ),
        "invalid upgradeStrategy.type",
    ));
    v.push(valued(
        "U2",
        "spec.upgradeStrategy.type",
        format!(
            "{ut}.hasValue() && {ut}.value() in ['Recreate', 'None'] && variables.origin in ['RayJob', 'RayService'] ? 'upgradeStrategy cannot be set when RayCluster is created by ' + variables.origin : ''"
        ),
        "upgradeStrategy on a RayCluster owned by a RayJob or RayService",
    ));

    // raygate's own errors
    v.push(valued(
        "RG-REPLICAS-NEGATIVE",
        "spec.workerGroupSpecs[].replicas",
        when_first(w, "g", "g.?replicas.orValue(0) < 0", |g| {
            format!(
                "'worker group ' + {g}.groupName + ' has negative replicas ' + string({g}.replicas)"
            )
        }),
        "negative replicas",
    ));
    v.push(valued(
        "RG-NUMOFHOSTS",
        "spec.workerGroupSpecs[].numOfHosts",
        when_first(w, "g", "g.?numOfHosts.orValue(1) < 1", |g| {
            format!("'worker group ' + {g}.groupName + ' has numOfHosts ' + string({g}.numOfHosts) + '; it must be at least 1 (KubeRay would create no pods for this group)'")
        }),
        "numOfHosts below 1",
    ));
    let ipp = "object.?spec.?autoscalerOptions.?imagePullPolicy";
    v.push(valued(
        "RG-IMAGEPULLPOLICY",
        "spec.autoscalerOptions.imagePullPolicy",
        format!(
            "{ipp}.hasValue() && !({ipp}.value() in ['Always', 'IfNotPresent', 'Never']) ? 'Unsupported value: ' + {} + ': supported values: \"Always\", \"IfNotPresent\", \"Never\"' : ''",
            q(&format!("{ipp}.value()"))
        ),
        "unsupported autoscalerOptions.imagePullPolicy",
    ));
    v
}

/// Every RULE_IDS entry that [`checks`] does not export for these gates, with the reason.
pub fn not_exported(gates: &FeatureGates) -> Vec<NotExported> {
    let exported: Vec<&str> = checks(gates).iter().map(|c| c.id).collect();
    let reason = |id: &str| -> String {
        match id {
            "CRD-REQUIRED" | "CRD-ENUM" | "CRD-MANAGEDBY" | "CRD-IMMUTABLE-MANAGEDBY"
            | "CRD-IMMUTABLE-BACKEND" | "RG-TYPE" => {
                "enforced by the RayCluster CRD's own schema and CEL rules before admission".into()
            }
            "ST1" => "status is written by the operator through the status subresource, which the policy does not match; a create drops it".into(),
            "W-RESTARTPOLICY-V1" | "RG-REPLICAS-CLAMPED" | "RG-RAYSTARTPARAMS-NUMBER"
            | "RG-DEPRECATED-V1ALPHA1" => "a warning (the object is admitted); not exported as a policy".into(),
            "RG-QUANTITY" => "the message carries raygate's quantity parser diagnostics, which CEL's quantity() cannot reproduce".into(),
            "RG-QUANTITY-NEGATIVE" | "RG-REQUESTS-EXCEED-LIMITS" => "quantities in every container, group and sidecar: not exported yet (CEL quantity() can express it; the message's canonical quantity form cannot)".into(),
            _ => {
                let gate = gate_of(id);
                match gate {
                    Some((g, on)) => format!(
                        "inactive with {g}={}: the rule only applies when the gate is {}",
                        gates.enabled(g),
                        if on { "enabled" } else { "disabled" }
                    ),
                    None => "not exported".into(),
                }
            }
        }
    };
    crate::rules::RULE_IDS
        .iter()
        .filter(|id| !exported.contains(id))
        .map(|id| NotExported {
            rule: id,
            reason: reason(id),
        })
        .collect()
}

/// The gate a gated rule depends on, and whether it applies with the gate on.
pub(crate) fn gate_of(id: &str) -> Option<(&'static str, bool)> {
    Some(match id {
        "G7" => ("GCSFaultToleranceEmbeddedStorage", false),
        "G8" | "G9" | "G10" | "G11" | "G12" => ("GCSFaultToleranceEmbeddedStorage", true),
        "SU1" => ("RayJobDeletionPolicy", false),
        "H1" => ("RayClusterHistoryServer", false),
        "H2" | "H3" | "H4" | "H5" | "H6" | "H7" => ("RayClusterHistoryServer", true),
        "NP1" => ("RayClusterNetworkPolicy", false),
        "NP2" | "NP3" | "NP4" => ("RayClusterNetworkPolicy", true),
        "T1" => ("RayClusterMTLS", false),
        "T2" | "T3" => ("RayClusterMTLS", true),
        _ => return None,
    })
}

/// Where a RayCluster spec sits inside a RayJob, RayService or RayCronJob, and how KubeRay
/// reports on it (the Rust side is `crate::rules::kinds`'s `embedded`).
#[derive(Debug, Clone)]
pub struct Embedding {
    /// CEL of the spec (`object.spec.rayClusterSpec`).
    pub spec: String,
    /// Its optional form (`object.?spec.?rayClusterSpec`).
    pub spec_opt: String,
    /// Field path of the spec (`spec.rayClusterSpec`).
    pub path: String,
    /// Prefix of the `ValidateRayClusterSpec` messages (`The RayJob spec is invalid: `).
    pub msg_prefix: String,
    /// `ray.io/originated-from-crd` of the RayCluster KubeRay creates from it.
    pub origin: &'static str,
    /// Whether the parent's annotations reach that RayCluster (not a RayCronJob's template).
    pub annotations: bool,
}

/// The RayCluster checks on an embedded spec, split the way KubeRay reports them.
pub struct EmbeddedChecks {
    /// [`shared_variables`] on the embedded spec.
    pub variables: Vec<(String, String)>,
    /// `ValidateRayClusterSpec`, messages prefixed.
    pub spec: Vec<Check>,
    /// What KubeRay refuses when it creates the RayCluster (WH3, U1, U2), unprefixed.
    pub later: Vec<Check>,
    /// raygate's own errors (`RG-*`).
    pub extra: Vec<Check>,
}

/// [`checks`] rewritten for an embedded spec: `object.spec` → the embedded spec, paths rebased
/// as `raygate validate` reports them, KubeRay's message prefix on `ValidateRayClusterSpec`
/// rules, no metadata rules (M1, M2: KubeRay names the cluster itself), and every check true
/// when the spec is absent.
pub fn embedded(gates: &FeatureGates, e: &Embedding) -> EmbeddedChecks {
    let cel = |x: &str| {
        x.replace("object.?spec", &e.spec_opt)
            .replace("object.spec", &e.spec)
    };
    let variables = shared_variables()
        .into_iter()
        .map(|(n, x)| {
            let x = match n {
                "ann" if !e.annotations => "{}".to_string(),
                "origin" => lit(e.origin),
                _ => cel(&x),
            };
            (n.to_string(), x)
        })
        .collect();
    let mut out = EmbeddedChecks {
        variables,
        spec: Vec::new(),
        later: Vec::new(),
        extra: Vec::new(),
    };
    for c in checks(gates) {
        if c.id == "M1" || c.id == "M2" {
            continue;
        }
        let prefixed = crate::rules::kinds::in_validate_spec(c.id);
        let mut r = Check {
            id: c.id,
            field_path: c
                .field_path
                .split(" | ")
                .map(|p| crate::rules::kinds::rebase(p, &e.path))
                .collect::<Vec<_>>()
                .join(" | "),
            expression: format!("!{}.hasValue() || ({})", e.spec_opt, cel(&c.expression)),
            message: c.message.clone(),
            message_expression: c.message_expression.as_deref().map(cel),
            variables: c
                .variables
                .iter()
                .map(|(n, x)| (n.clone(), cel(x)))
                .collect(),
        };
        if prefixed {
            r.message = format!("{}{}", e.msg_prefix, r.message);
            r.message_expression = r
                .message_expression
                .map(|m| format!("{} + {m}", lit(&e.msg_prefix)));
        }
        match c.id {
            _ if prefixed => out.spec.push(r),
            "WH3" | "U1" | "U2" => out.later.push(r),
            _ => out.extra.push(r),
        }
    }
    out
}
