#!/usr/bin/env bash
# Measures `raygate validate`: throughput (benches/validate.rs), single-file wall time of the
# release binary (hyperfine) and peak RSS over the 2,000-file / 20,000-document corpus
# (/usr/bin/time -v). Needs the KubeRay samples at ../shared/kuberay (see README).
# Debian: apt-get install -y hyperfine time
set -euo pipefail
cd "$(dirname "$0")/.."
kept="$(mktemp -d)"
trap 'rm -rf "$kept"' EXIT
RAYGATE_BENCH_KEEP="$kept" cargo bench --bench validate
corpus="$kept/rayclusters"
cargo build --release --bin raygate
bin="${CARGO_TARGET_DIR:-target}/release/raygate"
sample=../shared/kuberay/samples/ray-cluster.autoscaler.yaml
if command -v hyperfine >/dev/null; then
  hyperfine -N --warmup 5 --runs 50 "$bin validate $sample"
else
  echo "hyperfine not installed; skipping single-file timing"
fi
/usr/bin/time -v "$bin" validate --summary "$corpus" 2>&1 >/dev/null | grep -E 'Maximum resident|Elapsed \(wall'
/usr/bin/time -v "$bin" validate -j 2 --summary "$corpus" 2>&1 >/dev/null | grep -E 'Maximum resident|Elapsed \(wall'
