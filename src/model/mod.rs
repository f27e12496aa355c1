//! RayCluster typed views (`ray.io/v1` and `ray.io/v1alpha1`). Pure.
//!
//! Rules and defaulting read these typed views but edit the raw JSON, so fields that are not
//! modelled here survive untouched.
//!
//! Conventions (so an invalid object still parses and the rules can report it):
//! - every field is an `Option`, also the ones the CRD requires (those carry
//!   `#[schemars(required)]`, so the generated JSON Schema still lists them as required);
//! - enum-like fields (`upscalingMode`, `version`, `mode`, `backend`, `type`, …) are plain strings;
//! - integers are `i32` where the CRD says `int32`, maps are `BTreeMap<String, String>`;
//! - Kubernetes types (pod templates, env vars, resources, services, network policy rules) come
//!   from `k8s-openapi`.

pub mod v1;
pub mod v1alpha1;

/// `ray.io/v1`
pub const API_VERSION_V1: &str = "ray.io/v1";
/// `ray.io/v1alpha1` (deprecated, served, not stored)
pub const API_VERSION_V1ALPHA1: &str = "ray.io/v1alpha1";
/// The CRD's deprecation warning for `ray.io/v1alpha1`.
pub const V1ALPHA1_DEPRECATION_WARNING: &str = "ray.io/v1alpha1 RayCluster is deprecated; use ray.io/v1 RayCluster. v1alpha1 receives no new fields and will be unavailable in KubeRay 1.9.";
