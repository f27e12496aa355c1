#!/usr/bin/env bash
# webhook_load side by side: this checkout against a base commit, in one run (issue #14's
# acceptance: normal-traffic throughput and p99 no worse than before hardening, measured side by
# side so both sides see the same machine load).
#
#   scripts/bench-webhook-ab.sh [BASE] [ROUNDS] [DURATION]
#     BASE      commit to compare against (default 684a637: the last main commit before the
#               first #14 hardening commit, 3b92cc2; its webhook code is the code the README's
#               pre-hardening webhook_load figures were measured on)
#     ROUNDS    rounds; each runs both sides, in base/head and head/base order alternately
#               (default 3)
#     DURATION  seconds per endpoint per run (default 10; 2 s warm-up before each)
#
# Both sides are built with `cargo bench --no-run --bench webhook_load` (the bench profile, as
# `cargo bench` runs it): this checkout in its own target dir, BASE from `git archive` into
# ${RAYGATE_CACHE:-~/.cache/raygate}/bench-ab/src-SHA (next to a `shared` link to ../shared, where
# the bench reads the KubeRay samples) with the target dir bench-ab/target. Both are kept, so a
# second run rebuilds nothing; a new bench-ab/target is first seeded with a copy of this
# checkout's release dependencies (only raygate itself and the few dependencies that differ are
# then compiled). Never this checkout's target. Each side's bench then runs against its own
# `raygate` binary, copied to a temp dir first (RAYGATE_BENCH_BIN), so a concurrent build cannot
# swap a binary mid-run. Every run is bounded by `timeout` (RAYGATE_AB_RUN_TIMEOUT, default
# 300 s). With RAYGATE_BENCH_LOCK=FILE the runs (not the builds) hold `flock FILE`. The script
# prints every run's table and the load average around it, then the median requests/s and p99 of
# each side per endpoint.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
base="${1:-684a637}"
rounds="${2:-3}"
duration="${3:-10}"
run_timeout="${RAYGATE_AB_RUN_TIMEOUT:-300}"
cache="${RAYGATE_CACHE:-$HOME/.cache/raygate}/bench-ab"
base_sha="$(git rev-parse --verify "$base^{commit}")"
head_sha="$(git rev-parse HEAD)"
dirty=""
git diff --quiet HEAD -- src benches Cargo.toml Cargo.lock build.rs || dirty=" + uncommitted changes"
shared="$(cd "$root/../shared" 2>/dev/null && pwd -P)" ||
  { echo "bench-webhook-ab: $root/../shared (the KubeRay samples) is missing" >&2; exit 1; }
mkdir -p "$cache/target"
exec 9>"$cache/.lock"
flock 9

tmp="$(mktemp -d "${TMPDIR:-/tmp}/raygate-ab.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# Prints the path of the webhook_load bench executable built in $1 with target dir $2.
build_bench() {
  local dir="$1" target="$2"
  (cd "$dir" && CARGO_TARGET_DIR="$target" cargo bench --no-run --bench webhook_load \
    --message-format=json-render-diagnostics) \
    | python3 -c '
import json, sys
exe = None
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "webhook_load" and m.get("executable"):
        exe = m["executable"]
if not exe:
    sys.exit("no webhook_load executable in cargo output")
print(exe)'
}

echo "bench-webhook-ab: base $base_sha, head $head_sha$dirty" >&2
src="$cache/src-$base_sha"
if [ ! -f "$src/.complete" ]; then
  rm -rf "$src"
  mkdir -p "$src"
  git archive "$base_sha" | tar -x -C "$src"
  touch "$src/.complete"
fi
ln -sfn "$shared" "$cache/shared"
head_target="${CARGO_TARGET_DIR:-$root/target}"
if [ ! -d "$cache/target/release/deps" ] && [ -d "$head_target/release/deps" ]; then
  echo "bench-webhook-ab: seeding $cache/target/release from $head_target/release" >&2
  mkdir -p "$cache/target/release"
  for d in deps build .fingerprint; do
    [ -d "$head_target/release/$d" ] && cp -a "$head_target/release/$d" "$cache/target/release/"
  done
  # this checkout's raygate artefacts are of no use to the base (other sources, other path)
  rm -rf "$cache/target/release/deps/"*raygate* "$cache/target/release/.fingerprint/raygate-"* \
    "$cache/target/release/build/raygate-"* "$cache/target/release/deps/"webhook_load-* \
    "$cache/target/release/.fingerprint/"webhook_load-* 2>/dev/null || true
fi
t0=$(date +%s)
base_exe="$(build_bench "$src" "$cache/target")"
cp "$cache/target/release/raygate" "$tmp/raygate-base"
cp "$base_exe" "$tmp/bench-base"
echo "bench-webhook-ab: base built in $(($(date +%s) - t0)) s" >&2
t0=$(date +%s)
head_exe="$(build_bench "$root" "$head_target")"
cp "$head_target/release/raygate" "$tmp/raygate-head"
cp "$head_exe" "$tmp/bench-head"
echo "bench-webhook-ab: head built in $(($(date +%s) - t0)) s" >&2

if [ -n "${RAYGATE_BENCH_LOCK:-}" ]; then
  exec 8>"$RAYGATE_BENCH_LOCK"
  echo "bench-webhook-ab: waiting for $RAYGATE_BENCH_LOCK" >&2
  flock 8
fi

results="$tmp/results.tsv"
: >"$results"
run_side() {
  local side="$1" round="$2" out="$tmp/$1-$2.txt"
  echo "=== round $round: $side (load average $(cut -d' ' -f1-3 /proc/loadavg)) ===" >&2
  if ! RAYGATE_BENCH_BIN="$tmp/raygate-$side" timeout "$run_timeout" "$tmp/bench-$side" --bench \
      --duration "$duration" --warmup 2 --concurrency 64 --connections 4 >"$out" 2>"$out.err"; then
    cat "$out" "$out.err" >&2
    echo "bench-webhook-ab: $side run $round failed or timed out (${run_timeout} s)" >&2
    exit 1
  fi
  grep -E '^\| (validate|mutate) \||^in-process|^server peak|^load average' "$out" >&2
  # | endpoint | load | requests/s | p50 ms | p99 ms | ...
  awk -F'|' -v side="$side" -v round="$round" '/^\| (validate|mutate) \|/ {
      gsub(/ /, "", $2); gsub(/^ +| +$/, "", $3); gsub(/ /, "", $4); gsub(/ /, "", $6);
      print side "\t" round "\t" $2 "\t" $3 "\t" $4 "\t" $6 }' "$out" >>"$results"
}
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then
    run_side base "$r"
    run_side head "$r"
  else
    run_side head "$r"
    run_side base "$r"
  fi
done

echo
echo "webhook_load, $rounds rounds x $duration s per endpoint, 64 in flight on 4 connections; base $(git log -1 --format='%h %cs' "$base_sha"), head $(git log -1 --format='%h %cs' "$head_sha")$dirty; load average (1, 5, 15 min) $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
python3 - "$results" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
keys = sorted({(r[2], r[3]) for r in rows}, key=lambda k: (k[0] != "validate", k))
print("| endpoint | load | base req/s (median; runs) | head req/s (median; runs) | head/base | base p99 ms (median; runs) | head p99 ms (median; runs) |")
print("|---|---|---|---|---|---|---|")
for ep, load in keys:
    def pick(side, col):
        return [float(r[col]) for r in rows if r[0] == side and r[2] == ep and r[3] == load]
    b, h = pick("base", 4), pick("head", 4)
    bp, hp = pick("base", 5), pick("head", 5)
    if not b or not h:
        continue
    runs = lambda xs, f: ", ".join(f.format(x) for x in xs)
    print(f"| {ep} | {load} | {statistics.median(b):.0f} ({runs(b, '{:.0f}')}) | {statistics.median(h):.0f} ({runs(h, '{:.0f}')}) "
          f"| {statistics.median(h) / statistics.median(b):.2f} | {statistics.median(bp):.2f} ({runs(bp, '{:.2f}')}) | {statistics.median(hp):.2f} ({runs(hp, '{:.2f}')}) |")
EOF
