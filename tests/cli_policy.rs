//! `raygate policy export`: the CLI front end, and the committed overlay
//! `deploy/overlays/policy` is exactly what the command generates (no drift).

#[path = "support/cli.rs"]
mod cli;

use std::path::Path;

const OVERLAY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/overlays/policy");

/// The command that generates the committed overlay (also in docs/policy.md).
const REGENERATE: &[&str] = &["policy", "export", "--output-dir"];

#[test]
fn committed_overlay_is_what_the_command_generates() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("policy");
    let mut args = REGENERATE.to_vec();
    let o = out.to_string_lossy().to_string();
    args.push(&o);
    let r = cli::run(&args);
    assert!(r.status.success(), "{}", cli::text(&r));
    for f in ["kustomization.yaml", "policies.yaml"] {
        let want = std::fs::read_to_string(out.join(f)).unwrap();
        let have = std::fs::read_to_string(Path::new(OVERLAY).join(f)).unwrap_or_default();
        assert!(
            want == have,
            "deploy/overlays/policy/{f} is stale: run `cargo run -- policy export --output-dir deploy/overlays/policy`"
        );
    }
    // Same bytes on stdout.
    let r = cli::run(&["policy", "export"]);
    assert!(r.status.success());
    assert_eq!(
        String::from_utf8(r.stdout).unwrap(),
        std::fs::read_to_string(out.join("policies.yaml")).unwrap()
    );
}

#[test]
fn options_shape_the_output() {
    let r = cli::run(&[
        "policy",
        "export",
        "--mutating",
        "--validation-actions",
        "Warn,Audit",
        "--namespace-selector",
        "team=ml",
        "--name-prefix",
        "acme-",
        "--feature-gates",
        "RayClusterMTLS=true",
    ]);
    assert!(r.status.success(), "{}", cli::text(&r));
    let y = String::from_utf8(r.stdout).unwrap();
    for want in [
        "name: acme-raycluster\n",
        "name: acme-raycluster-defaults\n",
        "kind: MutatingAdmissionPolicy\n",
        "- Warn\n",
        "- Audit\n",
        "team: ml\n",
        "RayClusterMTLS=true",
        "cannot set",
    ] {
        assert!(y.contains(want), "{want:?} missing in\n{y}");
    }
    assert!(!y.contains("spec.tlsOptions requires the RayClusterMTLS feature gate"));
}

#[test]
fn explain_lists_the_rules_not_exported_with_a_reason() {
    let r = cli::run(&["policy", "export", "--explain"]);
    assert!(r.status.success(), "{}", cli::text(&r));
    let t = cli::text(&r);
    assert!(
        t.contains("exported to ValidatingAdmissionPolicy raygate-raycluster"),
        "{t}"
    );
    assert!(t.contains("ST1 "), "{t}");
    assert!(t.contains("RayClusterMTLS=false"), "{t}");
    assert!(!t.lines().any(|l| l.trim_start().starts_with("W5 ")), "{t}");
    for kind in ["rayjob", "rayservice", "raycronjob"] {
        assert!(
            t.contains(&format!(
                "exported to ValidatingAdmissionPolicy raygate-{kind};"
            )),
            "{t}"
        );
    }
    assert!(t.contains("J13 "), "{t}");
    assert!(t.contains("limits:\n  WH3"), "{t}");
}

#[test]
fn bad_flags_exit_2_and_name_the_flag() {
    for (args, want) in [
        (
            vec!["--validation-actions", "Deny,Warn"],
            "--validation-actions",
        ),
        (vec!["--feature-gates", "Nope=true"], "--feature-gates"),
        (
            vec!["--namespace-selector", "a in b"],
            "--namespace-selector",
        ),
        (vec!["--name-prefix", "Bad_"], "--name-prefix"),
    ] {
        let mut a = vec!["policy", "export"];
        a.extend(args);
        let r = cli::run(&a);
        assert_eq!(r.status.code(), Some(2), "{a:?}: {}", cli::text(&r));
        assert!(cli::text(&r).contains(want), "{a:?}: {}", cli::text(&r));
    }
}

#[test]
fn docs_table_matches_the_exporter() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/policy.md"))
        .expect("docs/policy.md");
    for table in [
        raygate::policy::markdown_table(),
        raygate::policy::markdown_table_kinds(),
    ] {
        assert!(
            doc.contains(&table),
            "docs/policy.md's rule table is stale; it should contain:\n{table}"
        );
    }
}
