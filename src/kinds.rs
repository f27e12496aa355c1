//! The `ray.io` kinds raygate checks, in one place, and how `validate` classifies a document by
//! its `apiVersion` and `kind` (including `--skip` / `--reject`). Pure.
//!
//! A document of KubeRay's group (`ray.io`) is never "skipped" silently: a kind or version
//! raygate does not know is an error (`UNKNOWN-KIND`, `API-VERSION`), so CI cannot go green on
//! objects raygate never checked. `--skip KIND` opts out explicitly.

/// KubeRay's API group.
pub const GROUP: &str = "ray.io";

/// A kind raygate checks, with the versions it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownKind {
    pub kind: &'static str,
    /// Versions of [`GROUP`] accepted for this kind, newest first.
    pub versions: &'static [&'static str],
}

/// Every `ray.io` kind raygate checks. Add a row here (and its dispatch arm in
/// `pipeline::Checker::check_object`) to check another kind.
pub const KNOWN: &[KnownKind] = &[
    KnownKind {
        kind: "RayCluster",
        versions: &["v1", "v1alpha1"],
    },
    KnownKind {
        kind: "RayJob",
        versions: &["v1", "v1alpha1"],
    },
    KnownKind {
        kind: "RayService",
        versions: &["v1", "v1alpha1"],
    },
    KnownKind {
        kind: "RayCronJob",
        versions: &["v1"],
    },
];

/// Looks a kind up in [`KNOWN`].
pub fn known(kind: &str) -> Option<&'static KnownKind> {
    KNOWN.iter().find(|k| k.kind == kind)
}

/// `ray.io/v1, ray.io/v1alpha1`.
pub fn api_versions(k: &KnownKind) -> String {
    k.versions
        .iter()
        .map(|v| format!("{GROUP}/{v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `RayCluster (ray.io/v1, ray.io/v1alpha1)`, for messages.
pub fn known_list() -> String {
    KNOWN
        .iter()
        .map(|k| format!("{} ({})", k.kind, api_versions(k)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A `--skip` / `--reject` entry: `Kind` or `apiVersion/Kind` (`ray.io/v1/RayJob`, `v1/Secret`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindPattern {
    pub api_version: Option<String>,
    pub kind: String,
}

impl KindPattern {
    pub fn matches(&self, api_version: Option<&str>, kind: Option<&str>) -> bool {
        kind == Some(self.kind.as_str())
            && self
                .api_version
                .as_deref()
                .is_none_or(|a| api_version == Some(a))
    }
}

impl std::fmt::Display for KindPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.api_version {
            Some(a) => write!(f, "{a}/{}", self.kind),
            None => f.write_str(&self.kind),
        }
    }
}

/// Parses `Kind,apiVersion/Kind,…` (empty entries are ignored).
pub fn parse_patterns(spec: &str) -> Result<Vec<KindPattern>, String> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (api, kind) = match part.rsplit_once('/') {
            Some((a, k)) => (Some(a), k),
            None => (None, part),
        };
        let kind_ok = kind.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && kind.chars().all(|c| c.is_ascii_alphanumeric());
        let api_ok = api.is_none_or(|a| {
            !a.is_empty()
                && !a.starts_with('/')
                && !a.ends_with('/')
                && a.split('/').count() <= 2
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '/'))
        });
        if !kind_ok || !api_ok {
            return Err(format!(
                "{part:?} is not a kind (`RayJob`) or an apiVersion and kind (`ray.io/v1/RayJob`)"
            ));
        }
        out.push(KindPattern {
            api_version: api.map(str::to_string),
            kind: kind.to_string(),
        });
    }
    Ok(out)
}

/// What `validate` does with a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// A known kind in a known version: check it.
    Check {
        kind: &'static KnownKind,
        api_version: String,
    },
    /// Listed in `--skip`.
    SkipRequested(String),
    /// Listed in `--reject`: an error.
    Rejected(String),
    /// A `ray.io` document whose kind raygate does not check: an error.
    UnknownKind { api_version: String, kind: String },
    /// A known kind with an apiVersion of `ray.io` raygate does not know (or none): an error.
    UnknownVersion {
        kind: &'static KnownKind,
        api_version: Option<String>,
    },
    /// A `ray.io` apiVersion without a kind: an error.
    NoKind { api_version: String },
    /// Not KubeRay's (another group, or not a Kubernetes object): skipped with this note.
    NotRay(String),
}

/// Whether `api_version` is in the `ray.io` group (`ray.io/<version>`, or bare `ray.io`).
pub fn is_ray_group(api_version: &str) -> bool {
    api_version == GROUP
        || api_version
            .strip_prefix(GROUP)
            .is_some_and(|r| r.starts_with('/'))
}

/// Classifies one document. `skip` wins over `reject` when both match, as in kubeconform.
pub fn classify(
    api_version: Option<&str>,
    kind: Option<&str>,
    skip: &[KindPattern],
    reject: &[KindPattern],
) -> Class {
    let label = || match (api_version, kind) {
        (Some(a), Some(k)) => format!("{a} {k}"),
        (None, Some(k)) => k.to_string(),
        (Some(a), None) => a.to_string(),
        (None, None) => "document".to_string(),
    };
    if let Some(p) = skip.iter().find(|p| p.matches(api_version, kind)) {
        return Class::SkipRequested(format!("{} skipped by --skip {p}", label()));
    }
    if let Some(p) = reject.iter().find(|p| p.matches(api_version, kind)) {
        return Class::Rejected(p.to_string());
    }
    let ray = api_version.is_some_and(is_ray_group);
    match (kind.and_then(known), kind) {
        (Some(k), _) => match api_version {
            Some(a)
                if k.versions
                    .iter()
                    .any(|v| a.strip_prefix("ray.io/") == Some(*v)) =>
            {
                Class::Check {
                    kind: k,
                    api_version: a.to_string(),
                }
            }
            Some(a) if !ray => {
                Class::NotRay(format!("apiVersion {a} is not KubeRay's ray.io group"))
            }
            a => Class::UnknownVersion {
                kind: k,
                api_version: a.map(str::to_string),
            },
        },
        (None, Some(k)) if ray => Class::UnknownKind {
            api_version: api_version.unwrap_or_default().to_string(),
            kind: k.to_string(),
        },
        (None, None) if ray => Class::NoKind {
            api_version: api_version.unwrap_or_default().to_string(),
        },
        (None, Some(k)) => Class::NotRay(format!("kind {k} is not one raygate checks")),
        (None, None) => Class::NotRay("no kind".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(a: Option<&str>, k: Option<&str>) -> Class {
        classify(a, k, &[], &[])
    }

    #[test]
    fn known_kinds_are_checked_unknown_ray_io_is_an_error() {
        assert!(matches!(
            c(Some("ray.io/v1"), Some("RayCluster")),
            Class::Check { .. }
        ));
        assert!(matches!(
            c(Some("ray.io/v1alpha1"), Some("RayCluster")),
            Class::Check { .. }
        ));
        assert_eq!(
            c(Some("ray.io/v1"), Some("RayClustr")),
            Class::UnknownKind {
                api_version: "ray.io/v1".into(),
                kind: "RayClustr".into()
            }
        );
        assert!(matches!(
            c(Some("ray.io/v2"), Some("RayCluster")),
            Class::UnknownVersion { .. }
        ));
        assert!(matches!(
            c(None, Some("RayCluster")),
            Class::UnknownVersion {
                api_version: None,
                ..
            }
        ));
        assert!(matches!(c(Some("ray.io/v1"), None), Class::NoKind { .. }));
        assert!(matches!(c(Some("v1"), Some("ConfigMap")), Class::NotRay(_)));
        assert!(matches!(
            c(Some("example.com/v1"), Some("RayCluster")),
            Class::NotRay(_)
        ));
        // `ray.io.example.com` is another group.
        assert!(matches!(
            c(Some("ray.io.example.com/v1"), Some("RayThing")),
            Class::NotRay(_)
        ));
        assert!(matches!(c(None, None), Class::NotRay(_)));
    }

    #[test]
    fn skip_and_reject_patterns() {
        let p = parse_patterns("RayJob, ray.io/v1/RayService,v1/Secret,,").unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[1].api_version.as_deref(), Some("ray.io/v1"));
        assert_eq!(p[1].to_string(), "ray.io/v1/RayService");
        assert!(parse_patterns("Ray Job").is_err());
        assert!(parse_patterns("/RayJob").is_err());
        assert!(parse_patterns("a/b/c/RayJob").is_err());
        let s = classify(Some("ray.io/v1"), Some("RayJob"), &p, &[]);
        assert!(matches!(s, Class::SkipRequested(_)), "{s:?}");
        // apiVersion must match when given: a known kind not matched is checked
        let s = classify(Some("ray.io/v1alpha1"), Some("RayService"), &p, &[]);
        assert!(matches!(s, Class::Check { .. }), "{s:?}");
        let r = parse_patterns("Secret").unwrap();
        assert_eq!(
            classify(Some("v1"), Some("Secret"), &[], &r),
            Class::Rejected("Secret".into())
        );
        // skip wins over reject
        assert!(matches!(
            classify(Some("v1"), Some("Secret"), &p, &r),
            Class::SkipRequested(_)
        ));
        // a checked kind can be skipped or rejected too
        let rc = parse_patterns("RayCluster").unwrap();
        assert!(matches!(
            classify(Some("ray.io/v1"), Some("RayCluster"), &rc, &[]),
            Class::SkipRequested(_)
        ));
        assert!(matches!(
            classify(Some("ray.io/v1"), Some("RayCluster"), &[], &rc),
            Class::Rejected(_)
        ));
    }
}
