//! scripts/dockerfile-replay.sh fails on a broken Dockerfile (issue #12.2: the Dockerfile must not
//! silently break again). scripts/test.sh replays the real Dockerfile after `cargo test`; here
//! the same script runs on copies of it with one thing broken, each of which must fail and say
//! where. Both use the script's CI mode (`RAYGATE_REPLAY_PROFILE=dev`: the RUN steps without
//! `--release`, cargo's intermediates in this test build's own build directory), so the ones that
//! reach cargo find the registry dependencies warm and fail at the crate, not after a cold
//! release build.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn dockerfile() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile"))
        .expect("read Dockerfile")
}

/// The Dockerfile with `from` replaced by `to` (exactly once: a changed Dockerfile fails here).
fn broken(from: &str, to: &str) -> String {
    let d = dockerfile();
    assert_eq!(
        d.matches(from).count(),
        1,
        "the Dockerfile has {from:?} once"
    );
    d.replacen(from, to, 1)
}

/// This test build's cargo build directory: CARGO_BUILD_BUILD_DIR when cargo was given one (cargo
/// passes its environment on to the tests), else the target directory, the parent of the
/// `debug` directory that holds the raygate binary.
fn cargo_build_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_BUILD_BUILD_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_BIN_EXE_raygate"))
        .parent()
        .and_then(Path::parent)
        .expect("CARGO_BIN_EXE_raygate is <target>/<profile>/raygate")
        .to_path_buf()
}

fn replay(content: &str) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("Dockerfile");
    std::fs::write(&path, content).expect("write Dockerfile");
    Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/dockerfile-replay.sh"))
        .arg(&path)
        .env("RAYGATE_REPLAY_PROFILE", "dev")
        .env("RAYGATE_REPLAY_BUILD_DIR", cargo_build_dir())
        .output()
        .expect("run scripts/dockerfile-replay.sh")
}

/// Fails unless the replay fails, prints no binary and says each of `says`; returns its stderr.
fn assert_fails(what: &str, content: &str, says: &[&str]) -> String {
    let out = replay(content);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{what}: the replay must fail, it succeeded:\n{err}"
    );
    assert!(
        out.stdout.is_empty(),
        "{what}: no binary path on failure, got {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    for s in says {
        assert!(err.contains(s), "{what}: expected {s:?} in:\n{err}");
    }
    err.into_owned()
}

/// Inode, modification time and size: what a rebuild or a copy over the file changes.
fn identity(path: &Path) -> (u64, std::time::SystemTime, u64) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (m.ino(), m.modified().expect("mtime"), m.len())
}

#[test]
fn a_dockerfile_without_build_rs_fails_the_replay() {
    // The state the issue found: build.rs (GCS protos, rule docs, version) never copied.
    assert_fails(
        "no COPY of build.rs",
        &broken(
            "COPY Cargo.toml Cargo.lock build.rs ./",
            "COPY Cargo.toml Cargo.lock ./",
        ),
        &["RUN failed"],
    );
}

#[test]
fn a_dockerfile_without_the_embedded_schemas_fails_the_replay() {
    // src/schema.rs embeds schemas/*.json: the crate layer cannot compile without them.
    // The dependency layer (a stub raygate) builds and is uplifted, the crate layer fails; the
    // replay shares this build's cargo build directory, but its stub must not land on the raygate
    // binary the tests run.
    let exe = Path::new(env!("CARGO_BIN_EXE_raygate"));
    let before = identity(exe);
    let err = assert_fails(
        "no COPY of schemas",
        &broken("COPY schemas ./schemas\n", ""),
        &["RUN failed", "schemas", "dev profile"],
    );
    assert_eq!(
        err.matches(") done in ").count(),
        1,
        "the dependency layer's RUN finishes, the crate layer's fails:\n{err}"
    );
    assert_eq!(
        identity(exe),
        before,
        "the replay replaced {}",
        exe.display()
    );
}

#[test]
fn structural_errors_fail_before_any_build() {
    // The build stage's own FROM (the runtime stage's is checked the same way, after the build).
    let d = dockerfile();
    let unpinned = d.replacen(
        "FROM rust:1.95-bookworm@sha256:",
        "FROM rust:1.95-bookworm #",
        1,
    );
    assert_ne!(unpinned, d, "the build stage's FROM is pinned");
    assert_fails("unpinned FROM", &unpinned, &["is not pinned by digest"]);
    // The dev replay maps only `--release` and `target/release/`: any other way of naming the
    // release profile would silently build something else.
    let profile = d.replacen("cargo build --release", "cargo build --profile release", 1);
    assert_ne!(profile, d, "the Dockerfile runs cargo build --release");
    assert_fails(
        "--profile release",
        &profile,
        &["RUN names the release profile other than as `--release`"],
    );
    assert_fails(
        "COPY of a missing path",
        &broken("COPY proto ./proto", "COPY protos ./proto"),
        &["COPY source protos does not exist"],
    );
    assert_fails(
        "ADD is not replayed",
        &broken("COPY proto ./proto", "ADD proto ./proto"),
        &["ADD in the build stage is not replayed"],
    );
}
