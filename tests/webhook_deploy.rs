//! The kustomize manifests agree with the server: paths, ports, probes, webhook settings.
//! (`kubectl kustomize deploy/overlays/...` renders them; a real API server dry-run is the
//! apiserver suite's job.)

use raygate::webhook::server::{CONVERT_PATH, MUTATE_PATH, VALIDATE_PATH};
use serde_json::Value;

const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");

fn load(rel: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(format!("{DEPLOY}/{rel}")).unwrap();
    serde_saphyr::from_multiple::<Value>(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn one(rel: &str) -> Value {
    load(rel).into_iter().next().unwrap()
}

#[test]
fn webhook_configurations_match_the_server() {
    for (file, path, kind) in [
        (
            "base/validatingwebhookconfiguration.yaml",
            VALIDATE_PATH,
            "ValidatingWebhookConfiguration",
        ),
        (
            "base/mutatingwebhookconfiguration.yaml",
            MUTATE_PATH,
            "MutatingWebhookConfiguration",
        ),
    ] {
        let doc = one(file);
        assert_eq!(doc["kind"], kind);
        let w = &doc["webhooks"][0];
        assert_eq!(w["clientConfig"]["service"]["path"], path, "{file}");
        assert_eq!(w["clientConfig"]["service"]["name"], "raygate-webhook");
        assert_eq!(w["clientConfig"]["service"]["port"], 443);
        assert_eq!(w["failurePolicy"], "Fail");
        assert_eq!(w["sideEffects"], "None");
        assert_eq!(w["matchPolicy"], "Equivalent");
        assert_eq!(w["admissionReviewVersions"], serde_json::json!(["v1"]));
        let timeout = w["timeoutSeconds"].as_u64().unwrap();
        assert!(
            timeout > 8,
            "request timeout (8 s) must stay below timeoutSeconds"
        );
        let r = &w["rules"][0];
        assert_eq!(r["apiGroups"][0], "ray.io");
        assert_eq!(r["resources"][0], "rayclusters");
        assert_eq!(r["operations"], serde_json::json!(["CREATE", "UPDATE"]));
    }
    let m = one("base/mutatingwebhookconfiguration.yaml");
    assert_eq!(m["webhooks"][0]["reinvocationPolicy"], "IfNeeded");
    // One conversion patch per CRD served at two versions; the Component applies each to its CRD.
    let component = one("crd-conversion/kustomization.yaml");
    let patches = component["patches"].as_array().unwrap();
    for (file, crd_name) in [
        ("conversion-patch.yaml", "rayclusters.ray.io"),
        ("conversion-patch-rayjobs.yaml", "rayjobs.ray.io"),
        ("conversion-patch-rayservices.yaml", "rayservices.ray.io"),
    ] {
        let crd = one(&format!("crd-conversion/{file}"));
        assert_eq!(crd["metadata"]["name"], crd_name);
        assert_eq!(crd["spec"]["conversion"]["strategy"], "Webhook");
        assert_eq!(
            crd["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["path"],
            CONVERT_PATH
        );
        assert_eq!(
            crd["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            "raygate-system/raygate-webhook"
        );
        assert!(
            patches
                .iter()
                .any(|p| p["path"] == file && p["target"]["name"] == crd_name),
            "{file} is applied to {crd_name}: {patches:?}"
        );
    }
    assert_eq!(patches.len(), 3, "RayCronJob is v1 only: no conversion");
}

#[test]
fn deployment_is_hardened_and_probes_the_admin_port() {
    let d = one("base/deployment.yaml");
    assert_eq!(d["spec"]["replicas"], 2);
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert!(
        pod["topologySpreadConstraints"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert!(c["resources"]["limits"]["memory"].is_string());
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "serve");
    // the args parse with the real CLI definition
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        serve: raygate::cli::serve::ServeArgs,
    }
    let cli = Cli::try_parse_from(std::iter::once("raygate").chain(args[1..].iter().copied()))
        .expect("deployment args parse");
    let opts = cli.serve.to_options().unwrap();
    assert_eq!(opts.listen.port(), 9443);
    assert_eq!(opts.admin_listen.port(), 8080);
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(
        (opts.shutdown_delay + opts.drain_timeout).as_secs() <= grace,
        "shutdown delay + drain fit in terminationGracePeriodSeconds"
    );
    let ports: Vec<u64> = c["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["containerPort"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, vec![9443, 8080]);
    let pdb = one("base/pdb.yaml");
    assert_eq!(pdb["kind"], "PodDisruptionBudget");
    let svc = one("base/service.yaml");
    assert_eq!(svc["spec"]["ports"][0]["port"], 443);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "webhook");
}

#[test]
fn cert_manager_overlay_issues_the_secret_the_deployment_mounts() {
    let docs = load("overlays/cert-manager/certificates.yaml");
    let cert = docs
        .iter()
        .find(|d| d["kind"] == "Certificate" && d["metadata"]["name"] == "raygate-webhook")
        .unwrap();
    let d = one("base/deployment.yaml");
    assert_eq!(
        cert["spec"]["secretName"],
        d["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"]
    );
    let names: Vec<&str> = cert["spec"]["dnsNames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(names.contains(&"raygate-webhook.raygate-system.svc"));
}
