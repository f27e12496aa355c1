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
        if g.deferred > 0 {
            let _ = write!(
                out,
                ", {} deferred (upscaling rate, maxConcurrentLaunches or maxReplicas)",
                g.deferred
            );
        }
        if g.blocked {
            out.push_str(", blocked: waiting for workersToDelete pods to go");
        }
        out.push('\n');
    }
    if !plan.infeasible.is_empty() {
        out.push_str("Infeasible:\n");
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
}
