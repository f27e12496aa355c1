# Sourced by scripts/{helm,kuberay,promtool}-bin.sh: builds one Go binary once and prints its path
# on stdout; logs go to stderr.
#
#   go_tool_bin NAME KEY DIR VERSION_ARG -- GO_BUILD_ARGS...
#
# Cache: ${RAYGATE_CACHE:-$HOME/.cache/raygate}/NAME/KEY/NAME (outside the clone; KEY is the
# caller's hash of its go.sum/go.mod, so a version bump gives a new directory). A `.complete`
# marker is written last, so an interrupted build is redone; a flock serializes concurrent
# callers. The build is `go build -trimpath -o <tmp>/NAME GO_BUILD_ARGS...` in DIR (the tool's
# wrapper module, GOWORK off, CGO off, -mod=mod), then `NAME VERSION_ARG` must succeed.
go_tool_bin() {
  local name="$1" key="$2" dir="$3" version_arg="$4"
  [ "${5:-}" = "--" ] || { echo "go_tool_bin: usage: NAME KEY DIR VERSION_ARG -- ARGS..." >&2; return 2; }
  shift 5
  local cache="${RAYGATE_CACHE:-$HOME/.cache/raygate}/$name"
  local out="$cache/$key"
  if [ -f "$out/.complete" ] && [ -x "$out/$name" ]; then
    echo "$out/$name"
    return 0
  fi
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  flock 9
  if [ -f "$out/.complete" ] && [ -x "$out/$name" ]; then
    echo "$out/$name"
    return 0
  fi
  command -v go >/dev/null || {
    echo "$name-bin: 'go' not found on PATH (need the Go version $dir/go.mod names)" >&2
    return 1
  }
  export GOWORK=off CGO_ENABLED=0 GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod"
  go_tool_tmp="$cache/.build-$key.$$"
  rm -rf "$go_tool_tmp"
  mkdir -p "$go_tool_tmp"
  trap 'rm -rf "$go_tool_tmp"' EXIT
  local start
  start=$(date +%s)
  echo "$name-bin: building $name into $out ..." >&2
  (cd "$dir" && nice -n 10 go build -trimpath -o "$go_tool_tmp/$name" "$@") >&2
  "$go_tool_tmp/$name" "$version_arg" >&2
  rm -rf "$out"
  mkdir -p "$out"
  mv "$go_tool_tmp/$name" "$out/$name"
  touch "$out/.complete"
  echo "$name-bin: done in $(($(date +%s) - start)) s" >&2
  echo "$out/$name"
}
