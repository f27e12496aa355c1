//! Property tests of the engine's invariants on random snapshots.

use proptest::prelude::*;
use raygate::autoscale::plan;
use raygate::autoscale::types::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
struct GroupGen {
    cpu: u32,
    gpu: u32,
    min: u32,
    max: u32,
    replicas: u32,
    hosts: u32,
    idle_timeout: Option<u32>,
    /// per pod: (phase 0 pending / 1 running-no-node / 2 ray node, idle seconds, cpu used)
    pods: Vec<(u8, u32, u32)>,
}

fn group_gen() -> impl Strategy<Value = GroupGen> {
    (
        1u32..8,
        0u32..3,
        0u32..3,
        0u32..6,
        0u32..6,
        1u32..3,
        proptest::option::of(1u32..200),
    )
        .prop_flat_map(|(cpu, gpu, min, extra, replicas, hosts, idle_timeout)| {
            let max = min + extra;
            // replicas within [0, max]: a CR asking for more than maxReplicas is trimmed by design
            let replicas = replicas.min(max);
            let max_pods = (max * hosts) as usize;
            (
                Just((cpu, gpu, min, max, replicas, hosts, idle_timeout)),
                proptest::collection::vec(
                    (0u8..3, prop_oneof![Just(0u32), 1u32..400], 0u32..=cpu),
                    0..=max_pods,
                ),
            )
        })
        .prop_map(
            |((cpu, gpu, min, max, replicas, hosts, idle_timeout), pods)| GroupGen {
                cpu,
                gpu,
                min,
                max,
                replicas,
                hosts,
                idle_timeout,
                pods,
            },
        )
}

#[derive(Debug, Clone)]
struct Case {
    groups: Vec<GroupGen>,
    global_idle: Option<u32>,
    conservative: bool,
    demands: Vec<(u32, u32, u64)>,
    constraints: Vec<(u32, u64)>,
    pgs: Vec<(u8, Vec<(u32, u32)>)>,
    head_cpu: u32,
    max_concurrent: u32,
}

fn case_gen() -> impl Strategy<Value = Case> {
    (
        proptest::collection::vec(group_gen(), 1..4),
        proptest::option::of(1u32..200),
        any::<bool>(),
        proptest::collection::vec((0u32..10, 0u32..3, 1u64..40), 0..4),
        proptest::collection::vec((1u32..10, 1u64..5), 0..2),
        proptest::collection::vec(
            (0u8..4, proptest::collection::vec((0u32..5, 0u32..2), 1..4)),
            0..3,
        ),
        0u32..3,
        1u32..20,
    )
        .prop_map(
            |(
                groups,
                global_idle,
                conservative,
                demands,
                constraints,
                pgs,
                head_cpu,
                max_concurrent,
            )| Case {
                groups,
                global_idle,
                conservative,
                demands,
                constraints,
                pgs,
                head_cpu,
                max_concurrent,
            },
        )
}

fn res(cpu: u32, gpu: u32) -> ResourceMap {
    let mut m = BTreeMap::new();
    if cpu > 0 || gpu == 0 {
        m.insert("CPU".to_string(), cpu as f64);
    }
    if gpu > 0 {
        m.insert("GPU".to_string(), gpu as f64);
    }
    m
}

fn build(c: &Case) -> EngineInput {
    let mut groups = Vec::new();
    let mut pods = Vec::new();
    let mut nodes = vec![RayNode {
        pod: "head".into(),
        node_id: None,
        node_type: None,
        kind: NodeKind::Head,
        total: res(c.head_cpu, 0),
        available: res(c.head_cpu, 0),
        labels: BTreeMap::new(),
        idle_ms: 1_000_000,
        status: RayNodeStatus::Idle,
    }];
    for (gi, g) in c.groups.iter().enumerate() {
        let name = format!("g{gi}");
        let mut rsp = json!({"num-cpus": g.cpu.to_string()});
        if g.gpu > 0 {
            rsp["num-gpus"] = json!(g.gpu.to_string());
        }
        let mut spec = json!({
            "groupName": name, "replicas": g.replicas, "minReplicas": g.min, "maxReplicas": g.max,
            "numOfHosts": g.hosts, "rayStartParams": rsp,
            "template": {"spec": {"containers": [{"name": "w", "image": "rayproject/ray:2.60.0"}]}}
        });
        if let Some(t) = g.idle_timeout {
            spec["idleTimeoutSeconds"] = json!(t);
        }
        groups.push(spec);
        for (pi, (phase, idle, used)) in g.pods.iter().enumerate() {
            let pod = format!("{name}-p{pi}");
            pods.push(WorkerPod {
                name: pod.clone(),
                group: name.clone(),
                phase: if *phase == 0 {
                    PodPhase::Pending
                } else {
                    PodPhase::Running
                },
                deleting: false,
                // multi-host pods in replicas of `hosts`, in order (a short last one is
                // incomplete); every third group leaves them unlabeled
                replica: (g.hosts > 1 && gi % 3 != 2)
                    .then(|| format!("{name}-r{}", pi as u32 / g.hosts)),
            });
            if *phase == 2 {
                let idle = if *used > 0 { 0 } else { *idle };
                nodes.push(RayNode {
                    pod,
                    node_id: None,
                    node_type: None,
                    kind: NodeKind::Worker,
                    total: res(g.cpu, g.gpu),
                    available: res(g.cpu - used, if *used > 0 { 0 } else { g.gpu }),
                    labels: BTreeMap::new(),
                    idle_ms: idle as u64 * 1000,
                    status: if idle > 0 {
                        RayNodeStatus::Idle
                    } else {
                        RayNodeStatus::Running
                    },
                });
            }
        }
    }
    let mut ao = serde_json::Map::new();
    ao.insert("version".into(), json!("v2"));
    if let Some(t) = c.global_idle {
        ao.insert("idleTimeoutSeconds".into(), json!(t));
    }
    if c.conservative {
        ao.insert("upscalingMode".into(), json!("Conservative"));
    }
    let ray_cluster: Value = json!({
        "apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "rc"},
        "spec": {"enableInTreeAutoscaling": true, "autoscalerOptions": ao,
                 "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [{"name": "h", "image": "rayproject/ray:2.60.0"}]}}},
                 "workerGroupSpecs": groups}
    });
    let strategies = [
        PlacementStrategy::Pack,
        PlacementStrategy::Spread,
        PlacementStrategy::StrictPack,
        PlacementStrategy::StrictSpread,
    ];
    EngineInput {
        ray_cluster,
        pods,
        ray: RayState {
            nodes,
            demands: c
                .demands
                .iter()
                .map(|(cpu, gpu, n)| ResourceDemand {
                    resources: res(*cpu, *gpu),
                    count: *n,
                })
                .collect(),
            placement_groups: c
                .pgs
                .iter()
                .map(|(s, b)| PlacementGroupDemand {
                    id: None,
                    strategy: strategies[*s as usize],
                    bundles: b.iter().map(|(cpu, gpu)| res(*cpu, *gpu)).collect(),
                })
                .collect(),
            constraints: c
                .constraints
                .iter()
                .map(|(cpu, n)| ResourceDemand {
                    resources: res(*cpu, 0),
                    count: *n,
                })
                .collect(),
        },
        options: EngineOptions {
            max_concurrent_launches: c.max_concurrent,
        },
    }
}

fn replica_ops(p: &Plan) -> BTreeMap<usize, u64> {
    p.patch
        .iter()
        .filter_map(|op| {
            let path = op["path"].as_str()?;
            let i = path
                .strip_prefix("/spec/workerGroupSpecs/")?
                .strip_suffix("/replicas")?;
            Some((i.parse().ok()?, op["value"].as_u64()?))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn replicas_stay_within_bounds(c in case_gen()) {
        let input = build(&c);
        let p = plan(&input);
        prop_assert!(p.violations.is_empty(), "{:?}", p.violations);
        for (i, v) in replica_ops(&p) {
            let g = &c.groups[i];
            prop_assert!(v <= g.max as u64, "group {i}: replicas {v} > max {}", g.max);
            prop_assert!(v >= g.min as u64, "group {i}: replicas {v} < min {}", g.min);
        }
        for (gi, gp) in p.groups.iter().enumerate() {
            prop_assert!(gp.replicas <= c.groups[gi].max);
        }
        let launched: u32 = p.groups.iter().map(|g| g.launch).sum();
        let hosts_max = c.groups.iter().map(|g| g.hosts).max().unwrap_or(1);
        prop_assert!(launched <= c.max_concurrent + hosts_max, "launched {launched}");
    }

    #[test]
    fn never_terminates_a_busy_node_or_the_head(c in case_gen()) {
        let input = build(&c);
        let p = plan(&input);
        let timeout_of = |gi: usize| c.groups[gi].idle_timeout.or(c.global_idle).unwrap_or(60) as u64 * 1000;
        for (gi, gp) in p.groups.iter().enumerate() {
            for name in &gp.terminate {
                prop_assert_ne!(name.as_str(), "head");
                let node = input.ray.nodes.iter().find(|n| &n.pod == name);
                let node = node.ok_or_else(|| TestCaseError::fail(format!("{name} has no Ray node")))?;
                prop_assert!(node.idle_ms > timeout_of(gi), "{name} idle {} ms terminated (timeout {})", node.idle_ms, timeout_of(gi));
            }
        }
    }

    #[test]
    fn multi_host_replicas_go_whole_and_only_when_every_host_is_idle(c in case_gen()) {
        let input = build(&c);
        let p = plan(&input);
        let timeout_of = |gi: usize| c.groups[gi].idle_timeout.or(c.global_idle).unwrap_or(60) as u64 * 1000;
        for (gi, gp) in p.groups.iter().enumerate() {
            if c.groups[gi].hosts < 2 {
                continue;
            }
            let named: std::collections::BTreeSet<&str> = gp.terminate.iter().map(String::as_str).collect();
            let mine: Vec<&WorkerPod> = input.pods.iter().filter(|w| w.group == gp.name).collect();
            for w in &mine {
                if !named.contains(w.name.as_str()) {
                    continue;
                }
                // every pod of its unit (its replica, or all unlabeled pods) is named and idle
                for m in mine.iter().filter(|m| m.replica == w.replica) {
                    prop_assert!(named.contains(m.name.as_str()), "{} named without its replica-mate {}", w.name, m.name);
                    let node = input.ray.nodes.iter().find(|n| n.pod == m.name);
                    let node = node.ok_or_else(|| TestCaseError::fail(format!("{} has no Ray node", m.name)))?;
                    prop_assert!(node.idle_ms > timeout_of(gi), "{} busy but named with {}", m.name, w.name);
                }
            }
            if !gp.terminate.is_empty() {
                // replicas go down by whole replicas
                // (the engine counts the replicas that exist, which can exceed spec.replicas)
                let g = &c.groups[gi];
                let existing = (g.pods.len() as u32).div_ceil(g.hosts);
                let old = g.replicas.max(g.min).max(existing);
                prop_assert!(gp.replicas <= old, "replicas {} > {old}", gp.replicas);
            }
        }
    }

    #[test]
    fn no_demand_and_all_busy_means_no_patch(mut c in case_gen()) {
        c.demands.clear();
        c.constraints.clear();
        c.pgs.clear();
        for g in &mut c.groups {
            for p in &mut g.pods {
                p.1 = 0;
            }
        }
        let p = plan(&build(&c));
        prop_assert!(p.patch.is_empty(), "{:?}", p.patch);
        prop_assert!(p.groups.iter().all(|g| g.launch == 0 && g.terminate.is_empty()));
    }

    #[test]
    fn same_input_same_output(c in case_gen()) {
        let input = build(&c);
        prop_assert_eq!(plan(&input), plan(&input.clone()));
    }
}
