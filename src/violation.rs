//! Shared vocabulary of the pure core: a finding (`Violation`), its severity, and the inputs
//! that change verdicts (KubeRay feature gates, operation, mode).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How bad a finding is. Errors refuse the object; warnings are reported and admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding about one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Stable rule id, e.g. `W5`, `S1`, `CRD-ENUM`, `RG-REPLICAS-CLAMP`.
    pub rule: String,
    /// Field path in Kubernetes notation: `spec.workerGroupSpecs[1].minReplicas`.
    pub path: String,
    /// Message; for KubeRay rules byte-for-byte KubeRay's text.
    pub message: String,
    pub severity: Severity,
}

impl Violation {
    pub fn error(rule: &str, path: impl Into<String>, message: impl Into<String>) -> Self {
        Violation {
            rule: rule.to_string(),
            path: path.into(),
            message: message.into(),
            severity: Severity::Error,
        }
    }
    pub fn warning(rule: &str, path: impl Into<String>, message: impl Into<String>) -> Self {
        Violation {
            rule: rule.to_string(),
            path: path.into(),
            message: message.into(),
            severity: Severity::Warning,
        }
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// KubeRay operator feature gates (names and defaults as in KubeRay v1.7.0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureGates {
    gates: BTreeMap<String, bool>,
}

/// KubeRay v1.7.0 gate names with their defaults.
pub const KUBERAY_GATES: &[(&str, bool)] = &[
    ("RayClusterStatusConditions", true),
    ("RayJobDeletionPolicy", true),
    ("RayMultiHostIndexing", true),
    ("RayServiceIncrementalUpgrade", true),
    ("RayCronJob", false),
    ("SidecarSubmitterRestart", false),
    ("RayClusterNetworkPolicy", false),
    ("GCSFaultToleranceEmbeddedStorage", false),
    ("RayClusterMTLS", false),
    ("RayClusterHistoryServer", false),
    ("KubernetesWAS", false),
];

impl Default for FeatureGates {
    fn default() -> Self {
        FeatureGates {
            gates: KUBERAY_GATES
                .iter()
                .map(|(n, v)| (n.to_string(), *v))
                .collect(),
        }
    }
}

impl FeatureGates {
    pub fn enabled(&self, name: &str) -> bool {
        self.gates.get(name).copied().unwrap_or(false)
    }

    pub fn set(&mut self, name: &str, on: bool) -> Result<(), String> {
        match self.gates.get_mut(name) {
            Some(v) => {
                *v = on;
                Ok(())
            }
            None => Err(format!(
                "unknown feature gate {name:?}; known gates: {}",
                KUBERAY_GATES
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// Parses KubeRay's `--feature-gates` syntax: `A=true,B=false`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut g = FeatureGates::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').ok_or_else(|| {
                format!("feature gate {part:?} is not of the form Name=true|false")
            })?;
            let on = match value.trim() {
                "true" => true,
                "false" => false,
                other => {
                    return Err(format!(
                        "feature gate {name}: value {other:?} is not true or false"
                    ));
                }
            };
            g.set(name.trim(), on)?;
        }
        Ok(g)
    }
}

/// Which KubeRay behaviour to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Every violation at once (raygate's default).
    #[default]
    All,
    /// Only the first error in KubeRay's evaluation order (for comparison with KubeRay).
    FirstError,
}

/// Inputs to validation besides the object itself.
#[derive(Debug, Clone, Default)]
pub struct ValidateOptions {
    pub gates: FeatureGates,
    pub mode: Mode,
    /// Unknown fields are errors (`raygate validate --strict`).
    pub strict: bool,
}
