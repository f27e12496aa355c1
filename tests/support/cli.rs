//! Running the built `raygate` binary from the CLI tests (tests/cli_*.rs).
//!
//! Include with `#[path = "support/cli.rs"] mod cli;`.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// The binary under test; `RAYGATE_BIN` overrides it (useful when several checkouts share one
/// `CARGO_TARGET_DIR`, where `target/debug/raygate` is whichever was built last).
pub fn bin() -> Command {
    Command::new(
        std::env::var("RAYGATE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_raygate").to_string()),
    )
}

pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run raygate")
}

/// Runs with `input` on stdin, written from a thread so a large input cannot deadlock on a full
/// stdout pipe.
pub fn run_stdin(args: &[&str], input: impl AsRef<[u8]>) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn raygate");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = input.as_ref().to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    let _ = writer.join();
    out
}

/// stdout then stderr, lossily decoded.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs `raygate args...` (plus `paths`), asserts it succeeded (stderr in the message) and
/// returns its stdout.
pub fn ok_with_paths(args: &[&str], paths: &[&std::path::Path]) -> String {
    let o = bin().args(args).args(paths).output().expect("run raygate");
    assert!(
        o.status.success(),
        "raygate {args:?} {paths:?}: {:?}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The head group of the test RayClusters: `spec.headGroupSpec` as YAML lines indented for
/// `spec:`, a string literal for `concat!`.
macro_rules! head_group_yaml {
    () => {
        "  headGroupSpec:
    rayStartParams: {}
    template:
      spec:
        containers:
        - name: ray-head
          image: rayproject/ray:2.52.0
"
    };
}
#[allow(unused_imports)] // not every test crate builds its own RayCluster from it
pub(crate) use head_group_yaml;

/// A minimal valid RayCluster `ok` (no namespace), as YAML.
pub const MINIMAL_RAYCLUSTER: &str = concat!(
    "apiVersion: ray.io/v1
kind: RayCluster
metadata:
  name: ok
spec:
",
    head_group_yaml!()
);

/// Asserts that `o` exited with `code` and printed `want` (stdout or stderr).
pub fn assert_exit(o: &Output, code: i32, want: &str) {
    let t = text(o);
    assert_eq!(o.status.code(), Some(code), "{t}");
    assert!(t.contains(want), "{want:?} not in:\n{t}");
}
