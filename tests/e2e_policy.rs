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
#[path = "support/rule_cases.rs"]
mod rule_cases;

use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
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

fn rayclusters(client: &kube::Client, ns: &str, version: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("ray.io", version, "RayCluster");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "rayclusters");
    Api::namespaced_with(client.clone(), ns, &ar)
}

fn api(client: &kube::Client, group_version: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    let (g, v) = group_version.split_once('/').unwrap();
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(g, v, kind), plural);
    Api::all_with(client.clone(), &ar)
}

async fn install_crd(client: &kube::Client) {
    let mut docs =
        controlplane::yaml_docs(&controlplane::kuberay_path("crd/ray.io_rayclusters.yaml"));
    controlplane::install_crd(client, docs.remove(0)).await;
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
    let mut obj = obj.clone();
    obj["metadata"]["namespace"] = json!(ns);
    let dynobj: DynamicObject = serde_json::from_value(obj).unwrap();
    let pp = PostParams {
        dry_run: true,
        ..Default::default()
    };
    match rayclusters(client, ns, version).create(&pp, &dynobj).await {
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
    let mut o = obj.clone();
    raygate::defaulting::apply_crd_defaults(&mut o);
    let opts = ValidateOptions {
        gates: gates.clone(),
        ..Default::default()
    };
    let errors: Vec<Violation> = raygate::rules::validate(&o, None, &opts)
        .into_iter()
        .filter(Violation::is_error)
        .collect();
    if errors
        .iter()
        .any(|v| v.rule.starts_with("CRD-") || v.rule == "RG-TYPE")
    {
        return Some(Expect::RefusedBeforeAdmission(format!("{errors:?}")));
    }
    let order: Vec<&str> = policy::checks(gates).iter().map(|c| c.id).collect();
    let mut exported: Vec<&Violation> = errors
        .iter()
        .filter(|v| order.contains(&v.rule.as_str()))
        .collect();
    // One policy, validations in rule order: the API server reports the first failing one.
    exported.sort_by_key(|v| order.iter().position(|r| *r == v.rule));
    match exported.first() {
        Some(v) => Some(Expect::Denied(v.rule.clone(), v.message.clone())),
        None if errors.is_empty() => Some(Expect::Allowed),
        None => None,
    }
}

#[derive(Debug)]
enum Expect {
    Allowed,
    Denied(String, String),
    RefusedBeforeAdmission(String),
}

fn agrees(e: &Expect, got: &Verdict) -> bool {
    match (e, got) {
        (Expect::Allowed, Verdict::Allowed) => true,
        (Expect::Denied(_, m), Verdict::Policy(g)) => m == g,
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

/// Waits until the binding is in force: a W5 violation is denied by the policy.
async fn wait_active(client: &kube::Client, set: &GateSet) {
    let mut probe = common::base();
    probe["spec"]["workerGroupSpecs"][0]["minReplicas"] = json!(9);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = dry_run_create(client, &set.ns, &probe).await;
        if matches!(v, Verdict::Policy(_)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "policy {} not in force after 60 s: {v:?}\n{}",
            policy::validating_name(&set.opts),
            cp().apiserver_log_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[derive(Default)]
struct Tally {
    failures: Vec<String>,
    counts: BTreeMap<&'static str, usize>,
    denied: BTreeMap<String, usize>,
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
            Expect::Denied(r, _) => {
                *self.denied.entry(r.clone()).or_default() += 1;
                "denied by both, same message"
            }
            Expect::RefusedBeforeAdmission(_) => "refused by the CRD before admission",
        };
        *self.counts.entry(what).or_default() += 1;
    }
}

fn samples() -> Vec<(String, Value)> {
    let dir = controlplane::kuberay_path("samples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        for (k, d) in controlplane::yaml_docs(&f).into_iter().enumerate() {
            if d["kind"] == "RayCluster" {
                out.push((
                    format!("{}#{k}", f.file_name().unwrap().to_string_lossy()),
                    d,
                ));
            }
        }
    }
    assert!(
        out.len() >= 40,
        "expected the KubeRay samples, found {}",
        out.len()
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_policies_agree_with_validate_on_samples_and_rule_table() {
    let client = cp().client();
    install_crd(&client).await;
    let cases = rule_cases::cases();
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

    // Type checking and compile results, as the API server reports them.
    let vaps = api(
        &client,
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
    );
    for s in &sets {
        let name = policy::validating_name(&s.opts);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let p = vaps.get(&name).await.unwrap();
            let status = p.data.get("status").cloned().unwrap_or(Value::Null);
            if status.get("typeChecking").is_some() || Instant::now() > deadline {
                eprintln!(
                    "{name}: {} validations, status: {}",
                    policy::checks(&s.gates).len(),
                    serde_json::to_string(&status).unwrap()
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    let mut t = Tally::default();
    for (name, doc) in samples() {
        for set in &sets[..2] {
            t.check(&client, format!("sample {name}"), &doc, set).await;
        }
    }
    for (k, c) in cases.iter().enumerate() {
        if c.old.is_some() {
            // UPDATE transition rules are the CRD's own (CRD-IMMUTABLE-*), not exported.
            *t.counts
                .entry("skipped (UPDATE case of a CRD rule)")
                .or_default() += 1;
            continue;
        }
        let set = sets
            .iter()
            .find(|s| s.gates == FeatureGates::parse(c.gates).unwrap())
            .unwrap();
        t.check(&client, format!("case {k} {} (bad)", c.id), &c.bad, set)
            .await;
        t.check(&client, format!("case {k} {} (good)", c.id), &c.good, set)
            .await;
    }
    eprintln!("verdicts: {:?}", t.counts);
    eprintln!("denials per rule: {:?}", t.denied);
    assert!(
        t.failures.is_empty(),
        "{} disagreement(s):\n{}",
        t.failures.len(),
        t.failures.join("\n")
    );
    // Every exported rule was seen denying through the API server at least once.
    let mut unseen = Vec::new();
    for set in &sets {
        for c in policy::checks(&set.gates) {
            if !t.denied.contains_key(c.id) {
                unseen.push(c.id);
            }
        }
    }
    unseen.sort();
    unseen.dedup();
    // Rules the table cannot reach through the API server (its schema refuses the object first).
    unseen.retain(|r| !["S1", "W1", "W2", "U1"].contains(r));
    assert!(
        unseen.is_empty(),
        "exported rules never denied through the API server: {unseen:?}"
    );
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
        let dry = api
            .create(
                &PostParams {
                    dry_run: true,
                    ..Default::default()
                },
                &dynobj,
            )
            .await
            .expect("dry-run create");
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
    let dynobj: DynamicObject = serde_json::from_value(own.clone()).unwrap();
    let got = api
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &dynobj,
        )
        .await
        .unwrap();
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
    let dynobj: DynamicObject = serde_json::from_value(off).unwrap();
    let got = api
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &dynobj,
        )
        .await
        .unwrap();
    assert!(got.data["spec"].get("autoscalerOptions").is_none());
}
