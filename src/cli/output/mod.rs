//! Renderers for `raygate validate`: human (rustc-like), json, junit, sarif, github.

use crate::pipeline::{DocStatus, FileReport, Finding};
use crate::violation::Severity;
use serde::Serialize;
use serde_json::json;
use serde_sarif::sarif;
use std::fmt::Write as _;

/// `-o` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
    Junit,
    Sarif,
    Github,
}

/// Totals over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub files: usize,
    pub documents: usize,
    /// Documents given a verdict (valid or invalid), of every kind.
    pub checked: usize,
    /// Of those, RayClusters.
    pub rayclusters: usize,
    pub valid: usize,
    pub invalid: usize,
    pub skipped: usize,
    pub unreadable: usize,
    pub errors: usize,
    pub warnings: usize,
    /// Files with no document at all (empty or only comments).
    pub empty_files: usize,
}

impl Summary {
    pub fn add(&mut self, f: &FileReport) {
        self.files += 1;
        if f.documents.is_empty() {
            self.empty_files += 1;
        }
        for d in &f.documents {
            self.documents += 1;
            if matches!(d.status, DocStatus::Valid | DocStatus::Invalid) {
                self.checked += 1;
                if d.kind.as_deref() == Some("RayCluster") {
                    self.rayclusters += 1;
                }
            }
            match d.status {
                DocStatus::Valid => self.valid += 1,
                DocStatus::Invalid => self.invalid += 1,
                DocStatus::Skipped => self.skipped += 1,
                DocStatus::Unreadable => self.unreadable += 1,
            }
            self.errors += d.errors();
            self.warnings += d.warnings();
        }
    }

    /// 0 valid (warnings allowed), 1 invalid, 2 unreadable input.
    pub fn exit_code(&self) -> u8 {
        if self.unreadable > 0 {
            2
        } else if self.invalid > 0 {
            1
        } else {
            0
        }
    }

    /// `N RayCluster(s)`, or `N object(s) (M RayCluster(s))` when other kinds were checked.
    pub fn what(&self) -> String {
        if self.checked == self.rayclusters {
            format!("{} RayCluster(s)", self.rayclusters)
        } else {
            format!(
                "{} object(s) ({} RayCluster(s))",
                self.checked, self.rayclusters
            )
        }
    }

    pub fn line(&self) -> String {
        let what = self.what();
        let mut s = format!(
            "{} file(s), {what}: {} valid, {} invalid; {} other document(s) skipped",
            self.files, self.valid, self.invalid, self.skipped
        );
        if self.unreadable > 0 {
            let _ = write!(s, "; {} unreadable", self.unreadable);
        }
        let _ = write!(
            s,
            " ({} error(s), {} warning(s))",
            self.errors, self.warnings
        );
        s
    }
}

fn sev_word(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// rustc-style rendering of one finding, by annotate-snippets.
///
/// `object` (`RayCluster ns/name`) goes into the header: `error[W5]: RayCluster ns/a: message`.
/// The source line is shown with the field underlined and named; without it (no position, or a
/// line longer than [`crate::pipeline::SNIPPET_MAX_BYTES`]) the location and a `= field:` note.
pub fn human_finding(path: &str, object: Option<&str>, f: &Finding, out: &mut String) {
    use annotate_snippets::{AnnotationKind, Element, Level, Origin, Renderer, Snippet};
    let level = match f.severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    };
    let title = match object {
        Some(o) => format!("{o}: {}", f.message),
        None => f.message.clone(),
    };
    let mut elements: Vec<Element> = Vec::new();
    let mut shift = None;
    // The byte range of `len` characters from the 1-based `column`, when it is on the line.
    let span = f.source.as_deref().filter(|_| f.line > 0).and_then(|text| {
        let mut at = text.char_indices().map(|(i, _)| i).chain([text.len()]);
        let start = at.nth(f.column.checked_sub(1)?)?;
        let end = text[start..]
            .char_indices()
            .nth(f.len.max(1))
            .map_or(text.len(), |(i, _)| start + i);
        Some((text, start..end))
    });
    match span {
        Some((text, range)) => {
            let (text, range, cut) = window(text, range);
            shift = cut;
            let mark = AnnotationKind::Primary.span(range);
            let mark = if f.path.is_empty() {
                mark
            } else {
                mark.label(f.path.as_str())
            };
            elements.push(
                Snippet::source(text)
                    .line_start(f.line)
                    .path(path)
                    .annotation(mark)
                    .into(),
            );
        }
        None => {
            let origin = Origin::path(path);
            elements.push(if f.line == 0 {
                origin.into()
            } else {
                origin.line(f.line).char_column(f.column).into()
            });
            if f.line > 0 && !f.path.is_empty() {
                elements.push(
                    Level::NOTE
                        .with_name("field")
                        .message(f.path.as_str())
                        .into(),
                );
            }
        }
    }
    if let Some(h) = &f.help {
        elements.push(Level::HELP.message(h.as_str()).into());
    }
    let group = level
        .primary_title(title)
        .id(f.rule.as_str())
        .elements(elements);
    let rendered = Renderer::plain().render(&[group]);
    match shift.filter(|&n| n > 0) {
        // the header names the column in the window: give the line's own column
        Some(n) => {
            let shown = format!("--> {path}:{}:{}\n", f.line, f.column - n);
            let real = format!("--> {path}:{}:{}\n", f.line, f.column);
            out.push_str(&rendered.replacen(&shown, &real, 1));
        }
        None => out.push_str(&rendered),
    }
    out.push_str("\n\n");
}

/// Lines longer than this are cut to [`WINDOW_MARGIN`] bytes either side of the span before
/// annotate-snippets sees them: it works over the whole line for every finding (24.8k findings on
/// 16 KiB lines took 5.7 s), but shows at most a terminal width of it, so the cut changes nothing
/// it prints except the header's column, which [`human_finding`] puts back.
const WINDOW_ABOVE: usize = 4 * 1024;
/// Bytes kept either side of the span: several times annotate-snippets' 140-column width, so
/// its own trimming (with `...`) happens inside the window.
const WINDOW_MARGIN: usize = 1024;

/// `(text, range)` cut to a window around `range` on a long line, with the number of characters
/// cut from the start (`None` when the line is kept whole).
fn window(
    text: &str,
    range: std::ops::Range<usize>,
) -> (&str, std::ops::Range<usize>, Option<usize>) {
    if text.len() <= WINDOW_ABOVE {
        return (text, range, None);
    }
    let start = text.floor_char_boundary(range.start.saturating_sub(WINDOW_MARGIN));
    let end = text.ceil_char_boundary(range.end.saturating_add(WINDOW_MARGIN).min(text.len()));
    let cut = text[..start].chars().count();
    (
        &text[start..end],
        range.start - start..range.end - start,
        Some(cut),
    )
}

/// Human rendering of one file (findings only, or one summary line with `summary`).
pub fn human_file(f: &FileReport, summary: bool, verbose: bool, out: &mut String) {
    if summary {
        let mut s = Summary::default();
        s.add(f);
        let verdict = if s.unreadable > 0 {
            "UNREADABLE"
        } else if s.invalid > 0 {
            "INVALID"
        } else if s.checked > 0 {
            "OK"
        } else {
            "no RayCluster"
        };
        let _ = writeln!(
            out,
            "{}: {verdict} ({}, {} error(s), {} warning(s), {} skipped)",
            f.path,
            s.what(),
            s.errors,
            s.warnings,
            s.skipped
        );
        return;
    }
    if f.documents.is_empty() {
        let _ = writeln!(
            out,
            "note: {}: no YAML documents (empty file); nothing to check\n",
            f.path
        );
    }
    for d in &f.documents {
        if d.status == DocStatus::Skipped && verbose {
            let _ = writeln!(
                out,
                "note: {}:{}: skipped {}{} ({})\n",
                f.path,
                d.line,
                d.kind.as_deref().unwrap_or("document"),
                d.name
                    .as_deref()
                    .map(|n| format!(" {n:?}"))
                    .unwrap_or_default(),
                d.note.as_deref().unwrap_or("")
            );
        }
        let object = d.object();
        for x in &d.findings {
            human_finding(&f.path, object.as_deref(), x, out);
        }
    }
}

/// GitHub Actions workflow commands.
pub fn github_file(f: &FileReport, out: &mut String) {
    fn esc_data(s: &str) -> String {
        s.replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
    }
    fn esc_prop(s: &str) -> String {
        esc_data(s).replace(':', "%3A").replace(',', "%2C")
    }
    for d in &f.documents {
        for x in &d.findings {
            let level = match x.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            let msg = if x.path.is_empty() {
                x.message.clone()
            } else {
                format!("{} ({})", x.message, x.path)
            };
            if x.line > 0 {
                let _ = writeln!(
                    out,
                    "::{level} file={},line={},col={},title={}::{}",
                    esc_prop(&f.path),
                    x.line,
                    x.column,
                    esc_prop(&format!("raygate {}", x.rule)),
                    esc_data(&msg)
                );
            } else {
                let _ = writeln!(
                    out,
                    "::{level} file={},title={}::{}",
                    esc_prop(&f.path),
                    esc_prop(&format!("raygate {}", x.rule)),
                    esc_data(&msg)
                );
            }
        }
    }
}

/// The whole run as JSON.
pub fn json_report(files: &[FileReport], s: &Summary) -> String {
    let v = json!({
        "tool": {"name": "raygate", "version": env!("CARGO_PKG_VERSION")},
        "files": files,
        "summary": s,
        "exitCode": s.exit_code(),
    });
    let mut out = serde_json::to_string_pretty(&v).unwrap_or_else(|_| "{}".into());
    out.push('\n');
    out
}

/// `U+FFFE` and `U+FFFF` are not XML characters; quick-junit drops the C0 controls itself.
fn xml_text(s: &str) -> String {
    s.replace(['\u{FFFE}', '\u{FFFF}'], "\u{FFFD}")
}

/// Test case names that do not change when lines move: `RayCluster team-a/name`, or for a
/// document without kind/name its position among the file's documents (`document 3`);
/// repeated names get ` #2`, ` #3`.
fn case_names(f: &FileReport) -> Vec<String> {
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    f.documents
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let base = match (&d.kind, &d.name) {
                (Some(_), Some(_)) => d.object().unwrap_or_default(),
                (Some(k), None) => format!("{k} (document {})", i + 1),
                _ => format!("document {}", i + 1),
            };
            let n = seen.entry(base.clone()).or_insert(0);
            *n += 1;
            if *n == 1 {
                base
            } else {
                format!("{base} #{n}")
            }
        })
        .collect()
}

/// JUnit XML by quick-junit: one testsuite per file, one testcase per document (`file`, `line`
/// and `time` on each; names from [`case_names`]). An invalid document is a `failure` (the
/// first error's rule and message; every error in the text), an unreadable one an `error`, a
/// skipped one `skipped`; warnings go to `system-out`. `total_nanos` is the run's wall-clock
/// time.
pub fn junit_report(files: &[FileReport], total_nanos: u64) -> String {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    use std::time::Duration;
    let mut report = Report::new("raygate validate");
    for f in files {
        let mut suite = TestSuite::new(xml_text(&f.path));
        suite.set_time(Duration::from_nanos(
            f.documents.iter().map(|d| d.nanos).sum(),
        ));
        suite.extra.insert("file".into(), xml_text(&f.path).into());
        for (d, name) in f.documents.iter().zip(case_names(f)) {
            let line = |x: &Finding| {
                let mut t = format!(
                    "{}:{}:{}: [{}] {}: {}",
                    f.path, x.line, x.column, x.rule, x.path, x.message
                );
                if let Some(h) = &x.help {
                    let _ = write!(t, " (help: {h})");
                }
                t
            };
            let errors: Vec<&Finding> = d
                .findings
                .iter()
                .filter(|x| x.severity == Severity::Error)
                .collect();
            let status = match (d.status, errors.first()) {
                (DocStatus::Skipped, _) => {
                    let mut st = TestCaseStatus::skipped();
                    st.set_message(xml_text(d.note.as_deref().unwrap_or("not checked")));
                    st
                }
                (DocStatus::Invalid | DocStatus::Unreadable, Some(first)) => {
                    let kind = if d.status == DocStatus::Unreadable {
                        NonSuccessKind::Error
                    } else {
                        NonSuccessKind::Failure
                    };
                    let mut st = TestCaseStatus::non_success(kind);
                    let text: String = errors.iter().map(|x| line(x) + "\n").collect();
                    st.set_type(xml_text(&first.rule))
                        .set_message(xml_text(&first.message))
                        .set_description(xml_text(&text));
                    st
                }
                _ => TestCaseStatus::success(),
            };
            let mut case = TestCase::new(xml_text(&name), status);
            case.set_classname(xml_text(&f.path))
                .set_time(Duration::from_nanos(d.nanos));
            case.extra.insert("file".into(), xml_text(&f.path).into());
            case.extra.insert("line".into(), d.line.to_string().into());
            let warnings: String = d
                .findings
                .iter()
                .filter(|x| x.severity == Severity::Warning)
                .map(|x| format!("warning: {}\n", line(x)))
                .collect();
            if !warnings.is_empty() {
                case.set_system_out(xml_text(&warnings));
            }
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report.set_time(Duration::from_nanos(total_nanos));
    let mut out = report
        .to_string()
        .unwrap_or_else(|e| format!("<!-- raygate: JUnit serialization failed: {e} -->"));
    out.push('\n');
    out
}

/// Where SARIF paths are relative to, and where rule docs live.
#[derive(Debug, Clone, Default)]
pub struct SarifOptions {
    /// `%SRCROOT%`: an absolute directory; artifact URIs under it are relative to it.
    pub srcroot: Option<std::path::PathBuf>,
    /// Base URL of `docs/rules/` (ending in `/`): `helpUri` is `<base><ID>.md`.
    pub docs_url: Option<String>,
    /// What relative input paths are relative to (the current directory).
    pub cwd: Option<std::path::PathBuf>,
}

/// Percent-encodes what may not appear in a URI path (RFC 3986 `pchar` plus `/`).
fn uri_path(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'/'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b'@'
            );
        if keep {
            o.push(b as char);
        } else {
            let _ = write!(o, "%{b:02X}");
        }
    }
    o
}

/// `file:///abs/dir/` for a directory.
fn file_uri_dir(dir: &std::path::Path) -> String {
    let mut u = format!("file://{}", uri_path(&dir.to_string_lossy()));
    if !u.ends_with('/') {
        u.push('/');
    }
    u
}

/// The SARIF `artifactLocation` of an input path: relative to `%SRCROOT%` when under it.
fn artifact_location(
    path: &str,
    srcroot: Option<&std::path::Path>,
    cwd: Option<&std::path::Path>,
) -> sarif::ArtifactLocation {
    if path == "<stdin>" {
        return sarif::ArtifactLocation::builder()
            .uri("stdin")
            .description(sarif::Message::builder().text("standard input").build())
            .build();
    }
    let p = std::path::Path::new(path);
    let clean: std::path::PathBuf = p
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    if let Some(root) = srcroot {
        let abs = match cwd {
            Some(c) if !clean.is_absolute() => c.join(&clean),
            _ => clean.clone(),
        };
        if let Ok(rel) = abs.strip_prefix(root)
            && !rel
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return sarif::ArtifactLocation::builder()
                .uri(uri_path(&rel.to_string_lossy()))
                .uri_base_id("%SRCROOT%")
                .build();
        }
        return sarif::ArtifactLocation::builder()
            .uri(format!("file://{}", uri_path(&abs.to_string_lossy())))
            .build();
    }
    sarif::ArtifactLocation::builder()
        .uri(uri_path(&clean.to_string_lossy()))
        .build()
}

fn sarif_level(s: Severity) -> serde_json::Value {
    json!(sev_word(s))
}

/// SARIF 2.1.0 by serde-sarif: one run; rules with `shortDescription`, `help` (docs/rules) and
/// `helpUri`; artifact URIs relative to `%SRCROOT%`.
pub fn sarif_report(files: &[FileReport], s: &Summary, o: &SarifOptions) -> String {
    let mut levels: std::collections::BTreeMap<&str, Severity> = Default::default();
    for x in files
        .iter()
        .flat_map(|f| &f.documents)
        .flat_map(|d| &d.findings)
    {
        levels.entry(x.rule.as_str()).or_insert(x.severity);
    }
    // Sorted, so `ruleIndex` is the position in `levels`.
    let index = |r: &str| levels.keys().position(|x| *x == r).unwrap_or(0);
    let mut results = Vec::new();
    for f in files {
        let artifact = artifact_location(&f.path, o.srcroot.as_deref(), o.cwd.as_deref());
        for d in &f.documents {
            let object = d.object();
            for x in &d.findings {
                let physical =
                    sarif::PhysicalLocation::builder().artifact_location(artifact.clone());
                let physical = if x.line > 0 {
                    physical
                        .region(
                            sarif::Region::builder()
                                .start_line(x.line as i64)
                                .start_column(x.column as i64)
                                .end_column((x.column + x.len.max(1)) as i64)
                                .build(),
                        )
                        .build()
                } else {
                    physical.build()
                };
                let mut logical = Vec::new();
                if !x.path.is_empty() {
                    logical.push(
                        sarif::LogicalLocation::builder()
                            .fully_qualified_name(x.path.as_str())
                            .kind("member")
                            .build(),
                    );
                }
                if let Some(obj) = &object {
                    logical.push(
                        sarif::LogicalLocation::builder()
                            .fully_qualified_name(obj.as_str())
                            .kind("object")
                            .build(),
                    );
                }
                let location = sarif::Location::builder().physical_location(physical);
                let location = if logical.is_empty() {
                    location.build()
                } else {
                    location.logical_locations(logical).build()
                };
                let text = match &object {
                    Some(obj) => format!("{obj}: {}", x.message),
                    None => x.message.clone(),
                };
                let level = match x.severity {
                    Severity::Error => sarif::ResultLevel::Error,
                    Severity::Warning => sarif::ResultLevel::Warning,
                };
                let result = sarif::Result::builder()
                    .rule_id(x.rule.as_str())
                    .rule_index(index(&x.rule) as i64)
                    .level(level)
                    .message(sarif::Message::builder().text(text).build())
                    .locations(vec![location]);
                results.push(match &x.help {
                    Some(h) => result
                        .properties(
                            sarif::PropertyBag::builder()
                                .additional_properties([("help".to_string(), json!(h))])
                                .build(),
                        )
                        .build(),
                    None => result.build(),
                });
            }
        }
    }
    let rules: Vec<sarif::ReportingDescriptor> = levels
        .iter()
        .map(|(&id, &level)| {
            let title = super::explain::title(id).unwrap_or(id);
            let text = |t: &str| sarif::MultiformatMessageString::builder().text(t).build();
            let config = sarif::ReportingConfiguration::builder()
                .level(sarif_level(level))
                .build();
            let help_uri = o
                .docs_url
                .as_ref()
                .map(|base| format!("{base}{}.md", uri_path(id)));
            let mut r = sarif::ReportingDescriptor::builder()
                .id(id)
                .short_description(text(title))
                .default_configuration(config)
                .build();
            if let Some(doc) = super::explain::doc(id) {
                r.full_description = Some(text(super::explain::fix(id).unwrap_or(title)));
                r.help = Some(
                    sarif::MultiformatMessageString::builder()
                        .text(doc)
                        .markdown(doc)
                        .build(),
                );
            }
            r.help_uri = help_uri;
            r
        })
        .collect();
    let driver = sarif::ToolComponent::builder()
        .name("raygate")
        .version(crate::long_version())
        .semantic_version(env!("CARGO_PKG_VERSION"))
        .rules(rules)
        .build();
    let invocation = sarif::Invocation::builder()
        .execution_successful(s.unreadable == 0)
        .exit_code(i64::from(s.exit_code()))
        .build();
    let mut run = sarif::Run::builder()
        .tool(sarif::Tool::builder().driver(driver).build())
        .invocations(vec![invocation])
        .column_kind(json!("unicodeCodePoints"))
        .results(results)
        .build();
    if let Some(root) = &o.srcroot {
        run.original_uri_base_ids = Some(
            [(
                "%SRCROOT%".to_string(),
                sarif::ArtifactLocation::builder()
                    .uri(file_uri_dir(root))
                    .build(),
            )]
            .into(),
        );
    }
    let log = sarif::Sarif::builder()
        .schema("https://json.schemastore.org/sarif-2.1.0.json")
        .version(json!(sarif::Version::V2_1_0))
        .runs(vec![run])
        .build();
    let mut out = serde_json::to_string_pretty(&log).unwrap_or_else(|_| "{}".into());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(line: usize, column: usize, source: Option<&str>) -> Finding {
        Finding {
            rule: "W5".into(),
            severity: Severity::Warning,
            path: "spec.x".into(),
            message: "bad".into(),
            help: Some("fix it".into()),
            line,
            column,
            len: 3,
            source: source.map(std::sync::Arc::from),
        }
    }

    fn human(f: &Finding) -> String {
        let mut out = String::new();
        human_finding("f.yaml", Some("RayCluster ns/a"), f, &mut out);
        out
    }

    /// The window [`human_finding`] cuts from a long line prints exactly what the whole line
    /// prints, wherever the span is (start, middle, end, next to multi-byte characters).
    #[test]
    fn long_lines_render_the_same_from_a_window() {
        let line: String = (0..3000)
            .map(|i| match i % 7 {
                0 => "é".to_string(),
                3 => "  ".to_string(),
                _ => format!("k{i}: "),
            })
            .collect();
        let chars = line.chars().count();
        assert!(
            line.len() > 3 * WINDOW_ABOVE && line.len() <= crate::pipeline::SNIPPET_MAX_BYTES,
            "{}",
            line.len()
        );
        let mut compared = 0;
        for column in (1..=chars)
            .step_by(97)
            .chain([1, 2, chars - 3, chars, chars + 1])
        {
            let mut f = finding(12, column, Some(&line));
            f.len = 1 + column % 5;
            let mut whole = String::new();
            // the whole line, as before the window: render it with a threshold above its size
            human_finding_whole("f.yaml", &f, &mut whole);
            let cut = human(&f);
            let whole = whole.replacen("bad", "RayCluster ns/a: bad", 1);
            assert_eq!(cut, whole, "column {column}");
            assert!(cut.contains(&format!("--> f.yaml:12:{column}\n")), "{cut}");
            compared += 1;
        }
        assert!(compared > 100);
    }

    /// `human_finding` without the window, by annotate-snippets on the whole line.
    fn human_finding_whole(path: &str, f: &Finding, out: &mut String) {
        use annotate_snippets::{AnnotationKind, Element, Level, Renderer, Snippet};
        let text = f.source.as_deref().unwrap();
        let mut at = text.char_indices().map(|(i, _)| i).chain([text.len()]);
        let Some(start) = at.nth(f.column - 1) else {
            human_finding(path, None, f, out);
            return;
        };
        let end = text[start..]
            .char_indices()
            .nth(f.len.max(1))
            .map_or(text.len(), |(i, _)| start + i);
        let snippet = Snippet::source(text)
            .line_start(f.line)
            .path(path)
            .annotation(
                AnnotationKind::Primary
                    .span(start..end)
                    .label(f.path.as_str()),
            );
        let group = Level::WARNING
            .primary_title(f.message.as_str())
            .id(f.rule.as_str())
            .elements([
                Element::from(snippet),
                Level::HELP.message(f.help.as_deref().unwrap()).into(),
            ]);
        out.push_str(&Renderer::plain().render(&[group]));
        out.push_str("\n\n");
    }

    #[test]
    fn human_findings_keep_the_location_the_field_and_the_help() {
        assert_eq!(
            human(&finding(7, 3, Some("  x: 1"))),
            "warning[W5]: RayCluster ns/a: bad\n --> f.yaml:7:3\n  |\n7 |   x: 1\n  |   ^^^ spec.x\n  |\n  = help: fix it\n\n"
        );
        // No position: the file alone.
        assert_eq!(
            human(&finding(0, 0, None)),
            "warning[W5]: RayCluster ns/a: bad\n--> f.yaml\n = help: fix it\n\n"
        );
        // No source line (too long), or a column past its end: the location and the field.
        let no_line = "warning[W5]: RayCluster ns/a: bad\n--> f.yaml:7:30\n = field: spec.x\n = help: fix it\n\n";
        assert_eq!(human(&finding(7, 30, None)), no_line);
        assert_eq!(human(&finding(7, 30, Some("  x: 1"))), no_line);
    }

    #[test]
    fn junit_text_has_no_non_xml_characters() {
        assert_eq!(xml_text("a\u{FFFE}b\u{FFFF}"), "a\u{FFFD}b\u{FFFD}");
        let f = FileReport {
            path: "x\u{FFFF}.yaml".into(),
            documents: Vec::new(),
        };
        let x = junit_report(&[f], 0);
        assert!(x.contains("<testsuite name=\"x\u{FFFD}.yaml\""), "{x}");
        assert!(!x.contains('\u{FFFF}'), "{x}");
    }
}
