//! The autoscaling timeline of a run: per iteration and worker group, the pending demand Ray
//! reported, the group's `replicas` after the decision, the worker pods alive, and what the
//! decision launched and terminated. `raygate autoscale local|run --timeline FILE.csv` records it
//! (the file I/O is `crate::timeline_file`'s);
//! [`render_svg`] plots it (demand, replicas and pods over time, decisions as markers), and
//! [`PlotRows`] keeps the rows such a plot needs in bounded memory however long the run. Pure:
//! rows in, text out; time is the rows' `t_s`.

use super::types::Plan;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
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

/// Rows a plot keeps by default: about 1 MB of memory and an SVG under 1 MB.
pub const MAX_ROWS: usize = 10_000;

/// The rows a step plot of a run needs, in bounded memory: every change point of each group (a
/// row whose demand, replicas or pods differ from the group's previous row, or that carries a
/// launch or terminate), plus the group's latest row (so its lines reach the last sample).
/// Rows that repeat the previous values are dropped: the plot of what is kept is the plot of all
/// the rows. At most `cap` rows are kept; past that the least recent information is dropped
/// (the first row of the group whose next row is the oldest, or a group's only row when it
/// is the oldest), and the plot starts at [`PlotRows::start`]: every row from then on is
/// kept, and each group's value at that instant is known (its row is drawn from there,
/// without the marker of a decision made before it). Rows must come in time order.
#[derive(Debug, Clone)]
pub struct PlotRows {
    cap: usize,
    groups: BTreeMap<String, Kept>,
    next_seq: u64,
    len: usize,
    dropped: u64,
    start: f64,
}

#[derive(Debug, Clone)]
struct Kept {
    /// First-seen order of the group (the plot's order).
    seq: u64,
    rows: VecDeque<Row>,
    /// The last row only repeats the one before it (it is replaced by the next row).
    tail: bool,
}

impl PlotRows {
    /// Keeps at most `cap` rows (at least one per group: `cap` is raised to 1).
    pub fn new(cap: usize) -> PlotRows {
        PlotRows {
            cap: cap.max(1),
            groups: BTreeMap::new(),
            next_seq: 0,
            len: 0,
            dropped: 0,
            start: 0.0,
        }
    }

    pub fn push(&mut self, row: Row) {
        let seq = self.next_seq;
        let g = self
            .groups
            .entry(row.group.clone())
            .or_insert_with(|| Kept {
                seq,
                rows: VecDeque::new(),
                tail: false,
            });
        if g.seq == seq {
            self.next_seq += 1;
        }
        let repeat = g.rows.back().is_some_and(|last| {
            (last.demand, last.replicas, last.pods) == (row.demand, row.replicas, row.pods)
                && row.launch == 0
                && row.terminate == 0
        });
        match g.rows.back_mut() {
            // A repeated tail moves on; a change makes the tail before it redundant.
            Some(last) if g.tail => {
                *last = row;
                g.tail = repeat;
            }
            _ => {
                g.rows.push_back(row);
                g.tail = repeat;
                self.len += 1;
            }
        }
        while self.len > self.cap {
            self.evict();
        }
    }

    /// Drops the least recent information: the row whose value stops being the latest first.
    fn evict(&mut self) {
        let until = |k: &Kept| k.rows.get(1).or(k.rows.front()).map_or(f64::MAX, |r| r.t_s);
        let Some(name) = self
            .groups
            .iter()
            .min_by(|a, b| until(a.1).total_cmp(&until(b.1)))
            .map(|(n, _)| n.clone())
        else {
            return;
        };
        let Some(g) = self.groups.get_mut(&name) else {
            return;
        };
        self.start = self.start.max(until(g));
        g.rows.pop_front();
        if g.rows.is_empty() {
            self.groups.remove(&name);
        }
        self.len -= 1;
        self.dropped += 1;
    }

    /// Rows kept (at most the cap).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Rows dropped by the cap (not counting the repeats, which the plot does not need).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Where the plot starts: 0 until the cap dropped a row, then the time of the oldest
    /// information dropped.
    pub fn start(&self) -> f64 {
        self.start
    }

    /// The kept rows, group by group in first-seen order, each in time order; a row before
    /// [`Self::start`] is moved to it, without its markers.
    pub fn rows(&self) -> Vec<Row> {
        let mut gs: Vec<&Kept> = self.groups.values().collect();
        gs.sort_by_key(|g| g.seq);
        gs.iter()
            .flat_map(|g| g.rows.iter())
            .map(|r| {
                if r.t_s < self.start {
                    Row {
                        t_s: self.start,
                        launch: 0,
                        terminate: 0,
                        ..r.clone()
                    }
                } else {
                    r.clone()
                }
            })
            .collect()
    }

    /// The plot of the kept rows ([`render_svg`]'s); once the cap dropped rows its time axis
    /// starts at [`Self::start`] and says so.
    pub fn render_svg(&self, title: &str) -> String {
        let note = (self.dropped > 0).then(|| {
            format!(
                "from {} s: {} older rows dropped to keep at most {}",
                trim_num(self.start),
                self.dropped,
                self.cap
            )
        });
        render(&self.rows(), title, self.start, note.as_deref())
    }
}

/// The plot of `rows` kept by [`PlotRows`] with the default cap ([`MAX_ROWS`]): the plot
/// `--timeline` writes, drawn again from its CSV.
pub fn plot_of(rows: impl IntoIterator<Item = Row>, title: &str) -> String {
    let mut kept = PlotRows::new(MAX_ROWS);
    for r in rows {
        kept.push(r);
    }
    kept.render_svg(title)
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
    /// Where the time axis starts (0 unless rows were dropped: [`PlotRows::start`]).
    pub t_min: f64,
    pub t_max: f64,
    pub y_max: u64,
}

impl Axes {
    /// The axes of `rows` from 0 s.
    pub fn of(rows: &[Row]) -> Axes {
        Axes::from(rows, 0.0)
    }
    /// The axes of `rows` from `t_min` s.
    pub fn from(rows: &[Row], t_min: f64) -> Axes {
        let t_max = rows
            .iter()
            .map(|r| r.t_s)
            .fold(t_min, f64::max)
            .max(t_min + 1.0);
        let y_max = rows
            .iter()
            .map(|r| r.demand.max(r.replicas).max(r.pods))
            .max()
            .unwrap_or(0)
            .max(1);
        Axes {
            t_min,
            t_max,
            y_max,
        }
    }
    pub fn x(&self, t: f64) -> f64 {
        LEFT + (WIDTH - LEFT - RIGHT) * (t - self.t_min) / (self.t_max - self.t_min)
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

/// The cluster a group label belongs to: the label without its last `/` segment (`ns/name` of
/// `ns/name/group`; "" for a bare group name, as `autoscale local` writes them).
fn cluster_of(group: &str) -> &str {
    group.rsplit_once('/').map_or("", |(c, _)| c)
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
/// Demand lines, one per cluster: reds and oranges, apart from the groups' [`COLORS`].
const DEMAND_COLORS: [&str; 4] = ["#d62728", "#ff7f0e", "#bcbd22", "#7f0000"];

/// An SVG plot of the timeline: demand (one line per cluster), and per group `replicas`
/// (solid) and live pods (dashed) as step lines over seconds, launches (▲) and terminations
/// (▼) as markers at the iteration that decided them. Every line carries
/// `data-series="demand"` (`"demand NS/NAME"` per cluster when groups of several clusters are
/// plotted), `"replicas GROUP"` or `"pods GROUP"`.
pub fn render_svg(rows: &[Row], title: &str) -> String {
    render(rows, title, 0.0, None)
}

/// [`render_svg`] with the time axis from `t_min` and `note` after the axis label.
fn render(rows: &[Row], title: &str, t_min: f64, note: Option<&str>) -> String {
    let ax = Axes::from(rows, t_min);
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
    let (x0, x1, y0, y1) = (ax.x(ax.t_min), ax.x(ax.t_max), ax.y(0), ax.y(ax.y_max));
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
    let t_step = nice_step((ax.t_max - ax.t_min) / 8.0);
    let mut t = (ax.t_min / t_step).ceil() * t_step;
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
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">seconds since start{}</text>"#,
        (x0 + x1) / 2.0,
        HEIGHT - 8.0,
        note.map(|n| format!(" ({})", esc(n))).unwrap_or_default()
    );
    // demand: a cluster's rows all carry its demand, so one line per cluster, drawn from the
    // rows of its first group (`autoscale run` labels groups `ns/name/group`; one cluster is
    // the series `demand`, several are `demand ns/name`)
    let gs = groups(rows);
    let mut legend: Vec<(String, String, &str)> = Vec::new();
    let mut clusters: Vec<(&str, &str)> = Vec::new(); // (cluster, its first group)
    for g in &gs {
        let c = cluster_of(g);
        if !clusters.iter().any(|(x, _)| *x == c) {
            clusters.push((c, g));
        }
    }
    for (i, (c, first)) in clusters.iter().enumerate() {
        let demand: Vec<(f64, u64)> = rows
            .iter()
            .filter(|r| r.group == *first)
            .map(|r| (r.t_s, r.demand))
            .collect();
        let (series, label) = if clusters.len() == 1 {
            (
                "demand".to_string(),
                "demand (pending requests)".to_string(),
            )
        } else {
            (
                format!("demand {c}"),
                format!("{c}: demand (pending requests)"),
            )
        };
        let color = DEMAND_COLORS[i % DEMAND_COLORS.len()];
        let _ = writeln!(
            s,
            r#"<polyline data-series="{}" fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            esc(&series),
            steps(&ax, &demand)
        );
        legend.push((label, color.into(), ""));
    }
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
            t_min: 0.0,
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

    #[test]
    fn each_cluster_gets_its_own_demand_line() {
        // `autoscale run` over two clusters: the second one's demand was lost before (only the
        // first group's rows were plotted)
        // (t, group, demand, replicas, pods)
        let rows: Vec<Row> = [
            (0.0, "ns/a/g", 3, 2, 0),
            (0.0, "ns/a/h", 3, 1, 0),
            (1.0, "ns/b/g", 7, 4, 0),
            (5.0, "ns/b/g", 0, 4, 4),
        ]
        .into_iter()
        .map(|(t, g, d, r, p)| row(t, g, d, r, p, 0, 0))
        .collect();
        let svg = render_svg(&rows, "t");
        assert!(!svg.contains(r#"data-series="demand""#), "{svg}");
        let line = |series: &str| {
            let at = svg
                .find(&format!(r#"data-series="{series}""#))
                .unwrap_or_else(|| panic!("no {series}"));
            svg[at..].lines().next().unwrap().to_string()
        };
        let (a, b) = (line("demand ns/a"), line("demand ns/b"));
        // b's line reaches the height of 7 (the top of the axis is max(7, 4)): a's stays lower
        let top = |l: &str| {
            let pts = l.split("points=\"").nth(1).unwrap();
            pts.split(['"', ' '])
                .filter_map(|p| p.split_once(','))
                .map(|(_, y)| y.parse::<f64>().unwrap())
                .fold(f64::MAX, f64::min)
        };
        assert!(top(&b) < top(&a), "{a}\n{b}");
        assert_eq!(svg.matches("data-series=\"demand ").count(), 2);
        assert!(svg.contains("ns/b: demand (pending requests)"));
        // one cluster (bare group names, as `autoscale local` writes them): the series `demand`
        let one = render_svg(&rows[..2], "t");
        assert_eq!(one.matches(r#"data-series="demand""#).count(), 1);
        assert_eq!(cluster_of("ns/a/g"), "ns/a");
        assert_eq!(cluster_of("g"), "");
    }

    /// Step value of `group`'s `f` at `t` (the last row at or before `t`), as the plot draws it.
    fn at(rows: &[Row], group: &str, t: f64) -> Option<(u64, u64, u64)> {
        rows.iter()
            .rfind(|r| r.group == group && r.t_s <= t)
            .map(|r| (r.demand, r.replicas, r.pods))
    }

    #[test]
    fn a_long_steady_run_keeps_only_its_change_points_and_the_last_rows() {
        // 1,000,000 iterations of 2 groups (one row each per second); replicas change every
        // 10,000 iterations, a launch or terminate marks each change.
        let mut kept = PlotRows::new(MAX_ROWS);
        let mut changes = Vec::new();
        let mut all_max = 0;
        for i in 0..1_000_000u64 {
            let t = i as f64;
            let level = (i / 10_000) % 5;
            let changed = i % 10_000 == 0;
            for g in ["a", "b"] {
                let r = row(t, g, level, level, level, u64::from(changed), 0);
                if changed {
                    changes.push(r.clone());
                }
                kept.push(r);
            }
            all_max = all_max.max(kept.len());
        }
        let rows = kept.rows();
        // 100 change points per group, plus each group's last row
        assert_eq!(rows.len(), 2 * 100 + 2);
        assert_eq!(all_max, rows.len());
        assert_eq!((kept.dropped(), kept.start()), (0, 0.0));
        let marked: Vec<Row> = rows.iter().filter(|r| r.launch > 0).cloned().collect();
        let mut want = changes.clone();
        want.sort_by_key(|r| r.group.clone());
        assert_eq!(marked, want);
        for g in ["a", "b"] {
            let last = rows.iter().rfind(|r| r.group == g).unwrap();
            assert_eq!(last.t_s, 999_999.0);
        }
        // the plot of the kept rows draws what the plot of all rows would: same levels, same ends
        let svg = kept.render_svg("t");
        assert_eq!(svg.matches("data-launch=").count(), 200);
        assert!(!svg.contains("dropped"));
        assert!(svg.len() < 100_000, "{}", svg.len());
    }

    #[test]
    fn past_the_cap_the_oldest_changes_go_and_every_later_change_stays() {
        // 3 groups; "busy" changes at every iteration, "calm" every 50th, "gone" stops at 100.
        let cap = 500;
        let mut kept = PlotRows::new(cap);
        let mut all = Vec::new();
        for i in 0..100_000u64 {
            let t = i as f64 * 0.5;
            let mut push = |r: Row| {
                all.push(r.clone());
                kept.push(r);
            };
            push(row(t, "calm", i % 3, (i / 50) % 4, (i / 50) % 4, 0, 0));
            push(row(t, "busy", i % 3, i % 7, (i + 1) % 7, i % 2, 0));
            if i < 100 {
                push(row(t, "gone", i % 3, 1, 1, 0, 0));
            }
            assert!(kept.len() <= cap);
        }
        assert_eq!(kept.len(), cap);
        assert!(kept.dropped() > 0);
        let start = kept.start();
        assert!(start > 40_000.0 && start < 50_000.0, "{start}");
        let rows = kept.rows();
        assert!(rows.iter().all(|r| r.t_s >= start));
        // every sample time from the start on shows the values all the rows show
        for g in ["calm", "busy"] {
            for r in all.iter().filter(|r| r.group == g && r.t_s >= start) {
                assert_eq!(at(&rows, g, r.t_s), at(&all, g, r.t_s), "{g} at {}", r.t_s);
            }
            assert_eq!(
                rows.iter().rfind(|r| r.group == g).map(|r| r.t_s),
                Some(49_999.5)
            );
        }
        // the group not seen since long before the start is gone; every later marker is kept
        assert!(!rows.iter().any(|r| r.group == "gone"));
        let want = all.iter().filter(|r| r.t_s > start && r.launch > 0).count();
        let got = rows
            .iter()
            .filter(|r| r.t_s > start && r.launch > 0)
            .count();
        assert_eq!(got, want);
        // groups keep their first-seen order; the plot says where it starts and why
        assert_eq!(groups(&rows), ["calm", "busy"]);
        let svg = kept.render_svg("t");
        assert!(
            svg.contains(&format!("from {} s: ", trim_num(start))),
            "{svg}"
        );
        assert!(svg.contains(&format!("older rows dropped to keep at most {cap}")));
        let ax = Axes::from(&rows, start);
        assert!((ax.x(start) - LEFT).abs() < 1e-9);
        assert!((ax.x(49_999.5) - (WIDTH - RIGHT)).abs() < 1e-9);
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(200))]
        /// Whatever the rows, the kept ones fit the cap and, after the start, draw the same
        /// step lines (values at every sample time, last sample time per group) and markers.
        #[test]
        fn kept_rows_draw_the_same_plot_from_the_start_on(
            cap in 1usize..40,
            steps in proptest::collection::vec(
                (0u8..3, 0u64..3, 0u64..3, 0u64..3, 0u64..2, 0u64..2, 0u8..3), 1..300)
        ) {
            let mut kept = PlotRows::new(cap);
            let mut all = Vec::new();
            let mut t = 0.0;
            for (g, d, r, p, l, x, dt) in steps {
                t += f64::from(dt) * 0.5;
                let row = row(t, ["a", "b", "c"][g as usize], d, r, p, l, x);
                all.push(row.clone());
                kept.push(row);
                proptest::prop_assert!(kept.len() <= cap);
            }
            let rows = kept.rows();
            proptest::prop_assert_eq!(rows.len(), kept.len());
            let start = kept.start();
            for g in groups(&rows) {
                let last_all = all.iter().rfind(|r| r.group == g).unwrap().t_s;
                let last_kept = rows.iter().rfind(|r| r.group == g).unwrap().t_s;
                proptest::prop_assert_eq!(last_all, last_kept);
                // (strictly after: the only row of a group dropped whole may be at the start)
                for r in all.iter().filter(|r| r.group == g && r.t_s > start) {
                    proptest::prop_assert_eq!(at(&rows, &g, r.t_s), at(&all, &g, r.t_s));
                }
            }
            // a group dropped whole was last seen at or before the start
            for g in groups(&all) {
                if !rows.iter().any(|r| r.group == g) {
                    let last = all.iter().rfind(|r| r.group == g).unwrap().t_s;
                    proptest::prop_assert!(last <= start);
                }
            }
            let marks = |v: &[Row]| -> Vec<(String, u64, u64)> {
                let mut m: Vec<_> = v
                    .iter()
                    .filter(|r| r.t_s > start && (r.launch > 0 || r.terminate > 0))
                    .map(|r| (format!("{} {}", r.group, r.t_s), r.launch, r.terminate))
                    .collect();
                m.sort();
                m
            };
            proptest::prop_assert_eq!(marks(&rows), marks(&all));
            if kept.dropped() == 0 {
                proptest::prop_assert_eq!(start, 0.0);
            }
        }
    }
}
