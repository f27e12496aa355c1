use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// raygate: make KubeRay RayClusters safe and self-scaling.
#[derive(Parser, Debug)]
#[command(name = "raygate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Placeholder until the front ends land.
    Version,
    /// Autoscaler: plan from a snapshot (`plan`).
    Autoscale(raygate::cli::autoscale::AutoscaleArgs),
}

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!("raygate {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Autoscale(args) => raygate::cli::autoscale::run(args),
    }
}
