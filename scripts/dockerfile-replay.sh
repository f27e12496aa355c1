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
# Two modes (RAYGATE_REPLAY_PROFILE):
#
# release (the default, by hand): the RUN steps exactly as written (`cargo build --release`, the
#   image's thin-LTO profile). Cargo's target directory lives outside the clone, one per compiler,
#   ${RAYGATE_CACHE:-$HOME/.cache/raygate}/dockerfile-replay/target-rustc-<version>-<hash of rustc -vV>
#   (the build directory's `target` is a symlink to it; flock serializes concurrent runs; the
#   directories of other compilers are deleted). Cargo's fingerprints key every dependency on its
#   version, features, profile and the compiler, so a warm run recompiles only the crate layer.
#   Prints the binary's path (a copy in that cache, .../dockerfile-replay/out/raygate).
#
# dev (CI: scripts/test.sh, tests/dockerfile_replay.rs): the same COPY set and RUN steps with two
#   textual changes to each RUN: the word `--release` dropped and `target/release/` ->
#   `target/debug/`, so the dev profile of the same Cargo.toml. Cargo's intermediates go to the
#   test build's own build directory, CARGO_BUILD_BUILD_DIR=${RAYGATE_REPLAY_BUILD_DIR:-
#   ${CARGO_BUILD_BUILD_DIR:-${CARGO_TARGET_DIR:-<checkout>/target}}}, so the registry
#   dependencies `cargo test` compiled are reused; the final artifacts are uplifted to the
#   replay's own target directory (`target` in the temporary build directory, deleted at the
#   end), never to the checkout's target/debug. Cargo's unit hash of a workspace's root package
#   does not depend on where the workspace lives, so the replayed crate would share the
#   checkout's own raygate intermediates (deps/raygate-*, build/raygate-*, the build script's
#   OUT_DIR); a cargo config in the parent of the build directory (outside the COPY set) sets
#   `split-debuginfo = "off"` for that package only, rustc's default on Linux: the same
#   compilation under another hash. Prints nothing on stdout.
#
# A broken Dockerfile fails in both modes: the COPY set, the RUN steps and the crate build are
# replayed every time (tests/dockerfile_replay.rs).
#
# Usage: [RAYGATE_REPLAY_PROFILE=release|dev] [RAYGATE_REPLAY_BUILD_DIR=DIR] \
#        scripts/dockerfile-replay.sh [Dockerfile]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dockerfile="${1:-$root/Dockerfile}"
profile="${RAYGATE_REPLAY_PROFILE:-release}"
case "$profile" in
  release) [ -z "${RAYGATE_REPLAY_BUILD_DIR:-}" ] \
             || { echo "dockerfile-replay: RAYGATE_REPLAY_BUILD_DIR needs RAYGATE_REPLAY_PROFILE=dev" >&2; exit 1; } ;;
  dev) ;;
  *) echo "dockerfile-replay: RAYGATE_REPLAY_PROFILE=$profile: release or dev" >&2; exit 1 ;;
esac
if [ "$profile" = dev ]; then
  # Relative paths as cargo reads them: from the caller's working directory.
  cargo_build_dir="$(realpath -m -- "${RAYGATE_REPLAY_BUILD_DIR:-${CARGO_BUILD_BUILD_DIR:-${CARGO_TARGET_DIR:-$root/target}}}")"
  mkdir -p "$cargo_build_dir"
  exec 9>"$cargo_build_dir/.raygate-dockerfile-replay.lock"
else
  cache="${RAYGATE_CACHE:-$HOME/.cache/raygate}/dockerfile-replay"
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
fi
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

# The image's cargo has no target-dir override: its RUN steps build into ./target.
unset CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR
tmp="$(mktemp -d "${TMPDIR:-/tmp}/raygate-dockerfile-replay.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
build="$tmp/context"
mkdir "$build"
if [ "$profile" = dev ]; then
  export CARGO_BUILD_BUILD_DIR="$cargo_build_dir"
  package="$(sed -n '/^\[package\]/,/^\[/s/^name *= *"\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)"
  [ -n "$package" ] || die "no [package] name in $root/Cargo.toml"
  mkdir "$tmp/.cargo"
  printf '# scripts/dockerfile-replay.sh: another unit hash than the checkout'"'"'s own %s\n[profile.dev.package.%s]\nsplit-debuginfo = "off"\n' \
    "$package" "$package" >"$tmp/.cargo/config.toml"
  echo "dockerfile-replay: dev profile, cargo build dir $cargo_build_dir, target dir $build/target" >&2
else
  rustc_id="$(rustc -vV)" || die "rustc -vV failed"
  rustc_ver="$(sed -n 's/^release: *//p' <<<"$rustc_id")"
  target="$cache/target-rustc-${rustc_ver:-unknown}-$(sha256sum <<<"$rustc_id" | cut -c1-12)"
  # Adopt the unkeyed directory of earlier versions of this script (cargo rebuilds it if it was
  # another compiler's), then drop every other compiler's directory.
  if [ ! -d "$target" ] && [ -d "$cache/target" ]; then mv "$cache/target" "$target"; fi
  for d in "$cache"/target "$cache"/target-rustc-*; do
    if [ -d "$d" ] && [ "$d" != "$target" ]; then
      echo "dockerfile-replay: removing $d (another compiler)" >&2
      rm -rf "$d"
    fi
  done
  mkdir -p "$target"
  echo "dockerfile-replay: cargo target cache $target" >&2
  ln -s "$target" "$build/target"
fi

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
      if [ "$profile" = dev ]; then
        rest="$(sed -E 's/(^|[[:space:]])--release([[:space:]]|$)/\1\2/g; s/(^|[[:space:]])--release([[:space:]]|$)/\1\2/g; s#target/release/#target/debug/#g' <<<"$rest")"
        [[ "$rest" != *release* ]] \
          || die "$where: RUN names the release profile other than as \`--release\` or \`target/release/\` (the dev replay maps only those)"
        echo "dockerfile-replay: RUN (line $at, dev profile): $rest" >&2
      else
        echo "dockerfile-replay: RUN (line $at)" >&2
      fi
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
[ "$profile" = dev ] && exit 0
mkdir -p "$cache/out"
cp "$bin/raygate" "$cache/out/raygate.tmp" && mv "$cache/out/raygate.tmp" "$cache/out/raygate"
echo "$cache/out/raygate"
