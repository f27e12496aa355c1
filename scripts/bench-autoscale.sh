#!/usr/bin/env bash
# Autoscaler benchmark: raygate's planner vs Ray 2.60.0's own schedulers on identical inputs.
#   1. `cargo bench --bench autoscale` writes the cases (scenario JSON) and times raygate;
#   2. scripts/bench-ray-scheduler.py runs Ray v2 `ResourceDemandScheduler.schedule` and v1
#      `get_nodes_to_launch` on the same files (per-case timeout, default 120 s; bigger cases
#      are skipped after a timeout) and prints the comparison table.
# Usage: scripts/bench-autoscale.sh [TIMEOUT_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
timeout_s="${1:-120}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
cases="$target/autoscale-bench"
cargo bench --bench autoscale -- --cases-dir "$cases"
venv="$(bash scripts/ray-venv.sh)"
"$venv/bin/python" scripts/bench-ray-scheduler.py --cases-dir "$cases" --timeout "$timeout_s" --out "$cases/ray.json"
