//! `raygate serve` as a real kube-apiserver's admission and conversion webhook, set up once per
//! test binary, for the webhook end-to-end tests (`tests/e2e_webhook.rs`, `tests/e2e_kinds.rs`):
//! KubeRay's CRDs (RayCluster, RayJob and RayService with `deploy/crd-conversion` applied,
//! RayCronJob as shipped), the Validating/Mutating webhook configurations from `deploy/base`
//! (url + caBundle of the test server instead of the Service), and helpers to compare what the
//! API server answers with raygate's own verdicts.
//!
//! Include after the control plane:
//! `#[path = "support/controlplane.rs"] mod controlplane;`
//! `#[path = "support/webhook_e2e.rs"] mod webhook_e2e;`

#![allow(dead_code)]

use crate::controlplane::{self, KeptProcess, TestPki};
use base64::Engine as _;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use raygate::model::Kind;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
/// KubeRay's CRDs served at two versions, which `deploy/crd-conversion` points at `/convert`.
pub const CONVERTED_CRDS: &[&str] = &["rayclusters", "rayjobs", "rayservices"];

/// The webhook server plus the API server configuration pointing at it, set up once per binary.
#[allow(dead_code)] // `serve` is held to keep the process running; the rest helps debugging.
pub struct Env {
    pub webhook_port: u16,
    pub admin_port: u16,
    pub dir: PathBuf,
    /// Names of the validating webhooks from deploy/ (for the API server's denial message).
    pub validating_names: Vec<String>,
    pub serve: KeptProcess,
}

static ENV: OnceLock<Result<Env, String>> = OnceLock::new();

pub fn env() -> &'static Env {
    let r = ENV.get_or_init(|| {
        // Setup is async; run it on its own runtime in its own thread so any test's runtime can
        // wait for it.
        std::thread::spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(setup())
        })
        .join()
        .unwrap_or_else(|_| Err("webhook setup panicked (see the output above)".into()))
    });
    match r {
        Ok(e) => e,
        Err(e) => panic!("webhook e2e setup failed: {e}"),
    }
}

/// Normal exit: stop `raygate serve` and remove its temp dir (a killed test process takes the
/// server down through PR_SET_PDEATHSIG instead).
extern "C" fn stop_env_at_exit() {
    if let Some(Ok(e)) = ENV.get() {
        e.serve.stop();
        let _ = std::fs::remove_dir_all(&e.dir);
    }
}

/// The `raygate` binary under test: cargo's, or `RAYGATE_BIN` (useful when several checkouts
/// share one target dir and overwrite each other's binary).
pub fn raygate_bin() -> PathBuf {
    std::env::var_os("RAYGATE_BIN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_raygate")))
}

pub fn rayclusters(client: &kube::Client, ns: &str, version: &str) -> Api<DynamicObject> {
    ray_api(client, ns, version, Kind::RayCluster)
}

/// `ray.io/<version>` objects of `kind` in `ns`.
pub fn ray_api(client: &kube::Client, ns: &str, version: &str, kind: Kind) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("ray.io", version, kind.name());
    let ar = ApiResource::from_gvk_with_plural(&gvk, kind.plural());
    Api::namespaced_with(client.clone(), ns, &ar)
}

pub fn to_dynamic(v: Value) -> DynamicObject {
    serde_json::from_value(v).expect("DynamicObject")
}

pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap_or_else(|e| panic!("mkdir {}: {e}", dst.display()));
    for e in std::fs::read_dir(src).unwrap_or_else(|e| panic!("read {}: {e}", src.display())) {
        let p = e.expect("dir entry").path();
        let to = dst.join(p.file_name().expect("file name"));
        if p.is_dir() {
            copy_dir(&p, &to);
        } else {
            std::fs::copy(&p, &to).unwrap_or_else(|e| panic!("copy {}: {e}", p.display()));
        }
    }
}

/// `deploy/` copied into a temp dir, plus what rendering it needs that is not in git: the
/// self-managed overlay's certificates from `raygate certs generate` (as certs/README.md says),
/// and `crd-with-conversion/`, a kustomization applying the `crd-conversion` Component to
/// KubeRay's CRDs of [`CONVERTED_CRDS`] (the way its comment says to use it).
pub fn prepare_deploy() -> tempfile::TempDir {
    let tmp = tempfile::Builder::new()
        .prefix("raygate-e2e-deploy-")
        .tempdir()
        .expect("temp dir");
    let d = tmp.path().join("deploy");
    copy_dir(&Path::new(MANIFEST_DIR).join("deploy"), &d);
    let out = std::process::Command::new(raygate_bin())
        .args([
            "certs",
            "generate",
            "--service",
            "raygate-webhook",
            "--namespace",
            "raygate-system",
            "--force",
            "--out",
        ])
        .arg(d.join("overlays/self-managed/certs"))
        .output()
        .expect("run raygate certs generate");
    assert!(
        out.status.success(),
        "raygate certs generate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c = d.join("crd-with-conversion");
    std::fs::create_dir_all(&c).expect("mkdir");
    let mut resources = Vec::new();
    for crd in CONVERTED_CRDS {
        let file = format!("ray.io_{crd}.yaml");
        std::fs::copy(
            controlplane::kuberay_path(&format!("crd/{file}")),
            c.join(&file),
        )
        .expect("copy CRD");
        resources.push(file);
    }
    std::fs::write(
        c.join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
             resources: [{}]\ncomponents: [../crd-conversion]\n",
            resources.join(", ")
        ),
    )
    .expect("write kustomization");
    tmp
}

/// Rewrites a webhook `clientConfig` from a Service reference to our test server's URL + CA.
pub fn point_at_test_server(cc: &mut Value, port: u16, ca_pem: &str) {
    let path = cc
        .pointer("/service/path")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            cc.get("url")
                .and_then(Value::as_str)
                .and_then(|u| u.find("://").map(|i| &u[i + 3..]))
                .and_then(|rest| rest.find('/').map(|j| rest[j..].to_string()))
        })
        .unwrap_or_else(|| panic!("clientConfig without service.path or url path: {cc}"));
    *cc = json!({
        "url": format!("https://127.0.0.1:{port}{path}"),
        "caBundle": base64::engine::general_purpose::STANDARD.encode(ca_pem),
    });
}

pub fn metric_sum(admin_port: u16, endpoint: &str, result: Option<&str>) -> f64 {
    let (code, body) =
        controlplane::plain_get(admin_port, "/metrics").unwrap_or((0, String::new()));
    assert!(code == 200 || code == 0, "/metrics answered {code}");
    body.lines()
        .filter(|l| l.starts_with("raygate_webhook_requests_total{"))
        .filter(|l| l.contains(&format!("endpoint=\"{endpoint}\"")))
        .filter(|l| result.is_none_or(|r| l.contains(&format!("result=\"{r}\""))))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

async fn setup() -> Result<Env, String> {
    let cp = controlplane::shared();
    let client = cp.client();

    // 1. `raygate serve` with a certificate for 127.0.0.1 signed by a throw-away CA.
    // Removed automatically if the setup fails; kept (and removed at exit) once it works.
    let tmp = tempfile::Builder::new()
        .prefix("raygate-e2e-webhook-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    let dir = tmp.path().to_path_buf();
    let TestPki {
        ca_pem,
        cert_pem,
        key_pem,
    } = controlplane::test_pki(&["localhost"]);
    std::fs::write(dir.join("tls.crt"), &cert_pem).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("tls.key"), &key_pem).map_err(|e| e.to_string())?;
    let (webhook_port, admin_port) = (controlplane::pick_port(), controlplane::pick_port());
    let args: Vec<String> = [
        "serve",
        "--listen",
        &format!("127.0.0.1:{webhook_port}"),
        "--admin-listen",
        &format!("127.0.0.1:{admin_port}"),
        "--tls-cert",
        &dir.join("tls.crt").display().to_string(),
        "--tls-key",
        &dir.join("tls.key").display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let log = dir.join("raygate-serve.log");
    let serve = KeptProcess::spawn(&raygate_bin(), &args, &[], &log)?;
    // SAFETY: registering a plain `extern "C" fn` with no captured state.
    unsafe {
        libc::atexit(stop_env_at_exit);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(st) = serve.exited() {
            return Err(format!(
                "raygate serve exited ({st}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ));
        }
        if let Ok((200, _)) = controlplane::plain_get(admin_port, "/readyz") {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "raygate serve not ready in 30 s: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let deploy = prepare_deploy();
    let deploy_dir = deploy.path().join("deploy");

    // 2. KubeRay's CRDs with deploy/'s conversion Component applied, pointed at the test server
    //    (RayCronJob is served only as v1: its CRD as KubeRay ships it).
    let crds: Vec<Value> = controlplane::kustomize_build(&deploy_dir.join("crd-with-conversion"))
        .into_iter()
        .filter(|d| d["kind"] == "CustomResourceDefinition")
        .collect();
    if crds.len() != CONVERTED_CRDS.len() {
        return Err(format!(
            "crd-with-conversion renders {} CRDs, expected {CONVERTED_CRDS:?}",
            crds.len()
        ));
    }
    for mut crd in crds {
        if crd["spec"]["conversion"]["strategy"] != "Webhook" {
            return Err(format!(
                "deploy/crd-conversion does not set strategy Webhook on {}: {}",
                crd["metadata"]["name"], crd["spec"]["conversion"]
            ));
        }
        point_at_test_server(
            &mut crd["spec"]["conversion"]["webhook"]["clientConfig"],
            webhook_port,
            &ca_pem,
        );
        controlplane::install_crd(&client, crd).await;
    }
    for crd in controlplane::yaml_docs(&controlplane::kuberay_path("crd/ray.io_raycronjobs.yaml")) {
        controlplane::install_crd(&client, crd).await;
    }

    // 3. Validating and Mutating webhook configurations rendered from deploy/base, with url +
    //    caBundle instead of the Service.
    let mut validating_names = Vec::new();
    let mut kinds = BTreeSet::new();
    for mut d in controlplane::kustomize_build(&deploy_dir.join("base")) {
        let kind = d["kind"].as_str().unwrap_or("").to_string();
        if kind != "ValidatingWebhookConfiguration" && kind != "MutatingWebhookConfiguration" {
            continue;
        }
        let name = d["metadata"]["name"].as_str().unwrap_or("").to_string();
        kinds.insert(kind.clone());
        let hooks = d["webhooks"]
            .as_array_mut()
            .ok_or_else(|| format!("{kind} {name} without webhooks"))?;
        for h in hooks.iter_mut() {
            if kind == "ValidatingWebhookConfiguration" {
                validating_names.push(h["name"].as_str().unwrap_or("").to_string());
            }
            point_at_test_server(&mut h["clientConfig"], webhook_port, &ca_pem);
        }
        let plural = if kind == "ValidatingWebhookConfiguration" {
            "validatingwebhookconfigurations"
        } else {
            "mutatingwebhookconfigurations"
        };
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("admissionregistration.k8s.io", "v1", &kind),
            plural,
        );
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        api.patch(
            &name,
            &PatchParams::apply(controlplane::FIELD_MANAGER).force(),
            &Patch::Apply(d),
        )
        .await
        .map_err(|e| format!("apply {kind} {name}: {e}"))?;
    }
    if kinds.len() != 2 {
        return Err(format!(
            "deploy/base should render one Validating and one Mutating webhook configuration: {kinds:?}"
        ));
    }
    drop(deploy);

    // 4. Wait until the API server calls all three endpoints: dry-run creates (sideEffects
    //    None, so dry runs reach the webhooks) until validate and mutate counters move, and
    //    reads through v1alpha1 until the convert counter moves.
    let ns = controlplane::create_namespace(&client, "e2e-probe").await;
    let mut probe = sample_doc("ray-cluster.sample.yaml").ok_or("no sample")?;
    probe["metadata"] = json!({ "name": "probe" });
    let v1 = rayclusters(&client, &ns, "v1");
    let alpha = rayclusters(&client, &ns, "v1alpha1");
    v1.create(&PostParams::default(), &to_dynamic(probe.clone()))
        .await
        .map_err(|e| format!("create probe: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let (v0, m0, c0) = (
        metric_sum(admin_port, "validate", None),
        metric_sum(admin_port, "mutate", None),
        metric_sum(admin_port, "convert", None),
    );
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    loop {
        let mut p = probe.clone();
        p["metadata"]["name"] = json!("probe-dry");
        let _ = v1.create(&dry, &to_dynamic(p)).await;
        let _ = alpha.get("probe").await;
        let (v, m, c) = (
            metric_sum(admin_port, "validate", None),
            metric_sum(admin_port, "mutate", None),
            metric_sum(admin_port, "convert", None),
        );
        if v > v0 && m > m0 && c > c0 {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "webhooks not in force after 60 s (validate {v0}->{v}, mutate {m0}->{m}, convert {c0}->{c}); \
                 apiserver log:\n{}\nraygate log:\n{}",
                cp.apiserver_log_tail(30),
                std::fs::read_to_string(&log).unwrap_or_default()
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let _ = tmp.keep();
    Ok(Env {
        webhook_port,
        admin_port,
        dir,
        validating_names,
        serve,
    })
}

/// The first RayCluster document of a KubeRay sample file.
pub fn sample_doc(file: &str) -> Option<Value> {
    controlplane::yaml_docs(&controlplane::kuberay_path(&format!("samples/{file}")))
        .into_iter()
        .find(|d| d["kind"] == "RayCluster")
}

pub fn api_error(r: Result<DynamicObject, kube::Error>, what: &str) -> Box<kube::core::Status> {
    match r {
        Err(kube::Error::Api(s)) => s,
        Ok(o) => panic!("{what}: expected a refusal, got {:?}", o.metadata.name),
        Err(e) => panic!("{what}: expected an API error, got {e}"),
    }
}

/// `(field, message)` of each error cause of an API error.
pub fn causes(s: &kube::core::Status) -> BTreeSet<(String, String)> {
    s.details
        .as_ref()
        .map(|d| {
            d.causes
                .iter()
                .map(|c| (c.field.clone(), c.message.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a cause message (`Invalid value: <v>: <message>`) carries `msg`; a cause cut to the
/// webhook's cap (`…...`, issue #14.8) carries its start.
pub fn cause_carries(cause: &str, msg: &str) -> bool {
    if cause.ends_with(msg) {
        return true;
    }
    let head = &msg[..msg.char_indices().nth(30).map_or(msg.len(), |(i, _)| i)];
    cause
        .strip_suffix("...")
        .is_some_and(|pre| pre.find(head).is_some_and(|at| msg.starts_with(&pre[at..])))
}

/// Every `(path, message)` in `expected` appears as a cause `(path, "...: message")` (see
/// [`cause_carries`]), and the numbers match.
pub fn assert_causes_match(
    what: &str,
    got: &BTreeSet<(String, String)>,
    expected: &BTreeSet<(String, String)>,
) {
    assert_eq!(
        got.len(),
        expected.len(),
        "{what}: causes {got:#?}\nexpected {expected:#?}"
    );
    for (path, msg) in expected {
        assert!(
            got.iter().any(|(f, m)| f == path && cause_carries(m, msg)),
            "{what}: no cause for {path}: {msg}\ncauses: {got:#?}"
        );
    }
}

pub fn ns_name(prefix: &str, file: &str) -> String {
    let stem = file.trim_end_matches(".yaml");
    let mut s: String = format!("{prefix}-{stem}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    s.truncate(63);
    s.trim_end_matches('-').to_string()
}

/// Integral floats (YAML `777` may parse as 777.0) as integers, for comparisons with what the
/// API server returns.
pub fn ints(v: &Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => json!(f as i64),
            _ => v.clone(),
        },
        Value::Array(a) => Value::Array(a.iter().map(ints).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), ints(x))).collect()),
        _ => v.clone(),
    }
}

/// The first path where `small` has a value `big` lacks or differs on (arrays index-wise).
pub fn not_contained(big: &Value, small: &Value, path: &str) -> Option<String> {
    match (big, small) {
        (Value::Object(b), Value::Object(s)) => s.iter().find_map(|(k, sv)| match b.get(k) {
            Some(bv) => not_contained(bv, sv, &format!("{path}.{k}")),
            None => Some(format!("{path}.{k}")),
        }),
        (Value::Array(b), Value::Array(s)) if b.len() == s.len() => b
            .iter()
            .zip(s)
            .enumerate()
            .find_map(|(i, (bv, sv))| not_contained(bv, sv, &format!("{path}[{i}]"))),
        _ if big == small => None,
        _ => Some(path.to_string()),
    }
}

/// Drops server-populated metadata so objects can be compared.
pub fn content(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v["metadata"].as_object_mut() {
        for k in [
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
        ] {
            m.remove(k);
        }
    }
    v.as_object_mut().map(|o| o.remove("apiVersion"));
    v
}
