//! Issue #17 (1): the README's commands are run, so they cannot rot. Every `$ cmd` of a
//! ```console block is run from the repository root with raygate on PATH and its output must be
//! exactly the lines that follow; every `raygate …` line of a ```sh block must name a real
//! subcommand (`--help` succeeds), and the ones that need no cluster (validate, explain,
//! autoscale plan on a file in the repository, --help) are run: validate must find the files and
//! report (exit 0 or 1, never 2, `-o sarif` a SARIF 2.1.0 log), the others must succeed. Every
//! other command line (cargo, kubectl, helm, docker, the `raygate` commands that need a cluster)
//! must be listed in [`ELSEWHERE`] with the test that runs it, and that test must exist. The
//! README stays <= 200 lines and its links to files in the repository resolve.

use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn raygate() -> PathBuf {
    PathBuf::from(
        std::env::var("RAYGATE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_raygate").to_string()),
    )
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap()
}

/// (info string, body lines) of every fenced block.
fn blocks(md: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut cur: Option<(String, Vec<String>)> = None;
    for l in md.lines() {
        if let Some(info) = l.strip_prefix("```") {
            match cur.take() {
                Some(b) => out.push(b),
                None => cur = Some((info.trim().to_string(), Vec::new())),
            }
        } else if let Some(b) = cur.as_mut() {
            b.1.push(l.to_string());
        }
    }
    out
}

fn sh(cmd: &str) -> std::process::Output {
    let dir = raygate().parent().unwrap().to_path_buf();
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(ROOT)
        .env(
            "PATH",
            format!(
                "{}:{}",
                dir.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .unwrap()
}

/// README.md and every page of docs/ and docs/rules/, as (path relative to the root, text).
fn pages() -> Vec<(String, String)> {
    let mut out = vec![("README.md".to_string(), readme())];
    for dir in ["docs", "docs/rules"] {
        let mut names: Vec<_> = std::fs::read_dir(Path::new(ROOT).join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "md"))
            .collect();
        names.sort();
        for p in names {
            let rel = p.strip_prefix(ROOT).unwrap().display().to_string();
            out.push((rel, std::fs::read_to_string(&p).unwrap()));
        }
    }
    out
}

/// The README's and the docs' ```console blocks, so a page's example output cannot go stale.
#[test]
fn console_blocks_print_what_the_readme_shows() {
    let mut ran = 0;
    let mut in_readme = 0;
    for (page, text) in pages() {
        for (info, body) in blocks(&text) {
            if info != "console" {
                continue;
            }
            let mut i = 0;
            while i < body.len() {
                let cmd = body[i]
                    .strip_prefix("$ ")
                    .expect("console blocks start with `$ `");
                let mut expected = String::new();
                i += 1;
                while i < body.len() && !body[i].starts_with("$ ") {
                    expected.push_str(&body[i]);
                    expected.push('\n');
                    i += 1;
                }
                let o = sh(cmd);
                assert_eq!(
                    String::from_utf8_lossy(&o.stdout),
                    expected,
                    "{page}: command `{cmd}` printed something else (stderr: {})",
                    String::from_utf8_lossy(&o.stderr)
                );
                ran += 1;
                in_readme += usize::from(page == "README.md");
            }
        }
    }
    assert!(in_readme >= 1, "no console block in the README");
    assert!(
        ran > in_readme,
        "no console block in docs/ (docs/kinds.md has one)"
    );
}

/// README command lines this file does not run (they need a cluster, a control plane, a Ray
/// cluster or minutes of build), by prefix, with the `file::test` that runs them.
const ELSEWHERE: &[(&str, &str)] = &[
    // the webhook with an ephemeral certificate; spawn_serve runs `raygate serve --listen
    // --admin-listen` as a process in every webhook_* test
    (
        "cargo run --release -- serve",
        "tests/webhook_api.rs::ephemeral_certificate_when_none_is_present",
    ),
    ("bash scripts/test.sh", ".ci/run"),
    (
        "kubectl apply -k deploy/overlays/cert-manager",
        "tests/e2e_webhook.rs::the_whole_deploy_kustomization_passes_a_server_side_dry_run_apply",
    ),
    (
        "helm install raygate deploy/helm/raygate",
        "tests/e2e_helm.rs::self_managed_install_upgrade_uninstall_through_the_api_server",
    ),
    // the Action's install step; the same build as `cargo build --release --locked`
    ("cargo install --locked --path .", "action.yml"),
    ("docker build -t raygate .", "scripts/dockerfile-replay.sh"),
    (
        "kubectl apply -f ../shared/kuberay/samples/ray-cluster.mtls.yaml",
        "tests/e2e_webhook.rs::every_sample_is_admitted_or_refused_like_raygate_validate",
    ),
    (
        "raygate autoscale run",
        "tests/e2e_autoscale.rs::scales_up_creates_pods_then_drains_and_deletes_idle_ones",
    ),
    (
        "raygate autoscale status",
        "tests/e2e_autoscale.rs::status_prints_the_ray_status_layout_of_a_cluster",
    ),
];

/// The entry of [`ELSEWHERE`] for `cmd`, after checking the test (or file) it names exists.
fn covered_elsewhere(cmd: &str) -> Option<&'static str> {
    let (_, by) = ELSEWHERE.iter().find(|(p, _)| cmd.starts_with(p))?;
    let (file, test) = by.split_once("::").unwrap_or((by, ""));
    let text = std::fs::read_to_string(Path::new(ROOT).join(file))
        .unwrap_or_else(|e| panic!("README `{cmd}` is covered by {by}: {file}: {e}"));
    assert!(
        test.is_empty() || text.contains(&format!("fn {test}(")),
        "README `{cmd}` is covered by {by}, but {file} has no fn {test}"
    );
    Some(by)
}

#[test]
fn sh_blocks_name_real_commands_and_the_cheap_ones_run() {
    let md = readme();
    let (mut checked, mut ran, mut elsewhere) = (0, 0, 0);
    for (info, body) in blocks(&md) {
        if info != "sh" {
            continue;
        }
        for line in body {
            let cmd = line.split(" #").next().unwrap().trim();
            let cmd = cmd.split(" >").next().unwrap().trim();
            if cmd.is_empty() || cmd.starts_with('#') {
                continue;
            }
            if covered_elsewhere(cmd).is_some() {
                elsewhere += 1;
                continue;
            }
            let Some(rest) = cmd.strip_prefix("raygate ") else {
                panic!("README command `{cmd}` is neither run here nor listed in ELSEWHERE");
            };
            let words: Vec<&str> = rest.split_whitespace().collect();
            // `raygate autoscale plan …`: subcommand path is the leading lower-case words.
            let sub: Vec<&str> = words
                .iter()
                .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase()))
                .take(2)
                .copied()
                .collect();
            let o = sh(&format!("raygate {} --help", sub.join(" ")));
            assert!(
                o.status.success(),
                "README: `{cmd}`: `raygate {} --help` fails",
                sub.join(" ")
            );
            if sub.first() == Some(&"validate") {
                // findings are fine (exit 1); unreadable input or a usage error (2) is not
                let o = sh(&format!("raygate {rest}"));
                let out = String::from_utf8_lossy(&o.stdout);
                assert!(
                    matches!(o.status.code(), Some(0 | 1)),
                    "README: `{cmd}` exits {:?}: {}{out}",
                    o.status.code(),
                    String::from_utf8_lossy(&o.stderr)
                );
                if words.windows(2).any(|w| w == ["-o", "sarif"]) {
                    let v: serde_json::Value = serde_json::from_str(&out)
                        .unwrap_or_else(|e| panic!("README: `{cmd}`: not JSON: {e}"));
                    assert_eq!(v["version"], "2.1.0", "README: `{cmd}`");
                    assert!(!v["runs"][0]["results"].as_array().unwrap().is_empty());
                } else {
                    assert!(out.contains(" RayCluster(s): "), "README: `{cmd}`: {out}");
                }
                ran += 1;
                checked += 1;
                continue;
            }
            let cheap = matches!(sub.first(), Some(&"explain"))
                || (sub == ["autoscale", "plan"])
                || words.contains(&"--help");
            if cheap {
                ran += 1;
                let o = sh(&format!("raygate {rest}"));
                assert!(
                    o.status.success(),
                    "README: `{cmd}` fails: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} raygate commands found");
    assert!(ran >= 5, "only {ran} README commands run");
    assert_eq!(
        elsewhere,
        ELSEWHERE.len() + 1,
        "every ELSEWHERE entry names a README command (kubectl apply -k appears twice)"
    );
    // The top of the README names the two commands: they are the first code block's first lines.
    let (_, first) = blocks(&md).into_iter().next().expect("a code block");
    assert!(
        first[0].starts_with("cargo run --release -- serve"),
        "{first:?}"
    );
    assert!(first[1].starts_with("bash scripts/test.sh"), "{first:?}");
}

#[test]
fn readme_is_short_and_its_links_resolve() {
    let md = readme();
    let n = md.lines().count();
    assert!(
        n <= 200,
        "README.md has {n} lines (issue #17: <= ~200; put detail in docs/)"
    );
    let mut links = 0;
    for part in md.split("](").skip(1) {
        let target = part.split(')').next().unwrap();
        if target.starts_with("http") || target.starts_with('#') {
            continue;
        }
        let path = target.split('#').next().unwrap();
        assert!(
            Path::new(ROOT).join(path).exists(),
            "README links to {target}, which does not exist"
        );
        links += 1;
    }
    assert!(links >= 10, "{links}");
    // What moved out of the README (issue #17 (1)) has its page, and the README links it.
    for page in [
        "docs/rules.md",
        "docs/autoscaler.md",
        "docs/webhook.md",
        "docs/benchmarks.md",
        "docs/testing.md",
        "docs/kuberay-comparison.md",
    ] {
        assert!(
            md.contains(&format!("]({page})")),
            "README does not link {page}"
        );
    }
    // docs/ci.md (written with the README) links correctly too. The pages moved out of the
    // README keep their links as they were (some point at docs other helpers are adding).
    for p in [Path::new(ROOT).join("docs/ci.md")] {
        let text = std::fs::read_to_string(&p).unwrap();
        for part in text.split("](").skip(1) {
            let target = part.split(')').next().unwrap();
            if target.starts_with("http") || target.starts_with('#') || target.contains(' ') {
                continue;
            }
            let path = target.split('#').next().unwrap();
            assert!(
                p.parent().unwrap().join(path).exists(),
                "{} links to {target}, which does not exist",
                p.display()
            );
        }
    }
}

/// What the README says about the binary and the licence: `raygate --version` prints the commit
/// and the KubeRay and Ray versions the first paragraph names; LICENSE is the Apache License 2.0
/// that Cargo.toml and the README's last line declare.
#[test]
fn version_and_license_are_what_the_readme_says() {
    let md = readme();
    let o = sh("raygate --version");
    assert!(o.status.success());
    let v = String::from_utf8(o.stdout).unwrap();
    let rest = v
        .trim()
        .strip_prefix(&format!("raygate {} (commit ", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|| panic!("{v}"));
    let (commit, targets) = rest.split_once("; ").unwrap_or_else(|| panic!("{v}"));
    assert!(
        commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit()),
        "commit {commit:?} in {v}"
    );
    let (kuberay, ray) = targets
        .trim_end_matches(')')
        .split_once(", ")
        .unwrap_or_else(|| panic!("{v}"));
    assert!(
        kuberay.starts_with("KubeRay v") && ray.starts_with("Ray "),
        "{v}"
    );
    assert!(
        md.contains(&format!("It targets {kuberay}")),
        "README vs `{v}`"
    );
    assert!(
        md.contains(&format!("and {ray} (autoscaler v2")),
        "README vs `{v}`"
    );

    let license = std::fs::read_to_string(Path::new(ROOT).join("LICENSE")).unwrap();
    let head: Vec<&str> = license
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(2)
        .collect();
    assert_eq!(head, ["Apache License", "Version 2.0, January 2004"]);
    assert!(license.contains("TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION"));
    let cargo = std::fs::read_to_string(Path::new(ROOT).join("Cargo.toml")).unwrap();
    assert!(
        cargo
            .lines()
            .any(|l| l.replace(' ', "") == "license=\"Apache-2.0\"")
    );
    assert!(md.contains("License: Apache-2.0 (`LICENSE`)"));
}

/// Issue #17 (1): the docs hold no session histories (what was measured or changed in which
/// numbered working session); a figure carries its date, load and command instead.
#[test]
fn docs_tell_no_session_histories() {
    let pages = pages();
    assert!(pages.len() > 20, "{:?}", pages.iter().map(|p| &p.0));
    let mut hits = Vec::new();
    for (p, text) in &pages {
        for (n, line) in text.lines().enumerate() {
            // "session 3", "sessions 1–2", "session 6's": a numbered working session
            let l = line.to_ascii_lowercase();
            let numbered = l.match_indices("session").any(|(i, w)| {
                let rest = l[i + w.len()..].trim_start_matches('s').trim_start();
                rest.starts_with(|c: char| c.is_ascii_digit())
            });
            if numbered {
                hits.push(format!("{p}:{}: {line}", n + 1));
            }
        }
    }
    assert!(hits.is_empty(), "{}", hits.join("\n"));
}
