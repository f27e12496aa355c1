#!/usr/bin/env bash
# Replays the build stage of the Dockerfile without Docker, so it cannot silently break again
# (issue #12.2): the stage's COPY set exactly (from this checkout into an empty temporary build
# directory standing for WORKDIR), then its RUN steps in order with `sh -c` in that directory,
# then checks what the runtime stage takes from it (`COPY --from=<stage> ...`) exists and runs:
#   out/usr/local/bin/raygate --version
#   out/usr/local/bin/ray kuberay-autoscaler --help      (the KubeRay < 1.7 entry point)
# and that every FROM is pinned by digest.
#
# Any instruction of the build stage it does not know (ARG, ADD, COPY --from, ...) is an error,
# not skipped. RUN steps must use paths relative to WORKDIR (the build directory is not /src).
# Not replayed: the base image itself (the local toolchain stands in for rust:1.95-bookworm; the
# script checks `cargo --version` is 1.95 or newer, the crate's rust-version).
#
# Cache: cargo's target directory lives outside the clone, in
#   ${RAYGATE_CACHE:-$HOME/.cache/raygate}/dockerfile-replay/target
# (the build directory's `target` is a symlink to it; flock serializes concurrent runs), so a CI
# run rebuilds only the crate, not its dependencies.
#
# Usage: scripts/dockerfile-replay.sh [Dockerfile]   (prints the binary's path on success)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dockerfile="${1:-$root/Dockerfile}"
cache="${RAYGATE_CACHE:-$HOME/.cache/raygate}/dockerfile-replay"
mkdir -p "$cache/target"
exec 9>"$cache/.lock"
flock 9

die() { echo "dockerfile-replay: $*" >&2; exit 1; }
[ -f "$dockerfile" ] || die "no Dockerfile at $dockerfile"

# Logical instructions: comments and blank lines dropped, `\` continuations joined.
instructions=()
cur=""
lineno=0
start=0
while IFS= read -r line || [ -n "$line" ]; do
  lineno=$((lineno + 1))
  if [ -z "$cur" ]; then
    [[ "$line" =~ ^[[:space:]]*(#.*)?$ ]] && continue
    start=$lineno
  fi
  if [[ "$line" =~ \\[[:space:]]*$ ]]; then
    cur+="${line%\\*} "
    continue
  fi
  cur+="$line"
  instructions+=("$start:$cur")
  cur=""
done <"$dockerfile"
[ -z "$cur" ] || die "$dockerfile: unterminated continuation at the end"

ver="$(cargo --version | sed -n 's/^cargo \([0-9]*\)\.\([0-9]*\).*/\1 \2/p')"
read -r major minor <<<"$ver"
{ [ "${major:-0}" -gt 1 ] || [ "${minor:-0}" -ge 95 ]; } \
  || die "cargo $(cargo --version) is older than the image's Rust 1.95"

build="$(mktemp -d "${TMPDIR:-/tmp}/raygate-dockerfile-replay.XXXXXX")"
trap 'rm -rf "$build"' EXIT
ln -s "$cache/target" "$build/target"

stage=""
stage_no=0
workdir=""
build_stage=""
taken=()
for ins in "${instructions[@]}"; do
  at="${ins%%:*}"
  text="${ins#*:}"
  text="${text#"${text%%[![:space:]]*}"}"
  word="${text%%[[:space:]]*}"
  rest="${text#"$word"}"
  rest="${rest#"${rest%%[![:space:]]*}"}"
  where="$dockerfile:$at"
  case "${word^^}" in
    FROM)
      stage_no=$((stage_no + 1))
      image="${rest%%[[:space:]]*}"
      [[ "$image" =~ @sha256:[0-9a-f]{64}$ ]] || die "$where: FROM $image is not pinned by digest"
      if [[ "$rest" =~ [[:space:]][Aa][Ss][[:space:]]+([^[:space:]]+) ]]; then
        stage="${BASH_REMATCH[1]}"
      else
        stage="$stage_no"
      fi
      if [ "$stage_no" -eq 1 ]; then
        build_stage="$stage"
        echo "dockerfile-replay: stage $stage ($image) in $build" >&2
      fi
      continue
      ;;
  esac
  [ "$stage_no" -ge 1 ] || die "$where: $word before the first FROM"
  if [ "$stage_no" -gt 1 ]; then
    # Runtime stages: only what they take from the build stage is checked.
    if [[ "${word^^}" == COPY && "$rest" =~ ^--from=([^[:space:]]+)[[:space:]]+([^[:space:]]+)[[:space:]]+([^[:space:]]+)$ ]]; then
      [ "${BASH_REMATCH[1]}" = "$build_stage" ] || die "$where: COPY --from=${BASH_REMATCH[1]} is not the build stage ($build_stage)"
      taken+=("$at:${BASH_REMATCH[2]}")
    elif [[ "${word^^}" == COPY && "$rest" == --from=* ]]; then
      die "$where: COPY --from must be 'COPY --from=<stage> <path> <dest>'"
    fi
    continue
  fi
  case "${word^^}" in
    WORKDIR)
      [[ "$rest" == /* ]] || die "$where: WORKDIR $rest is not absolute"
      [ -z "$workdir" ] || die "$where: a second WORKDIR (the replay maps one)"
      workdir="${rest%/}"
      ;;
    COPY)
      [ -n "$workdir" ] || die "$where: COPY before WORKDIR"
      [[ "$rest" == --* ]] && die "$where: COPY ${rest%%[[:space:]]*} is not replayed"
      read -r -a args <<<"$rest"
      [ "${#args[@]}" -ge 2 ] || die "$where: COPY needs a source and a destination"
      dest="${args[-1]}"
      srcs=("${args[@]:0:${#args[@]}-1}")
      case "$dest" in
        /*) [[ "$dest" == "$workdir" || "$dest" == "$workdir"/* ]] || die "$where: COPY to $dest outside WORKDIR"
            dest="${dest#"$workdir"}"; dest="./${dest#/}" ;;
      esac
      for s in "${srcs[@]}"; do
        [[ "$s" == *[\*\?\[]* ]] && die "$where: COPY pattern $s is not replayed"
        [[ "$s" == /* || "$s" == *..* ]] && die "$where: COPY source $s outside the context"
        [ -e "$root/$s" ] || die "$where: COPY source $s does not exist in $root"
        if [ "${#srcs[@]}" -gt 1 ] || [[ "$dest" == */ ]]; then
          mkdir -p "$build/$dest"
          if [ -d "$root/$s" ]; then cp -a "$root/$s/." "$build/$dest/"; else cp -a "$root/$s" "$build/$dest/"; fi
        elif [ -d "$root/$s" ]; then
          mkdir -p "$build/$dest"
          cp -a "$root/$s/." "$build/$dest/"
        else
          mkdir -p "$(dirname "$build/$dest")"
          cp -a "$root/$s" "$build/$dest"
        fi
      done
      echo "dockerfile-replay: COPY ${srcs[*]} -> $dest" >&2
      ;;
    RUN)
      [ -n "$workdir" ] || die "$where: RUN before WORKDIR"
      [[ "$rest" == \[* || "$rest" == --* ]] && die "$where: only shell-form RUN without flags is replayed"
      echo "dockerfile-replay: RUN (line $at)" >&2
      t0=$(date +%s)
      (cd "$build" && sh -c "$rest") >&2 || die "$where: RUN failed"
      echo "dockerfile-replay: RUN (line $at) done in $(($(date +%s) - t0)) s" >&2
      ;;
    ENV)
      [[ "$rest" =~ ^([A-Za-z_][A-Za-z0-9_]*)=([^[:space:]]*)$ ]] || die "$where: only ENV NAME=value is replayed"
      export "${BASH_REMATCH[1]}=${BASH_REMATCH[2]}"
      ;;
    *)
      die "$where: $word in the build stage is not replayed (extend scripts/dockerfile-replay.sh)"
      ;;
  esac
done
[ "$stage_no" -ge 2 ] || die "$dockerfile: no runtime stage"
[ "${#taken[@]}" -ge 1 ] || die "$dockerfile: the runtime stage takes nothing from $build_stage"
for t in "${taken[@]}"; do
  at="${t%%:*}"
  p="${t#*:}"
  [[ "$p" == "$workdir"/* ]] || die "$dockerfile:$at: COPY --from=$build_stage $p is outside WORKDIR $workdir"
  rel="${p#"$workdir"/}"
  [ -e "$build/$rel" ] || die "$dockerfile:$at: COPY --from=$build_stage $p: the build stage made no $rel"
done

bin="$build/out/usr/local/bin"
[ -x "$bin/raygate" ] || die "the build stage made no out/usr/local/bin/raygate"
[ "$(readlink "$bin/ray")" = "raygate" ] || die "out/usr/local/bin/ray is not a symlink to raygate"
v="$("$bin/raygate" --version)" || die "raygate --version failed"
echo "dockerfile-replay: $v" >&2
"$bin/ray" kuberay-autoscaler --help >/dev/null || die "ray kuberay-autoscaler --help failed"
echo "dockerfile-replay: ray kuberay-autoscaler --help: ok" >&2
mkdir -p "$cache/out"
cp "$bin/raygate" "$cache/out/raygate.tmp" && mv "$cache/out/raygate.tmp" "$cache/out/raygate"
echo "$cache/out/raygate"
