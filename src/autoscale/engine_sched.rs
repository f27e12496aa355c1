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

    /// A fresh pod of type `t`, with nothing else on it, could hold one `q` (whatever the
    /// type's maxReplicas): the test between a capped and an infeasible demand.
    pub fn type_fits(&self, t: usize, q: &Req) -> bool {
        (0..self.nres).all(|r| {
            let have = if self.type_has[t] & (1 << r) != 0 {
                self.type_total[t][r]
            } else if self.implicit[r] {
                SCALE as i64
            } else {
                0
            };
            q.res[r] == 0 || (q.res[r] > 0 && have >= q.res[r])
        })
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
        let mut chosen = vec![false; cands.len()];
        self.place_on_existing(
            src,
            reqs,
            &mut rem,
            &classes,
            &mut chosen,
            &mut target,
            atomic,
            &mut undo,
        );
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

    /// The existing-node phase of `_try_schedule`: repeatedly the best node (score, priority, then
    /// list position) takes what first-fit places on it. Classes of identical nodes share one
    /// simulation; a heap orders the classes, and per-shape indexes find the classes whose
    /// first-fit result changes when the remaining counts drop, so a round costs O(log C) plus
    /// the re-simulated classes. A run of nodes of the winning class is committed at once while
    /// no class's result can change (and no equally scored class comes earlier in the list).
    #[allow(clippy::too_many_arguments)]
    fn place_on_existing(
        &mut self,
        src: Source,
        reqs: &[Req],
        rem: &mut [u64],
        classes: &[Vec<(usize, usize)>],
        chosen: &mut [bool],
        target: &mut Vec<usize>,
        atomic: bool,
        undo: &mut Vec<(usize, Node)>,
    ) {
        use std::collections::BinaryHeap;
        let nc = classes.len();
        let ns = reqs.len();
        let mut heads = vec![0usize; nc];
        let mut sims: Vec<Option<Sim>> = vec![None; nc];
        let mut ver = vec![0u32; nc];
        let mut dirty: Vec<usize> = (0..nc).collect();
        let mut is_dirty = vec![true; nc];
        let mut heap: BinaryHeap<(HeapKey, usize, u32)> = BinaryHeap::new();
        let mut cap_heaps: Vec<BinaryHeap<(u64, usize, u32)>> = vec![BinaryHeap::new(); ns];
        let mut count_lim: Vec<Vec<(usize, u32)>> = vec![Vec::new(); ns];
        let live = |heads: &[usize], c: usize| heads[c] < classes[c].len();
        while rem.iter().any(|&r| r > 0) {
            // (re)simulate invalidated classes
            while let Some(c) = dirty.pop() {
                is_dirty[c] = false;
                if !live(&heads, c) {
                    continue;
                }
                let (pos, id) = classes[c][heads[c]];
                let sim = self.simulate(&self.nodes[id], src, reqs, rem);
                ver[c] = ver[c].wrapping_add(1);
                if sim.total_placed == 0 {
                    // places nothing now, and cannot later (counts only drop)
                    sims[c] = None;
                    continue;
                }
                for i in 0..ns {
                    if sim.placed[i] < sim.cap[i] {
                        if sim.placed[i] > 0 {
                            count_lim[i].push((c, ver[c]));
                        }
                    } else if sim.cap[i] > 0 {
                        cap_heaps[i].push((sim.cap[i], c, ver[c]));
                    }
                }
                heap.push((
                    HeapKey::new(sim.score, self.nodes[id].priority, pos),
                    c,
                    ver[c],
                ));
                sims[c] = Some(sim);
            }
            let valid = |e: &(HeapKey, usize, u32), heads: &[usize], ver: &[u32]| {
                let c = e.1;
                ver[c] == e.2 && heads[c] < classes[c].len() && classes[c][heads[c]].0 == e.0.pos
            };
            let best = loop {
                match heap.pop() {
                    None => break None,
                    Some(e) if valid(&e, &heads, &ver) => break Some(e),
                    Some(_) => {}
                }
            };
            let Some((bkey, b, bver)) = best else { break };
            let Some(bsim) = sims[b].clone() else { break };
            // the first equally scored class later in the list bounds the run
            let mut tie_pos = usize::MAX;
            while let Some(top) = heap.peek() {
                if !valid(top, &heads, &ver) {
                    heap.pop();
                    continue;
                }
                if top.0.same_score(&bkey) {
                    tie_pos = top.0.pos;
                }
                break;
            }
            let run = classes[b][heads[b]..]
                .iter()
                .take_while(|(p, _)| *p < tie_pos)
                .count() as u64;
            let mut jmax = run.saturating_sub(1);
            for i in 0..ns {
                let p = bsim.placed[i];
                if p == 0 {
                    continue;
                }
                count_lim[i].retain(|&(c, v)| ver[c] == v && heads[c] < classes[c].len());
                if !count_lim[i].is_empty() {
                    jmax = 0;
                    break;
                }
                while let Some(&(cap, c, v)) = cap_heaps[i].peek() {
                    if ver[c] != v || !live(&heads, c) {
                        cap_heaps[i].pop();
                        continue;
                    }
                    jmax = jmax.min((rem[i] - cap) / p);
                    break;
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
            // invalidate classes whose first-fit result changed
            let mut invalidate = |c: usize, ver: &mut [u32], sims: &mut [Option<Sim>]| {
                ver[c] = ver[c].wrapping_add(1);
                sims[c] = None;
                if !is_dirty[c] {
                    is_dirty[c] = true;
                    dirty.push(c);
                }
            };
            for i in 0..ns {
                if bsim.placed[i] == 0 {
                    continue;
                }
                for (c, v) in std::mem::take(&mut count_lim[i]) {
                    if ver[c] == v {
                        invalidate(c, &mut ver, &mut sims);
                    }
                }
                while let Some(&(cap, c, v)) = cap_heaps[i].peek() {
                    if ver[c] != v {
                        cap_heaps[i].pop();
                    } else if cap > rem[i] {
                        cap_heaps[i].pop();
                        invalidate(c, &mut ver, &mut sims);
                    } else {
                        break;
                    }
                }
            }
            if ver[b] == bver && live(&heads, b) {
                let pos = classes[b][heads[b]].0;
                heap.push((HeapKey::new(bsim.score, bkey.prio, pos), b, bver));
            }
        }
    }

    /// Nodes of a type in the context (any status), as Ray's `_compute_available_node_types`.
    pub fn count_of_type(&self, t: usize) -> u64 {
        self.order
            .iter()
            .filter(|&&id| self.nodes[id].type_idx == Some(t))
            .count() as u64
    }
}

/// Ordering of candidate classes: higher score, then higher priority, then earlier position.
#[derive(Debug, Clone, Copy)]
struct HeapKey {
    score: Score,
    prio: i64,
    pos: usize,
}

impl HeapKey {
    fn new(score: Score, prio: i64, pos: usize) -> Self {
        // normalize -0.0 so that equal scores compare equal under total_cmp
        let score = Score {
            min: score.min + 0.0,
            mean: score.mean + 0.0,
            ..score
        };
        HeapKey { score, prio, pos }
    }

    fn cmp_score(&self, o: &Self) -> std::cmp::Ordering {
        self.score
            .gpu_ok
            .cmp(&o.score.gpu_ok)
            .then(self.score.matching.cmp(&o.score.matching))
            .then(self.score.min.total_cmp(&o.score.min))
            .then(self.score.mean.total_cmp(&o.score.mean))
            .then(self.prio.cmp(&o.prio))
    }

    fn same_score(&self, o: &Self) -> bool {
        self.cmp_score(o) == std::cmp::Ordering::Equal
    }
}

impl PartialEq for HeapKey {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == std::cmp::Ordering::Equal
    }
}
impl Eq for HeapKey {}
impl PartialOrd for HeapKey {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for HeapKey {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.cmp_score(o).then(o.pos.cmp(&self.pos))
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Ray's `_try_schedule` literally: one node per round, every candidate simulated.
    fn reference(ctx: &mut Ctx, src: Source, reqs: &[Req], atomic: bool) -> Vec<u64> {
        let before = ctx.clone();
        let mut rem: Vec<u64> = reqs.iter().map(|q| q.count).collect();
        let mut target = Vec::new();
        let mut exhausted = Vec::new();
        let mut cands = Vec::new();
        for &id in &ctx.order {
            let n = &ctx.nodes[id];
            if n.status == NodeStatus::ToTerminate || (n.running && !ctx.can_fit_any(n, src, reqs))
            {
                exhausted.push(id);
            } else {
                cands.push(id);
            }
        }
        let mut chosen = vec![false; cands.len()];
        while rem.iter().any(|&r| r > 0) {
            let mut best: Option<(usize, Sim)> = None;
            for (i, &id) in cands.iter().enumerate() {
                if chosen[i] {
                    continue;
                }
                let sim = ctx.simulate(&ctx.nodes[id], src, reqs, &rem);
                if sim.total_placed == 0 {
                    continue;
                }
                let key = (sim.score, ctx.nodes[id].priority);
                let better = match &best {
                    None => true,
                    Some((bi, bs)) => {
                        cmp_key(key, (bs.score, ctx.nodes[cands[*bi]].priority))
                            == std::cmp::Ordering::Greater
                    }
                };
                if better {
                    best = Some((i, sim));
                }
            }
            let Some((i, sim)) = best else { break };
            chosen[i] = true;
            ctx.commit(cands[i], src, reqs, &sim.placed);
            target.push(cands[i]);
            for (r, p) in rem.iter_mut().zip(&sim.placed) {
                *r -= p;
            }
        }
        for (i, &id) in cands.iter().enumerate() {
            if !chosen[i] {
                target.push(id);
            }
        }
        target.extend(exhausted);
        let mut available: Vec<u64> = (0..ctx.type_total.len())
            .map(|t| ctx.type_max[t].saturating_sub(ctx.count_of_type(t)))
            .collect();
        let mut pool: Vec<usize> = (0..ctx.type_total.len())
            .filter(|&t| available[t] > 0 && ctx.type_launchable[t])
            .collect();
        while rem.iter().any(|&r| r > 0) && !pool.is_empty() {
            if let Some(m) = ctx.max_num_nodes
                && target.len() as u64 >= m
            {
                break;
            }
            let mut best: Option<(usize, usize, Sim)> = None;
            for (pp, &t) in pool.iter().enumerate() {
                let fresh = ctx.fresh_node(t, NodeStatus::ToLaunch);
                let sim = ctx.simulate(&fresh, src, reqs, &rem);
                if sim.total_placed == 0 {
                    continue;
                }
                let better = match &best {
                    None => true,
                    Some((_, bt, bs)) => {
                        cmp_key(
                            (sim.score, ctx.type_priority[t]),
                            (bs.score, ctx.type_priority[*bt]),
                        ) == std::cmp::Ordering::Greater
                    }
                };
                if better {
                    best = Some((pp, t, sim));
                }
            }
            let Some((pp, t, sim)) = best else { break };
            let id = ctx.nodes.len();
            ctx.nodes.push(ctx.fresh_node(t, NodeStatus::ToLaunch));
            ctx.commit(id, src, reqs, &sim.placed);
            target.push(id);
            for (r, p) in rem.iter_mut().zip(&sim.placed) {
                *r -= p;
            }
            available[t] -= 1;
            pool.remove(pp);
            if available[t] > 0 {
                pool.push(t);
            }
        }
        if atomic && rem.iter().any(|&r| r > 0) {
            *ctx = before;
            return rem;
        }
        ctx.order = target;
        rem
    }

    fn fx(v: u32) -> i64 {
        v as i64 * SCALE as i64
    }

    #[allow(clippy::type_complexity)]
    fn ctx_strategy() -> impl Strategy<Value = (Ctx, Vec<Req>, bool)> {
        let node_templates = proptest::collection::vec(
            (0u32..3, 0u32..5, 0u32..3, any::<bool>(), 0u64..3, 1usize..6),
            0..8,
        );
        let types = proptest::collection::vec((1u32..9, 0u32..3, 0u64..6, -1i64..2), 1..4);
        let reqs = proptest::collection::vec((0u32..5, 0u32..3, 0u64..40, any::<bool>()), 1..5);
        (node_templates, types, reqs, any::<bool>()).prop_map(|(templates, types, reqs, atomic)| {
            let mut ctx = Ctx {
                nres: 2,
                implicit: vec![false, false],
                gpu: Some(1),
                nodes: Vec::new(),
                order: Vec::new(),
                type_total: types
                    .iter()
                    .map(|(c, g, _, _)| vec![fx(*c), fx(*g)])
                    .collect(),
                type_has: types
                    .iter()
                    .map(|(_, g, _, _)| if *g > 0 { 3 } else { 1 })
                    .collect(),
                type_extras: types.iter().map(|_| (0, 0.0, 0.0)).collect(),
                type_priority: types.iter().map(|(_, _, _, p)| *p).collect(),
                type_max: types.iter().map(|(_, _, m, _)| *m + 6).collect(),
                type_launchable: types.iter().map(|_| true).collect(),
                max_num_nodes: None,
            };
            for (ti, used_c, used_g, running, idle, copies) in templates {
                let t = ti as usize % types.len();
                for _ in 0..copies {
                    let mut n = ctx.fresh_node(t, NodeStatus::Schedulable);
                    n.running = running;
                    n.idle_ms = idle;
                    n.avail[0][0] = (n.total[0] - fx(used_c)).max(0);
                    n.avail[0][1] = (n.total[1] - fx(used_g)).max(0);
                    let id = ctx.nodes.len();
                    ctx.nodes.push(n);
                    ctx.order.push(id);
                }
            }
            let spread_label = 7u32;
            let reqs: Vec<Req> = reqs
                .into_iter()
                .enumerate()
                .map(|(i, (c, g, count, anti))| Req {
                    res: vec![fx(c), fx(g)],
                    keys: u64::from(c > 0) | (u64::from(g > 0) << 1),
                    names_gpu: g > 0,
                    anti: if anti && atomic {
                        Some(spread_label)
                    } else {
                        None
                    },
                    count: if anti && atomic { 1 } else { count },
                    origin: i,
                })
                .collect();
            (ctx, reqs, atomic)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

        /// The class/heap/batched scheduler makes exactly the choices of the literal greedy.
        #[test]
        fn fast_scheduler_equals_the_literal_greedy((ctx, reqs, atomic) in ctx_strategy()) {
            let mut fast = ctx.clone();
            let mut slow = ctx;
            let rf = fast.try_schedule(Source::Demand, &reqs, atomic);
            let rs = reference(&mut slow, Source::Demand, &reqs, atomic);
            prop_assert_eq!(rf, rs);
            prop_assert_eq!(&fast.order, &slow.order);
            prop_assert_eq!(fast.nodes.len(), slow.nodes.len());
            for (a, b) in fast.nodes.iter().zip(&slow.nodes) {
                prop_assert_eq!(&a.avail, &b.avail);
                prop_assert_eq!(a.type_idx, b.type_idx);
                prop_assert_eq!(a.sched_keys, b.sched_keys);
            }
        }
    }

    #[test]
    fn v2_score_tuples() {
        // T-V14: {CPU:1} <- {CPU:1}: (T, 1, 1.0, 1.0); {GPU:1,CPU:1} <- {CPU:1}: (F, 1, 0.0, 0.5)
        let mut ctx = Ctx {
            nres: 2,
            implicit: vec![false, false],
            gpu: Some(1),
            nodes: Vec::new(),
            order: Vec::new(),
            type_total: vec![vec![fx(1), 0], vec![fx(1), fx(1)], vec![0, fx(4)]],
            type_has: vec![1, 3, 2],
            type_extras: vec![(0, 0.0, 0.0); 3],
            type_priority: vec![0; 3],
            type_max: vec![1; 3],
            type_launchable: vec![true; 3],
            max_num_nodes: None,
        };
        ctx.order.clear();
        let cpu1 = Req {
            res: vec![fx(1), 0],
            keys: 1,
            names_gpu: false,
            anti: None,
            count: 1,
            origin: 0,
        };
        let gpu2 = Req {
            res: vec![0, fx(2)],
            keys: 2,
            names_gpu: true,
            anti: None,
            count: 1,
            origin: 0,
        };
        let s = ctx
            .simulate(
                &ctx.fresh_node(0, NodeStatus::ToLaunch),
                Source::Demand,
                std::slice::from_ref(&cpu1),
                &[1],
            )
            .score;
        assert_eq!(
            s,
            Score {
                gpu_ok: true,
                matching: 1,
                min: 1.0,
                mean: 1.0
            }
        );
        let s = ctx
            .simulate(
                &ctx.fresh_node(1, NodeStatus::ToLaunch),
                Source::Demand,
                std::slice::from_ref(&cpu1),
                &[1],
            )
            .score;
        assert_eq!(
            s,
            Score {
                gpu_ok: false,
                matching: 1,
                min: 0.0,
                mean: 0.5
            }
        );
        let s = ctx
            .simulate(
                &ctx.fresh_node(2, NodeStatus::ToLaunch),
                Source::Demand,
                std::slice::from_ref(&gpu2),
                &[1],
            )
            .score;
        assert_eq!(
            s,
            Score {
                gpu_ok: true,
                matching: 1,
                min: 0.5,
                mean: 0.5
            }
        );
    }
}
