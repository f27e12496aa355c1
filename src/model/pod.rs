//! Lean pod templates: the parts of a `PodTemplateSpec` the rules read, checked like
//! `k8s-openapi`'s types but without keeping the rest. Pure.
//!
//! A worker group's template read as `k8s_openapi`'s `PodTemplateSpec` is a few kilobytes of
//! mostly empty fields (`PodSpec` 1,488 bytes, each `Container` 2,336, each `EnvVar` 360),
//! so a review of ~23,000 minimal groups (3 MiB) made a 115 MiB typed view (issue #14,
//! defect 1). These types keep only what `src/rules` reads: the containers' `name`, `env`
//! (`name`, `value`), `volumeMounts` and `resources`, the pod's `restartPolicy` and
//! `volumes` (`name`).
//!
//! Every other field is still deserialized as its `k8s-openapi` type (or as the lean type
//! where that is the same check) and dropped at once, so a value of the wrong type fails
//! with the same message at the same path as before, and field order, unknown fields, `null`
//! and absent required fields (`name`, `containers`: empty, as `k8s-openapi` reads them)
//! behave the same: the visitors below follow `k8s-openapi`'s (a map only, the same
//! `expecting` names). `tests` compares the two on valid and broken templates. The JSON
//! Schema is `k8s-openapi`'s `PodTemplateSpec` (the committed schemas are unchanged).
//! Serializing gives the kept fields only (the v1alpha1 view is re-read as v1 that way).

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Defines a struct of the `keep` fields with a `k8s-openapi`-style map visitor: `keep`
/// fields are stored (`req` ones are read as `Option` and default when absent or `null`),
/// `check` fields are deserialized as the given type and dropped, other members are ignored.
macro_rules! lean_struct {
    (
        $(#[$attr:meta])*
        pub struct $name:ident as $expecting:literal {
            keep { $($kjson:literal => $kfield:ident: $kty:ty $(, $req:ident)?;)* }
            check { $($cjson:literal: $cty:ty,)* }
        }
    ) => {
        $(#[$attr])*
        #[derive(Clone, Debug, Default, PartialEq, Serialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            $(
                #[serde(skip_serializing_if = "skip_none")]
                pub $kfield: $kty,
            )*
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Key(Option<&'static str>);
                impl<'de> Deserialize<'de> for Key {
                    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                        struct V;
                        impl serde::de::Visitor<'_> for V {
                            type Value = Key;
                            fn expecting(
                                &self,
                                f: &mut std::fmt::Formatter<'_>,
                            ) -> std::fmt::Result {
                                f.write_str("field identifier")
                            }
                            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key, E> {
                                Ok(Key(match v {
                                    $($kjson => Some($kjson),)*
                                    $($cjson => Some($cjson),)*
                                    _ => None,
                                }))
                            }
                        }
                        d.deserialize_identifier(V)
                    }
                }
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$name, A::Error> {
                        let mut out = $name::default();
                        while let Some(Key(key)) = map.next_key::<Key>()? {
                            match key {
                                $(Some($kjson) => {
                                    out.$kfield = lean_struct!(@read map, $kty $(, $req)?);
                                })*
                                $(Some($cjson) => {
                                    let _: $cty = map.next_value()?;
                                })*
                                _ => {
                                    let _: serde::de::IgnoredAny = map.next_value()?;
                                }
                            }
                        }
                        Ok(out)
                    }
                }
                d.deserialize_struct($expecting, &[$($kjson,)* $($cjson,)*], V)
            }
        }
    };
    (@read $map:ident, $ty:ty, req) => {
        $map.next_value::<Option<$ty>>()?.unwrap_or_default()
    };
    (@read $map:ident, $ty:ty) => {
        $map.next_value::<$ty>()?
    };
}

/// `skip_serializing_if` for both `Option`s (skipped when `None`) and required fields (never).
fn skip_none<T: MaybeNone>(v: &T) -> bool {
    v.is_none()
}

trait MaybeNone {
    fn is_none(&self) -> bool;
}

impl<T> MaybeNone for Option<T> {
    fn is_none(&self) -> bool {
        Option::is_none(self)
    }
}

impl MaybeNone for String {
    fn is_none(&self) -> bool {
        false
    }
}

impl<T> MaybeNone for Vec<T> {
    fn is_none(&self) -> bool {
        false
    }
}

lean_struct! {
    /// `PodTemplateSpec`: its `spec` (the `metadata` is checked, not kept).
    pub struct PodTemplateSpec as "PodTemplateSpec" {
        keep {
            "spec" => spec: Option<PodSpec>;
        }
        check {
            "metadata": Option<meta::ObjectMeta>,
        }
    }
}

lean_struct! {
    /// `PodSpec`: `containers`, `restartPolicy`, `volumes`.
    pub struct PodSpec as "PodSpec" {
        keep {
            "containers" => containers: Vec<Container>, req;
            "restartPolicy" => restart_policy: Option<String>;
            "volumes" => volumes: Option<Vec<Volume>>;
        }
        check {
            "activeDeadlineSeconds": Option<i64>,
            "affinity": Option<core::Affinity>,
            "automountServiceAccountToken": Option<bool>,
            "dnsConfig": Option<core::PodDNSConfig>,
            "dnsPolicy": Option<String>,
            "enableServiceLinks": Option<bool>,
            "ephemeralContainers": Option<Vec<core::EphemeralContainer>>,
            "evictionResponders": Option<Vec<core::EvictionResponder>>,
            "hostAliases": Option<Vec<core::HostAlias>>,
            "hostIPC": Option<bool>,
            "hostNetwork": Option<bool>,
            "hostPID": Option<bool>,
            "hostUsers": Option<bool>,
            "hostname": Option<String>,
            "hostnameOverride": Option<String>,
            "imagePullSecrets": Option<Vec<core::LocalObjectReference>>,
            // The same check as `core::Container`, at the lean size.
            "initContainers": Option<Vec<Container>>,
            "nodeName": Option<String>,
            "nodeSelector": Option<BTreeMap<String, String>>,
            "os": Option<core::PodOS>,
            "overhead": Option<BTreeMap<String, Quantity>>,
            "preemptionPolicy": Option<String>,
            "priority": Option<i32>,
            "priorityClassName": Option<String>,
            "readinessGates": Option<Vec<core::PodReadinessGate>>,
            "resourceClaims": Option<Vec<core::PodResourceClaim>>,
            "resources": Option<core::ResourceRequirements>,
            "runtimeClassName": Option<String>,
            "schedulerName": Option<String>,
            "schedulingGates": Option<Vec<core::PodSchedulingGate>>,
            "schedulingGroup": Option<core::PodSchedulingGroup>,
            "securityContext": Option<core::PodSecurityContext>,
            "serviceAccount": Option<String>,
            "serviceAccountName": Option<String>,
            "setHostnameAsFQDN": Option<bool>,
            "shareProcessNamespace": Option<bool>,
            "subdomain": Option<String>,
            "terminationGracePeriodSeconds": Option<i64>,
            "tolerations": Option<Vec<core::Toleration>>,
            "topologySpreadConstraints": Option<Vec<core::TopologySpreadConstraint>>,
        }
    }
}

lean_struct! {
    /// `Container`: `name`, `env`, `resources`, `volumeMounts`.
    pub struct Container as "Container" {
        keep {
            "name" => name: String, req;
            "env" => env: Option<Vec<EnvVar>>;
            "resources" => resources: Option<core::ResourceRequirements>;
            "volumeMounts" => volume_mounts: Option<Vec<core::VolumeMount>>;
        }
        check {
            "args": Option<Vec<String>>,
            "command": Option<Vec<String>>,
            "envFrom": Option<Vec<core::EnvFromSource>>,
            "image": Option<String>,
            "imagePullPolicy": Option<String>,
            "lifecycle": Option<core::Lifecycle>,
            "livenessProbe": Option<core::Probe>,
            "ports": Option<Vec<core::ContainerPort>>,
            "readinessProbe": Option<core::Probe>,
            "resizePolicy": Option<Vec<core::ContainerResizePolicy>>,
            "restartPolicy": Option<String>,
            "restartPolicyRules": Option<Vec<core::ContainerRestartRule>>,
            "securityContext": Option<core::SecurityContext>,
            "startupProbe": Option<core::Probe>,
            "stdin": Option<bool>,
            "stdinOnce": Option<bool>,
            "terminationMessagePath": Option<String>,
            "terminationMessagePolicy": Option<String>,
            "tty": Option<bool>,
            "volumeDevices": Option<Vec<core::VolumeDevice>>,
            "workingDir": Option<String>,
        }
    }
}

lean_struct! {
    /// `EnvVar`: `name`, `value` (`valueFrom` is checked, not kept).
    pub struct EnvVar as "EnvVar" {
        keep {
            "name" => name: String, req;
            "value" => value: Option<String>;
        }
        check {
            "valueFrom": Option<core::EnvVarSource>,
        }
    }
}

/// `Volume`: its `name`. Read as `core::Volume` (the volume source is one of 30 optional
/// fields) one element at a time, and only the name kept.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Volume {
    pub name: String,
}

impl<'de> Deserialize<'de> for Volume {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        core::Volume::deserialize(d).map(|v| Volume { name: v.name })
    }
}

impl schemars::JsonSchema for PodTemplateSpec {
    fn inline_schema() -> bool {
        <core::PodTemplateSpec as schemars::JsonSchema>::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        <core::PodTemplateSpec as schemars::JsonSchema>::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        <core::PodTemplateSpec as schemars::JsonSchema>::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <core::PodTemplateSpec as schemars::JsonSchema>::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// The lean view of a `k8s-openapi` template: what these types keep.
    fn project(t: core::PodTemplateSpec) -> PodTemplateSpec {
        PodTemplateSpec {
            spec: t.spec.map(|s| PodSpec {
                containers: s.containers.into_iter().map(container).collect(),
                restart_policy: s.restart_policy,
                volumes: s
                    .volumes
                    .map(|v| v.into_iter().map(|v| Volume { name: v.name }).collect()),
            }),
        }
    }

    fn container(c: core::Container) -> Container {
        Container {
            name: c.name,
            env: c.env.map(|e| {
                e.into_iter()
                    .map(|e| EnvVar {
                        name: e.name,
                        value: e.value,
                    })
                    .collect()
            }),
            resources: c.resources,
            volume_mounts: c.volume_mounts,
        }
    }

    fn full_template() -> Value {
        json!({
            "metadata": {"labels": {"a": "b"}, "annotations": {"x": "y"}},
            "spec": {
                "restartPolicy": "Never",
                "nodeSelector": {"k": "v"},
                "tolerations": [{"key": "k", "operator": "Exists"}],
                "volumes": [{"name": "v1", "emptyDir": {}}, {"name": "v2", "secret": {"secretName": "s"}}],
                "initContainers": [{"name": "init", "image": "busybox", "env": [{"name": "A", "value": "1"}]}],
                "containers": [{
                    "name": "ray-head",
                    "image": "rayproject/ray:2.46.0",
                    "args": ["a", ""],
                    "env": [
                        {"name": "A", "value": "1"},
                        {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                        {"name": "C", "value": null}
                    ],
                    "ports": [{"containerPort": 6379, "name": "gcs"}],
                    "resources": {"limits": {"cpu": "1"}, "requests": {"memory": "1Gi"}},
                    "volumeMounts": [{"name": "v1", "mountPath": "/data"}],
                    "livenessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 5},
                    "unknownField": [1, 2, 3]
                }, {}]
            }
        })
    }

    /// Replaces the value at `pointer` with `v`.
    fn with(mut t: Value, pointer: &str, v: Value) -> Value {
        *t.pointer_mut(pointer).expect(pointer) = v;
        t
    }

    fn cases() -> Vec<Value> {
        let t = full_template();
        let mut out = vec![
            t.clone(),
            json!({}),
            json!({"spec": null}),
            json!({"spec": {}}),
        ];
        for (p, v) in [
            ("/spec/containers/0/ports/0/containerPort", json!("x")),
            ("/spec/containers/0/livenessProbe/periodSeconds", json!("5")),
            ("/spec/containers/0/args/1", json!(7)),
            ("/spec/containers/0/env/1/valueFrom/fieldRef", json!([])),
            ("/spec/containers/0/env/0/value", json!(1)),
            ("/spec/containers/0/env/0", json!("A=1")),
            ("/spec/containers/0/env/0/name", json!(null)),
            ("/spec/containers/0/name", json!(null)),
            ("/spec/containers/0/name", json!(3)),
            ("/spec/containers/0/resources/limits/cpu", json!(true)),
            ("/spec/containers/0/volumeMounts/0/mountPath", json!({})),
            ("/spec/containers/1", json!(["name", "x"])),
            ("/spec/containers", json!(null)),
            ("/spec/containers", json!({})),
            ("/spec/initContainers/0/env/0/value", json!(false)),
            ("/spec/volumes/1/secret/secretName", json!(2)),
            ("/spec/volumes/0/name", json!(null)),
            ("/spec/tolerations/0/key", json!(1)),
            ("/spec/nodeSelector/k", json!(1)),
            ("/spec/restartPolicy", json!(1)),
            ("/spec", json!("x")),
            ("/metadata/labels/a", json!(1)),
            ("/metadata", json!([])),
        ] {
            out.push(with(t.clone(), p, v));
        }
        // two errors: the first one in member order wins in both
        out.push(with(
            with(t, "/spec/restartPolicy", json!(1)),
            "/spec/containers/0/image",
            json!(2),
        ));
        out
    }

    #[test]
    fn reads_and_fails_like_the_k8s_openapi_types() {
        for case in cases() {
            let full = crate::rules::deserialize_with_path::<core::PodTemplateSpec>(&case);
            let lean = crate::rules::deserialize_with_path::<PodTemplateSpec>(&case);
            assert_eq!(lean, full.map(project), "{case}");
        }
        // and the broken ones are really broken
        let broken = cases()
            .iter()
            .filter(|c| crate::rules::deserialize_with_path::<core::PodTemplateSpec>(c).is_err())
            .count();
        assert!(broken >= 20, "{broken}");
    }

    #[test]
    fn keeps_what_the_rules_read() {
        let t: PodTemplateSpec = serde_json::from_value(full_template()).unwrap();
        let s = t.spec.as_ref().unwrap();
        assert_eq!(s.restart_policy.as_deref(), Some("Never"));
        assert_eq!(s.containers.len(), 2);
        assert_eq!(s.containers[1].name, "");
        let c = &s.containers[0];
        assert_eq!(c.name, "ray-head");
        let env: Vec<_> = c
            .env
            .iter()
            .flatten()
            .map(|e| (e.name.as_str(), e.value.as_deref()))
            .collect();
        assert_eq!(env, [("A", Some("1")), ("B", None), ("C", None)]);
        assert_eq!(c.volume_mounts.as_ref().unwrap()[0].mount_path, "/data");
        assert!(c.resources.as_ref().unwrap().limits.is_some());
        let vols: Vec<_> = s
            .volumes
            .iter()
            .flatten()
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(vols, ["v1", "v2"]);
        // serialized: the kept fields, read back to the same view
        let again: PodTemplateSpec =
            serde_json::from_value(serde_json::to_value(&t).unwrap()).unwrap();
        assert_eq!(again, t);
    }

    #[test]
    fn schema_is_k8s_openapis() {
        assert_eq!(
            serde_json::to_value(schemars::schema_for!(PodTemplateSpec)).unwrap(),
            serde_json::to_value(schemars::schema_for!(core::PodTemplateSpec)).unwrap()
        );
    }

    #[test]
    fn a_group_template_is_small() {
        assert!(std::mem::size_of::<PodTemplateSpec>() <= 80);
        assert!(std::mem::size_of::<Container>() <= 160);
        assert!(std::mem::size_of::<EnvVar>() <= 48);
    }
}
