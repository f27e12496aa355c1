#!/usr/bin/env bash
# Creates (once) a Python venv with ray==2.60.0 outside the clone and prints its path.
# Cache: ${RAYGATE_CACHE:-$HOME/.cache/raygate}/venv-ray-2.60.0 (a `.complete` marker is written last,
# so an interrupted install is redone on the next call).
set -euo pipefail
RAY_VERSION=2.60.0
cache="${RAYGATE_CACHE:-$HOME/.cache/raygate}"
venv="$cache/venv-ray-$RAY_VERSION"
if [ ! -f "$venv/.complete" ]; then
  mkdir -p "$cache"
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet "ray[default]==$RAY_VERSION" >&2
  "$venv/bin/python" -c "import ray; assert ray.__version__ == '$RAY_VERSION', ray.__version__" >&2
  touch "$venv/.complete"
fi
echo "$venv"
