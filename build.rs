//! Compiles `proto/*.proto` (raygate's minimal Ray GCS messages) into Rust with protox, a
//! pure-Rust protobuf compiler, so building raygate needs no `protoc`. Also embeds
//! `docs/rules/*.md` (what `raygate explain RULE` prints) and the git commit (`--version`).
use std::fmt::Write as _;

fn rule_docs() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=docs/rules");
    let dir = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR")?).join("docs/rules");
    let mut docs: Vec<(String, std::path::PathBuf)> = Vec::new();
    for e in std::fs::read_dir(&dir)? {
        let p = e?.path();
        if p.extension().and_then(|x| x.to_str()) == Some("md") {
            let id = p.file_stem().and_then(|s| s.to_str()).ok_or("bad name")?;
            println!("cargo:rerun-if-changed={}", p.display());
            docs.push((id.to_string(), p));
        }
    }
    docs.sort();
    let mut out = String::from(
        "/// `(rule id, docs/rules/<id>.md)`, sorted by id.\npub const RULE_DOCS: &[(&str, &str)] = &[\n",
    );
    for (id, p) in docs {
        writeln!(
            out,
            "    ({id:?}, include_str!({:?})),",
            p.display().to_string()
        )?;
    }
    out.push_str("];\n");
    let dest = std::path::Path::new(&std::env::var("OUT_DIR")?).join("rule_docs.rs");
    std::fs::write(dest, out)?;
    Ok(())
}

/// `RAYGATE_GIT_COMMIT`: the short commit of HEAD, or `unknown` outside a git checkout.
fn git_commit() {
    println!("cargo:rerun-if-env-changed=RAYGATE_GIT_COMMIT");
    let from_env = std::env::var("RAYGATE_GIT_COMMIT")
        .ok()
        .filter(|s| !s.is_empty());
    let commit = from_env.unwrap_or_else(|| {
        let git = |args: &[&str]| {
            std::process::Command::new("git")
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        };
        // Rebuild when HEAD moves (the files may not exist, e.g. in a tarball).
        if let Some(h) = git(&["rev-parse", "--git-path", "HEAD"]) {
            println!("cargo:rerun-if-changed={h}");
        }
        if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"])
            && let Some(p) = git(&["rev-parse", "--git-path", &r])
        {
            println!("cargo:rerun-if-changed={p}");
        }
        git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_string())
    });
    println!("cargo:rustc-env=RAYGATE_GIT_COMMIT={commit}");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    rule_docs()?;
    git_commit();
    let files = ["proto/ray_autoscaler.proto"];
    for f in ["proto/ray_autoscaler.proto", "proto/ray_common.proto"] {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
