//! `raygate autoscale …`: the autoscaler's command-line front ends. `plan` plans one iteration
//! from a snapshot file (no cluster access).

use crate::autoscale::scenario::{ScenarioError, parse_scenario};
use crate::autoscale::status::render;
use crate::autoscale::types::Plan;
use crate::pipeline::{Finding, snippet};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct AutoscaleArgs {
    #[command(subcommand)]
    pub command: AutoscaleCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum AutoscaleCommand {
    /// Plan one autoscaler iteration from a snapshot (RayCluster, pods, Ray's view) and print the
    /// JSON Patch it would send, per-group launches/terminations and infeasible demands.
    Plan(PlanArgs),
    /// Drive a local Ray cluster: worker pods are `ray start --block` processes on this machine.
    Local(crate::gcs::local::LocalArgs),
    /// Print the current state in the `ray status` layout: `status <namespace>/<cluster>` reads
    /// the RayCluster and its pods from Kubernetes and asks the GCS the controller would ask;
    /// `status --gcs HOST:PORT --cluster FILE` asks a local GCS about a RayCluster file.
    Status(StatusArgs),
    /// Run the in-cluster autoscaler: every RayCluster annotated `raygate.io/autoscaler:
    /// central` whose head runs no other autoscaler (`enableInTreeAutoscaling: false` next to
    /// KubeRay); patches replicas/workersToDelete (docs/autoscaler-central.md).
    Run(crate::controller::RunArgs),
    /// Run as the `autoscaler` container KubeRay injects into a RayCluster's head Pod, in place
    /// of Ray's autoscaler: one cluster (RAY_CLUSTER_NAME / RAY_CLUSTER_NAMESPACE), its GCS on
    /// the Pod's loopback, KubeRay's autoscaler Role (see docs/autoscaler-sidecar.md). An image
    /// whose `ray` is a symlink to raygate also runs this for `ray kuberay-autoscaler ...`.
    Sidecar(crate::controller::sidecar::SidecarArgs),
    /// Plot a timeline recorded by `autoscale local|run --timeline FILE.csv` (demand, replicas
    /// and pods over time) as SVG: the plot the run wrote (the same rows kept, at most 10,000
    /// change points: docs/autoscaler.md#timeline).
    Timeline(TimelineArgs),
}

#[derive(clap::Args, Debug)]
pub struct TimelineArgs {
    /// The CSV `autoscale local|run --timeline` wrote.
    pub csv: PathBuf,
    /// Where to write the SVG (default: the CSV's path with the extension .svg; `-` for stdout).
    #[arg(short = 'o', long = "output", value_name = "SVG")]
    pub output: Option<PathBuf>,
    /// Title above the plot (default: the CSV's file name).
    #[arg(long)]
    pub title: Option<String>,
}

/// Exit codes: 0 written; 2 the CSV is unreadable or malformed, or the SVG cannot be written.
fn run_timeline(a: &TimelineArgs) -> ExitCode {
    let name = a.csv.display().to_string();
    let rows = match std::fs::read_to_string(&a.csv)
        .map_err(|e| format!("{name}: {e}"))
        .and_then(|t| crate::autoscale::timeline::parse_csv(&name, &t))
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let title = a.title.clone().unwrap_or_else(|| {
        a.csv
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default()
    });
    let svg = crate::autoscale::timeline::plot_of(rows, &title);
    let out = a
        .output
        .clone()
        .unwrap_or_else(|| a.csv.with_extension("svg"));
    if out.as_os_str() == "-" {
        print!("{svg}");
        return ExitCode::SUCCESS;
    }
    match std::fs::write(&out, svg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}: {e}", out.display());
            ExitCode::from(2)
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    /// Scenario YAML (see README "raygate autoscale plan").
    pub scenario: PathBuf,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Timestamp for the text header (default: now, UTC).
    #[arg(long)]
    pub now: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// `<namespace>/<cluster>` (or `<cluster>` in the kubeconfig's namespace): read the
    /// RayCluster (ray.io/v1) and its worker pods through the kubeconfig ($KUBECONFIG,
    /// ~/.kube/config) or the in-cluster config.
    #[arg(value_name = "NAMESPACE/CLUSTER", required_unless_present = "cluster")]
    pub target: Option<String>,
    /// GCS address HOST:PORT. With a cluster argument it overrides the head service and the
    /// `raygate.io/gcs-address` annotation (e.g. a `kubectl port-forward`); with `--cluster` it
    /// defaults to 127.0.0.1:6379.
    #[arg(long)]
    pub gcs: Option<String>,
    /// A RayCluster file (YAML or JSON) instead of a cluster argument: pods are then Ray's live
    /// worker nodes.
    #[arg(long, conflicts_with = "target")]
    pub cluster: Option<PathBuf>,
    /// With a cluster argument: the flags of `autoscale run` that decide the plan and the GCS
    /// address, with its defaults (give the controller's values to see its plan).
    #[command(flatten)]
    pub planning: crate::controller::PlanningArgs,
    /// Timestamp for the header (with a cluster argument; default: now, UTC).
    #[arg(long)]
    pub now: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Json,
    Text,
}

/// Exit codes: 0 planned; 1 the RayCluster is invalid (violations, no patch); 2 bad input.
pub fn run(args: AutoscaleArgs) -> ExitCode {
    match args.command {
        AutoscaleCommand::Plan(p) => run_plan(&p),
        AutoscaleCommand::Local(a) => crate::gcs::local::run_local(a),
        AutoscaleCommand::Status(a) => run_status(a),
        AutoscaleCommand::Run(a) => crate::controller::run(a),
        AutoscaleCommand::Sidecar(a) => crate::controller::sidecar::run(a),
        AutoscaleCommand::Timeline(a) => run_timeline(&a),
    }
}

/// Exit codes: 0 printed; 1 the cluster is missing, does not autoscale, or its GCS or the API
/// server failed; 2 bad arguments.
fn run_status(a: StatusArgs) -> ExitCode {
    match (a.target, a.cluster) {
        (Some(target), _) => {
            crate::controller::status::run(crate::controller::status::StatusOptions {
                target,
                gcs: a.gcs,
                planning: a.planning,
                now: a.now.unwrap_or_else(now_utc),
            })
        }
        (None, Some(cluster)) => crate::gcs::local::run_status(crate::gcs::local::StatusArgs {
            gcs: a.gcs.unwrap_or_else(|| "127.0.0.1:6379".into()),
            cluster,
        }),
        (None, None) => {
            eprintln!("error: give <namespace>/<cluster>, or --cluster FILE");
            ExitCode::from(2)
        }
    }
}

fn run_plan(args: &PlanArgs) -> ExitCode {
    let plan = match plan_file(&args.scenario) {
        Ok(p) => p,
        Err(e) => {
            eprint!("{e}");
            return ExitCode::from(2);
        }
    };
    match args.output {
        OutputFormat::Json => match serde_json::to_string_pretty(&plan_json(&plan)) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        OutputFormat::Text => {
            let now = args.now.clone().unwrap_or_else(now_utc);
            print!("{}", render(&plan, &now));
        }
    }
    if plan.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Reads and plans a scenario file (`rayClusterFile` is relative to the scenario's directory).
/// The error is rendered as `validate` renders a finding: `error[RULE]: message`, then
/// `--> file:line:col` and the source line with the field underlined.
pub fn plan_file(path: &Path) -> Result<Plan, String> {
    let name = path.display().to_string();
    let text = read_capped(path).map_err(|e| format!("error: {e}\n"))?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let load = |p: &str| -> Result<(String, String), String> {
        let full = dir.join(p);
        Ok((full.display().to_string(), read_capped(&full)?))
    };
    let input = parse_scenario(&name, &text, &load).map_err(|e| render_error(&e))?;
    Ok(crate::autoscale::plan(&input))
}

/// `e` in `validate`'s human form (a long source line is trimmed around the column).
fn render_error(e: &ScenarioError) -> String {
    let finding = Finding {
        rule: e.rule.into(),
        severity: crate::violation::Severity::Error,
        path: e.path.clone(),
        message: e.message.clone(),
        help: None,
        line: e.line,
        column: e.col,
        len: e.len,
        source: e.source.as_deref().and_then(snippet),
    };
    let mut out = String::new();
    crate::cli::output::human_finding(&e.file, None, &finding, &mut out);
    out
}

/// Reads a file of at most [`crate::yaml::MAX_DOCUMENT_BYTES`], as `validate` caps a document:
/// `/dev/zero`, a FIFO or a huge file is an error, not an unbounded read.
fn read_capped(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let name = path.display();
    let cap = crate::yaml::MAX_DOCUMENT_BYTES;
    let f = std::fs::File::open(path).map_err(|e| format!("{name}: {e}"))?;
    let mut buf = Vec::new();
    f.take(cap as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("{name}: {e}"))?;
    if buf.len() > cap {
        return Err(format!(
            "{name}: larger than {} MiB, the limit on one input document",
            cap / (1024 * 1024)
        ));
    }
    String::from_utf8(buf).map_err(|e| format!("{name}: not UTF-8: {e}"))
}

/// `{"patch", "groups": {name: {replicas, launch, terminate, deferred}}, "infeasible",
/// "capped", "violations"}`; `deferred` maps each limit that held pods back
/// (`upscalingRate`, `maxConcurrentLaunches`, `maxReplicas`, `workersToDelete`) to the pods.
pub fn plan_json(plan: &Plan) -> Value {
    let mut groups = Map::new();
    for g in &plan.groups {
        let deferred: Map<String, Value> = g
            .deferred
            .reasons()
            .into_iter()
            .map(|(k, n)| (k.to_string(), json!(n)))
            .collect();
        groups.insert(
            g.name.clone(),
            json!({"replicas": g.replicas, "launch": g.launch, "terminate": g.terminate,
                   "deferred": deferred}),
        );
    }
    let res_json = |m: &crate::autoscale::types::ResourceMap| -> Map<String, Value> {
        m.iter().map(|(k, v)| (k.clone(), amount(*v))).collect()
    };
    let capped: Vec<Value> = plan
        .capped
        .iter()
        .map(|d| json!({"resources": res_json(&d.resources), "count": d.count, "groups": d.groups}))
        .collect();
    let infeasible: Vec<Value> = plan
        .infeasible
        .iter()
        .map(|d| json!({"resources": res_json(&d.resources), "count": d.count}))
        .collect();
    json!({
        "patch": plan.patch,
        "groups": groups,
        "infeasible": infeasible,
        "capped": capped,
        "violations": plan.violations,
    })
}

/// A resource amount as JSON: integral values as integers (`1`, not `1.0`).
fn amount(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

/// Python's `str(datetime)` of the current UTC time.
fn now_utc() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let micros = d.subsec_micros();
    let (days, sod) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // civil from days (Howard Hinnant)
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let base = format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    );
    if micros == 0 {
        base
    } else {
        format!("{base}.{micros:06}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        a: AutoscaleArgs,
    }

    fn planning(args: &[&str]) -> crate::controller::PlanningArgs {
        let cli = Cli::try_parse_from(std::iter::once("raygate").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        match cli.a.command {
            AutoscaleCommand::Run(r) => r.planning,
            AutoscaleCommand::Status(s) => s.planning,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn status_takes_the_planning_flags_of_run_with_the_same_defaults() {
        assert_eq!(planning(&["run"]), planning(&["status", "ns/rc"]));
        let flags = [
            "--gcs-port",
            "6380",
            "--max-concurrent-launches",
            "3",
            "--gcs-timeout",
            "750ms",
        ];
        let run = planning(&[&["run"][..], &flags[..]].concat());
        let status = planning(&[&["status", "ns/rc"][..], &flags[..]].concat());
        assert_eq!(run, status);
        assert_eq!(status.gcs_port, 6380);
        assert_eq!(status.engine_options().max_concurrent_launches, 3);
        assert_eq!(status.gcs_timeout, std::time::Duration::from_millis(750));
        // `--timeout`, status's old spelling, still works
        assert_eq!(
            planning(&["status", "ns/rc", "--timeout", "1s"]).gcs_timeout,
            std::time::Duration::from_secs(1)
        );
    }
}
