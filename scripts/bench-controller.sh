#!/usr/bin/env bash
# Benchmark of `raygate autoscale run` (release build) on a real kube-apiserver: 100 RayClusters,
# each with its own stand-in GCS, one of which never answers; demand arrives for the 99 others
# at once. Prints the time from the demand to each cluster's replicas patch (p50/p99/max) and the
# controller's RSS. Usage: scripts/bench-controller.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RAYGATE_ENVTEST_BIN="$(bash scripts/envtest-bins.sh)"
export RAYGATE_ENVTEST_BIN
cargo build --release --bin raygate
# A private copy: checkouts sharing a target dir overwrite target/release/raygate.
bin="$(mktemp -d)/raygate"
cp "${CARGO_TARGET_DIR:-target}/release/raygate" "$bin"
RAYGATE_TEST_BIN="$bin" cargo test --release --test e2e_autoscale bench_100_clusters_one_stuck \
  -- --ignored --nocapture 2>&1 | grep -E "^BENCH|test result|panicked"
rm -rf "$(dirname "$bin")"
