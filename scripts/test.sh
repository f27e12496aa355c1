#!/usr/bin/env bash
# Runs every raygate test. This is the README's "run all tests" command and what CI runs.
# Installs/builds what the tests need first (cached outside the clone), then `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --all-targets "$@"
