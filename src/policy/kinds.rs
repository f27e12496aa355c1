//! The RayJob, RayService and RayCronJob rules of [`crate::rules::kinds`] as CEL: their own
//! checks (mirroring the Rust ones: same preconditions, same early returns, same messages) and
//! the RayCluster checks of [`super::raycluster`] on the cluster spec they embed
//! ([`super::raycluster::embedded`]: paths `spec.rayClusterSpec.…`, KubeRay's message prefix).
//! One policy per kind, validations in the order `raygate validate` reports the findings (API
//! server checks aside): metadata, spec, embedded spec, what KubeRay refuses when it creates the
//! cluster, the rest of the spec, raygate's own errors. `tests/e2e_policy.rs` runs both on every
//! case of `tests/support/kind_cases.rs` and every sample through a real API server.

use super::NotExported;
use super::raycluster::{Check, Embedding, embedded, fixed, lit, q, valued, valued_with};
use crate::model::Kind;
use crate::rules::crd::unsupported_value;
use crate::rules::gotime;
use crate::rules::k8s::{go_string_slice, is_dns1035_label};
use crate::rules::kinds::{
    DELETION_TTL_ORDER, MAX_RAYCRONJOB_NAME_LENGTH, MAX_RAYJOB_NAME_LENGTH,
    MAX_RAYSERVICE_NAME_LENGTH, RAYJOB_SPEC_INVALID as INV, RAYSERVICE_SPEC_INVALID as SINV,
    RAYSERVICE_UPGRADE_TYPES, RG_SUBMISSION_MODE, SUBMISSION_MODES, initializing_timeout,
};
use crate::violation::FeatureGates;

/// The variables and validations of one kind's policy.
pub struct KindPolicy {
    pub variables: Vec<(String, String)>,
    pub checks: Vec<Check>,
}

impl KindPolicy {
    /// Adds the embedded spec's variables, its `ValidateRayClusterSpec` checks and what KubeRay
    /// refuses at cluster creation; returns raygate's own checks, which come last.
    fn add_embedded(&mut self, e: super::raycluster::EmbeddedChecks) -> Vec<Check> {
        self.variables.extend(e.variables);
        self.checks.extend(e.spec);
        self.checks.extend(e.later);
        e.extra
    }
}

/// The deletion conditions a RayJob's CRD admits (`condition.jobStatus` enum SUCCEEDED/FAILED,
/// `condition.jobDeploymentStatus` enum Failed): (field, value, KubeRay's name for the field).
/// JD15 groups the deletion rules by these.
const DELETION_CONDITIONS: &[(&str, &str, &str)] = &[
    ("jobStatus", "SUCCEEDED", "JobStatus"),
    ("jobStatus", "FAILED", "JobStatus"),
    ("jobDeploymentStatus", "Failed", "JobDeploymentStatus"),
];
const NAME: &str = "object.metadata.name";

/// `ValidateRayJobMetadata` / the name part of `ValidateRayServiceMetadata` (the name is set
/// at admission: the API server resolves `generateName` before validating admission).
fn name_checks(kind: &str, max: usize, ids: (&'static str, &'static str)) -> Vec<Check> {
    let meta = format!("The {kind} metadata is invalid: {kind} name");
    vec![
        fixed(
            ids.0,
            "metadata.name",
            format!("size(bytes({NAME})) <= {max}"),
            &format!("{meta} should be no more than {max} characters"),
        ),
        fixed(
            ids.1,
            "metadata.name",
            format!(
                "size(bytes({NAME})) > {max} || {NAME}.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')"
            ),
            &format!(
                "{meta} should be a valid DNS1035 label: {}",
                go_string_slice(&is_dns1035_label("-"))
            ),
        ),
    ]
}

/// `'Unsupported value: "' + x + '": supported values: …'` (the text of [`unsupported_value`]).
fn unsupported(x: &str, allowed: &[&str]) -> String {
    let text = unsupported_value("@", allowed);
    let (before, after) = text.split_once("\"@\"").unwrap_or((&text, ""));
    format!("{} + {} + {}", lit(before), q(x), lit(after))
}

/// Where a RayJob spec sits: the RayJob's `spec`, or a RayCronJob's `spec.jobTemplate`.
struct JobSpec {
    /// Optional CEL form (`object.?spec`).
    opt: String,
    /// Field path (`spec`).
    path: String,
    /// Prefix of every message (`invalid RayJob template: ` for a RayCronJob).
    wrap: &'static str,
    /// The embedded cluster spec.
    cluster: Embedding,
}

impl JobSpec {
    /// The RayJob spec at field path `path` (`spec`, `spec.jobTemplate`), its messages prefixed
    /// with `wrap`; `annotations`: whether the object's annotations reach the RayCluster.
    fn at(path: &str, wrap: &'static str, annotations: bool) -> JobSpec {
        let cluster = format!("{path}.rayClusterSpec");
        let opt = |p: &str| format!("object.?{}", p.replace('.', ".?"));
        JobSpec {
            opt: opt(path),
            path: path.to_string(),
            wrap,
            cluster: Embedding {
                spec: format!("object.{cluster}"),
                spec_opt: opt(&cluster),
                path: cluster,
                msg_prefix: format!("{wrap}{INV}"),
                origin: "RayJob",
                annotations,
            },
        }
    }
}

/// `ValidateRayJobSpec` (the rules the Rust `rayjob_spec` runs, in its order), with the embedded
/// cluster spec's checks where KubeRay runs them.
fn rayjob_spec(js: &JobSpec, gates: &FeatureGates, p: &mut KindPolicy) {
    let so = js.opt.as_str();
    let path = |f: &str| format!("{}.{f}", js.path);
    let w = |m: &str| format!("{}{m}", js.wrap);
    let wi = |m: &str| format!("{}{INV}{m}", js.wrap);
    // A message expression with the wrap and (when `inv`) KubeRay's "spec is invalid" prefix.
    let wrap_lit = |inv: bool| lit(&format!("{}{}", js.wrap, if inv { INV } else { "" }));
    for (n, x) in [
        ("jSuspend", format!("{so}.?suspend.orValue(false) == true")),
        (
            "jShutdown",
            format!("{so}.?shutdownAfterJobFinishes.orValue(false) == true"),
        ),
        ("jTtl", format!("{so}.?ttlSecondsAfterFinished.orValue(0)")),
        (
            "jSelector",
            format!("size({so}.?clusterSelector.orValue({{}})) > 0"),
        ),
        ("jMode", format!("{so}.?submissionMode.orValue('')")),
        (
            "jAutoscaling",
            format!("{so}.?rayClusterSpec.?enableInTreeAutoscaling.orValue(false) == true"),
        ),
        ("jBackoff", format!("{so}.?backoffLimit.orValue(0)")),
    ] {
        p.variables.push((n.into(), x));
    }
    let c = &mut p.checks;
    c.push(fixed(
        "J1",
        &path("suspend"),
        "!(variables.jSuspend && !variables.jShutdown)".into(),
        &wi("a RayJob with shutdownAfterJobFinishes set to false is not allowed to be suspended"),
    ));
    c.push(fixed(
        "J2",
        &path("ttlSecondsAfterFinished"),
        "variables.jTtl >= 0".into(),
        &wi("TTLSecondsAfterFinished must be a non-negative integer"),
    ));
    c.push(fixed(
        "JD1",
        &path("ttlSecondsAfterFinished"),
        "variables.jShutdown || variables.jTtl <= 0".into(),
        &wi("a RayJob with shutdownAfterJobFinishes set to false cannot have TTLSecondsAfterFinished"),
    ));
    let ds = format!("{so}.?deletionStrategy");
    let dp = path("deletionStrategy");
    if !gates.enabled("RayJobDeletionPolicy") {
        c.push(fixed(
            "JD2",
            &dp,
            format!("!{ds}.hasValue()"),
            &w("RayJobDeletionPolicy feature gate must be enabled to use DeletionStrategy"),
        ));
    } else {
        for (n, x) in [
            ("jDs", format!("{ds}.hasValue()")),
            (
                "jRulesOn",
                format!("size({ds}.?deletionRules.orValue([])) > 0"),
            ),
            (
                "jLegacy",
                format!("{ds}.?onSuccess.hasValue() || {ds}.?onFailure.hasValue()"),
            ),
            // validateLegacyDeletionPolicies runs (no deletionRules, a legacy field set).
            (
                "jL",
                "variables.jDs && !variables.jRulesOn && variables.jLegacy".into(),
            ),
            (
                "jBoth",
                format!("{ds}.?onSuccess.hasValue() && {ds}.?onFailure.hasValue()"),
            ),
            (
                "jPolSet",
                format!(
                    "variables.jBoth && {ds}.?onSuccess.?policy.hasValue() && {ds}.?onFailure.?policy.hasValue()"
                ),
            ),
            ("jS", format!("{ds}.?onSuccess.?policy.orValue('')")),
            ("jF", format!("{ds}.?onFailure.?policy.orValue('')")),
            (
                "jBound",
                "variables.jS in ['DeleteCluster', 'DeleteWorkers'] || variables.jF in ['DeleteCluster', 'DeleteWorkers']".into(),
            ),
            (
                "jDw",
                "(variables.jS == 'DeleteWorkers' || variables.jF == 'DeleteWorkers') && variables.jAutoscaling".into(),
            ),
            // validateDeletionRules runs.
            (
                "jR",
                "variables.jDs && variables.jRulesOn && !variables.jShutdown && !variables.jLegacy"
                    .into(),
            ),
            ("jRules", format!("{ds}.?deletionRules.orValue([])")),
        ] {
            p.variables.push((n.into(), x));
        }
        let c = &mut p.checks;
        c.push(fixed(
            "JD3",
            &format!("{dp}.deletionRules"),
            "!(variables.jDs && variables.jRulesOn && variables.jShutdown)".into(),
            &wi("spec.shutdownAfterJobFinishes and spec.deletionStrategy.deletionRules are mutually exclusive"),
        ));
        c.push(fixed(
            "JD4",
            &dp,
            "!(variables.jDs && variables.jRulesOn && !variables.jShutdown && variables.jLegacy)".into(),
            &wi("Cannot use both legacy onSuccess/onFailure fields and deletionRules simultaneously"),
        ));
        c.push(fixed(
            "JD5",
            &dp,
            "!(variables.jL && !variables.jBoth)".into(),
            &w("both DeletionStrategy.OnSuccess and DeletionStrategy.OnFailure must be set when using the legacy deletion policy fields of DeletionStrategy"),
        ));
        c.push(valued(
            "JD6",
            &dp,
            format!(
                "variables.jL && variables.jBoth && !variables.jPolSet ? {} + 'the DeletionPolicyType field of DeletionStrategy.' + ({ds}.?onSuccess.?policy.hasValue() ? 'OnFailure' : 'OnSuccess') + ' cannot be unset when DeletionStrategy is enabled' : ''",
                wrap_lit(false)
            ),
            "deletion policy unset",
        ));
        let lp = "variables.jL && variables.jPolSet";
        c.push(valued(
            "JD7",
            &dp,
            format!(
                "{lp} && variables.jSelector && variables.jBound ? {} + 'the ClusterSelector mode doesn\\'t support DeletionStrategy=' + (variables.jS in ['DeleteCluster', 'DeleteWorkers'] ? variables.jS + ' on success' : variables.jF + ' on failure') : ''",
                wrap_lit(false)
            ),
            "cluster deletion policy with clusterSelector",
        ));
        let not7 = "!(variables.jSelector && variables.jBound)";
        c.push(fixed(
            "JD8",
            &dp,
            format!("!({lp} && {not7} && variables.jDw)"),
            &w("DeletionStrategy=DeleteWorkers currently does not support RayCluster with autoscaling enabled"),
        ));
        c.push(fixed(
            "JD9",
            &dp,
            format!(
                "!({lp} && {not7} && !variables.jDw && variables.jShutdown && (variables.jS == 'DeleteNone' || variables.jF == 'DeleteNone'))"
            ),
            &w("The RayJob spec is invalid: shutdownAfterJobFinshes is set to 'true' while deletion policy is 'DeleteNone'"),
        ));
        // validateDeletionRules: each rule reports its first error and the loop goes on.
        let both =
            "(r.?condition.?jobStatus.hasValue() == r.?condition.?jobDeploymentStatus.hasValue())";
        let neg_ttl = "r.?condition.?ttlSeconds.orValue(0) < 0";
        let pol = "r.?policy.orValue('')";
        let sel = format!("variables.jSelector && {pol} in ['DeleteCluster', 'DeleteWorkers']");
        let dw = format!("variables.jAutoscaling && {pol} == 'DeleteWorkers'");
        let at = |i: &str| {
            format!(
                "{} + 'deletionRules[' + string({i}) + ']: '",
                wrap_lit(false)
            )
        };
        let first_i = |cond: &str| format!("variables.jRules.transformList(i, r, {cond}, i)");
        let rule_msg = |id: &'static str, cond: String, tail: &dyn Fn(&str) -> String| {
            let idx = format!("{}[0]", first_i(&cond));
            let r = format!("variables.jRules[{idx}]");
            valued(
                id,
                &format!("{dp}.deletionRules[]"),
                format!(
                    "variables.jR && size({}) > 0 ? {} + {} : ''",
                    first_i(&cond),
                    at(&idx),
                    tail(&r)
                ),
                "deletion rule",
            )
        };
        c.push(rule_msg("JD10", both.to_string(), &|r| {
            format!("({r}.?condition.?jobStatus.hasValue() ? 'cannot set both JobStatus and JobDeploymentStatus at the same time' : 'exactly one of JobStatus and JobDeploymentStatus must be set')")
        }));
        c.push(rule_msg("JD11", format!("!{both} && {neg_ttl}"), &|_| {
            "'TTLSeconds must be non-negative'".into()
        }));
        c.push(rule_msg(
            "JD12",
            format!("!{both} && !({neg_ttl}) && {sel}"),
            &|r| {
                format!(
                    "'DeletionPolicyType \\'' + {r}.?policy.orValue('') + '\\' not supported when ClusterSelector is set'"
                )
            },
        ));
        c.push(rule_msg(
            "JD13",
            format!("!{both} && !({neg_ttl}) && !({sel}) && {dw}"),
            &|_| {
                "'DeletionPolicyType \\'DeleteWorkers\\' not supported with autoscaling enabled'"
                    .into()
            },
        ));
        // A valid rule (no JD10–JD13 error) with the same condition and policy as an earlier one.
        let valid = |r: &str| {
            let s = |x: &str| x.replace("r.", &format!("{r}."));
            format!(
                "!{} && !({}) && !({}) && !({})",
                s(both),
                s(neg_ttl),
                s(&sel),
                s(&dw)
            )
        };
        let key = |r: &str| {
            format!(
                "[{r}.?condition.?jobStatus.orValue(''), {r}.?condition.?jobDeploymentStatus.orValue(''), {r}.?policy.orValue('')]"
            )
        };
        let dup = format!(
            "{} && variables.jRules.exists(j, h, j < i && {} && {} == {})",
            valid("r"),
            valid("h"),
            key("h"),
            key("r")
        );
        c.push(rule_msg("JD14", dup, &|r| {
            format!(
                "'duplicate rule for DeletionPolicyType \\'' + {r}.?policy.orValue('') + '\\' and ' + ({r}.?condition.?jobStatus.hasValue() ? 'JobStatus \\'' + {r}.condition.jobStatus : 'JobDeploymentStatus \\'' + {r}.condition.jobDeploymentStatus) + '\\''"
            )
        }));
        // validateTTLConsistency: per condition, the TTL of each policy's first valid rule
        // (duplicates are JD14 and skipped) must not decrease along DELETION_TTL_ORDER.
        // raygate walks the conditions sorted by (JobStatus before JobDeploymentStatus, value);
        // the CRD's enums allow exactly these three, so the policy lists them in that order.
        let mut conds = DELETION_CONDITIONS.to_vec();
        conds.sort_by_key(|(field, value, _)| (*field != "jobStatus", *value));
        p.variables.push((
            "jValid".into(),
            format!("variables.jRules.filter(r, {})", valid("r")),
        ));
        // jTtl15[k][j]: the TTL of policy DELETION_TTL_ORDER[j] under condition k, or -1.
        let ttls: Vec<String> = conds
            .iter()
            .map(|(field, value, _)| {
                let per: Vec<String> = DELETION_TTL_ORDER
                    .iter()
                    .map(|pol| {
                        format!(
                            "(variables.jValid.filter(r, r.?condition.?{field}.orValue('') == '{value}' && r.?policy.orValue('') == '{pol}').map(r, r.?condition.?ttlSeconds.orValue(0)) + [-1])[0]"
                        )
                    })
                    .collect();
                format!("[{}]", per.join(", "))
            })
            .collect();
        p.variables
            .push(("jTtl15".into(), format!("[{}]", ttls.join(", "))));
        let mut findings = Vec::new();
        for (k, (_, value, name)) in conds.iter().enumerate() {
            let t = |j: usize| format!("variables.jTtl15[{k}][{j}]");
            for (j, pol) in DELETION_TTL_ORDER.iter().enumerate().skip(1) {
                // The nearest earlier policy that has a rule: (present, TTL, its message part).
                let mut prev = ("false".to_string(), "0".to_string(), "''".to_string());
                for (i, pp) in DELETION_TTL_ORDER.iter().enumerate().take(j) {
                    let here = format!("{} >= 0", t(i));
                    let part = format!("'{pp} TTL (' + string({})", t(i));
                    prev = (
                        format!("({here} || {})", prev.0),
                        format!("({here} ? {} : {})", t(i), prev.1),
                        format!("({here} ? {part} : {})", prev.2),
                    );
                }
                findings.push(format!(
                    "({tj} >= 0 && {present} && {tj} < {pt} ? {} + 'for {name} \\'{value}\\': {pol} TTL (' + string({tj}) + ') must be >= ' + {part} + ')' : '')",
                    wrap_lit(false),
                    tj = t(j),
                    present = prev.0,
                    pt = prev.1,
                    part = prev.2,
                ));
            }
        }
        let c = &mut p.checks;
        c.push(valued(
            "JD15",
            &format!("{dp}.deletionRules[].condition.ttlSeconds"),
            format!(
                "variables.jR ? ([{}].filter(m, m != '') + [''])[0] : ''",
                findings.join(", ")
            ),
            "deletion rule TTL order",
        ));
        c.push(fixed(
            "JD16",
            &dp,
            "!(variables.jDs && !variables.jRulesOn && !variables.jLegacy)".into(),
            &wi("DeletionStrategy requires either BOTH onSuccess and onFailure, OR the deletionRules field (cannot be empty)"),
        ));
    }
    let c = &mut p.checks;
    c.push(fixed(
        "J3",
        &path("suspend"),
        "!(variables.jSuspend && variables.jSelector)".into(),
        &wi("the ClusterSelector mode doesn't support the suspend operation"),
    ));
    let has_cluster = format!("{so}.?rayClusterSpec.hasValue()");
    c.push(fixed(
        "J4",
        &path("rayClusterSpec"),
        format!("{has_cluster} || variables.jSelector"),
        &wi("one of RayClusterSpec or ClusterSelector must be set"),
    ));
    let no_name = format!("{so}.?clusterSelector[?'ray.io/cluster'].orValue('') == ''");
    c.push(fixed(
        "J5",
        &format!("{}[ray.io/cluster]", path("clusterSelector")),
        format!("!(variables.jSelector && {no_name})"),
        &w("cluster name in ClusterSelector should not be empty"),
    ));
    let sidecar = "variables.jMode == 'SidecarMode'";
    c.push(fixed(
        "J6",
        &path("submissionMode"),
        format!("!(variables.jSelector && !({no_name}) && {sidecar})"),
        &w("ClusterSelector is not supported in SidecarMode"),
    ));
    c.push(fixed(
        "J7",
        &path("backoffLimit"),
        format!("!(variables.jSelector && !({no_name}) && !({sidecar}) && variables.jBackoff > 0)"),
        &wi("BackoffLimit is incompatible with ClusterSelector mode"),
    ));
    c.push(fixed(
        "J8",
        &path("backoffLimit"),
        "!(variables.jMode == 'InteractiveMode' && variables.jBackoff > 0)".into(),
        &wi("BackoffLimit is incompatible with InteractiveMode"),
    ));
    let tmpl = format!("{so}.?submitterPodTemplate.hasValue()");
    let cfg = format!("{so}.?submitterConfig.hasValue()");
    c.push(fixed(
        "J9",
        &path("submitterPodTemplate"),
        format!("!({sidecar} && {tmpl})"),
        &w("Currently, SidecarMode doesn't support SubmitterPodTemplate"),
    ));
    c.push(fixed(
        "J10",
        &path("submitterConfig"),
        format!("!({sidecar} && !{tmpl} && {cfg})"),
        &w("Currently, SidecarMode doesn't support SubmitterConfig"),
    ));
    let rp =
        format!("{so}.?rayClusterSpec.?headGroupSpec.?template.?spec.?restartPolicy.orValue('')");
    c.push(fixed(
        "J11",
        &path("rayClusterSpec.headGroupSpec.template.spec.restartPolicy"),
        format!("!({sidecar} && !{tmpl} && !{cfg} && {rp} != '' && {rp} != 'Never')"),
        &w("restartPolicy for head Pod should be Never or unset when using SidecarMode"),
    ));
    c.push(fixed(
        "J12",
        &path("rayClusterSpec.authOptions.enableK8sTokenAuth"),
        format!("{so}.?rayClusterSpec.?authOptions.?enableK8sTokenAuth.orValue(false) != true"),
        &wi("K8s token auth mode is currently not supported for RayJob"),
    ));
    let e = embedded(gates, &js.cluster);
    let extra = p.add_embedded(e);
    let c = &mut p.checks;
    c.push(fixed(
        "J14",
        &path("activeDeadlineSeconds"),
        format!("{so}.?activeDeadlineSeconds.orValue(1) > 0"),
        &wi("activeDeadlineSeconds must be a positive integer"),
    ));
    c.push(fixed(
        "J15",
        &path("preRunningDeadlineSeconds"),
        format!("{so}.?preRunningDeadlineSeconds.orValue(1) > 0"),
        &wi("preRunningDeadlineSeconds must be a positive integer"),
    ));
    c.push(fixed(
        "J16",
        &path("backoffLimit"),
        "variables.jBackoff >= 0".into(),
        &wi("backoffLimit must be a positive integer"),
    ));
    c.extend(extra);
    c.push(valued(
        RG_SUBMISSION_MODE,
        &path("submissionMode"),
        format!(
            // raygate's own finding: no KubeRay prefix, also in a RayCronJob's template.
            "variables.jMode != '' && !(variables.jMode in {}) ? {} + '; KubeRay does not check it and would never submit the job' : ''",
            cel_list(SUBMISSION_MODES),
            unsupported("variables.jMode", SUBMISSION_MODES)
        ),
        "unsupported submissionMode",
    ));
}

fn cel_list(items: &[&str]) -> String {
    let v: Vec<String> = items.iter().map(|s| lit(s)).collect();
    format!("[{}]", v.join(", "))
}

fn rayjob(gates: &FeatureGates) -> KindPolicy {
    let mut p = KindPolicy {
        variables: Vec::new(),
        checks: name_checks("RayJob", MAX_RAYJOB_NAME_LENGTH, ("JM1", "JM2")),
    };
    rayjob_spec(&JobSpec::at("spec", "", true), gates, &mut p);
    p
}

fn raycronjob(gates: &FeatureGates) -> KindPolicy {
    let mut p = KindPolicy {
        variables: Vec::new(),
        checks: Vec::new(),
    };
    let c = &mut p.checks;
    c.push(fixed(
        "CJ1",
        "metadata.name",
        format!("size(bytes({NAME})) <= {MAX_RAYCRONJOB_NAME_LENGTH}"),
        &format!("RayCronJob name should be no more than {MAX_RAYCRONJOB_NAME_LENGTH} characters"),
    ));
    c.push(fixed(
        "CJ2",
        "spec.schedule",
        "!object.?spec.?schedule.orValue('').contains('TZ')".into(),
        "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
    ));
    c.push(fixed(
        "CJ4",
        "spec.timeZone",
        "object.?spec.?timeZone.orValue('x') != ''".into(),
        "timeZone must not be empty string, omit the field to use the local time zone of the KubeRay operator",
    ));
    c.push(cj5());
    // A RayCronJob's annotations do not reach the RayJobs it creates, nor their clusters.
    rayjob_spec(
        &JobSpec::at("spec.jobTemplate", "invalid RayJob template: ", false),
        gates,
        &mut p,
    );
    p
}

fn rayservice(gates: &FeatureGates) -> KindPolicy {
    let mut p = KindPolicy {
        variables: Vec::new(),
        checks: name_checks("RayService", MAX_RAYSERVICE_NAME_LENGTH, ("SM1", "SM2")),
    };
    p.checks.push(sm3());
    let cc = "object.?spec.?rayClusterConfig";
    p.checks.push(fixed(
        "SV1",
        "spec.rayClusterConfig.authOptions.enableK8sTokenAuth",
        format!("{cc}.?authOptions.?enableK8sTokenAuth.orValue(false) != true"),
        &format!("{SINV}K8s token auth mode is currently not supported for RayService"),
    ));
    let e = embedded(
        gates,
        &Embedding {
            spec: "object.spec.rayClusterConfig".into(),
            spec_opt: cc.into(),
            path: "spec.rayClusterConfig".into(),
            msg_prefix: SINV.into(),
            origin: "RayService",
            annotations: true,
        },
    );
    let extra = p.add_embedded(e);
    let c = &mut p.checks;
    c.push(fixed(
        "SV2",
        "spec.rayClusterConfig.headGroupSpec.headService.metadata.name",
        format!("{cc}.?headGroupSpec.?headService.?metadata.?name.orValue('') == ''"),
        &format!(
            "{SINV}spec.rayClusterConfig.headGroupSpec.headService.metadata.name should not be set"
        ),
    ));
    let ut = "object.?spec.?upgradeStrategy.?type";
    c.push(valued(
        "SV3",
        "spec.upgradeStrategy.type",
        format!(
            "{ut}.hasValue() && !({ut}.value() in {}) ? {} + 'Spec.UpgradeStrategy.Type value ' + {ut}.value() + ' is invalid, valid options are NewClusterWithIncrementalUpgrade, NewCluster, or None' : ''",
            cel_list(RAYSERVICE_UPGRADE_TYPES),
            lit(SINV)
        ),
        "invalid upgradeStrategy.type",
    ));
    c.push(valued(
        "SV4",
        "spec.rayClusterDeletionDelaySeconds",
        format!(
            "object.?spec.?rayClusterDeletionDelaySeconds.orValue(0) < 0 ? {} + 'Spec.RayClusterDeletionDelaySeconds should be a non-negative integer, got ' + string(object.spec.rayClusterDeletionDelaySeconds) : ''",
            lit(SINV)
        ),
        "negative rayClusterDeletionDelaySeconds",
    ));
    if gates.enabled("RayServiceIncrementalUpgrade") {
        // ValidateClusterUpgradeOptions, with its early returns.
        let up = "spec.upgradeStrategy.clusterUpgradeOptions";
        let o = "object.?spec.?upgradeStrategy.?clusterUpgradeOptions";
        let on = format!("{ut}.orValue('') == 'NewClusterWithIncrementalUpgrade'");
        let auto = format!("{cc}.?enableInTreeAutoscaling.orValue(false) == true");
        let surge = format!("{o}.?maxSurgePercent.orValue(100)");
        let step = format!("{o}.?stepSizePercent");
        let in_pct = |x: &str| format!("({x} >= 0 && {x} <= 100)");
        let steps: [(&'static str, String, String, &str); 7] = [
            (
                "SVU1",
                "spec.rayClusterConfig.enableInTreeAutoscaling".into(),
                format!("!({auto})"),
                "Ray Autoscaler is required for NewClusterWithIncrementalUpgrade",
            ),
            (
                "SVU2",
                up.into(),
                format!("!{o}.hasValue()"),
                "ClusterUpgradeOptions are required for NewClusterWithIncrementalUpgrade",
            ),
            (
                "SVU3",
                format!("{up}.maxSurgePercent"),
                format!("!{}", in_pct(&surge)),
                "maxSurgePercent must be between 0 and 100",
            ),
            (
                "SVU4",
                format!("{up}.stepSizePercent"),
                format!(
                    "!{step}.hasValue() || !{}",
                    in_pct(&format!("{step}.value()"))
                ),
                "stepSizePercent must be between 0 and 100",
            ),
            (
                "SVU5",
                format!("{up}.stepSizePercent"),
                format!("{step}.value() > {surge}"),
                "stepSizePercent must be less than or equal to maxSurgePercent",
            ),
            (
                "SVU6",
                format!("{up}.intervalSeconds"),
                format!("{o}.?intervalSeconds.orValue(0) <= 0"),
                "intervalSeconds must be greater than 0",
            ),
            (
                "SVU7",
                format!("{up}.gatewayClassName"),
                format!("{o}.?gatewayClassName.orValue('') == ''"),
                "gatewayClassName is required for NewClusterWithIncrementalUpgrade",
            ),
        ];
        let mut earlier: Vec<String> = Vec::new();
        for (id, path, bad, msg) in steps {
            let before = earlier
                .iter()
                .map(|b| format!(" && !({b})"))
                .collect::<String>();
            c.push(fixed(
                id,
                &path,
                format!("!({on}{before} && ({bad}))"),
                &format!("{SINV}{msg}"),
            ));
            earlier.push(bad);
        }
    }
    p.checks.extend(extra);
    p
}

/// The policy of `kind` (not RayCluster: see [`super::raycluster::checks`]) with these gates.
pub fn policy(kind: Kind, gates: &FeatureGates) -> KindPolicy {
    match kind {
        Kind::RayJob => rayjob(gates),
        Kind::RayService => rayservice(gates),
        Kind::RayCronJob => raycronjob(gates),
        Kind::RayCluster => KindPolicy {
            variables: super::raycluster::shared_variables()
                .into_iter()
                .map(|(n, x)| (n.to_string(), x))
                .collect(),
            checks: super::raycluster::checks(gates),
        },
    }
}

/// Whether the own rule `id` ([`crate::rules::kinds::RULE_IDS`]) applies to `kind`.
pub fn applies(kind: Kind, id: &str) -> bool {
    let head = id.trim_end_matches(|c: char| c.is_ascii_digit());
    let numbered = head.len() < id.len();
    let job = numbered && ["J", "JD"].contains(&head) || id.starts_with("RG-JOB-");
    let own = match kind {
        Kind::RayJob => job || numbered && ["JM", "JST"].contains(&head),
        Kind::RayCronJob => job || numbered && head == "CJ" || id == "RG-CRONJOB-GATE",
        Kind::RayService => {
            numbered && ["SM", "SV", "SVU"].contains(&head) || id.starts_with("RG-SERVICE-")
        }
        Kind::RayCluster => return false,
    };
    own || id.starts_with("CRD-")
}

/// The rules of `kind` that its policy does not enforce with these gates, and why: its own rule
/// ids ([`crate::rules::kinds::RULE_IDS`]) and the RayCluster ids of the embedded spec.
pub fn not_exported(kind: Kind, gates: &FeatureGates) -> Vec<NotExported> {
    if kind == Kind::RayCluster {
        return super::raycluster::not_exported(gates);
    }
    let exported: Vec<&str> = policy(kind, gates).checks.iter().map(|c| c.id).collect();
    let gate = |g: &str, on: bool| {
        format!(
            "inactive with {g}={}: the rule only applies when the gate is {}",
            gates.enabled(g),
            if on { "enabled" } else { "disabled" }
        )
    };
    let reason = |id: &str| -> String {
        match id {
            _ if id.starts_with("CRD-") => format!("enforced by the {} CRD's own schema and CEL rules before admission", kind.name()),
            "JST1" => "status is written by the operator through the status subresource, which the policy does not match; a create drops it".into(),
            "J13" => "runtimeEnvYAML must parse as a YAML mapping: CEL has no YAML parser".into(),
            "CJ3" => "the schedule must parse with robfig/cron's standard parser, with its messages: not expressible in CEL".into(),
            "JD2" => gate("RayJobDeletionPolicy", false),
            _ if id.starts_with("JD") => gate("RayJobDeletionPolicy", true),
            _ if id.starts_with("SVU") => gate("RayServiceIncrementalUpgrade", true),
            _ if id.starts_with("RG-") => "a warning (the object is admitted); not exported as a policy".into(),
            _ => "not exported".into(),
        }
    };
    let mut out: Vec<NotExported> = crate::rules::kinds::RULE_IDS
        .iter()
        .filter(|id| applies(kind, id) && !exported.contains(id))
        .map(|id| NotExported {
            rule: id,
            reason: reason(id),
        })
        .collect();
    // The embedded spec: what the RayCluster policy leaves out, except the metadata rules
    // (KubeRay names the cluster it creates itself) and the API server's own.
    for n in super::raycluster::not_exported(gates) {
        if !exported.contains(&n.rule)
            && !n.rule.starts_with("CRD-")
            && n.rule != "RG-TYPE"
            && n.rule != "ST1"
            && !out.iter().any(|o| o.rule == n.rule)
        {
            out.push(NotExported {
                rule: n.rule,
                reason: format!("(embedded cluster spec) {}", n.reason),
            });
        }
    }
    out
}

/// SM3, `validateInitializingTimeout` on the `ray.io/initializing-timeout` annotation: Go's
/// `time.ParseDuration` (exactly: the grammar of [`gotime::DURATION_UNITS`], the 2^63 ns bounds
/// of each component and of the sum with Go's uint64 wrap-around, a fraction's digits up to
/// 2^63 and its float64 scaling), then `strconv.Atoi` (int64 bounds), with KubeRay's three
/// messages taken from [`initializing_timeout`]. Unsigned arithmetic never overflows: component
/// values are at most 2^63 + 3.6e12 and sums are taken in 32-bit halves.
fn sm3() -> Check {
    const SM3: &str = "SM3";
    let t = "variables.sm3T";
    let u = "variables.sm3U";
    // Go's scale after k fraction digits: 10.0 multiplied k times in float64, as leadingFraction
    // does (not the correctly rounded 10^k); past 40 digits the fraction adds no nanosecond.
    let mut scales = Vec::new();
    let mut sc = 1.0f64;
    for _ in 0..=40 {
        scales.push(format!("{sc:?}"));
        sc *= 10.0;
    }
    let units: Vec<String> = gotime::DURATION_UNITS
        .iter()
        .map(|(n, ns)| format!("{}: {ns}u", lit(n)))
        .collect();
    let alts: Vec<&str> = gotime::DURATION_UNITS.iter().map(|(n, _)| *n).collect();
    const B: &str = "9223372036854775808u"; // 2^63
    const OVER: &str = "9223372036854775809u"; // a component past 2^63
    const HALF: &str = "4294967296u"; // 2^32
    const TOP: &str = "2147483648u"; // 2^31: the high half of 2^63
    let max19 = "'9223372036854775808'";
    // (high, low) halves of a list of component values: no overflow for any string length.
    let halves = |list: &str| {
        (
            format!("({list}.map(x, x / {HALF}).sum() + {list}.map(x, x % {HALF}).sum() / {HALF})"),
            format!("({list}.map(x, x % {HALF}).sum() % {HALF})"),
        )
    };
    let (hi, lo) = halves("variables.sm3V");
    let prefix = |i: &str| format!("variables.sm3V.transformList(j, y, j <= {i}, y)");
    let (phi, plo) = halves(&prefix("i"));
    let vars: Vec<(String, String)> = vec![
        (
            "sm3T".into(),
            format!(
                "object.metadata.?annotations[?{}].orValue('')",
                lit(crate::rules::kinds::INITIALIZING_TIMEOUT_ANNOTATION)
            ),
        ),
        ("sm3Neg".into(), format!("{t}.startsWith('-')")),
        (
            "sm3U".into(),
            format!("{t}.matches('^[-+]') ? {t}.substring(1) : {t}"),
        ),
        // ParseDuration's grammar: "0", or components of digits, an optional fraction, a unit.
        (
            "sm3Dur".into(),
            format!(
                "{u} == '0' || {u}.matches('^(([0-9]+([.][0-9]*)?|[.][0-9]+)({}))+$')",
                alts.join("|")
            ),
        ),
        // Each component: [integer digits without leading zeros, fraction digits, unit].
        (
            "sm3P".into(),
            format!(
                "({u} != '0' && variables.sm3Dur ? {u}.findAll('[0-9]*([.][0-9]*)?[^.0-9]+') : []).map(c, [c.find('^[0-9]*').find('[1-9][0-9]*'), c.find('[.][0-9]*').replace('.', ''), c.find('[^.0-9]+$')])"
            ),
        ),
        // [integer, the fraction digits Go accumulates (up to 2^63), unit, all fraction digits,
        // the fraction from its first non-zero digit].
        (
            "sm3Q".into(),
            format!(
                "variables.sm3P.map(p, [p[0], p[1].find('[1-9][0-9]*'), p[2], p[1]]).map(q, [q[0], size(q[1]) <= 18 ? q[1] : (q[1].substring(0, 19) <= {max19} ? q[1].substring(0, 19) : q[1].substring(0, 18)), q[2], q[3], q[1]])"
            ),
        ),
        // Each component in nanoseconds, or OVER when Go's component arithmetic overflows.
        ("sm3V".into(), {
            // The component's integer part, its unit, and its value in nanoseconds.
            let int = "(q[0] == '' ? 0u : uint(q[0]))";
            let unit = format!("{{{}}}[q[2]]", units.join(", "));
            let digits = "size(q[3]) - size(q[4]) + size(q[1])";
            let frac = format!(
                "(q[1] == '' || {digits} > 40 ? 0u : uint(double(uint(q[1])) * (double({unit}) / [{}][{digits}])))",
                scales.join(", ")
            );
            let ns = format!("{int} * {unit} + {frac}");
            format!(
                "variables.sm3Q.map(q, size(q[0]) > 19 || (size(q[0]) == 19 && q[0] > {max19}) || {int} > {B} / {unit} ? {OVER} : \
                     ({ns} > {B} ? {OVER} : \
                     {ns}))"
            )
        }),
        // The running sum (mod 2^64, as Go's uint64) passes 2^63 somewhere. It can only wrap
        // when a component is exactly 2^63; otherwise the running sums grow, and the last
        // decides.
        (
            "sm3Over".into(),
            format!(
                "variables.sm3V.exists(x, x > {B}) || (variables.sm3V.exists(x, x == {B}) ? \
                 variables.sm3V.exists(i, x, {phi} % {HALF} > {TOP} || ({phi} % {HALF} == {TOP} && {plo} > 0u)) : \
                 ({hi} > {TOP} || ({hi} == {TOP} && {lo} > 0u)))"
            ),
        ),
        // ParseDuration fails (then Atoi decides).
        (
            "sm3Bad".into(),
            format!(
                "!variables.sm3Dur || variables.sm3Over || (!variables.sm3Neg && {hi} % {HALF} >= {TOP})"
            ),
        ),
        (
            "sm3Zero".into(),
            format!("{u} == '0' || ({hi} % {HALF} == 0u && {lo} == 0u)"),
        ),
    ];
    // KubeRay's messages, with the value in place of a marker.
    let msg = |marker: &str| {
        let e = initializing_timeout(marker).err().unwrap_or_default();
        let m = crate::rules::kinds::initializing_timeout_message(&e);
        let (before, after) = m.split_once(marker).unwrap_or((&m, ""));
        format!("{} + {t} + {}", lit(before), lit(after))
    };
    let int_ok = format!(
        "{t}.matches('^[-+]?[0-9]+$') && (size({u}.find('[1-9][0-9]*')) < 19 || (size({u}.find('[1-9][0-9]*')) == 19 && {u}.find('[1-9][0-9]*') <= (variables.sm3Neg ? {max19} : '9223372036854775807')))"
    );
    valued_with(
        SM3,
        &format!(
            "metadata.annotations[{}]",
            crate::rules::kinds::INITIALIZING_TIMEOUT_ANNOTATION
        ),
        vars,
        format!(
            "{t} == '' ? '' : !variables.sm3Bad ? (variables.sm3Neg || variables.sm3Zero ? {} : '') : \
             {int_ok} ? (variables.sm3Neg || {u}.find('[1-9][0-9]*') == '' ? {} : '') : {}",
            msg("-7s"),
            msg("-7"),
            msg("@@"),
        ),
        "invalid ray.io/initializing-timeout annotation",
    )
}

/// CJ5, `time.LoadLocation` against Go's embedded tz database: the names of
/// [`crate::rules::tznames::NAMES`] (what raygate validate uses), UTC and Local; Go's two
/// messages from [`gotime::load_location`].
fn cj5() -> Check {
    let tz = "object.spec.timeZone";
    let msg = |name: &str| {
        let e = gotime::load_location(name).err().unwrap_or_default();
        crate::rules::kinds::time_zone_message(&e)
    };
    let unknown = msg("@@");
    let (before, after) = unknown.split_once("@@").unwrap_or((&unknown, ""));
    let known: Vec<String> = ["UTC", "Local"]
        .iter()
        .chain(crate::rules::tznames::NAMES)
        .map(|n| lit(n))
        .collect();
    valued(
        "CJ5",
        "spec.timeZone",
        format!(
            "object.?spec.?timeZone.orValue('') != '' && !({tz} in [{}]) ? ({tz}.contains('..') || {tz}.startsWith('/') || {tz}.startsWith({}) ? {} : {} + {tz} + {}) : ''",
            known.join(", "),
            lit("\\"),
            lit(&msg("..")),
            lit(before),
            lit(after),
        ),
        "unknown time zone",
    )
}
