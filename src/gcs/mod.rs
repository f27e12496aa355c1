//! Ray GCS client: the head's `ray.rpc.autoscaler.AutoscalerStateService` over gRPC.
//!
//! This is the I/O edge between Ray and the pure autoscaling engine:
//! - [`client`]: connect with a timeout, retry/reconnect with bounded exponential backoff,
//!   `GetClusterResourceState`, `ReportAutoscalingState`, `GetClusterStatus`, `DrainNode`, and a
//!   clear error when the GCS does not serve the autoscaler service (Ray older than 2.7 or not a GCS).
//! - [`snapshot`]: pure mapping of `ClusterResourceState` into plain data (and into the engine's
//!   input types).
//! - [`local`]: `raygate autoscale local` (the engine driving `ray start` worker processes) and
//!   `raygate autoscale status`.
//! - [`report`]: the `ReportAutoscalingState` message from a plan (shared by `autoscale local`
//!   and the Kubernetes controller), so `ray status` shows raygate's decisions.
//! - [`proto`]: the prost/tonic types generated from `proto/*.proto` (raygate's own minimal
//!   messages, wire-compatible with Ray 2.60.0).

pub mod client;
pub mod local;
pub mod report;
pub mod snapshot;

pub use client::{DrainOutcome, GcsClient, GcsError, GcsOptions};

/// Generated protobuf types and the gRPC client stub.
#[allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]
pub mod proto {
    /// `ray.rpc` (shared messages).
    pub mod ray {
        pub mod rpc {
            include!(concat!(env!("OUT_DIR"), "/ray.rpc.rs"));
            /// `ray.rpc.autoscaler`.
            pub mod autoscaler {
                include!(concat!(env!("OUT_DIR"), "/ray.rpc.autoscaler.rs"));
            }
        }
    }
    pub use ray::rpc::autoscaler::*;
}
