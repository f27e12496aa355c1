//! Issue #17 (4): `raygate completions SHELL` and `raygate man`. The bash script is sourced in a
//! real bash and its completion function is called the way readline calls it; the man page is
//! rendered by man(1) (groff) and must show every subcommand.

#[path = "support/cli.rs"]
mod cli;

use std::process::Command;

/// Subcommands listed under `Commands:` in `raygate [SUB] --help` (without `help`).
fn subcommands(path: &[&str]) -> Vec<String> {
    let mut args: Vec<&str> = path.to_vec();
    args.push("--help");
    let o = cli::run(&args);
    assert!(o.status.success(), "{}", cli::text(&o));
    let help = String::from_utf8(o.stdout).unwrap();
    let mut out = Vec::new();
    let mut inside = false;
    for l in help.lines() {
        if l.starts_with("Commands:") {
            inside = true;
            continue;
        }
        if inside {
            if !l.starts_with("  ") {
                break;
            }
            let name = l.split_whitespace().next().unwrap().to_string();
            if name != "help" {
                out.push(name);
            }
        }
    }
    out
}

fn completions(shell: &str) -> String {
    let o = cli::run(&["completions", shell]);
    assert!(o.status.success(), "{}", cli::text(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// What the bash completion function offers for the command line `words` (the last word is the
/// one being completed), run in a real bash with the generated script sourced.
fn bash_complete(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let line = words.join(" ");
    let prog = format!(
        "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={}\nCOMP_LINE='{line}'\nCOMP_POINT={}\n_raygate raygate '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        quoted.join(" "),
        words.len() - 1,
        line.len(),
        words[words.len() - 1],
        words[words.len().saturating_sub(2)],
    );
    let o = Command::new("bash")
        .arg("--norc")
        .arg("-c")
        .arg(prog)
        .output()
        .expect("bash");
    assert!(
        o.status.success(),
        "bash completion failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completion_offers_every_subcommand_and_their_flags() {
    let top = subcommands(&[]);
    for expected in [
        "validate",
        "serve",
        "autoscale",
        "explain",
        "completions",
        "man",
    ] {
        assert!(top.contains(&expected.to_string()), "{top:?}");
    }
    let script = completions("bash");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raygate.bash");
    std::fs::write(&path, &script).unwrap();
    let syntax = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );

    // `raygate <TAB>`: every subcommand
    let offered = bash_complete(&path, &["raygate", ""]);
    for s in &top {
        assert!(offered.contains(s), "{s} not offered: {offered:?}");
    }
    // `raygate va<TAB>`: only validate
    assert_eq!(bash_complete(&path, &["raygate", "va"]), ["validate"]);
    // nested: `raygate autoscale <TAB>` offers plan, local, status, run
    let nested = subcommands(&["autoscale"]);
    assert!(nested.len() >= 4, "{nested:?}");
    let offered = bash_complete(&path, &["raygate", "autoscale", ""]);
    for s in &nested {
        assert!(
            offered.contains(s),
            "autoscale {s} not offered: {offered:?}"
        );
    }
    // flags of a subcommand: `raygate validate --sk<TAB>` -> --skip
    assert_eq!(
        bash_complete(&path, &["raygate", "validate", "--sk"]),
        ["--skip"]
    );
    // the value enum of `completions`
    let shells = bash_complete(&path, &["raygate", "completions", ""]);
    for sh in ["bash", "zsh", "fish"] {
        assert!(shells.contains(&sh.to_string()), "{shells:?}");
    }
}

#[test]
fn every_shell_script_names_every_subcommand() {
    let top = subcommands(&[]);
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let s = completions(shell);
        for sub in &top {
            assert!(s.contains(sub.as_str()), "{shell}: {sub} missing");
        }
        let output = if shell == "fish" {
            "-l output"
        } else {
            "--output"
        };
        assert!(s.contains(output), "{shell}: validate's --output missing");
    }
    let o = cli::run(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2), "{}", cli::text(&o));
    assert!(
        cli::text(&o).contains("invalid value 'tcsh'"),
        "{}",
        cli::text(&o)
    );
}

/// man(1) renders a page to plain text (groff through man -l), or fails.
fn render_man(page: &std::path::Path) -> String {
    let o = Command::new("man")
        .arg("-l")
        .arg(page)
        .env("MANWIDTH", "100")
        .env("MAN_KEEP_FORMATTING", "0")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .output()
        .expect("man(1) is needed to render the page (apt-get install man-db groff-base)");
    assert!(
        o.status.success(),
        "man -l: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.stderr.is_empty(),
        "man -l warned: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // strip overstrike (bold/underline) if any
    let raw = String::from_utf8_lossy(&o.stdout).to_string();
    let mut out = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if chars.peek() == Some(&'\u{8}') {
            chars.next();
            continue;
        }
        out.push(c);
    }
    out
}

#[test]
fn man_page_renders_with_every_subcommand() {
    let o = cli::run(&["man"]);
    assert!(o.status.success(), "{}", cli::text(&o));
    let roff = String::from_utf8(o.stdout).unwrap();
    assert!(
        roff.starts_with(".ie") || roff.contains(".TH raygate 1"),
        "{roff}"
    );
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("raygate.1");
    std::fs::write(&page, &roff).unwrap();
    let text = render_man(&page);
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "SUBCOMMANDS",
        "VERSION",
    ] {
        assert!(
            text.lines().any(|l| l.trim_end() == section),
            "section {section} missing:\n{text}"
        );
    }
    let name = text
        .lines()
        .skip_while(|l| l.trim_end() != "NAME")
        .nth(1)
        .unwrap_or("");
    assert!(
        name.trim_start().starts_with("raygate") && name.contains(" - "),
        "NAME: {name:?}"
    );
    for sub in subcommands(&[]) {
        assert!(
            text.contains(&format!("raygate-{sub}(1)")),
            "{sub} missing:\n{text}"
        );
    }
    // the exit codes of --help's after_help are in the page too
    assert!(text.contains("Exit status"), "{text}");
    let version = String::from_utf8(cli::run(&["--version"]).stdout).unwrap();
    let v = version.trim().trim_start_matches("raygate ");
    assert!(text.contains(v), "version {v} missing:\n{text}");
}

#[test]
fn man_out_dir_writes_a_page_per_subcommand_that_renders() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    let o = cli::run(&["man", "--out-dir", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", cli::text(&o));
    let mut pages = vec!["raygate.1".to_string()];
    pages.extend(subcommands(&[]).iter().map(|s| format!("raygate-{s}.1")));
    pages.extend(
        subcommands(&["autoscale"])
            .iter()
            .map(|s| format!("raygate-autoscale-{s}.1")),
    );
    for p in &pages {
        let path = out.join(p);
        assert!(path.is_file(), "{p} not written");
        let text = render_man(&path);
        assert!(text.contains("SYNOPSIS"), "{p}:\n{text}");
    }
    // a flag's help text reaches its page
    let validate = render_man(&out.join("raygate-validate.1"));
    assert!(validate.contains("--skip"), "{validate}");

    // an unwritable directory is a clear error, exit 2
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let o = cli::run(&["man", "--out-dir", file.join("sub").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", cli::text(&o));
    assert!(
        cli::text(&o).contains("cannot write man pages into"),
        "{}",
        cli::text(&o)
    );
}
