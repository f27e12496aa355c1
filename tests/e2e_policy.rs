//! The exported admission policies (`raygate policy export`) on a real kube-apiserver v1.34 with
//! **no webhook**: for every KubeRay sample and every case of the rule table
//! (`tests/support/rule_cases.rs`), a server-side dry-run create gets the same verdict as
//! `raygate validate` (the library call), with the same message, for every exported rule; rules
//! `--explain` lists are exempt. With `--mutating`, a RayCluster without `autoscalerOptions` is
//! stored with the mutating webhook's defaults, and a second write changes nothing.
//!
//! Run alone: `cargo test --test e2e_policy -- --nocapture` (prints the policy status and the
//! runtime cost probe). Binaries: see `tests/support/controlplane.rs`.

mod common;
#[path = "support/controlplane.rs"]
mod controlplane;
#[path = "support/kind_cases.rs"]
mod kind_cases;
#[path = "support/rule_cases.rs"]
mod rule_cases;
#[path = "support/webhook_e2e.rs"]
mod webhook_e2e;

use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use raygate::model::Kind;
use raygate::policy::{self, ExportOptions};
use raygate::violation::{FeatureGates, ValidateOptions, Violation};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// kube-apiserver flags that serve MutatingAdmissionPolicy (beta, off by default in 1.34).
const MAP_FLAGS: &[&str] = &[
    "--feature-gates=MutatingAdmissionPolicy=true",
    "--runtime-config=admissionregistration.k8s.io/v1beta1=true",
];

fn cp() -> &'static controlplane::ControlPlane {
    controlplane::shared_with_args(MAP_FLAGS)
}

use webhook_e2e::{ray_api, rayclusters, to_dynamic};

/// The kind of a test object (RayCluster unless it names another).
fn kind_of(obj: &Value) -> Kind {
    obj.get("kind")
        .and_then(Value::as_str)
        .and_then(Kind::from_name)
        .unwrap_or(Kind::RayCluster)
}

fn api(client: &kube::Client, group_version: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    let (g, v) = group_version.split_once('/').unwrap();
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(g, v, kind), plural);
    Api::all_with(client.clone(), &ar)
}

/// KubeRay's CRDs of the four kinds.
async fn install_crd(client: &kube::Client) {
    for k in policy::KINDS {
        let file = format!("crd/ray.io_{}.yaml", k.plural());
        let mut docs = controlplane::yaml_docs(&controlplane::kuberay_path(&file));
        controlplane::install_crd(client, docs.remove(0)).await;
    }
}

/// Applies every exported object (server-side apply).
async fn apply_all(client: &kube::Client, objects: &[Value]) {
    for o in objects {
        let kind = o["kind"].as_str().unwrap();
        let lower = kind.to_ascii_lowercase();
        let plural = match lower.strip_suffix('y') {
            Some(stem) => format!("{stem}ies"),
            None => format!("{lower}s"),
        };
        let a = api(client, o["apiVersion"].as_str().unwrap(), kind, &plural);
        let name = o["metadata"]["name"].as_str().unwrap();
        let dynobj: DynamicObject = serde_json::from_value(o.clone()).unwrap();
        a.patch(
            name,
            &PatchParams::apply(controlplane::FIELD_MANAGER).force(),
            &Patch::Apply(&dynobj),
        )
        .await
        .unwrap_or_else(|e| panic!("apply {kind} {name}: {e}"));
    }
}

/// What the API server said about one object.
#[derive(Debug, PartialEq)]
enum Verdict {
    Allowed,
    /// Denied by our policy, with the validation's message.
    Policy(String),
    /// Refused before admission (CRD schema, name validation) or otherwise.
    Other(String),
}

async fn dry_run_create(client: &kube::Client, ns: &str, obj: &Value) -> Verdict {
    let version = obj["apiVersion"]
        .as_str()
        .and_then(|a| a.strip_prefix("ray.io/"))
        .unwrap_or("v1");
    let kind = kind_of(obj);
    let mut obj = obj.clone();
    obj["metadata"]["namespace"] = json!(ns);
    match dry_run(&ray_api(client, ns, version, kind), &obj).await {
        Ok(_) => Verdict::Allowed,
        // `rayclusters.ray.io "x" is forbidden: ValidatingAdmissionPolicy 'p' with binding 'b'
        // denied request: <message>`
        Err(kube::Error::Api(s)) => match s.message.split_once(" denied request: ") {
            Some((who, msg)) if who.contains(" is forbidden: ValidatingAdmissionPolicy '") => {
                Verdict::Policy(msg.to_string())
            }
            _ => Verdict::Other(format!("{} {}: {}", s.code, s.reason, s.message)),
        },
        Err(e) => Verdict::Other(e.to_string()),
    }
}

/// The verdict the policies must give, from `raygate validate` (library) on the object as the
/// API server sees it (CRD defaults applied): None when exempt (only unexported rules fire).
fn expected(obj: &Value, gates: &FeatureGates) -> Option<Expect> {
    let kind = kind_of(obj);
    let mut o = obj.clone();
    raygate::defaulting::apply_crd_defaults_kind(kind, &mut o);
    let opts = ValidateOptions {
        gates: gates.clone(),
        ..Default::default()
    };
    let errors: Vec<Violation> = raygate::rules::kinds::validate_kind(kind, &o, None, &opts)
        .into_iter()
        .filter(Violation::is_error)
        .collect();
    if errors
        .iter()
        .any(|v| v.rule.starts_with("CRD-") || v.rule == "RG-TYPE")
    {
        return Some(Expect::RefusedBeforeAdmission(format!("{errors:?}")));
    }
    let order: Vec<&str> = policy::policy_for(kind, gates)
        .checks
        .iter()
        .map(|c| c.id)
        .collect();
    let mut exported: Vec<&Violation> = errors
        .iter()
        .filter(|v| order.contains(&v.rule.as_str()))
        .collect();
    // One policy, validations in rule order: the API server reports the first failing one.
    exported.sort_by_key(|v| order.iter().position(|r| *r == v.rule));
    match exported.first() {
        Some(v) => Some(Expect::Denied(
            v.rule.clone(),
            v.message.clone(),
            v.path.clone(),
        )),
        None if errors.is_empty() => Some(Expect::Allowed),
        None => None,
    }
}

#[derive(Debug)]
enum Expect {
    Allowed,
    /// Rule, message, raygate's field path.
    Denied(String, String, String),
    RefusedBeforeAdmission(String),
}

/// CRD checks `raygate validate` does not model for these kinds (the API server refuses first
/// with its schema message): `minItems: 1` on `deletionStrategy.deletionRules` (so JD16 is
/// unreachable) and `minLength: 1` on a RayCronJob's `timeZone` (CJ4).
const UNMODELLED_CRD: &[(&str, &str)] = &[
    ("JD16", "deletionRules in body should have at least 1 items"),
    (
        "CJ4",
        "spec.timeZone in body should be at least 1 chars long",
    ),
];

fn agrees(e: &Expect, got: &Verdict) -> bool {
    match (e, got) {
        (Expect::Denied(r, _, _), Verdict::Other(m))
            if UNMODELLED_CRD
                .iter()
                .any(|(id, text)| r == id && m.contains(text)) =>
        {
            true
        }
        (Expect::Allowed, Verdict::Allowed) => true,
        (Expect::Denied(_, m, _), Verdict::Policy(g)) => m == g,
        // Refused by the API server itself (schema, CRD rules), not by a policy.
        (Expect::RefusedBeforeAdmission(findings), Verdict::Other(m)) => {
            !findings.is_empty() && !m.contains("ValidatingAdmissionPolicy")
        }
        _ => false,
    }
}

/// One namespace per gate set, bound to policies exported with those gates.
struct GateSet {
    gates: FeatureGates,
    ns: String,
    opts: ExportOptions,
}

async fn install_gate_set(
    client: &kube::Client,
    tag: &str,
    gates: &str,
    mutating: bool,
) -> GateSet {
    let g = FeatureGates::parse(gates).unwrap();
    let ns = format!("policy-{tag}");
    let nsapi: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let nsobj = serde_json::from_value(json!({
        "metadata": {"name": ns, "labels": {"raygate.test/policy-gates": tag}}
    }))
    .unwrap();
    match nsapi.create(&PostParams::default(), &nsobj).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("namespace {ns}: {e}"),
    }
    let opts = ExportOptions {
        gates: g.clone(),
        namespace_selector: Some(
            policy::parse_label_selector(&format!("raygate.test/policy-gates={tag}")).unwrap(),
        ),
        name_prefix: format!("raygate-{tag}-"),
        mutating,
        ..Default::default()
    };
    apply_all(client, &policy::export(&opts)).await;
    GateSet { gates: g, ns, opts }
}

/// Waits until the bindings of every kind are in force: a W5 violation (in the embedded spec
/// for the kinds that embed one) is denied by the policy.
async fn wait_active(client: &kube::Client, set: &GateSet) {
    for kind in policy::KINDS {
        let (mut probe, wg) = match kind {
            Kind::RayCluster => (common::base(), "/spec/workerGroupSpecs/0"),
            Kind::RayJob => (
                kind_cases::base(kind),
                "/spec/rayClusterSpec/workerGroupSpecs/0",
            ),
            Kind::RayService => (
                kind_cases::base(kind),
                "/spec/rayClusterConfig/workerGroupSpecs/0",
            ),
            Kind::RayCronJob => (
                kind_cases::base(kind),
                "/spec/jobTemplate/rayClusterSpec/workerGroupSpecs/0",
            ),
        };
        common::set(&mut probe, &format!("{wg}/minReplicas"), json!(9));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = dry_run_create(client, &set.ns, &probe).await;
            if matches!(v, Verdict::Policy(_)) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "policy {} not in force after 60 s: {v:?}\n{}",
                policy::validating_name_for(&set.opts, kind),
                cp().apiserver_log_tail(40)
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

#[derive(Default)]
struct Tally {
    failures: Vec<String>,
    counts: BTreeMap<&'static str, usize>,
    /// The same verdicts per kind of the object sent.
    per_kind: BTreeMap<(&'static str, &'static str), usize>,
    denied: BTreeMap<String, usize>,
    /// Denials whose raygate path does not match the path recorded for the rule.
    paths: Vec<String>,
}

impl Tally {
    async fn check(&mut self, client: &kube::Client, label: String, obj: &Value, set: &GateSet) {
        if !obj.is_object() || !obj.get("metadata").is_none_or(Value::is_object) {
            // RG-TYPE cases (a RayCluster that is not a JSON object): no request can carry it.
            *self.counts.entry("skipped (not an object)").or_default() += 1;
            return;
        }
        let Some(want) = expected(obj, &set.gates) else {
            *self
                .counts
                .entry("exempt (only unexported rules)")
                .or_default() += 1;
            return;
        };
        let got = dry_run_create(client, &set.ns, obj).await;
        if !agrees(&want, &got) {
            self.failures.push(format!(
                "{label} [ns {}]: raygate {want:?}\n    API server {got:?}",
                set.ns
            ));
            return;
        }
        let what = match &want {
            Expect::Allowed => "allowed by both",
            Expect::Denied(..) if matches!(got, Verdict::Other(_)) => {
                "refused by the CRD before admission (not modelled by raygate validate)"
            }
            Expect::Denied(r, _, path) => {
                *self
                    .denied
                    .entry(format!("{} {r}", kind_of(obj).name()))
                    .or_default() += 1;
                let recorded = policy::policy_for(kind_of(obj), &set.gates)
                    .checks
                    .into_iter()
                    .find(|c| c.id == r)
                    .map(|c| c.field_path)
                    .unwrap_or_default();
                let recorded = recorded.as_str();
                if !path_matches(path, recorded) {
                    self.paths.push(format!(
                        "{label}: {r} reported at {path}, recorded {recorded}"
                    ));
                }
                "denied by both, same message"
            }
            Expect::RefusedBeforeAdmission(_) => "refused by the CRD before admission",
        };
        *self.counts.entry(what).or_default() += 1;
        *self
            .per_kind
            .entry((kind_of(obj).name(), what))
            .or_default() += 1;
    }
}

/// Every object of the four kinds in KubeRay's samples (`samples`, `samples-rayjob`,
/// `samples-rayservice`, `samples-raycronjob`).
fn samples() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for d in [
        "samples",
        "samples-rayjob",
        "samples-rayservice",
        "samples-raycronjob",
    ] {
        let dir = controlplane::kuberay_path(d);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        for f in files {
            for (k, d) in controlplane::yaml_docs(&f).into_iter().enumerate() {
                if d["kind"].as_str().and_then(Kind::from_name).is_some() {
                    out.push((
                        format!("{}#{k}", f.file_name().unwrap().to_string_lossy()),
                        d,
                    ));
                }
            }
        }
    }
    let count = |k: Kind| out.iter().filter(|(_, d)| kind_of(d) == k).count();
    assert!(
        count(Kind::RayCluster) >= 40 && policy::KINDS.iter().all(|&k| count(k) > 0),
        "expected the KubeRay samples of every kind, found {:?}",
        policy::KINDS.map(|k| (k.name(), count(k)))
    );
    out
}

/// A RayJob case as the `jobTemplate` of a RayCronJob (its annotations do not reach the
/// template).
fn as_cronjob(job: &Value) -> Value {
    let mut cron = kind_cases::base(Kind::RayCronJob);
    cron["spec"]["jobTemplate"] = job["spec"].clone();
    cron
}

/// A RayCluster rule case as the spec of a RayJob (its annotations on the RayJob): the embedded
/// checks on every case of the RayCluster table. None for cases that are not objects.
fn as_rayjob(cluster: &Value) -> Option<Value> {
    let spec = cluster.get("spec")?;
    let mut job = kind_cases::base(Kind::RayJob);
    job["spec"]["rayClusterSpec"] = spec.clone();
    if let Some(a) = cluster.pointer("/metadata/annotations") {
        job["metadata"]["annotations"] = a.clone();
    }
    Some(job)
}

/// Case `c` with its objects wrapped by `wrap` into objects of `kind` (same rule, path, message,
/// severity and gates); None when `wrap` gives none.
fn wrapped(
    c: &rule_cases::Case,
    kind: Kind,
    wrap: impl Fn(&Value) -> Option<Value>,
) -> Option<rule_cases::Case> {
    let mut e = rule_cases::case(c.id, &c.path, &c.msg, wrap(&c.bad)?, wrap(&c.good)?)
        .kind(kind)
        .gates(c.gates);
    e.severity = c.severity;
    Some(e)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_policies_agree_with_validate_on_samples_and_rule_table() {
    let client = cp().client();
    install_crd(&client).await;
    let mut cases = rule_cases::cases();
    // The same table with each RayCluster case embedded in a RayJob, then the kinds' own table.
    let embedded: Vec<rule_cases::Case> = cases
        .iter()
        .filter(|c| c.old.is_none())
        .filter_map(|c| wrapped(c, Kind::RayJob, as_rayjob))
        .collect();
    cases.extend(embedded);
    // The kinds' own table, and its RayJob cases as the jobTemplate of a RayCronJob.
    let kinds = kind_cases::cases();
    let templated: Vec<rule_cases::Case> = kinds
        .iter()
        .filter(|c| c.kind == Kind::RayJob && c.old.is_none())
        .filter(|c| !c.id.starts_with("JM") && c.id != "JST1")
        .filter_map(|c| wrapped(c, Kind::RayCronJob, |j| Some(as_cronjob(j))))
        .collect();
    cases.extend(kinds);
    cases.extend(templated);
    let mut gate_strings: Vec<&str> = vec!["", rule_cases::ALL_GATES];
    for c in &cases {
        if !gate_strings.contains(&c.gates) {
            gate_strings.push(c.gates);
        }
    }
    let mut sets = Vec::new();
    for (i, g) in gate_strings.iter().enumerate() {
        sets.push(install_gate_set(&client, &format!("g{i}"), g, false).await);
    }
    for s in &sets {
        wait_active(&client, s).await;
    }

    // The status of the policies: `status.typeChecking` is written by kube-controller-manager's
    // ValidatingAdmissionPolicy status controller, which this harness does not run (see
    // docs/policy.md, "Cost"); printed for the record.
    let vaps = api(
        &client,
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
    );
    for k in policy::KINDS {
        let name = policy::validating_name_for(&sets[0].opts, k);
        let p = vaps.get(&name).await.unwrap();
        eprintln!(
            "{name}: {} validations, status: {}",
            policy::policy_for(k, &sets[0].gates).checks.len(),
            serde_json::to_string(&p.data.get("status")).unwrap()
        );
    }

    let mut t = Tally::default();
    for (name, doc) in samples() {
        for set in &sets[..2] {
            t.check(&client, format!("sample {name}"), &doc, set).await;
        }
    }
    // Generated objects for the parsers and orderings the table has one case of: SM3's Go
    // duration / integer parsing, CJ5's time zones, JD15's TTL order (also as a RayCronJob's
    // template).
    let default_set = &sets[0];
    for (label, obj) in kind_cases::initializing_timeout_objects()
        .into_iter()
        .chain(kind_cases::time_zone_objects())
    {
        t.check(&client, label, &obj, default_set).await;
    }
    for (label, obj) in kind_cases::deletion_rule_objects() {
        t.check(
            &client,
            format!("{label} (cron)"),
            &as_cronjob(&obj),
            default_set,
        )
        .await;
        t.check(&client, label, &obj, default_set).await;
    }
    for (k, c) in cases.iter().enumerate() {
        if c.old.is_some() {
            // UPDATE cases: the CRD's transition rules (CRD-IMMUTABLE-*) and RayService warnings.
            *t.counts.entry("skipped (UPDATE case)").or_default() += 1;
            continue;
        }
        let set = sets
            .iter()
            .find(|s| s.gates == FeatureGates::parse(c.gates).unwrap())
            .unwrap();
        let label = format!("case {k} {} {}", c.kind.name(), c.id);
        t.check(&client, format!("{label} (bad)"), &c.bad, set)
            .await;
        t.check(&client, format!("{label} (good)"), &c.good, set)
            .await;
    }
    eprintln!("verdicts: {:?}", t.counts);
    eprintln!("verdicts per kind: {:?}", t.per_kind);
    for k in policy::KINDS {
        let n = |what: &str| t.per_kind.get(&(k.name(), what)).copied().unwrap_or(0);
        assert!(
            n("allowed by both") > 0 && n("denied by both, same message") > 0,
            "{}: no allowed or no denied object through the API server",
            k.name()
        );
    }
    eprintln!("denials per rule: {:?}", t.denied);
    assert!(
        t.failures.is_empty(),
        "{} disagreement(s):\n{}",
        t.failures.len(),
        t.failures.join("\n")
    );
    assert!(
        t.paths.is_empty(),
        "recorded field paths that do not match raygate's:\n{}",
        t.paths.join("\n")
    );
    // Every exported rule was seen denying through the API server at least once: every
    // RayCluster rule (also embedded in a RayJob), and the kinds' own rules.
    let mut unseen = Vec::new();
    for set in &sets {
        for k in policy::KINDS {
            for c in policy::policy_for(k, &set.gates).checks {
                let own = k == Kind::RayCluster
                    || k == Kind::RayJob
                    || raygate::rules::kinds::RULE_IDS.contains(&c.id);
                if own && !t.denied.contains_key(&format!("{} {}", k.name(), c.id)) {
                    unseen.push(format!("{} {}", k.name(), c.id));
                }
            }
        }
    }
    unseen.sort();
    unseen.dedup();
    // Rules the tables cannot reach through the API server (its schema refuses the object
    // first).
    // A RayJob's J12 (no Kubernetes token auth) comes before the embedded AU4–AU6, which all
    // need enableK8sTokenAuth.
    let unreachable = |r: &str| {
        let (kind, id) = r.split_once(' ').unwrap();
        ["S1", "W1", "W2", "U1"].contains(&id)
            || (kind != "RayCluster"
                && ["JD4", "JD5", "JD10", "JD11", "J15", "SV4", "SVU3", "SVU4"].contains(&id))
            || (kind == "RayJob" && ["AU4", "AU5", "AU6"].contains(&id))
            || UNMODELLED_CRD.iter().any(|(x, _)| *x == id)
    };
    unseen.retain(|r| !unreachable(r));
    assert!(
        unseen.is_empty(),
        "exported rules never denied through the API server: {unseen:?}"
    );
}

/// A server-side dry-run create of `obj`.
async fn dry_run(api: &Api<DynamicObject>, obj: &Value) -> kube::Result<DynamicObject> {
    let pp = PostParams {
        dry_run: true,
        ..Default::default()
    };
    api.create(&pp, &to_dynamic(obj.clone())).await
}

/// A server-side dry-run create that must succeed: the object as it would be stored.
async fn dry_create(api: &Api<DynamicObject>, obj: &Value) -> DynamicObject {
    dry_run(api, obj)
        .await
        .unwrap_or_else(|e| panic!("dry-run create: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutating_policy_stores_the_webhook_defaults_idempotently() {
    let client = cp().client();
    install_crd(&client).await;
    let set = install_gate_set(&client, "mutating", "", true).await;
    wait_active(&client, &set).await;
    let docs =
        controlplane::yaml_docs(&controlplane::kuberay_path("samples/ray-cluster.auth.yaml"));
    let mut rc = docs
        .into_iter()
        .find(|d| d["kind"] == "RayCluster")
        .unwrap();
    assert_eq!(rc["spec"]["enableInTreeAutoscaling"], true);
    assert!(rc["spec"].get("autoscalerOptions").is_none());
    rc["metadata"] = json!({"name": "mutated", "namespace": set.ns});
    let want = raygate::defaulting::defaulted(&rc)["spec"]["autoscalerOptions"].clone();
    assert_eq!(want["imagePullPolicy"], "IfNotPresent");
    assert_eq!(
        want["resources"]["limits"],
        json!({"cpu": "500m", "memory": "512Mi"})
    );

    let api = rayclusters(&client, &set.ns, "v1");
    let dynobj: DynamicObject = serde_json::from_value(rc.clone()).unwrap();
    // The mutating policy may need a moment to be in force too.
    let deadline = Instant::now() + Duration::from_secs(60);
    let created = loop {
        let dry = dry_create(&api, &rc).await;
        if dry.data["spec"].get("autoscalerOptions").is_some() {
            break api
                .create(&PostParams::default(), &dynobj)
                .await
                .expect("create");
        }
        assert!(
            Instant::now() < deadline,
            "mutating policy not in force after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        created.data["spec"]["autoscalerOptions"], want,
        "stored defaults"
    );
    let stored = api.get("mutated").await.unwrap();
    assert_eq!(stored.data["spec"]["autoscalerOptions"], want);

    // Idempotent: a second write (a label change) stores the same spec.
    let patched = api
        .patch(
            "mutated",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["spec"], stored.data["spec"]);
    assert_eq!(
        patched.metadata.generation, stored.metadata.generation,
        "no spec change on the second write"
    );

    // A user's own value is kept; only absent fields are added.
    let mut own = rc.clone();
    own["metadata"]["name"] = json!("own-policy");
    own["spec"]["autoscalerOptions"] = json!({"imagePullPolicy": "Always"});
    let got = dry_create(&api, &own).await;
    assert_eq!(
        got.data["spec"]["autoscalerOptions"],
        raygate::defaulting::defaulted(&own)["spec"]["autoscalerOptions"]
    );
    assert_eq!(
        got.data["spec"]["autoscalerOptions"]["imagePullPolicy"],
        "Always"
    );

    // Without in-tree autoscaling nothing is added.
    let mut off = rc.clone();
    off["metadata"]["name"] = json!("no-autoscaler");
    off["spec"]["enableInTreeAutoscaling"] = json!(false);
    let got = dry_create(&api, &off).await;
    assert!(got.data["spec"].get("autoscalerOptions").is_none());
}

/// Field paths (#15): a ValidatingAdmissionPolicy validation has `expression`, `message`,
/// `messageExpression` and `reason` and no field path (admissionregistration.k8s.io/v1 in
/// Kubernetes 1.34; `fieldPath` exists only on a CRD's `x-kubernetes-validations` rules), and the
/// API server's denial has one cause with the message and no `field`. So raygate keeps the path
/// each validation reports in the policy's `raygate.io/rules` annotation; this pins both facts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validations_have_no_field_path_and_denials_name_no_field() {
    let client = cp().client();
    install_crd(&client).await;
    let set = install_gate_set(&client, "fieldpath", "", false).await;
    wait_active(&client, &set).await;

    // The denial of a W5 violation: reason Invalid (422), one cause, the message, no field.
    let mut bad = common::base();
    bad["metadata"] = json!({"name": "field-path", "namespace": set.ns});
    bad["spec"]["workerGroupSpecs"][0]["minReplicas"] = json!(9);
    let s = match dry_run(&rayclusters(&client, &set.ns, "v1"), &bad).await {
        Err(kube::Error::Api(s)) => s,
        other => panic!("expected a denial, got {other:?}"),
    };
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"), "{s:?}");
    let causes = s
        .details
        .as_ref()
        .map(|d| d.causes.clone())
        .unwrap_or_default();
    assert_eq!(causes.len(), 1, "{s:?}");
    assert_eq!(
        causes[0].field, "",
        "the API server now names a field: {s:?}"
    );
    let found = raygate::rules::validate(&bad, None, &ValidateOptions::default());
    let w5 = found.iter().find(|v| v.rule == "W5").unwrap();
    assert!(
        causes[0]
            .message
            .ends_with(&format!("denied request: {}", w5.message))
    );
    // The path raygate reports is the one the policy's annotation records for W5.
    let vap = policy::validating_policy(&set.opts);
    let rules = vap["metadata"]["annotations"]["raygate.io/rules"]
        .as_str()
        .unwrap();
    let recorded = rules
        .split(',')
        .find_map(|r| r.strip_prefix("W5="))
        .unwrap();
    assert!(
        path_matches(&w5.path, recorded),
        "{} vs {recorded}",
        w5.path
    );

    // A validation that declares `fieldPath` is not part of the API: refused under strict field
    // validation (what `kubectl apply` sends), so the export must not write one.
    let mut probe = vap.clone();
    probe["metadata"] = json!({"name": "raygate-fieldpath-probe"});
    probe["spec"]["validations"][0]["fieldPath"] = json!("spec.workerGroupSpecs");
    let vaps = api(
        &client,
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
    );
    let dynobj: DynamicObject = serde_json::from_value(probe).unwrap();
    let mut strict = PatchParams::apply(controlplane::FIELD_MANAGER).force();
    strict.field_validation = Some(kube::api::ValidationDirective::Strict);
    let err = vaps
        .patch("raygate-fieldpath-probe", &strict, &Patch::Apply(&dynobj))
        .await
        .expect_err("a validation with fieldPath was accepted");
    assert!(err.to_string().contains("fieldPath"), "{err}");
}

/// `spec.workerGroupSpecs[0].minReplicas` matches the recorded `spec.workerGroupSpecs[].minReplicas`
/// (list indices elided on both sides; the recorded path may stop at a parent of the reported
/// field; ` | ` separates alternatives).
fn path_matches(reported: &str, recorded: &str) -> bool {
    let elide = |p: &str| {
        let mut out = String::with_capacity(p.len());
        let mut rest = p;
        while let Some(i) = rest.find('[') {
            let (before, from) = rest.split_at(i);
            out.push_str(before);
            match from.find(']') {
                Some(j) if from[1..j].bytes().all(|b| b.is_ascii_digit()) => {
                    out.push_str("[]");
                    rest = &from[j + 1..];
                }
                _ => {
                    out.push('[');
                    rest = &from[1..];
                }
            }
        }
        out.push_str(rest);
        out
    };
    let r = elide(reported);
    recorded.split(" | ").map(elide).any(|want| {
        r == want || r.starts_with(&format!("{want}.")) || r.starts_with(&format!("{want}["))
    })
}
