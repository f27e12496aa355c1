//! `raygate validate` / `raygate default` on awkward inputs, run through the built binary:
//! malformed YAML, duplicate keys, non-UTF-8, empty files, stdin, a 100 MB file, a directory
//! of 20,000 files, and every output format.

#[path = "support/cli.rs"]
mod cli;
use cli::{bin, run, run_stdin, text};

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn no_panic(o: &Output) {
    let t = text(o);
    assert!(!t.contains("panicked"), "panic in output:\n{t}");
    assert!(o.status.code().is_some(), "killed by a signal:\n{t}");
}

const VALID: &str = cli::MINIMAL_RAYCLUSTER;

fn write(dir: &Path, name: &str, data: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, data).expect("write");
    p.display().to_string()
}

#[test]
fn malformed_yaml_names_the_location() {
    let d = tempfile::tempdir().unwrap();
    let f = write(
        d.path(),
        "bad.yaml",
        b"apiVersion: ray.io/v1\nkind: RayCluster\nspec:\n  a: [1, 2\n  b: 3\n",
    );
    let o = run(&["validate", &f]);
    no_panic(&o);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("error[YAML]"), "{t}");
    assert!(t.contains(&format!("{f}:")), "{t}");
}

#[test]
fn tab_indentation_is_a_clear_error() {
    let o = run_stdin(
        &["validate", "-"],
        b"apiVersion: ray.io/v1\nkind: RayCluster\nspec:\n\theadGroupSpec: {}\n",
    );
    no_panic(&o);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("<stdin>:4:"), "{}", text(&o));
}

#[test]
fn duplicate_keys_are_errors_with_location() {
    let src = format!("{VALID}  headGroupSpec: {{}}\n");
    let o = run_stdin(&["validate", "-"], src.as_bytes());
    no_panic(&o);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("duplicate key \"headGroupSpec\""), "{t}");
    assert!(t.contains("<stdin>:13:3"), "{t}");
}

#[test]
fn non_utf8_names_byte_offset_and_line() {
    let d = tempfile::tempdir().unwrap();
    let mut bytes = VALID.as_bytes().to_vec();
    bytes.extend_from_slice(b"  rayVersion: \"2.\xC3\x28\"\n");
    let f = write(d.path(), "latin.yaml", &bytes);
    let o = run(&["validate", &f]);
    no_panic(&o);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("invalid UTF-8"), "{t}");
    assert!(
        t.contains(&format!("byte offset {}", VALID.len() + 17)),
        "{t}"
    );
    assert!(t.contains(&format!("{f}:13:")), "{t}");
}

#[test]
fn empty_files_are_notes_and_comment_only_files_say_what_was_seen() {
    let d = tempfile::tempdir().unwrap();
    let e = write(d.path(), "empty.yaml", b"");
    let blank = write(d.path(), "blank.yaml", b"\n  \n\t\n");
    let o = run(&["validate", &e, &blank]);
    no_panic(&o);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("no YAML documents"), "{}", text(&o));
    // Issue #14 (3): a file that is not empty and yields no document is not a silent pass.
    let c = write(
        d.path(),
        "comments.yaml",
        b"# nothing here\n---\n# still nothing\n",
    );
    for args in [vec!["validate", &c], vec!["default", &c]] {
        let o = run(&args);
        no_panic(&o);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{t}");
        assert!(
            t.contains("no YAML document in 3 lines (35 bytes): 2 comment lines, 1 `---` line"),
            "{t}"
        );
        assert!(t.contains(&c), "{t}");
    }
}

/// Issue #14 (3): YAML 1.2 treats a lone CR as a line break. A CR-only file with a leading
/// comment was read as one comment ("no YAML documents", exit 0); the same file with LF fails
/// with W5. Both now fail the same way, at the same line and column.
#[test]
fn lone_cr_is_a_line_break() {
    let d = tempfile::tempdir().unwrap();
    let lf = format!(
        "# a comment first\n{VALID}  workerGroupSpecs:\n  - groupName: w\n    minReplicas: 5\n    maxReplicas: 1\n    template:\n      spec:\n        containers:\n        - name: w\n          image: rayproject/ray:2.52.0\n"
    );
    let want = run(&["validate", &write(d.path(), "lf.yaml", lf.as_bytes())]);
    assert_eq!(want.status.code(), Some(1), "{}", text(&want));
    let want_t = text(&want);
    let loc = want_t
        .lines()
        .find_map(|l| l.trim().strip_prefix("--> "))
        .and_then(|l| l.rsplit_once("lf.yaml:"))
        .map(|(_, loc)| loc.to_string())
        .expect("a location");
    assert!(want_t.contains("W5"), "{want_t}");
    let cr = lf.replace('\n', "\r");
    // lone CRs, and CR LF mixed with lone CRs
    let mixed: String = lf
        .split_inclusive('\n')
        .enumerate()
        .map(|(i, l)| {
            if i % 2 == 0 {
                l.replace('\n', "\r")
            } else {
                l.replace('\n', "\r\n")
            }
        })
        .collect();
    for (name, src) in [("cr.yaml", cr), ("mixed.yaml", mixed)] {
        let f = write(d.path(), name, src.as_bytes());
        for o in [
            run(&["validate", &f]),
            run_stdin(&["validate", "-"], src.as_bytes()),
        ] {
            no_panic(&o);
            let t = text(&o);
            assert_eq!(o.status.code(), Some(1), "{name}: {t}");
            assert!(t.contains("W5"), "{name}: {t}");
            assert!(t.contains(&format!(":{loc}")), "{name}: want {loc}: {t}");
        }
    }
}

/// Runs the binary with a deadline: a hang is a failure, not a stuck test.
fn run_within(args: &[&str], stdin: Stdio, secs: u64) -> Output {
    let child = bin()
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn raygate");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(secs)) {
        Ok(o) => o.expect("wait"),
        Err(_) => {
            // SAFETY: kill(2) on our own child, which has not been reaped (the waiter blocks).
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
            panic!("raygate {args:?} did not finish within {secs} s");
        }
    }
}

/// Issue #14 (4): a FIFO, a device or a symlink to one named `*.yaml` in a directory hung the
/// walk (open(2) on a FIFO waits for a writer, /dev/zero never ends). They are skipped with a
/// note; the regular files are still checked.
#[test]
fn directory_walks_skip_fifos_devices_and_links_to_them() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "ok.yaml", VALID.as_bytes());
    let fifo = d.path().join("fifo.yaml");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a path in our temp dir.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    std::os::unix::fs::symlink("/dev/zero", d.path().join("zero.yaml")).unwrap();
    std::os::unix::fs::symlink(&fifo, d.path().join("link-to-fifo.yml")).unwrap();
    let dir = d.path().display().to_string();
    for cmd in ["validate", "default"] {
        let o = run_within(&[cmd, &dir], Stdio::null(), 60);
        no_panic(&o);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(0), "{cmd}: {t}");
        for (name, what) in [
            ("fifo.yaml", "a FIFO"),
            ("zero.yaml", "a character device"),
            ("link-to-fifo.yml", "a FIFO"),
        ] {
            assert!(
                t.contains(&format!(
                    "note: skipped {dir}/{name}: not a regular file ({what})"
                )),
                "{cmd}: {t}"
            );
        }
        if cmd == "validate" {
            assert!(t.contains("1 file(s), 1 RayCluster(s): 1 valid"), "{t}");
        }
    }
}

/// Issue #14 (4): `validate /dev/zero`, `validate - </dev/zero` and `default /dev/zero` never
/// ended. Streams (stdin, FIFOs, devices) are read with the document size cap: past it, a clear
/// error and the end of that input.
#[test]
fn endless_streams_stop_at_the_document_cap() {
    let zero = || Stdio::from(std::fs::File::open("/dev/zero").unwrap());
    for (args, stdin, name) in [
        (vec!["validate", "/dev/zero"], Stdio::null(), "/dev/zero"),
        (vec!["validate", "-"], zero(), "<stdin>"),
        (vec!["default", "/dev/zero"], Stdio::null(), "/dev/zero"),
        (vec!["default", "-"], zero(), "<stdin>"),
    ] {
        let o = run_within(&args, stdin, 60);
        no_panic(&o);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {t}");
        assert!(t.contains(name), "{args:?}: {t}");
        assert!(
            t.contains("document is larger than 4 MiB")
                && t.contains("stopped reading this input (not a regular file"),
            "{args:?}: {t}"
        );
    }
    // `yes |`: an endless stream of one growing document, through a pipe
    let mut yes = Command::new("yes").stdout(Stdio::piped()).spawn().unwrap();
    let o = run_within(
        &["validate", "-"],
        Stdio::from(yes.stdout.take().unwrap()),
        60,
    );
    let _ = yes.kill();
    let _ = yes.wait();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("stopped reading"), "{}", text(&o));
}

#[test]
fn missing_file_exits_2() {
    let o = run(&["validate", "/nonexistent/raygate/x.yaml"]);
    no_panic(&o);
    cli::assert_exit(&o, 2, "/nonexistent/raygate/x.yaml");
}

#[test]
fn usage_errors_exit_2() {
    let o = run(&["validate", "--feature-gates", "NoSuchGate=true", "-"]);
    cli::assert_exit(&o, 2, "unknown feature gate");
    let o = run(&["validate", "-o", "xml", "-"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn stdin_valid_and_skipped_documents() {
    let src = format!("{VALID}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n---\n");
    let o = run_stdin(&["validate", "-", "-o", "json"], src.as_bytes());
    no_panic(&o);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json output");
    assert_eq!(v["files"][0]["path"], "<stdin>");
    assert_eq!(v["files"][0]["documents"][0]["status"], "valid");
    assert_eq!(v["files"][0]["documents"][1]["status"], "skipped");
    assert_eq!(v["files"][0]["documents"][1]["kind"], "ConfigMap");
    assert_eq!(v["summary"]["rayclusters"], 1);
}

#[test]
fn list_kind_is_expanded_and_unknown_ray_api_version_rejected() {
    let src = "apiVersion: v1
kind: List
items:
- apiVersion: ray.io/v2
  kind: RayCluster
  metadata:
    name: future
  spec: {}
- apiVersion: v1
  kind: Service
  metadata:
    name: svc
";
    let o = run_stdin(&["validate", "-o", "json", "-"], src.as_bytes());
    no_panic(&o);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let docs = &v["files"][0]["documents"];
    assert_eq!(docs[0]["status"], "invalid");
    assert_eq!(docs[0]["findings"][0]["rule"], "API-VERSION");
    assert_eq!(docs[0]["findings"][0]["line"], 4);
    assert_eq!(docs[0]["findings"][0]["column"], 3);
    assert_eq!(docs[1]["status"], "skipped");
}

/// A tiny XML well-formedness check: balanced tags, quoted attributes, valid entities.
fn assert_well_formed_xml(s: &str) {
    let s = s
        .strip_prefix("<?xml")
        .map(|r| &r[r.find("?>").expect("decl end") + 2..])
        .unwrap_or(s);
    let mut stack: Vec<String> = Vec::new();
    let mut rest = s;
    let check_text = |t: &str| {
        let mut t = t;
        while let Some(i) = t.find('&') {
            let end = t[i..].find(';').expect("entity terminated");
            let ent = &t[i + 1..i + end];
            assert!(
                matches!(ent, "amp" | "lt" | "gt" | "quot" | "apos") || ent.starts_with('#'),
                "bad entity {ent}"
            );
            t = &t[i + end + 1..];
        }
        assert!(!t.contains('<'));
    };
    let mut roots = 0;
    while let Some(i) = rest.find('<') {
        check_text(&rest[..i]);
        let end = rest[i..].find('>').expect("tag closed") + i;
        let tag = &rest[i + 1..end];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.trim()),
                "mismatched </{name}>"
            );
        } else {
            let self_closing = tag.ends_with('/');
            let body = tag.trim_end_matches('/');
            let name = body.split_whitespace().next().expect("tag name");
            let mut attrs = body[name.len()..].trim();
            while !attrs.is_empty() {
                let eq = attrs.find('=').expect("attr =");
                let v = &attrs[eq + 1..];
                assert!(v.starts_with('"'), "unquoted attribute in <{tag}>");
                let close = v[1..].find('"').expect("attr closed") + 1;
                check_text(&v[1..close]);
                attrs = v[close + 1..].trim();
            }
            if stack.is_empty() {
                roots += 1;
            }
            if !self_closing {
                stack.push(name.to_string());
            }
        }
        rest = &rest[end + 1..];
    }
    assert!(rest.trim().is_empty());
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    assert_eq!(roots, 1, "exactly one root element");
}

#[test]
fn every_output_format_is_well_formed() {
    let d = tempfile::tempdir().unwrap();
    let bad = VALID.replace("name: ok", "name: Not_A_DNS_Label<&>\"'");
    write(d.path(), "a.yaml", bad.as_bytes());
    write(d.path(), "b.yaml", VALID.as_bytes());
    write(d.path(), "c.yaml", b"kind: [unclosed\n");
    let dir = d.path().display().to_string();
    for fmt in ["human", "json", "junit", "sarif", "github"] {
        let o = run(&["validate", "-o", fmt, &dir]);
        no_panic(&o);
        assert_eq!(o.status.code(), Some(2), "{fmt}: {}", text(&o));
        let out = String::from_utf8(o.stdout.clone()).expect("utf-8 output");
        match fmt {
            "json" => {
                let v: serde_json::Value = serde_json::from_str(&out).expect("json parses");
                assert_eq!(v["files"].as_array().map(Vec::len), Some(3));
                assert_eq!(v["exitCode"], 2);
            }
            "sarif" => {
                let v: serde_json::Value = serde_json::from_str(&out).expect("sarif parses");
                assert_eq!(v["version"], "2.1.0");
                let results = v["runs"][0]["results"].as_array().expect("results");
                assert!(!results.is_empty());
                for r in results {
                    assert!(r["ruleId"].is_string());
                    assert!(
                        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                            .is_string()
                    );
                }
            }
            "junit" => {
                assert_well_formed_xml(&out);
                assert!(out.contains("<testsuite name="), "{out}");
                assert!(out.contains("<error "), "{out}");
            }
            "github" => {
                assert!(
                    out.lines()
                        .all(|l| l.starts_with("::error ") || l.starts_with("::warning ")),
                    "{out}"
                );
                assert!(out.contains("c.yaml,line="), "{out}");
            }
            _ => {
                assert!(out.contains("error[YAML]"), "{out}");
                assert!(out.contains("RayCluster(s)"), "{out}");
            }
        }
    }
}

#[test]
fn hundred_megabyte_file_streams_with_bounded_memory() {
    // 100 MB of valid RayCluster documents in one file, plus one oversized document.
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("huge.yaml");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    let doc = format!("---\n{VALID}");
    let mut written = 0usize;
    let mut docs = 0usize;
    while written < 100 * 1024 * 1024 {
        f.write_all(doc.as_bytes()).unwrap();
        written += doc.len();
        docs += 1;
    }
    // An oversized document (a 6 MiB annotation on a single line) at the end.
    f.write_all(b"---\napiVersion: ray.io/v1\nkind: RayCluster\nmetadata:\n  name: big\n  annotations:\n    x: \"").unwrap();
    f.write_all(&vec![b'a'; 6 * 1024 * 1024]).unwrap();
    f.write_all(b"\"\n").unwrap();
    f.flush().unwrap();
    drop(f);
    let o = run(&["validate", &p.display().to_string()]);
    no_panic(&o);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(
        t.contains(&format!("{docs} RayCluster(s): {docs} valid")),
        "{t}"
    );
    assert!(t.contains("1 unreadable"), "{t}");
    assert!(t.contains("larger than 4 MiB"), "{t}");
    assert!(
        t.contains(&format!(":{}:1", docs * VALID.lines().count() + docs + 1)),
        "{t}"
    );
}

#[test]
fn directory_of_20000_files() {
    let d = tempfile::tempdir().unwrap();
    for i in 0..20_000 {
        let sub = d.path().join(format!("{:03}", i / 200));
        if i % 200 == 0 {
            std::fs::create_dir_all(&sub).unwrap();
        }
        let body = if i == 12_345 {
            VALID.replace(
                "      spec:\n        containers:",
                "      spec:\n        containers: 5\n        x:",
            )
        } else {
            VALID.to_string()
        };
        std::fs::write(sub.join(format!("rc{i:05}.yaml")), body).unwrap();
    }
    std::fs::write(d.path().join("README.md"), "not yaml").unwrap();
    let o = run(&["validate", "-o", "json", &d.path().display().to_string()]);
    no_panic(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["summary"]["files"], 20_000);
    assert_eq!(v["summary"]["rayclusters"], 20_000);
    assert_eq!(v["summary"]["invalid"], 1, "{}", v["summary"]);
    // Deterministic order: sorted paths.
    let paths: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn default_prints_yaml_that_reads_back() {
    let src = format!(
        "{VALID}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  flag: \"yes\"\n  mode: \"0777\"\n"
    );
    let o = run_stdin(&["default", "-"], src.as_bytes());
    no_panic(&o);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    let docs = raygate::yaml::parse_all(&out).expect("output parses");
    assert_eq!(docs.len(), 2, "{out}");
    assert_eq!(docs[1].value["data"]["flag"], "yes");
    assert_eq!(docs[1].value["data"]["mode"], "0777");
    assert_eq!(docs[0].value["metadata"]["name"], "ok");
    let o = run_stdin(&["default", "-"], b"a: [\n");
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("<stdin>:"), "{}", text(&o));
}
