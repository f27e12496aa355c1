//! `raygate validate` on KubeRay's 48 sample files: exactly the 4 samples KubeRay refuses under
//! default feature gates are flagged, at the right file:line:column; all pass with the gates on.

use std::process::{Command, Output};

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/kuberay/samples");

fn bin() -> Command {
    Command::new(
        std::env::var("RAYGATE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_raygate").to_string()),
    )
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run raygate")
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("bad json ({e}): {}", String::from_utf8_lossy(&o.stdout)))
}

/// (file, rule, path, line, column)
type Found = (String, String, String, u64, u64);

/// Every finding of a JSON report.
fn findings(v: &serde_json::Value) -> Vec<Found> {
    let mut out = Vec::new();
    for f in v["files"].as_array().expect("files") {
        let name = f["path"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        for d in f["documents"].as_array().unwrap() {
            for x in d["findings"].as_array().unwrap() {
                out.push((
                    name.clone(),
                    x["rule"].as_str().unwrap().to_string(),
                    x["path"].as_str().unwrap().to_string(),
                    x["line"].as_u64().unwrap(),
                    x["column"].as_u64().unwrap(),
                ));
            }
        }
    }
    out
}

#[test]
fn default_gates_flag_exactly_the_four_refused_samples() {
    let o = run(&["validate", "-o", "json", SAMPLES]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = json(&o);
    let got = findings(&v);
    let s = |a: &str, b: &str, c: &str, l: u64, col: u64| {
        (a.to_string(), b.to_string(), c.to_string(), l, col)
    };
    assert_eq!(
        got,
        vec![
            s(
                "ray-cluster.embedded-gcs-ft.yaml",
                "G7",
                "spec.gcsFaultToleranceOptions.backend",
                15,
                5
            ),
            s(
                "ray-cluster.historyserver.yaml",
                "H1",
                "spec.historyServerOptions",
                14,
                3
            ),
            s("ray-cluster.mtls.yaml", "T1", "spec.tlsOptions", 15, 3),
            s(
                "ray-cluster.network-policy-deny-all.yaml",
                "NP1",
                "spec.networkPolicy",
                36,
                3
            ),
        ]
    );
    assert_eq!(v["summary"]["files"], 48);
    assert_eq!(v["summary"]["rayclusters"], 46);
    assert_eq!(v["summary"]["invalid"], 4);
    assert_eq!(v["summary"]["unreadable"], 0);
    // The non-RayCluster documents in those files are skipped, not errors.
    assert!(v["summary"]["skipped"].as_u64().unwrap() > 0);
    for f in v["files"].as_array().unwrap() {
        for d in f["documents"].as_array().unwrap() {
            if d["kind"] != "RayCluster" {
                assert_eq!(d["status"], "skipped", "{d}");
            }
        }
    }
}

#[test]
fn kai_samples_pass_after_crd_defaults() {
    for f in [
        "ray-cluster.kai-gpu-sharing.yaml",
        "ray-cluster.kai-scheduler.yaml",
    ] {
        let p = format!("{SAMPLES}/{f}");
        let o = run(&["validate", &p]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{f}: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
}

#[test]
fn all_samples_pass_with_the_alpha_gates_on() {
    let o = run(&[
        "validate",
        "--feature-gates",
        "RayClusterHistoryServer=true,RayClusterMTLS=true,RayClusterNetworkPolicy=true,GCSFaultToleranceEmbeddedStorage=true",
        SAMPLES,
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = run(&[
        "validate",
        "--strict",
        "-o",
        "json",
        "--feature-gates",
        "RayClusterHistoryServer=true,RayClusterMTLS=true,RayClusterNetworkPolicy=true,GCSFaultToleranceEmbeddedStorage=true",
        SAMPLES,
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "samples have no unknown fields: {:?}",
        findings(&json(&o))
    );
}

#[test]
fn human_output_is_rustc_like() {
    let p = format!("{SAMPLES}/ray-cluster.mtls.yaml");
    let o = run(&["validate", &p]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8(o.stdout).unwrap();
    let expected = format!(
        "error[T1]: RayCluster raycluster-mtls: spec.tlsOptions requires the RayClusterMTLS feature gate to be enabled\n  --> {p}:15:3\n   |\n15 |   tlsOptions:\n   |   ^^^^^^^^^^ spec.tlsOptions\n   |\n   = help: enable the gate: `--feature-gates RayClusterMTLS=true` (on the KubeRay operator, and on raygate validate/serve)\n\n"
    );
    assert!(out.starts_with(&expected), "{out}");
    assert!(out.contains("1 RayCluster(s): 0 valid, 1 invalid"), "{out}");
}

#[test]
fn first_error_mode_and_ignore_warnings() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/invalid");
    let p = format!("{fixtures}/missing-worker-template.yaml");
    let v = json(&run(&["validate", "-o", "json", &p]));
    assert!(findings(&v).len() >= 2, "{:?}", findings(&v));
    let v = json(&run(&["validate", "-o", "json", "--first-error", &p]));
    let f = findings(&v);
    assert_eq!(f.len(), 1, "{f:?}");
    let v = json(&run(&["validate", "-o", "json", "--ignore-warnings", &p]));
    for d in v["files"][0]["documents"].as_array().unwrap() {
        for x in d["findings"].as_array().unwrap() {
            assert_eq!(x["severity"], "error");
        }
    }
}

#[test]
fn summary_mode_one_line_per_file() {
    let o = run(&["validate", "--summary", SAMPLES]);
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(out.lines().count(), 49, "{out}");
    assert!(
        out.contains("ray-cluster.mtls.yaml: INVALID (1 RayCluster(s), 1 error(s)"),
        "{out}"
    );
    assert!(
        out.contains("ray-cluster-alb-ingress.yaml: no RayCluster"),
        "{out}"
    );
}
