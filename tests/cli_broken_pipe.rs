//! `raygate … | head`: every command that prints its result ends quietly when the reader of its
//! stdout goes away, as Unix tools do (killed by SIGPIPE, no panic, no "Broken pipe" message),
//! instead of Rust's default (SIGPIPE ignored, `println!` panics on EPIPE, exit 101).

#[path = "support/cli.rs"]
mod cli;

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const SIGPIPE: i32 = 13;

fn repo(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(rel)
        .display()
        .to_string()
}

/// Runs `cmd` with a stdout pipe whose read end is already closed: the first write fails.
fn with_closed_stdout(mut cmd: Command) -> Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    cmd.stdout(writer)
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .output()
        .expect("run raygate")
}

/// Runs `cmd`, reads `n` bytes of its stdout, then closes the pipe (`| head -c n`).
fn with_early_close(mut cmd: Command, n: usize) -> (Vec<u8>, Output) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn raygate");
    let mut head = vec![0u8; n];
    child
        .stdout
        .take()
        .expect("stdout")
        .read_exact(&mut head)
        .expect("the first bytes of the output");
    (head, child.wait_with_output().expect("wait"))
}

fn assert_quiet(what: &str, out: &Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe") && !err.contains("os error 32"),
        "{what}: no panic or EPIPE message expected on a closed stdout, got:\n{err}"
    );
    assert_eq!(
        out.status.signal(),
        Some(SIGPIPE),
        "{what}: ended by SIGPIPE like cat/grep (status {:?}), stderr:\n{err}",
        out.status
    );
}

fn raygate(args: &[&str]) -> Command {
    let mut c = cli::bin();
    c.args(args);
    c
}

#[test]
fn every_printing_command_ends_quietly_on_a_closed_pipe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("timeline.csv");
    std::fs::write(
        &csv,
        "t_seconds,group,demand,replicas,pods,launch,terminate\n0,small,1,0,0,1,0\n1,small,1,1,1,0,0\n",
    )
    .expect("write csv");
    let sample = "../shared/kuberay/samples/ray-cluster.autoscaler.yaml";
    let scenario = repo("tests/scenarios/t-k05-idle-scale-down.yaml");
    let csv = csv.display().to_string();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("validate -o json", vec!["validate", "-o", "json", sample]),
        ("default", vec!["default", sample]),
        ("policy export", vec!["policy", "export"]),
        ("autoscale plan", vec!["autoscale", "plan", &scenario]),
        (
            "autoscale plan -o json",
            vec!["autoscale", "plan", &scenario, "-o", "json"],
        ),
        (
            "autoscale timeline -o -",
            vec!["autoscale", "timeline", &csv, "-o", "-"],
        ),
        ("schema --print v1", vec!["schema", "--print", "v1"]),
        ("explain W5", vec!["explain", "W5"]),
        ("explain --list", vec!["explain", "--list"]),
        ("completions bash", vec!["completions", "bash"]),
        ("man", vec!["man"]),
    ];
    for (what, args) in cases {
        // The same command with a reader prints something: the closed pipe is what differs.
        let ok = cli::bin()
            .args(&args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run raygate");
        assert!(
            !ok.stdout.is_empty(),
            "{what} prints its result: {}",
            cli::text(&ok)
        );
        let mut cmd = raygate(&args);
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
        assert_quiet(what, &with_closed_stdout(cmd));
    }
    // `ray --version` through the KubeRay < 1.7 entry point (argv[0] `ray`).
    let mut ray = cli::bin();
    ray.arg0("ray").arg("--version");
    assert_quiet("ray --version", &with_closed_stdout(ray));
}

/// `raygate … | head -c 100`: the reader takes the start of a long output and leaves while the
/// command is still writing.
#[test]
fn a_reader_that_leaves_early_ends_the_command_quietly() {
    let sample = std::fs::read_to_string(repo(
        "../shared/kuberay/samples/ray-cluster.autoscaler.yaml",
    ))
    .expect("the KubeRay sample");
    let dir = tempfile::tempdir().expect("tempdir");
    let many = dir.path().join("many.yaml");
    let docs: Vec<&str> = std::iter::repeat_n(sample.as_str(), 300).collect();
    std::fs::write(&many, docs.join("\n---\n")).expect("write many.yaml");
    let many = many.display().to_string();
    for args in [
        &["schema", "--print", "v1"][..],
        &["default", &many][..],
        &["validate", "-o", "json", &many][..],
    ] {
        let full = cli::run(args);
        assert!(!full.stdout.is_empty(), "{args:?}: {}", cli::text(&full));
        // Longer than a pipe buffer (64 KiB), so the command is still writing when the reader
        // leaves; a shorter output could complete before, which would prove nothing.
        assert!(
            full.stdout.len() > 1 << 17,
            "{args:?} prints {} bytes: too short for this test",
            full.stdout.len()
        );
        let (head, out) = with_early_close(raygate(args), 100);
        assert_eq!(head, full.stdout[..100], "{args:?}: the same first bytes");
        assert_quiet(&format!("{args:?} | head -c 100"), &out);
    }
}
