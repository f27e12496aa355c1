#!/usr/bin/env python3
"""Runs Ray's own schedulers on the autoscaler benchmark cases and compares with raygate.

The cases are the scenario JSON files written by `cargo bench --bench autoscale` (RayCluster,
worker pods, Ray nodes, grouped demands). For each case this script:

* derives the autoscaling config from the RayCluster with Ray's own KubeRay code
  (`_derive_autoscaling_config_from_ray_cr`);
* v2: builds a `SchedulingRequest` (one RAY_RUNNING instance per Ray node, the head as HEAD, the
  demands as `ResourceRequestByCount`) and times `ResourceDemandScheduler().schedule(...)`;
* v1: builds a fake node provider (tags + IPs) and times
  `ResourceDemandScheduler.get_nodes_to_launch(...)` with the demands flattened;
* runs every (case, version) in a child process with a timeout; after a timeout, the bigger
  cases of that version are skipped;
* prints a Markdown table next to raygate's figures (from raygate.json) and whether the launch
  counts per group agree.

Usage: bench-ray-scheduler.py --cases-dir DIR [--raygate DIR/raygate.json] [--timeout 120]
       bench-ray-scheduler.py --check-scenarios tests/scenarios
The second form runs Ray v2's scheduler on every acceptance scenario it can express (running
nodes and task demands only: no pending pods, placement groups, constraints or workersToDelete)
and compares Ray's launches and terminations with the expected raygate plan next to it.
"""

import argparse
import json
import os
import subprocess
import sys
import time


def load_case(path):
    with open(path) as f:
        return json.load(f)


def run_v2(case):
    from ray.autoscaler._private.kuberay.autoscaling_config import (
        _derive_autoscaling_config_from_ray_cr,
    )
    from ray.autoscaler.v2.instance_manager.config import AutoscalingConfig
    from ray.autoscaler.v2.scheduler import ResourceDemandScheduler, SchedulingRequest
    from ray.autoscaler.v2.schema import AutoscalerInstance
    from ray.autoscaler.v2.utils import ResourceRequestUtil
    from ray.core.generated.autoscaler_pb2 import NodeState, NodeStatus, ResourceRequestByCount
    from ray.core.generated.instance_manager_pb2 import Instance, NodeKind

    cfg = AutoscalingConfig(_derive_autoscaling_config_from_ray_cr(case["rayCluster"]), skip_content_hash=True)
    group_of = {p["name"]: p["group"] for p in case.get("pods", [])}
    instances = []
    for i, n in enumerate(case["ray"]["nodes"]):
        pod = n["pod"]
        is_head = pod not in group_of
        itype = "headgroup" if is_head else group_of[pod]
        kind = NodeKind.HEAD if is_head else NodeKind.WORKER
        idle_ms = int(round(float(n.get("idleSeconds") or 0) * 1000))
        node_id = i.to_bytes(28, "big")
        avail = n.get("available", n["total"])
        im = Instance(
            instance_id=f"im-{i}",
            cloud_instance_id=pod,
            node_id=node_id.hex(),
            status=Instance.RAY_RUNNING,
            instance_type=itype,
            node_kind=kind,
        )
        rn = NodeState(
            node_id=node_id,
            instance_id=pod,
            ray_node_type_name=itype,
            total_resources={k: float(v) for k, v in n["total"].items()},
            available_resources={k: float(v) for k, v in avail.items()},
            idle_duration_ms=idle_ms,
            status=NodeStatus.IDLE if idle_ms > 0 else NodeStatus.RUNNING,
        )
        instances.append(AutoscalerInstance(cloud_instance_id=pod, ray_node=rn, im_instance=im))
    requests = [
        ResourceRequestByCount(
            request=ResourceRequestUtil.make({k: float(v) for k, v in d["resources"].items()}),
            count=int(d.get("count", 1)),
        )
        for d in case["ray"].get("demands", [])
    ]
    req = SchedulingRequest(
        node_type_configs=cfg.get_node_type_configs(),
        max_num_nodes=cfg.get_max_num_nodes(),
        resource_requests=requests,
        current_instances=instances,
        idle_timeout_s=cfg.get_idle_timeout_s(),
        disable_launch_config_check=cfg.disable_launch_config_check(),
    )
    t = time.perf_counter()
    reply = ResourceDemandScheduler().schedule(req)
    seconds = time.perf_counter() - t
    launch = {}
    for lr in reply.to_launch:
        launch[lr.instance_type] = launch.get(lr.instance_type, 0) + lr.count
    return {
        "seconds": seconds,
        "launch": launch,
        "infeasible": len(reply.infeasible_resource_requests),
        "terminate": len(reply.to_terminate),
    }


def run_v1(case):
    from ray.autoscaler._private.kuberay.autoscaling_config import (
        _derive_autoscaling_config_from_ray_cr,
    )
    from ray.autoscaler._private.node_provider_availability_tracker import NodeAvailabilitySummary
    from ray.autoscaler._private.resource_demand_scheduler import ResourceDemandScheduler
    from ray.autoscaler.tags import (
        NODE_KIND_HEAD,
        NODE_KIND_WORKER,
        STATUS_UP_TO_DATE,
        TAG_RAY_NODE_KIND,
        TAG_RAY_NODE_STATUS,
        TAG_RAY_USER_NODE_TYPE,
    )

    cfg = _derive_autoscaling_config_from_ray_cr(case["rayCluster"])
    group_of = {p["name"]: p["group"] for p in case.get("pods", [])}

    class FakeProvider:
        def __init__(self):
            self.tags = {}
            self.ips = {}

        def node_tags(self, node_id):
            return self.tags[node_id]

        def internal_ip(self, node_id):
            return self.ips[node_id]

        def is_terminated(self, node_id):
            return False

        def non_terminated_nodes(self, tag_filters):
            return list(self.tags)

    provider = FakeProvider()
    ids, unused, totals = [], {}, {}
    for i, n in enumerate(case["ray"]["nodes"]):
        pod = n["pod"]
        is_head = pod not in group_of
        provider.tags[pod] = {
            TAG_RAY_NODE_KIND: NODE_KIND_HEAD if is_head else NODE_KIND_WORKER,
            TAG_RAY_USER_NODE_TYPE: "headgroup" if is_head else group_of[pod],
            TAG_RAY_NODE_STATUS: STATUS_UP_TO_DATE,
        }
        ip = f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}"
        provider.ips[pod] = ip
        ids.append(pod)
        totals[ip] = {k: float(v) for k, v in n["total"].items()}
        unused[ip] = {k: float(v) for k, v in n.get("available", n["total"]).items()}
    demands = []
    for d in case["ray"].get("demands", []):
        bundle = {k: float(v) for k, v in d["resources"].items()}
        demands.extend(dict(bundle) for _ in range(int(d.get("count", 1))))
    sched = ResourceDemandScheduler(
        provider,
        cfg["available_node_types"],
        cfg["max_workers"],
        cfg["head_node_type"],
        cfg["upscaling_speed"],
    )
    t = time.perf_counter()
    to_launch, unfulfilled = sched.get_nodes_to_launch(
        ids,
        {},
        demands,
        unused,
        [],
        totals,
        [],
        NodeAvailabilitySummary(node_availabilities={}),
    )
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "launch": dict(to_launch), "infeasible": len(unfulfilled)}


def child(case_path, version):
    case = load_case(case_path)
    out = run_v2(case) if version == "v2" else run_v1(case)
    print(json.dumps(out))


def check_scenarios(directory):
    import glob

    import yaml

    same = differ = 0
    for f in sorted(glob.glob(os.path.join(directory, "*.yaml"))):
        s = yaml.safe_load(open(f))
        ray = s.get("ray") or {}
        if "placementGroups" in ray or "constraints" in ray or "rayCluster" not in s:
            continue
        pods = s.get("pods") or []
        nodes = ray.get("nodes") or []
        with_node = {n["pod"] for n in nodes}
        if any(p["name"] not in with_node or p.get("deleting") for p in pods):
            continue
        groups = s["rayCluster"]["spec"].get("workerGroupSpecs", [])
        if any(g.get("scaleStrategy") for g in groups):
            continue
        count = {}
        for p in pods:
            count[p["group"]] = count.get(p["group"], 0) + 1
        if any(max(g.get("replicas", 0), g.get("minReplicas", 0)) * g.get("numOfHosts", 1) > count.get(g["groupName"], 0) for g in groups):
            continue
        try:
            r = run_v2(s)
        except Exception as e:  # Ray refuses the RayCluster
            print(f"{os.path.basename(f)}: Ray raised {type(e).__name__}: {str(e).splitlines()[0]}")
            continue
        exp = json.load(open(f[: -len(".yaml")] + ".expected.json"))
        mine = {k: v["launch"] for k, v in exp["groups"].items() if v["launch"]}
        terms = sum(len(v["terminate"]) for v in exp["groups"].values())
        cap = (s.get("options") or {}).get("maxConcurrentLaunches", 10)
        if mine == r["launch"] and terms == r["terminate"]:
            verdict = "same"
            same += 1
        elif terms == r["terminate"] and all(mine.get(k, 0) <= v for k, v in r["launch"].items()) and set(mine) <= set(r["launch"]):
            verdict = f"same scheduler result; raygate applies the reconciler's launch rate (cap {cap})"
            same += 1
        else:
            verdict = "DIFFERENT"
            differ += 1
        print(f"{os.path.basename(f)}: Ray v2 launch {r['launch']} terminate {r['terminate']} | raygate launch {mine} terminate {terms}: {verdict}")
    print(f"{same} agree, {differ} differ")
    return differ == 0


def fmt_s(x):
    if x is None:
        return "—"
    if x < 1:
        return f"{x * 1000:.1f} ms"
    return f"{x:.2f} s"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases-dir")
    ap.add_argument("--check-scenarios", metavar="DIR")
    ap.add_argument("--raygate", default=None)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--versions", default="v2,v1")
    ap.add_argument("--out", default=None)
    ap.add_argument("--child", nargs=2, metavar=("CASE", "VERSION"))
    a = ap.parse_args()
    if a.check_scenarios:
        sys.exit(0 if check_scenarios(a.check_scenarios) else 1)
    if not a.cases_dir:
        ap.error("--cases-dir is required")
    if a.child:
        child(*a.child)
        return
    raygate_path = a.raygate or os.path.join(a.cases_dir, "raygate.json")
    with open(raygate_path) as f:
        raygate = json.load(f)
    versions = [v for v in a.versions.split(",") if v]
    timed_out = set()
    rows = []
    for rg in raygate:
        case_path = os.path.join(a.cases_dir, rg["case"] + ".json")
        row = {"case": rg["case"], "nodes": rg["nodes"], "demands": rg["demands"], "raygate": rg}
        for v in versions:
            if v in timed_out:
                row[v] = {"status": "skipped"}
                continue
            try:
                p = subprocess.run(
                    [sys.executable, os.path.abspath(__file__), "--cases-dir", a.cases_dir, "--child", case_path, v],
                    capture_output=True,
                    text=True,
                    timeout=a.timeout,
                )
            except subprocess.TimeoutExpired:
                timed_out.add(v)
                row[v] = {"status": "timeout"}
                print(f"{rg['case']} {v}: timeout after {a.timeout:.0f} s", file=sys.stderr, flush=True)
                continue
            if p.returncode != 0:
                row[v] = {"status": "error", "stderr": p.stderr[-2000:]}
                print(f"{rg['case']} {v}: error\n{p.stderr[-2000:]}", file=sys.stderr, flush=True)
                continue
            res = json.loads(p.stdout.strip().splitlines()[-1])
            res["status"] = "ok"
            res["same_launch"] = res["launch"] == rg["launch"]
            row[v] = res
            print(
                f"{rg['case']} {v}: {fmt_s(res['seconds'])} launch {res['launch']} "
                f"(raygate {rg['launch']}, same: {res['same_launch']})",
                file=sys.stderr,
                flush=True,
            )
        rows.append(row)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(rows, f, indent=2)
    # Markdown table
    head = "| nodes × demands | raygate plan (median / max) | " + " | ".join(
        f"Ray {v} {'schedule' if v == 'v2' else 'get_nodes_to_launch'}" for v in versions
    ) + " | raygate launches | same launches as Ray |"
    print(head)
    print("|" + "---|" * (4 + len(versions)))
    for r in rows:
        rg = r["raygate"]
        label = f"{r['nodes']:,} × {r['demands']:,}" + (" distinct" if r["case"].endswith("-distinct") else "")
        cells = [label, f"{rg['median_ms']:.2f} ms / {rg['max_ms']:.2f} ms"]
        same = []
        for v in versions:
            x = r[v]
            if x["status"] == "ok":
                cells.append(fmt_s(x["seconds"]))
                same.append(f"{v}: {'yes' if x['same_launch'] else 'no ' + json.dumps(x['launch'], sort_keys=True)}")
            else:
                cells.append(x["status"])
        cells.append(json.dumps(rg["launch"], sort_keys=True))
        cells.append("; ".join(same) if same else "—")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
