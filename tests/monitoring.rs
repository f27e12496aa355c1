//! Issue #17 (4): deploy/monitoring — the PrometheusRule and the Grafana dashboard — name only
//! series a running raygate exports, with labels it (or the scrape) puts on them. A real
//! `raygate serve` on 127.0.0.1 gets reviews and is scraped; every metric name and label in
//! every rule expression and dashboard query is looked up in that scrape. The PrometheusRule
//! is checked structurally (the Prometheus Operator's CRD is not available here), and its groups
//! go through `promtool check rules` plus `promtool test rules`: on input series with the label
//! sets and histogram buckets of the scrape, each alert fires on sick values (after its `for`,
//! with its labels and annotations) and none on healthy ones (promtool from
//! `$RAYGATE_PROMTOOL_BIN` or `scripts/promtool-bin.sh`; a missing promtool fails the test).

#[path = "support/template.rs"]
mod template;
mod webhook_common;

use raygate::webhook::client::Proto;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use webhook_common::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const VALIDATE: &str = "/validate-ray-io-v1-raycluster";
/// Labels Prometheus adds to every scraped series (target labels of a ServiceMonitor).
const TARGET_LABELS: [&str; 7] = [
    "job",
    "instance",
    "namespace",
    "pod",
    "service",
    "container",
    "endpoint",
];

/// A metric a PromQL expression selects, with the label names its matchers use.
#[derive(Debug, Clone, PartialEq)]
struct Ref {
    name: String,
    matchers: Vec<String>,
}

/// The metrics an expression selects, and the labels of its `by`/`without`/`on`/`ignoring`
/// clauses. Strings, ranges (`[5m]`), function names and aggregation operators (also when a
/// `by (…)` clause stands between the operator and its parenthesis) are skipped.
fn metric_refs(expr: &str) -> (Vec<Ref>, Vec<String>) {
    const KEYWORDS: [&str; 6] = ["and", "or", "unless", "bool", "offset", "atan2"];
    const AGGREGATIONS: [&str; 14] = [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    const GROUPING: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let b: Vec<char> = expr.chars().collect();
    let (mut refs, mut grouping) = (Vec::<Ref>::new(), Vec::new());
    let ident_start = |c: char| c.is_ascii_alphabetic() || c == '_' || c == ':';
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let skip_ws = |mut i: usize| {
        while i < b.len() && b[i].is_whitespace() {
            i += 1;
        }
        i
    };
    const QUOTES: [char; 3] = ['"', '\'', '`'];
    // the index after the string literal starting at `i` (its quote)
    let past_string = |mut i: usize| {
        let q = b[i];
        i += 1;
        while i < b.len() && b[i] != q {
            if b[i] == '\\' {
                i += 1;
            }
            i += 1;
        }
        i + 1
    };
    // label names of a `{...}` or `(...)` list starting at `i` (the opening char); returns the
    // index after the closing char
    let list = |i: usize, close: char| {
        let mut names = Vec::new();
        let mut j = i + 1;
        let mut expect_name = true;
        while j < b.len() && b[j] != close {
            let c = b[j];
            if QUOTES.contains(&c) {
                j = past_string(j);
                continue;
            }
            if ident_start(c) && expect_name {
                let s = j;
                while j < b.len() && ident(b[j]) {
                    j += 1;
                }
                names.push(b[s..j].iter().collect::<String>());
                expect_name = false;
                continue;
            }
            if c == ',' {
                expect_name = true;
            }
            j += 1;
        }
        (names, j + 1)
    };
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if QUOTES.contains(&c) {
            i = past_string(i);
        } else if c == '[' {
            while i < b.len() && b[i] != ']' {
                i += 1;
            }
            i += 1;
        } else if c == '{' {
            let (names, next) = list(i, '}');
            if let Some(r) = refs.last_mut().filter(|r| r.matchers.is_empty()) {
                r.matchers = names;
            }
            i = next;
        } else if c.is_ascii_digit() || c == '.' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == '.') {
                i += 1;
            }
        } else if ident_start(c) {
            let s = i;
            while i < b.len() && ident(b[i]) {
                i += 1;
            }
            let word: String = b[s..i].iter().collect();
            let n = skip_ws(i);
            if GROUPING.contains(&word.as_str()) {
                if n < b.len() && b[n] == '(' {
                    let (names, next) = list(n, ')');
                    grouping.extend(names);
                    i = next;
                }
            } else if n < b.len() && b[n] == '('
                || KEYWORDS.contains(&word.as_str())
                || AGGREGATIONS.contains(&word.as_str())
            {
                // a function or aggregation (its arguments follow), or an operator
            } else {
                refs.push(Ref {
                    name: word,
                    matchers: Vec::new(),
                });
                if n < b.len() && b[n] == '{' {
                    let (names, next) = list(n, '}');
                    refs.last_mut().unwrap().matchers = names;
                    i = next;
                }
            }
        } else {
            i += 1;
        }
    }
    (refs, grouping)
}

#[test]
fn metric_refs_finds_names_matchers_and_grouping() {
    let (r, g) = metric_refs(
        r#"histogram_quantile(0.99, sum by (le, webhook) (rate(a_bucket{code!="200", job=~"x.*"}[5m]))) / on (pod) b > 2 * 86400 and c"#,
    );
    assert_eq!(
        r,
        [
            Ref {
                name: "a_bucket".into(),
                matchers: vec!["code".into(), "job".into()]
            },
            Ref {
                name: "b".into(),
                matchers: vec![]
            },
            Ref {
                name: "c".into(),
                matchers: vec![]
            }
        ]
    );
    assert_eq!(g, ["le", "webhook", "pod"]);
    let (r, _) = metric_refs(r#"min(x{a="}{"}) - time() < 14 * 86400"#);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].matchers, ["a"]);
    // an aggregation with its clause first, or last, is not a metric
    for (e, grouping) in [
        ("min by (namespace, pod) (x)", &["namespace", "pod"][..]),
        ("sum without (pod) (x)", &["pod"]),
        ("count(x) by (pod)", &["pod"]),
        ("topk (10, x)", &[]),
    ] {
        let (r, g) = metric_refs(e);
        let names: Vec<&str> = r.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["x"], "{e}");
        assert_eq!(g, grouping, "{e}");
    }
    let (r, g) = metric_refs("max by (pod) (a and on (namespace, pod) b) > 2");
    let names: Vec<&str> = r.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        (names, g),
        (
            vec!["a", "b"],
            vec!["pod".to_string(), "namespace".into(), "pod".into()]
        )
    );
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn rule() -> Value {
    yaml(&Path::new(ROOT).join("deploy/monitoring/prometheusrule.yaml"))
}

fn dashboard() -> Value {
    let p = Path::new(ROOT).join("deploy/monitoring/grafana-dashboard.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// Every (where, PromQL) of the rule and the dashboard.
fn expressions() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for g in rule()["spec"]["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            let name = r["alert"].as_str().or(r["record"].as_str()).unwrap();
            out.push((
                format!("rule {name}"),
                r["expr"].as_str().unwrap().to_string(),
            ));
        }
    }
    for p in dashboard()["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push((
                format!("panel {:?}", p["title"].as_str().unwrap_or("")),
                t["expr"].as_str().unwrap().to_string(),
            ));
        }
    }
    for v in dashboard()["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["definition"].as_str() {
            // Grafana's label_values(METRIC, LABEL): METRIC must exist and carry LABEL (or the
            // scrape adds it)
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|r| r.strip_suffix(')'))
                .unwrap_or_else(|| panic!("variable query {q}"));
            let (m, l) = inner.split_once(',').unwrap();
            out.push((
                format!("variable {}", v["name"]),
                format!("count by ({}) ({})", l.trim(), m.trim()),
            ));
        }
    }
    out
}

fn duration_ok(s: &str) -> bool {
    let mut rest = s;
    let mut any = false;
    for unit in ["y", "w", "d", "h", "ms", "m", "s"] {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 && rest[digits..].starts_with(unit) {
            // "m" must not eat the "m" of "ms"
            if unit == "m" && rest[digits..].starts_with("ms") {
                continue;
            }
            rest = &rest[digits + unit.len()..];
            any = true;
        }
    }
    any && rest.is_empty()
}

#[test]
fn prometheus_rule_is_a_well_formed_object() {
    let r = rule();
    assert_eq!(r["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(r["kind"], "PrometheusRule");
    let name = r["metadata"]["name"].as_str().unwrap();
    assert!(
        !name.is_empty()
            && name.len() <= 253
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'),
        "metadata.name {name:?} is not a DNS subdomain"
    );
    let keys: BTreeSet<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from(["apiVersion", "kind", "metadata", "spec"])
    );
    let groups = r["spec"]["groups"].as_array().expect("spec.groups");
    assert!(!groups.is_empty());
    let mut group_names = BTreeSet::new();
    let mut alerts = BTreeSet::new();
    for (gi, g) in groups.iter().enumerate() {
        let gname = g["name"]
            .as_str()
            .unwrap_or_else(|| panic!("groups[{gi}].name"));
        assert!(group_names.insert(gname), "group {gname} twice");
        for (k, _) in g.as_object().unwrap() {
            assert!(
                [
                    "name",
                    "interval",
                    "rules",
                    "partial_response_strategy",
                    "limit"
                ]
                .contains(&k.as_str()),
                "groups[{gi}].{k} is not a PrometheusRule group field"
            );
        }
        let rules = g["rules"].as_array().unwrap();
        assert!(!rules.is_empty());
        for (ri, rl) in rules.iter().enumerate() {
            let at = format!("groups[{gi}].rules[{ri}]");
            let o = rl.as_object().unwrap();
            for k in o.keys() {
                assert!(
                    [
                        "alert",
                        "record",
                        "expr",
                        "for",
                        "keep_firing_for",
                        "labels",
                        "annotations"
                    ]
                    .contains(&k.as_str()),
                    "{at}.{k} is not a rule field"
                );
            }
            assert!(
                o.contains_key("alert") != o.contains_key("record"),
                "{at}: exactly one of alert and record"
            );
            let expr = rl["expr"].as_str().unwrap_or_else(|| panic!("{at}.expr"));
            assert!(!expr.trim().is_empty());
            if let Some(f) = rl.get("for") {
                assert!(duration_ok(f.as_str().unwrap()), "{at}.for {f}");
            }
            for m in ["labels", "annotations"] {
                for (k, v) in rl[m].as_object().into_iter().flatten() {
                    assert!(v.is_string(), "{at}.{m}.{k} must be a string");
                }
            }
            if let Some(a) = rl["alert"].as_str() {
                assert!(
                    a.starts_with("Raygate") && a.chars().all(|c| c.is_ascii_alphanumeric()),
                    "{at}: alert name {a}"
                );
                let sev = rl["labels"]["severity"].as_str().unwrap_or("");
                assert!(
                    ["warning", "critical"].contains(&sev),
                    "{at}: severity {sev:?}"
                );
                assert!(rl["annotations"]["summary"].is_string(), "{at}: summary");
                assert!(
                    rl["annotations"]["description"].is_string(),
                    "{at}: description"
                );
                assert!(
                    alerts.insert((a.to_string(), sev.to_string())),
                    "{at}: {a} {sev} twice"
                );
            }
        }
    }
    // what issue #17 asks for: certificate expiry, p99 latency, the error rate
    for want in [
        "raygate_webhook_certificate_expiry_timestamp_seconds",
        "histogram_quantile(0.99",
        "controller_runtime_webhook_requests_total{code!=\"200\"}",
    ] {
        assert!(
            expressions()
                .iter()
                .any(|(w, e)| w.starts_with("rule ") && e.contains(want)),
            "no rule uses {want}"
        );
    }
}

#[test]
fn grafana_dashboard_is_well_formed() {
    let d = dashboard();
    assert_eq!(d["uid"], "raygate-webhook");
    assert!(d["schemaVersion"].as_u64().unwrap() >= 36);
    let mut ids = BTreeSet::new();
    for p in d["panels"].as_array().unwrap() {
        let id = p["id"].as_u64().expect("panel id");
        assert!(ids.insert(id), "panel id {id} twice");
        let g = &p["gridPos"];
        let (x, w) = (g["x"].as_u64().unwrap(), g["w"].as_u64().unwrap());
        assert!(x + w <= 24, "panel {id} is wider than the grid");
        if p["type"] != "row" {
            assert_eq!(p["datasource"]["uid"], "${datasource}", "panel {id}");
            let targets = p["targets"].as_array().expect("targets");
            assert!(!targets.is_empty(), "panel {id} has no query");
            for t in targets {
                assert!(
                    t["expr"].as_str().unwrap().contains("job=~\"$job\""),
                    "panel {id}: every query is filtered by the job variable"
                );
            }
        }
    }
}

/// A scrape of a `raygate serve` that has answered valid, invalid and oversized reviews.
async fn scrape_running_raygate() -> Vec<Sample> {
    let p = spawn_serve("json", &["--body-limit", "65536"]);
    let cfg = raygate::webhook::client::tls_config(&p.ca_pem, Proto::H2).unwrap();
    let mut c = raygate::webhook::client::connect(p.addr, "localhost", cfg)
        .await
        .unwrap();
    let (_, rc) = samples().into_iter().next().unwrap();
    let mut bad = rc.clone();
    bad["spec"]["workerGroupSpecs"] = json!([{"groupName": "w", "minReplicas": 5, "maxReplicas": 1,
        "rayStartParams": {}, "template": {"spec": {"containers": [{"name": "w", "image": "rayproject/ray:2.60.0"}]}}}]);
    for (i, obj) in [&rc, &bad, &rc].into_iter().enumerate() {
        post_json(
            &mut c,
            VALIDATE,
            &review(&format!("u{i}"), "CREATE", Some(obj), None),
        )
        .await;
    }
    c.post(VALIDATE, bytes::Bytes::from(vec![b' '; 70_000]))
        .await
        .unwrap();
    let (status, body) = admin_get(p.admin, "/metrics").await;
    assert_eq!(status, 200);
    parse_exposition(&body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_and_label_referenced_is_exported() {
    let scraped = scrape_running_raygate().await;
    let mut labels_of: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for s in &scraped {
        labels_of
            .entry(s.name.as_str())
            .or_default()
            .extend(s.labels.keys().map(String::as_str));
    }
    let mut problems = Vec::new();
    let exprs = expressions();
    assert!(exprs.len() >= 15, "{exprs:?}");
    for (at, expr) in &exprs {
        let (refs, grouping) = metric_refs(expr);
        if refs.is_empty() {
            problems.push(format!("{at}: no metric in {expr}"));
        }
        let mut available: BTreeSet<&str> = TARGET_LABELS.into_iter().collect();
        for r in &refs {
            let Some(labels) = labels_of.get(r.name.as_str()) else {
                problems.push(format!("{at}: {} is not exported", r.name));
                continue;
            };
            available.extend(labels.iter().copied());
            for m in &r.matchers {
                if !labels.contains(m.as_str()) && !TARGET_LABELS.contains(&m.as_str()) {
                    problems.push(format!("{at}: {} has no label {m}", r.name));
                }
            }
        }
        for l in &grouping {
            if !available.contains(l.as_str()) {
                problems.push(format!("{at}: grouping label {l} is on none of {refs:?}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn promtool() -> PathBuf {
    if let Some(p) = std::env::var_os("RAYGATE_PROMTOOL_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let script = Path::new(ROOT).join("scripts/promtool-bin.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed: the monitoring test needs promtool (Go >= 1.26 and the Go module proxy)",
        script.display()
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn run_promtool(args: &[&str], dir: &Path) -> String {
    let o = Command::new(promtool())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "promtool {args:?}:\n{text}");
    text
}

/// A promtool series string for a sample with `labels` added.
fn series(s: &Sample, extra: &[(&str, &str)]) -> String {
    let mut l = s.labels.clone();
    for (k, v) in extra {
        l.insert(k.to_string(), v.to_string());
    }
    let inner: Vec<String> = l.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{}{{{}}}", s.name, inner.join(","))
}

/// The webhook pod's target labels, as a ServiceMonitor on the chart's Service adds them.
const WEBHOOK_POD: [(&str, &str); 3] = [
    ("namespace", "raygate-system"),
    ("pod", "raygate-webhook-0"),
    ("job", "raygate-webhook"),
];
/// The autoscaler's pod: it exports `process_*` too, but is not the webhook.
const AUTOSCALER_POD: [(&str, &str); 3] = [
    ("namespace", "raygate-system"),
    ("pod", "raygate-autoscaler-0"),
    ("job", "raygate-autoscaler-metrics"),
];
const MIB: u64 = 1024 * 1024;

/// promtool input series over 26 h at 1 m, built from the scrape's label sets and histogram
/// buckets: `sick` makes every alert's condition true, otherwise every value is a healthy one.
/// Both use the same series (names and labels), so an alert staying silent on the healthy
/// input is because of the values, not a series missing.
fn input_series(scraped: &[Sample], sick: bool) -> Vec<Value> {
    let first = |name: &str, f: &dyn Fn(&Sample) -> bool| {
        scraped
            .iter()
            .find(|s| s.name == name && f(s))
            .unwrap_or_else(|| panic!("{name} not scraped"))
    };
    let path = |s: &Sample| s.labels.get("webhook").map(String::as_str) == Some(VALIDATE);
    let code = |c: &'static str| move |s: &Sample| path(s) && s.labels["code"] == c;
    let at =
        |s: &Sample, values: String| json!({"series": series(s, &WEBHOOK_POD), "values": values});
    let mut input = Vec::new();
    // notAfter 3 days after t=0 (promtool's time() starts at 0), or 90 days
    let expiry = first(
        "raygate_webhook_certificate_expiry_timestamp_seconds",
        &|_| true,
    );
    let days = if sick { 3 } else { 90 };
    input.push(at(expiry, format!("{}+0x1600", days * 86_400)));
    // 90 answers 200 a minute and 10 (10 %) or 1 (1.1 %) answers 413
    input.push(at(
        first("controller_runtime_webhook_requests_total", &code("200")),
        "0+90x1600".into(),
    ));
    input.push(at(
        first("controller_runtime_webhook_requests_total", &code("413")),
        format!("0+{}x1600", if sick { 10 } else { 1 }),
    ));
    // 100 requests a minute: all slower than 0.8192 s (every bucket below 1 s stays at 0), or
    // all in the first bucket (50 µs)
    let buckets: Vec<&Sample> = scraped
        .iter()
        .filter(|s| s.name == "controller_runtime_webhook_latency_seconds_bucket" && path(s))
        .collect();
    assert!(buckets.len() >= 10, "{buckets:?}");
    for b in buckets {
        let le = &b.labels["le"];
        let slow = le == "+Inf" || le.parse::<f64>().unwrap() >= 1.0;
        input.push(at(
            b,
            (if slow || !sick {
                "0+100x1600"
            } else {
                "0+0x1600"
            })
            .into(),
        ));
    }
    // a changed certificate pair that fails to load every minute for 40 minutes, or never
    let reload = first("raygate_webhook_certificate_reload_failures_total", &|_| {
        true
    });
    input.push(at(
        reload,
        (if sick { "0+1x40" } else { "0+0x1600" }).into(),
    ));
    // the webhook's resident memory: 250 MiB or 50 MiB; the autoscaler's at 250 MiB in both
    let rss = first("process_resident_memory_bytes", &|_| true);
    input.push(at(
        rss,
        format!("{}+0x1600", if sick { 250 } else { 50 } * MIB),
    ));
    input.push(
        json!({"series": series(rss, &AUTOSCALER_POD), "values": format!("{}+0x1600", 250 * MIB)}),
    );
    input
}

/// An alert a test expects: (severity, the labels of the expression's result, the humanized
/// `$value` its annotations render).
type Expected<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

/// One `alert_rule_test` entry: `alert` at `eval_time` fires exactly `alerts`.
fn alert_test(eval_time: &str, alert: &str, alerts: &[Expected]) -> Value {
    let exp: Vec<Value> = alerts
        .iter()
        .map(|(severity, labels, value)| {
            let rl = rule_named(alert, severity);
            let mut l: BTreeMap<String, String> = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            for (k, v) in rl["labels"].as_object().unwrap() {
                l.insert(k.clone(), v.as_str().unwrap().to_string());
            }
            let ann: BTreeMap<String, String> = rl["annotations"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), render(v.as_str().unwrap(), &l, value)))
                .collect();
            json!({"exp_labels": l, "exp_annotations": ann})
        })
        .collect();
    json!({"eval_time": eval_time, "alertname": alert, "exp_alerts": exp})
}

fn rule_named(alert: &str, severity: &str) -> Value {
    rule()["spec"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .find(|r| r["alert"] == alert && r["labels"]["severity"] == severity)
        .cloned()
        .unwrap_or_else(|| panic!("no rule {alert} {severity}"))
}

/// An annotation as Prometheus renders it: `{{ $labels.X }}` from `labels`, and
/// `{{ $value | humanize… }}` as `value` (the humanized text the test expects).
fn render(template: &str, labels: &BTreeMap<String, String>, value: &str) -> String {
    template::expand(template, "{{", |action| {
        if let Some(l) = action.strip_prefix("$labels.") {
            labels
                .get(l)
                .unwrap_or_else(|| panic!("no label {l}: {template}"))
                .clone()
        } else if action.starts_with("$value |") {
            value.to_string()
        } else {
            panic!("template action {action:?} in {template}")
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_checks_the_rules_and_each_alert_fires_on_sick_series_only() {
    let dir = tempfile::tempdir().unwrap();
    let groups = json!({"groups": rule()["spec"]["groups"]});
    std::fs::write(
        dir.path().join("rules.yaml"),
        serde_json::to_string_pretty(&groups).unwrap(),
    )
    .unwrap();
    let out = run_promtool(&["check", "rules", "rules.yaml"], dir.path());
    assert!(out.contains("SUCCESS"), "{out}");

    let scraped = scrape_running_raygate().await;
    let pod = &WEBHOOK_POD[..2];
    let with_job = &WEBHOOK_POD[..];
    let webhook = &[("webhook", VALIDATE)][..];
    let alerts: BTreeSet<String> = rule()["spec"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .filter_map(|r| r["alert"].as_str().map(str::to_string))
        .collect();
    let cert = "RaygateWebhookCertificateExpiresSoon";
    // (silent at, firing at, alert, what fires)
    let cases: [(&str, &str, &str, &[Expected]); 5] = [
        // `for: 1h` on 3 days left: the warning at 2 h (2 d 22 h left)
        ("30m", "2h", cert, &[("warning", pod, "2d 22h 0m 0s")]),
        // failures from 1 m, `for: 15m`
        (
            "10m",
            "20m",
            "RaygateWebhookCertificateReloadFailing",
            &[("warning", with_job, "")],
        ),
        // p99 inside (0.8192 s, 1.6384 s]: 0.8192 + 0.99 × 0.8192 = 1.630208 s; `for: 10m`
        (
            "5m",
            "20m",
            "RaygateWebhookLatencyHigh",
            &[("warning", webhook, "1.63s")],
        ),
        (
            "5m",
            "20m",
            "RaygateWebhookErrors",
            &[("warning", webhook, "10%")],
        ),
        // the webhook pod at 250 MiB, `for: 15m`; the autoscaler's 250 MiB never alerts
        (
            "10m",
            "20m",
            "RaygateWebhookMemoryHigh",
            &[("warning", pod, "250Mi")],
        ),
    ];
    let mut sick: Vec<Value> = cases
        .iter()
        .flat_map(|(silent, fires, alert, exp)| {
            [
                alert_test(silent, alert, &[]),
                alert_test(fires, alert, exp),
            ]
        })
        .collect();
    // 2 days left after 24 h, `for: 10m`: the critical too at 25 h
    sick.push(alert_test(
        "25h",
        cert,
        &[
            ("warning", pod, "1d 23h 0m 0s"),
            ("critical", pod, "1d 23h 0m 0s"),
        ],
    ));
    let tested: BTreeSet<String> = sick
        .iter()
        .map(|t| t["alertname"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tested, alerts, "every alert has a firing case");
    let healthy: Vec<Value> = ["30m", "2h", "25h"]
        .iter()
        .flat_map(|t| alerts.iter().map(move |a| alert_test(t, a, &[])))
        .collect();
    let tests = json!({
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "fuzzy_compare": true,
        "tests": [
            {
                "name": "sick",
                "interval": "1m",
                "input_series": input_series(&scraped, true),
                "alert_rule_test": sick,
                "promql_expr_test": [
                    {"expr": rule_named("RaygateWebhookLatencyHigh", "warning")["expr"],
                     "eval_time": "20m",
                     "exp_samples": [{"labels": format!("{{webhook=\"{VALIDATE}\"}}"),
                                      "value": 0.8192 * 1.99}]},
                    {"expr": rule_named("RaygateWebhookErrors", "warning")["expr"],
                     "eval_time": "20m",
                     "exp_samples": [{"labels": format!("{{webhook=\"{VALIDATE}\"}}"), "value": 0.1}]},
                ],
            },
            {
                "name": "healthy",
                "interval": "1m",
                "input_series": input_series(&scraped, false),
                "alert_rule_test": healthy,
            },
        ]
    });
    std::fs::write(
        dir.path().join("tests.yaml"),
        serde_json::to_string_pretty(&tests).unwrap(),
    )
    .unwrap();
    let out = run_promtool(&["test", "rules", "tests.yaml"], dir.path());
    assert!(out.contains("SUCCESS"), "{out}");

    // The test is not vacuous: the sick input with the healthy expectations fails, per alert.
    let mut inverted = tests.clone();
    inverted["tests"][0]["alert_rule_test"] = inverted["tests"][1]["alert_rule_test"].clone();
    inverted["tests"][0]
        .as_object_mut()
        .unwrap()
        .remove("promql_expr_test");
    std::fs::write(
        dir.path().join("inverted.yaml"),
        serde_json::to_string_pretty(&inverted).unwrap(),
    )
    .unwrap();
    let o = Command::new(promtool())
        .args(["test", "rules", "inverted.yaml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{text}");
    for a in &alerts {
        assert!(
            text.contains(&format!("alertname: {a},")),
            "{a} does not fire:\n{text}"
        );
    }
}
