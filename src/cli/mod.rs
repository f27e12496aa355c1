//! Command-line front ends. Each subcommand owns its `Args` struct and a `run` function.

pub mod autoscale;
pub mod certs;
pub mod completions;
pub mod default;
pub mod explain;
pub mod logbuf;
pub mod logfmt;
pub mod output;
pub mod policy;
pub mod ray_compat;
pub mod schema;
pub mod serve;
pub mod validate;
