//! `ray status`-style text (Ray autoscaler v2 `ClusterStatusFormatter` layout, spec §5.2),
//! followed by the plan. Pure: the timestamp is a parameter.

use super::types::*;
use std::fmt::Write;

/// Python's `repr(float)` for the values that occur here.
pub fn py_float(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e16 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// Python's `repr(dict)` of a bundle with float values: `{'CPU': 1.0, 'GPU': 1.0}`.
pub fn py_bundle(m: &ResourceMap) -> String {
    let parts: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("'{k}': {}", py_float(*v)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// Ray's `format_memory`.
pub fn format_memory(bytes: f64) -> String {
    for (suffix, unit) in [
        ("TiB", 1u64 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ] {
        if bytes >= unit as f64 {
            return format!("{:.2}{suffix}", bytes / unit as f64);
        }
    }
    format!("{}B", bytes as i64)
}

/// Renders the status text and the plan.
pub fn render(plan: &Plan, now: &str) -> String {
    let st = &plan.status;
    let header = format!("======== Autoscaler status: {now} ========");
    let sep = "-".repeat(header.chars().count());
    let mut lines: Vec<String> = vec![header, "Node status".into(), sep.clone(), "Active:".into()];
    let counts = |v: &[(String, u32)], empty: &str| -> Vec<String> {
        if v.is_empty() {
            vec![empty.to_string()]
        } else {
            v.iter().map(|(t, c)| format!(" {c} {t}")).collect()
        }
    };
    lines.extend(counts(&st.active, " (no active nodes)"));
    lines.push("Idle:".into());
    lines.extend(counts(&st.idle, " (no idle nodes)"));
    lines.push("Pending:".into());
    let mut pending: Vec<String> = st
        .launching
        .iter()
        .map(|(t, n)| format!(" {t}, {n} launching"))
        .collect();
    pending.extend(
        st.pending
            .iter()
            .map(|(pod, t, d)| format!(" {pod}: {t}, {}", d.to_lowercase())),
    );
    if pending.is_empty() {
        pending.push(" (no pending nodes)".into());
    }
    lines.extend(pending);
    lines.push("Recent failures:".into());
    if st.failed.is_empty() {
        lines.push(" (no failures)".into());
    } else {
        lines.extend(
            st.failed
                .iter()
                .take(20)
                .map(|(pod, t)| format!(" {t}: NodeTerminated (instance_id: {pod})")),
        );
    }
    lines.push(String::new());
    lines.push("Resources".into());
    lines.push(sep);
    lines.push("Total Usage:".into());
    for (name, (used, total)) in &st.usage {
        if name.starts_with("node:")
            || name.contains("_group_")
            || name.starts_with("accelerator_type:")
        {
            continue;
        }
        if name == "memory" || name == "object_store_memory" {
            lines.push(format!(
                " {}/{} {name}",
                format_memory(*used),
                format_memory(*total)
            ));
        } else {
            lines.push(format!(" {}/{} {name}", py_float(*used), py_float(*total)));
        }
    }
    lines.push(String::new());
    lines.push("From request_resources:".into());
    if st.constraints.is_empty() {
        lines.push(" (none)".into());
    } else {
        for d in &st.constraints {
            lines.push(format!(
                " {}: {} from request_resources()",
                py_bundle(&d.resources),
                d.count
            ));
        }
    }
    lines.push("Pending Demands:".into());
    let mut demand_lines: Vec<String> = st
        .demands
        .iter()
        .map(|d| {
            format!(
                " {}: {}+ pending tasks/actors",
                py_bundle(&d.resources),
                d.count
            )
        })
        .collect();
    for (strategy, bundles, n) in &st.placement_groups {
        let mut grouped: Vec<(&ResourceMap, u64)> = Vec::new();
        for b in bundles {
            match grouped.iter_mut().find(|(g, _)| *g == b) {
                Some(e) => e.1 += 1,
                None => grouped.push((b, 1)),
            }
        }
        let parts: Vec<String> = grouped
            .iter()
            .map(|(b, c)| format!("{} * {c}", py_bundle(b)))
            .collect();
        demand_lines.push(format!(
            " {} ({}): {n}+ pending placement groups",
            parts.join(", "),
            strategy.as_str()
        ));
    }
    if demand_lines.is_empty() {
        demand_lines.push(" (no resource demands)".into());
    }
    lines.extend(demand_lines);

    // the plan (raygate's addition)
    lines.push(String::new());
    lines.push("Plan".into());
    lines.push("-".repeat(lines[2].len()));
    let mut out = lines.join("\n");
    out.push('\n');
    if !plan.violations.is_empty() {
        out.push_str("Invalid RayCluster (no patch):\n");
        for v in &plan.violations {
            let _ = writeln!(out, " {}: {} [{}]", v.path, v.message, v.rule);
        }
    }
    for g in &plan.groups {
        let _ = write!(out, " {}: replicas {}", g.name, g.replicas);
        if g.launch > 0 {
            let _ = write!(out, ", launch {}", g.launch);
        }
        if !g.terminate.is_empty() {
            let _ = write!(out, ", terminate {}", g.terminate.join(" "));
        }
        let reasons = g.deferred.reasons();
        if let [(key, n)] = reasons.as_slice() {
            let _ = write!(out, ", {n} deferred ({})", deferred_label(key));
        } else if !reasons.is_empty() {
            let parts: Vec<String> = reasons
                .iter()
                .map(|(key, n)| format!("{n} {}", deferred_label(key)))
                .collect();
            let _ = write!(
                out,
                ", {} deferred ({})",
                g.deferred.total(),
                parts.join(", ")
            );
        }
        if g.blocked {
            out.push_str(", blocked: waiting for workersToDelete pods to go");
        }
        out.push('\n');
    }
    if !plan.capped.is_empty() {
        out.push_str("Capped by maxReplicas:\n");
        for d in &plan.capped {
            let _ = writeln!(
                out,
                " {}: {} (fits {}, at maxReplicas)",
                py_bundle(&d.resources),
                d.count,
                d.groups.join(", ")
            );
        }
    }
    if !plan.infeasible.is_empty() {
        out.push_str("Infeasible (no worker group fits):\n");
        for d in &plan.infeasible {
            let _ = writeln!(out, " {}: {}", py_bundle(&d.resources), d.count);
        }
    }
    if plan.patch.is_empty() {
        out.push_str("Patch: (none)\n");
    } else {
        out.push_str("Patch:\n");
        for op in &plan.patch {
            let _ = writeln!(out, " {op}");
        }
    }
    out
}

/// The text of a [`Deferred::reasons`] key.
fn deferred_label(key: &str) -> &str {
    match key {
        "upscalingRate" => "upscaling rate",
        "workersToDelete" => "workersToDelete pending",
        k => k,
    }
}

fn phase_name(p: PodPhase) -> &'static str {
    match p {
        PodPhase::Pending => "Pending",
        PodPhase::Running => "Running",
        PodPhase::Succeeded => "Succeeded",
        PodPhase::Failed => "Failed",
        PodPhase::Unknown => "Unknown",
    }
}

/// `2 Running, 1 Pending (1 terminating)`, or `(none)`.
fn pods_by_phase(pods: &[&WorkerPod]) -> String {
    if pods.is_empty() {
        return "(none)".into();
    }
    let order = [
        PodPhase::Running,
        PodPhase::Pending,
        PodPhase::Succeeded,
        PodPhase::Failed,
        PodPhase::Unknown,
    ];
    let parts: Vec<String> = order
        .iter()
        .filter_map(|ph| {
            let n = pods.iter().filter(|p| p.phase == *ph).count();
            (n > 0).then(|| format!("{n} {}", phase_name(*ph)))
        })
        .collect();
    let mut s = parts.join(", ");
    let deleting = pods.iter().filter(|p| p.deleting).count();
    if deleting > 0 {
        let _ = write!(s, " ({deleting} terminating)");
    }
    s
}

/// The Kubernetes side of `raygate autoscale status <ns>/<cluster>`: per worker group the
/// desired replicas (clamp(replicas, min, max), as KubeRay computes it) with min/max, the
/// `workersToDelete` list and the group's pods by phase. `rc` is the RayCluster with CRD
/// defaults applied; `gcs` says which GCS was asked; `width` is the separator's (that of the
/// `ray status` text above it).
pub fn render_kubernetes(
    rc: &serde_json::Value,
    pods: &[WorkerPod],
    gcs: &str,
    width: usize,
) -> String {
    let s = |p: &str| rc.pointer(p).and_then(|v| v.as_str()).unwrap_or("?");
    let mut out = String::new();
    out.push_str("Kubernetes\n");
    out.push_str(&"-".repeat(width));
    out.push('\n');
    let _ = writeln!(
        out,
        "RayCluster: {}/{}",
        s("/metadata/namespace"),
        s("/metadata/name")
    );
    let _ = writeln!(out, "GCS: {gcs}");
    out.push_str("Worker groups:\n");
    let groups = rc
        .pointer("/spec/workerGroupSpecs")
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    if groups.is_empty() {
        out.push_str(" (no worker groups)\n");
    }
    let mut known = std::collections::BTreeSet::new();
    for g in &groups {
        let name = g.get("groupName").and_then(|v| v.as_str()).unwrap_or("?");
        known.insert(name.to_string());
        let int = |k: &str| g.get(k).and_then(|v| v.as_i64());
        let min = int("minReplicas").unwrap_or(0).max(0);
        let max = int("maxReplicas").unwrap_or(i32::MAX as i64).max(min);
        let replicas = int("replicas");
        let hosts = int("numOfHosts").unwrap_or(1).max(1);
        let suspended = g.get("suspend").and_then(|v| v.as_bool()) == Some(true);
        let desired = if suspended {
            0
        } else {
            replicas.unwrap_or(0).clamp(min, max)
        };
        let rep = replicas.map_or("unset".to_string(), |r| r.to_string());
        let _ = write!(out, " {name}: desired {desired}");
        if hosts > 1 {
            let _ = write!(
                out,
                " replicas x {hosts} hosts = {} pods",
                desired.saturating_mul(hosts)
            );
        }
        let _ = write!(out, " (replicas {rep}, min {min}, max {max})");
        if suspended {
            out.push_str(", suspended");
        }
        out.push('\n');
        let wtd: Vec<&str> = g
            .pointer("/scaleStrategy/workersToDelete")
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  workersToDelete: {}",
            if wtd.is_empty() {
                "(none)".to_string()
            } else {
                wtd.join(", ")
            }
        );
        let mine: Vec<&WorkerPod> = pods.iter().filter(|p| p.group == name).collect();
        let _ = writeln!(out, "  pods: {}", pods_by_phase(&mine));
    }
    let stray: Vec<&WorkerPod> = pods.iter().filter(|p| !known.contains(&p.group)).collect();
    if !stray.is_empty() {
        let _ = writeln!(
            out,
            " pods of no worker group in the spec: {}",
            pods_by_phase(&stray)
        );
    }
    let all: Vec<&WorkerPod> = pods.iter().collect();
    let _ = writeln!(out, "Worker pods by phase: {}", pods_by_phase(&all));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_reprs() {
        assert_eq!(py_float(1.0), "1.0");
        assert_eq!(py_float(0.5), "0.5");
        assert_eq!(format_memory(1073741824.0), "1.00GiB");
        assert_eq!(format_memory(0.0), "0B");
        let m = ResourceMap::from([("CPU".to_string(), 4.0)]);
        assert_eq!(py_bundle(&m), "{'CPU': 4.0}");
    }

    #[test]
    fn kubernetes_section() {
        let rc = serde_json::json!({
            "metadata": {"name": "rc", "namespace": "ns"},
            "spec": {"workerGroupSpecs": [
                {"groupName": "cpu", "replicas": 30, "minReplicas": 1, "maxReplicas": 4,
                 "scaleStrategy": {"workersToDelete": ["w1"]}},
                {"groupName": "tpu", "replicas": 1, "minReplicas": 0, "maxReplicas": 2,
                 "numOfHosts": 2}
            ]}
        });
        let pod = |n: &str, g: &str, phase: PodPhase, deleting: bool| WorkerPod {
            name: n.into(),
            group: g.into(),
            phase,
            deleting,
            replica: None,
        };
        let pods = [
            pod("w1", "cpu", PodPhase::Running, true),
            pod("w2", "cpu", PodPhase::Running, false),
            pod("w3", "cpu", PodPhase::Pending, false),
            pod("x", "gone", PodPhase::Failed, false),
        ];
        let t = render_kubernetes(&rc, &pods, "127.0.0.1:1 (--gcs)", 10);
        for want in [
            "Kubernetes\n----------\nRayCluster: ns/rc\n",
            "GCS: 127.0.0.1:1 (--gcs)\n",
            " cpu: desired 4 (replicas 30, min 1, max 4)\n  workersToDelete: w1\n  pods: 2 Running, 1 Pending (1 terminating)\n",
            " tpu: desired 1 replicas x 2 hosts = 2 pods (replicas 1, min 0, max 2)\n  workersToDelete: (none)\n  pods: (none)\n",
            " pods of no worker group in the spec: 1 Failed\n",
            "Worker pods by phase: 2 Running, 1 Pending, 1 Failed (1 terminating)\n",
        ] {
            assert!(t.contains(want), "missing {want:?} in\n{t}");
        }
    }
}
