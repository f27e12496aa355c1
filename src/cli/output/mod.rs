//! Renderers for `raygate validate`: human (rustc-like), json, junit, sarif, github.

use crate::pipeline::{DocReport, DocStatus, FileReport, Finding};
use crate::violation::Severity;
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeSet;
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
pub struct Summary {
    pub files: usize,
    pub documents: usize,
    pub rayclusters: usize,
    pub rayjobs: usize,
    pub rayservices: usize,
    pub raycronjobs: usize,
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
                match d.kind.as_deref() {
                    Some("RayJob") => self.rayjobs += 1,
                    Some("RayService") => self.rayservices += 1,
                    Some("RayCronJob") => self.raycronjobs += 1,
                    _ => self.rayclusters += 1,
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

    /// KubeRay objects checked: `N RayCluster(s)`, then the other kinds that occurred.
    pub fn objects(&self) -> String {
        let mut s = format!("{} RayCluster(s)", self.rayclusters);
        for (n, k) in [
            (self.rayjobs, "RayJob"),
            (self.rayservices, "RayService"),
            (self.raycronjobs, "RayCronJob"),
        ] {
            if n > 0 {
                let _ = write!(s, ", {n} {k}(s)");
            }
        }
        s
    }

    /// Objects of any of the four kinds.
    pub fn checked(&self) -> usize {
        self.rayclusters + self.rayjobs + self.rayservices + self.raycronjobs
    }

    pub fn line(&self) -> String {
        let mut s = format!(
            "{} file(s), {}: {} valid, {} invalid; {} other document(s) skipped",
            self.files,
            self.objects(),
            self.valid,
            self.invalid,
            self.skipped
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

/// rustc-style rendering of one finding.
pub fn human_finding(path: &str, f: &Finding, out: &mut String) {
    let _ = writeln!(out, "{}[{}]: {}", sev_word(f.severity), f.rule, f.message);
    if f.line == 0 {
        let _ = writeln!(out, "  --> {path}");
        out.push('\n');
        return;
    }
    let ln = f.line.to_string();
    let pad = " ".repeat(ln.len());
    let _ = writeln!(out, "{pad}--> {path}:{}:{}", f.line, f.column);
    match &f.source {
        Some(src) => {
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{ln} | {}", src.text);
            // Keep tabs so the carets line up under the field.
            let caret_pad: String = src
                .text
                .chars()
                .chain(std::iter::repeat(' '))
                .take(src.col.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let carets = "^".repeat(f.len.max(1));
            if f.path.is_empty() {
                let _ = writeln!(out, "{pad} | {caret_pad}{carets}");
            } else {
                let _ = writeln!(out, "{pad} | {caret_pad}{carets} {}", f.path);
            }
            let _ = writeln!(out, "{pad} |");
        }
        None => {
            if !f.path.is_empty() {
                let _ = writeln!(out, "{pad} = field: {}", f.path);
            }
        }
    }
    out.push('\n');
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
        } else if s.checked() > 0 {
            "OK"
        } else {
            "no RayCluster"
        };
        let _ = writeln!(
            out,
            "{}: {verdict} ({}, {} error(s), {} warning(s), {} skipped)",
            f.path,
            s.objects(),
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
        for x in &d.findings {
            human_finding(&f.path, x, out);
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
    let v = json!({"files": files, "summary": s, "exitCode": s.exit_code()});
    let mut out = serde_json::to_string_pretty(&v).unwrap_or_else(|_| "{}".into());
    out.push('\n');
    out
}

fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            // XML 1.0 forbids most control characters even as references.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => o.push('\u{FFFD}'),
            '\u{FFFE}' | '\u{FFFF}' => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

fn case_name(d: &DocReport) -> String {
    format!(
        "{}/{} (line {})",
        d.kind.as_deref().unwrap_or("document"),
        d.name.as_deref().unwrap_or("-"),
        d.line
    )
}

/// JUnit XML: one testsuite per file, one testcase per document.
pub fn junit_report(files: &[FileReport], s: &Summary) -> String {
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        "<testsuites name=\"raygate validate\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">",
        s.documents, s.invalid, s.unreadable, s.skipped
    );
    for f in files {
        let mut fs = Summary::default();
        fs.add(f);
        let _ = writeln!(
            o,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">",
            xml_escape(&f.path),
            fs.documents,
            fs.invalid,
            fs.unreadable,
            fs.skipped
        );
        for d in &f.documents {
            let _ = write!(
                o,
                "    <testcase name=\"{}\" classname=\"{}\"",
                xml_escape(&case_name(d)),
                xml_escape(&f.path)
            );
            let body: Vec<&Finding> = d.findings.iter().collect();
            match d.status {
                DocStatus::Skipped => {
                    let _ = writeln!(
                        o,
                        "><skipped message=\"{}\"/></testcase>",
                        xml_escape(d.note.as_deref().unwrap_or("not a RayCluster"))
                    );
                }
                DocStatus::Valid if body.is_empty() => {
                    o.push_str("/>\n");
                }
                _ => {
                    o.push_str(">\n");
                    let tag = if d.status == DocStatus::Unreadable {
                        "error"
                    } else {
                        "failure"
                    };
                    let errors: Vec<&&Finding> = body
                        .iter()
                        .filter(|x| x.severity == Severity::Error)
                        .collect();
                    if let Some(first) = errors.first() {
                        let mut text = String::new();
                        for x in &errors {
                            let _ = writeln!(
                                text,
                                "{}:{}:{}: [{}] {}: {}",
                                f.path, x.line, x.column, x.rule, x.path, x.message
                            );
                        }
                        let _ = writeln!(
                            o,
                            "      <{tag} type=\"{}\" message=\"{}\">{}</{tag}>",
                            xml_escape(&first.rule),
                            xml_escape(&first.message),
                            xml_escape(&text)
                        );
                    }
                    let warns: Vec<&&Finding> = body
                        .iter()
                        .filter(|x| x.severity == Severity::Warning)
                        .collect();
                    if !warns.is_empty() {
                        let mut text = String::new();
                        for x in warns {
                            let _ = writeln!(
                                text,
                                "warning: {}:{}:{}: [{}] {}: {}",
                                f.path, x.line, x.column, x.rule, x.path, x.message
                            );
                        }
                        let _ = writeln!(o, "      <system-out>{}</system-out>", xml_escape(&text));
                    }
                    o.push_str("    </testcase>\n");
                }
            }
        }
        o.push_str("  </testsuite>\n");
    }
    o.push_str("</testsuites>\n");
    o
}

/// SARIF 2.1.0.
pub fn sarif_report(files: &[FileReport]) -> String {
    let mut rules = BTreeSet::new();
    let mut results = Vec::new();
    for f in files {
        for d in &f.documents {
            for x in &d.findings {
                rules.insert(x.rule.clone());
                let mut loc = json!({
                    "physicalLocation": {
                        "artifactLocation": {"uri": f.path.replace('\\', "/")},
                    }
                });
                if x.line > 0 {
                    loc["physicalLocation"]["region"] =
                        json!({"startLine": x.line, "startColumn": x.column});
                }
                if !x.path.is_empty() {
                    loc["logicalLocations"] =
                        json!([{"fullyQualifiedName": x.path, "kind": "member"}]);
                }
                results.push(json!({
                    "ruleId": x.rule,
                    "level": match x.severity { Severity::Error => "error", Severity::Warning => "warning" },
                    "message": {"text": x.message},
                    "locations": [loc],
                }));
            }
        }
    }
    let v = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "raygate",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules.iter().map(|r| json!({"id": r})).collect::<Vec<_>>(),
            }},
            "results": results,
        }]
    });
    let mut out = serde_json::to_string_pretty(&v).unwrap_or_else(|_| "{}".into());
    out.push('\n');
    out
}
