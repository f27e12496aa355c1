//! Issue #17 (2), no false greens: a `ray.io` document raygate does not check is an error, not
//! "skipped"; `--skip` / `--reject` as kubeconform has; exit codes in `--help`. And #17 (3):
//! `help:` lines and the object in the header. Run through the built binary.

#[path = "support/cli.rs"]
mod cli;
use cli::{bin, run_stdin, text};

use std::process::Output;

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

const VALID: &str = concat!(
    "apiVersion: ray.io/v1
kind: RayCluster
metadata:
  name: ok
  namespace: team-a
spec:
",
    cli::head_group_yaml!()
);

const TYPO: &str = "---
apiVersion: ray.io/v1
kind: RayClustr
metadata:
  name: typo
spec: {}
";

#[test]
fn unknown_ray_io_kind_is_an_error_not_skipped() {
    let src = format!("{VALID}{TYPO}");
    let o = run_stdin(&["validate", "-o", "json", "-"], &src);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v = json(&o);
    let d = &v["files"][0]["documents"][1];
    assert_eq!(d["status"], "invalid", "{d}");
    assert_eq!(d["findings"][0]["rule"], "UNKNOWN-KIND");
    assert_eq!(d["findings"][0]["path"], "kind");
    assert_eq!(d["findings"][0]["line"], 16);
    assert_eq!(d["findings"][0]["column"], 1);
    let msg = d["findings"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("\"RayClustr\"") && msg.contains("RayCluster"),
        "{msg}"
    );
    assert!(
        d["findings"][0]["help"]
            .as_str()
            .unwrap()
            .contains("--skip RayClustr")
    );
    assert_eq!(v["summary"]["checked"], 2);
    assert_eq!(v["summary"]["rayclusters"], 1);
    assert_eq!(v["summary"]["skipped"], 0);

    // Human output: the summary line does not call the typo a RayCluster, and says invalid.
    let o = run_stdin(&["validate", "-"], &src);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("1 file(s), 2 object(s) (1 RayCluster(s)): 1 valid, 1 invalid"),
        "{t}"
    );
    assert!(
        t.contains("error[UNKNOWN-KIND]: RayClustr typo: unknown kind"),
        "{t}"
    );
    assert!(
        t.contains("= help: fix the kind, or pass `--skip RayClustr`"),
        "{t}"
    );
}

#[test]
fn unknown_version_or_missing_kind_of_ray_io_is_an_error() {
    for (src, rule, path) in [
        (
            "apiVersion: ray.io/v2\nkind: RayCluster\nmetadata: {name: a}\n",
            "API-VERSION",
            "apiVersion",
        ),
        (
            "apiVersion: ray.io\nkind: RayCluster\nmetadata: {name: a}\n",
            "API-VERSION",
            "apiVersion",
        ),
        (
            "kind: RayCluster\nmetadata: {name: a}\n",
            "API-VERSION",
            "apiVersion",
        ),
        (
            "apiVersion: ray.io/v1\nmetadata: {name: a}\n",
            "UNKNOWN-KIND",
            "",
        ),
        (
            "apiVersion: ray.io/v1\nkind: RayWidget\nmetadata: {name: a}\n",
            "UNKNOWN-KIND",
            "kind",
        ),
    ] {
        let o = run_stdin(&["validate", "-o", "json", "-"], src);
        assert_eq!(o.status.code(), Some(1), "{src}\n{}", text(&o));
        let v = json(&o);
        let f = &v["files"][0]["documents"][0]["findings"][0];
        assert_eq!(f["rule"], rule, "{src}");
        assert_eq!(f["path"], path, "{src}");
        assert!(f["help"].is_string(), "{src}: {f}");
    }
    // Other groups stay skipped: raygate is not a general Kubernetes validator.
    let o = run_stdin(
        &["validate", "-o", "json", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: example.com/v1\nkind: RayCluster\nmetadata: {name: x}\n",
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json(&o);
    assert_eq!(v["summary"]["skipped"], 2);
}

#[test]
fn skip_and_reject_kinds() {
    let src = format!(
        "{VALID}{TYPO}---\napiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\n---\napiVersion: ray.io/v1\nkind: RayJob\nmetadata: {{name: j}}\n"
    );
    // --skip makes the unknown kinds an explicit choice; exit 0.
    let o = run_stdin(
        &[
            "validate",
            "-o",
            "json",
            "--skip",
            "RayClustr,ray.io/v1/RayJob",
            "-",
        ],
        &src,
    );
    let v = json(&o);
    assert_eq!(o.status.code(), Some(0), "{v}");
    let docs = v["files"][0]["documents"].as_array().unwrap();
    assert_eq!(docs[1]["status"], "skipped");
    assert_eq!(
        docs[1]["note"],
        "ray.io/v1 RayClustr skipped by --skip RayClustr"
    );
    assert_eq!(docs[3]["status"], "skipped");
    // --reject: Secrets are errors (exit 1), with the flag named.
    let o = run_stdin(
        &[
            "validate",
            "-o",
            "json",
            "--skip",
            "RayClustr,RayJob",
            "--reject",
            "v1/Secret",
            "-",
        ],
        &src,
    );
    let v = json(&o);
    assert_eq!(o.status.code(), Some(1), "{v}");
    let d = &v["files"][0]["documents"][2];
    assert_eq!(d["status"], "invalid");
    assert_eq!(d["findings"][0]["rule"], "REJECTED-KIND");
    assert_eq!(
        d["findings"][0]["message"],
        "kind Secret is rejected by --reject v1/Secret"
    );
    // --skip wins over --reject.
    let o = run_stdin(
        &[
            "validate",
            "--skip",
            "RayClustr,RayJob,Secret",
            "--reject",
            "Secret",
            "-",
        ],
        &src,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // A malformed pattern is a usage error.
    let o = run_stdin(&["validate", "--skip", "Ray Job", "-"], VALID);
    cli::assert_exit(&o, 2, "--skip: \"Ray Job\" is not a kind");
}

#[test]
fn exit_codes_are_in_help() {
    let o = bin().args(["validate", "--help"]).output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    for want in [
        "Exit status:",
        "0  every checked object is valid",
        "1  at least one finding is an error",
        "2  unreadable input",
        "--skip <KIND,...>",
        "--reject <KIND,...>",
    ] {
        assert!(t.contains(want), "{want:?} missing from:\n{t}");
    }
    let o = bin().arg("--help").output().unwrap();
    assert!(text(&o).contains("Exit status"), "{}", text(&o));
}

#[test]
fn gate_errors_say_which_flag_enables_them_and_name_the_object() {
    let src = VALID.replace(
        "spec:\n  headGroupSpec:",
        "spec:\n  networkPolicy: {}\n  headGroupSpec:",
    );
    let o = run_stdin(&["validate", "-"], &src);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("error[NP1]: RayCluster team-a/ok: spec.networkPolicy requires the RayClusterNetworkPolicy feature gate"),
        "{t}"
    );
    assert!(
        t.contains("= help: enable the gate: `--feature-gates RayClusterNetworkPolicy=true`"),
        "{t}"
    );
    // ... and the help is right: with the gate on, that finding is gone.
    let o = run_stdin(
        &[
            "validate",
            "--feature-gates",
            "RayClusterNetworkPolicy=true",
            "-",
        ],
        &src,
    );
    assert!(!text(&o).contains("NP1"), "{}", text(&o));
    let o = run_stdin(&["validate", "-o", "json", "-"], &src);
    let v = json(&o);
    assert_eq!(v["files"][0]["documents"][0]["namespace"], "team-a");
    assert_eq!(v["tool"]["name"], "raygate");
    assert_eq!(v["tool"]["version"], env!("CARGO_PKG_VERSION"));
}
