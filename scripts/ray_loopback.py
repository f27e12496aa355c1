"""Run the `ray` command line with loopback addresses kept as given.

Ray 2.60 rewrites a node IP or `--address` host of 127.0.0.1/localhost into the
machine's outward-facing IP (`resolve_ip_for_localhost`), so a "local" cluster
binds GCS, raylet and agents on the external interface. raygate's tests and
`raygate autoscale local` want everything on 127.0.0.1, so this wrapper keeps
the host as written and then runs the ordinary `ray` CLI entry point.

Usage: python ray_loopback.py start --head --node-ip-address=127.0.0.1 ...
"""

import sys

import ray._private.services as services

_original = services.resolve_ip_for_localhost


def _keep_loopback(host):
    if host in ("127.0.0.1", "localhost"):
        return "127.0.0.1"
    return _original(host)


services.resolve_ip_for_localhost = _keep_loopback

from ray.scripts.scripts import main  # noqa: E402

if __name__ == "__main__":
    sys.argv[0] = "ray"
    sys.exit(main())
