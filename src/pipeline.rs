//! The one document pipeline shared by `raygate validate`, `raygate default` and the benchmark.
//!
//! Per document: parse (with positions) → skip what is not a RayCluster (expanding `kind: List`)
//! → reject unknown `ray.io` apiVersions → apply CRD defaults (as the API server does) → JSON
//! Schema (unknown fields: warnings, or errors with `--strict`) → `rules::validate` → map every
//! finding's field path back to `line:column` in the source.
//!
//! [`run`] drives it over files, directories and stdin: one reader thread splits inputs into
//! documents ([`yaml::ChunkReader`], bounded memory), `threads` workers check them, and results
//! come back in input order.

use crate::model::Kind;
use crate::schema;
use crate::violation::{Mode, Severity, ValidateOptions, Violation};
use crate::yaml::{self, Chunk, Document, ReadError};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// The CRD's deprecation warning for `ray.io/v1alpha1`.
pub const V1ALPHA1_DEPRECATION: &str = "ray.io/v1alpha1 RayCluster is deprecated; use ray.io/v1 RayCluster. v1alpha1 receives no new fields and will be unavailable in KubeRay 1.9.";

/// One finding, located in the source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: String,
    pub severity: Severity,
    /// Field path (`spec.workerGroupSpecs[1].minReplicas`); empty for input-level problems.
    pub path: String,
    pub message: String,
    /// How to fix it, where raygate knows (`help:` in the human output).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// 1-based line and column of the field (or of its nearest ancestor present in the source).
    pub line: usize,
    pub column: usize,
    /// Width to underline.
    #[serde(skip)]
    pub len: usize,
    /// The whole source line, for display (`None` past [`SNIPPET_MAX_BYTES`]); the renderer
    /// (annotate-snippets) trims a long line to a window around the column.
    #[serde(skip)]
    pub source: Option<Arc<str>>,
}

/// Longest source line kept for display. A longer one (minified JSON, a huge scalar) is not
/// kept: the finding then shows `--> file:line:col` and the field without the line, and a
/// finding costs at most this much memory.
pub const SNIPPET_MAX_BYTES: usize = 16 * 1024;

/// What happened to one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DocStatus {
    /// A RayCluster with no errors (warnings allowed).
    Valid,
    /// A RayCluster with at least one error.
    Invalid,
    /// Not a RayCluster (another kind, or not a Kubernetes object).
    Skipped,
    /// The YAML (or the bytes) could not be read.
    Unreadable,
}

/// The verdict on one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DocReport {
    /// Line where the document starts.
    pub line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub status: DocStatus,
    /// Why it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub findings: Vec<Finding>,
    /// Wall-clock nanoseconds spent checking it (JUnit `time`; not in `-o json`, which stays
    /// reproducible).
    #[serde(skip)]
    pub nanos: u64,
}

impl DocReport {
    pub fn unreadable(message: String, line: usize, col: usize, source: Option<Arc<str>>) -> Self {
        DocReport {
            line,
            api_version: None,
            kind: None,
            namespace: None,
            name: None,
            status: DocStatus::Unreadable,
            note: None,
            nanos: 0,
            findings: vec![Finding {
                rule: "YAML".into(),
                severity: Severity::Error,
                path: String::new(),
                message,
                help: None,
                line,
                column: col,
                len: 1,
                source,
            }],
        }
    }

    /// `RayCluster ns/name` (`RayCluster name` without a namespace), for headers.
    pub fn object(&self) -> Option<String> {
        let kind = self.kind.as_deref()?;
        Some(match (&self.namespace, &self.name) {
            (Some(ns), Some(n)) => format!("{kind} {ns}/{n}"),
            (None, Some(n)) => format!("{kind} {n}"),
            _ => kind.to_string(),
        })
    }

    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }

    pub fn warnings(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .count()
    }
}

/// Settings of a validation run.
#[derive(Debug, Clone, Default)]
pub struct Checker {
    pub opts: ValidateOptions,
    /// Drop warnings from the reports.
    pub ignore_warnings: bool,
    /// `--skip`: documents of these kinds are skipped (even `ray.io` ones).
    pub skip: Vec<crate::kinds::KindPattern>,
    /// `--reject`: documents of these kinds are errors.
    pub reject: Vec<crate::kinds::KindPattern>,
}

fn source_line(text: &str, line_offset: usize, line: usize) -> Option<Arc<str>> {
    let idx = line.checked_sub(line_offset + 1)?;
    snippet(text.lines().nth(idx)?)
}

/// The source lines of one text for its findings: each line is cut out once and shared by
/// every finding on it (a long flow-style line can carry thousands), so the findings of a
/// text hold at most one copy of it; lines are found by an index built on the first lookup.
struct SourceLines<'a> {
    text: &'a str,
    line_offset: usize,
    starts: std::cell::OnceCell<Vec<usize>>,
    kept: std::cell::RefCell<std::collections::HashMap<usize, Option<Arc<str>>>>,
}

impl<'a> SourceLines<'a> {
    fn new(text: &'a str, line_offset: usize) -> Self {
        SourceLines {
            text,
            line_offset,
            starts: std::cell::OnceCell::new(),
            kept: Default::default(),
        }
    }

    /// [`source_line`] of the text's 1-based file line `line`.
    fn get(&self, line: usize) -> Option<Arc<str>> {
        self.kept
            .borrow_mut()
            .entry(line)
            .or_insert_with(|| {
                let starts = self.starts.get_or_init(|| {
                    std::iter::once(0)
                        .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
                        .collect()
                });
                let idx = line.checked_sub(self.line_offset + 1)?;
                let start = *starts.get(idx)?;
                // As `str::lines`: no line after a final newline.
                if start >= self.text.len() {
                    return None;
                }
                let end = starts.get(idx + 1).map_or(self.text.len(), |e| e - 1);
                snippet(&self.text[start..end])
            })
            .clone()
    }
}

/// The line kept for display: without its CR, and `None` when longer than
/// [`SNIPPET_MAX_BYTES`].
pub fn snippet(line: &str) -> Option<Arc<str>> {
    let l = line.trim_end_matches('\r');
    (l.len() <= SNIPPET_MAX_BYTES).then(|| Arc::from(l))
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

impl Checker {
    pub fn new(opts: ValidateOptions) -> Self {
        Checker {
            opts,
            ..Checker::default()
        }
    }

    /// Checks every document of one chunk of text.
    pub fn check_chunk(&self, chunk: &Chunk) -> Vec<DocReport> {
        self.check_text(&chunk.text, chunk.line_offset)
    }

    /// Checks every document of `text` (`line_offset` = lines before it in its file).
    pub fn check_text(&self, text: &str, line_offset: usize) -> Vec<DocReport> {
        let mut out = Vec::new();
        let src = SourceLines::new(text, line_offset);
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for doc in yaml::documents(text, line_offset) {
                match doc {
                    Ok(d) => {
                        let (t0, n0) = (std::time::Instant::now(), out.len());
                        self.check_document(&d, &src, &mut out);
                        let new = &mut out[n0..];
                        let total = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
                        let each = total / (new.len().max(1) as u64);
                        for r in new {
                            r.nanos = each;
                        }
                    }
                    Err(e) => out.push(DocReport::unreadable(
                        e.message.clone(),
                        e.line,
                        e.col,
                        src.get(e.line),
                    )),
                }
            }
        }));
        if let Err(p) = res {
            out.push(DocReport::unreadable(
                format!(
                    "internal error while checking this document (please report): {}",
                    panic_message(p.as_ref())
                ),
                line_offset + 1,
                1,
                None,
            ));
        }
        out
    }

    fn check_document(&self, doc: &Document, src: &SourceLines, out: &mut Vec<DocReport>) {
        if doc.value.is_null() {
            return; // empty document (`---` alone, or only comments): ignored, as kubectl does
        }
        self.check_object(doc, &doc.value, "", src, out);
    }

    fn finding(&self, doc: &Document, prefix: &str, src: &SourceLines, v: Violation) -> Finding {
        let full = if prefix.is_empty() {
            v.path.clone()
        } else if v.path.is_empty() {
            prefix.trim_end_matches('.').to_string()
        } else {
            format!("{prefix}{}", v.path)
        };
        let loc = doc.locate(&full);
        // A fix specific to this finding (a gate to enable), else the rule's `Fix:` line.
        let help = crate::rules::help(&v.rule, &v.message)
            .or_else(|| crate::rules::docs::fix(&v.rule).map(str::to_string));
        Finding {
            help,
            rule: v.rule,
            severity: v.severity,
            path: v.path,
            message: v.message,
            line: loc.line,
            column: loc.col,
            len: loc.len,
            source: src.get(loc.line),
        }
    }

    fn check_object(
        &self,
        doc: &Document,
        obj: &Value,
        prefix: &str,
        src: &SourceLines,
        out: &mut Vec<DocReport>,
    ) {
        let here = doc.locate(prefix.trim_end_matches('.'));
        let kind = obj.get("kind").and_then(Value::as_str);
        let api = obj.get("apiVersion").and_then(Value::as_str);
        let mut report = DocReport {
            line: here.line,
            api_version: api.map(str::to_string),
            kind: kind.map(str::to_string),
            namespace: obj
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_string),
            name: obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_string),
            status: DocStatus::Skipped,
            note: None,
            findings: Vec::new(),
            nanos: 0,
        };
        if !obj.is_object() {
            report.note =
                Some("not a Kubernetes object (a mapping with apiVersion and kind)".into());
            out.push(report);
            return;
        }
        if let (Some(k), Some(Value::Array(items))) = (kind, obj.get("items"))
            && k.ends_with("List")
        {
            for (i, item) in items.iter().enumerate() {
                let p = format!("{prefix}items[{i}].");
                self.check_object(doc, item, &p, src, out);
            }
            return;
        }
        let mk = |rule: &str, path: &str, msg: String, sev: Severity| Violation {
            rule: rule.into(),
            path: path.into(),
            message: msg,
            severity: sev,
        };
        use crate::kinds::{self, Class};
        let fail = |report: &mut DocReport, v: Violation, help: String| {
            let mut f = self.finding(doc, prefix, src, v);
            f.help = Some(help);
            report.findings.push(f);
            report.status = DocStatus::Invalid;
        };
        let (kind_enum, api) = match kinds::classify(api, kind, &self.skip, &self.reject) {
            Class::Check { kind, api_version } => match Kind::from_name(kind.kind) {
                Some(k) => (k, api_version),
                None => {
                    let other = kind.kind;
                    // A row in kinds::KNOWN without a dispatch arm here: say so, never pass it.
                    let v = mk(
                        "UNKNOWN-KIND",
                        "kind",
                        format!("raygate lists kind {other} but has no checks for it"),
                        Severity::Error,
                    );
                    fail(&mut report, v, format!("pass `--skip {other}`"));
                    out.push(report);
                    return;
                }
            },
            Class::SkipRequested(note) | Class::NotRay(note) => {
                report.note = Some(note);
                out.push(report);
                return;
            }
            Class::Rejected(p) => {
                let k = kind.unwrap_or_default();
                let v = mk(
                    "REJECTED-KIND",
                    "kind",
                    format!("kind {k} is rejected by --reject {p}"),
                    Severity::Error,
                );
                fail(
                    &mut report,
                    v,
                    format!("remove this document, or drop {p} from --reject"),
                );
                out.push(report);
                return;
            }
            Class::UnknownKind { api_version, kind } => {
                let v = mk(
                    "UNKNOWN-KIND",
                    "kind",
                    format!(
                        "unknown kind {kind:?} in {api_version}; raygate checks {}",
                        kinds::known_list()
                    ),
                    Severity::Error,
                );
                fail(
                    &mut report,
                    v,
                    format!(
                        "fix the kind, or pass `--skip {kind}` to leave it unchecked on purpose"
                    ),
                );
                out.push(report);
                return;
            }
            Class::NoKind { api_version } => {
                let v = mk(
                    "UNKNOWN-KIND",
                    "",
                    format!("{api_version} document without a kind"),
                    Severity::Error,
                );
                fail(
                    &mut report,
                    v,
                    "add `kind:` (e.g. `kind: RayCluster`)".into(),
                );
                out.push(report);
                return;
            }
            Class::UnknownVersion { kind, api_version } => {
                let msg = match &api_version {
                    Some(a) => format!(
                        "unknown apiVersion {a:?} for kind {}; KubeRay serves {}",
                        kind.kind,
                        kinds::api_versions(kind)
                    ),
                    None => format!(
                        "apiVersion is required ({}/{})",
                        kinds::GROUP,
                        kind.versions[0]
                    ),
                };
                let v = mk("API-VERSION", "apiVersion", msg, Severity::Error);
                fail(
                    &mut report,
                    v,
                    format!("use `apiVersion: {}/{}`", kinds::GROUP, kind.versions[0]),
                );
                out.push(report);
                return;
            }
        };
        let api = api.as_str();

        let mut o = obj.clone();
        schema::drop_nulls(&mut o);
        crate::defaulting::apply_crd_defaults_kind(kind_enum, &mut o);
        let mut violations: Vec<Violation> = Vec::new();
        match schema::compiled_kind(kind_enum.name(), api) {
            Ok(c) => {
                for e in c.check(&o) {
                    let sev = if e.rule == "SCHEMA-UNKNOWN-FIELD" && !self.opts.strict {
                        Severity::Warning
                    } else {
                        Severity::Error
                    };
                    violations.push(mk(e.rule, &e.path, e.message, sev));
                }
            }
            Err(e) => violations.push(mk("SCHEMA", "", e, Severity::Error)),
        }
        if let Some(w) = kind_enum.deprecation_warning(api) {
            violations.push(mk("API-DEPRECATED", "apiVersion", w, Severity::Warning));
            // Conversion strategy None: the API server only rewrites apiVersion.
            if let Some(m) = o.as_object_mut() {
                m.insert("apiVersion".into(), Value::String("ray.io/v1".into()));
            }
        }
        let rule_violations = crate::rules::kinds::validate_kind(kind_enum, &o, None, &self.opts);
        // The rules' messages are KubeRay's: prefer them over a schema error at the same path.
        let rule_paths: std::collections::HashSet<&str> =
            rule_violations.iter().map(|v| v.path.as_str()).collect();
        violations
            .retain(|v| !v.rule.starts_with("SCHEMA") || !rule_paths.contains(v.path.as_str()));
        if self.opts.mode == Mode::FirstError {
            let first = violations
                .iter()
                .chain(rule_violations.iter())
                .find(|v| v.severity == Severity::Error)
                .cloned();
            violations = first.into_iter().collect();
        } else {
            violations.extend(rule_violations);
        }
        if self.ignore_warnings {
            violations.retain(|v| v.severity == Severity::Error);
        }
        report.findings = violations
            .into_iter()
            .map(|v| self.finding(doc, prefix, src, v))
            .collect();
        report.status = if report.errors() > 0 {
            DocStatus::Invalid
        } else {
            DocStatus::Valid
        };
        out.push(report);
    }
}

/// Output of `raygate default` for one document.
#[derive(Debug, Clone)]
pub enum Defaulted {
    /// The (possibly defaulted) document as YAML, without `---`.
    Yaml(String),
    /// A note (e.g. why a document was left unchanged).
    Note(String),
    /// A parse error.
    Error(Finding),
}

/// Defaults every document of a chunk: RayClusters of `ray.io/v1` get the CRD and autoscaler
/// defaults; everything else is passed through unchanged.
pub fn default_chunk(chunk: &Chunk) -> Vec<Defaulted> {
    let mut out = Vec::new();
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for doc in yaml::documents(&chunk.text, chunk.line_offset) {
            match doc {
                Ok(d) => {
                    if d.value.is_null() {
                        continue;
                    }
                    let mut notes = Vec::new();
                    let y = yaml::to_yaml(&default_value(&d.value, &mut notes));
                    out.extend(notes);
                    out.push(Defaulted::Yaml(y));
                }
                Err(e) => out.push(Defaulted::Error(Finding {
                    rule: "YAML".into(),
                    severity: Severity::Error,
                    path: String::new(),
                    source: source_line(&chunk.text, chunk.line_offset, e.line),
                    message: e.message,
                    help: None,
                    line: e.line,
                    column: e.col,
                    len: 1,
                })),
            }
        }
    }));
    if let Err(p) = res {
        out.push(Defaulted::Error(Finding {
            rule: "INTERNAL".into(),
            severity: Severity::Error,
            path: String::new(),
            message: format!(
                "internal error (please report): {}",
                panic_message(p.as_ref())
            ),
            help: None,
            line: chunk.line_offset + 1,
            column: 1,
            len: 1,
            source: None,
        }));
    }
    out
}

fn default_value(v: &Value, notes: &mut Vec<Defaulted>) -> Value {
    let kind = v.get("kind").and_then(Value::as_str);
    let api = v.get("apiVersion").and_then(Value::as_str);
    match (kind.map(|k| (k, Kind::from_name(k))), api) {
        (Some((_, Some(k))), Some("ray.io/v1")) => crate::defaulting::defaulted_kind(k, v),
        (Some((_, Some(k))), Some(a)) if a.starts_with("ray.io/") => {
            notes.push(Defaulted::Note(format!(
                "{} of apiVersion {a} printed unchanged: defaults apply to ray.io/v1",
                k.name()
            )));
            v.clone()
        }
        (Some((k, None)), _) if k.ends_with("List") => {
            let mut out = v.clone();
            if let Some(Value::Array(items)) = out.get_mut("items") {
                for it in items.iter_mut() {
                    *it = default_value(it, notes);
                }
            }
            out
        }
        _ => v.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Driving many inputs on several threads

/// A command-line input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    File(PathBuf),
    Stdin,
}

impl Input {
    /// Name shown to users (`<stdin>` for `-`).
    pub fn display(&self) -> String {
        match self {
            Input::File(p) => p.display().to_string(),
            Input::Stdin => "<stdin>".to_string(),
        }
    }
}

/// File extensions picked up when walking a directory.
pub const EXTENSIONS: &[&str] = &["yaml", "yml", "json"];

/// What a file that is not a regular one is, for the note that skips it.
fn file_kind(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// A directory entry with a matching name that is read only if it is (or links to) a regular
/// file: a FIFO would block `open(2)` until a writer comes, a device may never end.
fn walked_file(
    p: PathBuf,
    out: &mut Vec<Result<PathBuf, (PathBuf, String)>>,
    notes: &mut Vec<String>,
) {
    match std::fs::metadata(&p) {
        Ok(m) if !m.is_file() => notes.push(format!(
            "skipped {}: not a regular file ({})",
            p.display(),
            file_kind(m.file_type())
        )),
        // regular files, and broken links (reported as unreadable when opened)
        _ => out.push(Ok(p)),
    }
}

fn walk_dir(
    dir: &Path,
    out: &mut Vec<Result<PathBuf, (PathBuf, String)>>,
    notes: &mut Vec<String>,
) {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            out.push(Err((
                dir.to_path_buf(),
                format!("cannot read directory: {e}"),
            )));
            return;
        }
    };
    let mut entries: Vec<(PathBuf, bool)> = Vec::new();
    for e in rd {
        match e {
            Ok(e) => {
                let p = e.path();
                // Do not follow symlinked directories (no cycles); symlinked files are read.
                let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
                entries.push((p, is_dir));
            }
            Err(e) => out.push(Err((
                dir.to_path_buf(),
                format!("cannot read directory: {e}"),
            ))),
        }
    }
    entries.sort();
    for (p, is_dir) in entries {
        if is_dir {
            walk_dir(&p, out, notes);
        } else if p
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| EXTENSIONS.contains(&x))
        {
            walked_file(p, out, notes);
        }
    }
}

/// [`expand_args_noting`], with the notes written to stderr (`note: skipped …`).
pub fn expand_args(args: &[String]) -> Vec<Result<Input, (String, String)>> {
    let mut notes = Vec::new();
    let inputs = expand_args_noting(args, &mut notes);
    for n in notes {
        eprintln!("note: {n}");
    }
    inputs
}

/// Expands command-line arguments: `-` is stdin, directories are walked recursively (files
/// with [`EXTENSIONS`], sorted by path; entries that are not regular files, or symlinks to
/// such, are skipped with a note in `notes`), other paths are taken as given (a named FIFO or
/// device is read, as a stream). Unreadable paths come back as `Err((path, message))` in their
/// place.
pub fn expand_args_noting(
    args: &[String],
    notes: &mut Vec<String>,
) -> Vec<Result<Input, (String, String)>> {
    let mut out = Vec::new();
    for a in args {
        if a == "-" {
            out.push(Ok(Input::Stdin));
            continue;
        }
        let p = PathBuf::from(a);
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => {
                let mut found = Vec::new();
                walk_dir(&p, &mut found, notes);
                out.extend(found.into_iter().map(|r| {
                    r.map(Input::File)
                        .map_err(|(p, e)| (p.display().to_string(), e))
                }));
            }
            Ok(_) => out.push(Ok(Input::File(p))),
            Err(e) => out.push(Err((a.clone(), format!("cannot read: {e}")))),
        }
    }
    out
}

/// Whether standard input is a regular file (`< file.yaml`) rather than a pipe or a device.
fn stdin_is_regular_file() -> bool {
    use std::os::fd::AsFd;
    std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata())
        .is_ok_and(|m| m.is_file())
}

/// What [`run`] hands to its sink, in input order.
#[derive(Debug)]
pub enum Event<T> {
    /// A new input starts.
    Start(String),
    /// The result of one chunk of the current input.
    Item(T),
    /// The current input (or part of it) could not be read.
    ReadError(ReadError),
    /// The current input is finished.
    End,
}

/// Work is handed to the workers in batches of about this many bytes (or [`BATCH_CHUNKS`]
/// chunks), so thread hand-offs do not dominate small documents.
pub const BATCH_BYTES: usize = 256 * 1024;
/// See [`BATCH_BYTES`].
pub const BATCH_CHUNKS: usize = 64;

type Seq<E> = Vec<(u64, E)>;

/// Reads `inputs` on one thread, runs `work` on every chunk on `threads` worker threads, and
/// calls `sink` with the results in input order. Memory: at most `2 × threads + 2` batches of
/// chunks are in flight (each about [`BATCH_BYTES`], a single chunk at most
/// [`yaml::MAX_DOCUMENT_BYTES`]), plus results not yet consumed.
pub fn run<T, W, S>(
    inputs: Vec<Result<Input, (String, String)>>,
    threads: usize,
    work: W,
    mut sink: S,
) where
    T: Send,
    W: Fn(&Chunk) -> T + Sync,
    S: FnMut(Event<T>),
{
    let threads = threads.max(1);
    let (work_tx, work_rx) = mpsc::sync_channel::<Seq<Chunk>>(threads * 2);
    let (res_tx, res_rx) = mpsc::channel::<Seq<Event<T>>>();
    let work_rx = Mutex::new(work_rx);
    std::thread::scope(|s| {
        let work = &work;
        let work_rx = &work_rx;
        for _ in 0..threads {
            let res_tx = res_tx.clone();
            s.spawn(move || {
                loop {
                    let next = match work_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(batch) = next else { return };
                    let mut results = Vec::with_capacity(batch.len());
                    for (seq, chunk) in batch {
                        let r =
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&chunk)));
                        let ev = match r {
                            Ok(t) => Event::Item(t),
                            Err(p) => Event::ReadError(ReadError {
                                message: format!(
                                    "internal error (please report): {}",
                                    panic_message(p.as_ref())
                                ),
                                line: chunk.line_offset + 1,
                                col: 1,
                            }),
                        };
                        results.push((seq, ev));
                    }
                    if res_tx.send(results).is_err() {
                        return;
                    }
                }
            });
        }
        s.spawn(move || {
            struct Producer<T> {
                seq: u64,
                events: Seq<Event<T>>,
                batch: Seq<Chunk>,
                bytes: usize,
            }
            let mut p = Producer::<T> {
                seq: 0,
                events: Vec::new(),
                batch: Vec::new(),
                bytes: 0,
            };
            let flush = |p: &mut Producer<T>| -> bool {
                if !p.events.is_empty() {
                    let _ = res_tx.send(std::mem::take(&mut p.events));
                }
                if !p.batch.is_empty() {
                    p.bytes = 0;
                    return work_tx.send(std::mem::take(&mut p.batch)).is_ok();
                }
                true
            };
            let emit = |p: &mut Producer<T>, ev: Event<T>| {
                p.events.push((p.seq, ev));
                p.seq += 1;
            };
            let feed =
                |p: &mut Producer<T>,
                 reader: &mut dyn Iterator<Item = Result<Chunk, ReadError>>| {
                    for c in reader {
                        match c {
                            Ok(c) => {
                                p.bytes += c.text.len();
                                p.batch.push((p.seq, c));
                                p.seq += 1;
                                if (p.bytes >= BATCH_BYTES || p.batch.len() >= BATCH_CHUNKS)
                                    && !flush(p)
                                {
                                    return;
                                }
                            }
                            Err(e) => emit(p, Event::ReadError(e)),
                        }
                    }
                };
            for input in inputs {
                let input = match input {
                    Ok(i) => i,
                    Err((name, msg)) => {
                        emit(&mut p, Event::Start(name));
                        emit(
                            &mut p,
                            Event::ReadError(ReadError {
                                message: msg,
                                line: 0,
                                col: 0,
                            }),
                        );
                        emit(&mut p, Event::End);
                        continue;
                    }
                };
                emit(&mut p, Event::Start(input.display()));
                match &input {
                    Input::Stdin => {
                        let stdin = std::io::stdin();
                        let stream = !stdin_is_regular_file();
                        let mut r = yaml::ChunkReader::new(stdin.lock()).stream(stream);
                        feed(&mut p, &mut r);
                    }
                    Input::File(path) => match std::fs::File::open(path) {
                        Ok(f) => {
                            let stream = !f.metadata().is_ok_and(|m| m.is_file());
                            let mut r =
                                yaml::ChunkReader::new(BufReader::with_capacity(64 * 1024, f))
                                    .stream(stream);
                            feed(&mut p, &mut r);
                        }
                        Err(e) => emit(
                            &mut p,
                            Event::ReadError(ReadError {
                                message: format!("cannot read: {e}"),
                                line: 0,
                                col: 0,
                            }),
                        ),
                    },
                }
                emit(&mut p, Event::End);
            }
            flush(&mut p);
            drop(work_tx);
        });
        let mut pending: BTreeMap<u64, Event<T>> = BTreeMap::new();
        let mut next: u64 = 0;
        for batch in res_rx {
            for (seq, ev) in batch {
                if seq == next {
                    sink(ev);
                    next += 1;
                    while let Some(ev) = pending.remove(&next) {
                        sink(ev);
                        next += 1;
                    }
                } else {
                    pending.insert(seq, ev);
                }
            }
        }
    });
}

/// All documents of one input, with read errors turned into unreadable documents.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub path: String,
    pub documents: Vec<DocReport>,
}

impl FileReport {
    /// Whether nothing in it could be read as YAML.
    pub fn unreadable(&self) -> bool {
        self.documents
            .iter()
            .any(|d| d.status == DocStatus::Unreadable)
    }
}

/// Validates `inputs` and calls `on_file` with each file's report, in input order.
pub fn validate_inputs(
    inputs: Vec<Result<Input, (String, String)>>,
    threads: usize,
    checker: &Checker,
    mut on_file: impl FnMut(FileReport),
) {
    let mut cur: Option<FileReport> = None;
    run(
        inputs,
        threads,
        |c| checker.check_chunk(c),
        |ev| match ev {
            Event::Start(path) => {
                cur = Some(FileReport {
                    path,
                    documents: Vec::new(),
                })
            }
            Event::Item(docs) => {
                if let Some(f) = cur.as_mut() {
                    f.documents.extend(docs);
                }
            }
            Event::ReadError(e) => {
                if let Some(f) = cur.as_mut() {
                    f.documents.push(DocReport::unreadable(
                        e.message,
                        e.line.max(1),
                        e.col.max(1),
                        None,
                    ));
                }
            }
            Event::End => {
                if let Some(f) = cur.take() {
                    on_file(f);
                }
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_keeps_whole_lines_up_to_the_cap() {
        assert_eq!(
            snippet("  minReplicas: 5\r").as_deref(),
            Some("  minReplicas: 5")
        );
        let at_cap = "a".repeat(SNIPPET_MAX_BYTES);
        assert_eq!(snippet(&at_cap).as_deref(), Some(at_cap.as_str()));
        assert_eq!(snippet(&format!("{at_cap}b")), None);
    }

    #[test]
    fn check_text_reports_positions_and_skips() {
        let c = Checker::default();
        let r = c.check_text(
            "apiVersion: v1\nkind: ConfigMap\n---\napiVersion: ray.io/v1\nkind: RayCluster\nmetadata:\n  name: x\nspec:\n  headGroupSpec:\n    template:\n      spec:\n        containers: []\n",
            10,
        );
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].status, DocStatus::Skipped);
        assert_eq!(r[1].status, DocStatus::Invalid);
        let s1 = r[1].findings.iter().find(|f| f.rule == "S1").expect("S1");
        assert_eq!((s1.line, s1.column), (22, 9));
        assert_eq!(s1.source.as_deref(), Some("        containers: []"));
    }

    #[test]
    fn findings_on_one_line_share_its_copy() {
        // Two worker groups with minReplicas > maxReplicas on one flow-style line.
        let g = |n: &str| {
            format!(
                "{{groupName: {n}, minReplicas: 5, maxReplicas: 2, rayStartParams: {{}}, \
                 template: {{spec: {{containers: [{{name: w, image: x}}]}}}}}}"
            )
        };
        let text = format!(
            "apiVersion: ray.io/v1\nkind: RayCluster\nmetadata: {{name: a}}\nspec: {{headGroupSpec: \
             {{rayStartParams: {{}}, template: {{spec: {{containers: [{{name: h, image: x}}]}}}}}}, \
             workerGroupSpecs: [{}, {}]}}\n",
            g("a"),
            g("b")
        );
        let r = Checker::default().check_text(&text, 0);
        let on_4: Vec<&Arc<str>> = r[0]
            .findings
            .iter()
            .filter(|f| f.line == 4)
            .filter_map(|f| f.source.as_ref())
            .collect();
        assert!(on_4.len() >= 2, "{:?}", r[0].findings);
        assert!(on_4.iter().all(|s| Arc::ptr_eq(s, on_4[0])));
        assert_eq!(&**on_4[0], text.lines().nth(3).unwrap());
        // The same lines as `str::lines`: none after the final newline, none past the end.
        let src = SourceLines::new("a\r\n\nb\n", 10);
        let got: Vec<Option<String>> = (9..16).map(|l| src.get(l).map(|s| s.to_string())).collect();
        let want: Vec<Option<String>> = (9..16)
            .map(|l| source_line("a\r\n\nb\n", 10, l).map(|s| s.to_string()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(
            got[2..5],
            [Some("a".into()), Some(String::new()), Some("b".into())]
        );
    }
}
