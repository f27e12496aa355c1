#!/usr/bin/env bash
# Runs every raygate test. This is the README's "run all tests" command and what CI runs.
# Installs/builds what the tests need first (cached outside the clone), then `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

# kube-apiserver + etcd for tests/e2e_*.rs: built once from tools/envtest (Go), cached outside the
# clone. A failed build fails the run: the e2e tests must not be skipped.
RAYGATE_ENVTEST_BIN="$(bash scripts/envtest-bins.sh)"
export RAYGATE_ENVTEST_BIN

cargo test --all-targets "$@"
