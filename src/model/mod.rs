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
//! - Kubernetes types (env vars, resources, services, network policy rules) come from
//!   `k8s-openapi`; pod templates are [`pod`]'s lean views of them (checked as `k8s-openapi`
//!   checks them, keeping only what the rules read; the schema is `k8s-openapi`'s).

pub mod pod;
pub mod v1;
pub mod v1alpha1;

/// `ray.io/v1`
pub const API_VERSION_V1: &str = "ray.io/v1";
/// `ray.io/v1alpha1` (deprecated, served, not stored)
pub const API_VERSION_V1ALPHA1: &str = "ray.io/v1alpha1";
/// The CRD's deprecation warning for `ray.io/v1alpha1`.
pub const V1ALPHA1_DEPRECATION_WARNING: &str = "ray.io/v1alpha1 RayCluster is deprecated; use ray.io/v1 RayCluster. v1alpha1 receives no new fields and will be unavailable in KubeRay 1.9.";

/// The four KubeRay kinds raygate understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    RayCluster,
    RayJob,
    RayService,
    RayCronJob,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::RayCluster,
        Kind::RayJob,
        Kind::RayService,
        Kind::RayCronJob,
    ];

    /// From the `kind` field.
    pub fn from_name(kind: &str) -> Option<Kind> {
        match kind {
            "RayCluster" => Some(Kind::RayCluster),
            "RayJob" => Some(Kind::RayJob),
            "RayService" => Some(Kind::RayService),
            "RayCronJob" => Some(Kind::RayCronJob),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::RayCluster => "RayCluster",
            Kind::RayJob => "RayJob",
            Kind::RayService => "RayService",
            Kind::RayCronJob => "RayCronJob",
        }
    }

    /// Resource (plural) name, as in webhook rules and URLs.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::RayCluster => "rayclusters",
            Kind::RayJob => "rayjobs",
            Kind::RayService => "rayservices",
            Kind::RayCronJob => "raycronjobs",
        }
    }

    /// From the plural resource name.
    pub fn from_plural(plural: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.plural() == plural)
    }

    /// API versions KubeRay v1.7.0 serves for this kind (storage version first).
    pub fn api_versions(self) -> &'static [&'static str] {
        match self {
            Kind::RayCronJob => &[API_VERSION_V1],
            _ => &[API_VERSION_V1, API_VERSION_V1ALPHA1],
        }
    }

    /// The CRD's deprecation warning for `api_version`, if it is deprecated.
    pub fn deprecation_warning(self, api_version: &str) -> Option<String> {
        (api_version == API_VERSION_V1ALPHA1 && self != Kind::RayCronJob).then(|| {
            let k = self.name();
            format!("ray.io/v1alpha1 {k} is deprecated; use ray.io/v1 {k}. v1alpha1 receives no new fields and will be unavailable in KubeRay 1.9.")
        })
    }
}
