#!/usr/bin/env bash
# KubeRay head-to-head (not part of scripts/test.sh): builds tools/kuberay-h2h (KubeRay's own
# RayCluster webhook + validation from github.com/ray-project/kuberay/ray-operator) once, cached
# outside the clone at ${RAYGATE_CACHE:-$HOME/.cache/raygate}/kuberay-h2h/<sha256 of go.sum>/,
# then runs the load benchmark (benches/kuberay_h2h.rs) and the differential test
# (benches/kuberay_diff.rs). Results are printed and written to bench-out/.
# Extra arguments go to the load benchmark, e.g. `--duration 10 --concurrency 64 --rounds 2`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tool="$root/tools/kuberay-h2h"
key="$(sha256sum "$tool/go.sum" | cut -c1-64)"
out="${RAYGATE_CACHE:-$HOME/.cache/raygate}/kuberay-h2h/$key"
if [ ! -x "$out/kuberay-h2h" ]; then
  mkdir -p "$out"
  echo "kuberay-h2h: building (first time: a few minutes) ..." >&2
  (cd "$tool" && GOWORK=off CGO_ENABLED=0 GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod" nice -n 10 \
    go build -trimpath -ldflags='-s -w' -o "$out/kuberay-h2h.tmp" .) >&2
  mv "$out/kuberay-h2h.tmp" "$out/kuberay-h2h"
fi
export KUBERAY_H2H_BIN="$out/kuberay-h2h"
mkdir -p "$root/bench-out"
cd "$root"
cargo bench --bench kuberay_h2h -- "$@" | tee bench-out/kuberay_h2h.md
cargo bench --bench kuberay_diff -- --variants "${VARIANTS:-5000}" --seed "${SEED:-1}" | tee bench-out/kuberay_diff.md
