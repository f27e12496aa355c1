//! `raygate policy export`: raygate's RayCluster rules as ValidatingAdmissionPolicy (and, with
//! `--mutating`, the autoscaler defaults as MutatingAdmissionPolicy) for clusters that do not
//! run admission webhooks. See docs/policy.md.

use crate::policy::{self, ExportOptions};
use crate::violation::FeatureGates;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug, Clone)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum PolicyCommand {
    /// Write the admission policies as YAML (stdout, or a kustomize directory with --output-dir).
    Export(ExportArgs),
}

/// Exit status: 0 success, 2 usage error or unwritable output.
#[derive(clap::Args, Debug, Clone)]
pub struct ExportArgs {
    /// KubeRay feature gates, as for `validate` (`RayClusterMTLS=true,...`): gated rules follow them.
    #[arg(long, default_value = "")]
    pub feature_gates: String,
    /// validationActions of the binding: Deny, Warn, Audit (comma-separated; not Deny with Warn).
    #[arg(long, default_value = "Deny")]
    pub validation_actions: String,
    /// Only RayClusters in namespaces matching this label selector (`team=ml,env in (prod)`).
    #[arg(long)]
    pub namespace_selector: Option<String>,
    /// Prefix of every object name.
    #[arg(long, default_value = "raygate-")]
    pub name_prefix: String,
    /// Also export the autoscaler defaults as a MutatingAdmissionPolicy
    /// (admissionregistration.k8s.io/v1beta1; Kubernetes 1.34 with the MutatingAdmissionPolicy gate).
    #[arg(long)]
    pub mutating: bool,
    /// Instead of the policies, list the rules that are not exported and why.
    #[arg(long)]
    pub explain: bool,
    /// Write `policies.yaml` and `kustomization.yaml` into this directory instead of stdout.
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
}

/// Builds the export options from the flags (errors name the flag).
pub fn options(args: &ExportArgs) -> Result<ExportOptions, String> {
    let gates =
        FeatureGates::parse(&args.feature_gates).map_err(|e| format!("--feature-gates: {e}"))?;
    let actions = policy::parse_actions(&args.validation_actions)
        .map_err(|e| format!("--validation-actions: {e}"))?;
    let namespace_selector = match &args.namespace_selector {
        Some(s) => Some(
            policy::parse_label_selector(s).map_err(|e| format!("--namespace-selector: {e}"))?,
        ),
        None => None,
    };
    let n = &args.name_prefix;
    let probe = format!("{n}raycluster-defaults");
    if !crate::rules::k8s::is_dns1123_subdomain(&probe) {
        return Err(format!(
            "--name-prefix {n:?}: object names must be DNS-1123 subdomains (lower case alphanumerics, '-' and '.')"
        ));
    }
    Ok(ExportOptions {
        gates,
        actions,
        namespace_selector,
        name_prefix: n.clone(),
        mutating: args.mutating,
    })
}

pub fn run(args: PolicyArgs) -> ExitCode {
    let PolicyCommand::Export(args) = args.command;
    let opts = match options(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if args.explain {
        for (i, kind) in policy::KINDS.into_iter().enumerate() {
            let checks = policy::policy_for(kind, &opts.gates).checks;
            if i > 0 {
                println!();
            }
            println!(
                "{} {} validation(s) exported to ValidatingAdmissionPolicy {}; not exported:",
                checks.len(),
                kind.name(),
                policy::validating_name_for(&opts, kind)
            );
            for n in policy::not_exported_for(kind, &opts.gates) {
                println!("  {:<32} {}", n.rule, n.reason);
            }
        }
        println!("\nlimits:");
        for l in policy::LIMITS {
            println!("  {l}");
        }
        return ExitCode::SUCCESS;
    }
    let yaml = policy::to_yaml(&policy::export(&opts));
    match &args.output_dir {
        None => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Some(dir) => {
            let write = |name: &str, text: &str| -> Result<(), String> {
                let p = dir.join(name);
                std::fs::write(&p, text).map_err(|e| format!("write {}: {e}", p.display()))
            };
            let res = std::fs::create_dir_all(dir)
                .map_err(|e| format!("create {}: {e}", dir.display()))
                .and_then(|_| write("policies.yaml", &yaml))
                .and_then(|_| {
                    write(
                        "kustomization.yaml",
                        &policy::kustomization("policies.yaml"),
                    )
                });
            match res {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
