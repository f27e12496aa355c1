//! `raygate default` over KubeRay's samples: every document comes back, RayClusters carry the
//! CRD defaults, and the output validates exactly like the input.

use std::io::Write;
use std::process::{Command, Stdio};

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/kuberay/samples");
const ALL_GATES: &str = "RayClusterHistoryServer=true,RayClusterMTLS=true,RayClusterNetworkPolicy=true,GCSFaultToleranceEmbeddedStorage=true";

fn bin() -> Command {
    Command::new(
        std::env::var("RAYGATE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_raygate").to_string()),
    )
}

#[test]
fn defaulted_samples_read_back_and_still_validate() {
    let o = bin().args(["default", SAMPLES]).output().expect("run");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8(o.stdout).expect("utf-8");
    let docs = raygate::yaml::parse_all(&out).expect("output parses");
    let rcs: Vec<_> = docs
        .iter()
        .filter(|d| d.value["kind"] == "RayCluster")
        .collect();
    assert_eq!(rcs.len(), 46);
    assert_eq!(docs.len(), 46 + 54, "non-RayCluster documents pass through");
    for d in &rcs {
        for g in d.value["spec"]["workerGroupSpecs"]
            .as_array()
            .into_iter()
            .flatten()
        {
            assert!(g["maxReplicas"].is_i64(), "{}", g);
            assert!(g["numOfHosts"].is_i64(), "{}", g);
        }
    }
    let mut child = bin()
        .args(["validate", "--strict", "--feature-gates", ALL_GATES, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let w = std::thread::spawn(move || stdin.write_all(out.as_bytes()));
    let v = child.wait_with_output().expect("wait");
    let _ = w.join();
    let text = String::from_utf8_lossy(&v.stdout);
    assert_eq!(v.status.code(), Some(0), "{text}");
    assert!(text.contains("46 RayCluster(s): 46 valid"), "{text}");
}
