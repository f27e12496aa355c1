//! Issue #17 (5): `autoscale plan` names the limit that deferred launches (upscaling rate,
//! maxConcurrentLaunches, maxReplicas, a pending workersToDelete), and demand that only
//! maxReplicas keeps from being placed is "capped", not "Infeasible". One scenario per reason,
//! planned by the binary; the reasons come from the engine's plan (`-o json`), and the text is
//! what a user reads.

use serde_json::{Value, json};
use std::process::Command;

/// A RayCluster with one worker group `small-group` (`cpus` per pod).
fn cluster(mode: &str, replicas: u32, max: u32, cpus: u32, extra: &str) -> String {
    format!(
        "rayCluster:
  apiVersion: ray.io/v1
  kind: RayCluster
  metadata: {{name: rc, namespace: default}}
  spec:
    enableInTreeAutoscaling: true
    headGroupSpec:
      rayStartParams: {{num-cpus: '0'}}
      template: {{spec: {{containers: [{{name: ray-head, image: 'rayproject/ray:2.60.0'}}]}}}}
    workerGroupSpecs:
    - groupName: small-group
      replicas: {replicas}
      minReplicas: 0
      maxReplicas: {max}
      rayStartParams: {{num-cpus: '{cpus}'}}
      template: {{spec: {{containers: [{{name: ray-worker, image: 'rayproject/ray:2.60.0'}}]}}}}
{extra}    autoscalerOptions: {{version: v2, upscalingMode: {mode}}}
"
    )
}

/// `busy` running pods w0.. with their (busy, 1-CPU) Ray nodes, then `rest`.
fn pods_and_nodes(busy: u32, extra_pods: &str, ray_rest: &str) -> String {
    let mut pods = String::from("pods:\n");
    let mut nodes = String::from(
        "ray:\n  nodes:\n    - {pod: rc-head, total: {CPU: 0}, available: {CPU: 0}}\n",
    );
    for i in 0..busy {
        pods.push_str(&format!("  - {{name: w{i}, group: small-group}}\n"));
        nodes.push_str(&format!(
            "    - {{pod: w{i}, total: {{CPU: 1}}, available: {{CPU: 0}}}}\n"
        ));
    }
    pods.push_str(extra_pods);
    if pods == "pods:\n" {
        pods = "pods: []\n".into();
    }
    format!("{pods}{nodes}{ray_rest}")
}

/// (plan -o json, plan text) of a scenario.
fn plan(scenario: &str) -> (Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.yaml");
    std::fs::write(&path, scenario).unwrap();
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_raygate"))
            .args(["autoscale", "plan"])
            .arg(&path)
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{}\n{scenario}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    };
    let json: Value = serde_json::from_str(&run(&["-o", "json"])).unwrap();
    (json, run(&[]))
}

fn group_line(text: &str) -> &str {
    text.lines()
        .find(|l| l.starts_with(" small-group: replicas"))
        .unwrap_or_else(|| panic!("no group line in:\n{text}"))
}

#[test]
fn upscaling_rate_is_named_alone() {
    // Conservative = upscalingSpeed 1: with no worker running, one pod per iteration.
    let s = cluster("Conservative", 0, 100, 1, "")
        + &pods_and_nodes(0, "", "  demands: [{resources: {CPU: 1}, count: 5}]\n");
    let (j, text) = plan(&s);
    assert_eq!(j["groups"]["small-group"]["launch"], 1, "{j}");
    assert_eq!(
        j["groups"]["small-group"]["deferred"],
        json!({"upscalingRate": 4}),
        "{j}"
    );
    assert_eq!(
        group_line(&text),
        " small-group: replicas 1, launch 1, 4 deferred (upscaling rate)"
    );
    assert!(!text.contains("maxReplicas"), "{text}");
}

#[test]
fn max_concurrent_launches_is_named_alone() {
    let s = cluster("Default", 0, 100, 1, "")
        + "options: {maxConcurrentLaunches: 3}\n"
        + &pods_and_nodes(0, "", "  demands: [{resources: {CPU: 1}, count: 5}]\n");
    let (j, text) = plan(&s);
    assert_eq!(j["groups"]["small-group"]["launch"], 3, "{j}");
    assert_eq!(
        j["groups"]["small-group"]["deferred"],
        json!({"maxConcurrentLaunches": 2}),
        "{j}"
    );
    assert_eq!(
        group_line(&text),
        " small-group: replicas 3, launch 3, 2 deferred (maxConcurrentLaunches)"
    );
}

#[test]
fn two_limits_are_both_counted() {
    // 3 busy workers, upscalingSpeed 1: 3 per iteration; maxConcurrentLaunches 2 of them.
    let s = cluster("Conservative", 3, 100, 1, "")
        + "options: {maxConcurrentLaunches: 2}\n"
        + &pods_and_nodes(3, "", "  demands: [{resources: {CPU: 1}, count: 10}]\n");
    let (j, text) = plan(&s);
    let g = &j["groups"]["small-group"];
    assert_eq!(g["launch"], 2, "{j}");
    assert_eq!(
        g["deferred"],
        json!({"upscalingRate": 7, "maxConcurrentLaunches": 1}),
        "{j}"
    );
    assert_eq!(
        group_line(&text),
        " small-group: replicas 5, launch 2, 8 deferred (7 upscaling rate, 1 maxConcurrentLaunches)"
    );
}

#[test]
fn max_replicas_on_the_launch_is_named() {
    // replicas 2 = maxReplicas 2; w1 has failed (still counted by replicas, gives Ray no
    // node), so the scheduler wants one new pod, which `replicas` may not take.
    let s = cluster("Default", 2, 2, 1, "")
        + &pods_and_nodes(
            1,
            "  - {name: w1, group: small-group, phase: Failed}\n",
            "  demands: [{resources: {CPU: 1}, count: 1}]\n",
        );
    let (j, text) = plan(&s);
    let g = &j["groups"]["small-group"];
    assert_eq!(g["launch"], 0, "{j}");
    assert_eq!(g["deferred"], json!({"maxReplicas": 1}), "{j}");
    assert_eq!(
        group_line(&text),
        " small-group: replicas 2, 1 deferred (maxReplicas)"
    );
}

#[test]
fn a_pending_workers_to_delete_is_named() {
    let extra = "      scaleStrategy: {workersToDelete: [w0]}\n";
    let s = cluster("Default", 1, 10, 1, extra)
        + &pods_and_nodes(1, "", "  demands: [{resources: {CPU: 1}, count: 2}]\n");
    // w0 is being deleted: replicas 1 already asks for one new pod (it takes one demand), the
    // other demand needs a launch that the pending list holds back
    let (j, text) = plan(&s);
    let g = &j["groups"]["small-group"];
    assert_eq!(g["launch"], 0, "{j}");
    assert_eq!(g["deferred"], json!({"workersToDelete": 1}), "{j}");
    assert!(
        group_line(&text)
            .starts_with(" small-group: replicas 1, 1 deferred (workersToDelete pending), blocked"),
        "{text}"
    );
}

#[test]
fn demand_above_max_replicas_is_capped_not_infeasible() {
    // T-K4: maxReplicas 10, 20x{CPU:1}: 10 launch, the other 10 wait for maxReplicas.
    let s = cluster("Default", 0, 10, 1, "")
        + "options: {maxConcurrentLaunches: 100}\n"
        + &pods_and_nodes(0, "", "  demands: [{resources: {CPU: 1}, count: 20}]\n");
    let (j, text) = plan(&s);
    assert_eq!(j["groups"]["small-group"]["launch"], 10, "{j}");
    assert_eq!(j["groups"]["small-group"]["deferred"], json!({}), "{j}");
    assert_eq!(j["infeasible"], json!([]), "{j}");
    assert_eq!(
        j["capped"],
        json!([{"resources": {"CPU": 1}, "count": 10, "groups": ["small-group"]}]),
        "{j}"
    );
    assert!(!text.contains("Infeasible"), "{text}");
    assert!(
        text.contains(
            "Capped by maxReplicas:\n {'CPU': 1.0}: 10 (fits small-group, at maxReplicas)\n"
        ),
        "{text}"
    );
}

#[test]
fn demand_no_group_fits_is_infeasible_not_capped() {
    // T-K20: {CPU:8} with only 1-CPU pods.
    let s = cluster("Default", 0, 10, 1, "")
        + &pods_and_nodes(0, "", "  demands: [{resources: {CPU: 8}, count: 2}]\n");
    let (j, text) = plan(&s);
    assert_eq!(j["capped"], json!([]), "{j}");
    assert_eq!(
        j["infeasible"],
        json!([{"resources": {"CPU": 8}, "count": 2}]),
        "{j}"
    );
    assert!(!text.contains("Capped"), "{text}");
    assert!(
        text.contains("Infeasible (no worker group fits):\n {'CPU': 8.0}: 2\n"),
        "{text}"
    );
}

#[test]
fn a_gang_wider_than_max_replicas_is_capped_a_gang_no_pod_fits_is_infeasible() {
    // STRICT_SPREAD of 3 one-CPU bundles with maxReplicas 2: every bundle fits a pod, only the
    // limit keeps the gang out.
    let s = cluster("Default", 0, 2, 1, "")
        + &pods_and_nodes(
            0,
            "",
            "  placementGroups:\n    - {strategy: STRICT_SPREAD, bundles: [{CPU: 1}, {CPU: 1}, {CPU: 1}]}\n    - {strategy: PACK, bundles: [{CPU: 1}, {CPU: 4}]}\n",
        );
    let (j, _) = plan(&s);
    assert_eq!(
        j["capped"],
        json!([{"resources": {"CPU": 1}, "count": 3, "groups": ["small-group"]}]),
        "{j}"
    );
    // the PACK gang has a 4-CPU bundle no pod holds: the whole gang is infeasible
    assert_eq!(
        j["infeasible"],
        json!([{"resources": {"CPU": 1}, "count": 1}, {"resources": {"CPU": 4}, "count": 1}]),
        "{j}"
    );
}
