//! Command-line front ends. Each subcommand owns its `Args` struct and a `run` function.

pub mod autoscale;
