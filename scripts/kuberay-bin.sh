#!/usr/bin/env bash
# Builds (once) tools/kuberay — KubeRay's operator reconcilers, validating webhook and validation
# functions from github.com/ray-project/kuberay/ray-operator (Go module, see tools/kuberay/go.mod
# for the version) — and prints the path of the binary on stdout. Logs go to stderr.
#
# Cache: ${RAYGATE_CACHE:-$HOME/.cache/raygate}/kuberay/<sha256 of tools/kuberay/{go.sum,go.mod,main.go}>/kuberay
# (see scripts/go-tool.sh). Cold build: a few minutes on 2 cores (most of it
# client-go/controller-runtime).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tool="$root/tools/kuberay"
# shellcheck source=go-tool.sh
source "$root/scripts/go-tool.sh"
key="$(cat "$tool/go.sum" "$tool/go.mod" "$tool/main.go" | sha256sum | cut -c1-64)"
go_tool_bin kuberay "$key" "$tool" version -- -ldflags='-s -w' .
