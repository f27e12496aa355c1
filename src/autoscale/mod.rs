//! Autoscaling: the pure decision engine (Ray autoscaler v2 semantics).
//!
//! - [`types`]: engine input and output;
//! - [`engine`]: `plan(&EngineInput) -> Plan`;
//! - [`scenario`]: the `raygate autoscale plan` snapshot format (YAML → `EngineInput`);
//! - [`status`]: `ray status`-style text of a plan.

pub mod engine;
pub mod engine_config;
pub mod engine_sched;
pub mod scenario;
pub mod status;
pub mod timeline;
pub mod types;

pub use engine::plan;
