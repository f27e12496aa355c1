//! The pure core takes data and returns data: no runtime, network, filesystem, clock, process,
//! environment or printing. This test reads the source files of the pure modules (including
//! comments) and fails on any forbidden identifier.

#[path = "support/rust_files.rs"]
mod rust_files;

use rust_files::rust_files;
use std::path::{Path, PathBuf};

const FORBIDDEN: &[&str] = &[
    "tokio",
    "std::fs",
    "std::net",
    "SystemTime",
    "Instant::now",
    "reqwest",
    "hyper",
    "axum",
    "kube::Client",
    "println!",
    "eprintln!",
    "print!",
    "dbg!",
    "std::process",
    "std::env",
];

fn pure_files() -> Vec<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for f in [
        "model.rs",
        "quantity.rs",
        "defaulting.rs",
        "conversion.rs",
        "violation.rs",
        "kinds.rs",
        "json.rs",
        "autoscale/types.rs",
        "autoscale/timeline.rs",
    ] {
        let p = src.join(f);
        if p.is_file() {
            files.push(p);
        }
    }
    for d in ["model", "rules", "conversion", "policy"] {
        rust_files(&src.join(d), &mut files);
    }
    // autoscale/engine.rs, autoscale/engine_*.rs and autoscale/engine/**
    if let Ok(entries) = std::fs::read_dir(src.join("autoscale")) {
        for e in entries.flatten() {
            let p = e.path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with("engine") {
                if p.is_dir() {
                    rust_files(&p, &mut files);
                } else if name.ends_with(".rs") {
                    files.push(p);
                }
            }
        }
    }
    files.sort();
    files
}

#[test]
fn pure_modules_do_no_io() {
    let files = pure_files();
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    for must in [
        "quantity.rs",
        "defaulting.rs",
        "violation.rs",
        "rules/mod.rs",
        "model/v1.rs",
        "autoscale/timeline.rs",
    ] {
        assert!(
            names.iter().any(|n| n.ends_with(must)),
            "{must} not scanned: {names:?}"
        );
    }
    let mut problems = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            for word in FORBIDDEN {
                if line.contains(word) {
                    problems.push(format!(
                        "{}:{}: `{word}` in a pure module: {}",
                        f.display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_scanner_catches_forbidden_words() {
    // Comments count too: the pure modules must not even mention them.
    let text = "let x = 1; // see tokio docs\nuse std::fs::read;\n";
    let hits: Vec<_> = FORBIDDEN.iter().filter(|w| text.contains(*w)).collect();
    assert_eq!(hits, vec![&"tokio", &"std::fs"]);
}
