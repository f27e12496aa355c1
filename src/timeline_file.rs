//! `--timeline FILE.csv` of `raygate autoscale local` and `raygate autoscale run`: the rows of a
//! run appended to the CSV as they come, and the plot next to it (FILE.svg), rewritten every
//! [`SVG_EVERY`] while rows come and at exit, each time atomically (a temporary file renamed
//! over it), so a run stopped any way — SIGTERM, an error, SIGKILL — leaves a plot at most
//! [`SVG_EVERY`] old. The plot's rows are kept in bounded memory by the pure core's
//! [`PlotRows`] (`autoscale::timeline`); this is the file I/O around it.

use crate::autoscale::timeline::{HEADER, MAX_ROWS, PlotRows, Row};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often the plot is rewritten while rows come.
pub const SVG_EVERY: Duration = Duration::from_secs(10);

pub struct TimelineFile {
    path: PathBuf,
    title: String,
    csv: Option<std::fs::File>,
    rows: PlotRows,
    started: Instant,
    /// When the plot was last written (None: not yet).
    written: Option<Instant>,
    /// A write of the plot failed (reported once).
    svg_failed: bool,
    /// Set by [`Self::finish`]: the final plot is written, later rows are not recorded.
    closed: bool,
}

impl TimelineFile {
    /// Creates (truncates) `path` with the CSV header; the run's clock starts now. `title` is
    /// the plot's.
    pub fn create(path: &Path, title: &str) -> Result<TimelineFile, String> {
        let mut f = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        writeln!(f, "{HEADER}").map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(TimelineFile {
            path: path.to_path_buf(),
            title: title.to_string(),
            csv: Some(f),
            rows: PlotRows::new(MAX_ROWS),
            started: Instant::now(),
            written: None,
            svg_failed: false,
            closed: false,
        })
    }

    /// The plot's path: the CSV's with the extension `.svg`.
    pub fn svg_path(&self) -> PathBuf {
        self.path.with_extension("svg")
    }

    /// What the run logs when it starts.
    pub fn describe(&self) -> String {
        format!(
            "rows to {}, plot to {} (every {} s and at exit)",
            self.path.display(),
            self.svg_path().display(),
            SVG_EVERY.as_secs()
        )
    }

    /// Seconds since [`Self::create`], at the CSV's millisecond precision, so the plot written
    /// at exit is the one `raygate autoscale timeline` draws from the CSV.
    pub fn now(&self) -> f64 {
        (self.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
    }

    /// Appends `row` to the CSV (a write error is reported once, then the CSV is given up; the
    /// rows are still plotted) and, when the plot is older than [`SVG_EVERY`] (or not written
    /// yet), rewrites the plot. Ignored after [`Self::finish`].
    pub fn push(&mut self, row: Row) {
        if self.closed {
            return;
        }
        if let Some(f) = self.csv.as_mut()
            && let Err(e) = writeln!(f, "{}", row.csv())
        {
            eprintln!("warning: --timeline: {}: {e}", self.path.display());
            self.csv = None;
        }
        self.rows.push(row);
        if self.written.is_none_or(|w| w.elapsed() >= SVG_EVERY) {
            self.written = Some(Instant::now());
            if let Err(e) = self.write_svg()
                && !std::mem::replace(&mut self.svg_failed, true)
            {
                eprintln!("warning: --timeline: {e}");
            }
        }
    }

    /// Writes the final plot (see [`Self::push`] for the ones before); returns its path. Rows
    /// pushed after it are not recorded, so the CSV holds exactly the rows plotted.
    pub fn finish(&mut self) -> Result<PathBuf, String> {
        self.closed = true;
        self.write_svg()
    }

    /// The plot, written to a temporary file in the same directory and renamed over FILE.svg.
    fn write_svg(&self) -> Result<PathBuf, String> {
        let svg = self.svg_path();
        let name = svg
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let tmp = svg.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        let text = self.rows.render_svg(&self.title);
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &svg))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                format!("{}: {e}", svg.display())
            })?;
        Ok(svg)
    }
}
