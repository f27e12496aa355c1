//! Issue #17 (4): the CI integrations, run the way their hosts run them (as close as this
//! machine allows): `.pre-commit-hooks.yaml` through the real pre-commit (PyPI, in the venv of
//! scripts/ci-venv.sh: RAYGATE_CI_VENV) with `pre-commit try-repo` on a temporary git repository,
//! and `action.yml`'s shell steps executed with bash under the environment a GitHub runner sets
//! (GITHUB_OUTPUT, GITHUB_PATH, RUNNER_TEMP, `${{ … }}` expressions substituted as the runner
//! does). The Action's `cargo install` step is not run (minutes of build); raygate comes from
//! PATH, which the step would set up. Fails, never skips, without the venv.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/template.rs"]
mod template;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn raygate() -> PathBuf {
    PathBuf::from(
        std::env::var("RAYGATE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_raygate").to_string()),
    )
}

/// PATH with raygate's directory first.
fn path_with_raygate() -> String {
    let dir = raygate().parent().unwrap().to_path_buf();
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const GOOD: &str = cli::MINIMAL_RAYCLUSTER;

fn bad() -> String {
    format!(
        "{GOOD}  workerGroupSpecs:\n  - groupName: w\n    minReplicas: 3\n    maxReplicas: 1\n    template:\n      spec:\n        containers:\n        - name: w\n          image: rayproject/ray:2.52.0\n"
    )
}

fn git(dir: &Path, args: &[&str]) {
    let o = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .output()
        .expect("git");
    assert!(o.status.success(), "git {args:?}: {}", text(&o));
}

fn ci_venv() -> PathBuf {
    PathBuf::from(std::env::var("RAYGATE_CI_VENV").expect(
        "RAYGATE_CI_VENV is not set: run `bash scripts/ci-venv.sh` (scripts/test.sh does) and export its output",
    ))
}

#[test]
fn pre_commit_hook_runs_through_pre_commit() {
    let venv = ci_venv();
    let pre_commit = Path::new(&venv).join("bin/pre-commit");
    let hooks: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(Path::new(ROOT).join(".pre-commit-hooks.yaml")).unwrap(),
    )
    .unwrap();
    let ids: Vec<&str> = hooks
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["raygate-validate", "raygate-validate-system"]);

    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    git(work.path(), &["init", "-q"]);
    std::fs::create_dir_all(work.path().join("k8s")).unwrap();
    std::fs::write(work.path().join("k8s/good.yaml"), GOOD).unwrap();
    std::fs::write(work.path().join("README.txt"), "not yaml\n").unwrap();
    let run = |files: &[&str]| {
        let mut c = Command::new(&pre_commit);
        c.current_dir(work.path())
            .env("PRE_COMMIT_HOME", home.path())
            .env("PATH", path_with_raygate())
            .args(["try-repo", ROOT, "raygate-validate-system", "--files"])
            .args(files);
        c.output().expect("run pre-commit")
    };
    let o = run(&["k8s/good.yaml", "README.txt"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("raygate validate (raygate on PATH)") && t.contains("Passed"),
        "{t}"
    );

    std::fs::write(work.path().join("k8s/bad.yaml"), bad()).unwrap();
    let o = run(&["k8s/good.yaml", "k8s/bad.yaml"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("Failed"), "{t}");
    assert!(
        t.contains("error[W5]") && t.contains("k8s/bad.yaml:15:5"),
        "{t}"
    );
}

/// `${{ inputs.x }}` / `${{ github.x }}` substituted from `vars`, as the runner does before the
/// shell sees the script.
fn substitute(s: &str, vars: &[(&str, String)]) -> String {
    template::expand(s, "${{", |expr| {
        vars.iter()
            .find(|(k, _)| *k == expr)
            .unwrap_or_else(|| panic!("unknown expression {expr:?} in action.yml"))
            .1
            .clone()
    })
}

#[test]
fn action_steps_run_as_a_runner_runs_them() {
    let action: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(Path::new(ROOT).join("action.yml")).unwrap(),
    )
    .unwrap();
    assert_eq!(action["runs"]["using"], "composite");
    let work = tempfile::tempdir().unwrap();
    let ws = work.path().join("workspace");
    std::fs::create_dir_all(ws.join("deploy")).unwrap();
    std::fs::write(ws.join("deploy/good.yaml"), GOOD).unwrap();
    std::fs::write(ws.join("deploy/bad.yaml"), bad()).unwrap();
    let runner_temp = work.path().join("runner-temp");
    std::fs::create_dir_all(&runner_temp).unwrap();
    let output = work.path().join("github_output");
    let github_path = work.path().join("github_path");

    let run_action = |paths: &str| -> (Vec<(String, Output)>, String) {
        std::fs::write(&output, "").unwrap();
        let vars = vec![
            ("inputs.paths", paths.to_string()),
            (
                "inputs.args",
                "--feature-gates RayClusterMTLS=true".to_string(),
            ),
            ("inputs.sarif-file", "raygate.sarif".to_string()),
            ("inputs.install", "false".to_string()),
            ("github.action_path", ROOT.to_string()),
            ("github.server_url", "https://github.example".to_string()),
            ("github.action_repository", "acme/raygate".to_string()),
            ("github.action_ref", "v1".to_string()),
            ("steps.sarif.outputs.sarif-file", String::new()),
            ("steps.sarif.outputs.exit-code", String::new()),
        ];
        let mut ran = Vec::new();
        for step in action["runs"]["steps"].as_array().unwrap() {
            let name = step["name"].as_str().unwrap().to_string();
            if let Some(cond) = step["if"].as_str() {
                // The only condition: the install step.
                assert_eq!(cond, "inputs.install == 'true'");
                continue;
            }
            assert_eq!(step["shell"], "bash", "{name}");
            let script = substitute(step["run"].as_str().unwrap(), &vars);
            let script_file = runner_temp.join("step.sh");
            std::fs::write(&script_file, &script).unwrap();
            let mut c = Command::new("bash");
            // GitHub's `shell: bash` is `bash --noprofile --norc -eo pipefail {0}`.
            c.args(["--noprofile", "--norc", "-eo", "pipefail"])
                .arg(&script_file)
                .current_dir(&ws)
                .env_clear()
                .env("PATH", path_with_raygate())
                .env("HOME", work.path())
                .env("CI", "true")
                .env("GITHUB_ACTIONS", "true")
                .env("GITHUB_WORKSPACE", &ws)
                .env("GITHUB_OUTPUT", &output)
                .env("GITHUB_PATH", &github_path)
                .env("RUNNER_TEMP", &runner_temp)
                .env("GITHUB_ACTION_PATH", ROOT);
            if let Some(env) = step["env"].as_object() {
                for (k, v) in env {
                    c.env(k, substitute(v.as_str().unwrap(), &vars));
                }
            }
            let o = c.output().unwrap();
            let failed = !o.status.success();
            ran.push((name, o));
            if failed {
                break;
            }
        }
        (ran, std::fs::read_to_string(&output).unwrap())
    };

    // An invalid RayCluster: the SARIF step records exit 1 and goes on, the annotation step
    // prints ::error and fails the job.
    let (ran, out) = run_action("deploy");
    assert_eq!(
        ran.len(),
        2,
        "{:?}",
        ran.iter().map(|r| &r.0).collect::<Vec<_>>()
    );
    assert!(ran[0].1.status.success(), "{}", text(&ran[0].1));
    assert!(
        out.contains("exit-code=1") && out.contains("sarif-file=raygate.sarif"),
        "{out}"
    );
    let sarif: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.join("raygate.sarif")).unwrap()).unwrap();
    let run = &sarif["runs"][0];
    assert_eq!(
        run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "deploy/bad.yaml"
    );
    assert_eq!(
        run["tool"]["driver"]["rules"][0]["helpUri"],
        "https://github.example/acme/raygate/blob/v1/docs/rules/W5.md"
    );
    let annotate = &ran[1].1;
    assert_eq!(annotate.status.code(), Some(1), "{}", text(annotate));
    let t = String::from_utf8_lossy(&annotate.stdout);
    assert!(
        t.contains("::error file=deploy/bad.yaml,line=15,col=5,title=raygate W5::"),
        "{t}"
    );

    // Only valid files: both steps pass.
    let (ran, out) = run_action("deploy/good.yaml");
    assert!(ran.iter().all(|r| r.1.status.success()), "{out}");
    assert!(out.contains("exit-code=0"), "{out}");

    // A missing path: exit 2 stops at the SARIF step.
    let (ran, out) = run_action("nope");
    assert_eq!(ran.len(), 1);
    assert_eq!(ran[0].1.status.code(), Some(2), "{}", text(&ran[0].1));
    assert!(out.contains("exit-code=2"), "{out}");
}

/// docs/ci.md's GitLab recipe, run as a GitLab runner's bash shell runs `script:` (one script,
/// `set -eo pipefail`), except its `cargo install` line (raygate comes from PATH): the JUnit
/// artifact parses as XML (Python's xml.etree from the CI venv) with one testcase per RayCluster,
/// a `<failure>` naming the rule for the invalid one, and the job fails on it (exit 1) but not on
/// valid files.
#[test]
fn gitlab_junit_recipe_runs_as_a_runner_runs_it() {
    let doc = std::fs::read_to_string(Path::new(ROOT).join("docs/ci.md")).unwrap();
    let section = doc
        .split("## GitLab CI")
        .nth(1)
        .expect("docs/ci.md has a GitLab CI section");
    let yaml = section
        .split("```yaml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a yaml block");
    let job: serde_json::Value = serde_saphyr::from_str(yaml).unwrap();
    let job = &job["raygate"];
    let report = job["artifacts"]["reports"]["junit"].as_str().unwrap();
    assert_eq!(
        job["artifacts"]["when"], "always",
        "the report of a failed job is kept"
    );
    let script: Vec<&str> = job["script"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .filter(|l| !l.starts_with("cargo install "))
        .collect();
    assert!(script.iter().any(|l| l.contains("-o junit")), "{script:?}");
    let ws = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(ws.path().join("deploy")).unwrap();
    std::fs::write(ws.path().join("deploy/good.yaml"), GOOD).unwrap();
    let run = || {
        Command::new("bash")
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c"])
            .arg(script.join("\n"))
            .current_dir(ws.path())
            .env("PATH", path_with_raygate())
            .env("CI", "true")
            .env("GITLAB_CI", "true")
            .output()
            .unwrap()
    };
    // (name, classname, file, failure type) of every testcase
    let cases = || -> Vec<(String, String, String, String)> {
        let o = Command::new(ci_venv().join("bin/python"))
            .arg("-c")
            .arg(
                "import json, sys, xml.etree.ElementTree as ET\n\
                 r = ET.parse(sys.argv[1]).getroot()\n\
                 assert r.tag == 'testsuites', r.tag\n\
                 print(json.dumps([[c.get('name'), c.get('classname'), c.get('file'),\n\
                   (c.find('failure').get('type') if c.find('failure') is not None else '')]\n\
                   for c in r.iter('testcase')]))",
            )
            .arg(ws.path().join(report))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{report} is not JUnit XML: {}",
            text(&o)
        );
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let o = run();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        cases(),
        [(
            "RayCluster ok".to_string(),
            "deploy/good.yaml".to_string(),
            "deploy/good.yaml".to_string(),
            String::new()
        )]
    );
    std::fs::write(ws.path().join("deploy/bad.yaml"), bad()).unwrap();
    let o = run();
    assert_eq!(o.status.code(), Some(1), "the job fails: {}", text(&o));
    let got = cases();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got.iter().any(|c| c.2 == "deploy/bad.yaml" && c.3 == "W5"),
        "{got:?}"
    );
}
