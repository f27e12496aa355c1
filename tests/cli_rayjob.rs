//! `raygate validate` / `raygate default` on RayJob, RayService and RayCronJob through the built
//! binary: the embedded-spec error is found with `file:line:column` in every output format, from
//! a file, a directory, stdin and a `kind: List`; `default` fills the embedded spec.

#[path = "support/cli.rs"]
mod cli;
use cli::run_stdin;
use std::process::Output;

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    run_stdin(args, stdin.unwrap_or(""))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

const BAD_JOB: &str = "apiVersion: ray.io/v1
kind: RayJob
metadata:
  name: rayjob-sample
spec:
  entrypoint: python x.py
  rayClusterSpec:
    headGroupSpec:
      template:
        spec:
          containers:
          - name: ray-head
            image: rayproject/ray:2.52.0
    workerGroupSpecs:
    - groupName: small
      minReplicas: 5
      maxReplicas: 2
      template:
        spec:
          containers:
          - name: w
            image: rayproject/ray:2.52.0
";

const MSG: &str =
    "The RayJob spec is invalid: worker group small has minReplicas 5 greater than maxReplicas 2";
const PATH: &str = "spec.rayClusterSpec.workerGroupSpecs[0].minReplicas";

#[test]
fn the_embedded_error_fails_in_every_format_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("job.yaml");
    std::fs::write(&f, BAD_JOB).unwrap();
    let file = f.display().to_string();
    let o = run(&["validate", &file], None);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let t = stdout(&o);
    assert!(
        t.contains(MSG) && t.contains(&format!("{file}:16:7")) && t.contains(PATH),
        "{t}"
    );
    assert!(
        t.contains("1 object(s) (0 RayCluster(s)): 0 valid, 1 invalid"),
        "{t}"
    );

    let o = run(&["validate", "-o", "json", &file], None);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let finding = &v["files"][0]["documents"][0]["findings"][0];
    assert_eq!(finding["rule"], "W5");
    assert_eq!(finding["message"], MSG);
    assert_eq!(finding["path"], PATH);
    assert_eq!(
        (finding["line"].as_u64(), finding["column"].as_u64()),
        (Some(16), Some(7))
    );

    for (fmt, needle) in [
        ("github", "line=16,col=7".to_string()),
        ("junit", MSG.to_string()),
        ("sarif", "\"startLine\": 16".to_string()),
    ] {
        let o = run(&["validate", "-o", fmt, &file], None);
        assert_eq!(o.status.code(), Some(1), "{fmt}");
        let t = stdout(&o);
        assert!(t.contains(&needle), "{fmt}: {t}");
        assert!(t.contains("W5"), "{fmt}: {t}");
    }
    // directory and stdin
    let o = run(&["validate", &dir.path().display().to_string()], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains(&format!("{file}:16:7")));
    let o = run(&["validate", "-"], Some(BAD_JOB));
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("<stdin>:16:7"), "{}", stdout(&o));
}

#[test]
fn list_objects_and_the_other_kinds() {
    let list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: ray.io/v1\n  kind: RayService\n  metadata: {name: svc}\n  spec:\n    rayClusterConfig:\n      headGroupSpec:\n        template:\n          spec:\n            containers: []\n- apiVersion: ray.io/v1\n  kind: RayCronJob\n  metadata: {name: cron}\n  spec:\n    schedule: \"61 * * * *\"\n    jobTemplate:\n      clusterSelector: {ray.io/cluster: c}\n"
        .to_string();
    let o = run(&["validate", "-o", "json", "-"], Some(&list));
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let docs = v["files"][0]["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 2);
    let f0 = &docs[0]["findings"][0];
    assert_eq!(f0["rule"], "S1");
    assert_eq!(
        f0["path"],
        "spec.rayClusterConfig.headGroupSpec.template.spec.containers"
    );
    assert_eq!(
        f0["message"],
        "The RayService spec is invalid: headGroupSpec should have at least one container"
    );
    assert_eq!(f0["line"], 12);
    let cron: Vec<&serde_json::Value> = docs[1]["findings"].as_array().unwrap().iter().collect();
    let c3 = cron.iter().find(|f| f["rule"] == "CJ3").expect("CJ3");
    assert_eq!(
        c3["message"],
        "invalid cron schedule: end of range (61) above maximum (59): 61"
    );
    assert_eq!(c3["line"], 17);
    assert!(
        cron.iter()
            .any(|f| f["rule"] == "RG-CRONJOB-GATE" && f["severity"] == "warning")
    );
}

#[test]
fn default_fills_the_embedded_spec_and_is_stable() {
    let job = BAD_JOB.replace("minReplicas: 5", "minReplicas: 1").replace(
        "    headGroupSpec:",
        "    enableInTreeAutoscaling: true\n    headGroupSpec:",
    );
    let o = run(&["default", "-"], Some(&job));
    assert_eq!(o.status.code(), Some(0));
    let once = stdout(&o);
    for want in [
        "submissionMode: K8sJobMode",
        "backoffLimit: 0",
        "numOfHosts: 1",
        "imagePullPolicy: IfNotPresent",
        "cpu: 500m",
        "memory: 512Mi",
    ] {
        assert!(once.contains(want), "{want} in {once}");
    }
    let o = run(&["default", "-"], Some(&once));
    assert_eq!(stdout(&o), once, "defaulting twice changes nothing");
    let o = run(&["validate", "-"], Some(&once));
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}
