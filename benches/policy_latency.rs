//! Create latency of a RayCluster through a real kube-apiserver v1.34, side by side in one run:
//! no admission at all (`none`), raygate's exported ValidatingAdmissionPolicy alone (`vap`), the
//! policies with the MutatingAdmissionPolicy (`policy`, `raygate policy export --mutating`), and
//! the `raygate serve` webhook (`webhook`: validating + mutating, HTTPS on loopback). One API
//! server; each mode has its own namespace (the policy bindings and the webhooks select it by
//! label); the modes take turns create by create, so drift on the shared machine hits all alike.
//!
//! ```sh
//! cargo bench --bench policy_latency -- --creates 300
//! ```
//! Latency is client side: POST written → response read (kube-rs, one connection, sequential),
//! real creates (stored in etcd), the KubeRay sample `ray-cluster.autoscaler.yaml` (valid).
//! Without `--bench` (as under `cargo test --all-targets`) it does nothing.

#[path = "../tests/support/controlplane.rs"]
mod controlplane;

use base64::Engine as _;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const MODES: [&str; 4] = ["none", "vap", "policy", "webhook"];

fn gvk_api(client: &kube::Client, gv: &str, kind: &str) -> Api<DynamicObject> {
    // `v1` (the core group) has no group part.
    let (g, v) = gv.split_once('/').unwrap_or(("", gv));
    let lower = kind.to_ascii_lowercase();
    let plural = match lower.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{lower}s"),
    };
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(g, v, kind), &plural);
    Api::all_with(client.clone(), &ar)
}

async fn apply(client: &kube::Client, o: &Value) {
    let api = gvk_api(
        client,
        o["apiVersion"].as_str().unwrap(),
        o["kind"].as_str().unwrap(),
    );
    let name = o["metadata"]["name"].as_str().unwrap();
    let d: DynamicObject = serde_json::from_value(o.clone()).unwrap();
    api.patch(
        name,
        &PatchParams::apply("raygate-bench").force(),
        &Patch::Apply(&d),
    )
    .await
    .unwrap_or_else(|e| panic!("apply {name}: {e}"));
}

fn selector(mode: &str) -> Value {
    json!({"matchLabels": {"raygate.bench/admission": mode}})
}

/// `raygate serve` on loopback, and its webhook configurations from deploy/base pointed at it,
/// limited to the `webhook` namespace.
async fn start_webhook(client: &kube::Client, dir: &std::path::Path) -> controlplane::KeptProcess {
    let pki = controlplane::test_pki(&["localhost"]);
    std::fs::write(dir.join("tls.crt"), &pki.cert_pem).unwrap();
    std::fs::write(dir.join("tls.key"), &pki.key_pem).unwrap();
    let (port, admin) = (controlplane::pick_port(), controlplane::pick_port());
    let args: Vec<String> = vec![
        "serve".into(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--admin-listen".into(),
        format!("127.0.0.1:{admin}"),
        "--tls-cert".into(),
        dir.join("tls.crt").display().to_string(),
        "--tls-key".into(),
        dir.join("tls.key").display().to_string(),
    ];
    let serve = controlplane::KeptProcess::spawn(
        std::path::Path::new(env!("CARGO_BIN_EXE_raygate")),
        &args,
        &[],
        &dir.join("serve.log"),
    )
    .expect("spawn raygate serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !matches!(controlplane::plain_get(admin, "/readyz"), Ok((200, _))) {
        assert!(Instant::now() < deadline, "raygate serve not ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let base = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/base/");
    for f in [
        "validatingwebhookconfiguration.yaml",
        "mutatingwebhookconfiguration.yaml",
    ] {
        for mut d in controlplane::yaml_docs(std::path::Path::new(&format!("{base}{f}"))) {
            for h in d["webhooks"].as_array_mut().unwrap() {
                let path = h["clientConfig"]["service"]["path"]
                    .as_str()
                    .unwrap()
                    .to_string();
                h["clientConfig"] = json!({
                    "url": format!("https://127.0.0.1:{port}{path}"),
                    "caBundle": base64::engine::general_purpose::STANDARD.encode(&pki.ca_pem),
                });
                h["namespaceSelector"] = selector("webhook");
            }
            apply(client, &d).await;
        }
    }
    serve
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    let creates: usize = args
        .iter()
        .position(|a| a == "--creates")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("--creates N"))
        .unwrap_or(300);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(creates));
}

async fn run(creates: usize) {
    let cp = controlplane::ControlPlane::start_with_args(&[
        "--feature-gates=MutatingAdmissionPolicy=true",
        "--runtime-config=admissionregistration.k8s.io/v1beta1=true",
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let client = cp.client();
    let mut crd =
        controlplane::yaml_docs(&controlplane::kuberay_path("crd/ray.io_rayclusters.yaml"));
    controlplane::install_crd(&client, crd.remove(0)).await;
    for m in MODES {
        apply(
            &client,
            &json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": format!("bench-{m}"), "labels": {"raygate.bench/admission": m}}
            }),
        )
        .await;
    }
    for (mode, mutating) in [("policy", true), ("vap", false)] {
        let opts = raygate::policy::ExportOptions {
            namespace_selector: Some(selector(mode)),
            name_prefix: format!("raygate-{mode}-"),
            mutating,
            ..Default::default()
        };
        for o in raygate::policy::export(&opts) {
            apply(&client, &o).await;
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let _serve = start_webhook(&client, tmp.path()).await;

    let sample = controlplane::yaml_docs(&controlplane::kuberay_path(
        "samples/ray-cluster.autoscaler.yaml",
    ))
    .into_iter()
    .find(|d| d["kind"] == "RayCluster")
    .unwrap();
    let api = |m: &str| {
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("ray.io", "v1", "RayCluster"),
            "rayclusters",
        );
        Api::<DynamicObject>::namespaced_with(client.clone(), &format!("bench-{m}"), &ar)
    };
    let mut bare = sample.clone();
    bare["spec"]
        .as_object_mut()
        .unwrap()
        .remove("autoscalerOptions");
    let create = async |m: &str, name: String, obj: &Value| -> Result<DynamicObject, kube::Error> {
        let mut o = obj.clone();
        o["metadata"] = json!({"name": name});
        let d: DynamicObject = serde_json::from_value(o).unwrap();
        api(m).create(&PostParams::default(), &d).await
    };
    // In force: `policy` and `webhook` add the autoscaler defaults, and all but `none` refuse
    // minReplicas > maxReplicas.
    let mut invalid = sample.clone();
    invalid["spec"]["workerGroupSpecs"][0]["minReplicas"] = json!(99);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut k = 0;
    loop {
        k += 1;
        let mut ok = true;
        for m in MODES {
            let got = create(m, format!("probe-{k}"), &bare)
                .await
                .expect("probe create");
            let has = got.data["spec"].get("autoscalerOptions").is_some();
            ok &= has == (m == "policy" || m == "webhook");
            let refused = create(m, format!("invalid-{k}"), &invalid).await.is_err();
            ok &= refused == (m != "none");
        }
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "admission not in force after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Warm-up, then the measured creates, round-robin (`--creates 0`: the cost probe only).
    if creates > 0 {
        latency(creates, &create, &sample).await;
    }
    cost_probe(&sample, &api).await;
    cp.stop();
}

async fn latency(
    creates: usize,
    create: &impl AsyncFn(&str, String, &Value) -> Result<DynamicObject, kube::Error>,
    sample: &Value,
) {
    let mut lat: [Vec<Duration>; 4] = Default::default();
    for i in 0..(creates + 20) {
        for (j, m) in MODES.iter().enumerate() {
            let t0 = Instant::now();
            create(m, format!("c-{i}"), sample).await.expect("create");
            if i >= 20 {
                lat[j].push(t0.elapsed());
            }
        }
    }
    println!(
        "RayCluster create through kube-apiserver v1.34.4 ({} creates per mode, sequential, sample ray-cluster.autoscaler.yaml)",
        creates
    );
    println!(
        "{:<10} {:>9} {:>9} {:>9}",
        "admission", "p50 ms", "p99 ms", "mean ms"
    );
    for (j, m) in MODES.iter().enumerate() {
        let v = &mut lat[j];
        v.sort();
        let mean = v.iter().sum::<Duration>() / v.len() as u32;
        println!(
            "{:<10} {:>9.2} {:>9.2} {:>9.2}",
            m,
            percentile(v, 0.50).as_secs_f64() * 1e3,
            percentile(v, 0.99).as_secs_f64() * 1e3,
            mean.as_secs_f64() * 1e3
        );
    }
}

/// Runtime CEL cost: the same policy on ever larger clusters (N worker groups named
/// `worker-group-NNNN` or `wg-NNNN`, each with 8 env entries and 4 labels), dry-run created with
/// no admission and with the ValidatingAdmissionPolicy; the API server refuses an object whose
/// evaluation exceeds a per-expression cost limit or the binding's cost budget.
async fn cost_probe(sample: &Value, api: &impl Fn(&str) -> Api<DynamicObject>) {
    println!("\nruntime cost probe (dry-run create; ms with no admission / with the policy):");
    let sizes = [1usize, 10, 100, 300, 500, 1000, 2000, 3000, 4000];
    for (n, name) in sizes
        .iter()
        .map(|&n| (n, "worker-group-"))
        .chain(sizes.iter().map(|&n| (n, "wg-")))
    {
        let mut o = sample.clone();
        let g0 = o["spec"]["workerGroupSpecs"][0].clone();
        let groups: Vec<Value> = (0..n)
            .map(|i| {
                let mut g = g0.clone();
                g["groupName"] = json!(format!("{name}{i:04}"));
                g["labels"] = json!({"a": "1", "b": "2", "example.com/c": "3", "d": "4"});
                g["template"]["spec"]["containers"][0]["env"] = Value::Array(
                    (0..8)
                        .map(|k| json!({"name": format!("VAR_{k}"), "value": "x"}))
                        .collect(),
                );
                g
            })
            .collect();
        o["spec"]["workerGroupSpecs"] = Value::Array(groups);
        o["metadata"] = json!({"name": format!("cost-{}{n}", name.len())});
        let bytes = serde_json::to_vec(&o).unwrap().len();
        let d: DynamicObject = serde_json::from_value(o).unwrap();
        let dry = PostParams {
            dry_run: true,
            ..Default::default()
        };
        let mut ms = [0.0f64; 2];
        let mut verdict = String::new();
        for (slot, m) in ["none", "vap"].iter().enumerate() {
            let t0 = Instant::now();
            let r = api(m).create(&dry, &d).await;
            ms[slot] = t0.elapsed().as_secs_f64() * 1e3;
            verdict = match r {
                Ok(_) => "admitted".to_string(),
                Err(kube::Error::Api(s)) => s.message.chars().take(300).collect(),
                Err(e) => e.to_string(),
            };
        }
        println!(
            "  {n:>5} worker groups {name}NNNN ({bytes:>8} bytes): {:>8.1} / {:>8.1} ms  {verdict}",
            ms[0], ms[1]
        );
    }
}
