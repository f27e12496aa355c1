//! The Helm chart `deploy/helm/raygate`: `helm lint --strict` and `helm template` for every
//! values combination the chart supports (each rendered object checked against the server's and
//! the autoscaler's real CLI definitions), `values.schema.json` and the chart's cross-field checks
//! refusing bad values with the field named, and no drift from the kustomize manifests: kustomize
//! renders deploy/ and the chart renders the same values, object by object.
//!
//! Helm comes from `scripts/helm-bin.sh` (`RAYGATE_HELM_BIN`), kustomize from
//! `scripts/envtest-bins.sh` (`RAYGATE_ENVTEST_BIN`). Run alone: `cargo test --test helm_chart`.

#[path = "support/controlplane.rs"]
mod controlplane;
#[path = "support/helm.rs"]
mod helm;

use base64::Engine as _;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const NS: &str = "raygate-system";
const RELEASE: &str = "rg";
const URL: &str = helm::COMBO_URL;
const USER_CA: &str = helm::COMBO_USER_CA;

use helm::{Autoscaler, Combo};
use raygate::model::Kind;

fn autoscaler_on(c: &Combo) -> bool {
    !matches!(c.autoscaler, Autoscaler::Off)
}

/// Every (kind, name) a combination must render, and nothing else.
fn expected_objects(c: &Combo) -> BTreeSet<(String, String)> {
    let mut e: Vec<(&str, &str)> = vec![
        ("ServiceAccount", "raygate-webhook"),
        ("Deployment", "raygate-webhook"),
        ("Service", "raygate-webhook"),
        ("PodDisruptionBudget", "raygate-webhook"),
        ("ValidatingWebhookConfiguration", "raygate-validating"),
        ("MutatingWebhookConfiguration", "raygate-mutating"),
        // the fail-closed webhook's priority (issue #14)
        ("PriorityClass", "raygate-webhook-critical"),
    ];
    match c.certs {
        "self-managed" => {
            e.push(("Secret", "raygate-webhook-ca"));
            e.push(("Secret", "raygate-webhook-tls"));
        }
        "cert-manager" => {
            e.push(("Issuer", "raygate-selfsigned"));
            e.push(("Issuer", "raygate-ca"));
            e.push(("Certificate", "raygate-webhook-ca"));
            e.push(("Certificate", "raygate-webhook"));
        }
        _ => {}
    }
    if autoscaler_on(c) {
        e.extend([
            ("ServiceAccount", "raygate-autoscaler"),
            ("ClusterRole", "raygate-autoscaler"),
            ("ClusterRoleBinding", "raygate-autoscaler"),
            ("Role", "raygate-autoscaler-leader-election"),
            ("RoleBinding", "raygate-autoscaler-leader-election"),
            ("Deployment", "raygate-autoscaler"),
            ("PodDisruptionBudget", "raygate-autoscaler"),
        ]);
    }
    if c.extras {
        e.push(("ConfigMap", "raygate-crd-conversion"));
        e.push(("ServiceMonitor", "raygate-webhook"));
        e.push(("NetworkPolicy", "raygate-webhook"));
        if autoscaler_on(c) {
            e.push(("Service", "raygate-autoscaler-metrics"));
            e.push(("ServiceMonitor", "raygate-autoscaler"));
        }
    }
    e.into_iter()
        .map(|(k, n)| (k.to_string(), n.to_string()))
        .collect()
}

const CLUSTER_SCOPED: &[&str] = &[
    "ClusterRole",
    "ClusterRoleBinding",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "CustomResourceDefinition",
    "Namespace",
    "PriorityClass",
];

fn key(o: &Value) -> (String, String) {
    (
        o["kind"].as_str().unwrap_or("").to_string(),
        o["metadata"]["name"].as_str().unwrap_or("").to_string(),
    )
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} rendered"))
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|a| a.as_str().unwrap_or_else(|| panic!("not a string: {a}")))
        .collect()
}

fn unb64(s: &str) -> String {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(s.split_whitespace().collect::<String>())
        .unwrap_or_else(|e| panic!("not base64 ({e}): {s}"));
    String::from_utf8(raw).expect("PEM is UTF-8")
}

/// Checks one rendered combination against what the combination asks for.
fn check_render(c: &Combo, docs: &[Value]) {
    let what = format!("{c:?}");
    let got: BTreeSet<(String, String)> = docs.iter().map(key).collect();
    assert_eq!(got.len(), docs.len(), "{what}: duplicate objects");
    assert_eq!(got, expected_objects(c), "{what}: rendered objects");

    for o in docs {
        let (kind, name) = key(o);
        let labels = &o["metadata"]["labels"];
        assert_eq!(
            labels["app.kubernetes.io/part-of"], "raygate",
            "{what}: {kind} {name}"
        );
        assert_eq!(
            labels["app.kubernetes.io/instance"], RELEASE,
            "{what}: {kind} {name}"
        );
        if CLUSTER_SCOPED.contains(&kind.as_str()) {
            assert!(
                o["metadata"]["namespace"].is_null(),
                "{what}: {kind} {name} has a namespace"
            );
        } else {
            assert_eq!(
                o["metadata"]["namespace"], NS,
                "{what}: {kind} {name} namespace"
            );
        }
    }

    // The webhook Deployment's args parse with the real `raygate serve` definition and fit the
    // webhook configurations' timeout and the pod's grace period.
    let d = find(docs, "Deployment", "raygate-webhook");
    let pod = &d["spec"]["template"]["spec"];
    let args = strs(&pod["containers"][0]["args"]);
    assert_eq!(args[0], "serve", "{what}");
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Serve {
        #[command(flatten)]
        serve: raygate::cli::serve::ServeArgs,
    }
    let serve = Serve::try_parse_from(std::iter::once("raygate").chain(args[1..].iter().copied()))
        .unwrap_or_else(|e| panic!("{what}: webhook args {args:?}: {e}"));
    let opts = serve.serve.to_options().expect("serve options");
    assert_eq!(opts.listen.port(), 9443);
    assert_eq!(opts.admin_listen.port(), 8080);
    let grace = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("grace");
    assert!(
        (opts.shutdown_delay + opts.drain_timeout).as_secs() <= grace,
        "{what}"
    );
    let tls_secret = if c.certs == "secret" {
        "my-tls"
    } else {
        "raygate-webhook-tls"
    };
    assert_eq!(
        pod["volumes"][0]["secret"]["secretName"], tls_secret,
        "{what}"
    );
    if c.certs == "cert-manager" {
        let cert = find(docs, "Certificate", "raygate-webhook");
        assert_eq!(cert["spec"]["secretName"], tls_secret, "{what}");
        let dns = strs(&cert["spec"]["dnsNames"]);
        assert!(
            dns.contains(&"raygate-webhook.raygate-system.svc"),
            "{what}: {dns:?}"
        );
        if c.url {
            assert_eq!(cert["spec"]["ipAddresses"], json!(["127.0.0.1"]), "{what}");
        }
    }

    // caBundle of every clientConfig: the generated CA (self-managed), the given one (secret),
    // none but the cainjector annotation (cert-manager).
    let ca_bundle = match c.certs {
        "self-managed" => {
            let ca = find(docs, "Secret", "raygate-webhook-ca");
            let tls = find(docs, "Secret", "raygate-webhook-tls");
            assert_eq!(ca["type"], "kubernetes.io/tls");
            assert_eq!(tls["type"], "kubernetes.io/tls");
            assert_eq!(tls["data"]["ca.crt"], ca["data"]["tls.crt"], "{what}");
            assert!(
                unb64(ca["data"]["tls.crt"].as_str().unwrap())
                    .starts_with("-----BEGIN CERTIFICATE-----")
            );
            assert!(unb64(tls["data"]["tls.key"].as_str().unwrap()).contains("PRIVATE KEY-----"));
            let sans = tls["metadata"]["annotations"]["raygate.io/sans"]
                .as_str()
                .unwrap();
            assert!(
                sans.contains("raygate-webhook.raygate-system.svc,"),
                "{what}: {sans}"
            );
            assert!(sans.contains("ip=127.0.0.1"), "{what}: {sans}");
            Some(ca["data"]["tls.crt"].as_str().unwrap().to_string())
        }
        "secret" => Some(USER_CA.to_string()),
        _ => None,
    };
    let mut client_configs = Vec::new();
    for (kind, name, path_of) in [
        (
            "ValidatingWebhookConfiguration",
            "raygate-validating",
            raygate::webhook::admission::validate_path as fn(Kind) -> &'static str,
        ),
        (
            "MutatingWebhookConfiguration",
            "raygate-mutating",
            raygate::webhook::admission::mutate_path,
        ),
    ] {
        let w = find(docs, kind, name);
        let ann = &w["metadata"]["annotations"]["cert-manager.io/inject-ca-from"];
        if c.certs == "cert-manager" {
            assert_eq!(ann, "raygate-system/raygate-webhook", "{what}: {kind}");
        } else {
            assert!(ann.is_null(), "{what}: {kind}");
        }
        // One webhook per kind the server serves, each on that kind's resource and path.
        let hooks = w["webhooks"].as_array().unwrap();
        assert_eq!(hooks.len(), Kind::ALL.len(), "{what}: {kind} webhooks");
        for (hook, k) in hooks.iter().zip(Kind::ALL) {
            assert!(
                hook["timeoutSeconds"].as_u64().unwrap() > opts.request_timeout.as_secs(),
                "{what}: request timeout below timeoutSeconds"
            );
            assert_eq!(
                hook["rules"][0]["resources"],
                json!([k.plural()]),
                "{what}: {kind}"
            );
            client_configs.push((hook["clientConfig"].clone(), path_of(k)));
        }
    }
    if c.extras {
        let cm = find(docs, "ConfigMap", "raygate-crd-conversion");
        assert_eq!(
            cm["data"]["crds"],
            "rayclusters.ray.io rayjobs.ray.io rayservices.ray.io"
        );
        let patch: Value = serde_saphyr::from_str(cm["data"]["patch.yaml"].as_str().unwrap())
            .expect("patch.yaml is YAML");
        assert_eq!(patch["spec"]["conversion"]["strategy"], "Webhook", "{what}");
        client_configs.push((
            patch["spec"]["conversion"]["webhook"]["clientConfig"].clone(),
            raygate::webhook::server::CONVERT_PATH,
        ));
        let ann = &patch["metadata"]["annotations"]["cert-manager.io/inject-ca-from"];
        assert_eq!(c.certs == "cert-manager", !ann.is_null(), "{what}: {patch}");
    }
    for (cc, path) in client_configs {
        if c.url {
            assert_eq!(cc["url"], format!("{URL}{path}"), "{what}");
            assert!(cc["service"].is_null(), "{what}");
        } else {
            assert_eq!(
                cc["service"],
                json!({ "name": "raygate-webhook", "namespace": NS, "path": path, "port": 443 }),
                "{what}"
            );
        }
        match &ca_bundle {
            Some(b) => assert_eq!(cc["caBundle"], b.as_str(), "{what}: caBundle at {path}"),
            None => assert!(cc["caBundle"].is_null(), "{what}: {cc}"),
        }
    }

    if autoscaler_on(c) {
        let d = find(docs, "Deployment", "raygate-autoscaler");
        let args = strs(&d["spec"]["template"]["spec"]["containers"][0]["args"]);
        assert_eq!(&args[..2], &["autoscale", "run"], "{what}");
        #[derive(clap::Parser)]
        struct Run {
            #[command(flatten)]
            run: raygate::controller::RunArgs,
        }
        let run = Run::try_parse_from(std::iter::once("raygate").chain(args[2..].iter().copied()))
            .unwrap_or_else(|e| panic!("{what}: autoscaler args {args:?}: {e}"));
        let reconcile = matches!(c.autoscaler, Autoscaler::ReconcilePods);
        assert_eq!(run.run.reconcile_pods, reconcile, "{what}");
        assert_eq!(run.run.admin_listen.port(), 8081);
        let role = find(docs, "ClusterRole", "raygate-autoscaler");
        let pod_writes =
            role["rules"].as_array().unwrap().iter().any(|r| {
                strs(&r["resources"]) == ["pods"] && strs(&r["verbs"]).contains(&"create")
            });
        assert_eq!(
            pod_writes, reconcile,
            "{what}: pods create in the ClusterRole"
        );
        let b = find(docs, "ClusterRoleBinding", "raygate-autoscaler");
        assert_eq!(
            b["subjects"],
            json!([{ "kind": "ServiceAccount", "name": "raygate-autoscaler", "namespace": NS }])
        );
    }
    if c.extras {
        let sm = find(docs, "ServiceMonitor", "raygate-webhook");
        let svc = find(docs, "Service", "raygate-webhook");
        for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
            assert_eq!(
                &svc["metadata"]["labels"][k], v,
                "{what}: ServiceMonitor selects the Service"
            );
        }
        // The NetworkPolicy selects the webhook pods and opens exactly their two named ports.
        let np = find(docs, "NetworkPolicy", "raygate-webhook");
        assert_eq!(
            np["spec"]["podSelector"]["matchLabels"], d["spec"]["selector"]["matchLabels"],
            "{what}"
        );
        let ports: Vec<&Value> = np["spec"]["ingress"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["ports"][0]["port"])
            .collect();
        let named: Vec<&Value> = pod["containers"][0]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| &p["name"])
            .collect();
        assert_eq!(ports, named, "{what}: NetworkPolicy ports");
        let port = sm["spec"]["endpoints"][0]["port"].as_str().unwrap();
        assert!(
            svc["spec"]["ports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == port),
            "{what}: Service has port {port}"
        );
    }
}

#[test]
fn lint_and_template_every_supported_combination() {
    let chart = helm::chart_dir().display().to_string();
    let combos = Combo::all();
    for c in &combos {
        let mut args: Vec<String> = vec![
            "lint".into(),
            "--strict".into(),
            chart.clone(),
            "--namespace".into(),
            NS.into(),
        ];
        for s in c.sets() {
            args.push("--set".into());
            args.push(s);
        }
        let out = helm::ok(&args);
        assert!(
            out.contains("1 chart(s) linted, 0 chart(s) failed"),
            "{c:?}: {out}"
        );
        let sets = c.sets();
        let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
        let docs = helm::template(RELEASE, NS, &sets);
        check_render(c, &docs);
    }
    eprintln!(
        "helm lint --strict + helm template: {} combinations",
        combos.len()
    );
}

#[test]
fn bad_values_fail_with_the_field_named() {
    for (set, says) in [
        ("certs.mode=bogus", "at '/certs/mode': value must be one of"),
        ("webhook.replicas=0", "at '/webhook/replicas': minimum"),
        (
            "webhook.replica=3",
            "at '/webhook': additional properties 'replica' not allowed",
        ),
        ("namePrefix=Not_A_Name", "at '/namePrefix'"),
        ("webhook.url=http://127.0.0.1:9443", "at '/webhook/url'"),
        (
            "webhook.failurePolicy=Sometimes",
            "at '/webhook/failurePolicy'",
        ),
        ("webhook.timeoutSeconds=31", "at '/webhook/timeoutSeconds'"),
        ("autoscaler.interval=5x", "at '/autoscaler/interval'"),
        ("autoscaler.enabled=yes", "at '/autoscaler/enabled'"),
        ("image.pullPolicy=Sometimes", "at '/image/pullPolicy'"),
        ("certs.mode=secret", "at '/certs/secret/name': minLength"),
        (
            "certs.certManager.issuerRef.kind=Issuer",
            "at '/certs/certManager/issuerRef'",
        ),
        (
            "networkPolicy.apiServer.ipBlocks={10.0.0.1}",
            "at '/networkPolicy/apiServer/ipBlocks/0'",
        ),
        (
            "webhook.requestTimeoutSeconds=10",
            "webhook.requestTimeoutSeconds (10) must be below webhook.timeoutSeconds (10)",
        ),
        (
            "webhook.terminationGracePeriodSeconds=20",
            "webhook.terminationGracePeriodSeconds (20) must be >= webhook.shutdownDelaySeconds + webhook.drainTimeoutSeconds (35)",
        ),
    ] {
        let chart = helm::chart_dir().display().to_string();
        // `helm lint` checks the schema, but reports a template's `fail` only as INFO (Helm's
        // lint renders leniently); `helm template`/`install` refuse both.
        let cmds: &[&str] = if says.starts_with("at '/") {
            &["template", "lint"]
        } else {
            &["template"]
        };
        for cmd in cmds {
            let r = helm::run(&[cmd, chart.as_str(), "--set", set]);
            let all = format!("{}{}", r.stderr, r.stdout);
            assert!(!r.ok, "helm {cmd} --set {set} should fail:\n{all}");
            assert!(
                all.contains(says),
                "helm {cmd} --set {set}: expected {says:?} in:\n{all}"
            );
        }
    }
}

#[test]
fn optional_values_reach_the_objects() {
    let docs = helm::template(
        RELEASE,
        NS,
        &[
            "namePrefix=rg2",
            "image.tag=9.9.9",
            "webhook.replicas=3",
            "webhook.sidecarImage=example.org/ray-sidecar:1",
            "webhook.sidecarKuberayVersion=1.6",
            "webhook.extraArgs={--feature-gates=RayClusterStatusConditions=true}",
            "webhook.namespaceSelector.matchLabels.team=ml",
            "webhook.failurePolicy=Ignore",
            "webhook.pdb.enabled=false",
            "certs.mode=cert-manager",
            "certs.certManager.issuerRef.kind=ClusterIssuer",
            "certs.certManager.issuerRef.name=corp-ca",
        ],
    );
    let kinds: BTreeSet<(String, String)> = docs.iter().map(key).collect();
    assert!(
        !kinds
            .iter()
            .any(|(k, _)| k == "Issuer" || k == "PodDisruptionBudget"),
        "{kinds:?}"
    );
    let d = find(&docs, "Deployment", "rg2-webhook");
    assert_eq!(d["spec"]["replicas"], 3);
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "ghcr.io/raygate/raygate:9.9.9");
    let args = strs(&c["args"]);
    assert!(
        args.contains(&"--sidecar-image=example.org/ray-sidecar:1")
            && args.contains(&"--sidecar-kuberay-version=1.6"),
        "{args:?}"
    );
    assert_eq!(
        args.last(),
        Some(&"--feature-gates=RayClusterStatusConditions=true")
    );
    let cert = find(&docs, "Certificate", "rg2-webhook");
    assert_eq!(
        cert["spec"]["issuerRef"],
        json!({ "kind": "ClusterIssuer", "name": "corp-ca" })
    );
    assert_eq!(cert["spec"]["secretName"], "rg2-webhook-tls");
    for (kind, name) in [
        ("ValidatingWebhookConfiguration", "rg2-validating"),
        ("MutatingWebhookConfiguration", "rg2-mutating"),
    ] {
        for h in find(&docs, kind, name)["webhooks"].as_array().unwrap() {
            assert_eq!(h["failurePolicy"], "Ignore");
            assert_eq!(
                h["namespaceSelector"],
                json!({ "matchLabels": { "team": "ml" } })
            );
            assert_eq!(h["clientConfig"]["service"]["name"], "rg2-webhook");
        }
        assert_eq!(
            find(&docs, kind, name)["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            "raygate-system/rg2-webhook"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// No drift from deploy/ (kustomize).

/// Labels only Helm adds (kustomize's `part-of` stays).
const HELM_LABELS: &[&str] = &[
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "helm.sh/chart",
];

/// The object without what legitimately differs between the two renderings: Helm's own labels
/// and the caBundles (generated per rendering; checked separately).
fn normalize(mut o: Value) -> Value {
    let meta = o
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .expect("metadata");
    if let Some(l) = meta.get_mut("labels").and_then(Value::as_object_mut) {
        for k in HELM_LABELS {
            l.remove(*k);
        }
        if l.is_empty() {
            meta.remove("labels");
        }
    }
    if let Some(hooks) = o.get_mut("webhooks").and_then(Value::as_array_mut) {
        for h in hooks {
            if let Some(cc) = h.get_mut("clientConfig").and_then(Value::as_object_mut) {
                cc.remove("caBundle");
            }
        }
    }
    o
}

fn by_key(objs: Vec<Value>) -> BTreeMap<(String, String), Value> {
    objs.into_iter()
        .filter(|o| o["kind"] != "Namespace")
        .map(|o| (key(&o), normalize(o)))
        .collect()
}

fn kustomize(dirs: &[&Path]) -> BTreeMap<(String, String), Value> {
    by_key(
        dirs.iter()
            .flat_map(|d| controlplane::kustomize_build(d))
            .collect(),
    )
}

/// `networkPolicy.enabled=<whether kustomize rendered the webhook's NetworkPolicy>`: the chart
/// ships it off by default; the overlays of deploy/ may include it (hardening issue #14).
fn network_policy_like(k: &BTreeMap<(String, String), Value>) -> String {
    let on = k.contains_key(&("NetworkPolicy".to_string(), "raygate-webhook".to_string()));
    format!("networkPolicy.enabled={on}")
}

/// Every object of `kustomize` is rendered identically by the chart; the chart renders nothing
/// else except `chart_only`.
fn assert_same(
    what: &str,
    kustomize: &BTreeMap<(String, String), Value>,
    chart: &BTreeMap<(String, String), Value>,
    chart_only: &[(&str, &str)],
) {
    for (k, want) in kustomize {
        let got = chart
            .get(k)
            .unwrap_or_else(|| panic!("{what}: the chart does not render {k:?}"));
        assert_eq!(
            got,
            want,
            "{what}: {k:?} drifted\nchart:     {}\nkustomize: {}",
            serde_json::to_string(got).unwrap(),
            serde_json::to_string(want).unwrap()
        );
    }
    let extra: BTreeSet<(String, String)> = chart
        .keys()
        .filter(|k| !kustomize.contains_key(*k))
        .cloned()
        .collect();
    let allowed: BTreeSet<(String, String)> = chart_only
        .iter()
        .map(|(k, n)| (k.to_string(), n.to_string()))
        .collect();
    assert_eq!(extra, allowed, "{what}: objects only the chart renders");
}

fn deploy() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

#[test]
fn chart_renders_what_kustomize_renders_cert_manager_and_autoscaler() {
    let d = deploy();
    let chart = |sets: &[&str]| by_key(helm::template(RELEASE, NS, sets));
    // cert-manager overlay + autoscaler
    let k = kustomize(&[&d.join("overlays/cert-manager"), &d.join("autoscaler/base")]);
    assert!(k.len() >= 17, "kustomize rendered {} objects", k.len());
    let c = chart(&[
        "certs.mode=cert-manager",
        "autoscaler.enabled=true",
        &network_policy_like(&k),
    ]);
    assert_same("cert-manager + autoscaler", &k, &c, &[]);
    // + reconcile-pods
    let k = kustomize(&[
        &d.join("overlays/cert-manager"),
        &d.join("autoscaler/reconcile-pods"),
    ]);
    let c = chart(&[
        "certs.mode=cert-manager",
        "autoscaler.enabled=true",
        "autoscaler.reconcilePods=true",
        &network_policy_like(&k),
    ]);
    assert_same("cert-manager + autoscaler --reconcile-pods", &k, &c, &[]);
    // the bare base (no certificate source) is the chart in mode secret minus nothing
    let k = kustomize(&[&d.join("base")]);
    let c = chart(&[
        "certs.mode=secret",
        "certs.secret.name=raygate-webhook-tls",
        &format!("certs.secret.caBundle={USER_CA}"),
        &network_policy_like(&k),
    ]);
    assert_same("base (secret mode)", &k, &c, &[]);

    // crd-conversion: the chart's one patch is each of the Component's patches, and its CRD list
    // is the Component's targets.
    let comp = controlplane::yaml_docs(&d.join("crd-conversion/kustomization.yaml")).remove(0);
    let docs = helm::template(
        RELEASE,
        NS,
        &["certs.mode=cert-manager", "crdConversion.enabled=true"],
    );
    let cm = find(&docs, "ConfigMap", "raygate-crd-conversion");
    let patch: Value = serde_saphyr::from_str(cm["data"]["patch.yaml"].as_str().unwrap()).unwrap();
    let mut targets = Vec::new();
    for p in comp["patches"].as_array().expect("Component patches") {
        let rel = p["path"].as_str().expect("patch path");
        let file = controlplane::yaml_docs(&d.join("crd-conversion").join(rel))
            .pop()
            .expect("conversion patch");
        assert_eq!(
            patch["spec"], file["spec"],
            "{rel}: crd-conversion spec drifted"
        );
        assert_eq!(
            patch["metadata"]["annotations"], file["metadata"]["annotations"],
            "{rel}: crd-conversion annotations drifted"
        );
        assert_eq!(p["target"]["name"], file["metadata"]["name"], "{rel}");
        targets.push(p["target"]["name"].as_str().unwrap().to_string());
    }
    assert!(!targets.is_empty());
    assert_eq!(
        cm["data"]["crds"],
        targets.join(" "),
        "CRDs the patch is for"
    );
    // NOTES.txt applies it to exactly those CRDs.
    let notes = helm::ok(&[
        "install",
        "rg",
        helm::chart_dir().to_str().unwrap(),
        "--dry-run=client",
        "--set",
        "crdConversion.enabled=true",
    ]);
    assert!(
        notes.contains(&format!(
            "for crd in {}; do kubectl patch crd",
            targets.join(" ")
        )),
        "{notes}"
    );
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        let to = dst.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &to);
        } else {
            std::fs::copy(&p, &to).unwrap();
        }
    }
}

#[test]
fn chart_renders_what_kustomize_renders_self_managed() {
    // The self-managed overlay needs `raygate certs generate` output (not in git).
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("deploy");
    copy_dir(&deploy(), &d);
    let certs = d.join("overlays/self-managed/certs");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_raygate"))
        .args(["certs", "generate", "--force", "--out"])
        .arg(&certs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let raw = controlplane::kustomize_build(&d.join("overlays/self-managed"));
    let mut k = by_key(raw.clone());
    let chart_docs = helm::template(RELEASE, NS, &[&network_policy_like(&k)]);
    let mut c = by_key(chart_docs.clone());

    // Both give every webhook its CA as caBundle (the generated one differs per rendering).
    for (docs, ca_of) in [(&raw, "kustomize"), (&chart_docs, "chart")] {
        let tls = find(docs, "Secret", "raygate-webhook-tls");
        let ca = tls["data"]["ca.crt"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .collect::<String>();
        for kind in [
            "ValidatingWebhookConfiguration",
            "MutatingWebhookConfiguration",
        ] {
            let w = docs.iter().find(|o| o["kind"] == kind).unwrap();
            for h in w["webhooks"].as_array().unwrap() {
                let b: String = h["clientConfig"]["caBundle"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{ca_of}: {kind} without caBundle"))
                    .split_whitespace()
                    .collect();
                assert_eq!(b, ca, "{ca_of}: {kind} caBundle is the Secret's ca.crt");
            }
        }
    }
    assert_eq!(
        unb64(
            &find(&raw, "Secret", "raygate-webhook-tls")["data"]["ca.crt"]
                .as_str()
                .unwrap()
                .split_whitespace()
                .collect::<String>()
        ),
        std::fs::read_to_string(certs.join("ca.crt")).unwrap()
    );
    // The TLS Secret: same name, type and keys; the data is per rendering and the chart records
    // the certificate's names and expiry in annotations.
    let key_tls = ("Secret".to_string(), "raygate-webhook-tls".to_string());
    for m in [&mut k, &mut c] {
        let s = m.get_mut(&key_tls).expect("TLS Secret");
        let keys: BTreeSet<String> = s["data"].as_object().unwrap().keys().cloned().collect();
        s["data"] = json!(keys);
        s["metadata"].as_object_mut().unwrap().remove("annotations");
    }
    assert_same("self-managed", &k, &c, &[("Secret", "raygate-webhook-ca")]);
}

/// Leaf fields of values.schema.json: an object with `properties` but no `description` of its
/// own is a group of fields (`webhook`, `webhook.pdb`); anything else is a field (`webhook.resources`).
fn schema_fields(prefix: &str, s: &Value, out: &mut Vec<String>) {
    for (k, v) in s["properties"].as_object().into_iter().flatten() {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if v["properties"].is_object() && v.get("description").is_none() {
            schema_fields(&path, v, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn every_value_is_in_the_schema_and_documented() {
    let chart = helm::chart_dir();
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(chart.join("values.schema.json")).unwrap())
            .expect("values.schema.json is JSON");
    let mut fields = Vec::new();
    schema_fields("", &schema, &mut fields);
    assert!(fields.len() > 40, "{fields:?}");
    // Each field has a description in the schema and a row in docs/helm.md's values table: its
    // full path in backticks, or `.leaf` on a row that names a sibling's full path.
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/helm.md"))
        .unwrap();
    let rows: Vec<&str> = doc.lines().filter(|l| l.starts_with("| `")).collect();
    let mut missing = Vec::new();
    for f in fields.iter().filter(|f| *f != "global") {
        let (parent, leaf) = f.rsplit_once('.').unwrap_or(("", f));
        let documented = rows.iter().any(|r| {
            r.contains(&format!("`{f}`"))
                || (!parent.is_empty()
                    && r.contains(&format!("`{parent}."))
                    && r.contains(&format!("`.{leaf}`")))
        });
        if !documented {
            missing.push(f.clone());
        }
        let mut node = &schema;
        for part in f.split('.') {
            node = &node["properties"][part];
        }
        assert!(
            node["description"].is_string(),
            "{f}: no description in values.schema.json"
        );
    }
    assert!(
        missing.is_empty(),
        "not in docs/helm.md's values table: {missing:?}"
    );
    // values.yaml holds exactly the schema's top-level groups (a key outside the schema would
    // already fail every `helm lint`).
    let values = controlplane::yaml_docs(&chart.join("values.yaml")).remove(0);
    let top: BTreeSet<&String> = values.as_object().unwrap().keys().collect();
    let want: BTreeSet<&String> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "global")
        .collect();
    assert_eq!(top, want);
}

/// `metrics.prometheusRule.enabled` / `metrics.grafanaDashboard.enabled` (issue #17): off by
/// default; on, the chart renders what kustomize renders of deploy/monitoring, object for object,
/// from copies in the chart's files/ that must stay byte-equal to deploy/monitoring's.
#[test]
fn monitoring_values_render_deploy_monitoring() {
    let d = deploy();
    for f in ["prometheusrule.yaml", "grafana-dashboard.json"] {
        let read = |p: &Path| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(
            read(&d.join("monitoring").join(f)) == read(&helm::chart_dir().join("files").join(f)),
            "deploy/helm/raygate/files/{f} drifted from deploy/monitoring/{f} (copy it over)"
        );
    }
    let keys = |sets: &[&str]| -> BTreeSet<(String, String)> {
        helm::template(RELEASE, NS, sets).iter().map(key).collect()
    };
    let off = keys(&[]);
    assert!(
        !off.iter()
            .any(|(k, n)| k == "PrometheusRule" || n == "raygate-grafana-dashboard"),
        "monitoring objects rendered by default: {off:?}"
    );
    let rule = ("PrometheusRule".to_string(), "raygate-webhook".to_string());
    let dash = (
        "ConfigMap".to_string(),
        "raygate-grafana-dashboard".to_string(),
    );
    let only = |sets: &[&str]| -> BTreeSet<(String, String)> {
        keys(sets).difference(&off).cloned().collect()
    };
    assert_eq!(
        only(&["metrics.prometheusRule.enabled=true"]),
        BTreeSet::from([rule.clone()])
    );
    assert_eq!(
        only(&["metrics.grafanaDashboard.enabled=true"]),
        BTreeSet::from([dash.clone()])
    );

    let both = [
        "metrics.prometheusRule.enabled=true",
        "metrics.grafanaDashboard.enabled=true",
    ];
    let mut args = vec!["lint", "--strict"];
    let chart = helm::chart_dir().display().to_string();
    args.push(&chart);
    for s in both {
        args.extend(["--set", s]);
    }
    let out = helm::ok(&args);
    assert!(out.contains("0 chart(s) failed"), "{out}");
    let k = kustomize(&[&d.join("monitoring")]);
    assert_eq!(
        k.keys().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from([rule.clone(), dash.clone()])
    );
    let c: BTreeMap<(String, String), Value> = by_key(helm::template(RELEASE, NS, &both))
        .into_iter()
        .filter(|(key, _)| !off.contains(key))
        .collect();
    assert_same("deploy/monitoring", &k, &c, &[]);
    // the ConfigMap holds the dashboard JSON as it is
    let json: Value =
        serde_json::from_str(c[&dash]["data"]["raygate-webhook.json"].as_str().unwrap())
            .expect("the dashboard is JSON");
    assert_eq!(json["uid"], "raygate-webhook");
    // Go template actions of the alert annotations reach Prometheus unrendered
    let annotations = serde_json::to_string(&c[&rule]["spec"]).unwrap();
    assert!(annotations.contains("{{ $labels.pod }}"), "{annotations}");

    // the optional values reach the objects
    let docs = helm::template(
        RELEASE,
        NS,
        &[
            "namePrefix=rg2",
            "metrics.prometheusRule.enabled=true",
            "metrics.prometheusRule.labels.release=kube-prometheus",
            "metrics.grafanaDashboard.enabled=true",
            "metrics.grafanaDashboard.namespace=monitoring",
            "metrics.grafanaDashboard.labels.team=ml",
            "metrics.grafanaDashboard.annotations.grafana_folder=Raygate",
        ],
    );
    let r = find(&docs, "PrometheusRule", "rg2-webhook");
    assert_eq!(r["metadata"]["namespace"], NS);
    assert_eq!(r["metadata"]["labels"]["release"], "kube-prometheus");
    let cm = find(&docs, "ConfigMap", "rg2-grafana-dashboard");
    assert_eq!(cm["metadata"]["namespace"], "monitoring");
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(cm["metadata"]["labels"]["team"], "ml");
    assert_eq!(cm["metadata"]["annotations"]["grafana_folder"], "Raygate");
    // a namespace that is not a DNS label is refused with the field named
    let bad = helm::run(&[
        "template",
        "rg",
        &chart,
        "--set",
        "metrics.grafanaDashboard.namespace=Not_A_Namespace",
    ]);
    assert!(!bad.ok, "bad namespace accepted");
    assert!(
        bad.stderr.contains("/metrics/grafanaDashboard/namespace"),
        "{}",
        bad.stderr
    );
}
