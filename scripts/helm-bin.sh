#!/usr/bin/env bash
# Builds (once) the Helm CLI from the Go module proxy — helm.sh/helm/v4/cmd/helm at the version
# tools/helm/go.mod requires — and prints the path of the binary on stdout. Logs go to stderr.
# Used by tests/helm_chart.rs (lint/template/schema/drift) and tests/e2e_helm.rs (install,
# upgrade, uninstall against the e2e kube-apiserver).
#
# Cache: ${RAYGATE_CACHE:-$HOME/.cache/raygate}/helm/<sha256 of tools/helm/go.sum+go.mod>/helm
# (outside the clone; a `.complete` marker is written last, so an interrupted build is redone; a
# flock serializes concurrent callers). A go.sum/go.mod change (a version bump) gives a new
# directory. Cold build: a few minutes on 2 cores (client-go, k8s.io/api, oras).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tool="$root/tools/helm"
key="$(cat "$tool/go.sum" "$tool/go.mod" | sha256sum | cut -c1-64)"
cache="${RAYGATE_CACHE:-$HOME/.cache/raygate}/helm"
out="$cache/$key"

complete() { [ -f "$out/.complete" ] && [ -x "$out/helm" ]; }
if complete; then
  echo "$out/helm"
  exit 0
fi
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if complete; then
  echo "$out/helm"
  exit 0
fi
command -v go >/dev/null || { echo "helm-bin: 'go' not found on PATH (need Go >= 1.26)" >&2; exit 1; }
export GOWORK=off CGO_ENABLED=0 GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod"
version="$(awk '$1 == "require" && $2 == "helm.sh/helm/v4" { print $3 } $1 == "helm.sh/helm/v4" { print $2 }' "$tool/go.mod" | head -n1)"
[ -n "$version" ] || { echo "helm-bin: no helm.sh/helm/v4 requirement in $tool/go.mod" >&2; exit 1; }
tmp="$cache/.build-$key.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
echo "helm-bin: building helm $version into $out ..." >&2
(cd "$tool" && nice -n 10 go build -trimpath \
  -ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$version -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
  -o "$tmp/helm" helm.sh/helm/v4/cmd/helm) >&2
"$tmp/helm" version >&2
rm -rf "$out"
mkdir -p "$out"
mv "$tmp/helm" "$out/helm"
touch "$out/.complete"
echo "helm-bin: done in $(($(date +%s) - start)) s" >&2
echo "$out/helm"
