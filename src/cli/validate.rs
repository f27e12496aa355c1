//! `raygate validate [PATH|-]...`: the offline validator.

use super::output::{self, Format, Summary};
use crate::pipeline::{self, Checker, FileReport};
use crate::violation::{FeatureGates, Mode, ValidateOptions};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

/// Exit codes of `raygate validate`, shown in its `--help`.
pub const EXIT_CODES: &str = "\
Exit status:
  0  every checked object is valid (warnings allowed)
  1  at least one finding is an error: an invalid object, a ray.io document of a kind or
     apiVersion raygate does not check (UNKNOWN-KIND, API-VERSION), a kind given in --reject
  2  unreadable input (missing file, malformed YAML, non-UTF-8, a non-empty file without
     documents) or a usage error

Documents of other API groups are skipped (listed with -v). ray.io documents are never
skipped unless named in --skip.";

/// Validate RayClusters in files, directories (recursive: *.yaml, *.yml, *.json) or stdin (`-`).
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = EXIT_CODES)]
pub struct ValidateArgs {
    /// Files, directories (walked recursively) or `-` for stdin. Default: stdin when it is piped.
    pub paths: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "human")]
    pub output: Format,
    /// KubeRay operator feature gates, e.g. `RayClusterMTLS=true,RayClusterNetworkPolicy=true`.
    #[arg(long, value_name = "A=true,B=false")]
    pub feature_gates: Option<String>,
    /// Unknown fields are errors (default: warnings, as the API server prunes them).
    #[arg(long)]
    pub strict: bool,
    /// Skip documents of these kinds (`Kind` or `apiVersion/Kind`, comma-separated), even ray.io
    /// ones raygate would reject as unknown: `--skip RayJob,ray.io/v1/RayService`.
    #[arg(long, value_name = "KIND,...")]
    pub skip: Option<String>,
    /// Documents of these kinds are errors (`Kind` or `apiVersion/Kind`, comma-separated):
    /// `--reject Secret,v1/ConfigMap`. `--skip` wins when both match.
    #[arg(long, value_name = "KIND,...")]
    pub reject: Option<String>,
    /// Do not report warnings.
    #[arg(long)]
    pub ignore_warnings: bool,
    /// One line per file plus totals instead of every finding (human format).
    #[arg(long)]
    pub summary: bool,
    /// Report only the first error per RayCluster, in KubeRay's evaluation order.
    #[arg(long)]
    pub first_error: bool,
    /// Also list skipped documents (other API groups, --skip) (human format).
    #[arg(short, long)]
    pub verbose: bool,
    /// SARIF: the `%SRCROOT%` directory paths are made relative to (default: the current one).
    #[arg(long, value_name = "DIR")]
    pub srcroot: Option<std::path::PathBuf>,
    /// SARIF: base URL of raygate's `docs/rules/` for each rule's `helpUri` (`<URL><ID>.md`).
    #[arg(long, value_name = "URL", env = "RAYGATE_DOCS_URL")]
    pub docs_url: Option<String>,
    /// Worker threads (default: available cores).
    #[arg(short = 'j', long)]
    pub jobs: Option<usize>,
}

/// Default worker count: the available cores (at least 1, at most 16).
pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 16)
}

/// Builds the checker for these arguments (usage errors as `Err`).
pub fn checker(args: &ValidateArgs) -> Result<Checker, String> {
    let gates = match &args.feature_gates {
        Some(s) => FeatureGates::parse(s).map_err(|e| format!("--feature-gates: {e}"))?,
        None => FeatureGates::default(),
    };
    let opts = ValidateOptions {
        gates,
        mode: if args.first_error {
            Mode::FirstError
        } else {
            Mode::All
        },
        strict: args.strict,
    };
    let patterns = |flag: &str, v: &Option<String>| match v {
        Some(s) => crate::kinds::parse_patterns(s).map_err(|e| format!("{flag}: {e}")),
        None => Ok(Vec::new()),
    };
    Ok(Checker {
        opts,
        ignore_warnings: args.ignore_warnings,
        skip: patterns("--skip", &args.skip)?,
        reject: patterns("--reject", &args.reject)?,
    })
}

/// Resolves the path list: none given means stdin, unless stdin is a terminal.
pub fn input_args(paths: &[String]) -> Result<Vec<String>, String> {
    if paths.is_empty() {
        if std::io::stdin().is_terminal() {
            return Err("no input: give files, directories or `-` for stdin".into());
        }
        return Ok(vec!["-".into()]);
    }
    Ok(paths.to_vec())
}

pub fn run(args: ValidateArgs) -> ExitCode {
    let checker = match checker(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let paths = match input_args(&args.paths) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let started = std::time::Instant::now();
    let inputs = pipeline::expand_args(&paths);
    let jobs = args.jobs.unwrap_or_else(default_jobs);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut summary = Summary::default();
    let mut kept: Vec<FileReport> = Vec::new();
    let streaming = matches!(args.output, Format::Human | Format::Github);
    pipeline::validate_inputs(inputs, jobs, &checker, |f| {
        summary.add(&f);
        if streaming {
            let mut s = String::new();
            match args.output {
                Format::Github => output::github_file(&f, &mut s),
                _ => output::human_file(&f, args.summary, args.verbose, &mut s),
            }
            let _ = out.write_all(s.as_bytes());
        } else {
            kept.push(f);
        }
    });
    let text = match args.output {
        Format::Human => format!("{}\n", summary.line()),
        Format::Github => String::new(),
        Format::Json => output::json_report(&kept, &summary),
        Format::Junit => output::junit_report(
            &kept,
            u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX),
        ),
        Format::Sarif => {
            let canon = |r: std::path::PathBuf| std::fs::canonicalize(&r).unwrap_or(r);
            let cwd = std::env::current_dir().ok().map(canon);
            let root = args.srcroot.clone().map(canon).or_else(|| cwd.clone());
            let docs_url = args.docs_url.as_ref().map(|u| {
                if u.ends_with('/') {
                    u.clone()
                } else {
                    format!("{u}/")
                }
            });
            output::sarif_report(
                &kept,
                &summary,
                &output::SarifOptions {
                    srcroot: root,
                    docs_url,
                    cwd,
                },
            )
        }
    };
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    ExitCode::from(summary.exit_code())
}
