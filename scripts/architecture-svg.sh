#!/usr/bin/env bash
# Renders docs/architecture.dot to docs/architecture.svg with Graphviz (`apt-get install graphviz`).
# tests/architecture.rs checks the committed SVG still has the .dot's nodes and edges.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
command -v dot >/dev/null || { echo "architecture-svg: Graphviz 'dot' not found (apt-get install graphviz)" >&2; exit 1; }
dot -Tsvg "$root/docs/architecture.dot" -o "$root/docs/architecture.svg"
echo "$root/docs/architecture.svg"
