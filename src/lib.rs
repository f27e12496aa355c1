//! raygate: validate, default, convert and autoscale KubeRay `RayCluster` objects.
//!
//! Module map. The *pure core* takes data and returns data: no tokio, no network, no
//! filesystem, no clock (time is a parameter). `tests/purity.rs` checks their imports.
//!
//! pure core:
//! - [`violation`]  — `Violation`, `Severity`, `FeatureGates`, `ValidateOptions` (shared vocabulary)
//! - [`kinds`]      — the `ray.io` kinds `validate` checks; `--skip` / `--reject` classification
//! - [`model`]      — RayCluster `ray.io/v1` / `v1alpha1` typed views (serde + schemars)
//! - [`quantity`]   — exact Kubernetes quantity parsing and comparison
//! - [`rules`]      — every KubeRay rule plus raygate's own checks; all violations at once
//! - [`defaulting`] — CRD + autoscaler defaults as an RFC 6902 JSON Patch
//! - [`conversion`] — `ray.io/v1alpha1` ⇄ `ray.io/v1`, lossless through an annotation
//! - [`json`]       — a JSON reader building `serde_json::Value` fast (webhook hot path)
//! - [`autoscale`]  — the autoscaling decision engine (Ray autoscaler v2 semantics)
//! - [`policy`]     — the rules as ValidatingAdmissionPolicy CEL, the defaults as MutatingAdmissionPolicy
//!
//! edges (I/O): [`cli`] (offline `validate`, `default`, `schema`, `certs`, `autoscale plan`),
//! [`webhook`] (HTTPS admission + conversion server).

pub mod autoscale;
pub mod certs;
pub mod cli;
pub mod controller;
pub mod conversion;
pub mod defaulting;
pub mod gcs;
pub mod json;
pub mod kinds;
pub mod model;
pub mod pipeline;
pub mod policy;
pub mod quantity;
pub mod rules;
pub mod schema;
pub mod signal;
pub mod timeline_file;
pub mod violation;
pub mod webhook;
pub mod yaml;

/// The KubeRay release whose rules, messages, CRDs and feature gates raygate reproduces.
pub const KUBERAY_VERSION: &str = "v1.7.0";
/// The Ray release whose autoscaler v2 semantics and GCS protocol raygate follows (and tests with).
pub const RAY_VERSION: &str = "2.60.0";
/// The git commit raygate was built from (`unknown` outside a checkout; `RAYGATE_GIT_COMMIT`
/// overrides it at build time).
pub const GIT_COMMIT: &str = env!("RAYGATE_GIT_COMMIT");

/// `raygate --version`: `0.1.0 (commit 1234abcd5678; KubeRay v1.7.0, Ray 2.60.0)`.
pub fn long_version() -> &'static str {
    static V: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        format!(
            "{} (commit {GIT_COMMIT}; KubeRay {KUBERAY_VERSION}, Ray {RAY_VERSION})",
            env!("CARGO_PKG_VERSION")
        )
    })
}
