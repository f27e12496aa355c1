//! The v2 scheduler (`ResourceDemandScheduler._try_schedule` and friends), count-based. Pure.
//!
//! Ray's v2 scheduler repeats "copy every candidate node, try all remaining requests on it,
//! keep the best node" once per chosen node: O(N²·M). This module computes the same greedy
//! choice on *classes* of identical nodes and identical request shapes with counts, and commits
//! a whole run of nodes at once when the choice provably cannot change in between (every
//! class's first-fit placement stays the same; see `batch_limit`). Resource amounts are Ray's
//! fixed point (1/10000).

use std::collections::HashMap;

/// Fixed-point scale of Ray's resource amounts.
pub const SCALE: f64 = 10000.0;

pub fn to_fixed(v: f64) -> i64 {
    if v.is_finite() {
        (v * SCALE).round() as i64
    } else {
        0
    }
}

/// Which view of the node a request is scheduled against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Tasks, actors and placement groups: against available resources.
    Demand = 0,
    /// `request_resources`: against total resources.
    Constraint = 1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeStatus {
    Schedulable,
    ToLaunch,
    ToTerminate,
}

/// One scheduling node (running pod, pending pod, requested pod, head, or a node to launch).
#[derive(Debug, Clone)]
pub struct Node {
    /// Index into the node types; `None` for the head (never launched or terminated).
    pub type_idx: Option<usize>,
    pub status: NodeStatus,
    /// Ray is running on it (RAY_RUNNING); false for pending/requested/to-launch nodes.
    pub running: bool,
    /// Index into the input pods, if a pod exists.
    pub pod: Option<usize>,
    pub priority: i64,
    pub idle_ms: u64,
    pub total: Vec<i64>,
    pub total_has: u64,
    pub avail: [Vec<i64>; 2],
    pub avail_has: [u64; 2],
    /// v·util³ terms of resources no request mentions (constant): (count, sum, min) per source.
    pub extras: [(u32, f64, f64); 2],
    /// Resource keys (value > 0) of the requests scheduled on the node, per source.
    pub sched_keys: [u64; 2],
    /// Some scheduled request names `GPU`.
    pub sched_gpu: [bool; 2],
    pub sched_any: [bool; 2],
    /// Anti-affinity labels (strict-spread gang ids) the node carries.
    pub labels: Vec<u32>,
}

/// One request shape with a count.
#[derive(Debug, Clone)]
pub struct Req {
    /// Dense fixed-point amounts over the relevant resources.
    pub res: Vec<i64>,
    /// Keys with value > 0.
    pub keys: u64,
    /// The bundle has a `GPU` key (any value).
    pub names_gpu: bool,
    /// Strict-spread gang id: at most one request with this label per node.
    pub anti: Option<u32>,
    pub count: u64,
    /// Index of the original shape (for reporting infeasible requests).
    pub origin: usize,
}

/// Ray's utilization score tuple, without the label term (no label selectors here).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Score {
    pub gpu_ok: bool,
    pub matching: u32,
    pub min: f64,
    pub mean: f64,
}

#[derive(Debug, Clone)]
struct Sim {
    placed: Vec<u64>,
    cap: Vec<u64>,
    total_placed: u64,
    score: Score,
}

/// The scheduling context: the node list in Ray's order plus the per-type launch budget.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub nres: usize,
    /// Per relevant resource: the name starts with `node:__internal_implicit_resource_`.
    pub implicit: Vec<bool>,
    pub gpu: Option<usize>,
    pub nodes: Vec<Node>,
    /// Ray's `ctx._nodes` order.
    pub order: Vec<usize>,
    /// Fresh node template per type (resources of one pod).
    pub type_total: Vec<Vec<i64>>,
    pub type_has: Vec<u64>,
    pub type_extras: Vec<(u32, f64, f64)>,
    pub type_priority: Vec<i64>,
    /// Types that may launch (not suspended), with their max pods.
    pub type_max: Vec<u64>,
    pub type_launchable: Vec<bool>,
    pub max_num_nodes: Option<u64>,
}

fn popcount(m: u64) -> u32 {
    m.count_ones()
}

impl Ctx {
    fn avail_of(&self, node: &Node, src: Source, r: usize) -> i64 {
        let s = src as usize;
        if node.avail_has[s] & (1 << r) != 0 {
            node.avail[s][r]
        } else if self.implicit[r] {
            SCALE as i64
        } else {
            0
        }
    }

    /// First-fit of `reqs` (sorted) with remaining counts `rem` on `node`; no mutation.
    fn simulate(&self, node: &Node, src: Source, reqs: &[Req], rem: &[u64]) -> Sim {
        let s = src as usize;
        let n = self.nres;
        let mut avail: Vec<i64> = (0..n).map(|r| self.avail_of(node, src, r)).collect();
        let mut avail_has = node.avail_has[s];
        let mut sched_keys = node.sched_keys[s];
        let mut sched_gpu = node.sched_gpu[s];
        let mut placed = vec![0u64; reqs.len()];
        let mut cap = vec![0u64; reqs.len()];
        let mut total_placed = 0;
        let mut new_label: Option<u32> = None;
        for (i, q) in reqs.iter().enumerate() {
            let mut fit = u64::MAX;
            for (r, a) in avail.iter().enumerate() {
                let need = q.res[r];
                if need > 0 {
                    let f = if *a >= need { (*a / need) as u64 } else { 0 };
                    fit = fit.min(f);
                } else if need < 0 {
                    fit = 0;
                }
            }
            if let Some(l) = q.anti
                && (node.labels.contains(&l) || new_label == Some(l))
            {
                fit = 0;
            }
            if q.anti.is_some() {
                fit = fit.min(1);
            }
            cap[i] = fit;
            let k = fit.min(rem[i]);
            placed[i] = k;
            if k > 0 {
                total_placed += k;
                for (r, a) in avail.iter_mut().enumerate() {
                    let need = q.res[r];
                    if need != 0 {
                        *a -= need * k as i64;
                        avail_has |= 1 << r;
                    }
                }
                sched_keys |= q.keys;
                sched_gpu |= q.names_gpu;
                if q.anti.is_some() {
                    new_label = q.anti;
                }
            }
        }
        let score = self.score(node, src, &avail, avail_has, sched_keys, sched_gpu);
        Sim {
            placed,
            cap,
            total_placed,
            score,
        }
    }

    fn score(
        &self,
        node: &Node,
        src: Source,
        avail: &[i64],
        avail_has: u64,
        sched_keys: u64,
        sched_gpu: bool,
    ) -> Score {
        let s = src as usize;
        let (mut cnt, mut sum, mut min) = node.extras[s];
        for (r, &t) in node.total.iter().enumerate() {
            if node.total_has & (1 << r) == 0 || t == 0 || avail_has & (1 << r) == 0 {
                continue;
            }
            let v = t as f64 / SCALE;
            let a = avail[r] as f64 / SCALE;
            let util = (v - a) / v;
            let term = v * util * util * util;
            if cnt == 0 || term < min {
                min = term;
            }
            sum += term;
            cnt += 1;
        }
        let gpu_ok = match self.gpu {
            Some(g) => !(node.total_has & (1 << g) != 0 && node.total[g] > 0 && !sched_gpu),
            None => true,
        };
        Score {
            gpu_ok,
            matching: popcount(sched_keys & node.total_has),
            min: if cnt == 0 { 0.0 } else { min },
            mean: if cnt == 0 { 0.0 } else { sum / cnt as f64 },
        }
    }

    fn commit(&mut self, id: usize, src: Source, reqs: &[Req], placed: &[u64]) {
        let s = src as usize;
        let n = self.nres;
        let current: Vec<i64> = (0..n)
            .map(|r| self.avail_of(&self.nodes[id], src, r))
            .collect();
        let node = &mut self.nodes[id];
        let mut avail = current;
        for (q, &k) in reqs.iter().zip(placed) {
            if k == 0 {
                continue;
            }
            for (r, a) in avail.iter_mut().enumerate() {
                if q.res[r] != 0 {
                    *a -= q.res[r] * k as i64;
                    node.avail_has[s] |= 1 << r;
                }
            }
            node.sched_keys[s] |= q.keys;
            node.sched_gpu[s] |= q.names_gpu;
            node.sched_any[s] = true;
            if let Some(l) = q.anti
                && !node.labels.contains(&l)
            {
                node.labels.push(l);
            }
        }
        for (r, a) in avail.into_iter().enumerate() {
            if node.avail_has[s] & (1 << r) != 0 {
                node.avail[s][r] = a;
            }
        }
    }

    /// A node of a type to launch.
    pub fn fresh_node(&self, t: usize, status: NodeStatus) -> Node {
        let total = self.type_total[t].clone();
        let has = self.type_has[t];
        let ex = self.type_extras[t];
        Node {
            type_idx: Some(t),
            status,
            running: false,
            pod: None,
            priority: self.type_priority[t],
            idle_ms: 0,
            avail: [total.clone(), total.clone()],
            avail_has: [has, has],
            total,
            total_has: has,
            extras: [ex, (ex.0, 0.0, 0.0)],
            sched_keys: [0, 0],
            sched_gpu: [false, false],
            sched_any: [false, false],
            labels: Vec::new(),
        }
    }

    fn can_fit_any(&self, node: &Node, src: Source, reqs: &[Req]) -> bool {
        reqs.iter().any(|q| {
            (0..self.nres).all(|r| q.res[r] <= 0 || self.avail_of(node, src, r) >= q.res[r])
        })
    }

    fn class_key(&self, node: &Node, src: Source) -> Vec<i64> {
        let s = src as usize;
        let mut k = Vec::with_capacity(4 * self.nres + 12);
        k.push(node.type_idx.map(|t| t as i64).unwrap_or(-1));
        k.push(node.priority);
        k.push(node.total_has as i64);
        k.push(node.avail_has[s] as i64);
        k.push(node.sched_keys[s] as i64);
        k.push(node.sched_gpu[s] as i64);
        k.push(node.extras[s].0 as i64);
        k.push(node.extras[s].1.to_bits() as i64);
        k.push(node.extras[s].2.to_bits() as i64);
        k.extend_from_slice(&node.total);
        k.extend_from_slice(&node.avail[s]);
        k.push(node.labels.len() as i64);
        k.extend(node.labels.iter().map(|l| *l as i64));
        k
    }

    /// Ray's `_try_schedule`: existing nodes first (best node by score, ties in list order),
    /// then new nodes (best type by score, ties in pool order; the chosen type moves to the end
    /// of the pool). Returns the remaining counts per request. With `atomic`, nothing is
    /// changed unless everything is placed.
    pub fn try_schedule(&mut self, src: Source, reqs: &[Req], atomic: bool) -> Vec<u64> {
        let mut rem: Vec<u64> = reqs.iter().map(|q| q.count).collect();
        if reqs.is_empty() {
            return rem;
        }
        let n_before = self.nodes.len();
        let mut undo: Vec<(usize, Node)> = Vec::new();
        let mut target: Vec<usize> = Vec::with_capacity(self.order.len());
        // pre-filter running nodes that can fit no shape
        let mut exhausted = Vec::new();
        let mut cands: Vec<usize> = Vec::new();
        for &id in &self.order {
            let n = &self.nodes[id];
            if n.status == NodeStatus::ToTerminate || (n.running && !self.can_fit_any(n, src, reqs))
            {
                exhausted.push(id);
            } else {
                cands.push(id);
            }
        }
        // classes of identical candidates, in order of first appearance
        let mut class_of: HashMap<Vec<i64>, usize> = HashMap::new();
        let mut classes: Vec<Vec<(usize, usize)>> = Vec::new(); // (position, node id)
        for (pos, &id) in cands.iter().enumerate() {
            let key = self.class_key(&self.nodes[id], src);
            let c = *class_of.entry(key).or_insert_with(|| {
                classes.push(Vec::new());
                classes.len() - 1
            });
            classes[c].push((pos, id));
        }
        let mut heads = vec![0usize; classes.len()];
        let mut sims: Vec<Option<Sim>> = vec![None; classes.len()];
        let mut chosen = vec![false; cands.len()];
        while rem.iter().any(|&r| r > 0) {
            let mut best: Option<usize> = None;
            for c in 0..classes.len() {
                if heads[c] >= classes[c].len() {
                    continue;
                }
                if sims[c].is_none() {
                    let id = classes[c][heads[c]].1;
                    sims[c] = Some(self.simulate(&self.nodes[id], src, reqs, &rem));
                }
                let sim = sims[c].as_ref().map(|s| (s.total_placed, s.score));
                let Some((tp, sc)) = sim else { continue };
                if tp == 0 {
                    continue;
                }
                best = match best {
                    None => Some(c),
                    Some(b) => {
                        let bs = sims[b].as_ref().map(|s| s.score);
                        let better = match bs {
                            Some(bs) => {
                                let a = (sc, self.nodes[classes[c][heads[c]].1].priority);
                                let bb = (bs, self.nodes[classes[b][heads[b]].1].priority);
                                cmp_key(a, bb) == std::cmp::Ordering::Greater
                                    || (cmp_key(a, bb) == std::cmp::Ordering::Equal
                                        && classes[c][heads[c]].0 < classes[b][heads[b]].0)
                            }
                            None => true,
                        };
                        if better { Some(c) } else { Some(b) }
                    }
                };
            }
            let Some(b) = best else { break };
            let Some(bsim) = sims[b].clone() else { break };
            let bkey = (bsim.score, self.nodes[classes[b][heads[b]].1].priority);
            // tie limit: stop before the first node of an equally scored class
            let mut tie_pos = usize::MAX;
            for c in 0..classes.len() {
                if c == b || heads[c] >= classes[c].len() {
                    continue;
                }
                if let Some(s) = &sims[c]
                    && s.total_placed > 0
                    && cmp_key((s.score, self.nodes[classes[c][heads[c]].1].priority), bkey)
                        == std::cmp::Ordering::Equal
                {
                    tie_pos = tie_pos.min(classes[c][heads[c]].0);
                }
            }
            let avail_nodes = classes[b][heads[b]..]
                .iter()
                .take_while(|(p, _)| *p < tie_pos)
                .count() as u64;
            let mut jmax = avail_nodes.saturating_sub(1);
            for c in 0..classes.len() {
                if heads[c] >= classes[c].len() && c != b {
                    continue;
                }
                if let Some(s) = &sims[c] {
                    jmax = jmax.min(batch_limit(s, &bsim.placed, &rem));
                }
            }
            let k = (jmax + 1) as usize;
            for i in 0..k {
                let (pos, id) = classes[b][heads[b] + i];
                if atomic {
                    undo.push((id, self.nodes[id].clone()));
                }
                self.commit(id, src, reqs, &bsim.placed);
                chosen[pos] = true;
                target.push(id);
            }
            heads[b] += k;
            for (r, p) in rem.iter_mut().zip(&bsim.placed) {
                *r -= p * k as u64;
            }
            for s in sims.iter_mut() {
                if let Some(sim) = s
                    && !still_valid(sim, &bsim.placed, &rem)
                {
                    *s = None;
                }
            }
        }
        for (pos, &id) in cands.iter().enumerate() {
            if !chosen[pos] {
                target.push(id);
            }
        }
        target.extend(exhausted);
        // new nodes
        let mut available: Vec<u64> = (0..self.type_total.len())
            .map(|t| self.type_max[t].saturating_sub(self.count_of_type(t)))
            .collect();
        let mut pool: Vec<usize> = (0..self.type_total.len())
            .filter(|&t| available[t] > 0 && self.type_launchable[t])
            .collect();
        let fresh: Vec<Node> = (0..self.type_total.len())
            .map(|t| self.fresh_node(t, NodeStatus::ToLaunch))
            .collect();
        let mut tsims: Vec<Option<Sim>> = vec![None; self.type_total.len()];
        while rem.iter().any(|&r| r > 0) && !pool.is_empty() {
            if let Some(m) = self.max_num_nodes
                && target.len() as u64 >= m
            {
                break;
            }
            let mut best: Option<(usize, usize)> = None; // (pool pos, type)
            for (pp, &t) in pool.iter().enumerate() {
                if tsims[t].is_none() {
                    tsims[t] = Some(self.simulate(&fresh[t], src, reqs, &rem));
                }
                let Some(s) = &tsims[t] else { continue };
                if s.total_placed == 0 {
                    continue;
                }
                let key = (s.score, self.type_priority[t]);
                best = match best {
                    None => Some((pp, t)),
                    Some((bp, bt)) => {
                        let bs = tsims[bt].as_ref().map(|s| s.score);
                        match bs {
                            Some(bs)
                                if cmp_key(key, (bs, self.type_priority[bt]))
                                    == std::cmp::Ordering::Greater =>
                            {
                                Some((pp, t))
                            }
                            Some(_) => Some((bp, bt)),
                            None => Some((pp, t)),
                        }
                    }
                };
            }
            let Some((bp, bt)) = best else { break };
            let Some(bsim) = tsims[bt].clone() else { break };
            let bkey = (bsim.score, self.type_priority[bt]);
            let tied = pool.iter().any(|&t| {
                t != bt
                    && tsims[t].as_ref().is_some_and(|s| {
                        s.total_placed > 0
                            && cmp_key((s.score, self.type_priority[t]), bkey)
                                == std::cmp::Ordering::Equal
                    })
            });
            let mut jmax = if tied { 0 } else { available[bt] - 1 };
            if let Some(m) = self.max_num_nodes {
                jmax = jmax.min(m.saturating_sub(target.len() as u64 + 1));
            }
            for &t in &pool {
                if let Some(s) = &tsims[t] {
                    jmax = jmax.min(batch_limit(s, &bsim.placed, &rem));
                }
            }
            let k = jmax + 1;
            for _ in 0..k {
                let id = self.nodes.len();
                self.nodes.push(fresh[bt].clone());
                self.commit(id, src, reqs, &bsim.placed);
                target.push(id);
            }
            for (r, p) in rem.iter_mut().zip(&bsim.placed) {
                *r -= p * k;
            }
            available[bt] -= k;
            pool.remove(bp);
            if available[bt] > 0 {
                pool.push(bt);
            }
            for s in tsims.iter_mut() {
                if let Some(sim) = s
                    && !still_valid(sim, &bsim.placed, &rem)
                {
                    *s = None;
                }
            }
        }
        if atomic && rem.iter().any(|&r| r > 0) {
            self.nodes.truncate(n_before);
            for (id, node) in undo.into_iter().rev() {
                self.nodes[id] = node;
            }
            return rem;
        }
        self.order = target;
        rem
    }

    /// Nodes of a type in the context (any status), as Ray's `_compute_available_node_types`.
    pub fn count_of_type(&self, t: usize) -> u64 {
        self.order
            .iter()
            .filter(|&&id| self.nodes[id].type_idx == Some(t))
            .count() as u64
    }
}

fn cmp_key(a: (Score, i64), b: (Score, i64)) -> std::cmp::Ordering {
    a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal)
}

/// How many more times placement `p` can be taken from `rem` while `sim` (a class's first-fit
/// result at `rem`) stays exactly the same.
fn batch_limit(sim: &Sim, p: &[u64], rem: &[u64]) -> u64 {
    let mut j = u64::MAX;
    for i in 0..p.len() {
        if p[i] == 0 {
            continue;
        }
        if sim.placed[i] == sim.cap[i] {
            // capacity-limited: unchanged while rem - j·p ≥ cap
            j = j.min((rem[i] - sim.cap[i]) / p[i]);
        } else {
            return 0;
        }
    }
    j
}

/// After taking `p` (already subtracted into `rem`), is `sim` still the first-fit result?
fn still_valid(sim: &Sim, p: &[u64], rem: &[u64]) -> bool {
    for i in 0..p.len() {
        if p[i] == 0 {
            continue;
        }
        if sim.placed[i] != sim.cap[i] || rem[i] < sim.cap[i] {
            return false;
        }
    }
    true
}
