//! End-to-end tests against a real kube-apiserver + etcd (no webhook involved): the harness
//! itself, KubeRay's CRD installed into a real API server, CRD defaulting, and the
//! `ray.io/v1alpha1` ⇄ `ray.io/v1` round trip with KubeRay's own conversion strategy (`None`).
//!
//! Run alone: `cargo test --test e2e_apiserver`. Binaries: see `tests/support/controlplane.rs`.

#[path = "support/controlplane.rs"]
mod controlplane;

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, PostParams};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn rayclusters(client: &kube::Client, ns: &str, version: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("ray.io", version, "RayCluster");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "rayclusters");
    Api::namespaced_with(client.clone(), ns, &ar)
}

async fn install_kuberay_crd(client: &kube::Client) {
    let mut docs =
        controlplane::yaml_docs(&controlplane::kuberay_path("crd/ray.io_rayclusters.yaml"));
    assert_eq!(docs.len(), 1, "one CRD in the file");
    controlplane::install_crd(client, docs.remove(0)).await;
}

/// The first RayCluster document of a sample file, with a new name.
fn sample(file: &str, name: &str) -> Value {
    let docs = controlplane::yaml_docs(&controlplane::kuberay_path(&format!("samples/{file}")));
    let mut rc = docs
        .into_iter()
        .find(|d| d["kind"] == "RayCluster")
        .unwrap_or_else(|| panic!("{file} has no RayCluster"));
    rc["metadata"] = json!({ "name": name });
    rc
}

fn to_dynamic(v: Value) -> DynamicObject {
    serde_json::from_value(v).expect("DynamicObject")
}

#[tokio::test]
async fn control_plane_answers_with_the_built_version() {
    let cp = controlplane::shared();
    eprintln!(
        "control plane ready in {:.1} s at {} (etcd pid {}, kube-apiserver pid {})",
        cp.start_duration().as_secs_f64(),
        cp.server(),
        cp.etcd_pid(),
        cp.apiserver_pid()
    );
    let client = cp.client();
    let v = client.apiserver_version().await.expect("GET /version");
    assert_eq!(v.git_version, "v1.34.4", "{v:?}");
    assert_eq!((v.major.as_str(), v.minor.as_str()), ("1", "34"));
    // The kubeconfig written for subprocesses (and humans) points at the same server.
    let kc = std::fs::read_to_string(cp.kubeconfig_path()).expect("kubeconfig");
    assert!(kc.contains(&format!("server: {}", cp.server())), "{kc}");
    assert!(kc.contains(cp.token()));
    // Anonymous requests are authenticated as system:anonymous: listing namespaces is forbidden,
    // while our admin token (system:masters) may.
    let mut anon_cfg = cp.config();
    anon_cfg.auth_info = Default::default();
    let anon = kube::Client::try_from(anon_cfg).expect("anonymous client");
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(anon);
    match ns.list(&Default::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 403, "{s:?}"),
        other => panic!("anonymous list of namespaces should be forbidden, got {other:?}"),
    }
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    let names: Vec<String> = ns
        .list(&Default::default())
        .await
        .expect("admin lists namespaces")
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.iter().any(|n| n == "kube-system"), "{names:?}");
}

#[tokio::test]
async fn crd_defaults_are_applied_by_the_api_server() {
    let cp = controlplane::shared();
    let client = cp.client();
    install_kuberay_crd(&client).await;
    let ns = controlplane::create_namespace(&client, "e2e-defaults").await;

    let mut rc = sample("ray-cluster.sample.yaml", "defaults");
    let wg = &mut rc["spec"]["workerGroupSpecs"][0];
    for f in ["replicas", "minReplicas", "maxReplicas", "numOfHosts"] {
        wg.as_object_mut().expect("worker group object").remove(f);
    }
    let api = rayclusters(&client, &ns, "v1");
    let created = api
        .create(&PostParams::default(), &to_dynamic(rc))
        .await
        .expect("create RayCluster without replica fields");
    assert!(created.metadata.uid.is_some());

    let got = api.get("defaults").await.expect("read back");
    let wg = &got.data["spec"]["workerGroupSpecs"][0];
    assert_eq!(wg["replicas"], json!(0), "{wg}");
    assert_eq!(wg["minReplicas"], json!(0), "{wg}");
    assert_eq!(wg["maxReplicas"], json!(2147483647), "{wg}");
    assert_eq!(wg["numOfHosts"], json!(1), "{wg}");
    // Defaults inside the embedded PodTemplateSpec come from the same schema.
    let port = &got.data["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["ports"][0];
    assert_eq!(port["protocol"], json!("TCP"), "{port}");

    // Values given explicitly are kept, not overwritten by defaults.
    let mut rc = sample("ray-cluster.sample.yaml", "explicit");
    rc["spec"]["workerGroupSpecs"][0]["numOfHosts"] = json!(2);
    api.create(&PostParams::default(), &to_dynamic(rc))
        .await
        .expect("create explicit");
    let got = api.get("explicit").await.expect("read back explicit");
    let wg = &got.data["spec"]["workerGroupSpecs"][0];
    assert_eq!(
        (
            &wg["replicas"],
            &wg["minReplicas"],
            &wg["maxReplicas"],
            &wg["numOfHosts"]
        ),
        (&json!(1), &json!(1), &json!(5), &json!(2)),
        "{wg}"
    );

    // The CRD's structural schema is enforced: a wrong type is refused with the field path.
    let mut bad = sample("ray-cluster.sample.yaml", "bad-type");
    bad["spec"]["workerGroupSpecs"][0]["replicas"] = json!("three");
    match api.create(&PostParams::default(), &to_dynamic(bad)).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 422, "{s:?}");
            assert!(
                s.message.contains("spec.workerGroupSpecs[0].replicas"),
                "{}",
                s.message
            );
        }
        other => panic!("a string replicas must be refused, got {other:?}"),
    }

    api.delete("defaults", &DeleteParams::default())
        .await
        .expect("delete");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match api.get_opt("defaults").await.expect("get after delete") {
            None => break,
            Some(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Some(o) => panic!("still present after delete: {:?}", o.metadata),
        }
    }
}

#[tokio::test]
async fn v1alpha1_write_is_readable_as_v1() {
    let cp = controlplane::shared();
    let client = cp.client();
    install_kuberay_crd(&client).await;
    let ns = controlplane::create_namespace(&client, "e2e-versions").await;

    let mut rc = sample("ray-cluster.sample.yaml", "old-api");
    rc["apiVersion"] = json!("ray.io/v1alpha1");
    let alpha = rayclusters(&client, &ns, "v1alpha1");
    let created = alpha
        .create(&PostParams::default(), &to_dynamic(rc.clone()))
        .await
        .expect("create through ray.io/v1alpha1");
    assert_eq!(
        created.types.as_ref().map(|t| t.api_version.as_str()),
        Some("ray.io/v1alpha1")
    );

    let v1 = rayclusters(&client, &ns, "v1");
    let got = v1.get("old-api").await.expect("read through ray.io/v1");
    assert_eq!(
        got.types.as_ref().map(|t| t.api_version.as_str()),
        Some("ray.io/v1")
    );
    assert_eq!(got.metadata.uid, created.metadata.uid);
    // Every field written through v1alpha1 is there in v1 ...
    assert_eq!(got.data["spec"]["rayVersion"], rc["spec"]["rayVersion"]);
    assert_eq!(
        got.data["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"],
        rc["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"]
    );
    assert_eq!(
        got.data["spec"]["workerGroupSpecs"][0]["maxReplicas"],
        rc["spec"]["workerGroupSpecs"][0]["maxReplicas"]
    );
    // ... and v1's own defaults (numOfHosts does not exist in v1alpha1) are applied on read.
    assert_eq!(
        got.data["spec"]["workerGroupSpecs"][0]["numOfHosts"],
        json!(1)
    );

    // A v1-only field written through v1 is pruned from the v1alpha1 view (KubeRay's CRD has no
    // conversion webhook, strategy None): the loss the raygate conversion webhook exists to fix.
    let mut rc1 = sample("ray-cluster.sample.yaml", "new-api");
    rc1["spec"]["managedBy"] = json!("ray.io/kuberay-operator");
    v1.create(&PostParams::default(), &to_dynamic(rc1))
        .await
        .expect("create through v1");
    let as_alpha = alpha.get("new-api").await.expect("read through v1alpha1");
    assert_eq!(
        as_alpha.types.as_ref().map(|t| t.api_version.as_str()),
        Some("ray.io/v1alpha1")
    );
    let as_v1 = v1.get("new-api").await.expect("read through v1");
    assert_eq!(
        as_v1.data["spec"]["managedBy"],
        json!("ray.io/kuberay-operator")
    );
}

/// Child half of `killing_the_test_process_leaves_no_control_plane`: starts a private control
/// plane, prints the PIDs and blocks until killed. Does nothing unless the parent asked for it.
#[test]
fn control_plane_child_process() {
    if std::env::var_os("RAYGATE_E2E_KILL_CHILD").is_none() {
        return;
    }
    let cp = controlplane::ControlPlane::start().expect("start private control plane");
    println!(
        "CONTROL-PLANE-PIDS {} {} {}",
        cp.etcd_pid(),
        cp.apiserver_pid(),
        cp.dir().display()
    );
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    std::thread::sleep(Duration::from_secs(600));
}

fn alive(pid: u32) -> bool {
    // Gone, or a zombie waiting for its new parent to reap it, counts as dead.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(s) => {
            let state = s
                .rsplit_once(')')
                .map(|(_, r)| r.trim_start())
                .unwrap_or("");
            !state.starts_with('Z') && !state.starts_with('X')
        }
    }
}

#[test]
fn killing_the_test_process_leaves_no_control_plane() {
    use std::io::BufRead as _;
    use std::process::{Command, Stdio};
    // Resolve the binaries here so the child does not build them under our deadline.
    let bins = controlplane::bin_dir().unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(std::env::current_exe().expect("current exe"))
        .args([
            "--exact",
            "control_plane_child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RAYGATE_E2E_KILL_CHILD", "1")
        .env("RAYGATE_ENVTEST_BIN", &bins)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child test process");
    let stdout = child.stdout.take().expect("child stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some((_, rest)) = line.split_once("CONTROL-PLANE-PIDS ") {
                let _ = tx.send(rest.to_string());
                return;
            }
        }
    });
    let line = match rx.recv_timeout(Duration::from_secs(240)) {
        Ok(l) => l,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child test process did not report a running control plane within 240 s");
        }
    };
    let mut parts = line.split_whitespace();
    let etcd: u32 = parts.next().and_then(|p| p.parse().ok()).expect("etcd pid");
    let apiserver: u32 = parts
        .next()
        .and_then(|p| p.parse().ok())
        .expect("apiserver pid");
    let dir = parts.next().map(std::path::PathBuf::from).expect("dir");
    assert!(alive(etcd) && alive(apiserver), "both run before the kill");

    child.kill().expect("SIGKILL the child test process");
    child.wait().expect("reap child");
    let deadline = Instant::now() + Duration::from_secs(15);
    while (alive(etcd) || alive(apiserver)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // SIGKILL skips cleanup, so the temp dir stays; remove it here.
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!alive(etcd), "etcd (pid {etcd}) survived the test process");
    assert!(
        !alive(apiserver),
        "kube-apiserver (pid {apiserver}) survived the test process"
    );
}
