#!/usr/bin/env bash
# Builds (once) promtool from the Go module proxy — github.com/prometheus/prometheus/cmd/promtool
# at the version tools/promtool/go.mod requires, without the service-discovery plugins (build tag
# remove_all_sd: promtool's rule checks do not need them) — and prints the path of the binary on
# stdout. Logs go to stderr. Used by tests/monitoring.rs (`promtool check rules`, `promtool test
# rules` over deploy/monitoring/prometheusrule.yaml).
#
# Cache: ${RAYGATE_CACHE:-$HOME/.cache/raygate}/promtool/<sha256 of tools/promtool/go.sum+go.mod>/
# (see scripts/go-tool.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tool="$root/tools/promtool"
# shellcheck source=go-tool.sh
source "$root/scripts/go-tool.sh"
key="$(cat "$tool/go.sum" "$tool/go.mod" | sha256sum | cut -c1-64)"
go_tool_bin promtool "$key" "$tool" --version -- -tags remove_all_sd -ldflags="-s -w" \
  github.com/prometheus/prometheus/cmd/promtool
