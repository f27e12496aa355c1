"""The `ray` command of the kubelet stand-in's Ray "image" (tests/support/kubelet.rs).

A pod's container runs its own command line (for KubeRay's pods: `/bin/bash -c -- "ulimit -n
65536; ray start --head ..."`), and the `ray` it finds on the image's PATH is a two-line script
that runs this file with the ray 2.60.0 venv's Python. In a cluster every pod has its own network
namespace; here all pods share 127.0.0.1, so this adapts exactly what one machine needs and
nothing else, then runs Ray's own CLI through scripts/ray_loopback.py (which keeps 127.0.0.1 as
given):

* `ray start`: `--node-ip-address=127.0.0.1`; the per-node ports (node manager, object manager,
  dashboard agent, runtime-env agent, metrics export, worker range, and on the head the dashboard
  and client-server ports) get the free ports the stand-in reserved for this container instead of
  KubeRay's fixed defaults (8080, 52365, ...); `--dashboard-host=127.0.0.1` and
  `--include-dashboard=false` (nothing binds beyond loopback; KubeRay's RayCluster controller
  never talks to the dashboard); a per-container `--temp-dir`; a small
  `--object-store-memory` unless given; `--disable-usage-stats`. Everything else (`--head`,
  `--port`, `--address=<head service>:<port>`, `--num-cpus`, `--memory`, `--no-monitor`,
  `--block`, ...) is passed on unchanged; the head service name resolves to 127.0.0.1 through the
  container's /etc/hosts.
* `ray kuberay-autoscaler`: Ray's autoscaler dials `<node ip>:6379` in a pod, i.e. its own pod's
  GCS; here that GCS is at `$RAYGATE_STANDIN_GCS` (127.0.0.1:<the head's port>), passed as
  `--gcs-address` unless given. Its metrics port comes from the reserved ports as well.
* anything else (`ray health-check`, `ray status`, ...) runs unchanged.

Each invocation appends one JSON line {"pid", "argv", "exec"} to `$RAYGATE_STANDIN_JOURNAL`: the
proof of which Ray processes ever started.

Environment set by the stand-in: RAYGATE_STANDIN_PORTS (comma-separated free ports, at least 10),
RAYGATE_STANDIN_WORKER_PORTS (`lo-hi`), RAYGATE_STANDIN_TEMP, RAYGATE_STANDIN_GCS,
RAYGATE_STANDIN_JOURNAL.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# Flags of `ray start` whose values are ports of this node (KubeRay sets some of them to fixed
# defaults that every pod can use in its own network namespace).
NODE_PORT_FLAGS = [
    "node-manager-port",
    "object-manager-port",
    "dashboard-agent-listen-port",
    "dashboard-agent-grpc-port",
    "runtime-env-agent-port",
    "metrics-export-port",
]
HEAD_PORT_FLAGS = ["dashboard-port", "ray-client-server-port"]


def parse_flags(args):
    """`--k=v`, `--k v` and bare `--k` into an ordered list of [key, value-or-None]."""
    out = []
    i = 0
    while i < len(args):
        a = args[i]
        if not a.startswith("--"):
            out.append([None, a])
        elif "=" in a:
            k, v = a[2:].split("=", 1)
            out.append([k, v])
        elif i + 1 < len(args) and not args[i + 1].startswith("--") and a[2:] not in BOOL_FLAGS:
            out.append([a[2:], args[i + 1]])
            i += 1
        else:
            out.append([a[2:], None])
        i += 1
    return out


BOOL_FLAGS = {
    "head",
    "block",
    "no-monitor",
    "disable-usage-stats",
    "include-log-monitor",
    "no-redirect-output",
    "ray-debugger-external",
    "enable-object-reconstruction",
    "enable-resource-isolation",
    "skip-version-check",
}


def render(flags):
    out = []
    for k, v in flags:
        if k is None:
            out.append(v)
        elif v is None:
            out.append("--" + k)
        else:
            out.append("--%s=%s" % (k, v))
    return out


def setflag(flags, key, value):
    for f in flags:
        if f[0] == key:
            f[1] = value
            return
    flags.append([key, value])


def hasflag(flags, key):
    return any(f[0] == key for f in flags)


def adapt_start(args, env):
    ports = [p for p in env["RAYGATE_STANDIN_PORTS"].split(",") if p]
    lo, hi = env["RAYGATE_STANDIN_WORKER_PORTS"].split("-")
    flags = parse_flags(args)
    head = hasflag(flags, "head")
    want = NODE_PORT_FLAGS + (HEAD_PORT_FLAGS if head else [])
    if len(ports) < len(want):
        sys.exit("standin_ray: %d reserved ports, %d needed" % (len(ports), len(want)))
    for key, port in zip(want, ports):
        setflag(flags, key, port)
    setflag(flags, "min-worker-port", lo)
    setflag(flags, "max-worker-port", hi)
    setflag(flags, "node-ip-address", "127.0.0.1")
    setflag(flags, "temp-dir", env["RAYGATE_STANDIN_TEMP"])
    if head:
        setflag(flags, "dashboard-host", "127.0.0.1")
        setflag(flags, "include-dashboard", "false")
    if not hasflag(flags, "object-store-memory"):
        setflag(flags, "object-store-memory", "80000000")
    if not hasflag(flags, "disable-usage-stats"):
        flags.append(["disable-usage-stats", None])
    return render(flags)


def main():
    args = sys.argv[1:]
    env = os.environ
    if args and args[0] == "start":
        args = ["start"] + adapt_start(args[1:], env)
        # The head's dashboard-side metrics and the autoscaler's metrics (if Ray starts its own
        # monitor) would otherwise bind fixed default ports.
        ports = env["RAYGATE_STANDIN_PORTS"].split(",")
        os.environ["DASHBOARD_METRIC_PORT"] = ports[-2]
        os.environ["AUTOSCALER_METRIC_PORT"] = ports[-1]
    elif args and args[0] == "kuberay-autoscaler":
        if not any(a == "--gcs-address" or a.startswith("--gcs-address=") for a in args):
            args = args + ["--gcs-address=" + env["RAYGATE_STANDIN_GCS"]]
        os.environ["AUTOSCALER_METRIC_PORT"] = env["RAYGATE_STANDIN_PORTS"].split(",")[-1]
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    argv = [sys.executable, os.path.join(HERE, "ray_loopback.py")] + args
    journal = env.get("RAYGATE_STANDIN_JOURNAL")
    if journal:
        with open(journal, "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "argv": sys.argv[1:], "exec": argv}) + "\n")
    sys.stdout.flush()
    os.execv(sys.executable, argv)


if __name__ == "__main__":
    main()
