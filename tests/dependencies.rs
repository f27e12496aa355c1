//! Issue #17 (3): no declared but unused dependency. Every `[dependencies]` entry of Cargo.toml is
//! named as a path (`name::`, `use name`, `name!`) by the crate's source or build script, or by
//! the code the build script generates; every `[dev-dependencies]` entry by the tests or benches.

#[path = "support/rust_files.rs"]
mod rust_files;

use rust_files::rust_files;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The names of one `[section]` of Cargo.toml (`name = …` lines up to the next section).
fn section(toml: &str, header: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in toml.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            inside = t == header;
            continue;
        }
        if !inside || t.is_empty() || t.starts_with('#') {
            continue;
        }
        if let Some((name, _)) = t.split_once('=') {
            out.push(name.trim().to_string());
        }
    }
    out
}

fn text_of(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect::<Vec<_>>()
        .join("\n")
}

/// True when `src` names crate `ident` as code does: `ident::`, `use ident`, `ident!` — not as
/// a word inside another path (`std::time::` is not the `time` crate) or a comment.
fn names_crate(src: &str, ident: &str) -> bool {
    src.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .any(|l| {
            l.match_indices(ident).any(|(i, _)| {
                // `::name::` is an absolute path to the crate, `x::name::` a module of `x`.
                let head = l[..i].strip_suffix("::").unwrap_or(&l[..i]);
                let before = head.chars().next_back();
                let after = &l[i + ident.len()..];
                let starts =
                    !matches!(before, Some(c) if c.is_alphanumeric() || c == '_' || c == ':');
                let used = after.starts_with("::")
                    || after.starts_with('!')
                    || (l[..i].trim_end().ends_with("use")
                        && !after.starts_with(|c: char| c.is_alphanumeric() || c == '_'));
                starts && used
            })
        })
}

fn unused(names: &[String], src: &str) -> Vec<String> {
    names
        .iter()
        .filter(|n| !names_crate(src, &n.replace('-', "_")))
        .cloned()
        .collect()
}

#[test]
fn every_dependency_is_used() {
    let toml = std::fs::read_to_string(Path::new(ROOT).join("Cargo.toml")).unwrap();
    let deps = section(&toml, "[dependencies]");
    let build_deps = section(&toml, "[build-dependencies]");
    let dev_deps = section(&toml, "[dev-dependencies]");
    assert!(deps.len() >= 30, "{deps:?}");
    assert!(deps.contains(&"serde-saphyr".to_string()), "{deps:?}");
    for gone in ["saphyr", "anyhow", "tower"] {
        assert!(
            !deps.contains(&gone.to_string()),
            "{gone} is declared again"
        );
    }

    let mut files = vec![Path::new(ROOT).join("build.rs")];
    rust_files(&Path::new(ROOT).join("src"), &mut files);
    let mut src = text_of(&files);
    // The gRPC code build.rs generates from proto/ (tonic_prost_build) is what names prost and
    // tonic_prost; it is `include!`d by src/gcs/mod.rs.
    for generated in ["ray.rpc.rs", "ray.rpc.autoscaler.rs"] {
        let p = Path::new(env!("OUT_DIR")).join(generated);
        src.push('\n');
        src.push_str(
            &std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        );
    }
    assert_eq!(unused(&deps, &src), Vec::<String>::new(), "[dependencies]");
    assert_eq!(
        unused(&build_deps, &text_of(&files[..1])),
        Vec::<String>::new(),
        "[build-dependencies]"
    );

    let mut files = Vec::new();
    rust_files(&Path::new(ROOT).join("tests"), &mut files);
    rust_files(&Path::new(ROOT).join("benches"), &mut files);
    assert_eq!(
        unused(&dev_deps, &text_of(&files)),
        Vec::<String>::new(),
        "[dev-dependencies]"
    );
}

/// The scanner itself: it finds uses and is not fooled by other paths or comments.
#[test]
fn names_crate_sees_paths_not_words() {
    assert!(names_crate("use bytes::Bytes;", "bytes"));
    assert!(names_crate("let x = memchr::memchr2(a, b, c);", "memchr"));
    assert!(names_crate("    let _ = json!({});\n", "json"));
    assert!(names_crate("use tempfile;", "tempfile"));
    assert!(names_crate(
        "pub key: ::prost::alloc::string::String,",
        "prost"
    ));
    assert!(!names_crate("use std::time::Duration;", "time"));
    assert!(!names_crate("tokio::time::sleep(d).await;", "time"));
    assert!(!names_crate("// tower::ServiceExt was used here", "tower"));
    assert!(!names_crate(
        "let towers = 1; tower_http::trace::TraceLayer",
        "tower"
    ));
    assert_eq!(
        section(
            "[a]\nx = 1\n[dependencies]\n# c\nfoo-bar = \"1\"\nbaz = { version = \"2\" }\n\n[b]\ny = 2\n",
            "[dependencies]"
        ),
        vec!["foo-bar", "baz"]
    );
}
