//! Validation rules: every KubeRay rule (exact messages) plus raygate's own checks. Pure.

use crate::violation::{ValidateOptions, Violation};
use serde_json::Value;

/// Validates one RayCluster (`ray.io/v1`, CRD defaults already applied, as the API server does
/// before admission). `old` is the stored object on UPDATE (immutability rules).
/// Returns every violation (or only the first error with `Mode::FirstError`).
pub fn validate(obj: &Value, old: Option<&Value>, opts: &ValidateOptions) -> Vec<Violation> {
    let _ = (obj, old, opts);
    Vec::new()
}
