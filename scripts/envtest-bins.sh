#!/usr/bin/env bash
# Builds (once) kube-apiserver and etcd for the end-to-end tests from the Go wrapper modules in
# tools/envtest/{kube-apiserver,etcd}, plus kustomize (`go install`, pinned below), and prints the
# directory holding the binaries on stdout. Logs go to stderr.
#
# Cache: ${RAYGATE_CACHE:-$HOME/.cache/raygate}/envtest/<sha256 of both go.sum files>/{kube-apiserver,etcd}
# (outside the clone; a `.complete` marker is written last, so an interrupted build is redone).
# A change to either go.sum (a version bump) gives a new directory, i.e. a rebuild.
# A cold build takes tens of minutes on 2 cores; Go's module and build caches make rebuilds quick.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/tools/envtest"
KV=v1.34.4 # must match tools/envtest/kube-apiserver/go.mod
MINOR=34
KUSTOMIZE=v5.8.1 # v5.8.2+ need Go >= 1.27

key="$(cat "$tools/kube-apiserver/go.sum" "$tools/etcd/go.sum" | sha256sum | cut -c1-64)"
cache="${RAYGATE_CACHE:-$HOME/.cache/raygate}/envtest"
out="$cache/$key"

complete() {
  [ -f "$out/.complete" ] && [ -x "$out/kube-apiserver" ] && [ -x "$out/etcd" ] &&
    [ "$(cat "$out/.kustomize" 2>/dev/null)" = "$KUSTOMIZE" ] && [ -x "$out/kustomize" ]
}
if complete; then
  echo "$out"
  exit 0
fi

mkdir -p "$cache"
# Serialize concurrent callers (e.g. CI and a developer): the second one waits, then reuses.
exec 9>"$cache/.lock"
flock 9
if complete; then
  echo "$out"
  exit 0
fi

export GOWORK=off CGO_ENABLED=0 GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod"
command -v go >/dev/null || { echo "envtest-bins: 'go' not found on PATH (need Go >= 1.24)" >&2; exit 1; }

tmp="$cache/.build-$key.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)

if ! { [ -f "$out/.complete" ] && [ -x "$out/kube-apiserver" ] && [ -x "$out/etcd" ]; }; then
  echo "envtest-bins: building etcd (go.etcd.io/etcd/server/v3) into $out ..." >&2
  (cd "$tools/etcd" && nice -n 10 go build -trimpath -ldflags='-s -w' -o "$tmp/etcd" go.etcd.io/etcd/server/v3) >&2
  echo "envtest-bins: etcd built after $(($(date +%s) - start)) s" >&2

  LDF="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    LDF="$LDF -X $p.gitVersion=$KV -X $p.gitMajor=1 -X $p.gitMinor=$MINOR -X $p.gitTreeState=clean"
  done
  echo "envtest-bins: building kube-apiserver $KV (cold: 10-25+ min on 2 cores) ..." >&2
  (cd "$tools/kube-apiserver" && nice -n 10 go build -trimpath -tags=selinux,notest -ldflags="$LDF" \
    -o "$tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver) >&2
  echo "envtest-bins: kube-apiserver built after $(($(date +%s) - start)) s" >&2

  "$tmp/etcd" --version >&2
  "$tmp/kube-apiserver" --version >&2

  rm -rf "$out"
  mkdir -p "$out"
  mv "$tmp/etcd" "$tmp/kube-apiserver" "$out/"
  touch "$out/.complete"
  echo "envtest-bins: done in $(($(date +%s) - start)) s: $(du -h "$out/kube-apiserver" | cut -f1) kube-apiserver, $(du -h "$out/etcd" | cut -f1) etcd" >&2
fi

# kustomize renders deploy/ for the server-side dry-run test. `go install pkg@version` works here
# (its go.mod has no replace directives); a pinned version replaces the binary when bumped.
if [ "$(cat "$out/.kustomize" 2>/dev/null)" != "$KUSTOMIZE" ] || [ ! -x "$out/kustomize" ]; then
  echo "envtest-bins: building kustomize $KUSTOMIZE ..." >&2
  (cd "$tmp" && GOBIN="$tmp" nice -n 10 go install -trimpath -ldflags='-s -w' \
    "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE") >&2
  "$tmp/kustomize" version >&2
  mv -f "$tmp/kustomize" "$out/kustomize"
  echo "$KUSTOMIZE" >"$out/.kustomize"
fi
echo "$out"
