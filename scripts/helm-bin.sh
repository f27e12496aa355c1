#!/usr/bin/env bash
# Builds (once) the Helm CLI from the Go module proxy — helm.sh/helm/v4/cmd/helm at the version
# tools/helm/go.mod requires — and prints the path of the binary on stdout. Logs go to stderr.
# Used by tests/helm_chart.rs (lint/template/schema/drift) and tests/e2e_helm.rs (install,
# upgrade, uninstall against the e2e kube-apiserver).
#
# Cache: ${RAYGATE_CACHE:-$HOME/.cache/raygate}/helm/<sha256 of tools/helm/go.sum+go.mod>/helm
# (see scripts/go-tool.sh). Cold build: a few minutes on 2 cores (client-go, k8s.io/api, oras).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tool="$root/tools/helm"
# shellcheck source=go-tool.sh
source "$root/scripts/go-tool.sh"
key="$(cat "$tool/go.sum" "$tool/go.mod" | sha256sum | cut -c1-64)"
version="$(awk '$1 == "require" && $2 == "helm.sh/helm/v4" { print $3 } $1 == "helm.sh/helm/v4" { print $2 }' "$tool/go.mod" | head -n1)"
[ -n "$version" ] || { echo "helm-bin: no helm.sh/helm/v4 requirement in $tool/go.mod" >&2; exit 1; }
go_tool_bin helm "$key" "$tool" version -- \
  -ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$version -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
  helm.sh/helm/v4/cmd/helm
