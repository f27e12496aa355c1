//! Which RayClusters a controller acts on (issue #12): exactly one autoscaler per cluster.
//!
//! * `autoscale run` (central mode) acts only on clusters annotated
//!   `raygate.io/autoscaler: central`, and never on one whose head runs another autoscaler:
//!   `spec.enableInTreeAutoscaling: true` (KubeRay then injects Ray's autoscaler, or raygate's
//!   sidecar, into the head Pod), an autoscaler container in the head Pod template, or a live head
//!   Pod that runs one (a head made while autoscaling was on keeps its container until KubeRay
//!   recreates it). Such a cluster is reported, never touched.
//! * `autoscale sidecar` runs inside the head Pod KubeRay made for `enableInTreeAutoscaling: true`.
//!
//! Pure: the RayCluster as JSON and its head Pods in, a verdict out. See
//! docs/autoscaler-central.md.

use crate::defaulting::{AutoscalerMode, autoscaler_mode};
use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::Value;

/// Which clusters a controller acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `autoscale run`: annotated `raygate.io/autoscaler: central`, no other autoscaler.
    Central,
    /// `autoscale sidecar`: `enableInTreeAutoscaling: true` (the container KubeRay injected).
    Sidecar,
}

/// What a controller does with a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Autoscale it.
    Act,
    /// Not this controller's cluster (not opted in): no task, nothing reported.
    NotOurs,
    /// Opted in, but another autoscaler acts on it: left alone, reported with this reason.
    OtherAutoscaler(String),
}

/// The name KubeRay gives the autoscaler container it injects into the head Pod.
pub const AUTOSCALER_CONTAINER: &str = "autoscaler";

/// Why `c` is an autoscaler: KubeRay's container name, or a command line that runs Ray's
/// autoscaler (`ray kuberay-autoscaler`, Ray's monitor) or raygate's sidecar.
fn autoscaler_container(c: &Container) -> Option<String> {
    if c.name == AUTOSCALER_CONTAINER {
        return Some(format!("container {:?}", c.name));
    }
    let line: Vec<&str> = c
        .command
        .iter()
        .chain(c.args.iter())
        .flatten()
        .map(String::as_str)
        .collect();
    let line = line.join(" ");
    [
        "kuberay-autoscaler",
        "autoscaler/_private/monitor.py",
        "autoscaler/v2/monitor.py",
        "autoscale sidecar",
    ]
    .into_iter()
    .find(|w| line.contains(w))
    .map(|w| format!("container {:?} runs {w:?}", c.name))
}

/// The verdict for `rc` (a RayCluster as JSON) with its live head Pods `heads`.
pub fn verdict(scope: Scope, rc: &Value, heads: &[&Pod]) -> Verdict {
    let in_tree = rc.pointer("/spec/enableInTreeAutoscaling") == Some(&Value::Bool(true));
    match scope {
        Scope::Sidecar if in_tree => Verdict::Act,
        Scope::Sidecar => Verdict::NotOurs,
        Scope::Central => {
            if autoscaler_mode(rc) != Ok(Some(AutoscalerMode::Central)) {
                return Verdict::NotOurs;
            }
            if in_tree {
                return Verdict::OtherAutoscaler(
                    "spec.enableInTreeAutoscaling is true: KubeRay runs an autoscaler in the head \
                     Pod (Ray's, or raygate's sidecar), so raygate autoscale run leaves this \
                     cluster alone; set it to false for central mode"
                        .into(),
                );
            }
            let template: Vec<Container> = rc
                .pointer("/spec/headGroupSpec/template/spec/containers")
                .cloned()
                .and_then(|v| serde_json::from_value(v).ok())
                .unwrap_or_default();
            if let Some((i, why)) = template
                .iter()
                .enumerate()
                .find_map(|(i, c)| autoscaler_container(c).map(|w| (i, w)))
            {
                return Verdict::OtherAutoscaler(format!(
                    "spec.headGroupSpec.template.spec.containers[{i}]: {why}: an autoscaler runs \
                     in the head Pod, so raygate autoscale run leaves this cluster alone"
                ));
            }
            for p in heads {
                let containers = p.spec.iter().flat_map(|s| s.containers.iter());
                if let Some(why) = containers.filter_map(autoscaler_container).next() {
                    return Verdict::OtherAutoscaler(format!(
                        "head Pod {} has {why}: an autoscaler is acting on this cluster (a head \
                         Pod made while enableInTreeAutoscaling was true keeps it until it is \
                         recreated), so raygate autoscale run leaves the cluster alone",
                        p.metadata.name.as_deref().unwrap_or("")
                    ));
                }
            }
            Verdict::Act
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rc(annotation: Option<&str>, in_tree: Option<bool>, containers: Value) -> Value {
        let mut v = json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
            "metadata": {"name": "c", "namespace": "ns"},
            "spec": {"headGroupSpec": {"template": {"spec": {"containers": containers}}}}});
        if let Some(a) = annotation {
            v["metadata"]["annotations"] = json!({"raygate.io/autoscaler": a});
        }
        if let Some(b) = in_tree {
            v["spec"]["enableInTreeAutoscaling"] = json!(b);
        }
        v
    }

    fn head(containers: Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "c-head-x"},
            "spec": {"containers": containers}}))
        .unwrap()
    }

    #[test]
    fn central_acts_only_on_opted_in_clusters_without_another_autoscaler() {
        let ray = json!([{"name": "ray-head", "image": "rayproject/ray:2.60.0"}]);
        let ok = rc(Some("central"), Some(false), ray.clone());
        assert_eq!(verdict(Scope::Central, &ok, &[]), Verdict::Act);
        assert_eq!(
            verdict(Scope::Central, &rc(Some("central"), None, ray.clone()), &[]),
            Verdict::Act
        );
        // not opted in, or opted into the sidecar, or an unknown value: not ours, silently
        for a in [None, Some("sidecar"), Some("Central")] {
            assert_eq!(
                verdict(Scope::Central, &rc(a, Some(false), ray.clone()), &[]),
                Verdict::NotOurs
            );
        }
        // in-tree autoscaling: Ray's autoscaler (or the sidecar) is in the head, even annotated
        let Verdict::OtherAutoscaler(why) = verdict(
            Scope::Central,
            &rc(Some("central"), Some(true), ray.clone()),
            &[],
        ) else {
            panic!("in-tree must be left alone")
        };
        assert!(why.contains("enableInTreeAutoscaling is true"), "{why}");
        // a hand-made autoscaler container in the template
        let mine = json!([{"name": "ray-head"}, {"name": "scaler", "command": ["ray"], "args": ["kuberay-autoscaler", "--cluster-name", "c"]}]);
        let Verdict::OtherAutoscaler(why) =
            verdict(Scope::Central, &rc(Some("central"), Some(false), mine), &[])
        else {
            panic!("template autoscaler")
        };
        assert!(
            why.starts_with("spec.headGroupSpec.template.spec.containers[1]"),
            "{why}"
        );
        // a live head Pod still running KubeRay's autoscaler container (made while in-tree was on)
        let old = head(
            json!([{"name": "ray-head"}, {"name": "autoscaler", "image": "rayproject/ray:2.60.0"}]),
        );
        let Verdict::OtherAutoscaler(why) = verdict(Scope::Central, &ok, &[&old]) else {
            panic!("head Pod autoscaler")
        };
        assert!(
            why.contains("head Pod c-head-x has container \"autoscaler\""),
            "{why}"
        );
        let sidecar = head(
            json!([{"name": "ray-head"}, {"name": "x", "command": ["/usr/local/bin/raygate"], "args": ["autoscale", "sidecar"]}]),
        );
        assert!(matches!(
            verdict(Scope::Central, &ok, &[&sidecar]),
            Verdict::OtherAutoscaler(_)
        ));
        let plain = head(ray.clone());
        assert_eq!(verdict(Scope::Central, &ok, &[&plain]), Verdict::Act);
    }

    #[test]
    fn the_sidecar_acts_on_in_tree_clusters() {
        let ray = json!([{"name": "ray-head"}]);
        assert_eq!(
            verdict(Scope::Sidecar, &rc(None, Some(true), ray.clone()), &[]),
            Verdict::Act
        );
        assert_eq!(
            verdict(
                Scope::Sidecar,
                &rc(Some("sidecar"), Some(true), ray.clone()),
                &[]
            ),
            Verdict::Act
        );
        assert_eq!(
            verdict(Scope::Sidecar, &rc(Some("central"), Some(false), ray), &[]),
            Verdict::NotOurs
        );
    }
}
