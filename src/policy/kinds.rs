//! The RayJob, RayService and RayCronJob rules of [`crate::rules::kinds`] as CEL: their own
//! checks (mirroring the Rust ones: same preconditions, same early returns, same messages) and
//! the RayCluster checks of [`super::raycluster`] on the cluster spec they embed
//! ([`super::raycluster::embedded`]: paths `spec.rayClusterSpec.…`, KubeRay's message prefix).
//! One policy per kind, validations in the order `raygate validate` reports the findings (API
//! server checks aside): metadata, spec, embedded spec, what KubeRay refuses when it creates the
//! cluster, the rest of the spec, raygate's own errors. `tests/e2e_policy.rs` runs both on every
//! case of `tests/support/kind_cases.rs` and every sample through a real API server.

use super::NotExported;
use super::raycluster::{Check, Embedding, embedded, fixed, lit, q, valued};
use crate::model::Kind;
use crate::rules::crd::unsupported_value;
use crate::rules::k8s::{go_string_slice, is_dns1035_label};
use crate::rules::kinds::{
    MAX_RAYCRONJOB_NAME_LENGTH, MAX_RAYJOB_NAME_LENGTH, MAX_RAYSERVICE_NAME_LENGTH,
    RAYJOB_SPEC_INVALID as INV, RAYSERVICE_SPEC_INVALID as SINV, RAYSERVICE_UPGRADE_TYPES,
    RG_SUBMISSION_MODE, SUBMISSION_MODES,
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
            "JD15" => "the TTL order DeleteWorkers ≤ DeleteCluster ≤ DeleteSelf within each condition: not exported yet".into(),
            "SM3" => "ray.io/initializing-timeout must parse as a Go duration or integer seconds (KubeRay's three messages): not exported yet".into(),
            "CJ3" => "the schedule must parse with robfig/cron's standard parser, with its messages: not expressible in CEL".into(),
            "CJ5" => "the time zone must exist in the IANA database: not expressible in CEL".into(),
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
