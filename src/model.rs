//! RayCluster typed views (`ray.io/v1` and `ray.io/v1alpha1`). Pure.
//!
//! Rules and defaulting read these typed views but edit the raw JSON, so fields that are not
//! modelled here survive untouched.
