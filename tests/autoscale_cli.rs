//! `raygate autoscale plan` (and the argument forms of `raygate autoscale status`) end to end
//! through the binary.

use std::path::Path;
use std::process::Command;

fn raygate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_raygate"))
}

fn scenario(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scenarios")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn json_output_is_the_issue_shape() {
    let out = raygate()
        .args([
            "autoscale",
            "plan",
            &scenario("t-k05-idle-scale-down.yaml"),
            "-o",
            "json",
        ])
        .output()
        .expect("run raygate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["patch", "groups", "infeasible", "capped", "violations"]
    );
    assert_eq!(
        v["patch"],
        serde_json::json!([
            {"op": "replace", "path": "/spec/workerGroupSpecs/0/replicas", "value": 1},
            {"op": "replace", "path": "/spec/workerGroupSpecs/0/scaleStrategy", "value": {"workersToDelete": ["w1"]}}
        ])
    );
    assert_eq!(
        v["groups"]["small-group"],
        serde_json::json!({"replicas": 1, "launch": 0, "terminate": ["w1"], "deferred": {}})
    );
}

#[test]
fn text_output_is_the_ray_status_layout() {
    let out = raygate()
        .args([
            "autoscale",
            "plan",
            &scenario("t-v08-demand-protects.yaml"),
            "-o",
            "text",
            "--now",
            "2024-01-02 03:04:05",
        ])
        .output()
        .expect("run raygate");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let expected_head = "\
======== Autoscaler status: 2024-01-02 03:04:05 ========
Node status
--------------------------------------------------------
Active:
 1 cpu
Idle:
 1 headgroup
 1 cpu
Pending:
 (no pending nodes)
Recent failures:
 (no failures)

Resources
--------------------------------------------------------
Total Usage:
 1.0/2.0 CPU

From request_resources:
 (none)
Pending Demands:
 {'CPU': 1.0}: 1+ pending tasks/actors
";
    assert!(text.starts_with(expected_head), "got:\n{text}");
    assert!(text.contains(" cpu: replicas 2\n"), "got:\n{text}");
    assert!(text.contains("Patch: (none)"), "got:\n{text}");
}

#[test]
fn unknown_key_is_an_error_with_its_location() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "rayCluster: {apiVersion: ray.io/v1, kind: RayCluster, spec: {}}\nray:\n  nodes:\n    - {pod: w1, totl: {CPU: 1}}\n",
    )
    .expect("write");
    let out = raygate()
        .args(["autoscale", "plan"])
        .arg(&path)
        .output()
        .expect("run raygate");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yaml:4:17"), "{err}");
    assert!(err.contains("unknown field `totl`"), "{err}");
}

fn plan_stderr(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    let out = raygate()
        .args(["autoscale", "plan"])
        .arg(&path)
        .output()
        .expect("run raygate");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{err}");
    // never the parser's own placeholders or Rust Debug output
    for bad in ["<input>", ": error:", "Nodes {", "budget breached"] {
        assert!(!err.contains(bad), "{bad:?} in:\n{err}");
    }
    err
}

/// Issue #14 (5): `autoscale plan` printed `error: F: error: line L column C`, then
/// `--> <input>:L:C` instead of the file name, a snippet column that disagreed with the header
/// for long lines, and Rust Debug output (`budget breached: Nodes { nodes: 250001 }`). It now
/// prints what `validate` prints: `error[RULE]: message`, `--> file:line:col`, the source line
/// (trimmed around the column when long; left out past 16 KiB) with the field underlined and
/// named.
#[test]
fn plan_errors_name_the_file_line_and_column_like_validate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = |n: &str| dir.path().join(n).display().to_string();
    let rc = "rayCluster: {apiVersion: ray.io/v1, kind: RayCluster, spec: {}}\n";

    // `pods:` with `n` pods on one line, then one with a misspelt field
    let pods_line = |n: usize| {
        let pods: Vec<String> = (0..n)
            .map(|i| format!("{{name: w{i}, group: g}}"))
            .collect();
        format!(
            "pods: [{}, {{name: x, group: g, phaze: Running}}]",
            pods.join(", ")
        )
    };

    // a long line: the header's column and the caret agree
    let line2 = pods_line(300);
    let col = line2.find("phaze").unwrap() + 1;
    let err = plan_stderr(dir.path(), "long.yaml", &format!("{rc}{line2}\n"));
    assert!(
        err.starts_with("error[scenario]: unknown field `phaze`"),
        "{err}"
    );
    assert!(
        err.contains(&format!("--> {}:2:{col}\n", f("long.yaml"))),
        "{err}"
    );
    let lines: Vec<&str> = err.lines().collect();
    let src = lines
        .iter()
        .find(|l| l.starts_with("2 | "))
        .expect("source line");
    let carets = lines.iter().find(|l| l.contains('^')).expect("caret line");
    // compare characters, not bytes
    let at = carets.chars().position(|c| c == '^').unwrap();
    let under: String = src.chars().skip(at).take(5).collect();
    assert_eq!(under, "phaze", "{err}");
    assert!(carets.ends_with("^^^^^ pods[300].phaze"), "{err}");
    assert!(
        src.chars().count() < 200,
        "the long line is windowed: {err}"
    );

    // a line over the 16 KiB kept for display: the location and the field, no source line
    let line2 = pods_line(1000);
    assert!(line2.len() > raygate::pipeline::SNIPPET_MAX_BYTES);
    let col = line2.find("phaze").unwrap() + 1;
    let err = plan_stderr(dir.path(), "longer.yaml", &format!("{rc}{line2}\n"));
    assert!(
        err.contains(&format!(
            "--> {}:2:{col}\n = field: pods[1000].phaze\n",
            f("longer.yaml")
        )),
        "{err}"
    );
    assert!(!err.contains("2 | "), "{err}");

    // more nodes than the reader takes: a clean message at a place, no Debug output
    let err = plan_stderr(
        dir.path(),
        "nodes.yaml",
        &format!("{rc}pods: [{}0]\n", "0,".repeat(1_100_000)),
    );
    assert!(
        err.starts_with("error[YAML]: document expands to more than"),
        "{err}"
    );
    assert!(
        err.contains(&format!("--> {}:2:", f("nodes.yaml"))),
        "{err}"
    );

    // a syntax error in rayClusterFile names that file
    std::fs::write(
        dir.path().join("rc.yaml"),
        "apiVersion: ray.io/v1\nkind: RayCluster\nspec: {a: [1, 2}\n",
    )
    .expect("write");
    let err = plan_stderr(dir.path(), "s.yaml", "rayClusterFile: rc.yaml\n");
    assert!(err.starts_with("error[YAML]: "), "{err}");
    assert!(err.contains(&format!("--> {}:3:16", f("rc.yaml"))), "{err}");

    // a value the scenario refuses is located at its field
    let err = plan_stderr(
        dir.path(),
        "idle.yaml",
        &format!("{rc}ray:\n  nodes:\n    - {{pod: h, total: {{CPU: 1}}, idleSeconds: -1}}\n"),
    );
    assert!(err.contains(&format!("--> {}:4:", f("idle.yaml"))), "{err}");
    assert!(
        err.contains("^^^^^^^^^^^ ray.nodes[0].idleSeconds"),
        "{err}"
    );
}

#[test]
fn invalid_cluster_exits_1_with_violations_and_no_patch() {
    let out = raygate()
        .args([
            "autoscale",
            "plan",
            &scenario("invalid-cluster-no-patch.yaml"),
            "-o",
            "json",
        ])
        .output()
        .expect("run raygate");
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["patch"], serde_json::json!([]));
    assert_eq!(v["violations"][0]["path"], "spec.workerGroupSpecs[0]");
}

#[test]
fn ray_cluster_file_is_relative_to_the_scenario() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("rc.yaml"),
        "apiVersion: ray.io/v1\nkind: RayCluster\nmetadata: {name: rc}\nspec:\n  headGroupSpec: {rayStartParams: {}, template: {spec: {containers: [{name: h, image: rayproject/ray:2.60.0}]}}}\n  workerGroupSpecs:\n    - {groupName: g, replicas: 0, minReplicas: 0, maxReplicas: 4, rayStartParams: {num-cpus: '2'}, template: {spec: {containers: [{name: w, image: rayproject/ray:2.60.0}]}}}\n",
    )
    .expect("write");
    let path = dir.path().join("s.yaml");
    std::fs::write(
        &path,
        "rayClusterFile: rc.yaml\nray:\n  demands: [{resources: {CPU: 2}, count: 3}]\n",
    )
    .expect("write");
    let out = raygate()
        .args(["autoscale", "plan", "-o", "json"])
        .arg(&path)
        .output()
        .expect("run raygate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["groups"]["g"]["launch"], 3);
}

/// `autoscale status` has two forms: `<namespace>/<cluster>` (Kubernetes) or `--cluster FILE`
/// (a local GCS); exactly one is required.
#[test]
fn status_takes_a_cluster_argument_or_a_file() {
    let out = raygate()
        .args(["autoscale", "status"])
        .output()
        .expect("run raygate");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("NAMESPACE/CLUSTER"), "{err}");

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("rc.yaml");
    std::fs::write(
        &file,
        "apiVersion: ray.io/v1\nkind: RayCluster\nmetadata: {name: rc}\nspec:\n  headGroupSpec:\n    \
         rayStartParams: {}\n    template: {spec: {containers: [{name: ray-head, image: ray}]}}\n",
    )
    .expect("write");
    let out = raygate()
        .args(["autoscale", "status", "ns/rc", "--cluster"])
        .arg(&file)
        .output()
        .expect("run raygate");
    assert_eq!(out.status.code(), Some(2), "both forms at once");

    // The file form asks the given GCS (nothing listens there).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let out = raygate()
        .args(["autoscale", "status", "--gcs", &addr, "--cluster"])
        .arg(&file)
        .output()
        .expect("run raygate");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&addr), "{err}");
}

/// Issue #14 (5): `rayClusterFile: /dev/zero` grew to gigabytes and the scenario file was read
/// whole. Both are capped like `validate`'s documents, with the real file named.
#[test]
fn plan_caps_the_scenario_and_the_cluster_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.yaml");
    std::fs::write(&path, "rayClusterFile: /dev/zero\nray: {}\n").expect("write");
    let out = raygate()
        .args(["autoscale", "plan"])
        .arg(&path)
        .output()
        .expect("run raygate");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/dev/zero: larger than 4 MiB"), "{err}");
    let big = dir.path().join("big.yaml");
    std::fs::write(&big, format!("# {}\n", "x".repeat(5 * 1024 * 1024))).expect("write");
    let out = raygate()
        .args(["autoscale", "plan"])
        .arg(&big)
        .output()
        .expect("run raygate");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("big.yaml: larger than 4 MiB"), "{err}");
}

/// Issue #14 (5): two pods (or two Ray nodes) with one name were silently merged.
#[test]
fn plan_refuses_repeated_pod_and_node_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rc = "rayCluster: {apiVersion: ray.io/v1, kind: RayCluster, spec: {}}\n";
    for (body, want) in [
        (
            "pods:\n  - {name: w1, group: g}\n  - {name: w1, group: g}\n",
            "pods[1].name \"w1\" repeats pods[0].name",
        ),
        (
            "ray:\n  nodes:\n    - {pod: h, total: {CPU: 1}}\n    - {pod: h, total: {CPU: 2}}\n",
            "ray.nodes[1].pod \"h\" repeats ray.nodes[0].pod",
        ),
    ] {
        let path = dir.path().join("dup.yaml");
        std::fs::write(&path, format!("{rc}{body}")).expect("write");
        let out = raygate()
            .args(["autoscale", "plan"])
            .arg(&path)
            .output()
            .expect("run raygate");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(want), "{err}");
    }
}
