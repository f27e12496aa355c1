//! The snapshot format of `raygate autoscale plan` (YAML). Pure: text in, `EngineInput` out;
//! reading `rayClusterFile` is left to the caller through a closure.

use super::types::*;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Scenario {
    #[serde(default)]
    ray_cluster: Option<Value>,
    #[serde(default)]
    ray_cluster_file: Option<String>,
    #[serde(default)]
    options: ScenarioOptions,
    #[serde(default)]
    pods: Vec<WorkerPodDoc>,
    #[serde(default)]
    ray: RayDoc,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ScenarioOptions {
    #[serde(default)]
    max_concurrent_launches: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WorkerPodDoc {
    name: String,
    group: String,
    #[serde(default)]
    phase: PodPhase,
    #[serde(default)]
    deleting: bool,
    /// Multi-host replica name (`ray.io/worker-group-replica-name`).
    #[serde(default)]
    replica: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RayDoc {
    #[serde(default)]
    nodes: Vec<NodeDoc>,
    #[serde(default)]
    demands: Vec<DemandDoc>,
    #[serde(default)]
    placement_groups: Vec<PgDoc>,
    #[serde(default)]
    constraints: Vec<DemandDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NodeDoc {
    pod: String,
    #[serde(default)]
    total: ResourceMap,
    /// Absent: the node is free (available = total).
    #[serde(default)]
    available: Option<ResourceMap>,
    /// Absent or 0: busy.
    #[serde(default)]
    idle_seconds: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DemandDoc {
    resources: ResourceMap,
    #[serde(default = "one")]
    count: u64,
}

fn one() -> u64 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PgDoc {
    strategy: PlacementStrategy,
    bundles: Vec<ResourceMap>,
}

/// A problem with a scenario or its `rayClusterFile`: what, in which file, and where, for the
/// same `file:line:col` rendering `validate` gives its findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// `YAML` for a syntax error, `scenario` for content that is not a scenario.
    pub rule: &'static str,
    /// The file the problem is in (the scenario, or its `rayClusterFile`).
    pub file: String,
    pub message: String,
    /// Field path in `file` (`pods[2].phase`); empty for syntax errors and whole-file problems.
    pub path: String,
    /// 1-based line and column of the field (or of its nearest ancestor); 0 when the problem
    /// has no place in the file.
    pub line: usize,
    pub col: usize,
    /// Width of the field's key, to underline.
    pub len: usize,
    /// The whole source line at `line` (windowing long lines is the renderer's business).
    pub source: Option<String>,
}

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)?;
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.col, self.message
            )?;
        }
        if !self.path.is_empty() {
            write!(f, " ({})", self.path)?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}

/// One parsed YAML (or JSON) file, kept for locating field paths in it.
struct Source<'a> {
    file: &'a str,
    text: &'a str,
    doc: crate::yaml::Document,
}

impl Source<'_> {
    fn parse<'a>(file: &'a str, text: &'a str) -> Result<Source<'a>, Box<ScenarioError>> {
        let syntax = |e: crate::yaml::YamlError| {
            Box::new(ScenarioError {
                rule: "YAML",
                file: file.to_string(),
                message: e.message,
                path: String::new(),
                line: e.line,
                col: e.col,
                len: 1,
                source: line_of(text, e.line),
            })
        };
        let mut docs = crate::yaml::documents(text, 0);
        let doc = match docs.next() {
            Some(Ok(d)) => d,
            Some(Err(e)) => return Err(syntax(e)),
            None => {
                return Err(Box::new(ScenarioError {
                    rule: "scenario",
                    file: file.to_string(),
                    message: "no YAML document".into(),
                    path: String::new(),
                    line: 0,
                    col: 0,
                    len: 0,
                    source: None,
                }));
            }
        };
        let src = Source { file, text, doc };
        match docs.next() {
            None => Ok(src),
            Some(Err(e)) => Err(syntax(e)),
            Some(Ok(d)) => Err(src.error_at(
                d.line,
                1,
                "a second YAML document: a scenario is one document".into(),
            )),
        }
    }

    /// An error about `path` (located at it, or at its nearest ancestor in the file).
    fn error(&self, path: &str, message: String) -> Box<ScenarioError> {
        let loc = self.doc.locate(path);
        let mut e = self.error_at(loc.line, loc.col, message);
        e.path = path.to_string();
        e.len = loc.len;
        e
    }

    fn error_at(&self, line: usize, col: usize, message: String) -> Box<ScenarioError> {
        Box::new(ScenarioError {
            rule: "scenario",
            file: self.file.to_string(),
            message,
            path: String::new(),
            line,
            col,
            len: 1,
            source: line_of(self.text, line),
        })
    }
}

fn line_of(text: &str, line: usize) -> Option<String> {
    let l = text.lines().nth(line.checked_sub(1)?)?;
    Some(l.trim_end_matches('\r').to_string())
}

/// Reads a `rayClusterFile`: its display name and text, or why not.
pub type ClusterLoader<'a> = dyn Fn(&str) -> Result<(String, String), String> + 'a;

/// Parses a scenario (YAML or JSON) named `name`. `load_cluster(path)` reads `rayClusterFile`
/// and returns its display name and text (relative paths are the caller's business). Errors
/// name the file, line and column, and the field.
pub fn parse_scenario(
    name: &str,
    text: &str,
    load_cluster: &ClusterLoader<'_>,
) -> Result<EngineInput, Box<ScenarioError>> {
    let src = Source::parse(name, text)?;
    let doc: Scenario =
        crate::rules::deserialize_with_path(&src.doc.value).map_err(|(p, m)| src.error(&p, m))?;
    let ray_cluster = match (doc.ray_cluster, doc.ray_cluster_file) {
        (Some(rc), None) => rc,
        (None, Some(path)) => {
            let (file, text) = load_cluster(&path)
                .map_err(|e| src.error("rayClusterFile", format!("rayClusterFile: {e}")))?;
            Source::parse(&file, &text)?.doc.value
        }
        (Some(_), Some(_)) => {
            return Err(src.error(
                "rayClusterFile",
                "give either rayCluster or rayClusterFile, not both".into(),
            ));
        }
        (None, None) => {
            return Err(src.error("", "missing rayCluster (or rayClusterFile)".into()));
        }
    };
    if !ray_cluster.is_object() {
        return Err(src.error("rayCluster", "rayCluster is not a mapping".into()));
    }
    // A repeated name would make two pods (or two Ray nodes) one: an error, never a silent merge.
    let mut seen = std::collections::HashMap::new();
    for (i, p) in doc.pods.iter().enumerate() {
        if let Some(j) = seen.insert(p.name.as_str(), i) {
            return Err(src.error(
                &format!("pods[{i}].name"),
                format!("pods[{i}].name {:?} repeats pods[{j}].name", p.name),
            ));
        }
    }
    let mut seen = std::collections::HashMap::new();
    for (i, n) in doc.ray.nodes.iter().enumerate() {
        if let Some(j) = seen.insert(n.pod.as_str(), i) {
            return Err(src.error(
                &format!("ray.nodes[{i}].pod"),
                format!("ray.nodes[{i}].pod {:?} repeats ray.nodes[{j}].pod", n.pod),
            ));
        }
    }
    let worker_pods: std::collections::HashSet<&str> =
        doc.pods.iter().map(|p| p.name.as_str()).collect();
    let mut nodes = Vec::with_capacity(doc.ray.nodes.len());
    for (i, n) in doc.ray.nodes.iter().enumerate() {
        let idle = n.idle_seconds.unwrap_or(0.0);
        if !idle.is_finite() || idle < 0.0 {
            return Err(src.error(
                &format!("ray.nodes[{i}].idleSeconds"),
                format!("ray.nodes[{i}].idleSeconds {idle} is not a non-negative number"),
            ));
        }
        let idle_ms = (idle * 1000.0).round() as u64;
        nodes.push(RayNode {
            pod: n.pod.clone(),
            node_id: None,
            node_type: None,
            kind: if worker_pods.contains(n.pod.as_str()) {
                NodeKind::Worker
            } else {
                NodeKind::Head
            },
            total: n.total.clone(),
            available: n.available.clone().unwrap_or_else(|| n.total.clone()),
            labels: BTreeMap::new(),
            idle_ms,
            status: if idle_ms > 0 {
                RayNodeStatus::Idle
            } else {
                RayNodeStatus::Running
            },
        });
    }
    let demand = |d: &DemandDoc| ResourceDemand {
        resources: d.resources.clone(),
        count: d.count,
    };
    Ok(EngineInput {
        ray_cluster,
        pods: doc
            .pods
            .into_iter()
            .map(|p| WorkerPod {
                name: p.name,
                group: p.group,
                phase: p.phase,
                deleting: p.deleting,
                replica: p.replica,
            })
            .collect(),
        ray: RayState {
            nodes,
            demands: doc.ray.demands.iter().map(demand).collect(),
            placement_groups: doc
                .ray
                .placement_groups
                .into_iter()
                .map(|pg| PlacementGroupDemand {
                    id: None,
                    strategy: pg.strategy,
                    bundles: pg.bundles,
                })
                .collect(),
            constraints: doc.ray.constraints.iter().map(demand).collect(),
        },
        options: EngineOptions {
            max_concurrent_launches: doc
                .options
                .max_concurrent_launches
                .unwrap_or(EngineOptions::default().max_concurrent_launches),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_file(_: &str) -> Result<(String, String), String> {
        Err("no files here".into())
    }

    #[test]
    fn unknown_key_has_location() {
        let text = "rayCluster: {spec: {}}\npods:\n  - {name: w1, group: g, phaze: Running}\n";
        let e = parse_scenario("s.yaml", text, &no_file).unwrap_err();
        assert!(e.message.contains("phaze"), "{e}");
        assert_eq!((e.file.as_str(), e.line), ("s.yaml", 3), "{e}");
    }

    #[test]
    fn defaults() {
        let text = "rayCluster: {spec: {}}\npods: [{name: w1, group: g}]\nray:\n  nodes: [{pod: w1, total: {CPU: 1}}, {pod: head, total: {CPU: 0}}]\n  demands: [{resources: {CPU: 1}}]\n";
        let i = parse_scenario("s.yaml", text, &no_file).unwrap();
        assert_eq!(i.pods[0].phase, PodPhase::Running);
        assert!(!i.pods[0].deleting);
        assert_eq!(i.ray.nodes[0].kind, NodeKind::Worker);
        assert_eq!(i.ray.nodes[1].kind, NodeKind::Head);
        assert_eq!(i.ray.nodes[0].available.get("CPU"), Some(&1.0));
        assert_eq!(i.ray.demands[0].count, 1);
        assert_eq!(i.options.max_concurrent_launches, 10);
    }
}
