//! Autoscaling: the pure decision engine (Ray autoscaler v2 semantics).

pub mod types;
