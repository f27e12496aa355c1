#!/usr/bin/env bash
# Builds (once) tools/kuberay — KubeRay's operator reconcilers, validating webhook and validation
# functions from github.com/ray-project/kuberay/ray-operator (Go module, see tools/kuberay/go.mod
# for the version) — and prints the path of the binary on stdout. Logs go to stderr.
#
# Cache: ${RAYGATE_CACHE:-$HOME/.cache/raygate}/kuberay/<sha256 of tools/kuberay/go.sum>/kuberay
# (outside the clone; a `.complete` marker is written last, so an interrupted build is redone; a
# flock serializes concurrent callers). A go.sum change (a version bump) gives a new directory.
# Cold build: a few minutes on 2 cores (most of it client-go/controller-runtime).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tool="$root/tools/kuberay"
key="$(cat "$tool/go.sum" "$tool/go.mod" "$tool/main.go" | sha256sum | cut -c1-64)"
cache="${RAYGATE_CACHE:-$HOME/.cache/raygate}/kuberay"
out="$cache/$key"

complete() { [ -f "$out/.complete" ] && [ -x "$out/kuberay" ]; }
if complete; then
  echo "$out/kuberay"
  exit 0
fi
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if complete; then
  echo "$out/kuberay"
  exit 0
fi
command -v go >/dev/null || { echo "kuberay-bin: 'go' not found on PATH (need Go >= 1.25)" >&2; exit 1; }
export GOWORK=off CGO_ENABLED=0 GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod"
tmp="$cache/.build-$key.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
echo "kuberay-bin: building tools/kuberay into $out ..." >&2
(cd "$tool" && nice -n 10 go build -trimpath -ldflags='-s -w' -o "$tmp/kuberay" .) >&2
"$tmp/kuberay" version >&2
rm -rf "$out"
mkdir -p "$out"
mv "$tmp/kuberay" "$out/kuberay"
touch "$out/.complete"
echo "kuberay-bin: done in $(($(date +%s) - start)) s" >&2
echo "$out/kuberay"
