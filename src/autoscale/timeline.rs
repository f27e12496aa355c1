//! The autoscaling timeline of a run: per iteration and worker group, the pending demand Ray
//! reported, the group's `replicas` after the decision, the worker pods alive, and what the
//! decision launched and terminated. `raygate autoscale local|run --timeline FILE.csv` records it
//! (the file I/O is `crate::timeline_file`'s);
//! [`render_svg`] plots it (demand, replicas and pods over time, decisions as markers). Pure:
//! rows in, text out.

use super::types::Plan;
use serde_json::Value;
use std::fmt::Write as _;

pub const HEADER: &str = "t_seconds,group,demand,replicas,pods,launch,terminate";

/// The rows of one iteration: one per worker group of `cluster` (the RayCluster after the
/// iteration's write), named by `label(groupName)`, with the cluster's pending `demand`, the
/// group's `replicas`, its live worker pods `pods(groupName)`, and what `applied` (the plan whose
/// patch was written, if any) launched and terminated in it.
pub fn rows_of(
    t_s: f64,
    cluster: &Value,
    demand: u64,
    applied: Option<&Plan>,
    label: impl Fn(&str) -> String,
    pods: impl Fn(&str) -> u64,
) -> Vec<Row> {
    cluster
        .pointer("/spec/workerGroupSpecs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|g| {
            let group = g["groupName"].as_str().unwrap_or("");
            let gp = applied.and_then(|p| p.groups.iter().find(|x| x.name == group));
            Row {
                t_s,
                group: label(group),
                demand,
                replicas: g["replicas"].as_u64().unwrap_or(0),
                pods: pods(group),
                launch: gp.map_or(0, |g| u64::from(g.launch)),
                terminate: gp.map_or(0, |g| g.terminate.len() as u64),
            }
        })
        .collect()
}

/// One worker group at one iteration.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Seconds since the run started.
    pub t_s: f64,
    pub group: String,
    /// Pending resource requests Ray reported (tasks/actors, placement-group bundles,
    /// `request_resources` bundles), the whole cluster's.
    pub demand: u64,
    /// The group's `replicas` after this iteration's decision.
    pub replicas: u64,
    /// Worker pods of the group alive (started and not being stopped) after the iteration.
    pub pods: u64,
    /// Pods this iteration's applied decision launched.
    pub launch: u64,
    /// Pods this iteration's applied decision named in `workersToDelete`.
    pub terminate: u64,
}

impl Row {
    pub fn csv(&self) -> String {
        format!(
            "{:.3},{},{},{},{},{},{}",
            self.t_s,
            self.group,
            self.demand,
            self.replicas,
            self.pods,
            self.launch,
            self.terminate
        )
    }
}

/// Parses a timeline CSV (the [`HEADER`] line, then rows). Errors name the line and column.
pub fn parse_csv(name: &str, text: &str) -> Result<Vec<Row>, String> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, h)) if h.trim_end() == HEADER => {}
        Some((_, h)) => {
            return Err(format!(
                "{name}:1: expected the header {HEADER:?}, found {h:?}"
            ));
        }
        None => return Err(format!("{name}: empty (no header)")),
    }
    let mut rows = Vec::new();
    for (i, line) in lines {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 7 {
            return Err(format!(
                "{name}:{}: {} fields, expected 7 ({HEADER})",
                i + 1,
                f.len()
            ));
        }
        let col = |k: usize| -> usize { f[..k].iter().map(|s| s.len() + 1).sum::<usize>() + 1 };
        let int = |k: usize| -> Result<u64, String> {
            f[k].parse::<u64>().map_err(|e| {
                format!(
                    "{name}:{}:{}: {}: {e}",
                    i + 1,
                    col(k),
                    HEADER.split(',').nth(k).unwrap_or("")
                )
            })
        };
        let t_s = f[0]
            .parse::<f64>()
            .ok()
            .filter(|t| t.is_finite() && *t >= 0.0)
            .ok_or_else(|| format!("{name}:{}:1: t_seconds {:?} is not a time", i + 1, f[0]))?;
        if f[1].is_empty() {
            return Err(format!("{name}:{}:{}: empty group", i + 1, col(1)));
        }
        rows.push(Row {
            t_s,
            group: f[1].to_string(),
            demand: int(2)?,
            replicas: int(3)?,
            pods: int(4)?,
            launch: int(5)?,
            terminate: int(6)?,
        });
    }
    Ok(rows)
}

/// Plot size and margins (pixels).
pub const WIDTH: f64 = 860.0;
pub const HEIGHT: f64 = 380.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 190.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 44.0;

/// The plot's mapping from (seconds, count) to pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Axes {
    pub t_max: f64,
    pub y_max: u64,
}

impl Axes {
    pub fn of(rows: &[Row]) -> Axes {
        let t_max = rows.iter().map(|r| r.t_s).fold(0.0, f64::max).max(1.0);
        let y_max = rows
            .iter()
            .map(|r| r.demand.max(r.replicas).max(r.pods))
            .max()
            .unwrap_or(0)
            .max(1);
        Axes { t_max, y_max }
    }
    pub fn x(&self, t: f64) -> f64 {
        LEFT + (WIDTH - LEFT - RIGHT) * t / self.t_max
    }
    pub fn y(&self, v: u64) -> f64 {
        HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * v as f64 / self.y_max as f64
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Groups in first-seen order.
pub fn groups(rows: &[Row]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in rows {
        if !out.contains(&r.group) {
            out.push(r.group.clone());
        }
    }
    out
}

/// A step line through (t, v): each value holds until the next sample.
fn steps(ax: &Axes, pts: &[(f64, u64)]) -> String {
    let mut s = String::new();
    let mut prev: Option<u64> = None;
    for &(t, v) in pts {
        if let Some(p) = prev
            && p != v
        {
            let _ = write!(s, "{:.1},{:.1} ", ax.x(t), ax.y(p));
        }
        let _ = write!(s, "{:.1},{:.1} ", ax.x(t), ax.y(v));
        prev = Some(v);
    }
    s.trim_end().to_string()
}

const COLORS: [&str; 6] = [
    "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// An SVG plot of the timeline: demand (one line for the cluster), and per group `replicas`
/// (solid) and live pods (dashed) as step lines over seconds, launches (▲) and terminations
/// (▼) as markers at the iteration that decided them. Every line carries
/// `data-series="demand"`, `"replicas GROUP"` or `"pods GROUP"`.
pub fn render_svg(rows: &[Row], title: &str) -> String {
    let ax = Axes::of(rows);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r##"<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="22" font-size="14" font-weight="bold">{}</text>"#,
        esc(title)
    );
    // axes and grid
    let (x0, x1, y0, y1) = (ax.x(0.0), ax.x(ax.t_max), ax.y(0), ax.y(ax.y_max));
    let y_step = (ax.y_max as f64 / 6.0).ceil().max(1.0) as u64;
    let mut v = 0;
    while v <= ax.y_max {
        let y = ax.y(v);
        let _ = writeln!(
            s,
            r##"<line x1="{x0:.1}" y1="{y:.1}" x2="{x1:.1}" y2="{y:.1}" stroke="#e0e0e0"/><text class="ytick" x="{:.1}" y="{:.1}" text-anchor="end">{v}</text>"##,
            x0 - 6.0,
            y + 4.0
        );
        v += y_step;
    }
    let t_step = nice_step(ax.t_max / 8.0);
    let mut t = 0.0;
    while t <= ax.t_max + 1e-9 {
        let x = ax.x(t);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{y0:.1}" x2="{x:.1}" y2="{:.1}" stroke="#808080"/><text class="xtick" x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            y0 + 4.0,
            y0 + 18.0,
            trim_num(t)
        );
        t += t_step;
    }
    let _ = writeln!(
        s,
        r##"<line x1="{x0:.1}" y1="{y0:.1}" x2="{x1:.1}" y2="{y0:.1}" stroke="#000000"/><line x1="{x0:.1}" y1="{y0:.1}" x2="{x0:.1}" y2="{y1:.1}" stroke="#000000"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">seconds since start</text>"#,
        (x0 + x1) / 2.0,
        HEIGHT - 8.0
    );
    // demand: once per iteration (the first group's row carries it)
    let gs = groups(rows);
    let first = gs.first().cloned().unwrap_or_default();
    let demand: Vec<(f64, u64)> = rows
        .iter()
        .filter(|r| r.group == first)
        .map(|r| (r.t_s, r.demand))
        .collect();
    let mut legend: Vec<(String, String, &str)> = Vec::new();
    let _ = writeln!(
        s,
        r##"<polyline data-series="demand" fill="none" stroke="#d62728" stroke-width="2" points="{}"/>"##,
        steps(&ax, &demand)
    );
    legend.push(("demand (pending requests)".into(), "#d62728".into(), ""));
    for (i, g) in gs.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let mine: Vec<&Row> = rows.iter().filter(|r| &r.group == g).collect();
        let rep: Vec<(f64, u64)> = mine.iter().map(|r| (r.t_s, r.replicas)).collect();
        let pods: Vec<(f64, u64)> = mine.iter().map(|r| (r.t_s, r.pods)).collect();
        let _ = writeln!(
            s,
            r#"<polyline data-series="replicas {}" fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            esc(g),
            steps(&ax, &rep)
        );
        let _ = writeln!(
            s,
            r#"<polyline data-series="pods {}" fill="none" stroke="{color}" stroke-width="1.5" stroke-dasharray="5,3" points="{}"/>"#,
            esc(g),
            steps(&ax, &pods)
        );
        for r in &mine {
            let x = ax.x(r.t_s);
            if r.launch > 0 {
                let y = ax.y(r.replicas);
                let _ = writeln!(
                    s,
                    r#"<path data-launch="{} {}" d="M{:.1},{:.1} l5,9 h-10 z" fill="{color}"><title>{}: launch {} at {:.1}s</title></path>"#,
                    esc(g),
                    r.launch,
                    x,
                    y - 12.0,
                    esc(g),
                    r.launch,
                    r.t_s
                );
            }
            if r.terminate > 0 {
                let y = ax.y(r.replicas);
                let _ = writeln!(
                    s,
                    r#"<path data-terminate="{} {}" d="M{:.1},{:.1} l5,-9 h-10 z" fill="{color}"><title>{}: terminate {} at {:.1}s</title></path>"#,
                    esc(g),
                    r.terminate,
                    x,
                    y + 12.0,
                    esc(g),
                    r.terminate,
                    r.t_s
                );
            }
        }
        legend.push((format!("{g}: replicas"), color.into(), ""));
        legend.push((format!("{g}: pods"), color.into(), "5,3"));
    }
    legend.push(("▲ launch  ▼ terminate".into(), "#000000".into(), "none"));
    for (i, (label, color, dash)) in legend.iter().enumerate() {
        let y = TOP + 10.0 + 20.0 * i as f64;
        let lx = WIDTH - RIGHT + 16.0;
        if *dash != "none" {
            let _ = writeln!(
                s,
                r#"<line x1="{lx:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{color}" stroke-width="2" stroke-dasharray="{}"/>"#,
                lx + 22.0,
                if dash.is_empty() { "none" } else { dash }
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 28.0,
            y + 4.0,
            esc(label)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(1e-3);
    let p = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= raw {
            return m * p;
        }
    }
    10.0 * p
}

fn trim_num(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t: f64, g: &str, d: u64, r: u64, p: u64, l: u64, x: u64) -> Row {
        Row {
            t_s: t,
            group: g.into(),
            demand: d,
            replicas: r,
            pods: p,
            launch: l,
            terminate: x,
        }
    }

    #[test]
    fn csv_round_trip_and_errors_name_line_and_column() {
        let rows = vec![row(0.0, "g", 2, 2, 0, 2, 0), row(1.5, "g", 0, 1, 2, 0, 1)];
        let text = format!(
            "{HEADER}\n{}\n",
            rows.iter().map(Row::csv).collect::<Vec<_>>().join("\n")
        );
        assert_eq!(parse_csv("t.csv", &text).unwrap(), rows);
        assert_eq!(
            parse_csv("t.csv", &format!("{HEADER}\n1.0,g,2,x,0,0,0\n")).unwrap_err(),
            "t.csv:2:9: replicas: invalid digit found in string"
        );
        assert!(
            parse_csv("t.csv", "a,b\n")
                .unwrap_err()
                .starts_with("t.csv:1: expected")
        );
        assert!(
            parse_csv("t.csv", &format!("{HEADER}\n1,g,2\n"))
                .unwrap_err()
                .contains("t.csv:2: 3 fields")
        );
        assert!(parse_csv("t.csv", "").is_err());
    }

    #[test]
    fn steps_hold_the_value_until_the_next_sample() {
        let ax = Axes {
            t_max: 10.0,
            y_max: 4,
        };
        let p = steps(&ax, &[(0.0, 0), (5.0, 2), (10.0, 2)]);
        let pts: Vec<&str> = p.split(' ').collect();
        // (0,0) (5,0) (5,2) (10,2)
        assert_eq!(pts.len(), 4, "{p}");
        assert_eq!(pts[1].split(',').nth(1), pts[0].split(',').nth(1));
        assert_eq!(pts[1].split(',').next(), pts[2].split(',').next());
    }

    #[test]
    fn svg_has_a_line_per_series_and_a_marker_per_decision() {
        let rows = vec![
            row(0.0, "a", 3, 2, 0, 2, 0),
            row(0.0, "b<x>", 3, 1, 0, 1, 0),
            row(4.0, "a", 0, 1, 2, 0, 1),
            row(4.0, "b<x>", 0, 1, 1, 0, 0),
        ];
        let svg = render_svg(&rows, "t");
        for series in [
            "demand",
            "replicas a",
            "pods a",
            "replicas b&lt;x&gt;",
            "pods b&lt;x&gt;",
        ] {
            assert_eq!(
                svg.matches(&format!("data-series=\"{series}\"")).count(),
                1,
                "{series}"
            );
        }
        assert_eq!(svg.matches("data-launch=").count(), 2);
        assert_eq!(svg.matches("data-terminate=").count(), 1);
        assert!(!svg.contains("<x>"));
    }
}
