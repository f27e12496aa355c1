//! Issue #17 (1): the README's commands are run, so they cannot rot. Every `$ cmd` of a
//! ```console block is run from the repository root with raygate on PATH and its output must be
//! exactly the lines that follow; every `raygate …` line of a ```sh block must name a real
//! subcommand (`--help` succeeds), and the cheap ones (explain, autoscale plan on a file in the
//! repository, --help) are run and must succeed. The README stays <= 200 lines and its links to
//! files in the repository resolve.

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

#[test]
fn console_blocks_print_what_the_readme_shows() {
    let mut ran = 0;
    for (info, body) in blocks(&readme()) {
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
                "README command `{cmd}` printed something else (stderr: {})",
                String::from_utf8_lossy(&o.stderr)
            );
            ran += 1;
        }
    }
    assert!(ran >= 1, "no console block in the README");
}

#[test]
fn sh_blocks_name_real_commands_and_the_cheap_ones_run() {
    let md = readme();
    let mut checked = 0;
    for (info, body) in blocks(&md) {
        if info != "sh" {
            continue;
        }
        for line in body {
            let cmd = line.split(" #").next().unwrap().trim();
            let cmd = cmd.split(" >").next().unwrap().trim();
            let Some(rest) = cmd.strip_prefix("raygate ") else {
                continue;
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
            let cheap = matches!(sub.first(), Some(&"explain"))
                || (sub == ["autoscale", "plan"])
                || words.contains(&"--help");
            if cheap {
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
    assert!(checked >= 6, "only {checked} raygate commands found");
    // The top of the README names the two commands.
    assert!(md.contains("cargo run --release -- serve"));
    assert!(md.contains("bash scripts/test.sh"));
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
