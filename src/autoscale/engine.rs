//! The autoscaling decision: one pure function from a snapshot to a plan (Ray autoscaler v2
//! scheduler semantics + v2 KubeRay provider patch arithmetic). No I/O, no clock.

use super::engine_config::{ClusterConfig, cluster_config};
use super::engine_sched::{Ctx, Node, NodeStatus, Req, SCALE, Source, to_fixed};
use super::types::*;
use crate::violation::{ValidateOptions, Violation};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

const IMPLICIT_PREFIX: &str = "node:__internal_implicit_resource_";
const MAX_RELEVANT_RESOURCES: usize = 64;
const MAX_PLACEHOLDER_PODS: u64 = 1_000_000;
/// Bound on the nodes one plan may add (memory and time stay bounded for absurd demands; the
/// rest is reported infeasible).
const MAX_NEW_NODES: u64 = 1_000_000;

/// Plans one autoscaler iteration.
pub fn plan(input: &EngineInput) -> Plan {
    let mut violations: Vec<Violation> =
        crate::rules::validate(&input.ray_cluster, None, &ValidateOptions::default())
            .into_iter()
            .filter(|v| v.is_error())
            .collect();
    let cluster = crate::defaulting::defaulted(&input.ray_cluster);
    let cfg = match cluster_config(&cluster) {
        Ok(c) => Some(c),
        Err(v) => {
            violations.extend(v);
            None
        }
    };
    violations.extend(check_input(input));
    let status_base = status_summary(input);
    let Some(cfg) = cfg.filter(|_| violations.is_empty()) else {
        return Plan {
            violations,
            status: status_base,
            ..Plan::default()
        };
    };
    match plan_valid(input, &cfg) {
        Ok(mut p) => {
            let mut st = status_base;
            st.launching = p
                .groups
                .iter()
                .filter(|g| g.launch > 0)
                .map(|g| (g.name.clone(), g.launch))
                .collect();
            p.status = st;
            p
        }
        Err(v) => Plan {
            violations: v,
            status: status_base,
            ..Plan::default()
        },
    }
}

fn check_input(input: &EngineInput) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut check = |path: String, m: &ResourceMap| {
        for (k, v) in m {
            if !v.is_finite() || *v < 0.0 {
                out.push(Violation::error(
                    "AS-INPUT",
                    format!("{path}.{k}"),
                    format!("resource amount {v} is not a finite non-negative number"),
                ));
            }
        }
    };
    for (i, n) in input.ray.nodes.iter().enumerate() {
        check(format!("ray.nodes[{i}].total"), &n.total);
        check(format!("ray.nodes[{i}].available"), &n.available);
    }
    for (i, d) in input.ray.demands.iter().enumerate() {
        check(format!("ray.demands[{i}].resources"), &d.resources);
    }
    for (i, pg) in input.ray.placement_groups.iter().enumerate() {
        for (j, b) in pg.bundles.iter().enumerate() {
            check(format!("ray.placementGroups[{i}].bundles[{j}]"), b);
        }
    }
    for (i, d) in input.ray.constraints.iter().enumerate() {
        check(format!("ray.constraints[{i}].resources"), &d.resources);
    }
    out
}

/// Interned resource names that some request mentions (plus GPU).
struct Resources {
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl Resources {
    fn dense(&self, m: &ResourceMap) -> (Vec<i64>, u64) {
        let mut v = vec![0i64; self.names.len()];
        let mut has = 0u64;
        for (k, x) in m {
            if let Some(&i) = self.index.get(k) {
                v[i] = to_fixed(*x);
                has |= 1 << i;
            }
        }
        (v, has)
    }

    /// (count, sum, min) of v·util³ over resources no request mentions, present in both maps.
    fn extras(&self, total: &ResourceMap, avail: &ResourceMap) -> (u32, f64, f64) {
        let (mut c, mut s, mut mn) = (0u32, 0.0f64, 0.0f64);
        for (k, t) in total {
            if self.index.contains_key(k) || *t == 0.0 {
                continue;
            }
            let Some(a) = avail.get(k) else { continue };
            let (tf, af) = (to_fixed(*t) as f64 / SCALE, to_fixed(*a) as f64 / SCALE);
            if tf == 0.0 {
                continue;
            }
            let util = (tf - af) / tf;
            let term = tf * util * util * util;
            if c == 0 || term < mn {
                mn = term;
            }
            s += term;
            c += 1;
        }
        (c, s, mn)
    }
}

/// Ray's request sort key, descending: (placement constraints, 0, number of keys, sum, items).
fn sort_reqs(reqs: &mut [(Req, &ResourceMap, usize)]) {
    reqs.sort_by(|a, b| {
        let ka = (a.2, a.1.len());
        let kb = (b.2, b.1.len());
        kb.cmp(&ka)
            .then_with(|| {
                let sa: f64 = a.1.values().sum();
                let sb: f64 = b.1.values().sum();
                sb.partial_cmp(&sa).unwrap_or(std::cmp::Ordering::Equal)
            })
            .then_with(|| {
                // sorted (name, value) items, compared descending
                let mut ia = a.1.iter();
                let mut ib = b.1.iter();
                loop {
                    match (ia.next(), ib.next()) {
                        (None, None) => return std::cmp::Ordering::Equal,
                        (None, Some(_)) => return std::cmp::Ordering::Greater,
                        (Some(_), None) => return std::cmp::Ordering::Less,
                        (Some((na, va)), Some((nb, vb))) => {
                            let o = nb
                                .cmp(na)
                                .then(vb.partial_cmp(va).unwrap_or(std::cmp::Ordering::Equal));
                            if o != std::cmp::Ordering::Equal {
                                return o;
                            }
                        }
                    }
                }
            })
    });
}

fn build_reqs(res: &Resources, shapes: &[(&ResourceMap, u64, Option<u32>, usize)]) -> Vec<Req> {
    // merge identical shapes (same resources and constraint), keep first-seen order
    let mut merged: Vec<(Req, &ResourceMap, usize)> = Vec::new();
    type ShapeKey = (Vec<(String, u64)>, Option<u32>);
    let mut seen: HashMap<ShapeKey, usize> = HashMap::new();
    for (m, count, anti, origin) in shapes {
        if *count == 0 {
            continue;
        }
        let key = (
            m.iter()
                .map(|(k, v)| (k.clone(), v.to_bits()))
                .collect::<Vec<_>>(),
            *anti,
        );
        if let Some(&i) = seen.get(&key) {
            merged[i].0.count += count;
            continue;
        }
        let (dense, _) = res.dense(m);
        let mut keys = 0u64;
        for (k, v) in m.iter() {
            if *v > 0.0
                && let Some(&i) = res.index.get(k)
            {
                keys |= 1 << i;
            }
        }
        seen.insert(key, merged.len());
        merged.push((
            Req {
                res: dense,
                keys,
                names_gpu: m.contains_key("GPU"),
                anti: *anti,
                count: *count,
                origin: *origin,
            },
            m,
            usize::from(anti.is_some()),
        ));
    }
    sort_reqs(&mut merged);
    merged.into_iter().map(|(r, _, _)| r).collect()
}

struct GroupState {
    observed: u64,
    base: u64,
    pending_delete: bool,
    finished_delete: bool,
}

fn plan_valid(input: &EngineInput, cfg: &ClusterConfig) -> Result<Plan, Vec<Violation>> {
    let types = &cfg.node_types;
    let type_by_name: HashMap<&str, usize> = types
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();

    // relevant resources
    let mut names: BTreeSet<String> = BTreeSet::new();
    names.insert("GPU".to_string());
    for d in input.ray.demands.iter().chain(&input.ray.constraints) {
        names.extend(d.resources.keys().cloned());
    }
    for pg in &input.ray.placement_groups {
        for b in &pg.bundles {
            names.extend(b.keys().cloned());
        }
    }
    if names.len() > MAX_RELEVANT_RESOURCES {
        return Err(vec![Violation::error(
            "AS-INPUT",
            "ray",
            format!(
                "pending requests name {} distinct resources; the engine supports at most {MAX_RELEVANT_RESOURCES}",
                names.len()
            ),
        )]);
    }
    let names: Vec<String> = names.into_iter().collect();
    let index: HashMap<String, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), i))
        .collect();
    let res = Resources { names, index };
    let implicit: Vec<bool> = res
        .names
        .iter()
        .map(|n| n.starts_with(IMPLICIT_PREFIX))
        .collect();
    let gpu = res.index.get("GPU").copied();

    // pods, workersToDelete
    let live_pods: HashSet<&str> = input
        .pods
        .iter()
        .filter(|p| !p.deleting)
        .map(|p| p.name.as_str())
        .collect();
    // Without `enableInTreeAutoscaling: true` KubeRay deletes surplus Pods at random (its
    // `reconcilePods`: desired < running and autoscaling off), so every scale-down must stay
    // exactly the Pods named in `workersToDelete` — which the plan lowers `replicas` with, in the
    // same patch (unnamed terminations are only placeholders beyond maxReplicas, which KubeRay
    // clamps away anyway). A named Pod that still exists, terminating too, keeps the group
    // blocked and the list in place: KubeRay's delete expectations live only in its memory, and
    // a restarted operator would count a terminating Pod whose name was cleared and delete a
    // random one. See docs/autoscaler-central.md.
    let random_deletion = surplus_deleted_at_random(&input.ray_cluster);
    let existing_pods: HashSet<&str> = input.pods.iter().map(|p| p.name.as_str()).collect();
    let mut to_delete_set: HashSet<&str> = HashSet::new();
    let mut gstate: Vec<GroupState> = Vec::with_capacity(types.len());
    for t in types {
        let still = if random_deletion {
            &existing_pods
        } else {
            &live_pods
        };
        let pending = t
            .workers_to_delete
            .iter()
            .any(|w| still.contains(w.as_str()));
        to_delete_set.extend(t.workers_to_delete.iter().map(String::as_str));
        gstate.push(GroupState {
            observed: 0,
            base: (t.replicas.unwrap_or(0).max(t.min_replicas).max(0) as u64)
                .saturating_mul(t.hosts as u64),
            pending_delete: pending,
            finished_delete: !t.workers_to_delete.is_empty() && !pending,
        });
    }
    for p in input.pods.iter().filter(|p| !p.deleting) {
        if to_delete_set.contains(p.name.as_str()) {
            continue;
        }
        if let Some(&t) = type_by_name.get(p.group.as_str()) {
            gstate[t].observed += 1;
        }
    }

    let type_total: Vec<Vec<i64>> = types.iter().map(|t| res.dense(&t.resources).0).collect();
    let type_has: Vec<u64> = types.iter().map(|t| res.dense(&t.resources).1).collect();
    let type_extras: Vec<(u32, f64, f64)> = types
        .iter()
        .map(|t| res.extras(&t.resources, &t.resources))
        .collect();
    let mut ctx = Ctx {
        nres: res.names.len(),
        implicit,
        gpu,
        nodes: Vec::new(),
        order: Vec::new(),
        type_total,
        type_has,
        type_extras,
        type_priority: types.iter().map(|t| t.priority).collect(),
        type_max: types.iter().map(|t| t.max_pods).collect(),
        type_launchable: types.iter().map(|t| !t.suspended).collect(),
        max_num_nodes: None,
    };

    let mut ray_by_pod: HashMap<&str, &RayNode> = HashMap::new();
    for n in &input.ray.nodes {
        if n.status != RayNodeStatus::Dead {
            ray_by_pod.entry(n.pod.as_str()).or_insert(n);
        }
    }
    let ray_node =
        |res: &Resources, n: &RayNode, type_idx: Option<usize>, pod: Option<usize>, prio: i64| {
            let (total, total_has) = res.dense(&n.total);
            let (avail, avail_has) = res.dense(&n.available);
            let ex = res.extras(&n.total, &n.available);
            let ex_c = res.extras(&n.total, &n.total);
            Node {
                type_idx,
                status: NodeStatus::Schedulable,
                running: true,
                pod,
                priority: prio,
                idle_ms: n.idle_ms,
                avail: [avail, total.clone()],
                avail_has: [avail_has, total_has],
                total,
                total_has,
                extras: [ex, ex_c],
                sched_keys: [0, 0],
                sched_gpu: [false, false],
                sched_any: [false, false],
                labels: Vec::new(),
            }
        };
    // head(s)
    for n in &input.ray.nodes {
        if n.kind == NodeKind::Head && n.status != RayNodeStatus::Dead {
            let id = ctx.nodes.len();
            ctx.nodes.push(ray_node(&res, n, None, None, 0));
            ctx.order.push(id);
        }
    }
    // worker pods
    for (pi, p) in input.pods.iter().enumerate() {
        if p.deleting || to_delete_set.contains(p.name.as_str()) {
            continue;
        }
        if matches!(p.phase, PodPhase::Failed | PodPhase::Succeeded) {
            continue;
        }
        let Some(&t) = type_by_name.get(p.group.as_str()) else {
            continue;
        };
        let node = match ray_by_pod.get(p.name.as_str()) {
            Some(n) if n.kind == NodeKind::Worker => {
                ray_node(&res, n, Some(t), Some(pi), types[t].priority)
            }
            Some(_) => continue,
            None => {
                if input
                    .ray
                    .nodes
                    .iter()
                    .any(|n| n.pod == p.name && n.status == RayNodeStatus::Dead)
                {
                    continue;
                }
                let mut n = ctx.fresh_node(t, NodeStatus::Schedulable);
                n.pod = Some(pi);
                n
            }
        };
        let id = ctx.nodes.len();
        ctx.nodes.push(node);
        ctx.order.push(id);
    }
    // pods the current replicas asks for that do not exist yet
    let mut requested_total = 0u64;
    for (t, g) in gstate.iter().enumerate() {
        let missing = g.base.saturating_sub(g.observed);
        requested_total += missing;
        let placeholders = missing.min(types[t].max_pods);
        if placeholders > MAX_PLACEHOLDER_PODS {
            return Err(vec![Violation::error(
                "AS-INPUT",
                format!("spec.workerGroupSpecs[{}].replicas", types[t].index),
                format!(
                    "replicas asks for {placeholders} pods that do not exist yet; the engine plans at most {MAX_PLACEHOLDER_PODS}"
                ),
            )]);
        }
        for _ in 0..placeholders {
            let id = ctx.nodes.len();
            ctx.nodes.push(ctx.fresh_node(t, NodeStatus::Schedulable));
            ctx.order.push(id);
        }
    }

    ctx.max_num_nodes = Some(
        types
            .iter()
            .map(|t| t.max_pods)
            .fold(0u64, u64::saturating_add)
            .saturating_add(1)
            .min((ctx.order.len() as u64).saturating_add(MAX_NEW_NODES)),
    );
    // min workers: TO_LAUNCH nodes in front
    let mut front = Vec::new();
    for (t, tc) in types.iter().enumerate() {
        let cur = live_count(&ctx, t);
        let min = tc.min_pods.min(tc.max_pods);
        for _ in cur..min {
            let id = ctx.nodes.len();
            ctx.nodes.push(ctx.fresh_node(t, NodeStatus::ToLaunch));
            front.push(id);
        }
    }
    if !front.is_empty() {
        front.extend(ctx.order.iter().copied());
        ctx.order = front;
    }
    // Scale-down units: a multi-host replica goes whole (every pod of it, named together).
    let units_ctx = UnitCtx::new(input, types, &type_by_name, &to_delete_set, &ctx);
    // max per type, whole units
    for (t, tc) in types.iter().enumerate() {
        let ids: Vec<usize> = ctx
            .order
            .iter()
            .copied()
            .filter(|&id| {
                ctx.nodes[id].type_idx == Some(t) && ctx.nodes[id].status != NodeStatus::ToTerminate
            })
            .collect();
        // Counted in pods: replicas × numOfHosts once replicas are whole (an incomplete replica
        // and the pods still missing from `replicas` are the same replica, not two).
        let extra = (ids.len() as u64).saturating_sub(tc.max_pods);
        if extra > 0 {
            let mut excess = extra;
            for u in units_in_termination_order(&ctx, units_ctx.build(&ctx, &ids)) {
                if excess == 0 {
                    break;
                }
                excess = excess.saturating_sub(u.nodes.len() as u64);
                for &id in &u.nodes {
                    ctx.nodes[id].status = NodeStatus::ToTerminate;
                }
            }
        }
    }

    let mut infeasible: Vec<ResourceDemand> = Vec::new();
    let mut capped: Vec<CappedDemand> = Vec::new();
    // constraints (atomic, against totals)
    if !input.ray.constraints.is_empty() {
        let shapes: Vec<_> = input
            .ray
            .constraints
            .iter()
            .enumerate()
            .map(|(i, d)| (&d.resources, d.count, None, i))
            .collect();
        let reqs = build_reqs(&res, &shapes);
        let rem = ctx.try_schedule(Source::Constraint, &reqs, true);
        if rem.iter().any(|&r| r > 0) {
            let all: Vec<(&ResourceMap, u64)> = input
                .ray
                .constraints
                .iter()
                .filter(|d| d.count > 0)
                .map(|d| (&d.resources, d.count))
                .collect();
            unplaced(&ctx, types, &reqs, &all, &mut infeasible, &mut capped);
        }
    }
    // placement groups (gangs, atomic)
    let mut gangs: Vec<(usize, &PlacementGroupDemand)> =
        input.ray.placement_groups.iter().enumerate().collect();
    gangs.sort_by_key(|(_, pg)| {
        let cons = match pg.strategy {
            PlacementStrategy::StrictPack | PlacementStrategy::StrictSpread => pg.bundles.len(),
            _ => 0,
        };
        std::cmp::Reverse((cons, pg.bundles.len()))
    });
    for (gi, pg) in gangs {
        if pg.bundles.is_empty() {
            continue;
        }
        let reqs = match pg.strategy {
            PlacementStrategy::StrictPack => {
                let mut sum: ResourceMap = BTreeMap::new();
                for b in &pg.bundles {
                    for (k, v) in b {
                        *sum.entry(k.clone()).or_insert(0.0) += v;
                    }
                }
                let mut r = build_reqs(&res, &[(&sum, 1, None, 0)]);
                // STRICT_PACK keeps its affinity constraint: it sorts with the constrained ones
                for q in &mut r {
                    q.anti = None;
                }
                r
            }
            PlacementStrategy::StrictSpread => {
                let label = gi as u32;
                let shapes: Vec<_> = pg
                    .bundles
                    .iter()
                    .map(|b| (b, 1u64, Some(label), 0))
                    .collect();
                build_reqs(&res, &shapes)
            }
            _ => {
                let shapes: Vec<_> = pg.bundles.iter().map(|b| (b, 1u64, None, 0)).collect();
                build_reqs(&res, &shapes)
            }
        };
        let rem = ctx.try_schedule(Source::Demand, &reqs, true);
        if rem.iter().any(|&r| r > 0) {
            let all: Vec<(&ResourceMap, u64)> = pg.bundles.iter().map(|b| (b, 1)).collect();
            unplaced(&ctx, types, &reqs, &all, &mut infeasible, &mut capped);
        }
    }
    // tasks / actors
    {
        let shapes: Vec<_> = input
            .ray
            .demands
            .iter()
            .enumerate()
            .map(|(i, d)| (&d.resources, d.count, None, i))
            .collect();
        let reqs = build_reqs(&res, &shapes);
        let rem = ctx.try_schedule(Source::Demand, &reqs, false);
        for (q, r) in reqs.iter().zip(&rem) {
            if *r > 0 {
                let m = &input.ray.demands[q.origin].resources;
                let one = std::slice::from_ref(q);
                unplaced(&ctx, types, one, &[(m, *r)], &mut infeasible, &mut capped);
            }
        }
    }
    // idle termination: whole units (a multi-host replica only when every host is idle),
    // longest idle first, keeping minReplicas
    {
        let ids: Vec<usize> = ctx
            .order
            .iter()
            .copied()
            .filter(|&id| ctx.nodes[id].status != NodeStatus::ToTerminate)
            .collect();
        let units = units_ctx.build(&ctx, &ids);
        let mut live = vec![0u64; types.len()];
        for u in &units {
            live[u.t] += u.nodes.len() as u64;
        }
        let mut terminated = vec![0u64; types.len()];
        for u in units_in_termination_order(&ctx, units) {
            let t = u.t;
            let timeout = types[t].idle_timeout_s.unwrap_or(cfg.idle_timeout_s);
            let idle = |id: &usize| {
                let n = &ctx.nodes[*id];
                n.status == NodeStatus::Schedulable
                    && n.running
                    && (n.idle_ms as f64) > timeout * 1000.0
                    && !n.sched_any[0]
                    && !n.sched_any[1]
            };
            if !u.nodes.iter().all(idle) {
                continue;
            }
            // A replica with hosts missing (some not listed yet, or deleted from outside) is
            // the operator's to remove; naming part of it could take a busy host along.
            if matches!(u.key, UnitKey::Replica(_)) && u.members < types[t].hosts.max(1) as u64 {
                continue;
            }
            // minReplicas in pods, as maxReplicas above
            let size = u.nodes.len() as u64;
            if live[t].saturating_sub(terminated[t]) < size.saturating_add(types[t].min_pods) {
                continue;
            }
            terminated[t] += size;
            for &id in &u.nodes {
                ctx.nodes[id].status = NodeStatus::ToTerminate;
            }
        }
    }

    // per group: launches (rate-limited), terminations, patch
    let mut to_launch = vec![0u64; types.len()];
    let mut running = vec![0u64; types.len()];
    let mut term_named: Vec<Vec<String>> = vec![Vec::new(); types.len()];
    let mut term_unnamed = vec![0u64; types.len()];
    for &id in &ctx.order {
        let n = &ctx.nodes[id];
        let Some(t) = n.type_idx else { continue };
        if n.status == NodeStatus::ToLaunch {
            to_launch[t] += 1;
        }
        if n.running && n.status != NodeStatus::ToLaunch {
            running[t] += 1;
        }
    }
    {
        let ids: Vec<usize> = ctx
            .order
            .iter()
            .copied()
            .filter(|&id| ctx.nodes[id].status == NodeStatus::ToTerminate)
            .collect();
        for u in units_in_termination_order(&ctx, units_ctx.build(&ctx, &ids)) {
            let mut pods: Vec<usize> = u.others.clone();
            for &id in &u.nodes {
                match ctx.nodes[id].pod {
                    Some(pi) => pods.push(pi),
                    None => term_unnamed[u.t] += 1,
                }
            }
            pods.sort_unstable();
            pods.dedup();
            term_named[u.t].extend(pods.into_iter().map(|pi| input.pods[pi].name.clone()));
        }
    }
    let mut budget = (input.options.max_concurrent_launches as u64).saturating_sub(requested_total);
    let mut groups = Vec::with_capacity(types.len());
    let mut replica_ops = Vec::new();
    let mut delete_ops = Vec::new();
    let mut clear_ops = Vec::new();
    let mut any_action = false;
    for (t, tc) in types.iter().enumerate() {
        let g = &gstate[t];
        let hosts = tc.hosts.max(1) as u64;
        let mut gp = GroupPlan {
            name: tc.name.clone(),
            blocked: g.pending_delete,
            ..GroupPlan::default()
        };
        let mut launch = 0u64;
        let mut named = Vec::new();
        let mut unnamed = 0u64;
        // pods the concurrency budget held back, before multi-host rounding and maxReplicas
        let mut by_budget = 0u64;
        if !g.pending_delete {
            let rate = ((cfg.upscaling_speed * running[t].max(1) as f64).ceil() as u64).max(1);
            let rated = to_launch[t].min(rate);
            launch = rated.min(budget);
            by_budget = rated - launch;
            if launch > 0 && hosts > 1 {
                launch = launch.div_ceil(hosts) * hosts;
            }
            budget = budget.saturating_sub(launch);
            named = term_named[t].clone();
            unnamed = term_unnamed[t];
        }
        let before_max = launch;
        let mut desired = g.base.max(g.observed) + launch;
        desired = desired.saturating_sub(named.len() as u64 + unnamed);
        let mut target = desired / hosts;
        let max_rep = tc.max_replicas.max(0) as u64;
        if target > max_rep {
            let rejected = (target - max_rep) * hosts;
            launch = launch.saturating_sub(rejected);
            target = max_rep;
        }
        gp.deferred = attribute_deferred(
            to_launch[t] - launch.min(to_launch[t]),
            g.pending_delete,
            by_budget,
            before_max - launch,
        );
        gp.launch = launch as u32;
        if launch > 0 || !named.is_empty() || unnamed > 0 {
            any_action = true;
        }
        let current = tc.replicas.unwrap_or(1);
        if target as i64 != current {
            replica_ops.push(json!({"op": "replace", "path": format!("/spec/workerGroupSpecs/{}/replicas", tc.index), "value": target}));
        }
        if !named.is_empty() {
            delete_ops.push(json!({"op": "replace", "path": format!("/spec/workerGroupSpecs/{}/scaleStrategy", tc.index), "value": {"workersToDelete": named}}));
        } else if g.finished_delete {
            clear_ops.push(json!({"op": "replace", "path": format!("/spec/workerGroupSpecs/{}/scaleStrategy", tc.index), "value": {"workersToDelete": []}}));
        }
        gp.replicas = target.min(u32::MAX as u64) as u32;
        gp.terminate = named;
        groups.push((gp, current, target));
    }
    let mut patch = Vec::new();
    if any_action {
        patch.extend(replica_ops);
        patch.extend(delete_ops);
    }
    // A finished `workersToDelete` (every named pod gone, i.e. no longer a live pod) is cleared
    // by the autoscaler, never by the operator: folded into the next launch/termination patch
    // when there is one (Ray v2's KubeRay provider), and sent on its own otherwise (as Ray v1's
    // `safe_to_scale` does), so a finished list never lingers and never blocks the group.
    patch.extend(clear_ops);
    let groups = groups
        .into_iter()
        .map(|(mut gp, current, target)| {
            if !any_action {
                gp.replicas = current.max(0).min(u32::MAX as i64) as u32;
            } else {
                gp.replicas = target.min(u32::MAX as u64) as u32;
            }
            gp
        })
        .collect();
    Ok(Plan {
        patch: patch.into_iter().collect::<Vec<Value>>(),
        groups,
        infeasible,
        capped,
        violations: Vec::new(),
        status: StatusSummary::default(),
    })
}

/// Whether KubeRay's operator deletes a group's surplus Pods at random: when
/// `spec.enableInTreeAutoscaling` is not `true` (`raygate autoscale run`'s central mode). With it
/// `true` KubeRay deletes only what `workersToDelete` names (unless the operator runs with
/// `ENABLE_RANDOM_POD_DELETE=true`, which no autoscaler can work with).
pub fn surplus_deleted_at_random(ray_cluster: &Value) -> bool {
    ray_cluster.pointer("/spec/enableInTreeAutoscaling") != Some(&Value::Bool(true))
}

/// Splits the `total` deferred pods of a group by the limit that held them (see [`Deferred`]):
/// all of them when a `workersToDelete` is pending, else maxReplicas first (it cut the launch
/// last, after rounding), then maxConcurrentLaunches, the rest the upscaling rate (the only
/// other limit). Multi-host rounding can launch a few pods more than the limits let through, so
/// the parts are bounded by `total` and always add up to it.
fn attribute_deferred(total: u64, blocked: bool, by_budget: u64, by_max: u64) -> Deferred {
    let n = |v: u64| v.min(u32::MAX as u64) as u32;
    if blocked {
        return Deferred {
            workers_to_delete: n(total),
            ..Deferred::default()
        };
    }
    let max = by_max.min(total);
    let conc = by_budget.min(total - max);
    let rate = total - max - conc;
    Deferred {
        workers_to_delete: 0,
        upscaling_rate: n(rate),
        max_concurrent_launches: n(conc),
        max_replicas: n(max),
    }
}

/// The launchable groups a fresh pod of which could hold a request of `reqs` (each request
/// fitting at least one of them), or None when some request fits no group: that demand is
/// infeasible, not capped.
fn groups_fitting(ctx: &Ctx, reqs: &[Req]) -> Option<BTreeSet<usize>> {
    let mut out = BTreeSet::new();
    for q in reqs {
        let mut any = false;
        for t in 0..ctx.type_total.len() {
            if ctx.type_launchable[t] && ctx.type_fits(t, q) {
                out.insert(t);
                any = true;
            }
        }
        if !any {
            return None;
        }
    }
    Some(out)
}

/// Records demand the scheduler left unplaced: capped (by maxReplicas) when a pod of some
/// group could hold each of its requests, infeasible otherwise.
fn unplaced(
    ctx: &Ctx,
    types: &[super::engine_config::NodeTypeConfig],
    reqs: &[Req],
    shapes: &[(&ResourceMap, u64)],
    infeasible: &mut Vec<ResourceDemand>,
    capped: &mut Vec<CappedDemand>,
) {
    match groups_fitting(ctx, reqs) {
        Some(groups) => {
            let names: Vec<String> = groups.iter().map(|&t| types[t].name.clone()).collect();
            for (m, n) in shapes {
                push_capped(capped, m, *n, &names);
            }
        }
        None => {
            for (m, n) in shapes {
                push_demand(infeasible, m, *n);
            }
        }
    }
}

fn push_capped(out: &mut Vec<CappedDemand>, m: &ResourceMap, count: u64, groups: &[String]) {
    if let Some(d) = out.iter_mut().find(|d| &d.resources == m) {
        d.count += count;
        for g in groups {
            if !d.groups.contains(g) {
                d.groups.push(g.clone());
            }
        }
    } else {
        out.push(CappedDemand {
            resources: m.clone(),
            count,
            groups: groups.to_vec(),
        });
    }
}

fn push_demand(out: &mut Vec<ResourceDemand>, m: &ResourceMap, count: u64) {
    if let Some(d) = out.iter_mut().find(|d| &d.resources == m) {
        d.count += count;
    } else {
        out.push(ResourceDemand {
            resources: m.clone(),
            count,
        });
    }
}

/// Nodes of a type that are not being terminated (Ray's `get_cluster_shape`).
fn live_count(ctx: &Ctx, t: usize) -> u64 {
    ctx.order
        .iter()
        .filter(|&&id| {
            ctx.nodes[id].type_idx == Some(t) && ctx.nodes[id].status != NodeStatus::ToTerminate
        })
        .count() as u64
}

/// What a worker node is scaled down with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum UnitKey {
    /// A node of a single-host group: alone.
    Alone(usize),
    /// A multi-host replica (`ray.io/worker-group-replica-name`).
    Replica(String),
    /// Pods of a multi-host group without a replica name: membership unknown, so together.
    Unlabeled,
    /// Pods of a multi-host group that do not exist yet, in chunks of `numOfHosts`.
    Pending(u64),
}

/// A scale-down unit: terminated whole or not at all.
#[derive(Debug)]
struct Unit {
    t: usize,
    key: UnitKey,
    /// Scheduling nodes of the unit (a subset of the ids it was built from), in that order.
    nodes: Vec<usize>,
    /// Live pods of the replica that are no scheduling node (failed pods, dead Ray nodes): not
    /// busy, and named with the rest when the replica goes.
    others: Vec<usize>,
    /// Live pods of the replica (nodes and others); for units without pods, the node count.
    members: u64,
}

/// Replica membership of the input pods, computed once per plan (after the pods' nodes exist).
struct UnitCtx {
    hosts: Vec<u64>,
    /// Unit key of each input pod of a multi-host group.
    key_of_pod: Vec<Option<UnitKey>>,
    /// Per (type, key): live pods (not deleting, not listed in workersToDelete) and, of those,
    /// the ones that are no scheduling node.
    members: HashMap<(usize, UnitKey), (u64, Vec<usize>)>,
}

impl UnitCtx {
    fn new(
        input: &EngineInput,
        types: &[crate::autoscale::engine_config::NodeTypeConfig],
        type_by_name: &HashMap<&str, usize>,
        to_delete: &HashSet<&str>,
        ctx: &Ctx,
    ) -> UnitCtx {
        let hosts: Vec<u64> = types.iter().map(|t| t.hosts.max(1) as u64).collect();
        let mut is_node = vec![false; input.pods.len()];
        for n in &ctx.nodes {
            if let Some(pi) = n.pod {
                is_node[pi] = true;
            }
        }
        let mut key_of_pod = vec![None; input.pods.len()];
        let mut members: HashMap<(usize, UnitKey), (u64, Vec<usize>)> = HashMap::new();
        for (pi, p) in input.pods.iter().enumerate() {
            let Some(&t) = type_by_name.get(p.group.as_str()) else {
                continue;
            };
            if hosts[t] <= 1 {
                continue;
            }
            let key = match &p.replica {
                Some(r) => UnitKey::Replica(r.clone()),
                None => UnitKey::Unlabeled,
            };
            if !p.deleting && !to_delete.contains(p.name.as_str()) {
                let e = members.entry((t, key.clone())).or_default();
                e.0 += 1;
                if !is_node[pi] {
                    e.1.push(pi);
                }
            }
            key_of_pod[pi] = Some(key);
        }
        UnitCtx {
            hosts,
            key_of_pod,
            members,
        }
    }

    /// The units of the nodes `ids` (worker nodes only), in first-seen order.
    fn build(&self, ctx: &Ctx, ids: &[usize]) -> Vec<Unit> {
        let mut index: HashMap<(usize, UnitKey), usize> = HashMap::new();
        let mut pending = vec![0u64; self.hosts.len()];
        let mut out: Vec<Unit> = Vec::new();
        for &id in ids {
            let n = &ctx.nodes[id];
            let Some(t) = n.type_idx else { continue };
            let hosts = self.hosts[t];
            let key = match (hosts, n.pod) {
                (1, _) => UnitKey::Alone(id),
                (_, Some(pi)) => self.key_of_pod[pi].clone().unwrap_or(UnitKey::Alone(id)),
                (_, None) => {
                    pending[t] += 1;
                    UnitKey::Pending((pending[t] - 1) / hosts)
                }
            };
            match index.get(&(t, key.clone())) {
                Some(&u) => out[u].nodes.push(id),
                None => {
                    index.insert((t, key.clone()), out.len());
                    out.push(Unit {
                        t,
                        key,
                        nodes: vec![id],
                        others: Vec::new(),
                        members: 0,
                    });
                }
            }
        }
        for u in &mut out {
            match self.members.get(&(u.t, u.key.clone())) {
                Some((count, others)) => {
                    u.members = *count;
                    u.others = others.clone();
                }
                None => u.members = u.nodes.len() as u64,
            }
        }
        out
    }
}

/// Ray's `_sort_nodes_for_termination` (stable) over units: not running first, then longest
/// idle (a replica is as idle as its least idle host), then lowest average utilization. The
/// head is in no unit.
fn units_in_termination_order(ctx: &Ctx, units: Vec<Unit>) -> Vec<Unit> {
    let node_util = |id: usize| {
        let n = &ctx.nodes[id];
        let mut sum = 0.0;
        let mut cnt = 0u32;
        for (r, &t) in n.total.iter().enumerate() {
            if n.total_has & (1 << r) == 0 || t <= 0 {
                continue;
            }
            let a = if n.avail_has[0] & (1 << r) != 0 {
                n.avail[0][r]
            } else {
                0
            };
            sum += (t - a) as f64 / t as f64;
            cnt += 1;
        }
        if cnt == 0 { 0.0 } else { sum / cnt as f64 }
    };
    let mut keyed: Vec<(bool, i64, f64, Unit)> = units
        .into_iter()
        .map(|u| {
            let running = u.nodes.iter().all(|&id| ctx.nodes[id].running);
            let idle = u
                .nodes
                .iter()
                .map(|&id| ctx.nodes[id].idle_ms)
                .min()
                .unwrap_or(0);
            let util = if u.nodes.is_empty() {
                0.0
            } else {
                u.nodes.iter().map(|&id| node_util(id)).sum::<f64>() / u.nodes.len() as f64
            };
            (running, -(idle as i64), util, u)
        })
        .collect();
    keyed.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(a.1.cmp(&b.1))
            .then(a.2.partial_cmp(&b.2).unwrap_or(std::cmp::Ordering::Equal))
    });
    keyed.into_iter().map(|k| k.3).collect()
}

/// The status text inputs that do not depend on the decision.
fn status_summary(input: &EngineInput) -> StatusSummary {
    let group_of: HashMap<&str, &str> = input
        .pods
        .iter()
        .map(|p| (p.name.as_str(), p.group.as_str()))
        .collect();
    let mut st = StatusSummary::default();
    let bump = |v: &mut Vec<(String, u32)>, name: &str| {
        if let Some(e) = v.iter_mut().find(|e| e.0 == name) {
            e.1 += 1;
        } else {
            v.push((name.to_string(), 1));
        }
    };
    let with_node: HashSet<&str> = input
        .ray
        .nodes
        .iter()
        .filter(|n| n.status != RayNodeStatus::Dead)
        .map(|n| n.pod.as_str())
        .collect();
    for n in &input.ray.nodes {
        let ty = if n.kind == NodeKind::Head {
            "headgroup".to_string()
        } else {
            group_of
                .get(n.pod.as_str())
                .map(|s| s.to_string())
                .or_else(|| n.node_type.clone())
                .unwrap_or_else(|| "unknown".to_string())
        };
        match n.status {
            RayNodeStatus::Dead => st.failed.push((n.pod.clone(), ty)),
            RayNodeStatus::Idle => bump(&mut st.idle, &ty),
            _ => bump(&mut st.active, &ty),
        }
        if n.status != RayNodeStatus::Dead {
            for (k, t) in &n.total {
                let a = n.available.get(k).copied().unwrap_or(0.0);
                let e = st.usage.entry(k.clone()).or_insert((0.0, 0.0));
                e.0 += t - a;
                e.1 += t;
            }
        }
    }
    for p in &input.pods {
        if p.deleting || with_node.contains(p.name.as_str()) {
            continue;
        }
        if matches!(p.phase, PodPhase::Failed | PodPhase::Succeeded) {
            continue;
        }
        let details = match p.phase {
            PodPhase::Pending => "allocated: pod is pending",
            _ => "allocated: waiting for ray to start",
        };
        st.pending
            .push((p.name.clone(), p.group.clone(), details.to_string()));
    }
    st.constraints = input.ray.constraints.clone();
    st.demands = input
        .ray
        .demands
        .iter()
        .filter(|d| d.count > 0)
        .cloned()
        .collect();
    for pg in &input.ray.placement_groups {
        if let Some(e) = st
            .placement_groups
            .iter_mut()
            .find(|e| e.0 == pg.strategy && e.1 == pg.bundles)
        {
            e.2 += 1;
        } else {
            st.placement_groups
                .push((pg.strategy, pg.bundles.clone(), 1));
        }
    }
    st
}
