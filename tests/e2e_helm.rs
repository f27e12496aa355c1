//! The Helm chart installed for real: `helm install`, `helm upgrade`, `helm uninstall` (Helm v4
//! from `scripts/helm-bin.sh`) against a real kube-apiserver + etcd (`tests/support/controlplane.rs`).
//!
//! There is no kubelet (nor controller-manager), so the chart's Deployment never gets pods.
//! Instead the test runs `raygate serve` on 127.0.0.1 with the certificate the chart put in its
//! Secret, and installs the chart with `webhook.url=https://127.0.0.1:<port>` (the chart's
//! development value: every clientConfig becomes that URL + path, with the chart's caBundle). The
//! API server then calls raygate exactly as it would call the Service, TLS-verified against the
//! chart's CA: a bad RayCluster is refused with its causes, a good one is stored defaulted, and
//! (after applying the chart's CRD conversion patch) read as v1alpha1 through /convert.
//!
//! Self-managed mode: `helm upgrade` keeps the CA and the serving certificate; an upgrade inside
//! the renewal window re-issues the serving certificate from the same CA. After `helm uninstall`
//! every object of the release manifest is gone, the release namespace is empty (every listable
//! namespaced kind the API server serves is listed), no cluster-scoped object carries the
//! release's label and Helm's release Secrets are gone. cert-manager and user-Secret modes are
//! installed and uninstalled too (cert-manager's CRDs are open-schema stand-ins: cert-manager
//! itself cannot be fetched here, so nothing issues the Certificate).
//!
//! Run alone: `cargo test --test e2e_helm`.

#[path = "support/controlplane.rs"]
mod controlplane;
#[path = "support/helm.rs"]
mod helm;

use base64::Engine as _;
use controlplane::KeptProcess;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The tests share one control plane and cluster-scoped names: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial<F: std::future::Future<Output = ()>>(f: impl FnOnce() -> F) {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f());
}

fn raygate_bin() -> PathBuf {
    std::env::var_os("RAYGATE_BIN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_raygate")))
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// `helm <args...> --namespace <ns> --kubeconfig <control plane>`; for install/upgrade the
/// chart follows the release name and each of `sets` becomes a `--set`.
fn helm_in(args: &[&str], ns: &str, sets: &[String]) -> helm::Run {
    let cp = controlplane::shared();
    let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    if matches!(args.first(), Some(&"install") | Some(&"upgrade")) {
        a.insert(2, helm::chart_dir().display().to_string());
    }
    a.extend([
        "--namespace".into(),
        ns.into(),
        "--kubeconfig".into(),
        cp.kubeconfig_path().display().to_string(),
    ]);
    for s in sets {
        a.push("--set".into());
        a.push(s.clone());
    }
    helm::run(&a)
}

fn helm_ok(args: &[&str], ns: &str, sets: &[String]) -> String {
    let r = helm_in(args, ns, sets);
    assert!(
        r.ok,
        "helm {args:?} {sets:?} failed:\n{}\n{}\napiserver log:\n{}",
        r.stderr,
        r.stdout,
        controlplane::shared().apiserver_log_tail(20)
    );
    r.stdout
}

fn rayclusters(client: &kube::Client, ns: &str, version: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("ray.io", version, "RayCluster");
    Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::from_gvk_with_plural(&gvk, "rayclusters"),
    )
}

fn sample() -> Value {
    controlplane::yaml_docs(&controlplane::kuberay_path(
        "samples/ray-cluster.sample.yaml",
    ))
    .into_iter()
    .find(|d| d["kind"] == "RayCluster")
    .expect("sample RayCluster")
}

/// A RayCluster breaking several rules at once.
fn bad_cluster(name: &str) -> Value {
    let mut rc = sample();
    rc["metadata"] = json!({ "name": name });
    let mut g0 = rc["spec"]["workerGroupSpecs"][0].clone();
    g0["minReplicas"] = json!(5);
    g0["maxReplicas"] = json!(1);
    let mut g1 = g0.clone();
    g1["minReplicas"] = json!(1);
    rc["spec"]["workerGroupSpecs"] = json!([g0, g1]);
    rc
}

/// Creating a bad RayCluster is refused by raygate's validating webhook, through the API server,
/// with one cause per rule it breaks (field path + message, as `raygate validate` reports them).
async fn assert_bad_cluster_refused(client: &kube::Client, ns: &str) {
    let rc = bad_cluster("bad");
    let expected: BTreeSet<(String, String)> =
        raygate::rules::validate(&rc, None, &Default::default())
            .into_iter()
            .filter(|v| v.is_error())
            .map(|v| (v.path, v.message))
            .collect();
    assert!(
        expected.len() >= 2,
        "test object breaks several rules: {expected:#?}"
    );
    let api = rayclusters(client, ns, "v1");
    let obj: DynamicObject = serde_json::from_value(rc).expect("DynamicObject");
    let s = match api.create(&PostParams::default(), &obj).await {
        Err(kube::Error::Api(s)) => s,
        Ok(_) => panic!("a bad RayCluster was stored"),
        Err(e) => panic!("expected a refusal, got {e}"),
    };
    assert_eq!(s.code, 422, "{s:?}");
    assert!(
        s.message
            .contains("admission webhook \"vraycluster.raygate.io\" denied the request"),
        "not refused by raygate's webhook: {}",
        s.message
    );
    let causes: BTreeSet<(String, String)> = s
        .details
        .as_ref()
        .map(|d| {
            d.causes
                .iter()
                .map(|c| (c.field.clone(), c.message.clone()))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        causes.len(),
        expected.len(),
        "causes {causes:#?}\nexpected {expected:#?}"
    );
    for (path, msg) in &expected {
        assert!(
            causes
                .iter()
                .any(|(f, m)| f == path && m.ends_with(msg.as_str())),
            "no cause {path}: {msg} in {causes:#?}"
        );
    }
    assert!(api.get_opt("bad").await.expect("get").is_none());
}

fn metric_sum(admin_port: u16, endpoint: &str) -> f64 {
    let (_, body) = controlplane::plain_get(admin_port, "/metrics").unwrap_or((0, String::new()));
    body.lines()
        .filter(|l| l.starts_with("raygate_webhook_requests_total{"))
        .filter(|l| l.contains(&format!("endpoint=\"{endpoint}\"")))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

/// `raygate serve` on 127.0.0.1 with the certificate from the chart's TLS Secret.
struct LocalWebhook {
    dir: tempfile::TempDir,
    admin_port: u16,
    _serve: KeptProcess,
}

async fn write_tls(secrets: &Api<Secret>, name: &str, dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let s = secrets
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("get Secret {name}: {e}"));
    let data = s.data.expect("Secret data");
    let crt = data.get("tls.crt").expect("tls.crt").0.clone();
    let key = data.get("tls.key").expect("tls.key").0.clone();
    // Key first, then the certificate: raygate reloads when both files changed consistently.
    std::fs::write(dir.join("tls.key"), &key).expect("write key");
    std::fs::write(dir.join("tls.crt"), &crt).expect("write cert");
    (crt, key)
}

async fn start_local_webhook(secrets: &Api<Secret>, tls_secret: &str, port: u16) -> LocalWebhook {
    let dir = tempfile::Builder::new()
        .prefix("raygate-e2e-helm-")
        .tempdir()
        .expect("temp dir");
    write_tls(secrets, tls_secret, dir.path()).await;
    let admin_port = controlplane::pick_port();
    let args: Vec<String> = vec![
        "serve".into(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--admin-listen".into(),
        format!("127.0.0.1:{admin_port}"),
        "--tls-cert".into(),
        dir.path().join("tls.crt").display().to_string(),
        "--tls-key".into(),
        dir.path().join("tls.key").display().to_string(),
    ];
    let log = dir.path().join("serve.log");
    let serve = KeptProcess::spawn(&raygate_bin(), &args, &[], &log).expect("spawn raygate serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(st) = serve.exited() {
            panic!(
                "raygate serve exited ({st}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        if let Ok((200, _)) = controlplane::plain_get(admin_port, "/readyz") {
            break;
        }
        assert!(Instant::now() < deadline, "raygate serve not ready in 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    LocalWebhook {
        dir,
        admin_port,
        _serve: serve,
    }
}

/// cert-manager's Issuer and Certificate kinds (stand-in CRDs; no cert-manager runs here).
async fn cert_manager_crds(client: &kube::Client) {
    stand_in_crds(
        client,
        "cert-manager.io",
        &[
            ("Issuer", "issuers", "Namespaced"),
            ("Certificate", "certificates", "Namespaced"),
        ],
    )
    .await;
}

/// Stand-in CRDs (open schema) for kinds whose operators are not part of this project.
async fn stand_in_crds(client: &kube::Client, group: &str, kinds: &[(&str, &str, &str)]) {
    for (kind, plural, scope) in kinds {
        controlplane::install_crd(
            client,
            json!({
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": { "name": format!("{plural}.{group}") },
                "spec": {
                    "group": group,
                    "names": { "kind": kind, "plural": plural, "singular": kind.to_lowercase(),
                               "listKind": format!("{kind}List") },
                    "scope": scope,
                    "versions": [{ "name": "v1", "served": true, "storage": true,
                        "schema": { "openAPIV3Schema": { "type": "object",
                            "x-kubernetes-preserve-unknown-fields": true } } }]
                }
            }),
        )
        .await;
    }
}

async fn install_kuberay_crd(client: &kube::Client) {
    let crd = controlplane::yaml_docs(&controlplane::kuberay_path("crd/ray.io_rayclusters.yaml"))
        .into_iter()
        .find(|d| d["kind"] == "CustomResourceDefinition")
        .expect("KubeRay's RayCluster CRD");
    controlplane::install_crd(client, crd).await;
}

/// Objects of a rendered manifest: (apiVersion, kind, namespace, name).
fn manifest_objects(manifest: &str) -> Vec<(String, String, Option<String>, String)> {
    helm::docs(manifest)
        .iter()
        .map(|o| {
            (
                o["apiVersion"].as_str().expect("apiVersion").to_string(),
                o["kind"].as_str().expect("kind").to_string(),
                o["metadata"]["namespace"].as_str().map(str::to_string),
                o["metadata"]["name"].as_str().expect("name").to_string(),
            )
        })
        .collect()
}

/// After `helm uninstall`: every object of `objects` is gone, `ns` holds nothing of any listable
/// kind, no cluster-scoped object carries the release label, and Helm's release records are gone.
async fn assert_nothing_left(
    client: &kube::Client,
    release: &str,
    ns: &str,
    objects: &[(String, String, Option<String>, String)],
) {
    let discovery = kube::discovery::Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    for (api_version, kind, obj_ns, name) in objects {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let (ar, caps) = discovery
            .resolve_gvk(&GroupVersionKind::gvk(group, version, kind))
            .unwrap_or_else(|| panic!("{api_version} {kind} not served"));
        let api: Api<DynamicObject> = match (caps.scope, obj_ns) {
            (kube::discovery::Scope::Namespaced, Some(n)) => {
                Api::namespaced_with(client.clone(), n, &ar)
            }
            (kube::discovery::Scope::Namespaced, None) => {
                panic!("namespaced {kind} {name} without namespace in the manifest")
            }
            _ => Api::all_with(client.clone(), &ar),
        };
        let left = api.get_opt(name).await.expect("get");
        assert!(
            left.is_none(),
            "{kind} {name} left behind after helm uninstall"
        );
    }
    let label = ListParams::default().labels(&format!("app.kubernetes.io/instance={release}"));
    let mut listed = 0;
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if !caps.supports_operation(kube::discovery::verbs::LIST) {
                continue;
            }
            listed += 1;
            if caps.scope == kube::discovery::Scope::Namespaced && ar.plural == "events" {
                // Events are records the control plane writes about objects (seen once: an Event
                // about the release's Service raygate-autoscaler-metrics, around its deletion),
                // not objects the chart created; they expire after --event-ttl. Shown, not
                // counted.
                let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
                for e in api.list(&ListParams::default()).await.expect("list events") {
                    eprintln!(
                        "event left in {ns} ({}): {} {}",
                        ar.group, e.data["reason"], e.data["message"]
                    );
                }
            } else if caps.scope == kube::discovery::Scope::Namespaced {
                let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
                let items = api.list(&ListParams::default()).await.unwrap_or_else(|e| {
                    panic!("list {} in {ns}: {e}", ar.plural);
                });
                let names: Vec<String> = items
                    .iter()
                    .filter_map(|o| o.metadata.name.clone())
                    .collect();
                assert!(names.is_empty(), "{} left in {ns}: {names:?}", ar.plural);
            } else {
                let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
                if let Ok(items) = api.list(&label).await {
                    let names: Vec<String> = items
                        .iter()
                        .filter_map(|o| o.metadata.name.clone())
                        .collect();
                    assert!(
                        names.is_empty(),
                        "{} of release {release} left: {names:?}",
                        ar.plural
                    );
                }
            }
        }
    }
    assert!(listed > 30, "only {listed} listable kinds discovered");
    let records: Api<Secret> = Api::namespaced(client.clone(), ns);
    let left = records
        .list(&ListParams::default().labels(&format!("owner=helm,name={release}")))
        .await
        .expect("list release secrets");
    assert!(left.items.is_empty(), "Helm release records left");
}

async fn namespace(client: &kube::Client, name: &str) {
    use k8s_openapi::api::core::v1::Namespace;
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": { "name": name,
                      "labels": { "pod-security.kubernetes.io/enforce": "restricted" } }
    }))
    .expect("namespace");
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("create namespace {name}: {e}"),
    }
}

#[test]
fn self_managed_install_upgrade_uninstall_through_the_api_server() {
    serial(|| async {
        let cp = controlplane::shared();
        let client = cp.client();
        install_kuberay_crd(&client).await;
        stand_in_crds(
            &client,
            "monitoring.coreos.com",
            &[("ServiceMonitor", "servicemonitors", "Namespaced")],
        )
        .await;
        let (release, ns) = ("rg-e2e", "raygate-e2e");
        namespace(&client, ns).await;
        let port = controlplane::pick_port();
        let mut sets: Vec<String> = vec![
            format!("webhook.url=https://127.0.0.1:{port}"),
            "autoscaler.enabled=true".into(),
            "autoscaler.reconcilePods=true".into(),
            "crdConversion.enabled=true".into(),
            "metrics.serviceMonitor.enabled=true".into(),
            "networkPolicy.enabled=true".into(),
        ];

        // Bad values fail the install with the field named, and nothing is recorded.
        let bad = helm_in(
            &["install", release],
            ns,
            &["webhook.replicas=zero".to_string()],
        );
        assert!(!bad.ok, "install with a bad value succeeded");
        assert!(
            bad.stderr.contains("at '/webhook/replicas'"),
            "{}",
            bad.stderr
        );
        assert!(
            helm_ok(&["list", "-q"], ns, &[]).trim().is_empty(),
            "a release was recorded"
        );

        // Install.
        let notes = helm_ok(&["install", release], ns, &sets);
        // NOTES.txt tells how to apply the CRD patch the test applies below, and how to undo it.
        assert!(
            notes.contains(
                "kubectl patch crd \"$crd\" --type merge --patch-file raygate-crd-patch.yaml"
            ) && notes.contains(r#""value":{"strategy":"None"}"#),
            "NOTES: {notes}"
        );
        let manifest = helm_ok(&["get", "manifest", release], ns, &[]);
        let objects = manifest_objects(&manifest);
        let kinds: BTreeSet<&str> = objects.iter().map(|o| o.1.as_str()).collect();
        assert_eq!(
            kinds,
            BTreeSet::from([
                "ClusterRole",
                "ClusterRoleBinding",
                "ConfigMap",
                "Deployment",
                "MutatingWebhookConfiguration",
                "NetworkPolicy",
                "PodDisruptionBudget",
                // deploy/base's priority class for the fail-closed webhook (#14.8)
                "PriorityClass",
                "Role",
                "RoleBinding",
                "Secret",
                "Service",
                "ServiceAccount",
                "ServiceMonitor",
                "ValidatingWebhookConfiguration",
            ]),
            "kinds the chart created"
        );
        let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
        let ca_of = |s: &Secret, key: &str| {
            String::from_utf8_lossy(&s.data.as_ref().unwrap()[key].0).into_owned()
        };
        let ca0 = ca_of(&secrets.get("raygate-webhook-ca").await.unwrap(), "tls.crt");
        let tls0 = secrets.get("raygate-webhook-tls").await.unwrap();
        assert_eq!(ca_of(&tls0, "ca.crt"), ca0);

        // The webhook answers through the API server.
        let hook = start_local_webhook(&secrets, "raygate-webhook-tls", port).await;
        let rc_ns = "raygate-e2e-clusters";
        controlplane::create_namespace(&client, rc_ns).await;
        assert_bad_cluster_refused(&client, rc_ns).await;
        // The autoscaler sample without autoscalerOptions: only raygate's mutating webhook
        // fills them in (the CRD has no defaults there).
        let mut good = controlplane::yaml_docs(&controlplane::kuberay_path(
            "samples/ray-cluster.autoscaler.yaml",
        ))
        .into_iter()
        .find(|d| d["kind"] == "RayCluster")
        .expect("autoscaler sample");
        good["metadata"] = json!({ "name": "good" });
        good["spec"]
            .as_object_mut()
            .expect("spec")
            .remove("autoscalerOptions");
        let v1 = rayclusters(&client, rc_ns, "v1");
        v1.create(
            &PostParams::default(),
            &serde_json::from_value(good).unwrap(),
        )
        .await
        .expect("a good RayCluster is stored");
        let stored = v1.get("good").await.expect("get");
        assert!(
            stored.data["spec"]["autoscalerOptions"].is_object(),
            "stored without raygate's defaults: {}",
            stored.data["spec"]
        );

        // The CRD conversion patch from the chart's ConfigMap, applied as NOTES.txt says: then a
        // v1alpha1 read goes through raygate's /convert.
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        let cm = cms
            .get("raygate-crd-conversion")
            .await
            .expect("conversion ConfigMap");
        let data = cm.data.expect("data");
        assert!(
            data["crds"].split(' ').any(|c| c == "rayclusters.ray.io"),
            "{data:?}"
        );
        let patch: Value = serde_saphyr::from_str(&data["patch.yaml"]).expect("patch.yaml");
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        crds.patch(
            "rayclusters.ray.io",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .expect("patch the CRD");
        let c0 = metric_sum(hook.admin_port, "convert");
        let alpha = rayclusters(&client, rc_ns, "v1alpha1");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(o) = alpha.get("good").await
                && o.types
                    .as_ref()
                    .is_some_and(|t| t.api_version == "ray.io/v1alpha1")
                && metric_sum(hook.admin_port, "convert") > c0
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "v1alpha1 read never reached /convert"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        // Upgrade: CA and serving certificate unchanged, the new values in force.
        sets.push("webhook.replicas=3".into());
        helm_ok(&["upgrade", release], ns, &sets);
        let ca1 = ca_of(&secrets.get("raygate-webhook-ca").await.unwrap(), "tls.crt");
        let tls1 = secrets.get("raygate-webhook-tls").await.unwrap();
        assert_eq!(ca1, ca0, "helm upgrade replaced the CA");
        assert_eq!(
            ca_of(&tls1, "tls.crt"),
            ca_of(&tls0, "tls.crt"),
            "serving certificate replaced"
        );
        let vwc: Api<DynamicObject> = Api::all_with(
            client.clone(),
            &ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk(
                    "admissionregistration.k8s.io",
                    "v1",
                    "ValidatingWebhookConfiguration",
                ),
                "validatingwebhookconfigurations",
            ),
        );
        let bundle = |o: &DynamicObject| {
            o.data["webhooks"][0]["clientConfig"]["caBundle"]
                .as_str()
                .map(str::to_string)
        };
        assert_eq!(
            bundle(&vwc.get("raygate-validating").await.unwrap()),
            Some(b64(ca0.as_bytes()))
        );
        let deploys: Api<k8s_openapi::api::apps::v1::Deployment> =
            Api::namespaced(client.clone(), ns);
        let d = deploys.get("raygate-webhook").await.unwrap();
        assert_eq!(d.spec.replicas, Some(3), "upgrade not applied");
        assert_bad_cluster_refused(&client, rc_ns).await;

        // Upgrade inside the renewal window: a new serving certificate from the same CA.
        let mut renew = sets.clone();
        renew.push("certs.selfManaged.renewBeforeDays=400".into());
        helm_ok(&["upgrade", release], ns, &renew);
        let ca2 = ca_of(&secrets.get("raygate-webhook-ca").await.unwrap(), "tls.crt");
        let tls2 = secrets.get("raygate-webhook-tls").await.unwrap();
        assert_eq!(ca2, ca0, "renewal replaced the CA");
        assert_ne!(
            ca_of(&tls2, "tls.crt"),
            ca_of(&tls0, "tls.crt"),
            "not re-issued"
        );
        assert_eq!(
            bundle(&vwc.get("raygate-validating").await.unwrap()),
            Some(b64(ca0.as_bytes()))
        );
        // raygate picks the new certificate up from disk (as from a mounted Secret).
        write_tls(&secrets, "raygate-webhook-tls", hook.dir.path()).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_bad_cluster_refused(&client, rc_ns).await;

        // Uninstall (conversion undone first, as NOTES.txt says; the RayCluster is the user's).
        crds.patch(
            "rayclusters.ray.io",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(json!([
                    { "op": "replace", "path": "/spec/conversion", "value": { "strategy": "None" } }
                ]))
                .unwrap(),
            ),
        )
        .await
        .expect("undo the conversion patch");
        helm_ok(&["uninstall", release], ns, &[]);
        drop(hook);
        assert_nothing_left(&client, release, ns, &objects).await;
        // With the webhooks gone, RayClusters are no longer checked.
        v1.delete("good", &Default::default())
            .await
            .expect("delete");
    });
}

#[test]
fn cert_manager_and_user_secret_modes_install_and_uninstall() {
    serial(|| async {
        let cp = controlplane::shared();
        let client = cp.client();
        install_kuberay_crd(&client).await;
        cert_manager_crds(&client).await;

        // cert-manager: the chart's Issuers and Certificates are accepted, both webhook
        // configurations ask cainjector for the Certificate's CA; uninstall removes all of it.
        let (release, ns) = ("rg-cm", "raygate-cm");
        namespace(&client, ns).await;
        helm_ok(
            &["install", release],
            ns,
            &["certs.mode=cert-manager".into()],
        );
        let objects = manifest_objects(&helm_ok(&["get", "manifest", release], ns, &[]));
        let kinds: BTreeSet<&str> = objects.iter().map(|o| o.1.as_str()).collect();
        for k in ["Issuer", "Certificate", "ValidatingWebhookConfiguration"] {
            assert!(kinds.contains(k), "{k} not installed: {kinds:?}");
        }
        assert!(
            !kinds.contains("Secret"),
            "cert-manager mode renders no Secret"
        );
        let certs: Api<DynamicObject> = Api::namespaced_with(
            client.clone(),
            ns,
            &ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("cert-manager.io", "v1", "Certificate"),
                "certificates",
            ),
        );
        let cert = certs.get("raygate-webhook").await.expect("Certificate");
        assert_eq!(cert.data["spec"]["secretName"], "raygate-webhook-tls");
        let mwc: Api<DynamicObject> = Api::all_with(
            client.clone(),
            &ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk(
                    "admissionregistration.k8s.io",
                    "v1",
                    "MutatingWebhookConfiguration",
                ),
                "mutatingwebhookconfigurations",
            ),
        );
        let m = mwc
            .get("raygate-mutating")
            .await
            .expect("mutating configuration");
        assert_eq!(
            m.metadata.annotations.unwrap_or_default()["cert-manager.io/inject-ca-from"],
            format!("{ns}/raygate-webhook")
        );
        helm_ok(&["uninstall", release], ns, &[]);
        assert_nothing_left(&client, release, ns, &objects).await;

        // User-supplied Secret + caBundle: the API server trusts exactly that CA.
        let (release, ns) = ("rg-sec", "raygate-sec");
        namespace(&client, ns).await;
        let pki = controlplane::test_pki(&["localhost"]);
        let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
        let user: Secret = serde_json::from_value(json!({
            "metadata": { "name": "my-tls" },
            "type": "kubernetes.io/tls",
            "stringData": { "tls.crt": pki.cert_pem, "tls.key": pki.key_pem }
        }))
        .unwrap();
        secrets
            .create(&PostParams::default(), &user)
            .await
            .expect("user Secret");
        let port = controlplane::pick_port();
        helm_ok(
            &["install", release],
            ns,
            &[
                "certs.mode=secret".into(),
                "certs.secret.name=my-tls".into(),
                format!("certs.secret.caBundle={}", b64(pki.ca_pem.as_bytes())),
                format!("webhook.url=https://127.0.0.1:{port}"),
            ],
        );
        let objects = manifest_objects(&helm_ok(&["get", "manifest", release], ns, &[]));
        assert!(
            !objects.iter().any(|o| o.1 == "Secret"),
            "mode secret renders no Secret"
        );
        let hook = start_local_webhook(&secrets, "my-tls", port).await;
        let rc_ns = "raygate-sec-clusters";
        controlplane::create_namespace(&client, rc_ns).await;
        assert_bad_cluster_refused(&client, rc_ns).await;
        helm_ok(&["uninstall", release], ns, &[]);
        drop(hook);
        // The user's Secret is the user's: still there; everything of the release is gone.
        secrets
            .delete("my-tls", &Default::default())
            .await
            .expect("user Secret kept");
        assert_nothing_left(&client, release, ns, &objects).await;
    });
}

#[test]
fn every_supported_combination_passes_a_server_side_dry_run_apply() {
    serial(|| async {
        let cp = controlplane::shared();
        let client = cp.client();
        install_kuberay_crd(&client).await;
        cert_manager_crds(&client).await;
        stand_in_crds(
            &client,
            "monitoring.coreos.com",
            &[("ServiceMonitor", "servicemonitors", "Namespaced")],
        )
        .await;
        let ns = "raygate-dry";
        namespace(&client, ns).await;
        let discovery = kube::discovery::Discovery::new(client.clone())
            .run()
            .await
            .expect("discovery");
        let combos = helm::Combo::all();
        let mut applied = 0;
        for c in &combos {
            let sets = c.sets();
            let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
            for o in helm::template("rg-dry", ns, &sets) {
                let api_version = o["apiVersion"].as_str().expect("apiVersion");
                let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
                let kind = o["kind"].as_str().expect("kind");
                let name = o["metadata"]["name"].as_str().expect("name");
                let (ar, caps) = discovery
                    .resolve_gvk(&GroupVersionKind::gvk(group, version, kind))
                    .unwrap_or_else(|| panic!("{c:?}: {api_version} {kind} not served"));
                let api: Api<DynamicObject> = if caps.scope == kube::discovery::Scope::Namespaced {
                    Api::namespaced_with(client.clone(), ns, &ar)
                } else {
                    Api::all_with(client.clone(), &ar)
                };
                api.patch(
                    name,
                    &PatchParams::apply("raygate-e2e-helm").dry_run().force(),
                    &Patch::Apply(&o),
                )
                .await
                .unwrap_or_else(|e| panic!("{c:?}: {kind} {name} refused by the API server: {e}"));
                applied += 1;
            }
        }
        eprintln!(
            "server-side dry-run apply: {applied} objects of {} combinations accepted",
            combos.len()
        );
        assert!(applied > combos.len() * 8, "{applied}");
    });
}
