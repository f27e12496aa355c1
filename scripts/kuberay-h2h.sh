#!/usr/bin/env bash
# KubeRay head-to-head (not part of scripts/test.sh): builds tools/kuberay (KubeRay's own RayCluster
# webhook + validation from github.com/ray-project/kuberay/ray-operator; scripts/kuberay-bin.sh,
# cached outside the clone), then runs the load benchmark (benches/kuberay_h2h.rs) and the
# differential test (benches/kuberay_diff.rs). Results are printed and written to bench-out/.
# Extra arguments go to the load benchmark, e.g. `--duration 10 --concurrency 64 --rounds 2`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
RAYGATE_KUBERAY_BIN="$(bash "$root/scripts/kuberay-bin.sh")"
export RAYGATE_KUBERAY_BIN
mkdir -p "$root/bench-out"
cd "$root"
cargo bench --bench kuberay_h2h -- "$@" | tee bench-out/kuberay_h2h.md
cargo bench --bench kuberay_diff -- --variants "${VARIANTS:-5000}" --seed "${SEED:-1}" | tee bench-out/kuberay_diff.md
