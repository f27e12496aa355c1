//! `--timeline FILE.csv` of `raygate autoscale local` and `raygate autoscale run`: the rows of a
//! run appended to the CSV as they come, and at exit the plot next to it (FILE.svg). The rows
//! and the plot are the pure core's (`autoscale::timeline`); this is the file I/O around them.

use crate::autoscale::timeline::{HEADER, Row, render_svg};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub struct TimelineFile {
    path: PathBuf,
    csv: Option<std::fs::File>,
    rows: Vec<Row>,
    started: Instant,
}

impl TimelineFile {
    /// Creates (truncates) `path` with the CSV header; the run's clock starts now.
    pub fn create(path: &Path) -> Result<TimelineFile, String> {
        let mut f = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        writeln!(f, "{HEADER}").map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(TimelineFile {
            path: path.to_path_buf(),
            csv: Some(f),
            rows: Vec::new(),
            started: Instant::now(),
        })
    }

    /// Seconds since [`Self::create`], at the CSV's millisecond precision, so the plot written
    /// at exit is the one `raygate autoscale timeline` draws from the CSV.
    pub fn now(&self) -> f64 {
        (self.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
    }

    /// Appends `row` to the CSV (a write error is reported once, then the CSV is given up; the
    /// rows are still plotted at exit).
    pub fn push(&mut self, row: Row) {
        if let Some(f) = self.csv.as_mut()
            && let Err(e) = writeln!(f, "{}", row.csv())
        {
            eprintln!("warning: --timeline: {}: {e}", self.path.display());
            self.csv = None;
        }
        self.rows.push(row);
    }

    /// Writes the plot of the rows to the CSV's path with the extension `.svg`; returns that path.
    pub fn finish(&self, title: &str) -> Result<PathBuf, String> {
        let svg = self.path.with_extension("svg");
        std::fs::write(&svg, render_svg(&self.rows, title))
            .map_err(|e| format!("{}: {e}", svg.display()))?;
        Ok(svg)
    }
}
